//! weir-bench against the real weir broker: `produce`, then `consume` from
//! the earliest offset, then `e2e`, each writing a report directory; a
//! backlog of exactly `--messages` messages read back whole; a `sweep` of
//! two rates over two brokers; and the command line's error handling.
//!
//! The broker binary is the workspace's `weir`, next to `weir-bench` in the
//! same target directory (`cargo test --workspace` builds both). It runs on
//! a free loopback port with a scratch data directory and is killed by PID
//! when the test ends, whatever happens (a Drop guard, and
//! PR_SET_PDEATHSIG in case the test process itself dies).
//!
//! Nothing here asserts a timing: only exit codes, file formats and counts.

use std::{
    fs,
    net::{TcpListener, TcpStream},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

const BROKER_START_TIMEOUT: Duration = Duration::from_secs(30);

fn weir_bench() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_weir-bench"))
}

fn weir() -> PathBuf {
    let path = weir_bench().with_file_name("weir");
    assert!(
        path.exists(),
        "the weir broker binary is missing at {}: build the whole workspace first \
         (`cargo build --release --workspace`, or run `cargo test --release --workspace`)",
        path.display()
    );
    path
}

fn scratch_dir(name: &str) -> PathBuf {
    // Under Cargo's target tmp dir, not /tmp: that may be tmpfs, which has
    // no O_DIRECT for weir's storage.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("probe a free port")
        .port()
}

/// A running weir, killed when dropped.
struct Broker {
    child: Child,
    address: String,
    log: PathBuf,
}

impl Broker {
    /// `http://HOST:PORT` of the broker's admin listener (bound to port 0:
    /// weir logs the address it got).
    fn admin_url(&self) -> String {
        let text = self.log_text();
        let address = text
            .lines()
            .find_map(|line| line.split("weir admin HTTP on ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no admin address in the log:\n{text}"));
        format!("http://{address}")
    }
}

impl Broker {
    /// Starts weir on a port that was free a moment ago. Tests run in
    /// parallel, so another test's broker may take that port first: weir
    /// then exits with "Address already in use" and a fresh port is tried.
    /// A broker counts as started only once its own log says it serves (a
    /// connect alone could reach another test's broker on the same port).
    fn start(scratch: &Path) -> Broker {
        const ATTEMPTS_MAX: usize = 5;
        for _ in 0..ATTEMPTS_MAX {
            if let Some(broker) = Broker::try_start(scratch, free_port()) {
                return broker;
            }
        }
        panic!("weir found no free port in {ATTEMPTS_MAX} attempts");
    }

