//! AddOffsetsToTxn (key 25), versions 0-4.
//!
//! Adds the group's `__consumer_offsets` partition to the transaction (the
//! partition TxnOffsetCommit will write to), so that ending the
//! transaction writes a marker there and its offset commits take effect
//! or are dropped with it.

use std::rc::Rc;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::{call_txn_coordinator, coordinator_shard};
use crate::{
    group::{coordinator::offsets_partitions, offsets_topic, partition_for, OFFSETS_TOPIC},
    protocol::error_code,
    shard::Shard,
    txn::{TxnCall, TxnReply},
};

pub async fn handle(shard: &Rc<Shard>, request: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse {
    let mut response = AddOffsetsToTxnResponse::default();
    response.error_code = add(shard, &request).await;
    response
}

async fn add(shard: &Rc<Shard>, request: &AddOffsetsToTxnRequest) -> i16 {
    let transactional_id = request.transactional_id.to_string();
    let group_id = request.group_id.to_string();
    if transactional_id.is_empty() {
        return error_code::INVALID_REQUEST;
    }
    if group_id.is_empty() {
        return error_code::INVALID_GROUP_ID;
    }
    // Makes sure `__consumer_offsets` exists (created on first group use).
    if let Err(code) = coordinator_shard(shard, offsets_topic(&shard.config), &group_id).await {
        return code;
    }
    let partition = partition_for(&group_id, offsets_partitions(shard));
    let call = TxnCall::AddPartitions {
        transactional_id: transactional_id.clone(),
        producer_id: request.producer_id.0,
        epoch: request.producer_epoch,
        partitions: vec![(OFFSETS_TOPIC.to_string(), partition)],
        verify_only: false,
        for_offsets: true,
    };
    match call_txn_coordinator(shard, &transactional_id, call).await {
        Ok(TxnReply::Partitions(results)) => results
            .iter()
            .map(|(_, code)| *code)
            .find(|code| *code != error_code::NONE)
            .unwrap_or(error_code::NONE),
        Ok(_) => error_code::UNKNOWN_SERVER_ERROR,
        Err(code) => code,
    }
}
