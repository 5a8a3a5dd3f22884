
/*
 * The identity a JWT carries (tiktok_jwt): the compact form from
 * "Authorization: Bearer", its base64url parts, the header's and the
 * claims' JSON, the signature (HS256 with the secret, ES256 and RS256 with
 * a JWKS's keys) and the claims (exp, nbf, iss, aud, sub), as
 * ngx_http_tiktok_jwt_verify() takes them.
 *
 * The input is tried as a token, and, when it holds a newline, as a
 * header and claims (JSON, before and after it) that this target encodes
 * and signs with the secret, so that the claims are read too.  A token
 * that passes has a sub.  The seeds' ES256 and RS256 tokens are signed by
 * the keys of fuzz_jwks (public halves; the private ones were thrown
 * away).
 */


#include "fuzz.h"

#include "../src/ngx_http_tiktok_jwt.c"


static const char  fuzz_jwks[] =
    "{\"keys\":[{\"e\":\"AQAB\",\"kid\":\"kid-r1\",\"kty\":\"RSA\",\"n"
    "\":\"5_YiMPkqBmNedzwOkgF0uhmAAYWEImWPtjDuJvu4Zl547AJ"
    "UJQ1wSz0TRpA0Yjk-APrlhhl_nLjAUDHvYFhWbE5crDHOAFOCs"
    "AglLQsLyrM-fS-QyoVUhBfcGSAT9DNMJArKac8uE262W12YwFY"
    "U0LO7G9Dlet5qW5xfBcuSkzdldwJ2PDjyEvUIh24x1Il3_yUSf"
    "Y-fB77kDsR5Ze5sqPLAzhG5OyoZrvM7Q7_CSnxUaXePIWAWBeJ"
    "IMXTna95YACfdCBlUnR7jXRJTa_vmsZO95n_SYv92R2mykjvY5"
    "XT1zFx3nGqQ0rAK7SZPDdJczg1X63fqJf-CTEajH-94DQ\"},{\""
    "crv\":\"P-256\",\"kid\":\"kid-e1\",\"kty\":\"EC\",\"x\":\"M7H_Py"
    "jyzY6AGG4ZuatXKhwWh-je5P0HqfUBEOMUsoI\",\"y\":\"4Rz6eH"
    "JSojhb_vrfIr1AXLA0aPEIrsxIS21zXyW1G7s\"}]}";

static ngx_http_tiktok_jwt_conf_t  *fuzz_jcf;


static void
fuzz_setup(void)
{
    int          fd;
    char         name[] = "/tmp/fuzz-jwks-XXXXXX";
    ngx_str_t    path;
    ngx_conf_t   cf;
    ngx_pool_t  *pool;

    pool = fuzz_pool();

    fuzz_jcf = ngx_pcalloc(pool, sizeof(ngx_http_tiktok_jwt_conf_t));
    if (fuzz_jcf == NULL) {
        abort();
    }

    fd = mkstemp(name);
    if (fd == -1
        || write(fd, fuzz_jwks, sizeof(fuzz_jwks) - 1)
           != (ssize_t) sizeof(fuzz_jwks) - 1)
    {
        abort();
    }

    close(fd);

    ngx_memzero(&cf, sizeof(ngx_conf_t));
    cf.pool = pool;
    cf.log = pool->log;
    cf.cycle = (ngx_cycle_t *) ngx_cycle;

    path.data = (u_char *) name;
    path.len = ngx_strlen(name);

    if (ngx_http_tiktok_jwt_jwks(&cf, fuzz_jcf, &path) != NGX_CONF_OK) {
        abort();
    }

    unlink(name);

    ngx_str_set(&fuzz_jcf->secret, "fuzz-jwt-secret-of-at-least-32-bytes");
    ngx_str_set(&fuzz_jcf->audience, "authenticated");
    ngx_str_set(&fuzz_jcf->issuer, "https://fuzz.supabase.co/auth/v1");
    fuzz_jcf->cookie = -1;
    fuzz_jcf->leeway = 30;
}


static const char *
fuzz_verify(ngx_pool_t *pool, u_char *token, size_t len, ngx_str_t *sub)
{
    ngx_table_elt_t     *h;
    ngx_http_request_t  *r;

    r = fuzz_request(pool, fuzz_main_conf(), NULL);

    h = ngx_pcalloc(pool, sizeof(ngx_table_elt_t));
    if (h == NULL) {
        abort();
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Authorization");
    h->value.len = sizeof("Bearer ") - 1 + len;
    h->value.data = ngx_pnalloc(pool, h->value.len);
    if (h->value.data == NULL) {
        abort();
    }

    ngx_memcpy(ngx_cpymem(h->value.data, "Bearer ", 7), token, len);

    r->headers_in.authorization = h;

    ngx_str_null(sub);

    return ngx_http_tiktok_jwt_verify(r, fuzz_jcf, sub);
}


static u_char *
fuzz_b64url(u_char *p, u_char *data, size_t len)
{
    ngx_str_t  src, dst;

    src.data = data;
    src.len = len;
    dst.data = p;

    ngx_encode_base64url(&dst, &src);

    return p + dst.len;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char       *text, *nl, *p, *token, mac[32];
    ngx_str_t     sub;
    ngx_pool_t   *pool;
    const char   *why;

    fuzz_init();

    if (fuzz_jcf == NULL) {
        fuzz_setup();
    }

    pool = fuzz_pool();

    text = fuzz_copy(pool, data, size);

    why = fuzz_verify(pool, text, size, &sub);

    if (why == NULL && sub.len == 0) {
        abort();
    }

    nl = ngx_strlchr(text, text + size, '\n');

    if (nl) {
        token = ngx_pnalloc(pool, 2 * size + 64);
        if (token == NULL) {
            abort();
        }

        p = fuzz_b64url(token, text, nl - text);
        *p++ = '.';
        p = fuzz_b64url(p, nl + 1, text + size - nl - 1);

        ngx_http_tiktok_hmac_sha256(fuzz_jcf->secret.data,
                                    fuzz_jcf->secret.len, token, p - token,
                                    mac);
        *p++ = '.';
        p = fuzz_b64url(p, mac, sizeof(mac));

        why = fuzz_verify(pool, token, p - token, &sub);

        if (why == NULL && sub.len == 0) {
            abort();
        }
    }

    ngx_destroy_pool(pool);

    return 0;
}
