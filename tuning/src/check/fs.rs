//! The data directory's filesystem: its type (statfs magic), its mount
//! options, whether O_DIRECT works and with which alignment (probed with a
//! real file, and as `statx(STATX_DIOALIGN)` reports it), and free space.
//!
//! weir appends with O_DIRECT and relies on fdatasync reaching the device:
//! ext4 and xfs do both. tmpfs, network and FUSE filesystems either refuse
//! O_DIRECT, fake it, or make fdatasync mean something else.

use std::{
    ffi::CString,
    fs::File,
    os::{fd::AsRawFd, unix::ffi::OsStrExt},
    path::Path,
};

use super::Context;
use crate::{
    aligned::AlignedBuffer,
    host::format_bytes,
    probe_dir::ProbeDir,
    report::{Item, Status},
};

const FAMILY: &str = "fs";

/// How well a filesystem suits weir's O_DIRECT appends and fdatasync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsSuitability {
    Good,
    Questionable,
    Bad,
    Unknown,
}

/// Name and suitability of a statfs `f_type` magic, with the reason.
pub fn filesystem_name(magic: u64) -> (&'static str, FsSuitability, &'static str) {
    use FsSuitability::*;
    match magic as u32 {
        0xEF53 => (
            "ext2/3/4",
            Good,
            "O_DIRECT appends and fdatasync behave as weir expects",
        ),
        0x5846_5342 => (
            "xfs",
            Good,
            "O_DIRECT appends and fdatasync behave as weir expects",
        ),
        0x9123_683E => (
            "btrfs",
            Questionable,
            "copy-on-write: every O_DIRECT write allocates new extents (no in-place overwrite, \
             preallocation does not help) and data checksums cost CPU; prefer xfs or ext4",
        ),
        0x2FC1_2FC1 => (
            "zfs",
            Questionable,
            "OpenZFS before 2.3 ignores O_DIRECT (goes through the ARC)",
        ),
        0xF2F5_2010 => (
            "f2fs",
            Questionable,
            "O_DIRECT works; less tested with weir than ext4/xfs",
        ),
        0x0102_1994 => (
            "tmpfs",
            Bad,
            "memory: nothing survives a reboot, fdatasync is a no-op, O_DIRECT only since Linux 6.6",
        ),
        0x8584_58F6 => ("ramfs", Bad, "memory: no O_DIRECT, nothing survives a reboot"),
        0x794C_7630 => (
            "overlayfs",
            Bad,
            "a container's writable layer: O_DIRECT depends on the layer below, copy-up stalls, data \
             dies with the container; mount a volume (ext4/xfs) for the data dir",
        ),
        0x6969 => (
            "nfs",
            Bad,
            "network filesystem: O_DIRECT and fdatasync go over the network",
        ),
        0xFF53_4D42 => (
            "cifs",
            Bad,
            "network filesystem: O_DIRECT and fdatasync go over the network",
        ),
        0xFE53_4D42 => (
            "smb2",
            Bad,
            "network filesystem: O_DIRECT and fdatasync go over the network",
        ),
        0x6573_5546 => (
            "fuse",
            Bad,
            "FUSE: O_DIRECT and fdatasync semantics depend on the daemon",
        ),
        0x7371_7368 => ("squashfs", Bad, "read-only"),
        0x6161_7561 => ("aufs", Bad, "a union filesystem like overlayfs; mount a volume"),
        0x4D44 => ("vfat", Bad, "no O_DIRECT appends worth the name, no permissions"),
        0x5346_544E => ("ntfs", Bad, "not a Linux-native filesystem"),
        0xCA45_1A4E => (
            "bcachefs",
            Questionable,
            "young; less tested with weir than ext4/xfs",
        ),
        _ => (
            "unknown",
            Unknown,
            "not a filesystem weir-tune knows; the O_DIRECT probe below decides",
        ),
    }
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub device: (u32, u32),
    pub mount_point: String,
    pub mount_options: String,
    pub fs_type: String,
    pub source: String,
    pub super_options: String,
}

