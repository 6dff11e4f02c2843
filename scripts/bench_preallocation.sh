#!/usr/bin/env bash
# Segments zeroed ahead of the appends (segment_preallocate_bytes, issue 15)
# against appends that extend the file: weir with the default (16 MiB) and
# with 0, alternating, ROUNDS times each, a fresh broker and data directory
# per run. Scenarios (weir-bench produce, 1 KiB messages, 8 partitions,
# a 2-shard broker sharing both cores with the generator, as README's
# "weir alone" rows):
#   acksall-10k    acks=all, open loop at 10,000 msgs/s
#   acksall-100k   acks=all, open loop at 100,000 msgs/s
#   acks1-closed   acks=1, closed loop: throughput
# Prints, per scenario and setting, the medians of client throughput and
# p50/p99/p99.9 and of the broker's Produce fsync p50 (from /v1/latency),
# and the zeroed/extending ratios; raw reports stay in OUT.
# Usage: scripts/bench_preallocation.sh [OUT]  (default target/bench-preallocation)
# Environment: ROUNDS (3), DURATION_S (8), SCENARIOS (all three), CORES (2: weir's
# --cores), BROKER_CPUS and CLIENT_CPUS (taskset CPU lists; empty: no pinning). The
# broker alone on a core, as scripts/bench_vs_kafka.sh runs it:
#   BROKER_CPUS=1 CLIENT_CPUS=0 CORES=1 scripts/bench_preallocation.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_lib.sh
OUT="${1:-target/bench-preallocation}"
ROUNDS="${ROUNDS:-3}"
DURATION_S="${DURATION_S:-8}"
CORES="${CORES:-2}"
SCENARIOS="${SCENARIOS:-acksall-10k acksall-100k acks1-closed}"
BROKER_CPUS="${BROKER_CPUS:-}"
CLIENT_CPUS="${CLIENT_CPUS:-}"
pinned() { # CPUS COMMAND...: COMMAND under taskset when CPUS is set; exec, so that
    # a backgrounded call's $! is the command itself (the broker gets the kill)
    local cpus=$1; shift
    if [ -n "$cpus" ]; then exec taskset -c "$cpus" "$@"; else exec "$@"; fi
}
BIN="${CARGO_TARGET_DIR:-target}/release"
cargo build --release -p weir -p weir-bench >&2
mkdir -p "$OUT"

scenario_args() {
    case "$1" in
        acksall-10k) echo "--acks all --rate 10000" ;;
        acksall-100k) echo "--acks all --rate 100000" ;;
        acks1-closed) echo "--acks 1" ;;
        *) echo "unknown scenario $1" >&2; exit 2 ;;
    esac
}

run() { # SCENARIO ROUND WINDOW_BYTES
    local dir="$OUT/$1-$2-window-$3"
    rm -rf "$dir" && mkdir -p "$dir"
    local port admin
    port=$((20000 + RANDOM % 10000)); admin=$((port + 1))
    pinned "$BROKER_CPUS" "$BIN/weir" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" --data-dir "$dir/data" \
        --cores "$CORES" --segment-preallocate-bytes "$3" >"$dir/broker.log" 2>&1 &
    local weir=$!
    wait_for_port "$port"
    # shellcheck disable=SC2046
    (pinned "$CLIENT_CPUS" "$BIN/weir-bench" produce --bootstrap "127.0.0.1:$port" --topic zeroing --partitions 8 \
        --warmup-s 2 --duration-s "$DURATION_S" --message-bytes 1024 --report-dir "$dir/report" \
        $(scenario_args "$1")) >"$dir/bench.out" 2>&1
    curl -s "http://127.0.0.1:$admin/v1/latency?api=Produce&stage=fsync" >"$dir/fsync.hgrm" || true
    kill "$weir"; wait "$weir" || true
    rm -rf "$dir/data" # a closed-loop run writes gigabytes
}

for round in $(seq 1 "$ROUNDS"); do
    for scenario in $SCENARIOS; do
        for window in 16777216 0; do
            run "$scenario" "$round" "$window"
        done
    done
done

python3 - "$OUT" "$SCENARIOS" <<'PY'
import glob, json, statistics, sys
out, scenarios = sys.argv[1], sys.argv[2].split()

def fsync_p50_ms(path):
    try:
        rows = [l.split() for l in open(path) if l.strip()[:1].isdigit()]
        return next(float(r[0]) for r in rows if float(r[1]) >= 0.5) / 1000
    except (OSError, StopIteration, ValueError, IndexError):
        return None

result = {}
for scenario in scenarios:
    result[scenario] = {}
    for window in ["16777216", "0"]:
        runs = []
        for run in sorted(glob.glob(f"{out}/{scenario}-*-window-{window}")):
            s = json.load(open(f"{run}/report/report.json"))["summary"]
            l = s["latency_us"]
            runs.append({"mb_per_s": s["throughput_mb_per_s"], "p50_ms": l["p50"] / 1000,
                         "p99_ms": l["p99"] / 1000, "p999_ms": l["p999"] / 1000,
                         "fsync_p50_ms": fsync_p50_ms(f"{run}/fsync.hgrm"), "errors": s["errors"]})
        medians = {k: statistics.median(r[k] for r in runs if r[k] is not None)
                   for k in ["mb_per_s", "p50_ms", "p99_ms", "p999_ms"]}
        fsyncs = [r["fsync_p50_ms"] for r in runs if r["fsync_p50_ms"] is not None]
        medians["fsync_p50_ms"] = statistics.median(fsyncs) if fsyncs else None
        result[scenario]["zeroed" if window != "0" else "extending"] = {"median": medians, "runs": runs}
    z, e = result[scenario]["zeroed"]["median"], result[scenario]["extending"]["median"]
    result[scenario]["ratio"] = {k: z[k] / e[k] for k in z if z[k] and e[k]}
json.dump(result, open(f"{out}/result.json", "w"), indent=2)
print("| scenario | setting | MB/s | p50 ms | p99 ms | p99.9 ms | broker fsync p50 ms |")
print("|---|---|---|---|---|---|---|")
for scenario in scenarios:
    for setting in ["zeroed", "extending", "ratio"]:
        m = result[scenario][setting] if setting == "ratio" else result[scenario][setting]["median"]
        cells = [m.get(k) for k in ["mb_per_s", "p50_ms", "p99_ms", "p999_ms", "fsync_p50_ms"]]
        fmt = (lambda v: "—" if v is None else f"{v:.2f}×") if setting == "ratio" else \
              (lambda v: "—" if v is None else f"{v:.2f}")
        print(f"| {scenario} | {setting} | " + " | ".join(fmt(c) for c in cells) + " |")
PY
