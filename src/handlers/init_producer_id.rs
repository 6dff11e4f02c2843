//! InitProducerId (key 22), versions 0-5.
//!
//! Without a transactional id (the idempotent producer) every call gets a
//! producer id never handed out before, at epoch 0, whatever producer id
//! and epoch the request carries (as Kafka does: a client that lost its
//! sequence state starts over with a fresh id). Ids come from the shard's
//! block (`shard::producer_ids`), so the common case crosses no core.
//!
//! With a transactional id the transaction coordinator of that id answers
//! (`txn::coordinator`): the id keeps its producer id and gets the next
//! epoch, fencing the previous producer and aborting its open transaction.

use std::rc::Rc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::call_txn_coordinator;
use crate::{
    protocol::error_code,
    shard::{producer_ids::next_producer_id, Shard},
    txn::{TxnCall, TxnReply},
};

pub async fn handle(shard: &Rc<Shard>, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    response.producer_id = ProducerId(-1);
    response.producer_epoch = -1;
    let outcome = match &request.transactional_id {
        Some(id) if id.is_empty() => Err(error_code::INVALID_REQUEST),
        Some(id) => {
            let call = TxnCall::InitProducerId {
                transactional_id: id.to_string(),
                timeout_ms: request.transaction_timeout_ms,
                producer_id: request.producer_id.0,
                epoch: request.producer_epoch,
            };
            match call_txn_coordinator(shard, id, call).await {
                Ok(TxnReply::ProducerId {
                    error_code: error_code::NONE,
                    producer_id,
                    epoch,
                }) => Ok((producer_id, epoch)),
                Ok(TxnReply::ProducerId { error_code, .. }) => Err(error_code),
                Ok(_) => Err(error_code::UNKNOWN_SERVER_ERROR),
                Err(code) => Err(code),
            }
        }
        None => next_producer_id(shard)
            .await
            .map(|id| (id, 0))
            .map_err(|message| {
                crate::warn_limited!(
                    "InitProducerId failed",
                    "shard {}: InitProducerId: {message}",
                    shard.id
                );
                error_code::COORDINATOR_NOT_AVAILABLE
            }),
    };
    match outcome {
        Ok((producer_id, epoch)) => {
            response.producer_id = ProducerId(producer_id);
            response.producer_epoch = epoch;
        }
        Err(code) => response.error_code = code,
    }
    response
}
