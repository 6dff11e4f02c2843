//! Tests of read_committed reads through the partition log, as the fetch
//! path uses them: a transaction open at offset N bounds every
//! read_committed read at N (the last stable offset) on each read path (tail
//! cache, O_DIRECT scan, page-cache region), while read_uncommitted reads
//! see everything below the high watermark; a marker makes the data visible;
//! an abort shows in `aborted_transactions` exactly for the reads whose
//! returned range overlaps the transaction.
//!
//! Each scenario runs once per read path on a fresh log. A `Model` of what
//! was appended (data batches and markers, with their stored bytes) and of
//! the aborted transactions is the oracle: every read at every offset, with
//! several byte limits, must return exactly the batches and the aborted
//! transactions the model predicts. The harness pieces are those of
//! `tests.rs`.

use std::{path::Path, rc::Rc, time::Duration};

use bytes::Bytes;
use indexmap::IndexMap;
use kafka_protocol::records::{Record, TimestampType as RecordTimestampType};

use super::{
    now_ms,
    partition::{Durability, PartitionLog},
    read::Isolation,
    recovery::open_log,
    tail_cache::TailCache,
    tests::{encode_records, run, temp_dir, warm_page_cache, with_base_offset},
    LogError,
};
use crate::{
    metadata::{TimestampType, TopicConfig},
    protocol::record_batch::{self, BatchHeader},
};

const TOPIC: &str = "payments";
const PARTITION: i32 = 1;
const APPEND_WRITE_BYTES_MAX: usize = 1024 * 1024;
/// A fetch limit no test reaches.
const READ_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Small segments: the scenarios span several, so a bound can fall on a
/// segment's first batch.
const SEGMENT_BYTES: u64 = 8 * 1024;
const SEGMENT_MS_NEVER: u64 = 7 * 24 * 3600 * 1000;
/// Holds every batch of a scenario: the cache path never falls back to disk.
const TAIL_CACHE_BYTES: usize = 16 * 1024 * 1024;
/// Byte limits every read is tried with: one batch, a few, everything.
const MAX_BYTES_TRIED: [usize; 3] = [1, 3000, READ_BYTES_MAX];
const PRODUCER_A: i64 = 7;
const PRODUCER_B: i64 = 8;
const EPOCH: i16 = 0;
const COORDINATOR_EPOCH: i32 = 3;

// ---------------------------------------------------------------------------
// Harness (`run`, `temp_dir`, the encoder and friends are tests.rs's)
// ---------------------------------------------------------------------------

fn config() -> TopicConfig {
    TopicConfig {
        segment_bytes: SEGMENT_BYTES,
        segment_ms: SEGMENT_MS_NEVER,
        max_message_bytes: 1024 * 1024,
        timestamp_type: TimestampType::CreateTime,
        retention_ms: -1,
        ..TopicConfig::resolve(&crate::config::Config::default(), &Default::default())
    }
}

/// The way a read is served; each scenario runs once per path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadPath {
    TailCache,
    Direct,
    Region,
}

/// A fresh log whose reads take `path`.
async fn open(dir: &Path, path: ReadPath) -> Rc<PartitionLog> {
    let log = open_log(dir, TOPIC, PARTITION, config(), APPEND_WRITE_BYTES_MAX)
        .await
        .expect("opening the log");
    if path == ReadPath::TailCache {
        log.attach_tail_cache(TailCache::new(TAIL_CACHE_BYTES));
    }
    log.set_cold_reads_as_regions(path == ReadPath::Region);
    Rc::new(log)
}

/// A producer's batch of `count` records; transactional when `producer`
/// is given (id, first sequence), plain otherwise.
fn encode_batch(producer: Option<(i64, i32)>, count: usize, tag: u64) -> Bytes {
    let (producer_id, producer_epoch, first_sequence) = match producer {
        Some((id, sequence)) => (id, EPOCH, sequence),
        None => (-1, -1, 0),
    };
    let records: Vec<Record> = (0..count)
        .map(|index| Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: RecordTimestampType::Creation,
            offset: index as i64,
            sequence: first_sequence + index as i32,
            timestamp: now_ms(),
            key: Some(Bytes::from(format!("key-{tag}-{index}"))),
            value: Some(Bytes::from(vec![tag as u8; 600])),
            headers: IndexMap::new(),
        })
        .collect();
    encode_records(&records)
}

