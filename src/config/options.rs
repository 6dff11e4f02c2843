//! The broker's options table: every option's TOML key, default, unit and
//! meaning, in the order `weir --help` and `weir config` print them.
//!
//! [`OPTIONS`] is the single source of truth for everything derived from an
//! option's name: the TOML key (`segment_bytes`), the flag (`--segment-bytes`,
//! with `--segment_bytes` as an alias), the environment variable
//! (`WEIR_SEGMENT_BYTES`) and the help text. Invariant (checked by tests):
//! its keys are exactly the fields of [`super::Config`] that a file may set.

/// One option as `weir --help` and the README describe it.
#[derive(Debug)]
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
        default: "same as listen",
        unit: "HOST:PORT",
        doc: "address returned to clients in Metadata",
    },
    OptionDoc {
        key: "advertise_shards",
        default: "false",
        unit: "bool",
        doc: "advertise each shard as a broker of its own: shard N listens on the listen port + N and is node node_id + N, so clients send each partition's requests straight to its shard; false: one broker, every shard on the listen port (SO_REUSEPORT)",
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
        key: "segment_preallocate_bytes",
        default: "16777216",
        unit: "bytes",
        doc: "the active segment is kept written with zeros this far ahead of the appends (as far as the segment already holds, at least 256 KiB), so appends overwrite and their fdatasync commits no journal (see README, Performance); 0 turns it off",
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
        doc: "broker id returned in Metadata (with advertise_shards: shard 0's; shard N is node_id + N)",
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

/// Prefix of the environment variable of every option (`WEIR_DATA_DIR`).
pub const ENV_PREFIX: &str = "WEIR_";

impl OptionDoc {
    /// The command-line flag, without the leading dashes (`segment-bytes`).
    pub fn flag(&self) -> String {
        self.key.replace('_', "-")
    }

    /// The environment variable that sets the option (`WEIR_SEGMENT_BYTES`).
    pub fn env_var(&self) -> String {
        format!("{ENV_PREFIX}{}", self.key.to_ascii_uppercase())
    }
}

/// The row of `key`, if it is an option.
pub fn find(key: &str) -> Option<&'static OptionDoc> {
    OPTIONS.iter().find(|option| option.key == key)
}
