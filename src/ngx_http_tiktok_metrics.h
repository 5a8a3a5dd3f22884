
/*
 * Operator metrics (tiktok_metrics): counters kept in tiktok_cache_zone,
 * so every worker adds to the same ones and a scrape on any worker sees
 * the sum; gauges kept per worker process in the same zone and summed when
 * rendered.  Counting is an atomic add, never a lock; the hooks do nothing
 * unless a location uses tiktok_metrics.
 */


#ifndef _NGX_HTTP_TIKTOK_METRICS_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_api.h"
#include "ngx_http_tiktok_curl.h"


/* the counters without labels, for ngx_http_tiktok_metrics_count() */
#define NGX_HTTP_TIKTOK_METRICS_EVICTIONS        0
#define NGX_HTTP_TIKTOK_METRICS_REFRESH_OK       1
#define NGX_HTTP_TIKTOK_METRICS_REFRESH_REJECTED 2
#define NGX_HTTP_TIKTOK_METRICS_REFRESH_FAILED   3


/* the tiktok_metrics directive (location): the scrape's content handler */
char *ngx_http_tiktok_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* postconfiguration: the directives it needs, and the request counter */
ngx_int_t ngx_http_tiktok_metrics_postconfiguration(ngx_conf_t *cf);

/* a worker's counters and its slot for gauges; released on exit */
ngx_int_t ngx_http_tiktok_metrics_init_process(ngx_cycle_t *cycle);
void ngx_http_tiktok_metrics_exit_process(ngx_cycle_t *cycle);

/* one more of a counter without labels */
void ngx_http_tiktok_metrics_count(ngx_uint_t counter);

/* a request-time TikTok call's outcome, when its answer (or none) is in */
void ngx_http_tiktok_metrics_api(ngx_http_tiktok_api_call_t *call);

/*
 * A background (libcurl) TikTok call's outcome; endpoint is TikTok's path,
 * NULL for an upload URL (whose path and query are never shown).
 */
void ngx_http_tiktok_metrics_curl(const char *endpoint,
    ngx_http_tiktok_curl_req_t *req);

/*
 * A webhook delivery's outcome: event is a known event's name, "other" or
 * "unverified"; outcome one of ngx_http_tiktok_metrics_webhook_outcomes
 * (tiktok.webhook_apply()'s, "rejected", "error"); others are not counted.
 */
void ngx_http_tiktok_metrics_webhook(ngx_str_t *event, const char *outcome);

/* publisher jobs in flight in this worker: +1 started, -1 ended */
void ngx_http_tiktok_metrics_jobs(ngx_int_t delta);


#endif /* _NGX_HTTP_TIKTOK_METRICS_H_INCLUDED_ */
