
/*
 * Identity from the app's JWT (DESIGN.md section 8.4).
 *
 * tiktok_jwt reads its keys while nginx reads the configuration: the HS256
 * secret from the master's environment, the ES256 and RS256 public keys
 * from a JWKS file.  $tiktok_jwt_sub verifies the request's token once (an
 * indexed, cacheable variable: nginx keeps the value for the request) and
 * is the token's "sub", or empty when no token was accepted.  The reason a
 * token was not accepted is logged at info; the token never is.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "ngx_http_tiktok_module.h"
#include "ngx_http_tiktok_api.h"
#include "ngx_http_tiktok_jwt.h"
#include "ngx_http_tiktok_json.h"
#include "ngx_http_tiktok_reply.h"


/* a header line is bounded by large_client_header_buffers anyway */
#define NGX_HTTP_TIKTOK_JWT_MAX        16384
#define NGX_HTTP_TIKTOK_JWT_RSA_MIN    2048     /* bits */
#define NGX_HTTP_TIKTOK_JWT_HS256_MIN  32       /* bytes, RFC 7518 3.2 */

#define NGX_HTTP_TIKTOK_JWT_ES256      1
#define NGX_HTTP_TIKTOK_JWT_RS256      2


typedef struct {
    ngx_str_t                    kid;
    ngx_uint_t                   alg;
    EVP_PKEY                    *pkey;
} ngx_http_tiktok_jwk_t;


struct ngx_http_tiktok_jwt_conf_s {
    ngx_str_t                    secret;     /* HS256; empty: none */
    ngx_array_t                 *keys;       /* of ngx_http_tiktok_jwk_t */
    ngx_str_t                    audience;
    ngx_str_t                    issuer;
    ngx_int_t                    cookie;     /* $cookie_NAME, or -1 */
    time_t                       leeway;
};


/* a token split into its parts: decoded header and payload, raw signature */
typedef struct {
    ngx_str_t                    signed_part;   /* header.payload */
    ngx_str_t                    signature;
    json_t                      *header;
    json_t                      *payload;
} ngx_http_tiktok_jwt_token_t;


static ngx_int_t ngx_http_tiktok_jwt_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static const char *ngx_http_tiktok_jwt_verify(ngx_http_request_t *r,
    ngx_http_tiktok_jwt_conf_t *jcf, ngx_str_t *sub);
static ngx_int_t ngx_http_tiktok_jwt_find(ngx_http_request_t *r,
    ngx_http_tiktok_jwt_conf_t *jcf, ngx_str_t *token);
static const char *ngx_http_tiktok_jwt_split(ngx_http_request_t *r,
    ngx_str_t *text, ngx_http_tiktok_jwt_token_t *tok);
static ngx_int_t ngx_http_tiktok_jwt_base64url(ngx_pool_t *pool,
    u_char *data, size_t len, ngx_str_t *out);
static json_t *ngx_http_tiktok_jwt_object(ngx_pool_t *pool, ngx_str_t *json);
static const char *ngx_http_tiktok_jwt_signature(
    ngx_http_tiktok_jwt_conf_t *jcf, ngx_http_tiktok_jwt_token_t *tok);
static ngx_int_t ngx_http_tiktok_jwt_verify_key(ngx_http_tiktok_jwk_t *key,
    ngx_http_tiktok_jwt_token_t *tok);
static const char *ngx_http_tiktok_jwt_claims(ngx_http_request_t *r,
    ngx_http_tiktok_jwt_conf_t *jcf, json_t *claims, ngx_str_t *sub);
static ngx_uint_t ngx_http_tiktok_jwt_str_eq(json_t *json, ngx_str_t *s);
static ngx_uint_t ngx_http_tiktok_jwt_uses(ngx_http_complex_value_t *cv,
    ngx_int_t index);

static char *ngx_http_tiktok_jwt_secret(ngx_conf_t *cf,
    ngx_http_tiktok_jwt_conf_t *jcf, ngx_str_t *name);
static char *ngx_http_tiktok_jwt_jwks(ngx_conf_t *cf,
    ngx_http_tiktok_jwt_conf_t *jcf, ngx_str_t *file);
static char *ngx_http_tiktok_jwt_jwk(ngx_conf_t *cf, ngx_str_t *file,
    size_t i, json_t *jwk, ngx_http_tiktok_jwk_t *key);
