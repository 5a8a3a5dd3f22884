/*
 * libFuzzer harness for src/ngx_http_tiktok_validate.c: every input is fed
 * to the title counter, the RFC 3339 parser and the pull URL check.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_tiktok_validate.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char       *copy;
    size_t        chars, utf16;
    time_t        t;
    ngx_str_t     s, pf;
    ngx_array_t   prefixes;

    /* an exact-size copy, so any overread is caught */
    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, data, size);

    s.data = copy;
    s.len = size;

    (void) ngx_http_tiktok_utf8_count(&s, &chars, &utf16);

    if (ngx_http_tiktok_utf8_count(&s, &chars, &utf16) == NGX_OK
        && (utf16 < chars || utf16 > 2 * chars || chars > size))
    {
        abort();
    }

    (void) ngx_http_tiktok_parse_rfc3339(&s, &t);

    pf.data = (u_char *) "https://media.example.com/";
    pf.len = sizeof("https://media.example.com/") - 1;
    prefixes.elts = &pf;
    prefixes.nelts = 1;

    (void) ngx_http_tiktok_check_pull_url(&s, &prefixes);
    (void) ngx_http_tiktok_check_pull_url(&s, NULL);

    free(copy);

    return 0;
}
