
/*
 * Unit tests for src/ngx_http_tiktok_crypto.c, printed as TAP.
 *
 * Linked with the crypto source and libcrypto only, no nginx objects.
 * Buffers under test are malloc()ed at their exact size, so an overrun by
 * one byte shows under AddressSanitizer or valgrind; everything is freed,
 * so a leak check stays quiet:
 *
 *     valgrind --leak-check=full --error-exitcode=1 build/unit/crypto_test
 *
 * Known answers: GCM test cases 13-16 (McGrew and Viega, "The Galois/Counter
 * Mode of Operation", AES-256), SHA-256 from FIPS 180-2 appendix B, HMAC
 * from RFC 4231; the sealed-token vector was made with Python's
 * cryptography.AESGCM from the layout in ngx_http_tiktok_crypto.h.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_tiktok_crypto.h"


#define OVERHEAD  NGX_HTTP_TIKTOK_SEAL_OVERHEAD


static ngx_uint_t  tests_run;
static ngx_uint_t  tests_failed;


static void ok(int cond, const char *fmt, ...);
static ngx_str_t str(const char *s);
static size_t unhex(const char *hex, u_char *out);
static void *xmalloc(size_t size);
static ngx_int_t decode(const char *text, ngx_http_tiktok_key_t *key);
static u_char *seal(ngx_http_tiktok_keyring_t *kr, const char *user,
    const char *column, const u_char *plain, size_t len, ngx_str_t *sealed);
static ngx_int_t open_sealed(ngx_http_tiktok_keyring_t *kr,
    const char *user, const char *column, ngx_str_t *sealed, u_char **out,
    size_t *out_len, ngx_uint_t *used_previous);
static int all_zero(const u_char *p, size_t len);
static int contains(const u_char *p, size_t len, const char *needle);
static void tamper_region(ngx_http_tiktok_keyring_t *kr, ngx_str_t *sealed,
    size_t from, size_t to, const char *region);
static void check_sha256(const char *name, const u_char *data, size_t len,
    const char *hex);
static void check_hmac(const char *name, const u_char *key, size_t key_len,
    const u_char *data, size_t len, const char *hex);

static void test_key_decode(void);
static void test_round_trip(void);
static void test_fresh_nonce(void);
static void test_tamper(void);
static void test_aad(void);
static void test_wrong_key(void);
static void test_rotation(void);
static void test_truncated(void);
static void test_misuse(void);
static void test_independent_vector(void);
static void test_gcm_vectors(void);
static void test_sha256(void);
static void test_hmac(void);
static void test_helpers(void);


/* K1's base64 has '+' and '/' (url-safe: '-' and '_'); K2 is 00..1f */
#define K1_HEX   "fbefbeffffff000102030405060708090a0b0c0d0e0f10111213141516" \
                 "171819"
#define K1_STD   "++++////AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBk="
#define K1_URL   "----____AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBk="
#define K1_ID    "c3d7e268"
#define K2_HEX   "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c" \
                 "1d1e1f"
#define K2_ID    "479435c5"


int
main(void)
{
    test_key_decode();
    test_round_trip();
    test_fresh_nonce();
    test_tamper();
    test_aad();
    test_wrong_key();
    test_rotation();
    test_truncated();
    test_misuse();
    test_independent_vector();
    test_gcm_vectors();
    test_sha256();
    test_hmac();
    test_helpers();

    printf("1..%lu\n", (unsigned long) tests_run);

    if (tests_failed) {
        printf("# %lu of %lu failed\n", (unsigned long) tests_failed,
               (unsigned long) tests_run);
        return 1;
    }

    return 0;
}


static void
ok(int cond, const char *fmt, ...)
{
    va_list  args;

    tests_run++;

    if (!cond) {
        tests_failed++;
    }

    printf("%sok %lu - ", cond ? "" : "not ", (unsigned long) tests_run);

    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);

    printf("\n");
    fflush(stdout);
}


static ngx_str_t
str(const char *s)
{
    ngx_str_t  r;

    r.data = (u_char *) s;
    r.len = strlen(s);

    return r;
}


static size_t
unhex(const char *hex, u_char *out)
{
    size_t        i, len;
    unsigned int  byte;

    len = strlen(hex) / 2;

    for (i = 0; i < len; i++) {
        if (sscanf(hex + 2 * i, "%2x", &byte) != 1) {
            fprintf(stderr, "bad hex in test: %s\n", hex);
            exit(2);
        }

        out[i] = (u_char) byte;
    }

    return len;
}


