//! weir-bench's command line, through the built binary: `--help` documents
//! every flag (meaning, default, unit, variable), `WEIR_BENCH_*` variables set
//! flags and flags beat them, and bad command lines exit with code 2.
//!
//! No broker is needed: a command line that parses and validates goes on to
//! connect to its bootstrap address, a free loopback port where nothing
//! listens, and fails with exit code 1 naming that address, which tells
//! which address won.

use std::{
    net::TcpListener,
    process::{Command, Output},
};

/// Every flag with its value name, default (`None`: unset) and unit (`""`:
/// none): the contract `--help` must show.
const FLAGS: &[(&str, &str, Option<&str>, &str)] = &[
    ("bootstrap", "HOST:PORT", Some("127.0.0.1:9092"), "address"),
    ("bootstrap-b", "HOST:PORT", None, "address"),
    ("label-a", "NAME", Some("A"), ""),
    ("label-b", "NAME", Some("B"), ""),
    ("scenario", "SCENARIO", Some("produce"), ""),
    ("topic", "NAME", Some("weir-bench"), ""),
    ("partitions", "N", Some("8"), "partitions"),
    ("replication-factor", "N", Some("-1"), "replicas"),
    ("message-bytes", "N", Some("1024"), "bytes"),
    ("message-bytes-min", "N", None, "bytes"),
    ("message-bytes-max", "N", None, "bytes"),
    ("batch-bytes", "N", Some("65536"), "bytes"),
    ("linger-ms", "N", Some("0"), "ms"),
    ("acks", "ACKS", Some("1"), ""),
    ("compression", "COMPRESSION", Some("none"), ""),
    ("payload", "PAYLOAD", Some("random"), ""),
    ("producers", "N", Some("1"), "producers"),
    ("consumers", "N", Some("1"), "consumers"),
    ("connections", "N", Some("1"), "connections"),
    ("inflight", "N", Some("5"), "requests"),
    ("threads", "N", Some("0"), "threads"),
    ("duration-s", "N", Some("10"), "s"),
    ("warmup-s", "N", Some("2"), "s"),
    ("rate", "MSGS_PER_S", None, "msgs/s"),
    ("rates", "MSGS_PER_S,...", None, "msgs/s"),
    ("messages", "N", None, "msgs"),
    ("from", "FROM", Some("earliest"), ""),
    ("stop-at-end", "true|false", Some("true"), ""),
    ("fetch-max-bytes", "N", Some("67108864"), "bytes"),
    ("fetch-partition-max-bytes", "N", Some("8388608"), "bytes"),
    ("fetch-wait-ms", "N", Some("500"), "ms"),
    ("fetch-min-bytes", "N", Some("1"), "bytes"),
    ("request-timeout-ms", "N", Some("30000"), "ms"),
    ("drain-timeout-s", "N", Some("30"), "s"),
    ("report-dir", "DIR", Some("weir-bench-report"), "path"),
    ("broker-admin", "URL|off", None, "URL"),
    ("runs", "N", Some("3"), "runs"),
    ("progress", "true|false", Some("true"), ""),
    ("client-id", "NAME", Some("weir-bench"), ""),
];

fn variable(flag: &str) -> String {
    format!("WEIR_BENCH_{}", flag.to_uppercase().replace('-', "_"))
}

/// Runs weir-bench with `variables` as the only `WEIR_BENCH_*` ones.
fn run(variables: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weir-bench"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("WEIR_BENCH_") {
            command.env_remove(name);
        }
    }
    // The help's layout (clap wraps at the terminal's width) must not
    // depend on the shell the tests run in.
    command
        .env("COLUMNS", "100")
        .envs(variables.iter().copied())
        .args(args)
        .output()
        .expect("run weir-bench")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A loopback address where nothing listens.
fn nobody_listening() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("probe a free port")
        .port();
    format!("127.0.0.1:{port}")
}

/// Runs `args` against `bootstrap` (nothing listening), quickly, expecting
/// the command line to be accepted: exit code 1 and the address connected to.
fn connection_refused(variables: &[(&str, &str)], args: &[&str]) -> String {
    let report_dir = tempfile::tempdir().expect("report dir");
    let report_dir = report_dir.path().to_str().expect("utf-8 path");
    let mut all = args.to_vec();
    all.extend([
        "--request-timeout-ms",
        "2000",
        "--progress",
        "false",
        "--report-dir",
        report_dir,
    ]);
    let output = run(variables, &all);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{all:?} {variables:?}: {text}");
    text
}

/// Columns before a flag in clap's help (`  -h, --help`, `      --flag`).
const ENTRY_INDENT_MAX: usize = 6;

