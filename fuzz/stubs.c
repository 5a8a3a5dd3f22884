
/*
 * What the fuzz targets need of nginx beyond pools, strings, arrays and
 * lists (which are nginx's own files, built alongside): the log, the
 * cached time and the module's index.  Nothing here is fetched.
 *
 * The log formats every message with nginx's own ngx_vslprintf into a
 * buffer and drops it: a format that does not match its arguments, or a
 * string that is not what its length says, is then read under ASan as
 * nginx would read it.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "fuzz.h"
#include "ngx_http_tiktok_api.h"


extern ngx_module_t  ngx_http_tiktok_module;


static ngx_time_t         fuzz_time;

/* every level, debug too: each message is formatted (and dropped) */
static ngx_log_t          fuzz_log = { NGX_LOG_DEBUG_ALL };

volatile ngx_time_t      *ngx_cached_time = &fuzz_time;
volatile ngx_msec_t       ngx_current_msec;
/* a cycle without configuration, as in nginx's exit: no metrics zone */
static ngx_cycle_t        fuzz_cycle;
volatile ngx_cycle_t     *ngx_cycle = &fuzz_cycle;


void
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
    u_char   buf[NGX_MAX_ERROR_STR];
    va_list  args;

    va_start(args, fmt);
    (void) ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);
}


void ngx_cdecl
ngx_conf_log_error(ngx_uint_t level, ngx_conf_t *cf, ngx_err_t err,
    const char *fmt, ...)
{
    u_char   buf[NGX_MAX_CONF_ERRSTR];
    va_list  args;

    va_start(args, fmt);
    (void) ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);
}


/* the targets give absolute names only */

ngx_int_t
ngx_conf_full_name(ngx_cycle_t *cycle, ngx_str_t *name, ngx_uint_t conf_prefix)
{
    return (name->len && name->data[0] == '/') ? NGX_OK : NGX_ERROR;
}


/* nginx's $request_id, or (a cookie, for JWTs) fuzz_variable */

ngx_str_t  fuzz_variable = ngx_string("0123456789abcdef0123456789abcdef");

ngx_http_variable_value_t *
ngx_http_get_indexed_variable(ngx_http_request_t *r, ngx_uint_t index)
{
    ngx_http_variable_value_t  *v;

    v = ngx_pcalloc(r->pool, sizeof(ngx_http_variable_value_t));
    if (v == NULL) {
        return NULL;
    }

    v->data = fuzz_variable.data;
    v->len = fuzz_variable.len;
    v->valid = 1;
    v->not_found = (fuzz_variable.len == 0);

    return v;
}


/*
 * The answer a handler sends: its status and body are kept in fuzz_reply
 * for the target, and every body must be a JSON object, as the API's
 * answers all are (DESIGN.md).
 */

fuzz_reply_t  fuzz_reply;


ngx_int_t
ngx_http_send_header(ngx_http_request_t *r)
{
    fuzz_reply.status = r->headers_out.status;
    fuzz_reply.body.len = 0;

    return NGX_OK;
}


ngx_int_t
ngx_http_output_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    json_t        *json;
    ngx_buf_t     *b;
    json_error_t   jerr;

    b = in->buf;

    if (in->next || !ngx_buf_in_memory(b)) {
        abort();
    }

    fuzz_reply.body.data = b->pos;
    fuzz_reply.body.len = b->last - b->pos;

    json = json_loadb((char *) b->pos, b->last - b->pos, 0, &jerr);

    if (!json_is_object(json)) {
        abort();
    }

    json_decref(json);

    return NGX_OK;
}


void
fuzz_init(void)
{
    /* a fixed "now", so that a crash replays: 2026-12-01T00:00:00Z */
    fuzz_time.sec = 1795996800;
    ngx_current_msec = (ngx_msec_t) fuzz_time.sec * 1000;

    ngx_memzero(&fuzz_reply, sizeof(fuzz_reply_t));

    /* ngx_http_get_module_*_conf(r, ngx_http_tiktok_module): index 0 */
    ngx_http_tiktok_module.ctx_index = 0;

}


ngx_pool_t *
fuzz_pool(void)
{
    ngx_pool_t  *pool;

    pool = ngx_create_pool(4096, &fuzz_log);
    if (pool == NULL) {
        abort();
    }

    return pool;
}


/*
 * A request with what the parsers read of one: a pool, a connection's
 * log, the module's main configuration and context, the arguments and a
 * body in memory.  Everything is from the pool, which fuzz_done() frees.
 */

