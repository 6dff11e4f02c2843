//! The command line: every flag with its default, unit and meaning in one
//! table ([`FLAGS`]), from which both the parser and `--help` are built, so
//! the two cannot disagree. Defaults are applied by parsing each flag's
//! default text, which the tests check for every flag.
//!
//! Every flag takes a value (`--flag VALUE` or `--flag=VALUE`), as weir's own
//! flags do. After parsing, [`Params::sanitize`] rejects impossible
//! combinations; any error is reported by `main` with exit code 2.

use std::path::PathBuf;

use serde::Serialize;

/// Every message value starts with the time it was scheduled to be sent
/// (µs since the UNIX epoch, big-endian): consumers compute end-to-end
/// latency from it, so no message can be shorter.
pub const MESSAGE_TIMESTAMP_BYTES: u32 = 8;
/// Largest message value accepted (Kafka's default `max.message.bytes` is ~1 MiB).
pub const MESSAGE_BYTES_MAX: u32 = 16 << 20;
/// Largest record batch (one partition's share of a Produce request).
pub const BATCH_BYTES_MAX: u32 = 64 << 20;
/// Upper bound on producers, consumers and connections, each.
pub const CLIENTS_MAX: u32 = 4096;
/// Upper bound on requests in flight per connection.
pub const INFLIGHT_MAX: u32 = 1024;
/// Upper bound on partitions of the benchmark topic.
pub const PARTITIONS_MAX: u32 = 100_000;
/// Upper bound on a run's warm-up plus measured duration (one day).
pub const RUN_SECONDS_MAX: u64 = 86_400;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    Produce,
    Consume,
    E2e,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Produce => "produce",
            Scenario::Consume => "consume",
            Scenario::E2e => "e2e",
        }
    }

    fn parse(text: &str) -> Result<Scenario, String> {
        match text {
            "produce" => Ok(Scenario::Produce),
            "consume" => Ok(Scenario::Consume),
            "e2e" => Ok(Scenario::E2e),
            other => Err(format!("unknown scenario `{other}` (produce, consume or e2e)")),
        }
    }

    pub fn produces(self) -> bool {
        matches!(self, Scenario::Produce | Scenario::E2e)
    }

    pub fn consumes(self) -> bool {
        matches!(self, Scenario::Consume | Scenario::E2e)
    }
}

/// Producer acknowledgement level, as sent in ProduceRequest.acks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acks {
    None,
    Leader,
    All,
}

impl Acks {
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

impl Serialize for Acks {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StartFrom {
    Earliest,
    Latest,
}

/// What message bodies contain (after the 8-byte timestamp).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadKind {
    /// Pseudo-random bytes: incompressible.
    Random,
    /// Pseudo-random lowercase words: compresses roughly like log lines.
    Text,
    /// Zero bytes: compresses to almost nothing.
    Zeros,
}

/// Everything a run depends on; written verbatim into `report.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Params {
    pub scenario: Scenario,
    pub bootstrap: String,
    pub bootstrap_b: Option<String>,
    pub topic: String,
    pub partitions: u32,
    pub replication_factor: i16,
    pub message_bytes_min: u32,
    pub message_bytes_max: u32,
    pub batch_bytes: u32,
    pub linger_ms: u32,
    pub acks: Acks,
    pub compression: Codec,
    pub payload: PayloadKind,
    pub producers: u32,
    pub consumers: u32,
    pub connections: u32,
    pub inflight: u32,
    /// 0 = one per core the process may run on.
    pub threads: u32,
    pub duration_s: u64,
    pub warmup_s: u64,
    /// `None`: closed loop.
    pub rate_msgs_per_s: Option<f64>,
    /// Messages to produce in all (`None`: until the duration ends).
    pub messages: Option<u64>,
    pub from: StartFrom,
    pub stop_at_end: bool,
    pub fetch_max_bytes: u32,
    pub fetch_partition_max_bytes: u32,
    pub fetch_wait_ms: u32,
    pub fetch_min_bytes: u32,
    pub request_timeout_ms: u32,
    pub drain_timeout_s: u64,
    pub report_dir: PathBuf,
    /// weir's admin URL (`http://HOST:PORT`) to read per-stage latency
    /// from; `None`: derived from the bootstrap host; `Some("")`: off.
    pub broker_admin: Option<String>,
    pub runs: u32,
    pub progress: bool,
    pub client_id: String,
}

