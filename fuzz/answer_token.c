
/*
 * TikTok's OAuth token answer (/v2/oauth/token/, the code exchange and the
 * refresh): the flat object, then the fields the callback stores, read as
 * ngx_http_tiktok_callback_token() reads them (expires_in as text: it goes
 * to PostgreSQL as a parameter).
 */


#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t                       *root;
    ngx_int_t                     rc;
    ngx_str_t                     access, refresh, open_id, expires, scope;
    ngx_pool_t                   *pool;
    ngx_http_tiktok_api_error_t   err;

    fuzz_init();

    pool = fuzz_pool();

    rc = fuzz_answer(pool, data, size, 1, &root, &err);

    if (rc == NGX_OK
        && ngx_http_tiktok_json_get_str(pool, root, "access_token", &access)
           == NGX_OK
        && ngx_http_tiktok_forget(pool, &access) == NGX_OK
        && ngx_http_tiktok_json_get_str(pool, root, "refresh_token", &refresh)
           == NGX_OK
        && ngx_http_tiktok_forget(pool, &refresh) == NGX_OK
        && ngx_http_tiktok_json_get_str(pool, root, "open_id", &open_id)
           == NGX_OK
        && ngx_http_tiktok_json_get_int(pool, root, "expires_in", &expires)
           == NGX_OK
        && ngx_http_tiktok_json_get_str(pool, root, "scope", &scope)
           != NGX_ERROR)
    {
        /* a number as text: digits, a sign at most */
        if (expires.len == 0
            || ngx_atoi(expires.data + (expires.data[0] == '-'),
                        expires.len - (expires.data[0] == '-'))
               == NGX_ERROR)
        {
            abort();
        }
    }

    ngx_destroy_pool(pool);

    return 0;
}
