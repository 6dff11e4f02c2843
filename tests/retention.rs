//! Retention (`cleanup.policy=delete`: whole segments, oldest first, by
//! `retention.bytes` and `retention.ms`), DeleteRecords and the log start
//! offset across restarts, checked with real clients and exact offsets
//! against both brokers.
//!
//! Every record is 1 KiB and holds its sequence number, which is also the
//! offset it must be acknowledged at, so any record read back is checked
//! against the offset it was served at.
//!
//! Segment files are checked on disk for both brokers (the same layout:
//! `<topic>-<partition>/<20-digit base offset>.log`, `.index`,
//! `.timeindex`; Kafka's directory is `<data_dir>/logs`). Kafka renames what
//! it deletes to `*.deleted` and removes it a minute later: only the exact
//! suffixes count. weir's `.log` files may end in zero padding up to the
//! next 4 KiB block, hence the slack in size bounds.
//!
//! Apache Kafka runs its first retention pass `log.initial.task.delay.ms`
//! (30 s) after it starts, hence the long waits.
//!
//! The slow-consumer and DeleteRecords client scenarios are in
//! `tests/python/retention_*.py` (confluent-kafka).

mod common;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs;
use std::ops::Range;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_records_response::DeleteRecordsPartitionResult;
use kafka_protocol::messages::ApiKey;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, Timestamp};
use rdkafka::{Offset, TopicPartitionList};

use common::wire::{
    self, Connection, ERROR_NONE, ERROR_OFFSET_OUT_OF_RANGE, ERROR_UNKNOWN_TOPIC_OR_PARTITION,
};
use common::{
    assert_confluent_kafka_installed, consumer_config, create_topic, produce_and_flush, producer_config,
    pseudo_random_bytes, recording_producer, run_python_script, target, watermarks, Broker, BrokerOptions,
    Target, TestMessage,
};

const RECORD_BYTES: usize = 1024;
const SEGMENT_BYTES: u64 = 1_048_576;
/// How long retention may take to do what a test waits for (Kafka's first
/// pass comes 30 s after it started).
const RETENTION_WAIT: Duration = Duration::from_secs(150);
/// Zero padding weir may leave at the end of a `.log` file.
const PADDING_SLACK: u64 = 4096;
const PYTHON_TIMEOUT: Duration = Duration::from_secs(360);

/// A broker that applies retention every 500 ms.
fn retention_broker() -> Broker {
    retention_broker_with(Vec::new())
}

/// Like [`retention_broker`], with more broker settings.
fn retention_broker_with(mut settings: Vec<(&'static str, &'static str, String)>) -> Broker {
    settings.push((
        "log_retention_check_interval_ms",
        "log.retention.check.interval.ms",
        "500".to_string(),
    ));
    Broker::start_with(BrokerOptions {
        settings,
        ..BrokerOptions::default()
    })
}

