
/*
 * ngx_http_tiktok_module: directives, configuration, variables and the
 * per-worker set-up.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_module.h"
#include "ngx_http_tiktok_handler.h"
#include "ngx_http_tiktok_janitor.h"
#include "ngx_http_tiktok_metrics.h"
#include "ngx_http_tiktok_scheduler.h"
#include "ngx_http_tiktok_validate.h"
#include "ngx_http_tiktok_webhook.h"


static void *ngx_http_tiktok_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_tiktok_init_main_conf(ngx_conf_t *cf, void *conf);
static ngx_int_t ngx_http_tiktok_default_spool(ngx_conf_t *cf,
    ngx_str_t *spool);
static void *ngx_http_tiktok_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_tiktok_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_tiktok_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_tiktok_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_tiktok_init_process(ngx_cycle_t *cycle);
static void ngx_http_tiktok_exit_process(ngx_cycle_t *cycle);

static char *ngx_http_tiktok_secret_env(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tiktok_token_key_env(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_tiktok_getenv(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *name, ngx_str_t *value, ngx_uint_t optional);
static char *ngx_http_tiktok_url(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tiktok_scopes(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tiktok_postgres(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tiktok_scheduler(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tiktok_pull_url_prefixes(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_tiktok_api_location(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tiktok_path(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tiktok_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

static ngx_int_t ngx_http_tiktok_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


/* what each URL directive accepts */
#define NGX_HTTP_TIKTOK_URL_HTTPS     0x01
#define NGX_HTTP_TIKTOK_URL_NO_QUERY  0x02
#define NGX_HTTP_TIKTOK_URL_REDIRECT  0x04   /* TikTok's redirect URI rules */


static char *ngx_http_tiktok_title_max_chars(ngx_conf_t *cf, void *post,
    void *data);

/* nginx's own bounds check does not name the directive; this one does */
static ngx_conf_post_t  ngx_http_tiktok_title_post = {
    ngx_http_tiktok_title_max_chars
};


/* the scopes the module knows; tiktok_scopes accepts only these */
static ngx_str_t  ngx_http_tiktok_scopes_known[] = {
    ngx_string("user.info.basic"),
    ngx_string("user.info.profile"),
    ngx_string("user.info.stats"),
    ngx_string("video.list"),
    ngx_string("video.publish"),
    ngx_string("video.upload"),
    ngx_null_string
};


