//! Sequential O_DIRECT I/O at a fixed block size and queue depth, through
//! an io_uring ring of our own (the `io-uring` crate): the measuring engine
//! of the write and read probes.
//!
//! Why io_uring and not threads: weir's appends are io_uring O_DIRECT writes
//! (glommio), and the kernel treats them differently from `pwrite` in a
//! thread. An io_uring write is first tried without blocking; ext4 refuses
//! that for a write that extends the file (it needs the inode lock
//! exclusively), so the ring hands it to an io-wq worker, where extending
//! writes serialize. Measuring through io_uring reproduces exactly that
//! path, on one thread, with exact control of the queue depth.
//!
//! Why not glommio: its `spawn_blocking` and `Directory` operations were
//! seen to lose completions on this machine, and a probe must end.
//!
//! Safety: the kernel reads (writes) the buffers while operations are in
//! flight, so no buffer is freed before its completion arrived. Every path
//! out of [`run`] first drains the ring; if even waiting fails, the buffers
//! are leaked rather than freed under the kernel.

use std::{
    os::fd::RawFd,
    time::{Duration, Instant},
};

use io_uring::{opcode, types, IoUring};
use serde::Serialize;

use crate::{aligned::AlignedBuffer, probe_dir};

/// Deepest queue a pass may use.
pub const QUEUE_DEPTH_MAX: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Write,
    Read,
}

/// One sequential pass: `total_bytes` from `offset_bytes` in `block_bytes`
/// operations, `queue_depth` in flight, stopping early after `time_max`.
#[derive(Debug, Clone, Copy)]
pub struct Pass {
    pub direction: Direction,
    pub block_bytes: usize,
    pub queue_depth: usize,
    pub offset_bytes: u64,
    pub total_bytes: u64,
    pub time_max: Duration,
}

/// What a pass moved and how long it took (first submission to last completion).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Throughput {
    pub bytes: u64,
    pub elapsed_s: f64,
}

impl Throughput {
    /// Decimal megabytes (10^6 bytes) per second, as disk vendors count.
    pub fn bandwidth_mb_per_s(&self) -> f64 {
        if self.elapsed_s <= 0.0 {
            0.0
        } else {
            self.bytes as f64 / self.elapsed_s / 1e6
        }
    }
}

