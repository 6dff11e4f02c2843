//! Reads a byte range of a segment in large DMA reads and walks the record
//! batches in it, for recovery, fetch and timestamp lookups.
//!
//! A batch is visited only when it is complete within the range; the walk
//! says why it stopped, so recovery can tell clean end-of-data from a torn
//! tail, zero padding, or a corrupt header. The visitor receives each batch
//! as a `Bytes` slice of the chunk read (no copy per batch).

use bytes::Bytes;
use glommio::io::DmaFile;

use super::LogError;
use crate::{
    limits::{LOG_OVERHEAD_BYTES_MIN, SCAN_READ_BYTES},
    protocol::record_batch::{BatchHeader, BATCH_HEADER_BYTES},
};

/// Why a walk stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanStop {
    /// Reached the end of the range exactly after a batch.
    End,
    /// The visitor asked to stop.
    Visitor,
    /// Zero bytes where a batch header should be (O_DIRECT padding or never
    /// written space).
    ZeroPadding,
    /// A batch starts but does not end within the range (torn write).
    Torn,
    /// The bytes at the position are not a valid batch header, or the
    /// visitor rejected the batch (e.g. CRC mismatch).
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOutcome {
    /// File position just after the last complete batch visited.
    pub valid_end: u64,
    pub stop: ScanStop,
}

/// What the visitor wants next.
pub enum Visit {
    Continue,
    Stop,
    /// Treat this batch as invalid: stop before it with this reason.
    Reject(String),
}

/// Walks batches in `[start, end)` of `file`.
pub async fn scan_batches(
    file: &DmaFile,
    path: &std::path::Path,
    start: u64,
    end: u64,
    mut visit: impl FnMut(u64, Bytes, &BatchHeader) -> Visit,
) -> Result<ScanOutcome, LogError> {
    let mut position = start;
    let mut want_bytes = SCAN_READ_BYTES;
    while position < end {
        let read_bytes = usize::try_from(end - position)
            .unwrap_or(usize::MAX)
            .min(want_bytes);
        let read = file
            .read_at(position, read_bytes)
            .await
            .map_err(|e| LogError::io("read", path, e))?;
        if read.is_empty() {
            // The file is shorter than the range claims.
            return Ok(ScanOutcome {
                valid_end: position,
                stop: ScanStop::Torn,
            });
        }
        let chunk = Bytes::copy_from_slice(&read);
        // A short read means the file ends here, whatever the range said.
        let range_ends_in_chunk = position + chunk.len() as u64 >= end || chunk.len() < read_bytes;
        let mut cursor = 0usize;
        loop {
            let remaining = chunk.len() - cursor;
            if remaining == 0 {
                break;
            }
            if remaining >= LOG_OVERHEAD_BYTES_MIN
                && chunk[cursor..cursor + LOG_OVERHEAD_BYTES_MIN]
                    .iter()
                    .all(|&b| b == 0)
            {
                return Ok(ScanOutcome {
                    valid_end: position + cursor as u64,
                    stop: ScanStop::ZeroPadding,
                });
            }
            if remaining < BATCH_HEADER_BYTES {
                if range_ends_in_chunk {
                    return Ok(ScanOutcome {
                        valid_end: position + cursor as u64,
                        stop: ScanStop::Torn,
                    });
                }
                want_bytes = SCAN_READ_BYTES;
                break;
            }
            let header = match BatchHeader::parse(&chunk[cursor..]) {
                Ok(header) => header,
                Err(e) => {
                    return Ok(ScanOutcome {
                        valid_end: position + cursor as u64,
                        stop: ScanStop::Invalid(e.to_string()),
                    })
                }
            };
            let total = header.total_bytes();
            if remaining < total {
                if range_ends_in_chunk {
                    return Ok(ScanOutcome {
                        valid_end: position + cursor as u64,
                        stop: ScanStop::Torn,
                    });
                }
                want_bytes = SCAN_READ_BYTES.max(total);
                break;
            }
            let batch_position = position + cursor as u64;
            match visit(batch_position, chunk.slice(cursor..cursor + total), &header) {
                Visit::Continue => {}
                Visit::Stop => {
                    return Ok(ScanOutcome {
                        valid_end: batch_position + total as u64,
                        stop: ScanStop::Visitor,
                    })
                }
                Visit::Reject(reason) => {
                    return Ok(ScanOutcome {
                        valid_end: batch_position,
                        stop: ScanStop::Invalid(reason),
                    })
                }
            }
            cursor += total;
        }
        position += cursor as u64;
    }
    Ok(ScanOutcome {
        valid_end: position,
        stop: ScanStop::End,
    })
}