    /// `None` when the port was taken before weir could bind it.
    fn try_start(scratch: &Path, port: u16) -> Option<Broker> {
        let address = format!("127.0.0.1:{port}");
        let log = scratch.join("weir.log");
        let mut command = Command::new(weir());
        command
            .args([
                "--listen",
                &address,
                "--admin-listen",
                "127.0.0.1:0",
                "--cores",
                "1",
                "--data-dir",
            ])
            .arg(scratch.join("data"))
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("broker log file"));
        // SAFETY: prctl is async-signal-safe; this only asks the kernel to
        // kill the broker if the test process dies first.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn().expect("spawn weir");
        let mut broker = Broker { child, address, log };
        let deadline = Instant::now() + BROKER_START_TIMEOUT;
        loop {
            let text = broker.log_text();
            if let Some(status) = broker.child.try_wait().expect("try_wait on weir") {
                if text.contains("Address already in use") {
                    return None;
                }
                panic!("weir exited during startup with {status}:\n{text}");
            }
            if text.contains("weir serving Kafka on") && TcpStream::connect(&broker.address).is_ok() {
                return Some(broker);
            }
            assert!(
                Instant::now() < deadline,
                "weir did not listen within 30 s:\n{text}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_bench(args: &[&str]) -> Output {
    Command::new(weir_bench())
        .args(args)
        .output()
        .expect("run weir-bench")
}

fn run_scenario(broker: &Broker, scenario: &str, report_dir: &Path, extra: &[&str]) -> Value {
    let report_dir_text = report_dir.to_str().expect("utf-8 path");
    let mut args = vec![
        scenario,
        "--bootstrap",
        &broker.address,
        "--topic",
        "bench-it",
        "--partitions",
        "4",
        "--message-bytes",
        "512",
        "--acks",
        "1",
        "--threads",
        "2",
        "--report-dir",
        report_dir_text,
        "--progress",
        "false",
    ];
    args.extend_from_slice(extra);
    let output = run_bench(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "weir-bench {scenario} failed\nstdout:\n{stdout}\nstderr:\n{stderr}\nbroker log:\n{}",
        broker.log_text()
    );
    assert!(
        stdout.contains("MB/s") && stdout.contains("p99"),
        "human summary missing:\n{stdout}"
    );
    check_report_dir(report_dir)
}

/// Every file of a report directory exists and is well-formed; returns
/// the parsed report.json.
fn check_report_dir(dir: &Path) -> Value {
    let text = fs::read_to_string(dir.join("report.json")).expect("report.json");
    let report: Value = serde_json::from_str(&text).expect("report.json is JSON");
    assert_eq!(report["schema_version"], 2);
    for field in [
        "params",
        "host",
        "broker",
        "summary",
        "flows",
        "validation",
        "time_series",
        "run",
    ] {
        assert!(!report[field].is_null(), "report.json lacks {field}");
    }
    for field in [
        "cpu_model",
        "cpu_cores_online",
        "memory_bytes",
        "kernel_version",
        "hostname",
    ] {
        assert!(!report["host"][field].is_null(), "host.{field}");
    }
    assert!(report["broker"]["brokers"][0]["api_versions"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    assert!(report["broker"]["bootstrap"].is_string());
    let summary = &report["summary"];
    for field in [
        "messages",
        "bytes",
        "throughput_mb_per_s",
        "throughput_msgs_per_s",
        "errors",
    ] {
        assert!(summary[field].is_number(), "summary.{field}");
    }
    for field in ["p50", "p90", "p99", "p999", "p9999", "max"] {
        assert!(
            summary["latency_us"][field].is_u64(),
            "summary.latency_us.{field}"
        );
    }
    let p50 = summary["latency_us"]["p50"].as_u64().unwrap_or(0);
    let max = summary["latency_us"]["max"].as_u64().unwrap_or(0);
    assert!(p50 <= max, "p50 {p50} > max {max}");
    for (flow, series) in report["time_series"].as_object().expect("time_series object") {
        let points = series.as_array().expect("series array");
        assert!(!points.is_empty(), "empty time series for {flow}");
        for point in points {
            assert!(point["throughput_mb_per_s"].is_number() && point["elapsed_s"].is_u64());
        }
    }

    let hgrm = fs::read_to_string(dir.join("latency.hgrm")).expect("latency.hgrm");
    check_hgrm(&hgrm, summary["latency_us"]["p50"].as_u64().unwrap_or(0) > 0);
    // stages.svg only with the broker's stages in the report.
    let mut charts = vec!["latency_percentiles.svg", "throughput.svg"];
    if report["server_stats"].is_object() {
        charts.push("stages.svg");
    }
    for chart in charts {
        let svg = fs::read_to_string(dir.join(chart)).unwrap_or_else(|e| panic!("{chart}: {e}"));
        check_svg(&svg).unwrap_or_else(|e| panic!("{chart} is not well-formed: {e}"));
    }
    report
}

/// The HdrHistogram percentile distribution layout.
fn check_hgrm(text: &str, expect_rows: bool) {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header line").split_whitespace().collect();
    assert_eq!(header, ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]);
    assert_eq!(lines.next(), Some(""));
    let mut rows = Vec::new();
    let mut footer = Vec::new();
    for line in lines {
        if line.starts_with("#[") {
            footer.push(line);
            continue;
        }
        let fields: Vec<f64> = line
            .split_whitespace()
            .map(|f| f.parse().expect("numeric field"))
            .collect();
        assert!(fields.len() == 4 || fields.len() == 3, "row `{line}`");
        rows.push(fields);
    }
    assert_eq!(footer.len(), 3, "footer: {footer:?}");
    assert!(footer[0].starts_with("#[Mean    =") && footer[1].starts_with("#[Max     ="));
    assert!(footer[2].starts_with("#[Buckets ="));
    if expect_rows {
        assert!(!rows.is_empty());
        assert!(rows
            .windows(2)
            .all(|w| w[0][0] <= w[1][0] && w[0][1] <= w[1][1] && w[0][2] <= w[1][2]));
        assert_eq!(
            rows.last().map(|r| (r.len(), r[1])),
            Some((3, 1.0)),
            "last row is the 100th percentile"
        );
    }
}

/// Balanced tags under exactly one `<svg>` root.
fn check_svg(text: &str) -> Result<(), String> {
    let body = match text.trim_start().strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").ok_or("unterminated XML declaration")?.1,
        None => text,
    };
    if !body.trim_start().starts_with("<svg") || !body.trim_end().ends_with("</svg>") {
        return Err("not an <svg> document".into());
    }
    let mut stack = Vec::new();
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').ok_or("unterminated tag")? + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            match stack.pop() {
                Some(expected) if expected == name.trim() => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
            if stack.is_empty() && !rest.trim().is_empty() {
                return Err("content after the root element".into());
            }
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().unwrap_or_default().to_string());
        }
    }
    if stack.is_empty() {
        Ok(())
    } else {
        Err(format!("unclosed {stack:?}"))
    }
}

