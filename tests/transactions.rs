//! Kafka transactions on one node: the transaction coordinator
//! (FindCoordinator key type 1, InitProducerId with a transactional id,
//! AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn), the
//! COMMIT/ABORT control markers it writes, read_committed fetches bounded by
//! the last stable offset, the broker's abort of timed-out transactions and
//! the operator APIs (DescribeTransactions, ListTransactions,
//! DescribeProducers).
//!
//! Two angles, as in the other scenario files:
//!
//! * a real client, librdkafka through `rdkafka` (its transactional
//!   producer, read_committed and read_uncommitted consumers, a
//!   consume-transform-produce loop), checking what applications see:
//!   exactly the committed records, in order, never a control record, never
//!   part of a transaction;
//! * hand-built frames (`common::wire`) for what a real client does not show
//!   or cannot do on purpose: the markers themselves, the last stable offset,
//!   the aborted-transaction list of a read_committed fetch, the operator
//!   APIs, and the error codes of bad requests.
//!
//! Every broker here checks for timed-out transactions every 200 ms instead
//! of every 10 s, so the timeout scenarios finish quickly. Waits are
//! deadlines with polling; nothing asserts how long anything took.

mod common;

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic,
};
use kafka_protocol::messages::describe_producers_request::{DescribeProducersRequest, TopicRequest};
use kafka_protocol::messages::describe_producers_response::PartitionResponse as ProducersPartitionResponse;
use kafka_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use kafka_protocol::messages::describe_transactions_response::TransactionState;
use kafka_protocol::messages::end_txn_request::EndTxnRequest;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::list_transactions_request::ListTransactionsRequest;
use kafka_protocol::messages::list_transactions_response::ListTransactionsResponse;
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{ApiKey, ProducerId, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, TimestampType, NO_PARTITION_LEADER_EPOCH};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use common::wire::{self, Connection, ERROR_NONE, ERROR_UNKNOWN_TOPIC_OR_PARTITION};
use common::{
    client_config, consumer_config, create_topic, produce_all_acked, produce_and_flush, recording_producer,
    Broker, BrokerOptions, DeliveryLog, RecordingProducer, TestMessage, CLIENT_TIMEOUT, CONSUME_TIMEOUT,
};

// ---------------------------------------------------------------------------
// Limits and Kafka constants
// ---------------------------------------------------------------------------

/// Upper bound for one transactional call of the client (init, commit,
/// abort, send offsets). Generous: the machine is small and shared.
const TXN_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a consumer must stay silent to count as "sees nothing more".
const QUIET_PERIOD: Duration = Duration::from_secs(3);
/// Upper bound for the broker to reach a transaction state a test waits for
/// (a timed-out transaction aborted, a half-completed one completed).
const STATE_TIMEOUT: Duration = Duration::from_secs(60);
/// The broker's check interval for timed-out transactions in these tests.
const ABORT_CHECK_INTERVAL_MS: u64 = 200;

const ERROR_COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const ERROR_COORDINATOR_NOT_AVAILABLE: i16 = 15;
const ERROR_NOT_COORDINATOR: i16 = 16;
const ERROR_INVALID_TXN_STATE: i16 = 48;
const ERROR_INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const ERROR_INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const ERROR_CONCURRENT_TRANSACTIONS: i16 = 51;
const ERROR_INVALID_RECORD: i16 = 87;
const ERROR_PRODUCER_FENCED: i16 = 90;
const ERROR_TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

/// Errors a client retries on InitProducerId: the coordinator is starting,
/// or the previous transaction of the id is still being completed.
const INIT_RETRIABLE_ERRORS: [i16; 4] = [
    ERROR_COORDINATOR_LOAD_IN_PROGRESS,
    ERROR_COORDINATOR_NOT_AVAILABLE,
    ERROR_NOT_COORDINATOR,
    ERROR_CONCURRENT_TRANSACTIONS,
];

/// Control record types (the second int16 of a control record's key).
const CONTROL_TYPE_ABORT: i16 = 0;
const CONTROL_TYPE_COMMIT: i16 = 1;

const ISOLATION_READ_UNCOMMITTED: i8 = 0;
const ISOLATION_READ_COMMITTED: i8 = 1;
const LIST_OFFSETS_LATEST: i64 = -1;

/// The broker's default `transaction_max_timeout_ms`.
const TRANSACTION_MAX_TIMEOUT_MS_DEFAULT: i32 = 900_000;

/// Broker settings for every test: timed-out transactions are found within
/// 200 ms; small internal topics keep the broker lean; groups form at once.
fn broker_config() -> String {
    format!(
        "transaction_abort_timed_out_transaction_cleanup_interval_ms = {ABORT_CHECK_INTERVAL_MS}\n\
         transaction_state_topic_partitions = 4\n\
         offsets_topic_partitions = 4\n\
         group_initial_rebalance_delay_ms = 0\n"
    )
}

