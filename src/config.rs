//! Broker configuration: every option with its default, unit and minimum.
//!
//! One table ([`OPTIONS`]) is the source of truth for the TOML keys, the
//! command-line flags (`--segment-bytes 1048576` sets `segment_bytes`) and
//! `weir --help`. Values come from the embedded defaults, then the TOML file
//! given with `--config`, then the flags; [`Config::sanitize`] rejects
//! impossible values and combinations before any shard starts.
//!
//! The finished `Config` is immutable and cloned once into every shard.

use std::{net::SocketAddr, path::PathBuf};

use serde::Deserialize;

use crate::limits;

/// When appended data is forced to stable storage with fdatasync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FsyncPolicy {
    /// fdatasync (group-committed) before acknowledging acks=all produces;
    /// acks=1 is acknowledged once the O_DIRECT write completed.
    AcksAll,
    /// fdatasync before acknowledging every produce with acks != 0.
    Always,
    /// Never fdatasync on the produce path (only on segment roll and
    /// shutdown). acks=all then promises what acks=1 does.
    Never,
}

/// Broker options. Field names are the TOML keys; units are last in names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: SocketAddr,
    /// `HOST:PORT` clients are told to connect to; defaults to `listen`.
    pub advertised_listener: Option<String>,
    /// `HOST:PORT` of the admin HTTP listener (metrics, status, health);
    /// empty: none.
    pub admin_listen: String,
    pub data_dir: PathBuf,
    /// Shards to run, one per core; 0 means one per online core.
    pub cores: usize,
    pub request_size_bytes_max: u64,
    pub inflight_requests_max: usize,
    pub auto_create_topics: bool,
    pub default_partitions: i32,
    pub segment_bytes: u64,
    pub segment_ms: u64,
    pub message_max_bytes: u64,
    pub fsync_policy: FsyncPolicy,
    pub append_write_bytes_max: usize,
    pub io_memory_bytes: usize,
    /// Memory per shard for the most recently written batches (fetches of
    /// the tail are served from it).
    pub tail_cache_bytes: usize,
    /// Fetches below the tail cache whose pages are in the page cache are
    /// spliced from it (zero-copy); others are O_DIRECT reads (and prefetch
    /// the range for the next fetch). false: always O_DIRECT reads.
    pub cold_reads_from_page_cache: bool,
    /// Record every request's stages (decode, queue, hop, append, fsync,
    /// respond), not only its handler time.
    pub latency_stages: bool,
    pub node_id: i32,
    /// Partitions of `__consumer_offsets` when weir creates it.
    pub offsets_topic_partitions: i32,
    /// How long a group that starts from empty waits for more members
    /// before its first rebalance completes.
    pub group_initial_rebalance_delay_ms: u64,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    /// Committed offsets of a group empty for this long are deleted.
    pub offsets_retention_minutes: u64,
    /// KIP-848 groups: how often members heartbeat (they learn of new
    /// assignments on heartbeats).
    pub group_consumer_heartbeat_interval_ms: i32,
    /// KIP-848 groups: a member silent this long is removed.
    pub group_consumer_session_timeout_ms: u64,
    /// A producer id whose last batch on a partition is older than this
    /// (by batch timestamp) is forgotten there (idempotence state).
    pub producer_id_expiration_ms: u64,
    /// How often every shard looks for expired producer ids.
    pub producer_id_expiration_check_interval_ms: u64,
    /// Partitions of `__transaction_state` when weir creates it.
    pub transaction_state_topic_partitions: i32,
    /// Largest transaction timeout a producer may ask for.
    pub transaction_max_timeout_ms: u64,
    /// A transactional id without a transaction for this long is forgotten.
    pub transactional_id_expiration_ms: u64,
    /// How often each shard aborts transactions open past their timeout.
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: u64,
    /// While producers are active, catch-up reads (below the tail cache)
    /// are paced so that produce latency stays within this % of its base
    /// (see `fetch::pacing`); 0: no adaptive pacing.
    pub catch_up_produce_latency_target_pct: u64,
    /// The adaptive allowance never goes below this, per shard.
    pub catch_up_fetch_bytes_per_s_min: u64,
    /// While producers are active, catch-up reads never exceed this rate
    /// per shard (0: no fixed ceiling).
    pub catch_up_fetch_bytes_per_s_max: u64,
    /// Default `retention.ms`: segments whose newest record is older are
    /// deleted (-1: kept forever).
    pub log_retention_ms: i64,
    /// Default `retention.bytes`: oldest segments are deleted while the
    /// partition is larger (-1: no size limit).
    pub log_retention_bytes: i64,
    /// How often each shard applies retention to its logs.
    pub log_retention_check_interval_ms: u64,
    /// Memory of the key map one compaction pass builds (per shard, only
    /// while it runs); a partition with more keys is cleaned in passes.
    pub compaction_key_map_bytes_max: usize,
    /// How often each shard looks for a compacted partition due for
    /// cleaning (Kafka's log.cleaner.backoff.ms).
    pub compaction_check_interval_ms: u64,
    /// The options set by the config file or flags (not defaults), so
    /// DescribeConfigs can say STATIC_BROKER_CONFIG or DEFAULT_CONFIG.
    #[serde(skip)]
    pub explicit: std::collections::BTreeSet<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 9092)),
            advertised_listener: None,
            admin_listen: "127.0.0.1:9644".into(),
            data_dir: PathBuf::from("./data"),
            cores: 0,
            request_size_bytes_max: 100 * 1024 * 1024,
            inflight_requests_max: 128,
            auto_create_topics: true,
            default_partitions: 1,
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 3600 * 1000,
            message_max_bytes: 1_048_588,
            fsync_policy: FsyncPolicy::AcksAll,
            append_write_bytes_max: 4 * 1024 * 1024,
            io_memory_bytes: 4 * 1024 * 1024,
            tail_cache_bytes: 256 * 1024 * 1024,
            cold_reads_from_page_cache: true,
            latency_stages: true,
            node_id: 0,
            offsets_topic_partitions: 50,
            group_initial_rebalance_delay_ms: 3000,
            group_min_session_timeout_ms: 6000,
            group_max_session_timeout_ms: 1_800_000,
            offsets_retention_minutes: 10_080,
            group_consumer_heartbeat_interval_ms: 5000,
            group_consumer_session_timeout_ms: 45_000,
            producer_id_expiration_ms: 86_400_000,
            producer_id_expiration_check_interval_ms: 600_000,
            transaction_state_topic_partitions: 50,
            transaction_max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 604_800_000,
            transaction_abort_timed_out_transaction_cleanup_interval_ms: 10_000,
            catch_up_produce_latency_target_pct: 200,
            catch_up_fetch_bytes_per_s_min: 8 * 1024 * 1024,
            catch_up_fetch_bytes_per_s_max: 0,
            log_retention_ms: 604_800_000,
            log_retention_bytes: -1,
            log_retention_check_interval_ms: 300_000,
            compaction_key_map_bytes_max: 128 * 1024 * 1024,
            compaction_check_interval_ms: 15_000,
            explicit: Default::default(),
        }
    }
}

