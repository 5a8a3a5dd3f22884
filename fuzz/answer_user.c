
/*
 * TikTok's user info answer (/v2/user/info/): the envelope, then the
 * account's fields as ngx_http_tiktok_callback_user() reads them.
 */


#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t                       *d, *user;
    ngx_str_t                     open_id, name, avatar;
    ngx_pool_t                   *pool;
    ngx_http_tiktok_api_error_t   err;

    fuzz_init();

    pool = fuzz_pool();

    if (fuzz_answer(pool, data, size, 0, &d, &err) == NGX_OK) {
        user = json_object_get(d, "user");

        if (json_is_object(user)
            && ngx_http_tiktok_json_get_str(pool, user, "open_id", &open_id)
               == NGX_OK
            && ngx_http_tiktok_json_get_str(pool, user, "display_name",
                                            &name) != NGX_ERROR
            && ngx_http_tiktok_json_get_str(pool, user, "avatar_url",
                                            &avatar) != NGX_ERROR
            && (open_id.len == 0 || open_id.data == NULL))
        {
            abort();
        }
    }

    ngx_destroy_pool(pool);

    return 0;
}
