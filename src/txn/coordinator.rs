//! The transaction coordinator of one shard: every transactional id whose
//! `__transaction_state` partition this shard owns.
//!
//! Operations on one transactional id run one at a time (a permit per id):
//! each reads the state, decides, stores the new state durably, writes
//! markers if the transaction ends, stores the completion, and answers.
//! No borrow of the state map is held across an await; the state is read
//! again after every wait.
//!
//! Invariants:
//! - the state in memory was durable in the log first (except a Prepare
//!   state being completed, which is stored before its markers);
//! - `partitions` is empty unless the state is Ongoing or Prepare*;
//! - an id's producer epoch only grows (a new producer id restarts it).

use std::{
    cell::RefCell,
    collections::{BTreeSet, HashMap},
    rc::Rc,
    time::Duration,
};

use glommio::sync::Semaphore;
use kafka_protocol::messages::ApiKey;

use super::{
    records::{encode_batch, TxnRecord, TXN_PARTITIONS_MAX},
    state::{TxnMetadata, TxnState},
    DescribedTxn, ListedTxn, TxnCall, TxnReply, TXN_STATE_TOPIC,
};
use crate::{
    log::now_ms,
    protocol::error_code as error,
    shard::{
        messages::{ShardCall, ShardReply},
        producer_ids::next_producer_id,
        Shard,
    },
};

/// Epoch used for markers: a single node has one coordinator generation.
pub const COORDINATOR_EPOCH: i32 = 0;

/// Attempts to write one marker before the transaction is left in its
/// Prepare state for the timeout task to finish.
const MARKER_ATTEMPTS_MAX: u32 = 5;
const MARKER_RETRY_MS: u64 = 100;

struct Entry {
    /// Partition of `__transaction_state` holding this id.
    partition: i32,
    meta: TxnMetadata,
}

#[derive(Default)]
pub struct TxnCoordinator {
    txns: RefCell<HashMap<String, Entry>>,
    permits: RefCell<HashMap<String, Rc<Semaphore>>>,
}

/// The `__transaction_state` partition of `transactional_id`.
pub fn partition_for(shard: &Shard, transactional_id: &str) -> i32 {
    let partitions = shard
        .metadata()
        .topic(TXN_STATE_TOPIC)
        .map(|t| t.partition_count())
        .unwrap_or(shard.config.transaction_state_topic_partitions);
    crate::group::partition_for(transactional_id, partitions)
}

/// Why an operation on an existing transaction is refused, if it is.
fn check_producer(meta: &TxnMetadata, producer_id: i64, epoch: i16) -> Result<(), i16> {
    if producer_id != meta.producer_id {
        return Err(error::INVALID_PRODUCER_ID_MAPPING);
    }
    if epoch != meta.producer_epoch {
        return Err(error::PRODUCER_FENCED);
    }
    Ok(())
}

impl TxnCoordinator {
    fn permit(&self, transactional_id: &str) -> Rc<Semaphore> {
        self.permits
            .borrow_mut()
            .entry(transactional_id.to_string())
            .or_insert_with(|| Rc::new(Semaphore::new(1)))
            .clone()
    }

    fn get(&self, transactional_id: &str) -> Option<(i32, TxnMetadata)> {
        self.txns
            .borrow()
            .get(transactional_id)
            .map(|e| (e.partition, e.meta.clone()))
    }

    pub async fn handle(&self, shard: &Rc<Shard>, call: TxnCall) -> TxnReply {
        let api = Some(call.api_key());
        match call {
            TxnCall::InitProducerId {
                transactional_id,
                timeout_ms,
                producer_id,
                epoch,
            } => {
                let permit = self.permit(&transactional_id);
                let _turn = permit.acquire_permit(1).await;
                match self
                    .init_producer_id(shard, api, &transactional_id, timeout_ms, producer_id, epoch)
                    .await
                {
                    Ok((producer_id, epoch)) => TxnReply::ProducerId {
                        error_code: error::NONE,
                        producer_id,
                        epoch,
                    },
                    Err(code) => TxnReply::ProducerId {
                        error_code: code,
                        producer_id: -1,
                        epoch: -1,
                    },
                }
            }
            TxnCall::AddPartitions {
                transactional_id,
                producer_id,
                epoch,
                partitions,
                verify_only,
                ..
            } => {
                let permit = self.permit(&transactional_id);
                let _turn = permit.acquire_permit(1).await;
                let results = self
                    .add_partitions(
                        shard,
                        api,
                        &transactional_id,
                        (producer_id, epoch),
                        &partitions,
                        verify_only,
                    )
                    .await;
                TxnReply::Partitions(results)
            }
            TxnCall::EndTxn {
                transactional_id,
                producer_id,
                epoch,
                commit,
            } => {
                let permit = self.permit(&transactional_id);
                let _turn = permit.acquire_permit(1).await;
                let code = match self
                    .end_txn(shard, api, &transactional_id, producer_id, epoch, commit)
                    .await
                {
                    Ok(()) => error::NONE,
                    Err(code) => code,
                };
                TxnReply::Ended(code)
            }
            TxnCall::Describe { transactional_ids } => TxnReply::Described(self.describe(&transactional_ids)),
            TxnCall::List {
                states,
                producer_ids,
                duration_ms_min,
            } => TxnReply::Listed(self.list(&states, &producer_ids, duration_ms_min)),
        }
    }

