//! One partition's log on its owning shard: offset assignment, group-written
//! O_DIRECT appends, group-committed fdatasync, segment rolling, and reads.
//!
//! Appends are split in two steps so that many producers share one write:
//! 1. `assign` (synchronous): offsets are given in arrival order and the
//!    batch joins the `pending` queue;
//! 2. `write_through(target)`: under the partition's write permit, whoever
//!    gets it first writes *every* pending batch (up to
//!    `append_write_bytes_max` per write) in one aligned O_DIRECT write. The
//!    others find their batches already written when their turn comes.
//!
//! `sync_through` does the same for fdatasync: one sync covers every batch
//! written before it started. A sealed segment is fdatasync'ed when it is
//! rolled, so syncing the active segment covers everything written.
//!
//! Invariants: `high_watermark == active segment's next_offset`; offsets in
//! `pending` are contiguous from `high_watermark`; `synced_offset <=
//! high_watermark <= next_offset`.

use std::{cell::RefCell, collections::VecDeque, path::PathBuf, rc::Rc};

use bytes::{Bytes, BytesMut};
use glommio::{io::DmaFile, sync::Semaphore};

use super::{
    blocking, now_ms,
    preallocate::{Reservation, ZeroAhead},
    producer_state::{self, Admission, ProducerEntry, ProducerStates},
    region::FileRegion,
    scan::{scan_batches, Visit},
    segment::{self, BatchPlacement, Segment},
    tail_cache::{LogId, TailCache},
    LogError,
};
use crate::{
    metadata::{TimestampType, TopicConfig},
    protocol::{
        control_record,
        record_batch::{self, BatchHeader},
    },
};

/// A batch waiting for its write.
struct PendingBatch {
    bytes: Bytes,
    base_offset: i64,
    last_offset: i64,
    max_timestamp_ms: i64,
}

pub struct LogState {
    pub segments: Vec<Segment>,
    pub next_offset: i64,
    pub high_watermark: i64,
    pub synced_offset: i64,
    pub log_start_offset: i64,
    pending: VecDeque<PendingBatch>,
    /// Set after an I/O error or corruption: appends are refused.
    pub offline: Option<String>,
    /// The log went offline by an I/O error while running (not by damage
    /// found at recovery): the shard reopens it from disk once the fault
    /// may have cleared (`Shard::repair_logs`).
    pub offline_repairable: bool,
    pub alignment: u64,
    /// Idempotence state of every producer id that wrote here (covers every
    /// assigned batch, written or pending).
    pub producers: ProducerStates,
}

impl LogState {
    /// State of a recovered log whose segments are all written and synced.
    pub fn recovered(
        segments: Vec<Segment>,
        alignment: u64,
        offline: Option<String>,
        producers: ProducerStates,
    ) -> LogState {
        assert!(!segments.is_empty(), "a log has at least one segment");
        let next_offset = segments.last().map(|s| s.next_offset).unwrap_or(0);
        let log_start_offset = segments.first().map(|s| s.base_offset).unwrap_or(0);
        LogState {
            segments,
            next_offset,
            high_watermark: next_offset,
            synced_offset: next_offset,
            log_start_offset,
            pending: VecDeque::new(),
            offline,
            offline_repairable: false,
            alignment,
            producers,
        }
    }

    fn active(&self) -> &Segment {
        self.segments.last().expect("a log has at least one segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments.last_mut().expect("a log has at least one segment")
    }
}

/// Where an appended batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    pub base_offset: i64,
    /// The broker's timestamp for LogAppendTime topics, else -1.
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
    /// The batch was a producer's retry of one already in the log: these
    /// are the original offsets and nothing was appended.
    pub duplicate: bool,
    /// Microseconds until the batch was written, then until it was synced
    /// (0 when it was not waited for).
    pub write_us: u64,
    pub sync_us: u64,
}

