#!/usr/bin/env python3
"""Checks the result of transactions_ctp_app.py runs (confluent-kafka).

Usage: transactions_ctp_verify.py HOST:PORT INPUT OUTPUT GROUP COUNT ABORTED_MIN

INPUT holds COUNT records, record i in partition i % 2 with key
b"in-%04d" % i. Checks that:
  * OUTPUT read with isolation.level=read_committed holds each input record
    transformed exactly once: per partition, the transformed input records
    of that partition in input order, nothing else, no empty record;
  * OUTPUT read with read_uncommitted holds at least COUNT + ABORTED_MIN
    records (the killed instances' open transactions were written, then
    aborted), each of them a transformed input record;
  * GROUP's committed offsets of INPUT are at INPUT's high watermarks.

Exits 0 on success, 1 on any mismatch, 2 on bad usage, 3 when
confluent-kafka is missing. Every wait is bounded.
"""

import os
import sys
import time

PARTITIONS = 2
TIMEOUT_S = 90
QUIET_S = 3


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def key_of(i):
    return f"in-{i:04d}".encode()


def value_of(i):
    return f"input record {i:04d}".encode()


def transformed(value):
    return b"transformed(" + value + b")"


def reader(bootstrap, isolation):
    from confluent_kafka import Consumer

    return Consumer({
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "client.id": f"weir-python-ctp-verify-{isolation}",
        # Required by the client; never joined: partitions are assigned.
        "group.id": f"weir-python-ctp-verify-{os.getpid()}",
        "enable.auto.commit": False,
        "auto.offset.reset": "error",
        "enable.partition.eof": False,
        "isolation.level": isolation,
    })


def read_all(bootstrap, topic, isolation, stop):
    """Reads from offset 0 until stop(records) holds, then QUIET_S more
    seconds; returns [(partition, offset, key, value)]."""
    from confluent_kafka import TopicPartition

    consumer = reader(bootstrap, isolation)
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    records = []
    errors = []
    deadline = time.monotonic() + TIMEOUT_S
    quiet_until = None
    while True:
        now = time.monotonic()
        if quiet_until is None and stop(records):
            quiet_until = now + QUIET_S
        if quiet_until is not None and now > quiet_until:
            break
        if now > deadline:
            fail(f"{isolation} read of {topic}: {len(records)} records after {TIMEOUT_S} s; "
                 f"client errors: {errors[:10]}")
        message = consumer.poll(0.2)
        if message is None:
            continue
        if message.error():
            errors.append(message.error())
            continue
        if message.value() is None or message.key() is None:
            fail(f"{isolation}: record without key or value at {message.partition()}/{message.offset()} "
                 "(a control record delivered to the application?)")
        records.append((message.partition(), message.offset(), message.key(), message.value()))
    consumer.close()
    return records


def main():
    if len(sys.argv) != 7:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    bootstrap, input_topic, output_topic, group = sys.argv[1:5]
    count, aborted_min = int(sys.argv[5]), int(sys.argv[6])
    try:
        from confluent_kafka import Consumer, TopicPartition
    except ImportError as error:
        print(f"confluent-kafka is not installed ({error})", file=sys.stderr)
        sys.exit(3)

    committed = read_all(bootstrap, output_topic, "read_committed", lambda records: len(records) >= count)
    for partition in range(PARTITIONS):
        got = [(key, value) for (p, _, key, value) in committed if p == partition]
        wanted = [(key_of(i), transformed(value_of(i))) for i in range(partition, count, PARTITIONS)]
        if got != wanted:
            first = next((n for n, (a, b) in enumerate(zip(got, wanted)) if a != b), min(len(got), len(wanted)))
            fail(f"read_committed output partition {partition}: {len(got)} records, expected {len(wanted)}; "
                 f"first difference at index {first}: got {got[first:first + 3]}, "
                 f"expected {wanted[first:first + 3]}")
    print(f"read_committed output: each of {count} input records exactly once, in order", flush=True)

    # read_uncommitted: everything up to the high watermark, markers skipped.
    probe = reader(bootstrap, "read_uncommitted")
    highs = [probe.get_watermark_offsets(TopicPartition(output_topic, p), timeout=30, cached=False)[1]
             for p in range(PARTITIONS)]
    probe.close()

    def at_end(records):
        last = {}
        for (p, offset, _, _) in records:
            last[p] = offset
        # The last data record of a partition is followed at most by its
        # final marker.
        return all(last.get(p, -1) >= highs[p] - 2 for p in range(PARTITIONS))

    everything = read_all(bootstrap, output_topic, "read_uncommitted", at_end)
    valid = {transformed(value_of(i)) for i in range(count)}
    foreign = [r for r in everything if r[3] not in valid]
    if foreign:
        fail(f"read_uncommitted output holds records that are no transformed input: {foreign[:5]}")
    if len(everything) < count + aborted_min:
        fail(f"read_uncommitted output holds {len(everything)} records, expected at least "
             f"{count} + {aborted_min} from the killed instances' open transactions")
    print(f"read_uncommitted output: {len(everything)} records ({len(everything) - count} aborted)", flush=True)

    checker = Consumer({
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "group.id": group,
        "enable.auto.commit": False,
    })
    committed_offsets = checker.committed([TopicPartition(input_topic, p) for p in range(PARTITIONS)],
                                          timeout=30)
    got = [(tp.partition, tp.offset) for tp in committed_offsets]
    wanted = [(p, len(range(p, count, PARTITIONS))) for p in range(PARTITIONS)]
    if got != wanted:
        fail(f"group {group} committed offsets of {input_topic}: {got}, expected {wanted}")
    checker.close()
    print(f"group {group} committed offsets at the end of the input: {got}", flush=True)


if __name__ == "__main__":
    main()