static void *
xmalloc(size_t size)
{
    void  *p;

    /* malloc(0) may answer NULL; one byte keeps the pointer real */
    p = malloc(size ? size : 1);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }

    return p;
}


static ngx_int_t
decode(const char *text, ngx_http_tiktok_key_t *key)
{
    ngx_str_t  s;

    s = str(text);

    return ngx_http_tiktok_key_decode(&s, key);
}


/* seals into an exactly sized heap buffer; the caller frees it */

static u_char *
seal(ngx_http_tiktok_keyring_t *kr, const char *user, const char *column,
    const u_char *plain, size_t len, ngx_str_t *sealed)
{
    u_char     *out;
    ngx_str_t   u, c, p;

    u = str(user);
    c = str(column);
    p.data = (u_char *) plain;
    p.len = len;

    out = xmalloc(len + OVERHEAD);

    /* every later check depends on this: stop rather than cascade */

    if (ngx_http_tiktok_seal(kr, &u, &c, &p, out) != NGX_OK) {
        printf("Bail out! ngx_http_tiktok_seal() failed\n");
        exit(1);
    }

    sealed->data = out;
    sealed->len = len + OVERHEAD;

    return out;
}


/*
 * opens into an exactly sized heap buffer prefilled with 0xa5, so a test
 * can see what a failed open left behind; the caller frees *out
 */

static ngx_int_t
open_sealed(ngx_http_tiktok_keyring_t *kr, const char *user,
    const char *column, ngx_str_t *sealed, u_char **out, size_t *out_len,
    ngx_uint_t *used_previous)
{
    size_t     size;
    ngx_str_t  u, c;

    u = str(user);
    c = str(column);

    size = sealed->len > OVERHEAD ? sealed->len - OVERHEAD : 0;

    *out = xmalloc(size);
    memset(*out, 0xa5, size);

    return ngx_http_tiktok_open(kr, &u, &c, sealed, *out, out_len,
                                used_previous);
}


static int
all_zero(const u_char *p, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (p[i]) {
            return 0;
        }
    }

    return 1;
}


static int
contains(const u_char *p, size_t len, const char *needle)
{
    size_t  i, n;

    n = strlen(needle);

    for (i = 0; i + n <= len; i++) {
        if (memcmp(p + i, needle, n) == 0) {
            return 1;
        }
    }

    return 0;
}


static void
test_key_decode(void)
{
    u_char                 k1[32], id[4];
    ngx_http_tiktok_key_t  key, before;

    unhex(K1_HEX, k1);
    unhex(K1_ID, id);

    memset(&key, 0, sizeof(key));
    ok(decode(K1_HEX, &key) == NGX_OK
       && memcmp(key.key, k1, 32) == 0 && key.set,
       "key: 64 lowercase hex digits");
    ok(memcmp(key.id, id, 4) == 0,
       "key: id is SHA-256(\"ngx_http_tiktok key id\" || key)[0..4]");

    memset(&key, 0, sizeof(key));
    ok(decode("FBEFBEFFFFFF000102030405060708090A0B0C0D0E0F1011121314151617"
              "1819", &key) == NGX_OK
       && memcmp(key.key, k1, 32) == 0,
       "key: 64 uppercase hex digits");

    memset(&key, 0, sizeof(key));
    ok(decode(K1_STD, &key) == NGX_OK && memcmp(key.key, k1, 32) == 0
       && memcmp(key.id, id, 4) == 0,
       "key: base64, standard alphabet, padded");

    memset(&key, 0, sizeof(key));
    ok(decode("++++////AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBk", &key) == NGX_OK
       && memcmp(key.key, k1, 32) == 0,
       "key: base64, standard alphabet, unpadded");

    memset(&key, 0, sizeof(key));
    ok(decode(K1_URL, &key) == NGX_OK && memcmp(key.key, k1, 32) == 0,
       "key: base64, url-safe alphabet, padded");

    memset(&key, 0, sizeof(key));
    ok(decode("----____AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBk", &key) == NGX_OK
       && memcmp(key.key, k1, 32) == 0,
       "key: base64, url-safe alphabet, unpadded");

    ok(decode("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e",
              &key) == NGX_ERROR,
       "key: 31 bytes of hex refused");
    ok(decode("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==", &key)
       == NGX_ERROR,
       "key: 31 bytes of base64 refused");
    ok(decode("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg", &key) == NGX_ERROR,
       "key: 31 bytes of unpadded base64 refused");
    ok(decode("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d"
              "1e1f20", &key) == NGX_ERROR,
       "key: 33 bytes of hex refused");
    ok(decode("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g", &key)
       == NGX_ERROR,
       "key: 33 bytes of base64 refused");

    ok(decode("", &key) == NGX_ERROR, "key: empty refused");
    ok(decode("not a key, just some words!", &key) == NGX_ERROR,
       "key: garbage refused");
    ok(decode("g00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d"
              "1e1f", &key) == NGX_ERROR,
       "key: 64 characters with a non-hex digit refused");
    ok(decode("++--////AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBk=", &key)
       == NGX_ERROR,
       "key: mixed base64 alphabets refused");
    ok(decode("++++////AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBl=", &key)
       == NGX_ERROR,
       "key: base64 with non-zero trailing bits refused");
    ok(decode("++++////AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBk==", &key)
       == NGX_ERROR
       && decode("++++////AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGB=k", &key)
          == NGX_ERROR
       && decode("++++////AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBk===", &key)
          == NGX_ERROR,
       "key: misplaced or excess padding refused");

    ok(decode(" " K1_HEX, &key) == NGX_ERROR
       && decode(K1_HEX "\n", &key) == NGX_ERROR
       && decode(K1_STD "\n", &key) == NGX_ERROR
       && decode("++++////AAECAwQFBgcI CQoLDA0ODxAREhMUFRYXGBk=", &key)
          == NGX_ERROR
       && decode("++++////AAECAwQFBgcI\tCQoLDA0ODxAREhMUFRYXGBk", &key)
          == NGX_ERROR
       && decode("fbefbeffffff0001020304050607 8090a0b0c0d0e0f1011121314151617"
                 "1819", &key) == NGX_ERROR,
       "key: whitespace anywhere refused");

    memset(&before, 0x5a, sizeof(before));
    before.set = 0;
    key = before;
    ok(decode("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==", &key)
       == NGX_ERROR
       && memcmp(&key, &before, sizeof(key)) == 0,
       "key: a refused text leaves the key as it was");

    memset(&key, 0, sizeof(key));
    unhex(K2_ID, id);
    ok(decode(K2_HEX, &key) == NGX_OK && memcmp(key.id, id, 4) == 0,
       "key: id of a second key (known answer)");
}


