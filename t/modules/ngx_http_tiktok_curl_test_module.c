
/*
 * Test-only module: drives ngx_http_tiktok_module's libcurl loop over HTTP
 * so the suites can run it in a real worker against the sandbox.  Never
 * loaded in production; it resolves the module's symbols at load time
 * (nginx loads modules with RTLD_GLOBAL), so it is loaded after it.
 *
 *   location /curl { tiktok_curl_test; }
 *
 *   GET /curl?url=U            an absolute URL (percent-encoded), or
 *            &url_hex=HEX      the same in hex, or
 *            &path=P           a path joined to tiktok_api_base_url
 *            [&method=GET|POST|PUT|DELETE]
 *            [&bearer=T | &bearer_hex=HEX]   the access token (hex keeps it
 *                                             out of nginx's own logs)
 *            [&ctype=CT][&body=B]            a memory body
 *            [&file=F&offset=N&length=N]     a file region as the body
 *            [&range=R]                      Content-Range
 *            [&timeout=MS][&max=BYTES][&id=REQUEST_ID]
 *            [&fresh=1]        on a new connection
 *            [&cancel=MS]      cancel after MS: {"cancelled":true,...}
 *            [&detach=1]       202 at once; the outcome goes to the error
 *                              log at notice level, as publishing will
 *                              run its calls
 *
 * The answer, once the request is done (the worker waits without
 * blocking):
 *
 *   {"rc":"OK"|"ERROR","status":N,"bytes":N,"sha256":"...",
 *    "elapsed_ms":N,"error":"...","retry_after":"...","timed_out":B,
 *    "too_large":B,"aborted":B,"active":N,"body":"..."}
 *
 * "active" is the number of this module's calls still in flight in this
 * worker;
 * "body" holds the first 64k of the answer.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_module.h"


#define NGX_HTTP_TIKTOK_CURL_TEST_BODY  65536


typedef struct {
    ngx_http_request_t          *r;         /* NULL when detached */
    ngx_pool_t                  *pool;      /* the call's own */
    ngx_event_t                  cancel;
    unsigned                     running:1;
} ngx_http_tiktok_curl_test_ctx_t;


static char *ngx_http_tiktok_curl_test(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_tiktok_curl_test_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_tiktok_curl_test_fill(ngx_http_request_t *r,
    ngx_http_tiktok_main_conf_t *tmcf, ngx_http_tiktok_curl_req_t *req,
    ngx_pool_t *pool);
static void ngx_http_tiktok_curl_test_done(ngx_http_tiktok_curl_req_t *req);
static void ngx_http_tiktok_curl_test_detached(
    ngx_http_tiktok_curl_req_t *req);
static void ngx_http_tiktok_curl_test_cancel(ngx_event_t *ev);
static void ngx_http_tiktok_curl_test_cleanup(void *data);
static ngx_int_t ngx_http_tiktok_curl_test_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *json);
static void ngx_http_tiktok_curl_test_drop(
    ngx_http_tiktok_curl_test_ctx_t *ctx);
static ngx_int_t ngx_http_tiktok_curl_test_json(ngx_pool_t *pool,
    ngx_http_tiktok_curl_req_t *req, ngx_str_t *json);
static ngx_int_t ngx_http_tiktok_curl_test_arg(ngx_http_request_t *r,
    ngx_pool_t *pool, const char *name, ngx_str_t *value);
static ngx_int_t ngx_http_tiktok_curl_test_unhex(ngx_pool_t *pool,
    ngx_str_t *hex, ngx_str_t *value);
static u_char *ngx_http_tiktok_curl_test_escape(u_char *dst, u_char *src,
    size_t len);


/* this module's calls in flight in this worker */
static ngx_uint_t  ngx_http_tiktok_curl_test_active;


