
/*
 * The user's posts: GET /posts, GET /posts/{id}, DELETE /posts/{id}.
 *
 * PostgreSQL builds the JSON: the rows are the user's own by row-level
 * security, so another user's post id is simply not found (404, never
 * 403: no existence leak).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_handler.h"
#include "ngx_http_tiktok_reply.h"
#include "ngx_http_tiktok_validate.h"


#define NGX_HTTP_TIKTOK_POSTS_DEFAULT  "20"
#define NGX_HTTP_TIKTOK_POSTS_MAX      100


static void ngx_http_tiktok_post_done(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_post_cancelled(ngx_http_tiktok_pg_query_t *q);
static ngx_uint_t ngx_http_tiktok_post_id(ngx_http_tiktok_ctx_t *ctx,
    ngx_str_t *id);


/* one post as the API shows it */
#define NGX_HTTP_TIKTOK_POST_JSON                                             \
    "json_build_object('post_id', id, 'status', status, 'source', source,"   \
    " 'mode', mode, 'media_type', media_type, 'photo_urls', photo_urls,"      \
    " 'title', post_info->>'title',"                                          \
    " 'privacy_level', post_info->>'privacy_level',"                          \
    " 'video_url', video_url,"                                                \
    " 'schedule_at', to_char(schedule_at AT TIME ZONE 'UTC',"                 \
    "     'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"                                 \
    " 'publish_id', publish_id, 'share_url', share_url,"                      \
    " 'error', CASE WHEN status = 'failed' THEN"                              \
    "     'Posting failed. Check permissions or try again.' END,"             \
    " 'fail_reason', fail_reason,"                                            \
    " 'created_at', to_char(created_at AT TIME ZONE 'UTC',"                   \
    "     'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"                                 \
    " 'updated_at', to_char(updated_at AT TIME ZONE 'UTC',"                   \
    "     'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))"


/*
 * Newest first; $2 is the last post_id of the previous page (or NULL),
 * $3 the page size.  One more row than asked says whether there is more.
 */
static const char  ngx_http_tiktok_posts_sql[] =
    "WITH page AS ("
    " SELECT * FROM tiktok.posts WHERE user_id = $1"
    " AND ($2::uuid IS NULL OR (created_at, id) <"
    "     (SELECT created_at, id FROM tiktok.posts WHERE id = $2::uuid))"
    " ORDER BY created_at DESC, id DESC LIMIT $3::integer + 1),"
    " shown AS (SELECT * FROM page ORDER BY created_at DESC, id DESC"
    "     LIMIT $3::integer)"
    " SELECT json_build_object("
    " 'posts', coalesce((SELECT json_agg(" NGX_HTTP_TIKTOK_POST_JSON
    "     ORDER BY created_at DESC, id DESC) FROM shown), '[]'),"
    " 'cursor', CASE WHEN (SELECT count(*) FROM page) > $3::integer"
    "     THEN (SELECT id FROM shown ORDER BY created_at, id LIMIT 1) END,"
    " 'has_more', (SELECT count(*) FROM page) > $3::integer)";

static const char  ngx_http_tiktok_post_sql[] =
    "SELECT " NGX_HTTP_TIKTOK_POST_JSON
    " FROM tiktok.posts WHERE id = $1::uuid";

/*
 * A post that nothing was sent to TikTok for can always be cancelled, even
 * when a publisher holds it (waiting on the pace, a back-off, a token):
 * clearing the claim's fencing token makes that publisher's next write
 * match no row, and it stops before its init (ngx_http_tiktok_scheduler.c).
 * Once the init is committed (init_started_at) it is too late.
 */
static const char  ngx_http_tiktok_post_cancel_sql[] =
    "UPDATE tiktok.posts SET status = 'cancelled', claim_until = NULL,"
    " claim_token = NULL, updated_at = now()"
    " WHERE id = $1::uuid AND status IN ('queued', 'scheduled')"
    " AND init_started_at IS NULL AND publish_id IS NULL"
    " RETURNING spool_path";

static const char  ngx_http_tiktok_post_exists_sql[] =
    "SELECT status FROM tiktok.posts WHERE id = $1::uuid";


ngx_int_t
ngx_http_tiktok_posts_handler(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx)
{
    ngx_int_t   n;
    ngx_str_t   s, params[3];

    ngx_str_set(&params[2], NGX_HTTP_TIKTOK_POSTS_DEFAULT);

    if (ngx_http_arg(r, (u_char *) "limit", 5, &s) == NGX_OK) {
        n = ngx_atoi(s.data, s.len);
        if (n == NGX_ERROR || n < 1 || n > NGX_HTTP_TIKTOK_POSTS_MAX) {
            return ngx_http_tiktok_send_error(r, NGX_HTTP_BAD_REQUEST,
                       "invalid_request", "limit",
                       "limit must be an integer from 1 to 100");
        }

        /* only digits: PostgreSQL reads it as the same integer */
        params[2] = s;
    }

    ngx_str_null(&params[1]);

    if (ngx_http_arg(r, (u_char *) "cursor", 6, &s) == NGX_OK && s.len) {
        if (!ngx_http_tiktok_is_uuid(&s)) {
            return ngx_http_tiktok_send_error(r, NGX_HTTP_BAD_REQUEST,
                       "invalid_request", "cursor",
                       "cursor must be the cursor of a previous answer");
        }

        params[1] = s;
    }

    params[0] = ctx->user_id;

    return ngx_http_tiktok_query_wait(r, ngx_http_tiktok_posts_sql, 3, params,
                                      ngx_http_tiktok_post_done);
}


