
/*
 * The refresh lease (see ngx_http_tiktok_lease.h): load the account row,
 * claim the lease, refresh through libcurl, store the new tokens or
 * release the lease, decided once for requests and the publisher.
 *
 * The refresh call goes through libcurl, not a subrequest: its timeout is
 * ours whatever the internal location's proxy timeouts, and nothing ties
 * it to a client's connection.  A refresh TikTok may have performed
 * (rotating the refresh token) is waited for and stored even when the
 * client has gone: the caller keeps the pool alive until done() runs.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_tiktok_lease.h"
#include "ngx_http_tiktok_metrics.h"


static void ngx_http_tiktok_lease_loaded(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_lease_claimed(ngx_http_tiktok_pg_query_t *q);
static ngx_int_t ngx_http_tiktok_lease_refresh(
    ngx_http_tiktok_lease_t *lease);
static void ngx_http_tiktok_lease_refreshed(ngx_http_tiktok_curl_req_t *req);
static ngx_int_t ngx_http_tiktok_lease_store(ngx_http_tiktok_lease_t *lease,
    json_t *root);
static void ngx_http_tiktok_lease_stored(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_lease_release(ngx_http_tiktok_lease_t *lease,
    ngx_uint_t status, const char *why);
static void ngx_http_tiktok_lease_released(ngx_http_tiktok_pg_query_t *q);
static ngx_int_t ngx_http_tiktok_lease_run(ngx_http_tiktok_lease_t *lease,
    const char *sql, ngx_uint_t n, ngx_str_t *params,
    ngx_http_tiktok_pg_handler_pt handler);
static void ngx_http_tiktok_lease_done(ngx_http_tiktok_lease_t *lease,
    ngx_uint_t status, const char *why);


/* $1 user: sealed access token, fresh for 5 minutes, refresh token alive */
static const char  ngx_http_tiktok_lease_load_sql[] =
    "SELECT encode(access_token_enc, 'hex'),"
    " access_expires_at > now() + interval '5 minutes',"
    " refresh_expires_at > now(), needs_reconnect,"
    " array_to_string(scopes, ','), access_expires_at::text"
    " FROM tiktok.accounts WHERE user_id = $1";

/* $1 user, $2 owner: the sealed refresh token when the lease is ours */
static const char  ngx_http_tiktok_lease_claim_sql[] =
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
static const char  ngx_http_tiktok_lease_store_sql[] =
    "UPDATE tiktok.accounts SET access_token_enc = decode($3, 'hex'),"
    " refresh_token_enc = decode($4, 'hex'),"
    " access_expires_at = now() + make_interval(secs => $5::bigint),"
    " refresh_expires_at = now() + make_interval(secs => $6::bigint),"
    " scopes = coalesce(string_to_array(nullif($7, ''), ','), scopes),"
    " key_id = decode($8, 'hex'), refresh_lock_until = NULL,"
    " refresh_lock_owner = NULL, updated_at = now()"
    " WHERE user_id = $1 AND refresh_lock_owner = $2";

/* $3: mark needs_reconnect */
static const char  ngx_http_tiktok_lease_release_sql[] =
    "UPDATE tiktok.accounts SET refresh_lock_until = NULL,"
    " refresh_lock_owner = NULL,"
    " needs_reconnect = needs_reconnect OR $3::boolean, updated_at = now()"
    " WHERE user_id = $1 AND refresh_lock_owner = $2";

static const char  ngx_http_tiktok_lease_reconnect_sql[] =
    "UPDATE tiktok.accounts SET needs_reconnect = true, updated_at = now()"
    " WHERE user_id = $1";

/*
 * TikTok said the token is invalid: expire it, unless someone refreshed
 * it meanwhile (the expiry we read no longer matches), so the next look
 * refreshes it under the usual lease.
 */
static const char  ngx_http_tiktok_lease_invalidate_sql[] =
    "UPDATE tiktok.accounts SET access_expires_at = now()"
    " WHERE user_id = $1 AND access_expires_at = $2::timestamptz";


