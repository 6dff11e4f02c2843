#!/usr/bin/env python3
"""Transactional produce and read_committed fetch throughput against a
running broker, measured with confluent-kafka (librdkafka).

Produce: MESSAGES records of VALUE_BYTES to a fresh 4-partition topic,
(a) idempotent, acks=all, no transactions (the baseline), (b) in
transactions of 100 records, (c) in transactions of 1000 records. Each
transaction touches every partition: AddPartitionsToTxn, EndTxn and 4
markers (each fdatasync'ed) on top of the data.
Consume: the topic written in (c), from offset 0, by a read_committed and by
a read_uncommitted consumer.
Every mode runs RUNS times, alternating; medians are printed.

    python3 scripts/bench_transactions.py BOOTSTRAP [MESSAGES=200000] [VALUE_BYTES=1024] [RUNS=3]

(The rust rdkafka producer was tried first: its commit_transaction waits on
a 100 ms poll step, which measured the client, not the broker.)
"""
import os
import statistics
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 4
TIMEOUT_S = 30


def create_topic(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
        future.result()


def produce_run(bootstrap, topic, messages, value_bytes, txn_size, txn_id):
    config = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "linger.ms": 5,
        "queue.buffering.max.messages": 1000000,
    }
    if txn_size:
        config["transactional.id"] = txn_id
    producer = Producer(config)
    if txn_size:
        producer.init_transactions(TIMEOUT_S)
    value = b"v" * value_bytes
    failures = []

    def delivered(error, _message):
        if error is not None:
            failures.append(error)

    started = time.monotonic()
    chunk = txn_size or messages
    sent = 0
    while sent < messages:
        if txn_size:
            producer.begin_transaction()
        for _ in range(min(chunk, messages - sent)):
            while True:
                try:
                    producer.produce(topic, value=value, key=str(sent), on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.001)
            sent += 1
        if txn_size:
            producer.commit_transaction(TIMEOUT_S)
    producer.flush(TIMEOUT_S)
    elapsed = time.monotonic() - started
    if failures:
        raise SystemExit(f"{len(failures)} deliveries failed, first: {failures[0]}")
    return messages / elapsed


def consume_run(bootstrap, topic, messages, isolation):
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"txn-bench-{isolation}-{os.getpid()}",
        "isolation.level": isolation,
        "enable.auto.commit": False,
    })
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    started = time.monotonic()
    received = 0
    while received < messages:
        batch = consumer.consume(num_messages=10000, timeout=TIMEOUT_S)
        if not batch:
            raise SystemExit(f"nothing for {TIMEOUT_S} s after {received} records")
        for message in batch:
            if message.error():
                raise SystemExit(f"consume: {message.error()}")
        received += len(batch)
    elapsed = time.monotonic() - started
    consumer.close()
    if received != messages:
        raise SystemExit(f"read {received} records, expected {messages}")
    return messages / elapsed


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    bootstrap = sys.argv[1]
    messages = int(sys.argv[2]) if len(sys.argv) > 2 else 200000
    value_bytes = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    tag = os.getpid()
    modes = [("idempotent", None), ("txn-100", 100), ("txn-1000", 1000)]
    produced = {name: [] for name, _ in modes}
    consumed = {"read_committed": [], "read_uncommitted": []}
    for run in range(runs):
        for name, txn_size in modes:
            topic = f"txn-bench-{tag}-{run}-{name}"
            create_topic(bootstrap, topic)
            rate = produce_run(bootstrap, topic, messages, value_bytes, txn_size, f"{topic}-producer")
            print(f"run {run} produce {name:>10}: {rate:9.0f} msgs/s", flush=True)
            produced[name].append(rate)
            if txn_size == 1000:
                for isolation in consumed:
                    rate = consume_run(bootstrap, topic, messages, isolation)
                    print(f"run {run} consume {isolation:>16}: {rate:9.0f} msgs/s", flush=True)
                    consumed[isolation].append(rate)
    mb = lambda rate: rate * value_bytes / 1e6
    print(f"\nmedians of {runs} runs, {messages} x {value_bytes} B, {PARTITIONS} partitions:")
    baseline = statistics.median(produced["idempotent"])
    for name, _ in modes:
        rate = statistics.median(produced[name])
        print(f"produce {name:>10}: {rate:9.0f} msgs/s {mb(rate):7.1f} MB/s ({rate / baseline:.2f}x idempotent)")
    committed = statistics.median(consumed["read_committed"])
    uncommitted = statistics.median(consumed["read_uncommitted"])
    print(f"consume read_committed:   {committed:9.0f} msgs/s {mb(committed):7.1f} MB/s "
          f"({committed / uncommitted:.2f}x read_uncommitted)")
    print(f"consume read_uncommitted: {uncommitted:9.0f} msgs/s {mb(uncommitted):7.1f} MB/s")


if __name__ == "__main__":
    main()
