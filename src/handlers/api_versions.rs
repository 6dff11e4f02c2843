//! ApiVersions (key 18), versions 0-4: the APIs and versions weir serves
//! (v4 is v3 again: a client that asks for it, like kafka-python, is
//! answered without the UNSUPPORTED_VERSION round trip).
//!
//! An ApiVersions request of a version weir does not know is answered in
//! version 0 with UNSUPPORTED_VERSION and a table holding only ApiVersions'
//! own range, as Kafka does, so the client can retry with a version both
//! sides speak (see [`unsupported_version_response`]).

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

/// The v0 response to an ApiVersions request of an unknown version. Kafka
/// lists only the ApiVersions entry there (the rest of the table comes with
/// the retry), and so does weir.
pub fn unsupported_version_response(correlation_id: i32) -> Result<Bytes, String> {
    let mut unsupported = response(error_code::UNSUPPORTED_VERSION);
    unsupported
        .api_keys
        .retain(|entry| entry.api_key == ApiKey::ApiVersions as i16);
    let body = ResponseKind::ApiVersions(unsupported);
    protocol::encode_response(ApiKey::ApiVersions, 0, correlation_id, &body)
}
