//! CreatePartitions (key 37), versions 0-3: grow a topic; new partitions are
//! placed on the least-loaded shards by shard 0.

use std::rc::Rc;

use kafka_protocol::messages::{
    create_partitions_response::CreatePartitionsTopicResult, CreatePartitionsRequest,
    CreatePartitionsResponse,
};

use super::{admin, admin_result, str_bytes};
use crate::{
    protocol::error_code,
    shard::{messages::AdminCall, Shard},
};

pub async fn handle(shard: &Rc<Shard>, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let with_assignments: Vec<String> = request
        .topics
        .iter()
        .filter(|t| t.assignments.is_some())
        .map(|t| t.name.0.to_string())
        .collect();
    let topics: Vec<(String, i32)> = request
        .topics
        .iter()
        .filter(|t| t.assignments.is_none())
        .map(|t| (t.name.0.to_string(), t.count))
        .collect();
    let results = if topics.is_empty() {
        Vec::new()
    } else {
        admin(
            shard,
            AdminCall::CreatePartitions {
                topics,
                validate_only: request.validate_only,
            },
        )
        .await
    };
    let mut response = CreatePartitionsResponse::default();
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let mut result = CreatePartitionsTopicResult::default();
        result.name = topic.name.clone();
        if with_assignments.contains(&name) {
            result.error_code = error_code::INVALID_REPLICA_ASSIGNMENT;
            result.error_message = Some(str_bytes(
                "manual assignment is not supported: weir places partitions on shards",
            ));
        } else {
            (result.error_code, result.error_message) = admin_result(&results, &name);
        }
        response.results.push(result);
    }
    response
}
