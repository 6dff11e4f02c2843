//! Heartbeat (key 12), versions 0-4: keeps a member's session alive and
//! tells it when a rebalance started (REBALANCE_IN_PROGRESS).

use std::rc::Rc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::call_coordinator;
use crate::{
    group::{GroupCall, GroupReply},
    protocol::error_code,
    shard::Shard,
};

pub async fn handle(shard: &Rc<Shard>, request: HeartbeatRequest) -> HeartbeatResponse {
    let group_id = request.group_id.0.to_string();
    match call_coordinator(shard, &group_id, GroupCall::Heartbeat { request }).await {
        Ok(GroupReply::Heartbeat(response)) => response,
        Ok(_) | Err(_) => {
            let mut response = HeartbeatResponse::default();
            response.error_code = error_code::COORDINATOR_NOT_AVAILABLE;
            response
        }
    }
}
