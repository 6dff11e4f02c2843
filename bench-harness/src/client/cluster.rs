//! Discovery: which brokers lead the benchmark topic's partitions, which
//! versions to speak with each, creating the topic when it is missing, and
//! the partitions' offsets.
//!
//! Everything here runs on the main thread through [`BlockingClient`]
//! before (and, for end offsets, after) the measured part of a run. Only
//! standard APIs are used, so the same code drives weir, Kafka or Redpanda.

use std::{
    collections::BTreeMap,
    thread,
    time::{Duration, Instant},
};

use kafka_protocol::{
    messages::{
        create_topics_request::CreatableTopic,
        list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
        metadata_request::MetadataRequestTopic,
        ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, ListOffsetsRequest, ListOffsetsResponse,
        MetadataRequest, MetadataResponse, TopicName,
    },
    protocol::StrBytes,
};
use serde::Serialize;

use super::{
    blocking::BlockingClient,
    errors,
    versions::{self, ApiRange, Versions},
};
use crate::cli::Params;

/// How long discovery waits for a created topic to have leaders.
const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Pause between Metadata polls while waiting for leaders.
const METADATA_RETRY_PAUSE: Duration = Duration::from_millis(100);
/// ListOffsets timestamp for the log start offset.
pub const OFFSET_EARLIEST: i64 = -2;
/// ListOffsets timestamp for the end offset (high watermark).
pub const OFFSET_LATEST: i64 = -1;

/// One broker of the cluster, as Metadata and ApiVersions describe it.
#[derive(Clone, Debug, Serialize)]
pub struct Broker {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    /// `host:port`, what weir-bench connects to.
    pub address: String,
    /// Only known for brokers weir-bench talked to (bootstrap and leaders).
    pub api_versions: Vec<ApiRange>,
    pub api_versions_version: Option<i16>,
    pub versions: Versions,
}

#[derive(Clone, Debug, Serialize)]
pub struct Cluster {
    pub bootstrap: String,
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub brokers: BTreeMap<i32, Broker>,
    pub topic: String,
    /// Leader node id of each partition, by partition index.
    pub leaders: Vec<i32>,
    /// Whether this run created the topic.
    pub created_topic: bool,
    #[serde(skip)]
    client_id: String,
    #[serde(skip)]
    timeout: Duration,
}

impl Cluster {
    pub fn partitions(&self) -> usize {
        self.leaders.len()
    }

    fn connect(&self, broker: &Broker) -> Result<BlockingClient, String> {
        BlockingClient::connect(&broker.address, &self.client_id, self.timeout)
    }

    /// Offsets of every partition for `timestamp` (OFFSET_EARLIEST or
    /// OFFSET_LATEST), asking each partition's leader. A partition that is
    /// still becoming available there (Kafka, just after CreateTopics, see
    /// [`errors::retriable_while_becoming_leader`]) is asked again, for up
    /// to `TOPIC_READY_TIMEOUT`.
    pub fn list_offsets(&self, timestamp: i64) -> Result<Vec<i64>, String> {
        let deadline = Instant::now() + TOPIC_READY_TIMEOUT;
        loop {
            match self.list_offsets_once(timestamp)? {
                Ok(offsets) => return Ok(offsets),
                Err((_, code))
                    if errors::retriable_while_becoming_leader(code) && Instant::now() < deadline =>
                {
                    thread::sleep(METADATA_RETRY_PAUSE);
                }
                Err((partition, code)) => {
                    return Err(format!(
                        "ListOffsets {}-{partition}: {}",
                        self.topic,
                        errors::name(code)
                    ))
                }
            }
        }
    }

    /// One ListOffsets round over every leader: the offsets, or the first
    /// partition that answered an error, with its code.
    fn list_offsets_once(&self, timestamp: i64) -> Result<Result<Vec<i64>, (i32, i16)>, String> {
        let mut offsets = vec![-1i64; self.partitions()];
        for (node_id, partitions) in self.partitions_by_leader() {
            let broker = &self.brokers[&node_id];
            let version = versions::require(&broker.versions, &broker.api_versions, ApiKey::ListOffsets)?;
            let mut topic = ListOffsetsTopic::default();
            topic.name = TopicName(StrBytes::from_string(self.topic.clone()));
            for &partition in &partitions {
                let mut wanted = ListOffsetsPartition::default();
                wanted.partition_index = partition as i32;
                wanted.timestamp = timestamp;
                topic.partitions.push(wanted);
            }
            let mut request = ListOffsetsRequest::default();
            request.replica_id = BrokerId(-1);
            request.topics = vec![topic];
            let mut client = self.connect(broker)?;
            let response: ListOffsetsResponse = client.call(ApiKey::ListOffsets, version, &request)?;
            for answer in response.topics.iter().flat_map(|t| t.partitions.iter()) {
                if answer.error_code != errors::NONE {
                    return Ok(Err((answer.partition_index, answer.error_code)));
                }
                if let Some(slot) = usize::try_from(answer.partition_index)
                    .ok()
                    .and_then(|i| offsets.get_mut(i))
                {
                    *slot = answer.offset;
                }
            }
        }
        if let Some(missing) = offsets.iter().position(|&offset| offset < 0) {
            return Err(format!(
                "ListOffsets returned no offset for {}-{missing}",
                self.topic
            ));
        }
        Ok(Ok(offsets))
    }

