//! Apache Kafka's own command-line tools (release 4.1.1, run through
//! `scripts/kafka-reference.sh tool ...`) changing topic configs and
//! deleting records, their printed output checked exactly:
//!
//! - `kafka-configs --alter --add-config` of two configs at once, then
//!   `--describe` (the topic's own configs with their synonyms), `--describe
//!   --all` (every config weir has, values and synonyms), `--alter
//!   --delete-config`; an invalid value, a config not set and an unknown
//!   topic are refused with a non-zero exit and Kafka's error text;
//! - `kafka-delete-records --offset-json-file`: the low watermark it prints,
//!   the watermarks after it, `-1` (up to the high watermark) and an offset
//!   beyond the high watermark (reported per partition, exit 0).
//!
//! A config Kafka has and weir refuses (flush.messages) is checked as
//! accepted against Kafka and refused against weir.

mod common;

use std::fs::{self, File};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use common::{
    create_topic, produce_all_acked, read_tail, repo_path, target, temp_dir, wait_with_timeout, watermarks,
    Broker, Target, TestMessage,
};

/// Upper bound for one tool run (a JVM start and one admin call).
const TOOL_TIMEOUT: Duration = Duration::from_secs(180);
/// `kafka-delete-records` is not one of the script's short names: its class.
const DELETE_RECORDS: &str = "org.apache.kafka.tools.DeleteRecordsCommand";

/// What one tool run left: exit status and output.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `scripts/kafka-reference.sh tool NAME args...` to completion.
fn tool(name: &str, args: &[&str]) -> Run {
    let logs = temp_dir("weir-configs-cli-");
    let stdout_path = logs.path().join("stdout.log");
    let stderr_path = logs.path().join("stderr.log");
    let mut child = Command::new(repo_path("scripts/kafka-reference.sh"))
        .arg("tool")
        .arg(name)
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("stdout file"))
        .stderr(File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("run scripts/kafka-reference.sh");
    let Some(status) = wait_with_timeout(&mut child, TOOL_TIMEOUT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{name} {args:?} ran longer than {TOOL_TIMEOUT:?}\nstdout:\n{}\nstderr:\n{}",
            read_tail(&stdout_path, 16 * 1024),
            read_tail(&stderr_path, 64 * 1024)
        );
    };
    let run = Run {
        status,
        stdout: fs::read_to_string(&stdout_path).expect("read tool stdout"),
        stderr: fs::read_to_string(&stderr_path).expect("read tool stderr"),
    };
    eprintln!(
        "--- {name} {args:?}: {status}\n--- stdout ---\n{}--- stderr ---\n{}",
        run.stdout, run.stderr
    );
    run
}