/* GET /posts/{id} and DELETE /posts/{id} */

ngx_int_t
ngx_http_tiktok_post_item_handler(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx)
{
    ngx_str_t                    id;
    ngx_http_tiktok_pg_query_t  *q;

    if (!ngx_http_tiktok_post_id(ctx, &id)) {
        return ngx_http_tiktok_send_error(r, NGX_HTTP_NOT_FOUND,
                                          "not_found", NULL,
                                          "Post not found");
    }

    if (r->method == NGX_HTTP_DELETE) {
        /* the cancel, and whether the post exists: one round trip */
        q = ngx_http_tiktok_query_new(r, ngx_http_tiktok_post_cancelled);

        if (q == NULL
            || ngx_http_tiktok_pg_add(q, ngx_http_tiktok_post_cancel_sql, 1,
                                      &id) != NGX_OK
            || ngx_http_tiktok_pg_add(q, ngx_http_tiktok_post_exists_sql, 1,
                                      &id) != NGX_OK
            || ngx_http_tiktok_query_run(r, q) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_tiktok_wait(r);
    }

    return ngx_http_tiktok_query_wait(r, ngx_http_tiktok_post_sql, 1, &id,
                                      ngx_http_tiktok_post_done);
}


/* a post's or the list's JSON, made by the statement (the list is one row) */

static void
ngx_http_tiktok_post_done(ngx_http_tiktok_pg_query_t *q)
{
    ngx_str_t            body;
    ngx_http_request_t  *r;

    r = q->data;

    if (q->rc != NGX_OK) {
        ngx_http_tiktok_finalize(r, ngx_http_tiktok_db_error(r, q->rc));
        return;
    }

    if (PQntuples(q->res[0]) != 1) {
        ngx_http_tiktok_finalize(r, ngx_http_tiktok_send_error(r,
                                        NGX_HTTP_NOT_FOUND, "not_found",
                                        NULL, "Post not found"));
        return;
    }

    body.data = (u_char *) PQgetvalue(q->res[0], 0, 0);
    body.len = PQgetlength(q->res[0], 0, 0);

    ngx_http_tiktok_finalize(r, ngx_http_tiktok_send_json(r, NGX_HTTP_OK,
                                                          &body));
}


static void
ngx_http_tiktok_post_cancelled(ngx_http_tiktok_pg_query_t *q)
{
    ngx_str_t               body, id;
    ngx_http_request_t     *r;
    ngx_http_tiktok_ctx_t  *ctx;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    (void) ngx_http_tiktok_post_id(ctx, &id);

    if (q->rc != NGX_OK) {
        ngx_http_tiktok_finalize(r, ngx_http_tiktok_db_error(r, q->rc));
        return;
    }

    if (PQntuples(q->res[0]) == 1) {
        /* cancelled before anything started: its upload is not needed */
        ngx_http_tiktok_spool_remove(r, q->res[0]);

        body.data = ngx_pnalloc(r->pool, ctx->path.len + 64);
        if (body.data == NULL) {
            ngx_http_tiktok_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        body.len = ngx_sprintf(body.data,
                               "{\"post_id\":\"%V\",\"status\":\"cancelled\"}",
                               &id)
                   - body.data;

        ngx_http_tiktok_finalize(r, ngx_http_tiktok_send_json(r,
                                        NGX_HTTP_OK, &body));
        return;
    }

    if (PQntuples(q->res[1]) == 1) {
        ngx_http_tiktok_finalize(r, ngx_http_tiktok_send_error(r,
            NGX_HTTP_CONFLICT, "not_cancellable", NULL,
            "Only a post that has not been sent to TikTok can be cancelled"));
        return;
    }

    ngx_http_tiktok_finalize(r, ngx_http_tiktok_send_error(r,
                                    NGX_HTTP_NOT_FOUND, "not_found", NULL,
                                    "Post not found"));
}


/* the {id} of posts/{id}: a UUID, else it cannot name a post */

static ngx_uint_t
ngx_http_tiktok_post_id(ngx_http_tiktok_ctx_t *ctx, ngx_str_t *id)
{
    id->data = ctx->path.data + sizeof("posts/") - 1;
    id->len = ctx->path.len - (sizeof("posts/") - 1);

    return ngx_http_tiktok_is_uuid(id);
}

