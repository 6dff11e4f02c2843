//! DescribeConfigs (key 32), versions 1-4: topic configs weir honours and
//! the broker settings that correspond to Kafka broker configs (resource
//! name = this node's id; the empty name, Kafka's cluster-wide dynamic
//! defaults, has no entries since nothing is set dynamically).

use std::rc::Rc;

use kafka_protocol::messages::{
    describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult},
    DescribeConfigsRequest, DescribeConfigsResponse,
};

use super::{
    create_topics::{CONFIG_SOURCE_DEFAULT, CONFIG_SOURCE_TOPIC},
    str_bytes,
};
use crate::{metadata::TopicConfig, protocol::error_code, shard::Shard};

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const CONFIG_SOURCE_STATIC_BROKER: i8 = 4;
/// ConfigType values of DescribeConfigs v3+ (`config_type`).
const CONFIG_TYPE_BOOLEAN: i8 = 1;
const CONFIG_TYPE_STRING: i8 = 2;
const CONFIG_TYPE_INT: i8 = 3;
const CONFIG_TYPE_LONG: i8 = 5;
const CONFIG_TYPE_LIST: i8 = 7;
/// First version whose entries carry `config_type`.
const CONFIG_TYPE_VERSION_MIN: i16 = 3;

/// The type Kafka declares for each config weir reports (its ConfigDef), so
/// tools parse and show values as they do for Kafka.
fn config_type(key: &str) -> i8 {
    match key {
        "auto.create.topics.enable" => CONFIG_TYPE_BOOLEAN,
        "cleanup.policy" => CONFIG_TYPE_LIST,
        "segment.bytes"
        | "max.message.bytes"
        | "broker.id"
        | "log.segment.bytes"
        | "message.max.bytes"
        | "num.partitions"
        | "socket.request.max.bytes" => CONFIG_TYPE_INT,
        "segment.ms" | "log.roll.ms" => CONFIG_TYPE_LONG,
        _ => CONFIG_TYPE_STRING,
    }
}

pub fn handle(shard: &Rc<Shard>, request: DescribeConfigsRequest, version: i16) -> DescribeConfigsResponse {
    let metadata = shard.metadata();
    let mut response = DescribeConfigsResponse::default();
    for resource in &request.resources {
        let mut result = DescribeConfigsResult::default();
        result.resource_type = resource.resource_type;
        result.resource_name = resource.resource_name.clone();
        let name = resource.resource_name.to_string();
        let entries: Vec<(String, String, i8)> = match resource.resource_type {
            RESOURCE_TOPIC => match metadata.topic(&name) {
                Some(topic) => TopicConfig::describe(&shard.config, &topic.configs)
                    .into_iter()
                    .map(|(key, value, is_set)| {
                        (
                            key.to_string(),
                            value,
                            if is_set {
                                CONFIG_SOURCE_TOPIC
                            } else {
                                CONFIG_SOURCE_DEFAULT
                            },
                        )
                    })
                    .collect(),
                None => {
                    result.error_code = error_code::UNKNOWN_TOPIC_OR_PARTITION;
                    result.error_message = Some(str_bytes(&format!("no topic '{name}'")));
                    Vec::new()
                }
            },
            // The empty name is the cluster-wide dynamic defaults, which
            // Kafka answers with only what was set dynamically (nothing can
            // be, here): no entries, no error.
            RESOURCE_BROKER if name.is_empty() => Vec::new(),
            RESOURCE_BROKER if name == shard.config.node_id.to_string() => shard
                .config
                .broker_configs()
                .into_iter()
                .map(|(key, value)| (key.to_string(), value, CONFIG_SOURCE_STATIC_BROKER))
                .collect(),
            RESOURCE_BROKER => {
                result.error_code = error_code::INVALID_REQUEST;
                result.error_message = Some(str_bytes(&format!("this is broker {}", shard.config.node_id)));
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
            .filter(|(key, _, _)| wanted(key))
            .map(|(key, value, source)| {
                let mut config = DescribeConfigsResourceResult::default();
                if version >= CONFIG_TYPE_VERSION_MIN {
                    config.config_type = config_type(&key);
                }
                config.name = str_bytes(&key);
                config.value = Some(str_bytes(&value));
                config.config_source = source;
                config.read_only = resource.resource_type == RESOURCE_BROKER;
                config
            })
            .collect();
        response.results.push(result);
    }
    response
}
