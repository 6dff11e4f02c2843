//! Log compaction (`cleanup.policy=compact`), checked with real clients and
//! exact offsets against both brokers.
//!
//! Every test keeps a model of what it produced: each acknowledged record
//! at the offset its delivery report named, and per key the offset of its
//! last record that counts (aborted transactional records never count). A
//! fully compacted partition holds exactly the last record of every key,
//! at its original offset, minus tombstones once `delete.retention.ms` has
//! passed. Every read while waiting for that also checks what compaction
//! must never do: serve a record at an offset it was not written at, lose
//! the last record of a key, bring a deleted key back (an older value
//! without its tombstone), or show an aborted record to read_committed.
//!
//! Only sealed segments are cleaned. Topics here roll by time
//! (`segment.ms`), and while a test waits it keeps "nudging": producing one
//! 64 KiB record under a key of its own, which seals the previous segment
//! and makes the log dirty enough (`min.cleanable.dirty.ratio`) for another
//! pass. Tombstones go on a pass after their delete horizon, so the nudges
//! also bring that pass. Nudge keys are unique: compaction never removes a
//! nudge, and the model expects every one.
//!
//! The brokers look for partitions to clean every 500 ms
//! (`compaction_check_interval_ms`; Kafka's `log.cleaner.backoff.ms`).
//! weir only: the SIGKILL part of the restart test (skipped against
//! Kafka) and the bounded key map test (`compaction_key_map_bytes_max`,
//! always on weir).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::admin::{AlterConfig, ConfigSource, ResourceSpecifier};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use common::wire::{self, Connection, ERROR_NONE};
use common::{
    admin, admin_options, block_on, client_config, consumer_config, create_topic, produce_and_flush,
    producer_config, pseudo_random_bytes, recording_producer, target, watermarks, Broker, BrokerOptions,
    DeliveryLog, RecordingProducer, Target, TestMessage, CLIENT_TIMEOUT, CONSUME_TIMEOUT,
};

/// How long a test waits for the partition to reach its compacted form.
const COMPACTION_WAIT: Duration = Duration::from_secs(180);
/// Pause between two reads while waiting (a nudge is produced in between).
const POLL_PAUSE: Duration = Duration::from_millis(500);
/// Size of a nudge's value: over 1% of any log here, so its segment alone
/// makes the log dirty enough for a pass.
const NUDGE_BYTES: usize = 64 * 1024;
/// Upper bound for one transactional call of the client.
const TXN_CALL_TIMEOUT: Duration = Duration::from_secs(60);
const ERROR_INVALID_RECORD: i16 = 87;

/// A compacted topic: 1 MiB segments (Kafka 4's minimum) rolled after 1 s,
/// cleaned when 1% of it is dirty, tombstones kept 2 s after the pass that
/// first kept them.
const COMPACTED_TOPIC: [(&str, &str); 5] = [
    ("cleanup.policy", "compact"),
    ("segment.bytes", "1048576"),
    ("segment.ms", "1000"),
    ("min.cleanable.dirty.ratio", "0.01"),
    ("delete.retention.ms", "2000"),
];

fn cleaner_settings() -> Vec<(&'static str, &'static str, String)> {
    vec![(
        "compaction_check_interval_ms",
        "log.cleaner.backoff.ms",
        "500".to_string(),
    )]
}

/// A broker (weir or Kafka, as `WEIR_TEST_BROKER` says) whose cleaner
/// looks for work every 500 ms.
fn compaction_broker() -> Broker {
    Broker::start_with(BrokerOptions {
        settings: cleaner_settings(),
        ..BrokerOptions::default()
    })
}

// ---------------------------------------------------------------------------
// The model of a partition
// ---------------------------------------------------------------------------

/// One record as a consumer returned it (or as the model expects it).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

#[derive(Clone, Debug)]
struct Produced {
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    aborted: bool,
}

/// Everything acknowledged on partition 0 of one topic.
#[derive(Default)]
struct Model {
    produced: BTreeMap<i64, Produced>,
    /// Per key, the offset of its last record that counts (not aborted).
    latest: BTreeMap<Vec<u8>, i64>,
    nudges: u64,
}

impl Model {
    fn record(&mut self, offset: i64, message: &TestMessage, aborted: bool) {
        let key = message
            .key
            .clone()
            .expect("every record of these tests has a key");
        if let Some((&last, _)) = self.produced.last_key_value() {
            assert!(
                offset > last,
                "acknowledged offset {offset} not above the previous {last}"
            );
        }
        self.produced.insert(
            offset,
            Produced {
                key: key.clone(),
                value: message.value.clone(),
                aborted,
            },
        );
        if !aborted {
            self.latest.insert(key, offset);
        }
    }

