#!/usr/bin/env bash
# scripts/demo.sh start|stop|status — the module running for a person to
# try in a browser.
#
# `make demo` (after `make deps` and the build) runs `scripts/demo.sh start`,
# which starts, under demo/run/ in the repo:
#
#   - a PostgreSQL 15 cluster with database "tiktok", migrated with
#     scripts/migrate.sh                                 127.0.0.1:55432
#   - the TikTok sandbox (t/sandbox/tiktok_sandbox.py --demo: a consent page
#     and a creator with videos) with a CA and a localhost certificate made
#     for it                                 API https://localhost:8443
#                                            control  http://127.0.0.1:8444
#   - the demo's sign-in (demo/signin.py), which mints the app's JWT
#                                                          127.0.0.1:8445
#   - /usr/sbin/nginx with build/ngx_http_tiktok_module.so, a configuration
#     modelled on conf.example and the page in demo/www
#                                                  https://localhost:8080/
#
# nginx serves https with the sandbox CA's certificate: TikTok takes only an
# https redirect URI, and the one registered here is the demo's real
# callback, https://localhost:8080/api/tiktok/callback.
#
# Ports: DEMO_PORT, DEMO_SANDBOX_PORT, DEMO_SANDBOX_CONTROL_PORT,
# DEMO_SIGNIN_PORT, DEMO_PG_PORT.  DEMO_RUN (demo/run) is where everything
# lives.  Also: DEMO_NGINX_BINARY (/usr/sbin/nginx), DEMO_NGINX_USER
# (www-data, the workers' user when run as root), TIKTOK_PG_BIN
# (/usr/lib/postgresql/15/bin).
# `start` starts whatever is not running yet and says so when all runs;
# `stop` (make demo-stop) stops them all and may be run any number of times.
# The database and the generated secrets stay in demo/run/ between runs;
# `rm -rf demo/run` after a stop starts from nothing.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=${DEMO_RUN:-$ROOT/demo/run}

PG_BIN=${TIKTOK_PG_BIN:-/usr/lib/postgresql/15/bin}
NGINX=${DEMO_NGINX_BINARY:-/usr/sbin/nginx}
PYTHON=/usr/bin/python3
MODULE=$ROOT/build/ngx_http_tiktok_module.so
SANDBOX=$ROOT/t/sandbox/tiktok_sandbox.py
SIGNIN=$ROOT/demo/signin.py
WWW=$ROOT/demo/www

CLIENT_KEY=sbx_demo_client_key

PGDIR=$RUN/pg
PGDATA=$PGDIR/data
SBDIR=$RUN/sandbox
SIDIR=$RUN/signin
NGDIR=$RUN/nginx
PORTS_FILE=$RUN/ports
SECRETS_FILE=$RUN/secrets.env


say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }


# --- ports ----------------------------------------------------------------

# The ports of a running demo are the ones it was started with; a fresh
# start takes the environment or the defaults.
load_ports() {
    local saved=0

    if [ -f "$PORTS_FILE" ] && anything_running; then
        # shellcheck disable=SC1090
        . "$PORTS_FILE"
        saved=1
    fi

    if [ "$saved" = 0 ]; then
        NGINX_PORT=${DEMO_PORT:-8080}
        SB_PORT=${DEMO_SANDBOX_PORT:-8443}
        SB_CONTROL_PORT=${DEMO_SANDBOX_CONTROL_PORT:-8444}
        SI_PORT=${DEMO_SIGNIN_PORT:-8445}
        PG_PORT=${DEMO_PG_PORT:-55432}
    fi

    # the page's origin: the cookie, the callback and the return all use it
    ORIGIN=https://localhost:$NGINX_PORT
    REDIRECT_URI=$ORIGIN/api/tiktok/callback

    for p in "$NGINX_PORT" "$SB_PORT" "$SB_CONTROL_PORT" "$SI_PORT" \
             "$PG_PORT"
    do
        case $p in
            ''|*[!0-9]*) die "port \"$p\" is not a number" ;;
        esac
        if [ "$p" -lt 1 ] || [ "$p" -gt 65535 ]; then
            die "port $p is out of range"
        fi
    done

    if [ "$(printf '%s\n' "$NGINX_PORT" "$SB_PORT" "$SB_CONTROL_PORT" \
            "$SI_PORT" "$PG_PORT" | sort -u | wc -l)" != 5 ]
    then
        die "the five ports must differ: nginx $NGINX_PORT, sandbox" \
            "$SB_PORT and $SB_CONTROL_PORT, sign-in $SI_PORT," \
            "PostgreSQL $PG_PORT"
    fi
}