static EVP_PKEY *ngx_http_tiktok_jwt_ec_key(ngx_conf_t *cf, json_t *jwk);
static EVP_PKEY *ngx_http_tiktok_jwt_rsa_key(ngx_conf_t *cf, json_t *jwk);
static EVP_PKEY *ngx_http_tiktok_jwt_pkey(OSSL_PARAM_BLD *bld,
    const char *type);
static ngx_int_t ngx_http_tiktok_jwt_member(ngx_pool_t *pool, json_t *jwk,
    const char *name, ngx_str_t *out);
static void ngx_http_tiktok_jwt_keys_cleanup(void *data);
static void ngx_http_tiktok_jwt_secret_cleanup(void *data);


static ngx_str_t  ngx_http_tiktok_jwt_sub_name = ngx_string("tiktok_jwt_sub");

/* the verifier's answer for an allocation failure, not a refusal */
static const char  ngx_http_tiktok_jwt_nomem[] = "out of memory";


/* ---- the directive ----------------------------------------------------- */


/*
 * tiktok_jwt secret_env=NAME | jwks=file [audience=..] [issuer=..]
 *            [cookie=name] [leeway=time]
 *
 * Both secret_env= and jwks= may be given (a move from the legacy secret
 * to signing keys): each algorithm still verifies only with its own kind
 * of key.
 */

char *
ngx_http_tiktok_jwt(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tiktok_jwt_conf_t  **field = (void *) ((u_char *) conf
                                                    + cmd->offset);

    u_char                      *p;
    ngx_str_t                   *value, s, name;
    ngx_int_t                    n;
    ngx_uint_t                   i;
    ngx_http_tiktok_jwt_conf_t  *jcf;

    if (*field != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    jcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_tiktok_jwt_conf_t));
    if (jcf == NULL) {
        return NGX_CONF_ERROR;
    }

    jcf->cookie = -1;
    jcf->leeway = 30;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        p = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=');

        if (p == NULL || p == value[i].data) {
            goto invalid;
        }

        name.data = value[i].data;
        name.len = p - value[i].data;
        s.data = p + 1;
        s.len = value[i].data + value[i].len - s.data;

        if (s.len == 0) {
            goto invalid;
        }

        if (name.len == 10
            && ngx_strncmp(name.data, "secret_env", 10) == 0)
        {
            if (jcf->secret.len) {
                goto invalid;
            }

            if (ngx_http_tiktok_jwt_secret(cf, jcf, &s) != NGX_CONF_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (name.len == 4 && ngx_strncmp(name.data, "jwks", 4) == 0) {
            if (jcf->keys) {
                goto invalid;
            }

            if (ngx_http_tiktok_jwt_jwks(cf, jcf, &s) != NGX_CONF_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (name.len == 8 && ngx_strncmp(name.data, "audience", 8) == 0) {
            jcf->audience = s;
            continue;
        }

        if (name.len == 6 && ngx_strncmp(name.data, "issuer", 6) == 0) {
            jcf->issuer = s;
            continue;
        }

        if (name.len == 6 && ngx_strncmp(name.data, "cookie", 6) == 0) {

            /* the cookie is read through nginx's own $cookie_NAME */

            name.len = sizeof("cookie_") - 1 + s.len;
            name.data = ngx_pnalloc(cf->pool, name.len);
            if (name.data == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memcpy(ngx_cpymem(name.data, "cookie_", 7), s.data, s.len);

            jcf->cookie = ngx_http_get_variable_index(cf, &name);
            if (jcf->cookie == NGX_ERROR) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (name.len == 6 && ngx_strncmp(name.data, "leeway", 6) == 0) {
            n = ngx_parse_time(&s, 1);
            if (n == NGX_ERROR) {
                goto invalid;
            }

            jcf->leeway = (time_t) n;
            continue;
        }

        goto invalid;
    }

    if (jcf->secret.len == 0 && jcf->keys == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_jwt\" needs a key: \"secret_env=NAME\" "
                           "or \"jwks=file\"");
        return NGX_CONF_ERROR;
    }

    *field = jcf;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"tiktok_jwt\" has an invalid parameter \"%V\"",
                       &value[i]);
    return NGX_CONF_ERROR;
}


/*
 * The secret is read now, in the process that reads the configuration
 * (the master): a worker sees only the variables "env" names.  Its copy is
 * wiped when the configuration's pool goes.
 */

static char *
ngx_http_tiktok_jwt_secret(ngx_conf_t *cf, ngx_http_tiktok_jwt_conf_t *jcf,
    ngx_str_t *name)
{
    char                *v;
    u_char               buf[256];
    size_t               len;
    ngx_pool_cleanup_t  *cln;

    if (name->len >= sizeof(buf)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_jwt\": the environment variable name "
                           "is too long");
        return NGX_CONF_ERROR;
    }

    (void) ngx_cpystrn(buf, name->data, name->len + 1);

    v = getenv((char *) buf);

    if (v == NULL || v[0] == '\0') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_jwt\": environment variable \"%V\" is "
                           "not set or empty", name);
        return NGX_CONF_ERROR;
    }

    len = ngx_strlen(v);

    if (len < NGX_HTTP_TIKTOK_JWT_HS256_MIN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_jwt\": environment variable \"%V\" "
                           "must hold at least %d bytes for HS256", name,
                           NGX_HTTP_TIKTOK_JWT_HS256_MIN);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    jcf->secret.data = ngx_pnalloc(cf->pool, len);
    if (jcf->secret.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(jcf->secret.data, v, len);
    jcf->secret.len = len;

    cln->handler = ngx_http_tiktok_jwt_secret_cleanup;
    cln->data = &jcf->secret;

    return NGX_CONF_OK;
}


