
/*
 * A stand-in for the parts of nginx's core the fuzz targets link: Debian's
 * nginx-dev has nginx's headers but not its .c files, and nothing may be
 * fetched, so these are written here, to the headers' contracts, for the
 * targets only (never for the module).
 *
 * The pool is deliberately unlike nginx's: every allocation is a malloc()
 * of its own, freed with the pool, so that ASan sees a read one byte past
 * any of them, where nginx's pool would hide it in a larger block.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef struct fuzz_block_s  fuzz_block_t;

struct fuzz_block_s {
    fuzz_block_t  *next;
    void          *data;
};


ngx_uint_t  ngx_pagesize;
ngx_uint_t  ngx_pagesize_shift;
ngx_uint_t  ngx_cacheline_size;



ngx_pool_t *
ngx_create_pool(size_t size, ngx_log_t *log)
{
    ngx_pool_t  *p;

    p = calloc(1, sizeof(ngx_pool_t));
    if (p == NULL) {
        return NULL;
    }

    /* the blocks' list hangs from d.next (no nginx block is ever used) */
    p->max = NGX_MAX_ALLOC_FROM_POOL;
    p->log = log;

    return p;
}


void
ngx_destroy_pool(ngx_pool_t *pool)
{
    fuzz_block_t        *b, *next;
    ngx_pool_cleanup_t  *c;

    for (c = pool->cleanup; c; c = c->next) {
        if (c->handler) {
            c->handler(c->data);
        }
    }

    for (b = (fuzz_block_t *) pool->d.next; b; b = next) {
        next = b->next;
        free(b->data);
        free(b);
    }

    free(pool);
}


void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    fuzz_block_t  *b;

    b = malloc(sizeof(fuzz_block_t));
    if (b == NULL) {
        return NULL;
    }

    /* malloc(0) may answer NULL: an empty allocation is still one */
    b->data = malloc(size ? size : 1);
    if (b->data == NULL) {
        free(b);
        return NULL;
    }

    b->next = (fuzz_block_t *) pool->d.next;
    pool->d.next = (ngx_pool_t *) b;

    return b->data;
}


void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    return ngx_palloc(pool, size);
}


void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    void  *p;

    p = ngx_palloc(pool, size);
    if (p) {
        ngx_memzero(p, size);
    }

    return p;
}


void *
ngx_pmemalign(ngx_pool_t *pool, size_t size, size_t alignment)
{
    return ngx_palloc(pool, size);
}


ngx_int_t
ngx_pfree(ngx_pool_t *pool, void *p)
{
    return NGX_DECLINED;
}


/* a cleanup with no handler yet, its data (if any) from the same pool */

ngx_pool_cleanup_t *
ngx_pool_cleanup_add(ngx_pool_t *p, size_t size)
{
    ngx_pool_cleanup_t  *c;

    c = ngx_pcalloc(p, sizeof(ngx_pool_cleanup_t));
    if (c == NULL) {
        return NULL;
    }

    if (size > 0) {
        c->data = ngx_palloc(p, size);
        if (c->data == NULL) {
            return NULL;
        }
    }

    /* newest first, as ngx_destroy_pool runs them */
    c->next = p->cleanup;
    p->cleanup = c;

    return c;
}


void *
ngx_alloc(size_t size, ngx_log_t *log)
{
    return malloc(size);
}


/* an empty, writable buffer over size fresh bytes */

ngx_buf_t *
ngx_create_temp_buf(ngx_pool_t *pool, size_t size)
{
    u_char     *mem;
    ngx_buf_t  *b;

    mem = ngx_palloc(pool, size);
    if (mem == NULL) {
        return NULL;
    }

    b = ngx_calloc_buf(pool);
    if (b == NULL) {
        return NULL;
    }

    b->start = mem;
    b->end = mem + size;
    b->pos = mem;
    b->last = mem;
    b->temporary = 1;

    return b;
}


