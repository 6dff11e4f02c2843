#!/usr/bin/env python3
"""kafka-python consumer group against a running weir broker: members join
and leave, every record is consumed, nothing below a commit comes back.

Usage: consumer_groups_rebalance.py HOST:PORT TOPIC PARTITIONS

TOPIC must exist with PARTITIONS partitions and be empty. Two members of one
group subscribe; a third joins; then the second closes (LeaveGroup). Records
are produced before each step. Each member polls continuously on its own
thread (kafka-python rebalances inside poll(); kafka-python 3.0.12 drops a
JoinGroup/SyncGroup result that completes while its consumer is not inside
poll() and joins again, so members polled round-robin from one thread keep
rebalancing). The main thread checks, every few milliseconds:

- no partition is owned by two members at once (ownership as the rebalance
  listener reports it);
- at each stable point every partition is owned by exactly one member;
- offsets are committed synchronously, one partition per OffsetCommit, right
  after the records were processed, only for partitions the member still
  owns; a record delivered below a partition's last successful commit is a
  failure (records above it may legitimately come again after a rebalance);
- at the end every record was consumed and the group's committed offset of
  every partition is its end offset.

Exits 0 on success, 1 on any failure, 2 on bad usage, 3 when kafka-python is
missing. Every wait is bounded.
"""

import sys
import threading
import time

from group_support import fail

try:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.consumer.subscription_state import ConsumerRebalanceListener
    from kafka.errors import KafkaError
    from kafka.structs import OffsetAndMetadata
except ImportError as import_error:
    print(f"kafka-python is not installed ({import_error}); run the README's test command, "
          "./scripts/test.sh, which installs it (pip install -r tests/python/requirements.txt)",
          file=sys.stderr)
    sys.exit(3)

GROUP = "py-order-processors"
PHASE_RECORDS = 200
STEP_TIMEOUT_S = 90
POLL_TIMEOUT_MS = 200
POLL_RECORDS_MAX = 50


def record_key(record_id):
    return f"record-{record_id:05d}".encode()


class Member:
    """One KafkaConsumer of the group and what its listener reported."""

    def __init__(self, name, bootstrap, topic):
        self.name = name
        self.topic = topic
        self.owned = frozenset()
        self.events = []
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=GROUP, client_id=name,
            enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=10000, heartbeat_interval_ms=1000,
            max_poll_interval_ms=120000, fetch_max_wait_ms=100,
            request_timeout_ms=30000)
        self.consumer.subscribe([topic], listener=Listener(self))
        self.stop = threading.Event()
        self.error = None
        self.thread = None

    def start(self, ledger):
        self.thread = threading.Thread(target=self._run, args=(ledger,), name=self.name, daemon=True)
        self.thread.start()

    def _run(self, ledger):
        try:
            while not self.stop.is_set():
                ledger.poll(self)
        except BaseException as error:  # reported by the main thread
            self.error = repr(error)
        finally:
            self.consumer.close()

    def close(self):
        """Stops polling and closes the consumer (LeaveGroup), on its thread."""
        self.stop.set()
        self.thread.join(timeout=60)
        if self.thread.is_alive():
            fail(f"{self.name} did not close within 60 s")

    def describe(self):
        return f"{self.name}: owns {sorted(self.owned)}, callbacks {self.events}"


class Listener(ConsumerRebalanceListener):
    def __init__(self, member):
        self.member = member

    def _partitions(self, partitions):
        return frozenset(tp.partition for tp in partitions if tp.topic == self.member.topic)

    def on_partitions_revoked(self, revoked):
        parts = self._partitions(revoked)
        self.member.owned = self.member.owned - parts
        self.member.events.append(("revoke", sorted(parts)))

    def on_partitions_assigned(self, assigned):
        parts = self._partitions(assigned)
        self.member.owned = self.member.owned | parts
        self.member.events.append(("assign", sorted(parts)))

    def on_partitions_lost(self, lost):
        parts = self._partitions(lost)
        self.member.owned = self.member.owned - parts
        self.member.events.append(("lost", sorted(parts)))


