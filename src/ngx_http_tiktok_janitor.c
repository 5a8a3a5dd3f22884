
/*
 * The upload spool's janitor.  POST /post keeps a spooled file whenever
 * its row may exist (an INSERT whose answer was lost), and the publisher
 * or a cancel can fail to remove the file of a finished post; so files
 * can outlive their use.  In one worker, the janitor walks the spool in
 * steps of NGX_HTTP_TIKTOK_JANITOR_STEP entries per timer tick, and asks
 * the database (tiktok.spool_files_in_use(), one query per step) which of
 * the files older than the grace belong to a post still to be published;
 * the others go: orphans and the files of published, failed or cancelled
 * posts.  Only files named as POST /post names them are touched, and
 * nothing is removed when the database cannot answer.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_janitor.h"


#define NGX_HTTP_TIKTOK_JANITOR_GRACE   3600        /* s: an upload's row */
#define NGX_HTTP_TIKTOK_JANITOR_FIRST   2000        /* ms after start */
#define NGX_HTTP_TIKTOK_JANITOR_EVERY   (600 * 1000) /* ms between walks */
#define NGX_HTTP_TIKTOK_JANITOR_NEXT    100         /* ms between steps */
#define NGX_HTTP_TIKTOK_JANITOR_STEP    128         /* entries per step */


typedef struct {
    ngx_http_tiktok_main_conf_t  *tmcf;
    ngx_event_t                   timer;
    ngx_str_t                     spool;        /* NUL-terminated */
    ngx_dir_t                     dir;
    ngx_uint_t                    removed;      /* in this walk */
    ngx_array_t                  *files;        /* the step's, ngx_str_t */
    unsigned                      open:1;
} ngx_http_tiktok_janitor_t;


static void ngx_http_tiktok_janitor_tick(ngx_event_t *ev);
static ngx_int_t ngx_http_tiktok_janitor_step(ngx_http_tiktok_janitor_t *j,
    ngx_pool_t *pool);
static ngx_uint_t ngx_http_tiktok_janitor_ours(u_char *name, size_t len);
static void ngx_http_tiktok_janitor_answer(ngx_http_tiktok_pg_query_t *q);
static void ngx_http_tiktok_janitor_next(ngx_http_tiktok_janitor_t *j,
    ngx_uint_t stop);


static const char  ngx_http_tiktok_janitor_sql[] =
    "SELECT tiktok.spool_files_in_use($1::text[])";


ngx_int_t
ngx_http_tiktok_janitor_init(ngx_cycle_t *cycle,
    ngx_http_tiktok_main_conf_t *tmcf)
{
    ngx_http_tiktok_janitor_t  *j;

    /* one walker is enough: worker 0 of each nginx */

    if (ngx_worker != 0) {
        return NGX_OK;
    }

    j = ngx_pcalloc(cycle->pool, sizeof(ngx_http_tiktok_janitor_t));
    if (j == NULL) {
        return NGX_ERROR;
    }

    j->tmcf = tmcf;

    /* a path from the configuration: ngx_conf_full_name ends it in NUL */
    j->spool = tmcf->upload_spool;

    ngx_http_tiktok_event_init(&j->timer, ngx_http_tiktok_janitor_tick, j,
                               cycle->log);
    j->timer.cancelable = 1;

    ngx_add_timer(&j->timer, NGX_HTTP_TIKTOK_JANITOR_FIRST);

    return NGX_OK;
}


