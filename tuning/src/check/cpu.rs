//! CPUs: which ones weir's shards would be pinned to, the frequency
//! governor on them, SMT siblings, idle handling and CPU isolation.
//!
//! A shard is a busy-polling-capable executor pinned to one CPU: anything
//! that slows that CPU down (frequency ramps, deep idle states, a sibling
//! hyperthread, interrupts) shows up directly as request latency.

use super::Context;
use crate::{
    cpulist::{format_cpulist, parse_cpulist},
    host,
    report::{Item, Status},
};

const FAMILY: &str = "cpu";

pub fn check(context: &Context) -> Vec<Item> {
    let mut items = vec![shards_item(context)];
    items.push(governor_item(&context.settings.broker_cpus));
    items.extend(smt_item(&context.settings.broker_cpus));
    items.push(idle_item());
    items.push(cmdline_item(&context.settings.broker_cpus));
    items
}

fn shards_item(context: &Context) -> Item {
    let settings = &context.settings;
    let allowed = host::allowed_cpus().unwrap_or_default();
    let online = host::online_cpus().unwrap_or_default();
    let value = format!(
        "{} shard(s) on CPU {} (cores = {} in {}; {} allowed of {} online)",
        settings.shard_count,
        format_cpulist(&settings.broker_cpus),
        settings.config.cores,
        settings.source,
        allowed.len(),
        online.len()
    );
    if settings.shard_count > allowed.len() && !allowed.is_empty() {
        return Item::new(
            FAMILY,
            "shards",
            Status::Warn,
            value,
            "more shards than CPUs this process may use: weir wraps around and two shards share a CPU, \
             each getting half of it. Set cores to at most the allowed CPUs (or widen CPUAffinity).",
        );
    }
    let advice = if settings.shard_count == online.len() && online.len() > 1 {
        "every CPU runs a shard: interrupts, the kernel's own work and any other process share them. \
         On machines with many cores, leave one or two out (cores = N-1 or CPUAffinity=) for \
         interrupts and housekeeping."
    } else {
        "shard i is pinned to the i-th CPU this process may run on (CPUAffinity in the systemd unit \
         chooses which)."
    };
    Item::new(FAMILY, "shards", Status::Pass, value, advice)
}

/// Governors that keep the CPU at (or ramp instantly to) full speed.
fn governor_is_fast(governor: &str) -> bool {
    governor == "performance"
}

