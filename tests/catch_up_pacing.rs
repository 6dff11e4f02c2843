//! Catch-up pacing (adaptive by default; here also with a fixed ceiling,
//! `catch_up_fetch_bytes_per_s_max`): while a producer is active, fetch
//! responses are capped at 1 MiB and catch-up reads are paced;
//! without producers, catch-up reads are whole again. Nothing is lost or
//! reordered by the pacing: a librdkafka consumer catching up while a
//! producer writes gets every record exactly once.
//!
//! No timing is asserted (the machine is shared): only response sizes and
//! delivered records.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use common::wire::{
    batch_base_offset, batch_crc_is_valid, encode_batch, record, split_batches, Connection, ERROR_NONE,
};
use common::{Broker, BrokerOptions};

const TOPIC: &str = "paced";
/// The broker's response cap while pacing (src/fetch/pacing.rs).
const PACED_RESPONSE_BYTES_MAX: usize = 1024 * 1024;
const BACKLOG_BATCHES: usize = 256;
const RECORDS_PER_BATCH: usize = 16;
const VALUE_BYTES: usize = 1000;

fn paced_broker() -> Broker {
    Broker::start_with(BrokerOptions {
        // No tail cache: every read is a catch-up read.
        config_toml: Some("catch_up_fetch_bytes_per_s_max = 8388608\ntail_cache_bytes = 0\n".into()),
        ..BrokerOptions::default()
    })
}

/// Appends `batches` batches of 16 × 1000-byte records; returns the next offset.
fn produce_batches(connection: &mut Connection, first_offset: i64, batches: usize) -> i64 {
    let mut offset = first_offset;
    for _ in 0..batches {
        let records: Vec<_> = (0..RECORDS_PER_BATCH as i64)
            .map(|i| {
                let value = format!("{:0>width$}", offset + i, width = VALUE_BYTES);
                record(
                    i,
                    1_700_000_000_000,
                    format!("k{}", offset + i).as_bytes(),
                    value.as_bytes(),
                )
            })
            .collect();
        let response = connection.produce(TOPIC, 0, -1, encode_batch(&records));
        assert_eq!(response.error_code, ERROR_NONE, "produce at {offset}");
        assert_eq!(response.base_offset, offset, "dense offsets");
        offset += RECORDS_PER_BATCH as i64;
    }
    offset
}

/// A producer writing one batch every 50 ms from `next` until `stop`;
/// joins with the offset after its last batch.
fn spawn_producer(broker: &Broker, mut next: i64, stop: Arc<AtomicBool>) -> thread::JoinHandle<i64> {
    let addr = broker.socket_addr();
    thread::spawn(move || {
        let mut connection = Connection::open(addr);
        while !stop.load(Ordering::SeqCst) {
            next = produce_batches(&mut connection, next, 1);
            thread::sleep(Duration::from_millis(50));
        }
        next
    })
}

fn fetched_bytes(connection: &mut Connection, offset: i64) -> usize {
    let data = connection.fetch(TOPIC, 0, offset, 0);
    assert_eq!(data.error_code, ERROR_NONE, "fetch at {offset}");
    data.records.map_or(0, |r| r.len())
}

#[test]
fn catch_up_responses_are_capped_only_while_producing_and_every_record_still_arrives() {
    let broker = paced_broker();
    let mut connection = Connection::open(broker.socket_addr());
    let backlog_end = produce_batches(&mut connection, 0, BACKLOG_BATCHES);
    let backlog_bytes = BACKLOG_BATCHES * RECORDS_PER_BATCH * VALUE_BYTES;

    // No producer for more than a second: a catch-up fetch is whole
    // (the test fetch asks for up to 8 MiB of the ~4 MiB backlog).
    thread::sleep(Duration::from_millis(1500));
    let whole = fetched_bytes(&mut connection, 0);
    assert!(
        whole > backlog_bytes,
        "without producers a catch-up fetch returns the whole backlog: {whole} bytes"
    );

    // A producer writes a batch every 50 ms from here on.
    let stop = Arc::new(AtomicBool::new(false));
    let producer = spawn_producer(&broker, backlog_end, stop.clone());
    thread::sleep(Duration::from_millis(200));
    for offset in [0, backlog_end / 2] {
        let capped = fetched_bytes(&mut connection, offset);
        assert!(
            capped > 0 && capped <= PACED_RESPONSE_BYTES_MAX,
            "while producing, a catch-up fetch at {offset} is capped at 1 MiB: {capped} bytes"
        );
    }

    // librdkafka catches up on the backlog while the producer keeps going,
    // and gets every record, in order, exactly once.
    let consumer = common::consumer(&broker.bootstrap());
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(TOPIC, 0, Offset::Offset(0))
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + common::CONSUME_TIMEOUT;
    let mut next = 0i64;
    while next < backlog_end {
        assert!(
            Instant::now() < deadline,
            "caught up only to offset {next} of {backlog_end}"
        );
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Err(e)) => panic!("consume error at offset {next}: {e}"),
            Some(Ok(message)) => {
                assert_eq!(message.offset(), next, "dense offsets, in order, no duplicates");
                let expected_value = format!("{:0>width$}", next, width = VALUE_BYTES);
                assert_eq!(
                    message.payload(),
                    Some(expected_value.as_bytes()),
                    "record {next} intact"
                );
                next += 1;
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    let produced_end = producer.join().expect("producer thread");
    assert!(
        produced_end > backlog_end,
        "the producer was active during the catch-up"
    );
}

/// The default, adaptive pacing: when a producer starts, catch-up reads
/// start at `catch_up_fetch_bytes_per_s_min` and earn more only from
/// windows with enough produce latencies to judge (at least 5 per 100 ms;
/// this producer sends 2). Reading the ~4 MiB backlog at the 1 MiB/s floor
/// takes about 4 s; only a lower bound is asserted (a slow machine can only
/// make it longer), and every byte must still arrive in order.
#[test]
fn adaptive_pacing_holds_catch_up_reads_at_the_floor_while_a_producer_writes() {
    let broker = Broker::start_with(BrokerOptions {
        config_toml: Some("catch_up_fetch_bytes_per_s_min = 1048576\ntail_cache_bytes = 0\n".into()),
        ..BrokerOptions::default()
    });
    let mut connection = Connection::open(broker.socket_addr());
    let backlog_end = produce_batches(&mut connection, 0, BACKLOG_BATCHES);

    let stop = Arc::new(AtomicBool::new(false));
    let producer = spawn_producer(&broker, backlog_end, stop.clone());
    thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let (mut offset, mut bytes) = (0i64, 0usize);
    while offset < backlog_end {
        let data = connection.fetch(TOPIC, 0, offset, 0);
        assert_eq!(data.error_code, ERROR_NONE, "fetch at {offset}");
        let records = data.records.expect("records below the high watermark");
        assert!(
            records.len() <= PACED_RESPONSE_BYTES_MAX,
            "capped while producing"
        );
        bytes += records.len();
        let batches = split_batches(records);
        assert!(batches.iter().all(|b| batch_crc_is_valid(b)), "intact batches");
        let first = batches.first().expect("whole batches");
        assert_eq!(batch_base_offset(first), offset, "continues where it stopped");
        offset = batch_base_offset(batches.last().expect("whole batches")) + RECORDS_PER_BATCH as i64;
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    producer.join().expect("producer thread");
    assert!(bytes >= BACKLOG_BATCHES * RECORDS_PER_BATCH * VALUE_BYTES);
    assert!(
        elapsed >= Duration::from_secs(2),
        "{bytes} catch-up bytes at a 1 MiB/s floor arrived in {elapsed:?}"
    );
}
