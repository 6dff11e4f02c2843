//! kcat (Debian's package: kcat 1.7.1 on librdkafka 2.0.2, installed by
//! `tests/kcat/install.sh`), the command-line client most people try a
//! broker with, driven as its users do:
//!
//! - the README's quick start: `kcat -L`, `echo hi | kcat -P -t T` to a topic
//!   the broker auto-creates, `kcat -C -t T -o beginning -e` prints exactly
//!   `hi`;
//! - keyed records (`-K :`) with headers (`-H name=value`, an empty and a
//!   null value) produced to each partition of a 3-partition topic, read
//!   back with the JSON envelope (`-J`: exact offsets, keys, values,
//!   headers), metadata as JSON (`-L -J`), offsets by time (`-Q`), and a
//!   balanced consumer group (`-G`) that commits what it read, survives a
//!   broker restart and then receives exactly the records produced after
//!   it (compressed: gzip, lz4, zstd), none missing, none repeated.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use common::{create_topic, run_client, temp_dir, Broker, CLIENT_TIMEOUT};

/// Upper bound for one kcat run (a group consumer joins, waits for the
/// broker's initial rebalance delay, reads and commits).
const KCAT_TIMEOUT: Duration = Duration::from_secs(120);
const PARTITIONS: i32 = 3;
/// Records per partition produced before the restart and after it: uneven,
/// so a partition mix-up shows.
const FIRST_COUNTS: [usize; 3] = [6, 3, 5];
const SECOND_COUNTS: [usize; 3] = [2, 4, 1];

/// `cargo test` puts the build directories of the test's own dependencies on
/// LD_LIBRARY_PATH, rdkafka-sys's librdkafka.so.1 among them: kcat would
/// load that one instead of the system's. Every kcat runs with this.
const SYSTEM_LIBRARIES: [(&str, &str); 1] = [("LD_LIBRARY_PATH", "")];

/// Fails (never skips) when kcat is missing; shows which kcat and
/// librdkafka the test drives.
fn assert_kcat_installed() {
    let output = std::process::Command::new("kcat")
        .arg("-V")
        .envs(SYSTEM_LIBRARIES)
        .output();
    let output = match output {
        Ok(output) if output.status.success() => output,
        _ => panic!("kcat is not installed: run tests/kcat/install.sh (Debian: apt-get install kcat)"),
    };
    let version = String::from_utf8_lossy(&output.stdout);
    eprintln!(
        "{}",
        version
            .lines()
            .find(|line| line.starts_with("Version"))
            .unwrap_or(&version)
    );
}

/// Runs `kcat -b BOOTSTRAP args...`, asserts it exits 0, returns its stdout.
fn kcat(broker: &Broker, args: &[&str]) -> String {
    let mut all_args = vec!["-b".to_string(), broker.bootstrap()];
    all_args.extend(args.iter().map(|arg| arg.to_string()));
    run_client("kcat", &all_args, &SYSTEM_LIBRARIES, KCAT_TIMEOUT)
}

#[test]
fn kcat_readme_quickstart_lists_produces_and_consumes() {
    assert_kcat_installed();
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();

    let listing = kcat(&broker, &["-L"]);
    assert!(
        listing.contains(" 1 brokers:\n") && listing.contains(&format!(" at {bootstrap}")),
        "kcat -L must show the one broker at {bootstrap}:\n{listing}"
    );

    // Exactly the README's pipeline (the topic does not exist yet: the
    // broker creates it, as Kafka does by default).
    let pipeline = format!("echo hi | kcat -b {bootstrap} -P -t quickstart");
    run_client(
        "sh",
        &["-c".to_string(), pipeline],
        &SYSTEM_LIBRARIES,
        KCAT_TIMEOUT,
    );
    let consumed = kcat(&broker, &["-C", "-t", "quickstart", "-o", "beginning", "-e"]);
    assert_eq!(
        consumed, "hi\n",
        "kcat -C -o beginning -e after echo hi | kcat -P"
    );

    let listing = kcat(&broker, &["-L", "-t", "quickstart"]);
    assert!(
        listing.contains("topic \"quickstart\" with 1 partitions:"),
        "kcat -L -t quickstart must show the auto-created topic:\n{listing}"
    );
}

/// One record as the test produces it with kcat and expects it back.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    partition: i32,
    offset: i64,
    key: String,
    value: String,
    headers: Vec<(String, Option<String>)>,
}