/// Batches read for a fetch: whole batches only, in offset order.
#[derive(Debug, Default)]
pub struct ReadOutcome {
    pub batches: Vec<Bytes>,
    pub bytes: usize,
    pub high_watermark: i64,
    /// The last stable offset when the read was planned (read_committed
    /// reads return only batches below it).
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// read_committed: aborted transactions (producer id, first offset)
    /// overlapping `[fetch offset, offset after the last batch returned)`
    /// (empty when nothing is returned); read_uncommitted: None.
    pub aborted_transactions: Option<Vec<(i64, i64)>>,
    /// Served from the shard's tail cache (no I/O).
    pub from_tail_cache: bool,
    /// Cold data as a region of a segment file (when the log plans cold
    /// reads as regions); `batches` is then empty and `bytes` its length.
    pub region: Option<FileRegion>,
}

/// How far an append must get before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Nobody waits (acks=0): still written in order, errors only logged.
    None,
    /// The O_DIRECT write completed.
    Written,
    /// An fdatasync covering the batch completed.
    Synced,
}

pub struct PartitionLog {
    pub topic: String,
    pub partition: i32,
    pub dir: PathBuf,
    /// Changed at runtime by AlterConfigs (read anew by every roll and
    /// retention pass).
    config: std::cell::Cell<TopicConfig>,
    append_write_bytes_max: usize,
    pub(super) state: RefCell<LogState>,
    write_permit: Semaphore,
    sync_permit: Semaphore,
    /// Held while the head of the log changes (retention, DeleteRecords,
    /// compaction).
    pub(super) head_permit: Semaphore,
    /// Where compaction stopped (see `log::compaction`).
    pub(super) cleaner: super::compaction::CleanerState,
    /// Replaced by a copy reopened from disk (`Shard::repair_logs`): a task
    /// still holding this one must not change the files any more.
    retired: std::cell::Cell<bool>,
    /// Woken after every write that moved the high watermark.
    high_watermark_watch: super::watch::HighWatermarkWatch,
    /// The shard's tail cache and this log's id in it, once attached.
    pub(super) tail_cache: RefCell<Option<(Rc<TailCache>, LogId)>>,
    /// Cold reads return file regions (zero-copy path) instead of bytes
    /// read with O_DIRECT.
    pub(super) cold_reads_as_regions: std::cell::Cell<bool>,
    /// Keeps the active segment written with zeros ahead of the appends.
    pub(super) zero_ahead: Rc<ZeroAhead>,
}

impl PartitionLog {
    pub fn new(
        topic: String,
        partition: i32,
        dir: PathBuf,
        config: TopicConfig,
        append_write_bytes_max: usize,
        state: LogState,
    ) -> PartitionLog {
        let cleaner = super::compaction::CleanerState::load(&dir);
        PartitionLog {
            topic,
            partition,
            dir,
            config: std::cell::Cell::new(config),
            append_write_bytes_max,
            state: RefCell::new(state),
            write_permit: Semaphore::new(1),
            sync_permit: Semaphore::new(1),
            head_permit: Semaphore::new(1),
            cleaner,
            retired: std::cell::Cell::new(false),
            high_watermark_watch: Default::default(),
            tail_cache: RefCell::new(None),
            cold_reads_as_regions: std::cell::Cell::new(false),
            zero_ahead: ZeroAhead::new(),
        }
    }

    pub fn config(&self) -> TopicConfig {
        self.config.get()
    }

    /// Applies a topic config changed at runtime.
    pub fn set_config(&self, config: TopicConfig) {
        self.config.set(config);
    }

