
/*
 * libpq on nginx's event loop.
 *
 * Nothing here blocks: connections are opened with PQconnectStartParams and
 * advanced with PQconnectPoll from socket events, the host is given as an
 * address (ngx_http_tiktok_pg_conf resolves names while nginx reads its
 * configuration, where blocking is allowed), queries are sent with
 * PQsendQueryParams in pipeline mode and read with PQconsumeInput and
 * PQgetResult only while PQisBusy says a result is complete.  PQcancel
 * blocks, so a query that outlives its timeout costs its connection instead.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_tiktok_pg.h"


#define NGX_HTTP_TIKTOK_PG_CLOSED      0
#define NGX_HTTP_TIKTOK_PG_CONNECTING  1
#define NGX_HTTP_TIKTOK_PG_IDLE        2
#define NGX_HTTP_TIKTOK_PG_BUSY        3


static char *ngx_http_tiktok_pg_strdup(ngx_pool_t *pool, const char *s);
static ngx_int_t ngx_http_tiktok_pg_resolve(ngx_conf_t *cf,
    PQconninfoOption *opts, ngx_str_t *hostaddr);
static ngx_int_t ngx_http_tiktok_pg_connect(ngx_http_tiktok_pg_conn_t *pc);
static ngx_int_t ngx_http_tiktok_pg_wrap(ngx_http_tiktok_pg_conn_t *pc);
static void ngx_http_tiktok_pg_unwrap(ngx_http_tiktok_pg_conn_t *pc,
    ngx_uint_t fd_alive);
static void ngx_http_tiktok_pg_poll(ngx_http_tiktok_pg_conn_t *pc);
static void ngx_http_tiktok_pg_connect_timeout(ngx_event_t *ev);
static void ngx_http_tiktok_pg_read_handler(ngx_event_t *ev);
static void ngx_http_tiktok_pg_write_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_tiktok_pg_send(ngx_http_tiktok_pg_conn_t *pc,
    ngx_http_tiktok_pg_query_t *q);
static ngx_int_t ngx_http_tiktok_pg_flush(ngx_http_tiktok_pg_conn_t *pc);
static ngx_int_t ngx_http_tiktok_pg_results(ngx_http_tiktok_pg_conn_t *pc);
static void ngx_http_tiktok_pg_result(ngx_http_tiktok_pg_conn_t *pc,
    PGresult *res);
static void ngx_http_tiktok_pg_notifies(ngx_http_tiktok_pg_conn_t *pc);
static void ngx_http_tiktok_pg_close(ngx_http_tiktok_pg_conn_t *pc,
    const char *why);
static void ngx_http_tiktok_pg_dispatch(ngx_http_tiktok_pg_pool_t *pg,
    ngx_uint_t may_connect);
static void ngx_http_tiktok_pg_complete(ngx_http_tiktok_pg_query_t *q,
    ngx_int_t rc);
static void ngx_http_tiktok_pg_done_handler(ngx_event_t *ev);
static void ngx_http_tiktok_pg_run_done(void);
static void ngx_http_tiktok_pg_query_timeout(ngx_event_t *ev);
static void ngx_http_tiktok_pg_query_cleanup(void *data);
static void ngx_http_tiktok_pg_notice(void *arg, const char *message);
static u_char *ngx_http_tiktok_pg_msg(u_char *buf, size_t size,
    const char *msg);


/* a libpq message flattened to one line fits in this */
#define NGX_HTTP_TIKTOK_PG_MSG_LEN  512


static const char  ngx_http_tiktok_pg_set_user[] =
    "SELECT set_config('app.user_id', $1, true)";


/*
 * Validates the conninfo with PQconninfoParse and prepares the keyword and
 * value arrays for PQconnectStartParams.  A host name is resolved here, at
 * configuration time, and passed as hostaddr: libpq would otherwise resolve
 * it with a blocking getaddrinfo() inside a worker.
 */

