//! The data-plane connection: one TCP socket on a glommio executor, split
//! into a read half and a write half.
//!
//! glommio's `TcpStream` has no split, and io_uring is content with two
//! descriptors of one socket, so the write half is a `dup` of the read half
//! (the broker's connection does the same). A producer's writer task can
//! then keep `--inflight` requests on the wire while its reader task
//! matches responses, in order, against what was sent. Both halves must be
//! created on the executor that uses them.

use std::{
    net::{SocketAddr, ToSocketAddrs},
    os::fd::{AsRawFd, FromRawFd},
    time::Duration,
};

use bytes::Bytes;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::frame::FrameBuffer;

/// Why no frame was read.
#[derive(Debug)]
pub enum ReadError {
    /// Nothing arrived within the read timeout.
    TimedOut,
    /// The peer closed the connection.
    Closed,
    /// A socket error, or bytes that are not a frame.
    Failed(String),
}

pub struct ReadHalf {
    stream: TcpStream,
    frames: FrameBuffer,
    pub address: String,
}

pub struct WriteHalf {
    stream: TcpStream,
    pub address: String,
}

fn resolve(address: &str) -> Result<SocketAddr, String> {
    address
        .to_socket_addrs()
        .map_err(|e| format!("resolving {address}: {e}"))?
        .next()
        .ok_or_else(|| format!("{address} resolves to no address"))
}

/// Connects to `address` and returns the two halves.
pub async fn connect(
    address: &str,
    timeout: Duration,
    frame_bytes_max: usize,
) -> Result<(ReadHalf, WriteHalf), String> {
    let socket_address = resolve(address)?;
    let reader = TcpStream::connect_timeout(socket_address, timeout)
        .await
        .map_err(|e| format!("connecting to {address}: {e}"))?;
    reader
        .set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY on {address}: {e}"))?;
    // SAFETY: dup returns a new descriptor that nothing else owns; the
    // writer stream takes ownership and closes it on drop.
    let writer_fd = unsafe { libc::dup(reader.as_raw_fd()) };
    if writer_fd < 0 {
        return Err(format!(
            "dup of the socket to {address}: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `writer_fd` is a valid, exclusively owned socket descriptor.
    let writer = unsafe { TcpStream::from_raw_fd(writer_fd) };
    Ok((
        ReadHalf {
            stream: reader,
            frames: FrameBuffer::new(frame_bytes_max),
            address: address.to_string(),
        },
        WriteHalf {
            stream: writer,
            address: address.to_string(),
        },
    ))
}

impl ReadHalf {
    /// Bounds every wait in [`ReadHalf::next_frame`].
    pub fn set_timeout(&self, timeout: Duration) -> Result<(), String> {
        self.stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| format!("read timeout on {}: {e}", self.address))
    }

    /// Bytes the kernel holds for this socket that were not read yet (for
    /// diagnosing a timeout: data waiting unread means a lost wake-up on
    /// our side; none means the peer did not answer).
    pub fn unread_bytes(&self) -> Option<usize> {
        let mut pending: libc::c_int = 0;
        // SAFETY: FIONREAD writes one c_int through the pointer.
        let result = unsafe { libc::ioctl(self.stream.as_raw_fd(), libc::FIONREAD, &mut pending) };
        (result == 0).then(|| usize::try_from(pending).unwrap_or(0))
    }

    /// Hands a frame back once nothing refers to it any more, so that the
    /// next large frame reuses its memory.
    pub fn recycle(&mut self, frame: Bytes) {
        self.frames.recycle(frame);
    }

    /// The next response frame (size prefix removed).
    pub async fn next_frame(&mut self) -> Result<Bytes, ReadError> {
        loop {
            match self.frames.next_frame() {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(message) => return Err(ReadError::Failed(format!("{}: {message}", self.address))),
            }
            match self.stream.read(self.frames.spare()).await {
                Ok(0) => return Err(ReadError::Closed),
                Ok(received) => self.frames.commit(received),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(ReadError::TimedOut),
                Err(e) => return Err(ReadError::Failed(format!("reading from {}: {e}", self.address))),
            }
        }
    }
}

impl WriteHalf {
    pub async fn send(&mut self, frame: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(frame)
            .await
            .map_err(|e| format!("writing to {}: {e}", self.address))
    }

    /// Shuts both directions down, which also wakes a reader blocked on
    /// this socket (it sees the end of the stream).
    pub async fn shutdown(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both).await;
    }
}