    /// The high watermark: one past the last acknowledged offset.
    fn end(&self) -> i64 {
        self.produced
            .last_key_value()
            .map_or(0, |(&offset, _)| offset + 1)
    }

    /// What a fully compacted partition holds: the last record of every key
    /// that is not a tombstone, in offset order.
    fn compacted(&self) -> Vec<Seen> {
        let offsets: BTreeSet<i64> = self.latest.values().copied().collect();
        offsets
            .into_iter()
            .filter_map(|offset| {
                let produced = &self.produced[&offset];
                produced.value.as_ref().map(|value| Seen {
                    offset,
                    key: Some(produced.key.clone()),
                    value: Some(value.clone()),
                })
            })
            .collect()
    }

    /// What must hold in every read, compacted or not.
    fn check(&self, seen: &[Seen], isolation: Isolation, topic: &str) {
        for pair in seen.windows(2) {
            assert!(
                pair[0].offset < pair[1].offset,
                "{topic} ({isolation:?}): offset {} followed by {}",
                pair[0].offset,
                pair[1].offset
            );
        }
        let offsets: BTreeSet<i64> = seen.iter().map(|s| s.offset).collect();
        let mut keys_seen: BTreeSet<&[u8]> = BTreeSet::new();
        for record in seen {
            let Some(produced) = self.produced.get(&record.offset) else {
                panic!(
                    "{topic} ({isolation:?}): a record at offset {} that was never acknowledged",
                    record.offset
                );
            };
            assert!(
                record.key.as_deref() == Some(produced.key.as_slice()) && record.value == produced.value,
                "{topic} ({isolation:?}): offset {} holds key {:?} value {:?}, produced there: key {:?} value {:?}",
                record.offset,
                record.key.as_deref().map(String::from_utf8_lossy),
                record.value.as_deref().map(abbreviated),
                String::from_utf8_lossy(&produced.key),
                produced.value.as_deref().map(abbreviated),
            );
            assert!(
                !(produced.aborted && isolation == Isolation::ReadCommitted),
                "{topic}: read_committed consumer got aborted record at offset {}",
                record.offset
            );
            keys_seen.insert(produced.key.as_slice());
        }
        for (key, &offset) in &self.latest {
            let tombstone = self.produced[&offset].value.is_none();
            if !tombstone {
                assert!(
                    offsets.contains(&offset),
                    "{topic} ({isolation:?}): the last record of key {} (offset {offset}) is missing",
                    String::from_utf8_lossy(key)
                );
            } else if !offsets.contains(&offset) {
                assert!(
                    !keys_seen.contains(key.as_slice()),
                    "{topic} ({isolation:?}): deleted key {} came back: its tombstone (offset {offset}) is gone but an older record is served",
                    String::from_utf8_lossy(key)
                );
            }
        }
    }

    /// Why `seen` is not the compacted form yet, for a timeout message.
    fn describe_difference(&self, seen: &[Seen]) -> String {
        let expected = self.compacted();
        let expected_offsets: BTreeSet<i64> = expected.iter().map(|s| s.offset).collect();
        let extra: Vec<i64> = seen
            .iter()
            .map(|s| s.offset)
            .filter(|offset| !expected_offsets.contains(offset))
            .collect();
        let tombstones = seen.iter().filter(|s| s.value.is_none()).count();
        let aborted = seen.iter().filter(|s| self.produced[&s.offset].aborted).count();
        format!(
            "{} records read, {} expected; {} not in the compacted form ({tombstones} tombstones, {aborted} aborted), first of them at offsets {:?}",
            seen.len(),
            expected.len(),
            extra.len(),
            &extra[..extra.len().min(10)]
        )
    }
}

fn abbreviated(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(24)];
    format!("{}... ({} bytes)", String::from_utf8_lossy(shown), bytes.len())
}

// ---------------------------------------------------------------------------
// Producing and reading
// ---------------------------------------------------------------------------

/// Sends `messages` (open transaction or not), asserts each was acknowledged
/// on partition 0, and records them in the model.
fn produce_recorded(
    producer: &RecordingProducer,
    deliveries: &DeliveryLog,
    topic: &str,
    messages: &[TestMessage],
    model: &mut Model,
    aborted: bool,
) {
    let reports = produce_and_flush(producer, deliveries, topic, messages);
    for (report, message) in reports.iter().zip(messages) {
        match report.outcome {
            Ok((0, offset)) => model.record(offset, message, aborted),
            ref other => panic!("{topic}: record {} acknowledged as {other:?}", report.id),
        }
    }
}

