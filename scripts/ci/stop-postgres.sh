#!/usr/bin/env bash
# Stop the cluster started by start-postgres.sh (METERWORKS_TEST_POSTGRES_DIR) and remove it.
set -euo pipefail
dir="${1:-${METERWORKS_TEST_POSTGRES_DIR:-}}"
[ -n "$dir" ] && [ -d "$dir/data" ] || exit 0
bindir="${PG_BINDIR:-}"
if [ -z "$bindir" ]; then
    for candidate in /usr/lib/postgresql/*/bin; do
        [ -x "$candidate/pg_ctl" ] && bindir="$candidate"
    done
fi
run_as=()
[ "$(id -u)" -eq 0 ] && run_as=(runuser -u postgres --)
"${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
rm -rf "$dir"