fn count(report: &Value, pointer: &str) -> u64 {
    report
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} missing"))
}

#[test]
fn produce_then_consume_then_e2e_write_consistent_reports() {
    let scratch = scratch_dir("weir-bench-it");
    let broker = Broker::start(&scratch);

    let produce = run_scenario(
        &broker,
        "produce",
        &scratch.join("produce"),
        &["--duration-s", "3", "--warmup-s", "1", "--rate", "3000"],
    );
    let produced = count(&produce, "/validation/records_produced");
    assert!(produced > 0, "nothing was produced");

    // With the broker's admin URL, the report holds its per-stage latency
    // for the run: every acknowledged request went through each stage.
    let admin_url = broker.admin_url();
    let staged = run_scenario(
        &broker,
        "produce",
        &scratch.join("produce-staged"),
        &[
            "--duration-s",
            "2",
            "--warmup-s",
            "0",
            "--rate",
            "2000",
            "--broker-admin",
            &admin_url,
        ],
    );
    let stages = &staged["server_stats"]["Produce"];
    for stage in ["decode", "queue", "handler", "append", "respond"] {
        assert!(
            stages[stage]["count"].as_u64().is_some_and(|c| c > 0),
            "stage {stage}: {stages}"
        );
        assert!(stages[stage]["p99"]
            .as_f64()
            .is_some_and(|p| p >= stages[stage]["p50"].as_f64().unwrap_or(0.0)));
    }
    assert_eq!(stages["decode"]["count"], stages["handler"]["count"]);
    assert!(stages["fsync"].is_null(), "acks=1 waits for no fsync: {stages}");
    // ... and stages.svg puts the client's latency beside those stages.
    let chart = fs::read_to_string(scratch.join("produce-staged/stages.svg")).expect("stages.svg");
    for label in [
        "client produce (produce_ack)",
        "Produce decode",
        "Produce queue",
        "Produce handler",
        "Produce append",
        "Produce respond",
        "p50",
        "p99",
        "p99.9",
    ] {
        assert!(
            chart.contains(&format!("\n{label}\n</text>")),
            "stages.svg lacks {label}"
        );
    }
    assert!(!chart.contains("Produce fsync"));
    assert!(!chart.contains("Fetch "), "a produce run used no Fetch");
    assert_eq!(staged["files"]["stages_svg"], "stages.svg");
    let off = run_scenario(
        &broker,
        "produce",
        &scratch.join("produce-off"),
        &[
            "--duration-s",
            "1",
            "--warmup-s",
            "0",
            "--rate",
            "1000",
            "--broker-admin",
            "off",
        ],
    );
    assert!(off["server_stats"].is_null());
    assert!(off["files"]["stages_svg"].is_null());
    assert!(!scratch.join("produce-off/stages.svg").exists());
    assert!(count(&produce, "/summary/messages") <= produced);
    assert_eq!(produce["summary"]["flow"], "produce");
    assert_eq!(produce["run"]["mode"], "open_loop");
    assert_eq!(produce["broker"]["partitions"], 4);

    let consume = run_scenario(
        &broker,
        "consume",
        &scratch.join("consume"),
        &["--duration-s", "20", "--warmup-s", "0"],
    );
    let consumed = count(&consume, "/validation/records_consumed");
    assert!(
        consumed >= produced,
        "consume read {consumed} records, produce wrote {produced}"
    );
    assert_eq!(consume["validation"]["caught_up"], true);
    assert_eq!(consume["validation"]["crc_errors"], 0);
    assert_eq!(consume["summary"]["latency_kind"], "fetch_round_trip");

    let e2e = run_scenario(
        &broker,
        "e2e",
        &scratch.join("e2e"),
        &["--duration-s", "3", "--warmup-s", "1", "--rate", "2000"],
    );
    let (e2e_produced, e2e_consumed) = (
        count(&e2e, "/validation/records_produced"),
        count(&e2e, "/validation/records_consumed"),
    );
    assert!(e2e_produced > 0);
    assert_eq!(
        e2e_consumed, e2e_produced,
        "every produced record is consumed exactly once"
    );
    assert_eq!(count(&e2e, "/validation/records_missing"), 0);
    assert_eq!(e2e["validation"]["passed"], true);
    assert_eq!(e2e["summary"]["latency_kind"], "end_to_end");
    assert!(e2e["flows"]["produce"].is_object() && e2e["flows"]["consume"].is_object());
    check_hgrm(
        &fs::read_to_string(scratch.join("e2e/produce_latency.hgrm")).expect("produce_latency.hgrm"),
        true,
    );

    drop(broker);
    let _ = fs::remove_dir_all(&scratch);
}

