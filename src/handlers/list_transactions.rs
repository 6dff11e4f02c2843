//! ListTransactions (key 66), versions 0-1.
//!
//! Every transactional id this broker coordinates, asked of every shard,
//! filtered by state names, producer ids and (v1) a minimum running time
//! of open transactions. State names weir does not know are listed back in
//! `unknown_state_filters`, as Kafka does.

use std::rc::Rc;

use kafka_protocol::messages::{
    list_transactions_response::TransactionState, ListTransactionsRequest, ListTransactionsResponse,
    ProducerId,
};

use super::str_bytes;
use crate::{
    protocol::error_code,
    shard::{
        messages::{ShardCall, ShardReply},
        Shard,
    },
    txn::{state::TxnState, TxnCall, TxnReply},
};

pub async fn handle(shard: &Rc<Shard>, request: ListTransactionsRequest) -> ListTransactionsResponse {
    let mut response = ListTransactionsResponse::default();
    let known: Vec<&str> = (0..=7)
        .filter_map(TxnState::from_code)
        .map(TxnState::name)
        .collect();
    let states: Vec<String> = request.state_filters.iter().map(|s| s.to_string()).collect();
    response.unknown_state_filters = states
        .iter()
        .filter(|s| !known.contains(&s.as_str()))
        .map(|s| str_bytes(s))
        .collect();
    let call = || TxnCall::List {
        states: states.clone(),
        producer_ids: request.producer_id_filters.iter().map(|p| p.0).collect(),
        duration_ms_min: request.duration_filter,
    };
    for owner in 0..shard.count {
        match shard.call(owner, ShardCall::Txn(call())).await {
            ShardReply::Txn(TxnReply::Listed(listed)) => {
                response.transaction_states.extend(listed.into_iter().map(|txn| {
                    let mut state = TransactionState::default();
                    state.transactional_id = str_bytes(&txn.transactional_id).into();
                    state.producer_id = ProducerId(txn.producer_id);
                    state.transaction_state = str_bytes(&txn.state);
                    state
                }));
            }
            _ => response.error_code = error_code::COORDINATOR_NOT_AVAILABLE,
        }
    }
    response
}
