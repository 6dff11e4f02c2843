//! The kernel: its version against what io_uring, glommio 0.9 and weir's
//! cold-read path need, and `cachestat(2)` (Linux 6.5+), which decides
//! whether weir can splice cold fetches from the page cache.

use std::os::fd::AsRawFd;

use super::Context;
use crate::report::{Item, Status};

const FAMILY: &str = "kernel";

/// A kernel release's numeric prefix (`6.18.44-fc-v669` → 6.18.44).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl KernelVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> KernelVersion {
        KernelVersion { major, minor, patch }
    }
}

impl std::fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// io_uring appeared in 5.1.
pub const IO_URING_KERNEL_MIN: KernelVersion = KernelVersion::new(5, 1, 0);
/// glommio 0.9 probes its opcodes with IORING_REGISTER_PROBE (5.6) and needs
/// ops up to 5.8; its README and its panic message name 5.8.
pub const GLOMMIO_KERNEL_MIN: KernelVersion = KernelVersion::new(5, 8, 0);
/// Oldest LTS line with a mature io_uring (5.10); before it, many io_uring
/// fixes were never backported.
pub const KERNEL_RECOMMENDED_MIN: KernelVersion = KernelVersion::new(5, 10, 0);
/// cachestat(2), used by weir to splice only page-cache-resident ranges.
pub const CACHESTAT_KERNEL_MIN: KernelVersion = KernelVersion::new(6, 5, 0);

/// Parses the leading `MAJOR.MINOR[.PATCH]` of a `uname -r` release string.
pub fn parse_kernel_release(release: &str) -> Result<KernelVersion, String> {
    let numeric: String = release
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = numeric.split('.').filter(|part| !part.is_empty());
    let mut next = |name: &str, required: bool| -> Result<u32, String> {
        match parts.next() {
            Some(part) => part
                .parse()
                .map_err(|_| format!("kernel release '{release}': bad {name} '{part}'")),
            None if required => Err(format!("kernel release '{release}' has no {name} version")),
            None => Ok(0),
        }
    };
    Ok(KernelVersion {
        major: next("major", true)?,
        minor: next("minor", true)?,
        patch: next("patch", false)?,
    })
}

/// `uname -r`.
fn kernel_release() -> Result<String, String> {
    // SAFETY: utsname is plain data; uname fills it.
    let mut name: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is a valid, writable utsname.
    if unsafe { libc::uname(&mut name) } != 0 {
        return Err(format!("uname: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: the kernel NUL-terminates release within its fixed-size array.
    let release = unsafe { std::ffi::CStr::from_ptr(name.release.as_ptr()) };
    Ok(release.to_string_lossy().into_owned())
}

pub fn check(_context: &Context) -> Vec<Item> {
    let mut items = Vec::new();
    let release = match kernel_release() {
        Ok(release) => release,
        Err(e) => {
            items.push(Item::new(
                FAMILY,
                "version",
                Status::Warn,
                "unknown",
                format!("cannot read the kernel release ({e}); weir needs Linux {GLOMMIO_KERNEL_MIN}+"),
            ));
            return items;
        }
    };
    let version = match parse_kernel_release(&release) {
        Ok(version) => version,
        Err(e) => {
            items.push(Item::new(
                FAMILY,
                "version",
                Status::Warn,
                release,
                format!("{e}; weir needs Linux {GLOMMIO_KERNEL_MIN}+ (glommio 0.9)"),
            ));
            return items;
        }
    };
    items.push(version_item(&release, version));
    items.push(cachestat_item(version));
    items
}

fn version_item(release: &str, version: KernelVersion) -> Item {
    let needs = format!(
        "io_uring needs {IO_URING_KERNEL_MIN}+; glommio 0.9 (weir's runtime) needs {GLOMMIO_KERNEL_MIN}+: \
         it probes its opcodes at start and exits if one is missing"
    );
    let (status, advice) = if version < IO_URING_KERNEL_MIN {
        (
            Status::Fail,
            format!("no io_uring in this kernel. {needs}. Upgrade the kernel."),
        )
    } else if version < GLOMMIO_KERNEL_MIN {
        (Status::Fail, format!("{needs}. Upgrade the kernel."))
    } else if version < KERNEL_RECOMMENDED_MIN {
        (
            Status::Warn,
            format!("{needs}; runs, but use {KERNEL_RECOMMENDED_MIN}+ (first LTS with a mature io_uring)."),
        )
    } else {
        (Status::Pass, format!("{needs}. Nothing to do."))
    };
    Item::new(
        FAMILY,
        "version",
        status,
        format!("{release} ({version})"),
        advice,
    )
}

/// `cachestat(2)`'s syscall number (the same on x86_64 and aarch64).
const SYS_CACHESTAT: libc::c_long = 451;

/// Calls cachestat on a file we can always open; ENOSYS means Linux < 6.5
/// (or a seccomp filter that does not know it).
fn cachestat_available() -> Result<bool, String> {
    let file = std::fs::File::open("/proc/self/exe").map_err(|e| format!("/proc/self/exe: {e}"))?;
    #[repr(C)]
    struct Range {
        offset: u64,
        length: u64,
    }
    let range = Range {
        offset: 0,
        length: 4096,
    };
    let mut stats = [0u64; 5];
    // SAFETY: cachestat reads `range` and writes at most 5 u64 into `stats`.
    let result = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd(),
            &range as *const Range,
            stats.as_mut_ptr(),
            0u32,
        )
    };
    if result == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::ENOSYS) => Ok(false),
        _ => Err(format!("cachestat: {error}")),
    }
}

