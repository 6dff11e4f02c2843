#!/usr/bin/env bash
# Installs kcat (the Kafka command-line client on librdkafka, from Debian's
# packages) for tests/clients_kcat.rs. Idempotent: nothing to do once
# `kcat` is on the PATH.
# Run from anywhere: tests/kcat/install.sh
set -euo pipefail

if command -v kcat >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null
else
    echo "kcat is needed: install it with your package manager (Debian/Ubuntu: apt-get install kcat)" >&2
    exit 1
fi
command -v kcat >/dev/null
