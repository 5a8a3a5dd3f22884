
/*
 * The publisher's per-worker scheduler (ngx_http_tiktok_scheduler.c).
 */


#ifndef _NGX_HTTP_TIKTOK_SCHEDULER_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_SCHEDULER_H_INCLUDED_


#include "ngx_http_tiktok_module.h"


ngx_int_t ngx_http_tiktok_scheduler_init(ngx_cycle_t *cycle,
    ngx_http_tiktok_main_conf_t *tmcf);
void ngx_http_tiktok_scheduler_kick(ngx_http_tiktok_main_conf_t *tmcf);
void ngx_http_tiktok_scheduler_exit(ngx_http_tiktok_main_conf_t *tmcf);


#endif /* _NGX_HTTP_TIKTOK_SCHEDULER_H_INCLUDED_ */
