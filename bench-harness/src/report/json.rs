//! `report.json`: the schema, versioned by [`SCHEMA_VERSION`].
//!
//! Units are the last word of every field name that has one (`_bytes`,
//! `_s`, `_us`, `_mb_per_s` with MB = 10^6 bytes, `_msgs_per_s`). Counts of
//! the measurement (`summary`, `flows`) exclude the warm-up; `validation`
//! counts every record of the run. Adding a field keeps the version;
//! renaming, removing or changing the meaning of one bumps it.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::{
    cli::Params,
    client::{cluster::Cluster, versions::Versions},
    host::HostInfo,
    stats::aggregate::{SeriesPoint, Totals},
};

/// Version of this schema.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    pub scenario: &'static str,
    /// `A` or `B` in compare runs.
    pub label: Option<String>,
    pub started_at: String,
    pub started_at_unix_ms: u64,
    pub params: Params,
    pub host: HostInfo,
    pub broker: BrokerInfo,
    pub run: RunInfo,
    /// The scenario's main flow: produce → acknowledged messages; consume
    /// and e2e → consumed records.
    pub summary: Summary,
    /// Every active flow (`produce`, `consume`), same shape as `summary`.
    pub flows: BTreeMap<&'static str, Summary>,
    pub validation: Validation,
    /// Per flow, one point per second since the start (warm-up included,
    /// marked by `phase`).
    pub time_series: BTreeMap<&'static str, Vec<SeriesPoint>>,
    pub files: Files,
    pub notes: Vec<String>,
    /// The broker's own latency per API and stage over the run (weir's
    /// admin listener, `--broker-admin`); absent for brokers without it.
    /// Added in schema 2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_stats: Option<crate::broker_admin::ServerStats>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

