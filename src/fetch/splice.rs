//! Zero-copy fetch: a byte range of a segment file to a client socket, file -> pipe -> socket with
//! `splice(2)`, so the record bytes never enter user space.
//!
//! # How it works
//!
//! `Splicer::send` reads through a BUFFERED read-only fd of the segment (page cache; an `O_DIRECT` fd
//! would make splice copy through a bounce buffer, synchronously): `splice(file -> pipe)` then
//! `splice(pipe -> socket)`, in jobs on glommio's blocking pool (`spawn_blocking`). Nothing of it runs
//! on the shard's reactor thread.
//!
//! # Why it is built this way
//!
//! - glommio 0.9 has no splice or sendfile op, and `splice` from a file blocks on page-cache misses
//!   (`SPLICE_F_NONBLOCK` only concerns the pipe), so it cannot run on the reactor.
//! - A shard's blocking pool is ONE thread: glommio gives a `Placement::Fixed(cpu)` executor a single
//!   pool thread pinned to that cpu, shared with the log's blocking work. So a send must never park
//!   that thread on a slow consumer: `send` puts the socket in `O_NONBLOCK`, a job waits for socket
//!   space with ppoll(2) only until its own 5 ms budget ends (and sends at most 8 MiB), then hands the
//!   thread back. A socket that stayed full for a whole job makes the send sleep on a glommio timer
//!   (1 ms, doubling to 32 ms while nothing moves, back to 1 ms after progress) before the next job;
//!   `SEND_STALL_TIMEOUT` (30 s) without any progress fails the send with `TimedOut`.
//! - Each send duplicates the file and socket fds (`F_DUPFD_CLOEXEC`) and the pool job only touches
//!   the duplicates: a dropped send future can never splice into an fd number the caller has closed
//!   and reused. A job returns only a `Copy` value, because glommio leaks (never drops) the result of
//!   a blocking closure whose future was dropped; the fds live in an `Arc` shared with the future and
//!   close when both are gone (tested: `dropped_send_closes_its_descriptors`).
//! - Pipes come from a small per-shard pool (`IDLE_PIPES_MAX`), are `O_NONBLOCK`, and are sized with
//!   `F_SETPIPE_SZ` (default 64 KiB, the kernel's default: no measurable gain from 256 KiB or 1 MiB
//!   here, and small pipes stay far from `pipe-max-size` and the per-user `pipe-user-pages-soft`
//!   limit (16384 pages) that 8 idle 1 MiB pipes on each of 64 shards would exceed). A pipe that
//!   still holds bytes after an error is closed, never reused.
//! - `fstat` before anything is sent: a region past the end of the file fails with `UnexpectedEof`
//!   while the connection is still clean. A file that shrinks during the send also fails (late).
//!
//! # Measured (loopback, this 2-vCPU VM, kernel 6.18, ext4 on virtio)
//!
//! A glommio server (executor and blocking pool pinned to CPU 0, as a shard) sends a 1 GiB file in
//! 1 MiB regions to a client process on CPU 1 that reads and discards. Sender CPU = getrusage of the
//! server process (reactor + blocking pool + io_uring workers). Medians; the host is shared, runs
//! with foreign CPU load were rejected and repeated, spread stays ~±15%.
//!
//! | warm page cache, 3 GiB per run, 8 interleaved runs | MB/s | sender CPU s/GiB |
//! |----------------------------------------------------|-----:|-----------------:|
//! | read + write: `BufferedFile::read_at` + `write_all` | 2403 | 0.44 |
//! | (a) this module, 64 KiB pipes                       | 1938 | 0.54 |
//! | (a) this module, 256 KiB pipes                      | 2020 | 0.51 |
//! | (a) this module, 1 MiB pipes                        | 2024 | 0.50 |
//! | sendfile(2) on the blocking pool                    | 2010 | 0.51 |
//! | (b) IORING_OP_SPLICE on an own ring, 256 KiB chunks | 2657 | 0.40 |
//!
//! Other warm batches (5 runs each): read + write 2727 MB/s, 0.39 s/GiB; (a) 64 KiB / 256 KiB / 1 MiB
//! 0.50 / 0.53 / 0.49 s/GiB; (a) with the socket left blocking 0.49 (so the O_NONBLOCK + ppoll
//! design costs nothing measurable); (b) 64 KiB / 256 KiB / 1 MiB chunks 0.76 / 0.38 / 0.42 s/GiB;
//! (b) on an `O_NONBLOCK` socket (EAGAIN -> IORING_OP_POLL_ADD) 3057 MB/s, 0.34 s/GiB.
//!
//! | cold (`POSIX_FADV_DONTNEED` before each run; drop_caches is not permitted here), 5 runs | MB/s | s/GiB |
//! |----------------------------------------------------|-----:|-----:|
//! | read + write                                        | 1558 | 0.40 |
//! | (a) 64 KiB / 256 KiB / 1 MiB pipes                  | 1471 / 1528 / 1507 | 0.43 / 0.41 / 0.44 |
//! | sendfile(2) on the blocking pool                    | 1498 | 0.44 |
//! | (b) 256 KiB chunks                                  | 1623 | 0.31 |
//!
//! On loopback zero-copy did not pay: (a) moved fewer MB/s than read + write and cost ~15-25% more
//! sender CPU; (b) matched read + write. The sender's CPU here includes the loopback TCP receive
//! processing (softirq on the sending CPU), and the client spent ~0.22 s/GiB receiving spliced data
//! against ~0.14 s/GiB for copied data. Zero-copy is for real NICs: measure there before making it
//! the default; errors that `is_unsupported` accepts, and deployments that measure better without it,
//! use the read + write path.
//!
//! # For the caller
//!
//! - Call `send` on the shard's glommio executor. One `Splicer` per shard (not `Sync`).
//! - The socket is left in `O_NONBLOCK` (its open file description is shared by all its dups).
//!   glommio's `TcpStream` works unchanged (read, peek and `write_all` were tested interleaved with
//!   splices). Anything written to the socket before `send` must be fully written (flushed) first.
//! - SIGPIPE must be ignored (Rust binaries do this by default): splice to a reset connection raises
//!   it (checked: with SIG_DFL the process dies). `Splicer::new` logs a warning if it is not ignored.
//! - Error contract: see `send` and `is_unsupported`. After an error that is not "unsupported", or
//!   a dropped send, close the connection: an unknown prefix of the region may have been sent.

