
/*
 * The listener: one dedicated PostgreSQL connection per worker
 * (tiktok_postgres ... "listen=conninfo", default the main conninfo).
 *
 * The pool's connections do not LISTEN: behind a transaction pooler
 * (PgBouncer, Supavisor) a LISTEN lands on whichever server connection the
 * pooler picked, and the notifications that later reach that server
 * connection are dropped.  This connection LISTENs to tiktok_purge and
 * tiktok_publish, and because a notification can be lost anyway (sent
 * while the listener reconnects, or dropped by a pooler) it also reads the
 * purge records newer than the last one the node applied: as soon as it
 * has (re)connected, after each tiktok_purge, and every few seconds.  The
 * newest applied id lives in the cache zone, which the node's workers
 * share.  A probe NOTIFY sent through the pool tells whether notifications
 * reach the listener at all; when they do not, a warning says so once.
 *
 * One query at a time, in libpq's plain (not pipeline) mode, on a
 * connection of ngx_http_tiktok_pg.c like the pool's; what is here is what
 * the listener does with it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_module.h"
#include "ngx_http_tiktok_scheduler.h"


/* the query in flight */
#define NGX_HTTP_TIKTOK_LISTEN_Q_LISTEN    1
#define NGX_HTTP_TIKTOK_LISTEN_Q_REPLAY    2
#define NGX_HTTP_TIKTOK_LISTEN_Q_EXPIRE    3

/* purge records are read this often whatever the notifications do */
#define NGX_HTTP_TIKTOK_LISTEN_POLL        3000
/* reconnecting: from this, doubling, up to the max */
#define NGX_HTTP_TIKTOK_LISTEN_BACKOFF     200
#define NGX_HTTP_TIKTOK_LISTEN_BACKOFF_MAX 3000
/* how long a probe NOTIFY may take to come back */
#define NGX_HTTP_TIKTOK_LISTEN_PROBE       5000
/* probes per connection that must come back, this far apart */
#define NGX_HTTP_TIKTOK_LISTEN_PROBES      3
#define NGX_HTTP_TIKTOK_LISTEN_REPROBE     20000
/* records read per query */
#define NGX_HTTP_TIKTOK_LISTEN_BATCH       "1000"
#define NGX_HTTP_TIKTOK_LISTEN_BATCH_N     1000
/* old records are deleted this often, and kept at least a day */
#define NGX_HTTP_TIKTOK_LISTEN_EXPIRE      600
#define NGX_HTTP_TIKTOK_LISTEN_KEEP_MIN    86400


struct ngx_http_tiktok_listen_s {
    ngx_http_tiktok_pg_conn_t      conn;       /* quiet: in an outage */
    ngx_http_tiktok_main_conf_t   *tmcf;
    ngx_uint_t                     query;

    ngx_event_t                    timer;      /* reconnect, poll */
    ngx_event_t                    probe;      /* probe not back in time */

    ngx_msec_t                     backoff;
    time_t                         expired;    /* last purges_expire */
    ngx_uint_t                     rows;       /* read by the replay */
    ngx_uint_t                     probes;

    u_char                         buf[NGX_INT64_LEN * 2 + 2];
    ngx_str_t                      token;      /* the probe's, in buf */

    ngx_uint_t                     probes_back; /* on this connection */

    unsigned                       replay:1;   /* another replay is due */
    unsigned                       probe_due:1;
    unsigned                       probing:1;
    unsigned                       warned:1;
    unsigned                       stopped:1;
};


static void ngx_http_tiktok_listen_timer_handler(ngx_event_t *ev);
static void ngx_http_tiktok_listen_probe_handler(ngx_event_t *ev);
static void ngx_http_tiktok_listen_connected(ngx_http_tiktok_pg_conn_t *pc,
    ngx_int_t rc);
static void ngx_http_tiktok_listen_result(ngx_http_tiktok_pg_conn_t *pc,
    PGresult *res);
static void ngx_http_tiktok_listen_done(ngx_http_tiktok_pg_conn_t *pc);
static void ngx_http_tiktok_listen_notify(ngx_http_tiktok_pg_conn_t *pc,
    PGnotify *n);
