//! Tests of the partition log as its callers use it: appends, reads, segment
//! rolls, reopening, recovery from torn tails and corruption, timestamp
//! lookups and durability.
//!
//! Every test runs in its own glommio executor (the log does its O_DIRECT
//! I/O through it) on a fresh temporary directory. Batches are built with
//! kafka-protocol's encoder, as a producer would send them, and validated by
//! the produce path's validator, so the log sees exactly what the handlers
//! give it. A `Model` of what was acknowledged is the oracle: every read
//! must return its batches byte for byte (the producer's bytes with only
//! `baseOffset` rewritten), whole, with valid CRCs. Damage is done with
//! `std::fs` while the log is closed, the way a crash or a bad disk would.

use std::{
    cell::Cell,
    future::Future,
    path::{Path, PathBuf},
    rc::Rc,
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use futures_lite::future::poll_once;
use indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType as RecordTimestampType,
};

use super::{
    now_ms,
    partition::{AppendOutcome, Durability, PartitionLog},
    producer_state::{self, ProducerError},
    recovery::open_log,
    segment::{index_path, log_path, time_index_path},
    LogError,
};
use crate::{
    metadata::{TimestampType, TopicConfig},
    protocol::record_batch::{self, BatchHeader},
};

const TOPIC: &str = "orders";
const PARTITION: i32 = 3;
const APPEND_WRITE_BYTES_MAX: usize = 1024 * 1024;
/// A fetch limit no test reaches.
const READ_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Large enough that no test rolls a segment by age unless it asks to.
const SEGMENT_MS_NEVER: u64 = 7 * 24 * 3600 * 1000;
const SEGMENT_BYTES_LARGE: u64 = 1024 * 1024 * 1024;
/// Where CreateTime timestamps of most test batches start.
const TIMESTAMP_BASE_MS: i64 = 1_600_000_000_000;

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// Runs `test` to completion in a fresh glommio executor on this thread's
/// behalf; a panic inside fails the calling test.
///
/// Like a shard at start (DESIGN.md, shard::runtime), the executor first
/// reads a non-empty file with a read-only `DmaFile::open`: otherwise
/// glommio's polled-I/O probe can misfire on this disk and make every later
/// DMA read fail with EOPNOTSUPP.
pub(super) fn run<F, Fut>(test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let probe_dir = tempfile::tempdir().expect("temporary directory");
    let probe = probe_dir.path().join("dma-probe");
    std::fs::write(&probe, vec![1u8; 4096]).expect("writing the probe file");
    let handle = glommio::LocalExecutorBuilder::default()
        .name("log-test")
        .spawn(move || async move {
            let file = glommio::io::DmaFile::open(&probe)
                .await
                .expect("opening the probe file");
            let read = file.read_at(0, 4096).await.expect("DMA read of the probe file");
            assert_eq!(read.len(), 4096);
            file.close().await.expect("closing the probe file");
            test().await
        })
        .expect("spawning the test executor");
    if let Err(error) = handle.join() {
        panic!("test executor failed: {error:?}");
    }
}

/// A temporary directory and the path the executor closure takes with it.
pub(super) fn temp_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().to_path_buf();
    (dir, path)
}

/// Reads every file under `dir` through the page cache.
pub(super) fn warm_page_cache(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            warm_page_cache(&path);
        } else {
            let _ = std::fs::read(&path);
        }
    }
}

fn config(segment_bytes: u64) -> TopicConfig {
    TopicConfig {
        segment_bytes,
        segment_ms: SEGMENT_MS_NEVER,
        max_message_bytes: 1024 * 1024,
        timestamp_type: TimestampType::CreateTime,
        retention_ms: -1,
        ..TopicConfig::resolve(&crate::config::Config::default(), &Default::default())
    }
}

async fn open(dir: &Path, config: TopicConfig) -> PartitionLog {
    open_with_write_bytes(dir, config, APPEND_WRITE_BYTES_MAX).await
}

async fn open_with_write_bytes(
    dir: &Path,
    config: TopicConfig,
    append_write_bytes_max: usize,
) -> PartitionLog {
    open_log(dir, TOPIC, PARTITION, config, append_write_bytes_max)
        .await
        .expect("opening the log")
}

/// A producer's batch: one record per timestamp, keys and values derived
/// from `tag` so no two batches in a test are alike.
fn encode_batch(tag: u64, timestamps_ms: &[i64], value_bytes: usize) -> Bytes {
    let records: Vec<Record> = timestamps_ms
        .iter()
        .enumerate()
        .map(|(index, &timestamp)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: RecordTimestampType::Creation,
            offset: index as i64,
            // offset - sequence is constant, so the encoder keeps one batch.
            sequence: index as i32,
            timestamp,
            key: Some(Bytes::from(format!("key-{tag}-{index}"))),
            value: Some(
                (0..value_bytes)
                    .map(|byte| (tag as usize * 31 + index * 7 + byte) as u8)
                    .collect::<Vec<u8>>()
                    .into(),
            ),
            headers: IndexMap::new(),
        })
        .collect();
    let batch = encode_records(&records);
    let header = record_batch::validate_produced_batch(&batch, usize::MAX).expect("a valid batch");
    assert_eq!(
        header.records_count as usize,
        timestamps_ms.len(),
        "the encoder made one batch"
    );
    batch
}

/// One uncompressed v2 batch of `records`, as a producer encodes it.
pub(super) fn encode_records(records: &[Record]) -> Bytes {
    let mut buffer = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buffer, records, &options).expect("encoding a batch");
    buffer.freeze()
}

/// `count` increasing timestamps from `first_ms`.
fn timestamps_from(first_ms: i64, count: usize) -> Vec<i64> {
    (0..count as i64).map(|i| first_ms + i).collect()
}

/// What the log must hold for one acknowledged batch.
#[derive(Clone, Debug)]
struct StoredBatch {
    base_offset: i64,
    last_offset: i64,
    /// The producer's bytes with `baseOffset` rewritten.
    bytes: Bytes,
    /// Record timestamps, in offset order.
    timestamps_ms: Vec<i64>,
}

/// The acknowledged batches, in offset order.
#[derive(Default, Clone)]
struct Model {
    batches: Vec<StoredBatch>,
}

impl Model {
    fn next_offset(&self) -> i64 {
        self.batches.last().map_or(0, |b| b.last_offset + 1)
    }

    fn push(&mut self, sent: &Bytes, base_offset: i64, timestamps_ms: &[i64]) {
        self.batches.push(StoredBatch {
            base_offset,
            last_offset: base_offset + timestamps_ms.len() as i64 - 1,
            bytes: with_base_offset(sent, base_offset),
            timestamps_ms: timestamps_ms.to_vec(),
        });
    }

    /// Batches a fetch from `offset` must return (given room and one segment).
    fn batches_from(&self, offset: i64) -> Vec<Bytes> {
        self.batches
            .iter()
            .filter(|b| b.last_offset >= offset)
            .map(|b| b.bytes.clone())
            .collect()
    }

    fn batch_holding(&self, offset: i64) -> &StoredBatch {
        self.batches
            .iter()
            .find(|b| b.base_offset <= offset && offset <= b.last_offset)
            .unwrap_or_else(|| panic!("no batch holds offset {offset}"))
    }

    /// Keeps only the batches below `offset` (what recovery truncates to).
    fn truncate_to(&mut self, offset: i64) {
        self.batches.retain(|b| b.last_offset < offset);
    }

    /// ListOffsets by timestamp: the first record (in offset order) whose
    /// timestamp is >= target, with that record's timestamp.
    fn offset_for_timestamp(&self, target_ms: i64) -> Option<(i64, i64)> {
        self.batches.iter().find_map(|batch| {
            batch
                .timestamps_ms
                .iter()
                .enumerate()
                .find(|(_, &timestamp)| timestamp >= target_ms)
                .map(|(delta, &timestamp)| (batch.base_offset + delta as i64, timestamp))
        })
    }

    /// ListOffsets MAX_TIMESTAMP as `offset_of_max_timestamp` documents it:
    /// the last offset of the first batch carrying the largest timestamp.
    fn offset_of_max_timestamp(&self) -> Option<(i64, i64)> {
        let max = self
            .batches
            .iter()
            .flat_map(|b| b.timestamps_ms.iter().copied())
            .max()?;
        let batch = self.batches.iter().find(|b| b.timestamps_ms.contains(&max))?;
        Some((batch.last_offset, max))
    }

    /// Timestamps worth asking about: every record's, its neighbours, and
    /// values before and after all of them.
    fn interesting_timestamps(&self) -> Vec<i64> {
        let mut targets = vec![i64::MIN, -1, 0];
        for batch in &self.batches {
            for &timestamp in &batch.timestamps_ms {
                targets.extend([timestamp - 1, timestamp, timestamp + 1]);
            }
        }
        let max = self
            .batches
            .iter()
            .flat_map(|b| b.timestamps_ms.iter().copied())
            .max()
            .unwrap_or(0);
        targets.extend([max + 1, max + 1_000_000, i64::MAX]);
        targets.sort_unstable();
        targets.dedup();
        targets
    }
}

/// The bytes of `batches` one after the other, as a segment file holds them.
fn concatenated(batches: &[StoredBatch]) -> Vec<u8> {
    batches.iter().flat_map(|b| b.bytes.iter().copied()).collect()
}

pub(super) fn with_base_offset(batch: &[u8], base_offset: i64) -> Bytes {
    let mut bytes = batch.to_vec();
    bytes[..8].copy_from_slice(&base_offset.to_be_bytes());
    Bytes::from(bytes)
}

async fn append(
    log: &PartitionLog,
    batch: &Bytes,
    durability: Durability,
) -> Result<AppendOutcome, LogError> {
    let header = record_batch::validate_produced_batch(batch, usize::MAX).expect("a valid batch");
    log.append(batch.clone(), &header, durability).await
}

/// Appends a new batch, checks where it landed, and records it in `model`.
async fn append_checked(
    log: &PartitionLog,
    model: &mut Model,
    tag: u64,
    timestamps_ms: &[i64],
    value_bytes: usize,
) -> AppendOutcome {
    let batch = encode_batch(tag, timestamps_ms, value_bytes);
    let outcome = append(log, &batch, Durability::Written).await.expect("append");
    assert_eq!(outcome.base_offset, model.next_offset(), "dense offsets");
    model.push(&batch, outcome.base_offset, timestamps_ms);
    assert_eq!(
        log.high_watermark(),
        model.next_offset(),
        "a written batch is below the high watermark"
    );
    outcome
}

