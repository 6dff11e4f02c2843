//! Metadata (key 3), versions 0-12: this node's brokers (one, or one per
//! shard with `advertise_shards`: `net::advertise`), and for each topic its
//! partitions, each led by the broker of the shard that owns it (a
//! single-node cluster: the leader is the only replica).
//!
//! Unknown topics are auto-created when the broker allows it
//! (`auto_create_topics`) and the request does (v4+
//! `allow_auto_topic_creation`; always in v0-3), else they get
//! UNKNOWN_TOPIC_OR_PARTITION. Lookups by topic id (v10+) are served too.

use std::rc::Rc;

use kafka_protocol::messages::{
    metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic},
    BrokerId, MetadataRequest, MetadataResponse, TopicName,
};

use super::{str_bytes, uuid};
use crate::{
    config::Config,
    metadata::{validate_topic_name, ClusterMetadata},
    net::advertise,
    protocol::error_code,
    shard::{messages::NewTopic, Shard},
};

pub async fn handle(shard: &Rc<Shard>, request: MetadataRequest, version: i16) -> MetadataResponse {
    let config = &shard.config;
    let mut response = MetadataResponse::default();
    response.brokers = advertise::brokers(config, shard.count)
        .into_iter()
        .map(|advertised| {
            let mut broker = MetadataResponseBroker::default();
            broker.node_id = BrokerId(advertised.node_id);
            broker.host = str_bytes(&advertised.host);
            broker.port = advertised.port;
            broker
        })
        .collect();
    response.controller_id = BrokerId(advertise::node_of_shard(config, 0));

    // v0: an empty list means all topics; v1+: null means all.
    let requested = match request.topics {
        None => None,
        Some(topics) if topics.is_empty() && version == 0 => None,
        Some(topics) => Some(topics),
    };
    let mut metadata = shard.metadata();
    response.cluster_id = Some(str_bytes(&metadata.cluster_id));
    let Some(requested) = requested else {
        response.topics = metadata
            .topics
            .keys()
            .filter_map(|name| describe_topic(&metadata, name, config))
            .collect();
        return response;
    };

    let allow_create = shard.config.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    let missing: Vec<String> = requested
        .iter()
        .filter(|t| t.topic_id.is_nil())
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .filter(|name| metadata.topic(name).is_none() && validate_topic_name(name).is_ok())
        .collect();
    if allow_create && !missing.is_empty() {
        super::create_topics::auto_create(shard, missing).await;
        metadata = shard.metadata();
    }
    for topic in &requested {
        // A lookup by id (v10+) names no topic: the Java client sends the
        // empty string there (the field's default), others send null.
        let by_name = topic
            .name
            .as_ref()
            .filter(|name| !name.0.is_empty() || topic.topic_id.is_nil());
        let name = match by_name {
            Some(name) => name.0.to_string(),
            None => match metadata.topic_by_id(topic.topic_id.as_bytes()) {
                Some((name, _)) => name.clone(),
                None => {
                    let mut unknown = MetadataResponseTopic::default();
                    unknown.error_code = error_code::UNKNOWN_TOPIC_ID;
                    unknown.topic_id = topic.topic_id;
                    response.topics.push(unknown);
                    continue;
                }
            },
        };
        let described = describe_topic(&metadata, &name, config).unwrap_or_else(|| {
            let mut unknown = MetadataResponseTopic::default();
            unknown.name = Some(TopicName(str_bytes(&name)));
            unknown.error_code = if validate_topic_name(&name).is_err() {
                error_code::INVALID_TOPIC_EXCEPTION
            } else {
                error_code::UNKNOWN_TOPIC_OR_PARTITION
            };
            unknown
        });
        response.topics.push(described);
    }
    response
}

fn describe_topic(metadata: &ClusterMetadata, name: &str, config: &Config) -> Option<MetadataResponseTopic> {
    let topic = metadata.topic(name)?;
    let mut described = MetadataResponseTopic::default();
    described.name = Some(TopicName(str_bytes(name)));
    described.topic_id = uuid(topic.id_bytes());
    described.is_internal = name == crate::group::OFFSETS_TOPIC || name == crate::txn::TXN_STATE_TOPIC;
    described.partitions = (0..topic.partition_count())
        .map(|index| {
            let leader = BrokerId(advertise::leader_of(config, topic, index));
            let mut partition = MetadataResponsePartition::default();
            partition.partition_index = index;
            partition.leader_id = leader;
            partition.leader_epoch = 0;
            partition.replica_nodes = vec![leader];
            partition.isr_nodes = vec![leader];
            partition
        })
        .collect();
    Some(described)
}

/// A topic to create with broker defaults (auto-creation).
pub fn default_new_topic(name: String) -> NewTopic {
    NewTopic {
        name,
        partitions: -1,
        replication_factor: -1,
        configs: Default::default(),
        manual_assignment: false,
    }
}
