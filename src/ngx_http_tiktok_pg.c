
/*
 * libpq on nginx's event loop: one connection (ngx_http_tiktok_pg_conn_*),
 * and the per-worker pool of them that runs queries.
 *
 * Nothing here blocks: connections are opened with PQconnectStartParams and
 * advanced with PQconnectPoll from socket events, the host is given as an
 * address (ngx_http_tiktok_pg_conf resolves names while nginx reads its
 * configuration, where blocking is allowed), queries are sent with
 * PQsendQueryParams (the pool's in pipeline mode) and read with
 * PQconsumeInput and PQgetResult only while PQisBusy says a result is
 * complete.  PQcancel blocks, so a query that outlives its timeout costs
 * its connection instead.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_tiktok_pg.h"
#include "ngx_http_tiktok_curl.h"
#include "ngx_http_tiktok_validate.h"


/* a pool's connection, and the query it runs */
typedef struct {
    ngx_http_tiktok_pg_conn_t       conn;
    ngx_http_tiktok_pg_pool_t      *pg;
    ngx_http_tiktok_pg_query_t     *query;      /* in flight, or NULL */
    unsigned                        failed:1;   /* a statement failed */
} ngx_http_tiktok_pg_slot_t;


struct ngx_http_tiktok_pg_pool_s {
    ngx_http_tiktok_pg_conf_t      *conf;
    ngx_http_tiktok_pg_slot_t      *slots;
    ngx_queue_t                     waiting;
    unsigned                        destroyed:1;  /* refuses new queries */
};


static void ngx_http_tiktok_pg_conf_cleanup(void *data);
static ngx_int_t ngx_http_tiktok_pg_resolve(ngx_conf_t *cf,
    PQconninfoOption *opts, ngx_str_t *hostaddr);
static ngx_int_t ngx_http_tiktok_pg_wrap(ngx_http_tiktok_pg_conn_t *pc);
static void ngx_http_tiktok_pg_unwrap(ngx_http_tiktok_pg_conn_t *pc,
    ngx_uint_t fd_alive);
static void ngx_http_tiktok_pg_poll(ngx_http_tiktok_pg_conn_t *pc);
static void ngx_http_tiktok_pg_timeout(ngx_event_t *ev);
static void ngx_http_tiktok_pg_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_tiktok_pg_flush(ngx_http_tiktok_pg_conn_t *pc);
static ngx_int_t ngx_http_tiktok_pg_results(ngx_http_tiktok_pg_conn_t *pc);
static void ngx_http_tiktok_pg_notice(void *arg, const char *message);
static u_char *ngx_http_tiktok_pg_msg(u_char *buf, size_t size,
    const char *msg);

static void ngx_http_tiktok_pg_dispatch(ngx_http_tiktok_pg_pool_t *pg,
    ngx_uint_t may_connect);
