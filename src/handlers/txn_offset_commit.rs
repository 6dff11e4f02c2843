//! TxnOffsetCommit (key 28), versions 0-4.
//!
//! Offset commits inside a transaction (consume-transform-produce): sent to
//! the group's coordinator, written to the group's `__consumer_offsets`
//! partition as part of the producer's transaction, and applied only when
//! the transaction's COMMIT marker lands there (dropped on ABORT). A fenced
//! producer gets INVALID_PRODUCER_EPOCH; member checks are as OffsetCommit's
//! when the request names a member (v3+).

use std::rc::Rc;

use kafka_protocol::messages::{
    txn_offset_commit_response::{TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic},
    TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};

use super::call_coordinator;
use crate::{
    group::{GroupCall, GroupReply},
    protocol::error_code,
    shard::Shard,
};

pub async fn handle(shard: &Rc<Shard>, request: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let group_id = request.group_id.to_string();
    let failed = |request: &TxnOffsetCommitRequest, code: i16| {
        let results: Vec<_> = request
            .topics
            .iter()
            .map(|t| {
                (
                    t.name.0.clone(),
                    t.partitions
                        .iter()
                        .map(|p| (p.partition_index, code))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        crate::commit_response!(
            TxnOffsetCommitResponse,
            TxnOffsetCommitResponseTopic,
            TxnOffsetCommitResponsePartition,
            results
        )
    };
    if group_id.is_empty() {
        return failed(&request, error_code::INVALID_GROUP_ID);
    }
    let call = GroupCall::TxnCommit {
        request: request.clone(),
    };
    match call_coordinator(shard, &group_id, call).await {
        Ok(GroupReply::TxnCommit(response)) => response,
        Ok(_) => failed(&request, error_code::UNKNOWN_SERVER_ERROR),
        Err(code) => failed(&request, code),
    }
}
