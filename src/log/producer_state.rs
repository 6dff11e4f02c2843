//! Per-partition producer state: what makes idempotent produce exactly-once.
//!
//! For each producer id that wrote to the partition, the log keeps the
//! producer's epoch and the sequence ranges (with their offsets) of its last
//! [`PRODUCER_BATCHES_KEPT`] batches: the most a producer can have in flight
//! (`max.in.flight.requests.per.connection <= 5` with idempotence). A retried
//! batch equal to one of them is a duplicate and is answered with the
//! original offsets; any other batch must continue the sequence exactly.
//!
//! Lives inside the partition's [`super::partition::LogState`], on the
//! owning shard; checked and updated synchronously in `assign`, in offset
//! order, so the state always describes every assigned batch.
//!
//! Durability: the table is snapshotted to `<offset>.snapshot` beside the
//! segments (when a segment rolls and at clean close). A snapshot at offset
//! X describes the batches below X; it is only used when the recovered log
//! reaches X (a snapshot taken while writes were still pending may be ahead
//! of what a crash left on disk), and the log from X on is replayed into it.
//! Snapshots are CRC32C-checked; a bad one is skipped like a missing one.
//!
//! Invariants: at most [`PRODUCER_BATCHES_KEPT`] batches per producer, all
//! of the producer's current epoch, in offset order; at most
//! [`PRODUCER_STATES_PER_PARTITION_MAX`] producers per partition (the least
//! recently active one without an open transaction is dropped first).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    path::{Path, PathBuf},
};

use crate::{limits::PRODUCER_STATES_PER_PARTITION_MAX, protocol::record_batch::BatchHeader};

/// Batches remembered per producer for duplicate detection.
pub const PRODUCER_BATCHES_KEPT: usize = 5;

/// Sequence range and placement of one batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// The last batches of `epoch`, oldest first.
    pub batches: VecDeque<ProducerBatch>,
    /// Timestamp of the producer's last batch or marker (its largest
    /// timestamp), as Kafka keeps it: DescribeProducers shows it and
    /// expiration measures idleness from it.
    pub last_timestamp_ms: i64,
    /// Epoch of the transaction coordinator that wrote the last marker.
    pub coordinator_epoch: i32,
    /// First offset of the producer's open transaction here, if any.
    pub transaction_first_offset: Option<i64>,
}

impl ProducerEntry {
    fn new(epoch: i16) -> ProducerEntry {
        ProducerEntry {
            epoch,
            batches: VecDeque::with_capacity(PRODUCER_BATCHES_KEPT),
            last_timestamp_ms: -1,
            coordinator_epoch: -1,
            transaction_first_offset: None,
        }
    }
}

/// What to do with a batch, by its producer's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Append,
    /// Already in the log: answer with these offsets, append nothing.
    Duplicate(ProducerBatch),
}

/// Why a producer's batch is refused; nothing is appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProducerError {
    /// The batch's epoch is older than the partition's (INVALID_PRODUCER_EPOCH).
    StaleEpoch {
        producer_id: i64,
        epoch: i16,
        current_epoch: i16,
    },
    /// The sequence does not continue the producer's last batch
    /// (OUT_OF_ORDER_SEQUENCE_NUMBER).
    OutOfOrder {
        producer_id: i64,
        first_sequence: i32,
        last_sequence: Option<i32>,
    },
}

impl std::fmt::Display for ProducerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProducerError::StaleEpoch {
                producer_id,
                epoch,
                current_epoch,
            } => write!(
                f,
                "producer {producer_id}: epoch {epoch} is older than the current epoch {current_epoch}"
            ),
            ProducerError::OutOfOrder {
                producer_id,
                first_sequence,
                last_sequence: Some(last),
            } => write!(
                f,
                "producer {producer_id}: sequence {first_sequence} does not follow {last}"
            ),
            ProducerError::OutOfOrder {
                producer_id,
                first_sequence,
                last_sequence: None,
            } => write!(
                f,
                "producer {producer_id}: a new epoch must start at sequence 0, not {first_sequence}"
            ),
        }
    }
}

