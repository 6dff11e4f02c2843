//! DeleteGroups (key 42), versions 0-2: deletes empty groups and their
//! committed offsets (tombstones in `__consumer_offsets`); a group with
//! members gets NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND.

use std::rc::Rc;

use kafka_protocol::messages::{
    delete_groups_response::DeletableGroupResult, DeleteGroupsRequest, DeleteGroupsResponse,
};

use super::call_coordinator;
use crate::{
    group::{GroupCall, GroupReply},
    shard::Shard,
};

pub async fn handle(shard: &Rc<Shard>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut response = DeleteGroupsResponse::default();
    for group_id in request.groups_names {
        let call = GroupCall::Delete {
            group: group_id.0.to_string(),
        };
        let code = match call_coordinator(shard, &group_id.0, call).await {
            Ok(GroupReply::Deleted(code)) => code,
            Ok(_) => crate::protocol::error_code::COORDINATOR_NOT_AVAILABLE,
            Err(code) => code,
        };
        let mut result = DeletableGroupResult::default();
        result.group_id = group_id;
        result.error_code = code;
        response.results.push(result);
    }
    response
}
