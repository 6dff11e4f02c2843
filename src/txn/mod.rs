//! Transactions: the transaction coordinator and its log.
//!
//! # Where a transaction lives
//!
//! A transactional id belongs to one partition of the internal topic
//! `__transaction_state` (Kafka's rule, the same hash as groups), and its
//! coordinator runs on the shard that owns that partition. Handlers on any
//! shard route transaction requests there ([`TxnCall`]), so one shard
//! alone changes a transactional id's state. Operations on one id are
//! serialised by a permit per id (they wait for the log and for markers).
//!
//! # Durability
//!
//! Every state change is a record in `__transaction_state` (Kafka's
//! format, [`records`]), fdatasync'ed before the client hears of it. On
//! start each shard replays its partitions; transactions found in a
//! Prepare state get their markers written again, and Ongoing ones keep
//! their deadline (start + timeout), after which they are aborted.
//!
//! # Markers
//!
//! Ending a transaction writes a COMMIT or ABORT control batch into every
//! partition it touched (a `WriteMarker` call to the owning shard, which
//! appends it durably, see `log::partition::append_marker`). A marker in a
//! `__consumer_offsets` partition also makes the group coordinator apply
//! or drop the transaction's offset commits (TxnOffsetCommit).
//!
//! Modules: `state` (one transactional id), `records` (the log format),
//! `coordinator` (the per-shard operations and the timeout task).

pub mod coordinator;
pub mod records;
pub mod state;

pub use coordinator::TxnCoordinator;

/// The internal topic holding transaction state.
pub const TXN_STATE_TOPIC: &str = "__transaction_state";

/// Segment size of `__transaction_state` (Kafka's
/// transaction.state.log.segment.bytes).
pub const TXN_STATE_TOPIC_SEGMENT_BYTES: u64 = 100 * 1024 * 1024;

/// Longest transactional id accepted, in bytes (it is a Kafka string).
pub const TRANSACTIONAL_ID_BYTES_MAX: usize = i16::MAX as usize;

/// How weir creates `__transaction_state`: on the first transactional
/// request, as Kafka does.
pub fn txn_state_topic(config: &crate::config::Config) -> crate::shard::messages::NewTopic {
    crate::shard::messages::NewTopic {
        name: TXN_STATE_TOPIC.to_string(),
        partitions: config.transaction_state_topic_partitions,
        replication_factor: -1,
        // Compacted, as Kafka creates it: a restart replays the latest
        // record per key, not the whole history.
        configs: [
            (
                "segment.bytes".to_string(),
                TXN_STATE_TOPIC_SEGMENT_BYTES.to_string(),
            ),
            ("cleanup.policy".to_string(), "compact".to_string()),
        ]
        .into_iter()
        .collect(),
        manual_assignment: false,
    }
}

/// A request to the coordinator of a transactional id.
#[derive(Debug, Clone)]
pub enum TxnCall {
    /// InitProducerId with a transactional id. `producer_id`/`epoch` are
    /// the caller's current ones (-1 when it has none).
    InitProducerId {
        transactional_id: String,
        timeout_ms: i32,
        producer_id: i64,
        epoch: i16,
    },
    /// AddPartitionsToTxn (and AddOffsetsToTxn, as its offsets partition:
    /// `for_offsets`). `verify_only`: only check that they are in the
    /// transaction.
    AddPartitions {
        transactional_id: String,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<(String, i32)>,
        verify_only: bool,
        for_offsets: bool,
    },
    EndTxn {
        transactional_id: String,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    },
    /// DescribeTransactions.
    Describe { transactional_ids: Vec<String> },
    /// ListTransactions (empty filters match everything; `duration_ms_min`
    /// -1 for none).
    List {
        states: Vec<String>,
        producer_ids: Vec<i64>,
        duration_ms_min: i64,
    },
}

impl TxnCall {
    /// The request this call serves (its coordinator time and record
    /// writes are recorded under it).
    pub fn api_key(&self) -> kafka_protocol::messages::ApiKey {
        use kafka_protocol::messages::ApiKey;
        match self {
            TxnCall::InitProducerId { .. } => ApiKey::InitProducerId,
            TxnCall::AddPartitions {
                for_offsets: true, ..
            } => ApiKey::AddOffsetsToTxn,
            TxnCall::AddPartitions { .. } => ApiKey::AddPartitionsToTxn,
            TxnCall::EndTxn { .. } => ApiKey::EndTxn,
            TxnCall::Describe { .. } => ApiKey::DescribeTransactions,
            TxnCall::List { .. } => ApiKey::ListTransactions,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnReply {
    ProducerId {
        error_code: i16,
        producer_id: i64,
        epoch: i16,
    },
    Partitions(Vec<((String, i32), i16)>),
    Ended(i16),
    Described(Vec<DescribedTxn>),
    Listed(Vec<ListedTxn>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedTxn {
    pub transactional_id: String,
    /// NONE, or TRANSACTIONAL_ID_NOT_FOUND.
    pub error_code: i16,
    pub state: String,
    pub timeout_ms: i32,
    pub start_ms: i64,
    pub producer_id: i64,
    pub epoch: i16,
    pub partitions: Vec<(String, i32)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTxn {
    pub transactional_id: String,
    pub producer_id: i64,
    pub state: String,
}
