//! DescribeTopicPartitions (key 75), version 0: topics and their partitions,
//! paged by a partition limit and a cursor (KIP-966).
//!
//! Kafka 3.8+ clients describe topics with it (the Java Admin's
//! `describeTopics`, `kafka-topics --describe`) and fall back to Metadata
//! only when it is not advertised. Rules as Kafka's handler applies them:
//! - an empty topic list means every topic; otherwise only the named ones,
//!   and an unknown name gets UNKNOWN_TOPIC_OR_PARTITION (never created);
//! - topics are answered in name order, starting at the cursor's topic
//!   (which must be in a non-empty list, else INVALID_REQUEST) and, for that
//!   topic only, at the cursor's partition;
//! - at most `min(response_partition_limit, RESPONSE_PARTITIONS_MAX)`
//!   partitions are returned; when the limit stops the answer, `next_cursor`
//!   names the first partition left out.
//!
//! Every partition is led by this node at epoch 0, as Metadata says.

use std::{collections::BTreeSet, rc::Rc};

use kafka_protocol::messages::{
    describe_topic_partitions_response::{
        Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
    },
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};

use super::{str_bytes, uuid};
use crate::{protocol::error_code, shard::Shard};

/// Kafka's `max.request.partition.size.limit` default: the most partitions
/// one response carries, whatever the client asks for.
const RESPONSE_PARTITIONS_MAX: i32 = 2000;

pub fn handle(
    shard: &Rc<Shard>,
    request: &DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let metadata = shard.metadata();
    let mut response = DescribeTopicPartitionsResponse::default();
    let cursor_topic = request
        .cursor
        .as_ref()
        .map(|cursor| cursor.topic_name.0.to_string());
    let cursor_topic = cursor_topic.unwrap_or_default();
    let all_topics = request.topics.is_empty();
    let names: BTreeSet<String> = if all_topics {
        metadata.topics.keys().cloned().collect()
    } else {
        request
            .topics
            .iter()
            .map(|topic| topic.name.0.to_string())
            .collect()
    };
    let names: Vec<String> = names.into_iter().filter(|name| *name >= cursor_topic).collect();
    if !all_topics && !cursor_topic.is_empty() && !names.contains(&cursor_topic) {
        // Kafka answers an invalid request with its error on every topic.
        response.topics = request
            .topics
            .iter()
            .map(|topic| error_topic(topic.name.0.as_str(), error_code::INVALID_REQUEST))
            .collect();
        return response;
    }
    let cursor_partition = request
        .cursor
        .as_ref()
        .map_or(0, |cursor| cursor.partition_index.max(0));
    let mut remaining = request.response_partition_limit.clamp(0, RESPONSE_PARTITIONS_MAX);
    for name in names {
        if remaining == 0 {
            // The previous topics filled the answer: go on from this one.
            let mut cursor = Cursor::default();
            cursor.topic_name = TopicName(str_bytes(&name));
            cursor.partition_index = 0;
            response.next_cursor = Some(cursor);
            break;
        }
        let Some(topic) = metadata.topic(&name) else {
            if !all_topics {
                response
                    .topics
                    .push(error_topic(&name, error_code::UNKNOWN_TOPIC_OR_PARTITION));
            }
            continue;
        };
        let first_partition = if name == cursor_topic { cursor_partition } else { 0 };
        let partition_count = topic.partition_count();
        let end = partition_count.min(first_partition.saturating_add(remaining));
        let mut described = DescribeTopicPartitionsResponseTopic::default();
        described.name = Some(TopicName(str_bytes(&name)));
        described.topic_id = uuid(topic.id_bytes());
        described.is_internal = name == crate::group::OFFSETS_TOPIC || name == crate::txn::TXN_STATE_TOPIC;
        described.partitions = (first_partition..end)
            .map(|index| {
                let leader = BrokerId(crate::net::advertise::leader_of(&shard.config, topic, index));
                let mut partition = DescribeTopicPartitionsResponsePartition::default();
                partition.partition_index = index;
                partition.leader_id = leader;
                partition.leader_epoch = 0;
                partition.replica_nodes = vec![leader];
                partition.isr_nodes = vec![leader];
                partition.eligible_leader_replicas = Some(Vec::new());
                partition.last_known_elr = Some(Vec::new());
                partition
            })
            .collect();
        remaining -= end - first_partition.min(end);
        response.topics.push(described);
        if end < partition_count {
            let mut cursor = Cursor::default();
            cursor.topic_name = TopicName(str_bytes(&name));
            cursor.partition_index = end;
            response.next_cursor = Some(cursor);
            break;
        }
    }
    response
}

fn error_topic(name: &str, error_code: i16) -> DescribeTopicPartitionsResponseTopic {
    let mut topic = DescribeTopicPartitionsResponseTopic::default();
    topic.name = Some(TopicName(str_bytes(name)));
    topic.error_code = error_code;
    topic
}
