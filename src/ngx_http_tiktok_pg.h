
/*
 * A per-worker pool of libpq connections driven by nginx's event loop.
 *
 * Each query runs "SELECT set_config('app.user_id', $1, true)" and up to
 * NGX_HTTP_TIKTOK_PG_MAX_STMTS statements in libpq pipeline mode followed by
 * one Sync: one round trip, and the statements share the implicit
 * transaction that the Sync closes, so the row-level-security setting holds
 * for exactly that transaction and an error in any statement rolls all of
 * them back.
 *
 * A query's handler always runs later, from the event loop (a posted
 * event), never from inside ngx_http_tiktok_pg_run: not even when the
 * query fails at once because no connection can be opened (a Unix socket
 * nobody listens on, worker_connections exhausted).  A caller can start a
 * query and then go on using its request or job; and when the query's
 * pool is destroyed first, the handler does not run at all.  The one
 * exception is a worker's exit: ngx_http_tiktok_pg_pool_destroy fails
 * what is left and runs those handlers itself, as the event loop will
 * not run again.
 */


#ifndef _NGX_HTTP_TIKTOK_PG_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_PG_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <libpq-fe.h>


#define NGX_HTTP_TIKTOK_PG_MAX_STMTS   8
#define NGX_HTTP_TIKTOK_PG_MAX_PARAMS  16


typedef struct ngx_http_tiktok_pg_pool_s   ngx_http_tiktok_pg_pool_t;
typedef struct ngx_http_tiktok_pg_conn_s   ngx_http_tiktok_pg_conn_t;
typedef struct ngx_http_tiktok_pg_query_s  ngx_http_tiktok_pg_query_t;

typedef void (*ngx_http_tiktok_pg_handler_pt)(ngx_http_tiktok_pg_query_t *q);


typedef struct {
    const char                    **keywords;   /* NULL-terminated */
    const char                    **values;
    ngx_uint_t                      size;       /* pool=N */
    ngx_msec_t                      timeout;    /* timeout=T */
} ngx_http_tiktok_pg_conf_t;


typedef struct {
    const char                     *sql;
    int                             nparams;
    const char                     *values[NGX_HTTP_TIKTOK_PG_MAX_PARAMS];
} ngx_http_tiktok_pg_stmt_t;


struct ngx_http_tiktok_pg_query_s {
    ngx_str_t                       user_id;    /* empty: no RLS setting */
    ngx_http_tiktok_pg_stmt_t       stmts[NGX_HTTP_TIKTOK_PG_MAX_STMTS];
    ngx_uint_t                      nstmts;

    /*
     * Outcome, valid in the handler:
     *   NGX_OK        every statement succeeded, results in res[]
     *   NGX_DECLINED  a statement failed (its message and SQLSTATE are
     *                 logged)
     *   NGX_ERROR     the database could not be reached, the connection
     *                 broke, or the query timed out
     */
    ngx_int_t                       rc;
    PGresult                       *res[NGX_HTTP_TIKTOK_PG_MAX_STMTS];

    ngx_http_tiktok_pg_handler_pt   handler;
    void                           *data;
    ngx_pool_t                     *pool;
    ngx_log_t                      *log;

    /* private to the pool */
    ngx_http_tiktok_pg_pool_t      *pg;
    ngx_http_tiktok_pg_conn_t      *conn;
    ngx_queue_t                     queue;
    ngx_event_t                     timer;
    ngx_event_t                     done;       /* posted: run the handler */
    ngx_uint_t                      result;     /* result being read */
    unsigned                        queued:1;
    unsigned                        retried:1;
};


/*
 * One libpq connection on the event loop, for the pool and the listener
 * alike: it connects, sends what its owner queued with PQsend*, reads the
 * results and the notifications, and tells its owner through the hooks.
 */

#define NGX_HTTP_TIKTOK_PG_CLOSED      0
#define NGX_HTTP_TIKTOK_PG_CONNECTING  1
#define NGX_HTTP_TIKTOK_PG_IDLE        2
#define NGX_HTTP_TIKTOK_PG_BUSY        3

