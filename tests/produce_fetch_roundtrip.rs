//! A real client (librdkafka through `rdkafka`) writes and reads back exactly
//! what it wrote: every key, value, header and CreateTime timestamp, at dense
//! offsets from 0 in send order within each partition.

mod common;

use common::{consume_exact, create_topic, produce_all_acked, pseudo_random_bytes, Broker, TestMessage};

const PARTITION_COUNT: i32 = 4;
const MESSAGE_COUNT: usize = 10_000;
/// CreateTime of message 0; message `i` gets `BASE_TIMESTAMP_MS + i`.
const BASE_TIMESTAMP_MS: i64 = 1_700_000_000_000;

/// Message `id` of the acks=all run. Every 1000th message has a null value
/// (a tombstone) and the one after it an empty value, so null and empty are
/// both checked to survive as themselves; headers include a null-valued one
/// and binary bytes.
fn roundtrip_message(id: usize) -> TestMessage {
    let value = match id % 1000 {
        0 => None,
        1 => Some(Vec::new()),
        _ => Some(pseudo_random_bytes(id as u64, 1 + (id * 37) % 1500)),
    };
    TestMessage {
        partition: (id % PARTITION_COUNT as usize) as i32,
        key: Some(format!("key-{id:05}").into_bytes()),
        value,
        headers: vec![
            ("id".to_string(), Some(id.to_string().into_bytes())),
            (
                "binary".to_string(),
                Some(pseudo_random_bytes(!(id as u64), id % 40)),
            ),
            ("null-header".to_string(), None),
        ],
        timestamp_ms: Some(BASE_TIMESTAMP_MS + id as i64),
    }
}

#[test]
fn ten_thousand_keyed_messages_with_headers_roundtrip_exactly_with_acks_all() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = "roundtrip-acks-all";
    create_topic(&bootstrap, topic, PARTITION_COUNT, &[]);

    let messages: Vec<TestMessage> = (0..MESSAGE_COUNT).map(roundtrip_message).collect();
    let reports = produce_all_acked(&bootstrap, "all", topic, &messages);

    // Delivery reports: right partition, and offsets dense from 0 in send
    // order within each partition (retries are off, so nothing may reorder).
    let mut next_offset = vec![0i64; PARTITION_COUNT as usize];
    for report in &reports {
        let sent = &messages[report.id];
        let (partition, offset) = report.outcome.clone().expect("acknowledged");
        assert_eq!(
            partition, sent.partition,
            "message {} acked on the wrong partition",
            report.id
        );
        assert_eq!(
            offset, next_offset[partition as usize],
            "message {} acked at an unexpected offset",
            report.id
        );
        next_offset[partition as usize] += 1;
    }
    let per_partition = MESSAGE_COUNT / PARTITION_COUNT as usize;
    assert_eq!(next_offset, vec![per_partition as i64; PARTITION_COUNT as usize]);

    let expected_counts: Vec<(i32, usize)> = (0..PARTITION_COUNT)
        .map(|partition| (partition, per_partition))
        .collect();
    let consumed = consume_exact(&bootstrap, topic, &expected_counts);

    let total: usize = consumed.values().map(Vec::len).sum();
    assert_eq!(total, MESSAGE_COUNT);
    for (partition, partition_messages) in &consumed {
        // Partition p holds messages p, p + 4, p + 8, ... in that order.
        for (offset, message) in partition_messages.iter().enumerate() {
            let id = offset * PARTITION_COUNT as usize + *partition as usize;
            let sent = &messages[id];
            assert_eq!(message.offset, offset as i64);
            assert!(
                message.matches(sent),
                "partition {partition} offset {offset}: read {message:?}, sent {sent:?}"
            );
        }
    }
}

/// Produces `count` messages with `acks`, then reads them back exactly.
fn roundtrip_with_acks(acks: &str, count: usize) {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = format!("roundtrip-acks-{acks}");
    create_topic(&bootstrap, &topic, 2, &[]);
    let messages: Vec<TestMessage> = (0..count)
        .map(|id| TestMessage {
            timestamp_ms: Some(BASE_TIMESTAMP_MS + id as i64),
            ..TestMessage::keyed(
                (id % 2) as i32,
                format!("{acks}-key-{id}"),
                pseudo_random_bytes(id as u64 + 77, 10 + id % 300),
            )
        })
        .collect();
    let reports = produce_all_acked(&bootstrap, acks, &topic, &messages);
    if acks == "1" {
        for report in &reports {
            let (partition, offset) = report.outcome.clone().expect("acknowledged");
            assert_eq!(partition, messages[report.id].partition);
            assert_eq!(
                offset,
                (report.id / 2) as i64,
                "acks=1 offset of message {}",
                report.id
            );
        }
    }
    // acks=0: the broker sends no response, so the client learns no offsets;
    // consume_exact waits (bounded) until the broker has applied everything.
    let consumed = consume_exact(&bootstrap, &topic, &[(0, count / 2), (1, count / 2)]);
    for (partition, partition_messages) in &consumed {
        for (offset, message) in partition_messages.iter().enumerate() {
            let sent = &messages[offset * 2 + *partition as usize];
            assert!(
                message.matches(sent),
                "acks={acks} {partition}/{offset}: {message:?} != {sent:?}"
            );
        }
    }
}

#[test]
fn acks_one_producer_delivers_every_message_in_order() {
    roundtrip_with_acks("1", 1_000);
}

#[test]
fn acks_zero_producer_delivers_every_message_in_order() {
    roundtrip_with_acks("0", 1_000);
}
