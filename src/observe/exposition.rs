//! `/metrics` in the Prometheus text format through `prometheus-client`,
//! and `/v1/latency` as HdrHistogram `.hgrm` text. Pure: renders merged
//! shard stats.
//!
//! Latency histograms are kept as HdrHistograms on the shards; here they
//! become Prometheus buckets (counts at fixed bounds from 50 µs to 10 s),
//! and `_sum` is the HdrHistogram's mean times its count (HdrHistogram
//! keeps no exact sum; the error is within its 3 significant digits).

use hdrhistogram::Histogram;
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet},
    metrics::MetricType,
    registry::Registry,
};

use super::Readiness;
use std::collections::BTreeMap;

use crate::metrics::{ShardStats, Stage, StageHistograms, FETCH_SOURCES};

pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the latency buckets.
const LATENCY_BUCKETS_S: [f64; 17] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];

/// The Kafka name of an API key ("Produce"), or its number.
pub fn api_name(api_key: i16) -> String {
    kafka_protocol::messages::ApiKey::try_from(api_key)
        .map(|k| format!("{k:?}"))
        .unwrap_or_else(|_| api_key.to_string())
}

/// The API key of a Kafka API name, case-insensitively.
pub fn api_key_of(name: &str) -> Option<i16> {
    (0..=i16::from(u8::MAX))
        .filter(|&key| kafka_protocol::messages::ApiKey::try_from(key).is_ok())
        .find(|&key| api_name(key).eq_ignore_ascii_case(name))
}

/// Everything one scrape shows, merged across shards.
#[derive(Debug)]
struct Scrape {
    latency_us: StageHistograms,
    requests_rejected: u64,
    /// By `FetchSource`.
    fetch_bytes: [u64; 3],
    fetch_reads: [u64; 3],
    partitions_per_shard: Vec<(usize, usize)>,
    /// (topic, partition, log start, log end)
    offsets: Vec<(String, i32, i64, i64)>,
    uptime_s: f64,
    ready: bool,
    resident_bytes: Option<u64>,
    /// Per shard: (shard, connections open, accepted, stalls, late
    /// cross-shard deliveries).
    shards: Vec<(usize, u64, u64, u64, u64)>,
    /// Cross-shard message delivery (µs), every shard's merged.
    mesh_delivery_us: Option<Histogram<u64>>,
    bytes_in_by_topic: BTreeMap<String, u64>,
    bytes_out_by_topic: BTreeMap<String, u64>,
    /// (group, topic, partition, committed offset, lag when the partition
    /// is known)
    groups: Vec<(String, String, i32, i64, Option<i64>)>,
    /// Catch-up pacing's allowance per shard; None: unlimited.
    allowance_bytes_per_s: Option<u64>,
    /// Partition errors by (API key, error code).
    errors: BTreeMap<(i16, i16), u64>,
}

/// The exposition of every shard's `stats`; `latency_us` is their latency
/// histograms merged (by [`crate::metrics::merge_histograms_yielding`], on
/// the shard, before this synchronous part).
pub fn render(
    stats: &[ShardStats],
    latency_us: StageHistograms,
    readiness: &Readiness,
    allowance_bytes_per_s: Option<u64>,
) -> String {
    let mut scrape = Scrape {
        latency_us: StageHistograms::new(),
        requests_rejected: 0,
        fetch_bytes: [0; 3],
        fetch_reads: [0; 3],
        partitions_per_shard: Vec::new(),
        offsets: Vec::new(),
        uptime_s: readiness.started.elapsed().as_secs_f64(),
        ready: readiness.ready(),
        resident_bytes: resident_bytes(),
        shards: Vec::new(),
        bytes_in_by_topic: BTreeMap::new(),
        bytes_out_by_topic: BTreeMap::new(),
        groups: Vec::new(),
        allowance_bytes_per_s,
        errors: BTreeMap::new(),
        mesh_delivery_us: None,
    };
    for s in stats {
        scrape.requests_rejected += s.metrics.requests_rejected;
        for source in 0..FETCH_SOURCES.len() {
            scrape.fetch_bytes[source] += s.metrics.fetch_bytes[source];
            scrape.fetch_reads[source] += s.metrics.fetch_reads[source];
        }
        scrape.partitions_per_shard.push((s.shard, s.partitions.len()));
        scrape.shards.push((
            s.shard,
            s.metrics.connections_open,
            s.metrics.connections_accepted,
            s.metrics.stalls,
            s.metrics.mesh_late_deliveries,
        ));
        if let Some(delivery) = &s.metrics.mesh_delivery_us {
            scrape
                .mesh_delivery_us
                .get_or_insert_with(crate::metrics::new_histogram)
                .add(delivery)
                .expect("histograms of the same bounds add");
        }
        for (key, count) in &s.metrics.errors {
            *scrape.errors.entry(*key).or_default() += count;
        }
        for (topic, bytes) in &s.metrics.bytes_in_by_topic {
            *scrape.bytes_in_by_topic.entry(topic.clone()).or_default() += bytes;
        }
        for (topic, bytes) in &s.metrics.bytes_out_by_topic {
            *scrape.bytes_out_by_topic.entry(topic.clone()).or_default() += bytes;
        }
        scrape.offsets.extend(
            s.partitions
                .iter()
                .map(|p| (p.topic.clone(), p.partition, p.log_start_offset, p.high_watermark)),
        );
    }
    scrape.offsets.sort();
    // Lag: what the group committed against the partition's end.
    let ends: BTreeMap<(&str, i32), i64> = scrape
        .offsets
        .iter()
        .map(|(topic, partition, _, end)| ((topic.as_str(), *partition), *end))
        .collect();
    let mut groups: Vec<(String, String, i32, i64, Option<i64>)> = stats
        .iter()
        .flat_map(|s| s.committed.iter())
        .map(|(group, topic, partition, offset)| {
            let lag = ends
                .get(&(topic.as_str(), *partition))
                .map(|end| (end - offset).max(0));
            (group.clone(), topic.clone(), *partition, *offset, lag)
        })
        .collect();
    groups.sort();
    scrape.groups = groups;
    scrape.latency_us = latency_us;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
        .expect("writing to a String does not fail");
    text
}

