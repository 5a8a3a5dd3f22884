
/*
 * ngx_http_tiktok_module: token encryption and small crypto helpers.
 *
 * No nginx function is called here (see ngx_http_tiktok_crypto.h): the
 * unit tests link this file without nginx.  Nothing here keeps state
 * between calls, so every function is safe in any worker at any time.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <limits.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "ngx_http_tiktok_crypto.h"


/* an HMAC-SHA256 key longer than the SHA-256 block is hashed first */
#define NGX_HTTP_TIKTOK_SHA256_BLOCK  64

#define NGX_HTTP_TIKTOK_B64_STD       1
#define NGX_HTTP_TIKTOK_B64_URL       2

/* label, key id, user id length, user id, column length, column */
#define NGX_HTTP_TIKTOK_AAD_PARTS     6


static ngx_int_t ngx_http_tiktok_hex_value(u_char c);
static ngx_int_t ngx_http_tiktok_base64_decode(const u_char *src, size_t len,
    u_char *dst);
static ngx_int_t ngx_http_tiktok_base64_value(u_char c,
    ngx_uint_t *alphabet);
static ngx_int_t ngx_http_tiktok_digest(const u_char *data, size_t len,
    u_char *out);
static void ngx_http_tiktok_aad(ngx_str_t *aad, u_char *key_id,
    ngx_str_t *user_id, ngx_str_t *column, u_char *lens);
static ngx_int_t ngx_http_tiktok_gcm_update(EVP_CIPHER_CTX *ctx,
    u_char *out, const u_char *in, size_t len);


/* read-only; changing either string makes every stored token unreadable */
static const u_char  ngx_http_tiktok_key_id_label[] = "ngx_http_tiktok key id";
static const u_char  ngx_http_tiktok_aad_label[] = "ngx_http_tiktok token v1";


ngx_int_t
ngx_http_tiktok_key_decode(ngx_str_t *text, ngx_http_tiktok_key_t *key)
{
    size_t     label_len;
    u_char     raw[NGX_HTTP_TIKTOK_KEY_LEN];
    u_char     digest[NGX_HTTP_TIKTOK_SHA256_LEN];
    u_char     id_input[sizeof(ngx_http_tiktok_key_id_label) - 1
                        + NGX_HTTP_TIKTOK_KEY_LEN];
    ngx_int_t  rc;

    /*
     * 64 hex digits would be 48 bytes as base64, never 32, so the length
     * tells which of the two a key is
     */

    if (text->len == 2 * NGX_HTTP_TIKTOK_KEY_LEN) {
        rc = ngx_http_tiktok_unhex(raw, text->data, text->len);

    } else {
        rc = ngx_http_tiktok_base64_decode(text->data, text->len, raw);
    }

    if (rc != NGX_OK) {
        goto done;
    }

    label_len = sizeof(ngx_http_tiktok_key_id_label) - 1;

    ngx_memcpy(id_input, ngx_http_tiktok_key_id_label, label_len);
    ngx_memcpy(id_input + label_len, raw, NGX_HTTP_TIKTOK_KEY_LEN);

    /*
     * not the void ngx_http_tiktok_sha256(): on failure it gives random
     * bytes, and tokens sealed under a random id are lost at the next
     * restart; failing the configuration is better
     */

    rc = ngx_http_tiktok_digest(id_input, sizeof(id_input), digest);

    if (rc == NGX_OK) {
        ngx_memcpy(key->key, raw, NGX_HTTP_TIKTOK_KEY_LEN);
        ngx_memcpy(key->id, digest, NGX_HTTP_TIKTOK_KEY_ID_LEN);
        key->set = 1;
    }

done:

    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(id_input, sizeof(id_input));
    OPENSSL_cleanse(digest, sizeof(digest));

    return rc;
}


