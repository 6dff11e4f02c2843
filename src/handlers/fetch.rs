//! Fetch (key 1), versions 4-12, read_uncommitted and read_committed.
//!
//! Partitions are read in request order, each bounded by
//! `partition_max_bytes` and by what is left of `max_bytes`; the first batch
//! of the response is returned whole even when larger (KIP-74), later ones
//! only if they fit. Only whole batches are ever sent, and record bytes are
//! never copied: the response is encoded as parts around the batches
//! ([`crate::protocol::fetch_response`]).
//!
//! Isolation (`isolation_level`, v4+): read_uncommitted (0) reads up to
//! the high watermark; read_committed (1) up to the last stable offset (the
//! first offset of the oldest open transaction) and gets, per partition, the
//! aborted transactions overlapping the batches returned, which the consumer
//! uses to skip aborted data (null for read_uncommitted, as Kafka sends).
//! Every partition carries its last stable offset, under both levels. The
//! owning shard applies the bound when it plans the read, so the bytes
//! counted against `min_bytes` are only those the level may see. Any other
//! level is INVALID_REQUEST for the whole request.
//!
//! Long-poll: when less than `min_bytes` is available, the fetch parks until
//! an append moves the high watermark of any of its partitions (an
//! `AwaitData` call to each owning shard, local or over the mesh), or
//! `max_wait_ms` passes, then reads again. A parked fetch costs no CPU. A
//! read_committed fetch parked behind an open transaction wakes the same
//! way: the transaction's marker is appended like a batch and moves the high
//! watermark, and the re-read then sees the last stable offset past it.
//!
//! Sessions (v7+, KIP-227): the shard's `FetchSessionCache` turns the
//! request into the list of partitions to read (all of a session's
//! partitions for an incremental fetch) and, after the read, says which of
//! them the response carries (changed ones only, for an incremental fetch).
//! Sessions live on the shard of the client's connection.

use std::{
    rc::Rc,
    time::{Duration, Instant},
};

use kafka_protocol::messages::{ApiKey, FetchRequest};

use super::produce::log_error;
use crate::{
    fetch::session::{self, PartitionKey, PartitionResult, RequestedPartition},
    log::read::Isolation,
    metrics::{micros, FetchSource, Stage},
    protocol::{
        error_code,
        fetch_response::{FetchResponseOut, PartitionOut, TopicOut},
    },
    shard::{
        messages::{ShardCall, ShardReply},
        Shard,
    },
};

/// Longest wait honoured, whatever the client asks.
const FETCH_WAIT_MS_MAX: u64 = 60_000;

/// A partition that can wake a parked fetch: (owner, topic, partition,
/// high watermark seen).
type Wakeable = (usize, String, i32, i64);

