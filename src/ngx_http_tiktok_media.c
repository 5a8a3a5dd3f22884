
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
    uint64_t                        timescale;
    uint64_t                        duration;      /* 0 when unknown */
    uint64_t                        fragments;     /* mehd, 0 when none */
    ngx_uint_t                      mvhd;
    ngx_uint_t                      video;
    ngx_uint_t                      width;
    ngx_uint_t                      height;
} ngx_http_tiktok_media_movie_t;


typedef struct {
    uint64_t                        timecode_scale;
    double                          duration;
    off_t                           info_at;       /* SeekHead, or -1 */
    off_t                           tracks_at;
    ngx_uint_t                      info;
    ngx_uint_t                      has_duration;
    ngx_uint_t                      tracks;
    ngx_uint_t                      video;
    ngx_uint_t                      width;
    ngx_uint_t                      height;
} ngx_http_tiktok_media_webm_t;


static ngx_int_t ngx_http_tiktok_media_get(ngx_http_tiktok_media_ctx_t *ctx,
    off_t offset, size_t n, off_t ahead, u_char **p);
static ngx_int_t ngx_http_tiktok_media_box(ngx_http_tiktok_media_ctx_t *ctx,
    off_t offset, off_t end, ngx_uint_t top,
    ngx_http_tiktok_media_node_t *box);
static ngx_int_t ngx_http_tiktok_media_isobmff(
    ngx_http_tiktok_media_ctx_t *ctx, ngx_http_tiktok_media_t *media);
static ngx_int_t ngx_http_tiktok_media_first(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *box, ngx_http_tiktok_media_t *media);
static ngx_uint_t ngx_http_tiktok_media_brand(const u_char *brand);
static ngx_int_t ngx_http_tiktok_media_moov(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *moov, ngx_http_tiktok_media_movie_t *movie);
static ngx_int_t ngx_http_tiktok_media_mvhd(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *mvhd, ngx_http_tiktok_media_movie_t *movie);
static ngx_int_t ngx_http_tiktok_media_mvex(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *mvex, ngx_http_tiktok_media_movie_t *movie);
static ngx_int_t ngx_http_tiktok_media_trak(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *trak, ngx_http_tiktok_media_movie_t *movie);
static ngx_int_t ngx_http_tiktok_media_tkhd(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *tkhd, ngx_uint_t *width,
    ngx_uint_t *height);
static ngx_int_t ngx_http_tiktok_media_mdia(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *mdia, ngx_uint_t *video);
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
static ngx_int_t ngx_http_tiktok_media_ebml_header(
    ngx_http_tiktok_media_ctx_t *ctx, ngx_http_tiktok_media_node_t *header,
    ngx_http_tiktok_media_t *media);
static ngx_int_t ngx_http_tiktok_media_doctype(
    ngx_http_tiktok_media_ctx_t *ctx, ngx_http_tiktok_media_node_t *elt,
    ngx_http_tiktok_media_t *media);
static ngx_int_t ngx_http_tiktok_media_segment(
    ngx_http_tiktok_media_ctx_t *ctx, ngx_http_tiktok_media_node_t *segment,
    ngx_http_tiktok_media_t *media);
static ngx_int_t ngx_http_tiktok_media_level1(
    ngx_http_tiktok_media_ctx_t *ctx, ngx_http_tiktok_media_node_t *elt,
    ngx_http_tiktok_media_webm_t *webm);
static ngx_int_t ngx_http_tiktok_media_seek_to(
    ngx_http_tiktok_media_ctx_t *ctx, ngx_http_tiktok_media_node_t *segment,
    off_t at, uint64_t id, ngx_http_tiktok_media_webm_t *webm);
static ngx_int_t ngx_http_tiktok_media_seekhead(
    ngx_http_tiktok_media_ctx_t *ctx, ngx_http_tiktok_media_node_t *seekhead,
    ngx_http_tiktok_media_webm_t *webm);
static ngx_int_t ngx_http_tiktok_media_seek(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *seek, ngx_http_tiktok_media_webm_t *webm);
static ngx_int_t ngx_http_tiktok_media_info(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *info, ngx_http_tiktok_media_webm_t *webm);
static ngx_int_t ngx_http_tiktok_media_tracks(
    ngx_http_tiktok_media_ctx_t *ctx, ngx_http_tiktok_media_node_t *tracks,
    ngx_http_tiktok_media_webm_t *webm);
