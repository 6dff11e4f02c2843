//! DescribeTransactions (key 65), version 0.
//!
//! The state of each named transactional id, from its coordinator shard:
//! state name, timeout, start time, producer id and epoch, and the
//! partitions of the open transaction. Unknown ids get
//! TRANSACTIONAL_ID_NOT_FOUND.

use std::rc::Rc;

use kafka_protocol::messages::{
    describe_transactions_response::{TopicData, TransactionState},
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId,
};

use super::{call_txn_coordinator, str_bytes};
use crate::{
    protocol::error_code,
    shard::Shard,
    txn::{DescribedTxn, TxnCall, TxnReply},
};

pub async fn handle(shard: &Rc<Shard>, request: DescribeTransactionsRequest) -> DescribeTransactionsResponse {
    let mut response = DescribeTransactionsResponse::default();
    for id in &request.transactional_ids {
        let transactional_id = id.to_string();
        let call = TxnCall::Describe {
            transactional_ids: vec![transactional_id.clone()],
        };
        let described = match call_txn_coordinator(shard, &transactional_id, call).await {
            Ok(TxnReply::Described(mut described)) if described.len() == 1 => Ok(described.remove(0)),
            Ok(_) => Err(error_code::UNKNOWN_SERVER_ERROR),
            Err(code) => Err(code),
        };
        let mut state = TransactionState::default();
        state.transactional_id = id.clone();
        state.producer_id = ProducerId(-1);
        state.producer_epoch = -1;
        state.transaction_start_time_ms = -1;
        match described {
            Ok(described) => fill(&mut state, described),
            Err(code) => state.error_code = code,
        }
        response.transaction_states.push(state);
    }
    response
}

fn fill(state: &mut TransactionState, described: DescribedTxn) {
    state.error_code = described.error_code;
    if described.error_code != error_code::NONE {
        return;
    }
    state.transaction_state = str_bytes(&described.state);
    state.transaction_timeout_ms = described.timeout_ms;
    state.transaction_start_time_ms = described.start_ms;
    state.producer_id = ProducerId(described.producer_id);
    state.producer_epoch = described.epoch;
    for (topic, partition) in described.partitions {
        match state.topics.last_mut() {
            Some(last) if *last.topic == *topic => last.partitions.push(partition),
            _ => {
                let mut data = TopicData::default();
                data.topic = str_bytes(&topic).into();
                data.partitions.push(partition);
                state.topics.push(data);
            }
        }
    }
}
