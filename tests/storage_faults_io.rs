//! Storage faults, family 1: an I/O error (EIO) or a full device (ENOSPC)
//! in an append's write, an fdatasync or a segment roll, injected at weir's
//! named fault points (`log::fault`, built with the `fault-injection`
//! feature, which `scripts/test.sh` turns on). The producer gets
//! KAFKA_STORAGE_ERROR, nothing acknowledged is lost, and the partition
//! comes back by itself once the fault clears: no restart.
#![cfg(feature = "fault-injection")]

mod common;

use std::{
    thread,
    time::{Duration, Instant},
};

use common::{
    arm_fault, clear_faults, consume_exact, create_topic, produce_and_flush, producer_config,
    recording_producer, start_with_faults, TestMessage,
};
use rdkafka::error::RDKafkaErrorCode;

const TOPIC: &str = "faults";
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);

fn message(index: usize) -> TestMessage {
    TestMessage::keyed(
        0,
        format!("key-{index}"),
        format!("value-{index}-{}", "x".repeat(200)),
    )
}

/// Produces `messages` with `acks`; returns the delivery outcomes in order.
fn produce(bootstrap: &str, acks: &str, messages: &[TestMessage]) -> Vec<Result<(i32, i64), String>> {
    let (producer, deliveries) = recording_producer(&producer_config(bootstrap, acks));
    produce_and_flush(&producer, &deliveries, TOPIC, messages)
        .into_iter()
        .map(|d| d.outcome)
        .collect()
}

/// Produces one probe message until it is acknowledged (the partition is
/// back); returns its offset.
fn produce_until_accepted(bootstrap: &str, probe: &TestMessage) -> i64 {
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    loop {
        match produce(bootstrap, "all", std::slice::from_ref(probe)).remove(0) {
            Ok((_, offset)) => return offset,
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "the partition did not come back within {RECOVERY_TIMEOUT:?}: {error}"
                );
                thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// The error a librdkafka producer without retries reports for
/// KAFKA_STORAGE_ERROR.
fn storage_error() -> String {
    rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::KafkaStorageError).to_string()
}

/// One fault at `point`: acknowledged data before it stays, the produce
/// during it fails with KAFKA_STORAGE_ERROR, and once cleared the partition
/// takes new data; read back after a restart as well. `written_anyway`:
/// the failing step comes after the write (an fsync), so the refused
/// record may still be in the log, as with Kafka (at least once).
fn fault_then_recovery(
    point: &str,
    action: &str,
    settings: Vec<(&'static str, &'static str, String)>,
    written_anyway: bool,
) {
    let (mut broker, _dir, faults) = start_with_faults(settings);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, 1, &[("segment.bytes", "1048576")]);
    let before: Vec<TestMessage> = (0..50).map(message).collect();
    for (index, outcome) in produce(&bootstrap, "all", &before).into_iter().enumerate() {
        assert_eq!(outcome, Ok((0, index as i64)), "acknowledged before the fault");
    }

    arm_fault(&faults, point, action);
    // The roll fault needs a produce that crosses the segment size.
    let refused: Vec<TestMessage> = (50..60)
        .map(|i| TestMessage::keyed(0, format!("key-{i}"), vec![b'r'; 200_000]))
        .collect();
    let outcomes = produce(&bootstrap, "all", &refused);
    assert!(
        outcomes
            .iter()
            .any(|o| o.as_ref().err() == Some(&storage_error())),
        "{point}={action}: a produce fails with KAFKA_STORAGE_ERROR: {outcomes:?}"
    );
    let acknowledged_during: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| o.is_ok())
        .map(|(i, _)| i)
        .collect();

    clear_faults(&faults);
    let probe = message(1000);
    let probe_offset = produce_until_accepted(&bootstrap, &probe);
    let after: Vec<TestMessage> = (2000..2050).map(message).collect();
    let after_outcomes = produce(&bootstrap, "all", &after);
    assert!(
        after_outcomes.iter().all(Result::is_ok),
        "accepted after recovery: {after_outcomes:?}"
    );

    for launch in ["running", "restarted"] {
        if launch == "restarted" {
            broker.restart();
        }
        let (low, high) = common::watermarks(&bootstrap, TOPIC, 0);
        let count = usize::try_from(high - low).expect("watermarks");
        let read = consume_exact(&bootstrap, TOPIC, &[(0, count)])
            .remove(&0)
            .expect("partition 0");
        let values: Vec<Vec<u8>> = read.iter().map(|m| m.value.clone().unwrap_or_default()).collect();
        // Everything acknowledged, in order: the 50 before, those of the
        // faulty produce that were acknowledged, the probe, the 50 after.
        let mut expected: Vec<Vec<u8>> = before.iter().map(|m| m.value.clone().expect("value")).collect();
        for &index in &acknowledged_during {
            expected.push(refused[index].value.clone().expect("value"));
        }
        let refused_present: Vec<Vec<u8>> = values[50..]
            .iter()
            .take_while(|v| **v != probe.value.clone().expect("value"))
            .cloned()
            .collect();
        if written_anyway {
            // Written before the failing fsync: present or not, nothing else.
            assert!(refused_present
                .iter()
                .all(|v| refused.iter().any(|r| r.value.as_ref() == Some(v))));
            expected = before.iter().map(|m| m.value.clone().expect("value")).collect();
            expected.extend(refused_present.clone());
        } else {
            assert_eq!(
                refused_present.len(),
                acknowledged_during.len(),
                "{launch}: nothing refused was stored"
            );
        }
        expected.push(probe.value.clone().expect("value"));
        expected.extend(after.iter().map(|m| m.value.clone().expect("value")));
        assert_eq!(values.len(), expected.len(), "{launch}: record count");
        assert!(
            values == expected,
            "{launch}: the log holds exactly what was acknowledged, in order"
        );
        assert_eq!(read[50 + refused_present.len()].offset, probe_offset);
    }
}

#[test]
fn eio_in_an_append_write_is_a_storage_error_and_the_partition_comes_back() {
    fault_then_recovery("log::append::write", "eio", Vec::new(), false);
}

#[test]
fn enospc_in_an_append_write_is_a_storage_error_and_the_partition_comes_back() {
    fault_then_recovery("log::append::write", "enospc", Vec::new(), false);
}

#[test]
fn eio_in_an_fdatasync_fails_acks_all_and_the_partition_comes_back() {
    fault_then_recovery("log::fsync", "eio", Vec::new(), true);
}

#[test]
fn enospc_in_a_segment_roll_is_a_storage_error_and_the_partition_comes_back() {
    fault_then_recovery("log::roll", "enospc", Vec::new(), false);
}
