//! Storage faults, family 2: the process dies in the middle of a step that
//! changes the files of a log (a segment roll, a retention deletion, a
//! compaction swap before and after its commit point), injected at weir's
//! named fault points with the `crash` action (an abort right there, like a
//! kill). After a restart the log is consistent: everything acknowledged
//! above the log start is there, contiguous and in order, and the step
//! completes.
#![cfg(feature = "fault-injection")]

mod common;

use std::{
    collections::BTreeMap,
    thread,
    time::{Duration, Instant},
};

use common::{
    arm_fault, clear_faults, consume_exact, create_topic, produce_all_acked, start_with_faults, watermarks,
    ConsumedMessage, TestMessage,
};
use rdkafka::producer::Producer;

const TOPIC: &str = "crashes";
const CRASH_TIMEOUT: Duration = Duration::from_secs(60);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);

fn settings() -> Vec<(&'static str, &'static str, String)> {
    vec![
        (
            "log_retention_check_interval_ms",
            "log.retention.check.interval.ms",
            "300".into(),
        ),
        (
            "compaction_check_interval_ms",
            "log.cleaner.backoff.ms",
            "300".into(),
        ),
    ]
}

fn message(index: usize, key: String) -> TestMessage {
    TestMessage::keyed(0, key, format!("{index:08}-{}", "v".repeat(1000)))
}

/// Every record from the low watermark to the high watermark.
fn read_all(bootstrap: &str) -> Vec<ConsumedMessage> {
    let (low, high) = watermarks(bootstrap, TOPIC, 0);
    if high == low {
        return Vec::new();
    }
    // consume_exact reads from offset 0 and needs dense offsets from 0:
    // only for logs whose start is 0 and which are not compacted.
    assert_eq!(low, 0, "read_all reads uncompacted logs from 0");
    consume_exact(bootstrap, TOPIC, &[(0, usize::try_from(high).expect("offset"))])
        .remove(&0)
        .expect("partition 0")
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {SETTLE_TIMEOUT:?}");
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_crash_during_a_segment_roll_loses_nothing_acknowledged() {
    let (mut broker, _dir, faults) = start_with_faults(settings());
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, 1, &[("segment.bytes", "1048576")]);
    let first: Vec<TestMessage> = (0..900).map(|i| message(i, format!("k{i}"))).collect();
    produce_all_acked(&bootstrap, "all", TOPIC, &first);
    arm_fault(&faults, "log::roll", "crash");
    // Past the first segment's size: the next append rolls, and dies.
    let (producer, deliveries) = common::recording_producer(&common::producer_config(&bootstrap, "all"));
    let more: Vec<TestMessage> = (900..1200).map(|i| message(i, format!("k{i}"))).collect();
    for (id, m) in more.iter().enumerate() {
        common::enqueue(&producer, TOPIC, id, m);
    }
    let status = broker.wait_for_exit(CRASH_TIMEOUT);
    assert!(
        !status.success(),
        "the broker aborted at the fault point: {status}"
    );
    let _ = producer.flush(Duration::from_secs(1));
    let acknowledged_more: Vec<usize> = deliveries
        .lock()
        .expect("deliveries")
        .iter()
        .filter(|d| d.outcome.is_ok())
        .map(|d| d.id)
        .collect();
    clear_faults(&faults);
    broker.restart();
    let read = read_all(&bootstrap);
    assert!(read.len() >= first.len() + acknowledged_more.len());
    for (offset, record) in read.iter().enumerate() {
        let sent = first.get(offset).or_else(|| more.get(offset - first.len()));
        assert!(
            sent.is_some_and(|sent| record.value == sent.value),
            "offset {offset} holds what was sent there"
        );
    }
    // And the log takes new data after the recovered end.
    let after = vec![message(5000, "after".into())];
    let delivered = produce_all_acked(&bootstrap, "all", TOPIC, &after);
    assert_eq!(delivered[0].outcome, Ok((0, read.len() as i64)));
}