save_ports() {
    cat > "$PORTS_FILE" <<EOF
NGINX_PORT=$NGINX_PORT
SB_PORT=$SB_PORT
SB_CONTROL_PORT=$SB_CONTROL_PORT
SI_PORT=$SI_PORT
PG_PORT=$PG_PORT
EOF
}

# Fails with the name of the port's owner when anything listens on it
# (on 127.0.0.1 or on every address).
port_free() {
    local port=$1 what=$2 who=""

    if perl -MIO::Socket::INET -e '
            IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
                                  LocalPort => $ARGV[0], Proto => "tcp",
                                  ReuseAddr => 1) or exit 1' "$port"
    then
        return 0
    fi

    if command -v ss > /dev/null 2>&1; then
        who=$(ss -Hltnp "sport = :$port" 2>/dev/null \
              | sed -n 's/.*users:((\("[^"]*"\).*/\1/p' | head -1)
    fi

    die "port $port ($what) is already in use${who:+ by $who};" \
        "stop that or choose another port, e.g. $3=<port> make demo"
}

wait_port() {
    local port=$1 tries=${2:-100}

    while [ "$tries" -gt 0 ]; do
        if perl -MIO::Socket::INET -e '
                IO::Socket::INET->new(PeerAddr => "127.0.0.1",
                                      PeerPort => $ARGV[0],
                                      Proto => "tcp") or exit 1' "$port"
        then
            return 0
        fi
        sleep 0.1
        tries=$((tries - 1))
    done

    return 1
}


# --- helpers ----------------------------------------------------------------

# Runs a command as the postgres system user when we are root (initdb and
# pg_ctl refuse to run as root).
as_postgres() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# The pid in a file, when that process is alive and its command line
# contains the given text (a pid file outliving a reboot names someone else).
live_pid() {
    local file=$1 match=$2 pid

    [ -f "$file" ] || return 1
    pid=$(head -1 "$file" 2>/dev/null | tr -dc '0-9')
    [ -n "$pid" ] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$match" \
        || return 1
    echo "$pid"
}

# Sends a signal, waits for the process to go, escalates to KILL.
stop_pid() {
    local pid=$1 sig=$2

    kill "-$sig" "$pid" 2>/dev/null || return 0

    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done

    kill -TERM "$pid" 2>/dev/null || return 0
    sleep 1
    kill -KILL "$pid" 2>/dev/null || true
}

random_hex() {
    openssl rand -hex "$1"
}

# The first directory on the way to $1 that user $2 cannot enter.
blocked_dir() {
    local path=$1 user=$2 d=""
    local IFS=/

    for part in $path; do
        [ -n "$part" ] || continue
        d="$d/$part"
        if ! runuser -u "$user" -- test -x "$d" 2>/dev/null; then
            echo "$d"
            return 0
        fi
    done

    return 1
}

# PostgreSQL runs as "postgres" and nginx's workers as $WORKER_USER: both
# must be able to reach their files inside the repo.
check_access() {
    local user d

    [ "$(id -u)" = 0 ] || return 0

    for user in postgres "$WORKER_USER"; do
        if d=$(blocked_dir "$(dirname "$RUN")" "$user"); then
            die "the \"$user\" user cannot enter $d, so it cannot reach" \
                "$RUN. Allow it with \"chmod o+x $d\" or clone the repo" \
                "under a directory others can enter (e.g. /opt or /srv)."
        fi
    done
}


