#!/usr/bin/env bash
# weir next to Apache Kafka (4.1.1, KRaft combined mode, scripts/kafka-reference.sh)
# on this machine: the same load, the same cores, a fresh broker and data
# directory for every run, runs alternating weir, Kafka, Kafka-flush, weir, ...
#
#   ROUNDS=3 DURATION_S=20 scripts/bench_vs_kafka.sh      the full comparison (~30-35 min)
#   ROUNDS=1 DURATION_S=5 WARMUP_S=1 BACKLOG_MSGS=200000 PERF_RECORDS=200000 \
#       scripts/bench_vs_kafka.sh                          a smoke run (~6 min)
#
# Brokers:
#   weir         target/release/weir --listen 127.0.0.1:PORT --data-dir DIR --cores N
#                (N = the number of BROKER_CPUS), every other option at its default:
#                acks=all is acknowledged after fdatasync, acks=1 after the O_DIRECT write.
#   kafka        Kafka with its defaults (server.properties of kafka-reference.sh,
#                JVM options of kafka-server-start.sh: 1 GiB heap, G1): acks=1 and acks=all
#                are acknowledged once in the page cache; nothing is fsync'ed on the way.
#   kafka-flush  the same with log.flush.interval.messages=1 (the broker-wide default of
#                the topic config flush.messages=1; `flush.messages=1` itself is not a
#                broker property and Kafka ignores it silently in server.properties): every
#                append is fsync'ed before the answer, so acks=all promises what weir's
#                does. Only run in the acks=all scenarios, where that promise is the point.
#
# CPUs: the broker is pinned to BROKER_CPUS (default cpu 1) and every client
# (weir-bench, Kafka's perf test and topic tool) to CLIENT_CPUS (default cpu 0),
# both with taskset, identically for weir and Kafka. On this 2-core machine that
# gives each broker exactly one core of its own: the load generator's CPU never
# competes with the broker, a broker cannot borrow the generator's core, and
# what is compared is what each broker does with one core (weir: one shard;
# Kafka: all its threads, GC and JIT included, on that core). To give both
# brokers both cores instead (shared with the clients, as README's Performance
# section does): BROKER_CPUS=0-1 CLIENT_CPUS=0-1 (weir then runs --cores 2).
# Empty values mean no pinning.
#
# Scenarios (1 KiB messages, a fresh topic of PARTITIONS=8 partitions, replication
# factor 1, created with CreateTopics by weir-bench or kafka-topics):
#   produce-acks1    weir-bench produce, acks=1, closed loop: throughput
#   produce-acksall  weir-bench produce, acks=all, closed loop: throughput (+ kafka-flush)
#   latency-acksall  weir-bench produce, acks=all, open loop at OPEN_RATE msgs/s:
#                    p50/p99/p99.9 from each message's scheduled send time (+ kafka-flush).
#                    A broker that cannot sustain the rate shows its queueing delay (the
#                    generator does not slow down), so pick a rate all of them sustain
#   catch-up         weir-bench produce --messages BACKLOG_MSGS (acks=1), then weir-bench
#                    consume from the earliest offset to the end: read MB/s. CATCHUP_FROM=cache
#                    (default) reads right after writing; CATCHUP_FROM=disk restarts the
#                    broker and drops the segments' page cache first
#   e2e              weir-bench e2e at E2E_RATE msgs/s, acks=1: produce -> consume latency
#   perf-test        kafka-producer-perf-test (the Java producer with its defaults, acks=1,
#                    PERF_RECORDS records, --throughput -1): throughput and its latencies
#
# Output (OUT, default /var/tmp/bench-vs-kafka-<time>): runs/<round>-<scenario>-<broker>/
# with report/ (weir-bench's report.json, latency.hgrm, charts), backlog/ (catch-up:
# the producer's report), bench.out (the client's output), broker.log, result.json
# (the numbers of the run); results.json (every run and the medians) and summary.md
# (the markdown tables printed at the end: medians per scenario and broker, and every run).
# Each run also records the broker's CPU seconds (user + system, every thread, from
# /proc) and its CPU-seconds per GB of message values moved (produced, or read back for
# catch-up), both over the whole run, warm-up included.
#
# Environment (defaults): ROUNDS (3), DURATION_S (20), WARMUP_S (2), PARTITIONS (8),
# MESSAGE_BYTES (1024), OPEN_RATE (10000), E2E_RATE (10000), BACKLOG_MSGS (1048576,
# 1 GiB of values), CATCHUP_FROM (cache), PERF_RECORDS (50000 x DURATION_S),
# SCENARIOS (all six, in the order above), BROKER_CPUS (1), CLIENT_CPUS (0),
# WEIR_PORT, KAFKA_PORT (+1 is its controller; default: a free port below the
# ephemeral range, chosen per run: on a shared machine other processes hold fixed
# ones), DATA_ROOT (/var/tmp: data directories), OUT, CATCHUP_TIMEOUT_S (600: bound of a backlog, a catch-up read, a perf test),
# KAFKA_BROKER_JVM_OPTS (kafka-server-start.sh's), KAFKA_TOOL_JVM_OPTS (-Xmx512M, as
# kafka-producer-perf-test.sh), WEIR_ARGS (extra weir flags, none by default).
#
# Duration: a round is 14 runs: 10 of WARMUP_S + DURATION_S, 2 backlogs read back,
# 2 perf tests, and 8 Kafka starts and stops of 15-25 s each (weir: ~1 s): about
# 10-11 min per round with DURATION_S=20, 6 min with the smoke settings above.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_lib.sh