use std::{
    cell::{Cell, RefCell},
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::{Duration, Instant},
};

/// A region of a file to send: fd must stay open until the future completes (caller holds an Rc/Arc of
/// the file). (`send` works on a duplicate made when it is first polled, so a dropped send cannot touch
/// a closed and reused fd number.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRegion {
    /// A buffered (not `O_DIRECT`), readable fd of a regular file.
    pub fd: RawFd,
    /// File position of the first byte to send.
    pub offset: u64,
    /// Bytes to send; 0 sends nothing.
    pub len: usize,
}

/// Size asked of every pipe with `F_SETPIPE_SZ` (the kernel rounds it up to a power-of-two number of
/// pages; an unprivileged process may not exceed `/proc/sys/fs/pipe-max-size`, 1 MiB by default).
pub const PIPE_SIZE_BYTES: usize = 64 << 10;
/// Idle pipes a `Splicer` keeps for reuse; more concurrent sends open (and later close) extra pipes.
pub const IDLE_PIPES_MAX: usize = 8;
/// A send that moves no byte for this long fails with `TimedOut` (a peer that stopped reading).
pub const SEND_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes one blocking-pool job sends before it hands the pool thread back (fairness between
/// connections and with the shard's other blocking work).
const JOB_BYTES_MAX: usize = 8 << 20;
/// Longest time one blocking-pool job runs, waiting for socket space included.
const JOB_TIME_MAX: Duration = Duration::from_millis(5);
/// Sleeps of a send whose socket stayed full for a whole job: doubled from min to max while no byte
/// moves, back to min after any progress.
const STALL_BACKOFF_MIN: Duration = Duration::from_millis(1);
const STALL_BACKOFF_MAX: Duration = Duration::from_millis(32);

/// Per-shard reusable resources: a pool of pipes sized with `F_SETPIPE_SZ`, created once per shard.
///
/// Not `Sync`: one per shard (executor), shared there by `Rc`. `send` must run on a glommio executor.
#[derive(Debug)]
pub struct Splicer {
    idle: RefCell<Vec<Pipe>>,
    pipe_size_bytes: usize,
    stall_timeout: Duration,
    stats: Cell<SpliceStats>,
}

/// Counters of one `Splicer` since it was created.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SpliceStats {
    /// Calls to `send` that completed successfully.
    pub sends_ok: u64,
    /// Calls to `send` that returned an error.
    pub sends_failed: u64,
    /// Bytes written to sockets.
    pub bytes_sent: u64,
    /// Jobs run on the blocking pool.
    pub blocking_jobs: u64,
    /// Times a send found its socket full for a whole job and slept before the next one.
    pub stalls: u64,
    /// Pipes opened (pool misses).
    pub pipes_opened: u64,
}

impl Splicer {
    /// A splicer with `PIPE_SIZE_BYTES` pipes and `SEND_STALL_TIMEOUT`. Opens one pipe to fail early
    /// where pipes cannot be made.
    pub fn new() -> io::Result<Splicer> {
        Splicer::with_limits(PIPE_SIZE_BYTES, SEND_STALL_TIMEOUT)
    }

    /// A splicer whose pipes ask for `pipe_size_bytes` and whose sends fail after `stall_timeout`
    /// without progress.
    pub fn with_limits(pipe_size_bytes: usize, stall_timeout: Duration) -> io::Result<Splicer> {
        warn_if_sigpipe_not_ignored();
        let splicer = Splicer {
            idle: RefCell::new(Vec::with_capacity(IDLE_PIPES_MAX)),
            pipe_size_bytes,
            stall_timeout,
            stats: Cell::new(SpliceStats::default()),
        };
        let pipe = splicer.take_pipe()?;
        if pipe.capacity < pipe_size_bytes {
            log::info!(
                "splice pipes hold {} bytes ({} asked): see fs.pipe-max-size and fs.pipe-user-pages-soft",
                pipe.capacity,
                pipe_size_bytes
            );
        }
        splicer.put_pipe(pipe);
        Ok(splicer)
    }

