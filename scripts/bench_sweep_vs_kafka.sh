#!/usr/bin/env bash
# Durable produce latency against throughput, weir next to Apache Kafka
# with every append fsync'ed (log.flush.interval.messages=1, the broker-wide
# flush.messages=1): `weir-bench sweep` at each of RATES msgs/s, acks=all,
# open loop, alternating weir, Kafka, weir, Kafka, ... RUNS times per rate.
# Both acknowledge a batch only once it is on disk. Writes, in OUT,
# sweep.json, the chart sweep_latency_vs_throughput.svg (p50, p99, p99.9
# against achieved MB/s, hollow markers where a broker did not sustain the
# rate) and every run's report; prints the table.
#
#   scripts/bench_sweep_vs_kafka.sh [OUT]      (default target/bench-sweep-vs-kafka)
#
# CPUs: both brokers pinned to BROKER_CPUS (default cpu 1; weir --cores is its
# count) and the generator to CLIENT_CPUS (default cpu 0), as
# scripts/bench_vs_kafka.sh; both brokers run for the whole sweep, each idle
# while the other is measured. KAFKA_FLUSH=0 runs Kafka with its defaults
# instead (acknowledged from the page cache).
# Environment (defaults): RATES (5000,10000,25000,50000,100000,200000,300000),
# RUNS (3), DURATION_S (5), WARMUP_S (1), PARTITIONS (8), MESSAGE_BYTES (1024),
# BROKER_CPUS (1), CLIENT_CPUS (0), KAFKA_FLUSH (1), WEIR_ARGS (none),
# KAFKA_BROKER_JVM_OPTS (-Xms1g -Xmx1g), DATA_ROOT (/var/tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_lib.sh
OUT="${1:-target/bench-sweep-vs-kafka}"
RATES="${RATES:-5000,10000,25000,50000,100000,200000,300000}"
RUNS="${RUNS:-3}"
DURATION_S="${DURATION_S:-5}"
WARMUP_S="${WARMUP_S:-1}"
PARTITIONS="${PARTITIONS:-8}"
MESSAGE_BYTES="${MESSAGE_BYTES:-1024}"
BROKER_CPUS="${BROKER_CPUS-1}"
CLIENT_CPUS="${CLIENT_CPUS-0}"
KAFKA_FLUSH="${KAFKA_FLUSH:-1}"
KAFKA_BROKER_JVM_OPTS="${KAFKA_BROKER_JVM_OPTS:--Xms1g -Xmx1g}"
DATA_ROOT="${DATA_ROOT:-/var/tmp}"
BIN="${CARGO_TARGET_DIR:-target}/release"
cargo build --release -p weir -p weir-bench >&2
scripts/kafka-reference.sh classpath >/dev/null
mkdir -p "$OUT"
WEIR_DATA=$(mktemp -d "$DATA_ROOT/sweep-weir-XXXXXX")
KAFKA_DATA=$(mktemp -d "$DATA_ROOT/sweep-kafka-XXXXXX")
WEIR_PID=""
cleanup() {
    [ -n "$WEIR_PID" ] && kill "$WEIR_PID" 2>/dev/null && wait "$WEIR_PID" 2>/dev/null
    scripts/kafka-reference.sh stop "$KAFKA_DATA" >/dev/null 2>&1 || true
    cp "$KAFKA_DATA/kafka.out" "$OUT/kafka.log" 2>/dev/null || true
    rm -rf "$WEIR_DATA" "$KAFKA_DATA"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
PIN=()
if [ -n "$BROKER_CPUS" ]; then PIN=(taskset -c "$BROKER_CPUS"); fi
CLIENT_PIN=()
if [ -n "$CLIENT_CPUS" ]; then CLIENT_PIN=(taskset -c "$CLIENT_CPUS"); fi

WEIR_PORT=$(free_port_pair)
# shellcheck disable=SC2086
"${PIN[@]}" "$BIN/weir" --listen "127.0.0.1:$WEIR_PORT" --admin-listen "" --data-dir "$WEIR_DATA" \
    --cores "$(cpu_count "$BROKER_CPUS")" ${WEIR_ARGS:-} 2>"$OUT/weir.log" &
WEIR_PID=$!
wait_for_port "$WEIR_PORT" || { echo "weir did not start; see $OUT/weir.log" >&2; exit 1; }

KAFKA_PORT=$(free_port_pair)
KAFKA_LABEL=kafka
EXTRA=""
if [ "$KAFKA_FLUSH" = 1 ]; then EXTRA="log.flush.interval.messages=1"; KAFKA_LABEL=kafka-flush; fi
KAFKA_CPUS="$BROKER_CPUS" KAFKA_EXTRA_PROPERTIES="$EXTRA" KAFKA_HEAP_OPTS="$KAFKA_BROKER_JVM_OPTS" \
    scripts/kafka-reference.sh start "$KAFKA_PORT" "$KAFKA_DATA" >"$OUT/kafka-start.log" 2>&1 \
    || { echo "Kafka did not start; see $OUT/kafka-start.log" >&2; exit 1; }
if [ "$KAFKA_FLUSH" = 1 ] && ! grep -q "log.flush.interval.messages = 1$" "$KAFKA_DATA/kafka.out"; then
    echo "Kafka did not take log.flush.interval.messages=1; see $KAFKA_DATA/kafka.out" >&2
    exit 1
fi

"${CLIENT_PIN[@]}" "$BIN/weir-bench" sweep produce --rates "$RATES" --acks all \
    --bootstrap "127.0.0.1:$WEIR_PORT" --label-a weir \
    --bootstrap-b "127.0.0.1:$KAFKA_PORT" --label-b "$KAFKA_LABEL" \
    --topic sweep --partitions "$PARTITIONS" --message-bytes "$MESSAGE_BYTES" \
    --runs "$RUNS" --duration-s "$DURATION_S" --warmup-s "$WARMUP_S" --report-dir "$OUT" | tee "$OUT/table.txt"