ROUNDS=${ROUNDS:-3}
DURATION_S=${DURATION_S:-20}
WARMUP_S=${WARMUP_S:-2}
PARTITIONS=${PARTITIONS:-8}
MESSAGE_BYTES=${MESSAGE_BYTES:-1024}
OPEN_RATE=${OPEN_RATE:-10000}
E2E_RATE=${E2E_RATE:-10000}
BACKLOG_MSGS=${BACKLOG_MSGS:-1048576}
CATCHUP_FROM=${CATCHUP_FROM:-cache}
PERF_RECORDS=${PERF_RECORDS:-$((50000 * DURATION_S))}
SCENARIOS=${SCENARIOS:-produce-acks1 produce-acksall latency-acksall catch-up e2e perf-test}
BROKER_CPUS=${BROKER_CPUS-1}
CLIENT_CPUS=${CLIENT_CPUS-0}
WEIR_PORT=${WEIR_PORT:-}
KAFKA_PORT=${KAFKA_PORT:-}
DATA_ROOT=${DATA_ROOT:-/var/tmp}
OUT=${OUT:-/var/tmp/bench-vs-kafka-$(date +%Y%m%d-%H%M%S)}
# Upper bound of the backlog's production, the catch-up read and the perf test.
CATCHUP_TIMEOUT_S=${CATCHUP_TIMEOUT_S:-600}
# kafka-server-start.sh's heap and kafka-run-class.sh's performance options.
KAFKA_BROKER_JVM_OPTS=${KAFKA_BROKER_JVM_OPTS:--Xms1g -Xmx1g -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent}
# kafka-producer-perf-test.sh's heap.
KAFKA_TOOL_JVM_OPTS=${KAFKA_TOOL_JVM_OPTS:--Xmx512M}
TOPIC=bench
BIN=target/release

case "$CATCHUP_FROM" in cache | disk) ;; *) echo "CATCHUP_FROM is cache or disk" >&2; exit 2 ;; esac

# Which brokers run a scenario, in the order they alternate.
brokers_of() {
    case "$1" in
        produce-acksall | latency-acksall) echo "weir kafka kafka-flush" ;;
        produce-acks1 | catch-up | e2e | perf-test) echo "weir kafka" ;;
        *) echo "unknown scenario $1" >&2; return 1 ;;
    esac
}
for scenario in $SCENARIOS; do brokers_of "$scenario" >/dev/null; done

