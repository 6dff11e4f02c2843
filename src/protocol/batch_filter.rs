//! Rewriting one v2 record batch with some of its records removed, for the
//! log cleaner (compaction). Pure: no I/O, no shard state.
//!
//! A rewritten batch keeps its header's identity: base offset, last offset
//! delta (so its producer's sequence and the offsets of what follows are
//! untouched), producer id, epoch, base sequence, partition leader epoch and
//! codec (the records are compressed again with it). Each retained record
//! keeps its offset and timestamp. Length, record count, CRC and (for
//! CreateTime) the largest timestamp are recomputed.
//!
//! Delete horizon (KIP-534): when the cleaner first keeps a tombstone or a
//! transaction marker it may only delete later, it stamps the batch with the
//! time after which that is allowed: attribute bit 6 set and the horizon in
//! `baseTimestamp`, every record's timestamp delta rebased so its timestamp
//! is unchanged. This is Kafka's own format, so Kafka's tools read it.

use super::{
    compression,
    record_batch::{
        self, BatchHeader, RecordView, ATTRIBUTE_DELETE_HORIZON, COMPRESSION_NONE,
        DECOMPRESSED_RECORDS_BYTES_MAX,
    },
};

/// What became of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filtered {
    /// Every record kept and no horizon to set: write the original bytes.
    Unchanged,
    /// No record kept: the batch goes.
    Empty,
    /// The new batch.
    Rewritten(Vec<u8>),
}

/// Keeps the records of `batch` for which `keep(offset, record)` is true.
/// `delete_horizon_ms`: the horizon to stamp on a batch without one that
/// keeps something only deletable later: a tombstone, or a control record
/// (ignored otherwise, as Kafka does).
pub fn filter_batch(
    batch: &[u8],
    header: &BatchHeader,
    mut keep: impl FnMut(i64, &RecordView) -> bool,
    delete_horizon_ms: Option<i64>,
) -> Result<Filtered, String> {
    let section = record_batch::records_section(batch, header, DECOMPRESSED_RECORDS_BYTES_MAX)?;
    let mut kept = Vec::new();
    let mut total = 0usize;
    for record in record_batch::records_in(&section, header) {
        let record = record.map_err(|e| e.to_string())?;
        total += 1;
        let offset = header.base_offset.wrapping_add(i64::from(record.offset_delta));
        if keep(offset, &record) {
            kept.push(record);
        }
    }
    rebuild_filtered(batch, header, &kept, total, delete_horizon_ms)
}

/// The second half of [`filter_batch`], for a caller that went through the
/// records itself (the cleaner, which yields the shard while it does):
/// `kept` are the records of `batch` to keep, in order, of `total`.
pub fn rebuild_filtered(
    batch: &[u8],
    header: &BatchHeader,
    kept: &[RecordView],
    total: usize,
    delete_horizon_ms: Option<i64>,
) -> Result<Filtered, String> {
    let deletable_later = header.is_control() || kept.iter().any(|record| record.value.is_none());
    let stamp = delete_horizon_ms.filter(|_| deletable_later && !header.has_delete_horizon());
    if kept.is_empty() {
        return Ok(Filtered::Empty);
    }
    if kept.len() == total && stamp.is_none() {
        return Ok(Filtered::Unchanged);
    }
    let (attributes, base_timestamp) = match stamp {
        Some(horizon) => (header.attributes | ATTRIBUTE_DELETE_HORIZON, horizon),
        None => (header.attributes, header.base_timestamp),
    };
    let mut records = Vec::with_capacity(batch.len());
    let mut max_timestamp = i64::MIN;
    for record in kept {
        let timestamp = header.base_timestamp.wrapping_add(record.timestamp_delta);
        max_timestamp = max_timestamp.max(timestamp);
        record.encode_with_timestamp_delta(timestamp.wrapping_sub(base_timestamp), &mut records);
    }
    if header.is_log_append_time() {
        max_timestamp = header.max_timestamp;
    }
    let codec = header.compression_codec();
    let records = if codec == COMPRESSION_NONE {
        records
    } else {
        compression::compress(codec, &records)?
    };
    let count = i32::try_from(kept.len()).expect("fewer records than the original batch");
    Ok(Filtered::Rewritten(record_batch::rebuild_batch(
        batch,
        attributes,
        base_timestamp,
        max_timestamp,
        count,
        &records,
    )))
}