/// One batch of the log as the model expects a read to return it.
#[derive(Debug, Clone)]
struct StoredBatch {
    base_offset: i64,
    last_offset: i64,
    bytes: Bytes,
}

/// What was appended, and the transactions aborted so far as (producer id,
/// first offset, marker offset), in marker order.
#[derive(Default)]
struct Model {
    batches: Vec<StoredBatch>,
    aborted: Vec<(i64, i64, i64)>,
    /// First offset of each producer's open transaction.
    open: Vec<(i64, i64)>,
    /// Next sequence of each producer.
    sequences: Vec<(i64, i32)>,
    tag: u64,
}

impl Model {
    fn high_watermark(&self) -> i64 {
        self.batches.last().map_or(0, |b| b.last_offset + 1)
    }

    fn last_stable_offset(&self) -> i64 {
        self.open
            .iter()
            .map(|&(_, first)| first)
            .min()
            .unwrap_or_else(|| self.high_watermark())
    }

    /// What a read at `offset` bounded by `end_offset` returns: from the
    /// batch holding `offset`, whole batches that end below the bound,
    /// within `max_bytes` (the first one whole). A read from disk, like
    /// Kafka's, returns batches of one segment only: pass the segments' base
    /// offsets for those.
    fn expected(
        &self,
        offset: i64,
        end_offset: i64,
        max_bytes: usize,
        segment_bases: Option<&[i64]>,
    ) -> Vec<Bytes> {
        let holding = self.batches.iter().find(|b| b.last_offset >= offset);
        let segment_end = match (holding, segment_bases) {
            (Some(holding), Some(bases)) => bases
                .iter()
                .copied()
                .find(|&base| base > holding.base_offset)
                .unwrap_or(i64::MAX),
            _ => i64::MAX,
        };
        let mut out = Vec::new();
        let mut bytes = 0;
        for batch in self
            .batches
            .iter()
            .skip_while(|b| b.last_offset < offset)
            .take_while(|b| b.last_offset < end_offset && b.base_offset < segment_end)
        {
            if bytes + batch.bytes.len() > max_bytes && !out.is_empty() {
                break;
            }
            bytes += batch.bytes.len();
            out.push(batch.bytes.clone());
            if bytes >= max_bytes {
                break;
            }
        }
        out
    }

    /// Aborted transactions overlapping `[from_offset, to_offset)`.
    fn aborted_between(&self, from_offset: i64, to_offset: i64) -> Vec<(i64, i64)> {
        self.aborted
            .iter()
            .filter(|&&(_, first, marker)| marker >= from_offset && first < to_offset)
            .map(|&(producer_id, first, _)| (producer_id, first))
            .collect()
    }
}

/// Appends a plain batch of `count` records.
async fn append_plain(log: &PartitionLog, model: &mut Model, count: usize) {
    model.tag += 1;
    let batch = encode_batch(None, count, model.tag);
    append_data(log, model, batch).await;
}

/// Appends a transactional batch of `producer_id` (opening its transaction
/// here if none is open).
async fn append_transactional(log: &PartitionLog, model: &mut Model, producer_id: i64, count: usize) {
    model.tag += 1;
    let sequence = match model.sequences.iter_mut().find(|(id, _)| *id == producer_id) {
        Some((_, next)) => next,
        None => {
            model.sequences.push((producer_id, 0));
            &mut model.sequences.last_mut().expect("just pushed").1
        }
    };
    let batch = encode_batch(Some((producer_id, *sequence)), count, model.tag);
    *sequence += count as i32;
    let base_offset = append_data(log, model, batch).await;
    if !model.open.iter().any(|&(id, _)| id == producer_id) {
        model.open.push((producer_id, base_offset));
    }
}

async fn append_data(log: &PartitionLog, model: &mut Model, batch: Bytes) -> i64 {
    let header = record_batch::validate_produced_batch(&batch, usize::MAX).expect("a valid batch");
    let outcome = log
        .append(batch.clone(), &header, Durability::Written)
        .await
        .expect("append");
    assert_eq!(outcome.base_offset, model.high_watermark(), "dense offsets");
    model.batches.push(StoredBatch {
        base_offset: outcome.base_offset,
        last_offset: outcome.base_offset + i64::from(header.last_offset_delta),
        bytes: with_base_offset(&batch, outcome.base_offset),
    });
    outcome.base_offset
}