pub async fn handle(shard: &Rc<Shard>, request: FetchRequest, version: i16) -> FetchResponseOut {
    let Some(isolation) = Isolation::from_level(request.isolation_level) else {
        return invalid_request(&request);
    };
    let requested: Vec<(PartitionKey, RequestedPartition)> = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|p| {
                let key = PartitionKey {
                    topic: topic.topic.0.to_string(),
                    partition: p.partition,
                };
                let wanted = RequestedPartition {
                    fetch_offset: p.fetch_offset,
                    partition_max_bytes: p.partition_max_bytes,
                    log_start_offset: p.log_start_offset,
                };
                (key, wanted)
            })
        })
        .collect();
    let forgotten: Vec<PartitionKey> = request
        .forgotten_topics_data
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|&partition| PartitionKey {
                topic: topic.topic.0.to_string(),
                partition,
            })
        })
        .collect();
    // Before v7 there are no sessions: the request is sessionless.
    let (session_id, session_epoch) = if version >= 7 {
        (request.session_id, request.session_epoch)
    } else {
        (0, session::EPOCH_FINAL)
    };
    let planned = shard.fetch_sessions.borrow_mut().plan(
        session_id,
        session_epoch,
        requested,
        forgotten,
        crate::log::now_ms().max(0) as u64,
    );
    let plan = match planned {
        Ok(plan) => plan,
        Err(error_code) => {
            return FetchResponseOut {
                error_code,
                ..Default::default()
            }
        }
    };

    let wait = Duration::from_millis(
        u64::try_from(request.max_wait_ms)
            .unwrap_or(0)
            .min(FETCH_WAIT_MS_MAX),
    );
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0).max(1);
    let max_bytes = usize::try_from(request.max_bytes).unwrap_or(0);
    let cold_max_bytes = shard.catch_up_pacer.cold_bytes_max(crate::log::now_ms());
    let (mut reading, mut waiting) = (Duration::ZERO, Duration::ZERO);
    let (mut partitions, cold_bytes) = loop {
        let read_started = Instant::now();
        let (partitions, bytes, cold_bytes, wakeable) =
            read_once(shard, &plan.partitions, max_bytes, cold_max_bytes, isolation).await;
        let now = Instant::now();
        reading += now - read_started;
        // Errors are answered at once, as Kafka does.
        match wakeable {
            Some(wakeable) if bytes < min_bytes && now < deadline => {
                park(shard, wakeable, deadline - now).await;
                waiting += now.elapsed();
            }
            _ => break (partitions, cold_bytes),
        }
    };

    let delay = shard
        .catch_up_pacer
        .delay_for(cold_bytes as u64, Instant::now(), crate::log::now_ms());
    let held = if delay.is_zero() {
        delay
    } else {
        shard.catch_up_pacer.hold(delay).await
    };
    {
        let mut metrics = shard.metrics.borrow_mut();
        let fetch = ApiKey::Fetch as i16;
        metrics.record(fetch, Stage::Read, micros(reading));
        metrics.record(fetch, Stage::Wait, micros(waiting));
        metrics.record(fetch, Stage::Paced, micros(held));
        for partition in &partitions {
            metrics.count_error(fetch, partition.error_code);
        }
    }

    let results: Vec<PartitionResult> = partitions
        .iter()
        .map(|p| PartitionResult {
            high_watermark: p.high_watermark,
            last_stable_offset: p.last_stable_offset,
            log_start_offset: p.log_start_offset,
            has_records: !p.records.is_empty(),
            error_code: p.error_code,
        })
        .collect();
    let included = shard.fetch_sessions.borrow_mut().complete(&plan, &results);
    let mut response = FetchResponseOut {
        session_id: plan.session_id,
        ..Default::default()
    };
    for ((key, _), (partition, include)) in plan.partitions.iter().zip(partitions.drain(..).zip(included)) {
        if !include {
            continue;
        }
        // Consecutive partitions of one topic share a topic entry.
        match response.topics.last_mut() {
            Some(topic) if topic.name == key.topic => topic.partitions.push(partition),
            _ => response.topics.push(TopicOut {
                name: key.topic.clone(),
                partitions: vec![partition],
            }),
        }
    }
    response
}

