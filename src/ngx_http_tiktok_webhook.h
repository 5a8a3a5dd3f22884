
/*
 * TikTok's webhooks (tiktok_webhook, tiktok_webhooks): signed deliveries
 * of publish and authorization events, verified, recorded once and
 * applied in one transaction (DESIGN §8.1).
 */


#ifndef _NGX_HTTP_TIKTOK_WEBHOOK_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_WEBHOOK_H_INCLUDED_


#include "ngx_http_tiktok_module.h"


/* the largest delivery accepted (413 above) */
#define NGX_HTTP_TIKTOK_WEBHOOK_BODY_MAX  65536

/* how far TikTok's timestamp may be from our clock, seconds */
#define NGX_HTTP_TIKTOK_WEBHOOK_WINDOW    300


/* the tiktok_webhook directive (location): the delivery's handler */
char *ngx_http_tiktok_webhook(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* postconfiguration: the http-level directives a webhook needs */
ngx_int_t ngx_http_tiktok_webhook_postconfiguration(ngx_conf_t *cf);


#endif /* _NGX_HTTP_TIKTOK_WEBHOOK_H_INCLUDED_ */
