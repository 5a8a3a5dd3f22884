
/*
 * A FILE_UPLOAD's chunks and TikTok's answers to them: the chunk plan
 * (TikTok's rules, ngx_http_tiktok_job_chunks()) for a size up to 4 GB,
 * every chunk's Content-Range, a resync from a status answer's
 * uploaded_bytes, and the upload answer's headers (Retry-After) and body
 * as libcurl hands them over (ngx_http_tiktok_curl_header() and
 * ngx_http_tiktok_curl_write(), in pieces, against the answer limit).
 *
 * Input: 4 bytes of size, 4 of the resume point, then the answer: header
 * lines, an empty line, the body.
 */


#include "fuzz.h"

#include "../src/ngx_http_tiktok_job.c"
#include "../src/ngx_http_tiktok_curl.c"


#define FUZZ_MB  1000000


static void
fuzz_plan(off_t size, off_t resume)
{
    u_char   range[3 * NGX_OFF_T_LEN + 16], *p;
    off_t    chunk, count, len, at, n;

    chunk = ngx_http_tiktok_job_chunks(size, &count);

    /*
     * TIKTOK_API.md, inside both readings of "MB": a file up to
     * 64,000,000 bytes whole; a larger one in 2 to 1000 chunks of
     * 5,242,880 to 64,000,000 bytes
     */
    if (size <= 64 * FUZZ_MB) {
        if (chunk != size || count != 1) {
            abort();
        }

    } else if (chunk < 5242880 || chunk > 64 * FUZZ_MB
               || count < 2 || count > 1000)
    {
        abort();
    }

    for (at = 0, n = 0; at < size; at += len, n++) {
        len = ngx_http_tiktok_job_chunk_len(size, chunk, at);

        /* the last chunk takes the remainder, up to 128 MB */
        if (len <= 0 || at + len > size
            || (at + len < size && len != chunk)
            || (at + len == size && (len < chunk || len > 128 * FUZZ_MB)))
        {
            abort();
        }

        p = ngx_snprintf(range, sizeof(range), "bytes %O-%O/%O",
                         at, at + len - 1, size);
        if (p == range + sizeof(range)) {
            abort();
        }
    }

    if (n != count) {
        abort();
    }

    /* a resync: wherever TikTok says it got to, on from a chunk's start */

    if (ngx_http_tiktok_job_resumable(size, chunk, resume)
        && resume < size
        && ngx_http_tiktok_job_chunk_len(size, chunk, resume) <= 0)
    {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    off_t                        file, resume;
    u_char                      *p, *last, *nl, *line;
    size_t                       n, piece;
    ngx_uint_t                   body;
    ngx_pool_t                  *pool;
    ngx_http_tiktok_curl_req_t  *req;

    if (size < 8) {
        return 0;
    }

    fuzz_init();

    /* up to the 4 GB TikTok takes (NGX_HTTP_TIKTOK_VIDEO_MAX) */
    file = 1 + (off_t) ((uint32_t) data[0] << 24 | data[1] << 16
                        | data[2] << 8 | data[3]) % 4000000000LL;
    resume = (off_t) ((uint32_t) data[4] << 24 | data[5] << 16
                      | data[6] << 8 | data[7]);

    fuzz_plan(file, resume % (file + 1));
    fuzz_plan(file, (resume % 68) * ngx_http_tiktok_job_chunks(file, NULL));

    pool = fuzz_pool();

    req = ngx_pcalloc(pool, sizeof(ngx_http_tiktok_curl_req_t));
    if (req == NULL) {
        abort();
    }

    req->pool = pool;
    req->max_response = 256;

    p = fuzz_copy(pool, data + 8, size - 8);
    last = p + size - 8;
    body = 0;

    while (p < last) {
        if (!body) {
            nl = ngx_strlchr(p, last, '\n');
            n = (nl ? nl + 1 : last) - p;

            /* each line a string of its own, as libcurl's buffer is */
            line = fuzz_copy(pool, p, n);

            if (ngx_http_tiktok_curl_header((char *) line, 1, n, req) != n) {
                abort();
            }

            body = (n == 1 || (n == 2 && line[0] == '\r'));
            p += n;
            continue;
        }

        piece = ngx_min((size_t) (last - p), (size_t) (1 + p[0] % 64));
        line = fuzz_copy(pool, p, piece);

        n = ngx_http_tiktok_curl_write((char *) line, 1, piece, req);

        if ((n != piece && n != 0) || (n == 0 && !req->too_large)
            || req->response.len > req->max_response)
        {
            abort();
        }

        if (n == 0) {
            break;
        }

        p += piece;
    }

    if (req->retry_after.len > 64
        || (req->retry_after.len
            && (req->retry_after.data[0] == ' '
                || req->retry_after.data[req->retry_after.len - 1] == '\n')))
    {
        abort();
    }

    ngx_destroy_pool(pool);

    return 0;
}
