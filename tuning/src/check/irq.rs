//! Interrupts: where the NIC's and the data disk's interrupts are handled,
//! compared with the CPUs weir's shards are pinned to.
//!
//! An interrupt, and the softirq work after it (TCP receive processing,
//! block completions), runs on whichever CPU the IRQ's affinity names. On a
//! shard's CPU it steals time from that shard at unpredictable moments. The
//! devices are found by name in `/proc/interrupts` (virtio devices are
//! resolved through `/sys/bus/virtio/devices/*/driver`, network interfaces
//! through `/sys/class/net`), and the CPUs from `/proc/irq/N/
//! effective_affinity_list` (where the IRQ really goes) or
//! `smp_affinity_list` (where it may go).

use std::collections::{BTreeMap, BTreeSet};

use super::Context;
use crate::{
    cpulist::{format_cpulist, parse_cpulist},
    host,
    report::{Item, Status},
};

const FAMILY: &str = "irq";

/// Lines shown per device class in the value.
const SHOWN_IRQS_MAX: usize = 8;

/// One numbered line of `/proc/interrupts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterruptLine {
    pub irq: u32,
    /// (cpu, interrupts handled there so far).
    pub counts: Vec<(usize, u64)>,
    /// Everything after the counts: chip, hardware irq, trigger, handlers.
    pub description: String,
    /// The handler name (last word), e.g. `virtio2-input.0`, `nvme0q3`.
    pub name: String,
}

/// Parses `/proc/interrupts`: the `CPUn` header, then numbered IRQ lines
/// (named rows such as `NMI:` and `LOC:` are skipped). Lines with fewer
/// count columns than CPUs are kept with the counts they have.
pub fn parse_interrupts(text: &str) -> Result<Vec<InterruptLine>, String> {
    let mut lines = text.lines();
    let header = lines.next().ok_or("empty /proc/interrupts")?;
    let cpus: Vec<usize> = header
        .split_whitespace()
        .map(|word| {
            word.strip_prefix("CPU")
                .and_then(|number| number.parse().ok())
                .ok_or_else(|| format!("unexpected /proc/interrupts header word '{word}'"))
        })
        .collect::<Result<_, _>>()?;
    if cpus.is_empty() {
        return Err("/proc/interrupts header lists no CPU".into());
    }
    let mut parsed = Vec::new();
    for line in lines {
        let Some((label, rest)) = line.split_once(':') else {
            continue;
        };
        let Ok(irq) = label.trim().parse::<u32>() else {
            continue;
        };
        let mut words = rest.split_whitespace().peekable();
        let mut counts = Vec::with_capacity(cpus.len());
        for &cpu in &cpus {
            match words.peek().and_then(|word| word.parse::<u64>().ok()) {
                Some(count) => {
                    counts.push((cpu, count));
                    words.next();
                }
                None => break,
            }
        }
        let description: Vec<&str> = words.collect();
        let name = description.last().map_or(String::new(), |word| word.to_string());
        parsed.push(InterruptLine {
            irq,
            counts,
            description: description.join(" "),
            name,
        });
    }
    Ok(parsed)
}

/// What a device interrupt belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IrqClass {
    Nic,
    Disk,
}

/// Names that identify devices on this host.
#[derive(Debug, Default)]
pub struct DeviceHints {
    /// `virtio2` → `virtio_net`.
    pub virtio_drivers: BTreeMap<String, String>,
    /// Network interface names with hardware behind them (`eth0`, `ens5`).
    pub net_interfaces: Vec<String>,
}

