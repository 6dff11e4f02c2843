//! Kafka API handlers, one file per API, and the table of versions weir
//! serves. A handler runs on the shard that accepted the connection; it
//! routes partition work to the owning shard through [`Shard::call`] and
//! never holds shard state across an `.await`.

pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_topics;
pub mod describe_configs;
pub mod fetch;
pub mod list_offsets;
pub mod metadata;
pub mod produce;

use std::rc::Rc;

use kafka_protocol::{
    messages::{ApiKey, RequestKind, ResponseKind},
    protocol::StrBytes,
};

use crate::{
    protocol::{self, error_code, Part, Request},
    shard::{
        messages::{AdminCall, AdminResult, ShardCall, ShardReply},
        Shard,
    },
};

/// (API, lowest version advertised, highest version advertised). Produce
/// advertises 0 because librdkafka requires it; versions 0-2 (old message
/// formats) are refused by closing the connection.
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 12),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
];

/// Lowest Produce version weir can decode (record batch v2).
pub const PRODUCE_VERSION_MIN_DECODABLE: i16 = 3;

/// Whether `version` of `api_key` is one weir decodes.
pub fn is_supported(api_key: ApiKey, version: i16) -> bool {
    let decodable_min = if api_key == ApiKey::Produce {
        PRODUCE_VERSION_MIN_DECODABLE
    } else {
        i16::MIN
    };
    SUPPORTED_APIS
        .iter()
        .any(|&(key, min, max)| key == api_key && version >= min.max(decodable_min) && version <= max)
}

/// Handles one decoded request. The response frame comes as parts (record
/// batches are not joined); `None` when no response is sent (acks=0).
pub async fn handle(shard: Rc<Shard>, request: Request) -> Result<Option<Vec<Part>>, String> {
    let version = request.header.request_api_version;
    let correlation_id = request.header.correlation_id;
    let api_key = request.api_key;
    let response = match request.body {
        RequestKind::ApiVersions(body) => ResponseKind::ApiVersions(api_versions::handle(&body)),
        RequestKind::Metadata(body) => ResponseKind::Metadata(metadata::handle(&shard, body, version).await),
        RequestKind::Produce(body) => match produce::handle(&shard, body, version).await {
            Some(response) => ResponseKind::Produce(response),
            None => return Ok(None),
        },
        RequestKind::Fetch(body) => {
            let response = fetch::handle(&shard, body, version).await;
            return Ok(Some(protocol::fetch_response::encode(
                version,
                correlation_id,
                &response,
            )));
        }
        RequestKind::ListOffsets(body) => ResponseKind::ListOffsets(list_offsets::handle(&shard, body).await),
        RequestKind::CreateTopics(body) => {
            ResponseKind::CreateTopics(create_topics::handle(&shard, body, version).await)
        }
        RequestKind::DeleteTopics(body) => {
            ResponseKind::DeleteTopics(delete_topics::handle(&shard, body).await)
        }
        RequestKind::CreatePartitions(body) => {
            ResponseKind::CreatePartitions(create_partitions::handle(&shard, body).await)
        }
        RequestKind::DescribeConfigs(body) => {
            ResponseKind::DescribeConfigs(describe_configs::handle(&shard, body, version))
        }
        _ => return Err(format!("{api_key:?} is not served")),
    };
    protocol::encode_response(api_key, version, correlation_id, &response)
        .map(|frame| Some(vec![Part::Bytes(frame)]))
}

/// Sends an admin call to shard 0 and returns its per-topic results.
pub async fn admin(shard: &Rc<Shard>, call: AdminCall) -> Vec<AdminResult> {
    match shard.call(0, ShardCall::Admin(call)).await {
        ShardReply::Admin(results) => results,
        _ => Vec::new(),
    }
}

/// The result for `name` in admin results, or an error when shard 0 did not
/// answer for it.
pub fn admin_result(results: &[AdminResult], name: &str) -> (i16, Option<StrBytes>) {
    match results.iter().find(|r| r.name == name) {
        Some(result) => (
            result.error_code,
            result.message.clone().map(StrBytes::from_string),
        ),
        None => (
            error_code::UNKNOWN_SERVER_ERROR,
            Some(StrBytes::from_static_str(
                "the metadata writer (shard 0) did not answer",
            )),
        ),
    }
}

pub fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

pub fn uuid(bytes: [u8; 16]) -> uuid::Uuid {
    uuid::Uuid::from_bytes(bytes)
}