impl Params {
    /// Every flag at its default, scenario `produce`.
    pub fn defaults() -> Params {
        let mut params = Params {
            scenario: Scenario::Produce,
            bootstrap: String::new(),
            bootstrap_b: None,
            topic: String::new(),
            partitions: 0,
            replication_factor: 0,
            message_bytes_min: 0,
            message_bytes_max: 0,
            batch_bytes: 0,
            linger_ms: 0,
            acks: Acks::Leader,
            compression: Codec::None,
            payload: PayloadKind::Random,
            producers: 0,
            consumers: 0,
            connections: 0,
            inflight: 0,
            threads: 0,
            duration_s: 0,
            warmup_s: 0,
            rate_msgs_per_s: None,
            messages: None,
            from: StartFrom::Earliest,
            stop_at_end: true,
            fetch_max_bytes: 0,
            fetch_partition_max_bytes: 0,
            fetch_wait_ms: 0,
            fetch_min_bytes: 0,
            request_timeout_ms: 0,
            drain_timeout_s: 0,
            report_dir: PathBuf::new(),
            broker_admin: None,
            runs: 0,
            progress: true,
            client_id: String::new(),
        };
        for flag in FLAGS {
            if let Some(default) = flag.default {
                (flag.apply)(&mut params, default)
                    .unwrap_or_else(|e| panic!("default of --{} does not parse: {e}", flag.name));
            }
        }
        params
    }

    /// Rejects impossible combinations (bounds of single flags are checked
    /// while parsing).
    pub fn sanitize(&self, compare: bool) -> Result<(), String> {
        if self.message_bytes_min > self.message_bytes_max {
            return Err(format!(
                "--message-bytes-min {} is larger than --message-bytes-max {}",
                self.message_bytes_min, self.message_bytes_max
            ));
        }
        if self.fetch_partition_max_bytes > self.fetch_max_bytes {
            return Err(format!(
                "--fetch-partition-max-bytes {} is larger than --fetch-max-bytes {}",
                self.fetch_partition_max_bytes, self.fetch_max_bytes
            ));
        }
        if self.warmup_s + self.duration_s > RUN_SECONDS_MAX {
            return Err(format!(
                "--warmup-s plus --duration-s must be at most {RUN_SECONDS_MAX}"
            ));
        }
        if self.scenario == Scenario::Consume && self.rate_msgs_per_s.is_some() {
            return Err("--rate paces producers; the consume scenario has none".into());
        }
        if self.scenario == Scenario::Consume && self.messages.is_some() {
            return Err("--messages limits producers; the consume scenario has none".into());
        }
        if self.scenario.consumes() && self.consumers > self.partitions {
            return Err(format!(
                "--consumers {} is more than --partitions {}: every consumer needs a partition",
                self.consumers, self.partitions
            ));
        }
        if compare && self.bootstrap_b.is_none() {
            return Err("compare needs --bootstrap-b HOST:PORT (broker B)".into());
        }
        if !compare && self.bootstrap_b.is_some() {
            return Err("--bootstrap-b is only used by `compare`".into());
        }
        for address in std::iter::once(&self.bootstrap).chain(self.bootstrap_b.as_ref()) {
            check_address(address)?;
        }
        Ok(())
    }

    /// Consume from the log start and stop at the end offsets of the start.
    pub fn catches_up_to_end(&self) -> bool {
        self.from == StartFrom::Earliest && self.stop_at_end
    }

    pub fn rate_label(&self) -> String {
        if self.scenario == Scenario::Consume {
            return match (self.from, self.stop_at_end) {
                (StartFrom::Earliest, true) => "catch-up from earliest to the end".to_string(),
                (StartFrom::Earliest, false) => "from earliest".to_string(),
                (StartFrom::Latest, _) => "tailing from latest".to_string(),
            };
        }
        let pacing = match self.rate_msgs_per_s {
            Some(rate) => format!("open loop at {rate} msgs/s"),
            None => "closed loop".to_string(),
        };
        match self.messages {
            Some(messages) => format!("{pacing}, {messages} messages at most"),
            None => pacing,
        }
    }
}

fn check_address(address: &str) -> Result<(), String> {
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => Ok(()),
        _ => Err(format!("`{address}` is not HOST:PORT")),
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Run(Box<Params>),
    /// `params.scenario` is the scenario run against both brokers.
    Compare(Box<Params>),
    Help,
    Version,
}

