
/*
 * TikTok's user info answer (/v2/user/info/): the envelope, then
 * ngx_http_tiktok_oauth_user_read(), the callback's reader: taken only
 * with the account's open_id, and what it took is what data.user says.
 */


#include "fuzz.h"

#include "ngx_http_tiktok_handler.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t                        *d, *user, *v;
    ngx_int_t                      rc;
    ngx_uint_t                     named;
    const char                    *why;
    ngx_pool_t                    *pool;
    ngx_http_tiktok_api_error_t    err;
    ngx_http_tiktok_oauth_user_t   u;

    fuzz_init();

    pool = fuzz_pool();

    if (fuzz_answer(pool, data, size, 0, &d, &err) == NGX_OK) {
        why = NULL;

        rc = ngx_http_tiktok_oauth_user_read(pool, d, &u, &why);

        user = json_object_get(d, "user");
        v = json_object_get(user, "open_id");
        named = json_is_object(user) && json_is_string(v)
                && json_string_length(v) != 0;

        if (rc == NGX_OK) {
            if (!named || u.open_id.len == 0) {
                abort();
            }

            fuzz_same(user, "open_id", &u.open_id);
            fuzz_same(user, "display_name", &u.display_name);
            fuzz_same(user, "avatar_url", &u.avatar_url);

        } else if (rc != NGX_ERROR || why == NULL || named) {
            abort();
        }
    }

    ngx_destroy_pool(pool);

    return 0;
}
