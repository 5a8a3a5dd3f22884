
/*
 * The upload spool's janitor: removes the files no post needs any more.
 */


#ifndef _NGX_HTTP_TIKTOK_JANITOR_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_JANITOR_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_tiktok_module.h"


ngx_int_t ngx_http_tiktok_janitor_init(ngx_cycle_t *cycle,
    ngx_http_tiktok_main_conf_t *tmcf);


#endif /* _NGX_HTTP_TIKTOK_JANITOR_H_INCLUDED_ */