# --- PostgreSQL ---------------------------------------------------------------

pg_running() {
    [ -f "$PGDATA/PG_VERSION" ] || return 1
    as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" status > /dev/null 2>&1
}

pg_psql() {
    psql -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" \
         -U postgres "$@"
}

pg_start() {
    if pg_running; then
        say "PostgreSQL is already running"
        return 0
    fi

    mkdir -p "$PGDIR"
    if [ "$(id -u)" = 0 ]; then
        chown postgres:postgres "$PGDIR"
        chmod 700 "$PGDIR"
    fi

    if [ ! -f "$PGDATA/PG_VERSION" ]; then
        say "creating a PostgreSQL cluster in $PGDATA"
        as_postgres "$PG_BIN/initdb" -D "$PGDATA" -U postgres -A trust \
            -E UTF8 --locale=C --no-instructions \
            > "$PGDIR/initdb.log" 2>&1 \
            || { cat "$PGDIR/initdb.log" >&2; die "initdb failed"; }
    fi

    # TCP on the loopback only; no Unix socket, whose path would depend on
    # (and be limited by) where the repo is.
    as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" -w -t 60 \
        -l "$PGDIR/postgres.log" \
        -o "-p $PG_PORT -c listen_addresses=127.0.0.1" \
        -o "-c unix_socket_directories=''" \
        start > "$PGDIR/pg_ctl.log" 2>&1 \
        || { tail -20 "$PGDIR/postgres.log" >&2 2>/dev/null;
             die "PostgreSQL did not start (see $PGDIR/postgres.log)"; }

    if [ -z "$(pg_psql -d postgres \
               -c "SELECT 1 FROM pg_database WHERE datname = 'tiktok'")" ]
    then
        pg_psql -d postgres -c 'CREATE DATABASE tiktok' > /dev/null
    fi

    PGOPTIONS='-c client_min_messages=warning' "$ROOT/scripts/migrate.sh" \
        "host=127.0.0.1 port=$PG_PORT dbname=tiktok user=postgres" \
        || die "the migrations in sql/ failed"

    say "PostgreSQL is running on 127.0.0.1:$PG_PORT (database tiktok, migrated)"
}

pg_stop() {
    if ! pg_running; then
        say "PostgreSQL is not running"
        return 0
    fi

    as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" -w -t 60 -m fast stop \
        > /dev/null
    say "PostgreSQL stopped"
}


# --- the TikTok sandbox -------------------------------------------------------

sandbox_pid() {
    live_pid "$SBDIR/sandbox.pid" "$SANDBOX"
}

# A CA and a server certificate for localhost and 127.0.0.1 signed by it,
# made by the tests' own TikTokSandbox::make_ca (openssl).  nginx and the
# module's background calls trust only this CA when they talk to the
# sandbox.
sandbox_certs() {
    [ -s "$SBDIR/ca.pem" ] && [ -s "$SBDIR/server.pem" ] \
        && [ -s "$SBDIR/server.key" ] && return 0

    perl -I"$ROOT/t/lib" -MTikTokSandbox \
        -e 'TikTokSandbox::make_ca($ARGV[0])' "$SBDIR" \
        || die "cannot make the sandbox's certificates" \
               "(see $SBDIR/openssl.log)"
}

