//! End-to-end tests of the `weir-tune` binary: `check --json` produces a
//! complete report, `disk --quick` writes a config that the real `weir`
//! broker starts with, and the command line (help with defaults and units,
//! exit 2 on usage errors, `WEIR_TUNE_<FLAG>` variables) behaves.
//!
//! Nothing here asserts a timing or a host-specific value: only exit codes,
//! the shape of the output, that probe files are gone, and that the broker
//! accepts connections with the generated file.

use std::{
    fs,
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use tempfile::TempDir;

/// How long the broker may take to accept connections.
const BROKER_START_TIMEOUT: Duration = Duration::from_secs(30);

fn weir_tune() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_weir-tune"))
}

/// The broker binary, built into the same target directory by
/// `cargo test --workspace` (or `cargo build -p weir`).
fn weir_binary() -> PathBuf {
    let path = weir_tune().with_file_name("weir");
    assert!(
        path.is_file(),
        "the weir broker binary is missing at {}: build it first (`cargo build --release -p weir`, \
         or run `cargo test --release --workspace`, which builds it)",
        path.display()
    );
    path
}

/// A temporary directory on a real filesystem (Cargo's target tmp dir, not
/// /tmp, which is often tmpfs without O_DIRECT).
fn temp_dir(prefix: &str) -> TempDir {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    fs::create_dir_all(base).expect("create CARGO_TARGET_TMPDIR");
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(base)
        .expect("create temp dir")
}

