//! Topic configs changed at runtime, retention and DeleteRecords, through
//! Kafka's Java Admin client (kafka-clients 4.1.1). The scenarios are in
//! `tests/java/src/main/java/dev/weir/tests/clients/TopicConfigs.java`;
//! every answer is checked against what Kafka 4.1 answers:
//!
//! - describeConfigs of a topic: value, source, type, default flag and
//!   synonyms of the configs weir has, with and without synonyms;
//!   incrementalAlterConfigs SET, DELETE, APPEND and SUBTRACT (list configs
//!   only), validateOnly, invalid values (refused atomically, with Kafka's
//!   messages), unknown topics; legacy AlterConfigs v0-v2 replacing the
//!   topic's whole set; createTopics with invalid configs;
//! - sources and synonyms on a broker started with log.retention.ms and
//!   log.retention.bytes set (STATIC_BROKER_CONFIG);
//! - retention.ms and retention.bytes lowered on live topics delete old
//!   segments without a restart (the earliest offset advances, what stays
//!   reads back exactly);
//! - DeleteRecords: low watermarks, the earliest offset and where new
//!   consumers start, -1 (the high watermark), offsets beyond the high
//!   watermark and unknown partitions; configs and log start offsets
//!   survive a broker restart.
//!
//! Configs Kafka has and weir refuses (flush.messages, min.insync.replicas,
//! unclean.leader.election.enable) are checked as refused against weir and
//! accepted against Kafka (`WEIR_TEST_BROKER=kafka`).

mod common;

use std::time::Duration;

use common::java::{classpath, JVM_OPTIONS};
use common::{run_client, target, Broker, BrokerOptions, Target};

/// Upper bound for one scenario program (several steps, each bounded by
/// its own 90-120 s waits).
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(600);

fn target_name() -> &'static str {
    match target() {
        Target::Weir => "weir",
        Target::Kafka => "kafka",
    }
}

#[test]
fn topic_configs_are_described_altered_and_validated_like_kafka() {
    let broker = Broker::start();
    topic_configs(&broker, "configs");
}

#[test]
fn broker_retention_settings_are_static_sources_and_synonyms() {
    let broker = Broker::start_with(BrokerOptions {
        settings: vec![
            ("log_retention_ms", "log.retention.ms", "86400000".to_string()),
            (
                "log_retention_bytes",
                "log.retention.bytes",
                "1073741824".to_string(),
            ),
        ],
        ..BrokerOptions::default()
    });
    topic_configs(&broker, "static");
}

#[test]
fn retention_changed_on_a_live_topic_deletes_old_segments() {
    let broker = Broker::start_with(BrokerOptions {
        settings: vec![(
            "log_retention_check_interval_ms",
            "log.retention.check.interval.ms",
            "500".to_string(),
        )],
        ..BrokerOptions::default()
    });
    topic_configs(&broker, "retention");
}

#[test]
fn delete_records_moves_the_log_start_and_survives_a_restart() {
    let mut broker = Broker::start();
    topic_configs(&broker, "delete-records");
    broker.restart();
    topic_configs(&broker, "after-restart");
}

/// Runs `TopicConfigs BOOTSTRAP MODE TARGET` and asserts it ended with its
/// "OK" line (and exit 0, checked by `run_client`).
fn topic_configs(broker: &Broker, mode: &str) {
    let args = vec![
        "dev.weir.tests.clients.TopicConfigs".to_string(),
        broker.bootstrap(),
        mode.to_string(),
        target_name().to_string(),
    ];
    let envs = [("CLASSPATH", classpath()), ("JDK_JAVA_OPTIONS", JVM_OPTIONS)];
    let stdout = run_client("java", &args, &envs, PROGRAM_TIMEOUT);
    let ok_line = format!("TopicConfigs {mode} {}: OK", target_name());
    assert!(
        stdout.lines().any(|line| line == ok_line),
        "TopicConfigs exited 0 without its line {ok_line:?}:\n{stdout}\n{}",
        broker.logs()
    );
}