sandbox_start() {
    local pid

    if pid=$(sandbox_pid); then
        say "the TikTok sandbox is already running (pid $pid)"
        return 0
    fi

    mkdir -p "$SBDIR"
    sandbox_certs
    rm -f "$SBDIR/ready"

    setsid "$PYTHON" "$SANDBOX" \
        --listen 127.0.0.1 --port "$SB_PORT" \
        --control-port "$SB_CONTROL_PORT" \
        --cert "$SBDIR/server.pem" --key "$SBDIR/server.key" \
        --client-key "$CLIENT_KEY" \
        --client-secret "$TIKTOK_CLIENT_SECRET" \
        --redirect-uri "$REDIRECT_URI" --demo \
        --ready-file "$SBDIR/ready" --log "$SBDIR/sandbox.log" \
        < /dev/null >> "$SBDIR/stdout.log" 2>&1 &
    echo $! > "$SBDIR/sandbox.pid"

    for _ in $(seq 150); do
        [ -e "$SBDIR/ready" ] && break
        kill -0 "$(cat "$SBDIR/sandbox.pid")" 2>/dev/null || break
        sleep 0.1
    done

    if [ ! -e "$SBDIR/ready" ] || ! sandbox_pid > /dev/null; then
        tail -20 "$SBDIR/stdout.log" >&2 2>/dev/null || true
        die "the TikTok sandbox did not start (see $SBDIR/stdout.log)"
    fi

    wait_port "$SB_CONTROL_PORT" 50 \
        || die "the sandbox does not listen on $SB_CONTROL_PORT"

    say "the TikTok sandbox is running: API https://localhost:$SB_PORT," \
        "control http://127.0.0.1:$SB_CONTROL_PORT"
}

sandbox_stop() {
    local pid

    if ! pid=$(sandbox_pid); then
        say "the TikTok sandbox is not running"
        rm -f "$SBDIR/sandbox.pid"
        return 0
    fi

    stop_pid "$pid" TERM
    rm -f "$SBDIR/sandbox.pid" "$SBDIR/ready"
    say "the TikTok sandbox stopped"
}


# --- the demo's sign-in -------------------------------------------------------

signin_pid() {
    live_pid "$SIDIR/signin.pid" "$SIGNIN"
}

signin_start() {
    local pid

    if pid=$(signin_pid); then
        say "the sign-in is already running (pid $pid)"
        return 0
    fi

    mkdir -p "$SIDIR"
    rm -f "$SIDIR/signin.pid"

    setsid "$PYTHON" "$SIGNIN" \
        "$SI_PORT" "$SIDIR/signin.pid" \
        < /dev/null >> "$SIDIR/signin.log" 2>&1 &

    wait_port "$SI_PORT" 50 && signin_pid > /dev/null \
        || { tail -20 "$SIDIR/signin.log" >&2 2>/dev/null;
             die "the sign-in did not start (see $SIDIR/signin.log)"; }

    say "the sign-in is running on 127.0.0.1:$SI_PORT"
}

signin_stop() {
    local pid

    if ! pid=$(signin_pid); then
        say "the sign-in is not running"
        rm -f "$SIDIR/signin.pid"
        return 0
    fi

    stop_pid "$pid" TERM
    rm -f "$SIDIR/signin.pid"
    say "the sign-in stopped"
}


# --- nginx ----------------------------------------------------------------------

nginx_pid() {
    live_pid "$NGDIR/logs/nginx.pid" "$NGDIR/"
}

