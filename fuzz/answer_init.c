
/*
 * TikTok's answers to a post's init (/v2/post/publish/video/init/, the
 * inbox's and the content init): the envelope, the refusal's class, and
 * the publish_id and upload_url the publisher stores
 * (ngx_http_tiktok_job_inited()).
 */


#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t                       *d;
    ngx_int_t                     rc;
    ngx_str_t                     publish_id, upload_url;
    ngx_pool_t                   *pool;
    ngx_http_tiktok_api_error_t   err;

    fuzz_init();

    pool = fuzz_pool();

    rc = fuzz_answer(pool, data, size, 0, &d, &err);

    if (rc == NGX_OK
        && ngx_http_tiktok_json_get_str(pool, d, "publish_id", &publish_id)
           == NGX_OK)
    {
        if (ngx_http_tiktok_json_get_str(pool, d, "upload_url", &upload_url)
            == NGX_ERROR
            || publish_id.len == 0)
        {
            abort();
        }
    }

    ngx_destroy_pool(pool);

    return 0;
}