fn plain_producer(bootstrap: &str) -> (RecordingProducer, DeliveryLog) {
    let mut config = producer_config(bootstrap, "all");
    config.set("linger.ms", "20");
    recording_producer(&config)
}

/// Produces with a fresh plain producer and records in the model.
fn produce_plain(bootstrap: &str, topic: &str, messages: &[TestMessage], model: &mut Model) {
    let (producer, deliveries) = plain_producer(bootstrap);
    produce_recorded(&producer, &deliveries, topic, messages, model, false);
}

/// One record of 64 KiB under a key used once: seals the previous segment
/// (older than `segment.ms`) and dirties the log.
fn nudge(bootstrap: &str, topic: &str, model: &mut Model) {
    let n = model.nudges;
    model.nudges += 1;
    let message = TestMessage::keyed(
        0,
        format!("nudge-{n:05}"),
        pseudo_random_bytes(0xA0DE_0000 + n, NUDGE_BYTES),
    );
    produce_plain(bootstrap, topic, &[message], model);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isolation {
    ReadCommitted,
    ReadUncommitted,
}

impl Isolation {
    fn config_value(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read_committed",
            Isolation::ReadUncommitted => "read_uncommitted",
        }
    }
}

/// Reads partition 0 from the beginning until the consumer reports the end
/// of the partition (the high watermark; the last stable offset for
/// read_committed).
fn read_all(bootstrap: &str, topic: &str, isolation: Isolation) -> Vec<Seen> {
    let mut config = consumer_config(bootstrap);
    config
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation.config_value())
        .set("check.crcs", "true");
    let consumer: BaseConsumer = config.create().expect("create consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let mut seen = Vec::new();
    let deadline = Instant::now() + CONSUME_TIMEOUT;
    loop {
        assert!(
            Instant::now() < deadline,
            "{topic} ({isolation:?}): no end of partition within {CONSUME_TIMEOUT:?}, {} records read",
            seen.len()
        );
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(0))) => return seen,
            Some(Err(error)) => panic!(
                "{topic} ({isolation:?}): consumer error after {} records: {error}",
                seen.len()
            ),
            Some(Ok(message)) => seen.push(Seen {
                offset: message.offset(),
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().map(<[u8]>::to_vec),
            }),
        }
    }
}

/// Reads from the beginning until the partition holds exactly the model's
/// compacted form (read_uncommitted, then also read_committed), nudging
/// between reads. Returns that content.
fn wait_until_compacted(bootstrap: &str, topic: &str, model: &mut Model) -> Vec<Seen> {
    let deadline = Instant::now() + COMPACTION_WAIT;
    loop {
        let seen = read_all(bootstrap, topic, Isolation::ReadUncommitted);
        model.check(&seen, Isolation::ReadUncommitted, topic);
        let committed = read_all(bootstrap, topic, Isolation::ReadCommitted);
        model.check(&committed, Isolation::ReadCommitted, topic);
        let expected = model.compacted();
        if seen == expected {
            eprintln!("{topic}: compacted form read after {} nudges", model.nudges);
            assert_eq!(
                committed.len(),
                expected.len(),
                "{topic}: read_committed after compaction: {}",
                model.describe_difference(&committed)
            );
            assert!(
                committed == expected,
                "{topic}: read_committed after compaction differs"
            );
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} not compacted within {COMPACTION_WAIT:?}: {}",
            model.describe_difference(&seen)
        );
        nudge(bootstrap, topic, model);
        thread::sleep(POLL_PAUSE);
    }
}

// ---------------------------------------------------------------------------
// Keyed updates
// ---------------------------------------------------------------------------

fn key_of(index: usize) -> String {
    format!("k{index:05}")
}

/// About 100 bytes naming the key and the round, then bytes that depend on
/// both.
fn value_of(index: usize, round: usize) -> Vec<u8> {
    let mut value = format!("{} round {round:02} ", key_of(index)).into_bytes();
    let seed = (index * 1_000 + round) as u64;
    value.extend(pseudo_random_bytes(seed, 100 - value.len()));
    value
}

