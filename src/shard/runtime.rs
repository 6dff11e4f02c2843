//! Starting and stopping the shards: one pinned glommio executor per core.
//!
//! Startup, per shard: join both channel meshes, publish this shard's mesh
//! peer indexes (glommio numbers peers by join order), wait for every
//! shard to do so, probe DMA reads, open the logs this shard owns, wait for
//! every shard to be open, then accept connections. Nothing is accepted
//! before every partition is open, so no request can find a missing log.
//!
//! Shutdown, per shard: stop accepting, wait (bounded) until no request is
//! being handled here, wait for every shard to be drained (their requests
//! may still call this shard), then close every log (write, fdatasync, trim,
//! indexes) and return.

use std::{
    path::Path,
    rc::Rc,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use glommio::{channels::channel_mesh::MeshBuilder, LocalExecutorBuilder, Placement};

use super::{mesh, Shard};
use crate::{
    config::Config,
    fetch::pacing::{run_controller, PacingConfig, PacingSignals},
    limits::{MESH_CHANNEL_MESSAGES, SHUTDOWN_CLOSE_MS_MAX, SHUTDOWN_DRAIN_MS_MAX},
    metadata::ClusterMetadata,
};

/// Shared, startup/shutdown-only coordination between shard threads (never
/// touched on the data path), and the one process-wide thing the data path
/// shares: catch-up pacing's relaxed atomics.
struct Coordination {
    shard_count: usize,
    call_peer_of_shard: Vec<AtomicUsize>,
    reply_peer_of_shard: Vec<AtomicUsize>,
    meshes_joined: AtomicUsize,
    logs_opened: AtomicUsize,
    startup_failed: AtomicBool,
    drained: AtomicUsize,
    stop_requested: Arc<AtomicBool>,
    /// Catch-up pacing's process-wide signals (see `fetch::pacing`).
    pacing: Arc<PacingSignals>,
    /// What the admin listener tells about readiness.
    readiness: Arc<crate::observe::Readiness>,
}

/// Name of the file each shard reads with `DmaFile::open` at start (see
/// DESIGN.md: glommio's polled-I/O probe must see a real read first).
pub const DMA_PROBE_FILE_NAME: &str = ".weir-dma-probe";

/// Runs `shard_count` shards until `stop_requested` turns true and every
/// shard has shut down. Returns the first startup error, if any.
pub fn run(
    config: Config,
    metadata: ClusterMetadata,
    shard_count: usize,
    stop_requested: Arc<AtomicBool>,
) -> Result<(), String> {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let coordination = Arc::new(Coordination {
        shard_count,
        call_peer_of_shard: (0..shard_count).map(|_| AtomicUsize::new(usize::MAX)).collect(),
        reply_peer_of_shard: (0..shard_count).map(|_| AtomicUsize::new(usize::MAX)).collect(),
        meshes_joined: AtomicUsize::new(0),
        logs_opened: AtomicUsize::new(0),
        startup_failed: AtomicBool::new(false),
        drained: AtomicUsize::new(0),
        stop_requested,
        readiness: crate::observe::Readiness::new(shard_count),
        pacing: Arc::new(PacingSignals::new(
            shard_count,
            &PacingConfig::from_config(&config),
        )),
    });
    let call_mesh = MeshBuilder::full(shard_count, MESH_CHANNEL_MESSAGES);
    let reply_mesh = MeshBuilder::full(shard_count, MESH_CHANNEL_MESSAGES);
    let mut handles = Vec::with_capacity(shard_count);
    for shard_id in 0..shard_count {
        let placement = match cores.get(shard_id % cores.len().max(1)) {
            Some(core) => Placement::Fixed(core.id),
            None => Placement::Unbound,
        };
        let config = config.clone();
        let metadata = metadata.clone();
        let coordination = coordination.clone();
        let call_mesh = call_mesh.clone();
        let reply_mesh = reply_mesh.clone();
        let io_memory = config.io_memory_bytes;
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("weir-shard-{shard_id}"))
            .io_memory(io_memory)
            .spawn(move || async move {
                let result = shard_main(
                    shard_id,
                    config,
                    metadata,
                    coordination.clone(),
                    call_mesh,
                    reply_mesh,
                )
                .await;
                if let Err(e) = &result {
                    coordination.startup_failed.store(true, Ordering::SeqCst);
                    coordination.stop_requested.store(true, Ordering::SeqCst);
                    log::error!("shard {shard_id}: {e}");
                }
                result
            })
            .map_err(|e| format!("starting shard {shard_id}: {e}"))?;
        handles.push(handle);
    }
    let mut first_error = None;
    for handle in handles {
        let outcome = handle
            .join()
            .map_err(|e| format!("shard thread: {e}"))
            .and_then(|r| r);
        if let Err(e) = outcome {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Counts turns of the shard's event loop that ran over 1 ms, as a 10 ms
/// timer firing that much late (sampled: a long turn between two ticks
/// goes unseen).
async fn watch_stalls(shard: Rc<Shard>) {
    const TICK: Duration = Duration::from_millis(10);
    while !shard.stopping.get() {
        let armed = Instant::now();
        glommio::timer::sleep(TICK).await;
        if armed.elapsed().saturating_sub(TICK) > Duration::from_millis(1) {
            shard.metrics.borrow_mut().stalls += 1;
        }
    }
}

/// Waits until `done()` or startup failed elsewhere.
async fn wait_for(coordination: &Coordination, done: impl Fn() -> bool) -> Result<(), String> {
    while !done() {
        if coordination.startup_failed.load(Ordering::SeqCst) {
            return Err("another shard failed to start".into());
        }
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

async fn shard_main(
    shard_id: usize,
    config: Config,
    metadata: ClusterMetadata,
    coordination: Arc<Coordination>,
    call_mesh: MeshBuilder<super::messages::Envelope, glommio::channels::channel_mesh::Full>,
    reply_mesh: MeshBuilder<super::messages::ReplyEnvelope, glommio::channels::channel_mesh::Full>,
) -> Result<(), String> {
    // Lost cross-executor wake-ups: on this machine a shard parked in
    // io_uring sometimes never learns that a peer sent it a message (seen
    // at start, in the channel mesh join: 2 of 6 brokers started together
    // under load never accepted connections, one shard spinning, the other
    // parked). glommio runs the wake-ups queued for an executor on every
    // turn of its loop, so a timer that turns the loop bounds such a stall
    // to one tick.
    glommio::spawn_local(async {
        loop {
            glommio::timer::sleep(Duration::from_millis(crate::limits::SHARD_WAKE_TICK_MS)).await;
        }
    })
    .detach();
    let count = coordination.shard_count;
    let (call_senders, call_receivers) = call_mesh.join().await.map_err(|_| "joining the call mesh")?;
    let (reply_senders, reply_receivers) = reply_mesh.join().await.map_err(|_| "joining the reply mesh")?;
    coordination.call_peer_of_shard[shard_id].store(call_senders.peer_id(), Ordering::SeqCst);
    coordination.reply_peer_of_shard[shard_id].store(reply_senders.peer_id(), Ordering::SeqCst);
    coordination.meshes_joined.fetch_add(1, Ordering::SeqCst);
    wait_for(&coordination, || {
        coordination.meshes_joined.load(Ordering::SeqCst) == count
    })
    .await?;
    let peers = |table: &[AtomicUsize]| table.iter().map(|p| p.load(Ordering::SeqCst)).collect::<Vec<_>>();
    let mesh = mesh::Mesh::new(
        shard_id,
        call_senders,
        reply_senders,
        peers(&coordination.call_peer_of_shard),
        peers(&coordination.reply_peer_of_shard),
    );

    probe_dma_reads(&config.data_dir).await?;
    let (listen, shared_port) = crate::net::advertise::listen_address(&config, shard_id);
    let pacing = PacingConfig::from_config(&config);
    let shard = Rc::new(Shard::new(
        shard_id,
        count,
        Rc::new(config),
        metadata,
        mesh,
        coordination.pacing.clone(),
    ));
    mesh::spawn_receivers(shard.clone(), call_receivers, reply_receivers);
    shard.spawn(false, watch_stalls(shard.clone())).detach();
    if shard_id == 0 {
        // Before recovery: /readyz answers "not yet" meanwhile.
        if let Some(admin) = shard.config.admin_address()? {
            let listener = crate::observe::bind(admin)
                .map_err(|e| format!("binding the admin listener {admin}: {e}"))?;
            let bound = listener.local_addr().map_or(admin, |a| a);
            log::info!("weir admin HTTP on {bound} (/metrics, /v1/latency, /v1/status, /healthz, /readyz)");
            let (stop, readiness) = (coordination.clone(), coordination.readiness.clone());
            shard
                .spawn(
                    true,
                    crate::observe::serve(shard.clone(), listener, readiness, move || {
                        stop.stop_requested.load(Ordering::SeqCst)
                    }),
                )
                .detach();
        }
    }
    shard.open_owned_logs().await?;
    coordination.logs_opened.fetch_add(1, Ordering::SeqCst);
    wait_for(&coordination, || {
        coordination.logs_opened.load(Ordering::SeqCst) == count
    })
    .await?;

    // Consumer groups: every shard replays its partitions of the offsets
    // topic (created on first use, as Kafka does) before serving.
    load_groups(&shard).await?;
    load_transactions(&shard).await?;
    shard
        .spawn(false, crate::group::coordinator::run_expiry(shard.clone()))
        .detach();
    shard
        .spawn(false, super::producer_ids::run_producer_expiry(shard.clone()))
        .detach();
    shard
        .spawn(true, crate::log::retention::run_retention(shard.clone()))
        .detach();
    shard
        .spawn(true, crate::log::compaction::run_compaction(shard.clone()))
        .detach();
    shard.spawn(false, run_log_repair(shard.clone())).detach();
    shard
        .spawn(false, crate::txn::coordinator::run_expiry(shard.clone()))
        .detach();
    if shard_id == 0 {
        shard
            .spawn(false, run_controller(pacing, coordination.pacing.clone()))
            .detach();
    }

    let listener = bind_retrying(listen, shared_port).await?;
    coordination.readiness.serving.fetch_add(1, Ordering::SeqCst);
    if !shared_port {
        let broker = crate::net::advertise::broker_of_shard(&shard.config, shard_id);
        log::info!(
            "shard {shard_id} serving Kafka on {listen} as node {} (advertised {}:{})",
            broker.node_id,
            broker.host,
            broker.port
        );
    }
    if shard_id == 0 {
        // Once every shard listens: with advertise_shards, a client told of
        // shard N's port right after this line finds it open.
        wait_for(&coordination, || {
            coordination.readiness.serving.load(Ordering::SeqCst) >= count
        })
        .await?;
        let mode = if shared_port {
            String::new()
        } else {
            format!(
                ", one broker per shard on ports {}-{}",
                listen.port(),
                usize::from(listen.port()) + count - 1
            )
        };
        log::info!("weir serving Kafka on {listen} with {count} shard(s){mode}");
    }
    let stop = coordination.clone();
    super::super::net::listener::accept_until(shard.clone(), listener, move || {
        stop.stop_requested.load(Ordering::SeqCst)
    })
    .await;

    shard.stopping.set(true);
    // Drain: requests being handled here finish (bounded), then wait for
    // every shard, since their requests may still call into this one.
    let drain_deadline = Instant::now() + Duration::from_millis(SHUTDOWN_DRAIN_MS_MAX);
    while shard.requests_in_flight.get() > 0 && Instant::now() < drain_deadline {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    coordination.drained.fetch_add(1, Ordering::SeqCst);
    while coordination.drained.load(Ordering::SeqCst) < count && Instant::now() < drain_deadline {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    let closed = futures_lite::future::or(
        async {
            shard.close_logs().await;
            true
        },
        async {
            glommio::timer::sleep(Duration::from_millis(SHUTDOWN_CLOSE_MS_MAX)).await;
            false
        },
    )
    .await;
    if !closed {
        log::error!(
            "shard {shard_id}: closing logs took over {SHUTDOWN_CLOSE_MS_MAX} ms; exiting anyway \
             (acknowledged data is written; recovery finishes trimming and indexing at the next start)"
        );
    }
    log::info!(
        "shard {shard_id} stopped; request latency: {}; {:?}",
        shard.metrics.borrow().summary(),
        crate::fetch::splice::stats()
    );
    Ok(())
}

/// Opens and reads the probe file with O_DIRECT (see DMA_PROBE_FILE_NAME).
async fn probe_dma_reads(data_dir: &Path) -> Result<(), String> {
    let path = data_dir.join(DMA_PROBE_FILE_NAME);
    let file = glommio::io::DmaFile::open(&path)
        .await
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    let read = file
        .read_at(0, 4096)
        .await
        .map_err(|e| format!("DMA read of {}: {e}", path.display()))?;
    if read.is_empty() {
        return Err(format!("DMA read of {} returned nothing", path.display()));
    }
    let _ = file.close().await;
    Ok(())
}

/// Replays this shard's partitions of `__consumer_offsets`.
/// Binds the listener, retrying "address in use" for up to
/// [`crate::limits::BIND_RETRY_MS_MAX`]: a previous weir on this port that
/// just exited (crash, supervisor restart) keeps its listening sockets a
/// few milliseconds longer, until the kernel tears down its io_uring rings.
async fn bind_retrying(
    listen: std::net::SocketAddr,
    shared_port: bool,
) -> Result<glommio::net::TcpListener, String> {
    let deadline = Instant::now() + Duration::from_millis(crate::limits::BIND_RETRY_MS_MAX);
    loop {
        match crate::net::listener::bind(listen, shared_port) {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                glommio::timer::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(format!("binding {listen}: {e}")),
        }
    }
}

/// Replays this shard's partitions of `__transaction_state`. Transactions
/// found half-ended are completed by the timeout task's first pass.
async fn load_transactions(shard: &Rc<Shard>) -> Result<(), String> {
    let metadata = shard.metadata();
    let Some(topic) = metadata.topic(crate::txn::TXN_STATE_TOPIC) else {
        return Ok(());
    };
    let mut records = 0;
    for partition in 0..topic.partition_count() {
        if topic.shard_of(partition) == Some(shard.id) {
            records += shard.txns.load(shard, partition).await?;
        }
    }
    if records > 0 {
        log::info!("shard {}: replayed {records} transaction records", shard.id);
    }
    Ok(())
}

async fn load_groups(shard: &Rc<Shard>) -> Result<(), String> {
    let metadata = shard.metadata();
    let Some(topic) = metadata.topic(crate::group::OFFSETS_TOPIC) else {
        return Ok(());
    };
    let started = Instant::now();
    let mut records = 0;
    for partition in 0..topic.partition_count() {
        if topic.shard_of(partition) == Some(shard.id) {
            records += shard.groups.load(shard, partition).await?;
        }
    }
    if records > 0 {
        log::info!(
            "shard {}: replayed {records} group records in {:?}",
            shard.id,
            started.elapsed()
        );
    }
    Ok(())
}

/// Every `LOG_REPAIR_INTERVAL_MS`, reopens the logs an I/O error took
/// offline (see `Shard::repair_logs`).
async fn run_log_repair(shard: Rc<Shard>) {
    let interval = std::time::Duration::from_millis(crate::limits::LOG_REPAIR_INTERVAL_MS);
    while !shard.stopping.get() {
        glommio::timer::sleep(interval).await;
        shard.repair_logs().await;
    }
}
