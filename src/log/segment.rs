//! One segment of a partition log: a `.log` file of v2 record batches exactly
//! as they travel on the wire, and its in-memory indexes.
//!
//! Lives on the shard that owns the partition. `size_bytes` counts complete,
//! written batches only: the file may be longer (zero padding of the last
//! O_DIRECT block, or a torn write after a crash) and nothing past
//! `size_bytes` is ever served. The last partial block is kept in
//! `tail_block` so the next aligned write can rewrite it whole.

use std::{
    path::{Path, PathBuf},
    rc::Rc,
};

use glommio::io::{DmaFile, OpenOptions};

use super::{
    index::{OffsetEntry, OffsetIndex, TimeEntry, TimeIndex},
    LogError,
};
use crate::limits::INDEX_INTERVAL_BYTES;

/// What the log needs to know about a batch to index it.
#[derive(Debug, Clone, Copy)]
pub struct BatchPlacement {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp_ms: i64,
    pub position: u64,
    pub size_bytes: u64,
}

pub struct Segment {
    pub base_offset: i64,
    pub path: PathBuf,
    pub file: Rc<DmaFile>,
    /// A buffered (page cache) read-only fd for cold reads as regions,
    /// opened on first use.
    pub buffered: Option<std::sync::Arc<std::fs::File>>,
    /// Bytes of complete batches; everything below is readable.
    pub size_bytes: u64,
    /// Offset after the last batch (== base_offset while empty).
    pub next_offset: i64,
    /// The written bytes of the last partial alignment block.
    pub tail_block: Vec<u8>,
    pub offset_index: OffsetIndex,
    pub time_index: TimeIndex,
    pub bytes_since_index_entry: u64,
    pub max_timestamp_ms: i64,
    pub max_timestamp_offset: i64,
    /// Wall clock of the first append, for `segment.ms` rolling.
    pub first_append_wall_ms: Option<u64>,
    pub sealed: bool,
}

pub fn log_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}.log"))
}

pub fn index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}.index"))
}

pub fn time_index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}.timeindex"))
}

/// The segment's aborted-transaction index (Kafka's `.txnindex`): one
/// entry per ABORT marker in the segment; written when it is sealed.
pub fn txn_index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}.txnindex"))
}

/// Base offset from a `.log` file name, or None for other files.
pub fn parse_log_file_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub async fn open_dma(path: &Path, create: bool) -> Result<DmaFile, LogError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .dma_open(path)
        .await
        .map_err(|e| LogError::io("open", path, e))
}

impl Segment {
    /// A new, empty segment file (the caller makes its directory entry durable).
    pub async fn create(dir: &Path, base_offset: i64) -> Result<Segment, LogError> {
        let path = log_path(dir, base_offset);
        let file = open_dma(&path, true).await?;
        Ok(Segment::empty(path, Rc::new(file), base_offset))
    }

    pub fn empty(path: PathBuf, file: Rc<DmaFile>, base_offset: i64) -> Segment {
        Segment {
            base_offset,
            path,
            file,
            buffered: None,
            size_bytes: 0,
            next_offset: base_offset,
            tail_block: Vec::new(),
            offset_index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
            bytes_since_index_entry: 0,
            max_timestamp_ms: -1,
            max_timestamp_offset: -1,
            first_append_wall_ms: None,
            sealed: false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.next_offset == self.base_offset
    }

    /// Relative offset of an absolute one; callers roll segments before an
    /// offset would not fit.
    pub fn relative(&self, offset: i64) -> u32 {
        u32::try_from(offset - self.base_offset).expect("segment offsets span at most u32::MAX")
    }

    /// Accounts a batch written (or found by recovery) at `placement`:
    /// advances size and next offset, adds index entries every
    /// `INDEX_INTERVAL_BYTES`, tracks the largest timestamp.
    pub fn record_batch(&mut self, placement: BatchPlacement) {
        assert_eq!(placement.position, self.size_bytes, "batches are contiguous");
        assert!(placement.base_offset >= self.next_offset, "offsets increase");
        if placement.max_timestamp_ms > self.max_timestamp_ms {
            self.max_timestamp_ms = placement.max_timestamp_ms;
            self.max_timestamp_offset = placement.last_offset;
        }
        if self.bytes_since_index_entry >= INDEX_INTERVAL_BYTES {
            let position = u32::try_from(placement.position).expect("segment size fits u32");
            self.offset_index.push(OffsetEntry {
                relative_offset: self.relative(placement.last_offset),
                position,
            });
            if self.max_timestamp_ms >= 0 {
                self.time_index.push(TimeEntry {
                    timestamp_ms: self.max_timestamp_ms,
                    relative_offset: self.relative(self.max_timestamp_offset),
                });
            }
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += placement.size_bytes;
        self.size_bytes += placement.size_bytes;
        self.next_offset = placement.last_offset + 1;
    }

    /// Paths and contents of this segment's `.index` and `.timeindex`.
    pub fn index_files(&self) -> IndexFiles {
        let dir = self.path.parent().map(Path::to_path_buf).unwrap_or_default();
        [
            (index_path(&dir, self.base_offset), self.offset_index.encode()),
            (time_index_path(&dir, self.base_offset), self.time_index.encode()),
        ]
    }

    /// Adds the final time index entry (the segment's largest timestamp), as
    /// Kafka does when a segment stops being active, so a reopened segment
    /// knows its largest timestamp from the file alone.
    pub fn finish_time_index(&mut self) {
        if self.max_timestamp_ms >= 0 {
            self.time_index.push(TimeEntry {
                timestamp_ms: self.max_timestamp_ms,
                relative_offset: self.relative(self.max_timestamp_offset),
            });
        }
    }
}

pub type IndexFiles = [(PathBuf, Vec<u8>); 2];

/// Writes and fsyncs index files (at roll, at clean shutdown, after a
/// rebuild or a compaction pass). They are caches of the log, but a sealed
/// segment's indexes are trusted at start when consistent, so they must not
/// be half-written. Plain std::fs on a thread of its own (`off_shard`).
pub async fn write_index_files(files: IndexFiles) -> Result<(), LogError> {
    // Off the shard: two fsyncs can take milliseconds, and a compaction pass
    // writes indexes for every segment it rewrites.
    super::off_shard(move || {
        for (path, bytes) in &files {
            std::fs::write(path, bytes)
                .and_then(|_| std::fs::File::open(path)?.sync_data())
                .map_err(|e| LogError::io("write index", path, e))?;
        }
        Ok(())
    })
    .await
}

/// fsync a directory so a created file is durable (inline: see
/// `super::blocking`; glommio's `Directory` open/sync was seen to never
/// complete here).
pub async fn sync_directory(dir: &Path) -> Result<(), LogError> {
    super::blocking(|| crate::metadata::store::sync_directory(dir))
        .await
        .map_err(|e| LogError::io("fsync", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_file_names_are_twenty_digit_base_offsets() {
        let dir = Path::new("/d");
        assert_eq!(log_path(dir, 42), PathBuf::from("/d/00000000000000000042.log"));
        assert_eq!(parse_log_file_name("00000000000000000042.log"), Some(42));
        assert_eq!(parse_log_file_name("00000000000000000042.index"), None);
        assert_eq!(parse_log_file_name("42.log"), None);
    }
}
