//! Frames: `i32 size` + header + body, both directions.
//!
//! Requests are encoded into one contiguous buffer (size patched last), with
//! the request header version kafka-protocol derives from the API version.
//! Responses are decoded from `Bytes` without copying record data (Fetch
//! `records` stay slices of the frame). [`FrameBuffer`] cuts frames out of a
//! byte stream for either client; a frame larger than its limit means the
//! stream cannot be trusted and is an error.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::{
    messages::{ApiKey, RequestHeader, ResponseHeader},
    protocol::{Decodable, Encodable, StrBytes},
};

/// Bytes read per receive call when no larger frame is pending.
const READ_CHUNK_BYTES: usize = 256 << 10;

/// Appends one request frame to `out`.
pub fn encode_request<R: Encodable>(
    out: &mut BytesMut,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    request: &R,
) -> Result<(), String> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let mut header = RequestHeader::default();
    header.request_api_key = api_key as i16;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = Some(StrBytes::from_string(client_id.to_string()));
    header
        .encode(out, api_key.request_header_version(version))
        .map_err(|e| format!("encoding {api_key:?} v{version} header: {e:#}"))?;
    request
        .encode(out, version)
        .map_err(|e| format!("encoding {api_key:?} v{version}: {e:#}"))?;
    let size = i32::try_from(out.len() - start - 4).map_err(|_| format!("{api_key:?} request too large"))?;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// Splits a response frame (size prefix removed) into its correlation id
/// and body.
pub fn split_response(mut frame: Bytes, api_key: ApiKey, version: i16) -> Result<(i32, Bytes), String> {
    let header = ResponseHeader::decode(&mut frame, api_key.response_header_version(version))
        .map_err(|e| format!("decoding {api_key:?} v{version} response header: {e:#}"))?;
    Ok((header.correlation_id, frame))
}

/// Decodes a response body of `api_key` at `version`; the whole body must
/// be consumed.
pub fn decode_body<R: Decodable>(mut body: Bytes, api_key: ApiKey, version: i16) -> Result<R, String> {
    let response = R::decode(&mut body, version)
        .map_err(|e| format!("decoding {api_key:?} v{version} response: {e:#}"))?;
    if body.has_remaining() {
        return Err(format!(
            "{api_key:?} v{version} response has {} trailing bytes",
            body.remaining()
        ));
    }
    Ok(response)
}

/// Decodes a response frame, checking that it answers `correlation_id`.
pub fn decode_response<R: Decodable>(
    frame: Bytes,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
) -> Result<R, String> {
    let (received, body) = split_response(frame, api_key, version)?;
    if received != correlation_id {
        return Err(format!(
            "{api_key:?} response has correlation id {received}, expected {correlation_id} (responses out of order)"
        ));
    }
    decode_body(body, api_key, version)
}

/// Frames at least this large are received straight into a buffer of
/// their own (no copy out of the read buffer), which is recycled.
const LARGE_FRAME_BYTES: usize = 1 << 20;

/// Received bytes not yet cut into frames.
///
/// Small frames are cut out of one read buffer; bytes past `filled` are
/// spare room already initialized, so small responses do not pay a memset
/// per read. A large frame (Fetch responses of many MiB) is received
/// directly into its own buffer; when the caller is done with it, it hands
/// the frame back ([`FrameBuffer::recycle`]) and the next large frame
/// reuses that memory, so a steady stream of large responses neither
/// allocates, page-faults nor zeroes memory per response.
pub struct FrameBuffer {
    read: ReadBuffer,
    /// A large frame being received, and how much of it is here.
    large: Option<(BytesMut, usize)>,
    /// Memory of a recycled large frame (all of it initialized).
    recycled: Option<BytesMut>,
}

/// The read buffer small frames are cut from.
struct ReadBuffer {
    buffer: BytesMut,
    filled: usize,
    frame_bytes_max: usize,
}

impl ReadBuffer {
    /// The size of the frame at the front, once its prefix is here.
    fn pending_size(&self) -> Result<Option<usize>, String> {
        if self.filled < 4 {
            return Ok(None);
        }
        let size = i32::from_be_bytes([self.buffer[0], self.buffer[1], self.buffer[2], self.buffer[3]]);
        match usize::try_from(size) {
            Ok(size) if size <= self.frame_bytes_max => Ok(Some(size)),
            _ => Err(format!(
                "response frame of {size} bytes (limit {})",
                self.frame_bytes_max
            )),
        }
    }

    fn spare(&mut self) -> &mut [u8] {
        let missing = match self.pending_size() {
            Ok(Some(size)) => (4 + size).saturating_sub(self.filled),
            _ => 0,
        };
        let wanted = self.filled + missing.clamp(READ_CHUNK_BYTES, LARGE_FRAME_BYTES);
        if self.buffer.len() < wanted {
            self.buffer.resize(wanted, 0);
        }
        &mut self.buffer[self.filled..]
    }
}

impl FrameBuffer {
    pub fn new(frame_bytes_max: usize) -> FrameBuffer {
        FrameBuffer {
            read: ReadBuffer {
                buffer: BytesMut::new(),
                filled: 0,
                frame_bytes_max,
            },
            large: None,
            recycled: None,
        }
    }