ssize_t
ngx_read_file(ngx_file_t *file, u_char *buf, size_t size, off_t offset)
{
    ssize_t  n;

    n = pread(file->fd, buf, size, offset);
    if (n == -1) {
        return NGX_ERROR;
    }

    file->offset += n;

    return n;
}


ngx_chain_t *
ngx_alloc_chain_link(ngx_pool_t *pool)
{
    return ngx_palloc(pool, sizeof(ngx_chain_t));
}


ngx_array_t *
ngx_array_create(ngx_pool_t *p, ngx_uint_t n, size_t size)
{
    ngx_array_t  *a;

    a = ngx_palloc(p, sizeof(ngx_array_t));

    if (a == NULL || ngx_array_init(a, p, n, size) != NGX_OK) {
        return NULL;
    }

    return a;
}


void *
ngx_array_push_n(ngx_array_t *a, ngx_uint_t n)
{
    void        *elt, *new;
    ngx_uint_t   nalloc;

    if (a->nelts + n > a->nalloc) {
        nalloc = 2 * ngx_max(n, a->nalloc);

        new = ngx_palloc(a->pool, nalloc * a->size);
        if (new == NULL) {
            return NULL;
        }

        ngx_memcpy(new, a->elts, a->nelts * a->size);
        a->elts = new;
        a->nalloc = nalloc;
    }

    elt = (u_char *) a->elts + a->size * a->nelts;
    a->nelts += n;

    return elt;
}


void *
ngx_array_push(ngx_array_t *a)
{
    return ngx_array_push_n(a, 1);
}


ngx_list_t *
ngx_list_create(ngx_pool_t *pool, ngx_uint_t n, size_t size)
{
    ngx_list_t  *list;

    list = ngx_palloc(pool, sizeof(ngx_list_t));

    if (list == NULL || ngx_list_init(list, pool, n, size) != NGX_OK) {
        return NULL;
    }

    return list;
}


/* a new, empty part of nalloc elements, linked after the list's last */

static ngx_list_part_t *
fuzz_list_grow(ngx_list_t *l)
{
    ngx_list_part_t  *part;

    part = ngx_pcalloc(l->pool, sizeof(ngx_list_part_t));
    if (part == NULL) {
        return NULL;
    }

    part->elts = ngx_palloc(l->pool, l->nalloc * l->size);
    if (part->elts == NULL) {
        return NULL;
    }

    l->last->next = part;
    l->last = part;

    return part;
}


void *
ngx_list_push(ngx_list_t *l)
{
    void             *elt;
    ngx_list_part_t  *part;

    part = l->last;

    if (part->nelts == l->nalloc) {
        part = fuzz_list_grow(l);
        if (part == NULL) {
            return NULL;
        }
    }

    elt = (u_char *) part->elts + part->nelts * l->size;
    part->nelts++;

    return elt;
}


/* strings: nginx's contracts (ngx_string.h) */

void
ngx_strlow(u_char *dst, u_char *src, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        dst[i] = ngx_tolower(src[i]);
    }
}


/*
 * Copies at most n - 1 bytes of src, stopping at its NUL, and always
 * terminates: the result points at the NUL, so callers can append there.
 */

u_char *
ngx_cpystrn(u_char *dst, u_char *src, size_t n)
{
    u_char  *end;

    if (n == 0) {
        return dst;
    }

    end = dst + n - 1;

    while (dst < end && *src != '\0') {
        *dst++ = *src++;
    }

    *dst = '\0';

    return dst;
}


u_char *
ngx_pstrdup(ngx_pool_t *pool, ngx_str_t *src)
{
    u_char  *dst;

    dst = ngx_pnalloc(pool, src->len);
    if (dst == NULL) {
        return NULL;
    }

    ngx_memcpy(dst, src->data, src->len);

    return dst;
}


