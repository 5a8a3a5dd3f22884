
/*
 * POST /post: a JSON body posts from a URL (PULL_FROM_URL), or photos
 * ("media_type":"PHOTO", photo_urls); a video/mp4, video/quicktime or
 * video/webm body is spooled and uploaded (FILE_UPLOAD), with the options
 * in the query string.  "mode":"draft" (mode=draft) sends either to the
 * creator's inbox instead: no post options, no creator info, the
 * video.upload scope.
 *
 * Everything is checked before TikTok is asked to do anything: the
 * options, the title, the URL or the container and its duration, the
 * scope, and the creator's current options (creator info, through a
 * subrequest, cached five minutes).  Then the upload is moved into
 * tiktok_upload_spool and the row committed; the publisher does the rest.
 * A failure at any step never leaves a row without its file; a file whose
 * row may or may not have been stored (the INSERT's answer was lost) is
 * kept, and the janitor removes it after a grace if no row came.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_handler.h"
#include "ngx_http_tiktok_call.h"
#include "ngx_http_tiktok_token.h"
#include "ngx_http_tiktok_reply.h"
#include "ngx_http_tiktok_validate.h"
#include "ngx_http_tiktok_media.h"

#include <sys/statvfs.h>


#define NGX_HTTP_TIKTOK_JSON_BODY_MAX    65536
#define NGX_HTTP_TIKTOK_SCHEDULE_MAX     (30 * 86400)

#define NGX_HTTP_TIKTOK_UNSET            -1

/* TikTok's photo posts (TIKTOK_API.md) */
#define NGX_HTTP_TIKTOK_PHOTOS_MAX       35
#define NGX_HTTP_TIKTOK_PHOTO_TITLE_MAX  90
#define NGX_HTTP_TIKTOK_DESCRIPTION_MAX  4000

/* what an option is for: ngx_http_tiktok_post_option_t's kinds */
#define NGX_HTTP_TIKTOK_FOR_VIDEO        0x01
#define NGX_HTTP_TIKTOK_FOR_PHOTO        0x02
#define NGX_HTTP_TIKTOK_FOR_DRAFT        0x04    /* accepted in a draft */

/* free space below which a failed body write means "the disk is full" */
#define NGX_HTTP_TIKTOK_SPOOL_FULL       (1024 * 1024)

typedef struct {
    ngx_uint_t                    file;
    ngx_str_t                     video_url;
    ngx_str_t                     title;
    ngx_str_t                     privacy_level;
    ngx_int_t                     disable_comment;
    ngx_int_t                     disable_duet;
    ngx_int_t                     disable_stitch;
    ngx_int_t                     brand_content_toggle;
    ngx_int_t                     brand_organic_toggle;
    ngx_int_t                     is_aigc;
    int64_t                       video_cover_timestamp_ms;
    ngx_str_t                     schedule_at;    /* as given, validated */
    ngx_str_t                     mode;           /* direct, draft */
    ngx_str_t                     media_type;     /* VIDEO, PHOTO */
    json_t                       *photo_urls;
    int64_t                       photo_cover_index;
    ngx_str_t                     description;
    ngx_int_t                     auto_add_music;
    uint32_t                      given;          /* options, by index */

    off_t                         size;
    ngx_file_t                   *temp;
    ngx_str_t                     spool_path;
    ngx_http_tiktok_media_t       media;

    ngx_http_tiktok_call_t        call;           /* creator info */
    ngx_str_t                     post_info;
    ngx_str_t                     username;       /* for the share URL */
    ngx_str_t                     photos;         /* photo_urls, as JSON */

    unsigned                      draft:1;
    unsigned                      photo:1;

    unsigned                      inserting:1;    /* the INSERT was sent */
    unsigned                      rolled_back:1;  /* ... and refused */
    unsigned                      committed:1;
} ngx_http_tiktok_post_t;


typedef struct {
    ngx_str_t                     name;
    ngx_uint_t                    type;           /* 's', 'b', 'i' */
    size_t                        offset;
    const char                   *disabled;       /* by the creator */
    ngx_uint_t                    kinds;          /* FOR_VIDEO, ... */
} ngx_http_tiktok_post_option_t;


static ngx_http_tiktok_post_t *ngx_http_tiktok_post_create(ngx_pool_t *pool);
static ngx_int_t ngx_http_tiktok_post_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static void ngx_http_tiktok_post_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_tiktok_post_parse(ngx_http_request_t *r);
static const char *ngx_http_tiktok_post_json(ngx_http_request_t *r,
    ngx_http_tiktok_post_t *pt, const char **message);
static const char *ngx_http_tiktok_post_query(ngx_http_request_t *r,
    ngx_http_tiktok_post_t *pt, const char **message);
static const char *ngx_http_tiktok_post_validate(ngx_http_request_t *r,
    ngx_http_tiktok_post_t *pt, const char **message);
static const char *ngx_http_tiktok_post_kind(ngx_http_tiktok_post_t *pt,
    const char **message);
static const char *ngx_http_tiktok_post_photos(ngx_http_request_t *r,
    ngx_http_tiktok_post_t *pt, const char **message);
static void ngx_http_tiktok_post_draft(ngx_http_request_t *r);
static ngx_int_t ngx_http_tiktok_post_store(ngx_http_request_t *r,
    ngx_http_tiktok_post_t *pt);
static const char *ngx_http_tiktok_post_set(ngx_http_tiktok_post_t *pt,
    ngx_http_tiktok_post_option_t *o, json_t *v, ngx_str_t *s);
static ngx_int_t ngx_http_tiktok_post_form_decode(ngx_pool_t *pool,
    ngx_str_t *s);
static const char *ngx_http_tiktok_post_field(ngx_str_t *name,
    const char *whole);
static ssize_t ngx_http_tiktok_post_read(void *data, u_char *buf,
    size_t size, off_t offset);
static ngx_int_t ngx_http_tiktok_post_check(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx);
static ngx_int_t ngx_http_tiktok_post_spool(ngx_http_request_t *r,
    ngx_http_tiktok_post_t *pt);
