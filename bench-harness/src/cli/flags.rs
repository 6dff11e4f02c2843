//! The clap definition of the command line: the commands, every flag with
//! its meaning, unit, default (`default_value`) and environment variable
//! (`env`), and the value parsers that bound each flag.
//!
//! Invariants:
//! - These attributes are the only source of defaults (the tests'
//!   `Params::defaults` parses a bare `produce` through them).
//! - A flag's unit, if it has one, ends its help text as `[unit: …]`; clap
//!   appends `[env: …]` and `[default: …]`. A flag without a default says
//!   what unset means in its help text.
//! - Every flag reads `WEIR_BENCH_<FLAG>` (its long name in capitals, `-` as
//!   `_`), never a `WEIR_*` name: the broker's settings in the same shell do
//!   not reach the generator. The tests check the rule for every flag.
//! - Every flag is global (given after any command, or before it) and takes
//!   exactly one value; the next argument is that value even if it starts
//!   with `-` (`--replication-factor -1`), as before clap. [`command`] sets
//!   both, so use it rather than the derived `Cli::command`.

use std::{fmt::Display, path::PathBuf, str::FromStr};

use clap::{builder::BoolishValueParser, ArgAction, Args, CommandFactory, Parser, Subcommand};

use super::{
    Acks, Codec, PayloadKind, Scenario, StartFrom, BATCH_BYTES_MAX, CLIENTS_MAX, INFLIGHT_MAX,
    MESSAGE_BYTES_MAX, MESSAGE_TIMESTAMP_BYTES, PARTITIONS_MAX, RATES_MAX, RATE_MAX_MSGS_PER_S,
    RATE_MIN_MSGS_PER_S, RUN_SECONDS_MAX,
};

/// The help's header, before the usage line.
const ABOUT: &str = "a Kafka-protocol load generator (thread-per-core, glommio)

Every flag takes one value: --flag VALUE or --flag=VALUE. Every flag can also be set
from the environment as WEIR_BENCH_<FLAG>, the flag's name in capitals with - as _
(--message-bytes: WEIR_BENCH_MESSAGE_BYTES=4096); the flag on the command line beats
the variable. The prefix is WEIR_BENCH_, not weir's own WEIR_, so a broker's WEIR_*
settings in the same shell never leak into the generator. The variables of compare and
sweep (WEIR_BENCH_BOOTSTRAP_B, WEIR_BENCH_SCENARIO, WEIR_BENCH_RUNS, WEIR_BENCH_LABEL_A,
WEIR_BENCH_LABEL_B, WEIR_BENCH_RATES) are ignored by produce, consume and e2e, and
WEIR_BENCH_RATES by compare.";

/// The help's footer, after the flags.
const AFTER_HELP: &str = "\
Closed loop (default) sends as fast as --inflight allows: throughput. --rate MSGS_PER_S
paces producers (open loop): latency under that load, measured from each message's
scheduled send time (corrected for coordinated omission).

Every run writes DIR/report.json, DIR/latency.hgrm, DIR/latency_percentiles.svg and
DIR/throughput.svg. compare runs SCENARIO on --bootstrap (A) and --bootstrap-b (B),
alternating --runs times each (DIR/run-<n>-<A|B>/), and writes DIR/compare.json.
sweep runs SCENARIO (produce or e2e) open loop at each of --rates, ascending, on A and,
if given, B, alternating --runs times each per rate (DIR/rate-<r>/run-<n>-<A|B>/), and
writes DIR/sweep.json and DIR/sweep_latency_vs_throughput.svg (latency against achieved
throughput; a hollow point: the broker did not sustain that rate, under 95% of it).
--label-a and --label-b name the brokers in their tables and charts.
Exit status: 0 done, 1 failed or validation failed, 2 bad flags.";

#[derive(Parser, Debug)]
#[command(
    name = "weir-bench",
    version,
    about = ABOUT,
    after_help = AFTER_HELP,
    help_template = "{name} {version}: {about-with-newline}\n{usage-heading} {usage}\n\n{all-args}{after-help}",
    override_usage = "weir-bench <produce|consume|e2e> [FLAGS]\n       \
                      weir-bench compare [SCENARIO] --bootstrap-b HOST:PORT [FLAGS]\n       \
                      weir-bench sweep [SCENARIO] --rates MSGS_PER_S,... [FLAGS]",
    subcommand_required = true,
    arg_required_else_help = false,
    propagate_version = true
)]
pub(super) struct Cli {
    #[command(subcommand)]
    pub command: Commands,
    #[command(flatten)]
    pub flags: Flags,
}