/// A value with a label set, encoded as one metric of a family.
/// An HdrHistogram of µs as a Prometheus histogram in seconds.
fn encode_latency(mut metric: MetricEncoder, histogram: &Histogram<u64>) -> Result<(), std::fmt::Error> {
    let (buckets, sum_s) = latency_buckets(histogram);
    metric.encode_histogram::<NoLabelSet>(sum_s, histogram.len(), &buckets, None)
}

/// The counts of `histogram` in each of `LATENCY_BUCKETS_S` (a value is in
/// the first bucket whose bound is at least the lowest value it stands
/// for, as `count_between(0, bound)` counts) and its sum in seconds, from
/// one walk over its recorded values: a `count_between` per bucket walked
/// the whole histogram each time, milliseconds per scrape.
fn latency_buckets(histogram: &Histogram<u64>) -> (Vec<(f64, u64)>, f64) {
    let mut counts = vec![0u64; LATENCY_BUCKETS_S.len()];
    let mut sum_us = 0f64;
    let mut bucket = 0;
    for step in histogram.iter_recorded() {
        let value = step.value_iterated_to();
        let count = step.count_at_value();
        sum_us += histogram.median_equivalent(value) as f64 * count as f64;
        let lowest = histogram.lowest_equivalent(value);
        while bucket < LATENCY_BUCKETS_S.len() && ((LATENCY_BUCKETS_S[bucket] * 1e6) as u64) < lowest {
            bucket += 1;
        }
        if bucket < LATENCY_BUCKETS_S.len() {
            counts[bucket] += count;
        }
    }
    let buckets = LATENCY_BUCKETS_S.iter().copied().zip(counts).collect();
    (buckets, sum_us / 1e6)
}

#[derive(Debug)]
struct Value<T>(MetricType, T);

impl EncodeMetric for Value<u64> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        match self.0 {
            MetricType::Counter => encoder.encode_counter::<NoLabelSet, _, u64>(&self.1, None),
            _ => encoder.encode_gauge(&self.1),
        }
    }
    fn metric_type(&self) -> MetricType {
        self.0
    }
}

impl EncodeMetric for Value<f64> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.1)
    }
    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

