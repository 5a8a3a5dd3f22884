
/*
 * What every request to the API brings before a handler runs: the path
 * below the location (routes, and posts/{id} with its UUID), the method
 * and X-Request-ID.  The input is the method's index, the path, a
 * newline, and the header's value.
 */


#include "fuzz.h"

#include "../src/ngx_http_tiktok_handler.c"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                    *p, *nl, *last;
    ngx_str_t                  path, id, uuid;
    ngx_uint_t                 allowed;
    ngx_pool_t                *pool;
    ngx_table_elt_t           *h;
    ngx_http_request_t        *r;
    ngx_http_tiktok_route_t   *rt;
    ngx_http_core_loc_conf_t  *clcf;

    static ngx_uint_t  methods[] = {
        NGX_HTTP_GET, NGX_HTTP_POST, NGX_HTTP_DELETE, NGX_HTTP_HEAD,
        NGX_HTTP_PUT, NGX_HTTP_OPTIONS, NGX_HTTP_PATCH, NGX_HTTP_GET
    };

    if (size == 0) {
        return 0;
    }

    fuzz_init();

    pool = fuzz_pool();

    /* the core module's index is 0 too: loc_conf[0] is its conf here */
    clcf = ngx_pcalloc(pool, sizeof(ngx_http_core_loc_conf_t));
    if (clcf == NULL) {
        abort();
    }

    ngx_str_set(&clcf->name, "/api/tiktok/");

    r = fuzz_request(pool, fuzz_main_conf(), NULL);
    r->loc_conf[0] = clcf;
    r->method = methods[data[0] % 8];

    p = fuzz_copy(pool, data + 1, size - 1);
    last = p + size - 1;
    nl = ngx_strlchr(p, last, '\n');

    r->uri.data = p;
    r->uri.len = (nl ? nl : last) - p;

    if (ngx_list_init(&r->headers_in.headers, pool, 2,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        abort();
    }

    if (nl) {
        h = ngx_list_push(&r->headers_in.headers);
        if (h == NULL) {
            abort();
        }

        ngx_memzero(h, sizeof(ngx_table_elt_t));
        h->hash = 1;
        ngx_str_set(&h->key, "X-Request-ID");
        h->value.data = nl + 1;
        h->value.len = last - (nl + 1);
        h->lowcase_key = (u_char *) "x-request-id";
    }

    ngx_http_tiktok_endpoint_path(r, &path);

    if (path.len && (path.data < r->uri.data
                     || path.data + path.len > r->uri.data + r->uri.len
                     || path.data[0] == '/'))
    {
        abort();
    }

    rt = ngx_http_tiktok_route(r, &path, &allowed);

    if (rt && (!ngx_http_tiktok_path_match(&rt->path, &path) || allowed)) {
        abort();
    }

    /* posts/{id}: the handlers' id is a UUID or nothing */
    if (rt && rt->path.data[rt->path.len - 1] == '}') {
        uuid.data = path.data + rt->path.len - (sizeof("{id}") - 1);
        uuid.len = path.data + path.len - uuid.data;

        if (ngx_http_tiktok_is_uuid(&uuid) && uuid.len != 36) {
            abort();
        }
    }

    ngx_http_tiktok_request_id(r, &id);

    /* the caller's, only when it is a sane token; else nginx's */

    for (p = id.data; p < id.data + id.len; p++) {
        if (!(isalnum(*p) || *p == '.' || *p == '_' || *p == '-')) {
            abort();
        }
    }

    if (id.len == 0 || id.len > NGX_HTTP_TIKTOK_REQUEST_ID_MAX) {
        abort();
    }

    ngx_destroy_pool(pool);

    return 0;
}
