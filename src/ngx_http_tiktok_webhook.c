
/*
 * POST /api/tiktok/webhook (tiktok_webhook): TikTok's signed deliveries.
 *
 * A delivery is trusted only when its TikTok-Signature header
 * ("t=<unix>,s=<hex>") is HMAC-SHA256 with the client secret over
 * t + "." + the raw body, compared in constant time, t is within
 * NGX_HTTP_TIKTOK_WEBHOOK_WINDOW of our clock, and the body's client_key is
 * ours.  Anything else is a 401 that changes nothing but an api_errors row
 * naming why.  A trusted delivery goes to tiktok.webhook_apply()
 * (sql/010_webhooks.sql), which records it once (the SHA-256 of the body)
 * and applies it in the same transaction; the 200 is sent after that
 * commit, so a delivery TikTok sees answered is never lost, and one it
 * sends again changes nothing.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_webhook.h"
#include "ngx_http_tiktok_handler.h"
#include "ngx_http_tiktok_metrics.h"
#include "ngx_http_tiktok_reply.h"
#include "ngx_http_tiktok_validate.h"


typedef struct {
    ngx_str_t                     body;
    ngx_str_t                     event;         /* a metrics label */
} ngx_http_tiktok_webhook_t;


static ngx_int_t ngx_http_tiktok_webhook_handler(ngx_http_request_t *r);
static void ngx_http_tiktok_webhook_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_tiktok_webhook_process(ngx_http_request_t *r,
    ngx_http_tiktok_webhook_t *wh);
static ngx_int_t ngx_http_tiktok_webhook_read(ngx_http_request_t *r,
    ngx_str_t *body);
static const char *ngx_http_tiktok_webhook_verify(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_http_tiktok_webhook_apply(ngx_http_request_t *r,
    ngx_http_tiktok_webhook_t *wh, json_t *root);
static void ngx_http_tiktok_webhook_applied(ngx_http_tiktok_pg_query_t *q);
static ngx_int_t ngx_http_tiktok_webhook_refuse(ngx_http_request_t *r,
    ngx_http_tiktok_webhook_t *wh, const char *why);
static void ngx_http_tiktok_webhook_refused(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_webhook_label(ngx_http_tiktok_webhook_t *wh,
    ngx_str_t *event);


/* the events DESIGN §8.1 acts on; any other is recorded and ignored */
static ngx_str_t  ngx_http_tiktok_webhook_events[] = {
    ngx_string("post.publish.complete"),
    ngx_string("post.publish.failed"),
    ngx_string("post.publish.inbox_delivered"),
    ngx_string("post.publish.publicly_available"),
    ngx_string("post.publish.no_longer_publicaly_available"),
    ngx_string("authorization.removed"),
    ngx_null_string
};


/* tiktok_requests_total's endpoint label */
static ngx_str_t  ngx_http_tiktok_webhook_route = ngx_string("webhook");


static const char  ngx_http_tiktok_webhook_apply_sql[] =
    "SELECT outcome, user_id FROM tiktok.webhook_apply(decode($1, 'hex'),"
    " $2, $3::bigint, $4, $5, $6, $7)";

static const char  ngx_http_tiktok_webhook_reject_sql[] =
    "SELECT tiktok.webhook_reject($1, $2)";


char *
ngx_http_tiktok_webhook(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_tiktok_main_conf_t  *tmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_tiktok_webhook_handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_tiktok_webhook_handler;

    tmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_tiktok_module);
    tmcf->webhook = 1;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_tiktok_webhook_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_tiktok_module);

    if (!tmcf->webhook) {
        return NGX_OK;
    }

    if (tmcf->client_key.len == 0 || tmcf->client_secret.len == 0
        || tmcf->pg == NULL)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"tiktok_webhook\" is used but \"%s\" is not set in "
                      "the http block",
                      tmcf->client_key.len == 0 ? "tiktok_client_key"
                      : tmcf->client_secret.len == 0
                        ? "tiktok_client_secret_env" : "tiktok_postgres");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tiktok_webhook_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_str_t                   allow = ngx_string("POST");
    ngx_uint_t                  large;
    ngx_http_tiktok_ctx_t      *ctx;
    ngx_http_tiktok_webhook_t  *wh;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_tiktok_ctx_t));
    wh = ngx_pcalloc(r->pool, sizeof(ngx_http_tiktok_webhook_t));
    if (ctx == NULL || wh == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_tiktok_module);

    ngx_http_tiktok_request_id(r, &ctx->request_id);
    ctx->route = &ngx_http_tiktok_webhook_route;
    ngx_str_set(&wh->event, "unverified");
    ctx->data = wh;

    /* before the discard, which counts the length down as it reads */
    large = (r->headers_in.content_length_n
             > NGX_HTTP_TIKTOK_WEBHOOK_BODY_MAX);

    if (r->method != NGX_HTTP_POST || large) {
        /* answered without it: read and dropped, the connection kept */
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (r->method != NGX_HTTP_POST) {
        if (ngx_http_tiktok_set_header(r->pool, &r->headers_out.headers,
                                       "Allow", &allow)
            == NULL)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_tiktok_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                          "method_not_allowed", NULL,
                                          "Method not allowed");
    }

    if (large) {
        ngx_http_tiktok_metrics_webhook(&wh->event, "rejected");

        return ngx_http_tiktok_send_error(r,
                                          NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                          "body_too_large", "body",
                                          "The body is larger than 64 KB");
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_tiktok_webhook_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_tiktok_webhook_body(ngx_http_request_t *r)
{
    ngx_http_tiktok_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    ngx_http_tiktok_finalize(r, ngx_http_tiktok_webhook_process(r,
                                                                ctx->data));
}


static ngx_int_t
ngx_http_tiktok_webhook_process(ngx_http_request_t *r,
    ngx_http_tiktok_webhook_t *wh)
{
    json_t                       *root, *key;
    ngx_int_t                     rc;
    const char                   *why;
    json_error_t                  jerr;
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);

    rc = ngx_http_tiktok_webhook_read(r, &wh->body);

    if (rc == NGX_DECLINED) {
        ngx_http_tiktok_metrics_webhook(&wh->event, "rejected");

        return ngx_http_tiktok_send_error(r,
                                          NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                          "body_too_large", "body",
                                          "The body is larger than 64 KB");
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    why = ngx_http_tiktok_webhook_verify(r, &wh->body);

    if (why) {
        return ngx_http_tiktok_webhook_refuse(r, wh, why);
    }

    /* signed by TikTok: the body is theirs, but still only data */

    root = ngx_http_tiktok_json_own(r->pool,
               json_loadb((char *) wh->body.data, wh->body.len, 0, &jerr));

    why = ngx_http_tiktok_json_refusal(root, &jerr);

    if (why) {
        ngx_http_tiktok_metrics_webhook(&wh->event, "rejected");

        return ngx_http_tiktok_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "invalid_request", "body", why);
    }

    /* the body names the app it is for: ours only */
    key = json_object_get(root, "client_key");

    if (!json_is_string(key)
        || json_string_length(key) != tmcf->client_key.len
        || ngx_strncmp(json_string_value(key), tmcf->client_key.data,
                       tmcf->client_key.len)
           != 0)
    {
        return ngx_http_tiktok_webhook_refuse(r, wh, "another client_key");
    }

    return ngx_http_tiktok_webhook_apply(r, wh, root);
}


