//! Per-shard latency histograms (HdrHistogram) and counters.
//!
//! Each shard records into its own `Metrics` (no sharing, no atomics); the
//! admin listener (`crate::observe`) asks every shard for a copy
//! ([`ShardStats`]) and merges them, off the data path. Latencies are in
//! microseconds, 1 µs to 60 s at 2 significant digits (within 1%). Each sample is
//! recorded once, into cumulative histograms that `/metrics` exposes (never
//! reset: Prometheus counters only grow); the interval `/v1/latency` shows
//! is their difference from a copy taken at the last reset.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

/// Largest latency a histogram records; larger values are clamped.
pub const LATENCY_US_MAX: u64 = 60_000_000;
/// Precision of the histograms: values within 1% of what was recorded.
/// Each histogram is ~17 KB at 2 digits against ~140 KB at 3, and every
/// scrape copies each one: at 3 digits the fresh pages of those copies
/// (page faults, zeroing) held a shard for milliseconds.
pub const LATENCY_SIGNIFICANT_DIGITS: u8 = 2;

/// Where a request's time goes, in the order it passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// The frame's first packet reached the host (the kernel's receive
    /// timestamp) → the whole frame read off the socket: time in the
    /// socket's receive queue while the shard was busy, plus reading a
    /// frame that arrives in many packets. Sampled: one request in
    /// [`SOCKET_SAMPLE_EVERY`] per connection (it costs a syscall).
    Socket,
    /// Frame read off the socket → header and body decoded.
    Decode,
    /// Decoded → its handler starts (waiting in the shard's task queue).
    Queue,
    /// Handler start → response encoded (everything below included).
    Handler,
    /// Produce: the call to the partition's owning shard there and back,
    /// less the owner's append and fsync (channel, wake-ups, the owner's
    /// queue). Only for partitions on another shard.
    Hop,
    /// Group and transaction APIs: the call to the coordinator (the shard
    /// owning the group's `__consumer_offsets` partition, or the
    /// transactional id's `__transaction_state` one) there and back. It
    /// includes waiting for a rebalance (JoinGroup, SyncGroup) and the
    /// writes of the coordinator's records (their `append` and `fsync`).
    Coordinator,
    /// Produce: the batch copied into the write buffer → its O_DIRECT write
    /// completed (on the owning shard). Group and transaction APIs: the
    /// same for the coordinator's records.
    Append,
    /// Produce with acks=all, and the coordinators' records: written →
    /// covered by a group-committed fdatasync.
    Fsync,
    /// Fetch: reading the partitions (on their shards), every pass of a
    /// long poll together.
    Read,
    /// Fetch: parked in the long poll, waiting for data (`max_wait_ms`).
    Wait,
    /// Fetch: held by catch-up pacing before the response goes out.
    Paced,
    /// Response encoded → fully written to the socket (waiting behind
    /// earlier responses of the connection included).
    Respond,
}

impl Stage {
    pub const ALL: [Stage; 12] = [
        Stage::Socket,
        Stage::Decode,
        Stage::Queue,
        Stage::Handler,
        Stage::Hop,
        Stage::Coordinator,
        Stage::Append,
        Stage::Fsync,
        Stage::Read,
        Stage::Wait,
        Stage::Paced,
        Stage::Respond,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Socket => "socket",
            Stage::Decode => "decode",
            Stage::Queue => "queue",
            Stage::Handler => "handler",
            Stage::Hop => "hop",
            Stage::Coordinator => "coordinator",
            Stage::Append => "append",
            Stage::Fsync => "fsync",
            Stage::Read => "read",
            Stage::Wait => "wait",
            Stage::Paced => "paced",
            Stage::Respond => "respond",
        }
    }

    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|stage| stage.name() == name)
    }
}

/// One request in this many per connection has its `socket` stage timed.
pub const SOCKET_SAMPLE_EVERY: u32 = 16;

/// Where fetched records come from: the tail cache, the page cache
/// (spliced file regions), the disk (O_DIRECT reads, copied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchSource {
    TailCache = 0,
    PageCache = 1,
    Disk = 2,
}

