
/*
 * TikTok's status answers (/v2/post/publish/status/fetch/): the envelope,
 * then ngx_http_tiktok_job_status_read(), the publisher's reader: status,
 * fail_reason, publicaly_available_post_id (TikTok's spelling) exactly as
 * the 64-bit number it is, uploaded_bytes and downloaded_bytes as counts
 * or -1, and the share URL made of the id fits.  (What a resync does with
 * uploaded_bytes is fuzz/upload.c's.)
 */


#include "fuzz.h"

#include "ngx_http_tiktok_job.h"


/* a count: the answer's whole number from 0 up, else -1 */

static void
fuzz_count(json_t *obj, const char *key, int64_t n)
{
    json_t  *v;

    v = json_object_get(obj, key);

    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        if (n != json_integer_value(v)) {
            abort();
        }

    } else if (n != -1) {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                               *p, share[128], *text;
    json_t                               *d, *v;
    ngx_int_t                             rc;
    ngx_str_t                             user;
    ngx_uint_t                            named;
    const char                           *why;
    ngx_pool_t                           *pool;
    ngx_http_tiktok_api_error_t           err;
    ngx_http_tiktok_job_status_answer_t   st;

    fuzz_init();

    pool = fuzz_pool();

    ngx_str_set(&user, "sandbox.user");

    if (fuzz_answer(pool, data, size, 0, &d, &err) == NGX_OK) {
        why = NULL;

        rc = ngx_http_tiktok_job_status_read(pool, d, &st, &why);

        v = json_object_get(d, "status");
        named = json_is_string(v) && json_string_length(v) != 0;

        if (rc != NGX_OK) {
            if (rc != NGX_ERROR || why == NULL || named) {
                abort();
            }

            ngx_destroy_pool(pool);

            return 0;
        }

        if (!named) {
            abort();
        }

        fuzz_same(d, "status", &st.status);
        fuzz_same(d, "fail_reason", &st.fail_reason);
        fuzz_count(d, "uploaded_bytes", st.uploaded_bytes);
        fuzz_count(d, "downloaded_bytes", st.downloaded_bytes);

        v = json_array_get(json_object_get(d, "publicaly_available_post_id"),
                           0);

        if (json_is_integer(v) && json_integer_value(v) > 0) {
            /* exact: the digits jansson writes are the share URL's */
            text = (u_char *) json_dumps(v, JSON_ENCODE_ANY);
            if (text == NULL) {
                abort();
            }

            p = ngx_snprintf(share, sizeof(share),
                             "https://www.tiktok.com/@%V/video/%L", &user,
                             st.post_id);

            if (st.post_id != json_integer_value(v)
                || p == share + sizeof(share)
                || (size_t) (p - share) < ngx_strlen(text)
                || ngx_strncmp(p - ngx_strlen(text), text, ngx_strlen(text))
                   != 0)
            {
                abort();
            }

            free(text);

        } else if (st.post_id != 0) {
            abort();
        }
    }

    ngx_destroy_pool(pool);

    return 0;
}
