
/*
 * The caller's TikTok access token, refreshed before use when it expires
 * within five minutes.
 *
 * TikTok rotates refresh tokens: two concurrent refreshes would break each
 * other.  So one request claims a lease on the account row with an atomic
 * UPDATE (any worker, any nginx node sharing the database), refreshes, and
 * stores the new tokens and clears the lease in one UPDATE; every other
 * request polls the row briefly and reuses the new token.  The lease
 * expires by itself should its holder die, and outlives the refresh call.
 *
 * The refresh call itself goes through libcurl, not a subrequest: its
 * timeout is ours (NGX_HTTP_TIKTOK_REFRESH_TIMEOUT, below the lease)
 * whatever the internal location's proxy timeouts, and nothing ties it to
 * the client's connection.  A refresh TikTok may have performed (rotating
 * the refresh token) is waited for and stored even when the client has
 * gone: the request lives on, its caller holding r->main->count, until the
 * answer is stored and next(r) finalizes it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_module.h"


#define NGX_HTTP_TIKTOK_TOKEN_POLL   100     /* ms between looks at a lease */
#define NGX_HTTP_TIKTOK_TOKEN_WAIT   15000   /* longest wait for another's */


static ngx_int_t ngx_http_tiktok_token_load(ngx_http_request_t *r);
static void ngx_http_tiktok_token_loaded(ngx_http_tiktok_pg_query_t *q);
static ngx_int_t ngx_http_tiktok_token_claim(ngx_http_request_t *r);
static void ngx_http_tiktok_token_claimed(ngx_http_tiktok_pg_query_t *q);
static ngx_int_t ngx_http_tiktok_token_refresh(ngx_http_request_t *r);
static void ngx_http_tiktok_token_refreshed(ngx_http_tiktok_curl_req_t *req);
static ngx_int_t ngx_http_tiktok_token_store(ngx_http_request_t *r,
    json_t *root);
static void ngx_http_tiktok_token_stored(ngx_http_tiktok_pg_query_t *q);
static ngx_int_t ngx_http_tiktok_token_release(ngx_http_request_t *r,
    ngx_uint_t reconnect);