/// `rounds` updates of keys `0..keys`, one round after the other, each in
/// key order; in the last round every 10th key gets a tombstone instead.
fn produce_rounds(bootstrap: &str, topic: &str, keys: usize, rounds: usize, model: &mut Model) {
    let (producer, deliveries) = plain_producer(bootstrap);
    for round in 0..rounds {
        let messages: Vec<TestMessage> = (0..keys)
            .map(|index| {
                let deleted = round + 1 == rounds && index % 10 == 0;
                TestMessage {
                    partition: 0,
                    key: Some(key_of(index).into_bytes()),
                    value: (!deleted).then(|| value_of(index, round)),
                    headers: Vec::new(),
                    timestamp_ms: None,
                }
            })
            .collect();
        produce_recorded(&producer, &deliveries, topic, &messages, model, false);
    }
}

/// Asserts the compacted form of [`produce_rounds`]: keys in order, each
/// with its last round, deleted keys absent; then only nudges.
fn assert_rounds_compacted(seen: &[Seen], keys: usize, rounds: usize) {
    let live: Vec<usize> = (0..keys).filter(|index| index % 10 != 0).collect();
    assert!(
        seen.len() >= live.len(),
        "{} records, {} live keys",
        seen.len(),
        live.len()
    );
    for (record, &index) in seen.iter().zip(&live) {
        assert_eq!(
            record.key.as_deref(),
            Some(key_of(index).as_bytes()),
            "at offset {}",
            record.offset
        );
        assert!(
            record.value.as_deref() == Some(value_of(index, rounds - 1).as_slice()),
            "key {} at offset {}: not its last round",
            key_of(index),
            record.offset
        );
    }
    for record in &seen[live.len()..] {
        assert!(
            record
                .key
                .as_deref()
                .is_some_and(|key| key.starts_with(b"nudge-")),
            "after the live keys only nudges, got offset {} key {:?}",
            record.offset,
            record.key.as_deref().map(String::from_utf8_lossy)
        );
    }
}

/// The directory of `topic`'s partition 0 (Kafka keeps its logs under
/// `<data_dir>/logs`).
fn partition_dir(broker: &Broker, topic: &str) -> PathBuf {
    let base = match target() {
        Target::Weir => broker.data_dir().to_path_buf(),
        Target::Kafka => broker.data_dir().join("logs"),
    };
    base.join(format!("{topic}-0"))
}

/// Bytes of data in the `.log` files (exact suffix: not Kafka's
/// `.deleted`, nor `.cleaned` / `.swap` of a pass in progress; without the
/// zeros weir writes ahead of the appends, `common::log_data_bytes`).
fn log_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("read {}: {error}", dir.display()))
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".log"))
        .map(|entry| common::log_data_bytes(&entry.path()))
        .sum()
}

/// 10,000 keys × 20 updates, the last round deleting every 10th key: once
/// compacted, a consumer from the beginning gets exactly the last value of
/// every live key at the offset it was written at, and no deleted key; the
/// segments on disk shrink accordingly.
#[test]
fn compacted_topic_keeps_the_last_value_of_every_key_and_drops_deleted_keys() {
    const KEYS: usize = 10_000;
    const ROUNDS: usize = 20;
    let broker = compaction_broker();
    let bootstrap = broker.bootstrap();
    let topic = "compacted-updates";
    create_topic(&bootstrap, topic, 1, &COMPACTED_TOPIC);

    let mut model = Model::default();
    produce_rounds(&bootstrap, topic, KEYS, ROUNDS, &mut model);
    assert_eq!(
        model.end(),
        (KEYS * ROUNDS) as i64,
        "offsets of the produced records"
    );
    let produced_bytes: u64 = model
        .produced
        .values()
        .map(|p| (p.key.len() + p.value.as_ref().map_or(0, Vec::len)) as u64)
        .sum();

    let seen = wait_until_compacted(&bootstrap, topic, &mut model);
    assert_rounds_compacted(&seen, KEYS, ROUNDS);
    assert_eq!(seen.len() as u64, (KEYS - KEYS / 10) as u64 + model.nudges);
    assert_eq!(
        watermarks(&bootstrap, topic, 0),
        (0, model.end()),
        "compaction moves neither watermark"
    );

    // The replaced segments go (Kafka renames them `.deleted` at once).
    let dir = partition_dir(&broker, topic);
    let deadline = Instant::now() + COMPACTION_WAIT;
    let mut on_disk = log_bytes(&dir);
    while on_disk > produced_bytes / 4 {
        assert!(
            Instant::now() < deadline,
            "{}: {on_disk} bytes of .log files, {produced_bytes} bytes of keys and values produced",
            dir.display()
        );
        thread::sleep(POLL_PAUSE);
        on_disk = log_bytes(&dir);
    }
    if target() == Target::Weir {
        assert!(
            dir.join("cleaner-offset-checkpoint").is_file(),
            "{}: no cleaner-offset-checkpoint after compaction",
            dir.display()
        );
    }
}

