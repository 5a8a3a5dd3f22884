
/*
 * Pacing and back-off windows, both entries of the cache zone: a window
 * lives under "backoff:<endpoint>" for the user, its value counting the
 * windows in a row; it outlives its window (as a stale entry) so the next
 * one can double.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_tiktok_ratelimit.h"


#define NGX_HTTP_TIKTOK_BACKOFF_FIRST  60
#define NGX_HTTP_TIKTOK_BACKOFF_MAX    3600

/*
 * Calls are counted in 10-second buckets; the current bucket and the six
 * before it cover at least the last 60 seconds, so their sum never
 * undercounts TikTok's sliding window, even for a burst at a bucket's edge.
 */
#define NGX_HTTP_TIKTOK_PACE_BUCKET    10
#define NGX_HTTP_TIKTOK_PACE_BUCKETS   7


static void ngx_http_tiktok_ratelimit_key(u_char *buf, ngx_str_t *key,
    const char *endpoint);


time_t
ngx_http_tiktok_ratelimit_pace(ngx_http_tiktok_cache_t *cache, ngx_log_t *log,
    ngx_str_t *user, const char *endpoint, ngx_uint_t limit)
{
    u_char      buf[96];
    time_t      now, bucket;
    ngx_str_t   key;
    ngx_int_t   n;
    ngx_uint_t  i, sum;

    now = ngx_time();
    bucket = now / NGX_HTTP_TIKTOK_PACE_BUCKET;

    key.data = buf;
    sum = 0;

    /* the oldest first: the key left is the current bucket's */

    for (i = NGX_HTTP_TIKTOK_PACE_BUCKETS; i > 0; i--) {
        key.len = ngx_snprintf(buf, sizeof(buf), "rate:%s:%T", endpoint,
                               bucket - (time_t) (i - 1)) - buf;

        n = ngx_http_tiktok_cache_count(cache, user, &key, 0, 0);
        if (n > 0) {
            sum += n;
        }
    }

    if (sum >= limit) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "tiktok: pacing %s under TikTok's limit of %ui "
                      "a minute", endpoint, limit);
        return NGX_HTTP_TIKTOK_PACE_BUCKET - now % NGX_HTTP_TIKTOK_PACE_BUCKET;
    }

    (void) ngx_http_tiktok_cache_count(cache, user, &key, 1,
                                       NGX_HTTP_TIKTOK_PACE_BUCKET
                                       * (NGX_HTTP_TIKTOK_PACE_BUCKETS + 1));

    return 0;
}


time_t
ngx_http_tiktok_ratelimit_left(ngx_http_tiktok_cache_t *cache,
    ngx_pool_t *pool, ngx_str_t *user, const char *endpoint)
{
    u_char                         buf[64];
    ngx_str_t                      key;
    ngx_http_tiktok_cache_entry_t  entry;

    if (cache == NULL) {
        return 0;
    }

    ngx_http_tiktok_ratelimit_key(buf, &key, endpoint);

    if (ngx_http_tiktok_cache_get(cache, user, &key, pool, &entry) != NGX_OK) {
        return 0;
    }

    return ngx_max(entry.expires - ngx_time(), 1);
}


time_t
ngx_http_tiktok_ratelimit_open(ngx_http_tiktok_cache_t *cache,
    ngx_pool_t *pool, ngx_str_t *user, const char *endpoint,
    ngx_str_t *retry_after)
{
    u_char                         buf[64], num[NGX_INT_T_LEN];
    time_t                         window;
    ngx_int_t                      rc, n;
    ngx_str_t                      key, value;
    ngx_http_tiktok_cache_entry_t  entry;

    n = 0;

    ngx_http_tiktok_ratelimit_key(buf, &key, endpoint);

    if (cache) {
        rc = ngx_http_tiktok_cache_get(cache, user, &key, pool, &entry);
        if (rc == NGX_OK || rc == NGX_AGAIN) {
            n = ngx_atoi(entry.value.data, entry.value.len);
            n = (n == NGX_ERROR) ? 0 : ngx_min(n + 1, 6);
        }
    }

    rc = retry_after->len ? ngx_atoi(retry_after->data, retry_after->len)
                          : NGX_ERROR;

    if (rc != NGX_ERROR && rc > 0) {
        window = ngx_min((time_t) rc, NGX_HTTP_TIKTOK_BACKOFF_MAX);

    } else {
        window = ngx_min(NGX_HTTP_TIKTOK_BACKOFF_FIRST << n,
                         NGX_HTTP_TIKTOK_BACKOFF_MAX);
    }

    if (cache) {
        value.data = num;
        value.len = ngx_sprintf(num, "%i", n) - num;

        (void) ngx_http_tiktok_cache_set(cache, user, &key, &value, window);
    }

    return window;
}


void
ngx_http_tiktok_ratelimit_clear(ngx_http_tiktok_cache_t *cache,
    ngx_str_t *user, const char *endpoint)
{
    u_char     buf[64];
    ngx_str_t  key;

    if (cache) {
        ngx_http_tiktok_ratelimit_key(buf, &key, endpoint);
        (void) ngx_http_tiktok_cache_delete(cache, user, &key);
    }
}


static void
ngx_http_tiktok_ratelimit_key(u_char *buf, ngx_str_t *key,
    const char *endpoint)
{
    key->data = buf;
    key->len = ngx_snprintf(buf, 64, "backoff:%s", endpoint) - buf;
}
