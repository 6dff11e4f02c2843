//! Apache Kafka's own command-line tools (release 4.1.1 from Maven Central,
//! run through `scripts/kafka-reference.sh tool NAME ...`) used against the
//! broker exactly as Kafka's quickstart uses them, with their printed output
//! parsed and checked exactly (most of these tools print an error and still
//! exit 0, so an exit status alone proves little):
//!
//! - `kafka-topics`: create (3 partitions), list, describe (partition count,
//!   replication factor, leader = replicas = ISR = the broker), alter to more
//!   partitions, delete; creating an existing topic fails cleanly;
//! - `kafka-console-producer` with keys and headers, `kafka-console-consumer`
//!   in a group printing partition, offset, headers, key and value: exactly
//!   the records produced;
//! - `kafka-consumer-groups`: list, describe (current offset, log end offset,
//!   lag), reset offsets to the earliest, to an offset and shifted by -1 (the
//!   group's next consumer reads exactly from there), delete;
//! - `kafka-configs --describe` of a topic (its own configs and all of them)
//!   and of the broker, exact values;
//! - `kafka-get-offsets` with `--time -1`, `-2`, `earliest`, `latest`;
//! - `kafka-transactions list`, `describe`, `describe-producers` after a
//!   transactional `kafka-producer-perf-test`;
//! - `kafka-producer-perf-test` (20,000 records of 1 KiB, acks=all) and
//!   `kafka-consumer-perf-test` reading all of them back;
//! - offsets a console consumer committed survive a broker restart, and the
//!   group then reads exactly the records produced after it.
//!
//! What Kafka and weir may legitimately answer differently is not checked:
//! the broker's node id (Kafka's reference broker is node 1, weir's default
//! is 0), the ELR columns of `kafka-topics --describe` (`N/A` when the broker
//! has no DescribeTopicPartitions and the tool falls back to Metadata), the
//! configs a broker has beyond those checked, config synonyms, producer ids
//! and epochs (Kafka 4.1 bumps the epoch at each transaction, KIP-890).

mod common;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use common::{read_tail, repo_path, run_client, temp_dir, wait_with_timeout, Broker, Target};

/// Upper bound for one tool run: a JVM start (1-2 s on an idle machine),
/// and for a group consumer the broker's initial rebalance delay (3 s).
const TOOL_TIMEOUT: Duration = Duration::from_secs(180);
/// What a console consumer may wait for its next record before giving up
/// (it then prints fewer records than expected, which the test reports).
const CONSUMER_IDLE_TIMEOUT_MS: &str = "60000";

/// The broker id the tools must show: weir's `node_id` default, and the
/// `node.id` `scripts/kafka-reference.sh format` gives Kafka.
fn node_id() -> i32 {
    match common::target() {
        Target::Weir => 0,
        Target::Kafka => 1,
    }
}

fn script() -> String {
    repo_path("scripts/kafka-reference.sh").display().to_string()
}

fn tool_args(tool: &str, args: &[&str]) -> Vec<String> {
    let mut all = vec!["tool".to_string(), tool.to_string()];
    all.extend(args.iter().map(|arg| arg.to_string()));
    all
}

/// Runs one Kafka tool, asserts it exits 0, returns its stdout.
fn tool(tool: &str, args: &[&str]) -> String {
    run_client(&script(), &tool_args(tool, args), &[], TOOL_TIMEOUT)
}

/// Runs `kafka-console-producer` with `lines` (one record each) as its
/// standard input.
fn console_produce(bootstrap: &str, topic: &str, lines: &[String]) {
    let dir = temp_dir("weir-console-producer-");
    let input = dir.path().join("records.txt");
    fs::write(
        &input,
        lines.iter().map(|line| format!("{line}\n")).collect::<String>(),
    )
    .expect("write console producer input");
    let args = [
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--producer-property",
        "acks=all",
        "--property",
        "parse.key=true",
        "--property",
        "key.separator=:",
        "--property",
        "parse.headers=true",
    ];
    let stdout = run_client(
        &script(),
        &tool_args("kafka-console-producer", &args),
        &[("KAFKA_TOOL_STDIN", &input.display().to_string())],
        TOOL_TIMEOUT,
    );
    assert_eq!(stdout.trim(), "", "kafka-console-producer printed something");
}

