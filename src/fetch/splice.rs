//! Zero-copy send of a segment region: file → pipe → socket with
//! `splice(2)`, on the connection's shard, so record bytes read from disk
//! never enter user space.
//!
//! # Why synchronous splice on the shard's thread
//!
//! glommio 0.9 has no splice op, and the two ways out that the design
//! offered both failed here:
//! - its blocking pool lost completions (a finished job's future never woke;
//!   see `crate::log::blocking`), and a pool job that splices to a slow
//!   socket holds the shard's only pool thread;
//! - an io_uring ring of our own does the splice asynchronously, but glommio
//!   exposes no way to wait for another fd's readiness, so learning that the
//!   ring completed would need a polling loop on the reactor.
//!
//! A splice, though, only blocks for two reasons, and both are removed:
//! - **the disk:** `file → pipe` waits when pages are not cached. The read
//!   planner (`crate::log::region`) plans a region only when `cachestat(2)`
//!   says every page is resident, and reads other ranges with O_DIRECT
//!   through io_uring while the kernel prefetches. Resident pages are moved
//!   into the pipe by reference: no copy, no wait. A page evicted between
//!   planning and sending costs one short disk wait (rare; one chunk).
//! - **the peer:** `pipe → socket` waits when the socket buffer is full. The
//!   socket is `O_NONBLOCK` and the splice is `SPLICE_F_NONBLOCK`, so it
//!   returns EAGAIN instead. glommio can only wait for room through its own
//!   `write`, so the bytes still in the pipe (at most one chunk) are read out
//!   and written with it. A consumer that keeps up costs no copy; a slow one
//!   costs one copy per stall, when the broker's CPU is not the limit.
//!
//! Each chunk moves at most [`PIPE_BYTES`], and the send yields to the
//! shard's other tasks between chunks, as the in-memory writer does.
//!
//! # Fallback
//!
//! A splice that fails with EINVAL, ENOSYS or EOPNOTSUPP (a filesystem or a
//! socket type without splice support) turns splice off for the process
//! (logged once) and the rest of the region, and every later one, is read
//! with `pread` from the page cache and written. Other errors fail the send;
//! the connection then closes, since an unknown prefix went out.
//!
//! # Invariants
//!
//! - A pipe returns to the shard's idle list only when empty; one that
//!   holds bytes after an error is closed.
//! - Bytes leave in file order and exactly `region.bytes` of them, or the
//!   send fails.

use std::{
    cell::RefCell,
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    sync::atomic::{AtomicBool, Ordering},
};

use bytes::Bytes;
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;

use crate::{log::region::FileRegion, net::writer::write_bytes};

/// Capacity requested for each pipe and the most bytes one chunk moves.
pub const PIPE_BYTES: usize = 256 * 1024;

/// Empty pipes a shard keeps for later sends.
pub const IDLE_PIPES_MAX: usize = 8;

/// Set when splice proved unsupported; then regions are read and written.
static SPLICE_UNSUPPORTED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// This shard's empty pipes (thread-local: one shard per thread).
    static IDLE_PIPES: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

/// Counters of one shard's sends, for tests and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SpliceStats {
    pub bytes_spliced: u64,
    /// Bytes copied out of a pipe because the socket was full.
    pub bytes_copied_on_stall: u64,
    /// Bytes read and written because splice is unsupported.
    pub bytes_read_fallback: u64,
    /// file → pipe splices that took over 1 ms (the shard waited for the
    /// disk: a page was planned resident but was not readable yet).
    pub file_splices_over_1ms: u64,
    /// The slowest file → pipe splice.
    pub file_splice_us_max: u64,
}

thread_local! {
    static STATS: RefCell<SpliceStats> = const { RefCell::new(SpliceStats {
        bytes_spliced: 0,
        bytes_copied_on_stall: 0,
        bytes_read_fallback: 0,
        file_splices_over_1ms: 0,
        file_splice_us_max: 0,
    }) };
}

/// This shard's counters so far.
pub fn stats() -> SpliceStats {
    STATS.with(|stats| *stats.borrow())
}

fn count(update: impl FnOnce(&mut SpliceStats)) {
    STATS.with(|stats| update(&mut stats.borrow_mut()));
}

struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity_bytes: usize,
}

