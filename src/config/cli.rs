//! The command line of `weir`, on clap: the subcommands, one flag and one
//! environment variable per broker option, and `weir config`'s output.
//!
//! Shape: `weir [OPTIONS]` runs the broker; `weir [OPTIONS] <COMMAND>` runs a
//! subcommand ([`WeirCommand`]) with the configuration the broker would run
//! with. The broker options are global, so they may also follow the
//! subcommand (`weir config --data-dir d`). Subcommands to come (`weir user
//! …`, `weir topic …`) are new variants of [`WeirCommand`] and see the same
//! [`Config`] (its listeners and data directory say where the broker is).
//!
//! Why the broker options are not fields of a derive struct: [`OPTIONS`]
//! already holds every option's key, default, unit and meaning, and
//! [`Config`] holds their types. A derive struct would repeat the forty
//! names with their docs, defaults and variables in attributes: a third
//! list to keep in step. Instead [`BrokerArgs`] implements `clap::Args` and
//! `clap::FromArgMatches` by hand, building one `Arg` per `OPTIONS` row
//! (flag from the key, underscore spelling as an alias, `WEIR_<KEY>`
//! variable, help from the row), and is flattened into the derive struct
//! [`Cli`]; the rest of the command line (subcommands, `--config`, `--help`,
//! `--version`) stays derive.
//!
//! Why clap sees every value as text, without defaults: a value goes the
//! way a file value goes. [`flag_value`] types integers and booleans (else
//! a string), serde checks it against the field of [`Config`], and
//! [`Config::sanitize`] checks ranges and combinations. A clap default
//! would make every option look given and let it beat the file.
//!
//! Invariants: later sources win, defaults < `--config` file < `WEIR_<KEY>`
//! variables < flags (clap puts flags over variables, [`BrokerArgs::load`]
//! lays both over the file). Options set by the file, a variable or a flag
//! are in [`Config::explicit`]. Variables starting with `WEIR_` that name no
//! option (`WEIR_FAULTS_FILE`, the tests' `WEIR_TEST_*`) are not read here.
//! A flag given twice takes its last value, as before clap.

use std::{collections::BTreeSet, fmt::Write as _, path::PathBuf};

use clap::{
    parser::ValueSource, Arg, ArgAction, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand,
};

use super::{
    options::{OptionDoc, ENV_PREFIX, OPTIONS},
    Config,
};

/// Help section of the broker options.
const OPTIONS_HEADING: &str = "Broker options";

/// clap id of `--config FILE`.
const CONFIG_FILE_ID: &str = "config_file";

/// Width the comments of `weir config` are wrapped to.
const COMMENT_WIDTH: usize = 78;

const ABOUT: &str = "weir: a Kafka-wire-compatible broker, one shard per core on io_uring.\n\
                     Without a command, runs the broker.";

const AFTER_HELP: &str = "\
Every broker option is a key of the TOML file given with --config, a flag and an
environment variable: segment_bytes is `segment_bytes = 2048` in the file,
--segment-bytes 2048, --segment-bytes=2048 or --segment_bytes 2048 on the
command line, and WEIR_SEGMENT_BYTES=2048 in the environment. Each source
overrides the ones before it: defaults, the file, the environment, the flags.
`weir config` prints the resulting configuration as a file --config accepts.";

/// `weir`'s command line.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about = ABOUT, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// None: run the broker.
    #[command(subcommand)]
    pub command: Option<WeirCommand>,
}

/// `weir`'s subcommands; without one, `weir` runs the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum WeirCommand {
    /// Print the effective configuration (defaults, the --config file,
    /// WEIR_* variables, flags) as TOML that --config accepts, with each
    /// option's meaning and where its value came from; exit 2 if weir would
    /// refuse it.
    Config,
}

/// Where an option's effective value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Default,
    File,
    Env,
    Flag,
}

impl Origin {
    /// How messages and `weir config` name this source of `option`.
    pub fn describe(self, option: &OptionDoc) -> String {
        match self {
            Origin::Default => "default".to_string(),
            Origin::File => "--config file".to_string(),
            Origin::Env => option.env_var(),
            Origin::Flag => format!("--{}", option.flag()),
        }
    }
}

/// One option given in the environment or as a flag.
#[derive(Debug, Clone)]
pub struct Given {
    pub option: &'static OptionDoc,
    /// As typed; [`flag_value`] gives it a TOML type.
    pub text: String,
    /// [`Origin::Env`] or [`Origin::Flag`].
    pub origin: Origin,
}

