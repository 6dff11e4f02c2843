//! Encoding one record batch v2 per partition per request.
//!
//! Each record's value is the 8-byte big-endian send time (wall-clock µs,
//! the *scheduled* time in open loop) followed by a body from the payload
//! pool; records have no key and no headers. The record timestamp
//! (CreateTime, ms) is the same instant. Offsets, producer id, epoch and
//! sequence are left for the broker (non-idempotent producer).

use bytes::{BufMut, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

use super::{BATCH_CRC_START, BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES, MAGIC_V2};
use crate::cli::Codec;

/// One record to encode.
#[derive(Clone, Copy, Debug)]
pub struct RecordValue<'a> {
    /// Written as the first 8 bytes of the value and as the record timestamp.
    pub sent_at_wall_us: u64,
    /// The rest of the value.
    pub body: &'a [u8],
}

/// What one encoded batch holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchInfo {
    pub records: u32,
    pub value_bytes: u64,
    pub batch_bytes: usize,
}

pub fn codec_id(codec: Codec) -> i16 {
    match codec {
        Codec::None => 0,
        Codec::Gzip => 1,
        Codec::Snappy => 2,
        Codec::Lz4 => 3,
        Codec::Zstd => 4,
    }
}

/// Appends one batch holding `records` (at least one) to `out`. `scratch`
/// holds the uncompressed records when a codec is used; it is reused across
/// calls so steady-state encoding does not allocate.
pub fn encode_batch<'a, I>(
    out: &mut BytesMut,
    codec: Codec,
    records: I,
    scratch: &mut BytesMut,
) -> Result<BatchInfo, String>
where
    I: IntoIterator<Item = RecordValue<'a>>,
{
    let mut records = records.into_iter().peekable();
    let Some(first) = records.peek() else {
        return Err("a record batch needs at least one record".into());
    };
    let base_timestamp_ms = wall_ms(first.sent_at_wall_us);
    let start = out.len();
    out.put_i64(0); // baseOffset: assigned by the broker
    out.put_i32(0); // length: patched below
    out.put_i32(-1); // partitionLeaderEpoch
    out.put_u8(MAGIC_V2);
    out.put_u32(0); // crc: patched below
    out.put_i16(codec_id(codec)); // attributes: codec, CreateTime, not transactional
    out.put_i32(0); // lastOffsetDelta: patched below
    out.put_i64(base_timestamp_ms);
    out.put_i64(0); // maxTimestamp: patched below
    out.put_i64(-1); // producerId
    out.put_i16(-1); // producerEpoch
    out.put_i32(-1); // baseSequence
    out.put_i32(0); // recordCount: patched below
    debug_assert_eq!(out.len() - start, BATCH_HEADER_BYTES);

    let mut info = BatchInfo::default();
    let mut timestamp_ms_max = base_timestamp_ms;
    {
        let target: &mut BytesMut = if codec == Codec::None {
            out
        } else {
            scratch.clear();
            scratch
        };
        for (offset_delta, record) in records.enumerate() {
            let offset_delta = i32::try_from(offset_delta).map_err(|_| "too many records in a batch")?;
            let timestamp_ms = wall_ms(record.sent_at_wall_us);
            timestamp_ms_max = timestamp_ms_max.max(timestamp_ms);
            let value_bytes = 8 + record.body.len();
            put_record(
                target,
                offset_delta,
                timestamp_ms - base_timestamp_ms,
                record,
                value_bytes,
            )?;
            info.records += 1;
            info.value_bytes += value_bytes as u64;
        }
    }
    if codec != Codec::None {
        compress(codec, out, scratch)?;
    }
    let batch_bytes = out.len() - start;
    let length =
        i32::try_from(batch_bytes - BATCH_LOG_OVERHEAD_BYTES).map_err(|_| "record batch too large")?;
    let records_count = i32::try_from(info.records).map_err(|_| "too many records")?;
    let batch = &mut out[start..];
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    batch[23..27].copy_from_slice(&(records_count - 1).to_be_bytes());
    batch[35..43].copy_from_slice(&timestamp_ms_max.to_be_bytes());
    batch[57..61].copy_from_slice(&records_count.to_be_bytes());
    let crc = crc32c::crc32c(&batch[BATCH_CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    info.batch_bytes = batch_bytes;
    Ok(info)
}

fn wall_ms(wall_us: u64) -> i64 {
    i64::try_from(wall_us / 1_000).unwrap_or(i64::MAX)
}

fn put_record(
    out: &mut BytesMut,
    offset_delta: i32,
    timestamp_delta_ms: i64,
    record: RecordValue<'_>,
    value_bytes: usize,
) -> Result<(), String> {
    let value_length = i32::try_from(value_bytes).map_err(|_| "value too large")?;
    let body_bytes = 1 // attributes
        + varint_len(timestamp_delta_ms)
        + varint_len(i64::from(offset_delta))
        + varint_len(-1) // key length: null
        + varint_len(i64::from(value_length))
        + value_bytes
        + varint_len(0); // header count
    out.reserve(body_bytes + 5);
    put_varint(out, body_bytes as i64);
    out.put_u8(0);
    put_varint(out, timestamp_delta_ms);
    put_varint(out, i64::from(offset_delta));
    put_varint(out, -1);
    put_varint(out, i64::from(value_length));
    out.put_u64(record.sent_at_wall_us);
    out.put_slice(record.body);
    put_varint(out, 0);
    Ok(())
}

/// Zigzag varint (Kafka's varint and varlong share this encoding).
pub fn put_varint(out: &mut BytesMut, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.put_u8((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.put_u8(zigzag as u8);
}

fn varint_len(value: i64) -> usize {
    let zigzag = ((value << 1) ^ (value >> 63)) as u64;
    (64 - zigzag.max(1).leading_zeros() as usize).div_ceil(7)
}

fn compress(codec: Codec, out: &mut BytesMut, records: &BytesMut) -> Result<(), String> {
    let copy = |buf: &mut BytesMut| {
        buf.put_slice(records);
        Ok(())
    };
    match codec {
        Codec::None => Ok(()),
        Codec::Gzip => <Gzip as Compressor<BytesMut>>::compress(out, copy),
        Codec::Snappy => <Snappy as Compressor<BytesMut>>::compress(out, copy),
        Codec::Lz4 => <Lz4 as Compressor<BytesMut>>::compress(out, copy),
        Codec::Zstd => <Zstd as Compressor<BytesMut>>::compress(out, copy),
    }
    .map_err(|e| format!("compressing a batch with {codec:?}: {e:#}"))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::records::{Compression, RecordBatchDecoder};

    use super::*;

    fn bodies() -> Vec<Vec<u8>> {
        (0..50u8).map(|i| vec![i; usize::from(i) * 7]).collect()
    }

    #[test]
    fn varint_lengths_match_encoding() {
        for value in [
            0i64,
            1,
            -1,
            63,
            64,
            -64,
            -65,
            300,
            i64::from(i32::MAX),
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = BytesMut::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value}");
        }
    }

    /// Round trip through kafka-protocol's own decoder, for every codec.
    #[test]
    fn batches_decode_with_kafka_protocol_for_every_codec() {
        let bodies = bodies();
        for (codec, expected) in [
            (Codec::None, Compression::None),
            (Codec::Gzip, Compression::Gzip),
            (Codec::Snappy, Compression::Snappy),
            (Codec::Lz4, Compression::Lz4),
            (Codec::Zstd, Compression::Zstd),
        ] {
            let mut out = BytesMut::new();
            let mut scratch = BytesMut::new();
            let base_us = 1_795_262_400_000_000u64;
            let records = bodies.iter().enumerate().map(|(i, body)| RecordValue {
                sent_at_wall_us: base_us + i as u64 * 1500,
                body,
            });
            let info = encode_batch(&mut out, codec, records, &mut scratch).expect("encode");
            assert_eq!(info.records, 50);
            assert_eq!(info.batch_bytes, out.len());
            let mut wire = Bytes::from(out.to_vec());
            let set = RecordBatchDecoder::decode(&mut wire).expect("kafka-protocol decodes the batch");
            assert_eq!(set.compression, expected);
            assert_eq!(set.records.len(), 50);
            for (i, record) in set.records.iter().enumerate() {
                let value = record.value.as_ref().expect("value");
                let sent = base_us + i as u64 * 1500;
                assert_eq!(&value[..8], &sent.to_be_bytes());
                assert_eq!(&value[8..], &bodies[i][..]);
                assert_eq!(record.offset, i as i64);
                assert_eq!(record.timestamp, (sent / 1000) as i64);
                assert!(record.key.is_none() && record.headers.is_empty());
            }
        }
    }

    #[test]
    fn empty_batches_are_refused() {
        let mut out = BytesMut::new();
        assert!(encode_batch(&mut out, Codec::None, std::iter::empty(), &mut BytesMut::new()).is_err());
    }
}
