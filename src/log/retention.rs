//! Deleting the head of a partition log: retention (`cleanup.policy`
//! delete: `retention.ms`, `retention.bytes`) and DeleteRecords, and the
//! persisted log start offset. On the owning shard, like the log.
//!
//! Whole segments are deleted, oldest first, as Kafka does: a prefix of the
//! segment list is chosen by the three rules (the newest record older than
//! `retention.ms`; the partition larger than `retention.bytes` by at least
//! the segment's size; the whole segment below the log start offset). When
//! the prefix is every segment, the active one is rolled first (under the
//! write permit), so a log whose data all expired keeps an empty active
//! segment at its end offset.
//!
//! Order, so a crash at any step leaves a consistent log: (1) the segments
//! leave the in-memory list and the log start offset moves (reads planned
//! from then on see the new start; reads planned before finish from the
//! files they hold open: unlinking does not close them); (2) the log start
//! offset is written to `log-start-offset` (write, fsync, rename, fsync the
//! directory); (3) the files are unlinked, indexes before the `.log`. Recovery takes the larger of
//! the first segment's base and the persisted start; a segment whose unlink
//! a crash interrupted is found below the start and deleted by the next
//! pass.
//!
//! Invariant: `log_start_offset` only grows, and is always within
//! `[first segment's base, high watermark]`.

use std::path::{Path, PathBuf};

use super::{
    partition::PartitionLog,
    producer_state,
    segment::{self, Segment},
    LogError,
};

/// The file that holds a partition's log start offset when it is inside
/// the first segment (Kafka keeps these in `log-start-offset-checkpoint`).
pub const LOG_START_FILE: &str = "log-start-offset";

/// What a retention pass or DeleteRecords removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    pub segments: usize,
    pub bytes: u64,
    pub log_start_offset: i64,
}

impl PartitionLog {
    /// One retention pass at wall-clock `now_ms`: deletes the segments the
    /// topic's retention (if its cleanup policy includes delete) and the log
    /// start offset allow.
    pub async fn apply_retention(&self, now_ms: i64) -> Result<Deleted, LogError> {
        let _permit = self.head_permit().await?;
        let mut count = self.deletable_segments(now_ms);
        if count > 0 && count == self.state.borrow().segments.len() {
            // Everything expired, the active segment included: roll, so
            // what is deleted is sealed and appends continue in a new one.
            self.roll_active().await?;
            count = self
                .deletable_segments(now_ms)
                .min(self.state.borrow().segments.len() - 1);
        }
        self.delete_head(count).await
    }