static void ngx_http_tiktok_post_spool_cleanup(void *data);
static ngx_int_t ngx_http_tiktok_post_insert(ngx_http_request_t *r,
    ngx_http_tiktok_post_t *pt);
static void ngx_http_tiktok_post_inserted(ngx_http_tiktok_pg_query_t *q);
static ngx_int_t ngx_http_tiktok_post_error(ngx_http_request_t *r,
    const char *field, const char *message);


#define ngx_http_tiktok_post_option(name, type, disabled, kinds)              \
    { ngx_string(#name), type, offsetof(ngx_http_tiktok_post_t, name),        \
      disabled, kinds }

#define V  NGX_HTTP_TIKTOK_FOR_VIDEO
#define P  NGX_HTTP_TIKTOK_FOR_PHOTO
#define D  NGX_HTTP_TIKTOK_FOR_DRAFT

/*
 * A draft takes only the source, the media and schedule_at (the creator
 * chooses the rest in the TikTok app); a photo post has no duet, stitch,
 * AI label or cover frame (DESIGN 8.2, 8.3).
 */
static ngx_http_tiktok_post_option_t  ngx_http_tiktok_post_options[] = {
    ngx_http_tiktok_post_option(video_url, 's', NULL, V|D),
    ngx_http_tiktok_post_option(title, 's', NULL, V|P),
    ngx_http_tiktok_post_option(privacy_level, 's', NULL, V|P),
    ngx_http_tiktok_post_option(disable_comment, 'b', "comment_disabled",
                                V|P),
    ngx_http_tiktok_post_option(disable_duet, 'b', "duet_disabled", V),
    ngx_http_tiktok_post_option(disable_stitch, 'b', "stitch_disabled", V),
    ngx_http_tiktok_post_option(brand_content_toggle, 'b', NULL, V|P),
    ngx_http_tiktok_post_option(brand_organic_toggle, 'b', NULL, V|P),
    ngx_http_tiktok_post_option(is_aigc, 'b', NULL, V),
    ngx_http_tiktok_post_option(video_cover_timestamp_ms, 'i', NULL, V),
    ngx_http_tiktok_post_option(schedule_at, 's', NULL, V|P|D),
    ngx_http_tiktok_post_option(mode, 's', NULL, V|P|D),
    ngx_http_tiktok_post_option(media_type, 's', NULL, V|P|D),
    ngx_http_tiktok_post_option(photo_urls, 'a', NULL, P|D),
    ngx_http_tiktok_post_option(photo_cover_index, 'i', NULL, P|D),
    ngx_http_tiktok_post_option(description, 's', NULL, P),
    ngx_http_tiktok_post_option(auto_add_music, 'b', NULL, P),
    { ngx_null_string, 0, 0, NULL, 0 }
};

#undef V
#undef P
#undef D

#undef ngx_http_tiktok_post_option


static const char  ngx_http_tiktok_post_insert_sql[] =
    "INSERT INTO tiktok.posts (user_id, status, source, video_url,"
    " spool_path, video_size, content_type, post_info, schedule_at,"
    " next_attempt_at, creator_username, mode, media_type, photo_urls,"
    " photo_cover_index)"
    " VALUES ($1, $2, $3, $4, $5, $6::bigint, $7, $8::jsonb,"
    " $9::timestamptz, coalesce($9::timestamptz, now()), $10, $11, $12,"
    " $13::jsonb, $14::integer)"
    " RETURNING id";

/* the publisher picks a post up at once, not at its next tick */
static const char  ngx_http_tiktok_post_notify_sql[] =
    "SELECT pg_notify('tiktok_publish', $1)";


static ngx_http_request_body_filter_pt  ngx_http_tiktok_next_body_filter;


ngx_int_t
ngx_http_tiktok_post_init(ngx_conf_t *cf)
{
    ngx_http_tiktok_next_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_tiktok_post_body_filter;

    return NGX_OK;
}


/*
 * Two limits nginx does not know while it reads an API request's body.
 *
 * A chunked body past the 4 GB TikTok takes: with client_max_body_size 0
 * nginx would read it to its end, into client_body_temp.  What came so
 * far (content_length_n, which the chunked filter counts) and what the
 * current chunk still declares (rb->chunked->size) are checked before
 * the bytes are written, as nginx checks client_max_body_size, so that a
 * chunk declaring more is refused at once (413, "larger than 4 GB" from
 * ngx_http_tiktok_error_page).
 *
 * An upload that does not fit on the spool's file system (which is
 * client_body_temp_path's: the upload is renamed into the spool) is
 * nginx's "500" while it writes the body; say 507 instead, which
 * ngx_http_tiktok_error_page answers in JSON.  The temporary file goes
 * with the request.
 */

static ngx_int_t
ngx_http_tiktok_post_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_err_t                    err;
    ngx_int_t                    rc;
    struct statvfs               fs;
    ngx_temp_file_t             *tf;
    ngx_http_tiktok_loc_conf_t  *tlcf;

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_tiktok_module);

    if (tlcf && tlcf->api && r->headers_in.chunked
        && r->request_body && r->request_body->chunked
        && r->headers_in.content_length_n
           > NGX_HTTP_TIKTOK_VIDEO_MAX - r->request_body->chunked->size)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "tiktok: a chunked body went past the %O bytes "
                      "TikTok takes", (off_t) NGX_HTTP_TIKTOK_VIDEO_MAX);

        r->lingering_close = 1;

        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    ngx_set_errno(0);

    rc = ngx_http_tiktok_next_body_filter(r, in);

    if (rc != NGX_HTTP_INTERNAL_SERVER_ERROR) {
        return rc;
    }

    err = ngx_errno;

    if (tlcf == NULL || !tlcf->api || r->request_body == NULL) {
        return rc;
    }

    tf = r->request_body->temp_file;

    /* a short write sets no errno: the file system's free space tells */

    if (err != NGX_ENOSPC
#ifdef EDQUOT
        && err != EDQUOT
#endif
        && (tf == NULL || tf->file.fd == NGX_INVALID_FILE
            || fstatvfs(tf->file.fd, &fs) == -1
            || (off_t) fs.f_bavail * fs.f_frsize
               >= NGX_HTTP_TIKTOK_SPOOL_FULL))
    {
        return rc;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "tiktok: no room for the upload on the file system of "
                  "tiktok_upload_spool and client_body_temp_path");

    return NGX_HTTP_INSUFFICIENT_STORAGE;
}


