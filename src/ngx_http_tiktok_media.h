
/*
 * Recognising an uploaded video from its bytes, and reading its duration
 * from the container (MP4/MOV "ftyp" + "mvhd", WebM EBML + Info/Duration).
 * Built into the module and, like the crypto code, into standalone unit
 * tests and fuzzers: it uses nginx's types only, never its functions.
 */


#ifndef _NGX_HTTP_TIKTOK_MEDIA_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_MEDIA_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


#define NGX_HTTP_TIKTOK_MEDIA_UNKNOWN  0
#define NGX_HTTP_TIKTOK_MEDIA_MP4      1
#define NGX_HTTP_TIKTOK_MEDIA_MOV      2
#define NGX_HTTP_TIKTOK_MEDIA_WEBM     3

/* recognised only to be refused by name: TikTok takes WebM, not MKV */
#define NGX_HTTP_TIKTOK_MEDIA_MATROSKA 4


/*
 * The bounds on one probe, whatever the file says: at most this many calls
 * of the read callback, each for at most this many bytes (4 MB in all).
 */
#define NGX_HTTP_TIKTOK_MEDIA_MAX_READS   1024
#define NGX_HTTP_TIKTOK_MEDIA_READ_SIZE   4096

/* 2^53: every whole millisecond up to here is exact in a JSON number */
#define NGX_HTTP_TIKTOK_MEDIA_MAX_MS      9007199254740992ULL


/* reads up to size bytes at offset; returns bytes read, 0 at the end, -1 */
typedef ssize_t (*ngx_http_tiktok_media_read_pt)(void *data, u_char *buf,
    size_t size, off_t offset);


typedef struct {
    ngx_uint_t                      container;
    const char                     *content_type;   /* "video/mp4", ... */
    uint64_t                        duration_ms;
    ngx_uint_t                      width;          /* 0 when unknown */
    ngx_uint_t                      height;
} ngx_http_tiktok_media_t;


/*
 * NGX_OK: a container we accept, with its duration.  NGX_DECLINED: not a
 * video we recognise, or one whose duration cannot be read (media->
 * container says how far it got).  NGX_ERROR: the read callback failed.
 *
 * On NGX_OK, duration_ms is in 1..NGX_HTTP_TIKTOK_MEDIA_MAX_MS and width and
 * height (0 when unknown) are those of the first video track, as displayed
 * (an MP4 rotated by 90 or 270 degrees has them swapped).
 */
ngx_int_t ngx_http_tiktok_media_probe(ngx_http_tiktok_media_read_pt read,
    void *data, off_t size, ngx_http_tiktok_media_t *media);


#endif /* _NGX_HTTP_TIKTOK_MEDIA_H_INCLUDED_ */