/// Parses a batch returned by a read and checks it is whole and intact.
fn assert_whole_batch(batch: &[u8]) -> BatchHeader {
    let header = BatchHeader::parse(batch).expect("a batch header");
    assert_eq!(
        header.total_bytes(),
        batch.len(),
        "reads return whole batches only"
    );
    record_batch::verify_crc(batch).expect("the stored CRC is valid");
    header
}

fn assert_batches_eq(actual: &[Bytes], expected: &[Bytes], context: &str) {
    let offsets = |batches: &[Bytes]| -> Vec<i64> {
        batches
            .iter()
            .map(|b| BatchHeader::parse(b).map_or(-1, |h| h.base_offset))
            .collect()
    };
    assert_eq!(
        offsets(actual),
        offsets(expected),
        "{context}: base offsets of the batches"
    );
    for (index, (actual, expected)) in actual.iter().zip(expected).enumerate() {
        assert!(
            actual == expected,
            "{context}: batch {index} differs from what was appended"
        );
        assert_whole_batch(actual);
    }
}

/// Consumes the log from `from` to the high watermark as a fetcher does:
/// each fetch starts after the last batch of the previous one.
async fn consume(log: &PartitionLog, from: i64, max_bytes: usize) -> Vec<Bytes> {
    let high_watermark = log.high_watermark();
    let mut offset = from;
    let mut batches: Vec<Bytes> = Vec::new();
    while offset < high_watermark {
        let read = log.read(offset, max_bytes, true).await.expect("read");
        assert!(
            !read.batches.is_empty(),
            "a fetch at {offset} below the high watermark returns data"
        );
        assert_eq!(read.high_watermark, high_watermark);
        assert_eq!(read.bytes, read.batches.iter().map(Bytes::len).sum::<usize>());
        for batch in read.batches {
            let header = assert_whole_batch(&batch);
            if batches.is_empty() {
                assert!(header.base_offset <= offset && offset <= header.last_offset());
            } else {
                assert_eq!(
                    header.base_offset, offset,
                    "batches follow each other without gaps"
                );
            }
            offset = header.last_offset() + 1;
            batches.push(batch);
        }
    }
    assert_eq!(
        offset, high_watermark,
        "the last batch ends at the high watermark"
    );
    batches
}

/// Checks every way of reading the log against the model.
async fn assert_log_matches(log: &PartitionLog, model: &Model, context: &str) {
    assert_eq!(
        log.high_watermark(),
        model.next_offset(),
        "{context}: high watermark"
    );
    assert_batches_eq(
        &consume(log, 0, READ_BYTES_MAX).await,
        &model.batches_from(0),
        context,
    );
    for offset in 0..model.next_offset() {
        let read = log.read(offset, 1, true).await.expect("read");
        let holding = model.batch_holding(offset).bytes.clone();
        assert_batches_eq(
            &read.batches,
            &[holding],
            &format!("{context}: fetch of one batch at {offset}"),
        );
    }
}

async fn assert_timestamp_lookups_match(log: &PartitionLog, model: &Model, context: &str) {
    for target in model.interesting_timestamps() {
        let found = log
            .offset_for_timestamp(target)
            .await
            .expect("offset_for_timestamp");
        assert_eq!(
            found,
            model.offset_for_timestamp(target),
            "{context}: offset for timestamp {target}"
        );
    }
    assert_eq!(
        log.offset_of_max_timestamp(),
        model.offset_of_max_timestamp(),
        "{context}: max timestamp"
    );
}

/// Base offsets of the segments in `dir`, checking every `.log`,
/// `.index`, `.timeindex` and producer `.snapshot` file is named by a
/// 20-digit offset.
fn segment_bases(dir: &Path) -> Vec<i64> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).expect("listing the log directory") {
        let name = entry
            .expect("directory entry")
            .file_name()
            .into_string()
            .expect("UTF-8 name");
        if name == "log-start-offset" {
            continue;
        }
        let (stem, extension) = name.split_once('.').expect("segment files have an extension");
        assert!(
            ["log", "index", "timeindex", "snapshot", "txnindex"].contains(&extension),
            "unexpected file {name}"
        );
        assert!(
            stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()),
            "file {name}"
        );
        if extension == "log" {
            bases.push(stem.parse::<i64>().expect("a base offset"));
        }
    }
    bases.sort_unstable();
    bases
}

/// The batches in a `.log` file with their file positions.
fn file_batches(path: &Path) -> Vec<(usize, BatchHeader)> {
    let bytes = std::fs::read(path).expect("reading a segment");
    record_batch::scan_batches(&bytes)
        .map(|batch| batch.expect("a batch header"))
        .collect()
}

fn file_bytes(path: &Path) -> u64 {
    std::fs::metadata(path).expect("stat").len()
}

fn flip_byte(path: &Path, position: usize) {
    let mut bytes = std::fs::read(path).expect("reading a file");
    bytes[position] ^= 0x5a;
    std::fs::write(path, bytes).expect("writing a file");
}

fn write_base_offset(path: &Path, position: usize, base_offset: i64) {
    let mut bytes = std::fs::read(path).expect("reading a file");
    bytes[position..position + 8].copy_from_slice(&base_offset.to_be_bytes());
    std::fs::write(path, bytes).expect("writing a file");
}

fn append_to_file(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("opening for append");
    file.write_all(bytes).expect("appending");
    file.sync_all().expect("fsync");
}

/// Deterministic noise for garbage files.
fn noise(seed: u64, length: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Fills a log with `count` batches of varying record counts and sizes.
async fn fill(log: &PartitionLog, model: &mut Model, first_tag: u64, count: u64, value_bytes_max: u64) {
    for tag in first_tag..first_tag + count {
        let records = 1 + (tag * 7 % 11) as usize;
        let value_bytes = 1 + (tag * 131 % value_bytes_max) as usize;
        let timestamps = timestamps_from(TIMESTAMP_BASE_MS + model.next_offset() * 10, records);
        append_checked(log, model, tag, &timestamps, value_bytes).await;
    }
}

// ---------------------------------------------------------------------------
// 1. Appends and reads
// ---------------------------------------------------------------------------

#[test]
fn appends_are_readable_in_order_with_dense_offsets() {
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, config(SEGMENT_BYTES_LARGE)).await;
        assert_eq!(log.high_watermark(), 0);
        assert_eq!(log.log_start_offset(), 0);
        let mut model = Model::default();
        for tag in 0..80u64 {
            let records = 1 + (tag * 7 % 13) as usize;
            let value_bytes = 1 + (tag * 37 % 300) as usize;
            let timestamps = timestamps_from(TIMESTAMP_BASE_MS + model.next_offset(), records);
            let outcome = append_checked(&log, &mut model, tag, &timestamps, value_bytes).await;
            assert_eq!(
                outcome.log_append_time_ms, -1,
                "CreateTime topics report no append time"
            );
            assert_eq!(outcome.log_start_offset, 0);
        }
        let high_watermark = model.next_offset();
        assert_eq!(
            high_watermark,
            model
                .batches
                .iter()
                .map(|b| b.timestamps_ms.len() as i64)
                .sum::<i64>()
        );

        // One fetch of everything (a single segment).
        let read = log.read(0, READ_BYTES_MAX, false).await.expect("read");
        assert_eq!(read.high_watermark, high_watermark);
        assert_eq!(read.log_start_offset, 0);
        assert_eq!(
            read.bytes,
            model.batches.iter().map(|b| b.bytes.len()).sum::<usize>()
        );
        assert_batches_eq(&read.batches, &model.batches_from(0), "read from 0");

        // From every offset, including offsets inside batches.
        for offset in 0..high_watermark {
            let rest = log.read(offset, READ_BYTES_MAX, false).await.expect("read");
            assert_batches_eq(
                &rest.batches,
                &model.batches_from(offset),
                &format!("read from {offset}"),
            );
        }
        assert_log_matches(&log, &model, "open").await;

        // On-disk bytes are wire bytes: exactly the batches, no padding.
        log.close().await.expect("close");
        let file = std::fs::read(log_path(&dir, 0)).expect("reading the segment");
        assert!(
            file == concatenated(&model.batches),
            "the .log file is the concatenated batches"
        );
    });
}