/*
 * A post with none of its options given: each optional member is UNSET,
 * so that the parsers can tell "not sent" from false or 0, and a member
 * sent twice is refused.
 */

static ngx_http_tiktok_post_t *
ngx_http_tiktok_post_create(ngx_pool_t *pool)
{
    ngx_http_tiktok_post_t  *pt;

    pt = ngx_pcalloc(pool, sizeof(ngx_http_tiktok_post_t));
    if (pt == NULL) {
        return NULL;
    }

    pt->disable_comment = NGX_HTTP_TIKTOK_UNSET;
    pt->disable_duet = NGX_HTTP_TIKTOK_UNSET;
    pt->disable_stitch = NGX_HTTP_TIKTOK_UNSET;
    pt->brand_content_toggle = NGX_HTTP_TIKTOK_UNSET;
    pt->brand_organic_toggle = NGX_HTTP_TIKTOK_UNSET;
    pt->is_aigc = NGX_HTTP_TIKTOK_UNSET;
    pt->video_cover_timestamp_ms = NGX_HTTP_TIKTOK_UNSET;
    pt->photo_cover_index = NGX_HTTP_TIKTOK_UNSET;
    pt->auto_add_music = NGX_HTTP_TIKTOK_UNSET;

    return pt;
}


ngx_int_t
ngx_http_tiktok_post_handler(ngx_http_request_t *r,
    ngx_http_tiktok_ctx_t *ctx)
{
    u_char                  *p, *last;
    ngx_int_t                rc;
    ngx_str_t                ct;
    ngx_http_tiktok_post_t  *pt;

    pt = ngx_http_tiktok_post_create(r->pool);
    if (pt == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->data = pt;

    ngx_str_null(&ct);

    if (r->headers_in.content_type) {
        ct = r->headers_in.content_type->value;
    }

    /*
     * The media type without its parameters, as RFC 9110 writes it:
     * type "/" subtype *( OWS ";" OWS parameter ), case-insensitive.
     */

    last = ct.data + ct.len;

    for (p = ct.data;
         p < last && *p != ';' && *p != ' ' && *p != '\t';
         p++)
    { /* void */ }

    ct.len = p - ct.data;

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    if (p < last && *p != ';') {
        ct.len = 0;             /* "application/json x": not a media type */
    }

#define ngx_http_tiktok_ct_is(s)                                              \
    (ct.len == sizeof(s) - 1                                                  \
     && ngx_strncasecmp(ct.data, (u_char *) s, sizeof(s) - 1) == 0)

    if (ngx_http_tiktok_ct_is("video/mp4")
        || ngx_http_tiktok_ct_is("video/quicktime")
        || ngx_http_tiktok_ct_is("video/webm"))
    {
        /* streamed to a file by nginx, never held in memory */
        pt->file = 1;
        r->request_body_in_file_only = 1;
        r->request_body_in_persistent_file = 1;
        r->request_body_in_clean_file = 1;

    } else if (ngx_http_tiktok_ct_is("application/json")) {
        r->request_body_in_single_buf = 1;

    } else {
        return ngx_http_tiktok_send_error(r,
                   NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "invalid_request",
                   "Content-Type",
                   "Send application/json with a video_url, or a "
                   "video/mp4, video/quicktime or video/webm body");
    }

#undef ngx_http_tiktok_ct_is

    /*
     * A declared length nothing could accept is refused before a byte is
     * kept: client_max_body_size may be 0 (or large, for uploads), and
     * such a body would otherwise fill client_body_temp first.  Discarded
     * as nginx discards one over client_max_body_size.
     */

    if (r->headers_in.content_length_n
        > (pt->file ? NGX_HTTP_TIKTOK_VIDEO_MAX
                    : NGX_HTTP_TIKTOK_JSON_BODY_MAX))
    {
        (void) ngx_http_discard_request_body(r);
    }

    if (pt->file
        && r->headers_in.content_length_n > NGX_HTTP_TIKTOK_VIDEO_MAX)
    {
        return ngx_http_tiktok_send_error(r,
                   NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "body_too_large",
                   "body", "The video is larger than 4 GB");
    }

    if (!pt->file
        && r->headers_in.content_length_n > NGX_HTTP_TIKTOK_JSON_BODY_MAX)
    {
        return ngx_http_tiktok_post_error(r, "body",
                                          "The JSON body is larger than 64 KB");
    }

    rc = ngx_http_read_client_request_body(r, ngx_http_tiktok_post_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_tiktok_post_body(ngx_http_request_t *r)
{
    ngx_http_tiktok_finalize(r, ngx_http_tiktok_post_parse(r));
}


static ngx_int_t
ngx_http_tiktok_post_parse(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    const char                   *field, *message;
    ngx_temp_file_t              *tf;
    ngx_http_tiktok_ctx_t        *ctx;
    ngx_http_tiktok_post_t       *pt;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    pt = ctx->data;

    message = NULL;

    field = pt->file ? ngx_http_tiktok_post_query(r, pt, &message)
                     : ngx_http_tiktok_post_json(r, pt, &message);

    if (field == NULL) {
        field = ngx_http_tiktok_post_validate(r, pt, &message);
    }

    if (field == NULL && pt->file) {
        /* recognised from its bytes, not from the Content-Type */

        field = "video";
        tf = r->request_body ? r->request_body->temp_file : NULL;

        if (tf == NULL || tf->file.offset == 0) {
            message = "The body holds no video";

        } else if (tf->file.offset > NGX_HTTP_TIKTOK_VIDEO_MAX) {
            message = "The video is larger than 4 GB";

        } else {
            pt->temp = &tf->file;
            pt->size = tf->file.offset;

            rc = ngx_http_tiktok_media_probe(ngx_http_tiktok_post_read,
                                             pt->temp, pt->size, &pt->media);
            if (rc == NGX_ERROR) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            field = (rc == NGX_OK) ? NULL : "video";
            message = pt->media.container == NGX_HTTP_TIKTOK_MEDIA_MATROSKA
                      ? "Matroska (MKV) is not accepted by TikTok: send "
                        "WebM, MP4 or MOV"
                      : pt->media.container != NGX_HTTP_TIKTOK_MEDIA_UNKNOWN
                      ? "The video's duration cannot be read from its "
                        "container"
                      : "The body is not an MP4, MOV or WebM video";
        }
    }

    if (field) {
        return ngx_http_tiktok_post_error(r, field, message);
    }

    if (pt->draft) {
        /* no creator info: the token and its video.upload scope only */
        if (ngx_http_tiktok_token(r, ngx_http_tiktok_post_draft) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_tiktok_wait(r);
    }

    ctx->resume = ngx_http_tiktok_post_check;

    return ngx_http_tiktok_call_creator_info(r, &pt->call);
}


static ssize_t
ngx_http_tiktok_post_read(void *data, u_char *buf, size_t size, off_t offset)
{
    ngx_file_t  *file = data;

    return ngx_read_file(file, buf, size, offset);
}


/*
 * JSON body: typed members, unknown ones refused (they are typos).  It is
 * read as one string: nginx's chain can hold buffers in memory, parts of
 * the temporary file, and (a chunked body) an empty last_buf that is
 * neither: only bytes count, wherever they are.
 */

static const char *
ngx_http_tiktok_post_json(ngx_http_request_t *r, ngx_http_tiktok_post_t *pt,
    const char **message)
{
    u_char                         *p, *text;
    off_t                           len;
    ssize_t                         n;
    json_t                         *root, *v;
    ngx_buf_t                      *b;
    ngx_chain_t                    *cl, *bufs;
    ngx_str_t                       name;
    const char                     *key;
    json_error_t                    jerr;
    ngx_http_tiktok_post_option_t  *o;

    bufs = r->request_body ? r->request_body->bufs : NULL;
    len = 0;

    for (cl = bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            len += b->last - b->pos;

        } else if (b->in_file && b->file) {
            len += b->file_last - b->file_pos;
        }
    }

    if (len == 0 || len > NGX_HTTP_TIKTOK_JSON_BODY_MAX) {
        *message = len ? "The JSON body is larger than 64 KB"
                       : "The body must be a JSON object";
        return "body";
    }

    text = ngx_pnalloc(r->pool, (size_t) len);
    if (text == NULL) {
        *message = "The body could not be read";
        return "body";
    }

    p = text;

    for (cl = bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        if (!b->in_file || b->file == NULL
            || b->file_last == b->file_pos)
        {
            continue;           /* a special buffer: no bytes */
        }

        n = ngx_read_file(b->file, p, (size_t) (b->file_last - b->file_pos),
                          b->file_pos);

        if (n != b->file_last - b->file_pos) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "tiktok: short read of the request body from "
                          "\"%V\"", &b->file->name);
            *message = "The body could not be read";
            return "body";
        }

        p += n;
    }

    /*
     * An escaped NUL is parsed, so that the 400 names the field it is in;
     * every string option is then checked for one (a text column cannot
     * hold it, and a C string would end there).
     */

    root = ngx_http_tiktok_json_own(r->pool,
               json_loadb((char *) text, p - text,
                          JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr));

    *message = ngx_http_tiktok_json_refusal(root, &jerr);
    if (*message) {
        return "body";
    }

    json_object_foreach(root, key, v) {

        for (o = ngx_http_tiktok_post_options; o->name.len; o++) {
            if (ngx_strcmp(o->name.data, key) == 0) {
                break;
            }
        }

        if (o->name.len == 0) {
            *message = "Unknown option";
            name.data = (u_char *) key;
            name.len = ngx_strlen(key);
            return ngx_http_tiktok_post_field(&name, "body");
        }

        *message = ngx_http_tiktok_post_set(pt, o, v, NULL);
        if (*message) {
            return key;
        }
    }

    return NULL;
}


/*
 * An upload's options come in the query string, form-encoded as browsers
 * send them (application/x-www-form-urlencoded: "+" is a space, every
 * %XX is a byte, "?" is a character like any other).  As in a JSON body,
 * an unknown or repeated option is refused: it is a typo or a confusion.
 */

static const char *
ngx_http_tiktok_post_query(ngx_http_request_t *r, ngx_http_tiktok_post_t *pt,
    const char **message)
{
    u_char                         *p, *last, *eq;
    uint32_t                        seen;
    ngx_str_t                       raw, name, value;
    ngx_http_tiktok_post_option_t  *o;

    seen = 0;

    p = r->args.data;
    last = p + r->args.len;

    while (p < last && ngx_http_tiktok_next_item(&p, last, '&', &raw)) {

        if (raw.len == 0) {
            continue;
        }

        eq = ngx_strlchr(raw.data, raw.data + raw.len, '=');

        name.data = raw.data;
        name.len = eq ? (size_t) (eq - raw.data) : raw.len;
        value.data = eq ? eq + 1 : raw.data + raw.len;
        value.len = raw.data + raw.len - value.data;

        if (ngx_http_tiktok_post_form_decode(r->pool, &name) != NGX_OK) {
            *message = "The query string is not form-encoded";
            return "query";
        }

        for (o = ngx_http_tiktok_post_options; o->name.len; o++) {
            if (o->name.len == name.len
                && ngx_strncmp(o->name.data, name.data, name.len) == 0)
            {
                break;
            }
        }

        if (o->name.len == 0) {
            *message = "Unknown option";
            return ngx_http_tiktok_post_field(&name, "query");
        }

        if (seen & (1 << (o - ngx_http_tiktok_post_options))) {
            *message = "Given more than once";
            return (char *) o->name.data;
        }

        seen |= 1 << (o - ngx_http_tiktok_post_options);

        if (ngx_http_tiktok_post_form_decode(r->pool, &value) != NGX_OK) {
            *message = "Not form-encoded: a % must start a %XX escape";
            return (char *) o->name.data;
        }

        if (ngx_strlchr(value.data, value.data + value.len, '\0')) {
            *message = "Must not contain NUL characters";
            return (char *) o->name.data;
        }

        if (o->offset == offsetof(ngx_http_tiktok_post_t, video_url)) {
            *message = "An upload has no video_url; send JSON for that";
            return "video_url";
        }

        *message = ngx_http_tiktok_post_set(pt, o, NULL, &value);
        if (*message) {
            return (char *) o->name.data;
        }
    }

    return NULL;
}


/*
 * An option's value from JSON (v) or from the query string (s): NULL, or
 * why it is refused.
 */

static const char *
ngx_http_tiktok_post_set(ngx_http_tiktok_post_t *pt,
    ngx_http_tiktok_post_option_t *o, json_t *v, ngx_str_t *s)
{
    u_char     *field;
    int64_t     n;
    ngx_str_t  *str;

    field = (u_char *) pt + o->offset;

    pt->given |= 1 << (o - ngx_http_tiktok_post_options);

    switch (o->type) {

    case 'a':
        if (s) {
            return "A list of URLs needs a JSON body";
        }

        if (!json_is_array(v)) {
            return "Must be an array of URLs";
        }

        *(json_t **) field = v;
        return NULL;

    case 's':
        if (s) {
            *(ngx_str_t *) field = *s;
            return NULL;
        }

        if (!json_is_string(v)) {
            return "Must be a string";
        }

        str = (ngx_str_t *) field;
        str->data = (u_char *) json_string_value(v);
        str->len = json_string_length(v);

        if (ngx_strlchr(str->data, str->data + str->len, '\0')) {
            return "Must not contain NUL characters";
        }

        return NULL;

    case 'b':
        if (s == NULL) {
            n = json_is_boolean(v) ? json_is_true(v) : NGX_ERROR;

        } else if ((s->len == 4 && ngx_strncmp(s->data, "true", 4) == 0)
                   || (s->len == 1 && s->data[0] == '1'))
        {
            n = 1;

        } else if ((s->len == 5 && ngx_strncmp(s->data, "false", 5) == 0)
                   || (s->len == 1 && s->data[0] == '0'))
        {
            n = 0;

        } else {
            n = NGX_ERROR;
        }

        if (n == NGX_ERROR) {
            return "Must be true or false";
        }

        *(ngx_int_t *) field = n;
        return NULL;

    default: /* 'i' */
        n = s ? ngx_atoi(s->data, s->len)
              : (json_is_integer(v) && json_integer_value(v) >= 0)
              ? json_integer_value(v) : NGX_ERROR;

        if (n == NGX_ERROR) {
            return (o->offset == offsetof(ngx_http_tiktok_post_t,
                                          photo_cover_index))
                   ? "Must be a whole number from 0"
                   : "Must be a whole number of milliseconds";
        }

        *(int64_t *) field = n;
        return NULL;
    }
}


/* form decoding into a NUL-terminated copy: NGX_DECLINED on a bad %XX */

static ngx_int_t
ngx_http_tiktok_post_form_decode(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char     *p, *last, *d, c;
    ngx_int_t   n;

    d = ngx_pnalloc(pool, s->len + 1);
    if (d == NULL) {
        return NGX_ERROR;
    }

    p = s->data;
    last = p + s->len;
    s->data = d;

    while (p < last) {
        c = *p++;

        if (c != '%') {
            *d++ = (c == '+') ? ' ' : c;
            continue;
        }

        n = (last - p < 2) ? NGX_ERROR : ngx_hextoi(p, 2);
        if (n == NGX_ERROR) {
            return NGX_DECLINED;
        }

        *d++ = (u_char) n;
        p += 2;
    }

    *d = '\0';
    s->len = d - s->data;

    return NGX_OK;
}


/*
 * An unknown option's name (decoded, NUL-terminated) as the answer's
 * "field": it goes into JSON and the error log, so only short printable
 * UTF-8 is echoed (a CR or LF would forge a log line); else whole, the
 * query string or the body it came in.
 */

static const char *
ngx_http_tiktok_post_field(ngx_str_t *name, const char *whole)
{
    if (name->len == 0 || name->len > 64
        || !ngx_http_tiktok_is_printable(name))
    {
        return whole;
    }

    return (const char *) name->data;
}


/* the checks that need nothing but the request */

static const char *
ngx_http_tiktok_post_validate(ngx_http_request_t *r,
    ngx_http_tiktok_post_t *pt, const char **message)
{
    u_char                       *buf;
    size_t                        chars, utf16;
    time_t                        at, now;
    ngx_uint_t                    max;
    const char                   *why;
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);

    why = ngx_http_tiktok_post_kind(pt, message);
    if (why) {
        return why;
    }

    if (pt->photo) {
        why = ngx_http_tiktok_post_photos(r, pt, message);
        if (why) {
            return why;
        }
    }

    if (ngx_http_tiktok_utf8_count(&pt->title, &chars, &utf16) != NGX_OK) {
        *message = "The title is not valid UTF-8 text";
        return "title";
    }

    /* TikTok counts UTF-16 code units: 2200 for a video, 90 for photos */

    max = pt->photo ? NGX_HTTP_TIKTOK_PHOTO_TITLE_MAX : tmcf->title_max_chars;

    if (chars > max
        || utf16 > (pt->photo ? NGX_HTTP_TIKTOK_PHOTO_TITLE_MAX : 2200))
    {
        buf = ngx_pnalloc(r->pool, 64);
        if (buf) {
            ngx_sprintf(buf, "Title is longer than %ui characters%Z", max);
        }

        *message = buf ? (char *) buf : "Title is too long";
        return "title";
    }

    /* privacy is the user's choice: there is no default (a draft: later) */

    if (pt->privacy_level.len == 0 && !pt->draft) {
        *message = "Choose who can see the video: privacy_level is required";
        return "privacy_level";
    }

    if (pt->brand_content_toggle == 1 && pt->privacy_level.len == 9
        && ngx_strncmp(pt->privacy_level.data, "SELF_ONLY", 9) == 0)
    {
        *message = "Branded content cannot be private (SELF_ONLY)";
        return "brand_content_toggle";
    }

    if (pt->video_url.len) {
        why = ngx_http_tiktok_check_pull_url(&pt->video_url,
                                             tmcf->pull_url_prefixes);
        if (why) {
            *message = why;
            return "video_url";
        }
    }

    if (pt->schedule_at.len) {
        now = ngx_time();

        if (ngx_http_tiktok_parse_rfc3339(&pt->schedule_at, &at) != NGX_OK) {
            *message = "schedule_at must be an RFC 3339 time, e.g. "
                       "2026-12-01T18:30:00Z";
            return "schedule_at";
        }

        if (at <= now) {
            *message = "schedule_at must be in the future";
            return "schedule_at";
        }

        if (at > now + NGX_HTTP_TIKTOK_SCHEDULE_MAX) {
            *message = "schedule_at must be at most 30 days ahead";
            return "schedule_at";
        }

        /*
         * Stored as UTC: RFC 3339 allows offsets up to +-23:59, PostgreSQL
         * takes only +-15:59.
         */

        buf = ngx_pnalloc(r->pool, sizeof("1970-01-01T00:00:00Z") - 1);
        if (buf == NULL) {
            *message = "Internal error";
            return "schedule_at";
        }

        pt->schedule_at.len = ngx_http_tiktok_rfc3339(buf, at) - buf;
        pt->schedule_at.data = buf;
    }

    return NULL;
}


