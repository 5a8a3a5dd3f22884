# ngx_http_tiktok_module — build, test and demo.
#
#   make          build build/ngx_http_tiktok_module.so against Debian's nginx
#   make test     install what is missing, build, build against nginx 1.26
#                 (make compat), run every suite, a short run of every fuzz
#                 target, then the browser test when /usr/bin/chromium is
#                 there
#   make test-browser  the demo page's flows in headless Chromium
#                 (screenshots in build/browser/)
#   make compat   build the module against Debian trixie's nginx-dev (1.26)
#                 with nginx's own warning flags, -Werror, no --with-debug
#   make demo     install what is missing, build, start nginx + PostgreSQL +
#                 the TikTok sandbox for a person to use
#   make asan     the same suites with the module built under AddressSanitizer
#   make fuzz     every libFuzzer target (fuzz/) FUZZ_SECONDS each, then a
#                 table of executions, coverage and crashes; make test runs
#                 each FUZZ_SMOKE seconds (fuzz-smoke)
#   make bench    the benchmark, the soak and the publisher at scale (not
#                 part of make test)
#   make deb      build/deb/libnginx-mod-http-tiktok_<version>_<arch>.deb,
#                 built as Debian builds its nginx modules; fails on any
#                 lintian error
#
# TESTS='t/120-status.t t/140-pg-restart.t' limits test, test-only and asan
# to those suites (run one at a time); TEST_JOBS=1 runs every suite alone.

SHELL      := /bin/bash

NGX_SRC    ?= /usr/share/nginx/src
BUILD      ?= $(CURDIR)/build
NGX_BUILD   = $(BUILD)/nginx
MODULE      = $(BUILD)/ngx_http_tiktok_module.so
TEST_MODULE = $(BUILD)/ngx_http_tiktok_cache_test_module.so
CURL_MODULE = $(BUILD)/ngx_http_tiktok_curl_test_module.so
CC_OPT     ?= -g -O2 -fPIC -Wall -Werror -fstack-protector-strong
PROVE_OPTS ?=
TESTS      ?= t

