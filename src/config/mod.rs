//! Broker configuration: every option with its default, unit and minimum,
//! and where the effective value of each comes from.
//!
//! - `options`: the table ([`OPTIONS`]) that is the single source of truth
//!   for the TOML keys, the command-line flags, the `WEIR_<OPTION>`
//!   environment variables and the help text;
//! - `cli`: the command line of `weir` on clap (subcommands, one flag per
//!   `OPTIONS` row, environment variables, `weir config`'s TOML output);
//! - this module: [`Config`] itself, its defaults, [`Config::sanitize`], and
//!   [`Config::from_args`] for programs that read weir's settings as `weir`
//!   does (weir-tune).
//!
//! Values come from the embedded defaults, then the TOML file given with
//! `--config`, then `WEIR_<OPTION>` variables, then the flags; serde checks
//! their types and [`Config::sanitize`] rejects impossible values and
//! combinations before any shard starts. The finished `Config` is immutable
//! and cloned once into every shard.

mod cli;
mod options;

use std::{collections::BTreeSet, net::SocketAddr, path::PathBuf};

use serde::{Deserialize, Serialize};

use crate::limits;

pub use cli::{flag_value, help_text, render_toml, BrokerArgs, Cli, Given, Origin, WeirCommand};
pub use options::{find as find_option, OptionDoc, ENV_PREFIX, OPTIONS};

/// When appended data is forced to stable storage with fdatasync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: SocketAddr,
    /// `HOST:PORT` clients are told to connect to; defaults to `listen`.
    pub advertised_listener: Option<String>,
    /// `HOST:PORT` of the admin HTTP listener (metrics, status, health);
    /// empty: none.
    pub admin_listen: String,
    /// Advertise every shard as a broker of its own (port `listen` + shard,
    /// node id `node_id` + shard) instead of one broker behind SO_REUSEPORT:
    /// clients then send each partition's requests straight to its shard.
    pub advertise_shards: bool,
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
    /// How far ahead of the appends the active segment is kept written
    /// with zeros (0: off; see `log::preallocate`).
    pub segment_preallocate_bytes: u64,
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
    /// The options set by the config file, the environment or flags (not
    /// defaults), so DescribeConfigs can say STATIC_BROKER_CONFIG or
    /// DEFAULT_CONFIG.
    #[serde(skip)]
    pub explicit: BTreeSet<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 9092)),
            advertised_listener: None,
            admin_listen: "127.0.0.1:9644".into(),
            advertise_shards: false,
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
            segment_preallocate_bytes: 16 * 1024 * 1024,
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

/// What a command line asked for, as [`Config::from_args`] reports it.
#[derive(Debug)]
pub enum Command {
    /// Run the broker (no subcommand).
    Run(Box<Config>),
    /// `weir config`: print the effective configuration.
    PrintConfig(Box<Config>),
    Help,
    Version,
}

impl Config {
    /// Parses `args` (without the program name) exactly as `weir` parses
    /// its own: defaults, then `--config FILE`, then the process's
    /// `WEIR_<OPTION>` variables, then every `--option value` flag. `Err`
    /// carries the message `weir` would print before exiting with 2.
    pub fn from_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
        let argv = std::iter::once("weir".to_string()).chain(args);
        let cli = match <Cli as clap::Parser>::try_parse_from(argv) {
            Ok(cli) => cli,
            Err(error) => {
                return match error.kind() {
                    clap::error::ErrorKind::DisplayHelp
                    | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => Ok(Command::Help),
                    clap::error::ErrorKind::DisplayVersion => Ok(Command::Version),
                    _ => Err(cli::error_message(&error)),
                };
            }
        };
        let config = Box::new(cli.broker.load()?);
        Ok(match cli.command {
            None => Command::Run(config),
            Some(WeirCommand::Config) => Command::PrintConfig(config),
        })
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
