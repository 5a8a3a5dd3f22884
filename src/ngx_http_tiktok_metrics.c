
/*
 * Operator metrics: the counters' layout in tiktok_cache_zone, the calls
 * that add to them, and the tiktok_metrics handler that renders them in
 * Prometheus's text format.
 *
 * One block in the zone's slab, found through the cache's shared header:
 *
 *   - counters without labels (cache hits, evictions, refreshes, ...);
 *   - a fixed table of labelled counters (requests by route and status,
 *     TikTok calls by endpoint and outcome).  A label set is written once,
 *     under the zone's mutex, and never moved or freed; every later count
 *     finds it without a lock and adds atomically;
 *   - one slot per worker process for its gauges (PostgreSQL connections,
 *     queries waiting, publisher jobs), written by that worker only and
 *     summed over the slots of live processes when rendered, so a worker
 *     that crashed stops counting at once and its slot is taken again;
 *   - the last posts-by-status counts, read by whichever worker is scraped
 *     when they are older than a few seconds (one aggregate query).
 *
 * The zone survives a reload, and the counters with it: they go on
 * counting.  A restart, or a reload that changes the zone's size (a new
 * zone), starts them at zero, which Prometheus reads as a counter reset.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_module.h"
#include "ngx_http_tiktok_metrics.h"


#define NGX_HTTP_TIKTOK_METRICS_SLOTS        128
#define NGX_HTTP_TIKTOK_METRICS_LABEL_LEN    44
#define NGX_HTTP_TIKTOK_METRICS_WORKERS      64    /* at least */
#define NGX_HTTP_TIKTOK_METRICS_STATUSES     16
#define NGX_HTTP_TIKTOK_METRICS_STATUS_LEN   24

/* posts by status are read again when older than this (seconds) */
#define NGX_HTTP_TIKTOK_METRICS_POSTS_TTL    5
/* a read started longer ago than this is given up (its worker died) */
#define NGX_HTTP_TIKTOK_METRICS_POSTS_WAIT   30
/* how often a worker copies its pool's state into its slot (ms) */
#define NGX_HTTP_TIKTOK_METRICS_SAMPLE       1000

/* the counters without labels: the header's, then these */
#define NGX_HTTP_TIKTOK_METRICS_HITS         4
#define NGX_HTTP_TIKTOK_METRICS_MISSES       5
#define NGX_HTTP_TIKTOK_METRICS_STALE        6
#define NGX_HTTP_TIKTOK_METRICS_DROPPED      7
#define NGX_HTTP_TIKTOK_METRICS_COUNTERS     8

/* the labelled families */
#define NGX_HTTP_TIKTOK_METRICS_REQUESTS     1
#define NGX_HTTP_TIKTOK_METRICS_CALLS        2
#define NGX_HTTP_TIKTOK_METRICS_WEBHOOKS     3

/* a TikTok call's outcome: the index into ngx_http_tiktok_metrics_outcomes */
#define NGX_HTTP_TIKTOK_METRICS_OK           0
#define NGX_HTTP_TIKTOK_METRICS_RATE_LIMITED 1
#define NGX_HTTP_TIKTOK_METRICS_CLIENT_ERROR 2
#define NGX_HTTP_TIKTOK_METRICS_SERVER_ERROR 3
#define NGX_HTTP_TIKTOK_METRICS_TIMEOUT      4


typedef struct {
    ngx_atomic_t                  ready;     /* the labels are written */
    ngx_atomic_t                  value;
    u_short                       family;
    u_short                       code;      /* HTTP status, or outcome */
    u_short                       len;
    u_char                        label[NGX_HTTP_TIKTOK_METRICS_LABEL_LEN];
} ngx_http_tiktok_metrics_slot_t;


typedef struct {
    ngx_atomic_t                  pid;       /* 0: free */
    ngx_atomic_t                  pg_busy;
    ngx_atomic_t                  pg_idle;
    ngx_atomic_t                  pg_waiting;
    ngx_atomic_t                  jobs;
} ngx_http_tiktok_metrics_worker_t;


typedef struct {
    u_char                        name[NGX_HTTP_TIKTOK_METRICS_STATUS_LEN];
    size_t                        len;
    uint64_t                      count;
} ngx_http_tiktok_metrics_posts_t;


typedef struct {
    ngx_atomic_t                      counters[
                                          NGX_HTTP_TIKTOK_METRICS_COUNTERS];

    /* posts by status: the counts under the zone's mutex */
    ngx_atomic_t                      posts_at;       /* read; 0: never */
    ngx_atomic_t                      posts_reading;  /* since; 0: no */
    ngx_uint_t                        nposts;
    ngx_http_tiktok_metrics_posts_t   posts[
                                          NGX_HTTP_TIKTOK_METRICS_STATUSES];

    ngx_http_tiktok_metrics_slot_t    slots[NGX_HTTP_TIKTOK_METRICS_SLOTS];

    ngx_uint_t                        nworkers;
    ngx_http_tiktok_metrics_worker_t  workers[1];     /* nworkers */
} ngx_http_tiktok_metrics_sh_t;


/*
 * Per worker process, made in init_process and held by the main conf
 * (metrics_ctx): the worker's cycle never changes, so neither does this.
 * NULL everywhere else (the master, nginx -t, a configuration without
 * tiktok_metrics) and once the worker has exited: every hook is then a
 * no-op.
 */

