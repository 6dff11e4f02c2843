//! Writes the seed corpora of the fuzz targets: valid request frames of
//! several APIs and versions (`corpus/request_frame/`) and valid record
//! batches of every shape weir accepts (`corpus/record_batch/`). Output is
//! deterministic: rerunning rewrites the same files.
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example seed_corpus
//! ```

use std::{fs, io::Write, path::Path};

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        add_partitions_to_txn_request::{AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction},
        create_topics_request::CreatableTopic,
        fetch_request::{FetchPartition, FetchTopic},
        join_group_request::JoinGroupRequestProtocol,
        list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
        metadata_request::MetadataRequestTopic,
        offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
        produce_request::{PartitionProduceData, TopicProduceData},
        *,
    },
    protocol::{Encodable, StrBytes},
};
use weir::protocol::record_batch::{self, compute_crc};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let frames = root.join("request_frame");
    let batches = root.join("record_batch");
    fs::create_dir_all(&frames).unwrap();
    fs::create_dir_all(&batches).unwrap();

    for (name, batch) in seed_batches() {
        weir_fuzz::check_batch_bytes(&batch); // seeds must pass, not just parse
        if name != "segment" && batch[22] & 0x07 != 0 {
            // weir decompresses it and finds the second record.
            assert_eq!(
                record_batch::first_record_with_timestamp_at_or_after(&batch, TIMESTAMP_MS + 1),
                Some((1, TIMESTAMP_MS + 7)),
                "{name}"
            );
        }
        fs::write(batches.join(format!("seed-{name}")), &batch).unwrap();
    }
    for (api_key, version, body) in seed_requests() {
        let frame = encode_frame(api_key, version, &body);
        weir_fuzz::check_request_frame(&frame);
        let name = format!("seed-{api_key:?}-v{version}");
        fs::write(frames.join(name), &frame).unwrap();
    }
    // ApiVersions of a version weir does not know (answered, v0): a v3 body
    // behind a v99 header.
    let mut frame = header_bytes(ApiKey::ApiVersions, 99, 2);
    api_versions_request().encode(&mut frame, 3).unwrap();
    fs::write(frames.join("seed-ApiVersions-v99"), &frame).unwrap();
}

const TIMESTAMP_MS: i64 = 1_700_000_000_000;

/// A record as (key, value, headers); `None` is null.
type TestRecord<'a> = (
    Option<&'a [u8]>,
    Option<&'a [u8]>,
    &'a [(&'a [u8], Option<&'a [u8]>)],
);

struct BatchSpec<'a> {
    attributes: i16,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    records: &'a [TestRecord<'a>],
}

fn varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        let byte = (zigzag & 0x7f) as u8;
        zigzag >>= 7;
        if zigzag == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => varint(out, -1),
        Some(bytes) => {
            varint(out, bytes.len() as i64);
            out.extend_from_slice(bytes);
        }
    }
}