    /// Counters since creation.
    pub fn stats(&self) -> SpliceStats {
        self.stats.get()
    }

    /// Sends exactly region.len bytes from the file at region.offset to socket_fd; errors (incl.
    /// EINVAL/ENOSYS/EOPNOTSUPP meaning "splice unsupported here", and short files) are returned as
    /// io::Error so the caller can fall back to a read + write path.
    ///
    /// - Puts the socket in non-blocking mode (`O_NONBLOCK` on its open file description, shared by
    ///   its dups; glommio's `TcpStream` works unchanged: it sends with `MSG_DONTWAIT` and waits
    ///   through io_uring polls).
    /// - Both fds are duplicated when the future is first polled; from then on the transfer only
    ///   touches its own duplicates. If the future is dropped while a blocking job runs, that job stops
    ///   at its next step and the duplicates close when it ends.
    /// - When `is_unsupported(&error)` holds, no byte of the region reached the socket. After any other
    ///   error, or if the future is dropped before completion, an unknown prefix of the region may have
    ///   been sent: the connection's byte stream is broken and it must be closed.
    /// - A region that ends past the end of the file fails with `UnexpectedEof` before sending anything
    ///   (checked with fstat); a file that shrinks during the transfer fails the same way, late.
    pub async fn send(&self, region: FileRegion, socket_fd: RawFd) -> io::Result<()> {
        let result = self.send_region(region, socket_fd).await;
        self.count(|stats| match &result {
            Ok(()) => stats.sends_ok += 1,
            Err(_) => stats.sends_failed += 1,
        });
        result
    }

    async fn send_region(&self, region: FileRegion, socket_fd: RawFd) -> io::Result<()> {
        if region.len == 0 {
            return Ok(());
        }
        let end = region
            .offset
            .checked_add(region.len as u64)
            .filter(|end| i64::try_from(*end).is_ok())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "region offset + len overflows a file offset",
                )
            })?;
        let file = duplicate(region.fd)?;
        let file_size = file_size(&file)?;
        if end > file_size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "region [{}, {end}) ends past the end of the file ({file_size} bytes)",
                    region.offset
                ),
            ));
        }
        let socket = duplicate(socket_fd)?;
        set_nonblocking(&socket)?;
        let cancelled = Arc::new(AtomicBool::new(false));
        let transfer = Arc::new(Transfer {
            cancelled: Arc::clone(&cancelled),
            job: Mutex::new(Job {
                file,
                socket,
                pipe: self.take_pipe()?,
                offset: region.offset,
                to_fill: region.len,
                in_pipe: 0,
                sent: 0,
            }),
        });
        // Tells a job still queued or running on the pool to stop if this future is dropped.
        let _cancel_on_drop = CancelOnDrop(cancelled);
        let mut last_progress = Instant::now();
        let mut backoff = STALL_BACKOFF_MIN;
        loop {
            let sent_before = transfer.lock().sent;
            // The job returns only a Copy value: glommio leaks the result of a blocking closure whose
            // future was dropped, so no resource may travel in it (the fds live in `transfer`).
            let in_pool = Arc::clone(&transfer);
            let step = glommio::executor()
                .spawn_blocking(move || in_pool.run_job(JOB_BYTES_MAX, Instant::now() + JOB_TIME_MAX))
                .await;
            let (sent, in_pipe) = {
                let job = transfer.lock();
                (job.sent, job.in_pipe)
            };
            let moved = sent - sent_before;
            self.count(|stats| {
                stats.blocking_jobs += 1;
                stats.bytes_sent += moved as u64;
            });
            if moved > 0 {
                last_progress = Instant::now();
                backoff = STALL_BACKOFF_MIN;
            }
            match step {
                Ok(Step::Done) => {
                    self.recycle_pipe(transfer);
                    return Ok(());
                }
                Ok(Step::Yield) => {}
                Ok(Step::Stalled) => {
                    if last_progress.elapsed() >= self.stall_timeout {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "socket accepted no byte for {:?} ({sent} of {} bytes sent)",
                                self.stall_timeout, region.len
                            ),
                        ));
                    }
                    self.count(|stats| stats.stalls += 1);
                    glommio::timer::sleep(backoff).await;
                    backoff = (backoff * 2).min(STALL_BACKOFF_MAX);
                }
                Err(failure) => {
                    if in_pipe == 0 {
                        self.recycle_pipe(transfer);
                    }
                    return Err(describe(failure.into_error(), sent, region.len));
                }
            }
        }
    }

    fn count(&self, update: impl FnOnce(&mut SpliceStats)) {
        let mut stats = self.stats.get();
        update(&mut stats);
        self.stats.set(stats);
    }

    fn take_pipe(&self) -> io::Result<Pipe> {
        if let Some(pipe) = self.idle.borrow_mut().pop() {
            return Ok(pipe);
        }
        self.count(|stats| stats.pipes_opened += 1);
        Pipe::open(self.pipe_size_bytes)
    }

    /// Returns an empty pipe to the pool.
    fn put_pipe(&self, pipe: Pipe) {
        let mut idle = self.idle.borrow_mut();
        if idle.len() < IDLE_PIPES_MAX {
            idle.push(pipe);
        }
    }

    /// Takes back the (empty) pipe of a finished transfer; the transfer's fds close here. If the pool
    /// thread still held a reference, the pipe simply closes with the last one.
    fn recycle_pipe(&self, transfer: Arc<Transfer>) {
        if let Ok(transfer) = Arc::try_unwrap(transfer) {
            let job = transfer
                .job
                .into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if job.in_pipe == 0 {
                self.put_pipe(job.pipe);
            }
        }
    }
}