SRCS  = $(wildcard $(CURDIR)/src/*.c) $(wildcard $(CURDIR)/src/*.h)
# test-only modules (t/modules/config): in the test builds, never in compat
TEST_SRCS = $(wildcard $(CURDIR)/t/modules/*.c)
UNIT  = $(BUILD)/unit/crypto_test $(BUILD)/unit/tiktok_seal \
        $(BUILD)/unit/media_test $(BUILD)/unit/validate_test
UNIT_CFLAGS = $(CC_OPT) -Isrc -I$(NGX_BUILD)/objs -I$(NGX_BUILD)/src/core \
              -I$(NGX_BUILD)/src/event -I$(NGX_BUILD)/src/event/modules \
              -I$(NGX_BUILD)/src/os/unix

.PHONY: all deps module unit compat test test-only test-browser \
        test-browser-only asan fuzz fuzz-build fuzz-smoke bench demo \
        demo-stop deb clean

all: module unit

deps:
	@sh scripts/deps.sh

module: $(MODULE)

# Debian's nginx-dev tree holds headers and configure only; we configure a
# private copy with the packaged nginx's own flags so the .so is binary
# compatible (--with-compat) with /usr/sbin/nginx.  This build also serves
# the suites, so it adds the test-only modules of t/modules; make compat, like
# any production build of this repository, builds the module alone.
$(NGX_BUILD)/objs/Makefile: config t/modules/config
	rm -rf $(NGX_BUILD)
	mkdir -p $(BUILD)
	cp -a $(NGX_SRC) $(NGX_BUILD)
	cd $(NGX_BUILD) && . ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt='$(CC_OPT)' \
	        --add-dynamic-module=$(CURDIR) \
	        --add-dynamic-module=$(CURDIR)/t/modules \
	        > $(BUILD)/configure.log 2>&1 \
	    || { tail -30 $(BUILD)/configure.log; exit 1; }

$(MODULE): $(NGX_BUILD)/objs/Makefile $(SRCS) $(TEST_SRCS)
	$(MAKE) -C $(NGX_BUILD) -f objs/Makefile modules
	@# copy, then rename: a running nginx keeps its mapping of the old file
	cp $(NGX_BUILD)/objs/ngx_http_tiktok_module.so $@.tmp && mv -f $@.tmp $@
	cp $(NGX_BUILD)/objs/ngx_http_tiktok_cache_test_module.so \
	    $(TEST_MODULE).tmp && mv -f $(TEST_MODULE).tmp $(TEST_MODULE)
	cp $(NGX_BUILD)/objs/ngx_http_tiktok_curl_test_module.so \
	    $(CURL_MODULE).tmp && mv -f $(CURL_MODULE).tmp $(CURL_MODULE)

unit: $(UNIT)

# the container parser, like the crypto code, builds without nginx objects
$(BUILD)/unit/media_test: t/unit/media_test.c src/ngx_http_tiktok_media.c \
                          src/ngx_http_tiktok_media.h $(NGX_BUILD)/objs/Makefile
	mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) -o $@ $< src/ngx_http_tiktok_media.c

$(BUILD)/unit/validate_test: t/unit/validate_test.c \
                             src/ngx_http_tiktok_validate.c \
                             src/ngx_http_tiktok_validate.h \
                             $(NGX_BUILD)/objs/Makefile
	mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) -o $@ $< src/ngx_http_tiktok_validate.c

# the crypto code builds without nginx objects: it only uses nginx's types
$(BUILD)/unit/%: t/unit/%.c src/ngx_http_tiktok_crypto.c \
                 src/ngx_http_tiktok_crypto.h $(NGX_BUILD)/objs/Makefile
	mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) -o $@ $< src/ngx_http_tiktok_crypto.c -lcrypto

# The module must build against current nginx, not only bookworm's 1.22
# (1.23 changed headers_in's multi-value headers into linked lists), and
# without --with-debug, whose absence turns debug-only variables into
# "set but not used".  Debian's next release's nginx-dev is downloaded once
# into build/compat (never installed: scripts/fetch-nginx-dev.sh) and the
# module is configured against it with nginx's default compiler flags
# (-W -Wall ... -Werror) and --with-compat only.
COMPAT_SUITE ?= trixie
COMPAT       = $(BUILD)/compat
COMPAT_DEB   = $(COMPAT)/nginx-dev-$(COMPAT_SUITE).deb
COMPAT_NGX   = $(COMPAT)/nginx

compat: $(COMPAT)/ngx_http_tiktok_module.so

$(COMPAT_DEB):
	sh scripts/fetch-nginx-dev.sh $(COMPAT_SUITE) $@

$(COMPAT_NGX)/objs/Makefile: $(COMPAT_DEB) config
	rm -rf $(COMPAT_NGX) $(COMPAT)/deb
	dpkg-deb -x $(COMPAT_DEB) $(COMPAT)/deb
	cp -a $(COMPAT)/deb/usr/share/nginx/src $(COMPAT_NGX)
	rm -rf $(COMPAT)/deb
	cd $(COMPAT_NGX) && env -u CFLAGS ./configure --with-compat \
	        --with-cc-opt='-fPIC -Werror' \
	        --add-dynamic-module=$(CURDIR) > $(COMPAT)/configure.log 2>&1 \
	    || { tail -30 $(COMPAT)/configure.log; exit 1; }

$(COMPAT)/ngx_http_tiktok_module.so: $(COMPAT_NGX)/objs/Makefile $(SRCS)
	$(MAKE) -C $(COMPAT_NGX) -f objs/Makefile modules
	grep -q 'define NGX_DEBUG ' $(COMPAT_NGX)/objs/ngx_auto_config.h \
	    && { echo 'compat: built with debug'; exit 1; } || true
	cp $(COMPAT_NGX)/objs/ngx_http_tiktok_module.so $@

CHROMIUM ?= /usr/bin/chromium

test: deps
	$(MAKE) compat
	$(MAKE) test-only
ifeq ($(TESTS),t)
	$(MAKE) fuzz-smoke
	@if [ -x $(CHROMIUM) ]; then $(MAKE) test-browser-only; \
	else echo "test: no $(CHROMIUM), so no browser test"; fi
endif

# The demo page driven by Debian's Chromium through playwright-core (npm ci
# from t/browser/package-lock.json): sign in, connect through the sandbox's
# consent page, analytics, export now and scheduled.  It starts and stops
# its own demo on free loopback ports.
test-browser: deps
	$(MAKE) test-browser-only

test-browser-only: all
	CHROMIUM=$(CHROMIUM) scripts/test-browser.sh

# With the default TESTS, the suites run TEST_JOBS at a time (each has its
# own PostgreSQL, sandbox, nginx and ports), except those that measure a
# worker's latency or how many requests are in flight when a fault strikes:
# a second suite on the same two cores would make them measure the machine,
# so they run alone afterwards.  Both runs always happen; either failing
# fails the target.
TEST_JOBS   ?= 4
TESTS_ALONE ?= t/140-pg-restart.t t/150-nonblocking.t t/400-curl.t \
               t/530-publish.t t/540-publish-nonblocking.t \
               t/600-fault-pg-kill.t
# Most suites wait (on timers, TikTok's processing, restarts) far more than
# they compute, so four at a time on two cores; the longest start first,
# or the run would end waiting on one of them alone.
TESTS_SLOW  ?= t/550-publish-lifecycle.t t/560-exactly-once.t \
               t/700-deb.t t/610-fault-reload.t t/620-fault-drops.t
PROVE = TEST_NGINX_TIKTOK_MODULE=$(MODULE) TIKTOK_UNIT_DIR=$(BUILD)/unit \
	$(if $(TEST_NGINX_BINARY),TEST_NGINX_BINARY=$(TEST_NGINX_BINARY)) \
	prove -I t/lib -I t/runner $(PROVE_OPTS)

test-only: all
ifeq ($(TESTS),t)
	rc=0; \
	$(PROVE) -j$(TEST_JOBS) $(filter $(wildcard t/*.t),$(TESTS_SLOW)) \
	    $(filter-out $(TESTS_ALONE) $(TESTS_SLOW),$(sort $(wildcard t/*.t))) \
	    || rc=1; \
	$(PROVE) $(TESTS_ALONE) || rc=1; \
	exit $$rc
else
	$(PROVE) -r $(TESTS)
endif

# The same suites with the module (and the unit tests) built under
# AddressSanitizer and nginx started through scripts/nginx-asan; any report
# of an invalid access, or of a leak in the module or the libraries it
# drives, fails the run (scripts/asan-check).
ASAN_DIR = $(CURDIR)/build-asan/reports

asan: deps
	rm -rf $(ASAN_DIR)
	mkdir -p build-asan $(ASAN_DIR)
	chmod 1777 $(ASAN_DIR)
	$(CC) -shared -fPIC -o build-asan/nodlclose.so t/unit/nodlclose.c
	$(MAKE) BUILD=$(CURDIR)/build-asan \
	    CC_OPT='-g -O1 -fPIC -Wall -Werror -fsanitize=address -fno-omit-frame-pointer' \
	    TEST_NGINX_BINARY=$(CURDIR)/scripts/nginx-asan \
	    TIKTOK_ASAN_DIR=$(ASAN_DIR) TIKTOK_ASAN=1 \
	    TIKTOK_NODLCLOSE=$(CURDIR)/build-asan/nodlclose.so test-only
	scripts/asan-check $(ASAN_DIR)

# libFuzzer targets (fuzz/, one per shape of outside input: README,
# "Fuzzing"), with ASan and UBSan.  src/ is built once with clang into an
# archive; a target that needs a parser's static functions includes its .c
# and the archive fills in the rest.  fuzz/core.c stands in for the parts
# of nginx's core they use (Debian ships nginx's headers, not its .c).
# "make fuzz" runs every target FUZZ_SECONDS and prints a table; any crash
# fails it.  "make test" runs fuzz-smoke: every target, a few seconds.
FUZZ          = $(BUILD)/fuzz
FUZZ_SECONDS ?= 600
FUZZ_RUNS    ?=
FUZZ_SMOKE   ?= 2
FUZZ_JOBS    ?= 2
FUZZ_TARGETS  = $(sort $(basename $(notdir $(filter-out \
                    fuzz/core.c fuzz/stubs.c fuzz/unreached.c, \
                    $(wildcard fuzz/*.c)))))
# without pointer-overflow: nginx's empty string is { 0, NULL }, and
# "p = s->data; last = p + s->len" on it (NULL + 0) is its idiom everywhere;
# a real overflow still ends in an access ASan catches.
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize=pointer-overflow \
                -fno-sanitize-recover=undefined
FUZZ_CFLAGS   = -g -O1 -fno-omit-frame-pointer -Wall -Werror $(FUZZ_SAN) \
                -Isrc -Ifuzz -I$(NGX_BUILD)/objs -I$(NGX_BUILD)/src/core \
                -I$(NGX_BUILD)/src/event -I$(NGX_BUILD)/src/event/modules \
                -I$(NGX_BUILD)/src/os/unix -I$(NGX_BUILD)/src/http \
                -I$(NGX_BUILD)/src/http/modules -I$(NGX_BUILD)/src/http/v2 \
                -I/usr/include/postgresql
FUZZ_LIBS     = -lpq -lcurl -ljansson -lcrypto
FUZZ_SRC_OBJS = $(patsubst src/%.c,$(FUZZ)/obj/%.o,$(wildcard src/*.c))
FUZZ_NGX_OBJS = $(FUZZ)/obj/core.o $(FUZZ)/obj/stubs.o \
                $(FUZZ)/obj/unreached.o

$(FUZZ)/obj/%.o: src/%.c $(wildcard src/*.h) $(NGX_BUILD)/objs/Makefile Makefile
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ)/obj/%.o: fuzz/%.c fuzz/fuzz.h $(NGX_BUILD)/objs/Makefile Makefile
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ)/libtiktok.a: $(FUZZ_SRC_OBJS) $(FUZZ_NGX_OBJS)
	rm -f $@
	ar rcs $@ $^

$(FUZZ)/bin/%: fuzz/%.c fuzz/fuzz.h $(FUZZ)/libtiktok.a
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ)/libtiktok.a \
	    $(FUZZ_LIBS)

fuzz-build: $(addprefix $(FUZZ)/bin/,$(FUZZ_TARGETS))

fuzz: deps
	$(MAKE) $(NGX_BUILD)/objs/Makefile
	$(MAKE) -j$(FUZZ_JOBS) fuzz-build
	FUZZ=$(FUZZ) FUZZ_JOBS=$(FUZZ_JOBS) FUZZ_RUNS=$(FUZZ_RUNS) \
	    fuzz/run $(FUZZ_SECONDS) \
	    $(FUZZ_TARGETS)

fuzz-smoke: deps
	$(MAKE) $(NGX_BUILD)/objs/Makefile
	$(MAKE) -j$(FUZZ_JOBS) fuzz-build
	FUZZ=$(FUZZ) FUZZ_JOBS=$(FUZZ_JOBS) fuzz/run $(FUZZ_SMOKE) \
	    $(FUZZ_TARGETS)

# bench/run's table (BENCH_* for shorter runs), then the soak (SOAK_*) and
# the publisher at scale (SCALE_*): about 25 minutes in all; see README
bench: deps all
	@sh scripts/deps.sh wrk curl
	bench/run
	bench/soak
	bench/scale

# The Debian package, built as Debian builds its out-of-tree nginx modules:
# debian/ with nginx-dev's debhelper sequence (dh_nginx, the nginx_mod
# buildsystem, which configures the module alone, without t/modules).  It is
# built from a copy of the work tree in build/deb, so the tree stays clean
# and the .deb, .buildinfo and .changes land in build/deb; then lintian,
# which fails the target on any error (warnings are listed in the README).
DEB_DIR = $(BUILD)/deb
DEB_SRC = $(DEB_DIR)/libnginx-mod-http-tiktok

deb:
	@sh scripts/deps.sh dpkg-dev debhelper lintian
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_SRC)
	tar -C $(CURDIR) --exclude=./.git --exclude=./build \
	    --exclude=./build-asan --exclude=./demo/run --exclude='./t/servroot*' \
	    -cf - . | tar -C $(DEB_SRC) -xf -
	cd $(DEB_SRC) && dpkg-buildpackage -us -uc -b -jauto
	rm -rf $(DEB_SRC)
	lintian --fail-on error $(DEB_DIR)/*.changes
	@ls $(DEB_DIR)/libnginx-mod-http-tiktok_*.deb

demo: deps all
	scripts/demo.sh start

demo-stop:
	scripts/demo.sh stop

clean:
	rm -rf build build-asan t/servroot
