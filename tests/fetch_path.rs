//! The fetch path, end to end against the real binary: reads from memory
//! (tail cache) and from disk, reads after a restart, long-poll, incremental
//! fetch sessions (KIP-227), out-of-range offsets and the byte limits of a
//! Fetch response (KIP-74, whole batches only).
//!
//! Records whose content matters carry a value derived from their partition
//! and offset alone (see [`write_value`]), so a reader checks every byte of
//! every record without keeping what was sent, and a record served at the
//! wrong offset or from the wrong partition says where it came from.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::fetch_response::{FetchResponse, PartitionData};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::records::{Record, RecordBatchDecoder};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use common::wire::{
    batch_crc_is_valid, batch_layout, encode_batch, record, topic_name, Connection, ERROR_NONE,
    ERROR_OFFSET_OUT_OF_RANGE,
};
use common::{
    admin, admin_options, block_on, consumer_config, create_topic, list_topics, producer_config, watermarks,
    Broker, BrokerOptions, CLIENT_TIMEOUT, CONSUME_TIMEOUT,
};

/// Kafka error codes of fetch sessions.
const ERROR_FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
const ERROR_INVALID_FETCH_SESSION_EPOCH: i16 = 71;

/// Bytes at the start of every generated value: partition (u32), value
/// length (u32), offset (u64), big-endian.
const VALUE_HEADER_BYTES: usize = 16;

/// An upper bound for anything the broker must answer "at once" or "soon"
/// (long-poll wake-ups, errors): wide, this is not a benchmark.
const PROMPT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// Values derived from (partition, offset)
// ---------------------------------------------------------------------------

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn seed(partition: i32, offset: i64) -> u64 {
    ((partition as u64) << 48) ^ (offset as u64) ^ 0x7765_6972_0000_0000
}

/// The value of the record at `offset` of `partition`, `len` bytes: a header
/// naming partition, length and offset, then pseudo-random bytes seeded by
/// them. Written into `out` (cleared first).
fn write_value(partition: i32, offset: i64, len: usize, out: &mut Vec<u8>) {
    assert!(len >= VALUE_HEADER_BYTES, "values hold at least their header");
    out.clear();
    out.extend_from_slice(&(partition as u32).to_be_bytes());
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.extend_from_slice(&(offset as u64).to_be_bytes());
    let mut state = seed(partition, offset);
    while out.len() < len {
        let word = splitmix64(&mut state).to_le_bytes();
        let take = (len - out.len()).min(word.len());
        out.extend_from_slice(&word[..take]);
    }
}

/// Ok if `value` is exactly what [`write_value`] gives for this record;
/// otherwise what the value claims to be and where it first differs.
fn check_value(
    partition: i32,
    offset: i64,
    len: usize,
    value: Option<&[u8]>,
    scratch: &mut Vec<u8>,
) -> Result<(), String> {
    let Some(value) = value else {
        return Err(format!("record {partition}/{offset}: null value"));
    };
    write_value(partition, offset, len, scratch);
    if value == scratch.as_slice() {
        return Ok(());
    }
    let claims = if value.len() >= VALUE_HEADER_BYTES {
        format!(
            "partition {}, length {}, offset {}",
            u32::from_be_bytes(value[0..4].try_into().expect("4 bytes")),
            u32::from_be_bytes(value[4..8].try_into().expect("4 bytes")),
            u64::from_be_bytes(value[8..16].try_into().expect("8 bytes")),
        )
    } else {
        "nothing (shorter than a header)".to_string()
    };
    let first_difference = value.iter().zip(scratch.iter()).position(|(a, b)| a != b);
    Err(format!(
        "record {partition}/{offset}: value of {} bytes, expected {len}; its header claims {claims}; first differing byte {first_difference:?}",
        value.len()
    ))
}

/// 1 KiB for every record.
fn fixed_len(_partition: i32, _offset: i64) -> usize {
    1024
}

/// 16..=3015 bytes, varying by record.
fn varied_len(partition: i32, offset: i64) -> usize {
    let mut state = seed(partition, offset) ^ 0x1e7;
    VALUE_HEADER_BYTES + (splitmix64(&mut state) % 3000) as usize
}

// ---------------------------------------------------------------------------
// rdkafka: a producer that checks every delivery, a reader that checks every
// record
// ---------------------------------------------------------------------------

/// Delivery opaque: (partition, expected offset) packed into a usize.
fn pack(partition: i32, offset: i64) -> usize {
    ((partition as usize) << 40) | offset as usize
}

fn unpack(opaque: usize) -> (i32, i64) {
    ((opaque >> 40) as i32, (opaque & ((1 << 40) - 1)) as i64)
}

/// Counts acknowledgements and records every delivery that failed or landed
/// at another offset than the one the test expected.
#[derive(Default)]
struct CheckingContext {
    acked: AtomicU64,
    failed: AtomicU64,
    first_failures: Mutex<Vec<String>>,
}

impl ClientContext for CheckingContext {}

impl ProducerContext for CheckingContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let (partition, offset) = unpack(opaque);
        let failure = match result {
            Ok(message) if message.partition() == partition && message.offset() == offset => None,
            Ok(message) => Some(format!(
                "record meant for {partition}/{offset} acknowledged at {}/{}",
                message.partition(),
                message.offset()
            )),
            Err((error, _)) => Some(format!("record {partition}/{offset}: {error}")),
        };
        match failure {
            None => {
                self.acked.fetch_add(1, Ordering::Relaxed);
            }
            Some(failure) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_failures.lock().expect("failures lock");
                if first.len() < 10 {
                    first.push(failure);
                }
            }
        }
    }
}

/// A producer whose records go to explicit partitions at offsets the test
/// predicts (one producer per partition sequence, no retries: the broker
/// must assign them densely in send order).
struct CheckedProducer {
    producer: BaseProducer<CheckingContext>,
    sent: u64,
}

impl CheckedProducer {
    fn new(bootstrap: &str, acks: &str) -> CheckedProducer {
        let mut config = producer_config(bootstrap, acks);
        config.set("queue.buffering.max.kbytes", "262144");
        let producer = config
            .create_with_context(CheckingContext::default())
            .expect("create producer");
        CheckedProducer { producer, sent: 0 }
    }

    /// Enqueues `value` for `partition`, expected to land at `offset`.
    fn send(&mut self, topic: &str, partition: i32, offset: i64, value: &[u8]) {
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        loop {
            let record: BaseRecord<'_, [u8], [u8], usize> =
                BaseRecord::with_opaque_to(topic, pack(partition, offset))
                    .partition(partition)
                    .payload(value);
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    assert!(
                        Instant::now() < deadline,
                        "producer queue stayed full for {CLIENT_TIMEOUT:?}"
                    );
                    self.producer.poll(Duration::from_millis(5));
                }
                Err((error, _)) => panic!("enqueue record {partition}/{offset}: {error}"),
            }
        }
        self.sent += 1;
        if self.sent % 1024 == 0 {
            self.producer.poll(Duration::ZERO);
        }
    }

    /// Flushes and asserts every record sent so far was acknowledged at the
    /// predicted offset.
    fn flush_and_check(&mut self) {
        self.producer
            .flush(Duration::from_secs(60))
            .unwrap_or_else(|error| panic!("flush of {} records: {error}", self.sent));
        let context = self.producer.context();
        let failed = context.failed.load(Ordering::Relaxed);
        assert_eq!(
            failed,
            0,
            "{failed} deliveries failed or landed elsewhere, first: {:?}",
            context.first_failures.lock().expect("failures lock")
        );
        assert_eq!(
            context.acked.load(Ordering::Relaxed),
            self.sent,
            "every record acknowledged exactly once"
        );
    }
}

/// An assign-mode consumer that checks every record as it arrives: right
/// partition, offsets dense and in order from where it started, value
/// exactly as generated, nothing past the expected end.
struct Reader {
    name: &'static str,
    consumer: BaseConsumer,
    next: BTreeMap<i32, i64>,
    value_len: fn(i32, i64) -> usize,
    /// Once known, no record at or past these offsets may arrive.
    ends: Option<BTreeMap<i32, i64>>,
    scratch: Vec<u8>,
    records: u64,
    bytes: u64,
    errors: Vec<String>,
}

