//! Decompressing the records of a compressed v2 batch, bounded in size, and
//! compressing them again (the log cleaner rewrites batches with their own
//! codec).
//!
//! weir stores and serves batches exactly as produced and never needs their
//! records on the data path. A few cold paths do: a ListOffsets lookup by
//! timestamp must name the exact record, as Kafka does, and that record may
//! sit inside a compressed batch. Those paths call [`decompress`] on one
//! batch at a time, on the owning shard.
//!
//! The input comes from a producer, so the output is bounded: a batch of at
//! most `message_max_bytes` can claim (snappy) or expand to (gzip, zstd) any
//! size, and decompression stops with [`DecompressError::TooLarge`] past
//! `bytes_max` instead of allocating it. Codecs as Kafka frames them:
//! gzip, snappy (xerial's framed stream, or raw snappy), LZ4 frame, zstd.
//! Pure: no I/O, no shared state.

use std::io::Read;

use super::record_batch::{
    COMPRESSION_GZIP, COMPRESSION_LZ4, COMPRESSION_NONE, COMPRESSION_SNAPPY, COMPRESSION_ZSTD,
};

/// The xerial snappy stream header: magic, then version and compatible
/// version (i32 each).
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_BYTES: usize = 16;

#[derive(Debug, PartialEq, Eq)]
pub enum DecompressError {
    /// The records would be larger than the caller's bound.
    TooLarge { bytes_max: usize },
    /// Not a valid stream of the batch's codec.
    Corrupt { codec: u8, reason: String },
    /// A codec number Kafka does not define.
    UnknownCodec(u8),
}

/// The uncompressed records section of a batch compressed with `codec`
/// (the batch's attributes & 0x07), at most `bytes_max` bytes.
pub fn decompress(codec: u8, compressed: &[u8], bytes_max: usize) -> Result<Vec<u8>, DecompressError> {
    let corrupt = |reason: std::io::Error| DecompressError::Corrupt {
        codec,
        reason: reason.to_string(),
    };
    match codec {
        COMPRESSION_NONE => bounded_copy(compressed, bytes_max),
        COMPRESSION_GZIP => {
            read_bounded(flate2::read::GzDecoder::new(compressed), bytes_max).map_err(|e| e.or(corrupt))
        }
        COMPRESSION_SNAPPY => snappy(compressed, bytes_max),
        COMPRESSION_LZ4 => {
            let decoder = lz4::Decoder::new(compressed).map_err(corrupt)?;
            read_bounded(decoder, bytes_max).map_err(|e| e.or(corrupt))
        }
        COMPRESSION_ZSTD => {
            let decoder = zstd::stream::read::Decoder::new(compressed).map_err(corrupt)?;
            read_bounded(decoder, bytes_max).map_err(|e| e.or(corrupt))
        }
        other => Err(DecompressError::UnknownCodec(other)),
    }
}

/// Compresses a records section with `codec`, framed as Kafka's Java client
/// frames it (gzip; snappy in xerial's stream; LZ4 frame; zstd), so every
/// client reads it back. Err: an unknown codec or an encoder failure.
pub fn compress(codec: u8, records: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let failed = |e: std::io::Error| format!("compressing with codec {codec}: {e}");
    match codec {
        COMPRESSION_NONE => Ok(records.to_vec()),
        COMPRESSION_GZIP => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(records).map_err(failed)?;
            encoder.finish().map_err(failed)
        }
        COMPRESSION_SNAPPY => {
            let mut out = XERIAL_MAGIC.to_vec();
            // Version 1, compatible with version 1, as xerial writes.
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut encoder = snap::raw::Encoder::new();
            for block in records.chunks(XERIAL_BLOCK_BYTES) {
                let compressed = encoder
                    .compress_vec(block)
                    .map_err(|e| format!("compressing with snappy: {e}"))?;
                let length =
                    i32::try_from(compressed.len()).map_err(|_| "snappy block too large".to_string())?;
                out.extend_from_slice(&length.to_be_bytes());
                out.extend_from_slice(&compressed);
            }
            Ok(out)
        }
        COMPRESSION_LZ4 => {
            let mut encoder = lz4::EncoderBuilder::new().build(Vec::new()).map_err(failed)?;
            encoder.write_all(records).map_err(failed)?;
            let (out, result) = encoder.finish();
            result.map_err(failed)?;
            Ok(out)
        }
        COMPRESSION_ZSTD => zstd::stream::encode_all(records, 0).map_err(failed),
        other => Err(format!("unknown compression codec {other}")),
    }
}

/// Uncompressed bytes per block of xerial's snappy stream (its default).
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;

/// Either a decompression error already classified, or an I/O error from the
/// codec's reader that the caller turns into `Corrupt`.
enum ReadError {
    TooLarge { bytes_max: usize },
    Io(std::io::Error),
}

impl ReadError {
    fn or(self, corrupt: impl FnOnce(std::io::Error) -> DecompressError) -> DecompressError {
        match self {
            ReadError::TooLarge { bytes_max } => DecompressError::TooLarge { bytes_max },
            ReadError::Io(error) => corrupt(error),
        }
    }
}

