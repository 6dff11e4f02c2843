//! Durability across process restarts.
//!
//! A clean restart (SIGTERM, start on the same data directory and port) must
//! bring back exactly the same records at the same offsets, and new records
//! continue densely after them. A crash (SIGKILL while an acks=all producer is
//! busy) may lose records that were never acknowledged, but never one that
//! was: after restart every acknowledged record is at the offset its delivery
//! report named, and the log is dense from 0 with no torn or foreign records.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::producer::Producer;

use common::{
    consume_exact, create_topic, enqueue, produce_all_acked, producer_config, pseudo_random_bytes,
    recording_producer, watermarks, Broker, ConsumedMessage, TestMessage,
};

const PARTITION_COUNT: i32 = 2;

fn consume_everything(bootstrap: &str, topic: &str) -> BTreeMap<i32, Vec<ConsumedMessage>> {
    let expected: Vec<(i32, usize)> = (0..PARTITION_COUNT)
        .map(|partition| {
            let (low, high) = watermarks(bootstrap, topic, partition);
            assert_eq!(low, 0, "{topic}/{partition}: log start offset");
            (partition, high as usize)
        })
        .collect();
    consume_exact(bootstrap, topic, &expected)
}

#[test]
fn records_survive_clean_restart_at_same_offsets() {
    let mut broker = Broker::start();
    let topic = "restart-clean";
    create_topic(&broker.bootstrap(), topic, PARTITION_COUNT, &[]);
    let message = |id: usize| TestMessage {
        partition: (id % PARTITION_COUNT as usize) as i32,
        key: Some(format!("restart-{id}").into_bytes()),
        value: Some(pseudo_random_bytes(id as u64, 50 + id % 700)),
        headers: vec![("id".to_string(), Some(id.to_string().into_bytes()))],
        timestamp_ms: Some(1_650_000_000_000 + id as i64),
    };
    let first: Vec<TestMessage> = (0..3_000).map(message).collect();
    produce_all_acked(&broker.bootstrap(), "all", topic, &first);
    let before = consume_everything(&broker.bootstrap(), topic);
    assert_eq!(before[&0].len() + before[&1].len(), first.len());

    broker.restart();
    let after = consume_everything(&broker.bootstrap(), topic);
    assert_eq!(after, before, "records after a clean restart differ from before");

    // New records continue the same offset sequence.
    let second: Vec<TestMessage> = (3_000..3_600).map(message).collect();
    let reports = produce_all_acked(&broker.bootstrap(), "all", topic, &second);
    for report in &reports {
        let id = 3_000 + report.id;
        let (partition, offset) = report.outcome.clone().expect("acknowledged");
        assert_eq!(partition, (id % 2) as i32);
        assert_eq!(offset, (id / 2) as i64, "offset of message {id} after restart");
    }
    broker.restart();
    let all = consume_everything(&broker.bootstrap(), topic);
    for (partition, messages) in &all {
        assert_eq!(messages.len(), 1_800);
        assert_eq!(messages[..1_500], before[partition][..], "old records changed");
        for (offset, consumed) in messages.iter().enumerate() {
            let sent = message(offset * 2 + *partition as usize);
            assert!(
                consumed.matches(&sent),
                "{partition}/{offset}: {consumed:?} != {sent:?}"
            );
        }
    }
    broker.stop();
}

/// A message of the crash test, derivable from its id alone.
fn crash_message(id: usize) -> TestMessage {
    TestMessage {
        timestamp_ms: Some(1_660_000_000_000 + id as i64),
        ..TestMessage::keyed(
            (id % PARTITION_COUNT as usize) as i32,
            format!("crash-{id}"),
            pseudo_random_bytes(id as u64, 100 + id % 400),
        )
    }
}

/// Parses the id out of a crash-test key.
fn crash_id(message: &ConsumedMessage) -> usize {
    let key = String::from_utf8(message.key.clone().expect("key")).expect("utf-8 key");
    key.strip_prefix("crash-")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("foreign record with key {key:?}"))
}

/// Acknowledged messages: id -> (partition, offset).
type Acked = BTreeMap<usize, (i32, i64)>;

