//! `sweep`: a latency-vs-throughput curve. For each of `--rates`,
//! ascending, the scenario (produce or e2e) runs open loop at that rate on
//! broker A (`--bootstrap`) and, if given, broker B (`--bootstrap-b`),
//! alternating A, B, A, B, ... `--runs` times each (the runs:
//! [`super::sides`]), every run into `rate-<r>/run-<n>-<A|B>/`. Then:
//!
//! - `sweep.json`: the parameters and, per rate and side, every run's
//!   summary, the medians of its metrics and whether the side sustained the
//!   rate ([`sustained`]);
//! - `sweep_latency_vs_throughput.svg`: p50, p99 and p99.9 against the
//!   achieved MB/s, one colour per broker ([`crate::report::sweep`]);
//! - a table on stdout: per rate and side, achieved MB/s, p50, p99, p99.9
//!   and sustained.
//!
//! Invariants: `sweep.json` and the chart are rewritten after every rate,
//! so a sweep cut short (a broker gone, Ctrl-C) keeps the rates it
//! finished; the JSON keys sides by letter (`A`, `B`), the chart and table
//! by label.

use std::{collections::BTreeMap, path::Path};

use serde::Serialize;

use super::sides::{self, RunRecord, Side};
use crate::{
    cli::{Params, Scenario},
    report::{self, json, sweep as chart, text::format_count},
};

pub const SWEEP_JSON: &str = "sweep.json";
pub const SWEEP_SVG: &str = "sweep_latency_vs_throughput.svg";
/// A broker sustained a target rate when the median of its runs' achieved
/// msgs/s is at least this fraction of the target.
pub const SUSTAINED_FRACTION: f64 = 0.95;

/// The sustained rule: `achieved` (msgs/s) at least [`SUSTAINED_FRACTION`]
/// of `target`.
pub fn sustained(achieved_msgs_per_s: f64, target_msgs_per_s: f64) -> bool {
    achieved_msgs_per_s >= SUSTAINED_FRACTION * target_msgs_per_s
}

#[derive(Serialize)]
struct SweepReport {
    schema_version: u32,
    tool: json::Tool,
    scenario: &'static str,
    /// Ascending, as run.
    rates_msgs_per_s: Vec<f64>,
    runs_per_broker: u32,
    sustained_fraction: f64,
    brokers: Vec<Side>,
    chart_svg: &'static str,
    params: Params,
    /// One per rate finished, ascending.
    points: Vec<RatePoint>,
}

#[derive(Serialize)]
struct RatePoint {
    target_msgs_per_s: f64,
    report_dir: String,
    /// By side letter, `A` and (with `--bootstrap-b`) `B`.
    sides: BTreeMap<&'static str, SidePoint>,
}

#[derive(Serialize)]
struct SidePoint {
    label: String,
    bootstrap: String,
    /// [`sustained`] of the median achieved msgs/s.
    sustained: bool,
    validation_passed: bool,
    /// Per metric, the median over the runs (the names of `compare.json`).
    median: BTreeMap<&'static str, f64>,
    runs: Vec<RunRecord>,
}

/// Runs the sweep; `Ok(false)` if any run failed validation.
pub fn run(params: &Params) -> Result<bool, String> {
    let rates = params.rates_msgs_per_s.clone().ok_or("sweep needs --rates")?;
    let brokers = sides::of(params);
    let mut report = SweepReport {
        schema_version: json::SCHEMA_VERSION,
        tool: json::Tool::current(),
        scenario: params.scenario.name(),
        rates_msgs_per_s: rates.clone(),
        runs_per_broker: params.runs,
        sustained_fraction: SUSTAINED_FRACTION,
        brokers: brokers.clone(),
        chart_svg: SWEEP_SVG,
        params: params.clone(),
        points: Vec::new(),
    };
    let mut path = params.report_dir.join(SWEEP_JSON);
    for rate in rates {
        let mut at_rate = params.clone();
        at_rate.rate_msgs_per_s = Some(rate);
        at_rate.rates_msgs_per_s = None;
        let dir = params.report_dir.join(format!("rate-{rate}"));
        let what = format!("sweep at {rate} msgs/s");
        let runs = sides::run_alternating(&at_rate, &brokers, &dir, &what)?;
        report.points.push(rate_point(rate, &dir, &brokers, &runs));
        path = report::write_json(&params.report_dir, SWEEP_JSON, &report)?;
        report::write(&params.report_dir, SWEEP_SVG, &draw(&report))?;
    }
    print!("{}", table(&report));
    println!("  sweep report: {}", path.display());
    let passed = report
        .points
        .iter()
        .flat_map(|point| point.sides.values())
        .all(|side| side.validation_passed);
    Ok(passed)
}