class Ledger:
    """What was produced, delivered and committed; checked as it happens."""

    def __init__(self, topic, partitions):
        self.topic = topic
        self.partitions = partitions
        self.produced = {}    # (partition, offset) -> record id
        self.committed = {p: 0 for p in range(partitions)}
        self.delivered = {}   # (partition, offset) -> count
        self.keys = {}        # (partition, offset) -> key delivered there
        self.violations = []
        self.commit_failures = []
        self.lock = threading.Lock()

    def produce(self, producer, ids):
        futures = [(i, producer.send(self.topic, key=record_key(i), value=f"value-{i}".encode(),
                                     partition=i % self.partitions))
                   for i in ids]
        producer.flush(timeout=60)
        for i, future in futures:
            metadata = future.get(timeout=30)
            if metadata.partition != i % self.partitions:
                fail(f"record {i} acked on partition {metadata.partition}")
            key = (metadata.partition, metadata.offset)
            with self.lock:
                if key in self.produced:
                    fail(f"two records acked at {key}")
                self.produced[key] = i

    def end_offsets(self):
        """Called with the lock held (or after the members stopped)."""
        end = {p: 0 for p in range(self.partitions)}
        for partition, offset in self.produced:
            end[partition] = max(end[partition], offset + 1)
        return end

    def finished(self):
        with self.lock:
            return (all(key in self.delivered for key in self.produced)
                    and self.committed == self.end_offsets())

    def poll(self, member):
        batches = member.consumer.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=POLL_RECORDS_MAX)
        next_offsets = {}
        with self.lock:
            for tp, records in batches.items():
                if tp.topic != self.topic:
                    self.violations.append(f"{member.name} got records of a foreign topic {tp}")
                    continue
                for record in records:
                    self.check_delivery(member, tp.partition, record)
                    next_offsets[tp.partition] = max(next_offsets.get(tp.partition, 0), record.offset + 1)
        owned = member.owned
        for partition, offset in sorted(next_offsets.items()):
            if partition not in owned:
                continue
            tp = TopicPartition(self.topic, partition)
            try:
                member.consumer.commit({tp: OffsetAndMetadata(offset, "", -1)}, timeout_ms=5000)
            except KafkaError as error:
                with self.lock:
                    self.commit_failures.append(f"{member.name}: commit {partition} at {offset}: {error!r}")
                continue
            with self.lock:
                self.committed[partition] = max(self.committed[partition], offset)

    def check_delivery(self, member, partition, record):
        """Called with the lock held. Keys are checked at the end: a record
        may arrive before its producer's acknowledgement was recorded."""
        committed = self.committed[partition]
        if record.offset < committed:
            self.violations.append(f"{member.name} got {partition}/{record.offset}, "
                                   f"below the committed offset {committed}")
        key = (partition, record.offset)
        self.delivered[key] = self.delivered.get(key, 0) + 1
        previous = self.keys.setdefault(key, record.key)
        if previous != record.key:
            self.violations.append(f"{member.name} got key {record.key!r} at {key}, earlier {previous!r}")

    def check_keys(self):
        for key, record_key_seen in sorted(self.keys.items()):
            record_id = self.produced.get(key)
            if record_id is None:
                self.violations.append(f"delivered {key}, which the producer never wrote")
            elif record_key_seen != record_key(record_id):
                self.violations.append(f"key {record_key_seen!r} at {key}, expected {record_key(record_id)!r}")

    def summary(self):
        with self.lock:
            return self._summary()

    def _summary(self):
        return (f"{len(self.delivered)} of {len(self.produced)} consumed, committed {self.committed}, "
                f"end {self.end_offsets()}, violations {self.violations[:5]}, "
                f"failed commits {len(self.commit_failures)} {self.commit_failures[:3]}")


def owned_twice(members):
    seen = {}
    for member in members:
        for partition in member.owned:
            if partition in seen:
                return f"partition {partition} owned by {seen[partition]} and {member.name}"
            seen[partition] = member.name
    return None


def complete_split(members, partitions):
    union = set()
    for member in members:
        if not member.owned or union & member.owned:
            return False
        union |= member.owned
    return union == set(range(partitions))


def drive_until(ledger, members, what, done):
    """Waits (members poll on their threads) until done(), checking
    continuously that no partition is owned twice and no member failed."""
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while True:
        problem = owned_twice(members)
        if problem:
            fail(f"{what}: {problem}\n  " + "\n  ".join(m.describe() for m in members))
        for member in members:
            if member.error:
                fail(f"{what}: {member.name} failed: {member.error}")
        if done():
            return
        if time.monotonic() > deadline:
            fail(f"{what}: not reached within {STEP_TIMEOUT_S} s\n  "
                 + "\n  ".join(m.describe() for m in members) + "\n  " + ledger.summary())
        time.sleep(0.005)


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    bootstrap, topic, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ledger = Ledger(topic, partitions)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, retries=0,
                             request_timeout_ms=30000, enable_idempotence=False)

    # Records go out before each step, so they are consumed across every
    # rebalance.
    ledger.produce(producer, range(0, PHASE_RECORDS))
    a = Member("py-member-a", bootstrap, topic)
    b = Member("py-member-b", bootstrap, topic)
    members = [a, b]
    for member in members:
        member.start(ledger)
    drive_until(ledger, members, "two members split the partitions",
                lambda: complete_split(members, partitions))

    ledger.produce(producer, range(PHASE_RECORDS, 2 * PHASE_RECORDS))
    c = Member("py-member-c", bootstrap, topic)
    c.start(ledger)
    members = [a, b, c]
    drive_until(ledger, members, "three members split the partitions",
                lambda: complete_split(members, partitions))

    ledger.produce(producer, range(2 * PHASE_RECORDS, 3 * PHASE_RECORDS))
    b.close()
    members = [a, c]
    drive_until(ledger, members, "two members split the partitions after b left",
                lambda: complete_split(members, partitions))

    ledger.produce(producer, range(3 * PHASE_RECORDS, 4 * PHASE_RECORDS))
    drive_until(ledger, members, "every record consumed and committed",
                lambda: complete_split(members, partitions) and ledger.finished())
    producer.close(timeout=10)

    for member in members:
        member.close()
    ledger.check_keys()
    if ledger.violations:
        fail(f"{len(ledger.violations)} deliveries broke the commit contract:\n" + "\n".join(ledger.violations))
    end = ledger.end_offsets()
    if sum(end.values()) != 4 * PHASE_RECORDS:
        fail(f"end offsets {end}")
    # The group's offsets as the broker holds them, read by a consumer that
    # does not join.
    reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP, enable_auto_commit=False,
                           request_timeout_ms=30000)
    for partition in range(partitions):
        committed = reader.committed(TopicPartition(topic, partition))
        if committed != end[partition]:
            fail(f"partition {partition}: the group's committed offset is {committed}, expected {end[partition]}")
    reader.close()
    redelivered = sum(1 for count in ledger.delivered.values() if count > 1)
    print(f"ok: {len(ledger.produced)} records, {redelivered} delivered more than once "
          f"(never below a commit), {len(ledger.commit_failures)} commits refused during rebalances")


if __name__ == "__main__":
    main()
