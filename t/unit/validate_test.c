/*
 * TAP unit tests of src/ngx_http_tiktok_validate.c: titles (strict UTF-8,
 * characters and UTF-16 units), RFC 3339 times, pull URLs.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <stdio.h>
#include <string.h>

#include "ngx_http_tiktok_validate.h"


static int  n, failed;


static void
ok(int cond, const char *name)
{
    n++;
    printf("%sok %d - %s\n", cond ? "" : "not ", n, name);
    if (!cond) {
        failed++;
    }
}


static ngx_str_t
str(const char *s, size_t len)
{
    ngx_str_t  v;

    v.data = (u_char *) s;
    v.len = len;

    return v;
}


static void
utf8(const char *s, size_t len, ngx_int_t rc, size_t chars, size_t utf16,
    const char *name)
{
    size_t     c, u;
    ngx_str_t  v = str(s, len);

    if (rc == NGX_OK) {
        ok(ngx_http_tiktok_utf8_count(&v, &c, &u) == NGX_OK
           && c == chars && u == utf16, name);

    } else {
        ok(ngx_http_tiktok_utf8_count(&v, &c, &u) == NGX_ERROR, name);
    }
}


static void
rfc3339(const char *s, ngx_int_t rc, time_t want, const char *name)
{
    time_t     t;
    ngx_str_t  v = str(s, strlen(s));

    if (rc == NGX_OK) {
        ok(ngx_http_tiktok_parse_rfc3339(&v, &t) == NGX_OK && t == want,
           name);

    } else {
        ok(ngx_http_tiktok_parse_rfc3339(&v, &t) == NGX_ERROR, name);
    }
}


static void
pull(const char *url, ngx_array_t *prefixes, int accepted, const char *name)
{
    ngx_str_t  v = str(url, strlen(url));

    ok((ngx_http_tiktok_check_pull_url(&v, prefixes) == NULL) == accepted,
       name);
}


int
main(void)
{
    char         big[3000];
    ngx_str_t    pf[2], v;
    ngx_array_t  prefixes;

    /* titles */
    utf8("", 0, NGX_OK, 0, 0, "empty title");
    utf8("hello", 5, NGX_OK, 5, 5, "ASCII");
    utf8("caf\xc3\xa9", 5, NGX_OK, 4, 4, "two-byte form");
    utf8("\xe2\x82\xac", 3, NGX_OK, 1, 1, "three-byte form");
    utf8("\xf0\x9f\x98\x80", 4, NGX_OK, 1, 2,
         "an emoji is one character, two UTF-16 units");
    utf8("\xf4\x8f\xbf\xbf", 4, NGX_OK, 1, 2, "U+10FFFF");
    utf8("a\0b", 3, NGX_ERROR, 0, 0, "NUL refused");
    utf8("\xc0\xaf", 2, NGX_ERROR, 0, 0, "overlong two-byte refused");
    utf8("\xe0\x80\xaf", 3, NGX_ERROR, 0, 0, "overlong three-byte refused");
    utf8("\xf0\x80\x80\xaf", 4, NGX_ERROR, 0, 0, "overlong four-byte refused");
    utf8("\xed\xa0\x80", 3, NGX_ERROR, 0, 0, "surrogate refused");
    utf8("\xf4\x90\x80\x80", 4, NGX_ERROR, 0, 0, "above U+10FFFF refused");
    utf8("\xe2\x82", 2, NGX_ERROR, 0, 0, "truncated sequence refused");
    utf8("\x80", 1, NGX_ERROR, 0, 0, "lone continuation refused");
    utf8("\xff", 1, NGX_ERROR, 0, 0, "0xFF refused");
    utf8("\xc3\x28", 2, NGX_ERROR, 0, 0, "bad continuation refused");

    /* user ids, echoed field names */
    v = str("caf\xc3\xa9 ~", 7);
    ok(ngx_http_tiktok_is_printable(&v), "printable: UTF-8 and a space");
    v = str("a\tb", 3);
    ok(!ngx_http_tiktok_is_printable(&v), "printable: a tab refused");
    v = str("a\x7f", 2);
    ok(!ngx_http_tiktok_is_printable(&v), "printable: DEL refused");
    v = str("\xc3", 1);
    ok(!ngx_http_tiktok_is_printable(&v), "printable: bad UTF-8 refused");

    /* times */
    rfc3339("1970-01-01T00:00:00Z", NGX_OK, 0, "the epoch");
    rfc3339("2026-11-24T21:30:00Z", NGX_OK, 1795555800, "a UTC time");
    rfc3339("2026-11-24T22:30:00+01:00", NGX_OK, 1795555800, "an offset");
    rfc3339("2026-11-24T16:00:00-05:30", NGX_OK, 1795555800,
            "a negative offset with minutes");
    rfc3339("2026-11-24t21:30:00.123456z", NGX_OK, 1795555800,
            "lowercase t/z and a fraction");
    rfc3339("2028-02-29T00:00:00Z", NGX_OK, 1835395200, "a leap day");
    rfc3339("2000-02-29T00:00:00Z", NGX_OK, 951782400, "2000 was leap");
    rfc3339("2026-02-29T00:00:00Z", NGX_ERROR, 0, "no Feb 29 in 2026");
    rfc3339("1900-02-29T00:00:00Z", NGX_ERROR, 0, "1900 was not leap");
    rfc3339("2026-11-31T00:00:00Z", NGX_ERROR, 0, "Nov 31 refused");
    rfc3339("2026-13-01T00:00:00Z", NGX_ERROR, 0, "month 13 refused");
    rfc3339("2026-11-24T24:00:00Z", NGX_ERROR, 0, "hour 24 refused");
    rfc3339("2026-11-24 21:30:00Z", NGX_ERROR, 0, "a space for T refused");
    rfc3339("2026-11-24T21:30:00", NGX_ERROR, 0, "no zone refused");
    rfc3339("2026-11-24T21:30:00+0100", NGX_ERROR, 0, "+hhmm refused");
    rfc3339("2026-11-24T21:30:00.Z", NGX_ERROR, 0, "an empty fraction");
    rfc3339("2026-11-24T21:30:00Zjunk", NGX_ERROR, 0, "trailing junk");
    rfc3339("tomorrow", NGX_ERROR, 0, "words refused");
    rfc3339("", NGX_ERROR, 0, "empty refused");
    rfc3339("+026-11-24T21:30:00Z", NGX_ERROR, 0, "a sign in the year");

    /* pull URLs */
    pf[0] = str("https://media.example.com/", 26);
    pf[1] = str("https://cdn.example.org/videos/", 31);
    prefixes.elts = pf;
    prefixes.nelts = 2;

    pull("https://media.example.com/a.mp4", &prefixes, 1, "under a prefix");
    pull("HTTPS://MEDIA.EXAMPLE.COM/a.mp4", &prefixes, 1,
         "case of scheme and host ignored");
    pull("https://cdn.example.org/videos/x/y.mp4?sig=1", &prefixes, 1,
         "a query string is fine");
    pull("https://cdn.example.org/other/y.mp4", &prefixes, 0,
         "outside the prefix's path");
    pull("https://media.example.com.evil.io/a.mp4", &prefixes, 0,
         "a longer host does not match");
    pull("http://media.example.com/a.mp4", &prefixes, 0, "http refused");
    pull("https://203.0.113.9/a.mp4", &prefixes, 0, "an IPv4 host refused");
    pull("https://203.0.113.9:443/a.mp4", &prefixes, 0,
         "an IPv4 host with a port refused");
    pull("https://[2001:db8::1]/a.mp4", &prefixes, 0, "IPv6 refused");
    pull("https://user@media.example.com/a.mp4", &prefixes, 0,
         "credentials refused");
    pull("https://media.example.com/a b.mp4", &prefixes, 0,
         "a space refused");
    pull("https://media.example.com/a.mp4#x", &prefixes, 0,
         "a fragment refused");
    pull("https://media.example.com\\@evil/a.mp4", &prefixes, 0,
         "a backslash refused");
    pull("https://", &prefixes, 0, "no host");
    pull("https:///a.mp4", &prefixes, 0, "an empty host");
    pull("https://media.example.com/a.mp4", NULL, 0,
         "no prefixes configured: refused");

    memset(big, 'a', sizeof(big) - 1);
    memcpy(big, "https://media.example.com/", 26);
    big[sizeof(big) - 1] = '\0';
    pull(big, &prefixes, 0, "longer than 2048 refused");

    printf("1..%d\n", n);

    return failed ? 1 : 0;
}