/*
 * What is posted (a video, or photos) and how (directly, or as a draft to
 * the creator's inbox), and the options that go with it: an option the
 * kind of post does not take is refused, naming it, rather than dropped.
 */

static const char *
ngx_http_tiktok_post_kind(ngx_http_tiktok_post_t *pt, const char **message)
{
    ngx_uint_t                      i, kind;
    ngx_http_tiktok_post_option_t  *o;

#define ngx_http_tiktok_given_is(s, lit)                                      \
    ((s)->len == sizeof(lit) - 1 && ngx_strncmp((s)->data, lit, (s)->len) == 0)

    if (pt->mode.data && !ngx_http_tiktok_given_is(&pt->mode, "direct")
        && !ngx_http_tiktok_given_is(&pt->mode, "draft"))
    {
        *message = "mode must be \"direct\" or \"draft\"";
        return "mode";
    }

    if (pt->media_type.data
        && !ngx_http_tiktok_given_is(&pt->media_type, "VIDEO")
        && !ngx_http_tiktok_given_is(&pt->media_type, "PHOTO"))
    {
        *message = "media_type must be \"VIDEO\" or \"PHOTO\"";
        return "media_type";
    }

    pt->draft = pt->mode.data
                && ngx_http_tiktok_given_is(&pt->mode, "draft");
    pt->photo = pt->media_type.data
                && ngx_http_tiktok_given_is(&pt->media_type, "PHOTO");

#undef ngx_http_tiktok_given_is

    if (pt->photo && pt->file) {
        *message = "TikTok pulls photos from photo_urls: send JSON, not an "
                   "upload";
        return "media_type";
    }

    kind = pt->photo ? NGX_HTTP_TIKTOK_FOR_PHOTO : NGX_HTTP_TIKTOK_FOR_VIDEO;

    for (i = 0, o = ngx_http_tiktok_post_options; o->name.len; i++, o++) {

        if (!(pt->given & (1 << i))) {
            continue;
        }

        if (!(o->kinds & kind)) {
            *message = pt->photo ? "A photo post does not take this option"
                                 : "Only a photo post (media_type PHOTO) "
                                   "takes this option";
            return (char *) o->name.data;
        }

        if (pt->draft && !(o->kinds & NGX_HTTP_TIKTOK_FOR_DRAFT)) {
            *message = "A draft does not take this option: the creator "
                       "chooses it in the TikTok app";
            return (char *) o->name.data;
        }
    }

    if (!pt->photo && !pt->file && pt->video_url.len == 0) {
        *message = "A JSON post needs the video_url TikTok pulls from";
        return "video_url";
    }

    return NULL;
}