// ---------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------

fn transactional_producer(bootstrap: &str, transactional_id: &str) -> (RecordingProducer, DeliveryLog) {
    let mut config: ClientConfig = client_config(bootstrap);
    config
        .set("transactional.id", transactional_id)
        .set("transaction.timeout.ms", "60000")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5");
    let (producer, deliveries) = recording_producer(&config);
    producer
        .init_transactions(TXN_CALL_TIMEOUT)
        .unwrap_or_else(|error| panic!("init_transactions: {error}"));
    (producer, deliveries)
}

/// Updates of keys `indexes` tagged with the round and what they are.
fn txn_messages(indexes: impl Iterator<Item = usize>, round: usize, kind: &str) -> Vec<TestMessage> {
    indexes
        .map(|index| {
            TestMessage::keyed(
                0,
                format!("t{index:03}"),
                format!("t{index:03} round {round} {kind}"),
            )
        })
        .collect()
}

/// Committed and aborted transactions interleaved with plain updates of the
/// same keys, the very last update of every key aborted: once compacted,
/// read_committed and read_uncommitted consumers both see exactly the last
/// committed or plain value of every key, and never an aborted record.
#[test]
fn compaction_keeps_committed_and_plain_values_and_removes_aborted_transactions() {
    const KEYS: usize = 300;
    let broker = compaction_broker();
    let bootstrap = broker.bootstrap();
    let topic = "compacted-transactions";
    create_topic(&bootstrap, topic, 1, &COMPACTED_TOPIC);
    let mut model = Model::default();
    let (plain, plain_deliveries) = plain_producer(&bootstrap);
    let (txn, txn_deliveries) = transactional_producer(&bootstrap, "compaction-txn");

    let transaction = |model: &mut Model, messages: &[TestMessage], commit: bool| {
        txn.begin_transaction().expect("begin_transaction");
        produce_recorded(&txn, &txn_deliveries, topic, messages, model, !commit);
        if commit {
            txn.commit_transaction(TXN_CALL_TIMEOUT)
                .expect("commit_transaction");
        } else {
            txn.abort_transaction(TXN_CALL_TIMEOUT)
                .expect("abort_transaction");
        }
    };
    let all = || 0..KEYS;
    produce_recorded(
        &plain,
        &plain_deliveries,
        topic,
        &txn_messages(all(), 0, "plain"),
        &mut model,
        false,
    );
    transaction(&mut model, &txn_messages(all(), 1, "committed"), true);
    transaction(&mut model, &txn_messages(all(), 2, "aborted"), false);
    let thirds = |rest: usize| (0..KEYS).filter(move |index| index % 3 == rest);
    produce_recorded(
        &plain,
        &plain_deliveries,
        topic,
        &txn_messages(thirds(0), 3, "plain"),
        &mut model,
        false,
    );
    transaction(&mut model, &txn_messages(thirds(1), 4, "committed"), true);
    transaction(&mut model, &txn_messages(all(), 5, "aborted"), false);

    let seen = wait_until_compacted(&bootstrap, topic, &mut model);
    let values: BTreeMap<String, String> = seen
        .iter()
        .filter(|record| record.key.as_deref().is_some_and(|key| key.starts_with(b"t")))
        .map(|record| {
            (
                String::from_utf8(record.key.clone().expect("key")).expect("utf-8 key"),
                String::from_utf8(record.value.clone().expect("value")).expect("utf-8 value"),
            )
        })
        .collect();
    let expected: BTreeMap<String, String> = (0..KEYS)
        .map(|index| {
            let key = format!("t{index:03}");
            let value = match index % 3 {
                0 => format!("{key} round 3 plain"),
                1 => format!("{key} round 4 committed"),
                _ => format!("{key} round 1 committed"),
            };
            (key, value)
        })
        .collect();
    assert_eq!(values, expected, "the value of every key after compaction");
    assert_eq!(
        seen.len() as u64,
        KEYS as u64 + model.nudges,
        "one record per key, plus the nudges"
    );
}

// ---------------------------------------------------------------------------
// Restarts
// ---------------------------------------------------------------------------