/// The lines of `help` that document `--flag`: its own and the indented
/// ones up to the next flag.
fn block<'a>(help: &'a str, flag: &str, value: &str) -> Vec<&'a str> {
    let start = format!("--{flag} <{value}>");
    let mut lines = help
        .lines()
        .skip_while(|line| !line.trim_start().starts_with(&start));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("--help lacks `{start}`:\n{help}"));
    std::iter::once(first)
        // The next entry starts at the flags' own indentation; wrapped text
        // (which may begin with a flag it mentions) is indented further.
        .chain(lines.take_while(|line| {
            let text = line.trim_start();
            let indent = line.len() - text.len();
            !(indent <= ENTRY_INDENT_MAX && text.starts_with('-'))
        }))
        .collect()
}

#[test]
fn help_lists_every_flag_with_its_meaning_default_unit_and_variable() {
    let output = run(&[], &["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("WEIR_BENCH_<FLAG>") && help.contains("WEIR_*"),
        "header:\n{help}"
    );
    for &(flag, value, default, unit) in FLAGS {
        let lines = block(&help, flag, value);
        assert!(lines.len() > 1, "--{flag} has no meaning:\n{lines:?}");
        // clap wraps long help to the terminal's width (the workspace
        // enables `wrap_help`): compare with whitespace runs collapsed.
        let text = lines.join(" ").split_whitespace().collect::<Vec<_>>().join(" ");
        match default {
            Some(default) => assert!(text.contains(&format!("[default: {default}]")), "{text}"),
            None => assert!(!text.contains("[default: ") && text.contains("unset"), "{text}"),
        }
        if unit.is_empty() {
            assert!(!text.contains("[unit: "), "{text}");
        } else {
            assert!(text.contains(&format!("[unit: {unit}]")), "{text}");
        }
        assert!(text.contains(&format!("[env: {}=]", variable(flag))), "{text}");
    }
    // `-h` is the short form: the same facts, without the blank lines that
    // separate the long form's entries (line breaks depend on the width
    // clap finds, so the text is compared with whitespace collapsed).
    let output = run(&[], &["-h"]);
    let short = String::from_utf8_lossy(&output.stdout);
    assert!(short.lines().count() < help.lines().count(), "{short}");
    for &(flag, value, _, _) in FLAGS {
        let entry = block(&short, flag, value).join(" ");
        let entry = entry.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            entry.contains(&format!("[env: {}=]", variable(flag))),
            "--{flag} in -h:\n{short}"
        );
    }
    let flat = short.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("[unit: bytes] [env: WEIR_BENCH_MESSAGE_BYTES=] [default: 1024]"));
    // The usage names every command, sweep's output files and rule too.
    let flat_help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for text in [
        "weir-bench sweep [SCENARIO] --rates MSGS_PER_S,... [FLAGS]",
        "weir-bench compare [SCENARIO]",
        "DIR/sweep.json",
        "DIR/sweep_latency_vs_throughput.svg",
        "95%",
    ] {
        assert!(flat_help.contains(text), "--help lacks {text}:\n{help}");
    }
    // The `help` command and each command's --help show the flags too.
    for args in [&["help"][..], &["compare", "--help"], &["sweep", "--help"]] {
        let output = run(&[], args);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert!(String::from_utf8_lossy(&output.stdout).contains("--message-bytes <N>"));
    }
}

#[test]
fn version_prints_the_crate_version() {
    for flag in ["-V", "--version"] {
        let output = run(&[], &[flag]);
        assert_eq!(output.status.code(), Some(0));
        let expected = format!("weir-bench {}", env!("CARGO_PKG_VERSION"));
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), expected);
    }
}