ngx_http_request_t *
fuzz_request(ngx_pool_t *pool, void *main_conf, void *ctx)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    c = ngx_pcalloc(pool, sizeof(ngx_connection_t));
    r = ngx_pcalloc(pool, sizeof(ngx_http_request_t));

    if (c == NULL || r == NULL) {
        abort();
    }

    c->log = &fuzz_log;
    c->pool = pool;

    r->connection = c;
    r->pool = pool;
    r->main = r;

    r->main_conf = ngx_pcalloc(pool, sizeof(void *));
    r->loc_conf = ngx_pcalloc(pool, sizeof(void *));
    r->ctx = ngx_pcalloc(pool, sizeof(void *));

    if (r->main_conf == NULL || r->loc_conf == NULL || r->ctx == NULL) {
        abort();
    }

    r->main_conf[0] = main_conf;
    r->ctx[0] = ctx;

    return r;
}


/*
 * The input as a string of its own: malloc()ed to its exact size, not cut
 * from a pool block, so that ASan sees a read past its end.
 */

u_char *
fuzz_copy(ngx_pool_t *pool, const uint8_t *data, size_t size)
{
    u_char              *p;
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(pool, 0);
    p = malloc(size ? size : 1);

    if (cln == NULL || p == NULL) {
        abort();
    }

    ngx_memcpy(p, data, size);

    cln->handler = free;
    cln->data = p;

    return p;
}


/*
 * The module's main configuration as the parsers read it: the default
 * title limit and two pull URL prefixes, no cache zone.
 */

ngx_http_tiktok_main_conf_t *
fuzz_main_conf(void)
{
    ngx_str_t                           *pf;
    ngx_pool_t                          *pool;
    static ngx_http_tiktok_main_conf_t  *tmcf;

    if (tmcf) {
        return tmcf;
    }

    pool = fuzz_pool();

    tmcf = ngx_pcalloc(pool, sizeof(ngx_http_tiktok_main_conf_t));
    if (tmcf == NULL) {
        abort();
    }

    tmcf->pull_url_prefixes = ngx_array_create(pool, 2, sizeof(ngx_str_t));
    if (tmcf->pull_url_prefixes == NULL) {
        abort();
    }

    pf = ngx_array_push_n(tmcf->pull_url_prefixes, 2);
    if (pf == NULL) {
        abort();
    }

    ngx_str_set(&pf[0], "https://media.example.com/");
    ngx_str_set(&pf[1], "https://cdn.example.org/v/");

    tmcf->title_max_chars = 2200;

    ngx_str_set(&tmcf->client_key, "aw_fuzz_client_key");
    ngx_str_set(&tmcf->client_secret, "fuzz-client-secret");

    return tmcf;
}


/*
 * One of TikTok's answers, as the module reads every one: the v2 envelope
 * ({"data":{...},"error":{"code":"ok",...}}) or, for OAuth, the flat
 * object; HTTP 200 unless the input's last byte says 429 or 500 (a
 * refusal's code must be classified the same either way).  Checks what
 * the callers rely on: NGX_OK gives an object, NGX_DECLINED a code, and
 * every answer an error message.
 */

ngx_int_t
fuzz_answer(ngx_pool_t *pool, const uint8_t *data, size_t size,
    ngx_uint_t oauth, json_t **out, ngx_http_tiktok_api_error_t *err)
{
    ngx_int_t   rc;
    ngx_str_t   response;
    ngx_uint_t  status, kind;

    ngx_memzero(err, sizeof(ngx_http_tiktok_api_error_t));
    err->endpoint = "/fuzz/";
    *out = NULL;

    response.data = fuzz_copy(pool, data, size);
    response.len = size;

    status = (size && data[size - 1] == '\t') ? 429
             : (size && data[size - 1] == '\r') ? 500 : 200;

    rc = oauth ? ngx_http_tiktok_oauth_answer(pool, pool->log, status,
                                              &response, out, err)
               : ngx_http_tiktok_api_answer(pool, pool->log, status,
                                            &response, out, err);

    kind = ngx_http_tiktok_api_classify(rc, status, &err->code);

    if (err->message == NULL
        || (rc == NGX_OK && (!json_is_object(*out)
                             || kind != NGX_HTTP_TIKTOK_API_OK))
        || (rc == NGX_DECLINED && err->code.data == NULL)
        || (rc != NGX_OK && kind == NGX_HTTP_TIKTOK_API_OK)
        || (rc != NGX_OK && rc != NGX_DECLINED && rc != NGX_ERROR))
    {
        abort();
    }

    return rc;
}


/* the string member key of obj, as the reader had to copy it */

void
fuzz_same(json_t *obj, const char *key, ngx_str_t *s)
{
    json_t  *v;

    v = json_object_get(obj, key);

    if (json_is_string(v) && json_string_length(v)) {
        if (s->len != json_string_length(v) || s->data == NULL
            || ngx_memcmp(s->data, json_string_value(v), s->len) != 0)
        {
            abort();
        }

    } else if (s->len || s->data) {
        abort();
    }
}
