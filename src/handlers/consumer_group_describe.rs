//! ConsumerGroupDescribe (key 69), versions 0-1: KIP-848 groups with their
//! epochs, assignor, and each member's current and target assignment.

use std::rc::Rc;

use kafka_protocol::messages::{
    consumer_group_describe_response::DescribedGroup, ConsumerGroupDescribeRequest,
    ConsumerGroupDescribeResponse,
};

use super::call_coordinator;
use crate::{
    group::{GroupCall, GroupReply},
    shard::Shard,
};

pub async fn handle(
    shard: &Rc<Shard>,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let mut response = ConsumerGroupDescribeResponse::default();
    for group_id in request.group_ids {
        let call = GroupCall::ConsumerDescribe {
            group: group_id.0.to_string(),
        };
        let described = match call_coordinator(shard, &group_id.0, call).await {
            Ok(GroupReply::ConsumerDescribe(described)) => *described,
            Ok(_) | Err(_) => {
                let mut failed = DescribedGroup::default();
                failed.group_id = group_id;
                failed.error_code = crate::protocol::error_code::COORDINATOR_NOT_AVAILABLE;
                failed
            }
        };
        response.groups.push(described);
    }
    response
}