char *
ngx_http_tiktok_pg_conf(ngx_conf_t *cf, ngx_str_t *conninfo,
    ngx_http_tiktok_pg_conf_t *pgcf)
{
    char               *err, *ci;
    u_char              buf[NGX_HTTP_TIKTOK_PG_MSG_LEN];
    ngx_str_t           hostaddr;
    ngx_uint_t          n, i, has_app_name;
    PQconninfoOption   *opts, *o;

    ci = (char *) ngx_pnalloc(cf->pool, conninfo->len + 1);
    if (ci == NULL) {
        return NGX_CONF_ERROR;
    }

    (void) ngx_cpystrn((u_char *) ci, conninfo->data, conninfo->len + 1);

    err = NULL;
    opts = PQconninfoParse(ci, &err);

    if (opts == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_postgres\" has an invalid conninfo: %s",
                           err ? ngx_http_tiktok_pg_msg(buf, sizeof(buf), err)
                               : (u_char *) "out of memory");
        if (err) {
            PQfreemem(err);
        }
        return NGX_CONF_ERROR;
    }

    ngx_str_null(&hostaddr);

    if (ngx_http_tiktok_pg_resolve(cf, opts, &hostaddr) != NGX_OK) {
        PQconninfoFree(opts);
        return NGX_CONF_ERROR;
    }

    n = 0;
    for (o = opts; o->keyword; o++) {
        n++;
    }

    pgcf->keywords = ngx_pcalloc(cf->pool, (n + 3) * sizeof(char *));
    pgcf->values = ngx_pcalloc(cf->pool, (n + 3) * sizeof(char *));
    if (pgcf->keywords == NULL || pgcf->values == NULL) {
        PQconninfoFree(opts);
        return NGX_CONF_ERROR;
    }

    i = 0;
    has_app_name = 0;

    for (o = opts; o->keyword; o++) {
        if (o->val == NULL) {
            continue;
        }

        if (ngx_strcmp(o->keyword, "application_name") == 0) {
            has_app_name = 1;
        }

        pgcf->keywords[i] = ngx_http_tiktok_pg_strdup(cf->pool, o->keyword);
        pgcf->values[i] = ngx_http_tiktok_pg_strdup(cf->pool, o->val);
        if (pgcf->keywords[i] == NULL || pgcf->values[i] == NULL) {
            PQconninfoFree(opts);
            return NGX_CONF_ERROR;
        }

        i++;
    }

    PQconninfoFree(opts);

    if (hostaddr.len) {
        pgcf->keywords[i] = "hostaddr";
        pgcf->values[i] = (char *) hostaddr.data;
        i++;
    }

    if (!has_app_name) {
        pgcf->keywords[i] = "application_name";
        pgcf->values[i] = "ngx_http_tiktok";
        i++;
    }

    pgcf->keywords[i] = NULL;
    pgcf->values[i] = NULL;

    pgcf->conninfo = *conninfo;

    return NGX_CONF_OK;
}


static char *
ngx_http_tiktok_pg_strdup(ngx_pool_t *pool, const char *s)
{
    size_t  len;
    char   *p;

    len = ngx_strlen(s) + 1;

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s, len);

    return p;
}


/*
 * host=name[,name...] without hostaddr: resolve every name now and build the
 * matching hostaddr list.  Unix socket paths and address literals need no
 * lookup.
 */

static ngx_int_t
ngx_http_tiktok_pg_resolve(ngx_conf_t *cf, PQconninfoOption *opts,
    ngx_str_t *hostaddr)
{
    u_char             *p, *last, *end, buf[NGX_SOCKADDR_STRLEN];
    size_t              len;
    ngx_url_t           u;
    ngx_str_t           name;
    ngx_uint_t          need;
    PQconninfoOption   *o, *host;

    host = NULL;

    for (o = opts; o->keyword; o++) {
        if (ngx_strcmp(o->keyword, "hostaddr") == 0 && o->val && o->val[0]) {
            return NGX_OK;
        }

        if (ngx_strcmp(o->keyword, "host") == 0 && o->val && o->val[0]) {
            host = o;
        }
    }

    if (host == NULL) {
        return NGX_OK;
    }

    /* do any of the hosts need a lookup? */

    need = 0;
    p = (u_char *) host->val;
    last = p + ngx_strlen(p);

    while (p < last) {
        end = ngx_strlchr(p, last, ',');
        if (end == NULL) {
            end = last;
        }

        if (end > p && *p != '/' && *p != '@'
            && ngx_inet_addr(p, end - p) == INADDR_NONE
#if (NGX_HAVE_INET6)
            && ngx_strlchr(p, end, ':') == NULL
#endif
            )
        {
            need = 1;
        }

        p = end + 1;
    }

    if (!need) {
        return NGX_OK;
    }

    hostaddr->data = ngx_pnalloc(cf->pool,
                                 (NGX_SOCKADDR_STRLEN + 1) * 16 + 1);
    if (hostaddr->data == NULL) {
        return NGX_ERROR;
    }

    hostaddr->len = 0;
    p = (u_char *) host->val;

    while (p < last) {
        end = ngx_strlchr(p, last, ',');
        if (end == NULL) {
            end = last;
        }

        if (hostaddr->len) {
            hostaddr->data[hostaddr->len++] = ',';
        }

        if (hostaddr->len > NGX_SOCKADDR_STRLEN * 15) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"tiktok_postgres\" lists too many hosts");
            return NGX_ERROR;
        }

        if (*p == '/' || *p == '@') {
            /* a socket directory: hostaddr is ignored for it */
            p = end + 1;
            continue;
        }

        name.data = p;
        name.len = end - p;

        ngx_memzero(&u, sizeof(ngx_url_t));
        u.url = name;
        u.default_port = 5432;
        u.no_port = 1;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"tiktok_postgres\" cannot resolve host "
                               "\"%V\"%s%s", &name,
                               u.err ? ": " : "", u.err ? u.err : "");
            return NGX_ERROR;
        }

        len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, buf,
                            NGX_SOCKADDR_STRLEN, 0);

        ngx_memcpy(hostaddr->data + hostaddr->len, buf, len);
        hostaddr->len += len;

        p = end + 1;
    }

    hostaddr->data[hostaddr->len] = '\0';

    return NGX_OK;
}