    async fn init_producer_id(
        &self,
        shard: &Rc<Shard>,
        api: Option<ApiKey>,
        transactional_id: &str,
        timeout_ms: i32,
        producer_id: i64,
        epoch: i16,
    ) -> Result<(i64, i16), i16> {
        let timeout_max = i32::try_from(shard.config.transaction_max_timeout_ms).unwrap_or(i32::MAX);
        if timeout_ms <= 0 || timeout_ms > timeout_max {
            return Err(error::INVALID_TRANSACTION_TIMEOUT);
        }
        let partition = partition_for(shard, transactional_id);
        let now = now_ms();
        let Some((_, mut meta)) = self.get(transactional_id) else {
            let producer_id = next_producer_id(shard).await.map_err(|message| {
                crate::warn_limited!(
                    "transaction state",
                    "transactional id {transactional_id}: {message}"
                );
                error::COORDINATOR_NOT_AVAILABLE
            })?;
            let meta = TxnMetadata {
                producer_id,
                producer_epoch: 0,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                last_update_ms: now,
                start_ms: -1,
            };
            self.store(shard, api, transactional_id, partition, meta).await?;
            return Ok((producer_id, 0));
        };
        // KIP-360: a producer that names its current id and epoch must be
        // the current one (a fenced zombie cannot bump the epoch).
        if producer_id >= 0 && (producer_id != meta.producer_id || epoch != meta.producer_epoch) {
            return Err(error::PRODUCER_FENCED);
        }
        if meta.state.is_preparing() {
            meta = self.complete(shard, api, transactional_id).await?;
        }
        if meta.state == TxnState::Ongoing {
            // Fence the previous producer and abort its transaction.
            meta = self.abort_fencing(shard, api, transactional_id).await?;
        }
        let (producer_id, producer_epoch) = if meta.producer_epoch >= i16::MAX - 1 {
            let fresh = next_producer_id(shard)
                .await
                .map_err(|_| error::COORDINATOR_NOT_AVAILABLE)?;
            (fresh, 0)
        } else {
            (meta.producer_id, meta.producer_epoch + 1)
        };
        let next = TxnMetadata {
            producer_id,
            producer_epoch,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            last_update_ms: now,
            start_ms: -1,
        };
        self.store(shard, api, transactional_id, partition, next).await?;
        Ok((producer_id, producer_epoch))
    }