static void ngx_http_tiktok_token_released(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_token_wait(ngx_http_request_t *r);
static void ngx_http_tiktok_token_wait_handler(ngx_event_t *ev);
static void ngx_http_tiktok_token_cleanup(void *data);
static void ngx_http_tiktok_token_done(ngx_http_request_t *r,
    ngx_uint_t status);
static void ngx_http_tiktok_token_recorded(ngx_http_request_t *r);


const char  ngx_http_tiktok_token_load_sql[] =
    "SELECT encode(access_token_enc, 'hex'),"
    " access_expires_at > now() + interval '5 minutes',"
    " refresh_expires_at > now(), needs_reconnect,"
    " array_to_string(scopes, ','), open_id, access_expires_at::text"
    " FROM tiktok.accounts WHERE user_id = $1";

const char  ngx_http_tiktok_token_claim_sql[] =
    "UPDATE tiktok.accounts"
    " SET refresh_lock_until = now()"
    " + interval '" NGX_HTTP_TIKTOK_REFRESH_LEASE "',"
    " refresh_lock_owner = $2"
    " WHERE user_id = $1 AND NOT needs_reconnect"
    " AND access_expires_at <= now() + interval '5 minutes'"
    " AND refresh_expires_at > now()"
    " AND (refresh_lock_until IS NULL OR refresh_lock_until < now())"
    " RETURNING encode(refresh_token_enc, 'hex')";

/* the rotated refresh token is stored in the same statement */
const char  ngx_http_tiktok_token_store_sql[] =
    "UPDATE tiktok.accounts SET access_token_enc = decode($3, 'hex'),"
    " refresh_token_enc = decode($4, 'hex'),"
    " access_expires_at = now() + make_interval(secs => $5::bigint),"
    " refresh_expires_at = now() + make_interval(secs => $6::bigint),"
    " scopes = coalesce(string_to_array(nullif($7, ''), ','), scopes),"
    " key_id = decode($8, 'hex'), refresh_lock_until = NULL,"
    " refresh_lock_owner = NULL, updated_at = now()"
    " WHERE user_id = $1 AND refresh_lock_owner = $2";

const char  ngx_http_tiktok_token_release_sql[] =
    "UPDATE tiktok.accounts SET refresh_lock_until = NULL,"
    " refresh_lock_owner = NULL,"
    " needs_reconnect = needs_reconnect OR $3::boolean, updated_at = now()"
    " WHERE user_id = $1 AND refresh_lock_owner = $2";

/*
 * TikTok said the token is invalid: expire it, unless someone refreshed
 * it meanwhile (the expiry we read no longer matches), so the next look
 * refreshes it under the usual lease.
 */
const char  ngx_http_tiktok_token_invalidate_sql[] =
    "UPDATE tiktok.accounts SET access_expires_at = now()"
    " WHERE user_id = $1 AND access_expires_at = $2::timestamptz";

const char  ngx_http_tiktok_token_reconnect_sql[] =
    "UPDATE tiktok.accounts SET needs_reconnect = true, updated_at = now()"
    " WHERE user_id = $1";


/*
 * Starts getting the caller's token; next(r) runs later, from the event
 * loop, with ctx->token->status set.  NGX_ERROR: nothing started.
 */

ngx_int_t
ngx_http_tiktok_token(ngx_http_request_t *r, ngx_http_tiktok_next_pt next)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_tiktok_ctx_t    *ctx;
    ngx_http_tiktok_token_t  *tk;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    tk = ngx_pcalloc(r->pool, sizeof(ngx_http_tiktok_token_t));
    if (tk == NULL
        || ngx_http_tiktok_token_owner(r->pool, &tk->owner) != NGX_OK)
    {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_tiktok_token_cleanup;
    cln->data = tk;

    tk->next = next;
    tk->deadline = ngx_current_msec + NGX_HTTP_TIKTOK_TOKEN_WAIT;
    tk->wait.handler = ngx_http_tiktok_token_wait_handler;
    tk->wait.data = r;
    tk->wait.log = r->connection->log;

    ctx->token = tk;

    return ngx_http_tiktok_token_load(r);
}


static ngx_int_t
ngx_http_tiktok_token_load(ngx_http_request_t *r)
{
    ngx_http_tiktok_ctx_t        *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    return ngx_http_tiktok_query(r, ngx_http_tiktok_token_load_sql, 1,
                                 &ctx->user_id, ngx_http_tiktok_token_loaded);
}


static void
ngx_http_tiktok_token_loaded(ngx_http_tiktok_pg_query_t *q)
{
    ngx_str_t                     hex;
    PGresult                     *res;
    ngx_uint_t                    prev;
    ngx_http_request_t           *r;
    ngx_http_tiktok_ctx_t        *ctx;
    ngx_http_tiktok_token_t      *tk;
    ngx_http_tiktok_main_conf_t  *tmcf;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);
    tk = ctx->token;

    if (q->rc != NGX_OK) {
        ngx_http_tiktok_token_done(r, NGX_HTTP_TIKTOK_TOKEN_UNAVAILABLE);
        return;
    }

    res = q->res[0];

    if (PQntuples(res) != 1) {
        ngx_http_tiktok_token_done(r, NGX_HTTP_TIKTOK_TOKEN_NOT_CONNECTED);
        return;
    }

    if (PQgetvalue(res, 0, 3)[0] == 't') {
        ngx_http_tiktok_token_done(r, NGX_HTTP_TIKTOK_TOKEN_RECONNECT);
        return;
    }

    if (ngx_http_tiktok_pg_copy(r->pool, res, 4, &tk->scopes) != NGX_OK
        || ngx_http_tiktok_pg_copy(r->pool, res, 5, &tk->open_id) != NGX_OK
        || ngx_http_tiktok_pg_copy(r->pool, res, 6, &tk->expires_at)
           != NGX_OK)
    {
        ngx_http_tiktok_token_done(r, NGX_HTTP_TIKTOK_TOKEN_ERROR);
        return;
    }

    if (PQgetvalue(res, 0, 1)[0] == 't') {
        /* fresh for five more minutes at least */

        hex.data = (u_char *) PQgetvalue(res, 0, 0);
        hex.len = PQgetlength(res, 0, 0);

        if (ngx_http_tiktok_unseal_hex(r->pool, r->connection->log,
                                       &tmcf->keyring, &ctx->user_id,
                                       "access_token", &hex,
                                       &tk->access_token, &prev)
            != NGX_OK)
        {
            ngx_http_tiktok_token_done(r, NGX_HTTP_TIKTOK_TOKEN_RECONNECT);
            return;
        }

        tk->used_previous = prev;

        ngx_http_tiktok_token_done(r, NGX_HTTP_TIKTOK_TOKEN_OK);
        return;
    }

    if (PQgetvalue(res, 0, 2)[0] != 't') {
        /* an expired refresh token is never sent */

        tk->status = NGX_HTTP_TIKTOK_TOKEN_RECONNECT;

        if (ngx_http_tiktok_query(r, ngx_http_tiktok_token_reconnect_sql, 1,
                                  &ctx->user_id,
                                  ngx_http_tiktok_token_released)
            != NGX_OK)
        {
            ngx_http_tiktok_token_done(r, NGX_HTTP_TIKTOK_TOKEN_ERROR);
        }

        return;
    }

    if (ngx_http_tiktok_token_claim(r) != NGX_OK) {
        ngx_http_tiktok_token_done(r, NGX_HTTP_TIKTOK_TOKEN_ERROR);
    }
}


