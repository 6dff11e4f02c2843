#!/usr/bin/env bash
# Catch-up read of GIB GiB from disk: the splice path (the default) against
# O_DIRECT reads copied into the response, RUNS alternating runs each, with
# the page cache of the segments dropped before every run (POSIX_FADV_DONTNEED;
# drop_caches is not needed). Prints one line per run: MB/s, client and
# broker CPU seconds per GiB, and where the broker's bytes came from.
#
#   scripts/bench_cold_reads.sh [GIB=1] [RUNS=3] [PORT=19092]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_lib.sh
GIB=${1:-1}
RUNS=${2:-3}
PORT=${3:-19092}
DATA=$(mktemp -d /work/weir-bench-cold.XXXXXX 2>/dev/null || mktemp -d)
trap 'kill $BROKER 2>/dev/null || true; rm -rf "$DATA"' EXIT
cargo build --release --bin weir --example raw_fetch_baseline --example rdkafka_produce_baseline 2>/dev/null
BIN=target/release
start() { # $1: cold_reads_from_page_cache
    $BIN/weir --listen 127.0.0.1:$PORT --data-dir "$DATA" --cores 2 --tail-cache-bytes 0 \
        --cold-reads-from-page-cache "$1" 2>"$DATA/broker.log" &
    BROKER=$!
    wait_for_port $PORT || { echo "broker did not start"; cat "$DATA/broker.log"; exit 1; }
}
stop() { kill -TERM $BROKER; wait $BROKER || true; }
start true
MESSAGES=$((GIB * 1024 * 1024))
$BIN/examples/rdkafka_produce_baseline 127.0.0.1:$PORT cold "$MESSAGES" 1024 1 8 | tail -1
stop
for run in $(seq "$RUNS"); do
    for splice in true false; do
        start $splice
        drop_page_cache "$DATA"
        result=$($BIN/examples/raw_fetch_baseline 127.0.0.1:$PORT cold 8 $BROKER)
        stop
        sources=$(grep -o "fetch_bytes_from_[a-z_]*=[0-9]*" "$DATA/broker.log" | \
            awk -F= '{sum[$1]+=$2} END {for (k in sum) printf "%s=%d ", k, sum[k]}')
        echo "run=$run splice=$splice $result $sources"
    done
done
