#!/usr/bin/env bash
# scripts/demo.sh start|stop|status|connect [user-id] — the module running
# for a person to try.
#
# `make demo` (after `make deps` and the build) runs `scripts/demo.sh start`,
# which starts, under demo/run/ in the repo:
#
#   - a PostgreSQL 15 cluster with database "tiktok", migrated with
#     scripts/migrate.sh                                 127.0.0.1:55432
#   - the TikTok sandbox (t/sandbox/tiktok_sandbox.py) with a CA and a
#     localhost certificate made for it      API https://localhost:8443
#                                            control  http://127.0.0.1:8444
#   - /usr/sbin/nginx with build/ngx_http_tiktok_module.so and a
#     configuration modelled on conf.example               127.0.0.1:8080
#
# Ports: DEMO_PORT, DEMO_SANDBOX_PORT, DEMO_SANDBOX_CONTROL_PORT, DEMO_PG_PORT.
# Also: DEMO_NGINX_BINARY (/usr/sbin/nginx), DEMO_NGINX_USER (www-data, the
# workers' user when run as root), TIKTOK_PG_BIN (/usr/lib/postgresql/15/bin).
# `start` starts whatever is not running yet and says so when all runs;
# `stop` (make demo-stop) stops all three and may be run any number of times.
# `connect` walks a user through OAuth with the sandbox's consenting user.
# The database and the generated secrets stay in demo/run/ between runs;
# `rm -rf demo/run` after a stop starts from nothing.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=$ROOT/demo/run

PG_BIN=${TIKTOK_PG_BIN:-/usr/lib/postgresql/15/bin}
NGINX=${DEMO_NGINX_BINARY:-/usr/sbin/nginx}
PYTHON=/usr/bin/python3
MODULE=$ROOT/build/ngx_http_tiktok_module.so
SANDBOX=$ROOT/t/sandbox/tiktok_sandbox.py

CLIENT_KEY=sbx_demo_client_key
USER_ID=demo-user

# TikTok insists on an https redirect URI, and a browser cannot add the
# demo's X-User-ID header when it follows a redirect, so this one is only a
# name the module and the sandbox agree on: `scripts/demo.sh connect` takes
# the sandbox's redirect to it and replays its query string on the demo's
# own /api/tiktok/callback.
REDIRECT_URI=https://demo.invalid/api/tiktok/callback

PGDIR=$RUN/pg
PGDATA=$PGDIR/data
SBDIR=$RUN/sandbox
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
        PG_PORT=${DEMO_PG_PORT:-55432}
    fi

    for p in "$NGINX_PORT" "$SB_PORT" "$SB_CONTROL_PORT" "$PG_PORT"; do
        case $p in
            ''|*[!0-9]*) die "port \"$p\" is not a number" ;;
        esac
        if [ "$p" -lt 1 ] || [ "$p" -gt 65535 ]; then
            die "port $p is out of range"
        fi
    done

    if [ "$(printf '%s\n' "$NGINX_PORT" "$SB_PORT" "$SB_CONTROL_PORT" \
            "$PG_PORT" | sort -u | wc -l)" != 4 ]
    then
        die "the four ports must differ: nginx $NGINX_PORT, sandbox" \
            "$SB_PORT and $SB_CONTROL_PORT, PostgreSQL $PG_PORT"
    fi
}

