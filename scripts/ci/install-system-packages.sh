#!/usr/bin/env bash
# System packages the app's tests need: Debian's Chromium (the headless-browser test drives
# /usr/bin/chromium through Playwright's executable_path) and PostgreSQL (the adjustments and
# audit-log tests run against a real server). Idempotent and non-interactive; needs root.
set -euo pipefail

want=(chromium chromium-driver postgresql)
missing=()
for pkg in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "system packages present: ${want[*]}"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-system-packages: missing ${missing[*]}; run as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# the Debian package starts a cluster of its own; the tests use a throwaway one instead
if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters --no-header 2>/dev/null | while read -r version name _; do
        pg_ctlcluster "$version" "$name" stop 2>/dev/null || true
    done
fi
echo "installed: ${missing[*]}"
