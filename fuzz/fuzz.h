
/*
 * What every fuzz target shares (fuzz/stubs.c).
 */


#ifndef _FUZZ_H_INCLUDED_
#define _FUZZ_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tiktok_module.h"
#include "ngx_http_tiktok_api.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    ngx_uint_t    status;
    ngx_str_t     body;
} fuzz_reply_t;


extern ngx_str_t     fuzz_variable;
extern fuzz_reply_t  fuzz_reply;

void fuzz_init(void);
ngx_pool_t *fuzz_pool(void);
ngx_http_request_t *fuzz_request(ngx_pool_t *pool, void *main_conf,
    void *ctx);
ngx_http_tiktok_main_conf_t *fuzz_main_conf(void);
void fuzz_same(json_t *obj, const char *key, ngx_str_t *s);
ngx_int_t fuzz_answer(ngx_pool_t *pool, const uint8_t *data, size_t size,
    ngx_uint_t oauth, json_t **out, ngx_http_tiktok_api_error_t *err);
u_char *fuzz_copy(ngx_pool_t *pool, const uint8_t *data, size_t size);


#endif /* _FUZZ_H_INCLUDED_ */
