#!/usr/bin/env bash
# One broker behind SO_REUSEPORT (advertise_shards = false: a request for a
# partition of the other shard crosses cores) against every shard advertised
# as a broker of its own (advertise_shards = true: clients send each
# partition's requests straight to its shard), through scripts/bench_ab.sh
# (its environment applies: ROUNDS, DURATION_S, SCENARIOS, CORES,
# BROKER_CPUS, CLIENT_CPUS). Default: 2 shards sharing both cores with the
# generator, every scenario.
# Usage: scripts/bench_advertise_shards.sh [OUT]  (default target/bench-advertise-shards)
set -euo pipefail
cd "$(dirname "$0")/.."
SCENARIOS="${SCENARIOS:-acksall-10k acksall-100k acks1-closed e2e-10k}" \
    A_NAME=reuseport A_ARGS="--advertise-shards false" \
    B_NAME=per-shard B_ARGS="--advertise-shards true" \
    exec scripts/bench_ab.sh "${1:-target/bench-advertise-shards}"
