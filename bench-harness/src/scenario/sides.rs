//! What `compare` and `sweep` share: the brokers they drive, called sides
//! (A, `--bootstrap`, always; B, `--bootstrap-b`, when given; each named
//! by its `--label-a`/`--label-b`), `--runs` runs of one scenario on them,
//! alternating A, B, A, B, ... so that drift on the machine (page cache,
//! thermal, neighbours) hits both alike, and the medians of those runs'
//! summaries.
//!
//! Invariants: a side's letter (`A`, `B`) is what files and JSON keys use
//! (`run-<n>-<A|B>/`, `median_a`); its label is what people read (tables,
//! charts, each run's `report.json` `label`). Every run writes its own
//! report directory below the directory the caller names.

use std::{collections::BTreeMap, path::Path};

use plotters::style::RGBColor;
use serde::Serialize;

use super::run_and_report;
use crate::{
    cli::Params,
    report::{json, svg},
};

/// One broker of a comparison or sweep.
#[derive(Clone, Debug, Serialize)]
pub struct Side {
    /// `A` or `B`.
    pub side: &'static str,
    pub label: String,
    pub bootstrap: String,
}

/// Side A and, if `--bootstrap-b` is set, side B.
pub fn of(params: &Params) -> Vec<Side> {
    let a = Side {
        side: "A",
        label: params.label_a.clone(),
        bootstrap: params.bootstrap.clone(),
    };
    let b = params.bootstrap_b.as_ref().map(|bootstrap| Side {
        side: "B",
        label: params.label_b.clone(),
        bootstrap: bootstrap.clone(),
    });
    std::iter::once(a).chain(b).collect()
}

/// A side's colour in every chart of compare and sweep: A blue, B red.
pub fn color(side: &str) -> RGBColor {
    if side == "A" {
        svg::COLORS[0]
    } else {
        svg::COLORS[1]
    }
}

/// One finished run of one side.
#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    /// `A` or `B`.
    pub side: &'static str,
    pub label: String,
    /// 1 to `--runs`.
    pub run: u32,
    pub bootstrap: String,
    pub report_dir: String,
    pub validation_passed: bool,
    pub summary: json::Summary,
}

/// A metric of a run: its name and how to read it from the run's summary.
pub type Metric = (&'static str, fn(&json::Summary) -> f64);

/// The metrics whose medians are reported, in print order.
pub const METRICS: &[Metric] = &[
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

/// The median of `values` (sorted in place); 0 for none.
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

/// Per metric of [`METRICS`], the median over the runs of `side`.
pub fn medians(runs: &[RunRecord], side: &str) -> BTreeMap<&'static str, f64> {
    METRICS
        .iter()
        .map(|(name, read)| {
            let mut values: Vec<f64> = runs
                .iter()
                .filter(|r| r.side == side)
                .map(|r| read(&r.summary))
                .collect();
            (*name, median(&mut values))
        })
        .collect()
}

/// Runs `params.scenario` `params.runs` times on each of `sides`,
/// alternating, each run into `dir/run-<n>-<side>`; `what` starts the
/// progress line of each run (`compare`, `sweep at 200 msgs/s`).
pub fn run_alternating(
    params: &Params,
    sides: &[Side],
    dir: &Path,
    what: &str,
) -> Result<Vec<RunRecord>, String> {
    let mut runs = Vec::new();
    for run in 1..=params.runs {
        for side in sides {
            let mut one = params.clone();
            one.bootstrap = side.bootstrap.clone();
            one.bootstrap_b = None;
            one.report_dir = dir.join(format!("run-{run}-{}", side.side));
            eprintln!(
                "weir-bench {what}: run {run}/{} on {} ({})",
                params.runs, side.label, side.bootstrap
            );
            let outcome = run_and_report(&one, Some(&side.label))?;
            runs.push(RunRecord {
                side: side.side,
                label: side.label.clone(),
                run,
                bootstrap: side.bootstrap.clone(),
                report_dir: one.report_dir.display().to_string(),
                validation_passed: outcome.passed,
                summary: outcome.report.summary,
            });
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }

    #[test]
    fn side_b_only_with_its_bootstrap_and_labels_from_the_flags() {
        let mut params = Params::defaults();
        let sides = of(&params);
        assert_eq!(sides.len(), 1);
        assert_eq!((sides[0].side, sides[0].label.as_str()), ("A", "A"));
        params.bootstrap_b = Some("b:2".into());
        params.label_a = "weir".into();
        params.label_b = "kafka".into();
        let sides = of(&params);
        let names: Vec<_> = sides
            .iter()
            .map(|s| (s.side, s.label.as_str(), s.bootstrap.as_str()))
            .collect();
        assert_eq!(names, [("A", "weir", "127.0.0.1:9092"), ("B", "kafka", "b:2")]);
    }

    #[test]
    fn medians_are_per_side() {
        let summary = |msgs: f64| {
            let mut summary = json::tests::sample_report().summary;
            summary.throughput_msgs_per_s = msgs;
            summary
        };
        let record = |side, run, msgs| RunRecord {
            side,
            label: side.to_string(),
            run,
            bootstrap: "h:1".into(),
            report_dir: "d".into(),
            validation_passed: true,
            summary: summary(msgs),
        };
        let runs = [
            record("A", 1, 100.0),
            record("B", 1, 10.0),
            record("A", 2, 300.0),
            record("B", 2, 30.0),
            record("A", 3, 200.0),
        ];
        assert_eq!(medians(&runs, "A")["throughput_msgs_per_s"], 200.0);
        assert_eq!(medians(&runs, "B")["throughput_msgs_per_s"], 20.0);
        assert_eq!(medians(&runs, "A")["latency_us_p99"], 500.0);
    }
}
