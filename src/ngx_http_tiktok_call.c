
/*
 * One TikTok call for the caller: token -> scope -> (cache, single flight)
 * -> rate limits -> subrequest -> envelope -> classification -> (one
 * refresh and retry) -> error row -> ctx->resume.
 *
 * The steps run from event handlers (the database, the subrequest, a
 * timer); each ends either by starting the next asynchronous step or in
 * ngx_http_tiktok_call_done, the one place the handler is resumed and
 * what it answers finalized.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_call.h"
#include "ngx_http_tiktok_token.h"
#include "ngx_http_tiktok_ratelimit.h"
#include "ngx_http_tiktok_reply.h"


#define NGX_HTTP_TIKTOK_CREATOR_TTL    300

/* single flight: the marker's life, the followers' poll */
#define NGX_HTTP_TIKTOK_FLIGHT_TTL     30      /* s */
#define NGX_HTTP_TIKTOK_FLIGHT_POLL    50      /* ms */
#define NGX_HTTP_TIKTOK_FAILED_TTL     3       /* s */
#define NGX_HTTP_TIKTOK_KEY_MAX        64


static void ngx_http_tiktok_call_token(ngx_http_request_t *r);
static void ngx_http_tiktok_call_send(ngx_http_request_t *r,
    ngx_http_tiktok_call_t *call);
static ngx_uint_t ngx_http_tiktok_call_limited(ngx_http_request_t *r,
    ngx_http_tiktok_call_t *call);
static void ngx_http_tiktok_call_answer(ngx_http_request_t *r,
    ngx_http_tiktok_api_call_t *api);
static void ngx_http_tiktok_call_fail(ngx_http_request_t *r,
    ngx_http_tiktok_call_t *call, ngx_uint_t status, const char *code,
    const char *message);
static void ngx_http_tiktok_call_done(ngx_http_request_t *r);
static ngx_int_t ngx_http_tiktok_call_cached(ngx_http_request_t *r,
    ngx_http_tiktok_call_t *call);
static ngx_int_t ngx_http_tiktok_call_flight(ngx_http_request_t *r,
    ngx_http_tiktok_call_t *call);
static void ngx_http_tiktok_call_flight_poll(ngx_event_t *ev);
static void ngx_http_tiktok_call_flight_end(ngx_http_tiktok_call_t *call);
static void ngx_http_tiktok_call_cleanup(void *data);
static void ngx_http_tiktok_call_key(ngx_http_tiktok_call_t *call,
    const char *suffix, u_char *buf, ngx_str_t *key);


static const char  ngx_http_tiktok_reconnect_msg[] =
    "Connection failed. Try reconnecting.";
static const char  ngx_http_tiktok_post_failed_msg[] =
    "Posting failed. Check permissions or try again.";
static const char  ngx_http_tiktok_rate_msg[] =
    "TikTok's rate limit was reached. Try again later.";
static const char  ngx_http_tiktok_down_msg[] =
    "TikTok is not answering. Try again shortly.";


ngx_int_t
ngx_http_tiktok_call(ngx_http_request_t *r, ngx_http_tiktok_call_t *call)
{
    ngx_pool_cleanup_t           *cln;
    ngx_http_tiktok_ctx_t        *ctx;
    ngx_http_tiktok_main_conf_t  *tmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);

    ctx->call = call;

    /* kept here: a redirect (an error page) clears the module's ctx */
    call->user = ctx->user_id;
    call->cache = tmcf->cache;

    if (!call->cleanup) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cln->handler = ngx_http_tiktok_call_cleanup;
        cln->data = call;
        call->cleanup = 1;
    }

    /* rate-limited: answered at once, without the database or TikTok */

    if (call->key.len == 0 && ngx_http_tiktok_call_limited(r, call)) {
        return ctx->resume(r, ctx);
    }

    if (ngx_http_tiktok_token(r, ngx_http_tiktok_call_token) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_tiktok_wait(r);
}