static void ngx_http_tiktok_listen_closed(ngx_http_tiktok_pg_conn_t *pc,
    u_char *why);
static void ngx_http_tiktok_listen_next(ngx_http_tiktok_listen_t *l);
static void ngx_http_tiktok_listen_send(ngx_http_tiktok_listen_t *l,
    ngx_uint_t query);
static void ngx_http_tiktok_listen_purge(ngx_http_tiktok_listen_t *l,
    u_char *user, size_t len);
static void ngx_http_tiktok_listen_probe_start(ngx_http_tiktok_listen_t *l);
static void ngx_http_tiktok_listen_probe_sent(ngx_http_tiktok_pg_query_t *q);


static const char  ngx_http_tiktok_listen_sql[] =
    "LISTEN tiktok_purge; LISTEN tiktok_publish; LISTEN tiktok_probe";

static const char  ngx_http_tiktok_listen_replay_sql[] =
    "SELECT id, user_id FROM tiktok.purges_after($1, $2)";

static const char  ngx_http_tiktok_listen_expire_sql[] =
    "SELECT tiktok.purges_expire(make_interval(secs => $1::bigint))";

static const char  ngx_http_tiktok_listen_probe_sql[] =
    "SELECT pg_notify('tiktok_probe', $1)";


ngx_http_tiktok_listen_t *
ngx_http_tiktok_listen_start(ngx_cycle_t *cycle, void *conf)
{
    ngx_http_tiktok_main_conf_t *tmcf = conf;

    ngx_http_tiktok_listen_t  *l;

    l = ngx_pcalloc(cycle->pool, sizeof(ngx_http_tiktok_listen_t));
    if (l == NULL) {
        return NULL;
    }

    l->tmcf = tmcf;
    l->backoff = NGX_HTTP_TIKTOK_LISTEN_BACKOFF;

    ngx_http_tiktok_event_init(&l->timer, ngx_http_tiktok_listen_timer_handler,
                               l, cycle->log);
    l->timer.cancelable = 1;

    ngx_http_tiktok_event_init(&l->probe, ngx_http_tiktok_listen_probe_handler,
                               l, cycle->log);
    l->probe.cancelable = 1;

    ngx_http_tiktok_pg_conn_init(&l->conn,
                                 tmcf->pg_listen ? tmcf->pg_listen : tmcf->pg,
                                 cycle->log, "listener");
    l->conn.connected = ngx_http_tiktok_listen_connected;
    l->conn.result = ngx_http_tiktok_listen_result;
    l->conn.notify = ngx_http_tiktok_listen_notify;
    l->conn.idle = ngx_http_tiktok_listen_done;
    l->conn.closed = ngx_http_tiktok_listen_closed;
    l->conn.data = l;

    ngx_add_timer(&l->timer, 1);

    return l;
}


void
ngx_http_tiktok_listen_stop(ngx_http_tiktok_listen_t *l)
{
    l->stopped = 1;

    if (l->timer.timer_set) {
        ngx_del_timer(&l->timer);
    }

    if (l->probe.timer_set) {
        ngx_del_timer(&l->probe);
    }

    ngx_http_tiktok_pg_conn_close(&l->conn, NULL);
}


/* closed: reconnect; idle: read the purge records (the fallback) */

static void
ngx_http_tiktok_listen_timer_handler(ngx_event_t *ev)
{
    ngx_http_tiktok_listen_t  *l = ev->data;

    if (ngx_exiting || ngx_terminate || l->stopped) {
        return;
    }

    if (l->conn.state == NGX_HTTP_TIKTOK_PG_CLOSED) {
        /* a failure closes it again, and that sets the timer */
        (void) ngx_http_tiktok_pg_conn_connect(&l->conn);
        return;
    }

    /* idle: the replay now; otherwise after what is in flight */

    l->replay = 1;
    ngx_http_tiktok_listen_next(l);

    if (!l->timer.timer_set && l->conn.state != NGX_HTTP_TIKTOK_PG_CLOSED) {
        ngx_add_timer(&l->timer, NGX_HTTP_TIKTOK_LISTEN_POLL);
    }
}


/* open: LISTEN first; a failed connect has set the reconnect timer */

