//! The idempotent producer: InitProducerId hands out producer ids that are
//! never reused, and per partition and producer id the broker accepts each
//! batch exactly once and in sequence.
//!
//! Three angles:
//!
//! * a real client (librdkafka, `enable.idempotence=true`) behind a proxy
//!   that cuts every connection after 150–300 ms, mid-request or
//!   mid-response, so that batches the broker already appended are sent
//!   again; the log read back directly from the broker must hold every
//!   message exactly once, in send order;
//! * hand-built batches (kafka-protocol's encoder, raw frames): duplicates,
//!   gaps, epochs and missing sequences each get the exact answer Kafka
//!   gives, and the state survives a clean restart and a SIGKILL;
//! * expiration of idle producer ids.
//!
//! Batches carry wall-clock timestamps: the broker measures a producer's
//! idleness by the max timestamp of its batches, as Kafka does.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::records::{Record, TimestampType, NO_PARTITION_LEADER_EPOCH};
use rdkafka::producer::Producer;

use common::proxy::CuttingProxy;
use common::wire::{self, Connection, ERROR_NONE};
use common::{client_config, create_topic, enqueue, recording_producer, Broker, BrokerOptions, TestMessage};

const ERROR_OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const ERROR_INVALID_PRODUCER_EPOCH: i16 = 47;
const ERROR_INVALID_RECORD: i16 = 87;

/// Batches per partition and producer id the broker remembers for duplicate
/// detection (Kafka's 5, the most a client keeps in flight).
const REMEMBERED_BATCHES: usize = 5;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

// ---------------------------------------------------------------------------
// Raw protocol helpers
// ---------------------------------------------------------------------------

/// InitProducerId without a transactional id at `version`: asserts success
/// and epoch 0, returns the producer id.
fn init_producer_id_at(connection: &mut Connection, version: i16) -> i64 {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id((-1).into())
        .with_producer_epoch(-1);
    let response = connection.call(version, &request);
    assert_eq!(
        response.error_code, ERROR_NONE,
        "InitProducerId v{version} without transactional id: {response:?}"
    );
    assert!(
        response.producer_id.0 >= 0,
        "InitProducerId v{version} returned producer id {}: {response:?}",
        response.producer_id.0
    );
    assert_eq!(
        response.producer_epoch, 0,
        "InitProducerId v{version}: a fresh producer id starts at epoch 0: {response:?}"
    );
    response.producer_id.0
}

/// InitProducerId at the highest version both sides know.
fn init_producer_id(connection: &mut Connection) -> i64 {
    let version = connection.negotiate(ApiKey::InitProducerId, 0..=5);
    init_producer_id_at(connection, version)
}

/// The value of the record with `sequence` in a batch written with `tag`:
/// a read-back tells every batch and record apart.
fn record_value(tag: &str, sequence: i32) -> String {
    format!("{tag} seq {sequence}")
}

/// One uncompressed v2 batch of `count` records from `producer_id` at
/// `producer_epoch`, sequences `base_sequence..base_sequence + count`
/// (`base_sequence` -1: a batch without sequence), stamped now.
fn idempotent_batch(
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    count: i32,
    tag: &str,
) -> Bytes {
    assert!(count > 0);
    let timestamp = now_ms();
    let records: Vec<Record> = (0..count)
        .map(|index| {
            let sequence = base_sequence.wrapping_add(index);
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i64::from(index),
                sequence,
                timestamp,
                key: Some(Bytes::from(format!("{tag}-{sequence}"))),
                value: Some(Bytes::from(record_value(tag, sequence))),
                headers: Default::default(),
            }
        })
        .collect();
    let batch = wire::encode_batch(&records);
    // The encoder derives the header from the records: check it did what
    // the test means, so a wrong header cannot pass as a broker bug.
    const PRODUCER_ID: usize = 43;
    const PRODUCER_EPOCH: usize = 51;
    const BASE_SEQUENCE: usize = 53;
    let read_i64 = |at: usize| i64::from_be_bytes(batch[at..at + 8].try_into().expect("8 bytes"));
    let read_i32 = |at: usize| i32::from_be_bytes(batch[at..at + 4].try_into().expect("4 bytes"));
    let read_i16 = |at: usize| i16::from_be_bytes(batch[at..at + 2].try_into().expect("2 bytes"));
    assert_eq!(read_i64(PRODUCER_ID), producer_id, "encoded producer id");
    assert_eq!(read_i16(PRODUCER_EPOCH), producer_epoch, "encoded epoch");
    assert_eq!(read_i32(BASE_SEQUENCE), base_sequence, "encoded base sequence");
    assert_eq!(
        read_i32(wire::batch_layout::RECORD_COUNT),
        count,
        "encoded record count"
    );
    batch
}

/// Produce (acks=all) of one batch to one partition.
fn send(connection: &mut Connection, topic: &str, partition: i32, batch: &Bytes) -> PartitionProduceResponse {
    connection.produce(topic, partition, -1, batch.clone())
}

/// Asserts the batch was appended (or recognised as a duplicate) at
/// `base_offset`.
fn assert_accepted(response: &PartitionProduceResponse, base_offset: i64, what: &str) {
    assert_eq!(
        (response.error_code, response.base_offset),
        (ERROR_NONE, base_offset),
        "{what}: expected (no error, base offset {base_offset}), got {response:?}"
    );
}

fn assert_rejected(response: &PartitionProduceResponse, error_code: i16, what: &str) {
    assert_eq!(
        response.error_code, error_code,
        "{what}: expected error {error_code}, got {response:?}"
    );
}