/// `base + delta` in Kafka's sequence space, which wraps from `i32::MAX` to 0.
pub fn sequence_add(base: i32, delta: i32) -> i32 {
    debug_assert!(base >= 0 && delta >= 0);
    if base > i32::MAX - delta {
        delta - (i32::MAX - base) - 1
    } else {
        base + delta
    }
}

fn follows(last: i32, next: i32) -> bool {
    next == sequence_add(last, 1)
}

/// A transaction aborted on this partition: its data spans
/// `first_offset..last_offset` (the ABORT marker's offset). read_committed
/// consumers drop that producer's batches in the range (Kafka's `.txnindex`
/// entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    /// The partition's last stable offset once the marker was written.
    pub last_stable_offset: i64,
}

/// Bytes of one `.txnindex` entry: version i16, producer id, first offset,
/// last offset, last stable offset (Kafka's layout).
pub const TXN_INDEX_ENTRY_BYTES: usize = 34;

impl AbortedTxn {
    pub fn encode_index_entry(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&0i16.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.first_offset.to_be_bytes());
        out.extend_from_slice(&self.last_offset.to_be_bytes());
        out.extend_from_slice(&self.last_stable_offset.to_be_bytes());
    }

    /// Entries of a `.txnindex` file; None when it is not one (wrong size
    /// or version), so the caller falls back to replaying the log.
    pub fn decode_index(bytes: &[u8]) -> Option<Vec<AbortedTxn>> {
        if bytes.len() % TXN_INDEX_ENTRY_BYTES != 0 {
            return None;
        }
        bytes
            .chunks_exact(TXN_INDEX_ENTRY_BYTES)
            .map(|entry| {
                let mut reader = Reader { bytes: entry };
                (reader.i16()? == 0).then_some(())?;
                Some(AbortedTxn {
                    producer_id: reader.i64()?,
                    first_offset: reader.i64()?,
                    last_offset: reader.i64()?,
                    last_stable_offset: reader.i64()?,
                })
            })
            .collect()
    }
}

/// The producer state of one partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProducerStates {
    entries: HashMap<i64, ProducerEntry>,
    /// `(first offset, producer id)` of every open transaction: the
    /// smallest bounds the last stable offset.
    open: BTreeSet<(i64, i64)>,
    /// Aborted transactions by marker offset (`last_offset`).
    aborted: BTreeMap<i64, AbortedTxn>,
}

impl ProducerStates {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.entries.get(&producer_id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.entries.iter().map(|(id, entry)| (*id, entry))
    }

    /// Decides whether a validated batch may be appended. Batches without a
    /// producer id (`-1`) are always appended.
    pub fn check(&self, header: &BatchHeader) -> Result<Admission, ProducerError> {
        let producer_id = header.producer_id;
        // Without a sequence: the broker's own transactional writes
        // (TxnOffsetCommit), which only need the epoch check below.
        if producer_id < 0 {
            return Ok(Admission::Append);
        }
        // Unknown (new, or expired): any sequence is accepted, as Kafka does
        // since KIP-360, so a producer whose state expired can continue.
        let Some(entry) = self.entries.get(&producer_id) else {
            return Ok(Admission::Append);
        };
        let epoch = header.producer_epoch;
        let first_sequence = header.base_sequence;
        if epoch < entry.epoch {
            return Err(ProducerError::StaleEpoch {
                producer_id,
                epoch,
                current_epoch: entry.epoch,
            });
        }
        if header.base_sequence < 0 {
            return Ok(Admission::Append);
        }
        if epoch > entry.epoch {
            // A bumped epoch starts a new sequence.
            return if first_sequence == 0 {
                Ok(Admission::Append)
            } else {
                Err(ProducerError::OutOfOrder {
                    producer_id,
                    first_sequence,
                    last_sequence: None,
                })
            };
        }
        let last_sequence = sequence_add(first_sequence, header.last_offset_delta);
        if let Some(duplicate) = entry
            .batches
            .iter()
            .find(|b| b.first_sequence == first_sequence && b.last_sequence == last_sequence)
        {
            return Ok(Admission::Duplicate(*duplicate));
        }
        let in_sequence = match entry.batches.back() {
            Some(last) => follows(last.last_sequence, first_sequence),
            // The epoch is known but has no batches (only markers): start at 0.
            None => first_sequence == 0,
        };
        if in_sequence {
            Ok(Admission::Append)
        } else {
            Err(ProducerError::OutOfOrder {
                producer_id,
                first_sequence,
                last_sequence: entry.batches.back().map(|b| b.last_sequence),
            })
        }
    }

