//! Shard 0's admin operations: the single writer of cluster metadata.
//!
//! Every change follows one order so a crash at any point is safe:
//! validate → persist the new metadata (fsync + rename) → open the new logs
//! on their owning shards → publish the snapshot to every shard → reply.
//! Deletion publishes first (nobody routes to the topic any more) and removes
//! files last. Operations run one at a time under shard 0's admin permit.

use std::{rc::Rc, sync::Arc};

use super::{
    messages::{AdminCall, AdminResult, NewTopic, ShardCall, ShardReply},
    Shard,
};
use crate::{
    limits::TOPIC_PARTITIONS_MAX,
    metadata::{self, store, topic_config, ClusterMetadata, TopicMetadata},
    protocol::error_code,
};

pub async fn execute(shard: &Rc<Shard>, call: AdminCall) -> Vec<AdminResult> {
    assert_eq!(shard.id, 0, "shard 0 is the metadata writer");
    match call {
        AdminCall::CreateTopics {
            topics,
            validate_only,
        } => create_topics(shard, topics, validate_only).await,
        AdminCall::DeleteTopics { names } => delete_topics(shard, names).await,
        AdminCall::CreatePartitions {
            topics,
            validate_only,
        } => create_partitions(shard, topics, validate_only).await,
        AdminCall::AlterConfigs { edits, validate_only } => alter_configs(shard, edits, validate_only).await,
    }
}

fn result(name: &str, error_code: i16, message: Option<String>) -> AdminResult {
    AdminResult {
        name: name.to_string(),
        error_code,
        message,
    }
}

fn validate_new_topic(
    shard: &Shard,
    metadata: &ClusterMetadata,
    topic: &NewTopic,
) -> Result<i32, AdminResult> {
    let fail = |code, message: String| Err(result(&topic.name, code, Some(message)));
    if let Err(message) = metadata::validate_topic_name(&topic.name) {
        return fail(error_code::INVALID_TOPIC_EXCEPTION, message);
    }
    if metadata.topic(&topic.name).is_some() {
        return fail(
            error_code::TOPIC_ALREADY_EXISTS,
            format!("topic '{}' already exists", topic.name),
        );
    }
    if topic.manual_assignment {
        return fail(
            error_code::INVALID_REPLICA_ASSIGNMENT,
            "manual replica assignment is not supported: weir places partitions on shards".into(),
        );
    }
    if topic.replication_factor != -1 && topic.replication_factor != 1 {
        return fail(
            error_code::INVALID_REPLICATION_FACTOR,
            format!(
                "replication factor {} > 1 on a single-node broker",
                topic.replication_factor
            ),
        );
    }
    let partitions = if topic.partitions == -1 {
        shard.config.default_partitions
    } else {
        topic.partitions
    };
    if !(1..=TOPIC_PARTITIONS_MAX).contains(&partitions) {
        return fail(
            error_code::INVALID_PARTITIONS,
            format!("partitions must be within 1..={TOPIC_PARTITIONS_MAX}"),
        );
    }
    for (key, value) in &topic.configs {
        if let Err(message) = topic_config::validate(key, value) {
            return fail(error_code::INVALID_CONFIG, message);
        }
    }
    Ok(partitions)
}

async fn create_topics(shard: &Rc<Shard>, topics: Vec<NewTopic>, validate_only: bool) -> Vec<AdminResult> {
    let current = shard.metadata();
    let mut next = ClusterMetadata::clone(&current);
    let mut results = Vec::with_capacity(topics.len());
    let mut created = Vec::new();
    for topic in &topics {
        match validate_new_topic(shard, &next, topic) {
            Err(failure) => results.push(failure),
            Ok(_) if validate_only => results.push(result(&topic.name, error_code::NONE, None)),
            Ok(partitions) => {
                let shards = next.place_partitions(shard.count, partitions as usize);
                next.topics.insert(
                    topic.name.clone(),
                    TopicMetadata {
                        id: metadata::new_topic_id(),
                        shards,
                        configs: topic.configs.clone(),
                    },
                );
                created.push(topic.name.clone());
                results.push(result(&topic.name, error_code::NONE, None));
            }
        }
    }
    if created.is_empty() {
        return results;
    }
    let opened: Vec<(String, i32)> = created.iter().map(|name| (name.clone(), 0)).collect();
    if let Err(message) = commit(shard, next, &opened).await {
        fail_storage(&mut results, &created, &message);
    }
    results
}

