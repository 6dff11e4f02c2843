//! The read path of a partition log: whole batches from an offset, from the
//! shard's tail cache (no I/O, no copy), else planned on the segments
//! without holding the log's state across an await: as a region of a
//! buffered segment fd when its pages are resident (spliced to the socket
//! by the fetch path), else by O_DIRECT reads (and a prefetch of the range
//! for the reads that follow). On the owning shard, like the log.
//!
//! Isolation (Fetch and ListOffsets `isolation_level`): every read has an
//! end bound, taken in the same synchronous step that plans it. A
//! read_uncommitted read stops at the high watermark; a read_committed read
//! stops at the last stable offset (the first offset of the oldest open
//! transaction), so it never returns a batch of a transaction that is still
//! open, nor anything after one. The bound holds on every path (tail cache,
//! region walk, O_DIRECT scan): only batches that end below it are
//! returned. Offsets between the last stable offset and the high watermark
//! are not out of range for read_committed: a fetch there returns no data
//! and waits, as Kafka's does. A read_committed read also returns the
//! aborted transactions overlapping what it returned, which the consumer
//! uses to drop aborted data; the transaction markers themselves are
//! ordinary (control) batches of the log and are returned like any other.

use std::{fs::File, path::PathBuf, rc::Rc, sync::Arc};

use glommio::io::DmaFile;

use super::{
    blocking,
    partition::{PartitionLog, ReadOutcome},
    region::{
        plan_region, prefetch, resident, FileRegion, RegionPlan, PREFETCH_AHEAD_BYTES_MAX,
        REGION_CHECK_BYTES_MIN,
    },
    scan::{scan_batches, ScanStop, Visit},
    LogError,
};

/// Which records a read may return: a request's `isolation_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// Everything below the high watermark (`isolation_level` 0).
    #[default]
    ReadUncommitted,
    /// Only below the last stable offset, with the aborted transactions of
    /// the returned range (`isolation_level` 1).
    ReadCommitted,
}

impl Isolation {
    /// The isolation a request's `isolation_level` names; None for a level
    /// Kafka does not define.
    pub fn from_level(level: i8) -> Option<Isolation> {
        match level {
            0 => Some(Isolation::ReadUncommitted),
            1 => Some(Isolation::ReadCommitted),
            _ => None,
        }
    }
}