static void
test_round_trip(void)
{
    u_char                     *sealed_buf, *out, *big, id[4];
    size_t                      out_len;
    ngx_int_t                   rc;
    ngx_str_t                   sealed;
    ngx_uint_t                  prev;
    ngx_http_tiktok_keyring_t   kr;

    memset(&kr, 0, sizeof(kr));
    decode(K1_HEX, &kr.current);
    unhex(K1_ID, id);

    sealed_buf = seal(&kr, "u-42", "access_token", (u_char *) "hello", 5,
                      &sealed);
    ok(sealed.len == 5 + OVERHEAD,
       "seal: NGX_OK, length is plaintext + 32");
    ok(memcmp(sealed.data, id, 4) == 0,
       "seal: output starts with the key id");
    ok(!contains(sealed.data, sealed.len, "hello"),
       "seal: plaintext does not appear in the output");

    prev = 7;
    out_len = 0;
    rc = open_sealed(&kr, "u-42", "access_token", &sealed, &out, &out_len,
                     &prev);
    ok(rc == NGX_OK
       && out_len == 5 && memcmp(out, "hello", 5) == 0 && prev == 0,
       "open: round trip of a short token, current key");
    free(out);
    free(sealed_buf);

    sealed_buf = seal(&kr, "u-42", "refresh_token", (u_char *) "", 0,
                      &sealed);
    out_len = 99;
    rc = open_sealed(&kr, "u-42", "refresh_token", &sealed, &out, &out_len,
                     &prev);
    ok(sealed.len == OVERHEAD && rc == NGX_OK && out_len == 0,
       "open: round trip of an empty plaintext");
    free(out);
    free(sealed_buf);

    big = xmalloc(4096);
    ok(ngx_http_tiktok_random(big, 4096) == NGX_OK, "random: 4096 bytes");

    sealed_buf = seal(&kr, "u-42", "access_token", big, 4096, &sealed);
    rc = open_sealed(&kr, "u-42", "access_token", &sealed, &out, &out_len,
                     &prev);
    ok(rc == NGX_OK
       && out_len == 4096 && memcmp(out, big, 4096) == 0,
       "open: round trip of a 4 KB plaintext");
    free(out);

    rc = open_sealed(&kr, "u-42", "access_token", &sealed, &out, NULL, NULL);
    ok(rc == NGX_OK && memcmp(out, big, 4096) == 0,
       "open: out_len and used_previous may be NULL");
    free(out);
    free(sealed_buf);
    free(big);
}