ngx_int_t
ngx_http_tiktok_lease_start(ngx_http_tiktok_lease_t *lease)
{
    u_char  rnd[16];

    if (lease->owner.len == 0) {
        /* who holds a refresh lease: random, never a client-chosen id */

        lease->owner.data = ngx_pnalloc(lease->pool, 2 * sizeof(rnd));
        if (lease->owner.data == NULL
            || ngx_http_tiktok_random(rnd, sizeof(rnd)) != NGX_OK)
        {
            return NGX_ERROR;
        }

        lease->owner.len = ngx_http_tiktok_hex(lease->owner.data, rnd,
                                               sizeof(rnd))
                           - lease->owner.data;
    }

    lease->deadline = ngx_current_msec + NGX_HTTP_TIKTOK_REFRESH_WAIT;
    lease->why = NULL;
    lease->refreshed = 0;
    ngx_memzero(&lease->err, sizeof(ngx_http_tiktok_api_error_t));

    return ngx_http_tiktok_lease_run(lease, ngx_http_tiktok_lease_load_sql, 1,
                                     &lease->user,
                                     ngx_http_tiktok_lease_loaded);
}


void
ngx_http_tiktok_lease_load(ngx_http_tiktok_lease_t *lease)
{
    if (ngx_http_tiktok_lease_run(lease, ngx_http_tiktok_lease_load_sql, 1,
                                  &lease->user, ngx_http_tiktok_lease_loaded)
        != NGX_OK)
    {
        ngx_http_tiktok_lease_done(lease, NGX_HTTP_TIKTOK_TOKEN_ERROR, NULL);
    }
}


static void
ngx_http_tiktok_lease_loaded(ngx_http_tiktok_pg_query_t *q)
{
    ngx_int_t                 rc;
    ngx_str_t                 params[2];
    PGresult                 *res;
    ngx_http_tiktok_lease_t  *lease;

    lease = q->data;

    if (q->rc != NGX_OK) {
        ngx_http_tiktok_lease_done(lease, NGX_HTTP_TIKTOK_TOKEN_UNAVAILABLE,
                                   "database unavailable");
        return;
    }

    res = q->res[q->nstmts - 1];    /* after an invalidation's UPDATE */

    if (PQntuples(res) != 1) {
        ngx_http_tiktok_lease_done(lease, NGX_HTTP_TIKTOK_TOKEN_NOT_CONNECTED,
                                   NULL);
        return;
    }

    if (PQgetvalue(res, 0, 3)[0] == 't') {
        ngx_http_tiktok_lease_done(lease, NGX_HTTP_TIKTOK_TOKEN_RECONNECT,
                                   NULL);
        return;
    }

    if (ngx_http_tiktok_pg_copy(lease->pool, res, 0, 4, &lease->scopes)
        != NGX_OK
        || ngx_http_tiktok_pg_copy(lease->pool, res, 0, 5, &lease->expires_at)
           != NGX_OK)
    {
        ngx_http_tiktok_lease_done(lease, NGX_HTTP_TIKTOK_TOKEN_ERROR,
                                   "no memory");
        return;
    }

    if (PQgetvalue(res, 0, 1)[0] == 't') {
        /* fresh for five more minutes at least */

        rc = ngx_http_tiktok_unseal_hex(lease->pool, lease->log,
                                        &lease->tmcf->keyring, &lease->user,
                                        "access_token", res, 0,
                                        &lease->access_token);

        if (rc == NGX_OK) {
            ngx_http_tiktok_lease_done(lease, NGX_HTTP_TIKTOK_TOKEN_OK, NULL);

        } else if (rc == NGX_DECLINED) {
            ngx_http_tiktok_lease_done(lease,
                                       NGX_HTTP_TIKTOK_TOKEN_RECONNECT, NULL);

        } else {
            ngx_http_tiktok_lease_done(lease, NGX_HTTP_TIKTOK_TOKEN_ERROR,
                                       "no memory");
        }

        return;
    }

    if (PQgetvalue(res, 0, 2)[0] != 't') {
        /* an expired refresh token is never sent: the user must reconnect */

        lease->status = NGX_HTTP_TIKTOK_TOKEN_RECONNECT;
        lease->why = "the refresh token expired";

        if (ngx_http_tiktok_lease_run(lease,
                                      ngx_http_tiktok_lease_reconnect_sql, 1,
                                      &lease->user,
                                      ngx_http_tiktok_lease_released)
            != NGX_OK)
        {
            ngx_http_tiktok_lease_done(lease, NGX_HTTP_TIKTOK_TOKEN_ERROR,
                                       NULL);
        }

        return;
    }

    params[0] = lease->user;
    params[1] = lease->owner;

    if (ngx_http_tiktok_lease_run(lease, ngx_http_tiktok_lease_claim_sql, 2,
                                  params, ngx_http_tiktok_lease_claimed)
        != NGX_OK)
    {
        ngx_http_tiktok_lease_done(lease, NGX_HTTP_TIKTOK_TOKEN_ERROR, NULL);
    }
}