/// Reads every planned partition once. Returns the partitions in plan
/// order, their record bytes, how many of those were read below the tail
/// cache, and the partitions to wait on (None when a partition failed).
async fn read_once(
    shard: &Rc<Shard>,
    planned: &[(PartitionKey, RequestedPartition)],
    max_bytes: usize,
    cold_max_bytes: usize,
    isolation: Isolation,
) -> (Vec<PartitionOut>, usize, usize, Option<Vec<Wakeable>>) {
    let metadata = shard.metadata();
    let mut partitions = Vec::with_capacity(planned.len());
    let mut total_bytes = 0usize;
    let mut cold_bytes = 0usize;
    let mut wakeable = Some(Vec::with_capacity(planned.len()));
    for (key, wanted) in planned {
        let mut partition = PartitionOut {
            partition_index: key.partition,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            aborted_transactions: None,
            preferred_read_replica: -1,
            ..Default::default()
        };
        let owner = metadata.topic(&key.topic).and_then(|t| t.shard_of(key.partition));
        let reply = match owner {
            None => ShardReply::UnknownPartition,
            Some(owner) => {
                let partition_max_bytes = usize::try_from(wanted.partition_max_bytes).unwrap_or(0);
                let call = ShardCall::Read {
                    topic: key.topic.clone(),
                    partition: key.partition,
                    fetch_offset: wanted.fetch_offset,
                    max_bytes: partition_max_bytes.min(max_bytes.saturating_sub(total_bytes)),
                    cold_max_bytes: cold_max_bytes.saturating_sub(cold_bytes),
                    first_batch_may_exceed: total_bytes == 0,
                    isolation,
                };
                shard.call(owner, call).await
            }
        };
        match reply {
            ShardReply::Read(Ok(read)) => {
                partition.high_watermark = read.high_watermark;
                partition.last_stable_offset = read.last_stable_offset;
                partition.log_start_offset = read.log_start_offset;
                partition.aborted_transactions = read.aborted_transactions;
                total_bytes += read.bytes;
                {
                    let mut metrics = shard.metrics.borrow_mut();
                    if read.bytes > 0 {
                        crate::metrics::Metrics::count_topic_bytes(
                            &mut metrics.bytes_out_by_topic,
                            &key.topic,
                            read.bytes as u64,
                        );
                    }
                    let source = if read.from_tail_cache {
                        FetchSource::TailCache
                    } else if read.region.is_some() {
                        FetchSource::PageCache
                    } else {
                        FetchSource::Disk
                    };
                    metrics.count_fetch_read(source, read.bytes as u64);
                    if !read.from_tail_cache {
                        cold_bytes += read.bytes;
                    }
                }
                partition.records = read.batches;
                partition.region = read.region;
                if let (Some(list), Some(owner)) = (wakeable.as_mut(), owner) {
                    list.push((owner, key.topic.clone(), key.partition, read.high_watermark));
                }
            }
            ShardReply::Read(Err(e)) => {
                partition.error_code = log_error(&e).0;
                if let crate::log::LogError::OffsetOutOfRange {
                    log_start_offset,
                    high_watermark,
                } = e
                {
                    partition.high_watermark = high_watermark;
                    partition.last_stable_offset = high_watermark;
                    partition.log_start_offset = log_start_offset;
                }
                wakeable = None;
            }
            ShardReply::UnknownPartition => {
                partition.error_code = error_code::UNKNOWN_TOPIC_OR_PARTITION;
                wakeable = None;
            }
            _ => {
                partition.error_code = error_code::KAFKA_STORAGE_ERROR;
                wakeable = None;
            }
        }
        partitions.push(partition);
    }
    (partitions, total_bytes, cold_bytes, wakeable)
}

/// The answer to a request whose isolation level Kafka does not define: the
/// error at the top level and on every partition named, no session (as
/// Kafka answers a Fetch it cannot handle, below v13).
fn invalid_request(request: &FetchRequest) -> FetchResponseOut {
    let topics = request
        .topics
        .iter()
        .map(|topic| TopicOut {
            name: topic.topic.0.to_string(),
            partitions: topic
                .partitions
                .iter()
                .map(|p| PartitionOut {
                    partition_index: p.partition,
                    error_code: error_code::INVALID_REQUEST,
                    high_watermark: -1,
                    last_stable_offset: -1,
                    log_start_offset: -1,
                    aborted_transactions: None,
                    preferred_read_replica: -1,
                    ..Default::default()
                })
                .collect(),
        })
        .collect();
    FetchResponseOut {
        error_code: error_code::INVALID_REQUEST,
        session_id: session::SESSION_ID_NONE,
        topics,
        ..Default::default()
    }
}

/// Waits until any partition's high watermark moves past what was seen, or
/// `wait` passes. The other waits are cancelled (remote ones end at their
/// own deadline; their replies are dropped).
async fn park(shard: &Rc<Shard>, partitions: Vec<Wakeable>, wait: Duration) {
    if partitions.is_empty() {
        glommio::timer::sleep(wait).await;
        return;
    }
    let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
    let (sender, receiver) = glommio::channels::local_channel::new_bounded(partitions.len());
    let sender = Rc::new(sender);
    let waits: Vec<glommio::Task<()>> = partitions
        .into_iter()
        .map(|(owner, topic, partition, high_watermark_seen)| {
            let (shard, sender) = (shard.clone(), sender.clone());
            glommio::spawn_local(async move {
                let call = ShardCall::AwaitData {
                    topic,
                    partition,
                    high_watermark_seen,
                    wait_ms,
                };
                shard.call(owner, call).await;
                let _ = sender.try_send(());
            })
        })
        .collect();
    futures_lite::future::or(
        async {
            receiver.recv().await;
        },
        glommio::timer::sleep(wait),
    )
    .await;
    drop(waits);
}