/*
 * The raw body as one string, wherever nginx keeps it (memory or its
 * temporary file).  NGX_DECLINED: larger than the limit, which a chunked
 * body shows only once it is read.
 */

static ngx_int_t
ngx_http_tiktok_webhook_read(ngx_http_request_t *r, ngx_str_t *body)
{
    off_t         len;
    u_char       *p;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl, *bufs;

    bufs = r->request_body ? r->request_body->bufs : NULL;
    len = 0;

    for (cl = bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += ngx_buf_in_memory(b) ? b->last - b->pos
               : (b->in_file && b->file) ? b->file_last - b->file_pos : 0;
    }

    if (len > NGX_HTTP_TIKTOK_WEBHOOK_BODY_MAX) {
        return NGX_DECLINED;
    }

    body->len = (size_t) len;
    body->data = ngx_pnalloc(r->pool, body->len + 1);
    if (body->data == NULL) {
        return NGX_ERROR;
    }

    p = body->data;

    for (cl = bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        if (!b->in_file || b->file == NULL || b->file_last == b->file_pos) {
            continue;           /* a special buffer: no bytes */
        }

        n = ngx_read_file(b->file, p, (size_t) (b->file_last - b->file_pos),
                          b->file_pos);

        if (n != b->file_last - b->file_pos) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "tiktok: short read of the webhook body from "
                          "\"%V\"", &b->file->name);
            return NGX_ERROR;
        }

        p += n;
    }

    *p = '\0';

    return NGX_OK;
}


/*
 * NULL: TikTok signed this body, now.  Else why not, for the log and the
 * api_errors row; neither ever holds the header's value or the secret.
 */

