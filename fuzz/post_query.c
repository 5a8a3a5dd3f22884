
/*
 * POST /post's upload: the options in the query string, form-decoded as
 * browsers send them (unknown, repeated and malformed ones refused), then
 * the checks ngx_http_tiktok_post_parse() runs before the body's bytes
 * are probed (fuzz/media.c does those).
 */


#include "fuzz.h"

#include "../src/ngx_http_tiktok_handler_publish.c"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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

    pt->file = 1;

    r = fuzz_request(pool, fuzz_main_conf(), NULL);

    r->args.data = fuzz_copy(pool, data, size);
    r->args.len = size;

    message = NULL;

    field = ngx_http_tiktok_post_query(r, pt, &message);

    if (field == NULL) {
        field = ngx_http_tiktok_post_validate(r, pt, &message);
    }

    if (field && message == NULL) {
        abort();
    }

    /* what an accepted upload holds: no URL, no photos, a privacy level */

    if (field == NULL
        && (pt->video_url.len || pt->photo
            || (pt->privacy_level.len == 0 && !pt->draft)
            || ngx_strlchr(pt->title.data, pt->title.data + pt->title.len,
                           '\0')
            || (pt->schedule_at.len
                && pt->schedule_at.len
                   != sizeof("1970-01-01T00:00:00Z") - 1)))
    {
        abort();
    }

    ngx_destroy_pool(pool);

    return 0;
}