static void
ngx_http_tiktok_lease_claimed(ngx_http_tiktok_pg_query_t *q)
{
    ngx_int_t                 rc;
    ngx_http_tiktok_lease_t  *lease;

    lease = q->data;

    if (q->rc != NGX_OK) {
        ngx_http_tiktok_lease_done(lease, NGX_HTTP_TIKTOK_TOKEN_UNAVAILABLE,
                                   "database unavailable");
        return;
    }

    if (PQntuples(q->res[0]) != 1) {
        /* another caller holds the lease, or just refreshed: look again */

        if ((ngx_msec_int_t) (ngx_current_msec - lease->deadline) >= 0) {
            ngx_log_error(NGX_LOG_ERR, lease->log, 0,
                          "tiktok: gave up waiting for another request's "
                          "token refresh, request id \"%V\"",
                          &lease->request_id);
            ngx_http_tiktok_lease_done(lease,
                                       NGX_HTTP_TIKTOK_TOKEN_UNAVAILABLE,
                                       "another refresh of the token takes "
                                       "too long");
            return;
        }

        ngx_add_timer(lease->timer, lease->poll);
        return;
    }

    rc = ngx_http_tiktok_unseal_hex(lease->pool, lease->log,
                                    &lease->tmcf->keyring, &lease->user,
                                    "refresh_token", q->res[0], 0,
                                    &lease->refresh_token);

    if (rc == NGX_DECLINED) {
        /* a token we cannot read is as good as none */
        ngx_http_tiktok_lease_release(lease, NGX_HTTP_TIKTOK_TOKEN_RECONNECT,
                                      "the refresh token does not decrypt");
        return;
    }

    if (rc != NGX_OK || ngx_http_tiktok_lease_refresh(lease) != NGX_OK) {
        /* nothing was sent: give the lease back at once */
        ngx_http_tiktok_lease_release(lease, NGX_HTTP_TIKTOK_TOKEN_ERROR,
                                      "the token refresh could not start");
    }
}


/* POST /v2/oauth/token/ with the refresh token, through libcurl */