fn high_watermark(connection: &mut Connection, topic: &str, partition: i32) -> i64 {
    let (error_code, offset) = connection.list_offset(topic, partition, -1);
    assert_eq!(
        error_code, ERROR_NONE,
        "ListOffsets latest of {topic}/{partition}"
    );
    offset
}

fn assert_high_watermark(
    connection: &mut Connection,
    topic: &str,
    partition: i32,
    expected: i64,
    what: &str,
) {
    assert_eq!(
        high_watermark(connection, topic, partition),
        expected,
        "{topic}/{partition} high watermark {what}"
    );
}

/// Every record of the partition as (offset, value), read with Fetch from
/// offset 0 up to the high watermark.
fn read_partition(connection: &mut Connection, topic: &str, partition: i32) -> Vec<(i64, String)> {
    let high_watermark = high_watermark(connection, topic, partition);
    let mut out = Vec::new();
    let mut offset = 0;
    let deadline = Instant::now() + common::CONSUME_TIMEOUT;
    while offset < high_watermark {
        assert!(
            Instant::now() < deadline,
            "{topic}/{partition}: read up to offset {offset} of {high_watermark} within {:?}",
            common::CONSUME_TIMEOUT
        );
        let fetched = connection.fetch(topic, partition, offset, 100);
        assert_eq!(
            fetched.error_code, ERROR_NONE,
            "fetch {topic}/{partition} at {offset}"
        );
        for record in wire::decode_records(fetched.records.unwrap_or_default()) {
            if record.offset < offset {
                continue;
            }
            assert_eq!(
                record.offset, offset,
                "{topic}/{partition}: offsets must be dense"
            );
            let value =
                String::from_utf8(record.value.map(|v| v.to_vec()).unwrap_or_default()).expect("utf-8 value");
            out.push((record.offset, value));
            offset += 1;
        }
    }
    out
}

/// Asserts the partition holds exactly `values`, at offsets from 0.
fn assert_partition_holds(connection: &mut Connection, topic: &str, partition: i32, values: &[String]) {
    let stored = read_partition(connection, topic, partition);
    let stored: Vec<&str> = stored.iter().map(|(_, value)| value.as_str()).collect();
    let expected: Vec<&str> = values.iter().map(String::as_str).collect();
    assert_eq!(stored, expected, "records of {topic}/{partition}");
}

fn values(tag: &str, sequences: std::ops::Range<i32>) -> Vec<String> {
    sequences.map(|sequence| record_value(tag, sequence)).collect()
}

enum Stop {
    /// SIGTERM, asserting a clean exit.
    Clean,
    Sigkill,
}

/// Stops the broker and starts it again on the same port and data
/// directory (`Broker::restart` waits until the old port is released).
fn restart_after(broker: &mut Broker, stop: Stop) {
    match stop {
        Stop::Clean => broker.stop(),
        Stop::Sigkill => broker.kill9(),
    }
    broker.restart();
}

fn raw_broker_with_topic(topic: &str, partitions: i32) -> (Broker, Connection) {
    let broker = Broker::start();
    create_topic(&broker.bootstrap(), topic, partitions, &[]);
    let connection = Connection::open(broker.socket_addr());
    (broker, connection)
}

// ---------------------------------------------------------------------------
// InitProducerId
// ---------------------------------------------------------------------------

#[test]
fn init_producer_id_without_transactional_id_hands_out_distinct_ids_at_epoch_zero_in_every_version() {
    let broker = Broker::start();
    let mut first = Connection::open(broker.socket_addr());
    let mut second = Connection::open(broker.socket_addr());
    let highest = first.negotiate(ApiKey::InitProducerId, 0..=5);
    assert_eq!(highest, 5, "the broker should serve InitProducerId up to v5");
    let mut seen = BTreeSet::new();
    for round in 0..5 {
        for version in 0..=highest {
            for connection in [&mut first, &mut second] {
                let producer_id = init_producer_id_at(connection, version);
                assert!(
                    seen.insert(producer_id),
                    "InitProducerId v{version} (round {round}) returned producer id {producer_id} twice; \
                     handed out so far: {seen:?}"
                );
            }
        }
    }
}

#[test]
fn producer_ids_after_clean_restart_and_after_sigkill_are_larger_than_every_id_handed_out_before() {
    let mut broker = Broker::start();
    let mut seen = BTreeSet::new();
    let take_ids = |seen: &mut BTreeSet<i64>, broker: &Broker, count: usize, phase: &str| -> (i64, i64) {
        let mut connection = Connection::open(broker.socket_addr());
        let (mut low, mut high) = (i64::MAX, i64::MIN);
        for _ in 0..count {
            let producer_id = init_producer_id(&mut connection);
            assert!(
                seen.insert(producer_id),
                "{phase}: producer id {producer_id} handed out twice"
            );
            low = low.min(producer_id);
            high = high.max(producer_id);
        }
        (low, high)
    };

    let (_, high_before_restart) = take_ids(&mut seen, &broker, 10, "first start");
    restart_after(&mut broker, Stop::Clean);
    let (low, high_after_restart) = take_ids(&mut seen, &broker, 10, "after clean restart");
    assert!(
        low > high_before_restart,
        "after a clean restart the broker handed out producer id {low}, not above {high_before_restart} \
         handed out before"
    );

    // More than one block of 1000 ids, so the SIGKILL lands after a block
    // was used up and a new one allocated.
    let (_, high_before_kill) = take_ids(&mut seen, &broker, 1_100, "before SIGKILL");
    assert!(high_before_kill > high_after_restart);
    restart_after(&mut broker, Stop::Sigkill);
    let (low, _) = take_ids(&mut seen, &broker, 10, "after SIGKILL");
    assert!(
        low > high_before_kill,
        "after SIGKILL the broker handed out producer id {low}, not above {high_before_kill} handed out before"
    );
    restart_after(&mut broker, Stop::Sigkill);
    let high_so_far = *seen.last().expect("ids");
    let (low, _) = take_ids(&mut seen, &broker, 1, "after a SIGKILL right after the restart");
    assert!(
        low > high_so_far,
        "after a second SIGKILL the broker handed out producer id {low}, not above {high_so_far}"
    );
}