/* 1 to 35 images under the verified prefixes, a cover among them */

static const char *
ngx_http_tiktok_post_photos(ngx_http_request_t *r, ngx_http_tiktok_post_t *pt,
    const char **message)
{
    size_t                        i, n, chars, utf16;
    json_t                       *v;
    ngx_str_t                     url;
    const char                   *why;
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);

    n = json_array_size(pt->photo_urls);

    if (n == 0 || n > NGX_HTTP_TIKTOK_PHOTOS_MAX) {
        *message = "A photo post has 1 to 35 photo_urls";
        return "photo_urls";
    }

    json_array_foreach(pt->photo_urls, i, v) {
        if (!json_is_string(v)) {
            *message = "Each of photo_urls must be a URL string";
            return "photo_urls";
        }

        url.data = (u_char *) json_string_value(v);
        url.len = json_string_length(v);

        if (ngx_strlchr(url.data, url.data + url.len, '\0')) {
            *message = "Must not contain NUL characters";
            return "photo_urls";
        }

        why = ngx_http_tiktok_check_pull_url(&url, tmcf->pull_url_prefixes);
        if (why) {
            *message = why;
            return "photo_urls";
        }
    }

    if (pt->photo_cover_index == NGX_HTTP_TIKTOK_UNSET) {
        pt->photo_cover_index = 0;

    } else if ((size_t) pt->photo_cover_index >= n) {
        *message = "photo_cover_index must be the index of one of "
                   "photo_urls, from 0";
        return "photo_cover_index";
    }

    if (ngx_http_tiktok_utf8_count(&pt->description, &chars, &utf16)
        != NGX_OK)
    {
        *message = "The description is not valid UTF-8 text";
        return "description";
    }

    if (chars > NGX_HTTP_TIKTOK_DESCRIPTION_MAX
        || utf16 > NGX_HTTP_TIKTOK_DESCRIPTION_MAX)
    {
        *message = "Description is longer than 4000 characters";
        return "description";
    }

    if (ngx_http_tiktok_json_encode(r->pool, pt->photo_urls, &pt->photos)
        != NGX_OK)
    {
        *message = "Internal error";
        return "photo_urls";
    }

    return NULL;
}