# Command prefixes that pin to the broker's and the clients' CPUs.
BROKER_PIN=()
CLIENT_PIN=()
if [ -n "$BROKER_CPUS" ]; then BROKER_PIN=(taskset -c "$BROKER_CPUS"); fi
if [ -n "$CLIENT_CPUS" ]; then CLIENT_PIN=(taskset -c "$CLIENT_CPUS"); fi
minus() { awk -v a="$1" -v b="$2" 'BEGIN { print a - b }'; }
# CPU seconds (user + system) a process has used so far (all its threads).
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# Every helper that reads or writes JSON (run results, medians, tables).
PY=$(
    cat <<'PY'
import json, math, os, re, statistics, sys

FIELDS = ["mb_per_s", "msgs_per_s", "p50_ms", "p99_ms", "p999_ms", "max_ms", "errors", "broker_cpu_s",
          "cpu_s_per_gb"]
# Per scenario: the metric its last column compares with weir, and whether
# lower is better.
MAIN = {"produce-acks1": ("mb_per_s", False), "produce-acksall": ("mb_per_s", False),
        "latency-acksall": ("p99_ms", True), "catch-up": ("mb_per_s", False),
        "e2e": ("p99_ms", True), "perf-test": ("mb_per_s", False)}

def run_meta(args):
    out, scenario, broker, rnd, exit_code, cpu_s = args
    return out, {"scenario": scenario, "broker": broker, "round": int(rnd),
                 "exit_code": int(exit_code), "broker_cpu_s": round(float(cpu_s), 2)}

def weir_bench_result(report_path, *rest):
    out, result = run_meta(rest)
    try:
        report = json.load(open(report_path))
    except (OSError, ValueError) as e:
        result.update(passed=False, note=f"no report: {e}")
    else:
        s, l = report["summary"], report["summary"]["latency_us"]
        result.update(
            tool="weir-bench", report=report_path,
            mb_per_s=s["throughput_mb_per_s"], msgs_per_s=s["throughput_msgs_per_s"],
            p50_ms=l["p50"] / 1000, p99_ms=l["p99"] / 1000, p999_ms=l["p999"] / 1000,
            max_ms=l["max"] / 1000, errors=s["errors"], messages=s["messages"],
            duration_s=s["duration_s"], latency_kind=s["latency_kind"],
            passed=result["exit_code"] == 0 and report["validation"]["passed"],
            note="; ".join(report["validation"]["checks"] + report["notes"]))
        # The broker's CPU is taken over the whole run, warm-up included: so
        # are the bytes (every second of the run's time series).
        moved = sum(row["bytes"] for row in report.get("time_series", {}).get(s.get("flow"), []))
        result.update(cpu_s_per_gb=cpu_per_gb(result["broker_cpu_s"], moved))
        if report["scenario"] == "consume" and report["validation"].get("caught_up") is False:
            result.update(passed=False)
    json.dump(result, open(out, "w"), indent=2)

def perf_test_result(output_path, record_bytes, *rest):
    out, result = run_meta(rest)
    text = open(output_path, errors="replace").read()
    # The final line: N records sent, R records/sec (M MB/sec), A ms avg latency,
    # X ms max latency, P ms 50th, P ms 95th, P ms 99th, P ms 99.9th.
    final = re.search(r"^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                      r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th",
                      text, re.M)
    errors = len(re.findall(r"^\S*(Exception|Error)\b", text, re.M))
    if final is None:
        result.update(tool="kafka-producer-perf-test", passed=False, errors=errors,
                      note="no final summary line in the tool's output")
    else:
        records, rate = int(final[1]), float(final[2])
        result.update(
            tool="kafka-producer-perf-test", final_line=final[0],
            # The tool's own MB/sec is MiB/s; here MB = 10^6 bytes as everywhere else.
            mb_per_s=rate * int(record_bytes) / 1e6, msgs_per_s=rate, p50_ms=float(final[6]),
            p99_ms=float(final[8]), p999_ms=float(final[9]), max_ms=float(final[5]), errors=errors,
            messages=records, latency_kind="send_to_callback",
            cpu_s_per_gb=cpu_per_gb(result["broker_cpu_s"], records * int(record_bytes)),
            passed=result["exit_code"] == 0 and errors == 0, note="")
    json.dump(result, open(out, "w"), indent=2)

def cpu_per_gb(cpu_s, moved_bytes):
    """Broker CPU-seconds per GB (10^9 bytes of message values) produced or fetched."""
    return round(cpu_s / (moved_bytes / 1e9), 3) if moved_bytes and cpu_s else None

def fmt(value, field):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if field in ("msgs_per_s", "errors"):
        return f"{value:,.0f}"
    if field.endswith("_ms") or field == "cpu_s_per_gb":
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    return f"{value:.1f}"

COLUMNS = [("mb_per_s", "MB/s"), ("msgs_per_s", "msgs/s"), ("p50_ms", "p50 (ms)"), ("p99_ms", "p99 (ms)"),
           ("p999_ms", "p99.9 (ms)"), ("max_ms", "max (ms)"), ("errors", "errors"),
           ("broker_cpu_s", "broker CPU (s)"), ("cpu_s_per_gb", "broker CPU-s/GB")]

def summarize(out_dir, scenarios, header_path):
    runs = []
    for name in sorted(os.listdir(os.path.join(out_dir, "runs"))):
        path = os.path.join(out_dir, "runs", name, "result.json")
        if os.path.exists(path):
            run = json.load(open(path))
            run["dir"] = os.path.join("runs", name)
            runs.append(run)
    order = {s: i for i, s in enumerate(scenarios.split())}
    brokers = {"weir": 0, "kafka": 1, "kafka-flush": 2}
    keys = sorted({(r["scenario"], r["broker"]) for r in runs},
                  key=lambda k: (order.get(k[0], 99), brokers.get(k[1], 9)))
    medians = []
    for scenario, broker in keys:
        good = [r for r in runs if (r["scenario"], r["broker"]) == (scenario, broker) and r.get("passed")]
        failed = sum(1 for r in runs if (r["scenario"], r["broker"]) == (scenario, broker) and not r.get("passed"))
        row = {"scenario": scenario, "broker": broker, "runs": len(good), "failed_runs": failed}
        for field in FIELDS:
            values = [r[field] for r in good if r.get(field) is not None]
            # As weir-bench compare: the middle value, or the mean of the middle two.
            row[field] = statistics.median(values) if values else None
        medians.append(row)
    for row in medians:
        field, lower_better = MAIN[row["scenario"]]
        weir = next((m for m in medians if m["scenario"] == row["scenario"] and m["broker"] == "weir"), None)
        ratio = None
        if weir and weir.get(field) and row.get(field) is not None:
            ratio = row[field] / weir[field]
        row["vs_weir"] = {"metric": field, "ratio": ratio, "lower_is_better": lower_better}
    lines = [open(header_path).read().rstrip(), "",
             "## Medians per scenario and broker", "",
             "Runs that failed (exit status, validation, errors in the perf test) are left out of the "
             "medians and counted in `failed`. `vs weir`: the broker's median of the scenario's main "
             "metric divided by weir's (throughput: higher is better; latency: lower is better).", "",
             "| scenario | broker | runs | failed | " + " | ".join(c[1] for c in COLUMNS) + " | vs weir |",
             "|---|---|---|---|" + "---|" * len(COLUMNS) + "---|"]
    for row in medians:
        vs = row["vs_weir"]
        unit = {"mb_per_s": "MB/s", "p99_ms": "p99"}[vs["metric"]]
        ratio = "-" if vs["ratio"] is None else f"{vs['ratio']:.2f}x {unit}"
        lines.append(f"| {row['scenario']} | {row['broker']} | {row['runs']} | {row['failed_runs']} | "
                     + " | ".join(fmt(row[c[0]], c[0]) for c in COLUMNS) + f" | {ratio} |")
    lines += ["", "## Every run", "",
              "| round | scenario | broker | passed | " + " | ".join(c[1] for c in COLUMNS) + " | run directory |",
              "|---|---|---|---|" + "---|" * len(COLUMNS) + "---|"]
    for run in sorted(runs, key=lambda r: (order.get(r["scenario"], 99), r["round"], brokers.get(r["broker"], 9))):
        lines.append(f"| {run['round']} | {run['scenario']} | {run['broker']} | {'yes' if run.get('passed') else 'NO'} | "
                     + " | ".join(fmt(run.get(c[0]), c[0]) for c in COLUMNS) + f" | {run['dir']} |")
    notes = [r for r in runs if not r.get("passed")]
    if notes:
        lines += ["", "Failed runs:", ""]
        lines += [f"- {r['dir']}: exit {r['exit_code']}; {r.get('note', '')}" for r in notes]
    text = "\n".join(lines) + "\n"
    open(os.path.join(out_dir, "summary.md"), "w").write(text)
    json.dump({"runs": runs, "medians": medians}, open(os.path.join(out_dir, "results.json"), "w"), indent=2)
    print(text)

command, args = sys.argv[1], sys.argv[2:]
{"weir-bench-result": weir_bench_result, "perf-test-result": perf_test_result, "summarize": summarize}[command](*args)
PY
)
py() { python3 -c "$PY" "$@"; }

