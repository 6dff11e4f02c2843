//! Log compaction (`cleanup.policy` compact): keeping the last record of
//! every key, as Kafka's log cleaner does. On the owning shard, on its bulk
//! task queue, one partition at a time, so produce and fetch come first.
//!
//! A pass over one partition:
//! 1. **Plan** (synchronously): the cleanable range is whole sealed
//!    segments below the first uncleanable offset: the active segment's
//!    base, the last stable offset (never past an open transaction), and the
//!    first segment with records younger than `min.compaction.lag.ms`. The
//!    part written since the last pass (from the checkpoint, the *first
//!    dirty offset*) is dirty; the partition is due when the dirty share is
//!    at least `min.cleanable.dirty.ratio`, when its oldest dirty segment is
//!    older than `max.compaction.lag.ms`, or when a delete horizon stamped
//!    by an earlier pass has passed.
//! 2. **Key map**: the dirty range is read and the latest offset of every
//!    key recorded (a 128-bit hash of the key → offset; 32 bytes per key,
//!    bounded by `compaction_key_map_bytes_max`). Aborted transactional data
//!    and control batches are not mapped. When the map is full, the pass
//!    ends its map there; the rest is left for the next pass.
//! 3. **Clean**: every segment from the log start up to the map's end is
//!    rewritten, consecutive segments merged while their original sizes fit
//!    `segment.bytes`. A record stays when it has a key and no later record
//!    of that key is mapped; tombstones stay until the delete horizon
//!    stamped on their batch by the first pass that kept them
//!    (`delete.retention.ms` later) has passed; aborted transactional data
//!    goes; a transaction marker stays while data of its transaction stays,
//!    and after that until its own horizon. Offsets never change; batches
//!    are rewritten with their own codec (`protocol::batch_filter`).
//! 4. **Swap**, per group, so a crash at any point leaves the old or the new
//!    set of files, never neither: the new data is written to
//!    `<base>.log.cleaned` and fsynced; renamed to `<base>.<end>.swap`
//!    (the commit point; `end` is where the group ends); then the group's
//!    index files and its other `.log` files are removed and the `.swap` is
//!    renamed over `<base>.log`. Recovery ([`recover_swaps`]) deletes
//!    `.cleaned` files and completes `.swap` files the same way. Reads
//!    planned on the old files finish from the open file descriptors.
//! 5. The checkpoint (first dirty offset = the map's end) is persisted in
//!    `cleaner-offset-checkpoint`.
//!
//! The head permit is held for the whole pass: retention and DeleteRecords
//! of this partition wait (the segment list's head does not move under a
//! pass). Appends do not wait: they only touch the active segment.

use std::{
    cell::Cell,
    collections::HashMap,
    hash::{Hash, Hasher},
    path::{Path, PathBuf},
    rc::Rc,
};

use bytes::Bytes;
use futures_lite::AsyncWriteExt;
use glommio::io::{DmaFile, DmaStreamWriterBuilder};

use super::{
    blocking, now_ms,
    partition::PartitionLog,
    producer_state::AbortedTxn,
    retention::{read_offset_file, write_offset_file},
    scan::{BatchCursor, Next, ScanStop},
    segment::{self, BatchPlacement, Segment},
    LogError,
};
use crate::protocol::{
    batch_filter::{self, Filtered},
    record_batch::{self, BatchHeader, DECOMPRESSED_RECORDS_BYTES_MAX},
};

/// Where the first dirty offset is kept between passes and restarts.
pub const CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";
/// Longest stretch of a compaction pass's work between two yields.
const COMPACTION_SLICE_US: u64 = 200;
/// Records a pass goes through between two looks at the clock.
const RECORDS_PER_BREATH: usize = 64;
/// Bytes one key takes in the key map (hash, offset, the table's slack).
pub const KEY_MAP_ENTRY_BYTES: usize = 32;

/// Per-log cleaner state, in memory (the checkpoint is also on disk).
#[derive(Debug)]
pub struct CleanerState {
    /// Everything below was cleaned by an earlier pass.
    first_dirty_offset: Cell<i64>,
    /// The earliest delete horizon an earlier pass stamped on a kept batch
    /// (i64::MAX: none known). Unknown after a restart: 0, so the first
    /// pass after a restart may clean to find them again.
    horizon_due_ms: Cell<i64>,
}

