
/*
 * Shared-memory cache.  Entries outlive their TTL by one more TTL so that a
 * rate-limited user can still be served a stale copy; the LRU tail is
 * evicted when the slab is full, so a full zone is never an error.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_tiktok_module.h"
#include "ngx_http_tiktok_metrics.h"


typedef struct {
    u_char                       color;
    u_char                       pad;
    u_short                      user_len;
    u_short                      key_len;
    ngx_queue_t                  queue;
    uint32_t                     user_hash;
    size_t                       value_len;
    time_t                       created;
    time_t                       expires;
    time_t                       drop;       /* no longer served at all */
    u_char                       data[1];    /* user, key, value */
} ngx_http_tiktok_cache_node_t;


static ngx_int_t ngx_http_tiktok_cache_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_tiktok_cache_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_rbtree_node_t *ngx_http_tiktok_cache_lookup(
    ngx_http_tiktok_cache_t *cache, uint32_t hash, ngx_str_t *user,
    ngx_str_t *key);
static ngx_int_t ngx_http_tiktok_cache_cmp(ngx_str_t *user, ngx_str_t *key,
    ngx_http_tiktok_cache_node_t *cn);
static uint32_t ngx_http_tiktok_cache_hash(ngx_str_t *user, ngx_str_t *key);
static void ngx_http_tiktok_cache_free(ngx_http_tiktok_cache_t *cache,
    ngx_http_tiktok_cache_node_t *cn);
static ngx_uint_t ngx_http_tiktok_cache_expire(ngx_http_tiktok_cache_t *cache,
    ngx_uint_t force);


#define ngx_http_tiktok_cache_gen(cache, user_hash)                           \
    (cache)->sh->generations[(user_hash)                                      \
                             & (NGX_HTTP_TIKTOK_CACHE_GENERATIONS - 1)]


#define ngx_http_tiktok_cache_node(n)                                         \
    ((ngx_http_tiktok_cache_node_t *) &(n)->color)


/* tiktok_cache_zone name:size [ttl=time] */

char *
ngx_http_tiktok_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tiktok_main_conf_t *tmcf = conf;

    u_char                   *p;
    ssize_t                   size;
    ngx_str_t                *value, name, s;
    ngx_int_t                 ttl;
    ngx_uint_t                i;
    ngx_shm_zone_t           *shm_zone;
    ngx_http_tiktok_cache_t  *cache;

    if (tmcf->cache) {
        return "is duplicate";
    }

    value = cf->args->elts;

    ttl = 3600;

    name.data = value[1].data;

    p = (u_char *) ngx_strchr(name.data, ':');
    if (p == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_cache_zone\" needs a size: "
                           "\"%V\" should be \"name:size\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    name.len = p - name.data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (name.len == 0 || size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_cache_zone\" has an invalid "
                           "zone \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_cache_zone\" \"%V\" is too small",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "ttl=", 4) == 0) {
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;

            ttl = ngx_parse_time(&s, 1);
            if (ttl == NGX_ERROR || ttl == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"tiktok_cache_zone\" has an invalid "
                                   "ttl \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_cache_zone\" has an invalid "
                           "parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    cache = ngx_pcalloc(cf->pool, sizeof(ngx_http_tiktok_cache_t));
    if (cache == NULL) {
        return NGX_CONF_ERROR;
    }

    cache->ttl = (time_t) ttl;

    shm_zone = ngx_shared_memory_add(cf, &name, size, cmd->post);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_cache_zone\": zone \"%V\" is already "
                           "used", &name);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_tiktok_cache_init_zone;
    shm_zone->data = cache;

    tmcf->cache = cache;

    return NGX_CONF_OK;
}


/* reload-safe: a zone that survives a reload keeps its entries */