    /// Records a data batch that now has offsets (after `check`, or when
    /// replaying the log). `max_timestamp_ms` is the batch's effective
    /// largest timestamp (the broker's time for LogAppendTime topics).
    pub fn record(&mut self, header: &BatchHeader, base_offset: i64, max_timestamp_ms: i64) {
        let producer_id = header.producer_id;
        if producer_id < 0 {
            return;
        }
        if !self.entries.contains_key(&producer_id) {
            self.make_room();
        }
        let entry = self
            .entries
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry::new(header.producer_epoch));
        if entry.epoch != header.producer_epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        if header.base_sequence >= 0 {
            if entry.batches.len() == PRODUCER_BATCHES_KEPT {
                entry.batches.pop_front();
            }
            entry.batches.push_back(ProducerBatch {
                first_sequence: header.base_sequence,
                last_sequence: sequence_add(header.base_sequence, header.last_offset_delta),
                base_offset,
                last_offset: base_offset + i64::from(header.last_offset_delta),
                max_timestamp_ms,
            });
        }
        entry.last_timestamp_ms = max_timestamp_ms;
        if header.is_transactional() && entry.transaction_first_offset.is_none() {
            entry.transaction_first_offset = Some(base_offset);
            self.open.insert((base_offset, producer_id));
        }
        debug_assert!(entry.batches.len() <= PRODUCER_BATCHES_KEPT);
    }

    /// Checks a transaction marker (COMMIT or ABORT) of `producer_id` at
    /// `epoch` before it gets an offset: an epoch older than the
    /// producer's is refused, the marker of a fenced producer.
    pub fn check_marker(&self, producer_id: i64, epoch: i16) -> Result<(), ProducerError> {
        match self.entries.get(&producer_id) {
            Some(entry) if epoch < entry.epoch => Err(ProducerError::StaleEpoch {
                producer_id,
                epoch,
                current_epoch: entry.epoch,
            }),
            _ => Ok(()),
        }
    }

    /// Records a transaction marker at `marker_offset` (after
    /// `check_marker`, or when replaying): the producer's open transaction
    /// here ends; an aborted one is remembered for read_committed fetches.
    pub fn record_marker(
        &mut self,
        producer_id: i64,
        epoch: i16,
        coordinator_epoch: i32,
        marker_offset: i64,
        commit: bool,
        timestamp_ms: i64,
    ) {
        if !self.entries.contains_key(&producer_id) {
            self.make_room();
        }
        let entry = self
            .entries
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry::new(epoch));
        if entry.epoch != epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.coordinator_epoch = coordinator_epoch;
        entry.last_timestamp_ms = timestamp_ms;
        let Some(first_offset) = entry.transaction_first_offset.take() else {
            return;
        };
        self.open.remove(&(first_offset, producer_id));
        if !commit {
            let last_stable_offset = self.first_open_offset().unwrap_or(marker_offset + 1);
            self.aborted.insert(
                marker_offset,
                AbortedTxn {
                    producer_id,
                    first_offset,
                    last_offset: marker_offset,
                    last_stable_offset: last_stable_offset.min(marker_offset + 1),
                },
            );
        }
    }

    /// First offset of the oldest open transaction, if any.
    pub fn first_open_offset(&self) -> Option<i64> {
        self.open.first().map(|(offset, _)| *offset)
    }

    /// Aborted transactions that overlap `[from_offset, to_offset)`, as
    /// (producer id, first offset), oldest marker first.
    pub fn aborted_between(&self, from_offset: i64, to_offset: i64) -> Vec<(i64, i64)> {
        self.aborted
            .range(from_offset..)
            .map(|(_, aborted)| aborted)
            .filter(|aborted| aborted.first_offset < to_offset)
            .map(|aborted| (aborted.producer_id, aborted.first_offset))
            .collect()
    }

    /// Aborted transactions whose markers are in `[from_offset, to_offset)`
    /// (a segment's `.txnindex`).
    pub fn aborted_markers_in(&self, from_offset: i64, to_offset: i64) -> impl Iterator<Item = &AbortedTxn> {
        self.aborted
            .range(from_offset..to_offset)
            .map(|(_, aborted)| aborted)
    }

    /// Adds aborted transactions read from a `.txnindex` file.
    pub fn add_aborted(&mut self, entries: impl IntoIterator<Item = AbortedTxn>) {
        for aborted in entries {
            self.aborted.insert(aborted.last_offset, aborted);
        }
    }

    /// Forgets what a crash cut off: aborted transactions whose markers are
    /// at or past `end_offset` (the recovered log end).
    pub fn truncate_aborted(&mut self, end_offset: i64) {
        self.aborted.split_off(&end_offset);
    }

    /// Forgets what lies below the log start offset (retention or
    /// DeleteRecords removed it), as Kafka does: aborted transactions whose
    /// markers are below it, and producers without an open transaction
    /// whose last batch is below it. Returns how many producers went.
    pub fn truncate_head(&mut self, log_start_offset: i64) -> usize {
        self.aborted = self.aborted.split_off(&log_start_offset);
        let before = self.entries.len();
        self.entries.retain(|_, entry| {
            entry.transaction_first_offset.is_some()
                || entry
                    .batches
                    .back()
                    .is_some_and(|batch| batch.last_offset >= log_start_offset)
        });
        before - self.entries.len()
    }

    /// Drops the least recently active producer without an open transaction
    /// when the table is full.
    fn make_room(&mut self) {
        if self.entries.len() < PRODUCER_STATES_PER_PARTITION_MAX {
            return;
        }
        let oldest = self
            .entries
            .iter()
            .filter(|(_, entry)| entry.transaction_first_offset.is_none())
            .min_by_key(|(_, entry)| entry.last_timestamp_ms)
            .map(|(id, _)| *id);
        if let Some(id) = oldest {
            self.entries.remove(&id);
        }
    }

    /// Forgets producers idle for at least `expiration_ms` (by their batch
    /// timestamps) that have no open transaction. Returns how many.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, entry| {
            entry.transaction_first_offset.is_some()
                || now_ms.saturating_sub(entry.last_timestamp_ms) < expiration_ms
        });
        before - self.entries.len()
    }

    /// The snapshot file's bytes for the state of every batch below `offset`.
    pub fn encode(&self, offset: i64) -> Vec<u8> {
        let mut body = Vec::with_capacity(16 + self.entries.len() * 64);
        body.extend_from_slice(&offset.to_be_bytes());
        body.extend_from_slice(&(self.entries.len() as u32).to_be_bytes());
        let mut ids: Vec<&i64> = self.entries.keys().collect();
        ids.sort_unstable();
        for id in ids {
            let entry = &self.entries[id];
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&entry.epoch.to_be_bytes());
            body.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
            body.extend_from_slice(&entry.last_timestamp_ms.to_be_bytes());
            body.extend_from_slice(&entry.transaction_first_offset.unwrap_or(-1).to_be_bytes());
            body.push(entry.batches.len() as u8);
            for batch in &entry.batches {
                body.extend_from_slice(&batch.first_sequence.to_be_bytes());
                body.extend_from_slice(&batch.last_sequence.to_be_bytes());
                body.extend_from_slice(&batch.base_offset.to_be_bytes());
                body.extend_from_slice(&batch.last_offset.to_be_bytes());
                body.extend_from_slice(&batch.max_timestamp_ms.to_be_bytes());
            }
        }
        body.extend_from_slice(&(self.aborted.len() as u64).to_be_bytes());
        for aborted in self.aborted.values() {
            aborted.encode_index_entry(&mut body);
        }
        let mut file = Vec::with_capacity(SNAPSHOT_HEADER_BYTES + body.len());
        file.extend_from_slice(SNAPSHOT_MAGIC);
        file.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        file.extend_from_slice(&body);
        file
    }

    /// Parses a snapshot file: (offset, state). Err for any damage.
    pub fn decode(file: &[u8]) -> Result<(i64, ProducerStates), String> {
        if file.len() < SNAPSHOT_HEADER_BYTES || &file[..4] != SNAPSHOT_MAGIC {
            return Err("not a producer state snapshot".into());
        }
        let stored = u32::from_be_bytes([file[4], file[5], file[6], file[7]]);
        let body = &file[SNAPSHOT_HEADER_BYTES..];
        if crc32c::crc32c(body) != stored {
            return Err("checksum mismatch".into());
        }
        let mut reader = Reader { bytes: body };
        let truncated = || "truncated snapshot".to_string();
        let offset = reader.i64().ok_or_else(truncated)?;
        let count = reader.u32().ok_or_else(truncated)? as usize;
        if count > PRODUCER_STATES_PER_PARTITION_MAX {
            return Err(format!("{count} producers exceed the limit"));
        }
        let mut entries = HashMap::with_capacity(count);
        for _ in 0..count {
            let id = reader.i64().ok_or_else(truncated)?;
            let mut entry = ProducerEntry::new(reader.i16().ok_or_else(truncated)?);
            entry.coordinator_epoch = reader.i32().ok_or_else(truncated)?;
            entry.last_timestamp_ms = reader.i64().ok_or_else(truncated)?;
            let first = reader.i64().ok_or_else(truncated)?;
            entry.transaction_first_offset = (first >= 0).then_some(first);
            let batches = reader.u8().ok_or_else(truncated)? as usize;
            if batches > PRODUCER_BATCHES_KEPT {
                return Err(format!("producer {id} has {batches} batches"));
            }
            for _ in 0..batches {
                entry.batches.push_back(ProducerBatch {
                    first_sequence: reader.i32().ok_or_else(truncated)?,
                    last_sequence: reader.i32().ok_or_else(truncated)?,
                    base_offset: reader.i64().ok_or_else(truncated)?,
                    last_offset: reader.i64().ok_or_else(truncated)?,
                    max_timestamp_ms: reader.i64().ok_or_else(truncated)?,
                });
            }
            entries.insert(id, entry);
        }
        let open = entries
            .iter()
            .filter_map(|(id, entry)| entry.transaction_first_offset.map(|first| (first, *id)))
            .collect();
        let aborted_count = usize::try_from(reader.i64().ok_or_else(truncated)?).map_err(|_| truncated())?;
        let aborted_bytes = aborted_count
            .checked_mul(TXN_INDEX_ENTRY_BYTES)
            .filter(|&bytes| bytes == reader.bytes.len())
            .ok_or_else(|| "aborted transactions do not match the file size".to_string())?;
        let aborted = AbortedTxn::decode_index(&reader.bytes[..aborted_bytes])
            .ok_or("bad aborted transaction entry")?
            .into_iter()
            .map(|aborted| (aborted.last_offset, aborted))
            .collect();
        Ok((
            offset,
            ProducerStates {
                entries,
                open,
                aborted,
            },
        ))
    }
}