ngx_int_t
ngx_http_tiktok_unhex(u_char *dst, const u_char *src, size_t len)
{
    size_t     i;
    ngx_int_t  hi, lo;

    if (len % 2) {
        return NGX_ERROR;
    }

    for (i = 0; i < len; i += 2) {
        hi = ngx_http_tiktok_hex_value(src[i]);
        lo = ngx_http_tiktok_hex_value(src[i + 1]);

        if (hi < 0 || lo < 0) {
            return NGX_ERROR;
        }

        *dst++ = (u_char) (hi << 4 | lo);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tiktok_hex_value(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/*
 * Exactly a key's 32 bytes, in the standard or url-safe alphabet (not both
 * in one text), padding optional but, when present, complete.  The unused
 * low bits of the last character must be zero, so one key has exactly one
 * spelling per alphabet.
 */

static ngx_int_t
ngx_http_tiktok_base64_decode(const u_char *src, size_t len, u_char *dst)
{
    size_t      i, pad, rem, need;
    uint32_t    acc;
    ngx_int_t   v;
    ngx_uint_t  bits, alphabet;

    for (pad = 0; pad < len && src[len - 1 - pad] == '='; pad++) {
        /* void */
    }

    if (pad) {
        if (pad > 2 || len % 4) {
            return NGX_ERROR;
        }

        len -= pad;
    }

    rem = len % 4;
    need = len / 4 * 3 + (rem ? rem - 1 : 0);

    /* a lone last character is never base64 */
    if (rem == 1 || need != NGX_HTTP_TIKTOK_KEY_LEN) {
        return NGX_ERROR;
    }

    acc = 0;
    bits = 0;
    alphabet = 0;

    for (i = 0; i < len; i++) {
        v = ngx_http_tiktok_base64_value(src[i], &alphabet);
        if (v < 0) {
            return NGX_ERROR;
        }

        acc = acc << 6 | (uint32_t) v;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            *dst++ = (u_char) (acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }

    return acc == 0 ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_http_tiktok_base64_value(u_char c, ngx_uint_t *alphabet)
{
    ngx_uint_t  want;

    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }

    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }

    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }

    if (c == '+' || c == '/') {
        want = NGX_HTTP_TIKTOK_B64_STD;

    } else if (c == '-' || c == '_') {
        want = NGX_HTTP_TIKTOK_B64_URL;

    } else {
        return -1;
    }

    if (*alphabet != 0 && *alphabet != want) {
        return -1;
    }

    *alphabet = want;

    return (c == '+' || c == '-') ? 62 : 63;
}


ngx_int_t
ngx_http_tiktok_seal(ngx_http_tiktok_keyring_t *kr, ngx_str_t *user_id,
    ngx_str_t *column, ngx_str_t *plain, u_char *out)
{
    u_char                 *nonce, *ct;
    u_char                  lens[16];
    ngx_str_t               aad[NGX_HTTP_TIKTOK_AAD_PARTS];
    ngx_http_tiktok_key_t  *key;

    key = &kr->current;

    if (!key->set) {
        return NGX_ERROR;
    }

    nonce = out + NGX_HTTP_TIKTOK_KEY_ID_LEN;
    ct = nonce + NGX_HTTP_TIKTOK_NONCE_LEN;

    ngx_memcpy(out, key->id, NGX_HTTP_TIKTOK_KEY_ID_LEN);

    /*
     * random 96-bit nonces: a repeat is expected only after about 2^48
     * seals under one key, far beyond what one deployment writes
     */

    if (ngx_http_tiktok_random(nonce, NGX_HTTP_TIKTOK_NONCE_LEN) != NGX_OK) {
        goto failed;
    }

    ngx_http_tiktok_aad(aad, key->id, user_id, column, lens);

    if (ngx_http_tiktok_gcm(1, key->key, nonce, aad, NGX_HTTP_TIKTOK_AAD_PARTS,
                            plain->data, plain->len, ct, ct + plain->len)
        != NGX_OK)
    {
        goto failed;
    }

    return NGX_OK;

failed:

    OPENSSL_cleanse(out, plain->len + NGX_HTTP_TIKTOK_SEAL_OVERHEAD);

    return NGX_ERROR;
}


ngx_int_t
ngx_http_tiktok_open(ngx_http_tiktok_keyring_t *kr, ngx_str_t *user_id,
    ngx_str_t *column, ngx_str_t *sealed, u_char *out, size_t *out_len,
    ngx_uint_t *used_previous)
{
    size_t                  len;
    u_char                 *nonce, *ct;
    u_char                  lens[16];
    ngx_int_t               rc;
    ngx_str_t               aad[NGX_HTTP_TIKTOK_AAD_PARTS];
    ngx_uint_t              i;
    ngx_http_tiktok_key_t  *key;

    if (out_len) {
        *out_len = 0;
    }

    if (used_previous) {
        *used_previous = 0;
    }

    if (sealed->len < NGX_HTTP_TIKTOK_SEAL_OVERHEAD) {
        return NGX_DECLINED;
    }

    len = sealed->len - NGX_HTTP_TIKTOK_SEAL_OVERHEAD;
    nonce = sealed->data + NGX_HTTP_TIKTOK_KEY_ID_LEN;
    ct = nonce + NGX_HTTP_TIKTOK_NONCE_LEN;

    /*
     * both keys are tried when both carry the id: two keys share an id
     * once in 2^32, and an operator may list one key twice
     */

    for (i = 0; i < 2; i++) {
        key = i ? &kr->previous : &kr->current;

        if (!key->set
            || ngx_memcmp(key->id, sealed->data, NGX_HTTP_TIKTOK_KEY_ID_LEN)
               != 0)
        {
            continue;
        }

        ngx_http_tiktok_aad(aad, key->id, user_id, column, lens);

        rc = ngx_http_tiktok_gcm(0, key->key, nonce, aad,
                                 NGX_HTTP_TIKTOK_AAD_PARTS, ct, len, out,
                                 ct + len);

        if (rc == NGX_DECLINED) {
            continue;
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }

        if (out_len) {
            *out_len = len;
        }

        if (used_previous) {
            *used_previous = i;
        }

        return NGX_OK;
    }

    return NGX_DECLINED;
}


/* lens gets the user id's and the column's lengths, 8 bytes each */

static void
ngx_http_tiktok_aad(ngx_str_t *aad, u_char *key_id, ngx_str_t *user_id,
    ngx_str_t *column, u_char *lens)
{
    ngx_uint_t  i;

    for (i = 0; i < 8; i++) {
        lens[i] = (u_char) ((uint64_t) user_id->len >> (56 - 8 * i));
        lens[8 + i] = (u_char) ((uint64_t) column->len >> (56 - 8 * i));
    }

    /* only read: the casts drop const for ngx_str_t's sake */

    aad[0].data = (u_char *) ngx_http_tiktok_aad_label;
    aad[0].len = sizeof(ngx_http_tiktok_aad_label) - 1;
    aad[1].data = key_id;
    aad[1].len = NGX_HTTP_TIKTOK_KEY_ID_LEN;
    aad[2].data = lens;
    aad[2].len = 8;
    aad[3] = *user_id;
    aad[4].data = lens + 8;
    aad[4].len = 8;
    aad[5] = *column;
}


/*
 * One code path for both directions.  Decryption writes plaintext before
 * the tag is checked, so out is cleansed on every failure.
 */

ngx_int_t
ngx_http_tiktok_gcm(int enc, const u_char *key, const u_char *nonce,
    ngx_str_t *aad, ngx_uint_t naad, const u_char *in, size_t len,
    u_char *out, u_char *tag)
{
    int              n;
    u_char           last[EVP_MAX_BLOCK_LENGTH];
    ngx_int_t        rc;
    ngx_uint_t       i;
    EVP_CIPHER_CTX  *ctx;

    rc = NGX_ERROR;

    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        goto done;
    }

    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1
        || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN,
                               NGX_HTTP_TIKTOK_NONCE_LEN, NULL)
           != 1
        || EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) != 1)
    {
        goto done;
    }

    for (i = 0; i < naad; i++) {
        if (ngx_http_tiktok_gcm_update(ctx, NULL, aad[i].data, aad[i].len)
            != NGX_OK)
        {
            goto done;
        }
    }

    if (ngx_http_tiktok_gcm_update(ctx, out, in, len) != NGX_OK) {
        goto done;
    }

    if (!enc
        && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG,
                               NGX_HTTP_TIKTOK_TAG_LEN, tag)
           != 1)
    {
        goto done;
    }

    if (EVP_CipherFinal_ex(ctx, last, &n) != 1) {

        /* when decrypting, a failing final is the tag not matching */

        if (!enc) {
            rc = NGX_DECLINED;
        }

        goto done;
    }

    if (enc
        && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG,
                               NGX_HTTP_TIKTOK_TAG_LEN, tag)
           != 1)
    {
        goto done;
    }

    rc = NGX_OK;

