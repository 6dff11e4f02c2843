//! A second, independent client implementation: kafka-python (pure Python,
//! its own protocol code) must create a topic, produce and consume exactly.
//! See `tests/python/kafka_python_roundtrip.py` for what it checks.

mod common;

use std::time::Duration;

use common::{assert_kafka_python_installed, run_python_script, Broker};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

#[test]
fn kafka_python_creates_produces_and_consumes_exactly() {
    assert_kafka_python_installed();
    let broker = Broker::start();
    run_python_script(
        &broker.bootstrap(),
        "kafka_python_roundtrip.py",
        &[],
        SCRIPT_TIMEOUT,
    );
}
