//! A real Prometheus (Debian's package, tests/prometheus/install.sh) against
//! weir's `/metrics`: `promtool check metrics` finds nothing to complain
//! about, and a Prometheus server scraping a test broker every second sees
//! the produce requests the test sent.

mod common;

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use common::{create_topic, free_port, temp_dir, wire, wire::Connection, Broker, BrokerOptions};

const TOPIC: &str = "scraped";

/// GET `url` (http://HOST:PORT/PATH): (status, body); status 0 when
/// nothing listens there (yet).
fn http_get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let Ok(mut stream) = TcpStream::connect(host) else {
        return (0, String::new());
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn produce_requests(broker: &Broker, count: usize) {
    let mut connection = Connection::open(broker.socket_addr());
    for i in 0..count {
        let record = wire::record(0, 1_700_000_000_000, format!("k{i}").as_bytes(), b"v");
        assert_eq!(
            connection
                .produce(TOPIC, 0, 1, wire::encode_batch(&[record]))
                .error_code,
            0
        );
    }
}

#[test]
fn promtool_finds_no_problem_in_the_exposition() {
    let broker = Broker::start_weir(BrokerOptions::default());
    create_topic(&broker.bootstrap(), TOPIC, 2, &[]);
    produce_requests(&broker, 10);
    let (status, metrics) = http_get(&format!("{}/metrics", broker.admin_url()));
    assert_eq!(status, 200);
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (tests/prometheus/install.sh)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(metrics.as_bytes())
        .expect("feed promtool");
    let output = promtool.wait_with_output().expect("promtool");
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool check metrics: {}{}\n{metrics}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn prometheus_scrapes_a_running_broker() {
    let broker = Broker::start_weir(BrokerOptions::default());
    create_topic(&broker.bootstrap(), TOPIC, 1, &[]);
    const REQUESTS: usize = 30;
    produce_requests(&broker, REQUESTS);
    let (_, metrics) = http_get(&format!("{}/metrics", broker.admin_url()));
    let produced: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("weir_requests_total{api=\"Produce\"} "))
        .and_then(|v| v.parse().ok())
        .expect("produce counter");

    let scratch = temp_dir("prometheus-");
    let config = scratch.path().join("prometheus.yml");
    let target = broker.admin_url().trim_start_matches("http://").to_string();
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: weir\n    static_configs:\n      - targets: [\"{target}\"]\n"
        ),
    )
    .expect("write prometheus.yml");
    let port = free_port();
    let log = std::fs::File::create(scratch.path().join("prometheus.log")).expect("log file");
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut prometheus = KillOnDrop(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                scratch.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus (tests/prometheus/install.sh)"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let query = |expr: &str| -> Option<f64> {
        let encoded: String = expr
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                other => format!("%{other:02X}"),
            })
            .collect();
        let (status, body) = http_get(&format!("http://127.0.0.1:{port}/api/v1/query?query={encoded}"));
        if status != 200 {
            return None;
        }
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        json["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    };
    loop {
        let up = query("up{job=\"weir\"}");
        let seen = query("weir_requests_total{api=\"Produce\"}");
        if up == Some(1.0) && seen == Some(produced) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not see the broker within 60 s: up {up:?}, produce requests {seen:?} (want {produced}); log:\n{}",
            std::fs::read_to_string(scratch.path().join("prometheus.log")).unwrap_or_default()
        );
        if let Ok(Some(status)) = prometheus.0.try_wait() {
            panic!("prometheus exited: {status}");
        }
        thread::sleep(Duration::from_millis(500));
    }

    // Every query of the Grafana dashboard runs in this Prometheus; those
    // over series a produce-only broker has return data.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo_path("dashboards/weir.json")).expect("dashboards/weir.json"),
    )
    .expect("dashboard JSON");
    thread::sleep(Duration::from_secs(3)); // rate() needs two samples in its window
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8);
    for target in panels
        .iter()
        .flat_map(|p| p["targets"].as_array().expect("targets"))
    {
        let expr = target["expr"]
            .as_str()
            .expect("expr")
            .replace("$job", "weir")
            .replace("$instance", ".*");
        let encoded: String = expr.bytes().map(|b| format!("%{b:02X}")).collect();
        let (status, body) = http_get(&format!("http://127.0.0.1:{port}/api/v1/query?query={encoded}"));
        assert_eq!(status, 200, "{expr}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("query JSON");
        assert_eq!(json["status"], "success", "{expr}: {body}");
        let has_data = json["data"]["result"].as_array().is_some_and(|r| !r.is_empty());
        // A produce-only broker has no fetches, no group, no coordinator
        // call, no bytes out and no error.
        let expected = [
            "api=\"Fetch\"",
            "weir_fetch_bytes",
            "weir_consumer_group",
            "weir_bytes_out",
            "stage=\"coordinator\"",
            "weir_errors_total",
            "weir_mesh",
        ]
        .iter()
        .all(|absent| !expr.contains(absent));
        assert!(!expected || has_data, "no data for {expr}: {body}");
    }
}
