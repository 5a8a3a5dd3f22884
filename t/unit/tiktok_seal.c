
/*
 * tiktok_seal: seal and open tokens the way the module stores them, for
 * integration tests that put rows straight into PostgreSQL or read them
 * back.  Linked with src/ngx_http_tiktok_crypto.c and libcrypto only.
 *
 *   tiktok_seal seal  <key> <user_id> <column> <plaintext>
 *       prints the sealed bytes as lowercase hex, for '\x...'::bytea
 *   tiktok_seal open  <key> <user_id> <column> <hex> [<previous key>]
 *       prints the plaintext; <hex> may carry PostgreSQL's "\x" prefix
 *   tiktok_seal keyid <key>
 *       prints the key id as hex (the first 4 sealed bytes)
 *
 * <key> is what the module accepts in TIKTOK_TOKEN_KEY: 64 hex digits or
 * base64 of 32 bytes.  Each output ends with a newline.  Exit status:
 * 0 done, 1 the input does not authenticate, 2 bad usage, key or hex,
 * 3 an OpenSSL failure.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_tiktok_crypto.h"


#define TIKTOK_SEAL_OK        0
#define TIKTOK_SEAL_DECLINED  1
#define TIKTOK_SEAL_USAGE     2
#define TIKTOK_SEAL_FAILED    3


static int usage(void);
static int cmd_seal(char **argv);
static int cmd_open(int argc, char **argv);
static int cmd_keyid(char **argv);
static int key_arg(const char *text, ngx_http_tiktok_key_t *key,
    const char *what);
static ngx_str_t str(char *s);
static int unhex(const char *hex, u_char **out, size_t *len);
static int hex_digit(u_char c);
static int print_hex(const u_char *p, size_t len);
static void *xmalloc(size_t size);


int
main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "seal") == 0) {
        return cmd_seal(argv);
    }

    if ((argc == 6 || argc == 7) && strcmp(argv[1], "open") == 0) {
        return cmd_open(argc, argv);
    }

    if (argc == 3 && strcmp(argv[1], "keyid") == 0) {
        return cmd_keyid(argv);
    }

    return usage();
}


static int
usage(void)
{
    fprintf(stderr,
            "usage: tiktok_seal seal <key> <user_id> <column> <plaintext>\n"
            "       tiktok_seal open <key> <user_id> <column> <hex> "
            "[<previous key>]\n"
            "       tiktok_seal keyid <key>\n");

    return TIKTOK_SEAL_USAGE;
}


static int
cmd_seal(char **argv)
{
    int                        rc;
    u_char                    *out;
    ngx_str_t                  user, column, plain;
    ngx_http_tiktok_keyring_t  kr;

    ngx_memzero(&kr, sizeof(kr));

    if (key_arg(argv[2], &kr.current, "key") != TIKTOK_SEAL_OK) {
        return TIKTOK_SEAL_USAGE;
    }

    user = str(argv[3]);
    column = str(argv[4]);
    plain = str(argv[5]);

    out = xmalloc(plain.len + NGX_HTTP_TIKTOK_SEAL_OVERHEAD);

    if (ngx_http_tiktok_seal(&kr, &user, &column, &plain, out) != NGX_OK) {
        fprintf(stderr, "tiktok_seal: sealing failed\n");
        rc = TIKTOK_SEAL_FAILED;

    } else {
        rc = print_hex(out, plain.len + NGX_HTTP_TIKTOK_SEAL_OVERHEAD);
    }

    free(out);
    ngx_http_tiktok_cleanse(&kr, sizeof(kr));

    return rc;
}


static int
cmd_open(int argc, char **argv)
{
    int                        rc;
    u_char                    *sealed_data, *out;
    size_t                     out_len;
    ngx_int_t                  n;
    ngx_str_t                  user, column, sealed;
    ngx_uint_t                 used_previous;
    ngx_http_tiktok_keyring_t  kr;

    ngx_memzero(&kr, sizeof(kr));

    if (key_arg(argv[2], &kr.current, "key") != TIKTOK_SEAL_OK
        || (argc == 7
            && key_arg(argv[6], &kr.previous, "previous key")
               != TIKTOK_SEAL_OK))
    {
        ngx_http_tiktok_cleanse(&kr, sizeof(kr));
        return TIKTOK_SEAL_USAGE;
    }

    if (unhex(argv[5], &sealed_data, &sealed.len) != TIKTOK_SEAL_OK) {
        fprintf(stderr, "tiktok_seal: <hex> is not hex\n");
        ngx_http_tiktok_cleanse(&kr, sizeof(kr));
        return TIKTOK_SEAL_USAGE;
    }

    sealed.data = sealed_data;
    user = str(argv[3]);
    column = str(argv[4]);

    out_len = 0;
    out = xmalloc(sealed.len);

    n = ngx_http_tiktok_open(&kr, &user, &column, &sealed, out, &out_len,
                             &used_previous);

    switch (n) {

    case NGX_OK:
        if (fwrite(out, 1, out_len, stdout) != out_len
            || putchar('\n') == EOF || fflush(stdout) != 0)
        {
            rc = TIKTOK_SEAL_FAILED;
            break;
        }

        rc = TIKTOK_SEAL_OK;
        break;

    case NGX_DECLINED:
        fprintf(stderr, "tiktok_seal: does not authenticate\n");
        rc = TIKTOK_SEAL_DECLINED;
        break;

    default:
        fprintf(stderr, "tiktok_seal: opening failed\n");
        rc = TIKTOK_SEAL_FAILED;
        break;
    }

    ngx_http_tiktok_cleanse(out, sealed.len);
    free(out);
    free(sealed_data);
    ngx_http_tiktok_cleanse(&kr, sizeof(kr));

    return rc;
}


static int
cmd_keyid(char **argv)
{
    int                    rc;
    ngx_http_tiktok_key_t  key;

    if (key_arg(argv[2], &key, "key") != TIKTOK_SEAL_OK) {
        return TIKTOK_SEAL_USAGE;
    }

    rc = print_hex(key.id, NGX_HTTP_TIKTOK_KEY_ID_LEN);

    ngx_http_tiktok_cleanse(&key, sizeof(key));

    return rc;
}


static int
key_arg(const char *text, ngx_http_tiktok_key_t *key, const char *what)
{
    ngx_str_t  s;

    s = str((char *) text);

    if (ngx_http_tiktok_key_decode(&s, key) != NGX_OK) {
        /* never echo the text: it may be a real key with a typo */
        fprintf(stderr, "tiktok_seal: the %s is neither 64 hex digits nor "
                "base64 of 32 bytes\n", what);
        return TIKTOK_SEAL_USAGE;
    }

    return TIKTOK_SEAL_OK;
}