typedef struct {
    ngx_http_tiktok_metrics_sh_t      *sh;
    ngx_slab_pool_t                   *shpool;
    ngx_http_tiktok_metrics_worker_t  *me;         /* NULL: no slot */
    ngx_http_tiktok_main_conf_t       *tmcf;
    ngx_event_t                        timer;      /* samples the pool */
} ngx_http_tiktok_metrics_ctx_t;


static ngx_http_tiktok_metrics_ctx_t *ngx_http_tiktok_metrics_get(void);
static ngx_int_t ngx_http_tiktok_metrics_log(ngx_http_request_t *r);
static void ngx_http_tiktok_metrics_add(ngx_http_tiktok_metrics_ctx_t *ctx,
    ngx_uint_t family, u_char *label, size_t len, ngx_uint_t code);
static ngx_int_t ngx_http_tiktok_metrics_match(
    ngx_http_tiktok_metrics_slot_t *s, ngx_uint_t family, u_char *label,
    size_t len, ngx_uint_t code);
static ngx_uint_t ngx_http_tiktok_metrics_outcome(ngx_uint_t status);
static ngx_http_tiktok_metrics_worker_t *ngx_http_tiktok_metrics_claim(
    ngx_http_tiktok_metrics_sh_t *sh);
static ngx_uint_t ngx_http_tiktok_metrics_alive(ngx_pid_t pid);
static void ngx_http_tiktok_metrics_sample(ngx_event_t *ev);
static void ngx_http_tiktok_metrics_sample_pool(
    ngx_http_tiktok_metrics_ctx_t *ctx);

static ngx_int_t ngx_http_tiktok_metrics_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_tiktok_metrics_read_posts(ngx_http_request_t *r,
    ngx_http_tiktok_metrics_ctx_t *ctx);
static void ngx_http_tiktok_metrics_posts_read(ngx_http_tiktok_pg_query_t *q);
static ngx_int_t ngx_http_tiktok_metrics_send(ngx_http_request_t *r,
    ngx_http_tiktok_metrics_ctx_t *ctx);
static u_char *ngx_http_tiktok_metrics_render(
    ngx_http_tiktok_metrics_ctx_t *ctx, u_char *p, u_char *last);
static u_char *ngx_http_tiktok_metrics_family(u_char *p, u_char *last,
    const char *name, const char *type, const char *help);
static u_char *ngx_http_tiktok_metrics_labelled(
    ngx_http_tiktok_metrics_sh_t *sh, u_char *p, u_char *last,
    ngx_uint_t family);
static u_char *ngx_http_tiktok_metrics_gauges(
    ngx_http_tiktok_metrics_sh_t *sh, u_char *p, u_char *last);
static u_char *ngx_http_tiktok_metrics_posts(
    ngx_http_tiktok_metrics_ctx_t *ctx, u_char *p, u_char *last);
static u_char *ngx_http_tiktok_metrics_escape(u_char *p, u_char *last,
    u_char *s, size_t len);


static ngx_str_t  ngx_http_tiktok_metrics_outcomes[] = {
    ngx_string("ok"),
    ngx_string("rate_limited"),
    ngx_string("client_error"),
    ngx_string("server_error"),
    ngx_string("timeout")
};


/* a webhook delivery's outcome: the code of its slot */
static ngx_str_t  ngx_http_tiktok_metrics_webhook_outcomes[] = {
    ngx_string("applied"),
    ngx_string("duplicate"),
    ngx_string("ignored"),
    ngx_string("unknown_post"),
    ngx_string("unknown_account"),
    ngx_string("unknown_event"),
    ngx_string("rejected"),
    ngx_string("error"),
    ngx_null_string
};


/* always shown, 0 when no post has it; others the database has too */
static ngx_str_t  ngx_http_tiktok_metrics_statuses[] = {
    ngx_string("queued"),
    ngx_string("scheduled"),
    ngx_string("uploading"),
    ngx_string("processing"),
    ngx_string("published"),
    ngx_string("failed"),
    ngx_string("cancelled"),
    ngx_string("sent_to_inbox"),
    ngx_null_string
};


/* no row-level setting: a SECURITY DEFINER aggregate, counts only */
static const char  ngx_http_tiktok_metrics_posts_sql[] =
    "SELECT status, posts FROM tiktok.post_counts()";


char *
ngx_http_tiktok_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_tiktok_main_conf_t  *tmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_tiktok_metrics_handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_tiktok_metrics_handler;

    tmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_tiktok_module);
    tmcf->metrics = 1;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_tiktok_metrics_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt          *h;
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_tiktok_module);

    if (!tmcf->metrics) {
        return NGX_OK;
    }

    /* the counters live in the zone; posts by status come from the pool */

    if (tmcf->cache == NULL || tmcf->pg == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"tiktok_metrics\" is used but \"%s\" is not set in "
                      "the http block",
                      tmcf->cache ? "tiktok_postgres" : "tiktok_cache_zone");
        return NGX_ERROR;
    }

    /* requests are counted when they are logged: their final status */

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_tiktok_metrics_log;

    return NGX_OK;
}