/// Appends `producer_id`'s marker and records what it ends in the model.
async fn append_marker(log: &PartitionLog, model: &mut Model, producer_id: i64, commit: bool) -> i64 {
    let marker_offset = log
        .append_marker(producer_id, EPOCH, COORDINATOR_EPOCH, commit, Durability::Written)
        .await
        .expect("append_marker");
    record_marker(log, model, producer_id, commit, marker_offset).await;
    marker_offset
}

/// Records in the model a marker appended at `marker_offset`, with its
/// stored bytes (read back: the log stamped its timestamp).
async fn record_marker(
    log: &PartitionLog,
    model: &mut Model,
    producer_id: i64,
    commit: bool,
    marker_offset: i64,
) {
    assert_eq!(marker_offset, model.high_watermark(), "dense offsets");
    let read = log
        .read_isolated(marker_offset, 1, true, Isolation::ReadUncommitted)
        .await
        .expect("reading the marker back");
    let bytes = match (&read.batches[..], &read.region) {
        ([batch], None) => batch.clone(),
        ([], Some(region)) => region_bytes(region),
        other => panic!("one marker batch expected, got {other:?}"),
    };
    let header = BatchHeader::parse(&bytes).expect("a marker header");
    assert!(header.is_control() && header.is_transactional());
    assert_eq!(
        (header.base_offset, header.producer_id),
        (marker_offset, producer_id)
    );
    model.batches.push(StoredBatch {
        base_offset: marker_offset,
        last_offset: marker_offset,
        bytes,
    });
    if let Some(position) = model.open.iter().position(|&(id, _)| id == producer_id) {
        let (_, first_offset) = model.open.remove(position);
        if !commit {
            model.aborted.push((producer_id, first_offset, marker_offset));
        }
    }
}

fn region_bytes(region: &super::region::FileRegion) -> Bytes {
    use std::os::unix::fs::FileExt;
    let mut bytes = vec![0u8; region.bytes];
    region
        .file
        .read_exact_at(&mut bytes, region.position)
        .expect("reading a region");
    Bytes::from(bytes)
}

/// The batches a read returned, whichever form they came in, after checking
/// the read took `path` (when it returned anything).
fn returned_batches(outcome: &super::partition::ReadOutcome, path: ReadPath, context: &str) -> Vec<Bytes> {
    let bytes = match &outcome.region {
        Some(region) => {
            assert!(outcome.batches.is_empty(), "{context}: a region or batches");
            region_bytes(region)
        }
        None => Bytes::from(outcome.batches.concat()),
    };
    assert_eq!(outcome.bytes, bytes.len(), "{context}: bytes");
    if !bytes.is_empty() {
        let taken = match path {
            ReadPath::TailCache => outcome.from_tail_cache,
            ReadPath::Direct => !outcome.from_tail_cache && outcome.region.is_none(),
            ReadPath::Region => outcome.region.is_some(),
        };
        assert!(taken, "{context}: served by {path:?}");
    }
    let mut batches = Vec::new();
    for scanned in record_batch::scan_batches(&bytes) {
        let (position, header) = scanned.expect("whole batches");
        let batch = bytes.slice(position..position + header.total_bytes());
        record_batch::verify_crc(&batch).expect("the stored CRC is valid");
        batches.push(batch);
    }
    assert_eq!(
        batches.iter().map(Bytes::len).sum::<usize>(),
        bytes.len(),
        "{context}: whole batches only"
    );
    batches
}

/// Base offsets of the log's segments, oldest first.
fn segment_bases(log: &PartitionLog) -> Vec<i64> {
    log.state
        .borrow()
        .segments
        .iter()
        .map(|s| s.base_offset)
        .collect()
}

fn offsets(batches: &[Bytes]) -> Vec<i64> {
    batches
        .iter()
        .map(|b| BatchHeader::parse(b).map_or(-1, |h| h.base_offset))
        .collect()
}

/// Brings the log's files into the page cache for the region path (writes
/// since the last call dropped the pages they covered).
fn prepare(dir: &Path, path: ReadPath) {
    if path == ReadPath::Region {
        warm_page_cache(dir);
    }
}

