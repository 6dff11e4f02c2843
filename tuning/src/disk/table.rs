//! The disk probe's results as text tables (for people) and as JSON (for
//! bench-harness and scripts).

use serde::Serialize;

use super::{
    fsync::FsyncResult,
    read::ReadCell,
    write::{WriteCell, WriteMode},
    Plan,
};
use crate::{
    check::DirectIoAlignment,
    host::{self, format_bytes, HostLoad},
};

/// Everything `weir-tune disk` measured.
#[derive(Debug, Serialize)]
pub struct DiskResults {
    pub data_dir: String,
    pub quick: bool,
    pub cell_bytes: u64,
    pub cell_time_max_s: f64,
    /// Each cell is the best of this many rounds.
    pub rounds: usize,
    /// How busy the host was before and after the probe.
    pub host_load_before: HostLoad,
    pub host_load_after: Option<HostLoad>,
    pub direct_io_offset_alignment_bytes: u64,
    pub direct_io_memory_alignment_bytes: u64,
    pub writes: Vec<WriteCell>,
    pub reads: Vec<ReadCell>,
    pub fsyncs: Vec<FsyncResult>,
    pub config_path: Option<String>,
}

impl DiskResults {
    pub fn new(data_dir: String, plan: &Plan, alignment: &DirectIoAlignment) -> DiskResults {
        DiskResults {
            data_dir,
            quick: plan.quick,
            cell_bytes: plan.cell_bytes,
            cell_time_max_s: plan.cell_time_max.as_secs_f64(),
            rounds: plan.rounds,
            host_load_before: host::host_load(),
            host_load_after: None,
            direct_io_offset_alignment_bytes: alignment.offset_bytes,
            direct_io_memory_alignment_bytes: alignment.memory_bytes,
            writes: Vec::new(),
            reads: Vec::new(),
            fsyncs: Vec::new(),
            config_path: None,
        }
    }
}

/// Width of a numeric column.
const COLUMN_WIDTH_CHARS: usize = 9;

/// Above this I/O pressure the numbers mostly measure the neighbours.
pub const IO_PRESSURE_BUSY_PERCENT: f64 = 10.0;

/// One line on how busy the host was; says so when the numbers are low bounds.
pub fn load_note(results: &DiskResults) -> String {
    let show = |load: &HostLoad| {
        format!(
            "load {} / I/O pressure {}",
            load.load_average_1m.map_or("?".into(), |l| format!("{l:.1}")),
            load.io_pressure_some_10s_percent
                .map_or("?".into(), |p| format!("{p:.0}%"))
        )
    };
    let mut note = format!("host before: {}", show(&results.host_load_before));
    if let Some(after) = &results.host_load_after {
        note.push_str(&format!(
            ", after: {} (includes this probe's own I/O)",
            show(after)
        ));
    }
    if busy(results) {
        note.push_str(
            "\nthe host was busy with other I/O: these numbers are lower bounds; rerun on a quiet host",
        );
    }
    note
}

/// Whether other I/O was competing when the probe started (afterwards the
/// pressure includes the probe itself, so only the start can tell).
pub fn busy(results: &DiskResults) -> bool {
    results
        .host_load_before
        .io_pressure_some_10s_percent
        .is_some_and(|percent| percent > IO_PRESSURE_BUSY_PERCENT)
}

pub fn render_text(results: &DiskResults, plan: &Plan) -> String {
    let width = COLUMN_WIDTH_CHARS;
    let mut text = format!(
        "weir-tune disk: {} (O_DIRECT; alignment: writes {} B, memory {} B)\n\
         each cell: up to {} or {:.2} s, best of {} round(s); MB/s = 10^6 bytes per second\n",
        results.data_dir,
        results.direct_io_offset_alignment_bytes,
        results.direct_io_memory_alignment_bytes,
        format_bytes(results.cell_bytes),
        results.cell_time_max_s,
        results.rounds
    );
    text.push_str(&format!("{}\n\n", load_note(results)));
    text.push_str("Sequential O_DIRECT writes, MB/s\n");
    text.push_str(&format!("{:<10} {:<11}", "block", "mode"));
    for depth in &plan.queue_depths {
        text.push_str(&format!("{:>width$}", format!("QD{depth}")));
    }
    text.push('\n');
    for &block in &plan.block_sizes_bytes {
        for (index, mode) in WriteMode::ALL.iter().enumerate() {
            let block_label = if index == 0 {
                format_bytes(block as u64)
            } else {
                String::new()
            };
            text.push_str(&format!("{:<10} {:<11}", block_label, mode.label()));
            for &depth in &plan.queue_depths {
                let cell = results
                    .writes
                    .iter()
                    .find(|c| c.mode == *mode && c.block_bytes == block && c.queue_depth == depth);
                let shown = cell.map_or("n/a".to_string(), |c| format!("{:.0}", c.bandwidth_mb_per_s));
                text.push_str(&format!("{shown:>width$}"));
            }
            text.push('\n');
        }
    }
    text.push_str(
        "  append: file grows with every write; fallocated: into fallocate(2)d space;\n  \
         overwrite: into blocks written before (preallocated by writing)\n\n",
    );
    text.push_str("Sequential O_DIRECT reads, MB/s\n");
    text.push_str(&format!("{:<22}", "block"));
    for depth in &plan.read_queue_depths {
        text.push_str(&format!("{:>width$}", format!("QD{depth}")));
    }
    text.push('\n');
    for &block in &plan.block_sizes_bytes {
        text.push_str(&format!("{:<22}", format_bytes(block as u64)));
        for &depth in &plan.read_queue_depths {
            let cell = results
                .reads
                .iter()
                .find(|c| c.block_bytes == block && c.queue_depth == depth);
            let shown = cell.map_or("n/a".to_string(), |c| format!("{:.0}", c.bandwidth_mb_per_s));
            text.push_str(&format!("{shown:>width$}"));
        }
        text.push('\n');
    }
    text.push_str("  (the file was just written: on a VM the host's cache may serve part of it)\n\n");
    text.push_str("fdatasync latency, us\n");
    text.push_str(&format!(
        "{:<24}{:>8}{:>9}{:>9}{:>9}{:>9}{:>9}\n",
        "case", "count", "mean", "p50", "p99", "p99.9", "max"
    ));
    for result in &results.fsyncs {
        let latency = result.latency;
        text.push_str(&format!(
            "{:<24}{:>8}{:>9.0}{:>9.0}{:>9.0}{:>9.0}{:>9.0}\n",
            result.case.label(),
            latency.count,
            latency.mean_us,
            latency.p50_us,
            latency.p99_us,
            latency.p999_us,
            latency.max_us
        ));
    }
    text
}