ngx_int_t
ngx_strncasecmp(u_char *s1, u_char *s2, size_t n)
{
    size_t     i;
    ngx_int_t  c1, c2;

    for (i = 0; i < n; i++) {
        c1 = ngx_tolower(s1[i]);
        c2 = ngx_tolower(s2[i]);

        if (c1 != c2) {
            return c1 - c2;
        }

        /* both strings end here, equal so far */

        if (c1 == '\0') {
            return 0;
        }
    }

    return 0;
}


/*
 * Finds s2 in [s1, last), ignoring case.  As in nginx's contract, n is the
 * needle's length less one, and only the haystack's first byte is lowered
 * before it meets s2[0]: callers pass a lowercase needle.
 */

u_char *
ngx_strlcasestrn(u_char *s1, u_char *last, u_char *s2, size_t n)
{
    u_char  *p;

    if (s1 >= last || (size_t) (last - s1) <= n) {
        return NULL;
    }

    for (p = s1; p < last - n; p++) {

        if (ngx_tolower(*p) != s2[0]) {
            continue;
        }

        if (ngx_strncasecmp(p + 1, s2 + 1, n) == 0) {
            return p;
        }
    }

    return NULL;
}


/* memcmp over the common prefix; on a tie the shorter sorts first */

ngx_int_t
ngx_memn2cmp(u_char *s1, u_char *s2, size_t n1, size_t n2)
{
    ngx_int_t  rc;

    rc = ngx_memcmp(s1, s2, ngx_min(n1, n2));

    if (rc != 0 || n1 == n2) {
        return rc;
    }

    return (n1 < n2) ? -1 : 1;
}


void
ngx_explicit_memzero(void *buf, size_t n)
{
    explicit_bzero(buf, n);
}


ngx_int_t
ngx_strcasecmp(u_char *s1, u_char *s2)
{
    return ngx_strncasecmp(s1, s2, (size_t) -1);
}


/*
 * The value of one digit in base 10 or 16, or -1: the parsers below refuse
 * the whole number on the first byte that is not a digit.
 */

static ngx_int_t
fuzz_digit(u_char c, ngx_uint_t base)
{
    u_char  lc;

    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (base != 16) {
        return -1;
    }

    lc = (u_char) (c | 0x20);

    if (lc >= 'a' && lc <= 'f') {
        return lc - 'a' + 10;
    }

    return -1;
}


/*
 * *value = *value * base + digit unless that passes max: the contract is
 * NGX_ERROR on overflow, never a wrapped number.
 */

static ngx_int_t
fuzz_mul_add(uint64_t *value, ngx_uint_t base, ngx_uint_t digit, uint64_t max)
{
    if (*value > (max - digit) / base) {
        return NGX_ERROR;
    }

    *value = *value * base + digit;

    return NGX_OK;
}


/* n bytes, all digits, no sign, at most max; an empty number is an error */