/// Whether an error from `send` means splice cannot work for this fd/socket (so callers switch to the
/// fallback for good). When it holds, no byte of the region was sent: the caller may send the whole
/// region again by read + write.
pub fn is_unsupported(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP)
    )
}

/// An error of the transfer, with how far it got. Keeps the raw OS error (what `is_unsupported` looks
/// at) only if nothing was sent yet.
fn describe(error: io::Error, sent: usize, len: usize) -> io::Error {
    if sent == 0 {
        return error;
    }
    io::Error::new(
        error.kind(),
        format!("splice failed after {sent} of {len} bytes were sent: {error}"),
    )
}

/// A pipe between the file and the socket. Its fds are non-blocking so that a mistake here can never
/// park a pool thread on the pipe.
#[derive(Debug)]
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    fn open(size_bytes: usize) -> io::Result<Pipe> {
        let mut fds = [-1 as RawFd; 2];
        // SAFETY: fds has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded: both descriptors are open and owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let asked = libc::c_int::try_from(size_bytes).unwrap_or(libc::c_int::MAX);
        // SAFETY: plain fcntl on a descriptor we own.
        let mut capacity = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, asked) };
        if capacity < 0 {
            // EPERM above pipe-max-size or past the user's pipe-user-pages-soft: keep what we got.
            // SAFETY: as above.
            capacity = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) };
            if capacity <= 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(Pipe {
            read,
            write,
            capacity: usize::try_from(capacity).unwrap_or(4096),
        })
    }
}

/// What a blocking job stopped on, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The whole region was written to the socket; the pipe is empty.
    Done,
    /// The job's byte or time budget ran out: run another job.
    Yield,
    /// The socket stayed full until the job's time ran out: wait before the next job.
    Stalled,
}

/// Why a job failed; `Copy` so that nothing leaks if nobody collects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Os(i32),
    EndOfFile { offset: u64, left: usize },
    WriteZero,
    Cancelled,
}

impl Failure {
    fn last_os_error() -> Failure {
        Failure::Os(io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
    }

    fn into_error(self) -> io::Error {
        match self {
            Failure::Os(errno) => io::Error::from_raw_os_error(errno),
            Failure::EndOfFile { offset, left } => io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("end of file at offset {offset} with {left} bytes of the region left"),
            ),
            Failure::WriteZero => io::Error::new(io::ErrorKind::WriteZero, "socket accepted 0 bytes"),
            Failure::Cancelled => io::Error::new(io::ErrorKind::Interrupted, "send cancelled"),
        }
    }
}

/// One transfer, shared by the send future and the job on the pool.
#[derive(Debug)]
struct Transfer {
    cancelled: Arc<AtomicBool>,
    job: Mutex<Job>,
}

impl Transfer {
    /// The job state. Never contended: the future reads it only between jobs.
    fn lock(&self) -> MutexGuard<'_, Job> {
        self.job.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn run_job(&self, bytes_max: usize, deadline: Instant) -> Result<Step, Failure> {
        self.lock().run(&self.cancelled, bytes_max, deadline)
    }
}

struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The fds and progress of one transfer.
#[derive(Debug)]
struct Job {
    file: OwnedFd,
    socket: OwnedFd,
    pipe: Pipe,
    /// Next file offset to read.
    offset: u64,
    /// Bytes of the region not yet read into the pipe.
    to_fill: usize,
    /// Bytes in the pipe, not yet written to the socket.
    in_pipe: usize,
    /// Bytes written to the socket.
    sent: usize,
}