ngx_http_tiktok_pg_pool_t *
ngx_http_tiktok_pg_pool_create(ngx_cycle_t *cycle,
    ngx_http_tiktok_pg_conf_t *conf)
{
    ngx_uint_t                  i;
    ngx_http_tiktok_pg_pool_t  *pg;

    pg = ngx_pcalloc(cycle->pool, sizeof(ngx_http_tiktok_pg_pool_t));
    if (pg == NULL) {
        return NULL;
    }

    pg->conns = ngx_pcalloc(cycle->pool,
                            conf->size * sizeof(ngx_http_tiktok_pg_conn_t));
    if (pg->conns == NULL) {
        return NULL;
    }

    pg->conf = conf;
    pg->log = cycle->log;
    ngx_queue_init(&pg->waiting);

    for (i = 0; i < conf->size; i++) {
        pg->conns[i].pg = pg;
        pg->conns[i].timer.handler = ngx_http_tiktok_pg_connect_timeout;
        pg->conns[i].timer.data = &pg->conns[i];
        pg->conns[i].timer.log = cycle->log;
        pg->conns[i].timer.cancelable = 1;
    }

    return pg;
}


void
ngx_http_tiktok_pg_pool_destroy(ngx_http_tiktok_pg_pool_t *pg)
{
    ngx_uint_t                   i;
    ngx_queue_t                 *qu;
    ngx_http_tiktok_pg_query_t  *q;

    pg->destroyed = 1;

    while (!ngx_queue_empty(&pg->waiting)) {
        qu = ngx_queue_head(&pg->waiting);
        q = ngx_queue_data(qu, ngx_http_tiktok_pg_query_t, queue);
        ngx_http_tiktok_pg_complete(q, NGX_ERROR);
    }

    for (i = 0; i < pg->conf->size; i++) {
        if (pg->conns[i].state != NGX_HTTP_TIKTOK_PG_CLOSED) {
            ngx_http_tiktok_pg_close(&pg->conns[i], NULL);
        }
    }

    ngx_http_tiktok_pg_run_done();
}


