//! The broker's own view of a run: weir's admin listener (`/v1/latency`).
//!
//! Before the run starts, every stage's interval histogram on the broker is
//! reset; after it, each stage of the APIs the scenario used is read back as
//! `.hgrm` text and summarised (count, p50, p99, p99.9, max in µs), so the
//! report can put the client's latency next to where the broker spent it.
//! The window is the whole run, warm-up included. A broker without the
//! endpoint (Kafka, or weir with `admin_listen` off) is simply left out.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{TcpStream, ToSocketAddrs},
    time::Duration,
};

use serde::Serialize;

/// weir's stages, in the order a request passes them.
pub const STAGES: [&str; 12] = [
    "socket",
    "decode",
    "queue",
    "handler",
    "hop",
    "coordinator",
    "append",
    "fsync",
    "read",
    "wait",
    "paced",
    "respond",
];

/// One stage's latency on the broker, in µs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageLatency {
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// API name → stage → latency (stages without samples are left out).
pub type ServerStats = BTreeMap<String, BTreeMap<String, StageLatency>>;

/// The admin URL to use: the flag's, or `http://<bootstrap host>:9644`;
/// None when turned off.
pub fn url(flag: Option<&str>, bootstrap: &str) -> Option<String> {
    match flag {
        Some("") => None,
        Some(url) => Some(url.to_string()),
        None => {
            let host = bootstrap.split(',').next()?.rsplit_once(':')?.0;
            Some(format!("http://{host}:9644"))
        }
    }
}

/// GET `path` from `url`; None if nothing answers 200 there.
fn get(url: &str, path: &str) -> Option<String> {
    let host = url.strip_prefix("http://")?;
    let addr = host.to_socket_addrs().ok()?.next()?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// Starts a fresh interval on the broker (every API and stage at once).
/// Whether it answered.
pub fn reset(url: &str) -> bool {
    get(url, "/v1/latency?api=Produce&reset=true").is_some()
}

/// Every stage of each of `apis` since the reset.
pub fn read(url: &str, apis: &[&str]) -> Option<ServerStats> {
    let mut stats = ServerStats::new();
    for api in apis {
        let mut stages = BTreeMap::new();
        for stage in STAGES {
            let hgrm = get(url, &format!("/v1/latency?api={api}&stage={stage}"))?;
            if let Some(latency) = parse_hgrm(&hgrm) {
                stages.insert(stage.to_string(), latency);
            }
        }
        stats.insert(api.to_string(), stages);
    }
    Some(stats)
}

/// Summarises HdrHistogram's percentile text; None when it holds nothing.
pub fn parse_hgrm(text: &str) -> Option<StageLatency> {
    // Rows: value, percentile, total count, 1/(1-percentile).
    let rows: Vec<(f64, f64)> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let value = fields.next()?.parse().ok()?;
            let percentile = fields.next()?.parse().ok()?;
            Some((value, percentile))
        })
        .collect();
    let count: u64 = text
        .lines()
        .find_map(|line| line.split("Total count    =").nth(1))
        .and_then(|rest| rest.trim().trim_end_matches(']').trim().parse().ok())?;
    if count == 0 || rows.is_empty() {
        return None;
    }
    let at = |q: f64| {
        rows.iter()
            .find(|(_, percentile)| *percentile >= q)
            .or(rows.last())
            .map_or(0.0, |(value, _)| *value)
    };
    Some(StageLatency {
        count,
        p50: at(0.5),
        p99: at(0.99),
        p999: at(0.999),
        max: rows.last().map_or(0.0, |(value, _)| *value),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hgrm_text_is_summarised() {
        let text = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n\
                    \x20     10.000 0.000000000000          1           1.00\n\
                    \x20     20.000 0.500000000000         50           2.00\n\
                    \x20     90.000 0.990000000000         99         100.00\n\
                    \x20    120.000 1.000000000000        100            inf\n\
                    #[Mean    =       25.000, StdDeviation   =        5.000]\n\
                    #[Max     =      120.000, Total count    =          100]\n";
        let latency = parse_hgrm(text).expect("parsed");
        assert_eq!(
            latency,
            StageLatency {
                count: 100,
                p50: 20.0,
                p99: 90.0,
                p999: 120.0,
                max: 120.0
            }
        );
        assert_eq!(
            parse_hgrm("#[Max     =        0.000, Total count    =            0]\n"),
            None
        );
    }

    #[test]
    fn the_admin_url_comes_from_the_bootstrap_host() {
        assert_eq!(
            url(None, "10.0.0.5:9092,10.0.0.6:9092").as_deref(),
            Some("http://10.0.0.5:9644")
        );
        assert_eq!(url(Some("http://h:1"), "x:9092").as_deref(), Some("http://h:1"));
        assert_eq!(url(Some(""), "x:9092"), None);
    }
}
