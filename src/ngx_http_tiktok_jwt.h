
/*
 * Identity from the app's JWT (DESIGN.md section 8.4): the tiktok_jwt
 * directive and the $tiktok_jwt_sub variable.
 */


#ifndef _NGX_HTTP_TIKTOK_JWT_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_JWT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef struct ngx_http_tiktok_jwt_conf_s  ngx_http_tiktok_jwt_conf_t;


/* tiktok_jwt: cmd->offset names an ngx_http_tiktok_jwt_conf_t pointer */
char *ngx_http_tiktok_jwt(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

/* adds $tiktok_jwt_sub (preconfiguration), indexed: evaluated once */
ngx_int_t ngx_http_tiktok_jwt_add_variable(ngx_conf_t *cf);

/*
 * A tiktok_api location whose tiktok_user_id names $tiktok_jwt_sub needs a
 * tiktok_jwt at its level or above: an [emerg] rather than a 401 for all.
 */
char *ngx_http_tiktok_jwt_check(ngx_conf_t *cf,
    ngx_http_complex_value_t *user_id, ngx_http_tiktok_jwt_conf_t *jcf);

/*
 * 1 when the location's tiktok_user_id names $tiktok_jwt_sub and the
 * request's token was not accepted; the caller answers with
 * ngx_http_tiktok_jwt_unauthenticated().
 */
ngx_uint_t ngx_http_tiktok_jwt_refused(ngx_http_request_t *r);

/* 401 unauthenticated with WWW-Authenticate */
ngx_int_t ngx_http_tiktok_jwt_unauthenticated(ngx_http_request_t *r);


#endif /* _NGX_HTTP_TIKTOK_JWT_H_INCLUDED_ */