impl EncodeMetric for Value<i64> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.1)
    }
    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Requests and their latency, by API.
        let mut family = encoder.encode_descriptor(
            "weir_requests",
            "Kafka requests handled, by API",
            None,
            MetricType::Counter,
        )?;
        for ((api_key, stage), histogram) in &self.latency_us {
            if *stage == Stage::Handler {
                let labels = [("api", api_name(*api_key))];
                Value(MetricType::Counter, histogram.len()).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "weir_request_duration_seconds",
            "Time requests spend in each stage, by API: socket (first packet received to frame read; sampled), decode, queue, handler (decoded to encoded), hop (Produce: to the owning shard and back), coordinator (group and transaction APIs: the coordinator call), append (the O_DIRECT write of a batch or of coordinator records), fsync (the group commit), read, wait and paced (Fetch: reading, the long poll, catch-up pacing), respond (encoded to written)",
            None,
            MetricType::Histogram,
        )?;
        for ((api_key, stage), histogram) in &self.latency_us {
            let labels = [("api", api_name(*api_key)), ("stage", stage.name().to_string())];
            encode_latency(family.encode_family(&labels)?, histogram)?;
        }
        if let Some(delivery) = &self.mesh_delivery_us {
            encode_latency(
                encoder.encode_descriptor(
                    "weir_mesh_delivery_seconds",
                    "Cross-shard messages (calls and replies): sent by one shard → received by another",
                    None,
                    MetricType::Histogram,
                )?,
                delivery,
            )?;
        }
        let mut family = encoder.encode_descriptor(
            "weir_errors",
            "Error codes answered (top-level, per resource and per partition), by API and Kafka error code",
            None,
            MetricType::Counter,
        )?;
        for ((api_key, code), count) in &self.errors {
            let error = kafka_protocol::ResponseError::try_from_code(*code)
                .map_or_else(|| code.to_string(), |e| format!("{e:?}"));
            let labels = [
                ("api", api_name(*api_key)),
                ("code", code.to_string()),
                ("error", error),
            ];
            Value(MetricType::Counter, *count).encode(family.encode_family(&labels)?)?;
        }
        Value(MetricType::Counter, self.requests_rejected).encode(encoder.encode_descriptor(
            "weir_requests_rejected",
            "Requests refused before a handler (malformed, unknown API or version, too large)",
            None,
            MetricType::Counter,
        )?)?;
        let mut family = encoder.encode_descriptor(
            "weir_fetch_bytes",
            "Record bytes fetch responses carried, by where they came from",
            None,
            MetricType::Counter,
        )?;
        for (source, bytes) in FETCH_SOURCES.iter().zip(self.fetch_bytes) {
            Value(MetricType::Counter, bytes).encode(family.encode_family(&[("source", *source)])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "weir_fetch_reads",
            "Partition reads that returned records, by where they came from (source=tail_cache: tail-cache hits)",
            None,
            MetricType::Counter,
        )?;
        for (source, reads) in FETCH_SOURCES.iter().zip(self.fetch_reads) {
            Value(MetricType::Counter, reads).encode(family.encode_family(&[("source", *source)])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "weir_partitions",
            "Partitions owned, by shard",
            None,
            MetricType::Gauge,
        )?;
        for (shard, count) in &self.partitions_per_shard {
            Value(MetricType::Gauge, *count as u64)
                .encode(family.encode_family(&[("shard", shard.to_string())])?)?;
        }
        for (name, help, pick) in [
            (
                "weir_log_start_offset",
                "First offset a fetch can read, by partition",
                (|o: &(String, i32, i64, i64)| o.2) as fn(&(String, i32, i64, i64)) -> i64,
            ),
            (
                "weir_log_end_offset",
                "Next offset to be written (the high watermark on one broker), by partition",
                |o: &(String, i32, i64, i64)| o.3,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for offsets in &self.offsets {
                let labels = [("topic", offsets.0.clone()), ("partition", offsets.1.to_string())];
                Value(MetricType::Gauge, pick(offsets)).encode(family.encode_family(&labels)?)?;
            }
        }
        type PerShard = fn(&(usize, u64, u64, u64, u64)) -> u64;
        let per_shard: [(&str, &str, MetricType, PerShard); 4] = [
            (
                "weir_connections",
                "Kafka connections open, by shard",
                MetricType::Gauge,
                |s| s.1,
            ),
            (
                "weir_connections_accepted",
                "Kafka connections accepted, by shard",
                MetricType::Counter,
                |s| s.2,
            ),
            (
                "weir_shard_stalls",
                "Turns of a shard's event loop over 1 ms (a 10 ms timer that fired that late; sampled)",
                MetricType::Counter,
                |s| s.3,
            ),
            (
                "weir_mesh_late_deliveries",
                "Cross-shard messages this shard received 5 ms or more after they were sent (a lost wake-up ended by the 10 ms wake tick, or a busy shard)",
                MetricType::Counter,
                |s| s.4,
            ),
        ];
        for (name, help, kind, pick) in per_shard {
            let mut family = encoder.encode_descriptor(name, help, None, kind)?;
            for shard in &self.shards {
                Value(kind, pick(shard)).encode(family.encode_family(&[("shard", shard.0.to_string())])?)?;
            }
        }
        for (name, help, by_topic) in [
            (
                "weir_bytes_in",
                "Record batch bytes appended, by topic",
                &self.bytes_in_by_topic,
            ),
            (
                "weir_bytes_out",
                "Record batch bytes fetched, by topic",
                &self.bytes_out_by_topic,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (topic, bytes) in by_topic {
                Value(MetricType::Counter, *bytes)
                    .encode(family.encode_family(&[("topic", topic.as_str())])?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "weir_consumer_group_committed_offset",
            "Offset a consumer group committed, by group and partition",
            None,
            MetricType::Gauge,
        )?;
        let group_labels = |group: &str, topic: &str, partition: i32| {
            [
                ("group", group.to_string()),
                ("topic", topic.to_string()),
                ("partition", partition.to_string()),
            ]
        };
        for (group, topic, partition, offset, _) in &self.groups {
            let labels = group_labels(group, topic, *partition);
            Value(MetricType::Gauge, *offset).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "weir_consumer_group_lag",
            "Records between a group's committed offset and the partition's end, by group and partition",
            None,
            MetricType::Gauge,
        )?;
        for (group, topic, partition, _, lag) in &self.groups {
            if let Some(lag) = lag {
                let labels = group_labels(group, topic, *partition);
                Value(MetricType::Gauge, *lag).encode(family.encode_family(&labels)?)?;
            }
        }
        let allowance = self
            .allowance_bytes_per_s
            .map_or(f64::INFINITY, |rate| rate as f64);
        Value(MetricType::Gauge, allowance).encode(encoder.encode_descriptor(
            "weir_catch_up_allowance_bytes_per_second",
            "Catch-up pacing's allowance per shard for reads below the tail cache and the log cleaner (+Inf: unlimited)",
            None,
            MetricType::Gauge,
        )?)?;
        Value(MetricType::Gauge, self.uptime_s).encode(encoder.encode_descriptor(
            "weir_uptime_seconds",
            "Seconds since the broker started",
            None,
            MetricType::Gauge,
        )?)?;
        Value(MetricType::Gauge, u64::from(self.ready)).encode(encoder.encode_descriptor(
            "weir_ready",
            "1 once recovery finished and every shard accepts Kafka connections",
            None,
            MetricType::Gauge,
        )?)?;
        if let Some(bytes) = self.resident_bytes {
            Value(MetricType::Gauge, bytes).encode(encoder.encode_descriptor(
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                None,
                MetricType::Gauge,
            )?)?;
        }
        Ok(())
    }
}

/// The process's resident set, from /proc/self/statm.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page_size = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
    Some(pages * page_size)
}

/// `histogram` as HdrHistogram's percentile distribution text (`.hgrm`),
/// values in microseconds.
pub fn hgrm(histogram: &Histogram<u64>) -> String {
    let mut out = String::from("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
    if histogram.is_empty() {
        out.push_str(&format!(
            "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]\n#[Max     = {:12.3}, Total count    = {:12}]\n#[Buckets = {:12}, SubBuckets     = {:12}]\n",
            0.0, 0.0, 0.0, 0, 0, 0
        ));
        return out;
    }
    for step in histogram.iter_quantiles(5) {
        let percentile = step.quantile_iterated_to();
        let inverse = if percentile < 1.0 {
            format!("{:14.2}", 1.0 / (1.0 - percentile))
        } else {
            String::from("           inf")
        };
        out.push_str(&format!(
            "{:12.3} {:14.12} {:10} {}\n",
            step.value_iterated_to() as f64,
            percentile,
            histogram.count_between(0, step.value_iterated_to()),
            inverse
        ));
    }
    out.push_str(&format!(
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]\n#[Max     = {:12.3}, Total count    = {:12}]\n#[Buckets = {:12}, SubBuckets     = {:12}]\n",
        histogram.mean(),
        histogram.stdev(),
        histogram.max() as f64,
        histogram.len(),
        histogram.buckets(),
        histogram.distinct_values()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_from_one_walk_match_count_between_per_bucket() {
        let mut histogram = crate::metrics::new_histogram();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Spread over 1 µs .. ~16 s, with values right at bucket bounds.
            let value = match x % 5 {
                0 => (LATENCY_BUCKETS_S[(x >> 8) as usize % LATENCY_BUCKETS_S.len()] * 1e6) as u64,
                _ => 1 + (x >> 20) % (1u64 << ((x >> 8) % 24)),
            };
            histogram.saturating_record(value.clamp(1, crate::metrics::LATENCY_US_MAX));
        }
        let (buckets, sum_s) = latency_buckets(&histogram);
        let mut below = 0;
        for (bound_s, count) in &buckets {
            let up_to = histogram.count_between(0, (bound_s * 1e6) as u64);
            assert_eq!(*count, up_to - below, "bucket {bound_s} s");
            below = up_to;
        }
        let expected_sum_s = histogram.mean() * histogram.len() as f64 / 1e6;
        assert!(
            (sum_s - expected_sum_s).abs() <= expected_sum_s * 1e-9,
            "{sum_s} vs {expected_sum_s}"
        );
    }
}