static ngx_int_t ngx_http_tiktok_media_track(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *entry, ngx_http_tiktok_media_webm_t *webm);
static ngx_int_t ngx_http_tiktok_media_pixels(
    ngx_http_tiktok_media_ctx_t *ctx, ngx_http_tiktok_media_node_t *video,
    ngx_uint_t *width, ngx_uint_t *height);
static ngx_int_t ngx_http_tiktok_media_webm_ms(
    ngx_http_tiktok_media_webm_t *webm, uint64_t *ms);
static uint32_t ngx_http_tiktok_media_be32(const u_char *p);
static uint64_t ngx_http_tiktok_media_be64(const u_char *p);


/*
 * Major brands that say "this is an MP4 video".  A brand not listed here is
 * not refused outright: its compatible brands decide (an iPhone's "M4V "
 * lists "isom" too).
 */

static const char  *ngx_http_tiktok_media_mp4_brands[] = {
    "isom", "iso2", "iso3", "iso4", "iso5", "iso6", "iso7", "iso8", "iso9",
    "mp41", "mp42", "avc1", "dash", "cmfc", "cmf2", "M4V ", "M4VH", "M4VP",
    "MSNV", "XAVC", "f4v ", NULL
};


/*
 * Major brands of ISO files that are not MP4 video, whatever they list as
 * compatible: 3GPP (H.263/AMR phones), HEIF and AVIF stills, audio books
 * and music, camera raw, JPEG 2000.  "3g" is a prefix.
 */

static const char  *ngx_http_tiktok_media_other_brands[] = {
    "heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1", "avif",
    "avis", "M4A ", "M4B ", "M4P ", "F4A ", "F4B ", "crx ", "jp2 ", "mjp2",
    NULL
};


/* older QuickTime files have no "ftyp": they start with one of these */

static const char  *ngx_http_tiktok_media_qt_first[] = {
    "moov", "mdat", "wide", "free", "skip", "pnot", NULL
};


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

    if (ngx_http_tiktok_media_be32(p) == NGX_HTTP_TIKTOK_EBML) {
        rc = ngx_http_tiktok_media_webm(&ctx, media);

    } else {
        rc = ngx_http_tiktok_media_isobmff(&ctx, media);
    }

    if (rc != NGX_OK) {
        media->duration_ms = 0;
        media->width = 0;
        media->height = 0;
    }

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

    if (offset < 0 || offset > ctx->size || n > sizeof(ctx->buf)) {
        return NGX_DECLINED;
    }

    left = ctx->size - offset;

    if ((off_t) n > left) {
        return NGX_DECLINED;
    }

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

    size = ngx_http_tiktok_media_be32(p);
    ngx_memcpy(box->type, p + 4, 4);
    header = 8;

    if (size == 1) {
        if (left < 16) {
            return NGX_DECLINED;
        }

        size = ngx_http_tiktok_media_be64(p + 8);
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
    box->id = 0;
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

            rc = ngx_http_tiktok_media_moov(ctx, &box, &movie);
            if (rc != NGX_OK) {
                return rc;
            }
        }
    }

    if (!moov || !mdat || !movie.mvhd || !movie.video) {
        return NGX_DECLINED;
    }

    /* a fragmented file may leave mvhd's duration to "mehd" */
    duration = movie.duration ? movie.duration : movie.fragments;

    rc = ngx_http_tiktok_media_ms(duration, movie.timescale,
                                  &media->duration_ms);
    if (rc != NGX_OK) {
        return rc;
    }

    media->width = movie.width;
    media->height = movie.height;

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

        for (i = 0; ngx_http_tiktok_media_qt_first[i]; i++) {
            if (ngx_http_tiktok_media_is(box->type,
                                         ngx_http_tiktok_media_qt_first[i]))
            {
                media->container = NGX_HTTP_TIKTOK_MEDIA_MOV;
                media->content_type = "video/quicktime";
                return NGX_OK;
            }
        }

        return NGX_DECLINED;
    }

    /* major brand, minor version, then compatible brands */
    if (box->end - box->data < 8) {
        return NGX_DECLINED;
    }

    rc = ngx_http_tiktok_media_get(ctx, box->data, 8, box->end, &p);
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

    switch (kind) {

    case NGX_HTTP_TIKTOK_MEDIA_MP4:
        media->container = NGX_HTTP_TIKTOK_MEDIA_MP4;
        media->content_type = "video/mp4";
        return NGX_OK;

    case NGX_HTTP_TIKTOK_MEDIA_MOV:
        media->container = NGX_HTTP_TIKTOK_MEDIA_MOV;
        media->content_type = "video/quicktime";
        return NGX_OK;

    default:
        return NGX_DECLINED;
    }
}


