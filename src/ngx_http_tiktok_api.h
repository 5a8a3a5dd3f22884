
/*
 * Request-time calls to TikTok: nginx subrequests to the internal
 * tiktok_api_location, which proxy_passes to TikTok, so operators keep
 * nginx's upstream features (keepalive, TLS verification, timeouts,
 * resolver).  The answer is captured by this module's own filters, bounded
 * by tiktok_api_max_response, so nothing depends on the location's
 * subrequest_output_buffer_size, and the subrequest carries only the
 * headers set here: never the client's Cookie, Authorization or user id.
 */


#ifndef _NGX_HTTP_TIKTOK_API_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_API_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_json.h"


/* asked by GET /creator and by the publisher before each init */
#define NGX_HTTP_TIKTOK_CREATOR_PATH   "/v2/post/publish/creator_info/query/"


typedef struct ngx_http_tiktok_api_call_s  ngx_http_tiktok_api_call_t;

typedef void (*ngx_http_tiktok_api_done_pt)(ngx_http_request_t *r,
    ngx_http_tiktok_api_call_t *call);


/* zeroed by its owner (ngx_pcalloc, ngx_memzero), then what to send set */
struct ngx_http_tiktok_api_call_s {
    /* what to send */
    ngx_uint_t                    method;        /* NGX_HTTP_GET, _POST */
    ngx_str_t                     path;          /* "/v2/user/info/" */
    ngx_str_t                     args;          /* without "?" */
    ngx_str_t                     content_type;
    ngx_str_t                     body;
    ngx_str_t                     bearer;        /* access token, or empty */

    ngx_http_tiktok_api_done_pt   handler;

    /*
     * The outcome, valid in the handler:
     *   rc NGX_OK     TikTok answered: status and response hold its answer
     *   rc NGX_ERROR  no usable answer: status is nginx's own (502 when
     *                 TikTok could not be reached, 504 on timeout), or the
     *                 answer was larger than tiktok_api_max_response
     *                 (too_large)
     */
    ngx_int_t                     rc;
    ngx_uint_t                    status;
    ngx_str_t                     response;
    ngx_str_t                     retry_after;
    ngx_msec_t                    elapsed;
    unsigned                      too_large:1;

    /* private */
    ngx_msec_t                    start;
    size_t                        max;
    size_t                        cap;           /* of response.data */
    unsigned                      answered:1;    /* headers came */
    unsigned                      done:1;        /* subrequest finalized */
};


/* what went wrong with a TikTok call, for tiktok.api_errors and the log */
typedef struct {
    const char                   *endpoint;      /* "/v2/oauth/token/" */
    ngx_uint_t                    status;        /* HTTP status, or 0 */
    ngx_str_t                     code;          /* TikTok's error code */
    ngx_str_t                     log_id;        /* TikTok's log_id */
    const char                   *message;       /* ours, never a secret */
} ngx_http_tiktok_api_error_t;


/* a form body being built: key=value&... with values percent-encoded */
typedef struct {
    ngx_str_t                     body;
    size_t                        cap;
} ngx_http_tiktok_form_t;


ngx_int_t ngx_http_tiktok_api_init(ngx_conf_t *cf);
ngx_int_t ngx_http_tiktok_api_start(ngx_http_request_t *r,
    ngx_http_tiktok_api_call_t *call);

/*
 * POSTs an OAuth form to TikTok: client_key and client_secret, then the
 * given fields; the body is zeroed when the request ends.
 */
ngx_int_t ngx_http_tiktok_api_oauth_post(ngx_http_request_t *r,
    ngx_http_tiktok_api_call_t *call, const char *path, ngx_keyval_t *fields,
    ngx_uint_t n, ngx_http_tiktok_api_done_pt handler);

struct ngx_http_tiktok_main_conf_s;

/*
 * An OAuth form's body (client_key, client_secret, then fields), zeroed
 * when the pool goes (so body must live in the pool), for any HTTP client.
 */
ngx_int_t ngx_http_tiktok_oauth_form(ngx_pool_t *pool,
    struct ngx_http_tiktok_main_conf_s *tmcf, ngx_keyval_t *fields,
    ngx_uint_t n, ngx_str_t *body);

/* appends key=value (percent-encoded) to a form, "&" between pairs */
ngx_int_t ngx_http_tiktok_form_add(ngx_pool_t *pool,
    ngx_http_tiktok_form_t *form, const char *key, ngx_str_t *value);

/*
 * Parses TikTok's answer.  For the v2 envelope, NGX_OK only when
 * error.code is "ok" (data is then set); NGX_DECLINED with err filled for a
 * TikTok error, NGX_ERROR for anything that is not the documented JSON.
 */