static const char *
ngx_http_tiktok_webhook_verify(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char                       *p, *last, *msg;
    u_char                        mac[32], expect[32];
    time_t                        t, now;
    ngx_str_t                     item, ts, sig;
    ngx_table_elt_t              *h;
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);

    h = ngx_http_tiktok_header(&r->headers_in.headers, "TikTok-Signature");

    if (h == NULL || h->value.len == 0) {
        return "no TikTok-Signature header";
    }

    ngx_str_null(&ts);
    ngx_str_null(&sig);

    p = h->value.data;
    last = p + h->value.len;

    /* "t=<unix>,s=<hex>", spaces after the comma tolerated */
    while (ngx_http_tiktok_next_item(&p, last, ',', &item)) {

        while (item.len && item.data[0] == ' ') {
            item.data++;
            item.len--;
        }

        if (item.len > 2 && item.data[1] == '=') {
            if (item.data[0] == 't') {
                ts.data = item.data + 2;
                ts.len = item.len - 2;

            } else if (item.data[0] == 's') {
                sig.data = item.data + 2;
                sig.len = item.len - 2;
            }
        }
    }

    t = ngx_atotm(ts.data, ts.len);

    if (t == NGX_ERROR || sig.len != 2 * sizeof(mac)
        || ngx_http_tiktok_unhex(mac, sig.data, sig.len) != NGX_OK)
    {
        return "a malformed TikTok-Signature header";
    }

    now = ngx_time();

    /* an old one may be a replay; a future one, a clock gone wrong */
    if (t > now + NGX_HTTP_TIKTOK_WEBHOOK_WINDOW
        || now - t > NGX_HTTP_TIKTOK_WEBHOOK_WINDOW)
    {
        return "a timestamp outside the 300 s window";
    }

    msg = ngx_pnalloc(r->pool, ts.len + 1 + body->len);
    if (msg == NULL) {
        return "no memory to verify the signature";
    }

    p = ngx_cpymem(msg, ts.data, ts.len);
    *p++ = '.';
    p = ngx_cpymem(p, body->data, body->len);

    ngx_http_tiktok_hmac_sha256(tmcf->client_secret.data,
                                tmcf->client_secret.len, msg, p - msg,
                                expect);

    if (!ngx_http_tiktok_memeq(mac, expect, sizeof(mac))) {
        return "a signature that does not match";
    }

    return NULL;
}


/*
 * The delivery's fields as tiktok.webhook_apply() takes them.  "content"
 * is itself JSON in a string (TikTok's shape); an object is taken too.
 * A field that is absent or of another type is NULL: the function decides
 * what a delivery without it means (unknown post, unknown account).
 */

static ngx_int_t
ngx_http_tiktok_webhook_apply(ngx_http_request_t *r,
    ngx_http_tiktok_webhook_t *wh, json_t *root)
{
    u_char                       hash[32], *p;
    json_t                      *content;
    ngx_str_t                    params[7];
    json_error_t                 jerr;
    ngx_http_tiktok_pg_query_t  *q;

    ngx_memzero(params, sizeof(params));

    p = ngx_pnalloc(r->pool, 2 * sizeof(hash));
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_tiktok_sha256(wh->body.data, wh->body.len, hash);

    params[0].data = p;
    params[0].len = ngx_http_tiktok_hex(p, hash, sizeof(hash)) - p;

    if (ngx_http_tiktok_json_get_str(r->pool, root, "event", &params[1])
        == NGX_ERROR
        || ngx_http_tiktok_json_get_int(r->pool, root, "create_time",
                                        &params[2])
           == NGX_ERROR
        || ngx_http_tiktok_json_get_str(r->pool, root, "user_openid",
                                        &params[3])
           == NGX_ERROR)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (params[1].data == NULL) {
        ngx_str_set(&params[1], "");
    }

    ngx_http_tiktok_webhook_label(wh, &params[1]);

    content = json_object_get(root, "content");

    if (json_is_string(content)) {
        content = ngx_http_tiktok_json_own(r->pool,
                      json_loadb(json_string_value(content),
                                 json_string_length(content), 0, &jerr));
    }

    if (json_is_object(content)
        && (ngx_http_tiktok_json_get_str(r->pool, content, "publish_id",
                                         &params[4])
            == NGX_ERROR
            || ngx_http_tiktok_json_get_str(r->pool, content, "reason",
                                            &params[5])
               == NGX_ERROR
            || ngx_http_tiktok_json_get_int(r->pool, content, "post_id",
                                            &params[6])
               == NGX_ERROR))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q = ngx_http_tiktok_query_new(r, ngx_http_tiktok_webhook_applied);

    if (q == NULL
        || ngx_http_tiktok_pg_add(q, ngx_http_tiktok_webhook_apply_sql, 7,
                                  params)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_tiktok_query_run(r, q) != NGX_OK) {
        ngx_http_tiktok_metrics_webhook(&wh->event, "error");
        return ngx_http_tiktok_db_error(r, NGX_ERROR);
    }

    return ngx_http_tiktok_wait(r);
}