/// A v2 batch with a valid CRC.
fn batch(spec: &BatchSpec) -> Vec<u8> {
    let mut records = Vec::new();
    for (index, (key, value, headers)) in spec.records.iter().enumerate() {
        let mut body = vec![0u8]; // attributes
        varint(&mut body, index as i64 * 7); // timestamp delta
        varint(&mut body, index as i64); // offset delta
        nullable(&mut body, *key);
        nullable(&mut body, *value);
        varint(&mut body, headers.len() as i64);
        for (header_key, header_value) in headers.iter() {
            nullable(&mut body, Some(header_key));
            nullable(&mut body, *header_value);
        }
        varint(&mut records, body.len() as i64);
        records.extend_from_slice(&body);
    }
    let records = compress((spec.attributes & 0x07) as u8, &records);
    let count = spec.records.len() as i32;
    let mut out = Vec::new();
    out.extend_from_slice(&0i64.to_be_bytes()); // base offset
    out.extend_from_slice(&((49 + records.len()) as i32).to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    out.push(2); // magic
    out.extend_from_slice(&[0; 4]); // crc, below
    out.extend_from_slice(&spec.attributes.to_be_bytes());
    out.extend_from_slice(&(count - 1).to_be_bytes());
    out.extend_from_slice(&TIMESTAMP_MS.to_be_bytes());
    out.extend_from_slice(&(TIMESTAMP_MS + 7 * i64::from(count - 1)).to_be_bytes());
    out.extend_from_slice(&spec.producer_id.to_be_bytes());
    out.extend_from_slice(&spec.producer_epoch.to_be_bytes());
    out.extend_from_slice(&spec.base_sequence.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&records);
    let crc = compute_crc(&out);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

/// The records section compressed as Kafka's clients do: gzip, snappy
/// (xerial's framed stream, as the Java client writes it), LZ4 frame, zstd.
fn compress(codec: u8, records: &[u8]) -> Vec<u8> {
    match codec {
        0 => records.to_vec(),
        1 => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(records).unwrap();
            encoder.finish().unwrap()
        }
        2 => {
            let mut out = vec![
                0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
            ];
            let block = snap::raw::Encoder::new().compress_vec(records).unwrap();
            out.extend_from_slice(&(block.len() as i32).to_be_bytes());
            out.extend_from_slice(&block);
            out
        }
        3 => {
            let mut encoder = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
            encoder.write_all(records).unwrap();
            let (out, result) = encoder.finish();
            result.unwrap();
            out
        }
        4 => zstd::encode_all(records, 3).unwrap(),
        other => panic!("codec {other}"),
    }
}

fn plain(records: &[TestRecord]) -> Vec<u8> {
    batch(&BatchSpec {
        attributes: 0,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        records,
    })
}

fn seed_batches() -> Vec<(&'static str, Vec<u8>)> {
    let one: &[TestRecord] = &[(Some(b"key"), Some(b"value"), &[])];
    let with_headers: &[TestRecord] = &[
        (Some(b"k0"), Some(b"v0"), &[(b"h", Some(b"1")), (b"trace", None)]),
        (None, Some(b"no key"), &[]),
        (Some(b"tombstone"), None, &[(b"", Some(b""))]),
        (Some(b""), Some(b""), &[]),
        (Some(b"k4"), Some(&[0xAB; 300]), &[]),
    ];
    let idempotent = BatchSpec {
        attributes: 0,
        producer_id: 4_000,
        producer_epoch: 0,
        base_sequence: 0,
        records: with_headers,
    };
    let transactional = BatchSpec {
        attributes: 0x10,
        producer_id: 4_001,
        producer_epoch: 3,
        base_sequence: 10,
        records: one,
    };
    // A COMMIT control record (refused by Produce, found in segments).
    let control_record: &[TestRecord] = &[(Some(&[0, 0, 0, 1]), Some(&[0, 0, 0, 0, 0, 5]), &[])];
    let control = BatchSpec {
        attributes: 0x30,
        producer_id: 4_001,
        producer_epoch: 3,
        base_sequence: -1,
        records: control_record,
    };
    // Real compressed batches: the ListOffsets timestamp lookup
    // decompresses them to find the record.
    let compressed = |codec: i16| {
        batch(&BatchSpec {
            attributes: codec,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records: with_headers,
        })
    };
    let log_append_time = batch(&BatchSpec {
        attributes: 0x08,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        records: one,
    });
    // Three batches back to back, then zero padding: a segment's tail.
    let mut segment = plain(one);
    segment.extend(batch(&idempotent));
    segment.extend(batch(&transactional));
    segment.extend([0u8; 64]);
    vec![
        ("one-record", plain(one)),
        ("headers-nulls", plain(with_headers)),
        ("idempotent", batch(&idempotent)),
        ("transactional", batch(&transactional)),
        ("control-commit", batch(&control)),
        ("gzip", compressed(1)),
        ("snappy-xerial", compressed(2)),
        ("lz4", compressed(3)),
        ("zstd", compressed(4)),
        ("log-append-time", log_append_time),
        ("segment", segment),
    ]
}

fn str_bytes(text: &'static str) -> StrBytes {
    StrBytes::from_static_str(text)
}

fn topic(name: &'static str) -> TopicName {
    TopicName(str_bytes(name))
}

fn api_versions_request() -> ApiVersionsRequest {
    ApiVersionsRequest::default()
        .with_client_software_name(str_bytes("weir-fuzz"))
        .with_client_software_version(str_bytes("1"))
}

fn seed_requests() -> Vec<(ApiKey, i16, RequestKind)> {
    let records = Bytes::from(plain(&[(Some(b"key"), Some(b"value"), &[(b"h", Some(b"v"))])]));
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic("events"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    let metadata = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(topic("events")))
    ]));
    let fetch = FetchRequest::default()
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic("events"))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(5)
                .with_partition_max_bytes(1 << 20)])]);
    let list_offsets = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic("events"))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])]);
    let join_group = JoinGroupRequest::default()
        .with_group_id(GroupId(str_bytes("group")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(30_000)
        .with_protocol_type(str_bytes("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(str_bytes("range"))
            .with_metadata(Bytes::from_static(b"\0\x01\0\0\0\x01\0\x06events"))]);
    let offset_commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(str_bytes("group")))
        .with_generation_id_or_member_epoch(1)
        .with_member_id(str_bytes("member-1"))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic("events"))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(42)])]);
    let create_topics = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic("created"))
            .with_num_partitions(3)
            .with_replication_factor(1)]);
    let find_coordinator_v0 = FindCoordinatorRequest::default().with_key(str_bytes("group"));
    let find_coordinator_v4 =
        FindCoordinatorRequest::default().with_coordinator_keys(vec![str_bytes("group")]);
    let init_producer_id = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(str_bytes("txn"))))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let add_partitions_v3 = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(str_bytes("txn")))
        .with_v3_and_below_producer_id(ProducerId(4_001))
        .with_v3_and_below_producer_epoch(3)
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(topic("events"))
            .with_partitions(vec![0, 1])]);
    let add_partitions_v4 =
        AddPartitionsToTxnRequest::default().with_transactions(vec![AddPartitionsToTxnTransaction::default(
        )
        .with_transactional_id(TransactionalId(str_bytes("txn")))
        .with_producer_id(ProducerId(4_001))
        .with_producer_epoch(3)
        .with_verify_only(true)
        .with_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(topic("events"))
            .with_partitions(vec![0])])]);
    let end_txn = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(str_bytes("txn")))
        .with_producer_id(ProducerId(4_001))
        .with_producer_epoch(3)
        .with_committed(true);
    let heartbeat = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(str_bytes("group")))
        .with_member_id(str_bytes("member-1"))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![topic("events")]));
    use RequestKind as R;
    vec![
        (
            ApiKey::ApiVersions,
            0,
            R::ApiVersions(ApiVersionsRequest::default()),
        ),
        (ApiKey::ApiVersions, 3, R::ApiVersions(api_versions_request())),
        (ApiKey::Metadata, 0, R::Metadata(metadata.clone())),
        (ApiKey::Metadata, 4, R::Metadata(metadata.clone())),
        (ApiKey::Metadata, 9, R::Metadata(metadata.clone())),
        (ApiKey::Metadata, 12, R::Metadata(metadata)),
        (ApiKey::Produce, 3, R::Produce(produce.clone())),
        (ApiKey::Produce, 7, R::Produce(produce.clone())),
        (ApiKey::Produce, 9, R::Produce(produce.clone())),
        (ApiKey::Produce, 12, R::Produce(produce)),
        (ApiKey::Fetch, 4, R::Fetch(fetch.clone())),
        (ApiKey::Fetch, 11, R::Fetch(fetch.clone())),
        (ApiKey::Fetch, 12, R::Fetch(fetch)),
        (ApiKey::ListOffsets, 1, R::ListOffsets(list_offsets.clone())),
        (ApiKey::ListOffsets, 7, R::ListOffsets(list_offsets)),
        (ApiKey::JoinGroup, 5, R::JoinGroup(join_group.clone())),
        (ApiKey::JoinGroup, 9, R::JoinGroup(join_group)),
        (ApiKey::OffsetCommit, 8, R::OffsetCommit(offset_commit)),
        (
            ApiKey::OffsetFetch,
            7,
            R::OffsetFetch(OffsetFetchRequest::default().with_group_id(GroupId(str_bytes("group")))),
        ),
        (ApiKey::CreateTopics, 5, R::CreateTopics(create_topics)),
        (
            ApiKey::DeleteTopics,
            4,
            R::DeleteTopics(DeleteTopicsRequest::default().with_topic_names(vec![topic("events")])),
        ),
        (
            ApiKey::FindCoordinator,
            0,
            R::FindCoordinator(find_coordinator_v0),
        ),
        (
            ApiKey::FindCoordinator,
            4,
            R::FindCoordinator(find_coordinator_v4),
        ),
        (ApiKey::InitProducerId, 4, R::InitProducerId(init_producer_id)),
        (
            ApiKey::AddPartitionsToTxn,
            3,
            R::AddPartitionsToTxn(add_partitions_v3),
        ),
        (
            ApiKey::AddPartitionsToTxn,
            4,
            R::AddPartitionsToTxn(add_partitions_v4),
        ),
        (ApiKey::EndTxn, 3, R::EndTxn(end_txn)),
        (
            ApiKey::ConsumerGroupHeartbeat,
            0,
            R::ConsumerGroupHeartbeat(heartbeat),
        ),
        (
            ApiKey::ListTransactions,
            1,
            R::ListTransactions(ListTransactionsRequest::default()),
        ),
    ]
}

fn header_bytes(api_key: ApiKey, version: i16, header_version: i16) -> BytesMut {
    let mut out = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(str_bytes("weir-fuzz")))
        .encode(&mut out, header_version)
        .unwrap();
    out
}

/// Header + body, without the size prefix (the fuzz target's input).
fn encode_frame(api_key: ApiKey, version: i16, body: &RequestKind) -> Vec<u8> {
    let mut out = header_bytes(api_key, version, api_key.request_header_version(version));
    body.encode(&mut out, version)
        .unwrap_or_else(|e| panic!("{api_key:?} v{version}: {e}"));
    out.to_vec()
}
