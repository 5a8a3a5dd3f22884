#!/usr/bin/env bash
# scripts/test-browser.sh — make test-browser: the demo page's flows in
# Debian's Chromium (t/browser/demo-flows.js, playwright-core from npm).
#
# Starts its own demo (scripts/demo.sh with DEMO_RUN in a fresh directory
# under $TMPDIR, which PostgreSQL's and nginx's users can enter wherever the
# repository is; free loopback ports), runs the flows, stops the demo
# whatever happened and removes its directory.  Screenshots land in
# build/browser/NN-*.png, the demo's logs in build/browser/logs/.  Needs the
# module built (make) and /usr/bin/chromium (make deps).

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${BROWSER_OUT:-$ROOT/build/browser}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

say() { printf 'test-browser: %s\n' "$*"; }

[ -x "$CHROMIUM" ] || { say "$CHROMIUM is missing: make deps"; exit 1; }
command -v node > /dev/null || { say "node is missing"; exit 1; }

# playwright-core exactly as the lockfile says; it downloads no browser
if [ ! -f "$ROOT/t/browser/node_modules/.package-lock.json" ] \
   || ! cmp -s "$ROOT/t/browser/package-lock.json" \
               "$ROOT/t/browser/node_modules/.lock-copy"
then
    (cd "$ROOT/t/browser" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$ROOT/t/browser/package-lock.json" \
       "$ROOT/t/browser/node_modules/.lock-copy"
fi

# five free loopback ports, chosen by the kernel
read -r DEMO_PORT DEMO_SANDBOX_PORT DEMO_SANDBOX_CONTROL_PORT \
        DEMO_SIGNIN_PORT DEMO_PG_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')
export DEMO_PORT DEMO_SANDBOX_PORT DEMO_SANDBOX_CONTROL_PORT \
       DEMO_SIGNIN_PORT DEMO_PG_PORT

rm -rf "$OUT"
mkdir -p "$OUT/logs"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tiktok-browser-XXXXXX")
chmod 755 "$TMP"
export DEMO_RUN=$TMP/run

finish() {
    "$ROOT/scripts/demo.sh" stop >> "$OUT/demo.log" 2>&1 || true
    cp "$DEMO_RUN/nginx/logs/"*.log "$DEMO_RUN/sandbox/sandbox.log" \
       "$DEMO_RUN/signin/signin.log" "$OUT/logs/" 2> /dev/null || true
    rm -rf "$TMP"
}
trap finish EXIT

if ! "$ROOT/scripts/demo.sh" start > "$OUT/demo.log" 2>&1; then
    cat "$OUT/demo.log" >&2
    say "the demo did not start"
    exit 1
fi

DEMO_ORIGIN=https://localhost:$DEMO_PORT \
DEMO_CONTROL=http://127.0.0.1:$DEMO_SANDBOX_CONTROL_PORT \
SHOTS=$OUT CHROMIUM=$CHROMIUM NODE_PATH=$ROOT/t/browser/node_modules \
    node "$ROOT/t/browser/demo-flows.js"