fn rate_point(rate: f64, dir: &Path, brokers: &[Side], runs: &[RunRecord]) -> RatePoint {
    let sides = brokers
        .iter()
        .map(|side| {
            let runs: Vec<RunRecord> = runs.iter().filter(|r| r.side == side.side).cloned().collect();
            let median = sides::medians(&runs, side.side);
            let point = SidePoint {
                label: side.label.clone(),
                bootstrap: side.bootstrap.clone(),
                sustained: sustained(median["throughput_msgs_per_s"], rate),
                validation_passed: runs.iter().all(|r| r.validation_passed),
                median,
                runs,
            };
            (side.side, point)
        })
        .collect();
    RatePoint {
        target_msgs_per_s: rate,
        report_dir: dir.display().to_string(),
        sides,
    }
}

/// A side's point of the chart: medians, latencies in ms.
fn chart_point(target_msgs_per_s: f64, side: &SidePoint) -> chart::Point {
    let ms = |name: &str| side.median[name] / 1e3;
    chart::Point {
        target_msgs_per_s,
        mb_per_s: side.median["throughput_mb_per_s"],
        latency_ms: [ms("latency_us_p50"), ms("latency_us_p99"), ms("latency_us_p999")],
        sustained: side.sustained,
    }
}

fn draw(report: &SweepReport) -> String {
    let curves: Vec<chart::Curve> = report
        .brokers
        .iter()
        .map(|side| chart::Curve {
            label: side.label.clone(),
            color: sides::color(side.side),
            points: report
                .points
                .iter()
                .filter_map(|point| {
                    let at = point.sides.get(side.side)?;
                    Some(chart_point(point.target_msgs_per_s, at))
                })
                .collect(),
        })
        .collect();
    let names: Vec<&str> = report.brokers.iter().map(|side| side.label.as_str()).collect();
    let title = format!(
        "weir-bench sweep {}: latency vs achieved throughput, {}",
        report.scenario,
        names.join(" vs ")
    );
    chart::chart(&title, &note(report), &curves, report.sustained_fraction)
}

/// What the chart's points are, under its title.
fn note(report: &SweepReport) -> String {
    let params = &report.params;
    let latency = match params.scenario {
        Scenario::E2e => "end-to-end latency",
        _ => "acknowledgement latency",
    };
    let bytes = if params.message_bytes_min == params.message_bytes_max {
        format!("{} B", params.message_bytes_min)
    } else {
        format!("{}-{} B", params.message_bytes_min, params.message_bytes_max)
    };
    format!(
        "{latency}, acks={}, {bytes} messages, {} partitions, compression {}; {} of {} s per point, \
         labelled with the target rate",
        params.acks.name(),
        params.partitions,
        params.compression.name(),
        runs_text(report.runs_per_broker),
        params.duration_s
    )
}

/// MB/s with two decimals below 10 (low rates), else one.
fn format_mb(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.1}")
    }
}

/// "1 run" or "medians of N runs".
fn runs_text(runs: u32) -> String {
    match runs {
        1 => "1 run".to_string(),
        runs => format!("medians of {runs} runs"),
    }
}

