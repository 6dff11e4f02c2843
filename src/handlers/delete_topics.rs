//! DeleteTopics (key 20), versions 1-6 (v6 names topics by name or id).

use std::rc::Rc;

use kafka_protocol::messages::{
    delete_topics_response::DeletableTopicResult, DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};

use super::{admin, admin_result, str_bytes};
use crate::{
    protocol::error_code,
    shard::{messages::AdminCall, Shard},
};

pub async fn handle(shard: &Rc<Shard>, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let metadata = shard.metadata();
    // (name if known, topic id as sent)
    let mut targets: Vec<(Option<String>, uuid::Uuid)> = request
        .topic_names
        .iter()
        .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
        .collect();
    for state in &request.topics {
        let name = match &state.name {
            Some(name) => Some(name.0.to_string()),
            None => metadata
                .topic_by_id(state.topic_id.as_bytes())
                .map(|(name, _)| name.clone()),
        };
        targets.push((name, state.topic_id));
    }
    let names: Vec<String> = targets.iter().filter_map(|(name, _)| name.clone()).collect();
    let results = if names.is_empty() {
        Vec::new()
    } else {
        admin(shard, AdminCall::DeleteTopics { names }).await
    };

    let mut response = DeleteTopicsResponse::default();
    for (name, topic_id) in targets {
        let mut result = DeletableTopicResult::default();
        result.topic_id = topic_id;
        match name {
            Some(name) => {
                (result.error_code, result.error_message) = admin_result(&results, &name);
                result.name = Some(TopicName(str_bytes(&name)));
            }
            None => {
                result.error_code = error_code::UNKNOWN_TOPIC_ID;
                result.error_message = Some(str_bytes("no topic with this id"));
            }
        }
        response.responses.push(result);
    }
    response
}
