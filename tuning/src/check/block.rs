//! The block device under the data directory, from `/sys/dev/block`:
//! rotational or not, I/O scheduler, queue sizes, the largest request, the
//! volatile write cache, read-ahead and polled queues.
//!
//! For device-mapper and md devices the queue that schedules is the one of
//! the devices below (`slaves/`), so those are checked too. Virtual
//! filesystems (tmpfs, overlayfs) have no block device: one INFO says so.

use std::path::{Path, PathBuf};

use super::{fs::device_of, Context};
use crate::{
    host::{self, format_bytes},
    report::{Item, Status},
};

const FAMILY: &str = "block";

/// The sysfs directory of the whole disk for `(major, minor)`, resolving a
/// partition to its disk.
fn disk_dir(device: (u32, u32)) -> Result<PathBuf, String> {
    let link = PathBuf::from(format!("/sys/dev/block/{}:{}", device.0, device.1));
    let dir = std::fs::canonicalize(&link).map_err(|e| format!("{}: {e}", link.display()))?;
    if dir.join("partition").exists() {
        return dir
            .parent()
            .map(Path::to_path_buf)
            .ok_or_else(|| format!("{} has no parent disk", dir.display()));
    }
    Ok(dir)
}

fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

/// The disks that actually queue requests: the device's slaves (dm, md),
/// resolved to whole disks, or the device itself.
fn queueing_disks(disk: &Path) -> Vec<PathBuf> {
    let mut disks = Vec::new();
    if let Ok(entries) = std::fs::read_dir(disk.join("slaves")) {
        for entry in entries.flatten() {
            if let Ok(slave) = std::fs::canonicalize(entry.path()) {
                let whole = if slave.join("partition").exists() {
                    slave.parent().map(Path::to_path_buf).unwrap_or(slave)
                } else {
                    slave
                };
                if !disks.contains(&whole) {
                    disks.push(whole);
                }
            }
        }
    }
    if disks.is_empty() {
        disks.push(disk.to_path_buf());
    }
    disks
}

/// The device of the data dir; for anonymous devices (major 0: btrfs
/// subvolumes) the mount source's device, when it is a block device.
fn data_device(data_dir: &Path) -> Result<(u32, u32), String> {
    let device = device_of(data_dir)?;
    if device.0 != 0 {
        return Ok(device);
    }
    let canonical = std::fs::canonicalize(data_dir).map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let mounts: Vec<_> = text.lines().filter_map(super::fs::parse_mountinfo_line).collect();
    let mount = super::fs::find_mount(&mounts, &canonical, device).ok_or("no mount found")?;
    if !mount.source.starts_with("/dev/") {
        return Err(format!(
            "{} ({}) has no block device",
            mount.mount_point, mount.fs_type
        ));
    }
    use std::os::unix::fs::MetadataExt;
    let rdev = std::fs::metadata(&mount.source)
        .map_err(|e| format!("{}: {e}", mount.source))?
        .rdev();
    Ok((libc::major(rdev), libc::minor(rdev)))
}

pub fn check(context: &Context) -> Vec<Item> {
    // The fs family created a missing data dir and removed it again; look
    // at the nearest existing ancestor, which is on the same filesystem
    // weir would create it on.
    let mut probe_path = context.data_dir.as_path();
    while !probe_path.exists() {
        match probe_path.parent() {
            Some(parent) => probe_path = parent,
            None => break,
        }
    }
    let device = match data_device(probe_path) {
        Ok(device) => device,
        Err(e) => {
            return vec![Item::new(
                FAMILY,
                "device",
                Status::Info,
                "none",
                format!("no block device behind the data dir ({e}): queue settings not checked"),
            )]
        }
    };
    let disk = match disk_dir(device) {
        Ok(disk) => disk,
        Err(e) => {
            return vec![Item::new(
                FAMILY,
                "device",
                Status::Info,
                format!("{}:{}", device.0, device.1),
                format!("cannot find the device in sysfs ({e}): queue settings not checked"),
            )]
        }
    };
    let mut items = Vec::new();
    let disks = queueing_disks(&disk);
    let names: Vec<String> = disks.iter().map(|d| dir_name(d)).collect();
    items.push(Item::new(
        FAMILY,
        "device",
        Status::Info,
        if names == [dir_name(&disk)] {
            format!("{} ({}:{})", dir_name(&disk), device.0, device.1)
        } else {
            format!(
                "{} ({}:{}) over {}",
                dir_name(&disk),
                device.0,
                device.1,
                names.join(", ")
            )
        },
        "the device the data dir is on; the checks below read its request queue in sysfs",
    ));
    for disk in &disks {
        items.extend(queue_items(disk, context));
    }
    items
}

fn read_queue(disk: &Path, name: &str) -> Result<String, String> {
    host::read_text(disk.join("queue").join(name))
}

/// Verdict on the I/O scheduler for a (non-)rotational device.
pub fn scheduler_verdict(scheduler: &str, rotational: bool) -> (Status, &'static str) {
    match (scheduler, rotational) {
        ("none", false) => (
            Status::Pass,
            "no scheduler: requests go straight to the device's queues, the least CPU per request",
        ),
        ("mq-deadline", false) => (
            Status::Info,
            "fine; on fast NVMe 'none' saves a little CPU per request \
             (echo none > /sys/block/DEV/queue/scheduler, or a udev rule)",
        ),
        ("kyber", _) => (
            Status::Info,
            "kyber throttles by latency targets; 'none' or mq-deadline are simpler",
        ),
        ("bfq", _) => (
            Status::Warn,
            "bfq costs much CPU per request and idles between processes: use 'none' (SSD/NVMe) or \
             mq-deadline (rotational)",
        ),
        (_, true) => (
            Status::Info,
            "rotational disk: mq-deadline keeps sequential appends from starving reads",
        ),
        _ => (Status::Info, "an unusual scheduler; 'none' suits SSD/NVMe"),
    }
}

