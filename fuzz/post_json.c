
/*
 * POST /post's JSON body: the typed options (unknown, repeated and
 * mistyped members refused), then every check that needs nothing but the
 * request (the kind of post, photos, title, privacy, pull URLs,
 * schedule_at), as ngx_http_tiktok_post_parse() runs them.  The body
 * comes in two buffers, as nginx's chain can hold it.
 *
 * Any option the parser accepts must hold what its type says; a body it
 * accepts must name its privacy (a draft excepted) and have its
 * schedule_at rewritten to UTC.
 */


#include "fuzz.h"

#include "../src/ngx_http_tiktok_handler_publish.c"


static ngx_chain_t *
fuzz_buf(ngx_pool_t *pool, u_char *p, size_t len, ngx_chain_t *next)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    b = ngx_calloc_buf(pool);
    cl = ngx_alloc_chain_link(pool);

    if (b == NULL || cl == NULL) {
        abort();
    }

    if (p == NULL) {
        /* the empty last_buf of a chunked body: no bytes, not in memory */
        b->last_buf = 1;

    } else {
        b->pos = p;
        b->last = p + len;
        b->memory = 1;
    }

    cl->buf = b;
    cl->next = next;

    return cl;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                  *text;
    size_t                   half;
    const char              *field, *message;
    ngx_pool_t              *pool;
    ngx_http_request_t      *r;
    ngx_http_tiktok_post_t  *pt;

    fuzz_init();

    pool = fuzz_pool();

    pt = ngx_http_tiktok_post_create(pool);
    if (pt == NULL) {
        abort();
    }


    r = fuzz_request(pool, fuzz_main_conf(), NULL);

    r->request_body = ngx_pcalloc(pool, sizeof(ngx_http_request_body_t));
    if (r->request_body == NULL) {
        abort();
    }

    /* two buffers, split where the input says, and an empty last one */

    text = fuzz_copy(pool, data, size);
    half = size ? data[0] % (size + 1) : 0;

    r->request_body->bufs = fuzz_buf(pool, text, half,
                                fuzz_buf(pool, text + half, size - half,
                                         fuzz_buf(pool, NULL, 0, NULL)));

    message = NULL;

    field = ngx_http_tiktok_post_json(r, pt, &message);

    if (field == NULL) {
        field = ngx_http_tiktok_post_validate(r, pt, &message);
    }

    if (field && message == NULL) {
        abort();
    }

    if (field == NULL
        && ((pt->privacy_level.len == 0 && !pt->draft)
            || (pt->schedule_at.len
                && pt->schedule_at.len != sizeof("1970-01-01T00:00:00Z") - 1)
            || (!pt->photo && pt->video_url.len == 0)
            || pt->disable_comment > 1 || pt->is_aigc > 1
            || (pt->photo
                && (pt->photo_cover_index < 0
                    || (size_t) pt->photo_cover_index
                       >= json_array_size(pt->photo_urls)))))
    {
        abort();
    }

    ngx_destroy_pool(pool);

    return 0;
}
