
/*
 * TikTok's creator info answer (/v2/post/publish/creator_info/query/):
 * the envelope, then the check requests and the publisher share,
 * ngx_http_tiktok_api_creator_check(): privacy_level_options a non-empty
 * list of strings, the interaction flags booleans when present.
 */


#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                        i;
    json_t                       *d, *options, *v;
    const char                   *why;
    ngx_pool_t                   *pool;
    ngx_http_tiktok_api_error_t   err;

    fuzz_init();

    pool = fuzz_pool();

    if (fuzz_answer(pool, data, size, 0, &d, &err) == NGX_OK) {
        why = ngx_http_tiktok_api_creator_check(d);

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

            /* "true" read as not disabled once let comments through */
            v = json_object_get(d, "comment_disabled");

            if (v != NULL && !json_is_boolean(v)) {
                abort();
            }
        }
    }

    ngx_destroy_pool(pool);

    return 0;
}