impl Reader {
    fn new(
        name: &'static str,
        bootstrap: &str,
        topic: &str,
        starts: &[(i32, i64)],
        value_len: fn(i32, i64) -> usize,
        settings: &[(&str, &str)],
    ) -> Reader {
        let mut config = consumer_config(bootstrap);
        for (key, value) in settings {
            config.set(*key, *value);
        }
        let consumer: BaseConsumer = config.create().expect("create consumer");
        let mut assignment = TopicPartitionList::new();
        for &(partition, offset) in starts {
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(offset))
                .expect("add partition to assignment");
        }
        consumer.assign(&assignment).expect("assign");
        Reader {
            name,
            consumer,
            next: starts.iter().copied().collect(),
            value_len,
            ends: None,
            scratch: Vec::new(),
            records: 0,
            bytes: 0,
            errors: Vec::new(),
        }
    }

    /// Polls once and checks what came.
    fn poll(&mut self, timeout: Duration) {
        match self.consumer.poll(timeout) {
            None => {}
            Some(Err(error)) if self.errors.len() < 20 => self.errors.push(error.to_string()),
            Some(Err(_)) => {}
            Some(Ok(message)) => {
                let (partition, offset) = (message.partition(), message.offset());
                let name = self.name;
                let Some(next) = self.next.get_mut(&partition) else {
                    panic!("{name}: record {partition}/{offset} from a partition it was not assigned");
                };
                assert_eq!(
                    offset, *next,
                    "{name}: partition {partition}: offsets must be dense and in order"
                );
                if let Some(end) = self.ends.as_ref().and_then(|ends| ends.get(&partition)) {
                    assert!(
                        offset < *end,
                        "{name}: record {partition}/{offset} beyond the end {end} of what was produced"
                    );
                }
                let len = (self.value_len)(partition, offset);
                if let Err(problem) =
                    check_value(partition, offset, len, message.payload(), &mut self.scratch)
                {
                    panic!("{name}: {problem}");
                }
                *next += 1;
                self.records += 1;
                self.bytes += len as u64;
            }
        }
    }

    /// True when every partition reached `ends`.
    fn reached(&self, ends: &BTreeMap<i32, i64>) -> bool {
        ends.iter()
            .all(|(partition, end)| self.next.get(partition) == Some(end))
    }

    /// Reads until every partition reached `ends`, failing at `deadline` or
    /// as soon as `abort` is set (another thread of the test failed).
    fn read_to(&mut self, ends: &BTreeMap<i32, i64>, deadline: Instant, abort: &AtomicBool) {
        self.ends = Some(ends.clone());
        while !self.reached(ends) {
            self.check_time(deadline, abort, ends);
            self.poll(Duration::from_millis(100));
        }
    }

    fn check_time(&self, deadline: Instant, abort: &AtomicBool, target: &BTreeMap<i32, i64>) {
        assert!(
            !abort.load(Ordering::Relaxed),
            "{}: stopped because another thread of this test failed",
            self.name
        );
        assert!(
            Instant::now() < deadline,
            "{}: at {:?}, wanted {target:?}, in time; client errors: {:?}",
            self.name,
            self.next,
            self.errors
        );
    }

    /// After the end: nothing more arrives, and the client saw no error.
    fn assert_finished(&mut self) {
        let until = Instant::now() + Duration::from_millis(300);
        while Instant::now() < until {
            self.poll(Duration::from_millis(50));
        }
        let ends = self.ends.clone().expect("read_to ran");
        assert_eq!(self.next, ends, "{}: no record past the end", self.name);
        assert!(
            self.errors.is_empty(),
            "{}: consumer errors: {:?}",
            self.name,
            self.errors
        );
    }
}

/// Sets `flag` if the thread owning this guard panics.
struct RaiseOnPanic(Arc<AtomicBool>);

impl Drop for RaiseOnPanic {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "<non-text panic>".to_string()
    }
}

/// Joins every thread; panics with all their failures if any failed.
fn join_all(handles: Vec<(&str, JoinHandle<String>)>) -> Vec<String> {
    let mut summaries = Vec::new();
    let mut failures = Vec::new();
    for (name, handle) in handles {
        match handle.join() {
            Ok(summary) => summaries.push(format!("{name}: {summary}")),
            Err(payload) => failures.push(format!("{name}: {}", panic_message(payload.as_ref()))),
        }
    }
    assert!(failures.is_empty(), "threads failed:\n{}", failures.join("\n"));
    summaries
}

fn megabytes_per_second(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9)
}

// ---------------------------------------------------------------------------
// Raw Fetch requests and responses
// ---------------------------------------------------------------------------

/// A Fetch of `topic`'s `partitions` (partition, fetch offset,
/// partition_max_bytes), forgetting `forgotten`; sessionless (id 0, epoch
/// -1), max_wait 0, min_bytes 1, max_bytes 16 MiB unless changed with the
/// `with_*` setters.
fn fetch_request(topic: &str, partitions: &[(i32, i64, i32)], forgotten: &[i32]) -> FetchRequest {
    let forgotten_topics_data = if forgotten.is_empty() {
        Vec::new()
    } else {
        vec![ForgottenTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(forgotten.to_vec())]
    };
    let topics = if partitions.is_empty() {
        Vec::new()
    } else {
        vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(
                partitions
                    .iter()
                    .map(|&(partition, fetch_offset, partition_max_bytes)| {
                        FetchPartition::default()
                            .with_partition(partition)
                            .with_fetch_offset(fetch_offset)
                            .with_log_start_offset(-1)
                            .with_partition_max_bytes(partition_max_bytes)
                    })
                    .collect(),
            )]
    };
    FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(16 * 1024 * 1024)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics)
        .with_forgotten_topics_data(forgotten_topics_data)
}

/// The partitions of a response to a fetch of `topic`, by index. Asserts
/// every topic entry names `topic` and no partition appears twice.
fn partitions_of(response: &FetchResponse, topic: &str) -> BTreeMap<i32, PartitionData> {
    let mut out = BTreeMap::new();
    for topic_response in &response.responses {
        assert_eq!(topic_response.topic.0.as_str(), topic, "topic in fetch response");
        for partition in &topic_response.partitions {
            let previous = out.insert(partition.partition_index, partition.clone());
            assert!(
                previous.is_none(),
                "partition {} appears twice in one fetch response",
                partition.partition_index
            );
        }
    }
    out
}

/// The record bytes of a partition split into batches, asserting they are a
/// whole number of well-formed v2 batches (no partial batch at the end) with
/// valid CRCs.
fn whole_batches(partition: &PartitionData) -> Vec<Bytes> {
    let index = partition.partition_index;
    let mut rest = partition.records.clone().unwrap_or_default();
    let mut batches = Vec::new();
    while !rest.is_empty() {
        assert!(
            rest.len() >= batch_layout::RECORDS,
            "partition {index}: {} trailing bytes, less than a batch header",
            rest.len()
        );
        let length = i32::from_be_bytes(
            rest[batch_layout::BATCH_LENGTH..batch_layout::BATCH_LENGTH + 4]
                .try_into()
                .expect("4 bytes"),
        );
        let total = batch_layout::BATCH_LENGTH + 4 + usize::try_from(length).expect("batch length >= 0");
        assert!(
            total <= rest.len(),
            "partition {index}: partial batch: header says {total} bytes, {} left",
            rest.len()
        );
        let batch = rest.split_to(total);
        assert_eq!(batch[batch_layout::MAGIC], 2, "partition {index}: batch magic");
        assert!(batch_crc_is_valid(&batch), "partition {index}: batch CRC");
        batches.push(batch);
    }
    batches
}

/// Every record of a partition's (whole) batches.
fn records_of(partition: &PartitionData) -> Vec<Record> {
    whole_batches(partition)
        .into_iter()
        .flat_map(|mut batch| {
            RecordBatchDecoder::decode(&mut batch)
                .expect("decode fetched batch")
                .records
        })
        .collect()
}

fn offsets_of(partition: &PartitionData) -> Vec<i64> {
    records_of(partition).iter().map(|r| r.offset).collect()
}

/// Produces one record with a raw Produce (acks=1) and asserts it landed at
/// `expected_offset`.
fn produce_one(connection: &mut Connection, topic: &str, partition: i32, expected_offset: i64, value: &[u8]) {
    let batch = encode_batch(&[record(0, 1_700_000_000_000, b"k", value)]);
    let response = connection.produce(topic, partition, 1, batch);
    assert_eq!(
        (response.error_code, response.base_offset),
        (ERROR_NONE, expected_offset),
        "produce to {topic}/{partition}"
    );
}

/// Produces one batch and returns its bytes as sent.
fn produce_batch(
    connection: &mut Connection,
    topic: &str,
    partition: i32,
    expected_offset: i64,
    values: &[Vec<u8>],
) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, value)| record(i as i64, 1_700_000_000_000 + i as i64, b"key", value))
        .collect();
    let batch = encode_batch(&records);
    let response = connection.produce(topic, partition, 1, batch.clone());
    assert_eq!(
        (response.error_code, response.base_offset),
        (ERROR_NONE, expected_offset),
        "produce batch to {topic}/{partition}"
    );
    batch
}

/// Owner shard of each partition of `topic`, from the broker's metadata file.
fn partition_owners(data_dir: &Path, topic: &str) -> Vec<i64> {
    let text = fs::read_to_string(data_dir.join("weir-metadata.toml")).expect("read weir-metadata.toml");
    let (_checksum, body) = text.split_once('\n').expect("checksum line");
    let table: toml::Table = body.parse().expect("parse weir-metadata.toml");
    table["topics"][topic]["shards"]
        .as_array()
        .expect("shards array")
        .iter()
        .map(|shard| shard.as_integer().expect("shard index"))
        .collect()
}