static void
ngx_http_tiktok_listen_connected(ngx_http_tiktok_pg_conn_t *pc, ngx_int_t rc)
{
    if (rc == NGX_OK) {
        ngx_http_tiktok_listen_send(pc->data, NGX_HTTP_TIKTOK_LISTEN_Q_LISTEN);
    }
}


static void
ngx_http_tiktok_listen_result(ngx_http_tiktok_pg_conn_t *pc, PGresult *res)
{
    int                        i, n;
    off_t                      id, newest;
    ngx_http_tiktok_listen_t  *l;

    l = pc->data;

    if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
        ngx_http_tiktok_pg_conn_failed(pc, pc->log, res);
    }

    if (l->query != NGX_HTTP_TIKTOK_LISTEN_Q_REPLAY
        || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQnfields(res) != 2)
    {
        PQclear(res);
        return;
    }

    n = PQntuples(res);
    l->rows = n;
    newest = 0;

    for (i = 0; i < n; i++) {
        id = ngx_atoof((u_char *) PQgetvalue(res, i, 0),
                       PQgetlength(res, i, 0));
        if (id == NGX_ERROR) {
            continue;
        }

        ngx_http_tiktok_listen_purge(l, (u_char *) PQgetvalue(res, i, 1),
                                     PQgetlength(res, i, 1));
        newest = id;
    }

    PQclear(res);

    /* only after the purges: another worker may read it at once */

    if (newest && l->tmcf->cache) {
        ngx_http_tiktok_cache_purge_advance(l->tmcf->cache, (int64_t) newest);
    }
}


/*
 * Idle: a query finished, or a notification came.  After the LISTEN the
 * node catches up, then idles.
 */

static void
ngx_http_tiktok_listen_done(ngx_http_tiktok_pg_conn_t *pc)
{
    ngx_uint_t                 level;
    ngx_http_tiktok_listen_t  *l;

    l = pc->data;

    switch (l->query) {

    case NGX_HTTP_TIKTOK_LISTEN_Q_LISTEN:
        /* after an outage at notice level, so that its end shows */
        level = pc->quiet ? NGX_LOG_NOTICE : NGX_LOG_INFO;

        ngx_log_error(level, pc->log, 0,
                      "tiktok: listener connected, server version %d",
                      PQserverVersion(pc->pgconn));

        pc->quiet = 0;
        l->backoff = NGX_HTTP_TIKTOK_LISTEN_BACKOFF;
        l->replay = 1;
        l->probes_back = 0;
        l->probe_due = 1;
        l->expired = 0;           /* and old records go, after the replay */

        if (l->timer.timer_set) {
            ngx_del_timer(&l->timer);
        }

        ngx_add_timer(&l->timer, NGX_HTTP_TIKTOK_LISTEN_POLL);
        break;

    case NGX_HTTP_TIKTOK_LISTEN_Q_REPLAY:
        if (l->rows == NGX_HTTP_TIKTOK_LISTEN_BATCH_N) {
            /* more where these came from */
            l->replay = 1;
        }

        break;

    default:
        break;
    }

    l->query = 0;

    ngx_http_tiktok_listen_next(l);
}


static void
ngx_http_tiktok_listen_next(ngx_http_tiktok_listen_t *l)
{
    if (l->conn.state != NGX_HTTP_TIKTOK_PG_IDLE) {
        return;
    }

    if (l->replay && l->tmcf->cache) {
        l->replay = 0;
        ngx_http_tiktok_listen_send(l, NGX_HTTP_TIKTOK_LISTEN_Q_REPLAY);
        return;
    }

    l->replay = 0;

    if (ngx_time() - l->expired >= NGX_HTTP_TIKTOK_LISTEN_EXPIRE) {
        l->expired = ngx_time();
        ngx_http_tiktok_listen_send(l, NGX_HTTP_TIKTOK_LISTEN_Q_EXPIRE);
        return;
    }

    if (l->probe_due) {
        /*
         * Probed while this connection has nothing in flight: a pooler
         * forwards what arrives on a server connection to the client it
         * is lent to at that moment, so a probe that met a query of ours
         * could come back even through one.
         */
        l->probe_due = 0;
        ngx_http_tiktok_listen_probe_start(l);
    }
}


