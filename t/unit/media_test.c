
/*
 * Unit tests for src/ngx_http_tiktok_media.c, printed as TAP.
 *
 * Linked with the parser only, no nginx objects.  Every input is built here
 * in memory by small box and EBML writers, so each test says what the file
 * holds.  Files bigger than memory (a 3 GB mdat before the moov, a 5 GB
 * 64-bit mdat) are virtual: a head and a tail held in memory with generated
 * zeros between them, served by a read callback that also counts the reads
 * and the bytes, so the tests can check the parser never reads the media.
 *
 *     valgrind --error-exitcode=1 build/unit/media_test
 *
 * "build/unit/media_test --corpus fuzz/corpus/media" writes the seeds of
 * the fuzzer (fuzz/media.c) from the same writers.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_tiktok_media.h"


#define GB  ((off_t) 1 << 30)


typedef struct {
    u_char         *data;
    size_t          len;
    size_t          cap;
} buf_t;


/* head, then (size - head - tail) zero bytes, then tail */

typedef struct {
    const u_char   *head;
    size_t          head_len;
    const u_char   *tail;
    size_t          tail_len;
    off_t           size;
    size_t          chunk;        /* at most this much per call, 0: all */
    off_t           fail_at;      /* -1 from here on, if >= 0 */
    int             overread;     /* answer one byte more than asked */
    ngx_uint_t      reads;
    uint64_t        bytes;
    size_t          max_read;
} vfile_t;


typedef struct {
    const char     *major;
    const char     *compat;       /* 4-character brands, back to back */
    int             no_ftyp;
    const char     *first;        /* a box before the moov (no_ftyp) */
    int             mvhd_version;
    uint32_t        timescale;
    uint64_t        duration;
    uint32_t        width;
    uint32_t        height;
    int             rotate;
    int             tkhd_version;
    int             audio_first;
    int             audio_only;
    int             moov_last;
    int             large_mdat;   /* mdat with a 64-bit size */
    int             mdat_to_end;  /* mdat with size 0 */
    size_t          mdat_len;
} mp4_t;


typedef struct {
    const char     *doctype;
    uint64_t        timecode_scale;   /* 0: absent */
    int             duration_size;    /* 0: absent, 4 or 8 */
    double          duration;
    int             unknown_segment;
    int             audio_only;
    int             info_after_cluster;
    int             tracks_after_cluster;
    int             seekhead;
    uint32_t        width;
    uint32_t        height;
    size_t          cluster_len;
} webm_t;


static ngx_uint_t  tests_run;
static ngx_uint_t  tests_failed;

/* the worst seen by any probe, checked against the header's bounds */
static ngx_uint_t  worst_reads;
static size_t      worst_read;


static void ok(int cond, const char *fmt, ...);
static void *xrealloc(void *p, size_t size);
static void put(buf_t *b, const void *p, size_t n);
static void put8(buf_t *b, unsigned v);
static void put16(buf_t *b, unsigned v);
static void put32(buf_t *b, uint32_t v);
static void put64(buf_t *b, uint64_t v);
static void put_zeros(buf_t *b, size_t n);
static void patch32(buf_t *b, size_t at, uint32_t v);
static void patch64(buf_t *b, size_t at, uint64_t v);
static size_t box_open(buf_t *b, const char *type);
static void box_close(buf_t *b, size_t at);
static void put_box(buf_t *b, const char *type, size_t payload);
static void put_ftyp(buf_t *b, const char *major, const char *compat);
static void put_mvhd(buf_t *b, int version, uint32_t timescale,
    uint64_t duration);
static void put_tkhd(buf_t *b, int version, uint32_t width, uint32_t height,
    int rotate);
static void put_trak(buf_t *b, const char *handler, int tkhd_version,
    uint32_t width, uint32_t height, int rotate);
static void put_moov(buf_t *b, const mp4_t *o);
static void put_mdat(buf_t *b, const mp4_t *o);
static void build_mp4(buf_t *b, const mp4_t *o);
static mp4_t mp4_defaults(void);
static void ebml_id(buf_t *b, uint32_t id);
static size_t ebml_open(buf_t *b, uint32_t id);
static void ebml_close(buf_t *b, size_t at);
static void ebml_uint(buf_t *b, uint32_t id, uint64_t v);
static void ebml_float(buf_t *b, uint32_t id, int size, double v);
static void ebml_raw(buf_t *b, uint32_t id, const void *p, size_t n);
static void put_tracks(buf_t *b, const webm_t *o);
static void put_info(buf_t *b, const webm_t *o);
static void build_webm(buf_t *b, const webm_t *o);
static webm_t webm_defaults(void);
static ssize_t vread(void *data, u_char *buf, size_t size, off_t offset);
static ngx_int_t probe_vfile(vfile_t *f, ngx_http_tiktok_media_t *m);
static ngx_int_t probe_buf(const u_char *p, size_t len,
    ngx_http_tiktok_media_t *m);
static ngx_int_t probe_mp4(const mp4_t *o, ngx_http_tiktok_media_t *m);
static ngx_int_t probe_webm(const webm_t *o, ngx_http_tiktok_media_t *m);
static uint64_t xorshift(uint64_t *s);
static int valid_ok(ngx_int_t rc, ngx_http_tiktok_media_t *m);
static void check_prefixes(const char *name, buf_t *b);
static void check_mutations(const char *name, buf_t *b);
static ngx_int_t probe_info(const u_char *info, size_t len,
    ngx_http_tiktok_media_t *m);
static ngx_int_t probe_duration(double d, int size, uint64_t scale,
    ngx_http_tiktok_media_t *m);

static void test_mp4(void);
static void test_mov(void);
static void test_mvhd_v1(void);
static void test_moov_at_end(void);
static void test_large_sizes(void);
static void test_brands(void);
static void test_mp4_hostile(void);
static void test_webm(void);
static void test_webm_hostile(void);
static void test_noise(void);
static void test_truncations(void);
static void test_callback(void);
static void test_budget(void);
static int write_corpus(const char *dir);
static int write_seed(const char *dir, const char *name, const u_char *p,
    size_t len);


#define ok_rc(rc, want, name)                                                \
    ok((rc) == (want), "%s: rc %ld, want %ld", name, (long) (rc),            \
       (long) (want))


int
main(int argc, char **argv)
{
    /* "media_test --corpus DIR" writes the fuzzer's seeds instead */
    if (argc == 3 && strcmp(argv[1], "--corpus") == 0) {
        return write_corpus(argv[2]);
    }

    test_mp4();
    test_mov();
    test_mvhd_v1();
    test_moov_at_end();
    test_large_sizes();
    test_brands();
    test_mp4_hostile();
    test_webm();
    test_webm_hostile();
    test_noise();
    test_truncations();
    test_callback();
    test_budget();

    ok(worst_reads <= NGX_HTTP_TIKTOK_MEDIA_MAX_READS,
       "no probe called read more than %d times (worst %lu)",
       NGX_HTTP_TIKTOK_MEDIA_MAX_READS, (unsigned long) worst_reads);

    ok(worst_read <= NGX_HTTP_TIKTOK_MEDIA_READ_SIZE,
       "no read asked for more than %d bytes (worst %lu)",
       NGX_HTTP_TIKTOK_MEDIA_READ_SIZE, (unsigned long) worst_read);

    printf("1..%lu\n", (unsigned long) tests_run);

    if (tests_failed) {
        printf("# %lu of %lu failed\n", (unsigned long) tests_failed,
               (unsigned long) tests_run);
        return 1;
    }

    return 0;
}


static void
ok(int cond, const char *fmt, ...)
{
    va_list  args;

    tests_run++;

    if (!cond) {
        tests_failed++;
    }

    printf("%sok %lu - ", cond ? "" : "not ", (unsigned long) tests_run);

    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);

    printf("\n");
    fflush(stdout);
}


static void *
xrealloc(void *p, size_t size)
{
    p = realloc(p, size ? size : 1);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }

    return p;
}


/* writers: a growing buffer, big-endian integers, boxes, EBML elements */

static void
put(buf_t *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->data = xrealloc(b->data, b->cap);
    }

    if (n) {
        memcpy(b->data + b->len, p, n);
    }

    b->len += n;
}


static void
put8(buf_t *b, unsigned v)
{
    u_char  c;

    c = (u_char) v;
    put(b, &c, 1);
}


static void
put16(buf_t *b, unsigned v)
{
    put8(b, v >> 8);
    put8(b, v);
}


static void
put32(buf_t *b, uint32_t v)
{
    put16(b, v >> 16);
    put16(b, v & 0xffff);
}


static void
put64(buf_t *b, uint64_t v)
{
    put32(b, (uint32_t) (v >> 32));
    put32(b, (uint32_t) v);
}


static void
put_zeros(buf_t *b, size_t n)
{
    while (n--) {
        put8(b, 0);
    }
}


static void
patch32(buf_t *b, size_t at, uint32_t v)
{
    b->data[at] = (u_char) (v >> 24);
    b->data[at + 1] = (u_char) (v >> 16);
    b->data[at + 2] = (u_char) (v >> 8);
    b->data[at + 3] = (u_char) v;
}


static void
patch64(buf_t *b, size_t at, uint64_t v)
{
    patch32(b, at, (uint32_t) (v >> 32));
    patch32(b, at + 4, (uint32_t) v);
}


static size_t
box_open(buf_t *b, const char *type)
{
    size_t  at;

    at = b->len;
    put32(b, 0);
    put(b, type, 4);

    return at;
}


static void
box_close(buf_t *b, size_t at)
{
    patch32(b, at, (uint32_t) (b->len - at));
}


static void
put_box(buf_t *b, const char *type, size_t payload)
{
    put32(b, (uint32_t) (8 + payload));
    put(b, type, 4);
    put_zeros(b, payload);
}


static void
put_ftyp(buf_t *b, const char *major, const char *compat)
{
    size_t  at;

    at = box_open(b, "ftyp");
    put(b, major, 4);
    put32(b, 0x200);
    put(b, compat, strlen(compat));
    box_close(b, at);
}


/* the whole box as ISO 14496-12 lays it out, not only what is read */

