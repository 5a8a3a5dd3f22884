
/*
 * TikTok's video list and video query answers (/v2/video/list/ and
 * /v2/video/query/): the envelope, then the module's own mapping of them,
 * ngx_http_tiktok_videos_page() and ngx_http_tiktok_metrics_fill(), with
 * ids above 2^53 (as numbers or strings) among those asked for.
 *
 * What the module answers must be JSON again: the page (without its
 * closing brace, as cached) and every video's metrics entry parse.
 */


#include "fuzz.h"

#include "../src/ngx_http_tiktok_handler_videos.c"


static void
fuzz_reparse(ngx_str_t *text, ngx_uint_t open)
{
    u_char        *p;
    json_t        *json;
    json_error_t   jerr;

    p = malloc(text->len + 1);
    if (p == NULL) {
        abort();
    }

    ngx_memcpy(p, text->data, text->len);
    p[text->len] = '}';

    json = json_loadb((char *) p, text->len + open, 0, &jerr);

    if (!json_is_object(json)) {
        abort();
    }

    json_decref(json);
    free(p);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t                       *d;
    ngx_str_t                     page;
    ngx_uint_t                    i;
    ngx_pool_t                   *pool;
    ngx_http_request_t           *r;
    ngx_http_tiktok_ctx_t        *ctx;
    ngx_http_tiktok_videos_t     *v;
    ngx_http_tiktok_api_error_t   err;

    static ngx_str_t  ids[] = {
        ngx_string("7300000000000000001"),
        ngx_string("9223372036854775807"),
        ngx_string("1"),
    };

    fuzz_init();

    pool = fuzz_pool();

    ctx = ngx_pcalloc(pool, sizeof(ngx_http_tiktok_ctx_t));
    v = ngx_pcalloc(pool, sizeof(ngx_http_tiktok_videos_t));
    if (ctx == NULL || v == NULL) {
        abort();
    }

    ctx->data = v;
    ngx_str_set(&v->key, "videos:fuzz");

    r = fuzz_request(pool, fuzz_main_conf(), ctx);

    if (fuzz_answer(pool, data, size, 0, &d, &err) == NGX_OK) {

        if (ngx_http_tiktok_videos_page(r, v, d, &page) == NGX_OK) {
            fuzz_reparse(&page, 1);
        }

        v->nids = sizeof(ids) / sizeof(ids[0]);

        for (i = 0; i < v->nids; i++) {
            v->ids[i] = ids[i];
        }

        if (ngx_http_tiktok_metrics_fill(r, v, d) == NGX_OK) {
            for (i = 0; i < v->nids; i++) {
                if (v->fresh[i]) {
                    fuzz_reparse(&v->values[i], 1);
                }
            }
        }
    }

    ngx_destroy_pool(pool);

    return 0;
}
