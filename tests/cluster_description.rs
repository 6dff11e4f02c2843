//! DescribeCluster (60) and DescribeTopicPartitions (75), the APIs Kafka 3.8+
//! clients and tools use to describe the cluster and its topics, spoken
//! directly: every version, the endpoint-type errors, and the paging of
//! DescribeTopicPartitions (partition limit, cursor, unknown topics), with
//! exact answers. Runs against Apache Kafka too (`WEIR_TEST_BROKER=kafka`),
//! which is where the expected answers come from.

mod common;

use common::wire::{topic_name, Connection};
use common::{create_topic, Broker};
use kafka_protocol::messages::{
    describe_topic_partitions_request::{Cursor, TopicRequest},
    ApiKey, DescribeClusterRequest, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
    MetadataRequest,
};

const MISMATCHED_ENDPOINT_TYPE: i16 = 114;
const UNSUPPORTED_ENDPOINT_TYPE: i16 = 115;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_REQUEST: i16 = 42;

#[test]
fn describe_cluster_names_this_broker_in_every_version() {
    let broker = Broker::start();
    let mut connection = Connection::open(broker.socket_addr());
    let metadata = connection.call(12, &MetadataRequest::default());
    let node_id = metadata.brokers[0].node_id;
    let versions = version_range(&mut connection, ApiKey::DescribeCluster);
    for version in versions.clone() {
        let mut request = DescribeClusterRequest::default();
        if version >= 1 {
            request.endpoint_type = 1;
        }
        let response = connection.call(version, &request);
        assert_eq!(response.error_code, 0, "DescribeCluster v{version}");
        assert_eq!(response.brokers.len(), 1, "v{version}: one broker");
        let described = &response.brokers[0];
        assert_eq!(
            described.broker_id, node_id,
            "v{version}: broker id as in Metadata"
        );
        assert_eq!(described.host.as_str(), "127.0.0.1", "v{version}: host");
        assert_eq!(described.port, i32::from(broker.port()), "v{version}: port");
        assert_eq!(
            response.controller_id, metadata.controller_id,
            "v{version}: controller"
        );
        assert_eq!(
            Some(response.cluster_id.clone()),
            metadata.cluster_id,
            "v{version}: cluster id as in Metadata"
        );
        if version >= 1 {
            assert_eq!(response.endpoint_type, 1, "v{version}: endpoint type echoed");
        }
    }
    // A broker endpoint asked for controllers, or for an unknown type.
    let newest = *versions.end();
    for (endpoint_type, expected) in [(2, MISMATCHED_ENDPOINT_TYPE), (7, UNSUPPORTED_ENDPOINT_TYPE)] {
        let mut request = DescribeClusterRequest::default();
        request.endpoint_type = endpoint_type;
        let response = connection.call(newest, &request);
        assert_eq!(response.error_code, expected, "endpoint type {endpoint_type}");
        assert!(
            response.brokers.is_empty(),
            "endpoint type {endpoint_type}: no brokers"
        );
        assert!(
            response.error_message.is_some(),
            "endpoint type {endpoint_type}: a message"
        );
    }
}