static void
ngx_http_tiktok_listen_send(ngx_http_tiktok_listen_t *l, ngx_uint_t query)
{
    int           ok;
    time_t        keep;
    u_char        after[NGX_INT64_LEN + 1], secs[NGX_TIME_T_LEN + 1];
    PGconn       *pgconn;
    const char   *values[2];

    pgconn = l->conn.pgconn;

    switch (query) {

    case NGX_HTTP_TIKTOK_LISTEN_Q_LISTEN:
        ok = PQsendQuery(pgconn, ngx_http_tiktok_listen_sql);
        break;

    case NGX_HTTP_TIKTOK_LISTEN_Q_REPLAY:
        ngx_sprintf(after, "%L%Z",
                    ngx_http_tiktok_cache_purge_applied(l->tmcf->cache));
        values[0] = (const char *) after;
        values[1] = NGX_HTTP_TIKTOK_LISTEN_BATCH;

        ok = PQsendQueryParams(pgconn, ngx_http_tiktok_listen_replay_sql,
                               2, NULL, values, NULL, NULL, 0);
        break;

    default: /* NGX_HTTP_TIKTOK_LISTEN_Q_EXPIRE */

        /* a cache entry is served (stale) up to twice its TTL */
        keep = l->tmcf->cache ? 2 * l->tmcf->cache->ttl + 600 : 0;
        keep = ngx_max(keep, NGX_HTTP_TIKTOK_LISTEN_KEEP_MIN);

        ngx_sprintf(secs, "%T%Z", keep);
        values[0] = (const char *) secs;

        ok = PQsendQueryParams(pgconn, ngx_http_tiktok_listen_expire_sql,
                               1, NULL, values, NULL, NULL, 0);
        break;
    }

    if (!ok
        || ngx_http_tiktok_pg_conn_send(&l->conn, l->conn.conf->timeout)
           != NGX_OK)
    {
        ngx_http_tiktok_pg_conn_close(&l->conn, PQerrorMessage(pgconn));
        return;
    }

    l->query = query;
    l->rows = 0;
}


/*
 * tiktok_purge: a user was disconnected (on any node): drop their cache at
 * once, then read the record to move the node's applied id on.
 * tiktok_publish: a post was queued, publish it now.  tiktok_probe: ours
 * came back, the listener hears notifications.
 */

static void
ngx_http_tiktok_listen_notify(ngx_http_tiktok_pg_conn_t *pc, PGnotify *n)
{
    size_t                     len;
    ngx_http_tiktok_listen_t  *l;

    l = pc->data;
    len = ngx_strlen(n->extra);

    if (ngx_strcmp(n->relname, "tiktok_purge") == 0) {
        ngx_http_tiktok_listen_purge(l, (u_char *) n->extra, len);
        l->replay = 1;

    } else if (ngx_strcmp(n->relname, "tiktok_publish") == 0) {
        ngx_http_tiktok_scheduler_kick(l->tmcf);

    } else if (ngx_strcmp(n->relname, "tiktok_probe") == 0
               && l->probing && len == l->token.len
               && ngx_strncmp(n->extra, l->token.data, len) == 0)
    {
        l->probing = 0;

        if (l->probe.timer_set) {
            ngx_del_timer(&l->probe);
        }

        ngx_log_debug0(NGX_LOG_DEBUG_EVENT, pc->log, 0,
                       "tiktok: listener probe came back");

        /* a few more, apart: one may have met a query of ours */

        if (++l->probes_back < NGX_HTTP_TIKTOK_LISTEN_PROBES) {
            ngx_add_timer(&l->probe, NGX_HTTP_TIKTOK_LISTEN_REPROBE);
        }
    }
}


static void
ngx_http_tiktok_listen_purge(ngx_http_tiktok_listen_t *l, u_char *user,
    size_t len)
{
    ngx_str_t  u;

    if (l->tmcf->cache == NULL || len == 0) {
        return;
    }

    u.data = user;
    u.len = len;

    /* the count is logged at debug level by the cache itself */
    (void) ngx_http_tiktok_cache_purge_user(l->tmcf->cache, &u);
}


