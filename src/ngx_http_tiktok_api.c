
/*
 * TikTok calls as subrequests to tiktok_api_location, captured by this
 * module's header and body filters.
 *
 * The filters sit at the top of nginx's chains (the module is loaded after
 * every built-in one), so a captured subrequest's output never reaches the
 * postpone filter or the client.  Buffers the proxy kept in a temporary
 * file are read back from it, like nginx reads any file it serves.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_module.h"
#include "ngx_http_tiktok_metrics.h"


static ngx_int_t ngx_http_tiktok_api_headers(ngx_http_request_t *sr,
    ngx_http_tiktok_api_call_t *call);
static ngx_int_t ngx_http_tiktok_api_body(ngx_http_request_t *sr,
    ngx_http_tiktok_api_call_t *call);
static ngx_int_t ngx_http_tiktok_api_post(ngx_http_request_t *sr, void *data,
    ngx_int_t rc);
static void ngx_http_tiktok_api_wake(ngx_http_request_t *r);
static ngx_int_t ngx_http_tiktok_api_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_tiktok_api_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_tiktok_api_append(ngx_http_request_t *r,
    ngx_http_tiktok_api_call_t *call, ngx_buf_t *b);
static ngx_http_tiktok_api_call_t *ngx_http_tiktok_api_call(
    ngx_http_request_t *r);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


ngx_int_t
ngx_http_tiktok_api_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_tiktok_api_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_tiktok_api_body_filter;

    return NGX_OK;
}


/*
 * Starts one call.  NGX_OK: the handler runs when TikTok has answered (or
 * failed); the content handler returns NGX_DONE meanwhile.  NGX_ERROR:
 * nothing started.
 */