/// A compacted partition reads back the same after a clean restart (and,
/// on weir, after SIGKILL), produce continues at the old high watermark,
/// and compaction goes on from there.
#[test]
fn compacted_partition_survives_restarts_and_keeps_compacting() {
    const KEYS: usize = 2_000;
    const ROUNDS: usize = 5;
    let mut broker = compaction_broker();
    let topic = "compacted-restart";
    create_topic(&broker.bootstrap(), topic, 1, &COMPACTED_TOPIC);
    let mut model = Model::default();
    produce_rounds(&broker.bootstrap(), topic, KEYS, ROUNDS, &mut model);
    let compacted = wait_until_compacted(&broker.bootstrap(), topic, &mut model);
    assert_rounds_compacted(&compacted, KEYS, ROUNDS);
    let end = model.end();

    let mut restarts = vec!["clean restart"];
    if target() == Target::Weir {
        restarts.push("SIGKILL and restart");
    }
    for (n, how) in restarts.into_iter().enumerate() {
        if how == "clean restart" {
            broker.restart();
        } else {
            broker.kill9();
            broker.restart();
        }
        let bootstrap = broker.bootstrap();
        let seen = read_all(&bootstrap, topic, Isolation::ReadUncommitted);
        model.check(&seen, Isolation::ReadUncommitted, topic);
        assert!(
            seen == model.compacted(),
            "{how}: {}",
            model.describe_difference(&seen)
        );
        assert_eq!(
            watermarks(&bootstrap, topic, 0),
            (0, end + n as i64),
            "{how}: watermarks"
        );
        let after = TestMessage::keyed(0, format!("after-restart-{n}"), format!("produced after {how}"));
        produce_plain(&bootstrap, topic, std::slice::from_ref(&after), &mut model);
        assert_eq!(
            model.end(),
            end + n as i64 + 1,
            "{how}: the first record after it"
        );
        assert_eq!(model.latest[after.key.as_deref().expect("key")], end + n as i64);
    }

    // Compaction goes on: new values for some keys, more of them deleted.
    let bootstrap = broker.bootstrap();
    let updates: Vec<TestMessage> = (0..KEYS)
        .filter(|index| index % 10 != 0 && index % 7 == 0)
        .map(|index| TestMessage {
            partition: 0,
            key: Some(key_of(index).into_bytes()),
            value: (index % 3 != 0).then(|| value_of(index, ROUNDS)),
            headers: Vec::new(),
            timestamp_ms: None,
        })
        .collect();
    produce_plain(&bootstrap, topic, &updates, &mut model);
    let seen = wait_until_compacted(&bootstrap, topic, &mut model);
    let live = (0..KEYS)
        .filter(|index| index % 10 != 0 && !(index % 7 == 0 && index % 3 == 0))
        .count();
    let others = seen
        .iter()
        .filter(|record| record.key.as_deref().is_some_and(|key| key.starts_with(b"k")))
        .count();
    assert_eq!(others, live, "live keys after the second compaction");
}

// ---------------------------------------------------------------------------
// Keyless records
// ---------------------------------------------------------------------------

/// A record with a null key in a v2 batch (kafka-protocol encoder).
fn keyless(mut record: kafka_protocol::records::Record) -> kafka_protocol::records::Record {
    record.key = None;
    record
}

