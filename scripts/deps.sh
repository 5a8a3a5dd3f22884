#!/bin/sh
# Installs, with apt-get, whatever the build, the tests or the demo need and
# the machine lacks.  Does nothing (and needs no network) when all is there.
set -eu

PKGS="nginx-core nginx-dev libpq-dev libcurl4-openssl-dev libssl-dev
      libjansson-dev postgresql-15 python3 openssl gcc make
      libtest-base-perl libtext-diff-perl libio-socket-ssl-perl
      libhttp-daemon-perl libwww-perl libjson-pp-perl pgbouncer
      python3-prometheus-client chromium clang libclang-rt-14-dev"

[ "$#" -gt 0 ] && PKGS="$PKGS $*"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
         | grep -q 'install ok installed'
    then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages:$missing (run as root to install them)" >&2
    exit 1
fi

echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# nginx-core's maintainer script starts the packaged nginx on port 80; we
# never want that service, so a policy-rc.d keeps it (and PostgreSQL's
# default cluster, and pgbouncer's service: t/175 runs its own) from being
# started by the install.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi
apt-get install -y -qq --no-install-recommends $missing