#[test]
fn a_message_limit_produces_exactly_that_many_and_consume_reads_them_back() {
    let scratch = scratch_dir("weir-bench-messages");
    let broker = Broker::start(&scratch);
    // 2 producers x 2 connections: the limit is split over 4 connections
    // (1001 is not a multiple of 4), closed loop, with a duration far
    // beyond what 1001 messages take: the limit ends the run.
    let produce = run_scenario(
        &broker,
        "produce",
        &scratch.join("produce"),
        &[
            "--messages",
            "1001",
            "--producers",
            "2",
            "--connections",
            "2",
            "--duration-s",
            "120",
            "--warmup-s",
            "0",
        ],
    );
    assert_eq!(count(&produce, "/validation/records_produced"), 1001);
    assert_eq!(count(&produce, "/summary/messages"), 1001);
    assert_eq!(count(&produce, "/summary/errors"), 0);
    assert_eq!(produce["params"]["messages"], 1001);
    assert_eq!(produce["run"]["mode"], "closed_loop");

    let consume = run_scenario(
        &broker,
        "consume",
        &scratch.join("consume"),
        &["--duration-s", "60", "--warmup-s", "0"],
    );
    assert_eq!(count(&consume, "/validation/records_consumed"), 1001);
    assert_eq!(consume["validation"]["caught_up"], true);
    let end_offsets: u64 = consume["validation"]["end_offsets"]
        .as_array()
        .expect("end_offsets")
        .iter()
        .map(|offset| offset.as_u64().expect("offset"))
        .sum();
    assert_eq!(end_offsets, 1001, "the partitions hold exactly the limit");

    drop(broker);
    let _ = fs::remove_dir_all(&scratch);
}

