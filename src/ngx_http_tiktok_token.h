
/*
 * The caller's TikTok access token, for a request (ngx_http_tiktok_token.c):
 * the refresh lease with a request as its transport.  ctx->token is the
 * lease: a token TikTok refused goes by lease_invalidate(ctx->token).
 */


#ifndef _NGX_HTTP_TIKTOK_TOKEN_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_TOKEN_H_INCLUDED_


#include "ngx_http_tiktok_module.h"
#include "ngx_http_tiktok_lease.h"


ngx_int_t ngx_http_tiktok_token(ngx_http_request_t *r,
    ngx_http_tiktok_next_pt next);
ngx_int_t ngx_http_tiktok_token_error(ngx_http_request_t *r);
ngx_uint_t ngx_http_tiktok_token_has_scope(ngx_http_request_t *r,
    const char *scope);


#endif /* _NGX_HTTP_TIKTOK_TOKEN_H_INCLUDED_ */