#[derive(Subcommand, Debug)]
pub(super) enum Commands {
    /// producers only
    Produce,
    /// consumers only: catch-up (--from earliest) or tailing (--from latest)
    Consume,
    /// producers + consumers: end-to-end latency, every record checked
    E2e,
    /// SCENARIO against --bootstrap (A) and --bootstrap-b (B), alternating --runs times
    Compare {
        /// the scenario run on both brokers (or --scenario)
        #[arg(value_enum, value_name = "SCENARIO")]
        scenario_word: Option<Scenario>,
    },
    /// SCENARIO (produce, e2e) open loop at each of --rates on A and optionally B: latency vs throughput
    Sweep {
        /// the scenario run at every rate (or --scenario): produce or e2e
        #[arg(value_enum, value_name = "SCENARIO")]
        scenario_word: Option<Scenario>,
    },
}

/// Every flag, in the order `--help` lists them. Field names are
/// [`super::Params`]' where the two mean the same.
#[derive(Args, Debug)]
pub(super) struct Flags {
    /// broker to bootstrap from (broker A in compare and sweep); leaders come from Metadata [unit: address]
    #[arg(
        long,
        value_name = "HOST:PORT",
        env = "WEIR_BENCH_BOOTSTRAP",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap: String,

    /// compare (required), sweep (optional): broker B; unset: none [unit: address]
    #[arg(long, value_name = "HOST:PORT", env = "WEIR_BENCH_BOOTSTRAP_B")]
    pub bootstrap_b: Option<String>,

