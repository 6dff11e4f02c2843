//! A second, independent client implementation: kafka-python (pure Python,
//! its own protocol code) must create a topic, produce and consume exactly.
//! See `tests/python/kafka_python_roundtrip.py` for what it checks.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{read_tail, wait_with_timeout, Broker};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

fn script_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/kafka_python_roundtrip.py")
}

/// Fails (never skips) when python3 or kafka-python is missing.
fn assert_kafka_python_installed() {
    let output = Command::new("python3")
        .args(["-c", "import kafka; print(kafka.__version__)"])
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run python3 ({error}): run the README's test command, ./scripts/test.sh, which installs it")
        });
    assert!(
        output.status.success(),
        "kafka-python is not installed for python3: run the README's test command, \
         ./scripts/test.sh, which installs it (pip install -r tests/python/requirements.txt).\n\
         python3 said: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn kafka_python_creates_produces_and_consumes_exactly() {
    assert_kafka_python_installed();
    let broker = Broker::start();
    let logs = common::temp_dir("weir-python-");
    let stdout_path = logs.path().join("python-stdout.log");
    let stderr_path = logs.path().join("python-stderr.log");
    let mut child = Command::new("python3")
        .arg(script_path())
        .arg(broker.bootstrap())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("spawn python3");
    let status = wait_with_timeout(&mut child, SCRIPT_TIMEOUT);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let output = format!(
        "--- script stdout ---\n{}\n--- script stderr ---\n{}",
        read_tail(&stdout_path, 16 * 1024),
        read_tail(&stderr_path, 64 * 1024)
    );
    let status = status.unwrap_or_else(|| panic!("script ran longer than {SCRIPT_TIMEOUT:?}\n{output}"));
    assert!(
        status.success(),
        "kafka-python script exited with {status}\n{output}"
    );
}