impl Pipe {
    fn take() -> io::Result<Pipe> {
        if let Some(pipe) = IDLE_PIPES.with(|idle| idle.borrow_mut().pop()) {
            return Ok(pipe);
        }
        let mut fds = [0 as RawFd; 2];
        // SAFETY: fds has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded: both descriptors are new and ours.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: fcntl on a descriptor we own; failures are handled.
        let capacity = unsafe {
            libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES as libc::c_int);
            libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ)
        };
        let capacity_bytes = usize::try_from(capacity)
            .ok()
            .filter(|c| *c > 0)
            .unwrap_or(64 * 1024);
        Ok(Pipe {
            read,
            write,
            capacity_bytes: capacity_bytes.min(PIPE_BYTES),
        })
    }

    /// Returns an empty pipe to the idle list.
    fn give_back(self) {
        IDLE_PIPES.with(|idle| {
            let mut idle = idle.borrow_mut();
            if idle.len() < IDLE_PIPES_MAX {
                idle.push(self);
            }
        });
    }
}

/// Puts the socket behind `fd` in non-blocking mode (shared by every
/// descriptor of the socket; glommio's streams expect EAGAIN anyway).
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a valid descriptor; failures are reported.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn is_unsupported(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP)
    )
}

fn splice(
    from: RawFd,
    from_offset: Option<&mut i64>,
    to: RawFd,
    bytes: usize,
    more: bool,
) -> io::Result<usize> {
    let offset = from_offset.map_or(std::ptr::null_mut(), |o| o as *mut i64);
    let mut flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    if more {
        flags |= libc::SPLICE_F_MORE;
    }
    // SAFETY: both descriptors are open for the call; offset is null or
    // points at a live i64.
    let moved = unsafe { libc::splice(from, offset, to, std::ptr::null_mut(), bytes, flags) };
    if moved < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(moved as usize)
    }
}

/// Sends the region's bytes to `stream`: spliced, or read and written when
/// splice is unsupported. On error an unknown prefix was sent.
pub async fn send_region(stream: &mut TcpStream, region: &FileRegion) -> io::Result<()> {
    let end = region.position + region.bytes as u64;
    let mut position = region.position;
    if !SPLICE_UNSUPPORTED.load(Ordering::Relaxed) {
        position = splice_until_unsupported(stream, region, end).await?;
    }
    if position < end {
        read_and_write(stream, region, position, end).await?;
    }
    Ok(())
}

/// Splices from `region.position`; returns where it stopped: `end`, or the
/// first byte not sent when splice proved unsupported.
async fn splice_until_unsupported(stream: &mut TcpStream, region: &FileRegion, end: u64) -> io::Result<u64> {
    let file_fd = region.file.as_raw_fd();
    let socket_fd = stream.as_raw_fd();
    let pipe = Pipe::take()?;
    let mut position = i64::try_from(region.position).map_err(|_| io::ErrorKind::InvalidInput)?;
    let end = i64::try_from(end).map_err(|_| io::ErrorKind::InvalidInput)?;
    let mut held_bytes = 0usize; // in the pipe, not yet sent
    while position < end || held_bytes > 0 {
        if held_bytes == 0 {
            let wanted = ((end - position) as usize).min(pipe.capacity_bytes);
            let started = std::time::Instant::now();
            let spliced = splice(
                file_fd,
                Some(&mut position),
                pipe.write.as_raw_fd(),
                wanted,
                false,
            );
            let took_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            count(|s| {
                s.file_splice_us_max = s.file_splice_us_max.max(took_us);
                s.file_splices_over_1ms += u64::from(took_us > 1_000);
            });
            match spliced {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("segment ends at {position}, before the region's end {end}"),
                    ))
                }
                Ok(moved) => held_bytes = moved,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_unsupported(&e) => {
                    disable_splice(&e);
                    pipe.give_back();
                    return Ok(position as u64);
                }
                Err(e) => return Err(e),
            }
        }
        let more = position < end;
        match splice(pipe.read.as_raw_fd(), None, socket_fd, held_bytes, more) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(sent) => {
                held_bytes -= sent;
                count(|s| s.bytes_spliced += sent as u64);
                glommio::executor().yield_if_needed().await;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || is_unsupported(&e) => {
                if is_unsupported(&e) {
                    disable_splice(&e);
                }
                // Socket full (or no splice to it): write what the pipe
                // holds through glommio, which waits for room.
                let bytes = drain(&pipe, held_bytes)?;
                stream.write_all(&bytes).await?;
                count(|s| s.bytes_copied_on_stall += bytes.len() as u64);
                held_bytes = 0;
                if SPLICE_UNSUPPORTED.load(Ordering::Relaxed) {
                    pipe.give_back();
                    return Ok(position as u64);
                }
            }
            Err(e) => return Err(e),
        }
    }
    pipe.give_back();
    Ok(end as u64)
}