static void
ngx_http_tiktok_janitor_tick(ngx_event_t *ev)
{
    ngx_pool_t                  *pool;
    ngx_http_tiktok_janitor_t   *j;

    j = ev->data;

    if (ngx_exiting || ngx_terminate) {
        ngx_http_tiktok_janitor_next(j, 1);
        return;
    }

    if (!j->open) {
        if (ngx_open_dir(&j->spool, &j->dir) == NGX_ERROR) {
            ngx_log_error(NGX_LOG_ERR, ev->log, ngx_errno,
                          ngx_open_dir_n " \"%V\" failed", &j->spool);
            ngx_add_timer(&j->timer, NGX_HTTP_TIKTOK_JANITOR_EVERY);
            return;
        }

        j->open = 1;
        j->removed = 0;
    }

    pool = ngx_create_pool(4096, ev->log);
    if (pool == NULL) {
        ngx_http_tiktok_janitor_next(j, 0);
        return;
    }

    if (ngx_http_tiktok_janitor_step(j, pool) == NGX_OK) {
        /*
         * ngx_http_tiktok_janitor_answer destroys the pool and goes on
         * (maybe already: nothing here may touch the pool any more)
         */
        return;
    }

    ngx_destroy_pool(pool);
    ngx_http_tiktok_janitor_next(j, 0);
}


/*
 * Reads up to NGX_HTTP_TIKTOK_JANITOR_STEP entries: the module's files
 * older than the grace go into files, and the query that says which of
 * them are still needed is started.  NGX_OK: the query runs and its
 * handler owns the pool; NGX_DECLINED: nothing to ask (the walk may have
 * ended: j->open is 0); NGX_ERROR.
 */

