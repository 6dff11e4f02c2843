//! The command line of the real `weir` binary: `--help` documents every
//! option, `WEIR_<OPTION>` variables set options between the config file
//! and the flags, usage errors exit 2, `weir config` prints a file that
//! `--config` reads back, and a broker started with variables reports them
//! as STATIC_BROKER_CONFIG.
//!
//! Each run gets an explicit environment for the `WEIR_*` names it uses
//! (`env_remove` of the options it asserts on), so a variable set in the
//! caller's shell does not change the answers.

mod common;

use std::{
    fs,
    path::Path,
    process::{Command, Output},
};

use common::{admin, admin_options, block_on, weir_binary, Broker, BrokerOptions, CLIENT_TIMEOUT};
use rdkafka::admin::{ConfigSource, ResourceSpecifier};
use weir::config::OPTIONS;

/// `weir ARGS` with `env` set and every option variable not in `env` unset.
fn weir(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(weir_binary());
    command.args(args);
    for option in OPTIONS {
        command.env_remove(option.env_var());
    }
    command.env_remove("WEIR_CONFIG");
    command.envs(env.iter().copied());
    command.output().expect("run weir")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `weir config ARGS` parsed as TOML, asserting success.
fn effective(args: &[&str], env: &[(&str, &str)]) -> (toml::Table, String) {
    let mut all = vec!["config"];
    all.extend_from_slice(args);
    let output = weir(&all, env);
    assert!(
        output.status.success(),
        "weir config {args:?} exited {:?}: {}",
        output.status.code(),
        text(&output.stderr)
    );
    let stdout = text(&output.stdout);
    let table = stdout
        .parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("weir config printed no TOML ({e}):\n{stdout}"));
    (table, stdout)
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, contents).expect("write config file");
    path.display().to_string()
}