static void
put_mvhd(buf_t *b, int version, uint32_t timescale, uint64_t duration)
{
    size_t  at;

    at = box_open(b, "mvhd");
    put8(b, version);
    put_zeros(b, 3);

    if (version == 1) {
        put64(b, 3000000000ULL);
        put64(b, 3000000001ULL);
        put32(b, timescale);
        put64(b, duration);

    } else {
        put32(b, 3000000000U);
        put32(b, 3000000001U);
        put32(b, timescale);
        put32(b, (uint32_t) duration);
    }

    put32(b, 0x00010000);                     /* rate 1.0 */
    put16(b, 0x0100);                         /* volume 1.0 */
    put_zeros(b, 10);
    put32(b, 0x00010000); put32(b, 0); put32(b, 0);
    put32(b, 0); put32(b, 0x00010000); put32(b, 0);
    put32(b, 0); put32(b, 0); put32(b, 0x40000000);
    put_zeros(b, 24);                         /* pre_defined */
    put32(b, 3);                              /* next_track_ID */
    box_close(b, at);
}


static void
put_tkhd(buf_t *b, int version, uint32_t width, uint32_t height, int rotate)
{
    size_t  at;

    at = box_open(b, "tkhd");
    put8(b, version);
    put8(b, 0);
    put16(b, 3);                              /* enabled, in movie */

    if (version == 1) {
        put64(b, 1); put64(b, 2); put32(b, 1); put32(b, 0); put64(b, 999);

    } else {
        put32(b, 1); put32(b, 2); put32(b, 1); put32(b, 0); put32(b, 999);
    }

    put_zeros(b, 8);
    put16(b, 0); put16(b, 0); put16(b, 0); put16(b, 0);

    if (rotate) {
        /* 90 degrees, as a phone writes a portrait video */
        put32(b, 0); put32(b, 0x00010000); put32(b, 0);
        put32(b, 0xffff0000); put32(b, 0); put32(b, 0);

    } else {
        put32(b, 0x00010000); put32(b, 0); put32(b, 0);
        put32(b, 0); put32(b, 0x00010000); put32(b, 0);
    }

    put32(b, 0); put32(b, 0); put32(b, 0x40000000);
    put32(b, width << 16);
    put32(b, height << 16);
    box_close(b, at);
}


static void
put_trak(buf_t *b, const char *handler, int tkhd_version, uint32_t width,
    uint32_t height, int rotate)
{
    size_t  trak, mdia, mdhd, hdlr, minf;

    trak = box_open(b, "trak");
    put_tkhd(b, tkhd_version, width, height, rotate);

    put_box(b, "edts", 28);

    mdia = box_open(b, "mdia");

    mdhd = box_open(b, "mdhd");
    put32(b, 0); put32(b, 1); put32(b, 2); put32(b, 90000); put32(b, 900);
    put16(b, 0x55c4); put16(b, 0);
    box_close(b, mdhd);

    hdlr = box_open(b, "hdlr");
    put32(b, 0);
    put32(b, 0);
    put(b, handler, 4);
    put_zeros(b, 12);
    put(b, "Core Media Video", 17);
    box_close(b, hdlr);

    minf = box_open(b, "minf");
    put_box(b, "vmhd", 12);
    put_box(b, "stbl", 200);
    box_close(b, minf);

    box_close(b, mdia);
    box_close(b, trak);
}


static void
put_moov(buf_t *b, const mp4_t *o)
{
    size_t  at;

    at = box_open(b, "moov");
    put_mvhd(b, o->mvhd_version, o->timescale, o->duration);

    if (o->audio_first || o->audio_only) {
        put_trak(b, "soun", 0, 0, 0, 0);
    }

    if (!o->audio_only) {
        put_trak(b, "vide", o->tkhd_version, o->width, o->height, o->rotate);
    }

    put_box(b, "udta", 40);
    box_close(b, at);
}


static void
put_mdat(buf_t *b, const mp4_t *o)
{
    size_t  i;

    if (o->large_mdat) {
        put32(b, 1);
        put(b, "mdat", 4);
        put64(b, 16 + o->mdat_len);

    } else if (o->mdat_to_end) {
        put32(b, 0);
        put(b, "mdat", 4);

    } else {
        put32(b, (uint32_t) (8 + o->mdat_len));
        put(b, "mdat", 4);
    }

    for (i = 0; i < o->mdat_len; i++) {
        put8(b, (unsigned) (i * 7 + 3));
    }
}


static void
build_mp4(buf_t *b, const mp4_t *o)
{
    if (o->no_ftyp) {
        if (o->first) {
            put_box(b, o->first, 0);
        }

    } else {
        put_ftyp(b, o->major, o->compat);
    }

    if (o->moov_last) {
        put_mdat(b, o);
        put_moov(b, o);

    } else {
        put_moov(b, o);
        put_mdat(b, o);
    }
}


/* 12.345 s at a millisecond timescale, 1920x1080, moov first */

static mp4_t
mp4_defaults(void)
{
    mp4_t  o;

    memset(&o, 0, sizeof(mp4_t));

    o.major = "isom";
    o.compat = "isomiso2avc1mp41";
    o.timescale = 1000;
    o.duration = 12345;
    o.width = 1920;
    o.height = 1080;
    o.mdat_len = 100;

    return o;
}


/* an id is written as its bytes: 0x1A45DFA3 is 4 bytes, 0x83 one */

static void
ebml_id(buf_t *b, uint32_t id)
{
    if (id > 0xffffff) {
        put8(b, id >> 24);
    }

    if (id > 0xffff) {
        put8(b, id >> 16);
    }

    if (id > 0xff) {
        put8(b, id >> 8);
    }

    put8(b, id);
}


/* a master element with an 8-byte size, as mkvmerge writes Segment */

static size_t
ebml_open(buf_t *b, uint32_t id)
{
    size_t  at;

    ebml_id(b, id);
    at = b->len;
    put64(b, 0);

    return at;
}


static void
ebml_close(buf_t *b, size_t at)
{
    patch64(b, at, 0x0100000000000000ULL | (b->len - at - 8));
}


static void
ebml_uint(buf_t *b, uint32_t id, uint64_t v)
{
    int  n, i;

    for (n = 1; n < 8 && (v >> (8 * n)); n++) {
        /* void */
    }

    ebml_id(b, id);
    put8(b, 0x80 | n);

    for (i = n - 1; i >= 0; i--) {
        put8(b, (unsigned) (v >> (8 * i)));
    }
}


static void
ebml_float(buf_t *b, uint32_t id, int size, double v)
{
    float     f;
    uint32_t  u32;
    uint64_t  u64;

    ebml_id(b, id);
    put8(b, 0x80 | size);

    if (size == 4) {
        f = (float) v;
        memcpy(&u32, &f, 4);
        put32(b, u32);

    } else {
        memcpy(&u64, &v, 8);
        put64(b, u64);
    }
}


static void
ebml_raw(buf_t *b, uint32_t id, const void *p, size_t n)
{
    ebml_id(b, id);
    put8(b, 0x80 | (unsigned) n);
    put(b, p, n);
}


static void
put_info(buf_t *b, const webm_t *o)
{
    size_t  at;

    at = ebml_open(b, 0x1549A966);

    if (o->timecode_scale) {
        ebml_uint(b, 0x2AD7B1, o->timecode_scale);
    }

    ebml_raw(b, 0x4D80, "Lavf60.3.100", 12);          /* MuxingApp */

    if (o->duration_size) {
        ebml_float(b, 0x4489, o->duration_size, o->duration);
    }

    ebml_close(b, at);
}


static void
put_tracks(buf_t *b, const webm_t *o)
{
    size_t  tracks, entry, video;

    tracks = ebml_open(b, 0x1654AE6B);

    if (!o->audio_only) {
        entry = ebml_open(b, 0xAE);
        ebml_uint(b, 0xD7, 1);                         /* TrackNumber */
        ebml_uint(b, 0x83, 1);                         /* video */
        ebml_raw(b, 0x86, "V_VP9", 5);                 /* CodecID */
        video = ebml_open(b, 0xE0);
        ebml_uint(b, 0xB0, o->width);
        ebml_uint(b, 0xBA, o->height);
        ebml_close(b, video);
        ebml_close(b, entry);
    }

    entry = ebml_open(b, 0xAE);
    ebml_uint(b, 0xD7, 2);
    ebml_uint(b, 0x83, 2);                             /* audio */
    ebml_raw(b, 0x86, "A_OPUS", 6);
    ebml_close(b, entry);

    ebml_close(b, tracks);
}


static void
build_webm(buf_t *b, const webm_t *o)
{
    size_t  header, segment, seekhead, seek, seek_tracks, cluster, data, i;
    size_t  info_pos, tracks_pos;

    header = ebml_open(b, 0x1A45DFA3);
    ebml_uint(b, 0x4286, 1);                           /* EBMLVersion */
    ebml_uint(b, 0x42F7, 1);                           /* EBMLReadVersion */
    ebml_uint(b, 0x42F2, 4);
    ebml_uint(b, 0x42F3, 8);
    ebml_raw(b, 0x4282, o->doctype, strlen(o->doctype));
    ebml_uint(b, 0x4287, 4);                           /* DocTypeVersion */
    ebml_uint(b, 0x4285, 2);
    ebml_close(b, header);

    if (o->unknown_segment) {
        ebml_id(b, 0x18538067);
        put64(b, 0x01ffffffffffffffULL);
        segment = 0;

    } else {
        segment = ebml_open(b, 0x18538067);
    }

    data = b->len;
    seek = 0;
    seek_tracks = 0;
    info_pos = 0;
    tracks_pos = 0;

    if (o->seekhead) {
        /* SeekPositions are patched once the Info and Tracks are placed */
        seekhead = ebml_open(b, 0x114D9B74);
        ebml_id(b, 0x4DBB);
        put8(b, 0x80 | 18);                            /* 7 + 11 bytes */
        ebml_raw(b, 0x53AB, "\x15\x49\xA9\x66", 4);
        ebml_id(b, 0x53AC);
        put8(b, 0x88);
        seek = b->len;
        put64(b, 0);
        ebml_id(b, 0x4DBB);
        put8(b, 0x80 | 18);
        ebml_raw(b, 0x53AB, "\x16\x54\xAE\x6B", 4);
        ebml_id(b, 0x53AC);
        put8(b, 0x88);
        seek_tracks = b->len;
        put64(b, 0);
        ebml_close(b, seekhead);
        ebml_uint(b, 0xEC, 0);                         /* Void */
    }

    if (!o->info_after_cluster) {
        info_pos = b->len - data;
        put_info(b, o);
    }

    if (!o->tracks_after_cluster) {
        tracks_pos = b->len - data;
        put_tracks(b, o);
    }

    cluster = ebml_open(b, 0x1F43B675);
    ebml_uint(b, 0xE7, 0);                             /* Timecode */
    ebml_id(b, 0xA3);                                  /* SimpleBlock */
    put8(b, 0x88);
    put64(b, o->cluster_len);

    for (i = 0; i < o->cluster_len; i++) {
        put8(b, (unsigned) (i * 13 + 1));
    }

    ebml_close(b, cluster);

    if (o->info_after_cluster) {
        info_pos = b->len - data;
        put_info(b, o);
    }

    if (o->tracks_after_cluster) {
        tracks_pos = b->len - data;
        put_tracks(b, o);
    }

    if (seek) {
        patch64(b, seek, info_pos);
        patch64(b, seek_tracks, tracks_pos);
    }

    if (!o->unknown_segment) {
        ebml_close(b, segment);
    }
}


