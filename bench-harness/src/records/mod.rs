//! Record batches (format v2, the only one Produce v3+ and Fetch v4+ carry).
//!
//! Producers encode their own batches ([`encode`]): one pass that writes the
//! header, the records straight from the payload pool, then patches length,
//! counts and the CRC32C, instead of building `Record` structs per message.
//! Consumers walk what they fetch ([`decode`]): every batch's CRC32C is
//! checked and every record is parsed and counted, so a broker that serves
//! torn, duplicated or reordered data is caught, not just timed.
//!
//! Compression goes through kafka-protocol's codecs in both directions, so
//! weir-bench frames compressed data exactly as that crate (and the broker's
//! tests) do.

pub mod decode;
pub mod encode;

/// Bytes of a v2 batch header: baseOffset(8) length(4) epoch(4) magic(1)
/// crc(4) attributes(2) lastOffsetDelta(4) firstTimestamp(8) maxTimestamp(8)
/// producerId(8) producerEpoch(2) baseSequence(4) recordCount(4).
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before the `length` field ends: baseOffset + length.
pub const BATCH_LOG_OVERHEAD_BYTES: usize = 12;
/// Where the CRC-covered part of a batch starts (the attributes).
pub const BATCH_CRC_START: usize = 21;
pub const MAGIC_V2: u8 = 2;
/// attributes bits 0-2: compression codec.
pub const ATTRIBUTE_CODEC_MASK: i16 = 0x07;
/// attributes bit 5: control batch (transaction markers).
pub const ATTRIBUTE_CONTROL: i16 = 0x20;