ngx_http_tiktok_pg_query_t *
ngx_http_tiktok_pg_query_create(ngx_pool_t *pool, ngx_log_t *log)
{
    ngx_pool_cleanup_t          *cln;
    ngx_http_tiktok_pg_query_t  *q;

    q = ngx_pcalloc(pool, sizeof(ngx_http_tiktok_pg_query_t));
    if (q == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_tiktok_pg_query_cleanup;
    cln->data = q;

    q->pool = pool;
    q->log = log;
    q->rc = NGX_ERROR;

    q->timer.handler = ngx_http_tiktok_pg_query_timeout;
    q->timer.data = q;
    q->timer.log = log;

    q->done.handler = ngx_http_tiktok_pg_done_handler;
    q->done.data = q;
    q->done.log = log;

    return q;
}


/*
 * Adds a statement.  Parameters are text; a parameter whose data is NULL is
 * SQL NULL.  They are copied with a terminating NUL as libpq wants.
 */

ngx_int_t
ngx_http_tiktok_pg_add(ngx_http_tiktok_pg_query_t *q, const char *sql,
    ngx_uint_t nparams, ngx_str_t *params)
{
    u_char                     *p;
    ngx_uint_t                  i;
    ngx_http_tiktok_pg_stmt_t  *st;

    if (q->nstmts == NGX_HTTP_TIKTOK_PG_MAX_STMTS
        || nparams > NGX_HTTP_TIKTOK_PG_MAX_PARAMS)
    {
        ngx_log_error(NGX_LOG_ALERT, q->log, 0,
                      "tiktok: too many statements or parameters");
        return NGX_ERROR;
    }

    st = &q->stmts[q->nstmts];
    st->sql = sql;
    st->nparams = (int) nparams;

    for (i = 0; i < nparams; i++) {
        if (params[i].data == NULL) {
            st->values[i] = NULL;
            continue;
        }

        p = ngx_pnalloc(q->pool, params[i].len + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, params[i].data, params[i].len);
        p[params[i].len] = '\0';

        st->values[i] = (const char *) p;
        st->lengths[i] = (int) params[i].len;
        st->formats[i] = 0;
    }

    q->nstmts++;

    return NGX_OK;
}


/*
 * Starts a query.  NGX_OK: the handler will be called later, from the event
 * loop, exactly once (unless the query's pool is destroyed first), also
 * when the query fails before this function returns.  NGX_ERROR: nothing
 * was started and the handler will not be called.
 */

ngx_int_t
ngx_http_tiktok_pg_run(ngx_http_tiktok_pg_pool_t *pg,
    ngx_http_tiktok_pg_query_t *q)
{
    u_char  *p;

    if (pg->destroyed || q->nstmts == 0 || q->queued || q->conn
        || q->done.posted)
    {
        return NGX_ERROR;
    }

    if (q->user_id.len) {
        /* a text parameter for libpq: NUL-terminated */
        p = ngx_pnalloc(q->pool, q->user_id.len + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, q->user_id.data, q->user_id.len);
        p[q->user_id.len] = '\0';
        q->user_id.data = p;
    }

    q->pg = pg;
    q->rc = NGX_ERROR;

    ngx_add_timer(&q->timer, pg->conf->timeout);

    ngx_queue_insert_tail(&pg->waiting, &q->queue);
    q->queued = 1;

    ngx_http_tiktok_pg_dispatch(pg, 1);

    return NGX_OK;
}


/*
 * Gives waiting queries to idle connections, and opens connections (up to
 * pool=N) while queries wait for one.  After a failed connect, may_connect
 * is 0: the queries that waited for it fail at once (503) unless another
 * connection can still serve them, rather than trying again in a loop
 * while the database is down.  The next new query tries again.
 */

static void
ngx_http_tiktok_pg_dispatch(ngx_http_tiktok_pg_pool_t *pg,
    ngx_uint_t may_connect)
{
    ngx_uint_t                   i, open, connecting, waiting;
    ngx_queue_t                 *qu, failed;
    ngx_http_tiktok_pg_conn_t   *pc;
    ngx_http_tiktok_pg_query_t  *q;

    for (i = 0; i < pg->conf->size && !ngx_queue_empty(&pg->waiting); i++) {
        pc = &pg->conns[i];

        if (pc->state != NGX_HTTP_TIKTOK_PG_IDLE) {
            continue;
        }

        qu = ngx_queue_head(&pg->waiting);
        q = ngx_queue_data(qu, ngx_http_tiktok_pg_query_t, queue);

        ngx_queue_remove(qu);
        q->queued = 0;

        if (ngx_http_tiktok_pg_send(pc, q) != NGX_OK) {
            /* the connection went away; try the query elsewhere once */
            ngx_http_tiktok_pg_close(pc, "send failed");

            if (!q->retried) {
                q->retried = 1;
                ngx_queue_insert_head(&pg->waiting, &q->queue);
                q->queued = 1;

            } else {
                ngx_http_tiktok_pg_complete(q, NGX_ERROR);
            }
        }
    }

    /* open more connections for what still waits */

    waiting = 0;
    for (qu = ngx_queue_head(&pg->waiting);
         qu != ngx_queue_sentinel(&pg->waiting);
         qu = ngx_queue_next(qu))
    {
        waiting++;
    }

    if (waiting == 0) {
        return;
    }

    open = 0;
    connecting = 0;

    for (i = 0; i < pg->conf->size; i++) {
        if (pg->conns[i].state == NGX_HTTP_TIKTOK_PG_CONNECTING) {
            connecting++;
        }
    }

    for (i = 0; may_connect && i < pg->conf->size && connecting < waiting;
         i++)
    {
        pc = &pg->conns[i];

        if (pc->state != NGX_HTTP_TIKTOK_PG_CLOSED) {
            continue;
        }

        if (ngx_http_tiktok_pg_connect(pc) == NGX_OK) {
            connecting++;
        }
    }

    for (i = 0; i < pg->conf->size; i++) {
        if (pg->conns[i].state != NGX_HTTP_TIKTOK_PG_CLOSED) {
            open++;
        }
    }

    if (open) {
        return;
    }

    /*
     * No connection is open or opening: the database is unreachable.  The
     * waiting queries are moved aside first, so a handler that starts a new
     * query does not see them again.
     */

    ngx_queue_init(&failed);
    ngx_queue_add(&failed, &pg->waiting);
    ngx_queue_init(&pg->waiting);

    while (!ngx_queue_empty(&failed)) {
        qu = ngx_queue_head(&failed);
        q = ngx_queue_data(qu, ngx_http_tiktok_pg_query_t, queue);
        ngx_http_tiktok_pg_complete(q, NGX_ERROR);
    }
}


static ngx_int_t
ngx_http_tiktok_pg_connect(ngx_http_tiktok_pg_conn_t *pc)
{
    u_char                      buf[NGX_HTTP_TIKTOK_PG_MSG_LEN];
    ngx_http_tiktok_pg_pool_t  *pg;

    pg = pc->pg;

    pc->pgconn = PQconnectStartParams(pg->conf->keywords, pg->conf->values, 0);

    if (pc->pgconn == NULL) {
        ngx_log_error(NGX_LOG_ALERT, pg->log, 0,
                      "tiktok: PQconnectStartParams() failed: out of memory");
        return NGX_ERROR;
    }

    if (PQstatus(pc->pgconn) == CONNECTION_BAD) {
        ngx_log_error(NGX_LOG_ERR, pg->log, 0,
                      "tiktok: postgres connection failed: %s",
                      ngx_http_tiktok_pg_msg(buf, sizeof(buf),
                                             PQerrorMessage(pc->pgconn)));
        PQfinish(pc->pgconn);
        pc->pgconn = NULL;
        return NGX_ERROR;
    }

    PQsetNoticeProcessor(pc->pgconn, ngx_http_tiktok_pg_notice, pg->log);

    if (ngx_http_tiktok_pg_wrap(pc) != NGX_OK) {
        PQfinish(pc->pgconn);
        pc->pgconn = NULL;
        return NGX_ERROR;
    }

    pc->state = NGX_HTTP_TIKTOK_PG_CONNECTING;

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, pg->log, 0,
                   "tiktok pg: connecting fd:%d", pc->c->fd);

    ngx_add_timer(&pc->timer, pg->conf->timeout);

    /* libpq wants the socket to become writable first */

    if (ngx_add_event(pc->c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
        != NGX_OK)
    {
        ngx_http_tiktok_pg_close(pc, "cannot add write event");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Wraps libpq's socket in an nginx connection.  The socket stays libpq's
 * (c->shared): nginx must not close it, PQfinish does.  Read events are
 * level-triggered because PQconsumeInput does not promise to read the
 * socket dry.
 */

static ngx_int_t
ngx_http_tiktok_pg_wrap(ngx_http_tiktok_pg_conn_t *pc)
{
    int                 fd;
    ngx_connection_t   *c;

    fd = PQsocket(pc->pgconn);
    if (fd == -1) {
        ngx_log_error(NGX_LOG_ERR, pc->pg->log, 0,
                      "tiktok: postgres connection has no socket");
        return NGX_ERROR;
    }

    c = ngx_get_connection(fd, pc->pg->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->shared = 1;
    c->data = pc;
    c->read->handler = ngx_http_tiktok_pg_read_handler;
    c->write->handler = ngx_http_tiktok_pg_write_handler;
    c->read->log = c->log;
    c->write->log = c->log;

    pc->c = c;

    if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
        ngx_http_tiktok_pg_unwrap(pc, 1);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_tiktok_pg_unwrap(ngx_http_tiktok_pg_conn_t *pc, ngx_uint_t fd_alive)
{
    ngx_connection_t  *c;

    c = pc->c;
    if (c == NULL) {
        return;
    }

    if (fd_alive) {
        if (c->read->active) {
            ngx_del_event(c->read, NGX_READ_EVENT, 0);
        }

        if (c->write->active) {
            ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
        }
    }

    ngx_close_connection(c);
    pc->c = NULL;
}


static void
ngx_http_tiktok_pg_read_handler(ngx_event_t *ev)
{
    ngx_connection_t           *c;
    ngx_http_tiktok_pg_conn_t  *pc;

    c = ev->data;
    pc = c->data;

    if (pc->state == NGX_HTTP_TIKTOK_PG_CONNECTING) {
        ngx_http_tiktok_pg_poll(pc);
        return;
    }

    if (!PQconsumeInput(pc->pgconn)) {
        ngx_http_tiktok_pg_close(pc, PQerrorMessage(pc->pgconn));
        return;
    }

    ngx_http_tiktok_pg_notifies(pc);

    if (pc->state == NGX_HTTP_TIKTOK_PG_BUSY) {
        if (ngx_http_tiktok_pg_results(pc) == NGX_ERROR) {
            ngx_http_tiktok_pg_close(pc, PQerrorMessage(pc->pgconn));
            return;
        }

    } else if (PQstatus(pc->pgconn) == CONNECTION_BAD) {
        /* the server went away (e.g. restarted) while we were idle */
        ngx_http_tiktok_pg_close(pc, PQerrorMessage(pc->pgconn));
        return;
    }

    if (pc->state == NGX_HTTP_TIKTOK_PG_IDLE) {
        ngx_http_tiktok_pg_dispatch(pc->pg, 1);
    }
}


static void
ngx_http_tiktok_pg_write_handler(ngx_event_t *ev)
{
    ngx_connection_t           *c;
    ngx_http_tiktok_pg_conn_t  *pc;

    c = ev->data;
    pc = c->data;

    if (pc->state == NGX_HTTP_TIKTOK_PG_CONNECTING) {
        ngx_http_tiktok_pg_poll(pc);
        return;
    }

    if (ngx_http_tiktok_pg_flush(pc) == NGX_ERROR) {
        ngx_http_tiktok_pg_close(pc, PQerrorMessage(pc->pgconn));
    }
}


/*
 * One step of PQconnectPoll.  libpq may switch to a new socket (another host
 * of a list, or a retry without SSL); the wrapper then follows it.  A new
 * socket that reuses the old descriptor number is not told apart, so the
 * connect timeout is what bounds that rare case.
 */

static void
ngx_http_tiktok_pg_poll(ngx_http_tiktok_pg_conn_t *pc)
{
    ngx_int_t                  rc;
    PostgresPollingStatusType  st;

    st = PQconnectPoll(pc->pgconn);

    if (st != PGRES_POLLING_FAILED && PQsocket(pc->pgconn) != pc->c->fd) {
        ngx_http_tiktok_pg_unwrap(pc, 0);

        if (ngx_http_tiktok_pg_wrap(pc) != NGX_OK) {
            ngx_http_tiktok_pg_close(pc, "cannot follow the new socket");
            return;
        }
    }

    switch (st) {

    case PGRES_POLLING_READING:
        if (pc->c->write->active) {
            ngx_del_event(pc->c->write, NGX_WRITE_EVENT, 0);
        }
        return;

    case PGRES_POLLING_WRITING:
        if (!pc->c->write->active
            && ngx_add_event(pc->c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
               != NGX_OK)
        {
            ngx_http_tiktok_pg_close(pc, "cannot add write event");
        }
        return;

    case PGRES_POLLING_FAILED:
        ngx_http_tiktok_pg_close(pc, PQerrorMessage(pc->pgconn));
        ngx_http_tiktok_pg_dispatch(pc->pg, 0);
        return;

    default: /* PGRES_POLLING_OK */
        break;
    }

    if (pc->c->write->active) {
        ngx_del_event(pc->c->write, NGX_WRITE_EVENT, 0);
    }

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    rc = NGX_OK;

    if (PQsetnonblocking(pc->pgconn, 1) != 0
        || PQenterPipelineMode(pc->pgconn) != 1)
    {
        rc = NGX_ERROR;
    }

    if (rc != NGX_OK) {
        ngx_http_tiktok_pg_close(pc, PQerrorMessage(pc->pgconn));
        ngx_http_tiktok_pg_dispatch(pc->pg, 0);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, pc->pg->log, 0,
                  "tiktok: postgres connection established, "
                  "server version %d", PQserverVersion(pc->pgconn));

    pc->state = NGX_HTTP_TIKTOK_PG_IDLE;

    ngx_http_tiktok_pg_dispatch(pc->pg, 1);
}


static void
ngx_http_tiktok_pg_connect_timeout(ngx_event_t *ev)
{
    ngx_http_tiktok_pg_conn_t  *pc;

    pc = ev->data;

    ngx_http_tiktok_pg_close(pc, "connect timed out");
    ngx_http_tiktok_pg_dispatch(pc->pg, 0);
}


/*
 * Sends the RLS setting, the statements and a Sync in pipeline mode.
 */

static ngx_int_t
ngx_http_tiktok_pg_send(ngx_http_tiktok_pg_conn_t *pc,
    ngx_http_tiktok_pg_query_t *q)
{
    ngx_uint_t                  i;
    const char                 *values[1];
    ngx_http_tiktok_pg_stmt_t  *st;

    if (q->user_id.len) {
        values[0] = (const char *) q->user_id.data;

        if (!PQsendQueryParams(pc->pgconn, ngx_http_tiktok_pg_set_user, 1,
                               NULL, values, NULL, NULL, 0))
        {
            return NGX_ERROR;
        }
    }

    for (i = 0; i < q->nstmts; i++) {
        st = &q->stmts[i];

        if (!PQsendQueryParams(pc->pgconn, st->sql, st->nparams, NULL,
                               st->values, st->lengths, st->formats, 0))
        {
            return NGX_ERROR;
        }
    }

    if (!PQpipelineSync(pc->pgconn)) {
        return NGX_ERROR;
    }

    pc->query = q;
    pc->orphan = 0;
    pc->failed = 0;
    pc->state = NGX_HTTP_TIKTOK_PG_BUSY;

    q->conn = pc;
    q->sent = 1;
    q->result = q->user_id.len ? (ngx_uint_t) -1 : 0;

    if (ngx_http_tiktok_pg_flush(pc) == NGX_ERROR) {
        pc->query = NULL;
        pc->state = NGX_HTTP_TIKTOK_PG_IDLE;
        q->conn = NULL;
        q->sent = 0;
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tiktok_pg_flush(ngx_http_tiktok_pg_conn_t *pc)
{
    int  rc;

    rc = PQflush(pc->pgconn);

    if (rc == -1) {
        return NGX_ERROR;
    }

    if (rc == 1) {
        if (!pc->c->write->active
            && ngx_add_event(pc->c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        return NGX_AGAIN;
    }

    if (pc->c->write->active) {
        ngx_del_event(pc->c->write, NGX_WRITE_EVENT, 0);
    }

    return NGX_OK;
}


/*
 * Reads every complete result.  PQgetResult is only called when PQisBusy
 * says it will not wait: in a worker it must never block.
 */

static ngx_int_t
ngx_http_tiktok_pg_results(ngx_http_tiktok_pg_conn_t *pc)
{
    PGresult                    *res;
    ngx_http_tiktok_pg_query_t  *q;

    for ( ;; ) {
        if (PQisBusy(pc->pgconn)) {
            return PQstatus(pc->pgconn) == CONNECTION_BAD ? NGX_ERROR
                                                          : NGX_AGAIN;
        }

        res = PQgetResult(pc->pgconn);

        if (res == NULL) {
            /* the end of one statement's results */
            q = pc->query;
            if (q) {
                q->result++;
            }
            continue;
        }

        if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }

        ngx_http_tiktok_pg_result(pc, res);
    }

    q = pc->query;

    pc->query = NULL;
    pc->state = NGX_HTTP_TIKTOK_PG_IDLE;

    if (q == NULL) {
        /* nobody waits for this one any more */
        return NGX_OK;
    }

    q->conn = NULL;

    ngx_http_tiktok_pg_complete(q, pc->failed ? NGX_DECLINED : NGX_OK);

    return NGX_OK;
}


static void
ngx_http_tiktok_pg_result(ngx_http_tiktok_pg_conn_t *pc, PGresult *res)
{
    char                        *s;
    size_t                       len;
    u_char                       buf[NGX_HTTP_TIKTOK_PG_MSG_LEN];
    ExecStatusType               st;
    ngx_http_tiktok_pg_query_t  *q;

    q = pc->query;
    st = PQresultStatus(res);

    if (st == PGRES_FATAL_ERROR && !pc->failed) {
        pc->failed = 1;

        /*
         * The primary message and SQLSTATE only: DETAIL lines may quote
         * row values ("Failing row contains ...").
         */
        s = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

        ngx_log_error(NGX_LOG_ERR, q ? q->log : pc->pg->log, 0,
                      "tiktok: postgres statement failed: %s (SQLSTATE %s)",
                      ngx_http_tiktok_pg_msg(buf, sizeof(buf),
                                             s ? s : "unknown error"),
                      PQresultErrorField(res, PG_DIAG_SQLSTATE)
                      ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : "-");

        if (q) {
            q->failed = q->result;

            s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            if (s) {
                ngx_cpystrn((u_char *) q->sqlstate, (u_char *) s,
                            sizeof(q->sqlstate));
            }

            s = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
            if (s) {
                len = ngx_strlen(s);
                q->error.data = ngx_pnalloc(q->pool, len);
                if (q->error.data) {
                    ngx_memcpy(q->error.data, s, len);
                    q->error.len = len;
                }
            }
        }
    }

    if (q && q->result < q->nstmts
        && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        && q->res[q->result] == NULL)
    {
        q->res[q->result] = res;
        return;
    }

    PQclear(res);
}


/*
 * The pool does not LISTEN (the listener does, ngx_http_tiktok_listen.c),
 * but behind a transaction pooler a server connection that another client
 * made LISTEN can be lent to us: what it hears is dropped, not kept.
 */

static void
ngx_http_tiktok_pg_notifies(ngx_http_tiktok_pg_conn_t *pc)
{
    PGnotify  *n;

    while ((n = PQnotifies(pc->pgconn)) != NULL) {
        PQfreemem(n);
    }
}


static void
ngx_http_tiktok_pg_close(ngx_http_tiktok_pg_conn_t *pc, const char *why)
{
    ngx_http_tiktok_pg_query_t  *q;

    u_char                       buf[NGX_HTTP_TIKTOK_PG_MSG_LEN];

    if (why) {
        ngx_log_error(NGX_LOG_ERR, pc->pg->log, 0,
                      "tiktok: postgres connection closed: %s",
                      ngx_http_tiktok_pg_msg(buf, sizeof(buf), why));
    }

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    /*
     * libpq closes its socket itself when it sees the server hang up;
     * epoll forgot the descriptor then, and must not be asked about it.
     */
    ngx_http_tiktok_pg_unwrap(pc, pc->c && pc->pgconn
                                  && PQsocket(pc->pgconn) == pc->c->fd);

    if (pc->pgconn) {
        PQfinish(pc->pgconn);
        pc->pgconn = NULL;
    }

    pc->state = NGX_HTTP_TIKTOK_PG_CLOSED;

    q = pc->query;
    pc->query = NULL;

    if (q) {
        q->conn = NULL;
        ngx_http_tiktok_pg_complete(q, NGX_ERROR);
    }
}


/*
 * Detaches the query from the pool with its outcome and posts its handler.
 * Completion is never synchronous: this runs inside ngx_http_tiktok_pg_run
 * when no connection can be opened, and inside other queries' events; a
 * handler called here would finalize a request (or free a job) that its
 * caller is still using.  The posted event belongs to the query, and the
 * query's pool cleanup removes it.
 */

static void
ngx_http_tiktok_pg_complete(ngx_http_tiktok_pg_query_t *q, ngx_int_t rc)
{
    if (q->queued) {
        ngx_queue_remove(&q->queue);
        q->queued = 0;
    }

    if (q->timer.timer_set) {
        ngx_del_timer(&q->timer);
    }

    q->rc = rc;
    q->pg = NULL;

    ngx_post_event(&q->done, &ngx_posted_events);
}


/*
 * Calls the query's handler once, from the event loop; the handler may
 * destroy the pool the query lives in, so nothing touches q afterwards.
 */

static void
ngx_http_tiktok_pg_done_handler(ngx_event_t *ev)
{
    ngx_http_tiktok_pg_query_t  *q;

    q = ev->data;

    if (q->handler) {
        q->handler(q);
    }
}


/*
 * At a worker's exit (ngx_http_tiktok_pg_pool_destroy) the event loop does
 * not run again: the handlers of the queries that failed now run here, so
 * their jobs and requests end and free what they hold.  A handler may
 * destroy other queries (their posted events go) and cannot start new
 * ones, so this ends.
 */

static void
ngx_http_tiktok_pg_run_done(void)
{
    ngx_queue_t  *qu;
    ngx_event_t  *ev;

    for ( ;; ) {
        ev = NULL;

        for (qu = ngx_queue_head(&ngx_posted_events);
             qu != ngx_queue_sentinel(&ngx_posted_events);
             qu = ngx_queue_next(qu))
        {
            ev = ngx_queue_data(qu, ngx_event_t, queue);

            if (ev->handler == ngx_http_tiktok_pg_done_handler) {
                break;
            }

            ev = NULL;
        }

        if (ev == NULL) {
            return;
        }

        ngx_delete_posted_event(ev);
        ev->handler(ev);
    }
}


static void
ngx_http_tiktok_pg_query_timeout(ngx_event_t *ev)
{
    ngx_http_tiktok_pg_conn_t   *pc;
    ngx_http_tiktok_pg_query_t  *q;
    ngx_http_tiktok_pg_pool_t   *pg;

    q = ev->data;
    pg = q->pg;

    ngx_log_error(NGX_LOG_ERR, q->log, 0, "tiktok: postgres query timed out");

    q->timed_out = 1;

    pc = q->conn;

    if (pc) {
        /* the only non-blocking way to stop a running query */
        ngx_http_tiktok_pg_close(pc, "query timed out");

    } else {
        ngx_http_tiktok_pg_complete(q, NGX_ERROR);
    }

    if (pg) {
        ngx_http_tiktok_pg_dispatch(pg, 1);
    }
}


/*
 * The query's pool is going away (request finalized or aborted): detach it
 * from the pool so no handler runs on freed memory, and free its results.
 */

static void
ngx_http_tiktok_pg_query_cleanup(void *data)
{
    ngx_http_tiktok_pg_query_t *q = data;

    ngx_uint_t  i;

    if (q->queued) {
        ngx_queue_remove(&q->queue);
        q->queued = 0;
    }

    if (q->timer.timer_set) {
        ngx_del_timer(&q->timer);
    }

    if (q->done.posted) {
        /* completed, but its handler had not run yet: it never will */
        ngx_delete_posted_event(&q->done);
    }

    if (q->conn) {
        /* its results will be read and dropped */
        q->conn->query = NULL;
        q->conn->orphan = 1;
        q->conn = NULL;
    }

    for (i = 0; i < NGX_HTTP_TIKTOK_PG_MAX_STMTS; i++) {
        if (q->res[i]) {
            PQclear(q->res[i]);
            q->res[i] = NULL;
        }
    }
}


static void
ngx_http_tiktok_pg_notice(void *arg, const char *message)
{
    ngx_log_t *log = arg;

    u_char  buf[NGX_HTTP_TIKTOK_PG_MSG_LEN];

    ngx_log_error(NGX_LOG_NOTICE, log, 0, "tiktok: postgres: %s",
                  ngx_http_tiktok_pg_msg(buf, sizeof(buf), message));
}


/*
 * libpq's messages end in a newline and may span lines ("\n\tThis probably
 * means..."); an error log line must stay one line.
 */

static u_char *
ngx_http_tiktok_pg_msg(u_char *buf, size_t size, const char *msg)
{
    u_char      *p, *last;
    const char  *s;

    p = buf;
    last = buf + size - 1;

    for (s = msg; *s && p < last; s++) {
        if (*s == '\n' || *s == '\t' || *s == '\r') {
            if (p > buf && p[-1] != ' ') {
                *p++ = ' ';
            }
            continue;
        }

        *p++ = (u_char) *s;
    }

    while (p > buf && p[-1] == ' ') {
        p--;
    }

    *p = '\0';

    return buf;
}


ngx_int_t
ngx_http_tiktok_pg_copy(ngx_pool_t *pool, PGresult *res, int col,
    ngx_str_t *value)
{
    size_t  len;

    ngx_str_null(value);

    if (PQntuples(res) < 1 || PQgetisnull(res, 0, col)) {
        return NGX_OK;
    }

    len = PQgetlength(res, 0, col);

    value->data = ngx_pnalloc(pool, len + 1);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(value->data, PQgetvalue(res, 0, col), len);
    value->data[len] = '\0';
    value->len = len;

    return NGX_OK;
}
