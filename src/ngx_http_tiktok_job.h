
/*
 * A publisher job: one claimed post taken to TikTok, step by step, each
 * step named by job->state and resumed by one switch
 * (ngx_http_tiktok_job_run) after every wait.
 */


#ifndef _NGX_HTTP_TIKTOK_JOB_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_JOB_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_tiktok_module.h"
#include "ngx_http_tiktok_lease.h"


/* the claim's lease on a post, renewed by every fenced write */
#define NGX_HTTP_TIKTOK_JOB_LEASE  "5 minutes"


typedef enum {
    NGX_HTTP_TIKTOK_JOB_TOKEN = 0,      /* the user's access token */
    NGX_HTTP_TIKTOK_JOB_CREATOR,        /* creator info, right before init */
    NGX_HTTP_TIKTOK_JOB_INIT,           /* init_started_at, then init */
    NGX_HTTP_TIKTOK_JOB_UPLOAD,         /* the spool file's chunks */
    NGX_HTTP_TIKTOK_JOB_POLL,           /* status until final */
    NGX_HTTP_TIKTOK_JOB_DONE            /* over */
} ngx_http_tiktok_job_state_e;


typedef struct ngx_http_tiktok_job_s  ngx_http_tiktok_job_t;

typedef void (*ngx_http_tiktok_job_pt)(ngx_http_tiktok_job_t *job);


/* TikTok's answer to an init: a video's, an inbox draft's, photos' */
typedef struct {
    ngx_str_t                     publish_id;
    ngx_str_t                     upload_url;    /* empty for a pull */
} ngx_http_tiktok_job_init_answer_t;


/* TikTok's answer to a status fetch; the counts are -1 when absent */
typedef struct {
    ngx_str_t                     status;        /* "PUBLISH_COMPLETE" ... */
    ngx_str_t                     fail_reason;   /* empty when absent */
    int64_t                       post_id;       /* the public post, or 0 */
    int64_t                       uploaded_bytes;    /* FILE_UPLOAD's */
    int64_t                       downloaded_bytes;  /* PULL_FROM_URL's */
} ngx_http_tiktok_job_status_answer_t;


struct ngx_http_tiktok_job_s {
    ngx_pool_t                   *pool;
    ngx_log_t                    *log;
    ngx_http_tiktok_main_conf_t  *tmcf;
    ngx_http_tiktok_job_state_e   state;
    ngx_http_tiktok_job_state_e   row;          /* where the claim found it */

    /* the claimer's: told when the job ends, before its pool goes */
    ngx_http_tiktok_job_pt        ended;
    void                         *data;

    /*
     * the claimer's, optional: told once when the post is in TikTok's
     * hands and the job only polls its status (see job_poll)
     */
    ngx_http_tiktok_job_pt        polling;
    ngx_queue_t                   queue;

    /* the claimed row */
    ngx_str_t                     id;
    ngx_str_t                     user;
    ngx_str_t                     video_url;
    ngx_str_t                     spool_path;
    off_t                         size;
    ngx_str_t                     content_type;
    ngx_str_t                     post_info;
    ngx_str_t                     publish_id;
    ngx_str_t                     upload_url;
    off_t                         uploaded;
    ngx_uint_t                    attempts;
    ngx_str_t                     username;
    ngx_str_t                     claim_token;  /* fences our writes */
    ngx_str_t                     photo_urls;   /* a JSON array, photos */
    ngx_int_t                     cover;        /* photo_cover_index */
    ngx_msec_t                    leased;       /* the lease last renewed */

    ngx_http_tiktok_lease_t       lease;        /* the user's token */

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
    unsigned                      upload:1;     /* FILE_UPLOAD, not a URL */
    unsigned                      init_started:1;
    unsigned                      resync:1;     /* a poll for progress */
    unsigned                      final:1;      /* published, failed,
                                                   sent_to_inbox */
    unsigned                      draft:1;      /* to the creator's inbox */
    unsigned                      photo:1;      /* media_type PHOTO */
    unsigned                      polled:1;     /* polling() was told */
    unsigned                      parked:1;     /* a graceful exit: no
                                                   next step */
    unsigned                      released:1;   /* job_release() began */
    unsigned                      orphaned:1;   /* ended by the database
                                                   gone, the claim held */
};


/*
 * A job for row `row' of a claim's result (tiktok.claim_posts_media's
 * columns); ended(job) runs when it is over, before its pool goes.  NULL:
 * no memory (the post's lease runs out by itself).
 */
ngx_http_tiktok_job_t *ngx_http_tiktok_job_create(
    ngx_http_tiktok_main_conf_t *tmcf, ngx_log_t *log, PGresult *res,
    int row, ngx_http_tiktok_job_pt ended, void *data);
void ngx_http_tiktok_job_start(ngx_http_tiktok_job_t *job);

/* ends the job now, whatever it waits for (a worker's exit) */
void ngx_http_tiktok_job_done(ngx_http_tiktok_job_t *job);

/*
 * A graceful exit's: whether the job is between steps (in a pause, or
 * parked: nothing of it at TikTok or in the database in flight), and
 * handing its post back (the claim cleared under its token), which ends
 * the job.
 */
ngx_uint_t ngx_http_tiktok_job_idle(ngx_http_tiktok_job_t *job);
void ngx_http_tiktok_job_release(ngx_http_tiktok_job_t *job);

/*
 * The same hand-back for a job that is over (job->orphaned: it ended
 * because the database was gone, its claim still on the post), under the
 * post's user; NULL: no memory.
 */
ngx_http_tiktok_pg_query_t *ngx_http_tiktok_job_release_query(
    ngx_pool_t *pool, ngx_log_t *log, ngx_str_t *id, ngx_str_t *user,
    ngx_str_t *token, ngx_http_tiktok_pg_handler_pt handler, void *data);

/*
 * The readers of an "ok" answer's data (api_answer's): NGX_OK with the
 * init's publish_id, the status's status; else NGX_ERROR and why in reason
 */
ngx_int_t ngx_http_tiktok_job_init_read(ngx_pool_t *pool, json_t *data,
    ngx_http_tiktok_job_init_answer_t *init, const char **reason);
ngx_int_t ngx_http_tiktok_job_status_read(ngx_pool_t *pool, json_t *data,
    ngx_http_tiktok_job_status_answer_t *st, const char **reason);


#endif /* _NGX_HTTP_TIKTOK_JOB_H_INCLUDED_ */