static void
ngx_http_tiktok_jwt_secret_cleanup(void *data)
{
    ngx_str_t  *secret = data;

    ngx_http_tiktok_cleanse(secret->data, secret->len);
}


/*
 * A JWKS ({"keys":[...]}) of EC P-256 and RSA public keys, each with a
 * "kid".  Keys for other algorithms (an OIDC provider's file may hold
 * some) are skipped with a warning; a file with no usable key, or a
 * usable-looking key that is wrong, is an error.
 */

static char *
ngx_http_tiktok_jwt_jwks(ngx_conf_t *cf, ngx_http_tiktok_jwt_conf_t *jcf,
    ngx_str_t *file)
{
    char                   *rv;
    json_t                 *root, *keys, *jwk;
    size_t                  i;
    json_error_t            err;
    ngx_str_t               path;
    ngx_pool_cleanup_t     *cln;
    ngx_http_tiktok_jwk_t  *key;

    path = *file;

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    jcf->keys = ngx_array_create(cf->pool, 4, sizeof(ngx_http_tiktok_jwk_t));
    if (jcf->keys == NULL) {
        return NGX_CONF_ERROR;
    }

    /* registered first: it frees whatever keys the array holds by then */

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_tiktok_jwt_keys_cleanup;
    cln->data = jcf->keys;

    root = json_load_file((char *) path.data, JSON_REJECT_DUPLICATES, &err);

    if (root == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_jwt\": cannot read the JWKS \"%V\": "
                           "%s (line %d)", &path, err.text, err.line);
        return NGX_CONF_ERROR;
    }

    rv = NGX_CONF_OK;

    keys = json_object_get(root, "keys");

    if (!json_is_array(keys)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_jwt\": the JWKS \"%V\" has no \"keys\" "
                           "array", &path);
        rv = NGX_CONF_ERROR;
        goto done;
    }

    json_array_foreach(keys, i, jwk) {

        key = ngx_array_push(jcf->keys);
        if (key == NULL) {
            rv = NGX_CONF_ERROR;
            goto done;
        }

        ngx_memzero(key, sizeof(ngx_http_tiktok_jwk_t));

        rv = ngx_http_tiktok_jwt_jwk(cf, &path, i, jwk, key);

        if (rv != NGX_CONF_OK) {
            goto done;
        }

        if (key->pkey == NULL) {
            /* skipped: not a key of ours */
            jcf->keys->nelts--;
        }
    }

    if (jcf->keys->nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_jwt\": the JWKS \"%V\" has no ES256 "
                           "(P-256) or RS256 key", &path);
        rv = NGX_CONF_ERROR;
    }

done:

    json_decref(root);

    return rv;
}


