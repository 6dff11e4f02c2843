#!/usr/bin/env bash
# Compaction benchmarks (issue 13), medians of ROUNDS rounds:
#   throughput  a compacted partition's backlog of BACKLOG_KEYS keys x
#               BACKLOG_ROUNDS updates of VALUE_BYTES is cleaned by one shard:
#               MB/s of log cleaned (weir's log line for the pass) and the
#               key map's memory (32 bytes per key).
#   latency     weir-bench produce, acks=all, open loop at 10,000 msgs/s of
#               1 KiB for DURATION_S on the same shard, with and without a
#               compaction pass of such a backlog running meanwhile
#               (alternating): p50/p99/p99.9 and their ratio.
#   restart     __consumer_offsets holding COMMITS offset commits of OFFSET_GROUPS
#               groups: time from start to serving, before compaction and
#               after it.
# The broker runs with --cores 1 pinned to CPU 1, clients on CPU 0.
# Usage: scripts/bench_compaction.sh [OUT_DIR]   (default target/bench-compaction)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-target/bench-compaction}"
ROUNDS="${ROUNDS:-3}"
BACKLOG_KEYS="${BACKLOG_KEYS:-1000000}"
BACKLOG_ROUNDS="${BACKLOG_ROUNDS:-10}"
VALUE_BYTES="${VALUE_BYTES:-100}"
DURATION_S="${DURATION_S:-20}"
OFFSET_GROUPS="${OFFSET_GROUPS:-1000}"
COMMITS="${COMMITS:-1000000}"
PORT="${PORT:-19392}"
# Which parts to run, and the latency part's acks (all: every ack waits for
# an fdatasync).
SCENARIOS="${SCENARIOS:-throughput latency restart}"
LATENCY_ACKS="${LATENCY_ACKS:-all}"
# More weir options for every broker of the run (e.g. pacing settings).
WEIR_ARGS="${WEIR_ARGS:-}"
mkdir -p "$OUT"
cargo build --release -p weir -p weir-bench >&2
tests/python/install.sh >&2
WEIR=target/release/weir
BENCH=target/release/weir-bench
export BOOTSTRAP="127.0.0.1:$PORT"
PY="taskset -c 0 python3 scripts/bench_compaction.py"

start_weir() { # DATA_DIR LOG
    taskset -c 1 "$WEIR" --listen "$BOOTSTRAP" --data-dir "$1" --cores 1 \
        --compaction-check-interval-ms 500 --offsets-topic-partitions 50 $WEIR_ARGS >"$2" 2>&1 &
    WEIR_PID=$!
    for _ in $(seq 1 600); do
        grep -q "weir serving Kafka" "$2" && return 0
        sleep 0.05
    done
    echo "weir did not start; see $2" >&2
    exit 1
}
stop_weir() { kill "$WEIR_PID"; wait "$WEIR_PID" || true; WEIR_PID=; }
WEIR_PID=
trap '[ -n "$WEIR_PID" ] && kill "$WEIR_PID" 2>/dev/null; true' EXIT
wait_for_line() { # LOG PATTERN
    for _ in $(seq 1 1200); do
        grep -q "$2" "$1" && return 0
        sleep 0.25
    done
    echo "no '$2' in $1" >&2
    exit 1
}
latency_run() { # NAME ROUND WITH_COMPACTION
    local dir="$OUT/latency-$1-$2"
    rm -rf "$dir" && mkdir -p "$dir"
    start_weir "$dir/data" "$dir/broker.log"
    $PY backlog backlog "$BACKLOG_KEYS" "$BACKLOG_ROUNDS" "$VALUE_BYTES" >"$dir/backlog.json"
    taskset -c 0 "$BENCH" produce --bootstrap "$BOOTSTRAP" --topic latency --partitions 1 \
        --acks "$LATENCY_ACKS" --message-bytes 1024 --rate 10000 --warmup-s 2 --duration-s "$DURATION_S" \
        --report-dir "$dir/report" >"$dir/bench.out" 2>&1 &
    local bench=$!
    sleep 3
    if [ "$3" = yes ]; then $PY compact backlog >/dev/null; fi
    wait "$bench"
    if [ "$3" = yes ]; then wait_for_line "$dir/broker.log" "backlog-0: compacted to offset"; fi
    stop_weir
}

