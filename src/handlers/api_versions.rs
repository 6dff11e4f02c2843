//! ApiVersions (key 18), versions 0-3: the APIs and versions weir serves.
//!
//! An ApiVersions request of a version weir does not know is answered in
//! version 0 with UNSUPPORTED_VERSION and the full table, as Kafka does, so
//! the client can retry with a version both sides speak (see
//! [`unsupported_version_response`]).

use bytes::Bytes;
use kafka_protocol::messages::{
    api_versions_response::ApiVersion, ApiKey, ApiVersionsRequest, ApiVersionsResponse, ResponseKind,
};

use super::SUPPORTED_APIS;
use crate::protocol::{self, error_code};

pub fn handle(_request: &ApiVersionsRequest) -> ApiVersionsResponse {
    response(error_code::NONE)
}

fn response(error_code: i16) -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    response.error_code = error_code;
    response.api_keys = SUPPORTED_APIS
        .iter()
        .map(|&(key, min, max)| {
            let mut version = ApiVersion::default();
            version.api_key = key as i16;
            version.min_version = min;
            version.max_version = max;
            version
        })
        .collect();
    response
}

/// The v0 response to an ApiVersions request of an unknown version.
pub fn unsupported_version_response(correlation_id: i32) -> Result<Bytes, String> {
    let body = ResponseKind::ApiVersions(response(error_code::UNSUPPORTED_VERSION));
    protocol::encode_response(ApiKey::ApiVersions, 0, correlation_id, &body)
}
