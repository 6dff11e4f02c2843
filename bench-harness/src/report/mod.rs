//! A run's outputs, all written into `--report-dir` by the main thread
//! after the workers finished:
//!
//! - [`json`]: `report.json`, the versioned schema (what CI and `compare`
//!   read);
//! - [`hgrm`]: `latency.hgrm`, the HdrHistogram percentile distribution of
//!   the measured latencies (e2e also writes `produce_latency.hgrm`);
//! - [`svg`]: `latency_percentiles.svg` and `throughput.svg`, drawn with
//!   `plotters` (SVG backend only, needing no font files);
//! - [`stages`]: `stages.svg`, the client's latency beside the broker's
//!   per-stage latency, only when the report has `server_stats`;
//! - [`sweep`]: `sweep_latency_vs_throughput.svg`, the chart of a sweep
//!   over several runs (the sweep writes it, not a run);
//! - [`text`]: the human summary printed to stdout.
//!
//! Every file is a function of the report and the aggregate alone, so the
//! same run data always gives the same bytes.

pub mod hgrm;
pub mod json;
pub mod stages;
pub mod svg;
pub mod sweep;
pub mod text;

use std::{
    fs,
    path::{Path, PathBuf},
};

use json::Report;
use serde::Serialize;

use crate::stats::{aggregate::Aggregate, Flow, LATENCY_SIGNIFICANT_DIGITS};

pub const REPORT_JSON: &str = "report.json";
pub const LATENCY_HGRM: &str = "latency.hgrm";
pub const PRODUCE_LATENCY_HGRM: &str = "produce_latency.hgrm";
pub const LATENCY_PERCENTILES_SVG: &str = "latency_percentiles.svg";
pub const THROUGHPUT_SVG: &str = "throughput.svg";
pub const STAGES_SVG: &str = "stages.svg";

/// Writes `dir/name` (`dir` exists); returns its path.
pub fn write(dir: &Path, name: &str, contents: &str) -> Result<PathBuf, String> {
    let path = dir.join(name);
    fs::write(&path, contents).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(path)
}

/// Writes `value` as pretty JSON to `dir/name`, creating `dir`; returns
/// the file's path.
pub fn write_json(dir: &Path, name: &str, value: &impl Serialize) -> Result<PathBuf, String> {
    fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let json = serde_json::to_string_pretty(value).map_err(|e| format!("encoding {name}: {e}"))?;
    write(dir, name, &(json + "\n"))
}

/// Writes every file of one run; `primary` is the flow `summary` describes.
pub fn write_run(dir: &Path, report: &Report, aggregate: &Aggregate, primary: Flow) -> Result<(), String> {
    write_json(dir, REPORT_JSON, report)?;
    let histogram = &aggregate.flow(primary).measured.histogram;
    write(
        dir,
        LATENCY_HGRM,
        &hgrm::percentile_distribution(histogram, LATENCY_SIGNIFICANT_DIGITS),
    )?;
    let mut lines = vec![(
        format!("{} ({})", primary.name(), report.summary.latency_kind),
        histogram,
    )];
    if report.files.produce_latency_hgrm.is_some() {
        let produce = &aggregate.flow(Flow::Produce).measured.histogram;
        write(
            dir,
            PRODUCE_LATENCY_HGRM,
            &hgrm::percentile_distribution(produce, LATENCY_SIGNIFICANT_DIGITS),
        )?;
        lines.push(("produce (produce_ack)".to_string(), produce));
    }
    let title = format!(
        "weir-bench {} latency, {}",
        report.scenario,
        report.params.rate_label()
    );
    write(
        dir,
        LATENCY_PERCENTILES_SVG,
        &svg::percentile_chart(&title, &lines),
    )?;
    let flows: Vec<(&str, &[_])> = aggregate
        .flows
        .iter()
        .filter(|flow| flow.active)
        .map(|flow| (flow.flow.name(), flow.series.as_slice()))
        .collect();
    let title = format!("weir-bench {} throughput", report.scenario);
    write(
        dir,
        THROUGHPUT_SVG,
        &svg::throughput_chart(&title, &flows, report.params.warmup_s),
    )?;
    if let Some(rows) = stages::rows(report) {
        let title = format!(
            "weir-bench {} latency: client and broker stages, {}",
            report.scenario,
            report.params.rate_label()
        );
        write(dir, STAGES_SVG, &stages::chart(&title, &rows))?;
    }
    Ok(())
}