/// Produces crash messages with ids from `first_id` on, acks=all, until
/// `stop` is set; then waits (bounded) for every outstanding delivery report
/// and returns the acknowledged ones.
fn produce_until_stopped(
    bootstrap: String,
    topic: &'static str,
    first_id: usize,
    stop: Arc<AtomicBool>,
    acked_so_far: Arc<AtomicUsize>,
) -> Acked {
    let mut config = producer_config(&bootstrap, "all");
    config
        .set("message.timeout.ms", "5000")
        .set("request.timeout.ms", "4000");
    let (producer, deliveries) = recording_producer(&config);
    let collect_acked = |acked: &mut Acked| {
        for delivery in deliveries.lock().expect("delivery log").drain(..) {
            if let Ok(position) = delivery.outcome {
                acked.insert(first_id + delivery.id, position);
            }
        }
    };
    let mut acked = Acked::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut sent = 0;
    while !stop.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "crash producer was never stopped");
        if producer.in_flight_count() > 5_000 {
            producer.poll(Duration::from_millis(5));
        } else {
            enqueue(&producer, topic, sent, &crash_message(first_id + sent));
            sent += 1;
            producer.poll(Duration::ZERO);
        }
        collect_acked(&mut acked);
        acked_so_far.store(acked.len(), Ordering::SeqCst);
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("every outstanding message resolves within message.timeout.ms");
    collect_acked(&mut acked);
    eprintln!(
        "crash round from id {first_id}: {sent} sent, {} acknowledged",
        acked.len()
    );
    assert!(
        acked.len() < sent,
        "test precondition: the SIGKILL should have left messages unacknowledged"
    );
    acked
}

/// Runs a producer against `broker`, SIGKILLs the broker once at least
/// `ACKS_BEFORE_KILL` messages are acknowledged (while the producer keeps
/// sending), and returns the acknowledged messages.
fn produce_then_crash(broker: &mut Broker, topic: &'static str, first_id: usize) -> Acked {
    const ACKS_BEFORE_KILL: usize = 3_000;
    let stop = Arc::new(AtomicBool::new(false));
    let acked_so_far = Arc::new(AtomicUsize::new(0));
    let producer = {
        let bootstrap = broker.bootstrap();
        let stop = Arc::clone(&stop);
        let acked_so_far = Arc::clone(&acked_so_far);
        thread::spawn(move || produce_until_stopped(bootstrap, topic, first_id, stop, acked_so_far))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked_so_far.load(Ordering::SeqCst) < ACKS_BEFORE_KILL {
        if Instant::now() >= deadline || producer.is_finished() {
            stop.store(true, Ordering::SeqCst);
            let _ = producer.join();
            panic!(
                "only {} acks within 60 s before the planned SIGKILL",
                acked_so_far.load(Ordering::SeqCst)
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
    // Let the producer run on so the kill lands mid-stream.
    thread::sleep(Duration::from_millis(150));
    broker.kill9();
    stop.store(true, Ordering::SeqCst);
    producer.join().expect("producer thread panicked")
}

/// Everything in the log is ours and intact, offsets are dense, and every
/// acknowledged message is at the offset its delivery report named.
fn assert_acked_messages_present(broker: &Broker, topic: &str, acked: &Acked) {
    let log = consume_everything(&broker.bootstrap(), topic);
    let lengths: Vec<usize> = log.values().map(Vec::len).collect();
    eprintln!(
        "after restart: {lengths:?} records per partition, {} acknowledged",
        acked.len()
    );
    for (partition, messages) in &log {
        for consumed in messages {
            let id = crash_id(consumed);
            let sent = crash_message(id);
            assert!(
                consumed.matches(&sent),
                "{partition}/{}: record for id {id} is damaged: {consumed:?}",
                consumed.offset
            );
        }
    }
    for (&id, &(partition, offset)) in acked {
        let messages = &log[&partition];
        assert!(
            (offset as usize) < messages.len(),
            "acked message {id} at {partition}/{offset} lost: partition ends at {}",
            messages.len()
        );
        assert_eq!(
            crash_id(&messages[offset as usize]),
            id,
            "{partition}/{offset} holds another record than the acked message {id}"
        );
    }
}

#[test]
fn acked_records_survive_sigkill() {
    let topic = "crash-acks-all";
    let mut broker = Broker::start();
    create_topic(&broker.bootstrap(), topic, PARTITION_COUNT, &[]);

    let mut acked = produce_then_crash(&mut broker, topic, 0);
    broker.restart();
    assert_acked_messages_present(&broker, topic, &acked);

    // Crash again on top of a recovered log.
    acked.extend(produce_then_crash(&mut broker, topic, 1_000_000));
    broker.restart();
    assert_acked_messages_present(&broker, topic, &acked);

    // And the recovered broker still takes writes at the next dense offset.
    let high_before: Vec<i64> = (0..PARTITION_COUNT)
        .map(|p| watermarks(&broker.bootstrap(), topic, p).1)
        .collect();
    let reports = produce_all_acked(&broker.bootstrap(), "all", topic, &[crash_message(2_000_000)]);
    assert_eq!(reports[0].outcome, Ok((0, high_before[0])));
    broker.stop();
}