    /// compare, sweep: broker A's name in tables, charts and each run's report label
    #[arg(
        long,
        value_name = "NAME",
        env = "WEIR_BENCH_LABEL_A",
        default_value = "A",
        value_parser = label
    )]
    pub label_a: String,

    /// compare, sweep: broker B's name, as --label-a
    #[arg(
        long,
        value_name = "NAME",
        env = "WEIR_BENCH_LABEL_B",
        default_value = "B",
        value_parser = label
    )]
    pub label_b: String,

    /// compare, sweep: the scenario to run (or `compare SCENARIO`, `sweep SCENARIO`)
    #[arg(long, value_enum, env = "WEIR_BENCH_SCENARIO", default_value = "produce")]
    pub scenario: Scenario,

    /// topic to use; created with CreateTopics when missing
    #[arg(
        long,
        value_name = "NAME",
        env = "WEIR_BENCH_TOPIC",
        default_value = "weir-bench",
        value_parser = topic
    )]
    pub topic: String,

    /// partitions of the topic when it is created (an existing topic keeps its own) [unit: partitions]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_PARTITIONS",
        default_value = "8",
        value_parser = number::<u32>(1, PARTITIONS_MAX)
    )]
    pub partitions: u32,

    /// replication factor when creating the topic (-1: the broker's default) [unit: replicas]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_REPLICATION_FACTOR",
        default_value = "-1",
        value_parser = replication_factor
    )]
    pub replication_factor: i16,

    /// size of every message value (sets -min and -max; the first 8 bytes carry the send time) [unit: bytes]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_MESSAGE_BYTES",
        default_value = "1024",
        value_parser = number::<u32>(MESSAGE_TIMESTAMP_BYTES, MESSAGE_BYTES_MAX),
        conflicts_with_all = ["message_bytes_min", "message_bytes_max"]
    )]
    pub message_bytes: u32,

    /// smallest message value: sizes are uniform in [min, max]; unset: --message-bytes [unit: bytes]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_MESSAGE_BYTES_MIN",
        value_parser = number::<u32>(MESSAGE_TIMESTAMP_BYTES, MESSAGE_BYTES_MAX)
    )]
    pub message_bytes_min: Option<u32>,

    /// largest message value; unset: --message-bytes [unit: bytes]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_MESSAGE_BYTES_MAX",
        value_parser = number::<u32>(MESSAGE_TIMESTAMP_BYTES, MESSAGE_BYTES_MAX)
    )]
    pub message_bytes_max: Option<u32>,

    /// close a partition's record batch before its values exceed this (at least one message) [unit: bytes]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_BATCH_BYTES",
        default_value = "65536",
        value_parser = number::<u32>(1, BATCH_BYTES_MAX)
    )]
    pub batch_bytes: u32,

    /// open loop: wait up to this long for a batch to fill before sending it [unit: ms]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_LINGER_MS",
        default_value = "0",
        value_parser = number::<u32>(0, 60_000)
    )]
    pub linger_ms: u32,

    /// producer acknowledgement: none, leader written, all in-sync replicas (weir: fdatasync)
    #[arg(long, value_enum, env = "WEIR_BENCH_ACKS", default_value = "1")]
    pub acks: Acks,

    /// record batch compression (producers compress, consumers decompress and check)
    #[arg(long, value_enum, env = "WEIR_BENCH_COMPRESSION", default_value = "none")]
    pub compression: Codec,

    /// message bodies: incompressible, word-like, or zeros (matters with --compression)
    #[arg(long, value_enum, env = "WEIR_BENCH_PAYLOAD", default_value = "random")]
    pub payload: PayloadKind,

    /// producer clients; each sends to every partition, over --connections per leader [unit: producers]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_PRODUCERS",
        default_value = "1",
        value_parser = number::<u32>(1, CLIENTS_MAX)
    )]
    pub producers: u32,

    /// consumer clients; partitions are divided among them (p % consumers) [unit: consumers]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_CONSUMERS",
        default_value = "1",
        value_parser = number::<u32>(1, CLIENTS_MAX)
    )]
    pub consumers: u32,

    /// connections per client per leader broker; a client's partitions are split among them [unit: connections]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_CONNECTIONS",
        default_value = "1",
        value_parser = number::<u32>(1, CLIENTS_MAX)
    )]
    pub connections: u32,

    /// produce requests outstanding per connection (fetches: always 1) [unit: requests]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_INFLIGHT",
        default_value = "5",
        value_parser = number::<u32>(1, INFLIGHT_MAX)
    )]
    pub inflight: u32,

    /// pinned worker threads, one glommio executor each (0: one per available core) [unit: threads]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_THREADS",
        default_value = "0",
        value_parser = number::<u32>(0, 1024)
    )]
    pub threads: u32,

    /// measured duration, after the warm-up [unit: s]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_DURATION_S",
        default_value = "10",
        value_parser = number::<u64>(1, RUN_SECONDS_MAX)
    )]
    pub duration_s: u64,

    /// warm-up before the measurement; its samples are excluded from the summary [unit: s]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_WARMUP_S",
        default_value = "2",
        value_parser = number::<u64>(0, RUN_SECONDS_MAX)
    )]
    pub warmup_s: u64,

    /// open loop: total message rate over all producers (latency from each scheduled send time); unset: closed loop [unit: msgs/s]
    #[arg(
        long,
        value_name = "MSGS_PER_S",
        env = "WEIR_BENCH_RATE",
        value_parser = number::<f64>(RATE_MIN_MSGS_PER_S, RATE_MAX_MSGS_PER_S)
    )]
    pub rate: Option<f64>,

    /// sweep only (and required there): target rates, comma-separated (10000,50000,100000), each run open loop as --rate; taken in ascending order, a rate given twice is an error; unset: none [unit: msgs/s]
    #[arg(
        long,
        value_name = "MSGS_PER_S,...",
        env = "WEIR_BENCH_RATES",
        value_parser = rates
    )]
    pub rates: Option<Rates>,

    /// produce, e2e: send N messages in all (split over producer connections by partitions), then stop; the run ends when they are acknowledged or at --duration-s, whichever is first; unset: until --duration-s [unit: msgs]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_MESSAGES",
        value_parser = number::<u64>(1, u64::MAX / 2)
    )]
    pub messages: Option<u64>,

    /// consume: catch up from the log start, or tail from the end
    #[arg(long, value_enum, env = "WEIR_BENCH_FROM", default_value = "earliest")]
    pub from: StartFrom,

    /// consume --from earliest: stop once caught up with the end offsets at start
    #[arg(
        long,
        value_name = "true|false",
        env = "WEIR_BENCH_STOP_AT_END",
        default_value = "true",
        action = ArgAction::Set,
        value_parser = BoolishValueParser::new()
    )]
    pub stop_at_end: bool,

    /// FetchRequest.max_bytes [unit: bytes]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_FETCH_MAX_BYTES",
        default_value = "67108864",
        value_parser = number::<u32>(1024, 1 << 30)
    )]
    pub fetch_max_bytes: u32,

    /// FetchRequest partition_max_bytes [unit: bytes]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_FETCH_PARTITION_MAX_BYTES",
        default_value = "8388608",
        value_parser = number::<u32>(1024, 1 << 30)
    )]
    pub fetch_partition_max_bytes: u32,

    /// FetchRequest.max_wait_ms (long poll) [unit: ms]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_FETCH_WAIT_MS",
        default_value = "500",
        value_parser = number::<u32>(0, 60_000)
    )]
    pub fetch_wait_ms: u32,

    /// FetchRequest.min_bytes [unit: bytes]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_FETCH_MIN_BYTES",
        default_value = "1",
        value_parser = number::<u32>(0, 1 << 30)
    )]
    pub fetch_min_bytes: u32,

    /// a request unanswered this long counts as an error and the connection is reopened [unit: ms]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_REQUEST_TIMEOUT_MS",
        default_value = "30000",
        value_parser = number::<u32>(100, 600_000)
    )]
    pub request_timeout_ms: u32,

    /// after the measurement: how long to wait for outstanding acks and for consumers to read everything produced [unit: s]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_DRAIN_TIMEOUT_S",
        default_value = "30",
        value_parser = number::<u64>(1, 3600)
    )]
    pub drain_timeout_s: u64,

    /// where report.json, latency.hgrm and the SVG charts are written (created) [unit: path]
    #[arg(
        long,
        value_name = "DIR",
        env = "WEIR_BENCH_REPORT_DIR",
        default_value = "weir-bench-report",
        value_parser = report_dir
    )]
    pub report_dir: PathBuf,

    /// weir's admin listener (http://HOST:PORT): the run resets and then reads the broker's per-stage latency into the report; unset: http://<bootstrap host>:9644, skipped if nothing answers there (Kafka); off: never [unit: URL]
    #[arg(
        long,
        value_name = "URL|off",
        env = "WEIR_BENCH_BROKER_ADMIN",
        value_parser = broker_admin
    )]
    pub broker_admin: Option<String>,

    /// compare, sweep: runs per broker (sweep: per rate), alternating A,B,A,B,... [unit: runs]
    #[arg(
        long,
        value_name = "N",
        env = "WEIR_BENCH_RUNS",
        default_value = "3",
        value_parser = number::<u32>(1, 100)
    )]
    pub runs: u32,

    /// print a progress line to stderr once per second
    #[arg(
        long,
        value_name = "true|false",
        env = "WEIR_BENCH_PROGRESS",
        default_value = "true",
        action = ArgAction::Set,
        value_parser = BoolishValueParser::new()
    )]
    pub progress: bool,

    /// client_id in every request header
    #[arg(
        long,
        value_name = "NAME",
        env = "WEIR_BENCH_CLIENT_ID",
        default_value = "weir-bench"
    )]
    pub client_id: String,
}