/// The names of the sources, as `Metrics::fetch_bytes` and `fetch_reads`
/// are indexed (by `FetchSource as usize`).
pub const FETCH_SOURCES: [&str; 3] = ["tail_cache", "page_cache", "disk"];

/// Histograms by (API key, stage).
pub type StageHistograms = BTreeMap<(i16, Stage), Histogram<u64>>;

/// Microseconds of `duration`, saturated.
pub fn micros(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Stages other than `Handler` are recorded (option `latency_stages`).
    pub stages: bool,
    /// Time of each request by API key and stage.
    pub request_latency_us: StageHistograms,
    /// `request_latency_us` as it was at the last interval reset.
    interval_base: StageHistograms,
    pub requests_rejected: u64,
    /// Record bytes returned by fetches, by [`FetchSource`].
    pub fetch_bytes: [u64; 3],
    /// Partition reads that returned records, by [`FetchSource`] (those
    /// from the tail cache are its hits).
    pub fetch_reads: [u64; 3],
    /// Kafka connections accepted by this shard, and open now.
    pub connections_accepted: u64,
    pub connections_open: u64,
    /// Record batch bytes appended (on the owning shard) and fetched (on the
    /// shard that answered), by topic.
    pub bytes_in_by_topic: std::collections::HashMap<String, u64>,
    pub bytes_out_by_topic: std::collections::HashMap<String, u64>,
    /// Times the shard's 10 ms timer fired over 1 ms late: a turn of the
    /// event loop that ran that long (sampled, not every turn).
    pub stalls: u64,
    /// Error codes answered, by (API key, error code).
    pub errors: BTreeMap<(i16, i16), u64>,
    /// Cross-shard messages received by this shard: send → receive (µs);
    /// None before the first.
    pub mesh_delivery_us: Option<Histogram<u64>>,
    /// Those received `MESH_LATE_DELIVERY_MS` or more after they were sent.
    pub mesh_late_deliveries: u64,
}

impl Metrics {
    pub fn record(&mut self, api_key: i16, stage: Stage, latency_us: u64) {
        if !self.stages && stage != Stage::Handler {
            return;
        }
        self.request_latency_us
            .entry((api_key, stage))
            .or_insert_with(new_histogram)
            .saturating_record(latency_us.clamp(1, LATENCY_US_MAX));
    }

    /// The `append` and (if it waited for one) `fsync` stages of a write
    /// done for `api_key`.
    pub fn record_append(
        &mut self,
        api_key: i16,
        outcome: &crate::log::partition::AppendOutcome,
        durability: crate::log::partition::Durability,
    ) {
        self.record(api_key, Stage::Append, outcome.write_us);
        if durability == crate::log::partition::Durability::Synced {
            self.record(api_key, Stage::Fsync, outcome.sync_us);
        }
    }

    /// A cross-shard message delivered `delay` after it was sent.
    pub fn record_mesh_delivery(&mut self, delay: std::time::Duration) {
        if delay >= std::time::Duration::from_millis(crate::limits::MESH_LATE_DELIVERY_MS) {
            self.mesh_late_deliveries += 1;
        }
        self.mesh_delivery_us
            .get_or_insert_with(new_histogram)
            .saturating_record(micros(delay).clamp(1, LATENCY_US_MAX));
    }

    /// A partition read of `bytes` record bytes answered from `source`.
    pub fn count_fetch_read(&mut self, source: FetchSource, bytes: u64) {
        self.fetch_bytes[source as usize] += bytes;
        if bytes > 0 {
            self.fetch_reads[source as usize] += 1;
        }
    }

    /// Adds `bytes` to `topic`'s count in `by_topic` (allocating the name
    /// only the first time).
    pub fn count_topic_bytes(by_topic: &mut std::collections::HashMap<String, u64>, topic: &str, bytes: u64) {
        match by_topic.get_mut(topic) {
            Some(count) => *count += bytes,
            None => {
                by_topic.insert(topic.to_string(), bytes);
            }
        }
    }

