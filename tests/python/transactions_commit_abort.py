#!/usr/bin/env python3
"""confluent-kafka transactions against a running weir broker.

Usage: transactions_commit_abort.py HOST:PORT TOPIC FENCING_TOPIC

TOPIC must exist with 2 partitions, FENCING_TOPIC with 1; both empty.

1. One transactional producer runs three transactions over both partitions
   of TOPIC, RECORDS records per partition each: commit, abort, commit.
   Every delivery report must name the offset the record must have (one
   offset per control marker separates transactions). A read_committed
   consumer must get exactly the committed records, in order, at those
   offsets; a read_uncommitted one all of them; neither a record without
   key or value (a control record).
2. Producer A opens a transaction on FENCING_TOPIC and writes to it;
   producer B with the same transactional.id initialises (fencing A and
   aborting its transaction) and commits its own. A's next record and its
   commit must fail, the commit with a fatal error (fenced). read_committed
   must get B's records only.

Exits 0 on success, 1 on any mismatch, 2 on bad usage, 3 when
confluent-kafka is missing. Every wait is bounded.
"""

import os
import sys
import time

RECORDS = 5
PARTITIONS = 2
TIMEOUT_S = 90
QUIET_S = 3
TXN_CALL_TIMEOUT_S = 60


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def transactional_producer(bootstrap, transactional_id):
    from confluent_kafka import Producer

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "client.id": "weir-python-transactions",
        "transactional.id": transactional_id,
        "transaction.timeout.ms": 60000,
        "linger.ms": 5,
    })
    producer.init_transactions(TXN_CALL_TIMEOUT_S)
    return producer


def send(producer, topic, records):
    """Produces [(partition, key, value)] and flushes; returns one
    (error, partition, offset) per record, in order."""
    reports = {}

    def on_delivery(n):
        def callback(error, message):
            reports[n] = (error, message.partition(), message.offset())
        return callback

    for n, (partition, key, value) in enumerate(records):
        producer.produce(topic, key=key, value=value, partition=partition, on_delivery=on_delivery(n))
    remaining = producer.flush(TXN_CALL_TIMEOUT_S)
    if remaining:
        fail(f"{remaining} records undelivered after {TXN_CALL_TIMEOUT_S} s")
    if sorted(reports) != list(range(len(records))):
        fail(f"delivery reports for {sorted(reports)}, expected one for each of {len(records)} records")
    return [reports[n] for n in range(len(records))]