impl CleanerState {
    pub fn load(dir: &Path) -> CleanerState {
        CleanerState {
            first_dirty_offset: Cell::new(read_offset_file(dir, CHECKPOINT_FILE).unwrap_or(0)),
            horizon_due_ms: Cell::new(0),
        }
    }
}

/// The latest offset of every key seen, by a 128-bit hash of the key.
pub struct KeyMap {
    latest: HashMap<u128, i64>,
    entries_max: usize,
}

impl KeyMap {
    /// A map of at most `bytes_max / KEY_MAP_ENTRY_BYTES` keys, sized at
    /// once for `expected_keys` of them: growing a large table rehashes it
    /// in one step, a stall the shard's producers would see.
    pub fn new(bytes_max: usize, expected_keys: usize) -> KeyMap {
        let entries_max = (bytes_max / KEY_MAP_ENTRY_BYTES).max(1);
        KeyMap {
            latest: HashMap::with_capacity(expected_keys.min(entries_max)),
            entries_max,
        }
    }

    fn hash(key: &[u8]) -> u128 {
        // Two SipHash-1-3 digests with different prefixes: 128 bits, so a
        // collision (which would drop a live record) is out of reach.
        let mut high = std::collections::hash_map::DefaultHasher::new();
        0u8.hash(&mut high);
        key.hash(&mut high);
        let mut low = std::collections::hash_map::DefaultHasher::new();
        1u8.hash(&mut low);
        key.hash(&mut low);
        (u128::from(high.finish()) << 64) | u128::from(low.finish())
    }

    /// Records `offset` as the latest of `key`; false when the map is full
    /// and the key is new (nothing recorded).
    pub fn insert(&mut self, key: &[u8], offset: i64) -> bool {
        let hash = Self::hash(key);
        if self.latest.len() >= self.entries_max && !self.latest.contains_key(&hash) {
            return false;
        }
        self.latest.insert(hash, offset);
        true
    }

    pub fn latest(&self, key: &[u8]) -> Option<i64> {
        self.latest.get(&Self::hash(key)).copied()
    }

    pub fn len(&self) -> usize {
        self.latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }
}

/// A segment a pass reads, captured without holding the log's state.
#[derive(Clone)]
struct SegmentRef {
    base_offset: i64,
    next_offset: i64,
    file: Rc<DmaFile>,
    path: PathBuf,
    size_bytes: u64,
}

struct Plan {
    /// Every sealed segment from the first one up to the first uncleanable
    /// offset, in order.
    segments: Vec<SegmentRef>,
    first_dirty_offset: i64,
    aborted: Vec<AbortedTxn>,
    segment_bytes: u64,
    delete_retention_ms: i64,
}

/// What one pass did (for logs, tests and the closing benchmarks).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Cleaned {
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_removed: u64,
    pub keys_mapped: usize,
    /// The first dirty offset after the pass.
    pub map_end_offset: i64,
    pub groups: usize,
}

impl PartitionLog {
    /// The dirty share of the cleanable range if this log is due for
    /// cleaning at `now_ms` (None: not compacted, or nothing to do).
    pub fn compaction_due(&self, now_ms: i64) -> Option<f64> {
        let config = self.config();
        if !config.cleanup_policy.compact {
            return None;
        }
        let plan = self.plan_clean(now_ms)?;
        let (mut dirty, mut clean) = (0u64, 0u64);
        let mut oldest_dirty_ms = None;
        for segment in &plan.segments {
            if segment.next_offset > plan.first_dirty_offset {
                dirty += segment.size_bytes;
                oldest_dirty_ms.get_or_insert(self.segment_max_timestamp(segment.base_offset));
            } else {
                clean += segment.size_bytes;
            }
        }
        let ratio = if dirty + clean == 0 {
            0.0
        } else {
            dirty as f64 / (dirty + clean) as f64
        };
        let by_ratio = dirty > 0 && ratio >= config.min_cleanable_dirty_ratio;
        let by_lag =
            oldest_dirty_ms.is_some_and(|ts| now_ms.saturating_sub(ts) > config.max_compaction_lag_ms);
        let by_horizon = clean > 0 && self.cleaner.horizon_due_ms.get() <= now_ms;
        (by_ratio || by_lag || by_horizon).then_some(ratio)
    }

