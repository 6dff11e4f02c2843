//! `advertise_shards`: every shard advertised as a broker of its own (port
//! listen + N, node id node_id + N), driven by real clients against a
//! 2-shard weir:
//!
//! - Metadata, DescribeCluster and FindCoordinator name both brokers and the
//!   owning shard of each partition and coordinator, the same from either
//!   port;
//! - librdkafka sends every partition's produce straight to its shard: the
//!   broker records no cross-core `hop` for Produce (and does without the
//!   mode, the control);
//! - Kafka's Java client runs its classic group (with a restart between the
//!   phases) and its transactions scenarios, which find their
//!   coordinators through FindCoordinator;
//! - a request that reaches the other shard's port is still served.
//!
//! A shard port that is taken, or past 65535, stops the start
//! (`second_instance_refused.rs`).

mod common;

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use common::http::{admin_addr, get, hgrm_total};
use common::wire::{self, Connection};
use common::{consume_exact, create_topic, produce_all_acked, Broker, BrokerOptions, TestMessage};
use kafka_protocol::messages::{
    find_coordinator_request::FindCoordinatorRequest, ApiKey, BrokerId, DescribeClusterRequest,
    MetadataRequest,
};
use kafka_protocol::protocol::StrBytes;

const PARTITIONS: i32 = 8;

fn broker(advertise_shards: bool) -> Broker {
    Broker::start_weir(BrokerOptions {
        settings: vec![("advertise_shards", "", advertise_shards.to_string())],
        ports: 2,
        ..BrokerOptions::default()
    })
}

/// The address of shard `shard`'s broker.
fn shard_addr(broker: &Broker, shard: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], broker.port() + shard))
}

/// Produce requests that crossed cores (the `hop` stage's count).
fn produce_hops(broker: &Broker) -> u64 {
    let (status, hgrm) = get(admin_addr(broker), "/v1/latency?api=Produce&stage=hop");
    assert_eq!(status, 200, "{hgrm}");
    hgrm_total(&hgrm)
}

fn messages(count: usize) -> Vec<TestMessage> {
    (0..count)
        .map(|i| TestMessage::keyed(i as i32 % PARTITIONS, format!("k{i}"), format!("v{i}")))
        .collect()
}

#[test]
fn metadata_names_a_broker_per_shard_and_each_partitions_owner() {
    let broker = broker(true);
    create_topic(&broker.bootstrap(), "spread", PARTITIONS, &[]);
    let port = i32::from(broker.port());
    let mut answers = Vec::new();
    for shard in 0..2 {
        let mut connection = Connection::open(shard_addr(&broker, shard));
        let mut request = MetadataRequest::default();
        request.topics = None;
        let metadata = connection.call(12, &request);
        let brokers: Vec<(i32, String, i32)> = metadata
            .brokers
            .iter()
            .map(|b| (b.node_id.0, b.host.to_string(), b.port))
            .collect();
        assert_eq!(
            brokers,
            vec![(0, "127.0.0.1".into(), port), (1, "127.0.0.1".into(), port + 1)],
            "Metadata from shard {shard}'s port"
        );
        assert_eq!(metadata.controller_id, BrokerId(0));
        let topic = metadata
            .topics
            .iter()
            .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some("spread"))
            .expect("the topic");
        let leaders: Vec<i32> = topic.partitions.iter().map(|p| p.leader_id.0).collect();
        for partition in &topic.partitions {
            assert_eq!(partition.replica_nodes, vec![partition.leader_id]);
            assert_eq!(partition.isr_nodes, vec![partition.leader_id]);
        }
        assert_eq!(
            leaders.iter().copied().collect::<BTreeSet<_>>(),
            BTreeSet::from([0, 1]),
            "both shards lead partitions: {leaders:?}"
        );

        let mut describe = DescribeClusterRequest::default();
        describe.endpoint_type = 1;
        let version = connection.negotiate(ApiKey::DescribeCluster, 1..=1);
        let cluster = connection.call(version, &describe);
        let described: Vec<(i32, i32)> = cluster.brokers.iter().map(|b| (b.broker_id.0, b.port)).collect();
        assert_eq!(described, vec![(0, port), (1, port + 1)], "DescribeCluster");
        assert_eq!(cluster.controller_id, BrokerId(0));

        // Groups (key type 0) and transactional ids (1): many keys land on
        // both shards, each answered with a broker of this node.
        let mut coordinators = Vec::new();
        for key_type in [0i8, 1] {
            let mut find = FindCoordinatorRequest::default();
            find.key_type = key_type;
            find.coordinator_keys = (0..16)
                .map(|i| StrBytes::from_string(format!("key-{i}")))
                .collect();
            let found = connection.call(4, &find);
            for coordinator in &found.coordinators {
                assert_eq!(coordinator.error_code, 0, "{coordinator:?}");
                assert_eq!(coordinator.port, port + coordinator.node_id.0, "{coordinator:?}");
            }
            coordinators.push(found.coordinators.iter().map(|c| c.node_id.0).collect::<Vec<_>>());
        }
        for (key_type, nodes) in coordinators.iter().enumerate() {
            assert_eq!(
                nodes.iter().copied().collect::<BTreeSet<_>>(),
                BTreeSet::from([0, 1]),
                "key type {key_type}: both shards coordinate some keys: {nodes:?}"
            );
        }
        answers.push((leaders, coordinators));
    }
    assert_eq!(answers[0], answers[1], "both ports give the same answers");
}

