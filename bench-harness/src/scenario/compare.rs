//! `compare`: the same scenario against broker A (`--bootstrap`) and
//! broker B (`--bootstrap-b`), alternating A, B, A, B, ... `--runs` times
//! each, so that drift on the machine (page cache, thermal, neighbours)
//! hits both sides alike (the runs: [`super::sides`]). Each run writes its
//! own report directory (`run-<n>-A`, `run-<n>-B`); `compare.json` holds
//! every run's summary, the per-metric medians for A and B and the ratio
//! B/A, and `compare_latency_percentiles.svg` overlays every run's
//! percentile curve. `--label-a`/`--label-b` name the sides in the table
//! and the chart; JSON keys and directories keep the letters.

use std::{collections::BTreeMap, fs, path::Path};

use serde::Serialize;

use super::sides::{self, RunRecord, METRICS};
use crate::{
    cli::Params,
    report::{self, hgrm, json, svg, text::format_count},
};

pub const COMPARE_JSON: &str = "compare.json";
pub const COMPARE_SVG: &str = "compare_latency_percentiles.svg";

#[derive(Serialize)]
struct CompareReport {
    schema_version: u32,
    tool: json::Tool,
    scenario: &'static str,
    bootstrap_a: String,
    bootstrap_b: String,
    label_a: String,
    label_b: String,
    runs_per_broker: u32,
    params: Params,
    runs: Vec<RunRecord>,
    /// Per metric, the median over the runs of each broker.
    median_a: BTreeMap<&'static str, f64>,
    median_b: BTreeMap<&'static str, f64>,
    /// median_b / median_a (`null` when A's median is 0).
    ratio_b_over_a: BTreeMap<&'static str, Option<f64>>,
}

/// Runs the comparison; `Ok(false)` if any run failed validation.
pub fn run(params: &Params) -> Result<bool, String> {
    let bootstrap_b = params.bootstrap_b.clone().ok_or("compare needs --bootstrap-b")?;
    let runs = sides::run_alternating(params, &sides::of(params), &params.report_dir, "compare")?;
    let (median_a, median_b) = (sides::medians(&runs, "A"), sides::medians(&runs, "B"));
    let ratio_b_over_a = METRICS
        .iter()
        .map(|(name, _)| {
            (
                *name,
                (median_a[name] != 0.0).then(|| median_b[name] / median_a[name]),
            )
        })
        .collect();
    let passed = runs.iter().all(|r| r.validation_passed);
    let report = CompareReport {
        schema_version: json::SCHEMA_VERSION,
        tool: json::Tool::current(),
        scenario: params.scenario.name(),
        bootstrap_a: params.bootstrap.clone(),
        bootstrap_b,
        label_a: params.label_a.clone(),
        label_b: params.label_b.clone(),
        runs_per_broker: params.runs,
        params: params.clone(),
        runs,
        median_a,
        median_b,
        ratio_b_over_a,
    };
    let path = report::write_json(&params.report_dir, COMPARE_JSON, &report)?;
    report::write(&params.report_dir, COMPARE_SVG, &overlay_chart(&report)?)?;
    print!("{}", table(&report));
    println!("  compare report: {}", path.display());
    Ok(passed)
}

fn table(report: &CompareReport) -> String {
    let (a, b) = (&report.label_a, &report.label_b);
    let mut out = format!(
        "\nweir-bench compare {}: medians of {} runs each, A = {a} ({}), B = {b} ({})\n  {:<24} {:>14} {:>14} {:>9}\n",
        report.scenario,
        report.runs_per_broker,
        report.bootstrap_a,
        report.bootstrap_b,
        "metric",
        a,
        b,
        "B/A"
    );
    for (name, _) in METRICS {
        let (a, b) = (report.median_a[name], report.median_b[name]);
        let show = |value: f64| {
            if name.contains("mb_per_s") {
                format!("{value:.1}")
            } else {
                format_count(value.round() as u64)
            }
        };
        let ratio = report.ratio_b_over_a[name].map_or("-".to_string(), |r| format!("{r:.3}"));
        out.push_str(&format!(
            "  {name:<24} {:>14} {:>14} {ratio:>9}\n",
            show(a),
            show(b)
        ));
    }
    out
}

/// Every run's percentile curve, read back from its `latency.hgrm`.
fn overlay_chart(report: &CompareReport) -> Result<String, String> {
    let mut lines = Vec::new();
    let mut x_max: f64 = 100.0;
    for run in &report.runs {
        let path = Path::new(&run.report_dir).join(report::LATENCY_HGRM);
        let text = fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let rows = hgrm::parse_rows(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let total = rows.last().map_or(0, |r| r.2);
        let run_x_max = 10f64.powf((total.max(100) as f64).log10().ceil().clamp(2.0, 6.0));
        x_max = x_max.max(run_x_max);
        let mut points: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.1 < 1.0)
            .map(|r| (1.0 / (1.0 - r.1), r.0))
            .filter(|p| p.0 <= run_x_max)
            .collect();
        if let Some(last) = rows.last() {
            points.push((run_x_max, last.0));
        }
        lines.push(svg::Line {
            label: format!("{} run {} ({})", run.label, run.run, run.bootstrap),
            color: sides::color(run.side),
            dashed: run.side == "B",
            points,
        });
    }
    let title = format!(
        "weir-bench compare {}: latency, {} solid, {} dashed",
        report.scenario, report.label_a, report.label_b
    );
    Ok(svg::percentile_chart_lines(&title, lines, x_max))
}