// ---------------------------------------------------------------------------
// Sequence and epoch checks on Produce
// ---------------------------------------------------------------------------

#[test]
fn retried_batch_among_the_last_five_is_answered_with_its_original_offset_and_not_appended() {
    let topic = "idem-duplicates";
    let (_broker, mut connection) = raw_broker_with_topic(topic, 1);
    let producer_id = init_producer_id(&mut connection);

    // Seven batches of 3 records: sequences 0..21 at offsets 0..21.
    let batches: Vec<Bytes> = (0..7)
        .map(|index| idempotent_batch(producer_id, 0, index * 3, 3, "dup"))
        .collect();
    for (index, batch) in batches.iter().enumerate() {
        let response = send(&mut connection, topic, 0, batch);
        assert_accepted(
            &response,
            index as i64 * 3,
            &format!("first send of batch {index}"),
        );
    }
    assert_high_watermark(&mut connection, topic, 0, 21, "after 7 batches");

    // The last five (2..=6) are duplicates: original offset, nothing appended.
    for index in (7 - REMEMBERED_BATCHES..7).rev() {
        let response = send(&mut connection, topic, 0, &batches[index]);
        assert_accepted(
            &response,
            index as i64 * 3,
            &format!(
                "retry of batch {index} (sequences {}..={})",
                index * 3,
                index * 3 + 2
            ),
        );
        assert_high_watermark(
            &mut connection,
            topic,
            0,
            21,
            &format!("after retrying batch {index}"),
        );
    }
    // Batch 1 is older than the last five: no longer known, and its
    // sequence is not the next one.
    let response = send(&mut connection, topic, 0, &batches[1]);
    assert_rejected(
        &response,
        ERROR_OUT_OF_ORDER_SEQUENCE_NUMBER,
        "retry of batch 1, older than the last 5",
    );
    assert_high_watermark(&mut connection, topic, 0, 21, "after retrying batch 1");

    // The next batch in sequence still goes through, right after.
    let next = idempotent_batch(producer_id, 0, 21, 2, "dup");
    assert_accepted(
        &send(&mut connection, topic, 0, &next),
        21,
        "next batch in sequence",
    );
    assert_partition_holds(&mut connection, topic, 0, &values("dup", 0..23));
}

#[test]
fn sequence_gap_or_overlap_is_rejected_with_out_of_order_sequence_and_nothing_is_appended() {
    let topic = "idem-gaps";
    let (_broker, mut connection) = raw_broker_with_topic(topic, 1);
    let producer_id = init_producer_id(&mut connection);
    let first = idempotent_batch(producer_id, 0, 0, 5, "gap");
    assert_accepted(&send(&mut connection, topic, 0, &first), 0, "sequences 0..=4");

    let cases = [
        (6, 3, "gap: sequences 6..=8 after 4"),
        (100, 1, "gap: sequence 100 after 4"),
        (3, 4, "overlap: sequences 3..=6 after 4"),
        (4, 1, "overlap: sequence 4 again, not the same batch"),
        (1, 3, "overlap: sequences 1..=3, inside a stored batch"),
    ];
    for (base_sequence, count, what) in cases {
        let batch = idempotent_batch(producer_id, 0, base_sequence, count, "gap-rejected");
        assert_rejected(
            &send(&mut connection, topic, 0, &batch),
            ERROR_OUT_OF_ORDER_SEQUENCE_NUMBER,
            what,
        );
        assert_high_watermark(&mut connection, topic, 0, 5, &format!("after {what}"));
    }

    let next = idempotent_batch(producer_id, 0, 5, 3, "gap");
    assert_accepted(
        &send(&mut connection, topic, 0, &next),
        5,
        "sequences 5..=7 after 4",
    );
    assert_partition_holds(&mut connection, topic, 0, &values("gap", 0..8));
}

#[test]
fn lower_producer_epoch_is_rejected_with_invalid_producer_epoch() {
    let topic = "idem-fenced-epoch";
    let (_broker, mut connection) = raw_broker_with_topic(topic, 1);
    let producer_id = init_producer_id(&mut connection);
    assert_accepted(
        &send(
            &mut connection,
            topic,
            0,
            &idempotent_batch(producer_id, 0, 0, 3, "epoch0"),
        ),
        0,
        "epoch 0, sequences 0..=2",
    );
    assert_accepted(
        &send(
            &mut connection,
            topic,
            0,
            &idempotent_batch(producer_id, 1, 0, 2, "epoch1"),
        ),
        3,
        "epoch 1, sequences 0..=1",
    );
    for (base_sequence, what) in [
        (
            3,
            "epoch 0 continuing its own sequence (3) after epoch 1 appeared",
        ),
        (0, "epoch 0 from sequence 0 after epoch 1 appeared"),
        (2, "epoch 0 continuing epoch 1's sequence (2)"),
    ] {
        let stale = idempotent_batch(producer_id, 0, base_sequence, 2, "stale");
        assert_rejected(
            &send(&mut connection, topic, 0, &stale),
            ERROR_INVALID_PRODUCER_EPOCH,
            what,
        );
        assert_high_watermark(&mut connection, topic, 0, 5, &format!("after {what}"));
    }
    assert_accepted(
        &send(
            &mut connection,
            topic,
            0,
            &idempotent_batch(producer_id, 1, 2, 1, "epoch1"),
        ),
        5,
        "epoch 1, sequence 2",
    );
    let mut expected = values("epoch0", 0..3);
    expected.extend(values("epoch1", 0..3));
    assert_partition_holds(&mut connection, topic, 0, &expected);
}

