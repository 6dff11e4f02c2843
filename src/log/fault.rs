//! Named fault-injection points of the log, for tests of storage faults.
//!
//! Compiled in only with the `fault-injection` cargo feature, which the
//! test suite turns on (`scripts/test.sh`); in any other build [`check`] is
//! an inlined `Ok(())`. With the feature, the broker reads the file named by
//! `WEIR_FAULTS_FILE` (if set) at every check, so a test can inject and
//! clear faults while the broker runs. Each line is `point=action`:
//! - `eio` / `enospc`: the operation fails with that errno, as a failing or
//!   full disk would make it fail;
//! - `crash`: the process aborts right there (a kill at that step);
//! - `stall:MS`: the calling shard spins for MS milliseconds before going
//!   on (a blocked event loop, as a slow syscall or a long computation
//!   makes one; the stall counter of `/metrics` must see it).
//!
//! Points: `log::append::write`, `log::fsync`, `log::roll`,
//! `log::retention::unlink`, `log::compaction::write`,
//! `log::compaction::rename` (before the commit point of a swap),
//! `log::compaction::swap` (after it).

/// Fails (or aborts the process) when a test armed `point`.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn check(_point: &'static str) -> std::io::Result<()> {
    Ok(())
}

/// Fails (or aborts the process) when a test armed `point`.
#[cfg(feature = "fault-injection")]
pub fn check(point: &'static str) -> std::io::Result<()> {
    static FILE: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    let Some(path) = FILE.get_or_init(|| std::env::var_os("WEIR_FAULTS_FILE").map(Into::into)) else {
        return Ok(());
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    for line in text.lines() {
        let Some((name, action)) = line.trim().split_once('=') else {
            continue;
        };
        if name.trim() != point {
            continue;
        }
        if let Some(ms) = action
            .trim()
            .strip_prefix("stall:")
            .and_then(|ms| ms.parse().ok())
        {
            let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
            while std::time::Instant::now() < until {
                std::hint::spin_loop();
            }
            continue;
        }
        match action.trim() {
            "eio" => return Err(std::io::Error::from_raw_os_error(libc::EIO)),
            "enospc" => return Err(std::io::Error::from_raw_os_error(libc::ENOSPC)),
            "crash" => {
                eprintln!("fault injection: crash at {point}");
                std::process::abort();
            }
            other => log::warn!("fault injection: unknown action '{other}' for {point}"),
        }
    }
    Ok(())
}
