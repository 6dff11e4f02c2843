//! The Kafka wire protocol around the kafka-protocol crate: frame header
//! parsing, request decoding, response encoding, error codes and record
//! batch handling. Pure functions; no I/O, usable from any shard.
//!
//! A frame is `i32 size` + request header + body. The header's first
//! 8 bytes (api key, api version, correlation id) are read by hand first so
//! that a request weir cannot decode still gets the right answer: an
//! ApiVersions of an unknown version gets UNSUPPORTED_VERSION, anything else
//! undecodable closes the connection (the frame cannot be trusted).

pub mod batch_filter;
pub mod compression;
pub mod control_record;
pub mod error_code;
pub mod fetch_response;
pub mod record_batch;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::{
    messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind},
    protocol::{Decodable, Encodable},
};

/// A piece of a response frame: bytes in memory, or a region of a segment
/// file that the connection sends without copying it through user space.
#[derive(Debug, Clone)]
pub enum Part {
    Bytes(Bytes),
    File(crate::log::region::FileRegion),
}

impl Part {
    pub fn len(&self) -> usize {
        match self {
            Part::Bytes(bytes) => bytes.len(),
            Part::File(region) => region.bytes,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The fixed first fields of every request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramePrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

impl FramePrefix {
    pub fn parse(frame: &[u8]) -> Option<FramePrefix> {
        Some(FramePrefix {
            api_key: i16::from_be_bytes(frame.get(0..2)?.try_into().ok()?),
            api_version: i16::from_be_bytes(frame.get(2..4)?.try_into().ok()?),
            correlation_id: i32::from_be_bytes(frame.get(4..8)?.try_into().ok()?),
        })
    }
}

/// A decoded request.
pub struct Request {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    pub body: RequestKind,
    /// The client's address as DescribeGroups shows it ("/127.0.0.1").
    pub client_host: String,
}

/// Decodes header and body of a frame whose version is known supported.
pub fn decode_request(api_key: ApiKey, mut frame: Bytes) -> Result<Request, String> {
    let version = FramePrefix::parse(&frame)
        .ok_or("frame shorter than a header")?
        .api_version;
    let header_version = api_key.request_header_version(version);
    let header =
        RequestHeader::decode(&mut frame, header_version).map_err(|e| format!("request header: {e}"))?;
    let body = RequestKind::decode(api_key, &mut frame, version)
        .map_err(|e| format!("{api_key:?} v{version} body: {e}"))?;
    if !frame.is_empty() {
        // Kafka ignores bytes after the body, and librdkafka sends some
        // (Metadata v9+ carries 3 spare bytes): accept, as Kafka does.
        log::trace!("{api_key:?} v{version}: {} trailing bytes ignored", frame.len());
    }
    Ok(Request {
        api_key,
        header,
        body,
        client_host: String::new(),
    })
}

/// Encodes a response frame (size prefix included).
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Bytes, String> {
    let mut buffer = BytesMut::with_capacity(256);
    buffer.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header
        .encode(&mut buffer, api_key.response_header_version(version))
        .map_err(|e| format!("response header: {e}"))?;
    body.encode(&mut buffer, version)
        .map_err(|e| format!("{api_key:?} v{version} response: {e}"))?;
    let size = i32::try_from(buffer.len() - 4).map_err(|_| "response larger than 2 GiB".to_string())?;
    buffer[0..4].copy_from_slice(&size.to_be_bytes());
    Ok(buffer.freeze())
}