/* what ffmpeg writes for a 12.345 s VP9 clip: default scale, 8-byte float */

static webm_t
webm_defaults(void)
{
    webm_t  o;

    memset(&o, 0, sizeof(webm_t));

    o.doctype = "webm";
    o.timecode_scale = 1000000;
    o.duration_size = 8;
    o.duration = 12345.0;
    o.width = 1280;
    o.height = 720;
    o.cluster_len = 64;

    return o;
}


static ssize_t
vread(void *data, u_char *buf, size_t size, off_t offset)
{
    off_t     gap_end, at;
    size_t    n, i;
    vfile_t  *f;

    f = data;

    f->reads++;

    if (size > f->max_read) {
        f->max_read = size;
    }

    if (f->fail_at >= 0 && offset + (off_t) size > f->fail_at) {
        return -1;
    }

    if (offset < 0 || offset >= f->size) {
        return 0;
    }

    n = size;

    if ((off_t) n > f->size - offset) {
        n = (size_t) (f->size - offset);
    }

    if (f->chunk && n > f->chunk) {
        n = f->chunk;
    }

    gap_end = f->size - (off_t) f->tail_len;

    for (i = 0; i < n; i++) {
        at = offset + (off_t) i;

        if (at < (off_t) f->head_len) {
            buf[i] = f->head[at];

        } else if (at >= gap_end) {
            buf[i] = f->tail[at - gap_end];

        } else {
            buf[i] = 0;
        }
    }

    f->bytes += n;

    return f->overread ? (ssize_t) size + 1 : (ssize_t) n;
}


static ngx_int_t
probe_vfile(vfile_t *f, ngx_http_tiktok_media_t *m)
{
    ngx_int_t  rc;

    f->reads = 0;
    f->bytes = 0;
    f->max_read = 0;

    rc = ngx_http_tiktok_media_probe(vread, f, f->size, m);

    if (f->reads > worst_reads) {
        worst_reads = f->reads;
    }

    if (f->max_read > worst_read) {
        worst_read = f->max_read;
    }

    return rc;
}


static ngx_int_t
probe_buf(const u_char *p, size_t len, ngx_http_tiktok_media_t *m)
{
    vfile_t  f;

    memset(&f, 0, sizeof(vfile_t));
    f.head = p;
    f.head_len = len;
    f.size = (off_t) len;
    f.fail_at = -1;

    return probe_vfile(&f, m);
}


static ngx_int_t
probe_mp4(const mp4_t *o, ngx_http_tiktok_media_t *m)
{
    buf_t      b;
    ngx_int_t  rc;

    memset(&b, 0, sizeof(buf_t));
    build_mp4(&b, o);
    rc = probe_buf(b.data, b.len, m);
    free(b.data);

    return rc;
}


static ngx_int_t
probe_webm(const webm_t *o, ngx_http_tiktok_media_t *m)
{
    buf_t      b;
    ngx_int_t  rc;

    memset(&b, 0, sizeof(buf_t));
    build_webm(&b, o);
    rc = probe_buf(b.data, b.len, m);
    free(b.data);

    return rc;
}


static uint64_t
xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;

    return *s;
}


/* what every NGX_OK must hold, and every NGX_DECLINED must not claim */

static int
valid_ok(ngx_int_t rc, ngx_http_tiktok_media_t *m)
{
    if (rc == NGX_DECLINED) {
        return m->duration_ms == 0 && m->width == 0 && m->height == 0;
    }

    if (rc != NGX_OK) {
        return 0;
    }

    return (m->container == NGX_HTTP_TIKTOK_MEDIA_MP4
            || m->container == NGX_HTTP_TIKTOK_MEDIA_MOV
            || m->container == NGX_HTTP_TIKTOK_MEDIA_WEBM)
           && m->content_type != NULL
           && m->duration_ms >= 1
           && m->duration_ms <= NGX_HTTP_TIKTOK_MEDIA_MAX_MS
           && m->width <= 65535 && m->height <= 65535;
}


static void
test_mp4(void)
{
    mp4_t                    o;
    ngx_int_t                rc;
    ngx_http_tiktok_media_t  m;

    o = mp4_defaults();
    rc = probe_mp4(&o, &m);
    ok_rc(rc, NGX_OK, "isom MP4, moov first");
    ok(m.container == NGX_HTTP_TIKTOK_MEDIA_MP4
       && strcmp(m.content_type, "video/mp4") == 0,
       "isom MP4: container MP4, video/mp4");
    ok(m.duration_ms == 12345, "isom MP4: 12345 ms at timescale 1000 (%llu)",
       (unsigned long long) m.duration_ms);
    ok(m.width == 1920 && m.height == 1080, "isom MP4: 1920x1080 (%lux%lu)",
       (unsigned long) m.width, (unsigned long) m.height);

    /* a camera's 60.5 s at the MPEG 90 kHz clock */
    o = mp4_defaults();
    o.major = "mp42";
    o.compat = "mp42isom";
    o.timescale = 90000;
    o.duration = 90000ULL * 60 + 45000;
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_OK && m.duration_ms == 60500,
       "mp42 at 90 kHz: 60.5 s is 60500 ms (%llu)",
       (unsigned long long) m.duration_ms);

    /* exactly the 3-minute limit, NTSC 29.97 timescale */
    o.timescale = 30000;
    o.duration = 30000ULL * 180;
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_OK && m.duration_ms == 180000,
       "3 min at timescale 30000 is 180000 ms (%llu)",
       (unsigned long long) m.duration_ms);

    /* 10 min and one tick: rounded down, the caller compares */
    o.duration = 30000ULL * 600 + 1;
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_OK && m.duration_ms == 600000,
       "10 min + 1/30000 s is 600000 ms, rounded down (%llu)",
       (unsigned long long) m.duration_ms);

    /* under a millisecond: nothing to post, and what unknown looks like */
    o.duration = 29;
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_DECLINED && m.container == NGX_HTTP_TIKTOK_MEDIA_MP4,
       "29/30000 s rounds to 0 ms: declined, container MP4");

    o = mp4_defaults();
    o.duration = 0;
    rc = probe_mp4(&o, &m);
    ok_rc(rc, NGX_DECLINED, "duration 0 (unknown)");

    o.duration = 0xffffffff;
    rc = probe_mp4(&o, &m);
    ok_rc(rc, NGX_DECLINED, "version 0 duration all ones (unknown)");

    o = mp4_defaults();
    o.audio_first = 1;
    o.width = 720;
    o.height = 1280;
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_OK && m.width == 720 && m.height == 1280,
       "audio trak first: size from the video trak (%lux%lu)",
       (unsigned long) m.width, (unsigned long) m.height);

    o = mp4_defaults();
    o.rotate = 1;
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_OK && m.width == 1080 && m.height == 1920,
       "tkhd rotated 90 degrees: displayed 1080x1920 (%lux%lu)",
       (unsigned long) m.width, (unsigned long) m.height);

    o = mp4_defaults();
    o.tkhd_version = 1;
    o.width = 3840;
    o.height = 2160;
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_OK && m.width == 3840 && m.height == 2160,
       "tkhd version 1: 3840x2160 (%lux%lu)",
       (unsigned long) m.width, (unsigned long) m.height);

    o = mp4_defaults();
    o.audio_only = 1;
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_DECLINED && m.container == NGX_HTTP_TIKTOK_MEDIA_MP4,
       "audio-only MP4 (no vide trak): declined, container MP4");

    o = mp4_defaults();
    o.mdat_to_end = 1;
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_OK && m.duration_ms == 12345,
       "last box mdat with size 0 (to the end of the file)");
}