async fn create_partitions(
    shard: &Rc<Shard>,
    topics: Vec<(String, i32)>,
    validate_only: bool,
) -> Vec<AdminResult> {
    let current = shard.metadata();
    let mut next = ClusterMetadata::clone(&current);
    let mut results = Vec::with_capacity(topics.len());
    let mut grown = Vec::new();
    for (name, count) in &topics {
        let Some(topic) = next.topic(name) else {
            results.push(result(
                name,
                error_code::UNKNOWN_TOPIC_OR_PARTITION,
                Some(format!("no topic '{name}'")),
            ));
            continue;
        };
        let existing = topic.partition_count();
        if name == crate::group::OFFSETS_TOPIC || name == crate::txn::TXN_STATE_TOPIC {
            // Groups are placed by hash over the partition count.
            results.push(result(
                name,
                error_code::INVALID_REQUEST,
                Some("the partitions of an internal topic cannot change".into()),
            ));
            continue;
        }
        if *count <= existing || *count > TOPIC_PARTITIONS_MAX {
            results.push(result(
                name,
                error_code::INVALID_PARTITIONS,
                Some(format!(
                    "topic has {existing} partitions; new count must be within {}..={TOPIC_PARTITIONS_MAX}",
                    existing + 1
                )),
            ));
            continue;
        }
        if !validate_only {
            let added = next.place_partitions(shard.count, (*count - existing) as usize);
            if let Some(topic) = next.topics.get_mut(name) {
                topic.shards.extend(added);
            }
            grown.push(name.clone());
        }
        results.push(result(name, error_code::NONE, None));
    }
    if grown.is_empty() {
        return results;
    }
    let opened: Vec<(String, i32)> = grown
        .iter()
        .map(|name| {
            (
                name.clone(),
                current.topic(name).map_or(0, |t| t.partition_count()),
            )
        })
        .collect();
    if let Err(message) = commit(shard, next, &opened).await {
        fail_storage(&mut results, &grown, &message);
    }
    results
}

/// Replaces the config overrides of topics. Shards apply the new
/// settings to their logs when the snapshot is published.
async fn alter_configs(
    shard: &Rc<Shard>,
    edits: Vec<(String, topic_config::ConfigEdit)>,
    validate_only: bool,
) -> Vec<AdminResult> {
    let current = shard.metadata();
    let mut next = ClusterMetadata::clone(&current);
    let mut results = Vec::with_capacity(edits.len());
    let mut altered = Vec::new();
    for (name, edit) in &edits {
        let Some(topic) = next.topics.get_mut(name) else {
            results.push(result(
                name,
                error_code::UNKNOWN_TOPIC_OR_PARTITION,
                Some(format!("The topic '{name}' does not exist.")),
            ));
            continue;
        };
        match topic_config::apply_edit(&topic.configs, edit) {
            Err(message) => results.push(result(name, error_code::INVALID_CONFIG, Some(message))),
            Ok(configs) => {
                if !validate_only && configs != topic.configs {
                    topic.configs = configs;
                    altered.push(name.clone());
                }
                results.push(result(name, error_code::NONE, None));
            }
        }
    }
    if altered.is_empty() {
        return results;
    }
    if let Err(message) = commit(shard, next, &[]).await {
        fail_storage(&mut results, &altered, &message);
    }
    results
}

