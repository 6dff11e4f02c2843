//! Fetch response encoding (versions 4-12) that never copies record bytes.
//!
//! kafka-protocol encodes `records` as one `Bytes` it copies into the
//! output. Here the response is a list of parts: small encoded runs of
//! header fields, and between them the record batches exactly as the log or
//! the tail cache holds them. The connection writes the parts with one
//! vectored send. The byte layout is checked against kafka-protocol's own
//! encoder in the tests, for every version.

use bytes::{BufMut, Bytes, BytesMut};

use super::Part;
use crate::log::region::FileRegion;

/// One partition of a fetch response.
#[derive(Debug, Clone, Default)]
pub struct PartitionOut {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// (producer id, first offset) of the aborted transactions a
    /// read_committed consumer must skip; None encodes null (what Kafka
    /// sends for read_uncommitted and for partitions in error).
    pub aborted_transactions: Option<Vec<(i64, i64)>>,
    pub preferred_read_replica: i32,
    /// Whole record batches, in offset order (empty: no records).
    pub records: Vec<Bytes>,
    /// Or: whole batches as a region of a segment file (cold reads).
    pub region: Option<FileRegion>,
}

#[derive(Debug, Clone, Default)]
pub struct TopicOut {
    pub name: String,
    pub partitions: Vec<PartitionOut>,
}

#[derive(Debug, Clone, Default)]
pub struct FetchResponseOut {
    pub throttle_time_ms: i32,
    pub error_code: i16,
    pub session_id: i32,
    pub topics: Vec<TopicOut>,
}

/// First flexible (compact, tagged) version of Fetch.
const FLEXIBLE_VERSION_MIN: i16 = 12;

/// Encodes a whole response frame (size prefix included) as parts.
pub fn encode(version: i16, correlation_id: i32, response: &FetchResponseOut) -> Vec<Part> {
    assert!(
        (4..=12).contains(&version),
        "Fetch v{version} is not encoded here"
    );
    let flexible = version >= FLEXIBLE_VERSION_MIN;
    let mut encoder = PartsEncoder::default();
    let head = &mut encoder.current;
    head.put_i32(correlation_id);
    if flexible {
        head.put_u8(0); // response header v1: no tagged fields
    }
    head.put_i32(response.throttle_time_ms);
    if version >= 7 {
        head.put_i16(response.error_code);
        head.put_i32(response.session_id);
    }
    encoder.array_length(response.topics.len(), flexible);
    for topic in &response.topics {
        encoder.string(&topic.name, flexible);
        encoder.array_length(topic.partitions.len(), flexible);
        for partition in &topic.partitions {
            let head = &mut encoder.current;
            head.put_i32(partition.partition_index);
            head.put_i16(partition.error_code);
            head.put_i64(partition.high_watermark);
            head.put_i64(partition.last_stable_offset);
            if version >= 5 {
                head.put_i64(partition.log_start_offset);
            }
            match &partition.aborted_transactions {
                None => encoder.null_array(flexible),
                Some(aborted) => {
                    encoder.array_length(aborted.len(), flexible);
                    for &(producer_id, first_offset) in aborted {
                        encoder.current.put_i64(producer_id);
                        encoder.current.put_i64(first_offset);
                        if flexible {
                            encoder.current.put_u8(0);
                        }
                    }
                }
            }
            if version >= 11 {
                encoder.current.put_i32(partition.preferred_read_replica);
            }
            let records_bytes: usize = partition.records.iter().map(Bytes::len).sum::<usize>()
                + partition.region.as_ref().map_or(0, |region| region.bytes);
            if flexible {
                put_unsigned_varint(&mut encoder.current, records_bytes as u64 + 1);
            } else {
                encoder
                    .current
                    .put_i32(i32::try_from(records_bytes).unwrap_or(i32::MAX));
            }
            for batch in &partition.records {
                encoder.external(Part::Bytes(batch.clone()));
            }
            if let Some(region) = &partition.region {
                encoder.external(Part::File(region.clone()));
            }
            if flexible {
                encoder.current.put_u8(0); // partition tagged fields
            }
        }
        if flexible {
            encoder.current.put_u8(0); // topic tagged fields
        }
    }
    if flexible {
        encoder.current.put_u8(0); // response tagged fields
    }
    encoder.finish()
}

#[derive(Default)]
struct PartsEncoder {
    parts: Vec<Part>,
    current: BytesMut,
}

impl PartsEncoder {
    fn array_length(&mut self, length: usize, flexible: bool) {
        if flexible {
            put_unsigned_varint(&mut self.current, length as u64 + 1);
        } else {
            self.current.put_i32(i32::try_from(length).unwrap_or(i32::MAX));
        }
    }

    fn null_array(&mut self, flexible: bool) {
        if flexible {
            self.current.put_u8(0);
        } else {
            self.current.put_i32(-1);
        }
    }

    fn string(&mut self, text: &str, flexible: bool) {
        if flexible {
            put_unsigned_varint(&mut self.current, text.len() as u64 + 1);
        } else {
            self.current
                .put_i16(i16::try_from(text.len()).unwrap_or(i16::MAX));
        }
        self.current.put_slice(text.as_bytes());
    }

