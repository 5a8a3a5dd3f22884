
/*
 * libcurl's multi interface on nginx's event loop.
 *
 * Sockets: CURLMOPT_SOCKETFUNCTION tells which descriptors libcurl waits
 * on; each gets an nginx connection (c->shared: the descriptor stays
 * libcurl's) with level-triggered read and/or write events, found again
 * by descriptor in a list (a worker has a handful: one per connection
 * libcurl keeps).  An event calls curl_multi_socket_action() for that
 * descriptor.
 *
 * Time: CURLMOPT_TIMERFUNCTION sets or deletes one cancelable nginx timer,
 * whose handler calls curl_multi_socket_action(CURL_SOCKET_TIMEOUT).
 * Request timeouts are libcurl's (CURLOPT_TIMEOUT_MS) and so live in that
 * one timer too.
 *
 * Re-entrancy: the callbacks libcurl calls (socket, timer, close socket,
 * read, write, header) only change nginx events, timers and buffers; they
 * never call libcurl and never run a caller's handler.  libcurl is called
 * from nginx event handlers (a socket event, the timer, a posted event),
 * from start and from a request pool's cleanup; after each
 * curl_multi_socket_action() the finished transfers are drained with
 * curl_multi_info_read(), one at a time: the easy handle is removed and
 * freed first, then the caller's handler runs and may start or cancel
 * requests (libcurl drops the message of a handle removed meanwhile).  A
 * handler never runs inside start(), so nothing re-enters libcurl.
 *
 * Shutdown: the libcurl timer is cancelable.  While requests are in flight
 * a non-cancelable watch timer (every 250 ms) notices a graceful exit
 * (ngx_exiting) and then gives them NGX_HTTP_TIKTOK_CURL_GRACE to finish;
 * what is left is aborted from the event loop: handlers run with NGX_ERROR
 * and "aborted".  worker_shutdown_timeout, and exit_process after a fast
 * shutdown, abort the same way.  No new request starts meanwhile.
 *
 * Nothing blocks: DNS runs in libcurl's threaded resolver (checked at
 * start), sockets are non-blocking, and a file body is read with pread()
 * from the local spool.  The resolver thread is created inside
 * curl_multi_socket_action(), which runs with nginx's signals blocked, so
 * the thread never takes a signal meant for the worker.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_tiktok_curl.h"


#define NGX_HTTP_TIKTOK_CURL_WATCH  250


typedef struct {
    ngx_queue_t                    queue;       /* in curl->sockets */
    ngx_connection_t              *c;
    ngx_http_tiktok_curl_t        *curl;
} ngx_http_tiktok_curl_sock_t;


struct ngx_http_tiktok_curl_s {
    CURLM                         *multi;
    ngx_log_t                     *log;
    char                          *ca_file;     /* NULL: system trust */

    ngx_queue_t                    sockets;

    ngx_queue_t                    active;      /* requests in flight */
    ngx_uint_t                     nactive;

    ngx_event_t                    timer;       /* libcurl's, cancelable */
    ngx_event_t                    kick;        /* posted: fail requests
                                                   without a socket */
    ngx_event_t                    watch;       /* graceful exit */

    unsigned                       exiting:1;   /* the grace has begun */
    unsigned                       destroyed:1;
};


static int ngx_http_tiktok_curl_socket_cb(CURL *easy, curl_socket_t s,
    int what, void *userp, void *socketp);
static int ngx_http_tiktok_curl_timer_cb(CURLM *multi, long timeout_ms,
    void *userp);
static int ngx_http_tiktok_curl_close_cb(void *clientp, curl_socket_t s);
static ngx_http_tiktok_curl_sock_t *ngx_http_tiktok_curl_sock_find(
    ngx_http_tiktok_curl_t *curl, curl_socket_t s);
static ngx_http_tiktok_curl_sock_t *ngx_http_tiktok_curl_sock_open(
    ngx_http_tiktok_curl_t *curl, curl_socket_t s);
static void ngx_http_tiktok_curl_sock_close(ngx_http_tiktok_curl_sock_t *sk);
static void ngx_http_tiktok_curl_event(ngx_event_t *ev);
static void ngx_http_tiktok_curl_timeout(ngx_event_t *ev);
static void ngx_http_tiktok_curl_kick(ngx_event_t *ev);
static void ngx_http_tiktok_curl_watch(ngx_event_t *ev);
static void ngx_http_tiktok_curl_watch_update(ngx_http_tiktok_curl_t *curl);
static void ngx_http_tiktok_curl_doom(ngx_http_tiktok_curl_t *curl,
    CURL *easy, const char *why);
static void ngx_http_tiktok_curl_action(ngx_http_tiktok_curl_t *curl,
    curl_socket_t s, int mask);
static void ngx_http_tiktok_curl_drain(ngx_http_tiktok_curl_t *curl);
static void ngx_http_tiktok_curl_finish(ngx_http_tiktok_curl_req_t *req,
    CURLcode code);
static void ngx_http_tiktok_curl_release(ngx_http_tiktok_curl_req_t *req);
static void ngx_http_tiktok_curl_abort_all(ngx_http_tiktok_curl_t *curl,
    const char *why);
static void ngx_http_tiktok_curl_cleanup(void *data);
static ngx_int_t ngx_http_tiktok_curl_setup(ngx_http_tiktok_curl_t *curl,
    ngx_http_tiktok_curl_req_t *req);
static ngx_int_t ngx_http_tiktok_curl_header_add(
    ngx_http_tiktok_curl_req_t *req, const char *name, ngx_str_t *value);
static size_t ngx_http_tiktok_curl_write(char *ptr, size_t size,
    size_t nmemb, void *data);
static size_t ngx_http_tiktok_curl_header(char *buf, size_t size,
    size_t nitems, void *data);