/// Record bytes the broker's fetches returned from its tail cache and from
/// disk, summed over its shards, from the counters each shard logs when it
/// stops (`fetch_bytes_from_tail_cache=N fetch_bytes_from_disk=M`) in `log`,
/// the stderr of one launch. Asserts every one of the `shards` logged them.
/// Fetched record bytes summed over the shards' shutdown reports:
/// (from the tail cache, spliced from the page cache, read with O_DIRECT).
fn fetch_bytes_by_source(log: &str, shards: usize) -> (u64, u64, u64) {
    let counter = |line: &str, name: &str| -> Option<u64> {
        let start = line.find(name)? + name.len();
        let digits: String = line[start..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let mut reports = 0;
    let (mut from_tail_cache, mut from_page_cache, mut from_disk) = (0, 0, 0);
    for line in log.lines() {
        if let (Some(tail), Some(page_cache), Some(disk)) = (
            counter(line, "fetch_bytes_from_tail_cache="),
            counter(line, "fetch_bytes_from_page_cache="),
            counter(line, "fetch_bytes_from_disk="),
        ) {
            reports += 1;
            from_tail_cache += tail;
            from_page_cache += page_cache;
            from_disk += disk;
        }
    }
    assert_eq!(
        reports, shards,
        "shards that logged their fetch byte counters at shutdown:\n{log}"
    );
    (from_tail_cache, from_page_cache, from_disk)
}

/// The stderr of launch `launch` (from 1) within [`Broker::logs`].
fn launch_log(logs: &str, launch: usize) -> &str {
    let marker = format!("----- weir stderr, launch {launch} ");
    let start = logs
        .find(&marker)
        .unwrap_or_else(|| panic!("no log of launch {launch}"));
    let rest = &logs[start + marker.len()..];
    match rest.find("----- weir stderr, launch ") {
        Some(end) => &rest[..end],
        None => rest,
    }
}

// ---------------------------------------------------------------------------
// 1. Catch-up from disk and tailing from memory, at the same time
// ---------------------------------------------------------------------------

/// Written before the consumers start.
const INITIAL_BYTES: i64 = 1024 * 1024 * 1024;
/// Records produced while the consumers run, per partition: at least the
/// minimum (12 MiB, more than the shard's 8 MiB tail cache, so the cache
/// evicts while the tailing consumer reads), then until the catch-up
/// consumer has passed the initial end, at most the maximum.
const TAIL_RECORDS_MIN: i64 = 12 * 1024;
const TAIL_RECORDS_MAX: i64 = 64 * 1024;
/// Records per partition in each paced step of the concurrent producer, and
/// the pause between steps (about 13 MB/s over both partitions).
const TAIL_STEP_RECORDS: i64 = 256;
const TAIL_STEP_PAUSE: Duration = Duration::from_millis(40);

#[test]
fn tailing_and_catch_up_consumers_both_receive_every_record() {
    let test_started = Instant::now();
    // 8 MiB of tail cache per shard, so a read from offset 0 must come from
    // disk while a reader at the end is served from memory; 32 MiB segments,
    // so the catch-up read also crosses segments.
    let mut broker = Broker::start_with(BrokerOptions {
        config_toml: Some("tail_cache_bytes = 8388608\nsegment_bytes = 33554432\n".to_string()),
        ..Default::default()
    });
    let bootstrap = broker.bootstrap();
    let topic = "catch-up-and-tail";
    const PARTITIONS: i32 = 2;
    create_topic(&bootstrap, topic, PARTITIONS, &[]);
    let owners = partition_owners(broker.data_dir(), topic);
    assert_eq!(owners, vec![0, 1], "one partition on each shard");

    // Phase 1: 1 GiB of 1 KiB records, both partitions.
    let initial_per_partition = INITIAL_BYTES / fixed_len(0, 0) as i64 / i64::from(PARTITIONS);
    let phase_started = Instant::now();
    let mut producer = CheckedProducer::new(&bootstrap, "1");
    let mut value = Vec::new();
    for offset in 0..initial_per_partition {
        for partition in 0..PARTITIONS {
            write_value(partition, offset, fixed_len(partition, offset), &mut value);
            producer.send(topic, partition, offset, &value);
        }
    }
    producer.flush_and_check();
    drop(producer);
    let produce_elapsed = phase_started.elapsed();
    for partition in 0..PARTITIONS {
        assert_eq!(
            watermarks(&bootstrap, topic, partition),
            (0, initial_per_partition),
            "{topic}/{partition} watermarks after the initial produce"
        );
    }
    eprintln!(
        "initial produce: {} records in {produce_elapsed:.2?} ({:.0} MB/s)",
        initial_per_partition * i64::from(PARTITIONS),
        megabytes_per_second(INITIAL_BYTES as u64, produce_elapsed)
    );

    // Phase 2: a catch-up reader from 0, a tailing reader from the current
    // end, and a producer appending more while they read.
    let abort = Arc::new(AtomicBool::new(false));
    let catch_up_passed_initial_end = Arc::new(AtomicBool::new(false));
    let final_ends: Arc<Mutex<Option<BTreeMap<i32, i64>>>> = Arc::new(Mutex::new(None));
    let deadline = Instant::now() + CONSUME_TIMEOUT;
    let initial_ends: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, initial_per_partition)).collect();

    // Waits until the producer published the final ends (or fails).
    let wait_for_final_ends = {
        let final_ends = Arc::clone(&final_ends);
        move |reader: &mut Reader, abort: &AtomicBool| -> BTreeMap<i32, i64> {
            loop {
                if let Some(ends) = final_ends.lock().expect("final ends lock").clone() {
                    return ends;
                }
                reader.check_time(deadline, abort, &BTreeMap::new());
                reader.poll(Duration::from_millis(50));
            }
        }
    };

    let catch_up = {
        let (bootstrap, abort, passed) = (
            bootstrap.clone(),
            Arc::clone(&abort),
            Arc::clone(&catch_up_passed_initial_end),
        );
        let (initial_ends, wait_for_final_ends) = (initial_ends.clone(), wait_for_final_ends.clone());
        thread::spawn(move || {
            let _raise = RaiseOnPanic(Arc::clone(&abort));
            let started = Instant::now();
            let starts: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, 0)).collect();
            let mut reader = Reader::new(
                "catch-up consumer",
                &bootstrap,
                topic,
                &starts,
                fixed_len,
                &[("max.partition.fetch.bytes", "4194304")],
            );
            while !initial_ends.iter().all(|(p, end)| reader.next[p] >= *end) {
                reader.check_time(deadline, &abort, &initial_ends);
                reader.poll(Duration::from_millis(100));
            }
            passed.store(true, Ordering::Relaxed);
            let initial_elapsed = started.elapsed();
            let ends = wait_for_final_ends(&mut reader, &abort);
            reader.read_to(&ends, deadline, &abort);
            reader.assert_finished();
            format!(
                "{} records, {:.0} MB in {:.2?} (the initial 1 GiB in {initial_elapsed:.2?}, {:.0} MB/s)",
                reader.records,
                reader.bytes as f64 / 1e6,
                started.elapsed(),
                megabytes_per_second(INITIAL_BYTES as u64, initial_elapsed)
            )
        })
    };

    let tailing = {
        let (bootstrap, abort) = (bootstrap.clone(), Arc::clone(&abort));
        let wait_for_final_ends = wait_for_final_ends.clone();
        thread::spawn(move || {
            let _raise = RaiseOnPanic(Arc::clone(&abort));
            let started = Instant::now();
            let starts: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, initial_per_partition)).collect();
            let mut reader = Reader::new("tailing consumer", &bootstrap, topic, &starts, fixed_len, &[]);
            let ends = wait_for_final_ends(&mut reader, &abort);
            reader.read_to(&ends, deadline, &abort);
            reader.assert_finished();
            format!("{} records in {:.2?}", reader.records, started.elapsed())
        })
    };

    let appender = {
        let (bootstrap, abort, passed) = (
            bootstrap.clone(),
            Arc::clone(&abort),
            Arc::clone(&catch_up_passed_initial_end),
        );
        let final_ends = Arc::clone(&final_ends);
        thread::spawn(move || {
            let _raise = RaiseOnPanic(Arc::clone(&abort));
            let started = Instant::now();
            let mut producer = CheckedProducer::new(&bootstrap, "1");
            let mut value = Vec::new();
            let mut next = initial_per_partition;
            loop {
                assert!(
                    !abort.load(Ordering::Relaxed),
                    "stopped because another thread of this test failed"
                );
                assert!(Instant::now() < deadline, "concurrent producer ran out of time");
                let appended = next - initial_per_partition;
                if appended >= TAIL_RECORDS_MAX
                    || (appended >= TAIL_RECORDS_MIN && passed.load(Ordering::Relaxed))
                {
                    break;
                }
                for _ in 0..TAIL_STEP_RECORDS {
                    for partition in 0..PARTITIONS {
                        write_value(partition, next, fixed_len(partition, next), &mut value);
                        producer.send(topic, partition, next, &value);
                    }
                    next += 1;
                }
                producer.producer.poll(Duration::ZERO);
                thread::sleep(TAIL_STEP_PAUSE);
            }
            producer.flush_and_check();
            *final_ends.lock().expect("final ends lock") = Some((0..PARTITIONS).map(|p| (p, next)).collect());
            format!(
                "{} records per partition in {:.2?}",
                next - initial_per_partition,
                started.elapsed()
            )
        })
    };

    let summaries = join_all(vec![
        ("concurrent producer", appender),
        ("catch-up consumer", catch_up),
        ("tailing consumer", tailing),
    ]);
    for summary in &summaries {
        eprintln!("{summary}");
    }
    let final_ends = final_ends
        .lock()
        .expect("final ends lock")
        .clone()
        .expect("final ends");
    for (&partition, &end) in &final_ends {
        assert_eq!(
            watermarks(&bootstrap, topic, partition),
            (0, end),
            "{topic}/{partition} watermarks at the end"
        );
    }
    // Where the broker read from (counted on the shard of each consumer's
    // connection, logged at shutdown): the initial data, long evicted from
    // the 8 MiB caches, from disk; the tail at least partly from memory.
    broker.stop();
    let (from_tail_cache, from_page_cache, from_dma) = fetch_bytes_by_source(&broker.logs(), 2);
    let from_disk = from_page_cache + from_dma;
    let tail_value_bytes: i64 = final_ends
        .values()
        .map(|end| (end - initial_per_partition) * fixed_len(0, 0) as i64)
        .sum();
    eprintln!(
        "fetched from the tail cache: {from_tail_cache} bytes, below it: {from_disk} bytes \
         ({from_page_cache} spliced from the page cache, {from_dma} read with O_DIRECT)"
    );
    assert!(
        from_disk >= (INITIAL_BYTES - 2 * 8 * 1024 * 1024) as u64,
        "the catch-up read of {INITIAL_BYTES} bytes came from disk, except what the two 8 MiB caches held: {from_disk} bytes from disk"
    );
    assert!(
        from_tail_cache >= (tail_value_bytes / 4) as u64,
        "the tailing read of {tail_value_bytes} bytes came from memory, at least mostly: {from_tail_cache} bytes from the tail cache"
    );
    eprintln!("whole test: {:.2?}", test_started.elapsed());
}