/// The 1 KiB value of record `seq`: its sequence number, then bytes that
/// depend on it.
fn value_of(seq: i64) -> Vec<u8> {
    let mut value = format!("seq {seq:010} ").into_bytes();
    let rest = RECORD_BYTES - value.len();
    value.extend(pseudo_random_bytes(seq as u64, rest));
    value
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// Produces records `seqs` (keyed) to partition 0 (batches of up to 64 KiB, so a
/// segment holds many), with CreateTime `timestamp_ms` if given, and asserts
/// record n is acknowledged at offset n.
fn produce_seqs(bootstrap: &str, topic: &str, seqs: Range<i64>, timestamp_ms: Option<i64>) {
    let mut config = producer_config(bootstrap, "all");
    config.set("batch.size", "65536").set("linger.ms", "5");
    let (producer, deliveries) = recording_producer(&config);
    let messages: Vec<TestMessage> = seqs
        .clone()
        .map(|seq| TestMessage {
            partition: 0,
            // Unique keys: compacted topics take only keyed records.
            key: Some(format!("key-{seq}").into_bytes()),
            value: Some(value_of(seq)),
            headers: Vec::new(),
            timestamp_ms,
        })
        .collect();
    let reports = produce_and_flush(&producer, &deliveries, topic, &messages);
    for (report, seq) in reports.iter().zip(seqs) {
        assert_eq!(report.outcome, Ok((0, seq)), "{topic}: record {seq} acknowledged");
    }
}

/// Reads partition 0 from the earliest offset (what ListOffsets earliest
/// says, as a client starting there sees it) and asserts it gets exactly
/// records `first..end`, in order, with their values (and CreateTime, when
/// given), then nothing more.
fn consume_from_earliest(bootstrap: &str, topic: &str, first: i64, end: i64, timestamp_ms: Option<i64>) {
    let mut config = consumer_config(bootstrap);
    config.set("check.crcs", "true");
    let consumer: BaseConsumer = config.create().expect("create consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let mut next = first;
    let deadline = Instant::now() + common::CONSUME_TIMEOUT;
    while next < end {
        assert!(
            Instant::now() < deadline,
            "{topic}: read up to offset {next} of {first}..{end} within {:?}",
            common::CONSUME_TIMEOUT
        );
        let Some(result) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = result.unwrap_or_else(|error| panic!("{topic}: consumer error at {next}: {error}"));
        assert_eq!(
            message.offset(),
            next,
            "{topic}: offsets from the earliest on, dense"
        );
        assert!(
            message.payload() == Some(value_of(next).as_slice()),
            "{topic}: offset {next} holds another record: {:?}",
            message
                .payload()
                .map(|p| String::from_utf8_lossy(&p[..16.min(p.len())]).into_owned())
        );
        if let Some(timestamp_ms) = timestamp_ms {
            assert_eq!(
                message.timestamp(),
                Timestamp::CreateTime(timestamp_ms),
                "{topic}: offset {next}"
            );
        }
        next += 1;
    }
    let drain_until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < drain_until {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(50)) {
            panic!("{topic}: record at offset {} beyond {end}", message.offset());
        }
    }
}

/// Polls `probe` until it returns `Ok`, at most `timeout`; panics with its
/// last `Err` otherwise.
fn wait_for<T, E: Debug>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Result<T, E>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) => assert!(
                Instant::now() < deadline,
                "{what}: not within {timeout:?}; last seen: {last:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// (low, high) watermarks of `topic`/`partition` once its leader answers:
/// after a restart Kafka answers NOT_LEADER until it leads its partitions
/// again.
fn watermarks_after_restart(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    let consumer = common::consumer(bootstrap);
    wait_for("watermarks after a restart", common::CLIENT_TIMEOUT * 2, || {
        consumer.fetch_watermarks(topic, partition, Duration::from_secs(5))
    })
}

/// The directory of one partition's segment files.
fn partition_dir(broker: &Broker, topic: &str, partition: i32) -> PathBuf {
    let base = match target() {
        Target::Weir => broker.data_dir().to_path_buf(),
        Target::Kafka => broker.data_dir().join("logs"),
    };
    base.join(format!("{topic}-{partition}"))
}

/// Segment files of a partition directory.
#[derive(Debug, Default, PartialEq, Eq)]
struct SegmentFiles {
    /// Base offset -> bytes of data in the `.log` (`common::log_data_bytes`:
    /// the zeros weir writes ahead of the appends are not counted, as
    /// retention does not count them).
    logs: BTreeMap<i64, u64>,
    /// Base offsets of `.index` and `.timeindex` files.
    indexes: Vec<i64>,
}

impl SegmentFiles {
    fn read(dir: &std::path::Path) -> SegmentFiles {
        let mut files = SegmentFiles::default();
        for entry in fs::read_dir(dir).unwrap_or_else(|error| panic!("read {}: {error}", dir.display())) {
            let entry = entry.expect("dir entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((stem, suffix)) = name.split_once('.') else {
                continue;
            };
            if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let base: i64 = stem.parse().expect("20 digits");
            match suffix {
                // Kafka may rename it to `.deleted` under our feet.
                "log" if entry.path().exists() => {
                    files.logs.insert(base, common::log_data_bytes(&entry.path()));
                }
                "index" | "timeindex" => files.indexes.push(base),
                _ => {}
            }
        }
        files
    }

    fn total(&self) -> u64 {
        self.logs.values().sum()
    }

    /// Ok when the `.log` files are exactly segments from `low` on, none
    /// above `high`, none larger than a segment, and every index belongs
    /// to one of them.
    fn check_from(&self, low: i64, high: i64) -> Result<(), String> {
        let first = self.logs.keys().next().copied();
        if first != Some(low) {
            return Err(format!(
                "first .log base {first:?}, low watermark {low}: {self:?}"
            ));
        }
        if let Some(last) = self.logs.keys().last() {
            if *last > high {
                return Err(format!(".log base {last} above the high watermark {high}"));
            }
        }
        if let Some((base, size)) = self
            .logs
            .iter()
            .find(|(_, &size)| size > SEGMENT_BYTES + PADDING_SLACK)
        {
            return Err(format!(
                "segment {base} has {size} bytes, more than segment.bytes"
            ));
        }
        if let Some(orphan) = self.indexes.iter().find(|base| !self.logs.contains_key(base)) {
            return Err(format!(
                "index file of segment {orphan} without its .log: {self:?}"
            ));
        }
        Ok(())
    }
}

/// Waits until retention.bytes is done on partition 0: something was
/// deleted (low watermark > 0), the files are the segments from the low
/// watermark on, and the oldest of them may not go (what is left without
/// it would be under `retention_bytes`). Returns (low, high, files).
fn wait_for_bytes_retention(broker: &Broker, topic: &str, retention_bytes: u64) -> (i64, i64, SegmentFiles) {
    let dir = partition_dir(broker, topic, 0);
    wait_for(
        &format!("retention.bytes={retention_bytes} on {topic}"),
        RETENTION_WAIT,
        || {
            let (low, high) = watermarks(&broker.bootstrap(), topic, 0);
            if low == 0 {
                return Err(format!("watermarks ({low}, {high}): nothing deleted yet"));
            }
            let files = SegmentFiles::read(&dir);
            files.check_from(low, high)?;
            let oldest = files.logs[&low];
            let slack = PADDING_SLACK * files.logs.len() as u64;
            if files.total() - oldest >= retention_bytes + slack {
                return Err(format!("oldest segment {low} still deletable: {files:?}"));
            }
            Ok((low, high, files))
        },
    )
}

/// DeleteRecords (key 21) of one partition over a raw connection.
fn delete_records_wire(
    broker: &Broker,
    topic: &str,
    partition: i32,
    offset: i64,
) -> DeleteRecordsPartitionResult {
    let mut connection = Connection::open(broker.socket_addr());
    let version = connection.negotiate(ApiKey::DeleteRecords, 0..=2);
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(20_000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(wire::topic_name(topic))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(partition)
                .with_offset(offset)])]);
    let response = connection.call(version, &request);
    assert_eq!(
        response.topics.len(),
        1,
        "one topic in the DeleteRecords v{version} answer"
    );
    assert_eq!(response.topics[0].name.0.as_str(), topic);
    assert_eq!(
        response.topics[0].partitions.len(),
        1,
        "one partition in the answer"
    );
    let result = response.topics[0].partitions[0].clone();
    assert_eq!(result.partition_index, partition);
    result
}

