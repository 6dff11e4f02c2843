//! ListOffsets (key 2), versions 1-7: earliest (-2), latest (-1), max
//! timestamp (-3, v7) and by timestamp through the time index.
//!
//! `isolation_level` (v2+): under read_committed (1) latest is the last
//! stable offset instead of the high watermark, and a timestamp or max
//! timestamp lookup answers only an offset below it (else -1), as Kafka
//! does, so a read_committed consumer never positions itself inside an open
//! transaction's data. Any other level than 0 or 1 is INVALID_REQUEST on
//! every partition.

use std::rc::Rc;

use kafka_protocol::messages::{
    list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse},
    ListOffsetsRequest, ListOffsetsResponse,
};

use super::produce::log_error;
use crate::{
    log::read::Isolation,
    protocol::error_code,
    shard::{
        messages::{ShardCall, ShardReply},
        Shard,
    },
};

pub async fn handle(shard: &Rc<Shard>, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let metadata = shard.metadata();
    // Not sent before v2: kafka-protocol leaves it 0 (read_uncommitted).
    let isolation = Isolation::from_level(request.isolation_level);
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
            let owner = metadata.topic(&name).and_then(|t| t.shard_of(index));
            match (owner, isolation) {
                (None, _) => partition.error_code = error_code::UNKNOWN_TOPIC_OR_PARTITION,
                (Some(_), None) => partition.error_code = error_code::INVALID_REQUEST,
                (Some(owner), Some(isolation)) => {
                    let call = ShardCall::ListOffset {
                        topic: name.clone(),
                        partition: index,
                        timestamp: requested.timestamp,
                        isolation,
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