#[test]
fn help_and_short_help_list_every_option_with_meaning_default_and_unit() {
    for flag in ["--help", "-h"] {
        let output = weir(&[flag], &[]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        let help = text(&output.stdout);
        let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for option in OPTIONS {
            let doc: String = option.doc.split_whitespace().collect::<Vec<_>>().join(" ");
            for needle in [
                format!("--{}", option.flag()),
                doc,
                format!("[default: {}]", option.default),
                format!("[unit: {}]", option.unit),
                format!("[env: {}=]", option.env_var()),
            ] {
                assert!(flat.contains(&needle), "{flag}: {needle:?} missing:\n{help}");
            }
        }
        for needle in ["--config <FILE>", "-V, --version", "config "] {
            assert!(help.contains(needle), "{flag}: {needle:?} missing:\n{help}");
        }
    }
    let version = weir(&["-V"], &[]);
    assert_eq!(
        text(&version.stdout).trim(),
        format!("weir {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn environment_sets_options_and_unrelated_weir_variables_are_ignored() {
    let (table, stdout) = effective(
        &[],
        &[
            ("WEIR_SEGMENT_BYTES", "4096"),
            ("WEIR_DATA_DIR", "/srv/weir"),
            ("WEIR_ADMIN_LISTEN", ""),
            ("WEIR_AUTO_CREATE_TOPICS", "false"),
            ("WEIR_LOG_RETENTION_BYTES", "-1"),
            // Not options: fault injection and the tests' own settings.
            ("WEIR_FAULTS_FILE", "/nonexistent/faults"),
            ("WEIR_TEST_BROKER", "weir"),
            ("WEIR_TEST_SOMETHING_ELSE", "1"),
        ],
    );
    assert_eq!(table["segment_bytes"].as_integer(), Some(4096));
    assert_eq!(table["data_dir"].as_str(), Some("/srv/weir"));
    assert_eq!(
        table["admin_listen"].as_str(),
        Some(""),
        "an empty variable turns admin off"
    );
    assert_eq!(table["auto_create_topics"].as_bool(), Some(false));
    assert!(
        stdout.contains("segment_bytes = 4096  # from WEIR_SEGMENT_BYTES"),
        "{stdout}"
    );
    // Untouched options keep their defaults.
    assert_eq!(table["listen"].as_str(), Some("127.0.0.1:9092"));
}

#[test]
fn flags_beat_the_environment_which_beats_the_file() {
    let dir = common::temp_dir("cli-precedence-");
    let file = write(
        dir.path(),
        "weir.toml",
        "segment_bytes = 2048\nnode_id = 1\ncores = 1\nfsync_policy = \"always\"\n",
    );
    let env = [
        ("WEIR_SEGMENT_BYTES", "4096"),
        ("WEIR_NODE_ID", "2"),
        ("WEIR_DEFAULT_PARTITIONS", "3"),
    ];
    let (table, stdout) = effective(&["--config", &file, "--node-id", "3"], &env);
    assert_eq!(table["cores"].as_integer(), Some(1), "file over default");
    assert_eq!(
        table["fsync_policy"].as_str(),
        Some("always"),
        "file over default"
    );
    assert_eq!(table["segment_bytes"].as_integer(), Some(4096), "env over file");
    assert_eq!(
        table["default_partitions"].as_integer(),
        Some(3),
        "env over default"
    );
    assert_eq!(table["node_id"].as_integer(), Some(3), "flag over env over file");
    assert!(stdout.contains("cores = 1  # from --config file"), "{stdout}");
    assert!(stdout.contains("node_id = 3  # from --node-id"), "{stdout}");

    // The file may come from WEIR_CONFIG, and flags may follow the command.
    let (table, _) = effective(&["--segment_bytes=8192"], &[("WEIR_CONFIG", &file)]);
    assert_eq!(table["cores"].as_integer(), Some(1));
    assert_eq!(table["segment_bytes"].as_integer(), Some(8192));
}

/// Arguments, environment, and a part of the expected message.
type ErrorCase<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn usage_and_configuration_errors_exit_2_with_a_message() {
    let dir = common::temp_dir("cli-errors-");
    let bad_file = write(dir.path(), "bad.toml", "segment_bytes = \"big\"\n");
    let cases: &[ErrorCase] = &[
        (&["--no-such-option", "1"], &[], "--no-such-option"),
        (&["--cores"], &[], "--cores"),
        (&["stray"], &[], "stray"),
        (
            &["--segment-bytes", "lots"],
            &[],
            "--segment-bytes: invalid value 'lots'",
        ),
        (
            &["config"],
            &[("WEIR_SEGMENT_BYTES", "lots")],
            "WEIR_SEGMENT_BYTES: invalid value",
        ),
        (
            &["config", "--segment-bytes", "10"],
            &[],
            "segment_bytes must be within",
        ),
        (&["config", "--config", &bad_file], &[], "bad.toml"),
        (
            &["--config", "/nonexistent/weir.toml"],
            &[],
            "cannot read config file",
        ),
    ];
    for (args, env, needle) in cases {
        let output = weir(args, env);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?} {env:?}: {needle:?} not in {stderr}"
        );
    }
}

#[test]
fn weir_config_round_trips_through_config_and_the_broker_starts_with_it() {
    let dir = common::temp_dir("cli-roundtrip-");
    let input = write(
        dir.path(),
        "in.toml",
        "segment_bytes = 1048576\nfsync_policy = \"never\"\nlog_retention_ms = -1\n",
    );
    let (first, first_text) = effective(
        &[
            "--config",
            &input,
            "--advertised-listener",
            "broker.example:9093",
            "--tail-cache-bytes=0",
            "--cold_reads_from_page_cache",
            "false",
        ],
        &[("WEIR_OFFSETS_TOPIC_PARTITIONS", "3")],
    );
    let output_file = write(dir.path(), "out.toml", &first_text);
    let (second, second_text) = effective(&["--config", &output_file], &[]);
    assert_eq!(
        first, second,
        "weir config of its own output differs:\n{second_text}"
    );
    assert_eq!(
        first.len(),
        OPTIONS.len(),
        "every option is written:\n{first_text}"
    );
    assert_eq!(
        second["advertised_listener"].as_str(),
        Some("broker.example:9093")
    );
    assert_eq!(second["offsets_topic_partitions"].as_integer(), Some(3));

    // Defaults only: the unset advertised listener stays unset.
    let (defaults, defaults_text) = effective(&[], &[]);
    assert!(!defaults.contains_key("advertised_listener"), "{defaults_text}");
    let defaults_file = write(dir.path(), "defaults.toml", &defaults_text);
    assert_eq!(effective(&["--config", &defaults_file], &[]).0, defaults);

    // The broker runs with the printed file (the harness's flags for its
    // ports and data directory win over the file's).
    let broker = Broker::start_weir(BrokerOptions {
        config_toml: Some(first_text),
        ..BrokerOptions::default()
    });
    common::assert_broker_serves_clients(&broker.bootstrap(), "cli-roundtrip");
}

#[test]
fn options_from_the_environment_are_static_broker_configs() {
    let broker = Broker::start_weir(BrokerOptions {
        env: vec![("WEIR_LOG_RETENTION_BYTES".into(), "123456789".into())],
        ..BrokerOptions::default()
    });
    let admin = admin(&broker.bootstrap());
    let results = block_on(
        admin.describe_configs(&[ResourceSpecifier::Broker(0)], &admin_options()),
        CLIENT_TIMEOUT,
    )
    .expect("DescribeConfigs request");
    let configs = results[0].as_ref().expect("describe broker 0");
    let entry = |name: &str| {
        configs
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from DescribeConfigs"))
    };
    let retention = entry("log.retention.bytes");
    assert_eq!(retention.value.as_deref(), Some("123456789"));
    assert_eq!(retention.source, ConfigSource::StaticBroker);
    assert_eq!(entry("message.max.bytes").source, ConfigSource::Default);
}
