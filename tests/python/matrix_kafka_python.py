#!/usr/bin/env python3
"""kafka-python (2.x or 3.x, whichever `import kafka` finds) against a broker:
create a topic, produce keyed records with headers, consume them in a group,
commit, and, after the broker restarted, resume exactly at the commits.

Usage: matrix_kafka_python.py HOST:PORT TOPIC GROUP first|resume MAJOR

MAJOR is the kafka-python major version that must be imported ("2" or "3";
tests/clients_python.rs points PYTHONPATH at tests/python/.deps/kafka-python-2
for 2). The records are those of matrix_records.py.

first:  creates TOPIC with 3 partitions (KafkaAdminClient), produces the first
        batch with the producer's defaults but acks=all (offsets of every
        acknowledgement checked), reads it in GROUP from the earliest offset
        (exact records, in order per partition, nothing more), commits, and
        checks the committed offsets and the end offsets.
resume: (after the driver restarted the broker) produces the second batch,
        checks GROUP's committed offsets survived, then a new member of GROUP
        must receive exactly the second batch, starting at the commits;
        commits again and checks; offsets_for_times answers exactly.

Exits 0 on success, 1 on any failure, 2 on bad usage, 3 when kafka-python is
missing. Every wait is bounded.
"""

import sys
import time

from matrix_records import (COUNTS, FIRST, PARTITIONS, SECOND, Deadline, Expectation,
                            base_timestamp_ms, check_version, end_offset, fail,
                            first_offset, records_to_send)

try:
    import kafka
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic
except ImportError as import_error:
    print(f"kafka-python is not installed ({import_error}); run tests/python/install.sh",
          file=sys.stderr)
    sys.exit(3)

# How long a consumer keeps polling after the last expected record, to catch
# records that should not be there.
DRAIN_S = 1.0


def create_topic(bootstrap, topic):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="matrix-kafka-python-admin",
                             request_timeout_ms=30000)
    admin.create_topics([NewTopic(name=topic, num_partitions=PARTITIONS, replication_factor=1)])
    admin.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             request_timeout_ms=30000)
    deadline = Deadline(f"topic {topic} showing {PARTITIONS} partitions")
    while True:
        partitions = consumer.partitions_for_topic(topic)
        if partitions == set(range(PARTITIONS)):
            break
        deadline.check(f"partitions {partitions}")
        consumer.poll(timeout_ms=200)
    consumer.close()


def produce(bootstrap, topic, batch):
    """Sends `batch` (the producer's defaults, acks=all) and checks every
    acknowledged (partition, offset). Returns the batch's base timestamp."""
    base_ms = base_timestamp_ms(batch)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=30000,
                             client_id=f"matrix-kafka-python-producer-{batch}")
    sent = [(partition, offset, producer.send(topic, key=key, value=value, headers=headers,
                                              partition=partition, timestamp_ms=timestamp_ms))
            for partition, offset, key, value, headers, timestamp_ms in records_to_send(batch, base_ms)]
    producer.flush(timeout=60)
    for partition, offset, future in sent:
        metadata = future.get(timeout=30)
        if (metadata.partition, metadata.offset) != (partition, offset):
            fail(f"{batch} record for {partition}/{offset} acknowledged at "
                 f"{metadata.partition}/{metadata.offset}")
    producer.close(timeout=10)
    print(f"ok: produced the {batch} batch {COUNTS[batch]}")
    return base_ms


def group_consumer(bootstrap, group, client_id):
    return KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, client_id=client_id,
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         session_timeout_ms=10000, heartbeat_interval_ms=1000,
                         fetch_max_wait_ms=100, request_timeout_ms=30000)


def consume_exactly(consumer, expectation):
    """Polls until `expectation` is complete, then DRAIN_S more (anything
    arriving then fails)."""
    deadline = Deadline(f"consuming the {expectation.batch} batch")
    while not expectation.complete():
        deadline.check(f"received per partition {expectation.progress()}")
        for records in consumer.poll(timeout_ms=200).values():
            for record in records:
                expectation.accept(record)
    drain_until = time.monotonic() + DRAIN_S
    while time.monotonic() < drain_until:
        for records in consumer.poll(timeout_ms=200).values():
            for record in records:
                expectation.accept(record)


def check_committed(consumer, topic, batch, when):
    for p in range(PARTITIONS):
        committed = consumer.committed(TopicPartition(topic, p))
        if committed != end_offset(batch, p):
            fail(f"{when}: {topic}/{p} committed offset {committed}, expected {end_offset(batch, p)}")


def check_end_offsets(consumer, topic, batch):
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    beginning = consumer.beginning_offsets(partitions)
    end = consumer.end_offsets(partitions)
    for tp in partitions:
        if (beginning[tp], end[tp]) != (0, end_offset(batch, tp.partition)):
            fail(f"{tp}: offsets {beginning[tp]}..{end[tp]}, expected 0..{end_offset(batch, tp.partition)}")


def first_phase(bootstrap, topic, group):
    create_topic(bootstrap, topic)
    base_ms = produce(bootstrap, topic, FIRST)
    consumer = group_consumer(bootstrap, group, "matrix-kafka-python-first")
    consumer.subscribe([topic])
    consume_exactly(consumer, Expectation(topic, FIRST, base_ms))
    consumer.commit()
    check_committed(consumer, topic, FIRST, "right after the commit")
    check_end_offsets(consumer, topic, FIRST)
    consumer.close()
    print(f"ok: group {group} read and committed the {FIRST} batch")


def resume_phase(bootstrap, topic, group):
    base_ms = produce(bootstrap, topic, SECOND)
    consumer = group_consumer(bootstrap, group, "matrix-kafka-python-resume")
    check_committed(consumer, topic, FIRST, "after the broker restart")
    consumer.subscribe([topic])
    consume_exactly(consumer, Expectation(topic, SECOND, base_ms))
    consumer.commit()
    check_committed(consumer, topic, SECOND, "after the second commit")
    check_end_offsets(consumer, topic, SECOND)
    # The first record at or after a time: the second record of the second
    # batch for a time just after the first's; none after the last record.
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    found = consumer.offsets_for_times({tp: base_ms + 1 for tp in partitions})
    for tp in partitions:
        want = first_offset(SECOND, tp.partition) + 1
        if COUNTS[SECOND][tp.partition] < 2:
            want = None
        got = found[tp]
        if (got.offset if got else None) != want or (got and got.timestamp != base_ms + 1000):
            fail(f"{tp}: offsets_for_times({base_ms + 1}) gave {got}, expected offset {want}")
    after = consumer.offsets_for_times({tp: base_ms + 1000 * COUNTS[SECOND][tp.partition]
                                        for tp in partitions})
    if any(after[tp] is not None for tp in partitions):
        fail(f"offsets_for_times after the last record gave {after}, expected None everywhere")
    consumer.close()
    print(f"ok: group {group} resumed at {COUNTS[FIRST]} and read exactly the {SECOND} batch")


def main():
    if len(sys.argv) != 6 or sys.argv[4] not in ("first", "resume"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    bootstrap, topic, group, phase, major = sys.argv[1:]
    check_version(kafka, major)
    if phase == "first":
        first_phase(bootstrap, topic, group)
    else:
        resume_phase(bootstrap, topic, group)


if __name__ == "__main__":
    main()