/// Parses `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`.
pub fn parse_mountinfo_line(line: &str) -> Option<MountInfo> {
    let (before, after) = line.split_once(" - ")?;
    let fields: Vec<&str> = before.split_whitespace().collect();
    if fields.len() < 6 {
        return None;
    }
    let (major, minor) = fields[2].split_once(':')?;
    let mut after = after.split_whitespace();
    Some(MountInfo {
        device: (major.parse().ok()?, minor.parse().ok()?),
        mount_point: unescape_octal(fields[4]),
        mount_options: fields[5].to_string(),
        fs_type: after.next()?.to_string(),
        source: after.next().unwrap_or("").to_string(),
        super_options: after.next().unwrap_or("").to_string(),
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\040` etc.
fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'\\' && index + 4 <= bytes.len() {
            let digits = &bytes[index + 1..index + 4];
            if digits.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let digits = std::str::from_utf8(digits).unwrap_or("");
                if let Ok(value) = u8::from_str_radix(digits, 8) {
                    out.push(value);
                    index += 4;
                    continue;
                }
            }
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount holding `path` (canonical): same device, longest mount point prefix.
pub fn find_mount<'a>(mounts: &'a [MountInfo], path: &Path, device: (u32, u32)) -> Option<&'a MountInfo> {
    let contains = |mount: &&MountInfo| path.starts_with(Path::new(&mount.mount_point));
    let longest = |a: &&MountInfo, b: &&MountInfo| a.mount_point.len().cmp(&b.mount_point.len());
    mounts
        .iter()
        .filter(|mount| mount.device == device)
        .filter(contains)
        .max_by(longest)
        .or_else(|| mounts.iter().filter(contains).max_by(longest))
}

/// What the O_DIRECT probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectIoAlignment {
    /// Smallest write size (and file offset) that O_DIRECT accepted.
    pub offset_bytes: u64,
    /// Smallest memory alignment that O_DIRECT accepted.
    pub memory_bytes: u64,
    /// `statx` `stx_dio_offset_align` / `stx_dio_mem_align`, when reported.
    pub statx_offset_bytes: Option<u32>,
    pub statx_memory_bytes: Option<u32>,
}

/// Write sizes tried for the offset/size alignment, smallest first.
const PROBE_SIZES_BYTES: [usize; 5] = [512, 1024, 2048, 4096, 8192];

/// Opens a probe file with O_DIRECT in `dir` and finds, by writing, the
/// smallest write size and memory alignment the kernel accepts; adds what
/// statx says. The file is removed when `dir` drops (or right away).
pub fn probe_direct_io_alignment(dir: &mut ProbeDir) -> Result<DirectIoAlignment, String> {
    let (file, path) = dir.create_file("odirect", libc::O_DIRECT).map_err(|e| {
        if e.contains("Invalid argument") {
            format!("{e}: this filesystem refuses O_DIRECT")
        } else {
            e
        }
    })?;
    let result = probe_open_file(&file);
    drop(file);
    dir.remove_file(&path);
    result
}

fn probe_open_file(file: &File) -> Result<DirectIoAlignment, String> {
    let largest = PROBE_SIZES_BYTES[PROBE_SIZES_BYTES.len() - 1];
    let buffer = AlignedBuffer::patterned(2 * largest, 1)?;
    let write_at = |offset_in_buffer: usize, length: usize| -> std::io::Result<()> {
        // SAFETY: offset_in_buffer + length <= buffer length (2 * largest).
        let pointer = unsafe { buffer.as_ptr().add(offset_in_buffer) };
        // SAFETY: pwrite reads `length` bytes from a live buffer.
        let written = unsafe { libc::pwrite(file.as_raw_fd(), pointer.cast(), length, 0) };
        if written < 0 {
            Err(std::io::Error::last_os_error())
        } else if written as usize != length {
            Err(std::io::Error::other(format!(
                "short write: {written} of {length}"
            )))
        } else {
            Ok(())
        }
    };
    let mut last_error = None;
    let mut offset_bytes = None;
    for size in PROBE_SIZES_BYTES {
        match write_at(0, size) {
            Ok(()) => {
                offset_bytes = Some(size);
                break;
            }
            Err(e) => last_error = Some(e),
        }
    }
    let offset_bytes = offset_bytes.ok_or_else(|| {
        format!(
            "no O_DIRECT write of {PROBE_SIZES_BYTES:?} bytes succeeded (last: {})",
            last_error.map_or("none".into(), |e| e.to_string())
        )
    })?;
    // The smallest power-of-two misalignment from a page that still works.
    let mut memory_bytes = crate::aligned::ALIGNMENT_BYTES as u64;
    for shift in 0..12 {
        let misalignment = 1usize << shift;
        if write_at(misalignment, offset_bytes).is_ok() {
            memory_bytes = misalignment as u64;
            break;
        }
    }
    let (statx_offset_bytes, statx_memory_bytes) = match statx_dio_alignment(file) {
        Some((offset, memory)) => (Some(offset), Some(memory)),
        None => (None, None),
    };
    Ok(DirectIoAlignment {
        offset_bytes: offset_bytes as u64,
        memory_bytes,
        statx_offset_bytes,
        statx_memory_bytes,
    })
}

/// `statx(STATX_DIOALIGN)` (Linux 6.1+, filesystem permitting): (offset, memory).
fn statx_dio_alignment(file: &File) -> Option<(u32, u32)> {
    // SAFETY: statx is plain data; the kernel fills it.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: empty path with AT_EMPTY_PATH stats the fd; `stx` is writable.
    let result = unsafe {
        libc::statx(
            file.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_DIOALIGN,
            &mut stx,
        )
    };
    if result != 0 || stx.stx_mask & libc::STATX_DIOALIGN == 0 || stx.stx_dio_offset_align == 0 {
        return None;
    }
    Some((stx.stx_dio_offset_align, stx.stx_dio_mem_align))
}

/// statfs of a path: (f_type, block size, blocks, available blocks).
fn statfs(path: &Path) -> Result<libc::statfs, String> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| "path contains NUL".to_string())?;
    // SAFETY: statfs is plain data.
    let mut stats: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and writable struct.
    if unsafe { libc::statfs(c_path.as_ptr(), &mut stats) } != 0 {
        return Err(format!(
            "statfs {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(stats)
}

/// The statfs `f_type` magic of the filesystem holding `path`.
pub fn filesystem_magic(path: &Path) -> Result<u64, String> {
    statfs(path).map(|stats| stats.f_type as u64)
}

/// (major, minor) of the device holding `path`.
pub fn device_of(path: &Path) -> Result<(u32, u32), String> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .dev();
    Ok((libc::major(dev), libc::minor(dev)))
}

pub fn check(context: &Context) -> Vec<Item> {
    let mut items = Vec::new();
    let mut probe_dir = match ProbeDir::open(&context.data_dir) {
        Ok(dir) => dir,
        Err(e) => {
            items.push(Item::new(
                FAMILY,
                "data_dir",
                Status::Fail,
                context.data_dir.display().to_string(),
                format!("{e}; weir creates and locks its data dir at start and would fail the same way"),
            ));
            return items;
        }
    };
    items.push(Item::new(
        FAMILY,
        "data_dir",
        if probe_dir.was_created() {
            Status::Info
        } else {
            Status::Pass
        },
        context.data_dir.display().to_string(),
        if probe_dir.was_created() {
            "did not exist: created for these checks and removed afterwards (weir creates it at start)"
        } else {
            "exists and is a directory"
        },
    ));
    let canonical = std::fs::canonicalize(probe_dir.path()).unwrap_or_else(|_| context.data_dir.clone());

    let mount = std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|text| {
            let mounts: Vec<MountInfo> = text.lines().filter_map(parse_mountinfo_line).collect();
            let device = device_of(&canonical).ok()?;
            find_mount(&mounts, &canonical, device).cloned()
        });
    match statfs(&canonical) {
        Ok(stats) => {
            items.push(type_item(stats.f_type as u64, mount.as_ref()));
            items.push(free_space_item(&stats, context));
        }
        Err(e) => items.push(Item::new(FAMILY, "type", Status::Warn, "unknown", e)),
    }
    items.push(mount_item(mount.as_ref()));
    items.push(match probe_direct_io_alignment(&mut probe_dir) {
        Ok(alignment) => direct_io_item(alignment),
        Err(e) => Item::new(
            FAMILY,
            "direct_io",
            Status::Fail,
            "O_DIRECT write failed",
            format!("{e}. weir appends with O_DIRECT: put the data dir on ext4 or xfs."),
        ),
    });
    items
}

fn type_item(magic: u64, mount: Option<&MountInfo>) -> Item {
    let (name, suitability, why) = filesystem_name(magic);
    let shown = match mount {
        Some(mount) if suitability != FsSuitability::Unknown || !mount.fs_type.is_empty() => {
            format!(
                "{} (statfs magic {magic:#x}, mounted from {})",
                mount.fs_type, mount.source
            )
        }
        _ => format!("{name} (statfs magic {magic:#x})"),
    };
    let status = match suitability {
        FsSuitability::Good => Status::Pass,
        FsSuitability::Questionable => Status::Warn,
        FsSuitability::Bad => Status::Fail,
        FsSuitability::Unknown => Status::Info,
    };
    Item::new(FAMILY, "type", status, shown, why)
}

/// Verdict on mount options (ext4 `data=journal`, barriers, `sync`).
pub fn mount_options_verdict(mount: &MountInfo) -> (Status, String) {
    let options: Vec<&str> = mount
        .mount_options
        .split(',')
        .chain(mount.super_options.split(','))
        .collect();
    let has = |option: &str| options.contains(&option);
    if mount.fs_type.starts_with("ext") && has("data=journal") {
        return (
            Status::Fail,
            "ext4 data=journal disables direct I/O: O_DIRECT writes silently go through the page cache \
             and the journal (twice the writes). Mount with data=ordered (the default)."
                .into(),
        );
    }
    if has("nobarrier") || has("barrier=0") {
        return (
            Status::Warn,
            "write barriers are off: fdatasync does not flush the device's volatile cache, so acks=all \
             does not survive power loss. Remove nobarrier unless the cache is battery-backed."
                .into(),
        );
    }
    if has("sync") || has("dirsync") {
        return (
            Status::Warn,
            "synchronous mount: every metadata change waits for the disk; weir already syncs what it \
             promises. Remove sync/dirsync."
                .into(),
        );
    }
    let atime = if has("noatime") {
        "noatime"
    } else if has("relatime") {
        "relatime (noatime saves a metadata update on the first read of a day; optional)"
    } else {
        "atime updated on reads: mount with noatime or relatime"
    };
    (Status::Pass, format!("no option weir objects to; {atime}."))
}

fn mount_item(mount: Option<&MountInfo>) -> Item {
    match mount {
        Some(mount) => {
            let (status, advice) = mount_options_verdict(mount);
            Item::new(
                FAMILY,
                "mount",
                status,
                format!(
                    "{} on {} ({},{})",
                    mount.source, mount.mount_point, mount.mount_options, mount.super_options
                ),
                advice,
            )
        }
        None => Item::new(
            FAMILY,
            "mount",
            Status::Info,
            "unknown",
            "the data dir's mount was not found in /proc/self/mountinfo; mount options not checked",
        ),
    }
}

fn direct_io_item(alignment: DirectIoAlignment) -> Item {
    let statx = match (alignment.statx_offset_bytes, alignment.statx_memory_bytes) {
        (Some(offset), Some(memory)) => format!("statx: offset {offset} B, memory {memory} B"),
        _ => "statx STATX_DIOALIGN not reported (Linux < 6.1 or filesystem)".into(),
    };
    let value = format!(
        "works; smallest aligned write {} B, memory alignment {} B (probed); {statx}",
        alignment.offset_bytes, alignment.memory_bytes
    );
    let mut advice = format!(
        "weir pads every O_DIRECT append to the file's alignment: a small acks=all produce writes at \
         least {} B. weir's buffers are page aligned, so memory alignment up to 4096 B is fine.",
        alignment.offset_bytes
    );
    if let Some(statx_offset) = alignment.statx_offset_bytes {
        if u64::from(statx_offset) != alignment.offset_bytes {
            advice.push_str(&format!(
                " The probe ({} B) and statx ({statx_offset} B) disagree: trust the larger.",
                alignment.offset_bytes
            ));
        }
    }
    if alignment.memory_bytes < 512 {
        advice.push_str(
            " Misaligned memory was accepted: the filesystem may fall back to buffered I/O for \
             unaligned O_DIRECT (btrfs does), or the device has a small DMA alignment (NVMe).",
        );
    }
    Item::new(
        FAMILY,
        "direct_io",
        if alignment.offset_bytes <= 4096 {
            Status::Pass
        } else {
            Status::Warn
        },
        value,
        advice,
    )
}

/// WARN below this fraction of the filesystem free.
const FREE_FRACTION_MIN: f64 = 0.05;
/// WARN below this many segments' worth of free space per shard.
const FREE_SEGMENTS_PER_SHARD_MIN: u64 = 4;

// statfs field types differ between targets (u64 here, u32 on some 32-bit ones).
#[allow(clippy::unnecessary_cast)]
fn free_space_item(stats: &libc::statfs, context: &Context) -> Item {
    let block = stats.f_frsize as u64;
    let free_bytes = (stats.f_bavail as u64).saturating_mul(block);
    let total_bytes = (stats.f_blocks as u64).saturating_mul(block);
    let fraction = if total_bytes == 0 {
        0.0
    } else {
        free_bytes as f64 / total_bytes as f64
    };
    let segment_bytes = context.settings.config.segment_bytes;
    let want_bytes = segment_bytes
        .saturating_mul(FREE_SEGMENTS_PER_SHARD_MIN)
        .saturating_mul(context.settings.shard_count as u64);
    let value = format!(
        "{} free of {} ({:.0}%)",
        format_bytes(free_bytes),
        format_bytes(total_bytes),
        fraction * 100.0
    );
    if free_bytes < want_bytes || fraction < FREE_FRACTION_MIN {
        Item::new(
            FAMILY,
            "free_space",
            Status::Warn,
            value,
            format!(
                "less than {:.0}% free or less than {FREE_SEGMENTS_PER_SHARD_MIN} segments ({}) per shard: \
                 weir has no retention yet, a full disk stops every append. Free space or add capacity.",
                FREE_FRACTION_MIN * 100.0,
                format_bytes(segment_bytes)
            ),
        )
    } else {
        Item::new(
            FAMILY,
            "free_space",
            Status::Pass,
            value,
            "weir has no retention yet: watch this grow with what producers write.",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statfs_magics_map_to_names_and_verdicts() {
        assert_eq!(filesystem_name(0xEF53).1, FsSuitability::Good);
        assert_eq!(filesystem_name(0x5846_5342).0, "xfs");
        assert_eq!(filesystem_name(0x0102_1994).1, FsSuitability::Bad);
        assert_eq!(filesystem_name(0x794C_7630).0, "overlayfs");
        assert_eq!(filesystem_name(0x6969).1, FsSuitability::Bad);
        assert_eq!(filesystem_name(0x9123_683E).1, FsSuitability::Questionable);
        assert_eq!(filesystem_name(0x1234_5678).1, FsSuitability::Unknown);
        // f_type is a signed long: a magic with the top bit set may arrive sign-extended.
        assert_eq!(filesystem_name(0xFFFF_FFFF_9123_683E).0, "btrfs");
    }

    #[test]
    fn mountinfo_lines_parse_with_escapes_and_optional_fields() {
        let line =
            "36 35 98:0 / /mnt/data\\040dir rw,noatime shared:1 master:2 - ext4 /dev/vdb rw,data=ordered";
        let mount = parse_mountinfo_line(line).unwrap();
        assert_eq!(mount.device, (98, 0));
        assert_eq!(mount.mount_point, "/mnt/data dir");
        assert_eq!(mount.mount_options, "rw,noatime");
        assert_eq!(mount.fs_type, "ext4");
        assert_eq!(mount.source, "/dev/vdb");
        assert_eq!(mount.super_options, "rw,data=ordered");
        assert!(parse_mountinfo_line("garbage").is_none());
        assert!(parse_mountinfo_line("1 2 x:y / / rw - ext4 /dev/a rw").is_none());
    }

    #[test]
    fn the_longest_matching_mount_on_the_same_device_wins() {
        let mounts: Vec<MountInfo> = [
            "1 0 8:1 / / rw - ext4 /dev/sda1 rw",
            "2 1 8:2 / /var rw - xfs /dev/sda2 rw",
            "3 1 0:40 / /var/tmp rw - tmpfs tmpfs rw",
        ]
        .iter()
        .filter_map(|line| parse_mountinfo_line(line))
        .collect();
        let found = find_mount(&mounts, Path::new("/var/lib/weir"), (8, 2)).unwrap();
        assert_eq!(found.fs_type, "xfs");
        let found = find_mount(&mounts, Path::new("/var/tmp/x"), (0, 40)).unwrap();
        assert_eq!(found.fs_type, "tmpfs");
        let found = find_mount(&mounts, Path::new("/home"), (9, 9)).unwrap();
        assert_eq!(found.mount_point, "/");
    }

    #[test]
    fn mount_options_that_break_promises_are_flagged() {
        let mount = |fs: &str, options: &str, super_options: &str| MountInfo {
            device: (8, 1),
            mount_point: "/".into(),
            mount_options: options.into(),
            fs_type: fs.into(),
            source: "/dev/sda1".into(),
            super_options: super_options.into(),
        };
        assert_eq!(
            mount_options_verdict(&mount("ext4", "rw", "rw,data=journal")).0,
            Status::Fail
        );
        assert_eq!(
            mount_options_verdict(&mount("ext4", "rw", "rw,nobarrier")).0,
            Status::Warn
        );
        assert_eq!(
            mount_options_verdict(&mount("xfs", "rw,sync", "rw")).0,
            Status::Warn
        );
        assert_eq!(
            mount_options_verdict(&mount("ext4", "rw,noatime", "rw,data=ordered")).0,
            Status::Pass
        );
    }

    #[test]
    fn direct_io_probe_reports_an_alignment_or_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut probe_dir = ProbeDir::open(dir.path()).unwrap();
        match probe_direct_io_alignment(&mut probe_dir) {
            Ok(alignment) => {
                assert!(alignment.offset_bytes.is_power_of_two());
                assert!(alignment.memory_bytes.is_power_of_two());
            }
            // tmpfs before 6.6 refuses O_DIRECT: an error, not a panic.
            Err(e) => assert!(e.contains("O_DIRECT") || e.contains("probe file"), "{e}"),
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "probe file left behind"
        );
    }
}
