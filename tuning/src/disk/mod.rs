//! `weir-tune disk`: measures the data directory's disk the way weir uses
//! it (O_DIRECT appends through io_uring, O_DIRECT reads, fdatasync after
//! small writes), prints the numbers, and writes a weir config derived from
//! them.
//!
//! Order of work: refuse to run on a directory a live weir holds; probe the
//! O_DIRECT alignment; write a base file; measure the write grid (block
//! size x queue depth, the three modes interleaved per cell so that drift
//! of a shared host hits all modes alike); reads; fdatasync; then render
//! the recommendation, write it, and load it back with weir's own parser.
//!
//! Bounded: every cell stops at `cell_bytes` or `cell_time_max`, whichever
//! comes first, so the total time has a ceiling (about 50 s by default,
//! under 5 s with `--quick`). Disk space used at once: the base file plus
//! one cell file. Every probe file is removed on every path out
//! ([`ProbeDir`]), including SIGINT/SIGTERM.

mod fsync;
mod read;
mod recommend;
mod ring;
mod table;
mod write;

use std::{
    ffi::CString,
    fs::File,
    io::Write as _,
    os::{fd::AsRawFd, unix::ffi::OsStrExt},
    path::{Path, PathBuf},
    time::Duration,
};

use self::{
    fsync::FsyncCase,
    recommend::{Input, MemlockFacts},
    table::DiskResults,
    write::WriteMode,
};
use crate::{
    check::{filesystem_magic, filesystem_name, probe_direct_io_alignment, FsSuitability},
    host,
    probe_dir::{self, ProbeDir},
    settings,
};

/// What to measure and for how long.
#[derive(Debug, Clone)]
pub struct Plan {
    pub quick: bool,
    pub block_sizes_bytes: Vec<usize>,
    pub queue_depths: Vec<usize>,
    pub read_queue_depths: Vec<usize>,
    /// Times the whole grid is measured; each cell reports its best round
    /// (interference from a shared host only ever lowers a number).
    pub rounds: usize,
    /// Bytes per cell (and size of the base file).
    pub cell_bytes: u64,
    pub cell_time_max: Duration,
    pub fsync_iterations_max: usize,
    pub fsync_time_max: Duration,
}

/// Bounds of `--size-mib`: at least one largest block, at most 4 GiB.
pub const SIZE_MIB_MIN: u64 = 4;
pub const SIZE_MIB_MAX: u64 = 4096;
pub const SIZE_MIB_DEFAULT: u64 = 256;
pub const SIZE_MIB_QUICK_DEFAULT: u64 = 8;

impl Plan {
    /// The default grid: 4 block sizes x 4 queue depths x 3 modes.
    pub fn full(size_mib: u64) -> Plan {
        Plan {
            quick: false,
            block_sizes_bytes: vec![64 << 10, 256 << 10, 1 << 20, 4 << 20],
            queue_depths: vec![1, 2, 4, 8],
            read_queue_depths: vec![1, 4],
            rounds: 2,
            cell_bytes: size_mib << 20,
            cell_time_max: Duration::from_millis(500),
            fsync_iterations_max: 2000,
            fsync_time_max: Duration::from_secs(3),
        }
    }

    /// Small and fast (tests, smoke checks): 2 block sizes x 2 depths.
    pub fn quick(size_mib: u64) -> Plan {
        Plan {
            quick: true,
            block_sizes_bytes: vec![64 << 10, 1 << 20],
            queue_depths: vec![1, 4],
            read_queue_depths: vec![1],
            rounds: 1,
            cell_bytes: size_mib << 20,
            cell_time_max: Duration::from_millis(250),
            fsync_iterations_max: 64,
            fsync_time_max: Duration::from_millis(300),
        }
    }

    /// Disk space the probe needs at once: base file, one cell file, the
    /// fsync file.
    pub fn space_needed_bytes(&self) -> u64 {
        2 * self.cell_bytes + (self.fsync_iterations_max as u64) * fsync::FSYNC_WRITE_BYTES as u64 + (1 << 20)
    }
}

pub struct Options {
    pub data_dir: PathBuf,
    pub out: Option<PathBuf>,
    pub size_mib: Option<u64>,
    pub quick: bool,
    pub json: bool,
    pub force: bool,
}

