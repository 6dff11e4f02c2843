//! The idempotent producer of confluent-kafka (Python over librdkafka, the
//! client most Python users have): it must obtain a producer id, get every
//! message acknowledged at the offset its sequence implies, and the log must
//! hold each message exactly once, in order. See
//! `tests/python/idempotent_producer.py` for what it checks.

mod common;

use std::time::Duration;

use common::{assert_confluent_kafka_installed, create_topic, run_python_script, Broker};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

#[test]
fn confluent_kafka_idempotent_producer_writes_every_message_exactly_once_in_order() {
    assert_confluent_kafka_installed();
    let broker = Broker::start();
    let topic = "py-idempotent";
    create_topic(&broker.bootstrap(), topic, 3, &[]);
    run_python_script(
        &broker.bootstrap(),
        "idempotent_producer.py",
        &[topic, "3", "6000"],
        SCRIPT_TIMEOUT,
    );
}