/// A tool run whose exit status and stderr are part of what is checked.
struct ToolRun {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs one Kafka tool to completion (at most [`TOOL_TIMEOUT`]) whatever its
/// exit status.
fn tool_run(tool: &str, args: &[&str]) -> ToolRun {
    let logs = temp_dir("weir-kafka-tool-");
    let stdout_path = logs.path().join("stdout.log");
    let stderr_path = logs.path().join("stderr.log");
    let mut child = Command::new(script())
        .args(tool_args(tool, args))
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("stdout file"))
        .stderr(File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("run scripts/kafka-reference.sh");
    let status = wait_with_timeout(&mut child, TOOL_TIMEOUT);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let run = ToolRun {
        status: status.unwrap_or_else(|| {
            panic!(
                "{tool} {args:?} ran longer than {TOOL_TIMEOUT:?}\nstdout:\n{}\nstderr:\n{}",
                read_tail(&stdout_path, 16 * 1024),
                read_tail(&stderr_path, 64 * 1024)
            )
        }),
        stdout: fs::read_to_string(&stdout_path).expect("read tool stdout"),
        stderr: fs::read_to_string(&stderr_path).expect("read tool stderr"),
    };
    eprintln!(
        "--- {tool} {args:?}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        run.status, run.stdout, run.stderr
    );
    run
}

// ---------------------------------------------------------------------------
// Parsing the tools' output
// ---------------------------------------------------------------------------

/// `kafka-get-offsets` lines `TOPIC:PARTITION:OFFSET` of `topic`.
fn parse_offsets(output: &str, topic: &str) -> BTreeMap<i32, i64> {
    let mut offsets = BTreeMap::new();
    for line in output.lines().filter(|line| !line.trim().is_empty()) {
        let parsed = line
            .strip_prefix(topic)
            .and_then(|rest| rest.strip_prefix(':'))
            .and_then(|rest| rest.split_once(':'))
            .and_then(|(partition, offset)| Some((partition.parse().ok()?, offset.parse().ok()?)));
        let Some((partition, offset)) = parsed else {
            panic!("kafka-get-offsets line {line:?} is not {topic}:PARTITION:OFFSET");
        };
        assert!(
            offsets.insert(partition, offset).is_none(),
            "partition {partition} twice in:\n{output}"
        );
    }
    offsets
}

/// The rows of a table printed with space-padded columns (kafka-consumer-
/// groups), found by its header's first column: one map column -> value per
/// row, up to the first empty line.
fn space_table(output: &str, first_column: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = output
        .lines()
        .skip_while(|line| line.split_whitespace().next() != Some(first_column));
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_else(|| panic!("no table with a {first_column} column in:\n{output}"))
        .split_whitespace()
        .collect();
    lines
        .take_while(|line| !line.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cells.len(), header.len(), "row {line:?} under {header:?}");
            header
                .iter()
                .zip(cells)
                .map(|(column, cell)| (column.to_string(), cell.to_string()))
                .collect()
        })
        .collect()
}

/// The rows of a tab-separated table (kafka-transactions), whose first line
/// is the header; cells are trimmed (an empty cell stays empty).
fn tab_table(output: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = output.lines().filter(|line| !line.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_else(|| panic!("no table in:\n{output}"))
        .split('\t')
        .map(str::trim)
        .collect();
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').map(str::trim).collect();
            assert_eq!(cells.len(), header.len(), "row {line:?} under {header:?}");
            header
                .iter()
                .zip(cells)
                .map(|(column, cell)| (column.to_string(), cell.to_string()))
                .collect()
        })
        .collect()
}

