//! DescribeConfigs (key 32), versions 1-4: topic configs weir honours and
//! the broker settings that correspond to Kafka broker configs (resource
//! name = this node's id; the empty name, Kafka's cluster-wide dynamic
//! defaults, has no entries since nothing is set dynamically). Each value
//! carries its source (the topic's override, a broker option set at start,
//! or the default) and, when asked, its synonyms (see `topic_config`).

use std::rc::Rc;

use kafka_protocol::messages::{
    describe_configs_response::{
        DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
    },
    DescribeConfigsRequest, DescribeConfigsResponse,
};

use super::str_bytes;
use crate::{
    metadata::{
        topic_config::{ConfigSource, ConfigType, DescribedConfig},
        TopicConfig,
    },
    protocol::error_code,
    shard::Shard,
};

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
/// First version whose entries carry `config_type`.
const CONFIG_TYPE_VERSION_MIN: i16 = 3;

/// The type Kafka declares for each broker config weir reports (its
/// ConfigDef), so tools parse and show values as they do for Kafka.
fn broker_config_type(key: &str) -> ConfigType {
    match key {
        "auto.create.topics.enable" => ConfigType::Boolean,
        "broker.id"
        | "log.segment.bytes"
        | "message.max.bytes"
        | "num.partitions"
        | "socket.request.max.bytes" => ConfigType::Int,
        _ => ConfigType::Long,
    }
}

/// The broker's own settings: all static (set at start), from the config
/// file, the environment or flags, else weir's defaults.
/// Whether a BROKER resource name is one of this node's brokers (its node
/// id, or with `advertise_shards` any shard's).
fn is_local_broker(shard: &Shard, name: &str) -> bool {
    name.parse()
        .is_ok_and(|id| crate::net::advertise::is_local_node(&shard.config, shard.count, id))
}

fn broker_entries(shard: &Shard) -> Vec<DescribedConfig> {
    shard
        .config
        .broker_configs()
        .into_iter()
        .map(|(name, value, option)| {
            let source = if shard.config.explicit.contains(option) {
                ConfigSource::StaticBroker
            } else {
                ConfigSource::Default
            };
            DescribedConfig {
                name,
                value: value.clone(),
                source,
                config_type: broker_config_type(name),
                synonyms: vec![(name, value, source)],
            }
        })
        .collect()
}

pub fn handle(shard: &Rc<Shard>, request: DescribeConfigsRequest, version: i16) -> DescribeConfigsResponse {
    let metadata = shard.metadata();
    let mut response = DescribeConfigsResponse::default();
    for resource in &request.resources {
        let mut result = DescribeConfigsResult::default();
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name.clone();
        let name = resource.resource_name.to_string();
        let entries: Vec<DescribedConfig> = match resource.resource_type {
            RESOURCE_TOPIC => match metadata.topic(&name) {
                Some(topic) => TopicConfig::describe(&shard.config, &topic.configs),
                None => {
                    // Kafka's answer carries an empty message.
                    result.error_code = error_code::UNKNOWN_TOPIC_OR_PARTITION;
                    result.error_message = Some(str_bytes(""));
                    Vec::new()
                }
            },
            // The empty name is the cluster-wide dynamic defaults, which
            // Kafka answers with only what was set dynamically (nothing can
            // be, here): no entries, no error.
            RESOURCE_BROKER if name.is_empty() => Vec::new(),
            RESOURCE_BROKER if is_local_broker(shard, &name) => broker_entries(shard),
            RESOURCE_BROKER => {
                result.error_code = error_code::INVALID_REQUEST;
                let ours = crate::net::advertise::brokers(&shard.config, shard.count);
                let ids: Vec<String> = ours.iter().map(|b| b.node_id.to_string()).collect();
                result.error_message = Some(str_bytes(&format!("this is broker {}", ids.join(", "))));
                Vec::new()
            }
            other => {
                result.error_code = error_code::INVALID_REQUEST;
                result.error_message = Some(str_bytes(&format!("resource type {other} is not supported")));
                Vec::new()
            }
        };
        let wanted = |key: &str| {
            resource
                .configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.iter().any(|k| k.as_str() == key))
        };
        result.configs = entries
            .into_iter()
            .filter(|entry| wanted(entry.name))
            .map(|entry| {
                let mut config = DescribeConfigsResourceResult::default();
                if version >= CONFIG_TYPE_VERSION_MIN {
                    config.config_type = entry.config_type as i8;
                }
                config.name = str_bytes(entry.name);
                config.value = Some(str_bytes(&entry.value));
                config.config_source = entry.source as i8;
                config.read_only = resource.resource_type == RESOURCE_BROKER;
                if request.include_synonyms {
                    config.synonyms = entry
                        .synonyms
                        .iter()
                        .map(|(name, value, source)| {
                            let mut synonym = DescribeConfigsSynonym::default();
                            synonym.name = str_bytes(name);
                            synonym.value = Some(str_bytes(value));
                            synonym.source = *source as i8;
                            synonym
                        })
                        .collect();
                }
                config
            })
            .collect();
        response.results.push(result);
    }
    response
}