/// One option as `weir --help` and the README describe it.
pub struct OptionDoc {
    pub key: &'static str,
    pub default: &'static str,
    pub unit: &'static str,
    pub doc: &'static str,
}

/// Every option. Kept in the order `--help` prints them.
pub const OPTIONS: &[OptionDoc] = &[
    OptionDoc {
        key: "listen",
        default: "127.0.0.1:9092",
        unit: "HOST:PORT",
        doc: "address every shard accepts Kafka connections on (SO_REUSEPORT)",
    },
    OptionDoc {
        key: "advertised_listener",
        default: "= listen",
        unit: "HOST:PORT",
        doc: "address returned to clients in Metadata",
    },
    OptionDoc {
        key: "admin_listen",
        default: "127.0.0.1:9644",
        unit: "HOST:PORT",
        doc: "admin HTTP listener on shard 0: /metrics (Prometheus), /v1/latency, /v1/status, /healthz, /readyz; empty: none",
    },
    OptionDoc {
        key: "data_dir",
        default: "./data",
        unit: "path",
        doc: "where topics, segments and metadata live; locked by one weir at a time",
    },
    OptionDoc {
        key: "cores",
        default: "0 (all online)",
        unit: "shards",
        doc: "shards to run, one pinned executor per core",
    },
    OptionDoc {
        key: "request_size_bytes_max",
        default: "104857600",
        unit: "bytes",
        doc: "largest request frame; a larger one closes the connection (min 65536)",
    },
    OptionDoc {
        key: "inflight_requests_max",
        default: "128",
        unit: "requests",
        doc: "requests one connection may have in flight before reading pauses (min 1)",
    },
    OptionDoc {
        key: "auto_create_topics",
        default: "true",
        unit: "bool",
        doc: "create unknown topics on Metadata and Produce, as Kafka's auto.create.topics.enable",
    },
    OptionDoc {
        key: "default_partitions",
        default: "1",
        unit: "partitions",
        doc: "partitions of auto-created topics and CreateTopics with -1 (num.partitions)",
    },
    OptionDoc {
        key: "segment_bytes",
        default: "1073741824",
        unit: "bytes",
        doc: "roll a segment when it would exceed this size (topic config segment.bytes; min 1024)",
    },
    OptionDoc {
        key: "segment_ms",
        default: "604800000",
        unit: "ms",
        doc: "roll a segment this long after its first batch (topic config segment.ms)",
    },
    OptionDoc {
        key: "log_retention_ms",
        default: "604800000",
        unit: "ms",
        doc: "delete a segment once its newest record is this old (topic config retention.ms; -1: never)",
    },
    OptionDoc {
        key: "log_retention_bytes",
        default: "-1",
        unit: "bytes",
        doc: "delete oldest segments while a partition is larger than this (topic config retention.bytes; -1: no limit)",
    },
    OptionDoc {
        key: "log_retention_check_interval_ms",
        default: "300000",
        unit: "ms",
        doc: "how often every shard applies retention and DeleteRecords to its partitions' segments",
    },
    OptionDoc {
        key: "compaction_key_map_bytes_max",
        default: "134217728",
        unit: "bytes",
        doc: "memory of one compaction pass's key map per shard (32 bytes per key); more keys: several passes (min 4096)",
    },
    OptionDoc {
        key: "compaction_check_interval_ms",
        default: "15000",
        unit: "ms",
        doc: "how often every shard looks for a compacted partition due for cleaning (log.cleaner.backoff.ms)",
    },
    OptionDoc {
        key: "message_max_bytes",
        default: "1048588",
        unit: "bytes",
        doc: "largest record batch accepted (topic config max.message.bytes)",
    },
    OptionDoc {
        key: "fsync_policy",
        default: "acks-all",
        unit: "acks-all|always|never",
        doc: "when appends are fdatasync'ed before the ack (see README: Durability)",
    },
    OptionDoc {
        key: "append_write_bytes_max",
        default: "4194304",
        unit: "bytes",
        doc: "largest single O_DIRECT write when coalescing queued batches (min 4096)",
    },
    OptionDoc {
        key: "io_memory_bytes",
        default: "4194304",
        unit: "bytes",
        doc: "io_uring registered buffer memory per shard (counts against RLIMIT_MEMLOCK unless root)",
    },
    OptionDoc {
        key: "tail_cache_bytes",
        default: "268435456",
        unit: "bytes",
        doc: "memory per shard for the most recently written batches; tail fetches are served from it (0 disables)",
    },
    OptionDoc {
        key: "cold_reads_from_page_cache",
        default: "true",
        unit: "bool",
        doc: "fetches below the tail cache whose pages are cached are spliced from the page cache (zero-copy); false: always O_DIRECT reads copied into the response",
    },
    OptionDoc {
        key: "latency_stages",
        default: "true",
        unit: "bool",
        doc: "record each request's time per stage (decode, queue, hop, append, fsync, respond) besides its handler time, for /metrics and /v1/latency",
    },
    OptionDoc {
        key: "node_id",
        default: "0",
        unit: "id",
        doc: "broker id returned in Metadata",
    },
    OptionDoc {
        key: "offsets_topic_partitions",
        default: "50",
        unit: "partitions",
        doc: "partitions of __consumer_offsets when it is created (min 1); an existing topic keeps its count",
    },
    OptionDoc {
        key: "group_initial_rebalance_delay_ms",
        default: "3000",
        unit: "ms",
        doc: "wait for more members before the first rebalance of an empty group completes (0: none)",
    },
    OptionDoc {
        key: "group_min_session_timeout_ms",
        default: "6000",
        unit: "ms",
        doc: "smallest session timeout a group member may ask for",
    },
    OptionDoc {
        key: "group_max_session_timeout_ms",
        default: "1800000",
        unit: "ms",
        doc: "largest session timeout a group member may ask for",
    },
    OptionDoc {
        key: "offsets_retention_minutes",
        default: "10080",
        unit: "minutes",
        doc: "committed offsets of a group that has been empty this long are deleted (min 1)",
    },
    OptionDoc {
        key: "group_consumer_heartbeat_interval_ms",
        default: "5000",
        unit: "ms",
        doc: "KIP-848 groups (group.protocol=consumer): heartbeat interval given to members (min 100)",
    },
    OptionDoc {
        key: "group_consumer_session_timeout_ms",
        default: "45000",
        unit: "ms",
        doc: "KIP-848 groups: a member that does not heartbeat for this long is removed",
    },
    OptionDoc {
        key: "producer_id_expiration_ms",
        default: "86400000",
        unit: "ms",
        doc: "an idempotent producer idle this long on a partition (by batch timestamps) is forgotten there; its next batch is accepted at any sequence (min 1)",
    },
    OptionDoc {
        key: "producer_id_expiration_check_interval_ms",
        default: "600000",
        unit: "ms",
        doc: "how often each shard forgets expired producer ids (min 10)",
    },
    OptionDoc {
        key: "transaction_state_topic_partitions",
        default: "50",
        unit: "partitions",
        doc: "partitions of __transaction_state, created on the first transactional request; fixed afterwards",
    },
    OptionDoc {
        key: "transaction_max_timeout_ms",
        default: "900000",
        unit: "ms",
        doc: "largest transaction.timeout.ms a producer may ask for (beyond: INVALID_TRANSACTION_TIMEOUT) (min 1)",
    },
    OptionDoc {
        key: "transactional_id_expiration_ms",
        default: "604800000",
        unit: "ms",
        doc: "a transactional id with no transaction for this long is forgotten (min 1)",
    },
    OptionDoc {
        key: "transaction_abort_timed_out_transaction_cleanup_interval_ms",
        default: "10000",
        unit: "ms",
        doc: "how often each shard aborts transactions open longer than their timeout (min 10)",
    },
    OptionDoc {
        key: "catch_up_produce_latency_target_pct",
        default: "200",
        unit: "%",
        doc: "while producers are active, catch-up reads (fetched bytes below the tail cache) and the log cleaner slow down whenever the mean produce latency rises above this % of its recent base (+0.1 ms); 0: no adaptive pacing (min 101 otherwise)",
    },
    OptionDoc {
        key: "catch_up_fetch_bytes_per_s_min",
        default: "8388608",
        unit: "bytes/s",
        doc: "adaptive pacing never holds catch-up reads, nor the log cleaner, below this rate per shard (min 1048576)",
    },
    OptionDoc {
        key: "catch_up_fetch_bytes_per_s_max",
        default: "0",
        unit: "bytes/s",
        doc: "while any producer wrote in the last second, catch-up reads and the log cleaner never exceed this rate per shard; 0: no fixed ceiling (at least catch_up_fetch_bytes_per_s_min otherwise)",
    },
];

