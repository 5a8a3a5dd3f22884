
/*
 * The refresh lease: a user's TikTok access token, refreshed before use
 * when it expires within five minutes, for a request and for the
 * publisher alike.
 *
 * TikTok rotates refresh tokens: two concurrent refreshes would break each
 * other.  So one caller claims a lease on the account row with an atomic
 * UPDATE (any worker, any nginx node sharing the database), refreshes, and
 * stores the new tokens and clears the lease in one UPDATE; every other
 * caller looks at the row again shortly and reuses the new token.  The
 * lease expires by itself should its holder die (see below).
 *
 * The lease runs its own statements (the PostgreSQL pool) and its own
 * OAuth POST (libcurl) in the pool it is given, and reports one outcome
 * through done().  What differs between callers is the transport's other
 * half: how a caller waits for another's refresh (the lease arms the
 * caller's timer, whose handler calls ngx_http_tiktok_lease_load) and what
 * it does with the outcome.
 */


#ifndef _NGX_HTTP_TIKTOK_LEASE_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_LEASE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_tiktok_module.h"


/*
 * A refresh call, a request's or the publisher's, goes through libcurl and
 * never lasts longer than NGX_HTTP_TIKTOK_REFRESH_TIMEOUT ms, connecting
 * included; the lease lasts NGX_HTTP_TIKTOK_REFRESH_LEASE, well beyond the
 * call and the store that follows it (tiktok_postgres timeout=, 10 s by
 * default), so nobody refreshes again while a refresh may still succeed.
 */
#define NGX_HTTP_TIKTOK_REFRESH_TIMEOUT  60000
#define NGX_HTTP_TIKTOK_REFRESH_LEASE    "3 minutes"

/*
 * Another caller's refresh is waited for as long as it may take: the call,
 * then the store (tiktok_postgres timeout=, 10 s by default).
 */
#define NGX_HTTP_TIKTOK_REFRESH_WAIT                                          \
    (NGX_HTTP_TIKTOK_REFRESH_TIMEOUT + 15000)


/* what the lease found (lease->status) */
#define NGX_HTTP_TIKTOK_TOKEN_OK             0
#define NGX_HTTP_TIKTOK_TOKEN_NOT_CONNECTED  1
#define NGX_HTTP_TIKTOK_TOKEN_RECONNECT      2
#define NGX_HTTP_TIKTOK_TOKEN_UNAVAILABLE    3   /* database */
#define NGX_HTTP_TIKTOK_TOKEN_TIKTOK_DOWN    4
#define NGX_HTTP_TIKTOK_TOKEN_ERROR          5


typedef void (*ngx_http_tiktok_lease_pt)(ngx_http_tiktok_lease_t *lease);


struct ngx_http_tiktok_lease_s {
    /* the caller's */
    ngx_pool_t                   *pool;
    ngx_log_t                    *log;
    ngx_http_tiktok_main_conf_t  *tmcf;
    ngx_str_t                     user;
    ngx_str_t                     request_id;    /* for the log, the call */
    ngx_event_t                  *timer;         /* then _lease_load */
    ngx_msec_t                    poll;          /* timer's, ms */
    ngx_http_tiktok_lease_pt      done;
    void                         *data;

    /* the outcome, when done() runs */
    ngx_uint_t                    status;        /* NGX_HTTP_TIKTOK_TOKEN_ */
    ngx_uint_t                    http_status;   /* with TIKTOK_DOWN */
    const char                   *why;           /* a failure, for a log */
    ngx_str_t                     access_token;  /* with OK */
    ngx_str_t                     scopes;        /* comma-separated */
    ngx_str_t                     expires_at;    /* as read, to invalidate */
    ngx_http_tiktok_api_error_t   err;           /* a failed refresh call */
    unsigned                      refreshed:1;
    unsigned                      invalid:1;     /* expire it first */

    /* the lease's own */
    ngx_str_t                     owner;
    ngx_str_t                     refresh_token;
    ngx_msec_t                    deadline;
};


/*
 * Starts getting the token; done() runs later, from the event loop, with
 * the outcome set.  NGX_ERROR: nothing started, done() will not run.
 */
ngx_int_t ngx_http_tiktok_lease_start(ngx_http_tiktok_lease_t *lease);

/* after the timer: look at the row again (done() runs on failure) */
void ngx_http_tiktok_lease_load(ngx_http_tiktok_lease_t *lease);

/*
 * TikTok refused the token the lease gave: expire it (unless someone
 * refreshed it meanwhile) and start again, which refreshes; done() runs
 * as after ngx_http_tiktok_lease_start.  A caller that sets
 * lease->invalid itself has the expiry in its next lease_query.
 */
ngx_int_t ngx_http_tiktok_lease_invalidate(ngx_http_tiktok_lease_t *lease);

/* a transaction under the user, the expiry first if lease->invalid */
ngx_http_tiktok_pg_query_t *ngx_http_tiktok_lease_query(
    ngx_http_tiktok_lease_t *lease, ngx_http_tiktok_pg_handler_pt handler,
    void *data);

/* the account row's sealed columns, as hex */
ngx_int_t ngx_http_tiktok_seal_hex(ngx_pool_t *pool, ngx_log_t *log,
    ngx_http_tiktok_keyring_t *keyring, ngx_str_t *user, const char *column,
    ngx_str_t *plain, ngx_str_t *hex);
ngx_int_t ngx_http_tiktok_unseal_hex(ngx_pool_t *pool, ngx_log_t *log,
    ngx_http_tiktok_keyring_t *keyring, ngx_str_t *user, const char *column,
    PGresult *res, int field, ngx_str_t *plain);


#endif /* _NGX_HTTP_TIKTOK_LEASE_H_INCLUDED_ */
