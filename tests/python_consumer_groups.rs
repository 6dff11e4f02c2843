//! Consumer groups with a second, independent client implementation:
//! kafka-python (pure Python, its own group protocol code). The scenarios are
//! in `tests/python/consumer_groups_*.py`; this file starts the broker,
//! creates the topics, runs the scripts and, for the resume scenario,
//! restarts the broker between the two phases.

mod common;

use std::time::Duration;

use common::{assert_kafka_python_installed, create_topic, run_python_script, Broker, BrokerOptions};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// Groups form without Kafka's initial rebalance delay; a small offsets
/// topic keeps the broker lean.
const GROUP_BROKER_CONFIG: &str = "group_initial_rebalance_delay_ms = 0\noffsets_topic_partitions = 4\n";

fn start_broker() -> Broker {
    Broker::start_with(BrokerOptions {
        config_toml: Some(GROUP_BROKER_CONFIG.to_string()),
        ..BrokerOptions::default()
    })
}

/// Runs `tests/python/<script> <bootstrap> <args...>`; it must exit 0.
fn run_script(broker: &Broker, script: &str, args: &[&str]) {
    run_python_script(&broker.bootstrap(), script, args, SCRIPT_TIMEOUT);
}

#[test]
fn kafka_python_members_joining_and_leaving_split_partitions_without_loss_or_redelivery_after_commits() {
    assert_kafka_python_installed();
    let broker = start_broker();
    let topic = "py-group-orders";
    create_topic(&broker.bootstrap(), topic, 4, &[]);
    run_script(&broker, "consumer_groups_rebalance.py", &[topic, "4"]);
}

#[test]
fn kafka_python_member_resumes_exactly_at_offsets_committed_before_a_restart() {
    assert_kafka_python_installed();
    let mut broker = start_broker();
    let topic = "py-resume-topic";
    create_topic(&broker.bootstrap(), topic, 2, &[]);
    run_script(&broker, "consumer_groups_resume.py", &[topic, "commit"]);
    broker.restart();
    run_script(&broker, "consumer_groups_resume.py", &[topic, "resume"]);
}

/// One member of a 4-partition group stops (SIGSTOP, by PID: connections
/// open, no heartbeat, no LeaveGroup); after its session timeout (6 s, the
/// broker minimum) the other member must own exactly all 4 partitions and
/// receive records produced to each of them.
#[test]
fn kafka_python_member_that_stops_heartbeating_is_expired_and_its_partitions_move_to_the_other() {
    assert_kafka_python_installed();
    let broker = start_broker();
    let topic = "py-expiry-topic";
    create_topic(&broker.bootstrap(), topic, 4, &[]);
    run_script(&broker, "consumer_groups_expiry.py", &[topic, "4"]);
}

/// kafka-python 3.0.12 supports static membership (`group_instance_id`). A
/// static member killed with SIGKILL (no LeaveGroup) and restarted with the
/// same instance id within its session timeout gets its partitions back; the
/// other static member sees no rebalance callback at all.
#[test]
fn kafka_python_static_member_restarted_within_session_timeout_gets_its_partitions_back_without_rebalance() {
    assert_kafka_python_installed();
    let broker = start_broker();
    let topic = "py-static-topic";
    create_topic(&broker.bootstrap(), topic, 4, &[]);
    run_script(&broker, "consumer_groups_static.py", &[topic, "4"]);
}
