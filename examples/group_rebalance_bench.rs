//! How long a consumer group takes to settle after a member joins, with
//! librdkafka, for the three ways a group can rebalance:
//!
//! ```text
//! cargo run --release --example group_rebalance_bench -- \
//!     BOOTSTRAP eager|cooperative|consumer [MEMBERS=10] [PARTITIONS=100] [RUNS=3]
//! ```
//!
//! - `eager`: classic protocol, range assignor (every member revokes all);
//! - `cooperative`: classic protocol, cooperative-sticky (incremental);
//! - `consumer`: KIP-848 (`group.protocol=consumer`), server-side assignor.
//!
//! Each run starts MEMBERS consumers on a fresh PARTITIONS-partition topic,
//! waits until every partition is owned by exactly one member, then starts
//! one more and measures the time until the group is settled again (every
//! partition owned exactly once, every member owning some). Classic members
//! heartbeat every second; for `consumer` the broker sets the interval
//! (`group_consumer_heartbeat_interval_ms`; run it at 1000 to compare).

use std::{
    collections::BTreeSet,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    config::ClientConfig,
    consumer::{BaseConsumer, Consumer},
};

const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);

struct Member {
    owned: Arc<Mutex<BTreeSet<i32>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn start_member(bootstrap: &str, protocol: &str, group: &str, topic: &str, index: usize) -> Member {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("client.id", format!("member-{index}"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "latest");
    match protocol {
        "eager" => config
            .set("partition.assignment.strategy", "range")
            .set("heartbeat.interval.ms", "1000")
            .set("session.timeout.ms", "10000"),
        "cooperative" => config
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("heartbeat.interval.ms", "1000")
            .set("session.timeout.ms", "10000"),
        _ => config.set("group.protocol", "consumer"),
    };
    let consumer: BaseConsumer = config.create().expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let owned = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (owned_in, stop_in) = (owned.clone(), stop.clone());
    let thread = thread::spawn(move || {
        while !stop_in.load(Ordering::SeqCst) {
            let _ = consumer.poll(Duration::from_millis(20));
            if let Ok(assignment) = consumer.assignment() {
                let partitions: BTreeSet<i32> = assignment.elements().iter().map(|e| e.partition()).collect();
                *owned_in.lock().expect("owned") = partitions;
            }
        }
        consumer.unsubscribe();
    });
    Member {
        owned,
        stop,
        thread: Some(thread),
    }
}

fn settled(members: &[Member], partitions: i32) -> bool {
    let mut seen = BTreeSet::new();
    for member in members {
        let owned = member.owned.lock().expect("owned").clone();
        if owned.is_empty() {
            return false;
        }
        for p in owned {
            if !seen.insert(p) {
                return false;
            }
        }
    }
    seen.len() == partitions as usize
}

/// Waits until settled; returns the time it took and the partition-
/// milliseconds during which partitions had no owner (what a stop-the-
/// world rebalance costs the group's consumption).
fn wait_settled(members: &[Member], partitions: i32) -> (Duration, u64) {
    const SAMPLE: Duration = Duration::from_millis(5);
    let started = Instant::now();
    let mut unowned_partition_ms = 0u64;
    while !settled(members, partitions) {
        assert!(started.elapsed() < SETTLE_TIMEOUT, "group did not settle");
        let owned: BTreeSet<i32> = members
            .iter()
            .flat_map(|m| m.owned.lock().expect("owned").clone())
            .collect();
        unowned_partition_ms += (partitions as u64 - owned.len() as u64) * SAMPLE.as_millis() as u64;
        thread::sleep(SAMPLE);
    }
    (started.elapsed(), unowned_partition_ms)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: BOOTSTRAP eager|cooperative|consumer [MEMBERS=10] [PARTITIONS=100] [RUNS=3]");
        std::process::exit(2);
    }
    let (bootstrap, protocol) = (&args[0], args[1].as_str());
    let members_count: usize = args.get(2).map_or(10, |a| a.parse().expect("MEMBERS"));
    let partitions: i32 = args.get(3).map_or(100, |a| a.parse().expect("PARTITIONS"));
    let runs: usize = args.get(4).map_or(3, |a| a.parse().expect("RUNS"));
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin");
    let mut samples_ms = Vec::new();
    let nonce = std::process::id();
    for run in 0..runs {
        let topic = format!("rebalance-{protocol}-{nonce}-{run}");
        let group = format!("rebalance-group-{protocol}-{nonce}-{run}");
        let new_topic = NewTopic::new(&topic, partitions, TopicReplication::Fixed(1));
        futures_executor_block_on(admin.create_topics([&new_topic], &AdminOptions::new()))
            .expect("create topic");
        let mut members: Vec<Member> = (0..members_count)
            .map(|i| start_member(bootstrap, protocol, &group, &topic, i))
            .collect();
        let (formed, _) = wait_settled(&members, partitions);
        thread::sleep(Duration::from_secs(2));
        members.push(start_member(bootstrap, protocol, &group, &topic, members_count));
        let (settle, unowned_partition_ms) = wait_settled(&members, partitions);
        println!(
            "protocol={protocol} run={run} members={members_count}+1 partitions={partitions} \
             formed_ms={} settle_after_join_ms={} unowned_partition_ms={unowned_partition_ms}",
            formed.as_millis(),
            settle.as_millis()
        );
        samples_ms.push((settle.as_millis(), unowned_partition_ms));
        drop(members);
    }
    let median = |mut values: Vec<u64>| {
        values.sort();
        values[values.len() / 2]
    };
    println!(
        "protocol={protocol} median_settle_after_join_ms={} median_unowned_partition_ms={}",
        median(samples_ms.iter().map(|s| s.0 as u64).collect()),
        median(samples_ms.iter().map(|s| s.1).collect())
    );
}

/// Minimal executor for the admin future (no async runtime needed).
fn futures_executor_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
    fn clone(_: *const ()) -> RawWaker {
        RawWaker::new(std::ptr::null(), &VTABLE)
    }
    fn noop(_: *const ()) {}
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
    // SAFETY: the vtable's functions ignore the data pointer.
    let waker = unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) };
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        thread::sleep(Duration::from_millis(5));
    }
}