/*
 * The probe: a NOTIFY sent through the pool (another session) must reach
 * this connection within a few seconds.  Behind a transaction pooler the
 * LISTEN stayed on a server connection that is not ours between queries,
 * and the pooler drops what arrives there.
 */

static void
ngx_http_tiktok_listen_probe_start(ngx_http_tiktok_listen_t *l)
{
    ngx_pool_t                  *pool;
    ngx_http_tiktok_pg_query_t  *q;

    if (l->warned || l->probing || l->tmcf->pg_pool == NULL) {
        return;
    }

    pool = ngx_create_pool(1024, l->conn.log);
    if (pool == NULL) {
        return;
    }

    q = ngx_http_tiktok_pg_query_create(pool, l->conn.log, NULL,
                                        ngx_http_tiktok_listen_probe_sent, l);

    l->token.data = l->buf;
    l->token.len = ngx_sprintf(l->buf, "%P:%ui", ngx_pid, ++l->probes)
                   - l->buf;
    l->probing = 1;

    if (q == NULL
        || ngx_http_tiktok_pg_add(q, ngx_http_tiktok_listen_probe_sql, 1,
                                  &l->token) != NGX_OK
        || ngx_http_tiktok_pg_run(l->tmcf->pg_pool, q) != NGX_OK)
    {
        l->probing = 0;
        ngx_destroy_pool(pool);
    }
}


/* the probe NOTIFY committed (or could not be sent): wait for it */

static void
ngx_http_tiktok_listen_probe_sent(ngx_http_tiktok_pg_query_t *q)
{
    ngx_int_t                  rc;
    ngx_http_tiktok_listen_t  *l;

    l = q->data;
    rc = q->rc;

    ngx_destroy_pool(q->pool);

    if (l->stopped || !l->probing) {
        /* stopped, or it came back before its own answer did */
        return;
    }

    if (rc != NGX_OK) {
        /* the pool could not send it: no conclusion, try at next connect */
        l->probing = 0;
        return;
    }

    ngx_add_timer(&l->probe, NGX_HTTP_TIKTOK_LISTEN_PROBE);
}


static void
ngx_http_tiktok_listen_probe_handler(ngx_event_t *ev)
{
    ngx_http_tiktok_listen_t  *l = ev->data;

    if (ngx_exiting || ngx_terminate || l->stopped
        || l->conn.state == NGX_HTTP_TIKTOK_PG_CLOSED)
    {
        return;
    }

    if (!l->probing) {
        /* the next probe, after the next poll of the purge records */
        l->probe_due = 1;
        return;
    }

    l->probing = 0;
    l->warned = 1;

    ngx_log_error(NGX_LOG_WARN, l->conn.log, 0,
                  "tiktok: the listener connection does not receive "
                  "notifications: it is evidently behind a transaction "
                  "pooler; cache purges now reach this node only through "
                  "the purge records it reads every %M ms, and queued posts "
                  "wait for the scheduler's timer; give \"tiktok_postgres\" "
                  "a \"listen=\" conninfo that reaches PostgreSQL directly "
                  "or through a session-mode pooler",
                  (ngx_msec_t) NGX_HTTP_TIKTOK_LISTEN_POLL);
}


/* closed, and why was logged: a quieter log until it is back */

static void
ngx_http_tiktok_listen_closed(ngx_http_tiktok_pg_conn_t *pc, u_char *why)
{
    ngx_http_tiktok_listen_t  *l;

    l = pc->data;

    if (why) {
        pc->quiet = 1;
    }

    /* a probe in flight may be lost with the connection: no conclusion */

    l->probing = 0;
    l->probe_due = 0;

    if (l->probe.timer_set) {
        ngx_del_timer(&l->probe);
    }

    l->query = 0;

    /* what was missed meanwhile is replayed after the reconnect */

    if (l->stopped || ngx_exiting || ngx_terminate) {
        return;
    }

    if (l->timer.timer_set) {
        ngx_del_timer(&l->timer);
    }

    ngx_add_timer(&l->timer, l->backoff);

    l->backoff = ngx_min(l->backoff * 2, NGX_HTTP_TIKTOK_LISTEN_BACKOFF_MAX);
}
