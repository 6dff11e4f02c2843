//! The admin HTTP listener (`--admin-listen`): `/metrics` counts what the
//! broker did and parses as Prometheus exposition (Python's
//! `prometheus_client` parser reads it), `/v1/latency` gives `.hgrm` text
//! whose count matches, `/v1/status` and the health endpoints answer, and
//! garbage, oversized, slow or wrong requests get a 4xx (or nothing) without
//! harming the Kafka port.

mod common;

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    thread,
    time::{Duration, Instant},
};

use bytes::Bytes;
use common::{
    assert_broker_serves_clients, create_topic,
    http::{admin_addr, exchange, get, hgrm_total},
    repo_path, wire,
    wire::Connection,
    Broker, BrokerOptions,
};

const TOPIC: &str = "observed";

/// The value of the sample `name` (with its labels, as exposed).
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Produces `count` one-record batches `k0`, `k1`, … with `value` to
/// partition 0 of TOPIC, each acknowledged.
fn produce_keys(connection: &mut Connection, count: usize, value: &[u8]) {
    for i in 0..count {
        let record = wire::record(0, 1_700_000_000_000, format!("k{i}").as_bytes(), value);
        let response = connection.produce(TOPIC, 0, 1, wire::encode_batch(&[record]));
        assert_eq!(response.error_code, 0);
    }
}

/// A consumer of `group` that committed `offset` for partition 0 of TOPIC
/// (librdkafka's OffsetCommit); keep it to keep the group.
fn commit_as_group(broker: &Broker, group: &str, offset: i64) -> rdkafka::consumer::BaseConsumer {
    use rdkafka::{
        consumer::{CommitMode, Consumer},
        Offset, TopicPartitionList,
    };
    let consumer: rdkafka::consumer::BaseConsumer = common::consumer_config(&broker.bootstrap())
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(TOPIC, 0, Offset::Offset(offset))
        .expect("offset");
    consumer.commit(&offsets, CommitMode::Sync).expect("commit");
    consumer
}

