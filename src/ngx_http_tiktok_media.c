
/*
 * ngx_http_tiktok_module: recognising an uploaded video from its bytes.
 *
 * The Content-Type of an upload is the client's claim; TikTok checks the
 * file itself and answers file_format_check_failed or duration_check_failed
 * minutes after the upload was accepted.  Reading the container here lets
 * us refuse at once, before spending a publish call and the user's time.
 *
 * Files reach 4 GB and an MP4's "moov" may sit behind the media data, so
 * nothing is read whole: every byte comes through the caller's callback at
 * an explicit offset, through one small window, within fixed budgets of
 * reads and boxes or elements (see ngx_http_tiktok_media.h).  No size field
 * is trusted before it is checked against its parent and the file, no size
 * field decides an allocation, and the walks are loops of fixed depth, so
 * a hostile file costs at most the budget.  No nginx function is called:
 * the unit tests and the fuzzer link this file without nginx.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_tiktok_media.h"


/* boxes and elements looked at, all levels together */
#define NGX_HTTP_TIKTOK_MEDIA_MAX_ITEMS       2048

/* compatible brands looked at in "ftyp"; real files list a handful */
#define NGX_HTTP_TIKTOK_MEDIA_MAX_BRANDS      64

/* "webm" and "matroska", maybe zero-padded, fit; anything longer is neither */
#define NGX_HTTP_TIKTOK_MEDIA_MAX_DOCTYPE     32

/* Matroska's default TimecodeScale: one tick is a millisecond */
#define NGX_HTTP_TIKTOK_MEDIA_TIMECODE_SCALE  1000000

#define NGX_HTTP_TIKTOK_EBML                  0x1A45DFA3
#define NGX_HTTP_TIKTOK_EBML_READ_VERSION     0x42F7
#define NGX_HTTP_TIKTOK_EBML_DOCTYPE          0x4282
#define NGX_HTTP_TIKTOK_EBML_SEGMENT          0x18538067
#define NGX_HTTP_TIKTOK_EBML_SEEKHEAD         0x114D9B74
#define NGX_HTTP_TIKTOK_EBML_SEEK             0x4DBB
#define NGX_HTTP_TIKTOK_EBML_SEEK_ID          0x53AB
#define NGX_HTTP_TIKTOK_EBML_SEEK_POSITION    0x53AC
#define NGX_HTTP_TIKTOK_EBML_INFO             0x1549A966
#define NGX_HTTP_TIKTOK_EBML_TIMECODE_SCALE   0x2AD7B1
#define NGX_HTTP_TIKTOK_EBML_DURATION         0x4489
#define NGX_HTTP_TIKTOK_EBML_TRACKS           0x1654AE6B
#define NGX_HTTP_TIKTOK_EBML_TRACK_ENTRY      0xAE
#define NGX_HTTP_TIKTOK_EBML_TRACK_TYPE       0x83
#define NGX_HTTP_TIKTOK_EBML_VIDEO            0xE0
#define NGX_HTTP_TIKTOK_EBML_PIXEL_WIDTH      0xB0
#define NGX_HTTP_TIKTOK_EBML_PIXEL_HEIGHT     0xBA
#define NGX_HTTP_TIKTOK_EBML_CLUSTER          0x1F43B675

#define NGX_HTTP_TIKTOK_EBML_VIDEO_TRACK      1

/* no real video is wider or taller; MP4's 16.16 fields cannot say more */
#define NGX_HTTP_TIKTOK_MEDIA_MAX_PIXELS      65535


/* what ngx_http_tiktok_media_brand() says of a brand we refuse */
#define NGX_HTTP_TIKTOK_MEDIA_OTHER           (ngx_uint_t) -1


#define ngx_http_tiktok_media_is(p, s)  (ngx_memcmp(p, s, 4) == 0)


typedef struct {
    ngx_http_tiktok_media_read_pt   read;
    void                           *data;
    off_t                           size;
    off_t                           buf_offset;
    size_t                          buf_len;
    ngx_uint_t                      reads;
    ngx_uint_t                      items;
    ngx_uint_t                      ebml;          /* WebM, not MP4 */
    u_char                          buf[NGX_HTTP_TIKTOK_MEDIA_READ_SIZE];
} ngx_http_tiktok_media_ctx_t;


/* an MP4 box or an EBML element: where its payload starts and ends */

typedef struct {
    off_t                           data;
    off_t                           end;
    uint64_t                        id;
    u_char                          type[4];
    ngx_uint_t                      unknown;       /* EBML unknown size */
} ngx_http_tiktok_media_node_t;


typedef struct {
    ngx_uint_t                      video;
    ngx_uint_t                      width;
    ngx_uint_t                      height;
} ngx_http_tiktok_media_track_t;


/* what the walks of an MP4's "moov" or a WebM's Segment gather */

typedef struct {
    uint64_t                        timescale;     /* or TimecodeScale */
    uint64_t                        duration;      /* MP4, 0 when unknown */
    uint64_t                        fragments;     /* mehd, 0 when none */
    double                          ticks;         /* WebM's Duration */
    off_t                           info_at;       /* SeekHead, or -1 */
    off_t                           tracks_at;
    ngx_uint_t                      info;          /* mvhd or Info seen */
    ngx_uint_t                      has_duration;
    ngx_uint_t                      tracks;
    ngx_http_tiktok_media_track_t   track;         /* the first video one */
} ngx_http_tiktok_media_movie_t;


/* a Seek's SeekID and SeekPosition (-1, past any file, when absent) */

typedef struct {
    uint64_t                        id;
    uint64_t                        position;
} ngx_http_tiktok_media_seek_t;


/* called for each child in a walk: NGX_DONE ends the walk early, well */
typedef ngx_int_t (*ngx_http_tiktok_media_child_pt)(
    ngx_http_tiktok_media_ctx_t *ctx, ngx_http_tiktok_media_node_t *child,
    void *data);


static ngx_int_t ngx_http_tiktok_media_get(ngx_http_tiktok_media_ctx_t *ctx,
    off_t offset, size_t n, off_t ahead, u_char **p);