static void
test_mov(void)
{
    mp4_t                    o;
    ngx_int_t                rc;
    ngx_http_tiktok_media_t  m;

    /* an iPhone clip: "qt  ", timescale 600, 15.0016 s */
    o = mp4_defaults();
    o.major = "qt  ";
    o.compat = "qt  ";
    o.timescale = 600;
    o.duration = 600 * 15 + 1;
    o.rotate = 1;
    rc = probe_mp4(&o, &m);
    ok_rc(rc, NGX_OK, "qt MOV");
    ok(m.container == NGX_HTTP_TIKTOK_MEDIA_MOV
       && strcmp(m.content_type, "video/quicktime") == 0,
       "qt MOV: container MOV, video/quicktime");
    ok(m.duration_ms == 15001, "qt MOV: 9001/600 s is 15001 ms (%llu)",
       (unsigned long long) m.duration_ms);
    ok(m.width == 1080 && m.height == 1920, "qt MOV portrait: 1080x1920");

    /* older QuickTime: no ftyp, the first box one of these */
    o = mp4_defaults();
    o.no_ftyp = 1;
    o.first = "wide";
    o.moov_last = 1;
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_OK && m.container == NGX_HTTP_TIKTOK_MEDIA_MOV
       && m.duration_ms == 12345, "no ftyp: wide, mdat, moov is MOV");

    o.first = "free";
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_OK && m.container == NGX_HTTP_TIKTOK_MEDIA_MOV,
       "no ftyp: free, mdat, moov is MOV");

    o.first = "skip";
    o.moov_last = 0;
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_OK && m.container == NGX_HTTP_TIKTOK_MEDIA_MOV,
       "no ftyp: skip, moov, mdat is MOV");

    o.first = NULL;
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_OK && m.container == NGX_HTTP_TIKTOK_MEDIA_MOV,
       "no ftyp: moov first is MOV");

    o.moov_last = 1;
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_OK && m.container == NGX_HTTP_TIKTOK_MEDIA_MOV,
       "no ftyp: mdat first, then moov, is MOV");

    o.first = "abcd";
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_DECLINED && m.container == NGX_HTTP_TIKTOK_MEDIA_UNKNOWN,
       "no ftyp, first box of another type: declined, unknown");
}


static void
test_mvhd_v1(void)
{
    mp4_t                    o;
    unsigned __int128        want;
    ngx_int_t                rc;
    ngx_http_tiktok_media_t  m;

    /* two hours at 48 kHz in a version 1 mvhd */
    o = mp4_defaults();
    o.mvhd_version = 1;
    o.timescale = 48000;
    o.duration = 48000ULL * 7200;
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_OK && m.duration_ms == 7200000,
       "mvhd version 1: 2 h at 48 kHz is 7200000 ms (%llu)",
       (unsigned long long) m.duration_ms);

    /* duration * 1000 overflows 64 bits; the result does not */
    o.timescale = 0xffffffff;
    o.duration = 1ULL << 63;
    want = ((unsigned __int128) o.duration * 1000) / o.timescale;
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_OK && m.duration_ms == (uint64_t) want,
       "2^63 / (2^32-1) s: %llu ms, exact without overflow (%llu)",
       (unsigned long long) want, (unsigned long long) m.duration_ms);

    o.timescale = 1;
    o.duration = NGX_HTTP_TIKTOK_MEDIA_MAX_MS / 1000;
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_OK
       && m.duration_ms == NGX_HTTP_TIKTOK_MEDIA_MAX_MS / 1000 * 1000,
       "largest whole second under 2^53 ms accepted");

    o.duration = NGX_HTTP_TIKTOK_MEDIA_MAX_MS / 1000 + 1;
    rc = probe_mp4(&o, &m);
    ok_rc(rc, NGX_DECLINED, "over 2^53 ms");

    o.duration = 0xfffffffffffffffeULL;
    rc = probe_mp4(&o, &m);
    ok_rc(rc, NGX_DECLINED, "2^64-2 s");

    o.duration = 0xffffffffffffffffULL;
    rc = probe_mp4(&o, &m);
    ok_rc(rc, NGX_DECLINED, "version 1 duration all ones (unknown)");

    o = mp4_defaults();
    o.timescale = 0;
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_DECLINED && m.container == NGX_HTTP_TIKTOK_MEDIA_MP4,
       "timescale 0: declined, container MP4");

    o.mvhd_version = 1;
    rc = probe_mp4(&o, &m);
    ok_rc(rc, NGX_DECLINED, "version 1, timescale 0");

    o = mp4_defaults();
    o.mvhd_version = 2;
    rc = probe_mp4(&o, &m);
    ok_rc(rc, NGX_DECLINED, "mvhd version 2");
}


/*
 * The layout of a camera or ffmpeg without +faststart: ftyp, a 3 GB mdat,
 * the moov last.  Only the two ends are stored; the probe must find the
 * moov by skipping, in a handful of small reads.
 */

static void
test_moov_at_end(void)
{
    mp4_t                    o;
    buf_t                    head, tail;
    vfile_t                  f;
    ngx_int_t                rc;
    ngx_http_tiktok_media_t  m;

    memset(&head, 0, sizeof(buf_t));
    memset(&tail, 0, sizeof(buf_t));

    o = mp4_defaults();
    o.timescale = 90000;
    o.duration = 90000ULL * 179 + 89999;

    put_ftyp(&head, "mp42", "isommp42");
    put32(&head, (uint32_t) (3 * GB));
    put(&head, "mdat", 4);
    put_moov(&tail, &o);

    memset(&f, 0, sizeof(vfile_t));
    f.head = head.data;
    f.head_len = head.len;
    f.tail = tail.data;
    f.tail_len = tail.len;
    f.size = (off_t) (head.len - 8) + 3 * GB + (off_t) tail.len;
    f.fail_at = -1;

    rc = probe_vfile(&f, &m);
    ok(rc == NGX_OK && m.duration_ms == 179999,
       "moov after a 3 GB mdat: 179999 ms (%llu)",
       (unsigned long long) m.duration_ms);
    ok(f.reads <= 8 && f.bytes <= 16384,
       "moov after a 3 GB mdat: %lu reads, %llu bytes",
       (unsigned long) f.reads, (unsigned long long) f.bytes);

    /* the same, and the file is one byte short */
    f.size--;
    rc = probe_vfile(&f, &m);
    ok_rc(rc, NGX_DECLINED, "3 GB file, one byte short");
    f.size++;

    /* one byte more than the boxes say */
    f.size++;
    rc = probe_vfile(&f, &m);
    ok_rc(rc, NGX_DECLINED, "3 GB file, one byte after the last box");
    f.size--;

    /* the read callback is called in chunks of 5 bytes: still fine */
    f.chunk = 5;
    rc = probe_vfile(&f, &m);
    ok(rc == NGX_OK && m.duration_ms == 179999,
       "moov after a 3 GB mdat, 5-byte short reads (%lu reads)",
       (unsigned long) f.reads);

    free(head.data);
    free(tail.data);
}


static void
test_large_sizes(void)
{
    mp4_t                    o;
    buf_t                    head, tail, b;
    size_t                   at;
    vfile_t                  f;
    ngx_int_t                rc;
    ngx_http_tiktok_media_t  m;

    /* a 5 GB mdat needs the 64-bit largesize */
    memset(&head, 0, sizeof(buf_t));
    memset(&tail, 0, sizeof(buf_t));

    o = mp4_defaults();
    put_ftyp(&head, "isom", "isom");
    put32(&head, 1);
    put(&head, "mdat", 4);
    put64(&head, (uint64_t) (5 * GB));
    put_moov(&tail, &o);

    memset(&f, 0, sizeof(vfile_t));
    f.head = head.data;
    f.head_len = head.len;
    f.tail = tail.data;
    f.tail_len = tail.len;
    f.size = (off_t) (head.len - 16) + 5 * GB + (off_t) tail.len;
    f.fail_at = -1;

    rc = probe_vfile(&f, &m);
    ok(rc == NGX_OK && m.duration_ms == 12345 && f.reads <= 8,
       "64-bit largesize 5 GB mdat, then moov (%lu reads)",
       (unsigned long) f.reads);

    /* largesize beyond off_t: must not wrap around to a small offset */
    patch64(&head, head.len - 8, 0xfffffffffffffff0ULL);
    rc = probe_vfile(&f, &m);
    ok_rc(rc, NGX_DECLINED, "largesize 2^64-16");

    patch64(&head, head.len - 8, 0x8000000000000000ULL);
    rc = probe_vfile(&f, &m);
    ok_rc(rc, NGX_DECLINED, "largesize 2^63");

    patch64(&head, head.len - 8, 8);
    rc = probe_vfile(&f, &m);
    ok_rc(rc, NGX_DECLINED, "largesize 8, smaller than its header");

    free(head.data);
    free(tail.data);

    /* a small moov written with a largesize, and a 64-bit mdat in memory */
    memset(&b, 0, sizeof(buf_t));
    put_ftyp(&b, "isom", "isom");
    at = b.len;
    put32(&b, 1);
    put(&b, "moov", 4);
    put64(&b, 0);
    put_mvhd(&b, 0, 1000, 4321);
    put_trak(&b, "vide", 0, 640, 360, 0);
    patch64(&b, at + 8, b.len - at);
    o = mp4_defaults();
    o.large_mdat = 1;
    put_mdat(&b, &o);

    rc = probe_buf(b.data, b.len, &m);
    ok(rc == NGX_OK && m.duration_ms == 4321 && m.width == 640,
       "moov and mdat both with 64-bit sizes");
    free(b.data);

    /* moov itself the last box, size 0 */
    memset(&b, 0, sizeof(buf_t));
    o = mp4_defaults();
    put_ftyp(&b, "isom", "isom");
    put_mdat(&b, &o);
    at = box_open(&b, "moov");
    put_mvhd(&b, 0, 1000, 2500);
    put_trak(&b, "vide", 0, 640, 360, 0);
    rc = probe_buf(b.data, b.len, &m);
    ok(rc == NGX_OK && m.duration_ms == 2500, "moov last with size 0");
    free(b.data);
}