nginx_conf() {
    local user_line=""

    if [ "$(id -u)" = 0 ]; then
        user_line="user $WORKER_USER;"
    fi

    cat > "$NGDIR/conf/nginx.conf" <<EOF
# Generated by scripts/demo.sh on every start: edit the script, not this.
# The production template is conf.example in the repo.

load_module $MODULE;

env TIKTOK_CLIENT_SECRET;
env TIKTOK_TOKEN_KEY;
env TIKTOK_TOKEN_KEY_PREVIOUS;

$user_line
worker_processes 2;
error_log logs/error.log info;
pid logs/nginx.pid;

events {
    worker_connections 1024;
}

http {
    types {
        text/html               html;
        text/css                css;
        application/javascript  js;
    }
    default_type application/octet-stream;

    log_format tiktok '\$remote_addr [\$time_local] "\$request" \$status '
                      '\$body_bytes_sent rid=\$sent_http_x_request_id '
                      'cache=\$tiktok_cache_status '
                      'tiktok_ms=\$tiktok_upstream_ms rt=\$request_time';
    access_log logs/access.log tiktok;

    client_body_temp_path temp/client_body;
    proxy_temp_path       temp/proxy;
    fastcgi_temp_path     temp/fastcgi;
    uwsgi_temp_path       temp/uwsgi;
    scgi_temp_path        temp/scgi;

    # The TikTok integration, talking to the sandbox instead of TikTok.
    tiktok_client_key         $CLIENT_KEY;
    tiktok_client_secret_env  TIKTOK_CLIENT_SECRET;
    tiktok_token_key_env      TIKTOK_TOKEN_KEY TIKTOK_TOKEN_KEY_PREVIOUS;
    tiktok_redirect_uri       $REDIRECT_URI;
    tiktok_app_return_url     $ORIGIN/;
    tiktok_scopes             user.info.basic,video.list,video.publish;
    tiktok_postgres           "host=127.0.0.1 port=$PG_PORT dbname=tiktok user=tiktok_app"
                              pool=8 timeout=10s;
    tiktok_cache_zone         tiktok_cache:10m ttl=1h;
    tiktok_api_location       /_tiktok_api;
    tiktok_api_max_response   1m;
    tiktok_api_base_url       https://localhost:$SB_PORT;
    tiktok_authorize_url      https://localhost:$SB_PORT/v2/auth/authorize/;
    tiktok_ca_certificate     $SBDIR/ca.pem;
    tiktok_scheduler          on interval=2s batch=20;
    tiktok_title_max_chars    150;
    tiktok_upload_spool       $NGDIR/spool;
    tiktok_pull_url_prefixes  https://media.example.com/;
    tiktok_pkce               on;

    upstream tiktok_sandbox {
        server 127.0.0.1:$SB_PORT;
        keepalive 16;
    }

    upstream demo_signin {
        server 127.0.0.1:$SI_PORT;
    }

    server {
        # https: TikTok redirects only to https, and this server is where
        # it redirects to (the sandbox CA's certificate for localhost)
        listen 127.0.0.1:$NGINX_PORT ssl;
        server_name localhost;
        ssl_certificate     $SBDIR/server.pem;
        ssl_certificate_key $SBDIR/server.key;

        # request-time calls to "TikTok" (the sandbox); internal only
        location /_tiktok_api/ {
            internal;
            proxy_pass https://tiktok_sandbox/;
            proxy_http_version 1.1;
            proxy_set_header Host localhost;
            proxy_set_header Connection "";
            proxy_ssl_server_name on;
            proxy_ssl_name localhost;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate $SBDIR/ca.pem;
            proxy_connect_timeout 5s;
            proxy_read_timeout 30s;
        }

        # the API; the caller is the "sub" of the app's JWT, which the
        # browser sends in the demo_session cookie, to /callback too (the
        # secret is the one demo/signin.py signs with)
        location /api/tiktok/ {
            tiktok_jwt     secret_env=DEMO_JWT_SECRET audience=authenticated
                           cookie=demo_session;
            tiktok_user_id \$tiktok_jwt_sub;
            tiktok_api;
        }

        # the demo's sign-in (demo/signin.py): mints that JWT
        location /demo/ {
            proxy_pass http://demo_signin;
        }

        # the page (a copy of demo/www: the workers may not be able to
        # enter the repository, only $RUN)
        location / {
            root $NGDIR/www;
            index index.html;
            add_header Cache-Control no-cache;
        }
    }
}
EOF
}