static ngx_int_t
ngx_http_tiktok_cache_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_tiktok_cache_t  *ocache = data;

    size_t                    len;
    ngx_http_tiktok_cache_t  *cache;

    cache = shm_zone->data;

    if (ocache) {
        cache->sh = ocache->sh;
        cache->shpool = ocache->shpool;
        return NGX_OK;
    }

    cache->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        cache->sh = cache->shpool->data;
        return NGX_OK;
    }

    /* zeroed: no purge applied yet, every generation at 0 */
    cache->sh = ngx_slab_calloc(cache->shpool,
                                sizeof(ngx_http_tiktok_cache_sh_t));
    if (cache->sh == NULL) {
        return NGX_ERROR;
    }

    cache->shpool->data = cache->sh;

    ngx_rbtree_init(&cache->sh->rbtree, &cache->sh->sentinel,
                    ngx_http_tiktok_cache_rbtree_insert);
    ngx_queue_init(&cache->sh->lru);

    len = sizeof(" in tiktok_cache_zone \"\"") + shm_zone->shm.name.len;

    cache->shpool->log_ctx = ngx_slab_alloc(cache->shpool, len);
    if (cache->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(cache->shpool->log_ctx, " in tiktok_cache_zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* eviction handles a full zone; "no memory" lines would only alarm */
    cache->shpool->log_nomem = 0;

    return NGX_OK;
}


static void
ngx_http_tiktok_cache_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_str_t                      user, key;
    ngx_rbtree_node_t            **p;
    ngx_http_tiktok_cache_node_t  *cn;

    cn = ngx_http_tiktok_cache_node(node);

    user.data = cn->data;
    user.len = cn->user_len;
    key.data = cn->data + cn->user_len;
    key.len = cn->key_len;

    for ( ;; ) {

        /*
         * Ordered by hash, then by user and key, like
         * ngx_str_rbtree_insert_value(): lookup follows the same order, so
         * an equal hash is found whichever side rotations put it on.
         */

        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            p = (ngx_http_tiktok_cache_cmp(&user, &key,
                                           ngx_http_tiktok_cache_node(temp))
                 < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/* user, then key, against a node's: <0, 0 or >0 */

static ngx_int_t
ngx_http_tiktok_cache_cmp(ngx_str_t *user, ngx_str_t *key,
    ngx_http_tiktok_cache_node_t *cn)
{
    ngx_int_t  rc;

    rc = ngx_memn2cmp(user->data, cn->data, user->len, cn->user_len);

    if (rc != 0) {
        return rc;
    }

    return ngx_memn2cmp(key->data, cn->data + cn->user_len, key->len,
                        cn->key_len);
}


/* t/165-cache-collisions.t forges keys of one hash for this function */

static uint32_t
ngx_http_tiktok_cache_hash(ngx_str_t *user, ngx_str_t *key)
{
    uint32_t  crc;

    ngx_crc32_init(crc);
    ngx_crc32_update(&crc, user->data, user->len);
    ngx_crc32_update(&crc, (u_char *) "", 1);
    ngx_crc32_update(&crc, key->data, key->len);
    ngx_crc32_final(crc);

    return crc;
}


static ngx_rbtree_node_t *
ngx_http_tiktok_cache_lookup(ngx_http_tiktok_cache_t *cache, uint32_t hash,
    ngx_str_t *user, ngx_str_t *key)
{
    ngx_int_t           rc;
    ngx_rbtree_node_t  *node, *sentinel;

    node = cache->sh->rbtree.root;
    sentinel = cache->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        /* hash == node->key: the order of insert */

        rc = ngx_http_tiktok_cache_cmp(user, key,
                                       ngx_http_tiktok_cache_node(node));

        if (rc == 0) {
            return node;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


ngx_int_t
ngx_http_tiktok_cache_get(ngx_http_tiktok_cache_t *cache, ngx_str_t *user,
    ngx_str_t *key, ngx_pool_t *pool, ngx_http_tiktok_cache_entry_t *entry)
{
    time_t                         now;
    uint32_t                       hash;
    ngx_int_t                      rc;
    ngx_rbtree_node_t             *node;
    ngx_http_tiktok_cache_node_t  *cn;

    hash = ngx_http_tiktok_cache_hash(user, key);
    now = ngx_time();

    ngx_shmtx_lock(&cache->shpool->mutex);

    node = ngx_http_tiktok_cache_lookup(cache, hash, user, key);

    if (node == NULL) {
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return NGX_DECLINED;
    }

    cn = ngx_http_tiktok_cache_node(node);

    if (cn->drop <= now) {
        ngx_http_tiktok_cache_free(cache, cn);
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return NGX_DECLINED;
    }

    entry->value.data = ngx_pnalloc(pool, cn->value_len);
    if (entry->value.data == NULL) {
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return NGX_ERROR;
    }

    ngx_memcpy(entry->value.data, cn->data + cn->user_len + cn->key_len,
               cn->value_len);
    entry->value.len = cn->value_len;
    entry->created = cn->created;
    entry->expires = cn->expires;

    rc = (cn->expires > now) ? NGX_OK : NGX_AGAIN;

    /* most recently used goes to the head */
    ngx_queue_remove(&cn->queue);
    ngx_queue_insert_head(&cache->sh->lru, &cn->queue);

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return rc;
}


ngx_int_t
ngx_http_tiktok_cache_set(ngx_http_tiktok_cache_t *cache, ngx_str_t *user,
    ngx_str_t *key, ngx_str_t *value, time_t ttl)
{
    return ngx_http_tiktok_cache_set_since(cache, user, key, value, ttl,
                                           NULL);
}


uint32_t
ngx_http_tiktok_cache_generation(ngx_http_tiktok_cache_t *cache,
    ngx_str_t *user)
{
    uint32_t  gen;

    ngx_shmtx_lock(&cache->shpool->mutex);
    gen = ngx_http_tiktok_cache_gen(cache,
                                    ngx_crc32_short(user->data, user->len));
    ngx_shmtx_unlock(&cache->shpool->mutex);

    return gen;
}


ngx_int_t
ngx_http_tiktok_cache_set_since(ngx_http_tiktok_cache_t *cache,
    ngx_str_t *user, ngx_str_t *key, ngx_str_t *value, time_t ttl,
    uint32_t *generation)
{
    size_t                         n;
    time_t                         now;
    uint32_t                       hash, user_hash;
    ngx_rbtree_node_t             *node;
    ngx_http_tiktok_cache_node_t  *cn;

    if (user->len > 0xffff || key->len > 0xffff) {
        return NGX_ERROR;
    }

    if (ttl == 0) {
        ttl = cache->ttl;
    }

    hash = ngx_http_tiktok_cache_hash(user, key);
    user_hash = ngx_crc32_short(user->data, user->len);
    now = ngx_time();

    n = offsetof(ngx_rbtree_node_t, color)
        + offsetof(ngx_http_tiktok_cache_node_t, data)
        + user->len + key->len + value->len;

    ngx_shmtx_lock(&cache->shpool->mutex);

    if (generation
        && ngx_http_tiktok_cache_gen(cache, user_hash) != *generation)
    {
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return NGX_DECLINED;
    }

    node = ngx_http_tiktok_cache_lookup(cache, hash, user, key);
    if (node) {
        ngx_http_tiktok_cache_free(cache, ngx_http_tiktok_cache_node(node));
    }

    (void) ngx_http_tiktok_cache_expire(cache, 0);

    for ( ;; ) {
        node = ngx_slab_alloc_locked(cache->shpool, n);
        if (node) {
            break;
        }

        /* full: evict the least recently used entry and try again */

        if (ngx_http_tiktok_cache_expire(cache, 1) == 0) {
            ngx_shmtx_unlock(&cache->shpool->mutex);
            return NGX_ERROR;
        }

        ngx_http_tiktok_metrics_count(NGX_HTTP_TIKTOK_METRICS_EVICTIONS);
    }

    node->key = hash;

    cn = ngx_http_tiktok_cache_node(node);

    cn->user_len = (u_short) user->len;
    cn->key_len = (u_short) key->len;
    cn->user_hash = user_hash;
    cn->value_len = value->len;
    cn->created = now;
    cn->expires = now + ttl;
    cn->drop = now + 2 * ttl;

    ngx_memcpy(cn->data, user->data, user->len);
    ngx_memcpy(cn->data + user->len, key->data, key->len);
    ngx_memcpy(cn->data + user->len + key->len, value->data, value->len);

    ngx_rbtree_insert(&cache->sh->rbtree, node);
    ngx_queue_insert_head(&cache->sh->lru, &cn->queue);

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return NGX_OK;
}


ngx_int_t
ngx_http_tiktok_cache_count(ngx_http_tiktok_cache_t *cache, ngx_str_t *user,
    ngx_str_t *key, ngx_uint_t n, time_t ttl)
{
    uint64_t                       count;
    ngx_str_t                      value;
    ngx_rbtree_node_t             *node;
    ngx_http_tiktok_cache_node_t  *cn;

    ngx_shmtx_lock(&cache->shpool->mutex);

    node = ngx_http_tiktok_cache_lookup(cache,
                                        ngx_http_tiktok_cache_hash(user, key),
                                        user, key);

    if (node) {
        cn = ngx_http_tiktok_cache_node(node);

        if (cn->expires > ngx_time() && cn->value_len == sizeof(uint64_t)) {
            ngx_memcpy(&count, cn->data + cn->user_len + cn->key_len,
                       sizeof(uint64_t));
            count += n;
            ngx_memcpy(cn->data + cn->user_len + cn->key_len, &count,
                       sizeof(uint64_t));

            /*
             * A counter in use is recently used: without this a zone full
             * of pages would evict it and a count would restart at zero.
             */
            ngx_queue_remove(&cn->queue);
            ngx_queue_insert_head(&cache->sh->lru, &cn->queue);

            ngx_shmtx_unlock(&cache->shpool->mutex);

            return (ngx_int_t) count;
        }
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    if (n == 0) {
        return 0;
    }

    /* absent or expired: a new counter (a race here only loses a count) */

    count = n;
    value.data = (u_char *) &count;
    value.len = sizeof(uint64_t);

    if (ngx_http_tiktok_cache_set(cache, user, key, &value, ttl) != NGX_OK) {
        return NGX_ERROR;
    }

    return (ngx_int_t) count;
}


ngx_int_t
ngx_http_tiktok_cache_delete(ngx_http_tiktok_cache_t *cache, ngx_str_t *user,
    ngx_str_t *key)
{
    uint32_t            hash;
    ngx_rbtree_node_t  *node;

    hash = ngx_http_tiktok_cache_hash(user, key);

    ngx_shmtx_lock(&cache->shpool->mutex);

    node = ngx_http_tiktok_cache_lookup(cache, hash, user, key);
    if (node) {
        ngx_http_tiktok_cache_free(cache, ngx_http_tiktok_cache_node(node));
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return node ? NGX_OK : NGX_DECLINED;
}


ngx_uint_t
ngx_http_tiktok_cache_purge_user(ngx_http_tiktok_cache_t *cache,
    ngx_str_t *user)
{
    uint32_t                       user_hash;
    ngx_uint_t                     n;
    ngx_queue_t                   *q, *next;
    ngx_http_tiktok_cache_node_t  *cn;

    user_hash = ngx_crc32_short(user->data, user->len);
    n = 0;

    ngx_shmtx_lock(&cache->shpool->mutex);

    /* fetches that started before this purge will not store their page */
    ngx_http_tiktok_cache_gen(cache, user_hash)++;

    for (q = ngx_queue_head(&cache->sh->lru);
         q != ngx_queue_sentinel(&cache->sh->lru);
         q = next)
    {
        next = ngx_queue_next(q);

        cn = ngx_queue_data(q, ngx_http_tiktok_cache_node_t, queue);

        if (cn->user_hash == user_hash && cn->user_len == user->len
            && ngx_memcmp(cn->data, user->data, user->len) == 0)
        {
            ngx_http_tiktok_cache_free(cache, cn);
            n++;
        }
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    /* logged here, where the count is used anyway: a caller's variable
     * read only by a debug log is "set but not used" without --with-debug */
    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "tiktok: purged %ui cache entries of \"%V\"", n, user);

    return n;
}


int64_t
ngx_http_tiktok_cache_purge_applied(ngx_http_tiktok_cache_t *cache)
{
    int64_t  id;

    ngx_shmtx_lock(&cache->shpool->mutex);
    id = cache->sh->purge_applied;
    ngx_shmtx_unlock(&cache->shpool->mutex);

    return id;
}


void
ngx_http_tiktok_cache_purge_advance(ngx_http_tiktok_cache_t *cache,
    int64_t id)
{
    ngx_shmtx_lock(&cache->shpool->mutex);

    if (id > cache->sh->purge_applied) {
        cache->sh->purge_applied = id;
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


static void
ngx_http_tiktok_cache_free(ngx_http_tiktok_cache_t *cache,
    ngx_http_tiktok_cache_node_t *cn)
{
    ngx_rbtree_node_t  *node;

    node = (ngx_rbtree_node_t *)
               ((u_char *) cn - offsetof(ngx_rbtree_node_t, color));

    ngx_queue_remove(&cn->queue);
    ngx_rbtree_delete(&cache->sh->rbtree, node);
    ngx_slab_free_locked(cache->shpool, node);
}


/*
 * Drops up to two dead entries from the LRU tail; with force, also the
 * least recently used live one.  Returns how many were freed.
 */

static ngx_uint_t
ngx_http_tiktok_cache_expire(ngx_http_tiktok_cache_t *cache, ngx_uint_t force)
{
    time_t                         now;
    ngx_uint_t                     n;
    ngx_queue_t                   *q;
    ngx_http_tiktok_cache_node_t  *cn;

    now = ngx_time();

    for (n = 0; n < 3; n++) {

        if (ngx_queue_empty(&cache->sh->lru)) {
            return n;
        }

        q = ngx_queue_last(&cache->sh->lru);
        cn = ngx_queue_data(q, ngx_http_tiktok_cache_node_t, queue);

        if (!force && cn->drop > now) {
            return n;
        }

        ngx_http_tiktok_cache_free(cache, cn);

        if (force) {
            return n + 1;
        }
    }

    return n;
}