static ngx_int_t ngx_http_tiktok_pg_send(ngx_http_tiktok_pg_slot_t *s,
    ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_pg_slot_connected(ngx_http_tiktok_pg_conn_t *pc,
    ngx_int_t rc);
static void ngx_http_tiktok_pg_slot_result(ngx_http_tiktok_pg_conn_t *pc,
    PGresult *res);
static void ngx_http_tiktok_pg_slot_idle(ngx_http_tiktok_pg_conn_t *pc);
static void ngx_http_tiktok_pg_slot_closed(ngx_http_tiktok_pg_conn_t *pc,
    u_char *why);
static void ngx_http_tiktok_pg_slot_done(ngx_http_tiktok_pg_slot_t *s,
    ngx_int_t rc);
static void ngx_http_tiktok_pg_detach(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_pg_complete(ngx_http_tiktok_pg_query_t *q,
    ngx_int_t rc);
static void ngx_http_tiktok_pg_done_handler(ngx_event_t *ev);
static void ngx_http_tiktok_pg_run_done(void);
static void ngx_http_tiktok_pg_query_timeout(ngx_event_t *ev);
static void ngx_http_tiktok_pg_query_cleanup(void *data);


/* a libpq message flattened to one line fits in this */
#define NGX_HTTP_TIKTOK_PG_MSG_LEN  512


static const char  ngx_http_tiktok_pg_set_user[] =
    "SELECT set_config('app.user_id', $1, true)";


/*
 * Validates the conninfo with PQconninfoParse and prepares the keyword and
 * value arrays for PQconnectStartParams.  A host name is resolved here, at
 * configuration time, and passed as hostaddr: libpq would otherwise resolve
 * it with a blocking getaddrinfo() inside a worker.  The arrays point into
 * libpq's parsed options, which live as long as the configuration's pool.
 */

char *
ngx_http_tiktok_pg_conf(ngx_conf_t *cf, ngx_str_t *conninfo,
    const char *what, ngx_http_tiktok_pg_conf_t *pgcf)
{
    char                *err;
    u_char               buf[NGX_HTTP_TIKTOK_PG_MSG_LEN];
    ngx_str_t            hostaddr;
    ngx_uint_t           n, i, has_app_name;
    PQconninfoOption    *opts, *o;
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    /* nginx's arguments end in NUL */

    err = NULL;
    opts = PQconninfoParse((char *) conninfo->data, &err);

    if (opts == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_postgres\" has an invalid %s: %s", what,
                           err ? ngx_http_tiktok_pg_msg(buf, sizeof(buf), err)
                               : (u_char *) "out of memory");
        if (err) {
            PQfreemem(err);
        }
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_tiktok_pg_conf_cleanup;
    cln->data = opts;

    ngx_str_null(&hostaddr);

    if (ngx_http_tiktok_pg_resolve(cf, opts, &hostaddr) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    n = 0;
    for (o = opts; o->keyword; o++) {
        n++;
    }

    pgcf->keywords = ngx_pcalloc(cf->pool, (n + 3) * sizeof(char *));
    pgcf->values = ngx_pcalloc(cf->pool, (n + 3) * sizeof(char *));
    if (pgcf->keywords == NULL || pgcf->values == NULL) {
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

        pgcf->keywords[i] = o->keyword;
        pgcf->values[i] = o->val;
        i++;
    }

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

    return NGX_CONF_OK;
}


static void
ngx_http_tiktok_pg_conf_cleanup(void *data)
{
    PQconninfoFree(data);
}


/*
 * host=name[,name...] without hostaddr: resolve every name now and build the
 * matching hostaddr list, where an address literal stands for itself and a
 * Unix socket directory has an empty entry.  When no name needs a lookup
 * there is no list.
 */

static ngx_int_t
ngx_http_tiktok_pg_resolve(ngx_conf_t *cf, PQconninfoOption *opts,
    ngx_str_t *hostaddr)
{
    u_char             *p, *last, *end, *a;
    size_t              n;
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

    p = (u_char *) host->val;
    last = p + ngx_strlen(p);

    /* each entry is at most as long as its host, or an address */

    n = 1;
    for (end = p; end < last; end++) {
        n += (*end == ',');
    }

    a = ngx_pnalloc(cf->pool, (last - p) + n * NGX_SOCKADDR_STRLEN + 1);
    if (a == NULL) {
        return NGX_ERROR;
    }

    hostaddr->data = a;
    need = 0;

    while (p < last && ngx_http_tiktok_next_item(&p, last, ',', &name)) {
        if (name.data > (u_char *) host->val) {
            *a++ = ',';
        }

        if (name.len == 0 || name.data[0] == '/' || name.data[0] == '@') {
            continue;
        }

        if (ngx_inet_addr(name.data, name.len) != INADDR_NONE
#if (NGX_HAVE_INET6)
            || ngx_strlchr(name.data, name.data + name.len, ':') != NULL
#endif
            )
        {
            a = ngx_cpymem(a, name.data, name.len);
            continue;
        }

        need = 1;

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

        a += ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, a,
                           NGX_SOCKADDR_STRLEN, 0);
    }

    *a = '\0';
    hostaddr->len = need ? (size_t) (a - hostaddr->data) : 0;

    return NGX_OK;
}


/*
 * The connection.  Its owner initializes it here, sets the hooks and data,
 * and opens it with ngx_http_tiktok_pg_conn_connect.  Only closed is ever
 * called from inside the calls below (every close calls it); the other
 * hooks run from the connection's own events.
 */

void
ngx_http_tiktok_pg_conn_init(ngx_http_tiktok_pg_conn_t *pc,
    ngx_http_tiktok_pg_conf_t *conf, ngx_log_t *log, const char *name)
{
    pc->conf = conf;
    pc->log = log;
    pc->name = name;

    ngx_http_tiktok_event_init(&pc->timer, ngx_http_tiktok_pg_timeout, pc, log);
    pc->timer.cancelable = 1;
}


/* NGX_ERROR: it is closed again (and closed was called) */

ngx_int_t
ngx_http_tiktok_pg_conn_connect(ngx_http_tiktok_pg_conn_t *pc)
{
    pc->pgconn = PQconnectStartParams(pc->conf->keywords, pc->conf->values,
                                      0);

    if (pc->pgconn == NULL) {
        ngx_log_error(NGX_LOG_ALERT, pc->log, 0,
                      "tiktok: PQconnectStartParams() failed: out of memory");
        ngx_http_tiktok_pg_conn_close(pc, NULL);
        return NGX_ERROR;
    }

    if (PQstatus(pc->pgconn) == CONNECTION_BAD) {
        ngx_http_tiktok_pg_conn_close(pc, PQerrorMessage(pc->pgconn));
        return NGX_ERROR;
    }

    PQsetNoticeProcessor(pc->pgconn, ngx_http_tiktok_pg_notice, pc->log);

    if (ngx_http_tiktok_pg_wrap(pc) != NGX_OK) {
        ngx_http_tiktok_pg_conn_close(pc, "cannot wrap the socket");
        return NGX_ERROR;
    }

    pc->state = NGX_HTTP_TIKTOK_PG_CONNECTING;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, pc->log, 0,
                   "tiktok %s: connecting fd:%d", pc->name, pc->c->fd);

    ngx_add_timer(&pc->timer, pc->conf->timeout);

    /* libpq wants the socket to become writable first */

    if (ngx_http_tiktok_event_want(pc->c->write, 1) != NGX_OK) {
        ngx_http_tiktok_pg_conn_close(pc, "cannot add write event");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The owner has queued a query with PQsend* (in pipeline mode, and a Sync):
 * the connection is busy until its results are read, for at most timeout
 * unless that is 0.  NGX_ERROR: it cannot be sent; the owner closes.
 */

ngx_int_t
ngx_http_tiktok_pg_conn_send(ngx_http_tiktok_pg_conn_t *pc,
    ngx_msec_t timeout)
{
    pc->state = NGX_HTTP_TIKTOK_PG_BUSY;

    if (timeout) {
        ngx_add_timer(&pc->timer, timeout);
    }

    return ngx_http_tiktok_pg_flush(pc);
}


void
ngx_http_tiktok_pg_conn_close(ngx_http_tiktok_pg_conn_t *pc, const char *why)
{
    u_char      *msg, buf[NGX_HTTP_TIKTOK_PG_MSG_LEN];
    ngx_uint_t   level;

    msg = NULL;

    if (why) {
        /* flattened now: it may be libpq's, which PQfinish frees */
        msg = ngx_http_tiktok_pg_msg(buf, sizeof(buf), why);
        level = pc->quiet ? NGX_LOG_INFO : NGX_LOG_ERR;

        ngx_log_error(level, pc->log, 0, "tiktok: %s connection closed: %s",
                      pc->name, msg);
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

    pc->closed(pc, msg);
}


/*
 * The primary message and SQLSTATE only: DETAIL lines may quote row values
 * ("Failing row contains ...").
 */

void
ngx_http_tiktok_pg_conn_failed(ngx_http_tiktok_pg_conn_t *pc, ngx_log_t *log,
    PGresult *res)
{
    char    *msg, *state;
    u_char   buf[NGX_HTTP_TIKTOK_PG_MSG_LEN];

    msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "tiktok: %s statement failed: %s (SQLSTATE %s)", pc->name,
                  ngx_http_tiktok_pg_msg(buf, sizeof(buf),
                                         msg ? msg : "unknown error"),
                  state ? state : "-");
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
        ngx_log_error(NGX_LOG_ERR, pc->log, 0,
                      "tiktok: %s connection has no socket", pc->name);
        return NGX_ERROR;
    }

    c = ngx_get_connection(fd, pc->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->shared = 1;
    c->data = pc;
    c->read->handler = ngx_http_tiktok_pg_handler;
    c->write->handler = ngx_http_tiktok_pg_handler;
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
        (void) ngx_http_tiktok_event_want(c->read, 0);
        (void) ngx_http_tiktok_event_want(c->write, 0);
    }

    ngx_close_connection(c);
    pc->c = NULL;
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
    PostgresPollingStatusType  st;

    st = PQconnectPoll(pc->pgconn);

    if (st != PGRES_POLLING_FAILED && PQsocket(pc->pgconn) != pc->c->fd) {
        ngx_http_tiktok_pg_unwrap(pc, 0);

        if (ngx_http_tiktok_pg_wrap(pc) != NGX_OK) {
            ngx_http_tiktok_pg_conn_close(pc, "cannot follow the new socket");
            return;
        }
    }

    switch (st) {

    case PGRES_POLLING_READING:
        (void) ngx_http_tiktok_event_want(pc->c->write, 0);
        return;

    case PGRES_POLLING_WRITING:
        if (ngx_http_tiktok_event_want(pc->c->write, 1) != NGX_OK) {
            ngx_http_tiktok_pg_conn_close(pc, "cannot add write event");
        }
        return;

    case PGRES_POLLING_FAILED:
        ngx_http_tiktok_pg_conn_close(pc, PQerrorMessage(pc->pgconn));
        pc->connected(pc, NGX_ERROR);
        return;

    default: /* PGRES_POLLING_OK */
        break;
    }

    (void) ngx_http_tiktok_event_want(pc->c->write, 0);

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    if (PQsetnonblocking(pc->pgconn, 1) != 0
        || (pc->pipeline && PQenterPipelineMode(pc->pgconn) != 1))
    {
        ngx_http_tiktok_pg_conn_close(pc, PQerrorMessage(pc->pgconn));
        pc->connected(pc, NGX_ERROR);
        return;
    }

    pc->state = NGX_HTTP_TIKTOK_PG_IDLE;

    pc->connected(pc, NGX_OK);
}


static void
ngx_http_tiktok_pg_timeout(ngx_event_t *ev)
{
    ngx_http_tiktok_pg_conn_t  *pc = ev->data;

    if (pc->state != NGX_HTTP_TIKTOK_PG_CONNECTING) {
        ngx_http_tiktok_pg_conn_close(pc, "query timed out");
        return;
    }

    ngx_http_tiktok_pg_conn_close(pc, "connect timed out");
    pc->connected(pc, NGX_ERROR);
}


/*
 * Both events of the socket.  Notifications go to the owner's notify hook,
 * or are dropped: behind a transaction pooler a server connection that
 * another client made LISTEN can be lent to a pool's connection, which
 * must not keep what it hears.
 */

static void
ngx_http_tiktok_pg_handler(ngx_event_t *ev)
{
    PGnotify                   *n;
    ngx_connection_t           *c;
    ngx_http_tiktok_pg_conn_t  *pc;

    c = ev->data;
    pc = c->data;

    if (pc->state == NGX_HTTP_TIKTOK_PG_CONNECTING) {
        ngx_http_tiktok_pg_poll(pc);
        return;
    }

    if (ev->write) {
        if (ngx_http_tiktok_pg_flush(pc) == NGX_ERROR) {
            ngx_http_tiktok_pg_conn_close(pc, PQerrorMessage(pc->pgconn));
        }
        return;
    }

    if (!PQconsumeInput(pc->pgconn)) {
        ngx_http_tiktok_pg_conn_close(pc, PQerrorMessage(pc->pgconn));
        return;
    }

    while ((n = PQnotifies(pc->pgconn)) != NULL) {
        if (pc->notify) {
            pc->notify(pc, n);
        }

        PQfreemem(n);
    }

    /* when idle: has the server gone away (e.g. restarted)? */

    if (pc->state == NGX_HTTP_TIKTOK_PG_BUSY
        ? ngx_http_tiktok_pg_results(pc) == NGX_ERROR
        : PQstatus(pc->pgconn) == CONNECTION_BAD)
    {
        ngx_http_tiktok_pg_conn_close(pc, PQerrorMessage(pc->pgconn));
        return;
    }

    if (pc->state == NGX_HTTP_TIKTOK_PG_IDLE) {
        pc->idle(pc);
    }
}


/* what libpq could not send yet waits for the socket to become writable */

static ngx_int_t
ngx_http_tiktok_pg_flush(ngx_http_tiktok_pg_conn_t *pc)
{
    int  rc;

    rc = PQflush(pc->pgconn);

    if (rc == -1) {
        return NGX_ERROR;
    }

    if (rc == 1) {
        return ngx_http_tiktok_event_want(pc->c->write, 1);
    }

    /* a socket that stays watched only wakes us once more */
    (void) ngx_http_tiktok_event_want(pc->c->write, 0);

    return NGX_OK;
}


/*
 * Reads every complete result, up to the end of the query (plain mode) or
 * its Sync (pipeline mode).  PQgetResult is only called when PQisBusy says
 * it will not wait: in a worker it must never block.
 */

static ngx_int_t
ngx_http_tiktok_pg_results(ngx_http_tiktok_pg_conn_t *pc)
{
    PGresult  *res;

    for ( ;; ) {
        if (PQisBusy(pc->pgconn)) {
            return PQstatus(pc->pgconn) == CONNECTION_BAD ? NGX_ERROR
                                                          : NGX_AGAIN;
        }

        res = PQgetResult(pc->pgconn);

        if (res == NULL && !pc->pipeline) {
            break;
        }

        if (res && PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }

        pc->result(pc, res);
    }

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    pc->state = NGX_HTTP_TIKTOK_PG_IDLE;

    return NGX_OK;
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


ngx_http_tiktok_pg_pool_t *
ngx_http_tiktok_pg_pool_create(ngx_cycle_t *cycle,
    ngx_http_tiktok_pg_conf_t *conf)
{
    ngx_uint_t                  i;
    ngx_http_tiktok_pg_slot_t  *s;
    ngx_http_tiktok_pg_pool_t  *pg;

    pg = ngx_pcalloc(cycle->pool, sizeof(ngx_http_tiktok_pg_pool_t));
    if (pg == NULL) {
        return NULL;
    }

    pg->slots = ngx_pcalloc(cycle->pool,
                            conf->size * sizeof(ngx_http_tiktok_pg_slot_t));
    if (pg->slots == NULL) {
        return NULL;
    }

    pg->conf = conf;
    ngx_queue_init(&pg->waiting);

    for (i = 0; i < conf->size; i++) {
        s = &pg->slots[i];
        s->pg = pg;

        ngx_http_tiktok_pg_conn_init(&s->conn, conf, cycle->log, "postgres");
        s->conn.connected = ngx_http_tiktok_pg_slot_connected;
        s->conn.result = ngx_http_tiktok_pg_slot_result;
        s->conn.idle = ngx_http_tiktok_pg_slot_idle;
        s->conn.closed = ngx_http_tiktok_pg_slot_closed;
        s->conn.data = s;
        s->conn.pipeline = 1;
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

    /* closing a closed connection changes nothing */

    for (i = 0; i < pg->conf->size; i++) {
        ngx_http_tiktok_pg_conn_close(&pg->slots[i].conn, NULL);
    }

    ngx_http_tiktok_pg_run_done();
}


ngx_http_tiktok_pg_query_t *
ngx_http_tiktok_pg_query_create(ngx_pool_t *pool, ngx_log_t *log,
    ngx_str_t *user, ngx_http_tiktok_pg_handler_pt handler, void *data)
{
    ngx_pool_cleanup_t          *cln;
    ngx_http_tiktok_pg_query_t  *q;

    cln = ngx_pool_cleanup_add(pool, sizeof(ngx_http_tiktok_pg_query_t));
    if (cln == NULL) {
        return NULL;
    }

    q = cln->data;
    ngx_memzero(q, sizeof(ngx_http_tiktok_pg_query_t));
    cln->handler = ngx_http_tiktok_pg_query_cleanup;

    if (user) {
        q->user_id = *user;
    }

    q->handler = handler;
    q->data = data;
    q->pool = pool;
    q->log = log;
    q->rc = NGX_ERROR;

    ngx_http_tiktok_event_init(&q->timer, ngx_http_tiktok_pg_query_timeout,
                               q, log);
    ngx_http_tiktok_event_init(&q->done, ngx_http_tiktok_pg_done_handler, q,
                               log);

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
    }

    q->nstmts++;

    return NGX_OK;
}


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
    ngx_http_tiktok_pg_slot_t   *s;
    ngx_http_tiktok_pg_query_t  *q;

    for (i = 0; i < pg->conf->size && !ngx_queue_empty(&pg->waiting); i++) {
        s = &pg->slots[i];

        if (s->conn.state != NGX_HTTP_TIKTOK_PG_IDLE) {
            continue;
        }

        qu = ngx_queue_head(&pg->waiting);
        q = ngx_queue_data(qu, ngx_http_tiktok_pg_query_t, queue);

        ngx_queue_remove(qu);
        q->queued = 0;

        if (ngx_http_tiktok_pg_send(s, q) != NGX_OK) {
            /* the connection went away; try the query elsewhere once */
            ngx_http_tiktok_pg_conn_close(&s->conn, "send failed");

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
        connecting += (pg->slots[i].conn.state
                       == NGX_HTTP_TIKTOK_PG_CONNECTING);
    }

    for (i = 0; i < pg->conf->size; i++) {
        s = &pg->slots[i];

        if (may_connect && connecting < waiting
            && s->conn.state == NGX_HTTP_TIKTOK_PG_CLOSED
            && ngx_http_tiktok_pg_conn_connect(&s->conn) == NGX_OK)
        {
            connecting++;
        }

        open += (s->conn.state != NGX_HTTP_TIKTOK_PG_CLOSED);
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


/*
 * Sends the RLS setting, the statements and a Sync in pipeline mode.
 */

static ngx_int_t
ngx_http_tiktok_pg_send(ngx_http_tiktok_pg_slot_t *s,
    ngx_http_tiktok_pg_query_t *q)
{
    PGconn                     *pgconn;
    ngx_uint_t                  i;
    const char                 *values[1];
    ngx_http_tiktok_pg_stmt_t  *st;

    pgconn = s->conn.pgconn;

    if (q->user_id.len) {
        values[0] = (const char *) q->user_id.data;

        if (!PQsendQueryParams(pgconn, ngx_http_tiktok_pg_set_user, 1,
                               NULL, values, NULL, NULL, 0))
        {
            return NGX_ERROR;
        }
    }

    for (i = 0; i < q->nstmts; i++) {
        st = &q->stmts[i];

        /* all text: libpq takes their lengths from the NULs */
        if (!PQsendQueryParams(pgconn, st->sql, st->nparams, NULL,
                               st->values, NULL, NULL, 0))
        {
            return NGX_ERROR;
        }
    }

    if (!PQpipelineSync(pgconn)
        || ngx_http_tiktok_pg_conn_send(&s->conn, 0) != NGX_OK)
    {
        return NGX_ERROR;
    }

    s->query = q;
    s->failed = 0;

    q->conn = &s->conn;
    q->result = q->user_id.len ? (ngx_uint_t) -1 : 0;

    return NGX_OK;
}


static void
ngx_http_tiktok_pg_slot_connected(ngx_http_tiktok_pg_conn_t *pc,
    ngx_int_t rc)
{
    ngx_http_tiktok_pg_slot_t  *s;

    s = pc->data;

    if (rc == NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, pc->log, 0,
                      "tiktok: postgres connection established, "
                      "server version %d", PQserverVersion(pc->pgconn));
    }

    ngx_http_tiktok_pg_dispatch(s->pg, rc == NGX_OK);
}


/* NULL: the end of one statement's results */

static void
ngx_http_tiktok_pg_slot_result(ngx_http_tiktok_pg_conn_t *pc, PGresult *res)
{
    ExecStatusType               st;
    ngx_http_tiktok_pg_slot_t   *s;
    ngx_http_tiktok_pg_query_t  *q;

    s = pc->data;
    q = s->query;

    if (res == NULL) {
        if (q) {
            q->result++;
        }
        return;
    }

    st = PQresultStatus(res);

    if (st == PGRES_FATAL_ERROR && !s->failed) {
        s->failed = 1;
        ngx_http_tiktok_pg_conn_failed(pc, q ? q->log : pc->log, res);
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


/* the query's results are all in (or there was none): the next one */

static void
ngx_http_tiktok_pg_slot_idle(ngx_http_tiktok_pg_conn_t *pc)
{
    ngx_http_tiktok_pg_slot_t  *s;

    s = pc->data;

    ngx_http_tiktok_pg_slot_done(s, s->failed ? NGX_DECLINED : NGX_OK);
    ngx_http_tiktok_pg_dispatch(s->pg, 1);
}


static void
ngx_http_tiktok_pg_slot_closed(ngx_http_tiktok_pg_conn_t *pc, u_char *why)
{
    ngx_http_tiktok_pg_slot_done(pc->data, NGX_ERROR);
}


static void
ngx_http_tiktok_pg_slot_done(ngx_http_tiktok_pg_slot_t *s, ngx_int_t rc)
{
    ngx_http_tiktok_pg_query_t  *q;

    q = s->query;

    if (q) {
        s->query = NULL;
        q->conn = NULL;
        ngx_http_tiktok_pg_complete(q, rc);
    }
}


/* out of the waiting queue and its timer */

static void
ngx_http_tiktok_pg_detach(ngx_http_tiktok_pg_query_t *q)
{
    if (q->queued) {
        ngx_queue_remove(&q->queue);
        q->queued = 0;
    }

    if (q->timer.timer_set) {
        ngx_del_timer(&q->timer);
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
    ngx_http_tiktok_pg_detach(q);

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

again:

    for (qu = ngx_queue_head(&ngx_posted_events);
         qu != ngx_queue_sentinel(&ngx_posted_events);
         qu = ngx_queue_next(qu))
    {
        ev = ngx_queue_data(qu, ngx_event_t, queue);

        if (ev->handler == ngx_http_tiktok_pg_done_handler) {
            /* the handler may change the queue */
            ngx_delete_posted_event(ev);
            ev->handler(ev);
            goto again;
        }
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

    pc = q->conn;

    if (pc) {
        /* the only non-blocking way to stop a running query */
        ngx_http_tiktok_pg_conn_close(pc, "query timed out");

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

    ngx_uint_t                  i;
    ngx_http_tiktok_pg_slot_t  *s;

    ngx_http_tiktok_pg_detach(q);

    if (q->done.posted) {
        /* completed, but its handler had not run yet: it never will */
        ngx_delete_posted_event(&q->done);
    }

    if (q->conn) {
        /* its results will be read and dropped */
        s = q->conn->data;
        s->query = NULL;
        q->conn = NULL;
    }

    for (i = 0; i < NGX_HTTP_TIKTOK_PG_MAX_STMTS; i++) {
        if (q->res[i]) {
            PQclear(q->res[i]);
            q->res[i] = NULL;
        }
    }
}


ngx_int_t
ngx_http_tiktok_pg_copy(ngx_pool_t *pool, PGresult *res, int row, int col,
    ngx_str_t *value)
{
    size_t  len;

    ngx_str_null(value);

    if (PQntuples(res) <= row || PQgetisnull(res, row, col)) {
        return NGX_OK;
    }

    len = PQgetlength(res, row, col);

    value->data = ngx_pnalloc(pool, len + 1);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(value->data, PQgetvalue(res, row, col), len);
    value->data[len] = '\0';
    value->len = len;

    return NGX_OK;
}


/* for the operator metrics (ngx_http_tiktok_metrics.c) */

void
ngx_http_tiktok_pg_pool_stats(ngx_http_tiktok_pg_pool_t *pg,
    ngx_uint_t *busy, ngx_uint_t *idle, ngx_uint_t *waiting)
{
    ngx_uint_t    i;
    ngx_queue_t  *qu;

    *busy = 0;
    *idle = 0;
    *waiting = 0;

    for (i = 0; i < pg->conf->size; i++) {
        switch (pg->slots[i].conn.state) {

        case NGX_HTTP_TIKTOK_PG_BUSY:
            (*busy)++;
            break;

        case NGX_HTTP_TIKTOK_PG_IDLE:
            (*idle)++;
            break;

        default:
            /* closed, or still connecting */
            break;
        }
    }

    for (qu = ngx_queue_head(&pg->waiting);
         qu != ngx_queue_sentinel(&pg->waiting);
         qu = ngx_queue_next(qu))
    {
        (*waiting)++;
    }
}
