#!/bin/sh
# Downloads another Debian release's nginx-dev package (the nginx source
# tree that modules build against) into a file, without installing it and
# without touching the machine's apt configuration: apt-get runs with its
# own sources list, lists and cache in a throwaway directory.
#
#   scripts/fetch-nginx-dev.sh SUITE OUT.deb      e.g. trixie build/x.deb
#
# The archive is the Debian mirror this machine already uses (the first
# source of its own release in /etc/apt/sources.list*), or
# $NGX_COMPAT_MIRROR.
set -eu

suite=$1
out=$2

. /etc/os-release
codename=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}

# the URI of the first entry, one-line or deb822, that carries our release
mirror=${NGX_COMPAT_MIRROR:-$(
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk -v rel="$codename" '
        /^[ \t]*deb[ \t]/ {
            i = 2
            if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
            if ($(i + 1) == rel) { print $i; exit }
            next
        }
        /^[ \t]*$/ { uris = ""; suites = ""; next }
        /^URIs:/ { uris = $2 }
        /^Suites:/ { for (j = 2; j <= NF; j++) if ($j == rel) suites = rel }
        uris != "" && suites != "" { print uris; exit }'
)}

if [ -z "$mirror" ]; then
    echo "fetch-nginx-dev: no apt source for $codename; set NGX_COMPAT_MIRROR" >&2
    exit 1
fi

keyring=/usr/share/keyrings/debian-archive-keyring.gpg

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/etc"

cat > "$tmp/etc/$suite.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite
Components: main
Signed-By: $keyring
EOF

set -- -q \
    -o Dir::Etc::sourcelist="$tmp/etc/$suite.sources" \
    -o Dir::Etc::sourceparts=- \
    -o Dir::Etc::preferences="$tmp/etc/preferences" \
    -o Dir::Etc::preferencesparts="$tmp/etc" \
    -o Dir::State::Lists="$tmp/lists" \
    -o Dir::State::status=/dev/null \
    -o Dir::Cache="$tmp/cache" \
    -o APT::Sandbox::User=root \
    -o Acquire::Languages=none

echo "fetch-nginx-dev: nginx-dev from $suite ($mirror)"
apt-get "$@" update >/dev/null
(cd "$tmp" && apt-get "$@" download nginx-dev)

mkdir -p "$(dirname "$out")"
mv "$tmp"/nginx-dev_*.deb "$out.tmp"
mv -f "$out.tmp" "$out"