ngx_int_t
ngx_http_tiktok_metrics_init_process(ngx_cycle_t *cycle)
{
    size_t                          size;
    ngx_uint_t                      n;
    ngx_core_conf_t                *ccf;
    ngx_slab_pool_t                *shpool;
    ngx_http_tiktok_metrics_sh_t   *sh;
    ngx_http_tiktok_main_conf_t    *tmcf;
    ngx_http_tiktok_metrics_ctx_t  *ctx;

    tmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_tiktok_module);

    if (tmcf == NULL || !tmcf->metrics || tmcf->cache == NULL) {
        return NGX_OK;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    /* old and new workers overlap during a reload: room for both */
    n = ngx_max(NGX_HTTP_TIKTOK_METRICS_WORKERS,
                2 * (ngx_uint_t) ccf->worker_processes + 8);

    size = offsetof(ngx_http_tiktok_metrics_sh_t, workers)
           + n * sizeof(ngx_http_tiktok_metrics_worker_t);

    shpool = tmcf->cache->shpool;

    /* the first worker of a new zone makes the block, before any entry */

    ngx_shmtx_lock(&shpool->mutex);

    sh = tmcf->cache->sh->metrics;

    if (sh == NULL) {
        sh = ngx_slab_calloc_locked(shpool, size);

        if (sh) {
            sh->nworkers = n;
            tmcf->cache->sh->metrics = sh;
        }
    }

    ngx_shmtx_unlock(&shpool->mutex);

    if (sh == NULL) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "tiktok: no room for the metrics%s; they stay empty "
                      "until nginx is restarted", shpool->log_ctx);
        return NGX_OK;
    }

    ctx = ngx_pcalloc(cycle->pool, sizeof(ngx_http_tiktok_metrics_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->sh = sh;
    ctx->shpool = shpool;
    ctx->tmcf = tmcf;

    tmcf->metrics_ctx = ctx;

    ctx->me = ngx_http_tiktok_metrics_claim(sh);

    if (ctx->me == NULL) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "tiktok: all %ui metrics slots for workers are taken; "
                      "this worker's gauges are not shown", sh->nworkers);
        return NGX_OK;
    }

    ngx_http_tiktok_metrics_sample_pool(ctx);

    ngx_http_tiktok_event_init(&ctx->timer, ngx_http_tiktok_metrics_sample,
                               ctx, cycle->log);

    /* nothing to finish: a graceful exit need not wait for it */
    ctx->timer.cancelable = 1;

    ngx_add_timer(&ctx->timer, NGX_HTTP_TIKTOK_METRICS_SAMPLE);

    return NGX_OK;
}


void
ngx_http_tiktok_metrics_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_tiktok_main_conf_t       *tmcf;
    ngx_http_tiktok_metrics_ctx_t     *ctx;
    ngx_http_tiktok_metrics_worker_t  *me;

    tmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_tiktok_module);

    if (tmcf == NULL || tmcf->metrics_ctx == NULL) {
        return;
    }

    ctx = tmcf->metrics_ctx;
    me = ctx->me;

    /* from here on every hook is a no-op */
    tmcf->metrics_ctx = NULL;

    if (me == NULL) {
        return;
    }

    if (ctx->timer.timer_set) {
        ngx_del_timer(&ctx->timer);
    }

    me->pg_busy = 0;
    me->pg_idle = 0;
    me->pg_waiting = 0;
    me->jobs = 0;

    ngx_memory_barrier();

    me->pid = 0;
}


/*
 * The worker's state for the hooks other files call with no request at
 * hand (job.c, lease.c, scheduler.c) or without passing it (api.c,
 * cache.c): the main conf through the cycle.  nginx's exit cycle, which a
 * worker runs on while its pools are destroyed, has no configuration.
 */

static ngx_http_tiktok_metrics_ctx_t *
ngx_http_tiktok_metrics_get(void)
{
    ngx_http_tiktok_main_conf_t  *tmcf;

    if (ngx_cycle->conf_ctx == NULL) {
        return NULL;
    }

    tmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_tiktok_module);

    return tmcf ? tmcf->metrics_ctx : NULL;
}


void
ngx_http_tiktok_metrics_count(ngx_uint_t counter)
{
    ngx_http_tiktok_metrics_ctx_t  *ctx;

    if (counter >= NGX_HTTP_TIKTOK_METRICS_COUNTERS) {
        return;
    }

    ctx = ngx_http_tiktok_metrics_get();

    if (ctx == NULL) {
        return;
    }

    (void) ngx_atomic_fetch_add(&ctx->sh->counters[counter], 1);
}


/*
 * The subrequest's outcome as api.c left it: no answer at all is a timeout
 * (nginx's 504) or a server error (502: refused, dropped, TLS); an answer
 * that was cut off or too large is a server error whatever its status.
 */

void
ngx_http_tiktok_metrics_api(ngx_http_tiktok_api_call_t *call)
{
    ngx_uint_t                      outcome;
    ngx_http_tiktok_metrics_ctx_t  *ctx;

    ctx = ngx_http_tiktok_metrics_get();

    if (ctx == NULL) {
        return;
    }

    if (!call->answered) {
        outcome = (call->status == NGX_HTTP_GATEWAY_TIME_OUT)
                  ? NGX_HTTP_TIKTOK_METRICS_TIMEOUT
                  : NGX_HTTP_TIKTOK_METRICS_SERVER_ERROR;

    } else if (call->rc != NGX_OK) {
        outcome = NGX_HTTP_TIKTOK_METRICS_SERVER_ERROR;

    } else {
        outcome = ngx_http_tiktok_metrics_outcome(call->status);
    }

    ngx_http_tiktok_metrics_add(ctx, NGX_HTTP_TIKTOK_METRICS_CALLS,
                                call->path.data, call->path.len, outcome);
}