    fn segment_max_timestamp(&self, base_offset: i64) -> i64 {
        let state = self.state.borrow();
        state
            .segments
            .iter()
            .find(|s| s.base_offset == base_offset)
            .map_or(i64::MAX, |s| s.max_timestamp_ms)
    }

    /// The cleanable range now, or None when it is empty.
    fn plan_clean(&self, now_ms: i64) -> Option<Plan> {
        let config = self.config();
        let last_stable_offset = self.last_stable_offset();
        let state = self.state.borrow();
        if state.offline.is_some() {
            return None;
        }
        let lag_cutoff = now_ms.saturating_sub(config.min_compaction_lag_ms);
        let active_base = state.segments.last().map_or(0, |s| s.base_offset);
        let uncleanable = active_base.min(last_stable_offset);
        let segments: Vec<SegmentRef> = state
            .segments
            .iter()
            .take_while(|s| s.sealed && s.next_offset <= uncleanable && s.max_timestamp_ms <= lag_cutoff)
            .map(|s| SegmentRef {
                base_offset: s.base_offset,
                next_offset: s.next_offset,
                file: s.file.clone(),
                path: s.path.clone(),
                size_bytes: s.size_bytes,
            })
            .collect();
        let end = segments.last()?.next_offset;
        Some(Plan {
            segments,
            first_dirty_offset: self
                .cleaner
                .first_dirty_offset
                .get()
                .max(state.log_start_offset)
                .min(end),
            aborted: state
                .producers
                .aborted_markers_in(i64::MIN, end)
                .copied()
                .collect(),
            segment_bytes: config.segment_bytes,
            delete_retention_ms: config.delete_retention_ms,
        })
    }