#[test]
fn describe_topic_partitions_pages_by_limit_and_cursor() {
    let broker = Broker::start();
    // Names sort as alpha < beta < gamma.
    create_topic(&broker.bootstrap(), "dtp-alpha", 3, &[]);
    create_topic(&broker.bootstrap(), "dtp-beta", 2, &[]);
    create_topic(&broker.bootstrap(), "dtp-gamma", 4, &[]);
    let mut connection = Connection::open(broker.socket_addr());
    assert_eq!(
        version_range(&mut connection, ApiKey::DescribeTopicPartitions),
        0..=0
    );
    let names = ["dtp-gamma", "dtp-alpha", "dtp-beta"];

    // Everything fits: name order, every partition led, no cursor.
    let whole = describe(&mut connection, &names, 100, None);
    assert_eq!(
        pages(&whole),
        vec![
            ("dtp-alpha".to_string(), vec![0, 1, 2]),
            ("dtp-beta".to_string(), vec![0, 1]),
            ("dtp-gamma".to_string(), vec![0, 1, 2, 3]),
        ]
    );
    assert!(whole.next_cursor.is_none());
    for topic in &whole.topics {
        assert_eq!(topic.error_code, 0);
        assert!(!topic.topic_id.is_nil(), "topic id is set");
        assert!(!topic.is_internal);
        for partition in &topic.partitions {
            assert_eq!(partition.error_code, 0);
            assert!(partition.leader_id.0 >= 0, "a leader");
            assert_eq!(partition.replica_nodes, vec![partition.leader_id]);
            assert_eq!(partition.isr_nodes, vec![partition.leader_id]);
        }
    }

    // Limit 4: alpha whole, beta's first partition, then a cursor.
    let first = describe(&mut connection, &names, 4, None);
    assert_eq!(
        pages(&first),
        vec![
            ("dtp-alpha".to_string(), vec![0, 1, 2]),
            ("dtp-beta".to_string(), vec![0])
        ]
    );
    assert_eq!(cursor_of(&first), Some(("dtp-beta".to_string(), 1)));
    let second = describe(&mut connection, &names, 4, Some(("dtp-beta", 1)));
    assert_eq!(
        pages(&second),
        vec![
            ("dtp-beta".to_string(), vec![1]),
            ("dtp-gamma".to_string(), vec![0, 1, 2])
        ]
    );
    assert_eq!(cursor_of(&second), Some(("dtp-gamma".to_string(), 3)));
    let third = describe(&mut connection, &names, 4, Some(("dtp-gamma", 3)));
    assert_eq!(pages(&third), vec![("dtp-gamma".to_string(), vec![3])]);
    assert!(third.next_cursor.is_none());

    // A limit that ends exactly at a topic's end points at the next topic.
    let exact = describe(&mut connection, &names, 3, None);
    assert_eq!(pages(&exact), vec![("dtp-alpha".to_string(), vec![0, 1, 2])]);
    assert_eq!(cursor_of(&exact), Some(("dtp-beta".to_string(), 0)));

    // An empty list means every topic (these three among them).
    let all = describe(&mut connection, &[], 2000, None);
    let all_names: Vec<String> = pages(&all).into_iter().map(|(name, _)| name).collect();
    let mut sorted = all_names.clone();
    sorted.sort();
    assert_eq!(all_names, sorted, "every topic, in name order");
    for name in names {
        assert!(all_names.iter().any(|n| n == name), "{name} listed");
    }

    // Unknown topics are reported, never created.
    let unknown = describe(&mut connection, &["dtp-missing", "dtp-alpha"], 100, None);
    assert_eq!(unknown.topics.len(), 2);
    assert_eq!(unknown.topics[0].name.as_ref().unwrap().0.as_str(), "dtp-alpha");
    assert_eq!(unknown.topics[1].name.as_ref().unwrap().0.as_str(), "dtp-missing");
    assert_eq!(unknown.topics[1].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    assert!(unknown.topics[1].partitions.is_empty());
    let metadata = connection.call(12, &{
        let mut request = MetadataRequest::default();
        request.topics = None;
        request
    });
    assert!(
        !metadata
            .topics
            .iter()
            .any(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "dtp-missing")),
        "DescribeTopicPartitions must not create topics"
    );

    // A cursor naming a topic outside a non-empty list is an invalid request.
    let invalid = describe(&mut connection, &["dtp-alpha"], 100, Some(("dtp-beta", 0)));
    assert!(!invalid.topics.is_empty());
    for topic in &invalid.topics {
        assert_eq!(topic.error_code, INVALID_REQUEST, "cursor outside the list");
    }
}

fn version_range(connection: &mut Connection, api: ApiKey) -> std::ops::RangeInclusive<i16> {
    let versions = connection.api_versions();
    let entry = versions
        .api_keys
        .iter()
        .find(|entry| entry.api_key == api as i16)
        .unwrap_or_else(|| panic!("{api:?} is not advertised"));
    entry.min_version..=entry.max_version
}

fn describe(
    connection: &mut Connection,
    names: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> DescribeTopicPartitionsResponse {
    let mut request = DescribeTopicPartitionsRequest::default();
    request.topics = names
        .iter()
        .map(|name| {
            let mut topic = TopicRequest::default();
            topic.name = topic_name(name);
            topic
        })
        .collect();
    request.response_partition_limit = limit;
    request.cursor = cursor.map(|(name, partition)| {
        let mut cursor = Cursor::default();
        cursor.topic_name = topic_name(name);
        cursor.partition_index = partition;
        cursor
    });
    connection.call(0, &request)
}

/// (topic, partition indexes) in answer order.
fn pages(response: &DescribeTopicPartitionsResponse) -> Vec<(String, Vec<i32>)> {
    response
        .topics
        .iter()
        .map(|topic| {
            let name = topic.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
            (name, topic.partitions.iter().map(|p| p.partition_index).collect())
        })
        .collect()
}

fn cursor_of(response: &DescribeTopicPartitionsResponse) -> Option<(String, i32)> {
    response
        .next_cursor
        .as_ref()
        .map(|cursor| (cursor.topic_name.0.to_string(), cursor.partition_index))
}
