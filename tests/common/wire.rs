//! Hand-built Kafka frames over a plain `std::net::TcpStream`.
//!
//! Real clients never send a corrupt CRC, a negative frame length or half a
//! request, so the bad-input tests speak the protocol themselves: requests are
//! encoded with `kafka-protocol`, framed with the 4-byte big-endian size Kafka
//! uses, and the tests can then damage any byte they like before sending.
//!
//! Versions are negotiated, not assumed: [`Connection::negotiate`] picks the
//! highest version both the broker (from ApiVersions) and the test accept.
//! Tests stay on non-flexible versions where that is enough, because those
//! are the easiest to corrupt by hand.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::metadata_response::MetadataResponse;
use kafka_protocol::messages::produce_request::{PartitionProduceData, ProduceRequest, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
};

/// Read/write timeout on raw connections: a broker that neither answers nor
/// closes within this is stuck.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the broker may take to close a connection it should drop.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Kafka error codes the tests check.
pub const ERROR_NONE: i16 = 0;
pub const ERROR_OFFSET_OUT_OF_RANGE: i16 = 1;
pub const ERROR_CORRUPT_MESSAGE: i16 = 2;
pub const ERROR_UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const ERROR_UNSUPPORTED_VERSION: i16 = 35;

const CLIENT_ID: &str = "weir-wire-test";

/// One raw TCP connection speaking hand-framed Kafka.
pub struct Connection {
    stream: TcpStream,
    next_correlation_id: i32,
    api_versions: Option<ApiVersionsResponse>,
}

