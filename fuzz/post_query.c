
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

    pt = ngx_pcalloc(pool, sizeof(ngx_http_tiktok_post_t));
    if (pt == NULL) {
        abort();
    }

    pt->file = 1;
    pt->disable_comment = NGX_HTTP_TIKTOK_UNSET;
    pt->disable_duet = NGX_HTTP_TIKTOK_UNSET;
    pt->disable_stitch = NGX_HTTP_TIKTOK_UNSET;
    pt->brand_content_toggle = NGX_HTTP_TIKTOK_UNSET;
    pt->brand_organic_toggle = NGX_HTTP_TIKTOK_UNSET;
    pt->is_aigc = NGX_HTTP_TIKTOK_UNSET;
    pt->video_cover_timestamp_ms = NGX_HTTP_TIKTOK_UNSET;
    pt->photo_cover_index = NGX_HTTP_TIKTOK_UNSET;
    pt->auto_add_music = NGX_HTTP_TIKTOK_UNSET;

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
