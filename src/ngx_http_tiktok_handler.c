
/*
 * The tiktok_api content handler: request id, caller identity, dispatch on
 * method + path to one handler per endpoint, with the checks its route
 * asks for; and nginx's own errors as JSON.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_handler.h"
#include "ngx_http_tiktok_validate.h"
#include "ngx_http_tiktok_reply.h"


#define NGX_HTTP_TIKTOK_USER_ID_MAX  128


/* a route and its policy: the checks the dispatcher and the call make */
typedef struct {
    ngx_str_t                     path;
    ngx_uint_t                    method;    /* NGX_HTTP_GET|..., a mask */
    const char                   *scope;     /* TikTok calls need it */
    ngx_uint_t                    body;      /* the handler reads one */
    ngx_http_tiktok_endpoint_pt   handler;
} ngx_http_tiktok_route_t;


static ngx_http_tiktok_route_t *ngx_http_tiktok_route(ngx_http_request_t *r,
    ngx_str_t *path, ngx_uint_t *allowed);
static void ngx_http_tiktok_endpoint_path(ngx_http_request_t *r,
    ngx_str_t *path);
static ngx_int_t ngx_http_tiktok_path_match(ngx_str_t *route,
    ngx_str_t *path);
static ngx_int_t ngx_http_tiktok_user_id(ngx_http_request_t *r,
    ngx_str_t *user);
static ngx_int_t ngx_http_tiktok_send_405(ngx_http_request_t *r,
    ngx_uint_t allowed);
static ngx_int_t ngx_http_tiktok_error_page(ngx_http_request_t *r);


/*
 * "posts/{id}" matches "posts/" and one path segment.
 */

static ngx_http_tiktok_route_t  ngx_http_tiktok_routes[] = {
    { ngx_string("status"), NGX_HTTP_GET, NULL, 0,
      ngx_http_tiktok_status_handler },
    { ngx_string("connect"), NGX_HTTP_GET, NULL, 0,
      ngx_http_tiktok_connect_handler },
    { ngx_string("callback"), NGX_HTTP_GET, NULL, 0,
      ngx_http_tiktok_callback_handler },
    { ngx_string("disconnect"), NGX_HTTP_POST, NULL, 0,
      ngx_http_tiktok_disconnect_handler },
    { ngx_string("videos"), NGX_HTTP_GET, "video.list", 0,
      ngx_http_tiktok_videos_handler },
    { ngx_string("metrics"), NGX_HTTP_GET, "video.list", 0,
      ngx_http_tiktok_metrics_handler },
    { ngx_string("post"), NGX_HTTP_POST, "video.publish", 1,
      ngx_http_tiktok_post_handler },
    { ngx_string("creator"), NGX_HTTP_GET, "video.publish", 0,
      ngx_http_tiktok_creator_handler },
    { ngx_string("posts"), NGX_HTTP_GET, NULL, 0,
      ngx_http_tiktok_posts_handler },
    { ngx_string("posts/{id}"), NGX_HTTP_GET|NGX_HTTP_DELETE, NULL, 0,
      ngx_http_tiktok_post_item_handler },
    { ngx_null_string, 0, NULL, 0, NULL }
};


/* in the order Allow lists them */
static ngx_conf_bitmask_t  ngx_http_tiktok_methods[] = {
    { ngx_string("GET"), NGX_HTTP_GET },
    { ngx_string("POST"), NGX_HTTP_POST },
    { ngx_string("DELETE"), NGX_HTTP_DELETE },
    { ngx_null_string, 0 }
};


ngx_int_t
ngx_http_tiktok_handler(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_uint_t                allowed;
    ngx_http_tiktok_ctx_t    *ctx;
    ngx_http_tiktok_route_t  *route;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_tiktok_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_tiktok_module);

    ngx_http_tiktok_request_id(r, &ctx->request_id);

    if (r->error_page && r->err_status >= NGX_HTTP_BAD_REQUEST) {
        /* nginx's own error for a request here: see error_pages_conf */
        ngx_http_tiktok_callback_redact_original(r);
        return ngx_http_tiktok_error_page(r);
    }

    ngx_http_tiktok_endpoint_path(r, &ctx->path);

    /*
     * The callback's query carries the authorization code: it is read and
     * removed from what nginx logs before any answer, 401 and 405 included.
     */

    if (ctx->path.len == sizeof("callback") - 1
        && ngx_strncmp(ctx->path.data, "callback", ctx->path.len) == 0
        && ngx_http_tiktok_callback_redact(r, ctx) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    route = ngx_http_tiktok_route(r, &ctx->path, &allowed);

    if (route == NULL && allowed) {
        return ngx_http_tiktok_send_405(r, allowed);
    }

    if (route == NULL) {
        return ngx_http_tiktok_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                          NULL, "Unknown endpoint");
    }

    ctx->route = &route->path;

    /* a handler that reads a body reads it itself */
    if (!route->body) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    rc = ngx_http_tiktok_user_id(r, &ctx->user_id);

    /* the identity was to come from a JWT: no token, no caller */
    if (rc == NGX_DECLINED && ngx_http_tiktok_jwt_refused(r)) {
        return ngx_http_tiktok_jwt_unauthenticated(r);
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_tiktok_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                          "not_connected", NULL,
                                          "TikTok not connected");
    }

    if (rc == NGX_ABORT) {
        return ngx_http_tiktok_send_error(r, NGX_HTTP_BAD_REQUEST,
                                          "invalid_request", "user_id",
                                          "The user id is malformed");
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->scope = route->scope;

    return route->handler(r, ctx);
}


