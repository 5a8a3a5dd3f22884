
/*
 * TikTok's creator info answer (/v2/post/publish/creator_info/query/):
 * the envelope, then what a posting form and POST /post rely on,
 * ngx_http_tiktok_creator_check(): privacy_level_options, a non-empty list
 * of strings.
 */


#include "fuzz.h"

#include "../src/ngx_http_tiktok_call.c"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                        i;
    json_t                       *d, *options;
    const char                   *why;
    ngx_pool_t                   *pool;
    ngx_http_tiktok_api_error_t   err;

    fuzz_init();

    pool = fuzz_pool();

    if (fuzz_answer(pool, data, size, 0, &d, &err) == NGX_OK) {
        why = ngx_http_tiktok_creator_check(d);

        options = json_object_get(d, "privacy_level_options");

        if (why == NULL) {
            if (json_array_size(options) == 0) {
                abort();
            }

            for (i = 0; i < json_array_size(options); i++) {
                if (!json_is_string(json_array_get(options, i))) {
                    abort();
                }
            }
        }
    }

    ngx_destroy_pool(pool);

    return 0;
}
