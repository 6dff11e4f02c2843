//! SyncGroup (key 14), versions 0-5: the leader's assignment in, each
//! member's assignment out, on the group's coordinator shard.

use std::rc::Rc;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::call_coordinator;
use crate::{
    group::{GroupCall, GroupReply},
    protocol::error_code,
    shard::Shard,
};

pub async fn handle(shard: &Rc<Shard>, request: SyncGroupRequest, version: i16) -> SyncGroupResponse {
    let group_id = request.group_id.0.to_string();
    match call_coordinator(shard, &group_id, GroupCall::Sync { version, request }).await {
        Ok(GroupReply::Sync(response)) => response,
        Ok(_) | Err(_) => {
            let mut response = SyncGroupResponse::default();
            response.error_code = error_code::COORDINATOR_NOT_AVAILABLE;
            response
        }
    }
}
