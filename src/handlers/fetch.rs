//! Fetch (key 1), versions 4-12, read_uncommitted.
//!
//! Partitions are read in request order, each bounded by
//! `partition_max_bytes` and by what is left of `max_bytes`; the first batch
//! of the response is returned whole even when larger (KIP-74), later ones
//! only if they fit. Only whole batches are ever sent.
//!
//! `max_wait_ms`/`min_bytes`: when less than `min_bytes` is available the
//! fetch re-reads at `FETCH_POLL_INTERVAL_MS` until enough arrived or the
//! wait expired, so an idle consumer is answered after `max_wait_ms`, not
//! immediately (no client busy loop). Wake-ups on append replace this poll
//! in the fetch-path work. Fetch sessions (KIP-227) are not created yet:
//! responses carry session id 0, which tells clients to keep sending full
//! fetches.

use std::{
    rc::Rc,
    time::{Duration, Instant},
};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    fetch_response::{FetchableTopicResponse, PartitionData},
    FetchRequest, FetchResponse,
};

use super::produce::log_error;
use crate::{
    protocol::error_code,
    shard::{
        messages::{ShardCall, ShardReply},
        Shard,
    },
};

const FETCH_POLL_INTERVAL_MS: u64 = 10;
/// Longest wait honoured, whatever the client asks.
const FETCH_WAIT_MS_MAX: u64 = 60_000;
const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;

pub async fn handle(shard: &Rc<Shard>, request: FetchRequest, version: i16) -> FetchResponse {
    if version >= 7 && request.session_id != 0 {
        let mut response = FetchResponse::default();
        response.error_code = FETCH_SESSION_ID_NOT_FOUND;
        return response;
    }
    let wait = Duration::from_millis(
        u64::try_from(request.max_wait_ms)
            .unwrap_or(0)
            .min(FETCH_WAIT_MS_MAX),
    );
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    loop {
        let (response, bytes, had_error) = fetch_once(shard, &request).await;
        let now = Instant::now();
        if bytes >= min_bytes.max(1) || had_error || now >= deadline {
            return response;
        }
        let pause = (deadline - now).min(Duration::from_millis(FETCH_POLL_INTERVAL_MS));
        glommio::timer::sleep(pause).await;
    }
}

async fn fetch_once(shard: &Rc<Shard>, request: &FetchRequest) -> (FetchResponse, usize, bool) {
    let metadata = shard.metadata();
    let max_bytes = usize::try_from(request.max_bytes).unwrap_or(0);
    let mut total_bytes = 0usize;
    let mut had_error = false;
    let mut response = FetchResponse::default();
    for topic in &request.topics {
        let name = topic.topic.0.to_string();
        let mut topic_response = FetchableTopicResponse::default();
        topic_response.topic = topic.topic.clone();
        topic_response.topic_id = topic.topic_id;
        for requested in &topic.partitions {
            let index = requested.partition;
            let mut partition = PartitionData::default();
            partition.partition_index = index;
            partition.high_watermark = -1;
            partition.last_stable_offset = -1;
            partition.log_start_offset = -1;
            partition.aborted_transactions = Some(Vec::new());
            partition.preferred_read_replica = kafka_protocol::messages::BrokerId(-1);
            partition.records = Some(Bytes::new());
            let Some(owner) = metadata.topic(&name).and_then(|t| t.shard_of(index)) else {
                partition.error_code = error_code::UNKNOWN_TOPIC_OR_PARTITION;
                had_error = true;
                topic_response.partitions.push(partition);
                continue;
            };
            let partition_max = usize::try_from(requested.partition_max_bytes).unwrap_or(0);
            let limit = partition_max.min(max_bytes.saturating_sub(total_bytes));
            let call = ShardCall::Read {
                topic: name.clone(),
                partition: index,
                fetch_offset: requested.fetch_offset,
                max_bytes: limit,
                first_batch_may_exceed: total_bytes == 0,
            };
            match shard.call(owner, call).await {
                ShardReply::Read(Ok(read)) => {
                    partition.high_watermark = read.high_watermark;
                    partition.last_stable_offset = read.high_watermark;
                    partition.log_start_offset = read.log_start_offset;
                    total_bytes += read.bytes;
                    partition.records = Some(concat(read.batches, read.bytes));
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
                    had_error = true;
                }
                ShardReply::UnknownPartition => {
                    partition.error_code = error_code::UNKNOWN_TOPIC_OR_PARTITION;
                    had_error = true;
                }
                _ => {
                    partition.error_code = error_code::KAFKA_STORAGE_ERROR;
                    had_error = true;
                }
            }
            topic_response.partitions.push(partition);
        }
        response.responses.push(topic_response);
    }
    (response, total_bytes, had_error)
}

/// One contiguous records field (the zero-copy path comes with the tail cache).
fn concat(batches: Vec<Bytes>, bytes: usize) -> Bytes {
    if batches.len() == 1 {
        return batches.into_iter().next().unwrap_or_default();
    }
    let mut records = BytesMut::with_capacity(bytes);
    for batch in batches {
        records.extend_from_slice(&batch);
    }
    records.freeze()
}
