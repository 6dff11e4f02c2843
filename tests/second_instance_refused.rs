//! Only one weir per port and per data directory.
//!
//! weir's listeners use SO_REUSEPORT, so the kernel would happily let a
//! second broker bind the same port and split connections between the two;
//! and two brokers on one data directory would corrupt each other's logs.
//! A second instance must notice either clash, say so on stderr and exit
//! non-zero, leaving the first one untouched. So must a weir whose shards
//! cannot all get their own port (`advertise_shards`).

mod common;

use std::path::Path;

use common::wire::Connection;
use common::{
    assert_broker_serves_clients, broker_args, consume_exact, create_topic, free_port, produce_all_acked,
    read_tail, spawn_weir, wait_with_timeout, Broker, BrokerOptions, TestMessage, BROKER_START_TIMEOUT,
};

/// Runs a second weir with `args` and returns its exit status and stderr.
/// It must exit by itself within the startup timeout.
fn run_second_instance(args: &[String]) -> (std::process::ExitStatus, String) {
    let logs = common::temp_dir("weir-second-instance-");
    let stderr_path = logs.path().join("second-stderr.log");
    let mut child = spawn_weir(args, &[], &logs.path().join("second-stdout.log"), &stderr_path);
    let status = match wait_with_timeout(&mut child, BROKER_START_TIMEOUT) {
        Some(status) => status,
        None => {
            common::send_signal(&child, libc::SIGKILL);
            let _ = child.wait();
            panic!(
                "second weir ({args:?}) was still running after {BROKER_START_TIMEOUT:?}; stderr:\n{}",
                read_tail(&stderr_path, 16 * 1024)
            );
        }
    };
    (status, read_tail(&stderr_path, 64 * 1024))
}

/// Many fresh connections all reach the first broker and are answered.
fn assert_every_connection_served(broker: &Broker) {
    for _ in 0..20 {
        Connection::open(broker.socket_addr()).ping();
    }
}

#[test]
fn second_broker_on_the_same_port_is_refused() {
    let first = Broker::start();
    let other_data = common::temp_dir("weir-other-data-");
    let args = broker_args(first.port(), first.port(), free_port(), other_data.path());
    let (status, stderr) = run_second_instance(&args);
    assert!(
        !status.success(),
        "second weir on port {} exited with {status}",
        first.port()
    );
    assert!(
        stderr.contains(&first.port().to_string()),
        "stderr of the refused weir should name the port {}:\n{stderr}",
        first.port()
    );
    assert_every_connection_served(&first);
    assert_broker_serves_clients(&first.bootstrap(), "after-port-clash");
}

#[test]
fn second_broker_on_the_same_data_dir_is_refused() {
    let mut first = Broker::start();
    let topic = "owned-by-first";
    create_topic(&first.bootstrap(), topic, 1, &[]);
    let messages: Vec<TestMessage> = (0..100)
        .map(|i| TestMessage::keyed(0, format!("k{i}"), format!("v{i}")))
        .collect();
    produce_all_acked(&first.bootstrap(), "all", topic, &messages);

    let other_port = free_port();
    let args = broker_args(other_port, other_port, free_port(), first.data_dir());
    let (status, stderr) = run_second_instance(&args);
    assert!(
        !status.success(),
        "second weir on {} exited with {status}",
        first.data_dir().display()
    );
    assert!(
        stderr.contains(&first.data_dir().display().to_string()),
        "stderr of the refused weir should name the data dir {}:\n{stderr}",
        first.data_dir().display()
    );

    // The first broker still owns its data and serves it.
    assert_every_connection_served(&first);
    let consumed = consume_exact(&first.bootstrap(), topic, &[(0, 100)]);
    for (offset, got) in consumed[&0].iter().enumerate() {
        assert!(got.matches(&messages[offset]), "offset {offset}: {got:?}");
    }

    // Once the first stops cleanly, the directory is free for another broker
    // (different port), which finds the same records.
    first.stop();
    let data_dir: &Path = first.data_dir();
    let second = Broker::start_with(BrokerOptions {
        data_dir: Some(data_dir.to_path_buf()),
        ..BrokerOptions::default()
    });
    let consumed = consume_exact(&second.bootstrap(), topic, &[(0, 100)]);
    for (offset, got) in consumed[&0].iter().enumerate() {
        assert!(
            got.matches(&messages[offset]),
            "after handover, offset {offset}: {got:?}"
        );
    }
}

#[test]
fn a_taken_shard_port_an_admin_listener_on_one_or_one_past_65535_stops_an_advertise_shards_start() {
    // Shard 1's port (listen + 1) is held by someone else.
    let base = common::free_port_run(2);
    let _holder = std::net::TcpListener::bind(("127.0.0.1", base + 1)).expect("hold shard 1's port");
    let data = common::temp_dir("weir-shard-port-");
    let mut args = broker_args(base, base, free_port(), data.path());
    args.extend(["--advertise-shards".into(), "true".into()]);
    let (status, stderr) = run_second_instance(&args);
    assert!(
        !status.success(),
        "weir with shard 1's port taken exited with {status}"
    );
    assert!(
        stderr.contains(&format!("127.0.0.1:{}", base + 1)) && stderr.contains("shard 1"),
        "stderr should name shard 1's port {}:\n{stderr}",
        base + 1
    );

    // The admin listener on shard 1's port.
    let base = common::free_port_run(2);
    let mut args = broker_args(base, base, base + 1, data.path());
    args.extend(["--advertise-shards".into(), "true".into()]);
    let (status, stderr) = run_second_instance(&args);
    assert!(
        !status.success(),
        "weir with its admin listener on shard 1's port exited with {status}"
    );
    assert!(
        stderr.contains("admin_listen") && stderr.contains("shard 1"),
        "{stderr}"
    );

    // The last port: shard 1 would need 65536.
    let mut args = broker_args(65535, 65535, free_port(), data.path());
    args.extend(["--advertise-shards".into(), "true".into()]);
    let (status, stderr) = run_second_instance(&args);
    assert!(
        !status.success(),
        "weir on port 65535 with 2 shards exited with {status}"
    );
    assert!(stderr.contains("past 65535"), "{stderr}");
}
