//! The checks a request frame goes through before any handler sees it, as
//! pure functions: the connection's reader loop (`connection.rs`) calls them
//! on every frame read from a socket, and the fuzz targets (`fuzz/`) call the
//! very same code on arbitrary bytes.
//!
//! In order: the size prefix ([`check_size`]: not below the smallest request
//! header, not above `request_size_bytes_max`), then the frame itself
//! ([`decode_frame`]: the fixed header prefix, a known API key, a version
//! weir decodes, then header and body via kafka-protocol). Anything that
//! fails is a [`Rejection`]: the connection is closed, since the byte stream
//! cannot be trusted after it. The one exception is an ApiVersions request
//! of a version weir does not know, which is answered (in v0) with
//! UNSUPPORTED_VERSION.

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;

use crate::{
    handlers,
    limits::REQUEST_HEADER_BYTES_MIN,
    protocol::{self, FramePrefix, Request},
};

/// Why a connection is closed. `kind` is a fixed name for the class of
/// problem (the rate-limiting key of its log line, see
/// [`super::log_limit`]); `reason` the details for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub kind: &'static str,
    pub reason: String,
}

impl Rejection {
    pub fn new(kind: &'static str, reason: impl Into<String>) -> Rejection {
        Rejection {
            kind,
            reason: reason.into(),
        }
    }
}

/// Rejection kinds (log rate-limiting keys).
pub mod kind {
    /// The socket failed while reading (not a clean close by the peer).
    pub const READ_FAILED: &str = "read failed";
    /// Size prefix negative, below a header, or above `request_size_bytes_max`.
    pub const FRAME_SIZE: &str = "bad frame size";
    /// The peer closed in the middle of a frame.
    pub const TRUNCATED_FRAME: &str = "truncated frame";
    /// A frame arrived while the broker shuts down.
    pub const SHUTTING_DOWN: &str = "shutting down";
    /// The API key is not one Kafka defines.
    pub const UNKNOWN_API_KEY: &str = "unknown api key";
    /// A version of an API weir does not decode.
    pub const UNSUPPORTED_VERSION: &str = "unsupported version";
    /// The header or body does not decode at the version it claims.
    pub const UNDECODABLE: &str = "undecodable request";
}

/// Checks a frame's size prefix against the smallest request header and
/// `size_max` (`request_size_bytes_max`), before anything is allocated for
/// the frame. Ok: the number of bytes that follow.
pub fn check_size(prefix: [u8; 4], size_max: u64) -> Result<usize, Rejection> {
    let size = i32::from_be_bytes(prefix);
    if size < REQUEST_HEADER_BYTES_MIN as i32 {
        return Err(Rejection::new(
            kind::FRAME_SIZE,
            format!("frame size {size} is below the smallest request header"),
        ));
    }
    if size as u64 > size_max {
        return Err(Rejection::new(
            kind::FRAME_SIZE,
            format!("frame size {size} exceeds request_size_bytes_max {size_max}"),
        ));
    }
    Ok(size as usize)
}

/// A frame that passed [`decode_frame`].
pub enum Frame {
    /// A request of a supported API and version, decoded (boxed: it is
    /// large, the other variant tiny).
    Request(Box<Request>),
    /// ApiVersions of a version weir does not know: answered in v0 with
    /// UNSUPPORTED_VERSION (`handlers::api_versions::unsupported_version_response`).
    UnsupportedApiVersions { correlation_id: i32 },
}

/// Decodes one frame (the bytes after the size prefix): header prefix, API
/// key, supported version, then header and body.
pub fn decode_frame(frame: Bytes) -> Result<Frame, Rejection> {
    let prefix = FramePrefix::parse(&frame)
        .ok_or_else(|| Rejection::new(kind::UNDECODABLE, "frame shorter than a header"))?;
    let api_key = ApiKey::try_from(prefix.api_key).map_err(|_| {
        Rejection::new(
            kind::UNKNOWN_API_KEY,
            format!("unknown api key {}", prefix.api_key),
        )
    })?;
    if !handlers::is_supported(api_key, prefix.api_version) {
        if api_key == ApiKey::ApiVersions {
            return Ok(Frame::UnsupportedApiVersions {
                correlation_id: prefix.correlation_id,
            });
        }
        return Err(Rejection::new(
            kind::UNSUPPORTED_VERSION,
            format!("{api_key:?} v{} is not supported", prefix.api_version),
        ));
    }
    protocol::decode_request(api_key, frame)
        .map(|request| Frame::Request(Box::new(request)))
        .map_err(|reason| Rejection::new(kind::UNDECODABLE, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_prefix_bounds() {
        let max = 1 << 20;
        for size in [
            i32::MIN,
            -1,
            0,
            REQUEST_HEADER_BYTES_MIN as i32 - 1,
            (1 << 20) + 1,
            i32::MAX,
        ] {
            let rejection = check_size(size.to_be_bytes(), max).expect_err("out of bounds");
            assert_eq!(rejection.kind, kind::FRAME_SIZE, "size {size}");
        }
        assert_eq!(check_size(10i32.to_be_bytes(), max), Ok(10));
        assert_eq!(check_size((1i32 << 20).to_be_bytes(), max), Ok(1 << 20));
    }

    #[test]
    fn unknown_key_and_unsupported_version_are_rejected_by_kind() {
        // api key 0x7A7A, version 0, correlation id 1, null client id.
        let noise = Bytes::from_static(&[0x7A, 0x7A, 0, 0, 0, 0, 0, 1, 0xFF, 0xFF]);
        let rejection = decode_frame(noise).err().expect("unknown key");
        assert_eq!(rejection.kind, kind::UNKNOWN_API_KEY);
        // Produce v2: advertised for librdkafka but not decodable.
        let produce_v2 = Bytes::from_static(&[0, 0, 0, 2, 0, 0, 0, 1, 0xFF, 0xFF]);
        let rejection = decode_frame(produce_v2).err().expect("produce v2");
        assert_eq!(rejection.kind, kind::UNSUPPORTED_VERSION);
        // ApiVersions v99 is answered, not rejected.
        let api_versions_v99 = Bytes::from_static(&[0, 18, 0, 99, 0, 0, 0, 9, 0xFF, 0xFF]);
        assert!(matches!(
            decode_frame(api_versions_v99),
            Ok(Frame::UnsupportedApiVersions { correlation_id: 9 })
        ));
    }

    #[test]
    fn undecodable_body_is_rejected() {
        // Metadata v4 (header v1), client id "ab", then a topic count of
        // 65536 with one truncated topic name after it. (Not billions: unit
        // tests run without the broker's allocator, `crate::alloc_guard`.)
        let frame = Bytes::from_static(&[0, 3, 0, 4, 0, 0, 0, 7, 0, 2, b'a', b'b', 0, 1, 0, 0, 0, 3, b'a']);
        let rejection = decode_frame(frame).err().expect("undecodable");
        assert_eq!(rejection.kind, kind::UNDECODABLE);
    }
}