#[test]
fn higher_producer_epoch_is_accepted_only_from_sequence_zero() {
    let topic = "idem-epoch-bump";
    let (_broker, mut connection) = raw_broker_with_topic(topic, 1);
    let producer_id = init_producer_id(&mut connection);
    assert_accepted(
        &send(
            &mut connection,
            topic,
            0,
            &idempotent_batch(producer_id, 0, 0, 5, "old"),
        ),
        0,
        "epoch 0, sequences 0..=4",
    );
    for (base_sequence, what) in [
        (5, "epoch 1 continuing epoch 0's sequence (5)"),
        (1, "epoch 1 from sequence 1"),
    ] {
        let bumped = idempotent_batch(producer_id, 1, base_sequence, 2, "bumped-wrong");
        assert_rejected(
            &send(&mut connection, topic, 0, &bumped),
            ERROR_OUT_OF_ORDER_SEQUENCE_NUMBER,
            what,
        );
        assert_high_watermark(&mut connection, topic, 0, 5, &format!("after {what}"));
    }
    let bumped = idempotent_batch(producer_id, 1, 0, 2, "new");
    assert_accepted(
        &send(&mut connection, topic, 0, &bumped),
        5,
        "epoch 1 from sequence 0",
    );
    // Its retry is a duplicate of the new epoch.
    assert_accepted(
        &send(&mut connection, topic, 0, &bumped),
        5,
        "retry of epoch 1's first batch",
    );
    // A jump of several epochs also starts over at 0.
    let jumped = idempotent_batch(producer_id, 7, 0, 1, "jumped");
    assert_accepted(
        &send(&mut connection, topic, 0, &jumped),
        7,
        "epoch 7 from sequence 0",
    );
    let mut expected = values("old", 0..5);
    expected.extend(values("new", 0..2));
    expected.extend(values("jumped", 0..1));
    assert_partition_holds(&mut connection, topic, 0, &expected);
}

#[test]
fn batch_with_producer_id_but_no_sequence_is_rejected_with_invalid_record() {
    let topic = "idem-no-sequence";
    let (_broker, mut connection) = raw_broker_with_topic(topic, 1);
    let producer_id = init_producer_id(&mut connection);
    let no_sequence = idempotent_batch(producer_id, 0, -1, 3, "no-seq");
    assert_rejected(
        &send(&mut connection, topic, 0, &no_sequence),
        ERROR_INVALID_RECORD,
        "producer id with base sequence -1",
    );
    assert_high_watermark(&mut connection, topic, 0, 0, "after the rejected batch");
    // The producer is not poisoned: its real first batch is accepted.
    let first = idempotent_batch(producer_id, 0, 0, 2, "seq");
    assert_accepted(&send(&mut connection, topic, 0, &first), 0, "sequences 0..=1");
    assert_partition_holds(&mut connection, topic, 0, &values("seq", 0..2));
}

#[test]
fn unknown_producer_id_is_accepted_at_any_sequence_and_sequences_are_tracked_per_partition() {
    let topic = "idem-unknown-producer";
    let (_broker, mut connection) = raw_broker_with_topic(topic, 2);
    let producer_id = init_producer_id(&mut connection);
    // KIP-360: a producer id the partition has no state for starts anywhere.
    let late_start = idempotent_batch(producer_id, 0, 42, 3, "late");
    assert_accepted(
        &send(&mut connection, topic, 0, &late_start),
        0,
        "first batch at sequence 42",
    );
    // From then on it is tracked: 45 is next, 46 is a gap.
    let gap = idempotent_batch(producer_id, 0, 46, 1, "late-gap");
    assert_rejected(
        &send(&mut connection, topic, 0, &gap),
        ERROR_OUT_OF_ORDER_SEQUENCE_NUMBER,
        "sequence 46 after 42..=44",
    );
    let next = idempotent_batch(producer_id, 0, 45, 1, "late");
    assert_accepted(
        &send(&mut connection, topic, 0, &next),
        3,
        "sequence 45 after 42..=44",
    );

    // Partition 1 has its own sequence space: the very same batch bytes that
    // are a duplicate on partition 0 are new there.
    assert_accepted(
        &send(&mut connection, topic, 1, &late_start),
        0,
        "partition 1: batch already stored on partition 0",
    );
    assert_accepted(
        &send(&mut connection, topic, 0, &late_start),
        0,
        "partition 0: retry of its first batch",
    );
    assert_high_watermark(&mut connection, topic, 0, 4, "at the end");
    assert_high_watermark(&mut connection, topic, 1, 3, "at the end");
    assert_partition_holds(&mut connection, topic, 0, &values("late", 42..46));
    assert_partition_holds(&mut connection, topic, 1, &values("late", 42..45));
}

// ---------------------------------------------------------------------------
// State across restarts
// ---------------------------------------------------------------------------

/// One accepted batch and where it went.
#[derive(Clone)]
struct SentBatch {
    bytes: Bytes,
    partition: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    count: i32,
    base_offset: i64,
    tag: String,
}

/// The test's model of what a partition holds and which batches each
/// producer (id, epoch) sent there.
struct Ledger {
    topic: &'static str,
    sent: Vec<SentBatch>,
    /// Per partition: values at offsets 0.. .
    logs: BTreeMap<i32, Vec<String>>,
}

impl Ledger {
    fn new(topic: &'static str) -> Ledger {
        Ledger {
            topic,
            sent: Vec::new(),
            logs: BTreeMap::new(),
        }
    }