static ngx_str_t
str(char *s)
{
    ngx_str_t  r;

    r.data = (u_char *) s;
    r.len = strlen(s);

    return r;
}


static int
unhex(const char *hex, u_char **out, size_t *len)
{
    int      hi, lo;
    size_t   i, n;
    u_char  *p;

    /* what psql prints for a bytea */
    if (hex[0] == '\\' && (hex[1] == 'x' || hex[1] == 'X')) {
        hex += 2;
    }

    n = strlen(hex);

    if (n % 2) {
        return TIKTOK_SEAL_USAGE;
    }

    p = xmalloc(n / 2);

    for (i = 0; i < n / 2; i++) {
        hi = hex_digit(hex[2 * i]);
        lo = hex_digit(hex[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            free(p);
            return TIKTOK_SEAL_USAGE;
        }

        p[i] = (u_char) (hi << 4 | lo);
    }

    *out = p;
    *len = n / 2;

    return TIKTOK_SEAL_OK;
}


static int
hex_digit(u_char c)
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


static int
print_hex(const u_char *p, size_t len)
{
    int      rc;
    u_char  *hex, *end;

    hex = xmalloc(2 * len + 1);

    end = ngx_http_tiktok_hex(hex, p, len);
    *end++ = '\n';

    rc = TIKTOK_SEAL_OK;

    if (fwrite(hex, 1, end - hex, stdout) != (size_t) (end - hex)
        || fflush(stdout) != 0)
    {
        rc = TIKTOK_SEAL_FAILED;
    }

    free(hex);

    return rc;
}


static void *
xmalloc(size_t size)
{
    void  *p;

    p = malloc(size ? size : 1);
    if (p == NULL) {
        fprintf(stderr, "tiktok_seal: out of memory\n");
        exit(TIKTOK_SEAL_FAILED);
    }

    return p;
}