/*
 * A draft: the caller's token, then its video.upload scope (TikTok's
 * inbox needs it; video.publish is not asked for), then the row.
 */

static void
ngx_http_tiktok_post_draft(ngx_http_request_t *r)
{
    ngx_http_tiktok_ctx_t   *ctx;
    ngx_http_tiktok_post_t  *pt;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    pt = ctx->data;

    if (ctx->token->status != NGX_HTTP_TIKTOK_TOKEN_OK) {
        ngx_http_tiktok_finalize(r, ngx_http_tiktok_token_error(r));
        return;
    }

    if (!ngx_http_tiktok_token_has_scope(r, "video.upload")) {
        ngx_http_tiktok_finalize(r, ngx_http_tiktok_send_error(r,
            NGX_HTTP_FORBIDDEN, "scope_missing", NULL,
            "Posting failed. Check permissions or try again."));
        return;
    }

    /* the caption, privacy and interactions are the creator's, later */
    ngx_str_set(&pt->post_info, "{}");

    ngx_http_tiktok_finalize(r, ngx_http_tiktok_post_store(r, pt));
}


/* the checks against the creator's current options, then the row */

static ngx_int_t
ngx_http_tiktok_post_check(ngx_http_request_t *r, ngx_http_tiktok_ctx_t *ctx)
{
    u_char                         *p, *msg;
    size_t                          i, len;
    json_t                         *data, *options, *o, *info, *max;
    ngx_int_t                       rc, *flag;
    ngx_uint_t                      found, kind;
    ngx_http_tiktok_post_t         *pt;
    ngx_http_tiktok_post_option_t  *opt;

    pt = ctx->data;

    if (pt->call.rc != NGX_OK) {
        return ngx_http_tiktok_call_error(r, &pt->call);
    }

    data = pt->call.data;

    (void) ngx_http_tiktok_json_get_str(r->pool, data, "creator_username",
                                        &pt->username);

    options = json_object_get(data, "privacy_level_options");
    found = 0;
    len = sizeof("privacy_level must be one of the creator's options: ");

    json_array_foreach(options, i, o) {
        if (json_is_string(o)) {
            found |= (json_string_length(o) == pt->privacy_level.len
                      && ngx_strncmp(json_string_value(o),
                                     pt->privacy_level.data,
                                     pt->privacy_level.len) == 0);
            len += json_string_length(o) + 2;
        }
    }

    if (!found) {
        msg = ngx_pnalloc(r->pool, len);
        if (msg == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_sprintf(msg, "privacy_level must be one of the creator's "
                        "options: ");

        json_array_foreach(options, i, o) {
            if (json_is_string(o)) {
                p = ngx_sprintf(p, "%s%s", i ? ", " : "",
                                json_string_value(o));
            }
        }

        *p = '\0';

        return ngx_http_tiktok_post_error(r, "privacy_level", (char *) msg);
    }

    max = json_object_get(data, "max_video_post_duration_sec");

    if (pt->file && json_is_integer(max)
        && pt->media.duration_ms > (uint64_t) json_integer_value(max) * 1000)
    {
        msg = ngx_pnalloc(r->pool, 80);
        if (msg == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_sprintf(msg, "The video is longer than this creator's limit of "
                    "%L seconds%Z", (int64_t) json_integer_value(max));

        return ngx_http_tiktok_post_error(r, "video", (char *) msg);
    }

    info = ngx_http_tiktok_json_own(r->pool,
               json_pack("{s:s%, s:s%}", "privacy_level",
                         pt->privacy_level.data, pt->privacy_level.len,
                         "title", pt->title.data ? (char *) pt->title.data
                                                 : "", pt->title.len));

    if (info && pt->photo
        && ngx_http_tiktok_json_set(info, "description",
               json_stringn(pt->description.data
                            ? (char *) pt->description.data : "",
                            pt->description.len))
           != NGX_OK)
    {
        info = NULL;
    }

    rc = (info == NULL) ? NGX_ERROR : NGX_OK;

    /*
     * The options that are booleans: true only when 1.  Interactions are
     * off unless asked for, and can never be turned on where the creator
     * has turned them off.
     */

    kind = pt->photo ? NGX_HTTP_TIKTOK_FOR_PHOTO : NGX_HTTP_TIKTOK_FOR_VIDEO;

    for (opt = ngx_http_tiktok_post_options; opt->name.len; opt++) {
        if (opt->type != 'b' || !(opt->kinds & kind)) {
            continue;
        }

        flag = (ngx_int_t *) ((u_char *) pt + opt->offset);

        if (opt->disabled
            && (*flag == NGX_HTTP_TIKTOK_UNSET
                || json_is_true(json_object_get(data, opt->disabled))))
        {
            *flag = 1;
        }

        if (rc == NGX_OK) {
            rc = ngx_http_tiktok_json_set(info, (char *) opt->name.data,
                                          json_boolean(*flag == 1));
        }
    }

    if (rc != NGX_OK
        || (pt->video_cover_timestamp_ms != NGX_HTTP_TIKTOK_UNSET
            && ngx_http_tiktok_json_set(info, "video_cover_timestamp_ms",
                                json_integer(pt->video_cover_timestamp_ms))
               != NGX_OK)
        || ngx_http_tiktok_json_encode(r->pool, info, &pt->post_info)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_tiktok_post_store(r, pt);
}


/* the upload into the spool, then the row: what finalizes the request */

static ngx_int_t
ngx_http_tiktok_post_store(ngx_http_request_t *r, ngx_http_tiktok_post_t *pt)
{
    if ((pt->file && ngx_http_tiktok_post_spool(r, pt) != NGX_OK)
        || ngx_http_tiktok_post_insert(r, pt) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_tiktok_wait(r);
}


/*
 * The upload moves into tiktok_upload_spool under a random name (a rename:
 * no copy).  If the request ends before its INSERT was sent, or the
 * INSERT was refused, the file goes with it (see spool_cleanup).
 */

static ngx_int_t
ngx_http_tiktok_post_spool(ngx_http_request_t *r, ngx_http_tiktok_post_t *pt)
{
    u_char                       *p, rnd[16];
    ngx_pool_cleanup_t           *cln;
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_tiktok_module);

    if (ngx_http_tiktok_random(rnd, sizeof(rnd)) != NGX_OK) {
        return NGX_ERROR;
    }

    pt->spool_path.data = ngx_pnalloc(r->pool, tmcf->upload_spool.len
                                               + 2 * sizeof(rnd) + 8);
    if (pt->spool_path.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(pt->spool_path.data, "%V/", &tmcf->upload_spool);
    p = ngx_http_tiktok_hex(p, rnd, sizeof(rnd));
    p = ngx_sprintf(p, "%s%Z",
                    pt->media.container == NGX_HTTP_TIKTOK_MEDIA_MOV ? ".mov"
                    : pt->media.container == NGX_HTTP_TIKTOK_MEDIA_WEBM
                    ? ".webm" : ".mp4");
    pt->spool_path.len = p - 1 - pt->spool_path.data;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    if (ngx_rename_file(pt->temp->name.data, pt->spool_path.data)
        == NGX_FILE_ERROR)
    {
        ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                      ngx_rename_file_n " \"%V\" to \"%V\" failed "
                      "(tiktok_upload_spool must be on the same file "
                      "system as client_body_temp_path)",
                      &pt->temp->name, &pt->spool_path);
        return NGX_ERROR;
    }

    cln->handler = ngx_http_tiktok_post_spool_cleanup;
    cln->data = pt;

    return NGX_OK;
}


/*
 * Once the INSERT is sent, its row may exist whatever the answer says (a
 * timeout or a broken connection can follow the commit): the file then
 * stays, for the publisher or, if the row never came, for the janitor.
 * It goes only when the INSERT was never sent or definitely rolled back.
 */

static void
ngx_http_tiktok_post_spool_cleanup(void *data)
{
    ngx_http_tiktok_post_t  *pt = data;

    if (pt->committed || (pt->inserting && !pt->rolled_back)) {
        return;
    }

    if (ngx_delete_file(pt->spool_path.data) == NGX_FILE_ERROR
        && ngx_errno != NGX_ENOENT)
    {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, ngx_errno,
                      ngx_delete_file_n " \"%V\" failed", &pt->spool_path);
    }
}


static ngx_int_t
ngx_http_tiktok_post_insert(ngx_http_request_t *r, ngx_http_tiktok_post_t *pt)
{
    u_char                      *p;
    ngx_str_t                    params[14];
    ngx_http_tiktok_ctx_t       *ctx;
    ngx_http_tiktok_pg_query_t  *q;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);

    ngx_memzero(params, sizeof(params));

    params[0] = ctx->user_id;

    if (pt->schedule_at.len) {
        ngx_str_set(&params[1], "scheduled");
        params[8] = pt->schedule_at;

    } else {
        ngx_str_set(&params[1], "queued");
    }

    if (pt->file) {
        ngx_str_set(&params[2], "FILE_UPLOAD");
        params[4] = pt->spool_path;

        p = ngx_pnalloc(r->pool, NGX_OFF_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        params[5].data = p;
        params[5].len = ngx_sprintf(p, "%O", pt->size) - p;
        params[6].data = (u_char *) pt->media.content_type;
        params[6].len = ngx_strlen(pt->media.content_type);

    } else {
        ngx_str_set(&params[2], "PULL_FROM_URL");
        params[3] = pt->video_url;
    }

    params[7] = pt->post_info;
    params[9] = pt->username;

    if (pt->draft) {
        ngx_str_set(&params[10], "draft");

    } else {
        ngx_str_set(&params[10], "direct");
    }

    if (pt->photo) {
        ngx_str_set(&params[11], "PHOTO");
        params[12] = pt->photos;

        p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        params[13].data = p;
        params[13].len = ngx_sprintf(p, "%L", pt->photo_cover_index) - p;

    } else {
        ngx_str_set(&params[11], "VIDEO");
    }

    q = ngx_http_tiktok_query_new(r, ngx_http_tiktok_post_inserted);

    if (q == NULL
        || ngx_http_tiktok_pg_add(q, ngx_http_tiktok_post_insert_sql, 14,
                                  params) != NGX_OK
        || ngx_http_tiktok_pg_add(q, ngx_http_tiktok_post_notify_sql, 1,
                                  &ctx->user_id) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* from here on the row may come to exist: see spool_cleanup */
    pt->inserting = 1;

    if (ngx_http_tiktok_query_run(r, q) != NGX_OK) {
        pt->inserting = 0;      /* nothing was sent */
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_tiktok_post_inserted(ngx_http_tiktok_pg_query_t *q)
{
    ngx_str_t                body;
    ngx_http_request_t      *r;
    ngx_http_tiktok_ctx_t   *ctx;
    ngx_http_tiktok_post_t  *pt;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_tiktok_module);
    pt = ctx->data;

    if (q->rc == NGX_DECLINED) {
        /* a statement failed: rolled back, the cleanup removes the file */
        pt->rolled_back = 1;

    } else if (q->rc == NGX_ERROR && pt->file) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "tiktok: the post's row may have been stored; its "
                      "file \"%V\" stays (the janitor removes it if not)",
                      &pt->spool_path);
    }

    if (q->rc != NGX_OK || PQntuples(q->res[0]) != 1) {
        ngx_http_tiktok_finalize(r, ngx_http_tiktok_db_error(r, q->rc));
        return;
    }

    pt->committed = 1;

    body.data = ngx_pnalloc(r->pool, 96);
    if (body.data == NULL) {
        ngx_http_tiktok_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    body.len = ngx_sprintf(body.data, "{\"post_id\":\"%s\",\"status\":\"%s\"}",
                           PQgetvalue(q->res[0], 0, 0),
                           pt->schedule_at.len ? "scheduled" : "queued")
               - body.data;

    ngx_http_tiktok_finalize(r, ngx_http_tiktok_send_json(r,
                                    NGX_HTTP_ACCEPTED, &body));
}


static ngx_int_t
ngx_http_tiktok_post_error(ngx_http_request_t *r, const char *field,
    const char *message)
{
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "tiktok: post refused: %s: %s", field, message);

    return ngx_http_tiktok_send_error(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request", field, message);
}
