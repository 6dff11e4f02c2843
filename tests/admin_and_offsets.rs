//! Offsets lookups (ListOffsets earliest, latest, by timestamp) and topic
//! administration (CreateTopics, DescribeConfigs, DeleteTopics,
//! CreatePartitions) through librdkafka's consumer and admin APIs.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use rdkafka::admin::{NewPartitions, ResourceSpecifier};
use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use common::wire::{Connection, ERROR_NONE};
use common::{
    admin, admin_options, block_on, consume_exact, consumer, create_topic, list_topics, produce_all_acked,
    wait_for_partition_count, watermarks, Broker, BrokerOptions, TestMessage, CLIENT_TIMEOUT,
};

/// CreateTime of message `i` in the offsets test: one per second.
const BASE_TIMESTAMP_MS: i64 = 1_600_000_000_000;

fn timestamp_of(i: usize) -> i64 {
    BASE_TIMESTAMP_MS + 1_000 * i as i64
}

/// offsets_for_times for one partition: the offset of the first record with
/// timestamp >= `timestamp_ms` (`Offset::End` when there is none).
fn offset_for_time(bootstrap: &str, topic: &str, partition: i32, timestamp_ms: i64) -> Offset {
    let mut query = TopicPartitionList::new();
    query
        .add_partition_offset(topic, partition, Offset::Offset(timestamp_ms))
        .expect("add partition");
    let answer = consumer(bootstrap)
        .offsets_for_times(query, CLIENT_TIMEOUT)
        .unwrap_or_else(|error| panic!("offsets_for_times({timestamp_ms}): {error}"));
    let element = answer
        .find_partition(topic, partition)
        .expect("partition in answer");
    assert!(
        element.error().is_ok(),
        "offsets_for_times({timestamp_ms}): {:?}",
        element.error()
    );
    element.offset()
}

#[test]
fn list_offsets_earliest_latest_and_by_timestamp() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = "offsets";
    create_topic(&bootstrap, topic, 2, &[]);
    assert_eq!(watermarks(&bootstrap, topic, 0), (0, 0), "empty partition 0");

    // 30 records in three separately flushed produce calls (so at least
    // three batches), timestamps one second apart.
    for round in 0..3 {
        let messages: Vec<TestMessage> = (round * 10..round * 10 + 10)
            .map(|i| TestMessage {
                timestamp_ms: Some(timestamp_of(i)),
                ..TestMessage::keyed(0, format!("k{i}"), format!("v{i}"))
            })
            .collect();
        produce_all_acked(&bootstrap, "all", topic, &messages);
    }
    assert_eq!(
        watermarks(&bootstrap, topic, 0),
        (0, 30),
        "partition 0 after 30 records"
    );
    assert_eq!(watermarks(&bootstrap, topic, 1), (0, 0), "untouched partition 1");

    let cases = [
        (
            "before every record",
            BASE_TIMESTAMP_MS - 60_000,
            Offset::Offset(0),
        ),
        ("exactly the first record", timestamp_of(0), Offset::Offset(0)),
        (
            "just after the first record",
            timestamp_of(0) + 1,
            Offset::Offset(1),
        ),
        (
            "first record of the second batch",
            timestamp_of(10),
            Offset::Offset(10),
        ),
        ("inside the second batch", timestamp_of(15), Offset::Offset(15)),
        ("between two records", timestamp_of(15) + 500, Offset::Offset(16)),
        ("exactly the last record", timestamp_of(29), Offset::Offset(29)),
        ("after every record", timestamp_of(29) + 1, Offset::End),
    ];
    for (what, timestamp_ms, expected) in cases {
        assert_eq!(
            offset_for_time(&bootstrap, topic, 0, timestamp_ms),
            expected,
            "{what}"
        );
    }
    assert_eq!(
        offset_for_time(&bootstrap, topic, 1, timestamp_of(0)),
        Offset::End,
        "by timestamp on an empty partition"
    );

    // The same answers on the wire, straight from ListOffsets.
    let mut connection = Connection::open(broker.socket_addr());
    assert_eq!(connection.list_offset(topic, 0, -2), (ERROR_NONE, 0), "earliest");
    assert_eq!(connection.list_offset(topic, 0, -1), (ERROR_NONE, 30), "latest");
    assert_eq!(
        connection.list_offset(topic, 0, timestamp_of(15)),
        (ERROR_NONE, 15),
        "by time"
    );
    assert_eq!(
        connection.list_offset(topic, 0, timestamp_of(29) + 1),
        (ERROR_NONE, -1),
        "past end"
    );
}

#[test]
fn describe_configs_reports_topic_settings() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "default-configs", 1, &[]);
    create_topic(&bootstrap, "custom-segment", 1, &[("segment.bytes", "1048576")]);

    let admin = admin(&bootstrap);
    let resources = [
        ResourceSpecifier::Topic("default-configs"),
        ResourceSpecifier::Topic("custom-segment"),
    ];
    let results = block_on(
        admin.describe_configs(&resources, &admin_options()),
        CLIENT_TIMEOUT,
    )
    .expect("DescribeConfigs request");
    assert_eq!(results.len(), 2);
    let defaults = results[0].as_ref().expect("describe default-configs");
    let custom = results[1].as_ref().expect("describe custom-segment");

    let positive_integer = |resource: &rdkafka::admin::ConfigResource, name: &str| -> u64 {
        let entry = resource
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from DescribeConfigs"));
        let value = entry
            .value
            .as_deref()
            .unwrap_or_else(|| panic!("{name} has no value"));
        let parsed: u64 = value
            .parse()
            .unwrap_or_else(|_| panic!("{name} = {value:?} is not an integer"));
        assert!(parsed > 0, "{name} = {parsed}");
        parsed
    };
    positive_integer(defaults, "segment.bytes");
    positive_integer(defaults, "max.message.bytes");
    assert_eq!(
        defaults
            .get("message.timestamp.type")
            .and_then(|e| e.value.as_deref()),
        Some("CreateTime")
    );
    assert_eq!(
        positive_integer(custom, "segment.bytes"),
        1_048_576,
        "override given at creation"
    );
}