#[test]
fn bad_command_lines_exit_with_code_2_and_say_why() {
    for (args, says) in [
        (&["produce", "--no-such-flag", "1"][..], "--no-such-flag"),
        (&["produce", "--acks", "2"], "--acks"),
        (&["produce", "--partitions", "0"], "out of range"),
        (&["launch"], "launch"),
        (&[], "requires a subcommand"),
        (&["produce", "stray"], "stray"),
        (&["produce", "--topic", "a", "--topic", "b"], "--topic"),
        (
            &["consume", "--consumers", "9", "--partitions", "8"],
            "every consumer needs a partition",
        ),
        (
            &["produce", "--message-bytes", "100", "--message-bytes-min", "50"],
            "--message-bytes-min",
        ),
        (&["compare", "e2e"], "--bootstrap-b"),
        (&["produce", "--scenario", "e2e"], "only used by `compare`"),
        (&["produce", "--rates", "100"], "--rates is only used by `sweep`"),
        (
            &["compare", "--bootstrap-b", "b:2", "--rates", "100"],
            "--rates is only used by `sweep`",
        ),
        (&["sweep"], "sweep needs --rates"),
        (
            &["sweep", "produce", "--bootstrap-b", "b:2"],
            "sweep needs --rates",
        ),
        (&["sweep", "consume", "--rates", "100"], "produce or e2e"),
        (&["sweep", "--rates", "100", "--rate", "100"], "--rate"),
        (&["sweep", "--rates", "0,100"], "out of range"),
        (&["sweep", "--rates", "100,abc"], "not a number"),
        (&["sweep", "--rates", "100,,200"], "empty rate"),
        (&["sweep", "--rates", "200,100,200"], "given twice"),
        (
            &[
                "sweep",
                "--rates",
                "100",
                "--bootstrap-b",
                "b:2",
                "--label-a",
                "x",
                "--label-b",
                "x",
            ],
            "--label-a and --label-b",
        ),
    ] {
        let output = run(&[], args);
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {text}");
        assert!(text.starts_with("weir-bench: "), "{args:?}: {text}");
        assert!(text.contains(says), "{args:?} should say {says}: {text}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn a_variable_sets_its_flag() {
    let address = nobody_listening();
    let text = connection_refused(&[("WEIR_BENCH_BOOTSTRAP", &address)], &["produce"]);
    assert!(text.contains(&format!("connecting to {address}")), "{text}");
    // Variables are validated as flags are.
    let output = run(
        &[("WEIR_BENCH_PARTITIONS", "2")],
        &["consume", "--consumers", "3"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--partitions 2"), "{}", stderr(&output));
    let output = run(&[("WEIR_BENCH_ACKS", "2")], &["produce"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}

#[test]
fn a_flag_beats_its_variable() {
    let (from_variable, from_flag) = (nobody_listening(), nobody_listening());
    let text = connection_refused(
        &[("WEIR_BENCH_BOOTSTRAP", &from_variable)],
        &["produce", "--bootstrap", &from_flag],
    );
    assert!(text.contains(&format!("connecting to {from_flag}")), "{text}");
    assert!(
        !text.contains(&from_variable) || from_variable == from_flag,
        "{text}"
    );
    // Flag over variable also lifts a combination the variable alone breaks.
    connection_refused(
        &[
            ("WEIR_BENCH_PARTITIONS", "2"),
            ("WEIR_BENCH_BOOTSTRAP", &from_flag),
        ],
        &["consume", "--consumers", "3", "--partitions", "4"],
    );
}

#[test]
fn sweep_reads_its_rates_from_the_flag_or_the_variable_and_the_others_ignore_it() {
    // Accepted: the sweep's first run goes on to connect to A.
    let address = nobody_listening();
    let text = connection_refused(
        &[("WEIR_BENCH_RATES", "200,100")],
        &["sweep", "--bootstrap", &address],
    );
    assert!(text.contains("sweep at 100 msgs/s: run 1/3 on A"), "{text}");
    assert!(text.contains(&format!("connecting to {address}")), "{text}");
    let text = connection_refused(
        &[],
        &[
            "sweep",
            "e2e",
            "--rates",
            "50",
            "--runs",
            "1",
            "--label-a",
            "weir",
            "--bootstrap",
            &address,
        ],
    );
    assert!(text.contains("sweep at 50 msgs/s: run 1/1 on weir"), "{text}");
    // WEIR_BENCH_RATES does not stop produce or compare; a bad one is
    // checked as the flag is (code 2, naming the variable).
    connection_refused(
        &[("WEIR_BENCH_RATES", "300")],
        &["produce", "--bootstrap", &address],
    );
    connection_refused(
        &[("WEIR_BENCH_RATES", "300")],
        &[
            "compare",
            "--bootstrap",
            &address,
            "--bootstrap-b",
            &address,
            "--runs",
            "1",
        ],
    );
    let output = run(&[("WEIR_BENCH_RATES", "0")], &["sweep"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("WEIR_BENCH_RATES=0"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn the_brokers_variables_do_not_reach_the_generator() {
    // weir's own settings are WEIR_*; with WEIR_PARTITIONS=2 read, 3
    // consumers would be rejected.
    let address = nobody_listening();
    connection_refused(
        &[("WEIR_PARTITIONS", "2"), ("WEIR_BOOTSTRAP", "nohost")],
        &["consume", "--consumers", "3", "--bootstrap", &address],
    );
    // A compare-only variable does not stop a produce run.
    let text = connection_refused(
        &[("WEIR_BENCH_BOOTSTRAP_B", "127.0.0.1:1")],
        &["produce", "--bootstrap", &address],
    );
    assert!(text.contains(&format!("connecting to {address}")), "{text}");
}
