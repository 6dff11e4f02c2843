//! Opening a partition directory: rebuild the in-memory log from its files.
//!
//! Sealed segments were fdatasync'ed when they rolled; their indexes are
//! trusted when consistent (the time index must end with an entry, the
//! segment's largest timestamp, inside the segment), else rebuilt by a scan
//! that verifies every batch: its CRC, and its offsets (`baseOffset` is
//! outside the CRC), which must continue the segment densely. A corrupt
//! batch inside a sealed segment, or a sealed segment that ends before the
//! next one starts, is reported and the partition goes offline at that
//! offset: nothing past it is served and no append can land behind it (the
//! files are left as they are for an operator, even by `close`). The active
//! segment is scanned from its last index entry (from 0 without one, or when
//! the scan would keep less than its index files describe), verified the
//! same way, and truncated at the first torn, zero-padded or corrupt batch:
//! only unacknowledged data can be there.

use std::{path::Path, rc::Rc};

use glommio::io::DmaFile;

use super::{
    blocking,
    index::{OffsetIndex, TimeIndex},
    partition::{LogState, PartitionLog},
    producer_state::{self, AbortedTxn, ProducerStates},
    scan::{scan_batches, ScanOutcome, ScanStop, Visit},
    segment::{
        self, index_path, log_path, open_dma, parse_log_file_name, time_index_path, BatchPlacement, Segment,
    },
    LogError,
};
use crate::{
    metadata::TopicConfig,
    protocol::{control_record, record_batch},
};

/// Opens (creating if needed) the log of `topic`-`partition` under `dir`.
pub async fn open_log(
    dir: &Path,
    topic: &str,
    partition: i32,
    config: TopicConfig,
    append_write_bytes_max: usize,
) -> Result<PartitionLog, LogError> {
    let owned_dir = dir.to_path_buf();
    let bases = blocking(move || list_segments(&owned_dir)).await?;
    // Compaction leaves gaps in sealed segments; in a log never compacted
    // a gap is damage.
    let compacted = dir.join(super::compaction::CHECKPOINT_FILE).exists();
    let mut segments: Vec<Segment> = Vec::with_capacity(bases.len().max(1));
    let mut offline = None;
    if bases.is_empty() {
        segments.push(Segment::create(dir, 0).await?);
        segment::sync_directory(dir).await?;
    }
    for (position, &base_offset) in bases.iter().enumerate() {
        let next_base = bases.get(position + 1).copied();
        let (segment, corruption) = open_segment(dir, base_offset, next_base, compacted).await?;
        segments.push(segment);
        if let Some(reason) = corruption {
            log::error!(
                "{topic}-{partition}: {reason}; serving stops there and the partition is offline for writes"
            );
            offline = Some(reason);
            break;
        }
    }
    let alignment = segments
        .last()
        .map(|s| s.file.alignment())
        .expect("at least one segment");
    let producers = recover_producers(dir, &segments).await?;
    let owned_dir = dir.to_path_buf();
    let stored_start =
        blocking(move || super::retention::read_offset_file(&owned_dir, super::retention::LOG_START_FILE))
            .await;
    let mut state = LogState::recovered(segments, alignment, offline, producers);
    if let Some(stored) = stored_start {
        // DeleteRecords moved it inside a segment. Past the recovered end
        // (acks=1 data a crash lost), the log restarts empty at its end.
        if stored > state.next_offset {
            log::warn!(
                "{topic}-{partition}: log start offset {stored} is past the recovered end {}",
                state.next_offset
            );
        }
        state.log_start_offset = state.log_start_offset.max(stored.min(state.next_offset));
        state.producers.truncate_head(state.log_start_offset);
    }
    Ok(PartitionLog::new(
        topic.to_string(),
        partition,
        dir.to_path_buf(),
        config,
        append_write_bytes_max,
        state,
    ))
}

