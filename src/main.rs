//! `weir`: parse the command line (`config::Cli`); without a subcommand,
//! claim the data directory and the port, then run one pinned shard per
//! core until SIGINT or SIGTERM. `weir config` prints the effective
//! configuration instead.

use std::{
    fs::{self, File, OpenOptions},
    io::Write,
    os::fd::AsRawFd,
    process::ExitCode,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use clap::Parser;
use weir::{
    config::{render_toml, Cli, Config, WeirCommand},
    metadata::{self, store},
    shard::runtime::{self, DMA_PROBE_FILE_NAME},
};

/// See `alloc_guard`: a hostile array count must not abort the broker.
#[global_allocator]
static ALLOCATOR: weir::alloc_guard::GuardedAllocator = weir::alloc_guard::GuardedAllocator;

fn main() -> ExitCode {
    // Before anything else (threads inherit the mask): a SIGTERM that
    // arrives while the broker starts waits for the signal thread and
    // becomes a clean shutdown instead of killing the process.
    let signals = shutdown_signals();
    // SAFETY: blocks signals in this thread's mask; `signals` is valid.
    if unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &signals, std::ptr::null_mut()) } != 0 {
        eprintln!("weir: cannot block SIGINT/SIGTERM");
        return ExitCode::FAILURE;
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    // Usage errors exit 2 with clap's message; --help and --version exit 0.
    let cli = Cli::try_parse().unwrap_or_else(|error| error.exit());
    let (config, origins) = match cli.broker.load_with_origins() {
        Ok(loaded) => loaded,
        Err(message) => {
            eprintln!("weir: {message}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        None => {}
        Some(WeirCommand::Config) => {
            return match render_toml(&config, Some(&origins)) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(message) => {
                    eprintln!("weir: {message}");
                    ExitCode::from(2)
                }
            };
        }
    }
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("weir: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(mut config: Config) -> Result<(), String> {
    fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", config.data_dir.display()))?;
    let _lock = lock_data_dir(&config)?;
    raise_open_files_limit();
    let online_cores = core_affinity::get_core_ids().map_or(1, |ids| ids.len());
    let shard_count = config.shard_count(online_cores);
    weir::net::advertise::check(&config, shard_count)?;
    claim_ports(&mut config, shard_count)?;
    write_dma_probe(&config)?;

    let mut cluster = store::load(&config.data_dir)?;
    if cluster.cluster_id.is_empty() {
        cluster.cluster_id = format!("weir-{}", metadata::new_topic_id());
        store::save(&config.data_dir, &cluster)?;
    }

    for topic in cluster.topics.values_mut() {
        // Placement is stable; only a smaller --cores forces a move, and
        // that move is recorded so the next start agrees.
        for shard in topic.shards.iter_mut().filter(|s| **s >= shard_count) {
            *shard %= shard_count;
        }
    }
    store::save(&config.data_dir, &cluster)?;

    let stop_requested = Arc::new(AtomicBool::new(false));
    install_signal_handling(stop_requested.clone())?;
    log::info!(
        "starting {shard_count} shard(s), data in {}, {} topic(s)",
        config.data_dir.display(),
        cluster.topics.len()
    );
    runtime::run(config, cluster, shard_count, stop_requested)
}

/// Holds an exclusive flock on `<data_dir>/.lock` for the process lifetime.
fn lock_data_dir(config: &Config) -> Result<File, String> {
    let path = config.data_dir.join(".lock");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if locked != 0 {
        let holder = fs::read_to_string(&path).unwrap_or_default();
        return Err(format!(
            "data dir {} is locked by another weir (pid {}); stop it or use another --data-dir",
            config.data_dir.display(),
            holder.trim()
        ));
    }
    file.set_len(0).map_err(|e| format!("{}: {e}", path.display()))?;
    write!(file, "{}", std::process::id()).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(file)
}

/// Every segment keeps its file open (as Kafka does): take the soft
/// RLIMIT_NOFILE up to the hard limit, and say what the limit is.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the local struct only.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    log::info!(
        "open files limit: {} (each segment keeps one or two files open)",
        limit.rlim_cur
    );
}

/// Fails when a port is served already: shards bind with SO_REUSEPORT,
/// which would otherwise let a second broker share the port silently. A
/// plain bind (no SO_REUSEPORT) fails if anyone listens there. With
/// `advertise_shards` every shard's port is claimed (listen + N); a listen
/// port of 0 then picks a free run of `shard_count` consecutive ports.
fn claim_ports(config: &mut Config, shard_count: usize) -> Result<(), String> {
    const ATTEMPTS: usize = 64;
    let ports = if config.advertise_shards { shard_count } else { 1 };
    let ephemeral = config.listen.port() == 0;
    for _ in 0..ATTEMPTS {
        let first = std::net::TcpListener::bind(config.listen).map_err(|e| {
            format!(
                "cannot listen on {}: {e} (is another weir or Kafka broker running there?)",
                config.listen
            )
        })?;
        let base = first.local_addr().map_err(|e| e.to_string())?;
        let mut probes = vec![first];
        for shard in 1..ports {
            let mut address = base;
            address.set_port(base.port() + shard as u16);
            match std::net::TcpListener::bind(address) {
                Ok(probe) => probes.push(probe),
                Err(_) if ephemeral => break,
                Err(e) => {
                    return Err(format!(
                        "cannot listen on {address} for shard {shard} (advertise_shards: shard N listens on the listen port + N): {e}"
                    ))
                }
            }
        }
        if probes.len() == ports {
            config.listen = base;
            return Ok(());
        }
    }
    Err(format!(
        "found no {ports} consecutive free ports for advertise_shards in {ATTEMPTS} attempts; give listen a fixed port"
    ))
}

fn write_dma_probe(config: &Config) -> Result<(), String> {
    let path = config.data_dir.join(DMA_PROBE_FILE_NAME);
    fs::write(&path, vec![0x77u8; 4096]).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Bounds shutdown: a shard stuck past the deadline must not keep the
/// process alive (see `limits::SHUTDOWN_EXIT_MS_MAX`).
fn exit_after_shutdown_deadline() {
    std::thread::sleep(std::time::Duration::from_millis(
        weir::limits::SHUTDOWN_EXIT_MS_MAX,
    ));
    log::error!(
        "shutdown did not finish within {} ms; exiting (acknowledged data is written; the next start recovers)",
        weir::limits::SHUTDOWN_EXIT_MS_MAX
    );
    std::process::exit(1);
}

/// SIGINT and SIGTERM, blocked in every thread from the start of `main`.
fn shutdown_signals() -> libc::sigset_t {
    // SAFETY: plain libc signal-set manipulation on a local sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        set
    }
}

/// Waits for SIGINT/SIGTERM (blocked since `main` began, so pending ones
/// are delivered here) on a dedicated thread that requests the shutdown.
fn install_signal_handling(stop_requested: Arc<AtomicBool>) -> Result<(), String> {
    let set = shutdown_signals();
    std::thread::Builder::new()
        .name("weir-signals".into())
        .spawn(move || loop {
            let mut signal = 0;
            // SAFETY: sigwait reads `set` and writes the received signal.
            if unsafe { libc::sigwait(&set, &mut signal) } == 0 {
                log::info!("signal {signal} received: shutting down");
                if !stop_requested.swap(true, Ordering::SeqCst) {
                    std::thread::spawn(exit_after_shutdown_deadline);
                }
            }
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    Ok(())
}
