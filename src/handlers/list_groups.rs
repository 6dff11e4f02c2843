//! ListGroups (key 16), versions 0-5: every group of every shard, filtered
//! by state (v4+) and type (v5+: "classic" or "consumer").

use std::rc::Rc;

use kafka_protocol::messages::{
    list_groups_response::ListedGroup, GroupId, ListGroupsRequest, ListGroupsResponse,
};

use super::str_bytes;
use crate::{
    group::{GroupCall, GroupReply},
    shard::{
        messages::{ShardCall, ShardReply},
        Shard,
    },
};

pub async fn handle(shard: &Rc<Shard>, request: ListGroupsRequest) -> ListGroupsResponse {
    let mut response = ListGroupsResponse::default();
    let states: Vec<String> = request.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = request.types_filter.iter().map(|s| s.to_lowercase()).collect();
    for owner in 0..shard.count {
        let ShardReply::Group(GroupReply::List(groups)) =
            shard.call(owner, ShardCall::Group(GroupCall::List)).await
        else {
            response.error_code = crate::protocol::error_code::COORDINATOR_NOT_AVAILABLE;
            continue;
        };
        for group in groups {
            if !states.is_empty() && !states.contains(&group.state.to_lowercase()) {
                continue;
            }
            if !types.is_empty() && !types.iter().any(|t| t == group.group_type) {
                continue;
            }
            let mut listed = ListedGroup::default();
            listed.group_id = GroupId(str_bytes(&group.group_id));
            listed.protocol_type = str_bytes(&group.protocol_type);
            listed.group_state = str_bytes(&group.state);
            listed.group_type = str_bytes(group.group_type);
            response.groups.push(listed);
        }
    }
    response
}