impl PartitionLog {
    /// A fresh copy of this log opened from its files, for a log an I/O
    /// error took offline: what was written is there (recovery truncates
    /// any torn tail), what failed is not. Holds the log's head and write
    /// permits meanwhile, so neither retention nor an append touches the
    /// files under it.
    pub async fn reopen(&self, append_write_bytes_max: usize) -> Result<PartitionLog, LogError> {
        let _head = self.head_permit().await?;
        let _write = self.write_permit().await?;
        // Recovery truncates the active segment: no zeros may land after.
        self.zero_ahead.quiesce(true).await;
        open_log(
            &self.dir,
            &self.topic,
            self.partition,
            self.config(),
            append_write_bytes_max,
        )
        .await
    }
}

/// Rebuilds the producer state: the newest valid snapshot the recovered log
/// reaches, then the batches after it (from the log start without one).
/// Snapshots beyond the recovered end describe batches a crash lost; they
/// are removed before the log can grow past them again.
async fn recover_producers(dir: &Path, segments: &[Segment]) -> Result<ProducerStates, LogError> {
    let start = segments.first().map_or(0, |s| s.base_offset);
    let end = segments.last().map_or(0, |s| s.next_offset);
    let owned_dir = dir.to_path_buf();
    let offsets = blocking(move || producer_state::list_snapshots(&owned_dir))
        .await
        .map_err(|e| LogError::io("list", dir, e))?;
    let mut loaded = None;
    for &offset in offsets.iter().rev() {
        if offset > end {
            let owned_dir = dir.to_path_buf();
            blocking(move || producer_state::remove_snapshot(&owned_dir, offset))
                .await
                .map_err(|e| LogError::io("remove", &producer_state::snapshot_path(dir, offset), e))?;
            continue;
        }
        if loaded.is_some() || offset < start {
            continue;
        }
        let path = producer_state::snapshot_path(dir, offset);
        let owned_path = path.clone();
        let bytes = blocking(move || std::fs::read(owned_path)).await;
        match bytes
            .map_err(|e| e.to_string())
            .and_then(|b| ProducerStates::decode(&b))
        {
            Ok((stored, states)) if stored == offset => loaded = Some((offset, states)),
            Ok((stored, _)) => log::warn!("{}: names offset {stored}; skipped", path.display()),
            Err(e) => log::warn!("{}: {e}; skipped", path.display()),
        }
    }
    let (from, mut states) = loaded.unwrap_or((start, ProducerStates::default()));
    for segment in segments.iter().filter(|s| s.next_offset > from) {
        let position = if segment.base_offset < from {
            u64::from(segment.offset_index.lookup(segment.relative(from)))
        } else {
            0
        };
        scan_batches(
            &segment.file,
            &segment.path,
            position,
            segment.size_bytes,
            |_, batch, header| {
                if header.last_offset() < from || header.producer_id < 0 {
                    return Visit::Continue;
                }
                match control_record::parse_marker(&batch, header) {
                    Some(marker) => states.record_marker(
                        header.producer_id,
                        header.producer_epoch,
                        marker.coordinator_epoch,
                        header.base_offset,
                        marker.commit,
                        header.max_timestamp,
                    ),
                    None if header.is_control() => {}
                    None => states.record(header, header.base_offset, header.max_timestamp),
                }
                Visit::Continue
            },
        )
        .await?;
    }
    // Sealed segments' `.txnindex` files (normally also in the snapshot),
    // then whatever a crash cut off the end is forgotten.
    for segment in segments.iter().filter(|s| s.sealed) {
        let path = segment::txn_index_path(dir, segment.base_offset);
        let owned_path = path.clone();
        if let Ok(bytes) = blocking(move || std::fs::read(owned_path)).await {
            match AbortedTxn::decode_index(&bytes) {
                Some(entries) => states.add_aborted(entries),
                None => log::warn!("{}: not a transaction index; ignored", path.display()),
            }
        }
    }
    states.truncate_aborted(end);
    Ok(states)
}

/// Base offsets of the `.log` files in `dir`, ascending; creates `dir`.
fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    std::fs::create_dir_all(dir).map_err(|e| LogError::io("create directory", dir, e))?;
    super::compaction::recover_swaps(dir)?;
    let entries = std::fs::read_dir(dir).map_err(|e| LogError::io("list", dir, e))?;
    let mut bases = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io("list", dir, e))?;
        if let Some(base) = entry.file_name().to_str().and_then(parse_log_file_name) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Opens one segment. `next_base` is None for the active (last) segment.
