//! fdatasync latency after small O_DIRECT writes, as an HdrHistogram:
//! - `append`: a 4 KiB write that grows the file, then fdatasync: what an
//!   acks=all produce pays at low load today (ext4 must commit the size
//!   change in its journal);
//! - `overwrite`: a 4 KiB write into an already written block, then
//!   fdatasync: only a device cache flush (what preallocated segments would
//!   pay).
//!
//! Only the fdatasync is timed. Percentiles come from the histogram
//! ([`summarize`]), in microseconds.

use std::{
    fs::File,
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::Plan;
use crate::{aligned::AlignedBuffer, probe_dir, probe_dir::ProbeDir};

/// Bytes written before each fdatasync (a page: what a small batch costs
/// once padded to the alignment).
pub const FSYNC_WRITE_BYTES: usize = 4096;
/// Longest latency the histogram holds, in ns (longer ones are clamped).
const LATENCY_NS_MAX: u64 = 60_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FsyncCase {
    Append,
    Overwrite,
}

impl FsyncCase {
    pub fn label(self) -> &'static str {
        match self {
            FsyncCase::Append => "after 4 KiB append",
            FsyncCase::Overwrite => "after 4 KiB overwrite",
        }
    }
}

/// Percentiles of a latency histogram recorded in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

pub fn summarize(histogram: &Histogram<u64>) -> LatencySummary {
    let us = |ns: u64| ns as f64 / 1000.0;
    LatencySummary {
        count: histogram.len(),
        mean_us: histogram.mean() / 1000.0,
        p50_us: us(histogram.value_at_quantile(0.50)),
        p99_us: us(histogram.value_at_quantile(0.99)),
        p999_us: us(histogram.value_at_quantile(0.999)),
        max_us: us(histogram.max()),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FsyncResult {
    pub case: FsyncCase,
    pub write_bytes: usize,
    pub latency: LatencySummary,
}

fn pwrite_all(file: &File, buffer: &AlignedBuffer, offset: u64) -> Result<(), String> {
    // SAFETY: pwrite reads buffer.len() bytes from a live buffer.
    let written = unsafe {
        libc::pwrite(
            file.as_raw_fd(),
            buffer.as_ptr().cast(),
            buffer.len(),
            offset as libc::off_t,
        )
    };
    if written < 0 {
        return Err(format!(
            "O_DIRECT pwrite at {offset}: {}",
            std::io::Error::last_os_error()
        ));
    }
    if written as usize != buffer.len() {
        return Err(format!(
            "short O_DIRECT pwrite at {offset}: {written} of {}",
            buffer.len()
        ));
    }
    Ok(())
}

pub fn measure(dir: &mut ProbeDir, case: FsyncCase, plan: &Plan) -> Result<FsyncResult, String> {
    let (file, path) = dir.create_file("fsync", libc::O_DIRECT)?;
    let result = measure_file(&file, case, plan);
    drop(file);
    dir.remove_file(&path);
    result
}

fn measure_file(file: &File, case: FsyncCase, plan: &Plan) -> Result<FsyncResult, String> {
    let buffer = AlignedBuffer::patterned(FSYNC_WRITE_BYTES, 42)?;
    let iterations = plan.fsync_iterations_max as u64;
    if case == FsyncCase::Overwrite {
        // Write every block once and make it durable: later writes are pure overwrites.
        let chunk = AlignedBuffer::patterned(1 << 20, 43)?;
        let file_bytes = iterations * FSYNC_WRITE_BYTES as u64;
        let mut offset = 0;
        while offset < file_bytes {
            pwrite_all(file, &chunk, offset)?;
            offset += chunk.len() as u64;
        }
        file.sync_all().map_err(|e| format!("fsync: {e}"))?;
    }
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, LATENCY_NS_MAX, 3).map_err(|e| format!("histogram: {e}"))?;
    let started = Instant::now();
    for iteration in 0..iterations {
        if started.elapsed() >= plan.fsync_time_max {
            break;
        }
        probe_dir::check_interrupted()?;
        pwrite_all(file, &buffer, iteration * FSYNC_WRITE_BYTES as u64)?;
        let sync_started = Instant::now();
        file.sync_data().map_err(|e| format!("fdatasync: {e}"))?;
        let latency_ns = duration_ns(sync_started.elapsed());
        histogram.saturating_record(latency_ns.clamp(1, LATENCY_NS_MAX));
    }
    Ok(FsyncResult {
        case,
        write_bytes: FSYNC_WRITE_BYTES,
        latency: summarize(&histogram),
    })
}

fn duration_ns(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_report_percentiles_in_microseconds() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, LATENCY_NS_MAX, 3).unwrap();
        for _ in 0..990 {
            histogram.record(100_000).unwrap(); // 100 us
        }
        for _ in 0..9 {
            histogram.record(2_000_000).unwrap(); // 2 ms
        }
        histogram.record(50_000_000).unwrap(); // 50 ms
        let summary = summarize(&histogram);
        assert_eq!(summary.count, 1000);
        assert!((summary.p50_us - 100.0).abs() < 0.1, "{summary:?}");
        assert!((summary.p99_us - 100.0).abs() < 0.1, "{summary:?}");
        assert!((summary.p999_us - 2000.0).abs() < 2.0, "{summary:?}");
        assert!((summary.max_us - 50_000.0).abs() < 50.0, "{summary:?}");
        assert!(summary.mean_us > 100.0);
    }

    #[test]
    fn an_empty_histogram_summarizes_to_zeros() {
        let histogram = Histogram::<u64>::new_with_bounds(1, LATENCY_NS_MAX, 3).unwrap();
        let summary = summarize(&histogram);
        assert_eq!(summary.count, 0);
        assert_eq!(summary.max_us, 0.0);
    }
}