    /// One compaction pass (see the module doc). `key_map_bytes_max`
    /// bounds the key map.
    pub async fn compact(
        &self,
        now_ms: i64,
        key_map_bytes_max: usize,
        pace: Pace<'_>,
    ) -> Result<Cleaned, LogError> {
        let _permit = self.head_permit().await?;
        let started = std::time::Instant::now();
        let Some(plan) = self.plan_clean(now_ms) else {
            return Ok(Cleaned::default());
        };
        // The checkpoint exists before the first swap: recovery allows
        // gaps in sealed segments only in a log that has one.
        let checkpoint = self.dir.join(CHECKPOINT_FILE);
        if !checkpoint.exists() {
            let (dir, first_dirty) = (self.dir.clone(), plan.first_dirty_offset);
            blocking(move || write_offset_file(&dir, CHECKPOINT_FILE, first_dirty))
                .await
                .map_err(|e| LogError::io("write", &checkpoint, e))?;
        }
        let is_aborted = |producer_id: i64, offset: i64| {
            plan.aborted
                .iter()
                .any(|a| a.producer_id == producer_id && a.first_offset <= offset && offset < a.last_offset)
        };
        // 2. The key map of the dirty range.
        // At most one key per 32 bytes of dirty log (a record with a key
        // takes more): the map never grows during the pass.
        let dirty_bytes: u64 = plan
            .segments
            .iter()
            .filter(|s| s.next_offset > plan.first_dirty_offset)
            .map(|s| s.size_bytes)
            .sum();
        let mut map = KeyMap::new(
            key_map_bytes_max,
            usize::try_from(dirty_bytes / 32).unwrap_or(usize::MAX),
        );
        let mut breather = Breather::new(pace);
        let mut map_end = plan.segments.last().map_or(0, |s| s.next_offset);
        let mut bytes_read = 0u64;
        'segments: for segment in plan
            .segments
            .iter()
            .filter(|s| s.next_offset > plan.first_dirty_offset)
        {
            let mut batches = BatchCursor::new(&segment.file, &segment.path, 0, segment.size_bytes);
            loop {
                let (batch, header) = match batches.next().await? {
                    Next::Batch(_, batch, header) => (batch, header),
                    Next::End(outcome) => {
                        readable_to_end(&segment.path, &outcome.stop)?;
                        bytes_read += outcome.valid_end;
                        break;
                    }
                };
                // The shard's produce and fetch come first.
                breather.start_batch(batch.len(), header.records_count);
                if header.last_offset() < plan.first_dirty_offset
                    || header.is_control()
                    || (header.is_transactional() && is_aborted(header.producer_id, header.base_offset))
                {
                    breather.end_batch().await;
                    continue;
                }
                let section = record_batch::records_section(&batch, &header, DECOMPRESSED_RECORDS_BYTES_MAX)
                    .map_err(|e| damaged(&segment.path, header.base_offset, &e))?;
                for (index, record) in record_batch::records_in(&section, &header).enumerate() {
                    breather.record(index).await;
                    let record =
                        record.map_err(|e| damaged(&segment.path, header.base_offset, &e.to_string()))?;
                    let offset = header.base_offset + i64::from(record.offset_delta);
                    if let Some(key) = record.key {
                        if offset >= plan.first_dirty_offset && !map.insert(key, offset) {
                            // Records from `offset` on were not mapped:
                            // they, and everything after, stay as they are
                            // this pass.
                            map_end = offset;
                            break 'segments;
                        }
                    }
                }
                breather.end_batch().await;
            }
        }
        log::debug!(
            "{}-{}: key map of {} keys to offset {map_end} built from {bytes_read} bytes in {} ms",
            self.topic,
            self.partition,
            map.len(),
            started.elapsed().as_millis()
        );
        // 3. Rewrite from the first segment through the one holding the
        // map's end, in groups.
        let rewritten: Vec<&SegmentRef> = plan.segments.iter().filter(|s| s.base_offset < map_end).collect();
        let groups = group_segments(&rewritten, plan.segment_bytes);
        let horizon_ms = now_ms.saturating_add(plan.delete_retention_ms);
        let mut pass = Pass {
            map: &map,
            map_end,
            now_ms,
            horizon_ms,
            is_aborted: &is_aborted,
            txn_has_data: HashMap::new(),
            earliest_horizon_ms: i64::MAX,
            records_removed: 0,
            breather,
        };
        let mut cleaned = Cleaned {
            keys_mapped: map.len(),
            map_end_offset: map_end,
            bytes_read,
            groups: groups.len(),
            ..Cleaned::default()
        };
        for group in &groups {
            cleaned.bytes_written += self.clean_group(group, &mut pass).await?;
        }
        pass.breather.finish();
        cleaned.records_removed = pass.records_removed;
        // 5. The checkpoint.
        self.cleaner.first_dirty_offset.set(map_end);
        self.cleaner.horizon_due_ms.set(pass.earliest_horizon_ms);
        let dir = self.dir.clone();
        super::off_shard(move || write_offset_file(&dir, CHECKPOINT_FILE, map_end))
            .await
            .map_err(|e| LogError::io("write", &self.dir.join(CHECKPOINT_FILE), e))?;
        if let Some((cache, log_id)) = &*self.tail_cache.borrow() {
            // Cached copies of what was rewritten would serve the old bytes.
            cache.evict_below(*log_id, rewritten.last().map_or(0, |s| s.next_offset));
        }
        let cleaned_bytes: u64 = rewritten.iter().map(|s| s.size_bytes).sum();
        let elapsed = started.elapsed();
        log::info!(
            "{}-{}: compacted to offset {map_end}: {} keys, {cleaned_bytes} -> {} bytes in {} segment(s), {} records removed, in {} ms ({:.0} MB/s cleaned)",
            self.topic,
            self.partition,
            cleaned.keys_mapped,
            cleaned.bytes_written,
            cleaned.groups,
            cleaned.records_removed,
            elapsed.as_millis(),
            cleaned_bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-6)
        );
        Ok(cleaned)
    }

    /// Rewrites one group of segments into one and swaps it in. Returns
    /// the bytes written.
    async fn clean_group(&self, group: &[&SegmentRef], pass: &mut Pass<'_>) -> Result<u64, LogError> {
        let base_offset = group[0].base_offset;
        let end_offset = group.last().map_or(base_offset, |s| s.next_offset);
        let cleaned_path = cleaned_path(&self.dir, base_offset);
        let owned = cleaned_path.clone();
        blocking(move || match std::fs::remove_file(&owned) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await
        .map_err(|e| LogError::io("unlink", &cleaned_path, e))?;
        let file = segment::open_dma(&cleaned_path, true).await?;
        let mut writer = DmaStreamWriterBuilder::new(file)
            .with_buffer_size(1024 * 1024)
            .with_write_behind(2)
            .build();
        // The new segment's in-memory indexes, built as batches are written.
        let placeholder = Rc::new(segment::open_dma(&group[0].path, false).await?);
        let mut new_segment = Segment::empty(
            segment::log_path(&self.dir, base_offset),
            placeholder,
            base_offset,
        );
        let write_failed = |e: std::io::Error| LogError::io("write", &cleaned_path, e);
        for segment in group {
            let mut batches = BatchCursor::new(&segment.file, &segment.path, 0, segment.size_bytes);
            loop {
                let (batch, header) = match batches.next().await? {
                    Next::Batch(_, batch, header) => (batch, header),
                    Next::End(outcome) => {
                        readable_to_end(&segment.path, &outcome.stop)?;
                        break;
                    }
                };
                pass.breather.start_batch(batch.len(), header.records_count);
                let filtered = pass
                    .filter(&batch, &header)
                    .await
                    .map_err(|e| damaged(&segment.path, header.base_offset, &e))?;
                pass.breather.end_batch().await;
                let Some(kept) = filtered else {
                    continue;
                };
                let kept_header = BatchHeader::parse(&kept).expect("a filtered batch parses");
                new_segment.record_batch(BatchPlacement {
                    base_offset: kept_header.base_offset,
                    last_offset: kept_header.last_offset(),
                    max_timestamp_ms: kept_header.max_timestamp,
                    position: new_segment.size_bytes,
                    size_bytes: kept.len() as u64,
                });
                super::fault::check("log::compaction::write").map_err(write_failed)?;
                writer.write_all(&kept).await.map_err(write_failed)?;
            }
        }
        writer.close().await.map_err(write_failed)?;
        // 4. The swap (see the module doc), then the new segment in memory.
        let bases: Vec<i64> = group.iter().map(|s| s.base_offset).collect();
        let dir = self.dir.clone();
        super::off_shard(move || swap_in(&dir, &bases, end_offset)).await?;
        let file = Rc::new(segment::open_dma(&segment::log_path(&self.dir, base_offset), false).await?);
        new_segment.file = file;
        new_segment.next_offset = end_offset;
        new_segment.sealed = true;
        new_segment.finish_time_index();
        let index_files = new_segment.index_files();
        let written = new_segment.size_bytes;
        let txn_index: Vec<u8> = {
            let mut state = self.state.borrow_mut();
            let first = state
                .segments
                .iter()
                .position(|s| s.base_offset == base_offset)
                .expect("the head permit keeps the cleaned segments in the log");
            assert!(
                state.segments[first..first + group.len()]
                    .iter()
                    .map(|s| s.base_offset)
                    .eq(group.iter().map(|s| s.base_offset)),
                "the cleaned group is still in the log"
            );
            state.segments.splice(first..first + group.len(), [new_segment]);
            let mut bytes = Vec::new();
            for aborted in state.producers.aborted_markers_in(base_offset, end_offset) {
                aborted.encode_index_entry(&mut bytes);
            }
            bytes
        };
        segment::write_index_files(index_files).await?;
        if !txn_index.is_empty() {
            let path = segment::txn_index_path(&self.dir, base_offset);
            blocking(|| std::fs::write(&path, &txn_index))
                .await
                .map_err(|e| LogError::io("write", &segment::txn_index_path(&self.dir, base_offset), e))?;
        }
        Ok(written)
    }
}