// ---------------------------------------------------------------------------
// 2. After a restart everything comes from disk
// ---------------------------------------------------------------------------

#[test]
fn consumer_after_restart_reads_everything_from_disk() {
    read_everything_from_disk_after_restart(ColdPath::DirectReads);
}

#[test]
fn consumer_after_restart_reads_everything_spliced_from_the_page_cache() {
    read_everything_from_disk_after_restart(ColdPath::Splice);
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum ColdPath {
    /// `cold_reads_from_page_cache = false`: every cold read is O_DIRECT.
    DirectReads,
    /// The default: resident ranges spliced, others O_DIRECT + prefetch.
    Splice,
}

fn read_everything_from_disk_after_restart(path: ColdPath) {
    let extra_config = match path {
        ColdPath::DirectReads => "cold_reads_from_page_cache = false\n",
        ColdPath::Splice => "",
    };
    // 4 MiB segments: the data spans several sealed segments per partition,
    // reopened (and their indexes checked) at restart.
    let mut broker = Broker::start_with(BrokerOptions {
        config_toml: Some(format!("segment_bytes = 4194304\n{extra_config}")),
        ..Default::default()
    });
    let bootstrap = broker.bootstrap();
    let topic = "read-after-restart";
    const PARTITIONS: i32 = 2;
    const PER_PARTITION: i64 = 10_000;
    create_topic(&bootstrap, topic, PARTITIONS, &[]);

    let mut producer = CheckedProducer::new(&bootstrap, "all");
    let mut value = Vec::new();
    for offset in 0..PER_PARTITION {
        for partition in 0..PARTITIONS {
            write_value(partition, offset, varied_len(partition, offset), &mut value);
            producer.send(topic, partition, offset, &value);
        }
    }
    producer.flush_and_check();
    drop(producer);

    broker.restart();

    let ends: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, PER_PARTITION)).collect();
    for (&partition, &end) in &ends {
        assert_eq!(
            watermarks(&bootstrap, topic, partition),
            (0, end),
            "{topic}/{partition} watermarks after restart"
        );
        let segments = fs::read_dir(broker.data_dir().join(format!("{topic}-{partition}")))
            .expect("read partition directory")
            .filter(|entry| {
                entry
                    .as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".log"))
            })
            .count();
        assert!(
            segments >= 3,
            "{topic}/{partition}: expected several segments, found {segments}"
        );
    }
    let starts: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    let mut reader = Reader::new(
        "reader after restart",
        &bootstrap,
        topic,
        &starts,
        varied_len,
        &[],
    );
    reader.read_to(&ends, Instant::now() + CONSUME_TIMEOUT, &AtomicBool::new(false));
    reader.assert_finished();
    assert_eq!(reader.records, (PER_PARTITION * i64::from(PARTITIONS)) as u64);

    // The same from the raw protocol, where nothing hides a partial or
    // damaged batch: every response holds whole batches, continuing exactly
    // where the previous one ended, under a range of byte limits.
    let mut connection = Connection::open(broker.socket_addr());
    let version = connection.negotiate(ApiKey::Fetch, 4..=12);
    let mut raw_bytes = 0u64;
    for (&partition, &end) in &ends {
        raw_bytes += raw_read_all(&mut connection, version, topic, partition, end, varied_len);
    }
    drop(connection);

    // The restarted broker's tail cache started empty and nothing was
    // written since: every byte came from disk.
    broker.stop();
    let logs = broker.logs();
    let (from_tail_cache, from_page_cache, from_dma) = fetch_bytes_by_source(launch_log(&logs, 2), 2);
    let from_disk = from_page_cache + from_dma;
    eprintln!("{path:?}: {from_page_cache} bytes spliced from the page cache, {from_dma} read with O_DIRECT");
    match path {
        ColdPath::DirectReads => assert_eq!(from_page_cache, 0, "bytes spliced with splice turned off"),
        // The first fetch of a range not yet cached is read with O_DIRECT
        // and prefetches what follows, so a sequential reader soon finds
        // its ranges resident.
        ColdPath::Splice => assert!(from_page_cache > 0, "no fetch was spliced from the page cache"),
    }
    assert_eq!(
        from_tail_cache, 0,
        "bytes fetched from the tail cache after restart"
    );
    assert!(
        from_disk >= reader.bytes + raw_bytes,
        "{from_disk} bytes fetched from disk after restart, the values alone are {}",
        reader.bytes + raw_bytes
    );
}

/// Byte limits the raw reader cycles through: one byte (the first batch
/// only, KIP-74), odd sizes that end inside batches, 4 KiB alignment, a lot.
const RAW_READ_LIMITS: [i32; 6] = [1, 5_000, 4096, 65_537, 300_001, 4 << 20];

/// Reads `partition` of `topic` from 0 to `end` with raw fetches, checking
/// every batch (whole, CRC, dense offsets) and every value. Returns the
/// value bytes read.
fn raw_read_all(
    connection: &mut Connection,
    version: i16,
    topic: &str,
    partition: i32,
    end: i64,
    value_len: fn(i32, i64) -> usize,
) -> u64 {
    let mut next = 0i64;
    let mut scratch = Vec::new();
    let mut value_bytes = 0u64;
    let mut requests = 0usize;
    while next < end {
        let limit = RAW_READ_LIMITS[requests % RAW_READ_LIMITS.len()];
        requests += 1;
        let what = format!("raw fetch of {topic}/{partition} at {next} with max_bytes {limit}");
        let request = fetch_request(topic, &[(partition, next, limit)], &[]).with_max_bytes(limit);
        let response = connection.call(version, &request);
        let partitions = partitions_of(&response, topic);
        let data = partitions
            .get(&partition)
            .unwrap_or_else(|| panic!("{what}: partition missing"));
        assert_eq!(
            (data.error_code, data.high_watermark),
            (ERROR_NONE, end),
            "{what}: error, high watermark"
        );
        let batches = whole_batches(data);
        assert!(!batches.is_empty(), "{what}: no batch below the high watermark");
        let total: usize = batches.iter().map(Bytes::len).sum();
        assert!(
            batches.len() == 1 || total <= limit as usize,
            "{what}: {} batches, {total} bytes, over the limit",
            batches.len()
        );
        for mut batch in batches {
            let base_offset = common::wire::batch_base_offset(&batch);
            assert_eq!(base_offset, next, "{what}: batches continue densely");
            let records = RecordBatchDecoder::decode(&mut batch)
                .unwrap_or_else(|error| panic!("{what}: decode batch at {base_offset}: {error:?}"))
                .records;
            for record in records {
                assert_eq!(record.offset, next, "{what}: record offsets dense");
                let len = value_len(partition, next);
                if let Err(problem) = check_value(partition, next, len, record.value.as_deref(), &mut scratch)
                {
                    panic!("{what}: {problem}");
                }
                value_bytes += len as u64;
                next += 1;
            }
        }
    }
    assert_eq!(
        next, end,
        "raw read of {topic}/{partition} ends at the high watermark"
    );
    value_bytes
}

