//! Validating what a Fetch returns: walk every batch, check its CRC32C,
//! decompress it if needed, parse every record, and count.
//!
//! A Fetch response's `records` may end with a partial batch (Kafka cuts at
//! `max_bytes`); that is normal and not an error. Batches that start below
//! the fetch offset (a compressed batch is returned whole) contribute only
//! their records at or above it. Control batches (transaction markers) are
//! skipped. Anything else malformed is counted, never panicked on: the walk
//! reads only through bounds-checked cursors.

use bytes::{Buf, Bytes};
use kafka_protocol::compression::{Decompressor, Gzip, Lz4, Snappy, Zstd};

use super::{
    ATTRIBUTE_CODEC_MASK, ATTRIBUTE_CONTROL, BATCH_CRC_START, BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES,
    MAGIC_V2,
};

/// What one walk over a partition's records found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalkStats {
    pub batches: u64,
    /// Records at or above the fetch offset, control records excluded.
    pub records: u64,
    pub value_bytes: u64,
    /// Bytes of the complete batches walked (as on the wire).
    pub wire_bytes: u64,
    pub crc_errors: u64,
    /// Batches whose records do not parse or disagree with the header count.
    pub corrupt_batches: u64,
    /// Batches of a format other than v2.
    pub unsupported_batches: u64,
    /// Where the next fetch starts: one past the last complete batch, if any.
    pub next_offset: Option<i64>,
}

fn be_i16(data: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([data[at], data[at + 1]])
}

fn be_i32(data: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

fn be_u32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

fn be_i64(data: &[u8], at: usize) -> i64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&data[at..at + 8]);
    i64::from_be_bytes(bytes)
}

/// Walks `data` (one partition's `records` from a Fetch response), calling
/// `on_record(offset, value)` for every counted record.
pub fn walk_batches(data: &Bytes, fetch_offset: i64, mut on_record: impl FnMut(i64, &[u8])) -> WalkStats {
    let mut stats = WalkStats::default();
    let mut position = 0usize;
    while data.len() - position >= BATCH_HEADER_BYTES {
        let batch_start = position;
        let header = &data[batch_start..batch_start + BATCH_HEADER_BYTES];
        let base_offset = be_i64(header, 0);
        let length = be_i32(header, 8);
        let Ok(length) = usize::try_from(length) else {
            stats.corrupt_batches += 1;
            break;
        };
        if length < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD_BYTES {
            stats.corrupt_batches += 1;
            break;
        }
        let batch_bytes = BATCH_LOG_OVERHEAD_BYTES + length;
        if data.len() - batch_start < batch_bytes {
            break; // partial batch at the end of the response
        }
        position += batch_bytes;
        if header[16] != MAGIC_V2 {
            stats.unsupported_batches += 1;
            break;
        }
        let batch = &data[batch_start..batch_start + batch_bytes];
        let last_offset_delta = be_i32(header, 23);
        stats.next_offset = Some(base_offset.saturating_add(i64::from(last_offset_delta)) + 1);
        stats.batches += 1;
        stats.wire_bytes += batch_bytes as u64;
        if crc32c::crc32c(&batch[BATCH_CRC_START..]) != be_u32(header, 17) {
            stats.crc_errors += 1;
            continue;
        }
        let attributes = be_i16(header, 21);
        if attributes & ATTRIBUTE_CONTROL != 0 {
            continue;
        }
        let record_count = be_i32(header, 57);
        let records = data.slice(batch_start + BATCH_HEADER_BYTES..batch_start + batch_bytes);
        let records = match decompress(attributes & ATTRIBUTE_CODEC_MASK, records) {
            Ok(records) => records,
            Err(_) => {
                stats.corrupt_batches += 1;
                continue;
            }
        };
        let walked = walk_records(&records, base_offset, fetch_offset, &mut stats, &mut on_record);
        if walked != Some(i64::from(record_count)) {
            stats.corrupt_batches += 1;
        }
    }
    stats
}

/// Parses every record; `None` if they do not parse to exactly the end.
fn walk_records(
    records: &[u8],
    base_offset: i64,
    fetch_offset: i64,
    stats: &mut WalkStats,
    on_record: &mut impl FnMut(i64, &[u8]),
) -> Option<i64> {
    let mut cursor = Cursor {
        data: records,
        position: 0,
    };
    let mut count = 0i64;
    while cursor.remaining() > 0 {
        let length = usize::try_from(cursor.varint()?).ok()?;
        let record_end = cursor.position.checked_add(length)?;
        if record_end > records.len() {
            return None;
        }
        let mut record = Cursor {
            data: &records[..record_end],
            position: cursor.position,
        };
        record.take(1)?; // attributes
        record.varint()?; // timestamp delta
        let offset_delta = record.varint()?;
        skip_bytes_field(&mut record)?; // key
        let value_length = record.varint()?;
        let value = if value_length < 0 {
            &[][..]
        } else {
            record.take(usize::try_from(value_length).ok()?)?
        };
        let headers = record.varint()?;
        for _ in 0..headers.max(0) {
            skip_bytes_field(&mut record)?;
            skip_bytes_field(&mut record)?;
        }
        if record.position != record_end {
            return None;
        }
        cursor.position = record_end;
        count += 1;
        let offset = base_offset.saturating_add(offset_delta);
        if offset >= fetch_offset {
            stats.records += 1;
            stats.value_bytes += value.len() as u64;
            on_record(offset, value);
        }
    }
    Some(count)
}