static ngx_int_t
ngx_http_tiktok_token_claim(ngx_http_request_t *r)
{
    ngx_str_t                     params[2];
    ngx_http_tiktok_ctx_t        *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    params[0] = ctx->user_id;
    params[1] = ctx->token->owner;

    return ngx_http_tiktok_query(r, ngx_http_tiktok_token_claim_sql, 2,
                                 params, ngx_http_tiktok_token_claimed);
}


static void
ngx_http_tiktok_token_claimed(ngx_http_tiktok_pg_query_t *q)
{
    ngx_str_t                     hex;
    ngx_uint_t                    prev;
    ngx_http_request_t           *r;
    ngx_http_tiktok_ctx_t        *ctx;
    ngx_http_tiktok_token_t      *tk;
    ngx_http_tiktok_main_conf_t  *tmcf;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);
    tk = ctx->token;

    if (q->rc != NGX_OK) {
        ngx_http_tiktok_token_done(r, NGX_HTTP_TIKTOK_TOKEN_UNAVAILABLE);
        return;
    }

    if (PQntuples(q->res[0]) != 1) {
        /* another request holds the lease, or just refreshed: wait */
        ngx_http_tiktok_token_wait(r);
        return;
    }

    hex.data = (u_char *) PQgetvalue(q->res[0], 0, 0);
    hex.len = PQgetlength(q->res[0], 0, 0);

    if (ngx_http_tiktok_unseal_hex(r->pool, r->connection->log,
                                   &tmcf->keyring, &ctx->user_id,
                                   "refresh_token", &hex, &tk->refresh_token,
                                   &prev)
        != NGX_OK)
    {
        /* a token we cannot read is as good as none */
        tk->status = NGX_HTTP_TIKTOK_TOKEN_RECONNECT;

        if (ngx_http_tiktok_token_release(r, 1) != NGX_OK) {
            ngx_http_tiktok_token_done(r, NGX_HTTP_TIKTOK_TOKEN_ERROR);
        }

        return;
    }

    if (ngx_http_tiktok_token_refresh(r) != NGX_OK) {
        /* nothing was sent: give the lease back at once */
        tk->status = NGX_HTTP_TIKTOK_TOKEN_ERROR;

        if (ngx_http_tiktok_token_release(r, 0) != NGX_OK) {
            ngx_http_tiktok_token_done(r, NGX_HTTP_TIKTOK_TOKEN_ERROR);
        }
    }
}


/* POST /v2/oauth/token/ with the refresh token, through libcurl */

static ngx_int_t
ngx_http_tiktok_token_refresh(ngx_http_request_t *r)
{
    ngx_keyval_t                  fields[2];
    ngx_http_tiktok_ctx_t        *ctx;
    ngx_http_tiktok_token_t      *tk;
    ngx_http_tiktok_curl_req_t   *req;
    ngx_http_tiktok_main_conf_t  *tmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);
    tk = ctx->token;

    if (tmcf->curl == NULL) {
        return NGX_ERROR;
    }

    /* in the request's pool: its cleanup cancels the call */
    req = ngx_http_tiktok_curl_req_create(r->pool, r->connection->log);
    if (req == NULL) {
        return NGX_ERROR;
    }

    req->url.data = ngx_pnalloc(r->pool, tmcf->api_base_url.len
                                         + sizeof("/v2/oauth/token/"));
    if (req->url.data == NULL) {
        return NGX_ERROR;
    }

    req->url.len = ngx_sprintf(req->url.data, "%V/v2/oauth/token/%Z",
                               &tmcf->api_base_url)
                   - req->url.data - 1;

    ngx_str_set(&fields[0].key, "grant_type");
    ngx_str_set(&fields[0].value, "refresh_token");
    ngx_str_set(&fields[1].key, "refresh_token");
    fields[1].value = tk->refresh_token;

    /* the form is zeroed with the pool */
    if (ngx_http_tiktok_oauth_form(r->pool, tmcf, fields, 2, &req->body)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    req->method = "POST";
    ngx_str_set(&req->content_type, "application/x-www-form-urlencoded");
    req->timeout = NGX_HTTP_TIKTOK_REFRESH_TIMEOUT;
    req->request_id = ctx->request_id;
    req->handler = ngx_http_tiktok_token_refreshed;
    req->data = r;

    /* never resent on a reused connection: it could spend the new token */
    req->fresh = 1;

    return ngx_http_tiktok_curl_start(tmcf->curl, req);
}