/// `kafka-consumer-groups --describe` rows of `group`: partition ->
/// (CURRENT-OFFSET, LOG-END-OFFSET, LAG), as printed.
fn group_offsets(output: &str, group: &str, topic: &str) -> BTreeMap<i32, (String, String, String)> {
    space_table(output, "GROUP")
        .into_iter()
        .map(|row| {
            assert_eq!(
                (row["GROUP"].as_str(), row["TOPIC"].as_str()),
                (group, topic),
                "{row:?}"
            );
            (
                row["PARTITION"].parse().expect("PARTITION"),
                (
                    row["CURRENT-OFFSET"].clone(),
                    row["LOG-END-OFFSET"].clone(),
                    row["LAG"].clone(),
                ),
            )
        })
        .collect()
}

/// `kafka-consumer-groups --reset-offsets` rows: partition -> NEW-OFFSET.
fn reset_offsets(output: &str, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    space_table(output, "GROUP")
        .into_iter()
        .map(|row| {
            assert_eq!(
                (row["GROUP"].as_str(), row["TOPIC"].as_str()),
                (group, topic),
                "{row:?}"
            );
            (
                row["PARTITION"].parse().expect("PARTITION"),
                row["NEW-OFFSET"].parse().expect("NEW-OFFSET"),
            )
        })
        .collect()
}

/// The configs listed under `section` by `kafka-configs --describe`
/// (`  name=value sensitive=... synonyms={...}` lines): name -> value.
fn config_section(output: &str, section: &str) -> BTreeMap<String, String> {
    let mut lines = output.lines().skip_while(|line| *line != section);
    assert!(lines.next().is_some(), "no {section:?} in:\n{output}");
    lines
        .take_while(|line| line.starts_with("  "))
        .map(|line| {
            let (setting, _) = line
                .trim()
                .split_once(" sensitive=")
                .unwrap_or_else(|| panic!("config line {line:?}"));
            let (name, value) = setting
                .split_once('=')
                .unwrap_or_else(|| panic!("config line {line:?}"));
            (name.to_string(), value.to_string())
        })
        .collect()
}

fn map(pairs: &[(i32, i64)]) -> BTreeMap<i32, i64> {
    pairs.iter().copied().collect()
}

// ---------------------------------------------------------------------------
// The records the console tools write and read
// ---------------------------------------------------------------------------

/// One record as a console producer input line gives it (headers, then
/// `key:value`), and the partition of a 3-partition topic Kafka's default
/// partitioner (murmur2 of the key, computed by the producer) puts it in.
struct Record {
    headers: &'static str,
    key: &'static str,
    value: &'static str,
    partition: i32,
}

const fn record(headers: &'static str, key: &'static str, value: &'static str, partition: i32) -> Record {
    Record {
        headers,
        key,
        value,
        partition,
    }
}

/// Produced first: partitions 0, 1 and 2 get 1, 1 and 2 records.
const FIRST: [Record; 4] = [
    record("h1:v1,h2:v2", "k1", "value-1", 2),
    record("h1:x", "k2", "value-2", 0),
    record("src:cli", "k3", "value-3", 1),
    record("h3:a,h3:b", "k1", "value-4", 2),
];
/// Produced second: one more record in partitions 0 and 2.
const SECOND: [Record; 2] = [
    record("b:1", "k2", "value-5", 0),
    record("b:2", "k1", "value-6", 2),
];

/// The console producer's input lines for `records`.
fn producer_lines(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| format!("{}\t{}:{}", r.headers, r.key, r.value))
        .collect()
}

/// The lines a console consumer printing partition, offset, headers, key
/// and value shows for the records of FIRST then SECOND that `wanted`
/// selects by (index in FIRST then SECOND, partition, offset), sorted.
fn consumer_lines(wanted: impl Fn(usize, i32, i64) -> bool) -> Vec<String> {
    let mut next_offset: BTreeMap<i32, i64> = BTreeMap::new();
    let mut lines = Vec::new();
    for (index, record) in FIRST.iter().chain(SECOND.iter()).enumerate() {
        let offset = next_offset.entry(record.partition).or_insert(0);
        if wanted(index, record.partition, *offset) {
            lines.push(format!(
                "Partition:{}\tOffset:{}\t{}\t{}\t{}",
                record.partition, offset, record.headers, record.key, record.value
            ));
        }
        *offset += 1;
    }
    lines.sort();
    lines
}