    fn end_offset(&self, partition: i32) -> i64 {
        self.logs.get(&partition).map_or(0, |log| log.len() as i64)
    }

    /// The next sequence of (producer id, epoch) on `partition`: one past the
    /// last batch it sent there, 0 if none.
    fn next_sequence(&self, partition: i32, producer_id: i64, producer_epoch: i16) -> i32 {
        self.sent
            .iter()
            .rev()
            .find(|b| {
                b.partition == partition && b.producer_id == producer_id && b.producer_epoch == producer_epoch
            })
            .map_or(0, |b| b.base_sequence + b.count)
    }

    /// Sends the next batch of `count` records of (producer id, epoch) and
    /// asserts it is appended at the end of the partition.
    fn append(
        &mut self,
        connection: &mut Connection,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        count: i32,
    ) {
        let base_sequence = self.next_sequence(partition, producer_id, producer_epoch);
        let tag = format!("p{producer_id}-e{producer_epoch}");
        let bytes = idempotent_batch(producer_id, producer_epoch, base_sequence, count, &tag);
        let base_offset = self.end_offset(partition);
        assert_accepted(
            &send(connection, self.topic, partition, &bytes),
            base_offset,
            &format!("partition {partition}: producer {producer_id} epoch {producer_epoch} sequences from {base_sequence}"),
        );
        self.logs
            .entry(partition)
            .or_default()
            .extend(values(&tag, base_sequence..base_sequence + count));
        self.sent.push(SentBatch {
            bytes,
            partition,
            producer_id,
            producer_epoch,
            base_sequence,
            count,
            base_offset,
            tag,
        });
    }

    /// The last (up to) five batches of (producer id, epoch) on `partition`.
    fn remembered(&self, partition: i32, producer_id: i64, producer_epoch: i16) -> Vec<SentBatch> {
        let mut batches: Vec<SentBatch> = self
            .sent
            .iter()
            .filter(|b| {
                b.partition == partition && b.producer_id == producer_id && b.producer_epoch == producer_epoch
            })
            .cloned()
            .collect();
        let skip = batches.len().saturating_sub(REMEMBERED_BATCHES);
        batches.drain(..skip);
        batches
    }

    /// After a restart: every remembered batch of the producer is still a
    /// duplicate answered with its original offset, and a gap is still out
    /// of order. Nothing is appended.
    fn assert_producer_state_recognised(
        &self,
        connection: &mut Connection,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        when: &str,
    ) {
        let remembered = self.remembered(partition, producer_id, producer_epoch);
        assert!(
            !remembered.is_empty(),
            "test bug: producer {producer_id} sent nothing to {partition}"
        );
        let end = self.end_offset(partition);
        for batch in remembered.iter().rev() {
            let what = format!(
                "{when}: retry of producer {} epoch {} sequences {}..={} on partition {partition} (stored at {}, tag {})",
                batch.producer_id,
                batch.producer_epoch,
                batch.base_sequence,
                batch.base_sequence + batch.count - 1,
                batch.base_offset,
                batch.tag,
            );
            assert_accepted(
                &send(connection, self.topic, partition, &batch.bytes),
                batch.base_offset,
                &what,
            );
            assert_high_watermark(connection, self.topic, partition, end, &format!("after {what}"));
        }
        let next = self.next_sequence(partition, producer_id, producer_epoch);
        let gap = idempotent_batch(producer_id, producer_epoch, next + 1, 1, "after-restart-gap");
        let what = format!(
            "{when}: producer {producer_id} epoch {producer_epoch} on partition {partition} skipping sequence {next}"
        );
        assert_rejected(
            &send(connection, self.topic, partition, &gap),
            ERROR_OUT_OF_ORDER_SEQUENCE_NUMBER,
            &what,
        );
        assert_high_watermark(connection, self.topic, partition, end, &format!("after {what}"));
    }

    fn assert_logs(&self, connection: &mut Connection) {
        for (&partition, log) in &self.logs {
            assert_partition_holds(connection, self.topic, partition, log);
        }
    }
}

#[test]
fn duplicates_and_gaps_are_still_recognised_after_a_clean_restart() {
    let topic = "idem-clean-restart";
    let (mut broker, mut connection) = raw_broker_with_topic(topic, 2);
    let mut ledger = Ledger::new(topic);
    let first = init_producer_id(&mut connection);
    let second = init_producer_id(&mut connection);
    for _ in 0..7 {
        ledger.append(&mut connection, 0, first, 0, 3);
        ledger.append(&mut connection, 1, second, 0, 2);
    }
    ledger.append(&mut connection, 1, first, 0, 4);

    restart_after(&mut broker, Stop::Clean);
    let mut connection = Connection::open(broker.socket_addr());
    ledger.assert_logs(&mut connection);
    ledger.assert_producer_state_recognised(&mut connection, 0, first, 0, "after clean restart");
    ledger.assert_producer_state_recognised(&mut connection, 1, second, 0, "after clean restart");
    ledger.assert_producer_state_recognised(&mut connection, 1, first, 0, "after clean restart");
    // And the producers continue where they were.
    ledger.append(&mut connection, 0, first, 0, 3);
    ledger.append(&mut connection, 1, second, 0, 3);
    ledger.assert_logs(&mut connection);
}

