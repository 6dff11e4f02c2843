//! The admin HTTP listener (`admin_listen`): what a running broker shows
//! about itself.
//!
//! - `GET /metrics`: Prometheus text exposition (`exposition.rs`);
//! - `GET /v1/latency?api=Produce[&stage=fsync][&shard=N][&reset=true]`:
//!   the live HdrHistogram percentile distribution in `.hgrm` text;
//! - `GET /v1/status`: JSON (version, uptime, shards, topics, partitions
//!   per shard);
//! - `GET /healthz` (the process serves HTTP) and `GET /readyz` (recovery
//!   finished and every shard accepts Kafka connections).
//!
//! Lives on shard 0's bulk task queue, so it never delays produce or fetch
//! there; it binds before recovery, so `/readyz` can say "not yet". Every
//! request is parsed with `httparse`, bounded in size and time, answered,
//! and the connection closed: a bad request gets a 4xx and costs only its
//! own connection. Metrics are gathered from every shard on demand
//! (`ShardCall::Stats`) and merged here, never on the data path.

mod exposition;
mod http;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    rc::Rc,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

use crate::{
    metrics::{merge_histograms_yielding, merge_one, ShardStats, Stage, StageHistograms},
    shard::{
        messages::{ShardCall, ShardReply},
        Shard,
    },
};

/// Largest request head (request line and headers) read.
const REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;
/// A client gets this long to send its request.
const REQUEST_TIMEOUT_MS: u64 = 5_000;
/// Connections served at once; more wait in the listen backlog.
const CONNECTIONS_MAX: usize = 64;

/// What the listener knows of the broker outside shard 0.
pub struct Readiness {
    pub shards: usize,
    /// Shards that finished recovery and accept Kafka connections.
    pub serving: AtomicUsize,
    pub started: Instant,
}

impl Readiness {
    pub fn new(shards: usize) -> Arc<Readiness> {
        Arc::new(Readiness {
            shards,
            serving: AtomicUsize::new(0),
            started: Instant::now(),
        })
    }

    pub fn ready(&self) -> bool {
        self.serving.load(Ordering::SeqCst) >= self.shards
    }
}

/// Binds the admin listener (no SO_REUSEPORT: a second broker on the same
/// address must fail, not share it).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    crate::net::listener::bind_socket(addr, false, 128)
}

