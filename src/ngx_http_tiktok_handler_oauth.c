
/*
 * The OAuth lifecycle: GET /connect.
 *
 * The state is 256 random bits; only its SHA-256 is stored, with the user
 * id, the PKCE verifier sealed under the token key, and a ten-minute
 * expiry, so a database dump cannot be replayed at the callback.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_module.h"
#include "ngx_http_tiktok_handler.h"
#include "ngx_http_tiktok_reply.h"
#include "ngx_http_tiktok_lease.h"


#define NGX_HTTP_TIKTOK_STATE_BYTES     32      /* 43 base64url chars */
#define NGX_HTTP_TIKTOK_VERIFIER_BYTES  48      /* 64 base64url chars */


static void ngx_http_tiktok_connect_done(ngx_http_tiktok_pg_query_t *q);
static ngx_int_t ngx_http_tiktok_random_token(ngx_pool_t *pool, size_t bytes,
    ngx_str_t *token, ngx_str_t *hash);


static const char  ngx_http_tiktok_connect_purge_sql[] =
    "DELETE FROM tiktok.oauth_states WHERE expires_at < now()";

static const char  ngx_http_tiktok_connect_sql[] =
    "INSERT INTO tiktok.oauth_states"
    " (state_hash, user_id, code_verifier_enc, expires_at)"
    " VALUES (decode($1, 'hex'), $2, decode($3, 'hex'),"
    " now() + interval '10 minutes')";


