//! CreateTopics (key 19), versions 2-7. Validation and placement happen on
//! shard 0 ([`crate::shard::admin`]); this file translates the request and
//! the per-topic results. Also hosts auto-creation for Metadata and Produce.

use std::rc::Rc;

use kafka_protocol::messages::{
    create_topics_response::{CreatableTopicConfigs, CreatableTopicResult},
    CreateTopicsRequest, CreateTopicsResponse,
};

use super::{admin, admin_result, metadata::default_new_topic, str_bytes, uuid};
use crate::{
    metadata::TopicConfig,
    protocol::error_code,
    shard::{
        messages::{AdminCall, NewTopic},
        Shard,
    },
};

pub async fn handle(shard: &Rc<Shard>, request: CreateTopicsRequest, version: i16) -> CreateTopicsResponse {
    let mut new_topics = Vec::with_capacity(request.topics.len());
    let mut invalid_configs = Vec::new();
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let mut configs = std::collections::BTreeMap::new();
        for config in &topic.configs {
            match &config.value {
                Some(value) => {
                    configs.insert(config.name.to_string(), value.to_string());
                }
                None => invalid_configs.push(name.clone()),
            }
        }
        new_topics.push(NewTopic {
            name,
            partitions: topic.num_partitions,
            replication_factor: topic.replication_factor,
            configs,
            manual_assignment: !topic.assignments.is_empty(),
        });
    }
    new_topics.retain(|t| !invalid_configs.contains(&t.name));
    let results = admin(
        shard,
        AdminCall::CreateTopics {
            topics: new_topics,
            validate_only: request.validate_only,
        },
    )
    .await;
    let metadata = shard.metadata();

    let mut response = CreateTopicsResponse::default();
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let mut result = CreatableTopicResult::default();
        result.name = topic.name.clone();
        if invalid_configs.contains(&name) {
            result.error_code = error_code::INVALID_CONFIG;
            result.error_message = Some(str_bytes("config values must not be null"));
        } else {
            (result.error_code, result.error_message) = admin_result(&results, &name);
        }
        if result.error_code == error_code::NONE && version >= 5 {
            let configs = metadata
                .topic(&name)
                .map(|t| t.configs.clone())
                .unwrap_or_default();
            result.num_partitions = metadata
                .topic(&name)
                .map_or(topic.num_partitions, |t| t.partition_count());
            result.replication_factor = 1;
            result.configs = Some(
                TopicConfig::describe(&shard.config, &configs)
                    .into_iter()
                    .map(|described| {
                        let mut config = CreatableTopicConfigs::default();
                        config.name = str_bytes(described.name);
                        config.value = Some(str_bytes(&described.value));
                        config.config_source = described.source as i8;
                        config
                    })
                    .collect(),
            );
            if let Some(created) = metadata.topic(&name) {
                result.topic_id = uuid(created.id_bytes());
            }
        } else if version >= 5 {
            result.num_partitions = -1;
            result.replication_factor = -1;
        }
        response.topics.push(result);
    }
    response
}

/// Creates topics with broker defaults (auto-creation on Metadata/Produce).
/// Races with another creator are fine: TOPIC_ALREADY_EXISTS is success here.
pub async fn auto_create(shard: &Rc<Shard>, names: Vec<String>) {
    let topics = names.into_iter().map(default_new_topic).collect();
    for result in admin(
        shard,
        AdminCall::CreateTopics {
            topics,
            validate_only: false,
        },
    )
    .await
    {
        if result.error_code != error_code::NONE && result.error_code != error_code::TOPIC_ALREADY_EXISTS {
            crate::warn_limited!(
                "topic auto-creation failed",
                "auto-creating topic '{}': {:?}",
                result.name,
                result.message
            );
        }
    }
}