/// A console consumer in `group` reading `count` records (from the group's
/// committed offsets, or the beginning where it has none) and committing
/// them when it exits: the lines it printed, sorted.
fn console_consume(bootstrap: &str, topic: &str, group: &str, count: usize) -> Vec<String> {
    let count = count.to_string();
    let stdout = tool(
        "kafka-console-consumer",
        &[
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
            "--group",
            group,
            "--from-beginning",
            "--max-messages",
            &count,
            "--timeout-ms",
            CONSUMER_IDLE_TIMEOUT_MS,
            "--property",
            "print.key=true",
            "--property",
            "print.headers=true",
            "--property",
            "print.partition=true",
            "--property",
            "print.offset=true",
        ],
    );
    let mut lines: Vec<String> = stdout.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

fn create_topic(bootstrap: &str, topic: &str, partitions: &str, extra: &[&str]) {
    let mut args = vec![
        "--bootstrap-server",
        bootstrap,
        "--create",
        "--topic",
        topic,
        "--partitions",
        partitions,
        "--replication-factor",
        "1",
    ];
    args.extend_from_slice(extra);
    let stdout = tool("kafka-topics", &args);
    assert_eq!(
        stdout,
        format!("Created topic {topic}.\n"),
        "kafka-topics --create"
    );
}

fn get_offsets(bootstrap: &str, topic: &str, time: Option<&str>) -> BTreeMap<i32, i64> {
    let mut args = vec!["--bootstrap-server", bootstrap, "--topic", topic];
    if let Some(time) = time {
        args.extend(["--time", time]);
    }
    let run = tool_run("kafka-get-offsets", &args);
    assert!(run.status.success(), "kafka-get-offsets {args:?}: {}", run.status);
    // Partitions it could not get an offset for are left out of stdout
    // with a "Skip getting offsets ..." line on stderr.
    assert!(
        !run.stderr.contains("Skip getting offsets"),
        "kafka-get-offsets {args:?} skipped partitions:\n{}",
        run.stderr
    );
    parse_offsets(&run.stdout, topic)
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// kafka-topics: the quickstart's create, list and describe, then alter to
/// more partitions and delete; a second create of the same topic fails.
#[test]
fn kafka_topics_creates_lists_describes_alters_and_deletes() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let node = node_id().to_string();

    create_topic(&bootstrap, "cli-events", "3", &[]);

    let again = tool_run(
        "kafka-topics",
        &[
            "--bootstrap-server",
            &bootstrap,
            "--create",
            "--topic",
            "cli-events",
            "--partitions",
            "3",
        ],
    );
    assert_eq!(
        again.status.code(),
        Some(1),
        "second kafka-topics --create of cli-events"
    );
    // The broker's error message: Kafka's is "Topic 'cli-events' already
    // exists.", weir's "topic 'cli-events' already exists".
    assert!(
        again
            .stdout
            .to_lowercase()
            .starts_with("error while executing topic command : topic 'cli-events' already exists")
            && again
                .stderr
                .contains("org.apache.kafka.common.errors.TopicExistsException"),
        "second create must fail with TopicExistsException"
    );

    let list = |expected: &[&str]| {
        let stdout = tool(
            "kafka-topics",
            &["--bootstrap-server", &bootstrap, "--list", "--exclude-internal"],
        );
        assert_eq!(
            stdout.lines().filter(|line| !line.is_empty()).collect::<Vec<_>>(),
            expected,
            "kafka-topics --list"
        );
    };
    list(&["cli-events"]);

    let describe = |partitions: i32| {
        let stdout = tool(
            "kafka-topics",
            &[
                "--bootstrap-server",
                &bootstrap,
                "--describe",
                "--topic",
                "cli-events",
            ],
        );
        let fields = |line: &str| -> BTreeMap<String, String> {
            line.trim()
                .split('\t')
                .map(|field| {
                    let (name, value) = field.split_once(':').unwrap_or_else(|| panic!("field {field:?}"));
                    (name.to_string(), value.trim().to_string())
                })
                .collect()
        };
        let mut lines = stdout.lines();
        let topic = fields(lines.next().expect("topic line"));
        assert_eq!(topic["Topic"], "cli-events", "{stdout}");
        assert_eq!(topic["PartitionCount"], partitions.to_string(), "{stdout}");
        assert_eq!(topic["ReplicationFactor"], "1", "{stdout}");
        assert_eq!(topic["TopicId"].len(), 22, "a base64 topic id: {stdout}");
        assert_ne!(topic["TopicId"], "AAAAAAAAAAAAAAAAAAAAAA", "a topic id: {stdout}");
        let rows: Vec<BTreeMap<String, String>> = lines.map(fields).collect();
        assert_eq!(rows.len(), partitions as usize, "{stdout}");
        for (index, row) in rows.iter().enumerate() {
            assert_eq!(row["Topic"], "cli-events", "{stdout}");
            assert_eq!(row["Partition"], index.to_string(), "{stdout}");
            for column in ["Leader", "Replicas", "Isr"] {
                assert_eq!(row[column], node, "{column} of partition {index}: {stdout}");
            }
        }
    };
    describe(3);

    let altered = tool(
        "kafka-topics",
        &[
            "--bootstrap-server",
            &bootstrap,
            "--alter",
            "--topic",
            "cli-events",
            "--partitions",
            "5",
        ],
    );
    assert_eq!(altered.trim(), "", "kafka-topics --alter");
    describe(5);

    let deleted = tool(
        "kafka-topics",
        &[
            "--bootstrap-server",
            &bootstrap,
            "--delete",
            "--topic",
            "cli-events",
        ],
    );
    assert_eq!(deleted.trim(), "", "kafka-topics --delete");
    list(&[]);
}

/// The console producer (keys, headers) and a console consumer group,
/// then kafka-consumer-groups on that group: list, describe with lag,
/// three kinds of offset resets each followed by the group reading exactly
/// from there, delete.
#[test]
fn console_tools_and_consumer_groups_read_exactly_where_offsets_say() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let (topic, group) = ("cli-orders", "cli-group");
    create_topic(&bootstrap, topic, "3", &[]);

    console_produce(&bootstrap, topic, &producer_lines(&FIRST));
    assert_eq!(
        console_consume(&bootstrap, topic, group, FIRST.len()),
        consumer_lines(|index, _, _| index < FIRST.len()),
        "the group's first read: every record of FIRST, exactly"
    );
    console_produce(&bootstrap, topic, &producer_lines(&SECOND));

    let groups = tool(
        "kafka-consumer-groups",
        &["--bootstrap-server", &bootstrap, "--list"],
    );
    assert_eq!(
        groups.lines().collect::<Vec<_>>(),
        [group],
        "kafka-consumer-groups --list"
    );

    let described = tool_run(
        "kafka-consumer-groups",
        &["--bootstrap-server", &bootstrap, "--describe", "--group", group],
    );
    assert!(
        described.status.success(),
        "kafka-consumer-groups --describe: {}",
        described.status
    );
    assert_eq!(
        described.stderr.trim(),
        format!("Consumer group '{group}' has no active members."),
        "kafka-consumer-groups --describe stderr"
    );
    let described = described.stdout;
    let row = |current: i64, end: i64| (current.to_string(), end.to_string(), (end - current).to_string());
    assert_eq!(
        group_offsets(&described, group, topic),
        BTreeMap::from([(0, row(1, 2)), (1, row(1, 1)), (2, row(2, 3))]),
        "CURRENT-OFFSET (FIRST was read), LOG-END-OFFSET (SECOND too), LAG per partition"
    );

    let reset = |args: &[&str]| {
        let mut all = vec![
            "--bootstrap-server",
            bootstrap.as_str(),
            "--group",
            group,
            "--reset-offsets",
        ];
        all.extend_from_slice(args);
        all.push("--execute");
        reset_offsets(&tool("kafka-consumer-groups", &all), group, topic)
    };

    assert_eq!(
        reset(&["--topic", topic, "--to-earliest"]),
        map(&[(0, 0), (1, 0), (2, 0)]),
        "--to-earliest"
    );
    assert_eq!(
        console_consume(&bootstrap, topic, group, FIRST.len() + SECOND.len()),
        consumer_lines(|_, _, _| true),
        "after --to-earliest the group reads everything again"
    );

    // Now at (2, 1, 3): partition 2 back to 1, then every partition one back.
    let partition_2 = format!("{topic}:2");
    assert_eq!(
        reset(&["--topic", &partition_2, "--to-offset", "1"]),
        map(&[(2, 1)]),
        "--to-offset 1"
    );
    assert_eq!(
        reset(&["--topic", topic, "--shift-by", "-1"]),
        map(&[(0, 1), (1, 0), (2, 0)]),
        "--shift-by -1"
    );
    assert_eq!(
        console_consume(&bootstrap, topic, group, 5),
        consumer_lines(|_, partition, offset| partition != 0 || offset >= 1),
        "after the resets the group reads partition 0 from 1, partitions 1 and 2 from 0"
    );

    let deleted = tool(
        "kafka-consumer-groups",
        &["--bootstrap-server", &bootstrap, "--delete", "--group", group],
    );
    assert_eq!(
        deleted.trim(),
        format!("Deletion of requested consumer groups ('{group}') was successful."),
        "kafka-consumer-groups --delete"
    );
    let groups = tool(
        "kafka-consumer-groups",
        &["--bootstrap-server", &bootstrap, "--list"],
    );
    assert_eq!(groups.trim(), "", "kafka-consumer-groups --list after --delete");
}

