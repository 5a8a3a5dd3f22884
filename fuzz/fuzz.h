
/*
 * What every fuzz target shares (fuzz/stubs.c).
 */


#ifndef _FUZZ_H_INCLUDED_
#define _FUZZ_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <stdint.h>
#include <stdlib.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

void fuzz_init(void);
ngx_pool_t *fuzz_pool(ngx_log_t *log);
ngx_http_request_t *fuzz_request(ngx_pool_t *pool, void *main_conf,
    void *ctx);
u_char *fuzz_copy(ngx_pool_t *pool, const uint8_t *data, size_t size);


#endif /* _FUZZ_H_INCLUDED_ */
