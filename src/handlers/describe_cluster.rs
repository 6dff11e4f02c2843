//! DescribeCluster (key 60), versions 0-2: this node as the whole cluster.
//!
//! What the Java Admin's `describeCluster` and Kafka's tools ask first. The
//! answer lists this node's brokers at their advertised addresses, as
//! Metadata does (one, or one per shard with `advertise_shards`), with
//! shard 0's as the controller (a single node is its own quorum).
//! `endpoint_type` (v1+) 1 asks for brokers; 2 asks for controllers, which a
//! broker endpoint refuses with MISMATCHED_ENDPOINT_TYPE, and any other value
//! gets UNSUPPORTED_ENDPOINT_TYPE, as Kafka answers. Authorized operations
//! are not computed (no authorizer yet): the field keeps Kafka's "not
//! requested" sentinel.

use std::rc::Rc;

use kafka_protocol::messages::{
    describe_cluster_response::DescribeClusterBroker, BrokerId, DescribeClusterRequest,
    DescribeClusterResponse,
};

use super::str_bytes;
use crate::{net::advertise, protocol::error_code, shard::Shard};

/// `endpoint_type` values of DescribeCluster v1+.
const ENDPOINT_TYPE_BROKER: i8 = 1;
const ENDPOINT_TYPE_CONTROLLER: i8 = 2;
/// First version that carries `endpoint_type` in the response.
const ENDPOINT_TYPE_VERSION_MIN: i16 = 1;

pub fn handle(shard: &Rc<Shard>, request: &DescribeClusterRequest, version: i16) -> DescribeClusterResponse {
    let mut response = DescribeClusterResponse::default();
    // Before v1 the request has no endpoint type: it is for brokers.
    let endpoint_type = if version >= ENDPOINT_TYPE_VERSION_MIN {
        request.endpoint_type
    } else {
        ENDPOINT_TYPE_BROKER
    };
    if version >= ENDPOINT_TYPE_VERSION_MIN {
        response.endpoint_type = endpoint_type;
    }
    match endpoint_type {
        ENDPOINT_TYPE_BROKER => {}
        ENDPOINT_TYPE_CONTROLLER => {
            response.error_code = error_code::MISMATCHED_ENDPOINT_TYPE;
            response.error_message = Some(str_bytes(
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
            ));
            return response;
        }
        other => {
            response.error_code = error_code::UNSUPPORTED_ENDPOINT_TYPE;
            response.error_message = Some(str_bytes(&format!("Unsupported endpoint type {other}")));
            return response;
        }
    }
    response.brokers = advertise::brokers(&shard.config, shard.count)
        .into_iter()
        .map(|advertised| {
            let mut broker = DescribeClusterBroker::default();
            broker.broker_id = BrokerId(advertised.node_id);
            broker.host = str_bytes(&advertised.host);
            broker.port = advertised.port;
            broker
        })
        .collect();
    response.cluster_id = str_bytes(&shard.metadata().cluster_id);
    response.controller_id = BrokerId(advertise::node_of_shard(&shard.config, 0));
    response
}
