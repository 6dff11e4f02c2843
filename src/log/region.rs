//! Cold reads as file regions: which bytes of a segment answer a fetch,
//! found by walking batch headers through a buffered (page cache) fd, so
//! the connection can move them to the socket without copying them through
//! user space (splice), or, where that is not possible, read them.
//!
//! O_DIRECT writes invalidate the page cache pages they cover, so a buffered
//! read of bytes below the high watermark sees what was written.
//!
//! The walk and the splice that follows run on the shard's thread, and a
//! page-cache miss there would stall the whole shard on the disk. So a range
//! is planned as a region only when [`resident`] says its pages are all in
//! memory (`cachestat(2)`, Linux 6.5+). Otherwise the log reads that fetch
//! with O_DIRECT through io_uring (asynchronous, no stall) and [`prefetch`]
//! asks the kernel to read the range and the next ones ahead in the
//! background (`POSIX_FADV_WILLNEED`, issued from a prefetch thread since
//! the call itself can block on a busy device), so a consumer reading sequentially
//! finds the following ranges resident and gets them zero-copy. Every byte
//! is read from disk about once: by the first O_DIRECT miss or by readahead.

use std::{
    fs::File,
    io,
    os::{fd::AsRawFd, unix::fs::FileExt},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use crate::protocol::record_batch::{BatchHeader, BATCH_HEADER_BYTES};

/// Bytes from a fetch's start position whose residency decides between a
/// region and an O_DIRECT read, when the fetch asks for fewer.
pub const REGION_CHECK_BYTES_MIN: u64 = 64 * 1024;

/// Most bytes prefetched past a fetch (twice the fetch's size, capped).
pub const PREFETCH_AHEAD_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// Bytes of a segment file to send as they are: whole batches.
#[derive(Debug, Clone)]
pub struct FileRegion {
    pub file: Arc<File>,
    pub position: u64,
    pub bytes: usize,
}

/// What a header walk found in one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionPlan {
    /// No batch at or after the fetch offset here: try the next segment.
    NoData,
    /// Whole batches `[start, end)`; empty when the first one does not fit
    /// or reaches the end bound (the answer is then no data, not the next
    /// segment). `next_offset` is the offset after the last batch in the
    /// range (the fetch offset when it is empty).
    Range { start: u64, end: u64, next_offset: i64 },
}

/// Walks headers in `[from, to)` of `file` (positions of batch starts; `to`
/// is the end of complete data) and plans the same batches the in-memory
/// scan would return: from the batch holding `fetch_offset`, whole batches
/// that end below `end_offset` (the read's isolation bound: high watermark
/// or last stable offset), within `max_bytes`, the first one even when
/// larger if `first_batch_may_exceed`.
pub fn plan_region(
    file: &File,
    from: u64,
    to: u64,
    fetch_offset: i64,
    end_offset: i64,
    max_bytes: usize,
    first_batch_may_exceed: bool,
) -> io::Result<RegionPlan> {
    let mut position = from;
    let mut start = None;
    let mut next_offset = fetch_offset;
    let mut header_bytes = [0u8; BATCH_HEADER_BYTES];
    while position + BATCH_HEADER_BYTES as u64 <= to {
        file.read_exact_at(&mut header_bytes, position)?;
        let header = BatchHeader::parse(&header_bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("at byte {position}: {e}")))?;
        let total = header.total_bytes() as u64;
        if position + total > to {
            break;
        }
        if header.last_offset() < fetch_offset {
            position += total;
            continue;
        }
        let first = *start.get_or_insert(position);
        let taken = (position - first) as usize;
        let past_bound = header.last_offset() >= end_offset;
        if past_bound || (taken + total as usize > max_bytes && (taken > 0 || !first_batch_may_exceed)) {
            return Ok(RegionPlan::Range {
                start: first,
                end: position,
                next_offset,
            });
        }
        position += total;
        next_offset = header.last_offset() + 1;
        if (position - first) as usize >= max_bytes {
            break;
        }
    }
    Ok(match start {
        Some(start) => RegionPlan::Range {
            start,
            end: position,
            next_offset,
        },
        None => RegionPlan::NoData,
    })
}

/// `cachestat(2)`'s syscall number (the same on x86_64 and aarch64).
const SYS_CACHESTAT: libc::c_long = 451;

/// Set once `cachestat` proved unavailable (kernel < 6.5): every cold read
/// then takes the O_DIRECT path.
static CACHESTAT_MISSING: AtomicBool = AtomicBool::new(false);