#[test]
fn small_segments_roll_and_reads_cross_segment_boundaries_in_whole_batches() {
    const SEGMENT_BYTES: u64 = 4096;
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, config(SEGMENT_BYTES)).await;
        let mut model = Model::default();
        let mut big_batch_base = -1;
        for tag in 0..45u64 {
            let records = 1 + (tag % 4) as usize;
            let timestamps = timestamps_from(TIMESTAMP_BASE_MS + model.next_offset(), records);
            if tag == 20 {
                // Larger than a whole segment: it gets a segment of its own.
                big_batch_base = model.next_offset();
                append_checked(
                    &log,
                    &mut model,
                    tag,
                    &timestamps_from(TIMESTAMP_BASE_MS, 3),
                    2000,
                )
                .await;
                assert!(model.batches.last().unwrap().bytes.len() as u64 > SEGMENT_BYTES);
            } else {
                append_checked(
                    &log,
                    &mut model,
                    tag,
                    &timestamps,
                    100 + (tag * 211 % 800) as usize,
                )
                .await;
            }
        }

        // Where the segments must start: a batch that does not fit the
        // active, non-empty segment starts a new one.
        let mut expected_segments: Vec<Vec<StoredBatch>> = vec![Vec::new()];
        let mut segment_size = 0u64;
        for batch in &model.batches {
            let batch_bytes = batch.bytes.len() as u64;
            if segment_size > 0 && segment_size + batch_bytes > SEGMENT_BYTES {
                expected_segments.push(Vec::new());
                segment_size = 0;
            }
            segment_size += batch_bytes;
            expected_segments.last_mut().unwrap().push(batch.clone());
        }
        let expected_bases: Vec<i64> = expected_segments.iter().map(|s| s[0].base_offset).collect();
        assert!(expected_bases.len() >= 5, "the test rolls several segments");
        assert_eq!(segment_bases(&dir), expected_bases);
        assert!(expected_bases.contains(&big_batch_base));

        // Sealed segments: trimmed to their batches, indexes written.
        let (active, sealed) = expected_segments.split_last().unwrap();
        for segment in sealed {
            let base = segment[0].base_offset;
            let bytes = std::fs::read(log_path(&dir, base)).unwrap();
            assert!(
                bytes == concatenated(segment),
                "sealed segment {base} holds exactly its batches"
            );
            assert!(index_path(&dir, base).exists() && time_index_path(&dir, base).exists());
        }
        let active_base = active[0].base_offset;
        assert!(
            !index_path(&dir, active_base).exists(),
            "the active segment's index is written at close"
        );

        // One fetch reads from one segment: the one holding the offset.
        let mut offset = 0;
        while offset < model.next_offset() {
            let read = log.read(offset, READ_BYTES_MAX, false).await.expect("read");
            let segment = expected_segments
                .iter()
                .find(|s| s[0].base_offset <= offset && offset <= s.last().unwrap().last_offset)
                .unwrap();
            let expected: Vec<Bytes> = segment
                .iter()
                .filter(|b| b.last_offset >= offset)
                .map(|b| b.bytes.clone())
                .collect();
            assert_batches_eq(&read.batches, &expected, &format!("fetch at {offset}"));
            offset = BatchHeader::parse(read.batches.last().unwrap())
                .unwrap()
                .last_offset()
                + 1;
        }
        assert_log_matches(&log, &model, "rolled").await;
        assert_batches_eq(
            &consume(&log, 0, 1000).await,
            &model.batches_from(0),
            "small fetches",
        );

        // max_bytes: only whole batches, the first may exceed it when asked.
        let segment = expected_segments
            .iter()
            .find(|s| s.len() >= 3)
            .expect("a segment of 3 batches");
        let (first, second) = (&segment[0], &segment[1]);
        let (first_bytes, two_bytes) = (first.bytes.len(), first.bytes.len() + second.bytes.len());
        let cases: [(usize, bool, Vec<Bytes>); 8] = [
            (two_bytes, false, vec![first.bytes.clone(), second.bytes.clone()]),
            (two_bytes - 1, false, vec![first.bytes.clone()]),
            (two_bytes - 1, true, vec![first.bytes.clone()]),
            (first_bytes, false, vec![first.bytes.clone()]),
            (first_bytes - 1, false, vec![]),
            (first_bytes - 1, true, vec![first.bytes.clone()]),
            (0, false, vec![]),
            (0, true, vec![first.bytes.clone()]),
        ];
        for (max_bytes, first_batch_may_exceed, expected) in cases {
            let read = log
                .read(first.base_offset, max_bytes, first_batch_may_exceed)
                .await
                .expect("read");
            let context = format!("max_bytes {max_bytes}, first_batch_may_exceed {first_batch_may_exceed}");
            assert_batches_eq(&read.batches, &expected, &context);
            assert_eq!(
                read.bytes,
                expected.iter().map(Bytes::len).sum::<usize>(),
                "{context}"
            );
            assert_eq!(read.high_watermark, model.next_offset());
        }
        let big = model.batch_holding(big_batch_base).bytes.clone();
        let read = log.read(big_batch_base + 2, 100, true).await.expect("read");
        assert_batches_eq(&read.batches, &[big], "an oversized batch is returned whole");
        let read = log.read(big_batch_base + 2, 100, false).await.expect("read");
        assert!(read.batches.is_empty() && read.bytes == 0);

        // After close every segment has its files and no padding.
        log.close().await.expect("close");
        for segment in &expected_segments {
            let base = segment[0].base_offset;
            assert!(std::fs::read(log_path(&dir, base)).unwrap() == concatenated(segment));
            assert!(index_path(&dir, base).exists() && time_index_path(&dir, base).exists());
        }
    });
}

#[test]
fn segment_ms_rolls_a_segment_once_it_is_old_enough() {
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let config = TopicConfig {
            segment_ms: 100,
            ..config(SEGMENT_BYTES_LARGE)
        };
        let log = open(&dir, config).await;
        let mut model = Model::default();
        fill(&log, &mut model, 0, 3, 100).await;
        assert_eq!(segment_bases(&dir), vec![0]);
        glommio::timer::sleep(Duration::from_millis(150)).await;
        let second_base = model.next_offset();
        fill(&log, &mut model, 3, 2, 100).await;
        assert_eq!(segment_bases(&dir), vec![0, second_base]);
        assert_log_matches(&log, &model, "rolled by age").await;
    });
}

#[test]
fn concurrent_appends_get_distinct_contiguous_offsets_and_all_read_back() {
    const PRODUCERS: u64 = 40;
    const BATCHES_PER_PRODUCER: u64 = 6;
    let (_guard, dir) = temp_dir();
    run(move || async move {
        // Small writes and segments: group writes are split, and segments
        // roll while producers wait.
        let log = Rc::new(open_with_write_bytes(&dir, config(64 * 1024), 4096).await);
        let producers_done = Rc::new(Cell::new(false));

        let reader = glommio::spawn_local({
            let (log, done) = (log.clone(), producers_done.clone());
            async move {
                let mut reads = 0u64;
                let mut seed = 7u64;
                while !done.get() {
                    let high_watermark = log.high_watermark();
                    if high_watermark == 0 {
                        glommio::timer::sleep(Duration::from_micros(200)).await;
                        continue;
                    }
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let offset = ((seed >> 33) % high_watermark as u64) as i64;
                    let read = log.read(offset, 16 * 1024, true).await.expect("concurrent read");
                    assert!(!read.batches.is_empty());
                    let first = assert_whole_batch(&read.batches[0]);
                    assert!(first.base_offset <= offset && offset <= first.last_offset());
                    for batch in &read.batches {
                        assert!(assert_whole_batch(batch).last_offset() < read.high_watermark);
                    }
                    reads += 1;
                }
                reads
            }
        });

        let mut producers = Vec::new();
        for producer in 0..PRODUCERS {
            let log = log.clone();
            producers.push(glommio::spawn_local(async move {
                let mut acknowledged = Vec::new();
                for n in 0..BATCHES_PER_PRODUCER {
                    let tag = producer * 100 + n;
                    let records = 1 + ((producer + n) % 5) as usize;
                    // One producer sends a batch larger than a group write.
                    let value_bytes = if producer == 7 && n == 3 {
                        3000
                    } else {
                        20 + (tag * 13 % 700) as usize
                    };
                    let timestamps = timestamps_from(TIMESTAMP_BASE_MS + tag as i64, records);
                    let batch = encode_batch(tag, &timestamps, value_bytes);
                    let durability = if producer % 4 == 0 {
                        Durability::Synced
                    } else {
                        Durability::Written
                    };
                    let outcome = append(&log, &batch, durability).await.expect("concurrent append");
                    let end = outcome.base_offset + records as i64;
                    assert!(log.high_watermark() >= end, "acknowledged batches are readable");
                    acknowledged.push((outcome.base_offset, timestamps, batch));
                }
                acknowledged
            }));
        }
        let mut acknowledged = Vec::new();
        for producer in producers {
            let batches = producer.await;
            // One producer's batches keep their order.
            assert!(batches.windows(2).all(|pair| pair[0].0 < pair[1].0));
            acknowledged.extend(batches);
        }
        producers_done.set(true);
        assert!(reader.await > 0, "the reader ran while producers appended");

        acknowledged.sort_by_key(|(base_offset, _, _)| *base_offset);
        assert_eq!(acknowledged.len() as u64, PRODUCERS * BATCHES_PER_PRODUCER);
        let mut model = Model::default();
        for (base_offset, timestamps, batch) in &acknowledged {
            assert_eq!(
                *base_offset,
                model.next_offset(),
                "offsets are distinct and contiguous"
            );
            model.push(batch, *base_offset, timestamps);
        }
        assert!(
            segment_bases(&dir).len() > 1,
            "segments rolled under concurrent appends"
        );
        assert_log_matches(&log, &model, "after concurrent appends").await;
        log.close().await.expect("close");
        let reopened = open(&dir, config(64 * 1024)).await;
        assert_log_matches(&reopened, &model, "reopened").await;
    });
}

// ---------------------------------------------------------------------------
// 2. Reopening and indexes
// ---------------------------------------------------------------------------

#[test]
fn reopen_after_close_keeps_data_and_continues_offsets() {
    const SEGMENT_BYTES: u64 = 16 * 1024;
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, config(SEGMENT_BYTES)).await;
        let mut model = Model::default();
        fill(&log, &mut model, 0, 100, 1500).await;
        log.close().await.expect("close");
        drop(log);
        let bases = segment_bases(&dir);
        assert!(bases.len() >= 4);
        assert!(
            bases.iter().any(|&base| file_bytes(&index_path(&dir, base)) > 0),
            "the sparse offset index has entries"
        );

        let log = open(&dir, config(SEGMENT_BYTES)).await;
        assert_eq!(log.log_start_offset(), 0);
        assert_log_matches(&log, &model, "reopened").await;
        assert_timestamp_lookups_match(&log, &model, "reopened").await;
        fill(&log, &mut model, 100, 30, 1500).await;
        assert_log_matches(&log, &model, "appended after reopen").await;
        log.close().await.expect("close");
        drop(log);

        let log = open(&dir, config(SEGMENT_BYTES)).await;
        assert_log_matches(&log, &model, "reopened twice").await;
        assert_timestamp_lookups_match(&log, &model, "reopened twice").await;
        log.close().await.expect("close");
        drop(log);

        // Proof that a sealed segment's consistent indexes are used instead
        // of a rescan (recovery.rs): damage a record of segment 0 and keep
        // its indexes; recovery does not look at the batch...
        let first_segment = log_path(&dir, 0);
        let (position, _) = file_batches(&first_segment)[2];
        flip_byte(&first_segment, position + 70);
        let log = open(&dir, config(SEGMENT_BYTES)).await;
        let batch = encode_batch(1000, &timestamps_from(TIMESTAMP_BASE_MS, 1), 10);
        assert!(
            append(&log, &batch, Durability::Written).await.is_ok(),
            "segment 0 was not rescanned"
        );
        drop(log);
        // ...while without its offset index it is rescanned and the damage found.
        std::fs::remove_file(index_path(&dir, 0)).unwrap();
        let log = open(&dir, config(SEGMENT_BYTES)).await;
        assert!(matches!(
            append(&log, &batch, Durability::Written).await,
            Err(LogError::Offline { .. })
        ));
    });
}

