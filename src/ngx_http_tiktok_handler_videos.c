
/*
 * Analytics: GET /videos and GET /metrics.
 *
 * Answers are cached per user in the shared zone as encoded JSON without
 * its closing brace, so a hit appends "cached" and "fetched_at" and is
 * sent without touching PostgreSQL, TikTok or a JSON parser.  A video list
 * also fills each video's metrics entry.  TikTok's rate limit opens a
 * back-off window per user and endpoint (Retry-After, else exponential
 * from one minute), kept in the same zone; during it the module answers
 * from the stale cache or with 429, and does not call TikTok.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_handler.h"
#include "ngx_http_tiktok_call.h"
#include "ngx_http_tiktok_reply.h"
#include "ngx_http_tiktok_validate.h"


#define NGX_HTTP_TIKTOK_MAX_IDS         20
#define NGX_HTTP_TIKTOK_COVER_TTL       (5 * 3600)  /* cover URLs live 6 h */

/* TikTok's documented limit for the video list and query: 600 a minute */
#define NGX_HTTP_TIKTOK_DISPLAY_LIMIT   600

#define NGX_HTTP_TIKTOK_VIDEO_FIELDS                                          \
    "id,title,video_description,cover_image_url,share_url,duration,"         \
    "create_time,like_count,comment_count,share_count,view_count"

#define NGX_HTTP_TIKTOK_METRIC_FIELDS                                         \
    "id,like_count,comment_count,share_count,view_count"


typedef struct {
    ngx_uint_t                    metrics;      /* /metrics, not /videos */

    /* /videos */
    ngx_str_t                     cursor;
    ngx_uint_t                    max_count;
    ngx_str_t                     key;

    /* /metrics */
    ngx_str_t                     ids[NGX_HTTP_TIKTOK_MAX_IDS];
    ngx_str_t                     values[NGX_HTTP_TIKTOK_MAX_IDS];
    ngx_uint_t                    fresh[NGX_HTTP_TIKTOK_MAX_IDS];
    ngx_uint_t                    nids;

    /* a stale page, served when TikTok cannot be asked */
    ngx_http_tiktok_cache_entry_t stale;
    ngx_uint_t                    has_stale;

    ngx_http_tiktok_call_t        call;

    /* the user's purge generation when the request began */
    uint32_t                      generation;
} ngx_http_tiktok_videos_t;


static ngx_int_t ngx_http_tiktok_metrics_args(ngx_http_request_t *r,
    ngx_http_tiktok_videos_t *v);
static ngx_int_t ngx_http_tiktok_videos_begin(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx, ngx_http_tiktok_videos_t *v);
static ngx_int_t ngx_http_tiktok_videos_resume(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx);
static ngx_int_t ngx_http_tiktok_videos_page(ngx_http_request_t *r,
    ngx_http_tiktok_videos_t *v, json_t *data, ngx_str_t *page);
static ngx_int_t ngx_http_tiktok_metrics_fill(ngx_http_request_t *r,
    ngx_http_tiktok_videos_t *v, json_t *data);
static json_t *ngx_http_tiktok_video_metrics(ngx_pool_t *pool, json_t *video);
static ngx_uint_t ngx_http_tiktok_video_mistyped(json_t *video);
static ngx_int_t ngx_http_tiktok_metrics_key(ngx_pool_t *pool, u_char *id,
    size_t len, ngx_str_t *key);
static ngx_int_t ngx_http_tiktok_cache_json(ngx_http_request_t *r,
    ngx_str_t *key, json_t *obj, ngx_str_t *text);
static ngx_int_t ngx_http_tiktok_videos_send(ngx_http_request_t *r,
    ngx_str_t *page, time_t fetched, const char *cached);
static ngx_int_t ngx_http_tiktok_metrics_send(ngx_http_request_t *r,
    ngx_http_tiktok_videos_t *v, ngx_uint_t cached);
static ngx_int_t ngx_http_tiktok_is_digits(ngx_str_t *s, size_t max);
static json_t *ngx_http_tiktok_json_id(json_t *v);


/* GET /videos?cursor=&max_count= */