/// Retention by size: the oldest whole segments go while what is left stays
/// at least retention.bytes; the high watermark stays; what is left reads
/// back exactly.
#[test]
fn retention_bytes_deletes_oldest_whole_segments() {
    let broker = retention_broker();
    let bootstrap = broker.bootstrap();
    let topic = "retention-bytes";
    let retention_bytes = 2 * SEGMENT_BYTES;
    create_bytes_retention_topic(&bootstrap, topic, retention_bytes);
    let records = 8192;
    produce_seqs(&bootstrap, topic, 0..records, None);

    let (low, high, files) = wait_for_bytes_retention(&broker, topic, retention_bytes);
    eprintln!(
        "after retention: watermarks ({low}, {high}), segments {:?}",
        files.logs
    );
    assert_eq!(high, records, "retention must not move the high watermark");
    assert!(
        files.total() >= retention_bytes,
        "left {} bytes, retention.bytes {retention_bytes}",
        files.total()
    );
    // What is left holds at least retention.bytes of ~1 KiB records.
    assert!(
        (high - low) as u64 * 1100 >= retention_bytes,
        "only records {low}..{high} left for retention.bytes {retention_bytes}"
    );
    assert!(
        (high - low) as u64 * RECORD_BYTES as u64 <= retention_bytes + SEGMENT_BYTES,
        "records {low}..{high} left: more than retention.bytes plus one segment"
    );
    assert_eq!(
        watermarks(&bootstrap, topic, 0),
        (low, high),
        "a later pass deletes nothing more"
    );
    let mut connection = Connection::open(broker.socket_addr());
    assert_eq!(
        connection.list_offset(topic, 0, 0),
        (ERROR_NONE, low),
        "ListOffsets timestamp 0"
    );
    consume_from_earliest(&bootstrap, topic, low, high, None);
}

