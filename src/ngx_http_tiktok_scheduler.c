
/*
 * The publisher: every worker claims due posts (tiktok.claim_posts, FOR
 * UPDATE SKIP LOCKED with a lease) on a timer and when a post is queued
 * (NOTIFY tiktok_publish), and takes each through init, the chunked
 * upload and status polls with libcurl on the event loop.  Each state
 * change is one committed row update under the post's user, so a post
 * survives nginx stopping at any step: its lease runs out and it is
 * claimed again.  A post whose init may have reached TikTok without its
 * publish_id being stored is failed rather than initialised twice.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_module.h"


#define NGX_HTTP_TIKTOK_LEASE           "5 minutes"
#define NGX_HTTP_TIKTOK_POLL            3000
#define NGX_HTTP_TIKTOK_POLLS_MAX       600
#define NGX_HTTP_TIKTOK_CHUNK           10000000
#define NGX_HTTP_TIKTOK_ONE_CHUNK_MAX   64000000
#define NGX_HTTP_TIKTOK_CHUNK_TRIES     3


typedef struct {
    ngx_http_tiktok_main_conf_t  *tmcf;
    ngx_event_t                   timer;
    ngx_str_t                     worker;       /* host:pid, claimed_by */
    ngx_uint_t                    running;
    unsigned                      claiming:1;
} ngx_http_tiktok_sched_t;


typedef struct {
    ngx_pool_t                   *pool;
    ngx_log_t                    *log;
    ngx_http_tiktok_sched_t      *sched;

    ngx_str_t                     id;
    ngx_str_t                     user;
    ngx_str_t                     source;
    ngx_str_t                     video_url;
    ngx_str_t                     spool_path;
    off_t                         size;
    ngx_str_t                     content_type;
    ngx_str_t                     post_info;
    ngx_str_t                     publish_id;
    ngx_str_t                     upload_url;
    off_t                         uploaded;
    ngx_uint_t                    init_started;
    ngx_uint_t                    attempts;
    ngx_str_t                     username;

    ngx_str_t                     token;
    ngx_fd_t                      fd;
    off_t                         chunk;
    ngx_uint_t                    tries;
    ngx_uint_t                    polls;
    unsigned                      resync:1;     /* a poll for progress */

    ngx_event_t                   wait;
} ngx_http_tiktok_job_t;


