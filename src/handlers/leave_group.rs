//! LeaveGroup (key 13), versions 0-5 (v3+: several members, by member id
//! or static instance id).

use std::rc::Rc;

use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::call_coordinator;
use crate::{
    group::{GroupCall, GroupReply},
    protocol::error_code,
    shard::Shard,
};

pub async fn handle(shard: &Rc<Shard>, request: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let group_id = request.group_id.0.to_string();
    match call_coordinator(shard, &group_id, GroupCall::Leave { version, request }).await {
        Ok(GroupReply::Leave(response)) => response,
        Ok(_) | Err(_) => {
            let mut response = LeaveGroupResponse::default();
            response.error_code = error_code::COORDINATOR_NOT_AVAILABLE;
            response
        }
    }
}