    /// The next complete frame (without its size prefix), if one is here.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, String> {
        if let Some((frame, received)) = &self.large {
            if *received < frame.len() {
                return Ok(None);
            }
            let (frame, _) = self.large.take().expect("matched just above");
            return Ok(Some(frame.freeze()));
        }
        let Some(size) = self.read.pending_size()? else {
            return Ok(None);
        };
        if self.read.filled < 4 + size {
            if size >= LARGE_FRAME_BYTES {
                self.start_large(size);
            }
            return Ok(None);
        }
        let mut frame = self.read.buffer.split_to(4 + size);
        self.read.filled -= 4 + size;
        frame.advance(4);
        Ok(Some(frame.freeze()))
    }

    /// Moves the pending frame's bytes into a buffer of its own, where the
    /// rest will be received.
    fn start_large(&mut self, size: usize) {
        let mut frame = match self.recycled.take() {
            Some(mut memory) => {
                if memory.len() >= size {
                    memory.truncate(size);
                } else {
                    memory.resize(size, 0);
                }
                memory
            }
            None => BytesMut::zeroed(size),
        };
        let here = self.read.filled - 4;
        frame[..here].copy_from_slice(&self.read.buffer[4..4 + here]);
        self.read.buffer.advance(4 + here);
        self.read.filled = 0;
        self.large = Some((frame, here));
    }

    /// Gives a large frame's memory back for the next one, once nothing
    /// else refers to it (otherwise it is simply dropped).
    pub fn recycle(&mut self, frame: Bytes) {
        if frame.len() < LARGE_FRAME_BYTES {
            return;
        }
        if let Ok(memory) = frame.try_into_mut() {
            let larger = match &self.recycled {
                Some(kept) => kept.len() < memory.len(),
                None => true,
            };
            if larger {
                self.recycled = Some(memory);
            }
        }
    }

    /// Room to receive into: the rest of a large frame, or at least a read
    /// chunk. Call [`FrameBuffer::commit`] with the bytes received.
    pub fn spare(&mut self) -> &mut [u8] {
        match &mut self.large {
            Some((frame, received)) => &mut frame[*received..],
            None => self.read.spare(),
        }
    }

    pub fn commit(&mut self, received: usize) {
        if let Some((frame, here)) = &mut self.large {
            assert!(*here + received <= frame.len(), "committed more than the frame");
            *here += received;
            return;
        }
        assert!(
            self.read.filled + received <= self.read.buffer.len(),
            "committed more than the spare room"
        );
        self.read.filled += received;
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataResponse};

    use super::*;

    #[test]
    fn frames_are_cut_across_arbitrary_receive_boundaries() {
        let mut stream = Vec::new();
        let payloads = [
            vec![1u8; 3],
            vec![],
            vec![9; 300_000],
            vec![7; 3 << 20],
            vec![2; 1],
            vec![5; 2 << 20],
        ];
        for payload in &payloads {
            stream.extend_from_slice(&(payload.len() as i32).to_be_bytes());
            stream.extend_from_slice(payload);
        }
        for chunk in [1usize, 3, 7, 4096, 1 << 20] {
            let mut frames = FrameBuffer::new(8 << 20);
            let mut got = Vec::new();
            for mut piece in stream.chunks(chunk) {
                while !piece.is_empty() {
                    let spare = frames.spare();
                    let received = spare.len().min(piece.len());
                    spare[..received].copy_from_slice(&piece[..received]);
                    frames.commit(received);
                    piece = &piece[received..];
                    while let Some(frame) = frames.next_frame().expect("valid frames") {
                        assert!(frame.iter().all(|&b| b == frame.first().copied().unwrap_or(0)));
                        got.push(frame.len());
                        frames.recycle(frame);
                    }
                }
            }
            assert_eq!(got, vec![3, 0, 300_000, 3 << 20, 1, 2 << 20], "chunk {chunk}");
        }
    }

    #[test]
    fn oversized_or_negative_frames_are_errors() {
        for size in [-1i32, 1 << 21] {
            let mut frames = FrameBuffer::new(1 << 20);
            frames.spare()[..4].copy_from_slice(&size.to_be_bytes());
            frames.commit(4);
            assert!(frames.next_frame().is_err());
        }
    }

    #[test]
    fn request_frames_carry_size_and_header() {
        let mut out = BytesMut::new();
        encode_request(
            &mut out,
            ApiKey::ApiVersions,
            0,
            42,
            "wb",
            &ApiVersionsRequest::default(),
        )
        .unwrap();
        let size = i32::from_be_bytes(out[0..4].try_into().unwrap()) as usize;
        assert_eq!(size, out.len() - 4);
        let mut body = out.freeze().slice(4..);
        let header = RequestHeader::decode(&mut body, 1).unwrap();
        assert_eq!((header.request_api_key, header.correlation_id), (18, 42));
    }

    #[test]
    fn mismatched_correlation_ids_are_errors() {
        let mut out = BytesMut::new();
        let mut header = ResponseHeader::default();
        header.correlation_id = 7;
        header.encode(&mut out, 0).unwrap();
        MetadataResponse::default().encode(&mut out, 1).unwrap();
        let frame = out.freeze();
        assert!(decode_response::<MetadataResponse>(frame.clone(), ApiKey::Metadata, 1, 7).is_ok());
        assert!(decode_response::<MetadataResponse>(frame, ApiKey::Metadata, 1, 8).is_err());
    }
}