    /// DeleteRecords: moves the log start offset up to `offset` (-1: the
    /// high watermark), durably before it returns, and deletes the segments
    /// wholly below it. Returns the new log start offset (the low
    /// watermark). Out of range above the high watermark.
    pub async fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        let _permit = self.head_permit().await?;
        let (new_start, old_start) = {
            let mut state = self.state.borrow_mut();
            let target = if offset == -1 {
                state.high_watermark
            } else {
                offset
            };
            if target < 0 || target > state.high_watermark {
                return Err(LogError::OffsetOutOfRange {
                    log_start_offset: state.log_start_offset,
                    high_watermark: state.high_watermark,
                });
            }
            let old_start = state.log_start_offset;
            state.log_start_offset = old_start.max(target);
            (state.log_start_offset, old_start)
        };
        if new_start > old_start {
            let dir = self.dir.clone();
            super::off_shard(move || write_offset_file(&dir, LOG_START_FILE, new_start))
                .await
                .map_err(|e| LogError::io("write", &self.dir.join(LOG_START_FILE), e))?;
            self.forget_below(new_start);
        }
        let count = self.deletable_segments(i64::MIN);
        self.delete_head(count).await?;
        Ok(new_start)
    }

    /// Retention, DeleteRecords (and compaction's swap) change the head of
    /// the log one at a time.
    /// A retired log (replaced by a reopened copy) refuses: its files
    /// belong to the copy now.
    pub(super) async fn head_permit(&self) -> Result<glommio::sync::Permit<'_>, LogError> {
        let permit = self
            .head_permit
            .acquire_permit(1)
            .await
            .map_err(|e| LogError::Offline {
                reason: format!("head permit: {e}"),
            })?;
        if self.is_retired() {
            return Err(LogError::Offline {
                reason: "replaced by a copy reopened from disk".into(),
            });
        }
        Ok(permit)
    }

    /// How many segments from the oldest may go. `now_ms == i64::MIN`
    /// applies only the log start rule (DeleteRecords).
    fn deletable_segments(&self, now_ms: i64) -> usize {
        let config = self.config();
        let state = self.state.borrow();
        let segments = &state.segments;
        // Only what is written; never an empty (active) segment.
        let eligible = |s: &Segment| !s.is_empty() && s.next_offset <= state.high_watermark;
        let prefix = |rule: &dyn Fn(usize, &Segment) -> bool| {
            segments
                .iter()
                .enumerate()
                .take_while(|(index, s)| eligible(s) && rule(*index, s))
                .count()
        };
        let below_start = prefix(&|index, _| {
            segments
                .get(index + 1)
                .is_some_and(|next| next.base_offset <= state.log_start_offset)
        });
        // A log offline for writes by an I/O error still deletes by its
        // retention (a full disk recovers once space is freed); one with
        // damage found at recovery keeps its files for an operator.
        let damaged = state.offline.is_some() && !state.offline_repairable;
        if now_ms == i64::MIN || !config.cleanup_policy.delete || damaged {
            return below_start;
        }
        let by_time = if config.retention_ms >= 0 {
            let cutoff = now_ms.saturating_sub(config.retention_ms);
            prefix(&|_, s| s.max_timestamp_ms < cutoff)
        } else {
            0
        };
        let by_size = if config.retention_bytes >= 0 {
            let total: u64 = segments.iter().map(|s| s.size_bytes).sum();
            let excess = std::cell::Cell::new(total.saturating_sub(config.retention_bytes as u64));
            prefix(&|_, s| {
                let fits = excess.get() >= s.size_bytes;
                if fits {
                    excess.set(excess.get() - s.size_bytes);
                }
                fits
            })
        } else {
            0
        };
        below_start.max(by_time).max(by_size)
    }

    /// Removes the first `count` segments (all sealed) from the log, moves
    /// the log start offset to the first remaining one, then unlinks their
    /// files.
    async fn delete_head(&self, count: usize) -> Result<Deleted, LogError> {
        if count == 0 {
            return Ok(Deleted {
                log_start_offset: self.log_start_offset(),
                ..Deleted::default()
            });
        }
        let (removed, log_start_offset) = {
            let mut state = self.state.borrow_mut();
            assert!(
                count < state.segments.len(),
                "the active segment is never deleted"
            );
            let removed: Vec<Segment> = state.segments.drain(..count).collect();
            let first_base = state.segments[0].base_offset;
            state.log_start_offset = state.log_start_offset.max(first_base);
            (removed, state.log_start_offset)
        };
        self.forget_below(log_start_offset);
        let deleted = Deleted {
            segments: removed.len(),
            bytes: removed.iter().map(|s| s.size_bytes).sum(),
            log_start_offset,
        };
        let files: Vec<PathBuf> = removed
            .iter()
            .flat_map(|s| segment_files(&self.dir, s.base_offset))
            .collect();
        drop(removed);
        let dir = self.dir.clone();
        super::off_shard(move || {
            // The new start first, so a crash during the unlinks cannot
            // bring it back down.
            write_offset_file(&dir, LOG_START_FILE, log_start_offset)
                .map_err(|e| LogError::io("write", &dir.join(LOG_START_FILE), e))?;
            for path in &files {
                super::fault::check("log::retention::unlink").map_err(|e| LogError::io("unlink", path, e))?;
                match std::fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(LogError::io("unlink", path, e)),
                }
            }
            remove_snapshots_below(&dir, log_start_offset)
        })
        .await?;
        log::info!(
            "{}-{}: deleted {} segment(s), {} bytes; log start offset {log_start_offset}",
            self.topic,
            self.partition,
            deleted.segments,
            deleted.bytes
        );
        Ok(deleted)
    }

    /// Drops producer state and cached batches below the log start offset.
    fn forget_below(&self, log_start_offset: i64) {
        self.state.borrow_mut().producers.truncate_head(log_start_offset);
        if let Some((cache, log_id)) = &*self.tail_cache.borrow() {
            cache.evict_below(*log_id, log_start_offset);
        }
    }
}