static void
test_fresh_nonce(void)
{
    u_char                     *a, *b;
    ngx_str_t                   sa, sb;
    ngx_http_tiktok_keyring_t   kr;

    memset(&kr, 0, sizeof(kr));
    decode(K1_HEX, &kr.current);

    a = seal(&kr, "u-1", "access_token", (u_char *) "same", 4, &sa);
    b = seal(&kr, "u-1", "access_token", (u_char *) "same", 4, &sb);

    ok(memcmp(a + 4, b + 4, NGX_HTTP_TIKTOK_NONCE_LEN) != 0
       && memcmp(a + 16, b + 16, sa.len - 16) != 0,
       "seal: two seals of one plaintext differ (fresh nonce)");

    free(a);
    free(b);
}


/* every single-bit change inside [from, to) must fail to open */

static void
tamper_region(ngx_http_tiktok_keyring_t *kr, ngx_str_t *sealed, size_t from,
    size_t to, const char *region)
{
    u_char      *copy, *out;
    size_t       i, plain_len;
    ngx_int_t    rc;
    ngx_str_t    s;
    ngx_uint_t   bit, bad, leaked;

    plain_len = sealed->len - OVERHEAD;
    copy = xmalloc(sealed->len);

    bad = 0;
    leaked = 0;

    for (i = from; i < to; i++) {
        for (bit = 0; bit < 8; bit++) {
            memcpy(copy, sealed->data, sealed->len);
            copy[i] ^= (u_char) (1 << bit);

            s.data = copy;
            s.len = sealed->len;

            rc = open_sealed(kr, "u-42", "access_token", &s, &out, NULL,
                             NULL);
            if (rc != NGX_DECLINED) {
                bad++;
            }

            /* either untouched (0xa5) or cleansed (0): never plaintext */
            if (contains(out, plain_len, "secret")) {
                leaked++;
            }

            free(out);
        }
    }

    ok(bad == 0 && leaked == 0,
       "tamper: every bit flipped in the %s -> NGX_DECLINED, no plaintext "
       "left (%lu bad, %lu leaked)", region, (unsigned long) bad,
       (unsigned long) leaked);

    free(copy);
}


static void
test_tamper(void)
{
    u_char                     *buf, *out;
    size_t                      len;
    ngx_int_t                   rc;
    ngx_str_t                   sealed;
    ngx_http_tiktok_keyring_t   kr;

    memset(&kr, 0, sizeof(kr));
    decode(K1_HEX, &kr.current);
    decode(K2_HEX, &kr.previous);

    len = sizeof("secret token value") - 1;
    buf = seal(&kr, "u-42", "access_token", (u_char *) "secret token value",
               len, &sealed);

    tamper_region(&kr, &sealed, 0, 4, "key id");
    tamper_region(&kr, &sealed, 4, 16, "nonce");
    tamper_region(&kr, &sealed, 16, 16 + len, "ciphertext");
    tamper_region(&kr, &sealed, 16 + len, sealed.len, "tag");

    /* the id of the other configured key: authentication, not lookup, fails */
    memcpy(buf, kr.previous.id, 4);
    rc = open_sealed(&kr, "u-42", "access_token", &sealed, &out, NULL, NULL);
    ok(rc == NGX_DECLINED && all_zero(out, len),
       "tamper: key id swapped for the previous key's -> NGX_DECLINED, "
       "out cleansed");
    free(out);
    memcpy(buf, kr.current.id, 4);

    buf[sealed.len - 1] ^= 0x80;
    rc = open_sealed(&kr, "u-42", "access_token", &sealed, &out, NULL, NULL);
    ok(rc == NGX_DECLINED && all_zero(out, len),
       "tamper: after a failed tag check out is all zeros");
    free(out);
    buf[sealed.len - 1] ^= 0x80;

    rc = open_sealed(&kr, "u-42", "access_token", &sealed, &out, NULL, NULL);
    ok(rc == NGX_OK && memcmp(out, "secret token value", len) == 0,
       "tamper: the untouched copy still opens");
    free(out);

    free(buf);
}


