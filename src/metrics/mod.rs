//! Per-shard latency histograms (HdrHistogram) and counters.
//!
//! Each shard records into its own `Metrics` (no sharing, no atomics); a
//! report merges them. Latencies are in microseconds, 1 µs to 60 s at 3
//! significant digits.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

/// Largest latency a histogram records; larger values are clamped.
pub const LATENCY_US_MAX: u64 = 60_000_000;

#[derive(Default)]
pub struct Metrics {
    /// Handling time of each request by API key, from decoded to encoded.
    pub request_latency_us: BTreeMap<i16, Histogram<u64>>,
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
        let histogram = self.request_latency_us.entry(api_key).or_insert_with(|| {
            Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds")
        });
        histogram.saturating_record(latency_us.clamp(1, LATENCY_US_MAX));
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
