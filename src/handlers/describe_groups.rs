//! DescribeGroups (key 15), versions 0-6: state, protocol and members of
//! each group, asked of its coordinator shard. An unknown (or deleted) group
//! is reported as Dead; from v6 on also with GROUP_ID_NOT_FOUND and a
//! message (KIP-1043), as Kafka does.

use std::rc::Rc;

use kafka_protocol::messages::{
    describe_groups_response::{DescribedGroup, DescribedGroupMember},
    DescribeGroupsRequest, DescribeGroupsResponse,
};

use super::{call_coordinator, str_bytes};
use crate::{
    group::{state::GroupState, GroupCall, GroupReply},
    protocol::error_code,
    shard::Shard,
};

/// AuthorizedOperations when the client did not ask for them.
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

/// First version that reports an unknown group as GROUP_ID_NOT_FOUND.
const GROUP_ID_NOT_FOUND_VERSION_MIN: i16 = 6;

pub async fn handle(
    shard: &Rc<Shard>,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let mut response = DescribeGroupsResponse::default();
    for group_id in request.groups {
        let mut entry = DescribedGroup::default();
        entry.group_id = group_id.clone();
        entry.authorized_operations = OPERATIONS_NOT_REQUESTED;
        let call = GroupCall::Describe {
            group: group_id.0.to_string(),
        };
        match call_coordinator(shard, &group_id.0, call).await {
            Ok(GroupReply::Describe(described)) => {
                entry.group_state = str_bytes(&described.state);
                if version >= GROUP_ID_NOT_FOUND_VERSION_MIN && described.state == GroupState::Dead.name() {
                    entry.error_code = error_code::GROUP_ID_NOT_FOUND;
                    entry.error_message = Some(str_bytes(&format!("Group {} not found.", group_id.0)));
                }
                entry.protocol_type = str_bytes(&described.protocol_type);
                entry.protocol_data = str_bytes(&described.protocol);
                entry.members = described
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut member = DescribedGroupMember::default();
                        member.member_id = str_bytes(&m.member_id);
                        member.group_instance_id = m.group_instance_id.as_deref().map(str_bytes);
                        member.client_id = str_bytes(&m.client_id);
                        member.client_host = str_bytes(&m.client_host);
                        member.member_metadata = m.metadata;
                        member.member_assignment = m.assignment;
                        member
                    })
                    .collect();
            }
            Ok(_) => entry.error_code = error_code::COORDINATOR_NOT_AVAILABLE,
            Err(code) => entry.error_code = code,
        }
        response.groups.push(entry);
    }
    response
}
