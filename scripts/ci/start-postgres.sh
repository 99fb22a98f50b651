#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the tests and print the URL to use.
#
#   eval "$(scripts/ci/start-postgres.sh)"     # exports METERWORKS_TEST_POSTGRES_URL and
#                                              # METERWORKS_TEST_POSTGRES_DIR
#   scripts/ci/stop-postgres.sh                # stops it and removes its directory
#
# The cluster lives in a new temp directory, listens on a free loopback port only, and runs as
# an unprivileged user (the `postgres` system user when started as root). Nothing but the
# `export` lines goes to stdout; progress goes to stderr.
set -euo pipefail

bindir="${PG_BINDIR:-}"
if [ -z "$bindir" ]; then
    for candidate in /usr/lib/postgresql/*/bin; do
        [ -x "$candidate/initdb" ] && bindir="$candidate"
    done
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    echo "start-postgres: no PostgreSQL server binaries (run scripts/ci/install-system-packages.sh)" >&2
    exit 1
fi

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
dir="$(mktemp -d -t meterworks-pg.XXXXXX)"
run_as=()
if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$dir"
    run_as=(runuser -u postgres --)
fi
"${run_as[@]}" "$bindir/initdb" -D "$dir/data" -U meterworks --auth=trust --encoding=UTF8 \
    --no-locale >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
"${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >&2
"${run_as[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U meterworks meterworks_test >&2
echo "start-postgres: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($dir)" >&2
echo "export METERWORKS_TEST_POSTGRES_URL=postgresql+psycopg://meterworks@127.0.0.1:$port/meterworks_test"
echo "export METERWORKS_TEST_POSTGRES_DIR=$dir"
