//! OffsetDelete (key 47), version 0: deletes a group's committed offsets
//! of topics its members are not subscribed to (else
//! GROUP_SUBSCRIBED_TO_TOPIC per partition).

use std::rc::Rc;

use kafka_protocol::messages::{
    offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic},
    OffsetDeleteRequest, OffsetDeleteResponse, TopicName,
};

use super::{call_coordinator, str_bytes};
use crate::{
    group::{GroupCall, GroupReply},
    shard::Shard,
};

pub async fn handle(shard: &Rc<Shard>, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let mut response = OffsetDeleteResponse::default();
    let topics: Vec<(String, Vec<i32>)> = request
        .topics
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let call = GroupCall::DeleteOffsets {
        group: request.group_id.0.to_string(),
        topics,
    };
    let results = match call_coordinator(shard, &request.group_id.0, call).await {
        Ok(GroupReply::OffsetsDeleted(Ok(results))) => results,
        Ok(GroupReply::OffsetsDeleted(Err(code))) | Err(code) => {
            response.error_code = code;
            return response;
        }
        Ok(_) => {
            response.error_code = crate::protocol::error_code::COORDINATOR_NOT_AVAILABLE;
            return response;
        }
    };
    for (name, partition, code) in results {
        let index = match response.topics.iter().position(|t| t.name.0.as_str() == name) {
            Some(index) => index,
            None => {
                let mut topic = OffsetDeleteResponseTopic::default();
                topic.name = TopicName(str_bytes(&name));
                response.topics.push(topic);
                response.topics.len() - 1
            }
        };
        let mut entry = OffsetDeleteResponsePartition::default();
        entry.partition_index = partition;
        entry.error_code = code;
        response.topics[index].partitions.push(entry);
    }
    response
}
