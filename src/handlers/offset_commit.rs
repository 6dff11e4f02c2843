//! OffsetCommit (key 8), versions 2-9: checked against the member's
//! generation (classic groups) or member epoch (KIP-848 groups, v9),
//! written durably to `__consumer_offsets`, then acknowledged.

use std::rc::Rc;

use kafka_protocol::messages::{
    offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic},
    OffsetCommitRequest, OffsetCommitResponse,
};

use super::call_coordinator;
use crate::{
    group::{GroupCall, GroupReply},
    shard::Shard,
};

pub async fn handle(shard: &Rc<Shard>, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let group_id = request.group_id.0.to_string();
    // Kept for the error answer: every partition gets the routing error.
    let asked: Vec<_> = request
        .topics
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.partitions.iter().map(|p| p.partition_index).collect::<Vec<_>>(),
            )
        })
        .collect();
    let code = match call_coordinator(shard, &group_id, GroupCall::Commit { request }).await {
        Ok(GroupReply::Commit(response)) => return response,
        Ok(_) => crate::protocol::error_code::COORDINATOR_NOT_AVAILABLE,
        Err(code) => code,
    };
    let results: Vec<_> = asked
        .into_iter()
        .map(|(name, partitions)| {
            (
                name.0,
                partitions
                    .into_iter()
                    .map(|index| (index, code))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    crate::commit_response!(
        OffsetCommitResponse,
        OffsetCommitResponseTopic,
        OffsetCommitResponsePartition,
        results
    )
}