static void
test_brands(void)
{
    mp4_t                    o;
    ngx_int_t                rc;
    ngx_uint_t               i;
    ngx_http_tiktok_media_t  m;

    static const char  *mp4[] = {
        "isom", "iso2", "iso4", "iso5", "iso6", "mp41", "mp42", "avc1",
        "dash", "M4V ", "MSNV", NULL
    };

    static const char  *refused[] = {
        "3gp4", "3gp5", "3g2a", "heic", "mif1", "avif", "M4A ", "crx ",
        NULL
    };

    for (i = 0; mp4[i]; i++) {
        o = mp4_defaults();
        o.major = mp4[i];
        o.compat = "";
        rc = probe_mp4(&o, &m);
        ok(rc == NGX_OK && m.container == NGX_HTTP_TIKTOK_MEDIA_MP4,
           "major brand \"%s\" is MP4", mp4[i]);
    }

    for (i = 0; refused[i]; i++) {
        o = mp4_defaults();
        o.major = refused[i];
        o.compat = "isommp42";
        rc = probe_mp4(&o, &m);
        ok(rc == NGX_DECLINED && m.container == NGX_HTTP_TIKTOK_MEDIA_UNKNOWN,
           "major brand \"%s\" refused, whatever its compatible brands",
           refused[i]);
    }

    o = mp4_defaults();
    o.major = "abcd";
    o.compat = "abcdmp42";
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_OK && m.container == NGX_HTTP_TIKTOK_MEDIA_MP4,
       "unknown major brand, compatible mp42: MP4");

    o.compat = "abcdqt  ";
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_OK && m.container == NGX_HTTP_TIKTOK_MEDIA_MOV,
       "unknown major brand, compatible qt: MOV");

    o.compat = "qt  abcdiso6";
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_OK && m.container == NGX_HTTP_TIKTOK_MEDIA_MP4,
       "unknown major brand, compatible qt and iso6: MP4");

    o.compat = "abcdwxyz";
    rc = probe_mp4(&o, &m);
    ok(rc == NGX_DECLINED && m.container == NGX_HTTP_TIKTOK_MEDIA_UNKNOWN,
       "unknown major brand, no known compatible brand: declined");

    o.compat = "";
    rc = probe_mp4(&o, &m);
    ok_rc(rc, NGX_DECLINED, "unknown major brand, no compatible brands");
}


static void
test_mp4_hostile(void)
{
    mp4_t                    o;
    buf_t                    b;
    size_t                   at, moov, i;
    ngx_int_t                rc;
    ngx_http_tiktok_media_t  m;

    o = mp4_defaults();

    /* ftyp, then a box of size 4, smaller than its own header */
    memset(&b, 0, sizeof(buf_t));
    put_ftyp(&b, "isom", "isom");
    put32(&b, 4);
    put(&b, "free", 4);
    build_mp4(&b, &o);
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "top-level box of size 4");
    free(b.data);

    /* a moov claiming 1000 bytes more than the file has */
    memset(&b, 0, sizeof(buf_t));
    put_ftyp(&b, "isom", "isom");
    o.moov_last = 1;
    put_mdat(&b, &o);
    at = b.len;
    put_moov(&b, &o);
    patch32(&b, at, (uint32_t) (b.len - at + 1000));
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "moov size past the end of the file");

    patch32(&b, at, 0xffffffff);
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "moov size 0xffffffff");

    patch32(&b, at, 7);
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "moov size 7");

    patch32(&b, at, (uint32_t) (b.len - at));
    b.data[at + 4] = 0x01;
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "top-level type with a control byte");
    b.data[at + 4] = 'm';

    /* a child of moov running past its parent */
    patch32(&b, at + 8, 0x7fffffff);
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "mvhd size past the end of moov");
    patch32(&b, at + 8, 12);
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "mvhd of 4 bytes, too short for its fields");
    free(b.data);

    /* two mvhd in one moov */
    memset(&b, 0, sizeof(buf_t));
    put_ftyp(&b, "isom", "isom");
    moov = box_open(&b, "moov");
    put_mvhd(&b, 0, 1000, 777);
    put_mvhd(&b, 0, 1000, 888);
    put_trak(&b, "vide", 0, 1280, 720, 0);
    box_close(&b, moov);
    put_mdat(&b, &o);
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "two mvhd boxes");
    free(b.data);

    /* mehd version 1, version 2, missing */
    for (i = 0; i < 4; i++) {
        size_t  mvex, mehd;

        memset(&b, 0, sizeof(buf_t));
        put_ftyp(&b, "iso6", "iso6");
        moov = box_open(&b, "moov");
        put_mvhd(&b, 1, 48000, 0);
        mvex = box_open(&b, "mvex");
        put_box(&b, "trex", 24);

        if (i < 3) {
            mehd = box_open(&b, "mehd");
            put8(&b, i == 0 ? 1 : i == 1 ? 2 : 0);
            put_zeros(&b, 3);

            if (i == 2) {
                put16(&b, 1);
            } else {
                put64(&b, 48000ULL * 90);
            }

            box_close(&b, mehd);
        }

        box_close(&b, mvex);
        put_trak(&b, "vide", 0, 1280, 720, 0);
        box_close(&b, moov);
        put_box(&b, "moof", 16);
        put_mdat(&b, &o);
        rc = probe_buf(b.data, b.len, &m);

        if (i == 0) {
            ok(rc == NGX_OK && m.duration_ms == 90000,
               "mehd version 1: 90000 ms (%llu)",
               (unsigned long long) m.duration_ms);

        } else {
            ok_rc(rc, NGX_DECLINED, i == 1 ? "mehd version 2"
                                    : i == 2 ? "mehd of 6 bytes"
                                    : "fragmented, no mehd, mvhd duration 0");
        }

        free(b.data);
    }

    /* two moovs */
    memset(&b, 0, sizeof(buf_t));
    o = mp4_defaults();
    build_mp4(&b, &o);
    put_moov(&b, &o);
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "two moov boxes");
    free(b.data);

    /* no moov; no mdat */
    memset(&b, 0, sizeof(buf_t));
    put_ftyp(&b, "isom", "isom");
    put_mdat(&b, &o);
    rc = probe_buf(b.data, b.len, &m);
    ok(rc == NGX_DECLINED && m.container == NGX_HTTP_TIKTOK_MEDIA_MP4,
       "ftyp and mdat, no moov: declined, container MP4");
    free(b.data);

    memset(&b, 0, sizeof(buf_t));
    put_ftyp(&b, "isom", "isom");
    put_moov(&b, &o);
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "ftyp and moov, no mdat");
    free(b.data);

    /* ftyp too short for its brands */
    memset(&b, 0, sizeof(buf_t));
    put_box(&b, "ftyp", 4);
    put_moov(&b, &o);
    put_mdat(&b, &o);
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "ftyp of 12 bytes");
    free(b.data);

    /* four bytes after the last box */
    memset(&b, 0, sizeof(buf_t));
    build_mp4(&b, &o);
    put32(&b, 0);
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "4 stray bytes after the last top-level box");
    free(b.data);

    /* QuickTime ends atom lists with a 32-bit zero: allowed inside moov */
    memset(&b, 0, sizeof(buf_t));
    put_ftyp(&b, "qt  ", "qt  ");
    moov = box_open(&b, "moov");
    put_mvhd(&b, 0, 600, 6000);
    put_trak(&b, "vide", 0, 1280, 720, 0);
    put32(&b, 0);
    box_close(&b, moov);
    put_mdat(&b, &o);
    rc = probe_buf(b.data, b.len, &m);
    ok(rc == NGX_OK && m.duration_ms == 10000,
       "moov ending with a 32-bit zero terminator");
    free(b.data);

    /* uuid boxes at the top level and in moov are skipped */
    memset(&b, 0, sizeof(buf_t));
    put_ftyp(&b, "isom", "isom");
    put_box(&b, "uuid", 40);
    moov = box_open(&b, "moov");
    put_box(&b, "uuid", 16);
    put_mvhd(&b, 0, 1000, 777);
    put_trak(&b, "vide", 0, 1280, 720, 0);
    box_close(&b, moov);
    put_mdat(&b, &o);
    rc = probe_buf(b.data, b.len, &m);
    ok(rc == NGX_OK && m.duration_ms == 777, "uuid boxes skipped");
    free(b.data);

    memset(&b, 0, sizeof(buf_t));
    put_ftyp(&b, "isom", "isom");
    put_box(&b, "uuid", 8);
    put_moov(&b, &o);
    put_mdat(&b, &o);
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "uuid box too short for its extended type");
    free(b.data);

    /* tkhd and hdlr cut short */
    memset(&b, 0, sizeof(buf_t));
    put_ftyp(&b, "isom", "isom");
    moov = box_open(&b, "moov");
    put_mvhd(&b, 0, 1000, 777);
    at = box_open(&b, "trak");
    put_box(&b, "tkhd", 40);
    box_close(&b, at);
    box_close(&b, moov);
    put_mdat(&b, &o);
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "tkhd of 48 bytes");
    free(b.data);

    memset(&b, 0, sizeof(buf_t));
    put_ftyp(&b, "isom", "isom");
    moov = box_open(&b, "moov");
    put_mvhd(&b, 0, 1000, 777);
    at = box_open(&b, "trak");
    i = box_open(&b, "mdia");
    put_box(&b, "hdlr", 8);
    box_close(&b, i);
    box_close(&b, at);
    box_close(&b, moov);
    put_mdat(&b, &o);
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "hdlr of 16 bytes");
    free(b.data);

    /* 1000 levels of trak in trak: walked to a fixed depth only */
    memset(&b, 0, sizeof(buf_t));
    put_ftyp(&b, "isom", "isom");
    moov = box_open(&b, "moov");
    put_mvhd(&b, 0, 1000, 777);

    {
        size_t  nest[1000];

        for (i = 0; i < 1000; i++) {
            nest[i] = box_open(&b, "trak");
        }

        for (i = 1000; i > 0; i--) {
            box_close(&b, nest[i - 1]);
        }
    }

    box_close(&b, moov);
    put_mdat(&b, &o);
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "1000 nested trak boxes, no video track");
    free(b.data);
}


