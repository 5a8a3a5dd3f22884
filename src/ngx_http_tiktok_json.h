
/*
 * jansson glue: JSON values tied to nginx pools and encoded into pool
 * memory.  jansson allocates with malloc; every value a request builds is
 * released by a pool cleanup, on every path.
 */


#ifndef _NGX_HTTP_TIKTOK_JSON_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_JSON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <jansson.h>


/*
 * NULL when root (as json_loadb returned it, err its error) is a JSON
 * object, else why a client's body is refused: a fixed text for the 400,
 * as jansson's own message quotes the input.
 */
const char *ngx_http_tiktok_json_refusal(json_t *root, json_error_t *err);

/* takes the reference: json is released with the pool (or now, on error) */
json_t *ngx_http_tiktok_json_own(ngx_pool_t *pool, json_t *json);

ngx_int_t ngx_http_tiktok_json_encode(ngx_pool_t *pool, json_t *json,
    ngx_str_t *out);

/* a JSON string, or JSON null for NULL data; NULL if not valid UTF-8 */
json_t *ngx_http_tiktok_json_str(u_char *data, size_t len);

/* sets key to value and takes the reference; NGX_ERROR if value is NULL */
ngx_int_t ngx_http_tiktok_json_set(json_t *obj, const char *key,
    json_t *value);

/* a string member copied into the pool; NGX_DECLINED when absent/empty */
ngx_int_t ngx_http_tiktok_json_get_str(ngx_pool_t *pool, json_t *obj,
    const char *key, ngx_str_t *value);

/* a positive integer member as decimal text (for a SQL parameter);
 * NGX_DECLINED otherwise */
ngx_int_t ngx_http_tiktok_json_get_int(ngx_pool_t *pool, json_t *obj,
    const char *key, ngx_str_t *value);


#endif /* _NGX_HTTP_TIKTOK_JSON_H_INCLUDED_ */