/* MP4, MOV, OTHER (a family we refuse), or UNKNOWN */

static ngx_uint_t
ngx_http_tiktok_media_brand(const u_char *brand)
{
    ngx_uint_t  i;

    if (ngx_http_tiktok_media_is(brand, "qt  ")) {
        return NGX_HTTP_TIKTOK_MEDIA_MOV;
    }

    for (i = 0; ngx_http_tiktok_media_mp4_brands[i]; i++) {
        if (ngx_http_tiktok_media_is(brand,
                                     ngx_http_tiktok_media_mp4_brands[i]))
        {
            return NGX_HTTP_TIKTOK_MEDIA_MP4;
        }
    }

    if (brand[0] == '3' && brand[1] == 'g') {
        return NGX_HTTP_TIKTOK_MEDIA_OTHER;
    }

    for (i = 0; ngx_http_tiktok_media_other_brands[i]; i++) {
        if (ngx_http_tiktok_media_is(brand,
                                     ngx_http_tiktok_media_other_brands[i]))
        {
            return NGX_HTTP_TIKTOK_MEDIA_OTHER;
        }
    }

    return NGX_HTTP_TIKTOK_MEDIA_UNKNOWN;
}


/*
 * The children of "moov" that matter: "mvhd" (timescale and duration),
 * "mvex"/"mehd" (the duration of a fragmented file) and each "trak" until
 * a video one is found.  Up to 7 bytes of padding at the end are allowed:
 * old QuickTime writers end atom lists with a 32-bit zero.
 */

