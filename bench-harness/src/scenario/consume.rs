//! A consumer connection: fetch, validate, repeat — one Fetch in flight,
//! as Kafka consumers do per broker (the next offsets are only known once
//! the previous response was walked).
//!
//! Every batch fetched is CRC32C-checked and every record parsed and
//! counted (`records::decode`); malformed data is counted by kind, never
//! trusted. Latency is the Fetch round trip in the consume scenario and, in
//! e2e, receive time minus the send time each record carries in its value
//! (scheduled time in open loop, so producer-side stalls count too).
//!
//! A consumer stops when told to, or once `targets_final` is set and every
//! partition it owns reached its target offset.

use std::{rc::Rc, sync::atomic::Ordering, time::Duration};

use bytes::BytesMut;
use kafka_protocol::{
    messages::{
        fetch_request::{FetchPartition, FetchTopic},
        ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName,
    },
    protocol::StrBytes,
};

use super::worker::{ActorTotals, ThreadContext};
use crate::{
    client::{
        connection::{self, ReadError, ReadHalf, WriteHalf},
        errors,
        frame::{self, encode_request},
    },
    pacing::latency_us,
    records::decode::walk_batches,
    stats::Flow,
};

/// Pause before reconnecting, and after a Fetch-level error.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Room for response framing beyond `--fetch-max-bytes` (a first batch
/// larger than the limit is still returned whole, KIP-74).
const FETCH_RESPONSE_SLACK_BYTES: usize = 64 << 20;

pub struct ConsumerSpec {
    pub actor: usize,
    pub address: String,
    pub partitions: Vec<i32>,
    /// Where each partition's first fetch starts.
    pub start_offsets: Vec<i64>,
    /// Fetch version negotiated with this broker.
    pub version: i16,
    /// Record latency from the send time in each record (e2e), instead of
    /// the Fetch round trip.
    pub end_to_end: bool,
}

struct Consumer {
    spec: ConsumerSpec,
    context: Rc<ThreadContext>,
    offsets: Vec<i64>,
    consumed: Vec<u64>,
    /// Partitions that cannot be read any further (offset out of range).
    dead: Vec<bool>,
    correlation_id: i32,
    topic: TopicName,
    totals: ActorTotals,
}

pub async fn run(spec: ConsumerSpec, context: Rc<ThreadContext>) -> ActorTotals {
    let connection = match connect(&spec, &context).await {
        Ok(halves) => {
            context.control().consumers_running.fetch_add(1, Ordering::AcqRel);
            context.control().actors_ready.fetch_add(1, Ordering::AcqRel);
            halves
        }
        Err(message) => {
            context
                .control()
                .setup_failed(format!("consumer {}: {message}", spec.actor));
            return ActorTotals::default();
        }
    };
    let totals = if context.wait_for_start().await.is_some() {
        let partitions = spec.partitions.len();
        let mut consumer = Consumer {
            offsets: spec.start_offsets.clone(),
            consumed: vec![0; partitions],
            dead: vec![false; partitions],
            correlation_id: 0,
            topic: TopicName(StrBytes::from_string(context.shared.topic.clone())),
            totals: ActorTotals::default(),
            spec,
            context: context.clone(),
        };
        consumer.run(connection).await;
        consumer.into_totals()
    } else {
        ActorTotals::default()
    };
    context.control().consumers_running.fetch_sub(1, Ordering::AcqRel);
    totals
}

async fn connect(spec: &ConsumerSpec, context: &ThreadContext) -> Result<(ReadHalf, WriteHalf), String> {
    let params = &context.shared.params;
    let timeout = Duration::from_millis(u64::from(params.request_timeout_ms));
    let frame_bytes_max = params.fetch_max_bytes as usize + FETCH_RESPONSE_SLACK_BYTES;
    let (reader, writer) = connection::connect(&spec.address, timeout, frame_bytes_max).await?;
    let read_timeout = timeout + Duration::from_millis(u64::from(params.fetch_wait_ms));
    reader.set_timeout(read_timeout)?;
    Ok((reader, writer))
}

