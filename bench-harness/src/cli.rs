//! The command line and what it yields: [`Params`], everything a run depends
//! on, and the enums its flags choose from. The flags themselves (meaning,
//! unit, default, environment variable, bounds) are declared once, as clap
//! attributes, in [`flags`]; clap builds both the parser and `--help` from
//! them.
//!
//! Invariants:
//! - A flag's value comes from the command line, else from its
//!   `WEIR_BENCH_<FLAG>` variable, else from its default. The variables of
//!   the commands that drive several runs (broker B and the scenario for
//!   `compare` and `sweep`, the rates for `sweep`) do not reach the others:
//!   `--bootstrap-b` and `--scenario` on the command line of `produce`,
//!   `consume` or `e2e` are an error, as before, and `--rates` anywhere but
//!   `sweep`.
//! - After parsing, [`Params::sanitize`] rejects impossible combinations.
//!   Every error, clap's or ours, is a [`clap::Error`] with exit code 2, and
//!   names the `WEIR_BENCH_*` variables set, if any. `--help`, `--version`
//!   and `help` are [`clap::Error`]s too, printed to stdout with exit code 0.
//!   `main` prints and exits.

mod flags;

use std::{ffi::OsString, path::PathBuf};

use clap::{
    error::{ContextKind, ContextValue, ErrorKind},
    parser::ValueSource,
    FromArgMatches, ValueEnum,
};
use serde::Serialize;

use flags::{Cli, Commands, Flags};

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
/// Bounds of an open-loop rate (`--rate`, each of `--rates`).
pub const RATE_MIN_MSGS_PER_S: f64 = 0.001;
pub const RATE_MAX_MSGS_PER_S: f64 = 1e9;
/// Upper bound on the rates of one sweep.
pub const RATES_MAX: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ValueEnum)]
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

    pub fn produces(self) -> bool {
        matches!(self, Scenario::Produce | Scenario::E2e)
    }

    pub fn consumes(self) -> bool {
        matches!(self, Scenario::Consume | Scenario::E2e)
    }
}

/// Producer acknowledgement level, as sent in ProduceRequest.acks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Acks {
    #[value(name = "0")]
    None,
    #[value(name = "1")]
    Leader,
    #[value(name = "all", alias = "-1")]
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ValueEnum)]
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StartFrom {
    Earliest,
    Latest,
}

