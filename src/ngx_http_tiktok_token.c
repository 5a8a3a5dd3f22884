
/*
 * The caller's TikTok access token, for a request: the refresh lease
 * (ngx_http_tiktok_lease.c) with a request as its transport.  A request
 * waits for another's refresh on a timer of its own, looking again every
 * NGX_HTTP_TIKTOK_TOKEN_POLL ms; the outcome lands in ctx->token (the lease
 * itself), a failed refresh call is recorded in tiktok.api_errors, then
 * next(r) runs.  A refresh TikTok may have performed is stored even when
 * the client has gone: the request lives on, its caller holding
 * r->main->count, until next(r) finalizes it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_token.h"
#include "ngx_http_tiktok_reply.h"
#include "ngx_http_tiktok_validate.h"


#define NGX_HTTP_TIKTOK_TOKEN_POLL   100     /* ms between looks at a lease */


typedef struct {
    ngx_http_tiktok_lease_t      lease;          /* ctx->token */
    ngx_event_t                  wait;           /* wait.data: the request */
    ngx_http_tiktok_next_pt      next;
} ngx_http_tiktok_token_t;


static void ngx_http_tiktok_token_wait_handler(ngx_event_t *ev);
static void ngx_http_tiktok_token_done(ngx_http_tiktok_lease_t *lease);
static void ngx_http_tiktok_token_cleanup(void *data);


/*
 * Starts getting the caller's token; next(r) runs later, from the event
 * loop, with ctx->token->status set.  NGX_ERROR: nothing started.
 */

ngx_int_t
ngx_http_tiktok_token(ngx_http_request_t *r, ngx_http_tiktok_next_pt next)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_tiktok_ctx_t    *ctx;
    ngx_http_tiktok_token_t  *tk;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    tk = ngx_pcalloc(r->pool, sizeof(ngx_http_tiktok_token_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (tk == NULL || cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_tiktok_token_cleanup;
    cln->data = tk;

    tk->lease.pool = r->pool;
    tk->lease.log = r->connection->log;
    tk->lease.tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);
    tk->lease.user = ctx->user_id;
    tk->lease.request_id = ctx->request_id;
    tk->lease.timer = &tk->wait;
    tk->lease.poll = NGX_HTTP_TIKTOK_TOKEN_POLL;
    tk->lease.done = ngx_http_tiktok_token_done;
    tk->lease.data = tk;

    tk->next = next;
    ngx_http_tiktok_event_init(&tk->wait, ngx_http_tiktok_token_wait_handler,
                               r, r->connection->log);

    ctx->token = &tk->lease;

    return ngx_http_tiktok_lease_start(&tk->lease);
}


static void
ngx_http_tiktok_token_wait_handler(ngx_event_t *ev)
{
    ngx_http_request_t     *r;
    ngx_http_tiktok_ctx_t  *ctx;

    r = ev->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    ngx_http_tiktok_lease_load(ctx->token);

    ngx_http_run_posted_requests(r->connection);
}


/* the lease's outcome: record a failed refresh call, then answer */

static void
ngx_http_tiktok_token_done(ngx_http_tiktok_lease_t *lease)
{
    ngx_http_request_t       *r;
    ngx_http_tiktok_token_t  *tk;

    tk = lease->data;
    r = tk->wait.data;

    if (lease->err.endpoint == NULL
        || ngx_http_tiktok_record_error(r, &lease->err, NGX_LOG_ERR, tk->next)
           != NGX_OK)
    {
        tk->next(r);
    }
}


static void
ngx_http_tiktok_token_cleanup(void *data)
{
    ngx_http_tiktok_token_t  *tk = data;

    if (tk->wait.timer_set) {
        ngx_del_timer(&tk->wait);
    }
}


/* the answer for a caller whose token could not be had */

ngx_int_t
ngx_http_tiktok_token_error(ngx_http_request_t *r)
{
    ngx_http_tiktok_ctx_t    *ctx;
    ngx_http_tiktok_lease_t  *lease;

    /* by NGX_HTTP_TIKTOK_TOKEN_ status; TIKTOK_DOWN with its own status */
    static struct {
        ngx_uint_t   status;
        char        *code;
        char        *message;
    } errors[] = {
        { NGX_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
          "Internal error" },
        { NGX_HTTP_UNAUTHORIZED, "not_connected", "TikTok not connected" },
        { NGX_HTTP_UNAUTHORIZED, "reconnect_required",
          "Connection failed. Try reconnecting." },
        { NGX_HTTP_SERVICE_UNAVAILABLE, "database_unavailable",
          "Service temporarily unavailable" },
        { 0, "tiktok_unavailable",
          "TikTok is not answering. Try again shortly." },
        { NGX_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
          "Internal error" }
    };

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    lease = ctx->token;

    return ngx_http_tiktok_send_error(r, errors[lease->status].status
                                         ? errors[lease->status].status
                                         : lease->http_status,
                                      errors[lease->status].code, NULL,
                                      errors[lease->status].message);
}


/* whether the user granted scope (TikTok's "a,b,c" as stored) */

ngx_uint_t
ngx_http_tiktok_token_has_scope(ngx_http_request_t *r, const char *scope)
{
    u_char                 *p, *last;
    size_t                  len;
    ngx_str_t               s;
    ngx_http_tiktok_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    len = ngx_strlen(scope);
    p = ctx->token->scopes.data;
    last = p + ctx->token->scopes.len;

    while (p && p < last && ngx_http_tiktok_next_item(&p, last, ',', &s)) {
        if (s.len == len && ngx_strncmp(s.data, scope, len) == 0) {
            return 1;
        }
    }

    return 0;
}
