//! A producer connection: one task writes Produce requests, up to
//! `--inflight` outstanding, while another reads the responses.
//!
//! Kafka answers requests on a connection in the order they were sent, so
//! the in-flight requests are a FIFO: each response must carry the
//! correlation id at its head, or the connection is broken. A response's
//! per-partition error codes are counted by name; a broken connection (or
//! a request unanswered for `--request-timeout-ms`) counts once and fails
//! every message it had in flight, then the connection is reopened. Nothing
//! from the network is trusted enough to panic on.
//!
//! Latency per message is measured from its scheduled time in open loop
//! (see `pacing`), from when its request was built in closed loop; with
//! acks=0 (no response) it ends when the request was written.

use std::{
    cell::{Cell, RefCell},
    collections::VecDeque,
    rc::Rc,
    sync::atomic::Ordering,
    time::Duration,
};

use bytes::BytesMut;
use glommio::sync::Semaphore;
use kafka_protocol::{
    messages::{
        produce_request::{PartitionProduceData, TopicProduceData},
        ApiKey, ProduceRequest, ProduceResponse, TopicName,
    },
    protocol::StrBytes,
};

use super::worker::{ActorTotals, ThreadContext, NOT_SET};
use crate::{
    cli::Acks,
    client::{
        connection::{self, ReadError, ReadHalf, WriteHalf},
        errors,
        frame::{self, encode_request},
    },
    pacing::{latency_us, Batcher, Next, Schedule},
    records::encode::{encode_batch, RecordValue},
    stats::Flow,
};

/// Longest a writer sleeps before looking at the stop and abort flags.
const WAIT_SLICE: Duration = Duration::from_millis(10);
/// Pause before reconnecting after a connection broke.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);
/// Largest Produce response accepted (they are small; anything near this is garbage).
const PRODUCE_RESPONSE_BYTES_MAX: usize = 16 << 20;

pub struct ProducerSpec {
    pub actor: usize,
    pub address: String,
    pub partitions: Vec<i32>,
    /// This connection's share of `--rate`; `None`: closed loop.
    pub rate_msgs_per_s: Option<f64>,
    /// This connection's share of `--messages`; `None`: no limit.
    pub messages: Option<u64>,
    /// Offset of the first message, as a fraction of the interval.
    pub phase: f64,
    /// Produce version negotiated with this broker.
    pub version: i16,
}

/// One partition's batch inside an in-flight request. Its messages are
/// `first_index + i * stride` for `i < count` (consecutive messages go
/// round-robin over the connection's partitions).
struct PendingBatch {
    slot: usize,
    partition: i32,
    first_index: u64,
    stride: u64,
    count: u64,
    value_bytes: u64,
    wire_bytes: u64,
    answered: bool,
}

struct InFlightRequest {
    correlation_id: i32,
    sent_ns: u64,
    batches: Vec<PendingBatch>,
}

/// State of one connection attempt.
struct Session {
    queue: RefCell<VecDeque<InFlightRequest>>,
    slots: Semaphore,
    writer_done: Cell<bool>,
}

enum SessionEnd {
    Finished,
    Broken,
}

struct Producer {
    spec: ProducerSpec,
    context: Rc<ThreadContext>,
    schedule: RefCell<Schedule>,
    batcher: RefCell<Batcher>,
    /// Messages acknowledged per partition slot.
    acked: RefCell<Vec<u64>>,
    next_correlation_id: Cell<i32>,
    topic: TopicName,
}

/// Runs one producer connection until the schedule is exhausted (or the
/// run aborts).
pub async fn run(spec: ProducerSpec, context: Rc<ThreadContext>) -> ActorTotals {
    let params = &context.shared.params;
    let timeout = Duration::from_millis(u64::from(params.request_timeout_ms));
    let first = match connection::connect(&spec.address, timeout, PRODUCE_RESPONSE_BYTES_MAX).await {
        Ok(halves) => {
            // Running before ready: the main thread must never see every
            // actor ready and none running.
            context.control().producers_running.fetch_add(1, Ordering::AcqRel);
            context.control().actors_ready.fetch_add(1, Ordering::AcqRel);
            halves
        }
        Err(message) => {
            context
                .control()
                .setup_failed(format!("producer {}: {message}", spec.actor));
            return ActorTotals::default();
        }
    };
    let totals = match context.wait_for_start().await {
        Some(start_ns) => {
            let mut schedule = match spec.rate_msgs_per_s {
                Some(rate) => Schedule::open_loop(start_ns, rate, spec.phase),
                None => Schedule::closed_loop(),
            };
            if let Some(messages) = spec.messages {
                schedule.limit(messages);
            }
            let producer = Rc::new(Producer {
                batcher: RefCell::new(Batcher::new(
                    spec.partitions.len(),
                    params.batch_bytes as usize,
                    params.linger_ms,
                )),
                acked: RefCell::new(vec![0; spec.partitions.len()]),
                schedule: RefCell::new(schedule),
                next_correlation_id: Cell::new(0),
                topic: TopicName(StrBytes::from_string(context.shared.topic.clone())),
                spec,
                context: context.clone(),
            });
            producer.run(first).await
        }
        None => ActorTotals::default(),
    };
    context.control().producers_running.fetch_sub(1, Ordering::AcqRel);
    totals
}

