//! AddPartitionsToTxn (key 24), versions 0-4.
//!
//! Versions 0-3 (clients) name one transaction; version 4 (KIP-890, used
//! between brokers) batches several and may only verify membership. Each
//! transaction is handled by its coordinator shard; the answer is one
//! error code per partition: UNKNOWN_TOPIC_OR_PARTITION for partitions that
//! do not exist (the others then OPERATION_NOT_ATTEMPTED), PRODUCER_FENCED
//! or INVALID_PRODUCER_ID_MAPPING for a producer that is not the id's
//! current one, CONCURRENT_TRANSACTIONS while the previous transaction's
//! markers are being written.

use std::rc::Rc;

use kafka_protocol::messages::{
    add_partitions_to_txn_request::AddPartitionsToTxnTopic,
    add_partitions_to_txn_response::{
        AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
    },
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
};

use super::{call_txn_coordinator, str_bytes};
use crate::{
    protocol::error_code,
    shard::Shard,
    txn::{TxnCall, TxnReply},
};

pub async fn handle(
    shard: &Rc<Shard>,
    request: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let mut response = AddPartitionsToTxnResponse::default();
    if version <= 3 {
        response.results_by_topic_v3_and_below = add(
            shard,
            request.v3_and_below_transactional_id.to_string(),
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
            &request.v3_and_below_topics,
            false,
        )
        .await;
        return response;
    }
    for transaction in &request.transactions {
        let mut result = AddPartitionsToTxnResult::default();
        result.transactional_id = transaction.transactional_id.clone();
        result.topic_results = add(
            shard,
            transaction.transactional_id.to_string(),
            transaction.producer_id.0,
            transaction.producer_epoch,
            &transaction.topics,
            transaction.verify_only,
        )
        .await;
        response.results_by_transaction.push(result);
    }
    response
}

async fn add(
    shard: &Rc<Shard>,
    transactional_id: String,
    producer_id: i64,
    epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let partitions: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect();
    let results = if transactional_id.is_empty() {
        partitions
            .iter()
            .map(|p| (p.clone(), error_code::INVALID_REQUEST))
            .collect()
    } else {
        let call = TxnCall::AddPartitions {
            transactional_id: transactional_id.clone(),
            producer_id,
            epoch,
            partitions: partitions.clone(),
            verify_only,
            for_offsets: false,
        };
        match call_txn_coordinator(shard, &transactional_id, call).await {
            Ok(TxnReply::Partitions(results)) => results,
            Ok(_) => partitions
                .iter()
                .map(|p| (p.clone(), error_code::UNKNOWN_SERVER_ERROR))
                .collect(),
            Err(code) => partitions.iter().map(|p| (p.clone(), code)).collect(),
        }
    };
    topic_results(results)
}

/// Per-partition codes grouped by topic, in the order they came.
fn topic_results(results: Vec<((String, i32), i16)>) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut topics: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for ((topic, partition), code) in results {
        let mut result = AddPartitionsToTxnPartitionResult::default();
        result.partition_index = partition;
        result.partition_error_code = code;
        match topics.last_mut() {
            Some(last) if *last.name == *topic => last.results_by_partition.push(result),
            _ => {
                let mut entry = AddPartitionsToTxnTopicResult::default();
                entry.name = str_bytes(&topic).into();
                entry.results_by_partition.push(result);
                topics.push(entry);
            }
        }
    }
    topics
}
