//! FindCoordinator (key 10), versions 0-4 (v4: batched keys).
//!
//! A single node coordinates every group (key type 0) and every
//! transactional id (key type 1). The coordinator inside it is the shard
//! owning the key's partition of `__consumer_offsets` or
//! `__transaction_state` (created on first use, as Kafka does); the answer
//! is that shard's broker (`net::advertise`): with `advertise_shards` the
//! client then talks to the coordinator shard directly, otherwise every
//! shard answers as the one broker and calls the coordinator shard
//! (`call_coordinator`, `call_txn_coordinator`). An internal topic that
//! cannot be created is COORDINATOR_NOT_AVAILABLE, which clients retry.

use kafka_protocol::messages::{
    find_coordinator_response::Coordinator, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse,
};

use std::rc::Rc;

use super::{coordinator_shard, str_bytes};
use crate::{net::advertise, protocol::error_code, shard::Shard};

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// The broker coordinating `key` of `key_type` (group or transaction).
async fn coordinator_of(shard: &Rc<Shard>, key_type: i8, key: &str) -> Result<advertise::Broker, i16> {
    if !shard.config.advertise_shards {
        // One broker: no need to find (or create) the partition here.
        return Ok(advertise::broker_of_shard(&shard.config, 0));
    }
    let topic = if key_type == KEY_TYPE_GROUP {
        crate::group::offsets_topic(&shard.config)
    } else {
        crate::txn::txn_state_topic(&shard.config)
    };
    let owner = coordinator_shard(shard, topic, key).await?;
    Ok(advertise::broker_of_shard(&shard.config, owner))
}

pub async fn handle(
    shard: &Rc<Shard>,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let keys = if version >= 4 {
        request.coordinator_keys.iter().map(|k| k.to_string()).collect()
    } else {
        vec![request.key.to_string()]
    };
    let mut coordinators = Vec::with_capacity(keys.len());
    for key in keys {
        let mut coordinator = Coordinator::default();
        coordinator.key = str_bytes(&key);
        let known_type = matches!(request.key_type, KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION);
        let found = if known_type && !key.is_empty() {
            Some(coordinator_of(shard, request.key_type, &key).await)
        } else {
            None
        };
        if let Some(Ok(broker)) = found {
            coordinator.node_id = BrokerId(broker.node_id);
            coordinator.host = str_bytes(&broker.host);
            coordinator.port = broker.port;
        } else if let Some(Err(code)) = found {
            coordinator.node_id = BrokerId(-1);
            coordinator.port = -1;
            coordinator.error_code = code;
            coordinator.error_message = Some(str_bytes("the coordinator's internal topic is not available"));
        } else {
            coordinator.node_id = BrokerId(-1);
            coordinator.port = -1;
            coordinator.error_code = if !known_type {
                error_code::INVALID_REQUEST
            } else if request.key_type == KEY_TYPE_GROUP {
                error_code::INVALID_GROUP_ID
            } else {
                error_code::INVALID_REQUEST
            };
            coordinator.error_message = Some(str_bytes(if known_type {
                "empty coordinator key"
            } else {
                "unknown coordinator key type"
            }));
        }
        coordinators.push(coordinator);
    }
    let mut response = FindCoordinatorResponse::default();
    if version >= 4 {
        response.coordinators = coordinators;
    } else {
        let single = coordinators.pop().expect("one key before v4");
        response.error_code = single.error_code;
        response.error_message = single.error_message;
        response.node_id = single.node_id;
        response.host = single.host;
        response.port = single.port;
    }
    response
}
