#!/usr/bin/env python3
"""A consume-transform-produce application with confluent-kafka transactions.

Usage: transactions_ctp_app.py HOST:PORT INPUT OUTPUT GROUP TRANSACTIONAL_ID MODE

Consumes INPUT as a member of GROUP (isolation.level=read_committed,
enable.auto.commit=false), and for every batch of up to BATCH_RECORDS
records runs one transaction: produce each record transformed to OUTPUT
(same partition, same key, value b"transformed(" + value + b")"), send the
consumer's positions to the transaction (send_offsets_to_transaction),
commit.

MODE:
  slow    after writing and flushing a batch, print "open <records>" and sleep
          PAUSE_S before sending offsets and committing, so that whoever runs
          this can SIGKILL it while a transaction is open with its records
          written. Runs until killed (or the input is exhausted).
  finish  no pause; exit 0 once the input is exhausted (every assigned
          partition's position is at its high watermark and nothing new
          arrives).

After every commit prints "committed <records committed by this process>".
Exits 0 when done, 1 on any client error, 2 on bad usage, 3 when
confluent-kafka is missing. Every wait is bounded.
"""

import sys
import time

BATCH_RECORDS = 10
PAUSE_S = 1.5
RUN_TIMEOUT_S = 240
TXN_CALL_TIMEOUT_S = 60


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def transformed(value):
    return b"transformed(" + value + b")"


def main():
    if len(sys.argv) != 7 or sys.argv[6] not in ("slow", "finish"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    bootstrap, input_topic, output_topic, group, transactional_id, mode = sys.argv[1:7]
    try:
        from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
    except ImportError as error:
        print(f"confluent-kafka is not installed ({error}); pip install -r tests/python/requirements.txt",
              file=sys.stderr)
        sys.exit(3)

    deadline = time.monotonic() + RUN_TIMEOUT_S
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "client.id": f"weir-python-ctp-{mode}",
        "transactional.id": transactional_id,
        "transaction.timeout.ms": 60000,
        "linger.ms": 5,
    })
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "client.id": f"weir-python-ctp-{mode}",
        "group.id": group,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "max.poll.interval.ms": 30000,
        "partition.assignment.strategy": "range",
    })
    try:
        # First fence any earlier instance (its open transaction is
        # aborted), then join the group.
        producer.init_transactions(TXN_CALL_TIMEOUT_S)
    except KafkaException as error:
        fail(f"init_transactions: {error}")
    print("initialised", flush=True)
    consumer.subscribe([input_topic])

    committed = 0
    idle_since = time.monotonic()
    while True:
        if time.monotonic() > deadline:
            fail(f"ran {RUN_TIMEOUT_S} s without finishing; committed {committed}")
        messages = consumer.consume(num_messages=BATCH_RECORDS, timeout=0.5)
        batch = []
        for message in messages:
            if message.error():
                print(f"consumer error (not fatal here): {message.error()}", file=sys.stderr, flush=True)
                continue
            batch.append(message)
        if not batch:
            if mode == "finish" and idle_since + 3 < time.monotonic() and input_exhausted(consumer,
                                                                                         TopicPartition):
                print(f"done committed={committed}", flush=True)
                break
            continue
        idle_since = time.monotonic()
        try:
            producer.begin_transaction()
            for message in batch:
                while True:
                    try:
                        producer.produce(output_topic, key=message.key(), value=transformed(message.value()),
                                         partition=message.partition())
                        break
                    except BufferError:
                        producer.poll(0.05)
            if mode == "slow":
                remaining = producer.flush(TXN_CALL_TIMEOUT_S)
                if remaining:
                    fail(f"{remaining} records not delivered within {TXN_CALL_TIMEOUT_S} s")
                print(f"open {len(batch)}", flush=True)
                time.sleep(PAUSE_S)
            positions = consumer.position(consumer.assignment())
            producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(),
                                                 TXN_CALL_TIMEOUT_S)
            producer.commit_transaction(TXN_CALL_TIMEOUT_S)
        except KafkaException as error:
            fail(f"transaction of {len(batch)} records failed: {error}")
        committed += len(batch)
        print(f"committed {committed}", flush=True)
    consumer.close()


def input_exhausted(consumer, topic_partition_class):
    """True when the consumer has an assignment and every assigned
    partition's position is at its high watermark."""
    assignment = consumer.assignment()
    if not assignment:
        return False
    for position in consumer.position(assignment):
        _, high = consumer.get_watermark_offsets(
            topic_partition_class(position.topic, position.partition), timeout=30, cached=False)
        if position.offset != high:
            return False
    return True


if __name__ == "__main__":
    main()
