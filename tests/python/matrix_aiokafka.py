#!/usr/bin/env python3
"""aiokafka (asyncio, its own protocol code) against a broker: admin client,
keyed records with headers, a consumer group with getmany, commit,
seek_to_committed, offset queries, and resuming after a broker restart.

Usage: matrix_aiokafka.py HOST:PORT TOPIC GROUP first|resume

The records are those of matrix_records.py.

first:  AIOKafkaAdminClient describes the cluster; creates a scratch topic
        with a config, describes its configs, adds partitions, deletes it;
        creates TOPIC with 3 partitions and describes it;
        produces the first batch (acks=all, every acknowledged offset
        checked); a member of GROUP reads it with getmany from the earliest
        offset (exact records, in order per partition, nothing more) while the
        admin client lists and describes the group; commits; committed() and
        the admin client's group offsets must be the batch's end;
        beginning/end offsets and offsets_for_times answer exactly.
resume: (after the driver restarted the broker) produces the second batch;
        GROUP's commits must have survived; a new member must receive exactly
        the second batch, starting at the commits; seek_to_committed() goes
        back to the commits and the same records come again; commits, checks
        the new commits and the offset queries.

Exits 0 on success, 1 on any failure, 2 on bad usage, 3 when aiokafka is
missing. Every wait is bounded.
"""

import asyncio
import sys
import time

from matrix_records import (COUNTS, FIRST, PARTITIONS, SECOND, TIMEOUT_S, Deadline, Expectation,
                            base_timestamp_ms, check_version, end_offset, fail, first_offset,
                            records_to_send)

try:
    import aiokafka
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
except ImportError as import_error:
    print(f"aiokafka is not installed ({import_error}); run tests/python/install.sh",
          file=sys.stderr)
    sys.exit(3)

# How long a consumer keeps fetching after the last expected record, to catch
# records that should not be there.
DRAIN_S = 1.0

# Configs of a topic created with segment.ms set, as DescribeConfigs gives
# them: (value, read only, source), source 1 = the topic's own, 5 = default.
SCRATCH_CONFIGS = {
    "segment.ms": ("3600000", False, 1),
    "cleanup.policy": ("delete", False, 5),
    "max.message.bytes": ("1048588", False, 5),
    "message.timestamp.type": ("CreateTime", False, 5),
    "segment.bytes": ("1073741824", False, 5),
}


def bounded(awaitable):
    """Every client call is bounded by TIMEOUT_S."""
    return asyncio.wait_for(awaitable, TIMEOUT_S)


async def wait_for_partition_count(admin, topic, count):
    deadline = Deadline(f"topic {topic} described with {count} led partitions")
    while True:
        described = await bounded(admin.describe_topics([topic]))
        leaders = sorted((p["partition"], p["leader"] >= 0)
                         for t in described if t["topic"] == topic and t["error_code"] == 0
                         for p in t["partitions"])
        if leaders == [(p, True) for p in range(count)]:
            return
        deadline.check(f"described as {described}")
        await asyncio.sleep(0.2)


async def create_topic(admin, topic):
    response = await bounded(admin.create_topics(
        [NewTopic(name=topic, num_partitions=PARTITIONS, replication_factor=1)]))
    errors = [(error[0], error[1]) for error in response.topic_errors]
    if errors != [(topic, 0)]:
        fail(f"CreateTopics answered {response.topic_errors}, expected no error for {topic}")
    await wait_for_partition_count(admin, topic, PARTITIONS)


async def admin_round(admin, bootstrap, topic):
    """The rest of AIOKafkaAdminClient: describe_cluster (from Metadata), and
    on a scratch topic CreateTopics with a config, DescribeConfigs,
    CreatePartitions and DeleteTopics."""
    cluster = await bounded(admin.describe_cluster())
    host, port = bootstrap.rsplit(":", 1)
    brokers = [(b["host"], b["port"]) for b in cluster["brokers"]]
    if brokers != [(host, int(port))] or cluster["controller_id"] != cluster["brokers"][0]["node_id"]:
        fail(f"describe_cluster gave {cluster}, expected one broker at {bootstrap}, the controller")
    response = await bounded(admin.create_topics(
        [NewTopic(name=topic, num_partitions=1, replication_factor=1,
                  topic_configs={"segment.ms": "3600000"})]))
    if [(error[0], error[1]) for error in response.topic_errors] != [(topic, 0)]:
        fail(f"CreateTopics answered {response.topic_errors}, expected no error for {topic}")
    await wait_for_partition_count(admin, topic, 1)
    responses = await bounded(admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic)]))
    resources = [r for response in responses for r in response.resources]
    if [(r[0], r[2], r[3]) for r in resources] != [(0, ConfigResourceType.TOPIC, topic)]:
        fail(f"describe_configs gave {resources}, expected the topic {topic} without error")
    configs = {entry[0]: (entry[1], entry[2], entry[3]) for entry in resources[0][4]}
    shown = {name: configs.get(name) for name in SCRATCH_CONFIGS}
    if shown != SCRATCH_CONFIGS:
        fail(f"describe_configs of {topic}: {shown}, expected {SCRATCH_CONFIGS}")
    response = await bounded(admin.create_partitions({topic: NewPartitions(PARTITIONS)}))
    if [(error[0], error[1]) for error in response.topic_errors] != [(topic, 0)]:
        fail(f"CreatePartitions answered {response.topic_errors}, expected no error for {topic}")
    await wait_for_partition_count(admin, topic, PARTITIONS)
    response = await bounded(admin.delete_topics([topic]))
    if [tuple(error[:2]) for error in response.topic_error_codes] != [(topic, 0)]:
        fail(f"DeleteTopics answered {response.topic_error_codes}, expected no error for {topic}")
    deadline = Deadline(f"deleted topic {topic} leaving the topic list")
    while topic in await bounded(admin.list_topics()):
        deadline.check("still listed")
        await asyncio.sleep(0.2)