def read(bootstrap, topic, partitions, isolation, count):
    """Reads from offset 0 until `count` records arrived, then QUIET_S more
    seconds; returns [(partition, offset, key, value)]."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "group.id": f"weir-python-txn-check-{os.getpid()}",
        "enable.auto.commit": False,
        "auto.offset.reset": "error",
        "enable.partition.eof": False,
        "isolation.level": isolation,
    })
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    records = []
    errors = []
    deadline = time.monotonic() + TIMEOUT_S
    quiet_until = None
    while quiet_until is None or time.monotonic() < quiet_until:
        if quiet_until is None and len(records) >= count:
            quiet_until = time.monotonic() + QUIET_S
        if time.monotonic() > deadline:
            fail(f"{isolation} read of {topic}: {len(records)} of {count} records; errors {errors[:10]}")
        message = consumer.poll(0.2)
        if message is None:
            continue
        if message.error():
            errors.append(message.error())
            continue
        if message.key() is None or message.value() is None:
            fail(f"{isolation}: record without key or value at {message.partition()}/{message.offset()}")
        records.append((message.partition(), message.offset(), message.key(), message.value()))
    consumer.close()
    if len(records) != count:
        fail(f"{isolation} read of {topic}: {len(records)} records, expected exactly {count}: "
             f"{[(p, o, k) for (p, o, k, _) in records]}")
    return sorted(records)


def commit_abort_commit(bootstrap, topic):
    from confluent_kafka import KafkaException

    producer = transactional_producer(bootstrap, "py-txn-commit-abort")
    outcomes = ["commit", "abort", "commit"]
    expected = {"read_committed": [], "read_uncommitted": []}
    for transaction, outcome in enumerate(outcomes):
        records = [(p, f"t{transaction}-{outcome}-p{p}-{i}".encode(), f"value {transaction} {p} {i}".encode())
                   for p in range(PARTITIONS) for i in range(RECORDS)]
        try:
            producer.begin_transaction()
            reports = send(producer, topic, records)
            for (partition, key, value), (error, got_partition, offset) in zip(records, reports):
                index = int(key.decode().rsplit("-", 1)[1])
                wanted_offset = transaction * (RECORDS + 1) + index
                if error is not None or (got_partition, offset) != (partition, wanted_offset):
                    fail(f"delivery of {key!r}: ({error}, {got_partition}, {offset}), "
                         f"expected (None, {partition}, {wanted_offset})")
                expected["read_uncommitted"].append((partition, wanted_offset, key, value))
                if outcome == "commit":
                    expected["read_committed"].append((partition, wanted_offset, key, value))
            if outcome == "commit":
                producer.commit_transaction(TXN_CALL_TIMEOUT_S)
            else:
                producer.abort_transaction(TXN_CALL_TIMEOUT_S)
        except KafkaException as error:
            fail(f"transaction {transaction} ({outcome}): {error}")
    for isolation, wanted in expected.items():
        got = read(bootstrap, topic, PARTITIONS, isolation, len(wanted))
        if got != sorted(wanted):
            fail(f"{isolation}: got {[(p, o, k) for (p, o, k, _) in got]}, "
                 f"expected {[(p, o, k) for (p, o, k, _) in sorted(wanted)]}")
        print(f"{isolation}: exactly the {len(wanted)} expected records at their offsets", flush=True)


def fencing(bootstrap, topic):
    from confluent_kafka import KafkaError, KafkaException

    first = transactional_producer(bootstrap, "py-txn-fencing")
    first.begin_transaction()
    reports = send(first, topic, [(0, f"first-{i}".encode(), b"first") for i in range(3)])
    if any(error is not None for (error, _, _) in reports):
        fail(f"first producer's records: {reports}")

    second = transactional_producer(bootstrap, "py-txn-fencing")
    second.begin_transaction()
    records = [(0, f"second-{i}".encode(), b"second") for i in range(3)]
    reports = send(second, topic, records)
    if [(error, offset) for (error, _, offset) in reports] != [(None, 4), (None, 5), (None, 6)]:
        fail(f"second producer's records (first transaction aborted by a marker at 3): {reports}")
    second.commit_transaction(TXN_CALL_TIMEOUT_S)

    # The fenced producer's next record fails: confluent-kafka raises the
    # resulting fatal error from flush() (no delivery callback: the client
    # cannot run one while that error is pending).
    first.produce(topic, key=b"first-late", value=b"first", partition=0)
    try:
        remaining = first.flush(TXN_CALL_TIMEOUT_S)
        fail(f"flush of a fenced producer's record returned normally ({remaining} left)")
    except KafkaException as exception:
        late_error = exception.args[0]
        print(f"fenced producer: flush raised {late_error}", flush=True)
        if not late_error.fatal():
            fail(f"record of a fenced producer: expected a fatal error, got {late_error}")
    try:
        first.commit_transaction(TXN_CALL_TIMEOUT_S)
        fail("commit of a fenced producer succeeded")
    except KafkaException as exception:
        error = exception.args[0]
        print(f"fenced producer: commit error {error} "
              f"(fatal {error.fatal()}, code {error.code()})", flush=True)
        if not error.fatal():
            fail(f"commit of a fenced producer: expected a fatal error, got {error}")
        if error.code() not in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED):
            fail(f"commit of a fenced producer: expected a fenced error, got {error}")

    got = read(bootstrap, topic, 1, "read_committed", 3)
    if [(o, k) for (_, o, k, _) in got] != [(4 + i, f"second-{i}".encode()) for i in range(3)]:
        fail(f"read_committed after fencing: {got}")
    print("fencing: the first producer is fenced, only the second's records are committed", flush=True)


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    bootstrap, topic, fencing_topic = sys.argv[1:4]
    try:
        import confluent_kafka  # noqa: F401
    except ImportError as error:
        print(f"confluent-kafka is not installed ({error})", file=sys.stderr)
        sys.exit(3)
    commit_abort_commit(bootstrap, topic)
    fencing(bootstrap, fencing_topic)


if __name__ == "__main__":
    main()