const SNAPSHOT_MAGIC: &[u8; 4] = b"WPS1";
const SNAPSHOT_HEADER_BYTES: usize = 8;
const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// Snapshots kept per partition: the newest, and one to fall back on when
/// a crash left the log short of the newest.
pub const SNAPSHOTS_KEPT: usize = 2;

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.bytes.split_first_chunk::<N>()?;
        self.bytes = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }
}

pub fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}{SNAPSHOT_SUFFIX}"))
}

/// Offsets of the snapshot files in `dir`, ascending.
pub fn list_snapshots(dir: &Path) -> std::io::Result<Vec<i64>> {
    let mut offsets = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let offset = name
            .to_str()
            .and_then(|n| n.strip_suffix(SNAPSHOT_SUFFIX))
            .filter(|stem| stem.len() == 20)
            .and_then(|stem| stem.parse::<i64>().ok());
        offsets.extend(offset);
    }
    offsets.sort_unstable();
    Ok(offsets)
}

/// Writes the snapshot at `offset` (temporary file, then rename) and removes
/// all but the newest [`SNAPSHOTS_KEPT`]. Not fsynced: a snapshot lost or
/// torn by a crash fails its checksum or is missing, and recovery replays
/// from an older one (or from the log start) instead.
pub fn write_snapshot(dir: &Path, offset: i64, bytes: &[u8]) -> std::io::Result<()> {
    let path = snapshot_path(dir, offset);
    let temporary = path.with_extension("snapshot.tmp");
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, &path)?;
    let offsets = list_snapshots(dir)?;
    let excess = offsets.len().saturating_sub(SNAPSHOTS_KEPT);
    for old in &offsets[..excess] {
        remove_snapshot(dir, *old)?;
    }
    Ok(())
}