impl Producer {
    fn timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.context.shared.params.request_timeout_ms))
    }

    async fn run(self: &Rc<Self>, first: (ReadHalf, WriteHalf)) -> ActorTotals {
        let mut connection = Some(first);
        loop {
            let (reader, writer) = match connection.take() {
                Some(halves) => halves,
                None => match self.reconnect().await {
                    Some(halves) => halves,
                    None => break,
                },
            };
            match self.run_session(reader, writer).await {
                SessionEnd::Finished => break,
                SessionEnd::Broken => continue,
            }
        }
        // Open loop: messages that were due but never sent (the connection
        // could not be reopened before the end) failed too.
        let schedule = self.schedule.borrow();
        if let Some(end) = schedule.end_count().filter(|_| schedule.is_open_loop()) {
            let unsent = end.saturating_sub(self.batcher.borrow().next_index);
            if unsent > 0 {
                self.context
                    .recorder(Flow::Produce)
                    .add_error(self.context.now_ns(), "NOT_SENT", unsent);
            }
        }
        let mut totals = ActorTotals::default();
        for (slot, &count) in self.acked.borrow().iter().enumerate() {
            *totals.produced.entry(self.spec.partitions[slot]).or_default() += count;
        }
        totals
    }

    fn stopping(&self) -> bool {
        self.context.control().stop_ns.load(Ordering::Acquire) != NOT_SET
    }

    async fn reconnect(&self) -> Option<(ReadHalf, WriteHalf)> {
        loop {
            if self.context.control().aborted() || self.stopping() {
                return None;
            }
            glommio::timer::sleep(RECONNECT_PAUSE).await;
            match connection::connect(&self.spec.address, self.timeout(), PRODUCE_RESPONSE_BYTES_MAX).await {
                Ok(halves) => return Some(halves),
                Err(message) => {
                    log::warn!("producer {}: {message}", self.spec.actor);
                    self.context.recorder(Flow::Produce).add_error(
                        self.context.now_ns(),
                        "CONNECT_FAILED",
                        0,
                    );
                }
            }
        }
    }

    async fn run_session(self: &Rc<Self>, reader: ReadHalf, mut writer: WriteHalf) -> SessionEnd {
        let params = &self.context.shared.params;
        let session = Rc::new(Session {
            queue: RefCell::new(VecDeque::new()),
            slots: Semaphore::new(u64::from(params.inflight)),
            writer_done: Cell::new(false),
        });
        if let Err(message) = reader.set_timeout(self.timeout()) {
            log::warn!("producer {}: {message}", self.spec.actor);
        }
        let reader_task = glommio::spawn_local({
            let producer = self.clone();
            let session = session.clone();
            async move {
                let mut reader = reader;
                let end = producer.read_responses(&session, &mut reader).await;
                if end.is_err() {
                    session.slots.close();
                }
                end
            }
        });
        let write_end = self.write_requests(&session, &mut writer).await;
        session.writer_done.set(true);
        if write_end.is_err() || session.queue.borrow().is_empty() {
            // Wakes the reader (it sees the end of the stream).
            writer.shutdown().await;
        }
        let read_end = reader_task.await;
        // The reader's reason is the more telling one (the writer only sees
        // the in-flight slots closed), unless the run was aborted.
        let end = match (write_end, read_end) {
            (Ok(()), Ok(())) => return SessionEnd::Finished,
            (Err("ABORTED"), _) => "ABORTED",
            (_, Err(kind)) | (Err(kind), Ok(())) => kind,
        };
        writer.shutdown().await;
        let failed: u64 = session
            .queue
            .borrow_mut()
            .drain(..)
            .flat_map(|r| r.batches)
            .map(|b| b.count)
            .sum();
        self.context
            .recorder(Flow::Produce)
            .add_error(self.context.now_ns(), end, failed);
        SessionEnd::Broken
    }

    /// Sends requests until the schedule is exhausted; `Err` names why the
    /// connection cannot go on.
    async fn write_requests(&self, session: &Session, writer: &mut WriteHalf) -> Result<(), &'static str> {
        let shared = &self.context.shared;
        let params = &shared.params;
        let mut frame =
            BytesMut::with_capacity(params.batch_bytes as usize * self.spec.partitions.len() + 4096);
        let mut batch_buffer = BytesMut::new();
        let mut scratch = BytesMut::new();
        loop {
            if shared.control.aborted() {
                return Err("ABORTED");
            }
            let stop_ns = shared.control.stop_ns.load(Ordering::Acquire);
            if stop_ns != NOT_SET {
                self.schedule.borrow_mut().stop_at(stop_ns);
            }
            if session.slots.acquire(1).await.is_err() {
                return Err("DISCONNECT");
            }
            let now_ns = shared.clock.now_ns();
            let next = self
                .batcher
                .borrow_mut()
                .plan(now_ns, &self.schedule.borrow(), &shared.payloads);
            match next {
                Next::Done => {
                    session.slots.signal(1);
                    return Ok(());
                }
                Next::WaitUntil(due_ns) => {
                    session.slots.signal(1);
                    let wait = Duration::from_nanos(due_ns.saturating_sub(now_ns)).min(WAIT_SLICE);
                    if !wait.is_zero() {
                        glommio::timer::sleep(wait).await;
                    }
                }
                Next::Send => {
                    let request =
                        match self.build_request(now_ns, &mut frame, &mut batch_buffer, &mut scratch) {
                            Ok(request) => request,
                            Err(message) => {
                                log::error!("producer {}: {message}", self.spec.actor);
                                return Err("ENCODE_ERROR");
                            }
                        };
                    let oldest_due_ns = self.oldest_due_ns();
                    let acks_none = params.acks == Acks::None;
                    if acks_none {
                        if let Err(message) = writer.send(&frame).await {
                            log::warn!("producer {}: {message}", self.spec.actor);
                            // Counted as failed when the session ends.
                            session.queue.borrow_mut().push_back(request);
                            return Err("DISCONNECT");
                        }
                        self.complete_unacknowledged(shared.clock.now_ns(), request);
                        session.slots.signal(1);
                    } else {
                        session.queue.borrow_mut().push_back(request);
                        if let Err(message) = writer.send(&frame).await {
                            log::warn!("producer {}: {message}", self.spec.actor);
                            return Err("DISCONNECT");
                        }
                    }
                    if let Some(due_ns) = oldest_due_ns {
                        let written_ns = shared.clock.now_ns();
                        let lag_us = written_ns.saturating_sub(due_ns) / 1_000;
                        self.context
                            .recorder(Flow::Produce)
                            .record_send_lag(written_ns, lag_us);
                    }
                }
            }
        }
    }

    /// When the oldest message of the planned request was due (open loop).
    fn oldest_due_ns(&self) -> Option<u64> {
        let batcher = self.batcher.borrow();
        let first = batcher.slots.iter().filter_map(|slot| slot.first()).min()?;
        self.schedule.borrow().due_at_ns(*first)
    }

    /// Encodes the batches the batcher planned into one Produce request frame.
    fn build_request(
        &self,
        now_ns: u64,
        frame: &mut BytesMut,
        batch_buffer: &mut BytesMut,
        scratch: &mut BytesMut,
    ) -> Result<InFlightRequest, String> {
        let shared = &self.context.shared;
        let params = &shared.params;
        let batcher = self.batcher.borrow();
        let schedule = self.schedule.borrow();
        let stride = self.spec.partitions.len() as u64;
        let mut partition_data = Vec::new();
        let mut batches = Vec::new();
        for (slot, indexes) in batcher.slots.iter().enumerate() {
            let Some(&first_index) = indexes.first() else {
                continue;
            };
            let records = indexes.iter().map(|&index| {
                let message_bytes = shared.payloads.message_bytes(index);
                RecordValue {
                    sent_at_wall_us: shared
                        .clock
                        .wall_us_at(schedule.due_at_ns(index).unwrap_or(now_ns)),
                    body: shared.payloads.body(index, message_bytes),
                }
            });
            let info = encode_batch(batch_buffer, params.compression, records, scratch)?;
            let partition = self.spec.partitions[slot];
            let mut data = PartitionProduceData::default();
            data.index = partition;
            data.records = Some(batch_buffer.split().freeze());
            partition_data.push(data);
            batches.push(PendingBatch {
                slot,
                partition,
                first_index,
                stride,
                count: indexes.len() as u64,
                value_bytes: info.value_bytes,
                wire_bytes: info.batch_bytes as u64,
                answered: false,
            });
        }
        let mut topic = TopicProduceData::default();
        topic.name = self.topic.clone();
        topic.partition_data = partition_data;
        let mut request = ProduceRequest::default();
        request.acks = params.acks.wire();
        request.timeout_ms = i32::try_from(params.request_timeout_ms).unwrap_or(i32::MAX);
        request.topic_data = vec![topic];
        let correlation_id = self.next_correlation_id.get();
        self.next_correlation_id.set(correlation_id.wrapping_add(1));
        frame.clear();
        encode_request(
            frame,
            ApiKey::Produce,
            self.spec.version,
            correlation_id,
            &params.client_id,
            &request,
        )?;
        Ok(InFlightRequest {
            correlation_id,
            sent_ns: now_ns,
            batches,
        })
    }

    /// Reads responses until the writer is done and nothing is in flight.
    async fn read_responses(&self, session: &Session, reader: &mut ReadHalf) -> Result<(), &'static str> {
        loop {
            if session.writer_done.get() && session.queue.borrow().is_empty() {
                return Ok(());
            }
            let frame = match reader.next_frame().await {
                Ok(frame) => frame,
                Err(ReadError::TimedOut) if session.queue.borrow().is_empty() => continue,
                Err(ReadError::TimedOut) => {
                    log::warn!(
                        "producer {}: no response within {:?} with {} requests in flight ({:?} bytes unread \
                         in the socket)",
                        self.spec.actor,
                        self.timeout(),
                        session.queue.borrow().len(),
                        reader.unread_bytes()
                    );
                    return Err("TIMEOUT");
                }
                Err(ReadError::Closed) if session.writer_done.get() && session.queue.borrow().is_empty() => {
                    return Ok(())
                }
                Err(ReadError::Closed) => return Err("DISCONNECT"),
                Err(ReadError::Failed(message)) => {
                    log::warn!("producer {}: {message}", self.spec.actor);
                    return Err("DISCONNECT");
                }
            };
            let now_ns = self.context.now_ns();
            let Some(request) = session.queue.borrow_mut().pop_front() else {
                return Err("UNEXPECTED_RESPONSE");
            };
            let decoded = frame::decode_response::<ProduceResponse>(
                frame,
                ApiKey::Produce,
                self.spec.version,
                request.correlation_id,
            );
            match decoded {
                Ok(response) => self.complete(now_ns, request, &response),
                Err(message) => {
                    log::warn!("producer {}: {message}", self.spec.actor);
                    session.queue.borrow_mut().push_front(request);
                    return Err("PROTOCOL_ERROR");
                }
            }
            session.slots.signal(1);
        }
    }

    /// Records the outcome of every batch of an answered request.
    fn complete(&self, now_ns: u64, mut request: InFlightRequest, response: &ProduceResponse) {
        let mut recorder = self.context.recorder(Flow::Produce);
        recorder.add_request(now_ns);
        for answer in response
            .responses
            .iter()
            .flat_map(|topic| topic.partition_responses.iter())
        {
            let Some(batch) = request
                .batches
                .iter_mut()
                .find(|batch| batch.partition == answer.index && !batch.answered)
            else {
                recorder.add_error(now_ns, "UNEXPECTED_PARTITION_IN_RESPONSE", 0);
                continue;
            };
            batch.answered = true;
            if answer.error_code != errors::NONE {
                recorder.add_error(now_ns, &errors::name(answer.error_code), batch.count);
                continue;
            }
            self.record_success(&mut recorder, now_ns, request.sent_ns, batch);
        }
        for batch in request.batches.iter().filter(|batch| !batch.answered) {
            recorder.add_error(now_ns, "MISSING_PARTITION_IN_RESPONSE", batch.count);
        }
    }

    /// acks=0: the request was written, and that is all we will know.
    fn complete_unacknowledged(&self, now_ns: u64, request: InFlightRequest) {
        let mut recorder = self.context.recorder(Flow::Produce);
        recorder.add_request(now_ns);
        for batch in &request.batches {
            self.record_success(&mut recorder, now_ns, request.sent_ns, batch);
        }
    }

    fn record_success(
        &self,
        recorder: &mut crate::stats::recorder::Recorder,
        now_ns: u64,
        sent_ns: u64,
        batch: &PendingBatch,
    ) {
        let schedule = self.schedule.borrow();
        if schedule.is_open_loop() {
            for i in 0..batch.count {
                let scheduled_ns = schedule
                    .due_at_ns(batch.first_index + i * batch.stride)
                    .unwrap_or(sent_ns);
                recorder.record_latency(now_ns, latency_us(scheduled_ns, now_ns), 1);
            }
        } else {
            recorder.record_latency(now_ns, latency_us(sent_ns, now_ns), batch.count);
        }
        recorder.add_completed(now_ns, batch.count, batch.value_bytes, batch.wire_bytes);
        self.acked.borrow_mut()[batch.slot] += batch.count;
    }
}
