#!/usr/bin/env python3
"""confluent-kafka's idempotent producer against a running weir broker.

Usage: idempotent_producer.py HOST:PORT TOPIC PARTITIONS COUNT

TOPIC must exist with PARTITIONS partitions and be empty. Produces COUNT
keyed messages with enable.idempotence=True (acks=all) to explicit
partitions (message i to partition i % PARTITIONS), flushes, and checks that
every delivery report succeeded at the offset the message must have and that
the producer really ran idempotently (librdkafka's statistics show an
assigned producer id). Then reads every partition back from offset 0 with an
assign()-mode consumer and checks each message arrives exactly once, in send
order, with nothing after it.

Exits 0 on success, 1 on any mismatch, 2 on bad usage, 3 when confluent-kafka
is missing. Every wait is bounded.
"""

import json
import os
import sys
import time

TIMEOUT_S = 120


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def key_of(i):
    return f"idem-key-{i:06d}".encode()


def value_of(i, partition_count):
    # Varying lengths; the partition and per-partition sequence are readable.
    padding = "v" * (i * 13 % 300)
    return f"p{i % partition_count} seq {i // partition_count:06d} id {i:06d} {padding}".encode()


def produce(bootstrap, topic, partition_count, count, deadline):
    from confluent_kafka import KafkaException, Producer

    errors = []
    last_stats = {}

    def on_error(error):
        errors.append(error)

    def on_stats(text):
        last_stats["value"] = json.loads(text)

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "client.id": "weir-python-idempotent",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "batch.num.messages": 200,
        "compression.codec": "none",
        "message.timeout.ms": 60000,
        "statistics.interval.ms": 200,
        "error_cb": on_error,
        "stats_cb": on_stats,
    })
    reports = {}

    def on_delivery(i):
        def callback(error, message):
            if i in reports:
                fail(f"message {i}: second delivery report ({error}, {message.offset()})")
            reports[i] = (error, message.partition(), message.offset())
        return callback

    for i in range(count):
        while True:
            try:
                producer.produce(topic, key=key_of(i), value=value_of(i, partition_count),
                                 partition=i % partition_count, on_delivery=on_delivery(i))
                break
            except BufferError:
                if time.monotonic() > deadline:
                    fail("producer queue stayed full until the deadline")
                producer.poll(0.05)
            except KafkaException as error:
                fail(f"produce of message {i}: {error}")
        producer.poll(0)
    remaining = producer.flush(max(1.0, deadline - time.monotonic()))
    if remaining:
        fail(f"{remaining} messages still undelivered at the deadline; client errors: {errors[:10]}")
    # One more statistics report after the flush.
    stats_wait_until = time.monotonic() + 2
    last_stats.pop("value", None)
    while "value" not in last_stats and time.monotonic() < stats_wait_until:
        producer.poll(0.1)

    fatal = [error for error in errors if error.fatal()]
    if fatal:
        fail(f"producer raised fatal errors: {fatal}")
    if len(reports) != count:
        fail(f"{len(reports)} delivery reports for {count} messages")
    failed = {i: report for i, report in reports.items() if report[0] is not None}
    if failed:
        first = min(failed)
        fail(f"{len(failed)} messages failed, first: message {first}: {failed[first][0]}")
    for i in range(count):
        expected = (i % partition_count, i // partition_count)
        got = reports[i][1:]
        if got != expected:
            fail(f"message {i} acknowledged at (partition, offset) {got}, expected {expected}")

    eos = last_stats.get("value", {}).get("eos")
    if eos is None:
        fail(f"librdkafka statistics have no 'eos' section: the producer is not idempotent "
             f"(statistics: {str(last_stats.get('value'))[:500]})")
    if eos.get("idemp_state") != "Assigned" or eos.get("producer_id", -1) < 0:
        fail(f"idempotent producer state after the flush: {eos}")
    print(f"produced {count} messages idempotently as producer id {eos['producer_id']} "
          f"epoch {eos.get('producer_epoch')}; client errors (non-fatal): {errors[:5]}")


def consume(bootstrap, topic, partition_count, count, deadline):
    from confluent_kafka import Consumer, TopicPartition

    expected_counts = {p: len(range(p, count, partition_count)) for p in range(partition_count)}
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "client.id": "weir-python-idempotent-check",
        # Required by the client; never joined: partitions are assigned.
        "group.id": f"weir-python-idempotent-check-{os.getpid()}",
        "enable.auto.commit": False,
        "auto.offset.reset": "error",
        "enable.partition.eof": False,
    })
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partition_count)])
        received = {p: 0 for p in range(partition_count)}
        client_errors = []
        while any(received[p] < expected_counts[p] for p in received):
            if time.monotonic() > deadline:
                fail(f"consumed (per partition) {received}, expected {expected_counts}; "
                     f"client errors: {client_errors[:10]}")
            message = consumer.poll(0.2)
            if message is None:
                continue
            if message.error():
                client_errors.append(message.error())
                continue
            check_message(message, received, partition_count, expected_counts)
        # Anything more would be a duplicate past the end.
        drain_until = time.monotonic() + 1.0
        while time.monotonic() < drain_until:
            message = consumer.poll(0.1)
            if message is not None and not message.error():
                fail(f"partition {message.partition()}: unexpected message at offset "
                     f"{message.offset()} beyond the {expected_counts[message.partition()]} sent "
                     f"(value {message.value()[:40]!r})")
        for p in range(partition_count):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            if (low, high) != (0, expected_counts[p]):
                fail(f"partition {p}: watermarks ({low}, {high}), expected (0, {expected_counts[p]})")
    finally:
        consumer.close()
    print(f"read back {count} messages exactly once, in order, from {partition_count} partitions")


def check_message(message, received, partition_count, expected_counts):
    partition = message.partition()
    sequence = received[partition]
    if sequence >= expected_counts[partition]:
        fail(f"partition {partition}: message at offset {message.offset()} beyond the "
             f"{expected_counts[partition]} sent")
    if message.offset() != sequence:
        fail(f"partition {partition}: offset {message.offset()} where {sequence} was expected "
             "(offsets must be dense from 0)")
    i = sequence * partition_count + partition
    if message.key() != key_of(i) or message.value() != value_of(i, partition_count):
        fail(f"partition {partition} offset {sequence}: key {message.key()!r} value "
             f"{message.value()[:40]!r}..., expected message {i} ({key_of(i)!r}): a duplicate, "
             "a gap or a reordering")
    received[partition] = sequence + 1


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    bootstrap, topic = sys.argv[1], sys.argv[2]
    partition_count, count = int(sys.argv[3]), int(sys.argv[4])
    try:
        import confluent_kafka
    except ImportError as error:
        print(f"confluent-kafka is not installed ({error}); run the README's test command, "
              "./scripts/test.sh, which installs it (pip install -r tests/python/requirements.txt)",
              file=sys.stderr)
        sys.exit(3)
    client_version = confluent_kafka.version()
    if isinstance(client_version, tuple):  # (string, int) in older releases
        client_version = client_version[0]
    print(f"confluent-kafka {client_version}, librdkafka {confluent_kafka.libversion()[0]}")
    deadline = time.monotonic() + TIMEOUT_S
    produce(bootstrap, topic, partition_count, count, deadline)
    consume(bootstrap, topic, partition_count, count, deadline)


if __name__ == "__main__":
    main()