    /// Appends bytes that are not copied: closes the current run first.
    fn external(&mut self, part: Part) {
        if part.is_empty() {
            return;
        }
        if !self.current.is_empty() {
            self.parts.push(Part::Bytes(self.current.split().freeze()));
        }
        self.parts.push(part);
    }

    /// The parts, preceded by the frame's size prefix.
    fn finish(mut self) -> Vec<Part> {
        if !self.current.is_empty() {
            self.parts.push(Part::Bytes(self.current.split().freeze()));
        }
        let size: usize = self.parts.iter().map(Part::len).sum();
        let mut frame = Vec::with_capacity(self.parts.len() + 1);
        let prefix = i32::try_from(size).unwrap_or(i32::MAX).to_be_bytes();
        frame.push(Part::Bytes(Bytes::copy_from_slice(&prefix)));
        frame.extend(self.parts);
        frame
    }
}

fn put_unsigned_varint(buffer: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        buffer.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buffer.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::{
        messages::{
            fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData},
            ApiKey, BrokerId, FetchResponse, ProducerId, ResponseKind, TopicName,
        },
        protocol::StrBytes,
    };

    fn sample() -> FetchResponseOut {
        FetchResponseOut {
            throttle_time_ms: 3,
            error_code: 0,
            session_id: 77,
            topics: vec![
                TopicOut {
                    name: "orders".into(),
                    partitions: vec![
                        PartitionOut {
                            partition_index: 0,
                            high_watermark: 10,
                            last_stable_offset: 10,
                            log_start_offset: 0,
                            aborted_transactions: Some(vec![(5, 2)]),
                            preferred_read_replica: -1,
                            records: vec![Bytes::from_static(b"batch-one"), Bytes::from_static(b"batch-2")],
                            ..Default::default()
                        },
                        PartitionOut {
                            partition_index: 3,
                            error_code: 1,
                            high_watermark: -1,
                            last_stable_offset: -1,
                            log_start_offset: -1,
                            aborted_transactions: None,
                            preferred_read_replica: -1,
                            records: vec![],
                            region: None,
                        },
                    ],
                },
                TopicOut {
                    name: "x".into(),
                    partitions: vec![],
                },
            ],
        }
    }

    /// The same response through kafka-protocol, records concatenated.
    fn reference(version: i16, correlation_id: i32, response: &FetchResponseOut) -> Bytes {
        let mut reference = FetchResponse::default();
        reference.throttle_time_ms = response.throttle_time_ms;
        reference.error_code = response.error_code;
        reference.session_id = response.session_id;
        for topic in &response.topics {
            let mut topic_response = FetchableTopicResponse::default();
            topic_response.topic = TopicName(StrBytes::from_string(topic.name.clone()));
            for partition in &topic.partitions {
                let mut data = PartitionData::default();
                data.partition_index = partition.partition_index;
                data.error_code = partition.error_code;
                data.high_watermark = partition.high_watermark;
                data.last_stable_offset = partition.last_stable_offset;
                data.log_start_offset = partition.log_start_offset;
                data.aborted_transactions = partition.aborted_transactions.as_ref().map(|list| {
                    list.iter()
                        .map(|&(producer_id, first_offset)| {
                            let mut aborted = AbortedTransaction::default();
                            aborted.producer_id = ProducerId(producer_id);
                            aborted.first_offset = first_offset;
                            aborted
                        })
                        .collect()
                });
                data.preferred_read_replica = BrokerId(partition.preferred_read_replica);
                data.records = Some(partition.records.concat().into());
                topic_response.partitions.push(data);
            }
            reference.responses.push(topic_response);
        }
        crate::protocol::encode_response(
            ApiKey::Fetch,
            version,
            correlation_id,
            &ResponseKind::Fetch(reference),
        )
        .unwrap()
    }

    #[test]
    fn parts_match_kafka_protocol_byte_for_byte_in_every_version() {
        let response = sample();
        for version in 4..=12 {
            // Fields a version does not carry must hold their defaults, or
            // kafka-protocol refuses to encode them.
            let mut response = response.clone();
            if version < 7 {
                response.session_id = 0;
            }
            if version < 5 {
                for partition in response.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                    partition.log_start_offset = -1;
                }
            }
            let parts = encode(version, 42, &response);
            let joined: Vec<u8> = memory_bytes(&parts).concat();
            assert_eq!(
                joined,
                reference(version, 42, &response).to_vec(),
                "Fetch v{version}"
            );
        }
    }

    #[test]
    fn record_batches_are_not_copied() {
        let batch = Bytes::from(vec![9u8; 4096]);
        let mut response = sample();
        response.topics[0].partitions[0].records = vec![batch.clone()];
        let parts = memory_bytes(&encode(12, 1, &response));
        assert!(parts
            .iter()
            .any(|part| part.as_ptr() == batch.as_ptr() && part.len() == batch.len()));
    }

    fn memory_bytes(parts: &[Part]) -> Vec<Bytes> {
        parts
            .iter()
            .map(|part| match part {
                Part::Bytes(bytes) => bytes.clone(),
                Part::File(_) => panic!("no file regions in these responses"),
            })
            .collect()
    }
}
