//! One client connection, on the shard that accepted it.
//!
//! A reader loop takes frames off the socket and starts a task per request,
//! so many requests of one connection are in flight at once (up to
//! `inflight_requests_max`: beyond that the reader waits, which is the
//! connection's backpressure). A writer loop awaits those tasks in the
//! order the requests arrived and writes their responses: Kafka clients rely
//! on responses coming back in request order.
//!
//! The frame is checked before any allocation sized by it: a negative or
//! too-small size, or one above `request_size_bytes_max`, closes the
//! connection, as does a header that cannot be decoded, an unknown API key
//! or an unsupported version (except ApiVersions, which is answered with
//! UNSUPPORTED_VERSION). The checks themselves are in `frame.rs`. Each such
//! event is logged once, with the peer, rate-limited per kind of problem
//! (`log_limit.rs`): a client sending garbage in a loop must not fill the
//! disk with log lines.

use std::{
    os::fd::{AsRawFd, FromRawFd},
    rc::Rc,
    time::{Instant, SystemTime},
};

use std::net::Shutdown;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::{channels::local_channel, net::TcpStream, Task};
use kafka_protocol::messages::ApiKey;

use super::frame::{self, kind, Frame, Rejection};
use crate::{
    handlers::{self, api_versions},
    metrics::{micros, Stage, SOCKET_SAMPLE_EVERY},
    protocol::Part,
    shard::Shard,
};

/// A response being produced: Ok(None) for requests that get no response,
/// Err when the request could not be answered (the connection then closes,
/// since the client would otherwise wait for that response forever).
type ResponseTask = Task<Result<Option<Answer>, String>>;

/// A response to write, with what its `respond` stage is timed by.
struct Answer {
    parts: Vec<Part>,
    api_key: i16,
    encoded_at: Instant,
}

pub async fn serve(shard: Rc<Shard>, mut reader: TcpStream) {
    let peer = reader
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let client_host = reader
        .peer_addr()
        .map(|a| format!("/{}", a.ip()))
        .unwrap_or_else(|_| "/unknown".into());
    let _ = reader.set_nodelay(true);
    // A second handle on the same socket for the writer loop: glommio's
    // stream has no split, and io_uring is fine with two fds of one socket.
    // SAFETY: dup returns a new descriptor we own exclusively from here on.
    let writer_fd = unsafe { libc::dup(reader.as_raw_fd()) };
    if writer_fd < 0 {
        crate::warn_limited!(
            "connection setup failed",
            "{peer}: dup failed: {}",
            std::io::Error::last_os_error()
        );
        return;
    }
    // SAFETY: writer_fd is a valid, owned socket descriptor.
    let writer = unsafe { TcpStream::from_raw_fd(writer_fd) };
    // Spliced fetches need EAGAIN from a full socket, not a blocked shard.
    if let Err(e) = crate::fetch::splice::set_nonblocking(writer_fd) {
        crate::warn_limited!("connection setup failed", "{peer}: O_NONBLOCK: {e}");
        return;
    }
    {
        let mut metrics = shard.metrics.borrow_mut();
        metrics.connections_accepted += 1;
        metrics.connections_open += 1;
    }
    // Counted closed however this function returns from here on.
    struct Open(Rc<Shard>);
    impl Drop for Open {
        fn drop(&mut self) {
            let mut metrics = self.0.metrics.borrow_mut();
            metrics.connections_open = metrics.connections_open.saturating_sub(1);
        }
    }
    let _open = Open(shard.clone());
    let (sender, receiver) = local_channel::new_bounded::<ResponseTask>(shard.config.inflight_requests_max);
    let writer_task = shard.spawn(
        false,
        write_responses(shard.clone(), writer, receiver, peer.clone()),
    );

    if let Err(rejection) = read_requests(&shard, &mut reader, &sender, &client_host).await {
        crate::warn_limited!(
            rejection.kind,
            "shard {}: closing connection from {peer}: {}",
            shard.id,
            rejection.reason
        );
        shard.metrics.borrow_mut().requests_rejected += 1;
    }
    drop(sender);
    // Responses to requests already read still go out, then the socket closes.
    writer_task.await;
    let _ = reader.shutdown(Shutdown::Both).await;
}