static ngx_int_t ngx_http_tiktok_media_payload(
    ngx_http_tiktok_media_ctx_t *ctx, ngx_http_tiktok_media_node_t *node,
    size_t n, u_char **p);
static ngx_int_t ngx_http_tiktok_media_walk(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *parent,
    ngx_http_tiktok_media_child_pt child, void *data);
static ngx_int_t ngx_http_tiktok_media_track(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *node, ngx_http_tiktok_media_child_pt child,
    ngx_http_tiktok_media_movie_t *movie);
static ngx_int_t ngx_http_tiktok_media_box(ngx_http_tiktok_media_ctx_t *ctx,
    off_t offset, off_t end, ngx_uint_t top,
    ngx_http_tiktok_media_node_t *box);
static ngx_int_t ngx_http_tiktok_media_isobmff(
    ngx_http_tiktok_media_ctx_t *ctx, ngx_http_tiktok_media_t *media);
static ngx_int_t ngx_http_tiktok_media_first(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *box, ngx_http_tiktok_media_t *media);
static ngx_uint_t ngx_http_tiktok_media_brand(const u_char *brand);
static ngx_uint_t ngx_http_tiktok_media_listed(const u_char *type,
    const char *list);
static ngx_int_t ngx_http_tiktok_media_full(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *box, size_t need0, size_t need1,
    u_char **p);
static ngx_int_t ngx_http_tiktok_media_moov(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *box, void *data);
static ngx_int_t ngx_http_tiktok_media_mvex(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *box, void *data);
static ngx_int_t ngx_http_tiktok_media_trak(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *box, void *data);
static ngx_int_t ngx_http_tiktok_media_mdia(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *box, void *data);
static ngx_int_t ngx_http_tiktok_media_ms(uint64_t duration,
    uint64_t timescale, uint64_t *ms);
static ngx_int_t ngx_http_tiktok_media_webm(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_t *media);
static ngx_int_t ngx_http_tiktok_media_element(
    ngx_http_tiktok_media_ctx_t *ctx, off_t offset, off_t end,
    ngx_http_tiktok_media_node_t *elt);
static ngx_uint_t ngx_http_tiktok_media_vint_len(u_char c);
static ngx_int_t ngx_http_tiktok_media_uint(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *elt, uint64_t *value);
static ngx_int_t ngx_http_tiktok_media_float(
    ngx_http_tiktok_media_ctx_t *ctx, ngx_http_tiktok_media_node_t *elt,
    double *value);
static ngx_int_t ngx_http_tiktok_media_header(
    ngx_http_tiktok_media_ctx_t *ctx, ngx_http_tiktok_media_node_t *elt,
    void *data);
static ngx_int_t ngx_http_tiktok_media_segment(
    ngx_http_tiktok_media_ctx_t *ctx, ngx_http_tiktok_media_node_t *segment,
    ngx_http_tiktok_media_t *media);
static ngx_int_t ngx_http_tiktok_media_level1(
    ngx_http_tiktok_media_ctx_t *ctx, ngx_http_tiktok_media_node_t *elt,
    ngx_http_tiktok_media_movie_t *movie);
static ngx_int_t ngx_http_tiktok_media_seek_to(
    ngx_http_tiktok_media_ctx_t *ctx, ngx_http_tiktok_media_node_t *segment,
    off_t at, uint64_t id, ngx_http_tiktok_media_movie_t *movie);
static ngx_int_t ngx_http_tiktok_media_seekhead(
    ngx_http_tiktok_media_ctx_t *ctx, ngx_http_tiktok_media_node_t *elt,
    void *data);
static ngx_int_t ngx_http_tiktok_media_seek(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *elt, void *data);
static ngx_int_t ngx_http_tiktok_media_info(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *elt, void *data);
static ngx_int_t ngx_http_tiktok_media_tracks(
    ngx_http_tiktok_media_ctx_t *ctx, ngx_http_tiktok_media_node_t *elt,
    void *data);
static ngx_int_t ngx_http_tiktok_media_entry(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *elt, void *data);
static ngx_int_t ngx_http_tiktok_media_video(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *elt, void *data);
static ngx_int_t ngx_http_tiktok_media_webm_ms(
    ngx_http_tiktok_media_movie_t *movie, uint64_t *ms);
static uint64_t ngx_http_tiktok_media_be(const u_char *p, ngx_uint_t n);


/* by container: NGX_HTTP_TIKTOK_MEDIA_UNKNOWN, MP4, MOV, WEBM, MATROSKA */

static const char  *ngx_http_tiktok_media_types[] = {
    NULL, "video/mp4", "video/quicktime", "video/webm", "video/x-matroska"
};


/*
 * Major brands that say "this is an MP4 video".  A brand not listed here is
 * not refused outright: its compatible brands decide (an iPhone's "M4V "
 * lists "isom" too).
 */

static const char  ngx_http_tiktok_media_mp4_brands[] =
    "isom" "iso2" "iso3" "iso4" "iso5" "iso6" "iso7" "iso8" "iso9"
    "mp41" "mp42" "avc1" "dash" "cmfc" "cmf2" "M4V " "M4VH" "M4VP"
    "MSNV" "XAVC" "f4v ";


/*
 * Major brands of ISO files that are not MP4 video, whatever they list as
 * compatible: 3GPP (H.263/AMR phones), HEIF and AVIF stills, audio books
 * and music, camera raw, JPEG 2000.  "3g" is a prefix.
 */

static const char  ngx_http_tiktok_media_other_brands[] =
    "heic" "heix" "heim" "heis" "hevc" "hevx" "mif1" "msf1" "avif"
    "avis" "M4A " "M4B " "M4P " "F4A " "F4B " "crx " "jp2 " "mjp2";


/* older QuickTime files have no "ftyp": they start with one of these */

static const char  ngx_http_tiktok_media_qt_first[] =
    "moov" "mdat" "wide" "free" "skip" "pnot";


