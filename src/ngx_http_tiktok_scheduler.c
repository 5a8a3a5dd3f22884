
/*
 * The publisher's per-worker scheduler: every worker claims due posts
 * (tiktok.claim_posts_media, FOR UPDATE SKIP LOCKED with a lease and a
 * fencing token) on a timer and when a post is queued (NOTIFY
 * tiktok_publish), and starts a job (ngx_http_tiktok_job.c) for each, at
 * most tiktok_scheduler batch= at a time.  A job whose post is in TikTok's
 * hands, only polling its status, no longer counts against the batch: a
 * thousand posts due at once would otherwise be initialised a batch per
 * TikTok's processing time.  A slot that frees up after a claim that took
 * all it asked for (more may be due) is filled at once, not at the next
 * tick.  Claims are handed back rather than left to their leases when the
 * worker exits gracefully (sched_watch) and when a job ended because the
 * database was gone (sched_orphan).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_job.h"
#include "ngx_http_tiktok_metrics.h"
#include "ngx_http_tiktok_scheduler.h"


typedef struct ngx_http_tiktok_sched_s  ngx_http_tiktok_sched_t;


/*
 * A post whose job ended because the database was gone, its claim still
 * on it: handed back when the database answers again (sched_orphan).
 */
typedef struct {
    ngx_queue_t                   queue;
    ngx_pool_t                   *pool;         /* its own: the strings */
    ngx_http_tiktok_sched_t      *sched;
    ngx_str_t                     id;
    ngx_str_t                     user;
    ngx_str_t                     token;
    ngx_pool_t                   *attempt;      /* the release under way */
} ngx_http_tiktok_orphan_t;


struct ngx_http_tiktok_sched_s {
    ngx_http_tiktok_main_conf_t  *tmcf;
    ngx_event_t                   timer;
    ngx_event_t                   watch;        /* not cancelable */
    ngx_queue_t                   orphans;      /* ngx_http_tiktok_orphan_t */
    ngx_uint_t                    norphans;
    ngx_str_t                     worker;       /* host:pid, claimed_by */
    ngx_uint_t                    running;      /* not yet polling */
    ngx_uint_t                    asked;        /* by the claim under way */
    ngx_queue_t                   jobs;         /* every running job */
    unsigned                      claiming:1;
    unsigned                      full:1;       /* the last claim was */
    unsigned                      again:1;      /* a slot freed meanwhile */
};