fn governor_item(cpus: &[usize]) -> Item {
    let mut governors: Vec<(usize, String)> = Vec::new();
    for &cpu in cpus {
        let path = format!("/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor");
        if let Ok(governor) = host::read_text(path) {
            governors.push((cpu, governor));
        }
    }
    if governors.is_empty() {
        return Item::new(
            FAMILY,
            "governor",
            Status::Info,
            "no cpufreq interface",
            "no scaling_governor in /sys/devices/system/cpu/cpu*/cpufreq: a VM (the hypervisor sets the \
             frequency) or no cpufreq driver loaded. Nothing to set here; on bare metal load the \
             driver (intel_pstate, amd-pstate, acpi-cpufreq) and use 'performance'.",
        );
    }
    let slow: Vec<&(usize, String)> = governors.iter().filter(|(_, g)| !governor_is_fast(g)).collect();
    let mut distinct: Vec<&str> = governors.iter().map(|(_, g)| g.as_str()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let value = format!("{} on shard CPUs", distinct.join(", "));
    if slow.is_empty() {
        Item::new(
            FAMILY,
            "governor",
            Status::Pass,
            value,
            "shard CPUs run at full speed.",
        )
    } else {
        let slow_cpus: Vec<usize> = slow.iter().map(|(cpu, _)| *cpu).collect();
        Item::new(
            FAMILY,
            "governor",
            Status::Warn,
            value,
            format!(
                "CPU {} ramp their frequency with load: the first requests of a burst run slowly. Set \
                 'performance' (cpupower frequency-set -g performance, or tuned's \
                 throughput-performance profile).",
                format_cpulist(&slow_cpus)
            ),
        )
    }
}

/// SMT siblings among shard CPUs.
fn smt_item(cpus: &[usize]) -> Option<Item> {
    let active = host::read_text("/sys/devices/system/cpu/smt/active").ok()?;
    if active != "1" {
        return Some(Item::new(
            FAMILY,
            "smt",
            Status::Pass,
            "off",
            "no hyperthreads: every shard has a core to itself.",
        ));
    }
    let mut shared = Vec::new();
    for &cpu in cpus {
        let path = format!("/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list");
        let Ok(siblings) = host::read_text(path).and_then(|text| parse_cpulist(&text)) else {
            continue;
        };
        if siblings
            .iter()
            .any(|&sibling| sibling != cpu && cpus.contains(&sibling))
        {
            shared.push(cpu);
        }
    }
    Some(if shared.is_empty() {
        Item::new(
            FAMILY,
            "smt",
            Status::Pass,
            "on; no two shards share a core",
            "each shard has a physical core (its sibling may run other work).",
        )
    } else {
        Item::new(
            FAMILY,
            "smt",
            Status::Info,
            format!(
                "on; shard CPUs {} share cores with other shards",
                format_cpulist(&shared)
            ),
            "two shards on hyperthreads of one core share its execution units: more shards, less per \
             shard. Fine for throughput; for the lowest latency run one shard per physical core.",
        )
    })
}

fn idle_item() -> Item {
    let driver = host::read_text("/sys/devices/system/cpu/cpuidle/current_driver");
    let governor = host::read_text("/sys/devices/system/cpu/cpuidle/current_governor")
        .or_else(|_| host::read_text("/sys/devices/system/cpu/cpuidle/current_governor_ro"));
    let value = format!(
        "driver {}, governor {}",
        driver.as_deref().unwrap_or("none"),
        governor.as_deref().unwrap_or("none")
    );
    Item::new(
        FAMILY,
        "idle",
        Status::Info,
        value,
        "waking an idle CPU costs microseconds (about 17 us measured on a VM whose vCPUs halt): every \
         cross-shard hop may pay it. In VMs the haltpoll driver/governor (cpuidle_haltpoll) polls \
         briefly before halting; on bare metal limiting C-states (tuned latency-performance) does the \
         same.",
    )
}

fn cmdline_item(cpus: &[usize]) -> Item {
    let cmdline = match host::read_text("/proc/cmdline") {
        Ok(cmdline) => cmdline,
        Err(e) => return Item::new(FAMILY, "isolation", Status::Info, "unknown", e),
    };
    let relevant: Vec<&str> = cmdline
        .split_whitespace()
        .filter(|word| {
            [
                "isolcpus=",
                "nohz_full=",
                "rcu_nocbs=",
                "irqaffinity=",
                "idle=",
                "mitigations=",
            ]
            .iter()
            .any(|prefix| word.starts_with(prefix))
        })
        .collect();
    if relevant.is_empty() {
        return Item::new(
            FAMILY,
            "isolation",
            Status::Info,
            "no isolcpus/nohz_full/irqaffinity on the kernel command line",
            "optional: on dedicated hosts, isolating shard CPUs from the scheduler's other work \
             (isolcpus=managed_irq,domain,LIST nohz_full=LIST) and steering interrupts elsewhere \
             (irqaffinity=OTHERS) removes most foreign work from them.",
        );
    }
    let isolated: Vec<usize> = relevant
        .iter()
        .find_map(|word| word.strip_prefix("isolcpus="))
        .map(|list| {
            // isolcpus may start with flags: isolcpus=managed_irq,domain,2-7
            let cpus: String = list
                .split(',')
                .filter(|part| part.starts_with(|c: char| c.is_ascii_digit()))
                .collect::<Vec<_>>()
                .join(",");
            parse_cpulist(&cpus).unwrap_or_default()
        })
        .unwrap_or_default();
    let advice = if !isolated.is_empty() && cpus.iter().any(|cpu| !isolated.contains(cpu)) {
        format!(
            "some shard CPUs are not in isolcpus ({}): pin weir to the isolated CPUs (CPUAffinity=)",
            format_cpulist(&isolated)
        )
    } else {
        "CPU isolation parameters as set on the kernel command line.".to_string()
    };
    Item::new(FAMILY, "isolation", Status::Info, relevant.join(" "), advice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_performance_counts_as_fast() {
        assert!(governor_is_fast("performance"));
        assert!(!governor_is_fast("powersave"));
        assert!(!governor_is_fast("schedutil"));
    }
}