/*
 * Committed: the answer TikTok waits for.  authorization.removed names
 * the app users whose caches go: here now, on other nodes through the
 * notification and the purge record the function wrote.
 */

static void
ngx_http_tiktok_webhook_applied(ngx_http_tiktok_pg_query_t *q)
{
    int                           i;
    ngx_str_t                     user, outcome;
    ngx_http_request_t           *r;
    ngx_http_tiktok_ctx_t        *ctx;
    ngx_http_tiktok_webhook_t    *wh;
    ngx_http_tiktok_main_conf_t  *tmcf;

    static ngx_str_t  empty = ngx_string("{}");

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);
    wh = ctx->data;

    if (q->rc != NGX_OK || PQntuples(q->res[0]) < 1) {
        /* not answered 200: TikTok delivers it again later */
        ngx_http_tiktok_metrics_webhook(&wh->event, "error");
        ngx_http_tiktok_finalize(r, ngx_http_tiktok_db_error(r,
                                        q->rc == NGX_OK ? NGX_DECLINED
                                                        : q->rc));
        return;
    }

    for (i = 0; i < PQntuples(q->res[0]); i++) {
        if (PQgetisnull(q->res[0], i, 1) || tmcf->cache == NULL) {
            continue;
        }

        user.data = (u_char *) PQgetvalue(q->res[0], i, 1);
        user.len = PQgetlength(q->res[0], i, 1);

        (void) ngx_http_tiktok_cache_purge_user(tmcf->cache, &user);
    }

    outcome.data = (u_char *) PQgetvalue(q->res[0], 0, 0);
    outcome.len = PQgetlength(q->res[0], 0, 0);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "tiktok: webhook %V: %V, request id \"%V\"",
                  &wh->event, &outcome, &ctx->request_id);

    ngx_http_tiktok_metrics_webhook(&wh->event, (char *) outcome.data);

    ngx_http_tiktok_finalize(r, ngx_http_tiktok_send_json(r, NGX_HTTP_OK,
                                                          &empty));
}


/* a 401 once the row that says why is written (or could not be) */

static ngx_int_t
ngx_http_tiktok_webhook_refuse(ngx_http_request_t *r,
    ngx_http_tiktok_webhook_t *wh, const char *why)
{
    ngx_str_t                    params[2];
    ngx_http_tiktok_ctx_t       *ctx;
    ngx_http_tiktok_pg_query_t  *q;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "tiktok: webhook refused: %s, request id \"%V\"",
                  why, &ctx->request_id);

    ngx_http_tiktok_metrics_webhook(&wh->event, "rejected");

    params[0] = ctx->request_id;
    params[1].data = (u_char *) why;
    params[1].len = ngx_strlen(why);

    q = ngx_http_tiktok_query_new(r, ngx_http_tiktok_webhook_refused);

    if (q == NULL
        || ngx_http_tiktok_pg_add(q, ngx_http_tiktok_webhook_reject_sql, 2,
                                  params)
           != NGX_OK
        || ngx_http_tiktok_query_run(r, q) != NGX_OK)
    {
        return ngx_http_tiktok_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                          "unauthorized", NULL,
                                          "The delivery is not signed by "
                                          "TikTok for this app");
    }

    return ngx_http_tiktok_wait(r);
}


static void
ngx_http_tiktok_webhook_refused(ngx_http_tiktok_pg_query_t *q)
{
    ngx_http_request_t  *r;

    r = q->data;

    /* a lost row is logged by the pool; the refusal was logged */

    ngx_http_tiktok_finalize(r, ngx_http_tiktok_send_error(r,
                                    NGX_HTTP_UNAUTHORIZED, "unauthorized",
                                    NULL, "The delivery is not signed by "
                                    "TikTok for this app"));
}


/* the event as a metrics label: a known one, or "other" */

static void
ngx_http_tiktok_webhook_label(ngx_http_tiktok_webhook_t *wh,
    ngx_str_t *event)
{
    ngx_str_t  *known;

    for (known = ngx_http_tiktok_webhook_events; known->len; known++) {
        if (known->len == event->len
            && ngx_strncmp(known->data, event->data, event->len) == 0)
        {
            wh->event = *known;
            return;
        }
    }

    ngx_str_set(&wh->event, "other");
}
