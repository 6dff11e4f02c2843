//! Baseline producer measurement with an independent client (librdkafka via
//! the rdkafka crate), until weir-bench exists:
//!
//! ```text
//! cargo run --release --example rdkafka_produce_baseline -- \
//!     BOOTSTRAP TOPIC MESSAGES MESSAGE_BYTES ACKS [PARTITIONS] [MESSAGES_PER_S]
//! ```
//!
//! Sends MESSAGES values of MESSAGE_BYTES with the given acks (0, 1, all),
//! either as fast as librdkafka accepts them (closed loop: throughput; the
//! latencies then are mostly queueing in the client) or paced at
//! MESSAGES_PER_S (open loop: latency at that load, linger 0, measured from
//! each message's scheduled send time so a stall is not hidden), and prints
//! throughput and the delivery latency distribution (µs, HdrHistogram).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    config::ClientConfig,
    message::DeliveryResult,
    producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer},
    ClientContext,
};

struct Latency {
    histogram: Mutex<Histogram<u64>>,
    errors: Mutex<u64>,
}

struct Context(Arc<Latency>);

impl ClientContext for Context {}

impl ProducerContext for Context {
    type DeliveryOpaque = Box<Instant>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Self::DeliveryOpaque) {
        match result {
            Ok(_) => {
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                let _ = self.0.histogram.lock().unwrap().record(micros.max(1));
            }
            Err(_) => *self.0.errors.lock().unwrap() += 1,
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        eprintln!("usage: BOOTSTRAP TOPIC MESSAGES MESSAGE_BYTES ACKS [PARTITIONS]");
        std::process::exit(2);
    }
    let (bootstrap, topic) = (&args[0], &args[1]);
    let messages: u64 = args[2].parse().expect("MESSAGES");
    let message_bytes: usize = args[3].parse().expect("MESSAGE_BYTES");
    let acks = &args[4];
    let partitions: i32 = args.get(5).map_or(8, |p| p.parse().expect("PARTITIONS"));
    let rate: Option<f64> = args.get(6).map(|r| r.parse().expect("MESSAGES_PER_S"));

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let runtime = futures_lite::future::block_on(admin.create_topics(&[new_topic], &AdminOptions::new()));
    drop(runtime);

    let latency = Arc::new(Latency {
        histogram: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()),
        errors: Mutex::new(0),
    });
    let producer: ThreadedProducer<Context> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", acks)
        .set("linger.ms", if rate.is_some() { "0" } else { "5" })
        .set("batch.size", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("enable.idempotence", "false")
        .create_with_context(Context(latency.clone()))
        .expect("producer");
    let value = vec![b'x'; message_bytes];
    let started = Instant::now();
    for index in 0..messages {
        let key = index.to_be_bytes();
        let scheduled = match rate {
            Some(rate) => {
                let due = started + Duration::from_secs_f64(index as f64 / rate);
                // Sleep rather than spin: the broker shares these cores.
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                due
            }
            None => Instant::now(),
        };
        let mut record = BaseRecord::with_opaque_to(topic, Box::new(scheduled))
            .key(&key[..])
            .payload(&value[..])
            .partition((index % partitions as u64) as i32);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, returned)) => {
                    record = returned;
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    let elapsed = started.elapsed().as_secs_f64();
    let histogram = latency.histogram.lock().unwrap();
    let megabytes = (messages as f64 * message_bytes as f64) / 1e6;
    println!(
        "acks={acks} messages={messages} message_bytes={message_bytes} partitions={partitions} \
         seconds={elapsed:.2} throughput_mb_per_s={:.1} throughput_msgs_per_s={:.0} errors={} \
         latency_us p50={} p99={} p999={} max={}",
        megabytes / elapsed,
        messages as f64 / elapsed,
        latency.errors.lock().unwrap(),
        histogram.value_at_quantile(0.5),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        histogram.max()
    );
}
