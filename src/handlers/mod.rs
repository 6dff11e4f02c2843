//! Kafka API handlers, one file per API, and the table of versions weir
//! serves. A handler runs on the shard that accepted the connection; it
//! routes partition work to the owning shard through [`Shard::call`] and
//! never holds shard state across an `.await`.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod api_versions;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_producers;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod end_txn;
pub mod errors;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod produce;
pub mod sync_group;
pub mod txn_offset_commit;

use std::rc::Rc;

use kafka_protocol::{
    messages::{ApiKey, RequestKind, ResponseKind},
    protocol::StrBytes,
};

use crate::{
    metrics::{micros, Stage},
    protocol::{self, error_code, Part, Request},
    shard::{
        messages::{AdminCall, AdminResult, ShardCall, ShardReply},
        Shard,
    },
};

/// (API, lowest version advertised, highest version advertised). Produce
/// advertises 0 because librdkafka requires it; versions 0-2 (old message
/// formats) are refused by closing the connection.
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 12),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::AddPartitionsToTxn, 0, 4),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 4),
    (ApiKey::TxnOffsetCommit, 0, 4),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::DescribeTopicPartitions, 0, 0),
];

/// Lowest Produce version weir can decode (record batch v2).
pub const PRODUCE_VERSION_MIN_DECODABLE: i16 = 3;

/// Whether `version` of `api_key` is one weir decodes.
pub fn is_supported(api_key: ApiKey, version: i16) -> bool {
    let decodable_min = if api_key == ApiKey::Produce {
        PRODUCE_VERSION_MIN_DECODABLE
    } else {
        i16::MIN
    };
    SUPPORTED_APIS
        .iter()
        .any(|&(key, min, max)| key == api_key && version >= min.max(decodable_min) && version <= max)
}

