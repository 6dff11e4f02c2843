//! Kafka v2 record batches: parsing, validation and in-place patching.
//!
//! This module owns everything weir knows about the on-the-wire / on-disk
//! layout of a magic-2 record batch (the only message format weir accepts).
//! It is pure: no I/O, no allocation on the hot paths, no shared state, so it
//! runs on whichever shard calls it.
//!
//! What lives here:
//! * [`BatchHeader`]: the fixed 61-byte batch header, decoded field by field.
//! * [`validate_produced_batch`]: the full check applied to the `records`
//!   field of a Produce request before anything is appended.
//! * [`set_base_offset`] / [`set_log_append_time`]: the two patches the
//!   broker applies to a batch before it is written to a segment.
//! * [`scan_batches`]: walking a region of concatenated batches (a segment
//!   during recovery or fetch), stopping cleanly at zero padding or a torn
//!   tail.
//! * [`uncompressed_records`] and
//!   [`first_record_with_timestamp_at_or_after`]: reading individual records
//!   (of compressed batches too, for timestamp lookups, through
//!   [`super::compression`]).
//!
//! Layout (all integers big-endian), byte positions within one batch:
//!
//! ```text
//!  0 baseOffset i64          27 baseTimestamp i64
//!  8 batchLength i32         35 maxTimestamp i64
//! 12 partitionLeaderEpoch    43 producerId i64
//! 16 magic i8 (= 2)          51 producerEpoch i16
//! 17 crc u32 (CRC-32C)       53 baseSequence i32
//! 21 attributes i16          57 recordsCount i32
//! 23 lastOffsetDelta i32     61 records...
//! ```
//!
//! Invariants relied on by callers:
//! * A batch occupies exactly `batchLength + 12` bytes
//!   ([`BatchHeader::total_bytes`]); `batchLength >= 49` for any header that
//!   [`BatchHeader::parse`] accepts, so a parsed batch is never shorter than
//!   [`BATCH_HEADER_BYTES`].
//! * The CRC covers bytes `[21..total)`, i.e. everything from `attributes`
//!   on. `baseOffset`, `batchLength`, `partitionLeaderEpoch` and `magic` are
//!   outside it, so rewriting the base offset never requires a new CRC, while
//!   touching attributes or timestamps always does.
//! * Nothing in this module panics on malformed input: every read is bounds
//!   checked and all arithmetic on input-derived values is checked. Functions
//!   that cannot report an error (the in-place patchers) do nothing when the
//!   slice is too short to hold a header.

use std::fmt;

/// Size of the fixed part of a v2 batch, up to and including `recordsCount`.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes preceding the part counted by `batchLength` (`baseOffset` + `batchLength`).
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// The only record batch format version weir accepts.
pub const MAGIC_V2: i8 = 2;

/// Smallest legal `batchLength`: a header with no records.
const MIN_BATCH_LENGTH: i32 = (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32;

const POS_BASE_OFFSET: usize = 0;
const POS_BATCH_LENGTH: usize = 8;
const POS_PARTITION_LEADER_EPOCH: usize = 12;
const POS_MAGIC: usize = 16;
const POS_CRC: usize = 17;
const POS_ATTRIBUTES: usize = 21;
const POS_LAST_OFFSET_DELTA: usize = 23;
const POS_BASE_TIMESTAMP: usize = 27;
const POS_MAX_TIMESTAMP: usize = 35;
const POS_PRODUCER_ID: usize = 43;
const POS_PRODUCER_EPOCH: usize = 51;
const POS_BASE_SEQUENCE: usize = 53;
const POS_RECORDS_COUNT: usize = 57;

/// Start of the region covered by the CRC.
const CRC_START: usize = POS_ATTRIBUTES;

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_LOG_APPEND_TIME: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;
const ATTR_DELETE_HORIZON: i16 = 0x40;

/// Compression codec ids (attributes & 0x07).
pub const COMPRESSION_NONE: u8 = 0;
pub const COMPRESSION_GZIP: u8 = 1;
pub const COMPRESSION_SNAPPY: u8 = 2;
pub const COMPRESSION_LZ4: u8 = 3;
pub const COMPRESSION_ZSTD: u8 = 4;
/// Highest codec id Kafka defines (zstd).
pub const COMPRESSION_MAX_KNOWN: u8 = COMPRESSION_ZSTD;

/// The decoded fixed header of a v2 record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Decodes the header at the start of `buf`.
    ///
    /// Needs at least [`BATCH_HEADER_BYTES`] bytes (`Truncated` otherwise),
    /// `magic == 2` (`BadMagic`) and `batchLength >= 49` (`BadLength`). It
    /// does not check that the whole batch is present, nor the CRC.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        let truncated = || BatchError::Truncated {
            needed_bytes: BATCH_HEADER_BYTES,
            available_bytes: buf.len(),
        };
        if buf.len() < BATCH_HEADER_BYTES {
            return Err(truncated());
        }
        let magic = read_i8(buf, POS_MAGIC).ok_or_else(truncated)?;
        if magic != MAGIC_V2 {
            return Err(BatchError::BadMagic { magic });
        }
        let batch_length = read_i32(buf, POS_BATCH_LENGTH).ok_or_else(truncated)?;
        if batch_length < MIN_BATCH_LENGTH {
            return Err(BatchError::BadLength { batch_length });
        }
        Ok(BatchHeader {
            base_offset: read_i64(buf, POS_BASE_OFFSET).ok_or_else(truncated)?,
            batch_length,
            partition_leader_epoch: read_i32(buf, POS_PARTITION_LEADER_EPOCH).ok_or_else(truncated)?,
            magic,
            crc: read_u32(buf, POS_CRC).ok_or_else(truncated)?,
            attributes: read_i16(buf, POS_ATTRIBUTES).ok_or_else(truncated)?,
            last_offset_delta: read_i32(buf, POS_LAST_OFFSET_DELTA).ok_or_else(truncated)?,
            base_timestamp: read_i64(buf, POS_BASE_TIMESTAMP).ok_or_else(truncated)?,
            max_timestamp: read_i64(buf, POS_MAX_TIMESTAMP).ok_or_else(truncated)?,
            producer_id: read_i64(buf, POS_PRODUCER_ID).ok_or_else(truncated)?,
            producer_epoch: read_i16(buf, POS_PRODUCER_EPOCH).ok_or_else(truncated)?,
            base_sequence: read_i32(buf, POS_BASE_SEQUENCE).ok_or_else(truncated)?,
            records_count: read_i32(buf, POS_RECORDS_COUNT).ok_or_else(truncated)?,
        })
    }

    /// Total size of the batch in bytes, log overhead included
    /// (`batch_length + 12`). A negative `batch_length` (impossible for a
    /// parsed header) counts as 0.
    pub fn total_bytes(&self) -> usize {
        usize::try_from(self.batch_length)
            .unwrap_or(0)
            .saturating_add(LOG_OVERHEAD_BYTES)
    }

    /// Offset of the last record the batch was created with
    /// (`base_offset + last_offset_delta`, saturating at the i64 range).
    pub fn last_offset(&self) -> i64 {
        self.base_offset.saturating_add(i64::from(self.last_offset_delta))
    }

    /// Compression codec id: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd
    /// (5..=7 are undefined).
    pub fn compression_codec(&self) -> u8 {
        // Masked to 3 bits, so the cast cannot truncate.
        (self.attributes & ATTR_COMPRESSION_MASK) as u8
    }

    /// Whether the timestamp type is LogAppendTime (attribute bit 3).
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_LOG_APPEND_TIME != 0
    }

    /// Whether the batch belongs to a transaction (attribute bit 4).
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// Whether the batch holds control records (attribute bit 5).
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// Whether `base_timestamp` holds a delete horizon (attribute bit 6).
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & ATTR_DELETE_HORIZON != 0
    }
}