nginx_start() {
    local pid out

    if pid=$(nginx_pid); then
        say "nginx is already running (pid $pid)"
        return 0
    fi

    mkdir -p "$NGDIR/conf" "$NGDIR/logs" "$NGDIR/temp" "$NGDIR/spool"
    if [ "$(id -u)" = 0 ]; then
        chown "$WORKER_USER" "$NGDIR/spool"
    fi
    chmod 700 "$NGDIR/spool"

    rm -rf "$NGDIR/www"
    cp -R "$WWW" "$NGDIR/www"
    chmod -R a+rX "$NGDIR/www"

    nginx_conf

    if ! out=$("$NGINX" -t -q -p "$NGDIR/" -c conf/nginx.conf 2>&1); then
        printf '%s\n' "$out" >&2
        die "nginx -t failed for $NGDIR/conf/nginx.conf"
    fi

    if ! out=$("$NGINX" -p "$NGDIR/" -c conf/nginx.conf 2>&1); then
        printf '%s\n' "$out" >&2
        die "nginx did not start (see $NGDIR/logs/error.log)"
    fi

    wait_port "$NGINX_PORT" 50 \
        || die "nginx does not listen on $NGINX_PORT (see $NGDIR/logs/error.log)"

    say "nginx is running on $ORIGIN/" \
        "(pid $(nginx_pid || echo '?'))"
}

nginx_stop() {
    local pid

    if ! pid=$(nginx_pid); then
        say "nginx is not running"
        return 0
    fi

    # "nginx -s quit" would parse the configuration, which needs the
    # secrets in the environment; the pid file is enough.
    stop_pid "$pid" QUIT
    say "nginx stopped"
}


# --- secrets ------------------------------------------------------------------

# Random per demo directory, kept so that tokens stored in the database
# still decrypt after a restart.  Never printed.
load_secrets() {
    if [ ! -s "$SECRETS_FILE" ]; then
        (
            umask 077
            printf 'TIKTOK_CLIENT_SECRET=%s\nTIKTOK_TOKEN_KEY=%s\n' \
                "$(random_hex 16)" "$(random_hex 32)" > "$SECRETS_FILE"
        )
    fi
    if ! grep -q '^DEMO_JWT_SECRET=' "$SECRETS_FILE"; then
        printf 'DEMO_JWT_SECRET=%s\n' "$(random_hex 32)" >> "$SECRETS_FILE"
    fi

    # shellcheck disable=SC1090
    . "$SECRETS_FILE"
    export TIKTOK_CLIENT_SECRET TIKTOK_TOKEN_KEY DEMO_JWT_SECRET
    unset TIKTOK_TOKEN_KEY_PREVIOUS
}


# --- commands -----------------------------------------------------------------

anything_running() {
    pg_running || sandbox_pid > /dev/null || signin_pid > /dev/null \
        || nginx_pid > /dev/null
}

everything_running() {
    pg_running && sandbox_pid > /dev/null && signin_pid > /dev/null \
        && nginx_pid > /dev/null
}

summary() {
    cat <<EOF

The demo runs (state, logs and generated config in $RUN):

  the page         $ORIGIN/
                   (https with the demo's own CA: let the browser proceed,
                   or trust $SBDIR/ca.pem)
  nginx + module   config  $NGDIR/conf/nginx.conf
                   logs    $NGDIR/logs/error.log, access.log
  TikTok sandbox   API      https://localhost:$SB_PORT  (consent page, CDN)
                   control  http://127.0.0.1:$SB_CONTROL_PORT
                            (GET /users, /calls, /posts; POST /faults)
                   log      $SBDIR/sandbox.log
  sign-in          127.0.0.1:$SI_PORT (behind $ORIGIN/demo/)
  PostgreSQL 15    127.0.0.1:$PG_PORT, database tiktok
                   psql -h 127.0.0.1 -p $PG_PORT -U postgres tiktok
                   (trust authentication on the loopback: a demo only)

Open $ORIGIN/ and sign in with any name; then Settings ->
Integrations -> Connect TikTok, Analytics, Export to TikTok.

Stop everything with:  make demo-stop      (state: scripts/demo.sh status)
EOF
}

