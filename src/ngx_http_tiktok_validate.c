
/*
 * Validation of what a caller sends, before anything reaches TikTok:
 * titles (strict UTF-8, counted in characters and in TikTok's UTF-16
 * units), RFC 3339 times, pull URLs, and the items of a list.  Pure
 * functions over buffers: hostile input is the normal case here.  Like
 * the crypto code they use nginx's types but none of its functions
 * (ngx_strlchr is inline), so unit tests and a fuzzer build them alone.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_tiktok_validate.h"


static ngx_int_t
ngx_http_tiktok_prefix_ci(u_char *s, size_t len, u_char *prefix,
    size_t plen)
{
    size_t  i;

    if (len < plen) {
        return 0;
    }

    /* ngx_tolower is a macro: this file still needs no nginx object */
    for (i = 0; i < plen; i++) {
        if (ngx_tolower(s[i]) != ngx_tolower(prefix[i])) {
            return 0;
        }
    }

    return 1;
}


/*
 * Counts characters and UTF-16 code units of strict UTF-8 (no overlong
 * forms, no surrogates, nothing above U+10FFFF, no NUL).  NGX_ERROR when
 * the text is not valid.
 */

ngx_int_t
ngx_http_tiktok_utf8_count(ngx_str_t *s, size_t *chars, size_t *utf16)
{
    u_char    c, *p, *last;
    uint32_t  u;
    size_t    n, i;

    *chars = 0;
    *utf16 = 0;

    p = s->data;
    last = p + s->len;

    while (p < last) {
        c = *p++;

        if (c < 0x80) {
            if (c == 0) {
                return NGX_ERROR;
            }

            u = c;
            n = 0;

        } else if (c >= 0xc2 && c <= 0xdf) {
            u = c & 0x1f;
            n = 1;

        } else if (c >= 0xe0 && c <= 0xef) {
            u = c & 0x0f;
            n = 2;

        } else if (c >= 0xf0 && c <= 0xf4) {
            u = c & 0x07;
            n = 3;

        } else {
            return NGX_ERROR;
        }

        if ((size_t) (last - p) < n) {
            return NGX_ERROR;
        }

        for (i = 0; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                return NGX_ERROR;
            }

            u = (u << 6) | (p[i] & 0x3f);
        }

        p += n;

        /* overlong forms, surrogates, beyond Unicode */
        if ((n == 2 && u < 0x800) || (n == 3 && u < 0x10000)
            || (u >= 0xd800 && u <= 0xdfff) || u > 0x10ffff)
        {
            return NGX_ERROR;
        }

        (*chars)++;
        *utf16 += (u > 0xffff) ? 2 : 1;
    }

    return NGX_OK;
}


/*
 * Strict UTF-8 without control characters: safe as it is in SQL text
 * parameters, JSON and log lines (a user id, an echoed field name).
 */

ngx_uint_t
ngx_http_tiktok_is_printable(ngx_str_t *s)
{
    size_t  i, chars, utf16;

    for (i = 0; i < s->len; i++) {
        if (s->data[i] < 0x20 || s->data[i] == 0x7f) {
            return 0;
        }
    }

    return ngx_http_tiktok_utf8_count(s, &chars, &utf16) == NGX_OK;
}


static ngx_int_t
ngx_http_tiktok_digits(u_char *p, size_t n)
{
    ngx_int_t  v;

    v = 0;

    while (n--) {
        if (*p < '0' || *p > '9') {
            return NGX_ERROR;
        }

        v = v * 10 + (*p++ - '0');
    }

    return v;
}


/* days since 1970-01-01 of a civil date (proleptic Gregorian) */

static time_t
ngx_http_tiktok_days(ngx_int_t y, ngx_int_t m, ngx_int_t d)
{
    ngx_int_t  era, yoe, doy, doe;

    y -= (m <= 2);
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return (time_t) (era * 146097 + doe - 719468);
}


/*
 * "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)", as RFC 3339 says
 * (a lowercase t or z too); the fraction is dropped.
 */