pub fn remove_snapshot(dir: &Path, offset: i64) -> std::io::Result<()> {
    match std::fs::remove_file(snapshot_path(dir, offset)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(producer_id: i64, epoch: i16, first_sequence: i32, records: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 1_000,
            max_timestamp: 1_000,
            producer_id,
            producer_epoch: epoch,
            base_sequence: first_sequence,
            records_count: records,
        }
    }

    fn admit(
        states: &mut ProducerStates,
        h: &BatchHeader,
        next_offset: &mut i64,
    ) -> Result<Admission, ProducerError> {
        let admission = states.check(h)?;
        if admission == Admission::Append {
            states.record(h, *next_offset, h.max_timestamp);
            *next_offset += i64::from(h.records_count);
        }
        Ok(admission)
    }

    #[test]
    fn in_order_batches_append_and_retries_of_the_last_five_are_duplicates() {
        let mut states = ProducerStates::default();
        let mut next = 0;
        for batch in 0..8 {
            assert_eq!(
                admit(&mut states, &header(7, 0, batch * 3, 3), &mut next),
                Ok(Admission::Append)
            );
        }
        assert_eq!(next, 24);
        // Batches 3..8 are remembered, with their offsets.
        for batch in 3..8 {
            match admit(&mut states, &header(7, 0, batch * 3, 3), &mut next) {
                Ok(Admission::Duplicate(original)) => {
                    assert_eq!(original.base_offset, i64::from(batch) * 3);
                    assert_eq!(original.last_offset, i64::from(batch) * 3 + 2);
                }
                other => panic!("batch {batch}: {other:?}"),
            }
        }
        assert_eq!(next, 24, "duplicates append nothing");
        // Older than the last five: neither a duplicate nor in sequence.
        assert!(matches!(
            admit(&mut states, &header(7, 0, 0, 3), &mut next),
            Err(ProducerError::OutOfOrder { .. })
        ));
    }

    #[test]
    fn gaps_stale_epochs_and_new_epochs() {
        let mut states = ProducerStates::default();
        let mut next = 0;
        admit(&mut states, &header(1, 3, 0, 2), &mut next).unwrap();
        assert_eq!(
            admit(&mut states, &header(1, 3, 5, 1), &mut next),
            Err(ProducerError::OutOfOrder {
                producer_id: 1,
                first_sequence: 5,
                last_sequence: Some(1)
            })
        );
        assert!(matches!(
            admit(&mut states, &header(1, 2, 2, 1), &mut next),
            Err(ProducerError::StaleEpoch { current_epoch: 3, .. })
        ));
        assert!(matches!(
            admit(&mut states, &header(1, 4, 2, 1), &mut next),
            Err(ProducerError::OutOfOrder {
                last_sequence: None,
                ..
            })
        ));
        assert_eq!(
            admit(&mut states, &header(1, 4, 0, 1), &mut next),
            Ok(Admission::Append)
        );
        assert_eq!(
            states.get(1).unwrap().batches.len(),
            1,
            "a new epoch forgets the old batches"
        );
        // Unknown producers start anywhere; other producers are independent.
        assert_eq!(
            admit(&mut states, &header(2, 0, 77, 1), &mut next),
            Ok(Admission::Append)
        );
        assert_eq!(
            admit(&mut states, &header(2, 0, 78, 1), &mut next),
            Ok(Admission::Append)
        );
        // Non-idempotent batches are not tracked.
        assert_eq!(
            admit(&mut states, &header(-1, -1, -1, 4), &mut next),
            Ok(Admission::Append)
        );
        assert_eq!(states.len(), 2);
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(sequence_add(i32::MAX, 1), 0);
        assert_eq!(sequence_add(i32::MAX - 1, 3), 1);
        let mut states = ProducerStates::default();
        let mut next = 0;
        admit(&mut states, &header(9, 0, i32::MAX - 1, 2), &mut next).unwrap();
        assert_eq!(states.get(9).unwrap().batches[0].last_sequence, i32::MAX);
        assert_eq!(
            admit(&mut states, &header(9, 0, 0, 1), &mut next),
            Ok(Admission::Append)
        );
    }

    #[test]
    fn expiration_forgets_idle_producers_without_open_transactions() {
        let mut states = ProducerStates::default();
        let mut idle = header(1, 0, 0, 1);
        idle.max_timestamp = 1_000;
        let mut busy = header(2, 0, 0, 1);
        busy.max_timestamp = 9_000;
        let mut open = header(3, 0, 0, 1);
        open.max_timestamp = 1_000;
        open.attributes = 0x10; // transactional
        states.record(&idle, 0, idle.max_timestamp);
        states.record(&busy, 1, busy.max_timestamp);
        states.record(&open, 2, open.max_timestamp);
        assert_eq!(states.expire(10_000, 5_000), 1);
        assert!(states.get(1).is_none() && states.get(2).is_some() && states.get(3).is_some());
    }

    #[test]
    fn snapshots_round_trip_and_reject_damage() {
        let mut states = ProducerStates::default();
        let mut next = 0;
        for producer in 0..20 {
            for batch in 0..7 {
                admit(&mut states, &header(producer, 1, batch * 2, 2), &mut next).unwrap();
            }
        }
        let bytes = states.encode(next);
        assert_eq!(ProducerStates::decode(&bytes), Ok((next, states.clone())));
        for cut in [0, 3, 8, bytes.len() / 2, bytes.len() - 1] {
            assert!(ProducerStates::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        assert!(ProducerStates::decode(&flipped).is_err());
        assert!(ProducerStates::decode(&ProducerStates::default().encode(0)).is_ok());
    }

    #[test]
    fn snapshot_files_keep_the_newest_two() {
        let dir = std::env::temp_dir().join(format!("weir-snapshots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for offset in [10, 30, 20, 40] {
            write_snapshot(&dir, offset, &ProducerStates::default().encode(offset)).unwrap();
        }
        assert_eq!(list_snapshots(&dir).unwrap(), vec![30, 40]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
