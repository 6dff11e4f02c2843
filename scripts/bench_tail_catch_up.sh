#!/usr/bin/env bash
# Catch-up from the tail cache, broker alone on a core: weir (--cores 1,
# pinned to BROKER_CPUS, a tail cache of TAIL_CACHE_BYTES) takes MESSAGES
# messages of 1 KiB on 8 partitions from weir-bench produce, then one
# weir-bench consumer (pinned to CLIENT_CPUS; it checks every batch's CRC
# and counts every record) reads them all from the earliest offset. ROUNDS
# fresh brokers; prints each read's MB/s, the broker's CPU-seconds per GB
# read and the bytes served from the tail cache, then the median.
#   scripts/bench_tail_catch_up.sh [OUT]      (default target/bench-tail-catch-up)
# Environment (defaults): ROUNDS (3), MESSAGES (1500000: 1.5 GB of values; a short
# read, under a second, is dominated by its ramp), TAIL_CACHE_BYTES (2147483648),
# BROKER_CPUS (1), CLIENT_CPUS (0).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_lib.sh
OUT="${1:-target/bench-tail-catch-up}"
ROUNDS="${ROUNDS:-3}"
MESSAGES="${MESSAGES:-1500000}"
TAIL_CACHE_BYTES="${TAIL_CACHE_BYTES:-2147483648}"
BROKER_CPUS="${BROKER_CPUS:-1}"
CLIENT_CPUS="${CLIENT_CPUS:-0}"
BIN="${CARGO_TARGET_DIR:-target}/release"
cargo build --release -p weir -p weir-bench >&2
mkdir -p "$OUT"
results=()
for round in $(seq 1 "$ROUNDS"); do
    dir="$OUT/round-$round"
    rm -rf "$dir" && mkdir -p "$dir"
    port=$(free_port_pair)
    admin=$((port + 1))
    taskset -c "$BROKER_CPUS" "$BIN/weir" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" \
        --data-dir "$dir/data" --cores 1 --tail-cache-bytes "$TAIL_CACHE_BYTES" >"$dir/broker.log" 2>&1 &
    weir=$!
    wait_for_port "$port"
    taskset -c "$CLIENT_CPUS" "$BIN/weir-bench" produce --bootstrap "127.0.0.1:$port" --topic tail --partitions 8 \
        --messages "$MESSAGES" --warmup-s 0 --duration-s 120 --report-dir "$dir/produce" >"$dir/produce.out" 2>&1
    before=$(awk '{ print $14 + $15 }' "/proc/$weir/stat")
    taskset -c "$CLIENT_CPUS" "$BIN/weir-bench" consume --bootstrap "127.0.0.1:$port" --topic tail --partitions 8 \
        --from earliest --warmup-s 0 --duration-s 120 --report-dir "$dir/consume" >"$dir/consume.out" 2>&1
    after=$(awk '{ print $14 + $15 }' "/proc/$weir/stat")
    cached=$(curl -s "http://127.0.0.1:$admin/metrics" | awk '/^weir_fetch_bytes_total\{source="tail_cache"\}/ { print $2 }')
    kill "$weir"; wait "$weir" || true
    rm -rf "$dir/data"
    line=$(python3 - "$dir/consume/report.json" "$before" "$after" "$(getconf CLK_TCK)" "$cached" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))["summary"]
cpu_s = (float(sys.argv[3]) - float(sys.argv[2])) / float(sys.argv[4])
gb = summary["bytes"] / 1e9
print(f"{summary['throughput_mb_per_s']:.0f} {cpu_s / gb:.2f} {float(sys.argv[5] or 0) / 1e9:.2f}")
PY
)
    read -r mb_per_s cpu_per_gb cached_gb <<<"$line"
    echo "round $round: $mb_per_s MB/s, broker $cpu_per_gb CPU-s/GB, $cached_gb GB served from the tail cache"
    results+=("$mb_per_s")
done
printf '%s\n' "${results[@]}" | sort -n | awk '{ v[NR] = $1 } END { print "median:", v[int((NR + 1) / 2)], "MB/s" }'