impl Consumer {
    fn into_totals(mut self) -> ActorTotals {
        for (slot, &partition) in self.spec.partitions.iter().enumerate() {
            self.totals.consumed.insert(partition, self.consumed[slot]);
            self.totals.consumer_offsets.insert(partition, self.offsets[slot]);
        }
        self.totals
    }

    /// Slots still to fetch; empty when the consumer is done.
    fn wanted(&self) -> Vec<usize> {
        let control = self.context.control();
        let targets_final = control.targets_final.load(Ordering::Acquire);
        (0..self.spec.partitions.len())
            .filter(|&slot| !self.dead[slot])
            .filter(|&slot| {
                let partition = self.spec.partitions[slot] as usize;
                let target = control
                    .targets
                    .get(partition)
                    .map_or(i64::MAX, |t| t.load(Ordering::Acquire));
                !(targets_final && self.offsets[slot] >= target)
            })
            .collect()
    }

    async fn run(&mut self, first: (ReadHalf, WriteHalf)) {
        let mut connection = Some(first);
        let mut frame = BytesMut::new();
        loop {
            let control = self.context.control();
            if control.aborted() || control.stop_consumers.load(Ordering::Acquire) {
                return;
            }
            let wanted = self.wanted();
            if wanted.is_empty() {
                return;
            }
            let (reader, writer) = match connection.as_mut() {
                Some(halves) => halves,
                None => {
                    glommio::timer::sleep(RETRY_PAUSE).await;
                    match connect(&self.spec, &self.context).await {
                        Ok(halves) => connection.insert(halves),
                        Err(message) => {
                            log::warn!("consumer {}: {message}", self.spec.actor);
                            self.error("CONNECT_FAILED");
                            continue;
                        }
                    }
                }
            };
            if let Err(message) = self.encode_fetch(&wanted, &mut frame) {
                log::error!("consumer {}: {message}", self.spec.actor);
                self.error("ENCODE_ERROR");
                return;
            }
            let sent_ns = self.context.now_ns();
            if let Err(message) = writer.send(&frame).await {
                log::warn!("consumer {}: {message}", self.spec.actor);
                self.error("DISCONNECT");
                connection = None;
                continue;
            }
            let response = match reader.next_frame().await {
                Ok(response) => response,
                Err(error) => {
                    let kind = match error {
                        ReadError::TimedOut => "TIMEOUT",
                        ReadError::Closed => "DISCONNECT",
                        ReadError::Failed(message) => {
                            log::warn!("consumer {}: {message}", self.spec.actor);
                            "DISCONNECT"
                        }
                    };
                    self.error(kind);
                    connection = None;
                    continue;
                }
            };
            let frame_memory = response.clone();
            let decoded = frame::decode_response::<FetchResponse>(
                response,
                ApiKey::Fetch,
                self.spec.version,
                self.correlation_id,
            );
            match decoded {
                Ok(response) => {
                    let fetch_error = !self.absorb(sent_ns, &response);
                    // The records were slices of the frame: drop them first.
                    drop(response);
                    reader.recycle(frame_memory);
                    if fetch_error {
                        glommio::timer::sleep(RETRY_PAUSE).await;
                    }
                }
                Err(message) => {
                    log::warn!("consumer {}: {message}", self.spec.actor);
                    self.error("PROTOCOL_ERROR");
                    connection = None;
                }
            }
        }
    }

    fn error(&self, kind: &str) {
        self.context
            .recorder(Flow::Consume)
            .add_error(self.context.now_ns(), kind, 0);
    }