ngx_int_t ngx_http_tiktok_api_envelope(ngx_http_request_t *r,
    ngx_http_tiktok_api_call_t *call, json_t **data,
    ngx_http_tiktok_api_error_t *err);

/* what a call's outcome means, from ngx_http_tiktok_api_classify() */
#define NGX_HTTP_TIKTOK_API_OK             0
#define NGX_HTTP_TIKTOK_API_TOKEN_INVALID  1   /* access_token_invalid */
#define NGX_HTTP_TIKTOK_API_RATE_LIMITED   2   /* 429, rate_limit_exceeded */
#define NGX_HTTP_TIKTOK_API_SCOPE          3   /* scope_not_authorized */
#define NGX_HTTP_TIKTOK_API_SCOPE_FIELD    4   /* scope_permission_missed */
#define NGX_HTTP_TIKTOK_API_CANNOT_POST    5   /* spam_risk_*, user cap */
#define NGX_HTTP_TIKTOK_API_FAILED         6   /* anything else */
#define NGX_HTTP_TIKTOK_API_INTERNAL       7   /* internal_error */
#define NGX_HTTP_TIKTOK_API_GRANT_GONE     8   /* OAuth: invalid_grant, ... */
#define NGX_HTTP_TIKTOK_API_PUBLISH_GONE   9   /* invalid_publish_id, ... */

/* TikTok's error codes compared in one place: rc from api_envelope or
 * oauth_answer */
ngx_uint_t ngx_http_tiktok_api_classify(ngx_int_t rc, ngx_uint_t status,
    ngx_str_t *code);

/* the flat OAuth answer; an "error" member means failure, whatever the
 * HTTP status (TikTok sends OAuth errors with 200) */
ngx_int_t ngx_http_tiktok_api_oauth(ngx_http_request_t *r,
    ngx_http_tiktok_api_call_t *call, json_t **root,
    ngx_http_tiktok_api_error_t *err);

/* the same for an answer another client (libcurl) received */
ngx_int_t ngx_http_tiktok_oauth_answer(ngx_pool_t *pool, ngx_log_t *log,
    ngx_uint_t status, ngx_str_t *response, json_t **root,
    ngx_http_tiktok_api_error_t *err);

/*
 * TikTok's OAuth token answer, the code exchange's and the refresh's: the
 * same fields in both, but only the exchange needs open_id (the refresh is
 * for an account whose open_id is stored).  The tokens are zeroed when the
 * pool goes, through this struct: it must live in the pool too.
 */
typedef struct {
    ngx_str_t                     access_token;
    ngx_str_t                     refresh_token;
    ngx_str_t                     open_id;       /* empty when absent */
    ngx_str_t                     expires_in;    /* seconds, as text */
    ngx_str_t                     refresh_expires_in;
    ngx_str_t                     scope;         /* empty when absent */
} ngx_http_tiktok_api_token_t;


/*
 * Reads the answer oauth_answer accepted (root) into token: NGX_OK with
 * both tokens and both lifetimes (whole positive numbers), else NGX_ERROR
 * and why in reason
 */
ngx_int_t ngx_http_tiktok_api_token_read(ngx_pool_t *pool, json_t *root,
    ngx_http_tiktok_api_token_t *token, const char **reason);

/* the first header of a list (headers_in's, headers_out's) named name */
ngx_table_elt_t *ngx_http_tiktok_header(ngx_list_t *headers,
    const char *name);
/* a header added to such a list; key is a literal */
ngx_table_elt_t *ngx_http_tiktok_set_header(ngx_pool_t *pool,
    ngx_list_t *headers, const char *key, ngx_str_t *value);

/*
 * zero a secret's bytes when the pool goes away; secret is read then, so
 * it must live as long as the pool (in the pool, never on the stack)
 */
ngx_int_t ngx_http_tiktok_forget(ngx_pool_t *pool, ngx_str_t *secret);

/* the v2 envelope of an answer another client (libcurl) received */
ngx_int_t ngx_http_tiktok_api_answer(ngx_pool_t *pool, ngx_log_t *log,
    ngx_uint_t status, ngx_str_t *response, json_t **data,
    ngx_http_tiktok_api_error_t *err);

/*
 * NULL when creator info's data has what a posting form, POST /post and
 * the publisher rely on, each of its type: a list of strings for the
 * privacy levels, booleans for the interaction flags (a "true" string
 * read as not-disabled would turn on what the creator turned off), a
 * whole number for the duration limit; else why not, for the error log
 */
const char *ngx_http_tiktok_api_creator_check(json_t *data);


#endif /* _NGX_HTTP_TIKTOK_API_H_INCLUDED_ */