ngx_int_t
ngx_http_tiktok_connect_handler(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx)
{
    ngx_str_t                     state, verifier, challenge, code, s256;
    ngx_str_t                     params[3];
    ngx_pool_t                   *pool;
    ngx_http_tiktok_form_t        form;
    ngx_http_tiktok_pg_query_t   *q;
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);
    pool = r->pool;

    /* the state is stored as its hash only */

    if (ngx_http_tiktok_random_token(pool, NGX_HTTP_TIKTOK_STATE_BYTES,
                                     &state, &params[0])
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    params[1] = ctx->user_id;

    ngx_str_null(&params[2]);
    ngx_str_null(&challenge);

    /* TikTok's S256 challenge is the hex SHA-256 of the verifier */

    if (tmcf->pkce) {
        if (ngx_http_tiktok_random_token(pool, NGX_HTTP_TIKTOK_VERIFIER_BYTES,
                                         &verifier, &challenge)
            != NGX_OK
            || ngx_http_tiktok_seal_hex(pool, r->connection->log,
                                        &tmcf->keyring, &ctx->user_id,
                                        "code_verifier", &verifier,
                                        &params[2])
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_tiktok_cleanse(verifier.data, verifier.len);
    }

    /*
     * tiktok_authorize_url?client_key=&scope=&response_type=code
     *     &redirect_uri=&state=[&code_challenge=&code_challenge_method=S256]
     */

    ngx_str_set(&code, "code");
    ngx_str_set(&s256, "S256");
    ngx_memzero(&form, sizeof(ngx_http_tiktok_form_t));

    if (ngx_http_tiktok_form_add(pool, &form, "client_key", &tmcf->client_key)
        != NGX_OK
        || ngx_http_tiktok_form_add(pool, &form, "scope", &tmcf->scopes)
           != NGX_OK
        || ngx_http_tiktok_form_add(pool, &form, "response_type", &code)
           != NGX_OK
        || ngx_http_tiktok_form_add(pool, &form, "redirect_uri",
                                    &tmcf->redirect_uri) != NGX_OK
        || ngx_http_tiktok_form_add(pool, &form, "state", &state) != NGX_OK
        || (challenge.len
            && (ngx_http_tiktok_form_add(pool, &form, "code_challenge",
                                         &challenge) != NGX_OK
                || ngx_http_tiktok_form_add(pool, &form,
                                            "code_challenge_method", &s256)
                   != NGX_OK)))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->location.len = tmcf->authorize_url.len + 1 + form.body.len;
    ctx->location.data = ngx_pnalloc(pool, ctx->location.len);
    if (ctx->location.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(ctx->location.data, "%V?%V", &tmcf->authorize_url, &form.body);

    q = ngx_http_tiktok_query_new(r, ngx_http_tiktok_connect_done);

    if (q == NULL
        || ngx_http_tiktok_pg_add(q, ngx_http_tiktok_connect_purge_sql, 0,
                                  NULL) != NGX_OK
        || ngx_http_tiktok_pg_add(q, ngx_http_tiktok_connect_sql, 3, params)
           != NGX_OK
        || ngx_http_tiktok_query_run(r, q) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_tiktok_wait(r);
}


static void
ngx_http_tiktok_connect_done(ngx_http_tiktok_pg_query_t *q)
{
    ngx_http_request_t     *r;
    ngx_http_tiktok_ctx_t  *ctx;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    if (q->rc != NGX_OK) {
        ngx_http_tiktok_finalize(r, ngx_http_tiktok_db_error(r, q->rc));
        return;
    }

    ngx_http_tiktok_finalize(r, ngx_http_tiktok_send_redirect(r,
                                    "authorize_url", &ctx->location));
}


/* random bytes as base64url without padding, and its hex SHA-256 */

static ngx_int_t
ngx_http_tiktok_random_token(ngx_pool_t *pool, size_t bytes,
    ngx_str_t *token, ngx_str_t *hash)
{
    u_char     buf[64], sha[NGX_HTTP_TIKTOK_SHA256_LEN];
    ngx_str_t  raw;

    if (bytes > sizeof(buf) || ngx_http_tiktok_random(buf, bytes) != NGX_OK)
    {
        return NGX_ERROR;
    }

    raw.data = buf;
    raw.len = bytes;

    token->data = ngx_pnalloc(pool, ngx_base64_encoded_length(bytes));
    hash->data = ngx_pnalloc(pool, 2 * sizeof(sha));
    if (token->data == NULL || hash->data == NULL) {
        return NGX_ERROR;
    }

    ngx_encode_base64url(token, &raw);
    ngx_http_tiktok_cleanse(buf, bytes);

    ngx_http_tiktok_sha256(token->data, token->len, sha);
    hash->len = ngx_http_tiktok_hex(hash->data, sha, sizeof(sha)) - hash->data;

    return NGX_OK;
}


/*
 * GET /callback?code&state[&scopes] or ?error&error_description&state.
 *
 * state (consumed in the transaction that reads it) -> code exchange
 * through a subrequest -> user info -> tokens sealed and stored -> 302 to
 * tiktok_app_return_url?tiktok=connected.  Any failure: a row in
 * tiktok.api_errors, nothing stored, 302 ...?tiktok=error&reason=<code>.
 */

typedef struct {
    ngx_str_t                     code;
    ngx_str_t                     state_hash;     /* hex */
    ngx_str_t                     verifier;
    ngx_http_tiktok_api_token_t   token;
    ngx_http_tiktok_oauth_user_t  user;
    ngx_str_t                     state;
    ngx_str_t                     error;
    const char                   *reason;
    ngx_http_tiktok_api_call_t    call;
    ngx_http_tiktok_api_error_t   err;
} ngx_http_tiktok_oauth_t;


static ngx_int_t ngx_http_tiktok_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);
static void ngx_http_tiktok_redact(ngx_http_request_t *r, ngx_str_t *method,
    ngx_str_t *uri, ngx_str_t *args);
static void ngx_http_tiktok_callback_state(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_callback_token(ngx_http_request_t *r,
    ngx_http_tiktok_api_call_t *call);
static void ngx_http_tiktok_callback_user(ngx_http_request_t *r,
    ngx_http_tiktok_api_call_t *call);
static void ngx_http_tiktok_callback_stored(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_callback_fail(ngx_http_request_t *r,
    const char *reason, const char *endpoint, const char *message,
    ngx_uint_t level);
static void ngx_http_tiktok_callback_redirect(ngx_http_request_t *r);


static const char  ngx_http_tiktok_callback_state_sql[] =
    "DELETE FROM tiktok.oauth_states WHERE state_hash = decode($1, 'hex')"
    " RETURNING encode(code_verifier_enc, 'hex'), expires_at > now()";

static const char  ngx_http_tiktok_callback_store_sql[] =
    "INSERT INTO tiktok.accounts (user_id, open_id, display_name, avatar_url,"
    " scopes, access_token_enc, refresh_token_enc, access_expires_at,"
    " refresh_expires_at, needs_reconnect, key_id)"
    " VALUES ($1, $2, $3, $4, string_to_array($5, ','), decode($6, 'hex'),"
    " decode($7, 'hex'), now() + make_interval(secs => $8::bigint),"
    " now() + make_interval(secs => $9::bigint), false, decode($10, 'hex'))"
    " ON CONFLICT (user_id) DO UPDATE SET open_id = EXCLUDED.open_id,"
    " display_name = EXCLUDED.display_name,"
    " avatar_url = EXCLUDED.avatar_url, scopes = EXCLUDED.scopes,"
    " access_token_enc = EXCLUDED.access_token_enc,"
    " refresh_token_enc = EXCLUDED.refresh_token_enc,"
    " access_expires_at = EXCLUDED.access_expires_at,"
    " refresh_expires_at = EXCLUDED.refresh_expires_at,"
    " needs_reconnect = false, key_id = EXCLUDED.key_id, updated_at = now()";


/*
 * Called by the dispatcher for every request to the callback path, before
 * anything can answer it: reads code, state and error, then redacts the
 * request line and arguments that nginx logs.
 */

ngx_int_t
ngx_http_tiktok_callback_redact(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx)
{
    ngx_int_t                 rc;
    ngx_http_tiktok_oauth_t  *oa;

    oa = ngx_pcalloc(r->pool, sizeof(ngx_http_tiktok_oauth_t));

    rc = (oa == NULL
          || ngx_http_tiktok_arg(r, "code", &oa->code) == NGX_ERROR
          || ngx_http_tiktok_arg(r, "state", &oa->state) == NGX_ERROR
          || ngx_http_tiktok_arg(r, "error", &oa->error) == NGX_ERROR
          || ngx_http_tiktok_forget(r->pool, &oa->code) != NGX_OK)
         ? NGX_ERROR : NGX_OK;

    ctx->data = oa;

    ngx_http_tiktok_redact(r, &r->method_name, &r->uri, &r->args);

    return rc;
}


/*
 * nginx's own error (a 413, a 400) for a callback reaches the module
 * through an error_page redirect: r->uri and r->args are the error page's
 * by then, but the request line and $request_uri are still the client's,
 * code included.  They are redacted from the original unparsed URI.
 */

void
ngx_http_tiktok_callback_redact_original(ngx_http_request_t *r)
{
    u_char     *q;
    ngx_str_t   method, uri, args;

    q = ngx_strlchr(r->unparsed_uri.data,
                    r->unparsed_uri.data + r->unparsed_uri.len, '?');
    if (q == NULL) {
        return;
    }

    uri.data = r->unparsed_uri.data;
    uri.len = q - uri.data;

    if (uri.len < sizeof("/callback") - 1
        || ngx_strncmp(q - (sizeof("/callback") - 1), "/callback",
                       sizeof("/callback") - 1) != 0)
    {
        return;
    }

    args.data = q + 1;
    args.len = r->unparsed_uri.data + r->unparsed_uri.len - args.data;

    /* the error page is a GET: the line keeps the client's method */
    method.data = r->request_line.data;
    q = ngx_strlchr(method.data, method.data + r->request_line.len, ' ');
    method.len = q ? (size_t) (q - method.data) : 0;

    ngx_http_tiktok_redact(r, &method, &uri, &args);
}


ngx_int_t
ngx_http_tiktok_callback_handler(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx)
{
    u_char                       hash[NGX_HTTP_TIKTOK_SHA256_LEN];
    ngx_int_t                    done;
    ngx_http_tiktok_oauth_t     *oa;

    /* read and redacted by ngx_http_tiktok_callback_redact() */
    oa = ctx->data;

    /* before callback_fail, which may finalize at once */
    done = ngx_http_tiktok_wait(r);

    if (oa->error.len) {
        oa->err.code = oa->error;
        ngx_http_tiktok_callback_fail(r,
            (oa->error.len == 13
             && ngx_strncmp(oa->error.data, "access_denied", 13) == 0)
                ? "access_denied" : "oauth_failed",
            "/v2/auth/authorize/", "the user did not authorize",
            NGX_LOG_INFO);
        return done;
    }

    if (oa->state.len != 43 || oa->code.len == 0) {
        ngx_http_tiktok_callback_fail(r, "invalid_state", "/callback",
                                      "missing or malformed state or code",
                                      NGX_LOG_INFO);
        return done;
    }

    ngx_http_tiktok_sha256(oa->state.data, oa->state.len, hash);

    oa->state_hash.data = ngx_pnalloc(r->pool, 2 * sizeof(hash));
    if (oa->state_hash.data == NULL) {
        r->main->count--;
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    oa->state_hash.len = ngx_http_tiktok_hex(oa->state_hash.data, hash,
                                             sizeof(hash))
                         - oa->state_hash.data;

    /* consumed in the very statement that reads it: single use */

    if (ngx_http_tiktok_query(r, ngx_http_tiktok_callback_state_sql, 1,
                              &oa->state_hash, ngx_http_tiktok_callback_state)
        != NGX_OK)
    {
        r->main->count--;
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return done;
}


/* a query argument, percent-decoded into the pool; empty when absent */

static ngx_int_t
ngx_http_tiktok_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    u_char     *dst, *src;
    ngx_str_t   raw;

    ngx_str_null(value);

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &raw) != NGX_OK
        || raw.len == 0)
    {
        return NGX_DECLINED;
    }

    value->data = ngx_pnalloc(r->pool, raw.len);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    dst = value->data;
    src = raw.data;
    ngx_unescape_uri(&dst, &src, raw.len, NGX_UNESCAPE_URI);
    value->len = dst - value->data;

    return NGX_OK;
}


/*
 * The request line (access log $request, error log context) and the
 * arguments lose their values from here on: "GET /api/tiktok/callback?
 * code=REDACTED&state=REDACTED HTTP/1.1".
 */

static void
ngx_http_tiktok_redact(ngx_http_request_t *r, ngx_str_t *method,
    ngx_str_t *uri, ngx_str_t *args)
{
    u_char  *p, *last, *a, *end, *line;
    size_t   len;

    if (args->len == 0) {
        return;
    }

    len = method->len + 1 + uri->len + 1
          + args->len * 9 + 1 + r->http_protocol.len;

    line = ngx_pnalloc(r->pool, len);
    if (line == NULL) {
        /* log nothing of the query rather than the code */
        r->args.len = 0;
        r->unparsed_uri = *uri;
        r->request_line = *method;
        return;
    }

    p = ngx_sprintf(line, "%V %V?", method, uri);

    a = p;
    last = args->data + args->len;

    for (end = args->data; end < last; /* void */) {
        /* copy "name=" and replace the value */
        while (end < last && *end != '=' && *end != '&') {
            *p++ = *end++;
        }

        if (end < last && *end == '=') {
            p = ngx_cpymem(p, "=REDACTED", sizeof("=REDACTED") - 1);

            while (end < last && *end != '&') {
                end++;
            }
        }

        if (end < last) {
            *p++ = *end++;
        }
    }

    r->args.data = a;
    r->args.len = p - a;

    r->unparsed_uri.data = line + method->len + 1;
    r->unparsed_uri.len = p - r->unparsed_uri.data;

    if (r->http_protocol.len) {
        p = ngx_sprintf(p, " %V", &r->http_protocol);
    }

    r->request_line.data = line;
    r->request_line.len = p - line;
}


static void
ngx_http_tiktok_callback_state(ngx_http_tiktok_pg_query_t *q)
{
    ngx_int_t                     rc;
    PGresult                     *res;
    ngx_http_request_t           *r;
    ngx_http_tiktok_ctx_t        *ctx;
    ngx_keyval_t                  fields[4];
    ngx_http_tiktok_oauth_t      *oa;
    ngx_http_tiktok_main_conf_t  *tmcf;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);
    oa = ctx->data;

    if (q->rc != NGX_OK) {
        ngx_http_tiktok_callback_fail(r, "unavailable", "database",
                                      "the state could not be read",
                                      NGX_LOG_ERR);
        return;
    }

    res = q->res[0];

    if (res == NULL || PQntuples(res) != 1) {
        ngx_http_tiktok_callback_fail(r, "invalid_state", "/callback",
                                      "unknown, used or foreign state",
                                      NGX_LOG_INFO);
        return;
    }

    if (PQgetvalue(res, 0, 1)[0] != 't') {
        ngx_http_tiktok_callback_fail(r, "invalid_state", "/callback",
                                      "expired state", NGX_LOG_INFO);
        return;
    }

    /* the PKCE verifier, sealed at /connect */

    if (!PQgetisnull(res, 0, 0) && PQgetlength(res, 0, 0) > 0) {
        rc = ngx_http_tiktok_unseal_hex(r->pool, r->connection->log,
                                        &tmcf->keyring, &ctx->user_id,
                                        "code_verifier", res, 0,
                                        &oa->verifier);
        if (rc == NGX_ERROR) {
            ngx_http_tiktok_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        if (rc != NGX_OK) {
            ngx_http_tiktok_callback_fail(r, "invalid_state", "/callback",
                                          "the state's verifier does not "
                                          "decrypt", NGX_LOG_ERR);
            return;
        }
    }

    /* the code exchange; field names are NUL-terminated literals */

    ngx_str_set(&fields[0].key, "code");
    fields[0].value = oa->code;
    ngx_str_set(&fields[1].key, "grant_type");
    ngx_str_set(&fields[1].value, "authorization_code");
    ngx_str_set(&fields[2].key, "redirect_uri");
    fields[2].value = tmcf->redirect_uri;
    ngx_str_set(&fields[3].key, "code_verifier");
    fields[3].value = oa->verifier;

    if (ngx_http_tiktok_api_oauth_post(r, &oa->call, "/v2/oauth/token/",
                                       fields, oa->verifier.len ? 4 : 3,
                                       ngx_http_tiktok_callback_token)
        != NGX_OK)
    {
        ngx_http_tiktok_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


static void
ngx_http_tiktok_callback_token(ngx_http_request_t *r,
    ngx_http_tiktok_api_call_t *call)
{
    json_t                   *root;
    ngx_int_t                 rc;
    ngx_http_tiktok_ctx_t    *ctx;
    ngx_http_tiktok_oauth_t  *oa;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    oa = ctx->data;

    oa->err.endpoint = "/v2/oauth/token/";

    rc = ngx_http_tiktok_api_oauth(r, call, &root, &oa->err);

    /* oa is in the pool: the tokens are zeroed through it when it goes */

    if (rc == NGX_OK) {
        rc = ngx_http_tiktok_api_token_read(r->pool, root, &oa->token,
                                            &oa->err.message);

        /* the account is not known yet: the exchange must name it */

        if (rc == NGX_OK && oa->token.open_id.len == 0) {
            oa->err.message = "token answer without the documented fields";
            rc = NGX_ERROR;
        }
    }

    if (rc != NGX_OK) {
        ngx_http_tiktok_callback_fail(r, "oauth_failed", oa->err.endpoint,
                                      oa->err.message, NGX_LOG_ERR);
        return;
    }

    /* who the tokens belong to */

    ngx_memzero(&oa->call, sizeof(ngx_http_tiktok_api_call_t));

    oa->call.method = NGX_HTTP_GET;
    ngx_str_set(&oa->call.path, "/v2/user/info/");
    ngx_str_set(&oa->call.args, "fields=open_id,union_id,avatar_url,"
                                "display_name");
    oa->call.bearer = oa->token.access_token;
    oa->call.handler = ngx_http_tiktok_callback_user;

    if (ngx_http_tiktok_api_start(r, &oa->call) != NGX_OK) {
        ngx_http_tiktok_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


/* the user info, then the account stored with its tokens sealed */

static void
ngx_http_tiktok_callback_user(ngx_http_request_t *r,
    ngx_http_tiktok_api_call_t *call)
{
    json_t                       *data;
    ngx_int_t                     rc;
    ngx_str_t                     params[10];
    ngx_http_tiktok_ctx_t        *ctx;
    ngx_http_tiktok_oauth_t      *oa;
    ngx_http_tiktok_main_conf_t  *tmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);
    oa = ctx->data;

    ngx_memzero(&oa->err, sizeof(ngx_http_tiktok_api_error_t));
    oa->err.endpoint = "/v2/user/info/";

    rc = ngx_http_tiktok_api_envelope(r, call, &data, &oa->err);

    if (rc == NGX_OK) {
        rc = ngx_http_tiktok_oauth_user_read(r->pool, data, &oa->user,
                                             &oa->err.message);

        /* the tokens' account, not another one */

        if (rc == NGX_OK
            && (oa->user.open_id.len != oa->token.open_id.len
                || ngx_strncmp(oa->user.open_id.data, oa->token.open_id.data,
                               oa->user.open_id.len)
                   != 0))
        {
            oa->err.message = "user info without the account's open_id";
            rc = NGX_ERROR;
        }
    }

    if (rc != NGX_OK) {
        ngx_http_tiktok_callback_fail(r, "oauth_failed", oa->err.endpoint,
                                      oa->err.message, NGX_LOG_ERR);
        return;
    }

    params[0] = ctx->user_id;
    params[1] = oa->token.open_id;
    params[2] = oa->user.display_name;
    params[3] = oa->user.avatar_url;
    params[4] = oa->token.scope;

    if (params[4].data == NULL) {
        ngx_str_set(&params[4], "");
    }

    params[7] = oa->token.expires_in;
    params[8] = oa->token.refresh_expires_in;

    if (ngx_http_tiktok_seal_hex(r->pool, r->connection->log,
                                 &tmcf->keyring, &ctx->user_id,
                                 "access_token", &oa->token.access_token,
                                 &params[5]) != NGX_OK
        || ngx_http_tiktok_seal_hex(r->pool, r->connection->log,
                                    &tmcf->keyring, &ctx->user_id,
                                    "refresh_token", &oa->token.refresh_token,
                                    &params[6]) != NGX_OK)
    {
        ngx_http_tiktok_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* a sealed token begins with its key's id (crypto.h) */
    params[9].data = params[5].data;
    params[9].len = 2 * NGX_HTTP_TIKTOK_KEY_ID_LEN;

    if (ngx_http_tiktok_query(r, ngx_http_tiktok_callback_store_sql, 10,
                              params, ngx_http_tiktok_callback_stored)
        != NGX_OK)
    {
        ngx_http_tiktok_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


ngx_int_t
ngx_http_tiktok_oauth_user_read(ngx_pool_t *pool, json_t *data,
    ngx_http_tiktok_oauth_user_t *user, const char **reason)
{
    json_t  *u;

    ngx_memzero(user, sizeof(ngx_http_tiktok_oauth_user_t));

    u = json_object_get(data, "user");

    /* the names are the user's to leave out; a wrong type reads as absent */

    if (!json_is_object(u)
        || ngx_http_tiktok_json_get_str(pool, u, "open_id", &user->open_id)
           != NGX_OK
        || ngx_http_tiktok_json_get_str(pool, u, "display_name",
                                        &user->display_name) == NGX_ERROR
        || ngx_http_tiktok_json_get_str(pool, u, "avatar_url",
                                        &user->avatar_url) == NGX_ERROR)
    {
        *reason = "user info without the account's open_id";
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_tiktok_callback_stored(ngx_http_tiktok_pg_query_t *q)
{
    if (q->rc != NGX_OK) {
        ngx_http_tiktok_callback_fail(q->data, "unavailable", "database",
                                      "the account could not be stored",
                                      NGX_LOG_ERR);
        return;
    }

    /* oa->reason is still NULL: connected */
    ngx_http_tiktok_callback_redirect(q->data);
}


/* record why, then redirect with the reason; nothing was stored */

static void
ngx_http_tiktok_callback_fail(ngx_http_request_t *r, const char *reason,
    const char *endpoint, const char *message, ngx_uint_t level)
{
    ngx_http_tiktok_ctx_t    *ctx;
    ngx_http_tiktok_oauth_t  *oa;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    oa = ctx->data;

    oa->reason = reason;
    oa->err.endpoint = endpoint;
    oa->err.message = message;

    if (ngx_http_tiktok_record_error(r, &oa->err, level,
                                     ngx_http_tiktok_callback_redirect)
        != NGX_OK)
    {
        ngx_http_tiktok_callback_redirect(r);
    }
}


/* tiktok_app_return_url with ?tiktok=connected or ?tiktok=error&reason= */

static void
ngx_http_tiktok_callback_redirect(ngx_http_request_t *r)
{
    u_char                       *p;
    ngx_str_t                     url;
    ngx_http_tiktok_ctx_t        *ctx;
    ngx_http_tiktok_oauth_t      *oa;
    ngx_http_tiktok_main_conf_t  *tmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);
    oa = ctx->data;

    url.data = ngx_pnalloc(r->pool, tmcf->app_return_url.len
                                    + sizeof("?tiktok=connected&reason=")
                                    + (oa->reason ? ngx_strlen(oa->reason)
                                                  : 0));
    if (url.data == NULL) {
        ngx_http_tiktok_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = ngx_cpymem(url.data, tmcf->app_return_url.data,
                   tmcf->app_return_url.len);

    *p = ngx_strlchr(url.data, p, '?') ? '&' : '?';

    if (oa->reason) {
        p = ngx_sprintf(p + 1, "tiktok=error&reason=%s", oa->reason);

    } else {
        p = ngx_sprintf(p + 1, "tiktok=connected");
    }

    url.len = p - url.data;

    ngx_http_tiktok_finalize(r, ngx_http_tiktok_send_redirect(r,
                                    "redirect_url", &url));
}


/*
 * POST /disconnect: the account row goes, the user's posts that have not
 * started are cancelled (their spool files removed), other nginx nodes are
 * told to purge the user's cache (NOTIFY tiktok_purge, and a purge record
 * for the nodes that miss the notification), this node's cache
 * is purged, and the access token is revoked at TikTok, best effort: a
 * failed revoke is recorded, not shown.  Idempotent.
 */

static void ngx_http_tiktok_disconnect_deleted(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_disconnect_revoked(ngx_http_request_t *r,
    ngx_http_tiktok_api_call_t *call);
static void ngx_http_tiktok_disconnect_done(ngx_http_request_t *r);


static const char  ngx_http_tiktok_disconnect_sql[] =
    "DELETE FROM tiktok.accounts WHERE user_id = $1"
    " RETURNING encode(access_token_enc, 'hex'),"
    " access_expires_at > now()";

/* as DELETE /posts/{id}: every post nothing was sent to TikTok for */
static const char  ngx_http_tiktok_disconnect_posts_sql[] =
    "UPDATE tiktok.posts SET status = 'cancelled', claim_until = NULL,"
    " claim_token = NULL, updated_at = now()"
    " WHERE user_id = $1 AND status IN ('queued', 'scheduled')"
    " AND init_started_at IS NULL AND publish_id IS NULL"
    " RETURNING spool_path";

static const char  ngx_http_tiktok_disconnect_notify_sql[] =
    "SELECT pg_notify('tiktok_purge', $1)";

/*
 * The durable side of the purge, read by nodes that miss the notification
 * (sql/007_purges.sql).  The lock makes record ids visible in commit
 * order, so a reader never skips one that commits late.
 */
static const char  ngx_http_tiktok_disconnect_purge_sql[] =
    "INSERT INTO tiktok.purges (user_id)"
    " SELECT $1 FROM pg_advisory_xact_lock(hashtext('tiktok.purges'))";


ngx_int_t
ngx_http_tiktok_disconnect_handler(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx)
{
    ngx_http_tiktok_oauth_t     *oa;
    ngx_http_tiktok_pg_query_t  *q;

    oa = ngx_pcalloc(r->pool, sizeof(ngx_http_tiktok_oauth_t));
    q = ngx_http_tiktok_query_new(r, ngx_http_tiktok_disconnect_deleted);
    if (oa == NULL || q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->data = oa;

    if (ngx_http_tiktok_pg_add(q, ngx_http_tiktok_disconnect_sql, 1,
                               &ctx->user_id) != NGX_OK
        || ngx_http_tiktok_pg_add(q, ngx_http_tiktok_disconnect_posts_sql, 1,
                                  &ctx->user_id) != NGX_OK
        || ngx_http_tiktok_pg_add(q, ngx_http_tiktok_disconnect_notify_sql, 1,
                                  &ctx->user_id) != NGX_OK
        || ngx_http_tiktok_pg_add(q, ngx_http_tiktok_disconnect_purge_sql, 1,
                                  &ctx->user_id) != NGX_OK
        || ngx_http_tiktok_query_run(r, q) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_tiktok_wait(r);
}


static void
ngx_http_tiktok_disconnect_deleted(ngx_http_tiktok_pg_query_t *q)
{
    ngx_keyval_t                  field;
    ngx_http_request_t           *r;
    ngx_http_tiktok_ctx_t        *ctx;
    ngx_http_tiktok_oauth_t      *oa;
    ngx_http_tiktok_main_conf_t  *tmcf;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);
    oa = ctx->data;

    if (q->rc != NGX_OK) {
        ngx_http_tiktok_finalize(r, ngx_http_tiktok_db_error(r, q->rc));
        return;
    }

    /* committed: from here on the user is disconnected whatever happens */

    if (tmcf->cache) {
        (void) ngx_http_tiktok_cache_purge_user(tmcf->cache, &ctx->user_id);
    }

    ngx_http_tiktok_spool_remove(r, q->res[1]);

    /* nothing to revoke: no account, or its token expired anyway */

    if (PQntuples(q->res[0]) == 1 && PQgetvalue(q->res[0], 0, 1)[0] == 't') {
        /* the token is forgotten with the pool: oa holds it, not the stack */

        if (ngx_http_tiktok_unseal_hex(r->pool, r->connection->log,
                                       &tmcf->keyring, &ctx->user_id,
                                       "access_token", q->res[0], 0,
                                       &oa->token.access_token)
            == NGX_OK)
        {
            ngx_str_set(&field.key, "token");
            field.value = oa->token.access_token;

            if (ngx_http_tiktok_api_oauth_post(r, &oa->call,
                    "/v2/oauth/revoke/", &field, 1,
                    ngx_http_tiktok_disconnect_revoked)
                == NGX_OK)
            {
                return;
            }
        }
    }

    ngx_http_tiktok_disconnect_done(r);
}


static void
ngx_http_tiktok_disconnect_revoked(ngx_http_request_t *r,
    ngx_http_tiktok_api_call_t *call)
{
    json_t                   *root;
    ngx_http_tiktok_ctx_t    *ctx;
    ngx_http_tiktok_oauth_t  *oa;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    oa = ctx->data;

    oa->err.endpoint = "/v2/oauth/revoke/";

    if (ngx_http_tiktok_api_oauth(r, call, &root, &oa->err) == NGX_OK) {
        ngx_http_tiktok_disconnect_done(r);
        return;
    }

    /* best effort: recorded, not shown */
    oa->err.message = "revoke failed; the account is disconnected anyway";

    if (ngx_http_tiktok_record_error(r, &oa->err, NGX_LOG_WARN,
                                     ngx_http_tiktok_disconnect_done)
        != NGX_OK)
    {
        ngx_http_tiktok_disconnect_done(r);
    }
}


static void
ngx_http_tiktok_disconnect_done(ngx_http_request_t *r)
{
    ngx_str_t  body = ngx_string("{\"connected\":false}");

    ngx_http_tiktok_finalize(r, ngx_http_tiktok_send_json(r, NGX_HTTP_OK,
                                                          &body));
}