    /// `producer`: the caller's (producer id, epoch).
    async fn add_partitions(
        &self,
        shard: &Rc<Shard>,
        api: Option<ApiKey>,
        transactional_id: &str,
        (producer_id, epoch): (i64, i16),
        partitions: &[(String, i32)],
        verify_only: bool,
    ) -> Vec<((String, i32), i16)> {
        let all = |code: i16| partitions.iter().map(|p| (p.clone(), code)).collect::<Vec<_>>();
        let Some((partition, meta)) = self.get(transactional_id) else {
            return all(error::INVALID_PRODUCER_ID_MAPPING);
        };
        if let Err(code) = check_producer(&meta, producer_id, epoch) {
            return all(code);
        }
        if verify_only {
            return partitions
                .iter()
                .map(|p| {
                    let in_txn = meta.state == TxnState::Ongoing && meta.partitions.contains(p);
                    (
                        p.clone(),
                        if in_txn {
                            error::NONE
                        } else {
                            error::INVALID_TXN_STATE
                        },
                    )
                })
                .collect();
        }
        if meta.state.is_preparing() {
            return all(error::CONCURRENT_TRANSACTIONS);
        }
        // Unknown partitions fail the request; the others are not attempted.
        let metadata = shard.metadata();
        let unknown: Vec<&(String, i32)> = partitions
            .iter()
            .filter(|(topic, p)| metadata.topic(topic).and_then(|t| t.shard_of(*p)).is_none())
            .collect();
        if !unknown.is_empty() {
            return partitions
                .iter()
                .map(|p| {
                    let code = if unknown.contains(&p) {
                        error::UNKNOWN_TOPIC_OR_PARTITION
                    } else {
                        error::OPERATION_NOT_ATTEMPTED
                    };
                    (p.clone(), code)
                })
                .collect();
        }
        if meta.state == TxnState::Ongoing && partitions.iter().all(|p| meta.partitions.contains(p)) {
            return all(error::NONE);
        }
        let mut next = meta.clone();
        let now = now_ms();
        if next.state != TxnState::Ongoing {
            next.state = TxnState::Ongoing;
            next.start_ms = now;
            next.partitions.clear();
        }
        next.partitions.extend(partitions.iter().cloned());
        if next.partitions.len() > TXN_PARTITIONS_MAX {
            return all(error::INVALID_REQUEST);
        }
        next.last_update_ms = now;
        match self.store(shard, api, transactional_id, partition, next).await {
            Ok(()) => all(error::NONE),
            Err(code) => all(code),
        }
    }