fn run(args: &[&str]) -> Output {
    Command::new(weir_tune())
        .args(args)
        .output()
        .expect("run weir-tune")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn probe_files_in(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with(".weir-tune-probe"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn check_json_reports_every_item_with_status_value_and_advice() {
    let dir = temp_dir("wt-check-");
    let data_dir = dir.path().join("data");
    let output = run(&["check", "--json", "--data-dir", data_dir.to_str().unwrap()]);
    let code = output.status.code();
    assert!(
        code == Some(0) || code == Some(1),
        "exit code {code:?}, stderr: {}",
        text(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&output.stdout)));
    let items = json["items"].as_array().expect("items array");
    assert!(items.len() >= 20, "only {} items", items.len());
    let mut any_fail = false;
    for item in items {
        let status = item["status"]
            .as_str()
            .unwrap_or_else(|| panic!("no status: {item}"));
        assert!(["PASS", "INFO", "WARN", "FAIL"].contains(&status), "{item}");
        any_fail |= status == "FAIL";
        for field in ["family", "name", "value", "advice"] {
            assert!(
                item[field].as_str().is_some_and(|s| !s.is_empty()),
                "empty {field}: {item}"
            );
        }
    }
    assert_eq!(
        code == Some(1),
        any_fail,
        "exit code must be 1 exactly when an item FAILed"
    );
    assert_eq!(json["ok"].as_bool(), Some(!any_fail));
    for family in [
        "kernel", "io_uring", "limits", "fs", "cpu", "memory", "irq", "net",
    ] {
        assert!(
            items.iter().any(|item| item["family"] == family),
            "no {family} items"
        );
    }
    // The missing data dir was created for the O_DIRECT probe and removed again.
    assert!(!data_dir.exists(), "check left {} behind", data_dir.display());
}

#[test]
fn check_rejects_a_config_weir_would_reject() {
    let dir = temp_dir("wt-badconf-");
    let config = dir.path().join("bad.toml");
    fs::write(&config, "segment_bytes = 10\n").unwrap();
    let output = run(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("segment_bytes"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
}

/// Kills the broker (by PID, SIGKILL) when the test ends, however it ends.
struct Broker {
    child: Child,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("bind 127.0.0.1:0")
}

fn start_broker(config: &Path, data_dir: &Path, log: &Path) -> (Broker, SocketAddr) {
    let port = free_port();
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = Command::new(weir_binary())
        .arg("--config")
        .arg(config)
        .arg("--listen")
        .arg(address.to_string())
        .arg("--admin-listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(fs::File::create(log).expect("create broker log"))
        .spawn()
        .expect("spawn weir");
    let mut broker = Broker { child };
    let started = Instant::now();
    loop {
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return (broker, address);
        }
        if let Ok(Some(status)) = broker.child.try_wait() {
            panic!(
                "weir exited ({status}) with the generated config; its log:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            started.elapsed() < BROKER_START_TIMEOUT,
            "weir did not accept connections within {BROKER_START_TIMEOUT:?}; its log:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn disk_quick_writes_a_config_the_broker_starts_with() {
    let probe = temp_dir("wt-disk-");
    let config = probe.path().join("weir.toml");
    let output = run(&[
        "disk",
        "--quick",
        "--data-dir",
        probe.path().to_str().unwrap(),
        "--out",
        config.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "weir-tune disk failed: {}\n{}",
        text(&output.stderr),
        text(&output.stdout)
    );
    let stdout = text(&output.stdout);
    assert!(stdout.contains("Sequential O_DIRECT writes"), "{stdout}");
    assert!(stdout.contains("fdatasync latency"), "{stdout}");
    assert!(
        probe_files_in(probe.path()).is_empty(),
        "probe files left: {:?}",
        probe_files_in(probe.path())
    );

    let contents = fs::read_to_string(&config).expect("config written");
    let table: toml::Table = contents.parse().expect("config is TOML");
    for key in [
        "data_dir",
        "append_write_bytes_max",
        "fsync_policy",
        "io_memory_bytes",
    ] {
        assert!(table.contains_key(key), "{key} missing:\n{contents}");
    }

    // The real broker loads it (its own data dir, so the probe dir stays clean).
    let broker_data = temp_dir("wt-broker-");
    let log = probe.path().join("weir.log");
    let (broker, _address) = start_broker(&config, broker_data.path(), &log);

    // A probe on the directory the running weir holds is refused.
    let refused = run(&[
        "disk",
        "--quick",
        "--data-dir",
        broker_data.path().to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("is running"),
        "{}",
        text(&refused.stderr)
    );
    assert!(probe_files_in(broker_data.path()).is_empty());
    drop(broker);
}

#[test]
fn templates_are_written_to_a_directory() {
    let dir = temp_dir("wt-templates-");
    let output = run(&["templates", "--out", dir.path().to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    for name in ["sysctl.conf", "limits.conf", "weir.service"] {
        assert!(dir.path().join(name).is_file(), "{name} not written");
    }
}

/// `weir-tune ARGS` with `env` added to the environment.
fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(weir_tune())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run weir-tune")
}

#[test]
fn help_lists_every_command_and_flag_with_defaults_units_and_variables() {
    // No command: the help, exit 0 (as before clap).
    let bare = run(&[]);
    assert_eq!(bare.status.code(), Some(0), "{}", text(&bare.stderr));
    for command in ["check", "disk", "templates"] {
        assert!(text(&bare.stdout).contains(command), "{}", text(&bare.stdout));
    }
    let expected: &[(&str, &[&str])] = &[
        (
            "check",
            &[
                "--data-dir <DIR>",
                "--config <FILE>",
                "--cores <N>",
                "[unit: shards]",
                "--json",
            ],
        ),
        (
            "disk",
            &[
                "--data-dir <DIR>",
                "[default: ./data]",
                "--out <FILE>",
                "--size-mib <N>",
                "[default: 256, with --quick 8]",
                "[unit: MiB]",
                "--quick",
                "--json",
                "--force",
                "[env: WEIR_TUNE_SIZE_MIB=]",
            ],
        ),
        ("templates", &["--out <DIR>", "--force", "[env: WEIR_TUNE_OUT=]"]),
    ];
    for (command, needles) in expected {
        let output = Command::new(weir_tune())
            .args([command, "--help"])
            .env_remove("WEIR_TUNE_SIZE_MIB")
            .env_remove("WEIR_TUNE_OUT")
            .output()
            .expect("run weir-tune");
        assert_eq!(output.status.code(), Some(0));
        let help = text(&output.stdout);
        let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for needle in *needles {
            assert!(
                flat.contains(needle),
                "{needle} missing from {command} --help:\n{help}"
            );
        }
    }
    let version = run(&["--version"]);
    assert_eq!(
        text(&version.stdout).trim(),
        format!("weir-tune {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["frobnicate"][..],
        &["check", "--cores", "many"],
        &["check", "--cores"],
        &["check", "--out", "x"],
        &["disk", "--quick=yes"],
        &["disk", "stray"],
    ] {
        let output = run(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&output.stderr)
        );
        assert!(!output.stderr.is_empty(), "{args:?}: no message");
    }
}

#[test]
fn variables_set_flags_and_weirs_own_variables_reach_its_parser() {
    let dir = temp_dir("wt-env-");
    let config = dir.path().join("bad.toml");
    fs::write(&config, "segment_bytes = 10\n").unwrap();
    // WEIR_TUNE_CONFIG is `check --config`: weir's parser refuses the file.
    let output = run_with_env(&["check"], &[("WEIR_TUNE_CONFIG", config.to_str().unwrap())]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("segment_bytes"),
        "{}",
        text(&output.stderr)
    );
    // weir's WEIR_<OPTION> variables apply as they would to `weir`.
    let output = run_with_env(&["check"], &[("WEIR_SEGMENT_BYTES", "10")]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("segment_bytes"),
        "{}",
        text(&output.stderr)
    );

    // WEIR_TUNE_OUT and WEIR_TUNE_FORCE are `templates --out DIR --force`.
    let out = dir.path().join("os");
    let env = [
        ("WEIR_TUNE_OUT", out.to_str().unwrap()),
        ("WEIR_TUNE_FORCE", "true"),
    ];
    for _ in 0..2 {
        let output = run_with_env(&["templates"], &env);
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    assert!(out.join("weir.service").is_file());
}