ngx_int_t
ngx_http_tiktok_videos_handler(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx)
{
    u_char                       *p;
    ngx_int_t                     rc, n;
    ngx_str_t                     s;
    ngx_http_tiktok_videos_t     *v;
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);

    v = ngx_pcalloc(r->pool, sizeof(ngx_http_tiktok_videos_t));
    if (v == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->data = v;
    v->call.endpoint = "/v2/video/list/";

    v->max_count = 20;

    if (ngx_http_arg(r, (u_char *) "max_count", 9, &s) == NGX_OK) {
        n = ngx_atoi(s.data, s.len);
        if (n == NGX_ERROR || n < 1 || n > 20) {
            return ngx_http_tiktok_send_error(r, NGX_HTTP_BAD_REQUEST,
                       "invalid_request", "max_count",
                       "max_count must be an integer from 1 to 20");
        }

        v->max_count = (ngx_uint_t) n;
    }

    /* TikTok's cursor: an epoch in milliseconds */

    if (ngx_http_arg(r, (u_char *) "cursor", 6, &s) == NGX_OK && s.len) {
        if (!ngx_http_tiktok_is_digits(&s, 18)) {
            return ngx_http_tiktok_send_error(r, NGX_HTTP_BAD_REQUEST,
                       "invalid_request", "cursor",
                       "cursor must be the cursor of a previous answer");
        }

        v->cursor = s;
    }

    v->key.data = ngx_pnalloc(r->pool, sizeof("videos::") + v->cursor.len
                                       + NGX_INT_T_LEN);
    if (v->key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(v->key.data, "videos:%V:%ui", &v->cursor, v->max_count);
    v->key.len = p - v->key.data;

    if (tmcf->cache == NULL) {
        ngx_str_set(&ctx->cache_status, "BYPASS");
        return ngx_http_tiktok_videos_begin(r, ctx, v);
    }

    /* before anything is read: a purge from now on wins */
    v->generation = ngx_http_tiktok_cache_generation(tmcf->cache,
                                                     &ctx->user_id);

    rc = ngx_http_tiktok_cache_get(tmcf->cache, &ctx->user_id, &v->key,
                                   r->pool, &v->stale);
    if (rc == NGX_OK) {
        ngx_str_set(&ctx->cache_status, "HIT");
        return ngx_http_tiktok_videos_send(r, &v->stale.value,
                                           v->stale.created,
                                           ",\"cached\":true");
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    v->has_stale = (rc == NGX_AGAIN);
    ngx_str_set(&ctx->cache_status, "MISS");

    return ngx_http_tiktok_videos_begin(r, ctx, v);
}


/* GET /metrics?video_id=ID[,ID...] */

ngx_int_t
ngx_http_tiktok_metrics_handler(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx)
{
    ngx_int_t                       rc;
    ngx_str_t                       key;
    ngx_uint_t                      i, missing;
    ngx_http_tiktok_videos_t       *v;
    ngx_http_tiktok_cache_entry_t   entry;
    ngx_http_tiktok_main_conf_t    *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);

    v = ngx_pcalloc(r->pool, sizeof(ngx_http_tiktok_videos_t));
    if (v == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->data = v;
    v->metrics = 1;
    v->call.endpoint = "/v2/video/query/";

    if (ngx_http_tiktok_metrics_args(r, v) != NGX_OK) {
        return ngx_http_tiktok_send_error(r, NGX_HTTP_BAD_REQUEST,
                   "invalid_request", "video_id",
                   "video_id must be 1 to 20 comma-separated video ids");
    }

    if (tmcf->cache == NULL) {
        ngx_str_set(&ctx->cache_status, "BYPASS");
        return ngx_http_tiktok_videos_begin(r, ctx, v);
    }

    /* before anything is read: a purge from now on wins */
    v->generation = ngx_http_tiktok_cache_generation(tmcf->cache,
                                                     &ctx->user_id);
    missing = 0;

    for (i = 0; i < v->nids; i++) {
        rc = ngx_http_tiktok_metrics_key(r->pool, v->ids[i].data,
                                         v->ids[i].len, &key);
        if (rc == NGX_OK) {
            rc = ngx_http_tiktok_cache_get(tmcf->cache, &ctx->user_id, &key,
                                           r->pool, &entry);
        }

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_OK || rc == NGX_AGAIN) {
            v->values[i] = entry.value;
            v->fresh[i] = (rc == NGX_OK);
        }

        missing += (rc != NGX_OK);
    }

    if (missing == 0) {
        ngx_str_set(&ctx->cache_status, "HIT");
        return ngx_http_tiktok_metrics_send(r, v, 1);
    }

    ngx_str_set(&ctx->cache_status, "MISS");

    return ngx_http_tiktok_videos_begin(r, ctx, v);
}


static ngx_int_t
ngx_http_tiktok_metrics_args(ngx_http_request_t *r,
    ngx_http_tiktok_videos_t *v)
{
    u_char      *p, *last;
    ngx_str_t    s, id;
    ngx_uint_t   i;

    if (ngx_http_arg(r, (u_char *) "video_id", 8, &s) != NGX_OK
        || s.len == 0)
    {
        return NGX_ERROR;
    }

    p = s.data;
    last = s.data + s.len;

    while (ngx_http_tiktok_next_item(&p, last, ',', &id)) {
        /* decimal ids, which exceed 2^53: kept as text throughout */
        if (!ngx_http_tiktok_is_digits(&id, 20)) {
            return NGX_ERROR;
        }

        for (i = 0; i < v->nids; i++) {
            if (v->ids[i].len == id.len
                && ngx_strncmp(v->ids[i].data, id.data, id.len) == 0)
            {
                break;
            }
        }

        if (i == v->nids) {
            if (v->nids == NGX_HTTP_TIKTOK_MAX_IDS) {
                return NGX_ERROR;
            }

            v->ids[v->nids++] = id;
        }
    }

    return NGX_OK;
}


/* a cache miss: ask TikTok, unless rate-limited */

static ngx_int_t
ngx_http_tiktok_videos_begin(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx, ngx_http_tiktok_videos_t *v)
{
    json_t      *body, *ids;
    ngx_uint_t   i;

    if (v->metrics) {
        body = ngx_http_tiktok_json_own(r->pool,
                   json_pack("{s:{s:[]}}", "filters", "video_ids"));
        ids = json_object_get(json_object_get(body, "filters"), "video_ids");

        for (i = 0; i < v->nids; i++) {
            if (!v->fresh[i]
                && json_array_append_new(ids,
                       ngx_http_tiktok_json_str(v->ids[i].data,
                                                v->ids[i].len)) != 0)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        ngx_str_set(&v->call.args, "fields=" NGX_HTTP_TIKTOK_METRIC_FIELDS);

    } else {
        body = ngx_http_tiktok_json_own(r->pool,
                   json_pack("{s:I}", "max_count",
                             (json_int_t) v->max_count));

        if (v->cursor.len
            && ngx_http_tiktok_json_set(body, "cursor",
                   json_integer(ngx_atoof(v->cursor.data, v->cursor.len)))
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_str_set(&v->call.args, "fields=" NGX_HTTP_TIKTOK_VIDEO_FIELDS);
    }

    if (body == NULL
        || ngx_http_tiktok_json_encode(r->pool, body, &v->call.body) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    v->call.pace = NGX_HTTP_TIKTOK_DISPLAY_LIMIT;
    ctx->resume = ngx_http_tiktok_videos_resume;

    return ngx_http_tiktok_call(r, &v->call);
}


static ngx_int_t
ngx_http_tiktok_videos_resume(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx)
{
    ngx_str_t                  page;
    ngx_uint_t                 i, limited;
    ngx_http_tiktok_call_t    *call;
    ngx_http_tiktok_videos_t  *v;

    v = ctx->data;
    call = &v->call;

    /*
     * TikTok could not answer, or may not be asked now.  Metrics we still
     * have (stale included) are answered, with "Metrics unavailable" for
     * the rest, unless the account needs reconnecting; so is a stale page
     * while rate-limited.  Otherwise the error.
     */

    if (call->rc != NGX_OK) {
        limited = (call->status == NGX_HTTP_TOO_MANY_REQUESTS);

        if (limited && !v->metrics && v->has_stale) {
            ngx_str_set(&ctx->cache_status, "STALE");
            return ngx_http_tiktok_videos_send(r, &v->stale.value,
                       v->stale.created, ",\"cached\":true,\"stale\":true");
        }

        for (i = 0; v->metrics && i < v->nids; i++) {
            if (v->values[i].len
                && (limited || call->status != NGX_HTTP_UNAUTHORIZED))
            {
                ngx_str_set(&ctx->cache_status, "STALE");
                return ngx_http_tiktok_metrics_send(r, v, 1);
            }
        }

        return ngx_http_tiktok_call_error(r, call);
    }

    if (v->metrics) {
        if (ngx_http_tiktok_metrics_fill(r, v, call->data) == NGX_OK) {
            return ngx_http_tiktok_metrics_send(r, v, 0);
        }

    } else if (ngx_http_tiktok_videos_page(r, v, call->data, &page)
               == NGX_OK)
    {
        return ngx_http_tiktok_videos_send(r, &page, ngx_time(),
                                           ",\"cached\":false");
    }

    return ngx_http_tiktok_call_reject(r, call,
                                       "answer from TikTok without the "
                                       "documented data",
                                       "Metrics unavailable");
}


/*
 * Maps TikTok's data.videos to our shape, caches the page and every
 * video's metrics, and returns the page text (without its closing brace).
 */

static ngx_int_t
ngx_http_tiktok_videos_page(ngx_http_request_t *r,
    ngx_http_tiktok_videos_t *v, json_t *data, ngx_str_t *page)
{
    size_t                        i;
    json_t                       *videos, *video, *out, *list, *item, *m;
    json_t                       *t, *cover, *share, *duration, *created;
    json_t                       *cursor;
    ngx_str_t                     key, text;
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);

    videos = json_object_get(data, "videos");
    list = ngx_http_tiktok_json_own(r->pool, json_array());

    if (!json_is_array(videos) || list == NULL) {
        return NGX_ERROR;
    }

    json_array_foreach(videos, i, video) {
        if (ngx_http_tiktok_video_mistyped(video)) {
            return NGX_ERROR;
        }

        t = json_object_get(video, "title");
        if (!json_is_string(t) || json_string_length(t) == 0) {
            t = json_object_get(video, "video_description");
        }

        cover = json_object_get(video, "cover_image_url");
        share = json_object_get(video, "share_url");
        duration = json_object_get(video, "duration");
        created = json_object_get(video, "create_time");
        m = ngx_http_tiktok_video_metrics(r->pool, video);

        item = json_pack("{s:o, s:o, s:O, s:O, s:O, s:O, s:O}",
                   "id", ngx_http_tiktok_json_id(json_object_get(video, "id")),
                   "title", json_is_string(t) ? json_incref(t)
                                              : json_string(""),
                   "cover_image_url",
                   json_is_string(cover) ? cover : json_null(),
                   "share_url", json_is_string(share) ? share : json_null(),
                   "duration",
                   json_is_integer(duration) ? duration : json_null(),
                   "create_time",
                   json_is_integer(created) ? created : json_null(),
                   "metrics", m);

        if (json_array_append_new(list, item) != 0) {
            return NGX_ERROR;
        }

        /* this video's metrics entry, for /metrics */

        t = json_object_get(item, "id");

        if (tmcf->cache && json_is_string(t)
            && (ngx_http_tiktok_metrics_key(r->pool,
                    (u_char *) json_string_value(t), json_string_length(t),
                    &key) != NGX_OK
                || ngx_http_tiktok_cache_json(r, &key, m, &text) != NGX_OK))
        {
            return NGX_ERROR;
        }
    }

    /* the cursor is opaque to the app: a string, like ids */

    cursor = json_object_get(data, "cursor");

    if ((cursor != NULL && !json_is_integer(cursor) && !json_is_null(cursor))
        || (json_object_get(data, "has_more") != NULL
            && !json_is_boolean(json_object_get(data, "has_more"))))
    {
        return NGX_ERROR;
    }

    out = ngx_http_tiktok_json_own(r->pool,
              json_pack("{s:O, s:o, s:b}", "videos", list,
                        "cursor", json_is_integer(cursor)
                                  ? ngx_http_tiktok_json_id(cursor)
                                  : json_null(),
                        "has_more",
                        json_is_true(json_object_get(data, "has_more"))));
    if (out == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_tiktok_cache_json(r, &v->key, out, page);
}


/* {"view_count","like_count","comment_count","share_count","fetched_at"} */

static json_t *
ngx_http_tiktok_video_metrics(ngx_pool_t *pool, json_t *video)
{
    u_char   buf[sizeof("2026-01-01T00:00:00Z")], *p;
    json_t  *views, *likes, *comments, *shares;

    views = json_object_get(video, "view_count");
    likes = json_object_get(video, "like_count");
    comments = json_object_get(video, "comment_count");
    shares = json_object_get(video, "share_count");

    p = ngx_http_tiktok_rfc3339(buf, ngx_time());

    return ngx_http_tiktok_json_own(pool,
               json_pack("{s:O, s:O, s:O, s:O, s:s%}",
                   "view_count", json_is_integer(views) ? views : json_null(),
                   "like_count", json_is_integer(likes) ? likes : json_null(),
                   "comment_count",
                   json_is_integer(comments) ? comments : json_null(),
                   "share_count",
                   json_is_integer(shares) ? shares : json_null(),
                   "fetched_at", buf, (size_t) (p - buf)));
}


/*
 * A video TikTok sent with a documented field of another type (a count
 * as a string, a title as a number): its answer is not to be trusted,
 * and not to be shown as nulls either.  Absent and null fields are
 * TikTok's way of saying nothing, and a 64-bit id may come as a number.
 */

static ngx_uint_t
ngx_http_tiktok_video_mistyped(json_t *video)
{
    json_t      *v;
    ngx_uint_t   i;

    static struct {
        const char  *name;
        json_type    type;
    } fields[] = {
        { "title", JSON_STRING },
        { "video_description", JSON_STRING },
        { "cover_image_url", JSON_STRING },
        { "share_url", JSON_STRING },
        { "duration", JSON_INTEGER },
        { "create_time", JSON_INTEGER },
        { "view_count", JSON_INTEGER },
        { "like_count", JSON_INTEGER },
        { "comment_count", JSON_INTEGER },
        { "share_count", JSON_INTEGER }
    };

    if (!json_is_object(video)) {
        return 1;
    }

    v = json_object_get(video, "id");

    if (!json_is_string(v) && !json_is_integer(v)) {
        return 1;
    }

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        v = json_object_get(video, fields[i].name);

        if (v != NULL && !json_is_null(v) && json_typeof(v) != fields[i].type)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_tiktok_metrics_fill(ngx_http_request_t *r,
    ngx_http_tiktok_videos_t *v, json_t *data)
{
    size_t       j;
    json_t      *videos, *video, *id, *m;
    ngx_str_t    key;
    ngx_uint_t   i;

    videos = json_object_get(data, "videos");
    if (!json_is_array(videos)) {
        return NGX_ERROR;
    }

    json_array_foreach(videos, j, video) {
        id = ngx_http_tiktok_json_id(json_object_get(video, "id"));
        if (id == NULL) {
            continue;
        }

        for (i = 0; i < v->nids; i++) {
            if (v->ids[i].len == json_string_length(id)
                && ngx_strncmp(v->ids[i].data, json_string_value(id),
                               v->ids[i].len) == 0)
            {
                break;
            }
        }

        json_decref(id);

        if (i == v->nids) {
            /* TikTok returns only what was asked; ignore anything else */
            continue;
        }

        if (ngx_http_tiktok_video_mistyped(video)) {
            /* this video's metrics are unavailable, not made up as null */
            continue;
        }

        m = ngx_http_tiktok_video_metrics(r->pool, video);
        if (m == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_tiktok_metrics_key(r->pool, v->ids[i].data,
                                        v->ids[i].len, &key) != NGX_OK
            || ngx_http_tiktok_cache_json(r, &key, m, &v->values[i]) != NGX_OK)
        {
            return NGX_ERROR;
        }

        v->fresh[i] = 1;
    }

    return NGX_OK;
}


/* a video's metrics entry: "metrics:<id>" */

static ngx_int_t
ngx_http_tiktok_metrics_key(ngx_pool_t *pool, u_char *id, size_t len,
    ngx_str_t *key)
{
    key->data = ngx_pnalloc(pool, sizeof("metrics:") - 1 + len);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    key->len = ngx_sprintf(key->data, "metrics:%*s", len, id) - key->data;

    return NGX_OK;
}


/*
 * Encodes obj, stores it (without its closing brace) under key for the
 * caller, and returns that text.  Not stored when the user was purged
 * (disconnected) since the request began: the text is still answered to
 * the request that asked before the purge.
 */

static ngx_int_t
ngx_http_tiktok_cache_json(ngx_http_request_t *r, ngx_str_t *key,
    json_t *obj, ngx_str_t *text)
{
    ngx_int_t                     rc;
    ngx_http_tiktok_ctx_t        *ctx;
    ngx_http_tiktok_videos_t     *v;
    ngx_http_tiktok_main_conf_t  *tmcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);
    v = ctx->data;

    if (ngx_http_tiktok_json_encode(r->pool, obj, text) != NGX_OK) {
        return NGX_ERROR;
    }

    text->len--;

    if (tmcf->cache == NULL) {
        return NGX_OK;
    }

    rc = ngx_http_tiktok_cache_set_since(tmcf->cache, &ctx->user_id, key,
                                         text,
                                         ngx_min(tmcf->cache->ttl,
                                                 NGX_HTTP_TIKTOK_COVER_TTL),
                                         &v->generation);

    if (rc == NGX_DECLINED) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "tiktok: \"%V\" was purged during the fetch, "
                       "not cached", key);
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        /* larger than the zone: served, not cached */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "tiktok: an answer of %uz bytes does not fit the "
                      "cache zone", text->len);
    }

    return NGX_OK;
}


/* the page text + cached (",\"cached\":...") and "fetched_at" + "}" */

static ngx_int_t
ngx_http_tiktok_videos_send(ngx_http_request_t *r, ngx_str_t *page,
    time_t fetched, const char *cached)
{
    u_char     *p;
    ngx_str_t   body;

    body.data = ngx_pnalloc(r->pool, page->len + ngx_strlen(cached)
                   + sizeof(",\"fetched_at\":\"2026-01-01T00:00:00Z\"}"));
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(body.data, "%V%s,\"fetched_at\":\"", page, cached);
    p = ngx_http_tiktok_rfc3339(p, fetched);
    *p++ = '"';
    *p++ = '}';

    body.len = p - body.data;

    return ngx_http_tiktok_send_json(r, NGX_HTTP_OK, &body);
}


/* {"metrics":{"ID":{...} or {"error":"Metrics unavailable"}},"cached":b} */

static ngx_int_t
ngx_http_tiktok_metrics_send(ngx_http_request_t *r,
    ngx_http_tiktok_videos_t *v, ngx_uint_t cached)
{
    u_char      *p;
    size_t       len;
    ngx_str_t    body;
    ngx_uint_t   i;

    static ngx_str_t  unavailable =
        ngx_string("{\"error\":\"Metrics unavailable\"");

    len = sizeof("{\"metrics\":{},\"cached\":false}");

    for (i = 0; i < v->nids; i++) {
        len += v->ids[i].len + sizeof("\"\":},")
               + ngx_max(v->values[i].len, unavailable.len);
    }

    body.data = ngx_pnalloc(r->pool, len);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(body.data, "{\"metrics\":{", sizeof("{\"metrics\":{") - 1);

    /* ids are digits: nothing to escape */

    for (i = 0; i < v->nids; i++) {
        p = ngx_sprintf(p, "%s\"%V\":%V}", i ? "," : "", &v->ids[i],
                        v->values[i].len ? &v->values[i] : &unavailable);
    }

    p = ngx_sprintf(p, "},\"cached\":%s}", cached ? "true" : "false");

    body.len = p - body.data;

    return ngx_http_tiktok_send_json(r, NGX_HTTP_OK, &body);
}


static ngx_int_t
ngx_http_tiktok_is_digits(ngx_str_t *s, size_t max)
{
    size_t  i;

    if (s->len == 0 || s->len > max) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        if (s->data[i] < '0' || s->data[i] > '9') {
            return 0;
        }
    }

    return 1;
}


/* TikTok's id as a string: ids exceed 2^53, so never through a double */

static json_t *
ngx_http_tiktok_json_id(json_t *v)
{
    if (json_is_string(v) && json_string_length(v) > 0) {
        return json_incref(v);
    }

    return json_is_integer(v)
           ? json_sprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v))
           : NULL;
}
