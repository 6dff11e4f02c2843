#!/usr/bin/env bash
# The whole test suite of weir, as a new user (and CI) runs it:
#   ./scripts/test.sh
# Installs what the tests need (a Python Kafka client), then runs every unit
# and integration test. Integration tests start the real `weir` binary on
# free loopback ports and drive it with real Kafka clients.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust (https://rustup.rs), then run this again" >&2
    exit 1
fi
if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq python3 python3-pip >/dev/null
    else
        echo "python3 with pip is needed (e.g. apt-get install python3-pip)" >&2
        exit 1
    fi
fi
# --break-system-packages only where pip knows it (Debian's managed Python).
pip_flags=(--quiet --disable-pip-version-check)
if python3 -m pip install --help | grep -q -- --break-system-packages; then
    pip_flags+=(--break-system-packages)
fi
python3 -m pip install "${pip_flags[@]}" -r tests/python/requirements.txt

cargo test --release --workspace "$@"
