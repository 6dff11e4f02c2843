//! Segments zeroed ahead of the appends (`segment_preallocate_bytes`),
//! driven by librdkafka against the real binary: the zeros are there while
//! weir runs, never served, trimmed from sealed segments and by recovery
//! after a `kill -9`; a zeroing write that fails (the `fault-injection`
//! build's `log::preallocate::write`) costs nothing but the zeroing.

mod common;

use std::{path::Path, time::Duration};

use common::{
    consume_exact, create_topic, producer_config, recording_producer, Broker, BrokerOptions, TestMessage,
};

const TOPIC: &str = "zeroed";
const WINDOW_BYTES: &str = "16777216";

fn zeroing_broker(env: Vec<(String, String)>) -> Broker {
    Broker::start_weir(BrokerOptions {
        settings: vec![("segment_preallocate_bytes", "", WINDOW_BYTES.to_string())],
        env,
        ..BrokerOptions::default()
    })
}

fn messages(first: usize, count: usize) -> Vec<TestMessage> {
    (first..first + count)
        .map(|i| TestMessage::keyed(0, format!("key-{i}"), common::pseudo_random_bytes(i as u64, 3000)))
        .collect()
}

/// Produces with acks=all; every message must be acknowledged.
fn produce(bootstrap: &str, batch: &[TestMessage]) {
    let (producer, deliveries) = recording_producer(&producer_config(bootstrap, "all"));
    for delivery in common::produce_and_flush(&producer, &deliveries, TOPIC, batch) {
        assert!(delivery.outcome.is_ok(), "acknowledged: {:?}", delivery.outcome);
    }
}

/// Reads the whole partition and compares it with what was produced.
fn assert_reads_exactly(bootstrap: &str, produced: &[TestMessage], context: &str) {
    let read = consume_exact(bootstrap, TOPIC, &[(0, produced.len())])
        .remove(&0)
        .expect("partition 0");
    assert_eq!(read.len(), produced.len(), "{context}: record count");
    for (index, (got, sent)) in read.iter().zip(produced).enumerate() {
        assert!(got.matches(sent), "{context}: record {index} differs");
        assert_eq!(got.offset, index as i64, "{context}: offsets are dense");
    }
}

fn log_files(partition_dir: &Path) -> Vec<(i64, u64)> {
    common::segment_bases(partition_dir)
        .into_iter()
        .map(|base| {
            let path = partition_dir.join(format!("{base:020}.log"));
            (base, std::fs::metadata(&path).expect("stat a segment").len())
        })
        .collect()
}

/// Whether `path` ends with data (the last bytes of a batch of random
/// values; the O_DIRECT padding of the last block is under 4 KiB) rather
/// than zeros.
fn ends_with_data(path: &Path) -> bool {
    let bytes = std::fs::read(path).expect("read a segment");
    bytes[bytes.len().saturating_sub(4096)..].iter().any(|&b| b != 0)
}

fn assert_ends_with_data(path: &Path, context: &str, data: bool) {
    let bytes = std::fs::metadata(path).expect("stat a segment").len();
    assert_eq!(
        ends_with_data(path),
        data,
        "{context}: {} ({} bytes) ends with {}",
        path.display(),
        bytes,
        if data { "zeros" } else { "data" }
    );
}

#[test]
fn zeros_ahead_are_never_served_and_are_trimmed_by_rolls_and_crash_recovery() {
    let mut broker = zeroing_broker(Vec::new());
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, 1, &[("segment.bytes", "1048576")]);
    let partition_dir = broker.data_dir().join(format!("{TOPIC}-0"));

    // ~3.6 MB: three sealed 1 MiB segments and an active one.
    let mut produced = messages(0, 1200);
    produce(&bootstrap, &produced);
    assert_reads_exactly(&bootstrap, &produced, "running");

    let files = log_files(&partition_dir);
    assert!(files.len() >= 3, "rolled: {files:?}");
    // Sealed segments hold whole batches only: no zeros, nothing past 1 MiB.
    for (base, bytes) in &files[..files.len() - 1] {
        assert!(
            *bytes <= 1 << 20,
            "sealed segment {base} was trimmed: {bytes} bytes"
        );
    }
    // The active segment is zeroed ahead while weir runs.
    let (active_base, _) = *files.last().unwrap();
    let active = partition_dir.join(format!("{active_base:020}.log"));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while ends_with_data(&active) {
        assert!(
            std::time::Instant::now() < deadline,
            "the active segment was never zeroed ahead: {}",
            broker.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_reads_exactly(&bootstrap, &produced, "zeroed ahead");

    // kill -9: recovery trims the zeros and keeps every acknowledged record.
    broker.kill9();
    assert_ends_with_data(&active, "zeroed ahead before the crash", false);
    broker.restart();
    assert_ends_with_data(&active, "after recovery", true);
    assert_reads_exactly(&bootstrap, &produced, "after kill -9");
    let more = messages(5000, 300);
    produce(&bootstrap, &more);
    produced.extend(more);
    assert_reads_exactly(&bootstrap, &produced, "appended after kill -9");
}

#[cfg(feature = "fault-injection")]
#[test]
fn a_failing_zeroing_write_stops_the_zeroing_and_nothing_else() {
    let dir = common::temp_dir("weir-zeroing-fault-");
    let faults = dir.path().join("faults");
    common::arm_fault(&faults, "log::preallocate::write", "eio");
    let broker = zeroing_broker(vec![("WEIR_FAULTS_FILE".into(), faults.display().to_string())]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, 1, &[]);
    let produced = messages(0, 400);
    produce(&bootstrap, &produced);
    assert_reads_exactly(&bootstrap, &produced, "zeroing failed");
    let active = broker.data_dir().join(format!("{TOPIC}-0/{:020}.log", 0));
    assert_ends_with_data(&active, "never zeroed", true);
    assert!(
        broker.logs().contains("zeroing ahead of appends stopped"),
        "the failure is logged"
    );
}
