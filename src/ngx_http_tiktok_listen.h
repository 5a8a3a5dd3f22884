
/*
 * The listener: one PostgreSQL connection per worker that only LISTENs
 * (tiktok_purge, tiktok_publish) and reads the purge records the node has
 * not applied yet, when it (re)connects and every few seconds, so a purge
 * reaches the node whatever happened to its notification.
 */


#ifndef _NGX_HTTP_TIKTOK_LISTEN_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_LISTEN_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


typedef struct ngx_http_tiktok_listen_s  ngx_http_tiktok_listen_t;


/* tmcf: ngx_http_tiktok_main_conf_t; NULL when out of memory */
ngx_http_tiktok_listen_t *ngx_http_tiktok_listen_start(ngx_cycle_t *cycle,
    void *tmcf);
void ngx_http_tiktok_listen_stop(ngx_http_tiktok_listen_t *l);


#endif /* _NGX_HTTP_TIKTOK_LISTEN_H_INCLUDED_ */
