//! Produce (key 0), versions 3-12 (0-2 advertised for librdkafka, refused).
//!
//! Each partition's batch is validated here, on the accepting shard (magic,
//! lengths, CRC32C, record count, size), then appended by the owning shard.
//! Partitions are appended concurrently; the response lists them in request
//! order. acks=0 gets no response; acks=1 is acknowledged once the O_DIRECT
//! write completed; acks=-1 (all) once an fdatasync covering the batch
//! completed, unless `fsync_policy = "never"` (see README: Durability).
//!
//! Idempotent and transactional batches (producer id >= 0) are checked by
//! the partition's producer state on the owning shard: a retry of one of
//! the producer's last 5 batches is answered with its original offsets and
//! not stored again; a sequence gap gets OUT_OF_ORDER_SEQUENCE_NUMBER, an
//! old epoch INVALID_PRODUCER_EPOCH. A producer's batches for a partition
//! reach its log in the order this connection read them (requests are
//! dispatched in order and cross-shard calls keep their order), which the
//! sequence check relies on. Transactional batches need the request's
//! transactional id; the first one opens the transaction there.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::{
    produce_response::{BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse},
    ApiKey, ProduceRequest, ProduceResponse,
};

use super::{create_topics::auto_create, str_bytes};
use crate::{
    config::FsyncPolicy,
    log::{partition::Durability, producer_state::ProducerError, LogError},
    metadata::TopicConfig,
    metrics::{micros, Stage},
    protocol::{
        error_code,
        record_batch::{
            records_in, records_section, validate_produced_batch, BatchError, DECOMPRESSED_RECORDS_BYTES_MAX,
        },
    },
    shard::{
        messages::{ShardCall, ShardReply},
        Shard,
    },
};

