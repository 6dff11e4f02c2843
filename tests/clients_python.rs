//! The pure-Python client matrix: kafka-python 2.x and 3.x (each its own
//! protocol code, the same `kafka` module: 2.x is installed by
//! `tests/python/install.sh` into tests/python/.deps/kafka-python-2 and run
//! with PYTHONPATH pointing there) and aiokafka (asyncio). Each one, through
//! `tests/python/matrix_*.py`:
//!
//! - creates a 3-partition topic with its admin client;
//! - produces keyed records with headers and CreateTimes (every acknowledged
//!   offset checked);
//! - reads them in a consumer group from the earliest offset: exact keys,
//!   values, headers, timestamps and offsets, in order per partition, nothing
//!   more; commits and checks the committed offsets;
//! - after this file restarts the broker: produces more, and a new member of
//!   the same group receives exactly the records after the commits, none
//!   missing, none repeated; offsets by time answer exactly.
//!
//! aiokafka also uses the rest of AIOKafkaAdminClient that both brokers
//! have (describe_cluster; on a scratch topic: a topic config,
//! describe_configs, create_partitions, delete_topics; listing and
//! describing the group), reads with getmany, and goes back with
//! seek_to_committed.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{assert_kafka_python_installed, repo_path, run_client, Broker};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// Where tests/python/install.sh puts kafka-python 2.x.
fn kafka_python_2_dir() -> PathBuf {
    repo_path("tests/python/.deps/kafka-python-2")
}

/// Fails (never skips) when `python3` (with PYTHONPATH=`pythonpath`) cannot
/// import `module`.
fn assert_python_imports(module: &str, pythonpath: &str) {
    let output = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .env("PYTHONPATH", pythonpath)
        .output()
        .unwrap_or_else(|error| panic!("cannot run python3 ({error}): run tests/python/install.sh"));
    assert!(
        output.status.success(),
        "python3 cannot import {module} (PYTHONPATH={pythonpath:?}): run tests/python/install.sh\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `python3 tests/python/<script> BOOTSTRAP args...` with PYTHONPATH
/// set to `pythonpath`; it must exit 0.
fn run_script(broker: &Broker, script: &str, args: &[&str], pythonpath: &str) {
    let mut all_args = vec![
        repo_path("tests/python").join(script).display().to_string(),
        broker.bootstrap(),
    ];
    all_args.extend(args.iter().map(|arg| arg.to_string()));
    run_client(
        "python3",
        &all_args,
        &[("PYTHONPATH", pythonpath)],
        SCRIPT_TIMEOUT,
    );
}

/// The kafka-python scenario with the installation found on `pythonpath`
/// ("" for python3's own site-packages), which must be of `major` version.
fn kafka_python_scenario(major: &str, pythonpath: &str) {
    let mut broker = Broker::start();
    let topic = format!("kafka-python-{major}-matrix");
    let group = format!("kafka-python-{major}-group");
    run_script(
        &broker,
        "matrix_kafka_python.py",
        &[&topic, &group, "first", major],
        pythonpath,
    );
    broker.restart();
    run_script(
        &broker,
        "matrix_kafka_python.py",
        &[&topic, &group, "resume", major],
        pythonpath,
    );
}

#[test]
fn kafka_python_2_produces_consumes_in_a_group_commits_and_resumes_after_restart() {
    let dir = kafka_python_2_dir();
    assert!(
        dir.join("kafka").is_dir(),
        "kafka-python 2 is not installed in {}: run tests/python/install.sh",
        dir.display()
    );
    let pythonpath = dir.display().to_string();
    assert_python_imports("kafka", &pythonpath);
    kafka_python_scenario("2", &pythonpath);
}

#[test]
fn kafka_python_3_produces_consumes_in_a_group_commits_and_resumes_after_restart() {
    assert_kafka_python_installed();
    kafka_python_scenario("3", "");
}

#[test]
fn aiokafka_admin_getmany_commit_seek_to_committed_offset_queries_and_resume_after_restart() {
    assert_python_imports("aiokafka", "");
    let mut broker = Broker::start();
    let (topic, group) = ("aiokafka-matrix", "aiokafka-group");
    run_script(&broker, "matrix_aiokafka.py", &[topic, group, "first"], "");
    broker.restart();
    run_script(&broker, "matrix_aiokafka.py", &[topic, group, "resume"], "");
}