fn cachestat_item(version: KernelVersion) -> Item {
    let why = "weir splices a cold fetch from the page cache only when cachestat(2) says every page \
               is resident; without it (Linux < 6.5) every read below the tail cache is an O_DIRECT \
               read copied into the response";
    match cachestat_available() {
        Ok(true) => Item::new(
            FAMILY,
            "cachestat",
            Status::Pass,
            "available",
            format!("{why}. Nothing to do."),
        ),
        Ok(false) => Item::new(
            FAMILY,
            "cachestat",
            if version < CACHESTAT_KERNEL_MIN {
                Status::Info
            } else {
                Status::Warn
            },
            "missing (ENOSYS)",
            format!(
                "{why}. Kernel {version}: {}",
                if version < CACHESTAT_KERNEL_MIN {
                    "upgrade to 6.5+ for zero-copy cold fetches"
                } else {
                    "the kernel is new enough, so a seccomp filter (container runtime) blocks it"
                }
            ),
        ),
        Err(e) => Item::new(
            FAMILY,
            "cachestat",
            Status::Info,
            "unknown",
            format!("{e}. {why}."),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_strings_of_common_distributions_parse() {
        assert_eq!(
            parse_kernel_release("6.18.44-fc-v669").unwrap(),
            KernelVersion::new(6, 18, 44)
        );
        assert_eq!(
            parse_kernel_release("5.15.0-91-generic").unwrap(),
            KernelVersion::new(5, 15, 0)
        );
        assert_eq!(
            parse_kernel_release("3.10.0-1160.el7.x86_64").unwrap(),
            KernelVersion::new(3, 10, 0)
        );
        assert_eq!(parse_kernel_release("6.1").unwrap(), KernelVersion::new(6, 1, 0));
        assert_eq!(
            parse_kernel_release("6.8.0+\n").unwrap(),
            KernelVersion::new(6, 8, 0)
        );
        assert_eq!(
            parse_kernel_release("4.19.0-rc3").unwrap(),
            KernelVersion::new(4, 19, 0)
        );
    }

    #[test]
    fn garbage_releases_are_errors() {
        assert!(parse_kernel_release("").is_err());
        assert!(parse_kernel_release("linux").is_err());
        assert!(parse_kernel_release("6").is_err());
        assert!(parse_kernel_release("99999999999.1").is_err());
    }

    #[test]
    fn versions_order_and_gate_glommio() {
        let status = |release: &str| version_item(release, parse_kernel_release(release).unwrap()).status;
        assert_eq!(status("4.19.0"), Status::Fail);
        assert_eq!(status("5.4.0"), Status::Fail);
        assert_eq!(status("5.8.0"), Status::Warn);
        assert_eq!(status("5.10.0"), Status::Pass);
        assert_eq!(status("6.18.44"), Status::Pass);
        assert!(KernelVersion::new(5, 10, 0) > KernelVersion::new(5, 9, 200));
    }
}