impl Job {
    /// Moves bytes until the region is done, `bytes_max` bytes were sent, `deadline` passed, or the
    /// socket stayed full until `deadline`. Runs on a blocking-pool thread: waits for socket space
    /// with ppoll(2), never past `deadline`.
    fn run(&mut self, cancelled: &AtomicBool, bytes_max: usize, deadline: Instant) -> Result<Step, Failure> {
        let start = self.sent;
        loop {
            if cancelled.load(Ordering::Relaxed) {
                return Err(Failure::Cancelled);
            }
            if self.in_pipe == 0 {
                if self.to_fill == 0 {
                    return Ok(Step::Done);
                }
                if self.sent - start >= bytes_max || Instant::now() >= deadline {
                    return Ok(Step::Yield);
                }
                self.fill()?;
            }
            match self.drain() {
                Ok(()) => {}
                Err(Failure::Os(libc::EAGAIN)) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() || !wait_writable(&self.socket, left)? {
                        return Ok(Step::Stalled);
                    }
                }
                Err(failure) => return Err(failure),
            }
        }
    }

    /// Reads the next piece of the region from the file into the (empty) pipe.
    fn fill(&mut self) -> Result<(), Failure> {
        let want = self.to_fill.min(self.pipe.capacity);
        let mut offset = libc::loff_t::try_from(self.offset).map_err(|_| Failure::Os(libc::EOVERFLOW))?;
        loop {
            // SAFETY: the fds are open for the life of self; offset is a valid loff_t we own.
            let n = unsafe {
                libc::splice(
                    self.file.as_raw_fd(),
                    &mut offset,
                    self.pipe.write.as_raw_fd(),
                    std::ptr::null_mut(),
                    want,
                    libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
                )
            };
            if n < 0 {
                match Failure::last_os_error() {
                    Failure::Os(libc::EINTR) => continue,
                    failure => return Err(failure),
                }
            }
            if n == 0 {
                return Err(Failure::EndOfFile {
                    offset: self.offset,
                    left: self.to_fill,
                });
            }
            let n = (n as usize).min(want);
            self.offset += n as u64;
            self.to_fill -= n;
            self.in_pipe = n;
            return Ok(());
        }
    }

    /// Writes what the pipe holds to the socket, until the pipe is empty or the socket is full
    /// (`Os(EAGAIN)`).
    fn drain(&mut self) -> Result<(), Failure> {
        while self.in_pipe > 0 {
            // Tell TCP more is coming while the region is not finished (like MSG_MORE).
            let more = if self.to_fill > 0 { libc::SPLICE_F_MORE } else { 0 };
            // SAFETY: the fds are open for the life of self; no offsets (pipe and socket).
            let n = unsafe {
                libc::splice(
                    self.pipe.read.as_raw_fd(),
                    std::ptr::null_mut(),
                    self.socket.as_raw_fd(),
                    std::ptr::null_mut(),
                    self.in_pipe,
                    libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK | more,
                )
            };
            if n < 0 {
                match Failure::last_os_error() {
                    Failure::Os(libc::EINTR) => continue,
                    failure => return Err(failure),
                }
            }
            if n == 0 {
                return Err(Failure::WriteZero);
            }
            let n = (n as usize).min(self.in_pipe);
            self.in_pipe -= n;
            self.sent += n;
        }
        Ok(())
    }
}

/// Waits up to `timeout` for room in the socket's send buffer. Ok(false): timed out. Errors and
/// hang-ups count as "ready": the next splice reports them.
fn wait_writable(socket: &OwnedFd, timeout: Duration) -> Result<bool, Failure> {
    let mut pollfd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    let timeout = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    loop {
        // SAFETY: one valid pollfd, a valid timespec, no signal mask.
        let ready = unsafe { libc::ppoll(&mut pollfd, 1, &timeout, std::ptr::null()) };
        if ready < 0 {
            match Failure::last_os_error() {
                Failure::Os(libc::EINTR) => continue,
                failure => return Err(failure),
            }
        }
        return Ok(ready > 0);
    }
}