static size_t ngx_http_tiktok_curl_read(char *buf, size_t size,
    size_t nitems, void *data);
static int ngx_http_tiktok_curl_seek(void *data, curl_off_t offset,
    int origin);
static void ngx_http_tiktok_curl_scrub(ngx_http_tiktok_curl_req_t *req,
    CURLcode code);
static void ngx_http_tiktok_curl_log_url(ngx_str_t *url, ngx_str_t *out);


ngx_http_tiktok_curl_t *
ngx_http_tiktok_curl_init(ngx_cycle_t *cycle, ngx_str_t *ca_file)
{
    CURLM                   *multi;
    CURLcode                 code;
    curl_version_info_data  *info;
    ngx_http_tiktok_curl_t  *curl;

    info = curl_version_info(CURLVERSION_NOW);

    if (!(info->features & CURL_VERSION_SSL)) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "tiktok: libcurl %s has no TLS support, background "
                      "TikTok calls are disabled", info->version);
        return NULL;
    }

    if (!(info->features & CURL_VERSION_ASYNCHDNS)) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "tiktok: libcurl %s resolves host names "
                      "synchronously, which blocks the worker; use a "
                      "libcurl built with the threaded resolver or c-ares",
                      info->version);
    }

    curl = ngx_pcalloc(cycle->pool, sizeof(ngx_http_tiktok_curl_t));
    if (curl == NULL) {
        return NULL;
    }

    code = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (code != CURLE_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "tiktok: curl_global_init() failed: %s",
                      curl_easy_strerror(code));
        return NULL;
    }

    /* a full path from the configuration, which ends in NUL */

    if (ca_file && ca_file->len) {
        curl->ca_file = (char *) ca_file->data;
    }

    multi = curl_multi_init();
    if (multi == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "tiktok: curl_multi_init() failed");
        curl_global_cleanup();
        return NULL;
    }

    if (curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION,
                          ngx_http_tiktok_curl_socket_cb) != CURLM_OK
        || curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, curl) != CURLM_OK
        || curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION,
                             ngx_http_tiktok_curl_timer_cb) != CURLM_OK
        || curl_multi_setopt(multi, CURLMOPT_TIMERDATA, curl) != CURLM_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "tiktok: curl_multi_setopt() failed");
        curl_multi_cleanup(multi);
        curl_global_cleanup();
        return NULL;
    }

    curl->multi = multi;
    curl->log = cycle->log;

    ngx_queue_init(&curl->sockets);
    ngx_queue_init(&curl->active);

    ngx_http_tiktok_event_init(&curl->timer, ngx_http_tiktok_curl_timeout,
                               curl, cycle->log);
    curl->timer.cancelable = 1;

    ngx_http_tiktok_event_init(&curl->kick, ngx_http_tiktok_curl_kick, curl,
                               cycle->log);

    /* not cancelable: holds a gracefully exiting worker for the grace */
    ngx_http_tiktok_event_init(&curl->watch, ngx_http_tiktok_curl_watch,
                               curl, cycle->log);

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, cycle->log, 0,
                   "tiktok curl: libcurl %s, %s", info->version,
                   info->ssl_version ? info->ssl_version : "");

    return curl;
}


/*
 * exit_process: whatever is still in flight is aborted (handlers run with
 * "aborted"), then the multi handle closes its cached connections.
 */

void
ngx_http_tiktok_curl_destroy(ngx_http_tiktok_curl_t *curl)
{
    ngx_queue_t                  *q;
    ngx_http_tiktok_curl_sock_t  *sk;

    if (curl == NULL || curl->destroyed) {
        return;
    }

    curl->destroyed = 1;

    ngx_http_tiktok_curl_abort_all(curl, "the worker is exiting");

    if (curl->timer.timer_set) {
        ngx_del_timer(&curl->timer);
    }

    if (curl->watch.timer_set) {
        ngx_del_timer(&curl->watch);
    }

    if (curl->kick.posted) {
        ngx_delete_posted_event(&curl->kick);
    }

    /*
     * Sockets libcurl still watches: their descriptors are still open.
     * Once destroyed, the socket callback wraps no new one, so the cleanup
     * below closes descriptors that no wrapper refers to.
     */

    while (!ngx_queue_empty(&curl->sockets)) {
        q = ngx_queue_head(&curl->sockets);
        sk = ngx_queue_data(q, ngx_http_tiktok_curl_sock_t, queue);
        ngx_http_tiktok_curl_sock_close(sk);
    }

    (void) curl_multi_cleanup(curl->multi);
    curl->multi = NULL;

    curl_global_cleanup();
}


ngx_http_tiktok_curl_req_t *
ngx_http_tiktok_curl_req_create(ngx_pool_t *pool, ngx_log_t *log)
{
    ngx_pool_cleanup_t          *cln;
    ngx_http_tiktok_curl_req_t  *req;

    cln = ngx_pool_cleanup_add(pool, sizeof(ngx_http_tiktok_curl_req_t));
    if (cln == NULL) {
        return NULL;
    }

    req = cln->data;
    ngx_memzero(req, sizeof(ngx_http_tiktok_curl_req_t));
    cln->handler = ngx_http_tiktok_curl_cleanup;

    req->pool = pool;
    req->log = log;
    req->fd = NGX_INVALID_FILE;

    return req;
}