static char *
ngx_http_tiktok_jwt_jwk(ngx_conf_t *cf, ngx_str_t *file, size_t i,
    json_t *jwk, ngx_http_tiktok_jwk_t *key)
{
    json_t      *kty, *alg, *use, *crv, *kid;
    const char  *want;

    kty = json_object_get(jwk, "kty");
    alg = json_object_get(jwk, "alg");
    use = json_object_get(jwk, "use");
    crv = json_object_get(jwk, "crv");
    kid = json_object_get(jwk, "kid");

    if (!json_is_object(jwk) || !json_is_string(kty)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_jwt\": key %uz of the JWKS \"%V\" has "
                           "no \"kty\"", i, file);
        return NGX_CONF_ERROR;
    }

    if (ngx_strcmp(json_string_value(kty), "EC") == 0
        && json_is_string(crv)
        && ngx_strcmp(json_string_value(crv), "P-256") == 0)
    {
        key->alg = NGX_HTTP_TIKTOK_JWT_ES256;
        want = "ES256";

    } else if (ngx_strcmp(json_string_value(kty), "RSA") == 0) {
        key->alg = NGX_HTTP_TIKTOK_JWT_RS256;
        want = "RS256";

    } else {
        want = NULL;
    }

    /* an "alg" or "use" the key states binds it to that use alone */

    if (want == NULL
        || (alg && (!json_is_string(alg)
                    || ngx_strcmp(json_string_value(alg), want) != 0))
        || (use && (!json_is_string(use)
                    || ngx_strcmp(json_string_value(use), "sig") != 0)))
    {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"tiktok_jwt\": key %uz of the JWKS \"%V\" is "
                           "not an ES256 (P-256) or RS256 signing key, "
                           "skipped", i, file);
        return NGX_CONF_OK;
    }

    if (!json_is_string(kid) || json_string_length(kid) == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_jwt\": key %uz of the JWKS \"%V\" has "
                           "no \"kid\"", i, file);
        return NGX_CONF_ERROR;
    }

    key->kid.len = json_string_length(kid);
    key->kid.data = ngx_pnalloc(cf->pool, key->kid.len);
    if (key->kid.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(key->kid.data, json_string_value(kid), key->kid.len);

    if (key->alg == NGX_HTTP_TIKTOK_JWT_ES256) {
        key->pkey = ngx_http_tiktok_jwt_ec_key(cf, jwk);

    } else {
        key->pkey = ngx_http_tiktok_jwt_rsa_key(cf, jwk);
    }

    if (key->pkey == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_jwt\": key \"%V\" of the JWKS \"%V\" is "
                           "not a valid %s public key%s", &key->kid, file,
                           want,
                           key->alg == NGX_HTTP_TIKTOK_JWT_RS256
                               ? " of at least 2048 bits" : "");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* a P-256 point from "x" and "y"; OpenSSL checks it is on the curve */

static EVP_PKEY *
ngx_http_tiktok_jwt_ec_key(ngx_conf_t *cf, json_t *jwk)
{
    u_char           pub[65];
    ngx_str_t        x, y;
    EVP_PKEY        *pkey;
    OSSL_PARAM_BLD  *bld;

    if (ngx_http_tiktok_jwt_member(cf->pool, jwk, "x", &x) != NGX_OK
        || ngx_http_tiktok_jwt_member(cf->pool, jwk, "y", &y) != NGX_OK
        || x.len != 32 || y.len != 32)
    {
        return NULL;
    }

    /* the uncompressed point: 0x04 || x || y */

    pub[0] = 0x04;
    ngx_memcpy(pub + 1, x.data, 32);
    ngx_memcpy(pub + 33, y.data, 32);

    pkey = NULL;
    bld = OSSL_PARAM_BLD_new();

    if (bld != NULL
        && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                           "prime256v1", 0)
        && OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                            pub, sizeof(pub)))
    {
        pkey = ngx_http_tiktok_jwt_pkey(bld, "EC");
    }

    OSSL_PARAM_BLD_free(bld);

    return pkey;
}


static EVP_PKEY *
ngx_http_tiktok_jwt_rsa_key(ngx_conf_t *cf, json_t *jwk)
{
    BIGNUM          *n, *e;
    ngx_str_t        ns, es;
    EVP_PKEY        *pkey;
    OSSL_PARAM_BLD  *bld;

    if (ngx_http_tiktok_jwt_member(cf->pool, jwk, "n", &ns) != NGX_OK
        || ngx_http_tiktok_jwt_member(cf->pool, jwk, "e", &es) != NGX_OK)
    {
        return NULL;
    }

    pkey = NULL;

    n = BN_bin2bn(ns.data, (int) ns.len, NULL);
    e = BN_bin2bn(es.data, (int) es.len, NULL);
    bld = OSSL_PARAM_BLD_new();

    if (n != NULL && e != NULL && bld != NULL
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n)
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
    {
        pkey = ngx_http_tiktok_jwt_pkey(bld, "RSA");
    }

    /* a short modulus can be factored: such a key proves nothing */

    if (pkey != NULL
        && EVP_PKEY_get_bits(pkey) < NGX_HTTP_TIKTOK_JWT_RSA_MIN)
    {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }

    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);

    return pkey;
}