static void
ngx_http_tiktok_token_refreshed(ngx_http_tiktok_curl_req_t *req)
{
    json_t                   *root;
    ngx_int_t                 rc;
    ngx_http_request_t       *r;
    ngx_http_tiktok_ctx_t    *ctx;
    ngx_http_tiktok_token_t  *tk;

    r = req->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    tk = ctx->token;

    tk->err.endpoint = "/v2/oauth/token/";

    if (req->aborted) {
        /* the worker is exiting: the lease runs out by itself */
        tk->http_status = NGX_HTTP_BAD_GATEWAY;
        ngx_http_tiktok_token_done(r, NGX_HTTP_TIKTOK_TOKEN_TIKTOK_DOWN);
        return;
    }

    if (req->rc != NGX_OK) {
        tk->err.status = 0;
        tk->err.message = req->timed_out ? "TikTok did not answer in time"
                                         : "TikTok could not be reached";
        rc = NGX_ERROR;

    } else {
        rc = ngx_http_tiktok_oauth_answer(r->pool, r->connection->log,
                                          req->status, &req->response, &root,
                                          &tk->err);
    }

    if (rc == NGX_OK) {
        rc = ngx_http_tiktok_token_store(r, root);
        if (rc == NGX_OK) {
            return;
        }

        tk->err.message = "refresh answer without the documented fields";
    }

    if (rc == NGX_DECLINED && ngx_http_tiktok_token_rejected(&tk->err.code)) {
        /* TikTok refused the refresh token: the user must reconnect */
        tk->status = NGX_HTTP_TIKTOK_TOKEN_RECONNECT;

    } else {
        /* a server error or a limit is no verdict on the token */
        tk->status = NGX_HTTP_TIKTOK_TOKEN_TIKTOK_DOWN;
        tk->http_status = req->timed_out ? NGX_HTTP_GATEWAY_TIME_OUT
                                         : NGX_HTTP_BAD_GATEWAY;
    }

    if (ngx_http_tiktok_token_release(r,
            tk->status == NGX_HTTP_TIKTOK_TOKEN_RECONNECT)
        != NGX_OK)
    {
        ngx_http_tiktok_token_done(r, tk->status);
    }
}


/* the OAuth error codes that mean the grant itself is gone */

