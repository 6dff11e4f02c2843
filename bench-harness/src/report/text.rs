//! What a person reads: number formatting and the end-of-run summary.

use super::json::{Report, Summary};

/// `1234567` → `1,234,567`.
pub fn format_count(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A latency in µs with a unit that keeps 3-4 significant digits.
pub fn format_latency_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.2} ms", us as f64 / 1e3)
    } else {
        format!("{:.2} s", us as f64 / 1e6)
    }
}

fn summary_lines(out: &mut String, name: &str, summary: &Summary) {
    let latency = &summary.latency_us;
    out.push_str(&format!(
        "  {name:<8} {:>10.1} MB/s {:>12} msgs/s  ({} msgs, {} B in {:.2} s)\n",
        summary.throughput_mb_per_s,
        format_count(summary.throughput_msgs_per_s.round() as u64),
        format_count(summary.messages),
        format_count(summary.bytes),
        summary.duration_s,
    ));
    if latency.count > 0 {
        out.push_str(&format!(
            "           latency ({}): p50 {}  p90 {}  p99 {}  p99.9 {}  p99.99 {}  max {}\n",
            summary.latency_kind,
            format_latency_us(latency.p50),
            format_latency_us(latency.p90),
            format_latency_us(latency.p99),
            format_latency_us(latency.p999),
            format_latency_us(latency.p9999),
            format_latency_us(latency.max),
        ));
    } else {
        out.push_str("           latency: no samples in the measurement\n");
    }
    if let Some(lag) = &summary.send_lag_us {
        out.push_str(&format!(
            "           send lag (due → written): p50 {}  p99 {}  p99.9 {}  max {}\n",
            format_latency_us(lag.p50),
            format_latency_us(lag.p99),
            format_latency_us(lag.p999),
            format_latency_us(lag.max),
        ));
    }
    let errors = if summary.error_counts.is_empty() {
        "0".to_string()
    } else {
        let kinds: Vec<String> = summary
            .error_counts
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "{} ({}), messages failed {}",
            summary.errors,
            kinds.join(", "),
            summary.messages_failed
        )
    };
    out.push_str(&format!("           errors {errors}\n"));
}

/// The end-of-run summary printed to stdout.
pub fn summary(report: &Report) -> String {
    let params = &report.params;
    let label = report
        .label
        .as_ref()
        .map(|l| format!(" [{l}]"))
        .unwrap_or_default();
    let sizes = if params.message_bytes_min == params.message_bytes_max {
        format!("{} B messages", params.message_bytes_min)
    } else {
        format!(
            "{}-{} B messages",
            params.message_bytes_min, params.message_bytes_max
        )
    };
    let mut out = format!(
        "weir-bench {}{label}: {} topic {} ({} partitions), {sizes}, acks={}, compression {}, {}\n",
        report.scenario,
        report.broker.bootstrap,
        report.broker.topic,
        report.broker.partitions,
        params.acks.name(),
        params.compression.name(),
        params.rate_label(),
    );
    out.push_str(&format!(
        "  measured {:.2} s after {} s warm-up, {} threads\n",
        report.summary.duration_s, params.warmup_s, report.run.threads
    ));
    for (name, flow) in &report.flows {
        summary_lines(&mut out, name, flow);
    }
    let validation = &report.validation;
    if let (Some(produced), Some(consumed)) = (validation.records_produced, validation.records_consumed) {
        out.push_str(&format!(
            "  records produced {} consumed {}\n",
            format_count(produced),
            format_count(consumed)
        ));
    } else if let Some(consumed) = validation.records_consumed {
        out.push_str(&format!("  records consumed {}\n", format_count(consumed)));
    } else if let Some(produced) = validation.records_produced {
        out.push_str(&format!("  records produced {}\n", format_count(produced)));
    }
    for (api, stages) in report.server_stats.iter().flatten() {
        out.push_str(&format!(
            "  broker {api} by stage (p50 / p99 / p99.9, whole run):\n"
        ));
        for stage in crate::broker_admin::STAGES {
            if let Some(latency) = stages.get(stage) {
                out.push_str(&format!(
                    "    {stage:<8} {:>10} / {:>10} / {:>10}  ({} samples)\n",
                    format_latency_us(latency.p50 as u64),
                    format_latency_us(latency.p99 as u64),
                    format_latency_us(latency.p999 as u64),
                    format_count(latency.count)
                ));
            }
        }
    }
    for check in &validation.checks {
        out.push_str(&format!("  check: {check}\n"));
    }
    for note in &report.notes {
        out.push_str(&format!("  note: {note}\n"));
    }
    out.push_str(&format!(
        "  validation {}\n",
        if validation.passed { "passed" } else { "FAILED" }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_counts_and_latencies() {
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(1_234_567), "1,234,567");
        assert_eq!(format_count(100), "100");
        assert_eq!(format_latency_us(812), "812 µs");
        assert_eq!(format_latency_us(2_310), "2.31 ms");
        assert_eq!(format_latency_us(1_500_000), "1.50 s");
    }
}