    pub(super) async fn write_permit(&self) -> Result<glommio::sync::Permit<'_>, LogError> {
        self.write_permit
            .acquire_permit(1)
            .await
            .map_err(|e| LogError::Offline {
                reason: format!("write permit: {e}"),
            })
    }

    /// Marks this log as replaced (see `retired`).
    pub fn retire(&self) {
        self.retired.set(true);
    }

    pub fn is_retired(&self) -> bool {
        self.retired.get()
    }

    /// Offline by an I/O error at runtime (not damage found at recovery):
    /// worth reopening from disk.
    pub fn needs_repair(&self) -> bool {
        let state = self.state.borrow();
        state.offline.is_some() && state.offline_repairable
    }

    pub fn high_watermark(&self) -> i64 {
        self.state.borrow().high_watermark
    }

    pub fn log_start_offset(&self) -> i64 {
        self.state.borrow().log_start_offset
    }

    /// The last stable offset: below it no transaction is open (the high
    /// watermark when none is). read_committed fetches stop here.
    pub fn last_stable_offset(&self) -> i64 {
        let state = self.state.borrow();
        let high_watermark = state.high_watermark;
        state
            .producers
            .first_open_offset()
            .map_or(high_watermark, |first| first.min(high_watermark))
    }

    /// Aborted transactions overlapping `[from_offset, to_offset)` as
    /// (producer id, first offset): what a read_committed fetch of that
    /// range returns as `aborted_transactions`.
    pub fn aborted_transactions(&self, from_offset: i64, to_offset: i64) -> Vec<(i64, i64)> {
        self.state
            .borrow()
            .producers
            .aborted_between(from_offset, to_offset)
    }

    /// Appends one validated batch and waits until it is as durable as
    /// `durability` asks.
    pub async fn append(
        &self,
        batch: Bytes,
        header: &BatchHeader,
        durability: Durability,
    ) -> Result<AppendOutcome, LogError> {
        let (mut outcome, target) = self.assign(batch, header)?;
        let started = std::time::Instant::now();
        self.write_through(target).await?;
        let written = std::time::Instant::now();
        outcome.write_us = crate::metrics::micros(written - started);
        if durability == Durability::Synced {
            self.sync_through(target).await?;
            outcome.sync_us = crate::metrics::micros(written.elapsed());
        }
        Ok(outcome)
    }

    /// Appends a transaction marker (COMMIT or ABORT) for `producer_id` at
    /// `epoch`, ending its transaction here, and returns the marker's
    /// offset. A marker older than the producer's epoch is refused.
    pub async fn append_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
        durability: Durability,
    ) -> Result<i64, LogError> {
        let marker = control_record::Marker {
            commit,
            coordinator_epoch,
        };
        let batch = control_record::encode_marker(producer_id, epoch, marker, now_ms());
        let header = BatchHeader::parse(&batch).expect("a marker batch parses");
        self.append(batch, &header, durability)
            .await
            .map(|outcome| outcome.base_offset)
    }

    /// Step 1: offsets, in arrival order, without waiting. Returns where
    /// the batch is and the offset the append must be written up to (for a
    /// duplicate, the end of the original batch).
    fn assign(&self, batch: Bytes, header: &BatchHeader) -> Result<(AppendOutcome, i64), LogError> {
        let mut state = self.state.borrow_mut();
        if let Some(reason) = &state.offline {
            return Err(LogError::Offline {
                reason: reason.clone(),
            });
        }
        let marker = control_record::parse_marker(&batch, header);
        if marker.is_some() {
            state
                .producers
                .check_marker(header.producer_id, header.producer_epoch)
                .map_err(LogError::Producer)?;
        } else if let Admission::Duplicate(original) =
            state.producers.check(header).map_err(LogError::Producer)?
        {
            let log_append_time_ms = match self.config().timestamp_type {
                TimestampType::LogAppendTime => original.max_timestamp_ms,
                TimestampType::CreateTime => -1,
            };
            let outcome = AppendOutcome {
                base_offset: original.base_offset,
                log_append_time_ms,
                log_start_offset: state.log_start_offset,
                duplicate: true,
                write_us: 0,
                sync_us: 0,
            };
            return Ok((outcome, original.last_offset + 1));
        }
        let base_offset = state.next_offset;
        let last_offset = base_offset + i64::from(header.last_offset_delta);
        let log_append_time_ms = match self.config().timestamp_type {
            TimestampType::LogAppendTime => Some(now_ms()),
            TimestampType::CreateTime => None,
        };
        // The stored bytes, once: offsets (and LogAppendTime) patched in a
        // copy that the write path and the tail cache share.
        let mut patched = BytesMut::from(&batch[..]);
        record_batch::set_base_offset(&mut patched, base_offset);
        if let Some(now) = log_append_time_ms {
            record_batch::set_log_append_time(&mut patched, now);
        }
        let max_timestamp_ms = log_append_time_ms.unwrap_or(header.max_timestamp);
        match marker {
            Some(marker) => state.producers.record_marker(
                header.producer_id,
                header.producer_epoch,
                marker.coordinator_epoch,
                base_offset,
                marker.commit,
                max_timestamp_ms,
            ),
            None => state.producers.record(header, base_offset, max_timestamp_ms),
        }
        state.pending.push_back(PendingBatch {
            bytes: patched.freeze(),
            base_offset,
            last_offset,
            max_timestamp_ms,
        });
        state.next_offset = last_offset + 1;
        let outcome = AppendOutcome {
            base_offset,
            log_append_time_ms: log_append_time_ms.unwrap_or(-1),
            log_start_offset: state.log_start_offset,
            duplicate: false,
            write_us: 0,
            sync_us: 0,
        };
        Ok((outcome, last_offset + 1))
    }

    /// Step 2: returns once every offset below `target` is written.
    async fn write_through(&self, target: i64) -> Result<(), LogError> {
        let _permit = self.write_permit().await?;
        loop {
            let step = self.plan_write(target)?;
            match step {
                WriteStep::Done => return Ok(()),
                WriteStep::Roll { base_offset } => self.roll(base_offset).await?,
                WriteStep::WaitForZeroing => self.zero_ahead.wait_idle().await,
                WriteStep::Write(write) => {
                    let padded_bytes = write.buffer.len();
                    if let Err(e) = super::fault::check("log::append::write") {
                        return Err(self.take_offline(LogError::io("write", &write.path, e)));
                    }
                    let result = write.file.write_at(write.buffer, write.file_position).await;
                    match result {
                        Ok(written) if written == padded_bytes => {
                            self.apply_write(write.placements, write.batches, write.tail_block);
                            self.zero_ahead.wrote();
                        }
                        Ok(written) => {
                            return Err(self.take_offline(LogError::io(
                                "short write",
                                &write.path,
                                format!("{written} of {padded_bytes} bytes"),
                            )))
                        }
                        Err(e) => return Err(self.take_offline(LogError::io("write", &write.path, e))),
                    }
                }
            }
        }
    }

    fn plan_write(&self, target: i64) -> Result<WriteStep, LogError> {
        let mut state = self.state.borrow_mut();
        if state.high_watermark >= target {
            return Ok(WriteStep::Done);
        }
        if let Some(reason) = &state.offline {
            return Err(LogError::Offline {
                reason: reason.clone(),
            });
        }
        let first = state
            .pending
            .front()
            .expect("offsets above the high watermark are pending");
        let active = state.active();
        if self.needs_roll(active, first.bytes.len() as u64, first.last_offset) {
            return Ok(WriteStep::Roll {
                base_offset: first.base_offset,
            });
        }

        // Take every pending batch that fits this segment and one write.
        let alignment = state.alignment;
        let tail_bytes = active.tail_block.len();
        let segment_room = self.config().segment_bytes.saturating_sub(active.size_bytes);
        let mut take = 0;
        let mut new_bytes = 0usize;
        for batch in &state.pending {
            let next_bytes = new_bytes + batch.bytes.len();
            let fits_segment = (next_bytes as u64) <= segment_room;
            let fits_write = tail_bytes + next_bytes <= self.append_write_bytes_max;
            let offsets_fit = batch.last_offset - active.base_offset <= i64::from(u32::MAX);
            if take > 0 && !(fits_segment && fits_write && offsets_fit) {
                break;
            }
            take += 1;
            new_bytes = next_bytes;
        }
        let file_position = active.size_bytes - tail_bytes as u64;
        debug_assert_eq!(file_position % alignment, 0);
        let padded_bytes = align_up((tail_bytes + new_bytes) as u64, alignment) as usize;
        let write_end = file_position + padded_bytes as u64;
        let limit = self.config().segment_bytes;
        if self
            .zero_ahead
            .reserve(&active.file, &active.path, limit, write_end)
            == Reservation::Wait
        {
            return Ok(WriteStep::WaitForZeroing);
        }
        let mut buffer = active.file.alloc_dma_buffer(padded_bytes);
        let bytes = buffer.as_bytes_mut();
        bytes[..tail_bytes].copy_from_slice(&active.tail_block);
        let mut cursor = tail_bytes;
        let mut position = active.size_bytes;
        let mut placements = Vec::with_capacity(take);
        let file = active.file.clone();
        let path = active.path.clone();
        let mut batches = Vec::with_capacity(take);
        for batch in state.pending.drain(..take) {
            let length = batch.bytes.len();
            let region = &mut bytes[cursor..cursor + length];
            region.copy_from_slice(&batch.bytes);
            batches.push(batch.bytes);
            placements.push(BatchPlacement {
                base_offset: batch.base_offset,
                last_offset: batch.last_offset,
                max_timestamp_ms: batch.max_timestamp_ms,
                position,
                size_bytes: length as u64,
            });
            cursor += length;
            position += length as u64;
        }
        bytes[cursor..].fill(0);
        let tail_start = cursor - cursor % alignment as usize;
        let tail_block = bytes[tail_start..cursor].to_vec();
        Ok(WriteStep::Write(PlannedWrite {
            file,
            path,
            file_position,
            buffer,
            placements,
            batches,
            tail_block,
        }))
    }

    fn apply_write(&self, placements: Vec<BatchPlacement>, batches: Vec<Bytes>, tail_block: Vec<u8>) {
        let mut state = self.state.borrow_mut();
        let now = now_wall_ms();
        let active = state.active_mut();
        for placement in &placements {
            active.record_batch(*placement);
        }
        active.first_append_wall_ms.get_or_insert(now);
        active.tail_block = tail_block;
        let end = active.next_offset;
        state.high_watermark = end;
        drop(state);
        if let Some((cache, log_id)) = &*self.tail_cache.borrow() {
            for (placement, batch) in placements.iter().zip(batches) {
                cache.insert(*log_id, placement.base_offset, placement.last_offset, batch);
            }
        }
        self.high_watermark_watch.notify();
    }

    /// Keeps the active segment zeroed up to `window_bytes` ahead of the
    /// appends (0: off), by a task on `queue` (see `log::preallocate`).
    pub fn set_preallocation(&self, window_bytes: u64, queue: glommio::TaskQueueHandle) {
        self.zero_ahead.configure(window_bytes, queue);
    }

    /// Feeds this log's writes into the shard's tail cache and serves reads
    /// of the cached tail from it.
    pub fn attach_tail_cache(&self, cache: Rc<TailCache>) {
        let log_id = cache.register();
        *self.tail_cache.borrow_mut() = Some((cache, log_id));
    }

    /// Drops this log's batches from the tail cache (the log is removed).
    pub fn detach_tail_cache(&self) {
        if let Some((cache, log_id)) = self.tail_cache.borrow_mut().take() {
            cache.forget(log_id);
        }
    }

    /// Completes once the high watermark is above `offset` (a parked fetch
    /// waits here; the caller bounds the wait with its own timer).
    pub async fn wait_for_high_watermark_above(&self, offset: i64) {
        self.high_watermark_watch
            .wait(|| self.high_watermark() > offset)
            .await
    }

    fn needs_roll(&self, active: &Segment, batch_bytes: u64, last_offset: i64) -> bool {
        if active.is_empty() {
            return false;
        }
        let too_big = active.size_bytes + batch_bytes > self.config().segment_bytes;
        let too_old = active
            .first_append_wall_ms
            .is_some_and(|first| now_wall_ms().saturating_sub(first) >= self.config().segment_ms);
        let offsets_overflow = last_offset - active.base_offset > i64::from(u32::MAX);
        too_big || too_old || offsets_overflow
    }

    /// Seals a non-empty active segment and starts a new one at its end
    /// (retention found everything expired). Under the write permit, so the
    /// high watermark is the active segment's end.
    pub(super) async fn roll_active(&self) -> Result<(), LogError> {
        let _permit = self.write_permit().await?;
        let base_offset = {
            let state = self.state.borrow();
            if state.active().is_empty() || state.offline.is_some() {
                return Ok(());
            }
            state.active().next_offset
        };
        self.roll(base_offset).await
    }

    /// Seals the active segment (trim padding, fdatasync, write indexes) and
    /// starts a new one at `base_offset`. Runs under the write permit.
    async fn roll(&self, base_offset: i64) -> Result<(), LogError> {
        let sealed = async {
            super::fault::check("log::roll").map_err(|e| LogError::io("roll", &self.dir, e))?;
            self.seal_active().await?;
            let segment = Segment::create(&self.dir, base_offset).await?;
            segment::sync_directory(&self.dir).await?;
            Ok::<Segment, LogError>(segment)
        }
        .await;
        let segment = sealed.map_err(|e| self.take_offline(e))?;
        let snapshot = {
            let mut state = self.state.borrow_mut();
            let high_watermark = state.high_watermark;
            state.active_mut().sealed = true;
            state.segments.push(segment);
            // The sealed segment was synced, so everything written is synced.
            state.synced_offset = state.synced_offset.max(high_watermark);
            (state.next_offset, state.producers.encode(state.next_offset))
        };
        self.write_producer_snapshot(snapshot.0, snapshot.1).await;
        Ok(())
    }

    /// Saves the producer state as of `offset` (see `producer_state`). A
    /// failure only costs replay time at the next start: logged, not fatal.
    async fn write_producer_snapshot(&self, offset: i64, bytes: Vec<u8>) {
        let dir = self.dir.clone();
        if let Err(e) = blocking(move || producer_state::write_snapshot(&dir, offset, &bytes)).await {
            log::warn!(
                "{}-{}: producer state snapshot at offset {offset}: {e}",
                self.topic,
                self.partition
            );
        }
    }

    /// Forgets producers idle for `expiration_ms`; returns how many.
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        self.state.borrow_mut().producers.expire(now_ms, expiration_ms)
    }

    /// The producer state of `producer_id` here (tests).
    pub fn producer(&self, producer_id: i64) -> Option<ProducerEntry> {
        self.state.borrow().producers.get(producer_id).cloned()
    }

    /// Every producer with state here, by id (DescribeProducers).
    pub fn producers(&self) -> Vec<(i64, ProducerEntry)> {
        let state = self.state.borrow();
        let mut producers: Vec<(i64, ProducerEntry)> = state
            .producers
            .iter()
            .map(|(id, entry)| (id, entry.clone()))
            .collect();
        producers.sort_by_key(|(id, _)| *id);
        producers
    }

    /// Returns once an fdatasync covering every offset below `target` (which
    /// must already be written) completed.
    pub async fn sync_through(&self, target: i64) -> Result<(), LogError> {
        let _permit = self
            .sync_permit
            .acquire_permit(1)
            .await
            .map_err(|e| LogError::Offline {
                reason: format!("sync permit: {e}"),
            })?;
        let (file, path, written) = {
            let state = self.state.borrow();
            if state.synced_offset >= target {
                return Ok(());
            }
            debug_assert!(state.high_watermark >= target, "sync only what is written");
            (
                state.active().file.clone(),
                state.active().path.clone(),
                state.high_watermark,
            )
        };
        super::fault::check("log::fsync")
            .map_err(|e| self.take_offline(LogError::io("fdatasync", &path, e)))?;
        file.fdatasync()
            .await
            .map_err(|e| self.take_offline(LogError::io("fdatasync", &path, e)))?;
        let mut state = self.state.borrow_mut();
        state.synced_offset = state.synced_offset.max(written);
        Ok(())
    }

    fn take_offline(&self, error: LogError) -> LogError {
        log::error!(
            "{}-{}: {error}; partition is offline for writes",
            self.topic,
            self.partition
        );
        let mut state = self.state.borrow_mut();
        if state.offline.is_none() {
            state.offline = Some(error.to_string());
            state.offline_repairable = true;
        }
        error
    }

    /// ListOffsets by timestamp: the offset and timestamp of the first record
    /// whose timestamp is >= `target_ms`, or None.
    pub async fn offset_for_timestamp(&self, target_ms: i64) -> Result<Option<(i64, i64)>, LogError> {
        let plan = {
            let state = self.state.borrow();
            let log_start_offset = state.log_start_offset;
            let Some(segment) = state
                .segments
                .iter()
                .find(|s| s.next_offset > log_start_offset && s.max_timestamp_ms >= target_ms)
            else {
                return Ok(None);
            };
            let relative = segment.time_index.lookup(target_ms);
            let start = u64::from(segment.offset_index.lookup(relative));
            (
                segment.file.clone(),
                segment.path.clone(),
                start,
                segment.size_bytes,
                log_start_offset,
            )
        };
        let (file, path, start, end, log_start_offset) = plan;
        let mut found = None;
        scan_batches(&file, &path, start, end, |_, batch, header| {
            if header.max_timestamp < target_ms || header.last_offset() < log_start_offset {
                return Visit::Continue;
            }
            // Records below the log start (DeleteRecords) are not there.
            found = record_batch::first_record_from_offset_with_timestamp_at_or_after(
                &batch,
                log_start_offset,
                target_ms,
            );
            if found.is_some() {
                Visit::Stop
            } else {
                Visit::Continue
            }
        })
        .await?;
        Ok(found)
    }

    /// ListOffsets MAX_TIMESTAMP (-3): the last offset of the batch with the
    /// largest timestamp (the first such batch on ties), and that timestamp.
    pub fn offset_of_max_timestamp(&self) -> Option<(i64, i64)> {
        let state = self.state.borrow();
        // On ties the earliest segment (`max_by_key` keeps the last maximum,
        // hence `rev`), as within a segment and as Kafka does.
        state
            .segments
            .iter()
            .rev()
            .filter(|s| s.max_timestamp_ms >= 0)
            .max_by_key(|s| s.max_timestamp_ms)
            .map(|s| (s.max_timestamp_offset, s.max_timestamp_ms))
    }

    /// Clean shutdown: write what is pending, fdatasync, trim the active
    /// segment's padding and write its indexes. When recovery stopped at a
    /// damaged sealed segment (the last one held), its files are left as
    /// they are: trimmed and indexed, the damage would be hidden.
    pub async fn close(&self) -> Result<(), LogError> {
        let next_offset = self.state.borrow().next_offset;
        self.write_through(next_offset).await?;
        if self.seal_active().await? {
            let bytes = self.state.borrow().producers.encode(next_offset);
            self.write_producer_snapshot(next_offset, bytes).await;
        }
        Ok(())
    }

    /// Trims the active segment's O_DIRECT padding, fdatasyncs it and writes
    /// its indexes (with the final time index entry). Does nothing and
    /// returns false when the last segment is sealed already: recovery left
    /// the log offline at a damaged sealed segment, whose files are kept
    /// exactly as found.
    async fn seal_active(&self) -> Result<bool, LogError> {
        // No zeros may land after the truncation below.
        self.zero_ahead.quiesce(false).await;
        let (file, path, size_bytes, index_files, txn_index) = {
            let mut state = self.state.borrow_mut();
            let active = state.active_mut();
            if active.sealed {
                return Ok(false);
            }
            active.finish_time_index();
            let (base_offset, next_offset) = (active.base_offset, active.next_offset);
            let (file, path, size_bytes, index_files) = (
                active.file.clone(),
                active.path.clone(),
                active.size_bytes,
                active.index_files(),
            );
            let mut txn_index = Vec::new();
            for aborted in state.producers.aborted_markers_in(base_offset, next_offset) {
                aborted.encode_index_entry(&mut txn_index);
            }
            let txn_index_path = segment::txn_index_path(&self.dir, base_offset);
            (file, path, size_bytes, index_files, (txn_index_path, txn_index))
        };
        file.truncate(size_bytes)
            .await
            .map_err(|e| LogError::io("truncate", &path, e))?;
        file.fdatasync()
            .await
            .map_err(|e| LogError::io("fdatasync", &path, e))?;
        segment::write_index_files(index_files).await?;
        let (txn_index_path, txn_index) = txn_index;
        if !txn_index.is_empty() {
            // Not fsynced: the producer snapshot and the log replay rebuild
            // aborted transactions; the file is Kafka's layout for tools.
            blocking(|| std::fs::write(&txn_index_path, &txn_index))
                .await
                .map_err(|e| LogError::io("write", &txn_index_path, e))?;
        }
        Ok(true)
    }
}

enum WriteStep {
    Done,
    Roll {
        base_offset: i64,
    },
    /// Zeros are being written where this write would land.
    WaitForZeroing,
    Write(PlannedWrite),
}

struct PlannedWrite {
    file: Rc<DmaFile>,
    path: PathBuf,
    file_position: u64,
    buffer: glommio::io::DmaBuffer,
    placements: Vec<BatchPlacement>,
    /// The batches written, in order (for the tail cache).
    batches: Vec<Bytes>,
    tail_block: Vec<u8>,
}

pub fn align_up(value: u64, alignment: u64) -> u64 {
    value.div_ceil(alignment) * alignment
}

fn now_wall_ms() -> u64 {
    u64::try_from(now_ms()).unwrap_or(0)
}
