
/*
 * TikTok's answers to a post's init (/v2/post/publish/video/init/, the
 * inbox's and the content init): the envelope, the refusal's class, then
 * ngx_http_tiktok_job_init_read(), the publisher's reader: taken only with
 * a publish_id, and the publish_id and upload_url it took are the answer's.
 */


#include "fuzz.h"

#include "ngx_http_tiktok_job.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t                             *d, *v;
    ngx_int_t                           rc;
    ngx_uint_t                          named;
    const char                         *why;
    ngx_pool_t                         *pool;
    ngx_http_tiktok_api_error_t         err;
    ngx_http_tiktok_job_init_answer_t   init;

    fuzz_init();

    pool = fuzz_pool();

    if (fuzz_answer(pool, data, size, 0, &d, &err) == NGX_OK) {
        why = NULL;

        rc = ngx_http_tiktok_job_init_read(pool, d, &init, &why);

        v = json_object_get(d, "publish_id");
        named = json_is_string(v) && json_string_length(v) != 0;

        if (rc == NGX_OK) {
            if (!named || init.publish_id.len == 0) {
                abort();
            }

            fuzz_same(d, "publish_id", &init.publish_id);
            fuzz_same(d, "upload_url", &init.upload_url);

        } else if (rc != NGX_ERROR || why == NULL || named
                   || init.publish_id.len || init.publish_id.data)
        {
            /* the job stores publish_id even then: it must be empty */
            abort();
        }
    }

    ngx_destroy_pool(pool);

    return 0;
}
