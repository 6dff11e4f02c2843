//! A shard: one glommio executor pinned to one core, owning a disjoint set of
//! partition logs, a copy of the cluster metadata, and its metrics.
//!
//! Everything in [`Shard`] is touched only from its own thread. Other shards
//! reach its partitions by [`Shard::call`], which is a plain function call
//! when the target is this shard and a typed message over the mesh
//! otherwise. The metadata snapshot is an `Rc` swapped whole on update, so a
//! handler that cloned it keeps a consistent view for its whole request.

pub mod admin;
pub mod mesh;
pub mod messages;
pub mod producer_ids;
pub mod runtime;

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    path::PathBuf,
    rc::Rc,
    sync::Arc,
};

use glommio::sync::Semaphore;

use crate::{
    config::Config,
    fetch::session::{FetchSessionCache, SessionCacheConfig},
    log::{
        partition::{Durability, PartitionLog},
        read::Isolation,
        recovery::open_log,
        tail_cache::TailCache,
        LogError,
    },
    metadata::{ClusterMetadata, TopicConfig},
    metrics::Metrics,
};
use messages::{ShardCall, ShardReply};

pub struct Shard {
    pub id: usize,
    pub count: usize,
    pub config: Rc<Config>,
    metadata: RefCell<Rc<ClusterMetadata>>,
    logs: RefCell<HashMap<(String, i32), Rc<PartitionLog>>>,
    pub mesh: mesh::Mesh,
    pub metrics: RefCell<Metrics>,
    /// Shard 0 only: admin operations run one at a time.
    admin_permit: Semaphore,
    /// Requests being handled on this shard (drained on shutdown).
    pub requests_in_flight: Cell<usize>,
    /// Set on shutdown: connections take no new requests.
    pub stopping: Cell<bool>,
    /// Recent batches of every log on this shard (`tail_cache_bytes`).
    pub tail_cache: Rc<TailCache>,
    /// Paces fetches read below the tail cache while producers are active.
    pub catch_up_pacer: crate::fetch::pacing::CatchUpPacer,
    /// KIP-227 sessions created on this shard's connections.
    pub fetch_sessions: RefCell<FetchSessionCache>,
    /// glommio task queues: appends and control requests are
    /// latency-sensitive; bulk reads (fetches) get a smaller share, so a
    /// catch-up consumer cannot queue producers behind it.
    pub task_queues: TaskQueues,
    /// Consumer groups whose `__consumer_offsets` partition is here.
    pub groups: crate::group::GroupCoordinator,
    /// Transactional ids whose `__transaction_state` partition is here.
    pub txns: crate::txn::TxnCoordinator,
    /// The block of producer ids this shard hands out next.
    pub producer_ids: producer_ids::ProducerIdBlock,
}

/// See [`Shard::task_queues`].
pub struct TaskQueues {
    pub latency: glommio::TaskQueueHandle,
    pub bulk: glommio::TaskQueueHandle,
}

/// CPU shares of the two task queues when both have work.
const LATENCY_QUEUE_SHARES: usize = 1000;
const BULK_QUEUE_SHARES: usize = 250;
/// How soon a runnable latency-sensitive task preempts bulk work.
const LATENCY_QUEUE_PREEMPT_US: u64 = 500;

impl TaskQueues {
    fn create() -> TaskQueues {
        let executor = glommio::executor();
        let latency = executor.create_task_queue(
            glommio::Shares::Static(LATENCY_QUEUE_SHARES),
            glommio::Latency::Matters(std::time::Duration::from_micros(LATENCY_QUEUE_PREEMPT_US)),
            "latency",
        );
        let bulk = executor.create_task_queue(
            glommio::Shares::Static(BULK_QUEUE_SHARES),
            glommio::Latency::NotImportant,
            "bulk",
        );
        TaskQueues { latency, bulk }
    }
}

impl Shard {
    /// Spawns `future` on the task queue that fits `bulk` work or not.
    pub fn spawn<T: 'static>(
        &self,
        bulk: bool,
        future: impl std::future::Future<Output = T> + 'static,
    ) -> glommio::Task<T> {
        let queue = if bulk {
            self.task_queues.bulk
        } else {
            self.task_queues.latency
        };
        glommio::spawn_local_into(future, queue).expect("task queues are created with the shard")
    }
}