#[test]
fn missing_or_garbage_index_files_are_rebuilt_with_identical_reads() {
    const SEGMENT_BYTES: u64 = 16 * 1024;
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, config(SEGMENT_BYTES)).await;
        let mut model = Model::default();
        fill(&log, &mut model, 0, 90, 1500).await;
        log.close().await.expect("close");
        drop(log);
        let bases = segment_bases(&dir);
        assert!(bases.len() >= 4);

        type Damage = fn(&Path, &Path);
        let damages: [(&str, Damage); 5] = [
            ("deleted", |index, time_index| {
                std::fs::remove_file(index).unwrap();
                std::fs::remove_file(time_index).unwrap();
            }),
            ("empty", |index, time_index| {
                std::fs::write(index, []).unwrap();
                std::fs::write(time_index, []).unwrap();
            }),
            ("odd length noise", |index, time_index| {
                std::fs::write(index, noise(1, 13)).unwrap();
                std::fs::write(time_index, noise(2, 7)).unwrap();
            }),
            ("entry-sized noise", |index, time_index| {
                std::fs::write(index, noise(3, 96)).unwrap();
                std::fs::write(time_index, noise(4, 96)).unwrap();
            }),
            ("entries going backwards", |index, time_index| {
                let mut bytes = Vec::new();
                for (relative_offset, position) in [(5u32, 400u32), (3, 200)] {
                    bytes.extend_from_slice(&relative_offset.to_be_bytes());
                    bytes.extend_from_slice(&position.to_be_bytes());
                }
                std::fs::write(index, bytes).unwrap();
                let mut bytes = Vec::new();
                for (timestamp_ms, relative_offset) in
                    [(TIMESTAMP_BASE_MS + 50, 5u32), (TIMESTAMP_BASE_MS, 3)]
                {
                    bytes.extend_from_slice(&timestamp_ms.to_be_bytes());
                    bytes.extend_from_slice(&relative_offset.to_be_bytes());
                }
                std::fs::write(time_index, bytes).unwrap();
            }),
        ];
        for (name, damage) in damages {
            for &base in &bases {
                damage(&index_path(&dir, base), &time_index_path(&dir, base));
            }
            let log = open(&dir, config(SEGMENT_BYTES)).await;
            assert_log_matches(&log, &model, name).await;
            assert_timestamp_lookups_match(&log, &model, name).await;
            let next = model.batches.len() as u64;
            fill(&log, &mut model, 1000 + next, 2, 300).await;
            log.close().await.expect("close");
            drop(log);
            let log = open(&dir, config(SEGMENT_BYTES)).await;
            assert_log_matches(&log, &model, &format!("{name}, reopened")).await;
            assert_timestamp_lookups_match(&log, &model, &format!("{name}, reopened")).await;
            log.close().await.expect("close");
        }
    });
}

#[test]
fn stale_index_entry_inside_a_batch_of_the_active_segment_loses_no_data() {
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, config(SEGMENT_BYTES_LARGE)).await;
        let mut model = Model::default();
        fill(&log, &mut model, 0, 40, 600).await;
        log.close().await.expect("close");
        drop(log);
        // Decodes as an index (one entry, inside the file) but points into
        // the middle of the first batch.
        let mut bytes = 1u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&7u32.to_be_bytes());
        std::fs::write(index_path(&dir, 0), bytes).unwrap();
        let log = open(&dir, config(SEGMENT_BYTES_LARGE)).await;
        assert_log_matches(&log, &model, "stale active index").await;
        assert_timestamp_lookups_match(&log, &model, "stale active index").await;
        fill(&log, &mut model, 40, 2, 600).await;
        assert_log_matches(&log, &model, "appended").await;
    });
}

// ---------------------------------------------------------------------------
// 3. Recovery of the active segment
// ---------------------------------------------------------------------------

/// What a crash may leave after the last acknowledged batch.
enum Tail {
    /// The first bytes of the next batch.
    Partial(usize),
    /// Zeroed blocks (O_DIRECT padding, preallocated space).
    Zeros(usize),
    /// A whole next batch whose CRC does not match.
    BadCrc,
    /// A whole, valid, unacknowledged batch followed by a partial one: the
    /// complete batch is kept.
    CompleteThenPartial,
}

fn torn_tail_recovers_to_the_last_good_batch(tail: Tail) {
    const SEGMENT_BYTES: u64 = 16 * 1024;
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, config(SEGMENT_BYTES)).await;
        let mut model = Model::default();
        fill(&log, &mut model, 0, 30, 900).await;
        log.close().await.expect("close");
        drop(log);
        let active = log_path(&dir, *segment_bases(&dir).last().unwrap());
        let mut valid_bytes = file_bytes(&active);

        let next_timestamps = timestamps_from(TIMESTAMP_BASE_MS + 999_000, 4);
        let next = with_base_offset(&encode_batch(999, &next_timestamps, 200), model.next_offset());
        let garbage = match tail {
            Tail::Partial(length) => next[..length].to_vec(),
            Tail::Zeros(length) => vec![0; length],
            Tail::BadCrc => {
                let mut bytes = next.to_vec();
                let last = bytes.len() - 3;
                bytes[last] ^= 0x01;
                bytes
            }
            Tail::CompleteThenPartial => {
                let base_offset = model.next_offset();
                model.push(&next, base_offset, &next_timestamps);
                valid_bytes += next.len() as u64;
                let after = with_base_offset(&encode_batch(998, &[1, 2], 100), model.next_offset());
                [&next[..], &after[..80]].concat()
            }
        };
        append_to_file(&active, &garbage);

        let log = open(&dir, config(SEGMENT_BYTES)).await;
        assert_eq!(
            log.high_watermark(),
            model.next_offset(),
            "the high watermark is the last good offset"
        );
        assert_eq!(
            file_bytes(&active),
            valid_bytes,
            "the tail is truncated at the valid end"
        );
        assert_log_matches(&log, &model, "recovered").await;
        assert_timestamp_lookups_match(&log, &model, "recovered").await;
        fill(&log, &mut model, 100, 3, 900).await;
        assert_log_matches(&log, &model, "appended after recovery").await;
        log.close().await.expect("close");
        drop(log);
        let log = open(&dir, config(SEGMENT_BYTES)).await;
        assert_log_matches(&log, &model, "reopened after recovery").await;
    });
}

#[test]
fn torn_tail_partial_batch_is_truncated_on_reopen() {
    torn_tail_recovers_to_the_last_good_batch(Tail::Partial(100));
}

#[test]
fn torn_tail_shorter_than_a_batch_header_is_truncated_on_reopen() {
    torn_tail_recovers_to_the_last_good_batch(Tail::Partial(40));
}

#[test]
fn torn_tail_block_of_zeros_is_truncated_on_reopen() {
    torn_tail_recovers_to_the_last_good_batch(Tail::Zeros(4096));
}

#[test]
fn torn_tail_few_zero_bytes_are_truncated_on_reopen() {
    torn_tail_recovers_to_the_last_good_batch(Tail::Zeros(5));
}

#[test]
fn torn_tail_batch_with_a_bad_crc_is_truncated_on_reopen() {
    torn_tail_recovers_to_the_last_good_batch(Tail::BadCrc);
}

#[test]
fn torn_tail_keeps_a_complete_batch_before_the_torn_one() {
    torn_tail_recovers_to_the_last_good_batch(Tail::CompleteThenPartial);
}

#[test]
fn unclean_shutdown_keeps_every_written_batch_and_drops_the_padding() {
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, config(16 * 1024)).await;
        let mut model = Model::default();
        fill(&log, &mut model, 0, 30, 900).await;
        // No close: the active segment keeps its O_DIRECT padding and has
        // no index files, as after a crash.
        drop(log);
        let active_base = *segment_bases(&dir).last().unwrap();
        let active = log_path(&dir, active_base);
        let active_batches: Vec<StoredBatch> = model
            .batches
            .iter()
            .filter(|b| b.base_offset >= active_base)
            .cloned()
            .collect();
        let data_bytes = active_batches.iter().map(|b| b.bytes.len() as u64).sum::<u64>();
        let on_disk_bytes = file_bytes(&active);
        assert!(
            on_disk_bytes >= data_bytes && on_disk_bytes - data_bytes < 4096,
            "padding of the last block"
        );
        assert_eq!(on_disk_bytes % 512, 0, "O_DIRECT writes whole blocks");

        let log = open(&dir, config(16 * 1024)).await;
        assert_eq!(file_bytes(&active), data_bytes);
        assert_log_matches(&log, &model, "after a crash").await;
        assert_timestamp_lookups_match(&log, &model, "after a crash").await;
        fill(&log, &mut model, 100, 5, 900).await;
        assert_log_matches(&log, &model, "appended after a crash").await;
    });
}

#[test]
fn crash_after_a_clean_restart_resumes_from_the_older_index_files() {
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, config(SEGMENT_BYTES_LARGE)).await;
        let mut model = Model::default();
        fill(&log, &mut model, 0, 40, 600).await;
        log.close().await.expect("close");
        drop(log);
        assert!(
            file_bytes(&index_path(&dir, 0)) >= 16,
            "the active segment's index has entries"
        );
        let log = open(&dir, config(SEGMENT_BYTES_LARGE)).await;
        fill(&log, &mut model, 40, 10, 600).await;
        // Crash: the index files describe only the first 40 batches and the
        // last block is padded.
        drop(log);
        let log = open(&dir, config(SEGMENT_BYTES_LARGE)).await;
        assert_eq!(
            file_bytes(&log_path(&dir, 0)),
            concatenated(&model.batches).len() as u64
        );
        assert_log_matches(&log, &model, "after a crash").await;
        assert_timestamp_lookups_match(&log, &model, "after a crash").await;
        fill(&log, &mut model, 50, 3, 600).await;
        assert_log_matches(&log, &model, "appended after a crash").await;
    });
}

/// Damages the batch of the active segment at `pick(batches in the file)`
/// with `damage(file, batch position, batch header)` after a clean close,
/// and checks recovery truncates right before it, with offsets, reads and
/// timestamp lookups consistent with what is kept.
fn damaged_active_batch_is_truncated(
    pick: fn(&Path, &[(usize, BatchHeader)]) -> usize,
    damage: fn(&Path, usize, &BatchHeader),
) {
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, config(SEGMENT_BYTES_LARGE)).await;
        let mut model = Model::default();
        fill(&log, &mut model, 0, 40, 600).await;
        log.close().await.expect("close");
        drop(log);
        let active = log_path(&dir, 0);
        let batches = file_batches(&active);
        let victim = pick(&dir, &batches);
        let (position, header) = batches[victim];
        damage(&active, position, &header);

        let log = open(&dir, config(SEGMENT_BYTES_LARGE)).await;
        model.truncate_to(header.base_offset);
        assert_eq!(
            log.high_watermark(),
            header.base_offset,
            "the high watermark stops before the damage"
        );
        assert_eq!(
            file_bytes(&active),
            position as u64,
            "the file is truncated before the damaged batch"
        );
        assert_log_matches(&log, &model, "truncated").await;
        assert_timestamp_lookups_match(&log, &model, "truncated").await;
        fill(&log, &mut model, 100, 3, 600).await;
        assert_log_matches(&log, &model, "appended after truncation").await;
        assert_timestamp_lookups_match(&log, &model, "appended after truncation").await;
        log.close().await.expect("close");
        drop(log);
        let log = open(&dir, config(SEGMENT_BYTES_LARGE)).await;
        assert_log_matches(&log, &model, "reopened after truncation").await;
        assert_timestamp_lookups_match(&log, &model, "reopened after truncation").await;
    });
}