/// A segment the pass could not read to its end is left alone (and the
/// pass with it): recovery decides about damage, not the cleaner.
fn readable_to_end(path: &Path, stop: &ScanStop) -> Result<(), LogError> {
    match stop {
        ScanStop::End => Ok(()),
        other => Err(LogError::Offline {
            reason: format!("{}: compaction stopped: {other:?}", path.display()),
        }),
    }
}

fn damaged(path: &Path, base_offset: i64, why: &str) -> LogError {
    LogError::Offline {
        reason: format!("{}: batch at offset {base_offset}: {why}", path.display()),
    }
}

/// The decisions of one pass, carried from group to group.
struct Pass<'a> {
    map: &'a KeyMap,
    map_end: i64,
    now_ms: i64,
    /// Stamped on batches that keep something deletable later.
    horizon_ms: i64,
    is_aborted: &'a dyn Fn(i64, i64) -> bool,
    /// Producers whose current transaction has data kept by this pass.
    txn_has_data: HashMap<i64, bool>,
    earliest_horizon_ms: i64,
    records_removed: u64,
    breather: Breather<'a>,
}

/// The rest a pass takes after cleaning some bytes (`Duration::ZERO`: go
/// on). The shard charges them to its catch-up pacing bucket
/// (`fetch::pacing`): the cleaner is background work like a catch-up
/// reader and gets what producers leave over.
pub type Pace<'a> = &'a dyn Fn(u64) -> std::time::Duration;

