//! Reading the host: `/proc`, `/sys`, sysctls, the process's CPU affinity
//! and capabilities.
//!
//! Everything here returns `Result`: on VMs, in containers and on older
//! kernels many of these files are missing or unreadable, and that is normal.
//! Callers turn an error into an INFO or WARN item that says so; nothing here
//! panics on odd contents. Reads are bounded ([`READ_BYTES_MAX`]).

use std::{fs::File, io::Read, path::Path};

use crate::cpulist::parse_cpulist;

/// Largest /proc or /sys file read (a big machine's `/proc/interrupts` is a
/// few MiB).
pub const READ_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// Reads a small text file, trimmed. The error names the path.
pub fn read_text(path: impl AsRef<Path>) -> Result<String, String> {
    let path = path.as_ref();
    let mut text = String::new();
    File::open(path)
        .and_then(|file| file.take(READ_BYTES_MAX).read_to_string(&mut text))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text.trim().to_string())
}

/// A sysctl by its dotted name (`vm.swappiness`), read from `/proc/sys`.
pub fn sysctl(name: &str) -> Result<String, String> {
    read_text(Path::new("/proc/sys").join(name.replace('.', "/")))
}

/// A sysctl that holds one unsigned integer.
pub fn sysctl_u64(name: &str) -> Result<u64, String> {
    let text = sysctl(name)?;
    text.parse()
        .map_err(|_| format!("{name}: '{text}' is not an unsigned integer"))
}

/// A sysctl that holds several integers (`net.ipv4.tcp_rmem` = `4096 131072 6291456`).
pub fn sysctl_u64_list(name: &str) -> Result<Vec<u64>, String> {
    let text = sysctl(name)?;
    text.split_whitespace()
        .map(|word| {
            word.parse()
                .map_err(|_| format!("{name}: '{text}' is not a list of integers"))
        })
        .collect()
}

/// The bracketed choice of a sysfs selector (`always [madvise] never` → `madvise`).
pub fn selected_choice(text: &str) -> Option<&str> {
    let start = text.find('[')?;
    let end = text[start..].find(']')? + start;
    Some(&text[start + 1..end])
}

/// A `/proc/meminfo` field in bytes (`MemTotal:  24567890 kB`).
pub fn meminfo_bytes(meminfo: &str, field: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let mut words = rest.split_whitespace();
        let value: u64 = words.next()?.parse().ok()?;
        match words.next() {
            Some("kB") => value.checked_mul(1024),
            None => Some(value),
            Some(_) => None,
        }
    })
}

/// CPUs the kernel has online.
pub fn online_cpus() -> Result<Vec<usize>, String> {
    parse_cpulist(&read_text("/sys/devices/system/cpu/online")?)
}

/// CPUs this process may run on (sched_getaffinity), in ascending order:
/// weir pins shard i to the i-th of these (wrapping around).
pub fn allowed_cpus() -> Result<Vec<usize>, String> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `set` is a valid, writable cpu_set_t of `size` bytes.
    if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
        return Err(format!("sched_getaffinity: {}", std::io::Error::last_os_error()));
    }
    let bits = size * 8;
    // SAFETY: CPU_ISSET reads one bit of the set for cpu < bits.
    Ok((0..bits)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Effective user id is root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no failure mode and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// Linux capability number of CAP_IPC_LOCK.
const CAP_IPC_LOCK_BIT: u32 = 14;

/// Whether this process has CAP_IPC_LOCK in its effective set (memory it
/// pins, including io_uring registered buffers, is then not charged against
/// RLIMIT_MEMLOCK).
pub fn has_cap_ipc_lock() -> Result<bool, String> {
    let status = read_text("/proc/self/status")?;
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .ok_or("/proc/self/status has no CapEff line")?
        .trim();
    let mask = u64::from_str_radix(hex, 16).map_err(|_| format!("CapEff '{hex}' is not hex"))?;
    Ok(mask & (1 << CAP_IPC_LOCK_BIT) != 0)
}

/// Soft and hard value of a resource limit (`u64::MAX` = unlimited).
pub fn rlimit(resource: libc::c_int) -> Result<(u64, u64), String> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the local struct only.
    if unsafe { libc::getrlimit(resource as _, &mut limit) } != 0 {
        return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

/// How busy the host is: 1-minute load average and the share of the last
/// 10 s in which some task waited for I/O (PSI, `/proc/pressure/io`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct HostLoad {
    pub load_average_1m: Option<f64>,
    pub io_pressure_some_10s_percent: Option<f64>,
}

pub fn host_load() -> HostLoad {
    let load_average_1m = read_text("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok());
    let io_pressure_some_10s_percent = read_text("/proc/pressure/io")
        .ok()
        .and_then(|text| parse_pressure_some_avg10(&text));
    HostLoad {
        load_average_1m,
        io_pressure_some_10s_percent,
    }
}

/// `some avg10=89.94 avg60=74.30 ...` → 89.94.
pub fn parse_pressure_some_avg10(text: &str) -> Option<f64> {
    let line = text.lines().find(|line| line.starts_with("some "))?;
    line.split_whitespace()
        .find_map(|word| word.strip_prefix("avg10="))?
        .parse()
        .ok()
}

/// `8 MiB`, `512 KiB`, `3.5 GiB`, `123 B`: binary units for sizes.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    if bytes == u64::MAX {
        return "unlimited".into();
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selected_choice_takes_the_bracketed_word() {
        assert_eq!(selected_choice("always [madvise] never"), Some("madvise"));
        assert_eq!(selected_choice("[none] mq-deadline kyber bfq"), Some("none"));
        assert_eq!(selected_choice("none"), None);
        assert_eq!(selected_choice("broken [bracket"), None);
    }

    #[test]
    fn meminfo_fields_are_bytes() {
        let meminfo = "MemTotal:       24567890 kB\nSwapTotal:             0 kB\nHugePages_Total:       0\n";
        assert_eq!(meminfo_bytes(meminfo, "MemTotal"), Some(24_567_890 * 1024));
        assert_eq!(meminfo_bytes(meminfo, "SwapTotal"), Some(0));
        assert_eq!(meminfo_bytes(meminfo, "HugePages_Total"), Some(0));
        assert_eq!(meminfo_bytes(meminfo, "Mem"), None);
        assert_eq!(meminfo_bytes(meminfo, "MemFree"), None);
    }

    #[test]
    fn io_pressure_takes_the_some_line() {
        let text = "some avg10=89.94 avg60=74.30 avg300=36.05 total=8784629805\n\
                    full avg10=15.36 avg60=7.20 avg300=3.99 total=4303446062";
        assert_eq!(parse_pressure_some_avg10(text), Some(89.94));
        assert_eq!(parse_pressure_some_avg10("full avg10=1.00"), None);
        assert_eq!(parse_pressure_some_avg10("some avg10=x"), None);
    }

    #[test]
    fn sizes_format_in_binary_units() {
        assert_eq!(format_bytes(8 * 1024 * 1024), "8 MiB");
        assert_eq!(format_bytes(512 * 1024), "512 KiB");
        assert_eq!(format_bytes(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
        assert_eq!(format_bytes(100), "100 B");
        assert_eq!(format_bytes(u64::MAX), "unlimited");
    }

    #[test]
    fn this_process_can_read_its_own_affinity() {
        // Not a host-specific value: any process may run on at least one CPU.
        assert!(!allowed_cpus().unwrap().is_empty());
    }
}
