//! O_DIRECT sequential write bandwidth in three modes, per block size and
//! queue depth:
//! - `append`: a new file that grows with every write (what weir does
//!   today: its segments are not preallocated). ext4 takes the inode lock
//!   exclusively for an extending O_DIRECT write, so queue depth barely helps;
//! - `fallocated`: a file preallocated with fallocate(2) (unwritten extents:
//!   the size is set, the blocks are reserved but not yet written); each
//!   write converts extents;
//! - `overwrite`: blocks already written once (a segment preallocated by
//!   writing zeros ahead): pure overwrites, no metadata changes, which ext4
//!   runs in parallel.
//!
//! Append and fallocated cells each use a fresh file, removed right after;
//! overwrite cells rewrite the shared base file from its start.

use std::{fs::File, os::fd::AsRawFd, time::Duration};

use serde::Serialize;

use super::{
    ring::{self, Direction, Pass},
    Plan,
};
use crate::probe_dir::ProbeDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteMode {
    Append,
    Fallocated,
    Overwrite,
}

impl WriteMode {
    pub const ALL: [WriteMode; 3] = [WriteMode::Append, WriteMode::Fallocated, WriteMode::Overwrite];

    pub fn label(self) -> &'static str {
        match self {
            WriteMode::Append => "append",
            WriteMode::Fallocated => "fallocated",
            WriteMode::Overwrite => "overwrite",
        }
    }
}

/// One measured cell of the write grid.
#[derive(Debug, Clone, Serialize)]
pub struct WriteCell {
    pub mode: WriteMode,
    pub block_bytes: usize,
    pub queue_depth: usize,
    pub bytes: u64,
    pub elapsed_s: f64,
    pub bandwidth_mb_per_s: f64,
}

/// Time allowed for writing the base file (it must be complete).
const BASE_FILE_TIME_MAX: Duration = Duration::from_secs(60);
/// Block size and depth used to write the base file.
const BASE_FILE_BLOCK_BYTES: usize = 1 << 20;
const BASE_FILE_QUEUE_DEPTH: usize = 8;

/// Creates the O_DIRECT base file of `bytes` (whole MiB), every block
/// written once and fdatasync'ed: the target of overwrite and read cells.
pub fn create_base_file(dir: &mut ProbeDir, bytes: u64) -> Result<File, String> {
    let (file, path) = dir.create_file("base", libc::O_DIRECT)?;
    fallocate(&file, bytes).ok();
    let pass = Pass {
        direction: Direction::Write,
        block_bytes: BASE_FILE_BLOCK_BYTES,
        queue_depth: BASE_FILE_QUEUE_DEPTH,
        offset_bytes: 0,
        total_bytes: bytes,
        time_max: BASE_FILE_TIME_MAX,
    };
    let written = ring::run(file.as_raw_fd(), &pass)?;
    if written.bytes < bytes {
        return Err(format!(
            "writing the {} MiB base file took over {} s: the disk is too slow for this probe size \
             (use a smaller --size-mib)",
            bytes >> 20,
            BASE_FILE_TIME_MAX.as_secs()
        ));
    }
    file.sync_data()
        .map_err(|e| format!("fdatasync {}: {e}", path.display()))?;
    Ok(file)
}

/// fallocate(2) mode 0: reserve blocks and set the size (unwritten extents).
fn fallocate(file: &File, bytes: u64) -> Result<(), std::io::Error> {
    // SAFETY: fallocate only takes integers.
    let result = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, bytes as libc::off_t) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Measures one cell. `Ok(None)` when the filesystem cannot do the mode
/// (fallocate unsupported).
pub fn measure_cell(
    dir: &mut ProbeDir,
    base: &File,
    mode: WriteMode,
    block_bytes: usize,
    queue_depth: usize,
    plan: &Plan,
) -> Result<Option<WriteCell>, String> {
    let pass = Pass {
        direction: Direction::Write,
        block_bytes,
        queue_depth,
        offset_bytes: 0,
        total_bytes: plan.cell_bytes,
        time_max: plan.cell_time_max,
    };
    let throughput = match mode {
        WriteMode::Overwrite => ring::run(base.as_raw_fd(), &pass)?,
        WriteMode::Append | WriteMode::Fallocated => {
            let (file, path) = dir.create_file(mode.label(), libc::O_DIRECT)?;
            if mode == WriteMode::Fallocated {
                if let Err(e) = fallocate(&file, plan.cell_bytes) {
                    drop(file);
                    dir.remove_file(&path);
                    return match e.raw_os_error() {
                        Some(libc::EOPNOTSUPP) => Ok(None),
                        _ => Err(format!("fallocate {}: {e}", path.display())),
                    };
                }
            }
            let result = ring::run(file.as_raw_fd(), &pass);
            drop(file);
            dir.remove_file(&path);
            result?
        }
    };
    Ok(Some(WriteCell {
        mode,
        block_bytes,
        queue_depth,
        bytes: throughput.bytes,
        elapsed_s: throughput.elapsed_s,
        bandwidth_mb_per_s: throughput.bandwidth_mb_per_s(),
    }))
}
