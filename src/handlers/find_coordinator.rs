//! FindCoordinator (key 10), versions 0-4 (v4: batched keys).
//!
//! A single node coordinates every group (key type 0) and every
//! transactional id (key type 1): the answer is this broker. Inside it, the
//! owning shard is found per request (`call_coordinator`,
//! `call_txn_coordinator`).

use kafka_protocol::messages::{
    find_coordinator_response::Coordinator, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse,
};

use super::str_bytes;
use crate::{protocol::error_code, shard::Shard};

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub fn handle(shard: &Shard, request: FindCoordinatorRequest, version: i16) -> FindCoordinatorResponse {
    let (host, port) = shard.config.advertised_host_port();
    let answer = |key: &str| {
        let mut coordinator = Coordinator::default();
        coordinator.key = str_bytes(key);
        let known_type = matches!(request.key_type, KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION);
        if known_type && !key.is_empty() {
            coordinator.node_id = BrokerId(shard.config.node_id);
            coordinator.host = str_bytes(&host);
            coordinator.port = port;
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
        coordinator
    };
    let mut response = FindCoordinatorResponse::default();
    if version >= 4 {
        response.coordinators = request.coordinator_keys.iter().map(|k| answer(k)).collect();
    } else {
        let single = answer(&request.key);
        response.error_code = single.error_code;
        response.error_message = single.error_message;
        response.node_id = single.node_id;
        response.host = single.host;
        response.port = single.port;
    }
    response
}