/// The records of `batch` ("first" or "second") in `partition`, which start at
/// offset `first_offset`. Values exercise JSON escaping (quotes, backslash,
/// tab, non-ASCII) and an empty value.
fn batch_records(batch: &str, partition: i32, first_offset: i64, count: usize) -> Vec<Record> {
    (0..count)
        .map(|i| Record {
            partition,
            offset: first_offset + i as i64,
            key: format!("{batch}-p{partition}-{i:03}"),
            value: match i {
                0 => String::new(),
                1 => format!("a \"quoted\" \\ value\twith tab, ünïcødé ✓ {batch} {partition}"),
                _ => format!(
                    "value {i} of {batch} in partition {partition}: {}",
                    "x".repeat(i * 17)
                ),
            },
            headers: vec![
                ("batch".to_string(), Some(batch.to_string())),
                ("partition".to_string(), Some(partition.to_string())),
                ("empty".to_string(), Some(String::new())),
                ("null".to_string(), None),
            ],
        })
        .collect()
}

/// Produces `records` (all of one partition and batch, same headers) with
/// one `kcat -P -p PARTITION -z CODEC -K : -H ... -l FILE` run.
fn produce_with_kcat(broker: &Broker, topic: &str, records: &[Record], codec: &str, scratch: &Path) {
    let first = &records[0];
    let lines: String = records
        .iter()
        .map(|r| format!("{}:{}\n", r.key, r.value))
        .collect();
    let file = scratch.join(format!("{topic}-{}-{}.txt", first.partition, first.offset));
    fs::write(&file, lines).expect("write kcat input file");
    let partition = first.partition.to_string();
    let mut args = vec!["-P", "-t", topic, "-p", &partition, "-z", codec, "-K", ":"];
    let header_args: Vec<String> = first
        .headers
        .iter()
        .map(|(name, value)| match value {
            Some(value) => format!("{name}={value}"),
            None => name.clone(),
        })
        .collect();
    for header in &header_args {
        args.extend(["-H", header.as_str()]);
    }
    let file = file.display().to_string();
    args.extend(["-l", file.as_str()]);
    kcat(broker, &args);
}

/// Produces one batch to every partition, partition `p` compressed with
/// `codecs[p]`; returns the records per partition.
fn produce_batch(
    broker: &Broker,
    topic: &str,
    batch: &str,
    start_offsets: [i64; 3],
    counts: [usize; 3],
    codecs: [&str; 3],
    scratch: &Path,
) -> BTreeMap<i32, Vec<Record>> {
    (0..PARTITIONS)
        .map(|partition| {
            let p = partition as usize;
            let records = batch_records(batch, partition, start_offsets[p], counts[p]);
            produce_with_kcat(broker, topic, &records, codecs[p], scratch);
            (partition, records)
        })
        .collect()
}

/// Parses kcat's `-J` output (one JSON object per line) into records per
/// partition, in output order, with each record's timestamp. Asserts the
/// envelope's topic and CreateTime type.
fn parse_consumed(output: &str, topic: &str) -> BTreeMap<i32, Vec<(Record, i64)>> {
    let mut by_partition: BTreeMap<i32, Vec<(Record, i64)>> = BTreeMap::new();
    for line in output.lines().filter(|line| !line.trim().is_empty()) {
        let json = json::parse(line).unwrap_or_else(|error| panic!("kcat -J line {line:?}: {error}"));
        assert_eq!(json.get("topic").as_str(), Some(topic), "topic of {line}");
        assert_eq!(
            json.get("tstype").as_str(),
            Some("create"),
            "timestamp type of {line}"
        );
        let header_list = json
            .get("headers")
            .as_array()
            .unwrap_or_else(|| panic!("headers of {line}"));
        assert!(
            header_list.len() % 2 == 0,
            "headers of {line} come in name, value pairs"
        );
        let headers = header_list
            .chunks(2)
            .map(|pair| {
                let name = pair[0]
                    .as_str()
                    .unwrap_or_else(|| panic!("header name in {line}"));
                (name.to_string(), pair[1].as_str().map(str::to_string))
            })
            .collect();
        let record = Record {
            partition: json.get("partition").as_i64().expect("partition") as i32,
            offset: json.get("offset").as_i64().expect("offset"),
            key: json
                .get("key")
                .as_str()
                .unwrap_or_else(|| panic!("key of {line}"))
                .to_string(),
            value: json
                .get("payload")
                .as_str()
                .unwrap_or_else(|| panic!("payload of {line}"))
                .to_string(),
            headers,
        };
        let timestamp = json.get("ts").as_i64().expect("ts");
        by_partition
            .entry(record.partition)
            .or_default()
            .push((record, timestamp));
    }
    by_partition
}

