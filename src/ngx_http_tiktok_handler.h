
/*
 * The content handler and the endpoints its routes lead to.
 */


#ifndef _NGX_HTTP_TIKTOK_HANDLER_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_HANDLER_H_INCLUDED_


#include "ngx_http_tiktok_module.h"


ngx_int_t ngx_http_tiktok_handler(ngx_http_request_t *r);
/* the caller's sane X-Request-ID, else $request_id (the webhook's too) */
void ngx_http_tiktok_request_id(ngx_http_request_t *r, ngx_str_t *id);
char *ngx_http_tiktok_error_pages_conf(ngx_conf_t *cf,
    ngx_http_core_loc_conf_t *clcf);

/* ngx_http_tiktok_handler_status.c */
ngx_int_t ngx_http_tiktok_status_handler(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx);

/* ngx_http_tiktok_handler_oauth.c */

/* the account in TikTok's user info answer (/v2/user/info/) */
typedef struct {
    ngx_str_t                     open_id;
    ngx_str_t                     display_name;  /* empty when absent */
    ngx_str_t                     avatar_url;    /* empty when absent */
} ngx_http_tiktok_oauth_user_t;

ngx_int_t ngx_http_tiktok_connect_handler(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx);
ngx_int_t ngx_http_tiktok_callback_redact(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx);
void ngx_http_tiktok_callback_redact_original(ngx_http_request_t *r);
ngx_int_t ngx_http_tiktok_callback_handler(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx);
ngx_int_t ngx_http_tiktok_disconnect_handler(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx);
/*
 * Reads the user info's data (the envelope's, api_answer's): NGX_OK with
 * the account's open_id, else NGX_ERROR and why in reason
 */
ngx_int_t ngx_http_tiktok_oauth_user_read(ngx_pool_t *pool, json_t *data,
    ngx_http_tiktok_oauth_user_t *user, const char **reason);

/* ngx_http_tiktok_handler_videos.c */
ngx_int_t ngx_http_tiktok_videos_handler(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx);
ngx_int_t ngx_http_tiktok_metrics_handler(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx);

/* ngx_http_tiktok_handler_publish.c */
ngx_int_t ngx_http_tiktok_post_init(ngx_conf_t *cf);
ngx_int_t ngx_http_tiktok_post_handler(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx);

/* ngx_http_tiktok_handler_creator.c */
ngx_int_t ngx_http_tiktok_creator_handler(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx);

/* ngx_http_tiktok_handler_posts.c */
ngx_int_t ngx_http_tiktok_posts_handler(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx);
ngx_int_t ngx_http_tiktok_post_item_handler(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx);


#endif /* _NGX_HTTP_TIKTOK_HANDLER_H_INCLUDED_ */