struct ngx_http_tiktok_pg_conn_s {
    PGconn                         *pgconn;
    ngx_connection_t               *c;
    ngx_http_tiktok_pg_conf_t      *conf;
    ngx_log_t                      *log;
    const char                     *name;       /* "postgres", in the log */
    ngx_event_t                     timer;      /* connect, query deadline */
    ngx_uint_t                      state;

    /* the owner's hooks, all required but notify */

    /* rc: NGX_OK when it is open, NGX_ERROR when it could not be opened */
    void                          (*connected)(ngx_http_tiktok_pg_conn_t *pc,
                                       ngx_int_t rc);
    /* owns res; NULL: in pipeline mode, one statement's results ended */
    void                          (*result)(ngx_http_tiktok_pg_conn_t *pc,
                                       PGresult *res);
    /* NULL: notifications are dropped */
    void                          (*notify)(ngx_http_tiktok_pg_conn_t *pc,
                                       PGnotify *n);
    /* idle after a read: the results are all in, or it heard something */
    void                          (*idle)(ngx_http_tiktok_pg_conn_t *pc);
    /* closed; why (one line) was logged, NULL when nothing was */
    void                          (*closed)(ngx_http_tiktok_pg_conn_t *pc,
                                       u_char *why);
    void                           *data;

    unsigned                        pipeline:1;
    unsigned                        quiet:1;    /* log a close at info */
};


/* conninfo: a directive's argument, so it ends in NUL; what names it */
char *ngx_http_tiktok_pg_conf(ngx_conf_t *cf, ngx_str_t *conninfo,
    const char *what, ngx_http_tiktok_pg_conf_t *pgcf);

ngx_http_tiktok_pg_pool_t *ngx_http_tiktok_pg_pool_create(ngx_cycle_t *cycle,
    ngx_http_tiktok_pg_conf_t *conf);
void ngx_http_tiktok_pg_pool_destroy(ngx_http_tiktok_pg_pool_t *pg);

/* under user (NULL: no RLS setting); the handler finds data in q->data */
ngx_http_tiktok_pg_query_t *ngx_http_tiktok_pg_query_create(ngx_pool_t *pool,
    ngx_log_t *log, ngx_str_t *user, ngx_http_tiktok_pg_handler_pt handler,
    void *data);
ngx_int_t ngx_http_tiktok_pg_add(ngx_http_tiktok_pg_query_t *q,
    const char *sql, ngx_uint_t nparams, ngx_str_t *params);
/* a value copied into the pool with a NUL; NULL stays a null string */
ngx_int_t ngx_http_tiktok_pg_copy(ngx_pool_t *pool, PGresult *res,
    int row, int col, ngx_str_t *value);

/* NGX_OK: see above; NGX_ERROR: nothing started, the handler will not run */
ngx_int_t ngx_http_tiktok_pg_run(ngx_http_tiktok_pg_pool_t *pg,
    ngx_http_tiktok_pg_query_t *q);

/* the pool now: connections running a query, open and free; queries queued */
void ngx_http_tiktok_pg_pool_stats(ngx_http_tiktok_pg_pool_t *pg,
    ngx_uint_t *busy, ngx_uint_t *idle, ngx_uint_t *waiting);

void ngx_http_tiktok_pg_conn_init(ngx_http_tiktok_pg_conn_t *pc,
    ngx_http_tiktok_pg_conf_t *conf, ngx_log_t *log, const char *name);
ngx_int_t ngx_http_tiktok_pg_conn_connect(ngx_http_tiktok_pg_conn_t *pc);
ngx_int_t ngx_http_tiktok_pg_conn_send(ngx_http_tiktok_pg_conn_t *pc,
    ngx_msec_t timeout);
void ngx_http_tiktok_pg_conn_close(ngx_http_tiktok_pg_conn_t *pc,
    const char *why);
/* logs a failed statement's message and SQLSTATE */
void ngx_http_tiktok_pg_conn_failed(ngx_http_tiktok_pg_conn_t *pc,
    ngx_log_t *log, PGresult *res);


#endif /* _NGX_HTTP_TIKTOK_PG_H_INCLUDED_ */
