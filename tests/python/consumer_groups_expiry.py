#!/usr/bin/env python3
"""kafka-python: a group member that stops responding is expired by the
broker's session timeout and its partitions move to the member that is left.

Usage: consumer_groups_expiry.py HOST:PORT TOPIC PARTITIONS
       consumer_groups_expiry.py HOST:PORT TOPIC member NAME   (internal)

TOPIC must exist with PARTITIONS partitions and be empty. Two members of one
group (session_timeout_ms=6000, the broker's minimum; heartbeat_interval_ms
=1000) subscribe:

- the survivor, a KafkaConsumer polling on its own thread in this process;
- the victim, a KafkaConsumer in a child process (this script in `member`
  mode) that reports its rebalance callbacks on stdout.

Once the two own complementary, non-empty sets of partitions, the victim
gets SIGSTOP (by PID): its connections stay open but it sends no heartbeat
and no LeaveGroup, so only the broker's session timeout can remove it. The
survivor must then own exactly all PARTITIONS partitions (deadline 60 s), and
records produced afterwards to every partition must reach it. The victim is
then SIGKILLed (by PID) and reaped.

Exits 0 on success, 1 on any failure, 2 on bad usage, 3 when kafka-python is
missing. Every wait is bounded.
"""

import os
import signal
import subprocess
import sys
import threading
import time

from group_support import Listener, Ownership, fail

try:
    from kafka import KafkaConsumer, KafkaProducer
except ImportError as import_error:
    print(f"kafka-python is not installed ({import_error}); run the README's test command, "
          "./scripts/test.sh, which installs it (pip install -r tests/python/requirements.txt)",
          file=sys.stderr)
    sys.exit(3)

GROUP = "py-expiry-group"
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 1000
SPLIT_TIMEOUT_S = 90
TAKEOVER_TIMEOUT_S = 60
DELIVERY_TIMEOUT_S = 60
CHILD_LIFETIME_MAX_S = 280
# kafka-python 3.0.12 loses a JoinGroup/SyncGroup round that is still in
# flight when poll()'s timeout expires: the next poll() sees need_rejoin()
# False and skips the completion, so the member never gets its assignment and
# its heartbeat stays disabled until the broker expires it. A long poll
# timeout makes that window small.
POLL_TIMEOUT_MS = 1000
SETTLE_S = 3


def group_consumer(bootstrap, name):
    return KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=GROUP, client_id=name,
        enable_auto_commit=False, auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS, heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        max_poll_interval_ms=120000, fetch_max_wait_ms=100, request_timeout_ms=30000)


def member_main(bootstrap, topic, name):
    """Child mode: one member polling on the main thread, printing
    `assign|revoke|lost P,P,...` lines. Ends with its parent or after
    CHILD_LIFETIME_MAX_S."""
    parent = os.getppid()

    def report(kind, partitions):
        print(f"{kind} {','.join(map(str, partitions))}", flush=True)

    consumer = group_consumer(bootstrap, name)
    # Topic metadata first, so the first assignment is not empty (which
    # makes the member rejoin at once).
    consumer.partitions_for_topic(topic)
    consumer.subscribe([topic], listener=Listener(topic, report))
    print("subscribed", flush=True)
    deadline = time.monotonic() + CHILD_LIFETIME_MAX_S
    while time.monotonic() < deadline and os.getppid() == parent:
        consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
    consumer.close()


class Survivor:
    """The in-process member, polling on its own thread."""

    def __init__(self, bootstrap, topic):
        self.ownership = Ownership("py-expiry-survivor")
        self.topic = topic
        self.consumer = group_consumer(bootstrap, self.ownership.name)
        # Topic metadata first, so the first assignment is not empty (which
        # makes the member rejoin at once).
        self.consumer.partitions_for_topic(topic)
        self.consumer.subscribe([topic], listener=Listener(topic, self.ownership.report))
        self.received = set()   # (partition, key) of every record delivered
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._run, name="survivor", daemon=True)

    def _run(self):
        try:
            while not self.stop.is_set():
                for tp, records in self.consumer.poll(timeout_ms=POLL_TIMEOUT_MS).items():
                    with self.lock:
                        for record in records:
                            self.received.add((tp.partition, record.key))
        except BaseException as error:  # reported by the main thread
            self.error = repr(error)
        finally:
            self.consumer.close()

    def close(self):
        self.stop.set()
        self.thread.join(timeout=60)
        if self.thread.is_alive():
            fail("the survivor did not close within 60 s")


