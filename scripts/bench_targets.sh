#!/usr/bin/env bash
# The issue-4 targets with weir-bench, RUNS runs each, a fresh broker (and
# data dir) per run, broker RSS sampled during every run:
#   1. produce, 1 KiB, acks=1, 8 partitions, closed loop;
#   2. produce acks=all, open loop at 25% of the median acks=1 rate;
#   3. catch-up consume of what 1. wrote: from the tail cache, then after a
#      restart with the page cache dropped (from disk).
# Reports go to OUT (default /tmp/weir-targets); one summary line per run.
#
#   scripts/bench_targets.sh [RUNS=3] [PORT=19094] [OUT=/tmp/weir-targets]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_lib.sh
RUNS=${1:-3}
PORT=${2:-19094}
OUT=${3:-/tmp/weir-targets}
BIN=target/release
cargo build --release -p weir -p weir-bench 2>/dev/null
mkdir -p "$OUT"
DATA=""
BROKER=""
SAMPLER=""
cleanup() { kill $SAMPLER 2>/dev/null || true; kill $BROKER 2>/dev/null || true; [ -n "$DATA" ] && rm -rf "$DATA"; }
trap cleanup EXIT
start() {
    $BIN/weir --listen 127.0.0.1:$PORT --data-dir "$DATA" --cores 2 "$@" 2>>"$OUT/broker.log" &
    BROKER=$!
    wait_for_port $PORT
    ( peak=0; while kill -0 $BROKER 2>/dev/null; do
        rss=$(awk '/VmRSS/ {print $2}' /proc/$BROKER/status 2>/dev/null || echo 0)
        [ "${rss:-0}" -gt "$peak" ] && peak=$rss && echo "$peak" > "$OUT/rss_peak_kib"
        sleep 0.2; done ) &
    SAMPLER=$!
}
stop() { kill -TERM $BROKER; wait $BROKER 2>/dev/null || true; kill $SAMPLER 2>/dev/null || true; }
summary() { # report dir -> one line
    python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1] + "/report.json"))
s = r["summary"]; l = s["latency_us"]
print(f'mb_per_s={s["throughput_mb_per_s"]:.0f} msgs_per_s={s["throughput_msgs_per_s"]:.0f} '
      f'errors={s["errors"]} p50_us={l["p50"]} p99_us={l["p99"]} p999_us={l["p999"]} max_us={l["max"]}')
PY
}
rates=()
for run in $(seq "$RUNS"); do
    DATA=$(mktemp -d /work/weir-targets-data.XXXXXX)
    start
    $BIN/weir-bench produce --bootstrap 127.0.0.1:$PORT --topic t --partitions 8 --message-bytes 1024 \
        --acks 1 --duration-s 10 --warmup-s 2 --report-dir "$OUT/produce-acks1-$run" >/dev/null 2>&1
    echo "run=$run produce acks=1 closed-loop $(summary "$OUT/produce-acks1-$run") rss_peak_kib=$(cat "$OUT/rss_peak_kib")"
    rates+=("$(python3 -c "import json;print(int(json.load(open('$OUT/produce-acks1-$run/report.json'))['summary']['throughput_msgs_per_s']))")")
    $BIN/weir-bench consume --bootstrap 127.0.0.1:$PORT --topic t --from earliest --duration-s 60 --warmup-s 0 \
        --report-dir "$OUT/consume-cache-$run" >/dev/null 2>&1
    echo "run=$run consume catch-up (tail cache) $(summary "$OUT/consume-cache-$run") rss_peak_kib=$(cat "$OUT/rss_peak_kib")"
    stop
    start
    drop_page_cache "$DATA"
    $BIN/weir-bench consume --bootstrap 127.0.0.1:$PORT --topic t --from earliest --duration-s 60 --warmup-s 0 \
        --report-dir "$OUT/consume-disk-$run" >/dev/null 2>&1
    echo "run=$run consume catch-up (disk, after restart) $(summary "$OUT/consume-disk-$run")"
    stop
    grep -h "fetch_bytes_from" "$OUT/broker.log" | tail -2 | sed 's/.*request latency: //' | sed "s/^/run=$run   broker: /"
    rm -rf "$DATA"
done
median=$(printf '%s\n' "${rates[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
rate=$(( median / 4 ))
echo "acks=1 median ${median} msgs/s; acks=all open loop at ${rate} msgs/s (25%)"
for run in $(seq "$RUNS"); do
    DATA=$(mktemp -d /work/weir-targets-data.XXXXXX)
    start
    $BIN/weir-bench produce --bootstrap 127.0.0.1:$PORT --topic t --partitions 8 --message-bytes 1024 \
        --acks all --rate "$rate" --duration-s 10 --warmup-s 2 --report-dir "$OUT/produce-acksall-$run" >/dev/null 2>&1
    echo "run=$run produce acks=all open-loop rate=$rate $(summary "$OUT/produce-acksall-$run") rss_peak_kib=$(cat "$OUT/rss_peak_kib")"
    stop
    rm -rf "$DATA"
done
