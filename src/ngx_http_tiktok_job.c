
/*
 * A publisher job: one claimed post taken through creator info, init, the
 * chunked upload and status polls with libcurl on the event loop.  Each
 * state change is one committed row update under the post's user, so a
 * post survives nginx stopping at any step: its lease runs out and it is
 * claimed again.  Every write names the claim's fencing token
 * (claim_token): a job whose post is no longer its own (the lease ran out
 * and another worker claimed it, or the user cancelled it) matches no row
 * and stops without calling TikTok again.  A URL post whose init may have
 * reached TikTok without its publish_id being stored is failed
 * (init_uncertain) rather than initialised twice.  A draft skips creator
 * info and goes through the inbox init (photos: the content init) to
 * sent_to_inbox.
 *
 * job->state names the step; every wait (pacing, a pause, a poll's
 * interval, another's token refresh) ends in ngx_http_tiktok_job_run,
 * which renews the claim and resumes that step.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_job.h"
#include "ngx_http_tiktok_metrics.h"
#include "ngx_http_tiktok_ratelimit.h"
#include "ngx_http_tiktok_reply.h"


#define NGX_HTTP_TIKTOK_POLL            3000
#define NGX_HTTP_TIKTOK_POLLS_MAX       600
#define NGX_HTTP_TIKTOK_RENEW_AFTER     15000   /* ms; see job_wait_handler */
#define NGX_HTTP_TIKTOK_CHUNK_MAX       64000000
#define NGX_HTTP_TIKTOK_ONE_CHUNK_MAX   64000000
#define NGX_HTTP_TIKTOK_CHUNK_TRIES     3
#define NGX_HTTP_TIKTOK_ATTEMPTS_MAX    10      /* backed-off tries a post */


#define ngx_http_tiktok_str_is(s, lit)                                        \
    ((s)->len == sizeof(lit) - 1 && ngx_strncmp((s)->data, lit, (s)->len) == 0)

/* after the init: the spool file has bytes TikTok has not taken yet */
#define ngx_http_tiktok_job_uploading(job)                                    \
    ((job)->upload && (job)->uploaded < (job)->size)

/*
 * The worker is leaving.  Its signal handler (or its channel) sets ngx_quit
 * or ngx_terminate, the rest of that turn of the event loop runs (due
 * timers, answers that came), and only then is ngx_exiting set; libcurl
 * takes no new call from the first moment.  A job that meets any of them
 * takes no next step: it parks and the scheduler hands its post back.
 */
#define ngx_http_tiktok_job_leaving()                                         \
    (ngx_exiting || ngx_quit || ngx_terminate)

/* 5xx and rate limits pass; everything else TikTok says is a verdict */
#define ngx_http_tiktok_job_transient(req, kind)                              \
    ((req)->status >= 500 || (req)->status == NGX_HTTP_TOO_MANY_REQUESTS      \
     || (kind) == NGX_HTTP_TIKTOK_API_RATE_LIMITED                            \
     || (kind) == NGX_HTTP_TIKTOK_API_INTERNAL)


typedef struct {
    char                         *path;
    ngx_uint_t                    limit;
} ngx_http_tiktok_job_api_t;


static void ngx_http_tiktok_job_run(ngx_http_tiktok_job_t *job);
static void ngx_http_tiktok_job_step(ngx_http_tiktok_job_t *job,
    ngx_http_tiktok_job_state_e state);
static void ngx_http_tiktok_job_sql(ngx_http_tiktok_job_t *job,
    const char *sql, ngx_uint_t n, ngx_str_t *params,
    ngx_http_tiktok_pg_handler_pt handler);
static void ngx_http_tiktok_job_token(ngx_http_tiktok_lease_t *lease);
static void ngx_http_tiktok_job_creator(ngx_http_tiktok_job_t *job);
static void ngx_http_tiktok_job_creator_answered(ngx_http_tiktok_job_t *job,
    ngx_http_tiktok_curl_req_t *req, ngx_int_t rc, ngx_uint_t kind,
    json_t *data);
static void ngx_http_tiktok_job_check(ngx_http_tiktok_job_t *job,
    json_t *creator);