static ngx_command_t  ngx_http_tiktok_curl_test_commands[] = {

    { ngx_string("tiktok_curl_test"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_tiktok_curl_test,
      0,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_tiktok_curl_test_module_ctx = {
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
};


ngx_module_t  ngx_http_tiktok_curl_test_module = {
    NGX_MODULE_V1,
    &ngx_http_tiktok_curl_test_module_ctx,
    ngx_http_tiktok_curl_test_commands,
    NGX_HTTP_MODULE,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NGX_MODULE_V1_PADDING
};


static char *
ngx_http_tiktok_curl_test(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_tiktok_curl_test_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_tiktok_curl_test_handler(ngx_http_request_t *r)
{
    ngx_int_t                         rc, ms;
    ngx_str_t                         v, json;
    ngx_pool_t                       *pool;
    ngx_uint_t                        detach;
    ngx_pool_cleanup_t               *cln;
    ngx_http_tiktok_curl_req_t       *req;
    ngx_http_tiktok_main_conf_t      *tmcf;
    ngx_http_tiktok_curl_test_ctx_t  *ctx;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);

    if (tmcf == NULL || tmcf->curl == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    detach = (ngx_http_tiktok_curl_test_arg(r, r->pool, "detach", &v)
              == NGX_OK && v.len == 1 && v.data[0] == '1');

    /*
     * The call lives in a pool of its own, as a publisher job's calls do:
     * destroying that pool is how a call is cancelled.  A detached call
     * keeps it until it is done, whatever the client does; otherwise the
     * request's pool cleanup destroys it.
     */
    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_pcalloc(detach ? pool : r->pool,
                      sizeof(ngx_http_tiktok_curl_test_ctx_t));
    if (ctx == NULL) {
        ngx_destroy_pool(pool);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->pool = pool;

    if (!detach) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            ngx_destroy_pool(pool);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cln->handler = ngx_http_tiktok_curl_test_cleanup;
        cln->data = ctx;

        ctx->r = r;
        ctx->cancel.handler = ngx_http_tiktok_curl_test_cancel;
        ctx->cancel.data = ctx;
        ctx->cancel.log = r->connection->log;
    }

    req = ngx_http_tiktok_curl_req_create(pool, detach ? ngx_cycle->log
                                                       : r->connection->log);
    if (req == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto failed;
    }

    rc = ngx_http_tiktok_curl_test_fill(r, tmcf, req, pool);
    if (rc != NGX_OK) {
        goto failed;
    }

    req->handler = detach ? ngx_http_tiktok_curl_test_detached
                          : ngx_http_tiktok_curl_test_done;
    req->data = ctx;

    rc = ngx_http_tiktok_curl_start(tmcf->curl, req);

    if (rc != NGX_OK) {
        rc = (rc == NGX_DECLINED) ? NGX_HTTP_SERVICE_UNAVAILABLE
                                  : NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto failed;
    }

    ctx->running = 1;
    ngx_http_tiktok_curl_test_active++;

    if (detach) {
        ngx_str_set(&json, "{\"started\":true}\n");
        return ngx_http_tiktok_curl_test_send(r, NGX_HTTP_ACCEPTED, &json);
    }

    if (ngx_http_tiktok_curl_test_arg(r, r->pool, "cancel", &v) == NGX_OK) {
        ms = ngx_atoi(v.data, v.len);
        if (ms == NGX_ERROR) {
            /* the request's pool cleanup cancels the call */
            return NGX_HTTP_BAD_REQUEST;
        }

        ngx_add_timer(&ctx->cancel, (ngx_msec_t) ms);
    }

    /* a client that goes away finalizes the request: its pool's cleanup
     * cancels the call */
    r->read_event_handler = ngx_http_test_reading;

    r->main->count++;

    return NGX_DONE;

failed:

    if (detach) {
        ngx_destroy_pool(pool);
    }

    return rc;
}


static ngx_int_t
ngx_http_tiktok_curl_test_fill(ngx_http_request_t *r,
    ngx_http_tiktok_main_conf_t *tmcf, ngx_http_tiktok_curl_req_t *req,
    ngx_pool_t *pool)
{
    u_char                     *p;
    ngx_int_t                   n;
    ngx_str_t                   v, path;
    ngx_pool_cleanup_t         *cln;
    ngx_pool_cleanup_file_t    *clnf;

#define ngx_http_tiktok_curl_test_get(name, value)                            \
    (ngx_http_tiktok_curl_test_arg(r, pool, name, value) == NGX_OK            \
     && (value)->len)

    if (ngx_http_tiktok_curl_test_get("url", &v)) {
        req->url = v;

    } else if (ngx_http_tiktok_curl_test_get("url_hex", &v)) {
        if (ngx_http_tiktok_curl_test_unhex(pool, &v, &req->url) != NGX_OK) {
            return NGX_HTTP_BAD_REQUEST;
        }

    } else if (ngx_http_tiktok_curl_test_get("path", &path)) {
        req->url.len = tmcf->api_base_url.len + path.len;
        req->url.data = ngx_pnalloc(pool, req->url.len);
        if (req->url.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_cpymem(req->url.data, tmcf->api_base_url.data,
                       tmcf->api_base_url.len);
        ngx_memcpy(p, path.data, path.len);

    } else {
        return NGX_HTTP_BAD_REQUEST;
    }

    req->method = "GET";

    if (ngx_http_tiktok_curl_test_get("method", &v)) {
        p = ngx_pnalloc(pool, v.len + 1);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        (void) ngx_cpystrn(p, v.data, v.len + 1);
        req->method = (const char *) p;
    }

    if (ngx_http_tiktok_curl_test_get("bearer", &v)) {
        req->bearer = v;

    } else if (ngx_http_tiktok_curl_test_get("bearer_hex", &v)) {
        if (ngx_http_tiktok_curl_test_unhex(pool, &v, &req->bearer)
            != NGX_OK)
        {
            return NGX_HTTP_BAD_REQUEST;
        }
    }

    (void) ngx_http_tiktok_curl_test_get("ctype", &req->content_type);
    (void) ngx_http_tiktok_curl_test_get("body", &req->body);
    (void) ngx_http_tiktok_curl_test_get("range", &req->content_range);
    (void) ngx_http_tiktok_curl_test_get("id", &req->request_id);

    if (ngx_http_tiktok_curl_test_get("fresh", &v)) {
        req->fresh = (v.len == 1 && v.data[0] == '1');
    }

    if (ngx_http_tiktok_curl_test_get("timeout", &v)) {
        n = ngx_atoi(v.data, v.len);
        if (n == NGX_ERROR) {
            return NGX_HTTP_BAD_REQUEST;
        }

        req->timeout = (ngx_msec_t) n;
    }

    if (ngx_http_tiktok_curl_test_get("max", &v)) {
        n = ngx_atoi(v.data, v.len);
        if (n == NGX_ERROR) {
            return NGX_HTTP_BAD_REQUEST;
        }

        req->max_response = (size_t) n;
    }

    if (ngx_http_tiktok_curl_test_get("file", &v)) {
        p = ngx_pnalloc(pool, v.len + 1);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        (void) ngx_cpystrn(p, v.data, v.len + 1);

        cln = ngx_pool_cleanup_add(pool, sizeof(ngx_pool_cleanup_file_t));
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        req->fd = ngx_open_file(p, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

        if (req->fd == NGX_INVALID_FILE) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, ngx_errno,
                          ngx_open_file_n " \"%s\" failed", p);
            return NGX_HTTP_NOT_FOUND;
        }

        clnf = cln->data;
        clnf->fd = req->fd;
        clnf->name = p;
        clnf->log = ngx_cycle->log;
        cln->handler = ngx_pool_cleanup_file;

        if (ngx_http_tiktok_curl_test_get("offset", &v)) {
            req->offset = ngx_atoof(v.data, v.len);
        }

        if (ngx_http_tiktok_curl_test_get("length", &v)) {
            req->length = ngx_atoof(v.data, v.len);
        }

        if (req->offset < 0 || req->length <= 0) {
            return NGX_HTTP_BAD_REQUEST;
        }
    }

#undef ngx_http_tiktok_curl_test_get

    return NGX_OK;
}


static void
ngx_http_tiktok_curl_test_done(ngx_http_tiktok_curl_req_t *req)
{
    ngx_int_t                         rc;
    ngx_str_t                         json;
    ngx_connection_t                 *c;
    ngx_http_request_t               *r;
    ngx_http_tiktok_curl_test_ctx_t  *ctx;

    ctx = req->data;
    r = ctx->r;
    c = r->connection;

    ctx->running = 0;
    ngx_http_tiktok_curl_test_active--;

    if (ctx->cancel.timer_set) {
        ngx_del_timer(&ctx->cancel);
    }

    if (ngx_http_tiktok_curl_test_json(r->pool, req, &json) != NGX_OK) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else {
        rc = ngx_http_tiktok_curl_test_send(r, NGX_HTTP_OK, &json);
    }

    /* the request's pool cleanup destroys the call's pool */
    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_tiktok_curl_test_detached(ngx_http_tiktok_curl_req_t *req)
{
    u_char                            hash[32], hex[64];
    ngx_http_tiktok_curl_test_ctx_t  *ctx;

    ctx = req->data;

    ngx_http_tiktok_curl_test_active--;

    ngx_http_tiktok_sha256(req->response.data, req->response.len, hash);
    (void) ngx_http_tiktok_hex(hex, hash, sizeof(hash));

    ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                  "tiktok curl test [%V]: rc=%s status=%l bytes=%uz "
                  "sha256=%*s elapsed=%M aborted=%ud error=\"%s\"",
                  &req->request_id, req->rc == NGX_OK ? "OK" : "ERROR",
                  req->status, req->response.len, (size_t) 64, hex,
                  req->elapsed, (ngx_uint_t) req->aborted, req->error);

    /* the request, and this context, go with the pool */
    ngx_destroy_pool(ctx->pool);
}


/* the call is given up: destroying its pool cancels it */

static void
ngx_http_tiktok_curl_test_drop(ngx_http_tiktok_curl_test_ctx_t *ctx)
{
    if (ctx->running) {
        ctx->running = 0;
        ngx_http_tiktok_curl_test_active--;
    }

    if (ctx->pool) {
        ngx_destroy_pool(ctx->pool);
        ctx->pool = NULL;
    }
}


static void
ngx_http_tiktok_curl_test_cancel(ngx_event_t *ev)
{
    ngx_http_tiktok_curl_test_ctx_t *ctx = ev->data;

    u_char              *p;
    ngx_int_t            rc;
    ngx_str_t            json;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ctx->r;
    c = r->connection;

    ngx_http_tiktok_curl_test_drop(ctx);

    json.data = ngx_pnalloc(r->pool, 64);
    if (json.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        ngx_http_run_posted_requests(c);
        return;
    }

    p = ngx_sprintf(json.data, "{\"cancelled\":true,\"active\":%ui}\n",
                    ngx_http_tiktok_curl_test_active);
    json.len = p - json.data;

    rc = ngx_http_tiktok_curl_test_send(r, NGX_HTTP_OK, &json);

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_tiktok_curl_test_cleanup(void *data)
{
    ngx_http_tiktok_curl_test_ctx_t *ctx = data;

    if (ctx->cancel.timer_set) {
        ngx_del_timer(&ctx->cancel);
    }

    ngx_http_tiktok_curl_test_drop(ctx);
}


static ngx_int_t
ngx_http_tiktok_curl_test_json(ngx_pool_t *pool,
    ngx_http_tiktok_curl_req_t *req, ngx_str_t *json)
{
    u_char  *p, hash[32];
    size_t   len, body;

    body = ngx_min(req->response.len, NGX_HTTP_TIKTOK_CURL_TEST_BODY);

    len = sizeof("{\"rc\":\"ERROR\",\"status\":,\"bytes\":,\"sha256\":\"\","
                 "\"elapsed_ms\":,\"error\":\"\",\"retry_after\":\"\","
                 "\"timed_out\":false,\"too_large\":false,"
                 "\"aborted\":false,\"active\":,\"body\":\"\"}\n")
          + 4 * NGX_INT64_LEN + 64
          + 6 * (ngx_strlen(req->error) + req->retry_after.len + body);

    json->data = ngx_pnalloc(pool, len);
    if (json->data == NULL) {
        return NGX_ERROR;
    }

    ngx_http_tiktok_sha256(req->response.data, req->response.len, hash);

    p = ngx_sprintf(json->data, "{\"rc\":\"%s\",\"status\":%l,\"bytes\":%uz,"
                    "\"sha256\":\"",
                    req->rc == NGX_OK ? "OK" : "ERROR", req->status,
                    req->response.len);
    p = ngx_http_tiktok_hex(p, hash, sizeof(hash));
    p = ngx_sprintf(p, "\",\"elapsed_ms\":%M,\"error\":\"", req->elapsed);
    p = ngx_http_tiktok_curl_test_escape(p, (u_char *) req->error,
                                         ngx_strlen(req->error));
    p = ngx_sprintf(p, "\",\"retry_after\":\"");
    p = ngx_http_tiktok_curl_test_escape(p, req->retry_after.data,
                                         req->retry_after.len);
    p = ngx_sprintf(p, "\",\"timed_out\":%s,\"too_large\":%s,"
                    "\"aborted\":%s,\"active\":%ui,\"body\":\"",
                    req->timed_out ? "true" : "false",
                    req->too_large ? "true" : "false",
                    req->aborted ? "true" : "false",
                    ngx_http_tiktok_curl_test_active);
    p = ngx_http_tiktok_curl_test_escape(p, req->response.data, body);
    p = ngx_sprintf(p, "\"}\n");

    json->len = p - json->data;

    return NGX_OK;
}


/* JSON string content; bytes outside printable ASCII as \u00XX */

static u_char *
ngx_http_tiktok_curl_test_escape(u_char *dst, u_char *src, size_t len)
{
    size_t  i;

    static u_char  hex[] = "0123456789abcdef";

    for (i = 0; i < len; i++) {
        if (src[i] >= 0x20 && src[i] < 0x7f && src[i] != '"'
            && src[i] != '\\')
        {
            *dst++ = src[i];
            continue;
        }

        *dst++ = '\\';
        *dst++ = 'u';
        *dst++ = '0';
        *dst++ = '0';
        *dst++ = hex[src[i] >> 4];
        *dst++ = hex[src[i] & 0xf];
    }

    return dst;
}


static ngx_int_t
ngx_http_tiktok_curl_test_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *json)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = json->data;
    b->last = json->data + json->len;
    b->memory = 1;
    b->last_buf = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = json->len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* an argument, percent-decoded into pool; NGX_DECLINED when absent */

static ngx_int_t
ngx_http_tiktok_curl_test_arg(ngx_http_request_t *r, ngx_pool_t *pool,
    const char *name, ngx_str_t *value)
{
    u_char     *dst, *src;
    ngx_str_t   raw;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &raw) != NGX_OK) {
        ngx_str_null(value);
        return NGX_DECLINED;
    }

    value->data = ngx_pnalloc(pool, raw.len + 1);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    dst = value->data;
    src = raw.data;
    ngx_unescape_uri(&dst, &src, raw.len, 0);
    value->len = dst - value->data;
    *dst = '\0';

    return NGX_OK;
}


/* hex keeps a token or an upload URL out of nginx's own request logs */

static ngx_int_t
ngx_http_tiktok_curl_test_unhex(ngx_pool_t *pool, ngx_str_t *hex,
    ngx_str_t *value)
{
    if (hex->len % 2) {
        return NGX_ERROR;
    }

    value->len = hex->len / 2;
    value->data = ngx_pnalloc(pool, value->len);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_tiktok_unhex(value->data, hex->data, hex->len);
}
