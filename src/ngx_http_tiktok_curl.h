
/*
 * libcurl's multi interface driven by nginx's event loop, for TikTok calls
 * made without a client request (publishing, status polling).
 */


#ifndef _NGX_HTTP_TIKTOK_CURL_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_CURL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>


typedef struct ngx_http_tiktok_curl_s  ngx_http_tiktok_curl_t;


/* per worker: created in init_process, destroyed in exit_process */
ngx_http_tiktok_curl_t *ngx_http_tiktok_curl_init(ngx_cycle_t *cycle,
    ngx_str_t *ca_file);
void ngx_http_tiktok_curl_destroy(ngx_http_tiktok_curl_t *curl);


#endif /* _NGX_HTTP_TIKTOK_CURL_H_INCLUDED_ */