#[test]
fn duplicates_gaps_and_epochs_are_still_recognised_after_sigkill_with_and_without_a_snapshot() {
    let topic = "idem-sigkill";
    let (mut broker, mut connection) = raw_broker_with_topic(topic, 2);
    let mut ledger = Ledger::new(topic);
    let steady = init_producer_id(&mut connection);
    let bumped = init_producer_id(&mut connection);

    // Phase 1: never shut down cleanly, so the state can only come from the log.
    for _ in 0..6 {
        ledger.append(&mut connection, 0, steady, 0, 3);
        ledger.append(&mut connection, 1, steady, 0, 1);
    }
    ledger.append(&mut connection, 0, bumped, 0, 2);
    ledger.append(&mut connection, 0, bumped, 1, 2);
    restart_after(&mut broker, Stop::Sigkill);
    let mut connection = Connection::open(broker.socket_addr());
    ledger.assert_logs(&mut connection);
    for partition in [0, 1] {
        ledger.assert_producer_state_recognised(&mut connection, partition, steady, 0, "after first SIGKILL");
    }
    ledger.assert_producer_state_recognised(&mut connection, 0, bumped, 1, "after first SIGKILL");
    let stale = idempotent_batch(bumped, 0, 2, 1, "stale-after-kill");
    assert_rejected(
        &send(&mut connection, topic, 0, &stale),
        ERROR_INVALID_PRODUCER_EPOCH,
        "after first SIGKILL: epoch 0 of a producer already at epoch 1",
    );

    // Phase 2: a clean restart (a snapshot, if the broker takes one), more
    // batches after it, then SIGKILL: snapshot plus the log after it.
    ledger.append(&mut connection, 0, steady, 0, 2);
    restart_after(&mut broker, Stop::Clean);
    let mut connection = Connection::open(broker.socket_addr());
    ledger.assert_producer_state_recognised(&mut connection, 0, steady, 0, "after clean restart");
    let late = init_producer_id(&mut connection);
    for _ in 0..3 {
        ledger.append(&mut connection, 0, steady, 0, 2);
        ledger.append(&mut connection, 1, late, 0, 5);
    }
    ledger.append(&mut connection, 0, bumped, 1, 1);
    restart_after(&mut broker, Stop::Sigkill);
    let mut connection = Connection::open(broker.socket_addr());
    ledger.assert_logs(&mut connection);
    ledger.assert_producer_state_recognised(&mut connection, 0, steady, 0, "after second SIGKILL");
    ledger.assert_producer_state_recognised(&mut connection, 1, steady, 0, "after second SIGKILL");
    ledger.assert_producer_state_recognised(&mut connection, 1, late, 0, "after second SIGKILL");
    ledger.assert_producer_state_recognised(&mut connection, 0, bumped, 1, "after second SIGKILL");
    assert_rejected(
        &send(&mut connection, topic, 0, &stale),
        ERROR_INVALID_PRODUCER_EPOCH,
        "after second SIGKILL: epoch 0 of a producer already at epoch 1",
    );
    ledger.append(&mut connection, 0, steady, 0, 1);
    ledger.append(&mut connection, 1, late, 0, 1);
    ledger.assert_logs(&mut connection);
}

// ---------------------------------------------------------------------------
// Expiration
// ---------------------------------------------------------------------------

const PRODUCER_ID_EXPIRATION_MS: u64 = 1_000;

#[test]
fn idle_producer_id_is_forgotten_after_expiration_and_then_accepted_at_any_sequence() {
    let topic = "idem-expiration";
    let broker = Broker::start_with(BrokerOptions {
        config_toml: Some(format!(
            "producer_id_expiration_ms = {PRODUCER_ID_EXPIRATION_MS}\n\
             producer_id_expiration_check_interval_ms = 200\n"
        )),
        ..BrokerOptions::default()
    });
    create_topic(&broker.bootstrap(), topic, 2, &[]);
    let mut connection = Connection::open(broker.socket_addr());
    let partitions = [0, 1];

    // Before expiration the gap is refused. On a stalled machine more than
    // the expiration time could pass between the two sends, which would
    // rightly let the gap through: then try again with a fresh producer.
    let mut attempt = 0;
    let (producer_id, last_append) = loop {
        attempt += 1;
        let producer_id = init_producer_id(&mut connection);
        let started = Instant::now();
        let mut gap_accepted = false;
        for partition in partitions {
            let base_offset = high_watermark(&mut connection, topic, partition);
            let first = idempotent_batch(producer_id, 0, 0, 5, &format!("attempt{attempt}"));
            assert_accepted(
                &send(&mut connection, topic, partition, &first),
                base_offset,
                &format!("partition {partition}: sequences 0..=4"),
            );
            let gap = idempotent_batch(producer_id, 0, 10, 1, "early-gap");
            let response = send(&mut connection, topic, partition, &gap);
            if response.error_code == ERROR_NONE {
                gap_accepted = true;
                break;
            }
            assert_rejected(
                &response,
                ERROR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                &format!("partition {partition}: sequence 10 right after 0..=4"),
            );
        }
        let elapsed = started.elapsed();
        if !gap_accepted {
            break (producer_id, Instant::now());
        }
        assert!(
            elapsed >= Duration::from_millis(PRODUCER_ID_EXPIRATION_MS) && attempt < 3,
            "sequence 10 right after 0..=4 was accepted {elapsed:?} after the first batch \
             (attempt {attempt}), before the {PRODUCER_ID_EXPIRATION_MS} ms expiration"
        );
        eprintln!("attempt {attempt} took {elapsed:?}, longer than the expiration: retrying");
    };
    let high_watermarks: Vec<i64> = partitions
        .iter()
        .map(|&partition| high_watermark(&mut connection, topic, partition))
        .collect();

    // Idle for 3 s: three times the expiration, with 15 checks in between.
    // A very slow machine gets one more, much later chance.
    thread::sleep(Duration::from_secs(3));
    for (&partition, &end) in partitions.iter().zip(&high_watermarks) {
        let after_idle = idempotent_batch(producer_id, 0, 10, 1, "after-expiry");
        let mut response = send(&mut connection, topic, partition, &after_idle);
        if response.error_code == ERROR_OUT_OF_ORDER_SEQUENCE_NUMBER
            && last_append.elapsed() < Duration::from_secs(10)
        {
            thread::sleep(Duration::from_secs(10).saturating_sub(last_append.elapsed()));
            response = send(&mut connection, topic, partition, &after_idle);
        }
        assert_accepted(
            &response,
            end,
            &format!(
                "partition {partition}: sequence 10, {:?} after the producer's last batch \
                 (expiration {PRODUCER_ID_EXPIRATION_MS} ms, checked every 200 ms)",
                last_append.elapsed()
            ),
        );
        // And it is tracked again from there.
        let next = idempotent_batch(producer_id, 0, 11, 1, "after-expiry");
        assert_accepted(
            &send(&mut connection, topic, partition, &next),
            end + 1,
            "sequence 11 after 10",
        );
        let gap = idempotent_batch(producer_id, 0, 13, 1, "after-expiry-gap");
        assert_rejected(
            &send(&mut connection, topic, partition, &gap),
            ERROR_OUT_OF_ORDER_SEQUENCE_NUMBER,
            &format!("partition {partition}: sequence 13 after 11"),
        );
    }
}