/// Returns the segment and, for a sealed segment with a corrupt batch, why.
async fn open_segment(
    dir: &Path,
    base_offset: i64,
    next_base: Option<i64>,
    gaps_allowed: bool,
) -> Result<(Segment, Option<String>), LogError> {
    let path = log_path(dir, base_offset);
    let file = Rc::new(open_dma(&path, false).await?);
    let file_bytes = file
        .file_size()
        .await
        .map_err(|e| LogError::io("stat", &path, e))?;
    let (offset_bytes, time_bytes) = {
        let index = index_path(dir, base_offset);
        let time = time_index_path(dir, base_offset);
        blocking(move || (std::fs::read(index).ok(), std::fs::read(time).ok())).await
    };
    let offset_index = offset_bytes.and_then(|b| OffsetIndex::decode(&b, file_bytes));
    let time_index = time_bytes.and_then(|b| TimeIndex::decode(&b));
    if let (Some(next_base), Some(offset_index), Some(time_index)) = (next_base, &offset_index, &time_index) {
        // A sealed segment's time index ends with its largest timestamp
        // (`finish_time_index`); without that entry (e.g. an index file
        // not yet written back at a crash) the segment is rescanned.
        let time_index_complete = time_index
            .last()
            .is_some_and(|last| base_offset + i64::from(last.relative_offset) < next_base);
        if time_index_complete {
            // A sealed segment with consistent indexes: trust them.
            let mut segment = Segment::empty(path.clone(), file.clone(), base_offset);
            segment.size_bytes = file_bytes;
            segment.next_offset = next_base;
            if let Some(last) = time_index.last() {
                segment.max_timestamp_ms = last.timestamp_ms;
                segment.max_timestamp_offset = base_offset + i64::from(last.relative_offset);
            }
            segment.offset_index = offset_index.clone();
            segment.time_index = time_index.clone();
            segment.sealed = true;
            return Ok((segment, None));
        }
    }

    // The active segment resumes at its last index entry, whose batch must
    // be there, intact, and end at the offset the entry names. If the scan
    // then keeps less than the index files describe (damage at or before
    // their last entries), they are dropped and the segment rescanned from
    // 0, so offsets, indexes and the largest timestamp match what is kept.
    let mut resumed = None;
    if let (Some(offset_index), Some(time_index), None) = (offset_index, time_index, next_base) {
        if let Some(entry) = offset_index.last() {
            let mut segment = Segment::empty(path.clone(), file.clone(), base_offset);
            segment.offset_index = offset_index;
            segment.time_index = time_index;
            if let Some(last) = segment.time_index.last() {
                segment.max_timestamp_ms = last.timestamp_ms;
                segment.max_timestamp_offset = base_offset + i64::from(last.relative_offset);
            }
            segment.size_bytes = u64::from(entry.position);
            let entry_last_offset = base_offset + i64::from(entry.relative_offset);
            let outcome = scan_into(
                &mut segment,
                &file,
                &path,
                file_bytes,
                Some(entry_last_offset),
                None,
                false,
            )
            .await?;
            if segment.next_offset > entry_last_offset && segment.max_timestamp_offset < segment.next_offset {
                resumed = Some((segment, outcome));
            } else {
                log::warn!(
                    "{}: {:?} at byte {} is inside what the index files describe; rescanning from 0",
                    path.display(),
                    outcome.stop,
                    outcome.valid_end
                );
            }
        }
    }
    let (mut segment, outcome) = match resumed {
        Some(resumed) => resumed,
        None => {
            let mut segment = Segment::empty(path.clone(), file.clone(), base_offset);
            let gaps_allowed = gaps_allowed && next_base.is_some();
            let outcome = scan_into(
                &mut segment,
                &file,
                &path,
                file_bytes,
                None,
                next_base,
                gaps_allowed,
            )
            .await?;
            (segment, outcome)
        }
    };
    let valid_end = outcome.valid_end;
    let mut corruption = None;
    match (&outcome.stop, next_base) {
        // Compaction may have removed the last records of a sealed segment:
        // it may then end before the next one starts, never after.
        (ScanStop::End, Some(next_base))
            if segment.next_offset > next_base || (!gaps_allowed && segment.next_offset != next_base) =>
        {
            corruption = Some(format!(
                "{}: sealed segment ends at offset {} but the next segment starts at {next_base}",
                path.display(),
                segment.next_offset
            ));
        }
        (ScanStop::End, _) => {}
        (ScanStop::ZeroPadding, None) => {
            log::info!(
                "{}: trimming O_DIRECT padding after byte {valid_end}",
                path.display()
            );
        }
        (stop, None) => {
            log::warn!(
                "{}: {stop:?} at byte {valid_end} of {file_bytes}; truncating the unacknowledged tail",
                path.display()
            );
        }
        (stop, Some(_)) => {
            corruption = Some(format!(
                "{}: sealed segment is damaged at byte {valid_end} (offset {}): {stop:?}",
                path.display(),
                segment.next_offset
            ));
        }
    }
    if next_base.is_none() {
        if valid_end < file_bytes {
            file.truncate(valid_end)
                .await
                .map_err(|e| LogError::io("truncate", &path, e))?;
            file.fdatasync()
                .await
                .map_err(|e| LogError::io("fdatasync", &path, e))?;
        }
        let alignment = file.alignment();
        let tail_start = valid_end - valid_end % alignment;
        let tail_bytes = (valid_end - tail_start) as usize;
        if tail_bytes > 0 {
            let read = file
                .read_at(tail_start, tail_bytes)
                .await
                .map_err(|e| LogError::io("read", &path, e))?;
            if read.len() != tail_bytes {
                return Err(LogError::io("read", &path, "short read of the tail block"));
            }
            segment.tail_block = read.to_vec();
        }
    } else {
        segment.sealed = true;
        if corruption.is_none() {
            segment.next_offset = segment.next_offset.max(next_base.unwrap_or(0));
            // The indexes were rebuilt by the scan: keep them for next time.
            segment.finish_time_index();
            segment::write_index_files(segment.index_files()).await?;
        }
    }
    segment
        .offset_index
        .truncate_to_position(u32::try_from(valid_end).unwrap_or(u32::MAX));
    Ok((segment, corruption))
}

