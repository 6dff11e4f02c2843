#!/usr/bin/env python3
"""A slow confluent-kafka consumer while retention deletes segments under it.

Usage: retention_slow_consumer.py HOST:PORT TOPIC RECORDS

TOPIC must exist, empty, with one partition, segment.bytes=1048576 and a
retention.bytes far below RECORDS KiB. Produces RECORDS records of 1 KiB
(record n holds sequence number n, acknowledged at offset n): 2 MiB, and
once retention deleted some of it, the rest in steps, while an
assign()-mode consumer (auto.offset.reset=earliest, CRC checks on,
a small prefetch) reads from offset 0 a little after each step. Then waits
until retention has moved the low watermark past the consumer's position
(unless the reader already had to jump) and reads on to the end.

Checks: no consumer error other than the broker's OFFSET_OUT_OF_RANGE (the
fetch that triggers the reset to earliest); offsets strictly increase; a
record's value is the one produced at its offset; a gap is only a jump
forward to the log start (at most the low watermark read right after it);
at least one such jump happened; the last record read is RECORDS - 1.

Exits 0 on success, 1 on any mismatch, 2 on bad usage. Every wait is bounded.
"""

import os
import sys
import time

TIMEOUT_S = 240
RECORD_BYTES = 1024
STEP_RECORDS = 512
READ_PER_STEP = 48


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def value_of(seq):
    # Every byte depends on the sequence number, so a record served at the
    # wrong offset or damaged on the way cannot pass.
    head = f"seq {seq:010d} ".encode()
    body = bytes((seq * 31 + k * 7) % 251 for k in range(RECORD_BYTES - len(head)))
    return head + body


class Reader:
    def __init__(self, bootstrap, topic, deadline):
        from confluent_kafka import Consumer, TopicPartition

        self.topic = topic
        self.deadline = deadline
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "broker.address.family": "v4",
            "client.id": "weir-retention-slow-consumer",
            # Required by the client; never joined: the partition is assigned.
            "group.id": f"weir-retention-slow-{os.getpid()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "check.crcs": True,
            # A small prefetch, so the consumer's fetch position stays close
            # to what the test has read.
            "message.max.bytes": 65536,
            "fetch.max.bytes": 65536,
            "max.partition.fetch.bytes": 32768,
            "queued.min.messages": 1,
            "queued.max.messages.kbytes": 64,
            "fetch.wait.max.ms": 100,
        })
        self.consumer.assign([TopicPartition(topic, 0, 0)])
        self.last = -1
        self.jumps = []
        self.out_of_range_errors = 0

    def low_watermark(self):
        from confluent_kafka import TopicPartition

        low, _ = self.consumer.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=30)
        return low

    def read(self, count):
        """Reads `count` records (fewer only if the deadline passes)."""
        from confluent_kafka import KafkaError

        got = 0
        while got < count:
            if time.monotonic() > self.deadline:
                fail(f"read {got} of {count} records after offset {self.last} by the deadline")
            message = self.consumer.poll(0.2)
            if message is None:
                continue
            if message.error():
                if message.error().code() == KafkaError.OFFSET_OUT_OF_RANGE:
                    self.out_of_range_errors += 1
                    continue
                fail(f"consumer error after offset {self.last}: {message.error()}")
            self.check(message)
            got += 1

    def check(self, message):
        offset = message.offset()
        if offset <= self.last:
            fail(f"offset {offset} after {self.last}: offsets must strictly increase")
        if offset != self.last + 1:
            low = self.low_watermark()
            if offset > low:
                fail(f"jump from offset {self.last} to {offset}, past the low watermark {low}: "
                     "records still in the log were skipped")
            self.jumps.append((self.last, offset, low))
        if message.value() != value_of(offset):
            fail(f"offset {offset}: value {message.value()[:24]!r}... is not record {offset}'s")
        self.last = offset


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    bootstrap, topic, records = sys.argv[1], sys.argv[2], int(sys.argv[3])
    from confluent_kafka import Producer, TopicPartition

    deadline = time.monotonic() + TIMEOUT_S
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "client.id": "weir-retention-producer",
        "acks": "all",
        # No retries: record n must land at offset n.
        "enable.idempotence": False,
        "retries": 0,
        "linger.ms": 5,
        "batch.size": 65536,
        "message.timeout.ms": 60000,
    })
    acked = {}

    def on_delivery(error, message):
        if error is not None:
            fail(f"delivery failed: {error}")
        acked[int(message.value()[4:14])] = message.offset()

    def produce(start, end):
        for seq in range(start, end):
            while True:
                try:
                    producer.produce(topic, value=value_of(seq), partition=0, on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        if producer.flush(max(1.0, deadline - time.monotonic())):
            fail("records still undelivered at the deadline")
        wrong = [(seq, acked.get(seq)) for seq in range(start, end) if acked.get(seq) != seq]
        if wrong:
            fail(f"{len(wrong)} records acknowledged at another offset than their sequence, "
                 f"first (sequence, offset): {wrong[0]}")

    reader = Reader(bootstrap, topic, deadline)
    produced = min(records, 4 * STEP_RECORDS)
    produce(0, produced)
    reader.read(READ_PER_STEP)
    # Retention is running (Kafka's first pass comes 30 s after it starts)
    # before the reader falls behind step by step.
    while reader.low_watermark() == 0:
        if time.monotonic() > deadline:
            fail("retention deleted nothing by the deadline")
        time.sleep(0.25)
    while produced < records:
        step_end = min(records, produced + STEP_RECORDS)
        produce(produced, step_end)
        produced = step_end
        reader.read(READ_PER_STEP)

    # Unless it already did, retention must overtake the reader before it
    # reads on (the prefetch is at most ~64 KiB ahead of what was read).
    position = reader.last + 1
    while not reader.jumps:
        low = reader.low_watermark()
        if low > position + 256:
            break
        if time.monotonic() > deadline:
            fail(f"low watermark {low} never passed the reader's position {position}")
        time.sleep(0.25)

    while reader.last < records - 1:
        reader.read(1)
    if not reader.jumps:
        fail("the reader never jumped to a new log start: retention did not overtake it")
    low, high = reader.consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
    if high != records:
        fail(f"high watermark {high}, expected {records}")
    reader.consumer.close()
    print(f"read up to offset {reader.last}; jumps (from, to, low watermark after): "
          f"{reader.jumps}; OFFSET_OUT_OF_RANGE errors seen: {reader.out_of_range_errors}; "
          f"final watermarks ({low}, {high})")


if __name__ == "__main__":
    main()
