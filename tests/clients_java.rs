//! The Java client (org.apache.kafka:kafka-clients 4.1.1, Kafka's own client
//! and the most used of all) against the broker, with its defaults (apart
//! from timeouts, and consumers that start at the earliest offset and
//! commit explicitly). The scenarios are Java programs in
//! `tests/java/src/main/java/dev/weir/tests/clients/` (each checks exact
//! records, offsets and admin results and exits 1 with the differences);
//! this file starts the broker, runs them and restarts the broker between
//! phases:
//!
//! - a default (idempotent, acks=all) producer and a classic group: keyed
//!   records with headers on 3 partitions, read back exactly, committed;
//!   after a restart a new member resumes exactly at the committed offsets,
//!   then two members split the partitions and each reads its own;
//! - the same with `group.protocol=consumer` (KIP-848);
//! - the Admin client: topics (and their errors), configs, cluster, groups
//!   and their offsets, list offsets by spec, producers, transactions;
//! - transactions: consume-transform-produce with one committed and one
//!   aborted transaction, resumed by a second instance; fencing.
//!
//! Every scenario passes against Apache Kafka (`WEIR_TEST_BROKER=kafka`).
//! Kafka's client, with its dependencies, comes from Maven Central
//! (`tests/java/install.sh`, run by `scripts/test.sh`); the scenario sources
//! are compiled here with `javac` into a directory of their own (once per
//! version of the sources), so the scenarios always run as they are in the
//! checkout and a concurrent `mvn compile` of the shared Maven project never
//! pulls classes from under a running scenario.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::java::run_scenario as java;
use common::Broker;

#[test]
fn classic_group_produces_consumes_commits_and_resumes_after_restart() {
    group_flow("classic");
}

#[test]
fn kip848_group_produces_consumes_commits_and_resumes_after_restart() {
    group_flow("consumer");
}

/// `GroupFlow first`, a broker restart, then `GroupFlow resume`. Both
/// phases get the same base timestamp for their records: a recent one
/// (Kafka's retention deletes records older than a week).
fn group_flow(protocol: &str) {
    let mut broker = Broker::start();
    let topic = format!("java-{protocol}");
    let group = format!("java-{protocol}-group");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    let base_timestamp = (now.as_secs() * 1000).to_string();
    let args = |phase: &str| {
        [protocol, phase, &topic, &group, &base_timestamp]
            .iter()
            .map(|arg| arg.to_string())
            .collect::<Vec<_>>()
    };
    java(&broker, "GroupFlow", &args("first"));
    broker.restart();
    java(&broker, "GroupFlow", &args("resume"));
}

#[test]
fn admin_client_calls_give_kafkas_exact_results() {
    let broker = Broker::start();
    java(&broker, "AdminCheck", &[]);
}

#[test]
fn transactions_consume_transform_produce_exactly_once_and_fence() {
    let broker = Broker::start();
    java(&broker, "Transactions", &[]);
}