/// Scans `segment`'s file from `segment.size_bytes` to `file_bytes` and
/// accounts every valid batch. A batch is valid when its CRC matches and its
/// offsets (`baseOffset` is outside the CRC) continue the segment densely,
/// or, for the first batch of a resumed scan, end at
/// `resumed_last_offset`; and they fit the segment: at most `u32::MAX`
/// past its base, below `next_base` for a sealed segment.
async fn scan_into(
    segment: &mut Segment,
    file: &DmaFile,
    path: &Path,
    file_bytes: u64,
    resumed_last_offset: Option<i64>,
    next_base: Option<i64>,
    gaps_allowed: bool,
) -> Result<ScanOutcome, LogError> {
    let mut resumed_last_offset = resumed_last_offset;
    scan_batches(
        file,
        path,
        segment.size_bytes,
        file_bytes,
        |position, batch, header| {
            if let Err(e) = record_batch::verify_crc(&batch) {
                return Visit::Reject(e.to_string());
            }
            let (base, last) = (header.base_offset, header.last_offset());
            let expected_base = match resumed_last_offset.take() {
                Some(expected_last) if last == expected_last => base,
                Some(expected_last) => {
                    return Visit::Reject(format!(
                        "batch ends at offset {last}, its index entry says {expected_last}"
                    ))
                }
                None => segment.next_offset,
            };
            let fits = base >= segment.base_offset
                && last >= base
                && last - segment.base_offset <= i64::from(u32::MAX)
                && next_base.is_none_or(|next_base| last < next_base);
            // Compaction leaves gaps between the batches of sealed
            // segments of a compacted log; anywhere else a gap is damage.
            let in_order = if gaps_allowed {
                base >= expected_base
            } else {
                base == expected_base
            };
            if !in_order || !fits {
                return Visit::Reject(format!(
                    "batch at offsets {base}..={last}, expected one at {expected_base}"
                ));
            }
            segment.record_batch(BatchPlacement {
                base_offset: base,
                last_offset: last,
                max_timestamp_ms: header.max_timestamp,
                position,
                size_bytes: batch.len() as u64,
            });
            Visit::Continue
        },
    )
    .await
}