ngx_int_t
ngx_http_tiktok_curl_start(ngx_http_tiktok_curl_t *curl,
    ngx_http_tiktok_curl_req_t *req)
{
    CURLMcode  mc;
    ngx_str_t  url;

    if (curl == NULL || req->started) {
        return NGX_ERROR;
    }

    if (curl->destroyed || curl->exiting
        || ngx_exiting || ngx_quit || ngx_terminate)
    {
        return NGX_DECLINED;
    }

    if (req->handler == NULL || req->method == NULL || req->url.len == 0) {
        ngx_log_error(NGX_LOG_ERR, req->log, 0,
                      "tiktok curl: incomplete request");
        return NGX_ERROR;
    }

    if (req->request_id.len == 0) {
        ngx_str_set(&req->request_id, "-");
    }

    if (req->max_response == 0) {
        req->max_response = NGX_HTTP_TIKTOK_CURL_MAX_RESPONSE;
    }

    if (req->timeout == 0) {
        req->timeout = NGX_HTTP_TIKTOK_CURL_TIMEOUT;
    }

    req->curl = curl;

    req->easy = curl_easy_init();
    if (req->easy == NULL) {
        ngx_log_error(NGX_LOG_ALERT, req->log, 0,
                      "tiktok curl: curl_easy_init() failed");
        return NGX_ERROR;
    }

    if (ngx_http_tiktok_curl_setup(curl, req) != NGX_OK) {
        goto failed;
    }

    mc = curl_multi_add_handle(curl->multi, req->easy);

    if (mc != CURLM_OK) {
        ngx_log_error(NGX_LOG_ALERT, req->log, 0,
                      "tiktok curl: curl_multi_add_handle() failed: %s",
                      curl_multi_strerror(mc));
        goto failed;
    }

    ngx_queue_insert_tail(&curl->active, &req->queue);
    req->started = 1;
    req->active = 1;
    curl->nactive++;
    req->start = ngx_current_msec;

    ngx_http_tiktok_curl_watch_update(curl);

    ngx_http_tiktok_curl_log_url(&req->url, &url);

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, req->log, 0,
                   "tiktok curl [%V]: start %s %V, timeout %M, "
                   "%ui in flight", &req->request_id, req->method, &url,
                   req->timeout, curl->nactive);

    return NGX_OK;

failed:

    /* never added, or its adding failed: libcurl's remove is a no-op */
    ngx_http_tiktok_curl_release(req);

    return NGX_ERROR;
}


/*
 * The request's pool is going away: this is the cancel.  The handler will
 * not run; what the request holds in libcurl is freed.
 */

static void
ngx_http_tiktok_curl_cleanup(void *data)
{
    ngx_http_tiktok_curl_req_t  *req = data;

    ngx_str_t  url;

    if (!req->active) {
        return;
    }

    ngx_http_tiktok_curl_log_url(&req->url, &url);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, req->log, 0,
                   "tiktok curl [%V]: cancel %s %V",
                   &req->request_id, req->method, &url);

    ngx_http_tiktok_curl_release(req);
}


