
/*
 * The sealed-token decoder: a stored access or refresh token as the
 * database gives it (hex of key id, nonce, ciphertext, tag) through
 * ngx_http_tiktok_unseal_hex(), under a keyring of a current and a
 * previous key; the key texts themselves (64 hex digits or base64 of 32
 * bytes) through ngx_http_tiktok_key_decode(); and, as a property, any
 * input sealed and unsealed again is itself, and never opens for another
 * user or column.
 *
 * The database's answer is this file's PQgetvalue() and PQgetlength(),
 * which the linker prefers to libpq's: they hand over fuzz_cell.
 */


#include "fuzz.h"

#include "ngx_http_tiktok_lease.h"


static ngx_str_t  fuzz_cell;


char *
PQgetvalue(const PGresult *res, int row, int field)
{
    return (char *) fuzz_cell.data;
}


int
PQgetlength(const PGresult *res, int row, int field)
{
    return (int) fuzz_cell.len;
}


static ngx_http_tiktok_keyring_t  fuzz_keyring;


static void
fuzz_keys(void)
{
    ngx_str_t  text;

    ngx_str_set(&text,
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    if (ngx_http_tiktok_key_decode(&text, &fuzz_keyring.current) != NGX_OK) {
        abort();
    }

    ngx_str_set(&text, "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=");
    if (ngx_http_tiktok_key_decode(&text, &fuzz_keyring.previous)
        != NGX_OK)
    {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                 *text;
    ngx_int_t               rc;
    ngx_str_t               in, plain, hex, user, other;
    ngx_pool_t             *pool;
    ngx_http_tiktok_key_t   key;

    fuzz_init();

    if (!fuzz_keyring.current.set) {
        fuzz_keys();
    }

    pool = fuzz_pool();

    ngx_str_set(&user, "user-1");
    ngx_str_set(&other, "user-2");

    text = fuzz_copy(pool, data, size);

    /* the input as a stored token */

    fuzz_cell.data = text;
    fuzz_cell.len = size;

    rc = ngx_http_tiktok_unseal_hex(pool, pool->log, &fuzz_keyring, &user,
                                    "access_token", NULL, 0, &plain);

    if (rc == NGX_OK && plain.len != size / 2 - NGX_HTTP_TIKTOK_SEAL_OVERHEAD)
    {
        abort();
    }

    /* the input as a key's text */

    ngx_memzero(&key, sizeof(ngx_http_tiktok_key_t));
    in.data = text;
    in.len = size;

    if (ngx_http_tiktok_key_decode(&in, &key) == NGX_OK
        && size != 2 * NGX_HTTP_TIKTOK_KEY_LEN
        && (size < 43 || size > 44))
    {
        abort();
    }

    /* the input as a token: sealed, then opened only where it was */

    if (ngx_http_tiktok_seal_hex(pool, pool->log, &fuzz_keyring, &user,
                                 "refresh_token", &in, &hex)
        == NGX_OK)
    {
        fuzz_cell = hex;

        rc = ngx_http_tiktok_unseal_hex(pool, pool->log, &fuzz_keyring,
                                        &user, "refresh_token", NULL, 0,
                                        &plain);

        if (rc != NGX_OK || plain.len != size
            || ngx_memcmp(plain.data, data, size) != 0)
        {
            abort();
        }

        if (ngx_http_tiktok_unseal_hex(pool, pool->log, &fuzz_keyring,
                                       &other, "refresh_token", NULL, 0,
                                       &plain) == NGX_OK
            || ngx_http_tiktok_unseal_hex(pool, pool->log, &fuzz_keyring,
                                          &user, "access_token", NULL, 0,
                                          &plain) == NGX_OK)
        {
            abort();
        }
    }

    ngx_destroy_pool(pool);

    return 0;
}
