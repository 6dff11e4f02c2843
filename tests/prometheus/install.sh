#!/usr/bin/env bash
# Installs Prometheus and promtool (Debian's prometheus package) for
# tests/admin_prometheus.rs: promtool lints weir's /metrics and a real
# Prometheus scrapes a test broker. Idempotent: nothing to do once both are
# on the PATH. The package's service is not started here (tests run their
# own Prometheus on a free port).
# Run from anywhere: tests/prometheus/install.sh
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    # policy-rc.d 101: the package's postinst must not start its service.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d.weir
    chmod +x /usr/sbin/policy-rc.d.weir
    had_policy=0
    [ -e /usr/sbin/policy-rc.d ] && had_policy=1
    [ "$had_policy" = 0 ] && cp /usr/sbin/policy-rc.d.weir /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    [ "$had_policy" = 0 ] && rm -f /usr/sbin/policy-rc.d
    rm -f /usr/sbin/policy-rc.d.weir
else
    echo "prometheus and promtool are needed: install them with your package manager (Debian/Ubuntu: apt-get install prometheus)" >&2
    exit 1
fi
command -v prometheus >/dev/null && command -v promtool >/dev/null