static ngx_int_t
ngx_http_tiktok_curl_setup(ngx_http_tiktok_curl_t *curl,
    ngx_http_tiktok_curl_req_t *req)
{
    u_char      *url;
    CURL        *easy;
    ngx_str_t    empty;
    ngx_uint_t   post, put, file;
    curl_off_t   size;

    easy = req->easy;

    post = (ngx_strcmp(req->method, "POST") == 0);
    put = (ngx_strcmp(req->method, "PUT") == 0);
    file = (req->length > 0);

    if (!post && !put && ngx_strcmp(req->method, "GET") != 0
        && ngx_strcmp(req->method, "DELETE") != 0)
    {
        ngx_log_error(NGX_LOG_ERR, req->log, 0,
                      "tiktok curl: unsupported method \"%s\"", req->method);
        return NGX_ERROR;
    }

    if ((file && (req->fd == NGX_INVALID_FILE || req->body.len
                  || req->offset < 0))
        || (!post && !put && (file || req->body.len)))
    {
        ngx_log_error(NGX_LOG_ERR, req->log, 0,
                      "tiktok curl: invalid body for %s", req->method);
        return NGX_ERROR;
    }

    url = ngx_pnalloc(req->pool, req->url.len + 1);
    if (url == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_cpystrn(url, req->url.data, req->url.len + 1);

#define ngx_http_tiktok_curl_opt(opt, value)                                  \
    if (curl_easy_setopt(easy, opt, value) != CURLE_OK) {                     \
        ngx_log_error(NGX_LOG_ALERT, req->log, 0,                             \
                      "tiktok curl: curl_easy_setopt(" #opt ") failed");      \
        return NGX_ERROR;                                                     \
    }

    ngx_http_tiktok_curl_opt(CURLOPT_URL, (char *) url);
    ngx_http_tiktok_curl_opt(CURLOPT_PRIVATE, req);
    ngx_http_tiktok_curl_opt(CURLOPT_ERRORBUFFER, req->error);
    ngx_http_tiktok_curl_opt(CURLOPT_NOSIGNAL, 1L);

#if (LIBCURL_VERSION_NUM >= 0x075700)
    /*
     * A transfer that ends (timeout, cancel) while its name is still being
     * resolved would otherwise join the resolver thread, blocking the
     * worker until getaddrinfo() returns; detach the thread instead.
     */
    ngx_http_tiktok_curl_opt(CURLOPT_QUICK_EXIT, 1L);
#endif

    /* tokens travel over verified TLS only, and never to a redirect */
#if (LIBCURL_VERSION_NUM >= 0x075500)
    ngx_http_tiktok_curl_opt(CURLOPT_PROTOCOLS_STR, "https");
#else
    ngx_http_tiktok_curl_opt(CURLOPT_PROTOCOLS, (long) CURLPROTO_HTTPS);
#endif
    ngx_http_tiktok_curl_opt(CURLOPT_FOLLOWLOCATION, 0L);
    ngx_http_tiktok_curl_opt(CURLOPT_SSL_VERIFYPEER, 1L);
    ngx_http_tiktok_curl_opt(CURLOPT_SSL_VERIFYHOST, 2L);

    if (curl->ca_file) {
        /* this bundle only, not the system's directory as well */
        ngx_http_tiktok_curl_opt(CURLOPT_CAINFO, curl->ca_file);
        ngx_http_tiktok_curl_opt(CURLOPT_CAPATH, (char *) NULL);
    }

    ngx_http_tiktok_curl_opt(CURLOPT_HTTP_VERSION,
                             (long) CURL_HTTP_VERSION_1_1);
    ngx_http_tiktok_curl_opt(CURLOPT_USERAGENT, "ngx_http_tiktok_module");

    if (req->fresh) {
        ngx_http_tiktok_curl_opt(CURLOPT_FRESH_CONNECT, 1L);
    }

    ngx_http_tiktok_curl_opt(CURLOPT_TIMEOUT_MS, (long) req->timeout);
    ngx_http_tiktok_curl_opt(CURLOPT_CONNECTTIMEOUT_MS,
                             (long) ngx_min(req->timeout,
                                            NGX_HTTP_TIKTOK_CURL_CONNECT));

    /* an announced length above the limit fails before the body comes */
    ngx_http_tiktok_curl_opt(CURLOPT_MAXFILESIZE_LARGE,
                             (curl_off_t) req->max_response);

    ngx_http_tiktok_curl_opt(CURLOPT_WRITEFUNCTION,
                             ngx_http_tiktok_curl_write);
    ngx_http_tiktok_curl_opt(CURLOPT_WRITEDATA, req);
    ngx_http_tiktok_curl_opt(CURLOPT_HEADERFUNCTION,
                             ngx_http_tiktok_curl_header);
    ngx_http_tiktok_curl_opt(CURLOPT_HEADERDATA, req);

    ngx_http_tiktok_curl_opt(CURLOPT_CLOSESOCKETFUNCTION,
                             ngx_http_tiktok_curl_close_cb);
    ngx_http_tiktok_curl_opt(CURLOPT_CLOSESOCKETDATA, curl);

    if (post && !file) {
        ngx_http_tiktok_curl_opt(CURLOPT_POSTFIELDSIZE_LARGE,
                                 (curl_off_t) req->body.len);
        ngx_http_tiktok_curl_opt(CURLOPT_POSTFIELDS,
                                 req->body.len ? (char *) req->body.data
                                               : "");

    } else if (post || put) {
        /* a file region, or a memory body for PUT, through the callback;
         * the seek callback rewinds it when libcurl sends it again on a
         * fresh connection after a reused one died */

        size = file ? (curl_off_t) req->length : (curl_off_t) req->body.len;

        if (post) {
            ngx_http_tiktok_curl_opt(CURLOPT_POST, 1L);
            ngx_http_tiktok_curl_opt(CURLOPT_POSTFIELDSIZE_LARGE, size);

        } else {
            ngx_http_tiktok_curl_opt(CURLOPT_UPLOAD, 1L);
            ngx_http_tiktok_curl_opt(CURLOPT_INFILESIZE_LARGE, size);
        }

        ngx_http_tiktok_curl_opt(CURLOPT_READFUNCTION,
                                 ngx_http_tiktok_curl_read);
        ngx_http_tiktok_curl_opt(CURLOPT_READDATA, req);
        ngx_http_tiktok_curl_opt(CURLOPT_SEEKFUNCTION,
                                 ngx_http_tiktok_curl_seek);
        ngx_http_tiktok_curl_opt(CURLOPT_SEEKDATA, req);

        if (file) {
            ngx_http_tiktok_curl_opt(CURLOPT_UPLOAD_BUFFERSIZE, 262144L);
        }

    } else if (ngx_strcmp(req->method, "DELETE") == 0) {
        ngx_http_tiktok_curl_opt(CURLOPT_CUSTOMREQUEST, "DELETE");

    } else {
        ngx_http_tiktok_curl_opt(CURLOPT_HTTPGET, 1L);
    }

    /* headers; a POST without a type is not libcurl's default form type */

    ngx_str_null(&empty);

    if (ngx_http_tiktok_curl_header_add(req, "Authorization: Bearer ",
                                        &req->bearer) != NGX_OK
        || ngx_http_tiktok_curl_header_add(req, "Content-Type: ",
                                           &req->content_type) != NGX_OK
        || ngx_http_tiktok_curl_header_add(req, "Content-Range: ",
                                           &req->content_range) != NGX_OK
        || (post && req->content_type.len == 0
            && ngx_http_tiktok_curl_header_add(req, "Content-Type:", &empty)
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    /* no "Expect: 100-continue": the body follows the head at once */

    if ((post || put)
        && ngx_http_tiktok_curl_header_add(req, "Expect:", &empty) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (req->headers) {
        ngx_http_tiktok_curl_opt(CURLOPT_HTTPHEADER, req->headers);
    }

#undef ngx_http_tiktok_curl_opt

    return NGX_OK;
}


/*
 * "Name: value", nothing when the value is empty; "Name:" alone removes a
 * header libcurl would send.
 */

static ngx_int_t
ngx_http_tiktok_curl_header_add(ngx_http_tiktok_curl_req_t *req,
    const char *name, ngx_str_t *value)
{
    u_char             *line;
    size_t              len, i;
    struct curl_slist  *list;

    len = ngx_strlen(name);

    if (value->len == 0 && name[len - 1] == ' ') {
        return NGX_OK;
    }

    for (i = 0; i < value->len; i++) {
        if (value->data[i] == CR || value->data[i] == LF
            || value->data[i] == '\0')
        {
            ngx_log_error(NGX_LOG_ERR, req->log, 0,
                          "tiktok curl: invalid value for \"%s\"", name);
            return NGX_ERROR;
        }
    }

    line = ngx_pnalloc(req->pool, len + value->len + 1);
    if (line == NULL) {
        return NGX_ERROR;
    }

    len = ngx_sprintf(line, "%s%V%Z", name, value) - line - 1;

    list = curl_slist_append(req->headers, (char *) line);

    /* the pool's copy may hold the token */
    ngx_explicit_memzero(line, len);

    if (list == NULL) {
        ngx_log_error(NGX_LOG_ALERT, req->log, 0,
                      "tiktok curl: curl_slist_append() failed");
        return NGX_ERROR;
    }

    req->headers = list;

    return NGX_OK;
}


/* --- libcurl's callbacks: nginx events and timers only ------------------ */


static int
ngx_http_tiktok_curl_socket_cb(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp)
{
    ngx_http_tiktok_curl_t  *curl = userp;

    ngx_http_tiktok_curl_sock_t  *sk;

    sk = ngx_http_tiktok_curl_sock_find(curl, s);

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, curl->log, 0,
                   "tiktok curl: socket %d what:%d known:%d",
                   (int) s, what, sk != NULL);

    if (what == CURL_POLL_REMOVE) {
        if (sk) {
            ngx_http_tiktok_curl_sock_close(sk);
        }

        return 0;
    }

    if (curl->destroyed) {
        return 0;
    }

    if (sk == NULL) {
        sk = ngx_http_tiktok_curl_sock_open(curl, s);

        if (sk == NULL) {
            ngx_http_tiktok_curl_doom(curl, easy, "no connection for a "
                                      "socket (worker_connections?)");
            return 0;
        }
    }

    if (ngx_http_tiktok_event_want(sk->c->read, what & CURL_POLL_IN)
        != NGX_OK
        || ngx_http_tiktok_event_want(sk->c->write, what & CURL_POLL_OUT)
           != NGX_OK)
    {
        ngx_http_tiktok_curl_sock_close(sk);
        ngx_http_tiktok_curl_doom(curl, easy, "cannot watch a socket");
    }

    return 0;
}


/*
 * A timeout of 0 means "as soon as possible": the timer expires in this
 * very iteration of the event loop, after the events, never inside
 * libcurl.  The timer is deleted before it is set again, so nginx's lazy
 * timer update cannot keep an older, later expiry.
 */

static int
ngx_http_tiktok_curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    ngx_http_tiktok_curl_t  *curl = userp;

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, curl->log, 0,
                   "tiktok curl: timer %l", timeout_ms);

    if (curl->timer.timer_set) {
        ngx_del_timer(&curl->timer);
    }

    if (timeout_ms >= 0 && !curl->destroyed) {
        ngx_add_timer(&curl->timer, (ngx_msec_t) timeout_ms);
    }

    return 0;
}


/*
 * libcurl announces CURL_POLL_REMOVE before it closes a socket; should a
 * wrapper still exist, it goes now, while the descriptor is open, so a new
 * socket that reuses the number never meets stale nginx event state.
 */

static int
ngx_http_tiktok_curl_close_cb(void *clientp, curl_socket_t s)
{
    ngx_http_tiktok_curl_t  *curl = clientp;

    ngx_http_tiktok_curl_sock_t  *sk;

    sk = ngx_http_tiktok_curl_sock_find(curl, s);

    if (sk) {
        ngx_http_tiktok_curl_sock_close(sk);
    }

    return close(s);
}


static ngx_http_tiktok_curl_sock_t *
ngx_http_tiktok_curl_sock_find(ngx_http_tiktok_curl_t *curl, curl_socket_t s)
{
    ngx_queue_t                  *q;
    ngx_http_tiktok_curl_sock_t  *sk;

    for (q = ngx_queue_head(&curl->sockets);
         q != ngx_queue_sentinel(&curl->sockets);
         q = ngx_queue_next(q))
    {
        sk = ngx_queue_data(q, ngx_http_tiktok_curl_sock_t, queue);

        if (sk->c->fd == s) {
            return sk;
        }
    }

    return NULL;
}


static ngx_http_tiktok_curl_sock_t *
ngx_http_tiktok_curl_sock_open(ngx_http_tiktok_curl_t *curl, curl_socket_t s)
{
    ngx_connection_t             *c;
    ngx_http_tiktok_curl_sock_t  *sk;

    sk = ngx_alloc(sizeof(ngx_http_tiktok_curl_sock_t), curl->log);
    if (sk == NULL) {
        return NULL;
    }

    c = ngx_get_connection(s, curl->log);
    if (c == NULL) {
        ngx_free(sk);
        return NULL;
    }

    /* the descriptor is libcurl's: nginx must not close it */
    c->shared = 1;
    c->data = sk;
    c->read->handler = ngx_http_tiktok_curl_event;
    c->write->handler = ngx_http_tiktok_curl_event;
    c->read->log = c->log;
    c->write->log = c->log;

    sk->c = c;
    sk->curl = curl;

    ngx_queue_insert_tail(&curl->sockets, &sk->queue);

    return sk;
}


/*
 * Level-triggered: libcurl need not read or write a socket dry, nor libpq
 * (ngx_http_tiktok_pg.c).
 */

ngx_int_t
ngx_http_tiktok_event_want(ngx_event_t *ev, ngx_uint_t want)
{
    ngx_uint_t  event;

    event = ev->write ? NGX_WRITE_EVENT : NGX_READ_EVENT;

    if (want && !ev->active) {
        return ngx_add_event(ev, event, NGX_LEVEL_EVENT);
    }

    if (!want && ev->active) {
        return ngx_del_event(ev, event, 0);
    }

    return NGX_OK;
}


/*
 * A buffer that doubles, from 4 KB: an answer (here and in a subrequest),
 * a form.  The old copy may hold a secret (a token, the client secret): it
 * is zeroed, then freed if it is a large block.
 */

ngx_int_t
ngx_http_tiktok_buf_room(ngx_pool_t *pool, ngx_str_t *buf, size_t *cap,
    size_t need, size_t max)
{
    u_char  *p;
    size_t   n;

    if (need <= *cap) {
        return NGX_OK;
    }

    n = ngx_min(ngx_max(ngx_max(*cap * 2, need), 4096), max);

    p = ngx_pnalloc(pool, n);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (buf->len) {
        ngx_memcpy(p, buf->data, buf->len);
        ngx_explicit_memzero(buf->data, buf->len);
    }

    if (buf->data) {
        (void) ngx_pfree(pool, buf->data);
    }

    buf->data = p;
    *cap = n;

    return NGX_OK;
}


/* the descriptor is still open: its events go before the connection */

static void
ngx_http_tiktok_curl_sock_close(ngx_http_tiktok_curl_sock_t *sk)
{
    (void) ngx_http_tiktok_event_want(sk->c->read, 0);
    (void) ngx_http_tiktok_event_want(sk->c->write, 0);

    ngx_queue_remove(&sk->queue);

    /* c->shared: frees the connection, leaves the descriptor alone */
    ngx_close_connection(sk->c);

    ngx_free(sk);
}


/* a socket we could not watch: its transfer fails from a posted event */

static void
ngx_http_tiktok_curl_doom(ngx_http_tiktok_curl_t *curl, CURL *easy,
    const char *why)
{
    ngx_queue_t                 *q;
    ngx_http_tiktok_curl_req_t  *req;

    for (q = ngx_queue_head(&curl->active);
         q != ngx_queue_sentinel(&curl->active);
         q = ngx_queue_next(q))
    {
        req = ngx_queue_data(q, ngx_http_tiktok_curl_req_t, queue);

        if (req->easy == easy) {
            req->doomed = 1;
            req->failed = why;
            break;
        }
    }

    ngx_log_error(NGX_LOG_ERR, curl->log, 0, "tiktok curl: %s", why);

    if (!curl->kick.posted) {
        ngx_post_event(&curl->kick, &ngx_posted_events);
    }
}


/* --- nginx's events: here libcurl is called ---------------------------- */


/* both events of a socket */

static void
ngx_http_tiktok_curl_event(ngx_event_t *ev)
{
    ngx_connection_t             *c;
    ngx_http_tiktok_curl_sock_t  *sk;

    c = ev->data;
    sk = c->data;

    if (c->close) {
        /* worker_shutdown_timeout: nginx closes every connection */
        ngx_http_tiktok_curl_abort_all(sk->curl, "the worker is exiting");
        return;
    }

    /* the connection may be gone when this returns */

    ngx_http_tiktok_curl_action(sk->curl, c->fd, ev->write ? CURL_CSELECT_OUT
                                                           : CURL_CSELECT_IN);
}


static void
ngx_http_tiktok_curl_timeout(ngx_event_t *ev)
{
    ngx_http_tiktok_curl_t  *curl = ev->data;

    ngx_http_tiktok_curl_action(curl, CURL_SOCKET_TIMEOUT, 0);
}


static void
ngx_http_tiktok_curl_kick(ngx_event_t *ev)
{
    ngx_http_tiktok_curl_t  *curl = ev->data;

    ngx_queue_t                 *q;
    ngx_http_tiktok_curl_req_t  *req;

again:

    for (q = ngx_queue_head(&curl->active);
         q != ngx_queue_sentinel(&curl->active);
         q = ngx_queue_next(q))
    {
        req = ngx_queue_data(q, ngx_http_tiktok_curl_req_t, queue);

        if (req->doomed) {
            /* the handler may change the queue */
            ngx_http_tiktok_curl_finish(req, CURLE_COULDNT_CONNECT);
            goto again;
        }
    }
}


/*
 * Runs every NGX_HTTP_TIKTOK_CURL_WATCH ms while requests are in flight;
 * not cancelable, so a gracefully exiting worker waits for it.  Once it
 * sees the worker exiting it waits NGX_HTTP_TIKTOK_CURL_GRACE more, then
 * aborts what is left; a worker with nothing in flight has no such timer.
 */

static void
ngx_http_tiktok_curl_watch(ngx_event_t *ev)
{
    ngx_http_tiktok_curl_t  *curl = ev->data;

    if (curl->nactive == 0) {
        return;
    }

    if (!ngx_exiting) {
        ngx_add_timer(ev, NGX_HTTP_TIKTOK_CURL_WATCH);
        return;
    }

    if (!curl->exiting) {
        curl->exiting = 1;

        ngx_log_error(NGX_LOG_INFO, curl->log, 0,
                      "tiktok curl: the worker is exiting, %ui background "
                      "request(s) in flight get %M ms to finish",
                      curl->nactive, (ngx_msec_t) NGX_HTTP_TIKTOK_CURL_GRACE);

        ngx_add_timer(ev, NGX_HTTP_TIKTOK_CURL_GRACE);
        return;
    }

    ngx_http_tiktok_curl_abort_all(curl, "the worker is exiting");
}


static void
ngx_http_tiktok_curl_watch_update(ngx_http_tiktok_curl_t *curl)
{
    if (curl->nactive == 0) {
        if (curl->watch.timer_set) {
            ngx_del_timer(&curl->watch);
        }

        return;
    }

    if (!curl->watch.timer_set && !curl->destroyed) {
        ngx_add_timer(&curl->watch, NGX_HTTP_TIKTOK_CURL_WATCH);
    }
}


static void
ngx_http_tiktok_curl_action(ngx_http_tiktok_curl_t *curl, curl_socket_t s,
    int mask)
{
    int        running;
    sigset_t   set, saved;
    CURLMcode  mc;

    /*
     * libcurl starts its resolver threads in here: they inherit a mask
     * that blocks the signals nginx handles, so a SIGQUIT or SIGHUP is
     * never taken by a thread whose wake-up the worker would not see.
     */

    sigfillset(&set);
    sigdelset(&set, SIGSEGV);
    sigdelset(&set, SIGBUS);
    sigdelset(&set, SIGFPE);
    sigdelset(&set, SIGILL);
    sigdelset(&set, SIGABRT);
    sigdelset(&set, SIGTRAP);

    (void) pthread_sigmask(SIG_BLOCK, &set, &saved);

    mc = curl_multi_socket_action(curl->multi, s, mask, &running);

    (void) pthread_sigmask(SIG_SETMASK, &saved, NULL);

    if (mc != CURLM_OK) {
        ngx_log_error(NGX_LOG_ALERT, curl->log, 0,
                      "tiktok curl: curl_multi_socket_action() failed: %s",
                      curl_multi_strerror(mc));
    }

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, curl->log, 0,
                   "tiktok curl: action %d:%d, %d running",
                   (int) s, mask, running);

    ngx_http_tiktok_curl_drain(curl);
}


/* finished transfers, one at a time: a handler may change the multi */

static void
ngx_http_tiktok_curl_drain(ngx_http_tiktok_curl_t *curl)
{
    int                          left;
    char                        *priv;
    CURL                        *easy;
    CURLMsg                     *msg;
    CURLcode                     code;
    ngx_http_tiktok_curl_req_t  *req;

    for ( ;; ) {
        msg = curl_multi_info_read(curl->multi, &left);

        if (msg == NULL) {
            return;
        }

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        easy = msg->easy_handle;
        code = msg->data.result;

        priv = NULL;
        (void) curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        req = (ngx_http_tiktok_curl_req_t *) priv;

        if (req == NULL || req->easy != easy || !req->active) {
            ngx_log_error(NGX_LOG_ALERT, curl->log, 0,
                          "tiktok curl: a finished transfer is not ours");
            (void) curl_multi_remove_handle(curl->multi, easy);
            continue;
        }

        ngx_http_tiktok_curl_finish(req, code);
    }
}


static void
ngx_http_tiktok_curl_finish(ngx_http_tiktok_curl_req_t *req, CURLcode code)
{
    long       status;
    ngx_str_t  url;

    status = 0;

    if (code == CURLE_OK) {
        (void) curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
    }

    ngx_http_tiktok_curl_release(req);

    req->elapsed = ngx_current_msec - req->start;

    if (code == CURLE_OK && status > 0) {
        req->rc = NGX_OK;
        req->status = status;

        if (req->response.data == NULL) {
            req->response.data = (u_char *) "";
        }

    } else {
        req->rc = NGX_ERROR;
        req->timed_out = (code == CURLE_OPERATION_TIMEDOUT);
        ngx_str_null(&req->response);

        /* announced (CURLE_FILESIZE_EXCEEDED) or found while writing */

        if (code == CURLE_FILESIZE_EXCEEDED || req->too_large) {
            req->too_large = 1;
            req->failed = "the answer is larger than the limit";
        }

        if (req->failed) {
            (void) ngx_cpystrn((u_char *) req->error, (u_char *) req->failed,
                               CURL_ERROR_SIZE);

        } else if (req->error[0] == '\0') {
            (void) ngx_cpystrn((u_char *) req->error,
                               (u_char *) curl_easy_strerror(code),
                               CURL_ERROR_SIZE);
        }

        ngx_http_tiktok_curl_scrub(req, code);
    }

    ngx_http_tiktok_curl_log_url(&req->url, &url);

    if (req->rc == NGX_OK) {
        ngx_log_debug6(NGX_LOG_DEBUG_HTTP, req->log, 0,
                       "tiktok curl [%V]: %s %V: %l, %uz bytes, %M ms",
                       &req->request_id, req->method, &url, req->status,
                       req->response.len, req->elapsed);

    } else {
        ngx_log_error(NGX_LOG_INFO, req->log, 0,
                      "tiktok curl [%V]: %s %V failed after %M ms: %s",
                      &req->request_id, req->method, &url, req->elapsed,
                      req->error);
    }

    req->handler(req);
}


/* takes the request out of libcurl: no handler will run for it */

static void
ngx_http_tiktok_curl_release(ngx_http_tiktok_curl_req_t *req)
{
    CURLMcode                mc;
    struct curl_slist       *h;
    ngx_http_tiktok_curl_t  *curl;

    curl = req->curl;

    if (req->easy) {
        mc = curl_multi_remove_handle(curl->multi, req->easy);

        if (mc != CURLM_OK) {
            ngx_log_error(NGX_LOG_ALERT, req->log, 0,
                          "tiktok curl: curl_multi_remove_handle() failed: "
                          "%s", curl_multi_strerror(mc));
        }

        curl_easy_cleanup(req->easy);
        req->easy = NULL;
    }

    if (req->headers) {
        for (h = req->headers; h; h = h->next) {
            if (ngx_strncmp(h->data, "Authorization:", 14) == 0) {
                ngx_explicit_memzero(h->data, ngx_strlen(h->data));
            }
        }

        curl_slist_free_all(req->headers);
        req->headers = NULL;
    }

    if (req->active) {
        ngx_queue_remove(&req->queue);
        req->active = 0;
        curl->nactive--;

        ngx_http_tiktok_curl_watch_update(curl);
    }
}


static void
ngx_http_tiktok_curl_abort_all(ngx_http_tiktok_curl_t *curl,
    const char *why)
{
    ngx_queue_t                 *q;
    ngx_http_tiktok_curl_req_t  *req;

    if (curl->nactive) {
        ngx_log_error(NGX_LOG_INFO, curl->log, 0,
                      "tiktok curl: aborting %ui background request(s): %s",
                      curl->nactive, why);
    }

    curl->exiting = 1;

    while (!ngx_queue_empty(&curl->active)) {
        q = ngx_queue_head(&curl->active);
        req = ngx_queue_data(q, ngx_http_tiktok_curl_req_t, queue);

        req->aborted = 1;
        req->failed = why;

        ngx_http_tiktok_curl_finish(req, CURLE_ABORTED_BY_CALLBACK);
    }
}


/* --- the transfer's own callbacks: buffers only ------------------------ */


static size_t
ngx_http_tiktok_curl_write(char *ptr, size_t size, size_t nmemb, void *data)
{
    ngx_http_tiktok_curl_req_t  *req = data;

    size_t  n, need;

    n = size * nmemb;
    need = req->response.len + n;

    if (need > req->max_response) {
        req->too_large = 1;
        return 0;
    }

    if (ngx_http_tiktok_buf_room(req->pool, &req->response, &req->size, need,
                                 req->max_response)
        != NGX_OK)
    {
        req->failed = "out of memory";
        return 0;
    }

    ngx_memcpy(req->response.data + req->response.len, ptr, n);
    req->response.len += n;

    return n;
}


/* Retry-After of the final answer; a new status line starts afresh */

static size_t
ngx_http_tiktok_curl_header(char *buf, size_t size, size_t nitems,
    void *data)
{
    ngx_http_tiktok_curl_req_t  *req = data;

    u_char  *p, *last, *v;
    size_t   n;

    n = size * nitems;
    p = (u_char *) buf;
    last = p + n;

    if (n >= 5 && ngx_strncmp(p, "HTTP/", 5) == 0) {
        ngx_str_null(&req->retry_after);
        return n;
    }

    if (n < sizeof("Retry-After:") - 1
        || ngx_strncasecmp(p, (u_char *) "Retry-After:",
                           sizeof("Retry-After:") - 1)
           != 0)
    {
        return n;
    }

    p += sizeof("Retry-After:") - 1;

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    while (last > p && (last[-1] == CR || last[-1] == LF
                        || last[-1] == ' ' || last[-1] == '\t'))
    {
        last--;
    }

    if (last - p > 64) {
        return n;
    }

    v = ngx_pnalloc(req->pool, last - p);
    if (v == NULL) {
        return n;
    }

    ngx_memcpy(v, p, last - p);
    req->retry_after.data = v;
    req->retry_after.len = last - p;

    return n;
}


static size_t
ngx_http_tiktok_curl_read(char *buf, size_t size, size_t nitems, void *data)
{
    ngx_http_tiktok_curl_req_t  *req = data;

    off_t    rest;
    size_t   n;
    ssize_t  rc;

    n = size * nitems;
    rest = (req->length ? req->length : (off_t) req->body.len) - req->sent;

    if (rest <= 0) {
        return 0;
    }

    if ((off_t) n > rest) {
        n = (size_t) rest;
    }

    if (req->length == 0) {
        ngx_memcpy(buf, req->body.data + req->sent, n);
        req->sent += n;

        return n;
    }

    do {
        rc = pread(req->fd, buf, n, req->offset + req->sent);
    } while (rc == -1 && ngx_errno == NGX_EINTR);

    if (rc == -1) {
        ngx_log_error(NGX_LOG_ERR, req->log, ngx_errno,
                      "tiktok curl [%V]: pread() of the body failed",
                      &req->request_id);
        req->failed = "cannot read the body file";
        return CURL_READFUNC_ABORT;
    }

    if (rc == 0) {
        ngx_log_error(NGX_LOG_ERR, req->log, 0,
                      "tiktok curl [%V]: the body file ends %O bytes "
                      "early", &req->request_id, rest);
        req->failed = "the body file is shorter than its length";
        return CURL_READFUNC_ABORT;
    }

    req->sent += rc;

    return (size_t) rc;
}


static int
ngx_http_tiktok_curl_seek(void *data, curl_off_t offset, int origin)
{
    ngx_http_tiktok_curl_req_t  *req = data;

    off_t  total;

    total = req->length ? req->length : (off_t) req->body.len;

    if (origin != SEEK_SET || offset < 0 || (off_t) offset > total) {
        return CURL_SEEKFUNC_FAIL;
    }

    req->sent = (off_t) offset;

    return CURL_SEEKFUNC_OK;
}


/* --- secrets and logs --------------------------------------------------- */


/*
 * libcurl's messages name hosts, not headers; still, the token and the
 * URL's query (an upload_url carries its upload token there) must never
 * reach a log through them.
 */

static void
ngx_http_tiktok_curl_scrub(ngx_http_tiktok_curl_req_t *req, CURLcode code)
{
    u_char     *e, *last, *q;
    size_t      n;
    ngx_str_t   query;

    e = (u_char *) req->error;
    last = e + ngx_strlen(req->error);

    q = ngx_strlchr(req->url.data, req->url.data + req->url.len, '?');

    query.data = q ? q + 1 : NULL;
    query.len = q ? (size_t) (req->url.data + req->url.len - q - 1) : 0;

    /* nginx's search ignores case: when in doubt, the message goes */

    if ((req->bearer.len
         && ngx_strlcasestrn(e, last, req->bearer.data, req->bearer.len - 1))
        || (query.len
            && ngx_strlcasestrn(e, last, query.data, query.len - 1)))
    {
        (void) ngx_cpystrn((u_char *) req->error,
                           (u_char *) curl_easy_strerror(code),
                           CURL_ERROR_SIZE);
    }

    /* one line */

    for (n = 0; req->error[n]; n++) {
        if (req->error[n] == CR || req->error[n] == LF) {
            req->error[n] = ' ';
        }
    }
}


/* scheme://host/path for logs: the query may hold an upload token */

static void
ngx_http_tiktok_curl_log_url(ngx_str_t *url, ngx_str_t *out)
{
    u_char  *q;

    q = ngx_strlchr(url->data, url->data + url->len, '?');

    out->data = url->data;
    out->len = q ? (size_t) (q - url->data) : url->len;
}
