
/*
 * GET /api/tiktok/status: whether the caller has connected a TikTok
 * account, from the database (row-level security scopes the query to the
 * caller).  Tokens are never selected here.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_handler.h"
#include "ngx_http_tiktok_reply.h"
#include "ngx_http_tiktok_validate.h"


static void ngx_http_tiktok_status_done(ngx_http_tiktok_pg_query_t *q);


/* expires_at is when the connection itself ends: the refresh token's expiry */

static const char  ngx_http_tiktok_status_sql[] =
    "SELECT open_id, display_name, avatar_url,"
    " array_to_string(scopes, ','),"
    " to_char(refresh_expires_at AT TIME ZONE 'UTC',"
    "         'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    " needs_reconnect"
    " FROM tiktok.accounts WHERE user_id = $1";


ngx_int_t
ngx_http_tiktok_status_handler(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx)
{
    return ngx_http_tiktok_query_wait(r, ngx_http_tiktok_status_sql, 1,
                                      &ctx->user_id,
                                      ngx_http_tiktok_status_done);
}


/* the answer's members in order, from the statement's columns */

static void
ngx_http_tiktok_status_done(ngx_http_tiktok_pg_query_t *q)
{
    u_char              *p, *last;
    json_t              *root, *scopes;
    PGresult            *res;
    ngx_int_t            rc;
    ngx_str_t            body, s;
    ngx_http_request_t  *r;

#define ngx_http_tiktok_col(n)                                                \
    ngx_http_tiktok_json_str(                                                 \
        PQgetisnull(res, 0, n) ? NULL : (u_char *) PQgetvalue(res, 0, n),     \
        PQgetlength(res, 0, n))

    r = q->data;

    if (q->rc != NGX_OK) {
        ngx_http_tiktok_finalize(r, ngx_http_tiktok_db_error(r, q->rc));
        return;
    }

    res = q->res[0];
    rc = NGX_OK;

    if (res == NULL || PQntuples(res) == 0) {
        root = json_pack("{s:b}", "connected", 0);

    } else {
        scopes = json_array();

        p = (u_char *) PQgetvalue(res, 0, 3);
        last = p + PQgetlength(res, 0, 3);

        while (p < last && ngx_http_tiktok_next_item(&p, last, ',', &s)) {
            if (s.len
                && json_array_append_new(scopes,
                       ngx_http_tiktok_json_str(s.data, s.len)) != 0)
            {
                rc = NGX_ERROR;
            }
        }

        /* "o" takes its value even when packing fails */
        root = json_pack("{s:b, s:o, s:o, s:o, s:o, s:o, s:b}",
                         "connected", 1,
                         "display_name", ngx_http_tiktok_col(1),
                         "avatar_url", ngx_http_tiktok_col(2),
                         "open_id", ngx_http_tiktok_col(0),
                         "scopes", scopes,
                         "expires_at", ngx_http_tiktok_col(4),
                         "needs_reconnect",
                         PQgetvalue(res, 0, 5)[0] == 't');
    }

#undef ngx_http_tiktok_col

    root = ngx_http_tiktok_json_own(r->pool, root);

    if (rc != NGX_OK || root == NULL
        || ngx_http_tiktok_json_encode(r->pool, root, &body) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "tiktok: cannot build the status response");
        ngx_http_tiktok_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_tiktok_finalize(r, ngx_http_tiktok_send_json(r, NGX_HTTP_OK,
                                                          &body));
}