/// Runs one pass on `fd` (opened with O_DIRECT).
pub fn run(fd: RawFd, pass: &Pass) -> Result<Throughput, String> {
    let Pass {
        direction,
        block_bytes,
        queue_depth,
        offset_bytes,
        total_bytes,
        time_max,
    } = *pass;
    if block_bytes == 0
        || block_bytes % crate::aligned::ALIGNMENT_BYTES != 0
        || block_bytes > u32::MAX as usize
    {
        return Err(format!(
            "block size {block_bytes} is not a multiple of 4096 below 4 GiB"
        ));
    }
    if !(1..=QUEUE_DEPTH_MAX).contains(&queue_depth) {
        return Err(format!("queue depth {queue_depth} outside 1..={QUEUE_DEPTH_MAX}"));
    }
    let blocks_total = total_bytes / block_bytes as u64;
    if blocks_total == 0 {
        return Err(format!(
            "{total_bytes} bytes is less than one {block_bytes}-byte block"
        ));
    }
    let mut ring =
        IoUring::new(queue_depth.next_power_of_two() as u32).map_err(|e| format!("io_uring_setup: {e}"))?;
    let mut buffers = (0..queue_depth)
        .map(|slot| AlignedBuffer::patterned(block_bytes, slot as u64 + 1))
        .collect::<Result<Vec<_>, _>>()?;
    let mut free_slots: Vec<usize> = (0..queue_depth).rev().collect();
    let mut slot_offsets = vec![0u64; queue_depth];
    let mut in_flight = 0usize;
    let mut next_block = 0u64;
    let mut done_bytes = 0u64;
    let mut error: Option<String> = None;
    let verb = match direction {
        Direction::Write => "write",
        Direction::Read => "read",
    };
    let started = Instant::now();
    let mut last_completion = started;
    loop {
        let stopping = error.is_some() || started.elapsed() >= time_max || probe_dir::interrupted();
        while !stopping && in_flight < queue_depth && next_block < blocks_total {
            let Some(slot) = free_slots.pop() else {
                break;
            };
            let offset = offset_bytes + next_block * block_bytes as u64;
            let pointer = buffers[slot].as_mut_ptr();
            let length = block_bytes as u32;
            let entry = match direction {
                Direction::Write => opcode::Write::new(types::Fd(fd), pointer, length)
                    .offset(offset)
                    .build(),
                Direction::Read => opcode::Read::new(types::Fd(fd), pointer, length)
                    .offset(offset)
                    .build(),
            }
            .user_data(slot as u64);
            // SAFETY: the buffer behind `pointer` stays allocated until this
            // operation's completion is reaped below (or is leaked).
            if unsafe { ring.submission().push(&entry) }.is_err() {
                free_slots.push(slot);
                error.get_or_insert_with(|| "io_uring submission queue full".to_string());
                break;
            }
            slot_offsets[slot] = offset;
            in_flight += 1;
            next_block += 1;
        }
        if in_flight == 0 {
            break;
        }
        if let Err(e) = ring.submit_and_wait(1) {
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            // Cannot wait for the operations in flight: never free their buffers.
            std::mem::forget(buffers);
            return Err(format!(
                "io_uring_enter: {e} with {in_flight} {verb}(s) in flight"
            ));
        }
        for completion in ring.completion() {
            let slot = completion.user_data() as usize;
            if slot >= queue_depth {
                error.get_or_insert_with(|| format!("unexpected io_uring completion {slot}"));
                continue;
            }
            in_flight = in_flight.saturating_sub(1);
            free_slots.push(slot);
            last_completion = Instant::now();
            let result = completion.result();
            if result < 0 {
                let os_error = std::io::Error::from_raw_os_error(-result);
                error.get_or_insert_with(|| {
                    format!(
                        "O_DIRECT {verb} of {block_bytes} B at offset {}: {os_error}",
                        slot_offsets[slot]
                    )
                });
            } else if result as usize != block_bytes {
                error.get_or_insert_with(|| {
                    format!(
                        "short O_DIRECT {verb}: {result} of {block_bytes} B at offset {} (disk full?)",
                        slot_offsets[slot]
                    )
                });
            } else {
                done_bytes += block_bytes as u64;
            }
        }
    }
    if let Some(error) = error {
        return Err(error);
    }
    probe_dir::check_interrupted()?;
    Ok(Throughput {
        bytes: done_bytes,
        elapsed_s: (last_completion - started).as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    #[test]
    fn bandwidth_is_decimal_megabytes_per_second() {
        let throughput = Throughput {
            bytes: 2_000_000,
            elapsed_s: 0.5,
        };
        assert!((throughput.bandwidth_mb_per_s() - 4.0).abs() < 1e-9);
        assert_eq!(
            Throughput {
                bytes: 1,
                elapsed_s: 0.0
            }
            .bandwidth_mb_per_s(),
            0.0
        );
    }

    #[test]
    fn invalid_passes_are_refused_before_any_io() {
        let file = tempfile::tempfile().unwrap();
        let pass = |block_bytes, queue_depth, total_bytes| Pass {
            direction: Direction::Write,
            block_bytes,
            queue_depth,
            offset_bytes: 0,
            total_bytes,
            time_max: Duration::from_secs(1),
        };
        assert!(run(file.as_raw_fd(), &pass(1000, 1, 4096)).is_err());
        assert!(run(file.as_raw_fd(), &pass(4096, 0, 4096)).is_err());
        assert!(run(file.as_raw_fd(), &pass(4096, 1, 100)).is_err());
    }

    #[test]
    fn a_buffered_pass_writes_every_block_then_reads_them_back() {
        // A plain (not O_DIRECT) temp file keeps this test independent of
        // the filesystem under /tmp; the engine is the same.
        let file = tempfile::tempfile().unwrap();
        let write = Pass {
            direction: Direction::Write,
            block_bytes: 8192,
            queue_depth: 4,
            offset_bytes: 0,
            total_bytes: 10 * 8192,
            time_max: Duration::from_secs(30),
        };
        let written = run(file.as_raw_fd(), &write).unwrap();
        assert_eq!(written.bytes, 10 * 8192);
        assert_eq!(file.metadata().unwrap().len(), 10 * 8192);
        let read = Pass {
            direction: Direction::Read,
            ..write
        };
        assert_eq!(run(file.as_raw_fd(), &read).unwrap().bytes, 10 * 8192);
        let past_end = Pass {
            offset_bytes: 20 * 8192,
            ..read
        };
        assert!(run(file.as_raw_fd(), &past_end)
            .unwrap_err()
            .contains("short O_DIRECT read"));
    }
}
