
/*
 * TikTok's status answers (/v2/post/publish/status/fetch/): the envelope,
 * data.status, fail_reason and publicaly_available_post_id (TikTok's
 * spelling; 64-bit ids), read as the publisher reads them, and the share
 * URL made of the id.  (uploaded_bytes, which a resync resumes from, is
 * fuzz/upload.c's.)
 */


#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                       *p, share[128];
    json_t                       *d, *id;
    ngx_str_t                     status, reason, user;
    ngx_pool_t                   *pool;
    ngx_http_tiktok_api_error_t   err;

    fuzz_init();

    pool = fuzz_pool();

    ngx_str_set(&user, "sandbox.user");

    if (fuzz_answer(pool, data, size, 0, &d, &err) == NGX_OK
        && ngx_http_tiktok_json_get_str(pool, d, "status", &status) == NGX_OK)
    {
        (void) ngx_http_tiktok_json_get_str(pool, d, "fail_reason", &reason);

        id = json_array_get(json_object_get(d, "publicaly_available_post_id"),
                            0);

        if (json_is_integer(id) && json_integer_value(id) > 0) {
            p = ngx_snprintf(share, sizeof(share),
                             "https://www.tiktok.com/@%V/video/%L", &user,
                             (int64_t) json_integer_value(id));

            if (p == share + sizeof(share)) {
                abort();
            }
        }
    }

    ngx_destroy_pool(pool);

    return 0;
}
