/*
 * Preloaded into nginx by scripts/nginx-asan only: nginx dlclose()s its
 * dynamic modules when its cycle pool is destroyed at exit, before
 * LeakSanitizer reports, which leaves the module's frames (and those of
 * the libraries it pulled in) as "<unknown module>".  Keeping them mapped
 * lets every leak be attributed.
 */

int
dlclose(void *handle)
{
    (void) handle;
    return 0;
}
