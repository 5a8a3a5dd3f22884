
/*
 * ngx_http_tiktok_module: a TikTok integration served from nginx.
 *
 * The module's own types: configuration and the per-request context.
 */


#ifndef _NGX_HTTP_TIKTOK_MODULE_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_crypto.h"
#include "ngx_http_tiktok_pg.h"
#include "ngx_http_tiktok_cache.h"
#include "ngx_http_tiktok_ratelimit.h"
#include "ngx_http_tiktok_json.h"
#include "ngx_http_tiktok_api.h"
#include "ngx_http_tiktok_media.h"
#include "ngx_http_tiktok_validate.h"
#include "ngx_http_tiktok_curl.h"
#include "ngx_http_tiktok_listen.h"


#define NGX_HTTP_TIKTOK_REQUEST_ID_MAX  64


/* scopes the module knows; tiktok_scopes accepts only these */
#define NGX_HTTP_TIKTOK_SCOPE_USER_INFO_BASIC    0x0001
#define NGX_HTTP_TIKTOK_SCOPE_USER_INFO_PROFILE  0x0002
#define NGX_HTTP_TIKTOK_SCOPE_USER_INFO_STATS    0x0004
#define NGX_HTTP_TIKTOK_SCOPE_VIDEO_LIST         0x0008
#define NGX_HTTP_TIKTOK_SCOPE_VIDEO_PUBLISH      0x0010
#define NGX_HTTP_TIKTOK_SCOPE_VIDEO_UPLOAD       0x0020


typedef struct ngx_http_tiktok_main_conf_s {
    ngx_str_t                    client_key;
    ngx_str_t                    client_secret;     /* from the environment */
    ngx_str_t                    client_secret_env;
    ngx_http_tiktok_keyring_t    keyring;
    ngx_str_t                    redirect_uri;
    ngx_str_t                    app_return_url;
    ngx_str_t                    scopes;            /* comma-separated */
    ngx_uint_t                   scope_mask;

    ngx_http_tiktok_pg_conf_t   *pg;
    ngx_http_tiktok_pg_conf_t   *pg_listen;         /* listen=, or NULL */
    ngx_http_tiktok_cache_t     *cache;

    ngx_str_t                    api_location;
    size_t                       api_max_response;
    ngx_str_t                    api_base_url;
    ngx_str_t                    authorize_url;
    ngx_str_t                    ca_certificate;

    ngx_flag_t                   scheduler;
    ngx_msec_t                   scheduler_interval;
    ngx_uint_t                   scheduler_batch;

    ngx_uint_t                   title_max_chars;
    ngx_str_t                    upload_spool;
    ngx_array_t                 *pull_url_prefixes; /* of ngx_str_t */
    ngx_flag_t                   pkce;

    ngx_int_t                    request_id_index;  /* $request_id */

    /* per worker, set in init_process */
    ngx_http_tiktok_pg_pool_t   *pg_pool;
    ngx_http_tiktok_curl_t      *curl;
    void                        *scheduler_ctx;
    ngx_http_tiktok_listen_t    *listener;

    ngx_uint_t                   configured;        /* tiktok_api is used */
} ngx_http_tiktok_main_conf_t;


typedef struct {
    ngx_http_complex_value_t    *user_id;
    ngx_flag_t                   api;
} ngx_http_tiktok_loc_conf_t;


typedef struct ngx_http_tiktok_ctx_s   ngx_http_tiktok_ctx_t;
typedef struct ngx_http_tiktok_call_s  ngx_http_tiktok_call_t;

typedef void (*ngx_http_tiktok_next_pt)(ngx_http_request_t *r);


/* what ngx_http_tiktok_token() found */
#define NGX_HTTP_TIKTOK_TOKEN_OK             0
#define NGX_HTTP_TIKTOK_TOKEN_NOT_CONNECTED  1
#define NGX_HTTP_TIKTOK_TOKEN_RECONNECT      2
#define NGX_HTTP_TIKTOK_TOKEN_UNAVAILABLE    3   /* database */
#define NGX_HTTP_TIKTOK_TOKEN_TIKTOK_DOWN    4
#define NGX_HTTP_TIKTOK_TOKEN_ERROR          5