/// Retention by time: once every record is older than retention.ms, every
/// segment goes, the active one too (rolled first, as Kafka does): low ==
/// high watermark. Produce then continues at the old high watermark.
#[test]
fn retention_ms_deletes_everything_expired_and_produce_continues() {
    let broker = retention_broker();
    let bootstrap = broker.bootstrap();
    let topic = "retention-time";
    create_topic(
        &bootstrap,
        topic,
        1,
        &[
            ("cleanup.policy", "delete"),
            ("segment.bytes", &SEGMENT_BYTES.to_string()),
            ("retention.ms", "2000"),
        ],
    );
    let records = 3000;
    produce_seqs(&bootstrap, topic, 0..records, None);

    let dir = partition_dir(&broker, topic, 0);
    let files = wait_for("everything expired", RETENTION_WAIT, || {
        let (low, high) = watermarks(&bootstrap, topic, 0);
        if (low, high) != (records, records) {
            return Err(format!("watermarks ({low}, {high})"));
        }
        let files = SegmentFiles::read(&dir);
        if files.logs.keys().copied().collect::<Vec<_>>() != vec![records] {
            return Err(format!("segment files {files:?}"));
        }
        files.check_from(low, high)?;
        Ok(files)
    });
    assert_eq!(files.logs[&records], 0, "the new active segment is empty");

    // A fetch below the log start offset is out of range.
    let mut connection = Connection::open(broker.socket_addr());
    let data = connection.fetch(topic, 0, 0, 0);
    assert_eq!(
        data.error_code, ERROR_OFFSET_OUT_OF_RANGE,
        "fetch at offset 0 after retention"
    );
    let data = connection.fetch(topic, 0, records, 0);
    assert_eq!(
        (data.error_code, data.log_start_offset, data.high_watermark),
        (ERROR_NONE, records, records),
        "fetch at the log start of an emptied log"
    );
    assert!(
        data.records.is_none_or(|r| r.is_empty()),
        "no records in an emptied log"
    );
    // No record left to match a timestamp: Kafka answers offset -1.
    assert_eq!(
        connection.list_offset(topic, 0, 0),
        (ERROR_NONE, -1),
        "ListOffsets timestamp 0, empty log"
    );

    // CreateTimes 10 minutes ahead: retention.ms cannot expire them while
    // the test reads them back.
    let future_ms = now_ms() + 600_000;
    produce_seqs(&bootstrap, topic, records..records + 10, Some(future_ms));
    assert_eq!(watermarks(&bootstrap, topic, 0), (records, records + 10));
    consume_from_earliest(&bootstrap, topic, records, records + 10, Some(future_ms));
}