impl Shard {
    pub fn new(
        id: usize,
        count: usize,
        config: Rc<Config>,
        metadata: ClusterMetadata,
        mesh: mesh::Mesh,
        pacing: std::sync::Arc<crate::fetch::pacing::PacingSignals>,
    ) -> Shard {
        let tail_cache = TailCache::new(config.tail_cache_bytes);
        let mut metrics = Metrics::default();
        metrics.stages = config.latency_stages;
        let metrics = RefCell::new(metrics);
        let catch_up_pacer = crate::fetch::pacing::CatchUpPacer::new(
            id,
            &crate::fetch::pacing::PacingConfig::from_config(&config),
            pacing,
        );
        Shard {
            id,
            count,
            config,
            metadata: RefCell::new(Rc::new(metadata)),
            logs: RefCell::new(HashMap::new()),
            mesh,
            metrics,
            admin_permit: Semaphore::new(1),
            requests_in_flight: Cell::new(0),
            stopping: Cell::new(false),
            tail_cache,
            fetch_sessions: RefCell::new(FetchSessionCache::new(SessionCacheConfig::default())),
            catch_up_pacer,
            task_queues: TaskQueues::create(),
            groups: Default::default(),
            producer_ids: Default::default(),
            txns: Default::default(),
        }
    }

    /// The current metadata snapshot (immutable; cheap to clone).
    pub fn metadata(&self) -> Rc<ClusterMetadata> {
        self.metadata.borrow().clone()
    }

    pub fn log(&self, topic: &str, partition: i32) -> Option<Rc<PartitionLog>> {
        self.logs.borrow().get(&(topic.to_string(), partition)).cloned()
    }

    /// How durable the coordinators' own writes (`__consumer_offsets`,
    /// `__transaction_state`, markers) are before they answer: as acks=all.
    pub fn internal_durability(&self) -> Durability {
        match self.config.fsync_policy {
            crate::config::FsyncPolicy::Never => Durability::Written,
            crate::config::FsyncPolicy::AcksAll | crate::config::FsyncPolicy::Always => Durability::Synced,
        }
    }

    /// Appends a batch the broker encoded itself (coordinator records) to
    /// `topic`-`partition` on this shard, as durably as acks=all; its write
    /// and fsync are timed under `api`, the request it serves (if any).
    /// Err(None): the partition is not here.
    pub async fn append_internal(
        &self,
        topic: &str,
        partition: i32,
        batch: bytes::Bytes,
        api: Option<kafka_protocol::messages::ApiKey>,
    ) -> Result<(), Option<LogError>> {
        let log = self.log(topic, partition).ok_or(None)?;
        let header = crate::protocol::record_batch::validate_produced_batch(&batch, usize::MAX)
            .expect("the broker encodes valid batches");
        let durability = self.internal_durability();
        let outcome = log.append(batch, &header, durability).await.map_err(Some)?;
        if let Some(api) = api {
            self.metrics
                .borrow_mut()
                .record_append(api as i16, &outcome, durability);
        }
        Ok(())
    }

    /// Every log on this shard (a snapshot of the table).
    /// This shard's metrics and partition offsets (for the admin listener).
    /// The latency histograms (~140 KB each, one per API and stage) are
    /// copied one at a time with a yield between them, so a scrape never
    /// holds the shard for more than one copy: copied all at once they
    /// stalled produce requests for milliseconds (acks=all at 10k msgs/s,
    /// one `/metrics` a second: p99.9 3.4-4.0 ms without, 9.1-9.6 ms with).
    pub async fn stats(&self, reset_interval: bool) -> crate::metrics::ShardStats {
        let keys = self.metrics.borrow().histogram_keys();
        let mut cumulative = crate::metrics::StageHistograms::new();
        let mut interval = crate::metrics::StageHistograms::new();
        for key in keys {
            let copies = self.metrics.borrow_mut().copy_histogram(key, reset_interval);
            if let Some((all, recent)) = copies {
                cumulative.insert(key, all);
                interval.insert(key, recent);
            }
            futures_lite::future::yield_now().await;
        }
        let mut metrics = self.metrics.borrow().copy_without_latency();
        metrics.request_latency_us = cumulative;
        crate::metrics::ShardStats {
            shard: self.id,
            metrics,
            interval_latency_us: interval,
            partitions: self
                .logs()
                .iter()
                .map(|log| crate::metrics::PartitionStats {
                    topic: log.topic.clone(),
                    partition: log.partition,
                    log_start_offset: log.log_start_offset(),
                    high_watermark: log.high_watermark(),
                })
                .collect(),
            committed: self.groups.committed_offsets(),
        }
    }