static void
test_aad(void)
{
    u_char                     *buf, *out;
    ngx_int_t                   rc;
    ngx_str_t                   sealed;
    ngx_http_tiktok_keyring_t   kr;

    memset(&kr, 0, sizeof(kr));
    decode(K1_HEX, &kr.current);

    buf = seal(&kr, "u-42", "access_token", (u_char *) "tok", 3, &sealed);

    rc = open_sealed(&kr, "u-43", "access_token", &sealed, &out, NULL, NULL);
    ok(rc == NGX_DECLINED,
       "aad: another user id -> NGX_DECLINED");
    free(out);

    rc = open_sealed(&kr, "u-42", "refresh_token", &sealed, &out, NULL, NULL);
    ok(rc == NGX_DECLINED,
       "aad: another column -> NGX_DECLINED");
    free(out);

    rc = open_sealed(&kr, "", "access_token", &sealed, &out, NULL, NULL);
    ok(rc == NGX_DECLINED,
       "aad: empty user id -> NGX_DECLINED");
    free(out);
    free(buf);

    buf = seal(&kr, "ab", "c", (u_char *) "tok", 3, &sealed);

    rc = open_sealed(&kr, "a", "bc", &sealed, &out, NULL, NULL);
    ok(rc == NGX_DECLINED,
       "aad: (\"ab\",\"c\") does not open as (\"a\",\"bc\")");
    free(out);

    rc = open_sealed(&kr, "ab", "c", &sealed, &out, NULL, NULL);
    ok(rc == NGX_OK,
       "aad: (\"ab\",\"c\") opens as itself");
    free(out);
    free(buf);
}


static void
test_wrong_key(void)
{
    u_char                     *buf, *out;
    ngx_int_t                   rc;
    ngx_str_t                   sealed;
    ngx_http_tiktok_keyring_t   kr1, kr2, forged;

    memset(&kr1, 0, sizeof(kr1));
    memset(&kr2, 0, sizeof(kr2));
    decode(K1_HEX, &kr1.current);
    decode(K2_HEX, &kr2.current);

    buf = seal(&kr1, "u-42", "access_token", (u_char *) "tok", 3, &sealed);

    rc = open_sealed(&kr2, "u-42", "access_token", &sealed, &out, NULL, NULL);
    ok(rc == NGX_DECLINED,
       "wrong key: another key (unknown id) -> NGX_DECLINED");
    free(out);

    /* the id matches but the key does not: GCM must refuse it */
    forged = kr2;
    memcpy(forged.current.id, kr1.current.id, 4);

    rc = open_sealed(&forged, "u-42", "access_token", &sealed, &out, NULL,
                     NULL);
    ok(rc == NGX_DECLINED && all_zero(out, 3),
       "wrong key: matching id, wrong key -> NGX_DECLINED, out cleansed");
    free(out);
    free(buf);
}


static void
test_rotation(void)
{
    u_char                     *old_buf, *new_buf, *out, id[4];
    ngx_int_t                   rc;
    ngx_str_t                   old_sealed, new_sealed;
    ngx_uint_t                  prev;
    ngx_http_tiktok_keyring_t   old, rotated, new_only, clash;

    memset(&old, 0, sizeof(old));
    decode(K1_HEX, &old.current);

    memset(&rotated, 0, sizeof(rotated));
    decode(K2_HEX, &rotated.current);
    decode(K1_HEX, &rotated.previous);

    memset(&new_only, 0, sizeof(new_only));
    decode(K2_HEX, &new_only.current);

    old_buf = seal(&old, "u-42", "access_token", (u_char *) "old tok", 7,
                   &old_sealed);
    new_buf = seal(&rotated, "u-42", "access_token", (u_char *) "new tok", 7,
                   &new_sealed);

    prev = 7;
    rc = open_sealed(&rotated, "u-42", "access_token", &old_sealed, &out,
                     NULL, &prev);
    ok(rc == NGX_OK
       && memcmp(out, "old tok", 7) == 0 && prev == 1,
       "rotation: sealed with the old key opens with {new, previous=old}, "
       "used_previous=1");
    free(out);

    unhex(K2_ID, id);
    ok(memcmp(new_buf, id, 4) == 0,
       "rotation: seal uses the current key, not the previous");

    prev = 7;
    rc = open_sealed(&rotated, "u-42", "access_token", &new_sealed, &out,
                     NULL, &prev);
    ok(rc == NGX_OK
       && memcmp(out, "new tok", 7) == 0 && prev == 0,
       "rotation: sealed with the new key opens, used_previous=0");
    free(out);

    rc = open_sealed(&new_only, "u-42", "access_token", &old_sealed, &out,
                     NULL, NULL);
    ok(rc == NGX_DECLINED,
       "rotation: old ciphertext, keyring without previous -> NGX_DECLINED");
    free(out);

    rc = open_sealed(&old, "u-42", "access_token", &new_sealed, &out, NULL,
                     NULL);
    ok(rc == NGX_DECLINED,
       "rotation: new ciphertext, old keyring -> NGX_DECLINED");
    free(out);

    /* current carries the old key's id by accident: previous still tried */
    clash = rotated;
    memcpy(clash.current.id, clash.previous.id, 4);
    prev = 7;
    rc = open_sealed(&clash, "u-42", "access_token", &old_sealed, &out, NULL,
                     &prev);
    ok(rc == NGX_OK
       && memcmp(out, "old tok", 7) == 0 && prev == 1,
       "rotation: both keys share the id -> the one that authenticates");
    free(out);

    free(old_buf);
    free(new_buf);
}