/// What the command line asked for.
pub enum Command {
    Run(Box<Config>),
    Help,
    Version,
}

impl Config {
    /// Parses `args` (without the program name): defaults, then `--config
    /// FILE`, then every `--option value` flag.
    pub fn from_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
        let mut overrides = toml::Table::new();
        let mut config_file: Option<PathBuf> = None;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-h" | "--help" => return Ok(Command::Help),
                "-V" | "--version" => return Ok(Command::Version),
                _ => {}
            }
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument '{arg}' (see --help)"));
            };
            let (name, inline_value) = match flag.split_once('=') {
                Some((name, value)) => (name.to_string(), Some(value.to_string())),
                None => (flag.to_string(), None),
            };
            let value = match inline_value {
                Some(value) => value,
                None => args
                    .next()
                    .ok_or_else(|| format!("--{name} needs a value (see --help)"))?,
            };
            let key = name.replace('-', "_");
            if key == "config" {
                config_file = Some(PathBuf::from(value));
                continue;
            }
            if !OPTIONS.iter().any(|option| option.key == key) {
                return Err(format!("unknown option --{name} (see --help)"));
            }
            overrides.insert(key, flag_value(&value));
        }

        let mut table = match &config_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
                text.parse::<toml::Table>()
                    .map_err(|e| format!("config file {}: {e}", path.display()))?
            }
            None => toml::Table::new(),
        };
        for (key, value) in overrides {
            table.insert(key, value);
        }
        let explicit = table.keys().cloned().collect();
        let mut config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e| format!("invalid configuration: {e}"))?;
        config.explicit = explicit;
        config.sanitize()?;
        Ok(Command::Run(Box::new(config)))
    }

    /// Rejects values outside their documented range.
    pub fn sanitize(&self) -> Result<(), String> {
        let check = |ok: bool, message: String| if ok { Ok(()) } else { Err(message) };
        check(
            (limits::REQUEST_SIZE_BYTES_MAX_MIN..=limits::REQUEST_SIZE_BYTES_MAX_MAX)
                .contains(&self.request_size_bytes_max),
            format!(
                "request_size_bytes_max must be within {}..={}",
                limits::REQUEST_SIZE_BYTES_MAX_MIN,
                limits::REQUEST_SIZE_BYTES_MAX_MAX
            ),
        )?;
        check(
            self.inflight_requests_max >= 1,
            "inflight_requests_max must be >= 1".into(),
        )?;
        check(
            (1..=limits::TOPIC_PARTITIONS_MAX).contains(&self.offsets_topic_partitions),
            format!(
                "offsets_topic_partitions must be within 1..={}",
                limits::TOPIC_PARTITIONS_MAX
            ),
        )?;
        check(
            0 < self.group_min_session_timeout_ms
                && self.group_min_session_timeout_ms <= self.group_max_session_timeout_ms,
            "group_min_session_timeout_ms must be > 0 and <= group_max_session_timeout_ms".into(),
        )?;
        check(
            self.producer_id_expiration_ms >= 1 && self.producer_id_expiration_check_interval_ms >= 10,
            "producer_id_expiration_ms must be >= 1 and producer_id_expiration_check_interval_ms >= 10"
                .into(),
        )?;
        check(
            (1..=limits::TOPIC_PARTITIONS_MAX).contains(&self.transaction_state_topic_partitions),
            format!(
                "transaction_state_topic_partitions must be within 1..={}",
                limits::TOPIC_PARTITIONS_MAX
            ),
        )?;
        check(
            self.transaction_max_timeout_ms >= 1
                && self.transactional_id_expiration_ms >= 1
                && self.transaction_abort_timed_out_transaction_cleanup_interval_ms >= 10,
            "transaction_max_timeout_ms and transactional_id_expiration_ms must be >= 1, \
             transaction_abort_timed_out_transaction_cleanup_interval_ms >= 10"
                .into(),
        )?;
        check(
            self.catch_up_produce_latency_target_pct == 0
                || (101..=10_000).contains(&self.catch_up_produce_latency_target_pct),
            "catch_up_produce_latency_target_pct must be 0 or within 101..=10000".into(),
        )?;
        check(
            self.catch_up_fetch_bytes_per_s_min >= 1024 * 1024
                && (self.catch_up_fetch_bytes_per_s_max == 0
                    || self.catch_up_fetch_bytes_per_s_max >= self.catch_up_fetch_bytes_per_s_min),
            "catch_up_fetch_bytes_per_s_min must be >= 1048576 and catch_up_fetch_bytes_per_s_max 0 or >= it"
                .into(),
        )?;
        check(
            self.offsets_retention_minutes >= 1,
            "offsets_retention_minutes must be >= 1".into(),
        )?;
        check(
            self.group_consumer_heartbeat_interval_ms >= 100
                && (self.group_consumer_heartbeat_interval_ms as u64)
                    < self.group_consumer_session_timeout_ms,
            "group_consumer_heartbeat_interval_ms must be >= 100 and below group_consumer_session_timeout_ms"
                .into(),
        )?;
        check(
            self.cores <= limits::SHARDS_MAX,
            format!("cores must be <= {}", limits::SHARDS_MAX),
        )?;
        check(
            (1..=limits::TOPIC_PARTITIONS_MAX).contains(&self.default_partitions),
            format!(
                "default_partitions must be within 1..={}",
                limits::TOPIC_PARTITIONS_MAX
            ),
        )?;
        check(
            (limits::SEGMENT_BYTES_MIN..=limits::SEGMENT_BYTES_MAX).contains(&self.segment_bytes),
            format!(
                "segment_bytes must be within {}..={}",
                limits::SEGMENT_BYTES_MIN,
                limits::SEGMENT_BYTES_MAX
            ),
        )?;
        check(self.segment_ms >= 1, "segment_ms must be >= 1".into())?;
        check(
            self.log_retention_ms >= -1 && self.log_retention_bytes >= -1,
            "log_retention_ms and log_retention_bytes must be >= -1 (-1: no limit)".into(),
        )?;
        check(
            self.log_retention_check_interval_ms >= 1 && self.compaction_check_interval_ms >= 1,
            "log_retention_check_interval_ms and compaction_check_interval_ms must be >= 1".into(),
        )?;
        check(
            self.compaction_key_map_bytes_max >= 4096,
            "compaction_key_map_bytes_max must be >= 4096".into(),
        )?;
        check(
            self.message_max_bytes >= limits::RECORD_BATCH_HEADER_BYTES as u64
                && self.message_max_bytes < self.request_size_bytes_max,
            "message_max_bytes must be at least a batch header and below request_size_bytes_max".into(),
        )?;
        check(
            self.append_write_bytes_max >= 4096,
            "append_write_bytes_max must be >= 4096".into(),
        )?;
        check(self.node_id >= 0, "node_id must be >= 0".into())?;
        if let Some(advertised) = &self.advertised_listener {
            parse_host_port(advertised)?;
        }
        self.admin_address()?;
        Ok(())
    }

    /// Where the admin HTTP listener binds; None: it is off.
    pub fn admin_address(&self) -> Result<Option<SocketAddr>, String> {
        if self.admin_listen.is_empty() {
            return Ok(None);
        }
        self.admin_listen.parse().map(Some).map_err(|_| {
            format!(
                "admin_listen must be IP:PORT or empty, not '{}'",
                self.admin_listen
            )
        })
    }

    /// Host and port clients are told to use.
    pub fn advertised_host_port(&self) -> (String, i32) {
        match &self.advertised_listener {
            Some(advertised) => parse_host_port(advertised)
                .unwrap_or_else(|_| (self.listen.ip().to_string(), i32::from(self.listen.port()))),
            None => (self.listen.ip().to_string(), i32::from(self.listen.port())),
        }
    }

    /// Number of shards to run given the online cores.
    pub fn shard_count(&self, online_cores: usize) -> usize {
        if self.cores == 0 {
            online_cores.clamp(1, limits::SHARDS_MAX)
        } else {
            self.cores
        }
    }

    /// Broker-level settings as DescribeConfigs reports them: (Kafka name,
    /// value, the weir option that sets it).
    pub fn broker_configs(&self) -> Vec<(&'static str, String, &'static str)> {
        vec![
            (
                "auto.create.topics.enable",
                self.auto_create_topics.to_string(),
                "auto_create_topics",
            ),
            ("broker.id", self.node_id.to_string(), "node_id"),
            (
                "log.retention.bytes",
                self.log_retention_bytes.to_string(),
                "log_retention_bytes",
            ),
            (
                "log.retention.check.interval.ms",
                self.log_retention_check_interval_ms.to_string(),
                "log_retention_check_interval_ms",
            ),
            (
                "log.retention.ms",
                self.log_retention_ms.to_string(),
                "log_retention_ms",
            ),
            ("log.roll.ms", self.segment_ms.to_string(), "segment_ms"),
            (
                "log.segment.bytes",
                self.segment_bytes.to_string(),
                "segment_bytes",
            ),
            (
                "message.max.bytes",
                self.message_max_bytes.to_string(),
                "message_max_bytes",
            ),
            (
                "num.partitions",
                self.default_partitions.to_string(),
                "default_partitions",
            ),
            (
                "socket.request.max.bytes",
                self.request_size_bytes_max.to_string(),
                "request_size_bytes_max",
            ),
        ]
    }
}

