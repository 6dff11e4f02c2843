//! EndTxn (key 26), versions 0-4.
//!
//! Commits or aborts the producer's transaction: the coordinator stores
//! PrepareCommit/PrepareAbort, writes a marker into every partition of the
//! transaction, stores the completion, and only then answers, so the next
//! transaction of the producer never finds the previous one unfinished.

use std::rc::Rc;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};

use super::call_txn_coordinator;
use crate::{
    protocol::error_code,
    shard::Shard,
    txn::{TxnCall, TxnReply},
};

pub async fn handle(shard: &Rc<Shard>, request: EndTxnRequest) -> EndTxnResponse {
    let mut response = EndTxnResponse::default();
    response.producer_id = ProducerId(-1);
    response.producer_epoch = -1;
    let transactional_id = request.transactional_id.to_string();
    if transactional_id.is_empty() {
        response.error_code = error_code::INVALID_REQUEST;
        return response;
    }
    let call = TxnCall::EndTxn {
        transactional_id: transactional_id.clone(),
        producer_id: request.producer_id.0,
        epoch: request.producer_epoch,
        commit: request.committed,
    };
    response.error_code = match call_txn_coordinator(shard, &transactional_id, call).await {
        Ok(TxnReply::Ended(code)) => code,
        Ok(_) => error_code::UNKNOWN_SERVER_ERROR,
        Err(code) => code,
    };
    response
}
