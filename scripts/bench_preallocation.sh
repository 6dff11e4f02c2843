#!/usr/bin/env bash
# Segments zeroed ahead of the appends (segment_preallocate_bytes, issue 15)
# against appends that extend the file: weir with the default (16 MiB) and
# with 0, through scripts/bench_ab.sh (its environment applies: ROUNDS,
# DURATION_S, SCENARIOS, CORES, BROKER_CPUS, CLIENT_CPUS).
# Usage: scripts/bench_preallocation.sh [OUT]  (default target/bench-preallocation)
# The broker alone on a core, as scripts/bench_vs_kafka.sh runs it:
#   BROKER_CPUS=1 CLIENT_CPUS=0 CORES=1 scripts/bench_preallocation.sh
set -euo pipefail
cd "$(dirname "$0")/.."
A_NAME=zeroed A_ARGS="--segment-preallocate-bytes 16777216" \
    B_NAME=extending B_ARGS="--segment-preallocate-bytes 0" \
    exec scripts/bench_ab.sh "${1:-target/bench-preallocation}"
