//! The error codes a response carries, for `weir_errors_total`: every
//! top-level, per-resource and per-partition error code of the responses
//! the dispatcher (`handlers::handle`) encodes, walked once after the
//! handler ran, on the shard that answers the request.
//!
//! Produce and Fetch count their partition errors where they build them
//! (Fetch is encoded without a `ResponseKind`), so they are skipped here.
//! NONE is never counted (`Metrics::count_error`).

use kafka_protocol::messages::ResponseKind;

/// Calls `count` with every error code in `response` (NONE included; the
/// caller skips it).
pub fn each_error_code(response: &ResponseKind, mut count: impl FnMut(i16)) {
    match response {
        ResponseKind::ApiVersions(r) => count(r.error_code),
        ResponseKind::Metadata(r) => {
            count(r.error_code);
            for topic in &r.topics {
                count(topic.error_code);
                topic.partitions.iter().for_each(|p| count(p.error_code));
            }
        }
        ResponseKind::ListOffsets(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| count(p.error_code)),
        ResponseKind::CreateTopics(r) => r.topics.iter().for_each(|t| count(t.error_code)),
        ResponseKind::DeleteTopics(r) => r.responses.iter().for_each(|t| count(t.error_code)),
        ResponseKind::DescribeConfigs(r) => r.results.iter().for_each(|t| count(t.error_code)),
        ResponseKind::AlterConfigs(r) => r.responses.iter().for_each(|t| count(t.error_code)),
        ResponseKind::IncrementalAlterConfigs(r) => r.responses.iter().for_each(|t| count(t.error_code)),
        ResponseKind::DeleteRecords(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| count(p.error_code)),
        ResponseKind::CreatePartitions(r) => r.results.iter().for_each(|t| count(t.error_code)),
        ResponseKind::FindCoordinator(r) => {
            count(r.error_code);
            r.coordinators.iter().for_each(|c| count(c.error_code));
        }
        ResponseKind::JoinGroup(r) => count(r.error_code),
        ResponseKind::SyncGroup(r) => count(r.error_code),
        ResponseKind::Heartbeat(r) => count(r.error_code),
        ResponseKind::LeaveGroup(r) => {
            count(r.error_code);
            r.members.iter().for_each(|m| count(m.error_code));
        }
        ResponseKind::OffsetCommit(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| count(p.error_code)),
        ResponseKind::OffsetFetch(r) => {
            count(r.error_code);
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| count(p.error_code));
            for group in &r.groups {
                count(group.error_code);
                group
                    .topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .for_each(|p| count(p.error_code));
            }
        }
        ResponseKind::DescribeGroups(r) => r.groups.iter().for_each(|g| count(g.error_code)),
        ResponseKind::ListGroups(r) => count(r.error_code),
        ResponseKind::DeleteGroups(r) => r.results.iter().for_each(|g| count(g.error_code)),
        ResponseKind::OffsetDelete(r) => {
            count(r.error_code);
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| count(p.error_code));
        }
        ResponseKind::InitProducerId(r) => count(r.error_code),
        ResponseKind::AddPartitionsToTxn(r) => {
            count(r.error_code);
            let topics = r
                .results_by_transaction
                .iter()
                .flat_map(|t| &t.topic_results)
                .chain(&r.results_by_topic_v3_and_below);
            topics
                .flat_map(|t| &t.results_by_partition)
                .for_each(|p| count(p.partition_error_code));
        }
        ResponseKind::AddOffsetsToTxn(r) => count(r.error_code),
        ResponseKind::EndTxn(r) => count(r.error_code),
        ResponseKind::TxnOffsetCommit(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| count(p.error_code)),
        ResponseKind::DescribeProducers(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| count(p.error_code)),
        ResponseKind::DescribeTransactions(r) => {
            r.transaction_states.iter().for_each(|t| count(t.error_code))
        }
        ResponseKind::ListTransactions(r) => count(r.error_code),
        ResponseKind::DescribeCluster(r) => count(r.error_code),
        ResponseKind::DescribeTopicPartitions(r) => {
            for topic in &r.topics {
                count(topic.error_code);
                topic.partitions.iter().for_each(|p| count(p.error_code));
            }
        }
        ResponseKind::ConsumerGroupHeartbeat(r) => count(r.error_code),
        ResponseKind::ConsumerGroupDescribe(r) => r.groups.iter().for_each(|g| count(g.error_code)),
        // Produce counts its own; everything else is not served.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{
        metadata_response::{MetadataResponsePartition, MetadataResponseTopic},
        MetadataResponse,
    };

    use super::*;

    #[test]
    fn nested_codes_are_all_visited() {
        let response = MetadataResponse::default().with_topics(vec![
            MetadataResponseTopic::default().with_error_code(3),
            MetadataResponseTopic::default()
                .with_partitions(vec![MetadataResponsePartition::default().with_error_code(5)]),
        ]);
        let mut codes = Vec::new();
        each_error_code(&ResponseKind::Metadata(response), |code| codes.push(code));
        codes.retain(|code| *code != 0);
        assert_eq!(codes, vec![3, 5]);
    }
}