/* a public key of that OpenSSL type from the parameters bld holds */

static EVP_PKEY *
ngx_http_tiktok_jwt_pkey(OSSL_PARAM_BLD *bld, const char *type)
{
    EVP_PKEY      *pkey;
    OSSL_PARAM    *params;
    EVP_PKEY_CTX  *ctx;

    pkey = NULL;
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);

    if (params == NULL || ctx == NULL
        || EVP_PKEY_fromdata_init(ctx) <= 0
        || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
    {
        pkey = NULL;
    }

    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);

    return pkey;
}


/* a base64url member of a JWK, decoded into the pool */

static ngx_int_t
ngx_http_tiktok_jwt_member(ngx_pool_t *pool, json_t *jwk, const char *name,
    ngx_str_t *out)
{
    json_t  *v;

    v = json_object_get(jwk, name);

    if (!json_is_string(v) || json_string_length(v) == 0) {
        return NGX_ERROR;
    }

    return ngx_http_tiktok_jwt_base64url(pool, (u_char *) json_string_value(v),
                                         json_string_length(v), out);
}


static void
ngx_http_tiktok_jwt_keys_cleanup(void *data)
{
    ngx_array_t  *keys = data;

    ngx_uint_t              i;
    ngx_http_tiktok_jwk_t  *key;

    key = keys->elts;

    for (i = 0; i < keys->nelts; i++) {
        EVP_PKEY_free(key[i].pkey);
    }
}


/* ---- the variable ------------------------------------------------------ */


ngx_int_t
ngx_http_tiktok_jwt_add_variable(ngx_conf_t *cf)
{
    ngx_http_variable_t          *var;
    ngx_http_tiktok_main_conf_t  *tmcf;

    var = ngx_http_add_variable(cf, &ngx_http_tiktok_jwt_sub_name, 0);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_tiktok_jwt_variable;

    /*
     * Indexed, so every use goes through the request's variable cache:
     * the token is verified once however often the value is read.
     */

    tmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_tiktok_module);

    tmcf->jwt_sub_index = ngx_http_get_variable_index(cf,
                                             &ngx_http_tiktok_jwt_sub_name);
    if (tmcf->jwt_sub_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tiktok_jwt_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                    sub, *id;
    const char                  *reason;
    ngx_http_tiktok_ctx_t       *ctx;
    ngx_http_tiktok_loc_conf_t  *tlcf;

    static ngx_str_t  no_id = ngx_string("-");

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_tiktok_module);

    if (tlcf->jwt == NULL) {
        reason = "no tiktok_jwt is configured here";

    } else {
        reason = ngx_http_tiktok_jwt_verify(r, tlcf->jwt, &sub);
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    if (reason == NULL) {
        v->len = sub.len;
        v->data = sub.data;
        return NGX_OK;
    }

    if (reason == ngx_http_tiktok_jwt_nomem) {
        return NGX_ERROR;
    }

    v->len = 0;
    v->data = (u_char *) "";

    /* outside tiktok_api (a log format, a header) there is no request id */

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_tiktok_module);
    id = (ctx && ctx->request_id.len) ? &ctx->request_id : &no_id;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "tiktok: JWT not accepted: %s, request id \"%V\"",
                  reason, id);

    return NGX_OK;
}


char *
ngx_http_tiktok_jwt_check(ngx_conf_t *cf, ngx_http_complex_value_t *user_id,
    ngx_http_tiktok_jwt_conf_t *jcf)
{
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_tiktok_module);

    if (jcf == NULL && ngx_http_tiktok_jwt_uses(user_id, tmcf->jwt_sub_index))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_user_id\" uses $tiktok_jwt_sub but no "
                           "\"tiktok_jwt\" is set for this location");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_uint_t
ngx_http_tiktok_jwt_refused(ngx_http_request_t *r)
{
    ngx_http_variable_value_t    *v;
    ngx_http_tiktok_loc_conf_t   *tlcf;
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);
    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_tiktok_module);

    if (!ngx_http_tiktok_jwt_uses(tlcf->user_id, tmcf->jwt_sub_index)) {
        return 0;
    }

    v = &r->variables[tmcf->jwt_sub_index];

    return v->not_found || (v->valid && v->len == 0);
}


/* a complex value's flushes are the indexes of the variables it names */