class Victim:
    """The member in a child process; its stdout is read on a thread."""

    def __init__(self, bootstrap, topic):
        self.ownership = Ownership("py-expiry-victim")
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), bootstrap, topic, "member", self.ownership.name],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        self.subscribed = threading.Event()
        self.reader = threading.Thread(target=self._read, name="victim-reader", daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            kind, _, rest = line.strip().partition(" ")
            if kind == "subscribed":
                self.subscribed.set()
            elif kind in ("assign", "revoke", "lost"):
                self.ownership.report(kind, [int(p) for p in rest.split(",") if p])

    def signal(self, signum):
        """By PID, and only while the child has not been reaped."""
        if self.process.returncode is None:
            os.kill(self.process.pid, signum)

    def kill_and_reap(self):
        self.signal(signal.SIGKILL)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            fail(f"the victim (pid {self.process.pid}) did not die within 30 s of SIGKILL")
        self.reader.join(timeout=10)


def wait_until(what, timeout_s, done, survivor, victim):
    deadline = time.monotonic() + timeout_s
    while True:
        if survivor.error:
            fail(f"{what}: the survivor failed: {survivor.error}")
        if done():
            return
        if time.monotonic() > deadline:
            fail(f"{what}: not reached within {timeout_s} s\n  {survivor.ownership.describe()}\n  "
                 f"{victim.ownership.describe()} (victim exit status {victim.process.poll()})")
        time.sleep(0.01)


def produce_to_every_partition(bootstrap, topic, partitions, tag):
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, retries=0,
                             request_timeout_ms=30000, enable_idempotence=False)
    futures = [(p, producer.send(topic, key=f"{tag}-{p}".encode(), value=b"v", partition=p))
               for p in range(partitions)]
    producer.flush(timeout=60)
    for partition, future in futures:
        metadata = future.get(timeout=30)
        if metadata.partition != partition:
            fail(f"record {tag}-{partition} acked on partition {metadata.partition}")
    producer.close(timeout=10)


def main():
    if len(sys.argv) == 5 and sys.argv[3] == "member":
        member_main(sys.argv[1], sys.argv[2], sys.argv[4])
        return
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    bootstrap, topic, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
    everything = frozenset(range(partitions))

    produce_to_every_partition(bootstrap, topic, partitions, "before")
    survivor = Survivor(bootstrap, topic)
    survivor.thread.start()
    victim = Victim(bootstrap, topic)
    try:
        def split():
            mine, _ = survivor.ownership.snapshot()
            theirs, _ = victim.ownership.snapshot()
            return mine and theirs and not (mine & theirs) and (mine | theirs) == everything

        # A split that held for SETTLE_S without any callback: the group is
        # stable, not between two rebalances.
        settle_deadline = time.monotonic() + SPLIT_TIMEOUT_S
        while True:
            wait_until("the two members split the partitions", SPLIT_TIMEOUT_S, split, survivor, victim)
            before = (survivor.ownership.snapshot(), victim.ownership.snapshot())
            time.sleep(SETTLE_S)
            if split() and (survivor.ownership.snapshot(), victim.ownership.snapshot()) == before:
                break
            if time.monotonic() > settle_deadline:
                fail(f"the split did not settle within {SPLIT_TIMEOUT_S} s\n  "
                     f"{survivor.ownership.describe()}\n  {victim.ownership.describe()}")
        victim_owned, _ = victim.ownership.snapshot()
        print(f"split: {survivor.ownership.describe()}; {victim.ownership.describe()}")

        # No heartbeat, no LeaveGroup, connections left open.
        victim.signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        wait_until("the survivor owns every partition after the victim stopped", TAKEOVER_TIMEOUT_S,
                   lambda: survivor.ownership.snapshot()[0] == everything, survivor, victim)
        takeover_s = time.monotonic() - stopped_at
        owned, events = survivor.ownership.snapshot()
        if owned != everything:
            fail(f"the survivor owns {sorted(owned)}, expected exactly {sorted(everything)}")
        if victim.ownership.snapshot()[0] != victim_owned:
            fail(f"the stopped victim reported callbacks: {victim.ownership.describe()}")

        produce_to_every_partition(bootstrap, topic, partitions, "after")
        wanted = {(p, f"after-{p}".encode()) for p in range(partitions)}

        def delivered():
            with survivor.lock:
                return wanted <= survivor.received

        wait_until("records produced after the takeover reach the survivor", DELIVERY_TIMEOUT_S,
                   delivered, survivor, victim)
        owned, events = survivor.ownership.snapshot()
        if owned != everything:
            fail(f"after the deliveries the survivor owns {sorted(owned)}, expected {sorted(everything)}; "
                 f"callbacks {events}")
        print(f"ok: the victim (had {sorted(victim_owned)}) was expired about {takeover_s:.1f} s after "
              f"SIGSTOP; {survivor.ownership.describe()}")
    finally:
        victim.kill_and_reap()
    survivor.close()


if __name__ == "__main__":
    main()
