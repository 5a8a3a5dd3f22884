
/*
 * The answers every endpoint shares (ngx_http_tiktok_reply.c).
 */


#ifndef _NGX_HTTP_TIKTOK_REPLY_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_REPLY_H_INCLUDED_


#include "ngx_http_tiktok_module.h"


ngx_int_t ngx_http_tiktok_send_json(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *body);
ngx_int_t ngx_http_tiktok_send_redirect(ngx_http_request_t *r,
    const char *name, ngx_str_t *url);
ngx_int_t ngx_http_tiktok_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *field,
    const char *message);
void ngx_http_tiktok_finalize(ngx_http_request_t *r, ngx_int_t rc);
ngx_int_t ngx_http_tiktok_wait(ngx_http_request_t *r);
ngx_int_t ngx_http_tiktok_db_error(ngx_http_request_t *r, ngx_int_t rc);
u_char *ngx_http_tiktok_rfc3339(u_char *p, time_t t);
ngx_http_tiktok_pg_query_t *ngx_http_tiktok_query_new(ngx_http_request_t *r,
    ngx_http_tiktok_pg_handler_pt handler);
ngx_int_t ngx_http_tiktok_query_run(ngx_http_request_t *r,
    ngx_http_tiktok_pg_query_t *q);
ngx_int_t ngx_http_tiktok_query_wait(ngx_http_request_t *r,
    const char *sql, ngx_uint_t n, ngx_str_t *params,
    ngx_http_tiktok_pg_handler_pt handler);
ngx_int_t ngx_http_tiktok_query(ngx_http_request_t *r, const char *sql,
    ngx_uint_t n, ngx_str_t *params, ngx_http_tiktok_pg_handler_pt handler);
void ngx_http_tiktok_spool_remove(ngx_http_request_t *r, PGresult *res);
ngx_int_t ngx_http_tiktok_error_add(ngx_http_tiktok_pg_query_t *q,
    ngx_str_t *user, ngx_str_t *request_id, ngx_http_tiktok_api_error_t *err);
ngx_int_t ngx_http_tiktok_record_error(ngx_http_request_t *r,
    ngx_http_tiktok_api_error_t *err, ngx_uint_t level,
    ngx_http_tiktok_next_pt next);


#endif /* _NGX_HTTP_TIKTOK_REPLY_H_INCLUDED_ */