/// A pass that never rests (tests, tools).
pub fn unpaced(_bytes: u64) -> std::time::Duration {
    std::time::Duration::ZERO
}

/// Ends a slice of the pass's work every `COMPACTION_SLICE_US`: the bytes
/// it went through are charged to the pace, and the pass either sleeps
/// the rest it was given or, with none, hands the shard to the other task
/// queues.
///
/// Why both: a pass is CPU-bound, and on a shard it competes not only with
/// tasks (which glommio's shares and yields order) but with the kernel work
/// that carries the shard's own I/O: the io_uring workers that run
/// extending O_DIRECT writes and fsyncs, softirqs of the network and block
/// completions, all on the shard's core. Yielding does not give them the
/// core; only a shard with nothing to run parks. Measured with yields
/// alone: a 10k msgs/s producer's p50 went from 0.5 to ~11 ms for the
/// whole pass (acks=all), on a core that producer alone keeps ~95% busy.
struct Breather<'a> {
    since: std::time::Instant,
    /// Bytes gone through and not yet charged to the pace.
    bytes: u64,
    /// The batch being gone through: its bytes, records, and the bytes
    /// already counted of it (its records share its bytes evenly, so a
    /// large batch is charged as it goes, not at once).
    batch: (u64, u64, u64),
    pace: Pace<'a>,
}

impl<'a> Breather<'a> {
    fn new(pace: Pace<'a>) -> Breather<'a> {
        Breather {
            since: std::time::Instant::now(),
            bytes: 0,
            batch: (0, 1, 0),
            pace,
        }
    }

    fn start_batch(&mut self, bytes: usize, records: i32) {
        self.batch = (bytes as u64, u64::try_from(records).unwrap_or(0).max(1), 0);
    }

    /// Called after each record of the batch (`done` so far); looks at the
    /// clock every `RECORDS_PER_BREATH` records.
    async fn record(&mut self, done: usize) {
        if done % RECORDS_PER_BREATH == 0 {
            self.count_through(done as u64);
            self.breathe().await;
        }
    }

    /// The batch is done (or skipped whole).
    async fn end_batch(&mut self) {
        self.count_through(u64::MAX);
        self.breathe().await;
    }

    fn count_through(&mut self, done: u64) {
        let (bytes, records, counted) = self.batch;
        let through = bytes * done.min(records) / records;
        self.bytes += through.saturating_sub(counted);
        self.batch.2 = through.max(counted);
    }

    /// Charges what is left at the end of a pass (no rest: it is done).
    fn finish(&mut self) {
        let _ = (self.pace)(std::mem::take(&mut self.bytes));
    }

    async fn breathe(&mut self) {
        if self.since.elapsed() < std::time::Duration::from_micros(COMPACTION_SLICE_US) {
            return;
        }
        let rest = (self.pace)(std::mem::take(&mut self.bytes));
        if rest.is_zero() {
            glommio::executor().yield_task_queue_now().await;
        } else {
            glommio::timer::sleep(rest).await;
        }
        self.since = std::time::Instant::now();
    }
}

impl Pass<'_> {
    /// The batch to write for `batch` (None: it goes).
    async fn filter(&mut self, batch: &Bytes, header: &BatchHeader) -> Result<Option<Bytes>, String> {
        let expired =
            |header: &BatchHeader| batch_filter::delete_horizon(header).is_some_and(|h| self.now_ms >= h);
        if header.is_control() {
            // A marker stays while its transaction has data, then until
            // its own horizon.
            let has_data = self.txn_has_data.remove(&header.producer_id).unwrap_or(false);
            if !has_data && expired(header) {
                self.records_removed += u64::try_from(header.records_count).unwrap_or(0);
                return Ok(None);
            }
            let horizon = (!has_data).then_some(self.horizon_ms);
            let filtered = batch_filter::filter_batch(batch, header, |_, _| true, horizon)?;
            return Ok(self.account(batch, header, filtered));
        }
        if header.is_transactional() && (self.is_aborted)(header.producer_id, header.base_offset) {
            self.records_removed += u64::try_from(header.records_count).unwrap_or(0);
            return Ok(None);
        }
        let tombstones_expired = expired(header);
        // Record by record, yielding the shard now and then: a batch can
        // hold thousands of records (a 1 MiB batch takes milliseconds).
        let section = record_batch::records_section(batch, header, DECOMPRESSED_RECORDS_BYTES_MAX)?;
        let mut kept = Vec::new();
        let mut total = 0usize;
        for record in record_batch::records_in(&section, header) {
            let record = record.map_err(|e| e.to_string())?;
            total += 1;
            let offset = header.base_offset.wrapping_add(i64::from(record.offset_delta));
            // Kafka's cleaner drops records without a key.
            let latest = record.key.is_some_and(|key| {
                offset >= self.map_end || self.map.latest(key).is_none_or(|latest| latest <= offset)
            });
            if latest && !(record.value.is_none() && tombstones_expired) {
                kept.push(record);
            }
            self.breather.record(total).await;
        }
        let filtered = batch_filter::rebuild_filtered(batch, header, &kept, total, Some(self.horizon_ms))?;
        let kept = self.account(batch, header, filtered);
        if header.is_transactional() {
            let entry = self.txn_has_data.entry(header.producer_id).or_insert(false);
            *entry |= kept.is_some();
        }
        Ok(kept)
    }