/// Everything that can be wrong with a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes are available than the header or batch length requires.
    Truncated {
        needed_bytes: usize,
        available_bytes: usize,
    },
    /// `batchLength` is smaller than an empty batch header.
    BadLength { batch_length: i32 },
    /// The magic byte is not 2.
    BadMagic { magic: i8 },
    /// The stored CRC does not match the bytes.
    CrcMismatch { stored: u32, computed: u32 },
    /// `recordsCount` is below 1 or disagrees with `lastOffsetDelta`.
    BadRecordCount {
        records_count: i32,
        last_offset_delta: i32,
    },
    /// The records of an uncompressed batch do not decode, do not number
    /// `recordsCount`, or do not exactly fill the batch.
    RecordsMalformed,
    /// The batch is larger than the configured maximum.
    TooLarge { batch_bytes: usize, max_bytes: usize },
    /// The buffer holds more than one batch or has trailing bytes.
    NotExactlyOneBatch,
    /// The compression codec id is not one Kafka defines.
    UnknownCompression { codec: u8 },
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Truncated {
                needed_bytes,
                available_bytes,
            } => write!(
                f,
                "record batch truncated: needs {needed_bytes} bytes, only {available_bytes} available"
            ),
            BatchError::BadLength { batch_length } => write!(
                f,
                "record batch length {batch_length} is below the minimum of {MIN_BATCH_LENGTH}"
            ),
            BatchError::BadMagic { magic } => write!(
                f,
                "unsupported record batch magic {magic} (only {MAGIC_V2} is accepted)"
            ),
            BatchError::CrcMismatch { stored, computed } => write!(
                f,
                "record batch crc mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            BatchError::BadRecordCount {
                records_count,
                last_offset_delta,
            } => write!(
                f,
                "record batch has records count {records_count} but last offset delta {last_offset_delta}"
            ),
            BatchError::RecordsMalformed => {
                write!(f, "records inside the batch are malformed")
            }
            BatchError::TooLarge {
                batch_bytes,
                max_bytes,
            } => write!(
                f,
                "record batch of {batch_bytes} bytes exceeds the maximum of {max_bytes} bytes"
            ),
            BatchError::NotExactlyOneBatch => {
                write!(f, "expected exactly one record batch filling the records field")
            }
            BatchError::UnknownCompression { codec } => {
                write!(f, "unknown compression codec {codec}")
            }
        }
    }
}

impl std::error::Error for BatchError {}

/// CRC-32C (Castagnoli) of `batch[21..]`, the value a v2 batch stores at
/// byte 17. `batch` must be exactly one batch; a slice shorter than 21
/// bytes yields the CRC of nothing (0).
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(CRC_START..).unwrap_or(&[]))
}

/// Checks the stored CRC of the batch at the start of `batch`.
///
/// The header is parsed first (its errors are returned as is), and the CRC is
/// computed over `[21..total_bytes)`, so bytes after the batch are ignored.
pub fn verify_crc(batch: &[u8]) -> Result<(), BatchError> {
    let header = BatchHeader::parse(batch)?;
    let one = whole_batch(batch, &header)?;
    let computed = compute_crc(one);
    if computed == header.crc {
        Ok(())
    } else {
        Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        })
    }
}

/// Full validation of a batch a producer sent in a Produce request's
/// `records` field.
///
/// Checks, in this order: header parses (`Truncated`, `BadMagic`,
/// `BadLength`); the batch is present in full (`Truncated`) and is the only
/// thing in the slice (`NotExactlyOneBatch`); its total size is at most
/// `max_message_bytes` (`TooLarge`); the CRC (`CrcMismatch`); the codec is
/// 0..=4 (`UnknownCompression`); `records_count >= 1` and
/// `last_offset_delta == records_count - 1` (`BadRecordCount`). For
/// uncompressed batches every record's framing is then decoded; there must
/// be exactly `records_count` well-formed records filling the batch to its
/// last byte (`RecordsMalformed`).
///
/// Not checked here (policy for the caller): producer id/epoch/sequence,
/// the transactional and control bits, timestamps, and per-record offset
/// deltas.
pub fn validate_produced_batch(records: &[u8], max_message_bytes: usize) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(records)?;
    let total_bytes = header.total_bytes();
    if total_bytes > records.len() {
        return Err(BatchError::Truncated {
            needed_bytes: total_bytes,
            available_bytes: records.len(),
        });
    }
    if total_bytes != records.len() {
        return Err(BatchError::NotExactlyOneBatch);
    }
    if total_bytes > max_message_bytes {
        return Err(BatchError::TooLarge {
            batch_bytes: total_bytes,
            max_bytes: max_message_bytes,
        });
    }
    let computed = compute_crc(records);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    let codec = header.compression_codec();
    if codec > COMPRESSION_MAX_KNOWN {
        return Err(BatchError::UnknownCompression { codec });
    }
    if header.records_count < 1 || header.last_offset_delta.checked_add(1) != Some(header.records_count) {
        return Err(BatchError::BadRecordCount {
            records_count: header.records_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    if codec == COMPRESSION_NONE {
        let mut iter = records_of(records, &header)?;
        for record in iter.by_ref() {
            record?;
        }
        if iter.remaining_bytes() != 0 {
            return Err(BatchError::RecordsMalformed);
        }
    }
    Ok(header)
}

/// Rewrites `baseOffset` in place. The field lies outside the CRC, so the
/// stored CRC stays valid. Does nothing if `batch` is shorter than 8 bytes.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    write_bytes(batch, POS_BASE_OFFSET, &base_offset.to_be_bytes());
}

/// Stamps the batch with LogAppendTime: `maxTimestamp = now_ms`, attribute
/// bit 3 set, and the CRC recomputed over `[21..]` and stored.
/// `baseTimestamp` and the record deltas are left untouched (consumers use
/// `maxTimestamp` for every record of a LogAppendTime batch).
///
/// `batch` must be exactly one batch (the CRC covers the whole slice). Does
/// nothing if it is shorter than [`BATCH_HEADER_BYTES`].
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    if batch.len() < BATCH_HEADER_BYTES {
        return;
    }
    let Some(attributes) = read_i16(batch, POS_ATTRIBUTES) else {
        return;
    };
    write_bytes(
        batch,
        POS_ATTRIBUTES,
        &(attributes | ATTR_LOG_APPEND_TIME).to_be_bytes(),
    );
    write_bytes(batch, POS_MAX_TIMESTAMP, &now_ms.to_be_bytes());
    let crc = compute_crc(batch);
    write_bytes(batch, POS_CRC, &crc.to_be_bytes());
}

/// Iterator over the complete batches of a buffer of concatenated batches,
/// created by [`scan_batches`].
///
/// Yields `Ok((byte_position, header))` for every batch that fits entirely
/// in the buffer. It ends (`None`) at the first incomplete batch (a torn
/// tail, including fewer than 61 bytes left), or at a batch whose
/// `batchLength` is zero (zero padding / preallocated space). A header that
/// is present but wrong (bad magic, bad length) is yielded once as `Err`,
/// after which the iterator is finished. CRCs are not checked.
///
/// [`BatchScanner::position`] is the byte position just after the last batch
/// yielded, i.e. the end of the valid prefix.
#[derive(Debug, Clone)]
pub struct BatchScanner<'a> {
    buf: &'a [u8],
    position: usize,
    finished: bool,
}

/// Starts scanning `buf` at byte 0. See [`BatchScanner`].
pub fn scan_batches(buf: &[u8]) -> BatchScanner<'_> {
    BatchScanner {
        buf,
        position: 0,
        finished: false,
    }
}

impl<'a> BatchScanner<'a> {
    /// Byte position just after the last complete batch yielded so far (0
    /// before any). Once the iterator has ended this is the end of the valid
    /// data.
    pub fn position(&self) -> usize {
        self.position
    }

    /// The buffer being scanned.
    pub fn buffer(&self) -> &'a [u8] {
        self.buf
    }
}

impl<'a> Iterator for BatchScanner<'a> {
    type Item = Result<(usize, BatchHeader), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let rest = self.buf.get(self.position..).unwrap_or(&[]);
        // Zero padding: checked first, so a run of zeros shorter than a full
        // header is still recognised as the end of data.
        if read_i32(rest, POS_BATCH_LENGTH) == Some(0) || rest.len() < BATCH_HEADER_BYTES {
            self.finished = true;
            return None;
        }
        let header = match BatchHeader::parse(rest) {
            Ok(header) => header,
            Err(err) => {
                self.finished = true;
                return Some(Err(err));
            }
        };
        let total_bytes = header.total_bytes();
        if total_bytes > rest.len() {
            self.finished = true;
            return None;
        }
        let at = self.position;
        self.position = at.saturating_add(total_bytes);
        Some(Ok((at, header)))
    }
}

/// Offset and timestamp of the first record of `batch` whose timestamp is
/// at or after `target_ms`, or `None` if there is none. A record's timestamp
/// is `baseTimestamp + timestampDelta`, or `maxTimestamp` for LogAppendTime
/// batches (so either every record matches or none does).
///
/// Compressed batches are decompressed (at most
/// [`DECOMPRESSED_RECORDS_BYTES_MAX`]) so the answer names the record
/// itself, as Kafka's does. One whose records cannot be decompressed within
/// the bound is answered approximately: its first offset and its
/// `maxTimestamp` when that is at or after the target.
///
/// Returns `None` if the header does not parse, the batch is incomplete, or
/// the records are malformed before a matching record is found. Control
/// batches are not treated specially.
pub fn first_record_with_timestamp_at_or_after(batch: &[u8], target_ms: i64) -> Option<(i64, i64)> {
    first_record_from_offset_with_timestamp_at_or_after(batch, i64::MIN, target_ms)
}

