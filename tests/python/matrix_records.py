"""The records the client-matrix scripts (tests/python/matrix_*.py, driven by
tests/clients_python.rs) produce and check, whatever client library runs.

Two batches go to every partition of a 3-partition topic: "first" before the
broker restarts, "second" after it. Record i of a batch in partition p has a
key, a value (every byte value, lengths 0..~300, the first one empty) and
three headers derived from (batch, p, i) alone, and the CreateTime
`base_ms + 1000 * i`, so offsets-by-time queries have exact answers. The
first batch fills offsets 0.., the second continues right after it.
"""

import sys
import time

PARTITIONS = 3
FIRST = "first"
SECOND = "second"
BATCHES = (FIRST, SECOND)
# Records per partition of each batch: uneven, so a partition mix-up shows.
COUNTS = {FIRST: {0: 7, 1: 4, 2: 5}, SECOND: {0: 3, 1: 5, 2: 2}}
# Every bounded wait of a script uses this as its upper bound.
TIMEOUT_S = 120


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check_version(module, major):
    """The library in use must be the major version the driver asked for
    (kafka-python 2 and 3 share the module name `kafka`)."""
    version = module.__version__
    if version.split(".")[0] != major:
        fail(f"{module.__name__} {version} imported from {module.__file__}, expected major version {major}")
    print(f"{module.__name__} {version} from {module.__file__}")


def base_timestamp_ms(batch):
    """CreateTime of record 0 of `batch`: whole seconds in the recent past (a
    broker's retention keeps them), the first batch older than the second."""
    hours_ago = {FIRST: 2, SECOND: 1}[batch]
    return (int(time.time()) - hours_ago * 3600) * 1000


def key_of(batch, partition, i):
    return f"{batch}-p{partition}-{i:03d}".encode()


def value_of(batch, partition, i):
    salt = BATCHES.index(batch) * 101 + partition * 7
    return bytes((salt + i * 13 + j) % 256 for j in range((i * 37) % 301))


def headers_of(batch, partition, i):
    return [("batch", batch.encode()), ("index", str(i).encode()),
            ("bytes", bytes([partition, i, 0, 255]))]


def first_offset(batch, partition):
    return 0 if batch == FIRST else COUNTS[FIRST][partition]


def end_offset(batch, partition):
    return first_offset(batch, partition) + COUNTS[batch][partition]


def records_to_send(batch, base_ms):
    """(partition, offset, key, value, headers, timestamp_ms) in send order:
    interleaved over partitions, in order within each."""
    most = max(COUNTS[batch].values())
    return [(p, first_offset(batch, p) + i, key_of(batch, p, i), value_of(batch, p, i),
             headers_of(batch, p, i), base_ms + 1000 * i)
            for i in range(most) for p in range(PARTITIONS) if i < COUNTS[batch][p]]


class Expectation:
    """Exactly the records of `batch` in `topic`, in order per partition.

    accept() checks each consumed record against the next one expected in its
    partition (offset, key, value, headers, CreateTime) and fails on anything
    else, including a record beyond the batch."""

    def __init__(self, topic, batch, base_ms):
        self.topic = topic
        self.batch = batch
        self.base_ms = base_ms
        self.received = {p: 0 for p in range(PARTITIONS)}

    def accept(self, record):
        p = record.partition
        if record.topic != self.topic or p not in self.received:
            fail(f"record from {record.topic}/{p}, expected {self.topic} partitions 0..{PARTITIONS - 1}")
        i = self.received[p]
        offset = first_offset(self.batch, p) + i
        if i >= COUNTS[self.batch][p]:
            fail(f"{self.topic}/{p}: unexpected record at offset {record.offset} beyond the "
                 f"{self.batch} batch (which ends at {end_offset(self.batch, p)})")
        got = (record.offset, record.key, record.value,
               [(name, bytes(value)) for name, value in record.headers],
               record.timestamp, record.timestamp_type)
        want = (offset, key_of(self.batch, p, i), value_of(self.batch, p, i),
                headers_of(self.batch, p, i), self.base_ms + 1000 * i, 0)
        if got != want:
            fail(f"{self.topic}/{p}: record {i} of the {self.batch} batch is "
                 f"(offset, key, value, headers, timestamp, timestamp type) {got!r}, expected {want!r}")
        self.received[p] += 1

    def complete(self):
        return all(self.received[p] == COUNTS[self.batch][p] for p in range(PARTITIONS))

    def progress(self):
        return {p: f"{self.received[p]}/{COUNTS[self.batch][p]}" for p in range(PARTITIONS)}


class Deadline:
    """A bounded wait: check() fails the script once TIMEOUT_S have passed."""

    def __init__(self, what):
        self.what = what
        self.end = time.monotonic() + TIMEOUT_S

    def check(self, state):
        if time.monotonic() > self.end:
            fail(f"{self.what}: not done after {TIMEOUT_S} s; {state}")