/// A compacted topic refuses records without a key with INVALID_RECORD,
/// the whole batch (nothing of it is appended); tombstones with a key are
/// fine; a topic altered to compact starts refusing them too.
#[test]
fn keyless_records_are_refused_by_compacted_topics() {
    let broker = compaction_broker();
    let bootstrap = broker.bootstrap();
    let topic = "compacted-keyless";
    create_topic(&bootstrap, topic, 1, &COMPACTED_TOPIC);

    // A real producer: the delivery report carries the broker's error.
    let (producer, deliveries) = plain_producer(&bootstrap);
    let keyless_message = TestMessage {
        partition: 0,
        key: None,
        value: Some(b"no key".to_vec()),
        headers: Vec::new(),
        timestamp_ms: None,
    };
    let reports = produce_and_flush(
        &producer,
        &deliveries,
        topic,
        std::slice::from_ref(&keyless_message),
    );
    let invalid_record = Err(KafkaError::MessageProduction(RDKafkaErrorCode::InvalidRecord).to_string());
    assert_eq!(
        reports[0].outcome, invalid_record,
        "keyless record to a compacted topic"
    );

    // One batch: keyed, keyless, keyed. All of it is refused (its details
    // are checked at the end).
    let now = now_ms();
    let batch = wire::encode_batch(&[
        wire::record(0, now, b"a", b"first"),
        keyless(wire::record(1, now, b"", b"second")),
        wire::record(2, now, b"c", b"third"),
    ]);
    let mut connection = Connection::open(broker.socket_addr());
    let response = connection.produce_within(8..=8, topic, 0, -1, batch);
    eprintln!("produce of a batch with a keyless record: {response:?}");
    assert_eq!(response.error_code, ERROR_INVALID_RECORD, "{response:?}");
    assert_eq!(response.base_offset, -1, "{response:?}");
    assert_eq!(watermarks(&bootstrap, topic, 0), (0, 0), "nothing appended");
    let refused = response;

    // Keyed records, a tombstone among them, are accepted from offset 0.
    let tombstone = wire::encode_batch(&[wire::record(0, now, b"a", b"first"), {
        let mut record = wire::record(1, now, b"a", b"");
        record.value = None;
        record
    }]);
    let response = connection.produce_within(8..=8, topic, 0, -1, tombstone);
    assert_eq!(
        (response.error_code, response.base_offset),
        (ERROR_NONE, 0),
        "{response:?}"
    );
    assert_eq!(watermarks(&bootstrap, topic, 0), (0, 2));

    // A delete topic takes keyless records until it is altered to compact.
    let altered = "altered-to-compact";
    create_topic(&bootstrap, altered, 1, &[("segment.bytes", "1048576")]);
    let reports = produce_and_flush(
        &producer,
        &deliveries,
        altered,
        std::slice::from_ref(&keyless_message),
    );
    assert_eq!(reports[0].outcome, Ok((0, 0)), "keyless record to a delete topic");
    let mut alter = AlterConfig::new(ResourceSpecifier::Topic(altered));
    alter = alter
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "1048576");
    let results = block_on(
        admin(&bootstrap).alter_configs([&alter], &admin_options()),
        CLIENT_TIMEOUT,
    )
    .expect("AlterConfigs request");
    assert_eq!(results.len(), 1);
    assert!(results[0].is_ok(), "AlterConfigs of {altered}: {:?}", results[0]);
    let deadline = Instant::now() + COMPACTION_WAIT;
    loop {
        let reports = produce_and_flush(
            &producer,
            &deliveries,
            altered,
            std::slice::from_ref(&keyless_message),
        );
        if reports[0].outcome == invalid_record {
            break;
        }
        // Kafka applies a topic's new configs shortly after AlterConfigs
        // returns; meanwhile the record is still taken.
        assert!(
            matches!(reports[0].outcome, Ok((0, _))),
            "keyless record after AlterConfigs: {:?}",
            reports[0].outcome
        );
        assert!(Instant::now() < deadline, "{altered} still takes keyless records");
        thread::sleep(POLL_PAUSE);
    }

    // What Kafka says about the refused batch: the keyless record's index
    // in the batch with the reason, and the log start offset.
    let reason = format!("Compacted topic cannot accept message without key in topic partition {topic}-0");
    let record_errors: Vec<(i32, Option<String>)> = refused
        .record_errors
        .iter()
        .map(|e| {
            (
                e.batch_index,
                e.batch_index_error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .collect();
    assert_eq!(
        record_errors,
        vec![(1, Some(reason.clone()))],
        "record_errors of the refused batch: {refused:?}"
    );
    assert_eq!(
        refused.error_message.as_ref().map(|m| m.to_string()),
        Some(format!(
            "One or more records have been rejected due to 1 record errors in total, and only \
             showing the first three errors at most: [RecordError(batchIndex=1, message='{reason}')]"
        )),
        "error_message of the refused batch"
    );
    assert_eq!(
        refused.log_start_offset, 0,
        "log_start_offset of the refused batch: {refused:?}"
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

// ---------------------------------------------------------------------------
// Internal topics
// ---------------------------------------------------------------------------

/// Commits `offsets`, retrying while the coordinator is not ready yet
/// (Kafka creates `__consumer_offsets` on the group's first request and
/// answers NOT_COORDINATOR until it is loaded).
fn commit_until_accepted(consumer: &BaseConsumer, offsets: &TopicPartitionList) {
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    loop {
        match consumer.commit(offsets, CommitMode::Sync) {
            Ok(()) => return,
            Err(KafkaError::ConsumerCommit(
                code @ (RDKafkaErrorCode::NotCoordinator
                | RDKafkaErrorCode::CoordinatorLoadInProgress
                | RDKafkaErrorCode::CoordinatorNotAvailable),
            )) => {
                assert!(Instant::now() < deadline, "commit still failing with {code:?}");
                thread::sleep(Duration::from_millis(200));
            }
            Err(error) => panic!("commit: {error}"),
        }
    }
}

/// `__consumer_offsets` (after a group committed offsets) and
/// `__transaction_state` (after a transactional producer started) are
/// compacted topics, as DescribeConfigs shows.
#[test]
fn internal_topics_are_compacted() {
    let broker = compaction_broker();
    let bootstrap = broker.bootstrap();
    let topic = "offsets-committed";
    create_topic(&bootstrap, topic, 1, &[]);
    let mut group_config = consumer_config(&bootstrap);
    group_config.set("group.id", "compaction-commits");
    let consumer: BaseConsumer = group_config.create().expect("create consumer");
    for offset in 1..=200 {
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(topic, 0, Offset::Offset(offset))
            .expect("offsets");
        commit_until_accepted(&consumer, &offsets);
    }
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition(topic, 0);
    let committed = consumer
        .committed_offsets(wanted, CLIENT_TIMEOUT)
        .expect("committed offsets");
    assert_eq!(
        committed.find_partition(topic, 0).map(|p| p.offset()),
        Some(Offset::Offset(200)),
        "the last commit"
    );
    let (txn, _) = transactional_producer(&bootstrap, "compaction-internal");
    drop(txn);

    let admin = admin(&bootstrap);
    for internal in ["__consumer_offsets", "__transaction_state"] {
        let results = block_on(
            admin.describe_configs([&ResourceSpecifier::Topic(internal)], &admin_options()),
            CLIENT_TIMEOUT,
        )
        .expect("DescribeConfigs request");
        assert_eq!(results.len(), 1);
        let resource = results[0]
            .as_ref()
            .unwrap_or_else(|error| panic!("DescribeConfigs of {internal}: {error:?}"));
        let entries = resource.entry_map();
        let policy = entries
            .get("cleanup.policy")
            .unwrap_or_else(|| panic!("{internal}: no cleanup.policy in {:?}", resource.entries));
        eprintln!("{internal}: {policy:?}");
        assert_eq!(
            policy.value.as_deref(),
            Some("compact"),
            "{internal} cleanup.policy"
        );
        assert_eq!(
            policy.source,
            ConfigSource::DynamicTopic,
            "{internal} cleanup.policy source"
        );
        assert!(!policy.is_default, "{internal} cleanup.policy is not the default");
    }
}

// ---------------------------------------------------------------------------
// weir only: the bounded key map
// ---------------------------------------------------------------------------

/// With a key map of 2,048 keys (64 KiB), 5,000 keys take several passes;
/// they end in the same compacted form.
#[test]
fn a_small_key_map_compacts_in_several_passes() {
    const KEYS: usize = 5_000;
    const ROUNDS: usize = 4;
    let mut settings = cleaner_settings();
    settings.push((
        "compaction_key_map_bytes_max",
        "log.cleaner.dedupe.buffer.size",
        "65536".to_string(),
    ));
    let broker = Broker::start_weir(BrokerOptions {
        settings,
        ..BrokerOptions::default()
    });
    let bootstrap = broker.bootstrap();
    let topic = "compacted-small-map";
    create_topic(&bootstrap, topic, 1, &COMPACTED_TOPIC);
    let mut model = Model::default();
    produce_rounds(&bootstrap, topic, KEYS, ROUNDS, &mut model);
    let seen = wait_until_compacted(&bootstrap, topic, &mut model);
    assert_rounds_compacted(&seen, KEYS, ROUNDS);
    // weir logs each pass ("<topic>-<p>: compacted to offset O: N keys,
    // ..."): no pass mapped more keys than the map holds, some filled it.
    let logs = broker.logs();
    let keys_per_pass: Vec<usize> = logs
        .lines()
        .filter_map(|line| {
            line.split_once(&format!("{topic}-0: compacted to offset "))?
                .1
                .split_once(": ")
        })
        .filter_map(|(_, rest)| rest.split_once(" keys")?.0.parse().ok())
        .collect();
    assert!(
        keys_per_pass.len() >= KEYS.div_ceil(2048) && keys_per_pass.iter().all(|&keys| keys <= 2048),
        "keys mapped per pass: {keys_per_pass:?}\n{logs}"
    );
    assert!(
        keys_per_pass.contains(&2048),
        "no pass filled the key map: {keys_per_pass:?}"
    );
}
