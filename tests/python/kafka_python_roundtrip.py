#!/usr/bin/env python3
"""kafka-python against a running weir broker.

Usage: kafka_python_roundtrip.py HOST:PORT

Creates a 3-partition topic with KafkaAdminClient, produces 1000 keyed
messages (acks=all) to explicit partitions, reads them back with an
assign()-mode consumer from the beginning, and checks partitions, offsets,
keys and values exactly. Exits 0 on success, 1 on any mismatch, 2 on bad
usage, 3 when kafka-python is missing. Every wait is bounded.
"""

import sys
import time

TOPIC = "kafka-python-roundtrip"
PARTITION_COUNT = 3
MESSAGE_COUNT = 1000
TIMEOUT_S = 90


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def key_of(i):
    return f"py-key-{i:04d}".encode()


def value_of(i):
    # Varying lengths, every byte value, deterministic from i alone.
    return bytes((i * 31 + j) % 256 for j in range(i % 700))


def partition_of(i):
    return i % PARTITION_COUNT


def wait_for_partitions(bootstrap, deadline):
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, request_timeout_ms=30000)
    try:
        while True:
            partitions = consumer.partitions_for_topic(TOPIC)
            if partitions == set(range(PARTITION_COUNT)):
                return
            if time.monotonic() > deadline:
                fail(f"topic {TOPIC} shows partitions {partitions}, expected {PARTITION_COUNT}")
            time.sleep(0.2)
    finally:
        consumer.close()


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    bootstrap = sys.argv[1]
    try:
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition
        from kafka.admin import KafkaAdminClient, NewTopic
    except ImportError as error:
        print(f"kafka-python is not installed ({error}); run the README's test command, "
              "./scripts/test.sh, which installs it (pip install -r tests/python/requirements.txt)",
              file=sys.stderr)
        sys.exit(3)
    deadline = time.monotonic() + TIMEOUT_S

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="weir-python-test",
                             request_timeout_ms=30000)
    admin.create_topics([NewTopic(name=TOPIC, num_partitions=PARTITION_COUNT,
                                  replication_factor=1)])
    admin.close()
    wait_for_partitions(bootstrap, deadline)

    producer_options = dict(bootstrap_servers=bootstrap, acks="all", linger_ms=5, retries=0,
                            request_timeout_ms=30000)
    # Newer kafka-python defaults to an idempotent producer (InitProducerId);
    # plain acks=all produce is what this test is about.
    if "enable_idempotence" in KafkaProducer.DEFAULT_CONFIG:
        producer_options["enable_idempotence"] = False
    producer = KafkaProducer(**producer_options)
    futures = [producer.send(TOPIC, key=key_of(i), value=value_of(i), partition=partition_of(i))
               for i in range(MESSAGE_COUNT)]
    producer.flush(timeout=60)
    for i, future in enumerate(futures):
        metadata = future.get(timeout=max(1.0, deadline - time.monotonic()))
        if metadata.partition != partition_of(i) or metadata.offset != i // PARTITION_COUNT:
            fail(f"message {i} acked at {metadata.partition}/{metadata.offset}, "
                 f"expected {partition_of(i)}/{i // PARTITION_COUNT}")
    producer.close(timeout=10)

    expected = {p: [i for i in range(MESSAGE_COUNT) if partition_of(i) == p]
                for p in range(PARTITION_COUNT)}
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, request_timeout_ms=30000)
    partitions = [TopicPartition(TOPIC, p) for p in range(PARTITION_COUNT)]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    received = {p: [] for p in range(PARTITION_COUNT)}
    while sum(len(records) for records in received.values()) < MESSAGE_COUNT:
        if time.monotonic() > deadline:
            counts = {p: len(records) for p, records in received.items()}
            fail(f"timed out consuming; received per partition {counts}")
        for tp, records in consumer.poll(timeout_ms=500).items():
            received[tp.partition].extend(records)
    # Nothing beyond what was produced may show up.
    extra_deadline = time.monotonic() + 1.0
    while time.monotonic() < extra_deadline:
        for tp, records in consumer.poll(timeout_ms=200).items():
            received[tp.partition].extend(records)

    for p in range(PARTITION_COUNT):
        records = received[p]
        if len(records) != len(expected[p]):
            fail(f"partition {p}: {len(records)} records, expected {len(expected[p])}")
        for offset, (record, i) in enumerate(zip(records, expected[p])):
            if record.offset != offset:
                fail(f"partition {p}: record {offset} has offset {record.offset}")
            if record.key != key_of(i):
                fail(f"partition {p} offset {offset}: key {record.key!r}, expected {key_of(i)!r}")
            if record.value != value_of(i):
                fail(f"partition {p} offset {offset}: value differs for message {i}")
    beginning = consumer.beginning_offsets(partitions)
    end = consumer.end_offsets(partitions)
    for tp in partitions:
        if beginning[tp] != 0 or end[tp] != len(expected[tp.partition]):
            fail(f"{tp}: offsets {beginning[tp]}..{end[tp]}, expected 0..{len(expected[tp.partition])}")
    consumer.close()
    print(f"ok: {MESSAGE_COUNT} messages over {PARTITION_COUNT} partitions round-tripped")


if __name__ == "__main__":
    main()