/// Reads frames until the peer closes (Ok) or a frame cannot be trusted (Err).
async fn read_requests(
    shard: &Rc<Shard>,
    reader: &mut TcpStream,
    sender: &local_channel::LocalSender<ResponseTask>,
    client_host: &str,
) -> Result<(), Rejection> {
    let client_host = client_host.to_string();
    let size_max = shard.config.request_size_bytes_max;
    // The `socket` stage: kernel receive timestamps, peeked for one frame
    // in SOCKET_SAMPLE_EVERY (a syscall each).
    let sample_socket =
        shard.config.latency_stages && super::rx_timestamp::enable(reader.as_raw_fd()).is_ok();
    let mut frames = 0u32;
    loop {
        let mut size_bytes = [0u8; 4];
        match reader.read_exact(&mut size_bytes).await {
            Ok(()) => {}
            Err(e) if is_peer_close(&e) => return Ok(()),
            Err(e) => return Err(Rejection::new(kind::READ_FAILED, format!("read: {e}"))),
        }
        let size = frame::check_size(size_bytes, size_max)?;
        frames = frames.wrapping_add(1);
        let arrived = if sample_socket && frames % SOCKET_SAMPLE_EVERY == 1 {
            super::rx_timestamp::head_arrival(reader.as_raw_fd())
        } else {
            None
        };
        let mut bytes = super::frame_buffers::take(size);
        reader.read_exact(&mut bytes[..size]).await.map_err(|e| {
            Rejection::new(
                kind::TRUNCATED_FRAME,
                format!("truncated frame of {size} bytes: {e}"),
            )
        })?;
        if shard.stopping.get() {
            return Err(Rejection::new(kind::SHUTTING_DOWN, "the broker is shutting down"));
        }
        let read_at = Instant::now();
        let socket_us = arrived
            .and_then(|at| SystemTime::now().duration_since(at).ok())
            .map(micros);
        let task = match frame::decode_frame(super::frame_buffers::freeze(bytes, size))? {
            Frame::UnsupportedApiVersions { correlation_id } => {
                let response = api_versions::unsupported_version_response(correlation_id)
                    .map_err(|e| Rejection::new(kind::UNDECODABLE, e))?;
                glommio::spawn_local(async move {
                    Ok(Some(Answer {
                        parts: vec![Part::Bytes(response)],
                        api_key: ApiKey::ApiVersions as i16,
                        encoded_at: Instant::now(),
                    }))
                })
            }
            Frame::Request(request) => {
                let decoded_at = Instant::now();
                let mut request = *request;
                request.client_host = client_host.clone();
                let api_key = request.api_key;
                let handler_shard = shard.clone();
                shard.spawn(api_key == ApiKey::Fetch, async move {
                    let shard = handler_shard;
                    let started = Instant::now();
                    shard.requests_in_flight.set(shard.requests_in_flight.get() + 1);
                    let result = handlers::handle(shard.clone(), request).await;
                    shard.requests_in_flight.set(shard.requests_in_flight.get() - 1);
                    let encoded_at = Instant::now();
                    {
                        let mut metrics = shard.metrics.borrow_mut();
                        let api = api_key as i16;
                        if let Some(socket_us) = socket_us {
                            metrics.record(api, Stage::Socket, socket_us);
                        }
                        metrics.record(api, Stage::Decode, micros(decoded_at - read_at));
                        metrics.record(api, Stage::Queue, micros(started - decoded_at));
                        metrics.record(api, Stage::Handler, micros(encoded_at - started));
                    }
                    result
                        .map(|parts| {
                            parts.map(|parts| Answer {
                                parts,
                                api_key: api_key as i16,
                                encoded_at,
                            })
                        })
                        .map_err(|e| format!("{api_key:?}: {e}"))
                })
            }
        };
        if sender.send(task).await.is_err() {
            return Ok(()); // the writer is gone: the socket failed
        }
    }
}

async fn write_responses(
    shard: Rc<Shard>,
    mut writer: TcpStream,
    receiver: local_channel::LocalReceiver<ResponseTask>,
    peer: String,
) {
    while let Some(task) = receiver.recv().await {
        let Answer {
            parts: response,
            api_key,
            encoded_at,
        } = match task.await {
            Ok(Some(answer)) => answer,
            Ok(None) => continue,
            Err(e) => {
                crate::error_limited!("response failed", "{peer}: {e}; closing the connection");
                let _ = writer.shutdown(Shutdown::Both).await;
                return;
            }
        };
        let written = if is_bulk(&response) {
            // Sent from the bulk queue, so that while a catch-up consumer's
            // response goes out the shard still reads and answers produce
            // requests promptly (the latency queue preempts it).
            let (returned, written) = shard
                .spawn(true, async move {
                    let written = super::writer::write_parts(&mut writer, &response).await;
                    (writer, written)
                })
                .await;
            writer = returned;
            written
        } else {
            super::writer::write_parts(&mut writer, &response).await
        };
        if let Err(e) = written {
            log::debug!("{peer}: write failed: {e}");
            // Wake the reader: its next read fails and the connection ends.
            let _ = writer.shutdown(Shutdown::Both).await;
            return;
        }
        shard
            .metrics
            .borrow_mut()
            .record(api_key, Stage::Respond, micros(encoded_at.elapsed()));
    }
    let _ = writer.flush().await;
}

/// Responses at least this big, or with file regions, are sent from the
/// shard's bulk task queue.
const BULK_RESPONSE_BYTES_MIN: usize = 256 * 1024;

fn is_bulk(response: &[Part]) -> bool {
    let mut bytes = 0;
    for part in response {
        match part {
            Part::File(_) => return true,
            Part::Bytes(part) => bytes += part.len(),
        }
    }
    bytes >= BULK_RESPONSE_BYTES_MIN
}

/// A peer that went away between requests: not worth a warning.
fn is_peer_close(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    matches!(
        error.kind(),
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
    )
}