/// The batch the last `.index` entry points at.
fn last_indexed_batch(dir: &Path, batches: &[(usize, BatchHeader)]) -> usize {
    let index = std::fs::read(index_path(dir, 0)).expect("the active segment's index after close");
    assert!(index.len() >= 16, "the index has entries");
    let position = u32::from_be_bytes(index[index.len() - 4..].try_into().unwrap()) as usize;
    batches
        .iter()
        .position(|(p, _)| *p == position)
        .expect("the index points at a batch")
}

#[test]
fn corrupt_batch_at_the_last_index_entry_of_the_active_segment_is_truncated() {
    damaged_active_batch_is_truncated(last_indexed_batch, |file, position, _| {
        flip_byte(file, position + 70)
    });
}

#[test]
fn corrupt_last_batch_of_the_active_segment_is_truncated() {
    damaged_active_batch_is_truncated(
        |_, batches| batches.len() - 1,
        |file, position, _| flip_byte(file, position + 70),
    );
}

// baseOffset is outside the CRC: recovery checks offsets are dense.

#[test]
fn base_offset_far_ahead_in_the_active_segment_is_truncated() {
    // The high byte: beyond what a segment can index.
    damaged_active_batch_is_truncated(
        |_, batches| batches.len() - 3,
        |file, position, _| flip_byte(file, position),
    );
}

#[test]
fn base_offset_leaving_a_gap_in_the_active_segment_is_truncated() {
    damaged_active_batch_is_truncated(
        |_, batches| batches.len() - 3,
        |file, position, header| write_base_offset(file, position, header.base_offset + 5),
    );
}

#[test]
fn base_offset_going_backwards_in_the_active_segment_is_truncated() {
    damaged_active_batch_is_truncated(
        |_, batches| batches.len() - 3,
        |file, position, header| write_base_offset(file, position, header.base_offset - 1),
    );
}

// ---------------------------------------------------------------------------
// 4. Corruption in a sealed segment
// ---------------------------------------------------------------------------

/// Damages the batch in the middle of the first of several sealed segments
/// with `damage(file, batch position, batch header)`, deletes that
/// segment's offset index so recovery must rescan it, and checks the
/// partition serves everything before the damage, nothing from it on, and
/// refuses appends, again after a close and a second reopen.
fn corrupt_sealed_segment_takes_the_partition_offline(damage: fn(&Path, usize, &BatchHeader)) {
    const SEGMENT_BYTES: u64 = 8 * 1024;
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, config(SEGMENT_BYTES)).await;
        let mut model = Model::default();
        fill(&log, &mut model, 0, 60, 500).await;
        log.close().await.expect("close");
        drop(log);
        let bases = segment_bases(&dir);
        assert!(bases.len() >= 4, "several segments");
        let first_segment = log_path(&dir, 0);
        let batches = file_batches(&first_segment);
        let middle = file_bytes(&first_segment) as usize / 2;
        let victim = batches
            .iter()
            .rposition(|(position, _)| *position <= middle)
            .unwrap();
        assert!(victim > 0 && victim + 1 < batches.len(), "a batch in the middle");
        let (position, header) = batches[victim];
        damage(&first_segment, position, &header);
        std::fs::remove_file(index_path(&dir, 0)).unwrap();
        let damaged_file = std::fs::read(&first_segment).unwrap();
        let mut readable = model.clone();
        readable.truncate_to(header.base_offset);

        for attempt in ["reopened", "reopened after close"] {
            let log = open(&dir, config(SEGMENT_BYTES)).await;
            let batch = encode_batch(5000, &timestamps_from(TIMESTAMP_BASE_MS, 2), 50);
            let refused = append(&log, &batch, Durability::Written).await;
            assert!(
                matches!(refused, Err(LogError::Offline { .. })),
                "{attempt}: {refused:?}"
            );
            assert_eq!(
                log.high_watermark(),
                header.base_offset,
                "{attempt}: serving stops at the damage"
            );
            assert_log_matches(&log, &readable, attempt).await;
            let read = log
                .read(header.base_offset, READ_BYTES_MAX, true)
                .await
                .expect("read");
            assert!(
                read.batches.is_empty(),
                "{attempt}: nothing is served at or past the damage"
            );
            let past = log.read(header.base_offset + 1, READ_BYTES_MAX, true).await;
            assert!(
                matches!(past, Err(LogError::OffsetOutOfRange { .. })),
                "{attempt}: {past:?}"
            );
            // Closing the offline partition must leave the damaged files
            // alone for an operator, and not hide the damage.
            let _ = log.close().await;
            drop(log);
            assert!(
                std::fs::read(&first_segment).unwrap() == damaged_file,
                "{attempt}: file untouched"
            );
            assert_eq!(segment_bases(&dir), bases, "{attempt}: segments untouched");
        }
    });
}

#[test]
fn crc_damage_in_a_sealed_segment_takes_the_partition_offline_at_that_offset() {
    corrupt_sealed_segment_takes_the_partition_offline(|file, position, header| {
        flip_byte(file, position + header.total_bytes() - 10)
    });
}

#[test]
fn base_offset_damage_in_a_sealed_segment_takes_the_partition_offline_at_that_offset() {
    corrupt_sealed_segment_takes_the_partition_offline(|file, position, _| flip_byte(file, position));
}

#[test]
fn base_offset_gap_in_a_sealed_segment_takes_the_partition_offline_at_that_offset() {
    corrupt_sealed_segment_takes_the_partition_offline(|file, position, header| {
        write_base_offset(file, position, header.base_offset + 1)
    });
}

// ---------------------------------------------------------------------------
// 5. ListOffsets helpers
// ---------------------------------------------------------------------------

#[test]
fn timestamp_lookups_find_exact_records_across_segments_and_reopens() {
    const SEGMENT_BYTES: u64 = 8 * 1024;
    const MAX_TIMESTAMP_MS: i64 = TIMESTAMP_BASE_MS + 9_000_000;
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, config(SEGMENT_BYTES)).await;
        let mut model = Model::default();
        assert_eq!(
            log.offset_for_timestamp(0).await,
            Ok(None),
            "an empty log has no timestamps"
        );
        assert_eq!(log.offset_of_max_timestamp(), None);
        for tag in 0..60u64 {
            let records = 2 + (tag % 6) as usize;
            let mut base_ms = TIMESTAMP_BASE_MS + 1000 * tag as i64;
            if tag % 7 == 3 {
                base_ms -= 2500; // older than the batches before it
            }
            // Out of order inside the batch too.
            let mut timestamps: Vec<i64> = (0..records)
                .map(|i| base_ms + ((i * 5) % records) as i64 * 10)
                .collect();
            if tag == 12 || tag == 47 {
                // The largest timestamp, twice, in different segments and
                // not on the last record of its batch.
                timestamps[0] = MAX_TIMESTAMP_MS;
            }
            append_checked(&log, &mut model, tag, &timestamps, 300).await;
        }
        assert!(segment_bases(&dir).len() >= 3);
        assert_eq!(model.offset_of_max_timestamp().unwrap().1, MAX_TIMESTAMP_MS);
        let first_max_batch = model
            .batches
            .iter()
            .find(|b| b.timestamps_ms[0] == MAX_TIMESTAMP_MS)
            .unwrap();
        assert_eq!(
            model.offset_of_max_timestamp(),
            Some((first_max_batch.last_offset, MAX_TIMESTAMP_MS))
        );
        let first = &model.batches[0];
        assert_eq!(
            log.offset_for_timestamp(i64::MIN).await,
            Ok(Some((0, first.timestamps_ms[0]))),
            "before every timestamp: the first record"
        );
        assert_eq!(
            log.offset_for_timestamp(MAX_TIMESTAMP_MS + 1).await,
            Ok(None),
            "after every timestamp"
        );
        assert_timestamp_lookups_match(&log, &model, "open").await;

        log.close().await.expect("close");
        drop(log);
        let log = open(&dir, config(SEGMENT_BYTES)).await;
        assert_timestamp_lookups_match(&log, &model, "reopened with time indexes").await;
        log.close().await.expect("close");
        drop(log);
        for base in segment_bases(&dir) {
            std::fs::remove_file(time_index_path(&dir, base)).unwrap();
        }
        let log = open(&dir, config(SEGMENT_BYTES)).await;
        assert_timestamp_lookups_match(&log, &model, "reopened with rebuilt time indexes").await;
        assert_log_matches(&log, &model, "reopened with rebuilt time indexes").await;
    });
}

#[test]
fn log_append_time_topics_stamp_batches_with_the_broker_time() {
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let config = TopicConfig {
            timestamp_type: TimestampType::LogAppendTime,
            ..config(SEGMENT_BYTES_LARGE)
        };
        let log = open(&dir, config).await;
        let mut sent = Vec::new();
        for tag in 0..5u64 {
            let records = 1 + tag as usize;
            // Producer timestamps far in the past.
            let batch = encode_batch(tag, &timestamps_from(1_000, records), 100);
            let before_ms = now_ms();
            let outcome = append(&log, &batch, Durability::Written).await.expect("append");
            let after_ms = now_ms();
            assert!(
                (before_ms..=after_ms).contains(&outcome.log_append_time_ms),
                "append time {} is the broker's clock",
                outcome.log_append_time_ms
            );
            assert!((outcome.log_append_time_ms - now_ms()).abs() < 5_000);
            sent.push((outcome, records, batch));
            glommio::timer::sleep(Duration::from_millis(2)).await;
        }
        let check = |batches: Vec<Bytes>| {
            assert_eq!(batches.len(), sent.len());
            for (stored, (outcome, _, original)) in batches.iter().zip(&sent) {
                let header = assert_whole_batch(stored);
                assert!(header.is_log_append_time(), "attribute bit 3 is set");
                assert_eq!(
                    header.attributes & !0x08,
                    BatchHeader::parse(original).unwrap().attributes
                );
                assert_eq!(header.max_timestamp, outcome.log_append_time_ms);
                assert_eq!(header.base_timestamp, 1_000, "baseTimestamp is left as sent");
                assert_eq!(header.base_offset, outcome.base_offset);
                // Everything else is the producer's bytes.
                assert_eq!(stored[8..17], original[8..17]);
                assert_eq!(stored[23..35], original[23..35]);
                assert_eq!(stored[43..], original[43..]);
            }
        };
        check(consume(&log, 0, READ_BYTES_MAX).await);
        let (first, _, _) = sent[0];
        assert_eq!(
            log.offset_for_timestamp(first.log_append_time_ms).await,
            Ok(Some((0, first.log_append_time_ms))),
            "every record of a LogAppendTime batch carries its maxTimestamp"
        );
        assert_eq!(
            log.offset_for_timestamp(1_000).await,
            Ok(Some((0, first.log_append_time_ms)))
        );
        let (last, records, _) = sent[sent.len() - 1];
        assert!(sent
            .iter()
            .all(|(o, _, _)| o.log_append_time_ms < last.log_append_time_ms || o == &last));
        assert_eq!(
            log.offset_of_max_timestamp(),
            Some((last.base_offset + records as i64 - 1, last.log_append_time_ms))
        );
        log.close().await.expect("close");
        drop(log);
        let log = open(&dir, config).await;
        check(consume(&log, 0, READ_BYTES_MAX).await);
    });
}

