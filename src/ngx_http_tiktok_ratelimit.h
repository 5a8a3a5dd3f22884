
/*
 * TikTok's rate limits, kept in the cache zone for every worker: pacing
 * under the documented per-minute limits, and the back-off window a 429
 * opens per user and endpoint.  Nothing here needs a request, so the
 * publisher uses the same functions.
 */


#ifndef _NGX_HTTP_TIKTOK_RATELIMIT_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_RATELIMIT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_tiktok_cache.h"


/*
 * Counts a call to endpoint for user under a per-minute limit: 0 when it
 * may go now (and it is counted), else the seconds to wait.  The empty user
 * id, which no caller can have, counts per-client limits.
 */
time_t ngx_http_tiktok_ratelimit_pace(ngx_http_tiktok_cache_t *cache,
    ngx_log_t *log, ngx_str_t *user, const char *endpoint, ngx_uint_t limit);

/* the seconds left in user's back-off window for endpoint, or 0 */
time_t ngx_http_tiktok_ratelimit_left(ngx_http_tiktok_cache_t *cache,
    ngx_pool_t *pool, ngx_str_t *user, const char *endpoint);

/*
 * TikTok said 429: opens the window (Retry-After seconds, else 1, 2, 4 ...
 * minutes for windows in a row) and returns its length.
 */
time_t ngx_http_tiktok_ratelimit_open(ngx_http_tiktok_cache_t *cache,
    ngx_pool_t *pool, ngx_str_t *user, const char *endpoint,
    ngx_str_t *retry_after);

/* TikTok answered: the next window starts from one minute again */
void ngx_http_tiktok_ratelimit_clear(ngx_http_tiktok_cache_t *cache,
    ngx_str_t *user, const char *endpoint);


#endif /* _NGX_HTTP_TIKTOK_RATELIMIT_H_INCLUDED_ */