/// Reads `bytes` (all the pipe holds) out of the pipe.
fn drain(pipe: &Pipe, bytes: usize) -> io::Result<Vec<u8>> {
    let mut buffer = vec![0u8; bytes];
    let mut filled = 0;
    while filled < bytes {
        // SAFETY: the destination is the unfilled tail of `buffer`.
        let read = unsafe {
            libc::read(
                pipe.read.as_raw_fd(),
                buffer[filled..].as_mut_ptr() as *mut libc::c_void,
                bytes - filled,
            )
        };
        match read {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n if n > 0 => filled += n as usize,
            _ => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
    Ok(buffer)
}

fn disable_splice(error: &io::Error) {
    if !SPLICE_UNSUPPORTED.swap(true, Ordering::Relaxed) {
        log::warn!("splice(2) is not supported here ({error}): cold fetches are read and written instead");
    }
}

/// The fallback: `pread` from the page cache (the planner checked the pages
/// are resident) and write, a chunk at a time.
async fn read_and_write(stream: &mut TcpStream, region: &FileRegion, from: u64, end: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut position = from;
    while position < end {
        let chunk_bytes = ((end - position) as usize).min(PIPE_BYTES);
        let mut chunk = vec![0u8; chunk_bytes];
        region.file.read_exact_at(&mut chunk, position)?;
        write_bytes(stream, &[Bytes::from(chunk)]).await?;
        count(|s| s.bytes_read_fallback += chunk_bytes as u64);
        position += chunk_bytes as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{
        io::{Read, Write},
        sync::Arc,
    };

    /// Serves `region` from a glommio executor to a std client that reads
    /// `read_delay` apart, and returns what the client received.
    fn send_and_collect(
        content: &[u8],
        position: u64,
        bytes: usize,
        slow_reader: bool,
    ) -> (Vec<u8>, SpliceStats) {
        let mut file = tempfile::tempfile().expect("tempfile");
        file.write_all(content).expect("write");
        let file = Arc::new(file);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("addr");
        let client = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().expect("accept");
            let mut received = Vec::new();
            let mut buffer = vec![0u8; 4096];
            loop {
                if slow_reader {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
                match socket.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => received.extend_from_slice(&buffer[..n]),
                    Err(e) => panic!("client read: {e}"),
                }
            }
            received
        });
        let region = FileRegion {
            file,
            position,
            bytes,
        };
        let stats = glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let mut stream = TcpStream::connect(address).await.expect("connect");
                set_nonblocking(stream.as_raw_fd()).expect("nonblocking");
                send_region(&mut stream, &region).await.expect("send");
                stream.close().await.expect("close");
                stats()
            })
            .expect("executor")
            .join()
            .expect("join");
        (client.join().expect("client"), stats)
    }

    fn pattern(bytes: usize) -> Vec<u8> {
        (0..bytes).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn region_arrives_intact_in_order() {
        let content = pattern(3 * PIPE_BYTES + 12345);
        let (received, stats) = send_and_collect(&content, 777, content.len() - 777 - 100, false);
        assert_eq!(received, content[777..content.len() - 100]);
        assert_eq!(
            stats.bytes_spliced + stats.bytes_copied_on_stall + stats.bytes_read_fallback,
            received.len() as u64
        );
    }

    #[test]
    fn slow_reader_gets_every_byte() {
        // A reader that sleeps between 4 KiB reads fills the socket, so
        // the send goes through the EAGAIN path many times.
        let content = pattern(8 * 1024 * 1024);
        let (received, stats) = send_and_collect(&content, 0, content.len(), true);
        assert_eq!(received.len(), content.len());
        assert!(received == content, "bytes differ");
        assert!(
            stats.bytes_copied_on_stall > 0,
            "the socket never filled: {stats:?}"
        );
        assert!(stats.bytes_spliced > 0, "nothing was spliced: {stats:?}");
    }

    #[test]
    fn region_past_end_of_file_fails() {
        let mut file = tempfile::tempfile().expect("tempfile");
        file.write_all(&pattern(1000)).expect("write");
        let region = FileRegion {
            file: Arc::new(file),
            position: 500,
            bytes: 1000,
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("addr");
        let client = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().expect("accept");
            let mut sink = Vec::new();
            let _ = socket.read_to_end(&mut sink);
        });
        let failed = glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let mut stream = TcpStream::connect(address).await.expect("connect");
                set_nonblocking(stream.as_raw_fd()).expect("nonblocking");
                let result = send_region(&mut stream, &region).await;
                let _ = stream.close().await;
                result.is_err()
            })
            .expect("executor")
            .join()
            .expect("join");
        client.join().expect("client");
        assert!(failed, "a region past the end of the file must fail");
    }
}
