
/*
 * The answers every endpoint shares: JSON responses and errors, headers,
 * finalization from event handlers, the caller's queries and the error
 * rows of tiktok.api_errors.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_reply.h"


/* a 302 to url, whose body names it too, for an app that fetches */

ngx_int_t
ngx_http_tiktok_send_redirect(ngx_http_request_t *r, const char *name,
    ngx_str_t *url)
{
    json_t     *root;
    ngx_str_t   body;

    root = ngx_http_tiktok_json_own(r->pool,
               json_pack("{s:s%}", name, url->data, url->len));

    if (root == NULL
        || ngx_http_tiktok_json_encode(r->pool, root, &body) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.location = ngx_http_tiktok_set_header(r->pool,
                                  &r->headers_out.headers, "Location", url);
    if (r->headers_out.location == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_tiktok_send_json(r, NGX_HTTP_MOVED_TEMPORARILY, &body);
}


/*
 * Sends a complete JSON response.  Returns what the content handler (or
 * ngx_http_tiktok_finalize) should finalize the request with.
 */

ngx_int_t
ngx_http_tiktok_send_json(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body)
{
    ngx_int_t               rc;
    ngx_buf_t              *b;
    ngx_chain_t             out;
    ngx_http_tiktok_ctx_t  *ctx;

    static ngx_str_t  no_store = ngx_string("no-store");

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    r->headers_out.status = status;
    r->headers_out.content_length_n = body->len;

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    if (ctx && ctx->request_id.len
        && ngx_http_tiktok_set_header(r->pool, &r->headers_out.headers,
                                      "X-Request-ID", &ctx->request_id)
           == NULL)
    {
        return NGX_ERROR;
    }

    /* answers are per user: no shared cache may keep them */
    if (ngx_http_tiktok_set_header(r->pool, &r->headers_out.headers,
                                   "Cache-Control", &no_store)
        == NULL)
    {
        return NGX_ERROR;
    }

    if (r->method == NGX_HTTP_HEAD || body->len == 0) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_tiktok_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *field, const char *message)
{
    json_t                 *root;
    ngx_str_t               body;
    ngx_http_tiktok_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    /* "s*" and "o*" leave out a member whose value is NULL */
    root = ngx_http_tiktok_json_own(r->pool,
               json_pack("{s:{s:s, s:s*, s:s, s:o*}}", "error",
                         "code", code, "field", field, "message", message,
                         "request_id",
                         ctx ? ngx_http_tiktok_json_str(ctx->request_id.data,
                                                        ctx->request_id.len)
                             : NULL));

    if (root == NULL
        || ngx_http_tiktok_json_encode(r->pool, root, &body) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (status >= NGX_HTTP_INTERNAL_SERVER_ERROR
        && status != NGX_HTTP_NOT_IMPLEMENTED && ctx)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "tiktok: %ui %s, request id \"%V\"", status, code,
                      &ctx->request_id);
    }

    return ngx_http_tiktok_send_json(r, status, &body);
}


/*
 * Ends a request whose content handler returned NGX_DONE, from an event
 * handler outside the request's own (a database or subrequest callback).
 */

void
ngx_http_tiktok_finalize(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_connection_t  *c;

    c = r->connection;

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/*
 * The request waits for an event (a query, a subrequest, a timer): the
 * content handler returns this, and whoever the event runs finalizes it.
 */

ngx_int_t
ngx_http_tiktok_wait(ngx_http_request_t *r)
{
    r->main->count++;

    return NGX_DONE;
}


/* a query's failure: the database unreachable (NGX_ERROR), or refused */

ngx_int_t
ngx_http_tiktok_db_error(ngx_http_request_t *r, ngx_int_t rc)
{
    if (rc == NGX_ERROR) {
        return ngx_http_tiktok_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          "database_unavailable", NULL,
                                          "Service temporarily unavailable");
    }

    return ngx_http_tiktok_send_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      "internal_error", NULL,
                                      "Internal error");
}


/* t in UTC as RFC 3339 writes it: "1970-01-01T00:00:00Z", 20 bytes */

u_char *
ngx_http_tiktok_rfc3339(u_char *p, time_t t)
{
    ngx_tm_t  tm;

    ngx_gmtime(t, &tm);

    return ngx_sprintf(p, "%4d-%02d-%02dT%02d:%02d:%02dZ",
                       tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                       tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);
}