type Apply = fn(&mut Params, &str) -> Result<(), String>;

/// One command-line flag.
pub struct Flag {
    pub name: &'static str,
    pub value: &'static str,
    /// Parsed at startup to form [`Params::defaults`]; `None`: unset.
    pub default: Option<&'static str>,
    pub unit: &'static str,
    pub help: &'static str,
    apply: Apply,
}

fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    flag: &str,
    text: &str,
    min: T,
    max: T,
) -> Result<T, String> {
    let value: T = text
        .trim()
        .replace('_', "")
        .parse()
        .map_err(|_| format!("--{flag}: `{text}` is not a number"))?;
    if value < min || value > max {
        return Err(format!("--{flag}: {value} is out of range {min}..={max}"));
    }
    Ok(value)
}

fn boolean(flag: &str, text: &str) -> Result<bool, String> {
    match text {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        other => Err(format!("--{flag}: `{other}` is not true or false")),
    }
}

/// Every flag, in the order `--help` lists them.
pub const FLAGS: &[Flag] = &[
    Flag {
        name: "bootstrap",
        value: "HOST:PORT",
        default: Some("127.0.0.1:9092"),
        unit: "address",
        help: "broker to bootstrap from (broker A in compare); leaders come from Metadata",
        apply: |p, v| {
            p.bootstrap = v.to_string();
            Ok(())
        },
    },
    Flag {
        name: "bootstrap-b",
        value: "HOST:PORT",
        default: None,
        unit: "address",
        help: "compare only: broker B",
        apply: |p, v| {
            p.bootstrap_b = Some(v.to_string());
            Ok(())
        },
    },
    Flag {
        name: "scenario",
        value: "produce|consume|e2e",
        default: Some("produce"),
        unit: "",
        help: "compare only: the scenario to run on both brokers (or `compare SCENARIO`)",
        apply: |p, v| {
            p.scenario = Scenario::parse(v)?;
            Ok(())
        },
    },
    Flag {
        name: "topic",
        value: "NAME",
        default: Some("weir-bench"),
        unit: "",
        help: "topic to use; created with CreateTopics when missing",
        apply: |p, v| {
            if v.is_empty() || v.len() > 249 {
                return Err("--topic: a topic name has 1 to 249 characters".into());
            }
            p.topic = v.to_string();
            Ok(())
        },
    },
    Flag {
        name: "partitions",
        value: "N",
        default: Some("8"),
        unit: "partitions",
        help: "partitions of the topic when it is created (an existing topic keeps its own)",
        apply: |p, v| {
            p.partitions = number("partitions", v, 1, PARTITIONS_MAX)?;
            Ok(())
        },
    },
    Flag {
        name: "replication-factor",
        value: "N",
        default: Some("-1"),
        unit: "replicas",
        help: "replication factor when creating the topic (-1: the broker's default)",
        apply: |p, v| {
            let factor: i16 = number("replication-factor", v, -1, 32)?;
            if factor == 0 {
                return Err("--replication-factor: 0 is not a replication factor".into());
            }
            p.replication_factor = factor;
            Ok(())
        },
    },
    Flag {
        name: "message-bytes",
        value: "N",
        default: Some("1024"),
        unit: "bytes",
        help: "size of every message value (sets -min and -max; the first 8 bytes carry the send time)",
        apply: |p, v| {
            let bytes = number("message-bytes", v, MESSAGE_TIMESTAMP_BYTES, MESSAGE_BYTES_MAX)?;
            p.message_bytes_min = bytes;
            p.message_bytes_max = bytes;
            Ok(())
        },
    },
    Flag {
        name: "message-bytes-min",
        value: "N",
        default: None,
        unit: "bytes",
        help: "smallest message value: sizes are uniform in [min, max]",
        apply: |p, v| {
            p.message_bytes_min = number("message-bytes-min", v, MESSAGE_TIMESTAMP_BYTES, MESSAGE_BYTES_MAX)?;
            Ok(())
        },
    },
    Flag {
        name: "message-bytes-max",
        value: "N",
        default: None,
        unit: "bytes",
        help: "largest message value",
        apply: |p, v| {
            p.message_bytes_max = number("message-bytes-max", v, MESSAGE_TIMESTAMP_BYTES, MESSAGE_BYTES_MAX)?;
            Ok(())
        },
    },
    Flag {
        name: "batch-bytes",
        value: "N",
        default: Some("65536"),
        unit: "bytes",
        help: "close a partition's record batch before its values exceed this (at least one message)",
        apply: |p, v| {
            p.batch_bytes = number("batch-bytes", v, 1, BATCH_BYTES_MAX)?;
            Ok(())
        },
    },
    Flag {
        name: "linger-ms",
        value: "N",
        default: Some("0"),
        unit: "ms",
        help: "open loop: wait up to this long for a batch to fill before sending it",
        apply: |p, v| {
            p.linger_ms = number("linger-ms", v, 0, 60_000)?;
            Ok(())
        },
    },
    Flag {
        name: "acks",
        value: "0|1|all",
        default: Some("1"),
        unit: "",
        help: "producer acknowledgement: none, leader written, all in-sync replicas (weir: fdatasync)",
        apply: |p, v| {
            p.acks = match v {
                "0" => Acks::None,
                "1" => Acks::Leader,
                "all" | "-1" => Acks::All,
                other => return Err(format!("--acks: `{other}` is not 0, 1 or all")),
            };
            Ok(())
        },
    },
    Flag {
        name: "compression",
        value: "none|gzip|snappy|lz4|zstd",
        default: Some("none"),
        unit: "",
        help: "record batch compression (producers compress, consumers decompress and check)",
        apply: |p, v| {
            p.compression = match v {
                "none" => Codec::None,
                "gzip" => Codec::Gzip,
                "snappy" => Codec::Snappy,
                "lz4" => Codec::Lz4,
                "zstd" => Codec::Zstd,
                other => return Err(format!("--compression: unknown codec `{other}`")),
            };
            Ok(())
        },
    },
    Flag {
        name: "payload",
        value: "random|text|zeros",
        default: Some("random"),
        unit: "",
        help: "message bodies: incompressible, word-like, or zeros (matters with --compression)",
        apply: |p, v| {
            p.payload = match v {
                "random" => PayloadKind::Random,
                "text" => PayloadKind::Text,
                "zeros" => PayloadKind::Zeros,
                other => return Err(format!("--payload: `{other}` is not random, text or zeros")),
            };
            Ok(())
        },
    },
    Flag {
        name: "producers",
        value: "N",
        default: Some("1"),
        unit: "producers",
        help: "producer clients; each sends to every partition, over --connections per leader",
        apply: |p, v| {
            p.producers = number("producers", v, 1, CLIENTS_MAX)?;
            Ok(())
        },
    },
    Flag {
        name: "consumers",
        value: "N",
        default: Some("1"),
        unit: "consumers",
        help: "consumer clients; partitions are divided among them (p % consumers)",
        apply: |p, v| {
            p.consumers = number("consumers", v, 1, CLIENTS_MAX)?;
            Ok(())
        },
    },
    Flag {
        name: "connections",
        value: "N",
        default: Some("1"),
        unit: "connections",
        help: "connections per client per leader broker; a client's partitions are split among them",
        apply: |p, v| {
            p.connections = number("connections", v, 1, CLIENTS_MAX)?;
            Ok(())
        },
    },
    Flag {
        name: "inflight",
        value: "N",
        default: Some("5"),
        unit: "requests",
        help: "produce requests outstanding per connection (fetches: always 1)",
        apply: |p, v| {
            p.inflight = number("inflight", v, 1, INFLIGHT_MAX)?;
            Ok(())
        },
    },
    Flag {
        name: "threads",
        value: "N",
        default: Some("0"),
        unit: "threads",
        help: "pinned worker threads, one glommio executor each (0: one per available core)",
        apply: |p, v| {
            p.threads = number("threads", v, 0, 1024)?;
            Ok(())
        },
    },
    Flag {
        name: "duration-s",
        value: "N",
        default: Some("10"),
        unit: "s",
        help: "measured duration, after the warm-up",
        apply: |p, v| {
            p.duration_s = number("duration-s", v, 1, RUN_SECONDS_MAX)?;
            Ok(())
        },
    },
    Flag {
        name: "warmup-s",
        value: "N",
        default: Some("2"),
        unit: "s",
        help: "warm-up before the measurement; its samples are excluded from the summary",
        apply: |p, v| {
            p.warmup_s = number("warmup-s", v, 0, RUN_SECONDS_MAX)?;
            Ok(())
        },
    },
    Flag {
        name: "rate",
        value: "MSGS_PER_S",
        default: None,
        unit: "msgs/s",
        help: "open loop: total message rate over all producers (latency from each scheduled send \
               time); unset: closed loop",
        apply: |p, v| {
            let rate: f64 = number("rate", v, 0.001, 1e9)?;
            p.rate_msgs_per_s = Some(rate);
            Ok(())
        },
    },
    Flag {
        name: "messages",
        value: "N",
        default: None,
        unit: "msgs",
        help: "produce, e2e: send N messages in all (split over producer connections by partitions), \
               then stop; the run ends when they are acknowledged or at --duration-s, whichever \
               is first; unset: until --duration-s",
        apply: |p, v| {
            p.messages = Some(number("messages", v, 1, u64::MAX / 2)?);
            Ok(())
        },
    },
    Flag {
        name: "from",
        value: "earliest|latest",
        default: Some("earliest"),
        unit: "",
        help: "consume: catch up from the log start, or tail from the end",
        apply: |p, v| {
            p.from = match v {
                "earliest" => StartFrom::Earliest,
                "latest" => StartFrom::Latest,
                other => return Err(format!("--from: `{other}` is not earliest or latest")),
            };
            Ok(())
        },
    },
    Flag {
        name: "stop-at-end",
        value: "true|false",
        default: Some("true"),
        unit: "",
        help: "consume --from earliest: stop once caught up with the end offsets at start",
        apply: |p, v| {
            p.stop_at_end = boolean("stop-at-end", v)?;
            Ok(())
        },
    },
    Flag {
        name: "fetch-max-bytes",
        value: "N",
        default: Some("67108864"),
        unit: "bytes",
        help: "FetchRequest.max_bytes",
        apply: |p, v| {
            p.fetch_max_bytes = number("fetch-max-bytes", v, 1024, 1 << 30)?;
            Ok(())
        },
    },
    Flag {
        name: "fetch-partition-max-bytes",
        value: "N",
        default: Some("8388608"),
        unit: "bytes",
        help: "FetchRequest partition_max_bytes",
        apply: |p, v| {
            p.fetch_partition_max_bytes = number("fetch-partition-max-bytes", v, 1024, 1 << 30)?;
            Ok(())
        },
    },
    Flag {
        name: "fetch-wait-ms",
        value: "N",
        default: Some("500"),
        unit: "ms",
        help: "FetchRequest.max_wait_ms (long poll)",
        apply: |p, v| {
            p.fetch_wait_ms = number("fetch-wait-ms", v, 0, 60_000)?;
            Ok(())
        },
    },
    Flag {
        name: "fetch-min-bytes",
        value: "N",
        default: Some("1"),
        unit: "bytes",
        help: "FetchRequest.min_bytes",
        apply: |p, v| {
            p.fetch_min_bytes = number("fetch-min-bytes", v, 0, 1 << 30)?;
            Ok(())
        },
    },
    Flag {
        name: "request-timeout-ms",
        value: "N",
        default: Some("30000"),
        unit: "ms",
        help: "a request unanswered this long counts as an error and the connection is reopened",
        apply: |p, v| {
            p.request_timeout_ms = number("request-timeout-ms", v, 100, 600_000)?;
            Ok(())
        },
    },
    Flag {
        name: "drain-timeout-s",
        value: "N",
        default: Some("30"),
        unit: "s",
        help: "after the measurement: how long to wait for outstanding acks and for consumers \
               to read everything produced",
        apply: |p, v| {
            p.drain_timeout_s = number("drain-timeout-s", v, 1, 3600)?;
            Ok(())
        },
    },
    Flag {
        name: "report-dir",
        value: "DIR",
        default: Some("weir-bench-report"),
        unit: "path",
        help: "where report.json, latency.hgrm and the SVG charts are written (created)",
        apply: |p, v| {
            if v.is_empty() {
                return Err("--report-dir: empty path".into());
            }
            p.report_dir = PathBuf::from(v);
            Ok(())
        },
    },
    Flag {
        name: "broker-admin",
        value: "URL|off",
        default: None,
        unit: "URL",
        help: "weir's admin listener (http://HOST:PORT): the run resets and then reads the broker's per-stage latency into the report; default http://<bootstrap host>:9644, skipped if nothing answers there (Kafka); off: never",
        apply: |p, v| {
            p.broker_admin = Some(match v {
                "off" => String::new(),
                url if url.starts_with("http://") => url.trim_end_matches('/').to_string(),
                other => return Err(format!("--broker-admin: http://HOST:PORT or off, not '{other}'")),
            });
            Ok(())
        },
    },
    Flag {
        name: "runs",
        value: "N",
        default: Some("3"),
        unit: "runs",
        help: "compare only: runs per broker, alternating A,B,A,B,...",
        apply: |p, v| {
            p.runs = number("runs", v, 1, 100)?;
            Ok(())
        },
    },
    Flag {
        name: "progress",
        value: "true|false",
        default: Some("true"),
        unit: "",
        help: "print a progress line to stderr once per second",
        apply: |p, v| {
            p.progress = boolean("progress", v)?;
            Ok(())
        },
    },
    Flag {
        name: "client-id",
        value: "NAME",
        default: Some("weir-bench"),
        unit: "",
        help: "client_id in every request header",
        apply: |p, v| {
            p.client_id = v.to_string();
            Ok(())
        },
    },
];

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let args: Vec<String> = args.into_iter().collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        return Ok(Command::Help);
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        return Ok(Command::Version);
    }
    let mut rest = args.iter().map(String::as_str).peekable();
    let (compare, scenario) = match rest.next() {
        None => return Err("no command given (produce, consume, e2e or compare)".into()),
        Some("help") => return Ok(Command::Help),
        Some("compare") => {
            let scenario = match rest.peek() {
                Some(word) if !word.starts_with("--") => {
                    let scenario = Scenario::parse(word)?;
                    rest.next();
                    Some(scenario)
                }
                _ => None,
            };
            (true, scenario)
        }
        Some(word) => (
            false,
            Some(Scenario::parse(word).map_err(|_| format!("unknown command `{word}`"))?),
        ),
    };
    let mut params = Params::defaults();
    let mut seen: Vec<&str> = Vec::new();
    while let Some(arg) = rest.next() {
        let Some(body) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument `{arg}` (flags start with --)"));
        };
        let (name, value) = match body.split_once('=') {
            Some((name, value)) => (name, value.to_string()),
            None => {
                let value = rest.next().ok_or_else(|| format!("--{body} needs a value"))?;
                (body, value.to_string())
            }
        };
        let name = name.replace('_', "-");
        let flag = FLAGS
            .iter()
            .find(|flag| flag.name == name)
            .ok_or_else(|| format!("unknown flag --{name}"))?;
        if seen.contains(&flag.name) {
            return Err(format!("--{name} given twice"));
        }
        seen.push(flag.name);
        (flag.apply)(&mut params, &value)?;
    }
    if seen.contains(&"message-bytes")
        && (seen.contains(&"message-bytes-min") || seen.contains(&"message-bytes-max"))
    {
        return Err(
            "--message-bytes sets a fixed size: give it or --message-bytes-min/-max, not both".into(),
        );
    }
    if seen.contains(&"scenario") {
        if !compare {
            return Err("--scenario is only used by `compare` (the command names the scenario)".into());
        }
        if scenario.is_some() {
            return Err("give the scenario once: `compare SCENARIO` or `compare --scenario SCENARIO`".into());
        }
    } else if let Some(scenario) = scenario {
        params.scenario = scenario;
    }
    params.sanitize(compare)?;
    let params = Box::new(params);
    Ok(if compare {
        Command::Compare(params)
    } else {
        Command::Run(params)
    })
}