/// retention.ms goes by the records' timestamps (the newest in a segment),
/// not by when they arrived: segments of records stamped two hours ago go
/// at once under a one-hour retention, the segment that also holds fresh
/// records stays.
#[test]
fn retention_ms_goes_by_record_timestamps() {
    let broker = retention_broker();
    let bootstrap = broker.bootstrap();
    let topic = "retention-timestamps";
    create_topic(
        &bootstrap,
        topic,
        1,
        &[
            ("cleanup.policy", "delete"),
            ("segment.bytes", &SEGMENT_BYTES.to_string()),
            ("retention.ms", "3600000"),
        ],
    );
    let old = 2500;
    let fresh = 100;
    let old_ms = now_ms() - 2 * 3_600_000;
    produce_seqs(&bootstrap, topic, 0..old, Some(old_ms));
    produce_seqs(&bootstrap, topic, old..old + fresh, None);

    let dir = partition_dir(&broker, topic, 0);
    let (low, files) = wait_for("old segments deleted", RETENTION_WAIT, || {
        let (low, high) = watermarks(&bootstrap, topic, 0);
        if low == 0 {
            return Err(format!("watermarks ({low}, {high}): nothing deleted yet"));
        }
        let files = SegmentFiles::read(&dir);
        files.check_from(low, high)?;
        // Done when the first segment left holds the first fresh record.
        let second = files.logs.keys().nth(1).copied();
        if low > old || second.is_some_and(|base| base <= old) {
            return Err(format!("low watermark {low}, segments {files:?}"));
        }
        Ok((low, files))
    });
    eprintln!("after retention: low watermark {low}, segments {:?}", files.logs);
    assert_eq!(watermarks(&bootstrap, topic, 0), (low, old + fresh));
    assert!(low > 0 && low <= old);
    // The old records the kept segment holds still have their timestamps.
    let mut connection = Connection::open(broker.socket_addr());
    let data = connection.fetch(topic, 0, low, 0);
    assert_eq!(data.error_code, ERROR_NONE);
    let first = wire::decode_records(data.records.expect("records at the low watermark"));
    let expected_ms = if low < old { old_ms } else { first[0].timestamp };
    assert_eq!(
        first.first().map(|r| (r.offset, r.timestamp)),
        Some((low, expected_ms))
    );
    consume_from_earliest(&bootstrap, topic, low, old + fresh, None);
}

/// A slow confluent-kafka consumer from offset 0 while retention.bytes
/// deletes segments under it (see the script).
#[test]
fn slow_consumer_jumps_to_the_new_log_start_and_sees_only_whole_records() {
    assert_confluent_kafka_installed();
    let broker = retention_broker();
    let topic = "retention-slow-consumer";
    create_topic(
        &broker.bootstrap(),
        topic,
        1,
        &[
            ("cleanup.policy", "delete"),
            ("segment.bytes", &SEGMENT_BYTES.to_string()),
            ("retention.bytes", &SEGMENT_BYTES.to_string()),
        ],
    );
    run_python_script(
        &broker.bootstrap(),
        "retention_slow_consumer.py",
        &[topic, "12288"],
        PYTHON_TIMEOUT,
    );
}

/// DeleteRecords through confluent-kafka (see the script), the errors a
/// client cannot provoke (unknown topic, unknown partition) over the wire,
/// Fetch and ListOffsets around the new log start, and the log start offset
/// across a restart.
#[test]
fn delete_records_moves_the_log_start_and_survives_a_restart() {
    assert_confluent_kafka_installed();
    let mut broker = retention_broker();
    let topic = "delete-records";
    create_topic(&broker.bootstrap(), topic, 2, &[]);
    run_python_script(
        &broker.bootstrap(),
        "retention_delete_records.py",
        &[topic, "delete"],
        PYTHON_TIMEOUT,
    );

    let unknown_topic = delete_records_wire(&broker, "no-such-topic", 0, 5);
    assert_eq!(
        (unknown_topic.error_code, unknown_topic.low_watermark),
        (ERROR_UNKNOWN_TOPIC_OR_PARTITION, -1),
        "DeleteRecords of an unknown topic"
    );
    let unknown_partition = delete_records_wire(&broker, topic, 7, 5);
    assert_eq!(
        (unknown_partition.error_code, unknown_partition.low_watermark),
        (ERROR_UNKNOWN_TOPIC_OR_PARTITION, -1),
        "DeleteRecords of partition 7 of a 2-partition topic"
    );

    // The script left partition 0 at (40, 100), partition 1 at (100, 100).
    let mut connection = Connection::open(broker.socket_addr());
    assert_eq!(connection.list_offset(topic, 0, -2), (ERROR_NONE, 40));
    // By timestamp: the first record at or after the log start, not the
    // start of the batch it falls in.
    assert_eq!(
        connection.list_offset(topic, 0, 0),
        (ERROR_NONE, 40),
        "ListOffsets timestamp 0"
    );
    let below = connection.fetch(topic, 0, 39, 0);
    assert_eq!(
        below.error_code, ERROR_OFFSET_OUT_OF_RANGE,
        "fetch below the log start"
    );
    let at = connection.fetch(topic, 0, 40, 0);
    assert_eq!(at.error_code, ERROR_NONE, "fetch at the log start");
    assert_eq!((at.log_start_offset, at.high_watermark), (40, 100));
    let batches = wire::split_batches(at.records.clone().expect("records at 40"));
    let batch_base = wire::batch_base_offset(&batches[0]);
    let served = wire::decode_records(at.records.expect("records at 40"));
    // The log start may fall inside a batch: the batch is served whole.
    assert!(batch_base <= 40, "first batch served starts at {batch_base}");
    assert!(served.iter().any(|r| r.offset == 40));
    let empty = connection.fetch(topic, 1, 100, 0);
    assert_eq!(
        (empty.error_code, empty.log_start_offset, empty.high_watermark),
        (ERROR_NONE, 100, 100)
    );

    broker.restart();
    watermarks_after_restart(&broker.bootstrap(), topic, 0);
    watermarks_after_restart(&broker.bootstrap(), topic, 1);
    run_python_script(
        &broker.bootstrap(),
        "retention_delete_records.py",
        &[topic, "after-restart"],
        PYTHON_TIMEOUT,
    );

    if target() == Target::Weir {
        // weir persists a log start offset inside a segment before it
        // answers: it survives SIGKILL too.
        let moved = delete_records_wire(&broker, topic, 0, 60);
        assert_eq!((moved.error_code, moved.low_watermark), (ERROR_NONE, 60));
        broker.kill9();
        broker.restart();
        assert_eq!(
            watermarks_after_restart(&broker.bootstrap(), topic, 0),
            (60, 105),
            "after SIGKILL"
        );
        let mut connection = Connection::open(broker.socket_addr());
        assert_eq!(connection.list_offset(topic, 0, -2), (ERROR_NONE, 60));
        assert_eq!(
            connection.fetch(topic, 0, 59, 0).error_code,
            ERROR_OFFSET_OUT_OF_RANGE
        );
    }
}

