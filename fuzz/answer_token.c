
/*
 * TikTok's OAuth token answer (/v2/oauth/token/, the code exchange and the
 * refresh): the flat object, then ngx_http_tiktok_api_token_read(), the
 * reader the callback and the lease both call.  What it took must be what
 * the answer says, byte for byte, its lifetimes whole numbers as text
 * (they go to PostgreSQL as parameters), and both tokens zeroed when the
 * pool goes.
 */


#include "fuzz.h"


/* a lifetime: the answer's positive whole number, in decimal */

static void
fuzz_lifetime(json_t *root, const char *key, ngx_str_t *s)
{
    json_t  *v;

    v = json_object_get(root, key);

    if (!json_is_integer(v) || json_integer_value(v) <= 0
        || s->len == 0 || s->len > NGX_INT64_LEN
        || ngx_atoi(s->data, s->len) != json_integer_value(v))
    {
        abort();
    }
}


/* the pool's cleanups for a token run now: its bytes must be zero after */

static void
fuzz_forgotten(ngx_pool_t *pool, ngx_str_t *secret)
{
    size_t               i;
    ngx_uint_t           found;
    ngx_pool_cleanup_t  *c;

    found = 0;

    for (c = pool->cleanup; c; c = c->next) {
        if (c->data == secret) {
            c->handler(c->data);
            found++;
        }
    }

    if (found == 0) {
        abort();
    }

    for (i = 0; i < secret->len; i++) {
        if (secret->data[i] != 0) {
            abort();
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t                       *root;
    ngx_int_t                     rc;
    const char                   *why;
    ngx_pool_t                   *pool;
    ngx_http_tiktok_api_error_t   err;
    ngx_http_tiktok_api_token_t  *token;

    fuzz_init();

    pool = fuzz_pool();

    /* in the pool, as the callers' are: its cleanups point into it */
    token = ngx_palloc(pool, sizeof(ngx_http_tiktok_api_token_t));
    if (token == NULL) {
        abort();
    }

    if (fuzz_answer(pool, data, size, 1, &root, &err) == NGX_OK) {
        why = NULL;

        rc = ngx_http_tiktok_api_token_read(pool, root, token, &why);

        if (rc == NGX_OK) {
            if (token->access_token.len == 0
                || token->refresh_token.len == 0)
            {
                abort();
            }

            fuzz_same(root, "access_token", &token->access_token);
            fuzz_same(root, "refresh_token", &token->refresh_token);
            fuzz_same(root, "open_id", &token->open_id);
            fuzz_same(root, "scope", &token->scope);
            fuzz_lifetime(root, "expires_in", &token->expires_in);
            fuzz_lifetime(root, "refresh_expires_in",
                          &token->refresh_expires_in);

            fuzz_forgotten(pool, &token->access_token);
            fuzz_forgotten(pool, &token->refresh_token);

        } else if (rc != NGX_ERROR || why == NULL) {
            abort();

        } else {
            /* read before a later field failed: zeroed all the same */

            if (token->access_token.len) {
                fuzz_forgotten(pool, &token->access_token);
            }

            if (token->refresh_token.len) {
                fuzz_forgotten(pool, &token->refresh_token);
            }
        }
    }

    ngx_destroy_pool(pool);

    return 0;
}