    /// The bytes `filtered` leaves of `batch`, counted.
    fn account(&mut self, batch: &Bytes, header: &BatchHeader, filtered: Filtered) -> Option<Bytes> {
        let kept = match filtered {
            Filtered::Unchanged => Some(batch.clone()),
            Filtered::Empty => None,
            Filtered::Rewritten(bytes) => Some(Bytes::from(bytes)),
        };
        let kept_records = kept.as_ref().map_or(0, |bytes| {
            BatchHeader::parse(bytes).map_or(0, |h| {
                // Only a horizon still ahead can make a later pass useful.
                if let Some(horizon) = batch_filter::delete_horizon(&h).filter(|&h| h > self.now_ms) {
                    self.earliest_horizon_ms = self.earliest_horizon_ms.min(horizon);
                }
                h.records_count
            })
        });
        self.records_removed += u64::try_from(header.records_count.saturating_sub(kept_records)).unwrap_or(0);
        kept
    }
}

/// Consecutive segments merged while their original sizes fit one segment
/// (and their offsets one segment's u32 range).
fn group_segments<'a>(segments: &[&'a SegmentRef], segment_bytes: u64) -> Vec<Vec<&'a SegmentRef>> {
    let mut groups: Vec<Vec<&SegmentRef>> = Vec::new();
    for &segment in segments {
        let fits = groups.last().is_some_and(|group| {
            let bytes: u64 = group.iter().map(|s| s.size_bytes).sum();
            bytes + segment.size_bytes <= segment_bytes
                && segment.next_offset - group[0].base_offset <= i64::from(u32::MAX)
        });
        match groups.last_mut() {
            Some(group) if fits => group.push(segment),
            _ => groups.push(vec![segment]),
        }
    }
    groups
}

fn cleaned_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}.log.cleaned"))
}

fn swap_path(dir: &Path, base_offset: i64, end_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}.{end_offset:020}.swap"))
}

/// The swap of a cleaned group (blocking file operations, inline): the
/// `.cleaned` file becomes `<base>.<end>.swap` (the commit point), then
/// [`complete_swap`].
fn swap_in(dir: &Path, bases: &[i64], end_offset: i64) -> Result<(), LogError> {
    let base_offset = bases[0];
    let swap = swap_path(dir, base_offset, end_offset);
    super::fault::check("log::compaction::rename").map_err(|e| LogError::io("rename", &swap, e))?;
    std::fs::rename(cleaned_path(dir, base_offset), &swap).map_err(|e| LogError::io("rename", &swap, e))?;
    crate::metadata::store::sync_directory(dir).map_err(|e| LogError::io("fsync", dir, e))?;
    super::fault::check("log::compaction::swap").map_err(|e| LogError::io("rename", &swap, e))?;
    complete_swap(dir, base_offset, end_offset, bases)
}

