//! AlterConfigs (key 33), versions 0-2: replaces a topic's whole set of
//! config overrides. Runs on the connection's shard; the change itself is
//! made by shard 0, the metadata writer (`shard::admin`), which validates,
//! persists and publishes it: every shard's logs take the new settings
//! without a restart. IncrementalAlterConfigs shares [`alter`].

use std::{collections::BTreeMap, rc::Rc};

use kafka_protocol::{
    messages::{
        alter_configs_response::AlterConfigsResourceResponse, AlterConfigsRequest, AlterConfigsResponse,
    },
    protocol::StrBytes,
};

use super::{
    admin, admin_result,
    describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC},
    str_bytes,
};
use crate::{
    metadata::topic_config::ConfigEdit, protocol::error_code, shard::messages::AdminCall, shard::Shard,
};

/// Kafka's messages for requests it refuses as INVALID_REQUEST.
pub const DUPLICATE_KEYS: &str = "Error due to duplicate config keys";

pub fn null_values(names: &[String]) -> String {
    format!("Null value not supported for : {}", names.join(", "))
}

pub async fn handle(shard: &Rc<Shard>, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let resources = request
        .resources
        .iter()
        .map(|resource| {
            let mut configs = BTreeMap::new();
            let mut nulls = Vec::new();
            let mut duplicated = false;
            for config in &resource.configs {
                match &config.value {
                    Some(value) => {
                        duplicated |= configs
                            .insert(config.name.to_string(), value.to_string())
                            .is_some();
                    }
                    None => nulls.push(config.name.to_string()),
                }
            }
            let edit = if duplicated {
                Err(DUPLICATE_KEYS.to_string())
            } else if nulls.is_empty() {
                Ok(ConfigEdit::Replace(configs))
            } else {
                Err(null_values(&nulls))
            };
            (resource.resource_type, resource.resource_name.to_string(), edit)
        })
        .collect();
    let mut response = AlterConfigsResponse::default();
    for ((resource_type, name), (error_code, message)) in alter(shard, resources, request.validate_only).await
    {
        let mut result = AlterConfigsResourceResponse::default();
        result.resource_type = resource_type;
        result.resource_name = str_bytes(&name);
        result.error_code = error_code;
        result.error_message = message;
        response.responses.push(result);
    }
    response
}

/// Applies config edits: topics through shard 0, everything else refused.
/// `resources` are (resource type, name, the edit or why the request is
/// invalid); answers (error code, message) per resource, in order.
pub async fn alter(
    shard: &Rc<Shard>,
    resources: Vec<(i8, String, Result<ConfigEdit, String>)>,
    validate_only: bool,
) -> Vec<((i8, String), (i16, Option<StrBytes>))> {
    let duplicated = |resource_type: i8, name: &str| {
        resources
            .iter()
            .filter(|(t, n, _)| *t == resource_type && n == name)
            .count()
            > 1
    };
    let topic_edits: Vec<(String, ConfigEdit)> = resources
        .iter()
        .filter(|(t, name, _)| *t == RESOURCE_TOPIC && !duplicated(*t, name))
        .filter_map(|(_, name, edit)| edit.as_ref().ok().map(|edit| (name.clone(), edit.clone())))
        .collect();
    let results = if topic_edits.is_empty() {
        Vec::new()
    } else {
        admin(
            shard,
            AdminCall::AlterConfigs {
                edits: topic_edits,
                validate_only,
            },
        )
        .await
    };
    let invalid = |message: String| (error_code::INVALID_REQUEST, Some(str_bytes(&message)));
    resources
        .iter()
        .map(|(resource_type, name, edit)| {
            let answer = match (resource_type, edit) {
                _ if duplicated(*resource_type, name) => {
                    invalid(format!("resource '{name}' appears more than once in the request"))
                }
                (_, Err(message)) => invalid(message.clone()),
                (&RESOURCE_TOPIC, Ok(_)) => admin_result(&results, name),
                (&RESOURCE_BROKER, Ok(_)) => invalid(
                    "weir's broker configs are static: set them at start (flags or the TOML file)".into(),
                ),
                (other, Ok(_)) => invalid(format!("resource type {other} is not supported")),
            };
            ((*resource_type, name.clone()), answer)
        })
        .collect()
}
