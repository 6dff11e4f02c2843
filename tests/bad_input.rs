//! Bad input from the network: the broker answers with the Kafka error code
//! the protocol defines, or, when the frame itself cannot be trusted, closes
//! that one connection. Either way nothing is stored, other connections keep
//! working, and a real client can still produce and consume afterwards.
//! The log lines such input causes are rate-limited: a burst of malformed
//! frames cannot fill the broker's disk with warnings.

mod common;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::Record;

use common::wire::{
    self, batch_layout, frame, Connection, ERROR_CORRUPT_MESSAGE, ERROR_NONE,
    ERROR_UNKNOWN_TOPIC_OR_PARTITION, ERROR_UNSUPPORTED_VERSION,
};
use common::{assert_broker_serves_clients, create_topic, list_topics, Broker, BrokerOptions};

const TIMESTAMP_MS: i64 = 1_700_000_000_000;

fn sample_records(count: usize) -> Vec<Record> {
    (0..count)
        .map(|i| {
            wire::record(
                i as i64,
                TIMESTAMP_MS + i as i64,
                format!("key-{i}").as_bytes(),
                format!("value-to-corrupt-{i}-padding-padding").as_bytes(),
            )
        })
        .collect()
}

/// Position of the first occurrence of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
        .expect("needle in batch")
}

/// Asserts the partition is empty: earliest and latest offsets 0 and a fetch
/// from 0 returns no records.
fn assert_partition_empty(connection: &mut Connection, topic: &str) {
    assert_eq!(
        connection.list_offset(topic, 0, -2),
        (ERROR_NONE, 0),
        "earliest offset"
    );
    assert_eq!(
        connection.list_offset(topic, 0, -1),
        (ERROR_NONE, 0),
        "latest offset"
    );
    let fetched = connection.fetch(topic, 0, 0, 100);
    assert_eq!(fetched.error_code, ERROR_NONE, "fetch error on empty partition");
    assert_eq!(fetched.high_watermark, 0, "high watermark");
    assert_eq!(
        fetched.records.map_or(0, |r| r.len()),
        0,
        "records on empty partition"
    );
}

#[test]
fn corrupt_crc_is_rejected_with_corrupt_message_and_nothing_is_stored() {
    let broker = Broker::start();
    let topic = "crc-mismatch";
    create_topic(&broker.bootstrap(), topic, 1, &[]);
    let mut connection = Connection::open(broker.socket_addr());
    let records = sample_records(5);
    let valid = wire::encode_batch(&records);
    assert!(wire::batch_crc_is_valid(&valid));

    // One flipped bit inside a record value, one inside the CRC-covered batch
    // header (first timestamp): both only detectable through the CRC.
    let positions = [
        ("record value", find(&valid, b"value-to-corrupt-3") + 6),
        ("batch first timestamp", batch_layout::FIRST_TIMESTAMP + 7),
    ];
    for (what, position) in positions {
        let mut corrupt = valid.to_vec();
        corrupt[position] ^= 0x01;
        assert!(
            !wire::batch_crc_is_valid(&corrupt),
            "flip in {what} must break the CRC"
        );
        let response = connection.produce(topic, 0, -1, Bytes::from(corrupt));
        assert_eq!(
            response.error_code, ERROR_CORRUPT_MESSAGE,
            "produce with a bit flipped in the {what}"
        );
        assert_partition_empty(&mut connection, topic);
    }

    // The same connection still works, and the rejected batches used up no
    // offsets: the valid batch lands at 0.
    let response = connection.produce(topic, 0, -1, valid);
    assert_eq!(response.error_code, ERROR_NONE);
    assert_eq!(response.base_offset, 0);
    let fetched = connection.fetch(topic, 0, 0, 100);
    assert_eq!(fetched.high_watermark, 5);
    let stored = wire::decode_records(fetched.records.expect("records"));
    assert_eq!(stored.len(), 5);
    for (offset, (got, want)) in stored.iter().zip(&records).enumerate() {
        assert_eq!(got.offset, offset as i64);
        assert_eq!(
            (&got.key, &got.value, got.timestamp),
            (&want.key, &want.value, want.timestamp)
        );
    }
    assert_broker_serves_clients(&broker.bootstrap(), "after-crc-mismatch");
}