static void
test_truncated(void)
{
    u_char                     *buf, *out;
    size_t                      len, n;
    ngx_int_t                   rc;
    ngx_str_t                   sealed, s;
    ngx_uint_t                  bad;
    ngx_http_tiktok_keyring_t   kr;

    memset(&kr, 0, sizeof(kr));
    decode(K1_HEX, &kr.current);

    len = 5;
    buf = seal(&kr, "u-42", "access_token", (u_char *) "hello", len, &sealed);

    /* each prefix copied to its own exact buffer: no read past its end */

    for (n = 0; n <= OVERHEAD; n++) {
        s.data = xmalloc(n);
        memcpy(s.data, buf, n);
        s.len = n;

        rc = open_sealed(&kr, "u-42", "access_token", &s, &out, NULL, NULL);
        ok(rc == NGX_DECLINED,
           "truncated: first %lu of %lu bytes -> NGX_DECLINED",
           (unsigned long) n, (unsigned long) sealed.len);

        free(out);
        free(s.data);
    }

    bad = 0;

    for (n = OVERHEAD + 1; n < sealed.len; n++) {
        s.data = xmalloc(n);
        memcpy(s.data, buf, n);
        s.len = n;

        if (open_sealed(&kr, "u-42", "access_token", &s, &out, NULL, NULL)
            != NGX_DECLINED)
        {
            bad++;
        }

        free(out);
        free(s.data);
    }

    ok(bad == 0, "truncated: prefixes longer than the overhead -> "
       "NGX_DECLINED");

    s.data = buf + 1;
    s.len = sealed.len - 1;
    rc = open_sealed(&kr, "u-42", "access_token", &s, &out, NULL, NULL);
    ok(rc == NGX_DECLINED,
       "truncated: first byte dropped -> NGX_DECLINED");
    free(out);

    s.data = xmalloc(sealed.len + 1);
    memcpy(s.data, buf, sealed.len);
    s.data[sealed.len] = 0;
    s.len = sealed.len + 1;
    rc = open_sealed(&kr, "u-42", "access_token", &s, &out, NULL, NULL);
    ok(rc == NGX_DECLINED,
       "truncated: one byte appended -> NGX_DECLINED");
    free(out);
    free(s.data);

    free(buf);
}


static void
test_misuse(void)
{
    u_char                     *buf, *out;
    ngx_int_t                   rc;
    ngx_str_t                   sealed, u, c, p;
    ngx_http_tiktok_keyring_t   kr, empty;

    memset(&kr, 0, sizeof(kr));
    memset(&empty, 0, sizeof(empty));
    decode(K1_HEX, &kr.previous);

    u = str("u-42");
    c = str("access_token");
    p = str("tok");
    buf = xmalloc(3 + OVERHEAD);

    ok(ngx_http_tiktok_seal(&kr, &u, &c, &p, buf) == NGX_ERROR,
       "misuse: seal without a current key -> NGX_ERROR");

    decode(K1_HEX, &kr.current);
    sealed.data = buf;
    sealed.len = 3 + OVERHEAD;

    rc = ngx_http_tiktok_seal(&kr, &u, &c, &p, buf);
    ok(rc == NGX_OK, "misuse: seal with a current key -> NGX_OK");

    rc = open_sealed(&empty, "u-42", "access_token", &sealed, &out, NULL,
                     NULL);
    ok(rc == NGX_DECLINED,
       "misuse: open with an empty keyring -> NGX_DECLINED");
    free(out);

    free(buf);
}


