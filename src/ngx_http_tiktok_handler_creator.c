
/*
 * GET /creator: what a posting form needs, from TikTok's creator info,
 * cached per user five minutes and shared with POST /post's check.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_module.h"
#include "ngx_http_tiktok_handler.h"
#include "ngx_http_tiktok_call.h"
#include "ngx_http_tiktok_reply.h"


static ngx_int_t ngx_http_tiktok_creator_resume(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx);


ngx_int_t
ngx_http_tiktok_creator_handler(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx)
{
    ngx_http_tiktok_call_t  *call;

    call = ngx_pcalloc(r->pool, sizeof(ngx_http_tiktok_call_t));
    if (call == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->resume = ngx_http_tiktok_creator_resume;

    return ngx_http_tiktok_call_creator_info(r, call);
}


static ngx_int_t
ngx_http_tiktok_creator_resume(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx)
{
    json_t                  *out, *v;
    ngx_int_t                rc;
    ngx_str_t                body;
    ngx_uint_t               i;
    ngx_http_tiktok_call_t  *call;

    /* ours, TikTok's (TIKTOK_API.md), and a boolean (true only if TikTok
     * says so) or the value as given (else null) */
    static struct {
        const char  *name;
        const char  *tiktok;
        ngx_uint_t   flag;
    } fields[] = {
        { "nickname", "creator_nickname", 0 },
        { "username", "creator_username", 0 },
        { "avatar_url", "creator_avatar_url", 0 },
        { "privacy_level_options", "privacy_level_options", 0 },
        { "comment_disabled", "comment_disabled", 1 },
        { "duet_disabled", "duet_disabled", 1 },
        { "stitch_disabled", "stitch_disabled", 1 },
        { "max_video_post_duration_sec", "max_video_post_duration_sec", 0 }
    };

    call = ctx->call;

    if (call->rc != NGX_OK) {
        return ngx_http_tiktok_call_error(r, call);
    }

    if (call->cached) {
        ngx_str_set(&ctx->cache_status, "HIT");

    } else {
        ngx_str_set(&ctx->cache_status, "MISS");
    }

    out = ngx_http_tiktok_json_own(r->pool, json_object());
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = NGX_OK;

    for (i = 0; rc == NGX_OK && i < sizeof(fields) / sizeof(fields[0]);
         i++)
    {
        v = json_object_get(call->data, fields[i].tiktok);

        if (fields[i].flag) {
            v = json_boolean(json_is_true(v));

        } else if (json_is_string(v) || json_is_integer(v)
                   || json_is_array(v))
        {
            v = json_incref(v);

        } else {
            v = json_null();
        }

        rc = ngx_http_tiktok_json_set(out, fields[i].name, v);
    }

    if (rc != NGX_OK
        || ngx_http_tiktok_json_set(out, "cached", json_boolean(call->cached))
           != NGX_OK
        || ngx_http_tiktok_json_encode(r->pool, out, &body) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_tiktok_send_json(r, NGX_HTTP_OK, &body);
}
