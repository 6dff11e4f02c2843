//! Resource limits: RLIMIT_MEMLOCK against the io_uring buffers weir's
//! settings register, and RLIMIT_NOFILE against the files and sockets a
//! broker keeps open.

use super::Context;
use crate::{
    host::{self, format_bytes},
    report::{Item, Status},
    settings::{io_memory_bytes_for_memlock, GLOMMIO_MEMLOCK_BYTES_MIN, GLOMMIO_RINGS_PER_SHARD},
};

const FAMILY: &str = "limits";

/// Below this hard RLIMIT_NOFILE a broker with a few thousand segments and
/// connections runs out of descriptors.
pub const OPEN_FILES_RECOMMENDED_MIN: u64 = 65_536;

pub fn check(context: &Context) -> Vec<Item> {
    vec![memlock_item(context), nofile_item(), nr_open_item()]
}

/// The facts that decide the memlock verdict, separated from the host so
/// the decision is testable.
#[derive(Debug, Clone, Copy)]
pub struct MemlockFacts {
    pub soft_bytes: u64,
    /// CAP_IPC_LOCK (root has it unless a container dropped it).
    pub privileged: bool,
    pub needed_bytes: u64,
    pub io_memory_bytes: u64,
    pub shard_count: u64,
}

pub fn memlock_verdict(facts: MemlockFacts) -> (Status, String) {
    let MemlockFacts {
        soft_bytes,
        privileged,
        needed_bytes,
        io_memory_bytes,
        shard_count,
    } = facts;
    let need = format!(
        "weir's settings register {} per shard on {GLOMMIO_RINGS_PER_SHARD} rings x {shard_count} shard(s) \
         = {} (io_memory_bytes {io_memory_bytes})",
        format_bytes(io_memory_bytes),
        format_bytes(needed_bytes)
    );
    if soft_bytes < GLOMMIO_MEMLOCK_BYTES_MIN {
        return (
            Status::Fail,
            format!(
                "glommio 0.9 refuses to start an executor below {} of RLIMIT_MEMLOCK, even as root. \
                 Set LimitMEMLOCK=infinity in the systemd unit or 'weir - memlock unlimited' in \
                 limits.conf (templates). {need}.",
                format_bytes(GLOMMIO_MEMLOCK_BYTES_MIN)
            ),
        );
    }
    if privileged {
        return (
            Status::Pass,
            format!(
                "this process has CAP_IPC_LOCK (root): io_uring registrations are not charged to the \
                 limit. Check the user weir really runs as: unprivileged, it needs {} or more. {need}.",
                format_bytes(needed_bytes)
            ),
        );
    }
    if soft_bytes >= needed_bytes {
        return (
            Status::Pass,
            format!(
                "{need}; the limit is per user, so other processes of the same user that lock memory \
                 count too."
            ),
        );
    }
    let fitting = match io_memory_bytes_for_memlock(soft_bytes, shard_count) {
        Some(bytes) => format!("or set io_memory_bytes = {bytes} (fits this limit)"),
        None => "this limit is too small for any io_memory_bytes".to_string(),
    };
    (
        Status::Warn,
        format!(
            "{need}, more than the limit: glommio logs 'registering buffers ... Skipping' and runs \
             without registered buffers (plain instead of fixed reads and writes: more CPU per I/O). \
             Raise LimitMEMLOCK to {} or infinity, grant CAP_IPC_LOCK, {fitting}.",
            format_bytes(needed_bytes)
        ),
    )
}

fn memlock_item(context: &Context) -> Item {
    let (soft_bytes, hard_bytes) = match host::rlimit(libc::RLIMIT_MEMLOCK as libc::c_int) {
        Ok(limits) => limits,
        Err(e) => return Item::new(FAMILY, "memlock", Status::Warn, "unknown", e),
    };
    let privileged = host::has_cap_ipc_lock().unwrap_or_else(|_| host::is_root());
    let facts = MemlockFacts {
        soft_bytes,
        privileged,
        needed_bytes: context.settings.registered_memory_bytes(),
        io_memory_bytes: context.settings.config.io_memory_bytes as u64,
        shard_count: context.settings.shard_count as u64,
    };
    let (status, advice) = memlock_verdict(facts);
    Item::new(
        FAMILY,
        "memlock",
        status,
        format!(
            "soft {}, hard {}, CAP_IPC_LOCK {}",
            format_bytes(soft_bytes),
            format_bytes(hard_bytes),
            if privileged { "yes" } else { "no" }
        ),
        advice,
    )
}

fn nofile_item() -> Item {
    let (soft, hard) = match host::rlimit(libc::RLIMIT_NOFILE as libc::c_int) {
        Ok(limits) => limits,
        Err(e) => return Item::new(FAMILY, "nofile", Status::Warn, "unknown", e),
    };
    let show = |value: u64| {
        if value == u64::MAX {
            "unlimited".to_string()
        } else {
            value.to_string()
        }
    };
    let value = format!("soft {}, hard {}", show(soft), show(hard));
    let why = "weir raises the soft limit to the hard one at start; it keeps one descriptor per segment \
               (two once a cold read opened its page-cache fd), one per connection and a few pipes per \
               shard";
    if hard < OPEN_FILES_RECOMMENDED_MIN {
        Item::new(
            FAMILY,
            "nofile",
            Status::Warn,
            value,
            format!(
                "{why}. Raise the hard limit to {OPEN_FILES_RECOMMENDED_MIN} or more (LimitNOFILE=1048576 \
                 in the systemd unit, nofile in limits.conf)."
            ),
        )
    } else {
        Item::new(
            FAMILY,
            "nofile",
            Status::Pass,
            value,
            format!("{why}. Nothing to do."),
        )
    }
}

fn nr_open_item() -> Item {
    match host::sysctl_u64("fs.nr_open") {
        Ok(nr_open) => Item::new(
            FAMILY,
            "fs.nr_open",
            Status::Info,
            nr_open.to_string(),
            "the ceiling for any process's RLIMIT_NOFILE; LimitNOFILE above it fails. Raise it only if \
             you need more than this many descriptors.",
        ),
        Err(e) => Item::new(FAMILY, "fs.nr_open", Status::Info, "unknown", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(soft_bytes: u64, privileged: bool) -> MemlockFacts {
        MemlockFacts {
            soft_bytes,
            privileged,
            needed_bytes: 24 << 20,
            io_memory_bytes: 4 << 20,
            shard_count: 2,
        }
    }

    #[test]
    fn below_glommios_minimum_fails_even_for_root() {
        assert_eq!(memlock_verdict(facts(64 * 1024, true)).0, Status::Fail);
    }

    #[test]
    fn root_is_not_charged() {
        assert_eq!(memlock_verdict(facts(8 << 20, true)).0, Status::Pass);
    }

    #[test]
    fn unprivileged_short_limit_warns_with_an_io_memory_that_fits() {
        let (status, advice) = memlock_verdict(facts(8 << 20, false));
        assert_eq!(status, Status::Warn);
        assert!(advice.contains("io_memory_bytes = 1396736"), "{advice}");
        assert_eq!(memlock_verdict(facts(u64::MAX, false)).0, Status::Pass);
    }
}