impl PartitionLog {
    /// A read_uncommitted read: whole batches from `fetch_offset`, at most
    /// `max_bytes`; when `first_batch_may_exceed`, a first batch larger than
    /// that is returned whole (as Kafka does for the first partition of a
    /// fetch). See [`PartitionLog::read_isolated`].
    pub async fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        first_batch_may_exceed: bool,
    ) -> Result<ReadOutcome, LogError> {
        self.read_isolated(
            fetch_offset,
            max_bytes,
            first_batch_may_exceed,
            Isolation::ReadUncommitted,
        )
        .await
    }

    /// Whole batches from `fetch_offset` that end below the isolation's
    /// bound (high watermark or last stable offset), at most `max_bytes`
    /// (the first one whole even when larger if `first_batch_may_exceed`).
    /// Out of range only below the log start or above the high watermark;
    /// at or past the bound (and not out of range) the read is empty.
    pub async fn read_isolated(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        first_batch_may_exceed: bool,
        isolation: Isolation,
    ) -> Result<ReadOutcome, LogError> {
        self.read_limited(
            fetch_offset,
            max_bytes,
            usize::MAX,
            first_batch_may_exceed,
            isolation,
        )
        .await
    }

    /// [`PartitionLog::read_isolated`], with reads below the tail cache
    /// (page cache or disk) limited to `cold_max_bytes` as well (catch-up
    /// pacing keeps those responses small; tail reads are not limited).
    pub async fn read_limited(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        cold_max_bytes: usize,
        first_batch_may_exceed: bool,
        isolation: Isolation,
    ) -> Result<ReadOutcome, LogError> {
        let last_stable_offset = self.last_stable_offset();
        let plan = {
            let state = self.state.borrow();
            let mut outcome = ReadOutcome {
                high_watermark: state.high_watermark,
                last_stable_offset,
                log_start_offset: state.log_start_offset,
                aborted_transactions: match isolation {
                    Isolation::ReadUncommitted => None,
                    Isolation::ReadCommitted => Some(Vec::new()),
                },
                ..Default::default()
            };
            if fetch_offset < state.log_start_offset || fetch_offset > state.high_watermark {
                return Err(LogError::OffsetOutOfRange {
                    log_start_offset: state.log_start_offset,
                    high_watermark: state.high_watermark,
                });
            }
            let end_offset = match isolation {
                Isolation::ReadUncommitted => state.high_watermark,
                Isolation::ReadCommitted => last_stable_offset,
            };
            debug_assert!(
                end_offset <= state.high_watermark,
                "the last stable offset is at most the high watermark"
            );
            if fetch_offset >= end_offset || (max_bytes == 0 && !first_batch_may_exceed) {
                return Ok(outcome);
            }
            // The tail: from memory, no I/O, no copy.
            if let Some((cache, log_id)) = &*self.tail_cache.borrow() {
                if let Some(hit) = cache.read(
                    *log_id,
                    fetch_offset,
                    end_offset,
                    max_bytes,
                    first_batch_may_exceed,
                ) {
                    outcome.batches = hit.batches;
                    outcome.bytes = hit.bytes;
                    outcome.from_tail_cache = true;
                    self.add_aborted_transactions(&mut outcome, fetch_offset, hit.next_offset);
                    return Ok(outcome);
                }
            }
            let first = state
                .segments
                .partition_point(|s| s.base_offset <= fetch_offset)
                .saturating_sub(1);
            let plan: Vec<ColdSegment> = state.segments[first..]
                .iter()
                .filter(|segment| segment.next_offset > fetch_offset)
                .take_while(|segment| segment.base_offset < end_offset)
                .map(|segment| {
                    let start = if segment.base_offset < fetch_offset {
                        u64::from(segment.offset_index.lookup(segment.relative(fetch_offset)))
                    } else {
                        0
                    };
                    ColdSegment {
                        file: segment.file.clone(),
                        buffered: segment.buffered.clone(),
                        base_offset: segment.base_offset,
                        path: segment.path.clone(),
                        start,
                        end: segment.size_bytes,
                    }
                })
                .collect();
            (outcome, end_offset, plan)
        };
        let (mut outcome, end_offset, segments) = plan;
        let max_bytes = max_bytes.min(cold_max_bytes);
        if max_bytes == 0 && !first_batch_may_exceed {
            return Ok(outcome);
        }
        // The offset after the last batch returned (no batch: the fetch
        // offset): the end of the range the aborted transactions cover.
        let mut next_offset = fetch_offset;
        // Like Kafka, one fetch reads from one segment: the first that holds
        // data at or after the fetch offset.
        for ColdSegment {
            file,
            buffered,
            base_offset,
            path,
            start,
            end,
        } in segments
        {
            if self.cold_reads_as_regions.get() {
                let buffered = match buffered {
                    Some(buffered) => buffered,
                    None => self.open_buffered(base_offset, &path).await?,
                };
                let checked_bytes = (max_bytes as u64).max(REGION_CHECK_BYTES_MIN).min(end - start);
                let ahead_bytes = (2 * checked_bytes).min(PREFETCH_AHEAD_BYTES_MAX);
                if resident(&buffered, start, checked_bytes) == Some(true) {
                    // Resident pages: the header walk cannot wait for the disk.
                    let planned = plan_region(
                        &buffered,
                        start,
                        end,
                        fetch_offset,
                        end_offset,
                        max_bytes,
                        first_batch_may_exceed,
                    )
                    .map_err(|e| LogError::io("read", &path, e))?;
                    match planned {
                        RegionPlan::NoData => continue,
                        RegionPlan::Range {
                            start: region_start,
                            end: region_end,
                            next_offset: region_next_offset,
                        } => {
                            prefetch(&buffered, region_end, ahead_bytes.min(end - region_end));
                            outcome.bytes = (region_end - region_start) as usize;
                            outcome.region = (region_end > region_start).then(|| FileRegion {
                                file: buffered,
                                position: region_start,
                                bytes: (region_end - region_start) as usize,
                            });
                            next_offset = region_next_offset;
                            break;
                        }
                    }
                }
                // Not in memory: read this fetch with O_DIRECT (below) and
                // let the kernel bring this range and the next into the page
                // cache for the fetches that follow.
                prefetch(&buffered, start, (checked_bytes + ahead_bytes).min(end - start));
            }
            let mut bytes = 0usize;
            let mut batches = Vec::new();
            let mut scan_next_offset = fetch_offset;
            let scanned = scan_batches(&file, &path, start, end, |_, batch, header| {
                if header.last_offset() < fetch_offset {
                    return Visit::Continue;
                }
                // At the isolation's bound: nothing from here on.
                if header.last_offset() >= end_offset {
                    return Visit::Stop;
                }
                if bytes + batch.len() > max_bytes && (!batches.is_empty() || !first_batch_may_exceed) {
                    return Visit::Stop;
                }
                bytes += batch.len();
                batches.push(batch);
                scan_next_offset = header.last_offset() + 1;
                if bytes >= max_bytes {
                    Visit::Stop
                } else {
                    Visit::Continue
                }
            })
            .await?;
            // Stopped by the byte limit or the bound: the data is there but
            // is not returned.
            if !batches.is_empty() || scanned.stop == ScanStop::Visitor {
                outcome.batches = batches;
                outcome.bytes = bytes;
                next_offset = scan_next_offset;
                break;
            }
        }
        self.add_aborted_transactions(&mut outcome, fetch_offset, next_offset);
        Ok(outcome)
    }

    /// For a read_committed outcome (`aborted_transactions` is Some), the
    /// aborted transactions overlapping `[fetch_offset, next_offset)`: the
    /// range the returned batches cover, as Kafka bounds it. Every batch
    /// returned is below the last stable offset the read was planned with,
    /// so no transaction aborted after the read can overlap that range.
    fn add_aborted_transactions(&self, outcome: &mut ReadOutcome, fetch_offset: i64, next_offset: i64) {
        if let Some(aborted) = outcome.aborted_transactions.as_mut() {
            if next_offset > fetch_offset {
                *aborted = self.aborted_transactions(fetch_offset, next_offset);
            }
        }
    }

    /// Makes cold reads return file regions (see [`ReadOutcome::region`]).
    pub fn set_cold_reads_as_regions(&self, enabled: bool) {
        self.cold_reads_as_regions.set(enabled);
    }

    /// Opens (once) a buffered read-only fd of a segment for cold reads.
    async fn open_buffered(&self, base_offset: i64, path: &std::path::Path) -> Result<Arc<File>, LogError> {
        let owned = path.to_path_buf();
        let file = blocking(move || File::open(owned))
            .await
            .map_err(|e| LogError::io("open", path, e))?;
        let file = Arc::new(file);
        let mut state = self.state.borrow_mut();
        if let Some(segment) = state.segments.iter_mut().find(|s| s.base_offset == base_offset) {
            return Ok(segment.buffered.get_or_insert(file).clone());
        }
        Ok(file)
    }
}

/// A segment a read may need, captured without holding the state borrow.
struct ColdSegment {
    file: Rc<DmaFile>,
    buffered: Option<Arc<File>>,
    base_offset: i64,
    path: PathBuf,
    start: u64,
    end: u64,
}
