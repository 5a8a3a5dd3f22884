
#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_tiktok_json.h"


static void ngx_http_tiktok_json_cleanup(void *data);


json_t *
ngx_http_tiktok_json_own(ngx_pool_t *pool, json_t *json)
{
    ngx_pool_cleanup_t  *cln;

    if (json == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        json_decref(json);
        return NULL;
    }

    cln->handler = ngx_http_tiktok_json_cleanup;
    cln->data = json;

    return json;
}


static void
ngx_http_tiktok_json_cleanup(void *data)
{
    json_decref((json_t *) data);
}


const char *
ngx_http_tiktok_json_refusal(json_t *root, json_error_t *err)
{
    if (root != NULL) {
        return json_is_object(root) ? NULL : "The body must be a JSON object";
    }

    switch (json_error_code(err)) {

    case json_error_invalid_utf8:
        return "The body is not valid UTF-8";

    case json_error_stack_overflow:
        return "The body nests too deeply";

    case json_error_duplicate_key:
        return "A key is given more than once";

    case json_error_null_byte_in_key:
        return "A key must not contain NUL characters";

    case json_error_null_character:
        return "The body must not contain NUL characters";

    default:
        return "The body is not valid JSON";
    }
}


ngx_int_t
ngx_http_tiktok_json_encode(ngx_pool_t *pool, json_t *json, ngx_str_t *out)
{
    size_t   len;
    u_char  *p;

    len = json_dumpb(json, NULL, 0, JSON_COMPACT);
    if (len == 0) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (json_dumpb(json, (char *) p, len, JSON_COMPACT) != len) {
        return NGX_ERROR;
    }

    out->data = p;
    out->len = len;

    return NGX_OK;
}


json_t *
ngx_http_tiktok_json_str(u_char *data, size_t len)
{
    return data ? json_stringn((const char *) data, len) : json_null();
}


ngx_int_t
ngx_http_tiktok_json_set(json_t *obj, const char *key, json_t *value)
{
    if (value == NULL) {
        return NGX_ERROR;
    }

    return json_object_set_new(obj, key, value) == 0 ? NGX_OK : NGX_ERROR;
}


ngx_int_t
ngx_http_tiktok_json_get_str(ngx_pool_t *pool, json_t *obj, const char *key,
    ngx_str_t *value)
{
    size_t   len;
    json_t  *v;

    v = json_object_get(obj, key);

    if (!json_is_string(v) || (len = json_string_length(v)) == 0) {
        ngx_str_null(value);
        return NGX_DECLINED;
    }

    value->data = ngx_pnalloc(pool, len);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(value->data, json_string_value(v), len);
    value->len = len;

    return NGX_OK;
}


ngx_int_t
ngx_http_tiktok_json_get_int(ngx_pool_t *pool, json_t *obj, const char *key,
    ngx_str_t *value)
{
    json_t      *v;
    json_int_t   n;

    v = json_object_get(obj, key);

    if (!json_is_integer(v) || (n = json_integer_value(v)) <= 0) {
        return NGX_DECLINED;
    }

    value->data = ngx_pnalloc(pool, NGX_INT64_LEN);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    value->len = ngx_sprintf(value->data, "%L", (int64_t) n) - value->data;

    return NGX_OK;
}
