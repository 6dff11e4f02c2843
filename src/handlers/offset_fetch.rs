//! OffsetFetch (key 9), versions 1-9: committed offsets of one group
//! (v1-v7) or of several groups (v8+); partitions without a commit get -1.
//! The member id and epoch of v9 are not checked.
//! `topics` null (v2+) asks for every committed partition.

use std::rc::Rc;

use kafka_protocol::messages::{
    offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
        OffsetFetchResponseTopic, OffsetFetchResponseTopics,
    },
    OffsetFetchRequest, OffsetFetchResponse, TopicName,
};

use super::{call_coordinator, str_bytes};
use crate::{
    group::{records::CommittedOffset, GroupCall, GroupReply},
    shard::Shard,
};

type Committed = Vec<(String, i32, Option<CommittedOffset>)>;

async fn fetch(
    shard: &Rc<Shard>,
    group: String,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Committed, i16> {
    match call_coordinator(shard, &group.clone(), GroupCall::FetchOffsets { group, topics }).await? {
        GroupReply::Offsets(offsets) => Ok(offsets),
        _ => Err(crate::protocol::error_code::COORDINATOR_NOT_AVAILABLE),
    }
}

type TopicOffsets = (String, Vec<(i32, Option<CommittedOffset>)>);

/// Groups `(topic, partition, committed)` by topic, keeping first-seen order.
fn by_topic(offsets: Committed) -> Vec<TopicOffsets> {
    let mut topics: Vec<TopicOffsets> = Vec::new();
    for (topic, partition, committed) in offsets {
        match topics.iter_mut().find(|(name, _)| *name == topic) {
            Some((_, partitions)) => partitions.push((partition, committed)),
            None => topics.push((topic, vec![(partition, committed)])),
        }
    }
    topics
}

fn values(committed: &Option<CommittedOffset>) -> (i64, i32, Option<kafka_protocol::protocol::StrBytes>) {
    match committed {
        Some(c) => (c.offset, c.leader_epoch, Some(str_bytes(&c.metadata))),
        None => (-1, -1, Some(str_bytes(""))),
    }
}

/// Builds the response's topics from committed offsets; v8+ and older
/// versions use different (same-shaped) types, hence the constructors.
fn topics_of<T, P>(
    offsets: Committed,
    topic: impl Fn(TopicName, Vec<P>) -> T,
    partition: impl Fn(i32, i64, i32, Option<kafka_protocol::protocol::StrBytes>) -> P,
) -> Vec<T> {
    by_topic(offsets)
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .iter()
                .map(|(index, committed)| {
                    let (offset, epoch, metadata) = values(committed);
                    partition(*index, offset, epoch, metadata)
                })
                .collect();
            topic(TopicName(str_bytes(&name)), partitions)
        })
        .collect()
}

pub async fn handle(shard: &Rc<Shard>, request: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    if version >= 8 {
        for group in request.groups {
            let topics = group.topics.map(|topics| {
                topics
                    .into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            let mut entry = OffsetFetchResponseGroup::default();
            entry.group_id = group.group_id.clone();
            match fetch(shard, group.group_id.0.to_string(), topics).await {
                Ok(offsets) => {
                    entry.topics = topics_of(
                        offsets,
                        |name, partitions| {
                            let mut topic = OffsetFetchResponseTopics::default();
                            topic.name = name;
                            topic.partitions = partitions;
                            topic
                        },
                        |index, offset, epoch, metadata| {
                            let mut partition = OffsetFetchResponsePartitions::default();
                            partition.partition_index = index;
                            partition.committed_offset = offset;
                            partition.committed_leader_epoch = epoch;
                            partition.metadata = metadata;
                            partition
                        },
                    );
                }
                Err(code) => entry.error_code = code,
            }
            response.groups.push(entry);
        }
        return response;
    }
    let topics = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    match fetch(shard, request.group_id.0.to_string(), topics).await {
        Ok(offsets) => {
            response.topics = topics_of(
                offsets,
                |name, partitions| {
                    let mut topic = OffsetFetchResponseTopic::default();
                    topic.name = name;
                    topic.partitions = partitions;
                    topic
                },
                |index, offset, epoch, metadata| {
                    let mut partition = OffsetFetchResponsePartition::default();
                    partition.partition_index = index;
                    partition.committed_offset = offset;
                    partition.committed_leader_epoch = epoch;
                    partition.metadata = metadata;
                    partition
                },
            );
        }
        Err(code) => response.error_code = code,
    }
    response
}