static void
test_webm(void)
{
    buf_t                    b;
    webm_t                   o;
    ngx_int_t                rc;
    ngx_http_tiktok_media_t  m;

    o = webm_defaults();
    rc = probe_webm(&o, &m);
    ok_rc(rc, NGX_OK, "WebM, 8-byte Duration");
    ok(m.container == NGX_HTTP_TIKTOK_MEDIA_WEBM
       && strcmp(m.content_type, "video/webm") == 0,
       "WebM: container WEBM, video/webm");
    ok(m.duration_ms == 12345, "WebM: Duration 12345.0 is 12345 ms (%llu)",
       (unsigned long long) m.duration_ms);
    ok(m.width == 1280 && m.height == 720, "WebM: 1280x720 (%lux%lu)",
       (unsigned long) m.width, (unsigned long) m.height);

    /* what libwebm and Chrome write: a 4-byte float */
    o = webm_defaults();
    o.duration_size = 4;
    o.duration = 5000.0;
    rc = probe_webm(&o, &m);
    ok(rc == NGX_OK && m.duration_ms == 5000,
       "4-byte Duration 5000.0 is 5000 ms (%llu)",
       (unsigned long long) m.duration_ms);

    o = webm_defaults();
    o.timecode_scale = 0;
    o.duration = 60000.0;
    rc = probe_webm(&o, &m);
    ok(rc == NGX_OK && m.duration_ms == 60000,
       "no TimecodeScale (default 1 ms): 60000.0 is 60000 ms (%llu)",
       (unsigned long long) m.duration_ms);

    o = webm_defaults();
    o.timecode_scale = 1000;
    o.duration = 2500000.0;
    rc = probe_webm(&o, &m);
    ok(rc == NGX_OK && m.duration_ms == 2500,
       "TimecodeScale 1000 ns: 2500000.0 ticks is 2500 ms (%llu)",
       (unsigned long long) m.duration_ms);

    o = webm_defaults();
    o.timecode_scale = 10000000;
    o.duration_size = 4;
    o.duration = 4.5;
    rc = probe_webm(&o, &m);
    ok(rc == NGX_OK && m.duration_ms == 45,
       "TimecodeScale 10 ms, 4-byte 4.5 ticks is 45 ms (%llu)",
       (unsigned long long) m.duration_ms);

    o = webm_defaults();
    o.duration = 1234.5678;
    rc = probe_webm(&o, &m);
    ok(rc == NGX_OK && m.duration_ms == 1235,
       "1234.5678 ms rounds to 1235 (%llu)",
       (unsigned long long) m.duration_ms);

    o.duration_size = 4;
    o.duration = 179999.4;
    rc = probe_webm(&o, &m);
    ok(rc == NGX_OK && m.duration_ms == 179999,
       "4-byte 179999.4 ms is 179999 (%llu)",
       (unsigned long long) m.duration_ms);

    o = webm_defaults();
    o.unknown_segment = 1;
    rc = probe_webm(&o, &m);
    ok(rc == NGX_OK && m.duration_ms == 12345,
       "Segment of unknown size (a live or MediaRecorder file)");

    o = webm_defaults();
    o.seekhead = 1;
    rc = probe_webm(&o, &m);
    ok(rc == NGX_OK && m.duration_ms == 12345, "SeekHead, then Info");

    o.info_after_cluster = 1;
    o.duration = 7000.0;
    rc = probe_webm(&o, &m);
    ok(rc == NGX_OK && m.duration_ms == 7000,
       "Info after the Cluster, found through the SeekHead (%llu)",
       (unsigned long long) m.duration_ms);

    o.seekhead = 0;
    rc = probe_webm(&o, &m);
    ok(rc == NGX_DECLINED && m.container == NGX_HTTP_TIKTOK_MEDIA_WEBM,
       "Info after the Cluster, no SeekHead: declined, container WEBM");

    o = webm_defaults();
    o.seekhead = 1;
    o.info_after_cluster = 1;
    o.tracks_after_cluster = 1;
    o.width = 1080;
    o.height = 1920;
    rc = probe_webm(&o, &m);
    ok(rc == NGX_OK && m.duration_ms == 12345 && m.width == 1080
       && m.height == 1920,
       "Info and Tracks after the Cluster, both through the SeekHead");

    o.seekhead = 0;
    o.info_after_cluster = 0;
    rc = probe_webm(&o, &m);
    ok_rc(rc, NGX_DECLINED, "Tracks after the Cluster, no SeekHead");

    o = webm_defaults();
    o.doctype = "matroska";
    rc = probe_webm(&o, &m);
    ok(rc == NGX_DECLINED && m.container == NGX_HTTP_TIKTOK_MEDIA_MATROSKA,
       "DocType matroska refused, container MATROSKA");

    o.doctype = "mkv";
    rc = probe_webm(&o, &m);
    ok(rc == NGX_DECLINED && m.container == NGX_HTTP_TIKTOK_MEDIA_UNKNOWN,
       "DocType mkv: declined, unknown");

    o.doctype = "";
    rc = probe_webm(&o, &m);
    ok_rc(rc, NGX_DECLINED, "empty DocType");

    o.doctype = "webmwebmwebmwebmwebmwebmwebmwebmwebm";
    rc = probe_webm(&o, &m);
    ok_rc(rc, NGX_DECLINED, "DocType of 36 bytes");

    o = webm_defaults();
    o.audio_only = 1;
    rc = probe_webm(&o, &m);
    ok(rc == NGX_DECLINED && m.container == NGX_HTTP_TIKTOK_MEDIA_WEBM,
       "audio-only WebM: declined, container WEBM");

    o = webm_defaults();
    o.duration_size = 0;
    rc = probe_webm(&o, &m);
    ok(rc == NGX_DECLINED && m.container == NGX_HTTP_TIKTOK_MEDIA_WEBM,
       "no Duration (as MediaRecorder writes): declined, container WEBM");

    /* a DocType padded with zeros, written by hand */
    memset(&b, 0, sizeof(buf_t));
    o = webm_defaults();
    build_webm(&b, &o);

    {
        buf_t   p;
        size_t  h;

        memset(&p, 0, sizeof(buf_t));
        h = ebml_open(&p, 0x1A45DFA3);
        ebml_raw(&p, 0x4282, "webm\0\0", 6);
        ebml_close(&p, h);

        /* the original header ends where its Segment starts */
        for (h = 0; h + 4 < b.len; h++) {
            if (memcmp(b.data + h, "\x18\x53\x80\x67", 4) == 0) {
                break;
            }
        }

        put(&p, b.data + h, b.len - h);
        rc = probe_buf(p.data, p.len, &m);
        ok(rc == NGX_OK && m.duration_ms == 12345,
           "DocType \"webm\" padded with two zero bytes");
        free(p.data);
    }

    free(b.data);
}


/* a WebM built from the defaults with its Info's elements replaced */

static ngx_int_t
probe_info(const u_char *info, size_t len, ngx_http_tiktok_media_t *m)
{
    buf_t      b;
    size_t     header, segment, at;
    webm_t     o;
    ngx_int_t  rc;

    o = webm_defaults();

    memset(&b, 0, sizeof(buf_t));
    header = ebml_open(&b, 0x1A45DFA3);
    ebml_raw(&b, 0x4282, "webm", 4);
    ebml_close(&b, header);
    segment = ebml_open(&b, 0x18538067);
    at = ebml_open(&b, 0x1549A966);
    put(&b, info, len);
    ebml_close(&b, at);
    put_tracks(&b, &o);
    ebml_close(&b, segment);

    rc = probe_buf(b.data, b.len, m);
    free(b.data);

    return rc;
}


static ngx_int_t
probe_duration(double d, int size, uint64_t scale,
    ngx_http_tiktok_media_t *m)
{
    webm_t  o;

    o = webm_defaults();
    o.duration = d;
    o.duration_size = size;
    o.timecode_scale = scale;

    return probe_webm(&o, m);
}