static void ngx_http_tiktok_job_begin(ngx_http_tiktok_job_t *job);
static void ngx_http_tiktok_job_init(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_job_inited(ngx_http_tiktok_job_t *job,
    ngx_http_tiktok_curl_req_t *req, ngx_int_t rc, ngx_uint_t kind,
    json_t *data);
static void ngx_http_tiktok_job_written(ngx_http_tiktok_pg_query_t *q);
static off_t ngx_http_tiktok_job_chunks(off_t size, off_t *count);
static off_t ngx_http_tiktok_job_chunk_len(off_t size, off_t chunk,
    off_t uploaded);
static ngx_uint_t ngx_http_tiktok_job_resumable(off_t size, off_t chunk,
    int64_t n);
static void ngx_http_tiktok_job_chunk(ngx_http_tiktok_job_t *job);
static void ngx_http_tiktok_job_chunked(ngx_http_tiktok_job_t *job,
    ngx_http_tiktok_curl_req_t *req);
static void ngx_http_tiktok_job_wait_handler(ngx_event_t *ev);
static void ngx_http_tiktok_job_renewed(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_job_pause(ngx_http_tiktok_job_t *job,
    ngx_msec_t ms);
static void ngx_http_tiktok_job_paused(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_job_poll(ngx_http_tiktok_job_t *job);
static void ngx_http_tiktok_job_polled(ngx_http_tiktok_job_t *job,
    ngx_http_tiktok_curl_req_t *req, ngx_int_t rc, ngx_uint_t kind,
    json_t *data);
static void ngx_http_tiktok_job_polled_final(ngx_http_tiktok_job_t *job,
    ngx_http_tiktok_job_status_answer_t *st);
static void ngx_http_tiktok_job_safety_net(ngx_http_tiktok_job_t *job);
static ngx_uint_t ngx_http_tiktok_job_paced(ngx_http_tiktok_job_t *job);
static char *ngx_http_tiktok_job_path(ngx_http_tiktok_job_t *job);
static json_t *ngx_http_tiktok_job_init_body(ngx_http_tiktok_job_t *job);
static void ngx_http_tiktok_job_call(ngx_http_tiktok_job_t *job,
    ngx_str_t *body);
static void ngx_http_tiktok_job_start_call(ngx_http_tiktok_job_t *job,
    ngx_http_tiktok_curl_req_t *req);
static void ngx_http_tiktok_job_answered(ngx_http_tiktok_curl_req_t *req);
static void ngx_http_tiktok_job_later(ngx_http_tiktok_job_t *job,
    const char *why);
static void ngx_http_tiktok_job_finish(ngx_http_tiktok_job_t *job,
    const char *status, ngx_str_t *reason, ngx_str_t *share_url);
static void ngx_http_tiktok_job_finished(ngx_http_tiktok_pg_query_t *q);
static ngx_uint_t ngx_http_tiktok_job_lost(ngx_http_tiktok_job_t *job,
    ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_job_released(ngx_http_tiktok_pg_query_t *q);


/*
 * The endpoint of each state that calls TikTok's API, and TikTok's limit
 * of it a minute per user token (TIKTOK_API.md).
 */
static ngx_http_tiktok_job_api_t  ngx_http_tiktok_job_api[] = {
    { NULL, 0 },                                        /* TOKEN */
    { NGX_HTTP_TIKTOK_CREATOR_PATH, 20 },               /* CREATOR */
    { "/v2/post/publish/video/init/", 6 },              /* INIT */
    { NULL, 0 },                                        /* UPLOAD */
    { "/v2/post/publish/status/fetch/", 30 }            /* POLL */
};

/*
 * Every write below names the claim's token: one that matches no row
 * means the post is no longer this job's (ngx_http_tiktok_job_lost).
 */

/* committed before the init call: it may reach TikTok from here on */
static const char  ngx_http_tiktok_job_init_sql[] =
    "UPDATE tiktok.posts SET init_started_at = now(), status = $2,"
    " claim_until = now() + interval '" NGX_HTTP_TIKTOK_JOB_LEASE "',"
    " updated_at = now() WHERE id = $1::uuid AND claim_token = $3::uuid";

static const char  ngx_http_tiktok_job_inited_sql[] =
    "UPDATE tiktok.posts SET publish_id = $2, upload_url = nullif($3, ''),"
    " claim_until = now() + interval '" NGX_HTTP_TIKTOK_JOB_LEASE "',"
    " updated_at = now() WHERE id = $1::uuid AND claim_token = $4::uuid";

static const char  ngx_http_tiktok_job_progress_sql[] =
    "UPDATE tiktok.posts SET uploaded_bytes = $2::bigint,"
    " status = CASE WHEN $2::bigint >= video_size THEN 'processing'"
    "     ELSE status END,"
    " claim_until = now() + interval '" NGX_HTTP_TIKTOK_JOB_LEASE "',"
    " updated_at = now() WHERE id = $1::uuid AND claim_token = $3::uuid";

/* a job that waits (pacing, a pause, a token, processing) keeps its post */
static const char  ngx_http_tiktok_job_renew_sql[] =
    "UPDATE tiktok.posts"
    " SET claim_until = now() + interval '" NGX_HTTP_TIKTOK_JOB_LEASE "'"
    " WHERE id = $1::uuid AND claim_token = $2::uuid";

/* a transient failure: back off (30 s doubling, at most an hour) */
static const char  ngx_http_tiktok_job_later_sql[] =
    "UPDATE tiktok.posts SET attempts = attempts + 1,"
    " next_attempt_at = now() + least(interval '30 seconds'"
    "     * power(2, least(attempts, 7)), interval '1 hour'),"
    " init_started_at = CASE WHEN publish_id IS NULL THEN NULL"
    "     ELSE init_started_at END,"
    " status = CASE WHEN publish_id IS NULL AND status IN"
    "     ('uploading', 'processing') THEN 'queued' ELSE status END,"
    " error = $2, claim_until = NULL, claim_token = NULL,"
    " updated_at = now() WHERE id = $1::uuid AND claim_token = $3::uuid";

/*
 * TikTok ended the post FAILED for a reason worth another try (internal,
 * video_pull_failed): that publish is over, so start again from init,
 * after the same back-off.
 */
static const char  ngx_http_tiktok_job_again_sql[] =
    "UPDATE tiktok.posts SET attempts = attempts + 1,"
    " next_attempt_at = now() + least(interval '30 seconds'"
    "     * power(2, least(attempts, 7)), interval '1 hour'),"
    " publish_id = NULL, upload_url = NULL, uploaded_bytes = 0,"
    " init_started_at = NULL, status = 'queued',"
    " error = $2, claim_until = NULL, claim_token = NULL,"
    " updated_at = now() WHERE id = $1::uuid AND claim_token = $3::uuid";

/*
 * tiktok_webhooks on: TikTok's events tell the outcome, so the post is
 * released and polled again only as a safety net, after 60 s and then
 * after as long again as it has been in TikTok's hands (at most an hour).
 */
static const char  ngx_http_tiktok_job_safety_net_sql[] =
    "UPDATE tiktok.posts SET next_attempt_at = now()"
    " + least(greatest(interval '60 seconds',"
    "     now() - coalesce(init_started_at, now())), interval '1 hour'),"
    " claim_until = NULL, claim_token = NULL, updated_at = now()"
    " WHERE id = $1::uuid AND claim_token = $2::uuid";

static const char  ngx_http_tiktok_job_finish_sql[] =
    "UPDATE tiktok.posts SET status = $2, fail_reason = $3, share_url = $4,"
    " claim_until = NULL, claim_token = NULL, updated_at = now()"
    " WHERE id = $1::uuid AND claim_token = $5::uuid";

/*
 * A graceful exit (reload, quit), or a job that lost the database: the
 * post goes back from what is committed as soon as this can be written,
 * rather than after its lease, so that a reload or a restart of
 * PostgreSQL does not hold every post in flight for five minutes.
 */
static const char  ngx_http_tiktok_job_release_sql[] =
    "UPDATE tiktok.posts SET claim_until = NULL, claim_token = NULL,"
    " updated_at = now() WHERE id = $1::uuid AND claim_token = $2::uuid";


ngx_http_tiktok_job_t *
ngx_http_tiktok_job_create(ngx_http_tiktok_main_conf_t *tmcf, ngx_log_t *log,
    PGresult *res, int row, ngx_http_tiktok_job_pt ended, void *data)
{
    ngx_str_t               source, mode, media;
    ngx_pool_t             *pool;
    ngx_http_tiktok_job_t  *job;

    pool = ngx_create_pool(4096, log);
    if (pool == NULL) {
        return NULL;
    }

    job = ngx_pcalloc(pool, sizeof(ngx_http_tiktok_job_t));
    if (job == NULL) {
        goto failed;
    }

    job->pool = pool;
    job->log = log;
    job->tmcf = tmcf;
    job->ended = ended;
    job->data = data;
    job->fd = NGX_INVALID_FILE;
    ngx_http_tiktok_event_init(&job->wait, ngx_http_tiktok_job_wait_handler,
                               job, log);

    /*
     * A pause (pacing, a poll's interval) must not hold up a worker's
     * graceful exit: the post's lease runs out and another worker carries
     * on from the committed state, as after any stop.
     */
    job->wait.cancelable = 1;

    if (ngx_http_tiktok_pg_copy(pool, res, row, 0, &job->id) != NGX_OK
        || ngx_http_tiktok_pg_copy(pool, res, row, 1, &job->user) != NGX_OK
        || ngx_http_tiktok_pg_copy(pool, res, row, 2, &source) != NGX_OK
        || ngx_http_tiktok_pg_copy(pool, res, row, 3, &job->video_url)
           != NGX_OK
        || ngx_http_tiktok_pg_copy(pool, res, row, 4, &job->spool_path)
           != NGX_OK
        || ngx_http_tiktok_pg_copy(pool, res, row, 6, &job->content_type)
           != NGX_OK
        || ngx_http_tiktok_pg_copy(pool, res, row, 7, &job->post_info)
           != NGX_OK
        || ngx_http_tiktok_pg_copy(pool, res, row, 8, &job->publish_id)
           != NGX_OK
        || ngx_http_tiktok_pg_copy(pool, res, row, 9, &job->upload_url)
           != NGX_OK
        || ngx_http_tiktok_pg_copy(pool, res, row, 13, &job->username)
           != NGX_OK
        || ngx_http_tiktok_pg_copy(pool, res, row, 14, &job->claim_token)
           != NGX_OK
        || ngx_http_tiktok_pg_copy(pool, res, row, 15, &mode) != NGX_OK
        || ngx_http_tiktok_pg_copy(pool, res, row, 16, &media) != NGX_OK
        || ngx_http_tiktok_pg_copy(pool, res, row, 17, &job->photo_urls)
           != NGX_OK)
    {
        goto failed;
    }

    job->draft = ngx_http_tiktok_str_is(&mode, "draft");
    job->photo = ngx_http_tiktok_str_is(&media, "PHOTO");
    job->cover = PQgetisnull(res, row, 18)
                 ? 0 : ngx_atoi((u_char *) PQgetvalue(res, row, 18),
                                PQgetlength(res, row, 18));

    job->size = PQgetisnull(res, row, 5)
                ? 0 : ngx_atoof((u_char *) PQgetvalue(res, row, 5),
                                PQgetlength(res, row, 5));

    job->chunk = ngx_http_tiktok_job_chunks(job->size, NULL);

    job->uploaded = ngx_atoof((u_char *) PQgetvalue(res, row, 10),
                              PQgetlength(res, row, 10));

    job->upload = (source.len && source.data[0] == 'F');
    job->init_started = (PQgetvalue(res, row, 11)[0] == 't');
    job->attempts = ngx_atoi((u_char *) PQgetvalue(res, row, 12),
                             PQgetlength(res, row, 12));
    job->leased = ngx_current_msec;

    /*
     * Where the post stands, once, from its row: accepted by TikTok before
     * a restart (resume, never init again), or not yet.
     */
    if (job->publish_id.len) {
        job->row = ngx_http_tiktok_job_uploading(job)
                   ? NGX_HTTP_TIKTOK_JOB_UPLOAD : NGX_HTTP_TIKTOK_JOB_POLL;

    } else if (job->init_started && !job->upload) {
        job->row = NGX_HTTP_TIKTOK_JOB_INIT;    /* it fails init_uncertain */

    } else if (job->draft) {
        /*
         * A draft has no post_info to check against the creator's
         * options: the creator chooses them in the TikTok app (and
         * creator info needs video.publish, which a draft does not).
         */
        job->row = NGX_HTTP_TIKTOK_JOB_INIT;

    } else {
        job->row = NGX_HTTP_TIKTOK_JOB_CREATOR;
    }

    job->lease.pool = pool;
    job->lease.log = log;
    job->lease.tmcf = tmcf;
    job->lease.user = job->user;
    job->lease.request_id = job->id;
    job->lease.timer = &job->wait;
    job->lease.poll = 1000;
    job->lease.done = ngx_http_tiktok_job_token;
    job->lease.data = job;

    return job;

failed:

    ngx_destroy_pool(pool);

    return NULL;
}


/* the first step: the user's token */

void
ngx_http_tiktok_job_start(ngx_http_tiktok_job_t *job)
{
    ngx_log_error(NGX_LOG_INFO, job->log, 0,
                  "tiktok: publishing post %V", &job->id);

    job->state = NGX_HTTP_TIKTOK_JOB_TOKEN;

    if (ngx_http_tiktok_lease_start(&job->lease) != NGX_OK) {
        ngx_http_tiktok_job_done(job);
    }
}


/*
 * Resumes the job's step: after the token, after every wait and after
 * each step's own state change.
 */

static void
ngx_http_tiktok_job_run(ngx_http_tiktok_job_t *job)
{
    if (ngx_http_tiktok_job_leaving()
        && job->state != NGX_HTTP_TIKTOK_JOB_DONE)
    {
        /*
         * The worker is leaving: no next step.  What the job did is
         * committed; the scheduler hands the post back (job_release).
         */
        job->parked = 1;
        return;
    }

    switch (job->state) {

    case NGX_HTTP_TIKTOK_JOB_TOKEN:
        /* another's refresh of the token was waited for: look again */
        ngx_http_tiktok_lease_load(&job->lease);
        return;

    case NGX_HTTP_TIKTOK_JOB_CREATOR:
        ngx_http_tiktok_job_creator(job);
        return;

    case NGX_HTTP_TIKTOK_JOB_INIT:
        ngx_http_tiktok_job_begin(job);
        return;

    case NGX_HTTP_TIKTOK_JOB_UPLOAD:
        ngx_http_tiktok_job_chunk(job);
        return;

    case NGX_HTTP_TIKTOK_JOB_POLL:
        ngx_http_tiktok_job_poll(job);
        return;

    default:
        ngx_http_tiktok_job_done(job);
    }
}


static void
ngx_http_tiktok_job_step(ngx_http_tiktok_job_t *job,
    ngx_http_tiktok_job_state_e state)
{
    job->state = state;
    ngx_http_tiktok_job_run(job);
}


/*
 * One transaction under the post's user: the statement (sql, if any, its
 * params[0] the post and params[n - 1] the claim's token, both set here;
 * job->fence names it for ngx_http_tiktok_job_lost), the failure that led
 * here (job->err: a retried call is still a failure worth a row in
 * tiktok.api_errors) and, when TikTok refused the access token, its
 * expiry, so that the next attempt refreshes it.  A transaction that
 * cannot start ends the job.
 */

static void
ngx_http_tiktok_job_sql(ngx_http_tiktok_job_t *job, const char *sql,
    ngx_uint_t n, ngx_str_t *params, ngx_http_tiktok_pg_handler_pt handler)
{
    ngx_http_tiktok_pg_query_t  *q;

    q = ngx_http_tiktok_lease_query(&job->lease, handler, job);
    if (q == NULL) {
        goto failed;
    }

    job->fence = q->nstmts;

    if (sql) {
        params[0] = job->id;
        params[n - 1] = job->claim_token;
    }

    if ((sql && ngx_http_tiktok_pg_add(q, sql, n, params) != NGX_OK)
        || (job->err.endpoint
            && ngx_http_tiktok_error_add(q, &job->user, &job->id, &job->err)
               != NGX_OK)
        || ngx_http_tiktok_pg_run(job->tmcf->pg_pool, q) != NGX_OK)
    {
        goto failed;
    }

    ngx_memzero(&job->err, sizeof(ngx_http_tiktok_api_error_t));

    return;

failed:

    ngx_http_tiktok_job_done(job);
}


/*
 * The lease's outcome: on with the post from where its row stands, or
 * fail it (auth_removed: the user must reconnect), or back it off; a
 * failed refresh call is recorded with the state change.
 */

static void
ngx_http_tiktok_job_token(ngx_http_tiktok_lease_t *lease)
{
    ngx_str_t               reason;
    ngx_http_tiktok_job_t  *job;

    job = lease->data;
    job->err = lease->err;

    switch (lease->status) {

    case NGX_HTTP_TIKTOK_TOKEN_OK:
        if (lease->refreshed) {
            ngx_log_error(NGX_LOG_INFO, job->log, 0,
                          "tiktok: post %V: refreshed the access token",
                          &job->id);
        }

        ngx_http_tiktok_job_step(job, job->row);
        return;

    case NGX_HTTP_TIKTOK_TOKEN_NOT_CONNECTED:
    case NGX_HTTP_TIKTOK_TOKEN_RECONNECT:
        ngx_str_set(&reason, "auth_removed");
        ngx_http_tiktok_job_finish(job, "failed", &reason, NULL);
        return;

    default:
        if (ngx_http_tiktok_job_leaving()) {
            /*
             * The scheduler hands the post back: no attempt is spent on a
             * refresh the exit refused to start.
             */
            job->parked = 1;
            return;
        }

        if (lease->why == NULL) {
            /* nothing started: the lease runs out */
            ngx_http_tiktok_job_done(job);
            return;
        }

        ngx_http_tiktok_job_later(job, lease->why);
    }
}


/*
 * The creator info check right before init, asked of TikTok each time (a
 * post scheduled days ago meets the creator's options of now, and TikTok's
 * guidelines want the check just before posting).
 */

static void
ngx_http_tiktok_job_creator(ngx_http_tiktok_job_t *job)
{
    ngx_str_t  body;

    if (ngx_http_tiktok_job_paced(job)) {
        return;
    }

    ngx_str_set(&body, "");

    ngx_http_tiktok_job_call(job, &body);
}


static void
ngx_http_tiktok_job_creator_answered(ngx_http_tiktok_job_t *job,
    ngx_http_tiktok_curl_req_t *req, ngx_int_t rc, ngx_uint_t kind,
    json_t *data)
{
    const char  *why;

    if (kind == NGX_HTTP_TIKTOK_API_OK) {
        why = ngx_http_tiktok_api_creator_check(data);

        if (why) {
            /* TikTok's fault, as a malformed answer is: not the post's */
            ngx_http_tiktok_job_later(job, why);
            return;
        }

        ngx_http_tiktok_job_check(job, data);
        return;
    }

    if (rc == NGX_DECLINED && !ngx_http_tiktok_job_transient(req, kind)) {
        /* the creator cannot post now (spam risk, caps; HTTP 200 too) */
        job->err.message = "creator info says the creator cannot post now";
        ngx_http_tiktok_job_finish(job, "failed", &job->err.code, NULL);
        return;
    }

    /* nothing was posted: asking again later is safe */
    ngx_http_tiktok_job_later(job, "creator info could not be had");
}


/*
 * The post as stored, against the creator's options of now: a privacy
 * level no longer offered fails the post; an interaction the creator has
 * since disabled is sent disabled, never enabled.
 */

static void
ngx_http_tiktok_job_check(ngx_http_tiktok_job_t *job, json_t *creator)
{
    size_t         i;
    json_t        *info, *privacy, *options, *o;
    ngx_str_t      reason;
    json_error_t   jerr;

    static const char  *interactions[][2] = {
        { "comment_disabled", "disable_comment" },
        { "duet_disabled", "disable_duet" },
        { "stitch_disabled", "disable_stitch" },
    };

    info = ngx_http_tiktok_json_own(job->pool,
               json_loadb((char *) job->post_info.data, job->post_info.len, 0,
                          &jerr));
    privacy = json_object_get(info, "privacy_level");

    if (!json_is_object(info) || !json_is_string(privacy)) {
        ngx_str_set(&reason, "invalid_post_info");
        ngx_http_tiktok_job_finish(job, "failed", &reason, NULL);
        return;
    }

    options = json_object_get(creator, "privacy_level_options");

    json_array_foreach(options, i, o) {
        if (json_equal(o, privacy)) {
            break;
        }
    }

    if (!json_is_array(options) || i == json_array_size(options)) {
        ngx_log_error(NGX_LOG_WARN, job->log, 0,
                      "tiktok: post %V: privacy level \"%s\" is no longer "
                      "among the creator's options", &job->id,
                      json_string_value(privacy));
        ngx_str_set(&reason, "privacy_level_option_mismatch");
        ngx_http_tiktok_job_finish(job, "failed", &reason, NULL);
        return;
    }

    /* a photo post has comments only: no duet, no stitch */

    for (i = 0; i < (job->photo ? 1 : sizeof(interactions)
                                      / sizeof(interactions[0])); i++)
    {
        if (json_is_true(json_object_get(creator, interactions[i][0]))
            && !json_is_true(json_object_get(info, interactions[i][1])))
        {
            ngx_log_error(NGX_LOG_INFO, job->log, 0,
                          "tiktok: post %V: the creator has since disabled "
                          "this interaction; sending %s", &job->id,
                          interactions[i][1]);

            if (json_object_set_new(info, interactions[i][1], json_true())) {
                ngx_http_tiktok_job_later(job, "no memory");
                return;
            }
        }
    }

    job->info = info;

    ngx_http_tiktok_job_step(job, NGX_HTTP_TIKTOK_JOB_INIT);
}


/* commits init_started_at, then init */

static void
ngx_http_tiktok_job_begin(ngx_http_tiktok_job_t *job)
{
    ngx_str_t  params[3];

    if (job->init_started && !job->upload) {
        /*
         * An init of before a restart may have reached TikTok, which pulls
         * the video by itself: a second one could post twice.  (An
         * upload's init may be made again: TikTok publishes nothing
         * without the bytes.)
         */
        ngx_str_set(&params[0], "init_uncertain");
        ngx_http_tiktok_job_finish(job, "failed", &params[0], NULL);
        return;
    }

    /* 6 inits a minute per user: a burst of one user's posts waits */
    if (ngx_http_tiktok_job_paced(job)) {
        return;
    }

    if (job->upload) {
        ngx_str_set(&params[1], "uploading");

    } else {
        ngx_str_set(&params[1], "processing");
    }

    ngx_http_tiktok_job_sql(job, ngx_http_tiktok_job_init_sql, 3, params,
                            ngx_http_tiktok_job_init);
}


static void
ngx_http_tiktok_job_init(ngx_http_tiktok_pg_query_t *q)
{
    json_t                 *body;
    ngx_str_t               text;
    ngx_http_tiktok_job_t  *job;

    job = q->data;

    if (q->rc != NGX_OK) {
        ngx_http_tiktok_job_later(job, "database unavailable");
        return;
    }

    if (ngx_http_tiktok_job_lost(job, q)) {
        /* taken over or cancelled before anything went to TikTok */
        return;
    }

    body = ngx_http_tiktok_json_own(job->pool,
                                    ngx_http_tiktok_job_init_body(job));

    if (body == NULL
        || ngx_http_tiktok_json_encode(job->pool, body, &text) != NGX_OK)
    {
        ngx_http_tiktok_job_later(job, "no memory");
        return;
    }

    ngx_http_tiktok_job_call(job, &text);
}


static void
ngx_http_tiktok_job_inited(ngx_http_tiktok_job_t *job,
    ngx_http_tiktok_curl_req_t *req, ngx_int_t rc, ngx_uint_t kind,
    json_t *data)
{
    ngx_str_t                           params[4], reason, *code;
    const char                         *why;
    ngx_http_tiktok_job_init_answer_t   init;

    code = &job->err.code;

    if (rc == NGX_OK) {
        /* "ok" without a publish_id is as good as no answer: see below */
        rc = ngx_http_tiktok_job_init_read(job->pool, data, &init, &why);
        job->publish_id = init.publish_id;
    }

    if (rc == NGX_OK) {
        job->upload_url = init.upload_url;

        params[1] = job->publish_id;
        params[2] = job->upload_url;

        if (params[2].data == NULL) {
            ngx_str_set(&params[2], "");
        }

        ngx_http_tiktok_job_sql(job, ngx_http_tiktok_job_inited_sql, 4,
                                params, ngx_http_tiktok_job_written);
        return;
    }

    /*
     * An answer that does not say TikTok refused: none (a timeout, a
     * dropped connection), a 5xx (a gateway's or TikTok's own), an answer
     * that cannot be read, TikTok's internal_error, or "ok" without a
     * publish_id.  TikTok may or may not have created the post.  A refusal
     * with a code (a 4xx, rate_limit_exceeded, access_token_invalid, spam
     * risk ...) says nothing was created.
     */

    if (rc != NGX_DECLINED || req->status >= NGX_HTTP_INTERNAL_SERVER_ERROR
        || kind == NGX_HTTP_TIKTOK_API_INTERNAL)
    {
        if (job->upload) {
            /* it publishes nothing without the bytes: init again later */
            ngx_http_tiktok_job_later(job, "the init's answer was lost");
            return;
        }

        /* it pulls the video by itself: a second init could post twice */
        ngx_log_error(NGX_LOG_WARN, job->log, 0,
                      "tiktok: post %V: the init's answer was lost; TikTok "
                      "may have the post, so it is not sent again",
                      &job->id);
        ngx_str_set(&reason, "init_uncertain");
        ngx_http_tiktok_job_finish(job, "failed", &reason, NULL);
        return;
    }

    if (ngx_http_tiktok_job_transient(req, kind)) {
        ngx_http_tiktok_job_later(job, "TikTok could not take the post now");
        return;
    }

    /* spam risk, privacy mismatch, URL ownership (even with HTTP 200) ... */
    if (code->len == 0) {
        ngx_str_set(code, "invalid_answer");
    }

    ngx_http_tiktok_job_finish(job, "failed", code, NULL);
}


ngx_int_t
ngx_http_tiktok_job_init_read(ngx_pool_t *pool, json_t *data,
    ngx_http_tiktok_job_init_answer_t *init, const char **reason)
{
    ngx_memzero(init, sizeof(ngx_http_tiktok_job_init_answer_t));

    if (ngx_http_tiktok_json_get_str(pool, data, "publish_id",
                                     &init->publish_id)
        != NGX_OK)
    {
        *reason = "init answer without a publish_id";
        return NGX_ERROR;
    }

    /* a pull has none; an upload without one fails at its first chunk */

    if (ngx_http_tiktok_json_get_str(pool, data, "upload_url",
                                     &init->upload_url)
        != NGX_OK)
    {
        ngx_str_null(&init->upload_url);
    }

    return NGX_OK;
}


/*
 * The init's body, as TIKTOK_API.md has it for each kind of post: a video
 * (post_info and source_info; a draft, to the inbox, source_info only)
 * or photos (the content init: post_info, source_info with the images
 * and the cover, post_mode and media_type; a draft's post_info is empty,
 * the creator writes it in the app).  NULL: no memory.
 */

static json_t *
ngx_http_tiktok_job_init_body(ngx_http_tiktok_job_t *job)
{
    off_t          count;
    json_t        *source, *photos;
    json_error_t   jerr;

    if (job->photo) {
        photos = json_loadb((char *) job->photo_urls.data,
                            job->photo_urls.len, 0, &jerr);

        if (!json_is_array(photos)) {
            json_decref(photos);
            return NULL;
        }

        if (job->draft) {
            return json_pack("{s:{}, s:{s:s, s:I, s:o}, s:s, s:s}",
                             "post_info", "source_info",
                             "source", "PULL_FROM_URL",
                             "photo_cover_index", (json_int_t) job->cover,
                             "photo_images", photos,
                             "post_mode", "MEDIA_UPLOAD",
                             "media_type", "PHOTO");
        }

        return json_pack("{s:O, s:{s:s, s:I, s:o}, s:s, s:s}",
                         "post_info", job->info, "source_info",
                         "source", "PULL_FROM_URL",
                         "photo_cover_index", (json_int_t) job->cover,
                         "photo_images", photos,
                         "post_mode", "DIRECT_POST",
                         "media_type", "PHOTO");
    }

    if (job->upload) {
        (void) ngx_http_tiktok_job_chunks(job->size, &count);

        source = json_pack("{s:s, s:I, s:I, s:I}",
                           "source", "FILE_UPLOAD",
                           "video_size", (json_int_t) job->size,
                           "chunk_size", (json_int_t) job->chunk,
                           "total_chunk_count", (json_int_t) count);

    } else {
        source = json_pack("{s:s, s:s%}",
                           "source", "PULL_FROM_URL",
                           "video_url", (char *) job->video_url.data,
                           job->video_url.len);
    }

    if (job->draft) {
        /* the inbox init: no post_info */
        return json_pack("{s:o}", "source_info", source);
    }

    return json_pack("{s:O, s:o}", "post_info", job->info,
                     "source_info", source);
}


/*
 * The init's answer or a chunk's progress is committed: on with the
 * upload while bytes are left, else poll.
 */

static void
ngx_http_tiktok_job_written(ngx_http_tiktok_pg_query_t *q)
{
    ngx_http_tiktok_job_t  *job;

    job = q->data;

    if (ngx_http_tiktok_job_lost(job, q)) {
        return;
    }

    ngx_http_tiktok_job_step(job, ngx_http_tiktok_job_uploading(job)
                                  ? NGX_HTTP_TIKTOK_JOB_UPLOAD
                                  : NGX_HTTP_TIKTOK_JOB_POLL);
}


/*
 * TikTok's chunk rules for a file of size bytes: one chunk up to
 * 64,000,000 bytes; above that, chunks as large as TikTok takes
 * (64,000,000 bytes, or half the file while that makes fewer than two),
 * with the remainder in the last one (under twice a chunk, so at most
 * 128,000,000 bytes).  Each chunk costs a request and a fenced commit, so
 * fewer, larger chunks move a large file at nearly the link's speed.
 * Returns the chunk size; count (if not NULL) gets the total_chunk_count.
 * A pure function, so that fuzz/upload.c checks it.
 */

static off_t
ngx_http_tiktok_job_chunks(off_t size, off_t *count)
{
    off_t  n, chunk;

    if (size <= NGX_HTTP_TIKTOK_ONE_CHUNK_MAX) {
        n = 1;
        chunk = size;

    } else {
        chunk = ngx_min(size / 2, NGX_HTTP_TIKTOK_CHUNK_MAX);
        n = size / chunk;
    }

    if (count) {
        *count = n;
    }

    return chunk;
}


/* the length of the chunk at uploaded: the last takes the remainder */

static off_t
ngx_http_tiktok_job_chunk_len(off_t size, off_t chunk, off_t uploaded)
{
    if (size - uploaded < 2 * chunk) {
        return size - uploaded;
    }

    return chunk;
}


/*
 * Whether TikTok's uploaded_bytes (a status answer's, after a 416) is a
 * point the upload can resume from: a whole number of chunks, not past
 * the file.
 */

static ngx_uint_t
ngx_http_tiktok_job_resumable(off_t size, off_t chunk, int64_t n)
{
    return chunk && n >= 0 && n <= size && n % chunk == 0;
}


/* the next chunk of the spool file, in order, with its Content-Range */

static void
ngx_http_tiktok_job_chunk(ngx_http_tiktok_job_t *job)
{
    off_t                        len;
    u_char                      *range;
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

    len = ngx_http_tiktok_job_chunk_len(job->size, job->chunk,
                                        job->uploaded);

    req = ngx_http_tiktok_curl_req_create(job->pool, job->log);
    range = ngx_pnalloc(job->pool, 3 * NGX_OFF_T_LEN + 16);
    if (req == NULL || range == NULL) {
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
    req->handler = ngx_http_tiktok_job_answered;
    req->data = job;

    req->content_range.data = range;
    req->content_range.len = ngx_sprintf(range, "bytes %O-%O/%O",
                                         job->uploaded,
                                         job->uploaded + len - 1, job->size)
                             - range;

    ngx_http_tiktok_job_start_call(job, req);
}


static void
ngx_http_tiktok_job_chunked(ngx_http_tiktok_job_t *job,
    ngx_http_tiktok_curl_req_t *req)
{
    u_char     *p;
    ngx_str_t   params[3], reason;

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

        params[1].data = p;
        params[1].len = ngx_sprintf(p, "%O", job->uploaded) - p;

        ngx_http_tiktok_job_sql(job, ngx_http_tiktok_job_progress_sql, 3,
                                params, ngx_http_tiktok_job_written);
        return;
    }

    ngx_memzero(&job->err, sizeof(ngx_http_tiktok_api_error_t));
    job->err.endpoint = "upload_url";
    job->err.status = req->status;

    if (req->rc == NGX_OK
        && (req->status == NGX_HTTP_FORBIDDEN
            || req->status == NGX_HTTP_NOT_FOUND))
    {
        job->err.message = "the upload URL expired or is unknown";
        ngx_str_set(&reason, "upload_url_expired");
        ngx_http_tiktok_job_finish(job, "failed", &reason, NULL);
        return;
    }

    if (req->rc == NGX_OK && req->status == 416) {
        /*
         * TikTok's progress is not ours (a chunk landed but its answer was
         * lost, e.g. nginx was killed): ask TikTok how far it got.
         */
        ngx_memzero(&job->err, sizeof(ngx_http_tiktok_api_error_t));
        job->resync = 1;
        ngx_http_tiktok_job_step(job, NGX_HTTP_TIKTOK_JOB_POLL);
        return;
    }

    /* 5xx, no answer: the same chunk again, after a pause */

    job->err.message = (req->rc == NGX_OK) ? "TikTok did not take the chunk"
                                           : "TikTok could not be reached";

    if (++job->tries > NGX_HTTP_TIKTOK_CHUNK_TRIES) {
        ngx_http_tiktok_job_later(job, "the upload keeps failing");
        return;
    }

    ngx_log_error(NGX_LOG_WARN, job->log, 0,
                  "tiktok: post %V: chunk at %O failed (%l), trying again",
                  &job->id, job->uploaded, req->status);

    ngx_http_tiktok_job_pause(job, 1000 * job->tries);
}


/*
 * A pause ends here.  A wait may have outlasted the lease (or the user
 * cancelled the post meanwhile), so before anything more goes to TikTok
 * the lease is renewed under the claim's token: always before the init
 * (a second init could post twice), else once it is RENEW_AFTER old.
 */

static void
ngx_http_tiktok_job_wait_handler(ngx_event_t *ev)
{
    ngx_str_t               params[2];
    ngx_http_tiktok_job_t  *job;

    job = ev->data;

    if (ngx_http_tiktok_job_leaving()) {
        /* the scheduler hands the post back, or the exit ends the job */
        job->parked = 1;
        return;
    }

    if (job->publish_id.len
        && ngx_current_msec - job->leased < NGX_HTTP_TIKTOK_RENEW_AFTER)
    {
        ngx_http_tiktok_job_run(job);
        return;
    }

    ngx_http_tiktok_job_sql(job, ngx_http_tiktok_job_renew_sql, 2, params,
                            ngx_http_tiktok_job_renewed);
}


static void
ngx_http_tiktok_job_renewed(ngx_http_tiktok_pg_query_t *q)
{
    ngx_http_tiktok_job_t  *job;

    job = q->data;

    if (q->rc != NGX_OK) {
        /* whether the post is still ours is unknown: ask again later */
        ngx_add_timer(&job->wait, NGX_HTTP_TIKTOK_POLL);
        return;
    }

    if (ngx_http_tiktok_job_lost(job, q)) {
        return;
    }

    ngx_http_tiktok_job_run(job);
}


/* waits ms, first writing the failure that caused the wait (if any) */

static void
ngx_http_tiktok_job_pause(ngx_http_tiktok_job_t *job, ngx_msec_t ms)
{
    job->pause = ms;

    if (job->err.endpoint == NULL) {
        ngx_add_timer(&job->wait, ms);
        return;
    }

    ngx_http_tiktok_job_sql(job, NULL, 0, NULL, ngx_http_tiktok_job_paused);
}


static void
ngx_http_tiktok_job_paused(ngx_http_tiktok_pg_query_t *q)
{
    ngx_http_tiktok_job_t  *job;

    job = q->data;

    /* a lost row is logged by the pool; the failure itself was logged */

    ngx_add_timer(&job->wait, job->pause);
}


/* status polls, at most one every 3 s (TikTok allows 30 a minute) */

static void
ngx_http_tiktok_job_poll(ngx_http_tiktok_job_t *job)
{
    json_t     *body;
    ngx_str_t   text;

    /* just handed to TikTok: its webhook comes first, the poll later */
    if (job->tmcf->webhooks && job->polls == 0 && !job->resync
        && job->row != NGX_HTTP_TIKTOK_JOB_POLL)
    {
        ngx_http_tiktok_job_safety_net(job);
        return;
    }

    if (job->polls == 0 && !job->resync) {
        /*
         * From here on the post only waits for TikTok's processing, which
         * takes seconds to minutes: the claimer may give the job's slot to
         * the next due post rather than hold it up until this one is over.
         */
        if (job->polling && !job->polled) {
            job->polled = 1;
            job->polling(job);
        }

        /* TikTok needs a moment before there is anything to see */
        job->polls = 1;
        ngx_add_timer(&job->wait, NGX_HTTP_TIKTOK_POLL / 3);
        return;
    }

    if (job->polls > NGX_HTTP_TIKTOK_POLLS_MAX) {
        ngx_http_tiktok_job_later(job, "still processing at TikTok");
        return;
    }

    /* several posts of one user share the user's 30 polls a minute */
    if (ngx_http_tiktok_job_paced(job)) {
        return;
    }

    job->polls++;

    body = ngx_http_tiktok_json_own(job->pool,
               json_pack("{s:s%}", "publish_id",
                         (char *) job->publish_id.data, job->publish_id.len));

    if (body == NULL
        || ngx_http_tiktok_json_encode(job->pool, body, &text) != NGX_OK)
    {
        ngx_http_tiktok_job_done(job);
        return;
    }

    ngx_http_tiktok_job_call(job, &text);
}


static void
ngx_http_tiktok_job_polled(ngx_http_tiktok_job_t *job,
    ngx_http_tiktok_curl_req_t *req, ngx_int_t rc, ngx_uint_t kind,
    json_t *data)
{
    ngx_http_tiktok_job_status_answer_t  st;

    if (kind == NGX_HTTP_TIKTOK_API_PUBLISH_GONE) {
        /* TikTok does not know this publish for this user: it is over */
        ngx_http_tiktok_job_finish(job, "failed", &job->err.code, NULL);
        return;
    }

    if (rc == NGX_OK) {
        rc = ngx_http_tiktok_job_status_read(job->pool, data, &st,
                                             &job->err.message);
    }

    if (rc != NGX_OK) {
        /* a failed poll is only a poll: look again later */
        ngx_http_tiktok_job_pause(job, NGX_HTTP_TIKTOK_POLL * 2);
        return;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, job->log, 0,
                   "tiktok: post %V: %V, uploaded %L, downloaded %L",
                   &job->id, &st.status, st.uploaded_bytes,
                   st.downloaded_bytes);

    if (job->resync) {
        job->resync = 0;

        if (ngx_http_tiktok_job_resumable(job->size, job->chunk,
                                          st.uploaded_bytes))
        {
            ngx_log_error(NGX_LOG_WARN, job->log, 0,
                          "tiktok: post %V: TikTok has %L bytes, we had %O;"
                          " resuming from there", &job->id,
                          st.uploaded_bytes, job->uploaded);

            job->uploaded = st.uploaded_bytes;
            job->tries++;

            if (job->uploaded < job->size
                && job->tries <= NGX_HTTP_TIKTOK_CHUNK_TRIES)
            {
                ngx_http_tiktok_job_step(job, NGX_HTTP_TIKTOK_JOB_UPLOAD);
                return;
            }
        }

        if (job->uploaded < job->size) {
            ngx_http_tiktok_job_later(job, "the upload is out of step");
            return;
        }
    }

    if (ngx_http_tiktok_str_is(&st.status, "PUBLISH_COMPLETE")
        || ngx_http_tiktok_str_is(&st.status, "FAILED"))
    {
        ngx_http_tiktok_job_polled_final(job, &st);
        return;
    }

    if (job->draft
        && ngx_http_tiktok_str_is(&st.status, "SEND_TO_USER_INBOX"))
    {
        /*
         * The draft is in the creator's inbox: the rest (and whether it
         * is ever posted) is the creator's, in the TikTok app.
         */
        ngx_http_tiktok_job_finish(job, "sent_to_inbox", NULL, NULL);
        return;
    }

    if (job->tmcf->webhooks) {
        ngx_http_tiktok_job_safety_net(job);
        return;
    }

    /* processing takes long: the wait renews the lease as it goes */
    ngx_add_timer(&job->wait, NGX_HTTP_TIKTOK_POLL);
}


static void
ngx_http_tiktok_job_safety_net(ngx_http_tiktok_job_t *job)
{
    ngx_str_t  params[2];

    ngx_log_error(NGX_LOG_INFO, job->log, 0,
                  "tiktok: post %V: processing at TikTok; waiting for its "
                  "webhook", &job->id);

    ngx_http_tiktok_job_sql(job, ngx_http_tiktok_job_safety_net_sql, 2,
                            params, ngx_http_tiktok_job_finished);
}


static void
ngx_http_tiktok_job_polled_final(ngx_http_tiktok_job_t *job,
    ngx_http_tiktok_job_status_answer_t *st)
{
    u_char     *p;
    ngx_str_t   reason, share, params[3];

    if (ngx_http_tiktok_str_is(&st->status, "PUBLISH_COMPLETE")) {
        ngx_str_null(&share);

        if (st->post_id > 0 && job->username.len) {
            share.data = ngx_pnalloc(job->pool, job->username.len
                                                + NGX_INT64_LEN + 40);
            if (share.data) {
                p = ngx_sprintf(share.data,
                                "https://www.tiktok.com/@%V/video/%L",
                                &job->username, st->post_id);
                share.len = p - share.data;
            }
        }

        ngx_http_tiktok_job_finish(job, "published", NULL,
                                   share.len ? &share : NULL);
        return;
    }

    reason = st->fail_reason;

    if (reason.len == 0) {
        ngx_str_set(&reason, "failed");
    }

    if ((ngx_http_tiktok_str_is(&reason, "internal")
         || ngx_http_tiktok_str_is(&reason, "video_pull_failed")
         || ngx_http_tiktok_str_is(&reason, "photo_pull_failed"))
        && job->attempts + 1 < NGX_HTTP_TIKTOK_ATTEMPTS_MAX)
    {
        /* TikTok says another try may work: a new publish, from init */
        ngx_log_error(NGX_LOG_WARN, job->log, 0,
                      "tiktok: post %V: TikTok failed it (%V); starting "
                      "again later", &job->id, &reason);

        params[1] = reason;

        ngx_http_tiktok_job_sql(job, ngx_http_tiktok_job_again_sql, 3, params,
                                ngx_http_tiktok_job_finished);
        return;
    }

    ngx_http_tiktok_job_finish(job, "failed", &reason, NULL);
}


ngx_int_t
ngx_http_tiktok_job_status_read(ngx_pool_t *pool, json_t *data,
    ngx_http_tiktok_job_status_answer_t *st, const char **reason)
{
    json_t  *n;

    ngx_memzero(st, sizeof(ngx_http_tiktok_job_status_answer_t));

    if (ngx_http_tiktok_json_get_str(pool, data, "status", &st->status)
        != NGX_OK)
    {
        *reason = "status answer without data.status";
        return NGX_ERROR;
    }

    /* without one (or out of memory for it) the post fails as "failed" */

    if (ngx_http_tiktok_json_get_str(pool, data, "fail_reason",
                                     &st->fail_reason)
        != NGX_OK)
    {
        ngx_str_null(&st->fail_reason);
    }

    /*
     * TikTok's spelling; only for public posts, after moderation.  The ids
     * are 64-bit: jansson's integers hold them exactly, a double would not.
     */
    n = json_array_get(json_object_get(data, "publicaly_available_post_id"),
                       0);

    st->post_id = (json_is_integer(n) && json_integer_value(n) > 0)
                  ? (int64_t) json_integer_value(n) : 0;

    /* a resync resumes from uploaded_bytes, so a count or nothing */

    n = json_object_get(data, "uploaded_bytes");

    st->uploaded_bytes = (json_is_integer(n) && json_integer_value(n) >= 0)
                         ? (int64_t) json_integer_value(n) : -1;

    n = json_object_get(data, "downloaded_bytes");

    st->downloaded_bytes = (json_is_integer(n) && json_integer_value(n) >= 0)
                           ? (int64_t) json_integer_value(n) : -1;

    return NGX_OK;
}


/* under TikTok's per-user limit of the step's endpoint, or a pause and 1 */

static ngx_uint_t
ngx_http_tiktok_job_paced(ngx_http_tiktok_job_t *job)
{
    time_t                      left;
    ngx_http_tiktok_job_api_t  *api;

    if (job->tmcf->cache == NULL) {
        return 0;
    }

    api = &ngx_http_tiktok_job_api[job->state];

    left = ngx_http_tiktok_ratelimit_pace(job->tmcf->cache, job->log,
                                          &job->user,
                                          ngx_http_tiktok_job_path(job),
                                          api->limit);
    if (left == 0) {
        return 0;
    }

    ngx_add_timer(&job->wait, (ngx_msec_t) left * 1000);

    return 1;
}


/*
 * The step's endpoint: the init is the inbox's for a video draft and the
 * content init for photos (direct or draft); TikTok's limit of each is
 * the init's 6 a minute, paced apart (TIKTOK_API.md).
 */

static char *
ngx_http_tiktok_job_path(ngx_http_tiktok_job_t *job)
{
    if (job->state == NGX_HTTP_TIKTOK_JOB_INIT) {
        if (job->photo) {
            return "/v2/post/publish/content/init/";
        }

        if (job->draft) {
            return "/v2/post/publish/inbox/video/init/";
        }
    }

    return ngx_http_tiktok_job_api[job->state].path;
}


/*
 * A POST with the user's token and a JSON body to the step's endpoint of
 * TikTok's API.  An init is never resent on a reused connection (that
 * could post twice), and one that cannot start is backed off, which
 * undoes init_started_at.
 */

static void
ngx_http_tiktok_job_call(ngx_http_tiktok_job_t *job, ngx_str_t *body)
{
    char                         *path;
    u_char                       *url;
    ngx_uint_t                    init;
    ngx_http_tiktok_curl_req_t   *req;
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = job->tmcf;
    path = ngx_http_tiktok_job_path(job);
    init = (job->state == NGX_HTTP_TIKTOK_JOB_INIT);

    req = ngx_http_tiktok_curl_req_create(job->pool, job->log);
    url = ngx_pnalloc(job->pool, tmcf->api_base_url.len + ngx_strlen(path) + 1);
    if (req == NULL || url == NULL) {
        ngx_http_tiktok_job_done(job);
        return;
    }

    req->url.data = url;
    req->url.len = ngx_sprintf(url, "%V%s%Z", &tmcf->api_base_url, path)
                   - url - 1;

    req->method = "POST";
    req->bearer = job->lease.access_token;
    ngx_str_set(&req->content_type, "application/json; charset=UTF-8");
    req->body = *body;
    req->timeout = 30000;
    req->request_id = job->id;
    req->handler = ngx_http_tiktok_job_answered;
    req->data = job;
    req->fresh = init;

    ngx_http_tiktok_job_start_call(job, req);
}


/*
 * A call that libcurl would not start was never sent.  An init's
 * init_started_at is committed already: backing off undoes it, or the next
 * claim would take a pulled post for one TikTok may have (init_uncertain).
 * Any other call of a worker that is leaving (the only refusal of a
 * complete request) parks the job, and the scheduler hands its post back;
 * anything else ends the job, and the lease decides.
 */

static void
ngx_http_tiktok_job_start_call(ngx_http_tiktok_job_t *job,
    ngx_http_tiktok_curl_req_t *req)
{
    if (ngx_http_tiktok_curl_start(job->tmcf->curl, req) == NGX_OK) {
        return;
    }

    if (job->state == NGX_HTTP_TIKTOK_JOB_INIT) {
        ngx_http_tiktok_job_later(job, "the publisher is stopping");
        return;
    }

    if (ngx_http_tiktok_job_leaving()) {
        job->parked = 1;
        return;
    }

    ngx_http_tiktok_job_done(job);
}


/*
 * Every call's answer, for the step that made it, with job->err describing
 * any failure: rc is NGX_OK with data when TikTok's error.code is "ok",
 * NGX_DECLINED for a TikTok error code, NGX_ERROR for no answer or not
 * the documented JSON.
 */

static void
ngx_http_tiktok_job_answered(ngx_http_tiktok_curl_req_t *req)
{
    json_t                       *data;
    ngx_int_t                     rc;
    ngx_uint_t                    kind;
    ngx_http_tiktok_job_t        *job;
    ngx_http_tiktok_api_error_t  *err;

    job = req->data;
    err = &job->err;

    if (req->aborted) {
        if (ngx_http_tiktok_job_leaving()) {
            /*
             * A graceful exit's grace ran out mid-call: what TikTok made
             * of the call is not known, as when a lease runs out, and the
             * next claim starts from what is committed (a resync, or
             * init_uncertain); the scheduler hands the post back now.
             */
            job->parked = 1;
            return;
        }

        ngx_http_tiktok_job_done(job);
        return;
    }

    ngx_http_tiktok_metrics_curl(ngx_http_tiktok_job_path(job), req);

    if (job->state == NGX_HTTP_TIKTOK_JOB_UPLOAD) {
        ngx_http_tiktok_job_chunked(job, req);
        return;
    }

    data = NULL;

    ngx_memzero(err, sizeof(ngx_http_tiktok_api_error_t));
    err->endpoint = ngx_http_tiktok_job_path(job);
    err->status = req->status;

    if (req->rc != NGX_OK) {
        err->message = req->timed_out ? "TikTok did not answer in time"
                                      : "TikTok could not be reached";
        ngx_log_error(NGX_LOG_WARN, job->log, 0,
                      "tiktok: post %V: %s: %s: %s", &job->id, err->endpoint,
                      err->message, req->error);
        rc = NGX_ERROR;

    } else {
        rc = ngx_http_tiktok_api_answer(job->pool, job->log, req->status,
                                        &req->response, &data, err);

        if (rc != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, job->log, 0,
                          "tiktok: post %V: %s: %s, status %ui, code \"%V\", "
                          "log_id \"%V\"", &job->id, err->endpoint,
                          err->message, err->status, &err->code,
                          &err->log_id);
        }
    }

    kind = ngx_http_tiktok_api_classify(rc, req->status, &err->code);

    if (kind == NGX_HTTP_TIKTOK_API_OK) {
        ngx_memzero(err, sizeof(ngx_http_tiktok_api_error_t));
    }

    /*
     * TikTok refused the access token (an init's 5xx may have posted: see
     * job_inited): the post is backed off and the token expired in the
     * same transaction, so the next attempt refreshes it.
     */
    if (kind == NGX_HTTP_TIKTOK_API_TOKEN_INVALID
        && (job->state != NGX_HTTP_TIKTOK_JOB_INIT
            || req->status < NGX_HTTP_INTERNAL_SERVER_ERROR))
    {
        job->lease.invalid = 1;
        ngx_http_tiktok_job_later(job, "TikTok refused the access token");
        return;
    }

    switch (job->state) {

    case NGX_HTTP_TIKTOK_JOB_CREATOR:
        ngx_http_tiktok_job_creator_answered(job, req, rc, kind, data);
        return;

    case NGX_HTTP_TIKTOK_JOB_INIT:
        ngx_http_tiktok_job_inited(job, req, rc, kind, data);
        return;

    default:
        ngx_http_tiktok_job_polled(job, req, rc, kind, data);
    }
}


/*
 * A transient failure: the post is released and claimed again after a
 * back-off; after NGX_HTTP_TIKTOK_ATTEMPTS_MAX of them (about 4.5 hours)
 * it fails rather than wait forever.
 */

static void
ngx_http_tiktok_job_later(ngx_http_tiktok_job_t *job, const char *why)
{
    ngx_str_t  params[3], reason;

    if (job->attempts + 1 >= NGX_HTTP_TIKTOK_ATTEMPTS_MAX) {
        ngx_log_error(NGX_LOG_ERR, job->log, 0,
                      "tiktok: post %V: %s; giving up after %ui attempts",
                      &job->id, why, job->attempts + 1);
        ngx_str_set(&reason, "retries_exhausted");
        ngx_http_tiktok_job_finish(job, "failed", &reason, NULL);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, job->log, 0,
                  "tiktok: post %V: %s; trying again later", &job->id, why);

    params[1].data = (u_char *) why;
    params[1].len = ngx_strlen(why);

    ngx_http_tiktok_job_sql(job, ngx_http_tiktok_job_later_sql, 3, params,
                            ngx_http_tiktok_job_finished);
}


static void
ngx_http_tiktok_job_finish(ngx_http_tiktok_job_t *job, const char *status,
    ngx_str_t *reason, ngx_str_t *share_url)
{
    ngx_str_t  params[5];

    ngx_log_error(NGX_LOG_INFO, job->log, 0,
                  "tiktok: post %V %s%s%V", &job->id, status,
                  reason ? ": " : "", reason ? reason : &job->id);

    params[1].data = (u_char *) status;
    params[1].len = ngx_strlen(status);
    ngx_str_null(&params[2]);
    ngx_str_null(&params[3]);

    if (reason) {
        params[2] = *reason;
    }

    if (share_url) {
        params[3] = *share_url;
    }

    /* the spool file goes once the final state is ours and committed */
    job->final = 1;

    ngx_http_tiktok_job_sql(job, ngx_http_tiktok_job_finish_sql, 5, params,
                            ngx_http_tiktok_job_finished);
}


/* the state change that ends the job (later, again, finish) is written */

static void
ngx_http_tiktok_job_finished(ngx_http_tiktok_pg_query_t *q)
{
    ngx_http_tiktok_job_t  *job;

    job = q->data;

    if (ngx_http_tiktok_job_lost(job, q)) {
        return;
    }

    if (job->final && job->spool_path.len) {
        /* a final state: the upload is not needed any more */
        if (ngx_delete_file(job->spool_path.data) == NGX_FILE_ERROR
            && ngx_errno != NGX_ENOENT)
        {
            ngx_log_error(NGX_LOG_ERR, job->log, ngx_errno,
                          ngx_delete_file_n " \"%V\" failed",
                          &job->spool_path);
        }
    }

    ngx_http_tiktok_job_done(job);
}


/*
 * A fenced write (statement job->fence of q) that failed, or that matched
 * no row: the claim's token is no longer the post's.  Its lease ran out and
 * another job claimed it, or the user cancelled it.  Either way this job
 * must not touch it, nor call TikTok for it, again: it ends here.
 */

static ngx_uint_t
ngx_http_tiktok_job_lost(ngx_http_tiktok_job_t *job,
    ngx_http_tiktok_pg_query_t *q)
{
    char  *n;

    if (q->rc != NGX_OK) {
        /*
         * Not written, or not known to be: the post is claimed again from
         * what is committed (init_started, say).  The database gone (not
         * a statement that failed, which the lease's five minutes pace):
         * the claimer hands the claim back once it answers again.
         */
        job->orphaned = (q->rc == NGX_ERROR && !job->released);
        ngx_http_tiktok_job_done(job);
        return 1;
    }

    n = PQcmdTuples(q->res[job->fence]);

    if (n[0] != '0' || n[1] != '\0') {
        /* every fenced write renews the claim's lease */
        job->leased = ngx_current_msec;
        return 0;
    }

    ngx_log_error(NGX_LOG_WARN, job->log, 0,
                  "tiktok: post %V is no longer this job's (its lease ran "
                  "out and another worker claimed it, or it was "
                  "cancelled, or a webhook ended it): stopping", &job->id);

    ngx_http_tiktok_job_done(job);

    return 1;
}


ngx_uint_t
ngx_http_tiktok_job_idle(ngx_http_tiktok_job_t *job)
{
    return job->parked || job->wait.timer_set;
}


ngx_http_tiktok_pg_query_t *
ngx_http_tiktok_job_release_query(ngx_pool_t *pool, ngx_log_t *log,
    ngx_str_t *id, ngx_str_t *user, ngx_str_t *token,
    ngx_http_tiktok_pg_handler_pt handler, void *data)
{
    ngx_str_t                    params[2];
    ngx_http_tiktok_pg_query_t  *q;

    q = ngx_http_tiktok_pg_query_create(pool, log, user, handler, data);
    if (q == NULL) {
        return NULL;
    }

    params[0] = *id;
    params[1] = *token;

    if (ngx_http_tiktok_pg_add(q, ngx_http_tiktok_job_release_sql, 2, params)
        != NGX_OK)
    {
        return NULL;
    }

    return q;
}


void
ngx_http_tiktok_job_release(ngx_http_tiktok_job_t *job)
{
    ngx_str_t  params[2];

    if (job->released) {
        return;
    }

    job->released = 1;
    job->parked = 1;

    if (job->wait.timer_set) {
        ngx_del_timer(&job->wait);
    }

    ngx_http_tiktok_job_sql(job, ngx_http_tiktok_job_release_sql, 2, params,
                            ngx_http_tiktok_job_released);
}


static void
ngx_http_tiktok_job_released(ngx_http_tiktok_pg_query_t *q)
{
    ngx_http_tiktok_job_t  *job;

    job = q->data;

    /* not written, or no longer ours: its lease decides, as before */
    if (ngx_http_tiktok_job_lost(job, q)) {
        return;
    }

    ngx_log_error(NGX_LOG_INFO, job->log, 0,
                  "tiktok: post %V handed back: this worker is exiting",
                  &job->id);

    ngx_http_tiktok_job_done(job);
}


void
ngx_http_tiktok_job_done(ngx_http_tiktok_job_t *job)
{
    job->state = NGX_HTTP_TIKTOK_JOB_DONE;

    if (job->wait.timer_set) {
        ngx_del_timer(&job->wait);
    }

    if (job->fd != NGX_INVALID_FILE) {
        (void) ngx_close_file(job->fd);
        job->fd = NGX_INVALID_FILE;
    }

    job->ended(job);

    /* the pool's cleanups cancel anything still pending */
    ngx_destroy_pool(job->pool);
}