/// Sends `bytes` on a fresh connection and asserts the broker closes it,
/// while a connection opened before keeps being served.
fn assert_dropped(broker: &Broker, witness: &mut Connection, what: &str, bytes: &[u8]) {
    let mut connection = Connection::open(broker.socket_addr());
    // The broker may close before it read everything; a reset is fine.
    let _ = connection.write_raw(bytes);
    connection.assert_closed_by_broker(what);
    witness.ping();
}

#[test]
fn garbage_bytes_close_the_connection() {
    let broker = Broker::start();
    let mut witness = Connection::open(broker.socket_addr());
    witness.ping();

    assert_dropped(
        &broker,
        &mut witness,
        "an HTTP request",
        b"GET / HTTP/1.1\r\nHost: weir\r\nUser-Agent: test\r\n\r\n",
    );
    // A small, well-formed frame whose "header" is noise (api key 0x7A7A).
    let noise: Vec<u8> = (0u8..40).map(|i| 0x7A ^ i.wrapping_mul(37)).collect();
    let mut noise_frame = frame(&noise);
    noise_frame[4] = 0x7A;
    noise_frame[5] = 0x7A;
    assert_dropped(&broker, &mut witness, "a frame of noise", &noise_frame);
    assert_broker_serves_clients(&broker.bootstrap(), "after-garbage");
}

#[test]
fn undecodable_request_body_closes_the_connection() {
    let broker = Broker::start();
    let mut witness = Connection::open(broker.socket_addr());
    witness.ping();
    let version = witness.negotiate(ApiKey::Metadata, 4..=8);
    // A valid Metadata header followed by a body claiming 0x7FFFFFF0 topics.
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Metadata as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("weir-wire-test")));
    let mut payload = BytesMut::new();
    header.encode(&mut payload, 1).expect("encode header");
    payload.extend_from_slice(&[0x7F, 0xFF, 0xFF, 0xF0, 0x00, 0x03, b'a', b'b']);
    assert_dropped(
        &broker,
        &mut witness,
        "a Metadata body that does not decode",
        &frame(&payload),
    );
    assert_broker_serves_clients(&broker.bootstrap(), "after-undecodable-body");
}

#[test]
fn negative_frame_length_closes_the_connection() {
    let broker = Broker::start();
    let mut witness = Connection::open(broker.socket_addr());
    witness.ping();
    for length in [-1i32, i32::MIN] {
        let mut bytes = length.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0u8; 32]);
        assert_dropped(&broker, &mut witness, &format!("frame length {length}"), &bytes);
    }
    assert_broker_serves_clients(&broker.bootstrap(), "after-negative-length");
}

/// The first bytes of a frame that claims `length` bytes: a plausible
/// ApiVersions header, then nothing more.
fn oversized_frame_start(length: i32) -> Vec<u8> {
    let mut bytes = length.to_be_bytes().to_vec();
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(0)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("weir-wire-test")));
    let mut payload = BytesMut::new();
    header.encode(&mut payload, 1).expect("encode header");
    bytes.extend_from_slice(&payload);
    bytes
}

#[test]
fn frame_above_default_request_size_limit_closes_the_connection() {
    const DEFAULT_REQUEST_SIZE_BYTES_MAX: i32 = 100 * 1024 * 1024;
    let broker = Broker::start();
    let mut witness = Connection::open(broker.socket_addr());
    witness.ping();
    for length in [DEFAULT_REQUEST_SIZE_BYTES_MAX + 1, i32::MAX] {
        assert_dropped(
            &broker,
            &mut witness,
            &format!("frame length {length}"),
            &oversized_frame_start(length),
        );
    }
    assert_broker_serves_clients(&broker.bootstrap(), "after-oversized-frame");
}

