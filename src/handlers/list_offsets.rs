//! ListOffsets (key 2), versions 1-7: earliest (-2), latest (-1), max
//! timestamp (-3, v7) and by timestamp through the time index.

use std::rc::Rc;

use kafka_protocol::messages::{
    list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse},
    ListOffsetsRequest, ListOffsetsResponse,
};

use super::produce::log_error;
use crate::{
    protocol::error_code,
    shard::{
        messages::{ShardCall, ShardReply},
        Shard,
    },
};

pub async fn handle(shard: &Rc<Shard>, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let metadata = shard.metadata();
    let mut response = ListOffsetsResponse::default();
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let mut topic_response = ListOffsetsTopicResponse::default();
        topic_response.name = topic.name.clone();
        for requested in &topic.partitions {
            let index = requested.partition_index;
            let mut partition = ListOffsetsPartitionResponse::default();
            partition.partition_index = index;
            partition.offset = -1;
            partition.timestamp = -1;
            partition.leader_epoch = 0;
            match metadata.topic(&name).and_then(|t| t.shard_of(index)) {
                None => partition.error_code = error_code::UNKNOWN_TOPIC_OR_PARTITION,
                Some(owner) => {
                    let call = ShardCall::ListOffset {
                        topic: name.clone(),
                        partition: index,
                        timestamp: requested.timestamp,
                    };
                    match shard.call(owner, call).await {
                        ShardReply::Offset(Ok((offset, timestamp))) => {
                            partition.offset = offset;
                            partition.timestamp = timestamp;
                        }
                        ShardReply::Offset(Err(e)) => partition.error_code = log_error(&e).0,
                        _ => partition.error_code = error_code::UNKNOWN_TOPIC_OR_PARTITION,
                    }
                }
            }
            topic_response.partitions.push(partition);
        }
        response.topics.push(topic_response);
    }
    response
}