static void
ngx_http_tiktok_call_token(ngx_http_request_t *r)
{
    ngx_http_tiktok_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    if (ctx->token->status != NGX_HTTP_TIKTOK_TOKEN_OK) {
        ngx_http_tiktok_finalize(r, ngx_http_tiktok_token_error(r));
        return;
    }

    if (ctx->scope && !ngx_http_tiktok_token_has_scope(r, ctx->scope)) {
        ngx_http_tiktok_finalize(r, ngx_http_tiktok_send_error(r,
            NGX_HTTP_FORBIDDEN, "scope_missing", NULL,
            ctx->call->posting ? ngx_http_tiktok_post_failed_msg
                               : ngx_http_tiktok_reconnect_msg));
        return;
    }

    ngx_http_tiktok_call_send(r, ctx->call);
}


static void
ngx_http_tiktok_call_send(ngx_http_request_t *r, ngx_http_tiktok_call_t *call)
{
    ngx_int_t                     rc;
    ngx_http_tiktok_ctx_t        *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    if (call->key.len && call->cache && !call->retried) {
        rc = ngx_http_tiktok_call_cached(r, call);

        if (rc == NGX_AGAIN) {
            return;             /* another request asks TikTok */
        }

        if (rc == NGX_ERROR) {
            ngx_http_tiktok_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        if (rc == NGX_DONE) {
            ngx_http_tiktok_call_done(r);
            return;
        }
    }

    ngx_memzero(&call->api, sizeof(ngx_http_tiktok_api_call_t));

    call->api.method = NGX_HTTP_POST;
    call->api.path.data = (u_char *) call->endpoint;
    call->api.path.len = ngx_strlen(call->endpoint);
    call->api.args = call->args;
    call->api.body = call->body;
    ngx_str_set(&call->api.content_type, "application/json; charset=UTF-8");
    call->api.bearer = ctx->token->access_token;
    call->api.handler = ngx_http_tiktok_call_answer;

    if (ngx_http_tiktok_api_start(r, &call->api) != NGX_OK) {
        ngx_http_tiktok_call_flight_end(call);
        ngx_http_tiktok_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* from an event handler: the subrequest waits in posted requests */
    ngx_http_run_posted_requests(r->connection);
}


/*
 * In a back-off window TikTok opened, or over the per-client pace: the
 * call fails as 429 with the seconds to wait, and TikTok is not asked.
 */

static ngx_uint_t
ngx_http_tiktok_call_limited(ngx_http_request_t *r,
    ngx_http_tiktok_call_t *call)
{
    time_t     left;
    ngx_str_t  none = ngx_string("");

    left = ngx_http_tiktok_ratelimit_left(call->cache, r->pool, &call->user,
                                          call->endpoint);

    if (left == 0 && call->pace && call->cache) {
        left = ngx_http_tiktok_ratelimit_pace(call->cache, r->connection->log,
                                              &none, call->endpoint,
                                              call->pace);
    }

    if (left == 0) {
        return 0;
    }

    call->rc = NGX_DECLINED;
    call->status = NGX_HTTP_TOO_MANY_REQUESTS;
    call->code = "rate_limited";
    call->message = ngx_http_tiktok_rate_msg;
    call->retry_after = left;

    return 1;
}


static void
ngx_http_tiktok_call_answer(ngx_http_request_t *r,
    ngx_http_tiktok_api_call_t *api)
{
    json_t                  *data;
    ngx_int_t                rc;
    ngx_str_t                text;
    ngx_uint_t               kind;
    const char              *why;
    ngx_http_tiktok_ctx_t   *ctx;
    ngx_http_tiktok_call_t  *call;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    call = ctx->call;

    ngx_memzero(&call->err, sizeof(ngx_http_tiktok_api_error_t));
    call->err.endpoint = call->endpoint;

    rc = ngx_http_tiktok_api_envelope(r, api, &data, &call->err);

    if (rc == NGX_OK && call->check && (why = call->check(data)) != NULL) {
        /* TikTok's fault, not the user's: neither cached nor blamed */
        call->err.message = why;
        ngx_http_tiktok_call_fail(r, call, NGX_HTTP_BAD_GATEWAY,
                                  "tiktok_error",
                                  ngx_http_tiktok_post_failed_msg);
        return;
    }

    kind = ngx_http_tiktok_api_classify(rc, api->status, &call->err.code);

    switch (kind) {

    case NGX_HTTP_TIKTOK_API_OK:
        ngx_http_tiktok_ratelimit_clear(call->cache, &call->user,
                                        call->endpoint);

        if (call->key.len && call->cache
            && ngx_http_tiktok_json_encode(r->pool, data, &text) == NGX_OK)
        {
            (void) ngx_http_tiktok_cache_set(call->cache, &call->user,
                                             &call->key, &text, call->ttl);
        }

        ngx_http_tiktok_call_flight_end(call);

        call->rc = NGX_OK;
        call->data = data;
        ngx_http_tiktok_call_done(r);
        return;

    case NGX_HTTP_TIKTOK_API_TOKEN_INVALID:
        if (call->retried) {
            ngx_http_tiktok_call_fail(r, call, NGX_HTTP_UNAUTHORIZED,
                                      "reconnect_required",
                                      ngx_http_tiktok_reconnect_msg);
            return;
        }

        /* one refresh, then one retry, never more */
        call->retried = 1;

        if (ngx_http_tiktok_lease_invalidate(ctx->token) != NGX_OK) {
            ngx_http_tiktok_call_flight_end(call);
            ngx_http_tiktok_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        return;

    case NGX_HTTP_TIKTOK_API_RATE_LIMITED:
        call->retry_after = ngx_http_tiktok_ratelimit_open(call->cache,
                                r->pool, &call->user, call->endpoint,
                                &api->retry_after);
        call->err.message = "rate limited by TikTok";

        ngx_http_tiktok_call_fail(r, call, NGX_HTTP_TOO_MANY_REQUESTS,
                                  "rate_limited", ngx_http_tiktok_rate_msg);
        return;

    case NGX_HTTP_TIKTOK_API_SCOPE:
    case NGX_HTTP_TIKTOK_API_SCOPE_FIELD:
    case NGX_HTTP_TIKTOK_API_CANNOT_POST:
        if (call->posting && kind != NGX_HTTP_TIKTOK_API_SCOPE_FIELD) {
            /* the creator cannot post now (TikTok says so with 200) */
            call->err.message = "creator info says the creator cannot "
                                "post now";
            ngx_http_tiktok_call_fail(r, call, NGX_HTTP_FORBIDDEN,
                                      "post_failed",
                                      ngx_http_tiktok_post_failed_msg);
            return;
        }

        if (!call->posting && kind != NGX_HTTP_TIKTOK_API_CANNOT_POST) {
            ngx_http_tiktok_call_fail(r, call, NGX_HTTP_FORBIDDEN,
                                      "scope_missing",
                                      ngx_http_tiktok_reconnect_msg);
            return;
        }

        /* fall through */

    default:
        /* 5xx, timeouts, malformed answers: no retry now */
        ngx_http_tiktok_call_fail(r, call,
            api->status == NGX_HTTP_GATEWAY_TIME_OUT
            ? NGX_HTTP_GATEWAY_TIME_OUT : NGX_HTTP_BAD_GATEWAY,
            "tiktok_unavailable", ngx_http_tiktok_down_msg);
    }
}


/*
 * The call failed: the followers of a flight get the same answer, TikTok
 * spared; the error row is written, then the handler resumes.
 */

static void
ngx_http_tiktok_call_fail(ngx_http_request_t *r, ngx_http_tiktok_call_t *call,
    ngx_uint_t status, const char *code, const char *message)
{
    u_char     buf[NGX_HTTP_TIKTOK_KEY_MAX];
    ngx_str_t  key, value;

    call->rc = NGX_DECLINED;
    call->status = status;
    call->code = code;
    call->message = message;

    if (call->leader) {
        ngx_http_tiktok_call_key(call, ":failed", buf, &key);

        value.data = ngx_pnalloc(r->pool, 6 + ngx_strlen(code)
                                          + ngx_strlen(message));
        if (value.data != NULL) {
            value.len = ngx_sprintf(value.data, "%03ui %s\n%s%Z", status,
                                    code, message)
                        - value.data;

            (void) ngx_http_tiktok_cache_set(call->cache, &call->user, &key,
                                             &value,
                                             NGX_HTTP_TIKTOK_FAILED_TTL);
        }

        ngx_http_tiktok_call_flight_end(call);
    }

    if (ngx_http_tiktok_record_error(r, &call->err,
            status == NGX_HTTP_TOO_MANY_REQUESTS ? NGX_LOG_WARN : NGX_LOG_ERR,
            ngx_http_tiktok_call_done)
        != NGX_OK)
    {
        ngx_http_tiktok_call_done(r);
    }
}


/* the one resume of the handler */

static void
ngx_http_tiktok_call_done(ngx_http_request_t *r)
{
    ngx_http_tiktok_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    ngx_http_tiktok_finalize(r, ctx->resume(r, ctx));
}


ngx_int_t
ngx_http_tiktok_call_error(ngx_http_request_t *r, ngx_http_tiktok_call_t *call)
{
    ngx_str_t  value;

    if (call->status == NGX_HTTP_TOO_MANY_REQUESTS && call->retry_after) {
        value.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
        if (value.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        value.len = ngx_sprintf(value.data, "%T", call->retry_after)
                    - value.data;

        if (ngx_http_tiktok_set_header(r->pool, &r->headers_out.headers,
                                       "Retry-After", &value)
            == NULL)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_tiktok_send_error(r, call->status, call->code, NULL,
                                      call->message);
}


ngx_int_t
ngx_http_tiktok_call_reject(ngx_http_request_t *r,
    ngx_http_tiktok_call_t *call, const char *why, const char *message)
{
    ngx_http_tiktok_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    call->err.message = why;
    call->status = NGX_HTTP_BAD_GATEWAY;
    call->code = "tiktok_error";
    call->message = message;
    call->rc = NGX_DECLINED;

    if (ngx_http_tiktok_record_error(r, &call->err, NGX_LOG_ERR,
                                     ngx_http_tiktok_call_done)
        != NGX_OK)
    {
        return ctx->resume(r, ctx);
    }

    return ngx_http_tiktok_wait(r);
}


/*
 * A keyed call: NGX_DONE with the data from the cache, or failed (rate
 * limits, or the failure the flight met); NGX_OK: ask TikTok (this
 * request leads the flight, or waited long enough); NGX_AGAIN: another
 * request asks, look again later.
 */

static ngx_int_t
ngx_http_tiktok_call_cached(ngx_http_request_t *r,
    ngx_http_tiktok_call_t *call)
{
    json_t                         *data;
    json_error_t                    jerr;
    ngx_http_tiktok_cache_entry_t   entry;

    if (ngx_http_tiktok_cache_get(call->cache, &call->user, &call->key,
                                  r->pool, &entry)
        == NGX_OK)
    {
        data = ngx_http_tiktok_json_own(r->pool,
                   json_loadb((char *) entry.value.data, entry.value.len, 0,
                              &jerr));

        if (json_is_object(data)
            && (call->check == NULL || call->check(data) == NULL))
        {
            call->rc = NGX_OK;
            call->data = data;
            call->cached = 1;
            return NGX_DONE;
        }
    }

    if (ngx_http_tiktok_call_limited(r, call)) {
        return NGX_DONE;
    }

    return ngx_http_tiktok_call_flight(r, call);
}


static ngx_int_t
ngx_http_tiktok_call_flight(ngx_http_request_t *r,
    ngx_http_tiktok_call_t *call)
{
    u_char                         *p, *nl, *last;
    u_char                          buf[NGX_HTTP_TIKTOK_KEY_MAX];
    ngx_int_t                       n;
    ngx_str_t                       key;
    ngx_http_tiktok_cache_entry_t   entry;

    if (call->deadline == 0) {
        call->deadline = ngx_current_msec + NGX_HTTP_TIKTOK_FLIGHT_TTL * 1000;
    }

    /* "<status> <code>\n<message>\0": what the flight's leader answered */

    ngx_http_tiktok_call_key(call, ":failed", buf, &key);

    if (ngx_http_tiktok_cache_get(call->cache, &call->user, &key, r->pool,
                                  &entry)
        == NGX_OK)
    {
        p = entry.value.data;
        last = p + entry.value.len;

        nl = ngx_strlchr(p, last, '\n');
        n = (nl && nl - p > 4 && last[-1] == '\0') ? ngx_atoi(p, 3)
                                                   : NGX_ERROR;

        if (n >= NGX_HTTP_BAD_REQUEST && n < 600) {

            /* the value is ours, in the pool: make its parts strings */

            p[3] = '\0';
            *nl = '\0';

            call->rc = NGX_DECLINED;
            call->status = n;
            call->code = (char *) p + 4;
            call->message = (char *) nl + 1;
            return NGX_DONE;
        }
    }

    ngx_http_tiktok_call_key(call, ":flight", buf, &key);

    n = ngx_http_tiktok_cache_count(call->cache, &call->user, &key, 1,
                                    NGX_HTTP_TIKTOK_FLIGHT_TTL);

    if (n == 1) {
        call->leader = 1;
        return NGX_OK;
    }

    if (n == NGX_ERROR
        || (ngx_msec_int_t) (ngx_current_msec - call->deadline) >= 0)
    {
        return NGX_OK;          /* no room for a marker, or waited enough */
    }

    ngx_http_tiktok_event_init(&call->wait, ngx_http_tiktok_call_flight_poll,
                               r, r->connection->log);

    ngx_add_timer(&call->wait, NGX_HTTP_TIKTOK_FLIGHT_POLL);

    return NGX_AGAIN;
}


static void
ngx_http_tiktok_call_flight_poll(ngx_event_t *ev)
{
    ngx_http_request_t      *r;
    ngx_http_tiktok_ctx_t   *ctx;

    r = ev->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    ngx_http_tiktok_call_send(r, ctx->call);
}


/* the leader is done: its answer (or failure) is in the cache by now */

static void
ngx_http_tiktok_call_flight_end(ngx_http_tiktok_call_t *call)
{
    u_char     buf[NGX_HTTP_TIKTOK_KEY_MAX];
    ngx_str_t  key;

    if (!call->leader) {
        return;
    }

    call->leader = 0;

    ngx_http_tiktok_call_key(call, ":flight", buf, &key);

    (void) ngx_http_tiktok_cache_delete(call->cache, &call->user, &key);
}


static void
ngx_http_tiktok_call_cleanup(void *data)
{
    ngx_http_tiktok_call_t  *call = data;

    if (call->wait.timer_set) {
        ngx_del_timer(&call->wait);
    }

    ngx_http_tiktok_call_flight_end(call);
}


/* "<key><suffix>" for the call's user: the flight's marker and failure */

static void
ngx_http_tiktok_call_key(ngx_http_tiktok_call_t *call, const char *suffix,
    u_char *buf, ngx_str_t *key)
{
    key->data = buf;
    key->len = ngx_snprintf(buf, NGX_HTTP_TIKTOK_KEY_MAX, "%V%s", &call->key,
                            suffix)
               - buf;
}


ngx_int_t
ngx_http_tiktok_call_creator_info(ngx_http_request_t *r,
    ngx_http_tiktok_call_t *call)
{
    call->endpoint = NGX_HTTP_TIKTOK_CREATOR_PATH;
    ngx_str_set(&call->key, "creator_info");
    call->ttl = NGX_HTTP_TIKTOK_CREATOR_TTL;
    call->check = ngx_http_tiktok_api_creator_check;
    call->posting = 1;

    return ngx_http_tiktok_call(r, call);
}