static ngx_uint_t
ngx_http_tiktok_jwt_uses(ngx_http_complex_value_t *cv, ngx_int_t index)
{
    ngx_uint_t  *i;

    if (cv == NULL || cv->flushes == NULL) {
        return 0;
    }

    for (i = cv->flushes; *i != (ngx_uint_t) -1; i++) {
        if (*i == (ngx_uint_t) index) {
            return 1;
        }
    }

    return 0;
}


ngx_int_t
ngx_http_tiktok_jwt_unauthenticated(ngx_http_request_t *r)
{
    static ngx_str_t  challenge = ngx_string("Bearer error=\"invalid_token\"");

    if (ngx_http_tiktok_set_header(r->pool, &r->headers_out.headers,
                                   "WWW-Authenticate", &challenge)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_tiktok_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                      "unauthenticated", NULL,
                                      "Authentication required");
}


/* ---- verification ------------------------------------------------------ */


/*
 * NULL when the token is accepted (*sub set), else the reason it is not,
 * or ngx_http_tiktok_jwt_nomem.
 */

static const char *
ngx_http_tiktok_jwt_verify(ngx_http_request_t *r,
    ngx_http_tiktok_jwt_conf_t *jcf, ngx_str_t *sub)
{
    ngx_int_t                    rc;
    ngx_str_t                    text;
    const char                  *reason;
    ngx_http_tiktok_jwt_token_t  tok;

    rc = ngx_http_tiktok_jwt_find(r, jcf, &text);

    if (rc == NGX_DECLINED) {
        return "no token";
    }

    if (rc != NGX_OK) {
        return ngx_http_tiktok_jwt_nomem;
    }

    reason = ngx_http_tiktok_jwt_split(r, &text, &tok);
    if (reason) {
        return reason;
    }

    reason = ngx_http_tiktok_jwt_signature(jcf, &tok);
    if (reason) {
        return reason;
    }

    /* the claims are read only from a token whose signature verified */

    return ngx_http_tiktok_jwt_claims(r, jcf, tok.payload, sub);
}


/* Authorization: Bearer, else the cookie; NGX_DECLINED: neither */

static ngx_int_t
ngx_http_tiktok_jwt_find(ngx_http_request_t *r,
    ngx_http_tiktok_jwt_conf_t *jcf, ngx_str_t *token)
{
    u_char                     *p, *last;
    ngx_table_elt_t            *h;
    ngx_http_variable_value_t  *v;

    h = r->headers_in.authorization;

    if (h && h->value.len > 7
        && ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) == 0)
    {
        p = h->value.data + 7;
        last = h->value.data + h->value.len;

        while (p < last && *p == ' ') {
            p++;
        }

        while (last > p && last[-1] == ' ') {
            last--;
        }

        token->data = p;
        token->len = last - p;

        return token->len ? NGX_OK : NGX_DECLINED;
    }

    if (jcf->cookie == -1) {
        return NGX_DECLINED;
    }

    v = ngx_http_get_indexed_variable(r, jcf->cookie);

    if (v == NULL) {
        return NGX_ERROR;
    }

    if (v->not_found || v->len == 0) {
        return NGX_DECLINED;
    }

    token->data = v->data;
    token->len = v->len;

    return NGX_OK;
}


static const char *
ngx_http_tiktok_jwt_split(ngx_http_request_t *r, ngx_str_t *text,
    ngx_http_tiktok_jwt_token_t *tok)
{
    u_char     *p, *dot1, *dot2, *last;
    ngx_str_t   header, payload;

    if (text->len > NGX_HTTP_TIKTOK_JWT_MAX) {
        return "malformed: too long";
    }

    last = text->data + text->len;

    dot1 = ngx_strlchr(text->data, last, '.');
    dot2 = dot1 ? ngx_strlchr(dot1 + 1, last, '.') : NULL;

    if (dot2 == NULL || ngx_strlchr(dot2 + 1, last, '.') != NULL) {
        return "malformed: not three dot-separated parts";
    }

    tok->signed_part.data = text->data;
    tok->signed_part.len = dot2 - text->data;

    p = dot1 + 1;

    if (ngx_http_tiktok_jwt_base64url(r->pool, text->data, dot1 - text->data,
                                      &header) != NGX_OK
        || ngx_http_tiktok_jwt_base64url(r->pool, p, dot2 - p, &payload)
           != NGX_OK
        || ngx_http_tiktok_jwt_base64url(r->pool, dot2 + 1, last - dot2 - 1,
                                         &tok->signature) != NGX_OK)
    {
        return "malformed: bad base64url";
    }

    tok->header = ngx_http_tiktok_jwt_object(r->pool, &header);
    if (tok->header == NULL) {
        return "malformed: the header is not a JSON object";
    }

    tok->payload = ngx_http_tiktok_jwt_object(r->pool, &payload);
    if (tok->payload == NULL) {
        return "malformed: the payload is not a JSON object";
    }

    return NULL;
}


