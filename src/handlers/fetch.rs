//! Fetch (key 1), versions 4-12, read_uncommitted.
//!
//! Partitions are read in request order, each bounded by
//! `partition_max_bytes` and by what is left of `max_bytes`; the first batch
//! of the response is returned whole even when larger (KIP-74), later ones
//! only if they fit. Only whole batches are ever sent, and record bytes are
//! never copied: the response is encoded as parts around the batches
//! ([`crate::protocol::fetch_response`]).
//!
//! Long-poll: when less than `min_bytes` is available, the fetch parks until
//! an append moves the high watermark of any of its partitions (an
//! `AwaitData` call to each owning shard, local or over the mesh), or
//! `max_wait_ms` passes, then reads again. A parked fetch costs no CPU.

use std::{
    rc::Rc,
    time::{Duration, Instant},
};

use kafka_protocol::messages::FetchRequest;

use super::produce::log_error;
use crate::{
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
const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;

/// One partition to read, in response order.
struct Wanted {
    topic_index: usize,
    partition: i32,
    fetch_offset: i64,
    partition_max_bytes: usize,
}

/// A partition that can wake a parked fetch: (owner, topic, partition,
/// high watermark seen).
type Wakeable = (usize, String, i32, i64);

pub async fn handle(shard: &Rc<Shard>, request: FetchRequest, version: i16) -> FetchResponseOut {
    if version >= 7 && request.session_id != 0 {
        return FetchResponseOut {
            error_code: FETCH_SESSION_ID_NOT_FOUND,
            ..Default::default()
        };
    }
    let topics: Vec<String> = request.topics.iter().map(|t| t.topic.0.to_string()).collect();
    let wanted: Vec<Wanted> = request
        .topics
        .iter()
        .enumerate()
        .flat_map(|(topic_index, topic)| {
            topic.partitions.iter().map(move |p| Wanted {
                topic_index,
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                partition_max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
            })
        })
        .collect();
    let wait = Duration::from_millis(
        u64::try_from(request.max_wait_ms)
            .unwrap_or(0)
            .min(FETCH_WAIT_MS_MAX),
    );
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0).max(1);
    let max_bytes = usize::try_from(request.max_bytes).unwrap_or(0);
    loop {
        let (response, bytes, wakeable) = read_once(shard, &topics, &wanted, max_bytes).await;
        let now = Instant::now();
        // Errors are answered at once, as Kafka does.
        if bytes >= min_bytes || wakeable.is_none() || now >= deadline {
            return response;
        }
        park(shard, wakeable.unwrap_or_default(), deadline - now).await;
    }
}

/// Reads every wanted partition once. Returns the response, its record
/// bytes, and the partitions to wait on (None when a partition failed).
async fn read_once(
    shard: &Rc<Shard>,
    topics: &[String],
    wanted: &[Wanted],
    max_bytes: usize,
) -> (FetchResponseOut, usize, Option<Vec<Wakeable>>) {
    let metadata = shard.metadata();
    let mut response = FetchResponseOut {
        topics: topics
            .iter()
            .map(|name| TopicOut {
                name: name.clone(),
                partitions: Vec::new(),
            })
            .collect(),
        ..Default::default()
    };
    let mut total_bytes = 0usize;
    let mut wakeable = Some(Vec::with_capacity(wanted.len()));
    for item in wanted {
        let name = &topics[item.topic_index];
        let mut partition = PartitionOut {
            partition_index: item.partition,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            aborted_transactions: Some(Vec::new()),
            preferred_read_replica: -1,
            ..Default::default()
        };
        let owner = metadata.topic(name).and_then(|t| t.shard_of(item.partition));
        let reply = match owner {
            None => ShardReply::UnknownPartition,
            Some(owner) => {
                let limit = item
                    .partition_max_bytes
                    .min(max_bytes.saturating_sub(total_bytes));
                let call = ShardCall::Read {
                    topic: name.clone(),
                    partition: item.partition,
                    fetch_offset: item.fetch_offset,
                    max_bytes: limit,
                    first_batch_may_exceed: total_bytes == 0,
                };
                shard.call(owner, call).await
            }
        };
        match reply {
            ShardReply::Read(Ok(read)) => {
                partition.high_watermark = read.high_watermark;
                partition.last_stable_offset = read.high_watermark;
                partition.log_start_offset = read.log_start_offset;
                total_bytes += read.bytes;
                partition.records = read.batches;
                if let (Some(list), Some(owner)) = (wakeable.as_mut(), owner) {
                    list.push((owner, name.clone(), item.partition, read.high_watermark));
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
        response.topics[item.topic_index].partitions.push(partition);
    }
    (response, total_bytes, wakeable)
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
