//! Helpers shared by the baseline examples (not an example itself).

/// CPU seconds (user + system) a process has used, from /proc.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no memory effects.
    Some(ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64)
}

/// " broker_cpu_s_per_gib=X" for the CPU a broker used while `bytes` moved,
/// or nothing when it could not be read.
pub fn cpu_per_gib(before: Option<f64>, pid: Option<&String>, bytes: u64) -> String {
    match (before, pid.and_then(|pid| cpu_seconds(pid))) {
        (Some(before), Some(after)) if bytes > 0 => {
            format!(
                " broker_cpu_s_per_gib={:.3}",
                (after - before) / (bytes as f64 / (1u64 << 30) as f64)
            )
        }
        _ => String::new(),
    }
}
