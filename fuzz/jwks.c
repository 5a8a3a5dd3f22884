
/*
 * A JWKS file (tiktok_jwt jwks=), read at configuration time: the keys
 * array, each key's kty, crv, alg, use and kid, and the EC point or the
 * RSA modulus and exponent built into an OpenSSL key (which must be on the
 * curve, or of 2048 bits at least), by ngx_http_tiktok_jwt_jwks().  The
 * input is the file.  A JWKS taken holds only keys with a kid and an
 * OpenSSL key.
 */


#include "fuzz.h"

#include "../src/ngx_http_tiktok_jwt.c"


static char  fuzz_name[] = "/tmp/fuzz-jwks-XXXXXX";
static int   fuzz_fd = -1;


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                        *rv;
    ngx_str_t                    path;
    ngx_uint_t                   i;
    ngx_conf_t                   cf;
    ngx_pool_t                  *pool;
    ngx_http_tiktok_jwk_t       *key;
    ngx_http_tiktok_jwt_conf_t  *jcf;

    fuzz_init();

    if (fuzz_fd == -1) {
        /* one file for the run, rewritten for each input */
        fuzz_fd = mkstemp(fuzz_name);
        if (fuzz_fd == -1) {
            abort();
        }

        unlink(fuzz_name);
        ngx_sprintf((u_char *) fuzz_name, "/proc/self/fd/%d%Z", fuzz_fd);
    }

    if (ftruncate(fuzz_fd, 0) != 0
        || pwrite(fuzz_fd, data, size, 0) != (ssize_t) size)
    {
        abort();
    }

    pool = fuzz_pool();

    jcf = ngx_pcalloc(pool, sizeof(ngx_http_tiktok_jwt_conf_t));
    if (jcf == NULL) {
        abort();
    }

    ngx_memzero(&cf, sizeof(ngx_conf_t));
    cf.pool = pool;
    cf.log = pool->log;
    cf.cycle = (ngx_cycle_t *) ngx_cycle;

    path.data = (u_char *) fuzz_name;
    path.len = ngx_strlen(fuzz_name);

    rv = ngx_http_tiktok_jwt_jwks(&cf, jcf, &path);

    if (rv == NGX_CONF_OK) {
        key = jcf->keys->elts;

        if (jcf->keys->nelts == 0) {
            abort();
        }

        for (i = 0; i < jcf->keys->nelts; i++) {
            if (key[i].pkey == NULL || key[i].kid.len == 0
                || (key[i].alg != NGX_HTTP_TIKTOK_JWT_ES256
                    && key[i].alg != NGX_HTTP_TIKTOK_JWT_RS256))
            {
                abort();
            }
        }
    }

    ngx_destroy_pool(pool);

    return 0;
}