ngx_int_t
ngx_http_tiktok_media_probe(ngx_http_tiktok_media_read_pt read, void *data,
    off_t size, ngx_http_tiktok_media_t *media)
{
    u_char                       *p;
    ngx_int_t                     rc;
    ngx_http_tiktok_media_ctx_t   ctx;

    ngx_memzero(media, sizeof(ngx_http_tiktok_media_t));

    /* the smallest MP4 box header; no EBML file is shorter either */
    if (read == NULL || size < 8) {
        return NGX_DECLINED;
    }

    ctx.read = read;
    ctx.data = data;
    ctx.size = size;
    ctx.buf_offset = 0;
    ctx.buf_len = 0;
    ctx.reads = 0;
    ctx.items = 0;

    rc = ngx_http_tiktok_media_get(&ctx, 0, 8, 16, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx.ebml = (ngx_http_tiktok_media_be(p, 4) == NGX_HTTP_TIKTOK_EBML);

    /*
     * both set duration_ms (and then width and height) only as their last
     * step, so what is refused claims no duration and no size
     */

    rc = ctx.ebml ? ngx_http_tiktok_media_webm(&ctx, media)
                  : ngx_http_tiktok_media_isobmff(&ctx, media);

    media->content_type = ngx_http_tiktok_media_types[media->container];

    return rc;
}


/*
 * Points *p at n bytes of the file at offset, reading if the window does
 * not hold them.  A read fetches up to "ahead" (the end of what the caller
 * will walk next, so a box's children usually come in one read), never
 * more than the window, never past the file.  Short reads are retried only
 * until the n bytes are in, each try counting against the budget.
 */

static ngx_int_t
ngx_http_tiktok_media_get(ngx_http_tiktok_media_ctx_t *ctx, off_t offset,
    size_t n, off_t ahead, u_char **p)
{
    off_t    left;
    size_t   len, got;
    ssize_t  r;

    if (offset < 0 || offset > ctx->size || n > sizeof(ctx->buf)
        || (off_t) n > ctx->size - offset)
    {
        return NGX_DECLINED;
    }

    left = ctx->size - offset;

    if (offset >= ctx->buf_offset
        && (uint64_t) (offset - ctx->buf_offset) + n <= ctx->buf_len)
    {
        *p = ctx->buf + (offset - ctx->buf_offset);
        return NGX_OK;
    }

    len = sizeof(ctx->buf);

    if (ahead > offset && ahead - offset < (off_t) len) {
        len = (size_t) (ahead - offset);
    }

    if ((off_t) len > left) {
        len = (size_t) left;
    }

    if (len < n) {
        len = n;
    }

    ctx->buf_offset = offset;
    ctx->buf_len = 0;

    for (got = 0; got < n; got += r) {
        if (ctx->reads++ >= NGX_HTTP_TIKTOK_MEDIA_MAX_READS) {
            return NGX_DECLINED;
        }

        r = ctx->read(ctx->data, ctx->buf + got, len - got, offset + got);

        if (r < 0 || (size_t) r > len - got) {
            return NGX_ERROR;
        }

        if (r == 0) {
            /* shorter than the caller said: not the file we were given */
            return NGX_DECLINED;
        }

        ctx->buf_len = got + r;
    }

    *p = ctx->buf;

    return NGX_OK;
}


/* n bytes at the start of node's payload, which must hold them */

static ngx_int_t
ngx_http_tiktok_media_payload(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *node, size_t n, u_char **p)
{
    if (node->end - node->data < (off_t) n) {
        return NGX_DECLINED;
    }

    return ngx_http_tiktok_media_get(ctx, node->data, n, node->end, p);
}


/*
 * Calls child for each box or element inside parent, in order, until it
 * answers anything but NGX_OK.  In an MP4, up to 7 bytes of padding at the
 * end are allowed: old QuickTime writers end atom lists with a 32-bit
 * zero.  In a WebM, only a Segment or a Cluster may be written without a
 * size, and neither is walked here.
 */

static ngx_int_t
ngx_http_tiktok_media_walk(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *parent, ngx_http_tiktok_media_child_pt child,
    void *data)
{
    off_t                         offset;
    ngx_int_t                     rc;
    ngx_http_tiktok_media_node_t  node;

    for (offset = parent->data;
         parent->end - offset >= (ctx->ebml ? 1 : 8);
         offset = node.end)
    {
        if (ctx->ebml) {
            rc = ngx_http_tiktok_media_element(ctx, offset, parent->end,
                                               &node);

        } else {
            rc = ngx_http_tiktok_media_box(ctx, offset, parent->end, 0,
                                           &node);
        }

        if (rc != NGX_OK) {
            return rc;
        }

        if (node.unknown) {
            return NGX_DECLINED;
        }

        rc = child(ctx, &node, data);

        if (rc != NGX_OK) {
            return rc == NGX_DONE ? NGX_OK : rc;
        }
    }

    return NGX_OK;
}


/* a track's children walked by child; the first video track is kept */

static ngx_int_t
ngx_http_tiktok_media_track(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *node, ngx_http_tiktok_media_child_pt child,
    ngx_http_tiktok_media_movie_t *movie)
{
    ngx_int_t                      rc;
    ngx_http_tiktok_media_track_t  track;

    ngx_memzero(&track, sizeof(ngx_http_tiktok_media_track_t));

    rc = ngx_http_tiktok_media_walk(ctx, node, child, &track);

    if (rc == NGX_OK && track.video) {
        movie->track = track;
    }

    return rc;
}


/*
 * One box header at offset, inside [offset, end): a 32-bit size, or 1 and
 * a 64-bit size after the type, or 0 for "to the end" (of the file at the
 * top level, of the parent inside one).  The size must cover the header
 * and stay inside the parent, which also keeps every offset sum in off_t.
 */

static ngx_int_t
ngx_http_tiktok_media_box(ngx_http_tiktok_media_ctx_t *ctx, off_t offset,
    off_t end, ngx_uint_t top, ngx_http_tiktok_media_node_t *box)
{
    off_t      left, ahead;
    u_char    *p;
    uint64_t   size, header;
    ngx_int_t  rc;

    if (++ctx->items > NGX_HTTP_TIKTOK_MEDIA_MAX_ITEMS) {
        return NGX_DECLINED;
    }

    left = end - offset;

    if (left < 8) {
        return NGX_DECLINED;
    }

    /* top-level boxes are far apart: read a header, not a window */
    ahead = top ? offset + 16 : end;

    rc = ngx_http_tiktok_media_get(ctx, offset, left < 16 ? 8 : 16, ahead,
                                   &p);
    if (rc != NGX_OK) {
        return rc;
    }

    size = ngx_http_tiktok_media_be(p, 4);
    ngx_memcpy(box->type, p + 4, 4);
    header = 8;

    if (size == 1) {
        if (left < 16) {
            return NGX_DECLINED;
        }

        size = ngx_http_tiktok_media_be(p + 8, 8);
        header = 16;

    } else if (size == 0) {
        size = (uint64_t) left;
    }

    if (ngx_http_tiktok_media_is(box->type, "uuid")) {
        header += 16;
    }

    if (size < header || size > (uint64_t) left) {
        return NGX_DECLINED;
    }

    box->data = offset + (off_t) header;
    box->end = offset + (off_t) size;
    box->unknown = 0;

    return NGX_OK;
}


/*
 * MP4 and QuickTime: the top-level boxes must tile the file exactly (a
 * truncated upload ends inside one), the first says which of the two it is,
 * exactly one "moov" must give the duration and a video track, and there
 * must be an "mdat": a "moov" alone (a fragmented file's init segment, a
 * file cut right after its "moov") has no pictures to post.
 */

static ngx_int_t
ngx_http_tiktok_media_isobmff(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_t *media)
{
    off_t                          offset;
    uint64_t                       duration;
    ngx_int_t                      rc;
    ngx_uint_t                     i, moov, mdat;
    ngx_http_tiktok_media_node_t   box;
    ngx_http_tiktok_media_movie_t  movie;

    ngx_memzero(&movie, sizeof(ngx_http_tiktok_media_movie_t));

    moov = 0;
    mdat = 0;

    for (offset = 0; offset < ctx->size; offset = box.end) {

        rc = ngx_http_tiktok_media_box(ctx, offset, ctx->size, 1, &box);
        if (rc != NGX_OK) {
            return rc;
        }

        /* every top-level type is printable ASCII; noise rarely is */
        for (i = 0; i < 4; i++) {
            if (box.type[i] < 0x20 || box.type[i] > 0x7e) {
                return NGX_DECLINED;
            }
        }

        if (offset == 0) {
            rc = ngx_http_tiktok_media_first(ctx, &box, media);
            if (rc != NGX_OK) {
                return rc;
            }
        }

        if (ngx_http_tiktok_media_is(box.type, "mdat")) {
            mdat = 1;
        }

        if (ngx_http_tiktok_media_is(box.type, "moov")) {

            /* two movies in one file: no telling which one TikTok plays */
            if (moov) {
                return NGX_DECLINED;
            }

            moov = 1;

            rc = ngx_http_tiktok_media_walk(ctx, &box,
                                            ngx_http_tiktok_media_moov,
                                            &movie);
            if (rc != NGX_OK) {
                return rc;
            }
        }
    }

    if (!moov || !mdat || !movie.info || !movie.track.video) {
        return NGX_DECLINED;
    }

    /* a fragmented file may leave mvhd's duration to "mehd" */
    duration = movie.duration ? movie.duration : movie.fragments;

    rc = ngx_http_tiktok_media_ms(duration, movie.timescale,
                                  &media->duration_ms);
    if (rc != NGX_OK) {
        return rc;
    }

    media->width = movie.track.width;
    media->height = movie.track.height;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tiktok_media_first(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *box, ngx_http_tiktok_media_t *media)
{
    u_char      *p;
    off_t        offset;
    ngx_int_t    rc;
    ngx_uint_t   i, kind, compatible;

    if (!ngx_http_tiktok_media_is(box->type, "ftyp")) {

        if (!ngx_http_tiktok_media_listed(box->type,
                                          ngx_http_tiktok_media_qt_first))
        {
            return NGX_DECLINED;
        }

        media->container = NGX_HTTP_TIKTOK_MEDIA_MOV;
        return NGX_OK;
    }

    /* major brand, minor version, then compatible brands */
    rc = ngx_http_tiktok_media_payload(ctx, box, 8, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    kind = ngx_http_tiktok_media_brand(p);

    if (kind == NGX_HTTP_TIKTOK_MEDIA_UNKNOWN) {
        compatible = NGX_HTTP_TIKTOK_MEDIA_UNKNOWN;
        offset = box->data + 8;

        for (i = 0;
             i < NGX_HTTP_TIKTOK_MEDIA_MAX_BRANDS && box->end - offset >= 4;
             i++, offset += 4)
        {
            rc = ngx_http_tiktok_media_get(ctx, offset, 4, box->end, &p);
            if (rc != NGX_OK) {
                return rc;
            }

            kind = ngx_http_tiktok_media_brand(p);

            /* an MP4 brand wins: "qt  " readers read those files too */
            if (kind == NGX_HTTP_TIKTOK_MEDIA_MP4) {
                compatible = kind;
                break;
            }

            if (kind == NGX_HTTP_TIKTOK_MEDIA_MOV) {
                compatible = kind;
            }
        }

        kind = compatible;
    }

    if (kind != NGX_HTTP_TIKTOK_MEDIA_MP4
        && kind != NGX_HTTP_TIKTOK_MEDIA_MOV)
    {
        return NGX_DECLINED;
    }

    media->container = kind;

    return NGX_OK;
}


/* MP4, MOV, OTHER (a family we refuse), or UNKNOWN */

static ngx_uint_t
ngx_http_tiktok_media_brand(const u_char *brand)
{
    if (ngx_http_tiktok_media_is(brand, "qt  ")) {
        return NGX_HTTP_TIKTOK_MEDIA_MOV;
    }

    if (ngx_http_tiktok_media_listed(brand,
                                     ngx_http_tiktok_media_mp4_brands))
    {
        return NGX_HTTP_TIKTOK_MEDIA_MP4;
    }

    if ((brand[0] == '3' && brand[1] == 'g')
        || ngx_http_tiktok_media_listed(brand,
                                        ngx_http_tiktok_media_other_brands))
    {
        return NGX_HTTP_TIKTOK_MEDIA_OTHER;
    }

    return NGX_HTTP_TIKTOK_MEDIA_UNKNOWN;
}


/* whether a four-character type is one of those run together in list */

static ngx_uint_t
ngx_http_tiktok_media_listed(const u_char *type, const char *list)
{
    for ( /* void */ ; *list; list += 4) {
        if (ngx_http_tiktok_media_is(type, list)) {
            return 1;
        }
    }

    return 0;
}


/*
 * The start of a "full box" (version, flags, fields) that holds need0
 * bytes in version 0, need1 in version 1 (64-bit times); no other
 * version is known.
 */

static ngx_int_t
ngx_http_tiktok_media_full(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *box, size_t need0, size_t need1,
    u_char **p)
{
    ngx_int_t  rc;

    rc = ngx_http_tiktok_media_get(ctx, box->data, 1, box->end, p);
    if (rc != NGX_OK) {
        return rc;
    }

    if ((*p)[0] > 1) {
        return NGX_DECLINED;
    }

    return ngx_http_tiktok_media_payload(ctx, box, (*p)[0] ? need1 : need0,
                                         p);
}


/*
 * A child of "moov": "mvhd" (timescale and duration), "mvex"/"mehd" (the
 * duration of a fragmented file), and each "trak" until a video one is
 * found.  mvhd, version 0: flags, creation, modification, timescale,
 * duration, 32 bits each; version 1: creation, modification and duration
 * are 64 bits.  A duration of all ones means "unknown".
 */

static ngx_int_t
ngx_http_tiktok_media_moov(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *box, void *data)
{
    u_char                         *p;
    ngx_int_t                       rc;
    ngx_uint_t                      n;
    ngx_http_tiktok_media_movie_t  *movie;

    movie = data;

    if (ngx_http_tiktok_media_is(box->type, "mvex")) {
        return ngx_http_tiktok_media_walk(ctx, box, ngx_http_tiktok_media_mvex,
                                          movie);
    }

    if (ngx_http_tiktok_media_is(box->type, "trak")) {
        return movie->track.video
               ? NGX_OK
               : ngx_http_tiktok_media_track(ctx, box,
                                             ngx_http_tiktok_media_trak,
                                             movie);
    }

    if (!ngx_http_tiktok_media_is(box->type, "mvhd")) {
        return NGX_OK;
    }

    if (movie->info) {
        return NGX_DECLINED;
    }

    rc = ngx_http_tiktok_media_full(ctx, box, 20, 32, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    /* the width of the times: 4 bytes in version 0, 8 in version 1 */
    n = p[0] == 0 ? 4 : 8;

    movie->timescale = ngx_http_tiktok_media_be(p + 4 + 2 * n, 4);
    movie->duration = ngx_http_tiktok_media_be(p + 8 + 2 * n, n);

    if (movie->duration == (uint64_t) -1 >> (64 - 8 * n)) {
        movie->duration = 0;
    }

    movie->info = 1;

    return NGX_OK;
}


/* a child of "mvex": "mehd", then a 32- or 64-bit fragment_duration */

static ngx_int_t
ngx_http_tiktok_media_mvex(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *box, void *data)
{
    u_char                         *p;
    ngx_int_t                       rc;
    ngx_http_tiktok_media_movie_t  *movie;

    if (!ngx_http_tiktok_media_is(box->type, "mehd")) {
        return NGX_OK;
    }

    rc = ngx_http_tiktok_media_full(ctx, box, 8, 12, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    movie = data;
    movie->fragments = ngx_http_tiktok_media_be(p + 4, p[0] == 0 ? 4 : 8);

    return NGX_DONE;
}


/*
 * A child of "trak".  A track is video when its "mdia"/"hdlr" says "vide"
 * (QuickTime's component subtype sits at the same place); its size comes
 * from "tkhd": version 0 puts the 3x3 matrix at 40 and width, height
 * (16.16) at 76 and 80; version 1, with 64-bit times, 12 bytes later.  A
 * phone's portrait video is stored landscape with a 90 degree matrix
 * (a = d = 0): the size reported is the one displayed.
 */

static ngx_int_t
ngx_http_tiktok_media_trak(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *box, void *data)
{
    u_char                         *p, *m;
    ngx_int_t                       rc;
    ngx_uint_t                      w, h;
    ngx_http_tiktok_media_track_t  *track;

    track = data;

    if (ngx_http_tiktok_media_is(box->type, "mdia")) {
        return ngx_http_tiktok_media_walk(ctx, box, ngx_http_tiktok_media_mdia,
                                          track);
    }

    if (!ngx_http_tiktok_media_is(box->type, "tkhd")) {
        return NGX_OK;
    }

    rc = ngx_http_tiktok_media_full(ctx, box, 84, 96, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    m = p + (p[0] == 0 ? 40 : 52);

    w = (ngx_uint_t) (ngx_http_tiktok_media_be(m + 36, 4) >> 16);
    h = (ngx_uint_t) (ngx_http_tiktok_media_be(m + 40, 4) >> 16);

    if (ngx_http_tiktok_media_be(m, 4) == 0
        && ngx_http_tiktok_media_be(m + 16, 4) == 0)
    {
        track->width = h;
        track->height = w;

    } else {
        track->width = w;
        track->height = h;
    }

    return NGX_OK;
}


/* a child of "mdia": the first "hdlr" is the track's; others are data's */

static ngx_int_t
ngx_http_tiktok_media_mdia(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *box, void *data)
{
    u_char                         *p;
    ngx_int_t                       rc;
    ngx_http_tiktok_media_track_t  *track;

    if (!ngx_http_tiktok_media_is(box->type, "hdlr")) {
        return NGX_OK;
    }

    /* version and flags, pre_defined (QuickTime: "mhlr"), type */
    rc = ngx_http_tiktok_media_payload(ctx, box, 12, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    track = data;
    track->video = ngx_http_tiktok_media_is(p + 8, "vide");

    return NGX_DONE;
}


/*
 * duration / timescale seconds in whole milliseconds, rounded down, without
 * the overflow of duration * 1000 for a 64-bit duration: the whole seconds
 * and the remainder are scaled apart (the remainder is below a 32-bit
 * timescale, so remainder * 1000 fits in 64 bits).
 */

static ngx_int_t
ngx_http_tiktok_media_ms(uint64_t duration, uint64_t timescale, uint64_t *ms)
{
    uint64_t  seconds, rest;

    if (timescale == 0 || timescale > 0xffffffff) {
        return NGX_DECLINED;
    }

    seconds = duration / timescale;
    rest = duration % timescale;

    if (seconds > NGX_HTTP_TIKTOK_MEDIA_MAX_MS / 1000) {
        return NGX_DECLINED;
    }

    *ms = seconds * 1000 + rest * 1000 / timescale;

    /* zero is what fragmented and live files say when they do not know */
    if (*ms == 0 || *ms > NGX_HTTP_TIKTOK_MEDIA_MAX_MS) {
        *ms = 0;
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * WebM: an EBML header whose DocType is "webm", then a Segment whose Info
 * gives the duration and whose Tracks hold a video track.  Both come before
 * the first Cluster in every muxer we know; a SeekHead pointing elsewhere
 * is followed once.
 */

static ngx_int_t
ngx_http_tiktok_media_webm(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_t *media)
{
    off_t                         offset;
    ngx_int_t                     rc;
    ngx_http_tiktok_media_node_t  header, elt;

    rc = ngx_http_tiktok_media_element(ctx, 0, ctx->size, &header);
    if (rc != NGX_OK) {
        return rc;
    }

    if (header.id != NGX_HTTP_TIKTOK_EBML || header.unknown) {
        return NGX_DECLINED;
    }

    rc = ngx_http_tiktok_media_walk(ctx, &header, ngx_http_tiktok_media_header,
                                    media);
    if (rc != NGX_OK) {
        return rc;
    }

    if (media->container != NGX_HTTP_TIKTOK_MEDIA_WEBM) {
        return NGX_DECLINED;
    }

    /* Void may come between the header and the Segment */
    for (offset = header.end; offset < ctx->size; offset = elt.end) {

        rc = ngx_http_tiktok_media_element(ctx, offset, ctx->size, &elt);
        if (rc != NGX_OK) {
            return rc;
        }

        if (elt.id == NGX_HTTP_TIKTOK_EBML_SEGMENT) {
            return ngx_http_tiktok_media_segment(ctx, &elt, media);
        }

        if (elt.unknown) {
            return NGX_DECLINED;
        }
    }

    return NGX_DECLINED;
}


/*
 * An element header at offset inside [offset, end): a variable-length id
 * (1-4 bytes, WebM's EBMLMaxIDLength) and a variable-length size (1-8
 * bytes, the length marked by the first set bit; all value bits set means
 * "unknown", running to the end of the parent).  A known size must fit in
 * the parent.
 */

static ngx_int_t
ngx_http_tiktok_media_element(ngx_http_tiktok_media_ctx_t *ctx,
    off_t offset, off_t end, ngx_http_tiktok_media_node_t *elt)
{
    off_t       left;
    u_char     *p;
    uint64_t    size, unknown;
    ngx_int_t   rc;
    ngx_uint_t  id_len, size_len;

    if (++ctx->items > NGX_HTTP_TIKTOK_MEDIA_MAX_ITEMS) {
        return NGX_DECLINED;
    }

    left = end - offset;

    if (left < 2) {
        return NGX_DECLINED;
    }

    /* the longest head: an id of 4 bytes, a size of 8 */
    rc = ngx_http_tiktok_media_get(ctx, offset,
                                   (size_t) ngx_min(left, 12), end, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    id_len = ngx_http_tiktok_media_vint_len(p[0]);

    if (id_len == 0 || id_len > 4 || left < (off_t) id_len + 1) {
        return NGX_DECLINED;
    }

    size_len = ngx_http_tiktok_media_vint_len(p[id_len]);

    if (size_len == 0 || left < (off_t) (id_len + size_len)) {
        return NGX_DECLINED;
    }

    /* the size's value bits, its marker bit masked off, number 7 a byte */
    unknown = ((uint64_t) 1 << (7 * size_len)) - 1;

    elt->id = ngx_http_tiktok_media_be(p, id_len);
    size = ngx_http_tiktok_media_be(p + id_len, size_len) & unknown;

    elt->data = offset + (off_t) (id_len + size_len);

    if (size == unknown) {
        elt->end = end;
        elt->unknown = 1;
        return NGX_OK;
    }

    if (size > (uint64_t) (end - elt->data)) {
        return NGX_DECLINED;
    }

    elt->end = elt->data + (off_t) size;
    elt->unknown = 0;

    return NGX_OK;
}


/* 1-8 for the position of the first set bit, 0 for a zero byte */

static ngx_uint_t
ngx_http_tiktok_media_vint_len(u_char c)
{
    ngx_uint_t  len;

    for (len = 1; len <= 8; len++) {
        if (c & (0x80 >> (len - 1))) {
            return len;
        }
    }

    return 0;
}


/* big-endian, 0-8 bytes; an empty one is 0 */

static ngx_int_t
ngx_http_tiktok_media_uint(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *elt, uint64_t *value)
{
    off_t       len;
    u_char     *p;
    ngx_int_t   rc;

    len = elt->end - elt->data;

    if (len > 8) {
        return NGX_DECLINED;
    }

    *value = 0;

    if (len == 0) {
        return NGX_OK;
    }

    rc = ngx_http_tiktok_media_payload(ctx, elt, (size_t) len, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    *value = ngx_http_tiktok_media_be(p, (ngx_uint_t) len);

    return NGX_OK;
}


/* IEEE 754 big-endian, 4 or 8 bytes; an empty one is 0 */

static ngx_int_t
ngx_http_tiktok_media_float(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *elt, double *value)
{
    off_t       len;
    float       f;
    uint32_t    u32;
    uint64_t    bits;
    ngx_int_t   rc;

    len = elt->end - elt->data;

    if (len != 0 && len != 4 && len != 8) {
        return NGX_DECLINED;
    }

    rc = ngx_http_tiktok_media_uint(ctx, elt, &bits);
    if (rc != NGX_OK) {
        return rc;
    }

    if (len == 4) {
        u32 = (uint32_t) bits;
        ngx_memcpy(&f, &u32, sizeof(float));
        *value = f;

    } else {
        /* all bits zero, as an empty one gives, is 0.0 */
        ngx_memcpy(value, &bits, sizeof(double));
    }

    return NGX_OK;
}


/*
 * A child of the EBML header.  DocType "webm" only: a Matroska (.mkv) file
 * has the same structure and may hold the same codecs, but TikTok lists
 * WebM, not Matroska, and MKV usually carries codecs (H.264 with AC-3,
 * subtitles, several audio tracks) that its checks refuse after the
 * upload: refusing it here says why at once.
 */

static ngx_int_t
ngx_http_tiktok_media_header(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *elt, void *data)
{
    off_t                     len;
    u_char                   *p;
    uint64_t                  version;
    ngx_int_t                 rc;
    ngx_http_tiktok_media_t  *media;

    if (elt->id == NGX_HTTP_TIKTOK_EBML_READ_VERSION) {
        rc = ngx_http_tiktok_media_uint(ctx, elt, &version);
        if (rc != NGX_OK) {
            return rc;
        }

        /* a later EBML would need a reader we are not */
        return version > 1 ? NGX_DECLINED : NGX_OK;
    }

    if (elt->id != NGX_HTTP_TIKTOK_EBML_DOCTYPE) {
        return NGX_OK;
    }

    len = elt->end - elt->data;

    if (len == 0 || len > NGX_HTTP_TIKTOK_MEDIA_MAX_DOCTYPE) {
        return NGX_DECLINED;
    }

    rc = ngx_http_tiktok_media_payload(ctx, elt, (size_t) len, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    /* EBML strings may be padded with zero bytes */
    while (len > 0 && p[len - 1] == '\0') {
        len--;
    }

    media = data;

    if (len == 4 && ngx_memcmp(p, "webm", 4) == 0) {
        media->container = NGX_HTTP_TIKTOK_MEDIA_WEBM;
        return NGX_OK;
    }

    if (len == 8 && ngx_memcmp(p, "matroska", 8) == 0) {
        media->container = NGX_HTTP_TIKTOK_MEDIA_MATROSKA;
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_tiktok_media_segment(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *segment, ngx_http_tiktok_media_t *media)
{
    off_t                          offset;
    ngx_int_t                      rc;
    ngx_http_tiktok_media_node_t   elt;
    ngx_http_tiktok_media_movie_t  movie;

    ngx_memzero(&movie, sizeof(ngx_http_tiktok_media_movie_t));

    movie.timescale = NGX_HTTP_TIKTOK_MEDIA_TIMECODE_SCALE;
    movie.info_at = -1;
    movie.tracks_at = -1;

    for (offset = segment->data;
         offset < segment->end && !(movie.info && movie.tracks);
         offset = elt.end)
    {
        rc = ngx_http_tiktok_media_element(ctx, offset, segment->end, &elt);
        if (rc != NGX_OK) {
            return rc;
        }

        /* the media itself: what we need comes before it, or is seeked */
        if (elt.id == NGX_HTTP_TIKTOK_EBML_CLUSTER) {
            break;
        }

        /* only a Segment or a Cluster may be written without a size */
        if (elt.unknown) {
            return NGX_DECLINED;
        }

        rc = ngx_http_tiktok_media_level1(ctx, &elt, &movie);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (!movie.info && movie.info_at >= 0) {
        rc = ngx_http_tiktok_media_seek_to(ctx, segment, movie.info_at,
                                           NGX_HTTP_TIKTOK_EBML_INFO, &movie);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (!movie.tracks && movie.tracks_at >= 0) {
        rc = ngx_http_tiktok_media_seek_to(ctx, segment, movie.tracks_at,
                                           NGX_HTTP_TIKTOK_EBML_TRACKS,
                                           &movie);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (!movie.info || !movie.tracks || !movie.track.video) {
        return NGX_DECLINED;
    }

    rc = ngx_http_tiktok_media_webm_ms(&movie, &media->duration_ms);
    if (rc != NGX_OK) {
        return rc;
    }

    media->width = movie.track.width;
    media->height = movie.track.height;

    return NGX_OK;
}


/* Info and Tracks are read once; a walk that fails fails the probe */

static ngx_int_t
ngx_http_tiktok_media_level1(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *elt, ngx_http_tiktok_media_movie_t *movie)
{
    switch (elt->id) {

    case NGX_HTTP_TIKTOK_EBML_SEEKHEAD:
        return ngx_http_tiktok_media_walk(ctx, elt,
                                          ngx_http_tiktok_media_seekhead,
                                          movie);

    case NGX_HTTP_TIKTOK_EBML_INFO:
        if (movie->info) {
            return NGX_OK;
        }

        movie->info = 1;

        return ngx_http_tiktok_media_walk(ctx, elt, ngx_http_tiktok_media_info,
                                          movie);

    case NGX_HTTP_TIKTOK_EBML_TRACKS:
        if (movie->tracks) {
            return NGX_OK;
        }

        movie->tracks = 1;

        return ngx_http_tiktok_media_walk(ctx, elt,
                                          ngx_http_tiktok_media_tracks, movie);

    default:
        return NGX_OK;
    }
}


/* at is relative to the Segment's data, as SeekPosition is */

static ngx_int_t
ngx_http_tiktok_media_seek_to(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *segment, off_t at, uint64_t id,
    ngx_http_tiktok_media_movie_t *movie)
{
    ngx_int_t                     rc;
    ngx_http_tiktok_media_node_t  elt;

    if (at >= segment->end - segment->data) {
        return NGX_DECLINED;
    }

    rc = ngx_http_tiktok_media_element(ctx, segment->data + at, segment->end,
                                       &elt);
    if (rc != NGX_OK) {
        return rc;
    }

    if (elt.id != id || elt.unknown) {
        return NGX_DECLINED;
    }

    return ngx_http_tiktok_media_level1(ctx, &elt, movie);
}


/* a child of a SeekHead: a Seek says where Info or Tracks are */

static ngx_int_t
ngx_http_tiktok_media_seekhead(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *elt, void *data)
{
    ngx_int_t                       rc;
    ngx_http_tiktok_media_seek_t    seek;
    ngx_http_tiktok_media_movie_t  *movie;

    if (elt->id != NGX_HTTP_TIKTOK_EBML_SEEK) {
        return NGX_OK;
    }

    seek.id = 0;
    seek.position = (uint64_t) -1;

    rc = ngx_http_tiktok_media_walk(ctx, elt, ngx_http_tiktok_media_seek,
                                    &seek);
    if (rc != NGX_OK) {
        return rc;
    }

    /* a position past the file cannot be followed; seek_to() checks more */
    if (seek.position >= (uint64_t) ctx->size) {
        return NGX_OK;
    }

    movie = data;

    if (seek.id == NGX_HTTP_TIKTOK_EBML_INFO && movie->info_at < 0) {
        movie->info_at = (off_t) seek.position;

    } else if (seek.id == NGX_HTTP_TIKTOK_EBML_TRACKS && movie->tracks_at < 0)
    {
        movie->tracks_at = (off_t) seek.position;
    }

    return NGX_OK;
}


/* a child of a Seek: SeekID holds an element id as bytes */

static ngx_int_t
ngx_http_tiktok_media_seek(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *elt, void *data)
{
    ngx_http_tiktok_media_seek_t  *seek;

    seek = data;

    if (elt->id == NGX_HTTP_TIKTOK_EBML_SEEK_POSITION) {
        return ngx_http_tiktok_media_uint(ctx, elt, &seek->position);
    }

    if (elt->id != NGX_HTTP_TIKTOK_EBML_SEEK_ID) {
        return NGX_OK;
    }

    /* an id is at most 4 bytes; read as an unsigned int */
    if (elt->end - elt->data > 4) {
        return NGX_DECLINED;
    }

    return ngx_http_tiktok_media_uint(ctx, elt, &seek->id);
}


static ngx_int_t
ngx_http_tiktok_media_info(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *elt, void *data)
{
    uint64_t                        scale;
    ngx_int_t                       rc;
    ngx_http_tiktok_media_movie_t  *movie;

    movie = data;

    if (elt->id == NGX_HTTP_TIKTOK_EBML_DURATION) {
        movie->has_duration = 1;
        return ngx_http_tiktok_media_float(ctx, elt, &movie->ticks);
    }

    if (elt->id != NGX_HTTP_TIKTOK_EBML_TIMECODE_SCALE) {
        return NGX_OK;
    }

    rc = ngx_http_tiktok_media_uint(ctx, elt, &scale);
    if (rc != NGX_OK) {
        return rc;
    }

    /* an empty element means its default (RFC 8794, 6.x) */
    if (elt->end == elt->data) {
        scale = NGX_HTTP_TIKTOK_MEDIA_TIMECODE_SCALE;
    }

    if (scale == 0) {
        return NGX_DECLINED;
    }

    movie->timescale = scale;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tiktok_media_tracks(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *elt, void *data)
{
    ngx_http_tiktok_media_movie_t  *movie;

    movie = data;

    if (elt->id != NGX_HTTP_TIKTOK_EBML_TRACK_ENTRY || movie->track.video) {
        return NGX_OK;
    }

    return ngx_http_tiktok_media_track(ctx, elt, ngx_http_tiktok_media_entry,
                                       movie);
}


/* a child of a TrackEntry: its TrackType, and its Video's pixels */

static ngx_int_t
ngx_http_tiktok_media_entry(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *elt, void *data)
{
    uint64_t                        type;
    ngx_int_t                       rc;
    ngx_http_tiktok_media_track_t  *track;

    track = data;

    if (elt->id == NGX_HTTP_TIKTOK_EBML_VIDEO) {
        return ngx_http_tiktok_media_walk(ctx, elt,
                                          ngx_http_tiktok_media_video, track);
    }

    if (elt->id != NGX_HTTP_TIKTOK_EBML_TRACK_TYPE) {
        return NGX_OK;
    }

    rc = ngx_http_tiktok_media_uint(ctx, elt, &type);
    if (rc != NGX_OK) {
        return rc;
    }

    track->video = (type == NGX_HTTP_TIKTOK_EBML_VIDEO_TRACK);

    return NGX_OK;
}


static ngx_int_t
ngx_http_tiktok_media_video(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *elt, void *data)
{
    uint64_t                        value;
    ngx_int_t                       rc;
    ngx_http_tiktok_media_track_t  *track;

    if (elt->id != NGX_HTTP_TIKTOK_EBML_PIXEL_WIDTH
        && elt->id != NGX_HTTP_TIKTOK_EBML_PIXEL_HEIGHT)
    {
        return NGX_OK;
    }

    rc = ngx_http_tiktok_media_uint(ctx, elt, &value);
    if (rc != NGX_OK) {
        return rc;
    }

    if (value > NGX_HTTP_TIKTOK_MEDIA_MAX_PIXELS) {
        return NGX_DECLINED;
    }

    track = data;

    if (elt->id == NGX_HTTP_TIKTOK_EBML_PIXEL_WIDTH) {
        track->width = (ngx_uint_t) value;

    } else {
        track->height = (ngx_uint_t) value;
    }

    return NGX_OK;
}


/*
 * Duration counts TimecodeScale nanoseconds, as a float: rounded to the
 * nearest millisecond, since a float of 1234.5 ms ticks means that.  NaN,
 * negatives and infinities fail the range test (NaN fails every compare).
 */

static ngx_int_t
ngx_http_tiktok_media_webm_ms(ngx_http_tiktok_media_movie_t *movie,
    uint64_t *ms)
{
    double  value;

    if (!movie->has_duration) {
        return NGX_DECLINED;
    }

    value = movie->ticks * (double) movie->timescale / 1000000.0;

    if (!(value >= 0.5 && value <= (double) NGX_HTTP_TIKTOK_MEDIA_MAX_MS)) {
        return NGX_DECLINED;
    }

    *ms = (uint64_t) (value + 0.5);

    if (*ms > NGX_HTTP_TIKTOK_MEDIA_MAX_MS) {
        *ms = 0;
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* n bytes, at most 8, big-endian */

static uint64_t
ngx_http_tiktok_media_be(const u_char *p, ngx_uint_t n)
{
    uint64_t  value;

    for (value = 0; n > 0; n--) {
        value = value << 8 | *p++;
    }

    return value;
}