/*
 * The route for this method and path; NULL with the path's methods in
 * *allowed when it exists with other methods only (405 rather than 404).
 */

static ngx_http_tiktok_route_t *
ngx_http_tiktok_route(ngx_http_request_t *r, ngx_str_t *path,
    ngx_uint_t *allowed)
{
    ngx_uint_t                method;
    ngx_http_tiktok_route_t  *rt;

    *allowed = 0;

    /* HEAD is a GET without the body (ngx_http_tiktok_send_json) */
    method = (r->method == NGX_HTTP_HEAD) ? NGX_HTTP_GET : r->method;

    for (rt = ngx_http_tiktok_routes; rt->path.len; rt++) {
        if (!ngx_http_tiktok_path_match(&rt->path, path)) {
            continue;
        }

        if (rt->method & method) {
            return rt;
        }

        *allowed |= rt->method;
    }

    return NULL;
}


static ngx_int_t
ngx_http_tiktok_path_match(ngx_str_t *route, ngx_str_t *path)
{
    size_t   n;
    u_char  *p, *last;

    if (route->data[route->len - 1] != '}') {
        return route->len == path->len
               && ngx_strncmp(route->data, path->data, path->len) == 0;
    }

    /* "posts/{id}": one non-empty segment after "posts/" */

    n = route->len - (sizeof("{id}") - 1);

    if (path->len <= n || ngx_strncmp(route->data, path->data, n) != 0) {
        return 0;
    }

    last = path->data + path->len;

    for (p = path->data + n; p < last; p++) {
        if (*p == '/') {
            return 0;
        }
    }

    return 1;
}


/*
 * The request path below the location, without a leading slash; empty,
 * which no route has, for a URI that is not below it.
 */

static void
ngx_http_tiktok_endpoint_path(ngx_http_request_t *r, ngx_str_t *path)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (r->uri.len < clcf->name.len
        || ngx_strncmp(r->uri.data, clcf->name.data, clcf->name.len) != 0)
    {
        ngx_str_null(path);
        return;
    }

    path->data = r->uri.data + clcf->name.len;
    path->len = r->uri.len - clcf->name.len;

    while (path->len && path->data[0] == '/') {
        path->data++;
        path->len--;
    }
}


/*
 * The caller's X-Request-ID when it is a sane token, so a request can be
 * followed through the app's logs and ours; else nginx's $request_id.
 */

void
ngx_http_tiktok_request_id(ngx_http_request_t *r, ngx_str_t *id)
{
    u_char                       *p, *last;
    ngx_table_elt_t              *h;
    ngx_http_variable_value_t    *v;
    ngx_http_tiktok_main_conf_t  *tmcf;

    h = ngx_http_tiktok_header(&r->headers_in.headers, "X-Request-ID");

    if (h && h->value.len && h->value.len <= NGX_HTTP_TIKTOK_REQUEST_ID_MAX) {
        last = h->value.data + h->value.len;

        for (p = h->value.data; p < last; p++) {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                  || (*p >= '0' && *p <= '9')
                  || *p == '.' || *p == '_' || *p == '-'))
            {
                break;
            }
        }

        if (p == last) {
            *id = h->value;
            return;
        }
    }

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);

    v = ngx_http_get_indexed_variable(r, tmcf->request_id_index);

    if (v == NULL || v->not_found) {
        ngx_str_set(id, "-");
        return;
    }

    id->data = v->data;
    id->len = v->len;
}


/*
 * NGX_OK; NGX_DECLINED empty (not signed in); NGX_ABORT malformed: too
 * long, control characters that would corrupt SQL text parameters and
 * log lines, or not UTF-8.
 */

static ngx_int_t
ngx_http_tiktok_user_id(ngx_http_request_t *r, ngx_str_t *user)
{
    ngx_http_tiktok_loc_conf_t  *tlcf;

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_tiktok_module);

    if (ngx_http_complex_value(r, tlcf->user_id, user) != NGX_OK) {
        return NGX_ERROR;
    }

    if (user->len == 0) {
        return NGX_DECLINED;
    }

    if (user->len > NGX_HTTP_TIKTOK_USER_ID_MAX
        || !ngx_http_tiktok_is_printable(user))
    {
        return NGX_ABORT;
    }

    return NGX_OK;
}