fn read_bounded(reader: impl Read, bytes_max: usize) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    let limit = u64::try_from(bytes_max).unwrap_or(u64::MAX).saturating_add(1);
    reader.take(limit).read_to_end(&mut out).map_err(ReadError::Io)?;
    if out.len() > bytes_max {
        return Err(ReadError::TooLarge { bytes_max });
    }
    Ok(out)
}

fn bounded_copy(bytes: &[u8], bytes_max: usize) -> Result<Vec<u8>, DecompressError> {
    if bytes.len() > bytes_max {
        return Err(DecompressError::TooLarge { bytes_max });
    }
    Ok(bytes.to_vec())
}

/// Kafka's Java producer writes xerial's framed stream (header, then blocks
/// of `i32 length` + raw snappy); other clients may write raw snappy, which
/// Kafka also reads. Each block's claimed length is checked against the
/// bound before anything is allocated for it.
fn snappy(compressed: &[u8], bytes_max: usize) -> Result<Vec<u8>, DecompressError> {
    let corrupt = |reason: String| DecompressError::Corrupt {
        codec: COMPRESSION_SNAPPY,
        reason,
    };
    let mut out = Vec::new();
    let append_block = |block: &[u8], out: &mut Vec<u8>| -> Result<(), DecompressError> {
        let length = snap::raw::decompress_len(block).map_err(|e| corrupt(e.to_string()))?;
        if out.len().saturating_add(length) > bytes_max {
            return Err(DecompressError::TooLarge { bytes_max });
        }
        let start = out.len();
        out.resize(start + length, 0);
        snap::raw::Decoder::new()
            .decompress(block, &mut out[start..])
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(())
    };
    if !compressed.starts_with(&XERIAL_MAGIC) {
        append_block(compressed, &mut out)?;
        return Ok(out);
    }
    let mut rest = compressed
        .get(XERIAL_HEADER_BYTES..)
        .ok_or_else(|| corrupt("truncated xerial header".into()))?;
    while !rest.is_empty() {
        let (length, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("truncated block length".into()))?;
        let length = usize::try_from(i32::from_be_bytes(*length))
            .map_err(|_| corrupt("negative block length".into()))?;
        let block = tail
            .get(..length)
            .ok_or_else(|| corrupt("truncated block".into()))?;
        append_block(block, &mut out)?;
        rest = &tail[length..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &[u8] = b"weir weir weir weir weir weir weir weir weir weir weir weir";

    #[test]
    fn every_codec_round_trips() {
        for codec in [
            COMPRESSION_NONE,
            COMPRESSION_GZIP,
            COMPRESSION_SNAPPY,
            COMPRESSION_LZ4,
            COMPRESSION_ZSTD,
        ] {
            let compressed = compress(codec, TEXT).unwrap();
            assert_eq!(
                decompress(codec, &compressed, 1024).unwrap(),
                TEXT,
                "codec {codec}"
            );
        }
        // Several xerial blocks, and raw snappy as some clients write it.
        let long = TEXT.repeat(2000);
        let xerial = compress(COMPRESSION_SNAPPY, &long).unwrap();
        assert!(xerial.starts_with(&XERIAL_MAGIC));
        assert_eq!(decompress(COMPRESSION_SNAPPY, &xerial, long.len()).unwrap(), long);
        let raw_snappy = snap::raw::Encoder::new().compress_vec(TEXT).unwrap();
        assert_eq!(decompress(COMPRESSION_SNAPPY, &raw_snappy, 1024).unwrap(), TEXT);
        assert!(compress(6, TEXT).is_err());
    }

    #[test]
    fn output_past_the_bound_is_refused_not_allocated() {
        let big = vec![0u8; 1 << 20];
        let zstd = zstd::encode_all(&big[..], 3).unwrap();
        assert!(zstd.len() < 1024, "a bomb: {} bytes", zstd.len());
        assert_eq!(
            decompress(COMPRESSION_ZSTD, &zstd, 4096),
            Err(DecompressError::TooLarge { bytes_max: 4096 })
        );
        // A raw snappy stream whose header claims 2 GiB is refused up front.
        let claims_huge = [0x80, 0x80, 0x80, 0x80, 0x08, 0x00];
        assert_eq!(
            decompress(COMPRESSION_SNAPPY, &claims_huge, 4096),
            Err(DecompressError::TooLarge { bytes_max: 4096 })
        );
    }

    #[test]
    fn garbage_is_corrupt_never_a_panic() {
        for codec in [
            COMPRESSION_GZIP,
            COMPRESSION_SNAPPY,
            COMPRESSION_LZ4,
            COMPRESSION_ZSTD,
        ] {
            assert!(
                matches!(
                    decompress(codec, b"\x00\x01garbage", 4096),
                    Err(DecompressError::Corrupt { .. } | DecompressError::TooLarge { .. })
                ),
                "codec {codec}"
            );
        }
        assert_eq!(decompress(7, b"x", 10), Err(DecompressError::UnknownCodec(7)));
    }
}
