//! ListOffsets' special timestamps as Kafka answers them, in every version
//! that carries them: earliest local (-4, v8+) is the log start when nothing
//! is tiered, latest tiered (-5, v9+) is -1 when nothing is tiered, and the
//! older specs (-1 latest, -2 earliest, -3 max timestamp) keep their answers
//! in the new versions. Runs against Apache Kafka too
//! (`WEIR_TEST_BROKER=kafka`), which is where the expected answers come from.

mod common;

use common::wire::{encode_batch, record, topic_name, Connection};
use common::{create_topic, Broker};
use kafka_protocol::messages::{
    list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
    ApiKey, ListOffsetsRequest,
};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

#[test]
fn earliest_local_and_latest_tiered_answer_as_without_tiered_storage() {
    let broker = Broker::start();
    let topic = "list-offsets-specs";
    create_topic(&broker.bootstrap(), topic, 1, &[]);
    let mut connection = Connection::open(broker.socket_addr());
    let base_ms = 1_700_000_000_000;
    // Three batches; the middle one carries the largest timestamp.
    for (index, timestamp_ms) in [base_ms, base_ms + 5_000, base_ms + 1_000]
        .into_iter()
        .enumerate()
    {
        let batch = encode_batch(&[record(0, timestamp_ms, b"k", format!("v{index}").as_bytes())]);
        let produced = connection.produce(topic, 0, -1, batch);
        assert_eq!(produced.error_code, 0, "produce {index}");
    }
    let newest = connection.negotiate(ApiKey::ListOffsets, 1..=10);
    assert!(newest >= 9, "ListOffsets v9 is advertised (got v{newest})");
    for version in 1..=newest {
        let mut expected = vec![(LATEST, 3), (EARLIEST, 0)];
        if version >= 7 {
            expected.push((MAX_TIMESTAMP, 1));
        }
        if version >= 8 {
            expected.push((EARLIEST_LOCAL, 0));
        }
        if version >= 9 {
            expected.push((LATEST_TIERED, -1));
        }
        for (timestamp, offset) in expected {
            let (error_code, found, leader_epoch) = list_offset(&mut connection, version, topic, timestamp);
            assert_eq!(
                (error_code, found),
                (0, offset),
                "ListOffsets v{version} timestamp {timestamp}"
            );
            if version >= 4 && timestamp == LATEST_TIERED {
                assert_eq!(
                    leader_epoch, -1,
                    "v{version}: no epoch for a tiered offset that does not exist"
                );
            }
        }
    }
}

/// (error code, offset, leader epoch) of one partition at `version`.
fn list_offset(connection: &mut Connection, version: i16, topic: &str, timestamp: i64) -> (i16, i64, i32) {
    let mut partition = ListOffsetsPartition::default();
    partition.partition_index = 0;
    partition.timestamp = timestamp;
    let mut request_topic = ListOffsetsTopic::default();
    request_topic.name = topic_name(topic);
    request_topic.partitions = vec![partition];
    let mut request = ListOffsetsRequest::default();
    request.replica_id = (-1).into();
    request.topics = vec![request_topic];
    if version >= 10 {
        request.timeout_ms = 30_000;
    }
    let response = connection.call(version, &request);
    let answered = &response.topics[0].partitions[0];
    (answered.error_code, answered.offset, answered.leader_epoch)
}