/// Handles one decoded request. The response frame comes as parts (record
/// batches are not joined); `None` when no response is sent (acks=0).
pub async fn handle(shard: Rc<Shard>, request: Request) -> Result<Option<Vec<Part>>, String> {
    let version = request.header.request_api_version;
    let correlation_id = request.header.correlation_id;
    let api_key = request.api_key;
    let response = match request.body {
        RequestKind::ApiVersions(body) => ResponseKind::ApiVersions(api_versions::handle(&body)),
        RequestKind::Metadata(body) => ResponseKind::Metadata(metadata::handle(&shard, body, version).await),
        RequestKind::Produce(body) => match produce::handle(&shard, body, version).await {
            Some(response) => ResponseKind::Produce(response),
            None => return Ok(None),
        },
        RequestKind::Fetch(body) => {
            let response = fetch::handle(&shard, body, version).await;
            return Ok(Some(protocol::fetch_response::encode(
                version,
                correlation_id,
                &response,
            )));
        }
        RequestKind::ListOffsets(body) => {
            ResponseKind::ListOffsets(list_offsets::handle(&shard, body, version).await)
        }
        RequestKind::CreateTopics(body) => {
            ResponseKind::CreateTopics(create_topics::handle(&shard, body, version).await)
        }
        RequestKind::DeleteTopics(body) => {
            ResponseKind::DeleteTopics(delete_topics::handle(&shard, body).await)
        }
        RequestKind::CreatePartitions(body) => {
            ResponseKind::CreatePartitions(create_partitions::handle(&shard, body).await)
        }
        RequestKind::DescribeConfigs(body) => {
            ResponseKind::DescribeConfigs(describe_configs::handle(&shard, body, version))
        }
        RequestKind::AlterConfigs(body) => {
            ResponseKind::AlterConfigs(alter_configs::handle(&shard, body).await)
        }
        RequestKind::IncrementalAlterConfigs(body) => {
            ResponseKind::IncrementalAlterConfigs(incremental_alter_configs::handle(&shard, body).await)
        }
        RequestKind::DeleteRecords(body) => {
            ResponseKind::DeleteRecords(delete_records::handle(&shard, body).await)
        }
        RequestKind::FindCoordinator(body) => {
            ResponseKind::FindCoordinator(find_coordinator::handle(&shard, body, version).await)
        }
        RequestKind::JoinGroup(body) => {
            let client_id = request.header.client_id.as_deref().unwrap_or("").to_string();
            ResponseKind::JoinGroup(
                join_group::handle(&shard, body, version, client_id, request.client_host).await,
            )
        }
        RequestKind::SyncGroup(body) => {
            ResponseKind::SyncGroup(sync_group::handle(&shard, body, version).await)
        }
        RequestKind::Heartbeat(body) => ResponseKind::Heartbeat(heartbeat::handle(&shard, body).await),
        RequestKind::LeaveGroup(body) => {
            ResponseKind::LeaveGroup(leave_group::handle(&shard, body, version).await)
        }
        RequestKind::OffsetCommit(body) => {
            ResponseKind::OffsetCommit(offset_commit::handle(&shard, body).await)
        }
        RequestKind::OffsetFetch(body) => {
            ResponseKind::OffsetFetch(offset_fetch::handle(&shard, body, version).await)
        }
        RequestKind::DescribeGroups(body) => {
            ResponseKind::DescribeGroups(describe_groups::handle(&shard, body, version).await)
        }
        RequestKind::ListGroups(body) => ResponseKind::ListGroups(list_groups::handle(&shard, body).await),
        RequestKind::DeleteGroups(body) => {
            ResponseKind::DeleteGroups(delete_groups::handle(&shard, body).await)
        }
        RequestKind::OffsetDelete(body) => {
            ResponseKind::OffsetDelete(offset_delete::handle(&shard, body).await)
        }
        RequestKind::ConsumerGroupHeartbeat(body) => {
            let client_id = request.header.client_id.as_deref().unwrap_or("").to_string();
            ResponseKind::ConsumerGroupHeartbeat(
                consumer_group_heartbeat::handle(&shard, body, client_id, request.client_host).await,
            )
        }
        RequestKind::ConsumerGroupDescribe(body) => {
            ResponseKind::ConsumerGroupDescribe(consumer_group_describe::handle(&shard, body).await)
        }
        RequestKind::InitProducerId(body) => {
            ResponseKind::InitProducerId(init_producer_id::handle(&shard, body).await)
        }
        RequestKind::AddPartitionsToTxn(body) => {
            ResponseKind::AddPartitionsToTxn(add_partitions_to_txn::handle(&shard, body, version).await)
        }
        RequestKind::AddOffsetsToTxn(body) => {
            ResponseKind::AddOffsetsToTxn(add_offsets_to_txn::handle(&shard, body).await)
        }
        RequestKind::EndTxn(body) => ResponseKind::EndTxn(end_txn::handle(&shard, body).await),
        RequestKind::TxnOffsetCommit(body) => {
            ResponseKind::TxnOffsetCommit(txn_offset_commit::handle(&shard, body).await)
        }
        RequestKind::DescribeProducers(body) => {
            ResponseKind::DescribeProducers(describe_producers::handle(&shard, body).await)
        }
        RequestKind::DescribeTransactions(body) => {
            ResponseKind::DescribeTransactions(describe_transactions::handle(&shard, body).await)
        }
        RequestKind::ListTransactions(body) => {
            ResponseKind::ListTransactions(list_transactions::handle(&shard, body).await)
        }
        RequestKind::DescribeCluster(body) => {
            ResponseKind::DescribeCluster(describe_cluster::handle(&shard, &body, version))
        }
        RequestKind::DescribeTopicPartitions(body) => {
            ResponseKind::DescribeTopicPartitions(describe_topic_partitions::handle(&shard, &body))
        }
        _ => return Err(format!("{api_key:?} is not served")),
    };
    {
        let mut metrics = shard.metrics.borrow_mut();
        errors::each_error_code(&response, |code| metrics.count_error(api_key as i16, code));
    }
    protocol::encode_response(api_key, version, correlation_id, &response)
        .map(|frame| Some(vec![Part::Bytes(frame)]))
}

/// Sends an admin call to shard 0 and returns its per-topic results.
pub async fn admin(shard: &Rc<Shard>, call: AdminCall) -> Vec<AdminResult> {
    match shard.call(0, ShardCall::Admin(call)).await {
        ShardReply::Admin(results) => results,
        _ => Vec::new(),
    }
}

