//! Per-shard latency histograms (HdrHistogram) and counters.
//!
//! Each shard records into its own `Metrics` (no sharing, no atomics); the
//! admin listener (`crate::observe`) asks every shard for a copy
//! ([`ShardStats`]) and merges them, off the data path. Latencies are in
//! microseconds, 1 µs to 60 s at 3 significant digits. Each request is
//! recorded twice: into the cumulative histograms that `/metrics` exposes
//! (never reset: Prometheus counters only grow) and into the interval ones
//! that `/v1/latency?reset=true` starts afresh.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

/// Largest latency a histogram records; larger values are clamped.
pub const LATENCY_US_MAX: u64 = 60_000_000;

#[derive(Default)]
pub struct Metrics {
    /// Handling time of each request by API key, from decoded to encoded.
    pub request_latency_us: BTreeMap<i16, Histogram<u64>>,
    /// The same since the last reset.
    pub interval_latency_us: BTreeMap<i16, Histogram<u64>>,
    pub requests_rejected: u64,
    /// Record bytes returned by fetches, by where they came from.
    pub fetch_bytes_from_tail_cache: u64,
    /// Cold bytes spliced from the page cache (file regions).
    pub fetch_bytes_from_page_cache: u64,
    /// Cold bytes read with O_DIRECT and copied into the response.
    pub fetch_bytes_from_disk: u64,
}

impl Metrics {
    pub fn record_request(&mut self, api_key: i16, latency_us: u64) {
        let latency_us = latency_us.clamp(1, LATENCY_US_MAX);
        for histograms in [&mut self.request_latency_us, &mut self.interval_latency_us] {
            histograms
                .entry(api_key)
                .or_insert_with(new_histogram)
                .saturating_record(latency_us);
        }
    }

    /// A copy for the admin listener; `reset_interval` starts a new
    /// interval (the copy holds the one that ended).
    pub fn stats(&mut self, shard: usize, reset_interval: bool) -> ShardStats {
        let interval_latency_us = if reset_interval {
            std::mem::take(&mut self.interval_latency_us)
        } else {
            self.interval_latency_us.clone()
        };
        ShardStats {
            shard,
            request_latency_us: self.request_latency_us.clone(),
            interval_latency_us,
            requests_rejected: self.requests_rejected,
            fetch_bytes_from_tail_cache: self.fetch_bytes_from_tail_cache,
            fetch_bytes_from_page_cache: self.fetch_bytes_from_page_cache,
            fetch_bytes_from_disk: self.fetch_bytes_from_disk,
            partitions: Vec::new(),
        }
    }

    /// One line per API: count and p50/p99/p99.9/max in µs.
    pub fn summary(&self) -> String {
        let mut lines = Vec::new();
        for (api_key, histogram) in &self.request_latency_us {
            let name = kafka_protocol::messages::ApiKey::try_from(*api_key)
                .map(|k| format!("{k:?}"))
                .unwrap_or_else(|_| api_key.to_string());
            lines.push(format!(
                "{name}: count={} p50_us={} p99_us={} p999_us={} max_us={}",
                histogram.len(),
                histogram.value_at_quantile(0.5),
                histogram.value_at_quantile(0.99),
                histogram.value_at_quantile(0.999),
                histogram.max()
            ));
        }
        lines.push(format!(
            "fetch_bytes_from_tail_cache={} fetch_bytes_from_page_cache={} fetch_bytes_from_disk={}",
            self.fetch_bytes_from_tail_cache, self.fetch_bytes_from_page_cache, self.fetch_bytes_from_disk
        ));
        lines.join("; ")
    }
}

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds")
}

/// One shard's metrics, copied for the admin listener.
#[derive(Debug, Clone)]
pub struct ShardStats {
    pub shard: usize,
    pub request_latency_us: BTreeMap<i16, Histogram<u64>>,
    pub interval_latency_us: BTreeMap<i16, Histogram<u64>>,
    pub requests_rejected: u64,
    pub fetch_bytes_from_tail_cache: u64,
    pub fetch_bytes_from_page_cache: u64,
    pub fetch_bytes_from_disk: u64,
    pub partitions: Vec<PartitionStats>,
}

/// One partition's offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStats {
    pub topic: String,
    pub partition: i32,
    pub log_start_offset: i64,
    pub high_watermark: i64,
}

/// Adds `from` into `into`, API by API.
pub fn merge_histograms(into: &mut BTreeMap<i16, Histogram<u64>>, from: &BTreeMap<i16, Histogram<u64>>) {
    for (api_key, histogram) in from {
        into.entry(*api_key)
            .or_insert_with(new_histogram)
            .add(histogram)
            .expect("histograms of the same bounds add");
    }
}