static ngx_command_t  ngx_http_tiktok_commands[] = {

    { ngx_string("tiktok_client_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tiktok_main_conf_t, client_key),
      NULL },

    { ngx_string("tiktok_client_secret_env"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_tiktok_secret_env,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tiktok_token_key_env"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_tiktok_token_key_env,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tiktok_redirect_uri"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_tiktok_url,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tiktok_main_conf_t, redirect_uri),
      (void *) (NGX_HTTP_TIKTOK_URL_HTTPS|NGX_HTTP_TIKTOK_URL_NO_QUERY
                |NGX_HTTP_TIKTOK_URL_REDIRECT) },

    { ngx_string("tiktok_app_return_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_tiktok_url,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tiktok_main_conf_t, app_return_url),
      (void *) 0 },

    { ngx_string("tiktok_scopes"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_tiktok_scopes,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tiktok_postgres"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_tiktok_postgres,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tiktok_cache_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_tiktok_cache_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      &ngx_http_tiktok_module },

    { ngx_string("tiktok_api_location"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_tiktok_api_location,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tiktok_main_conf_t, api_location),
      NULL },

    { ngx_string("tiktok_api_max_response"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tiktok_main_conf_t, api_max_response),
      NULL },

    { ngx_string("tiktok_api_base_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_tiktok_url,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tiktok_main_conf_t, api_base_url),
      (void *) (NGX_HTTP_TIKTOK_URL_HTTPS|NGX_HTTP_TIKTOK_URL_NO_QUERY) },

    { ngx_string("tiktok_authorize_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_tiktok_url,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tiktok_main_conf_t, authorize_url),
      (void *) (NGX_HTTP_TIKTOK_URL_HTTPS|NGX_HTTP_TIKTOK_URL_NO_QUERY) },

    { ngx_string("tiktok_ca_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_tiktok_path,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tiktok_main_conf_t, ca_certificate),
      NULL },

    { ngx_string("tiktok_scheduler"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE123,
      ngx_http_tiktok_scheduler,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tiktok_title_max_chars"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tiktok_main_conf_t, title_max_chars),
      &ngx_http_tiktok_title_post },

    { ngx_string("tiktok_upload_spool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_tiktok_path,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tiktok_main_conf_t, upload_spool),
      NULL },

    { ngx_string("tiktok_pull_url_prefixes"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_tiktok_pull_url_prefixes,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tiktok_pkce"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tiktok_main_conf_t, pkce),
      NULL },

    { ngx_string("tiktok_webhooks"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tiktok_main_conf_t, webhooks),
      NULL },

    { ngx_string("tiktok_user_id"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tiktok_loc_conf_t, user_id),
      NULL },

    { ngx_string("tiktok_jwt"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_tiktok_jwt,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tiktok_loc_conf_t, jwt),
      NULL },

    { ngx_string("tiktok_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_tiktok_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tiktok_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_tiktok_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tiktok_webhook"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_tiktok_webhook,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_tiktok_module_ctx = {
    ngx_http_tiktok_add_variables,         /* preconfiguration */
    ngx_http_tiktok_postconfiguration,     /* postconfiguration */

    ngx_http_tiktok_create_main_conf,      /* create main configuration */
    ngx_http_tiktok_init_main_conf,        /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_tiktok_create_loc_conf,       /* create location configuration */
    ngx_http_tiktok_merge_loc_conf         /* merge location configuration */
};


ngx_module_t  ngx_http_tiktok_module = {
    NGX_MODULE_V1,
    &ngx_http_tiktok_module_ctx,           /* module context */
    ngx_http_tiktok_commands,              /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_tiktok_init_process,          /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_tiktok_exit_process,          /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_tiktok_vars[] = {

    { ngx_string("tiktok_cache_status"), NULL, ngx_http_tiktok_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tiktok_upstream_ms"), NULL, ngx_http_tiktok_variable, 1,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static void *
ngx_http_tiktok_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_tiktok_main_conf_t));
    if (tmcf == NULL) {
        return NULL;
    }

    tmcf->api_max_response = NGX_CONF_UNSET_SIZE;
    tmcf->scheduler = NGX_CONF_UNSET;
    tmcf->scheduler_interval = NGX_CONF_UNSET_MSEC;
    tmcf->scheduler_batch = NGX_CONF_UNSET_UINT;
    tmcf->title_max_chars = NGX_CONF_UNSET_UINT;
    tmcf->pkce = NGX_CONF_UNSET;
    tmcf->webhooks = NGX_CONF_UNSET;

    return tmcf;
}


static char *
ngx_http_tiktok_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_tiktok_main_conf_t *tmcf = conf;

    ngx_str_t    name;
    ngx_path_t  *path;

    if (tmcf->scopes.data == NULL) {
        ngx_str_set(&tmcf->scopes, "user.info.basic,video.list,video.publish");
    }

    if (tmcf->api_location.data == NULL) {
        ngx_str_set(&tmcf->api_location, "/_tiktok_api");
    }

    if (tmcf->api_base_url.data == NULL) {
        ngx_str_set(&tmcf->api_base_url, "https://open.tiktokapis.com");
    }

    if (tmcf->authorize_url.data == NULL) {
        ngx_str_set(&tmcf->authorize_url,
                    "https://www.tiktok.com/v2/auth/authorize/");
    }

    if (tmcf->upload_spool.data == NULL
        && ngx_http_tiktok_default_spool(cf, &tmcf->upload_spool) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* nginx creates it at start, owned by the worker processes' user */

    path = ngx_pcalloc(cf->pool, sizeof(ngx_path_t));
    if (path == NULL) {
        return NGX_CONF_ERROR;
    }

    path->name = tmcf->upload_spool;
    path->conf_file = cf->conf_file->file.name.data;
    path->line = cf->conf_file->line;

    if (ngx_add_path(cf, &path) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_conf_init_size_value(tmcf->api_max_response, 1024 * 1024);
    ngx_conf_init_value(tmcf->scheduler, 1);
    ngx_conf_init_msec_value(tmcf->scheduler_interval, 5000);
    ngx_conf_init_uint_value(tmcf->scheduler_batch, 20);
    ngx_conf_init_uint_value(tmcf->title_max_chars, 150);
    ngx_conf_init_value(tmcf->pkce, 1);
    ngx_conf_init_value(tmcf->webhooks, 0);

    ngx_str_set(&name, "request_id");

    tmcf->request_id_index = ngx_http_get_variable_index(cf, &name);
    if (tmcf->request_id_index == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Uploads are renamed from client_body_temp_path into the spool, which
 * needs one file system: by default the spool sits beside nginx's
 * compiled-in body temp directory (Debian: /var/lib/nginx/tiktok_spool).
 */

static ngx_int_t
ngx_http_tiktok_default_spool(ngx_conf_t *cf, ngx_str_t *spool)
{
    u_char     *p, *last;
    ngx_str_t   body = ngx_string(NGX_HTTP_CLIENT_TEMP_PATH);

    last = body.data + body.len;

    for (p = last; p > body.data && p[-1] != '/'; p--) { /* void */ }

    spool->len = (p - body.data) + sizeof("tiktok_spool") - 1;
    spool->data = ngx_pnalloc(cf->pool, spool->len + 1);
    if (spool->data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(spool->data, "%*stiktok_spool%Z", (size_t) (p - body.data),
                body.data);

    return ngx_conf_full_name(cf->cycle, spool, 0);
}


static void *
ngx_http_tiktok_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_tiktok_loc_conf_t  *tlcf;

    tlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_tiktok_loc_conf_t));
    if (tlcf == NULL) {
        return NULL;
    }

    tlcf->user_id = NGX_CONF_UNSET_PTR;
    tlcf->jwt = NGX_CONF_UNSET_PTR;

    return tlcf;
}


static char *
ngx_http_tiktok_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_tiktok_loc_conf_t *prev = parent;
    ngx_http_tiktok_loc_conf_t *conf = child;

    /* api is not merged: tiktok_api is a location's own handler */
    ngx_conf_merge_ptr_value(conf->user_id, prev->user_id, NULL);
    ngx_conf_merge_ptr_value(conf->jwt, prev->jwt, NULL);

    if (conf->api && conf->user_id == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_api\" requires \"tiktok_user_id\" "
                           "to say who the caller is");
        return NGX_CONF_ERROR;
    }

    if (conf->api
        && ngx_http_tiktok_jwt_check(cf, conf->user_id, conf->jwt)
           != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* core's merge ran first: its error pages are final here */
    if (conf->api) {
        return ngx_http_tiktok_error_pages_conf(cf,
                   ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module));
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_tiktok_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_tiktok_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return ngx_http_tiktok_jwt_add_variable(cf);
}


/*
 * A location with tiktok_api needs the whole http-level set-up; say which
 * directive is missing rather than failing at the first request.
 */

static ngx_int_t
ngx_http_tiktok_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_tiktok_module);

    if (ngx_http_tiktok_metrics_postconfiguration(cf) != NGX_OK
        || ngx_http_tiktok_webhook_postconfiguration(cf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!tmcf->configured) {
        return NGX_OK;
    }

#define ngx_http_tiktok_require(cond, directive)                              \
    if (!(cond)) {                                                            \
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,                              \
                      "\"tiktok_api\" is used but \"" directive               \
                      "\" is not set in the http block");                     \
        return NGX_ERROR;                                                     \
    }

    ngx_http_tiktok_require(tmcf->client_key.len, "tiktok_client_key");
    ngx_http_tiktok_require(tmcf->client_secret.len,
                            "tiktok_client_secret_env");
    ngx_http_tiktok_require(tmcf->keyring.current.set,
                            "tiktok_token_key_env");
    ngx_http_tiktok_require(tmcf->redirect_uri.len, "tiktok_redirect_uri");
    ngx_http_tiktok_require(tmcf->app_return_url.len,
                            "tiktok_app_return_url");
    ngx_http_tiktok_require(tmcf->pg, "tiktok_postgres");

#undef ngx_http_tiktok_require

    if (ngx_http_tiktok_post_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_tiktok_api_init(cf);
}


static ngx_int_t
ngx_http_tiktok_init_process(ngx_cycle_t *cycle)
{
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_tiktok_module);

    if (tmcf == NULL || tmcf->pg == NULL) {
        return NGX_OK;
    }

    /*
     * Only processes that serve requests: a worker, or nginx itself with
     * master_process off.  nginx also calls init_process in its cache
     * manager and cache loader, which serve nothing; the loader exits
     * soon after loading, and a post it had claimed would be left in the
     * middle of publishing.
     */

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    tmcf->pg_pool = ngx_http_tiktok_pg_pool_create(cycle, tmcf->pg);
    if (tmcf->pg_pool == NULL) {
        return NGX_ERROR;
    }

    /*
     * cache purges from other nodes, posts to publish from anywhere: on a
     * connection of its own, which a transaction pooler cannot share out
     */
    tmcf->listener = ngx_http_tiktok_listen_start(cycle, tmcf);
    if (tmcf->listener == NULL) {
        return NGX_ERROR;
    }

    /* background TikTok calls (publishing) */
    tmcf->curl = ngx_http_tiktok_curl_init(cycle, &tmcf->ca_certificate);

    if (tmcf->scheduler && tmcf->curl
        && ngx_http_tiktok_scheduler_init(cycle, tmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* spool files no post needs any more */
    if (ngx_http_tiktok_janitor_init(cycle, tmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_tiktok_metrics_init_process(cycle);
}


static void
ngx_http_tiktok_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_tiktok_main_conf_t  *tmcf;

    tmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_tiktok_module);

    if (tmcf == NULL || tmcf->pg_pool == NULL) {
        return;
    }

    /* jobs first: their pools' cleanups cancel their calls and queries */
    ngx_http_tiktok_scheduler_exit(tmcf);

    if (tmcf->curl) {
        ngx_http_tiktok_curl_destroy(tmcf->curl);
        tmcf->curl = NULL;
    }

    if (tmcf->listener) {
        ngx_http_tiktok_listen_stop(tmcf->listener);
        tmcf->listener = NULL;
    }

    ngx_http_tiktok_pg_pool_destroy(tmcf->pg_pool);
    tmcf->pg_pool = NULL;

    ngx_http_tiktok_metrics_exit_process(cycle);
}


/*
 * Secrets come from the environment, read while nginx reads its
 * configuration, so they are never written into nginx.conf.  NGX_DECLINED:
 * an optional variable is not set.
 */

static ngx_int_t
ngx_http_tiktok_getenv(ngx_conf_t *cf, ngx_command_t *cmd, ngx_str_t *name,
    ngx_str_t *value, ngx_uint_t optional)
{
    char    *v;
    u_char   buf[256];

    if (name->len == 0 || name->len >= sizeof(buf)) {
        return NGX_ERROR;
    }

    (void) ngx_cpystrn(buf, name->data, name->len + 1);

    v = getenv((char *) buf);

    if (v == NULL || v[0] == '\0') {
        if (optional) {
            return NGX_DECLINED;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": environment variable \"%V\" is not set "
                           "or empty", &cmd->name, name);
        return NGX_ERROR;
    }

    value->len = ngx_strlen(v);
    value->data = ngx_pnalloc(cf->pool, value->len);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(value->data, v, value->len);

    return NGX_OK;
}


static char *
ngx_http_tiktok_secret_env(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tiktok_main_conf_t *tmcf = conf;

    ngx_str_t  *value;

    if (tmcf->client_secret.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_tiktok_getenv(cf, cmd, &value[1], &tmcf->client_secret, 0)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_tiktok_token_key_env(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tiktok_main_conf_t *tmcf = conf;

    ngx_str_t               *value, text;
    ngx_int_t                rc;
    ngx_uint_t               i;
    ngx_http_tiktok_key_t   *key;

    if (tmcf->keyring.current.set) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        key = (i == 1) ? &tmcf->keyring.current : &tmcf->keyring.previous;

        /* the previous key is optional: set only during a rotation */
        rc = ngx_http_tiktok_getenv(cf, cmd, &value[i], &text, i == 2);

        if (rc == NGX_DECLINED) {
            continue;
        }

        if (rc != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        rc = ngx_http_tiktok_key_decode(&text, key);

        ngx_http_tiktok_cleanse(text.data, text.len);

        if (rc != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"tiktok_token_key_env\": environment "
                               "variable \"%V\" must hold a 32-byte key "
                               "as base64 or 64 hex characters", &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * Absolute URLs.  TikTok's redirect URI rules: https, no query, no
 * fragment, shorter than 512 characters.
 */

static char *
ngx_http_tiktok_url(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char      *p, *last;
    ngx_str_t   *field, *value;
    ngx_uint_t   flags;

    field = (ngx_str_t *) ((u_char *) conf + cmd->offset);

    if (field->data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    flags = (ngx_uint_t) cmd->post;

    p = value[1].data;
    last = p + value[1].len;

    if (value[1].len > 8 && ngx_strncasecmp(p, (u_char *) "https://", 8) == 0)
    {
        p += 8;

    } else if (!(flags & NGX_HTTP_TIKTOK_URL_HTTPS)
               && value[1].len > 7
               && ngx_strncasecmp(p, (u_char *) "http://", 7) == 0)
    {
        p += 7;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must be an absolute %s URL, not \"%V\"",
                           &cmd->name,
                           (flags & NGX_HTTP_TIKTOK_URL_HTTPS)
                               ? "https" : "http or https",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (p == last || *p == '/' || *p == '?' || *p == '#') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" has no host in \"%V\"",
                           &cmd->name, &value[1]);
        return NGX_CONF_ERROR;
    }

    for ( /* void */ ; p < last; p++) {
        if (*p <= ' ' || *p == 0x7f) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" contains a space or control "
                               "character", &cmd->name);
            return NGX_CONF_ERROR;
        }

        if (*p == '#'
            || (*p == '?' && (flags & NGX_HTTP_TIKTOK_URL_NO_QUERY)))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" must not have a %s: \"%V\"",
                               &cmd->name,
                               *p == '#' ? "fragment" : "query string",
                               &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if ((flags & NGX_HTTP_TIKTOK_URL_REDIRECT) && value[1].len >= 512) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must be shorter than 512 characters",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    *field = value[1];

    /* the base URL is joined with "/v2/..." paths */
    if (cmd->offset == offsetof(ngx_http_tiktok_main_conf_t, api_base_url)) {
        while (field->len && field->data[field->len - 1] == '/') {
            field->len--;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_tiktok_scopes(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tiktok_main_conf_t *tmcf = conf;

    u_char     *p, *last;
    ngx_str_t  *value, s, *known;

    if (tmcf->scopes.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    p = value[1].data;
    last = p + value[1].len;

    while (ngx_http_tiktok_next_item(&p, last, ',', &s)) {
        for (known = ngx_http_tiktok_scopes_known; known->len; known++) {
            if (known->len == s.len
                && ngx_strncmp(known->data, s.data, s.len) == 0)
            {
                break;
            }
        }

        if (known->len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"tiktok_scopes\": unknown scope \"%V\"", &s);
            return NGX_CONF_ERROR;
        }
    }

    tmcf->scopes = value[1];

    return NGX_CONF_OK;
}


/* tiktok_postgres "conninfo" [pool=N] [timeout=time] ["listen=conninfo"] */

static char *
ngx_http_tiktok_postgres(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tiktok_main_conf_t *tmcf = conf;

    ngx_str_t                  *value, s, listen;
    ngx_int_t                   n;
    ngx_uint_t                  i;
    ngx_http_tiktok_pg_conf_t  *pgcf, *pglcf;

    if (tmcf->pg) {
        return "is duplicate";
    }

    ngx_str_null(&listen);

    value = cf->args->elts;

    pgcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_tiktok_pg_conf_t));
    if (pgcf == NULL) {
        return NGX_CONF_ERROR;
    }

    pgcf->size = 8;
    pgcf->timeout = 10000;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "pool=", 5) == 0) {
            n = ngx_atoi(value[i].data + 5, value[i].len - 5);
            if (n == NGX_ERROR || n < 1 || n > 1024) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"tiktok_postgres\" has an invalid "
                                   "\"%V\" (1..1024)", &value[i]);
                return NGX_CONF_ERROR;
            }

            pgcf->size = (ngx_uint_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR || n == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"tiktok_postgres\" has an invalid "
                                   "\"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            pgcf->timeout = (ngx_msec_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "listen=", 7) == 0) {
            listen.data = value[i].data + 7;
            listen.len = value[i].len - 7;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_postgres\" has an invalid parameter "
                           "\"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_tiktok_pg_conf(cf, &value[1], "conninfo", pgcf)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    tmcf->pg = pgcf;

    if (listen.data == NULL) {
        /* the listener uses the main conninfo */
        return NGX_CONF_OK;
    }

    if (listen.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_postgres\" has an invalid listen= "
                           "conninfo: it is empty");
        return NGX_CONF_ERROR;
    }

    pglcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_tiktok_pg_conf_t));
    if (pglcf == NULL) {
        return NGX_CONF_ERROR;
    }

    pglcf->size = 1;
    pglcf->timeout = pgcf->timeout;

    if (ngx_http_tiktok_pg_conf(cf, &listen, "listen= conninfo", pglcf)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    tmcf->pg_listen = pglcf;

    return NGX_CONF_OK;
}


/* tiktok_scheduler on|off [interval=time] [batch=N] */

static char *
ngx_http_tiktok_scheduler(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tiktok_main_conf_t *tmcf = conf;

    ngx_str_t   *value, s;
    ngx_int_t    n;
    ngx_uint_t   i;

    if (tmcf->scheduler != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "on") == 0) {
        tmcf->scheduler = 1;

    } else if (ngx_strcmp(value[1].data, "off") == 0) {
        tmcf->scheduler = 0;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_scheduler\" must be \"on\" or \"off\", "
                           "not \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "interval=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR || n < 100) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"tiktok_scheduler\" has an invalid "
                                   "\"%V\" (at least 100ms)", &value[i]);
                return NGX_CONF_ERROR;
            }

            tmcf->scheduler_interval = (ngx_msec_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "batch=", 6) == 0) {
            n = ngx_atoi(value[i].data + 6, value[i].len - 6);
            if (n == NGX_ERROR || n < 1 || n > 1000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"tiktok_scheduler\" has an invalid "
                                   "\"%V\" (1..1000)", &value[i]);
                return NGX_CONF_ERROR;
            }

            tmcf->scheduler_batch = (ngx_uint_t) n;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_scheduler\" has an invalid parameter "
                           "\"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_tiktok_pull_url_prefixes(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_tiktok_main_conf_t *tmcf = conf;

    u_char      *host, *end;
    ngx_str_t   *value, *prefix;
    ngx_uint_t   i;

    if (tmcf->pull_url_prefixes) {
        return "is duplicate";
    }

    tmcf->pull_url_prefixes = ngx_array_create(cf->pool, cf->args->nelts,
                                               sizeof(ngx_str_t));
    if (tmcf->pull_url_prefixes == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        host = value[i].data + 8;
        end = value[i].data + value[i].len;

        /* a prefix must end its host: "https://a.com" would match a.com.x */
        if (value[i].len <= 8
            || ngx_strncasecmp(value[i].data, (u_char *) "https://", 8) != 0
            || ngx_strlchr(host, end, '/') == NULL
            || *host == '/')
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"tiktok_pull_url_prefixes\": \"%V\" must be "
                               "an https URL prefix with a path, e.g. "
                               "\"https://media.example.com/\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        prefix = ngx_array_push(tmcf->pull_url_prefixes);
        if (prefix == NULL) {
            return NGX_CONF_ERROR;
        }

        *prefix = value[i];
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_tiktok_api_location(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tiktok_main_conf_t *tmcf = conf;

    ngx_str_t  *value;

    if (tmcf->api_location.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len < 2 || value[1].data[0] != '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_api_location\" must be a location path "
                           "such as \"/_tiktok_api\", not \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    tmcf->api_location = value[1];

    /* "/_tiktok_api/" and "/_tiktok_api" name the same location prefix */
    if (tmcf->api_location.data[tmcf->api_location.len - 1] == '/') {
        tmcf->api_location.len--;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_tiktok_path(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t        *field, *value;
    ngx_file_info_t   fi;

    field = (ngx_str_t *) ((u_char *) conf + cmd->offset);

    if (field->data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    *field = value[1];

    if (ngx_conf_full_name(cf->cycle, field, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* a CA bundle must exist now; the spool directory is created later */
    if (cmd->offset == offsetof(ngx_http_tiktok_main_conf_t, ca_certificate)
        && ngx_file_info(field->data, &fi) == NGX_FILE_ERROR)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"tiktok_ca_certificate\": cannot read \"%V\"",
                           field);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_tiktok_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tiktok_loc_conf_t *tlcf = conf;

    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_tiktok_main_conf_t  *tmcf;

    if (tlcf->api) {
        return "is duplicate";
    }

    tlcf->api = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

#if (NGX_PCRE)
    if (clcf->regex) {
        /* endpoints are found by stripping the location's prefix */
        return "needs a prefix location such as \"location /api/tiktok/\"";
    }
#endif

    clcf->handler = ngx_http_tiktok_handler;

    tmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_tiktok_module);
    tmcf->configured = 1;

    return NGX_CONF_OK;
}


/* $tiktok_cache_status (data 0), $tiktok_upstream_ms (data 1) */

static ngx_int_t
ngx_http_tiktok_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    u_char                 *p;
    ngx_http_tiktok_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_tiktok_module);

    if (ctx == NULL
        || (data ? !ctx->upstream_ms_set : ctx->cache_status.len == 0))
    {
        v->not_found = 1;
        return NGX_OK;
    }

    if (data) {
        p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->len = ngx_sprintf(p, "%M", ctx->upstream_ms) - p;
        v->data = p;

    } else {
        v->len = ctx->cache_status.len;
        v->data = ctx->cache_status.data;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* TikTok counts at most 2200 UTF-16 code units in a title */

static char *
ngx_http_tiktok_title_max_chars(ngx_conf_t *cf, void *post, void *data)
{
    ngx_uint_t  *np = data;

    if (*np < 1 || *np > 2200) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tiktok_title_max_chars\" must be between 1 "
                           "and 2200, TikTok's own limit");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
