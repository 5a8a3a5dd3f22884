
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
#define NGX_HTTP_TIKTOK_MEDIA_MAX_ITEMS     2048

/* compatible brands looked at in "ftyp"; real files list a handful */
#define NGX_HTTP_TIKTOK_MEDIA_MAX_BRANDS    64

/* "webm" and "matroska", maybe zero-padded, fit; anything longer is neither */
#define NGX_HTTP_TIKTOK_MEDIA_MAX_DOCTYPE   32

/* Matroska's default TimecodeScale: one tick is a millisecond */
#define NGX_HTTP_TIKTOK_MEDIA_TIMECODE_SCALE  1000000

#define NGX_HTTP_TIKTOK_EBML                0x1A45DFA3
#define NGX_HTTP_TIKTOK_EBML_READ_VERSION   0x42F7
#define NGX_HTTP_TIKTOK_EBML_DOCTYPE        0x4282
#define NGX_HTTP_TIKTOK_EBML_SEGMENT        0x18538067
#define NGX_HTTP_TIKTOK_EBML_SEEKHEAD       0x114D9B74
#define NGX_HTTP_TIKTOK_EBML_SEEK           0x4DBB
#define NGX_HTTP_TIKTOK_EBML_SEEK_ID        0x53AB
#define NGX_HTTP_TIKTOK_EBML_SEEK_POSITION  0x53AC
#define NGX_HTTP_TIKTOK_EBML_INFO           0x1549A966
#define NGX_HTTP_TIKTOK_EBML_TIMECODE_SCALE 0x2AD7B1
#define NGX_HTTP_TIKTOK_EBML_DURATION       0x4489
#define NGX_HTTP_TIKTOK_EBML_TRACKS         0x1654AE6B
#define NGX_HTTP_TIKTOK_EBML_TRACK_ENTRY    0xAE
#define NGX_HTTP_TIKTOK_EBML_TRACK_TYPE     0x83
#define NGX_HTTP_TIKTOK_EBML_VIDEO          0xE0
#define NGX_HTTP_TIKTOK_EBML_PIXEL_WIDTH    0xB0
#define NGX_HTTP_TIKTOK_EBML_PIXEL_HEIGHT   0xBA
#define NGX_HTTP_TIKTOK_EBML_CLUSTER        0x1F43B675

#define NGX_HTTP_TIKTOK_EBML_TRACK_TYPE_VIDEO  1

/* no real video is wider or taller; MP4's 16.16 fields cannot say more */
#define NGX_HTTP_TIKTOK_MEDIA_MAX_PIXELS    65535


/* what ngx_http_tiktok_media_brand() says of a brand we refuse */
#define NGX_HTTP_TIKTOK_MEDIA_OTHER         (ngx_uint_t) -1


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
 * and exactly one "moov" must give the duration and a video track.
 */

static ngx_int_t
ngx_http_tiktok_media_isobmff(ngx_http_tiktok_media_ctx_t *ctx,
    ngx_http_tiktok_media_t *media)
{
    off_t                          offset;
    uint64_t                       duration;
    ngx_int_t                      rc;
    ngx_uint_t                     i, moov;
    ngx_http_tiktok_media_node_t   box;
    ngx_http_tiktok_media_movie_t  movie;

    ngx_memzero(&movie, sizeof(ngx_http_tiktok_media_movie_t));

    moov = 0;

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

    if (!moov || !movie.mvhd || !movie.video) {
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
