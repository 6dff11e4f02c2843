#!/usr/bin/env bash
# Apache Kafka as the reference broker: fetched through Maven (the same
# release as the Java client and tools in tests/java/pom.xml), one KRaft
# broker in combined mode (broker + controller) on loopback.
#
#   scripts/kafka-reference.sh classpath          print the classpath (installs it first)
#   scripts/kafka-reference.sh format DIR PORT [CONTROLLER_PORT]
#                                                 write DIR/server.properties and format DIR
#   scripts/kafka-reference.sh run DIR            run the broker of DIR in the foreground (exec)
#   scripts/kafka-reference.sh start [PORT] [DIR] format (once) and start in the background
#                                                 (default 127.0.0.1:9092, ./kafka-data)
#   scripts/kafka-reference.sh stop [DIR]         stop the broker started by `start`
#   scripts/kafka-reference.sh tool CLASS ARGS... run one of Kafka's tools (see below)
#
# Tools by their quickstart names: kafka-topics, kafka-console-producer,
# kafka-console-consumer, kafka-consumer-groups, kafka-configs,
# kafka-get-offsets, kafka-delete-records, kafka-transactions, kafka-producer-perf-test,
# kafka-consumer-perf-test (e.g. `tool kafka-topics --bootstrap-server ...`).
#
# Environment: KAFKA_HEAP_OPTS (default -Xms256m -Xmx1g), KAFKA_EXTRA_PROPERTIES
# (lines appended to server.properties at format time, e.g. flush.messages=1),
# KAFKA_CPUS (a taskset CPU list the broker is pinned to, e.g. 0-1),
# KAFKA_TOOL_STDIN (a file `tool` reads as standard input, for
# kafka-console-producer when stdin cannot be redirected by the caller).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
java_dir="$root/tests/java"

classpath() {
    local file="$java_dir/target/classpath.txt"
    if [ ! -s "$file" ] || [ ! -d "$java_dir/target/classes" ] || [ "$java_dir/pom.xml" -nt "$file" ]; then
        "$java_dir/install.sh" >&2
    fi
    printf '%s:%s\n' "$java_dir/target/classes" "$(cat "$file")"
}

tool_class() {
    case "$1" in
        kafka-topics) echo org.apache.kafka.tools.TopicCommand ;;
        kafka-console-producer) echo org.apache.kafka.tools.ConsoleProducer ;;
        kafka-console-consumer) echo org.apache.kafka.tools.consumer.ConsoleConsumer ;;
        kafka-consumer-groups) echo org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
        kafka-configs) echo kafka.admin.ConfigCommand ;;
        kafka-get-offsets) echo org.apache.kafka.tools.GetOffsetShell ;;
        kafka-delete-records) echo org.apache.kafka.tools.DeleteRecordsCommand ;;
        kafka-transactions) echo org.apache.kafka.tools.TransactionsCommand ;;
        kafka-producer-perf-test) echo org.apache.kafka.tools.ProducerPerformance ;;
        kafka-consumer-perf-test) echo org.apache.kafka.tools.ConsumerPerformance ;;
        kafka-storage) echo kafka.tools.StorageTool ;;
        *) echo "$1" ;;
    esac
}

java_run() {
    local cp
    cp="$(classpath)"
    # shellcheck disable=SC2086
    exec java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g} -XX:+UseG1GC -Djava.awt.headless=true \
        -Dlog4j2.level=WARN -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
        -cp "$cp" "$@"
}

format() {
    local dir="$1" port="$2"
    local controller_port="${3:-$((port + 1))}"
    mkdir -p "$dir/logs"
    cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/logs
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
auto.create.topics.enable=true
${KAFKA_EXTRA_PROPERTIES:-}
EOF
    local cluster_id
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    (java_run kafka.tools.StorageTool format --standalone --cluster-id="$cluster_id" \
        -c "$dir/server.properties" --ignore-formatted) >"$dir/format.log" 2>&1 || {
        cat "$dir/format.log" >&2
        exit 1
    }
}

run() {
    local dir="$1"
    local pin=()
    if [ -n "${KAFKA_CPUS:-}" ]; then pin=(taskset -c "$KAFKA_CPUS"); fi
    local cp
    cp="$(classpath)"
    # shellcheck disable=SC2086
    exec "${pin[@]}" java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g} -XX:+UseG1GC -Djava.awt.headless=true \
        -Dkafka.logs.dir="$dir" -cp "$cp" kafka.Kafka "$dir/server.properties"
}

command="${1:-}"
shift || true
case "$command" in
    classpath) classpath ;;
    format) format "$1" "$2" "${3:-}" ;;
    run) run "$(cd "$1" && pwd)" ;;
    start)
        port="${1:-9092}"
        dir="$(mkdir -p "${2:-./kafka-data}" && cd "${2:-./kafka-data}" && pwd)"
        [ -f "$dir/server.properties" ] || format "$dir" "$port"
        classpath >/dev/null
        nohup "$0" run "$dir" >"$dir/kafka.out" 2>&1 &
        echo $! >"$dir/kafka.pid"
        for _ in $(seq 1 600); do
            if grep -q "Kafka Server started" "$dir/kafka.out" 2>/dev/null; then
                echo "Apache Kafka serving on 127.0.0.1:$port (data in $dir, pid $(cat "$dir/kafka.pid"))"
                exit 0
            fi
            if ! kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null; then
                tail -50 "$dir/kafka.out" >&2
                exit 1
            fi
            sleep 0.1
        done
        echo "Kafka did not start within 60 s; see $dir/kafka.out" >&2
        exit 1
        ;;
    stop)
        dir="${1:-./kafka-data}"
        pid="$(cat "$dir/kafka.pid")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        ;;
    tool)
        class="$(tool_class "$1")"
        shift
        # The console producer reads its records from standard input.
        if [ -n "${KAFKA_TOOL_STDIN:-}" ]; then exec <"$KAFKA_TOOL_STDIN"; fi
        java_run "$class" "$@"
        ;;
    *)
        sed -n '2,24p' "$0" >&2
        exit 2
        ;;
esac