    /// Partition indexes grouped by leader node id.
    pub fn partitions_by_leader(&self) -> BTreeMap<i32, Vec<usize>> {
        let mut groups: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
        for (partition, &leader) in self.leaders.iter().enumerate() {
            groups.entry(leader).or_default().push(partition);
        }
        groups
    }
}

/// Finds (or creates) the topic and its leaders, and negotiates versions
/// with the bootstrap broker and every leader.
pub fn discover(params: &Params, bootstrap: &str) -> Result<Cluster, String> {
    let timeout = Duration::from_millis(u64::from(params.request_timeout_ms));
    let mut client = BlockingClient::connect(bootstrap, &params.client_id, timeout)?;
    let info = client.api_versions()?;
    let bootstrap_versions = versions::negotiate(&info.ranges);
    let metadata_version = versions::require(&bootstrap_versions, &info.ranges, ApiKey::Metadata)?;

    let deadline = Instant::now() + TOPIC_READY_TIMEOUT;
    let mut created_topic = false;
    let metadata = loop {
        let metadata = fetch_metadata(&mut client, metadata_version, &params.topic)?;
        let topic = metadata.topics.iter().find(|t| {
            t.name
                .as_ref()
                .is_some_and(|name| name.0.as_str() == params.topic)
        });
        let problem = match topic {
            None => Some(errors::UNKNOWN_TOPIC_OR_PARTITION),
            Some(topic) if topic.error_code != errors::NONE => Some(topic.error_code),
            Some(topic) if topic.partitions.is_empty() => Some(errors::LEADER_NOT_AVAILABLE),
            Some(topic) => topic
                .partitions
                .iter()
                .find(|p| p.leader_id.0 < 0 || !metadata.brokers.iter().any(|b| b.node_id == p.leader_id))
                .map(|p| {
                    if p.error_code != errors::NONE {
                        p.error_code
                    } else {
                        errors::LEADER_NOT_AVAILABLE
                    }
                }),
        };
        match problem {
            None => break metadata,
            Some(errors::UNKNOWN_TOPIC_OR_PARTITION) if !created_topic => {
                create_topic(
                    &mut client,
                    &info.ranges,
                    &bootstrap_versions,
                    params,
                    &metadata,
                    timeout,
                )?;
                created_topic = true;
            }
            Some(code)
                if Instant::now() < deadline
                    && matches!(
                        code,
                        errors::UNKNOWN_TOPIC_OR_PARTITION
                            | errors::LEADER_NOT_AVAILABLE
                            | errors::NOT_LEADER_OR_FOLLOWER
                    ) =>
            {
                thread::sleep(METADATA_RETRY_PAUSE);
            }
            Some(code) => {
                return Err(format!(
                    "Metadata for topic {}: {}",
                    params.topic,
                    errors::name(code)
                ));
            }
        }
    };

    let mut brokers = BTreeMap::new();
    for broker in &metadata.brokers {
        let host = broker.host.as_str().to_string();
        let address = if host.contains(':') {
            format!("[{host}]:{}", broker.port)
        } else {
            format!("{host}:{}", broker.port)
        };
        brokers.insert(
            broker.node_id.0,
            Broker {
                node_id: broker.node_id.0,
                host,
                port: broker.port,
                address,
                api_versions: Vec::new(),
                api_versions_version: None,
                versions: Versions::default(),
            },
        );
    }
    let topic = metadata
        .topics
        .iter()
        .find(|t| {
            t.name
                .as_ref()
                .is_some_and(|name| name.0.as_str() == params.topic)
        })
        .ok_or("topic vanished from Metadata")?;
    let mut leaders = vec![-1; topic.partitions.len()];
    for partition in &topic.partitions {
        let index = usize::try_from(partition.partition_index)
            .ok()
            .filter(|&i| i < leaders.len())
            .ok_or_else(|| {
                format!(
                    "Metadata lists partition {} of {}",
                    partition.partition_index,
                    leaders.len()
                )
            })?;
        leaders[index] = partition.leader_id.0;
    }
    if let Some(missing) = leaders.iter().position(|&leader| leader < 0) {
        return Err(format!(
            "Metadata for {} has no partition {missing}",
            params.topic
        ));
    }
    // Negotiate with every leader (the bootstrap broker may be one of them).
    let leader_ids: std::collections::BTreeSet<i32> = leaders.iter().copied().collect();
    for node_id in leader_ids {
        let broker = brokers
            .get_mut(&node_id)
            .ok_or("leader missing from Metadata brokers")?;
        let info = if broker.address == bootstrap {
            info.clone()
        } else {
            BlockingClient::connect(&broker.address, &params.client_id, timeout)
                .map_err(|e| format!("leader {node_id}: {e}"))?
                .api_versions()?
        };
        broker.versions = versions::negotiate(&info.ranges);
        broker.api_versions = info.ranges;
        broker.api_versions_version = Some(info.version);
    }
    let cluster = Cluster {
        bootstrap: bootstrap.to_string(),
        cluster_id: metadata.cluster_id.as_ref().map(|id| id.as_str().to_string()),
        controller_id: metadata.controller_id.0,
        brokers,
        topic: params.topic.clone(),
        leaders,
        created_topic,
        client_id: params.client_id.clone(),
        timeout,
    };
    if created_topic {
        // Kafka names a new partition's leader in Metadata before that
        // broker serves it: for a moment Produce and ListOffsets get
        // NOT_LEADER_OR_FOLLOWER (which would fail the first requests of
        // the run). ListOffsets is retried until every leader serves its
        // partitions; weir answers the first time.
        cluster.list_offsets(OFFSET_LATEST)?;
    }
    Ok(cluster)
}