/// [`first_record_with_timestamp_at_or_after`] among the records at or
/// after `min_offset` only (a batch that straddles the log start offset).
pub fn first_record_from_offset_with_timestamp_at_or_after(
    batch: &[u8],
    min_offset: i64,
    target_ms: i64,
) -> Option<(i64, i64)> {
    let header = BatchHeader::parse(batch).ok()?;
    let one = whole_batch(batch, &header).ok()?;
    let log_append_time = header.is_log_append_time();
    if log_append_time {
        return (header.max_timestamp >= target_ms && header.last_offset() >= min_offset)
            .then_some((header.base_offset.max(min_offset), header.max_timestamp));
    }
    let codec = header.compression_codec();
    let decompressed;
    let records_region = if codec == COMPRESSION_NONE {
        one.get(BATCH_HEADER_BYTES..).unwrap_or(&[])
    } else {
        let compressed = one.get(BATCH_HEADER_BYTES..).unwrap_or(&[]);
        match super::compression::decompress(codec, compressed, DECOMPRESSED_RECORDS_BYTES_MAX) {
            Ok(bytes) => {
                decompressed = bytes;
                &decompressed[..]
            }
            Err(_) => {
                return (header.max_timestamp >= target_ms && header.last_offset() >= min_offset)
                    .then_some((header.base_offset.max(min_offset), header.max_timestamp));
            }
        }
    };
    let records = RecordIter::new(records_region, &header);
    // CreateTime max_timestamp is producer-supplied and not trusted as a
    // bound: every record is looked at.
    for record in records {
        let record = record.ok()?;
        let timestamp_ms = header.base_timestamp.checked_add(record.timestamp_delta)?;
        let offset = header.base_offset.checked_add(i64::from(record.offset_delta))?;
        if timestamp_ms >= target_ms && offset >= min_offset {
            return Some((offset, timestamp_ms));
        }
    }
    None
}

/// The offset part of [`first_record_with_timestamp_at_or_after`].
pub fn first_offset_with_timestamp_at_or_after(batch: &[u8], target_ms: i64) -> Option<i64> {
    first_record_with_timestamp_at_or_after(batch, target_ms).map(|(offset, _)| offset)
}

/// Most bytes the records of one compressed batch may decompress to when a
/// cold path reads them (64 MiB: a 1 MiB batch of very repetitive records
/// fits; a decompression bomb does not).
pub const DECOMPRESSED_RECORDS_BYTES_MAX: usize = 64 * 1024 * 1024;

/// One record of an uncompressed batch, borrowing from the batch bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// Record-level attributes byte (unused by Kafka, kept as sent).
    pub attributes: i8,
    /// Added to the batch's `base_timestamp` to get the record timestamp
    /// (for CreateTime batches).
    pub timestamp_delta: i64,
    /// Added to the batch's `base_offset` to get the record offset.
    pub offset_delta: i32,
    /// `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// `None` for a null value (a tombstone).
    pub value: Option<&'a [u8]>,
    headers_count: usize,
    headers_bytes: &'a [u8],
    /// The encoded key, value and headers (everything after the offset
    /// delta), for re-encoding the record with another timestamp delta.
    encoded_tail: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// Appends the record, length-prefixed, with `timestamp_delta` in place
    /// of its own (key, value and headers copied as they are).
    pub fn encode_with_timestamp_delta(&self, timestamp_delta: i64, out: &mut Vec<u8>) {
        let mut body = Vec::with_capacity(self.encoded_tail.len() + 16);
        body.push(self.attributes as u8);
        put_varlong(&mut body, timestamp_delta);
        put_varint(&mut body, self.offset_delta);
        body.extend_from_slice(self.encoded_tail);
        put_varint(
            out,
            i32::try_from(body.len()).expect("a record re-encoded from a batch fits i32"),
        );
        out.extend_from_slice(&body);
    }

    /// Number of headers on the record.
    pub fn headers_count(&self) -> usize {
        self.headers_count
    }

    /// The record's headers as `(key, value)` pairs, in order.
    pub fn headers(&self) -> HeaderIter<'a> {
        HeaderIter {
            buf: self.headers_bytes,
            position: 0,
            remaining: self.headers_count,
        }
    }
}

/// Iterator over the headers of a [`RecordView`]. The headers were fully
/// decoded when the record was, so this cannot fail.
#[derive(Debug, Clone)]
pub struct HeaderIter<'a> {
    buf: &'a [u8],
    position: usize,
    remaining: usize,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let mut cursor = Cursor {
            buf: self.buf,
            position: self.position,
        };
        let header = read_header(&mut cursor);
        match header {
            Some(pair) => {
                self.position = cursor.position;
                self.remaining -= 1;
                Some(pair)
            }
            None => {
                self.remaining = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

/// Iterator over the records of an uncompressed batch, created by
/// [`uncompressed_records`].
///
/// Yields at most `records_count` items. A record that does not decode is
/// yielded once as `Err(RecordsMalformed)`, after which the iterator is
/// finished. After it has ended, [`RecordIter::remaining_bytes`] tells
/// whether the records filled the batch exactly (0).
#[derive(Debug, Clone)]
pub struct RecordIter<'a> {
    cursor: Cursor<'a>,
    remaining_records: usize,
    failed: bool,
}

impl<'a> RecordIter<'a> {
    /// Bytes of the records region not consumed by the records yielded so
    /// far.
    pub fn remaining_bytes(&self) -> usize {
        self.cursor.buf.len().saturating_sub(self.cursor.position)
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<RecordView<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.remaining_records == 0 {
            return None;
        }
        match read_record(&mut self.cursor) {
            Some(record) => {
                self.remaining_records -= 1;
                Some(Ok(record))
            }
            None => {
                self.failed = true;
                Some(Err(BatchError::RecordsMalformed))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed {
            (0, Some(0))
        } else {
            (0, Some(self.remaining_records))
        }
    }
}

/// Records of the uncompressed batch at the start of `batch` (bytes after
/// the batch are ignored). `None` if the header does not parse, the batch is
/// incomplete, or the batch is compressed. The CRC is not checked.
pub fn uncompressed_records(batch: &[u8]) -> Option<RecordIter<'_>> {
    let header = BatchHeader::parse(batch).ok()?;
    if header.compression_codec() != COMPRESSION_NONE {
        return None;
    }
    records_of(batch, &header).ok()
}

/// Record iterator over `batch[61..total)`, trusting `header` came from it.
fn records_of<'a>(batch: &'a [u8], header: &BatchHeader) -> Result<RecordIter<'a>, BatchError> {
    let one = whole_batch(batch, header)?;
    Ok(RecordIter::new(
        one.get(BATCH_HEADER_BYTES..).unwrap_or(&[]),
        header,
    ))
}

impl<'a> RecordIter<'a> {
    /// The `header.records_count` records in `region`: the records section
    /// of an uncompressed batch, or the decompressed one of a compressed batch.
    fn new(region: &'a [u8], header: &BatchHeader) -> RecordIter<'a> {
        RecordIter {
            cursor: Cursor {
                buf: region,
                position: 0,
            },
            remaining_records: usize::try_from(header.records_count).unwrap_or(0),
            failed: false,
        }
    }
}

/// `batch[..total_bytes]`, or `Truncated`.
fn whole_batch<'a>(batch: &'a [u8], header: &BatchHeader) -> Result<&'a [u8], BatchError> {
    let total_bytes = header.total_bytes();
    batch.get(..total_bytes).ok_or(BatchError::Truncated {
        needed_bytes: total_bytes,
        available_bytes: batch.len(),
    })
}

/// Decodes one length-prefixed record; the body must be consumed exactly.
fn read_record<'a>(cursor: &mut Cursor<'a>) -> Option<RecordView<'a>> {
    let length = usize::try_from(cursor.varint()?).ok()?;
    let body = cursor.take(length)?;
    let mut inner = Cursor {
        buf: body,
        position: 0,
    };
    let attributes = inner.take(1)?.first().map(|&b| b as i8)?;
    let timestamp_delta = inner.varlong()?;
    let offset_delta = inner.varint()?;
    let encoded_tail = body.get(inner.position..)?;
    let key = inner.nullable_bytes()?;
    let value = inner.nullable_bytes()?;
    let headers_count = usize::try_from(inner.varint()?).ok()?;
    let headers_start = inner.position;
    for _ in 0..headers_count {
        read_header(&mut inner)?;
    }
    let headers_bytes = body.get(headers_start..inner.position)?;
    if inner.position != body.len() {
        return None;
    }
    Some(RecordView {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers_count,
        headers_bytes,
        encoded_tail,
    })
}

/// Zigzag varint as Kafka's record fields use it.
pub fn put_varint(out: &mut Vec<u8>, value: i32) {
    put_unsigned_varint(out, ((value << 1) ^ (value >> 31)) as u32 as u64);
}