impl DeviceHints {
    fn from_host() -> DeviceHints {
        let mut hints = DeviceHints::default();
        if let Ok(entries) = std::fs::read_dir("/sys/bus/virtio/devices") {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Ok(driver) = std::fs::read_link(entry.path().join("driver")) {
                    if let Some(driver) = driver.file_name() {
                        hints
                            .virtio_drivers
                            .insert(name, driver.to_string_lossy().into_owned());
                    }
                }
            }
        }
        if let Ok(entries) = std::fs::read_dir("/sys/class/net") {
            for entry in entries.flatten() {
                // Only interfaces with a device behind them raise interrupts.
                if entry.path().join("device").exists() {
                    hints
                        .net_interfaces
                        .push(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
        hints
    }
}

/// NIC driver prefixes of interrupt names that do not carry the interface name.
const NIC_DRIVER_PREFIXES: &[&str] = &[
    "mlx4", "mlx5", "i40e", "ice", "ixgbe", "igb", "igc", "ena", "bnxt", "gve", "qede", "nfp", "hns", "sfc",
    "be2net", "enic", "vmxnet3", "iavf", "idpf", "e1000",
];
/// Storage driver prefixes.
const DISK_DRIVER_PREFIXES: &[&str] = &[
    "nvme",
    "ahci",
    "megasas",
    "mpt2sas",
    "mpt3sas",
    "aacraid",
    "hpsa",
    "smartpqi",
    "xen-blkfront",
];

/// Classifies an interrupt handler name; `None` for everything else
/// (timers, consoles, virtio config interrupts, balloon, ...).
pub fn classify(name: &str, hints: &DeviceHints) -> Option<IrqClass> {
    if let Some((device, queue)) = name.split_once('-') {
        if device.starts_with("virtio") {
            if queue == "config" {
                return None;
            }
            return match hints.virtio_drivers.get(device).map(String::as_str) {
                Some("virtio_net") => Some(IrqClass::Nic),
                Some("virtio_blk") | Some("virtio_scsi") => Some(IrqClass::Disk),
                _ => None,
            };
        }
    }
    if DISK_DRIVER_PREFIXES.iter().any(|prefix| name.starts_with(prefix)) {
        return Some(IrqClass::Disk);
    }
    let is_interface = |interface: &String| {
        name == interface
            || name
                .strip_prefix(interface.as_str())
                .is_some_and(|rest| rest.starts_with('-'))
    };
    if hints.net_interfaces.iter().any(is_interface)
        || NIC_DRIVER_PREFIXES.iter().any(|prefix| name.starts_with(prefix))
    {
        return Some(IrqClass::Nic);
    }
    None
}

/// The device part of a queue interrupt name: `virtio1-req.0` → `virtio1`,
/// `nvme0q3` → `nvme0`, `eth0-TxRx-1` → `eth0`.
pub fn device_of_irq_name(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("nvme") {
        let controller: String = rest.chars().take_while(char::is_ascii_digit).collect();
        return format!("nvme{controller}");
    }
    name.split(['-', '@']).next().unwrap_or(name).to_string()
}

/// CPUs an IRQ is delivered to: effective affinity, else allowed affinity,
/// else the CPUs that counted it.
fn irq_cpus(line: &InterruptLine) -> Vec<usize> {
    for file in ["effective_affinity_list", "smp_affinity_list"] {
        if let Ok(cpus) =
            host::read_text(format!("/proc/irq/{}/{file}", line.irq)).and_then(|text| parse_cpulist(&text))
        {
            if !cpus.is_empty() {
                return cpus;
            }
        }
    }
    line.counts
        .iter()
        .filter(|(_, count)| *count > 0)
        .map(|(cpu, _)| *cpu)
        .collect()
}

/// One classified interrupt and where it goes.
#[derive(Debug, Clone)]
pub struct RoutedIrq {
    pub irq: u32,
    pub name: String,
    pub cpus: Vec<usize>,
}

/// Verdict for one device class given where its IRQs go.
pub fn routing_verdict(
    class: IrqClass,
    irqs: &[RoutedIrq],
    broker_cpus: &[usize],
    online_cpu_count: usize,
) -> (Status, String) {
    let class_name = match class {
        IrqClass::Nic => "NIC",
        IrqClass::Disk => "disk",
    };
    if irqs.is_empty() {
        return (
            Status::Info,
            format!(
                "no {class_name} interrupts recognised in /proc/interrupts (container, or an unknown driver)"
            ),
        );
    }
    let on_shards: Vec<&RoutedIrq> = irqs
        .iter()
        .filter(|irq| irq.cpus.iter().any(|cpu| broker_cpus.contains(cpu)))
        .collect();
    if on_shards.is_empty() {
        return (
            Status::Pass,
            format!("{class_name} interrupts are handled off the shard CPUs; keep irqbalance from moving them back"),
        );
    }
    // Multi-queue devices with one queue per CPU (NVMe, virtio-blk mq) route
    // each core's completions back to that core: no foreign core is disturbed.
    let mut per_device: BTreeMap<String, usize> = BTreeMap::new();
    for irq in irqs {
        *per_device.entry(device_of_irq_name(&irq.name)).or_default() += 1;
    }
    if class == IrqClass::Disk
        && per_device
            .values()
            .all(|&queues| queues >= online_cpu_count.max(2))
    {
        return (
            Status::Info,
            "the disk has a queue (and interrupt) per CPU: each shard's I/O completes on its own CPU, \
             which is what weir wants; these affinities are managed by the kernel"
                .into(),
        );
    }
    let shard_cpus: BTreeSet<usize> = on_shards
        .iter()
        .flat_map(|irq| irq.cpus.iter().copied())
        .filter(|cpu| broker_cpus.contains(cpu))
        .collect();
    let spare = broker_cpus.len() >= online_cpu_count;
    let mut advice = format!(
        "{} {class_name} interrupt(s) land on shard CPU {}: the interrupt and its softirq work ({}) run \
         there, stealing time from the shard at random moments.",
        on_shards.len(),
        format_cpulist(&shard_cpus.into_iter().collect::<Vec<_>>()),
        match class {
            IrqClass::Nic => "TCP receive processing",
            IrqClass::Disk => "I/O completions",
        }
    );
    if spare {
        advice.push_str(
            " Every CPU runs a shard here, so there is no spare CPU: spread the queues evenly over the \
             shards (one per CPU) rather than piling them on one. On bigger machines leave CPUs out of \
             weir (cores, CPUAffinity=) and steer interrupts there.",
        );
    } else {
        advice.push_str(
            " Steer them to the CPUs weir does not use: echo LIST > /proc/irq/N/smp_affinity_list, and \
             keep irqbalance away from shard CPUs (IRQBALANCE_BANNED_CPULIST=<shard CPUs>).",
        );
    }
    (Status::Warn, advice)
}

fn describe(irqs: &[RoutedIrq]) -> String {
    let mut parts: Vec<String> = irqs
        .iter()
        .take(SHOWN_IRQS_MAX)
        .map(|irq| {
            format!(
                "{} (IRQ {}) -> CPU {}",
                irq.name,
                irq.irq,
                format_cpulist(&irq.cpus)
            )
        })
        .collect();
    if irqs.len() > SHOWN_IRQS_MAX {
        parts.push(format!("and {} more", irqs.len() - SHOWN_IRQS_MAX));
    }
    if parts.is_empty() {
        "none found".into()
    } else {
        parts.join("; ")
    }
}

fn irqbalance_running() -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        name.to_string_lossy().bytes().all(|b| b.is_ascii_digit())
            && host::read_text(entry.path().join("comm")).is_ok_and(|comm| comm == "irqbalance")
    })
}