// ---------------------------------------------------------------------------
// 6. Durability and read errors
// ---------------------------------------------------------------------------

#[test]
fn synced_appends_complete_and_syncing_synced_offsets_returns_at_once() {
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = Rc::new(open(&dir, config(SEGMENT_BYTES_LARGE)).await);
        assert_eq!(
            poll_once(log.sync_through(0)).await,
            Some(Ok(())),
            "nothing to sync in an empty log"
        );

        let mut model = Model::default();
        let batch = encode_batch(1, &timestamps_from(TIMESTAMP_BASE_MS, 3), 100);
        let outcome = append(&log, &batch, Durability::Synced)
            .await
            .expect("synced append");
        model.push(
            &batch,
            outcome.base_offset,
            &timestamps_from(TIMESTAMP_BASE_MS, 3),
        );
        assert_eq!(log.high_watermark(), 3);
        assert_eq!(
            poll_once(log.sync_through(3)).await,
            Some(Ok(())),
            "already synced: no I/O"
        );
        assert_eq!(poll_once(log.sync_through(1)).await, Some(Ok(())));

        // Written, then synced on request.
        append_checked(&log, &mut model, 2, &timestamps_from(TIMESTAMP_BASE_MS, 2), 100).await;
        log.sync_through(5).await.expect("sync");
        assert_eq!(poll_once(log.sync_through(5)).await, Some(Ok(())));

        // acks=0 still writes in order.
        let batch = encode_batch(3, &timestamps_from(TIMESTAMP_BASE_MS, 1), 10);
        let outcome = append(&log, &batch, Durability::None).await.expect("append");
        assert_eq!(outcome.base_offset, 5);
        model.push(&batch, 5, &timestamps_from(TIMESTAMP_BASE_MS, 1));

        // Many synced appends at once share syncs and all complete.
        let tasks: Vec<_> = (0..20u64)
            .map(|tag| {
                let log = log.clone();
                glommio::spawn_local(async move {
                    let timestamps = timestamps_from(TIMESTAMP_BASE_MS + tag as i64, 2);
                    let batch = encode_batch(100 + tag, &timestamps, 50);
                    let outcome = append(&log, &batch, Durability::Synced)
                        .await
                        .expect("synced append");
                    (outcome.base_offset, timestamps, batch)
                })
            })
            .collect();
        let mut acknowledged = Vec::new();
        for task in tasks {
            acknowledged.push(task.await);
        }
        acknowledged.sort_by_key(|(base_offset, _, _)| *base_offset);
        for (base_offset, timestamps, batch) in &acknowledged {
            assert_eq!(*base_offset, model.next_offset());
            model.push(batch, *base_offset, timestamps);
        }
        let high_watermark = log.high_watermark();
        assert_eq!(high_watermark, model.next_offset());
        assert_eq!(poll_once(log.sync_through(high_watermark)).await, Some(Ok(())));
        assert_log_matches(&log, &model, "synced").await;
        log.close().await.expect("close");

        let log = open(&dir, config(SEGMENT_BYTES_LARGE)).await;
        assert_eq!(
            poll_once(log.sync_through(high_watermark)).await,
            Some(Ok(())),
            "a recovered log is synced"
        );
        assert_log_matches(&log, &model, "reopened").await;
    });
}

#[test]
fn reads_outside_the_log_are_out_of_range_and_a_read_at_the_high_watermark_is_empty() {
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, config(4096)).await;
        let out_of_range = |high_watermark| {
            Err(LogError::OffsetOutOfRange {
                log_start_offset: 0,
                high_watermark,
            })
        };
        let empty = log
            .read(0, READ_BYTES_MAX, true)
            .await
            .expect("fetch at the end of an empty log");
        assert!(empty.batches.is_empty() && empty.bytes == 0 && empty.high_watermark == 0);
        assert_eq!(
            log.read(1, READ_BYTES_MAX, true).await.map(|r| r.batches),
            out_of_range(0)
        );
        assert_eq!(
            log.read(-1, READ_BYTES_MAX, true).await.map(|r| r.batches),
            out_of_range(0)
        );

        let mut model = Model::default();
        fill(&log, &mut model, 0, 40, 400).await;
        let high_watermark = model.next_offset();
        let at_end = log
            .read(high_watermark, READ_BYTES_MAX, true)
            .await
            .expect("fetch at the high watermark");
        assert!(at_end.batches.is_empty() && at_end.bytes == 0);
        assert_eq!(at_end.high_watermark, high_watermark);
        assert_eq!(at_end.log_start_offset, 0);
        for offset in [high_watermark + 1, high_watermark + 1000, i64::MAX, -1, i64::MIN] {
            let read = log.read(offset, READ_BYTES_MAX, true).await.map(|r| r.batches);
            assert_eq!(read, out_of_range(high_watermark), "fetch at {offset}");
        }
        let nothing = log.read(0, 0, false).await.expect("a zero-byte fetch");
        assert!(nothing.batches.is_empty());
        log.close().await.expect("close");
        drop(log);

        // Older segments removed (as retention would): the log starts later.
        let bases = segment_bases(&dir);
        assert!(bases.len() >= 3);
        for base in &bases[..2] {
            std::fs::remove_file(log_path(&dir, *base)).unwrap();
            std::fs::remove_file(index_path(&dir, *base)).unwrap();
            std::fs::remove_file(time_index_path(&dir, *base)).unwrap();
        }
        let log_start_offset = bases[2];
        let log = open(&dir, config(4096)).await;
        assert_eq!(log.log_start_offset(), log_start_offset);
        assert_eq!(log.high_watermark(), high_watermark);
        for offset in [0, log_start_offset - 1] {
            let read = log.read(offset, READ_BYTES_MAX, true).await.map(|r| r.batches);
            assert_eq!(
                read,
                Err(LogError::OffsetOutOfRange {
                    log_start_offset,
                    high_watermark
                })
            );
        }
        let read = log
            .read(log_start_offset, READ_BYTES_MAX, true)
            .await
            .expect("read at the log start");
        assert_eq!(read.log_start_offset, log_start_offset);
        assert_eq!(
            consume(&log, log_start_offset, READ_BYTES_MAX).await,
            model.batches_from(log_start_offset)
        );
        let batch = encode_batch(77, &timestamps_from(TIMESTAMP_BASE_MS, 1), 10);
        let outcome = append(&log, &batch, Durability::Written).await.expect("append");
        assert_eq!(outcome.base_offset, high_watermark);
        assert_eq!(outcome.log_start_offset, log_start_offset);
    });
}

#[test]
fn an_empty_log_reopens_empty() {
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, config(4096)).await;
        log.close().await.expect("close");
        drop(log);
        assert_eq!(segment_bases(&dir), vec![0]);
        let log = open(&dir, config(4096)).await;
        assert_eq!(log.high_watermark(), 0);
        assert_eq!(log.offset_of_max_timestamp(), None);
        let mut model = Model::default();
        fill(&log, &mut model, 0, 3, 100).await;
        assert_log_matches(&log, &model, "appended to a reopened empty log").await;
    });
}

#[test]
fn sealed_segment_cut_short_at_a_batch_boundary_takes_the_partition_offline() {
    // Whole batches missing from the end of a sealed segment: the offsets
    // up to the next segment are gone and must not be skipped silently.
    corrupt_sealed_segment_takes_the_partition_offline(|file, position, _| {
        let bytes = std::fs::read(file).unwrap();
        std::fs::write(file, &bytes[..position]).unwrap();
    });
}

#[test]
fn tail_cache_serves_the_same_batches_as_the_disk_and_only_what_it_holds() {
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, config(4096)).await;
        // Budget for roughly the last third of the data.
        let cache = crate::log::tail_cache::TailCache::new(6 * 1024);
        log.attach_tail_cache(cache.clone());
        let mut model = Model::default();
        fill(&log, &mut model, 0, 60, 300).await;
        assert!(cache.used_bytes() > 0 && cache.used_bytes() <= cache.budget_bytes());
        // Every offset reads the same through the cache (tail) and the
        // disk (older offsets, and everything once detached).
        let mut cached_reads = Vec::new();
        for offset in 0..model.next_offset() {
            cached_reads.push(consume(&log, offset, READ_BYTES_MAX).await);
        }
        // The newest batch is in the cache; offset 0 is not (budget).
        let newest = model.batches.last().map(|b| b.base_offset).unwrap_or(0);
        assert!(
            log.read(newest, READ_BYTES_MAX, true)
                .await
                .unwrap()
                .from_tail_cache
        );
        assert!(!log.read(0, READ_BYTES_MAX, true).await.unwrap().from_tail_cache);
        log.detach_tail_cache();
        assert_eq!(cache.used_bytes(), 0);
        for offset in 0..model.next_offset() {
            let from_disk = consume(&log, offset, READ_BYTES_MAX).await;
            assert_batches_eq(
                &cached_reads[offset as usize],
                &from_disk,
                &format!("offset {offset}"),
            );
            assert_batches_eq(
                &from_disk,
                &model.batches_from(offset),
                &format!("model at {offset}"),
            );
        }
    });
}

#[test]
fn cold_reads_as_regions_cover_exactly_the_batches_the_dma_path_returns() {
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, config(8192)).await;
        let mut model = Model::default();
        fill(&log, &mut model, 0, 50, 900).await;
        // Regions are planned only over cached pages: bring them in.
        warm_page_cache(&dir);
        for offset in 0..model.next_offset() {
            for (max_bytes, first_may_exceed) in [
                (1, true),
                (1, false),
                (700, true),
                (5000, false),
                (READ_BYTES_MAX, true),
            ] {
                log.set_cold_reads_as_regions(false);
                let copied = log
                    .read(offset, max_bytes, first_may_exceed)
                    .await
                    .expect("dma read");
                log.set_cold_reads_as_regions(true);
                let planned = log
                    .read(offset, max_bytes, first_may_exceed)
                    .await
                    .expect("region read");
                assert!(planned.batches.is_empty());
                let region_bytes = match &planned.region {
                    Some(region) => {
                        use std::os::unix::fs::FileExt;
                        let mut bytes = vec![0u8; region.bytes];
                        region
                            .file
                            .read_exact_at(&mut bytes, region.position)
                            .expect("read region");
                        bytes
                    }
                    None => Vec::new(),
                };
                assert_eq!(planned.bytes, region_bytes.len());
                assert_eq!(copied.bytes, planned.bytes, "offset {offset} max {max_bytes}");
                assert_eq!(
                    copied.batches.concat(),
                    region_bytes,
                    "offset {offset} max {max_bytes}"
                );
            }
        }
    });
}