#[test]
fn metrics_count_every_produce_request_and_latency_matches() {
    let broker = Broker::start_weir(BrokerOptions::default());
    let admin = admin_addr(&broker);
    create_topic(&broker.bootstrap(), TOPIC, 1, &[]);
    let (_, before) = get(admin, "/metrics");
    let produced_before = sample(&before, "weir_requests_total{api=\"Produce\"}").unwrap_or(0.0);
    // A fresh latency interval for the requests below.
    let (status, _) = get(admin, "/v1/latency?api=Produce&reset=true");
    assert_eq!(status, 200);

    const REQUESTS: usize = 25;
    let mut connection = Connection::open(broker.socket_addr());
    for i in 0..REQUESTS {
        let record = wire::record(0, 1_700_000_000_000, format!("k{i}").as_bytes(), b"value");
        let records: Bytes = wire::encode_batch(&[record]);
        let response = connection.produce(TOPIC, 0, 1, records);
        assert_eq!(response.error_code, 0);
    }

    let (status, metrics) = get(admin, "/metrics");
    assert_eq!(status, 200);
    let produced = sample(&metrics, "weir_requests_total{api=\"Produce\"}").expect("produce counter");
    assert_eq!(produced - produced_before, REQUESTS as f64, "{metrics}");
    let count = sample(
        &metrics,
        "weir_request_duration_seconds_count{api=\"Produce\",stage=\"handler\"}",
    )
    .expect("produce histogram");
    assert_eq!(count, produced, "histogram count = requests");
    // Every produce request passed decode, queue and respond, and its batch
    // one O_DIRECT write (acks=1: no fsync).
    for stage in ["decode", "queue", "respond", "append"] {
        let name = format!("weir_request_duration_seconds_count{{api=\"Produce\",stage=\"{stage}\"}}");
        let expected = if stage == "append" {
            REQUESTS as f64
        } else {
            produced
        };
        assert_eq!(sample(&metrics, &name), Some(expected), "{stage}: {metrics}");
    }
    assert_eq!(
        sample(
            &metrics,
            "weir_request_duration_seconds_count{api=\"Produce\",stage=\"fsync\"}"
        ),
        None
    );
    let inf = sample(
        &metrics,
        "weir_request_duration_seconds_bucket{api=\"Produce\",stage=\"handler\",le=\"+Inf\"}",
    )
    .expect("+Inf bucket");
    assert_eq!(inf, count);
    assert_eq!(
        sample(
            &metrics,
            &format!("weir_log_end_offset{{topic=\"{TOPIC}\",partition=\"0\"}}")
        ),
        Some(REQUESTS as f64)
    );
    assert_eq!(
        sample(
            &metrics,
            &format!("weir_log_start_offset{{topic=\"{TOPIC}\",partition=\"0\"}}")
        ),
        Some(0.0)
    );
    assert_eq!(sample(&metrics, "weir_ready"), Some(1.0));
    assert!(sample(&metrics, "process_resident_memory_bytes").is_some_and(|b| b > 1e6));

    // The interval since the reset holds exactly these requests.
    let (status, hgrm) = get(admin, "/v1/latency?api=Produce&stage=handler");
    assert_eq!(status, 200);
    assert_eq!(hgrm_total(&hgrm), REQUESTS as u64, "{hgrm}");
    let last_row_count: u64 = hgrm
        .lines()
        .filter(|line| !line.starts_with('#') && line.split_whitespace().count() == 4)
        .filter_map(|line| line.split_whitespace().nth(2)?.parse().ok())
        .next_back()
        .expect("percentile rows");
    assert_eq!(last_row_count, REQUESTS as u64, "{hgrm}");
    // Per shard, the counts add up; a reset empties the interval.
    let per_shard: u64 = (0..2)
        .map(|shard| {
            let (status, text) = get(admin, &format!("/v1/latency?api=Produce&shard={shard}"));
            assert_eq!(status, 200);
            hgrm_total(&text)
        })
        .sum();
    assert_eq!(per_shard, REQUESTS as u64);
    get(admin, "/v1/latency?api=Produce&reset=true");
    let (_, emptied) = get(admin, "/v1/latency?api=Produce");
    assert_eq!(hgrm_total(&emptied), 0, "{emptied}");
    // acks=all: each batch also waits for the group commit's fdatasync.
    for i in 0..5 {
        let record = wire::record(0, 1_700_000_000_000, format!("s{i}").as_bytes(), b"synced");
        assert_eq!(
            connection
                .produce(TOPIC, 0, -1, wire::encode_batch(&[record]))
                .error_code,
            0
        );
    }
    for stage in ["append", "fsync", "handler"] {
        let (status, text) = get(admin, &format!("/v1/latency?api=Produce&stage={stage}"));
        assert_eq!(status, 200);
        assert_eq!(hgrm_total(&text), 5, "{stage}: {text}");
    }

    // Python's prometheus_client parses the whole exposition and finds the
    // same counter.
    let script = repo_path("tests/python/admin_metrics.py");
    let output = std::process::Command::new("python3")
        .arg(&script)
        .arg(format!("{}/metrics", broker.admin_url()))
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "admin_metrics.py: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("produce_requests={}", produced as u64 + 5)),
        "{stdout}"
    );
}