void
ngx_http_tiktok_metrics_curl(const char *endpoint,
    ngx_http_tiktok_curl_req_t *req)
{
    ngx_uint_t                      outcome;
    ngx_http_tiktok_metrics_ctx_t  *ctx;

    /* a worker's exit cancelled it: nothing was learnt */
    if (req->aborted) {
        return;
    }

    ctx = ngx_http_tiktok_metrics_get();

    if (ctx == NULL) {
        return;
    }

    if (req->rc != NGX_OK) {
        outcome = req->timed_out ? NGX_HTTP_TIKTOK_METRICS_TIMEOUT
                                 : NGX_HTTP_TIKTOK_METRICS_SERVER_ERROR;

    } else {
        outcome = ngx_http_tiktok_metrics_outcome((ngx_uint_t) req->status);
    }

    if (endpoint == NULL) {
        /* an upload URL carries its upload's token: never a label */
        endpoint = "upload";
    }

    ngx_http_tiktok_metrics_add(ctx, NGX_HTTP_TIKTOK_METRICS_CALLS,
                                (u_char *) endpoint, ngx_strlen(endpoint),
                                outcome);
}


void
ngx_http_tiktok_metrics_webhook(ngx_str_t *event, const char *outcome)
{
    ngx_uint_t                      i;
    ngx_http_tiktok_metrics_ctx_t  *ctx;

    ctx = ngx_http_tiktok_metrics_get();

    if (ctx == NULL) {
        return;
    }

    for (i = 0; ngx_http_tiktok_metrics_webhook_outcomes[i].len; i++) {
        if (ngx_strcmp(ngx_http_tiktok_metrics_webhook_outcomes[i].data,
                       outcome)
            == 0)
        {
            ngx_http_tiktok_metrics_add(ctx, NGX_HTTP_TIKTOK_METRICS_WEBHOOKS,
                                        event->data, event->len, i);
            return;
        }
    }
}


void
ngx_http_tiktok_metrics_jobs(ngx_int_t delta)
{
    ngx_http_tiktok_metrics_ctx_t  *ctx;

    ctx = ngx_http_tiktok_metrics_get();

    /* the worker's own slot: only this process writes it */
    if (ctx && ctx->me) {
        ctx->me->jobs += delta;
    }
}


static ngx_uint_t
ngx_http_tiktok_metrics_outcome(ngx_uint_t status)
{
    if (status == NGX_HTTP_TOO_MANY_REQUESTS) {
        return NGX_HTTP_TIKTOK_METRICS_RATE_LIMITED;
    }

    if (status >= NGX_HTTP_INTERNAL_SERVER_ERROR || status < 100) {
        return NGX_HTTP_TIKTOK_METRICS_SERVER_ERROR;
    }

    if (status >= NGX_HTTP_BAD_REQUEST) {
        return NGX_HTTP_TIKTOK_METRICS_CLIENT_ERROR;
    }

    return NGX_HTTP_TIKTOK_METRICS_OK;
}


/*
 * The log phase: an API request's route (or "unknown": no route matched,
 * or nginx's own error answered by the module) and its final status, and
 * where its answer came from ($tiktok_cache_status).
 */

static ngx_int_t
ngx_http_tiktok_metrics_log(ngx_http_request_t *r)
{
    ngx_str_t                       unknown = ngx_string("unknown");
    ngx_str_t                      *route;
    ngx_uint_t                      status, counter;
    ngx_http_tiktok_ctx_t          *ctx;
    ngx_http_tiktok_main_conf_t    *tmcf;
    ngx_http_tiktok_metrics_ctx_t  *mctx;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);
    mctx = tmcf->metrics_ctx;

    if (mctx == NULL || r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    if (ctx == NULL) {
        /* not one of tiktok_api's */
        return NGX_OK;
    }

    /* as the access log finds it */
    status = r->err_status ? r->err_status : r->headers_out.status;

    if (status > 999) {
        status = 0;
    }

    route = ctx->route ? ctx->route : &unknown;

    ngx_http_tiktok_metrics_add(mctx, NGX_HTTP_TIKTOK_METRICS_REQUESTS,
                                route->data, route->len, status);

    if (ctx->cache_status.len == 3
        && ngx_strncmp(ctx->cache_status.data, "HIT", 3) == 0)
    {
        counter = NGX_HTTP_TIKTOK_METRICS_HITS;

    } else if (ctx->cache_status.len == 4
               && ngx_strncmp(ctx->cache_status.data, "MISS", 4) == 0)
    {
        counter = NGX_HTTP_TIKTOK_METRICS_MISSES;

    } else if (ctx->cache_status.len == 5
               && ngx_strncmp(ctx->cache_status.data, "STALE", 5) == 0)
    {
        counter = NGX_HTTP_TIKTOK_METRICS_STALE;

    } else {
        return NGX_OK;
    }

    (void) ngx_atomic_fetch_add(&mctx->sh->counters[counter], 1);

    return NGX_OK;
}


/*
 * A labelled counter: found without a lock (a slot's labels never change
 * once it is ready, and slots are taken in probe order, so the first free
 * slot ends the search); a new label set is written under the zone's
 * mutex, which only copies a few bytes.
 */