/// What message bodies contain (after the 8-byte timestamp).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ValueEnum)]
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
    /// Names of broker A and B in compare and sweep tables, charts and
    /// report labels.
    pub label_a: String,
    pub label_b: String,
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
    /// sweep: the target rates, ascending and distinct (`None` elsewhere).
    pub rates_msgs_per_s: Option<Vec<f64>>,
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
    /// Every flag at its default (the `default_value`s of [`flags`]; the
    /// environment is not read), scenario `produce`: what tests start from.
    #[cfg(test)]
    pub fn defaults() -> Params {
        let command = flags::command().mut_args(|arg| arg.env(None::<&'static str>));
        match parse_with(command, ["weir-bench", "produce"]) {
            Ok(Command::Run(params)) => *params,
            other => panic!("the defaults do not parse: {other:?}"),
        }
    }

    /// Rejects impossible combinations for a command of `kind` (bounds of
    /// single flags are checked while parsing).
    pub fn sanitize(&self, kind: Kind) -> Result<(), String> {
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
        match kind {
            Kind::Compare if self.bootstrap_b.is_none() => {
                return Err("compare needs --bootstrap-b HOST:PORT (broker B)".into());
            }
            Kind::Run if self.bootstrap_b.is_some() => {
                return Err("--bootstrap-b is only used by `compare` and `sweep`".into());
            }
            Kind::Sweep => self.sanitize_sweep()?,
            _ if self.rates_msgs_per_s.is_some() => {
                return Err("--rates is only used by `sweep` (a single run takes --rate)".into());
            }
            _ => {}
        }
        if kind != Kind::Run && self.bootstrap_b.is_some() && self.label_a == self.label_b {
            return Err(format!(
                "--label-a and --label-b are both `{}`: tables and charts tell the brokers apart by them",
                self.label_a
            ));
        }
        for address in std::iter::once(&self.bootstrap).chain(self.bootstrap_b.as_ref()) {
            check_address(address)?;
        }
        Ok(())
    }

    /// `sweep`: open-loop runs of a producing scenario at each of `--rates`.
    fn sanitize_sweep(&self) -> Result<(), String> {
        if self.scenario == Scenario::Consume {
            return Err("sweep paces producers at each of --rates: its scenario is produce or e2e".into());
        }
        if self.rates_msgs_per_s.is_none() {
            return Err("sweep needs --rates MSGS_PER_S,... (the target rates, e.g. 10000,50000)".into());
        }
        if self.rate_msgs_per_s.is_some() {
            return Err("sweep sets each run's rate from --rates; --rate does not go with it".into());
        }
        if self.messages.is_some() {
            return Err("--messages ends a run by count; sweep runs every rate for --duration-s".into());
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
/// What the command line asks for (`--help` and `--version` are not here:
/// see the module's invariants).
#[derive(Debug)]
pub enum Command {
    Run(Box<Params>),
    /// `params.scenario` is the scenario run against both brokers.
    Compare(Box<Params>),
    /// `params.scenario` is the scenario run at each of
    /// `params.rates_msgs_per_s`, against one broker or two.
    Sweep(Box<Params>),
}

/// The kinds of [`Command`], for what depends on the command alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `produce`, `consume`, `e2e`: one run.
    Run,
    Compare,
    Sweep,
}

/// Parses a command line, program name first (as [`std::env::args_os`]
/// gives it), and the environment's `WEIR_BENCH_*` variables.
pub fn parse<I, T>(args: I) -> Result<Command, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    parse_with(flags::command(), args)
}

fn parse_with<I, T>(mut command: clap::Command, args: I) -> Result<Command, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args = args.into_iter().map(|arg| dashes_in_flag_name(arg.into()));
    let matches = command
        .try_get_matches_from_mut(args)
        .map_err(with_variables_tip)?;
    let cli = Cli::from_arg_matches(&matches).map_err(|error| error.format(&mut command))?;
    let on_command_line = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let mut invalid = |message: &str| {
        // A raw message: clap renders no context (tips) for it.
        let tip = variables_tip()
            .map(|tip| format!("\n\n  tip: {tip}"))
            .unwrap_or_default();
        command.error(ErrorKind::ValueValidation, format!("{message}{tip}"))
    };
    let (kind, scenario_word) = match cli.command {
        Commands::Produce => (Kind::Run, Some(Scenario::Produce)),
        Commands::Consume => (Kind::Run, Some(Scenario::Consume)),
        Commands::E2e => (Kind::Run, Some(Scenario::E2e)),
        Commands::Compare { scenario_word } => (Kind::Compare, scenario_word),
        Commands::Sweep { scenario_word } => (Kind::Sweep, scenario_word),
    };
    let scenario = match scenario_word {
        _ if kind == Kind::Run && on_command_line("scenario") => {
            return Err(invalid(
                "--scenario is only used by `compare` and `sweep` (the command names the scenario)",
            ));
        }
        Some(_) if on_command_line("scenario") => {
            let name = if kind == Kind::Sweep { "sweep" } else { "compare" };
            return Err(invalid(&format!(
                "give the scenario once: `{name} SCENARIO` or `{name} --scenario SCENARIO`"
            )));
        }
        Some(scenario) => scenario,
        None => cli.flags.scenario,
    };
    let mut flags = cli.flags;
    if kind == Kind::Run && !on_command_line("bootstrap_b") {
        // WEIR_BENCH_BOOTSTRAP_B names broker B for compare and sweep only.
        flags.bootstrap_b = None;
    }
    if kind != Kind::Sweep && !on_command_line("rates") {
        // WEIR_BENCH_RATES is for sweep only.
        flags.rates = None;
    }
    let params = Box::new(flags.into_params(scenario));
    params.sanitize(kind).map_err(|message| invalid(&message))?;
    Ok(match kind {
        Kind::Run => Command::Run(params),
        Kind::Compare => Command::Compare(params),
        Kind::Sweep => Command::Sweep(params),
    })
}

/// Which `WEIR_BENCH_*` variables are set, if any: a value that no flag on
/// the command line gave may come from one of them.
fn variables_tip() -> Option<String> {
    let mut set: Vec<String> = std::env::vars_os()
        .filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            let value = value.to_string_lossy();
            name.starts_with("WEIR_BENCH_").then(|| format!("{name}={value}"))
        })
        .collect();
    set.sort();
    (!set.is_empty()).then(|| format!("set in the environment: {}", set.join(" ")))
}

