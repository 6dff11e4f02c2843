//! IncrementalAlterConfigs (key 44), versions 0-1: SET, DELETE, APPEND and
//! SUBTRACT on named topic configs, validated as a whole on shard 0 (see
//! `alter_configs::alter` and `metadata::topic_config::apply_edit`).

use std::rc::Rc;

use kafka_protocol::messages::{
    incremental_alter_configs_response::AlterConfigsResourceResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};

use super::{
    alter_configs::{alter, null_values, DUPLICATE_KEYS},
    str_bytes,
};
use crate::{
    metadata::topic_config::{ConfigEdit, ConfigOp},
    shard::Shard,
};

/// `config_operation` of DELETE, the one op without a value.
const OP_DELETE: i8 = 1;

pub async fn handle(
    shard: &Rc<Shard>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let resources = request
        .resources
        .iter()
        .map(|resource| {
            let edit = (|| {
                let mut ops = Vec::with_capacity(resource.configs.len());
                for config in &resource.configs {
                    let name = config.name.to_string();
                    if ops.iter().any(|(seen, _)| *seen == name) {
                        return Err(DUPLICATE_KEYS.to_string());
                    }
                    if config.value.is_none() && config.config_operation != OP_DELETE {
                        return Err(null_values(&[name]));
                    }
                    let value = config.value.as_ref().map(|v| v.to_string());
                    let op = ConfigOp::from_code(config.config_operation, value)
                        .ok_or_else(|| format!("unknown config operation {}", config.config_operation))?;
                    ops.push((name, op));
                }
                Ok(ConfigEdit::Incremental(ops))
            })();
            (resource.resource_type, resource.resource_name.to_string(), edit)
        })
        .collect();
    let mut response = IncrementalAlterConfigsResponse::default();
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
