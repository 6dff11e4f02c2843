//! weir: a Kafka-wire-compatible message broker, thread-per-core on io_uring.
//!
//! The modules follow the data path of a request:
//!
//! ```text
//! net/        socket: accept on every shard (SO_REUSEPORT), framing,
//!             in-flight cap, responses in request order
//! protocol/   frame header, decode/encode via kafka-protocol, error codes,
//!             record batch validation and patching
//! handlers/   one file per Kafka API
//! shard/      the per-core executor, partition -> shard routing, typed
//!             cross-shard messages over glommio's channel_mesh, shard 0's
//!             admin (metadata writer)
//! log/        partition logs: segments, indexes, O_DIRECT appends,
//!             group commit, recovery, reads
//! group/      consumer groups: the group coordinator, committed offsets
//! txn/        transactions: the transaction coordinator and its markers
//! metadata/   topics, placement, topic configs; persisted by shard 0
//! metrics/    per-shard HdrHistograms of request latency
//! ```
//!
//! Each shard is a glommio executor pinned to one core. It owns a disjoint
//! set of partitions and all their state; other shards reach that state only
//! by sending it a message. Nothing on the data path takes a lock.

pub mod alloc_guard;
pub mod config;
pub mod fetch;
pub mod group;
pub mod handlers;
pub mod limits;
pub mod log;
pub mod metadata;
pub mod metrics;
pub mod net;
pub mod observe;
pub mod protocol;
pub mod shard;
pub mod txn;
