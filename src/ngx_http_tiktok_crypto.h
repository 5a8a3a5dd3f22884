
/*
 * ngx_http_tiktok_module: token encryption and small crypto helpers.
 *
 * This file and ngx_http_tiktok_crypto.c use nginx's types and macros only,
 * never an nginx function: the same source is linked into the module and
 * into stand-alone test programs (t/unit) that have no nginx objects.
 * Callers pass every output buffer; OpenSSL does all of the work.
 *
 * Sealed token layout (DESIGN.md section 5):
 *
 *     key_id (4) || nonce (12) || ciphertext (= plaintext length) || tag (16)
 *
 * AES-256-GCM, a fresh random 96-bit nonce per seal.  The additional
 * authenticated data, version 1, is
 *
 *     "ngx_http_tiktok token v1"     24 bytes, no terminating NUL
 *     key_id                          4 bytes
 *     user_id length                  8 bytes, big-endian
 *     user_id
 *     column length                   8 bytes, big-endian
 *     column
 *
 * The length prefixes keep ("ab", "c") and ("a", "bc") apart.  A key's id
 * is the first 4 bytes of SHA-256("ngx_http_tiktok key id" || key): it
 * selects the key on decryption and tells nothing about the key.
 */


#ifndef _NGX_HTTP_TIKTOK_CRYPTO_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_CRYPTO_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


#define NGX_HTTP_TIKTOK_KEY_LEN        32
#define NGX_HTTP_TIKTOK_KEY_ID_LEN     4
#define NGX_HTTP_TIKTOK_NONCE_LEN      12
#define NGX_HTTP_TIKTOK_TAG_LEN        16
#define NGX_HTTP_TIKTOK_SEAL_OVERHEAD  (4 + 12 + 16)

#define NGX_HTTP_TIKTOK_SHA256_LEN     32


typedef struct {
    u_char                     key[NGX_HTTP_TIKTOK_KEY_LEN];
    u_char                     id[NGX_HTTP_TIKTOK_KEY_ID_LEN];
    unsigned                   set:1;
} ngx_http_tiktok_key_t;


typedef struct {
    ngx_http_tiktok_key_t      current;
    ngx_http_tiktok_key_t      previous;     /* optional; decrypt only */
} ngx_http_tiktok_keyring_t;


/*
 * 64 hex digits, or base64 (standard or url-safe alphabet, padding
 * optional) of exactly 32 bytes.  Whitespace, a mixed alphabet, misplaced
 * padding and non-zero trailing bits are refused.  NGX_OK fills key->key,
 * key->id and key->set; NGX_ERROR leaves *key as it was.
 */
ngx_int_t ngx_http_tiktok_key_decode(ngx_str_t *text,
    ngx_http_tiktok_key_t *key);

/*
 * out must hold plain->len + NGX_HTTP_TIKTOK_SEAL_OVERHEAD bytes and must
 * not overlap plain.  NGX_OK, or NGX_ERROR when kr->current is not set or
 * OpenSSL fails (out is then cleansed).
 */
ngx_int_t ngx_http_tiktok_seal(ngx_http_tiktok_keyring_t *kr,
    ngx_str_t *user_id, ngx_str_t *column, ngx_str_t *plain, u_char *out);

/*
 * out must hold sealed->len - NGX_HTTP_TIKTOK_SEAL_OVERHEAD bytes and must
 * not overlap sealed.  NGX_OK sets *out_len and *used_previous (1 when the
 * previous key opened it: the caller re-seals on its next write);
 * NGX_DECLINED when the input does not authenticate (truncated, unknown key
 * id, altered, other user or column); NGX_ERROR when OpenSSL fails.  On
 * anything but NGX_OK out holds no plaintext.  out_len and used_previous
 * may be NULL.
 */
ngx_int_t ngx_http_tiktok_open(ngx_http_tiktok_keyring_t *kr,
    ngx_str_t *user_id, ngx_str_t *column, ngx_str_t *sealed, u_char *out,
    size_t *out_len, ngx_uint_t *used_previous);

/*
 * The AES-256-GCM primitive under seal and open (enc 1: encrypt, writing
 * tag; 0: decrypt, checking it), exposed for the known answer tests.  The
 * additional data is the concatenation of aad[0 .. naad).  Decryption
 * answers NGX_DECLINED (out cleansed) when the tag does not match.
 */
ngx_int_t ngx_http_tiktok_gcm(int enc, const u_char *key,
    const u_char *nonce, ngx_str_t *aad, ngx_uint_t naad, const u_char *in,
    size_t len, u_char *out, u_char *tag);

/* RAND_bytes: NGX_OK or NGX_ERROR */
ngx_int_t ngx_http_tiktok_random(u_char *buf, size_t len);

/*
 * These cannot report a failure: if OpenSSL fails, out is filled with
 * random bytes, so it matches no value an attacker can offer.
 */
void ngx_http_tiktok_sha256(const u_char *data, size_t len, u_char out[32]);
void ngx_http_tiktok_hmac_sha256(const u_char *key, size_t key_len,
    const u_char *data, size_t len, u_char out[32]);

/* lowercase hex of src into dst (2 * len bytes); returns the end of dst */
u_char *ngx_http_tiktok_hex(u_char *dst, const u_char *src, size_t len);

/* lowercase or uppercase hex of even length into len / 2 bytes */
ngx_int_t ngx_http_tiktok_unhex(u_char *dst, const u_char *src, size_t len);

/* constant time in len; 1 when equal, 0 when not */
ngx_int_t ngx_http_tiktok_memeq(const u_char *a, const u_char *b, size_t len);

/* OPENSSL_cleanse: a zeroing the compiler cannot drop */
void ngx_http_tiktok_cleanse(void *p, size_t len);


#endif /* _NGX_HTTP_TIKTOK_CRYPTO_H_INCLUDED_ */