#[test]
fn frame_above_configured_request_size_limit_closes_the_connection() {
    // Far below the 100 MiB default, yet above the largest record batch a
    // broker accepts by default (max.message.bytes is about 1 MiB): a limit
    // below that would be an impossible configuration.
    const CONFIGURED_REQUEST_SIZE_BYTES_MAX: i32 = 4 * 1024 * 1024;
    let broker = Broker::start_with(BrokerOptions {
        config_toml: Some(format!(
            "request_size_bytes_max = {CONFIGURED_REQUEST_SIZE_BYTES_MAX}\n"
        )),
        ..BrokerOptions::default()
    });
    let mut witness = Connection::open(broker.socket_addr());
    witness.ping();
    assert_dropped(
        &broker,
        &mut witness,
        "frame one byte above the configured limit",
        &oversized_frame_start(CONFIGURED_REQUEST_SIZE_BYTES_MAX + 1),
    );
    // Requests well under the limit are still served, on any connection.
    assert_broker_serves_clients(&broker.bootstrap(), "after-configured-limit");
}

#[test]
fn truncated_requests_are_dropped_without_a_response_or_a_write() {
    let broker = Broker::start();
    let topic = "truncated";
    create_topic(&broker.bootstrap(), topic, 1, &[]);
    let mut witness = Connection::open(broker.socket_addr());
    witness.ping();

    // (1) An ApiVersions frame whose size says 200 bytes, but only the header
    // and a few body bytes arrive before the client hangs up.
    let mut connection = Connection::open(broker.socket_addr());
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("weir-tests"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    let (_, full) = connection.encode_request(3, &request);
    let mut truncated = 200i32.to_be_bytes().to_vec();
    truncated.extend_from_slice(&full[4..]);
    assert!(truncated.len() < 204);
    connection
        .write_raw(&truncated)
        .expect("send truncated ApiVersions");
    connection.shutdown_write();
    connection.assert_closed_by_broker("truncated ApiVersions then EOF");
    witness.ping();

    // (2) The first half of a valid Produce frame, then EOF: no record of it
    // may be stored.
    let mut connection = Connection::open(broker.socket_addr());
    let version = connection.negotiate(ApiKey::Produce, 3..=8);
    let produce = wire::produce_request(topic, 0, -1, wire::encode_batch(&sample_records(20)));
    let (_, full) = connection.encode_request(version, &produce);
    connection
        .write_raw(&full[..full.len() / 2])
        .expect("send half a Produce");
    connection.shutdown_write();
    connection.assert_closed_by_broker("half a Produce then EOF");
    witness.ping();
    assert_partition_empty(&mut witness, topic);

    assert_broker_serves_clients(&broker.bootstrap(), "after-truncated");
}

#[test]
fn unknown_topic_without_auto_create_is_unknown_topic_or_partition() {
    let broker = Broker::start_with(BrokerOptions {
        auto_create_topics: Some(false),
        ..BrokerOptions::default()
    });
    let missing = "no-such-topic";
    let mut connection = Connection::open(broker.socket_addr());
    // Twice: the first request (which allows auto-creation) must not create
    // the topic behind the error.
    for attempt in 1..=2 {
        let metadata = connection.metadata(&[missing], true);
        assert_eq!(metadata.topics.len(), 1, "metadata attempt {attempt}");
        let topic = &metadata.topics[0];
        assert_eq!(topic.name.as_ref().map(|n| n.0.as_str()), Some(missing));
        assert_eq!(
            topic.error_code, ERROR_UNKNOWN_TOPIC_OR_PARTITION,
            "metadata attempt {attempt}"
        );
        assert!(topic.partitions.is_empty());
    }
    let response = connection.produce(missing, 0, -1, wire::encode_batch(&sample_records(1)));
    assert_eq!(
        response.error_code, ERROR_UNKNOWN_TOPIC_OR_PARTITION,
        "produce to a missing topic"
    );
    assert!(!list_topics(&broker.bootstrap()).iter().any(|t| t == missing));

    // A partition beyond an existing topic's count is unknown as well.
    create_topic(&broker.bootstrap(), "two-partitions", 2, &[]);
    let response = connection.produce("two-partitions", 5, -1, wire::encode_batch(&sample_records(1)));
    assert_eq!(
        response.error_code, ERROR_UNKNOWN_TOPIC_OR_PARTITION,
        "produce to partition 5 of 2"
    );
    assert_broker_serves_clients(&broker.bootstrap(), "after-unknown-topic");
}

#[test]
fn unsupported_api_versions_version_gets_v0_error_response() {
    let broker = Broker::start();
    let mut connection = Connection::open(broker.socket_addr());
    // ApiVersions v99: flexible request header (v2), a v3-shaped body.
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(99)
        .with_correlation_id(4242)
        .with_client_id(Some(StrBytes::from_static_str("weir-wire-test")));
    let mut payload = BytesMut::new();
    header.encode(&mut payload, 2).expect("encode header");
    ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("weir-tests"))
        .with_client_software_version(StrBytes::from_static_str("1"))
        .encode(&mut payload, 3)
        .expect("encode body");
    connection
        .write_raw(&frame(&payload))
        .expect("send ApiVersions v99");

    // Response header v0 (correlation id only) and a v0 body.
    let mut body = connection.read_response_body(4242, 0);
    let response = ApiVersionsResponse::decode(&mut body, 0).expect("decode ApiVersions v0 body");
    assert_eq!(response.error_code, ERROR_UNSUPPORTED_VERSION);
    let api_versions_entry = response
        .api_keys
        .iter()
        .find(|entry| entry.api_key == ApiKey::ApiVersions as i16)
        .expect("the error response lists the ApiVersions versions the broker serves");
    assert!(
        (0..99).contains(&api_versions_entry.min_version)
            && (api_versions_entry.min_version..99).contains(&api_versions_entry.max_version),
        "advertised ApiVersions range {}..={}",
        api_versions_entry.min_version,
        api_versions_entry.max_version
    );

    // The connection stays usable: clients retry at a supported version.
    connection.ping();
    assert_broker_serves_clients(&broker.bootstrap(), "after-api-versions-v99");
}