static void
test_webm_hostile(void)
{
    buf_t                    b;
    size_t                   at;
    webm_t                   o;
    ngx_int_t                rc;
    ngx_http_tiktok_media_t  m;

    rc = probe_duration(NAN, 8, 1000000, &m);
    ok(rc == NGX_DECLINED && m.container == NGX_HTTP_TIKTOK_MEDIA_WEBM,
       "NaN Duration (8 bytes): declined, container WEBM");
    ok_rc(probe_duration(NAN, 4, 1000000, &m), NGX_DECLINED,
          "NaN Duration (4 bytes)");
    ok_rc(probe_duration(-5000.0, 8, 1000000, &m), NGX_DECLINED,
          "negative Duration");
    ok_rc(probe_duration(INFINITY, 8, 1000000, &m), NGX_DECLINED,
          "infinite Duration");
    ok_rc(probe_duration(INFINITY, 4, 1000000, &m), NGX_DECLINED,
          "infinite Duration (4 bytes)");
    ok_rc(probe_duration(1e300, 8, 1000000, &m), NGX_DECLINED,
          "Duration 1e300");
    ok_rc(probe_duration(0.0, 8, 1000000, &m), NGX_DECLINED,
          "Duration 0");
    ok_rc(probe_duration(0.4, 8, 1000000, &m), NGX_DECLINED,
          "Duration 0.4 ms, rounds to 0");
    ok_rc(probe_duration(1e16, 8, 1000000, &m), NGX_DECLINED,
          "Duration 1e16 ms, over 2^53");
    ok_rc(probe_duration(1e10, 8, 0xffffffffffffffffULL, &m), NGX_DECLINED,
          "TimecodeScale 2^64-1 times 1e10 ticks");

    rc = probe_duration(9007199254740992.0, 8, 1000000, &m);
    ok(rc == NGX_OK && m.duration_ms == NGX_HTTP_TIKTOK_MEDIA_MAX_MS,
       "Duration exactly 2^53 ms accepted");

    ok_rc(probe_info((u_char *) "\x2A\xD7\xB1\x81\x00"
                     "\x44\x89\x84\x45\x9C\x40\x00", 12, &m),
          NGX_DECLINED, "TimecodeScale 0");

    /* an empty TimecodeScale is its default; Duration 5000.0 as float */
    rc = probe_info((u_char *) "\x2A\xD7\xB1\x80"
                    "\x44\x89\x84\x45\x9C\x40\x00", 11, &m);
    ok(rc == NGX_OK && m.duration_ms == 5000,
       "empty TimecodeScale means 1 ms: 5000 ms (%llu)",
       (unsigned long long) m.duration_ms);

    ok_rc(probe_info((u_char *) "\x44\x89\x80", 3, &m),
          NGX_DECLINED, "empty Duration (0)");

    ok_rc(probe_info((u_char *) "\x44\x89\x83\x45\x9C\x40", 6, &m),
          NGX_DECLINED, "3-byte Duration");

    ok_rc(probe_info((u_char *) "\x2A\xD7\xB1\x89"
                     "\x00\x00\x00\x00\x00\x00\x0F\x42\x40"
                     "\x44\x89\x84\x45\x9C\x40\x00", 20, &m),
          NGX_DECLINED, "9-byte TimecodeScale");

    ok_rc(probe_info((u_char *) "\x44\x89\xFF", 3, &m),
          NGX_DECLINED, "Duration of unknown size");

    ok_rc(probe_info((u_char *) "\x44\x89\x00\x84\x45\x9C\x40"
                     "\x00", 8, &m),
          NGX_DECLINED, "size with no length marker (first byte 0)");

    ok_rc(probe_info((u_char *) "\x08\x01\x02\x03\x04\x80"
                     "\x44\x89\x84\x45\x9C\x40\x00", 13, &m),
          NGX_DECLINED, "5-byte element id");

    ok_rc(probe_info((u_char *) "\xEC\x01\x00\xFF\xFF\xFF\xFF\xFF"
                     "\xFE\x44\x89\x84\x45\x9C\x40\x00", 16, &m),
          NGX_DECLINED, "Void of size 2^48-2 inside a small Info");

    /* the EBML header itself */
    memset(&b, 0, sizeof(buf_t));
    o = webm_defaults();
    build_webm(&b, &o);

    b.data[4] = 0xff;
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "EBML header of unknown size");
    b.data[4] = 0x01;

    b.data[5] = 0x7f;
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "EBML header size past the end of the file");
    b.data[5] = 0x00;

    for (at = 0; at + 3 < b.len; at++) {
        if (memcmp(b.data + at, "\x42\xF7\x81\x01", 4) == 0) {
            break;
        }
    }

    b.data[at + 3] = 2;
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "EBMLReadVersion 2");
    b.data[at + 3] = 1;

    b.data[at + 2] = 0xff;
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "EBML header child of unknown size");
    b.data[at + 2] = 0x81;

    /* an element of unknown size between the header and the Segment */
    {
        buf_t   v;
        size_t  h;

        for (h = 0; h + 4 < b.len; h++) {
            if (memcmp(b.data + h, "\x18\x53\x80\x67", 4) == 0) {
                break;
            }
        }

        memset(&v, 0, sizeof(buf_t));
        put(&v, b.data, h);
        put(&v, "\xEC\xFF", 2);
        put(&v, b.data + h, b.len - h);
        rc = probe_buf(v.data, v.len, &m);
        ok_rc(rc, NGX_DECLINED, "Void of unknown size before the Segment");

        v.data[h + 1] = 0x80;
        rc = probe_buf(v.data, v.len, &m);
        ok_rc(rc, NGX_OK, "empty Void before the Segment");
        free(v.data);
    }

    /* Segment size: one more than the file holds, then absurd */
    for (at = 0; at + 4 < b.len; at++) {
        if (memcmp(b.data + at, "\x18\x53\x80\x67", 4) == 0) {
            break;
        }
    }

    patch64(&b, at + 4, 0x0100000000000000ULL | (b.len - at - 12 + 1));
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "Segment one byte longer than the file");

    patch64(&b, at + 4, 0x01fffffffffffffeULL);
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "Segment of size 2^56-2");

    patch64(&b, at + 4, 0x0100000000000000ULL | (b.len - at - 12));
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_OK, "Segment size restored");

    free(b.data);

    /* a SeekHead pointing past the Segment, or at the wrong element */
    o = webm_defaults();
    o.seekhead = 1;
    o.info_after_cluster = 1;
    memset(&b, 0, sizeof(buf_t));
    build_webm(&b, &o);

    for (at = 0; at + 3 < b.len; at++) {
        if (memcmp(b.data + at, "\x53\xAC\x88", 3) == 0) {
            break;
        }
    }

    patch64(&b, at + 3, 0x7fffffffffffffffULL);
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "SeekPosition 2^63-1");

    patch64(&b, at + 3, 0);
    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "SeekPosition at the SeekHead, not the Info");

    free(b.data);
}


static void
test_noise(void)
{
    u_char                   buf[4096];
    size_t                   len, i, n;
    uint64_t                 seed;
    vfile_t                  f;
    ngx_int_t                rc;
    ngx_uint_t               bad, round;
    ngx_http_tiktok_media_t  m;

    static const char  *magic[] = {
        "", "\x1A\x45\xDF\xA3", "\x00\x00\x00\x18" "ftyp",
        "\x00\x00\x00\x18" "ftypisom", "\x00\x00\x00\x18" "moov", NULL
    };

    memset(&f, 0, sizeof(vfile_t));
    f.fail_at = -1;
    rc = probe_vfile(&f, &m);
    ok(rc == NGX_DECLINED && f.reads == 0 && m.container == 0,
       "empty file: declined without a read");

    for (len = 1; len < 8; len++) {
        rc = probe_buf((u_char *) "\x1A\x45\xDF\xA3\x00\x00\x00", len, &m);

        if (rc != NGX_DECLINED) {
            break;
        }
    }

    ok(len == 8, "files of 1 to 7 bytes declined");

    seed = 0x9e3779b97f4a7c15ULL;
    bad = 0;
    n = 0;

    for (i = 0; magic[i]; i++) {
        for (round = 0; round < 400; round++) {
            len = (size_t) (xorshift(&seed) % sizeof(buf));

            for (n = 0; n < len; n++) {
                buf[n] = (u_char) xorshift(&seed);
            }

            n = strlen(magic[i]) + (magic[i][0] == 0 && i ? 4 : 0);

            if (i == 2 || i == 3 || i == 4) {
                n = i == 3 ? 12 : 8;
            }

            if (len >= n) {
                memcpy(buf, magic[i], n);
            }

            rc = probe_buf(buf, len, &m);

            if (rc != NGX_DECLINED || !valid_ok(rc, &m)) {
                bad++;
            }
        }
    }

    ok(bad == 0, "2000 random files (some with MP4/EBML magic) declined "
       "(%lu not)", (unsigned long) bad);
}


/* every prefix of a valid file is refused, none crashes */

static void
check_prefixes(const char *name, buf_t *b)
{
    size_t                   len;
    u_char                  *copy;
    ngx_int_t                rc;
    ngx_http_tiktok_media_t  m;

    rc = probe_buf(b->data, b->len, &m);
    ok_rc(rc, NGX_OK, name);

    for (len = 0; len < b->len; len++) {

        /* an exact-size copy: an overrun shows under ASan and valgrind */
        copy = xrealloc(NULL, len);
        memcpy(copy, b->data, len);
        rc = probe_buf(copy, len, &m);
        free(copy);

        if (rc != NGX_DECLINED || !valid_ok(rc, &m)) {
            break;
        }
    }

    ok(len == b->len, "%s: each of its %lu prefixes declined%s", name,
       (unsigned long) b->len, len == b->len ? "" : " (not all)");

    if (len != b->len) {
        printf("# first accepted prefix: %lu bytes, rc %ld\n",
               (unsigned long) len, (long) rc);
    }
}


/* every byte set to 0, 0xff, flipped, incremented: an answer, no crash */

static void
check_mutations(const char *name, buf_t *b)
{
    u_char                   save;
    size_t                   i;
    ngx_int_t                rc;
    ngx_uint_t               v, bad, accepted;
    ngx_http_tiktok_media_t  m;

    bad = 0;
    accepted = 0;

    for (i = 0; i < b->len; i++) {
        save = b->data[i];

        for (v = 0; v < 4; v++) {
            b->data[i] = v == 0 ? 0 : v == 1 ? 0xff : v == 2 ? save ^ 0x80
                                                             : save + 1;

            rc = probe_buf(b->data, b->len, &m);

            if (!valid_ok(rc, &m)) {
                bad++;
            }

            if (rc == NGX_OK) {
                accepted++;
            }
        }

        b->data[i] = save;
    }

    ok(bad == 0, "%s: %lu single-byte mutations answered sanely "
       "(%lu still accepted)", name, (unsigned long) (4 * b->len),
       (unsigned long) accepted);
}


static void
test_truncations(void)
{
    buf_t   b;
    mp4_t   o;
    webm_t  w;

    memset(&b, 0, sizeof(buf_t));
    o = mp4_defaults();
    build_mp4(&b, &o);
    check_prefixes("MP4, moov first", &b);
    check_mutations("MP4, moov first", &b);
    free(b.data);

    memset(&b, 0, sizeof(buf_t));
    o = mp4_defaults();
    o.moov_last = 1;
    o.major = "qt  ";
    o.mvhd_version = 1;
    o.large_mdat = 1;
    build_mp4(&b, &o);
    check_prefixes("MOV, 64-bit mdat, moov last", &b);
    check_mutations("MOV, 64-bit mdat, moov last", &b);
    free(b.data);

    memset(&b, 0, sizeof(buf_t));
    o = mp4_defaults();
    o.no_ftyp = 1;
    o.first = "wide";
    o.moov_last = 1;
    build_mp4(&b, &o);
    check_prefixes("MOV without ftyp", &b);
    free(b.data);

    memset(&b, 0, sizeof(buf_t));
    w = webm_defaults();
    build_webm(&b, &w);
    check_prefixes("WebM", &b);
    check_mutations("WebM", &b);
    free(b.data);

    memset(&b, 0, sizeof(buf_t));
    w = webm_defaults();
    w.seekhead = 1;
    w.info_after_cluster = 1;
    w.duration_size = 4;
    build_webm(&b, &w);
    check_prefixes("WebM, Info after the Cluster", &b);
    check_mutations("WebM, Info after the Cluster", &b);
    free(b.data);
}