/// Asserts `consumed` holds exactly `expected`, in order per partition.
fn assert_exact(
    consumed: &BTreeMap<i32, Vec<(Record, i64)>>,
    expected: &BTreeMap<i32, Vec<Record>>,
    what: &str,
) {
    let consumed: BTreeMap<i32, Vec<Record>> = consumed
        .iter()
        .map(|(partition, records)| (*partition, records.iter().map(|(r, _)| r.clone()).collect()))
        .filter(|(_, records): &(i32, Vec<Record>)| !records.is_empty())
        .collect();
    let expected: BTreeMap<i32, Vec<Record>> = expected
        .iter()
        .filter(|(_, records)| !records.is_empty())
        .map(|(partition, records)| (*partition, records.clone()))
        .collect();
    for partition in expected.keys().chain(consumed.keys()) {
        assert_eq!(
            consumed.get(partition),
            expected.get(partition),
            "{what}: records of partition {partition} (left: consumed, right: expected)"
        );
    }
}

/// The group's committed offsets as the broker answers OffsetFetch (through
/// the test's own rdkafka client; kcat has no command for it).
fn committed_offsets(broker: &Broker, group: &str, topic: &str) -> Vec<Offset> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("create offset-fetch consumer");
    let mut partitions = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        partitions.add_partition(topic, partition);
    }
    let committed = consumer
        .committed_offsets(partitions, CLIENT_TIMEOUT)
        .expect("OffsetFetch of the group");
    (0..PARTITIONS)
        .map(|partition| {
            committed
                .find_partition(topic, partition)
                .expect("committed offset of a partition")
                .offset()
        })
        .collect()
}

/// `kcat -Q -t T:P:TS...` answers, as (partition, offset) pairs.
fn query_offsets(broker: &Broker, topic: &str, queries: &[(i32, i64)]) -> BTreeMap<i32, i64> {
    let specs: Vec<String> = queries
        .iter()
        .map(|(p, ts)| format!("{topic}:{p}:{ts}"))
        .collect();
    let mut args = vec!["-Q"];
    for spec in &specs {
        args.extend(["-t", spec.as_str()]);
    }
    let output = kcat(broker, &args);
    // Lines look like `TOPIC [P] offset O`.
    output
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert!(
                fields.len() == 4 && fields[0] == topic && fields[2] == "offset",
                "kcat -Q line {line:?}"
            );
            let partition = fields[1].trim_matches(['[', ']']).parse().expect("partition");
            (partition, fields[3].parse().expect("offset"))
        })
        .collect()
}

/// The offset Kafka's ListOffsets gives for `timestamp` in a partition whose
/// records (in offset order) have `timestamps`: the first at or after it, -1
/// for none.
fn first_offset_at_or_after(records: &[(Record, i64)], timestamp: i64) -> i64 {
    records
        .iter()
        .find(|(_, ts)| *ts >= timestamp)
        .map_or(-1, |(record, _)| record.offset)
}

/// `kcat -G GROUP -e -J TOPIC` from the earliest offset where the group has
/// no commit: joins, reads until every assigned partition is at its end,
/// commits what it read (auto commit, at close) and leaves.
fn consume_in_group(broker: &Broker, group: &str, topic: &str) -> String {
    kcat(
        broker,
        &["-G", group, "-X", "auto.offset.reset=earliest", "-e", "-J", topic],
    )
}