// ---------------------------------------------------------------------------
// 3. Long-poll
// ---------------------------------------------------------------------------

/// How long after sending a waiting fetch the record is produced.
const PRODUCE_DELAY: Duration = Duration::from_millis(500);
/// Fetches answered by a record produced right after them, to catch a lost
/// wake-up (which would show as a fetch held for its whole max_wait_ms).
const LONG_POLL_RACE_ROUNDS: usize = 200;

fn long_poll_value(partition: i32, offset: i64) -> Vec<u8> {
    format!("long-poll {partition}/{offset}").into_bytes()
}

/// Asserts `partition` holds exactly one record, at `offset`, with its
/// long-poll value, and has high watermark `offset + 1`.
fn assert_one_long_poll_record(partition: &PartitionData, offset: i64, what: &str) {
    let index = partition.partition_index;
    assert_eq!(partition.error_code, ERROR_NONE, "{what}: error");
    assert_eq!(partition.high_watermark, offset + 1, "{what}: high watermark");
    let records = records_of(partition);
    assert_eq!(records.len(), 1, "{what}: exactly the one new record");
    assert_eq!(records[0].offset, offset, "{what}: record offset");
    assert_eq!(
        records[0].value.as_deref(),
        Some(long_poll_value(index, offset).as_slice()),
        "{what}: record value"
    );
}

#[test]
fn long_poll_returns_when_a_record_arrives() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = "long-poll";
    const PARTITIONS: i32 = 4;
    create_topic(&bootstrap, topic, PARTITIONS, &[]);
    // One fetching connection lands on one shard; with partitions on both
    // shards, some are local to it and some are owned by the other shard.
    let owners = partition_owners(broker.data_dir(), topic);
    assert_eq!(owners.len(), PARTITIONS as usize);
    assert!(
        owners.contains(&0) && owners.contains(&1),
        "partitions spread over both shards: {owners:?}"
    );

    let mut fetcher = Connection::open(broker.socket_addr());
    fetcher.set_read_timeout(Duration::from_secs(30));
    let mut producer = Connection::open(broker.socket_addr());
    let version = fetcher.negotiate(ApiKey::Fetch, 4..=12);

    // Three records in each partition, so every wait starts at a non-zero end.
    let mut ends = vec![0i64; PARTITIONS as usize];
    for partition in 0..PARTITIONS {
        for _ in 0..3 {
            let offset = ends[partition as usize];
            produce_one(
                &mut producer,
                topic,
                partition,
                offset,
                &long_poll_value(partition, offset),
            );
            ends[partition as usize] += 1;
        }
    }

    for partition in 0..PARTITIONS {
        let what = format!("partition {partition} (shard {})", owners[partition as usize]);
        let end = ends[partition as usize];

        // A waiting fetch at the end is answered once a record arrives.
        let request = fetch_request(topic, &[(partition, end, 1 << 20)], &[])
            .with_max_wait_ms(10_000)
            .with_min_bytes(1);
        let (correlation_id, frame) = fetcher.encode_request(version, &request);
        let sent = Instant::now();
        fetcher.write_raw(&frame).expect("send fetch");
        thread::sleep(PRODUCE_DELAY);
        produce_one(
            &mut producer,
            topic,
            partition,
            end,
            &long_poll_value(partition, end),
        );
        let response: FetchResponse = fetcher.read_response(correlation_id, version);
        let elapsed = sent.elapsed();
        assert_eq!(response.error_code, ERROR_NONE, "{what}: top-level error");
        let partitions = partitions_of(&response, topic);
        assert_eq!(partitions.keys().copied().collect::<Vec<_>>(), vec![partition]);
        assert_one_long_poll_record(&partitions[&partition], end, &format!("{what}, woken fetch"));
        assert!(
            elapsed < PROMPT,
            "{what}: fetch waiting up to 10 s answered {elapsed:?} after it was sent, the record came after {PRODUCE_DELAY:?}"
        );
        ends[partition as usize] += 1;
        let end = ends[partition as usize];

        // With nothing produced, the fetch waits out max_wait_ms, then is
        // answered empty.
        let request = fetch_request(topic, &[(partition, end, 1 << 20)], &[])
            .with_max_wait_ms(1_000)
            .with_min_bytes(1);
        let sent = Instant::now();
        let response = fetcher.call(version, &request);
        let elapsed = sent.elapsed();
        assert_eq!(response.error_code, ERROR_NONE, "{what}: top-level error");
        let partitions = partitions_of(&response, topic);
        assert_eq!(partitions.keys().copied().collect::<Vec<_>>(), vec![partition]);
        let data = &partitions[&partition];
        assert_eq!(
            (data.error_code, data.high_watermark),
            (ERROR_NONE, end),
            "{what}: empty fetch"
        );
        assert!(whole_batches(data).is_empty(), "{what}: no records at the end");
        assert!(
            elapsed >= Duration::from_millis(900) && elapsed < PROMPT,
            "{what}: empty fetch with max_wait_ms 1000 answered after {elapsed:?}"
        );
    }

    // No lost wake-up: a record produced right after the fetch was sent,
    // before, while or after the broker parks it, still ends the wait.
    for round in 0..LONG_POLL_RACE_ROUNDS {
        let partition = (round % PARTITIONS as usize) as i32;
        let what = format!(
            "race round {round}, partition {partition} (shard {})",
            owners[partition as usize]
        );
        let end = ends[partition as usize];
        let request = fetch_request(topic, &[(partition, end, 1 << 20)], &[])
            .with_max_wait_ms(10_000)
            .with_min_bytes(1);
        let (correlation_id, frame) = fetcher.encode_request(version, &request);
        let sent = Instant::now();
        fetcher.write_raw(&frame).expect("send fetch");
        let pause = Duration::from_micros(150 * (round as u64 % 8));
        if !pause.is_zero() {
            thread::sleep(pause);
        }
        produce_one(
            &mut producer,
            topic,
            partition,
            end,
            &long_poll_value(partition, end),
        );
        let response: FetchResponse = fetcher.read_response(correlation_id, version);
        let elapsed = sent.elapsed();
        assert_eq!(response.error_code, ERROR_NONE, "{what}: top-level error");
        let partitions = partitions_of(&response, topic);
        assert_eq!(partitions.keys().copied().collect::<Vec<_>>(), vec![partition]);
        assert_one_long_poll_record(&partitions[&partition], end, &what);
        assert!(elapsed < PROMPT, "{what}: answered {elapsed:?} after it was sent");
        ends[partition as usize] += 1;
    }

    // One fetch waiting on all four partitions is woken by a record on any
    // one of them, whichever shard owns it.
    for partition in 0..PARTITIONS {
        let what = format!(
            "all-partition fetch woken by partition {partition} (shard {})",
            owners[partition as usize]
        );
        let wanted: Vec<(i32, i64, i32)> = (0..PARTITIONS).map(|p| (p, ends[p as usize], 1 << 20)).collect();
        let request = fetch_request(topic, &wanted, &[])
            .with_max_wait_ms(10_000)
            .with_min_bytes(1);
        let (correlation_id, frame) = fetcher.encode_request(version, &request);
        let sent = Instant::now();
        fetcher.write_raw(&frame).expect("send fetch");
        thread::sleep(PRODUCE_DELAY);
        let end = ends[partition as usize];
        produce_one(
            &mut producer,
            topic,
            partition,
            end,
            &long_poll_value(partition, end),
        );
        let response: FetchResponse = fetcher.read_response(correlation_id, version);
        let elapsed = sent.elapsed();
        assert_eq!(response.error_code, ERROR_NONE, "{what}: top-level error");
        let partitions = partitions_of(&response, topic);
        assert_eq!(
            partitions.len(),
            PARTITIONS as usize,
            "{what}: a full fetch answers every partition"
        );
        for (&p, data) in &partitions {
            if p == partition {
                assert_one_long_poll_record(data, end, &what);
            } else {
                assert_eq!(
                    (data.error_code, data.high_watermark),
                    (ERROR_NONE, ends[p as usize]),
                    "{what}: partition {p}"
                );
                assert!(
                    whole_batches(data).is_empty(),
                    "{what}: partition {p} has no records"
                );
            }
        }
        assert!(
            elapsed < PROMPT,
            "{what}: answered {elapsed:?} after it was sent, the record came after {PRODUCE_DELAY:?}"
        );
        ends[partition as usize] += 1;
    }
}