#[test]
fn cold_reads_of_uncached_ranges_are_direct_reads_that_prefetch() {
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, config(1 << 20)).await;
        let mut model = Model::default();
        fill(&log, &mut model, 0, 200, 900).await;
        log.set_cold_reads_as_regions(true);
        // The tail cache is not attached here, so every read is cold; the
        // O_DIRECT writes left no page cached.
        let first = log.read(0, 64 * 1024, true).await.expect("read");
        assert!(
            first.region.is_none(),
            "an uncached range must not be planned as a region"
        );
        assert_batches_eq(
            &first.batches,
            &model.batches_from(0)[..first.batches.len()],
            "first read",
        );
        // The read prefetched the range: a later read of it is a region.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let again = log.read(0, 64 * 1024, true).await.expect("read");
            if let Some(region) = again.region {
                assert_eq!(region.bytes, first.bytes);
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "prefetched range never became resident"
            );
            glommio::timer::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
}

#[test]
fn resident_follows_the_page_cache() {
    use crate::log::region::{prefetch, resident};
    use std::io::Write;
    let mut file = tempfile::tempfile().expect("tempfile");
    file.write_all(&vec![7u8; 1 << 20]).expect("write");
    file.sync_all().expect("sync");
    let Some(cached) = resident(&file, 0, 1 << 20) else {
        eprintln!("cachestat(2) unavailable: nothing to check");
        return;
    };
    assert!(cached, "just-written pages are cached");
    assert_eq!(resident(&file, 5, 0), Some(true), "an empty range is resident");
    // SAFETY: posix_fadvise only reads its integer arguments.
    unsafe {
        libc::posix_fadvise(
            std::os::fd::AsRawFd::as_raw_fd(&file),
            0,
            0,
            libc::POSIX_FADV_DONTNEED,
        )
    };
    assert_eq!(
        resident(&file, 0, 1 << 20),
        Some(false),
        "dropped pages are not cached"
    );
    prefetch(&std::sync::Arc::new(file.try_clone().expect("dup")), 0, 1 << 20);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while resident(&file, 0, 1 << 20) != Some(true) {
        assert!(
            std::time::Instant::now() < deadline,
            "prefetch never brought the pages in"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------
// Idempotent producers
// ---------------------------------------------------------------------------

/// An idempotent producer's batch of `count` records from `first_sequence`.
fn encode_idempotent_batch(
    producer_id: i64,
    epoch: i16,
    first_sequence: i32,
    count: usize,
    tag: u64,
) -> Bytes {
    encode_producer_batch(producer_id, epoch, first_sequence, count, tag, false)
}

fn encode_producer_batch(
    producer_id: i64,
    epoch: i16,
    first_sequence: i32,
    count: usize,
    tag: u64,
    transactional: bool,
) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|index| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: epoch,
            timestamp_type: RecordTimestampType::Creation,
            offset: index as i64,
            sequence: first_sequence + index as i32,
            timestamp: now_ms(),
            key: Some(Bytes::from(format!("key-{tag}-{index}"))),
            value: Some(Bytes::from(vec![tag as u8; 1200])),
            headers: IndexMap::new(),
        })
        .collect();
    encode_records(&records)
}

/// Retries every remembered batch of producer 5 and checks each is answered
/// with its original offsets without appending; then checks a gap.
async fn assert_retries_are_duplicates(log: &PartitionLog, sent: &[(i32, Bytes, i64)], context: &str) {
    let high_watermark = log.high_watermark();
    for (sequence, batch, base_offset) in sent.iter().rev().take(5) {
        let outcome = append(log, batch, Durability::Written)
            .await
            .unwrap_or_else(|e| panic!("{context}: retry of sequence {sequence}: {e}"));
        assert!(outcome.duplicate, "{context}: sequence {sequence} is a duplicate");
        assert_eq!(outcome.base_offset, *base_offset, "{context}: original offset");
    }
    assert_eq!(
        log.high_watermark(),
        high_watermark,
        "{context}: retries append nothing"
    );
    let next_sequence = sent.last().map_or(0, |(sequence, _, _)| sequence + 3);
    let gap = encode_idempotent_batch(5, 0, next_sequence + 1, 3, 999);
    assert!(
        matches!(
            append(log, &gap, Durability::Written).await,
            Err(LogError::Producer(ProducerError::OutOfOrder { .. }))
        ),
        "{context}: a gap is refused"
    );
    assert_eq!(
        log.high_watermark(),
        high_watermark,
        "{context}: a gap appends nothing"
    );
}

/// Appends `batches` more batches of producer 5 (3 records each), between
/// batches of a non-idempotent producer.
async fn append_idempotent(log: &PartitionLog, sent: &mut Vec<(i32, Bytes, i64)>, batches: usize) {
    for _ in 0..batches {
        let sequence = sent.last().map_or(0, |(sequence, _, _)| sequence + 3);
        let batch = encode_idempotent_batch(5, 0, sequence, 3, sent.len() as u64);
        let outcome = append(log, &batch, Durability::Written)
            .await
            .expect("in-sequence append");
        assert!(!outcome.duplicate);
        sent.push((sequence, batch, outcome.base_offset));
        let plain = encode_batch(sent.len() as u64, &[now_ms()], 500);
        append(log, &plain, Durability::Written)
            .await
            .expect("plain append");
    }
}

#[test]
fn idempotent_retries_get_original_offsets_across_rolls_restarts_and_crashes() {
    const SEGMENT_BYTES: u64 = 16 * 1024;
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let mut sent = Vec::new();
        let log = open(&dir, config(SEGMENT_BYTES)).await;
        append_idempotent(&log, &mut sent, 30).await;
        assert!(segment_bases(&dir).len() > 3, "the segments rolled");
        assert_retries_are_duplicates(&log, &sent, "live").await;
        let stale = encode_idempotent_batch(5, -1, 0, 1, 1);
        assert!(matches!(
            append(&log, &stale, Durability::Written).await,
            Err(LogError::Producer(_))
        ));

        log.close().await.expect("close");
        drop(log);
        let log = open(&dir, config(SEGMENT_BYTES)).await;
        assert_retries_are_duplicates(&log, &sent, "after a clean close").await;

        // A crash: no close, so the newest snapshot is the last roll's and
        // the batches after it are replayed from the log.
        append_idempotent(&log, &mut sent, 7).await;
        drop(log);
        let log = open(&dir, config(SEGMENT_BYTES)).await;
        assert_retries_are_duplicates(&log, &sent, "after a crash").await;
        append_idempotent(&log, &mut sent, 2).await;
        drop(log);

        // Without any snapshot the whole log is replayed.
        for offset in producer_state::list_snapshots(&dir).unwrap() {
            producer_state::remove_snapshot(&dir, offset).unwrap();
        }
        let log = open(&dir, config(SEGMENT_BYTES)).await;
        assert_retries_are_duplicates(&log, &sent, "replayed from the log start").await;
        drop(log);

        // A snapshot beyond the recovered log (taken while writes were
        // pending, then lost to a crash) is removed, not used.
        let end = sent.last().unwrap().2 + 100;
        std::fs::write(
            producer_state::snapshot_path(&dir, end),
            producer_state::ProducerStates::default().encode(end),
        )
        .unwrap();
        let log = open(&dir, config(SEGMENT_BYTES)).await;
        assert!(!producer_state::list_snapshots(&dir).unwrap().contains(&end));
        assert_retries_are_duplicates(&log, &sent, "with a snapshot beyond the log").await;
        log.close().await.expect("close");
    });
}

#[test]
fn transactions_bound_the_last_stable_offset_and_aborts_survive_restarts() {
    const SEGMENT_BYTES: u64 = 16 * 1024;
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, config(SEGMENT_BYTES)).await;
        let plain = encode_batch(1, &[now_ms()], 100);
        append(&log, &plain, Durability::Written).await.unwrap();
        assert_eq!(log.last_stable_offset(), 1);

        // Producer 7 opens a transaction at offset 1, producer 8 at 4.
        let t7 = encode_producer_batch(7, 0, 0, 3, 1, true);
        let first7 = append(&log, &t7, Durability::Written).await.unwrap().base_offset;
        let t8 = encode_producer_batch(8, 0, 0, 2, 2, true);
        let first8 = append(&log, &t8, Durability::Written).await.unwrap().base_offset;
        assert_eq!((first7, first8), (1, 4));
        assert_eq!(
            log.last_stable_offset(),
            1,
            "the oldest open transaction bounds the LSO"
        );
        assert_eq!(log.high_watermark(), 6);

        // 7 aborts, 8 commits: the LSO moves past both; only 7 is aborted.
        let abort7 = log
            .append_marker(7, 0, 0, false, Durability::Written)
            .await
            .unwrap();
        assert_eq!(abort7, 6);
        assert_eq!(log.last_stable_offset(), 4);
        let commit8 = log
            .append_marker(8, 0, 0, true, Durability::Written)
            .await
            .unwrap();
        assert_eq!(log.last_stable_offset(), commit8 + 1);
        assert_eq!(log.aborted_transactions(0, 100), vec![(7, 1)]);
        assert_eq!(
            log.aborted_transactions(7, 100),
            Vec::<(i64, i64)>::new(),
            "after the marker"
        );
        assert_eq!(
            log.aborted_transactions(0, 1),
            Vec::<(i64, i64)>::new(),
            "before the transaction"
        );

        // A fenced producer's marker (older epoch) is refused.
        let t9 = encode_producer_batch(9, 3, 0, 1, 3, true);
        let open9 = append(&log, &t9, Durability::Written).await.unwrap().base_offset;
        assert!(matches!(
            log.append_marker(9, 2, 0, true, Durability::Written).await,
            Err(LogError::Producer(ProducerError::StaleEpoch { .. }))
        ));
        assert_eq!(log.last_stable_offset(), open9, "9's transaction is still open");

        // Enough data to roll segments (the abort lands in a sealed one).
        append_idempotent(&log, &mut Vec::new(), 20).await;
        assert!(segment_bases(&dir).len() > 2);
        let high_watermark = log.high_watermark();
        assert_eq!(log.last_stable_offset(), open9);

        log.close().await.unwrap();
        drop(log);
        let log = open(&dir, config(SEGMENT_BYTES)).await;
        assert_eq!(
            log.aborted_transactions(0, 100),
            vec![(7, 1)],
            "after a clean close"
        );
        assert_eq!(log.last_stable_offset(), open9, "9's transaction is still open");
        assert_eq!(log.high_watermark(), high_watermark);
        assert!(std::fs::read_dir(&dir).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".txnindex")));

        // Crash (no close), then recovery from snapshots and the log alone.
        let abort9 = log
            .append_marker(9, 3, 0, false, Durability::Written)
            .await
            .unwrap();
        drop(log);
        let log = open(&dir, config(SEGMENT_BYTES)).await;
        assert_eq!(log.aborted_transactions(0, i64::MAX), vec![(7, 1), (9, open9)]);
        assert_eq!(log.last_stable_offset(), abort9 + 1);
        drop(log);
        for offset in producer_state::list_snapshots(&dir).unwrap() {
            producer_state::remove_snapshot(&dir, offset).unwrap();
        }
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "txnindex") {
                std::fs::remove_file(path).unwrap();
            }
        }
        let log = open(&dir, config(SEGMENT_BYTES)).await;
        assert_eq!(
            log.aborted_transactions(0, i64::MAX),
            vec![(7, 1), (9, open9)],
            "replayed"
        );
        assert_eq!(log.last_stable_offset(), log.high_watermark());
        log.close().await.unwrap();
    });
}

