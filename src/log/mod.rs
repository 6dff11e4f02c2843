//! Partition logs: segments of Kafka record batches, appended with O_DIRECT.
//!
//! This layer knows nothing of sockets or Kafka requests. It takes validated
//! batches and returns offsets, byte ranges of batches, and errors. Each
//! [`partition::PartitionLog`] lives on exactly one shard (the owner recorded
//! in cluster metadata) and is only touched from that shard's thread, so its
//! state is a `RefCell` and no lock exists on the data path. Borrows of that
//! state are never held across an `.await`: every operation builds a plan
//! synchronously, releases the borrow, does the I/O, then applies the result.
//!
//! Durability vocabulary used throughout:
//! - *assigned*: the batch has offsets (synchronously, in arrival order);
//! - *written*: its O_DIRECT write completed; it is below the high watermark
//!   and readable (acks=1 is acknowledged here);
//! - *synced*: an fdatasync covering it completed (acks=all, fsync policy
//!   `acks-all`, is acknowledged here).

pub mod compaction;
#[cfg(test)]
mod compaction_tests;
pub mod fault;
pub mod index;
pub mod partition;
pub mod preallocate;
pub mod producer_state;
pub mod read;
#[cfg(test)]
mod read_committed_tests;
pub mod recovery;
pub mod region;
pub mod replay;
pub mod retention;
pub mod scan;
pub mod segment;
pub mod tail_cache;
#[cfg(test)]
mod tests;
pub mod watch;

use std::path::Path;

/// What can go wrong below a partition. Every variant maps to a Kafka error
/// code in the handlers; none is a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogError {
    /// A file operation failed; the partition is taken offline for writes.
    Io {
        operation: &'static str,
        path: String,
        error: String,
    },
    /// The partition failed earlier (I/O error or corruption) and refuses
    /// appends and reads past the damage.
    Offline { reason: String },
    OffsetOutOfRange {
        log_start_offset: i64,
        high_watermark: i64,
    },
    /// An idempotent or transactional batch refused by the producer state
    /// (nothing was appended; the partition stays online).
    Producer(producer_state::ProducerError),
}

impl LogError {
    pub fn io(operation: &'static str, path: &Path, error: impl std::fmt::Display) -> LogError {
        LogError::Io {
            operation,
            path: path.display().to_string(),
            error: error.to_string(),
        }
    }
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogError::Io {
                operation,
                path,
                error,
            } => write!(f, "{operation} {path}: {error}"),
            LogError::Offline { reason } => write!(f, "partition offline: {reason}"),
            LogError::OffsetOutOfRange {
                log_start_offset,
                high_watermark,
            } => write!(f, "offset out of range [{log_start_offset}, {high_watermark}]"),
            LogError::Producer(error) => write!(f, "{error}"),
        }
    }
}

/// Runs a short blocking std::fs operation (listing a directory, reading a
/// small index file, writing the metadata file, removing a partition's
/// directory) inline on the shard's thread.
///
/// Why not glommio's blocking pool: its completions were seen to get lost
/// here (a CreateTopics, a shutdown and a fetch each waited forever on a
/// finished `spawn_blocking` job). These operations are rare and take
/// microseconds to a few milliseconds, so running them inline costs the
/// shard less than the risk. Nothing on the produce or fetch hot path calls
/// this; appends, syncs and segment rolls use glommio's io_uring file ops.
/// The signature stays async so the call sites read as I/O.
pub async fn blocking<R>(work: impl FnOnce() -> R) -> R {
    work()
}

/// Runs file-system work that may take milliseconds (unlinking large
/// segments, renames and directory fsyncs of retention and compaction) on a
/// thread of its own, so the shard keeps serving meanwhile; the shard polls
/// for the result every millisecond (a glommio timer: no cross-thread
/// wake-up involved, see `blocking` for why that matters).
pub async fn off_shard<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> R {
    type Slot<T> = std::sync::Arc<std::sync::Mutex<Option<T>>>;
    fn take<T>(slot: &Slot<T>) -> Option<T> {
        slot.lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
    let job: Slot<_> = std::sync::Arc::new(std::sync::Mutex::new(Some(work)));
    let result: Slot<R> = std::sync::Arc::new(std::sync::Mutex::new(None));
    let (thread_job, thread_result) = (job.clone(), result.clone());
    let spawned = std::thread::Builder::new().name("weir-fs".into()).spawn(move || {
        if let Some(work) = take(&thread_job) {
            let done = work();
            *thread_result
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(done);
        }
    });
    if spawned.is_err() {
        // No thread to be had (a resource limit): do it here instead.
        if let Some(work) = take(&job) {
            return work();
        }
    }
    loop {
        if let Some(done) = take(&result) {
            return done;
        }
        glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
