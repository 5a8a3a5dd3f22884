
/*
 * What the fuzz targets need of nginx beyond pools, strings, arrays and
 * lists (which are nginx's own files, built alongside): the log, the
 * cached time and the module's index.  Nothing here is fetched.
 *
 * The log formats every message with nginx's own ngx_vslprintf into a
 * buffer and drops it: a format that does not match its arguments, or a
 * string that is not what its length says, is then read under ASan as
 * nginx would read it.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "fuzz.h"


extern ngx_module_t  ngx_http_tiktok_module;


static ngx_time_t         fuzz_time;

volatile ngx_time_t      *ngx_cached_time = &fuzz_time;
volatile ngx_msec_t       ngx_current_msec;
volatile ngx_cycle_t     *ngx_cycle;


void
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
    u_char   buf[NGX_MAX_ERROR_STR];
    va_list  args;

    va_start(args, fmt);
    (void) ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);
}


void
fuzz_init(void)
{
    /* a fixed "now", so that a crash replays: 2026-12-01T00:00:00Z */
    fuzz_time.sec = 1795996800;
    ngx_current_msec = (ngx_msec_t) fuzz_time.sec * 1000;

    /* ngx_http_get_module_*_conf(r, ngx_http_tiktok_module): index 0 */
    ngx_http_tiktok_module.ctx_index = 0;

}


ngx_pool_t *
fuzz_pool(ngx_log_t *log)
{
    ngx_pool_t  *pool;

    pool = ngx_create_pool(4096, log);
    if (pool == NULL) {
        abort();
    }

    return pool;
}


/*
 * A request with what the parsers read of one: a pool, a connection's
 * log, the module's main configuration and context, the arguments and a
 * body in memory.  Everything is from the pool, which fuzz_done() frees.
 */

ngx_http_request_t *
fuzz_request(ngx_pool_t *pool, void *main_conf, void *ctx)
{
    ngx_log_t           *log;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    log = ngx_pcalloc(pool, sizeof(ngx_log_t));
    c = ngx_pcalloc(pool, sizeof(ngx_connection_t));
    r = ngx_pcalloc(pool, sizeof(ngx_http_request_t));

    if (log == NULL || c == NULL || r == NULL) {
        abort();
    }

    log->log_level = NGX_LOG_DEBUG_ALL;
    c->log = log;
    c->pool = pool;

    r->connection = c;
    r->pool = pool;
    r->main = r;

    r->main_conf = ngx_pcalloc(pool, sizeof(void *));
    r->loc_conf = ngx_pcalloc(pool, sizeof(void *));
    r->ctx = ngx_pcalloc(pool, sizeof(void *));

    if (r->main_conf == NULL || r->loc_conf == NULL || r->ctx == NULL) {
        abort();
    }

    r->main_conf[0] = main_conf;
    r->ctx[0] = ctx;

    return r;
}


/*
 * The input as a string of its own: malloc()ed to its exact size, not cut
 * from a pool block, so that ASan sees a read past its end.
 */

u_char *
fuzz_copy(ngx_pool_t *pool, const uint8_t *data, size_t size)
{
    u_char              *p;
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(pool, 0);
    p = malloc(size ? size : 1);

    if (cln == NULL || p == NULL) {
        abort();
    }

    ngx_memcpy(p, data, size);

    cln->handler = free;
    cln->data = p;

    return p;
}