impl Tool {
    pub fn current() -> Tool {
        Tool {
            name: "weir-bench",
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RunInfo {
    /// `closed_loop` or `open_loop`.
    pub mode: &'static str,
    pub threads: usize,
    /// CPU each worker thread was pinned to (`null`: not pinned).
    pub thread_cpus: Vec<Option<usize>>,
    pub producer_connections: usize,
    pub consumer_connections: usize,
    pub warmup_s: u64,
    /// From the end of the warm-up to the last completion (≥ `--duration-s`
    /// when requests were still completing; less when a catch-up finished).
    pub measured_s: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct LatencyUs {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
    pub min: u64,
    pub mean: f64,
    /// Samples (messages, or fetches for `fetch_round_trip`).
    pub count: u64,
}

impl LatencyUs {
    pub fn of(histogram: &Histogram<u64>) -> LatencyUs {
        if histogram.is_empty() {
            return LatencyUs::default();
        }
        LatencyUs {
            p50: histogram.value_at_quantile(0.5),
            p90: histogram.value_at_quantile(0.9),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            p9999: histogram.value_at_quantile(0.9999),
            max: histogram.max(),
            min: histogram.min(),
            mean: histogram.mean(),
            count: histogram.len(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub flow: &'static str,
    /// What `latency_us` measures: `produce_ack` (scheduled or built →
    /// acknowledged; acks=0: → written), `fetch_round_trip`, or
    /// `end_to_end` (send time in the record → consumed).
    pub latency_kind: &'static str,
    pub duration_s: f64,
    pub messages: u64,
    /// Value bytes of those messages.
    pub bytes: u64,
    /// Record batch bytes as on the wire (after compression, with headers).
    pub wire_bytes: u64,
    pub throughput_mb_per_s: f64,
    pub throughput_msgs_per_s: f64,
    pub throughput_wire_mb_per_s: f64,
    /// Error events (a failed partition batch, a broken connection, a CRC
    /// mismatch, ...), by kind in `error_counts`.
    pub errors: u64,
    pub error_counts: BTreeMap<String, u64>,
    /// Messages sent but not acknowledged.
    pub messages_failed: u64,
    pub requests: u64,
    pub latency_us: LatencyUs,
    /// Producers in open loop: how late requests left after their oldest
    /// message was due (waiting for an in-flight slot included). Near 0:
    /// the generator kept its schedule; `latency_us` includes this lag.
    pub send_lag_us: Option<LatencyUs>,
    /// Whole run, warm-up included (same as in `validation`).
    pub records_produced: Option<u64>,
    pub records_consumed: Option<u64>,
}

impl Summary {
    pub fn of(flow: &'static str, latency_kind: &'static str, totals: &Totals, duration_s: f64) -> Summary {
        let per_s = |value: u64| {
            if duration_s > 0.0 {
                value as f64 / duration_s
            } else {
                0.0
            }
        };
        Summary {
            flow,
            latency_kind,
            duration_s,
            messages: totals.messages,
            bytes: totals.bytes,
            wire_bytes: totals.wire_bytes,
            throughput_mb_per_s: per_s(totals.bytes) / 1e6,
            throughput_msgs_per_s: per_s(totals.messages),
            throughput_wire_mb_per_s: per_s(totals.wire_bytes) / 1e6,
            errors: totals.error_count(),
            error_counts: totals.errors.clone(),
            messages_failed: totals.messages_failed,
            requests: totals.requests,
            latency_us: LatencyUs::of(&totals.histogram),
            send_lag_us: (!totals.send_lag.is_empty()).then(|| LatencyUs::of(&totals.send_lag)),
            records_produced: None,
            records_consumed: None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Validation {
    pub passed: bool,
    /// Acknowledged (acks=0: written) during the whole run.
    pub records_produced: Option<u64>,
    /// Consumed during the whole run, each in a CRC-valid batch.
    pub records_consumed: Option<u64>,
    /// e2e: produced but not consumed.
    pub records_missing: Option<u64>,
    pub crc_errors: u64,
    pub corrupt_batches: u64,
    /// Whether consumers reached the end offsets they were given.
    pub caught_up: Option<bool>,
    /// Per partition, where consumers started and the end they had to reach.
    pub start_offsets: Option<Vec<i64>>,
    pub end_offsets: Option<Vec<i64>>,
    pub checks: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ApiVersionEntry {
    pub api_key: i16,
    pub name: String,
    pub min_version: i16,
    pub max_version: i16,
}

#[derive(Clone, Debug, Serialize)]
pub struct BrokerEntry {
    pub node_id: i32,
    pub address: String,
    pub leads_partitions: usize,
    /// The ApiVersions version the broker answered.
    pub api_versions_version: Option<i16>,
    /// The ranges the broker advertised.
    pub api_versions: Vec<ApiVersionEntry>,
    /// What weir-bench spoke with it.
    pub negotiated_versions: Versions,
}

#[derive(Clone, Debug, Serialize)]
pub struct BrokerInfo {
    pub bootstrap: String,
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub topic: String,
    pub partitions: usize,
    pub created_topic: bool,
    pub brokers: Vec<BrokerEntry>,
    /// Always `null` so far: the Kafka protocol carries the client's
    /// software name (ApiVersions v3 request) but not the broker's.
    pub software_name: Option<String>,
}

impl BrokerInfo {
    pub fn of(cluster: &Cluster) -> BrokerInfo {
        let leads = cluster.partitions_by_leader();
        BrokerInfo {
            bootstrap: cluster.bootstrap.clone(),
            cluster_id: cluster.cluster_id.clone(),
            controller_id: cluster.controller_id,
            topic: cluster.topic.clone(),
            partitions: cluster.partitions(),
            created_topic: cluster.created_topic,
            brokers: cluster
                .brokers
                .values()
                .map(|broker| BrokerEntry {
                    node_id: broker.node_id,
                    address: broker.address.clone(),
                    leads_partitions: leads.get(&broker.node_id).map_or(0, Vec::len),
                    api_versions_version: broker.api_versions_version,
                    api_versions: broker
                        .api_versions
                        .iter()
                        .map(|range| ApiVersionEntry {
                            api_key: range.api_key,
                            name: kafka_protocol::messages::ApiKey::try_from(range.api_key).map_or_else(
                                |_| format!("Unknown{}", range.api_key),
                                |key| format!("{key:?}"),
                            ),
                            min_version: range.min_version,
                            max_version: range.max_version,
                        })
                        .collect(),
                    negotiated_versions: broker.versions,
                })
                .collect(),
            software_name: None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Files {
    pub report_json: &'static str,
    pub latency_hgrm: &'static str,
    /// e2e: the producers' acknowledgement latency.
    pub produce_latency_hgrm: Option<&'static str>,
    pub latency_percentiles_svg: &'static str,
    pub throughput_svg: &'static str,
    /// `stages.svg`, written when `server_stats` is present; else null.
    pub stages_svg: Option<&'static str>,
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::{cli::Params, stats::aggregate::Totals};

    /// A produce report with one flow, for tests of what reads reports.
    pub fn sample_report() -> Report {
        let mut totals = Totals {
            messages: 1_000,
            bytes: 1_024_000,
            ..Totals::default()
        };
        totals.histogram.record_n(500, 1_000).unwrap();
        let summary = Summary::of("produce", "produce_ack", &totals, 2.0);
        Report {
            schema_version: SCHEMA_VERSION,
            tool: Tool::current(),
            scenario: "produce",
            label: None,
            started_at: "2026-11-21T12:00:00.000Z".into(),
            started_at_unix_ms: 0,
            params: Params::defaults(),
            host: crate::host::collect(),
            broker: BrokerInfo {
                bootstrap: "127.0.0.1:9092".into(),
                cluster_id: None,
                controller_id: 0,
                topic: "t".into(),
                partitions: 8,
                created_topic: true,
                brokers: Vec::new(),
                software_name: None,
            },
            run: RunInfo {
                mode: "closed_loop",
                threads: 2,
                thread_cpus: vec![Some(0), Some(1)],
                producer_connections: 1,
                consumer_connections: 0,
                warmup_s: 2,
                measured_s: 2.0,
            },
            flows: BTreeMap::from([("produce", summary.clone())]),
            summary,
            validation: Validation {
                passed: true,
                records_produced: Some(1_000),
                records_consumed: None,
                records_missing: None,
                crc_errors: 0,
                corrupt_batches: 0,
                caught_up: None,
                start_offsets: None,
                end_offsets: None,
                checks: Vec::new(),
            },
            time_series: BTreeMap::new(),
            files: Files {
                report_json: "report.json",
                latency_hgrm: "latency.hgrm",
                produce_latency_hgrm: None,
                latency_percentiles_svg: "latency_percentiles.svg",
                throughput_svg: "throughput.svg",
                stages_svg: None,
            },
            notes: Vec::new(),
            server_stats: None,
        }
    }

    #[test]
    fn every_required_field_is_present_with_units_in_names() {
        let value = serde_json::to_value(sample_report()).unwrap();
        assert_eq!(value["schema_version"], 2);
        for field in ["params", "host", "broker", "summary", "time_series", "validation"] {
            assert!(value.get(field).is_some(), "{field}");
        }
        for field in [
            "cpu_model",
            "cpu_cores_online",
            "memory_bytes",
            "kernel_version",
            "hostname",
        ] {
            assert!(value["host"].get(field).is_some(), "host.{field}");
        }
        let summary = &value["summary"];
        for field in [
            "messages",
            "bytes",
            "throughput_mb_per_s",
            "throughput_msgs_per_s",
            "errors",
        ] {
            assert!(summary.get(field).is_some(), "summary.{field}");
        }
        for field in ["p50", "p90", "p99", "p999", "p9999", "max"] {
            assert_eq!(summary["latency_us"][field], 500, "latency_us.{field}");
        }
        assert_eq!(summary["throughput_msgs_per_s"], 500.0);
        assert_eq!(summary["throughput_mb_per_s"], 0.512);
        assert_eq!(value["params"]["acks"], "1");
        assert_eq!(value["params"]["message_bytes_min"], 1024);
        assert!(value["params"]["rate_msgs_per_s"].is_null());
    }
}
