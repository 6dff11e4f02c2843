#!/usr/bin/env bash
# What recording every request's stages costs (issue 14): weir with
# latency_stages on and off, alternating, ROUNDS times each:
#   throughput  weir-bench produce, closed loop, acks=1, 1 KiB, 4 partitions
#   latency     weir-bench produce, open loop at 10,000 msgs/s, acks=all
# The broker runs --cores 1 on CPU 1, the client on CPU 0. Prints medians
# and the on/off ratios; raw reports stay in OUT_DIR.
# Usage: scripts/bench_latency_stages.sh [OUT_DIR]   (default target/bench-latency-stages)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-target/bench-latency-stages}"
ROUNDS="${ROUNDS:-3}"
DURATION_S="${DURATION_S:-10}"
PORT="${PORT:-19492}"
cargo build --release -p weir -p weir-bench >&2
mkdir -p "$OUT"
run() { # NAME ROUND STAGES SCENARIO_ARGS...
    local dir="$OUT/$1-$2-stages-$3"
    rm -rf "$dir" && mkdir -p "$dir"
    taskset -c 1 ${CARGO_TARGET_DIR:-target}/release/weir --listen "127.0.0.1:$PORT" --admin-listen "" --data-dir "$dir/data" \
        --cores 1 --latency-stages "$3" >"$dir/broker.log" 2>&1 &
    local weir=$!
    for _ in $(seq 1 200); do grep -q "weir serving Kafka" "$dir/broker.log" && break; sleep 0.05; done
    shift 3
    taskset -c 0 ${CARGO_TARGET_DIR:-target}/release/weir-bench produce --bootstrap "127.0.0.1:$PORT" --topic stages \
        --warmup-s 2 --duration-s "$DURATION_S" --message-bytes 1024 --report-dir "$dir/report" "$@" \
        >"$dir/bench.out" 2>&1
    kill "$weir"; wait "$weir" || true
    rm -rf "$dir/data" # a closed-loop run writes gigabytes
}
for round in $(seq 1 "$ROUNDS"); do
    for stages in true false; do
        run throughput "$round" "$stages" --partitions 4 --acks 1
        run latency "$round" "$stages" --partitions 1 --acks all --rate 10000
    done
done
python3 - "$OUT" <<'PY'
import glob, json, statistics, sys
out = sys.argv[1]
def summary(kind, stages):
    rows = []
    for path in sorted(glob.glob(f"{out}/{kind}-*-stages-{stages}/report/report.json")):
        s = json.load(open(path))["summary"]
        rows.append((s["throughput_msgs_per_s"],
                     s["latency_us"]["p99"]))
    return rows
result = {}
for kind in ["throughput", "latency"]:
    on, off = summary(kind, "true"), summary(kind, "false")
    med = lambda rows, i: statistics.median(r[i] for r in rows)
    result[kind] = {
        "msgs_per_s": {"on": med(on, 0), "off": med(off, 0), "ratio": med(on, 0) / med(off, 0)},
        "p99_us": {"on": med(on, 1), "off": med(off, 1), "ratio": med(on, 1) / med(off, 1)},
        "runs_on": on, "runs_off": off,
    }
json.dump(result, open(f"{out}/result.json", "w"), indent=2)
print(json.dumps(result, indent=2))
PY