fn parse_host_port(text: &str) -> Result<(String, i32), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("'{text}' is not HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("'{text}' has an invalid port"))?;
    if host.is_empty() {
        return Err(format!("'{text}' has an empty host"));
    }
    Ok((host.trim_matches(['[', ']']).to_string(), i32::from(port)))
}

/// A flag's text as a TOML value: integers and booleans typed, else a string.
fn flag_value(text: &str) -> toml::Value {
    if let Ok(number) = text.parse::<i64>() {
        return toml::Value::Integer(number);
    }
    match text {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(text.to_string()),
    }
}

/// The text of `weir --help`.
pub fn help_text() -> String {
    let mut text = String::from(
        "weir: a Kafka-wire-compatible broker, one shard per core on io_uring.\n\n\
         USAGE: weir [--config FILE] [--OPTION VALUE]...\n\n\
         Every option is a TOML key in FILE or a flag (underscores may be dashes);\n\
         flags override the file, the file overrides the defaults.\n\nOPTIONS:\n",
    );
    for option in OPTIONS {
        text.push_str(&format!(
            "  --{:<24} {} [default: {}; unit: {}]\n",
            option.key.replace('_', "-"),
            option.doc,
            option.default,
            option.unit
        ));
    }
    text.push_str("  --config FILE              TOML file with any of the keys above\n");
    text.push_str("  -h, --help                 this text\n  -V, --version              version\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        match Config::from_args(args.iter().map(|s| s.to_string()))? {
            Command::Run(config) => Ok(*config),
            _ => Err("not a run".into()),
        }
    }

    #[test]
    fn no_arguments_gives_the_documented_defaults() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:9092");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.fsync_policy, FsyncPolicy::AcksAll);
        assert!(config.auto_create_topics);
    }

    #[test]
    fn flags_override_and_accept_dashes_or_equals() {
        let config = parse(&[
            "--segment-bytes",
            "2048",
            "--auto-create-topics=false",
            "--fsync-policy",
            "never",
        ])
        .unwrap();
        assert_eq!(config.segment_bytes, 2048);
        assert!(!config.auto_create_topics);
        assert_eq!(config.fsync_policy, FsyncPolicy::Never);
    }

    #[test]
    fn impossible_values_are_rejected() {
        assert!(parse(&["--segment-bytes", "10"]).is_err());
        assert!(parse(&["--request-size-bytes-max", "-1"]).is_err());
        assert!(parse(&["--no-such-option", "1"]).is_err());
        assert!(parse(&["--cores"]).is_err());
        assert!(parse(&["--advertised-listener", "nohostport"]).is_err());
        let admin = |args: &[&str]| parse(args).and_then(|c| c.admin_address());
        assert_eq!(admin(&[]), Ok(Some(SocketAddr::from(([127, 0, 0, 1], 9644)))));
        assert_eq!(admin(&["--admin-listen", ""]), Ok(None));
        assert_eq!(
            admin(&["--admin-listen", "0.0.0.0:9999"]),
            Ok(Some(SocketAddr::from(([0, 0, 0, 0], 9999))))
        );
        assert!(parse(&["--admin-listen", "localhost"]).is_err());
        // Catch-up pacing: a target must exceed the base; the floor keeps
        // catch-up moving; a ceiling may not be under the floor.
        assert!(parse(&["--catch-up-produce-latency-target-pct", "100"]).is_err());
        assert!(parse(&["--catch-up-produce-latency-target-pct", "0"]).is_ok());
        assert!(parse(&["--catch-up-fetch-bytes-per-s-min", "1000"]).is_err());
        assert!(parse(&["--catch-up-fetch-bytes-per-s-max", "4194304"]).is_err());
        assert!(parse(&["--catch-up-fetch-bytes-per-s-max", "67108864"]).is_ok());
    }

    #[test]
    fn every_option_is_documented_and_deserializable() {
        for option in OPTIONS {
            assert!(help_text().contains(&option.key.replace('_', "-")));
        }
    }
}
