//! The main thread's view: intervals from every worker merged per second
//! (the time series), per phase (warm-up vs measurement) and cumulatively
//! (the progress line).
//!
//! Per-second histograms are kept only until their second is finalized
//! (two seconds after it ended, when every worker has reported it), then
//! reduced to the point's percentiles; a late interval still counts in the
//! phase totals. A second without any interval is a zero point, not a gap:
//! a stalled broker must show as a stall.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::{latency_histogram, Flow, Interval};
use crate::report::text::{format_count, format_latency_us};

/// Counters and latencies summed over any set of intervals.
#[derive(Clone, Debug)]
pub struct Totals {
    pub messages: u64,
    pub bytes: u64,
    pub wire_bytes: u64,
    pub requests: u64,
    pub messages_failed: u64,
    pub errors: BTreeMap<String, u64>,
    pub last_completion_ns: u64,
    pub histogram: Histogram<u64>,
    pub send_lag: Histogram<u64>,
}

impl Default for Totals {
    fn default() -> Totals {
        Totals {
            messages: 0,
            bytes: 0,
            wire_bytes: 0,
            requests: 0,
            messages_failed: 0,
            errors: BTreeMap::new(),
            last_completion_ns: 0,
            histogram: latency_histogram(),
            send_lag: latency_histogram(),
        }
    }
}