#[test]
fn kcat_keyed_records_with_headers_json_group_commits_offsets_by_time_and_resume_after_restart() {
    assert_kcat_installed();
    let mut broker = Broker::start();
    let scratch = temp_dir("weir-kcat-");
    let topic = "kcat-matrix";
    let group = "kcat-matrix-group";
    create_topic(&broker.bootstrap(), topic, PARTITIONS, &[]);

    // Metadata as JSON: the one broker, leader of every partition.
    let metadata = json::parse(kcat(&broker, &["-L", "-J", "-t", topic]).trim()).expect("kcat -L -J");
    let brokers = metadata.get("brokers").as_array().expect("brokers");
    assert_eq!(brokers.len(), 1, "one broker in {metadata:?}");
    assert_eq!(brokers[0].get("name").as_str(), Some(broker.bootstrap().as_str()));
    let broker_id = brokers[0].get("id").as_i64().expect("broker id");
    let topics = metadata.get("topics").as_array().expect("topics");
    assert_eq!(topics.len(), 1, "topics in {metadata:?}");
    assert_eq!(topics[0].get("topic").as_str(), Some(topic));
    let leaders: Vec<(i64, i64)> = topics[0]
        .get("partitions")
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            (
                p.get("partition").as_i64().unwrap(),
                p.get("leader").as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        leaders,
        (0..PARTITIONS as i64).map(|p| (p, broker_id)).collect::<Vec<_>>()
    );

    let first = produce_batch(
        &broker,
        topic,
        "first",
        [0; 3],
        FIRST_COUNTS,
        ["none"; 3],
        scratch.path(),
    );

    // A plain consumer of every partition from the beginning, as JSON.
    let all = kcat(&broker, &["-C", "-t", topic, "-o", "beginning", "-e", "-J"]);
    let consumed = parse_consumed(&all, topic);
    assert_exact(&consumed, &first, "kcat -C -o beginning -e -J");

    // A balanced consumer in a new group reads the same and commits it.
    let in_group = parse_consumed(&consume_in_group(&broker, group, topic), topic);
    assert_exact(&in_group, &first, "first kcat -G");
    let ends = FIRST_COUNTS.map(|count| count as i64);
    assert_eq!(
        committed_offsets(&broker, group, topic),
        ends.map(Offset::Offset).to_vec(),
        "offsets committed by the first kcat -G"
    );

    // Offsets by time, against the timestamps the records got: exactly a
    // record's time, just after one, after the last; -1 latest, -2 earliest.
    let time_of = |partition: i32, index: usize| consumed[&partition][index].1;
    let last_time = (0..PARTITIONS)
        .map(|p| time_of(p, FIRST_COUNTS[p as usize] - 1))
        .max()
        .unwrap();
    let answers = query_offsets(&broker, topic, &[(0, time_of(0, 2)), (1, -1), (2, -2)]);
    let expected = BTreeMap::from([
        (0, first_offset_at_or_after(&consumed[&0], time_of(0, 2))),
        (1, ends[1]),
        (2, 0),
    ]);
    assert_eq!(
        answers, expected,
        "kcat -Q (time of p0's record 2, latest, earliest)"
    );
    let answers = query_offsets(
        &broker,
        topic,
        &[(0, last_time + 1), (1, time_of(1, 1) + 1), (2, time_of(2, 4))],
    );
    let expected = BTreeMap::from([
        (0, -1),
        (1, first_offset_at_or_after(&consumed[&1], time_of(1, 1) + 1)),
        (2, first_offset_at_or_after(&consumed[&2], time_of(2, 4))),
    ]);
    assert_eq!(
        answers, expected,
        "kcat -Q (after the last record, just after p1's record 1, p2's record 4)"
    );

    broker.restart();

    // Produced after the restart (compressed, a codec per partition): the
    // group's next member gets exactly these.
    let codecs = ["gzip", "lz4", "zstd"];
    let second = produce_batch(
        &broker,
        topic,
        "second",
        ends,
        SECOND_COUNTS,
        codecs,
        scratch.path(),
    );
    let resumed = parse_consumed(&consume_in_group(&broker, group, topic), topic);
    assert_exact(
        &resumed,
        &second,
        "kcat -G after the restart (from the committed offsets)",
    );
    let totals: Vec<Offset> = (0..3)
        .map(|p| Offset::Offset((FIRST_COUNTS[p] + SECOND_COUNTS[p]) as i64))
        .collect();
    assert_eq!(
        committed_offsets(&broker, group, topic),
        totals,
        "offsets committed by the kcat -G after the restart"
    );

    // And the whole log, both batches, is intact.
    let mut both = first.clone();
    for (partition, records) in &second {
        both.get_mut(partition).unwrap().extend(records.iter().cloned());
    }
    let all = kcat(&broker, &["-C", "-t", topic, "-o", "beginning", "-e", "-J"]);
    assert_exact(
        &parse_consumed(&all, topic),
        &both,
        "kcat -C -o beginning after the restart",
    );
}

/// Just enough JSON for kcat's `-J` output (objects, arrays, strings with
/// escapes, integers, true/false/null); no dependency for it.
mod json {
    #[derive(Clone, Debug, PartialEq)]
    pub enum Json {
        Null,
        Bool(bool),
        Integer(i64),
        String(String),
        Array(Vec<Json>),
        Object(Vec<(String, Json)>),
    }

    const NULL: Json = Json::Null;

    impl Json {
        /// The member `name` of an object; `Null` when absent or not an object.
        pub fn get(&self, name: &str) -> &Json {
            match self {
                Json::Object(members) => members.iter().find(|(k, _)| k == name).map_or(&NULL, |(_, v)| v),
                _ => &NULL,
            }
        }

