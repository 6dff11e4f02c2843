//! weir's settings as the broker itself would load them, and the host
//! resources they imply (shards, the CPUs they are pinned to, the memory
//! they lock).
//!
//! The configuration is parsed by the broker's own parser
//! (`weir::config::Config::from_args`), with `--config FILE`, `--data-dir`
//! and `--cores` passed through as weir's own flags: what `weir-tune check`
//! reasons about is exactly what `weir --config FILE` would run with, defaults
//! and `sanitize()` included.

use std::path::{Path, PathBuf};

use weir::config::{Command, Config};

use crate::host;

/// io_uring rings per glommio executor that register `io_memory` (main,
/// poll and latency rings; glommio 0.9 `Reactor::new`).
pub const GLOMMIO_RINGS_PER_SHARD: u64 = 3;

/// glommio 0.9 refuses to start an executor below this RLIMIT_MEMLOCK, even
/// for root (`MIN_MEMLOCK_LIMIT` in `Reactor::new`).
pub const GLOMMIO_MEMLOCK_BYTES_MIN: u64 = 512 * 1024;

/// glommio rounds `io_memory` up to pages and to at least this much.
pub const GLOMMIO_IO_MEMORY_BYTES_MIN: u64 = 64 * 1024;

/// Page size glommio aligns `io_memory` to.
const PAGE_BYTES: u64 = 4096;

/// weir's configuration plus what it means on this host.
pub struct Settings {
    pub config: Config,
    /// Where the configuration came from, for messages.
    pub source: String,
    /// Shards weir would start here.
    pub shard_count: usize,
    /// CPUs those shards are pinned to.
    pub broker_cpus: Vec<usize>,
}

impl Settings {
    /// Loads weir's configuration from `config_path` (or weir's defaults),
    /// then applies `data_dir` and `cores` as weir's flags would.
    pub fn load(
        config_path: Option<&Path>,
        data_dir: Option<&Path>,
        cores: Option<usize>,
    ) -> Result<Settings, String> {
        let mut args = Vec::new();
        if let Some(path) = config_path {
            args.push("--config".to_string());
            args.push(path.display().to_string());
        }
        if let Some(dir) = data_dir {
            args.push("--data-dir".to_string());
            args.push(dir.display().to_string());
        }
        if let Some(cores) = cores {
            args.push("--cores".to_string());
            args.push(cores.to_string());
        }
        let config = parse_weir_args(args)?;
        let allowed_cpus = host::allowed_cpus().unwrap_or_else(|_| vec![0]);
        let shard_count = config.shard_count(allowed_cpus.len());
        let broker_cpus = broker_cpus(&allowed_cpus, shard_count);
        let source = match config_path {
            Some(path) => path.display().to_string(),
            None => "weir defaults".to_string(),
        };
        Ok(Settings {
            config,
            source,
            shard_count,
            broker_cpus,
        })
    }

    /// Bytes the io_uring buffer registrations of all shards pin, charged
    /// to RLIMIT_MEMLOCK unless the process has CAP_IPC_LOCK.
    pub fn registered_memory_bytes(&self) -> u64 {
        registered_memory_bytes(self.config.io_memory_bytes as u64, self.shard_count as u64)
    }
}

/// Runs weir's own argument parser; `Err` carries weir's message.
pub fn parse_weir_args(args: Vec<String>) -> Result<Config, String> {
    match Config::from_args(args) {
        Ok(Command::Run(config)) => Ok(*config),
        Ok(_) => Err("weir's parser did not return a configuration".to_string()),
        Err(message) => Err(message),
    }
}

/// Loads a weir config file exactly as `weir --config FILE` does.
pub fn load_weir_config_file(path: &Path) -> Result<Config, String> {
    parse_weir_args(vec!["--config".to_string(), path.display().to_string()])
}

/// CPUs weir pins its shards to: shard i runs on the i-th allowed CPU,
/// wrapping around when there are more shards than CPUs (as weir's runtime).
pub fn broker_cpus(allowed_cpus: &[usize], shard_count: usize) -> Vec<usize> {
    if allowed_cpus.is_empty() {
        return Vec::new();
    }
    let mut cpus: Vec<usize> = (0..shard_count)
        .map(|shard| allowed_cpus[shard % allowed_cpus.len()])
        .collect();
    cpus.sort_unstable();
    cpus.dedup();
    cpus
}

/// glommio registers `io_memory` (page aligned, at least 64 KiB) on each of
/// its 3 rings per executor; each registration is charged separately.
pub fn registered_memory_bytes(io_memory_bytes: u64, shard_count: u64) -> u64 {
    let per_ring = io_memory_bytes
        .div_ceil(PAGE_BYTES)
        .saturating_mul(PAGE_BYTES)
        .max(GLOMMIO_IO_MEMORY_BYTES_MIN);
    per_ring
        .saturating_mul(GLOMMIO_RINGS_PER_SHARD)
        .saturating_mul(shard_count)
}

/// The largest `io_memory_bytes` whose registrations fit in `memlock_bytes`
/// for `shard_count` shards (page aligned), or `None` when not even glommio's
/// minimum fits.
pub fn io_memory_bytes_for_memlock(memlock_bytes: u64, shard_count: u64) -> Option<u64> {
    let per_ring = memlock_bytes / (GLOMMIO_RINGS_PER_SHARD * shard_count.max(1));
    let per_ring = per_ring / PAGE_BYTES * PAGE_BYTES;
    (per_ring >= GLOMMIO_IO_MEMORY_BYTES_MIN).then_some(per_ring)
}

/// `dir` made absolute against the current directory (without resolving
/// symlinks, so a missing directory still has a path).
pub fn absolute_path(dir: &Path) -> PathBuf {
    if dir.is_absolute() {
        return dir.to_path_buf();
    }
    match std::env::current_dir() {
        Ok(cwd) => cwd.join(dir),
        Err(_) => dir.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memlock_need_is_three_rings_per_shard_with_glommios_rounding() {
        assert_eq!(registered_memory_bytes(4 << 20, 2), 24 << 20);
        assert_eq!(registered_memory_bytes(1, 1), 3 * 64 * 1024);
        assert_eq!(registered_memory_bytes(100_000, 1), 3 * 102_400);
    }

    #[test]
    fn io_memory_for_a_memlock_limit_fits_it() {
        let io_memory = io_memory_bytes_for_memlock(8 << 20, 2).unwrap();
        assert!(registered_memory_bytes(io_memory, 2) <= 8 << 20);
        assert_eq!(io_memory % 4096, 0);
        assert_eq!(io_memory_bytes_for_memlock(64 * 1024, 4), None);
    }

    #[test]
    fn shards_wrap_around_the_allowed_cpus() {
        assert_eq!(broker_cpus(&[0, 1, 2, 3], 2), vec![0, 1]);
        assert_eq!(broker_cpus(&[2, 5], 3), vec![2, 5]);
        assert!(broker_cpus(&[], 3).is_empty());
    }

    #[test]
    fn settings_use_weirs_defaults_and_flags() {
        let settings = Settings::load(None, Some(Path::new("/tmp/x")), Some(1)).unwrap();
        assert_eq!(settings.shard_count, 1);
        assert_eq!(settings.broker_cpus.len(), 1);
        assert_eq!(settings.config.data_dir, PathBuf::from("/tmp/x"));
        assert!(Settings::load(None, None, Some(100_000)).is_err());
    }
}