#[repr(C)]
struct CachestatRange {
    offset: u64,
    length: u64,
}

#[repr(C)]
#[derive(Default)]
struct Cachestat {
    cached_pages: u64,
    dirty_pages: u64,
    writeback_pages: u64,
    evicted_pages: u64,
    recently_evicted_pages: u64,
}

fn page_size_bytes() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|s| *s > 0).unwrap_or(4096)
}

/// Whether every page of `[position, position + bytes)` of `file` is in
/// the page cache; `None` when the kernel cannot tell (no `cachestat`).
pub fn resident(file: &File, position: u64, bytes: u64) -> Option<bool> {
    if bytes == 0 {
        return Some(true);
    }
    if CACHESTAT_MISSING.load(Ordering::Relaxed) {
        return None;
    }
    let page = page_size_bytes();
    let first_page = position / page;
    let end_page = (position + bytes).div_ceil(page);
    let range = CachestatRange {
        offset: first_page * page,
        length: (end_page - first_page) * page,
    };
    let mut stat = Cachestat::default();
    // SAFETY: range and stat are valid for the call; flags must be 0.
    let result = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd(),
            &range as *const CachestatRange,
            &mut stat as *mut Cachestat,
            0u32,
        )
    };
    if result != 0 {
        let error = io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::ENOSYS) && !CACHESTAT_MISSING.swap(true, Ordering::Relaxed) {
            log::warn!(
                "cachestat(2) is not available (Linux < 6.5): cold fetches use O_DIRECT reads, not splice"
            );
        }
        return None;
    }
    Some(stat.cached_pages >= end_page - first_page)
}

/// Bytes per `POSIX_FADV_WILLNEED` call: the kernel reads at most one
/// readahead window (`read_ahead_kb`, often 128 KiB to 8 MiB) per call.
const PREFETCH_CALL_BYTES: u64 = 2 * 1024 * 1024;

/// Asks the kernel to read `[position, position + bytes)` into the page
/// cache in the background, from the prefetch thread (see [`prefetcher`]):
/// the shard only queues the job. Advisory: a dropped job or a failure
/// only costs a later miss.
pub fn prefetch(file: &Arc<File>, position: u64, bytes: u64) {
    if bytes == 0 {
        return;
    }
    let job = (file.clone(), position, bytes);
    // A hint: when the prefetch thread is behind, the hint is dropped.
    let _ = prefetcher().try_send(job);
}

/// Jobs waiting for the prefetch thread, at most.
const PREFETCH_JOBS_MAX: usize = 64;

/// `posix_fadvise(WILLNEED)` submits the readahead I/O in the caller and
/// can block while the device queue is full, stalling every request of
/// the shard. It runs on one background thread for the process instead:
/// with a catch-up reader on disk, a 10k msgs/s producer's p99 went from
/// 107–316 ms (inline) to 37–125 ms (this thread), same machine and bench.
fn prefetcher() -> &'static std::sync::mpsc::SyncSender<(Arc<File>, u64, u64)> {
    static SENDER: std::sync::OnceLock<std::sync::mpsc::SyncSender<(Arc<File>, u64, u64)>> =
        std::sync::OnceLock::new();
    SENDER.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<(Arc<File>, u64, u64)>(PREFETCH_JOBS_MAX);
        let spawned = std::thread::Builder::new()
            .name("weir-prefetch".into())
            .spawn(move || {
                for (file, position, bytes) in receiver {
                    advise_willneed(&file, position, bytes);
                }
            });
        if let Err(e) = spawned {
            log::warn!("no prefetch thread ({e}): cold reads will not prefetch");
        }
        sender
    })
}

fn advise_willneed(file: &File, position: u64, bytes: u64) {
    let end = position.saturating_add(bytes);
    let mut from = position;
    while from < end {
        let length = (end - from).min(PREFETCH_CALL_BYTES);
        let (Ok(offset), Ok(length_signed)) = (libc::off_t::try_from(from), libc::off_t::try_from(length))
        else {
            return;
        };
        // SAFETY: posix_fadvise only reads its integer arguments.
        let result = unsafe {
            libc::posix_fadvise(file.as_raw_fd(), offset, length_signed, libc::POSIX_FADV_WILLNEED)
        };
        if result != 0 {
            log::debug!(
                "posix_fadvise(WILLNEED): {}",
                io::Error::from_raw_os_error(result)
            );
            return;
        }
        from += length;
    }
}
