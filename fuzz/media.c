
/*
 * libFuzzer harness for src/ngx_http_tiktok_media.c ("make fuzz").
 *
 * Each input is probed three ways through read callbacks that also check
 * the parser's side of the contract (no read before 0 or past the size it
 * was given, none over NGX_HTTP_TIKTOK_MEDIA_READ_SIZE, at most
 * NGX_HTTP_TIKTOK_MEDIA_MAX_READS of them):
 *
 *   - as it is;
 *   - repeated to a 5 GB virtual file, so that 64-bit sizes and offsets
 *     past 4 GB lead somewhere;
 *   - split in two halves, the first at offset 0 and the second at the end
 *     of a 3 GB virtual file, zeros between: a moov behind a huge mdat;
 *
 * the first also with short reads of 1 to 8 bytes.  Any answer outside the
 * header's promises aborts, so the fuzzer reports it as a crash.
 *
 * Seeds: fuzz/corpus/media, written by "build/unit/media_test --corpus".
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <stdlib.h>
#include <string.h>

#include "ngx_http_tiktok_media.h"


typedef struct {
    const u_char   *data;
    size_t          len;
    size_t          split;      /* tail mode: where the second half starts */
    off_t           size;
    size_t          chunk;
    ngx_uint_t      mode;
    ngx_uint_t      reads;
} fuzz_file_t;


#define FUZZ_PLAIN   0
#define FUZZ_REPEAT  1
#define FUZZ_TAIL    2


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ssize_t fuzz_read(void *data, u_char *buf, size_t size, off_t offset);
static size_t fuzz_span(fuzz_file_t *f, off_t at, u_char *buf,
    size_t len);
static void fuzz_probe(fuzz_file_t *f);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_file_t  f;

    memset(&f, 0, sizeof(fuzz_file_t));
    f.data = data;
    f.len = size;

    f.mode = FUZZ_PLAIN;
    f.size = (off_t) size;
    fuzz_probe(&f);

    if (size) {
        f.chunk = 1 + data[size - 1] % 8;
        fuzz_probe(&f);
        f.chunk = 0;

        f.mode = FUZZ_REPEAT;
        f.size = ((off_t) 5 << 30) + (off_t) size;
        fuzz_probe(&f);

        f.mode = FUZZ_TAIL;
        f.split = size / 2;
        f.size = ((off_t) 3 << 30) + (off_t) size;
        fuzz_probe(&f);
    }

    return 0;
}


static void
fuzz_probe(fuzz_file_t *f)
{
    ngx_int_t                rc;
    ngx_http_tiktok_media_t  m;

    f->reads = 0;

    rc = ngx_http_tiktok_media_probe(fuzz_read, f, f->size, &m);

    if (f->reads > NGX_HTTP_TIKTOK_MEDIA_MAX_READS) {
        abort();
    }

    switch (rc) {

    case NGX_OK:
        if ((m.container != NGX_HTTP_TIKTOK_MEDIA_MP4
             && m.container != NGX_HTTP_TIKTOK_MEDIA_MOV
             && m.container != NGX_HTTP_TIKTOK_MEDIA_WEBM)
            || m.content_type == NULL
            || m.duration_ms == 0
            || m.duration_ms > NGX_HTTP_TIKTOK_MEDIA_MAX_MS
            || m.width > 65535 || m.height > 65535)
        {
            abort();
        }

        break;

    case NGX_DECLINED:
        if (m.duration_ms || m.width || m.height
            || m.container > NGX_HTTP_TIKTOK_MEDIA_MATROSKA)
        {
            abort();
        }

        break;

    default:
        /* the callback never fails: NGX_ERROR would be a parser bug */
        abort();
    }
}


static ssize_t
fuzz_read(void *data, u_char *buf, size_t size, off_t offset)
{
    size_t        n, done, span;
    fuzz_file_t  *f;

    f = data;

    f->reads++;

    if (offset < 0 || offset >= f->size || size == 0
        || size > NGX_HTTP_TIKTOK_MEDIA_READ_SIZE
        || (off_t) size > f->size - offset)
    {
        abort();
    }

    n = size;

    if (f->chunk && n > f->chunk) {
        n = f->chunk;
    }

    /* copied span by span: a byte at a time halves the executions */
    for (done = 0; done < n; done += span) {
        span = fuzz_span(f, offset + (off_t) done, buf + done, n - done);
    }

    return (ssize_t) n;
}


/* copies up to len bytes at offset that lie in one piece; returns how many */

static size_t
fuzz_span(fuzz_file_t *f, off_t at, u_char *buf, size_t len)
{
    off_t   tail, start, end;
    size_t  n;

    switch (f->mode) {

    case FUZZ_REPEAT:
        start = at % (off_t) f->len;
        n = ngx_min(len, f->len - (size_t) start);
        memcpy(buf, f->data + start, n);
        return n;

    case FUZZ_TAIL:
        tail = f->size - (off_t) (f->len - f->split);

        if (at < (off_t) f->split) {
            n = ngx_min(len, f->split - (size_t) at);
            memcpy(buf, f->data + at, n);
            return n;
        }

        if (at >= tail) {
            n = ngx_min(len, (size_t) (f->size - at));
            memcpy(buf, f->data + f->split + (at - tail), n);
            return n;
        }

        end = ngx_min(tail, at + (off_t) len);
        n = (size_t) (end - at);
        memset(buf, 0, n);
        return n;

    default:
        memcpy(buf, f->data + at, len);
        return len;
    }
}
