#!/usr/bin/env python3
"""kafka-python static membership (group_instance_id, KIP-345): a static
member that is killed and comes back with the same group_instance_id within
its session timeout gets its partitions back without a rebalance.

Usage: consumer_groups_static.py HOST:PORT TOPIC PARTITIONS
       consumer_groups_static.py HOST:PORT TOPIC member NAME INSTANCE_ID   (internal)

TOPIC must exist with PARTITIONS partitions. Two static members of one group
(session_timeout_ms=10000, heartbeat_interval_ms=1000) subscribe:

- the steady member, group_instance_id py-static-a, a KafkaConsumer polling
  on its own thread in this process;
- the restarted member, group_instance_id py-static-b, a KafkaConsumer in a
  child process (this script in `member` mode) that reports its rebalance
  callbacks on stdout.

Once the two own complementary, non-empty sets of partitions and no callback
has fired for SETTLE_S, a replacement child with the same instance id is
started (it imports kafka-python and waits for "go" on stdin, so the restart
is quick), the first child is SIGKILLed (by PID: no LeaveGroup), and the
replacement is told to go. Then:

- the replacement must be assigned exactly the first child's partitions
  (deadline 60 s), and report no revocation or loss of any partition;
- the steady member must see no rebalance callback at all from the kill
  until OBSERVE_S after the replacement got its partitions (an eager
  rebalance would call on_partitions_revoked on it), and still own exactly
  its partitions.

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
    from kafka import KafkaConsumer
except ImportError as import_error:
    print(f"kafka-python is not installed ({import_error}); run the README's test command, "
          "./scripts/test.sh, which installs it (pip install -r tests/python/requirements.txt)",
          file=sys.stderr)
    sys.exit(3)

GROUP = "py-static-group"
SESSION_TIMEOUT_MS = 10000
HEARTBEAT_INTERVAL_MS = 1000
SPLIT_TIMEOUT_S = 90
REJOIN_TIMEOUT_S = 60
SETTLE_S = 3
# Several heartbeat intervals: a rebalance the broker started would reach the
# steady member through its heartbeat (REBALANCE_IN_PROGRESS) within this.
OBSERVE_S = 5
CHILD_LIFETIME_MAX_S = 280
# kafka-python 3.0.12 loses a JoinGroup/SyncGroup round that is still in
# flight when poll()'s timeout expires: the next poll() sees need_rejoin()
# False and skips the completion, so the member never gets its assignment and
# its heartbeat stays disabled until the broker expires it. A long poll
# timeout makes that window small.
POLL_TIMEOUT_MS = 1000
STEADY_INSTANCE = "py-static-a"
RESTARTED_INSTANCE = "py-static-b"


def group_consumer(bootstrap, name, instance_id):
    return KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=GROUP, client_id=name, group_instance_id=instance_id,
        enable_auto_commit=False, auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS, heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        max_poll_interval_ms=120000, fetch_max_wait_ms=100, request_timeout_ms=30000)


def member_main(bootstrap, topic, name, instance_id):
    """Child mode: prints `ready`, waits for `go` on stdin, then one member
    polls on the main thread, printing `assign|revoke|lost P,P,...` lines.
    Ends with its parent or after CHILD_LIFETIME_MAX_S."""
    parent = os.getppid()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return

    def report(kind, partitions):
        print(f"{kind} {','.join(map(str, partitions))}", flush=True)

    consumer = group_consumer(bootstrap, name, instance_id)
    # Topic metadata first, so the first assignment is not empty (which
    # makes the member rejoin at once).
    consumer.partitions_for_topic(topic)
    consumer.subscribe([topic], listener=Listener(topic, report))
    deadline = time.monotonic() + CHILD_LIFETIME_MAX_S
    while time.monotonic() < deadline and os.getppid() == parent:
        consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
    consumer.close()


class Steady:
    """The in-process static member, polling on its own thread."""

    def __init__(self, bootstrap, topic):
        self.ownership = Ownership("py-static-steady")
        self.consumer = group_consumer(bootstrap, self.ownership.name, STEADY_INSTANCE)
        # Topic metadata first, so the first assignment is not empty (which
        # makes the member rejoin at once).
        self.consumer.partitions_for_topic(topic)
        self.consumer.subscribe([topic], listener=Listener(topic, self.ownership.report))
        self.stop = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._run, name="steady", daemon=True)

    def _run(self):
        try:
            while not self.stop.is_set():
                self.consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
        except BaseException as error:  # reported by the main thread
            self.error = repr(error)
        finally:
            self.consumer.close()

    def close(self):
        self.stop.set()
        self.thread.join(timeout=60)
        if self.thread.is_alive():
            fail("the steady member did not close within 60 s")


class Child:
    """A static member in a child process; its stdout is read on a thread."""

    def __init__(self, bootstrap, topic, name):
        self.ownership = Ownership(name)
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), bootstrap, topic, "member", name,
             RESTARTED_INSTANCE],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, name=f"{name}-reader", daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            kind, _, rest = line.strip().partition(" ")
            if kind == "ready":
                self.ready.set()
            elif kind in ("assign", "revoke", "lost"):
                self.ownership.report(kind, [int(p) for p in rest.split(",") if p])

    def go(self):
        if not self.ready.wait(timeout=60):
            fail(f"{self.ownership.name} (pid {self.process.pid}) did not start within 60 s")
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def kill_and_reap(self):
        """SIGKILL by PID, only while the child has not been reaped."""
        if self.process.returncode is None:
            os.kill(self.process.pid, signal.SIGKILL)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            fail(f"{self.ownership.name} (pid {self.process.pid}) did not die within 30 s of SIGKILL")
        self.reader.join(timeout=10)


def main():
    if len(sys.argv) == 6 and sys.argv[3] == "member":
        member_main(sys.argv[1], sys.argv[2], sys.argv[4], sys.argv[5])
        return
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    bootstrap, topic, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
    everything = frozenset(range(partitions))

    steady = Steady(bootstrap, topic)
    steady.thread.start()
    first = Child(bootstrap, topic, "py-static-first")
    children = [first]

    def describe():
        return "\n  ".join([steady.ownership.describe()] + [c.ownership.describe() for c in children])

    def wait_until(what, timeout_s, done):
        deadline = time.monotonic() + timeout_s
        while True:
            if steady.error:
                fail(f"{what}: the steady member failed: {steady.error}")
            if done():
                return
            if time.monotonic() > deadline:
                fail(f"{what}: not reached within {timeout_s} s\n  {describe()}")
            time.sleep(0.01)

    try:
        first.go()

        def split():
            mine, _ = steady.ownership.snapshot()
            theirs, _ = first.ownership.snapshot()
            return mine and theirs and not (mine & theirs) and (mine | theirs) == everything

        # A split that held for SETTLE_S without any callback: the group is
        # stable, not between two rebalances.
        settle_deadline = time.monotonic() + SPLIT_TIMEOUT_S
        while True:
            wait_until("the two static members split the partitions", SPLIT_TIMEOUT_S, split)
            before = (steady.ownership.snapshot(), first.ownership.snapshot())
            time.sleep(SETTLE_S)
            if split() and (steady.ownership.snapshot(), first.ownership.snapshot()) == before:
                break
            if time.monotonic() > settle_deadline:
                fail(f"the split did not settle within {SPLIT_TIMEOUT_S} s\n  {describe()}")
        steady_owned, steady_events = steady.ownership.snapshot()
        first_owned, _ = first.ownership.snapshot()
        print(f"split: {describe()}")

        replacement = Child(bootstrap, topic, "py-static-replacement")
        children.append(replacement)
        if not replacement.ready.wait(timeout=60):
            fail("the replacement process did not start within 60 s")
        first.kill_and_reap()
        killed_at = time.monotonic()
        replacement.go()

        def steady_untouched():
            if steady.ownership.snapshot()[1] != steady_events:
                fail(f"the steady member saw a rebalance after {RESTARTED_INSTANCE} was killed and "
                     f"restarted ({time.monotonic() - killed_at:.1f} s after the kill, session timeout "
                     f"{SESSION_TIMEOUT_MS} ms); callbacks before the kill {steady_events}\n  {describe()}")

        def rejoined():
            steady_untouched()
            return replacement.ownership.snapshot()[0] == first_owned

        wait_until(f"the replacement gets {sorted(first_owned)} back", REJOIN_TIMEOUT_S, rejoined)
        rejoin_s = time.monotonic() - killed_at
        observe_until = time.monotonic() + OBSERVE_S
        while time.monotonic() < observe_until:
            steady_untouched()
            if steady.error:
                fail(f"the steady member failed: {steady.error}")
            time.sleep(0.05)

        owned, events = steady.ownership.snapshot()
        if owned != steady_owned or events != steady_events:
            fail(f"the steady member owns {sorted(owned)}, expected {sorted(steady_owned)}\n  {describe()}")
        owned, events = replacement.ownership.snapshot()
        if owned != first_owned:
            fail(f"the replacement owns {sorted(owned)}, expected {sorted(first_owned)}\n  {describe()}")
        dropped = [(kind, parts) for kind, parts in events if kind != "assign" and parts]
        if dropped:
            fail(f"the replacement lost partitions: {dropped}\n  {describe()}")
        print(f"ok: {RESTARTED_INSTANCE} got {sorted(first_owned)} back {rejoin_s:.1f} s after SIGKILL; "
              f"no callback on the steady member since the kill\n  {describe()}")
    finally:
        for child in children:
            child.kill_and_reap()
    steady.close()


if __name__ == "__main__":
    main()
