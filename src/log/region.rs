//! Cold reads as file regions: which bytes of a segment answer a fetch,
//! found by walking batch headers through a buffered (page cache) fd, so
//! the connection can move them to the socket without copying them through
//! user space (splice), or, where that is not possible, read them.
//!
//! O_DIRECT writes invalidate the page cache pages they cover, so a buffered
//! read of bytes below the high watermark sees what was written. The walk
//! runs on glommio's blocking pool (a header read may wait for the disk);
//! it also warms the page cache for the transfer that follows.

use std::{fs::File, io, os::unix::fs::FileExt, sync::Arc};

use crate::protocol::record_batch::{BatchHeader, BATCH_HEADER_BYTES};

/// Bytes of a segment file to send as they are: whole batches.
#[derive(Debug, Clone)]
pub struct FileRegion {
    pub file: Arc<File>,
    pub position: u64,
    pub bytes: usize,
}

/// What a header walk found in one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionPlan {
    /// No batch at or after the fetch offset here: try the next segment.
    NoData,
    /// Whole batches `[start, end)`; empty when the first one does not fit.
    Range { start: u64, end: u64 },
}

/// Walks headers in `[from, to)` of `file` (positions of batch starts; `to`
/// is the end of complete data) and plans the same batches the in-memory
/// scan would return: from the batch holding `fetch_offset`, whole batches
/// within `max_bytes`, the first one even when larger if
/// `first_batch_may_exceed`.
pub fn plan_region(
    file: &File,
    from: u64,
    to: u64,
    fetch_offset: i64,
    max_bytes: usize,
    first_batch_may_exceed: bool,
) -> io::Result<RegionPlan> {
    let mut position = from;
    let mut start = None;
    let mut header_bytes = [0u8; BATCH_HEADER_BYTES];
    while position + BATCH_HEADER_BYTES as u64 <= to {
        file.read_exact_at(&mut header_bytes, position)?;
        let header = BatchHeader::parse(&header_bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("at byte {position}: {e}")))?;
        let total = header.total_bytes() as u64;
        if position + total > to {
            break;
        }
        if header.last_offset() < fetch_offset {
            position += total;
            continue;
        }
        let first = *start.get_or_insert(position);
        let taken = (position - first) as usize;
        if taken + total as usize > max_bytes && (taken > 0 || !first_batch_may_exceed) {
            return Ok(RegionPlan::Range {
                start: first,
                end: position,
            });
        }
        position += total;
        if (position - first) as usize >= max_bytes {
            break;
        }
    }
    Ok(match start {
        Some(start) => RegionPlan::Range { start, end: position },
        None => RegionPlan::NoData,
    })
}

/// The region's bytes, read (the fallback when splice cannot be used).
pub fn read_region(region: &FileRegion) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; region.bytes];
    region.file.read_exact_at(&mut bytes, region.position)?;
    Ok(bytes)
}