// ---------------------------------------------------------------------------
// 4. Incremental fetch sessions
// ---------------------------------------------------------------------------

fn session_value(partition: i32, offset: i64) -> Vec<u8> {
    format!("session {partition}/{offset}").into_bytes()
}

fn assert_session_records(
    data: &PartitionData,
    offsets: std::ops::Range<i64>,
    high_watermark: i64,
    what: &str,
) {
    let index = data.partition_index;
    assert_eq!(data.error_code, ERROR_NONE, "{what}: partition {index} error");
    assert_eq!(
        data.high_watermark, high_watermark,
        "{what}: partition {index} high watermark"
    );
    let records = records_of(data);
    let got: Vec<(i64, Option<Bytes>)> = records.into_iter().map(|r| (r.offset, r.value)).collect();
    let expected: Vec<(i64, Option<Bytes>)> = offsets
        .map(|offset| (offset, Some(Bytes::from(session_value(index, offset)))))
        .collect();
    assert_eq!(got, expected, "{what}: partition {index} records");
}

#[test]
fn incremental_fetch_session_adds_and_removes_partitions() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = "fetch-sessions";
    create_topic(&bootstrap, topic, 3, &[]);

    // Sessions live on the shard of the connection: every session request
    // goes over this one connection.
    let mut session = Connection::open(broker.socket_addr());
    let mut producer = Connection::open(broker.socket_addr());
    let version = session.negotiate(ApiKey::Fetch, 7..=12);
    const MAX: i32 = 1 << 20;

    let mut ends = [0i64; 3];
    let mut produce = |partition: i32, ends: &mut [i64; 3]| {
        let offset = ends[partition as usize];
        produce_one(
            &mut producer,
            topic,
            partition,
            offset,
            &session_value(partition, offset),
        );
        ends[partition as usize] += 1;
    };
    for partition in 0..3 {
        produce(partition, &mut ends);
        produce(partition, &mut ends);
    }

    let mut fetch = |session_id: i32, epoch: i32, partitions: &[(i32, i64, i32)], forgotten: &[i32]| {
        let request = fetch_request(topic, partitions, forgotten)
            .with_session_id(session_id)
            .with_session_epoch(epoch);
        session.call(version, &request)
    };
    let keys = |partitions: &BTreeMap<i32, PartitionData>| partitions.keys().copied().collect::<Vec<_>>();

    // Epoch 0: a full fetch of partitions 0 and 1 at their ends creates a
    // session and answers both.
    let response = fetch(0, 0, &[(0, 2, MAX), (1, 2, MAX)], &[]);
    assert_eq!(response.error_code, ERROR_NONE, "epoch 0: error");
    let session_id = response.session_id;
    assert_ne!(session_id, 0, "epoch 0 creates a session");
    let partitions = partitions_of(&response, topic);
    assert_eq!(keys(&partitions), vec![0, 1], "epoch 0 answers every partition");
    for data in partitions.values() {
        assert_session_records(data, 2..2, 2, "epoch 0");
    }

    // A record on partition 0 only; the incremental fetch names no
    // partition and answers only partition 0, with the record.
    produce(0, &mut ends);
    let response = fetch(session_id, 1, &[], &[]);
    assert_eq!(
        (response.error_code, response.session_id),
        (ERROR_NONE, session_id),
        "epoch 1"
    );
    let partitions = partitions_of(&response, topic);
    assert_eq!(
        keys(&partitions),
        vec![0],
        "epoch 1 answers only the changed partition"
    );
    assert_session_records(&partitions[&0], 2..3, 3, "epoch 1");

    // Epoch 2: advance partition 0, add partition 2 from offset 0, forget
    // partition 1.
    let response = fetch(session_id, 2, &[(0, 3, MAX), (2, 0, MAX)], &[1]);
    assert_eq!(
        (response.error_code, response.session_id),
        (ERROR_NONE, session_id),
        "epoch 2"
    );
    let partitions = partitions_of(&response, topic);
    assert!(partitions.contains_key(&2), "epoch 2 answers the added partition");
    assert!(
        !partitions.contains_key(&1),
        "epoch 2 does not mention the forgotten partition"
    );
    assert_session_records(&partitions[&2], 0..2, 2, "epoch 2");
    // Partition 0 was named with a new offset but did not change: it may be
    // answered (empty) or left out.
    if let Some(data) = partitions.get(&0) {
        assert_session_records(data, 3..3, 3, "epoch 2");
    }

    // Records on the forgotten partition never bring it back.
    produce(1, &mut ends);
    let response = fetch(session_id, 3, &[(2, 2, MAX)], &[]);
    assert_eq!(
        (response.error_code, response.session_id),
        (ERROR_NONE, session_id),
        "epoch 3"
    );
    let partitions = partitions_of(&response, topic);
    assert!(
        keys(&partitions).iter().all(|&p| p == 2),
        "epoch 3 answers at most the partition it named, got {:?}",
        keys(&partitions)
    );
    if let Some(data) = partitions.get(&2) {
        assert_session_records(data, 2..2, 2, "epoch 3");
    }
    produce(1, &mut ends);
    let response = fetch(session_id, 4, &[], &[]);
    assert_eq!(
        (response.error_code, response.session_id),
        (ERROR_NONE, session_id),
        "epoch 4"
    );
    assert_eq!(
        keys(&partitions_of(&response, topic)),
        Vec::<i32>::new(),
        "epoch 4: nothing changed in the session's partitions"
    );
    produce(0, &mut ends);
    let response = fetch(session_id, 5, &[], &[]);
    assert_eq!(
        (response.error_code, response.session_id),
        (ERROR_NONE, session_id),
        "epoch 5"
    );
    let partitions = partitions_of(&response, topic);
    assert_eq!(keys(&partitions), vec![0], "epoch 5 answers only partition 0");
    assert_session_records(&partitions[&0], 3..4, 4, "epoch 5");

    // A wrong epoch (repeated, or ahead) is refused at the top level and
    // leaves the session as it was.
    for wrong_epoch in [5, 7, 1000] {
        let response = fetch(session_id, wrong_epoch, &[], &[]);
        assert_eq!(
            (response.error_code, response.session_id),
            (ERROR_INVALID_FETCH_SESSION_EPOCH, 0),
            "epoch {wrong_epoch} when 6 is expected"
        );
        assert!(
            response.responses.is_empty(),
            "an error answer carries no partitions"
        );
    }
    // The session kept its epoch and partitions: epoch 6 (advancing
    // partition 0 past the record it got) answers the new record of
    // partition 2.
    produce(2, &mut ends);
    let response = fetch(session_id, 6, &[(0, 4, MAX)], &[]);
    assert_eq!(
        (response.error_code, response.session_id),
        (ERROR_NONE, session_id),
        "epoch 6"
    );
    let partitions = partitions_of(&response, topic);
    assert!(
        partitions.contains_key(&2) && keys(&partitions).iter().all(|&p| p == 0 || p == 2),
        "epoch 6 answers partition 2 and at most the partition it named, got {:?}",
        keys(&partitions)
    );
    assert_session_records(&partitions[&2], 2..3, 3, "epoch 6");
    if let Some(data) = partitions.get(&0) {
        assert_session_records(data, 4..4, 4, "epoch 6");
    }

    // An unknown session id (0 included) is not found.
    let unknown = if session_id == i32::MAX { 1 } else { session_id + 1 };
    for id in [unknown, 0] {
        let response = fetch(id, 1, &[], &[]);
        assert_eq!(
            (response.error_code, response.session_id),
            (ERROR_FETCH_SESSION_ID_NOT_FOUND, 0),
            "incremental fetch of session {id}"
        );
        assert!(
            response.responses.is_empty(),
            "an error answer carries no partitions"
        );
    }

    // Epoch -1 with the session id closes the session; the answer is a
    // sessionless full fetch.
    let response = fetch(session_id, -1, &[(0, 4, MAX)], &[]);
    assert_eq!(
        (response.error_code, response.session_id),
        (ERROR_NONE, 0),
        "closing fetch"
    );
    let partitions = partitions_of(&response, topic);
    assert_eq!(keys(&partitions), vec![0]);
    assert_session_records(&partitions[&0], 4..4, 4, "closing fetch");
    let response = fetch(session_id, 7, &[], &[]);
    assert_eq!(
        response.error_code, ERROR_FETCH_SESSION_ID_NOT_FOUND,
        "incremental fetch after the session was closed"
    );
    assert_eq!(ends, [4, 4, 3]);

    // Incremental fetches long-poll like full ones. A new session on
    // partitions 0 and 2, at their ends:
    let request = fetch_request(topic, &[(0, 4, MAX), (2, 3, MAX)], &[])
        .with_session_id(0)
        .with_session_epoch(0);
    let response = session.call(version, &request);
    assert_eq!(response.error_code, ERROR_NONE, "second session, epoch 0");
    let second_id = response.session_id;
    assert_ne!(second_id, 0, "epoch 0 creates a session");
    assert_eq!(keys(&partitions_of(&response, topic)), vec![0, 2]);
    // with nothing new, an incremental fetch waits out max_wait_ms and
    // answers no partition;
    let request = fetch_request(topic, &[], &[])
        .with_session_id(second_id)
        .with_session_epoch(1)
        .with_max_wait_ms(1_000);
    let started = Instant::now();
    let response = session.call(version, &request);
    let elapsed = started.elapsed();
    assert_eq!(
        (response.error_code, response.session_id),
        (ERROR_NONE, second_id),
        "second session, epoch 1"
    );
    assert_eq!(keys(&partitions_of(&response, topic)), Vec::<i32>::new());
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < PROMPT,
        "incremental fetch with nothing new and max_wait_ms 1000 answered after {elapsed:?}"
    );
    // a record on one of its partitions ends the wait, and only that
    // partition is answered.
    session.set_read_timeout(Duration::from_secs(30));
    let request = fetch_request(topic, &[], &[])
        .with_session_id(second_id)
        .with_session_epoch(2)
        .with_max_wait_ms(10_000);
    let (correlation_id, frame) = session.encode_request(version, &request);
    let sent = Instant::now();
    session.write_raw(&frame).expect("send fetch");
    thread::sleep(PRODUCE_DELAY);
    produce_one(&mut producer, topic, 2, 3, &session_value(2, 3));
    let response: FetchResponse = session.read_response(correlation_id, version);
    let elapsed = sent.elapsed();
    assert_eq!(
        (response.error_code, response.session_id),
        (ERROR_NONE, second_id),
        "second session, epoch 2"
    );
    let partitions = partitions_of(&response, topic);
    assert_eq!(keys(&partitions), vec![2], "second session, epoch 2");
    assert_session_records(&partitions[&2], 3..4, 4, "second session, epoch 2");
    assert!(
        elapsed < PROMPT,
        "incremental fetch waiting up to 10 s answered {elapsed:?} after it was sent, the record came after {PRODUCE_DELAY:?}"
    );
}