/// Replaces the segments `bases` (all within `[base, end)`) by the swap
/// file: their index files and other `.log` files go, then the swap is
/// renamed over `<base>.log`. Idempotent, so recovery can redo it.
fn complete_swap(dir: &Path, base_offset: i64, end_offset: i64, bases: &[i64]) -> Result<(), LogError> {
    for &base in bases {
        for path in [
            segment::index_path(dir, base),
            segment::time_index_path(dir, base),
            segment::txn_index_path(dir, base),
        ] {
            remove_if_present(&path)?;
        }
        if base != base_offset {
            remove_if_present(&segment::log_path(dir, base))?;
        }
    }
    let swap = swap_path(dir, base_offset, end_offset);
    std::fs::rename(&swap, segment::log_path(dir, base_offset))
        .map_err(|e| LogError::io("rename", &swap, e))?;
    crate::metadata::store::sync_directory(dir).map_err(|e| LogError::io("fsync", dir, e))
}

fn remove_if_present(path: &Path) -> Result<(), LogError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LogError::io("unlink", path, e)),
        _ => Ok(()),
    }
}

/// At open, before the segments are listed: a `.cleaned` file is an
/// unfinished pass (removed); a `.swap` file is a committed one (completed:
/// every `.log` inside its range goes, it becomes `<base>.log`).
pub fn recover_swaps(dir: &Path) -> Result<(), LogError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(LogError::io("list", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io("list", dir, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    for name in &names {
        if name.ends_with(".log.cleaned") {
            log::warn!(
                "{}: an unfinished compaction pass; removed",
                dir.join(name).display()
            );
            remove_if_present(&dir.join(name))?;
        }
    }
    for name in &names {
        let Some((base, end)) = parse_swap_name(name) else {
            continue;
        };
        let bases: Vec<i64> = names
            .iter()
            .filter_map(|n| segment::parse_log_file_name(n))
            .filter(|&b| base <= b && b < end)
            .collect();
        log::warn!("{}: completing a compaction swap", dir.join(name).display());
        complete_swap(dir, base, end, &bases)?;
    }
    Ok(())
}

fn parse_swap_name(name: &str) -> Option<(i64, i64)> {
    let stem = name.strip_suffix(".swap")?;
    let (base, end) = stem.split_once('.')?;
    let digits = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
    (digits(base) && digits(end)).then(|| Some((base.parse().ok()?, end.parse().ok()?)))?
}

/// Every `compaction_check_interval_ms`, cleans the compacted partitions of
/// this shard that are due, dirtiest first, one at a time, on the shard's
/// bulk task queue.
pub async fn run_compaction(shard: Rc<crate::shard::Shard>) {
    let interval = std::time::Duration::from_millis(shard.config.compaction_check_interval_ms);
    while !shard.stopping.get() {
        glommio::timer::sleep(interval).await;
        loop {
            if shard.stopping.get() {
                return;
            }
            let now = now_ms();
            let dirtiest = shard
                .logs()
                .into_iter()
                .filter_map(|log| log.compaction_due(now).map(|ratio| (ratio, log)))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            let Some((_, log)) = dirtiest else { break };
            // The pass is paced like a catch-up reader (see `Breather`).
            let pace = |bytes: u64| {
                let now = std::time::Instant::now();
                shard.catch_up_pacer.cleaner_rest(bytes, now, now_ms())
            };
            match log
                .compact(now, shard.config.compaction_key_map_bytes_max, &pace)
                .await
            {
                // A pass that could not move (nothing cleanable) ends the round.
                Ok(cleaned) if cleaned.groups == 0 => break,
                Ok(_) => {}
                Err(e) => {
                    crate::error_limited!(
                        "compaction failed",
                        "{}-{}: compaction: {e}",
                        log.topic,
                        log.partition
                    );
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_map_is_bounded_and_keeps_the_latest_offset() {
        let mut map = KeyMap::new(2 * KEY_MAP_ENTRY_BYTES, 16);
        assert!(map.insert(b"a", 1));
        assert!(map.insert(b"b", 2));
        assert!(map.insert(b"a", 3), "a known key always fits");
        assert!(!map.insert(b"c", 4), "full");
        assert_eq!(
            (map.latest(b"a"), map.latest(b"b"), map.latest(b"c")),
            (Some(3), Some(2), None)
        );
    }

    #[test]
    fn swap_names_round_trip() {
        let dir = Path::new("/d");
        let swap = swap_path(dir, 5, 900);
        let name = swap.file_name().and_then(|n| n.to_str()).expect("name");
        assert_eq!(parse_swap_name(name), Some((5, 900)));
        assert_eq!(parse_swap_name("00000000000000000005.log"), None);
    }
}