#[test]
fn group_lag_connections_bytes_and_stalls_are_exposed() {
    let broker = Broker::start_weir(BrokerOptions::default());
    let admin = admin_addr(&broker);
    create_topic(&broker.bootstrap(), TOPIC, 1, &[]);
    let mut connection = Connection::open(broker.socket_addr());
    produce_keys(&mut connection, 10, b"0123456789");
    // A group that consumed 4 of the 10 records.
    let consumer = commit_as_group(&broker, "lagging", 4);

    let (status, metrics) = get(admin, "/metrics");
    assert_eq!(status, 200);
    let labels = format!("{{group=\"lagging\",topic=\"{TOPIC}\",partition=\"0\"}}");
    assert_eq!(
        sample(&metrics, &format!("weir_consumer_group_committed_offset{labels}")),
        Some(4.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, &format!("weir_consumer_group_lag{labels}")),
        Some(6.0)
    );
    // Our raw connection and the consumer's are open; the batches' bytes
    // went in under the topic.
    let open: f64 = (0..2)
        .filter_map(|shard| sample(&metrics, &format!("weir_connections{{shard=\"{shard}\"}}")))
        .sum();
    assert!(open >= 2.0, "{metrics}");
    let accepted: f64 = (0..2)
        .filter_map(|shard| {
            sample(
                &metrics,
                &format!("weir_connections_accepted_total{{shard=\"{shard}\"}}"),
            )
        })
        .sum();
    assert!(accepted >= open);
    let bytes_in = sample(&metrics, &format!("weir_bytes_in_total{{topic=\"{TOPIC}\"}}")).expect("bytes in");
    assert!(bytes_in >= 10.0 * 10.0, "{metrics}");
    assert!(sample(&metrics, "weir_shard_stalls_total{shard=\"0\"}").is_some());
    // Adaptive pacing starts from its floor (catch_up_fetch_bytes_per_s_min).
    assert_eq!(
        sample(&metrics, "weir_catch_up_allowance_bytes_per_second"),
        Some(8_388_608.0),
        "{metrics}"
    );
    // A fetch counts bytes out under the topic; one at the end waits in
    // the long poll.
    connection.fetch(TOPIC, 0, 0, 0);
    connection.fetch(TOPIC, 0, 10, 100);
    // A produce to a partition that does not exist is a counted error.
    let record = wire::record(0, 1_700_000_000_000, b"k", b"v");
    let refused = connection.produce(TOPIC, 5, 1, wire::encode_batch(&[record]));
    assert_eq!(refused.error_code, 3);
    let (_, metrics) = get(admin, "/metrics");
    assert!(
        sample(&metrics, &format!("weir_bytes_out_total{{topic=\"{TOPIC}\"}}")).is_some_and(|b| b > 0.0),
        "{metrics}"
    );
    // The first fetch was a tail-cache hit; the long poll read nothing.
    assert_eq!(
        sample(&metrics, "weir_fetch_reads_total{source=\"tail_cache\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "weir_errors_total{api=\"Produce\",code=\"3\",error=\"UnknownTopicOrPartition\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    for (stage, at_least_us) in [("read", 0), ("wait", 50_000), ("paced", 0)] {
        let (count, max) = stage_count_and_max(admin, "Fetch", stage);
        assert_eq!(count, 2, "{stage}");
        assert!(max >= f64::from(at_least_us), "{stage}: max {max} µs");
    }
    drop(consumer);
}

#[test]
fn status_and_health_answer() {
    let broker = Broker::start_weir(BrokerOptions::default());
    let admin = admin_addr(&broker);
    create_topic(&broker.bootstrap(), TOPIC, 4, &[]);
    assert_eq!(get(admin, "/healthz"), (200, "ok\n".into()));
    assert_eq!(get(admin, "/readyz"), (200, "ready\n".into()));
    let (status, body) = get(admin, "/v1/status");
    assert_eq!(status, 200);
    assert!(body.contains("\"shards\":2"), "{body}");
    assert!(body.contains("\"ready\":true"), "{body}");
    assert!(
        body.contains(&format!("{{\"name\":\"{TOPIC}\",\"partitions\":4}}")),
        "{body}"
    );
    assert!(body.contains("\"partitions_per_shard\":[2,2]"), "{body}");
    // HEAD: the headers a GET gets, no body.
    let (status, body) = exchange(admin, b"HEAD /healthz HTTP/1.1\r\n\r\n");
    assert_eq!((status, body.as_str()), (200, ""));
}

#[test]
fn bad_admin_requests_get_4xx_and_the_kafka_port_keeps_serving() {
    let broker = Broker::start_weir(BrokerOptions::default());
    let admin = admin_addr(&broker);
    // A client that connects and says nothing holds only its own connection.
    let idle = TcpStream::connect(admin).expect("idle connection");
    let half = {
        let mut half = TcpStream::connect(admin).expect("half a request");
        half.write_all(b"GET /metr").expect("send");
        half
    };
    assert_eq!(
        exchange(admin, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n").0,
        400
    );
    assert_eq!(exchange(admin, b"GET / HTTP/9.9\r\n\r\n").0, 400);
    let oversized = format!(
        "GET /metrics HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(16 * 1024)
    );
    assert_eq!(exchange(admin, oversized.as_bytes()).0, 431);
    assert_eq!(exchange(admin, b"POST /metrics HTTP/1.1\r\n\r\n").0, 405);
    assert_eq!(
        exchange(admin, b"PUT /metrics HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd").0,
        413
    );
    assert_eq!(get(admin, "/nope").0, 404);
    assert_eq!(get(admin, "/v1/latency").0, 400);
    assert_eq!(get(admin, "/v1/latency?api=NoSuchApi").0, 404);
    assert_eq!(get(admin, "/v1/latency?api=Produce&stage=nope").0, 404);
    assert_eq!(get(admin, "/v1/latency?api=Produce&shard=7").0, 400);
    assert_eq!(get(admin, "/v1/latency?api=Produce&reset=maybe").0, 400);
    // A connection that sends garbage and closes gets nothing back.
    {
        let mut closed = TcpStream::connect(admin).expect("connect");
        closed.write_all(b"GET /metrics HTTP/1.1\r\nHost").expect("send");
    }
    // Everything still answers, the admin port and the Kafka port.
    assert_eq!(get(admin, "/healthz").0, 200);
    assert_eq!(get(admin, "/metrics").0, 200);
    assert_broker_serves_clients(&broker.bootstrap(), TOPIC);
    drop((idle, half));
}

#[test]
fn a_taken_admin_address_stops_startup_with_a_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let data = common::temp_dir("admin-taken-");
    let mut child = std::process::Command::new(common::weir_binary())
        .args([
            "--listen",
            &format!("127.0.0.1:{}", common::free_port()),
            "--admin-listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            &data.path().display().to_string(),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn weir");
    let status = common::wait_with_timeout(&mut child, Duration::from_secs(30)).expect("weir exits");
    assert!(!status.success());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert!(stderr.contains("binding the admin listener"), "{stderr}");
}

#[test]
fn readyz_says_ready_only_once_the_kafka_port_serves() {
    // A broker with a log to recover, killed so recovery has work to do.
    let broker = Broker::start_weir(BrokerOptions::default());
    create_topic(&broker.bootstrap(), TOPIC, 8, &[]);
    let mut connection = Connection::open(broker.socket_addr());
    let value = vec![7u8; 64 * 1024];
    for i in 0..800 {
        let record = wire::record(0, 1_700_000_000_000, format!("k{i}").as_bytes(), &value);
        connection.produce(TOPIC, i % 8, 1, wire::encode_batch(&[record]));
    }
    let data_dir = broker.data_dir().to_path_buf();
    let admin = admin_addr(&broker);
    let mut broker = broker;
    broker.kill9();
    let started = Instant::now();
    broker.relaunch_in_background();
    let mut answers = Vec::new();
    while started.elapsed() < Duration::from_secs(60) {
        if let Ok(mut stream) = TcpStream::connect_timeout(&admin, Duration::from_millis(200)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            if stream.write_all(b"GET /readyz HTTP/1.1\r\n\r\n").is_ok() {
                let mut response = String::new();
                let _ = stream.read_to_string(&mut response);
                if response.starts_with("HTTP/1.1 200") {
                    // Ready means served: the Kafka port accepts now.
                    TcpStream::connect_timeout(&broker.socket_addr(), Duration::from_secs(1))
                        .expect("ready implies the Kafka port accepts");
                    answers.push(200);
                    break;
                }
                if response.starts_with("HTTP/1.1 503") {
                    answers.push(503);
                }
            }
        }
        thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(answers.last(), Some(&200), "ready within 60 s: {answers:?}");
    // Recovering 50 MB (the active segments are scanned after a kill) takes
    // far longer than the listener takes to answer.
    assert!(
        answers.contains(&503),
        "readyz said 503 while {} was recovered: {answers:?}",
        data_dir.display()
    );
    broker.wait_until_serving();
    let mut connection = Connection::open(broker.socket_addr());
    let record = wire::record(0, 1_700_000_000_000, b"after", b"recovery");
    let response = connection.produce(TOPIC, 0, 1, wire::encode_batch(&[record]));
    assert_eq!((response.error_code, response.base_offset), (0, 100));
}

/// Count of `api`'s `stage` since the broker started (its `.hgrm`), and the
/// largest value in µs.
fn stage_count_and_max(admin: SocketAddr, api: &str, stage: &str) -> (u64, f64) {
    let (status, hgrm) = get(admin, &format!("/v1/latency?api={api}&stage={stage}"));
    assert_eq!(status, 200, "{api}/{stage}: {hgrm}");
    let max = hgrm
        .lines()
        .find_map(|line| {
            line.strip_prefix("#[Max     =")?
                .split(',')
                .next()?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0);
    (hgrm_total(&hgrm), max)
}

#[test]
fn socket_coordinator_stages_and_errors_of_every_api_are_recorded() {
    use rdkafka::{
        admin::{NewTopic, TopicReplication},
        producer::{BaseRecord, Producer},
    };
    let broker = Broker::start_weir(BrokerOptions::default());
    let admin = admin_addr(&broker);
    create_topic(&broker.bootstrap(), TOPIC, 1, &[]);

    // 40 requests on one connection: frames 1, 17 and 33 have their time
    // in the socket timed (one in 16); the first only if it arrived after
    // the shard turned receive timestamps on for the new socket.
    let mut connection = Connection::open(broker.socket_addr());
    produce_keys(&mut connection, 40, b"v");
    let (sampled, max_us) = stage_count_and_max(admin, "Produce", "socket");
    assert!(
        (2..=3).contains(&sampled),
        "{sampled}: one produce in 16 is sampled"
    );
    assert!(
        max_us < 10e6,
        "socket time {max_us} µs is not a receive-queue time"
    );

    // A group commit: timed at the coordinator, its record written and
    // synced (fsync_policy acks-all covers the coordinators' records).
    let consumer = commit_as_group(&broker, "committer", 7);
    for stage in ["coordinator", "append", "fsync"] {
        assert!(
            stage_count_and_max(admin, "OffsetCommit", stage).0 >= 1,
            "OffsetCommit/{stage}"
        );
    }

    // A committed transaction: its coordinator calls and their records.
    let producer: rdkafka::producer::BaseProducer = common::client_config(&broker.bootstrap())
        .set("transactional.id", "observed-txn")
        .set("acks", "all")
        .create()
        .expect("producer");
    producer
        .init_transactions(common::CLIENT_TIMEOUT)
        .expect("init_transactions");
    producer.begin_transaction().expect("begin");
    producer
        .send(BaseRecord::to(TOPIC).key("k").payload("in a transaction"))
        .map_err(|(error, _)| error)
        .expect("send");
    producer
        .commit_transaction(common::CLIENT_TIMEOUT)
        .expect("commit_transaction");
    for api in ["InitProducerId", "AddPartitionsToTxn", "EndTxn"] {
        for stage in ["coordinator", "append", "fsync"] {
            assert!(stage_count_and_max(admin, api, stage).0 >= 1, "{api}/{stage}");
        }
    }

    // Errors of APIs other than Produce and Fetch: a topic created twice.
    let admin_client = common::admin(&broker.bootstrap());
    let again = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(1));
    let results = common::block_on(
        admin_client.create_topics([&again], &common::admin_options()),
        common::CLIENT_TIMEOUT,
    )
    .expect("CreateTopics request");
    assert!(results[0].is_err(), "{results:?}");
    let (_, metrics) = get(admin, "/metrics");
    assert_eq!(
        sample(
            &metrics,
            "weir_errors_total{api=\"CreateTopics\",code=\"36\",error=\"TopicAlreadyExists\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    drop(producer);
    drop(consumer);
}

#[test]
fn a_blocked_shard_is_counted_as_a_stall_and_the_allowance_is_the_configured_one() {
    // Without adaptive pacing the allowance is the fixed ceiling.
    let (broker, _dir, faults) = common::start_with_faults(vec![
        ("cores", "", "1".into()),
        ("catch-up-produce-latency-target-pct", "", "0".into()),
        ("catch-up-fetch-bytes-per-s-max", "", "16777216".into()),
    ]);
    let admin = admin_addr(&broker);
    create_topic(&broker.bootstrap(), TOPIC, 1, &[]);
    let stalls = |metrics: &str| sample(metrics, "weir_shard_stalls_total{shard=\"0\"}").expect("stalls");
    let (_, metrics) = get(admin, "/metrics");
    let before = stalls(&metrics);
    assert_eq!(
        sample(&metrics, "weir_catch_up_allowance_bytes_per_second"),
        Some(16_777_216.0),
        "{metrics}"
    );

    // Every append spins its shard for 30 ms: the shard's 10 ms timer
    // fires late.
    common::arm_fault(&faults, "log::append::write", "stall:30");
    let mut connection = Connection::open(broker.socket_addr());
    produce_keys(&mut connection, 5, b"v");
    common::clear_faults(&faults);
    let (_, metrics) = get(admin, "/metrics");
    assert!(stalls(&metrics) >= before + 1.0, "{metrics}");
}

#[test]
fn cross_shard_deliveries_are_timed_and_late_ones_counted() {
    let broker = Broker::start_weir(BrokerOptions {
        settings: vec![("cores", "", "2".into())],
        ..BrokerOptions::default()
    });
    let admin = admin_addr(&broker);
    // A scrape is a mesh call from shard 0 to shard 1 and its reply.
    get(admin, "/metrics");
    let (_, metrics) = get(admin, "/metrics");
    let delivered = sample(&metrics, "weir_mesh_delivery_seconds_count").expect("delivery histogram");
    assert!(delivered >= 2.0, "{metrics}");
    for shard in 0..2 {
        let late = sample(
            &metrics,
            &format!("weir_mesh_late_deliveries_total{{shard=\"{shard}\"}}"),
        );
        assert!(late.is_some_and(|late| late <= delivered), "{metrics}");
    }
}