fn skip_bytes_field(cursor: &mut Cursor<'_>) -> Option<()> {
    let length = cursor.varint()?;
    if length > 0 {
        cursor.take(usize::try_from(length).ok()?)?;
    }
    Some(())
}

fn decompress(codec: i16, records: Bytes) -> Result<Bytes, String> {
    let mut input = records;
    let take = |buf: &mut Bytes| Ok(buf.copy_to_bytes(buf.remaining()));
    let result = match codec {
        0 => return Ok(input),
        1 => <Gzip as Decompressor<Bytes>>::decompress(&mut input, take),
        2 => <Snappy as Decompressor<Bytes>>::decompress(&mut input, take),
        3 => <Lz4 as Decompressor<Bytes>>::decompress(&mut input, take),
        4 => <Zstd as Decompressor<Bytes>>::decompress(&mut input, take),
        other => return Err(format!("unknown codec {other}")),
    };
    result.map_err(|e| format!("decompressing codec {codec}: {e:#}"))
}

struct Cursor<'a> {
    data: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.data.len() - self.position
    }

    fn take(&mut self, bytes: usize) -> Option<&'a [u8]> {
        let end = self.position.checked_add(bytes)?;
        let slice = self.data.get(self.position..end)?;
        self.position = end;
        Some(slice)
    }

    /// Zigzag varint of up to 10 bytes (varlong).
    fn varint(&mut self) -> Option<i64> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = *self.data.get(self.position)?;
            self.position += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::cli::Codec;
    use crate::records::encode::{encode_batch, RecordValue};

    fn batch(codec: Codec, base_offset: i64, count: usize, first_us: u64) -> BytesMut {
        let body = vec![7u8; 100];
        let mut out = BytesMut::new();
        let records = (0..count).map(|i| RecordValue {
            sent_at_wall_us: first_us + i as u64,
            body: &body,
        });
        encode_batch(&mut out, codec, records, &mut BytesMut::new()).expect("encode");
        out[0..8].copy_from_slice(&base_offset.to_be_bytes());
        out
    }

    #[test]
    fn walks_counts_and_reads_every_value_for_every_codec() {
        for codec in [Codec::None, Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let mut data = batch(codec, 0, 10, 1_000);
            data.extend_from_slice(&batch(codec, 10, 5, 2_000));
            let mut sent = Vec::new();
            let stats = walk_batches(&data.freeze(), 0, |offset, value| {
                sent.push((offset, u64::from_be_bytes(value[..8].try_into().unwrap())));
            });
            assert_eq!(
                (stats.batches, stats.records, stats.value_bytes),
                (2, 15, 15 * 108),
                "{codec:?}"
            );
            assert_eq!((stats.crc_errors, stats.corrupt_batches), (0, 0));
            assert_eq!(stats.next_offset, Some(15));
            assert_eq!(sent[0], (0, 1_000));
            assert_eq!(sent[14], (14, 2_004));
        }
    }

    #[test]
    fn partial_tail_is_not_an_error_and_records_below_fetch_offset_are_skipped() {
        let mut data = batch(Codec::Lz4, 100, 10, 0);
        let second = batch(Codec::None, 110, 10, 0);
        data.extend_from_slice(&second[..second.len() - 3]);
        let stats = walk_batches(&data.freeze(), 104, |_, _| {});
        assert_eq!((stats.batches, stats.records, stats.corrupt_batches), (1, 6, 0));
        assert_eq!(stats.next_offset, Some(110));
    }

    #[test]
    fn flipped_bits_are_crc_errors_and_garbage_never_panics() {
        let mut data = batch(Codec::None, 0, 3, 0);
        let last = data.len() - 1;
        data[last] ^= 0x40;
        let stats = walk_batches(&data.clone().freeze(), 0, |_, _| {});
        assert_eq!((stats.crc_errors, stats.records), (1, 0));
        assert_eq!(stats.next_offset, Some(3));

        let mut random = crate::payload::SplitMix64::new(3);
        for length in 0..400usize {
            let mut garbage: Vec<u8> = (0..length).map(|_| random.next_u64() as u8).collect();
            if garbage.len() > 17 {
                garbage[16] = MAGIC_V2;
                garbage[8..12].copy_from_slice(&i32::try_from(length - 12).unwrap().to_be_bytes());
            }
            let _ = walk_batches(&Bytes::from(garbage), 0, |_, _| {});
        }
    }

    #[test]
    fn record_count_mismatch_is_corruption() {
        let mut data = batch(Codec::None, 0, 3, 0);
        data[57..61].copy_from_slice(&4i32.to_be_bytes());
        let crc = crc32c::crc32c(&data[BATCH_CRC_START..]);
        data[17..21].copy_from_slice(&crc.to_be_bytes());
        let stats = walk_batches(&data.freeze(), 0, |_, _| {});
        assert_eq!(stats.corrupt_batches, 1);
    }
}