/// Persists `next`, opens partitions `first_new_partition..` of each topic
/// on their owners, then publishes `next` to every shard.
async fn commit(
    shard: &Rc<Shard>,
    mut next: ClusterMetadata,
    topics: &[(String, i32)],
) -> Result<(), String> {
    next.version = shard.metadata().version + 1;
    persist(shard, &next).await?;
    for (name, first_new_partition) in topics {
        let first_new_partition = *first_new_partition;
        let Some(topic) = next.topic(name) else { continue };
        for owner in 0..shard.count {
            let partitions: Vec<i32> = (first_new_partition..topic.partition_count())
                .filter(|&p| topic.shard_of(p) == Some(owner))
                .collect();
            if partitions.is_empty() {
                continue;
            }
            let call = ShardCall::OpenLogs {
                topic: name.clone(),
                partitions,
                configs: topic.configs.clone(),
            };
            match shard.call(owner, call).await {
                ShardReply::Done(Ok(())) => {}
                ShardReply::Done(Err(message)) => return Err(message),
                _ => return Err(format!("shard {owner} did not open the logs of '{name}'")),
            }
        }
    }
    publish(shard, next).await;
    Ok(())
}

async fn delete_topics(shard: &Rc<Shard>, names: Vec<String>) -> Vec<AdminResult> {
    let current = shard.metadata();
    let mut next = ClusterMetadata::clone(&current);
    let mut results = Vec::with_capacity(names.len());
    let mut removed = Vec::new();
    for name in &names {
        if name == crate::group::OFFSETS_TOPIC || name == crate::txn::TXN_STATE_TOPIC {
            results.push(result(
                name,
                error_code::INVALID_REQUEST,
                Some("internal topics (committed offsets, transaction state) cannot be deleted".into()),
            ));
            continue;
        }
        match next.topics.remove(name) {
            Some(topic) => {
                removed.push((name.clone(), topic));
                results.push(result(name, error_code::NONE, None));
            }
            None => results.push(result(
                name,
                error_code::UNKNOWN_TOPIC_OR_PARTITION,
                Some(format!("no topic '{name}'")),
            )),
        }
    }
    if removed.is_empty() {
        return results;
    }
    next.version = current.version + 1;
    if let Err(message) = persist(shard, &next).await {
        let names: Vec<String> = removed.iter().map(|(name, _)| name.clone()).collect();
        fail_storage(&mut results, &names, &message);
        return results;
    }
    publish(shard, next).await;
    for (name, topic) in removed {
        for owner in 0..shard.count {
            let partitions: Vec<i32> = (0..topic.partition_count())
                .filter(|&p| topic.shard_of(p) == Some(owner))
                .collect();
            if partitions.is_empty() {
                continue;
            }
            let call = ShardCall::RemoveLogs {
                topic: name.clone(),
                partitions,
            };
            if let ShardReply::Done(Err(message)) = shard.call(owner, call).await {
                log::error!("deleting files of topic '{name}': {message}");
            }
        }
    }
    results
}

/// Persists and publishes the next block of producer ids and returns it.
pub async fn allocate_producer_ids(shard: &Rc<Shard>) -> Result<(i64, i64), String> {
    assert_eq!(shard.id, 0, "shard 0 is the metadata writer");
    let current = shard.metadata();
    let start = current.producer_id_block_end;
    let end = start
        .checked_add(crate::limits::PRODUCER_ID_BLOCK_SIZE)
        .ok_or("producer ids are exhausted")?;
    let mut next = ClusterMetadata::clone(&current);
    next.producer_id_block_end = end;
    next.version = current.version + 1;
    persist(shard, &next).await?;
    publish(shard, next).await;
    Ok((start, end))
}

/// Marks the results of `names` as failed: the metadata change did not land.
fn fail_storage(results: &mut [AdminResult], names: &[String], message: &str) {
    for entry in results.iter_mut().filter(|r| names.contains(&r.name)) {
        entry.error_code = error_code::KAFKA_STORAGE_ERROR;
        entry.message = Some(message.to_string());
    }
}

async fn persist(shard: &Shard, next: &ClusterMetadata) -> Result<(), String> {
    let data_dir = shard.config.data_dir.clone();
    let snapshot = next.clone();
    crate::log::blocking(move || store::save(&data_dir, &snapshot)).await
}

async fn publish(shard: &Rc<Shard>, next: ClusterMetadata) {
    let snapshot = Arc::new(next);
    for target in 0..shard.count {
        if let ShardReply::Unavailable = shard
            .call(target, ShardCall::InstallMetadata(snapshot.clone()))
            .await
        {
            log::error!(
                "shard {target} did not take metadata version {}",
                snapshot.version
            );
        }
    }
}
