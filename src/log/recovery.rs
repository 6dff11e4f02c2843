//! Opening a partition directory: rebuild the in-memory log from its files.
//!
//! Sealed segments were fdatasync'ed when they rolled; their indexes are
//! trusted when consistent, else rebuilt by a scan that verifies every
//! batch's CRC. A corrupt batch inside a sealed segment is reported and the
//! partition goes offline at that offset: nothing past it is served and no
//! append can land behind it (the files are left as they are for an
//! operator). The active segment is always scanned from its last index
//! entry (from 0 without one), CRCs verified, and truncated at the first
//! torn, zero-padded or corrupt batch: only unacknowledged data can be there.

use std::{path::Path, rc::Rc};

use super::{
    blocking,
    index::{OffsetIndex, TimeIndex},
    partition::{LogState, PartitionLog},
    scan::{scan_batches, ScanStop, Visit},
    segment::{
        index_path, log_path, open_dma, parse_log_file_name, time_index_path, BatchPlacement, Segment,
    },
    LogError,
};
use crate::{metadata::TopicConfig, protocol::record_batch};

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
    let mut segments: Vec<Segment> = Vec::with_capacity(bases.len().max(1));
    let mut offline = None;
    if bases.is_empty() {
        segments.push(Segment::create(dir, 0).await?);
        let owned_dir = dir.to_path_buf();
        blocking(move || crate::metadata::store::sync_directory(&owned_dir))
            .await
            .map_err(|e| LogError::io("fsync", dir, e))?;
    }
    for (position, &base_offset) in bases.iter().enumerate() {
        let next_base = bases.get(position + 1).copied();
        let (segment, corruption) = open_segment(dir, base_offset, next_base).await?;
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
    let state = LogState::recovered(segments, alignment, offline);
    Ok(PartitionLog::new(
        topic.to_string(),
        partition,
        dir.to_path_buf(),
        config,
        append_write_bytes_max,
        state,
    ))
}

/// Base offsets of the `.log` files in `dir`, ascending; creates `dir`.
fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    std::fs::create_dir_all(dir).map_err(|e| LogError::io("create directory", dir, e))?;
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
    let mut segment = Segment::empty(path.clone(), file.clone(), base_offset);

    if let (Some(next_base), Some(offset_index), Some(time_index)) = (next_base, &offset_index, &time_index) {
        // A sealed segment with consistent indexes: trust them.
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

    // Scan: from the last index entry of the active segment, else from 0.
    let start = match (&offset_index, next_base) {
        (Some(index), None) => index.last().map_or(0, |e| u64::from(e.position)),
        _ => 0,
    };
    if start > 0 {
        if let (Some(offset_index), Some(time_index)) = (offset_index, time_index) {
            segment.offset_index = offset_index;
            segment.time_index = time_index;
            if let Some(last) = segment.time_index.last() {
                segment.max_timestamp_ms = last.timestamp_ms;
                segment.max_timestamp_offset = base_offset + i64::from(last.relative_offset);
            }
            segment.size_bytes = start;
            segment.bytes_since_index_entry = 0;
        }
    }
    let scan_start = segment.size_bytes;
    let mut first_batch = true;
    let outcome = scan_batches(&file, &path, scan_start, file_bytes, |position, batch, header| {
        if let Err(e) = record_batch::verify_crc(&batch) {
            return Visit::Reject(e.to_string());
        }
        if first_batch {
            // Resuming mid-segment: the next offset is this batch's base.
            segment.next_offset = segment.next_offset.max(header.base_offset);
            first_batch = false;
        }
        if header.base_offset < segment.next_offset {
            return Visit::Reject(format!("offset {} goes backwards", header.base_offset));
        }
        segment.record_batch(BatchPlacement {
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            max_timestamp_ms: header.max_timestamp,
            position,
            size_bytes: batch.len() as u64,
        });
        Visit::Continue
    })
    .await?;
    let valid_end = outcome.valid_end;
    let mut corruption = None;
    match (&outcome.stop, next_base) {
        (ScanStop::End, _) => {}
        (ScanStop::ZeroPadding, None) => {
            log::info!("{}: trimming O_DIRECT padding after byte {valid_end}", path.display());
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
        }
    }
    segment
        .offset_index
        .truncate_to_position(u32::try_from(valid_end).unwrap_or(u32::MAX));
    Ok((segment, corruption))
}
