
/*
 * libcurl's multi interface driven by nginx's event loop, for TikTok calls
 * made without a client request (publishing, status polling).
 *
 * One multi handle per worker (created in init_process, destroyed in
 * exit_process); its sockets are nginx connections with level-triggered
 * events and its timeout is one nginx timer, so nothing here blocks and
 * the connection cache keeps TLS connections alive across requests.
 *
 * A request:
 *
 *     req = ngx_http_tiktok_curl_req_create(pool, log);
 *     req->method = "PUT";
 *     req->url = upload_url;
 *     req->fd = fd; req->offset = 0; req->length = 10000000;
 *     ngx_str_set(&req->content_type, "video/mp4");
 *     req->content_range = ...;           "bytes 0-9999999/50000123"
 *     req->timeout = 60000;
 *     req->handler = done; req->data = job;
 *
 *     rc = ngx_http_tiktok_curl_start(curl, req);
 *
 * NGX_OK: the handler runs later, from the event loop, exactly once -
 * unless the request's pool is destroyed first: that is how a request is
 * cancelled (the pool's cleanup takes it out of libcurl).  Anything else:
 * nothing was started and the handler will not run (NGX_DECLINED: the
 * worker is shutting down, start nothing new; NGX_ERROR: bad request or no
 * memory).
 *
 * libcurl sends a request again, once, on a new connection when a reused
 * keep-alive connection dies before any byte of the answer came; "fresh"
 * asks for a new connection up front, for a POST that must never be sent
 * twice (video/init).  A file body is rewound for that retry.
 *
 * In the handler: rc NGX_OK means an HTTP answer came (any status: judge
 * status and response); NGX_ERROR means none did (timeout, connect or TLS
 * failure, connection dropped, answer above max_response, file read
 * error, or the worker is exiting: then "aborted" is set - release what
 * you own and start nothing).  The handler may start further requests,
 * destroy other requests' pools and its own.  A request starts once: each
 * call is a new ngx_http_tiktok_curl_req_create().
 */


#ifndef _NGX_HTTP_TIKTOK_CURL_H_INCLUDED_
#define _NGX_HTTP_TIKTOK_CURL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <curl/curl.h>


/* max_response when the caller leaves it 0 */
#define NGX_HTTP_TIKTOK_CURL_MAX_RESPONSE  (1024 * 1024)

/* timeout when the caller leaves it 0 */
#define NGX_HTTP_TIKTOK_CURL_TIMEOUT       60000

/* connecting (TCP and TLS) never takes longer than this */
#define NGX_HTTP_TIKTOK_CURL_CONNECT       10000

/* how long a gracefully exiting worker lets requests in flight finish */
#define NGX_HTTP_TIKTOK_CURL_GRACE         2000


typedef struct ngx_http_tiktok_curl_s      ngx_http_tiktok_curl_t;
typedef struct ngx_http_tiktok_curl_req_s  ngx_http_tiktok_curl_req_t;

typedef void (*ngx_http_tiktok_curl_done_pt)(ngx_http_tiktok_curl_req_t *req);


struct ngx_http_tiktok_curl_req_s {
    /* what to send */
    ngx_pool_t                    *pool;        /* the request's own; lives
                                                   until done */
    ngx_log_t                     *log;
    ngx_str_t                      request_id;  /* for log lines, optional */
    const char                    *method;      /* "GET", "POST", "PUT",
                                                   "DELETE" */
    ngx_str_t                      url;         /* absolute https, used
                                                   whole (upload_url) */
    ngx_str_t                      bearer;      /* Authorization: Bearer, or
                                                   empty */
    ngx_str_t                      content_type;
    ngx_str_t                      body;        /* a memory body, or */
    ngx_fd_t                       fd;          /* a file region: used */
    off_t                          offset;      /*   when length > 0, */
    off_t                          length;      /*   read with pread() */
    ngx_str_t                      content_range;  /* "bytes 0-9/100", sent
                                                      as a header */
    ngx_msec_t                     timeout;     /* whole request; 0: 60 s */
    unsigned                       fresh:1;     /* a new connection: see
                                                   below */
    size_t                         max_response;   /* answers above this
                                                      fail; 0: 1m */
    ngx_http_tiktok_curl_done_pt   handler;
    void                          *data;

    /* outcome, valid in the handler */
    ngx_int_t                      rc;          /* NGX_OK: an HTTP answer
                                                   came (any status);
                                                   NGX_ERROR: none */
    long                           status;      /* 0 with NGX_ERROR */
    ngx_str_t                      response;    /* in pool */
    ngx_str_t                      retry_after; /* the header, or empty */
    ngx_msec_t                     elapsed;
    char                           error[CURL_ERROR_SIZE];  /* never
                                                   contains a token */
    unsigned                       too_large:1; /* above max_response */
    unsigned                       timed_out:1;
    unsigned                       aborted:1;   /* the worker is exiting */

    /* private */
    ngx_http_tiktok_curl_t        *curl;
    CURL                          *easy;
    struct curl_slist             *headers;
    ngx_queue_t                    queue;       /* in curl->active */
    ngx_msec_t                     start;
    size_t                         size;        /* of response.data */
    off_t                          sent;        /* of the body */
    const char                    *failed;      /* our own reason */
    unsigned                       started:1;
    unsigned                       active:1;
    unsigned                       doomed:1;    /* no socket for it */
};


/*
 * per worker: created in init_process, destroyed in exit_process; ca_file
 * is tiktok_ca_certificate's full path (it ends in NUL), or empty
 */
ngx_http_tiktok_curl_t *ngx_http_tiktok_curl_init(ngx_cycle_t *cycle,
    ngx_str_t *ca_file);
void ngx_http_tiktok_curl_destroy(ngx_http_tiktok_curl_t *curl);

/* a zeroed request from pool, fd = NGX_INVALID_FILE; NULL: no memory */
ngx_http_tiktok_curl_req_t *ngx_http_tiktok_curl_req_create(ngx_pool_t *pool,
    ngx_log_t *log);

ngx_int_t ngx_http_tiktok_curl_start(ngx_http_tiktok_curl_t *curl,
    ngx_http_tiktok_curl_req_t *req);

/* an event of our own (a timer, a posted event): its handler and data */
#define ngx_http_tiktok_event_init(ev, h, d, l)                               \
    (ev)->handler = h; (ev)->data = d; (ev)->log = l

/* adds or deletes a level-triggered event; for libpq's socket too */
ngx_int_t ngx_http_tiktok_event_want(ngx_event_t *ev, ngx_uint_t want);

/* room for need (at most max) bytes in buf, *cap bytes of pool memory */
ngx_int_t ngx_http_tiktok_buf_room(ngx_pool_t *pool, ngx_str_t *buf,
    size_t *cap, size_t need, size_t max);


#endif /* _NGX_HTTP_TIKTOK_CURL_H_INCLUDED_ */