    fn encode_fetch(&mut self, wanted: &[usize], frame: &mut BytesMut) -> Result<(), String> {
        let params = &self.context.shared.params;
        let mut topic = FetchTopic::default();
        topic.topic = self.topic.clone();
        for &slot in wanted {
            let mut partition = FetchPartition::default();
            partition.partition = self.spec.partitions[slot];
            partition.fetch_offset = self.offsets[slot];
            partition.partition_max_bytes =
                i32::try_from(params.fetch_partition_max_bytes).unwrap_or(i32::MAX);
            topic.partitions.push(partition);
        }
        let mut request = FetchRequest::default();
        request.replica_id = BrokerId(-1);
        request.max_wait_ms = i32::try_from(params.fetch_wait_ms).unwrap_or(i32::MAX);
        request.min_bytes = i32::try_from(params.fetch_min_bytes).unwrap_or(i32::MAX);
        request.max_bytes = i32::try_from(params.fetch_max_bytes).unwrap_or(i32::MAX);
        request.session_id = 0;
        request.session_epoch = -1; // full fetches, no KIP-227 session
        request.topics = vec![topic];
        self.correlation_id = self.correlation_id.wrapping_add(1);
        frame.clear();
        encode_request(
            frame,
            ApiKey::Fetch,
            self.spec.version,
            self.correlation_id,
            &params.client_id,
            &request,
        )
    }

    /// Walks a response; `false` if it carried a Fetch-level error.
    fn absorb(&mut self, sent_ns: u64, response: &FetchResponse) -> bool {
        let now_ns = self.context.now_ns();
        let clock = self.context.shared.clock;
        let end_to_end = self.spec.end_to_end;
        let context = self.context.clone();
        let mut recorder = context.recorder(Flow::Consume);
        recorder.add_request(now_ns);
        if !end_to_end {
            recorder.record_latency(now_ns, latency_us(sent_ns, now_ns), 1);
        }
        if response.error_code != errors::NONE {
            recorder.add_error(now_ns, &errors::name(response.error_code), 0);
            return false;
        }
        for answer in response
            .responses
            .iter()
            .flat_map(|topic| topic.partitions.iter())
        {
            let Some(slot) = self
                .spec
                .partitions
                .iter()
                .position(|&p| p == answer.partition_index)
            else {
                recorder.add_error(now_ns, "UNEXPECTED_PARTITION_IN_RESPONSE", 0);
                continue;
            };
            match answer.error_code {
                errors::NONE => {}
                errors::OFFSET_OUT_OF_RANGE => {
                    recorder.add_error(now_ns, "OFFSET_OUT_OF_RANGE", 0);
                    self.dead[slot] = true;
                    continue;
                }
                code => {
                    recorder.add_error(now_ns, &errors::name(code), 0);
                    continue;
                }
            }
            let Some(records) = answer.records.as_ref() else {
                continue;
            };
            let mut short_values = 0u64;
            let walk = walk_batches(records, self.offsets[slot], |_, value| {
                if !end_to_end {
                    return;
                }
                match value.get(..8) {
                    Some(stamp) => {
                        let mut sent_at_wall_us = [0u8; 8];
                        sent_at_wall_us.copy_from_slice(stamp);
                        let sent_ns = clock.ns_of_wall_us(u64::from_be_bytes(sent_at_wall_us));
                        recorder.record_latency(now_ns, latency_us(sent_ns, now_ns), 1);
                    }
                    None => short_values += 1,
                }
            });
            for (kind, count) in [
                ("CRC_MISMATCH", walk.crc_errors),
                ("CORRUPT_BATCH", walk.corrupt_batches),
                ("UNSUPPORTED_BATCH_FORMAT", walk.unsupported_batches),
                ("SHORT_VALUE", short_values),
            ] {
                for _ in 0..count {
                    recorder.add_error(now_ns, kind, 0);
                }
            }
            self.totals.crc_errors += walk.crc_errors;
            self.totals.corrupt_batches += walk.corrupt_batches + walk.unsupported_batches;
            recorder.add_completed(now_ns, walk.records, walk.value_bytes, walk.wire_bytes);
            self.consumed[slot] += walk.records;
            if let Some(next_offset) = walk.next_offset {
                self.offsets[slot] = self.offsets[slot].max(next_offset);
            }
        }
        true
    }
}
