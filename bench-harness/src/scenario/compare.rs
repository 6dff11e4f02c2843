//! `compare`: the same scenario against broker A (`--bootstrap`) and
//! broker B (`--bootstrap-b`), alternating A, B, A, B, ... `--runs` times
//! each, so that drift on the machine (page cache, thermal, neighbours)
//! hits both sides alike. Each run writes its own report directory
//! (`run-<n>-A`, `run-<n>-B`); `compare.json` holds every run's summary,
//! the per-metric medians for A and B and the ratio B/A, and
//! `compare_latency_percentiles.svg` overlays every run's percentile curve.

use std::{collections::BTreeMap, fs, path::Path};

use serde::Serialize;

use super::run_and_report;
use crate::{
    cli::Params,
    report::{hgrm, json, svg, text::format_count},
};

pub const COMPARE_JSON: &str = "compare.json";
pub const COMPARE_SVG: &str = "compare_latency_percentiles.svg";

/// A compared metric: its name and how to read it from a run's summary.
type Metric = (&'static str, fn(&json::Summary) -> f64);

/// The metrics compared, in print order.
const METRICS: &[Metric] = &[
    ("throughput_mb_per_s", |s| s.throughput_mb_per_s),
    ("throughput_msgs_per_s", |s| s.throughput_msgs_per_s),
    ("latency_us_p50", |s| s.latency_us.p50 as f64),
    ("latency_us_p90", |s| s.latency_us.p90 as f64),
    ("latency_us_p99", |s| s.latency_us.p99 as f64),
    ("latency_us_p999", |s| s.latency_us.p999 as f64),
    ("latency_us_p9999", |s| s.latency_us.p9999 as f64),
    ("latency_us_max", |s| s.latency_us.max as f64),
    ("errors", |s| s.errors as f64),
];

#[derive(Serialize)]
struct CompareRun {
    label: &'static str,
    run: u32,
    bootstrap: String,
    report_dir: String,
    validation_passed: bool,
    summary: json::Summary,
}

#[derive(Serialize)]
struct CompareReport {
    schema_version: u32,
    tool: json::Tool,
    scenario: &'static str,
    bootstrap_a: String,
    bootstrap_b: String,
    runs_per_broker: u32,
    params: Params,
    runs: Vec<CompareRun>,
    /// Per metric, the median over the runs of each broker.
    median_a: BTreeMap<&'static str, f64>,
    median_b: BTreeMap<&'static str, f64>,
    /// median_b / median_a (`null` when A's median is 0).
    ratio_b_over_a: BTreeMap<&'static str, Option<f64>>,
}

pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

fn medians(runs: &[CompareRun], label: &str) -> BTreeMap<&'static str, f64> {
    METRICS
        .iter()
        .map(|(name, read)| {
            let mut values: Vec<f64> = runs
                .iter()
                .filter(|r| r.label == label)
                .map(|r| read(&r.summary))
                .collect();
            (*name, median(&mut values))
        })
        .collect()
}

/// Runs the comparison; `Ok(false)` if any run failed validation.
pub fn run(params: &Params) -> Result<bool, String> {
    let bootstrap_b = params.bootstrap_b.clone().ok_or("compare needs --bootstrap-b")?;
    let sides: [(&'static str, String); 2] = [("A", params.bootstrap.clone()), ("B", bootstrap_b.clone())];
    let mut runs = Vec::new();
    for run in 1..=params.runs {
        for (label, bootstrap) in &sides {
            let mut side = params.clone();
            side.bootstrap = bootstrap.clone();
            side.bootstrap_b = None;
            side.report_dir = params.report_dir.join(format!("run-{run}-{label}"));
            eprintln!(
                "weir-bench compare: run {run}/{} on {label} ({bootstrap})",
                params.runs
            );
            let outcome = run_and_report(&side, Some(label))?;
            runs.push(CompareRun {
                label,
                run,
                bootstrap: bootstrap.clone(),
                report_dir: side.report_dir.display().to_string(),
                validation_passed: outcome.passed,
                summary: outcome.report.summary,
            });
        }
    }
    let (median_a, median_b) = (medians(&runs, "A"), medians(&runs, "B"));
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
        runs_per_broker: params.runs,
        params: params.clone(),
        runs,
        median_a,
        median_b,
        ratio_b_over_a,
    };
    fs::create_dir_all(&params.report_dir)
        .map_err(|e| format!("creating {}: {e}", params.report_dir.display()))?;
    let path = params.report_dir.join(COMPARE_JSON);
    let json = serde_json::to_string_pretty(&report).map_err(|e| format!("encoding compare.json: {e}"))?;
    fs::write(&path, json + "\n").map_err(|e| format!("writing {}: {e}", path.display()))?;
    let chart = overlay_chart(&report)?;
    let chart_path = params.report_dir.join(COMPARE_SVG);
    fs::write(&chart_path, chart).map_err(|e| format!("writing {}: {e}", chart_path.display()))?;
    print!("{}", table(&report));
    println!("  compare report: {}", path.display());
    Ok(passed)
}

fn table(report: &CompareReport) -> String {
    let mut out = format!(
        "\nweir-bench compare {}: medians of {} runs each, A = {}, B = {}\n  {:<24} {:>14} {:>14} {:>9}\n",
        report.scenario,
        report.runs_per_broker,
        report.bootstrap_a,
        report.bootstrap_b,
        "metric",
        "A",
        "B",
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
        let path = Path::new(&run.report_dir).join(crate::report::LATENCY_HGRM);
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
            color: if run.label == "A" {
                svg::COLORS[0]
            } else {
                svg::COLORS[1]
            },
            dashed: run.label == "B",
            points,
        });
    }
    let title = format!(
        "weir-bench compare {}: latency, A solid, B dashed",
        report.scenario
    );
    Ok(svg::percentile_chart_lines(&title, lines, x_max))
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}