// ---------------------------------------------------------------------------
// 5. Out-of-range offsets
// ---------------------------------------------------------------------------

#[test]
fn out_of_range_offsets_get_offset_out_of_range() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = "out-of-range";
    create_topic(&bootstrap, topic, 3, &[]);
    let mut connection = Connection::open(broker.socket_addr());
    // Partitions 0 and 1 hold records (one on each shard), partition 2 none.
    let counts = [5i64, 3, 0];
    for (partition, &count) in counts.iter().enumerate() {
        for offset in 0..count {
            produce_one(
                &mut connection,
                topic,
                partition as i32,
                offset,
                &session_value(partition as i32, offset),
            );
        }
    }

    for (partition, &high_watermark) in counts.iter().enumerate() {
        let partition = partition as i32;
        for offset in [
            high_watermark + 1,
            high_watermark + 1000,
            1 << 40,
            i64::MAX,
            -5,
            -1000,
        ] {
            // Errors are answered at once, even to a fetch willing to wait.
            let started = Instant::now();
            let data = connection.fetch(topic, partition, offset, 10_000);
            let elapsed = started.elapsed();
            let what = format!("fetch of {topic}/{partition} at {offset}");
            assert_eq!(data.error_code, ERROR_OFFSET_OUT_OF_RANGE, "{what}: error");
            assert_eq!(
                (data.high_watermark, data.log_start_offset),
                (high_watermark, 0),
                "{what}: high watermark and log start offset"
            );
            assert!(whole_batches(&data).is_empty(), "{what}: no records");
            assert!(elapsed < PROMPT, "{what}: answered after {elapsed:?}");
        }

        // At the high watermark: no error, no records.
        let data = connection.fetch(topic, partition, high_watermark, 0);
        let what = format!("fetch of {topic}/{partition} at the high watermark {high_watermark}");
        assert_eq!(
            (data.error_code, data.high_watermark, data.log_start_offset),
            (ERROR_NONE, high_watermark, 0),
            "{what}"
        );
        assert!(whole_batches(&data).is_empty(), "{what}: no records");

        // And every offset in range reads.
        for offset in 0..high_watermark {
            let data = connection.fetch(topic, partition, offset, 0);
            assert_eq!(data.error_code, ERROR_NONE);
            assert_eq!(offsets_of(&data), (offset..high_watermark).collect::<Vec<_>>());
        }
    }
}

// ---------------------------------------------------------------------------
// 6. max_bytes and partition_max_bytes
// ---------------------------------------------------------------------------

/// A fetch of (partition, offset, partition_max_bytes) entries with
/// `max_bytes`; returns each partition's whole batches.
fn fetch_batches(
    connection: &mut Connection,
    version: i16,
    topic: &str,
    partitions: &[(i32, i64, i32)],
    max_bytes: i32,
    what: &str,
) -> BTreeMap<i32, Vec<Bytes>> {
    let request = fetch_request(topic, partitions, &[]).with_max_bytes(max_bytes);
    let response = connection.call(version, &request);
    if version >= 7 {
        assert_eq!(
            response.error_code, ERROR_NONE,
            "{what} (v{version}): top-level error"
        );
    }
    let answered = partitions_of(&response, topic);
    let asked: BTreeSet<i32> = partitions.iter().map(|p| p.0).collect();
    assert_eq!(
        answered.keys().copied().collect::<BTreeSet<_>>(),
        asked,
        "{what} (v{version}): every partition answered"
    );
    answered
        .into_iter()
        .map(|(partition, data)| {
            assert_eq!(
                data.error_code, ERROR_NONE,
                "{what} (v{version}): partition {partition} error"
            );
            (partition, whole_batches(&data))
        })
        .collect()
}

/// Asserts `got` are exactly `expected` (as produced), apart from the base
/// offset the broker assigned.
fn assert_batches(got: &[Bytes], expected: &[&Bytes], what: &str) {
    assert_eq!(
        got.iter().map(Bytes::len).collect::<Vec<_>>(),
        expected.iter().map(|b| b.len()).collect::<Vec<_>>(),
        "{what}: batch sizes"
    );
    for (i, (got, expected)) in got.iter().zip(expected).enumerate() {
        assert!(
            got[batch_layout::BATCH_LENGTH..] == expected[batch_layout::BATCH_LENGTH..],
            "{what}: batch {i} differs from what was produced"
        );
    }
}

#[test]
fn max_bytes_rules() {
    let mut broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = "max-bytes";
    create_topic(&bootstrap, topic, 3, &[]);
    let mut connection = Connection::open(broker.socket_addr());

    // Partition 0: a 64 KiB batch (offset 0), then three batches of three
    // 1000-byte records (offsets 1-3, 4-6, 7-9).
    let big = produce_batch(&mut connection, topic, 0, 0, &[vec![0xB1; 64 * 1024]]);
    let small: Vec<Bytes> = (0..3u8)
        .map(|i| {
            let values: Vec<Vec<u8>> = (0..3u8).map(|j| vec![i * 3 + j; 1000]).collect();
            produce_batch(&mut connection, topic, 0, 1 + 3 * i64::from(i), &values)
        })
        .collect();
    // Partition 1: one 3000-byte record (offset 0). Partition 2: empty.
    let other = produce_batch(&mut connection, topic, 1, 0, &[vec![0x0C; 3000]]);
    assert!(big.len() > 10_000 && small.iter().map(Bytes::len).sum::<usize>() < 10_000 && other.len() < 4000);

    // The same rules whether the batches come from the tail cache (just
    // written) or from the segment files (after a restart, the cache is
    // empty).
    check_max_bytes_rules(&mut connection, topic, &big, &small, &other, "from memory");
    drop(connection);
    broker.restart();
    let mut connection = Connection::open(broker.socket_addr());
    check_max_bytes_rules(&mut connection, topic, &big, &small, &other, "from disk");
}

