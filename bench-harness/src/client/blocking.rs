//! A synchronous Kafka client for the control plane (main thread only).
//!
//! Discovery and bookkeeping happen before and after the measured part of a
//! run, a handful of requests each, so plain blocking sockets with timeouts
//! are the simplest correct tool; the data plane never uses this.

use std::{
    io::{Read, Write},
    net::{TcpStream, ToSocketAddrs},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse},
    protocol::{Decodable, Encodable, StrBytes},
};

use super::{
    errors,
    frame::{self, FrameBuffer},
    versions::ApiRange,
};

/// Largest control-plane response accepted.
const CONTROL_FRAME_BYTES_MAX: usize = 64 << 20;

pub struct BlockingClient {
    stream: TcpStream,
    pub address: String,
    correlation_id: i32,
    client_id: String,
    frames: FrameBuffer,
}

/// What ApiVersions told us about a broker.
#[derive(Clone, Debug)]
pub struct ApiVersionsInfo {
    pub ranges: Vec<ApiRange>,
    /// The ApiVersions version that was answered.
    pub version: i16,
}

impl BlockingClient {
    pub fn connect(address: &str, client_id: &str, timeout: Duration) -> Result<BlockingClient, String> {
        let addresses: Vec<_> = address
            .to_socket_addrs()
            .map_err(|e| format!("resolving {address}: {e}"))?
            .collect();
        let mut last_error = format!("{address} resolves to no address");
        for socket_address in addresses {
            match TcpStream::connect_timeout(&socket_address, timeout) {
                Ok(stream) => {
                    let configure = |stream: &TcpStream| -> std::io::Result<()> {
                        stream.set_nodelay(true)?;
                        stream.set_read_timeout(Some(timeout))?;
                        stream.set_write_timeout(Some(timeout))
                    };
                    configure(&stream).map_err(|e| format!("configuring the socket to {address}: {e}"))?;
                    return Ok(BlockingClient {
                        stream,
                        address: address.to_string(),
                        correlation_id: 0,
                        client_id: client_id.to_string(),
                        frames: FrameBuffer::new(CONTROL_FRAME_BYTES_MAX),
                    });
                }
                Err(e) => last_error = format!("connecting to {address} ({socket_address}): {e}"),
            }
        }
        Err(last_error)
    }

    /// Sends one request and returns the response body (header removed).
    fn round_trip<R: Encodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        request: &R,
    ) -> Result<Bytes, String> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let correlation_id = self.correlation_id;
        let mut out = BytesMut::new();
        frame::encode_request(
            &mut out,
            api_key,
            version,
            correlation_id,
            &self.client_id,
            request,
        )?;
        self.stream
            .write_all(&out)
            .map_err(|e| format!("sending {api_key:?} to {}: {e}", self.address))?;
        let response = loop {
            if let Some(frame) = self
                .frames
                .next_frame()
                .map_err(|e| format!("{}: {e}", self.address))?
            {
                break frame;
            }
            let received = self
                .stream
                .read(self.frames.spare())
                .map_err(|e| format!("waiting for the {api_key:?} response from {}: {e}", self.address))?;
            if received == 0 {
                return Err(format!(
                    "{} closed the connection after a {api_key:?} v{version} request",
                    self.address
                ));
            }
            self.frames.commit(received);
        };
        let (received_id, body) = frame::split_response(response, api_key, version)?;
        if received_id != correlation_id {
            return Err(format!(
                "{}: response to correlation id {received_id}, expected {correlation_id}",
                self.address
            ));
        }
        Ok(body)
    }

    pub fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        request: &Req,
    ) -> Result<Resp, String> {
        let body = self.round_trip(api_key, version, request)?;
        frame::decode_body(body, api_key, version).map_err(|e| format!("{}: {e}", self.address))
    }

    /// ApiVersions, starting at v3 (which names weir-bench to the broker).
    /// A broker that does not speak v3 answers in v0 with
    /// UNSUPPORTED_VERSION and its own range; retry within it.
    pub fn api_versions(&mut self) -> Result<ApiVersionsInfo, String> {
        let mut version = 3;
        for _ in 0..2 {
            let mut request = ApiVersionsRequest::default();
            if version >= 3 {
                request.client_software_name = StrBytes::from_static_str("weir-bench");
                request.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
            }
            let body = self.round_trip(ApiKey::ApiVersions, version, &request)?;
            let response =
                match frame::decode_body::<ApiVersionsResponse>(body.clone(), ApiKey::ApiVersions, version) {
                    Ok(response) if response.error_code != errors::UNSUPPORTED_VERSION => response,
                    _ => frame::decode_body::<ApiVersionsResponse>(body, ApiKey::ApiVersions, 0)
                        .map_err(|e| format!("{}: {e}", self.address))?,
                };
            if response.error_code == errors::UNSUPPORTED_VERSION {
                let broker_max = response
                    .api_keys
                    .iter()
                    .find(|key| key.api_key == ApiKey::ApiVersions as i16)
                    .map_or(0, |key| key.max_version);
                version = broker_max.clamp(0, 2);
                continue;
            }
            if response.error_code != errors::NONE {
                return Err(format!(
                    "{}: ApiVersions failed: {}",
                    self.address,
                    errors::name(response.error_code)
                ));
            }
            let ranges = response
                .api_keys
                .iter()
                .map(|key| ApiRange {
                    api_key: key.api_key,
                    min_version: key.min_version,
                    max_version: key.max_version,
                })
                .collect();
            return Ok(ApiVersionsInfo { ranges, version });
        }
        Err(format!("{}: no ApiVersions version in common", self.address))
    }
}
