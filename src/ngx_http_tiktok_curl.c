
/* placeholder until the libcurl loop lands */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_tiktok_curl.h"


ngx_http_tiktok_curl_t *
ngx_http_tiktok_curl_init(ngx_cycle_t *cycle, ngx_str_t *ca_file)
{
    return NULL;
}


void
ngx_http_tiktok_curl_destroy(ngx_http_tiktok_curl_t *curl)
{
}