/// Runs the probe; `Err` is printed by main (exit 1).
pub fn run(options: &Options) -> Result<(), String> {
    probe_dir::catch_interrupts();
    let size_mib = options.size_mib.unwrap_or(if options.quick {
        SIZE_MIB_QUICK_DEFAULT
    } else {
        SIZE_MIB_DEFAULT
    });
    if !(SIZE_MIB_MIN..=SIZE_MIB_MAX).contains(&size_mib) {
        return Err(format!(
            "--size-mib must be within {SIZE_MIB_MIN}..={SIZE_MIB_MAX}"
        ));
    }
    let plan = if options.quick {
        Plan::quick(size_mib)
    } else {
        Plan::full(size_mib)
    };
    let data_dir = settings::absolute_path(&options.data_dir);
    if !options.force {
        refuse_if_weir_runs(&data_dir)?;
    }
    let mut dir = ProbeDir::open(&data_dir)?;
    if !options.force {
        refuse_unsuitable_filesystem(dir.path())?;
    }
    check_free_space(dir.path(), plan.space_needed_bytes())?;
    let alignment = probe_direct_io_alignment(&mut dir)
        .map_err(|e| format!("{e}\nweir needs O_DIRECT: put the data dir on ext4 or xfs"))?;
    let mut results = DiskResults::new(data_dir.display().to_string(), &plan, &alignment);

    progress(options, &format!("writing a {size_mib} MiB base file"));
    let base = write::create_base_file(&mut dir, plan.cell_bytes)?;
    for round in 1..=plan.rounds {
        for &block in &plan.block_sizes_bytes {
            progress(
                options,
                &format!(
                    "round {round}/{}: writes, {} KiB blocks",
                    plan.rounds,
                    block >> 10
                ),
            );
            for &depth in &plan.queue_depths {
                for mode in WriteMode::ALL {
                    if let Some(cell) = write::measure_cell(&mut dir, &base, mode, block, depth, &plan)? {
                        keep_best(&mut results.writes, cell, |a, b| {
                            (a.mode, a.block_bytes, a.queue_depth) == (b.mode, b.block_bytes, b.queue_depth)
                        });
                    }
                }
            }
        }
        progress(options, &format!("round {round}/{}: reads", plan.rounds));
        for &block in &plan.block_sizes_bytes {
            for &depth in &plan.read_queue_depths {
                let cell = read::measure_cell(&base, block, depth, &plan)?;
                keep_best(&mut results.reads, cell, |a, b| {
                    (a.block_bytes, a.queue_depth) == (b.block_bytes, b.queue_depth)
                });
            }
        }
    }
    drop(base);
    progress(options, "fdatasync latency");
    for case in [FsyncCase::Append, FsyncCase::Overwrite] {
        results.fsyncs.push(fsync::measure(&mut dir, case, &plan)?);
    }

    results.host_load_after = Some(host::host_load());
    let mut recommendation = recommend::recommend(&Input {
        data_dir: &data_dir,
        writes: &results.writes,
        fsyncs: &results.fsyncs,
        memlock: memlock_facts(),
        quick: plan.quick,
    });
    if table::busy(&results) {
        recommendation.header.push(format!(
            "The host was busy with other I/O when the probe started (I/O pressure {:.0}% over 10 s):",
            results
                .host_load_before
                .io_pressure_some_10s_percent
                .unwrap_or_default()
        ));
        recommendation
            .header
            .push("the numbers below are lower bounds. Rerun on a quiet host.".into());
    }
    let config_text = recommend::render(&recommendation);
    match &options.out {
        Some(out) => {
            write_file(out, &config_text)?;
            verify_config(out, &recommendation)?;
            results.config_path = Some(out.display().to_string());
        }
        None => {
            // Verify through a probe file, then show the text.
            let (mut file, path) = dir.create_file("config", 0)?;
            file.write_all(config_text.as_bytes())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            drop(file);
            verify_config(&path, &recommendation)?;
            dir.remove_file(&path);
        }
    }
    drop(dir);

    if options.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&results).map_err(|e| format!("JSON: {e}"))?
        );
    } else {
        print!("{}", table::render_text(&results, &plan));
        match &options.out {
            Some(out) => println!(
                "\nRecommended weir config written to {} (loads with weir's parser: checked)",
                out.display()
            ),
            None => println!("\nRecommended weir config (use --out FILE to save it):\n\n{config_text}"),
        }
    }
    Ok(())
}

/// Something with a bandwidth, of which the best round is kept.
trait Measured {
    fn bandwidth_mb_per_s(&self) -> f64;
}

