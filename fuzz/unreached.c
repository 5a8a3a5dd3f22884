
/*
 * The rest of what the module links from nginx: its HTTP, event,
 * configuration and shared-memory layers, which no parser reaches.  Each
 * function aborts, so a target that does reach one fails loudly instead of
 * testing something else; each variable is a zeroed block.
 *
 * This file includes no nginx header on purpose: only the names matter to
 * the linker, and the real prototypes would need the real definitions.  A
 * new nginx call in src/ that a target links shows up as an undefined
 * reference: add its name here (or, if a parser needs it, to core.c or
 * stubs.c).
 */


#include <stdlib.h>


/* weak: a target that needs one after all defines it with its real type */
#define FUZZ_UNREACHED(name)                                                  \
    void name(void) __attribute__((weak));                                    \
    void name(void) { abort(); }

#define FUZZ_ZEROED(name)                                                     \
    extern char name[1024];                                                   \
    char name[1024]


FUZZ_UNREACHED(ngx_add_path)
FUZZ_UNREACHED(ngx_close_connection)
FUZZ_UNREACHED(ngx_conf_set_flag_slot)
FUZZ_UNREACHED(ngx_conf_set_num_slot)
FUZZ_UNREACHED(ngx_conf_set_size_slot)
FUZZ_UNREACHED(ngx_conf_set_str_slot)
FUZZ_UNREACHED(ngx_get_connection)
FUZZ_UNREACHED(ngx_http_add_variable)
FUZZ_UNREACHED(ngx_http_complex_value)
FUZZ_UNREACHED(ngx_http_discard_request_body)
FUZZ_UNREACHED(ngx_http_finalize_request)
FUZZ_UNREACHED(ngx_http_get_variable_index)
FUZZ_UNREACHED(ngx_http_read_client_request_body)
FUZZ_UNREACHED(ngx_http_request_empty_handler)
FUZZ_UNREACHED(ngx_http_run_posted_requests)
FUZZ_UNREACHED(ngx_http_set_complex_value_slot)
FUZZ_UNREACHED(ngx_http_subrequest)
FUZZ_UNREACHED(ngx_inet_addr)
FUZZ_UNREACHED(ngx_open_dir)
FUZZ_UNREACHED(ngx_parse_size)
FUZZ_UNREACHED(ngx_parse_time)
FUZZ_UNREACHED(ngx_parse_url)
FUZZ_UNREACHED(ngx_rbtree_delete)
FUZZ_UNREACHED(ngx_rbtree_insert)
FUZZ_UNREACHED(ngx_read_dir)
FUZZ_UNREACHED(ngx_shared_memory_add)
FUZZ_UNREACHED(ngx_shmtx_lock)
FUZZ_UNREACHED(ngx_shmtx_unlock)
FUZZ_UNREACHED(ngx_slab_alloc)
FUZZ_UNREACHED(ngx_slab_alloc_locked)
FUZZ_UNREACHED(ngx_slab_calloc)
FUZZ_UNREACHED(ngx_slab_calloc_locked)
FUZZ_UNREACHED(ngx_slab_free_locked)
FUZZ_UNREACHED(ngx_sock_ntop)


FUZZ_ZEROED(ngx_core_module);
FUZZ_ZEROED(ngx_crc32_table256);
FUZZ_ZEROED(ngx_crc32_table_short);
FUZZ_ZEROED(ngx_event_actions);
FUZZ_ZEROED(ngx_event_timer_rbtree);
FUZZ_ZEROED(ngx_exiting);
FUZZ_ZEROED(ngx_http_core_module);
FUZZ_ZEROED(ngx_http_module);
FUZZ_ZEROED(ngx_http_top_body_filter);
FUZZ_ZEROED(ngx_http_top_header_filter);
FUZZ_ZEROED(ngx_http_top_request_body_filter);
FUZZ_ZEROED(ngx_pid);
FUZZ_ZEROED(ngx_posted_events);
FUZZ_ZEROED(ngx_process);
FUZZ_ZEROED(ngx_quit);
FUZZ_ZEROED(ngx_terminate);
FUZZ_ZEROED(ngx_worker);