static void
ngx_http_tiktok_metrics_add(ngx_http_tiktok_metrics_ctx_t *ctx,
    ngx_uint_t family, u_char *label, size_t len, ngx_uint_t code)
{
    uint32_t                         hash;
    ngx_uint_t                       i, n, locked;
    ngx_slab_pool_t                 *shpool;
    ngx_http_tiktok_metrics_sh_t    *sh;
    ngx_http_tiktok_metrics_slot_t  *s;

    sh = ctx->sh;
    shpool = ctx->shpool;

    if (len > NGX_HTTP_TIKTOK_METRICS_LABEL_LEN || code > 0xffff) {
        (void) ngx_atomic_fetch_add(
                          &sh->counters[NGX_HTTP_TIKTOK_METRICS_DROPPED], 1);
        return;
    }

    ngx_crc32_init(hash);
    ngx_crc32_update(&hash, label, len);
    ngx_crc32_update(&hash, (u_char *) &code, sizeof(ngx_uint_t));
    ngx_crc32_update(&hash, (u_char *) &family, sizeof(ngx_uint_t));
    ngx_crc32_final(hash);

    for (locked = 0; locked < 2; locked++) {

        if (locked) {
            ngx_shmtx_lock(&shpool->mutex);
        }

        i = hash % NGX_HTTP_TIKTOK_METRICS_SLOTS;

        for (n = 0; n < NGX_HTTP_TIKTOK_METRICS_SLOTS; n++) {
            s = &sh->slots[i];

            if (!s->ready) {
                break;
            }

            /* its labels were written before ready was set */
            ngx_memory_barrier();

            if (ngx_http_tiktok_metrics_match(s, family, label, len, code)) {
                (void) ngx_atomic_fetch_add(&s->value, 1);

                if (locked) {
                    ngx_shmtx_unlock(&shpool->mutex);
                }

                return;
            }

            i = (i + 1) % NGX_HTTP_TIKTOK_METRICS_SLOTS;
        }

        if (locked && n < NGX_HTTP_TIKTOK_METRICS_SLOTS) {
            s->family = (u_short) family;
            s->code = (u_short) code;
            s->len = (u_short) len;
            ngx_memcpy(s->label, label, len);
            s->value = 1;

            ngx_memory_barrier();

            s->ready = 1;

            ngx_shmtx_unlock(&shpool->mutex);
            return;
        }

        if (locked) {
            ngx_shmtx_unlock(&shpool->mutex);
        }

        if (n == NGX_HTTP_TIKTOK_METRICS_SLOTS) {
            break;
        }
    }

    /* the table is full: said by tiktok_metrics_dropped_total */
    (void) ngx_atomic_fetch_add(&sh->counters[NGX_HTTP_TIKTOK_METRICS_DROPPED],
                                1);
}


static ngx_int_t
ngx_http_tiktok_metrics_match(ngx_http_tiktok_metrics_slot_t *s,
    ngx_uint_t family, u_char *label, size_t len, ngx_uint_t code)
{
    return s->family == family && s->code == code && s->len == len
           && ngx_memcmp(s->label, label, len) == 0;
}


/*
 * A slot for this worker's gauges: a free one, or one whose process is
 * gone (a crashed worker; its replacement takes it here).
 */

static ngx_http_tiktok_metrics_worker_t *
ngx_http_tiktok_metrics_claim(ngx_http_tiktok_metrics_sh_t *sh)
{
    ngx_pid_t                          pid;
    ngx_uint_t                         i;
    ngx_http_tiktok_metrics_worker_t  *w;

    for (i = 0; i < sh->nworkers; i++) {
        w = &sh->workers[i];
        pid = (ngx_pid_t) w->pid;

        if (pid != 0 && ngx_http_tiktok_metrics_alive(pid)) {
            continue;
        }

        if (!ngx_atomic_cmp_set(&w->pid, (ngx_atomic_uint_t) pid,
                                (ngx_atomic_uint_t) ngx_pid))
        {
            continue;
        }

        w->pg_busy = 0;
        w->pg_idle = 0;
        w->pg_waiting = 0;
        w->jobs = 0;

        return w;
    }

    return NULL;
}


static ngx_uint_t
ngx_http_tiktok_metrics_alive(ngx_pid_t pid)
{
    if (pid == ngx_pid) {
        return 1;
    }

    /* EPERM: it exists, as some other user's */
    return kill(pid, 0) == 0 || ngx_errno != NGX_ESRCH;
}


static void
ngx_http_tiktok_metrics_sample(ngx_event_t *ev)
{
    ngx_http_tiktok_metrics_sample_pool(ev->data);

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_add_timer(ev, NGX_HTTP_TIKTOK_METRICS_SAMPLE);
}


/* the worker's pool as it is now, into its slot */

static void
ngx_http_tiktok_metrics_sample_pool(ngx_http_tiktok_metrics_ctx_t *ctx)
{
    ngx_uint_t                         busy, idle, waiting;
    ngx_http_tiktok_metrics_worker_t  *me;

    me = ctx->me;

    if (me == NULL || ctx->tmcf->pg_pool == NULL) {
        return;
    }

    ngx_http_tiktok_pg_pool_stats(ctx->tmcf->pg_pool, &busy, &idle, &waiting);

    me->pg_busy = busy;
    me->pg_idle = idle;
    me->pg_waiting = waiting;
}