    async fn end_txn(
        &self,
        shard: &Rc<Shard>,
        api: Option<ApiKey>,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), i16> {
        let Some((partition, meta)) = self.get(transactional_id) else {
            return Err(error::INVALID_PRODUCER_ID_MAPPING);
        };
        check_producer(&meta, producer_id, epoch)?;
        match (meta.state, commit) {
            (TxnState::Ongoing, _) => {
                let mut next = meta;
                next.state = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                next.last_update_ms = now_ms();
                self.store(shard, api, transactional_id, partition, next).await?;
                self.complete(shard, api, transactional_id).await.map(|_| ())
            }
            // A retry of an EndTxn that completed (or is completing).
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(()),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                self.complete(shard, api, transactional_id).await.map(|_| ())
            }
            _ => Err(error::INVALID_TXN_STATE),
        }
    }

    /// Bumps the epoch (fencing the current producer) and aborts the open
    /// transaction with markers at the new epoch. Returns the new state.
    async fn abort_fencing(
        &self,
        shard: &Rc<Shard>,
        api: Option<ApiKey>,
        transactional_id: &str,
    ) -> Result<TxnMetadata, i16> {
        let Some((partition, meta)) = self.get(transactional_id) else {
            return Err(error::INVALID_PRODUCER_ID_MAPPING);
        };
        let mut next = meta;
        next.producer_epoch = next.producer_epoch.saturating_add(1).min(i16::MAX - 1);
        next.state = TxnState::PrepareAbort;
        next.last_update_ms = now_ms();
        self.store(shard, api, transactional_id, partition, next).await?;
        self.complete(shard, api, transactional_id).await
    }

    /// Writes the markers of a transaction in a Prepare state, then stores
    /// its completion. Returns the completed state.
    async fn complete(
        &self,
        shard: &Rc<Shard>,
        api: Option<ApiKey>,
        transactional_id: &str,
    ) -> Result<TxnMetadata, i16> {
        let Some((partition, meta)) = self.get(transactional_id) else {
            return Err(error::INVALID_PRODUCER_ID_MAPPING);
        };
        let commit = match meta.state {
            TxnState::PrepareCommit => true,
            TxnState::PrepareAbort => false,
            _ => return Ok(meta),
        };
        write_markers(shard, &meta, commit).await.map_err(|message| {
            crate::warn_limited!(
                "transaction markers",
                "transactional id {transactional_id}: markers not written yet: {message}"
            );
            error::CONCURRENT_TRANSACTIONS
        })?;
        let mut next = meta;
        next.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        next.partitions.clear();
        // Kept, as Kafka keeps it: DescribeTransactions of a completed
        // transaction shows when it started.
        next.last_update_ms = now_ms();
        self.store(shard, api, transactional_id, partition, next.clone())
            .await?;
        Ok(next)
    }

    /// Appends the new state to the log (durably), then keeps it. `api`:
    /// the request it serves (None for the coordinator's own timers).
    async fn store(
        &self,
        shard: &Rc<Shard>,
        api: Option<ApiKey>,
        transactional_id: &str,
        partition: i32,
        meta: TxnMetadata,
    ) -> Result<(), i16> {
        let record = TxnRecord {
            transactional_id: transactional_id.to_string(),
            value: Some(meta.clone()),
        };
        persist(shard, api, partition, &record).await?;
        self.txns
            .borrow_mut()
            .insert(transactional_id.to_string(), Entry { partition, meta });
        Ok(())
    }

    fn describe(&self, transactional_ids: &[String]) -> Vec<DescribedTxn> {
        let txns = self.txns.borrow();
        transactional_ids
            .iter()
            .map(|id| match txns.get(id) {
                Some(entry) => DescribedTxn {
                    transactional_id: id.clone(),
                    error_code: error::NONE,
                    state: entry.meta.state.name().to_string(),
                    timeout_ms: entry.meta.timeout_ms,
                    start_ms: entry.meta.start_ms,
                    producer_id: entry.meta.producer_id,
                    epoch: entry.meta.producer_epoch,
                    partitions: entry.meta.partitions.iter().cloned().collect(),
                },
                None => DescribedTxn {
                    transactional_id: id.clone(),
                    error_code: error::TRANSACTIONAL_ID_NOT_FOUND,
                    state: String::new(),
                    timeout_ms: 0,
                    start_ms: -1,
                    producer_id: -1,
                    epoch: -1,
                    partitions: Vec::new(),
                },
            })
            .collect()
    }

    fn list(&self, states: &[String], producer_ids: &[i64], duration_ms_min: i64) -> Vec<ListedTxn> {
        let now = now_ms();
        let mut listed: Vec<ListedTxn> = self
            .txns
            .borrow()
            .iter()
            .filter(|(_, e)| states.is_empty() || states.iter().any(|s| s == e.meta.state.name()))
            .filter(|(_, e)| producer_ids.is_empty() || producer_ids.contains(&e.meta.producer_id))
            .filter(|(_, e)| {
                duration_ms_min < 0
                    || (e.meta.state == TxnState::Ongoing && now - e.meta.start_ms >= duration_ms_min)
            })
            .map(|(id, e)| ListedTxn {
                transactional_id: id.clone(),
                producer_id: e.meta.producer_id,
                state: e.meta.state.name().to_string(),
            })
            .collect();
        listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        listed
    }

    /// Rebuilds the transactional ids of partition `partition` of
    /// `__transaction_state` (owned here). Run before serving.
    pub async fn load(&self, shard: &Rc<Shard>, partition: i32) -> Result<usize, String> {
        let Some(log) = shard.log(TXN_STATE_TOPIC, partition) else {
            return Ok(0);
        };
        let mut records = Vec::new();
        log.replay(|mut batch, header| {
            if header.is_control() {
                return;
            }
            match kafka_protocol::records::RecordBatchDecoder::decode(&mut batch) {
                Ok(decoded) => {
                    for record in decoded.records {
                        match TxnRecord::decode(record.key.as_ref(), record.value.as_ref()) {
                            Ok(record) => records.push(record),
                            Err(e) => log::warn!(
                                "{TXN_STATE_TOPIC}-{partition} offset {}: record skipped: {e}",
                                record.offset
                            ),
                        }
                    }
                }
                Err(e) => log::warn!(
                    "{TXN_STATE_TOPIC}-{partition}: batch at {} skipped: {e}",
                    header.base_offset
                ),
            }
        })
        .await
        .map_err(|e| format!("replaying {TXN_STATE_TOPIC}-{partition}: {e}"))?;
        let applied = records.len();
        let mut txns = self.txns.borrow_mut();
        for record in records {
            match record.value {
                Some(meta) => {
                    txns.insert(record.transactional_id, Entry { partition, meta });
                }
                None => {
                    txns.remove(&record.transactional_id);
                }
            }
        }
        Ok(applied)
    }

    /// One pass of the timeout task: completes transactions left in a
    /// Prepare state, aborts (fencing the producer) those open longer than
    /// their timeout, and forgets ids idle for `transactional_id_expiration_ms`.
    pub async fn expire(&self, shard: &Rc<Shard>) {
        let now = now_ms();
        let expiration_ms = i64::try_from(shard.config.transactional_id_expiration_ms).unwrap_or(i64::MAX);
        let due: Vec<(String, TxnState)> = self
            .txns
            .borrow()
            .iter()
            .filter(|(_, e)| match e.meta.state {
                TxnState::PrepareCommit | TxnState::PrepareAbort => true,
                TxnState::Ongoing => now - e.meta.start_ms > i64::from(e.meta.timeout_ms),
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                    now - e.meta.last_update_ms > expiration_ms
                }
                TxnState::Dead | TxnState::PrepareEpochFence => false,
            })
            .map(|(id, e)| (id.clone(), e.meta.state))
            .collect();
        for (id, seen) in due {
            let permit = self.permit(&id);
            let _turn = permit.acquire_permit(1).await;
            // The state may have moved while this task waited for the id.
            let Some((partition, meta)) = self.get(&id) else {
                continue;
            };
            if meta.state != seen {
                continue;
            }
            let outcome = match meta.state {
                TxnState::PrepareCommit | TxnState::PrepareAbort => {
                    self.complete(shard, None, &id).await.map(|_| ())
                }
                TxnState::Ongoing => {
                    crate::info_limited!(
                        "transaction timed out",
                        "transactional id {id}: open for more than {} ms; aborting it",
                        meta.timeout_ms
                    );
                    self.abort_fencing(shard, None, &id).await.map(|_| ())
                }
                _ => self.remove(shard, &id, partition).await,
            };
            if let Err(code) = outcome {
                log::warn!("transactional id {id}: timeout task: error {code}; retried at the next pass");
            }
        }
    }

    /// Forgets an expired transactional id (tombstone first).
    async fn remove(&self, shard: &Rc<Shard>, transactional_id: &str, partition: i32) -> Result<(), i16> {
        let record = TxnRecord {
            transactional_id: transactional_id.to_string(),
            value: None,
        };
        persist(shard, None, partition, &record).await?;
        self.txns.borrow_mut().remove(transactional_id);
        self.permits.borrow_mut().remove(transactional_id);
        Ok(())
    }
}

