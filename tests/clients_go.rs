//! The Go clients franz-go (kgo + kadm) and IBM/sarama against the broker.
//! Each builds its own requests from its own protocol code, so this proves
//! weir speaks Kafka as these clients expect, not just as librdkafka and
//! the Java client do.
//!
//! For each client: a 3-partition topic is created through the admin API
//! (creating it again gives TOPIC_ALREADY_EXISTS), listed, its configs
//! described (and an unknown topic's refused); keyed records with headers
//! are produced by an idempotent producer with acks=all and consumed in a
//! consumer group, exactly (keys, values, headers, offsets, per-partition
//! order); the group commits, is described (Stable, one member with every
//! partition, then Empty) and its committed offsets fetched. The broker is
//! restarted; more records are produced and the same group resumes from its
//! commits with exactly the new records, none missing or repeated. For
//! franz-go also: the same with a KIP-848 group; transactions committed and
//! aborted, read with read_committed and read_uncommitted before and after
//! a restart; a consume-transform-produce GroupTransactSession
//! (exactly-once); and more admin calls through kadm.
//!
//! The programs are `tests/go/cmd/{franz,sarama}` (built by
//! `tests/go/install.sh`); each phase checks everything itself and ends
//! with a `PASS <phase>` line.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{repo_path, run_client, Broker};

/// Upper bound for one phase (a group's first rebalance alone waits 3 s;
/// Kafka on a busy machine is much slower than weir).
const PHASE_TIMEOUT: Duration = Duration::from_secs(300);

/// Path of a Go test client, failing (never skipping) when it was not built.
fn go_client(name: &str) -> PathBuf {
    let path = repo_path("tests/go/bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run the README's test command, ./scripts/test.sh, which builds the Go test \
         clients (tests/go/install.sh)",
        path.display()
    );
    path
}

/// Runs `tests/go/bin/<client> <phase> <bootstrap> <args...>` (with `envs`
/// added to its environment): it must exit 0 and report `PASS <phase>`.
fn run_phase(broker: &Broker, client: &str, phase: &str, args: &[&str], envs: &[(&str, &str)]) {
    let program = go_client(client);
    let mut all_args = vec![phase.to_string(), broker.bootstrap()];
    all_args.extend(args.iter().map(|arg| arg.to_string()));
    let stdout = run_client(&program.display().to_string(), &all_args, envs, PHASE_TIMEOUT);
    let pass = format!("PASS {phase}");
    assert!(
        stdout.lines().any(|line| line == pass),
        "{client} {phase} exited 0 without `{pass}`; its output:\n{stdout}"
    );
}

/// The classic protocol (JoinGroup/SyncGroup), kgo's default
/// cooperative-sticky balancer; described with DescribeGroups.
#[test]
fn franz_go_classic_group_consumes_exactly_and_resumes_from_its_commits_after_a_restart() {
    let mut broker = Broker::start();
    let args = ["franz-orders", "franz-group", "classic"];
    run_phase(&broker, "franz", "groups-before-restart", &args, &[]);
    broker.restart();
    run_phase(&broker, "franz", "groups-after-restart", &args, &[]);
}

/// KIP-848 (`kgo.ServerSideBalancer`, the broker's range assignor):
/// ConsumerGroupHeartbeat, OffsetCommit with member epochs; described with
/// ConsumerGroupDescribe.
#[test]
fn franz_go_kip848_group_consumes_exactly_and_resumes_from_its_commits_after_a_restart() {
    let mut broker = Broker::start();
    let args = ["franz-848-orders", "franz-848-group", "consumer"];
    run_phase(&broker, "franz", "groups-before-restart", &args, &[]);
    broker.restart();
    run_phase(&broker, "franz", "groups-after-restart", &args, &[]);
}

#[test]
fn franz_go_committed_and_aborted_transactions_read_committed_before_and_after_a_restart() {
    let mut broker = Broker::start();
    let args = ["franz-txn-topic", "franz-txn-id"];
    run_phase(&broker, "franz", "txn-before-restart", &args, &[]);
    broker.restart();
    run_phase(&broker, "franz", "txn-after-restart", &args, &[]);
}

#[test]
fn franz_go_group_transact_session_copies_every_record_exactly_once() {
    let broker = Broker::start();
    let args = [
        "franz-eos-in",
        "franz-eos-out",
        "franz-eos-group",
        "franz-eos-txn",
    ];
    run_phase(&broker, "franz", "eos", &args, &[]);
}

/// More of kadm on one topic: DescribeProducers, ListOffsets by max
/// timestamp and by time, admin offset commits, Lag, ListGroups,
/// OffsetDelete, DeleteGroups, CreatePartitions, DeleteTopics (and the
/// errors for a missing group or topic), DescribeConfigs of the broker and
/// of the cluster-wide defaults.
#[test]
fn franz_go_kadm_admin_calls_answer_as_kafka_does() {
    let broker = Broker::start();
    run_phase(
        &broker,
        "franz",
        "admin",
        &["franz-admin-topic", "franz-admin-group"],
        &[],
    );
}

/// sarama picks each request's version from the Kafka version it is
/// configured with: its default (2.8.0) and 3.6.0 (newer requests,
/// flexible versions), each with its own topic and group on one broker.
#[test]
fn sarama_group_consumes_exactly_and_resumes_from_its_commits_after_a_restart() {
    let mut broker = Broker::start();
    let versions = [("2.8.0", "sarama-2-8"), ("3.6.0", "sarama-3-6")];
    for phase in ["groups-before-restart", "groups-after-restart"] {
        if phase == "groups-after-restart" {
            broker.restart();
        }
        for (version, name) in versions {
            let (topic, group) = (format!("{name}-orders"), format!("{name}-group"));
            let envs = [("SARAMA_KAFKA_VERSION", version)];
            run_phase(&broker, "sarama", phase, &[&topic, &group], &envs);
        }
    }
}
