
/*
 * A webhook delivery (POST to tiktok_webhook's location), end to end as
 * ngx_http_tiktok_webhook_process() takes it: the body from nginx's
 * chain, the TikTok-Signature header ("t=<unix>,s=<hex>"), the body's
 * JSON, its client_key and the fields tiktok.webhook_apply() is given
 * ("content" is JSON in a string).  There is no database, so a delivery
 * that gets that far is answered as the database being down.
 *
 * The input is the header's value, a newline, and the body.  Each is
 * tried as it is, which must be refused (401), and with a signature made
 * with the client secret over the body, now, which reaches the JSON.
 */


#include "fuzz.h"

#include "../src/ngx_http_tiktok_webhook.c"


static ngx_int_t
fuzz_deliver(ngx_pool_t *pool, ngx_str_t *header, ngx_str_t *body)
{
    ngx_buf_t                  *b;
    ngx_chain_t                *cl;
    ngx_table_elt_t            *h;
    ngx_http_request_t         *r;
    ngx_http_tiktok_ctx_t      *ctx;
    ngx_http_tiktok_webhook_t  *wh;

    ctx = ngx_pcalloc(pool, sizeof(ngx_http_tiktok_ctx_t));
    wh = ngx_pcalloc(pool, sizeof(ngx_http_tiktok_webhook_t));
    if (ctx == NULL || wh == NULL) {
        abort();
    }

    ctx->data = wh;
    ngx_str_set(&ctx->request_id, "fuzz-request");

    r = fuzz_request(pool, fuzz_main_conf(), ctx);

    if (ngx_list_init(&r->headers_in.headers, pool, 2,
                      sizeof(ngx_table_elt_t)) != NGX_OK
        || ngx_list_init(&r->headers_out.headers, pool, 4,
                         sizeof(ngx_table_elt_t)) != NGX_OK)
    {
        abort();
    }

    h = ngx_list_push(&r->headers_in.headers);
    if (h == NULL) {
        abort();
    }

    ngx_memzero(h, sizeof(ngx_table_elt_t));
    h->hash = 1;
    ngx_str_set(&h->key, "TikTok-Signature");
    h->value = *header;

    r->request_body = ngx_pcalloc(pool, sizeof(ngx_http_request_body_t));
    b = ngx_calloc_buf(pool);
    cl = ngx_alloc_chain_link(pool);

    if (r->request_body == NULL || b == NULL || cl == NULL) {
        abort();
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = 1;
    b->last_buf = 1;
    cl->buf = b;
    cl->next = NULL;
    r->request_body->bufs = cl;

    fuzz_reply.status = 0;

    return ngx_http_tiktok_webhook_process(r, wh);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                       *p, *last, *nl, *msg, mac[32];
    ngx_int_t                     rc;
    ngx_str_t                     header, body;
    ngx_pool_t                   *pool;
    ngx_http_tiktok_main_conf_t  *tmcf;

    fuzz_init();

    pool = fuzz_pool();
    tmcf = fuzz_main_conf();

    p = fuzz_copy(pool, data, size);
    last = p + size;
    nl = ngx_strlchr(p, last, '\n');

    header.data = p;
    header.len = (nl ? nl : last) - p;
    body.data = nl ? nl + 1 : last;
    body.len = last - body.data;

    /* as it came: nobody but TikTok has the secret */

    rc = fuzz_deliver(pool, &header, &body);

    if (rc != NGX_OK || fuzz_reply.status != NGX_HTTP_UNAUTHORIZED) {
        abort();
    }

    /* signed, now: "t=<now>,s=" HMAC-SHA256(secret, "<now>." body) */

    msg = ngx_pnalloc(pool, NGX_TIME_T_LEN + 1 + body.len);
    header.data = ngx_pnalloc(pool, NGX_TIME_T_LEN + 4 + 2 * sizeof(mac));
    if (msg == NULL || header.data == NULL) {
        abort();
    }

    p = ngx_sprintf(msg, "%T.", ngx_time());
    p = ngx_cpymem(p, body.data, body.len);

    ngx_http_tiktok_hmac_sha256(tmcf->client_secret.data,
                                tmcf->client_secret.len, msg, p - msg, mac);

    p = ngx_sprintf(header.data, "t=%T,s=", ngx_time());
    p = ngx_http_tiktok_hex(p, mac, sizeof(mac));
    header.len = p - header.data;

    rc = fuzz_deliver(pool, &header, &body);

    /* refused (400, 401), or taken and the database is down (503) */

    if (rc != NGX_OK
        || (fuzz_reply.status != NGX_HTTP_BAD_REQUEST
            && fuzz_reply.status != NGX_HTTP_UNAUTHORIZED
            && fuzz_reply.status != NGX_HTTP_SERVICE_UNAVAILABLE
            && fuzz_reply.status != NGX_HTTP_INTERNAL_SERVER_ERROR))
    {
        abort();
    }

    ngx_destroy_pool(pool);

    return 0;
}