typedef struct {
    ngx_uint_t                   status;
    ngx_uint_t                   http_status;    /* with TIKTOK_DOWN */
    ngx_str_t                    access_token;   /* with OK */
    ngx_str_t                    scopes;         /* comma-separated */
    ngx_event_t                  wait;
    ngx_http_tiktok_next_pt      next;
    struct ngx_http_tiktok_lease_s  *lease;
} ngx_http_tiktok_token_t;

typedef ngx_int_t (*ngx_http_tiktok_endpoint_pt)(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx);


struct ngx_http_tiktok_ctx_s {
    ngx_str_t                    request_id;
    ngx_str_t                    user_id;
    ngx_str_t                    path;           /* after the location */
    ngx_str_t                    location;       /* a redirect target */

    /* a subrequest's context names the call it carries; the request's
     * own context the call it waits for */
    ngx_http_tiktok_api_call_t  *api_call;
    ngx_http_tiktok_api_call_t  *api_pending;

    /* $tiktok_cache_status, $tiktok_upstream_ms */
    ngx_str_t                    cache_status;
    ngx_msec_t                   upstream_ms;
    unsigned                     upstream_ms_set:1;

    void                        *data;           /* the endpoint's own */
    ngx_http_tiktok_token_t     *token;
    ngx_http_tiktok_next_pt      next;           /* after an error row */

    /* the route's scope; the call in flight and the handler's resume */
    const char                  *scope;
    ngx_http_tiktok_call_t      *call;
    ngx_http_tiktok_endpoint_pt  resume;
};


extern ngx_module_t  ngx_http_tiktok_module;


/* ngx_http_tiktok_scheduler.c */
ngx_int_t ngx_http_tiktok_scheduler_init(ngx_cycle_t *cycle,
    ngx_http_tiktok_main_conf_t *tmcf);
void ngx_http_tiktok_scheduler_kick(ngx_http_tiktok_main_conf_t *tmcf);
void ngx_http_tiktok_scheduler_exit(ngx_http_tiktok_main_conf_t *tmcf);

/* ngx_http_tiktok_token.c: the refresh lease for a request */
ngx_int_t ngx_http_tiktok_token(ngx_http_request_t *r,
    ngx_http_tiktok_next_pt next);
ngx_int_t ngx_http_tiktok_token_error(ngx_http_request_t *r);
ngx_int_t ngx_http_tiktok_token_invalidate(ngx_http_request_t *r);
ngx_uint_t ngx_http_tiktok_token_has_scope(ngx_http_request_t *r,
    const char *scope);

/* ngx_http_tiktok_lease.c */
ngx_int_t ngx_http_tiktok_seal_hex(ngx_pool_t *pool, ngx_log_t *log,
    ngx_http_tiktok_keyring_t *keyring, ngx_str_t *user, const char *column,
    ngx_str_t *plain, ngx_str_t *hex);
ngx_int_t ngx_http_tiktok_unseal_hex(ngx_pool_t *pool, ngx_log_t *log,
    ngx_http_tiktok_keyring_t *keyring, ngx_str_t *user, const char *column,
    ngx_str_t *hex, ngx_str_t *plain, ngx_uint_t *used_previous);

/*
 * A refresh call, a request's or the publisher's, goes through libcurl and
 * never lasts longer than NGX_HTTP_TIKTOK_REFRESH_TIMEOUT ms, connecting
 * included; the lease lasts NGX_HTTP_TIKTOK_REFRESH_LEASE, well beyond the
 * call and the store that follows it (tiktok_postgres timeout=, 10 s by
 * default), so nobody refreshes again while a refresh may still succeed.
 */
#define NGX_HTTP_TIKTOK_REFRESH_TIMEOUT  60000
#define NGX_HTTP_TIKTOK_REFRESH_LEASE    "3 minutes"

/* ngx_http_tiktok_handler_status.c */
ngx_int_t ngx_http_tiktok_status_handler(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx);


/* the answers every file of the request path shares */
#include "ngx_http_tiktok_reply.h"


#endif /* _NGX_HTTP_TIKTOK_MODULE_H_INCLUDED_ */