/// A run that must succeed: its stdout.
fn tool_ok(name: &str, args: &[&str]) -> String {
    let run = tool(name, args);
    assert!(
        run.status.success(),
        "{name} {args:?} exited with {}\nstdout:\n{}\nstderr:\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
    run.stdout
}

/// `kafka-configs --bootstrap-server B --entity-type topics --entity-name T ARGS...`.
fn configs(bootstrap: &str, topic: &str, args: &[&str]) -> Run {
    let mut all = vec![
        "--bootstrap-server",
        bootstrap,
        "--entity-type",
        "topics",
        "--entity-name",
        topic,
    ];
    all.extend_from_slice(args);
    tool("kafka-configs", &all)
}

fn configs_ok(bootstrap: &str, topic: &str, args: &[&str]) -> String {
    let run = configs(bootstrap, topic, args);
    assert!(
        run.status.success(),
        "kafka-configs {args:?} exited with {}\nstdout:\n{}\nstderr:\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
    run.stdout
}

/// Differences from Kafka's output, collected so that one run shows all
/// of them; the test fails at its end if there is any.
#[derive(Default)]
struct Differences(Vec<String>);

impl Differences {
    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, actual: T, expected: T, what: &str) {
        if actual != expected {
            self.0
                .push(format!("{what}:\n  expected {expected:?}\n  actual   {actual:?}"));
        }
    }

    fn check(&mut self, ok: bool, what: String) {
        if !ok {
            self.0.push(what);
        }
    }

    fn assert_none(self) {
        assert!(
            self.0.is_empty(),
            "{} difference(s) from Kafka's output:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

/// A refused `kafka-configs --alter`: exit status 1, nothing on stdout,
/// and on stderr the tool's error line and Kafka's exception text.
fn check_refused(differences: &mut Differences, run: &Run, args: &str, exception: &str) {
    differences.eq(
        (run.status.code(), run.stdout.as_str()),
        (Some(1), ""),
        &format!("exit status and stdout of a refused alter ({args})"),
    );
    let error_line = format!("Error while executing config command with args '{args}'");
    differences.check(
        run.stderr.lines().any(|line| line == error_line),
        format!("no line {error_line:?} in:\n{}", run.stderr),
    );
    let cause = format!("Caused by: {exception}");
    differences.check(
        run.stderr.lines().any(|line| line.trim_end() == cause),
        format!("no line {cause:?} in:\n{}", run.stderr),
    );
}

/// The `kafka-configs --describe` lines under `header`, up to the next
/// line that is not indented.
fn section<'a>(output: &'a str, header: &str) -> Vec<&'a str> {
    let mut lines = output.lines().skip_while(|line| *line != header);
    assert!(lines.next().is_some(), "no line {header:?} in:\n{output}");
    lines.take_while(|line| line.starts_with("  ")).collect()
}

/// --add-config of two configs, --describe of the topic's own configs and
/// of all of them, --delete-config, and the refusals.
#[test]
fn kafka_configs_alters_describes_and_deletes_topic_configs() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = "cli-topic-configs";
    create_topic(&bootstrap, topic, 1, &[]);
    let mut differences = Differences::default();
    let completed = format!("Completed updating config for topic {topic}.\n");

    let added = configs_ok(
        &bootstrap,
        topic,
        &[
            "--alter",
            "--add-config",
            "retention.ms=1000,retention.bytes=2097152",
        ],
    );
    assert_eq!(added, completed, "kafka-configs --alter --add-config");

    let own = configs_ok(&bootstrap, topic, &["--describe"]);
    differences.eq(
        own.as_str(),
        &format!(
            "Dynamic configs for topic {topic} are:\n\
             \x20 retention.bytes=2097152 sensitive=false synonyms={{DYNAMIC_TOPIC_CONFIG:retention.bytes=2097152, \
             DEFAULT_CONFIG:log.retention.bytes=-1}}\n\
             \x20 retention.ms=1000 sensitive=false synonyms={{DYNAMIC_TOPIC_CONFIG:retention.ms=1000}}\n"
        ),
        "kafka-configs --describe",
    );

    let all = configs_ok(&bootstrap, topic, &["--describe", "--all"]);
    let all = section(&all, &format!("All configs for topic {topic} are:"));
    for line in [
        "  cleanup.policy=delete sensitive=false synonyms={DEFAULT_CONFIG:log.cleanup.policy=delete}",
        "  max.message.bytes=1048588 sensitive=false synonyms={DEFAULT_CONFIG:message.max.bytes=1048588}",
        "  message.timestamp.type=CreateTime sensitive=false \
         synonyms={DEFAULT_CONFIG:log.message.timestamp.type=CreateTime}",
        "  retention.bytes=2097152 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.bytes=2097152, \
         DEFAULT_CONFIG:log.retention.bytes=-1}",
        "  retention.ms=1000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000}",
        "  segment.bytes=1073741824 sensitive=false synonyms={DEFAULT_CONFIG:log.segment.bytes=1073741824}",
        "  segment.ms=604800000 sensitive=false synonyms={}",
    ] {
        differences.check(
            all.contains(&line),
            format!("no line {line:?} in --describe --all:\n{}", all.join("\n")),
        );
    }
    let mut sorted = all.clone();
    sorted.sort();
    differences.eq(&all, &sorted, "--describe --all lists the configs by name");

    let deleted = configs_ok(&bootstrap, topic, &["--alter", "--delete-config", "retention.ms"]);
    assert_eq!(deleted, completed, "kafka-configs --alter --delete-config");
    let own = configs_ok(&bootstrap, topic, &["--describe"]);
    differences.eq(
        section(&own, &format!("Dynamic configs for topic {topic} are:")),
        vec![
            "  retention.bytes=2097152 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.bytes=2097152, \
             DEFAULT_CONFIG:log.retention.bytes=-1}",
        ],
        "kafka-configs --describe after --delete-config retention.ms",
    );
    let all = configs_ok(&bootstrap, topic, &["--describe", "--all"]);
    let line = "  retention.ms=604800000 sensitive=false synonyms={}";
    differences.check(
        section(&all, &format!("All configs for topic {topic} are:")).contains(&line),
        format!("no line {line:?} after --delete-config:\n{all}"),
    );

    // Refusals: exit 1, the error on stderr, nothing changed.
    let prefix = format!("--bootstrap-server {bootstrap} --entity-type topics --entity-name {topic} --alter");
    for (config, exception) in [
        (
            "retention.ms=abc",
            "org.apache.kafka.common.errors.InvalidConfigurationException: Invalid value abc for configuration \
             retention.ms: Not a number of type LONG",
        ),
        (
            "retention.ms=-5",
            "org.apache.kafka.common.errors.InvalidConfigurationException: Invalid value -5 for configuration \
             retention.ms: Value must be at least -1",
        ),
        (
            "segment.bytes=1000",
            "org.apache.kafka.common.errors.InvalidConfigurationException: Invalid value 1000 for configuration \
             segment.bytes: Value must be at least 1048576",
        ),
        (
            "no.such.config=1",
            "org.apache.kafka.common.errors.InvalidConfigurationException: Unknown topic config name: \
             no.such.config",
        ),
    ] {
        let run = configs(&bootstrap, topic, &["--alter", "--add-config", config]);
        check_refused(
            &mut differences,
            &run,
            &format!("{prefix} --add-config {config}"),
            exception,
        );
    }
    // Deleting a config the topic does not set is refused by the tool
    // itself (it describes the topic first): exit 1, one line on stderr.
    let run = configs(&bootstrap, topic, &["--alter", "--delete-config", "retention.ms"]);
    differences.eq(
        (run.status.code(), run.stdout.as_str(), run.stderr.trim_end()),
        (Some(1), "", "Invalid config(s): retention.ms"),
        "--delete-config of a config not set",
    );
    let unknown = configs(
        &bootstrap,
        "cli-none",
        &["--alter", "--add-config", "retention.ms=1000"],
    );
    check_refused(
        &mut differences,
        &unknown,
        &format!(
            "--bootstrap-server {bootstrap} --entity-type topics --entity-name cli-none --alter --add-config \
             retention.ms=1000"
        ),
        "org.apache.kafka.common.errors.UnknownTopicOrPartitionException:",
    );

    // A config Kafka has and weir does not.
    let flush = configs(
        &bootstrap,
        topic,
        &["--alter", "--add-config", "flush.messages=1"],
    );
    match target() {
        Target::Kafka => differences.eq(
            (flush.status.code(), flush.stdout.as_str()),
            (Some(0), completed.as_str()),
            "Kafka takes flush.messages",
        ),
        Target::Weir => {
            differences.eq(flush.status.code(), Some(1), "weir refuses flush.messages");
            differences.check(
                flush
                    .stderr
                    .contains("org.apache.kafka.common.errors.InvalidConfigurationException"),
                format!(
                    "weir refuses flush.messages with INVALID_CONFIG:\n{}",
                    flush.stderr
                ),
            );
        }
    }
    // What the refused changes left: the configs as they were.
    let own = configs_ok(&bootstrap, topic, &["--describe"]);
    let names: Vec<&str> = section(&own, &format!("Dynamic configs for topic {topic} are:"))
        .iter()
        .map(|line| line.trim().split('=').next().unwrap_or_default())
        .collect();
    let expected = match target() {
        Target::Kafka => vec!["flush.messages", "retention.bytes"],
        Target::Weir => vec!["retention.bytes"],
    };
    differences.eq(names, expected, "the topic's own configs after the refusals");
    differences.assert_none();
}

/// `kafka-delete-records` with an offset file: the low watermark it prints
/// and the partition's watermarks after it.
#[test]
fn kafka_delete_records_prints_the_low_watermark() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = "cli-delete-records";
    create_topic(&bootstrap, topic, 2, &[]);
    let messages: Vec<TestMessage> = (0..10)
        .map(|i| TestMessage::keyed(0, format!("key-{i}"), format!("value-{i}")))
        .chain((0..4).map(|i| TestMessage::keyed(1, format!("key-1-{i}"), format!("value-1-{i}"))))
        .collect();
    produce_all_acked(&bootstrap, "all", topic, &messages);
    assert_eq!(watermarks(&bootstrap, topic, 0), (0, 10));
    assert_eq!(watermarks(&bootstrap, topic, 1), (0, 4));

    let dir = temp_dir("weir-delete-records-");
    let delete = |partitions: &[(i32, i64)]| {
        let entries: Vec<String> = partitions
            .iter()
            .map(|(partition, offset)| {
                format!(r#"{{"topic":"{topic}","partition":{partition},"offset":{offset}}}"#)
            })
            .collect();
        let file = dir.path().join("offsets.json");
        fs::write(
            &file,
            format!(r#"{{"partitions":[{}],"version":1}}"#, entries.join(",")),
        )
        .expect("write the offset file");
        tool_ok(
            DELETE_RECORDS,
            &[
                "--bootstrap-server",
                &bootstrap,
                "--offset-json-file",
                &file.display().to_string(),
            ],
        )
    };
    let report = |lines: &[String]| {
        format!(
            "Executing records delete operation\nRecords delete operation completed:\n{}",
            lines.iter().map(|line| format!("{line}\n")).collect::<String>()
        )
    };

    assert_eq!(
        delete(&[(0, 3)]),
        report(&[format!("partition: {topic}-0\tlow_watermark: 3")])
    );
    assert_eq!(
        watermarks(&bootstrap, topic, 0),
        (3, 10),
        "after deleting before 3"
    );

    // Two partitions at once: -1 means up to the high watermark.
    let both = delete(&[(0, 6), (1, -1)]);
    let mut lines: Vec<String> = both.lines().map(str::to_string).collect();
    if lines.len() > 2 {
        lines[2..].sort();
    }
    assert_eq!(
        format!("{}\n", lines.join("\n")),
        report(&[
            format!("partition: {topic}-0\tlow_watermark: 6"),
            format!("partition: {topic}-1\tlow_watermark: 4"),
        ]),
        "two partitions (lines sorted):\n{both}"
    );
    assert_eq!(
        watermarks(&bootstrap, topic, 0),
        (6, 10),
        "after deleting before 6"
    );
    assert_eq!(
        watermarks(&bootstrap, topic, 1),
        (4, 4),
        "after deleting before -1"
    );

    // Beyond the high watermark: an error for the partition, exit 0.
    assert_eq!(
        delete(&[(0, 11)]),
        report(&[format!(
            "partition: {topic}-0\terror: org.apache.kafka.common.errors.OffsetOutOfRangeException: The requested \
             offset is not within the range of offsets maintained by the server."
        )])
    );
    assert_eq!(
        watermarks(&bootstrap, topic, 0),
        (6, 10),
        "after the refused delete"
    );

    // Up to the high watermark exactly: the partition is empty.
    assert_eq!(
        delete(&[(0, 10)]),
        report(&[format!("partition: {topic}-0\tlow_watermark: 10")])
    );
    assert_eq!(
        watermarks(&bootstrap, topic, 0),
        (10, 10),
        "after deleting everything"
    );
}