impl Measured for write::WriteCell {
    fn bandwidth_mb_per_s(&self) -> f64 {
        self.bandwidth_mb_per_s
    }
}

impl Measured for read::ReadCell {
    fn bandwidth_mb_per_s(&self) -> f64 {
        self.bandwidth_mb_per_s
    }
}

/// Adds `cell`, or replaces the same cell of an earlier round if `cell` is faster.
fn keep_best<T: Measured>(cells: &mut Vec<T>, cell: T, same: impl Fn(&T, &T) -> bool) {
    match cells.iter_mut().find(|existing| same(existing, &cell)) {
        Some(existing) if existing.bandwidth_mb_per_s() < cell.bandwidth_mb_per_s() => *existing = cell,
        Some(_) => {}
        None => cells.push(cell),
    }
}

fn progress(options: &Options, what: &str) {
    if !options.json {
        eprintln!("weir-tune disk: {what} ...");
    }
}

/// A weir holding `<data_dir>/.lock` would disturb the numbers and be
/// disturbed by the probe.
fn refuse_if_weir_runs(data_dir: &Path) -> Result<(), String> {
    let lock_path = data_dir.join(".lock");
    let Ok(file) = File::open(&lock_path) else {
        return Ok(());
    };
    // SAFETY: flock on a descriptor we own.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    if locked != 0 {
        let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
        return Err(format!(
            "a weir (pid {}) is running on {}: the probe would compete with it and slow it down. \
             Stop it, use another directory on the same filesystem, or pass --force",
            holder.trim(),
            data_dir.display()
        ));
    }
    // SAFETY: as above; releases our shared lock.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
    Ok(())
}

// statvfs field types differ between targets (u64 here, u32 on some 32-bit ones).
#[allow(clippy::unnecessary_cast)]
/// tmpfs, network and union filesystems: numbers that say nothing about a
/// disk weir could keep data on.
fn refuse_unsuitable_filesystem(dir: &Path) -> Result<(), String> {
    let magic = filesystem_magic(dir)?;
    let (name, suitability, why) = filesystem_name(magic);
    if suitability == FsSuitability::Bad {
        return Err(format!(
            "{} is on {name}: {why}. Measuring it says nothing about a disk weir can keep data on; \
             point --data-dir at the real data disk (or pass --force)",
            dir.display()
        ));
    }
    Ok(())
}

fn check_free_space(dir: &Path, needed_bytes: u64) -> Result<(), String> {
    let path = CString::new(dir.as_os_str().as_bytes()).map_err(|_| "path contains NUL".to_string())?;
    // SAFETY: statvfs is plain data.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string, writable struct.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stats) } != 0 {
        return Err(format!(
            "statvfs {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    let free_bytes = (stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64);
    // Leave at least as much again for everyone else on the filesystem.
    if free_bytes < needed_bytes.saturating_mul(2) {
        return Err(format!(
            "{} has {} free; the probe needs {} (and leaves as much again free): use a smaller --size-mib",
            dir.display(),
            host::format_bytes(free_bytes),
            host::format_bytes(needed_bytes)
        ));
    }
    Ok(())
}

fn memlock_facts() -> MemlockFacts {
    let soft_bytes = host::rlimit(libc::RLIMIT_MEMLOCK as libc::c_int).map_or(0, |(soft, _)| soft);
    let shard_count = host::allowed_cpus().map_or(1, |cpus| cpus.len().max(1)) as u64;
    MemlockFacts {
        soft_bytes,
        privileged: host::has_cap_ipc_lock().unwrap_or_else(|_| host::is_root()),
        shard_count,
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Loads the written file with weir's own parser (as `weir --config FILE`
/// does) and checks that it says what was recommended.
fn verify_config(path: &Path, recommendation: &recommend::Recommendation) -> Result<(), String> {
    let config = settings::load_weir_config_file(path)
        .map_err(|e| format!("BUG: weir's parser rejects the generated {}: {e}", path.display()))?;
    let integer = |key: &str| recommendation.value(key).and_then(toml::Value::as_integer);
    let mismatch = |key: &str| format!("BUG: {} loads with a different {key}", path.display());
    if let Some(bytes) = integer("append_write_bytes_max") {
        if config.append_write_bytes_max as i64 != bytes {
            return Err(mismatch("append_write_bytes_max"));
        }
    }
    if let Some(bytes) = integer("io_memory_bytes") {
        if config.io_memory_bytes as i64 != bytes {
            return Err(mismatch("io_memory_bytes"));
        }
    }
    Ok(())
}