/// The result for `name` in admin results, or an error when shard 0 did not
/// answer for it.
pub fn admin_result(results: &[AdminResult], name: &str) -> (i16, Option<StrBytes>) {
    match results.iter().find(|r| r.name == name) {
        Some(result) => (
            result.error_code,
            result.message.clone().map(StrBytes::from_string),
        ),
        None => (
            error_code::UNKNOWN_SERVER_ERROR,
            Some(StrBytes::from_static_str(
                "the metadata writer (shard 0) did not answer",
            )),
        ),
    }
}

/// Runs a group call on the coordinator shard of `group_id`: the owner of
/// its `__consumer_offsets` partition. Err: the error code to answer with.
pub async fn call_coordinator(
    shard: &Rc<Shard>,
    group_id: &str,
    call: crate::group::GroupCall,
) -> Result<crate::group::GroupReply, i16> {
    let owner = coordinator_shard(shard, crate::group::offsets_topic(&shard.config), group_id).await?;
    let api = call.api_key();
    match timed_coordinator_call(shard, api, owner, ShardCall::Group(call)).await {
        ShardReply::Group(reply) => Ok(reply),
        _ => Err(error_code::COORDINATOR_NOT_AVAILABLE),
    }
}

/// Runs a transaction call on the coordinator shard of `transactional_id`:
/// the owner of its `__transaction_state` partition.
pub async fn call_txn_coordinator(
    shard: &Rc<Shard>,
    transactional_id: &str,
    call: crate::txn::TxnCall,
) -> Result<crate::txn::TxnReply, i16> {
    let owner = coordinator_shard(
        shard,
        crate::txn::txn_state_topic(&shard.config),
        transactional_id,
    )
    .await?;
    let api = call.api_key();
    match timed_coordinator_call(shard, api, owner, ShardCall::Txn(call)).await {
        ShardReply::Txn(reply) => Ok(reply),
        _ => Err(error_code::COORDINATOR_NOT_AVAILABLE),
    }
}

/// A call to a coordinator shard, its round trip recorded as `api`'s
/// `coordinator` stage.
async fn timed_coordinator_call(shard: &Rc<Shard>, api: ApiKey, owner: usize, call: ShardCall) -> ShardReply {
    let started = std::time::Instant::now();
    let reply = shard.call(owner, call).await;
    shard
        .metrics
        .borrow_mut()
        .record(api as i16, Stage::Coordinator, micros(started.elapsed()));
    reply
}

/// The shard owning `key`'s partition of the internal topic `topic`,
/// creating the topic on first use (shard 0 publishes it to every shard
/// before answering), as Kafka does.
pub async fn coordinator_shard(
    shard: &Rc<Shard>,
    topic: crate::shard::messages::NewTopic,
    key: &str,
) -> Result<usize, i16> {
    let name = topic.name.clone();
    let mut metadata = shard.metadata();
    if metadata.topic(&name).is_none() {
        let results = admin(
            shard,
            AdminCall::CreateTopics {
                topics: vec![topic],
                validate_only: false,
            },
        )
        .await;
        let (code, message) = admin_result(&results, &name);
        if code != error_code::NONE && code != error_code::TOPIC_ALREADY_EXISTS {
            crate::warn_limited!(
                "internal topic creation failed",
                "creating {name}: error {code} {}",
                message.as_deref().unwrap_or("")
            );
            return Err(error_code::COORDINATOR_NOT_AVAILABLE);
        }
        metadata = shard.metadata();
    }
    let topic = metadata
        .topic(&name)
        .ok_or(error_code::COORDINATOR_NOT_AVAILABLE)?;
    let partition = crate::group::partition_for(key, topic.partition_count());
    topic
        .shard_of(partition)
        .ok_or(error_code::COORDINATOR_NOT_AVAILABLE)
}

pub fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

pub fn uuid(bytes: [u8; 16]) -> uuid::Uuid {
    uuid::Uuid::from_bytes(bytes)
}
