//! ConsumerGroupHeartbeat (key 68), versions 0-1: the KIP-848 consumer
//! group protocol. Members join, heartbeat and leave with this one API;
//! the coordinator computes assignments (`crate::group::consumer`).

use std::rc::Rc;

use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};

use super::{call_coordinator, str_bytes};
use crate::{
    group::{GroupCall, GroupReply},
    protocol::error_code,
    shard::Shard,
};

pub async fn handle(
    shard: &Rc<Shard>,
    request: ConsumerGroupHeartbeatRequest,
    client_id: String,
    client_host: String,
) -> ConsumerGroupHeartbeatResponse {
    let group_id = request.group_id.0.to_string();
    let call = GroupCall::ConsumerHeartbeat {
        request,
        client_id,
        client_host,
    };
    match call_coordinator(shard, &group_id, call).await {
        Ok(GroupReply::ConsumerHeartbeat(response)) => response,
        Ok(_) | Err(_) => {
            let mut response = ConsumerGroupHeartbeatResponse::default();
            response.error_code = error_code::COORDINATOR_NOT_AVAILABLE;
            response.error_message = Some(str_bytes("group coordinator unavailable"));
            response.member_epoch = -1;
            response
        }
    }
}
