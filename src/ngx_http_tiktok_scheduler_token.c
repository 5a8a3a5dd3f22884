
/*
 * The publisher's access token for a post's user.  A scheduled post's user
 * may never send another request, so the publisher refreshes a token that
 * expires within five minutes itself, under the same lease on the account
 * row as requests use (ngx_http_tiktok_token.c): one refresh per user
 * across every worker and node, the rotated refresh token stored in the
 * same UPDATE.  Only the transport differs: libcurl, not a subrequest.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_scheduler.h"


#define NGX_HTTP_TIKTOK_JOB_TOKEN_POLL   1000   /* ms between looks */
#define NGX_HTTP_TIKTOK_JOB_TOKEN_WAITS  15     /* at another's lease */


static void ngx_http_tiktok_job_token_loaded(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_job_token_claim(ngx_http_tiktok_job_t *job);
static void ngx_http_tiktok_job_token_claimed(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_job_token_refreshed(
    ngx_http_tiktok_curl_req_t *req);
static void ngx_http_tiktok_job_token_stored(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_job_token_release(ngx_http_tiktok_job_t *job,
    ngx_uint_t reconnect);
static void ngx_http_tiktok_job_token_released(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_job_token_removed(ngx_http_tiktok_job_t *job);


/*
 * Gets job->token, then runs job->next(job); on any failure the job is
 * backed off or failed instead (auth_removed when the user must reconnect).
 */

void
ngx_http_tiktok_job_token(ngx_http_tiktok_job_t *job)
{
    if (ngx_http_tiktok_job_sql(job, ngx_http_tiktok_token_load_sql, 1,
                                &job->user, ngx_http_tiktok_job_token_loaded)
        != NGX_OK)
    {
        ngx_http_tiktok_job_done(job);
    }
}


static void
ngx_http_tiktok_job_token_loaded(ngx_http_tiktok_pg_query_t *q)
{
    ngx_int_t                     rc;
    ngx_str_t                     hex;
    PGresult                     *res;
    ngx_uint_t                    prev;
    ngx_http_tiktok_job_t        *job;
    ngx_http_tiktok_main_conf_t  *tmcf;

    job = q->data;
    tmcf = job->sched->tmcf;

    if (q->rc != NGX_OK) {
        ngx_http_tiktok_job_later(job, "database unavailable");
        return;
    }

    res = q->res[0];

    if (PQntuples(res) != 1 || PQgetvalue(res, 0, 3)[0] == 't') {
        ngx_http_tiktok_job_token_removed(job);
        return;
    }

    if (ngx_http_tiktok_pg_copy(job->pool, res, 6, &job->expires_at)
        != NGX_OK)
    {
        ngx_http_tiktok_job_later(job, "no memory");
        return;
    }

    if (PQgetvalue(res, 0, 1)[0] == 't') {
        /* fresh for five more minutes at least */

        hex.data = (u_char *) PQgetvalue(res, 0, 0);
        hex.len = PQgetlength(res, 0, 0);

        rc = ngx_http_tiktok_unseal_hex(job->pool, job->log, &tmcf->keyring,
                                        &job->user, "access_token", &hex,
                                        &job->token, &prev);

        if (rc == NGX_DECLINED) {
            ngx_http_tiktok_job_token_removed(job);
            return;
        }

        if (rc != NGX_OK) {
            ngx_http_tiktok_job_later(job, "no memory");
            return;
        }

        job->next(job);
        return;
    }

    if (PQgetvalue(res, 0, 2)[0] != 't') {
        /* an expired refresh token is never sent: the user must reconnect */

        if (ngx_http_tiktok_job_sql(job, ngx_http_tiktok_token_reconnect_sql,
                                    1, &job->user,
                                    ngx_http_tiktok_job_token_released)
            != NGX_OK)
        {
            ngx_http_tiktok_job_done(job);
            return;
        }

        job->err.message = "the refresh token expired";
        job->reconnect = 1;
        return;
    }

    ngx_http_tiktok_job_token_claim(job);
}


static void
ngx_http_tiktok_job_token_claim(ngx_http_tiktok_job_t *job)
{
    ngx_str_t  params[2];

    if (job->owner.len == 0
        && ngx_http_tiktok_token_owner(job->pool, &job->owner) != NGX_OK)
    {
        ngx_http_tiktok_job_later(job, "no memory");
        return;
    }

    params[0] = job->user;
    params[1] = job->owner;

    if (ngx_http_tiktok_job_sql(job, ngx_http_tiktok_token_claim_sql, 2,
                                params, ngx_http_tiktok_job_token_claimed)
        != NGX_OK)
    {
        ngx_http_tiktok_job_done(job);
    }
}


static void
ngx_http_tiktok_job_token_claimed(ngx_http_tiktok_pg_query_t *q)
{
    ngx_int_t                     rc;
    ngx_str_t                     hex, body;
    ngx_uint_t                    prev;
    ngx_keyval_t                  fields[2];
    ngx_http_tiktok_job_t        *job;
    ngx_http_tiktok_main_conf_t  *tmcf;
    ngx_http_tiktok_curl_req_t   *req;

    job = q->data;
    tmcf = job->sched->tmcf;

    if (q->rc != NGX_OK) {
        ngx_http_tiktok_job_later(job, "database unavailable");
        return;
    }

    if (PQntuples(q->res[0]) != 1) {
        /* a request or another worker refreshes it: look again shortly */

        if (++job->token_waits > NGX_HTTP_TIKTOK_JOB_TOKEN_WAITS) {
            ngx_http_tiktok_job_later(job, "another refresh of the token "
                                           "takes too long");
            return;
        }

        job->reload = 1;
        ngx_add_timer(&job->wait, NGX_HTTP_TIKTOK_JOB_TOKEN_POLL);
        return;
    }

    hex.data = (u_char *) PQgetvalue(q->res[0], 0, 0);
    hex.len = PQgetlength(q->res[0], 0, 0);

    rc = ngx_http_tiktok_unseal_hex(job->pool, job->log, &tmcf->keyring,
                                    &job->user, "refresh_token", &hex,
                                    &job->refresh, &prev);

    if (rc == NGX_DECLINED) {
        /* a token we cannot read is as good as none */
        job->err.message = "the refresh token does not decrypt";
        ngx_http_tiktok_job_token_release(job, 1);
        return;
    }

    if (rc != NGX_OK) {
        job->err.message = "no memory";
        ngx_http_tiktok_job_token_release(job, 0);
        return;
    }

    ngx_str_set(&body, "");

    req = ngx_http_tiktok_job_request(job, "/v2/oauth/token/", &body,
                                      ngx_http_tiktok_job_token_refreshed);
    if (req == NULL) {
        return;
    }

    ngx_str_set(&fields[0].key, "grant_type");
    ngx_str_set(&fields[0].value, "refresh_token");
    ngx_str_set(&fields[1].key, "refresh_token");
    fields[1].value = job->refresh;

    /* the form is zeroed with the pool: it lives in req, not here */
    if (ngx_http_tiktok_oauth_form(job->pool, tmcf, fields, 2, &req->body)
        != NGX_OK)
    {
        job->err.message = "no memory";
        ngx_http_tiktok_job_token_release(job, 0);
        return;
    }

    ngx_str_null(&req->bearer);
    ngx_str_set(&req->content_type, "application/x-www-form-urlencoded");

    /*
     * Refresh tokens rotate: a refresh sent again on a reused connection
     * could spend the new one, so never let libcurl resend it.
     */
    req->fresh = 1;

    /* shorter than the lease: nobody refreshes while this one may succeed */
    req->timeout = NGX_HTTP_TIKTOK_REFRESH_TIMEOUT;

    if (ngx_http_tiktok_curl_start(tmcf->curl, req) != NGX_OK) {
        job->err.message = "the publisher is stopping";
        ngx_http_tiktok_job_token_release(job, 0);
    }
}


static void
ngx_http_tiktok_job_token_refreshed(ngx_http_tiktok_curl_req_t *req)
{
    json_t                 *root;
    ngx_int_t               rc;
    ngx_str_t               params[8];
    ngx_http_tiktok_job_t  *job;

    job = req->data;

    if (req->aborted) {
        /* the worker is exiting: the lease runs out by itself */
        ngx_http_tiktok_job_done(job);
        return;
    }

    job->err.endpoint = "/v2/oauth/token/";

    if (req->rc != NGX_OK) {
        job->err.message = "TikTok could not be reached";
        ngx_http_tiktok_job_token_release(job, 0);
        return;
    }

    rc = ngx_http_tiktok_oauth_answer(job->pool, job->log, req->status,
                                      &req->response, &root, &job->err);

    if (rc == NGX_OK) {
        /* the old refresh token is spent whatever happens now */
        ngx_http_tiktok_cleanse(job->refresh.data, job->refresh.len);

        params[0] = job->user;
        params[1] = job->owner;

        rc = ngx_http_tiktok_token_answer(job->pool, job->log,
                                          job->sched->tmcf, root, &job->token,
                                          &job->refresh, params);
        if (rc == NGX_OK) {
            if (ngx_http_tiktok_job_sql(job, ngx_http_tiktok_token_store_sql,
                                        8, params,
                                        ngx_http_tiktok_job_token_stored)
                != NGX_OK)
            {
                ngx_http_tiktok_job_done(job);
            }

            return;
        }

        job->err.message = "refresh answer without the documented fields";
    }

    if (rc == NGX_DECLINED && ngx_http_tiktok_token_rejected(&job->err.code))
    {
        /* TikTok refused the refresh token: the user must reconnect */
        ngx_http_tiktok_job_token_release(job, 1);
        return;
    }

    /* a server error or a limit is no verdict on the token */
    ngx_http_tiktok_job_token_release(job, 0);
}


static void
ngx_http_tiktok_job_token_stored(ngx_http_tiktok_pg_query_t *q)
{
    ngx_http_tiktok_job_t  *job;

    job = q->data;

    if (q->rc != NGX_OK || PQcmdTuples(q->res[0])[0] != '1') {
        ngx_log_error(NGX_LOG_ERR, job->log, 0,
                      "tiktok: post %V: refreshed tokens could not be stored",
                      &job->id);
        ngx_http_tiktok_job_later(job, "the refreshed token could not be "
                                       "stored");
        return;
    }

    ngx_log_error(NGX_LOG_INFO, job->log, 0,
                  "tiktok: post %V: refreshed the access token", &job->id);

    job->next(job);
}


static void
ngx_http_tiktok_job_token_release(ngx_http_tiktok_job_t *job,
    ngx_uint_t reconnect)
{
    ngx_str_t  params[3];

    params[0] = job->user;
    params[1] = job->owner;

    if (reconnect) {
        ngx_str_set(&params[2], "true");

    } else {
        ngx_str_set(&params[2], "false");
    }

    job->reconnect = reconnect;

    if (ngx_http_tiktok_job_sql(job, ngx_http_tiktok_token_release_sql, 3,
                                params, ngx_http_tiktok_job_token_released)
        != NGX_OK)
    {
        ngx_http_tiktok_job_done(job);
    }
}


/* the lease is gone (or the account marked): fail or back off the post */

static void
ngx_http_tiktok_job_token_released(ngx_http_tiktok_pg_query_t *q)
{
    ngx_http_tiktok_job_t  *job;

    job = q->data;

    if (job->reconnect) {
        ngx_http_tiktok_job_token_removed(job);
        return;
    }

    ngx_http_tiktok_job_later(job, "the token refresh failed");
}


static void
ngx_http_tiktok_job_token_removed(ngx_http_tiktok_job_t *job)
{
    ngx_str_t  reason;

    ngx_str_set(&reason, "auth_removed");
    ngx_http_tiktok_job_finish(job, "failed", &reason, NULL);
}
