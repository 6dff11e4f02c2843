//! JoinGroup (key 11), versions 0-9: routed to the group's coordinator
//! shard, where the member waits until the rebalance completes
//! (`crate::group::coordinator`).

use std::rc::Rc;

use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

use super::{call_coordinator, str_bytes};
use crate::{
    group::{GroupCall, GroupReply},
    shard::Shard,
};

pub async fn handle(
    shard: &Rc<Shard>,
    request: JoinGroupRequest,
    version: i16,
    client_id: String,
    client_host: String,
) -> JoinGroupResponse {
    let group_id = request.group_id.0.to_string();
    let member_id = request.member_id.clone();
    let call = GroupCall::Join {
        version,
        request,
        client_id,
        client_host,
    };
    match call_coordinator(shard, &group_id, call).await {
        Ok(GroupReply::Join(response)) => response,
        Ok(_) | Err(_) => {
            let mut response = JoinGroupResponse::default();
            response.error_code = crate::protocol::error_code::COORDINATOR_NOT_AVAILABLE;
            response.generation_id = -1;
            response.member_id = member_id;
            response.leader = str_bytes("");
            response
        }
    }
}