/// Serves until `stop()` (shard 0 only).
pub async fn serve(
    shard: Rc<Shard>,
    listener: TcpListener,
    readiness: Arc<Readiness>,
    stop: impl Fn() -> bool,
) {
    let open = Rc::new(std::cell::Cell::new(0usize));
    let mut stopped = Box::pin(async {
        while !stop() {
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
    });
    loop {
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            (&mut stopped).await;
            None
        })
        .await;
        match accepted {
            None => return,
            Some(Ok(stream)) => {
                if open.get() >= CONNECTIONS_MAX {
                    drop(stream);
                    continue;
                }
                open.set(open.get() + 1);
                let (shard, readiness, open) = (shard.clone(), readiness.clone(), open.clone());
                shard
                    .clone()
                    .spawn(true, async move {
                        serve_one(&shard, stream, &readiness).await;
                        open.set(open.get() - 1);
                    })
                    .detach();
            }
            Some(Err(e)) => {
                crate::warn_limited!("admin accept failed", "admin listener: accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn serve_one(shard: &Rc<Shard>, mut stream: TcpStream, readiness: &Readiness) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(REQUEST_TIMEOUT_MS)));
    let _ = stream.set_write_timeout(Some(Duration::from_millis(REQUEST_TIMEOUT_MS)));
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let request = loop {
        match http::parse_request(&head) {
            Ok(Some(request)) => break Ok(request),
            Ok(None) if head.len() >= REQUEST_HEAD_BYTES_MAX => {
                break Err(http::Response::text(431, "request head too large\n"))
            }
            Ok(None) => {}
            Err(response) => break Err(response),
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    };
    let response = match request {
        Ok(request) => route(shard, readiness, &request).await,
        Err(response) => response,
    };
    let _ = stream.write_all(&response.encode()).await;
    let _ = stream.flush().await;
    let _ = stream.close().await;
}

async fn route(shard: &Rc<Shard>, readiness: &Readiness, request: &http::Request) -> http::Response {
    if request.method != "GET" && request.method != "HEAD" {
        return http::Response::text(405, "only GET\n").with_header("Allow", "GET, HEAD");
    }
    let response = match request.path.as_str() {
        "/healthz" => http::Response::text(200, "ok\n"),
        "/readyz" if readiness.ready() => http::Response::text(200, "ready\n"),
        "/readyz" => http::Response::text(503, "recovering\n"),
        "/metrics" => {
            let stats = gather(shard, false).await;
            let mut latency_us = StageHistograms::new();
            for s in &stats {
                merge_histograms_yielding(&mut latency_us, &s.metrics.request_latency_us).await;
            }
            let allowance = shard.catch_up_pacer.allowance_bytes_per_s();
            let text = exposition::render(&stats, latency_us, readiness, allowance);
            http::Response::new(200, exposition::CONTENT_TYPE, text.into_bytes())
        }
        "/v1/status" => http::Response::new(200, "application/json", status(shard, readiness).into_bytes()),
        "/v1/latency" => latency(shard, request).await,
        _ => http::Response::text(
            404,
            "not found: /metrics, /v1/latency, /v1/status, /healthz, /readyz\n",
        ),
    };
    if request.method == "HEAD" {
        response.without_body()
    } else {
        response
    }
}

/// Every shard's stats (`reset_interval`: each starts a new interval).
async fn gather(shard: &Rc<Shard>, reset_interval: bool) -> Vec<ShardStats> {
    let mut all = Vec::with_capacity(shard.count);
    for id in 0..shard.count {
        if let ShardReply::Stats(stats) = shard.call(id, ShardCall::Stats { reset_interval }).await {
            all.push(*stats);
        }
    }
    all
}

/// `/v1/latency`: one API's latency in one stage, as `.hgrm` text.
async fn latency(shard: &Rc<Shard>, request: &http::Request) -> http::Response {
    let query = |name: &str| {
        request
            .query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(api_name) = query("api") else {
        return http::Response::text(400, "api=<Kafka API name, e.g. Produce> is required\n");
    };
    let Some(api_key) = exposition::api_key_of(api_name) else {
        return http::Response::text(404, &format!("unknown API '{api_name}'\n"));
    };
    let stage_name = query("stage").unwrap_or("handler");
    let Some(stage) = Stage::from_name(stage_name) else {
        let names: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
        return http::Response::text(
            404,
            &format!("unknown stage '{stage_name}' (stages: {})\n", names.join(", ")),
        );
    };
    let only_shard = match query("shard").map(str::parse::<usize>) {
        None => None,
        Some(Ok(id)) if id < shard.count => Some(id),
        Some(_) => {
            return http::Response::text(
                400,
                &format!("shard must be 0..{}\n", shard.count.saturating_sub(1)),
            )
        }
    };
    let reset = match query("reset") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return http::Response::text(400, &format!("reset must be true or false, not '{other}'\n"))
        }
    };
    let mut merged = BTreeMap::new();
    for stats in gather(shard, reset).await {
        let wanted = stats.interval_latency_us.get(&(api_key, stage));
        if let Some(histogram) = wanted.filter(|_| only_shard.is_none_or(|id| id == stats.shard)) {
            merge_one(&mut merged, (api_key, stage), histogram);
        }
    }
    let histogram = merged
        .remove(&(api_key, stage))
        .unwrap_or_else(crate::metrics::new_histogram);
    http::Response::new(
        200,
        "text/plain; charset=utf-8",
        exposition::hgrm(&histogram).into_bytes(),
    )
}

/// `/v1/status` as JSON.
fn status(shard: &Rc<Shard>, readiness: &Readiness) -> String {
    #[derive(serde::Serialize)]
    struct Topic<'a> {
        name: &'a str,
        partitions: i32,
    }
    #[derive(serde::Serialize)]
    struct Status<'a> {
        version: &'a str,
        uptime_s: f64,
        ready: bool,
        shards: usize,
        partitions_per_shard: Vec<usize>,
        topics: Vec<Topic<'a>>,
    }
    let metadata = shard.metadata();
    let status = Status {
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: readiness.started.elapsed().as_secs_f64(),
        ready: readiness.ready(),
        shards: shard.count,
        partitions_per_shard: metadata.partitions_per_shard(shard.count),
        topics: metadata
            .topics
            .iter()
            .map(|(name, topic)| Topic {
                name,
                partitions: topic.partition_count(),
            })
            .collect(),
    };
    serde_json::to_string(&status).expect("plain data serializes") + "\n"
}