static void ngx_http_tiktok_sched_tick(ngx_event_t *ev);
static void ngx_http_tiktok_sched_watch(ngx_event_t *ev);
static void ngx_http_tiktok_sched_claimed(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_sched_polling(ngx_http_tiktok_job_t *job);
static void ngx_http_tiktok_sched_ended(ngx_http_tiktok_job_t *job);
static void ngx_http_tiktok_sched_freed(ngx_http_tiktok_sched_t *s);
static void ngx_http_tiktok_sched_orphan(ngx_http_tiktok_sched_t *s,
    ngx_http_tiktok_job_t *job);
static void ngx_http_tiktok_sched_orphans(ngx_http_tiktok_sched_t *s);
static void ngx_http_tiktok_sched_unorphaned(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_sched_orphan_free(ngx_http_tiktok_orphan_t *o);


/* how soon a graceful exit is noticed and the jobs hand their posts back */
#define NGX_HTTP_TIKTOK_SCHED_WATCH    250

/* claims kept to hand back; past this many their leases decide */
#define NGX_HTTP_TIKTOK_ORPHANS_MAX    1024


static const char  ngx_http_tiktok_claim_sql[] =
    "SELECT id, user_id, source, video_url, spool_path, video_size,"
    " content_type, post_info::text, publish_id, upload_url, uploaded_bytes,"
    " init_started, attempts, creator_username, claim_token, mode,"
    " media_type, photo_urls::text, photo_cover_index"
    " FROM tiktok.claim_posts_media($1, $2::integer,"
    " '" NGX_HTTP_TIKTOK_JOB_LEASE "')";


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
    ngx_http_tiktok_event_init(&s->timer, ngx_http_tiktok_sched_tick, s,
                               cycle->log);
    s->timer.cancelable = 1;

    /* not cancelable: holds a gracefully exiting worker (see sched_watch) */
    ngx_http_tiktok_event_init(&s->watch, ngx_http_tiktok_sched_watch, s,
                               cycle->log);

    ngx_queue_init(&s->jobs);
    ngx_queue_init(&s->orphans);

    tmcf->scheduler_ctx = s;

    /* workers start apart so they do not all claim at the same moment */
    ngx_add_timer(&s->timer, 200 + ngx_random() % tmcf->scheduler_interval);

    return NGX_OK;
}


/*
 * A worker's exit: a job in a cancelable pause (or waiting on a call that
 * the exit is about to cancel) would never run again, so its pool would
 * never be freed.  Each is ended here, before libcurl and the pool go; its
 * lease runs out and another worker carries on from the committed state.
 * A graceful exit has handed every job it could back already (sched_watch):
 * what is left here is a fast shutdown's, or one the database did not
 * answer for.
 */

void
ngx_http_tiktok_scheduler_exit(ngx_http_tiktok_main_conf_t *tmcf)
{
    ngx_queue_t              *q;
    ngx_http_tiktok_sched_t  *s = tmcf->scheduler_ctx;

    if (s == NULL) {
        return;
    }

    if (s->timer.timer_set) {
        ngx_del_timer(&s->timer);
    }

    if (s->watch.timer_set) {
        ngx_del_timer(&s->watch);
    }

    while (!ngx_queue_empty(&s->jobs)) {
        q = ngx_queue_head(&s->jobs);
        ngx_http_tiktok_job_done(ngx_queue_data(q, ngx_http_tiktok_job_t,
                                                queue));
    }

    /* claims not yet handed back: their leases run out */
    while (!ngx_queue_empty(&s->orphans)) {
        q = ngx_queue_head(&s->orphans);
        ngx_http_tiktok_sched_orphan_free(
            ngx_queue_data(q, ngx_http_tiktok_orphan_t, queue));
    }
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

    ngx_http_tiktok_sched_orphans(s);

    if (s->claiming || s->running >= s->tmcf->scheduler_batch) {
        return;
    }

    pool = ngx_create_pool(1024, ev->log);
    if (pool == NULL) {
        return;
    }

    q = ngx_http_tiktok_pg_query_create(pool, ev->log, NULL,
                                        ngx_http_tiktok_sched_claimed, s);
    p = ngx_pnalloc(pool, NGX_INT_T_LEN);
    if (q == NULL || p == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    s->asked = s->tmcf->scheduler_batch - s->running;

    params[0] = s->worker;
    params[1].data = p;
    params[1].len = ngx_sprintf(p, "%ui", s->asked) - p;

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
    ngx_http_tiktok_job_t    *job;
    ngx_http_tiktok_sched_t  *s;

    s = q->data;
    s->claiming = 0;
    s->full = 0;

    if (q->rc == NGX_OK) {
        n = PQntuples(q->res[0]);

        /* as many as asked for: more may be due than one claim took */
        s->full = ((ngx_uint_t) n == s->asked);

        for (i = 0; i < n; i++) {
            job = ngx_http_tiktok_job_create(s->tmcf, s->timer.log,
                                             q->res[0], i,
                                             ngx_http_tiktok_sched_ended, s);
            if (job == NULL) {
                continue;
            }

            job->polling = ngx_http_tiktok_sched_polling;

            s->running++;
            ngx_http_tiktok_metrics_jobs(1);
            ngx_queue_insert_tail(&s->jobs, &job->queue);

            ngx_http_tiktok_job_start(job);
        }

        if (!ngx_queue_empty(&s->jobs) && !s->watch.timer_set) {
            ngx_add_timer(&s->watch, NGX_HTTP_TIKTOK_SCHED_WATCH);
        }
    }

    ngx_destroy_pool(q->pool);

    if (s->again) {
        s->again = 0;
        ngx_http_tiktok_sched_freed(s);
    }
}


/*
 * Every NGX_HTTP_TIKTOK_SCHED_WATCH ms while the worker has jobs.  Being
 * not cancelable, it keeps a gracefully exiting worker (nginx -s reload,
 * quit) alive until each job, once between steps, has handed its post
 * back (ngx_http_tiktok_job_release): another worker, of the new
 * generation or another nginx, carries on at once from what is committed,
 * instead of after the claim's five-minute lease.  A job mid-call
 * finishes its step first (libcurl's own grace bounds that), and
 * worker_shutdown_timeout bounds the whole.
 */

static void
ngx_http_tiktok_sched_watch(ngx_event_t *ev)
{
    ngx_queue_t              *q, *next;
    ngx_http_tiktok_job_t    *job;
    ngx_http_tiktok_sched_t  *s;

    s = ev->data;

    if (ngx_queue_empty(&s->jobs)) {
        return;
    }

    if (ngx_exiting) {
        for (q = ngx_queue_head(&s->jobs);
             q != ngx_queue_sentinel(&s->jobs);
             q = next)
        {
            /* a release that cannot start ends its job, and unlinks it */
            next = ngx_queue_next(q);
            job = ngx_queue_data(q, ngx_http_tiktok_job_t, queue);

            if (ngx_http_tiktok_job_idle(job)) {
                ngx_http_tiktok_job_release(job);
            }
        }

        if (ngx_queue_empty(&s->jobs)) {
            return;
        }
    }

    ngx_add_timer(ev, NGX_HTTP_TIKTOK_SCHED_WATCH);
}


/* a job only polls now: its slot is free for the next claim */

static void
ngx_http_tiktok_sched_polling(ngx_http_tiktok_job_t *job)
{
    ngx_http_tiktok_sched_t  *s = job->data;

    s->running--;
    ngx_http_tiktok_sched_freed(s);
}


/* a job is over: its slot, if it still held one, is free */

static void
ngx_http_tiktok_sched_ended(ngx_http_tiktok_job_t *job)
{
    ngx_http_tiktok_sched_t  *s = job->data;

    if (!job->polled) {
        s->running--;
        ngx_http_tiktok_sched_freed(s);
    }

    ngx_http_tiktok_metrics_jobs(-1);
    ngx_queue_remove(&job->queue);

    if (job->orphaned && !ngx_exiting && !ngx_terminate) {
        ngx_http_tiktok_sched_orphan(s, job);
    }
}


/*
 * A job ended because the database was gone (a write not answered: the
 * connection broke, PostgreSQL restarted, the query timed out), its claim
 * still on the post.  Rather than leave the post to the claim's
 * five-minute lease, its id, user and token are kept here and the claim
 * is cleared under that token at the next tick the database answers;
 * another claim then carries on from what is committed.  A write that did
 * commit, or a claim another worker took meanwhile, makes the release
 * match nothing.
 */

static void
ngx_http_tiktok_sched_orphan(ngx_http_tiktok_sched_t *s,
    ngx_http_tiktok_job_t *job)
{
    ngx_pool_t                *pool;
    ngx_http_tiktok_orphan_t  *o;

    if (s->norphans >= NGX_HTTP_TIKTOK_ORPHANS_MAX) {
        return;
    }

    pool = ngx_create_pool(512, s->timer.log);
    if (pool == NULL) {
        return;
    }

    o = ngx_pcalloc(pool, sizeof(ngx_http_tiktok_orphan_t));
    if (o == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    o->id.len = job->id.len;
    o->id.data = ngx_pstrdup(pool, &job->id);
    o->user.len = job->user.len;
    o->user.data = ngx_pstrdup(pool, &job->user);
    o->token.len = job->claim_token.len;
    o->token.data = ngx_pstrdup(pool, &job->claim_token);

    if (o->id.data == NULL || o->user.data == NULL || o->token.data == NULL)
    {
        ngx_destroy_pool(pool);
        return;
    }

    o->pool = pool;
    o->sched = s;

    ngx_queue_insert_tail(&s->orphans, &o->queue);
    s->norphans++;
}


static void
ngx_http_tiktok_sched_orphans(ngx_http_tiktok_sched_t *s)
{
    ngx_pool_t                  *pool;
    ngx_queue_t                 *q;
    ngx_http_tiktok_orphan_t    *o;
    ngx_http_tiktok_pg_query_t  *pq;

    for (q = ngx_queue_head(&s->orphans);
         q != ngx_queue_sentinel(&s->orphans);
         q = ngx_queue_next(q))
    {
        o = ngx_queue_data(q, ngx_http_tiktok_orphan_t, queue);

        if (o->attempt) {
            continue;
        }

        /* a pool for each try: a long outage must not grow the orphan's */
        pool = ngx_create_pool(1024, s->timer.log);
        if (pool == NULL) {
            return;
        }

        pq = ngx_http_tiktok_job_release_query(pool, s->timer.log, &o->id,
                                               &o->user, &o->token,
                                               ngx_http_tiktok_sched_unorphaned,
                                               o);
        if (pq == NULL
            || ngx_http_tiktok_pg_run(s->tmcf->pg_pool, pq) != NGX_OK)
        {
            ngx_destroy_pool(pool);
            return;
        }

        o->attempt = pool;
    }
}


static void
ngx_http_tiktok_sched_unorphaned(ngx_http_tiktok_pg_query_t *q)
{
    char                      *n;
    ngx_http_tiktok_orphan_t  *o;

    o = q->data;

    if (q->rc == NGX_ERROR) {
        /* still gone: the next tick tries again */
        o->attempt = NULL;
        ngx_destroy_pool(q->pool);
        return;
    }

    if (q->rc == NGX_OK) {
        n = PQcmdTuples(q->res[q->nstmts - 1]);

        ngx_log_error(NGX_LOG_INFO, q->log, 0,
                      "tiktok: post %V %s after the database came back",
                      &o->id, (n[0] == '1' && n[1] == '\0')
                              ? "handed back" : "was no longer this worker's");
    }

    ngx_http_tiktok_sched_orphan_free(o);
}


static void
ngx_http_tiktok_sched_orphan_free(ngx_http_tiktok_orphan_t *o)
{
    ngx_http_tiktok_sched_t  *s;

    s = o->sched;

    ngx_queue_remove(&o->queue);
    s->norphans--;

    /* a release still under way is cancelled with its pool */
    if (o->attempt) {
        ngx_destroy_pool(o->attempt);
    }

    ngx_destroy_pool(o->pool);
}


/*
 * A slot is free: when the last claim took all it asked for, more posts
 * may be due now, so claim again at once (after the claim under way, if
 * there is one) rather than at the next tick.
 */

static void
ngx_http_tiktok_sched_freed(ngx_http_tiktok_sched_t *s)
{
    if (s->claiming) {
        s->again = 1;
        return;
    }

    if (s->full) {
        ngx_http_tiktok_scheduler_kick(s->tmcf);
    }
}