/// Adds [`variables_tip`] to a usage error of clap's.
fn with_variables_tip(mut error: clap::Error) -> clap::Error {
    let Some(tip) = variables_tip().filter(|_| error.use_stderr()) else {
        return error;
    };
    let mut tips = match error.get(ContextKind::Suggested) {
        Some(ContextValue::StyledStrs(tips)) => tips.clone(),
        _ => Vec::new(),
    };
    tips.push(tip.into());
    error.insert(ContextKind::Suggested, ContextValue::StyledStrs(tips));
    error
}

/// `--fetch_wait_ms` is `--fetch-wait-ms`, as before clap: `_` in a flag's
/// name (not in a value after `=`) becomes `-`.
fn dashes_in_flag_name(arg: OsString) -> OsString {
    match arg.to_str() {
        Some(text) if text.starts_with("--") => {
            let name_end = text.find('=').unwrap_or(text.len());
            format!("{}{}", text[..name_end].replace('_', "-"), &text[name_end..]).into()
        }
        _ => arg,
    }
}

impl Flags {
    fn into_params(self, scenario: Scenario) -> Params {
        Params {
            scenario,
            bootstrap: self.bootstrap,
            bootstrap_b: self.bootstrap_b,
            label_a: self.label_a,
            label_b: self.label_b,
            topic: self.topic,
            partitions: self.partitions,
            replication_factor: self.replication_factor,
            message_bytes_min: self.message_bytes_min.unwrap_or(self.message_bytes),
            message_bytes_max: self.message_bytes_max.unwrap_or(self.message_bytes),
            batch_bytes: self.batch_bytes,
            linger_ms: self.linger_ms,
            acks: self.acks,
            compression: self.compression,
            payload: self.payload,
            producers: self.producers,
            consumers: self.consumers,
            connections: self.connections,
            inflight: self.inflight,
            threads: self.threads,
            duration_s: self.duration_s,
            warmup_s: self.warmup_s,
            rate_msgs_per_s: self.rate,
            rates_msgs_per_s: self.rates.map(|rates| rates.0),
            messages: self.messages,
            from: self.from,
            stop_at_end: self.stop_at_end,
            fetch_max_bytes: self.fetch_max_bytes,
            fetch_partition_max_bytes: self.fetch_partition_max_bytes,
            fetch_wait_ms: self.fetch_wait_ms,
            fetch_min_bytes: self.fetch_min_bytes,
            request_timeout_ms: self.request_timeout_ms,
            drain_timeout_s: self.drain_timeout_s,
            report_dir: self.report_dir,
            broker_admin: self.broker_admin,
            runs: self.runs,
            progress: self.progress,
            client_id: self.client_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Mutex, MutexGuard};

    use super::*;

    /// Held by every test that parses: the parser reads the process's
    /// environment, which the environment tests change.
    static ENVIRONMENT: Mutex<()> = Mutex::new(());

    fn environment() -> MutexGuard<'static, ()> {
        ENVIRONMENT
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn try_parse(text: &str) -> Result<Command, clap::Error> {
        let _environment = environment();
        parse(std::iter::once("weir-bench").chain(text.split_whitespace()))
    }

    fn run(text: &str) -> Params {
        match try_parse(text) {
            Ok(Command::Run(params)) => *params,
            other => panic!("`{text}` parsed as {other:?}"),
        }
    }

    /// Variables set for one parse, removed when dropped (a panic included).
    struct Variables<'a>(&'a [(&'a str, &'a str)]);