done:

    /* frees and cleanses the key schedule */
    EVP_CIPHER_CTX_free(ctx);

    if (rc != NGX_OK && len) {
        OPENSSL_cleanse(out, len);
    }

    return rc;
}


/*
 * OpenSSL counts in int: a longer input is refused (tokens, their column
 * names and the user ids they are bound to are far shorter)
 */

static ngx_int_t
ngx_http_tiktok_gcm_update(EVP_CIPHER_CTX *ctx, u_char *out, const u_char *in,
    size_t len)
{
    int  n;

    if (len == 0) {
        return NGX_OK;
    }

    if (len > INT_MAX || EVP_CipherUpdate(ctx, out, &n, in, (int) len) != 1) {
        return NGX_ERROR;
    }

    /* GCM is a stream mode: every byte given comes straight back */

    return (out == NULL || (size_t) n == len) ? NGX_OK : NGX_ERROR;
}


/* no caller asks for more than RAND_bytes()'s int can count */

ngx_int_t
ngx_http_tiktok_random(u_char *buf, size_t len)
{
    if (len > INT_MAX || RAND_bytes(buf, (int) len) != 1) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_tiktok_sha256(const u_char *data, size_t len, u_char out[32])
{
    if (ngx_http_tiktok_digest(data, len, out) != NGX_OK) {
        (void) RAND_bytes(out, NGX_HTTP_TIKTOK_SHA256_LEN);
    }
}


static ngx_int_t
ngx_http_tiktok_digest(const u_char *data, size_t len, u_char *out)
{
    unsigned int  n;

    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1
        || n != NGX_HTTP_TIKTOK_SHA256_LEN)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_tiktok_hmac_sha256(const u_char *key, size_t key_len,
    const u_char *data, size_t len, u_char out[32])
{
    u_char        hashed[NGX_HTTP_TIKTOK_SHA256_LEN];
    unsigned int  n;

    /*
     * RFC 2104 hashes a key longer than the block; doing it here gives the
     * same MAC and keeps key_len within HMAC()'s int
     */

    if (key_len > NGX_HTTP_TIKTOK_SHA256_BLOCK) {
        ngx_http_tiktok_sha256(key, key_len, hashed);
        key = hashed;
        key_len = sizeof(hashed);
    }

    /* HMAC() wants a non-NULL key even when it is empty */

    if (key_len == 0) {
        key = hashed;
    }

    if (HMAC(EVP_sha256(), key, (int) key_len, data, len, out, &n) == NULL
        || n != NGX_HTTP_TIKTOK_SHA256_LEN)
    {
        (void) RAND_bytes(out, NGX_HTTP_TIKTOK_SHA256_LEN);
    }

    OPENSSL_cleanse(hashed, sizeof(hashed));
}


u_char *
ngx_http_tiktok_hex(u_char *dst, const u_char *src, size_t len)
{
    static const u_char  digits[] = "0123456789abcdef";

    while (len--) {
        *dst++ = digits[*src >> 4];
        *dst++ = digits[*src++ & 0xf];
    }

    return dst;
}


ngx_int_t
ngx_http_tiktok_memeq(const u_char *a, const u_char *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}


void
ngx_http_tiktok_cleanse(void *p, size_t len)
{
    if (p != NULL && len) {
        OPENSSL_cleanse(p, len);
    }
}
