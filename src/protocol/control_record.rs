//! Transaction markers: the control batches that end a transaction in each
//! partition it wrote to (COMMIT or ABORT), in Kafka's format.
//!
//! A marker is a v2 batch with the transactional and control attributes,
//! the producer's id and epoch, base sequence -1, and one record whose key
//! is (version i16 = 0, type i16: 0 ABORT, 1 COMMIT) and whose value is
//! (version i16 = 0, coordinator epoch i32). Consumers never deliver control
//! records to the application; read_committed consumers use them with the
//! fetch's aborted transactions to skip aborted data.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

use super::record_batch::{uncompressed_records, BatchHeader};

const CONTROL_TYPE_ABORT: i16 = 0;
const CONTROL_TYPE_COMMIT: i16 = 1;

/// What a transaction marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// The marker batch for `producer_id` at `epoch` (offsets from 0: the log
/// assigns the real one).
pub fn encode_marker(producer_id: i64, epoch: i16, marker: Marker, now_ms: i64) -> Bytes {
    let control_type = if marker.commit {
        CONTROL_TYPE_COMMIT
    } else {
        CONTROL_TYPE_ABORT
    };
    let mut key = BytesMut::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&control_type.to_be_bytes());
    let mut value = BytesMut::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id,
        producer_epoch: epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms,
        key: Some(key.freeze()),
        value: Some(value.freeze()),
        headers: Default::default(),
    };
    let mut buffer = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buffer,
        std::slice::from_ref(&record),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encoding one uncompressed record into memory cannot fail");
    buffer.freeze()
}

/// The marker in a control batch; None when `batch` is not a well-formed
/// transaction marker (other control types are ignored, as Kafka does).
pub fn parse_marker(batch: &[u8], header: &BatchHeader) -> Option<Marker> {
    if !header.is_control() {
        return None;
    }
    let record = uncompressed_records(batch)?.next()?.ok()?;
    let key = record.key?;
    let value = record.value?;
    if key.len() < 4 || value.len() < 6 {
        return None;
    }
    let control_type = i16::from_be_bytes([key[2], key[3]]);
    let coordinator_epoch = i32::from_be_bytes([value[2], value[3], value[4], value[5]]);
    match control_type {
        CONTROL_TYPE_ABORT | CONTROL_TYPE_COMMIT => Some(Marker {
            commit: control_type == CONTROL_TYPE_COMMIT,
            coordinator_epoch,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::record_batch::{verify_crc, BatchHeader};

    #[test]
    fn markers_round_trip_with_kafka_attributes() {
        for commit in [true, false] {
            let marker = Marker {
                commit,
                coordinator_epoch: 7,
            };
            let batch = encode_marker(42, 3, marker, 1_700_000_000_000);
            let header = BatchHeader::parse(&batch).unwrap();
            verify_crc(&batch).unwrap();
            assert!(header.is_control() && header.is_transactional());
            assert_eq!((header.producer_id, header.producer_epoch), (42, 3));
            assert_eq!(
                (
                    header.base_sequence,
                    header.records_count,
                    header.last_offset_delta
                ),
                (-1, 1, 0)
            );
            assert_eq!(parse_marker(&batch, &header), Some(marker));
        }
    }
}
