
/*
 * The OAuth callback's query (?code=...&state=...&error=...): the three
 * arguments read and percent-decoded, then the request line and the
 * arguments nginx logs redacted, from the parsed request and from the
 * original URI (an error page's case).  Nothing after any "=" survives
 * the redaction but "REDACTED".
 */


#include "fuzz.h"

#include "../src/ngx_http_tiktok_handler_oauth.c"
#include "ngx_http_tiktok_validate.h"


static void
fuzz_check_redacted(ngx_http_request_t *r, ngx_str_t *method)
{
    u_char     *p, *last, *eq;
    ngx_str_t   item, line;

    p = r->args.data;
    last = p + r->args.len;

    while (p < last && ngx_http_tiktok_next_item(&p, last, '&', &item)) {
        eq = ngx_strlchr(item.data, item.data + item.len, '=');
        if (eq == NULL) {
            continue;
        }

        if ((size_t) (item.data + item.len - eq) != sizeof("=REDACTED") - 1
            || ngx_strncmp(eq, "=REDACTED", sizeof("=REDACTED") - 1) != 0)
        {
            abort();
        }
    }

    /* "METHOD /uri?args HTTP/1.1": the args are the line's own */

    line = r->request_line;

    if (line.len < method->len + 1
        || ngx_strncmp(line.data, method->data, method->len) != 0
        || r->args.data < line.data
        || r->args.data + r->args.len + sizeof(" HTTP/1.1") - 1
           != line.data + line.len)
    {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                   *p;
    ngx_str_t                 method;
    ngx_pool_t               *pool;
    ngx_http_request_t       *r;
    ngx_http_tiktok_ctx_t    *ctx;
    ngx_http_tiktok_oauth_t  *oa;

    static ngx_str_t  uri = ngx_string("/api/tiktok/callback");

    fuzz_init();

    pool = fuzz_pool();

    ctx = ngx_pcalloc(pool, sizeof(ngx_http_tiktok_ctx_t));
    if (ctx == NULL) {
        abort();
    }

    r = fuzz_request(pool, fuzz_main_conf(), ctx);

    ngx_str_set(&r->method_name, "GET");
    ngx_str_set(&r->http_protocol, "HTTP/1.1");
    r->uri = uri;
    r->args.data = fuzz_copy(pool, data, size);
    r->args.len = size;

    if (ngx_http_tiktok_callback_redact(r, ctx) != NGX_OK) {
        abort();
    }

    oa = ctx->data;

    if (oa->code.len > size || oa->state.len > size || oa->error.len > size) {
        abort();
    }

    if (size) {
        fuzz_check_redacted(r, &r->method_name);
    }

    /* an error page's: from the client's unparsed URI and request line */

    p = ngx_pnalloc(pool, sizeof("POST ") - 1 + uri.len + 1 + size
                          + sizeof(" HTTP/1.1") - 1);
    if (p == NULL) {
        abort();
    }

    r->request_line.data = p;
    p = ngx_cpymem(p, "POST ", 5);
    r->unparsed_uri.data = p;
    p = ngx_cpymem(p, uri.data, uri.len);
    *p++ = '?';
    p = ngx_cpymem(p, data, size);
    r->unparsed_uri.len = p - r->unparsed_uri.data;
    p = ngx_cpymem(p, " HTTP/1.1", sizeof(" HTTP/1.1") - 1);
    r->request_line.len = p - r->request_line.data;

    ngx_http_tiktok_callback_redact_original(r);

    ngx_str_set(&method, "POST");

    if (size) {
        fuzz_check_redacted(r, &method);
    }

    ngx_destroy_pool(pool);

    return 0;
}