#[test]
fn librdkafka_produces_to_each_partitions_shard_without_a_hop() {
    for advertise_shards in [true, false] {
        let broker = broker(advertise_shards);
        let topic = "direct";
        create_topic(&broker.bootstrap(), topic, PARTITIONS, &[]);
        let sent = messages(800);
        produce_all_acked(&broker.bootstrap(), "all", topic, &sent);
        let expected: Vec<(i32, usize)> = (0..PARTITIONS).map(|p| (p, 100)).collect();
        let read = consume_exact(&broker.bootstrap(), topic, &expected);
        for (partition, records) in &read {
            let wanted: Vec<&TestMessage> = sent.iter().filter(|m| m.partition == *partition).collect();
            for (got, sent) in records.iter().zip(wanted) {
                assert!(got.matches(sent), "partition {partition}: records differ");
            }
        }
        let hops = produce_hops(&broker);
        if advertise_shards {
            assert_eq!(hops, 0, "every produce went to the owning shard's port");
        } else {
            // The control: one broker behind SO_REUSEPORT, so a connection
            // on one shard sends the other shard's partitions across.
            assert!(hops > 0, "without advertise_shards some produces cross cores");
        }
    }
}

#[test]
fn java_group_and_transactions_find_their_coordinator_shards() {
    let mut broker = broker(true);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    let base_timestamp = (now.as_secs() * 1000).to_string();
    let args = |phase: &str| {
        ["classic", phase, "per-shard", "per-shard-group", &base_timestamp]
            .iter()
            .map(|arg| arg.to_string())
            .collect::<Vec<_>>()
    };
    common::java::run_scenario(&broker, "GroupFlow", &args("first"));
    broker.restart();
    common::java::run_scenario(&broker, "GroupFlow", &args("resume"));
    common::java::run_scenario(&broker, "Transactions", &[]);
}

#[test]
fn a_request_on_the_other_shards_port_is_still_served() {
    let broker = broker(true);
    create_topic(&broker.bootstrap(), "crossed", PARTITIONS, &[]);
    let mut shard0 = Connection::open(shard_addr(&broker, 0));
    let metadata = shard0.metadata(&["crossed"], false);
    let partitions = &metadata.topics[0].partitions;
    let mut connections = [shard0, Connection::open(shard_addr(&broker, 1))];
    for partition in partitions {
        // Sent to the broker that does not lead it.
        let other = 1 - partition.leader_id.0 as usize;
        let index = partition.partition_index;
        let record = wire::record(0, 1_700_000_000_000, b"k", format!("to {index}").as_bytes());
        let result = connections[other].produce("crossed", index, 1, wire::encode_batch(&[record]));
        assert_eq!(
            result.error_code, 0,
            "partition {index} on node {other}: {result:?}"
        );
        let leader = partition.leader_id.0 as usize;
        let fetched = connections[leader].fetch("crossed", index, 0, 1000);
        let batches = wire::split_batches(fetched.records.expect("records"));
        assert_eq!(
            batches.len(),
            1,
            "partition {index}: the record reads back from its leader"
        );
    }
    assert!(produce_hops(&broker) >= PARTITIONS as u64);
}