fn table(report: &SweepReport) -> String {
    let brokers: Vec<String> = report
        .brokers
        .iter()
        .map(|side| format!("{} = {} ({})", side.side, side.label, side.bootstrap))
        .collect();
    let mut out = format!(
        "\nweir-bench sweep {}: {} per rate and broker; {}\n  sustained: median achieved msgs/s at least \
         {}% of the target\n",
        report.scenario,
        runs_text(report.runs_per_broker),
        brokers.join(", "),
        report.sustained_fraction * 100.0,
    );
    let mut header = format!("  {:>13}", "");
    for side in &report.brokers {
        header.push_str(&format!("  {:<50}", side.label));
    }
    out.push_str(header.trim_end());
    out.push_str(&format!("\n  {:>13}", "target msgs/s"));
    for _ in &report.brokers {
        out.push_str(&format!(
            "  {:>8} {:>9} {:>9} {:>9} {:>10}",
            "MB/s", "p50 ms", "p99 ms", "p99.9 ms", "sustained"
        ));
    }
    out.push('\n');
    for point in &report.points {
        out.push_str(&format!(
            "  {:>13}",
            format_count(point.target_msgs_per_s.round() as u64)
        ));
        for side in &report.brokers {
            let Some(at) = point.sides.get(side.side) else {
                continue;
            };
            let ms = |name: &str| format!("{:.3}", at.median[name] / 1e3);
            out.push_str(&format!(
                "  {:>8} {:>9} {:>9} {:>9} {:>10}",
                format_mb(at.median["throughput_mb_per_s"]),
                ms("latency_us_p50"),
                ms("latency_us_p99"),
                ms("latency_us_p999"),
                if at.sustained { "yes" } else { "no" }
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::svg::{assert_texts, check_well_formed};

    #[test]
    fn a_rate_is_sustained_from_95_percent_of_its_target() {
        assert_eq!(SUSTAINED_FRACTION, 0.95);
        assert!(sustained(10_000.0, 10_000.0));
        assert!(sustained(9_500.0, 10_000.0));
        assert!(sustained(10_400.0, 10_000.0));
        assert!(!sustained(9_499.0, 10_000.0));
        assert!(!sustained(0.0, 200.0));
    }

    fn record(side: &'static str, label: &str, run: u32, msgs: f64) -> RunRecord {
        let mut summary = json::tests::sample_report().summary;
        summary.throughput_msgs_per_s = msgs;
        summary.throughput_mb_per_s = msgs * 1024.0 / 1e6;
        RunRecord {
            side,
            label: label.into(),
            run,
            bootstrap: format!("{side}:1"),
            report_dir: format!("rate/run-{run}-{side}"),
            validation_passed: true,
            summary,
        }
    }

    fn sample() -> SweepReport {
        let mut params = Params::defaults();
        params.bootstrap_b = Some("B:1".into());
        params.label_a = "weir".into();
        params.label_b = "kafka".into();
        params.rates_msgs_per_s = Some(vec![1_000.0, 2_000.0]);
        let brokers = sides::of(&params);
        let points = vec![
            rate_point(
                1_000.0,
                Path::new("d/rate-1000"),
                &brokers,
                &[record("A", "weir", 1, 1_000.0), record("B", "kafka", 1, 990.0)],
            ),
            rate_point(
                2_000.0,
                Path::new("d/rate-2000"),
                &brokers,
                &[record("A", "weir", 1, 1_990.0), record("B", "kafka", 1, 1_500.0)],
            ),
        ];
        SweepReport {
            schema_version: json::SCHEMA_VERSION,
            tool: json::Tool::current(),
            scenario: "produce",
            rates_msgs_per_s: vec![1_000.0, 2_000.0],
            runs_per_broker: 1,
            sustained_fraction: SUSTAINED_FRACTION,
            brokers,
            chart_svg: SWEEP_SVG,
            params,
            points,
        }
    }

    #[test]
    fn each_rate_and_side_has_its_runs_medians_and_sustained() {
        let value = serde_json::to_value(sample()).unwrap();
        assert_eq!(value["rates_msgs_per_s"], serde_json::json!([1000.0, 2000.0]));
        assert_eq!(value["sustained_fraction"], 0.95);
        assert_eq!(value["brokers"][1]["label"], "kafka");
        let points = value["points"].as_array().unwrap();
        assert_eq!(points.len(), 2);
        let b = &points[1]["sides"]["B"];
        assert_eq!(b["label"], "kafka");
        assert_eq!(b["sustained"], false);
        assert_eq!(points[1]["sides"]["A"]["sustained"], true);
        assert_eq!(b["median"]["throughput_msgs_per_s"], 1500.0);
        for metric in [
            "throughput_mb_per_s",
            "latency_us_p50",
            "latency_us_p90",
            "latency_us_p99",
            "latency_us_p999",
            "latency_us_max",
            "errors",
        ] {
            assert!(b["median"][metric].is_number(), "{metric}");
        }
        assert_eq!(b["runs"][0]["side"], "B");
        assert_eq!(b["runs"][0]["summary"]["latency_us"]["p99"], 500);
    }

    #[test]
    fn the_chart_and_the_table_name_both_brokers() {
        let report = sample();
        let svg = draw(&report);
        check_well_formed(&svg).unwrap();
        assert_texts(&svg, ["weir", "kafka", "1000/s", "2000/s"]);
        let table = table(&report);
        let rows: Vec<&str> = table
            .lines()
            .filter(|l| l.contains("1,000") || l.contains("2,000"))
            .collect();
        assert_eq!(rows.len(), 2, "{table}");
        assert!(rows[0].ends_with("yes") && rows[1].ends_with("no"), "{table}");
        assert!(rows[1].contains("yes"), "A sustained 2,000: {table}");
        assert!(table.contains("weir") && table.contains("kafka") && table.contains("p99.9 ms"));
        // 0.5 ms in every run's summary.
        assert!(rows[0].contains("0.500"), "{table}");
    }
}
