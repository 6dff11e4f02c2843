//! `weir-tune check`: every host setting weir depends on, one file per
//! family, each returning [`Item`]s (PASS/INFO/WARN/FAIL, the measured
//! value, what to do).
//!
//! The families run in the order an operator fixes things: can weir start
//! at all (kernel, io_uring, limits), will it keep its promises (filesystem,
//! block device), will it be fast and predictable (cpu, memory, irq, net).
//! A family never stops the others: a file that cannot be read becomes an
//! INFO or WARN item that says so.

mod block;
mod cpu;
mod fs;
mod io_uring;
mod irq;
mod kernel;
mod limits;
mod memory;
mod net;

use std::path::PathBuf;

use crate::{
    report::{Item, Report},
    settings::Settings,
};

pub use fs::{
    filesystem_magic, filesystem_name, probe_direct_io_alignment, DirectIoAlignment, FsSuitability,
};

/// What every check may look at.
pub struct Context {
    pub settings: Settings,
    /// The data directory, absolute.
    pub data_dir: PathBuf,
}

/// Runs every family, in order.
pub fn run(context: &Context) -> Report {
    let families: [fn(&Context) -> Vec<Item>; 9] = [
        kernel::check,
        io_uring::check,
        limits::check,
        fs::check,
        block::check,
        cpu::check,
        memory::check,
        irq::check,
        net::check,
    ];
    let mut report = Report::default();
    for family in families {
        report.items.extend(family(context));
    }
    report
}
