#!/usr/bin/env bash
# Two weir settings against each other on the same load: weir with A_ARGS and
# with B_ARGS, alternating A, B, A, B, ... ROUNDS times each per scenario, a
# fresh broker and data directory per run. Scenarios (weir-bench, 1 KiB
# messages, 8 partitions; by default a 2-shard broker sharing both cores
# with the generator, as README's "weir alone" rows):
#   acksall-10k    produce acks=all, open loop at 10,000 msgs/s
#   acksall-100k   produce acks=all, open loop at 100,000 msgs/s
#   acks1-closed   produce acks=1, closed loop: throughput
#   e2e-10k        e2e (produce -> consume) at 10,000 msgs/s, acks=1
# Prints, per scenario and setting, the medians of client throughput and
# p50/p99/p99.9 (e2e: end-to-end latency) and of the broker's Produce fsync
# and hop p50 (from /v1/latency), and the B/A ratios; raw reports stay in OUT.
# Usage: A_NAME=zeroed A_ARGS="..." B_NAME=extending B_ARGS="..." scripts/bench_ab.sh [OUT]
# (default OUT target/bench-ab). scripts/bench_preallocation.sh and
# scripts/bench_advertise_shards.sh are the two comparisons README quotes.
# Environment: A_ARGS, B_ARGS (weir flags; empty is weir's defaults), A_SCRAPE,
# B_SCRAPE (an admin path, e.g. /metrics, fetched once a second during that
# setting's runs: the cost of being watched; empty: none), A_NAME (A),
# B_NAME (B), ROUNDS (3), DURATION_S (8), SCENARIOS (the first three), CORES (2:
# weir's --cores), BROKER_CPUS and CLIENT_CPUS (taskset CPU lists; empty: no
# pinning). The broker alone on a core, as scripts/bench_vs_kafka.sh runs it:
#   BROKER_CPUS=1 CLIENT_CPUS=0 CORES=1 ...
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_lib.sh
OUT="${1:-target/bench-ab}"
A_NAME="${A_NAME:-A}"
B_NAME="${B_NAME:-B}"
A_ARGS="${A_ARGS:-}"
B_ARGS="${B_ARGS:-}"
A_SCRAPE="${A_SCRAPE:-}"
B_SCRAPE="${B_SCRAPE:-}"
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
        acksall-10k) echo "produce --acks all --rate 10000" ;;
        acksall-100k) echo "produce --acks all --rate 100000" ;;
        acks1-closed) echo "produce --acks 1" ;;
        e2e-10k) echo "e2e --acks 1 --rate 10000" ;;
        *) echo "unknown scenario $1" >&2; exit 2 ;;
    esac
}

run() { # SCENARIO ROUND SETTING
    local dir="$OUT/$1-$2-$3" args scrape
    if [ "$3" = A ]; then args=$A_ARGS scrape=$A_SCRAPE; else args=$B_ARGS scrape=$B_SCRAPE; fi
    rm -rf "$dir" && mkdir -p "$dir"
    local port admin
    # Ports: advertise_shards takes the listen port + shard.
    port=$((20000 + RANDOM % 10000)); admin=$((port + 100))
    # shellcheck disable=SC2086
    pinned "$BROKER_CPUS" "$BIN/weir" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" --data-dir "$dir/data" \
        --cores "$CORES" $args >"$dir/broker.log" 2>&1 &
    local weir=$!
    wait_for_port "$port"
    local scraper=""
    if [ -n "$scrape" ]; then
        (while sleep 1; do curl -s -o /dev/null "http://127.0.0.1:$admin$scrape"; done) &
        scraper=$!
    fi
    # shellcheck disable=SC2046
    (pinned "$CLIENT_CPUS" "$BIN/weir-bench" $(scenario_args "$1") --bootstrap "127.0.0.1:$port" --topic ab \
        --partitions 8 --warmup-s 2 --duration-s "$DURATION_S" --message-bytes 1024 --report-dir "$dir/report") \
        >"$dir/bench.out" 2>&1
    if [ -n "$scraper" ]; then kill "$scraper"; wait "$scraper" 2>/dev/null || true; fi
    for stage in fsync hop; do
        curl -s "http://127.0.0.1:$admin/v1/latency?api=Produce&stage=$stage" >"$dir/$stage.hgrm" || true
    done
    kill "$weir"; wait "$weir" || true
    rm -rf "$dir/data" # a closed-loop run writes gigabytes
}

for round in $(seq 1 "$ROUNDS"); do
    for scenario in $SCENARIOS; do
        for setting in A B; do
            run "$scenario" "$round" "$setting"
        done
    done
done

python3 - "$OUT" "$SCENARIOS" "$A_NAME" "$B_NAME" <<'PY'
import glob, json, statistics, sys
out, scenarios, names = sys.argv[1], sys.argv[2].split(), {"A": sys.argv[3], "B": sys.argv[4]}

def p50_ms(path):
    try:
        rows = [l.split() for l in open(path) if l.strip()[:1].isdigit()]
        return next(float(r[0]) for r in rows if float(r[1]) >= 0.5) / 1000
    except (OSError, StopIteration, ValueError, IndexError):
        return None

KEYS = ["mb_per_s", "p50_ms", "p99_ms", "p999_ms", "fsync_p50_ms", "hop_p50_ms"]
result = {"names": names}
for scenario in scenarios:
    result[scenario] = {}
    for setting in "AB":
        runs = []
        for run in sorted(glob.glob(f"{out}/{scenario}-*-{setting}")):
            s = json.load(open(f"{run}/report/report.json"))["summary"]
            l = s["latency_us"]
            runs.append({"mb_per_s": s["throughput_mb_per_s"], "p50_ms": l["p50"] / 1000,
                         "p99_ms": l["p99"] / 1000, "p999_ms": l["p999"] / 1000,
                         "fsync_p50_ms": p50_ms(f"{run}/fsync.hgrm"),
                         "hop_p50_ms": p50_ms(f"{run}/hop.hgrm"), "errors": s["errors"]})
        medians = {}
        for k in KEYS:
            values = [r[k] for r in runs if r[k] is not None]
            medians[k] = statistics.median(values) if values else None
        result[scenario][setting] = {"median": medians, "runs": runs}
    a, b = result[scenario]["A"]["median"], result[scenario]["B"]["median"]
    result[scenario]["ratio"] = {k: b[k] / a[k] for k in KEYS if a[k] and b[k]}
json.dump(result, open(f"{out}/result.json", "w"), indent=2)
print("| scenario | setting | MB/s | p50 ms | p99 ms | p99.9 ms | broker fsync p50 ms | broker hop p50 ms |")
print("|---|---|---|---|---|---|---|---|")
for scenario in scenarios:
    for setting in ["A", "B", "ratio"]:
        if setting == "ratio":
            m, label = result[scenario]["ratio"], f"{names['B']} / {names['A']}"
            fmt = lambda v: "—" if v is None else f"{v:.2f}×"
        else:
            m, label = result[scenario][setting]["median"], names[setting]
            fmt = lambda v: "—" if v is None else f"{v:.2f}"
        print(f"| {scenario} | {label} | " + " | ".join(fmt(m.get(k)) for k in KEYS) + " |")
PY
