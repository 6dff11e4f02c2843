#!/usr/bin/env bash
# Producer latency with and without a concurrent catch-up consumer: a paced
# librdkafka producer (MSGS_PER_S, 1 KiB, acks=1, 8 partitions, open loop)
# alone, then while a raw consumer reads GIB GiB from offset 0 again and
# again (page cache dropped first, so the first pass comes from disk).
# Alternates the two, RUNS times each; prints the producer's p50/p99/p99.9.
#
# WEIR_ARGS: extra broker flags, e.g. "--catch-up-fetch-bytes-per-s-max 67108864"
# to pace catch-up reads while producers are active.
#
# DURATION_S (default 10): seconds each producer run lasts. A run's p99 is
# its worst ~1% of time, so one stall of the (shared) machine sets it; longer
# runs make single stalls count less.
#
# KEEP_LOG=path keeps the broker's log (per-API and per-stage latency
# histograms at shutdown).
#
# READER_NICE (default 0) runs the consumer at that nice level: on a machine
# where broker and clients share the cores, 19 separates what the broker does
# to the producer from the consumer process taking CPU time from both.
#
#   scripts/bench_producer_with_catch_up.sh [GIB=1] [RUNS=3] [MSGS_PER_S=10000] [PORT=19093]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_lib.sh
GIB=${1:-1}
RUNS=${2:-3}
RATE=${3:-10000}
PORT=${4:-19093}
DATA=$(mktemp -d /work/weir-bench-p99.XXXXXX 2>/dev/null || mktemp -d)
READER=""
finish() {
    kill $READER 2>/dev/null || true
    kill $BROKER 2>/dev/null && wait $BROKER 2>/dev/null || true
    if [ -n "${KEEP_LOG:-}" ]; then cp "$DATA/broker.log" "$KEEP_LOG"; fi
    rm -rf "$DATA"
}
trap finish EXIT
cargo build --release --bin weir --example raw_fetch_baseline --example rdkafka_produce_baseline 2>/dev/null
BIN=target/release
$BIN/weir --listen 127.0.0.1:$PORT --data-dir "$DATA" --cores 2 ${WEIR_ARGS:-} 2>"$DATA/broker.log" &
BROKER=$!
wait_for_port $PORT
$BIN/examples/rdkafka_produce_baseline 127.0.0.1:$PORT backlog $((GIB * 1024 * 1024)) 1024 1 8 >/dev/null
produce() { # prints the latency part of the producer's summary
    $BIN/examples/rdkafka_produce_baseline 127.0.0.1:$PORT live $((RATE * ${DURATION_S:-10})) 1024 1 8 "$RATE" | \
        grep -o "throughput_mb_per_s=[0-9.]*\|errors=[0-9]*\|p50=[0-9]*\|p99=[0-9]*\|p999=[0-9]*\|max=[0-9]*" | \
        tr '\n' ' '
}
for run in $(seq "$RUNS"); do
    echo "run=$run consumer=none $(produce)"
    drop_page_cache "$DATA"
    : >"$DATA/reader.log"
    READER_STARTED=$(date +%s.%N)
    ( while true; do nice -n "${READER_NICE:-0}" $BIN/examples/raw_fetch_baseline 127.0.0.1:$PORT backlog 8 >>"$DATA/reader.log"; done ) &
    READER=$!
    sleep 1
    echo "run=$run consumer=catch-up $(produce)"
    kill $READER; wait $READER 2>/dev/null || true; READER=""
    pkill -f "raw_fetch_baseline 127.0.0.1:$PORT" 2>/dev/null || true
    echo "reader: $(grep -c '^bytes=' "$DATA/reader.log") whole passes, $(awk -v started="$READER_STARTED" -v now="$(date +%s.%N)" '
        /^progress bytes=/ { sub("progress bytes=", ""); current = $1 }
        /^bytes=/ { split($1, kv, "="); total += kv[2]; current = 0 }
        END { printf "throughput_mb_per_s=%.1f", (total + current) / 1e6 / (now - started) }' "$DATA/reader.log")"
done
