
/* placeholder until the container parser lands */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_tiktok_media.h"


ngx_int_t
ngx_http_tiktok_media_probe(ngx_http_tiktok_media_read_pt read, void *data,
    off_t size, ngx_http_tiktok_media_t *media)
{
    ngx_memzero(media, sizeof(ngx_http_tiktok_media_t));

    return NGX_DECLINED;
}
