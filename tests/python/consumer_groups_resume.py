#!/usr/bin/env python3
"""kafka-python: a group commits, the broker restarts, a new member resumes
exactly at the committed offsets.

Usage: consumer_groups_resume.py HOST:PORT TOPIC commit|resume

TOPIC must exist with 2 partitions. The driver (tests/python_consumer_groups.rs)
runs the `commit` phase, restarts the broker, then runs the `resume` phase.

commit: produces 100 records to partition 0 and 37 to partition 1 (key
        "P-OFFSET"), lets a group member process at least the first 40 / 17
        (in order from offset 0), commits exactly 40 / 17 synchronously,
        checks the group's committed offsets and closes.
resume: checks the committed offsets are still 40 / 17, then a new member of
        the group must receive exactly partition 0's offsets 40..99 and
        partition 1's 17..36, in order, starting at the committed offsets, and
        nothing else.

Exits 0 on success, 1 on any failure, 2 on bad usage, 3 when kafka-python is
missing. Every wait is bounded.
"""

import sys
import time

from group_support import fail

try:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.structs import OffsetAndMetadata
except ImportError as import_error:
    print(f"kafka-python is not installed ({import_error}); run the README's test command, "
          "./scripts/test.sh, which installs it (pip install -r tests/python/requirements.txt)",
          file=sys.stderr)
    sys.exit(3)

GROUP = "py-resume-group"
TOTALS = {0: 100, 1: 37}
COMMITS = {0: 40, 1: 17}
TIMEOUT_S = 90


def key_of(partition, offset):
    return f"{partition}-{offset}".encode()


def group_consumer(bootstrap, client_id):
    return KafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP, client_id=client_id,
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         session_timeout_ms=10000, heartbeat_interval_ms=1000,
                         fetch_max_wait_ms=100, request_timeout_ms=30000)


def check_committed(consumer, topic, when):
    for partition, expected in COMMITS.items():
        committed = consumer.committed(TopicPartition(topic, partition))
        if committed != expected:
            fail(f"{when}: partition {partition} committed offset {committed}, expected {expected}")


def commit_phase(bootstrap, topic):
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, retries=0,
                             request_timeout_ms=30000, enable_idempotence=False)
    futures = [(p, i, producer.send(topic, key=key_of(p, i), value=f"v{i}".encode(), partition=p))
               for p, count in TOTALS.items() for i in range(count)]
    producer.flush(timeout=60)
    for partition, i, future in futures:
        metadata = future.get(timeout=30)
        if (metadata.partition, metadata.offset) != (partition, i):
            fail(f"record {partition}-{i} acked at {metadata.partition}/{metadata.offset}")
    producer.close(timeout=10)

    consumer = group_consumer(bootstrap, "py-resume-first")
    consumer.subscribe([topic])
    next_offset = {p: 0 for p in TOTALS}
    deadline = time.monotonic() + TIMEOUT_S
    while any(next_offset[p] < COMMITS[p] for p in TOTALS):
        if time.monotonic() > deadline:
            fail(f"first member reached only {next_offset}, needs {COMMITS}")
        for tp, records in consumer.poll(timeout_ms=200).items():
            for record in records:
                if record.offset != next_offset[tp.partition]:
                    fail(f"partition {tp.partition}: offset {record.offset}, expected "
                         f"{next_offset[tp.partition]} (a new group starts at the earliest offset)")
                next_offset[tp.partition] += 1
    consumer.commit({TopicPartition(topic, p): OffsetAndMetadata(offset, "", -1)
                     for p, offset in COMMITS.items()})
    check_committed(consumer, topic, "right after the commit")
    consumer.close()
    print(f"ok: committed {COMMITS}")


def resume_phase(bootstrap, topic):
    consumer = group_consumer(bootstrap, "py-resume-second")
    check_committed(consumer, topic, "after the broker restart")
    consumer.subscribe([topic])
    received = {p: [] for p in TOTALS}
    wanted = sum(TOTALS[p] - COMMITS[p] for p in TOTALS)
    deadline = time.monotonic() + TIMEOUT_S
    while sum(len(offsets) for offsets in received.values()) < wanted:
        if time.monotonic() > deadline:
            fail(f"second member received {[(p, o[:1], len(o)) for p, o in received.items()]}, "
                 f"wants offsets {COMMITS}..{TOTALS}")
        for tp, records in consumer.poll(timeout_ms=200).items():
            for record in records:
                partition = tp.partition
                expected = COMMITS[partition] + len(received[partition])
                if record.offset != expected:
                    fail(f"partition {partition}: got offset {record.offset}, expected {expected} "
                         f"(resume at the committed offset {COMMITS[partition]}, in order)")
                if record.key != key_of(partition, expected):
                    fail(f"partition {partition} offset {expected}: key {record.key!r}")
                received[partition].append(record.offset)
    extra_deadline = time.monotonic() + 1.0
    while time.monotonic() < extra_deadline:
        for tp, records in consumer.poll(timeout_ms=200).items():
            if records:
                fail(f"unexpected records after everything was read: {tp} offset {records[0].offset}")
    consumer.close()
    print(f"ok: resumed at {COMMITS}, read up to {TOTALS}")


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in ("commit", "resume"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    bootstrap, topic, phase = sys.argv[1:]
    if phase == "commit":
        commit_phase(bootstrap, topic)
    else:
        resume_phase(bootstrap, topic)


if __name__ == "__main__":
    main()