/// The max_bytes checks of [`max_bytes_rules`] at every Fetch version the
/// broker serves; `source` names where the broker reads from.
fn check_max_bytes_rules(
    fetcher: &mut Connection,
    topic: &str,
    big: &Bytes,
    small: &[Bytes],
    other: &Bytes,
    source: &str,
) {
    let (s0, s1, s2) = (&small[0], &small[1], &small[2]);
    let len = |batches: &[&Bytes]| batches.iter().map(|b| b.len()).sum::<usize>() as i32;
    const MAX: i32 = 1 << 20;
    const LIMIT: i32 = 10_000;
    let versions = {
        let low = fetcher.negotiate(ApiKey::Fetch, 4..=4);
        let high = fetcher.negotiate(ApiKey::Fetch, 4..=12);
        low..=high
    };
    for version in versions {
        let mut fetch = |partitions: &[(i32, i64, i32)], max_bytes: i32, what: &str| {
            fetch_batches(fetcher, version, topic, partitions, max_bytes, what)
        };

        // KIP-74: a batch larger than max_bytes (and partition_max_bytes) is
        // returned whole when it is the first of the response...
        let what = &format!("oversized first batch, {source}, Fetch v{version}");
        let got = fetch(&[(0, 0, LIMIT)], LIMIT, what);
        assert_batches(&got[&0], &[big], what);
        // ... also after an empty partition ...
        let what = &format!("oversized batch after an empty partition, {source}, Fetch v{version}");
        let got = fetch(&[(2, 0, MAX), (1, 1, MAX), (0, 0, MAX)], LIMIT, what);
        assert_batches(&got[&0], &[big], what);
        assert_batches(&got[&1], &[], what);
        assert_batches(&got[&2], &[], what);
        // ... and nothing else fits after it: not the next partition's batch.
        let what = &format!("oversized first batch, then another partition, {source}, Fetch v{version}");
        let got = fetch(&[(0, 0, MAX), (1, 0, MAX)], LIMIT, what);
        assert_batches(&got[&0], &[big], what);
        assert_batches(&got[&1], &[], what);

        // A batch that is not the first of the response is only returned if
        // it fits what is left of max_bytes.
        let what = &format!("oversized batch in the second partition, {source}, Fetch v{version}");
        let got = fetch(&[(1, 0, MAX), (0, 0, MAX)], LIMIT, what);
        assert_batches(&got[&1], &[other], what);
        assert_batches(&got[&0], &[], what);
        let what = &format!("second partition's batch does not fit what is left, {source}, Fetch v{version}");
        let got = fetch(
            &[(0, 1, MAX), (1, 0, MAX)],
            len(&[s0, s1]) + len(&[other]) - 1,
            what,
        );
        assert_batches(&got[&0], &[s0, s1], what);
        assert_batches(&got[&1], &[], what);
        let what = &format!("second partition's batch fits exactly, {source}, Fetch v{version}");
        let got = fetch(&[(0, 1, MAX), (1, 0, MAX)], len(&[s0, s1]) + len(&[other]), what);
        assert_batches(&got[&0], &[s0, s1], what);
        assert_batches(&got[&1], &[other], what);

        // Never a partial batch: max_bytes or partition_max_bytes ending
        // inside a batch stops before it.
        let what = &format!("max_bytes ends inside the second batch, {source}, Fetch v{version}");
        let got = fetch(&[(0, 1, MAX)], len(&[s0]) + len(&[s1]) / 2, what);
        assert_batches(&got[&0], &[s0], what);
        let what = &format!("partition_max_bytes ends inside the third batch, {source}, Fetch v{version}");
        let got = fetch(&[(0, 1, len(&[s0, s1]) + 10), (1, 0, MAX)], MAX, what);
        assert_batches(&got[&0], &[s0, s1], what);
        assert_batches(&got[&1], &[other], what);
        let what = &format!("partition_max_bytes ends inside the first batch of a later partition, {source}, Fetch v{version}");
        let got = fetch(&[(1, 0, MAX), (0, 1, len(&[s0]) - 1)], MAX, what);
        assert_batches(&got[&1], &[other], what);
        assert_batches(&got[&0], &[], what);
        let what = &format!("everything fits, {source}, Fetch v{version}");
        let got = fetch(&[(0, 0, MAX), (1, 0, MAX)], MAX, what);
        assert_batches(&got[&0], &[big, s0, s1, s2], what);
        assert_batches(&got[&1], &[other], what);

        // A fetch offset inside a batch returns that whole batch first.
        let what = &format!("fetch offset inside a batch, {source}, Fetch v{version}");
        let got = fetch(&[(0, 5, MAX)], len(&[s1, s2]) - 1, what);
        assert_batches(&got[&0], &[s1], what);
        assert_eq!(
            got[&0]
                .iter()
                .map(|b| common::wire::batch_base_offset(b))
                .collect::<Vec<_>>(),
            vec![4],
            "{what}: base offset"
        );
    }
}

// ---------------------------------------------------------------------------
// Segments removed while a fetch response is being sent
// ---------------------------------------------------------------------------

/// A 40 MiB cold fetch response is half read when its topic is deleted: the
/// response still arrives whole and intact (the send holds its own file
/// descriptor; the unlinked file lives until it closes), and the broker
/// goes on serving.
#[test]
fn topic_deleted_while_a_cold_fetch_is_being_sent() {
    let broker = Broker::start_with(BrokerOptions {
        config_toml: Some("tail_cache_bytes = 1048576\nsegment_bytes = 67108864\n".to_string()),
        ..Default::default()
    });
    let bootstrap = broker.bootstrap();
    let topic = "deleted-mid-fetch";
    const RECORDS: i64 = 40 * 1024;
    const FETCH_BYTES: i32 = 48 * 1024 * 1024;
    create_topic(&bootstrap, topic, 1, &[]);
    let mut producer = CheckedProducer::new(&bootstrap, "1");
    let mut value = Vec::new();
    for offset in 0..RECORDS {
        write_value(0, offset, fixed_len(0, offset), &mut value);
        producer.send(topic, 0, offset, &value);
    }
    producer.flush_and_check();

    let mut connection = Connection::open(broker.socket_addr());
    let version = connection.negotiate(ApiKey::Fetch, 4..=12);
    // The first read of the range is an O_DIRECT read that prefetches it,
    // so the big fetch below is most likely spliced from the page cache
    // (either path must survive the deletion).
    let warm_up = fetch_request(topic, &[(0, 0, FETCH_BYTES)], &[]).with_max_bytes(FETCH_BYTES);
    let response = connection.call(version, &warm_up);
    assert_eq!(partitions_of(&response, topic)[&0].error_code, ERROR_NONE);
    // Also past the last produce by more than a second: while producers are
    // active, catch-up pacing caps what a response reads below the tail
    // cache at 1 MiB.
    thread::sleep(Duration::from_millis(1_500));

    let request = fetch_request(topic, &[(0, 0, FETCH_BYTES)], &[]).with_max_bytes(FETCH_BYTES);
    let (correlation_id, frame) = connection.encode_request(version, &request);
    connection.write_raw(&frame).expect("send fetch");
    let mut size = [0u8; 4];
    connection.read_exact(&mut size).expect("response size");
    let size = i32::from_be_bytes(size);
    assert!(
        size > 32 * 1024 * 1024,
        "response of {size} bytes: expected most of 40 MiB"
    );
    let mut body = vec![0u8; size as usize];
    let head_bytes = 1024 * 1024;
    connection
        .read_exact(&mut body[..head_bytes])
        .expect("response head");

    let deleted = block_on(
        admin(&bootstrap).delete_topics(&[topic], &admin_options()),
        CLIENT_TIMEOUT,
    )
    .expect("DeleteTopics request");
    assert_eq!(deleted, vec![Ok(topic.to_string())]);
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    while list_topics(&bootstrap).iter().any(|t| t == topic) {
        assert!(
            Instant::now() < deadline,
            "{topic} still listed after DeleteTopics"
        );
        thread::sleep(Duration::from_millis(50));
    }

    connection
        .read_exact(&mut body[head_bytes..])
        .expect("rest of the response");
    let mut body = Bytes::from(body);
    let header = <kafka_protocol::messages::ResponseHeader as kafka_protocol::protocol::Decodable>::decode(
        &mut body,
        <FetchResponse as kafka_protocol::protocol::HeaderVersion>::header_version(version),
    )
    .expect("response header");
    assert_eq!(header.correlation_id, correlation_id);
    let response = <FetchResponse as kafka_protocol::protocol::Decodable>::decode(&mut body, version)
        .expect("fetch response body");
    let partition = partitions_of(&response, topic).remove(&0).expect("partition 0");
    assert_eq!(partition.error_code, ERROR_NONE);
    let mut next = 0i64;
    let mut scratch = Vec::new();
    for mut batch in whole_batches(&partition) {
        for record in RecordBatchDecoder::decode(&mut batch)
            .expect("decode batch")
            .records
        {
            assert_eq!(record.offset, next, "record offsets dense");
            if let Err(problem) =
                check_value(0, next, fixed_len(0, next), record.value.as_deref(), &mut scratch)
            {
                panic!("record {next}: {problem}");
            }
            next += 1;
        }
    }
    assert!(next > 30 * 1024, "only {next} records in a 40 MiB response");

    // The broker serves on: the topic is gone, others work.
    let response = connection.call(version, &fetch_request(topic, &[(0, 0, 1024)], &[]));
    assert_ne!(
        partitions_of(&response, topic)[&0].error_code,
        ERROR_NONE,
        "fetch of a deleted topic"
    );
    common::assert_broker_serves_clients(&bootstrap, "after-delete");
    let mut broker = broker;
    broker.stop();
    let (tail, page_cache, dma) = fetch_bytes_by_source(&broker.logs(), 2);
    eprintln!("fetched: {tail} bytes from the tail cache, {page_cache} spliced, {dma} with O_DIRECT");
}