/// A close-on-exec duplicate of `fd`, owned by the transfer.
fn duplicate(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC only reads fd; a bad fd gives EBADF.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if copy < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: copy is a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

fn file_size(file: &OwnedFd) -> io::Result<u64> {
    // SAFETY: stat is plain data; fstat fills it or fails.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and a valid out pointer.
    if unsafe { libc::fstat(file.as_raw_fd(), &mut stat) } < 0 {
        return Err(io::Error::last_os_error());
    }
    if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
        // splice would fail with EINVAL or read a stream: report "unsupported" the same way.
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(u64::try_from(stat.st_size).unwrap_or(0))
}

/// Sets O_NONBLOCK on the socket's open file description (shared with the caller's fd).
fn set_nonblocking(socket: &OwnedFd) -> io::Result<()> {
    // SAFETY: plain fcntl calls on an open descriptor.
    let flags = unsafe { libc::fcntl(socket.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::O_NONBLOCK == 0 {
        // SAFETY: as above.
        if unsafe { libc::fcntl(socket.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// splice to a socket whose peer is gone raises SIGPIPE (no MSG_NOSIGNAL on this path). Rust binaries
/// ignore SIGPIPE by default; say so if this one does not.
fn warn_if_sigpipe_not_ignored() {
    // SAFETY: sigaction with a null new action only reads the current one.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let queried = unsafe { libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut current) };
    if queried == 0 && current.sa_sigaction == libc::SIG_DFL {
        log::warn!("SIGPIPE is not ignored: a splice to a closed connection would kill the process");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{
        io::Read,
        net::{Shutdown, SocketAddr},
        path::PathBuf,
        sync::atomic::{AtomicUsize, Ordering},
        thread,
    };

    use glommio::{net::TcpListener, LocalExecutorBuilder};

    /// Runs `test` in a fresh glommio executor (one blocking-pool thread, as a shard has).
    fn run<F, Fut>(test: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        let handle = LocalExecutorBuilder::default()
            .name("splice-test")
            .spawn(move || async move { test().await })
            .expect("spawning the test executor");
        if let Err(error) = handle.join() {
            panic!("test executor failed: {error:?}");
        }
    }

    /// A file of `len` patterned bytes, removed on drop.
    struct TestFile {
        path: PathBuf,
        file: std::fs::File,
        bytes: Vec<u8>,
    }

    impl TestFile {
        fn new(len: usize) -> TestFile {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "weir-splice-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let bytes: Vec<u8> = (0..len).map(|i| (i.wrapping_mul(31) % 251) as u8).collect();
            std::fs::write(&path, &bytes).expect("writing the test file");
            let file = std::fs::File::open(&path).expect("opening the test file");
            TestFile { path, file, bytes }
        }

        fn region(&self, offset: usize, len: usize) -> FileRegion {
            FileRegion {
                fd: self.file.as_raw_fd(),
                offset: offset as u64,
                len,
            }
        }
    }

    impl Drop for TestFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// What a client thread did: the bytes it read until EOF or error, and the error if any.
    struct Received {
        bytes: Vec<u8>,
        error: Option<io::Error>,
    }

    /// A blocking client on its own thread: connects, waits `pause`, then reads until EOF (or until
    /// `read_max` bytes, after which it closes the connection).
    fn client(addr: SocketAddr, pause: Duration, read_max: usize) -> thread::JoinHandle<Received> {
        thread::spawn(move || {
            let mut stream = std::net::TcpStream::connect(addr).expect("connecting");
            thread::sleep(pause);
            let mut bytes = Vec::new();
            let mut buffer = vec![0u8; 64 << 10];
            loop {
                if bytes.len() >= read_max {
                    return Received { bytes, error: None };
                }
                let want = buffer.len().min(read_max - bytes.len());
                match stream.read(&mut buffer[..want]) {
                    Ok(0) => return Received { bytes, error: None },
                    Ok(n) => bytes.extend_from_slice(&buffer[..n]),
                    Err(error) => {
                        return Received {
                            bytes,
                            error: Some(error),
                        }
                    }
                }
            }
        })
    }

    fn listener() -> (TcpListener, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding");
        let addr = listener.local_addr().expect("local address");
        (listener, addr)
    }

    /// Serves one connection: sends `regions` in order, then closes; returns each send's result and
    /// what the client received.
    async fn serve(
        file: &TestFile,
        regions: &[(usize, usize)],
        pause: Duration,
        read_max: usize,
        splicer: &Splicer,
    ) -> (Vec<io::Result<()>>, Received) {
        let (listener, addr) = listener();
        let peer = client(addr, pause, read_max);
        let stream = listener.accept().await.expect("accepting");
        let mut results = Vec::new();
        for &(offset, len) in regions {
            let result = splicer.send(file.region(offset, len), stream.as_raw_fd()).await;
            let failed = result.is_err();
            results.push(result);
            if failed {
                break;
            }
        }
        let _ = stream.shutdown(Shutdown::Both).await;
        drop(stream);
        let received = peer.join().expect("client thread");
        (results, received)
    }

    #[test]
    fn sends_a_region_exactly() {
        run(|| async {
            let file = TestFile::new((5 << 20) + 123);
            let splicer = Splicer::new().expect("splicer");
            let (offset, len) = (4097 + 3, (3 << 20) + 17);
            let (results, received) =
                serve(&file, &[(offset, len)], Duration::ZERO, usize::MAX, &splicer).await;
            assert!(results[0].is_ok(), "{:?}", results[0]);
            assert!(received.error.is_none());
            assert_eq!(received.bytes.len(), len);
            assert!(received.bytes == file.bytes[offset..offset + len]);
            let stats = splicer.stats();
            assert_eq!(stats.bytes_sent, len as u64);
            assert_eq!(stats.sends_ok, 1);
        });
    }

    #[test]
    fn sends_regions_back_to_back_in_order() {
        run(|| async {
            let file = TestFile::new(6 << 20);
            let splicer = Splicer::new().expect("splicer");
            let regions = [
                (0, 1000),
                (5000, 1 << 20),
                (123, 77),
                (2 << 20, 3 << 20),
                (6 << 20, 0),
                (7, 1),
            ];
            let (results, received) = serve(&file, &regions, Duration::ZERO, usize::MAX, &splicer).await;
            assert_eq!(results.len(), regions.len());
            assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
            let expected: Vec<u8> = regions
                .iter()
                .flat_map(|&(offset, len)| file.bytes[offset..offset + len].iter().copied())
                .collect();
            assert_eq!(received.bytes.len(), expected.len());
            assert!(received.bytes == expected);
            // Sequential sends reuse the pipe opened by new().
            assert_eq!(splicer.stats().pipes_opened, 1);
        });
    }

    #[test]
    fn region_past_end_of_file_is_an_error() {
        run(|| async {
            let file = TestFile::new(10_000);
            let splicer = Splicer::new().expect("splicer");
            let regions = [(9_000, 2_000), (20_000, 10)];
            for region in regions {
                let (results, received) = serve(&file, &[region], Duration::ZERO, usize::MAX, &splicer).await;
                let error = results[0].as_ref().expect_err("a region past the end must fail");
                assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
                assert!(!is_unsupported(error));
                assert!(received.bytes.is_empty(), "nothing is sent before the check");
            }
        });
    }

    #[test]
    fn file_shrinking_during_the_send_is_an_error() {
        run(|| async {
            // More than socket buffers hold, so the send is still running when the file shrinks.
            let len = 48 << 20;
            let file = TestFile::new(len);
            let splicer = Splicer::new().expect("splicer");
            let (listener, addr) = listener();
            // The client waits, so the send stalls on a full socket; meanwhile the file shrinks.
            let peer = client(addr, Duration::from_millis(300), usize::MAX);
            let stream = listener.accept().await.expect("accepting");
            let path = file.path.clone();
            let shrink = glommio::spawn_local(async move {
                glommio::timer::sleep(Duration::from_millis(100)).await;
                let writer = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .expect("opening");
                writer.set_len(1 << 20).expect("truncating");
            });
            let result = splicer.send(file.region(0, len), stream.as_raw_fd()).await;
            shrink.await;
            let _ = stream.shutdown(Shutdown::Both).await;
            drop(stream);
            let received = peer.join().expect("client thread");
            let error = result.expect_err("a file that shrinks under the send must fail");
            assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{error}");
            assert!(!is_unsupported(&error));
            assert!(received.bytes.len() < len);
        });
    }

    #[test]
    fn zero_length_region_sends_nothing() {
        run(|| async {
            let file = TestFile::new(100);
            let splicer = Splicer::new().expect("splicer");
            let (results, received) = serve(
                &file,
                &[(0, 0), (100, 0), (5000, 0)],
                Duration::ZERO,
                usize::MAX,
                &splicer,
            )
            .await;
            assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
            assert!(received.bytes.is_empty());
        });
    }

    #[test]
    fn peer_that_pauses_reading_still_gets_everything() {
        run(|| async {
            let len = 24 << 20;
            let file = TestFile::new(len);
            let splicer = Splicer::new().expect("splicer");
            let (results, received) = serve(
                &file,
                &[(0, len)],
                Duration::from_millis(500),
                usize::MAX,
                &splicer,
            )
            .await;
            assert!(results[0].is_ok(), "{:?}", results[0]);
            assert_eq!(received.bytes.len(), len);
            assert!(received.bytes == file.bytes);
            assert!(
                splicer.stats().stalls > 0,
                "the socket should have been full for a while"
            );
        });
    }

    #[test]
    fn peer_that_closes_is_an_error_not_a_hang() {
        run(|| async {
            let len = 32 << 20;
            let file = TestFile::new(len);
            let splicer = Splicer::new().expect("splicer");
            // Reads 64 KiB then closes with unread data: the kernel answers with a reset.
            let (results, received) = serve(&file, &[(0, len)], Duration::ZERO, 64 << 10, &splicer).await;
            let error = results[0]
                .as_ref()
                .expect_err("sending to a closed peer must fail");
            assert!(!is_unsupported(error), "{error}");
            assert!(received.bytes == file.bytes[..64 << 10]);
            // Closes while the sender waits on a full socket.
            let (results, received) =
                serve(&file, &[(0, len)], Duration::from_millis(200), 0, &splicer).await;
            let error = results[0]
                .as_ref()
                .expect_err("sending to a closed peer must fail");
            assert!(!is_unsupported(error), "{error}");
            assert!(received.bytes.is_empty());
        });
    }

    /// How many descriptors of this process refer to the same open socket or file as `fd`.
    fn descriptors_like(fd: RawFd) -> usize {
        let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).expect("fd link");
        std::fs::read_dir("/proc/self/fd")
            .expect("listing fds")
            .filter_map(|entry| entry.ok())
            .filter(|entry| std::fs::read_link(entry.path()).ok().as_ref() == Some(&target))
            .count()
    }

    #[test]
    fn dropped_send_closes_its_descriptors() {
        run(|| async {
            let len = 48 << 20;
            let file = std::rc::Rc::new(TestFile::new(len));
            let splicer = std::rc::Rc::new(Splicer::new().expect("splicer"));
            let (listener, addr) = listener();
            let peer = client(addr, Duration::from_millis(300), usize::MAX);
            let stream = listener.accept().await.expect("accepting");
            let fd = stream.as_raw_fd();
            let sending = glommio::spawn_local({
                let (file, splicer) = (file.clone(), splicer.clone());
                async move { splicer.send(file.region(0, len), fd).await }
            });
            glommio::timer::sleep(Duration::from_millis(50)).await;
            assert_eq!(
                descriptors_like(fd),
                2,
                "the send holds a duplicate of the socket"
            );
            assert_eq!(descriptors_like(file.file.as_raw_fd()), 2, "and of the file");
            sending.cancel().await; // drops the send future while the socket is full
            let deadline = Instant::now() + Duration::from_secs(2);
            while descriptors_like(fd) > 1 && Instant::now() < deadline {
                glommio::timer::sleep(Duration::from_millis(5)).await;
            }
            assert_eq!(
                descriptors_like(fd),
                1,
                "the duplicate must close with the cancelled send"
            );
            assert_eq!(descriptors_like(file.file.as_raw_fd()), 1);
            let _ = stream.shutdown(Shutdown::Both).await;
            drop(stream);
            let received = peer.join().expect("client thread");
            assert!(received.bytes.len() < len);
            assert!(received.bytes == file.bytes[..received.bytes.len()]);
        });
    }

    #[test]
    fn peer_that_never_reads_times_out() {
        run(|| async {
            let len = 32 << 20;
            let file = TestFile::new(len);
            let splicer = Splicer::with_limits(PIPE_SIZE_BYTES, Duration::from_millis(300)).expect("splicer");
            let (listener, addr) = listener();
            let (stop_sender, stop_receiver) = std::sync::mpsc::channel::<()>();
            let peer = thread::spawn(move || {
                let stream = std::net::TcpStream::connect(addr).expect("connecting");
                let _ = stop_receiver.recv();
                drop(stream);
            });
            let stream = listener.accept().await.expect("accepting");
            let started = Instant::now();
            let result = splicer.send(file.region(0, len), stream.as_raw_fd()).await;
            let _ = stop_sender.send(());
            let _ = peer.join();
            let error = result.expect_err("a peer that never reads must time out");
            assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
            assert!(started.elapsed() < Duration::from_secs(5));
        });
    }

    #[test]
    fn destination_without_splice_support_is_unsupported() {
        run(|| async {
            let file = TestFile::new(10_000);
            let splicer = Splicer::new().expect("splicer");
            // splice(2) refuses O_APPEND destinations with EINVAL.
            let target = TestFile::new(0);
            let appender = std::fs::OpenOptions::new()
                .append(true)
                .open(&target.path)
                .expect("opening");
            let error = splicer
                .send(file.region(0, 5000), appender.as_raw_fd())
                .await
                .expect_err("an O_APPEND destination must fail");
            assert!(is_unsupported(&error), "{error}");
            assert_eq!(std::fs::metadata(&target.path).expect("metadata").len(), 0);
            // A source that is not a regular file.
            let (listener, addr) = listener();
            let peer = client(addr, Duration::ZERO, usize::MAX);
            let stream = listener.accept().await.expect("accepting");
            let region = FileRegion {
                fd: stream.as_raw_fd(),
                offset: 0,
                len: 10,
            };
            let error = splicer
                .send(region, stream.as_raw_fd())
                .await
                .expect_err("a socket source must fail");
            assert!(is_unsupported(&error), "{error}");
            drop(stream);
            let _ = peer.join();
        });
    }

    #[test]
    fn closed_descriptors_are_errors() {
        run(|| async {
            let file = TestFile::new(100);
            let splicer = Splicer::new().expect("splicer");
            let region = FileRegion {
                fd: -1,
                offset: 0,
                len: 10,
            };
            let error = splicer
                .send(region, file.file.as_raw_fd())
                .await
                .expect_err("a bad fd must fail");
            assert_eq!(error.raw_os_error(), Some(libc::EBADF));
            assert!(!is_unsupported(&error));
            let error = splicer
                .send(file.region(0, 10), -1)
                .await
                .expect_err("a bad fd must fail");
            assert_eq!(error.raw_os_error(), Some(libc::EBADF));
            let region = FileRegion {
                fd: file.file.as_raw_fd(),
                offset: u64::MAX - 5,
                len: 10,
            };
            let error = splicer
                .send(region, file.file.as_raw_fd())
                .await
                .expect_err("overflow");
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        });
    }

    #[test]
    fn unsupported_errors_are_classified() {
        for errno in [libc::EINVAL, libc::ENOSYS, libc::EOPNOTSUPP] {
            assert!(is_unsupported(&io::Error::from_raw_os_error(errno)));
        }
        for errno in [libc::EPIPE, libc::ECONNRESET, libc::EAGAIN, libc::EBADF] {
            assert!(!is_unsupported(&io::Error::from_raw_os_error(errno)));
        }
        assert!(!is_unsupported(&io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "short file"
        )));
        let after_progress = describe(io::Error::from_raw_os_error(libc::EINVAL), 10, 20);
        assert!(!is_unsupported(&after_progress));
    }
}