impl Connection {
    pub fn open(addr: SocketAddr) -> Connection {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|error| panic!("connect to {addr}: {error}"));
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("set_read_timeout");
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .expect("set_write_timeout");
        stream.set_nodelay(true).expect("set_nodelay");
        Connection {
            stream,
            next_correlation_id: 1,
            api_versions: None,
        }
    }

    /// Changes how long one read may block (default [`IO_TIMEOUT`]), for
    /// requests the broker may rightly hold longer, such as long-poll fetches.
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("set_read_timeout");
    }

    /// Writes bytes as they are. Errors are returned, not asserted: a broker
    /// that already dropped the connection may reset it under our feet.
    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Half-closes our side: the broker reads end-of-stream.
    pub fn shutdown_write(&mut self) {
        self.stream.shutdown(Shutdown::Write).expect("shutdown(Write)");
    }

    pub fn next_correlation_id(&mut self) -> i32 {
        let id = self.next_correlation_id;
        self.next_correlation_id += 1;
        id
    }

    /// A complete frame (size prefix included) for `body` at `version`.
    pub fn encode_request<R: Request>(&mut self, version: i16, body: &R) -> (i32, Vec<u8>) {
        let correlation_id = self.next_correlation_id();
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let mut payload = BytesMut::new();
        header
            .encode(&mut payload, R::header_version(version))
            .expect("encode request header");
        body.encode(&mut payload, version).expect("encode request body");
        (correlation_id, frame(&payload))
    }

    /// Sends `body` and decodes the response to it.
    pub fn call<R: Request>(&mut self, version: i16, body: &R) -> R::Response {
        let (correlation_id, frame) = self.encode_request(version, body);
        self.write_raw(&frame)
            .unwrap_or_else(|error| panic!("send api key {} v{version}: {error}", R::KEY));
        self.read_response::<R::Response>(correlation_id, version)
    }

    /// Reads one response frame and returns its body after the header,
    /// checking the correlation id.
    pub fn read_response_body(&mut self, correlation_id: i32, header_version: i16) -> Bytes {
        let mut frame = self
            .read_frame()
            .unwrap_or_else(|error| panic!("read response to correlation id {correlation_id}: {error}"));
        let header = ResponseHeader::decode(&mut frame, header_version).expect("decode response header");
        assert_eq!(header.correlation_id, correlation_id, "response correlation id");
        frame
    }

    pub fn read_response<Resp: Decodable + HeaderVersion>(
        &mut self,
        correlation_id: i32,
        version: i16,
    ) -> Resp {
        let mut body = self.read_response_body(correlation_id, Resp::header_version(version));
        let response = Resp::decode(&mut body, version).expect("decode response body");
        assert_eq!(body.remaining(), 0, "response body has trailing bytes");
        response
    }

    /// Reads exactly `buffer.len()` bytes of whatever the broker sends.
    pub fn read_exact(&mut self, buffer: &mut [u8]) -> io::Result<()> {
        self.stream.read_exact(buffer)
    }

    /// One size-prefixed frame, without the size.
    pub fn read_frame(&mut self) -> io::Result<Bytes> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let size = i32::from_be_bytes(size);
        assert!(
            (0..=64 * 1024 * 1024).contains(&size),
            "response frame size {size} is not plausible"
        );
        let mut body = vec![0u8; size as usize];
        self.stream.read_exact(&mut body)?;
        Ok(Bytes::from(body))
    }

    /// Asserts the broker closes this connection within [`CLOSE_TIMEOUT`]
    /// without sending anything: a read returns end-of-stream or a reset.
    pub fn assert_closed_by_broker(&mut self, what: &str) {
        self.stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("set_read_timeout");
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        let mut buffer = [0u8; 4096];
        let mut received = 0usize;
        loop {
            match self.stream.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => received += n,
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                    ) => {}
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    break
                }
                Err(error) => panic!("{what}: unexpected read error {error}"),
            }
            assert!(
                Instant::now() < deadline,
                "{what}: broker kept the connection open for {CLOSE_TIMEOUT:?}"
            );
        }
        assert_eq!(received, 0, "{what}: broker sent {received} bytes before closing");
    }

    /// ApiVersions v3, falling back to the v0 body a broker sends with
    /// UNSUPPORTED_VERSION. Cached per connection.
    pub fn api_versions(&mut self) -> ApiVersionsResponse {
        if let Some(cached) = &self.api_versions {
            return cached.clone();
        }
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("weir-tests"))
            .with_client_software_version(StrBytes::from_static_str("1"));
        let (correlation_id, frame) = self.encode_request(3, &request);
        self.write_raw(&frame).expect("send ApiVersions");
        let body = self.read_response_body(correlation_id, ApiVersionsResponse::header_version(3));
        let error_code = i16::from_be_bytes([body[0], body[1]]);
        let version = if error_code == ERROR_UNSUPPORTED_VERSION {
            0
        } else {
            3
        };
        let mut body = body;
        let response = ApiVersionsResponse::decode(&mut body, version).expect("decode ApiVersions");
        if version == 0 {
            // The broker cannot do v3; ask again at v0.
            let request = ApiVersionsRequest::default();
            let response: ApiVersionsResponse = self.call(0, &request);
            assert_eq!(response.error_code, ERROR_NONE, "ApiVersions v0 error");
            self.api_versions = Some(response.clone());
            return response;
        }
        assert_eq!(response.error_code, ERROR_NONE, "ApiVersions v3 error");
        self.api_versions = Some(response.clone());
        response
    }

    /// A fresh ApiVersions round trip at a version the broker serves: proves
    /// this connection is still open and answered.
    pub fn ping(&mut self) {
        let version = self.negotiate(ApiKey::ApiVersions, 0..=3);
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("weir-tests"))
            .with_client_software_version(StrBytes::from_static_str("1"));
        let response = self.call(version, &request);
        assert_eq!(response.error_code, ERROR_NONE, "ApiVersions v{version} error");
    }

    /// Highest version of `api` in both the broker's range and `wanted`.
    pub fn negotiate(&mut self, api: ApiKey, wanted: std::ops::RangeInclusive<i16>) -> i16 {
        let versions = self.api_versions();
        let entry = versions
            .api_keys
            .iter()
            .find(|entry| entry.api_key == api as i16)
            .unwrap_or_else(|| panic!("broker does not list {api:?} in ApiVersions"));
        let low = entry.min_version.max(*wanted.start());
        let high = entry.max_version.min(*wanted.end());
        assert!(
            low <= high,
            "{api:?}: broker serves v{}..=v{}, test needs one of {wanted:?}",
            entry.min_version,
            entry.max_version
        );
        high
    }

    /// Produce of one partition's `records`, negotiated among the
    /// non-flexible versions 3..=8.
    pub fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        acks: i16,
        records: Bytes,
    ) -> PartitionProduceResponse {
        self.produce_within(3..=8, topic, partition, acks, records)
    }

    /// Like [`Connection::produce`], with the acceptable versions given.
    pub fn produce_within(
        &mut self,
        versions: std::ops::RangeInclusive<i16>,
        topic: &str,
        partition: i32,
        acks: i16,
        records: Bytes,
    ) -> PartitionProduceResponse {
        let version = self.negotiate(ApiKey::Produce, versions);
        let response = self.call(version, &produce_request(topic, partition, acks, records));
        assert_eq!(response.responses.len(), 1, "one topic in produce response");
        let topic_response = &response.responses[0];
        assert_eq!(topic_response.name.0.as_str(), topic);
        assert_eq!(
            topic_response.partition_responses.len(),
            1,
            "one partition in produce response"
        );
        topic_response.partition_responses[0].clone()
    }

    /// ListOffsets for one partition (v1..=5, non-flexible): (error, offset).
    pub fn list_offset(&mut self, topic: &str, partition: i32, timestamp: i64) -> (i16, i64) {
        let version = self.negotiate(ApiKey::ListOffsets, 1..=5);
        let request = ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(timestamp)])]);
        let response = self.call(version, &request);
        assert_eq!(response.topics.len(), 1);
        assert_eq!(response.topics[0].partitions.len(), 1);
        let partition_response = &response.topics[0].partitions[0];
        (partition_response.error_code, partition_response.offset)
    }

    /// Fetch of one partition (v4..=11, non-flexible, read_uncommitted).
    pub fn fetch(&mut self, topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> PartitionData {
        self.fetch_within(4..=11, topic, partition, offset, max_wait_ms)
    }

    /// Like [`Connection::fetch`], with the acceptable versions given.
    pub fn fetch_within(
        &mut self,
        versions: std::ops::RangeInclusive<i16>,
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait_ms: i32,
    ) -> PartitionData {
        let version = self.negotiate(ApiKey::Fetch, versions);
        let request = FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(16 * 1024 * 1024)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(offset)
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(8 * 1024 * 1024)])]);
        let response = self.call(version, &request);
        assert_eq!(response.error_code, ERROR_NONE, "fetch top-level error");
        assert_eq!(response.responses.len(), 1, "one topic in fetch response");
        assert_eq!(
            response.responses[0].partitions.len(),
            1,
            "one partition in fetch response"
        );
        response.responses[0].partitions[0].clone()
    }

    /// Metadata for the named topics (v4..=8: has allow_auto_topic_creation).
    pub fn metadata(&mut self, topics: &[&str], allow_auto_topic_creation: bool) -> MetadataResponse {
        let version = self.negotiate(ApiKey::Metadata, 4..=8);
        let request = MetadataRequest::default()
            .with_topics(Some(
                topics
                    .iter()
                    .map(|name| MetadataRequestTopic::default().with_name(Some(topic_name(name))))
                    .collect(),
            ))
            .with_allow_auto_topic_creation(allow_auto_topic_creation);
        self.call(version, &request)
    }
}

