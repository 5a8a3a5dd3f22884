
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
#include "ngx_http_tiktok_api.h"
#include "ngx_http_tiktok_curl.h"
#include "ngx_http_tiktok_listen.h"
#include "ngx_http_tiktok_jwt.h"


#define NGX_HTTP_TIKTOK_REQUEST_ID_MAX  64

/* the largest video TikTok takes (TIKTOK_API.md: 4 GB, the smaller reading) */
#define NGX_HTTP_TIKTOK_VIDEO_MAX       4000000000LL


typedef struct ngx_http_tiktok_main_conf_s {
    ngx_str_t                    client_key;
    ngx_str_t                    client_secret;     /* from the environment */
    ngx_http_tiktok_keyring_t    keyring;
    ngx_str_t                    redirect_uri;
    ngx_str_t                    app_return_url;
    ngx_str_t                    scopes;            /* comma-separated */

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
    ngx_flag_t                   webhooks;          /* polling: safety net */

    ngx_int_t                    request_id_index;  /* $request_id */
    ngx_int_t                    jwt_sub_index;     /* $tiktok_jwt_sub */

    /* per worker, set in init_process */
    ngx_http_tiktok_pg_pool_t   *pg_pool;
    ngx_http_tiktok_curl_t      *curl;
    void                        *scheduler_ctx;
    void                        *metrics_ctx;
    ngx_http_tiktok_listen_t    *listener;

    ngx_uint_t                   configured;        /* tiktok_api is used */
    ngx_uint_t                   metrics;           /* tiktok_metrics is used */
    ngx_uint_t                   webhook;           /* tiktok_webhook is used */
} ngx_http_tiktok_main_conf_t;


typedef struct {
    ngx_http_complex_value_t    *user_id;
    ngx_flag_t                   api;
    ngx_http_tiktok_jwt_conf_t  *jwt;
} ngx_http_tiktok_loc_conf_t;


typedef struct ngx_http_tiktok_ctx_s   ngx_http_tiktok_ctx_t;
typedef struct ngx_http_tiktok_call_s  ngx_http_tiktok_call_t;
typedef struct ngx_http_tiktok_lease_s  ngx_http_tiktok_lease_t;

typedef void (*ngx_http_tiktok_next_pt)(ngx_http_request_t *r);


typedef ngx_int_t (*ngx_http_tiktok_endpoint_pt)(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx);


struct ngx_http_tiktok_ctx_s {
    ngx_str_t                    request_id;
    ngx_str_t                    user_id;
    ngx_str_t                    path;           /* after the location */
    ngx_str_t                   *route;          /* its name, for metrics */
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
    ngx_http_tiktok_lease_t     *token;
    ngx_http_tiktok_next_pt      next;           /* after an error row */

    /* the route's scope; the call in flight and the handler's resume */
    const char                  *scope;
    ngx_http_tiktok_call_t      *call;
    ngx_http_tiktok_endpoint_pt  resume;
};


extern ngx_module_t  ngx_http_tiktok_module;


#endif /* _NGX_HTTP_TIKTOK_MODULE_H_INCLUDED_ */
