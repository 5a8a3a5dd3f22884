#!/bin/sh
# Applies sql/*.sql in order.  Each file is idempotent, so this is safe to
# run on every deploy.  Run it as a superuser (000_roles.sql creates roles);
# psql's usual PG* environment variables or a conninfo argument pick the
# database:  scripts/migrate.sh "host=127.0.0.1 dbname=app user=postgres"
set -eu
dir=$(cd "$(dirname "$0")/../sql" && pwd)
for f in "$dir"/[0-9]*.sql; do
    psql ${1:+"$1"} -X -q -v ON_ERROR_STOP=1 -f "$f"
done
