//! Typed messages between shards. Data-plane calls name a partition and
//! carry batches as `Bytes` (moved, never copied); control-plane calls
//! (admin, metadata, log lifecycle) go to or come from shard 0.

use std::{collections::BTreeMap, sync::Arc};

use bytes::Bytes;

use crate::{
    group::{GroupCall, GroupReply},
    log::{
        partition::{AppendOutcome, Durability, ReadOutcome},
        read::Isolation,
        LogError,
    },
    metadata::ClusterMetadata,
    protocol::record_batch::BatchHeader,
};

/// A request to the shard that owns the state it names.
pub enum ShardCall {
    Append {
        topic: String,
        partition: i32,
        batch: Bytes,
        header: BatchHeader,
        durability: Durability,
    },
    /// `first_batch_may_exceed`: return the first batch whole even when it
    /// is larger than `max_bytes` (only for the first data of a response).
    /// `isolation`: read_committed reads stop at the last stable offset.
    /// `cold_max_bytes`: at most this much from below the tail cache.
    Read {
        topic: String,
        partition: i32,
        fetch_offset: i64,
        max_bytes: usize,
        cold_max_bytes: usize,
        first_batch_may_exceed: bool,
        isolation: Isolation,
    },
    /// Completes when the partition's high watermark is above
    /// `high_watermark_seen`, or after `wait_ms` (a parked fetch).
    AwaitData {
        topic: String,
        partition: i32,
        high_watermark_seen: i64,
        wait_ms: u64,
    },
    /// ListOffsets: -1 latest, -2 earliest, -3 max timestamp, else a time.
    /// Under read_committed, latest is the last stable offset and lookups
    /// answer only offsets below it.
    ListOffset {
        topic: String,
        partition: i32,
        timestamp: i64,
        isolation: Isolation,
    },
    /// DeleteRecords: move the log start offset to `offset` (-1: the high
    /// watermark), durably.
    DeleteRecords {
        topic: String,
        partition: i32,
        offset: i64,
    },
    /// Open (creating if needed) the logs of these partitions here.
    OpenLogs {
        topic: String,
        partitions: Vec<i32>,
        configs: BTreeMap<String, String>,
    },
    /// Close and delete the logs of these partitions here.
    RemoveLogs { topic: String, partitions: Vec<i32> },
    /// Replace this shard's metadata snapshot.
    InstallMetadata(Arc<ClusterMetadata>),
    /// Only to shard 0, the metadata writer.
    Admin(AdminCall),
    /// Only to shard 0: a new block of producer ids, persisted before the
    /// reply.
    AllocateProducerIds,
    /// To the coordinator shard of a group (see `crate::group`).
    Group(GroupCall),
    /// To the coordinator shard of a transactional id (see `crate::txn`).
    Txn(crate::txn::TxnCall),
    /// DescribeProducers: the producer state of a partition.
    DescribeProducers { topic: String, partition: i32 },
    /// A copy of the shard's metrics for the admin listener.
    Stats { reset_interval: bool },
    /// To the owner of a partition: append a transaction marker.
    WriteMarker {
        topic: String,
        partition: i32,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    },
}

pub enum ShardReply {
    Appended(Result<AppendOutcome, LogError>),
    Read(Result<ReadOutcome, LogError>),
    /// (offset, timestamp); (-1, -1) when no record qualifies.
    Offset(Result<(i64, i64), LogError>),
    Done(Result<(), String>),
    /// The log start offset after DeleteRecords.
    LowWatermark(Result<i64, LogError>),
    Admin(Vec<AdminResult>),
    /// A block of producer ids `[start, end)`, or why none was allocated.
    ProducerIds(Result<(i64, i64), String>),
    Group(GroupReply),
    Txn(crate::txn::TxnReply),
    Producers(Vec<(i64, crate::log::producer_state::ProducerEntry)>),
    Stats(Box<crate::metrics::ShardStats>),
    /// The partition is not (or no longer) on the called shard.
    UnknownPartition,
    /// The called shard is gone (shutdown) or the message was not delivered.
    Unavailable,
}

pub enum AdminCall {
    CreateTopics {
        topics: Vec<NewTopic>,
        validate_only: bool,
    },
    DeleteTopics {
        names: Vec<String>,
    },
    CreatePartitions {
        topics: Vec<(String, i32)>,
        validate_only: bool,
    },
    /// New config overrides of topics (one edit per topic name).
    AlterConfigs {
        edits: Vec<(String, crate::metadata::topic_config::ConfigEdit)>,
        validate_only: bool,
    },
}

#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    /// -1: the broker default.
    pub partitions: i32,
    /// -1 or 1 accepted: a single node has one replica.
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
    pub manual_assignment: bool,
}

/// Outcome of an admin operation on one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminResult {
    pub name: String,
    pub error_code: i16,
    pub message: Option<String>,
}

/// A call on the mesh, with what is needed to route the reply back.
pub struct Envelope {
    pub id: u64,
    pub from_shard: usize,
    pub call: ShardCall,
    /// When the sender handed it to the mesh (the receiver times delivery).
    pub sent_at: std::time::Instant,
}

pub struct ReplyEnvelope {
    pub id: u64,
    pub reply: ShardReply,
    pub sent_at: std::time::Instant,
}