/// After retention deleted segments, a restart (and for weir a SIGKILL)
/// keeps both watermarks, the data from the low watermark on reads back
/// exactly, and produce continues at the high watermark.
#[test]
fn restart_after_retention_keeps_the_log_start_and_the_data() {
    let mut broker = retention_broker();
    let bootstrap = broker.bootstrap();
    let topic = "retention-restart";
    let retention_bytes = 2 * SEGMENT_BYTES;
    create_bytes_retention_topic(&bootstrap, topic, retention_bytes);
    // 4.4 segments: retention leaves the last 2.4, far from deleting a third.
    let records = 4500;
    produce_seqs(&bootstrap, topic, 0..records, None);
    let (low, high, files) = wait_for_bytes_retention(&broker, topic, retention_bytes);
    assert_eq!(high, records);
    let dir = partition_dir(&broker, topic, 0);

    broker.restart();
    let bootstrap = broker.bootstrap();
    assert_eq!(
        watermarks_after_restart(&bootstrap, topic, 0),
        (low, high),
        "after a restart"
    );
    let after = SegmentFiles::read(&dir);
    assert_eq!(
        after.logs.keys().collect::<Vec<_>>(),
        files.logs.keys().collect::<Vec<_>>(),
        "segments after a restart"
    );
    consume_from_earliest(&bootstrap, topic, low, high, None);
    produce_seqs(&bootstrap, topic, records..records + 100, None);
    assert_eq!(watermarks(&bootstrap, topic, 0), (low, records + 100));

    if target() == Target::Weir {
        broker.kill9();
        broker.restart();
        let bootstrap = broker.bootstrap();
        assert_eq!(
            watermarks_after_restart(&bootstrap, topic, 0),
            (low, records + 100),
            "after SIGKILL"
        );
        SegmentFiles::read(&dir)
            .check_from(low, records + 100)
            .expect("segments after SIGKILL");
        consume_from_earliest(&bootstrap, topic, low, records + 100, None);
        produce_seqs(&bootstrap, topic, records + 100..records + 110, None);
        assert_eq!(watermarks(&bootstrap, topic, 0), (low, records + 110));
    }
}

