//! Consumer groups: the group coordinator (classic rebalance protocol) and
//! committed offsets.
//!
//! # Where a group lives
//!
//! A group belongs to one partition of the internal topic
//! `__consumer_offsets` (Kafka's rule: `abs(java hashCode(group id)) %
//! partitions`), and its coordinator runs on the shard that owns that
//! partition. Handlers on any shard route group requests there over the
//! mesh ([`GroupCall`]), so one shard alone holds and changes a group's
//! state: no locks, and no borrow of it is held across an `.await` (state
//! changes are synchronous; waiting for a rebalance goes through channels
//! stored in the members).
//!
//! # Durability
//!
//! Offset commits and group metadata are records appended to that
//! partition through the normal log, in Kafka's record formats
//! ([`records`]), acknowledged after the same fdatasync acks=all gets.
//! On start each shard replays its partitions before it serves, so
//! committed offsets and groups (members included) survive restarts.
//!
//! Modules: `state` (one group: members, generation, protocol), `records`
//! (what is written to `__consumer_offsets`), `coordinator` (the per-shard
//! operations and the expiry timer).

pub mod consumer;
pub mod coordinator;
pub mod records;
pub mod state;

use kafka_protocol::messages::{
    consumer_group_describe_response, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, OffsetCommitRequest, OffsetCommitResponse, SyncGroupRequest, SyncGroupResponse,
};

pub use coordinator::GroupCoordinator;
use records::CommittedOffset;

/// The internal topic holding committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Segment size of `__consumer_offsets` (Kafka's offsets.topic.segment.bytes).
pub const OFFSETS_TOPIC_SEGMENT_BYTES: u64 = 100 * 1024 * 1024;

/// Members per group (beyond: GROUP_MAX_SIZE_REACHED).
pub const GROUP_MEMBERS_MAX: usize = 1000;

/// Protocol metadata a member may send in JoinGroup, all protocols together.
pub const MEMBER_METADATA_BYTES_MAX: usize = 1024 * 1024;

/// Metadata string of one committed offset (Kafka's offset.metadata.max.bytes).
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;

/// How weir creates `__consumer_offsets`: on the first group request (as
/// Kafka does), so brokers that never see a group never pay for its
/// partitions.
pub fn offsets_topic(config: &crate::config::Config) -> crate::shard::messages::NewTopic {
    crate::shard::messages::NewTopic {
        name: OFFSETS_TOPIC.to_string(),
        partitions: config.offsets_topic_partitions,
        replication_factor: -1,
        // Compacted, as Kafka creates it: a restart replays the latest
        // record per key, not the whole history.
        configs: [
            (
                "segment.bytes".to_string(),
                OFFSETS_TOPIC_SEGMENT_BYTES.to_string(),
            ),
            ("cleanup.policy".to_string(), "compact".to_string()),
        ]
        .into_iter()
        .collect(),
        manual_assignment: false,
    }
}

/// The `__consumer_offsets` partition of `group_id`, as Kafka computes it.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let mut hash: i32 = 0;
    for unit in group_id.encode_utf16() {
        hash = hash.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    (hash & 0x7fff_ffff) % partitions.max(1)
}

/// A group request routed to the coordinator shard.
pub enum GroupCall {
    Join {
        version: i16,
        request: JoinGroupRequest,
        client_id: String,
        client_host: String,
    },
    Sync {
        version: i16,
        request: SyncGroupRequest,
    },
    Heartbeat {
        request: HeartbeatRequest,
    },
    Leave {
        version: i16,
        request: LeaveGroupRequest,
    },
    Commit {
        request: OffsetCommitRequest,
    },
    /// TxnOffsetCommit.
    TxnCommit {
        request: kafka_protocol::messages::TxnOffsetCommitRequest,
    },
    /// Committed offsets of `topics` (None: every partition with one).
    FetchOffsets {
        group: String,
        topics: Option<Vec<(String, Vec<i32>)>>,
    },
    Describe {
        group: String,
    },
    List,
    Delete {
        group: String,
    },
    DeleteOffsets {
        group: String,
        topics: Vec<(String, Vec<i32>)>,
    },
    /// KIP-848.
    ConsumerHeartbeat {
        request: ConsumerGroupHeartbeatRequest,
        client_id: String,
        client_host: String,
    },
    ConsumerDescribe {
        group: String,
    },
}

impl GroupCall {
    /// The request this call serves (its coordinator time and record
    /// writes are recorded under it).
    pub fn api_key(&self) -> kafka_protocol::messages::ApiKey {
        use kafka_protocol::messages::ApiKey;
        match self {
            GroupCall::Join { .. } => ApiKey::JoinGroup,
            GroupCall::Sync { .. } => ApiKey::SyncGroup,
            GroupCall::Heartbeat { .. } => ApiKey::Heartbeat,
            GroupCall::Leave { .. } => ApiKey::LeaveGroup,
            GroupCall::Commit { .. } => ApiKey::OffsetCommit,
            GroupCall::TxnCommit { .. } => ApiKey::TxnOffsetCommit,
            GroupCall::FetchOffsets { .. } => ApiKey::OffsetFetch,
            GroupCall::Describe { .. } => ApiKey::DescribeGroups,
            GroupCall::List => ApiKey::ListGroups,
            GroupCall::Delete { .. } => ApiKey::DeleteGroups,
            GroupCall::DeleteOffsets { .. } => ApiKey::OffsetDelete,
            GroupCall::ConsumerHeartbeat { .. } => ApiKey::ConsumerGroupHeartbeat,
            GroupCall::ConsumerDescribe { .. } => ApiKey::ConsumerGroupDescribe,
        }
    }
}

pub enum GroupReply {
    Join(JoinGroupResponse),
    Sync(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    Leave(LeaveGroupResponse),
    Commit(OffsetCommitResponse),
    TxnCommit(kafka_protocol::messages::TxnOffsetCommitResponse),
    /// (topic, partition, committed offset if any).
    Offsets(Vec<(String, i32, Option<CommittedOffset>)>),
    Describe(DescribedGroup),
    List(Vec<ListedGroup>),
    /// Error code of a group deletion.
    Deleted(i16),
    /// Group-level error, or per-partition errors.
    OffsetsDeleted(Result<Vec<(String, i32, i16)>, i16>),
    ConsumerHeartbeat(ConsumerGroupHeartbeatResponse),
    ConsumerDescribe(Box<consumer_group_describe_response::DescribedGroup>),
}

/// What DescribeGroups reports of one group.
#[derive(Debug, Clone, Default)]
pub struct DescribedGroup {
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<DescribedMember>,
}

#[derive(Debug, Clone, Default)]
pub struct DescribedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: bytes::Bytes,
    pub assignment: bytes::Bytes,
}

#[derive(Debug, Clone)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
    /// "classic" or "consumer" (KIP-848).
    pub group_type: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_matches_kafka() {
        // Java: "my-group".hashCode() = -1906497762; & 0x7fffffff, % 50 = 36.
        assert_eq!(partition_for("my-group", 50), 36);
        assert_eq!(partition_for("", 50), 0);
        assert!((0..50).contains(&partition_for("ünïcödé-grüppe", 50)));
    }
}
