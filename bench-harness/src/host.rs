//! What machine a run happened on, for `report.json`: CPU model and cores,
//! memory, kernel, hostname. Read from `/proc` (Linux only, as weir is);
//! anything unreadable is reported as unknown rather than failing the run.

use std::fs;

use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct HostInfo {
    pub hostname: String,
    pub os: &'static str,
    pub arch: &'static str,
    pub kernel_version: String,
    pub cpu_model: String,
    /// Logical CPUs online on the machine.
    pub cpu_cores_online: usize,
    /// Logical CPUs this process may run on (its affinity mask).
    pub cpu_cores_available: usize,
    pub memory_bytes: u64,
}

pub fn collect() -> HostInfo {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    HostInfo {
        hostname: read_trimmed("/proc/sys/kernel/hostname"),
        os: std::env::consts::OS,
        arch: std::env::consts::ARCH,
        kernel_version: read_trimmed("/proc/sys/kernel/osrelease"),
        cpu_model: cpu_model(&cpuinfo),
        cpu_cores_online: cpuinfo.lines().filter(|l| l.starts_with("processor")).count(),
        cpu_cores_available: core_affinity::get_core_ids().map_or(0, |ids| ids.len()),
        memory_bytes: memory_bytes(&meminfo),
    }
}

fn read_trimmed(path: &str) -> String {
    fs::read_to_string(path).map_or_else(|_| "unknown".to_string(), |s| s.trim().to_string())
}

fn cpu_model(cpuinfo: &str) -> String {
    cpuinfo
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            matches!(key.trim(), "model name" | "Model" | "cpu model").then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

fn memory_bytes(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix("MemTotal:")?;
            rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// `2026-11-21T12:00:00.123Z` for milliseconds since the UNIX epoch.
pub fn rfc3339_utc(unix_ms: u64) -> String {
    let seconds = unix_ms / 1000;
    let (days, second_of_day) = (seconds / 86_400, seconds % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        unix_ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_formats() {
        assert_eq!(
            cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n"),
            "AMD EPYC 7B13"
        );
        assert_eq!(
            memory_bytes("MemTotal:       24576000 kB\nMemFree: 1 kB\n"),
            24_576_000 * 1024
        );
        let host = collect();
        assert!(host.cpu_cores_available >= 1);
    }

    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339_utc(1_795_262_400_000), "2026-11-21T12:00:00.000Z");
    }
}