/// DeleteRecords up to an offset inside a later segment: the segments wholly
/// below it go from disk, the log start stays where DeleteRecords put it
/// (inside the segment now first), also across a restart and, for weir, a
/// SIGKILL.
#[test]
fn delete_records_inside_a_later_segment_deletes_the_segments_below() {
    let mut broker = retention_broker();
    let bootstrap = broker.bootstrap();
    let topic = "delete-records-segments";
    create_topic(
        &bootstrap,
        topic,
        1,
        &[
            ("cleanup.policy", "delete"),
            ("segment.bytes", &SEGMENT_BYTES.to_string()),
        ],
    );
    let records = 3000;
    let start = 2500;
    produce_seqs(&bootstrap, topic, 0..records, None);
    let moved = delete_records_wire(&broker, topic, 0, start);
    assert_eq!((moved.error_code, moved.low_watermark), (ERROR_NONE, start));
    assert_eq!(watermarks(&bootstrap, topic, 0), (start, records));

    let dir = partition_dir(&broker, topic, 0);
    let files = wait_for("segments below the log start deleted", RETENTION_WAIT, || {
        let files = SegmentFiles::read(&dir);
        let bases: Vec<i64> = files.logs.keys().copied().collect();
        let holds_start = bases.first().is_some_and(|&base| base > 0 && base <= start)
            && bases.get(1).is_none_or(|&next| next > start);
        if !holds_start {
            return Err(format!("segments {files:?}"));
        }
        let first = bases[0];
        files.check_from(first, records)?;
        Ok(files)
    });
    eprintln!("after DeleteRecords to {start}: segments {:?}", files.logs);
    assert_eq!(watermarks(&bootstrap, topic, 0), (start, records));
    consume_from_earliest(&bootstrap, topic, start, records, None);

    broker.restart();
    assert_eq!(
        watermarks_after_restart(&broker.bootstrap(), topic, 0),
        (start, records),
        "after a restart"
    );
    consume_from_earliest(&broker.bootstrap(), topic, start, records, None);
    if target() == Target::Weir {
        broker.kill9();
        broker.restart();
        assert_eq!(
            watermarks_after_restart(&broker.bootstrap(), topic, 0),
            (start, records),
            "after SIGKILL"
        );
        consume_from_earliest(&broker.bootstrap(), topic, start, records, None);
    }
    produce_seqs(&broker.bootstrap(), topic, records..records + 10, None);
    assert_eq!(watermarks(&broker.bootstrap(), topic, 0), (start, records + 10));
}

/// The broker's log.retention.bytes applies to a topic without its own
/// retention.bytes; retention.bytes=-1 on a topic overrides it (unlimited).
#[test]
fn broker_retention_bytes_applies_unless_the_topic_overrides_it() {
    let retention_bytes = 2 * SEGMENT_BYTES;
    let broker = retention_broker_with(vec![(
        "log_retention_bytes",
        "log.retention.bytes",
        retention_bytes.to_string(),
    )]);
    let bootstrap = broker.bootstrap();
    let segment_bytes = SEGMENT_BYTES.to_string();
    let inherits = "broker-bytes-inherited";
    let unlimited = "broker-bytes-unlimited";
    create_topic(&bootstrap, inherits, 1, &[("segment.bytes", &segment_bytes)]);
    create_topic(
        &bootstrap,
        unlimited,
        1,
        &[("segment.bytes", &segment_bytes), ("retention.bytes", "-1")],
    );
    let records = 4500;
    produce_seqs(&bootstrap, unlimited, 0..records, None);
    produce_seqs(&bootstrap, inherits, 0..records, None);

    let (low, high, _) = wait_for_bytes_retention(&broker, inherits, retention_bytes);
    assert_eq!(high, records);
    assert!(low > 0);
    // Passes that deleted from one topic ran over the other one too; a
    // few more to be sure.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        watermarks(&bootstrap, unlimited, 0),
        (0, records),
        "retention.bytes=-1"
    );
    assert_eq!(
        SegmentFiles::read(&partition_dir(&broker, unlimited, 0))
            .logs
            .keys()
            .next(),
        Some(&0),
        "retention.bytes=-1 keeps every segment"
    );
    consume_from_earliest(&bootstrap, unlimited, 0, records, None);
}