wants() { [[ " $SCENARIOS " == *" $1 "* ]]; }
for round in $(seq 1 "$ROUNDS"); do
  if wants throughput; then
    # Throughput: one pass over the whole backlog.
    dir="$OUT/throughput-$round"
    rm -rf "$dir" && mkdir -p "$dir"
    start_weir "$dir/data" "$dir/broker.log"
    $PY backlog backlog "$BACKLOG_KEYS" "$BACKLOG_ROUNDS" "$VALUE_BYTES" >"$dir/backlog.json"
    $PY compact backlog >/dev/null
    wait_for_line "$dir/broker.log" "backlog-0: compacted to offset"
    stop_weir
  fi
  if wants latency; then
    # Latency, alternating with and without compaction.
    latency_run without "$round" no
    latency_run with "$round" yes
  fi
  if wants restart; then
    # Restart time: commits, restart (before), roll + compaction, restart (after).
    dir="$OUT/restart-$round"
    rm -rf "$dir" && mkdir -p "$dir"
    start_weir "$dir/data" "$dir/broker-1.log"
    $PY commits "$OFFSET_GROUPS" "$((COMMITS / OFFSET_GROUPS))" 100 >"$dir/commits.json"
    stop_weir
    t0=$(date +%s.%N); start_weir "$dir/data" "$dir/broker-2.log"; t1=$(date +%s.%N)
    echo "{\"before_s\": $(awk "BEGIN {print $t1 - $t0}")}" >"$dir/restart-before.json"
    # segment.ms=1000 on __consumer_offsets: a commit starts each segment's
    # clock, one more after a second rolls it.
    $PY roll-offsets >/dev/null
    $PY commits "$OFFSET_GROUPS" 100 100 >/dev/null
    sleep 1.5
    $PY commits "$OFFSET_GROUPS" 100 100 >/dev/null
    sleep 5
    wait_for_line "$dir/broker-2.log" "__consumer_offsets-.*compacted to offset"
    # Every partition's pass is done once no new pass was logged for 3 s.
    while true; do
        n=$(grep -c "compacted to offset" "$dir/broker-2.log" || true)
        sleep 3
        [ "$n" = "$(grep -c "compacted to offset" "$dir/broker-2.log" || true)" ] && break
    done
    stop_weir
    t0=$(date +%s.%N); start_weir "$dir/data" "$dir/broker-3.log"; t1=$(date +%s.%N)
    echo "{\"after_s\": $(awk "BEGIN {print $t1 - $t0}")}" >"$dir/restart-after.json"
    du -sb "$dir/data/__consumer_offsets-"* | awk '{s+=$1} END {print "{\"offsets_bytes_after\": " s "}"}' >"$dir/bytes-after.json"
    stop_weir
  fi
done

python3 - "$OUT" "$ROUNDS" <<'EOF'
import glob, json, re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
med = lambda xs: statistics.median(xs) if xs else float("nan")
line = re.compile(r"backlog-0: compacted to offset \d+: (\d+) keys, (\d+) -> (\d+) bytes .* in (\d+) ms \((\d+) MB/s")
tp, keys = [], []
for path in glob.glob(f"{out}/throughput-*/broker.log"):
    for m in line.finditer(open(path).read()):
        keys.append(int(m.group(1))); tp.append(int(m.group(5)))
def lat(kind):
    rows = []
    for path in sorted(glob.glob(f"{out}/latency-{kind}-*/report/report.json")):
        s = json.load(open(path))["summary"]["latency_us"]
        rows.append((s["p50"] / 1000, s["p99"] / 1000, s["p999"] / 1000))
    return [med([x[i] for x in rows]) for i in range(3)], rows
without, wrows = lat("without"); with_, crows = lat("with")
before = [json.load(open(p))["before_s"] for p in glob.glob(f"{out}/restart-*/restart-before.json")]
after = [json.load(open(p))["after_s"] for p in glob.glob(f"{out}/restart-*/restart-after.json")]
result = {
    "compaction_mb_per_s_per_shard": {"median": med(tp), "runs": tp},
    "key_map_bytes": med(keys) * 32,
    "produce_10k_ms_p50_p99_p999": {"without": without, "with": with_, "p99_ratio": with_[1] / without[1] if wrows else None,
                                              "runs_without": wrows, "runs_with": crows},
    "restart_s": {"before": med(before), "after": med(after), "runs_before": before, "runs_after": after},
}
json.dump(result, open(f"{out}/result.json", "w"), indent=2)
print(json.dumps(result, indent=2))
EOF