#[test]
fn a_crash_while_retention_unlinks_segments_leaves_a_consistent_log_that_finishes_the_deletion() {
    let (mut broker, _dir, faults) = start_with_faults(settings());
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, 1, &[("segment.bytes", "1048576")]);
    let sent: Vec<TestMessage> = (0..5000).map(|i| message(i, format!("k{i}"))).collect();
    produce_all_acked(&bootstrap, "all", TOPIC, &sent);
    let (_, high) = watermarks(&bootstrap, TOPIC, 0);
    arm_fault(&faults, "log::retention::unlink", "crash");
    common::alter_topic_configs(
        &bootstrap,
        TOPIC,
        &[("segment.bytes", "1048576"), ("retention.bytes", "2097152")],
    );
    let status = broker.wait_for_exit(CRASH_TIMEOUT);
    assert!(!status.success(), "the broker aborted while unlinking: {status}");
    clear_faults(&faults);
    broker.restart();
    // The new log start survived the crash; the deletion completes.
    wait_until("retention finishes after the restart", || {
        let dir = broker.data_dir().join(format!("{TOPIC}-0"));
        let (low, _) = watermarks(&bootstrap, TOPIC, 0);
        let segments = common::segment_bases(&dir);
        low > 0 && segments.first() == Some(&low)
    });
    let (low, high_after) = watermarks(&bootstrap, TOPIC, 0);
    assert_eq!(high_after, high, "no acknowledged offset lost at the end");
    let read = common::consume_from(
        &bootstrap,
        TOPIC,
        0,
        low,
        usize::try_from(high - low).expect("count"),
    );
    assert!(low > 0, "retention deleted the oldest segments");
    for (position, record) in read.iter().enumerate() {
        let offset = low as usize + position;
        assert_eq!(record.offset, offset as i64);
        assert!(record.value == sent[offset].value, "offset {offset} intact");
    }
}

/// Compaction killed at `point`: after a restart, reads show a consistent
/// log (each key's values in order, the latest present), and the next
/// passes converge to exactly the latest value of every key.
fn compaction_crash_at(point: &str) {
    let (mut broker, _dir, faults) = start_with_faults(settings());
    let bootstrap = broker.bootstrap();
    create_topic(
        &bootstrap,
        TOPIC,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "1048576"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    );
    arm_fault(&faults, point, "crash");
    // 200 keys x 10 rounds of ~1 KiB: several segments to clean.
    let sent: Vec<TestMessage> = (0..2000).map(|i| message(i, format!("k{}", i % 200))).collect();
    produce_all_acked(&bootstrap, "all", TOPIC, &sent);
    let status = broker.wait_for_exit(CRASH_TIMEOUT);
    assert!(!status.success(), "the broker aborted at {point}: {status}");
    clear_faults(&faults);
    broker.restart();
    let (_, high) = watermarks(&bootstrap, TOPIC, 0);
    assert_eq!(
        high,
        sent.len() as i64,
        "every acknowledged offset is still there"
    );
    let latest: BTreeMap<String, i64> = sent
        .iter()
        .enumerate()
        .map(|(i, m)| {
            (
                String::from_utf8(m.key.clone().expect("key")).expect("utf8"),
                i as i64,
            )
        })
        .collect();
    let partition_dir = broker.data_dir().join(format!("{TOPIC}-0"));
    // Consistent: every record is what was sent at its offset and every
    // key's latest value is there. Converged: see below.
    let converged = || -> bool {
        let records = common::consume_sparse(&bootstrap, TOPIC, 0, high);
        let mut seen: BTreeMap<String, i64> = BTreeMap::new();
        for record in &records {
            let offset = usize::try_from(record.offset).expect("offset");
            assert!(
                record.value == sent[offset].value,
                "offset {offset} holds what was sent there"
            );
            let key = String::from_utf8(record.key.clone().expect("key")).expect("utf8");
            seen.insert(key, record.offset);
        }
        assert_eq!(seen, latest, "the latest value of every key is there");
        // Compaction cleans up to the active segment: below it, only the
        // last value of each key written below it may stay.
        let active_base = *common::segment_bases(&partition_dir)
            .last()
            .expect("an active segment");
        let mut latest_below: BTreeMap<&[u8], i64> = BTreeMap::new();
        for (offset, m) in sent
            .iter()
            .enumerate()
            .take(usize::try_from(active_base).expect("offset"))
        {
            latest_below.insert(m.key.as_deref().expect("key"), offset as i64);
        }
        records
            .iter()
            .filter(|r| r.offset < active_base)
            .all(|r| latest_below[r.key.as_deref().expect("key")] == r.offset)
    };
    converged();
    wait_until("compaction converges after the restart", converged);
}

#[test]
fn a_crash_before_a_compaction_swap_commits_keeps_the_old_segments() {
    compaction_crash_at("log::compaction::rename");
}

#[test]
fn a_crash_after_a_compaction_swap_commits_is_completed_by_recovery() {
    compaction_crash_at("log::compaction::swap");
}
