//! Sparse offset index (`.index`) and time index (`.timeindex`) of one segment.
//!
//! Layout as Kafka's: `.index` entries are (relative last offset of a batch:
//! u32, file position of that batch: u32), `.timeindex` entries are (largest
//! timestamp so far: i64, relative offset of the batch that carries it: u32),
//! big-endian. One entry per `INDEX_INTERVAL_BYTES` of log. The indexes live
//! in memory (a segment of 1 GiB has ~256 Ki entries, 2 MiB) and are written
//! to disk when the segment is sealed and at clean shutdown; they are caches
//! of the log, so recovery rebuilds any that are missing or inconsistent.
//!
//! Invariants: offsets and positions strictly increase in `.index`;
//! timestamps and offsets strictly increase in `.timeindex`.

use crate::limits::{OFFSET_INDEX_ENTRY_BYTES, TIME_INDEX_ENTRY_BYTES};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp_ms: i64,
    pub relative_offset: u32,
}

#[derive(Debug, Default, Clone)]
pub struct OffsetIndex {
    entries: Vec<OffsetEntry>,
}

#[derive(Debug, Default, Clone)]
pub struct TimeIndex {
    entries: Vec<TimeEntry>,
}

impl OffsetIndex {
    /// Appends an entry; entries that do not advance are dropped (the index
    /// is sparse, skipping one costs only a longer scan).
    pub fn push(&mut self, entry: OffsetEntry) {
        if let Some(last) = self.entries.last() {
            if entry.relative_offset <= last.relative_offset || entry.position <= last.position {
                return;
            }
        }
        self.entries.push(entry);
    }

    /// File position of a batch at or before the batch holding
    /// `relative_offset`: scanning from there finds it.
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        // The entry names a batch whose last offset is <= target, so the
        // target is in a later batch: start right at that batch anyway (it is
        // cheap and also correct when the entry's batch ends exactly there).
        let count = self
            .entries
            .partition_point(|e| e.relative_offset < relative_offset);
        match count {
            0 => 0,
            n => self.entries[n - 1].position,
        }
    }

    pub fn last(&self) -> Option<OffsetEntry> {
        self.entries.last().copied()
    }

    /// Drops entries at or beyond `position` (after a tail truncation).
    pub fn truncate_to_position(&mut self, position: u32) {
        let keep = self.entries.partition_point(|e| e.position < position);
        self.entries.truncate(keep);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.entries.len() * OFFSET_INDEX_ENTRY_BYTES);
        for entry in &self.entries {
            bytes.extend_from_slice(&entry.relative_offset.to_be_bytes());
            bytes.extend_from_slice(&entry.position.to_be_bytes());
        }
        bytes
    }

    /// Parses an index file; None when it is not a consistent index for a
    /// log of `log_size_bytes` (then the caller rebuilds it).
    pub fn decode(bytes: &[u8], log_size_bytes: u64) -> Option<OffsetIndex> {
        if bytes.len() % OFFSET_INDEX_ENTRY_BYTES != 0 {
            return None;
        }
        let mut index = OffsetIndex::default();
        for chunk in bytes.chunks_exact(OFFSET_INDEX_ENTRY_BYTES) {
            let entry = OffsetEntry {
                relative_offset: u32::from_be_bytes(chunk[0..4].try_into().ok()?),
                position: u32::from_be_bytes(chunk[4..8].try_into().ok()?),
            };
            let advances = index.last().is_none_or(|last| {
                entry.relative_offset > last.relative_offset && entry.position > last.position
            });
            if !advances || u64::from(entry.position) >= log_size_bytes {
                return None;
            }
            index.entries.push(entry);
        }
        Some(index)
    }
}

impl TimeIndex {
    pub fn push(&mut self, entry: TimeEntry) {
        if let Some(last) = self.entries.last() {
            if entry.timestamp_ms <= last.timestamp_ms || entry.relative_offset <= last.relative_offset {
                return;
            }
        }
        self.entries.push(entry);
    }

    /// Relative offset from which to scan for the first record with
    /// timestamp >= `target_ms`: the offset of the last entry whose timestamp
    /// is strictly below the target (every record up to it is older), or 0.
    pub fn lookup(&self, target_ms: i64) -> u32 {
        let count = self.entries.partition_point(|e| e.timestamp_ms < target_ms);
        match count {
            0 => 0,
            n => self.entries[n - 1].relative_offset,
        }
    }

    pub fn last(&self) -> Option<TimeEntry> {
        self.entries.last().copied()
    }

    pub fn truncate_to_offset(&mut self, relative_offset_end: u32) {
        let keep = self
            .entries
            .partition_point(|e| e.relative_offset < relative_offset_end);
        self.entries.truncate(keep);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.entries.len() * TIME_INDEX_ENTRY_BYTES);
        for entry in &self.entries {
            bytes.extend_from_slice(&entry.timestamp_ms.to_be_bytes());
            bytes.extend_from_slice(&entry.relative_offset.to_be_bytes());
        }
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Option<TimeIndex> {
        if bytes.len() % TIME_INDEX_ENTRY_BYTES != 0 {
            return None;
        }
        let mut index = TimeIndex::default();
        for chunk in bytes.chunks_exact(TIME_INDEX_ENTRY_BYTES) {
            let entry = TimeEntry {
                timestamp_ms: i64::from_be_bytes(chunk[0..8].try_into().ok()?),
                relative_offset: u32::from_be_bytes(chunk[8..12].try_into().ok()?),
            };
            let advances = index.last().is_none_or(|last| {
                entry.timestamp_ms > last.timestamp_ms && entry.relative_offset > last.relative_offset
            });
            if !advances {
                return None;
            }
            index.entries.push(entry);
        }
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_lookup_returns_a_position_at_or_before_the_target() {
        let mut index = OffsetIndex::default();
        index.push(OffsetEntry {
            relative_offset: 9,
            position: 4100,
        });
        index.push(OffsetEntry {
            relative_offset: 19,
            position: 8300,
        });
        index.push(OffsetEntry {
            relative_offset: 19,
            position: 9000,
        }); // ignored
        assert_eq!(index.lookup(0), 0);
        assert_eq!(index.lookup(9), 0);
        assert_eq!(index.lookup(10), 4100);
        assert_eq!(index.lookup(25), 8300);
        let decoded = OffsetIndex::decode(&index.encode(), 10_000).unwrap();
        assert_eq!(decoded.last(), index.last());
        assert!(
            OffsetIndex::decode(&index.encode(), 8000).is_none(),
            "position past the log"
        );
        assert!(OffsetIndex::decode(&[0; 7], 10_000).is_none());
        index.truncate_to_position(8300);
        assert_eq!(index.last().unwrap().position, 4100);
    }

    #[test]
    fn time_lookup_starts_below_the_target() {
        let mut index = TimeIndex::default();
        index.push(TimeEntry {
            timestamp_ms: 100,
            relative_offset: 5,
        });
        index.push(TimeEntry {
            timestamp_ms: 200,
            relative_offset: 10,
        });
        index.push(TimeEntry {
            timestamp_ms: 150,
            relative_offset: 12,
        }); // not a new max
        assert_eq!(index.lookup(50), 0);
        assert_eq!(index.lookup(100), 0);
        assert_eq!(index.lookup(101), 5);
        assert_eq!(index.lookup(1000), 10);
        let decoded = TimeIndex::decode(&index.encode()).unwrap();
        assert_eq!(decoded.last(), index.last());
        let mut bad = index.encode();
        bad.extend_from_slice(&index.encode());
        assert!(TimeIndex::decode(&bad).is_none(), "non-increasing entries");
    }
}