#[test]
fn sweep_runs_every_rate_on_two_brokers_and_draws_the_curve() {
    let scratch = scratch_dir("weir-bench-sweep");
    let brokers: Vec<Broker> = ["a", "b"]
        .iter()
        .map(|side| {
            let dir = scratch.join(side);
            fs::create_dir_all(&dir).expect("broker scratch dir");
            Broker::start(&dir)
        })
        .collect();
    let report_dir = scratch.join("sweep");
    // Rates out of order: the sweep runs them ascending.
    let output = run_bench(&[
        "sweep",
        "--rates",
        "400,200",
        "--bootstrap",
        &brokers[0].address,
        "--bootstrap-b",
        &brokers[1].address,
        "--label-a",
        "weir-one",
        "--label-b",
        "weir-two",
        "--runs",
        "1",
        "--duration-s",
        "1",
        "--warmup-s",
        "0",
        "--topic",
        "bench-sweep",
        "--partitions",
        "2",
        "--message-bytes",
        "256",
        "--threads",
        "1",
        "--broker-admin",
        "off",
        "--progress",
        "false",
        "--report-dir",
        report_dir.to_str().expect("utf-8 path"),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "weir-bench sweep failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let position = |text: &str| stderr.find(text).unwrap_or_else(|| panic!("{text}: {stderr}"));
    assert!(
        position("sweep at 200 msgs/s: run 1/1 on weir-one")
            < position("sweep at 200 msgs/s: run 1/1 on weir-two")
            && position("sweep at 200 msgs/s: run 1/1 on weir-two")
                < position("sweep at 400 msgs/s: run 1/1 on weir-one"),
        "A then B, rates ascending: {stderr}"
    );
    // The table: a row per rate, each side sustained.
    for rate in ["200", "400"] {
        let row = stdout
            .lines()
            .find(|line| line.split_whitespace().next() == Some(rate))
            .unwrap_or_else(|| panic!("no row for {rate}:\n{stdout}"));
        assert_eq!(row.matches("yes").count(), 2, "{row}");
    }

    let text = fs::read_to_string(report_dir.join("sweep.json")).expect("sweep.json");
    let sweep: Value = serde_json::from_str(&text).expect("sweep.json is JSON");
    assert_eq!(sweep["scenario"], "produce");
    assert_eq!(sweep["rates_msgs_per_s"], serde_json::json!([200.0, 400.0]));
    assert_eq!(sweep["sustained_fraction"], 0.95);
    assert_eq!(sweep["brokers"][0]["label"], "weir-one");
    assert_eq!(sweep["brokers"][1]["bootstrap"], brokers[1].address.as_str());
    let points = sweep["points"].as_array().expect("points");
    assert_eq!(points.len(), 2);
    for (point, rate) in points.iter().zip([200.0, 400.0]) {
        assert_eq!(point["target_msgs_per_s"], rate);
        for (side, label) in [("A", "weir-one"), ("B", "weir-two")] {
            let at = &point["sides"][side];
            assert_eq!(at["label"], label, "{point}");
            assert_eq!(at["sustained"], true, "{rate} msgs/s on {side}: {at}");
            assert_eq!(at["validation_passed"], true);
            let median = &at["median"];
            let achieved = median["throughput_msgs_per_s"].as_f64().expect("msgs/s");
            assert!(achieved >= 0.95 * rate, "{achieved} of {rate}");
            assert!(median["throughput_mb_per_s"].as_f64().is_some_and(|mb| mb > 0.0));
            for metric in [
                "latency_us_p50",
                "latency_us_p90",
                "latency_us_p99",
                "latency_us_p999",
                "latency_us_max",
            ] {
                assert!(
                    median[metric].as_f64().is_some_and(|us| us > 0.0),
                    "{metric}: {median}"
                );
            }
            assert_eq!(median["errors"], 0.0);
            let runs = at["runs"].as_array().expect("runs");
            assert_eq!(runs.len(), 1);
            assert_eq!(runs[0]["summary"]["flow"], "produce");
            // Each run wrote its full report, labelled.
            let run_dir = PathBuf::from(runs[0]["report_dir"].as_str().expect("report_dir"));
            assert!(
                run_dir.ends_with(format!("rate-{rate}/run-1-{side}")),
                "{run_dir:?}"
            );
            let report = check_report_dir(&run_dir);
            assert_eq!(report["label"], label);
            assert_eq!(report["params"]["rate_msgs_per_s"], rate);
            assert_eq!(report["run"]["mode"], "open_loop");
        }
    }

    let chart = fs::read_to_string(report_dir.join("sweep_latency_vs_throughput.svg")).expect("chart");
    check_svg(&chart).unwrap_or_else(|e| panic!("the sweep chart is not well-formed: {e}"));
    for label in ["weir-one", "weir-two", "p50", "p99", "p99.9", "200/s", "400/s"] {
        assert!(
            chart.contains(&format!("\n{label}\n</text>")),
            "the chart lacks {label}"
        );
    }

    drop(brokers);
    let _ = fs::remove_dir_all(&scratch);
}

#[test]
fn bad_flags_exit_with_code_2_and_help_lists_every_flag() {
    for args in [
        &["produce", "--no-such-flag", "1"][..],
        &["produce", "--acks", "2"],
        &["launch"],
        &[],
    ] {
        let output = run_bench(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("weir-bench:"), "{args:?}: {stderr}");
    }
    let help = run_bench(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--bootstrap ",
        "--bootstrap-b ",
        "--topic ",
        "--partitions ",
        "--message-bytes ",
        "--acks ",
        "--duration-s ",
        "--warmup-s ",
        "--rate ",
        "--messages ",
        "--report-dir ",
        "--batch-bytes ",
        "--linger-ms ",
        "--compression ",
        "--producers ",
        "--consumers ",
        "--connections ",
        "--inflight ",
        "--threads ",
        "--runs ",
        "--from ",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}");
    }
    assert!(text.matches("[default: ").count() >= 20);
}

#[test]
fn an_unreachable_broker_fails_cleanly_with_code_1() {
    let port = free_port(); // nothing listens here
    let address = format!("127.0.0.1:{port}");
    let output = run_bench(&["produce", "--bootstrap", &address, "--request-timeout-ms", "2000"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("connecting to"));
}
