//! `latency.hgrm`: the percentile distribution in HdrHistogram's standard
//! text format (what `Histogram.outputPercentileDistribution` prints and
//! HdrHistogram's plotter, `plotFiles.html`, and wrk2 users read):
//!
//! ```text
//!        Value     Percentile TotalCount 1/(1-Percentile)
//!
//!        0.123 0.000000000000          1           1.00
//!        ...
//!       17.039 1.000000000000     100000
//! #[Mean    =        0.301, StdDeviation   =        0.298]
//! #[Max     =       17.039, Total count    =       100000]
//! #[Buckets =           22, SubBuckets     =         2048]
//! ```
//!
//! Values are recorded in µs and written in milliseconds (scaling ratio
//! 1000), the unit the plotter labels its axis with, with as many decimals
//! as the histogram has significant digits.

use hdrhistogram::Histogram;

/// Percentile ticks per half distance to 100% (HdrHistogram's default 5).
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;
/// µs per output unit (ms).
pub const OUTPUT_SCALING_RATIO: f64 = 1_000.0;

pub fn percentile_distribution(histogram: &Histogram<u64>, significant_digits: u8) -> String {
    let decimals = usize::from(significant_digits);
    let mut out = format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for step in histogram.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        total += step.count_since_last_iteration();
        let value = step.value_iterated_to() as f64 / OUTPUT_SCALING_RATIO;
        let quantile = step.quantile_iterated_to();
        if quantile < 1.0 {
            out.push_str(&format!(
                "{value:>12.decimals$} {quantile:>2.12} {total:>10} {:>14.2}\n",
                1.0 / (1.0 - quantile)
            ));
        } else {
            out.push_str(&format!("{value:>12.decimals$} {quantile:>2.12} {total:>10}\n"));
        }
    }
    let (mean, deviation, max) = if histogram.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            histogram.mean() / OUTPUT_SCALING_RATIO,
            histogram.stdev() / OUTPUT_SCALING_RATIO,
            histogram.max() as f64 / OUTPUT_SCALING_RATIO,
        )
    };
    // Sub-buckets: the power of two that resolves 2 * 10^digits values.
    let sub_buckets = (2.0 * 10f64.powi(i32::from(significant_digits)))
        .log2()
        .ceil()
        .exp2() as u64;
    out.push_str(&format!(
        "#[Mean    = {mean:>12.decimals$}, StdDeviation   = {deviation:>12.decimals$}]\n"
    ));
    out.push_str(&format!(
        "#[Max     = {max:>12.decimals$}, Total count    = {:>12}]\n",
        histogram.len()
    ));
    out.push_str(&format!(
        "#[Buckets = {:>12}, SubBuckets     = {sub_buckets:>12}]\n",
        histogram.buckets()
    ));
    out
}

/// Parses the table rows back: (value in output units, percentile, total
/// count). Used by tests and `compare` to check and read files.
pub fn parse_rows(text: &str) -> Result<Vec<(f64, f64, u64)>, String> {
    let mut rows = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("Value") {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != 3 && fields.len() != 4 {
            return Err(format!("line {}: {} fields", number + 1, fields.len()));
        }
        let parse = |field: &str| {
            field
                .parse::<f64>()
                .map_err(|_| format!("line {}: `{field}`", number + 1))
        };
        rows.push((parse(fields[0])?, parse(fields[1])?, parse(fields[2])? as u64));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{latency_histogram, LATENCY_SIGNIFICANT_DIGITS};

    #[test]
    fn writes_the_standard_layout() {
        let mut histogram = latency_histogram();
        for value in 1..=10_000u64 {
            histogram.record(value * 10).unwrap();
        }
        let text = percentile_distribution(&histogram, LATENCY_SIGNIFICANT_DIGITS);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");
        // First row: the smallest value (10 µs = 0.010 ms) at percentile 0.
        assert_eq!(lines[2], "       0.010 0.000000000000          1           1.00");
        let footer: Vec<&&str> = lines.iter().filter(|l| l.starts_with("#[")).collect();
        assert_eq!(footer.len(), 3);
        assert!(footer[0].starts_with("#[Mean    =       50.0"), "{}", footer[0]);
        assert!(
            footer[1].contains("Total count    =        10000]"),
            "{}",
            footer[1]
        );
        assert!(
            footer[2].ends_with("SubBuckets     =         2048]"),
            "{}",
            footer[2]
        );

        let rows = parse_rows(&text).unwrap();
        assert!(rows
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1 && w[0].2 <= w[1].2));
        let last = rows.last().unwrap();
        assert_eq!((last.1, last.2), (1.0, 10_000));
        assert!((last.0 - 100.0).abs() < 0.1, "max ≈ 100 ms, got {}", last.0);
        // The last row has no 1/(1-Percentile) column.
        let last_line = lines.iter().rev().find(|l| !l.starts_with('#')).unwrap();
        assert_eq!(last_line.split_whitespace().count(), 3);
        // The 99th percentile row reads 99 ms.
        let p99 = rows.iter().find(|r| r.1 >= 0.99).unwrap();
        assert!((p99.0 - 99.0).abs() < 0.2, "{p99:?}");
    }

    #[test]
    fn empty_histograms_have_header_and_footer_only() {
        let text = percentile_distribution(&latency_histogram(), 3);
        assert!(parse_rows(&text).unwrap().is_empty());
        assert!(text.contains("Total count    =            0]"));
    }
}
