
/*
 * Checks on what a caller sends: pure functions over buffers.
 */


#ifndef _NGX_HTTP_TIKTOK_VALIDATE_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_VALIDATE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


ngx_int_t ngx_http_tiktok_utf8_count(ngx_str_t *s, size_t *chars,
    size_t *utf16);
ngx_uint_t ngx_http_tiktok_is_printable(ngx_str_t *s);
ngx_int_t ngx_http_tiktok_parse_rfc3339(ngx_str_t *s, time_t *t);
const char *ngx_http_tiktok_check_pull_url(ngx_str_t *url,
    ngx_array_t *prefixes);
ngx_uint_t ngx_http_tiktok_is_uuid(ngx_str_t *s);
ngx_uint_t ngx_http_tiktok_next_item(u_char **pos, u_char *last, u_char sep,
    ngx_str_t *item);


#endif /* _NGX_HTTP_TIKTOK_VALIDATE_H_INCLUDED_ */