    pub fn logs(&self) -> Vec<Rc<PartitionLog>> {
        self.logs.borrow().values().cloned().collect()
    }

    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.config.data_dir.join(format!("{topic}-{partition}"))
    }

    /// Runs `call` on `shard`: directly when it is this one, else over the mesh.
    pub async fn call(self: &Rc<Self>, shard: usize, call: ShardCall) -> ShardReply {
        if shard == self.id {
            // Boxed: admin calls on shard 0 call shards (itself included).
            Box::pin(self.handle_call(call)).await
        } else {
            // Calls that wait by design (long-poll, rebalances) are not timed.
            let timed = !matches!(
                call,
                ShardCall::AwaitData { .. } | ShardCall::Group(_) | ShardCall::Txn(_)
            );
            let started = std::time::Instant::now();
            let reply = self.mesh.call_remote(shard, call).await;
            let elapsed = started.elapsed();
            if timed && elapsed.as_millis() >= u128::from(crate::limits::MESH_CALL_SLOW_MS) {
                log::warn!(
                    "shard {}: call to shard {shard} took {elapsed:?} (a stalled shard or a lost wake-up)",
                    self.id
                );
            }
            reply
        }
    }

    /// Executes a call addressed to this shard.
    pub async fn handle_call(self: &Rc<Self>, call: ShardCall) -> ShardReply {
        match call {
            ShardCall::Append {
                topic,
                partition,
                batch,
                header,
                durability,
            } => {
                let Some(log) = self.log(&topic, partition) else {
                    return ShardReply::UnknownPartition;
                };
                let batch_bytes = batch.len() as u64;
                let appended = log.append(batch, &header, durability).await;
                if let Ok(outcome) = &appended {
                    if !outcome.duplicate {
                        let mut metrics = self.metrics.borrow_mut();
                        Metrics::count_topic_bytes(&mut metrics.bytes_in_by_topic, &topic, batch_bytes);
                        let produce = kafka_protocol::messages::ApiKey::Produce as i16;
                        metrics.record_append(produce, outcome, durability);
                    }
                }
                ShardReply::Appended(appended)
            }
            ShardCall::Group(call) => ShardReply::Group(self.groups.handle(self, call).await),
            ShardCall::Txn(call) => ShardReply::Txn(self.txns.handle(self, call).await),
            ShardCall::DescribeProducers { topic, partition } => match self.log(&topic, partition) {
                Some(log) => ShardReply::Producers(log.producers()),
                None => ShardReply::UnknownPartition,
            },
            ShardCall::Stats { reset_interval } => {
                ShardReply::Stats(Box::new(self.stats(reset_interval).await))
            }
            ShardCall::WriteMarker {
                topic,
                partition,
                producer_id,
                epoch,
                commit,
            } => {
                let Some(log) = self.log(&topic, partition) else {
                    return ShardReply::UnknownPartition;
                };
                let durability = self.internal_durability();
                let coordinator_epoch = crate::txn::coordinator::COORDINATOR_EPOCH;
                let written = log
                    .append_marker(producer_id, epoch, coordinator_epoch, commit, durability)
                    .await;
                if written.is_ok() && topic == crate::group::OFFSETS_TOPIC {
                    self.groups.complete_txn_offsets(partition, producer_id, commit);
                }
                ShardReply::Done(written.map(|_| ()).map_err(|e| e.to_string()))
            }
            ShardCall::Read {
                topic,
                partition,
                fetch_offset,
                max_bytes,
                cold_max_bytes,
                first_batch_may_exceed,
                isolation,
            } => {
                let Some(log) = self.log(&topic, partition) else {
                    return ShardReply::UnknownPartition;
                };
                let read = log.read_limited(
                    fetch_offset,
                    max_bytes,
                    cold_max_bytes,
                    first_batch_may_exceed,
                    isolation,
                );
                ShardReply::Read(read.await)
            }
            ShardCall::AwaitData {
                topic,
                partition,
                high_watermark_seen,
                wait_ms,
            } => {
                let Some(log) = self.log(&topic, partition) else {
                    return ShardReply::UnknownPartition;
                };
                let timeout = glommio::timer::sleep(std::time::Duration::from_millis(wait_ms));
                futures_lite::future::or(log.wait_for_high_watermark_above(high_watermark_seen), timeout)
                    .await;
                ShardReply::Done(Ok(()))
            }
            ShardCall::ListOffset {
                topic,
                partition,
                timestamp,
                isolation,
            } => {
                let Some(log) = self.log(&topic, partition) else {
                    return ShardReply::UnknownPartition;
                };
                ShardReply::Offset(list_offset(&log, timestamp, isolation).await)
            }
            ShardCall::DeleteRecords {
                topic,
                partition,
                offset,
            } => match self.log(&topic, partition) {
                Some(log) => ShardReply::LowWatermark(log.delete_records_before(offset).await),
                None => ShardReply::UnknownPartition,
            },
            ShardCall::OpenLogs {
                topic,
                partitions,
                configs,
            } => ShardReply::Done(self.open_logs(&topic, &partitions, &configs).await),
            ShardCall::RemoveLogs { topic, partitions } => {
                ShardReply::Done(self.remove_logs(&topic, &partitions).await)
            }
            ShardCall::InstallMetadata(metadata) => {
                self.install_metadata(&metadata);
                ShardReply::Done(Ok(()))
            }
            ShardCall::Admin(call) => {
                if self.id != 0 {
                    return ShardReply::Unavailable;
                }
                let _permit = self.admin_permit.acquire_permit(1).await;
                ShardReply::Admin(admin::execute(self, call).await)
            }
            ShardCall::AllocateProducerIds => {
                if self.id != 0 {
                    return ShardReply::Unavailable;
                }
                let _permit = self.admin_permit.acquire_permit(1).await;
                ShardReply::ProducerIds(admin::allocate_producer_ids(self).await)
            }
        }
    }

    /// Swaps in a newer snapshot and applies topic configs changed at
    /// runtime to this shard's logs.
    fn install_metadata(&self, metadata: &Arc<ClusterMetadata>) {
        {
            let mut current = self.metadata.borrow_mut();
            if metadata.version < current.version {
                return;
            }
            *current = Rc::new(ClusterMetadata::clone(metadata));
        }
        for log in self.logs() {
            if let Some(topic) = metadata.topic(&log.topic) {
                let config = TopicConfig::resolve(&self.config, &topic.configs);
                if config != log.config() {
                    log.set_config(config);
                }
            }
        }
    }

    /// Opens the logs of `partitions` of `topic` on this shard.
    pub async fn open_logs(
        &self,
        topic: &str,
        partitions: &[i32],
        overrides: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), String> {
        let config = TopicConfig::resolve(&self.config, overrides);
        for &partition in partitions {
            if self.log(topic, partition).is_some() {
                continue;
            }
            let dir = self.partition_dir(topic, partition);
            let log = open_log(&dir, topic, partition, config, self.config.append_write_bytes_max)
                .await
                .map_err(|e| format!("open {topic}-{partition}: {e}"))?;
            self.attach_log(&log);
            self.logs
                .borrow_mut()
                .insert((topic.to_string(), partition), Rc::new(log));
        }
        Ok(())
    }

    async fn remove_logs(&self, topic: &str, partitions: &[i32]) -> Result<(), String> {
        for &partition in partitions {
            let removed = self.logs.borrow_mut().remove(&(topic.to_string(), partition));
            if let Some(log) = removed {
                log.detach_tail_cache();
            }
            let dir = self.partition_dir(topic, partition);
            crate::log::blocking(move || match std::fs::remove_dir_all(&dir) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(format!("remove {}: {e}", dir.display())),
            })
            .await?;
        }
        Ok(())
    }

    /// Connects a freshly opened log to this shard: its tail cache, its
    /// cold-read mode, and zeroing ahead on the bulk queue.
    fn attach_log(&self, log: &PartitionLog) {
        log.attach_tail_cache(self.tail_cache.clone());
        log.set_cold_reads_as_regions(self.config.cold_reads_from_page_cache);
        log.set_preallocation(self.config.segment_preallocate_bytes, self.task_queues.bulk);
    }

    /// Opens every log this shard owns according to its metadata.
    pub async fn open_owned_logs(&self) -> Result<(), String> {
        let metadata = self.metadata();
        for (name, topic) in &metadata.topics {
            let owned: Vec<i32> = (0..topic.partition_count())
                .filter(|&p| topic.shard_of(p) == Some(self.id))
                .collect();
            self.open_logs(name, &owned, &topic.configs).await?;
        }
        Ok(())
    }

    /// Reopens from disk every log of this shard that an I/O error took
    /// offline (`PartitionLog::reopen`); a log that still fails stays
    /// offline until the next try.
    pub async fn repair_logs(&self) {
        for old in self.logs().into_iter().filter(|log| log.needs_repair()) {
            let reopened = match old.reopen(self.config.append_write_bytes_max).await {
                Ok(reopened) => reopened,
                Err(e) => {
                    crate::warn_limited!(
                        "log repair failed",
                        "{}-{}: still offline: {e}",
                        old.topic,
                        old.partition
                    );
                    continue;
                }
            };
            let key = (old.topic.clone(), old.partition);
            let mut logs = self.logs.borrow_mut();
            // Not if the topic was deleted (or the log replaced) meanwhile.
            if logs.get(&key).is_some_and(|current| Rc::ptr_eq(current, &old)) {
                old.retire();
                old.detach_tail_cache();
                self.attach_log(&reopened);
                log::warn!(
                    "{}-{}: reopened after an I/O error; online again at offset {}",
                    old.topic,
                    old.partition,
                    reopened.high_watermark()
                );
                logs.insert(key, Rc::new(reopened));
            }
        }
    }

    /// Clean shutdown of every log on this shard.
    pub async fn close_logs(&self) {
        for log in self.logs() {
            if let Err(e) = log.close().await {
                log::error!("closing {}-{}: {e}", log.topic, log.partition);
            }
        }
    }
}