/// librdkafka's "all topics" Metadata request (what `kcat -L` and topic
/// listings send) is answered with every topic (`__consumer_offsets` only
/// exists once a group was used, as in Kafka).
#[test]
fn all_topics_metadata_from_librdkafka_lists_every_topic() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    for (topic, partitions) in [("listed-a", 1), ("listed-b", 2), ("listed-c", 3)] {
        create_topic(&bootstrap, topic, partitions, &[]);
    }
    let mut topics = list_topics(&bootstrap);
    topics.sort();
    assert_eq!(topics, ["listed-a", "listed-b", "listed-c"]);
}

#[test]
fn deleted_topic_disappears_from_metadata_and_its_data_with_it() {
    let broker = Broker::start_with(BrokerOptions {
        auto_create_topics: Some(false),
        ..BrokerOptions::default()
    });
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "doomed", 2, &[]);
    create_topic(&bootstrap, "survivor", 1, &[]);
    let messages: Vec<TestMessage> = (0..10)
        .map(|i| TestMessage::keyed(i % 2, format!("k{i}"), format!("v{i}")))
        .collect();
    produce_all_acked(&bootstrap, "all", "doomed", &messages);

    let admin = admin(&bootstrap);
    let results = block_on(admin.delete_topics(&["doomed"], &admin_options()), CLIENT_TIMEOUT)
        .expect("DeleteTopics request");
    assert_eq!(results, vec![Ok("doomed".to_string())]);

    let deadline = Instant::now() + CLIENT_TIMEOUT;
    loop {
        let topics = list_topics(&bootstrap);
        assert!(
            topics.iter().any(|t| t == "survivor"),
            "survivor vanished: {topics:?}"
        );
        if !topics.iter().any(|t| t == "doomed") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deleted topic still listed: {topics:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
    thread::sleep(Duration::from_millis(500));
    assert!(
        !list_topics(&bootstrap).iter().any(|t| t == "doomed"),
        "deleted topic came back"
    );

    let results = block_on(admin.delete_topics(&["doomed"], &admin_options()), CLIENT_TIMEOUT)
        .expect("DeleteTopics request");
    assert_eq!(
        results,
        vec![Err((
            "doomed".to_string(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))],
        "deleting a deleted topic"
    );

    // A topic created again under the same name starts empty.
    create_topic(&bootstrap, "doomed", 1, &[]);
    assert_eq!(watermarks(&bootstrap, "doomed", 0), (0, 0), "recreated topic");
}

#[test]
fn create_partitions_grows_topic_and_new_partitions_are_usable() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = "growing";
    create_topic(&bootstrap, topic, 2, &[]);
    let message = |i: usize| TestMessage {
        timestamp_ms: Some(BASE_TIMESTAMP_MS + i as i64),
        ..TestMessage::keyed((i % 4) as i32, format!("k{i}"), format!("v{i}"))
    };
    let old: Vec<TestMessage> = (0..40).map(message).filter(|m| m.partition < 2).collect();
    produce_all_acked(&bootstrap, "all", topic, &old);

    let admin = admin(&bootstrap);
    let results = block_on(
        admin.create_partitions([&NewPartitions::new(topic, 4)], &admin_options()),
        CLIENT_TIMEOUT,
    )
    .expect("CreatePartitions request");
    assert_eq!(results, vec![Ok(topic.to_string())]);
    wait_for_partition_count(&bootstrap, topic, 4);

    let shrink = block_on(
        admin.create_partitions([&NewPartitions::new(topic, 3)], &admin_options()),
        CLIENT_TIMEOUT,
    )
    .expect("CreatePartitions request");
    assert_eq!(
        shrink,
        vec![Err((topic.to_string(), RDKafkaErrorCode::InvalidPartitions))],
        "shrinking a topic"
    );

    // A fresh producer learns of partitions 2 and 3 and writes to them.
    let new: Vec<TestMessage> = (0..40).map(message).filter(|m| m.partition >= 2).collect();
    let reports = produce_all_acked(&bootstrap, "all", topic, &new);
    for report in &reports {
        let (partition, offset) = report.outcome.clone().expect("acked");
        assert_eq!(partition, new[report.id].partition);
        assert_eq!(offset, (report.id / 2) as i64);
    }
    let consumed = consume_exact(&bootstrap, topic, &[(0, 10), (1, 10), (2, 10), (3, 10)]);
    for (partition, messages) in &consumed {
        for (offset, got) in messages.iter().enumerate() {
            let sent = message(offset * 4 + *partition as usize);
            assert!(got.matches(&sent), "{partition}/{offset}: {got:?} != {sent:?}");
        }
    }
}