/// The delete horizon a batch carries (KIP-534), if any.
pub fn delete_horizon(header: &BatchHeader) -> Option<i64> {
    header.has_delete_horizon().then_some(header.base_timestamp)
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use indexmap::IndexMap;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    use super::*;

    const BASE_MS: i64 = 1_700_000_000_000;

    fn batch(compression: Compression, values: &[Option<&str>]) -> Bytes {
        let records: Vec<Record> = values
            .iter()
            .enumerate()
            .map(|(index, value)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: 7,
                producer_epoch: 1,
                timestamp_type: TimestampType::Creation,
                offset: 100 + index as i64,
                sequence: 40 + index as i32,
                timestamp: BASE_MS + 10 * index as i64,
                key: Some(Bytes::from(format!("k{index}"))),
                value: value.map(|v| Bytes::from(v.to_string())),
                headers: IndexMap::from([("h".into(), Some(Bytes::from_static(b"v")))]),
            })
            .collect();
        let mut buffer = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buffer, &records, &options).expect("encode");
        buffer.freeze()
    }

    fn decode(bytes: Vec<u8>) -> Vec<Record> {
        let mut buffer = Bytes::from(bytes);
        RecordBatchDecoder::decode(&mut buffer)
            .expect("a valid batch, checked by Kafka's decoder")
            .records
    }

    #[test]
    fn kept_records_keep_offsets_timestamps_headers_and_the_batch_identity() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let original = batch(compression, &[Some("a"), Some("b"), None, Some("d")]);
            let header = BatchHeader::parse(&original).expect("header");
            let filtered = filter_batch(&original, &header, |offset, _| offset != 101, None).expect("filter");
            let Filtered::Rewritten(bytes) = filtered else {
                panic!("{compression:?}: expected a rewrite, got {filtered:?}");
            };
            record_batch::verify_crc(&bytes).expect("CRC");
            let new_header = BatchHeader::parse(&bytes).expect("header");
            assert_eq!(new_header.compression_codec(), header.compression_codec());
            assert_eq!(
                (
                    new_header.base_offset,
                    new_header.last_offset_delta,
                    new_header.base_sequence
                ),
                (header.base_offset, header.last_offset_delta, header.base_sequence)
            );
            let records = decode(bytes);
            let seen: Vec<(i64, i64, Option<Bytes>)> = records
                .iter()
                .map(|r| (r.offset, r.timestamp, r.value.clone()))
                .collect();
            assert_eq!(
                seen,
                vec![
                    (100, BASE_MS, Some(Bytes::from("a"))),
                    (102, BASE_MS + 20, None),
                    (103, BASE_MS + 30, Some(Bytes::from("d"))),
                ],
                "{compression:?}"
            );
            assert!(records.iter().all(|r| r.headers.len() == 1));
        }
    }

    #[test]
    fn all_kept_is_unchanged_none_kept_is_empty() {
        let original = batch(Compression::None, &[Some("a"), Some("b")]);
        let header = BatchHeader::parse(&original).expect("header");
        assert_eq!(
            filter_batch(&original, &header, |_, _| true, None),
            Ok(Filtered::Unchanged)
        );
        // No tombstone kept: no horizon to stamp.
        assert_eq!(
            filter_batch(&original, &header, |_, _| true, Some(5)),
            Ok(Filtered::Unchanged)
        );
        assert_eq!(
            filter_batch(&original, &header, |_, _| false, Some(5)),
            Ok(Filtered::Empty)
        );
    }

    #[test]
    fn a_delete_horizon_is_stamped_once_with_timestamps_unchanged() {
        let original = batch(Compression::Lz4, &[Some("a"), None]);
        let header = BatchHeader::parse(&original).expect("header");
        let horizon = BASE_MS + 86_400_000;
        let Ok(Filtered::Rewritten(bytes)) = filter_batch(&original, &header, |_, _| true, Some(horizon))
        else {
            panic!("a horizon rewrites the batch");
        };
        let stamped = BatchHeader::parse(&bytes).expect("header");
        assert_eq!(delete_horizon(&stamped), Some(horizon));
        assert_eq!(stamped.max_timestamp, BASE_MS + 10);
        let records = decode(bytes.clone());
        assert_eq!(
            records.iter().map(|r| r.timestamp).collect::<Vec<_>>(),
            vec![BASE_MS, BASE_MS + 10]
        );
        // Already stamped: a later pass keeps the first horizon.
        assert_eq!(
            filter_batch(&bytes, &stamped, |_, _| true, Some(horizon + 1)),
            Ok(Filtered::Unchanged)
        );
    }
}
