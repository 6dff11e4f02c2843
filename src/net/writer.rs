//! Writing a response made of several buffers without joining them.
//!
//! glommio's `TcpStream` has no vectored write, and writing each part with
//! its own `write` costs an io_uring round trip per record batch. Like
//! glommio's own write path, this first tries the syscall directly with
//! `MSG_DONTWAIT` (here `sendmsg` with up to `IOVECS_MAX` parts): on a
//! socket with room it completes at once and no byte is copied. Only when
//! the socket buffer is full does it fall back to glommio's `write`, which
//! waits for writability without blocking the reactor.

use std::{io, os::fd::AsRawFd};

use bytes::Bytes;
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;

use crate::{fetch::splice::send_region, protocol::Part};

/// iovecs per sendmsg (Linux's UIO_MAXIOV is 1024).
const IOVECS_MAX: usize = 256;

/// Bytes handed to one sendmsg. The kernel copies them (and, on loopback,
/// delivers them) on this shard's thread; bounding each call and yielding
/// between calls keeps a large fetch response from holding the reactor
/// while latency-sensitive requests (produce) wait.
const SEND_CHUNK_BYTES_MAX: usize = 256 * 1024;

/// Writes a response frame's parts in order: runs of in-memory parts with
/// vectored sends, file regions spliced (`crate::fetch::splice`).
pub async fn write_parts(stream: &mut TcpStream, parts: &[Part]) -> io::Result<()> {
    let mut run: Vec<Bytes> = Vec::new();
    for part in parts {
        match part {
            Part::Bytes(bytes) => run.push(bytes.clone()),
            Part::File(region) => {
                write_bytes(stream, &run).await?;
                run.clear();
                send_region(stream, region).await?;
            }
        }
    }
    write_bytes(stream, &run).await
}

/// Writes every byte of `parts`, in order.
pub async fn write_bytes(stream: &mut TcpStream, parts: &[Bytes]) -> io::Result<()> {
    let mut index = 0; // first part not fully written
    let mut offset = 0; // bytes of parts[index] already written
    while index < parts.len() {
        if parts[index].len() == offset {
            index += 1;
            offset = 0;
            continue;
        }
        match send_nonblocking(stream.as_raw_fd(), &parts[index..], offset) {
            Ok(mut written) => {
                glommio::executor().yield_if_needed().await;
                while written > 0 {
                    let left = parts[index].len() - offset;
                    if written >= left {
                        written -= left;
                        index += 1;
                        offset = 0;
                    } else {
                        offset += written;
                        written = 0;
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Full socket buffer: let glommio wait for room and write.
                let written = stream.write(&parts[index][offset..]).await?;
                if written == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                offset += written;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One non-blocking sendmsg of up to IOVECS_MAX parts, the first starting
/// at `offset`.
fn send_nonblocking(fd: i32, parts: &[Bytes], offset: usize) -> io::Result<usize> {
    let mut iovecs: Vec<libc::iovec> = Vec::with_capacity(parts.len().min(IOVECS_MAX));
    let mut budget = SEND_CHUNK_BYTES_MAX;
    for (position, part) in parts.iter().take(IOVECS_MAX).enumerate() {
        let slice = if position == 0 { &part[offset..] } else { &part[..] };
        let slice = &slice[..slice.len().min(budget)];
        if slice.is_empty() {
            continue;
        }
        budget -= slice.len();
        iovecs.push(libc::iovec {
            iov_base: slice.as_ptr() as *mut libc::c_void,
            iov_len: slice.len(),
        });
        if budget == 0 {
            break;
        }
    }
    if iovecs.is_empty() {
        return Ok(0);
    }
    // SAFETY: zeroed msghdr is valid; iov points at `iovecs`, whose slices
    // outlive the call; sendmsg only reads them.
    let sent = unsafe {
        let mut header: libc::msghdr = std::mem::zeroed();
        header.msg_iov = iovecs.as_mut_ptr();
        header.msg_iovlen = iovecs.len() as _;
        libc::sendmsg(fd, &header, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}