static ngx_int_t
ngx_http_tiktok_janitor_step(ngx_http_tiktok_janitor_t *j, ngx_pool_t *pool)
{
    u_char                      *p, *name;
    size_t                       len, size;
    time_t                       old;
    ngx_str_t                   *f, param;
    ngx_uint_t                   i, n;
    ngx_array_t                 *files;
    ngx_http_tiktok_pg_query_t  *q;

    old = ngx_time() - NGX_HTTP_TIKTOK_JANITOR_GRACE;

    files = ngx_array_create(pool, 16, sizeof(ngx_str_t));
    if (files == NULL) {
        return NGX_ERROR;
    }

    for (n = 0; n < NGX_HTTP_TIKTOK_JANITOR_STEP; n++) {

        ngx_set_errno(0);

        if (ngx_read_dir(&j->dir) == NGX_ERROR) {
            if (ngx_errno != NGX_ENOMOREFILES) {
                ngx_log_error(NGX_LOG_ERR, j->timer.log, ngx_errno,
                              ngx_read_dir_n " \"%V\" failed", &j->spool);
            }

            (void) ngx_close_dir(&j->dir);
            j->open = 0;
            break;
        }

        name = ngx_de_name(&j->dir);
        len = ngx_de_namelen(&j->dir);

        if (!ngx_http_tiktok_janitor_ours(name, len)) {
            continue;
        }

        f = ngx_array_push(files);
        if (f == NULL) {
            return NGX_ERROR;
        }

        f->len = j->spool.len + 1 + len;
        f->data = ngx_pnalloc(pool, f->len + 1);
        if (f->data == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(f->data, "%V/%*s%Z", &j->spool, len, name);

        if (ngx_de_info(f->data, &j->dir) == NGX_FILE_ERROR
            || !ngx_de_is_file(&j->dir)
            || ngx_de_mtime(&j->dir) > old)
        {
            files->nelts--;     /* gone already, or young: its row may come */
        }
    }

    if (files->nelts == 0) {
        return NGX_DECLINED;
    }

    /* a text[] literal: {"path","path"}, quotes and backslashes escaped */

    f = files->elts;
    size = 2;

    for (i = 0; i < files->nelts; i++) {
        size += 2 * f[i].len + 3;
    }

    param.data = ngx_pnalloc(pool, size);
    if (param.data == NULL) {
        return NGX_ERROR;
    }

    p = param.data;
    *p++ = '{';

    for (i = 0; i < files->nelts; i++) {
        if (i) {
            *p++ = ',';
        }

        *p++ = '"';

        for (name = f[i].data; name < f[i].data + f[i].len; name++) {
            if (*name == '"' || *name == '\\') {
                *p++ = '\\';
            }

            *p++ = *name;
        }

        *p++ = '"';
    }

    *p++ = '}';
    param.len = p - param.data;

    q = ngx_http_tiktok_pg_query_create(pool, j->timer.log, NULL,
                                        ngx_http_tiktok_janitor_answer, j);
    j->files = files;

    if (q == NULL
        || ngx_http_tiktok_pg_add(q, ngx_http_tiktok_janitor_sql, 1, &param)
           != NGX_OK
        || ngx_http_tiktok_pg_run(j->tmcf->pg_pool, q) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* 32 hex digits and .mp4, .mov or .webm: a name POST /post gave */

static ngx_uint_t
ngx_http_tiktok_janitor_ours(u_char *name, size_t len)
{
    size_t  i;

    if (len < 36) {
        return 0;
    }

    for (i = 0; i < 32; i++) {
        if (!((name[i] >= '0' && name[i] <= '9')
              || (name[i] >= 'a' && name[i] <= 'f')))
        {
            return 0;
        }
    }

    name += 32;
    len -= 32;

    return (len == 4 && ngx_strncmp(name, ".mp4", 4) == 0)
           || (len == 4 && ngx_strncmp(name, ".mov", 4) == 0)
           || (len == 5 && ngx_strncmp(name, ".webm", 5) == 0);
}


/* the files in use came back: the others go */

static void
ngx_http_tiktok_janitor_answer(ngx_http_tiktok_pg_query_t *q)
{
    int                         row, rows;
    char                       *v;
    ngx_str_t                  *f;
    ngx_uint_t                  i;
    ngx_pool_t                 *pool;
    ngx_http_tiktok_janitor_t  *j;

    j = q->data;
    pool = q->pool;

    if (q->rc != NGX_OK) {
        /* nothing is removed on a guess: the next walk tries again */
        ngx_log_error(NGX_LOG_WARN, j->timer.log, 0,
                      "tiktok: janitor: the database did not say which "
                      "spool files are in use; none removed");

        ngx_destroy_pool(pool);
        ngx_http_tiktok_janitor_next(j, 1);
        return;
    }

    rows = PQntuples(q->res[0]);
    f = j->files->elts;

    for (i = 0; i < j->files->nelts; i++) {

        for (row = 0; row < rows; row++) {
            v = PQgetvalue(q->res[0], row, 0);

            if ((size_t) PQgetlength(q->res[0], row, 0) == f[i].len
                && ngx_strncmp(v, f[i].data, f[i].len) == 0)
            {
                break;
            }
        }

        if (row < rows) {
            continue;           /* a post still needs it */
        }

        if (ngx_delete_file(f[i].data) == NGX_FILE_ERROR) {
            if (ngx_errno != NGX_ENOENT) {
                ngx_log_error(NGX_LOG_ERR, j->timer.log, ngx_errno,
                              ngx_delete_file_n " \"%V\" failed", &f[i]);
            }

            continue;
        }

        j->removed++;

        ngx_log_error(NGX_LOG_INFO, j->timer.log, 0,
                      "tiktok: janitor removed \"%V\": no post needs it",
                      &f[i]);
    }

    ngx_destroy_pool(pool);
    ngx_http_tiktok_janitor_next(j, 0);
}


/* the next step soon, or (after stop, or at the walk's end) the next walk */

static void
ngx_http_tiktok_janitor_next(ngx_http_tiktok_janitor_t *j, ngx_uint_t stop)
{
    if (j->open && (stop || ngx_exiting || ngx_terminate)) {
        (void) ngx_close_dir(&j->dir);
        j->open = 0;
    }

    if (ngx_exiting || ngx_terminate) {
        return;
    }

    if (j->open) {
        ngx_add_timer(&j->timer, NGX_HTTP_TIKTOK_JANITOR_NEXT);
        return;
    }

    if (j->removed) {
        ngx_log_error(NGX_LOG_NOTICE, j->timer.log, 0,
                      "tiktok: janitor removed %ui spool files", j->removed);
        j->removed = 0;
    }

    ngx_add_timer(&j->timer, NGX_HTTP_TIKTOK_JANITOR_EVERY);
}