save_ports() {
    cat > "$PORTS_FILE" <<EOF
NGINX_PORT=$NGINX_PORT
SB_PORT=$SB_PORT
SB_CONTROL_PORT=$SB_CONTROL_PORT
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
        if d=$(blocked_dir "$ROOT/demo" "$user"); then
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
        --redirect-uri "$REDIRECT_URI" \
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
        text/html  html;
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
    tiktok_app_return_url     http://127.0.0.1:$NGINX_PORT/;
    tiktok_scopes             user.info.basic,video.list,video.publish;
    tiktok_postgres           "host=127.0.0.1 port=$PG_PORT dbname=tiktok user=tiktok_app"
                              pool=8 timeout=10s;
    tiktok_cache_zone         tiktok_cache:10m ttl=1h;
    tiktok_api_location       /_tiktok_api;
    tiktok_api_max_response   1m;
    tiktok_api_base_url       https://localhost:$SB_PORT;
    tiktok_authorize_url      https://localhost:$SB_PORT/v2/auth/authorize/;
    tiktok_ca_certificate     $SBDIR/ca.pem;
    tiktok_scheduler          on interval=5s batch=20;
    tiktok_title_max_chars    150;
    tiktok_upload_spool       $NGDIR/spool;
    tiktok_pull_url_prefixes  https://media.example.com/;
    tiktok_pkce               on;

    upstream tiktok_sandbox {
        server 127.0.0.1:$SB_PORT;
        keepalive 16;
    }

    server {
        listen 127.0.0.1:$NGINX_PORT;
        server_name localhost;

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

        # the API; in the demo the caller names itself in X-User-ID (in
        # production the app's auth layer sets the user id)
        location /api/tiktok/ {
            tiktok_user_id \$http_x_user_id;
            tiktok_api;
        }

        # the demo page
        location = / {
            root $ROOT/demo;
            try_files /index.html =404;
            default_type text/html;
            add_header Cache-Control no-cache;
        }

        location / {
            return 404;
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

    say "nginx is running on http://127.0.0.1:$NGINX_PORT/" \
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

    # shellcheck disable=SC1090
    . "$SECRETS_FILE"
    export TIKTOK_CLIENT_SECRET TIKTOK_TOKEN_KEY
    unset TIKTOK_TOKEN_KEY_PREVIOUS
}


# --- commands -----------------------------------------------------------------

anything_running() {
    pg_running || sandbox_pid > /dev/null || nginx_pid > /dev/null
}

everything_running() {
    pg_running && sandbox_pid > /dev/null && nginx_pid > /dev/null
}

summary() {
    cat <<EOF

The demo runs (state, logs and generated config in $RUN):

  nginx + module   http://127.0.0.1:$NGINX_PORT/   (demo page)
                   http://127.0.0.1:$NGINX_PORT/api/tiktok/...
                   config  $NGDIR/conf/nginx.conf
                   logs    $NGDIR/logs/error.log, access.log
  TikTok sandbox   API      https://localhost:$SB_PORT  (CA: $SBDIR/ca.pem)
                   control  http://127.0.0.1:$SB_CONTROL_PORT
                            (POST /users, /authorize, /tokens, /faults; GET /calls)
                   log      $SBDIR/sandbox.log
  PostgreSQL 15    127.0.0.1:$PG_PORT, database tiktok
                   psql -h 127.0.0.1 -p $PG_PORT -U postgres tiktok
                   (trust authentication on the loopback: a demo only)

Try it:

  curl -H 'X-User-ID: $USER_ID' http://127.0.0.1:$NGINX_PORT/api/tiktok/status
  curl -i -H 'X-User-ID: $USER_ID' http://127.0.0.1:$NGINX_PORT/api/tiktok/connect
  curl -i -H 'X-User-ID: $USER_ID' http://127.0.0.1:$NGINX_PORT/api/tiktok/videos
  curl -i -X POST -H 'X-User-ID: $USER_ID' http://127.0.0.1:$NGINX_PORT/api/tiktok/disconnect
  curl -i http://127.0.0.1:$NGINX_PORT/api/tiktok/status          (no user: 401)
  curl -s http://127.0.0.1:$SB_CONTROL_PORT/calls                   (what the sandbox saw)

Connect $USER_ID (or any user id) to the sandbox's TikTok user, the way a
browser would go through TikTok's consent page:

  scripts/demo.sh connect $USER_ID

Posts are published to the sandbox in the background; follow them with GET /api/tiktok/posts.

Stop everything with:  make demo-stop      (state: scripts/demo.sh status)
EOF
}

# One real request through nginx, the module and PostgreSQL.
smoke() {
    local out

    out=$(perl -MHTTP::Tiny -e '
        my $r = HTTP::Tiny->new(timeout => 10)->get($ARGV[0],
                    { headers => { "X-User-ID" => $ARGV[1] } });
        print "$r->{status} $r->{content}";' \
        "http://127.0.0.1:$NGINX_PORT/api/tiktok/status" "$USER_ID" 2>&1) \
        || true

    say "GET /api/tiktok/status as $USER_ID -> $out"
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
    [ -f "$ROOT/demo/index.html" ] || die "$ROOT/demo/index.html is missing"

    pg_running \
        || port_free "$PG_PORT" PostgreSQL DEMO_PG_PORT
    if ! sandbox_pid > /dev/null; then
        port_free "$SB_PORT" "sandbox API" DEMO_SANDBOX_PORT
        port_free "$SB_CONTROL_PORT" "sandbox control" \
            DEMO_SANDBOX_CONTROL_PORT
    fi
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
    nginx_start

    smoke
    summary
}

cmd_stop() {
    # the order matters: nginx's workers hold connections to both others
    load_ports
    nginx_stop
    sandbox_stop
    pg_stop
}

# The OAuth flow a browser would go through, with the sandbox's scripted
# user consenting: connect -> TikTok's (the sandbox's) authorize page ->
# the redirect back, replayed on /api/tiktok/callback -> status.  Codes and
# tokens are not printed.
cmd_connect() {
    local user=${1:-$USER_ID}

    load_ports

    if ! nginx_pid > /dev/null || ! sandbox_pid > /dev/null; then
        die "the demo is not running: make demo"
    fi

    perl -MHTTP::Tiny -MIO::Socket::SSL -e '
        my ($port, $user, $ca, $redirect) = @ARGV;
        my $api = "http://127.0.0.1:$port/api/tiktok";
        my $ua = HTTP::Tiny->new(max_redirect => 0, timeout => 30);
        my $tls = HTTP::Tiny->new(max_redirect => 0, timeout => 30,
                                  verify_SSL => 1,
                                  SSL_options => { SSL_ca_file => $ca });
        my %as = (headers => { "X-User-ID" => $user });
        my $short = sub { my $u = shift // ""; $u =~ s/\?.*/?…/; $u };

        my $r = $ua->get("$api/connect", \%as);
        print "1. GET /api/tiktok/connect as $user -> $r->{status}\n";
        if ($r->{status} != 302) {
            print "   $r->{content}\n";
            exit 1;
        }
        my $authorize = $r->{headers}{location};
        print "   to ", $short->($authorize), "\n";

        $r = $tls->get($authorize);
        my $back = $r->{headers}{location} // "";
        print "2. the sandbox consents -> $r->{status} to ",
              $short->($back), "\n";
        if (index($back, "$redirect?") != 0) {
            print "   $r->{content}\n";
            exit 1;
        }

        $r = $ua->get("$api/callback?" . substr($back, length($redirect) + 1),
                      \%as);
        print "3. GET /api/tiktok/callback?code=…&state=… -> $r->{status}",
              ($r->{headers}{location} ? " to $r->{headers}{location}" : ""),
              "\n";
        print "   $r->{content}\n" if $r->{status} != 302;

        $r = $ua->get("$api/status", \%as);
        print "4. GET /api/tiktok/status -> $r->{status} $r->{content}\n";
        exit($r->{content} =~ /"connected":true/ ? 0 : 1);
    ' "$NGINX_PORT" "$user" "$SBDIR/ca.pem" "$REDIRECT_URI"
}

cmd_status() {
    local pid rc=0

    load_ports

    if pid=$(nginx_pid); then
        say "nginx: running (pid $pid) on http://127.0.0.1:$NGINX_PORT/"
    else
        say "nginx: stopped"; rc=3
    fi

    if pid=$(sandbox_pid); then
        say "sandbox: running (pid $pid), API https://localhost:$SB_PORT," \
            "control http://127.0.0.1:$SB_CONTROL_PORT"
    else
        say "sandbox: stopped"; rc=3
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
    connect) shift; cmd_connect "$@" ;;
    *)       echo "usage: $0 start|stop|status|connect [user-id]" >&2
             exit 2 ;;
esac