# --- brokers -----------------------------------------------------------------

BROKER_PID=""   # weir's pid, or Kafka's java pid
BROKER_KIND=""
BROKER_DATA=""
BROKER_PORT=""

start_broker() { # KIND DATA_DIR LOG [PORT]
    local kind="$1" data="$2" log="$3" port="${4:-}"
    BROKER_KIND=$kind
    BROKER_DATA=$data
    case "$kind" in
        weir)
            BROKER_PORT=${port:-${WEIR_PORT:-$(free_port_pair)}}
            if port_busy "$BROKER_PORT"; then echo "port $BROKER_PORT is already in use" >&2; return 1; fi
            # shellcheck disable=SC2086
            "${BROKER_PIN[@]}" "$BIN/weir" --listen "127.0.0.1:$BROKER_PORT" --data-dir "$data" \
                --cores "$(cpu_count "$BROKER_CPUS")" ${WEIR_ARGS:-} 2>>"$log" &
            BROKER_PID=$!
            if ! wait_for_port "$BROKER_PORT" || ! kill -0 "$BROKER_PID" 2>/dev/null; then
                echo "weir did not start; its log:" >&2
                tail -20 "$log" >&2
                return 1
            fi
            ;;
        kafka | kafka-flush)
            BROKER_PORT=${port:-${KAFKA_PORT:-$(free_port_pair)}}
            if port_busy "$BROKER_PORT" || port_busy $((BROKER_PORT + 1)); then
                echo "port $BROKER_PORT or $((BROKER_PORT + 1)) is already in use" >&2
                return 1
            fi
            local extra=""
            [ "$kind" = kafka-flush ] && extra="log.flush.interval.messages=1"
            local status=0
            KAFKA_CPUS="$BROKER_CPUS" KAFKA_EXTRA_PROPERTIES="$extra" KAFKA_HEAP_OPTS="$KAFKA_BROKER_JVM_OPTS" \
                scripts/kafka-reference.sh start "$BROKER_PORT" "$data" >>"$log" 2>&1 || status=$?
            BROKER_PID=$(cat "$data/kafka.pid" 2>/dev/null || true)
            if [ "$status" != 0 ]; then
                echo "Kafka did not start (see $log)" >&2
                return 1
            fi
            if [ "$kind" = kafka-flush ] && ! grep -q "log.flush.interval.messages = 1$" "$data/kafka.out"; then
                echo "Kafka did not take log.flush.interval.messages=1; see $data/kafka.out" >&2
                return 1
            fi
            ;;
    esac
}