async def produce(bootstrap, topic, batch):
    """Sends `batch` (acks=all) and checks every acknowledged (partition,
    offset). Returns the batch's base timestamp."""
    base_ms = base_timestamp_ms(batch)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=30000,
                                client_id=f"matrix-aiokafka-producer-{batch}")
    await bounded(producer.start())
    try:
        sent = []
        for partition, offset, key, value, headers, timestamp_ms in records_to_send(batch, base_ms):
            future = await bounded(producer.send(topic, value=value, key=key, partition=partition,
                                                 timestamp_ms=timestamp_ms, headers=headers))
            sent.append((partition, offset, future))
        for partition, offset, future in sent:
            metadata = await bounded(future)
            if (metadata.partition, metadata.offset) != (partition, offset):
                fail(f"{batch} record for {partition}/{offset} acknowledged at "
                     f"{metadata.partition}/{metadata.offset}")
    finally:
        await bounded(producer.stop())
    print(f"ok: produced the {batch} batch {COUNTS[batch]}")
    return base_ms


def group_consumer(bootstrap, topic, group, client_id):
    return AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                            client_id=client_id, enable_auto_commit=False,
                            auto_offset_reset="earliest", session_timeout_ms=10000,
                            heartbeat_interval_ms=1000, fetch_max_wait_ms=100,
                            request_timeout_ms=30000)


async def consume_exactly(consumer, expectation):
    """getmany until `expectation` is complete, then DRAIN_S more (anything
    arriving then fails)."""
    deadline = Deadline(f"consuming the {expectation.batch} batch")
    while not expectation.complete():
        deadline.check(f"received per partition {expectation.progress()}")
        batches = await bounded(consumer.getmany(timeout_ms=200))
        for records in batches.values():
            for record in records:
                expectation.accept(record)
    drain_until = time.monotonic() + DRAIN_S
    while time.monotonic() < drain_until:
        batches = await bounded(consumer.getmany(timeout_ms=200))
        for records in batches.values():
            for record in records:
                expectation.accept(record)


def partitions_of(topic):
    return [TopicPartition(topic, p) for p in range(PARTITIONS)]


async def check_committed(consumer, admin, topic, group, batch, when):
    """Both the member's committed() and the admin client's group offsets
    (OffsetFetch without a member) must be the end of `batch`."""
    want = {tp: end_offset(batch, tp.partition) for tp in partitions_of(topic)}
    if consumer is not None:
        committed = {tp: await bounded(consumer.committed(tp)) for tp in partitions_of(topic)}
        if committed != want:
            fail(f"{when}: committed() gave {committed}, expected {want}")
    offsets = await bounded(admin.list_consumer_group_offsets(group))
    listed = {tp: meta.offset for tp, meta in offsets.items() if tp.topic == topic}
    if listed != want:
        fail(f"{when}: the admin client's offsets of {group} are {offsets}, expected {want}")