fn fetch_metadata(
    client: &mut BlockingClient,
    version: i16,
    topic: &str,
) -> Result<MetadataResponse, String> {
    let mut wanted = MetadataRequestTopic::default();
    wanted.name = Some(TopicName(StrBytes::from_string(topic.to_string())));
    let mut request = MetadataRequest::default();
    request.topics = Some(vec![wanted]);
    // Create it ourselves (with the requested partitions), not by auto-creation.
    request.allow_auto_topic_creation = version < 4;
    client.call(ApiKey::Metadata, version, &request)
}

fn create_topic(
    client: &mut BlockingClient,
    ranges: &[ApiRange],
    versions: &Versions,
    params: &Params,
    metadata: &MetadataResponse,
    timeout: Duration,
) -> Result<(), String> {
    let version = versions::require(versions, ranges, ApiKey::CreateTopics)?;
    let mut topic = CreatableTopic::default();
    topic.name = TopicName(StrBytes::from_string(params.topic.clone()));
    topic.num_partitions = i32::try_from(params.partitions).map_err(|_| "too many partitions")?;
    // -1 (broker default) needs CreateTopics v4+.
    topic.replication_factor = if params.replication_factor < 0 && version < 4 {
        1
    } else {
        params.replication_factor
    };
    let mut request = CreateTopicsRequest::default();
    request.topics = vec![topic];
    request.timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // Old brokers only accept CreateTopics on the controller.
    let controller = metadata
        .brokers
        .iter()
        .find(|b| b.node_id == metadata.controller_id);
    let response: CreateTopicsResponse = match controller {
        Some(broker) if format!("{}:{}", broker.host.as_str(), broker.port) != client.address => {
            let address = format!("{}:{}", broker.host.as_str(), broker.port);
            match BlockingClient::connect(&address, &params.client_id, timeout) {
                Ok(mut controller) => controller.call(ApiKey::CreateTopics, version, &request)?,
                Err(_) => client.call(ApiKey::CreateTopics, version, &request)?,
            }
        }
        _ => client.call(ApiKey::CreateTopics, version, &request)?,
    };
    for result in &response.topics {
        if result.error_code != errors::NONE && result.error_code != errors::TOPIC_ALREADY_EXISTS {
            let detail = result
                .error_message
                .as_ref()
                .map(|m| format!(": {}", m.as_str()))
                .unwrap_or_default();
            return Err(format!(
                "CreateTopics {} ({} partitions): {}{detail}",
                params.topic,
                params.partitions,
                errors::name(result.error_code)
            ));
        }
    }
    Ok(())
}
