
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
 */
ngx_int_t ngx_http_tiktok_media_probe(ngx_http_tiktok_media_read_pt read,
    void *data, off_t size, ngx_http_tiktok_media_t *media);


#endif /* _NGX_HTTP_TIKTOK_MEDIA_H_INCLUDED_ */
