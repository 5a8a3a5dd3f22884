
/*
 * "Call TikTok as this user", once for every endpoint: the user's token
 * (refreshed when due), the scope the route needs, TikTok's rate limits,
 * the subrequest, its envelope and error classification, one retry after
 * access_token_invalid, the error row, and one resume of the handler
 * (ctx->resume) with the outcome.  A handler is: parse, call, shape.
 */


#ifndef _NGX_HTTP_TIKTOK_CALL_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_CALL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_module.h"


typedef const char *(*ngx_http_tiktok_call_check_pt)(json_t *data);


struct ngx_http_tiktok_call_s {
    /* what to ask, set by the handler */
    const char                     *endpoint;    /* "/v2/video/list/" */
    ngx_str_t                       args;        /* without "?" */
    ngx_str_t                       body;        /* JSON */
    ngx_uint_t                      pace;        /* per-client limit a
                                                    minute, or 0 */
    ngx_str_t                       key;         /* cache data under key */
    time_t                          ttl;
    ngx_http_tiktok_call_check_pt   check;       /* NULL, or why data is
                                                    not usable */
    unsigned                        posting:1;   /* "cannot post" answers */

    /* the outcome, for ctx->resume */
    ngx_int_t                       rc;          /* NGX_OK, NGX_DECLINED */
    json_t                         *data;        /* with NGX_OK */
    ngx_uint_t                      status;      /* with NGX_DECLINED */
    const char                     *code;
    const char                     *message;
    time_t                          retry_after; /* with a 429 */
    unsigned                        cached:1;    /* data from key */

    /* private */
    ngx_http_tiktok_api_call_t      api;
    ngx_http_tiktok_api_error_t     err;
    ngx_str_t                       user;
    ngx_http_tiktok_cache_t        *cache;
    ngx_event_t                     wait;
    ngx_msec_t                      deadline;
    unsigned                        retried:1;
    unsigned                        leader:1;
    unsigned                        cleanup:1;
};


/*
 * From a content handler (or a body handler that finalizes with what it
 * returns), with ctx->resume set: NGX_DONE, and ctx->resume(r, ctx) runs
 * with the outcome, its return value finalizing the request (NGX_DONE
 * after ngx_http_tiktok_wait when it goes on); or what ctx->resume
 * answered at once (rate-limited); or an HTTP error.  Token and scope
 * failures are answered here, without ctx->resume.
 */
ngx_int_t ngx_http_tiktok_call(ngx_http_request_t *r,
    ngx_http_tiktok_call_t *call);

/* the JSON error for a failed call (NGX_DECLINED), with Retry-After */
ngx_int_t ngx_http_tiktok_call_error(ngx_http_request_t *r,
    ngx_http_tiktok_call_t *call);

/*
 * TikTok's answer was not what the handler needs: recorded as status 502
 * tiktok_error with message, then ctx->resume runs again with NGX_DECLINED.
 */
ngx_int_t ngx_http_tiktok_call_reject(ngx_http_request_t *r,
    ngx_http_tiktok_call_t *call, const char *why, const char *message);

/*
 * The creator's posting options from creator info: cached per user five
 * minutes and asked of TikTok once for all requests that miss at the same
 * time, across workers.
 */
ngx_int_t ngx_http_tiktok_call_creator_info(ngx_http_request_t *r,
    ngx_http_tiktok_call_t *call);


#endif /* _NGX_HTTP_TIKTOK_CALL_H_INCLUDED_ */