/// Appends `record` to partition `partition` of `__transaction_state` on
/// this shard, durably (as acks=all is, per `fsync_policy`), timed under
/// `api` (the request it serves) if any.
async fn persist(
    shard: &Rc<Shard>,
    api: Option<ApiKey>,
    partition: i32,
    record: &TxnRecord,
) -> Result<(), i16> {
    let batch = encode_batch(std::slice::from_ref(record), now_ms());
    shard
        .append_internal(TXN_STATE_TOPIC, partition, batch, api)
        .await
        .map_err(|e| match e {
            None => error::NOT_COORDINATOR,
            Some(e) => {
                log::error!("{TXN_STATE_TOPIC}-{partition}: append failed: {e}");
                error::COORDINATOR_NOT_AVAILABLE
            }
        })
}

/// Writes the COMMIT or ABORT marker into every partition of the
/// transaction, concurrently, each retried a few times. A partition whose
/// topic was deleted needs no marker.
async fn write_markers(shard: &Rc<Shard>, meta: &TxnMetadata, commit: bool) -> Result<(), String> {
    let metadata = shard.metadata();
    let mut tasks = Vec::with_capacity(meta.partitions.len());
    for (topic, partition) in &meta.partitions {
        let Some(owner) = metadata.topic(topic).and_then(|t| t.shard_of(*partition)) else {
            continue;
        };
        let shard = shard.clone();
        let (topic, partition) = (topic.clone(), *partition);
        let (producer_id, epoch) = (meta.producer_id, meta.producer_epoch);
        tasks.push(glommio::spawn_local(async move {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let call = ShardCall::WriteMarker {
                    topic: topic.clone(),
                    partition,
                    producer_id,
                    epoch,
                    commit,
                };
                match shard.call(owner, call).await {
                    ShardReply::Done(Ok(())) | ShardReply::UnknownPartition => return Ok(()),
                    ShardReply::Done(Err(message)) if attempt >= MARKER_ATTEMPTS_MAX => {
                        return Err(format!("{topic}-{partition}: {message}"))
                    }
                    _ if attempt >= MARKER_ATTEMPTS_MAX => {
                        return Err(format!("{topic}-{partition}: owning shard unavailable"))
                    }
                    _ => glommio::timer::sleep(Duration::from_millis(MARKER_RETRY_MS)).await,
                }
            }
        }));
    }
    let mut failures = Vec::new();
    for task in tasks {
        if let Err(message) = task.await {
            failures.push(message);
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// The shard's timeout task (every
/// `transaction_abort_timed_out_transaction_cleanup_interval_ms`).
pub async fn run_expiry(shard: Rc<Shard>) {
    let interval = Duration::from_millis(
        shard
            .config
            .transaction_abort_timed_out_transaction_cleanup_interval_ms,
    );
    while !shard.stopping.get() {
        glommio::timer::sleep(interval).await;
        shard.txns.expire(&shard).await;
    }
}