static ngx_int_t
ngx_http_tiktok_metrics_handler(ngx_http_request_t *r)
{
    time_t                          now, at, reading;
    ngx_int_t                       rc;
    ngx_http_tiktok_main_conf_t    *tmcf;
    ngx_http_tiktok_metrics_sh_t   *sh;
    ngx_http_tiktok_metrics_ctx_t  *ctx;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);
    ctx = tmcf->metrics_ctx;

    if (ctx == NULL) {
        /* no room in the zone (logged at start), or not a worker */
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    sh = ctx->sh;

    /* this worker's gauges as they are now; the others' are at most 1 s old */
    ngx_http_tiktok_metrics_sample_pool(ctx);

    now = ngx_time();
    at = (time_t) sh->posts_at;
    reading = (time_t) sh->posts_reading;

    if (now - at >= NGX_HTTP_TIKTOK_METRICS_POSTS_TTL
        && (reading == 0 || now - reading >= NGX_HTTP_TIKTOK_METRICS_POSTS_WAIT)
        && ngx_atomic_cmp_set(&sh->posts_reading, (ngx_atomic_uint_t) reading,
                              (ngx_atomic_uint_t) now))
    {
        /* one scrape on one worker reads them; the others show the last */

        if (ngx_http_tiktok_metrics_read_posts(r, ctx) == NGX_OK) {
            r->main->count++;
            return NGX_DONE;
        }

        sh->posts_reading = 0;
    }

    return ngx_http_tiktok_metrics_send(r, ctx);
}


