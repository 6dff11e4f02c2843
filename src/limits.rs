//! Bounds that are not user-tunable, as named constants with their unit last.
//!
//! Every limit weir enforces lives either here (fixed by the protocol or by
//! the design) or in [`crate::config::Config`] (tunable, with a default and a
//! minimum). The relations between them are checked at compile time so a
//! change that breaks one fails the build, not a production shard.

/// A Kafka frame starts with a signed 32-bit size; the request header after
/// it is at least api_key (2) + api_version (2) + correlation_id (4) +
/// client_id length (2).
pub const REQUEST_HEADER_BYTES_MIN: usize = 10;

/// Smallest value accepted for `request_size_bytes_max`: a produce of one
/// small batch must always fit.
pub const REQUEST_SIZE_BYTES_MAX_MIN: u64 = 64 * 1024;

/// Largest value accepted for `request_size_bytes_max`: the frame size is an
/// i32 on the wire.
pub const REQUEST_SIZE_BYTES_MAX_MAX: u64 = i32::MAX as u64;

/// Topic names: Kafka's limit (249 characters of `[a-zA-Z0-9._-]`).
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

/// Partitions a single topic may have on this broker.
pub const TOPIC_PARTITIONS_MAX: i32 = 10_000;

/// Shards (cores) one broker runs; bounded so per-shard tables stay small.
pub const SHARDS_MAX: usize = 256;

/// Sparse offset index: one entry per this many bytes of log (Kafka's
/// `index.interval.bytes` default).
pub const INDEX_INTERVAL_BYTES: u64 = 4096;

/// Bytes of one `.index` entry: relative offset u32 + file position u32.
pub const OFFSET_INDEX_ENTRY_BYTES: usize = 8;

/// Bytes of one `.timeindex` entry: timestamp i64 + relative offset u32.
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;

/// A segment's file positions are u32 in the index, so a segment is at most
/// this big.
pub const SEGMENT_BYTES_MAX: u64 = i32::MAX as u64;

/// Smallest segment size accepted (Kafka's `segment.bytes` minimum is 14).
/// Tiny segments are allowed for tests; a batch never straddles segments.
pub const SEGMENT_BYTES_MIN: u64 = 1024;

/// Bytes read from a segment per DMA read while scanning (recovery, fetch).
pub const SCAN_READ_BYTES: usize = 1024 * 1024;

/// Mesh channel depth between two shards, in messages.
pub const MESH_CHANNEL_MESSAGES: usize = 1024;

/// How long a shard waits on shutdown for in-flight requests, in ms.
pub const SHUTDOWN_DRAIN_MS_MAX: u64 = 10_000;

/// How long a shard may take on shutdown to close its logs (write, trim,
/// fdatasync, indexes), in ms. Past it the shard exits anyway: every
/// acknowledged batch is already written, and recovery redoes the rest.
pub const SHUTDOWN_CLOSE_MS_MAX: u64 = 30_000;

/// Time from SIGINT/SIGTERM until the process exits even if a shard has not
/// finished its shutdown, in ms: drain + close, plus a margin. Exiting then
/// is a crash for the logs (nothing acknowledged is lost; recovery trims
/// and re-indexes at the next start).
pub const SHUTDOWN_EXIT_MS_MAX: u64 = SHUTDOWN_DRAIN_MS_MAX + SHUTDOWN_CLOSE_MS_MAX + 5_000;

/// A Kafka record batch header, and the overhead before batchLength.
pub const RECORD_BATCH_HEADER_BYTES: usize = 61;

const _: () = assert!(REQUEST_SIZE_BYTES_MAX_MIN > RECORD_BATCH_HEADER_BYTES as u64);
const _: () = assert!(SEGMENT_BYTES_MAX <= u32::MAX as u64);
const _: () = assert!(SCAN_READ_BYTES % 4096 == 0);

/// baseOffset (8) + batchLength (4): what precedes the batch length check.
pub const LOG_OVERHEAD_BYTES_MIN: usize = 12;

/// A cross-shard call (other than long-polls and rebalances) slower than
/// this is logged: it means a stalled shard or a lost wake-up.
pub const MESH_CALL_SLOW_MS: u64 = 5_000;

/// Every shard's event loop turns at least this often (see
/// `shard::runtime`: a guard against lost cross-executor wake-ups).
pub const SHARD_WAKE_TICK_MS: u64 = 10;

/// A cross-shard message received this long after it was sent is counted
/// late (`weir_mesh_late_deliveries_total`): the receiver was parked
/// through a lost wake-up until the wake tick, or busy that long.
pub const MESH_LATE_DELIVERY_MS: u64 = SHARD_WAKE_TICK_MS / 2;

/// Producer ids tracked per partition (idempotence state). When full, the
/// least recently active producer without an open transaction is forgotten
/// (its next batch is accepted at any sequence, as after expiration).
/// About 300 bytes each.
pub const PRODUCER_STATES_PER_PARTITION_MAX: usize = 20_000;

/// Producer ids are handed out in blocks of this many; the end of the last
/// block is persisted in the cluster metadata before any id of it is used,
/// so no id is ever reused after a restart (Kafka's block size).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1_000;

/// How long a starting shard retries binding a port still held by a weir
/// that just exited, in ms.
pub const BIND_RETRY_MS_MAX: u64 = 2_000;

/// How often each shard tries to reopen the logs an I/O error took offline
/// (a full or failing disk may have recovered).
pub const LOG_REPAIR_INTERVAL_MS: u64 = 1000;

/// Smallest `segment.bytes` a topic may set, as in Kafka 4 (the broker-wide
/// `segment_bytes` may go lower, for tests of rolling).
pub const TOPIC_SEGMENT_BYTES_MIN: u64 = 1024 * 1024;