/*
 * Unpadded base64url (RFC 7515 section 2), every character checked:
 * nginx's decoder stops quietly at the first one outside the alphabet.
 */

static ngx_int_t
ngx_http_tiktok_jwt_base64url(ngx_pool_t *pool, u_char *data, size_t len,
    ngx_str_t *out)
{
    u_char     *p, *last;
    ngx_str_t   src;

    last = data + len;

    for (p = data; p < last; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
              || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
        {
            return NGX_ERROR;
        }
    }

    if (len % 4 == 1) {
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(pool, ngx_base64_decoded_length(len) + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    src.data = data;
    src.len = len;

    return ngx_decode_base64url(out, &src);
}


/* a JSON object released with the pool, or NULL */

static json_t *
ngx_http_tiktok_jwt_object(ngx_pool_t *pool, ngx_str_t *json)
{
    json_t  *obj;

    obj = json_loadb((char *) json->data, json->len, JSON_REJECT_DUPLICATES,
                     NULL);

    if (obj == NULL) {
        return NULL;
    }

    if (!json_is_object(obj)) {
        json_decref(obj);
        return NULL;
    }

    return ngx_http_tiktok_json_own(pool, obj);
}


/*
 * The algorithm is bound to the kind of key: HS256 verifies only with
 * the secret, ES256 and RS256 only with a JWKS key of that type.  So
 * neither "none" nor an HS256 token MACed with a public key's bytes
 * (the RS/HS confusion) can pass.
 */

static const char *
ngx_http_tiktok_jwt_signature(ngx_http_tiktok_jwt_conf_t *jcf,
    ngx_http_tiktok_jwt_token_t *tok)
{
    u_char                  mac[NGX_HTTP_TIKTOK_SHA256_LEN];
    json_t                 *alg, *kid;
    ngx_str_t               name;
    ngx_uint_t              i, type;
    ngx_http_tiktok_jwk_t  *key;

    alg = json_object_get(tok->header, "alg");

    if (!json_is_string(alg)) {
        return "no algorithm";
    }

    /* an extension the token says must be understood: none is */
    if (json_object_get(tok->header, "crit")) {
        return "unsupported critical header";
    }

    name.data = (u_char *) json_string_value(alg);
    name.len = json_string_length(alg);

    if (name.len == 5 && ngx_strncmp(name.data, "HS256", 5) == 0) {

        if (jcf->secret.len == 0) {
            return "HS256 without a configured secret";
        }

        ngx_http_tiktok_hmac_sha256(jcf->secret.data, jcf->secret.len,
                                    tok->signed_part.data,
                                    tok->signed_part.len, mac);

        if (tok->signature.len != sizeof(mac)
            || !ngx_http_tiktok_memeq(mac, tok->signature.data, sizeof(mac)))
        {
            return "bad signature";
        }

        return NULL;
    }

    if (name.len == 5 && ngx_strncmp(name.data, "ES256", 5) == 0) {
        type = NGX_HTTP_TIKTOK_JWT_ES256;

    } else if (name.len == 5 && ngx_strncmp(name.data, "RS256", 5) == 0) {
        type = NGX_HTTP_TIKTOK_JWT_RS256;

    } else {
        return "algorithm not accepted";
    }

    if (jcf->keys == NULL) {
        return "ES256 or RS256 without a configured JWKS";
    }

    kid = json_object_get(tok->header, "kid");

    if (!json_is_string(kid)) {
        return "no kid";
    }

    key = jcf->keys->elts;

    for (i = 0; i < jcf->keys->nelts; i++) {
        if (key[i].alg == type
            && key[i].kid.len == json_string_length(kid)
            && ngx_strncmp(key[i].kid.data, json_string_value(kid),
                           key[i].kid.len) == 0)
        {
            break;
        }
    }

    if (i == jcf->keys->nelts) {
        return "no key for this kid and algorithm";
    }

    switch (ngx_http_tiktok_jwt_verify_key(&key[i], tok)) {

    case NGX_OK:
        return NULL;

    case NGX_DECLINED:
        return "bad signature";

    default:
        return "signature check failed in OpenSSL";
    }
}


/*
 * NGX_OK: verifies; NGX_DECLINED: does not.  JOSE's ES256 signature is
 * r || s, 32 bytes each; OpenSSL takes the DER ECDSA-Sig-Value.
 */

static ngx_int_t
ngx_http_tiktok_jwt_verify_key(ngx_http_tiktok_jwk_t *key,
    ngx_http_tiktok_jwt_token_t *tok)
{
    int            n;
    u_char        *der;
    BIGNUM        *br, *bs;
    size_t         len;
    ngx_int_t      rc;
    EVP_MD_CTX    *md;
    ECDSA_SIG     *sig;
    const u_char  *s;

    der = NULL;

    if (key->alg == NGX_HTTP_TIKTOK_JWT_ES256) {

        if (tok->signature.len != 64) {
            return NGX_DECLINED;
        }

        sig = ECDSA_SIG_new();
        br = BN_bin2bn(tok->signature.data, 32, NULL);
        bs = BN_bin2bn(tok->signature.data + 32, 32, NULL);

        if (sig == NULL || br == NULL || bs == NULL
            || !ECDSA_SIG_set0(sig, br, bs))
        {
            ECDSA_SIG_free(sig);
            BN_free(br);
            BN_free(bs);
            return NGX_ERROR;
        }

        /* the signature owns br and bs now */

        n = i2d_ECDSA_SIG(sig, &der);
        ECDSA_SIG_free(sig);

        if (n <= 0) {
            return NGX_ERROR;
        }

        s = der;
        len = (size_t) n;

    } else {
        s = tok->signature.data;
        len = tok->signature.len;
    }

    rc = NGX_ERROR;

    md = EVP_MD_CTX_new();

    if (md != NULL
        && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key->pkey) == 1)
    {
        /* RSA keys verify PKCS#1 v1.5 by default */

        n = EVP_DigestVerify(md, s, len, tok->signed_part.data,
                             tok->signed_part.len);

        rc = (n == 1) ? NGX_OK : NGX_DECLINED;
    }

    EVP_MD_CTX_free(md);
    OPENSSL_free(der);

    return rc;
}


static const char *
ngx_http_tiktok_jwt_claims(ngx_http_request_t *r,
    ngx_http_tiktok_jwt_conf_t *jcf, json_t *claims, ngx_str_t *sub)
{
    double       now;
    json_t      *exp, *nbf, *aud, *iss, *s, *a;
    size_t       i;
    ngx_uint_t   match;

    now = (double) ngx_time();

    exp = json_object_get(claims, "exp");

    if (!json_is_number(exp)) {
        return "no exp";
    }

    if (now >= json_number_value(exp) + (double) jcf->leeway) {
        return "expired";
    }

    nbf = json_object_get(claims, "nbf");

    if (nbf && !json_is_number(nbf)) {
        return "nbf is not a number";
    }

    if (nbf && now + (double) jcf->leeway < json_number_value(nbf)) {
        return "not yet valid (nbf)";
    }

    if (jcf->issuer.len) {
        iss = json_object_get(claims, "iss");

        if (!ngx_http_tiktok_jwt_str_eq(iss, &jcf->issuer)) {
            return "wrong issuer";
        }
    }

    if (jcf->audience.len) {
        aud = json_object_get(claims, "aud");
        match = ngx_http_tiktok_jwt_str_eq(aud, &jcf->audience);

        if (json_is_array(aud)) {
            json_array_foreach(aud, i, a) {
                match |= ngx_http_tiktok_jwt_str_eq(a, &jcf->audience);
            }
        }

        if (!match) {
            return "wrong audience";
        }
    }

    s = json_object_get(claims, "sub");

    if (!json_is_string(s) || json_string_length(s) == 0) {
        return "no sub";
    }

    sub->len = json_string_length(s);
    sub->data = ngx_pnalloc(r->pool, sub->len);
    if (sub->data == NULL) {
        return ngx_http_tiktok_jwt_nomem;
    }

    ngx_memcpy(sub->data, json_string_value(s), sub->len);

    return NULL;
}


static ngx_uint_t
ngx_http_tiktok_jwt_str_eq(json_t *json, ngx_str_t *s)
{
    return json_is_string(json)
           && json_string_length(json) == s->len
           && ngx_strncmp(json_string_value(json), s->data, s->len) == 0;
}
