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
    let mut cursor = BatchCursor::new(file, path, start, end);
    loop {
        match cursor.next().await? {
            Next::Batch(position, batch, header) => {
                let total = batch.len() as u64;
                match visit(position, batch, &header) {
                    Visit::Continue => {}
                    Visit::Stop => {
                        return Ok(ScanOutcome {
                            valid_end: position + total,
                            stop: ScanStop::Visitor,
                        })
                    }
                    Visit::Reject(reason) => {
                        return Ok(ScanOutcome {
                            valid_end: position,
                            stop: ScanStop::Invalid(reason),
                        })
                    }
                }
            }
            Next::End(outcome) => return Ok(outcome),
        }
    }
}

/// What [`BatchCursor::next`] found.
pub enum Next {
    /// A complete batch at this file position.
    Batch(u64, Bytes, BatchHeader),
    /// No more batches, and why.
    End(ScanOutcome),
}

/// A pull-based walk over the batches of `[start, end)`, reading large
/// chunks only when the current one is used up: the caller may await (or
/// yield to other tasks) between batches, which `scan_batches`' visitor
/// cannot.
pub struct BatchCursor<'a> {
    file: &'a DmaFile,
    path: &'a std::path::Path,
    end: u64,
    /// File position of `chunk[0]`.
    chunk_position: u64,
    chunk: Bytes,
    /// Next unread byte in `chunk`.
    cursor: usize,
    /// The range (or the file) ends within `chunk`.
    range_ends_in_chunk: bool,
    want_bytes: usize,
}

impl<'a> BatchCursor<'a> {
    pub fn new(file: &'a DmaFile, path: &'a std::path::Path, start: u64, end: u64) -> BatchCursor<'a> {
        BatchCursor {
            file,
            path,
            end,
            chunk_position: start,
            chunk: Bytes::new(),
            cursor: 0,
            range_ends_in_chunk: false,
            want_bytes: SCAN_READ_BYTES,
        }
    }

    fn end_at(&self, stop: ScanStop) -> Next {
        Next::End(ScanOutcome {
            valid_end: self.chunk_position + self.cursor as u64,
            stop,
        })
    }

    /// The next complete batch, or why there is none.
    pub async fn next(&mut self) -> Result<Next, LogError> {
        loop {
            let remaining = self.chunk.len() - self.cursor;
            if remaining == 0 || self.needs_more(remaining) {
                // Read from the first unused byte on.
                self.chunk_position += self.cursor as u64;
                self.cursor = 0;
                self.chunk = Bytes::new();
                if self.chunk_position >= self.end {
                    return Ok(self.end_at(ScanStop::End));
                }
                let read_bytes = usize::try_from(self.end - self.chunk_position)
                    .unwrap_or(usize::MAX)
                    .min(self.want_bytes);
                let read = self
                    .file
                    .read_at(self.chunk_position, read_bytes)
                    .await
                    .map_err(|e| LogError::io("read", self.path, e))?;
                if read.is_empty() {
                    // The file is shorter than the range claims.
                    return Ok(self.end_at(ScanStop::Torn));
                }
                self.chunk = Bytes::copy_from_slice(&read);
                // A short read means the file ends here, whatever the range said.
                self.range_ends_in_chunk = self.chunk_position + self.chunk.len() as u64 >= self.end
                    || self.chunk.len() < read_bytes;
                self.want_bytes = SCAN_READ_BYTES;
                continue;
            }
            let chunk = &self.chunk[self.cursor..];
            if remaining >= LOG_OVERHEAD_BYTES_MIN && chunk[..LOG_OVERHEAD_BYTES_MIN].iter().all(|&b| b == 0)
            {
                return Ok(self.end_at(ScanStop::ZeroPadding));
            }
            if remaining < BATCH_HEADER_BYTES {
                return Ok(self.end_at(ScanStop::Torn));
            }
            let header = match BatchHeader::parse(chunk) {
                Ok(header) => header,
                Err(e) => return Ok(self.end_at(ScanStop::Invalid(e.to_string()))),
            };
            let total = header.total_bytes();
            if remaining < total {
                return Ok(self.end_at(ScanStop::Torn));
            }
            let position = self.chunk_position + self.cursor as u64;
            let batch = self.chunk.slice(self.cursor..self.cursor + total);
            self.cursor += total;
            return Ok(Next::Batch(position, batch, header));
        }
    }

    /// Whether the rest of the chunk lacks a whole batch that a longer read
    /// could complete (then the chunk is read again from the cursor, large
    /// enough for the batch).
    fn needs_more(&mut self, remaining: usize) -> bool {
        if self.range_ends_in_chunk {
            return false;
        }
        if remaining < BATCH_HEADER_BYTES {
            return true;
        }
        match BatchHeader::parse(&self.chunk[self.cursor..]) {
            Ok(header) if remaining < header.total_bytes() => {
                self.want_bytes = SCAN_READ_BYTES.max(header.total_bytes());
                true
            }
            _ => false,
        }
    }
}