/// The broker's log.retention.ms applies to a delete topic without its own
/// retention.ms; not to one with retention.ms=-1, nor to a compacted topic.
#[test]
fn broker_retention_ms_applies_to_delete_topics_without_their_own() {
    let broker = retention_broker_with(vec![("log_retention_ms", "log.retention.ms", "2000".to_string())]);
    let bootstrap = broker.bootstrap();
    let segment_bytes = SEGMENT_BYTES.to_string();
    let inherits = "broker-ms-inherited";
    let unlimited = "broker-ms-unlimited";
    let compacted = "broker-ms-compacted";
    create_topic(&bootstrap, inherits, 1, &[("segment.bytes", &segment_bytes)]);
    create_topic(
        &bootstrap,
        unlimited,
        1,
        &[("segment.bytes", &segment_bytes), ("retention.ms", "-1")],
    );
    create_topic(
        &bootstrap,
        compacted,
        1,
        &[("segment.bytes", &segment_bytes), ("cleanup.policy", "compact")],
    );
    let records = 2500;
    for topic in [unlimited, compacted, inherits] {
        produce_seqs(&bootstrap, topic, 0..records, None);
    }

    wait_for(
        "log.retention.ms on a topic without retention.ms",
        RETENTION_WAIT,
        || match watermarks(&bootstrap, inherits, 0) {
            (low, high) if (low, high) == (records, records) => Ok(()),
            other => Err(other),
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        watermarks(&bootstrap, unlimited, 0),
        (0, records),
        "retention.ms=-1"
    );
    assert_eq!(
        watermarks(&bootstrap, compacted, 0),
        (0, records),
        "cleanup.policy=compact"
    );
    consume_from_earliest(&bootstrap, unlimited, 0, records, None);
}

/// An idempotent producer keeps producing, exactly once and in order, to a
/// partition whose old segments retention deleted, across a restart (and
/// for weir a SIGKILL) of the broker: its producer state outlives the
/// deleted segments.
#[test]
fn idempotent_producer_continues_after_retention_and_a_restart() {
    let mut broker = retention_broker();
    let topic = "retention-idempotent";
    let retention_bytes = 2 * SEGMENT_BYTES;
    create_topic(
        &broker.bootstrap(),
        topic,
        1,
        &[
            ("cleanup.policy", "delete"),
            ("segment.bytes", &SEGMENT_BYTES.to_string()),
            ("retention.bytes", &retention_bytes.to_string()),
        ],
    );
    let mut config = producer_config(&broker.bootstrap(), "all");
    config
        .set("enable.idempotence", "true")
        .set("retries", "1000000")
        .set("message.timeout.ms", "120000")
        .set("batch.size", "65536");
    let (producer, deliveries) = recording_producer(&config);
    let produce = |seqs: Range<i64>| {
        let messages: Vec<TestMessage> = seqs
            .clone()
            .map(|seq| TestMessage {
                partition: 0,
                key: None,
                value: Some(value_of(seq)),
                headers: Vec::new(),
                timestamp_ms: None,
            })
            .collect();
        let reports = produce_and_flush(&producer, &deliveries, topic, &messages);
        for (report, seq) in reports.iter().zip(seqs) {
            assert_eq!(report.outcome, Ok((0, seq)), "{topic}: record {seq} acknowledged");
        }
    };

    produce(0..4500);
    let (low, high, _) = wait_for_bytes_retention(&broker, topic, retention_bytes);
    assert_eq!(high, 4500);
    produce(4500..4600);

    broker.restart();
    watermarks_after_restart(&broker.bootstrap(), topic, 0);
    produce(4600..4700);
    let mut end = 4700;
    if target() == Target::Weir {
        broker.kill9();
        broker.restart();
        produce(4700..4800);
        end = 4800;
    }
    let (low_now, high_now) = watermarks(&broker.bootstrap(), topic, 0);
    assert_eq!(high_now, end);
    assert!(low_now >= low);
    consume_from_earliest(&broker.bootstrap(), topic, low_now, end, None);
}

/// A one-partition topic whose segments are deleted by `retention_bytes`.
fn create_bytes_retention_topic(bootstrap: &str, topic: &str, retention_bytes: u64) {
    create_topic(
        bootstrap,
        topic,
        1,
        &[
            ("cleanup.policy", "delete"),
            ("segment.bytes", &SEGMENT_BYTES.to_string()),
            ("retention.bytes", &retention_bytes.to_string()),
        ],
    );
}