/// The broker options of a command line: `--config FILE` and every option
/// given as a flag or a `WEIR_<KEY>` variable. [`BrokerArgs::load`] turns
/// them into a [`Config`].
#[derive(Debug, Clone, Default)]
pub struct BrokerArgs {
    pub config_file: Option<PathBuf>,
    /// At most one entry per option.
    pub given: Vec<Given>,
}

impl Args for BrokerArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let config_file = Arg::new(CONFIG_FILE_ID)
            .long("config")
            .value_name("FILE")
            .value_parser(clap::value_parser!(PathBuf))
            .action(ArgAction::Set)
            .overrides_with(CONFIG_FILE_ID)
            .env(format!("{ENV_PREFIX}CONFIG"))
            .global(true)
            .help("TOML file with any of the broker options below as keys");
        OPTIONS
            .iter()
            .fold(cmd.arg(config_file), |cmd, option| cmd.arg(option_arg(option)))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for BrokerArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = BrokerArgs::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        if let Some(path) = matches
            .try_get_one::<PathBuf>(CONFIG_FILE_ID)
            .map_err(into_clap)?
        {
            self.config_file = Some(path.clone());
        }
        for option in OPTIONS {
            let Some(text) = matches.try_get_one::<String>(option.key).map_err(into_clap)? else {
                continue;
            };
            let origin = match matches.value_source(option.key) {
                Some(ValueSource::EnvVariable) => Origin::Env,
                _ => Origin::Flag,
            };
            self.given.retain(|given| given.option.key != option.key);
            self.given.push(Given {
                option,
                text: text.clone(),
                origin,
            });
        }
        Ok(())
    }
}

fn into_clap(error: clap::parser::MatchesError) -> clap::Error {
    clap::Error::raw(clap::error::ErrorKind::InvalidValue, error)
}

/// The flag (and variable) of one `OPTIONS` row.
fn option_arg(option: &'static OptionDoc) -> Arg {
    let arg = Arg::new(option.key)
        .long(option.flag())
        .value_name(value_name(option.unit))
        .value_parser(clap::value_parser!(String))
        .action(ArgAction::Set)
        // Last one wins, as scripts that append to a flag list expect.
        .overrides_with(option.key)
        // `--log-retention-ms -1` is a value, not a flag.
        .allow_negative_numbers(true)
        .env(option.env_var())
        .global(true)
        .help_heading(OPTIONS_HEADING)
        .help(format!(
            "{} [default: {}] [unit: {}]",
            option.doc, option.default, option.unit
        ));
    if option.key.contains('_') {
        arg.alias(option.key)
    } else {
        arg
    }
}

/// The placeholder of a value in the help: the unit, in capitals unless it
/// lists the accepted words.
fn value_name(unit: &str) -> String {
    match unit {
        "%" => "PERCENT".to_string(),
        unit if unit.contains('|') => unit.to_string(),
        unit => unit.to_ascii_uppercase(),
    }
}

impl BrokerArgs {
    /// The effective configuration: defaults, then the file, then the
    /// variables and flags; type-checked and sanitized.
    pub fn load(&self) -> Result<Config, String> {
        self.load_with_origins().map(|(config, _)| config)
    }

    /// [`BrokerArgs::load`], and where each option's value came from (in
    /// `OPTIONS` order).
    pub fn load_with_origins(&self) -> Result<(Config, Vec<Origin>), String> {
        let mut table = match &self.config_file {
            Some(path) => read_config_file(path)?,
            None => toml::Table::new(),
        };
        let mut origins: Vec<Origin> = OPTIONS
            .iter()
            .map(|option| {
                if table.contains_key(option.key) {
                    Origin::File
                } else {
                    Origin::Default
                }
            })
            .collect();
        for given in &self.given {
            let value = flag_value(&given.text);
            check_value(given, &value)?;
            table.insert(given.option.key.to_string(), value);
            if let Some(index) = OPTIONS.iter().position(|o| o.key == given.option.key) {
                origins[index] = given.origin;
            }
        }
        let explicit: BTreeSet<String> = table.keys().cloned().collect();
        // Every given value passed alone, so what fails here is the file's.
        let mut config: Config = toml::Value::Table(table).try_into().map_err(|e| {
            let file = self.config_file.as_ref().map(|p| p.display().to_string());
            format!(
                "config file {}: {}",
                file.unwrap_or_default(),
                one_line(&e.to_string())
            )
        })?;
        config.explicit = explicit;
        config.sanitize()?;
        Ok((config, origins))
    }
}