async def check_offset_queries(consumer, topic, batch, base_ms):
    """beginning_offsets, end_offsets and offsets_for_times (the first record
    at or after a time) answer exactly for the log after `batch`."""
    partitions = partitions_of(topic)
    beginning = await bounded(consumer.beginning_offsets(partitions))
    end = await bounded(consumer.end_offsets(partitions))
    for tp in partitions:
        if (beginning[tp], end[tp]) != (0, end_offset(batch, tp.partition)):
            fail(f"{tp}: offsets {beginning[tp]}..{end[tp]}, expected 0..{end_offset(batch, tp.partition)}")
    # Just after record 1's time: record 2 (none where the batch is shorter).
    query = base_ms + 1001
    found = await bounded(consumer.offsets_for_times({tp: query for tp in partitions}))
    for tp in partitions:
        got = found[tp]
        if COUNTS[batch][tp.partition] > 2:
            want = (first_offset(batch, tp.partition) + 2, base_ms + 2000)
            if got is None or (got.offset, got.timestamp) != want:
                fail(f"{tp}: offsets_for_times({query}) gave {got}, expected (offset, timestamp) {want}")
        elif got is not None:
            fail(f"{tp}: offsets_for_times({query}) gave {got}, expected None (no such record)")
    # Exactly a record's time: that record (the first of the batch).
    found = await bounded(consumer.offsets_for_times({tp: base_ms for tp in partitions}))
    for tp in partitions:
        want = (first_offset(batch, tp.partition), base_ms)
        got = found[tp]
        if got is None or (got.offset, got.timestamp) != want:
            fail(f"{tp}: offsets_for_times({base_ms}) gave {got}, expected (offset, timestamp) {want}")


async def check_group_listed(admin, group):
    """While the member is joined: ListGroups has the group (type
    "consumer"), DescribeGroups shows it Stable with one member."""
    groups = await bounded(admin.list_consumer_groups())
    if (group, "consumer") not in [tuple(g[:2]) for g in groups]:
        fail(f"list_consumer_groups gave {groups}, expected ({group!r}, 'consumer') among them")
    responses = await bounded(admin.describe_consumer_groups([group]))
    described = [g for response in responses for g in response.groups]
    summary = [(g[0], g[1], g[2], g[3], len(g[5])) for g in described]
    if summary != [(0, group, "Stable", "consumer", 1)]:
        fail(f"describe_consumer_groups gave (error, group, state, protocol type, members) "
             f"{summary}, expected [(0, {group!r}, 'Stable', 'consumer', 1)]")


async def first_phase(bootstrap, topic, group):
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="matrix-aiokafka-admin",
                                request_timeout_ms=30000)
    await bounded(admin.start())
    try:
        await admin_round(admin, bootstrap, f"{topic}-admin-scratch")
        await create_topic(admin, topic)
        base_ms = await produce(bootstrap, topic, FIRST)
        consumer = group_consumer(bootstrap, topic, group, "matrix-aiokafka-first")
        await bounded(consumer.start())
        try:
            await consume_exactly(consumer, Expectation(topic, FIRST, base_ms))
            await check_group_listed(admin, group)
            await bounded(consumer.commit())
            await check_committed(consumer, admin, topic, group, FIRST, "right after the commit")
            await check_offset_queries(consumer, topic, FIRST, base_ms)
        finally:
            await bounded(consumer.stop())
    finally:
        await bounded(admin.close())
    print(f"ok: group {group} read and committed the {FIRST} batch")


async def resume_phase(bootstrap, topic, group):
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="matrix-aiokafka-admin",
                                request_timeout_ms=30000)
    await bounded(admin.start())
    try:
        base_ms = await produce(bootstrap, topic, SECOND)
        await check_committed(None, admin, topic, group, FIRST, "after the broker restart")
        consumer = group_consumer(bootstrap, topic, group, "matrix-aiokafka-resume")
        await bounded(consumer.start())
        try:
            await consume_exactly(consumer, Expectation(topic, SECOND, base_ms))
            # Back to the commits (still the first batch's end): the second
            # batch comes again, exactly.
            commits = {tp: end_offset(FIRST, tp.partition) for tp in partitions_of(topic)}
            sought = await bounded(consumer.seek_to_committed())
            positions = {tp: await bounded(consumer.position(tp)) for tp in partitions_of(topic)}
            if sought != commits or positions != commits:
                fail(f"seek_to_committed gave {sought}, positions {positions}, expected {commits}")
            await consume_exactly(consumer, Expectation(topic, SECOND, base_ms))
            await bounded(consumer.commit())
            await check_committed(consumer, admin, topic, group, SECOND, "after the second commit")
            await check_offset_queries(consumer, topic, SECOND, base_ms)
        finally:
            await bounded(consumer.stop())
    finally:
        await bounded(admin.close())
    print(f"ok: group {group} resumed at {COUNTS[FIRST]} and read exactly the {SECOND} batch")


def main():
    if len(sys.argv) != 5 or sys.argv[4] not in ("first", "resume"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    bootstrap, topic, group, phase = sys.argv[1:]
    check_version(aiokafka, "0")
    phase_main = first_phase if phase == "first" else resume_phase
    asyncio.run(phase_main(bootstrap, topic, group))


if __name__ == "__main__":
    main()