static void ngx_http_tiktok_sched_tick(ngx_event_t *ev);
static void ngx_http_tiktok_sched_claimed(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_job_start(ngx_http_tiktok_sched_t *s,
    PGresult *res, int row);
static ngx_int_t ngx_http_tiktok_job_sql(ngx_http_tiktok_job_t *job,
    const char *sql, ngx_uint_t n, ngx_str_t *params,
    ngx_http_tiktok_pg_handler_pt handler);
static void ngx_http_tiktok_job_token(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_job_init(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_job_inited(ngx_http_tiktok_curl_req_t *req);
static void ngx_http_tiktok_job_stored(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_job_chunk(ngx_http_tiktok_job_t *job);
static void ngx_http_tiktok_job_chunked(ngx_http_tiktok_curl_req_t *req);
static void ngx_http_tiktok_job_progress(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_job_poll(ngx_http_tiktok_job_t *job);
static void ngx_http_tiktok_job_polled(ngx_http_tiktok_curl_req_t *req);
static void ngx_http_tiktok_job_wait_handler(ngx_event_t *ev);
static void ngx_http_tiktok_job_later(ngx_http_tiktok_job_t *job,
    const char *why);
static void ngx_http_tiktok_job_finish(ngx_http_tiktok_job_t *job,
    const char *status, ngx_str_t *reason, ngx_str_t *share_url);
static void ngx_http_tiktok_job_finished(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_job_done(ngx_http_tiktok_job_t *job);
static ngx_http_tiktok_curl_req_t *ngx_http_tiktok_job_request(
    ngx_http_tiktok_job_t *job, const char *path, ngx_str_t *body,
    ngx_http_tiktok_curl_done_pt handler);
static ngx_int_t ngx_http_tiktok_job_envelope(ngx_http_tiktok_job_t *job,
    ngx_http_tiktok_curl_req_t *req, json_t **data, ngx_str_t *code);
static ngx_uint_t ngx_http_tiktok_job_transient(ngx_http_tiktok_curl_req_t *req,
    ngx_str_t *code);


static const char  ngx_http_tiktok_claim_sql[] =
    "SELECT id, user_id, source, video_url, spool_path, video_size,"
    " content_type, post_info::text, publish_id, upload_url, uploaded_bytes,"
    " init_started, attempts, creator_username"
    " FROM tiktok.claim_posts($1, $2::integer, '" NGX_HTTP_TIKTOK_LEASE "')";

static const char  ngx_http_tiktok_job_token_sql[] =
    "SELECT encode(access_token_enc, 'hex'),"
    " access_expires_at > now() + interval '5 minutes', needs_reconnect"
    " FROM tiktok.accounts WHERE user_id = $1";

/* committed before the init call: it may reach TikTok from here on */
static const char  ngx_http_tiktok_job_init_sql[] =
    "UPDATE tiktok.posts SET init_started_at = now(), status = $2,"
    " claim_until = now() + interval '" NGX_HTTP_TIKTOK_LEASE "',"
    " updated_at = now() WHERE id = $1::uuid";

static const char  ngx_http_tiktok_job_inited_sql[] =
    "UPDATE tiktok.posts SET publish_id = $2, upload_url = nullif($3, ''),"
    " claim_until = now() + interval '" NGX_HTTP_TIKTOK_LEASE "',"
    " updated_at = now() WHERE id = $1::uuid";

static const char  ngx_http_tiktok_job_progress_sql[] =
    "UPDATE tiktok.posts SET uploaded_bytes = $2::bigint,"
    " status = CASE WHEN $2::bigint >= video_size THEN 'processing'"
    "     ELSE status END,"
    " claim_until = now() + interval '" NGX_HTTP_TIKTOK_LEASE "',"
    " updated_at = now() WHERE id = $1::uuid";

/* a transient failure: back off (30 s doubling, at most an hour) */
static const char  ngx_http_tiktok_job_later_sql[] =
    "UPDATE tiktok.posts SET attempts = attempts + 1,"
    " next_attempt_at = now() + least(interval '30 seconds'"
    "     * power(2, least(attempts, 7)), interval '1 hour'),"
    " init_started_at = CASE WHEN publish_id IS NULL THEN NULL"
    "     ELSE init_started_at END,"
    " status = CASE WHEN publish_id IS NULL AND status IN"
    "     ('uploading', 'processing') THEN 'queued' ELSE status END,"
    " error = $2, claim_until = NULL, updated_at = now()"
    " WHERE id = $1::uuid";

static const char  ngx_http_tiktok_job_finish_sql[] =
    "UPDATE tiktok.posts SET status = $2, fail_reason = $3, share_url = $4,"
    " claim_until = NULL, updated_at = now() WHERE id = $1::uuid";


ngx_int_t
ngx_http_tiktok_scheduler_init(ngx_cycle_t *cycle,
    ngx_http_tiktok_main_conf_t *tmcf)
{
    ngx_http_tiktok_sched_t  *s;

    s = ngx_pcalloc(cycle->pool, sizeof(ngx_http_tiktok_sched_t));
    if (s == NULL) {
        return NGX_ERROR;
    }

    s->worker.data = ngx_pnalloc(cycle->pool, cycle->hostname.len
                                              + NGX_INT_T_LEN + 2);
    if (s->worker.data == NULL) {
        return NGX_ERROR;
    }

    s->worker.len = ngx_sprintf(s->worker.data, "%V:%P", &cycle->hostname,
                                ngx_pid)
                    - s->worker.data;

    s->tmcf = tmcf;
    s->timer.handler = ngx_http_tiktok_sched_tick;
    s->timer.data = s;
    s->timer.log = cycle->log;
    s->timer.cancelable = 1;

    tmcf->scheduler_ctx = s;

    /* workers start apart so they do not all claim at the same moment */
    ngx_add_timer(&s->timer, 200 + ngx_random() % tmcf->scheduler_interval);

    return NGX_OK;
}


void
ngx_http_tiktok_scheduler_kick(ngx_http_tiktok_main_conf_t *tmcf)
{
    ngx_http_tiktok_sched_t  *s = tmcf->scheduler_ctx;

    if (s == NULL || ngx_exiting || ngx_terminate) {
        return;
    }

    if (s->timer.timer_set) {
        ngx_del_timer(&s->timer);
    }

    ngx_add_timer(&s->timer, 1);
}


static void
ngx_http_tiktok_sched_tick(ngx_event_t *ev)
{
    u_char                      *p;
    ngx_str_t                    params[2];
    ngx_pool_t                  *pool;
    ngx_http_tiktok_sched_t     *s;
    ngx_http_tiktok_pg_query_t  *q;

    s = ev->data;

    if (ngx_exiting || ngx_terminate) {
        return;
    }

    ngx_add_timer(&s->timer, s->tmcf->scheduler_interval);

    if (s->claiming || s->running >= s->tmcf->scheduler_batch) {
        return;
    }

    pool = ngx_create_pool(1024, ev->log);
    if (pool == NULL) {
        return;
    }

    q = ngx_http_tiktok_pg_query_create(pool, ev->log);
    p = ngx_pnalloc(pool, NGX_INT_T_LEN);
    if (q == NULL || p == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    params[0] = s->worker;
    params[1].data = p;
    params[1].len = ngx_sprintf(p, "%ui",
                                s->tmcf->scheduler_batch - s->running) - p;

    q->handler = ngx_http_tiktok_sched_claimed;
    q->data = s;

    if (ngx_http_tiktok_pg_add(q, ngx_http_tiktok_claim_sql, 2, params)
        != NGX_OK
        || ngx_http_tiktok_pg_run(s->tmcf->pg_pool, q) != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return;
    }

    s->claiming = 1;
}


static void
ngx_http_tiktok_sched_claimed(ngx_http_tiktok_pg_query_t *q)
{
    int                       i, n;
    ngx_pool_t               *pool;
    ngx_http_tiktok_sched_t  *s;

    s = q->data;
    pool = q->pool;
    s->claiming = 0;

    if (q->rc == NGX_OK) {
        n = PQntuples(q->res[0]);

        for (i = 0; i < n; i++) {
            ngx_http_tiktok_job_start(s, q->res[0], i);
        }
    }

    ngx_destroy_pool(pool);
}


#define ngx_http_tiktok_job_col(job, res, row, col, str)                      \
    if (!PQgetisnull(res, row, col)) {                                        \
        (str)->len = PQgetlength(res, row, col);                              \
        (str)->data = ngx_pnalloc((job)->pool, (str)->len + 1);               \
        if ((str)->data == NULL) {                                            \
            goto failed;                                                      \
        }                                                                     \
        ngx_memcpy((str)->data, PQgetvalue(res, row, col), (str)->len + 1);   \
    }


static void
ngx_http_tiktok_job_start(ngx_http_tiktok_sched_t *s, PGresult *res, int row)
{
    ngx_str_t               v;
    ngx_pool_t             *pool;
    ngx_http_tiktok_job_t  *job;

    pool = ngx_create_pool(4096, s->timer.log);
    if (pool == NULL) {
        return;
    }

    job = ngx_pcalloc(pool, sizeof(ngx_http_tiktok_job_t));
    if (job == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    job->pool = pool;
    job->log = s->timer.log;
    job->sched = s;
    job->fd = NGX_INVALID_FILE;
    job->wait.handler = ngx_http_tiktok_job_wait_handler;
    job->wait.data = job;
    job->wait.log = job->log;

    ngx_http_tiktok_job_col(job, res, row, 0, &job->id);
    ngx_http_tiktok_job_col(job, res, row, 1, &job->user);
    ngx_http_tiktok_job_col(job, res, row, 2, &job->source);
    ngx_http_tiktok_job_col(job, res, row, 3, &job->video_url);
    ngx_http_tiktok_job_col(job, res, row, 4, &job->spool_path);
    ngx_http_tiktok_job_col(job, res, row, 6, &job->content_type);
    ngx_http_tiktok_job_col(job, res, row, 7, &job->post_info);
    ngx_http_tiktok_job_col(job, res, row, 8, &job->publish_id);
    ngx_http_tiktok_job_col(job, res, row, 9, &job->upload_url);
    ngx_http_tiktok_job_col(job, res, row, 13, &job->username);

    v.data = (u_char *) PQgetvalue(res, row, 5);
    v.len = PQgetlength(res, row, 5);
    job->size = v.len ? ngx_atoof(v.data, v.len) : 0;

    v.data = (u_char *) PQgetvalue(res, row, 10);
    v.len = PQgetlength(res, row, 10);
    job->uploaded = ngx_atoof(v.data, v.len);

    job->init_started = (PQgetvalue(res, row, 11)[0] == 't');
    job->attempts = ngx_atoi((u_char *) PQgetvalue(res, row, 12),
                             PQgetlength(res, row, 12));

    s->running++;

    ngx_log_error(NGX_LOG_INFO, job->log, 0,
                  "tiktok: publishing post %V", &job->id);

    if (ngx_http_tiktok_job_sql(job, ngx_http_tiktok_job_token_sql, 1,
                                &job->user, ngx_http_tiktok_job_token)
        != NGX_OK)
    {
        ngx_http_tiktok_job_done(job);
    }

    return;

failed:

    ngx_destroy_pool(pool);
}


static ngx_int_t
ngx_http_tiktok_job_sql(ngx_http_tiktok_job_t *job, const char *sql,
    ngx_uint_t n, ngx_str_t *params, ngx_http_tiktok_pg_handler_pt handler)
{
    ngx_http_tiktok_pg_query_t  *q;

    q = ngx_http_tiktok_pg_query_create(job->pool, job->log);
    if (q == NULL) {
        return NGX_ERROR;
    }

    q->user_id = job->user;
    q->handler = handler;
    q->data = job;

    if (ngx_http_tiktok_pg_add(q, sql, n, params) != NGX_OK
        || ngx_http_tiktok_pg_run(job->sched->tmcf->pg_pool, q) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The post's user's access token.  A token about to expire is left to the
 * next request of that user to refresh (under the one-refresh lease): the
 * post is tried again shortly rather than racing that refresh.
 */

static void
ngx_http_tiktok_job_token(ngx_http_tiktok_pg_query_t *q)
{
    u_char                       *sealed;
    size_t                        len;
    ngx_str_t                     hex, in, col, reason, params[2];
    ngx_uint_t                    prev;
    PGresult                     *res;
    ngx_http_tiktok_job_t        *job;
    ngx_http_tiktok_main_conf_t  *tmcf;

    job = q->data;
    tmcf = job->sched->tmcf;
    res = q->res[0];

    if (q->rc != NGX_OK) {
        ngx_http_tiktok_job_later(job, "database unavailable");
        return;
    }

    if (PQntuples(res) != 1 || PQgetvalue(res, 0, 2)[0] == 't') {
        ngx_str_set(&reason, "auth_removed");
        ngx_http_tiktok_job_finish(job, "failed", &reason, NULL);
        return;
    }

    if (PQgetvalue(res, 0, 1)[0] != 't') {
        ngx_http_tiktok_job_later(job, "the access token needs a refresh");
        return;
    }

    hex.data = (u_char *) PQgetvalue(res, 0, 0);
    hex.len = PQgetlength(res, 0, 0);
    len = hex.len / 2;

    sealed = ngx_pnalloc(job->pool, len);
    job->token.data = ngx_pnalloc(job->pool, len);
    if (sealed == NULL || job->token.data == NULL
        || len < NGX_HTTP_TIKTOK_SEAL_OVERHEAD
        || ngx_http_tiktok_unhex(sealed, hex.data, hex.len) != NGX_OK
        || ngx_http_tiktok_forget(job->pool, &job->token) != NGX_OK)
    {
        ngx_http_tiktok_job_later(job, "the access token cannot be read");
        return;
    }

    ngx_str_set(&col, "access_token");
    in.data = sealed;
    in.len = len;

    if (ngx_http_tiktok_open(&tmcf->keyring, &job->user, &col, &in,
                             job->token.data, &job->token.len, &prev)
        != NGX_OK)
    {
        ngx_str_set(&reason, "auth_removed");
        ngx_http_tiktok_job_finish(job, "failed", &reason, NULL);
        return;
    }

    if (job->publish_id.len) {
        /* accepted before a restart: resume, never init again */
        if (job->source.data[0] == 'F' && job->uploaded < job->size) {
            ngx_http_tiktok_job_chunk(job);

        } else {
            ngx_http_tiktok_job_poll(job);
        }

        return;
    }

    if (job->init_started) {
        /* the init may have reached TikTok: a second one could post twice */
        ngx_str_set(&reason, "init_interrupted");
        ngx_http_tiktok_job_finish(job, "failed", &reason, NULL);
        return;
    }

    params[0] = job->id;

    if (job->source.data[0] == 'F') {
        ngx_str_set(&params[1], "uploading");

    } else {
        ngx_str_set(&params[1], "processing");
    }

    if (ngx_http_tiktok_job_sql(job, ngx_http_tiktok_job_init_sql, 2, params,
                                ngx_http_tiktok_job_init)
        != NGX_OK)
    {
        ngx_http_tiktok_job_later(job, "database unavailable");
    }
}


static void
ngx_http_tiktok_job_init(ngx_http_tiktok_pg_query_t *q)
{
    off_t                        chunk, count;
    json_t                      *body, *info, *source;
    ngx_str_t                    text;
    json_error_t                 jerr;
    ngx_http_tiktok_job_t       *job;
    ngx_http_tiktok_curl_req_t  *req;

    job = q->data;

    if (q->rc != NGX_OK) {
        ngx_http_tiktok_job_later(job, "database unavailable");
        return;
    }

    body = ngx_http_tiktok_json_own(job->pool, json_object());
    info = json_loadb((char *) job->post_info.data, job->post_info.len, 0,
                      &jerr);
    source = json_object();

    if (body == NULL || info == NULL || source == NULL
        || json_object_set_new(body, "post_info", info) != 0
        || json_object_set_new(body, "source_info", source) != 0)
    {
        ngx_http_tiktok_job_later(job, "no memory");
        return;
    }

    if (job->source.data[0] == 'F') {
        /*
         * TikTok's chunk rules: one chunk up to 64,000,000 bytes, else
         * 10,000,000-byte chunks with the remainder in the last one.
         */
        if (job->size <= NGX_HTTP_TIKTOK_ONE_CHUNK_MAX) {
            chunk = job->size;
            count = 1;

        } else {
            chunk = NGX_HTTP_TIKTOK_CHUNK;
            count = job->size / chunk;
        }

        job->chunk = chunk;

        if (json_object_set_new(source, "source", json_string("FILE_UPLOAD"))
            || json_object_set_new(source, "video_size",
                                   json_integer(job->size))
            || json_object_set_new(source, "chunk_size", json_integer(chunk))
            || json_object_set_new(source, "total_chunk_count",
                                   json_integer(count)))
        {
            ngx_http_tiktok_job_later(job, "no memory");
            return;
        }

    } else if (json_object_set_new(source, "source",
                                   json_string("PULL_FROM_URL"))
               || json_object_set_new(source, "video_url",
                      json_stringn((char *) job->video_url.data,
                                   job->video_url.len)))
    {
        ngx_http_tiktok_job_later(job, "no memory");
        return;
    }

    if (ngx_http_tiktok_json_encode(job->pool, body, &text) != NGX_OK) {
        ngx_http_tiktok_job_later(job, "no memory");
        return;
    }

    req = ngx_http_tiktok_job_request(job, "/v2/post/publish/video/init/",
                                      &text, ngx_http_tiktok_job_inited);
    if (req == NULL) {
        return;
    }

    /* never re-sent on a reused connection: that could post twice */
    req->fresh = 1;

    if (ngx_http_tiktok_curl_start(job->sched->tmcf->curl, req) != NGX_OK) {
        ngx_http_tiktok_job_later(job, "the publisher is stopping");
    }
}


static void
ngx_http_tiktok_job_inited(ngx_http_tiktok_curl_req_t *req)
{
    json_t                 *data;
    ngx_int_t               rc;
    ngx_str_t               code, params[3];
    ngx_http_tiktok_job_t  *job;

    job = req->data;

    if (req->aborted) {
        ngx_http_tiktok_job_done(job);
        return;
    }

    rc = ngx_http_tiktok_job_envelope(job, req, &data, &code);

    if (rc == NGX_OK
        && ngx_http_tiktok_json_get_str(job->pool, data, "publish_id",
                                        &job->publish_id) == NGX_OK)
    {
        (void) ngx_http_tiktok_json_get_str(job->pool, data, "upload_url",
                                            &job->upload_url);

        params[0] = job->id;
        params[1] = job->publish_id;
        params[2] = job->upload_url;

        if (params[2].data == NULL) {
            ngx_str_set(&params[2], "");
        }

        if (ngx_http_tiktok_job_sql(job, ngx_http_tiktok_job_inited_sql, 3,
                                    params, ngx_http_tiktok_job_stored)
            != NGX_OK)
        {
            ngx_http_tiktok_job_done(job);
        }

        return;
    }

    if (req->rc != NGX_OK) {
        /* no answer: TikTok may or may not have the post */
        ngx_str_set(&code, "init_interrupted");
        ngx_http_tiktok_job_finish(job, "failed", &code, NULL);
        return;
    }

    if (ngx_http_tiktok_job_transient(req, &code)) {
        ngx_http_tiktok_job_later(job, "TikTok could not take the post now");
        return;
    }

    /* spam risk, privacy mismatch, URL ownership (even with HTTP 200) ... */
    if (code.len == 0) {
        ngx_str_set(&code, "invalid_answer");
    }

    ngx_http_tiktok_job_finish(job, "failed", &code, NULL);
}


static void
ngx_http_tiktok_job_stored(ngx_http_tiktok_pg_query_t *q)
{
    ngx_http_tiktok_job_t  *job;

    job = q->data;

    if (q->rc != NGX_OK) {
        /* the lease runs out; whoever claims it next sees init_started */
        ngx_http_tiktok_job_done(job);
        return;
    }

    if (job->source.data[0] == 'F') {
        ngx_http_tiktok_job_chunk(job);
        return;
    }

    ngx_http_tiktok_job_poll(job);
}


/* the next chunk of the spool file, in order, with its Content-Range */

static void
ngx_http_tiktok_job_chunk(ngx_http_tiktok_job_t *job)
{
    off_t                        len;
    ngx_str_t                    reason;
    ngx_http_tiktok_curl_req_t  *req;

    if (job->fd == NGX_INVALID_FILE) {
        job->fd = ngx_open_file(job->spool_path.data, NGX_FILE_RDONLY,
                                NGX_FILE_OPEN, 0);
        if (job->fd == NGX_INVALID_FILE) {
            ngx_log_error(NGX_LOG_ERR, job->log, ngx_errno,
                          ngx_open_file_n " \"%V\" failed", &job->spool_path);
            ngx_str_set(&reason, "spool_file_missing");
            ngx_http_tiktok_job_finish(job, "failed", &reason, NULL);
            return;
        }
    }

    if (job->chunk == 0) {
        job->chunk = (job->size <= NGX_HTTP_TIKTOK_ONE_CHUNK_MAX)
                     ? job->size : NGX_HTTP_TIKTOK_CHUNK;
    }

    /* the last chunk takes the remainder */
    len = job->chunk;
    if (job->size - job->uploaded < 2 * job->chunk) {
        len = job->size - job->uploaded;
    }

    req = ngx_http_tiktok_curl_req_create(job->pool, job->log);
    if (req == NULL) {
        ngx_http_tiktok_job_done(job);
        return;
    }

    req->method = "PUT";
    req->url = job->upload_url;
    req->content_type = job->content_type;
    req->fd = job->fd;
    req->offset = job->uploaded;
    req->length = len;
    req->timeout = 600000;
    req->request_id = job->id;
    req->handler = ngx_http_tiktok_job_chunked;
    req->data = job;

    req->content_range.data = ngx_pnalloc(job->pool, 3 * NGX_OFF_T_LEN + 16);
    if (req->content_range.data == NULL) {
        ngx_http_tiktok_job_done(job);
        return;
    }

    req->content_range.len = ngx_sprintf(req->content_range.data,
                                         "bytes %O-%O/%O", job->uploaded,
                                         job->uploaded + len - 1, job->size)
                             - req->content_range.data;

    if (ngx_http_tiktok_curl_start(job->sched->tmcf->curl, req) != NGX_OK) {
        ngx_http_tiktok_job_done(job);
    }
}


static void
ngx_http_tiktok_job_chunked(ngx_http_tiktok_curl_req_t *req)
{
    u_char                 *p;
    ngx_str_t               params[2], reason;
    ngx_http_tiktok_job_t  *job;

    job = req->data;

    if (req->aborted) {
        ngx_http_tiktok_job_done(job);
        return;
    }

    if (req->rc == NGX_OK
        && (req->status == NGX_HTTP_CREATED || req->status == 206))
    {
        job->uploaded += req->length;
        job->tries = 0;

        p = ngx_pnalloc(job->pool, NGX_OFF_T_LEN);
        if (p == NULL) {
            ngx_http_tiktok_job_done(job);
            return;
        }

        params[0] = job->id;
        params[1].data = p;
        params[1].len = ngx_sprintf(p, "%O", job->uploaded) - p;

        if (ngx_http_tiktok_job_sql(job, ngx_http_tiktok_job_progress_sql, 2,
                                    params, ngx_http_tiktok_job_progress)
            != NGX_OK)
        {
            ngx_http_tiktok_job_done(job);
        }

        return;
    }

    if (req->rc == NGX_OK
        && (req->status == NGX_HTTP_FORBIDDEN
            || req->status == NGX_HTTP_NOT_FOUND))
    {
        ngx_str_set(&reason, "upload_url_expired");
        ngx_http_tiktok_job_finish(job, "failed", &reason, NULL);
        return;
    }

    if (req->rc == NGX_OK && req->status == 416) {
        /*
         * TikTok's progress is not ours (a chunk landed but its answer was
         * lost, e.g. nginx was killed): ask TikTok how far it got.
         */
        job->resync = 1;
        ngx_http_tiktok_job_poll(job);
        return;
    }

    /* 5xx, no answer: the same chunk again, after a pause */

    if (++job->tries > NGX_HTTP_TIKTOK_CHUNK_TRIES) {
        ngx_http_tiktok_job_later(job, "the upload keeps failing");
        return;
    }

    ngx_log_error(NGX_LOG_WARN, job->log, 0,
                  "tiktok: post %V: chunk at %O failed (%l), trying again",
                  &job->id, job->uploaded, req->status);

    ngx_add_timer(&job->wait, 1000 * job->tries);
}


static void
ngx_http_tiktok_job_progress(ngx_http_tiktok_pg_query_t *q)
{
    ngx_http_tiktok_job_t  *job;

    job = q->data;

    if (q->rc != NGX_OK) {
        ngx_http_tiktok_job_done(job);
        return;
    }

    if (job->uploaded < job->size) {
        ngx_http_tiktok_job_chunk(job);
        return;
    }

    ngx_http_tiktok_job_poll(job);
}


static void
ngx_http_tiktok_job_wait_handler(ngx_event_t *ev)
{
    ngx_http_tiktok_job_t  *job;

    job = ev->data;

    if (ngx_exiting || ngx_terminate) {
        ngx_http_tiktok_job_done(job);
        return;
    }

    if (job->publish_id.len && job->source.data[0] == 'F'
        && job->uploaded < job->size)
    {
        ngx_http_tiktok_job_chunk(job);
        return;
    }

    ngx_http_tiktok_job_poll(job);
}


/* status polls, at most one every 3 s (TikTok allows 30 a minute) */

static void
ngx_http_tiktok_job_poll(ngx_http_tiktok_job_t *job)
{
    json_t                      *body;
    ngx_str_t                    text;
    ngx_http_tiktok_curl_req_t  *req;

    if (job->polls++ == 0 && !job->resync) {
        ngx_add_timer(&job->wait, NGX_HTTP_TIKTOK_POLL / 3);
        return;
    }

    if (job->polls > NGX_HTTP_TIKTOK_POLLS_MAX) {
        ngx_http_tiktok_job_later(job, "still processing at TikTok");
        return;
    }

    body = ngx_http_tiktok_json_own(job->pool, json_object());

    if (body == NULL
        || ngx_http_tiktok_json_set(body, "publish_id",
               ngx_http_tiktok_json_str(job->publish_id.data,
                                        job->publish_id.len)) != NGX_OK
        || ngx_http_tiktok_json_encode(job->pool, body, &text) != NGX_OK)
    {
        ngx_http_tiktok_job_done(job);
        return;
    }

    req = ngx_http_tiktok_job_request(job, "/v2/post/publish/status/fetch/",
                                      &text, ngx_http_tiktok_job_polled);
    if (req == NULL) {
        return;
    }

    if (ngx_http_tiktok_curl_start(job->sched->tmcf->curl, req) != NGX_OK) {
        ngx_http_tiktok_job_done(job);
    }
}


static void
ngx_http_tiktok_job_polled(ngx_http_tiktok_curl_req_t *req)
{
    u_char                 *p;
    json_t                 *data, *ids, *id, *n;
    ngx_int_t               rc;
    ngx_str_t               code, status, reason, share;
    ngx_http_tiktok_job_t  *job;

    job = req->data;

    if (req->aborted) {
        ngx_http_tiktok_job_done(job);
        return;
    }

    rc = ngx_http_tiktok_job_envelope(job, req, &data, &code);

    if (rc != NGX_OK
        || ngx_http_tiktok_json_get_str(job->pool, data, "status", &status)
           != NGX_OK)
    {
        /* a failed poll is only a poll: look again later */
        ngx_add_timer(&job->wait, NGX_HTTP_TIKTOK_POLL * 2);
        return;
    }

    if (job->resync) {
        job->resync = 0;

        n = json_object_get(data, "uploaded_bytes");

        if (json_is_integer(n) && job->chunk && json_integer_value(n) >= 0
            && json_integer_value(n) <= job->size
            && json_integer_value(n) % job->chunk == 0)
        {
            ngx_log_error(NGX_LOG_WARN, job->log, 0,
                          "tiktok: post %V: TikTok has %L bytes, we had %O;"
                          " resuming from there", &job->id,
                          (int64_t) json_integer_value(n), job->uploaded);

            job->uploaded = json_integer_value(n);
            job->tries++;

            if (job->uploaded < job->size
                && job->tries <= NGX_HTTP_TIKTOK_CHUNK_TRIES)
            {
                ngx_http_tiktok_job_chunk(job);
                return;
            }
        }

        if (job->uploaded < job->size) {
            ngx_http_tiktok_job_later(job, "the upload is out of step");
            return;
        }
    }

    if (status.len == sizeof("PUBLISH_COMPLETE") - 1
        && ngx_strncmp(status.data, "PUBLISH_COMPLETE", status.len) == 0)
    {
        ngx_str_null(&share);

        ids = json_object_get(data, "publicaly_available_post_id");
        id = json_array_get(ids, 0);

        if (json_is_integer(id) && job->username.len) {
            share.data = ngx_pnalloc(job->pool, job->username.len
                                                + NGX_INT64_LEN + 40);
            if (share.data) {
                p = ngx_sprintf(share.data,
                                "https://www.tiktok.com/@%V/video/%L",
                                &job->username,
                                (int64_t) json_integer_value(id));
                share.len = p - share.data;
            }
        }

        ngx_http_tiktok_job_finish(job, "published", NULL,
                                   share.len ? &share : NULL);
        return;
    }

    if (status.len == sizeof("FAILED") - 1
        && ngx_strncmp(status.data, "FAILED", status.len) == 0)
    {
        if (ngx_http_tiktok_json_get_str(job->pool, data, "fail_reason",
                                         &reason) != NGX_OK)
        {
            ngx_str_set(&reason, "failed");
        }

        ngx_http_tiktok_job_finish(job, "failed", &reason, NULL);
        return;
    }

    ngx_add_timer(&job->wait, NGX_HTTP_TIKTOK_POLL);
}


/* a POST with the user's token and a JSON body to TikTok's API */

static ngx_http_tiktok_curl_req_t *
ngx_http_tiktok_job_request(ngx_http_tiktok_job_t *job, const char *path,
    ngx_str_t *body, ngx_http_tiktok_curl_done_pt handler)
{
    size_t                        len;
    ngx_http_tiktok_curl_req_t   *req;
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = job->sched->tmcf;

    req = ngx_http_tiktok_curl_req_create(job->pool, job->log);
    if (req == NULL) {
        ngx_http_tiktok_job_done(job);
        return NULL;
    }

    len = tmcf->api_base_url.len + ngx_strlen(path);

    req->url.data = ngx_pnalloc(job->pool, len + 1);
    if (req->url.data == NULL) {
        ngx_http_tiktok_job_done(job);
        return NULL;
    }

    req->url.len = ngx_sprintf(req->url.data, "%V%s%Z", &tmcf->api_base_url,
                               path) - req->url.data - 1;

    req->method = "POST";
    req->bearer = job->token;
    ngx_str_set(&req->content_type, "application/json; charset=UTF-8");
    req->body = *body;
    req->timeout = 30000;
    req->request_id = job->id;
    req->handler = handler;
    req->data = job;

    return req;
}


static ngx_int_t
ngx_http_tiktok_job_envelope(ngx_http_tiktok_job_t *job,
    ngx_http_tiktok_curl_req_t *req, json_t **data, ngx_str_t *code)
{
    json_t        *root, *error;
    json_error_t   jerr;

    ngx_str_null(code);

    if (req->rc != NGX_OK) {
        return NGX_ERROR;
    }

    root = ngx_http_tiktok_json_own(job->pool,
               json_loadb((char *) req->response.data, req->response.len, 0,
                          &jerr));

    error = json_object_get(root, "error");

    if (!json_is_object(error)
        || ngx_http_tiktok_json_get_str(job->pool, error, "code", code)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (code->len != 2 || ngx_strncmp(code->data, "ok", 2) != 0) {
        ngx_log_error(NGX_LOG_ERR, job->log, 0,
                      "tiktok: post %V: TikTok answered %l \"%V\"",
                      &job->id, req->status, code);
        return NGX_DECLINED;
    }

    *data = json_object_get(root, "data");

    return json_is_object(*data) ? NGX_OK : NGX_ERROR;
}


/* 5xx and rate limits pass; everything else TikTok says is a verdict */

static ngx_uint_t
ngx_http_tiktok_job_transient(ngx_http_tiktok_curl_req_t *req,
    ngx_str_t *code)
{
    if (req->status >= 500 || req->status == NGX_HTTP_TOO_MANY_REQUESTS) {
        return 1;
    }

    return (code->len == sizeof("rate_limit_exceeded") - 1
            && ngx_strncmp(code->data, "rate_limit_exceeded", code->len) == 0)
           || (code->len == sizeof("internal_error") - 1
               && ngx_strncmp(code->data, "internal_error", code->len) == 0);
}


static void
ngx_http_tiktok_job_later(ngx_http_tiktok_job_t *job, const char *why)
{
    ngx_str_t  params[2];

    ngx_log_error(NGX_LOG_WARN, job->log, 0,
                  "tiktok: post %V: %s; trying again later", &job->id, why);

    params[0] = job->id;
    params[1].data = (u_char *) why;
    params[1].len = ngx_strlen(why);

    if (ngx_http_tiktok_job_sql(job, ngx_http_tiktok_job_later_sql, 2, params,
                                ngx_http_tiktok_job_finished)
        != NGX_OK)
    {
        ngx_http_tiktok_job_done(job);
    }
}


static void
ngx_http_tiktok_job_finish(ngx_http_tiktok_job_t *job, const char *status,
    ngx_str_t *reason, ngx_str_t *share_url)
{
    ngx_str_t  params[4];

    ngx_log_error(NGX_LOG_INFO, job->log, 0,
                  "tiktok: post %V %s%s%V", &job->id, status,
                  reason ? ": " : "", reason ? reason : &job->id);

    params[0] = job->id;
    params[1].data = (u_char *) status;
    params[1].len = ngx_strlen(status);

    if (reason) {
        params[2] = *reason;

    } else {
        ngx_str_null(&params[2]);
    }

    if (share_url) {
        params[3] = *share_url;

    } else {
        ngx_str_null(&params[3]);
    }

    if (job->spool_path.len) {
        /* a final state: the upload is not needed any more */
        if (ngx_delete_file(job->spool_path.data) == NGX_FILE_ERROR
            && ngx_errno != NGX_ENOENT)
        {
            ngx_log_error(NGX_LOG_ERR, job->log, ngx_errno,
                          ngx_delete_file_n " \"%V\" failed",
                          &job->spool_path);
        }
    }

    if (ngx_http_tiktok_job_sql(job, ngx_http_tiktok_job_finish_sql, 4,
                                params, ngx_http_tiktok_job_finished)
        != NGX_OK)
    {
        ngx_http_tiktok_job_done(job);
    }
}


static void
ngx_http_tiktok_job_finished(ngx_http_tiktok_pg_query_t *q)
{
    ngx_http_tiktok_job_done(q->data);
}


static void
ngx_http_tiktok_job_done(ngx_http_tiktok_job_t *job)
{
    ngx_http_tiktok_sched_t  *s;

    s = job->sched;

    if (job->wait.timer_set) {
        ngx_del_timer(&job->wait);
    }

    if (job->fd != NGX_INVALID_FILE) {
        (void) ngx_close_file(job->fd);
        job->fd = NGX_INVALID_FILE;
    }

    s->running--;

    /* the pool's cleanups cancel anything still pending */
    ngx_destroy_pool(job->pool);
}