fn read_config_file(path: &std::path::Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    text.parse::<toml::Table>()
        // TOML syntax errors quote the line at fault: keep their lines.
        .map_err(|e| format!("config file {}: {}", path.display(), e.to_string().trim_end()))
}

/// Whether `value` fits the type of its option, alone (so the message names
/// the flag or variable at fault rather than the whole configuration).
fn check_value(given: &Given, value: &toml::Value) -> Result<(), String> {
    let mut alone = toml::Table::new();
    alone.insert(given.option.key.to_string(), value.clone());
    toml::Value::Table(alone)
        .try_into::<Config>()
        .map(drop)
        .map_err(|e| {
            format!(
                "{}: invalid value '{}' for {} ({}): {}",
                given.origin.describe(given.option),
                given.text,
                given.option.key,
                given.option.unit,
                one_line(&e.to_string())
            )
        })
}

/// A possibly multi-line serde or TOML message on one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A flag's or variable's text as a TOML value: integers and booleans
/// typed, else a string.
pub fn flag_value(text: &str) -> toml::Value {
    if let Ok(number) = text.parse::<i64>() {
        return toml::Value::Integer(number);
    }
    match text {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(text.to_string()),
    }
}

/// The text of `weir --help` (as clap prints it, without colours).
pub fn help_text() -> String {
    Cli::command().render_help().to_string()
}

/// A clap error as one message for [`Config::from_args`]'s callers.
pub(super) fn error_message(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let text = text.trim();
    text.strip_prefix("error: ").unwrap_or(text).to_string()
}

/// `config` as a TOML file that `--config` reads back to the same
/// configuration: every option in `OPTIONS` order, after a comment with its
/// meaning, unit and default, and (with `origins`) where its value came
/// from when not the default. An unset optional option is a comment.
pub fn render_toml(config: &Config, origins: Option<&[Origin]>) -> Result<String, String> {
    let table =
        toml::Table::try_from(config).map_err(|e| format!("cannot write the configuration as TOML: {e}"))?;
    if let Some(key) = table.keys().find(|key| super::find_option(key).is_none()) {
        return Err(format!("option {key} has no row in OPTIONS"));
    }
    let mut out = String::new();
    push_comment(
        &mut out,
        "weir's effective configuration, as `weir config` printed it: the defaults, then \
         the --config file, then WEIR_* variables, then the flags. `weir --config \
         THIS_FILE` runs with it.",
    );
    for (index, option) in OPTIONS.iter().enumerate() {
        out.push('\n');
        push_comment(
            &mut out,
            &format!(
                "{}: {} [unit: {}; default: {}]",
                option.key, option.doc, option.unit, option.default
            ),
        );
        let origin = origins
            .and_then(|origins| origins.get(index).copied())
            .filter(|origin| *origin != Origin::Default)
            .map(|origin| format!("  # from {}", origin.describe(option)))
            .unwrap_or_default();
        match table.get(option.key) {
            Some(value) => {
                let _ = writeln!(out, "{} = {value}{origin}", option.key);
            }
            None => {
                let _ = writeln!(out, "# {} is not set{origin}", option.key);
            }
        }
    }
    Ok(out)
}