stop_broker() { # LOG: appends Kafka's own log to LOG
    local log="$1"
    [ -n "$BROKER_PID" ] || return 0
    case "$BROKER_KIND" in
        weir)
            kill -TERM "$BROKER_PID" 2>/dev/null || true
            wait "$BROKER_PID" 2>/dev/null || true
            ;;
        kafka | kafka-flush)
            scripts/kafka-reference.sh stop "$BROKER_DATA" >/dev/null 2>&1 || true
            cat "$BROKER_DATA/kafka.out" >>"$log" 2>/dev/null || true
            ;;
    esac
    BROKER_PID=""
}

cleanup() {
    if [ -n "$BROKER_PID" ]; then stop_broker /dev/null; fi
    if [ -n "$BROKER_DATA" ] && [ -d "$BROKER_DATA" ]; then rm -rf "$BROKER_DATA"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- clients -----------------------------------------------------------------

# weir-bench SCENARIO REPORT_DIR FLAGS...: one weir-bench run on the client CPUs,
# bounded in time; appends its output to $RUN_DIR/bench.out; returns its status.
weir_bench() {
    local scenario="$1" report="$2"
    shift 2
    local bound=$((WARMUP_S + DURATION_S + 120))
    if [ "$scenario" = consume ] || [[ " $* " == *" --messages "* ]]; then bound=$((CATCHUP_TIMEOUT_S + 120)); fi
    local status=0
    timeout --kill-after=10 "$bound" "${CLIENT_PIN[@]}" "$BIN/weir-bench" "$scenario" \
        --bootstrap "127.0.0.1:$BROKER_PORT" --topic "$TOPIC" \
        --partitions "$PARTITIONS" --replication-factor 1 --message-bytes "$MESSAGE_BYTES" \
        --progress false --report-dir "$report" "$@" >>"$RUN_DIR/bench.out" 2>&1 || status=$?
    return $status
}

# kafka_tool BOUND_S TOOL ARGS...: one of Kafka's tools on the client CPUs,
# bounded in time; appends its output to $RUN_DIR/bench.out.
kafka_tool() {
    local bound="$1"
    shift
    KAFKA_HEAP_OPTS="$KAFKA_TOOL_JVM_OPTS" timeout --kill-after=10 "$bound" "${CLIENT_PIN[@]}" \
        scripts/kafka-reference.sh tool "$@" >>"$RUN_DIR/bench.out" 2>&1
}

# --- one run -----------------------------------------------------------------

run_one() { # ROUND SCENARIO BROKER
    local round="$1" scenario="$2" broker="$3"
    RUN_DIR="$OUT/runs/$round-$scenario-$broker"
    rm -rf "$RUN_DIR"
    mkdir -p "$RUN_DIR"
    local log="$RUN_DIR/broker.log" data status=0 cpu_before cpu_after
    data=$(mktemp -d "$DATA_ROOT/bench-vs-kafka-data.XXXXXX")
    local started=$SECONDS
    printf '[%s] round %s/%s %-16s %-12s ' "$(date +%H:%M:%S)" "$round" "$ROUNDS" "$scenario" "$broker" >&2
    # Up to 3 attempts, each on a fresh directory and port: a start can fail
    # for reasons that have nothing to do with the broker (a port taken
    # meanwhile; kafka-reference.sh's random cluster id starting with `-`,
    # which kafka-storage then reads as an option).
    local attempt up=no
    for attempt in 1 2 3; do
        if start_broker "$broker" "$data" "$log"; then up=yes; break; fi
        stop_broker "$log"
        rm -rf "$data"
        data=$(mktemp -d "$DATA_ROOT/bench-vs-kafka-data.XXXXXX")
    done
    if [ "$up" = no ]; then
        echo "broker failed to start 3 times" >&2
        rm -rf "$data"
        BROKER_DATA=""
        echo "{\"scenario\":\"$scenario\",\"broker\":\"$broker\",\"round\":$round,\"exit_code\":-1,\"passed\":false,\"note\":\"broker did not start\"}" >"$RUN_DIR/result.json"
        return 0
    fi
    case "$scenario" in
        produce-acks1 | produce-acksall | latency-acksall | e2e)
            local flags=(--duration-s "$DURATION_S" --warmup-s "$WARMUP_S")
            local kind=produce
            case "$scenario" in
                produce-acks1) flags+=(--acks 1) ;;
                produce-acksall) flags+=(--acks all) ;;
                latency-acksall) flags+=(--acks all --rate "$OPEN_RATE") ;;
                e2e) kind=e2e; flags+=(--acks 1 --rate "$E2E_RATE") ;;
            esac
            cpu_before=$(cpu_seconds "$BROKER_PID")
            weir_bench "$kind" "$RUN_DIR/report" "${flags[@]}" || status=$?
            cpu_after=$(cpu_seconds "$BROKER_PID")
            py weir-bench-result "$RUN_DIR/report/report.json" "$RUN_DIR/result.json" "$scenario" "$broker" \
                "$round" "$status" "$(minus "$cpu_after" "$cpu_before")"
            ;;
        catch-up)
            weir_bench produce "$RUN_DIR/backlog" --acks 1 --messages "$BACKLOG_MSGS" \
                --duration-s "$CATCHUP_TIMEOUT_S" --warmup-s 0 || status=$?
            if [ "$status" = 0 ] && [ "$CATCHUP_FROM" = disk ]; then
                stop_broker "$log"
                drop_page_cache "$data"
                start_broker "$broker" "$data" "$log" "$BROKER_PORT" || status=1
            fi
            if [ "$status" = 0 ]; then
                cpu_before=$(cpu_seconds "$BROKER_PID")
                weir_bench consume "$RUN_DIR/report" --from earliest --duration-s "$CATCHUP_TIMEOUT_S" \
                    --warmup-s 0 || status=$?
                cpu_after=$(cpu_seconds "$BROKER_PID")
            else
                cpu_before=0 cpu_after=0
            fi
            py weir-bench-result "$RUN_DIR/report/report.json" "$RUN_DIR/result.json" "$scenario" "$broker" \
                "$round" "$status" "$(minus "$cpu_after" "$cpu_before")"
            ;;
        perf-test)
            local perf_topic="perf-test"
            kafka_tool 120 kafka-topics --bootstrap-server "127.0.0.1:$BROKER_PORT" --create \
                --topic "$perf_topic" --partitions "$PARTITIONS" --replication-factor 1 || status=$?
            cpu_before=$(cpu_seconds "$BROKER_PID")
            if [ "$status" = 0 ]; then
                kafka_tool $((CATCHUP_TIMEOUT_S + 120)) kafka-producer-perf-test --topic "$perf_topic" \
                    --num-records "$PERF_RECORDS" --record-size "$MESSAGE_BYTES" --throughput -1 \
                    --producer-props "bootstrap.servers=127.0.0.1:$BROKER_PORT" acks=1 || status=$?
            fi
            cpu_after=$(cpu_seconds "$BROKER_PID")
            py perf-test-result "$RUN_DIR/bench.out" "$MESSAGE_BYTES" "$RUN_DIR/result.json" "$scenario" \
                "$broker" "$round" "$status" "$(minus "$cpu_after" "$cpu_before")"
            ;;
    esac
    stop_broker "$log"
    rm -rf "$data"
    BROKER_DATA=""
    # Dirty pages of this run must not be written back during the next one.
    sync
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); f=lambda k: r.get(k) if r.get(k) is not None else float("nan"); print(("ok    " if r.get("passed") else "FAILED"), "%8.1f MB/s  p50 %8.2f ms  p99 %8.2f ms" % (f("mb_per_s"), f("p50_ms"), f("p99_ms")), end="")' \
        "$RUN_DIR/result.json" >&2
    echo "  ($((SECONDS - started)) s)" >&2
}

