//! InitProducerId (key 22), versions 0-5.
//!
//! Without a transactional id (the idempotent producer) every call gets a
//! producer id never handed out before, at epoch 0, whatever producer id
//! and epoch the request carries (as Kafka does: a client that lost its
//! sequence state starts over with a fresh id). Ids come from the shard's
//! block (`shard::producer_ids`), so the common case crosses no core.
//! Transactional ids are answered by the transaction coordinator, which is
//! not built yet: COORDINATOR_NOT_AVAILABLE until then.

use std::rc::Rc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::{
    protocol::error_code,
    shard::{producer_ids::next_producer_id, Shard},
};

pub async fn handle(shard: &Rc<Shard>, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    response.producer_id = ProducerId(-1);
    response.producer_epoch = -1;
    if request.transactional_id.is_some() {
        response.error_code = error_code::COORDINATOR_NOT_AVAILABLE;
        return response;
    }
    match next_producer_id(shard).await {
        Ok(id) => {
            response.producer_id = ProducerId(id);
            response.producer_epoch = 0;
        }
        Err(message) => {
            log::warn!("shard {}: InitProducerId: {message}", shard.id);
            response.error_code = error_code::COORDINATOR_NOT_AVAILABLE;
        }
    }
    response
}