/// `text` as `# ` lines of at most [`COMMENT_WIDTH`] characters (longer
/// words stay whole).
fn push_comment(out: &mut String, text: &str) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() > 1 && line.len() + 1 + word.len() > COMMENT_WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a command line without the process's `WEIR_*` variables
    /// mattering for the assertions below (none sets these options).
    fn cli(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("weir").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_runs_the_broker_and_config_is_a_subcommand() {
        assert_eq!(cli(&["--cores", "2"]).unwrap().command, None);
        for args in [
            &["config", "--segment-bytes", "2048"][..],
            &["--segment-bytes", "2048", "config"][..],
            &["--segment_bytes=2048", "config"][..],
        ] {
            let parsed = cli(args).unwrap();
            assert_eq!(parsed.command, Some(WeirCommand::Config), "{args:?}");
            assert_eq!(parsed.broker.load().unwrap().segment_bytes, 2048, "{args:?}");
        }
    }

    #[test]
    fn repeated_flags_keep_the_last_value_and_negative_numbers_are_values() {
        let config = cli(&[
            "--segment-bytes",
            "4096",
            "--segment_bytes",
            "8192",
            "--log-retention-ms",
            "-1",
            "--log-retention-bytes=-1",
        ])
        .unwrap()
        .broker
        .load()
        .unwrap();
        assert_eq!(config.segment_bytes, 8192);
        assert_eq!(config.log_retention_ms, -1);
        assert_eq!(config.log_retention_bytes, -1);
    }

    #[test]
    fn help_lists_every_option_with_its_meaning_default_unit_and_variable() {
        let help = help_text();
        for option in OPTIONS {
            let flag = format!("--{} <{}>", option.flag(), value_name(option.unit));
            assert!(help.contains(&flag), "{flag} missing from --help:\n{help}");
            // The first words of the meaning (the help may wrap after them).
            let start: String = option
                .doc
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ");
            assert!(help.contains(&start), "{start:?} missing from --help");
            let default = format!("[default: {}]", option.default);
            let unit = format!("[unit: {}]", option.unit);
            let env = format!("[env: {}", option.env_var());
            for text in [default, unit, env] {
                let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
                assert!(flat.contains(&text), "{text} missing from --help");
            }
        }
        for text in ["--config <FILE>", "-h, --help", "-V, --version", "config"] {
            assert!(help.contains(text), "{text} missing from --help");
        }
    }

    #[test]
    fn unknown_options_and_missing_values_are_usage_errors() {
        use clap::error::ErrorKind;
        assert_eq!(
            cli(&["--no-such-option", "1"]).unwrap_err().kind(),
            ErrorKind::UnknownArgument
        );
        assert_eq!(cli(&["--cores"]).unwrap_err().kind(), ErrorKind::InvalidValue);
        assert_eq!(cli(&["stray"]).unwrap_err().kind(), ErrorKind::InvalidSubcommand);
        // clap exits 2 for all of these (`Error::exit`).
        assert_eq!(cli(&["--no-such-option", "1"]).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn given_values_are_checked_alone_and_named_by_their_flag() {
        let error = cli(&["--segment-bytes", "lots"])
            .unwrap()
            .broker
            .load()
            .unwrap_err();
        assert!(
            error.starts_with("--segment-bytes: invalid value 'lots' for segment_bytes"),
            "{error}"
        );
        let error = cli(&["--fsync-policy", "sometimes"])
            .unwrap()
            .broker
            .load()
            .unwrap_err();
        assert!(error.contains("--fsync-policy"), "{error}");
    }

    #[test]
    fn every_config_field_has_an_option_row_and_back() {
        let config = Config {
            advertised_listener: Some("broker.example:9092".into()),
            ..Config::default()
        };
        let table = toml::Table::try_from(&config).unwrap();
        let fields: BTreeSet<&str> = table.keys().map(String::as_str).collect();
        let rows: BTreeSet<&str> = OPTIONS.iter().map(|option| option.key).collect();
        assert_eq!(fields, rows);
    }

    #[test]
    fn weir_config_output_reads_back_to_the_same_configuration() {
        let dir = std::env::temp_dir().join(format!("weir-config-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("in.toml");
        std::fs::write(&file, "segment_bytes = 4096\nfsync_policy = \"never\"\n").unwrap();
        let file_arg = file.display().to_string();
        let parsed = cli(&[
            "config",
            "--config",
            &file_arg,
            "--advertised-listener",
            "broker.example:9093",
            "--log-retention-bytes",
            "-1",
            "--admin-listen=",
        ])
        .unwrap();
        let (config, origins) = parsed.broker.load_with_origins().unwrap();
        let text = render_toml(&config, Some(&origins)).unwrap();
        assert!(
            text.contains("segment_bytes = 4096  # from --config file"),
            "{text}"
        );
        assert!(
            text.contains("admin_listen = \"\"  # from --admin-listen"),
            "{text}"
        );
        let out = dir.join("out.toml");
        std::fs::write(&out, &text).unwrap();
        let again = cli(&["--config", &out.display().to_string()])
            .unwrap()
            .broker
            .load()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            Config {
                explicit: BTreeSet::new(),
                ..again
            },
            Config {
                explicit: BTreeSet::new(),
                ..config
            }
        );

        // Defaults alone: the unset advertised listener stays unset.
        let defaults = render_toml(&Config::default(), None).unwrap();
        assert!(
            defaults.contains("# advertised_listener is not set"),
            "{defaults}"
        );
        let back: Config = toml::from_str(&defaults).unwrap();
        assert_eq!(back, Config::default());
    }
}