// ---------------------------------------------------------------------------
// librdkafka through a connection-cutting proxy
// ---------------------------------------------------------------------------

const PROXY_PARTITIONS: i32 = 4;
const PROXY_MESSAGES: usize = 20_000;

fn proxy_message_value(id: usize) -> String {
    let partition = id % PROXY_PARTITIONS as usize;
    let sequence = id / PROXY_PARTITIONS as usize;
    // Varying sizes, so batch and frame boundaries fall everywhere.
    let padding = "x".repeat(id * 7 % 181);
    format!("p{partition} seq {sequence:06} id {id:06} {padding}")
}

/// Parses the per-partition sequence out of a value written by
/// [`proxy_message_value`].
fn proxy_message_sequence(value: &str) -> Option<usize> {
    value.split(' ').nth(2)?.parse().ok()
}

/// Compares what a partition holds with the `expected_count` sequences sent
/// to it; describes every kind of difference.
fn describe_partition_anomalies(
    partition: i32,
    stored: &[(i64, String)],
    expected_count: usize,
) -> Option<String> {
    let sequences: Vec<Option<usize>> = stored.iter().map(|(_, v)| proxy_message_sequence(v)).collect();
    if sequences.len() == expected_count && sequences.iter().enumerate().all(|(i, s)| *s == Some(i)) {
        return None;
    }
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    let mut foreign = Vec::new();
    for (offset, sequence) in sequences.iter().enumerate() {
        match sequence {
            Some(sequence) => *counts.entry(*sequence).or_insert(0) += 1,
            None => foreign.push(offset),
        }
    }
    let duplicated: Vec<usize> = counts.iter().filter(|(_, &n)| n > 1).map(|(&s, _)| s).collect();
    let missing: Vec<usize> = (0..expected_count).filter(|s| !counts.contains_key(s)).collect();
    let first_out_of_place = sequences
        .iter()
        .enumerate()
        .find(|(i, s)| **s != Some(*i))
        .map(|(i, s)| (i, *s));
    Some(format!(
        "partition {partition}: {} records stored, {expected_count} sent; {} sequences duplicated (first {:?}), \
         {} missing (first {:?}), {} unparseable records; first record out of place: {:?}",
        stored.len(),
        duplicated.len(),
        &duplicated[..duplicated.len().min(10)],
        missing.len(),
        &missing[..missing.len().min(10)],
        foreign.len(),
        first_out_of_place.map(|(offset, sequence)| format!("offset {offset} holds sequence {sequence:?}")),
    ))
}

/// Flushes `producer` in steps while delivery reports keep coming; an error
/// when none came for `stall_max`.
fn flush_while_progressing(
    producer: &common::RecordingProducer,
    deliveries: &common::DeliveryLog,
    stall_max: Duration,
) -> Result<(), String> {
    let mut reported = 0;
    let mut last_progress = Instant::now();
    loop {
        match producer.flush(Duration::from_secs(1)) {
            Ok(()) => return Ok(()),
            Err(rdkafka::error::KafkaError::Flush(rdkafka::types::RDKafkaErrorCode::OperationTimedOut)) => {}
            Err(error) => return Err(format!("flush: {error}")),
        }
        let now_reported = deliveries.lock().expect("delivery log").len();
        if now_reported > reported {
            reported = now_reported;
            last_progress = Instant::now();
        } else if last_progress.elapsed() >= stall_max {
            return Err(format!(
                "no delivery report for {stall_max:?}, {} messages still in flight",
                producer.in_flight_count()
            ));
        }
    }
}