static ngx_int_t
fuzz_parse_number(u_char *line, size_t n, ngx_uint_t base, uint64_t max,
    uint64_t *out)
{
    size_t     i;
    uint64_t   value;
    ngx_int_t  d;

    if (n == 0) {
        return NGX_ERROR;
    }

    value = 0;

    for (i = 0; i < n; i++) {
        d = fuzz_digit(line[i], base);

        if (d < 0) {
            return NGX_ERROR;
        }

        if (fuzz_mul_add(&value, base, (ngx_uint_t) d, max) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    *out = value;

    return NGX_OK;
}


ngx_int_t
ngx_atoi(u_char *line, size_t n)
{
    uint64_t  value;

    if (fuzz_parse_number(line, n, 10, NGX_MAX_INT_T_VALUE, &value)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return (ngx_int_t) value;
}


off_t
ngx_atoof(u_char *line, size_t n)
{
    uint64_t  value;

    if (fuzz_parse_number(line, n, 10, NGX_MAX_OFF_T_VALUE, &value)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return (off_t) value;
}


time_t
ngx_atotm(u_char *line, size_t n)
{
    return (time_t) ngx_atoof(line, n);
}


ngx_int_t
ngx_hextoi(u_char *line, size_t n)
{
    uint64_t  value;

    if (fuzz_parse_number(line, n, 16, NGX_MAX_INT_T_VALUE, &value)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return (ngx_int_t) value;
}


ngx_uint_t
ngx_hash_key_lc(u_char *data, size_t len)
{
    ngx_uint_t  i, key;

    key = 0;

    for (i = 0; i < len; i++) {
        key = ngx_hash(key, ngx_tolower(data[i]));
    }

    return key;
}


/*
 * URI escaping: what a component may hold unescaped is RFC 3986's
 * unreserved set; every other byte is %XX.  Returns the count of bytes to
 * escape when dst is NULL, as nginx's does.
 */

/* RFC 3986's unreserved set, spelled out so no locale can widen it */

static ngx_uint_t
fuzz_uri_unreserved(u_char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9')
           || c == '-' || c == '.' || c == '_' || c == '~';
}


uintptr_t
ngx_escape_uri(u_char *dst, u_char *src, size_t size, ngx_uint_t type)
{
    size_t       i;
    ngx_uint_t   escapes;
    const char  *digits;

    digits = "0123456789ABCDEF";

    if (dst == NULL) {
        escapes = 0;

        for (i = 0; i < size; i++) {
            if (!fuzz_uri_unreserved(src[i])) {
                escapes++;
            }
        }

        return (uintptr_t) escapes;
    }

    for (i = 0; i < size; i++) {
        if (fuzz_uri_unreserved(src[i])) {
            *dst++ = src[i];
            continue;
        }

        *dst++ = '%';
        *dst++ = digits[src[i] >> 4];
        *dst++ = digits[src[i] & 0x0f];
    }

    return (uintptr_t) dst;
}


/*
 * nginx's unescaping for NGX_UNESCAPE_URI (what the module asks for): %XX
 * is a byte; after a "%" that no hex digit follows the "%" alone is
 * dropped, a "%X" with a bad second byte is dropped with it, and a "%" or
 * "%X" cut off by the end is dropped; a "?" (plain or escaped) is kept and
 * ends it.  Never longer than its input.
 */

void
ngx_unescape_uri(u_char **dst, u_char **src, size_t size, ngx_uint_t type)
{
    u_char     *d, *s, *end, c;
    ngx_int_t   hi, lo;
    ngx_uint_t  query_ends;

    d = *dst;
    s = *src;
    end = s + size;
    query_ends = type & NGX_UNESCAPE_URI;

    while (s < end) {

        if (*s != '%') {
            c = *s++;
            *d++ = c;

            if (c == '?' && query_ends) {
                break;
            }

            continue;
        }

        s++;

        if (s == end) {
            break;
        }

        hi = fuzz_digit(*s, 16);

        if (hi < 0) {
            /* the byte after a bad "%" is kept as it is, even "%" or "?" */
            *d++ = *s++;
            continue;
        }

        s++;

        if (s == end) {
            break;
        }

        lo = fuzz_digit(*s++, 16);

        if (lo < 0) {
            continue;
        }

        c = (u_char) (hi << 4 | lo);
        *d++ = c;

        if (c == '?' && query_ends) {
            break;
        }
    }

    *dst = d;
    *src = s;
}


/*
 * nginx's $arg_NAME lookup (ngx_http_parse.c): the value of the first
 * "&"-separated pair whose name is NAME, compared without case.
 */

ngx_int_t
ngx_http_arg(ngx_http_request_t *r, u_char *name, size_t len,
    ngx_str_t *value)
{
    u_char  *pair, *end, *last;

    pair = r->args.data;
    last = pair + r->args.len;

    while (pair < last) {
        end = ngx_strlchr(pair, last, '&');

        if (end == NULL) {
            end = last;
        }

        if ((size_t) (end - pair) > len
            && pair[len] == '='
            && ngx_strncasecmp(pair, name, len) == 0)
        {
            value->data = pair + len + 1;
            value->len = end - value->data;

            return NGX_OK;
        }

        pair = end + 1;
    }

    return NGX_DECLINED;
}


/*
 * Base64 as a bit stream: each symbol adds 6 bits to an accumulator and
 * every full 8 bits is a byte.  Decoding stops at the first "=", so padding
 * is optional; a lone trailing symbol (6 bits, no whole byte) is an error,
 * and so is any byte outside the alphabet.
 */

static ngx_int_t
fuzz_base64_decode(ngx_str_t *dst, ngx_str_t *src, const char *alphabet)
{
    u_char      *d, value[256];
    size_t       i, n;
    uint32_t     acc;
    ngx_uint_t   bits;

    ngx_memset(value, 0xff, sizeof(value));

    for (i = 0; i < 64; i++) {
        value[(u_char) alphabet[i]] = (u_char) i;
    }

    n = 0;

    while (n < src->len && src->data[n] != '=') {
        if (value[src->data[n]] == 0xff) {
            return NGX_ERROR;
        }

        n++;
    }

    if (n % 4 == 1) {
        return NGX_ERROR;
    }

    d = dst->data;
    acc = 0;
    bits = 0;

    for (i = 0; i < n; i++) {
        acc = (acc << 6 | value[src->data[i]]) & 0xffffff;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            *d++ = (u_char) (acc >> bits);
        }
    }

    dst->len = d - dst->data;

    return NGX_OK;
}


ngx_int_t
ngx_decode_base64(ngx_str_t *dst, ngx_str_t *src)
{
    return fuzz_base64_decode(dst, src, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "abcdefghijklmnopqrstuvwxyz"
                                        "0123456789+/");
}


ngx_int_t
ngx_decode_base64url(ngx_str_t *dst, ngx_str_t *src)
{
    return fuzz_base64_decode(dst, src, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "abcdefghijklmnopqrstuvwxyz"
                                        "0123456789-_");
}


/*
 * The same stream the other way: 8 bits in, 6 bits out; the last symbol's
 * missing low bits are zero, and "=" pads to a multiple of 4 when asked.
 */

static void
fuzz_base64_encode(ngx_str_t *dst, ngx_str_t *src, const char *alphabet,
    ngx_uint_t padding)
{
    u_char      *d;
    size_t       i;
    uint32_t     acc;
    ngx_uint_t   bits;

    d = dst->data;
    acc = 0;
    bits = 0;

    for (i = 0; i < src->len; i++) {
        acc = (acc << 8 | src->data[i]) & 0xffff;
        bits += 8;

        while (bits >= 6) {
            bits -= 6;
            *d++ = alphabet[(acc >> bits) & 0x3f];
        }
    }

    if (bits > 0) {
        *d++ = alphabet[(acc << (6 - bits)) & 0x3f];
    }

    while (padding && (d - dst->data) % 4 != 0) {
        *d++ = '=';
    }

    dst->len = d - dst->data;
}


void
ngx_encode_base64(ngx_str_t *dst, ngx_str_t *src)
{
    fuzz_base64_encode(dst, src, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "abcdefghijklmnopqrstuvwxyz0123456789+/", 1);
}


void
ngx_encode_base64url(ngx_str_t *dst, ngx_str_t *src)
{
    fuzz_base64_encode(dst, src, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "abcdefghijklmnopqrstuvwxyz0123456789-_", 0);
}


/* nginx's calendar: months from 1, the year in full */

void
ngx_gmtime(time_t t, ngx_tm_t *tp)
{
    struct tm  tm;

    if (gmtime_r(&t, &tm) == NULL) {
        ngx_memzero(&tm, sizeof(struct tm));
    }

    *tp = tm;
    tp->ngx_tm_mon = tm.tm_mon + 1;
    tp->ngx_tm_year = tm.tm_year + 1900;
}


/*
 * nginx's formats (ngx_string.c's comment lists them): "0" padding and a
 * width, then any of the "u", "x"/"X" and "*" prefixes, then one of
 * %V %s %c %d %i %z %l %L %O %T %M %A %P %D %p %N %Z %%, each taking the
 * argument type nginx's does, so a mismatch reads what nginx would read.
 * Any other byte after "%" is written as it is.
 */

typedef struct {
    u_char      pad;            /* ' ', or '0' for a "%0..." width */
    size_t      width;          /* the least count of digits */
    ngx_uint_t  is_unsigned;    /* "u", "x" or "X" */
    ngx_uint_t  upper_hex;      /* "X" */
    ngx_uint_t  hex;            /* "x" or "X" */
    ngx_uint_t  stars;          /* "*": size_t lengths to read first */
} fuzz_spec_t;


/* what sits between "%" and the conversion; fmt is left on the latter */

static const char *
fuzz_parse_spec(const char *fmt, fuzz_spec_t *spec)
{
    ngx_memzero(spec, sizeof(fuzz_spec_t));

    spec->pad = (u_char) (*fmt == '0' ? '0' : ' ');

    while (*fmt >= '0' && *fmt <= '9') {
        spec->width = spec->width * 10 + (*fmt - '0');
        fmt++;
    }

    for ( ;; ) {
        if (*fmt == 'u') {
            spec->is_unsigned = 1;

        } else if (*fmt == 'x' || *fmt == 'X') {
            spec->is_unsigned = 1;
            spec->hex = 1;
            spec->upper_hex = (*fmt == 'X');

        } else if (*fmt == '*') {
            spec->stars++;

        } else {
            return fmt;
        }

        fmt++;
    }
}


/* copies what fits of len bytes */

static u_char *
fuzz_put_bytes(u_char *buf, u_char *last, u_char *p, size_t len)
{
    if (len > (size_t) (last - buf)) {
        len = last - buf;
    }

    return ngx_cpymem(buf, p, len);
}


/*
 * The one number formatter: digits of value in base 10 or 16 behind the
 * padding the width asks for (the width counts digits only, after any
 * "-" the caller wrote), all cut at last.
 */

static u_char *
fuzz_put_uint(u_char *buf, u_char *last, fuzz_spec_t *spec, uint64_t value)
{
    u_char         digits[NGX_INT64_LEN + 1], *p, *end;
    ngx_uint_t     base;
    const u_char  *alphabet;

    base = spec->hex ? 16 : 10;
    alphabet = (const u_char *) (spec->upper_hex ? "0123456789ABCDEF"
                                                 : "0123456789abcdef");

    /* written backwards, least significant digit first */

    end = digits + sizeof(digits);
    p = end;

    do {
        *--p = alphabet[value % base];
        value /= base;
    } while (value != 0);

    while (spec->width > (size_t) (end - p) && buf < last) {
        *buf++ = spec->pad;
        spec->width--;
    }

    return fuzz_put_bytes(buf, last, p, end - p);
}


static u_char *
fuzz_put_int(u_char *buf, u_char *last, fuzz_spec_t *spec, int64_t value)
{
    uint64_t  magnitude;

    if (value >= 0) {
        return fuzz_put_uint(buf, last, spec, (uint64_t) value);
    }

    if (buf < last) {
        *buf++ = '-';
    }

    /* -(value + 1) + 1: INT64_MIN has no positive int64_t */

    magnitude = (uint64_t) -(value + 1) + 1;

    return fuzz_put_uint(buf, last, spec, magnitude);
}


u_char *
ngx_vslprintf(u_char *buf, u_char *last, const char *fmt, va_list args)
{
    u_char       *s;
    size_t        slen;
    int64_t       i64;
    uint64_t      u64;
    ngx_str_t    *v;
    ngx_uint_t    is_signed;
    fuzz_spec_t   spec;

    while (*fmt != '\0' && buf < last) {

        if (*fmt != '%') {
            *buf++ = *fmt++;
            continue;
        }

        fmt = fuzz_parse_spec(fmt + 1, &spec);

        /* "*" lengths come before the conversion's own argument */

        slen = (size_t) -1;

        while (spec.stars) {
            slen = va_arg(args, size_t);
            spec.stars--;
        }

        /* the conversion: text first, numbers fall through below */

        i64 = 0;
        u64 = 0;
        is_signed = !spec.is_unsigned;

        switch (*fmt) {

        case '\0':
            /* a "%" that ends the format: nothing to convert */
            return buf;

        case 'V':
            v = va_arg(args, ngx_str_t *);
            buf = fuzz_put_bytes(buf, last, v->data, v->len);
            fmt++;
            continue;

        case 's':
            s = va_arg(args, u_char *);

            if (slen == (size_t) -1) {
                slen = ngx_strlen(s);
            }

            buf = fuzz_put_bytes(buf, last, s, slen);
            fmt++;
            continue;

        case 'c':
            *buf++ = (u_char) va_arg(args, int);
            fmt++;
            continue;

        case 'Z':
            *buf++ = '\0';
            fmt++;
            continue;

        case 'N':
            *buf++ = LF;
            fmt++;
            continue;

        case 'O':
            i64 = va_arg(args, off_t);
            is_signed = 1;
            break;

        case 'P':
            i64 = va_arg(args, ngx_pid_t);
            is_signed = 1;
            break;

        case 'T':
            i64 = va_arg(args, time_t);
            is_signed = 1;
            break;

        case 'M':
            u64 = va_arg(args, ngx_msec_t);
            is_signed = 0;
            break;

        case 'p':
            u64 = (uintptr_t) va_arg(args, void *);
            is_signed = 0;
            spec.hex = 1;
            spec.upper_hex = 1;
            spec.pad = '0';
            spec.width = 2 * sizeof(void *);
            break;

        case 'z':
            if (is_signed) {
                i64 = va_arg(args, ssize_t);

            } else {
                u64 = va_arg(args, size_t);
            }

            break;

        case 'i':
            if (is_signed) {
                i64 = va_arg(args, ngx_int_t);

            } else {
                u64 = va_arg(args, ngx_uint_t);
            }

            break;

        case 'd':
            if (is_signed) {
                i64 = va_arg(args, int);

            } else {
                u64 = va_arg(args, u_int);
            }

            break;

        case 'l':
            if (is_signed) {
                i64 = va_arg(args, long);

            } else {
                u64 = va_arg(args, u_long);
            }

            break;

        case 'D':
            if (is_signed) {
                i64 = va_arg(args, int32_t);

            } else {
                u64 = va_arg(args, uint32_t);
            }

            break;

        case 'L':
            if (is_signed) {
                i64 = va_arg(args, int64_t);

            } else {
                u64 = va_arg(args, uint64_t);
            }

            break;

        case 'A':
            if (is_signed) {
                i64 = va_arg(args, ngx_atomic_int_t);

            } else {
                u64 = va_arg(args, ngx_atomic_uint_t);
            }

            break;

        default:
            /* "%%" and anything unknown: the byte itself */
            *buf++ = *fmt++;
            continue;
        }

        if (is_signed) {
            buf = fuzz_put_int(buf, last, &spec, i64);

        } else {
            buf = fuzz_put_uint(buf, last, &spec, u64);
        }

        fmt++;
    }

    return buf;
}


u_char * ngx_cdecl
ngx_sprintf(u_char *buf, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, (void *) -1, fmt, args);
    va_end(args);

    return p;
}


u_char * ngx_cdecl
ngx_snprintf(u_char *buf, size_t max, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + max, fmt, args);
    va_end(args);

    return p;
}


u_char * ngx_cdecl
ngx_slprintf(u_char *buf, u_char *last, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, last, fmt, args);
    va_end(args);

    return p;
}
