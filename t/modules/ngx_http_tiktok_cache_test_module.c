
/*
 * Test-only module: exposes the shared-memory cache API of
 * ngx_http_tiktok_module over HTTP so the suites can drive it in real
 * shared memory, across workers.  Never loaded in production; it is built
 * beside the module and resolves the module's symbols at load time (nginx
 * loads modules with RTLD_GLOBAL), so it must be loaded after it.
 *
 *   location /cache { tiktok_cache_test; }
 *
 *   GET /cache?op=set&user=U&key=K&value=V[&ttl=S]  -> stored | too_large
 *   GET /cache?op=get&user=U&key=K                  -> HIT V | STALE V | MISS
 *   GET /cache?op=delete&user=U&key=K               -> deleted | absent
 *   GET /cache?op=purge&user=U                      -> purged N
 *
 * and the token layer (refresh before use, one refresh per user):
 *
 *   location /token { tiktok_token_test; }
 *   GET /token with X-User-ID: U  -> "0 <sha256 of the token>", or the
 *                                    module's JSON error for the caller
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_module.h"
#include "ngx_http_tiktok_token.h"


static char *ngx_http_tiktok_cache_test(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tiktok_token_test(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_tiktok_token_test_handler(ngx_http_request_t *r);
static void ngx_http_tiktok_token_test_done(ngx_http_request_t *r);
static ngx_int_t ngx_http_tiktok_cache_test_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_tiktok_cache_test_arg(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);


static ngx_command_t  ngx_http_tiktok_cache_test_commands[] = {

    { ngx_string("tiktok_cache_test"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_tiktok_cache_test,
      0,
      0,
      NULL },

    { ngx_string("tiktok_token_test"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_tiktok_token_test,
      0,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_tiktok_cache_test_module_ctx = {
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
};


ngx_module_t  ngx_http_tiktok_cache_test_module = {
    NGX_MODULE_V1,
    &ngx_http_tiktok_cache_test_module_ctx,
    ngx_http_tiktok_cache_test_commands,
    NGX_HTTP_MODULE,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NGX_MODULE_V1_PADDING
};


static char *
ngx_http_tiktok_cache_test(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_tiktok_cache_test_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_tiktok_cache_test_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_str_t  raw;
    u_char    *dst, *src;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &raw) != NGX_OK) {
        ngx_str_null(value);
        return NGX_DECLINED;
    }

    value->data = ngx_pnalloc(r->pool, raw.len);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    dst = value->data;
    src = raw.data;
    ngx_unescape_uri(&dst, &src, raw.len, 0);
    value->len = dst - value->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tiktok_cache_test_handler(ngx_http_request_t *r)
{
    u_char                         *p;
    ngx_int_t                       rc, ttl;
    ngx_str_t                       op, user, key, value, s;
    ngx_buf_t                      *b;
    ngx_chain_t                     out;
    ngx_http_tiktok_cache_entry_t   entry;
    ngx_http_tiktok_main_conf_t    *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);

    if (tmcf == NULL || tmcf->cache == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    if (ngx_http_tiktok_cache_test_arg(r, "op", &op) == NGX_ERROR
        || ngx_http_tiktok_cache_test_arg(r, "user", &user) == NGX_ERROR
        || ngx_http_tiktok_cache_test_arg(r, "key", &key) == NGX_ERROR
        || ngx_http_tiktok_cache_test_arg(r, "value", &value) == NGX_ERROR)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&entry, sizeof(entry));
    rc = NGX_DECLINED;

    if (op.len == 3 && ngx_strncmp(op.data, "get", 3) == 0) {
        rc = ngx_http_tiktok_cache_get(tmcf->cache, &user, &key, r->pool,
                                       &entry);
        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* room for the longest answer: "STALE " and the cached value */
    p = ngx_pnalloc(r->pool, 64 + entry.value.len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = p;

    if (op.len == 3 && ngx_strncmp(op.data, "set", 3) == 0) {
        ttl = 0;

        if (ngx_http_tiktok_cache_test_arg(r, "ttl", &s) == NGX_OK) {
            ttl = ngx_atoi(s.data, s.len);
            if (ttl == NGX_ERROR) {
                return NGX_HTTP_BAD_REQUEST;
            }
        }

        rc = ngx_http_tiktok_cache_set(tmcf->cache, &user, &key, &value,
                                       (time_t) ttl);
        p = ngx_sprintf(p, rc == NGX_OK ? "stored" : "too_large");

    } else if (op.len == 3 && ngx_strncmp(op.data, "get", 3) == 0) {
        if (rc == NGX_OK) {
            p = ngx_sprintf(p, "HIT %V", &entry.value);

        } else if (rc == NGX_AGAIN) {
            p = ngx_sprintf(p, "STALE %V", &entry.value);

        } else {
            p = ngx_sprintf(p, "MISS");
        }

    } else if (op.len == 6 && ngx_strncmp(op.data, "delete", 6) == 0) {
        rc = ngx_http_tiktok_cache_delete(tmcf->cache, &user, &key);
        p = ngx_sprintf(p, rc == NGX_OK ? "deleted" : "absent");

    } else if (op.len == 5 && ngx_strncmp(op.data, "purge", 5) == 0) {
        p = ngx_sprintf(p, "purged %ui",
                        ngx_http_tiktok_cache_purge_user(tmcf->cache, &user));

    } else {
        return NGX_HTTP_BAD_REQUEST;
    }

    *p++ = '\n';

    b->last = p;
    b->memory = 1;
    b->last_buf = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "text/plain");

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static char *
ngx_http_tiktok_token_test(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_tiktok_token_test_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_tiktok_token_test_handler(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_str_t               name;
    ngx_http_tiktok_ctx_t  *ctx;
    ngx_http_variable_value_t  *v;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_tiktok_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&name, "http_x_user_id");
    v = ngx_http_get_variable(r, &name, ngx_hash_key(name.data, name.len));
    if (v == NULL || v->not_found || v->len == 0) {
        return NGX_HTTP_BAD_REQUEST;
    }

    ctx->user_id.data = v->data;
    ctx->user_id.len = v->len;
    ngx_str_set(&ctx->request_id, "token-test");

    ngx_http_set_ctx(r, ctx, ngx_http_tiktok_module);

    if (ngx_http_tiktok_token(r, ngx_http_tiktok_token_test_done) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_tiktok_token_test_done(ngx_http_request_t *r)
{
    u_char                  hash[32], *p;
    ngx_int_t               rc;
    ngx_buf_t              *b;
    ngx_chain_t             out;
    ngx_connection_t       *c;
    ngx_http_tiktok_ctx_t  *ctx;

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    if (ctx->token->status != NGX_HTTP_TIKTOK_TOKEN_OK) {
        ngx_http_finalize_request(r, ngx_http_tiktok_token_error(r));
        ngx_http_run_posted_requests(c);
        return;
    }

    b = ngx_create_temp_buf(r->pool, 128);
    if (b == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        ngx_http_run_posted_requests(c);
        return;
    }

    p = ngx_sprintf(b->last, "%ui ", ctx->token->status);

    if (ctx->token->status == NGX_HTTP_TIKTOK_TOKEN_OK) {
        ngx_http_tiktok_sha256(ctx->token->access_token.data,
                               ctx->token->access_token.len, hash);
        p = ngx_http_tiktok_hex(p, hash, sizeof(hash));
    }

    *p++ = '\n';
    b->last = p;
    b->last_buf = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "text/plain");

    rc = ngx_http_send_header(r);

    if (rc != NGX_ERROR && rc <= NGX_OK) {
        out.buf = b;
        out.next = NULL;
        rc = ngx_http_output_filter(r, &out);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}
