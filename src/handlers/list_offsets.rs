//! ListOffsets (key 2), versions 1-10: earliest (-2), latest (-1), max
//! timestamp (-3, v7+), earliest local (-4, v8+: the log start, as there is
//! no tiered storage), latest tiered (-5, v9+: -1, nothing is tiered) and by
//! timestamp through the time index. v10's `timeout_ms` bounds remote
//! (tiered) reads, which weir never does.
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

/// First ListOffsets version whose partitions carry `leader_epoch`.
const LEADER_EPOCH_VERSION_MIN: i16 = 4;

pub async fn handle(shard: &Rc<Shard>, request: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
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
                            // The epoch of the offset found (every offset is
                            // epoch 0 on a single node); none when nothing
                            // was found. The field exists from v4 on, and
                            // kafka-protocol refuses to encode a non-default
                            // value in a version without it.
                            if version >= LEADER_EPOCH_VERSION_MIN && offset >= 0 {
                                partition.leader_epoch = 0;
                            }
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