// ---------------------------------------------------------------------------
// 8. Retention and DeleteRecords (log::retention)
// ---------------------------------------------------------------------------

/// A log of several small segments, with retention set by `retention`.
async fn segmented_log(dir: &Path, retention: impl Fn(&mut TopicConfig)) -> (PartitionLog, Model) {
    let mut config = config(4096);
    retention(&mut config);
    let log = open(dir, config).await;
    let mut model = Model::default();
    fill(&log, &mut model, 0, 60, 300).await;
    assert!(segment_bases(dir).len() >= 5, "several segments");
    (log, model)
}

fn log_bytes(dir: &Path) -> u64 {
    segment_bases(dir)
        .iter()
        .map(|&base| std::fs::metadata(log_path(dir, base)).expect("segment").len())
        .sum()
}

#[test]
fn retention_bytes_deletes_whole_segments_oldest_first() {
    const RETENTION_BYTES: i64 = 8192;
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let (log, model) = segmented_log(&dir, |c| c.retention_bytes = RETENTION_BYTES).await;
        let bases_before = segment_bases(&dir);
        let deleted = log.apply_retention(now_ms()).await.expect("retention");
        let bases = segment_bases(&dir);
        assert!(deleted.segments > 0);
        assert_eq!(bases, bases_before[deleted.segments..], "a prefix went");
        assert_eq!(log.log_start_offset(), bases[0]);
        assert_eq!(deleted.log_start_offset, bases[0]);
        // Kept at least the limit, and not a whole segment more.
        log.close().await.expect("close");
        let first_bytes = std::fs::metadata(log_path(&dir, bases[0]))
            .expect("segment")
            .len();
        assert!(log_bytes(&dir) as i64 >= RETENTION_BYTES);
        assert!(((log_bytes(&dir) - first_bytes) as i64) < RETENTION_BYTES);
        let log = open(&dir, config(4096)).await;
        assert_eq!(log.log_start_offset(), bases[0], "the start survives a restart");
        assert_eq!(log.high_watermark(), model.next_offset());
        let start = log.log_start_offset();
        assert!(matches!(
            log.read(start - 1, READ_BYTES_MAX, true).await,
            Err(LogError::OffsetOutOfRange { log_start_offset, .. }) if log_start_offset == start
        ));
        assert_batches_eq(
            &consume(&log, start, READ_BYTES_MAX).await,
            &model.batches_from(start),
            "after retention",
        );
        // Nothing more to delete: a second pass is a no-op.
        let log = open(
            &dir,
            TopicConfig {
                retention_bytes: RETENTION_BYTES,
                ..config(4096)
            },
        )
        .await;
        assert_eq!(
            log.apply_retention(now_ms()).await.expect("retention").segments,
            0
        );
    });
}

#[test]
fn retention_ms_deletes_everything_expired_and_appends_continue() {
    let (_guard, dir) = temp_dir();
    run(move || async move {
        // Test batches carry timestamps from 2020: all older than a minute.
        let (log, mut model) = segmented_log(&dir, |c| c.retention_ms = 60_000).await;
        let end = model.next_offset();
        log.apply_retention(now_ms()).await.expect("retention");
        assert_eq!(
            segment_bases(&dir),
            vec![end],
            "rolled, then every old segment deleted"
        );
        assert_eq!((log.log_start_offset(), log.high_watermark()), (end, end));
        assert!(log
            .read(end, READ_BYTES_MAX, true)
            .await
            .expect("read at the end")
            .batches
            .is_empty());
        // New data, with a current timestamp, stays.
        let now = now_ms();
        append_checked(&log, &mut model, 100, &[now, now + 1], 10).await;
        assert_eq!(
            log.apply_retention(now_ms()).await.expect("retention").segments,
            0
        );
        assert_batches_eq(
            &consume(&log, end, READ_BYTES_MAX).await,
            &model.batches_from(end),
            "new data",
        );
        log.close().await.expect("close");
        let log = open(&dir, config(4096)).await;
        assert_eq!((log.log_start_offset(), log.high_watermark()), (end, end + 2));
        // retention.ms = -1 keeps everything.
        let (_guard2, dir2) = temp_dir();
        let (log2, _) = segmented_log(&dir2, |c| c.retention_ms = -1).await;
        assert_eq!(
            log2.apply_retention(now_ms()).await.expect("retention").segments,
            0
        );
    });
}

#[test]
fn delete_records_moves_the_start_durably_and_deletes_segments_below_it() {
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let (log, model) = segmented_log(&dir, |_| {}).await;
        let bases = segment_bases(&dir);
        // Inside the third segment, not on a batch boundary if possible.
        let target = bases[2] + 1;
        assert_eq!(log.delete_records_before(target).await.expect("delete"), target);
        assert_eq!(segment_bases(&dir), bases[2..], "segments wholly below went");
        assert!(matches!(
            log.read(target - 1, READ_BYTES_MAX, true).await,
            Err(LogError::OffsetOutOfRange { .. })
        ));
        // The batch holding the start is returned whole, as Kafka does.
        let read = log.read(target, 1, true).await.expect("read at the start");
        assert_batches_eq(
            &read.batches,
            &[model.batch_holding(target).bytes.clone()],
            "start batch",
        );
        // Lower than the start: unchanged. Past the end: out of range.
        assert_eq!(log.delete_records_before(0).await.expect("delete"), target);
        assert!(matches!(
            log.delete_records_before(model.next_offset() + 1).await,
            Err(LogError::OffsetOutOfRange { .. })
        ));
        // A timestamp lookup never answers below the start.
        let (found, _) = log.offset_for_timestamp(0).await.expect("lookup").expect("found");
        assert_eq!(found, target);
        // Crash-like reopen (no close): the start was durable.
        drop(log);
        let log = open(&dir, config(4096)).await;
        assert_eq!(log.log_start_offset(), target);
        // -1: everything up to the high watermark.
        let end = model.next_offset();
        assert_eq!(log.delete_records_before(-1).await.expect("delete all"), end);
        assert_eq!(log.log_start_offset(), end);
        log.close().await.expect("close");
        let log = open(&dir, config(4096)).await;
        assert_eq!((log.log_start_offset(), log.high_watermark()), (end, end));
    });
}

// ---------------------------------------------------------------------------
// Segments zeroed ahead of the appends
// ---------------------------------------------------------------------------

/// Sum of the stored bytes of the model's batches in the segment at `base`
/// (up to the next segment's base).
fn data_bytes_of_segment(model: &Model, base: i64, next_base: Option<i64>) -> u64 {
    model
        .batches
        .iter()
        .filter(|b| b.base_offset >= base && next_base.is_none_or(|next| b.base_offset < next))
        .map(|b| b.bytes.len() as u64)
        .sum()
}

/// Waits (up to 10 s) until the zeroing task wrote the active segment past
/// `data_bytes` by at least `ahead_bytes`.
async fn wait_for_zeros(path: &Path, data_bytes: u64, ahead_bytes: u64) {
    for _ in 0..1000 {
        if file_bytes(path) >= data_bytes + ahead_bytes {
            return;
        }
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "{} is {} bytes: not zeroed {ahead_bytes} bytes past its {data_bytes} bytes of data",
        path.display(),
        file_bytes(path)
    );
}

#[test]
fn zeroed_ahead_segments_serve_only_data_roll_trimmed_and_recover_after_a_crash() {
    const MIB: u64 = 1 << 20;
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let queue = glommio::executor().current_task_queue();
        let log = open(&dir, config(MIB)).await;
        log.set_preallocation(16 * MIB, queue);
        let mut model = Model::default();
        fill(&log, &mut model, 0, 1200, 900).await;
        let bases = segment_bases(&dir);
        assert!(bases.len() >= 3, "rolled at least twice: {bases:?}");
        for pair in bases.windows(2) {
            let data = data_bytes_of_segment(&model, pair[0], Some(pair[1]));
            assert_eq!(
                file_bytes(&log_path(&dir, pair[0])),
                data,
                "sealed segments are trimmed to their batches"
            );
        }
        let active_base = *bases.last().unwrap();
        let active = log_path(&dir, active_base);
        let active_data = data_bytes_of_segment(&model, active_base, None);
        // At least AHEAD_BYTES_MIN is zeroed past the appends.
        wait_for_zeros(&active, active_data, 256 << 10).await;
        assert_log_matches(&log, &model, "zeroed ahead").await;
        assert_timestamp_lookups_match(&log, &model, "zeroed ahead").await;

        // A crash: the zeros stay behind the data until recovery trims them.
        drop(log);
        let log = open(&dir, config(MIB)).await;
        assert_eq!(file_bytes(&active), active_data, "recovery trims the zeros");
        assert_log_matches(&log, &model, "after a crash").await;
        log.set_preallocation(16 * MIB, queue);
        fill(&log, &mut model, 2000, 50, 900).await;
        assert_log_matches(&log, &model, "appended after a crash").await;

        // A clean close trims them too.
        log.close().await.expect("close");
        let bases = segment_bases(&dir);
        let active_base = *bases.last().unwrap();
        assert_eq!(
            file_bytes(&log_path(&dir, active_base)),
            data_bytes_of_segment(&model, active_base, None),
            "closing trims the zeros"
        );
        drop(log);
        let log = open(&dir, config(MIB)).await;
        assert_log_matches(&log, &model, "after a clean restart").await;
    });
}
