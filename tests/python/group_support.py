"""Pieces shared by the kafka-python consumer group scripts (imported from
the scripts' own directory): the kafka-python import check, failure exit,
and a rebalance listener that records what each member owns."""

import sys
import threading

try:
    from kafka.consumer.subscription_state import ConsumerRebalanceListener
except ImportError as import_error:
    print(f"kafka-python is not installed ({import_error}); run the README's test command, "
          "./scripts/test.sh, which installs it (pip install -r tests/python/requirements.txt)",
          file=sys.stderr)
    sys.exit(3)


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


class Listener(ConsumerRebalanceListener):
    """Calls report(kind, partitions) for every callback on TOPIC."""

    def __init__(self, topic, report):
        self.topic = topic
        self.report = report

    def _partitions(self, partitions):
        return sorted(tp.partition for tp in partitions if tp.topic == self.topic)

    def on_partitions_revoked(self, revoked):
        self.report("revoke", self._partitions(revoked))

    def on_partitions_assigned(self, assigned):
        self.report("assign", self._partitions(assigned))

    def on_partitions_lost(self, lost):
        self.report("lost", self._partitions(lost))


class Ownership:
    """A member's partitions and callbacks as its listener reported them."""

    def __init__(self, name):
        self.name = name
        self.owned = frozenset()
        self.events = []
        self.lock = threading.Lock()

    def report(self, kind, partitions):
        with self.lock:
            if kind == "assign":
                self.owned = self.owned | frozenset(partitions)
            else:
                self.owned = self.owned - frozenset(partitions)
            self.events.append((kind, partitions))

    def snapshot(self):
        with self.lock:
            return self.owned, list(self.events)

    def describe(self):
        owned, events = self.snapshot()
        return f"{self.name}: owns {sorted(owned)}, callbacks {events}"