static ngx_int_t
ngx_http_tiktok_metrics_read_posts(ngx_http_request_t *r,
    ngx_http_tiktok_metrics_ctx_t *ctx)
{
    ngx_http_tiktok_pg_query_t  *q;

    if (ctx->tmcf->pg_pool == NULL) {
        return NGX_ERROR;
    }

    q = ngx_http_tiktok_pg_query_create(r->pool, r->connection->log, NULL,
                                        ngx_http_tiktok_metrics_posts_read, r);
    if (q == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_tiktok_pg_add(q, ngx_http_tiktok_metrics_posts_sql, 0, NULL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_tiktok_pg_run(ctx->tmcf->pg_pool, q);
}


/*
 * The counts replace the last ones; when the database did not answer the
 * last ones stay (a scrape is not failed for it) and the next scrape
 * tries again.
 */

static void
ngx_http_tiktok_metrics_posts_read(ngx_http_tiktok_pg_query_t *q)
{
    int                               i, n, len;
    off_t                             count;
    PGresult                         *res;
    ngx_connection_t                 *c;
    ngx_http_request_t               *r;
    ngx_http_tiktok_main_conf_t      *tmcf;
    ngx_http_tiktok_metrics_sh_t     *sh;
    ngx_http_tiktok_metrics_ctx_t    *ctx;
    ngx_http_tiktok_metrics_posts_t  *ps;

    r = q->data;
    c = r->connection;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);
    ctx = tmcf->metrics_ctx;

    if (ctx == NULL) {
        /* the worker's metrics ended while the database was asked */
        ngx_http_finalize_request(r, NGX_HTTP_SERVICE_UNAVAILABLE);
        ngx_http_run_posted_requests(c);
        return;
    }

    sh = ctx->sh;

    if (q->rc == NGX_OK && q->res[0]) {
        res = q->res[0];
        n = PQntuples(res);

        ngx_shmtx_lock(&ctx->shpool->mutex);

        sh->nposts = 0;

        for (i = 0; i < n && sh->nposts < NGX_HTTP_TIKTOK_METRICS_STATUSES;
             i++)
        {
            len = PQgetlength(res, i, 0);
            count = ngx_atoof((u_char *) PQgetvalue(res, i, 1),
                              PQgetlength(res, i, 1));

            if (len == 0 || len > NGX_HTTP_TIKTOK_METRICS_STATUS_LEN
                || count == NGX_ERROR)
            {
                continue;
            }

            ps = &sh->posts[sh->nposts++];
            ngx_memcpy(ps->name, PQgetvalue(res, i, 0), len);
            ps->len = len;
            ps->count = (uint64_t) count;
        }

        ngx_shmtx_unlock(&ctx->shpool->mutex);

        sh->posts_at = (ngx_atomic_uint_t) ngx_time();
    }

    sh->posts_reading = 0;

    ngx_http_finalize_request(r, ngx_http_tiktok_metrics_send(r, ctx));
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_tiktok_metrics_send(ngx_http_request_t *r,
    ngx_http_tiktok_metrics_ctx_t *ctx)
{
    size_t        size;
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    /* the fixed text, every labelled counter, posts by status */
    size = 8192
           + NGX_HTTP_TIKTOK_METRICS_SLOTS
             * (64 + 2 * NGX_HTTP_TIKTOK_METRICS_LABEL_LEN + NGX_ATOMIC_T_LEN)
           + NGX_HTTP_TIKTOK_METRICS_STATUSES
             * (64 + 2 * NGX_HTTP_TIKTOK_METRICS_STATUS_LEN + NGX_INT64_LEN);

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_http_tiktok_metrics_render(ctx, b->pos, b->end);

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "text/plain; version=0.0.4");
    r->headers_out.content_type_len = sizeof("text/plain") - 1;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static u_char *
ngx_http_tiktok_metrics_render(ngx_http_tiktok_metrics_ctx_t *ctx, u_char *p,
    u_char *last)
{
    size_t                         total, used;
    ngx_atomic_t                  *cn;
    ngx_slab_pool_t               *shpool;
    ngx_http_tiktok_metrics_sh_t  *sh;

    sh = ctx->sh;
    shpool = ctx->shpool;
    cn = sh->counters;

    p = ngx_http_tiktok_metrics_family(p, last, "tiktok_requests_total",
            "counter", "API requests answered, by route and HTTP status.");
    p = ngx_http_tiktok_metrics_labelled(sh, p, last,
                                         NGX_HTTP_TIKTOK_METRICS_REQUESTS);

    p = ngx_http_tiktok_metrics_family(p, last, "tiktok_cache_hits_total",
            "counter", "API requests answered from the cache.");
    p = ngx_slprintf(p, last, "tiktok_cache_hits_total %uA\n",
                     cn[NGX_HTTP_TIKTOK_METRICS_HITS]);

    p = ngx_http_tiktok_metrics_family(p, last, "tiktok_cache_misses_total",
            "counter", "API requests the cache could not answer.");
    p = ngx_slprintf(p, last, "tiktok_cache_misses_total %uA\n",
                     cn[NGX_HTTP_TIKTOK_METRICS_MISSES]);

    p = ngx_http_tiktok_metrics_family(p, last, "tiktok_cache_stale_total",
            "counter", "API requests answered with an expired entry while "
                       "TikTok rate-limited the user.");
    p = ngx_slprintf(p, last, "tiktok_cache_stale_total %uA\n",
                     cn[NGX_HTTP_TIKTOK_METRICS_STALE]);

    p = ngx_http_tiktok_metrics_family(p, last,
            "tiktok_cache_evictions_total", "counter",
            "Cache entries evicted to make room in a full zone.");
    p = ngx_slprintf(p, last, "tiktok_cache_evictions_total %uA\n",
                     cn[NGX_HTTP_TIKTOK_METRICS_EVICTIONS]);

    /* whole slab pages: a page that holds any entry is used */

    ngx_shmtx_lock(&shpool->mutex);
    total = shpool->end - (u_char *) shpool;
    used = total - shpool->pfree * ngx_pagesize;
    ngx_shmtx_unlock(&shpool->mutex);

    p = ngx_http_tiktok_metrics_family(p, last,
            "tiktok_cache_zone_used_bytes", "gauge",
            "Bytes of tiktok_cache_zone in use (whole slab pages).");
    p = ngx_slprintf(p, last, "tiktok_cache_zone_used_bytes %uz\n", used);

    p = ngx_http_tiktok_metrics_family(p, last,
            "tiktok_cache_zone_size_bytes", "gauge",
            "Size of tiktok_cache_zone.");
    p = ngx_slprintf(p, last, "tiktok_cache_zone_size_bytes %uz\n", total);

    p = ngx_http_tiktok_metrics_family(p, last, "tiktok_api_calls_total",
            "counter", "Calls to TikTok's API, by endpoint and outcome.");
    p = ngx_http_tiktok_metrics_labelled(sh, p, last,
                                         NGX_HTTP_TIKTOK_METRICS_CALLS);

    p = ngx_http_tiktok_metrics_family(p, last,
            "tiktok_token_refreshes_total", "counter",
            "Access token refreshes asked of TikTok, by outcome.");
    p = ngx_slprintf(p, last,
            "tiktok_token_refreshes_total{outcome=\"ok\"} %uA\n"
            "tiktok_token_refreshes_total{outcome=\"rejected\"} %uA\n"
            "tiktok_token_refreshes_total{outcome=\"failed\"} %uA\n",
            cn[NGX_HTTP_TIKTOK_METRICS_REFRESH_OK],
            cn[NGX_HTTP_TIKTOK_METRICS_REFRESH_REJECTED],
            cn[NGX_HTTP_TIKTOK_METRICS_REFRESH_FAILED]);

    p = ngx_http_tiktok_metrics_gauges(sh, p, last);
    p = ngx_http_tiktok_metrics_posts(ctx, p, last);

    p = ngx_http_tiktok_metrics_family(p, last,
            "tiktok_webhook_deliveries_total", "counter",
            "Webhook deliveries from TikTok, by event and outcome.");
    p = ngx_http_tiktok_metrics_labelled(sh, p, last,
                                         NGX_HTTP_TIKTOK_METRICS_WEBHOOKS);

    p = ngx_http_tiktok_metrics_family(p, last,
            "tiktok_metrics_dropped_total", "counter",
            "Counts lost because the metrics' label table was full.");
    p = ngx_slprintf(p, last, "tiktok_metrics_dropped_total %uA\n",
                     cn[NGX_HTTP_TIKTOK_METRICS_DROPPED]);

    return p;
}


static u_char *
ngx_http_tiktok_metrics_family(u_char *p, u_char *last, const char *name,
    const char *type, const char *help)
{
    return ngx_slprintf(p, last, "# HELP %s %s\n# TYPE %s %s\n",
                        name, help, name, type);
}


static u_char *
ngx_http_tiktok_metrics_labelled(ngx_http_tiktok_metrics_sh_t *sh, u_char *p,
    u_char *last, ngx_uint_t family)
{
    ngx_uint_t                       i;
    ngx_http_tiktok_metrics_slot_t  *s;

    for (i = 0; i < NGX_HTTP_TIKTOK_METRICS_SLOTS; i++) {
        s = &sh->slots[i];

        if (!s->ready) {
            continue;
        }

        ngx_memory_barrier();

        if (s->family != family) {
            continue;
        }

        if (family == NGX_HTTP_TIKTOK_METRICS_REQUESTS) {
            p = ngx_slprintf(p, last, "tiktok_requests_total{endpoint=\"");
            p = ngx_http_tiktok_metrics_escape(p, last, s->label, s->len);
            p = ngx_slprintf(p, last, "\",status=\"%ui\"} %uA\n",
                             (ngx_uint_t) s->code, s->value);
            continue;
        }

        if (family == NGX_HTTP_TIKTOK_METRICS_WEBHOOKS) {
            p = ngx_slprintf(p, last,
                             "tiktok_webhook_deliveries_total{event=\"");
            p = ngx_http_tiktok_metrics_escape(p, last, s->label, s->len);
            p = ngx_slprintf(p, last, "\",outcome=\"%V\"} %uA\n",
                          &ngx_http_tiktok_metrics_webhook_outcomes[s->code],
                          s->value);
            continue;
        }

        if (s->code >= sizeof(ngx_http_tiktok_metrics_outcomes)
                       / sizeof(ngx_str_t))
        {
            continue;
        }

        p = ngx_slprintf(p, last, "tiktok_api_calls_total{endpoint=\"");
        p = ngx_http_tiktok_metrics_escape(p, last, s->label, s->len);
        p = ngx_slprintf(p, last, "\",outcome=\"%V\"} %uA\n",
                         &ngx_http_tiktok_metrics_outcomes[s->code],
                         s->value);
    }

    return p;
}


/* the live workers' slots, summed */

static u_char *
ngx_http_tiktok_metrics_gauges(ngx_http_tiktok_metrics_sh_t *sh, u_char *p,
    u_char *last)
{
    ngx_pid_t                          pid;
    ngx_uint_t                         i, n, busy, idle, waiting, jobs;
    ngx_http_tiktok_metrics_worker_t  *w;

    n = 0;
    busy = 0;
    idle = 0;
    waiting = 0;
    jobs = 0;

    for (i = 0; i < sh->nworkers; i++) {
        w = &sh->workers[i];
        pid = (ngx_pid_t) w->pid;

        if (pid == 0 || !ngx_http_tiktok_metrics_alive(pid)) {
            continue;
        }

        n++;
        busy += w->pg_busy;
        idle += w->pg_idle;
        waiting += w->pg_waiting;
        jobs += w->jobs;
    }

    p = ngx_http_tiktok_metrics_family(p, last, "tiktok_workers", "gauge",
            "Worker processes whose gauges are summed here.");
    p = ngx_slprintf(p, last, "tiktok_workers %ui\n", n);

    p = ngx_http_tiktok_metrics_family(p, last, "tiktok_pg_connections",
            "gauge", "PostgreSQL connections of the workers' pools, "
                     "running a query (busy) or free (idle).");
    p = ngx_slprintf(p, last,
                     "tiktok_pg_connections{state=\"busy\"} %ui\n"
                     "tiktok_pg_connections{state=\"idle\"} %ui\n",
                     busy, idle);

    p = ngx_http_tiktok_metrics_family(p, last, "tiktok_pg_queries_waiting",
            "gauge", "Queries waiting for a free PostgreSQL connection.");
    p = ngx_slprintf(p, last, "tiktok_pg_queries_waiting %ui\n", waiting);

    p = ngx_http_tiktok_metrics_family(p, last,
            "tiktok_publisher_jobs_in_flight", "gauge",
            "Claimed posts the workers' publishers are working on.");
    p = ngx_slprintf(p, last, "tiktok_publisher_jobs_in_flight %ui\n", jobs);

    return p;
}


static u_char *
ngx_http_tiktok_metrics_posts(ngx_http_tiktok_metrics_ctx_t *ctx, u_char *p,
    u_char *last)
{
    uint64_t                          count;
    ngx_str_t                        *st;
    ngx_uint_t                        i, nposts;
    ngx_http_tiktok_metrics_sh_t     *sh;
    ngx_http_tiktok_metrics_posts_t   posts[NGX_HTTP_TIKTOK_METRICS_STATUSES];

    sh = ctx->sh;

    p = ngx_http_tiktok_metrics_family(p, last, "tiktok_posts", "gauge",
            "Posts of every user by status, read at most 5 seconds ago.");

    if (sh->posts_at == 0) {
        /* never read (the database has not answered yet): no samples */
        return p;
    }

    /* copied out under the mutex, written out after */

    ngx_shmtx_lock(&ctx->shpool->mutex);
    nposts = sh->nposts;
    ngx_memcpy(posts, sh->posts, nposts * sizeof(posts[0]));
    ngx_shmtx_unlock(&ctx->shpool->mutex);

    for (st = ngx_http_tiktok_metrics_statuses; st->len; st++) {
        count = 0;

        for (i = 0; i < nposts; i++) {
            if (posts[i].len == st->len
                && ngx_strncmp(posts[i].name, st->data, st->len) == 0)
            {
                count = posts[i].count;
                posts[i].len = 0;
                break;
            }
        }

        p = ngx_slprintf(p, last, "tiktok_posts{status=\"%V\"} %uL\n",
                         st, count);
    }

    /* statuses this module does not know yet, as the database has them */

    for (i = 0; i < nposts; i++) {
        if (posts[i].len == 0) {
            /* shown above */
            continue;
        }

        p = ngx_slprintf(p, last, "tiktok_posts{status=\"");
        p = ngx_http_tiktok_metrics_escape(p, last, posts[i].name,
                                           posts[i].len);
        p = ngx_slprintf(p, last, "\"} %uL\n", posts[i].count);
    }

    return p;
}


/* a label value as the text format wants it: \\, \" and \n escaped */

static u_char *
ngx_http_tiktok_metrics_escape(u_char *p, u_char *last, u_char *s,
    size_t len)
{
    size_t  i;

    for (i = 0; i < len && p + 2 <= last; i++) {
        switch (s[i]) {

        case '\\':
        case '"':
            *p++ = '\\';
            *p++ = s[i];
            break;

        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;

        default:
            *p++ = s[i];
        }
    }

    return p;
}
