#!/usr/bin/env python3
"""DeleteRecords through confluent-kafka's AdminClient.delete_records.

Usage: retention_delete_records.py HOST:PORT TOPIC delete
       retention_delete_records.py HOST:PORT TOPIC after-restart

TOPIC must exist with two partitions. `delete` needs them empty: it produces
100 records to each (in multi-record batches, so the offsets it deletes up
to fall inside batches), then checks, with exact answers:

- partition 0 up to 30: low watermark 30; ListOffsets earliest 30, latest
  100; a consumer from the beginning, and one assigned at offset 5 with
  auto.offset.reset=earliest, both get exactly records 30..99;
- up to 10 afterwards: nothing changes, the answer's low watermark is 30;
- up to 101 (above the high watermark) and up to -2: OFFSET_OUT_OF_RANGE,
  nothing changes;
- in one request, partition 0 up to 40 and partition 1 up to OFFSET_END
  (-1, "everything"): low watermarks 40 and 100; on partition 1 earliest ==
  latest == 100 and a consumer from its beginning gets nothing.

`after-restart` (run after the broker restarted): earliest 40 and 100,
latest 100 and 100; partition 0 from the beginning gives exactly records
40..99; new records land at offsets 100.. on both partitions and are read
back.

Exits 0 on success, 1 on any mismatch, 2 on bad usage. Every wait is bounded.
"""

import os
import sys
import time

RECORDS = 100
TIMEOUT_S = 60


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def value_of(partition, seq):
    return f"p{partition} record {seq:06d} ".encode() + bytes((seq + k) % 256 for k in range(100))


def admin(bootstrap):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap, "broker.address.family": "v4"})


def delete_records(client, requests):
    """{partition: offset} -> {partition: ("ok", low watermark) | ("error", name)}."""
    from confluent_kafka import KafkaException, TopicPartition

    topic = requests["topic"]
    wanted = [TopicPartition(topic, p, offset) for p, offset in requests["offsets"].items()]
    futures = client.delete_records(wanted, request_timeout=30, operation_timeout=20)
    answers = {}
    for tp, future in futures.items():
        try:
            answers[tp.partition] = ("ok", future.result().low_watermark)
        except KafkaException as error:
            answers[tp.partition] = ("error", error.args[0].name())
    return answers


def expect_delete(client, topic, offsets, expected):
    answers = delete_records(client, {"topic": topic, "offsets": offsets})
    if answers != expected:
        fail(f"DeleteRecords {offsets}: answered {answers}, expected {expected}")
    print(f"DeleteRecords {offsets} -> {answers}")


def list_offsets(client, topic, partition):
    """(earliest, latest) through the admin client's ListOffsets."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec

    result = []
    for spec in (OffsetSpec.earliest(), OffsetSpec.latest()):
        futures = client.list_offsets({TopicPartition(topic, partition): spec}, request_timeout=30)
        (future,) = futures.values()
        result.append(future.result().offset)
    return tuple(result)


def expect_offsets(client, topic, partition, expected):
    got = list_offsets(client, topic, partition)
    if got != expected:
        fail(f"partition {partition}: ListOffsets (earliest, latest) {got}, expected {expected}")


def produce(bootstrap, topic, partition, start, end):
    from confluent_kafka import Producer

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "acks": "all",
        "enable.idempotence": False,
        "retries": 0,
        # Everything in a few batches: the deleted-up-to offsets fall inside.
        "linger.ms": 200,
    })
    acked = []

    def on_delivery(error, message):
        if error is not None:
            fail(f"delivery to partition {partition}: {error}")
        acked.append(message.offset())

    for seq in range(start, end):
        producer.produce(topic, value=value_of(partition, seq), partition=partition,
                         on_delivery=on_delivery)
    if producer.flush(TIMEOUT_S):
        fail("records still undelivered after the flush")
    if sorted(acked) != list(range(start, end)):
        fail(f"partition {partition}: acknowledged offsets {sorted(acked)[:5]}..., "
             f"expected {start}..{end - 1}")


def consume(bootstrap, topic, partition, start_offset, expected_first, end):
    """Reads from `start_offset` (auto.offset.reset=earliest) and checks it
    gets exactly records expected_first..end-1, then nothing more."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "group.id": f"weir-delete-records-{os.getpid()}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
        "check.crcs": True,
    })
    consumer.assign([TopicPartition(topic, partition, start_offset)])
    expected = expected_first
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while True:
            if time.monotonic() > deadline:
                fail(f"partition {partition} from {start_offset}: at offset {expected} "
                     f"of {end} by the deadline")
            message = consumer.poll(0.2)
            if message is None:
                continue
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    if message.offset() == end and expected == end:
                        break
                    continue
                fail(f"partition {partition}: consumer error {message.error()}")
            if message.offset() != expected or message.value() != value_of(partition, expected):
                fail(f"partition {partition} from {start_offset}: got offset {message.offset()} "
                     f"value {message.value()[:20]!r}, expected record {expected}")
            expected += 1
    finally:
        consumer.close()


def delete_scenario(bootstrap, topic):
    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END

    client = admin(bootstrap)
    for partition in (0, 1):
        produce(bootstrap, topic, partition, 0, RECORDS)
        expect_offsets(client, topic, partition, (0, RECORDS))

    expect_delete(client, topic, {0: 30}, {0: ("ok", 30)})
    expect_offsets(client, topic, 0, (30, RECORDS))
    consume(bootstrap, topic, 0, OFFSET_BEGINNING, 30, RECORDS)
    consume(bootstrap, topic, 0, 5, 30, RECORDS)

    expect_delete(client, topic, {0: 10}, {0: ("ok", 30)})
    expect_delete(client, topic, {0: RECORDS + 1}, {0: ("error", "OFFSET_OUT_OF_RANGE")})
    expect_delete(client, topic, {0: -2}, {0: ("error", "OFFSET_OUT_OF_RANGE")})
    expect_offsets(client, topic, 0, (30, RECORDS))

    expect_delete(client, topic, {0: 40, 1: OFFSET_END}, {0: ("ok", 40), 1: ("ok", RECORDS)})
    expect_offsets(client, topic, 0, (40, RECORDS))
    expect_offsets(client, topic, 1, (RECORDS, RECORDS))
    consume(bootstrap, topic, 0, OFFSET_BEGINNING, 40, RECORDS)
    consume(bootstrap, topic, 1, OFFSET_BEGINNING, RECORDS, RECORDS)


def after_restart_scenario(bootstrap, topic):
    from confluent_kafka import OFFSET_BEGINNING

    client = admin(bootstrap)
    expect_offsets(client, topic, 0, (40, RECORDS))
    expect_offsets(client, topic, 1, (RECORDS, RECORDS))
    consume(bootstrap, topic, 0, OFFSET_BEGINNING, 40, RECORDS)
    for partition in (0, 1):
        produce(bootstrap, topic, partition, RECORDS, RECORDS + 5)
    expect_offsets(client, topic, 0, (40, RECORDS + 5))
    expect_offsets(client, topic, 1, (RECORDS, RECORDS + 5))
    consume(bootstrap, topic, 0, OFFSET_BEGINNING, 40, RECORDS + 5)
    consume(bootstrap, topic, 1, OFFSET_BEGINNING, RECORDS, RECORDS + 5)


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in ("delete", "after-restart"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    bootstrap, topic, mode = sys.argv[1:]
    if mode == "delete":
        delete_scenario(bootstrap, topic)
    else:
        after_restart_scenario(bootstrap, topic)
    print(f"{mode}: every DeleteRecords answer, offset and record as expected")


if __name__ == "__main__":
    main()