static void
test_independent_vector(void)
{
    u_char                     *out, buf[64];
    size_t                      out_len;
    ngx_int_t                   rc;
    ngx_str_t                   sealed;
    ngx_uint_t                  prev;
    ngx_http_tiktok_keyring_t   kr;

    /*
     * sealed by Python's cryptography.AESGCM with key K2, nonce 00..0b,
     * user "u-42", column "access_token" and the AAD of
     * ngx_http_tiktok_crypto.h: pins the stored format
     */

    sealed.data = buf;
    sealed.len = unhex("479435c5000102030405060708090a0b2661a235a09da376fd2df2"
                       "a6c5861308ed8267fff7e0d51725aa0a334962270aec", buf);

    memset(&kr, 0, sizeof(kr));
    decode(K2_HEX, &kr.current);

    rc = open_sealed(&kr, "u-42", "access_token", &sealed, &out, &out_len,
                     &prev);
    ok(rc == NGX_OK
       && out_len == 17 && memcmp(out, "act.example-token", 17) == 0,
       "format: a token sealed by an independent implementation opens");
    free(out);
}


typedef struct {
    const char  *name;
    const char  *key;
    const char  *nonce;
    const char  *aad;
    const char  *plain;
    const char  *cipher;
    const char  *tag;
} gcm_vector_t;


static void
test_gcm_vectors(void)
{
    u_char        key[32], nonce[12], aad[64], plain[64], cipher[64];
    u_char        tag[16], out[64], got_tag[16];
    size_t        aad_len, plain_len, i;
    ngx_str_t     pieces[3];
    ngx_uint_t    npieces;

    static const gcm_vector_t  vectors[] = {
        { "GCM test case 13 (AES-256, empty)",
          "0000000000000000000000000000000000000000000000000000000000000000",
          "000000000000000000000000", "", "", "",
          "530f8afbc74536b9a963b4f1c4cb738b" },
        { "GCM test case 14 (AES-256, 16 zero bytes)",
          "0000000000000000000000000000000000000000000000000000000000000000",
          "000000000000000000000000", "",
          "00000000000000000000000000000000",
          "cea7403d4d606b6e074ec5d3baf39d18",
          "d0d1c8a799996bf0265b98b5d48ab919" },
        { "GCM test case 15 (AES-256, 64 bytes)",
          "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
          "cafebabefacedbaddecaf888", "",
          "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
          "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
          "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
          "b094dac5d93471bdec1a502270e3cc6c" },
        { "GCM test case 16 (AES-256, 60 bytes, AAD)",
          "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
          "cafebabefacedbaddecaf888",
          "feedfacedeadbeeffeedfacedeadbeefabaddad2",
          "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
          "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
          "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
          "76fc6ece0f4e1768cddf8853bb2d551b" },
    };

    for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        unhex(vectors[i].key, key);
        unhex(vectors[i].nonce, nonce);
        aad_len = unhex(vectors[i].aad, aad);
        plain_len = unhex(vectors[i].plain, plain);
        unhex(vectors[i].cipher, cipher);
        unhex(vectors[i].tag, tag);

        pieces[0].data = aad;
        pieces[0].len = aad_len;
        npieces = aad_len ? 1 : 0;

        ok(ngx_http_tiktok_gcm(1, key, nonce, pieces, npieces, plain,
                               plain_len, out, got_tag) == NGX_OK
           && memcmp(out, cipher, plain_len) == 0
           && memcmp(got_tag, tag, 16) == 0,
           "%s: encrypt", vectors[i].name);

        ok(ngx_http_tiktok_gcm(0, key, nonce, pieces, npieces, cipher,
                               plain_len, out, tag) == NGX_OK
           && memcmp(out, plain, plain_len) == 0,
           "%s: decrypt", vectors[i].name);
    }

    /* test case 16 again, its AAD fed as three pieces as seal() does */

    pieces[0].data = aad;
    pieces[0].len = 3;
    pieces[1].data = aad + 3;
    pieces[1].len = 0;
    pieces[2].data = aad + 3;
    pieces[2].len = aad_len - 3;

    ok(ngx_http_tiktok_gcm(1, key, nonce, pieces, 3, plain, plain_len,
                           out, got_tag) == NGX_OK
       && memcmp(out, cipher, plain_len) == 0
       && memcmp(got_tag, tag, 16) == 0,
       "GCM test case 16: AAD in pieces gives the same tag");

    tag[0] ^= 1;
    ok(ngx_http_tiktok_gcm(0, key, nonce, pieces, 3, cipher, plain_len,
                           out, tag) == NGX_DECLINED
       && all_zero(out, plain_len),
       "GCM test case 16: wrong tag -> NGX_DECLINED, out cleansed");
}


static void
check_sha256(const char *name, const u_char *data, size_t len,
    const char *hex)
{
    u_char  want[32], got[32];

    unhex(hex, want);
    ngx_http_tiktok_sha256(data, len, got);

    ok(memcmp(got, want, 32) == 0, "sha256: %s", name);
}


