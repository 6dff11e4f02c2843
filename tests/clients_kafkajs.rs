//! kafkajs 2.2.4 (npm), the pure-JavaScript Kafka client with its own
//! protocol code and old API versions (Produce v7, Fetch v11, ListOffsets
//! v3, Metadata v6, JoinGroup v5, OffsetFetch v4, CreateTopics v3), drives
//! the broker through its producer, consumer-group and admin APIs, with a
//! broker restart in the middle. Each scenario is a script in `tests/node/`
//! (installed by `tests/node/install.sh`) that checks exact keys, values,
//! headers, timestamps, offsets and order as it goes and prints `ok`:
//!
//! - `groups_offsets_admin.js`: createTopics (and TOPIC_ALREADY_EXISTS,
//!   INVALID_REPLICATION_FACTOR), fetchTopicMetadata, plain and idempotent
//!   (gzip) producers, an eachMessage group (autoCommit) and an eachBatch
//!   group (manual commitOffsets), two members splitting a topic and one
//!   taking over when the other leaves; after the restart both groups
//!   resume at their committed offsets with exactly the records written
//!   since; fetchOffsets, fetchTopicOffsets, describeGroups, listGroups,
//!   resetOffsets, setOffsets, deleteGroups, deleteTopics, and last
//!   fetchTopicOffsetsByTimestamp (records inside gzip batches too).
//! - `transactions.js`: transactions committed and aborted (records and
//!   group offsets), read with readUncommitted=false (and true) before and
//!   after the restart, and a transaction of the same transactional id
//!   after it.
//!
//! Every bound below is an upper limit only: kafkajs group joins wait for
//! the rebalance, and the machine may be slow.

mod common;

use std::fs;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{repo_path, run_client, watermarks, Broker};

/// Upper bound for one scenario phase (several group joins each).
const PHASE_TIMEOUT: Duration = Duration::from_secs(600);
/// The kafkajs release these tests are written against (tests/node/package.json).
const KAFKAJS_VERSION: &str = "2.2.4";

/// Fails (never skips) unless `tests/node/install.sh` installed kafkajs.
fn assert_kafkajs_installed() {
    let manifest = repo_path("tests/node/node_modules/kafkajs/package.json");
    let text = fs::read_to_string(&manifest).unwrap_or_else(|error| {
        panic!(
            "kafkajs is not installed ({}: {error}): run the README's test command, \
             ./scripts/test.sh, which installs it (tests/node/install.sh: npm ci)",
            manifest.display()
        )
    });
    assert!(
        text.contains(&format!("\"version\": \"{KAFKAJS_VERSION}\"")),
        "tests/node/node_modules holds another kafkajs than {KAFKAJS_VERSION}: \
         run ./scripts/test.sh (tests/node/install.sh) again"
    );
}

/// CreateTime of record 0 of every partition: an hour ago, whole seconds
/// (recent enough for any retention, and never in the future).
fn record_zero_timestamp_ms() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    ((now.as_secs() - 3600) * 1000).to_string()
}

/// Runs `node tests/node/<script> <phase> <bootstrap> <topic> <t0>` and
/// asserts it exits 0 having printed `ok`.
fn run_phase(broker: &Broker, script: &str, phase: &str, topic: &str, t0: &str) {
    let args = vec![
        repo_path("tests/node").join(script).display().to_string(),
        phase.to_string(),
        broker.bootstrap(),
        topic.to_string(),
        t0.to_string(),
    ];
    let stdout = run_client("node", &args, &[], PHASE_TIMEOUT);
    assert_eq!(stdout.trim_end(), "ok", "{script} {phase}: unexpected output");
}

/// The log start and end offsets of each partition, through another client
/// (librdkafka), so what kafkajs saw is not only kafkajs' word.
fn assert_watermarks(broker: &Broker, topic: &str, ends: &[i64]) {
    for (partition, &end) in ends.iter().enumerate() {
        let partition = partition as i32;
        assert_eq!(
            watermarks(&broker.bootstrap(), topic, partition),
            (0, end),
            "{topic}/{partition} watermarks"
        );
    }
}

#[test]
fn kafkajs_groups_offsets_and_admin_across_restart() {
    assert_kafkajs_installed();
    let mut broker = Broker::start();
    let topic = "kafkajs-groups";
    let t0 = record_zero_timestamp_ms();
    let script = "groups_offsets_admin.js";

    run_phase(&broker, script, "produce-consume", topic, &t0);
    assert_watermarks(&broker, topic, &[10, 10, 10]);
    run_phase(&broker, script, "two-members", topic, &t0);
    assert_watermarks(&broker, &format!("{topic}-shared"), &[8, 8, 8]);

    broker.restart();
    run_phase(&broker, script, "resume", topic, &t0);
    assert_watermarks(&broker, topic, &[14, 14, 14]);
    run_phase(&broker, script, "admin", topic, &t0);
    run_phase(&broker, script, "by-timestamp", topic, &t0);
}

#[test]
fn kafkajs_transactions_read_committed_across_restart() {
    assert_kafkajs_installed();
    let mut broker = Broker::start();
    let topic = "kafkajs-transactions";
    let t0 = record_zero_timestamp_ms();

    run_phase(&broker, "transactions.js", "write", topic, &t0);
    // Records and control markers: offsets 0..8 and 0..7 (see the script).
    assert_watermarks(&broker, topic, &[9, 8]);
    broker.restart();
    run_phase(&broker, "transactions.js", "read", topic, &t0);
    assert_watermarks(&broker, topic, &[11, 8]);
}