/// Zigzag varlong as Kafka's record fields use it.
pub fn put_varlong(out: &mut Vec<u8>, value: i64) {
    put_unsigned_varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

fn put_unsigned_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The records section of a whole `batch` (decompressed when the batch is
/// compressed, at most `bytes_max` bytes), for [`records_in`].
pub fn records_section<'a>(
    batch: &'a [u8],
    header: &BatchHeader,
    bytes_max: usize,
) -> Result<std::borrow::Cow<'a, [u8]>, String> {
    let one = whole_batch(batch, header).map_err(|e| e.to_string())?;
    let section = one.get(BATCH_HEADER_BYTES..).unwrap_or(&[]);
    match header.compression_codec() {
        COMPRESSION_NONE => Ok(std::borrow::Cow::Borrowed(section)),
        codec => super::compression::decompress(codec, section, bytes_max)
            .map(std::borrow::Cow::Owned)
            .map_err(|e| format!("{e:?}")),
    }
}

/// The records of a batch whose (decompressed) records section is `section`.
pub fn records_in<'a>(section: &'a [u8], header: &BatchHeader) -> RecordIter<'a> {
    RecordIter::new(section, header)
}

/// A new batch from `original`'s header with these fields replaced and
/// `records` (already compressed with the codec `attributes` names) as its
/// records section; length and CRC computed. Base offset, last offset
/// delta, producer id, epoch and base sequence stay as they were, so the
/// batch keeps its place in the log and in its producer's sequence.
pub fn rebuild_batch(
    original: &[u8],
    attributes: i16,
    base_timestamp: i64,
    max_timestamp: i64,
    records_count: i32,
    records: &[u8],
) -> Vec<u8> {
    let mut batch = Vec::with_capacity(BATCH_HEADER_BYTES + records.len());
    batch.extend_from_slice(&original[..BATCH_HEADER_BYTES]);
    batch.extend_from_slice(records);
    let batch_length = i32::try_from(batch.len() - LOG_OVERHEAD_BYTES)
        .expect("a rebuilt batch is smaller than its original");
    write_bytes(&mut batch, POS_BATCH_LENGTH, &batch_length.to_be_bytes());
    write_bytes(&mut batch, POS_ATTRIBUTES, &attributes.to_be_bytes());
    write_bytes(&mut batch, POS_BASE_TIMESTAMP, &base_timestamp.to_be_bytes());
    write_bytes(&mut batch, POS_MAX_TIMESTAMP, &max_timestamp.to_be_bytes());
    write_bytes(&mut batch, POS_RECORDS_COUNT, &records_count.to_be_bytes());
    let crc = compute_crc(&batch);
    write_bytes(&mut batch, POS_CRC, &crc.to_be_bytes());
    batch
}

/// The attribute bit that says `base_timestamp` is a delete horizon.
pub const ATTRIBUTE_DELETE_HORIZON: i16 = ATTR_DELETE_HORIZON;

/// One header: non-null key, nullable value.
fn read_header<'a>(cursor: &mut Cursor<'a>) -> Option<(&'a [u8], Option<&'a [u8]>)> {
    let key_length = usize::try_from(cursor.varint()?).ok()?;
    let key = cursor.take(key_length)?;
    let value = cursor.nullable_bytes()?;
    Some((key, value))
}