pub async fn handle(shard: &Rc<Shard>, request: ProduceRequest, version: i16) -> Option<ProduceResponse> {
    let acks = request.acks;
    let durability = match (acks, shard.config.fsync_policy) {
        (0, _) => Some(Durability::None),
        (1, FsyncPolicy::Always) | (-1, FsyncPolicy::Always | FsyncPolicy::AcksAll) => {
            Some(Durability::Synced)
        }
        (1, _) | (-1, FsyncPolicy::Never) => Some(Durability::Written),
        _ => None,
    };

    if shard.config.auto_create_topics && durability.is_some() {
        let metadata = shard.metadata();
        let missing: Vec<String> = request
            .topic_data
            .iter()
            .map(|t| t.name.0.to_string())
            .filter(|name| {
                metadata.topic(name).is_none() && crate::metadata::validate_topic_name(name).is_ok()
            })
            .collect();
        if !missing.is_empty() {
            auto_create(shard, missing).await;
        }
    }

    // Catch-up pacing watches how long appends take (not topic creation).
    let started = std::time::Instant::now();
    let mut appended_any = false;
    let metadata = shard.metadata();
    let mut pending = Vec::new();
    for topic in &request.topic_data {
        let name = topic.name.0.to_string();
        let topic_metadata = metadata.topic(&name);
        let topic_config = topic_metadata.map(|t| TopicConfig::resolve(&shard.config, &t.configs));
        let max_message_bytes = topic_config.map_or(shard.config.message_max_bytes, |c| c.max_message_bytes);
        let compacted = topic_config.is_some_and(|c| c.cleanup_policy.compact);
        // Only the broker writes its internal topics (group and
        // transaction state it loads as its own at start): Kafka refuses
        // clients there with INVALID_TOPIC_EXCEPTION.
        let internal = name == crate::group::OFFSETS_TOPIC || name == crate::txn::TXN_STATE_TOPIC;
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for data in &topic.partition_data {
            let index = data.index;
            let outcome = match (durability, request.transactional_id.is_some()) {
                (None, _) => Outcome::Error(
                    error_code::INVALID_REQUIRED_ACKS,
                    "acks must be -1, 0 or 1".into(),
                ),
                (Some(_), _) if internal => Outcome::Error(
                    error_code::INVALID_TOPIC_EXCEPTION,
                    format!("cannot append to internal topic {name}"),
                ),
                (Some(durability), transactional) => match topic_metadata.and_then(|t| t.shard_of(index)) {
                    None => Outcome::Error(
                        error_code::UNKNOWN_TOPIC_OR_PARTITION,
                        format!("no partition {name}-{index}"),
                    ),
                    Some(owner) => {
                        match validate(data.records.as_ref(), max_message_bytes, transactional, compacted) {
                            Err(Refusal::Batch(code, message)) => Outcome::Error(code, message),
                            Err(Refusal::Records(errors)) => Outcome::RecordErrors {
                                owner,
                                topic: name.clone(),
                                errors,
                            },
                            Ok((batch, header)) => {
                                let shard = shard.clone();
                                let call = ShardCall::Append {
                                    topic: name.clone(),
                                    partition: index,
                                    batch,
                                    header,
                                    durability,
                                };
                                Outcome::Pending(glommio::spawn_local(async move {
                                    let started = std::time::Instant::now();
                                    let reply = shard.call(owner, call).await;
                                    if let ShardReply::Appended(Ok(outcome)) = &reply {
                                        if owner != shard.id && !outcome.duplicate {
                                            // The owner's own work is in its
                                            // append and fsync stages.
                                            let hop_us = micros(started.elapsed())
                                                .saturating_sub(outcome.write_us + outcome.sync_us);
                                            shard.metrics.borrow_mut().record(
                                                ApiKey::Produce as i16,
                                                Stage::Hop,
                                                hop_us,
                                            );
                                        }
                                    }
                                    reply
                                }))
                            }
                        }
                    }
                },
            };
            partitions.push((index, outcome));
        }
        pending.push((topic.name.clone(), partitions));
    }

    let mut response = ProduceResponse::default();
    for (name, partitions) in pending {
        let mut topic_response = TopicProduceResponse::default();
        topic_response.name = name.clone();
        for (index, outcome) in partitions {
            let mut partition = PartitionProduceResponse::default();
            partition.index = index;
            partition.base_offset = -1;
            partition.log_append_time_ms = -1;
            partition.log_start_offset = -1;
            let error = match outcome {
                Outcome::Error(code, message) => Some((code, message)),
                Outcome::RecordErrors { owner, topic, errors } => {
                    // As Kafka: the records at fault by index, a summary of
                    // the first three, and the partition's log start.
                    let summary: Vec<String> = errors
                        .iter()
                        .take(3)
                        .map(|(batch_index, message)| {
                            format!("RecordError(batchIndex={batch_index}, message='{message} in topic partition {topic}-{index}')")
                        })
                        .collect();
                    let message = format!(
                        "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
                        errors.len(),
                        summary.join(", ")
                    );
                    if version >= RECORD_ERRORS_VERSION_MIN {
                        partition.record_errors = errors
                            .iter()
                            .map(|(batch_index, message)| {
                                let mut error = BatchIndexAndErrorMessage::default();
                                error.batch_index = *batch_index;
                                error.batch_index_error_message = Some(str_bytes(&format!(
                                    "{message} in topic partition {topic}-{index}"
                                )));
                                error
                            })
                            .collect();
                    }
                    let call = ShardCall::ListOffset {
                        topic,
                        partition: index,
                        timestamp: -2,
                        isolation: crate::log::read::Isolation::ReadUncommitted,
                    };
                    if let ShardReply::Offset(Ok((log_start_offset, _))) = shard.call(owner, call).await {
                        partition.log_start_offset = log_start_offset;
                    }
                    Some((error_code::INVALID_RECORD, message))
                }
                Outcome::Pending(task) => match task.await {
                    ShardReply::Appended(Ok(appended)) => {
                        appended_any = true;
                        partition.base_offset = appended.base_offset;
                        partition.log_append_time_ms = appended.log_append_time_ms;
                        partition.log_start_offset = appended.log_start_offset;
                        None
                    }
                    ShardReply::Appended(Err(e)) => Some(log_error(&e)),
                    ShardReply::UnknownPartition => Some((
                        error_code::UNKNOWN_TOPIC_OR_PARTITION,
                        "partition is not on its shard".into(),
                    )),
                    _ => Some((
                        error_code::NOT_LEADER_OR_FOLLOWER,
                        "owning shard unavailable".into(),
                    )),
                },
            };
            if let Some((code, message)) = error {
                if acks == 0 {
                    crate::warn_limited!(
                        "acks=0 produce failed",
                        "acks=0 produce to {}-{index} failed: {message}",
                        name.0
                    );
                }
                partition.error_code = code;
                partition.error_message = Some(str_bytes(&message));
                shard
                    .metrics
                    .borrow_mut()
                    .count_error(ApiKey::Produce as i16, code);
            }
            topic_response.partition_responses.push(partition);
        }
        response.responses.push(topic_response);
    }
    let waited_us =
        (acks != 0 && appended_any).then(|| u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
    shard.catch_up_pacer.note_produce(crate::log::now_ms(), waited_us);
    (acks != 0).then_some(response)
}

enum Outcome {
    Error(i16, String),
    /// Records of a valid batch refused one by one (index in the batch,
    /// why): INVALID_RECORD with Kafka's per-record details.
    RecordErrors {
        owner: usize,
        topic: String,
        errors: Vec<(i32, String)>,
    },
    Pending(glommio::Task<ShardReply>),
}

/// Why a batch is refused before it reaches its partition.
enum Refusal {
    /// The whole batch: error code and message.
    Batch(i16, String),
    /// Some of its records: (index in the batch, why).
    Records(Vec<(i32, String)>),
}

/// First Produce version whose response carries `record_errors`.
const RECORD_ERRORS_VERSION_MIN: i16 = 8;

fn validate(
    records: Option<&Bytes>,
    max_message_bytes: u64,
    transactional_request: bool,
    compacted: bool,
) -> Result<(Bytes, crate::protocol::record_batch::BatchHeader), Refusal> {
    let Some(records) = records else {
        return Err(Refusal::Batch(
            error_code::INVALID_RECORD,
            "records are null".into(),
        ));
    };
    let max = usize::try_from(max_message_bytes).unwrap_or(usize::MAX);
    let header = validate_produced_batch(records, max).map_err(|e| {
        let code = match e {
            BatchError::TooLarge { .. } => error_code::MESSAGE_TOO_LARGE,
            BatchError::BadMagic { .. }
            | BatchError::NotExactlyOneBatch
            | BatchError::UnknownCompression { .. } => error_code::INVALID_RECORD,
            _ => error_code::CORRUPT_MESSAGE,
        };
        Refusal::Batch(code, e.to_string())
    })?;
    if header.is_control() {
        return Err(Refusal::Batch(
            error_code::INVALID_RECORD,
            "control batches are written by the broker, not produced".into(),
        ));
    }
    if header.is_transactional() && (!transactional_request || header.producer_id < 0) {
        return Err(Refusal::Batch(
            error_code::INVALID_RECORD,
            "a transactional batch needs a producer id and a request with a transactional id".into(),
        ));
    }
    if header.producer_id >= 0 && (header.base_sequence < 0 || header.producer_epoch < 0) {
        return Err(Refusal::Batch(
            error_code::INVALID_RECORD,
            format!(
                "producer {} sent epoch {} sequence {}: an idempotent batch needs both",
                header.producer_id, header.producer_epoch, header.base_sequence
            ),
        ));
    }
    if compacted {
        // As Kafka: compaction keeps the last record per key, so a record
        // without one cannot be kept. Compressed batches are decompressed
        // (bounded) for this check only.
        let section = records_section(records, &header, DECOMPRESSED_RECORDS_BYTES_MAX)
            .map_err(|e| Refusal::Batch(error_code::CORRUPT_MESSAGE, e))?;
        let mut keyless = Vec::new();
        for (index, record) in records_in(&section, &header).enumerate() {
            let record = record.map_err(|e| Refusal::Batch(error_code::CORRUPT_MESSAGE, e.to_string()))?;
            if record.key.is_none() {
                let index = i32::try_from(index).expect("records of one batch fit i32");
                keyless.push((
                    index,
                    "Compacted topic cannot accept message without key".to_string(),
                ));
            }
        }
        if !keyless.is_empty() {
            return Err(Refusal::Records(keyless));
        }
    }
    Ok((records.clone(), header))
}

pub fn log_error(error: &LogError) -> (i16, String) {
    let code = match error {
        LogError::OffsetOutOfRange { .. } => error_code::OFFSET_OUT_OF_RANGE,
        LogError::Io { .. } | LogError::Offline { .. } => error_code::KAFKA_STORAGE_ERROR,
        LogError::Producer(ProducerError::StaleEpoch { .. }) => error_code::INVALID_PRODUCER_EPOCH,
        LogError::Producer(ProducerError::OutOfOrder { .. }) => error_code::OUT_OF_ORDER_SEQUENCE_NUMBER,
    };
    (code, error.to_string())
}