/// ListOffsets on the owning shard. Offsets at or past the isolation's
/// bound (the high watermark, or the last stable offset for read_committed)
/// are not answered, as Kafka does: LATEST is the bound itself, and a
/// timestamp or max-timestamp lookup that lands past it answers (-1, -1).
async fn list_offset(
    log: &PartitionLog,
    timestamp: i64,
    isolation: Isolation,
) -> Result<(i64, i64), LogError> {
    const LATEST: i64 = -1;
    const EARLIEST: i64 = -2;
    const MAX_TIMESTAMP: i64 = -3;
    // v8+: the start of the log on local disk, which is the whole log here.
    const EARLIEST_LOCAL: i64 = -4;
    // v9+: the last offset in tiered storage; none without tiering, and
    // Kafka then answers -1.
    const LATEST_TIERED: i64 = -5;
    let fetchable_end = || match isolation {
        Isolation::ReadUncommitted => log.high_watermark(),
        Isolation::ReadCommitted => log.last_stable_offset(),
    };
    let below_end = |found: Option<(i64, i64)>| {
        found
            .filter(|&(offset, _)| offset < fetchable_end())
            .unwrap_or((-1, -1))
    };
    match timestamp {
        LATEST => Ok((fetchable_end(), -1)),
        EARLIEST | EARLIEST_LOCAL => Ok((log.log_start_offset(), -1)),
        LATEST_TIERED => Ok((-1, -1)),
        MAX_TIMESTAMP => Ok(below_end(log.offset_of_max_timestamp())),
        // The bound is read after the lookup's I/O: what the log holds then.
        t if t >= 0 => Ok(below_end(log.offset_for_timestamp(t).await?)),
        _ => Ok((-1, -1)),
    }
}
