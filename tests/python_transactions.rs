//! Transactions with confluent-kafka (Python over librdkafka, the client
//! most Python users have). The scenarios are in
//! `tests/python/transactions_*.py`; this file starts the broker, creates
//! the topics, runs the scripts and, for the consume-transform-produce
//! scenario, SIGKILLs the application while one of its transactions is open.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    assert_confluent_kafka_installed, create_topic, produce_all_acked, read_tail, run_python_script,
    send_signal, temp_dir, wait_with_timeout, Broker, BrokerOptions, TestMessage,
};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a killed-to-be application instance may take to commit its
/// first batches and open the transaction it dies in.
const OPEN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(120);
/// Input records of the consume-transform-produce scenario.
const CTP_INPUT_RECORDS: usize = 300;
/// Application instances SIGKILLed with a transaction open before the one
/// that finishes.
const CTP_KILLED_INSTANCES: usize = 2;

/// Timed-out transactions are found within 200 ms; small internal topics;
/// groups form without the initial rebalance delay.
const TXN_BROKER_CONFIG: &str = "transaction_abort_timed_out_transaction_cleanup_interval_ms = 200\n\
                                 transaction_state_topic_partitions = 4\n\
                                 offsets_topic_partitions = 4\n\
                                 group_initial_rebalance_delay_ms = 0\n";

fn start_broker() -> Broker {
    Broker::start_with(BrokerOptions {
        config_toml: Some(TXN_BROKER_CONFIG.to_string()),
        ..BrokerOptions::default()
    })
}

fn script_path(script: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script)
}

/// A Python script running in the background, output captured to files.
struct Script {
    child: Option<Child>,
    name: String,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

impl Script {
    fn spawn(logs: &Path, label: &str, script: &str, args: &[&str]) -> Script {
        let stdout_path = logs.join(format!("{label}-stdout.log"));
        let stderr_path = logs.join(format!("{label}-stderr.log"));
        let child = Command::new("python3")
            .arg(script_path(script))
            .args(args)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout_path).expect("stdout file"))
            .stderr(fs::File::create(&stderr_path).expect("stderr file"))
            .spawn()
            .expect("spawn python3");
        Script {
            child: Some(child),
            name: format!("{label} ({script} {args:?})"),
            stdout_path,
            stderr_path,
        }
    }

    fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    fn output(&self) -> String {
        format!(
            "--- {} stdout ---\n{}\n--- stderr ---\n{}",
            self.name,
            read_tail(&self.stdout_path, 16 * 1024),
            read_tail(&self.stderr_path, 64 * 1024)
        )
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("script still owned")
    }

    /// Waits until `ready` holds for the script's stdout; panics if the
    /// script exits first or the timeout passes.
    fn wait_for_stdout(&mut self, timeout: Duration, what: &str, ready: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if ready(&self.stdout()) {
                return;
            }
            if let Some(status) = self.child().try_wait().expect("try_wait on python3") {
                panic!("{what}: script exited with {status} first\n{}", self.output());
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {timeout:?}\n{}",
                self.output()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL, by this child's pid.
    fn kill9(&mut self) {
        let mut child = self.child.take().expect("script still owned");
        send_signal(&child, libc::SIGKILL);
        let status =
            wait_with_timeout(&mut child, Duration::from_secs(30)).expect("python3 dies after SIGKILL");
        eprintln!("{} killed: {status}\n{}", self.name, self.output());
    }

    /// Waits for a clean exit (status 0) within `timeout`.
    fn wait_success(&mut self, timeout: Duration) {
        let status = wait_with_timeout(self.child(), timeout);
        let output = self.output();
        let status = status.unwrap_or_else(|| panic!("{} ran longer than {timeout:?}\n{output}", self.name));
        self.child = None;
        assert!(status.success(), "{} exited with {status}\n{output}", self.name);
        eprintln!("{output}");
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Commit, abort, commit over two partitions (read_committed gets exactly
/// the committed records at offsets that skip the markers,
/// read_uncommitted all of them), then fencing by a second producer with
/// the same transactional.id. See `tests/python/transactions_commit_abort.py`.
#[test]
fn confluent_kafka_transactions_commit_abort_and_fencing() {
    assert_confluent_kafka_installed();
    let broker = start_broker();
    let topic = "py-txn-commit-abort";
    let fencing_topic = "py-txn-fencing";
    create_topic(&broker.bootstrap(), topic, 2, &[]);
    create_topic(&broker.bootstrap(), fencing_topic, 1, &[]);
    run_python_script(
        &broker.bootstrap(),
        "transactions_commit_abort.py",
        &[topic, fencing_topic],
        SCRIPT_TIMEOUT,
    );
}

/// Consume-transform-produce with `send_offsets_to_transaction`: the
/// application (`transactions_ctp_app.py`) is SIGKILLed twice while a
/// transaction is open, its records written and flushed; each new instance
/// with the same transactional.id and group fences the previous one and
/// resumes at the group's committed offsets. In the end the output, read
/// committed, holds every input record transformed exactly once, in order
/// (`transactions_ctp_verify.py`).
#[test]
fn confluent_kafka_consume_transform_produce_is_exactly_once_across_sigkills_of_the_application() {
    assert_confluent_kafka_installed();
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    let input = "py-ctp-input";
    let output = "py-ctp-output";
    let group = "py-ctp-group";
    let transactional_id = "py-ctp-app";
    create_topic(&bootstrap, input, 2, &[]);
    create_topic(&bootstrap, output, 2, &[]);
    let inputs: Vec<TestMessage> = (0..CTP_INPUT_RECORDS)
        .map(|i| {
            TestMessage::keyed(
                (i % 2) as i32,
                format!("in-{i:04}"),
                format!("input record {i:04}"),
            )
        })
        .collect();
    produce_all_acked(&bootstrap, "all", input, &inputs);

    let logs = temp_dir("weir-python-ctp-");
    let app_args = |mode: &'static str| -> Vec<String> {
        [bootstrap.as_str(), input, output, group, transactional_id, mode]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    for instance in 0..CTP_KILLED_INSTANCES {
        let args = app_args("slow");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut app = Script::spawn(
            logs.path(),
            &format!("killed-{instance}"),
            "transactions_ctp_app.py",
            &args,
        );
        // Two commits, then the next transaction written and open.
        app.wait_for_stdout(
            OPEN_TRANSACTION_TIMEOUT,
            "two commits and an open transaction",
            |stdout| {
                let lines: Vec<&str> = stdout.lines().collect();
                let commits = lines.iter().filter(|line| line.starts_with("committed ")).count();
                commits >= 2 && lines.last().is_some_and(|line| line.starts_with("open "))
            },
        );
        app.kill9();
    }

    let args = app_args("finish");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut app = Script::spawn(logs.path(), "finishing", "transactions_ctp_app.py", &args);
    app.wait_success(SCRIPT_TIMEOUT);

    let count = CTP_INPUT_RECORDS.to_string();
    let aborted_min = CTP_KILLED_INSTANCES.to_string();
    run_python_script(
        &bootstrap,
        "transactions_ctp_verify.py",
        &[input, output, group, &count, &aborted_min],
        SCRIPT_TIMEOUT,
    );
}