static ngx_int_t
ngx_http_tiktok_lease_refresh(ngx_http_tiktok_lease_t *lease)
{
    u_char                       *url;
    ngx_keyval_t                  fields[2];
    ngx_http_tiktok_curl_req_t   *req;
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = lease->tmcf;

    /* in the caller's pool: its cleanup cancels the call */
    req = ngx_http_tiktok_curl_req_create(lease->pool, lease->log);
    url = ngx_pnalloc(lease->pool, tmcf->api_base_url.len
                                   + sizeof("/v2/oauth/token/"));
    if (req == NULL || url == NULL) {
        return NGX_ERROR;
    }

    req->url.data = url;
    req->url.len = ngx_sprintf(url, "%V/v2/oauth/token/%Z",
                               &tmcf->api_base_url) - url - 1;

    ngx_str_set(&fields[0].key, "grant_type");
    ngx_str_set(&fields[0].value, "refresh_token");
    ngx_str_set(&fields[1].key, "refresh_token");
    fields[1].value = lease->refresh_token;

    /* the form is zeroed with the pool */
    if (ngx_http_tiktok_oauth_form(lease->pool, tmcf, fields, 2, &req->body)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    req->method = "POST";
    ngx_str_set(&req->content_type, "application/x-www-form-urlencoded");
    req->timeout = NGX_HTTP_TIKTOK_REFRESH_TIMEOUT;
    req->request_id = lease->request_id;
    req->handler = ngx_http_tiktok_lease_refreshed;
    req->data = lease;

    /* never resent on a reused connection: it could spend the new token */
    req->fresh = 1;

    return ngx_http_tiktok_curl_start(tmcf->curl, req);
}


static void
ngx_http_tiktok_lease_refreshed(ngx_http_tiktok_curl_req_t *req)
{
    json_t                   *root;
    ngx_int_t                 rc;
    ngx_http_tiktok_lease_t  *lease;

    lease = req->data;

    if (req->aborted) {
        /* the worker is exiting: the lease runs out by itself */
        lease->http_status = NGX_HTTP_BAD_GATEWAY;
        ngx_http_tiktok_lease_done(lease, NGX_HTTP_TIKTOK_TOKEN_TIKTOK_DOWN,
                                   NULL);
        return;
    }

    lease->err.endpoint = "/v2/oauth/token/";

    ngx_http_tiktok_metrics_curl("/v2/oauth/token/", req);

    if (req->rc != NGX_OK) {
        lease->err.status = 0;
        lease->err.message = req->timed_out ? "TikTok did not answer in time"
                                            : "TikTok could not be reached";
        rc = NGX_ERROR;

    } else {
        rc = ngx_http_tiktok_oauth_answer(lease->pool, lease->log,
                                          req->status, &req->response, &root,
                                          &lease->err);
    }

    if (rc == NGX_OK) {
        rc = ngx_http_tiktok_lease_store(lease, root);
        if (rc == NGX_OK) {
            ngx_http_tiktok_metrics_count(NGX_HTTP_TIKTOK_METRICS_REFRESH_OK);
            return;
        }

        lease->err.message = "refresh answer without the documented fields";
    }

    if (ngx_http_tiktok_api_classify(rc, req->status, &lease->err.code)
        == NGX_HTTP_TIKTOK_API_GRANT_GONE)
    {
        /* TikTok refused the refresh token: the user must reconnect */
        ngx_http_tiktok_metrics_count(NGX_HTTP_TIKTOK_METRICS_REFRESH_REJECTED);
        ngx_http_tiktok_lease_release(lease, NGX_HTTP_TIKTOK_TOKEN_RECONNECT,
                                      "the token refresh failed");
        return;
    }

    /* a server error or a limit is no verdict on the token */
    ngx_http_tiktok_metrics_count(NGX_HTTP_TIKTOK_METRICS_REFRESH_FAILED);
    lease->http_status = req->timed_out ? NGX_HTTP_GATEWAY_TIME_OUT
                                        : NGX_HTTP_BAD_GATEWAY;
    ngx_http_tiktok_lease_release(lease, NGX_HTTP_TIKTOK_TOKEN_TIKTOK_DOWN,
                                  "the token refresh failed");
}


/*
 * TikTok's refresh answer stored: the new tokens (zeroed when the pool
 * goes) sealed, with their lifetimes.  NGX_DECLINED: the answer lacks a
 * documented field.
 */

static ngx_int_t
ngx_http_tiktok_lease_store(ngx_http_tiktok_lease_t *lease, json_t *root)
{
    ngx_str_t                     params[8], *access, *refresh;
    const char                   *why;
    ngx_pool_t                   *pool;
    ngx_http_tiktok_api_token_t  *token;
    ngx_http_tiktok_main_conf_t  *tmcf;

    pool = lease->pool;
    tmcf = lease->tmcf;
    access = &lease->access_token;
    refresh = &lease->refresh_token;

    params[0] = lease->user;
    params[1] = lease->owner;

    /* the old refresh token is spent whatever TikTok answered */
    ngx_http_tiktok_cleanse(refresh->data, refresh->len);

    /* in the pool: the new tokens are zeroed through it when the pool goes */
    token = ngx_palloc(pool, sizeof(ngx_http_tiktok_api_token_t));

    /* the code exchange's reader too; the stored account needs no open_id */

    if (token == NULL
        || ngx_http_tiktok_api_token_read(pool, root, token, &why) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    *access = token->access_token;
    *refresh = token->refresh_token;
    params[4] = token->expires_in;
    params[5] = token->refresh_expires_in;
    params[6] = token->scope;

    if (params[6].data == NULL) {
        ngx_str_set(&params[6], "");
    }

    if (ngx_http_tiktok_seal_hex(pool, lease->log, &tmcf->keyring,
                                 &params[0], "access_token", access,
                                 &params[2])
        != NGX_OK
        || ngx_http_tiktok_seal_hex(pool, lease->log, &tmcf->keyring,
                                    &params[0], "refresh_token", refresh,
                                    &params[3])
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* a sealed token begins with its key's id (crypto.h) */
    params[7].data = params[2].data;
    params[7].len = 2 * NGX_HTTP_TIKTOK_KEY_ID_LEN;

    return ngx_http_tiktok_lease_run(lease, ngx_http_tiktok_lease_store_sql,
                                     8, params, ngx_http_tiktok_lease_stored);
}


static void
ngx_http_tiktok_lease_stored(ngx_http_tiktok_pg_query_t *q)
{
    ngx_http_tiktok_lease_t  *lease;

    lease = q->data;

    /* the call itself went well: nothing to record */
    ngx_memzero(&lease->err, sizeof(ngx_http_tiktok_api_error_t));

    if (q->rc != NGX_OK || PQcmdTuples(q->res[0])[0] != '1') {
        /*
         * The new tokens could not be stored (or the lease was lost): the
         * old refresh token no longer works, so this account must be
         * reconnected.  Say so rather than pretend.
         */
        ngx_log_error(NGX_LOG_ERR, lease->log, 0,
                      "tiktok: refreshed tokens could not be stored, "
                      "request id \"%V\"", &lease->request_id);
        ngx_http_tiktok_lease_done(lease, NGX_HTTP_TIKTOK_TOKEN_UNAVAILABLE,
                                   "the refreshed token could not be stored");
        return;
    }

    lease->refreshed = 1;

    ngx_http_tiktok_lease_done(lease, NGX_HTTP_TIKTOK_TOKEN_OK, NULL);
}


/* gives the lease back, marking the account when the grant is gone */

static void
ngx_http_tiktok_lease_release(ngx_http_tiktok_lease_t *lease,
    ngx_uint_t status, const char *why)
{
    ngx_str_t  params[3];

    params[0] = lease->user;
    params[1] = lease->owner;
    params[2].data = (u_char *) (status == NGX_HTTP_TIKTOK_TOKEN_RECONNECT
                                 ? "true" : "false");
    params[2].len = ngx_strlen(params[2].data);

    lease->status = status;
    lease->why = why;

    if (lease->err.endpoint && lease->err.message == NULL) {
        lease->err.message = "the token refresh failed";
    }

    if (ngx_http_tiktok_lease_run(lease, ngx_http_tiktok_lease_release_sql,
                                  3, params, ngx_http_tiktok_lease_released)
        != NGX_OK)
    {
        ngx_http_tiktok_lease_done(lease, status, why);
    }
}


static void
ngx_http_tiktok_lease_released(ngx_http_tiktok_pg_query_t *q)
{
    ngx_http_tiktok_lease_t  *lease;

    lease = q->data;

    /* a lost row is logged by the pool; the lease runs out by itself */

    lease->done(lease);
}


ngx_int_t
ngx_http_tiktok_lease_invalidate(ngx_http_tiktok_lease_t *lease)
{
    /* the expiry goes in the same transaction as the next look */
    lease->invalid = 1;

    return ngx_http_tiktok_lease_start(lease);
}


/*
 * A transaction under the lease's user (row-level security), for the
 * lease's statements or a caller's own: the expiry of a token TikTok
 * refused goes first.
 */

ngx_http_tiktok_pg_query_t *
ngx_http_tiktok_lease_query(ngx_http_tiktok_lease_t *lease,
    ngx_http_tiktok_pg_handler_pt handler, void *data)
{
    ngx_str_t                    params[2];
    ngx_http_tiktok_pg_query_t  *q;

    q = ngx_http_tiktok_pg_query_create(lease->pool, lease->log,
                                        &lease->user, handler, data);
    if (q == NULL) {
        return NULL;
    }

    if (lease->invalid) {
        lease->invalid = 0;

        params[0] = lease->user;
        params[1] = lease->expires_at;

        if (params[1].len
            && ngx_http_tiktok_pg_add(q, ngx_http_tiktok_lease_invalidate_sql,
                                      2, params)
               != NGX_OK)
        {
            return NULL;
        }
    }

    return q;
}


static ngx_int_t
ngx_http_tiktok_lease_run(ngx_http_tiktok_lease_t *lease, const char *sql,
    ngx_uint_t n, ngx_str_t *params, ngx_http_tiktok_pg_handler_pt handler)
{
    ngx_http_tiktok_pg_query_t  *q;

    q = ngx_http_tiktok_lease_query(lease, handler, lease);

    if (q == NULL
        || ngx_http_tiktok_pg_add(q, sql, n, params) != NGX_OK
        || lease->tmcf->pg_pool == NULL
        || ngx_http_tiktok_pg_run(lease->tmcf->pg_pool, q) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_tiktok_lease_done(ngx_http_tiktok_lease_t *lease, ngx_uint_t status,
    const char *why)
{
    lease->status = status;
    lease->why = why;

    lease->done(lease);
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
 * The hex of a sealed column in a result's row 0 back to plain text, which
 * is zeroed when the pool goes.  NGX_DECLINED: it does not decrypt for this
 * user/column with either key.
 */

ngx_int_t
ngx_http_tiktok_unseal_hex(ngx_pool_t *pool, ngx_log_t *log,
    ngx_http_tiktok_keyring_t *keyring, ngx_str_t *user, const char *column,
    PGresult *res, int field, ngx_str_t *plain)
{
    u_char     *sealed;
    size_t      len;
    ngx_int_t   rc;
    ngx_str_t   col, in, hex;

    hex.data = (u_char *) PQgetvalue(res, 0, field);
    hex.len = PQgetlength(res, 0, field);
    len = hex.len / 2;

    if (len < NGX_HTTP_TIKTOK_SEAL_OVERHEAD) {
        return NGX_DECLINED;
    }

    sealed = ngx_pnalloc(pool, len);
    plain->data = ngx_pnalloc(pool, len - NGX_HTTP_TIKTOK_SEAL_OVERHEAD + 1);
    if (sealed == NULL || plain->data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_tiktok_unhex(sealed, hex.data, hex.len) != NGX_OK) {
        return NGX_DECLINED;
    }

    col.data = (u_char *) column;
    col.len = ngx_strlen(column);
    in.data = sealed;
    in.len = len;

    rc = ngx_http_tiktok_open(keyring, user, &col, &in, plain->data,
                              &plain->len, NULL);

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