    /// Counts a partition error `code` (not NONE) answered to `api_key`.
    pub fn count_error(&mut self, api_key: i16, code: i16) {
        if code != 0 {
            *self.errors.entry((api_key, code)).or_default() += 1;
        }
    }

    /// The (API, stage) keys that have a histogram, for copying them one at
    /// a time (`copy_histogram`).
    pub fn histogram_keys(&self) -> Vec<(i16, Stage)> {
        self.request_latency_us.keys().copied().collect()
    }

    /// Copies of one latency histogram for the admin listener: cumulative,
    /// and since the last interval reset; `reset_interval` starts a new
    /// interval for it (the copy holds the one that ended).
    pub fn copy_histogram(
        &mut self,
        key: (i16, Stage),
        reset_interval: bool,
    ) -> Option<(Histogram<u64>, Histogram<u64>)> {
        let cumulative = self.request_latency_us.get(&key)?.clone();
        let mut interval = cumulative.clone();
        if let Some(base) = self.interval_base.get(&key) {
            interval
                .subtract(base)
                .expect("a histogram holds everything its earlier copy held");
        }
        if reset_interval {
            self.interval_base.insert(key, cumulative.clone());
        }
        Some((cumulative, interval))
    }

    /// Everything but the latency histograms (which the admin listener
    /// copies one at a time, see `Shard::stats`).
    pub fn copy_without_latency(&self) -> Metrics {
        Metrics {
            stages: self.stages,
            request_latency_us: StageHistograms::new(),
            interval_base: StageHistograms::new(),
            requests_rejected: self.requests_rejected,
            fetch_bytes: self.fetch_bytes,
            fetch_reads: self.fetch_reads,
            connections_accepted: self.connections_accepted,
            connections_open: self.connections_open,
            bytes_in_by_topic: self.bytes_in_by_topic.clone(),
            bytes_out_by_topic: self.bytes_out_by_topic.clone(),
            stalls: self.stalls,
            errors: self.errors.clone(),
            mesh_delivery_us: self.mesh_delivery_us.clone(),
            mesh_late_deliveries: self.mesh_late_deliveries,
        }
    }

    /// One line per API: count and p50/p99/p99.9/max in µs of its handler.
    pub fn summary(&self) -> String {
        let mut lines = Vec::new();
        for ((api_key, stage), histogram) in &self.request_latency_us {
            if *stage != Stage::Handler {
                continue;
            }
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
            self.fetch_bytes[FetchSource::TailCache as usize],
            self.fetch_bytes[FetchSource::PageCache as usize],
            self.fetch_bytes[FetchSource::Disk as usize]
        ));
        lines.join("; ")
    }
}

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, LATENCY_SIGNIFICANT_DIGITS).expect("valid histogram bounds")
}

/// One shard's metrics, copied for the admin listener.
#[derive(Debug, Clone)]
pub struct ShardStats {
    pub shard: usize,
    /// The shard's metrics (cumulative).
    pub metrics: Metrics,
    /// Latency since the last interval reset.
    pub interval_latency_us: StageHistograms,
    pub partitions: Vec<PartitionStats>,
    /// Offsets committed by the groups this shard coordinates: (group,
    /// topic, partition, offset).
    pub committed: Vec<(String, String, i32, i64)>,
}

/// One partition's offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStats {
    pub topic: String,
    pub partition: i32,
    pub log_start_offset: i64,
    pub high_watermark: i64,
}

/// Adds `histogram` into `into`'s histogram of `key`.
pub fn merge_one(into: &mut StageHistograms, key: (i16, Stage), histogram: &Histogram<u64>) {
    into.entry(key)
        .or_insert_with(new_histogram)
        .add(histogram)
        .expect("histograms of the same bounds add");
}

/// Adds `from` into `into`, API and stage by API and stage, yielding after
/// each histogram (adding one walks its ~17,000 counts): merging every
/// shard's on a shard never holds it for long.
pub async fn merge_histograms_yielding(into: &mut StageHistograms, from: &StageHistograms) {
    for (key, histogram) in from {
        merge_one(into, *key, histogram);
        futures_lite::future::yield_now().await;
    }
}