/// kafka-configs --describe: a topic's own configs, all its configs, and
/// the broker's.
#[test]
fn kafka_configs_describes_topic_and_broker_configs() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = "cli-configured";
    create_topic(
        &bootstrap,
        topic,
        "1",
        &[
            "--config",
            "segment.bytes=1048576",
            "--config",
            "message.timestamp.type=LogAppendTime",
        ],
    );

    let describe = |args: &[&str]| {
        let mut all = vec!["--bootstrap-server", bootstrap.as_str(), "--describe"];
        all.extend_from_slice(args);
        tool("kafka-configs", &all)
    };

    let own = describe(&["--entity-type", "topics", "--entity-name", topic]);
    assert_eq!(
        config_section(&own, &format!("Dynamic configs for topic {topic} are:")),
        BTreeMap::from([
            ("message.timestamp.type".to_string(), "LogAppendTime".to_string()),
            ("segment.bytes".to_string(), "1048576".to_string()),
        ]),
        "the topic's own configs"
    );

    let all = describe(&["--entity-type", "topics", "--entity-name", topic, "--all"]);
    let all = config_section(&all, &format!("All configs for topic {topic} are:"));
    for (name, value) in [
        ("cleanup.policy", "delete"),
        ("max.message.bytes", "1048588"),
        ("message.timestamp.type", "LogAppendTime"),
        ("segment.bytes", "1048576"),
        ("segment.ms", "604800000"),
    ] {
        assert_eq!(
            all.get(name).map(String::as_str),
            Some(value),
            "topic config {name}: {all:?}"
        );
    }

    // Without a name: every broker of the cluster (found through Metadata).
    let brokers = describe(&["--entity-type", "brokers"]);
    let ids: Vec<&str> = brokers
        .lines()
        .filter_map(|line| {
            line.strip_prefix("Dynamic configs for broker ")?
                .strip_suffix(" are:")
        })
        .collect();
    let node = node_id().to_string();
    assert_eq!(
        ids,
        [node.as_str()],
        "the brokers kafka-configs found:\n{brokers}"
    );
    assert!(
        brokers.contains("Default configs for brokers in the cluster are:"),
        "{brokers}"
    );

    let all = describe(&["--entity-type", "brokers", "--entity-name", &node, "--all"]);
    let all = config_section(&all, &format!("All configs for broker {node} are:"));
    for (name, value) in [
        ("auto.create.topics.enable", "true"),
        ("broker.id", node.as_str()),
        ("log.segment.bytes", "1073741824"),
        ("message.max.bytes", "1048588"),
        ("num.partitions", "1"),
        ("socket.request.max.bytes", "104857600"),
    ] {
        assert_eq!(
            all.get(name).map(String::as_str),
            Some(value),
            "broker config {name}: {all:?}"
        );
    }
}

