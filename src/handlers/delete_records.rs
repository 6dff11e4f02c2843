//! DeleteRecords (key 21), versions 0-2: moves partitions' log start
//! offsets up (offset -1: to the high watermark) and answers the new low
//! watermarks. Each partition's owner makes its new start durable before
//! answering and deletes the segments wholly below it (`log::retention`).
//! As in Kafka, internal topics are refused (INVALID_TOPIC_EXCEPTION) and
//! so are topics whose cleanup.policy lacks delete (POLICY_VIOLATION).

use std::rc::Rc;

use kafka_protocol::messages::{
    delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult},
    DeleteRecordsRequest, DeleteRecordsResponse,
};

use super::produce::log_error;
use crate::{
    metadata::TopicConfig,
    protocol::error_code,
    shard::{
        messages::{ShardCall, ShardReply},
        Shard,
    },
};

pub async fn handle(shard: &Rc<Shard>, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let metadata = shard.metadata();
    let mut response = DeleteRecordsResponse::default();
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let topic_metadata = metadata.topic(&name);
        let refusal = match topic_metadata {
            None => Some(error_code::UNKNOWN_TOPIC_OR_PARTITION),
            Some(_) if name == crate::group::OFFSETS_TOPIC || name == crate::txn::TXN_STATE_TOPIC => {
                Some(error_code::INVALID_TOPIC_EXCEPTION)
            }
            Some(t)
                if !TopicConfig::resolve(&shard.config, &t.configs)
                    .cleanup_policy
                    .delete =>
            {
                Some(error_code::POLICY_VIOLATION)
            }
            Some(_) => None,
        };
        let mut result = DeleteRecordsTopicResult::default();
        result.name = topic.name.clone();
        for partition in &topic.partitions {
            let mut answer = DeleteRecordsPartitionResult::default();
            answer.partition_index = partition.partition_index;
            answer.low_watermark = -1;
            let owner = topic_metadata.and_then(|t| t.shard_of(partition.partition_index));
            answer.error_code = match (refusal, owner) {
                (Some(code), _) => code,
                (None, None) => error_code::UNKNOWN_TOPIC_OR_PARTITION,
                (None, Some(owner)) => {
                    let call = ShardCall::DeleteRecords {
                        topic: name.clone(),
                        partition: partition.partition_index,
                        offset: partition.offset,
                    };
                    match shard.call(owner, call).await {
                        ShardReply::LowWatermark(Ok(low_watermark)) => {
                            answer.low_watermark = low_watermark;
                            error_code::NONE
                        }
                        ShardReply::LowWatermark(Err(e)) => log_error(&e).0,
                        ShardReply::UnknownPartition => error_code::UNKNOWN_TOPIC_OR_PARTITION,
                        _ => error_code::NOT_LEADER_OR_FOLLOWER,
                    }
                }
            };
            result.partitions.push(answer);
        }
        response.topics.push(result);
    }
    response
}
