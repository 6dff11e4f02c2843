#!/usr/bin/env bash
# Installs the Node.js side of the tests through npm: kafkajs, at the exact
# version pinned in package.json and package-lock.json, into node_modules/.
# Idempotent: does nothing when node_modules/ was installed from the current
# package-lock.json already.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
    else
        echo "Node.js (14 or newer) and npm are needed (e.g. apt-get install nodejs npm)" >&2
        exit 1
    fi
fi
stamp=node_modules/.installed-from-lock
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_sum" ]; then
    exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
echo "$lock_sum" >"$stamp"