/// `--help`: every command and flag with its default and unit.
pub fn help_text() -> String {
    let mut text = format!(
        "weir-bench {}: a Kafka-protocol load generator (thread-per-core, glommio).\n\n\
         USAGE:\n  \
         weir-bench produce [FLAGS]            producers only\n  \
         weir-bench consume [FLAGS]            consumers only: catch-up (--from earliest) or tailing (--from latest)\n  \
         weir-bench e2e     [FLAGS]            producers + consumers: end-to-end latency, every record checked\n  \
         weir-bench compare SCENARIO [FLAGS]   SCENARIO against --bootstrap (A) and --bootstrap-b (B), \
         alternating --runs times\n  \
         weir-bench --help | --version\n\n\
         Closed loop (default) sends as fast as --inflight allows: throughput. --rate MSGS_PER_S\n\
         paces producers (open loop): latency under that load, measured from each message's\n\
         scheduled send time (corrected for coordinated omission).\n\n\
         Every run writes DIR/report.json, DIR/latency.hgrm, DIR/latency_percentiles.svg and\n\
         DIR/throughput.svg. Exit status: 0 done, 1 failed or validation failed, 2 bad flags.\n\n\
         FLAGS (--flag VALUE or --flag=VALUE):\n",
        env!("CARGO_PKG_VERSION")
    );
    for flag in FLAGS {
        let left = format!("  --{} {}", flag.name, flag.value);
        let default = flag.default.unwrap_or("unset");
        let unit = if flag.unit.is_empty() {
            String::new()
        } else {
            format!(", unit: {}", flag.unit)
        };
        text.push_str(&format!(
            "{left:<44} {}\n{:<44} [default: {default}{unit}]\n",
            flag.help, ""
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    fn run(text: &str) -> Params {
        match parse(args(text)) {
            Ok(Command::Run(params)) => *params,
            other => panic!("`{text}` parsed as {other:?}"),
        }
    }

    #[test]
    fn every_default_parses_and_help_lists_every_flag_with_default_and_unit() {
        let params = Params::defaults();
        assert_eq!(params.message_bytes_min, 1024);
        assert_eq!(params.acks, Acks::Leader);
        let help = help_text();
        for flag in FLAGS {
            assert!(
                help.contains(&format!("--{} {}", flag.name, flag.value)),
                "--{}",
                flag.name
            );
        }
        assert_eq!(help.matches("[default: ").count(), FLAGS.len());
    }

    #[test]
    fn issue_command_line_parses() {
        let params = run(
            "produce --bootstrap 127.0.0.1:19501 --topic t --partitions 4 --message-bytes 100 \
             --acks all --duration-s 3 --warmup-s 1 --rate 1000 --report-dir /tmp/x",
        );
        assert_eq!(params.scenario, Scenario::Produce);
        assert_eq!(params.bootstrap, "127.0.0.1:19501");
        assert_eq!(params.partitions, 4);
        assert_eq!((params.message_bytes_min, params.message_bytes_max), (100, 100));
        assert_eq!(params.acks, Acks::All);
        assert_eq!(params.rate_msgs_per_s, Some(1000.0));
        assert_eq!(params.messages, None);
        assert_eq!(params.report_dir, PathBuf::from("/tmp/x"));
        assert_eq!(run("produce --messages 1_000_000").messages, Some(1_000_000));
    }

    #[test]
    fn equals_form_and_underscores_are_accepted() {
        let params =
            run("consume --from=latest --fetch_wait_ms=20 --message-bytes-min 16 --message-bytes-max 64");
        assert_eq!(params.from, StartFrom::Latest);
        assert_eq!(params.fetch_wait_ms, 20);
        assert_eq!((params.message_bytes_min, params.message_bytes_max), (16, 64));
    }

    #[test]
    fn compare_takes_the_scenario_as_word_or_flag() {
        for text in [
            "compare e2e --bootstrap a:1 --bootstrap-b b:2",
            "compare --scenario e2e --bootstrap a:1 --bootstrap-b b:2",
        ] {
            match parse(args(text)) {
                Ok(Command::Compare(params)) => {
                    assert_eq!(params.scenario, Scenario::E2e);
                    assert_eq!(params.bootstrap_b.as_deref(), Some("b:2"));
                    assert_eq!(params.runs, 3);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn bad_command_lines_are_errors() {
        for text in [
            "",
            "fly",
            "produce --nope 1",
            "produce --acks 2",
            "produce --partitions 0",
            "produce --message-bytes 4",
            "produce --message-bytes 100 --message-bytes-max 200",
            "produce --message-bytes-min 300 --message-bytes-max 200",
            "produce --rate -5",
            "produce --duration-s",
            "produce --compression brotli",
            "produce --bootstrap nohost",
            "produce --topic a --topic b",
            "produce stray",
            "consume --rate 100",
            "consume --messages 100",
            "produce --messages 0",
            "consume --consumers 9 --partitions 8",
            "compare produce",
            "produce --bootstrap-b a:1",
            "produce --scenario e2e",
        ] {
            assert!(parse(args(text)).is_err(), "`{text}` should be rejected");
        }
    }

    #[test]
    fn help_and_version_win_over_everything() {
        assert!(matches!(parse(args("produce --nope --help")), Ok(Command::Help)));
        assert!(matches!(parse(args("--version")), Ok(Command::Version)));
    }
}