/// One malformed frame of each kind the broker closes a connection for, as
/// raw bytes (size prefix included).
fn malformed_frames() -> Vec<(&'static str, Vec<u8>)> {
    let header = |api_key: i16, api_version: i16| {
        let mut payload = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(api_key)
            .with_request_api_version(api_version)
            .with_correlation_id(1)
            .with_client_id(Some(StrBytes::from_static_str("weir-wire-test")))
            .encode(&mut payload, 1)
            .expect("encode header");
        payload
    };
    let mut negative_size = (-1i32).to_be_bytes().to_vec();
    negative_size.extend_from_slice(&[0u8; 16]);
    let mut undecodable = header(ApiKey::Metadata as i16, 4);
    undecodable.extend_from_slice(&[0x7F, 0xFF, 0xFF, 0xF0, 0x00, 0x03, b'a', b'b']);
    vec![
        ("a negative frame size", negative_size),
        ("a frame size of i32::MAX", oversized_frame_start(i32::MAX)),
        ("api key 0x7A7A", frame(&header(0x7A7A, 0))),
        ("Produce v2 (advertised, not served)", frame(&header(0, 2))),
        ("a Metadata body that does not decode", frame(&undecodable)),
    ]
}

/// Lines of a broker's stderr after its "serving" line (the start-up lines
/// excluded). Panics if that line is no longer in the captured tail: then
/// the log was too long to count.
fn log_lines_after_start(broker: &Broker) -> Vec<String> {
    let logs = broker.logs();
    let start = logs
        .find("weir serving Kafka on")
        .unwrap_or_else(|| panic!("the start-up line fell out of the captured log tail:\n{logs}"));
    logs[start..]
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// K in a summary line "KIND: suppressed K similar lines in the last N s".
fn suppressed_count(line: &str) -> Option<usize> {
    let (_, rest) = line.split_once(": suppressed ")?;
    let (count, rest) = rest.split_once(' ')?;
    rest.starts_with("similar lines").then(|| count.parse().ok())?
}

#[test]
fn a_burst_of_malformed_frames_logs_a_bounded_number_of_lines() {
    use weir::net::log_limit::{INTERVAL, LINES_PER_INTERVAL};
    // Each frame on its own connection (the broker closes it after the bad
    // frame), round-robin over the five kinds of malformed frame.
    const CONNECTIONS: usize = 3_000;
    const SHARDS: u64 = 2; // common::broker_args runs --cores 2
    let broker = Broker::start_weir(BrokerOptions::default());
    let mut witness = Connection::open(broker.socket_addr());
    witness.ping();
    let before = log_lines_after_start(&broker).len();

    let frames = malformed_frames();
    let started = std::time::Instant::now();
    for index in 0..CONNECTIONS {
        let (what, bytes) = &frames[index % frames.len()];
        let mut connection = Connection::open(broker.socket_addr());
        let _ = connection.write_raw(bytes);
        connection.assert_closed_by_broker(what);
    }
    let elapsed = started.elapsed();
    witness.ping();
    assert_broker_serves_clients(&broker.bootstrap(), "after-malformed-burst");

    // Per kind and shard: LINES_PER_INTERVAL lines and one summary in each
    // interval the burst touched. An upper bound whatever the machine's
    // speed (the burst's duration is measured, not assumed).
    let intervals = elapsed.as_secs() / INTERVAL.as_secs() + 2;
    let bound = frames.len() as u64 * SHARDS * (u64::from(LINES_PER_INTERVAL) + 1) * intervals;
    let lines = log_lines_after_start(&broker);
    let during = lines.len() - before;
    eprintln!(
        "{CONNECTIONS} malformed frames in {elapsed:?}: {during} log lines (bound {bound})\n{}",
        lines.join("\n")
    );
    assert!(
        (during as u64) <= bound && during < CONNECTIONS / 2,
        "{during} log lines for {CONNECTIONS} malformed frames (bound {bound}):\n{}",
        broker.logs()
    );
    // Once an interval has passed, each shard sums up what it left out:
    // then every frame is accounted for, logged or counted in a summary.
    let deadline = std::time::Instant::now() + INTERVAL * 6;
    let (mut closed_lines, mut suppressed, mut lines) = (0, 0, Vec::new());
    while std::time::Instant::now() < deadline {
        lines = log_lines_after_start(&broker);
        closed_lines = lines
            .iter()
            .filter(|l| l.contains("closing connection from"))
            .count();
        suppressed = lines
            .iter()
            .filter_map(|line| suppressed_count(line))
            .sum::<usize>();
        if closed_lines + suppressed >= CONNECTIONS {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(
        closed_lines + suppressed,
        CONNECTIONS,
        "{closed_lines} lines logged + {suppressed} in summaries, for {CONNECTIONS} closed connections:\n{}",
        broker.logs()
    );
    for summary in lines.iter().filter(|line| suppressed_count(line).is_some()) {
        eprintln!("{summary}");
    }
    // Every kind was reported at least once: limited, not silenced.
    for phrase in [
        "is below the smallest request header",
        "exceeds request_size_bytes_max",
        "unknown api key",
        "is not supported",
        "Metadata v4 body",
    ] {
        assert!(
            lines.iter().any(|line| line.contains(phrase)),
            "no log line says {phrase:?}"
        );
    }
}

/// Kafka's INVALID_TOPIC_EXCEPTION error code.
const ERROR_INVALID_TOPIC_EXCEPTION: i16 = 17;

/// Clients cannot write into the broker's internal topics: Kafka answers a
/// Produce to `__consumer_offsets` with INVALID_TOPIC_EXCEPTION (only its own
/// admin client id may append there). Otherwise a client could plant
/// committed offsets or group state, which the group coordinator loads at
/// the next start as if it had written them.
#[test]
fn produce_to_the_offsets_topic_is_invalid_topic() {
    use kafka_protocol::messages::FindCoordinatorRequest;
    let broker = Broker::start();
    let mut connection = Connection::open(broker.socket_addr());
    // FindCoordinator makes the broker create __consumer_offsets (Kafka does
    // it in the background: COORDINATOR_NOT_AVAILABLE until then).
    let version = connection.negotiate(ApiKey::FindCoordinator, 1..=3);
    let request =
        FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("internal-topic-probe"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let response = connection.call(version, &request);
        if response.error_code == ERROR_NONE {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no group coordinator within 60 s: error {}",
            response.error_code
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let response = connection.produce(
        "__consumer_offsets",
        0,
        -1,
        wire::encode_batch(&sample_records(1)),
    );
    assert_eq!(
        response.error_code, ERROR_INVALID_TOPIC_EXCEPTION,
        "produce to __consumer_offsets-0 (base offset {})",
        response.base_offset
    );
    connection.ping();
    assert_broker_serves_clients(&broker.bootstrap(), "after-internal-topic-produce");
}