fn queue_items(disk: &Path, context: &Context) -> Vec<Item> {
    let name = dir_name(disk);
    let item = |check: &str, status: Status, value: String, advice: String| {
        Item::new(FAMILY, format!("{name}/{check}"), status, value, advice)
    };
    let mut items = Vec::new();
    // virtio and Xen disks report rotational=1 unless the hypervisor says
    // otherwise: for them it is a default, not a fact about the media.
    let virtual_disk = disk.to_string_lossy().contains("/virtio") || name.starts_with("xvd");
    let rotational = read_queue(disk, "rotational").map(|text| text == "1");
    match &rotational {
        Ok(true) if virtual_disk => items.push(item(
            "rotational",
            Status::Info,
            "1 (virtual disk: the hypervisor's default)".into(),
            "virtio/Xen disks say rotational unless the host declares them flash; what backs them is \
             unknown here (`weir-tune disk` measures it). If it is flash: echo 0 > /sys/block/DEV/queue/rotational"
                .into(),
        )),
        Ok(true) => items.push(item(
            "rotational",
            Status::Warn,
            "1 (spinning disk)".into(),
            "weir's latency targets assume SSD/NVMe: every fdatasync and every cold read is a seek".into(),
        )),
        Ok(false) => items.push(item(
            "rotational",
            Status::Pass,
            "0 (SSD, NVMe or virtual)".into(),
            "no seeks; nothing to do".into(),
        )),
        Err(e) => items.push(item("rotational", Status::Info, "unknown".into(), e.clone())),
    }
    let rotational = rotational.map(|rotational| rotational && !virtual_disk);
    match read_queue(disk, "scheduler") {
        Ok(text) => {
            let selected = host::selected_choice(&text).unwrap_or(text.as_str()).to_string();
            let (status, advice) = scheduler_verdict(&selected, rotational.unwrap_or(false));
            items.push(item(
                "scheduler",
                status,
                format!("{selected} (available: {text})"),
                advice.into(),
            ));
        }
        Err(e) => items.push(item("scheduler", Status::Info, "unknown".into(), e)),
    }
    match read_queue(disk, "nr_requests") {
        Ok(text) => items.push(item(
            "nr_requests",
            Status::Info,
            text,
            "requests the block layer queues per hardware queue before submitters wait; weir keeps \
             about one append in flight per partition being written plus its reads, far below it"
                .into(),
        )),
        Err(e) => items.push(item("nr_requests", Status::Info, "unknown".into(), e)),
    }
    let append_bytes = context.settings.config.append_write_bytes_max as u64;
    if let Ok(Ok(max_kib)) = read_queue(disk, "max_sectors_kb").map(|text| text.parse::<u64>()) {
        let max_bytes = max_kib * 1024;
        let advice = if append_bytes > max_bytes {
            format!(
                "appends up to append_write_bytes_max ({}) are split into {} requests of at most {}; \
                     harmless (they are in flight together), but the disk probe's knee may sit below \
                     append_write_bytes_max",
                format_bytes(append_bytes),
                append_bytes.div_ceil(max_bytes),
                format_bytes(max_bytes)
            )
        } else {
            format!(
                "every append (append_write_bytes_max {}) fits one request",
                format_bytes(append_bytes)
            )
        };
        items.push(item(
            "max_sectors_kb",
            Status::Info,
            format!("{max_kib} KiB"),
            advice,
        ));
    }
    match read_queue(disk, "write_cache") {
        Ok(text) => {
            let advice = if text.contains("back") {
                "the device acknowledges writes from a volatile cache: an O_DIRECT write (acks=1) may \
                 be lost on power loss, fdatasync (acks=all) flushes it. Keep barriers on."
            } else {
                "writes are stable when acknowledged; fdatasync is cheap"
            };
            items.push(item("write_cache", Status::Info, text, advice.into()));
        }
        Err(e) => items.push(item("write_cache", Status::Info, "unknown".into(), e)),
    }
    if let Ok(read_ahead_kib) = read_queue(disk, "read_ahead_kb") {
        items.push(item(
            "read_ahead_kb",
            Status::Info,
            format!("{read_ahead_kib} KiB"),
            "read-ahead of buffered reads: weir's cold fetches through the page cache prefetch ranges \
             with POSIX_FADV_WILLNEED; for many catch-up consumers 1024-4096 KiB reads ahead further \
             (blockdev --setra)"
                .into(),
        ));
    }
    if let Ok(io_poll) = read_queue(disk, "io_poll") {
        items.push(item(
            "io_poll",
            Status::Info,
            io_poll.clone(),
            if io_poll == "1" {
                "the device has polled queues: glommio's poll ring can complete O_DIRECT I/O without \
                 interrupts"
                    .into()
            } else {
                "no polled queues: O_DIRECT I/O completes by interrupt; weir reads one file with \
                 DmaFile at start so glommio's polled-I/O probe does not misfire (DESIGN.md)"
                    .into()
            },
        ));
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedulers_are_judged_by_device_kind() {
        assert_eq!(scheduler_verdict("none", false).0, Status::Pass);
        assert_eq!(scheduler_verdict("mq-deadline", false).0, Status::Info);
        assert_eq!(scheduler_verdict("bfq", false).0, Status::Warn);
        assert_eq!(scheduler_verdict("mq-deadline", true).0, Status::Info);
    }
}