# --- main --------------------------------------------------------------------

echo "building weir and weir-bench (release) ..." >&2
cargo build --release -p weir -p weir-bench >&2
echo "installing / checking Apache Kafka (Maven) ..." >&2
scripts/kafka-reference.sh classpath >/dev/null
mkdir -p "$OUT/runs"
free_gb=$(df -P --block-size=1G "$DATA_ROOT" | awk 'NR == 2 { print $4 }')
if [ "$free_gb" -lt 40 ]; then
    echo "warning: $DATA_ROOT has ${free_gb} GB free; a closed-loop run can write ~1 GB/s for $((WARMUP_S + DURATION_S)) s" >&2
fi

{
    echo "# weir vs Apache Kafka 4.1.1 ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
    echo
    echo "- weir: \`$BIN/weir --listen 127.0.0.1:PORT --data-dir DIR --cores $(cpu_count "$BROKER_CPUS")${WEIR_ARGS:+ $WEIR_ARGS}\` at $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (src/ modified)')"
    echo "- Kafka 4.1.1, KRaft combined mode (scripts/kafka-reference.sh), JVM \`$KAFKA_BROKER_JVM_OPTS\`; kafka-flush: \`log.flush.interval.messages=1\`"
    echo "- broker CPUs: ${BROKER_CPUS:-all}, client CPUs: ${CLIENT_CPUS:-all} (taskset); host: $(nproc) CPUs, $(uname -r), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "- $ROUNDS round(s); measured ${DURATION_S} s after ${WARMUP_S} s of warm-up; $MESSAGE_BYTES-byte messages; topic of $PARTITIONS partitions, replication factor 1; a fresh broker and data directory per run"
    echo "- produce-acks1 / produce-acksall: weir-bench produce, closed loop (1 connection, 5 requests in flight, 64 KiB batches per partition)"
    echo "- latency-acksall: weir-bench produce --acks all --rate $OPEN_RATE (latency from each message's scheduled send time)"
    echo "- catch-up: $BACKLOG_MSGS messages produced (acks=1), then read from the earliest offset to the end (from the $CATCHUP_FROM); latency columns are Fetch round trips"
    echo "- e2e: weir-bench e2e --acks 1 --rate $E2E_RATE (latency: send time -> consumed)"
    echo "- perf-test: kafka-producer-perf-test --num-records $PERF_RECORDS --record-size $MESSAGE_BYTES --throughput -1 acks=1 (the Java producer's defaults otherwise)"
    echo "- MB = 10^6 bytes of message values; broker CPU = CPU seconds the broker process used during the client's run"
} >"$OUT/header.md"

echo "output: $OUT" >&2
started_all=$SECONDS
for round in $(seq "$ROUNDS"); do
    for scenario in $SCENARIOS; do
        for broker in $(brokers_of "$scenario"); do
            run_one "$round" "$scenario" "$broker"
        done
    done
done
py summarize "$OUT" "$SCENARIOS" "$OUT/header.md"
echo "total time: $(( (SECONDS - started_all) / 60 )) min $(( (SECONDS - started_all) % 60 )) s; everything is in $OUT" >&2