/// Every file of the segment at `base_offset`, the `.log` last.
fn segment_files(dir: &Path, base_offset: i64) -> [PathBuf; 4] {
    [
        segment::index_path(dir, base_offset),
        segment::time_index_path(dir, base_offset),
        segment::txn_index_path(dir, base_offset),
        segment::log_path(dir, base_offset),
    ]
}

/// Producer snapshots older than the log start describe batches that are
/// gone; the newest one at or below it is kept for the next start.
fn remove_snapshots_below(dir: &Path, log_start_offset: i64) -> Result<(), LogError> {
    let offsets = producer_state::list_snapshots(dir).map_err(|e| LogError::io("list", dir, e))?;
    let keep = offsets.iter().copied().filter(|&o| o <= log_start_offset).max();
    for offset in offsets {
        if offset < log_start_offset && Some(offset) != keep {
            producer_state::remove_snapshot(dir, offset)
                .map_err(|e| LogError::io("unlink", &producer_state::snapshot_path(dir, offset), e))?;
        }
    }
    Ok(())
}

/// Persists an offset in a small file of the partition directory (the log
/// start offset, the compaction checkpoint): 8 bytes big-endian and their
/// CRC32C, written to a temporary file, fsynced, renamed over the old one,
/// and the directory fsynced.
pub fn write_offset_file(dir: &Path, name: &str, offset: i64) -> std::io::Result<()> {
    let mut bytes = offset.to_be_bytes().to_vec();
    bytes.extend_from_slice(&crc32c::crc32c(&offset.to_be_bytes()).to_be_bytes());
    let path = dir.join(name);
    let temporary = dir.join(format!("{name}.tmp"));
    std::fs::write(&temporary, &bytes)?;
    std::fs::File::open(&temporary)?.sync_all()?;
    std::fs::rename(&temporary, &path)?;
    crate::metadata::store::sync_directory(dir).map_err(std::io::Error::other)
}

/// The offset in `dir/name`, if the file exists and is intact.
pub fn read_offset_file(dir: &Path, name: &str) -> Option<i64> {
    let path = dir.join(name);
    let bytes = std::fs::read(&path).ok()?;
    let (offset, crc) = (bytes.get(..8)?, bytes.get(8..12)?);
    if bytes.len() != 12 || crc32c::crc32c(offset).to_be_bytes() != crc {
        log::warn!("{}: damaged; ignored", path.display());
        return None;
    }
    Some(i64::from_be_bytes(offset.try_into().ok()?))
}

/// Every `log_retention_check_interval_ms`, applies retention to each log
/// of this shard, on the shard's bulk task queue.
pub async fn run_retention(shard: std::rc::Rc<crate::shard::Shard>) {
    let interval = std::time::Duration::from_millis(shard.config.log_retention_check_interval_ms);
    while !shard.stopping.get() {
        glommio::timer::sleep(interval).await;
        for log in shard.logs() {
            if shard.stopping.get() {
                return;
            }
            if log.is_retired() {
                continue;
            }
            if let Err(e) = log.apply_retention(super::now_ms()).await {
                crate::error_limited!(
                    "retention failed",
                    "{}-{}: retention: {e}",
                    log.topic,
                    log.partition
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_files_round_trip_and_detect_damage() {
        let dir = std::env::temp_dir().join(format!("weir-log-start-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        assert_eq!(read_offset_file(&dir, LOG_START_FILE), None);
        write_offset_file(&dir, LOG_START_FILE, 1234).expect("write");
        assert_eq!(read_offset_file(&dir, LOG_START_FILE), Some(1234));
        let path = dir.join(LOG_START_FILE);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[3] ^= 1;
        std::fs::write(&path, bytes).expect("write");
        assert_eq!(read_offset_file(&dir, LOG_START_FILE), None);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