static void ngx_http_tiktok_record_error_done(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_log_escape(ngx_pool_t *pool, ngx_str_t *src,
    ngx_str_t *dst);


static const char  ngx_http_tiktok_error_sql[] =
    "INSERT INTO tiktok.api_errors (user_id, request_id, endpoint,"
    " http_status, tiktok_code, log_id, message)"
    " VALUES ($1, $2, $3, nullif($4, '0')::integer, $5, $6, $7)";


/*
 * Every TikTok or database failure is logged with the correlation id and
 * recorded in tiktok.api_errors; then next(r) runs, whether the row could
 * be written or not.  NGX_OK: next runs later, from the event loop.
 * NGX_ERROR: nothing started; the caller goes on itself.
 */

ngx_int_t
ngx_http_tiktok_record_error(ngx_http_request_t *r,
    ngx_http_tiktok_api_error_t *err, ngx_uint_t level,
    ngx_http_tiktok_next_pt next)
{
    ngx_str_t                    code, log_id;
    ngx_http_tiktok_ctx_t       *ctx;
    ngx_http_tiktok_pg_query_t  *q;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    /* code and log_id come from TikTok or from the callback's query */
    ngx_http_tiktok_log_escape(r->pool, &err->code, &code);
    ngx_http_tiktok_log_escape(r->pool, &err->log_id, &log_id);

    ngx_log_error(level, r->connection->log, 0,
                  "tiktok: %s: %s, status %ui, code \"%V\", log_id \"%V\", "
                  "request id \"%V\"", err->endpoint, err->message,
                  err->status, &code, &log_id, &ctx->request_id);

    ctx->next = next;

    q = ngx_http_tiktok_query_new(r, ngx_http_tiktok_record_error_done);

    if (q == NULL
        || ngx_http_tiktok_error_add(q, &ctx->user_id, &ctx->request_id, err)
           != NGX_OK
        || ngx_http_tiktok_query_run(r, q) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A value from outside (TikTok's answers, a query argument) made fit for a
 * log line: control bytes, '"' and '\\' become \\xHH, so it can neither
 * start a forged line nor end the quotes around it.
 */

static void
ngx_http_tiktok_log_escape(ngx_pool_t *pool, ngx_str_t *src, ngx_str_t *dst)
{
    u_char         c, *p;
    size_t         i;
    static u_char  hex[] = "0123456789ABCDEF";

    /* at worst every byte takes four */
    p = ngx_pnalloc(pool, 4 * src->len);
    if (p == NULL) {
        ngx_str_set(dst, "(unprintable)");
        return;
    }

    dst->data = p;

    for (i = 0; i < src->len; i++) {
        c = src->data[i];

        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = 'x';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];
            continue;
        }

        *p++ = c;
    }

    dst->len = p - dst->data;
}


/* the tiktok.api_errors row for err, as one more statement of q */

ngx_int_t
ngx_http_tiktok_error_add(ngx_http_tiktok_pg_query_t *q, ngx_str_t *user,
    ngx_str_t *request_id, ngx_http_tiktok_api_error_t *err)
{
    u_char     *p;
    ngx_str_t   params[7];

    p = ngx_pnalloc(q->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    params[0] = *user;
    params[1] = *request_id;
    params[2].data = (u_char *) err->endpoint;
    params[2].len = ngx_strlen(err->endpoint);
    params[3].data = p;
    params[3].len = ngx_sprintf(p, "%ui", err->status) - p;
    params[4] = err->code;
    params[5] = err->log_id;
    params[6].data = (u_char *) err->message;
    params[6].len = err->message ? ngx_strlen(err->message) : 0;

    return ngx_http_tiktok_pg_add(q, ngx_http_tiktok_error_sql, 7, params);
}


static void
ngx_http_tiktok_record_error_done(ngx_http_tiktok_pg_query_t *q)
{
    ngx_http_request_t     *r;
    ngx_http_tiktok_ctx_t  *ctx;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    /* the failure itself was logged; a lost row is logged by the pool */

    ctx->next(r);
}


/*
 * Statements for the caller, under its user id (row-level security): a
 * query to add them to, then run; the handler finds the request in
 * q->data.  query_run NGX_OK: the handler runs later, from the event loop;
 * NGX_ERROR: nothing started.
 */

ngx_http_tiktok_pg_query_t *
ngx_http_tiktok_query_new(ngx_http_request_t *r,
    ngx_http_tiktok_pg_handler_pt handler)
{
    ngx_http_tiktok_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    return ngx_http_tiktok_pg_query_create(r->pool, r->connection->log,
                                           &ctx->user_id, handler, r);
}


ngx_int_t
ngx_http_tiktok_query_run(ngx_http_request_t *r, ngx_http_tiktok_pg_query_t *q)
{
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);

    if (tmcf->pg_pool == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_tiktok_pg_run(tmcf->pg_pool, q);
}


/*
 * The spool files of cancelled posts, res's first column (NULL for a post
 * from a URL): nothing will upload them now.
 */

void
ngx_http_tiktok_spool_remove(ngx_http_request_t *r, PGresult *res)
{
    int      i;
    u_char  *path;

    for (i = 0; i < PQntuples(res); i++) {
        if (PQgetisnull(res, i, 0)) {
            continue;
        }

        path = (u_char *) PQgetvalue(res, i, 0);

        if (ngx_delete_file(path) == NGX_FILE_ERROR && ngx_errno != NGX_ENOENT)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, ngx_errno,
                          ngx_delete_file_n " \"%s\" failed", path);
        }
    }
}


ngx_int_t
ngx_http_tiktok_query(ngx_http_request_t *r, const char *sql, ngx_uint_t n,
    ngx_str_t *params, ngx_http_tiktok_pg_handler_pt handler)
{
    ngx_http_tiktok_pg_query_t  *q;

    q = ngx_http_tiktok_query_new(r, handler);

    if (q == NULL
        || ngx_http_tiktok_pg_add(q, sql, n, params) != NGX_OK
        || ngx_http_tiktok_query_run(r, q) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* one statement from a content handler: NGX_DONE while it runs */

ngx_int_t
ngx_http_tiktok_query_wait(ngx_http_request_t *r, const char *sql,
    ngx_uint_t n, ngx_str_t *params, ngx_http_tiktok_pg_handler_pt handler)
{
    if (ngx_http_tiktok_query(r, sql, n, params, handler) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_tiktok_wait(r);
}