static ngx_int_t
ngx_http_tiktok_media_moov(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *moov, ngx_http_tiktok_media_movie_t *movie)
{
    off_t                         offset;
    ngx_int_t                     rc;
    ngx_http_tiktok_media_node_t  box;

    for (offset = moov->data; moov->end - offset >= 8; offset = box.end) {

        rc = ngx_http_tiktok_media_box(ctx, offset, moov->end, 0, &box);
        if (rc != NGX_OK) {
            return rc;
        }

        if (ngx_http_tiktok_media_is(box.type, "mvhd")) {
            if (movie->mvhd) {
                return NGX_DECLINED;
            }

            rc = ngx_http_tiktok_media_mvhd(ctx, &box, movie);

        } else if (ngx_http_tiktok_media_is(box.type, "mvex")) {
            rc = ngx_http_tiktok_media_mvex(ctx, &box, movie);

        } else if (ngx_http_tiktok_media_is(box.type, "trak")
                   && !movie->video)
        {
            rc = ngx_http_tiktok_media_trak(ctx, &box, movie);

        } else {
            rc = NGX_OK;
        }

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/*
 * version 0: flags, creation, modification, timescale, duration, 32 bits
 * each; version 1: creation, modification and duration are 64 bits.  A
 * duration of all ones means "unknown".
 */

static ngx_int_t
ngx_http_tiktok_media_mvhd(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *mvhd, ngx_http_tiktok_media_movie_t *movie)
{
    u_char     *p;
    size_t      need;
    ngx_int_t   rc;

    rc = ngx_http_tiktok_media_get(ctx, mvhd->data, 1, mvhd->end, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    switch (p[0]) {

    case 0:
        need = 20;
        break;

    case 1:
        need = 32;
        break;

    default:
        return NGX_DECLINED;
    }

    if (mvhd->end - mvhd->data < (off_t) need) {
        return NGX_DECLINED;
    }

    rc = ngx_http_tiktok_media_get(ctx, mvhd->data, need, mvhd->end, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    if (p[0] == 0) {
        movie->timescale = ngx_http_tiktok_media_be32(p + 12);
        movie->duration = ngx_http_tiktok_media_be32(p + 16);

        if (movie->duration == 0xffffffff) {
            movie->duration = 0;
        }

    } else {
        movie->timescale = ngx_http_tiktok_media_be32(p + 20);
        movie->duration = ngx_http_tiktok_media_be64(p + 24);

        if (movie->duration == 0xffffffffffffffffULL) {
            movie->duration = 0;
        }
    }

    movie->mvhd = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tiktok_media_mvex(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *mvex, ngx_http_tiktok_media_movie_t *movie)
{
    off_t                         offset;
    u_char                       *p;
    size_t                        need;
    ngx_int_t                     rc;
    ngx_http_tiktok_media_node_t  box;

    for (offset = mvex->data; mvex->end - offset >= 8; offset = box.end) {

        rc = ngx_http_tiktok_media_box(ctx, offset, mvex->end, 0, &box);
        if (rc != NGX_OK) {
            return rc;
        }

        if (!ngx_http_tiktok_media_is(box.type, "mehd")) {
            continue;
        }

        /* version and flags, then a 32- or 64-bit fragment_duration */
        rc = ngx_http_tiktok_media_get(ctx, box.data, 1, box.end, &p);
        if (rc != NGX_OK) {
            return rc;
        }

        if (p[0] > 1) {
            return NGX_DECLINED;
        }

        need = p[0] == 0 ? 8 : 12;

        if (box.end - box.data < (off_t) need) {
            return NGX_DECLINED;
        }

        rc = ngx_http_tiktok_media_get(ctx, box.data, need, box.end, &p);
        if (rc != NGX_OK) {
            return rc;
        }

        movie->fragments = p[0] == 0 ? ngx_http_tiktok_media_be32(p + 4)
                                     : ngx_http_tiktok_media_be64(p + 4);

        return NGX_OK;
    }

    return NGX_OK;
}


/*
 * A track is video when its "mdia"/"hdlr" says "vide" (QuickTime's
 * component subtype sits at the same place); its size comes from "tkhd".
 */

static ngx_int_t
ngx_http_tiktok_media_trak(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *trak, ngx_http_tiktok_media_movie_t *movie)
{
    off_t                         offset;
    ngx_int_t                     rc;
    ngx_uint_t                    width, height, video;
    ngx_http_tiktok_media_node_t  box;

    width = 0;
    height = 0;
    video = 0;

    for (offset = trak->data; trak->end - offset >= 8; offset = box.end) {

        rc = ngx_http_tiktok_media_box(ctx, offset, trak->end, 0, &box);
        if (rc != NGX_OK) {
            return rc;
        }

        if (ngx_http_tiktok_media_is(box.type, "tkhd")) {
            rc = ngx_http_tiktok_media_tkhd(ctx, &box, &width, &height);

        } else if (ngx_http_tiktok_media_is(box.type, "mdia")) {
            rc = ngx_http_tiktok_media_mdia(ctx, &box, &video);

        } else {
            rc = NGX_OK;
        }

        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (video) {
        movie->video = 1;
        movie->width = width;
        movie->height = height;
    }

    return NGX_OK;
}


/*
 * version 0 puts the 3x3 matrix at 40 and width, height (16.16) at 76 and
 * 80; version 1, with 64-bit times, 12 bytes later.  A phone's portrait
 * video is stored landscape with a 90 degree matrix (a = d = 0): the size
 * reported is the one displayed.
 */

static ngx_int_t
ngx_http_tiktok_media_tkhd(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *tkhd, ngx_uint_t *width,
    ngx_uint_t *height)
{
    u_char      *p, *m;
    size_t       need;
    ngx_int_t    rc;
    ngx_uint_t   w, h;

    rc = ngx_http_tiktok_media_get(ctx, tkhd->data, 1, tkhd->end, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    if (p[0] > 1) {
        return NGX_DECLINED;
    }

    need = p[0] == 0 ? 84 : 96;

    if (tkhd->end - tkhd->data < (off_t) need) {
        return NGX_DECLINED;
    }

    rc = ngx_http_tiktok_media_get(ctx, tkhd->data, need, tkhd->end, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    m = p + (p[0] == 0 ? 40 : 52);

    w = ngx_http_tiktok_media_be32(m + 36) >> 16;
    h = ngx_http_tiktok_media_be32(m + 40) >> 16;

    if (ngx_http_tiktok_media_be32(m) == 0
        && ngx_http_tiktok_media_be32(m + 16) == 0)
    {
        *width = h;
        *height = w;

    } else {
        *width = w;
        *height = h;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tiktok_media_mdia(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *mdia, ngx_uint_t *video)
{
    off_t                         offset;
    u_char                       *p;
    ngx_int_t                     rc;
    ngx_http_tiktok_media_node_t  box;

    for (offset = mdia->data; mdia->end - offset >= 8; offset = box.end) {

        rc = ngx_http_tiktok_media_box(ctx, offset, mdia->end, 0, &box);
        if (rc != NGX_OK) {
            return rc;
        }

        if (!ngx_http_tiktok_media_is(box.type, "hdlr")) {
            continue;
        }

        /* version and flags, pre_defined (QuickTime: "mhlr"), type */
        if (box.end - box.data < 12) {
            return NGX_DECLINED;
        }

        rc = ngx_http_tiktok_media_get(ctx, box.data, 12, box.end, &p);
        if (rc != NGX_OK) {
            return rc;
        }

        *video = ngx_http_tiktok_media_is(p + 8, "vide");

        /* the first "hdlr" of "mdia" is the track's; others are data's */
        return NGX_OK;
    }

    return NGX_OK;
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

    rc = ngx_http_tiktok_media_ebml_header(ctx, &header, media);
    if (rc != NGX_OK) {
        return rc;
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
    ngx_uint_t  i, id_len, size_len;

    if (++ctx->items > NGX_HTTP_TIKTOK_MEDIA_MAX_ITEMS) {
        return NGX_DECLINED;
    }

    left = end - offset;

    if (left < 2) {
        return NGX_DECLINED;
    }

    rc = ngx_http_tiktok_media_get(ctx, offset, 1, end, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    id_len = ngx_http_tiktok_media_vint_len(p[0]);

    if (id_len == 0 || id_len > 4 || left < (off_t) id_len + 1) {
        return NGX_DECLINED;
    }

    rc = ngx_http_tiktok_media_get(ctx, offset, id_len + 1, end, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    size_len = ngx_http_tiktok_media_vint_len(p[id_len]);

    if (size_len == 0 || left < (off_t) (id_len + size_len)) {
        return NGX_DECLINED;
    }

    rc = ngx_http_tiktok_media_get(ctx, offset, id_len + size_len, end, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    elt->id = 0;

    for (i = 0; i < id_len; i++) {
        elt->id = elt->id << 8 | p[i];
    }

    size = p[id_len] & (0xff >> size_len);

    for (i = 1; i < size_len; i++) {
        size = size << 8 | p[id_len + i];
    }

    unknown = ((uint64_t) 1 << (7 * size_len)) - 1;

    elt->data = offset + (off_t) (id_len + size_len);
    ngx_memzero(elt->type, 4);

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
    ngx_uint_t  i;

    len = elt->end - elt->data;

    if (elt->unknown || len > 8) {
        return NGX_DECLINED;
    }

    *value = 0;

    if (len == 0) {
        return NGX_OK;
    }

    rc = ngx_http_tiktok_media_get(ctx, elt->data, (size_t) len, elt->end,
                                   &p);
    if (rc != NGX_OK) {
        return rc;
    }

    for (i = 0; i < (ngx_uint_t) len; i++) {
        *value = *value << 8 | p[i];
    }

    return NGX_OK;
}


/* IEEE 754 big-endian, 4 or 8 bytes; an empty one is 0 */

static ngx_int_t
ngx_http_tiktok_media_float(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *elt, double *value)
{
    float       f;
    double      d;
    u_char     *p;
    uint32_t    u32;
    uint64_t    u64;
    ngx_int_t   rc;

    if (elt->unknown) {
        return NGX_DECLINED;
    }

    switch (elt->end - elt->data) {

    case 0:
        *value = 0;
        return NGX_OK;

    case 4:
        rc = ngx_http_tiktok_media_get(ctx, elt->data, 4, elt->end, &p);
        if (rc != NGX_OK) {
            return rc;
        }

        u32 = ngx_http_tiktok_media_be32(p);
        ngx_memcpy(&f, &u32, sizeof(float));
        *value = f;

        return NGX_OK;

    case 8:
        rc = ngx_http_tiktok_media_get(ctx, elt->data, 8, elt->end, &p);
        if (rc != NGX_OK) {
            return rc;
        }

        u64 = ngx_http_tiktok_media_be64(p);
        ngx_memcpy(&d, &u64, sizeof(double));
        *value = d;

        return NGX_OK;

    default:
        return NGX_DECLINED;
    }
}


static ngx_int_t
ngx_http_tiktok_media_ebml_header(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *header, ngx_http_tiktok_media_t *media)
{
    off_t                         offset;
    uint64_t                      version;
    ngx_int_t                     rc;
    ngx_http_tiktok_media_node_t  elt;

    for (offset = header->data; offset < header->end; offset = elt.end) {

        rc = ngx_http_tiktok_media_element(ctx, offset, header->end, &elt);
        if (rc != NGX_OK) {
            return rc;
        }

        if (elt.unknown) {
            return NGX_DECLINED;
        }

        switch (elt.id) {

        case NGX_HTTP_TIKTOK_EBML_READ_VERSION:
            rc = ngx_http_tiktok_media_uint(ctx, &elt, &version);
            if (rc != NGX_OK) {
                return rc;
            }

            /* a later EBML would need a reader we are not */
            if (version > 1) {
                return NGX_DECLINED;
            }

            break;

        case NGX_HTTP_TIKTOK_EBML_DOCTYPE:
            rc = ngx_http_tiktok_media_doctype(ctx, &elt, media);
            if (rc != NGX_OK) {
                return rc;
            }

            break;

        default:
            break;
        }
    }

    return media->container == NGX_HTTP_TIKTOK_MEDIA_WEBM ? NGX_OK
                                                          : NGX_DECLINED;
}


/*
 * "webm" only.  A Matroska (.mkv) file has the same structure and may hold
 * the same codecs, but TikTok lists WebM, not Matroska, and MKV usually
 * carries codecs (H.264 with AC-3, subtitles, several audio tracks) that
 * its checks refuse after the upload: refusing it here says why at once.
 */

static ngx_int_t
ngx_http_tiktok_media_doctype(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *elt, ngx_http_tiktok_media_t *media)
{
    off_t       len;
    u_char     *p;
    ngx_int_t   rc;

    len = elt->end - elt->data;

    if (len == 0 || len > NGX_HTTP_TIKTOK_MEDIA_MAX_DOCTYPE) {
        return NGX_DECLINED;
    }

    rc = ngx_http_tiktok_media_get(ctx, elt->data, (size_t) len, elt->end,
                                   &p);
    if (rc != NGX_OK) {
        return rc;
    }

    /* EBML strings may be padded with zero bytes */
    while (len > 0 && p[len - 1] == '\0') {
        len--;
    }

    if (len == 4 && ngx_memcmp(p, "webm", 4) == 0) {
        media->container = NGX_HTTP_TIKTOK_MEDIA_WEBM;
        media->content_type = "video/webm";
        return NGX_OK;
    }

    if (len == 8 && ngx_memcmp(p, "matroska", 8) == 0) {
        media->container = NGX_HTTP_TIKTOK_MEDIA_MATROSKA;
        media->content_type = "video/x-matroska";
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_tiktok_media_segment(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *segment, ngx_http_tiktok_media_t *media)
{
    off_t                         offset;
    ngx_int_t                     rc;
    ngx_http_tiktok_media_node_t  elt;
    ngx_http_tiktok_media_webm_t  webm;

    ngx_memzero(&webm, sizeof(ngx_http_tiktok_media_webm_t));

    webm.timecode_scale = NGX_HTTP_TIKTOK_MEDIA_TIMECODE_SCALE;
    webm.info_at = -1;
    webm.tracks_at = -1;

    for (offset = segment->data;
         offset < segment->end && !(webm.info && webm.tracks);
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

        rc = ngx_http_tiktok_media_level1(ctx, &elt, &webm);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (!webm.info && webm.info_at >= 0) {
        rc = ngx_http_tiktok_media_seek_to(ctx, segment, webm.info_at,
                                           NGX_HTTP_TIKTOK_EBML_INFO, &webm);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (!webm.tracks && webm.tracks_at >= 0) {
        rc = ngx_http_tiktok_media_seek_to(ctx, segment, webm.tracks_at,
                                           NGX_HTTP_TIKTOK_EBML_TRACKS,
                                           &webm);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (!webm.info || !webm.tracks || !webm.video) {
        return NGX_DECLINED;
    }

    rc = ngx_http_tiktok_media_webm_ms(&webm, &media->duration_ms);
    if (rc != NGX_OK) {
        return rc;
    }

    media->width = webm.width;
    media->height = webm.height;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tiktok_media_level1(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *elt, ngx_http_tiktok_media_webm_t *webm)
{
    switch (elt->id) {

    case NGX_HTTP_TIKTOK_EBML_SEEKHEAD:
        return ngx_http_tiktok_media_seekhead(ctx, elt, webm);

    case NGX_HTTP_TIKTOK_EBML_INFO:
        return webm->info ? NGX_OK
                          : ngx_http_tiktok_media_info(ctx, elt, webm);

    case NGX_HTTP_TIKTOK_EBML_TRACKS:
        return webm->tracks ? NGX_OK
                            : ngx_http_tiktok_media_tracks(ctx, elt, webm);

    default:
        return NGX_OK;
    }
}


/* at is relative to the Segment's data, as SeekPosition is */

static ngx_int_t
ngx_http_tiktok_media_seek_to(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *segment, off_t at, uint64_t id,
    ngx_http_tiktok_media_webm_t *webm)
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

    return ngx_http_tiktok_media_level1(ctx, &elt, webm);
}


static ngx_int_t
ngx_http_tiktok_media_seekhead(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *seekhead, ngx_http_tiktok_media_webm_t *webm)
{
    off_t                         offset;
    ngx_int_t                     rc;
    ngx_http_tiktok_media_node_t  elt;

    for (offset = seekhead->data; offset < seekhead->end; offset = elt.end) {

        rc = ngx_http_tiktok_media_element(ctx, offset, seekhead->end, &elt);
        if (rc != NGX_OK) {
            return rc;
        }

        if (elt.unknown) {
            return NGX_DECLINED;
        }

        if (elt.id == NGX_HTTP_TIKTOK_EBML_SEEK) {
            rc = ngx_http_tiktok_media_seek(ctx, &elt, webm);
            if (rc != NGX_OK) {
                return rc;
            }
        }
    }

    return NGX_OK;
}


/* SeekID holds an element id as bytes; SeekPosition is an unsigned int */

static ngx_int_t
ngx_http_tiktok_media_seek(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *seek, ngx_http_tiktok_media_webm_t *webm)
{
    off_t                         offset;
    uint64_t                      id, position;
    ngx_int_t                     rc;
    ngx_uint_t                    has_position;
    ngx_http_tiktok_media_node_t  elt;

    id = 0;
    position = 0;
    has_position = 0;

    for (offset = seek->data; offset < seek->end; offset = elt.end) {

        rc = ngx_http_tiktok_media_element(ctx, offset, seek->end, &elt);
        if (rc != NGX_OK) {
            return rc;
        }

        if (elt.unknown) {
            return NGX_DECLINED;
        }

        if (elt.id == NGX_HTTP_TIKTOK_EBML_SEEK_ID) {

            /* an id is at most 4 bytes; read as an unsigned int */
            if (elt.end - elt.data > 4) {
                return NGX_DECLINED;
            }

            rc = ngx_http_tiktok_media_uint(ctx, &elt, &id);

        } else if (elt.id == NGX_HTTP_TIKTOK_EBML_SEEK_POSITION) {
            rc = ngx_http_tiktok_media_uint(ctx, &elt, &position);
            has_position = 1;

        } else {
            rc = NGX_OK;
        }

        if (rc != NGX_OK) {
            return rc;
        }
    }

    /* a position past the file cannot be followed; seek_to() checks more */
    if (!has_position || position >= (uint64_t) ctx->size) {
        return NGX_OK;
    }

    if (id == NGX_HTTP_TIKTOK_EBML_INFO && webm->info_at < 0) {
        webm->info_at = (off_t) position;

    } else if (id == NGX_HTTP_TIKTOK_EBML_TRACKS && webm->tracks_at < 0) {
        webm->tracks_at = (off_t) position;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tiktok_media_info(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *info, ngx_http_tiktok_media_webm_t *webm)
{
    off_t                         offset;
    uint64_t                      scale;
    ngx_int_t                     rc;
    ngx_http_tiktok_media_node_t  elt;

    for (offset = info->data; offset < info->end; offset = elt.end) {

        rc = ngx_http_tiktok_media_element(ctx, offset, info->end, &elt);
        if (rc != NGX_OK) {
            return rc;
        }

        if (elt.unknown) {
            return NGX_DECLINED;
        }

        if (elt.id == NGX_HTTP_TIKTOK_EBML_TIMECODE_SCALE) {
            rc = ngx_http_tiktok_media_uint(ctx, &elt, &scale);
            if (rc != NGX_OK) {
                return rc;
            }

            /* an empty element means its default (RFC 8794, 6.x) */
            if (elt.end == elt.data) {
                scale = NGX_HTTP_TIKTOK_MEDIA_TIMECODE_SCALE;
            }

            if (scale == 0) {
                return NGX_DECLINED;
            }

            webm->timecode_scale = scale;

        } else if (elt.id == NGX_HTTP_TIKTOK_EBML_DURATION) {
            rc = ngx_http_tiktok_media_float(ctx, &elt, &webm->duration);
            if (rc != NGX_OK) {
                return rc;
            }

            webm->has_duration = 1;
        }
    }

    webm->info = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tiktok_media_tracks(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *tracks, ngx_http_tiktok_media_webm_t *webm)
{
    off_t                         offset;
    ngx_int_t                     rc;
    ngx_http_tiktok_media_node_t  elt;

    for (offset = tracks->data; offset < tracks->end; offset = elt.end) {

        rc = ngx_http_tiktok_media_element(ctx, offset, tracks->end, &elt);
        if (rc != NGX_OK) {
            return rc;
        }

        if (elt.unknown) {
            return NGX_DECLINED;
        }

        if (elt.id == NGX_HTTP_TIKTOK_EBML_TRACK_ENTRY && !webm->video) {
            rc = ngx_http_tiktok_media_track(ctx, &elt, webm);
            if (rc != NGX_OK) {
                return rc;
            }
        }
    }

    webm->tracks = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tiktok_media_track(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *entry, ngx_http_tiktok_media_webm_t *webm)
{
    off_t                         offset;
    uint64_t                      type;
    ngx_int_t                     rc;
    ngx_uint_t                    width, height;
    ngx_http_tiktok_media_node_t  elt;

    type = 0;
    width = 0;
    height = 0;

    for (offset = entry->data; offset < entry->end; offset = elt.end) {

        rc = ngx_http_tiktok_media_element(ctx, offset, entry->end, &elt);
        if (rc != NGX_OK) {
            return rc;
        }

        if (elt.unknown) {
            return NGX_DECLINED;
        }

        if (elt.id == NGX_HTTP_TIKTOK_EBML_TRACK_TYPE) {
            rc = ngx_http_tiktok_media_uint(ctx, &elt, &type);

        } else if (elt.id == NGX_HTTP_TIKTOK_EBML_VIDEO) {
            rc = ngx_http_tiktok_media_pixels(ctx, &elt, &width, &height);

        } else {
            rc = NGX_OK;
        }

        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (type == NGX_HTTP_TIKTOK_EBML_VIDEO_TRACK) {
        webm->video = 1;
        webm->width = width;
        webm->height = height;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tiktok_media_pixels(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_node_t *video, ngx_uint_t *width,
    ngx_uint_t *height)
{
    off_t                         offset;
    uint64_t                      value;
    ngx_int_t                     rc;
    ngx_http_tiktok_media_node_t  elt;

    for (offset = video->data; offset < video->end; offset = elt.end) {

        rc = ngx_http_tiktok_media_element(ctx, offset, video->end, &elt);
        if (rc != NGX_OK) {
            return rc;
        }

        if (elt.unknown) {
            return NGX_DECLINED;
        }

        if (elt.id != NGX_HTTP_TIKTOK_EBML_PIXEL_WIDTH
            && elt.id != NGX_HTTP_TIKTOK_EBML_PIXEL_HEIGHT)
        {
            continue;
        }

        rc = ngx_http_tiktok_media_uint(ctx, &elt, &value);
        if (rc != NGX_OK) {
            return rc;
        }

        if (value > NGX_HTTP_TIKTOK_MEDIA_MAX_PIXELS) {
            return NGX_DECLINED;
        }

        if (elt.id == NGX_HTTP_TIKTOK_EBML_PIXEL_WIDTH) {
            *width = (ngx_uint_t) value;

        } else {
            *height = (ngx_uint_t) value;
        }
    }

    return NGX_OK;
}


/*
 * Duration counts TimecodeScale nanoseconds, as a float: rounded to the
 * nearest millisecond, since a float of 1234.5 ms ticks means that.  NaN,
 * negatives and infinities fail the range test (NaN fails every compare).
 */

static ngx_int_t
ngx_http_tiktok_media_webm_ms(ngx_http_tiktok_media_webm_t *webm,
    uint64_t *ms)
{
    double  value;

    if (!webm->has_duration) {
        return NGX_DECLINED;
    }

    value = webm->duration * (double) webm->timecode_scale / 1000000.0;

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


static uint32_t
ngx_http_tiktok_media_be32(const u_char *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
           | (uint32_t) p[2] << 8 | p[3];
}


static uint64_t
ngx_http_tiktok_media_be64(const u_char *p)
{
    return (uint64_t) ngx_http_tiktok_media_be32(p) << 32
           | ngx_http_tiktok_media_be32(p + 4);
}