static void
test_callback(void)
{
    buf_t                    b, w;
    mp4_t                    o;
    webm_t                   wo;
    vfile_t                  f;
    ngx_int_t                rc;
    ngx_http_tiktok_media_t  m;

    memset(&b, 0, sizeof(buf_t));
    o = mp4_defaults();
    build_mp4(&b, &o);

    memset(&w, 0, sizeof(buf_t));
    wo = webm_defaults();
    build_webm(&w, &wo);

    memset(&f, 0, sizeof(vfile_t));
    f.head = b.data;
    f.head_len = b.len;
    f.size = (off_t) b.len;

    f.fail_at = 0;
    rc = probe_vfile(&f, &m);
    ok_rc(rc, NGX_ERROR, "read fails at once");

    f.fail_at = 100;
    rc = probe_vfile(&f, &m);
    ok(rc == NGX_ERROR && m.duration_ms == 0,
       "read fails inside moov: NGX_ERROR, no duration");

    f.fail_at = -1;
    f.overread = 1;
    rc = probe_vfile(&f, &m);
    ok_rc(rc, NGX_ERROR, "read answers more than asked");
    f.overread = 0;

    f.chunk = 1;
    rc = probe_vfile(&f, &m);
    ok(rc == NGX_OK && m.duration_ms == 12345,
       "MP4 read one byte per call (%lu reads)", (unsigned long) f.reads);

    /* the caller says the file is longer than the callback can read */
    f.chunk = 0;
    f.reads = 0;
    rc = ngx_http_tiktok_media_probe(vread, &f, f.size + 1000, &m);
    ok_rc(rc, NGX_DECLINED, "size larger than the readable file");

    rc = ngx_http_tiktok_media_probe(NULL, &f, f.size, &m);
    ok_rc(rc, NGX_DECLINED, "no read callback");

    rc = ngx_http_tiktok_media_probe(vread, &f, -1, &m);
    ok_rc(rc, NGX_DECLINED, "negative size");

    f.head = w.data;
    f.head_len = w.len;
    f.size = (off_t) w.len;

    f.chunk = 1;
    rc = probe_vfile(&f, &m);
    ok(rc == NGX_OK && m.duration_ms == 12345,
       "WebM read one byte per call (%lu reads)", (unsigned long) f.reads);
    f.chunk = 0;

    f.fail_at = 60;
    rc = probe_vfile(&f, &m);
    ok_rc(rc, NGX_ERROR, "WebM read fails in the Segment");

    free(b.data);
    free(w.data);
}


static void
test_budget(void)
{
    buf_t                    b;
    mp4_t                    o;
    size_t                   moov, at, i;
    vfile_t                  f;
    ngx_int_t                rc;
    ngx_http_tiktok_media_t  m;

    o = mp4_defaults();

    /* 3000 top-level boxes, each read apart */
    memset(&b, 0, sizeof(buf_t));
    put_ftyp(&b, "isom", "isom");

    for (i = 0; i < 3000; i++) {
        put_box(&b, "free", 0);
    }

    build_mp4(&b, &o);
    memcpy(b.data, "\x00\x00\x00\x14" "ftypisom\x00\x00\x02\x00isom", 20);

    memset(&f, 0, sizeof(vfile_t));
    f.head = b.data;
    f.head_len = b.len;
    f.size = (off_t) b.len;
    f.fail_at = -1;

    rc = probe_vfile(&f, &m);
    ok(rc == NGX_DECLINED && f.reads <= NGX_HTTP_TIKTOK_MEDIA_MAX_READS,
       "3000 top-level boxes: declined within the budget (%lu reads)",
       (unsigned long) f.reads);
    free(b.data);

    /* 5000 empty boxes inside moov before mvhd */
    memset(&b, 0, sizeof(buf_t));
    put_ftyp(&b, "isom", "isom");
    moov = box_open(&b, "moov");

    for (i = 0; i < 5000; i++) {
        put_box(&b, "free", 0);
    }

    put_mvhd(&b, 0, 1000, 1000);
    put_trak(&b, "vide", 0, 640, 360, 0);
    box_close(&b, moov);
    put_mdat(&b, &o);

    rc = probe_buf(b.data, b.len, &m);
    ok_rc(rc, NGX_DECLINED, "5000 boxes in moov: declined");
    free(b.data);

    /*
     * A fragmented MP4: mvhd says 0, mehd gives the duration, then 300
     * moof and mdat pairs; within the budget.
     */
    memset(&b, 0, sizeof(buf_t));
    put_ftyp(&b, "iso6", "iso6dash");
    moov = box_open(&b, "moov");
    put_mvhd(&b, 0, 90000, 0);
    put_trak(&b, "vide", 0, 1080, 1920, 0);
    at = box_open(&b, "mvex");
    i = box_open(&b, "mehd");
    put32(&b, 0);
    put32(&b, 90000 * 30);
    box_close(&b, i);
    box_close(&b, at);
    box_close(&b, moov);

    for (i = 0; i < 300; i++) {
        put_box(&b, "moof", 24);
        put_box(&b, "mdat", 100);
    }

    f.head = b.data;
    f.head_len = b.len;
    f.size = (off_t) b.len;

    rc = probe_vfile(&f, &m);
    ok(rc == NGX_OK && m.duration_ms == 30000,
       "fragmented MP4: 30000 ms from mehd, 600 fragments boxes "
       "(%lu reads)", (unsigned long) f.reads);
    free(b.data);

    /* 5000 Void elements before the Info */
    {
        buf_t   w;
        size_t  header, segment;
        webm_t  wo;

        wo = webm_defaults();
        memset(&w, 0, sizeof(buf_t));
        header = ebml_open(&w, 0x1A45DFA3);
        ebml_raw(&w, 0x4282, "webm", 4);
        ebml_close(&w, header);
        segment = ebml_open(&w, 0x18538067);

        for (i = 0; i < 5000; i++) {
            put16(&w, 0xEC80);
        }

        put_info(&w, &wo);
        put_tracks(&w, &wo);
        ebml_close(&w, segment);

        rc = probe_buf(w.data, w.len, &m);
        ok_rc(rc, NGX_DECLINED, "5000 Void elements before Info: declined");
        free(w.data);
    }
}


static int
write_seed(const char *dir, const char *name, const u_char *p, size_t len)
{
    FILE  *fp;
    char   path[4096];

    snprintf(path, sizeof(path), "%s/%s", dir, name);

    fp = fopen(path, "wb");
    if (fp == NULL) {
        perror(path);
        return 1;
    }

    if (fwrite(p, 1, len, fp) != len || fclose(fp) != 0) {
        perror(path);
        return 1;
    }

    printf("%s: %lu bytes\n", path, (unsigned long) len);

    return 0;
}


/* small valid files of each kind, and a few cut short; each under 4 KB */

static int
write_corpus(const char *dir)
{
    int         rc;
    buf_t       b;
    mp4_t       o;
    size_t      i, moov, at;
    webm_t      w;
    ngx_uint_t  n;

    static const struct {
        const char  *name;
        const char  *major;
        int          no_ftyp, moov_last, mvhd_version, large_mdat, rotate;
        int          mdat_to_end, audio_first;
    }  mp4s[] = {
        { "mp4_moov_first", "isom", 0, 0, 0, 0, 0, 0, 0 },
        { "mp4_moov_last", "mp42", 0, 1, 0, 0, 0, 0, 1 },
        { "mp4_mvhd_v1_largesize", "iso6", 0, 1, 1, 1, 0, 0, 0 },
        { "mp4_mdat_to_end", "avc1", 0, 0, 0, 0, 1, 1, 0 },
        { "mov_qt", "qt  ", 0, 0, 0, 0, 1, 0, 0 },
        { "mov_no_ftyp", NULL, 1, 1, 0, 0, 0, 0, 0 },
    };

    rc = 0;

    for (n = 0; n < sizeof(mp4s) / sizeof(mp4s[0]); n++) {
        memset(&b, 0, sizeof(buf_t));
        o = mp4_defaults();
        o.major = mp4s[n].major ? mp4s[n].major : "isom";
        o.compat = mp4s[n].major && mp4s[n].major[0] == 'q' ? "qt  "
                                                            : "isommp42";
        o.no_ftyp = mp4s[n].no_ftyp;
        o.first = "wide";
        o.moov_last = mp4s[n].moov_last;
        o.mvhd_version = mp4s[n].mvhd_version;
        o.large_mdat = mp4s[n].large_mdat;
        o.rotate = mp4s[n].rotate;
        o.mdat_to_end = mp4s[n].mdat_to_end;
        o.audio_first = mp4s[n].audio_first;
        o.mdat_len = 16;
        build_mp4(&b, &o);
        rc |= write_seed(dir, mp4s[n].name, b.data, b.len);

        if (n == 0) {
            rc |= write_seed(dir, "mp4_truncated", b.data, b.len / 2);
        }

        free(b.data);
    }

    /* fragmented: mehd, then a few moof and mdat pairs */
    memset(&b, 0, sizeof(buf_t));
    o = mp4_defaults();
    put_ftyp(&b, "iso6", "iso6dash");
    moov = box_open(&b, "moov");
    put_mvhd(&b, 0, 90000, 0);
    put_trak(&b, "vide", 0, 1080, 1920, 0);
    at = box_open(&b, "mvex");
    i = box_open(&b, "mehd");
    put32(&b, 0);
    put32(&b, 90000 * 30);
    box_close(&b, i);
    box_close(&b, at);
    box_close(&b, moov);

    for (i = 0; i < 4; i++) {
        put_box(&b, "moof", 8);
        put_box(&b, "mdat", 8);
    }

    rc |= write_seed(dir, "mp4_fragmented", b.data, b.len);
    free(b.data);

    memset(&b, 0, sizeof(buf_t));
    w = webm_defaults();
    w.cluster_len = 16;
    build_webm(&b, &w);
    rc |= write_seed(dir, "webm", b.data, b.len);
    rc |= write_seed(dir, "webm_truncated", b.data, b.len * 2 / 3);
    free(b.data);

    memset(&b, 0, sizeof(buf_t));
    w = webm_defaults();
    w.cluster_len = 16;
    w.duration_size = 4;
    w.duration = 4.5;
    w.timecode_scale = 10000000;
    w.unknown_segment = 1;
    build_webm(&b, &w);
    rc |= write_seed(dir, "webm_float4_unknown_segment", b.data, b.len);
    free(b.data);

    memset(&b, 0, sizeof(buf_t));
    w = webm_defaults();
    w.cluster_len = 16;
    w.seekhead = 1;
    w.info_after_cluster = 1;
    build_webm(&b, &w);
    rc |= write_seed(dir, "webm_seekhead", b.data, b.len);
    free(b.data);

    memset(&b, 0, sizeof(buf_t));
    w = webm_defaults();
    w.cluster_len = 16;
    w.doctype = "matroska";
    build_webm(&b, &w);
    rc |= write_seed(dir, "matroska", b.data, b.len);
    free(b.data);

    return rc;
}