        pub fn as_str(&self) -> Option<&str> {
            match self {
                Json::String(s) => Some(s),
                _ => None,
            }
        }

        pub fn as_i64(&self) -> Option<i64> {
            match self {
                Json::Integer(n) => Some(*n),
                _ => None,
            }
        }

        pub fn as_array(&self) -> Option<&[Json]> {
            match self {
                Json::Array(items) => Some(items),
                _ => None,
            }
        }
    }

    /// Parses one complete JSON document.
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut parser = Parser {
            chars: text.chars().collect(),
            at: 0,
        };
        let value = parser.value()?;
        parser.skip_space();
        match parser.peek() {
            None => Ok(value),
            Some(c) => Err(format!("trailing {c:?} at {}", parser.at)),
        }
    }

    struct Parser {
        chars: Vec<char>,
        at: usize,
    }

    impl Parser {
        fn peek(&self) -> Option<char> {
            self.chars.get(self.at).copied()
        }

        fn next(&mut self) -> Result<char, String> {
            let c = self.peek().ok_or("unexpected end")?;
            self.at += 1;
            Ok(c)
        }

        fn skip_space(&mut self) {
            while self.peek().is_some_and(char::is_whitespace) {
                self.at += 1;
            }
        }

        fn expect(&mut self, word: &str) -> Result<(), String> {
            for wanted in word.chars() {
                let c = self.next()?;
                if c != wanted {
                    return Err(format!("expected {word:?}, found {c:?} at {}", self.at - 1));
                }
            }
            Ok(())
        }

        fn value(&mut self) -> Result<Json, String> {
            self.skip_space();
            match self.peek().ok_or("unexpected end")? {
                '{' => self.object(),
                '[' => self.array(),
                '"' => self.string().map(Json::String),
                'n' => self.expect("null").map(|()| Json::Null),
                't' => self.expect("true").map(|()| Json::Bool(true)),
                'f' => self.expect("false").map(|()| Json::Bool(false)),
                _ => self.integer(),
            }
        }

        fn object(&mut self) -> Result<Json, String> {
            self.expect("{")?;
            let mut members = Vec::new();
            self.skip_space();
            if self.peek() == Some('}') {
                self.at += 1;
                return Ok(Json::Object(members));
            }
            loop {
                self.skip_space();
                let name = self.string()?;
                self.skip_space();
                self.expect(":")?;
                members.push((name, self.value()?));
                self.skip_space();
                match self.next()? {
                    ',' => {}
                    '}' => return Ok(Json::Object(members)),
                    c => return Err(format!("expected , or }} in object, found {c:?}")),
                }
            }
        }

        fn array(&mut self) -> Result<Json, String> {
            self.expect("[")?;
            let mut items = Vec::new();
            self.skip_space();
            if self.peek() == Some(']') {
                self.at += 1;
                return Ok(Json::Array(items));
            }
            loop {
                items.push(self.value()?);
                self.skip_space();
                match self.next()? {
                    ',' => {}
                    ']' => return Ok(Json::Array(items)),
                    c => return Err(format!("expected , or ] in array, found {c:?}")),
                }
            }
        }

        fn string(&mut self) -> Result<String, String> {
            self.expect("\"")?;
            let mut out = String::new();
            loop {
                match self.next()? {
                    '"' => return Ok(out),
                    '\\' => match self.next()? {
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        '/' => out.push('/'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'u' => {
                            let high = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&high) {
                                self.expect("\\u")?;
                                let low = self.hex4()?;
                                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                            } else {
                                high
                            };
                            out.push(char::from_u32(code).ok_or(format!("bad \\u escape {code:x}"))?);
                        }
                        c => return Err(format!("bad escape \\{c}")),
                    },
                    c => out.push(c),
                }
            }
        }

        fn hex4(&mut self) -> Result<u32, String> {
            let digits: String = (0..4).map(|_| self.next()).collect::<Result<_, _>>()?;
            u32::from_str_radix(&digits, 16).map_err(|error| format!("\\u{digits}: {error}"))
        }

        fn integer(&mut self) -> Result<Json, String> {
            let start = self.at;
            if self.peek() == Some('-') {
                self.at += 1;
            }
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.at += 1;
            }
            let digits: String = self.chars[start..self.at].iter().collect();
            digits
                .parse()
                .map(Json::Integer)
                .map_err(|error| format!("number {digits:?} at {start}: {error}"))
        }
    }
}