/// Reads at every offset from the log start to past the high watermark,
/// with each of [`MAX_BYTES_TRIED`], under `isolation`, and checks batches,
/// offsets and aborted transactions against the model.
async fn assert_reads_match(
    log: &PartitionLog,
    dir: &Path,
    path: ReadPath,
    model: &Model,
    isolation: Isolation,
    context: &str,
) {
    prepare(dir, path);
    let high_watermark = model.high_watermark();
    let last_stable_offset = model.last_stable_offset();
    assert_eq!(log.high_watermark(), high_watermark, "{context}: high watermark");
    assert_eq!(
        log.last_stable_offset(),
        last_stable_offset,
        "{context}: last stable offset"
    );
    let end_offset = match isolation {
        Isolation::ReadUncommitted => high_watermark,
        Isolation::ReadCommitted => last_stable_offset,
    };
    let segment_bases = segment_bases(log);
    assert!(segment_bases.len() > 1, "{context}: the log spans segments");
    let cold_segment_bases = (path != ReadPath::TailCache).then_some(&segment_bases[..]);
    for offset in 0..=high_watermark {
        for max_bytes in MAX_BYTES_TRIED {
            let what = format!("{context}: {isolation:?} {path:?} at {offset}, max {max_bytes}");
            let read = log
                .read_isolated(offset, max_bytes, true, isolation)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(read.high_watermark, high_watermark, "{what}");
            assert_eq!(read.last_stable_offset, last_stable_offset, "{what}");
            assert_eq!(read.log_start_offset, 0, "{what}");
            let got = returned_batches(&read, path, &what);
            let expected = model.expected(offset, end_offset, max_bytes, cold_segment_bases);
            assert_eq!(offsets(&got), offsets(&expected), "{what}: batches");
            assert!(
                got == expected,
                "{what}: batch bytes differ from the appended ones"
            );
            let aborted = match isolation {
                Isolation::ReadUncommitted => None,
                Isolation::ReadCommitted => Some(match got.last() {
                    Some(last) => {
                        let next_offset = BatchHeader::parse(last).expect("a header").last_offset() + 1;
                        model.aborted_between(offset, next_offset)
                    }
                    None => Vec::new(),
                }),
            };
            assert_eq!(read.aborted_transactions, aborted, "{what}: aborted transactions");
        }
    }
    for offset in [high_watermark + 1, -1] {
        let read = log
            .read_isolated(offset, READ_BYTES_MAX, true, isolation)
            .await
            .map(|r| r.bytes);
        assert_eq!(
            read,
            Err(LogError::OffsetOutOfRange {
                log_start_offset: 0,
                high_watermark
            }),
            "{context}: {isolation:?} at {offset} is out of range"
        );
    }
}