ngx_uint_t
ngx_http_tiktok_token_rejected(ngx_str_t *code)
{
    static ngx_str_t  rejected[] = {
        ngx_string("invalid_grant"),
        ngx_string("access_denied"),
        ngx_string("unauthorized_client"),
        ngx_null_string
    };

    ngx_str_t  *s;

    for (s = rejected; s->len; s++) {
        if (s->len == code->len
            && ngx_strncmp(s->data, code->data, code->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_tiktok_token_store(ngx_http_request_t *r, json_t *root)
{
    ngx_int_t                     rc;
    ngx_str_t                     params[8];
    ngx_http_tiktok_ctx_t        *ctx;
    ngx_http_tiktok_token_t      *tk;
    ngx_http_tiktok_main_conf_t  *tmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);
    tk = ctx->token;

    params[0] = ctx->user_id;
    params[1] = tk->owner;

    /* the old refresh token is spent whatever TikTok answered */
    ngx_http_tiktok_cleanse(tk->refresh_token.data, tk->refresh_token.len);

    rc = ngx_http_tiktok_token_answer(r->pool, r->connection->log, tmcf,
                                      root, &tk->access_token,
                                      &tk->refresh_token, params);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_tiktok_query(r, ngx_http_tiktok_token_store_sql, 8,
                                 params, ngx_http_tiktok_token_stored);
}


/*
 * TikTok's refresh answer as the parameters of the store statement:
 * params[0] (user) and params[1] (lease owner) are the caller's, 2..7 are
 * filled here.  The new tokens land in access and refresh, zeroed when the
 * pool goes (so both must live as long as the pool: never the stack).
 * NGX_DECLINED: the answer lacks a documented field.
 */

ngx_int_t
ngx_http_tiktok_token_answer(ngx_pool_t *pool, ngx_log_t *log,
    ngx_http_tiktok_main_conf_t *tmcf, json_t *root, ngx_str_t *access,
    ngx_str_t *refresh, ngx_str_t *params)
{
    u_char  key_id[2 * NGX_HTTP_TIKTOK_KEY_ID_LEN];

    if (ngx_http_tiktok_json_get_str(pool, root, "access_token", access)
        != NGX_OK
        || ngx_http_tiktok_forget(pool, access) != NGX_OK
        || ngx_http_tiktok_json_get_str(pool, root, "refresh_token", refresh)
           != NGX_OK
        || ngx_http_tiktok_forget(pool, refresh) != NGX_OK
        || ngx_http_tiktok_json_get_int(pool, root, "expires_in", &params[4])
           != NGX_OK
        || ngx_http_tiktok_json_get_int(pool, root, "refresh_expires_in",
                                        &params[5]) != NGX_OK
        || ngx_http_tiktok_json_get_str(pool, root, "scope", &params[6])
           == NGX_ERROR)
    {
        return NGX_DECLINED;
    }

    if (params[6].data == NULL) {
        ngx_str_set(&params[6], "");
    }

    if (ngx_http_tiktok_seal_hex(pool, log, &tmcf->keyring, &params[0],
                                 "access_token", access, &params[2])
        != NGX_OK
        || ngx_http_tiktok_seal_hex(pool, log, &tmcf->keyring, &params[0],
                                    "refresh_token", refresh, &params[3])
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    params[7].len = ngx_http_tiktok_hex(key_id, tmcf->keyring.current.id,
                                        NGX_HTTP_TIKTOK_KEY_ID_LEN) - key_id;
    params[7].data = ngx_pnalloc(pool, params[7].len);
    if (params[7].data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(params[7].data, key_id, params[7].len);

    return NGX_OK;
}


/* who holds a refresh lease: random, never a client-chosen id */

ngx_int_t
ngx_http_tiktok_token_owner(ngx_pool_t *pool, ngx_str_t *owner)
{
    u_char  rnd[16];

    owner->data = ngx_pnalloc(pool, 2 * sizeof(rnd));
    if (owner->data == NULL
        || ngx_http_tiktok_random(rnd, sizeof(rnd)) != NGX_OK)
    {
        return NGX_ERROR;
    }

    owner->len = ngx_http_tiktok_hex(owner->data, rnd, sizeof(rnd))
                 - owner->data;

    return NGX_OK;
}


static void
ngx_http_tiktok_token_stored(ngx_http_tiktok_pg_query_t *q)
{
    ngx_http_request_t  *r;

    r = q->data;

    if (q->rc != NGX_OK || PQcmdTuples(q->res[0])[0] != '1') {
        /*
         * The new tokens could not be stored (or the lease was lost): the
         * old refresh token no longer works, so this account must be
         * reconnected.  Say so rather than pretend.
         */
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "tiktok: refreshed tokens could not be stored");
        ngx_http_tiktok_token_done(r, NGX_HTTP_TIKTOK_TOKEN_UNAVAILABLE);
        return;
    }

    ngx_http_tiktok_token_done(r, NGX_HTTP_TIKTOK_TOKEN_OK);
}


static ngx_int_t
ngx_http_tiktok_token_release(ngx_http_request_t *r, ngx_uint_t reconnect)
{
    ngx_str_t                     params[3];
    ngx_http_tiktok_ctx_t        *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    params[0] = ctx->user_id;
    params[1] = ctx->token->owner;

    if (reconnect) {
        ngx_str_set(&params[2], "true");

    } else {
        ngx_str_set(&params[2], "false");
    }

    return ngx_http_tiktok_query(r, ngx_http_tiktok_token_release_sql, 3,
                                 params, ngx_http_tiktok_token_released);
}


/* the lease is gone (or the account marked): record why, then answer */

static void
ngx_http_tiktok_token_released(ngx_http_tiktok_pg_query_t *q)
{
    ngx_http_request_t       *r;
    ngx_http_tiktok_ctx_t    *ctx;
    ngx_http_tiktok_token_t  *tk;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    tk = ctx->token;

    if (tk->err.endpoint == NULL) {
        ngx_http_tiktok_token_done(r, tk->status);
        return;
    }

    if (tk->err.message == NULL) {
        tk->err.message = "the token refresh failed";
    }

    if (ngx_http_tiktok_record_error(r, &tk->err, NGX_LOG_ERR,
                                     ngx_http_tiktok_token_recorded)
        != NGX_OK)
    {
        ngx_http_tiktok_token_done(r, tk->status);
    }
}


static void
ngx_http_tiktok_token_recorded(ngx_http_request_t *r)
{
    ngx_http_tiktok_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    ngx_http_tiktok_token_done(r, ctx->token->status);
}


/* someone else refreshes: look again shortly, for a bounded time */

static void
ngx_http_tiktok_token_wait(ngx_http_request_t *r)
{
    ngx_http_tiktok_ctx_t    *ctx;
    ngx_http_tiktok_token_t  *tk;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    tk = ctx->token;

    if ((ngx_msec_int_t) (ngx_current_msec - tk->deadline) >= 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "tiktok: gave up waiting for another request's token "
                      "refresh, request id \"%V\"", &ctx->request_id);
        ngx_http_tiktok_token_done(r, NGX_HTTP_TIKTOK_TOKEN_UNAVAILABLE);
        return;
    }

    ngx_add_timer(&tk->wait, NGX_HTTP_TIKTOK_TOKEN_POLL);
}


static void
ngx_http_tiktok_token_wait_handler(ngx_event_t *ev)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ev->data;
    c = r->connection;

    if (ngx_http_tiktok_token_load(r) != NGX_OK) {
        ngx_http_tiktok_token_done(r, NGX_HTTP_TIKTOK_TOKEN_ERROR);
    }

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_tiktok_token_cleanup(void *data)
{
    ngx_http_tiktok_token_t  *tk = data;

    if (tk->wait.timer_set) {
        ngx_del_timer(&tk->wait);
    }

    if (tk->access_token.data) {
        ngx_http_tiktok_cleanse(tk->access_token.data, tk->access_token.len);
    }

    if (tk->refresh_token.data) {
        ngx_http_tiktok_cleanse(tk->refresh_token.data,
                                tk->refresh_token.len);
    }
}


static void
ngx_http_tiktok_token_done(ngx_http_request_t *r, ngx_uint_t status)
{
    ngx_http_tiktok_ctx_t    *ctx;
    ngx_http_tiktok_token_t  *tk;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    tk = ctx->token;

    tk->status = status;

    tk->next(r);
}


/*
 * TikTok answered access_token_invalid for the token ngx_http_tiktok_token
 * gave: expire it and get a token again (which refreshes).  The caller
 * retries its call once with the new token, never more.
 */

static void ngx_http_tiktok_token_invalidated(ngx_http_tiktok_pg_query_t *q);


ngx_int_t
ngx_http_tiktok_token_invalidate(ngx_http_request_t *r)
{
    ngx_str_t                     params[2];
    ngx_http_tiktok_ctx_t        *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    params[0] = ctx->user_id;
    params[1] = ctx->token->expires_at;

    return ngx_http_tiktok_query(r, ngx_http_tiktok_token_invalidate_sql, 2,
                                 params, ngx_http_tiktok_token_invalidated);
}


static void
ngx_http_tiktok_token_invalidated(ngx_http_tiktok_pg_query_t *q)
{
    ngx_http_request_t       *r;
    ngx_http_tiktok_ctx_t    *ctx;
    ngx_http_tiktok_next_pt   next;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    next = ctx->token->next;

    if (q->rc != NGX_OK) {
        ngx_http_tiktok_token_done(r, NGX_HTTP_TIKTOK_TOKEN_UNAVAILABLE);
        return;
    }

    if (ngx_http_tiktok_token(r, next) != NGX_OK) {
        ngx_http_tiktok_token_done(r, NGX_HTTP_TIKTOK_TOKEN_ERROR);
    }
}


/* the answer for a caller whose token could not be had */

ngx_int_t
ngx_http_tiktok_token_error(ngx_http_request_t *r)
{
    ngx_http_tiktok_ctx_t    *ctx;
    ngx_http_tiktok_token_t  *tk;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    tk = ctx->token;

    switch (tk->status) {

    case NGX_HTTP_TIKTOK_TOKEN_NOT_CONNECTED:
        return ngx_http_tiktok_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                          "not_connected", NULL,
                                          "TikTok not connected");

    case NGX_HTTP_TIKTOK_TOKEN_RECONNECT:
        return ngx_http_tiktok_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                          "reconnect_required", NULL,
                                          "Connection failed. "
                                          "Try reconnecting.");

    case NGX_HTTP_TIKTOK_TOKEN_UNAVAILABLE:
        return ngx_http_tiktok_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          "database_unavailable", NULL,
                                          "Service temporarily unavailable");

    case NGX_HTTP_TIKTOK_TOKEN_TIKTOK_DOWN:
        return ngx_http_tiktok_send_error(r, tk->http_status,
                                          "tiktok_unavailable", NULL,
                                          "TikTok is not answering. "
                                          "Try again shortly.");

    default:
        return ngx_http_tiktok_send_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                          "internal_error", NULL,
                                          "Internal error");
    }
}