/// `payload` with Kafka's 4-byte big-endian size prefix.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let size = i32::try_from(payload.len()).expect("frame fits i32");
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub fn produce_request(topic: &str, partition: i32, acks: i16, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

/// A plain (non-transactional, non-idempotent) record for the encoder.
/// `offset` is relative to the batch; the broker assigns the real one.
///
/// kafka-protocol's encoder keeps records in one batch only while
/// `offset - sequence` stays the same, and derives the batch's base sequence
/// from the first record. `sequence = offset - 1` keeps every record of a
/// batch together and gives the batch base sequence -1 (no idempotence).
pub fn record(offset: i64, timestamp_ms: i64, key: &[u8], value: &[u8]) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_PRODUCER_EPOCH,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence: NO_SEQUENCE.wrapping_add(offset as i32),
        timestamp: timestamp_ms,
        key: Some(Bytes::copy_from_slice(key)),
        value: Some(Bytes::copy_from_slice(value)),
        headers: Default::default(),
    }
}

/// One uncompressed v2 record batch holding `records`.
pub fn encode_batch(records: &[Record]) -> Bytes {
    let mut buffer = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buffer,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode record batch");
    let buffer = buffer.freeze();
    assert_eq!(
        split_batches(buffer.clone()).len(),
        1,
        "records must encode as one batch"
    );
    buffer
}

/// Byte layout of a v2 record batch header (offsets from the batch start).
pub mod batch_layout {
    pub const BASE_OFFSET: usize = 0;
    pub const BATCH_LENGTH: usize = 8;
    pub const MAGIC: usize = 16;
    pub const CRC: usize = 17;
    pub const ATTRIBUTES: usize = 21;
    pub const LAST_OFFSET_DELTA: usize = 23;
    pub const FIRST_TIMESTAMP: usize = 27;
    pub const MAX_TIMESTAMP: usize = 35;
    pub const RECORD_COUNT: usize = 57;
    pub const RECORDS: usize = 61;
}

/// Splits fetched record bytes into whole batches. A trailing partial batch
/// (allowed in Fetch responses) is dropped.
pub fn split_batches(mut records: Bytes) -> Vec<Bytes> {
    let mut batches = Vec::new();
    while records.len() >= batch_layout::MAGIC {
        let length = i32::from_be_bytes(
            records[batch_layout::BATCH_LENGTH..batch_layout::BATCH_LENGTH + 4]
                .try_into()
                .expect("4 bytes"),
        );
        assert!(length > 0, "batch length {length} in fetched data");
        let total = batch_layout::BATCH_LENGTH + 4 + length as usize;
        if records.len() < total {
            break;
        }
        batches.push(records.split_to(total));
    }
    batches
}

/// True if the batch's CRC-32C (attributes to end) matches its CRC field.
pub fn batch_crc_is_valid(batch: &[u8]) -> bool {
    let stored = u32::from_be_bytes(
        batch[batch_layout::CRC..batch_layout::CRC + 4]
            .try_into()
            .expect("4 bytes"),
    );
    crc32c::crc32c(&batch[batch_layout::ATTRIBUTES..]) == stored
}

pub fn batch_base_offset(batch: &[u8]) -> i64 {
    i64::from_be_bytes(batch[0..8].try_into().expect("8 bytes"))
}

/// Decodes whole uncompressed batches from fetched bytes.
pub fn decode_records(records: Bytes) -> Vec<Record> {
    let mut out = Vec::new();
    for mut batch in split_batches(records) {
        let set = RecordBatchDecoder::decode(&mut batch).expect("decode fetched batch");
        out.extend(set.records);
    }
    out
}