impl Totals {
    pub fn add(&mut self, interval: &Interval) {
        self.messages += interval.messages;
        self.bytes += interval.bytes;
        self.wire_bytes += interval.wire_bytes;
        self.requests += interval.requests;
        self.messages_failed += interval.messages_failed;
        for (kind, count) in &interval.errors {
            *self.errors.entry(kind.clone()).or_default() += count;
        }
        self.last_completion_ns = self.last_completion_ns.max(interval.last_completion_ns);
        // Same bounds everywhere, so adding cannot fail.
        let _ = self.histogram.add(&interval.histogram);
        let _ = self.send_lag.add(&interval.send_lag);
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// One second of one flow, for `report.json` and the throughput chart.
#[derive(Clone, Debug, Serialize)]
pub struct SeriesPoint {
    /// Start of the second, since the run started.
    pub elapsed_s: u64,
    pub phase: &'static str,
    pub messages: u64,
    pub bytes: u64,
    pub throughput_mb_per_s: f64,
    pub throughput_msgs_per_s: f64,
    pub errors: u64,
    pub latency_us_p50: u64,
    pub latency_us_p99: u64,
    pub latency_us_max: u64,
}

pub struct FlowAggregate {
    pub flow: Flow,
    pub active: bool,
    pending: BTreeMap<u64, Totals>,
    /// Seconds below this are in `series`.
    finalized_below: u64,
    /// One past the latest second any interval reported.
    seen_below: u64,
    pub series: Vec<SeriesPoint>,
    pub warmup: Totals,
    pub measured: Totals,
}

impl FlowAggregate {
    fn new(flow: Flow, active: bool) -> FlowAggregate {
        FlowAggregate {
            flow,
            active,
            pending: BTreeMap::new(),
            finalized_below: 0,
            seen_below: 0,
            series: Vec::new(),
            warmup: Totals::default(),
            measured: Totals::default(),
        }
    }

    pub fn all_errors(&self) -> u64 {
        self.warmup.error_count() + self.measured.error_count()
    }
}

pub struct Aggregate {
    pub flows: [FlowAggregate; 2],
    warmup_seconds: u64,
    /// Seconds from this one on are the drain after the measurement.
    drain_from_second: u64,
}

impl Aggregate {
    pub fn new(active: &[Flow], warmup_seconds: u64, measured_seconds: u64) -> Aggregate {
        Aggregate {
            flows: Flow::ALL.map(|flow| FlowAggregate::new(flow, active.contains(&flow))),
            warmup_seconds,
            drain_from_second: warmup_seconds + measured_seconds,
        }
    }

    pub fn flow(&self, flow: Flow) -> &FlowAggregate {
        &self.flows[flow.index()]
    }

    fn phase(&self, second: u64) -> &'static str {
        if second < self.warmup_seconds {
            "warmup"
        } else if second < self.drain_from_second {
            "measure"
        } else {
            "drain"
        }
    }

    pub fn add(&mut self, interval: Interval) {
        let in_warmup = interval.second < self.warmup_seconds;
        let flow = &mut self.flows[interval.flow.index()];
        flow.active = true;
        flow.seen_below = flow.seen_below.max(interval.second + 1);
        if in_warmup {
            flow.warmup.add(&interval);
        } else {
            flow.measured.add(&interval);
        }
        if interval.second >= flow.finalized_below {
            flow.pending.entry(interval.second).or_default().add(&interval);
        } else if let Ok(at) = flow
            .series
            .binary_search_by_key(&interval.second, |p| p.elapsed_s)
        {
            let point = &mut flow.series[at];
            point.messages += interval.messages;
            point.bytes += interval.bytes;
            point.throughput_msgs_per_s = point.messages as f64;
            point.throughput_mb_per_s = point.bytes as f64 / 1e6;
            point.errors += interval.error_count();
        }
    }

    /// Turns every second below `below` into a series point (zeros where
    /// nothing was reported).
    pub fn finalize_before(&mut self, below: u64) {
        for index in 0..self.flows.len() {
            let (active, from) = (self.flows[index].active, self.flows[index].finalized_below);
            if !active {
                continue;
            }
            for second in from..below {
                let phase = self.phase(second);
                let flow = &mut self.flows[index];
                let totals = flow.pending.remove(&second).unwrap_or_default();
                flow.series.push(SeriesPoint {
                    elapsed_s: second,
                    phase,
                    messages: totals.messages,
                    bytes: totals.bytes,
                    throughput_mb_per_s: totals.bytes as f64 / 1e6,
                    throughput_msgs_per_s: totals.messages as f64,
                    errors: totals.error_count(),
                    latency_us_p50: totals.histogram.value_at_quantile(0.5),
                    latency_us_p99: totals.histogram.value_at_quantile(0.99),
                    latency_us_max: totals.histogram.max(),
                });
            }
            let flow = &mut self.flows[index];
            flow.finalized_below = flow.finalized_below.max(below);
        }
    }

    /// Finalizes every second any interval reported.
    pub fn finish(&mut self) {
        let below = self.flows.iter().map(|f| f.seen_below).max().unwrap_or(0);
        self.finalize_before(below);
    }

    /// One line: elapsed time, phase, then per active flow the rate of the
    /// last complete second, p99 so far in this phase, and errors so far.
    pub fn progress_line(&self, elapsed_s: u64) -> String {
        let phase = self.phase(elapsed_s.saturating_sub(1));
        let mut line = format!("[{elapsed_s:>4}s {phase:<7}]");
        for flow in self.flows.iter().filter(|f| f.active) {
            let last = elapsed_s.saturating_sub(1);
            let (messages, bytes) = match flow.pending.get(&last) {
                Some(totals) => (totals.messages, totals.bytes),
                None => flow
                    .series
                    .iter()
                    .rev()
                    .find(|p| p.elapsed_s == last)
                    .map_or((0, 0), |p| (p.messages, p.bytes)),
            };
            let phase_totals = if phase == "warmup" {
                &flow.warmup
            } else {
                &flow.measured
            };
            let p99 = if phase_totals.histogram.is_empty() {
                "-".to_string()
            } else {
                format_latency_us(phase_totals.histogram.value_at_quantile(0.99))
            };
            line.push_str(&format!(
                " {}: {:>11} msgs/s {:>9.1} MB/s p99 {:>9} errors {}",
                flow.flow.name(),
                format_count(messages),
                bytes as f64 / 1e6,
                p99,
                flow.all_errors()
            ));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(second: u64, messages: u64, latency_us: u64) -> Interval {
        let mut interval = Interval::new(Flow::Produce, second);
        interval.messages = messages;
        interval.bytes = messages * 100;
        interval.histogram.record_n(latency_us, messages).unwrap();
        interval
    }

    #[test]
    fn warmup_is_kept_out_of_the_measurement_and_gaps_are_zero_points() {
        let mut aggregate = Aggregate::new(&[Flow::Produce], 2, 2);
        aggregate.add(interval(0, 10, 9_000));
        aggregate.add(interval(1, 10, 9_000));
        aggregate.add(interval(2, 20, 100));
        aggregate.add(interval(4, 30, 200));
        aggregate.add(interval(2, 5, 100)); // a second thread, same second
        aggregate.finish();
        let flow = aggregate.flow(Flow::Produce);
        assert_eq!(flow.warmup.messages, 20);
        assert_eq!(flow.measured.messages, 55);
        assert!(
            flow.measured.histogram.max() < 1_000,
            "no warm-up latency in the measurement"
        );
        let seconds: Vec<(u64, u64, &str)> = flow
            .series
            .iter()
            .map(|p| (p.elapsed_s, p.messages, p.phase))
            .collect();
        assert_eq!(
            seconds,
            [
                (0, 10, "warmup"),
                (1, 10, "warmup"),
                (2, 25, "measure"),
                (3, 0, "measure"),
                (4, 30, "drain")
            ]
        );
        assert!(!aggregate.flow(Flow::Consume).active);
    }

    #[test]
    fn late_intervals_still_count() {
        let mut aggregate = Aggregate::new(&[Flow::Produce], 0, 10);
        aggregate.add(interval(0, 10, 100));
        aggregate.finalize_before(1);
        aggregate.add(interval(0, 5, 100));
        assert_eq!(aggregate.flow(Flow::Produce).series[0].messages, 15);
        assert_eq!(aggregate.flow(Flow::Produce).measured.messages, 15);
        assert!(aggregate.progress_line(1).contains("produce"));
    }
}