/*
 * Errors nginx answers itself before a handler of ours runs or while it
 * reads the body (a body over client_max_body_size, a malformed chunked
 * body, a body that cannot be written, a full upload spool, limit_req)
 * come as JSON like every other answer: a location with tiktok_api gets
 * error pages for these codes that lead back to the location itself,
 * where ngx_http_tiktok_handler sees r->error_page.  Error pages the
 * operator set for a code are kept.
 */

static struct {
    ngx_uint_t    status;
    const char   *code;
    const char   *message;          /* 413's is made of the limit */
} ngx_http_tiktok_error_codes[] = {
    { NGX_HTTP_BAD_REQUEST, "invalid_request", "The request is malformed" },
    { NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "body_too_large", NULL },
    { NGX_HTTP_TOO_MANY_REQUESTS, "rate_limited",
      "Too many requests. Try again later." },
    { NGX_HTTP_INTERNAL_SERVER_ERROR, "internal_error", "Internal error" },
    { NGX_HTTP_SERVICE_UNAVAILABLE, "service_unavailable",
      "Service temporarily unavailable" },
    { NGX_HTTP_INSUFFICIENT_STORAGE, "insufficient_storage",
      "The upload spool (tiktok_upload_spool) has no room for this upload. "
      "Try again later." },
    { 0, "internal_error", "Internal error" }      /* any other code */
};


char *
ngx_http_tiktok_error_pages_conf(ngx_conf_t *cf,
    ngx_http_core_loc_conf_t *clcf)
{
    ngx_uint_t            i, code;
    ngx_array_t          *pages;
    ngx_http_err_page_t  *err, *old;

    if (clcf->noname || clcf->name.len == 0) {
        return NGX_CONF_OK;
    }

    /* a copy: the array may be the enclosing server's, shared */

    pages = ngx_array_create(cf->pool, 8, sizeof(ngx_http_err_page_t));
    if (pages == NULL) {
        return NGX_CONF_ERROR;
    }

    if (clcf->error_pages && clcf->error_pages->nelts) {
        err = ngx_array_push_n(pages, clcf->error_pages->nelts);
        if (err == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(err, clcf->error_pages->elts,
                   clcf->error_pages->nelts * sizeof(ngx_http_err_page_t));
    }

    for (code = 0; ngx_http_tiktok_error_codes[code].status; code++) {

        old = pages->elts;

        for (i = 0; i < pages->nelts; i++) {
            if ((ngx_uint_t) old[i].status
                == ngx_http_tiktok_error_codes[code].status)
            {
                break;
            }
        }

        if (i < pages->nelts) {
            continue;
        }

        err = ngx_array_push(pages);
        if (err == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(err, sizeof(ngx_http_err_page_t));

        err->status = ngx_http_tiktok_error_codes[code].status;
        err->overwrite = err->status;
        err->value.value = clcf->name;      /* a constant: no lengths */
    }

    clcf->error_pages = pages;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_tiktok_error_page(ngx_http_request_t *r)
{
    u_char                    *msg;
    ngx_uint_t                 status, i;
    ngx_http_core_loc_conf_t  *clcf;

    status = r->err_status;

    (void) ngx_http_discard_request_body(r);

    if (status == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        /* no limit of nginx's below TikTok's: the body filter's 413 */
        if (clcf->client_max_body_size == 0
            || clcf->client_max_body_size > NGX_HTTP_TIKTOK_VIDEO_MAX)
        {
            return ngx_http_tiktok_send_error(r, status, "body_too_large",
                                              "body",
                                              "The video is larger than "
                                              "4 GB");
        }

        msg = ngx_pnalloc(r->pool, 80 + NGX_OFF_T_LEN);
        if (msg == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_sprintf(msg, "The body is larger than client_max_body_size "
                    "(%O bytes)%Z", clcf->client_max_body_size);

        return ngx_http_tiktok_send_error(r, status, "body_too_large", "body",
                                          (char *) msg);
    }

    for (i = 0; ngx_http_tiktok_error_codes[i].status; i++) {
        if (ngx_http_tiktok_error_codes[i].status == status) {
            break;
        }
    }

    return ngx_http_tiktok_send_error(r, status,
                                      ngx_http_tiktok_error_codes[i].code,
                                      NULL,
                                      ngx_http_tiktok_error_codes[i].message);
}


static ngx_int_t
ngx_http_tiktok_send_405(ngx_http_request_t *r, ngx_uint_t allowed)
{
    u_char      *p;
    ngx_str_t    allow;
    ngx_uint_t   i;

    p = ngx_pnalloc(r->pool, sizeof("GET, POST, DELETE"));
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    allow.data = p;

    for (i = 0; ngx_http_tiktok_methods[i].name.len; i++) {
        if (!(allowed & ngx_http_tiktok_methods[i].mask)) {
            continue;
        }

        p = ngx_sprintf(p, "%s%V", p != allow.data ? ", " : "",
                        &ngx_http_tiktok_methods[i].name);
    }

    allow.len = p - allow.data;

    if (ngx_http_tiktok_set_header(r->pool, &r->headers_out.headers, "Allow",
                                   &allow)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_tiktok_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                      "method_not_allowed", NULL,
                                      "Method not allowed");
}
