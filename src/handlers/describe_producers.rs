//! DescribeProducers (key 61), version 0.
//!
//! For each partition, the producers its owning shard tracks (idempotence
//! and transaction state): id, epoch, last sequence, last timestamp,
//! coordinator epoch and the first offset of the open transaction (-1 when
//! none), as `kafka-transactions.sh describe-producers` shows them.

use std::rc::Rc;

use kafka_protocol::messages::{
    describe_producers_response::{PartitionResponse, ProducerState, TopicResponse},
    DescribeProducersRequest, DescribeProducersResponse, ProducerId,
};

use super::str_bytes;
use crate::{
    protocol::error_code,
    shard::{
        messages::{ShardCall, ShardReply},
        Shard,
    },
};

pub async fn handle(shard: &Rc<Shard>, request: DescribeProducersRequest) -> DescribeProducersResponse {
    let metadata = shard.metadata();
    let mut response = DescribeProducersResponse::default();
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let mut topic_response = TopicResponse::default();
        topic_response.name = topic.name.clone();
        for &index in &topic.partition_indexes {
            let mut partition = PartitionResponse::default();
            partition.partition_index = index;
            let owner = metadata.topic(&name).and_then(|t| t.shard_of(index));
            let reply = match owner {
                Some(owner) => {
                    let call = ShardCall::DescribeProducers {
                        topic: name.clone(),
                        partition: index,
                    };
                    shard.call(owner, call).await
                }
                None => ShardReply::UnknownPartition,
            };
            match reply {
                ShardReply::Producers(producers) => {
                    partition.active_producers = producers
                        .into_iter()
                        .map(|(id, entry)| {
                            let mut state = ProducerState::default();
                            state.producer_id = ProducerId(id);
                            state.producer_epoch = i32::from(entry.epoch);
                            state.last_sequence = entry.batches.back().map_or(-1, |b| b.last_sequence);
                            state.last_timestamp = entry.last_timestamp_ms;
                            state.coordinator_epoch = entry.coordinator_epoch;
                            state.current_txn_start_offset = entry.transaction_first_offset.unwrap_or(-1);
                            state
                        })
                        .collect();
                }
                ShardReply::UnknownPartition => {
                    partition.error_code = error_code::UNKNOWN_TOPIC_OR_PARTITION;
                    partition.error_message = Some(str_bytes(&format!("no partition {name}-{index}")));
                }
                _ => {
                    partition.error_code = error_code::NOT_LEADER_OR_FOLLOWER;
                    partition.error_message = Some(str_bytes("owning shard unavailable"));
                }
            }
            topic_response.partitions.push(partition);
        }
        response.topics.push(topic_response);
    }
    response
}