ngx_int_t
ngx_http_tiktok_parse_rfc3339(ngx_str_t *s, time_t *t)
{
    u_char     *p, *last;
    ngx_int_t   y, mo, d, h, mi, sec, oh, om;

    p = s->data;
    last = p + s->len;

    if (s->len < 20 || s->len > 40
        || p[4] != '-' || p[7] != '-' || (p[10] != 'T' && p[10] != 't')
        || p[13] != ':' || p[16] != ':')
    {
        return NGX_ERROR;
    }

    y = ngx_http_tiktok_digits(p, 4);
    mo = ngx_http_tiktok_digits(p + 5, 2);
    d = ngx_http_tiktok_digits(p + 8, 2);
    h = ngx_http_tiktok_digits(p + 11, 2);
    mi = ngx_http_tiktok_digits(p + 14, 2);
    sec = ngx_http_tiktok_digits(p + 17, 2);

    if (y == NGX_ERROR || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23
        || mi < 0 || mi > 59 || sec < 0 || sec > 60)
    {
        return NGX_ERROR;
    }

    /* a day past the month's last falls on or after the next month's 1st */
    if (ngx_http_tiktok_days(y, mo, d)
        >= ngx_http_tiktok_days(y + mo / 12, mo % 12 + 1, 1))
    {
        return NGX_ERROR;
    }

    if (sec == 60) {
        sec = 59;               /* a leap second is the same instant here */
    }

    p += 19;

    if (*p == '.') {
        p++;

        if (p == last || *p < '0' || *p > '9') {
            return NGX_ERROR;
        }

        while (p < last && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    *t = ngx_http_tiktok_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;

    if (p < last && (*p == 'Z' || *p == 'z') && p + 1 == last) {
        return NGX_OK;
    }

    if (last - p != 6 || (*p != '+' && *p != '-') || p[3] != ':') {
        return NGX_ERROR;
    }

    oh = ngx_http_tiktok_digits(p + 1, 2);
    om = ngx_http_tiktok_digits(p + 4, 2);

    if (oh == NGX_ERROR || om == NGX_ERROR || oh > 23 || om > 59) {
        return NGX_ERROR;
    }

    /* local time = UTC + offset */
    *t += (*p == '+' ? -1 : 1) * (oh * 3600 + om * 60);

    return NGX_OK;
}


/*
 * A pull URL TikTok will accept: https, a host that is a name (not an
 * IPv4 or IPv6 address), no credentials, no fragment, and under one of
 * the prefixes verified in TikTok's portal.  Returns NULL or why not.
 */

const char *
ngx_http_tiktok_check_pull_url(ngx_str_t *url, ngx_array_t *prefixes)
{
    u_char      *host, *end, *p, *last;
    ngx_str_t   *pf;
    ngx_uint_t   i;

    if (url->len > 2048) {
        return "video_url is longer than 2048 characters";
    }

    if (url->len <= 8
        || !ngx_http_tiktok_prefix_ci(url->data, url->len,
                                      (u_char *) "https://", 8))
    {
        return "video_url must be an https URL";
    }

    last = url->data + url->len;

    for (p = url->data; p < last; p++) {
        if (*p <= ' ' || *p >= 0x7f || *p == '#' || *p == '\\') {
            return "video_url has a character a URL cannot have";
        }
    }

    host = url->data + 8;

    for (end = host; end < last && *end != '/' && *end != '?'; end++) {
        if (*end == '@') {
            return "video_url must not carry credentials";
        }
    }

    if (end == host) {
        return "video_url has no host";
    }

    /* the host without a port: an IPv6 literal, or only digits and dots */
    for (p = host; p < end && *p != ':'; p++) { /* void */ }

    for (end = p, p = host;
         p < end && ((*p >= '0' && *p <= '9') || *p == '.');
         p++)
    { /* void */ }

    if (*host == '[' || p == end) {
        return "video_url's host must be a name, not an IP address";
    }

    if (prefixes == NULL || prefixes->nelts == 0) {
        return "no tiktok_pull_url_prefixes are configured";
    }

    pf = prefixes->elts;

    for (i = 0; i < prefixes->nelts; i++) {
        if (ngx_http_tiktok_prefix_ci(url->data, url->len, pf[i].data,
                                      pf[i].len))
        {
            return NULL;
        }
    }

    return "video_url is not under a verified URL prefix";
}


ngx_uint_t
ngx_http_tiktok_is_uuid(ngx_str_t *s)
{
    size_t  i;

    if (s->len != 36) {
        return 0;
    }

    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s->data[i] != '-') {
                return 0;
            }

            continue;
        }

        if (!((s->data[i] >= '0' && s->data[i] <= '9')
              || (s->data[i] >= 'a' && s->data[i] <= 'f')
              || (s->data[i] >= 'A' && s->data[i] <= 'F')))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * The next item of a list separated by sep, an empty one included, and
 * *pos past it; 0 once the list is done.  An empty list has one empty
 * item: a walk that wants none tests *pos < last first.
 */

ngx_uint_t
ngx_http_tiktok_next_item(u_char **pos, u_char *last, u_char sep,
    ngx_str_t *item)
{
    u_char  *end;

    if (*pos > last) {
        return 0;
    }

    end = ngx_strlchr(*pos, last, sep);

    item->data = *pos;
    item->len = (end ? end : last) - *pos;

    *pos += item->len + 1;

    return 1;
}