pub fn check(context: &Context) -> Vec<Item> {
    let text = match host::read_text("/proc/interrupts") {
        Ok(text) => text,
        Err(e) => return vec![Item::new(FAMILY, "interrupts", Status::Info, "unreadable", e)],
    };
    let lines = match parse_interrupts(&text) {
        Ok(lines) => lines,
        Err(e) => return vec![Item::new(FAMILY, "interrupts", Status::Info, "unparsable", e)],
    };
    let hints = DeviceHints::from_host();
    let online = host::online_cpus().map(|cpus| cpus.len()).unwrap_or(1);
    let broker_cpus = &context.settings.broker_cpus;
    let mut items = Vec::new();
    for (class, name) in [(IrqClass::Nic, "nic"), (IrqClass::Disk, "disk")] {
        let routed: Vec<RoutedIrq> = lines
            .iter()
            .filter(|line| classify(&line.name, &hints) == Some(class))
            .map(|line| RoutedIrq {
                irq: line.irq,
                name: line.name.clone(),
                cpus: irq_cpus(line),
            })
            .collect();
        let (status, advice) = routing_verdict(class, &routed, broker_cpus, online);
        items.push(Item::new(FAMILY, name, status, describe(&routed), advice));
    }
    let running = irqbalance_running();
    items.push(Item::new(
        FAMILY,
        "irqbalance",
        Status::Info,
        if running { "running" } else { "not running" },
        if running {
            "irqbalance moves interrupts every 10 s: affinities set by hand do not stay; ban the shard CPUs \
             (IRQBALANCE_BANNED_CPULIST in /etc/default/irqbalance or /etc/sysconfig/irqbalance)."
        } else {
            "affinities set in /proc/irq/N/smp_affinity_list stay as set (until reboot: persist them)."
        },
    ));
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    const VM_INTERRUPTS: &str = "           CPU0       CPU1       \n\
  24:          1          0  IO-APIC   5-edge      ACPI:Ged\n\
  28:          0          0 PCI-MSIX-0000:00:01.0   0-edge      virtio0-config\n\
  36:          0    3203920 PCI-MSIX-0000:00:02.0   1-edge      virtio1-req.0\n\
  38:          0       2924 PCI-MSIX-0000:00:03.0   1-edge      virtio2-input.0\n\
  39:       2481          0 PCI-MSIX-0000:00:03.0   2-edge      virtio2-output.0\n\
  40:         12          3   IO-APIC   9-fasteoi   acpi, i801_smbus\n\
 NMI:          0          0   Non-maskable interrupts\n\
 ERR:          0\n";

    fn hints() -> DeviceHints {
        let mut hints = DeviceHints::default();
        hints
            .virtio_drivers
            .insert("virtio0".into(), "virtio_balloon".into());
        hints.virtio_drivers.insert("virtio1".into(), "virtio_blk".into());
        hints.virtio_drivers.insert("virtio2".into(), "virtio_net".into());
        hints.net_interfaces.push("eth0".into());
        hints
    }

    #[test]
    fn numbered_lines_parse_with_counts_and_names() {
        let lines = parse_interrupts(VM_INTERRUPTS).unwrap();
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[2].irq, 36);
        assert_eq!(lines[2].counts, vec![(0, 0), (1, 3_203_920)]);
        assert_eq!(lines[2].name, "virtio1-req.0");
        assert_eq!(lines[5].name, "i801_smbus");
        assert!(lines[5].description.contains("acpi, i801_smbus"));
    }

    #[test]
    fn headers_with_offline_cpus_and_short_lines_parse() {
        let text = "      CPU0  CPU2\n  5:  7  9  PCI-MSI  nvme0q1\n  6:  3\n";
        let lines = parse_interrupts(text).unwrap();
        assert_eq!(lines[0].counts, vec![(0, 7), (2, 9)]);
        assert_eq!(lines[0].name, "nvme0q1");
        assert_eq!(lines[1].counts, vec![(0, 3)]);
        assert_eq!(lines[1].name, "");
    }

    #[test]
    fn garbage_is_an_error_or_skipped_never_a_panic() {
        assert!(parse_interrupts("").is_err());
        assert!(parse_interrupts("garbage header\n").is_err());
        let lines = parse_interrupts("  CPU0\nxx: yy\n:\n 1:\n").unwrap();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].counts.is_empty());
    }

    #[test]
    fn devices_are_classified_by_virtio_driver_interface_and_driver_prefix() {
        let hints = hints();
        assert_eq!(classify("virtio1-req.0", &hints), Some(IrqClass::Disk));
        assert_eq!(classify("virtio2-input.0", &hints), Some(IrqClass::Nic));
        assert_eq!(classify("virtio2-config", &hints), None);
        assert_eq!(classify("virtio0-stats", &hints), None);
        assert_eq!(classify("nvme0q4", &hints), Some(IrqClass::Disk));
        assert_eq!(classify("eth0-TxRx-3", &hints), Some(IrqClass::Nic));
        assert_eq!(classify("eth01", &hints), None);
        assert_eq!(
            classify("mlx5_comp3@pci:0000:3b:00.0", &hints),
            Some(IrqClass::Nic)
        );
        assert_eq!(classify("ttyS0", &hints), None);
        assert_eq!(device_of_irq_name("nvme0q12"), "nvme0");
        assert_eq!(device_of_irq_name("virtio1-req.0"), "virtio1");
        assert_eq!(device_of_irq_name("mlx5_comp3@pci:0000:3b:00.0"), "mlx5_comp3");
    }

    fn routed(name: &str, cpus: &[usize]) -> RoutedIrq {
        RoutedIrq {
            irq: 1,
            name: name.into(),
            cpus: cpus.to_vec(),
        }
    }

    #[test]
    fn irqs_on_shard_cpus_warn_and_elsewhere_pass() {
        let nic = [routed("eth0-TxRx-0", &[0]), routed("eth0-TxRx-1", &[3])];
        assert_eq!(routing_verdict(IrqClass::Nic, &nic, &[3], 4).0, Status::Warn);
        assert_eq!(routing_verdict(IrqClass::Nic, &nic, &[1, 2], 4).0, Status::Pass);
        assert_eq!(routing_verdict(IrqClass::Nic, &[], &[0], 4).0, Status::Info);
        // A disk with one queue per CPU routes completions back to the submitter.
        let disk: Vec<RoutedIrq> = (0..4)
            .map(|cpu| routed(&format!("nvme0q{cpu}"), &[cpu]))
            .collect();
        assert_eq!(
            routing_verdict(IrqClass::Disk, &disk, &[0, 1, 2, 3], 4).0,
            Status::Info
        );
        let single = [routed("virtio1-req.0", &[1])];
        assert_eq!(
            routing_verdict(IrqClass::Disk, &single, &[0, 1], 2).0,
            Status::Warn
        );
    }
}