#[test]
fn librdkafka_idempotent_producer_through_a_connection_cutting_proxy_stores_every_message_exactly_once_in_order(
) {
    let mut proxy = CuttingProxy::bind(150..300);
    let broker = Broker::start_with(BrokerOptions {
        advertised_port: Some(proxy.port()),
        ..BrokerOptions::default()
    });
    proxy.start(broker.socket_addr());
    let topic = "idem-through-cutting-proxy";
    // Created while the proxy only forwards: the admin client has no retries.
    create_topic(&proxy.bootstrap(), topic, PROXY_PARTITIONS, &[]);
    proxy.set_cutting(true);

    let mut config = client_config(&proxy.bootstrap());
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "5")
        .set("message.send.max.retries", "2147483647")
        .set("retry.backoff.ms", "10")
        .set("retry.backoff.max.ms", "100")
        .set("reconnect.backoff.ms", "10")
        .set("reconnect.backoff.max.ms", "100")
        .set("compression.codec", "none")
        .set("linger.ms", "2")
        // Small batches: many requests, so cuts land on many of them.
        .set("batch.num.messages", "100")
        // Failing by timeout would hide what went wrong; the flush below is
        // bounded instead.
        .set("message.timeout.ms", "600000")
        .set("request.timeout.ms", "30000");
    let (producer, deliveries) = recording_producer(&config);

    // Paced over about 8 s, so the production spans dozens of cuts.
    let started = Instant::now();
    for id in 0..PROXY_MESSAGES {
        let message = TestMessage::keyed(
            (id % PROXY_PARTITIONS as usize) as i32,
            format!("key-{id}"),
            proxy_message_value(id),
        );
        enqueue(&producer, topic, id, &message);
        if id % 250 == 249 {
            producer.poll(Duration::ZERO);
            thread::sleep(Duration::from_millis(100));
        }
    }
    // Wait for every delivery report, but give up once nothing has been
    // acknowledged for a minute (a broker that never answers InitProducerId
    // or keeps refusing the retries) rather than waiting out the timeout.
    let flush_result = flush_while_progressing(&producer, &deliveries, Duration::from_secs(60));
    let fatal = producer.client().fatal_error();
    let produce_time = started.elapsed();
    let proxy_summary = proxy.stats().summary();
    eprintln!("produced through the proxy in {produce_time:?}: {proxy_summary}");
    proxy.set_cutting(false);

    let mut reports = std::mem::take(&mut *deliveries.lock().expect("delivery log"));
    reports.sort_by_key(|delivery| delivery.id);
    let failed: Vec<_> = reports.iter().filter(|d| d.outcome.is_err()).collect();
    let mut failure_kinds: BTreeMap<String, usize> = BTreeMap::new();
    for delivery in &failed {
        *failure_kinds
            .entry(delivery.outcome.clone().unwrap_err())
            .or_insert(0) += 1;
    }
    assert!(
        flush_result.is_ok() && failed.is_empty() && fatal.is_none(),
        "not every message was acknowledged: flush {flush_result:?}, {} delivery reports for {PROXY_MESSAGES} \
         messages, {} failed by kind {failure_kinds:?}, producer fatal error {fatal:?}. librdkafka's idempotent \
         producer raises a fatal error when the broker answers a retried batch with OUT_OF_ORDER_SEQUENCE_NUMBER \
         or reports an offset that contradicts the sequence numbers, i.e. when the broker's duplicate detection \
         fails. Proxy: {proxy_summary}",
        reports.len(),
        failed.len(),
    );
    let ids: Vec<usize> = reports.iter().map(|d| d.id).collect();
    assert_eq!(
        ids,
        (0..PROXY_MESSAGES).collect::<Vec<_>>(),
        "exactly one delivery report per message"
    );
    // A duplicate must be answered with its original offset, so every report
    // names the offset the message really has.
    let wrong_offsets: Vec<String> = reports
        .iter()
        .filter_map(|delivery| {
            let expected = (
                (delivery.id % PROXY_PARTITIONS as usize) as i32,
                (delivery.id / PROXY_PARTITIONS as usize) as i64,
            );
            let got = delivery.outcome.clone().expect("checked above");
            (got != expected).then(|| {
                format!(
                    "message {} reported at {got:?}, sent as {expected:?}",
                    delivery.id
                )
            })
        })
        .collect();
    // Read back from the broker itself, not through the proxy.
    let mut connection = Connection::open(broker.socket_addr());
    let expected_per_partition = PROXY_MESSAGES / PROXY_PARTITIONS as usize;
    let mut anomalies = Vec::new();
    for partition in 0..PROXY_PARTITIONS {
        let stored = read_partition(&mut connection, topic, partition);
        if let Some(anomaly) = describe_partition_anomalies(partition, &stored, expected_per_partition) {
            anomalies.push(anomaly);
            continue;
        }
        for (sequence, (_, value)) in stored.iter().enumerate() {
            let id = sequence * PROXY_PARTITIONS as usize + partition as usize;
            assert_eq!(
                *value,
                proxy_message_value(id),
                "{topic}/{partition} offset {sequence}"
            );
        }
    }
    // Both checks before failing, so a failure shows everything that is wrong.
    assert!(
        wrong_offsets.is_empty() && anomalies.is_empty(),
        "{} delivery reports name the wrong (partition, offset), first: {:?}\n\
         the log {} every message exactly once in send order{}{}\nproxy: {proxy_summary}",
        wrong_offsets.len(),
        &wrong_offsets[..wrong_offsets.len().min(5)],
        if anomalies.is_empty() {
            "holds"
        } else {
            "does not hold"
        },
        if anomalies.is_empty() { "" } else { ":\n" },
        anomalies.join("\n")
    );

    // Not vacuous: the proxy really cut connections in both directions, and
    // the broker really received batches it had already been sent.
    let stats = proxy.stats();
    let cuts = stats.cuts.load(std::sync::atomic::Ordering::SeqCst);
    let cuts_mid_request = stats.cuts_mid_request.load(std::sync::atomic::Ordering::SeqCst);
    let cuts_mid_response = stats.cuts_mid_response.load(std::sync::atomic::Ordering::SeqCst);
    let (batches, retransmitted) = stats.batch_counts();
    assert!(
        cuts >= 15 && cuts_mid_request >= 2 && cuts_mid_response >= 2,
        "the proxy cut too few connections to prove anything: {proxy_summary}"
    );
    assert!(
        batches > 0 && retransmitted > 0,
        "no batch reached the broker twice, so duplicate detection was never exercised: {proxy_summary}"
    );
}