ngx_int_t
ngx_http_tiktok_api_start(ngx_http_request_t *r,
    ngx_http_tiktok_api_call_t *call)
{
    ngx_str_t                     uri;
    ngx_http_request_t           *sr;
    ngx_http_tiktok_ctx_t        *ctx, *sctx;
    ngx_http_post_subrequest_t   *ps;
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    if (ctx == NULL || ctx->api_pending) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "tiktok: a TikTok call is already in progress");
        return NGX_ERROR;
    }

    uri.len = tmcf->api_location.len + call->path.len;
    uri.data = ngx_pnalloc(r->pool, uri.len);
    if (uri.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(uri.data, "%V%V", &tmcf->api_location, &call->path);

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_tiktok_api_post;
    ps->data = call;

    if (ngx_http_subrequest(r, &uri, call->args.len ? &call->args : NULL,
                            &sr, ps, NGX_HTTP_SUBREQUEST_WAITED)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sctx = ngx_pcalloc(r->pool, sizeof(ngx_http_tiktok_ctx_t));
    if (sctx == NULL) {
        return NGX_ERROR;
    }

    sctx->api_call = call;
    ngx_http_set_ctx(sr, sctx, ngx_http_tiktok_module);

    if (ngx_http_tiktok_api_headers(sr, call) != NGX_OK
        || ngx_http_tiktok_api_body(sr, call) != NGX_OK)
    {
        return NGX_ERROR;
    }

    call->start = ngx_current_msec;
    call->max = tmcf->api_max_response;

    ctx->api_pending = call;

    /* the content phase left an empty write handler: wake us instead */
    r->write_event_handler = ngx_http_tiktok_api_wake;

    return NGX_OK;
}


/*
 * The subrequest's headers are built from nothing: the client's Cookie,
 * Authorization and user id header must never reach TikTok.
 */

static ngx_int_t
ngx_http_tiktok_api_headers(ngx_http_request_t *sr,
    ngx_http_tiktok_api_call_t *call)
{
    ngx_str_t  server, value;

    server = sr->headers_in.server;

    ngx_memzero(&sr->headers_in, sizeof(ngx_http_headers_in_t));

    sr->headers_in.server = server;
    sr->headers_in.content_length_n = -1;
    sr->headers_in.keep_alive_n = -1;

    if (ngx_list_init(&sr->headers_in.headers, sr->pool, 4,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /*
     * Before 1.23 the multi-value headers were arrays that other modules
     * walk without checking; since 1.23 they are linked lists of
     * ngx_table_elt_t, and the memzero above already left them empty.
     */

#if (nginx_version < 1023000)
    if (ngx_array_init(&sr->headers_in.cookies, sr->pool, 1,
                       sizeof(ngx_table_elt_t *))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

#if (NGX_HTTP_X_FORWARDED_FOR)
    if (ngx_array_init(&sr->headers_in.x_forwarded_for, sr->pool, 1,
                       sizeof(ngx_table_elt_t *))
        != NGX_OK)
    {
        return NGX_ERROR;
    }
#endif
#endif

    ngx_str_set(&value, "application/json");
    if (ngx_http_tiktok_set_header(sr->pool, &sr->headers_in.headers,
                                   "Accept", &value)
        == NULL)
    {
        return NGX_ERROR;
    }

    if (call->bearer.len) {
        value.len = sizeof("Bearer ") - 1 + call->bearer.len;
        value.data = ngx_pnalloc(sr->pool, value.len);
        if (value.data == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(value.data, "Bearer %V", &call->bearer);

        sr->headers_in.authorization = ngx_http_tiktok_set_header(sr->pool,
                                           &sr->headers_in.headers,
                                           "Authorization", &value);
        if (sr->headers_in.authorization == NULL) {
            return NGX_ERROR;
        }
    }

    if (call->content_type.len == 0) {
        return NGX_OK;
    }

    sr->headers_in.content_type = ngx_http_tiktok_set_header(sr->pool,
                                      &sr->headers_in.headers, "Content-Type",
                                      &call->content_type);

    return sr->headers_in.content_type ? NGX_OK : NGX_ERROR;
}


/*
 * The subrequest's method (ngx_http_subrequest made it a GET) and own
 * body: one memory buffer, never the client's.
 */

static ngx_int_t
ngx_http_tiktok_api_body(ngx_http_request_t *sr,
    ngx_http_tiktok_api_call_t *call)
{
    ngx_buf_t                *b;
    ngx_chain_t              *cl;
    ngx_http_request_body_t  *rb;

    if (call->method != NGX_HTTP_POST) {
        sr->request_body = NULL;
        return NGX_OK;
    }

    sr->method = NGX_HTTP_POST;
    ngx_str_set(&sr->method_name, "POST");

    rb = ngx_pcalloc(sr->pool, sizeof(ngx_http_request_body_t));
    if (rb == NULL) {
        return NGX_ERROR;
    }

    sr->request_body = rb;
    sr->headers_in.content_length_n = call->body.len;

    if (call->body.len == 0) {
        return NGX_OK;
    }

    b = ngx_calloc_buf(sr->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = call->body.data;
    b->last = call->body.data + call->body.len;
    b->start = b->pos;
    b->end = b->last;
    b->memory = 1;
    b->last_buf = 1;

    cl = ngx_alloc_chain_link(sr->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;

    rb->bufs = cl;
    rb->buf = b;

    return NGX_OK;
}


/*
 * Runs when the subrequest is finalized; nginx may run it again for the
 * error page of a failed subrequest, hence the done flag.  The parent is
 * woken by nginx afterwards (NGX_HTTP_SUBREQUEST_WAITED).
 */

static ngx_int_t
ngx_http_tiktok_api_post(ngx_http_request_t *sr, void *data, ngx_int_t rc)
{
    ngx_http_tiktok_api_call_t *call = data;

    off_t  expected;

    if (call->done) {
        return rc;
    }

    call->done = 1;
    call->elapsed = ngx_current_msec - call->start;

    expected = sr->headers_out.content_length_n;

    if (call->answered && rc == NGX_OK && !call->too_large
        && (expected < 0 || (size_t) expected == call->response.len))
    {
        call->rc = NGX_OK;
        return rc;
    }

    call->rc = NGX_ERROR;

    if (!call->answered) {
        call->status = (rc >= NGX_HTTP_SPECIAL_RESPONSE)
                       ? (ngx_uint_t) rc : NGX_HTTP_BAD_GATEWAY;

    } else if (!call->too_large) {
        /* the answer broke off */
        call->status = NGX_HTTP_BAD_GATEWAY;
    }

    return rc;
}


static void
ngx_http_tiktok_api_wake(ngx_http_request_t *r)
{
    ngx_http_tiktok_ctx_t       *ctx;
    ngx_http_tiktok_api_call_t  *call;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    if (ctx == NULL || ctx->api_pending == NULL) {
        return;
    }

    call = ctx->api_pending;

    if (!call->done) {
        return;
    }

    ctx->api_pending = NULL;
    ctx->upstream_ms += call->elapsed;
    ctx->upstream_ms_set = 1;

    r->write_event_handler = ngx_http_request_empty_handler;

    ngx_http_tiktok_metrics_api(call);

    call->handler(r, call);
}


static ngx_http_tiktok_api_call_t *
ngx_http_tiktok_api_call(ngx_http_request_t *r)
{
    ngx_http_tiktok_ctx_t  *ctx;

    if (r == r->main) {
        return NULL;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    return ctx ? ctx->api_call : NULL;
}


static ngx_int_t
ngx_http_tiktok_api_header_filter(ngx_http_request_t *r)
{
    ngx_table_elt_t             *h;
    ngx_http_tiktok_api_call_t  *call;

    call = ngx_http_tiktok_api_call(r);

    if (call == NULL) {
        return ngx_http_next_header_filter(r);
    }

    if (call->done) {
        /* nginx's error page for a failed call: swallowed */
        return NGX_OK;
    }

    call->answered = 1;
    call->status = r->headers_out.status;

    h = ngx_http_tiktok_header(&r->headers_out.headers, "Retry-After");
    if (h) {
        call->retry_after = h->value;
    }

    return NGX_OK;
}


ngx_table_elt_t *
ngx_http_tiktok_header(ngx_list_t *headers, const char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    part = &headers->part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash != 0 && h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


/* hash and lowcase_key too: the proxy looks request headers up by them */

ngx_table_elt_t *
ngx_http_tiktok_set_header(ngx_pool_t *pool, ngx_list_t *headers,
    const char *key, ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(headers);
    if (h == NULL) {
        return NULL;
    }

    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value = *value;
    h->hash = ngx_hash_key_lc(h->key.data, h->key.len);

    h->lowcase_key = ngx_pnalloc(pool, h->key.len);
    if (h->lowcase_key == NULL) {
        return NULL;
    }

    ngx_strlow(h->lowcase_key, h->key.data, h->key.len);

#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return h;
}


static ngx_int_t
ngx_http_tiktok_api_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t                   *b;
    ngx_chain_t                 *cl;
    ngx_http_tiktok_api_call_t  *call;

    call = ngx_http_tiktok_api_call(r);

    if (call == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (!call->done && !call->too_large && ngx_buf_size(b)
            && ngx_http_tiktok_api_append(r, call, b) != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* consumed: the upstream may reuse the buffer */
        b->pos = b->last;

        if (b->in_file) {
            b->file_pos = b->file_last;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tiktok_api_append(ngx_http_request_t *r,
    ngx_http_tiktok_api_call_t *call, ngx_buf_t *b)
{
    off_t     size;
    u_char   *p;
    ssize_t   n;

    size = ngx_buf_size(b);

    if ((off_t) (call->response.len + size) > (off_t) call->max) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "tiktok: answer from TikTok for \"%V\" is larger than "
                      "tiktok_api_max_response %uz", &r->uri, call->max);
        call->too_large = 1;
        call->status = NGX_HTTP_BAD_GATEWAY;
        return NGX_OK;
    }

    if (ngx_http_tiktok_buf_room(r->pool, &call->response, &call->cap,
                                 call->response.len + (size_t) size,
                                 call->max)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    p = call->response.data + call->response.len;

    if (ngx_buf_in_memory(b)) {
        ngx_memcpy(p, b->pos, (size_t) size);

    } else {
        n = ngx_read_file(b->file, p, (size_t) size, b->file_pos);
        if (n != (ssize_t) size) {
            return NGX_ERROR;
        }
    }

    call->response.len += (size_t) size;

    return NGX_OK;
}


ngx_int_t
ngx_http_tiktok_api_oauth_post(ngx_http_request_t *r,
    ngx_http_tiktok_api_call_t *call, const char *path, ngx_keyval_t *fields,
    ngx_uint_t n, ngx_http_tiktok_api_done_pt handler)
{
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);

    if (ngx_http_tiktok_oauth_form(r->pool, tmcf, fields, n, &call->body)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    call->method = NGX_HTTP_POST;
    call->path.data = (u_char *) path;
    call->path.len = ngx_strlen(path);
    ngx_str_set(&call->content_type, "application/x-www-form-urlencoded");
    call->handler = handler;

    if (ngx_http_tiktok_api_start(r, call) != NGX_OK) {
        return NGX_ERROR;
    }

    /* called from event handlers: the subrequest waits in posted requests */
    ngx_http_run_posted_requests(r->connection);

    return NGX_OK;
}


ngx_int_t
ngx_http_tiktok_oauth_form(ngx_pool_t *pool,
    ngx_http_tiktok_main_conf_t *tmcf, ngx_keyval_t *fields, ngx_uint_t n,
    ngx_str_t *body)
{
    ngx_uint_t              i;
    ngx_http_tiktok_form_t  form;

    ngx_memzero(&form, sizeof(ngx_http_tiktok_form_t));

    if (ngx_http_tiktok_form_add(pool, &form, "client_key",
                                 &tmcf->client_key) != NGX_OK
        || ngx_http_tiktok_form_add(pool, &form, "client_secret",
                                    &tmcf->client_secret) != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (ngx_http_tiktok_form_add(pool, &form,
                                     (const char *) fields[i].key.data,
                                     &fields[i].value)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    *body = form.body;

    return ngx_http_tiktok_forget(pool, body);
}


ngx_int_t
ngx_http_tiktok_form_add(ngx_pool_t *pool, ngx_http_tiktok_form_t *form,
    const char *key, ngx_str_t *value)
{
    u_char  *p;
    size_t   klen, need;

    klen = ngx_strlen(key);
    need = form->body.len + 1 + klen + 1 + value->len
           + 2 * ngx_escape_uri(NULL, value->data, value->len,
                                NGX_ESCAPE_URI_COMPONENT);

    if (ngx_http_tiktok_buf_room(pool, &form->body, &form->cap, need,
                                 (size_t) -1)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    p = ngx_sprintf(form->body.data + form->body.len, "%s%s=",
                    form->body.len ? "&" : "", key);
    p = (u_char *) ngx_escape_uri(p, value->data, value->len,
                                  NGX_ESCAPE_URI_COMPONENT);

    form->body.len = p - form->body.data;

    return NGX_OK;
}


/* the JSON object in response; err gets the status, and why it is not one */

static ngx_int_t
ngx_http_tiktok_api_parse(ngx_pool_t *pool, ngx_log_t *log, ngx_uint_t status,
    ngx_str_t *response, ngx_http_tiktok_api_error_t *err, json_t **root)
{
    json_error_t  jerr;

    err->status = status;
    err->message = "malformed answer from TikTok";

    if (response->len == 0) {
        return NGX_ERROR;
    }

    *root = ngx_http_tiktok_json_own(pool,
                json_loadb((const char *) response->data, response->len,
                           JSON_REJECT_DUPLICATES, &jerr));

    if (*root == NULL || !json_is_object(*root)) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "tiktok: TikTok answered %ui with malformed JSON "
                      "for \"%s\"", status,
                      err->endpoint ? err->endpoint : "?");
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_tiktok_api_envelope(ngx_http_request_t *r,
    ngx_http_tiktok_api_call_t *call, json_t **data,
    ngx_http_tiktok_api_error_t *err)
{
    if (call->rc != NGX_OK) {
        err->status = call->status;
        err->message = "TikTok could not be reached";
        return NGX_ERROR;
    }

    return ngx_http_tiktok_api_answer(r->pool, r->connection->log,
                                      call->status, &call->response, data,
                                      err);
}


ngx_uint_t
ngx_http_tiktok_api_classify(ngx_int_t rc, ngx_uint_t status, ngx_str_t *code)
{
    ngx_uint_t  i;

    static struct {
        ngx_str_t   code;
        ngx_uint_t  kind;
    } codes[] = {
        { ngx_string("access_token_invalid"),
          NGX_HTTP_TIKTOK_API_TOKEN_INVALID },
        { ngx_string("rate_limit_exceeded"), NGX_HTTP_TIKTOK_API_RATE_LIMITED },
        { ngx_string("scope_not_authorized"), NGX_HTTP_TIKTOK_API_SCOPE },
        { ngx_string("scope_permission_missed"),
          NGX_HTTP_TIKTOK_API_SCOPE_FIELD },
        { ngx_string("reached_active_user_cap"),
          NGX_HTTP_TIKTOK_API_CANNOT_POST },
        { ngx_string("spam_risk_"), NGX_HTTP_TIKTOK_API_CANNOT_POST },
        { ngx_string("internal_error"), NGX_HTTP_TIKTOK_API_INTERNAL },

        /* the OAuth codes that mean the grant itself is gone */
        { ngx_string("invalid_grant"), NGX_HTTP_TIKTOK_API_GRANT_GONE },
        { ngx_string("access_denied"), NGX_HTTP_TIKTOK_API_GRANT_GONE },
        { ngx_string("unauthorized_client"), NGX_HTTP_TIKTOK_API_GRANT_GONE },

        /* TikTok does not know the publish for this user */
        { ngx_string("invalid_publish_id"), NGX_HTTP_TIKTOK_API_PUBLISH_GONE },
        { ngx_string("token_not_authorized_for_specified_publish_id"),
          NGX_HTTP_TIKTOK_API_PUBLISH_GONE }
    };

    if (rc == NGX_OK) {
        return NGX_HTTP_TIKTOK_API_OK;
    }

    if (rc == NGX_DECLINED) {
        for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {

            /* "spam_risk_" is a prefix: spam_risk_too_many_posts, ... */

            if (codes[i].code.data[codes[i].code.len - 1] == '_'
                ? code->len > codes[i].code.len
                : code->len == codes[i].code.len)
            {
                if (ngx_strncmp(code->data, codes[i].code.data,
                                codes[i].code.len) == 0)
                {
                    return codes[i].kind;
                }
            }
        }
    }

    if (status == NGX_HTTP_TOO_MANY_REQUESTS) {
        return NGX_HTTP_TIKTOK_API_RATE_LIMITED;
    }

    return NGX_HTTP_TIKTOK_API_FAILED;
}


ngx_int_t
ngx_http_tiktok_api_oauth(ngx_http_request_t *r,
    ngx_http_tiktok_api_call_t *call, json_t **root,
    ngx_http_tiktok_api_error_t *err)
{
    if (call->rc != NGX_OK) {
        err->status = call->status;
        err->message = "TikTok could not be reached";
        return NGX_ERROR;
    }

    return ngx_http_tiktok_oauth_answer(r->pool, r->connection->log,
                                        call->status, &call->response, root,
                                        err);
}


/* the flat OAuth answer in response, whoever made the call */

ngx_int_t
ngx_http_tiktok_oauth_answer(ngx_pool_t *pool, ngx_log_t *log,
    ngx_uint_t status, ngx_str_t *response, json_t **root,
    ngx_http_tiktok_api_error_t *err)
{
    if (ngx_http_tiktok_api_parse(pool, log, status, response, err, root)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    (void) ngx_http_tiktok_json_get_str(pool, *root, "log_id", &err->log_id);

    if (ngx_http_tiktok_json_get_str(pool, *root, "error", &err->code)
        == NGX_OK)
    {
        err->message = "TikTok refused the OAuth request";
        return NGX_DECLINED;
    }

    if (status != NGX_HTTP_OK) {
        err->message = "TikTok answered the OAuth request with an error";
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_tiktok_api_token_read(ngx_pool_t *pool, json_t *root,
    ngx_http_tiktok_api_token_t *token, const char **reason)
{
    ngx_memzero(token, sizeof(ngx_http_tiktok_api_token_t));

    /*
     * Each token is forgotten as soon as it is copied, so a token read
     * before a later field fails is zeroed all the same.  The scope is
     * what the user actually granted, which may be fewer.
     */

    if (ngx_http_tiktok_json_get_str(pool, root, "access_token",
                                     &token->access_token) != NGX_OK
        || ngx_http_tiktok_forget(pool, &token->access_token) != NGX_OK
        || ngx_http_tiktok_json_get_str(pool, root, "refresh_token",
                                        &token->refresh_token) != NGX_OK
        || ngx_http_tiktok_forget(pool, &token->refresh_token) != NGX_OK
        || ngx_http_tiktok_json_get_str(pool, root, "open_id",
                                        &token->open_id) == NGX_ERROR
        || ngx_http_tiktok_json_get_int(pool, root, "expires_in",
                                        &token->expires_in) != NGX_OK
        || ngx_http_tiktok_json_get_int(pool, root, "refresh_expires_in",
                                        &token->refresh_expires_in) != NGX_OK
        || ngx_http_tiktok_json_get_str(pool, root, "scope", &token->scope)
           == NGX_ERROR)
    {
        *reason = "token answer without the documented fields";
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_tiktok_forget_cleanup(void *data)
{
    ngx_str_t  *s = data;

    if (s->data) {
        ngx_http_tiktok_cleanse(s->data, s->len);
    }
}


ngx_int_t
ngx_http_tiktok_forget(ngx_pool_t *pool, ngx_str_t *secret)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_tiktok_forget_cleanup;
    cln->data = secret;

    return NGX_OK;
}


/* the v2 envelope in response, whoever made the call */

ngx_int_t
ngx_http_tiktok_api_answer(ngx_pool_t *pool, ngx_log_t *log,
    ngx_uint_t status, ngx_str_t *response, json_t **data,
    ngx_http_tiktok_api_error_t *err)
{
    json_t  *root, *error;

    if (ngx_http_tiktok_api_parse(pool, log, status, response, err, &root)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    error = json_object_get(root, "error");

    if (!json_is_object(error)
        || ngx_http_tiktok_json_get_str(pool, error, "code", &err->code)
           != NGX_OK)
    {
        err->message = "answer from TikTok without error.code";
        return NGX_ERROR;
    }

    (void) ngx_http_tiktok_json_get_str(pool, error, "log_id", &err->log_id);

    if (err->code.len != 2 || ngx_strncmp(err->code.data, "ok", 2) != 0) {
        err->message = "TikTok returned an error";
        return NGX_DECLINED;
    }

    *data = json_object_get(root, "data");

    if (!json_is_object(*data)) {
        err->message = "answer from TikTok without data";
        return NGX_ERROR;
    }

    return NGX_OK;
}


const char *
ngx_http_tiktok_api_creator_check(json_t *data)
{
    size_t       i;
    json_t      *options, *o, *v;
    ngx_uint_t   k;

    static const char  *flags[] = {
        "comment_disabled", "duet_disabled", "stitch_disabled"
    };

    static const char  *texts[] = {
        "creator_username", "creator_nickname", "creator_avatar_url"
    };

    options = json_object_get(data, "privacy_level_options");

    /* not an array: no element, i stays 0 */
    json_array_foreach(options, i, o) {
        if (!json_is_string(o)) {
            break;
        }
    }

    if (i == 0 || i < json_array_size(options)) {
        return "creator info without a list of privacy_level_options";
    }

    /* absent is TikTok's to decide (not disabled, no limit); mistyped is not */

    for (k = 0; k < sizeof(flags) / sizeof(flags[0]); k++) {
        v = json_object_get(data, flags[k]);

        if (v != NULL && !json_is_boolean(v)) {
            return "creator info with an interaction flag that is not "
                   "true or false";
        }
    }

    for (k = 0; k < sizeof(texts) / sizeof(texts[0]); k++) {
        v = json_object_get(data, texts[k]);

        if (v != NULL && !json_is_string(v) && !json_is_null(v)) {
            return "creator info with a name or avatar that is not a string";
        }
    }

    v = json_object_get(data, "max_video_post_duration_sec");

    if (v != NULL && !(json_is_integer(v) && json_integer_value(v) > 0)) {
        return "creator info with a max_video_post_duration_sec that is not "
               "a whole number of seconds";
    }

    return NULL;
}