fn start_broker() -> Broker {
    Broker::start_with(BrokerOptions {
        config_toml: Some(broker_config()),
        ..BrokerOptions::default()
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

// ---------------------------------------------------------------------------
// rdkafka: transactional producer
// ---------------------------------------------------------------------------

/// A transactional producer's settings. librdkafka requires
/// `socket.timeout.ms <= transaction.timeout.ms + 100`, so short transaction
/// timeouts shorten the socket timeout too.
fn transactional_config(
    bootstrap: &str,
    transactional_id: &str,
    transaction_timeout_ms: u32,
) -> ClientConfig {
    let mut config = client_config(bootstrap);
    let socket_timeout_ms = transaction_timeout_ms.min(10_000);
    config
        .set("transactional.id", transactional_id)
        .set("transaction.timeout.ms", transaction_timeout_ms.to_string())
        .set("socket.timeout.ms", socket_timeout_ms.to_string())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("request.timeout.ms", socket_timeout_ms.to_string());
    config
}

/// A transactional producer after `init_transactions`.
fn transactional_producer(
    bootstrap: &str,
    transactional_id: &str,
    transaction_timeout_ms: u32,
) -> (RecordingProducer, DeliveryLog) {
    let (producer, deliveries) = recording_producer(&transactional_config(
        bootstrap,
        transactional_id,
        transaction_timeout_ms,
    ));
    producer
        .init_transactions(TXN_CALL_TIMEOUT)
        .unwrap_or_else(|error| panic!("init_transactions for {transactional_id}: {}", describe(&error)));
    (producer, deliveries)
}

/// An error with what librdkafka says about it (fatal, retriable, abortable).
fn describe(error: &KafkaError) -> String {
    match error {
        KafkaError::Transaction(inner) => format!(
            "{error} (code {:?}, fatal {}, retriable {}, requires abort {})",
            inner.code(),
            inner.is_fatal(),
            inner.is_retriable(),
            inner.txn_requires_abort()
        ),
        other => format!("{other} (code {:?})", other.rdkafka_error_code()),
    }
}

/// Sends `messages` inside the producer's open transaction, flushes, and
/// asserts each was acknowledged; returns their (partition, offset).
fn send_in_transaction(
    producer: &RecordingProducer,
    deliveries: &DeliveryLog,
    topic: &str,
    messages: &[TestMessage],
) -> Vec<(i32, i64)> {
    produce_and_flush(producer, deliveries, topic, messages)
        .into_iter()
        .map(|delivery| {
            delivery.outcome.unwrap_or_else(|error| {
                panic!(
                    "transactional message {} to {topic} not acknowledged: {error}",
                    delivery.id
                )
            })
        })
        .collect()
}

fn begin(producer: &RecordingProducer) {
    producer
        .begin_transaction()
        .unwrap_or_else(|error| panic!("begin_transaction: {}", describe(&error)));
}

fn commit(producer: &RecordingProducer) {
    producer
        .commit_transaction(TXN_CALL_TIMEOUT)
        .unwrap_or_else(|error| panic!("commit_transaction: {}", describe(&error)));
}

fn abort(producer: &RecordingProducer) {
    producer
        .abort_transaction(TXN_CALL_TIMEOUT)
        .unwrap_or_else(|error| panic!("abort_transaction: {}", describe(&error)));
}

/// `count` records for each of `partitions`, tagged so a reader can tell
/// transactions and records apart: key `<tag>-p<partition>-<index>`.
fn tagged_messages(tag: &str, partitions: &[i32], count: usize) -> Vec<TestMessage> {
    partitions
        .iter()
        .flat_map(|&partition| {
            (0..count).map(move |index| {
                TestMessage::keyed(
                    partition,
                    format!("{tag}-p{partition}-{index}"),
                    format!("value of {tag} partition {partition} record {index}"),
                )
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------
// rdkafka: consumers that report exactly what the application sees
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isolation {
    ReadCommitted,
    ReadUncommitted,
}

impl Isolation {
    fn config_value(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read_committed",
            Isolation::ReadUncommitted => "read_uncommitted",
        }
    }
}

/// One record as the application got it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    partition: i32,
    offset: i64,
    key: Option<String>,
    value: Option<String>,
}

impl Seen {
    fn key(&self) -> &str {
        self.key.as_deref().unwrap_or("<no key>")
    }
}

/// An assign-mode consumer of some partitions of a topic from offset 0.
struct Reader {
    consumer: BaseConsumer,
    topic: String,
    isolation: Isolation,
    /// Client errors seen so far (shown when an assertion fails).
    errors: Vec<String>,
}

impl Reader {
    fn new(bootstrap: &str, topic: &str, partitions: &[i32], isolation: Isolation) -> Reader {
        let consumer: BaseConsumer = consumer_config(bootstrap)
            .set("isolation.level", isolation.config_value())
            .create()
            .expect("create consumer");
        let mut assignment = TopicPartitionList::new();
        for &partition in partitions {
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(0))
                .expect("add partition to assignment");
        }
        consumer.assign(&assignment).expect("assign");
        Reader {
            consumer,
            topic: topic.to_string(),
            isolation,
            errors: Vec::new(),
        }
    }

    fn poll_one(&mut self, wait: Duration) -> Option<Seen> {
        match self.consumer.poll(wait) {
            None => None,
            Some(Err(error)) => {
                if self.errors.len() < 20 {
                    self.errors.push(error.to_string());
                }
                None
            }
            Some(Ok(message)) => {
                let text = |bytes: Option<&[u8]>| bytes.map(|b| String::from_utf8_lossy(b).into_owned());
                Some(Seen {
                    partition: message.partition(),
                    offset: message.offset(),
                    key: text(message.key()),
                    value: text(message.payload()),
                })
            }
        }
    }

    /// Reads until `count` records arrived, then asserts nothing more
    /// arrives within [`QUIET_PERIOD`].
    fn read_exactly(&mut self, count: usize, what: &str) -> Vec<Seen> {
        let mut seen = Vec::new();
        let deadline = Instant::now() + CONSUME_TIMEOUT;
        while seen.len() < count {
            assert!(
                Instant::now() < deadline,
                "{what}: {:?} consumer of {} got {} of {count} records within {CONSUME_TIMEOUT:?}: {:?}; client errors: {:?}",
                self.isolation,
                self.topic,
                seen.len(),
                keys(&seen),
                self.errors
            );
            if let Some(record) = self.poll_one(Duration::from_millis(100)) {
                seen.push(record);
            }
        }
        self.assert_quiet(QUIET_PERIOD, what);
        seen
    }

    /// Reads until `done` holds for what arrived so far.
    fn read_until(&mut self, what: &str, done: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
        let mut seen = Vec::new();
        let deadline = Instant::now() + CONSUME_TIMEOUT;
        while !done(&seen) {
            assert!(
                Instant::now() < deadline,
                "{what}: {:?} consumer of {} did not get what it waits for within {CONSUME_TIMEOUT:?}; got {:?}; client errors: {:?}",
                self.isolation,
                self.topic,
                keys(&seen),
                self.errors
            );
            if let Some(record) = self.poll_one(Duration::from_millis(100)) {
                seen.push(record);
            }
        }
        seen
    }

    /// Asserts no record arrives within `period`.
    fn assert_quiet(&mut self, period: Duration, what: &str) {
        let until = Instant::now() + period;
        while Instant::now() < until {
            if let Some(record) = self.poll_one(Duration::from_millis(50)) {
                panic!(
                    "{what}: {:?} consumer of {} got an unexpected record {record:?}",
                    self.isolation, self.topic
                );
            }
        }
    }
}

fn keys(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .map(|record| format!("{}@{}/{}", record.key(), record.partition, record.offset))
        .collect()
}

fn by_partition(seen: &[Seen]) -> BTreeMap<i32, Vec<Seen>> {
    let mut out: BTreeMap<i32, Vec<Seen>> = BTreeMap::new();
    for record in seen {
        out.entry(record.partition).or_default().push(record.clone());
    }
    out
}

/// Asserts that `seen` holds exactly `expected` (each at the given offset),
/// per partition in order, every record whole (key and value as sent).
fn assert_seen_exactly(seen: &[Seen], expected: &[(TestMessage, i64)], what: &str) {
    let mut wanted: BTreeMap<i32, Vec<(String, String, i64)>> = BTreeMap::new();
    for (message, offset) in expected {
        let text =
            |bytes: &Option<Vec<u8>>| String::from_utf8(bytes.clone().expect("test sets it")).expect("utf-8");
        wanted.entry(message.partition).or_default().push((
            text(&message.key),
            text(&message.value),
            *offset,
        ));
    }
    let got: BTreeMap<i32, Vec<(String, String, i64)>> = by_partition(seen)
        .into_iter()
        .map(|(partition, records)| {
            let records = records
                .into_iter()
                .map(|record| {
                    (
                        record.key.unwrap_or_else(|| "<no key>".into()),
                        record.value.unwrap_or_else(|| "<no value>".into()),
                        record.offset,
                    )
                })
                .collect();
            (partition, records)
        })
        .collect();
    assert_eq!(got, wanted, "{what}: records (key, value, offset) per partition");
}

// ---------------------------------------------------------------------------
// Raw protocol helpers
// ---------------------------------------------------------------------------

fn transactional_id(id: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(id.to_string()))
}

/// InitProducerId for `id` at the highest version both sides know, retried
/// while the answer is one a client retries; returns the final answer.
fn raw_init_producer_id(
    connection: &mut Connection,
    id: &str,
    timeout_ms: i32,
    producer_id: i64,
    epoch: i16,
) -> InitProducerIdResponse {
    let version = connection.negotiate(ApiKey::InitProducerId, 0..=5);
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(transactional_id(id)))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch);
    let deadline = Instant::now() + STATE_TIMEOUT;
    loop {
        let response = connection.call(version, &request);
        if !INIT_RETRIABLE_ERRORS.contains(&response.error_code) || Instant::now() >= deadline {
            return response;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// A fresh producer id and epoch for `id`; asserts success.
fn raw_init(connection: &mut Connection, id: &str, timeout_ms: i32) -> (i64, i16) {
    let response = raw_init_producer_id(connection, id, timeout_ms, -1, -1);
    assert_eq!(
        response.error_code, ERROR_NONE,
        "InitProducerId for {id}: {response:?}"
    );
    assert!(
        response.producer_id.0 >= 0,
        "InitProducerId for {id}: {response:?}"
    );
    (response.producer_id.0, response.producer_epoch)
}

/// AddPartitionsToTxn (v3 or lower, the client versions): error code per
/// (topic, partition), in answer order.
fn raw_add_partitions(
    connection: &mut Connection,
    id: &str,
    producer_id: i64,
    epoch: i16,
    topics: &[(&str, &[i32])],
) -> Vec<(String, i32, i16)> {
    let version = connection.negotiate(ApiKey::AddPartitionsToTxn, 0..=3);
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(transactional_id(id))
        .with_v3_and_below_producer_id(ProducerId(producer_id))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(
            topics
                .iter()
                .map(|(topic, partitions)| {
                    AddPartitionsToTxnTopic::default()
                        .with_name(wire::topic_name(topic))
                        .with_partitions(partitions.to_vec())
                })
                .collect(),
        );
    let response = connection.call(version, &request);
    response
        .results_by_topic_v3_and_below
        .iter()
        .flat_map(|topic| {
            topic.results_by_partition.iter().map(|p| {
                (
                    topic.name.0.to_string(),
                    p.partition_index,
                    p.partition_error_code,
                )
            })
        })
        .collect()
}

/// Asserts every partition was added.
fn raw_add_partitions_ok(
    connection: &mut Connection,
    id: &str,
    producer_id: i64,
    epoch: i16,
    topic: &str,
    partitions: &[i32],
) {
    let results = raw_add_partitions(connection, id, producer_id, epoch, &[(topic, partitions)]);
    let expected: Vec<(String, i32, i16)> = partitions
        .iter()
        .map(|&partition| (topic.to_string(), partition, ERROR_NONE))
        .collect();
    assert_eq!(
        results, expected,
        "AddPartitionsToTxn of {topic} {partitions:?} for {id}"
    );
}

/// EndTxn at the highest version both sides know (up to 4); the error code.
fn raw_end_txn(connection: &mut Connection, id: &str, producer_id: i64, epoch: i16, commit: bool) -> i16 {
    let version = connection.negotiate(ApiKey::EndTxn, 0..=4);
    let request = EndTxnRequest::default()
        .with_transactional_id(transactional_id(id))
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    connection.call(version, &request).error_code
}

/// One uncompressed v2 batch of `values` from a producer, sequences from
/// `base_sequence`, transactional or not, stamped now.
fn producer_batch(
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    transactional: bool,
    values: &[String],
) -> Bytes {
    let timestamp = now_ms();
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(index, value)| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: index as i64,
            sequence: base_sequence + index as i32,
            timestamp,
            key: Some(Bytes::from(format!("key-{value}"))),
            value: Some(Bytes::from(value.clone())),
            headers: Default::default(),
        })
        .collect();
    let batch = wire::encode_batch(&records);
    // The encoder derives the header from the records: make sure it says
    // what the test means (attributes bit 4: transactional).
    let attributes = i16::from_be_bytes([
        batch[wire::batch_layout::ATTRIBUTES],
        batch[wire::batch_layout::ATTRIBUTES + 1],
    ]);
    assert_eq!(
        attributes & 0x10 != 0,
        transactional,
        "encoded transactional flag"
    );
    assert_eq!(
        i64::from_be_bytes(batch[43..51].try_into().expect("8 bytes")),
        producer_id
    );
    batch
}

/// Produce (acks=all) of one batch, with `transactional_id` in the request
/// when given.
fn raw_produce(
    connection: &mut Connection,
    transactional_id_in_request: Option<&str>,
    topic: &str,
    partition: i32,
    batch: Bytes,
) -> PartitionProduceResponse {
    let version = connection.negotiate(ApiKey::Produce, 3..=8);
    let request = wire::produce_request(topic, partition, -1, batch)
        .with_transactional_id(transactional_id_in_request.map(transactional_id));
    let response = connection.call(version, &request);
    assert_eq!(response.responses.len(), 1, "one topic in produce response");
    assert_eq!(response.responses[0].partition_responses.len(), 1);
    response.responses[0].partition_responses[0].clone()
}

/// Produces `values` transactionally and asserts they landed at
/// `base_offset`.
#[allow(clippy::too_many_arguments)]
fn raw_produce_txn_ok(
    connection: &mut Connection,
    id: &str,
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    topic: &str,
    partition: i32,
    values: &[String],
    base_offset: i64,
) {
    let batch = producer_batch(producer_id, epoch, base_sequence, true, values);
    let response = raw_produce(connection, Some(id), topic, partition, batch);
    assert_eq!(
        (response.error_code, response.base_offset),
        (ERROR_NONE, base_offset),
        "transactional produce to {topic}/{partition}: {response:?}"
    );
}

fn raw_describe_transaction(connection: &mut Connection, id: &str) -> TransactionState {
    let version = connection.negotiate(ApiKey::DescribeTransactions, 0..=0);
    let request = DescribeTransactionsRequest::default().with_transactional_ids(vec![transactional_id(id)]);
    let response = connection.call(version, &request);
    assert_eq!(
        response.transaction_states.len(),
        1,
        "DescribeTransactions of one id: {response:?}"
    );
    let state = response.transaction_states[0].clone();
    assert_eq!(state.transactional_id.0.as_str(), id, "{state:?}");
    state
}

/// Polls DescribeTransactions until the id is in `wanted` state.
fn wait_for_transaction_state(connection: &mut Connection, id: &str, wanted: &str) -> TransactionState {
    let deadline = Instant::now() + STATE_TIMEOUT;
    loop {
        let state = raw_describe_transaction(connection, id);
        if state.error_code == ERROR_NONE && state.transaction_state.as_str() == wanted {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "transaction {id} did not reach state {wanted} within {STATE_TIMEOUT:?}; last: {state:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// (topic, partitions) of a described transaction.
fn described_partitions(state: &TransactionState) -> Vec<(String, Vec<i32>)> {
    state
        .topics
        .iter()
        .map(|topic| {
            let mut partitions = topic.partitions.clone();
            partitions.sort_unstable();
            (topic.topic.0.to_string(), partitions)
        })
        .collect()
}

fn raw_list_transactions(
    connection: &mut Connection,
    states: &[&str],
    producer_ids: &[i64],
) -> ListTransactionsResponse {
    let version = connection.negotiate(ApiKey::ListTransactions, 0..=1);
    let request = ListTransactionsRequest::default()
        .with_state_filters(
            states
                .iter()
                .map(|state| StrBytes::from_string(state.to_string()))
                .collect(),
        )
        .with_producer_id_filters(producer_ids.iter().map(|&id| ProducerId(id)).collect())
        .with_duration_filter(-1);
    let response = connection.call(version, &request);
    assert_eq!(response.error_code, ERROR_NONE, "ListTransactions: {response:?}");
    response
}

/// (transactional id, producer id, state) of every listed transaction.
fn listed(response: &ListTransactionsResponse) -> Vec<(String, i64, String)> {
    let mut out: Vec<(String, i64, String)> = response
        .transaction_states
        .iter()
        .map(|state| {
            (
                state.transactional_id.0.to_string(),
                state.producer_id.0,
                state.transaction_state.to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn raw_describe_producers(
    connection: &mut Connection,
    topic: &str,
    partition: i32,
) -> ProducersPartitionResponse {
    let version = connection.negotiate(ApiKey::DescribeProducers, 0..=0);
    let request = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(wire::topic_name(topic))
        .with_partition_indexes(vec![partition])]);
    let response = connection.call(version, &request);
    assert_eq!(response.topics.len(), 1, "{response:?}");
    assert_eq!(response.topics[0].partitions.len(), 1, "{response:?}");
    response.topics[0].partitions[0].clone()
}

/// ListOffsets latest with the given isolation level: (error, offset).
fn raw_latest_offset(connection: &mut Connection, topic: &str, partition: i32, isolation: i8) -> (i16, i64) {
    let version = connection.negotiate(ApiKey::ListOffsets, 2..=5);
    let request = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_isolation_level(isolation)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(wire::topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(LIST_OFFSETS_LATEST)])]);
    let response = connection.call(version, &request);
    let answer = &response.topics[0].partitions[0];
    (answer.error_code, answer.offset)
}

/// One Fetch of one partition with the given isolation level (v4..=11,
/// the versions with the last stable offset and aborted transactions).
fn raw_fetch(
    connection: &mut Connection,
    topic: &str,
    partition: i32,
    offset: i64,
    isolation: i8,
) -> PartitionData {
    let version = connection.negotiate(ApiKey::Fetch, 4..=11);
    let request = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(100)
        .with_min_bytes(1)
        .with_max_bytes(16 * 1024 * 1024)
        .with_isolation_level(isolation)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(wire::topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(8 * 1024 * 1024)])]);
    let response = connection.call(version, &request);
    assert_eq!(response.error_code, ERROR_NONE, "fetch top-level error");
    let answer = response.responses[0].partitions[0].clone();
    assert_eq!(
        answer.error_code, ERROR_NONE,
        "fetch {topic}/{partition} at {offset}: {answer:?}"
    );
    answer
}

/// What a raw read of a partition up to its end found.
#[derive(Debug, Default)]
struct RawLog {
    /// Every record, control records included, with its offset.
    records: Vec<Record>,
    /// (producer id, first offset) of every aborted transaction listed.
    aborted: Vec<(i64, i64)>,
    high_watermark: i64,
    last_stable_offset: i64,
}

/// Reads a partition from offset 0 until the end visible at `isolation`
/// (the high watermark or the last stable offset).
fn raw_read(connection: &mut Connection, topic: &str, partition: i32, isolation: i8) -> RawLog {
    let mut log = RawLog::default();
    let mut offset = 0;
    let deadline = Instant::now() + CONSUME_TIMEOUT;
    loop {
        let answer = raw_fetch(connection, topic, partition, offset, isolation);
        log.high_watermark = answer.high_watermark;
        log.last_stable_offset = answer.last_stable_offset;
        for aborted in answer.aborted_transactions.unwrap_or_default() {
            let entry = (aborted.producer_id.0, aborted.first_offset);
            if !log.aborted.contains(&entry) {
                log.aborted.push(entry);
            }
        }
        for record in wire::decode_records(answer.records.unwrap_or_default()) {
            if record.offset < offset {
                continue;
            }
            offset = record.offset + 1;
            log.records.push(record);
        }
        let end = if isolation == ISOLATION_READ_COMMITTED {
            log.last_stable_offset
        } else {
            log.high_watermark
        };
        if offset >= end {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}/{partition}: raw read reached {offset} of {end} within {CONSUME_TIMEOUT:?}"
        );
    }
}

/// (offset, control type) of every control record in `records`.
fn control_records(records: &[Record]) -> Vec<(i64, i16)> {
    records
        .iter()
        .filter(|record| record.control)
        .map(|record| {
            let key = record.key.clone().expect("control record has a key");
            assert_eq!(key.len(), 4, "control record key is version + type: {key:?}");
            let version = i16::from_be_bytes([key[0], key[1]]);
            assert_eq!(version, 0, "control record key version");
            (record.offset, i16::from_be_bytes([key[2], key[3]]))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// 1. Commit, abort, commit: what each isolation level delivers
// ---------------------------------------------------------------------------

/// Three transactions over two partitions: committed, aborted, committed.
/// Each writes `RECORDS` records per partition, and each ends with a marker
/// in both partitions, so transaction t's record i sits at offset
/// t * (RECORDS + 1) + i. A read_committed consumer gets exactly the first
/// and third transactions' records, a read_uncommitted one all three; neither
/// ever gets a control record (offsets skip the markers). Read raw, each
/// partition holds COMMIT, ABORT, COMMIT markers at the gaps, and a
/// read_committed fetch lists the aborted transaction.
#[test]
fn read_committed_consumer_sees_exactly_the_committed_transactions_and_never_a_control_record() {
    const RECORDS: usize = 4;
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    let topic = "txn-commit-abort";
    let partitions = [0, 1];
    create_topic(&bootstrap, topic, 2, &[]);
    let (producer, deliveries) = transactional_producer(&bootstrap, "txn-commit-abort-app", 60_000);

    let outcomes = [true, false, true];
    let mut committed: Vec<(TestMessage, i64)> = Vec::new();
    let mut everything: Vec<(TestMessage, i64)> = Vec::new();
    for (transaction, &commits) in outcomes.iter().enumerate() {
        let tag = format!("txn{transaction}-{}", if commits { "commit" } else { "abort" });
        let messages = tagged_messages(&tag, &partitions, RECORDS);
        begin(&producer);
        let positions = send_in_transaction(&producer, &deliveries, topic, &messages);
        for (number, (message, (partition, offset))) in messages.iter().zip(&positions).enumerate() {
            let index = number % RECORDS;
            let expected_offset = (transaction * (RECORDS + 1) + index) as i64;
            assert_eq!(
                (*partition, *offset),
                (message.partition, expected_offset),
                "delivery report of {tag} record {index}: one offset per marker must separate transactions"
            );
            everything.push((message.clone(), *offset));
            if commits {
                committed.push((message.clone(), *offset));
            }
        }
        if commits {
            commit(&producer);
        } else {
            abort(&producer);
        }
    }

    let mut read_committed = Reader::new(&bootstrap, topic, &partitions, Isolation::ReadCommitted);
    let seen = read_committed.read_exactly(committed.len(), "read_committed after commit, abort, commit");
    assert_seen_exactly(&seen, &committed, "read_committed");

    let mut read_uncommitted = Reader::new(&bootstrap, topic, &partitions, Isolation::ReadUncommitted);
    let seen =
        read_uncommitted.read_exactly(everything.len(), "read_uncommitted after commit, abort, commit");
    assert_seen_exactly(&seen, &everything, "read_uncommitted");

    // The markers themselves, as a broker-level reader sees them.
    let mut connection = Connection::open(broker.socket_addr());
    let end_offset = (outcomes.len() * (RECORDS + 1)) as i64;
    let expected_markers: Vec<(i64, i16)> = outcomes
        .iter()
        .enumerate()
        .map(|(transaction, &commits)| {
            let offset = (transaction * (RECORDS + 1) + RECORDS) as i64;
            let kind = if commits {
                CONTROL_TYPE_COMMIT
            } else {
                CONTROL_TYPE_ABORT
            };
            (offset, kind)
        })
        .collect();
    for &partition in &partitions {
        let log = raw_read(&mut connection, topic, partition, ISOLATION_READ_UNCOMMITTED);
        assert_eq!(
            log.high_watermark, end_offset,
            "{topic}/{partition}: high watermark after 3 transactions of {RECORDS} records"
        );
        assert_eq!(
            control_records(&log.records),
            expected_markers,
            "{topic}/{partition}: (offset, type) of control records (0 abort, 1 commit)"
        );
        let producer_ids: Vec<i64> = log.records.iter().map(|r| r.producer_id).collect();
        let producer_id = producer_ids[0];
        assert!(
            producer_ids.iter().all(|&id| id == producer_id),
            "one producer wrote everything: {producer_ids:?}"
        );
        assert!(
            log.records.iter().all(|r| r.transactional),
            "every batch, markers included, is transactional"
        );

        let committed_log = raw_read(&mut connection, topic, partition, ISOLATION_READ_COMMITTED);
        assert_eq!(
            (committed_log.last_stable_offset, committed_log.high_watermark),
            (end_offset, end_offset),
            "{topic}/{partition}: last stable offset with no open transaction"
        );
        assert_eq!(
            committed_log.aborted,
            vec![(producer_id, (RECORDS + 1) as i64)],
            "{topic}/{partition}: aborted transactions listed by a read_committed fetch from 0"
        );
    }
}

// ---------------------------------------------------------------------------
// 2. An open transaction holds read_committed readers at the LSO
// ---------------------------------------------------------------------------

/// A transaction's records are acknowledged and flushed but not committed;
/// then a plain producer appends one record after them. A read_uncommitted
/// consumer gets all four; a read_committed consumer gets nothing, not even
/// the later plain record, because the last stable offset stays at the open
/// transaction's first offset. ListOffsets latest says the same (high
/// watermark vs LSO). After the commit the same read_committed consumer gets
/// all four records.
#[test]
fn open_transaction_holds_read_committed_consumers_at_its_first_offset_until_it_commits() {
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    let topic = "txn-open-lso";
    create_topic(&bootstrap, topic, 1, &[]);
    let (producer, deliveries) = transactional_producer(&bootstrap, "txn-open-lso-app", 120_000);

    begin(&producer);
    let transactional = tagged_messages("open", &[0], 3);
    let positions = send_in_transaction(&producer, &deliveries, topic, &transactional);
    assert_eq!(
        positions,
        vec![(0, 0), (0, 1), (0, 2)],
        "transactional deliveries"
    );
    let plain = TestMessage::keyed(0, "plain-after-open", "plain record after the open transaction");
    let reports = produce_all_acked(&bootstrap, "all", topic, std::slice::from_ref(&plain));
    assert_eq!(
        reports[0].outcome,
        Ok((0, 3)),
        "plain record after the transaction"
    );

    let mut connection = Connection::open(broker.socket_addr());
    assert_eq!(
        raw_latest_offset(&mut connection, topic, 0, ISOLATION_READ_UNCOMMITTED),
        (ERROR_NONE, 4),
        "ListOffsets latest, read_uncommitted: the high watermark"
    );
    assert_eq!(
        raw_latest_offset(&mut connection, topic, 0, ISOLATION_READ_COMMITTED),
        (ERROR_NONE, 0),
        "ListOffsets latest, read_committed: the last stable offset (first offset of the open transaction)"
    );
    let fetched = raw_fetch(&mut connection, topic, 0, 0, ISOLATION_READ_COMMITTED);
    assert_eq!(
        (fetched.high_watermark, fetched.last_stable_offset),
        (4, 0),
        "read_committed fetch: (high watermark, last stable offset)"
    );
    let records = wire::decode_records(fetched.records.clone().unwrap_or_default());
    assert!(
        records.is_empty(),
        "read_committed fetch below the LSO returned records: {records:?}"
    );

    let mut read_uncommitted = Reader::new(&bootstrap, topic, &[0], Isolation::ReadUncommitted);
    let seen = read_uncommitted.read_exactly(4, "read_uncommitted with an open transaction");
    let mut expected: Vec<(TestMessage, i64)> = transactional.iter().cloned().zip(0..).collect();
    expected.push((plain.clone(), 3));
    assert_seen_exactly(&seen, &expected, "read_uncommitted with an open transaction");

    let mut read_committed = Reader::new(&bootstrap, topic, &[0], Isolation::ReadCommitted);
    read_committed.assert_quiet(QUIET_PERIOD * 2, "read_committed while the transaction is open");

    commit(&producer);
    let seen = read_committed.read_exactly(4, "read_committed after the commit");
    assert_seen_exactly(&seen, &expected, "read_committed after the commit");
    assert_eq!(
        raw_latest_offset(&mut connection, topic, 0, ISOLATION_READ_COMMITTED),
        (ERROR_NONE, 5),
        "ListOffsets latest, read_committed, after the commit (4 records + marker)"
    );
    assert_eq!(
        raw_latest_offset(&mut connection, topic, 0, ISOLATION_READ_UNCOMMITTED),
        (ERROR_NONE, 5),
        "ListOffsets latest, read_uncommitted, after the commit"
    );
    let (_, high) = read_committed
        .consumer
        .fetch_watermarks(topic, 0, CLIENT_TIMEOUT)
        .expect("fetch watermarks");
    assert_eq!(high, 5, "rdkafka high watermark after the commit");
}

// ---------------------------------------------------------------------------
// 3. The broker aborts a transaction open past its timeout
// ---------------------------------------------------------------------------

/// A producer with transaction.timeout.ms = 4000 writes records and then
/// stays silent. The broker aborts the transaction (DescribeTransactions:
/// CompleteAbort at a higher epoch), an ABORT marker follows the records, a
/// read_committed consumer never gets them but gets a plain record written
/// after them, and the producer's late commit fails.
#[test]
fn transaction_open_past_its_timeout_is_aborted_by_the_broker_and_its_late_commit_fails() {
    const TIMEOUT_MS: u32 = 4_000;
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    let topic = "txn-timeout";
    let id = "txn-timeout-app";
    create_topic(&bootstrap, topic, 1, &[]);
    let (producer, deliveries) = transactional_producer(&bootstrap, id, TIMEOUT_MS);

    begin(&producer);
    let messages = tagged_messages("timed-out", &[0], 3);
    let positions = send_in_transaction(&producer, &deliveries, topic, &messages);
    assert_eq!(positions, vec![(0, 0), (0, 1), (0, 2)]);

    let mut connection = Connection::open(broker.socket_addr());
    let open = raw_describe_transaction(&mut connection, id);
    assert_eq!(
        (
            open.error_code,
            open.transaction_state.as_str(),
            open.transaction_timeout_ms
        ),
        (ERROR_NONE, "Ongoing", TIMEOUT_MS as i32),
        "{open:?}"
    );
    let aborted = wait_for_transaction_state(&mut connection, id, "CompleteAbort");
    assert_eq!(aborted.producer_id, open.producer_id, "{aborted:?}");
    assert!(
        aborted.producer_epoch > open.producer_epoch,
        "a timeout abort bumps the epoch to fence the producer: before {open:?}, after {aborted:?}"
    );

    let log = raw_read(&mut connection, topic, 0, ISOLATION_READ_UNCOMMITTED);
    assert_eq!(
        control_records(&log.records),
        vec![(3, CONTROL_TYPE_ABORT)],
        "an ABORT marker follows the timed-out transaction's records"
    );

    let plain = TestMessage::keyed(
        0,
        "plain-after-timeout",
        "plain record after the timed-out transaction",
    );
    let reports = produce_all_acked(&bootstrap, "all", topic, std::slice::from_ref(&plain));
    assert_eq!(reports[0].outcome, Ok((0, 4)));
    let mut read_committed = Reader::new(&bootstrap, topic, &[0], Isolation::ReadCommitted);
    let seen = read_committed.read_exactly(1, "read_committed after the timeout abort");
    assert_seen_exactly(&seen, &[(plain, 4)], "read_committed after the timeout abort");

    let late_commit = producer.commit_transaction(TXN_CALL_TIMEOUT);
    eprintln!(
        "late commit of the timed-out transaction: {}",
        match &late_commit {
            Ok(()) => "Ok".to_string(),
            Err(error) => describe(error),
        }
    );
    assert!(
        late_commit.is_err(),
        "commit of a transaction the broker aborted on timeout must fail"
    );
    // Whatever the client did about it, nothing of the transaction shows.
    let mut read_committed = Reader::new(&bootstrap, topic, &[0], Isolation::ReadCommitted);
    let seen = read_committed.read_exactly(1, "read_committed after the failed late commit");
    assert_eq!(keys(&seen), vec!["plain-after-timeout@0/4".to_string()]);
}

// ---------------------------------------------------------------------------
// 4. A second producer with the same transactional id fences the first
// ---------------------------------------------------------------------------

/// Producer A opens a transaction and writes to it; producer B inits with
/// the same transactional id, which aborts A's transaction, and commits its
/// own. A's next produce and its commit fail with a fatal fenced error;
/// read_committed consumers get B's records only.
#[test]
fn second_producer_with_the_same_transactional_id_fences_the_first_and_aborts_its_transaction() {
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    let topic = "txn-fencing";
    let id = "txn-fencing-app";
    create_topic(&bootstrap, topic, 1, &[]);

    let (first, first_deliveries) = transactional_producer(&bootstrap, id, 60_000);
    begin(&first);
    let first_messages = tagged_messages("first", &[0], 3);
    send_in_transaction(&first, &first_deliveries, topic, &first_messages);

    let mut connection = Connection::open(broker.socket_addr());
    let before = raw_describe_transaction(&mut connection, id);
    assert_eq!(before.transaction_state.as_str(), "Ongoing", "{before:?}");

    let (second, second_deliveries) = transactional_producer(&bootstrap, id, 60_000);
    let after_init = raw_describe_transaction(&mut connection, id);
    assert!(
        after_init.producer_epoch > before.producer_epoch,
        "the second producer's InitProducerId bumps the epoch: {before:?} then {after_init:?}"
    );
    begin(&second);
    let second_messages = tagged_messages("second", &[0], 3);
    let positions = send_in_transaction(&second, &second_deliveries, topic, &second_messages);
    // The first transaction (offsets 0..3) was aborted by a marker at 3.
    assert_eq!(
        positions,
        vec![(0, 4), (0, 5), (0, 6)],
        "second producer's records"
    );
    commit(&second);

    // The fenced producer: its next record fails, and so does its commit.
    let late = tagged_messages("first-late", &[0], 1);
    let reports = produce_and_flush(&first, &first_deliveries, topic, &late);
    assert!(
        reports[0].outcome.is_err(),
        "a fenced producer's record must not be acknowledged: {:?}",
        reports[0]
    );
    let commit_result = first.commit_transaction(TXN_CALL_TIMEOUT);
    let fatal = first.client().fatal_error();
    eprintln!(
        "fenced producer: record {:?}, commit {}, fatal error {fatal:?}",
        reports[0].outcome,
        match &commit_result {
            Ok(()) => "Ok".to_string(),
            Err(error) => describe(error),
        }
    );
    let error = commit_result.expect_err("commit of a fenced producer must fail");
    let KafkaError::Transaction(inner) = &error else {
        panic!("commit of a fenced producer: expected a transaction error, got {error}");
    };
    assert!(inner.is_fatal(), "fencing is fatal: {}", describe(&error));
    let (fatal_code, _) = fatal.expect("a fenced producer has a fatal error");
    assert!(
        matches!(
            fatal_code,
            RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced
        ),
        "fatal error of a fenced producer: {fatal_code:?}"
    );

    let mut read_committed = Reader::new(&bootstrap, topic, &[0], Isolation::ReadCommitted);
    let seen = read_committed.read_exactly(3, "read_committed after fencing");
    let expected: Vec<(TestMessage, i64)> = second_messages.iter().cloned().zip(4..).collect();
    assert_seen_exactly(&seen, &expected, "read_committed after fencing");
    let log = raw_read(&mut connection, topic, 0, ISOLATION_READ_UNCOMMITTED);
    assert_eq!(
        control_records(&log.records),
        vec![(3, CONTROL_TYPE_ABORT), (7, CONTROL_TYPE_COMMIT)],
        "the fenced transaction is aborted, the new one committed"
    );
    assert_eq!(
        log.high_watermark, 8,
        "no record of the fenced producer after fencing"
    );
}

// ---------------------------------------------------------------------------
// 5. Broker crashes and restarts
// ---------------------------------------------------------------------------

/// A transaction is committed; a second one writes records (acknowledged)
/// and the broker is SIGKILLed before the commit. After the restart the
/// client's commit either succeeds or fails (then it aborts if it can);
/// either way a read_committed consumer gets the first transaction intact
/// and all or nothing of the second (all if the commit succeeded), and a
/// plain record written afterwards becomes visible, so the second
/// transaction did not stay open forever.
#[test]
fn broker_sigkill_mid_transaction_leaves_it_all_or_nothing_and_earlier_commits_intact() {
    const RECORDS: usize = 5;
    let mut broker = start_broker();
    let bootstrap = broker.bootstrap();
    let topic = "txn-crash-mid";
    let partitions = [0, 1];
    create_topic(&bootstrap, topic, 2, &[]);
    let (producer, deliveries) = transactional_producer(&bootstrap, "txn-crash-mid-app", 20_000);

    begin(&producer);
    let first = tagged_messages("before-crash", &partitions, RECORDS);
    let first_positions = send_in_transaction(&producer, &deliveries, topic, &first);
    commit(&producer);

    begin(&producer);
    let second = tagged_messages("across-crash", &partitions, RECORDS);
    let second_positions = send_in_transaction(&producer, &deliveries, topic, &second);
    broker.kill9();
    broker.restart();

    let outcome = producer.commit_transaction(TXN_CALL_TIMEOUT);
    let description = match &outcome {
        Ok(()) => "committed".to_string(),
        Err(error) => {
            let abort_result = match error {
                KafkaError::Transaction(inner) if inner.txn_requires_abort() => {
                    Some(producer.abort_transaction(TXN_CALL_TIMEOUT))
                }
                _ => None,
            };
            format!("commit failed: {}; abort: {abort_result:?}", describe(error))
        }
    };
    eprintln!("commit of the transaction open across the SIGKILL: {description}");

    let sentinels: Vec<TestMessage> = partitions
        .iter()
        .map(|&partition| TestMessage::keyed(partition, format!("sentinel-p{partition}"), "after the crash"))
        .collect();
    produce_all_acked(&bootstrap, "all", topic, &sentinels);

    let mut read_committed = Reader::new(&bootstrap, topic, &partitions, Isolation::ReadCommitted);
    let seen = read_committed.read_until("read_committed up to the sentinels", |seen| {
        seen.iter().filter(|r| r.key().starts_with("sentinel-")).count() == partitions.len()
    });
    read_committed.assert_quiet(QUIET_PERIOD, "read_committed after the sentinels");
    let with_tag = |tag: &str| -> Vec<Seen> {
        seen.iter()
            .filter(|r| r.key().starts_with(tag))
            .cloned()
            .collect()
    };
    let expected_first: Vec<(TestMessage, i64)> = first
        .iter()
        .cloned()
        .zip(first_positions.iter().map(|p| p.1))
        .collect();
    assert_seen_exactly(
        &with_tag("before-crash-"),
        &expected_first,
        "committed before the crash",
    );
    let second_seen = with_tag("across-crash-");
    let expected_second: Vec<(TestMessage, i64)> = second
        .iter()
        .cloned()
        .zip(second_positions.iter().map(|p| p.1))
        .collect();
    if outcome.is_ok() || !second_seen.is_empty() {
        assert_seen_exactly(
            &second_seen,
            &expected_second,
            &format!("transaction across the crash ({description}): all of it or nothing"),
        );
    }

    // The acknowledged records of the second transaction are in the log
    // either way (read_uncommitted), at their acknowledged offsets.
    let mut read_uncommitted = Reader::new(&bootstrap, topic, &partitions, Isolation::ReadUncommitted);
    let everything = read_uncommitted.read_until("read_uncommitted up to the sentinels", |seen| {
        seen.iter().filter(|r| r.key().starts_with("sentinel-")).count() == partitions.len()
    });
    let uncommitted_second: Vec<Seen> = everything
        .iter()
        .filter(|r| r.key().starts_with("across-crash-"))
        .cloned()
        .collect();
    assert_seen_exactly(
        &uncommitted_second,
        &expected_second,
        "acknowledged records of the transaction across the crash",
    );
}

/// Committed transactions survive a clean restart and a SIGKILL right after
/// the commit: the same records at the same offsets, markers in place, the
/// LSO at the end, the coordinator's state CompleteCommit, and a new
/// producer instance with the same id continues.
#[test]
fn committed_transactions_survive_clean_restart_and_sigkill_right_after_the_commit() {
    const RECORDS: usize = 4;
    let mut broker = start_broker();
    let bootstrap = broker.bootstrap();
    let topic = "txn-restart";
    let id = "txn-restart-app";
    let partitions = [0, 1];
    create_topic(&bootstrap, topic, 2, &[]);

    let mut expected: Vec<(TestMessage, i64)> = Vec::new();
    let mut markers: Vec<(i64, i16)> = Vec::new();
    for (round, kill) in [false, true].into_iter().enumerate() {
        {
            let (producer, deliveries) = transactional_producer(&bootstrap, id, 60_000);
            begin(&producer);
            let messages = tagged_messages(&format!("round{round}"), &partitions, RECORDS);
            let positions = send_in_transaction(&producer, &deliveries, topic, &messages);
            commit(&producer);
            for (number, (message, (_, offset))) in messages.into_iter().zip(positions).enumerate() {
                assert_eq!(
                    offset as usize,
                    round * (RECORDS + 1) + number % RECORDS,
                    "round {round}: offset of record {number} (one marker offset per earlier round)"
                );
                expected.push((message, offset));
            }
            markers.push(((round * (RECORDS + 1) + RECORDS) as i64, CONTROL_TYPE_COMMIT));
        }
        if kill {
            broker.kill9();
            broker.restart();
        } else {
            broker.restart();
        }
        let what = if kill {
            "after SIGKILL right after the commit"
        } else {
            "after a clean restart right after the commit"
        };
        let mut read_committed = Reader::new(&bootstrap, topic, &partitions, Isolation::ReadCommitted);
        let seen = read_committed.read_exactly(expected.len(), what);
        assert_seen_exactly(&seen, &expected, what);
        let mut connection = Connection::open(broker.socket_addr());
        let state = raw_describe_transaction(&mut connection, id);
        assert_eq!(
            (state.error_code, state.transaction_state.as_str()),
            (ERROR_NONE, "CompleteCommit"),
            "{what}: {state:?}"
        );
        let end = ((round + 1) * (RECORDS + 1)) as i64;
        for &partition in &partitions {
            let log = raw_read(&mut connection, topic, partition, ISOLATION_READ_UNCOMMITTED);
            assert_eq!(
                control_records(&log.records),
                markers,
                "{what}: markers of {partition}"
            );
            assert_eq!(log.high_watermark, end, "{what}: high watermark of {partition}");
            assert_eq!(
                raw_latest_offset(&mut connection, topic, partition, ISOLATION_READ_COMMITTED),
                (ERROR_NONE, end),
                "{what}: ListOffsets read_committed latest of {partition}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// 6. Consume-transform-produce, exactly once across application restarts
// ---------------------------------------------------------------------------

const CTP_INPUT_RECORDS: usize = 120;
const CTP_BATCH_RECORDS: usize = 10;

/// The output an input value turns into.
fn transformed(value: &str) -> String {
    format!("transformed({value})")
}

/// One application instance: a group consumer (read_committed, no
/// auto-commit) and a transactional producer with the given id. Processes
/// batches, each in one transaction with the consumer's offsets; stops after
/// `commit_batches_max` commits, leaving the next batch's transaction open
/// (written and flushed, never committed) when `leave_open` is set, or when
/// the input is exhausted. Returns how many records it committed and how
/// many it left in the open transaction.
fn run_ctp_instance(
    bootstrap: &str,
    input: &str,
    output: &str,
    group: &str,
    id: &str,
    commit_batches_max: usize,
    leave_open: bool,
) -> (usize, usize) {
    let (producer, deliveries) = transactional_producer(bootstrap, id, 60_000);
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", group)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("create group consumer");
    consumer.subscribe(&[input]).expect("subscribe");
    let mut committed_records = 0;
    let mut batches = 0;
    let mut idle_since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        assert!(
            Instant::now() < deadline,
            "consume-transform-produce instance ran too long"
        );
        let mut batch = Vec::new();
        while batch.len() < CTP_BATCH_RECORDS {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => {
                    let value = String::from_utf8_lossy(message.payload().expect("input value")).into_owned();
                    batch.push((message.partition(), message.key().map(<[u8]>::to_vec), value));
                }
                Some(Err(error)) => eprintln!("ctp consumer error: {error}"),
                None => break,
            }
        }
        if batch.is_empty() {
            // The input is complete before any instance starts: done once the
            // consumer has an assignment and its position is at the end.
            let assignment = consumer.assignment().expect("assignment");
            if assignment.count() > 0 && idle_since.elapsed() > Duration::from_secs(5) {
                let position = consumer.position().expect("position");
                let at_end = position.elements().iter().all(|element| {
                    let (_, high) = consumer
                        .fetch_watermarks(input, element.partition(), CLIENT_TIMEOUT)
                        .expect("input watermarks");
                    element.offset() == Offset::Offset(high)
                });
                if at_end {
                    return (committed_records, 0);
                }
            }
            continue;
        }
        idle_since = Instant::now();
        begin(&producer);
        let messages: Vec<TestMessage> = batch
            .iter()
            .map(|(partition, key, value)| TestMessage {
                partition: *partition,
                key: key.clone(),
                value: Some(transformed(value).into_bytes()),
                headers: Vec::new(),
                timestamp_ms: None,
            })
            .collect();
        send_in_transaction(&producer, &deliveries, output, &messages);
        if leave_open && batches == commit_batches_max {
            // Crash: the transaction is written but neither committed nor
            // aborted; the consumer's offsets were never sent.
            return (committed_records, batch.len());
        }
        let position = consumer.position().expect("position");
        let group_metadata = consumer.group_metadata().expect("group metadata");
        producer
            .send_offsets_to_transaction(&position, &group_metadata, TXN_CALL_TIMEOUT)
            .unwrap_or_else(|error| panic!("send_offsets_to_transaction: {}", describe(&error)));
        commit(&producer);
        committed_records += batch.len();
        batches += 1;
    }
}

/// Input records numbered 0..N over two partitions; an application
/// consumes, transforms and produces in transactions that carry its consumer
/// offsets. The first instance dies with a transaction open (written, not
/// committed, offsets not committed) after two commits; a second instance
/// with the same transactional id and group finishes the job. The output,
/// read_committed, holds each input record transformed exactly once, in
/// input order per partition, and the group's committed offsets are at the
/// input's end.
#[test]
fn consume_transform_produce_with_send_offsets_is_exactly_once_across_an_application_crash() {
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    let input = "ctp-input";
    let output = "ctp-output";
    let group = "ctp-group";
    let id = "ctp-app";
    let partitions = [0, 1];
    create_topic(&bootstrap, input, 2, &[]);
    create_topic(&bootstrap, output, 2, &[]);
    let inputs: Vec<TestMessage> = (0..CTP_INPUT_RECORDS)
        .map(|i| {
            TestMessage::keyed(
                (i % 2) as i32,
                format!("in-{i:04}"),
                format!("input record {i:04}"),
            )
        })
        .collect();
    produce_all_acked(&bootstrap, "all", input, &inputs);

    // Run the instance on its own thread so that dropping it (the crash)
    // happens without a clean close of the transaction.
    let first = {
        let bootstrap = bootstrap.clone();
        thread::spawn(move || run_ctp_instance(&bootstrap, input, output, group, id, 2, true))
    };
    let (first_committed, left_open) = first.join().expect("first instance panicked");
    assert!(
        first_committed > 0 && left_open > 0,
        "first instance: {first_committed} records committed, {left_open} left in an open transaction"
    );

    let second = {
        let bootstrap = bootstrap.clone();
        thread::spawn(move || run_ctp_instance(&bootstrap, input, output, group, id, usize::MAX, false))
    };
    let (second_committed, _) = second.join().expect("second instance panicked");
    assert_eq!(
        first_committed + second_committed,
        CTP_INPUT_RECORDS,
        "records committed by the two instances"
    );

    let mut read_committed = Reader::new(&bootstrap, output, &partitions, Isolation::ReadCommitted);
    let seen = read_committed.read_exactly(CTP_INPUT_RECORDS, "output, read_committed");
    for (partition, records) in by_partition(&seen) {
        let got: Vec<(String, String)> = records
            .iter()
            .map(|r| (r.key().to_string(), r.value.clone().unwrap_or_default()))
            .collect();
        let wanted: Vec<(String, String)> = (0..CTP_INPUT_RECORDS)
            .filter(|i| (i % 2) as i32 == partition)
            .map(|i| (format!("in-{i:04}"), transformed(&format!("input record {i:04}"))))
            .collect();
        assert_eq!(
            got, wanted,
            "output partition {partition}: each input once, in order"
        );
    }
    // The crashed instance's open transaction was written, then aborted.
    let mut read_uncommitted = Reader::new(&bootstrap, output, &partitions, Isolation::ReadUncommitted);
    read_uncommitted.read_exactly(
        CTP_INPUT_RECORDS + left_open,
        "output, read_uncommitted (the aborted batch included)",
    );

    let checker: BaseConsumer = client_config(&bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("create offsets checker");
    let mut wanted = TopicPartitionList::new();
    for &partition in &partitions {
        wanted.add_partition(input, partition);
    }
    let committed = checker
        .committed_offsets(wanted, CLIENT_TIMEOUT)
        .expect("committed offsets of the group");
    let offsets: Vec<(i32, Offset)> = committed
        .elements()
        .iter()
        .map(|element| (element.partition(), element.offset()))
        .collect();
    let half = (CTP_INPUT_RECORDS / 2) as i64;
    assert_eq!(
        offsets,
        vec![(0, Offset::Offset(half)), (1, Offset::Offset(half))],
        "group offsets committed through the transactions"
    );
}

// ---------------------------------------------------------------------------
// 7. Operator APIs
// ---------------------------------------------------------------------------

/// FindCoordinator for a transactional id names this broker;
/// DescribeTransactions, ListTransactions and DescribeProducers follow one
/// transaction from Empty through Ongoing to CompleteCommit, and another to
/// CompleteAbort; an unknown id is TRANSACTIONAL_ID_NOT_FOUND.
#[test]
fn operator_apis_show_an_open_transaction_and_its_completion() {
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    let topic = "txn-ops";
    let id = "txn-ops-app";
    let other_id = "txn-ops-aborting";
    create_topic(&bootstrap, topic, 2, &[]);
    let mut connection = Connection::open(broker.socket_addr());

    let version = connection.negotiate(ApiKey::FindCoordinator, 1..=3);
    let request = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_static_str(id))
        .with_key_type(1);
    let coordinator = connection.call(version, &request);
    assert_eq!(
        (
            coordinator.error_code,
            coordinator.node_id.0,
            coordinator.host.as_str(),
            coordinator.port
        ),
        (ERROR_NONE, 0, "127.0.0.1", i32::from(broker.port())),
        "FindCoordinator v{version}, key type transaction: {coordinator:?}"
    );

    // One plain record first, so the transaction starts at offset 1.
    let plain = wire::encode_batch(&[wire::record(0, now_ms(), b"plain", b"plain")]);
    let answer = connection.produce(topic, 0, -1, plain);
    assert_eq!((answer.error_code, answer.base_offset), (ERROR_NONE, 0));

    let (producer_id, epoch) = raw_init(&mut connection, id, 45_000);
    let empty = raw_describe_transaction(&mut connection, id);
    assert_eq!(
        (
            empty.error_code,
            empty.transaction_state.as_str(),
            empty.producer_id.0,
            empty.producer_epoch,
            empty.transaction_timeout_ms
        ),
        (ERROR_NONE, "Empty", producer_id, epoch, 45_000),
        "{empty:?}"
    );
    assert!(empty.topics.is_empty(), "{empty:?}");

    let started_ms = now_ms();
    raw_add_partitions_ok(&mut connection, id, producer_id, epoch, topic, &[0, 1]);
    let values =
        |tag: &str, count: usize| -> Vec<String> { (0..count).map(|i| format!("{tag}-{i}")).collect() };
    raw_produce_txn_ok(
        &mut connection,
        id,
        producer_id,
        epoch,
        0,
        topic,
        0,
        &values("ops-p0", 3),
        1,
    );
    raw_produce_txn_ok(
        &mut connection,
        id,
        producer_id,
        epoch,
        0,
        topic,
        1,
        &values("ops-p1", 2),
        0,
    );

    let ongoing = raw_describe_transaction(&mut connection, id);
    assert_eq!(
        (
            ongoing.error_code,
            ongoing.transaction_state.as_str(),
            ongoing.producer_id.0,
            ongoing.producer_epoch
        ),
        (ERROR_NONE, "Ongoing", producer_id, epoch),
        "{ongoing:?}"
    );
    assert_eq!(
        described_partitions(&ongoing),
        vec![(topic.to_string(), vec![0, 1])],
        "partitions of the open transaction: {ongoing:?}"
    );
    assert!(
        (started_ms - 60_000..=now_ms() + 60_000).contains(&ongoing.transaction_start_time_ms),
        "transaction start time {} should be near {started_ms}",
        ongoing.transaction_start_time_ms
    );

    let all = raw_list_transactions(&mut connection, &[], &[]);
    assert!(
        listed(&all).contains(&(id.to_string(), producer_id, "Ongoing".to_string())),
        "ListTransactions without filters: {all:?}"
    );
    let only_ongoing = raw_list_transactions(&mut connection, &["Ongoing"], &[]);
    assert_eq!(
        listed(&only_ongoing),
        vec![(id.to_string(), producer_id, "Ongoing".to_string())],
        "ListTransactions state Ongoing: {only_ongoing:?}"
    );
    let only_committed = raw_list_transactions(&mut connection, &["CompleteCommit"], &[]);
    assert_eq!(
        listed(&only_committed),
        vec![],
        "ListTransactions state CompleteCommit while open"
    );
    let by_producer = raw_list_transactions(&mut connection, &[], &[producer_id]);
    assert_eq!(
        listed(&by_producer),
        vec![(id.to_string(), producer_id, "Ongoing".to_string())],
        "ListTransactions by producer id"
    );
    let other_producer = raw_list_transactions(&mut connection, &[], &[producer_id + 1_000_000]);
    assert_eq!(
        listed(&other_producer),
        vec![],
        "ListTransactions by another producer id"
    );
    let unknown_state = raw_list_transactions(&mut connection, &["NoSuchState"], &[]);
    assert_eq!(
        unknown_state
            .unknown_state_filters
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        vec!["NoSuchState".to_string()],
        "ListTransactions reports state filters it does not know: {unknown_state:?}"
    );

    for (partition, start_offset) in [(0, 1), (1, 0)] {
        let producers = raw_describe_producers(&mut connection, topic, partition);
        assert_eq!(producers.error_code, ERROR_NONE, "{producers:?}");
        let ours: Vec<_> = producers
            .active_producers
            .iter()
            .filter(|p| p.producer_id.0 == producer_id)
            .collect();
        assert_eq!(
            ours.len(),
            1,
            "DescribeProducers {topic}/{partition}: {producers:?}"
        );
        assert_eq!(
            (ours[0].producer_epoch, ours[0].current_txn_start_offset),
            (i32::from(epoch), start_offset),
            "DescribeProducers {topic}/{partition} while open: {producers:?}"
        );
    }

    assert_eq!(
        raw_end_txn(&mut connection, id, producer_id, epoch, true),
        ERROR_NONE,
        "EndTxn commit"
    );
    let completed = raw_describe_transaction(&mut connection, id);
    assert_eq!(
        (
            completed.error_code,
            completed.transaction_state.as_str(),
            completed.producer_id.0
        ),
        (ERROR_NONE, "CompleteCommit", producer_id),
        "{completed:?}"
    );
    assert!(
        completed.topics.is_empty(),
        "a completed transaction has no partitions: {completed:?}"
    );
    assert_eq!(
        completed.transaction_start_time_ms, ongoing.transaction_start_time_ms,
        "a completed transaction keeps its start time, as in Kafka: {completed:?}"
    );
    assert_eq!(
        listed(&raw_list_transactions(&mut connection, &["CompleteCommit"], &[])),
        vec![(id.to_string(), producer_id, "CompleteCommit".to_string())],
        "ListTransactions state CompleteCommit after the commit"
    );
    assert_eq!(
        listed(&raw_list_transactions(&mut connection, &["Ongoing"], &[])),
        vec![],
        "ListTransactions state Ongoing after the commit"
    );
    for partition in [0, 1] {
        let producers = raw_describe_producers(&mut connection, topic, partition);
        let ours: Vec<_> = producers
            .active_producers
            .iter()
            .filter(|p| p.producer_id.0 == producer_id)
            .collect();
        assert_eq!(
            ours.len(),
            1,
            "DescribeProducers {topic}/{partition}: {producers:?}"
        );
        assert_eq!(
            ours[0].current_txn_start_offset, -1,
            "DescribeProducers {topic}/{partition} after the commit: {producers:?}"
        );
    }

    // Another id, aborted.
    let (other_producer_id, other_epoch) = raw_init(&mut connection, other_id, 45_000);
    raw_add_partitions_ok(
        &mut connection,
        other_id,
        other_producer_id,
        other_epoch,
        topic,
        &[1],
    );
    raw_produce_txn_ok(
        &mut connection,
        other_id,
        other_producer_id,
        other_epoch,
        0,
        topic,
        1,
        &values("ops-aborted", 2),
        3,
    );
    assert_eq!(
        raw_end_txn(&mut connection, other_id, other_producer_id, other_epoch, false),
        ERROR_NONE,
        "EndTxn abort"
    );
    let aborted = raw_describe_transaction(&mut connection, other_id);
    assert_eq!(
        (aborted.error_code, aborted.transaction_state.as_str()),
        (ERROR_NONE, "CompleteAbort"),
        "{aborted:?}"
    );
    assert_eq!(
        listed(&raw_list_transactions(
            &mut connection,
            &["CompleteAbort", "CompleteCommit"],
            &[]
        )),
        {
            let mut both = vec![
                (id.to_string(), producer_id, "CompleteCommit".to_string()),
                (
                    other_id.to_string(),
                    other_producer_id,
                    "CompleteAbort".to_string(),
                ),
            ];
            both.sort();
            both
        },
        "ListTransactions with two state filters"
    );

    let unknown = raw_describe_transaction(&mut connection, "txn-ops-never-used");
    assert_eq!(
        unknown.error_code, ERROR_TRANSACTIONAL_ID_NOT_FOUND,
        "DescribeTransactions of an unknown id: {unknown:?}"
    );
}

// ---------------------------------------------------------------------------
// 8. Bad requests
// ---------------------------------------------------------------------------

/// Each wrong transactional request gets Kafka's error code and changes
/// nothing: a wrong producer id, an old epoch, a timeout above the maximum,
/// an unknown topic, EndTxn without a transaction, a transactional batch
/// without a transactional id.
#[test]
fn bad_transactional_requests_get_kafkas_error_codes() {
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    let topic = "txn-bad";
    let id = "txn-bad-app";
    create_topic(&bootstrap, topic, 1, &[]);
    let mut connection = Connection::open(broker.socket_addr());

    let too_long = raw_init_producer_id(
        &mut connection,
        id,
        TRANSACTION_MAX_TIMEOUT_MS_DEFAULT + 1,
        -1,
        -1,
    );
    assert_eq!(
        too_long.error_code, ERROR_INVALID_TRANSACTION_TIMEOUT,
        "InitProducerId with a timeout above transaction_max_timeout_ms: {too_long:?}"
    );

    let (old_producer_id, old_epoch) = raw_init(&mut connection, id, 60_000);
    let (producer_id, epoch) = raw_init(&mut connection, id, 60_000);
    assert_eq!(producer_id, old_producer_id, "a re-init keeps the producer id");
    assert_eq!(epoch, old_epoch + 1, "a re-init bumps the epoch");

    assert_eq!(
        raw_end_txn(&mut connection, id, producer_id, epoch, true),
        ERROR_INVALID_TXN_STATE,
        "EndTxn commit with no transaction open (state Empty)"
    );

    assert_eq!(
        raw_add_partitions(&mut connection, id, producer_id + 1_000, epoch, &[(topic, &[0])]),
        vec![(topic.to_string(), 0, ERROR_INVALID_PRODUCER_ID_MAPPING)],
        "AddPartitionsToTxn with a producer id that is not the id's"
    );
    assert_eq!(
        raw_add_partitions(&mut connection, id, producer_id, old_epoch, &[(topic, &[0])]),
        vec![(topic.to_string(), 0, ERROR_PRODUCER_FENCED)],
        "AddPartitionsToTxn with an old epoch"
    );
    assert_eq!(
        raw_add_partitions(
            &mut connection,
            id,
            producer_id,
            epoch,
            &[("txn-no-such-topic", &[0])]
        ),
        vec![(
            "txn-no-such-topic".to_string(),
            0,
            ERROR_UNKNOWN_TOPIC_OR_PARTITION
        )],
        "AddPartitionsToTxn of an unknown topic"
    );
    assert_eq!(
        raw_add_partitions(&mut connection, id, producer_id, epoch, &[(topic, &[7])]),
        vec![(topic.to_string(), 7, ERROR_UNKNOWN_TOPIC_OR_PARTITION)],
        "AddPartitionsToTxn of a partition the topic does not have"
    );
    let state = raw_describe_transaction(&mut connection, id);
    assert_eq!(
        (state.transaction_state.as_str(), state.topics.len()),
        ("Empty", 0),
        "rejected AddPartitionsToTxn calls leave the id without a transaction: {state:?}"
    );

    // Now a real transaction; wrong ids and epochs cannot end it.
    raw_add_partitions_ok(&mut connection, id, producer_id, epoch, topic, &[0]);
    raw_produce_txn_ok(
        &mut connection,
        id,
        producer_id,
        epoch,
        0,
        topic,
        0,
        &["bad-test-0".to_string()],
        0,
    );
    assert_eq!(
        raw_end_txn(&mut connection, id, producer_id + 1_000, epoch, true),
        ERROR_INVALID_PRODUCER_ID_MAPPING,
        "EndTxn with a producer id that is not the id's"
    );
    assert_eq!(
        raw_end_txn(&mut connection, id, producer_id, old_epoch, true),
        ERROR_PRODUCER_FENCED,
        "EndTxn with an old epoch"
    );
    let state = raw_describe_transaction(&mut connection, id);
    assert_eq!(state.transaction_state.as_str(), "Ongoing", "{state:?}");

    // A transactional batch in a Produce request without a transactional id.
    let batch = producer_batch(producer_id, epoch, 1, true, &["bad-test-1".to_string()]);
    let answer = raw_produce(&mut connection, None, topic, 0, batch);
    assert_eq!(
        answer.error_code, ERROR_INVALID_RECORD,
        "transactional batch without transactional_id in the request: {answer:?}"
    );

    assert_eq!(
        raw_end_txn(&mut connection, id, producer_id, epoch, true),
        ERROR_NONE,
        "EndTxn commit by the rightful producer"
    );
    let log = raw_read(&mut connection, topic, 0, ISOLATION_READ_UNCOMMITTED);
    let data: Vec<(i64, String)> = log
        .records
        .iter()
        .filter(|r| !r.control)
        .map(|r| {
            (
                r.offset,
                String::from_utf8_lossy(&r.value.clone().unwrap_or_default()).into_owned(),
            )
        })
        .collect();
    assert_eq!(
        data,
        vec![(0, "bad-test-0".to_string())],
        "only the accepted record is in the log"
    );
    assert_eq!(control_records(&log.records), vec![(1, CONTROL_TYPE_COMMIT)]);
    assert_eq!(
        raw_end_txn(&mut connection, id, producer_id, epoch, false),
        ERROR_INVALID_TXN_STATE,
        "EndTxn abort after the commit completed (state CompleteCommit)"
    );
}