/* seal plain for user/column and hex-encode it for a bytea parameter */

ngx_int_t
ngx_http_tiktok_seal_hex(ngx_pool_t *pool, ngx_log_t *log,
    ngx_http_tiktok_keyring_t *keyring, ngx_str_t *user, const char *column,
    ngx_str_t *plain, ngx_str_t *hex)
{
    u_char     *sealed;
    size_t      len;
    ngx_str_t   col;

    col.data = (u_char *) column;
    col.len = ngx_strlen(column);

    len = plain->len + NGX_HTTP_TIKTOK_SEAL_OVERHEAD;

    sealed = ngx_pnalloc(pool, len);
    hex->data = ngx_pnalloc(pool, 2 * len);
    if (sealed == NULL || hex->data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_tiktok_seal(keyring, user, &col, plain, sealed) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "tiktok: cannot encrypt %s", column);
        return NGX_ERROR;
    }

    hex->len = ngx_http_tiktok_hex(hex->data, sealed, len) - hex->data;

    return NGX_OK;
}


/*
 * The hex of a sealed column back to plain text, which is zeroed when the
 * pool goes.  NGX_DECLINED: it does not decrypt for this user/column with
 * either key.
 */

ngx_int_t
ngx_http_tiktok_unseal_hex(ngx_pool_t *pool, ngx_log_t *log,
    ngx_http_tiktok_keyring_t *keyring, ngx_str_t *user, const char *column,
    ngx_str_t *hex, ngx_str_t *plain, ngx_uint_t *used_previous)
{
    u_char     *sealed;
    size_t      len;
    ngx_int_t   rc;
    ngx_str_t   col, in;

    len = hex->len / 2;

    if (len < NGX_HTTP_TIKTOK_SEAL_OVERHEAD) {
        return NGX_DECLINED;
    }

    sealed = ngx_pnalloc(pool, len);
    plain->data = ngx_pnalloc(pool, len - NGX_HTTP_TIKTOK_SEAL_OVERHEAD + 1);
    if (sealed == NULL || plain->data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_tiktok_unhex(sealed, hex->data, hex->len) != NGX_OK) {
        return NGX_DECLINED;
    }

    col.data = (u_char *) column;
    col.len = ngx_strlen(column);
    in.data = sealed;
    in.len = len;

    rc = ngx_http_tiktok_open(keyring, user, &col, &in, plain->data,
                              &plain->len, used_previous);

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "tiktok: stored %s does not decrypt with the "
                      "configured keys", column);
        ngx_str_null(plain);
        return NGX_DECLINED;
    }

    if (ngx_http_tiktok_forget(pool, plain) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* whether the user granted scope (TikTok's "a,b,c" as stored) */

ngx_uint_t
ngx_http_tiktok_token_has_scope(ngx_http_request_t *r, const char *scope)
{
    u_char                 *p, *last, *end;
    size_t                  len;
    ngx_http_tiktok_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    len = ngx_strlen(scope);
    p = ctx->token->scopes.data;
    last = p + ctx->token->scopes.len;

    while (p && p < last) {
        end = ngx_strlchr(p, last, ',');
        if (end == NULL) {
            end = last;
        }

        if ((size_t) (end - p) == len && ngx_strncmp(p, scope, len) == 0) {
            return 1;
        }

        p = end + 1;
    }

    return 0;
}
