#!/usr/bin/env python3
"""Compaction benchmarks of issue 13, against a running weir (see
scripts/bench_compaction.sh, which starts and restarts it).

Steps (each prints one JSON line the shell script collects):
  backlog TOPIC KEYS ROUNDS VALUE_BYTES  produce KEYS x ROUNDS keyed records
  compact TOPIC                          switch TOPIC to cleanup.policy=compact
  commits GROUPS PER_GROUP PARTITIONS    OffsetCommit PER_GROUP records per group
  roll-offsets                           seal __consumer_offsets' segments
The client is confluent-kafka (librdkafka) from tests/python/.deps.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python", ".deps"))
from confluent_kafka import Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import (  # noqa: E402
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)
from confluent_kafka import ConsumerGroupTopicPartitions  # noqa: E402

BOOTSTRAP = os.environ["BOOTSTRAP"]


def admin():
    return AdminClient({"bootstrap.servers": BOOTSTRAP})


def backlog(topic, keys, rounds, value_bytes):
    a = admin()
    new = NewTopic(topic, 1, 1, config={"segment.bytes": str(16 * 1024 * 1024)})
    for f in a.create_topics([new]).values():
        f.result()
    p = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 20, "batch.size": 1048576, "acks": "1"})
    payload = b"v" * value_bytes
    started = time.monotonic()
    for r in range(rounds):
        for k in range(keys):
            while True:
                try:
                    p.produce(topic, key=b"key-%08d" % k, value=payload)
                    break
                except BufferError:
                    p.poll(0.01)
        p.poll(0)
    p.flush(120)
    secs = time.monotonic() - started
    print(json.dumps({"step": "backlog", "records": keys * rounds, "bytes": keys * rounds * value_bytes, "seconds": secs}))


def incremental_set(resource_type, name, configs):
    a = admin()
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in configs.items()]
    futures = a.incremental_alter_configs([ConfigResource(resource_type, name, incremental_configs=entries)])
    for f in futures.values():
        f.result()


def compact(topic):
    incremental_set(ConfigResource.Type.TOPIC, topic, {"cleanup.policy": "compact"})
    print(json.dumps({"step": "compact", "topic": topic}))


def commits(groups, per_group, partitions):
    """PER_GROUP commit records per group, over PARTITIONS partitions of a
    topic, sent as OffsetCommit requests of PARTITIONS records each."""
    a = admin()
    topic = "offsets-bench"
    for f in a.create_topics([NewTopic(topic, partitions, 1)]).values():
        try:
            f.result()
        except Exception:  # already there
            pass
    started = time.monotonic()
    pending = []
    requests = per_group // partitions
    for round_ in range(requests):
        for g in range(groups):
            tps = [TopicPartition(topic, p, round_ + 1) for p in range(partitions)]
            pending.extend(a.alter_consumer_group_offsets([ConsumerGroupTopicPartitions("group-%04d" % g, tps)]).values())
        if len(pending) > 2000:
            for f in pending:
                f.result()
            pending = []
    for f in pending:
        f.result()
    secs = time.monotonic() - started
    print(json.dumps({"step": "commits", "records": groups * requests * partitions, "seconds": secs}))


def roll_offsets():
    """Every __consumer_offsets partition rolls on its next append: a short
    segment.ms, then one more commit per group."""
    incremental_set(ConfigResource.Type.TOPIC, "__consumer_offsets", {"segment.ms": "1000"})
    time.sleep(1.5)
    print(json.dumps({"step": "roll-offsets"}))


if __name__ == "__main__":
    step, args = sys.argv[1], sys.argv[2:]
    if step == "backlog":
        backlog(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif step == "compact":
        compact(args[0])
    elif step == "commits":
        commits(int(args[0]), int(args[1]), int(args[2]))
    elif step == "roll-offsets":
        roll_offsets()
    else:
        sys.exit(f"unknown step {step}")