/// kafka-transactions after one committed transaction of
/// kafka-producer-perf-test (the console producer cannot be transactional).
#[test]
fn kafka_transactions_lists_and_describes_a_committed_transaction() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let (topic, transactional_id) = ("cli-transactional", "cli-perf-tx");
    create_topic(&bootstrap, topic, "1", &[]);

    // One transaction for all 1000 records: it is committed at the end, as
    // the duration is never reached.
    let producer_props = format!("bootstrap.servers={bootstrap}");
    let produced = tool_run(
        "kafka-producer-perf-test",
        &[
            "--topic",
            topic,
            "--num-records",
            "1000",
            "--record-size",
            "100",
            "--throughput",
            "-1",
            "--transactional-id",
            transactional_id,
            "--transaction-duration-ms",
            "600000",
            "--producer-props",
            &producer_props,
            "acks=all",
        ],
    );
    assert!(
        produced.status.success(),
        "kafka-producer-perf-test: {}",
        produced.status
    );
    let summary = produced.stdout.lines().last().unwrap_or_default();
    assert!(summary.starts_with("1000 records sent, "), "summary: {summary:?}");
    assert!(
        !produced.stderr.contains("Exception"),
        "perf test errors:\n{}",
        produced.stderr
    );
    // 1000 records and the COMMIT marker.
    assert_eq!(
        get_offsets(&bootstrap, topic, None),
        map(&[(0, 1001)]),
        "end offset"
    );

    let node = node_id().to_string();
    let transactions = |args: &[&str]| {
        let mut all = vec!["--bootstrap-server", bootstrap.as_str()];
        all.extend_from_slice(args);
        tab_table(&tool("kafka-transactions", &all))
    };

    let listed = transactions(&["list"]);
    assert_eq!(listed.len(), 1, "kafka-transactions list: {listed:?}");
    let producer_id = listed[0]["ProducerId"].clone();
    assert!(producer_id.parse::<i64>().is_ok_and(|id| id >= 0), "{listed:?}");
    assert_eq!(listed[0]["TransactionalId"], transactional_id, "{listed:?}");
    assert_eq!(listed[0]["Coordinator"], node, "{listed:?}");
    assert_eq!(listed[0]["TransactionState"], "CompleteCommit", "{listed:?}");

    let described = transactions(&["describe", "--transactional-id", transactional_id]);
    assert_eq!(described.len(), 1, "kafka-transactions describe: {described:?}");
    let described = &described[0];
    for (column, value) in [
        ("CoordinatorId", node.as_str()),
        ("TransactionalId", transactional_id),
        ("ProducerId", producer_id.as_str()),
        ("TransactionState", "CompleteCommit"),
        // The producer's default transaction.timeout.ms.
        ("TransactionTimeoutMs", "60000"),
        ("TopicPartitions", ""),
    ] {
        assert_eq!(described[column], value, "{column}: {described:?}");
    }

    let producers = transactions(&["describe-producers", "--topic", topic, "--partition", "0"]);
    assert_eq!(
        producers.len(),
        1,
        "kafka-transactions describe-producers: {producers:?}"
    );
    let producer = &producers[0];
    assert_eq!(producer["ProducerId"], producer_id, "{producer:?}");
    assert_eq!(
        producer["ProducerEpoch"], described["ProducerEpoch"],
        "{producer:?}"
    );
    assert_eq!(
        producer["CurrentTransactionStartOffset"], "None",
        "no open transaction: {producer:?}"
    );
}

