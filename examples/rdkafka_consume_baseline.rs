//! Catch-up / tail read measurement with an independent client (librdkafka),
//! until weir-bench exists:
//!
//! ```text
//! cargo run --release --example rdkafka_consume_baseline -- \
//!     BOOTSTRAP TOPIC PARTITIONS MESSAGES [BROKER_PID]
//! ```
//!
//! Reads MESSAGES records from offset 0 of partitions 0..PARTITIONS with an
//! assign-mode consumer and prints MB/s, msgs/s and, when BROKER_PID is
//! given, the broker's CPU seconds per GiB read (utime+stime from /proc).

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use rdkafka::{
    config::ClientConfig,
    consumer::{BaseConsumer, Consumer},
    Message, Offset, TopicPartitionList,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!("usage: BOOTSTRAP TOPIC PARTITIONS MESSAGES [BROKER_PID]");
        std::process::exit(2);
    }
    let (bootstrap, topic) = (&args[0], &args[1]);
    let partitions: i32 = args[2].parse().expect("PARTITIONS");
    let messages: u64 = args[3].parse().expect("MESSAGES");
    let broker_pid = args.get(4);

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "weir-baseline")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("queued.max.messages.kbytes", "1048576")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("assignment");
    }
    consumer.assign(&assignment).expect("assign");

    let cpu_before = broker_pid.and_then(|pid| support::cpu_seconds(pid));
    let started = Instant::now();
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut idle_since = Instant::now();
    while count < messages {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                count += 1;
                bytes += message.payload().map_or(0, |p| p.len() as u64);
                idle_since = Instant::now();
            }
            Some(Err(e)) => panic!("consume error: {e}"),
            None if idle_since.elapsed() > Duration::from_secs(10) => break,
            None => {}
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = support::cpu_per_gib(cpu_before, broker_pid, bytes);
    println!(
        "messages={count} bytes={bytes} seconds={seconds:.2} throughput_mb_per_s={:.1} \
         throughput_msgs_per_s={:.0}{cpu}",
        bytes as f64 / 1e6 / seconds,
        count as f64 / seconds
    );
}