# One real request through nginx and the module: no identity, so 401.
smoke() {
    local out

    out=$(perl -MHTTP::Tiny -MIO::Socket::SSL -e '
        my $r = HTTP::Tiny->new(timeout => 10, verify_SSL => 1,
                                SSL_options => { SSL_ca_file => $ARGV[1] })
                    ->get($ARGV[0]);
        print "$r->{status} $r->{content}";' \
        "$ORIGIN/api/tiktok/status" "$SBDIR/ca.pem" 2>&1) || true

    say "GET /api/tiktok/status, not signed in -> $out"
}

cmd_start() {
    load_ports

    if everything_running; then
        say "already running"
        summary
        return 0
    fi

    WORKER_USER=${DEMO_NGINX_USER:-www-data}
    if [ "$(id -u)" = 0 ] && ! id "$WORKER_USER" > /dev/null 2>&1; then
        WORKER_USER=nobody
    fi


    # everything is checked before anything starts
    [ -x "$PG_BIN/initdb" ] \
        || die "$PG_BIN/initdb not found: run make deps (postgresql-15)"
    command -v psql > /dev/null || die "psql not found: run make deps"
    [ -x "$PYTHON" ] || die "$PYTHON not found: run make deps"
    [ -f "$SANDBOX" ] || die "$SANDBOX is missing"
    [ -x "$NGINX" ] || die "$NGINX not found: run make deps (nginx-core)"
    [ -f "$MODULE" ] || die "$MODULE is missing: run make"
    [ -f "$WWW/index.html" ] || die "$WWW/index.html is missing"
    [ -f "$SIGNIN" ] || die "$SIGNIN is missing"

    pg_running \
        || port_free "$PG_PORT" PostgreSQL DEMO_PG_PORT
    if ! sandbox_pid > /dev/null; then
        port_free "$SB_PORT" "sandbox API" DEMO_SANDBOX_PORT
        port_free "$SB_CONTROL_PORT" "sandbox control" \
            DEMO_SANDBOX_CONTROL_PORT
    fi
    signin_pid > /dev/null \
        || port_free "$SI_PORT" sign-in DEMO_SIGNIN_PORT
    nginx_pid > /dev/null \
        || port_free "$NGINX_PORT" nginx DEMO_PORT

    mkdir -p "$RUN"
    chmod 755 "$RUN"
    check_access
    load_secrets
    save_ports

    trap 'rc=$?; [ "$rc" = 0 ] || say "start failed: scripts/demo.sh status" \
              "shows what runs, make demo-stop stops it"; exit "$rc"' EXIT

    pg_start
    sandbox_start
    signin_start
    nginx_start

    smoke
    summary
}

cmd_stop() {
    # the order matters: nginx's workers hold connections to both others
    load_ports
    nginx_stop
    signin_stop
    sandbox_stop
    pg_stop
}

cmd_status() {
    local pid rc=0

    load_ports

    if pid=$(nginx_pid); then
        say "nginx: running (pid $pid) on $ORIGIN/"
    else
        say "nginx: stopped"; rc=3
    fi

    if pid=$(sandbox_pid); then
        say "sandbox: running (pid $pid), API https://localhost:$SB_PORT," \
            "control http://127.0.0.1:$SB_CONTROL_PORT"
    else
        say "sandbox: stopped"; rc=3
    fi

    if pid=$(signin_pid); then
        say "sign-in: running (pid $pid) on 127.0.0.1:$SI_PORT"
    else
        say "sign-in: stopped"; rc=3
    fi

    if pg_running; then
        say "PostgreSQL: running on 127.0.0.1:$PG_PORT"
    else
        say "PostgreSQL: stopped"; rc=3
    fi

    return $rc
}


case ${1:-} in
    start)   cmd_start ;;
    stop)    cmd_stop ;;
    status)  cmd_status ;;
    *)       echo "usage: $0 start|stop|status" >&2
             exit 2 ;;
esac