/// The perf tools as the quickstart runs them: 20,000 records of 1 KiB
/// with acks=all, all acknowledged, all stored, all read back.
#[test]
fn perf_tools_produce_and_consume_twenty_thousand_records() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = "cli-perf";
    create_topic(&bootstrap, topic, "3", &[]);

    let producer_props = format!("bootstrap.servers={bootstrap}");
    let produced = tool_run(
        "kafka-producer-perf-test",
        &[
            "--topic",
            topic,
            "--num-records",
            "20000",
            "--record-size",
            "1024",
            "--throughput",
            "-1",
            "--producer-props",
            &producer_props,
            "acks=all",
        ],
    );
    assert!(
        produced.status.success(),
        "kafka-producer-perf-test: {}",
        produced.status
    );
    // Only acknowledged records are counted; a failed send prints its
    // exception on stderr.
    let summary = produced.stdout.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("20000 records sent, ") && summary.contains(" 99.9th."),
        "final summary: {summary:?}"
    );
    assert!(
        !produced.stderr.contains("Exception"),
        "perf test errors:\n{}",
        produced.stderr
    );

    let ends = get_offsets(&bootstrap, topic, Some("latest"));
    assert_eq!(ends.keys().copied().collect::<Vec<_>>(), [0, 1, 2], "{ends:?}");
    assert_eq!(ends.values().sum::<i64>(), 20_000, "records stored: {ends:?}");

    let consumed = tool_run(
        "kafka-consumer-perf-test",
        &[
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            topic,
            "--messages",
            "20000",
            "--timeout",
            "60000",
        ],
    );
    assert!(
        consumed.status.success(),
        "kafka-consumer-perf-test: {}",
        consumed.status
    );
    assert!(
        !consumed.stdout.contains("WARNING") && !consumed.stderr.contains("WARNING: Exiting"),
        "kafka-consumer-perf-test stopped early"
    );
    let mut lines = consumed.stdout.lines().filter(|line| !line.trim().is_empty());
    let header: Vec<&str> = lines.next().expect("header").split(", ").collect();
    let values: Vec<&str> = lines.next().expect("values").split(", ").collect();
    let stats: BTreeMap<&str, &str> = header.into_iter().zip(values).collect();
    assert_eq!(stats["data.consumed.in.nMsg"], "20000", "{stats:?}");
    // 20000 × 1024 bytes = 19.53125 MiB.
    assert_eq!(stats["data.consumed.in.MB"], "19.5313", "{stats:?}");
}