/// Bounds-checked reader over a byte slice; every method returns `None`
/// rather than reading past the end.
#[derive(Debug, Clone)]
struct Cursor<'a> {
    buf: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.position.checked_add(len)?;
        let out = self.buf.get(self.position..end)?;
        self.position = end;
        Some(out)
    }

    /// Unsigned base-128 varint of at most `max_bytes` bytes whose value
    /// fits in `value_bits` bits. Longer encodings, or bits beyond
    /// `value_bits`, are rejected.
    fn raw_varint(&mut self, max_bytes: usize, value_bits: u32) -> Option<u64> {
        let mut value: u64 = 0;
        let mut shift: u32 = 0;
        for index in 0..max_bytes {
            let byte = *self.buf.get(self.position.checked_add(index)?)?;
            let payload = u64::from(byte & 0x7f);
            let room_bits = value_bits.checked_sub(shift)?;
            if room_bits < 7 && payload >> room_bits != 0 {
                return None;
            }
            value |= payload << shift;
            if byte & 0x80 == 0 {
                self.position = self.position.checked_add(index + 1)?;
                return Some(value);
            }
            shift += 7;
        }
        None
    }

    /// Zigzag varint (i32), at most 5 bytes.
    fn varint(&mut self) -> Option<i32> {
        let raw = u32::try_from(self.raw_varint(5, 32)?).ok()?;
        Some(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// Zigzag varlong (i64), at most 10 bytes.
    fn varlong(&mut self) -> Option<i64> {
        let raw = self.raw_varint(10, 64)?;
        Some(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// Varint length then bytes; length -1 is null, below -1 is malformed.
    fn nullable_bytes(&mut self) -> Option<Option<&'a [u8]>> {
        let length = self.varint()?;
        if length == -1 {
            return Some(None);
        }
        let length = usize::try_from(length).ok()?;
        Some(Some(self.take(length)?))
    }
}

fn read_array<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    let end = at.checked_add(N)?;
    buf.get(at..end)?.try_into().ok()
}

fn read_i8(buf: &[u8], at: usize) -> Option<i8> {
    read_array::<1>(buf, at).map(i8::from_be_bytes)
}

fn read_i16(buf: &[u8], at: usize) -> Option<i16> {
    read_array::<2>(buf, at).map(i16::from_be_bytes)
}

fn read_i32(buf: &[u8], at: usize) -> Option<i32> {
    read_array::<4>(buf, at).map(i32::from_be_bytes)
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    read_array::<4>(buf, at).map(u32::from_be_bytes)
}

fn read_i64(buf: &[u8], at: usize) -> Option<i64> {
    read_array::<8>(buf, at).map(i64::from_be_bytes)
}

/// Copies `bytes` to `buf[at..]` if it fits; otherwise leaves `buf` alone.
fn write_bytes(buf: &mut [u8], at: usize, bytes: &[u8]) {
    let Some(end) = at.checked_add(bytes.len()) else {
        return;
    };
    if let Some(dst) = buf.get_mut(at..end) {
        dst.copy_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- hand-rolled encoder used to build test batches ----

    fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
        match bytes {
            None => put_varint(out, -1),
            Some(b) => {
                put_varint(out, b.len() as i32);
                out.extend_from_slice(b);
            }
        }
    }

    #[derive(Clone)]
    struct TestRecord {
        timestamp_delta: i64,
        offset_delta: i32,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    }

    fn record(
        offset_delta: i32,
        timestamp_delta: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> TestRecord {
        TestRecord {
            timestamp_delta,
            offset_delta,
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers: Vec::new(),
        }
    }

    fn record_body(r: &TestRecord) -> Vec<u8> {
        let mut body = vec![0u8]; // attributes
        put_varlong(&mut body, r.timestamp_delta);
        put_varint(&mut body, r.offset_delta);
        put_nullable(&mut body, r.key.as_deref());
        put_nullable(&mut body, r.value.as_deref());
        put_varint(&mut body, r.headers.len() as i32);
        for (k, v) in &r.headers {
            put_nullable(&mut body, Some(k));
            put_nullable(&mut body, v.as_deref());
        }
        body
    }

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, body.len() as i32);
        out.extend_from_slice(body);
        out
    }

    fn encode_records(records: &[TestRecord]) -> Vec<u8> {
        records.iter().flat_map(|r| framed(&record_body(r))).collect()
    }

    #[derive(Clone)]
    struct Spec {
        base_offset: i64,
        partition_leader_epoch: i32,
        attributes: i16,
        base_timestamp: i64,
        max_timestamp: i64,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    }

    fn spec() -> Spec {
        Spec {
            base_offset: 0,
            partition_leader_epoch: 7,
            attributes: 0,
            base_timestamp: 1_000,
            max_timestamp: 1_020,
            producer_id: 4_242,
            producer_epoch: 3,
            base_sequence: 11,
        }
    }

    /// Batch with explicit count fields and records region; crc computed.
    fn raw_batch(s: &Spec, records_count: i32, last_offset_delta: i32, region: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&s.base_offset.to_be_bytes());
        let batch_length = (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES + region.len()) as i32;
        b.extend_from_slice(&batch_length.to_be_bytes());
        b.extend_from_slice(&s.partition_leader_epoch.to_be_bytes());
        b.push(MAGIC_V2 as u8);
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&s.attributes.to_be_bytes());
        b.extend_from_slice(&last_offset_delta.to_be_bytes());
        b.extend_from_slice(&s.base_timestamp.to_be_bytes());
        b.extend_from_slice(&s.max_timestamp.to_be_bytes());
        b.extend_from_slice(&s.producer_id.to_be_bytes());
        b.extend_from_slice(&s.producer_epoch.to_be_bytes());
        b.extend_from_slice(&s.base_sequence.to_be_bytes());
        b.extend_from_slice(&records_count.to_be_bytes());
        assert_eq!(b.len(), BATCH_HEADER_BYTES);
        b.extend_from_slice(region);
        refresh_crc(&mut b);
        b
    }

    fn build_batch(s: &Spec, records: &[TestRecord]) -> Vec<u8> {
        let n = records.len() as i32;
        raw_batch(s, n, n - 1, &encode_records(records))
    }

    fn refresh_crc(b: &mut [u8]) {
        let crc = compute_crc(b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
    }

    fn sample_records() -> Vec<TestRecord> {
        let mut first = record(0, 0, Some(b"key-0"), Some(b"value-0"));
        first.headers = vec![
            (b"trace".to_vec(), Some(b"abc".to_vec())),
            (b"nullval".to_vec(), None),
            (Vec::new(), Some(Vec::new())),
        ];
        vec![
            first,
            record(1, 10, None, Some(b"no key")),
            record(2, 20, Some(b""), None),
        ]
    }

    fn sample_batch() -> Vec<u8> {
        build_batch(&spec(), &sample_records())
    }

    // ---- varints ----

    fn decode_varint(bytes: &[u8]) -> Option<(i32, usize)> {
        let mut c = Cursor {
            buf: bytes,
            position: 0,
        };
        c.varint().map(|v| (v, c.position))
    }

    fn decode_varlong(bytes: &[u8]) -> Option<(i64, usize)> {
        let mut c = Cursor {
            buf: bytes,
            position: 0,
        };
        c.varlong().map(|v| (v, c.position))
    }

    #[test]
    fn varint_known_encodings() {
        assert_eq!(decode_varint(&[0x00]), Some((0, 1)));
        assert_eq!(decode_varint(&[0x01]), Some((-1, 1)));
        assert_eq!(decode_varint(&[0x02]), Some((1, 1)));
        assert_eq!(decode_varint(&[0x7f]), Some((-64, 1)));
        assert_eq!(decode_varint(&[0x80, 0x01]), Some((64, 2)));
        assert_eq!(decode_varint(&[0xd8, 0x04]), Some((300, 2)));
        // non-minimal but within 5 bytes: accepted (Kafka accepts it too)
        assert_eq!(decode_varint(&[0x80, 0x00]), Some((0, 2)));
    }

    #[test]
    fn varint_round_trips_extremes() {
        for v in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            8191,
            -8192,
            i32::MAX,
            i32::MIN,
            123_456_789,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(decode_varint(&out), Some((v, out.len())), "value {v}");
        }
        for v in [0, -1, 1, i64::MAX, i64::MIN, 1 << 40, -(1 << 50)] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            assert_eq!(decode_varlong(&out), Some((v, out.len())), "value {v}");
        }
    }

    #[test]
    fn varint_rejects_overlong_and_overflow() {
        // 6-byte varint: over-long even if it terminates.
        assert_eq!(decode_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), None);
        // 5th byte carrying bits beyond 32.
        assert_eq!(decode_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f]), None);
        // 5 bytes with max legal 5th byte.
        assert_eq!(
            decode_varint(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
            Some((i32::MIN, 5))
        );
        // 11-byte varlong.
        let mut long = vec![0x80; 10];
        long.push(0x00);
        assert_eq!(decode_varlong(&long), None);
        // 10th byte with more than 1 bit.
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert_eq!(decode_varlong(&over), None);
        let mut max = vec![0xff; 9];
        max.push(0x01);
        assert_eq!(decode_varlong(&max), Some((i64::MIN, 10)));
        // Truncated: continuation bit on the last byte available.
        assert_eq!(decode_varint(&[0x80]), None);
        assert_eq!(decode_varint(&[]), None);
    }

    // ---- header ----

    #[test]
    fn parse_round_trips_every_field() {
        let mut s = spec();
        s.base_offset = 0x0102_0304_0506_0708;
        s.partition_leader_epoch = -5;
        s.attributes = ATTR_TRANSACTIONAL | 0x02;
        s.base_timestamp = -1;
        s.max_timestamp = i64::MAX;
        s.producer_id = -1;
        s.producer_epoch = -1;
        s.base_sequence = -1;
        let b = build_batch(&s, &sample_records());
        let h = BatchHeader::parse(&b).unwrap();
        assert_eq!(h.base_offset, s.base_offset);
        assert_eq!(h.batch_length as usize, b.len() - LOG_OVERHEAD_BYTES);
        assert_eq!(h.partition_leader_epoch, -5);
        assert_eq!(h.magic, MAGIC_V2);
        assert_eq!(h.crc, compute_crc(&b));
        assert_eq!(h.attributes, s.attributes);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.base_timestamp, -1);
        assert_eq!(h.max_timestamp, i64::MAX);
        assert_eq!(h.producer_id, -1);
        assert_eq!(h.producer_epoch, -1);
        assert_eq!(h.base_sequence, -1);
        assert_eq!(h.records_count, 3);
        assert_eq!(h.total_bytes(), b.len());
        assert_eq!(h.last_offset(), s.base_offset + 2);
        assert_eq!(h.compression_codec(), 2);
        assert!(h.is_transactional());
        assert!(!h.is_control());
        assert!(!h.is_log_append_time());
        assert!(!h.has_delete_horizon());
        // parse ignores trailing bytes
        let mut longer = b.clone();
        longer.extend_from_slice(&[9; 10]);
        assert_eq!(BatchHeader::parse(&longer), Ok(h));
    }

    #[test]
    fn attribute_bits() {
        let mut s = spec();
        s.attributes = ATTR_CONTROL | ATTR_LOG_APPEND_TIME | ATTR_DELETE_HORIZON | 4;
        let h = BatchHeader::parse(&build_batch(&s, &sample_records())).unwrap();
        assert!(h.is_control());
        assert!(h.is_log_append_time());
        assert!(h.has_delete_horizon());
        assert!(!h.is_transactional());
        assert_eq!(h.compression_codec(), 4);
    }

    #[test]
    fn header_helpers_do_not_overflow() {
        let mut h = BatchHeader::parse(&sample_batch()).unwrap();
        h.base_offset = i64::MAX;
        assert_eq!(h.last_offset(), i64::MAX);
        h.batch_length = -3;
        assert_eq!(h.total_bytes(), LOG_OVERHEAD_BYTES);
    }

    #[test]
    fn parse_truncated_header() {
        let b = sample_batch();
        for len in 0..BATCH_HEADER_BYTES {
            assert_eq!(
                BatchHeader::parse(&b[..len]),
                Err(BatchError::Truncated {
                    needed_bytes: BATCH_HEADER_BYTES,
                    available_bytes: len
                })
            );
        }
        assert!(BatchHeader::parse(&b[..BATCH_HEADER_BYTES]).is_ok());
    }

    #[test]
    fn parse_bad_magic() {
        for magic in [0i8, 1, 3, -1] {
            let mut b = sample_batch();
            b[16] = magic as u8;
            assert_eq!(BatchHeader::parse(&b), Err(BatchError::BadMagic { magic }));
            assert_eq!(
                validate_produced_batch(&b, 1 << 20),
                Err(BatchError::BadMagic { magic })
            );
        }
    }

    #[test]
    fn parse_bad_length() {
        for batch_length in [48, 0, -1, i32::MIN] {
            let mut b = sample_batch();
            b[8..12].copy_from_slice(&batch_length.to_be_bytes());
            assert_eq!(
                BatchHeader::parse(&b),
                Err(BatchError::BadLength { batch_length })
            );
        }
        // exactly 49: an empty batch header parses
        let empty = raw_batch(&spec(), 0, -1, &[]);
        assert_eq!(BatchHeader::parse(&empty).unwrap().batch_length, 49);
    }

    // ---- crc ----

    #[test]
    fn crc_matches_known_castagnoli_vector() {
        // CRC-32C("123456789") = 0xE3069283; prefix 21 ignored bytes.
        let mut buf = vec![0xAAu8; 21];
        buf.extend_from_slice(b"123456789");
        assert_eq!(compute_crc(&buf), 0xE306_9283);
        assert_eq!(compute_crc(&[1, 2, 3]), 0);
    }

    #[test]
    fn flipped_byte_in_every_region_is_detected() {
        let good = sample_batch();
        assert_eq!(verify_crc(&good), Ok(()));
        let header = validate_produced_batch(&good, 1 << 20).unwrap();
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0x01;
            let result = validate_produced_batch(&b, 1 << 20);
            match i {
                // baseOffset, partitionLeaderEpoch: outside the crc, still valid
                0..=7 | 12..=15 => {
                    assert!(result.is_ok(), "byte {i}: {result:?}");
                    assert_eq!(verify_crc(&b), Ok(()));
                }
                // batchLength changes the framing
                8..=11 => assert!(
                    matches!(
                        result,
                        Err(BatchError::Truncated { .. })
                            | Err(BatchError::NotExactlyOneBatch)
                            | Err(BatchError::BadLength { .. })
                    ),
                    "byte {i}: {result:?}"
                ),
                16 => assert!(matches!(result, Err(BatchError::BadMagic { .. }))),
                _ => {
                    let expected_computed = compute_crc(&b);
                    let stored = u32::from_be_bytes(b[17..21].try_into().unwrap());
                    assert_eq!(
                        result,
                        Err(BatchError::CrcMismatch {
                            stored,
                            computed: expected_computed
                        }),
                        "byte {i}"
                    );
                    assert!(verify_crc(&b).is_err(), "byte {i}");
                    if i >= 21 {
                        assert_eq!(stored, header.crc);
                    }
                }
            }
        }
    }

    #[test]
    fn verify_crc_ignores_trailing_bytes_and_reports_truncation() {
        let mut b = sample_batch();
        let len = b.len();
        b.extend_from_slice(&[0xff; 7]);
        assert_eq!(verify_crc(&b), Ok(()));
        assert_eq!(
            verify_crc(&b[..len - 1]),
            Err(BatchError::Truncated {
                needed_bytes: len,
                available_bytes: len - 1
            })
        );
    }

    // ---- validate_produced_batch ----

    #[test]
    fn validate_accepts_well_formed_batch() {
        let b = sample_batch();
        let h = validate_produced_batch(&b, b.len()).unwrap();
        assert_eq!(h, BatchHeader::parse(&b).unwrap());
        // single record, minimal body
        let one = build_batch(&spec(), &[record(0, 0, None, None)]);
        assert!(validate_produced_batch(&one, 1 << 20).is_ok());
    }

    #[test]
    fn validate_truncated_at_every_length() {
        let b = sample_batch();
        for len in 0..b.len() {
            let expected = if len < BATCH_HEADER_BYTES {
                BATCH_HEADER_BYTES
            } else {
                b.len()
            };
            assert_eq!(
                validate_produced_batch(&b[..len], 1 << 20),
                Err(BatchError::Truncated {
                    needed_bytes: expected,
                    available_bytes: len
                }),
                "len {len}"
            );
        }
    }

    #[test]
    fn validate_rejects_trailing_bytes_and_two_batches() {
        let b = sample_batch();
        let mut trailing = b.clone();
        trailing.push(0);
        assert_eq!(
            validate_produced_batch(&trailing, 1 << 20),
            Err(BatchError::NotExactlyOneBatch)
        );
        let mut two = b.clone();
        two.extend_from_slice(&b);
        assert_eq!(
            validate_produced_batch(&two, 1 << 20),
            Err(BatchError::NotExactlyOneBatch)
        );
    }

    #[test]
    fn validate_too_large() {
        let b = sample_batch();
        assert_eq!(
            validate_produced_batch(&b, b.len() - 1),
            Err(BatchError::TooLarge {
                batch_bytes: b.len(),
                max_bytes: b.len() - 1
            })
        );
        assert!(validate_produced_batch(&b, b.len()).is_ok());
        assert!(matches!(
            validate_produced_batch(&b, 0),
            Err(BatchError::TooLarge { .. })
        ));
    }

    #[test]
    fn validate_record_count_rules() {
        let s = spec();
        let region = encode_records(&sample_records());
        // zero records
        let b = raw_batch(&s, 0, -1, &[]);
        assert_eq!(
            validate_produced_batch(&b, 1 << 20),
            Err(BatchError::BadRecordCount {
                records_count: 0,
                last_offset_delta: -1
            })
        );
        // negative count
        let b = raw_batch(&s, -1, -2, &region);
        assert!(matches!(
            validate_produced_batch(&b, 1 << 20),
            Err(BatchError::BadRecordCount { .. })
        ));
        // last_offset_delta disagrees with count
        let b = raw_batch(&s, 3, 5, &region);
        assert_eq!(
            validate_produced_batch(&b, 1 << 20),
            Err(BatchError::BadRecordCount {
                records_count: 3,
                last_offset_delta: 5
            })
        );
        // overflow of last_offset_delta + 1 must not panic
        let b = raw_batch(&s, i32::MIN, i32::MAX, &region);
        assert!(matches!(
            validate_produced_batch(&b, 1 << 20),
            Err(BatchError::BadRecordCount { .. })
        ));
        // consistent header, but more records claimed than present
        let b = raw_batch(&s, 4, 3, &region);
        assert_eq!(
            validate_produced_batch(&b, 1 << 20),
            Err(BatchError::RecordsMalformed)
        );
        // huge claimed count terminates quickly
        let b = raw_batch(&s, i32::MAX, i32::MAX - 1, &region);
        assert_eq!(
            validate_produced_batch(&b, 1 << 20),
            Err(BatchError::RecordsMalformed)
        );
        // fewer records claimed than present: trailing record bytes
        let b = raw_batch(&s, 2, 1, &region);
        assert_eq!(
            validate_produced_batch(&b, 1 << 20),
            Err(BatchError::RecordsMalformed)
        );
    }

    #[test]
    fn validate_compression_codecs() {
        let garbage = b"definitely not a valid record region".to_vec();
        for codec in 1..=4i16 {
            let mut s = spec();
            s.attributes = codec;
            // compressed payloads are not walked
            let b = raw_batch(&s, 5, 4, &garbage);
            let h = validate_produced_batch(&b, 1 << 20).unwrap();
            assert_eq!(h.compression_codec(), codec as u8);
        }
        for codec in 5..=7u8 {
            let mut s = spec();
            s.attributes = i16::from(codec) | ATTR_TRANSACTIONAL;
            let b = raw_batch(&s, 1, 0, &garbage);
            assert_eq!(
                validate_produced_batch(&b, 1 << 20),
                Err(BatchError::UnknownCompression { codec })
            );
        }
    }

    fn expect_malformed(region: &[u8], records_count: i32) {
        let b = raw_batch(&spec(), records_count, records_count - 1, region);
        assert_eq!(
            validate_produced_batch(&b, 1 << 20),
            Err(BatchError::RecordsMalformed),
            "region {region:02x?}"
        );
    }

    #[test]
    fn validate_malformed_records() {
        let good = record_body(&record(0, 5, Some(b"k"), Some(b"v")));
        // length prefix longer than the data
        let mut r = Vec::new();
        put_varint(&mut r, good.len() as i32 + 1);
        r.extend_from_slice(&good);
        expect_malformed(&r, 1);
        // length prefix shorter than the body: body not consumed exactly
        let mut r = Vec::new();
        put_varint(&mut r, good.len() as i32 - 1);
        r.extend_from_slice(&good);
        expect_malformed(&r, 1);
        // negative record length
        let mut r = Vec::new();
        put_varint(&mut r, -1);
        expect_malformed(&r, 1);
        // zero-length record
        expect_malformed(&framed(&[]), 1);
        // key length below -1
        let mut body = vec![0u8];
        put_varlong(&mut body, 0);
        put_varint(&mut body, 0);
        put_varint(&mut body, -2);
        put_varint(&mut body, -1);
        put_varint(&mut body, 0);
        expect_malformed(&framed(&body), 1);
        // key longer than the record
        let mut body = vec![0u8];
        put_varlong(&mut body, 0);
        put_varint(&mut body, 0);
        put_varint(&mut body, 100);
        body.extend_from_slice(b"short");
        expect_malformed(&framed(&body), 1);
        // null header key
        let mut body = vec![0u8];
        put_varlong(&mut body, 0);
        put_varint(&mut body, 0);
        put_varint(&mut body, -1);
        put_varint(&mut body, -1);
        put_varint(&mut body, 1);
        put_varint(&mut body, -1);
        put_varint(&mut body, -1);
        expect_malformed(&framed(&body), 1);
        // negative header count
        let mut body = vec![0u8];
        put_varlong(&mut body, 0);
        put_varint(&mut body, 0);
        put_varint(&mut body, -1);
        put_varint(&mut body, -1);
        put_varint(&mut body, -3);
        expect_malformed(&framed(&body), 1);
        // header count larger than the headers present
        let mut body = vec![0u8];
        put_varlong(&mut body, 0);
        put_varint(&mut body, 0);
        put_varint(&mut body, -1);
        put_varint(&mut body, -1);
        put_varint(&mut body, 1_000_000);
        expect_malformed(&framed(&body), 1);
        // over-long varint as the record length
        expect_malformed(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01], 1);
        // over-long varlong timestamp delta inside the body
        let mut body = vec![0u8];
        body.extend_from_slice(&[0x80; 10]);
        body.push(0x00);
        put_varint(&mut body, 0);
        put_varint(&mut body, -1);
        put_varint(&mut body, -1);
        put_varint(&mut body, 0);
        expect_malformed(&framed(&body), 1);
        // good record followed by a truncated second one
        let mut r = framed(&good);
        r.extend_from_slice(&framed(&good)[..3]);
        expect_malformed(&r, 2);
        // sanity: the good record alone passes
        let b = raw_batch(&spec(), 1, 0, &framed(&good));
        assert!(validate_produced_batch(&b, 1 << 20).is_ok());
    }

    // ---- records view ----

    #[test]
    fn record_iterator_decodes_fields_and_headers() {
        let b = sample_batch();
        let records: Vec<_> = uncompressed_records(&b).unwrap().map(Result::unwrap).collect();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].key, Some(&b"key-0"[..]));
        assert_eq!(records[0].value, Some(&b"value-0"[..]));
        assert_eq!(records[0].offset_delta, 0);
        assert_eq!(records[0].attributes, 0);
        assert_eq!(records[0].headers_count(), 3);
        let headers: Vec<_> = records[0].headers().collect();
        assert_eq!(
            headers,
            vec![
                (&b"trace"[..], Some(&b"abc"[..])),
                (&b"nullval"[..], None),
                (&b""[..], Some(&b""[..])),
            ]
        );
        assert_eq!(records[1].key, None);
        assert_eq!(records[1].timestamp_delta, 10);
        assert_eq!(records[2].key, Some(&b""[..]));
        assert_eq!(records[2].value, None);
        assert_eq!(records[2].offset_delta, 2);
        assert_eq!(records[2].headers().count(), 0);

        let mut iter = uncompressed_records(&b).unwrap();
        for r in iter.by_ref() {
            r.unwrap();
        }
        assert_eq!(iter.remaining_bytes(), 0);
    }

    #[test]
    fn record_iterator_refuses_compressed_and_truncated() {
        let mut s = spec();
        s.attributes = 1;
        assert!(uncompressed_records(&build_batch(&s, &sample_records())).is_none());
        let b = sample_batch();
        assert!(uncompressed_records(&b[..b.len() - 1]).is_none());
        assert!(uncompressed_records(&b[..10]).is_none());
        // error yielded once, then finished
        let region = framed(&[0u8]);
        let bad = raw_batch(&spec(), 2, 1, &region);
        let items: Vec<_> = uncompressed_records(&bad).unwrap().collect();
        assert_eq!(items, vec![Err(BatchError::RecordsMalformed)]);
    }

    // ---- patching ----

    #[test]
    fn set_base_offset_keeps_crc_valid() {
        let mut b = sample_batch();
        let crc_before = BatchHeader::parse(&b).unwrap().crc;
        for offset in [0, 1, 987_654_321, i64::MAX - 2, -1] {
            set_base_offset(&mut b, offset);
            let h = validate_produced_batch(&b, 1 << 20).unwrap();
            assert_eq!(h.base_offset, offset);
            assert_eq!(h.crc, crc_before);
            assert_eq!(verify_crc(&b), Ok(()));
        }
        // too short: no-op, no panic
        let mut short = [1u8; 5];
        set_base_offset(&mut short, 9);
        assert_eq!(short, [1u8; 5]);
    }

    #[test]
    fn set_log_append_time_sets_bit_and_crc() {
        let mut s = spec();
        s.attributes = ATTR_TRANSACTIONAL | 0x03;
        let mut b = build_batch(&s, &sample_records());
        let before = BatchHeader::parse(&b).unwrap();
        set_log_append_time(&mut b, 1_700_000_000_000);
        assert_eq!(verify_crc(&b), Ok(()));
        let h = BatchHeader::parse(&b).unwrap();
        assert!(h.is_log_append_time());
        assert!(h.is_transactional());
        assert_eq!(h.compression_codec(), 3);
        assert_eq!(h.max_timestamp, 1_700_000_000_000);
        assert_eq!(h.base_timestamp, before.base_timestamp);
        assert_ne!(h.crc, before.crc);
        assert_eq!(
            BatchHeader {
                crc: before.crc,
                attributes: before.attributes,
                max_timestamp: before.max_timestamp,
                ..h
            },
            before
        );
        // idempotent on a batch that already has the bit
        set_log_append_time(&mut b, 5);
        assert_eq!(verify_crc(&b), Ok(()));
        assert_eq!(BatchHeader::parse(&b).unwrap().max_timestamp, 5);
        // uncompressed batch still fully validates
        let mut plain = sample_batch();
        set_log_append_time(&mut plain, 42);
        assert!(validate_produced_batch(&plain, 1 << 20)
            .unwrap()
            .is_log_append_time());
        // too short: no-op
        let mut short = vec![7u8; BATCH_HEADER_BYTES - 1];
        set_log_append_time(&mut short, 1);
        assert_eq!(short, vec![7u8; BATCH_HEADER_BYTES - 1]);
    }

    // ---- scanner ----

    fn segment_of(count: usize) -> (Vec<u8>, Vec<usize>) {
        let mut seg = Vec::new();
        let mut starts = Vec::new();
        for i in 0..count {
            let mut s = spec();
            s.base_offset = (i * 3) as i64;
            let recs: Vec<_> = (0..=i)
                .map(|j| record(j as i32, j as i64, Some(b"k"), Some(&vec![b'x'; i * 5])))
                .collect();
            starts.push(seg.len());
            seg.extend_from_slice(&build_batch(&s, &recs));
        }
        (seg, starts)
    }

    #[test]
    fn scanner_stops_at_zero_padding() {
        let (mut seg, starts) = segment_of(3);
        let end = seg.len();
        seg.extend_from_slice(&[0u8; 4096]);
        let mut scanner = scan_batches(&seg);
        let found: Vec<_> = scanner.by_ref().map(Result::unwrap).collect();
        assert_eq!(found.iter().map(|(p, _)| *p).collect::<Vec<_>>(), starts);
        assert_eq!(found[2].1.base_offset, 6);
        assert_eq!(scanner.position(), end);
        assert!(scanner.next().is_none());
        // short zero tail (fewer than a header's worth)
        let (mut seg, _) = segment_of(2);
        let end = seg.len();
        seg.extend_from_slice(&[0u8; 20]);
        let mut scanner = scan_batches(&seg);
        assert_eq!(scanner.by_ref().count(), 2);
        assert_eq!(scanner.position(), end);
        // zero batch_length with non-zero base offset also ends the scan
        let (mut seg, _) = segment_of(1);
        let end = seg.len();
        let mut pad = vec![0u8; 100];
        pad[..8].copy_from_slice(&5i64.to_be_bytes());
        seg.extend_from_slice(&pad);
        let mut scanner = scan_batches(&seg);
        assert_eq!(scanner.by_ref().count(), 1);
        assert_eq!(scanner.position(), end);
    }

    #[test]
    fn scanner_stops_at_torn_tail() {
        let (seg, starts) = segment_of(4);
        let last_start = starts[3];
        for cut in last_start..seg.len() {
            let mut scanner = scan_batches(&seg[..cut]);
            let found: Vec<_> = scanner.by_ref().map(Result::unwrap).collect();
            assert_eq!(found.len(), 3, "cut {cut}");
            assert_eq!(scanner.position(), last_start, "cut {cut}");
        }
        let mut scanner = scan_batches(&seg);
        assert_eq!(scanner.by_ref().count(), 4);
        assert_eq!(scanner.position(), seg.len());
    }

    #[test]
    fn scanner_empty_and_bad_header() {
        let mut scanner = scan_batches(&[]);
        assert!(scanner.next().is_none());
        assert_eq!(scanner.position(), 0);

        let (mut seg, starts) = segment_of(3);
        seg[starts[1] + 16] = 1; // magic of the second batch
        let mut scanner = scan_batches(&seg);
        assert!(scanner.next().unwrap().is_ok());
        assert_eq!(scanner.next(), Some(Err(BatchError::BadMagic { magic: 1 })));
        assert_eq!(scanner.next(), None);
        assert_eq!(scanner.next(), None);
        assert_eq!(scanner.position(), starts[1]);

        let (mut seg, starts) = segment_of(2);
        seg[starts[1] + 8..starts[1] + 12].copy_from_slice(&(-7i32).to_be_bytes());
        let mut scanner = scan_batches(&seg);
        assert!(scanner.next().unwrap().is_ok());
        assert_eq!(
            scanner.next(),
            Some(Err(BatchError::BadLength { batch_length: -7 }))
        );
        assert_eq!(scanner.next(), None);
        assert_eq!(scanner.position(), starts[1]);
    }

    #[test]
    fn scanner_does_not_check_crc() {
        let (mut seg, starts) = segment_of(2);
        seg[starts[1] + 40] ^= 0xff;
        let found: Vec<_> = scan_batches(&seg).collect();
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(Result::is_ok));
        assert!(verify_crc(&seg[starts[1]..]).is_err());
    }

    // ---- timestamp search ----

    #[test]
    fn timestamp_search_uncompressed() {
        let mut s = spec();
        s.base_offset = 100;
        let b = build_batch(&s, &sample_records()); // timestamps 1000, 1010, 1020
        let f = |t| first_offset_with_timestamp_at_or_after(&b, t);
        assert_eq!(f(i64::MIN), Some(100));
        assert_eq!(f(1_000), Some(100));
        assert_eq!(f(1_001), Some(101));
        assert_eq!(f(1_010), Some(101));
        assert_eq!(f(1_015), Some(102));
        assert_eq!(f(1_020), Some(102));
        assert_eq!(f(1_021), None);
        assert_eq!(f(i64::MAX), None);
    }

    #[test]
    fn timestamp_search_unordered_and_untrusted_max() {
        let mut s = spec();
        s.base_offset = 10;
        s.max_timestamp = 0; // producer lied; records are still walked
        let recs = vec![
            record(0, 50, None, Some(b"a")),
            record(1, 10, None, Some(b"b")),
            record(2, 30, None, Some(b"c")),
        ];
        let b = build_batch(&s, &recs);
        assert_eq!(first_offset_with_timestamp_at_or_after(&b, 1_020), Some(10));
        assert_eq!(first_offset_with_timestamp_at_or_after(&b, 1_040), Some(10));
        assert_eq!(first_offset_with_timestamp_at_or_after(&b, 1_051), None);
    }

    #[test]
    fn timestamp_search_undecompressable_is_approximate() {
        let mut s = spec();
        s.attributes = 4;
        s.base_offset = 55;
        s.max_timestamp = 2_000;
        let b = raw_batch(&s, 3, 2, b"not zstd at all");
        assert_eq!(first_offset_with_timestamp_at_or_after(&b, 2_000), Some(55));
        assert_eq!(first_offset_with_timestamp_at_or_after(&b, 0), Some(55));
        assert_eq!(first_offset_with_timestamp_at_or_after(&b, 2_001), None);
    }

    #[test]
    fn timestamp_search_compressed_names_the_record() {
        // The records of sample_records() (timestamps 1000, 1010, 1020),
        // zstd-compressed into a batch at base offset 30.
        let mut s = spec();
        s.base_offset = 30;
        let plain = build_batch(&s, &sample_records());
        let compressed = zstd::encode_all(&plain[BATCH_HEADER_BYTES..], 3).unwrap();
        s.attributes = i16::from(COMPRESSION_ZSTD);
        s.max_timestamp = 1_020;
        let b = raw_batch(&s, 3, 2, &compressed);
        let f = |t| first_record_with_timestamp_at_or_after(&b, t);
        assert_eq!(f(0), Some((30, 1_000)));
        assert_eq!(f(1_001), Some((31, 1_010)));
        assert_eq!(f(1_011), Some((32, 1_020)));
        assert_eq!(f(1_021), None);
    }

    #[test]
    fn timestamp_search_log_append_time() {
        let mut s = spec();
        s.base_offset = 7;
        let mut b = build_batch(&s, &sample_records());
        set_log_append_time(&mut b, 5_000);
        assert_eq!(first_offset_with_timestamp_at_or_after(&b, 5_000), Some(7));
        assert_eq!(first_offset_with_timestamp_at_or_after(&b, 1_015), Some(7));
        assert_eq!(first_offset_with_timestamp_at_or_after(&b, 5_001), None);
    }

    #[test]
    fn timestamp_search_bad_input() {
        let b = sample_batch();
        assert_eq!(
            first_offset_with_timestamp_at_or_after(&b[..b.len() - 1], 0),
            None
        );
        assert_eq!(first_offset_with_timestamp_at_or_after(&b[..30], 0), None);
        assert_eq!(first_offset_with_timestamp_at_or_after(&[], 0), None);
        // malformed before any match
        let bad = raw_batch(&spec(), 1, 0, &[0x05, 0x00]);
        assert_eq!(first_offset_with_timestamp_at_or_after(&bad, 0), None);
        // overflowing timestamp arithmetic is not a panic
        let mut s = spec();
        s.base_timestamp = i64::MAX;
        let b = build_batch(&s, &[record(0, 5, None, None)]);
        assert_eq!(first_offset_with_timestamp_at_or_after(&b, 0), None);
        // empty uncompressed batch
        let empty = raw_batch(&spec(), 0, -1, &[]);
        assert_eq!(first_offset_with_timestamp_at_or_after(&empty, 0), None);
    }

    // ---- errors ----

    #[test]
    fn errors_display_human_text() {
        let all = [
            BatchError::Truncated {
                needed_bytes: 61,
                available_bytes: 3,
            },
            BatchError::BadLength { batch_length: 12 },
            BatchError::BadMagic { magic: 1 },
            BatchError::CrcMismatch {
                stored: 1,
                computed: 2,
            },
            BatchError::BadRecordCount {
                records_count: 4,
                last_offset_delta: 9,
            },
            BatchError::RecordsMalformed,
            BatchError::TooLarge {
                batch_bytes: 2_000,
                max_bytes: 1_000,
            },
            BatchError::NotExactlyOneBatch,
            BatchError::UnknownCompression { codec: 6 },
        ];
        for e in &all {
            let text = e.to_string();
            assert!(!text.is_empty());
            let _: &dyn std::error::Error = e;
        }
        assert!(all[0].to_string().contains("61"));
        assert!(all[3].to_string().contains("0x00000002"));
        assert!(all[6].to_string().contains("2000"));
    }

    // ---- robustness ----

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn exercise(buf: &[u8]) {
        let _ = BatchHeader::parse(buf);
        let _ = verify_crc(buf);
        let _ = validate_produced_batch(buf, 1 << 20);
        let _ = first_offset_with_timestamp_at_or_after(buf, 1_010);
        if let Some(iter) = uncompressed_records(buf) {
            for r in iter.flatten() {
                let _ = r.headers().count();
            }
        }
        let mut scanner = scan_batches(buf);
        while scanner.next().is_some() {}
        assert!(scanner.position() <= buf.len());
        let mut copy = buf.to_vec();
        set_base_offset(&mut copy, 1);
        set_log_append_time(&mut copy, 2);
    }

    #[test]
    fn mutated_and_random_input_never_panics() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let good = sample_batch();
        for _ in 0..20_000 {
            let mut b = good.clone();
            let flips = 1 + (rng.next() % 4) as usize;
            for _ in 0..flips {
                let at = (rng.next() as usize) % b.len();
                b[at] = rng.next() as u8;
            }
            if rng.next() & 1 == 0 {
                // keep the crc right so record decoding is reached
                refresh_crc(&mut b);
            }
            exercise(&b);
            let cut = (rng.next() as usize) % (b.len() + 1);
            exercise(&b[..cut]);
        }
        for _ in 0..2_000 {
            let len = (rng.next() % 200) as usize;
            let b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            exercise(&b);
        }
    }

    // ---- cross-check with an independent implementation ----

    #[test]
    fn interoperates_with_kafka_protocol_crate() {
        use bytes::{Bytes, BytesMut};
        use kafka_protocol::protocol::StrBytes;
        use kafka_protocol::records::{
            Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };

        // Their encoder, our validator.
        let mut theirs = Vec::new();
        for i in 0..4i64 {
            let mut headers = kafka_protocol::indexmap::IndexMap::new();
            headers.insert(
                StrBytes::from_static_str("h"),
                Some(Bytes::from(vec![i as u8; 3])),
            );
            theirs.push(Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: 99,
                producer_epoch: 1,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: i as i32,
                timestamp: 5_000 + i * 7,
                key: if i == 1 {
                    None
                } else {
                    Some(Bytes::from(format!("key{i}")))
                },
                value: Some(Bytes::from(vec![b'v'; i as usize * 10])),
                headers,
            });
        }
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &theirs,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        let h = validate_produced_batch(&buf, 1 << 20).unwrap();
        assert_eq!(h.records_count, 4);
        assert_eq!(h.producer_id, 99);
        assert_eq!(h.base_sequence, 0);
        let ours: Vec<_> = uncompressed_records(&buf).unwrap().map(Result::unwrap).collect();
        for (mine, theirs) in ours.iter().zip(&theirs) {
            assert_eq!(h.base_offset + i64::from(mine.offset_delta), theirs.offset);
            assert_eq!(h.base_timestamp + mine.timestamp_delta, theirs.timestamp);
            assert_eq!(mine.key, theirs.key.as_deref());
            assert_eq!(mine.value, theirs.value.as_deref());
            let hs: Vec<_> = mine.headers().collect();
            assert_eq!(hs.len(), 1);
            assert_eq!(hs[0].0, b"h");
        }
        assert_eq!(first_offset_with_timestamp_at_or_after(&buf, 5_008), Some(2));

        // Our batch (patched), their decoder.
        let mut b = sample_batch();
        set_base_offset(&mut b, 500);
        set_log_append_time(&mut b, 9_999);
        let mut bytes = Bytes::from(b);
        let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
        assert_eq!(set.records.len(), 3);
        assert_eq!(set.records[0].offset, 500);
        assert_eq!(set.records[2].offset, 502);
        assert_eq!(set.records[0].timestamp_type, TimestampType::LogAppend);
        assert_eq!(set.records[0].key.as_deref(), Some(&b"key-0"[..]));
        assert_eq!(set.records[0].headers.len(), 3);
        assert_eq!(set.records[1].key, None);
        assert_eq!(set.records[2].value, None);
    }
}