async fn assert_both_isolations(
    log: &PartitionLog,
    dir: &Path,
    path: ReadPath,
    model: &Model,
    context: &str,
) {
    assert_reads_match(log, dir, path, model, Isolation::ReadUncommitted, context).await;
    assert_reads_match(log, dir, path, model, Isolation::ReadCommitted, context).await;
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

/// Plain data, then producer A's transaction opens at N with more plain
/// data after it: read_committed stops at N on every path and is empty (not
/// out of range) from N to the high watermark; a fetch waiting there wakes
/// when the commit marker is appended and then gets the data.
async fn open_transaction_blocks_read_committed_until_its_commit(path: ReadPath) {
    let (_guard, dir) = temp_dir();
    let log = open(&dir, path).await;
    let mut model = Model::default();
    for _ in 0..8 {
        append_plain(&log, &mut model, 2).await;
    }
    let first_offset = model.high_watermark();
    append_transactional(&log, &mut model, PRODUCER_A, 3).await;
    append_plain(&log, &mut model, 2).await;
    append_transactional(&log, &mut model, PRODUCER_A, 1).await;
    for _ in 0..6 {
        append_plain(&log, &mut model, 2).await;
    }
    assert_eq!(log.last_stable_offset(), first_offset);
    assert!(log.high_watermark() > first_offset + 4);
    assert_both_isolations(&log, &dir, path, &model, "transaction open").await;

    // A read_committed fetch at the last stable offset has nothing and
    // waits for the high watermark to move; the marker moves it.
    prepare(&dir, path);
    let parked = log
        .read_isolated(first_offset, READ_BYTES_MAX, true, Isolation::ReadCommitted)
        .await
        .expect("read at the last stable offset");
    assert_eq!(
        (parked.bytes, parked.aborted_transactions.as_deref()),
        (0, Some(&[][..]))
    );
    let appender = {
        let log = log.clone();
        glommio::spawn_local(async move {
            glommio::timer::sleep(Duration::from_millis(20)).await;
            log.append_marker(PRODUCER_A, EPOCH, COORDINATOR_EPOCH, true, Durability::Written)
                .await
        })
    };
    let woken = futures_lite::future::or(
        async {
            log.wait_for_high_watermark_above(parked.high_watermark).await;
            true
        },
        async {
            glommio::timer::sleep(Duration::from_secs(10)).await;
            false
        },
    )
    .await;
    assert!(woken, "the marker woke the waiting fetch");
    let marker_offset = appender.await.expect("commit marker");
    record_marker(&log, &mut model, PRODUCER_A, true, marker_offset).await;
    assert_eq!(log.last_stable_offset(), log.high_watermark());
    prepare(&dir, path);
    let woken_read = log
        .read_isolated(first_offset, READ_BYTES_MAX, true, Isolation::ReadCommitted)
        .await
        .expect("read after the commit");
    let got = returned_batches(&woken_read, path, "after the commit");
    let cold_segment_bases = (path != ReadPath::TailCache).then(|| segment_bases(&log));
    assert_eq!(
        offsets(&got),
        offsets(&model.expected(
            first_offset,
            model.high_watermark(),
            READ_BYTES_MAX,
            cold_segment_bases.as_deref()
        )),
        "the re-read returns the committed data, the data after it and the marker"
    );
    assert_eq!(woken_read.aborted_transactions, Some(Vec::new()));
    assert_both_isolations(&log, &dir, path, &model, "committed").await;
}

#[test]
fn open_transaction_blocks_read_committed_from_the_tail_cache() {
    run(|| open_transaction_blocks_read_committed_until_its_commit(ReadPath::TailCache));
}

#[test]
fn open_transaction_blocks_read_committed_on_the_direct_path() {
    run(|| open_transaction_blocks_read_committed_until_its_commit(ReadPath::Direct));
}

#[test]
fn open_transaction_blocks_read_committed_on_the_region_path() {
    run(|| open_transaction_blocks_read_committed_until_its_commit(ReadPath::Region));
}

/// An aborted transaction of A among plain data, then more data: the
/// aborted transaction is listed by exactly the read_committed reads whose
/// returned range overlaps it (the model checks every offset and limit),
/// never after its marker, and never for read_uncommitted.
async fn aborted_transaction_is_listed_for_overlapping_reads(path: ReadPath) {
    let (_guard, dir) = temp_dir();
    let log = open(&dir, path).await;
    let mut model = Model::default();
    for _ in 0..4 {
        append_plain(&log, &mut model, 2).await;
    }
    let first_offset = model.high_watermark();
    append_transactional(&log, &mut model, PRODUCER_A, 2).await;
    append_plain(&log, &mut model, 1).await;
    append_transactional(&log, &mut model, PRODUCER_A, 2).await;
    append_plain(&log, &mut model, 3).await;
    let marker_offset = append_marker(&log, &mut model, PRODUCER_A, false).await;
    for _ in 0..5 {
        append_plain(&log, &mut model, 2).await;
    }
    assert_eq!(log.last_stable_offset(), log.high_watermark());
    assert_eq!(
        log.aborted_transactions(0, log.high_watermark()),
        vec![(PRODUCER_A, first_offset)]
    );
    assert_both_isolations(&log, &dir, path, &model, "aborted").await;

    prepare(&dir, path);
    let everything = log
        .read_isolated(0, READ_BYTES_MAX, true, Isolation::ReadCommitted)
        .await
        .expect("read");
    assert_eq!(
        everything.aborted_transactions,
        Some(vec![(PRODUCER_A, first_offset)])
    );
    let after = log
        .read_isolated(marker_offset + 1, READ_BYTES_MAX, true, Isolation::ReadCommitted)
        .await
        .expect("read");
    assert!(after.bytes > 0);
    assert_eq!(after.aborted_transactions, Some(Vec::new()), "after the marker");
    let uncommitted = log
        .read_isolated(0, READ_BYTES_MAX, true, Isolation::ReadUncommitted)
        .await
        .expect("read");
    assert_eq!(uncommitted.aborted_transactions, None);

    // A new transaction of the same producer opens after the abort.
    let reopened = model.high_watermark();
    append_transactional(&log, &mut model, PRODUCER_A, 2).await;
    append_plain(&log, &mut model, 2).await;
    assert_eq!(log.last_stable_offset(), reopened);
    assert_both_isolations(&log, &dir, path, &model, "aborted, then a new transaction").await;
}

#[test]
fn aborted_transaction_is_listed_for_overlapping_reads_from_the_tail_cache() {
    run(|| aborted_transaction_is_listed_for_overlapping_reads(ReadPath::TailCache));
}

#[test]
fn aborted_transaction_is_listed_for_overlapping_reads_on_the_direct_path() {
    run(|| aborted_transaction_is_listed_for_overlapping_reads(ReadPath::Direct));
}

#[test]
fn aborted_transaction_is_listed_for_overlapping_reads_on_the_region_path() {
    run(|| aborted_transaction_is_listed_for_overlapping_reads(ReadPath::Region));
}

/// Producers A and B interleave their transactions: the last stable offset
/// is the first offset of the older open one, moves to B's when A commits,
/// and to the high watermark when B aborts; only B is listed as aborted.
async fn interleaved_transactions_of_two_producers(path: ReadPath) {
    let (_guard, dir) = temp_dir();
    let log = open(&dir, path).await;
    let mut model = Model::default();
    for _ in 0..7 {
        append_plain(&log, &mut model, 2).await;
    }
    let first_a = model.high_watermark();
    append_transactional(&log, &mut model, PRODUCER_A, 2).await;
    append_plain(&log, &mut model, 1).await;
    let first_b = model.high_watermark();
    append_transactional(&log, &mut model, PRODUCER_B, 3).await;
    append_transactional(&log, &mut model, PRODUCER_A, 1).await;
    append_transactional(&log, &mut model, PRODUCER_B, 1).await;
    append_plain(&log, &mut model, 2).await;
    assert_eq!(log.last_stable_offset(), first_a);
    assert_both_isolations(&log, &dir, path, &model, "A and B open").await;

    append_marker(&log, &mut model, PRODUCER_A, true).await;
    assert_eq!(log.last_stable_offset(), first_b, "B is still open");
    append_plain(&log, &mut model, 2).await;
    assert_both_isolations(&log, &dir, path, &model, "A committed, B open").await;

    let marker_b = append_marker(&log, &mut model, PRODUCER_B, false).await;
    assert_eq!(log.last_stable_offset(), log.high_watermark());
    for _ in 0..3 {
        append_plain(&log, &mut model, 2).await;
    }
    assert_eq!(
        log.aborted_transactions(0, log.high_watermark()),
        vec![(PRODUCER_B, first_b)]
    );
    assert_eq!(
        log.aborted_transactions(marker_b + 1, log.high_watermark()),
        vec![]
    );
    assert_both_isolations(&log, &dir, path, &model, "A committed, B aborted").await;

    // B opens again before A does: now B's is the older open transaction.
    let second_b = model.high_watermark();
    append_transactional(&log, &mut model, PRODUCER_B, 1).await;
    append_transactional(&log, &mut model, PRODUCER_A, 1).await;
    assert_eq!(log.last_stable_offset(), second_b);
    append_marker(&log, &mut model, PRODUCER_A, false).await;
    assert_eq!(log.last_stable_offset(), second_b, "A's abort does not pass B");
    assert_both_isolations(&log, &dir, path, &model, "B open, A aborted again").await;
    append_marker(&log, &mut model, PRODUCER_B, true).await;
    assert_both_isolations(&log, &dir, path, &model, "all ended").await;
}

#[test]
fn interleaved_transactions_of_two_producers_from_the_tail_cache() {
    run(|| interleaved_transactions_of_two_producers(ReadPath::TailCache));
}

#[test]
fn interleaved_transactions_of_two_producers_on_the_direct_path() {
    run(|| interleaved_transactions_of_two_producers(ReadPath::Direct));
}

#[test]
fn interleaved_transactions_of_two_producers_on_the_region_path() {
    run(|| interleaved_transactions_of_two_producers(ReadPath::Region));
}

#[test]
fn isolation_levels_are_read_from_requests() {
    assert_eq!(Isolation::from_level(0), Some(Isolation::ReadUncommitted));
    assert_eq!(Isolation::from_level(1), Some(Isolation::ReadCommitted));
    for level in [-1, 2, i8::MAX, i8::MIN] {
        assert_eq!(Isolation::from_level(level), None, "level {level}");
    }
}