/// What a console consumer group committed is still there after a broker
/// restart: kafka-consumer-groups shows it, kafka-get-offsets shows the
/// same log, and the group goes on with exactly the records produced after.
#[test]
fn committed_offsets_survive_a_broker_restart() {
    let mut broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let (topic, group) = ("cli-restart", "cli-restart-group");
    create_topic(&bootstrap, topic, "3", &[]);
    console_produce(&bootstrap, topic, &producer_lines(&FIRST));
    assert_eq!(
        console_consume(&bootstrap, topic, group, FIRST.len()),
        consumer_lines(|index, _, _| index < FIRST.len()),
        "the group's read before the restart"
    );

    broker.restart();

    let described = tool(
        "kafka-consumer-groups",
        &["--bootstrap-server", &bootstrap, "--describe", "--group", group],
    );
    let row = |offset: i64| (offset.to_string(), offset.to_string(), "0".to_string());
    assert_eq!(
        group_offsets(&described, group, topic),
        BTreeMap::from([(0, row(1)), (1, row(1)), (2, row(2))]),
        "the committed offsets after the restart"
    );
    assert_eq!(
        get_offsets(&bootstrap, topic, Some("-1")),
        map(&[(0, 1), (1, 1), (2, 2)]),
        "--time -1"
    );
    assert_eq!(
        get_offsets(&bootstrap, topic, Some("-2")),
        map(&[(0, 0), (1, 0), (2, 0)]),
        "--time -2"
    );
    assert_eq!(
        get_offsets(&bootstrap, topic, Some("earliest")),
        map(&[(0, 0), (1, 0), (2, 0)]),
        "--time earliest"
    );

    console_produce(&bootstrap, topic, &producer_lines(&SECOND));
    assert_eq!(
        console_consume(&bootstrap, topic, group, SECOND.len()),
        consumer_lines(|index, _, _| index >= FIRST.len()),
        "after the restart the group reads exactly what was produced after it"
    );
}