/// The command line as parsed: the derived definition with every flag made
/// global and given its value verbatim (see the module's invariants).
pub(super) fn command() -> clap::Command {
    Cli::command().mut_args(|arg| arg.global(true).allow_hyphen_values(true))
}

/// A number in `min..=max`; `_` may group digits (`1_000_000`) and
/// surrounding spaces are ignored.
fn number<T>(min: T, max: T) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: FromStr + PartialOrd + Display + Copy + Send + Sync + 'static,
{
    move |text| {
        let value: T = text
            .trim()
            .replace('_', "")
            .parse()
            .map_err(|_| format!("`{text}` is not a number"))?;
        if value < min || value > max {
            return Err(format!("{value} is out of range {min}..={max}"));
        }
        Ok(value)
    }
}

/// `--rates`: ascending, distinct (see [`rates`]).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Rates(pub Vec<f64>);

/// A comma-separated list of rates, each as `--rate` takes it; sorted
/// ascending (a sweep runs them in that order), a rate given twice and an
/// empty item are errors.
pub(super) fn rates(text: &str) -> Result<Rates, String> {
    let mut rates = text
        .split(',')
        .map(|item| match item.trim() {
            "" => Err(format!(
                "`{text}` has an empty rate: give MSGS_PER_S,MSGS_PER_S,..."
            )),
            item => number::<f64>(RATE_MIN_MSGS_PER_S, RATE_MAX_MSGS_PER_S)(item),
        })
        .collect::<Result<Vec<f64>, String>>()?;
    if rates.len() > RATES_MAX {
        return Err(format!("{} rates, at most {RATES_MAX}", rates.len()));
    }
    rates.sort_by(f64::total_cmp);
    if let Some(twice) = rates.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(format!("{} is given twice", twice[0]));
    }
    Ok(Rates(rates))
}

/// A broker's name in tables and charts: 1 to 64 characters, no control
/// characters.
fn label(text: &str) -> Result<String, String> {
    let length = text.chars().count();
    if !(1..=64).contains(&length) || text.chars().any(char::is_control) {
        return Err("a label has 1 to 64 characters and no control characters".into());
    }
    Ok(text.to_string())
}

fn replication_factor(text: &str) -> Result<i16, String> {
    match number::<i16>(-1, 32)(text)? {
        0 => Err("0 is not a replication factor".into()),
        factor => Ok(factor),
    }
}

fn topic(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > 249 {
        return Err("a topic name has 1 to 249 characters".into());
    }
    Ok(text.to_string())
}

fn report_dir(text: &str) -> Result<PathBuf, String> {
    if text.is_empty() {
        return Err("empty path".into());
    }
    Ok(PathBuf::from(text))
}

/// `off` is kept as the empty string: [`super::Params::broker_admin`].
fn broker_admin(text: &str) -> Result<String, String> {
    match text {
        "off" => Ok(String::new()),
        url if url.starts_with("http://") => Ok(url.trim_end_matches('/').to_string()),
        other => Err(format!("http://HOST:PORT or off, not '{other}'")),
    }
}
