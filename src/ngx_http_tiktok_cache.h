
/*
 * The shared-memory cache (tiktok_cache_zone): a slab, a red-black tree
 * keyed by a hash of user + key, and an LRU queue.  Values are copied in and
 * out under the zone's mutex; nobody keeps pointers into shared memory.
 */


#ifndef _NGX_HTTP_TIKTOK_CACHE_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_CACHE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* users are spread over this many purge generations (a power of two) */
#define NGX_HTTP_TIKTOK_CACHE_GENERATIONS  256


typedef struct {
    ngx_rbtree_t                 rbtree;
    ngx_rbtree_node_t            sentinel;
    ngx_queue_t                  lru;

    /*
     * Purges, per node (every worker of the node shares the zone): the
     * newest purge record applied, and a generation per group of users
     * that each purge of one of them advances.
     */
    int64_t                      purge_applied;
    uint32_t                     generations[
                                     NGX_HTTP_TIKTOK_CACHE_GENERATIONS];

    void                        *metrics;   /* ngx_http_tiktok_metrics.c */
} ngx_http_tiktok_cache_sh_t;


typedef struct {
    ngx_http_tiktok_cache_sh_t  *sh;
    ngx_slab_pool_t             *shpool;
    time_t                       ttl;
} ngx_http_tiktok_cache_t;


typedef struct {
    ngx_str_t                    value;
    time_t                       created;    /* when it was stored */
    time_t                       expires;
} ngx_http_tiktok_cache_entry_t;


char *ngx_http_tiktok_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/*
 * NGX_OK fresh entry; NGX_AGAIN expired entry (still copied out: callers
 * may serve it as stale); NGX_DECLINED none; NGX_ERROR no memory.
 */
ngx_int_t ngx_http_tiktok_cache_get(ngx_http_tiktok_cache_t *cache,
    ngx_str_t *user, ngx_str_t *key, ngx_pool_t *pool,
    ngx_http_tiktok_cache_entry_t *entry);

/* ttl 0: the zone's ttl.  NGX_OK, or NGX_ERROR (value larger than the zone) */
ngx_int_t ngx_http_tiktok_cache_set(ngx_http_tiktok_cache_t *cache,
    ngx_str_t *user, ngx_str_t *key, ngx_str_t *value, time_t ttl);

ngx_int_t ngx_http_tiktok_cache_delete(ngx_http_tiktok_cache_t *cache,
    ngx_str_t *user, ngx_str_t *key);

/*
 * Adds n to a counter entry, created at 0 with ttl when absent or dead;
 * returns the counter after the addition (n = 0 only reads it), or
 * NGX_ERROR when there is no room.
 */
ngx_int_t ngx_http_tiktok_cache_count(ngx_http_tiktok_cache_t *cache,
    ngx_str_t *user, ngx_str_t *key, ngx_uint_t n, time_t ttl);

/*
 * Removes every entry of a user and advances the user's purge generation;
 * returns how many entries went.
 */
ngx_uint_t ngx_http_tiktok_cache_purge_user(ngx_http_tiktok_cache_t *cache,
    ngx_str_t *user);

/*
 * A page fetched before a purge is never stored after it: read the user's
 * generation before the fetch starts (before the token is even loaded),
 * and store with cache_set_since, which declines (NGX_DECLINED) when the
 * user was purged since.  Otherwise (and with generation NULL) as cache_set.
 */
uint32_t ngx_http_tiktok_cache_generation(ngx_http_tiktok_cache_t *cache,
    ngx_str_t *user);
ngx_int_t ngx_http_tiktok_cache_set_since(ngx_http_tiktok_cache_t *cache,
    ngx_str_t *user, ngx_str_t *key, ngx_str_t *value, time_t ttl,
    uint32_t *generation);

/* the newest purge record this node applied; advanced, never moved back */
int64_t ngx_http_tiktok_cache_purge_applied(ngx_http_tiktok_cache_t *cache);
void ngx_http_tiktok_cache_purge_advance(ngx_http_tiktok_cache_t *cache,
    int64_t id);


#endif /* _NGX_HTTP_TIKTOK_CACHE_H_INCLUDED_ */