static void
test_sha256(void)
{
    check_sha256("empty string", (u_char *) "", 0,
                 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b"
                 "7852b855");
    check_sha256("\"abc\"", (u_char *) "abc", 3,
                 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61"
                 "f20015ad");
    check_sha256("448-bit message",
                 (u_char *) "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmno"
                            "mnopnopq", 56,
                 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd4"
                 "19db06c1");
}


static void
check_hmac(const char *name, const u_char *key, size_t key_len,
    const u_char *data, size_t len, const char *hex)
{
    u_char  want[32], got[32];

    unhex(hex, want);
    ngx_http_tiktok_hmac_sha256(key, key_len, data, len, got);

    ok(memcmp(got, want, 32) == 0, "hmac-sha256: %s", name);
}


static void
test_hmac(void)
{
    u_char       key[131], data[50];
    const char  *t7;

    memset(key, 0x0b, 20);
    check_hmac("RFC 4231 test case 1", key, 20, (u_char *) "Hi There", 8,
               "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c"
               "2e32cff7");

    check_hmac("RFC 4231 test case 2", (u_char *) "Jefe", 4,
               (u_char *) "what do ya want for nothing?", 28,
               "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b9"
               "64ec3843");

    memset(key, 0xaa, 20);
    memset(data, 0xdd, 50);
    check_hmac("RFC 4231 test case 3", key, 20, data, 50,
               "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514"
               "ced565fe");

    unhex("0102030405060708090a0b0c0d0e0f10111213141516171819", key);
    memset(data, 0xcd, 50);
    check_hmac("RFC 4231 test case 4", key, 25, data, 50,
               "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff4"
               "6729665b");

    memset(key, 0xaa, 131);
    check_hmac("RFC 4231 test case 6 (131-byte key)", key, 131,
               (u_char *) "Test Using Larger Than Block-Size Key - Hash Key "
                          "First", 54,
               "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f"
               "0ee37f54");

    t7 = "This is a test using a larger than block-size key and a larger "
         "than block-size data. The key needs to be hashed before being "
         "used by the HMAC algorithm.";
    check_hmac("RFC 4231 test case 7", key, 131, (u_char *) t7, strlen(t7),
               "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f5153"
               "5c3a35e2");

    memset(key, 'k', 65);
    check_hmac("65-byte key (hashed first)", key, 65, (u_char *) "x", 1,
               "75092ca3ee2b307470c227697b42b3e65376aa3bae98fb5a1f7b7536"
               "daa9588a");
    check_hmac("64-byte key (used as is)", key, 64, (u_char *) "x", 1,
               "f91c4c403625fb06910ef93999265bbd2d62baeaec6ff36455498cc1"
               "24fe3e66");

    check_hmac("empty key, empty message", NULL, 0, (u_char *) "", 0,
               "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c71214"
               "4292c5ad");
}


static void
test_helpers(void)
{
    u_char  src[4] = { 0x00, 0x01, 0xab, 0xff };
    u_char  dst[9], *end, a[32], b[32];

    memset(dst, 'X', sizeof(dst));
    end = ngx_http_tiktok_hex(dst, src, 4);
    ok(end == dst + 8 && memcmp(dst, "0001abff", 8) == 0 && dst[8] == 'X',
       "hex: lowercase, returns the end, writes nothing past it");

    end = ngx_http_tiktok_hex(dst, src, 0);
    ok(end == dst, "hex: empty input");

    memcpy(a, "0123456789abcdef0123456789abcdef", 32);
    memcpy(b, a, 32);
    ok(ngx_http_tiktok_memeq(a, b, 32) == 1, "memeq: equal -> 1");
    b[0] ^= 1;
    ok(ngx_http_tiktok_memeq(a, b, 32) == 0, "memeq: first byte differs -> 0");
    b[0] ^= 1;
    b[31] ^= 0x80;
    ok(ngx_http_tiktok_memeq(a, b, 32) == 0, "memeq: last byte differs -> 0");
    ok(ngx_http_tiktok_memeq(a, b, 0) == 1, "memeq: zero length -> 1");

    ok(ngx_http_tiktok_random(a, 32) == NGX_OK
       && ngx_http_tiktok_random(b, 32) == NGX_OK
       && memcmp(a, b, 32) != 0,
       "random: two draws differ");
    ok(ngx_http_tiktok_random(a, 0) == NGX_OK, "random: zero length");

    ngx_http_tiktok_cleanse(a, 32);
    ok(all_zero(a, 32), "cleanse: zeroes the buffer");
    ngx_http_tiktok_cleanse(NULL, 0);
    ok(1, "cleanse: NULL, 0 is harmless");
}
