
/*
 * The publisher's private types, shared by its files: the per-worker
 * scheduler and one job, a post being taken to TikTok.
 */


#ifndef _NGX_HTTP_TIKTOK_SCHEDULER_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_SCHEDULER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_module.h"


typedef struct {
    ngx_http_tiktok_main_conf_t  *tmcf;
    ngx_event_t                   timer;
    ngx_str_t                     worker;       /* host:pid, claimed_by */
    ngx_uint_t                    running;
    ngx_queue_t                   jobs;         /* every running job */
    unsigned                      claiming:1;
} ngx_http_tiktok_sched_t;


typedef struct ngx_http_tiktok_job_s  ngx_http_tiktok_job_t;

typedef void (*ngx_http_tiktok_job_next_pt)(ngx_http_tiktok_job_t *job);


struct ngx_http_tiktok_job_s {
    ngx_pool_t                   *pool;
    ngx_log_t                    *log;
    ngx_http_tiktok_sched_t      *sched;
    ngx_queue_t                   queue;        /* in sched->jobs */

    /* the claimed row */
    ngx_str_t                     id;
    ngx_str_t                     user;
    ngx_str_t                     source;
    ngx_str_t                     video_url;
    ngx_str_t                     spool_path;
    off_t                         size;
    ngx_str_t                     content_type;
    ngx_str_t                     post_info;
    ngx_str_t                     publish_id;
    ngx_str_t                     upload_url;
    off_t                         uploaded;
    ngx_uint_t                    init_started;
    ngx_uint_t                    attempts;
    ngx_str_t                     username;
    ngx_str_t                     claim_token;  /* fences our writes */
    ngx_msec_t                    leased;       /* the lease last renewed */

    /* the user's token (ngx_http_tiktok_job_token) */
    ngx_str_t                     token;
    ngx_str_t                     expires_at;   /* as read, to invalidate */
    ngx_str_t                     refresh;
    ngx_str_t                     owner;        /* of a refresh lease */
    ngx_uint_t                    token_waits;
    ngx_http_tiktok_job_next_pt   next;

    json_t                       *info;         /* post_info for init */
    ngx_fd_t                      fd;
    off_t                         chunk;
    ngx_uint_t                    tries;
    ngx_uint_t                    polls;
    ngx_msec_t                    pause;

    /* the TikTok failure to record with the next state change */
    ngx_http_tiktok_api_error_t   err;

    ngx_event_t                   wait;
    ngx_uint_t                    fence;        /* the fenced statement */
    unsigned                      resync:1;     /* a poll for progress */
    unsigned                      reload:1;     /* the wait is for a token */
    unsigned                      reconnect:1;  /* the grant is gone */
    unsigned                      invalid:1;    /* TikTok refused the token */
    unsigned                      final:1;      /* published, failed */
};


/* ngx_http_tiktok_scheduler_token.c */
void ngx_http_tiktok_job_token(ngx_http_tiktok_job_t *job);

/* ngx_http_tiktok_scheduler.c */
ngx_int_t ngx_http_tiktok_job_sql(ngx_http_tiktok_job_t *job,
    const char *sql, ngx_uint_t n, ngx_str_t *params,
    ngx_http_tiktok_pg_handler_pt handler);
ngx_http_tiktok_curl_req_t *ngx_http_tiktok_job_request(
    ngx_http_tiktok_job_t *job, const char *path, ngx_str_t *body,
    ngx_http_tiktok_curl_done_pt handler);
void ngx_http_tiktok_job_later(ngx_http_tiktok_job_t *job, const char *why);
void ngx_http_tiktok_job_finish(ngx_http_tiktok_job_t *job,
    const char *status, ngx_str_t *reason, ngx_str_t *share_url);
void ngx_http_tiktok_job_done(ngx_http_tiktok_job_t *job);
ngx_uint_t ngx_http_tiktok_job_transient(ngx_http_tiktok_curl_req_t *req,
    ngx_str_t *code);


#endif /* _NGX_HTTP_TIKTOK_SCHEDULER_H_INCLUDED_ */