    impl Drop for Variables<'_> {
        fn drop(&mut self) {
            for (name, _) in self.0 {
                std::env::remove_var(name);
            }
        }
    }

    /// Parses `text` with `variables` set.
    fn run_with(variables: &[(&str, &str)], text: &str) -> Result<Command, clap::Error> {
        let _environment = environment();
        let _variables = Variables(variables);
        for (name, value) in variables {
            std::env::set_var(name, value);
        }
        parse(std::iter::once("weir-bench").chain(text.split_whitespace()))
    }

    #[test]
    fn every_default_parses_and_help_lists_every_flag_with_default_unit_and_variable() {
        let params = Params::defaults();
        assert_eq!((params.message_bytes_min, params.message_bytes_max), (1024, 1024));
        assert_eq!(params.acks, Acks::Leader);
        assert_eq!(params.bootstrap, "127.0.0.1:9092");
        assert_eq!((params.partitions, params.runs), (8, 3));
        assert!(params.stop_at_end && params.progress);
        assert_eq!((params.rate_msgs_per_s, params.messages), (None, None));

        let mut command = flags::command();
        let help = command.render_long_help().to_string();
        assert!(help.contains("WEIR_BENCH_<FLAG>"), "{help}");
        // The help states sweep's rule with the constant's value.
        let percent = format!("{}%", crate::scenario::sweep::SUSTAINED_FRACTION * 100.0);
        assert!(help.contains(&percent), "{percent}: {help}");
        let flags: Vec<_> = command
            .get_arguments()
            .filter(|arg| !["help", "version"].contains(&arg.get_id().as_str()))
            .collect();
        assert_eq!(flags.len(), 39);
        for arg in flags {
            let long = arg.get_long().unwrap_or_default();
            let value = arg
                .get_value_names()
                .map(|names| names.join(" "))
                .unwrap_or_default();
            assert!(help.contains(&format!("--{long} <{value}>")), "--{long}");
            let text = arg.get_help().map(ToString::to_string).unwrap_or_default();
            assert!(
                !arg.get_default_values().is_empty() || text.contains("unset"),
                "--{long} has neither a default nor says what unset means"
            );
            let variable = format!("WEIR_BENCH_{}", long.to_uppercase().replace('-', "_"));
            assert_eq!(
                arg.get_env().and_then(|name| name.to_str()),
                Some(variable.as_str())
            );
            assert!(help.contains(&format!("[env: {variable}")), "{variable}");
        }
        assert!(help.contains("[default: 1024]") && help.contains("[unit: bytes]"));
        assert_eq!(help.matches("[default: ").count(), 32);
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
        assert_eq!(run("produce --acks -1 --replication-factor -1").acks, Acks::All);
        assert_eq!(run("produce --acks 0").acks, Acks::None);
        assert_eq!(run("consume --from latest").scenario, Scenario::Consume);
        assert_eq!(run("e2e --compression zstd").compression, Codec::Zstd);
        assert!(!run("produce --progress false --stop-at-end no").stop_at_end);
        assert_eq!(
            run("produce --broker-admin off").broker_admin.as_deref(),
            Some("")
        );
        assert_eq!(
            run("produce --broker-admin http://h:9644/")
                .broker_admin
                .as_deref(),
            Some("http://h:9644")
        );
    }

    #[test]
    fn equals_form_and_underscores_are_accepted() {
        let params =
            run("consume --from=latest --fetch_wait_ms=20 --message-bytes-min 16 --message-bytes-max 64");
        assert_eq!(params.from, StartFrom::Latest);
        assert_eq!(params.fetch_wait_ms, 20);
        assert_eq!((params.message_bytes_min, params.message_bytes_max), (16, 64));
        assert_eq!(run("produce --client-id=a_b").client_id, "a_b");
    }

    #[test]
    fn compare_takes_the_scenario_as_word_or_flag() {
        for text in [
            "compare e2e --bootstrap a:1 --bootstrap-b b:2",
            "compare --scenario e2e --bootstrap a:1 --bootstrap-b b:2",
            "compare --bootstrap a:1 --bootstrap-b b:2 e2e",
        ] {
            match try_parse(text) {
                Ok(Command::Compare(params)) => {
                    assert_eq!(params.scenario, Scenario::E2e);
                    assert_eq!(params.bootstrap_b.as_deref(), Some("b:2"));
                    assert_eq!(params.runs, 3);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    fn sweep(text: &str) -> Params {
        match try_parse(text) {
            Ok(Command::Sweep(params)) => *params,
            other => panic!("`{text}` parsed as {other:?}"),
        }
    }

    #[test]
    fn sweep_takes_sorted_rates_and_one_broker_or_two() {
        let params = sweep("sweep --rates 200000,10_000,50000,100000");
        assert_eq!(params.scenario, Scenario::Produce);
        assert_eq!(
            params.rates_msgs_per_s,
            Some(vec![10_000.0, 50_000.0, 100_000.0, 200_000.0])
        );
        assert_eq!((params.bootstrap_b, params.rate_msgs_per_s), (None, None));
        assert_eq!((params.label_a.as_str(), params.label_b.as_str()), ("A", "B"));
        let params =
            sweep("sweep e2e --rates=0.5,1.5 --bootstrap-b b:2 --label-a weir --label-b kafka --runs 1");
        assert_eq!(params.scenario, Scenario::E2e);
        assert_eq!(params.rates_msgs_per_s, Some(vec![0.5, 1.5]));
        assert_eq!(params.bootstrap_b.as_deref(), Some("b:2"));
        assert_eq!(
            (params.label_a.as_str(), params.label_b.as_str()),
            ("weir", "kafka")
        );
        assert_eq!(params.runs, 1);
        assert_eq!(sweep("sweep --scenario e2e --rates 1").scenario, Scenario::E2e);
        // One label may repeat the other's when there is no broker B.
        assert_eq!(sweep("sweep --rates 1 --label-a B").label_a, "B");
        // Labels serve compare too.
        match try_parse("compare --bootstrap-b b:2 --label-a weir --label-b kafka") {
            Ok(Command::Compare(params)) => assert_eq!(params.label_b, "kafka"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rates_parse_sorted_and_refuse_empty_zero_words_and_repeats() {
        let parse = |text: &str| flags::rates(text).map(|rates| rates.0);
        assert_eq!(parse("400, 200").unwrap(), [200.0, 400.0]);
        assert_eq!(parse("1_000").unwrap(), [1_000.0]);
        for (text, says) in [
            ("", "empty rate"),
            ("100,", "empty rate"),
            ("0", "out of range"),
            ("-5,10", "out of range"),
            ("ten", "not a number"),
            ("100,200,100", "given twice"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(says), "`{text}`: {error}");
        }
        let many = vec!["1"; RATES_MAX + 1].join(",");
        assert!(parse(&many).unwrap_err().contains("at most"));
    }

    #[test]
    fn bad_command_lines_are_errors_with_exit_code_2() {
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
            "compare e2e --scenario e2e --bootstrap-b b:2",
            "compare --bootstrap-b b:2 --rates 100,200",
            "compare --bootstrap-b b:2 --label-a x --label-b x",
            "compare --bootstrap-b b:2 --label-a=",
            "produce --rates 100",
            "e2e --rates 100,200",
            "sweep",
            "sweep consume --rates 100",
            "sweep --rates 100 --rate 100",
            "sweep --rates 100 --messages 10",
            "sweep produce --scenario e2e --rates 100",
            "sweep --rates",
            "sweep --rates 0",
            "sweep --rates 100,0",
            "sweep --rates 100,,200",
            "sweep --rates ,",
            "sweep --rates 100,fast",
            "sweep --rates 100,200,100",
            "sweep --rates 2e9",
            "produce --bootstrap-b a:1",
            "produce --scenario e2e",
            "produce --replication-factor 0",
            "produce --broker-admin ftp://h",
            "produce --progress maybe",
        ] {
            match try_parse(text) {
                Err(error) => assert_eq!(error.exit_code(), 2, "`{text}`: {error}"),
                Ok(command) => panic!("`{text}` should be rejected, parsed as {command:?}"),
            }
        }
    }

    #[test]
    fn help_and_version_print_to_stdout_with_exit_code_0() {
        for (text, kind) in [
            ("--help", ErrorKind::DisplayHelp),
            ("-h", ErrorKind::DisplayHelp),
            ("help", ErrorKind::DisplayHelp),
            ("produce --topic t --help", ErrorKind::DisplayHelp),
            ("--version", ErrorKind::DisplayVersion),
            ("-V", ErrorKind::DisplayVersion),
            ("consume -V", ErrorKind::DisplayVersion),
        ] {
            match try_parse(text) {
                Err(error) => {
                    assert_eq!(error.kind(), kind, "`{text}`");
                    assert!(!error.use_stderr() && error.exit_code() == 0, "`{text}`");
                }
                Ok(command) => panic!("`{text}` parsed as {command:?}"),
            }
        }
    }

    #[test]
    fn a_variable_sets_a_flag_and_the_flag_beats_it() {
        let parsed = |variables: &[(&str, &str)], text: &str| match run_with(variables, text) {
            Ok(Command::Run(params)) => *params,
            other => panic!("`{text}` with {variables:?} parsed as {other:?}"),
        };
        let params = parsed(
            &[
                ("WEIR_BENCH_MESSAGE_BYTES", "4096"),
                ("WEIR_BENCH_ACKS", "all"),
                ("WEIR_BENCH_PROGRESS", "false"),
            ],
            "produce",
        );
        assert_eq!((params.message_bytes_min, params.message_bytes_max), (4096, 4096));
        assert_eq!(params.acks, Acks::All);
        assert!(!params.progress);
        let params = parsed(
            &[("WEIR_BENCH_MESSAGE_BYTES", "4096")],
            "produce --message-bytes 100",
        );
        assert_eq!((params.message_bytes_min, params.message_bytes_max), (100, 100));
        // The broker's own variables are not the generator's.
        assert_eq!(parsed(&[("WEIR_PARTITIONS", "2")], "produce").partitions, 8);
        // A variable is checked as its flag is.
        assert!(run_with(&[("WEIR_BENCH_PARTITIONS", "0")], "produce").is_err());
        assert!(run_with(&[("WEIR_BENCH_PARTITIONS", "2")], "consume --consumers 3").is_err());
    }

    #[test]
    fn sweep_reads_its_variables_and_the_others_ignore_them() {
        let variables = [
            ("WEIR_BENCH_RATES", "300,100"),
            ("WEIR_BENCH_BOOTSTRAP_B", "b:2"),
            ("WEIR_BENCH_LABEL_B", "kafka"),
        ];
        match run_with(&variables, "sweep") {
            Ok(Command::Sweep(params)) => {
                assert_eq!(params.rates_msgs_per_s, Some(vec![100.0, 300.0]));
                assert_eq!(params.bootstrap_b.as_deref(), Some("b:2"));
                assert_eq!(params.label_b, "kafka");
            }
            other => panic!("{other:?}"),
        }
        match run_with(&variables, "produce") {
            Ok(Command::Run(params)) => assert_eq!(params.rates_msgs_per_s, None),
            other => panic!("{other:?}"),
        }
        match run_with(&variables, "compare") {
            Ok(Command::Compare(params)) => assert_eq!(params.rates_msgs_per_s, None),
            other => panic!("{other:?}"),
        }
        // The flag beats the variable; a bad variable is an error of sweep's.
        match run_with(&variables, "sweep --rates 5") {
            Ok(Command::Sweep(params)) => assert_eq!(params.rates_msgs_per_s, Some(vec![5.0])),
            other => panic!("{other:?}"),
        }
        assert!(run_with(&[("WEIR_BENCH_RATES", "0")], "sweep").is_err());
    }

    #[test]
    fn compare_only_variables_do_not_reach_the_other_commands() {
        let variables = [
            ("WEIR_BENCH_BOOTSTRAP_B", "b:2"),
            ("WEIR_BENCH_SCENARIO", "consume"),
        ];
        match run_with(&variables, "produce") {
            Ok(Command::Run(params)) => {
                assert_eq!(params.scenario, Scenario::Produce);
                assert_eq!(params.bootstrap_b, None);
            }
            other => panic!("{other:?}"),
        }
        match run_with(&variables, "compare") {
            Ok(Command::Compare(params)) => {
                assert_eq!(params.scenario, Scenario::Consume);
                assert_eq!(params.bootstrap_b.as_deref(), Some("b:2"));
            }
            other => panic!("{other:?}"),
        }
        // The word on the command line beats the variable.
        match run_with(&variables, "compare e2e") {
            Ok(Command::Compare(params)) => assert_eq!(params.scenario, Scenario::E2e),
            other => panic!("{other:?}"),
        }
    }
}
