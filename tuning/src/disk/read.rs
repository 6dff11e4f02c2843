//! O_DIRECT sequential read bandwidth per block size and queue depth, from
//! the base file the write probe filled.
//!
//! weir reads with O_DIRECT when recovering a segment and for cold fetches
//! whose pages are not cached (1 MiB reads, one at a time per fetch). The
//! base file was written moments before: a hypervisor's host-side cache may
//! still hold it, so on VMs these numbers are an upper bound.

use std::{fs::File, os::fd::AsRawFd};

use serde::Serialize;

use super::{
    ring::{self, Direction, Pass},
    Plan,
};

/// One measured read cell.
#[derive(Debug, Clone, Serialize)]
pub struct ReadCell {
    pub block_bytes: usize,
    pub queue_depth: usize,
    pub bytes: u64,
    pub elapsed_s: f64,
    pub bandwidth_mb_per_s: f64,
}

pub fn measure_cell(
    base: &File,
    block_bytes: usize,
    queue_depth: usize,
    plan: &Plan,
) -> Result<ReadCell, String> {
    let pass = Pass {
        direction: Direction::Read,
        block_bytes,
        queue_depth,
        offset_bytes: 0,
        total_bytes: plan.cell_bytes,
        time_max: plan.cell_time_max,
    };
    let throughput = ring::run(base.as_raw_fd(), &pass)?;
    Ok(ReadCell {
        block_bytes,
        queue_depth,
        bytes: throughput.bytes,
        elapsed_s: throughput.elapsed_s,
        bandwidth_mb_per_s: throughput.bandwidth_mb_per_s(),
    })
}
