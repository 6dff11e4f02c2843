//! io_uring: whether this process may create a ring at all
//! (`kernel.io_uring_disabled`, seccomp), and which opcodes the kernel
//! supports, probed with IORING_REGISTER_PROBE on a throwaway ring.
//!
//! glommio 0.9 probes the same way at executor start and exits the process
//! when one of its opcodes is missing, so a missing glommio opcode is a FAIL.
//! Opcodes only some weir feature needs are WARNs that say which feature.

use io_uring::{opcode, IoUring, Probe};

use super::Context;
use crate::{
    host,
    report::{Item, Status},
};

const FAMILY: &str = "io_uring";

/// Who needs an opcode, and so how bad its absence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// In glommio 0.9's `GLOMMIO_URING_OPS`: glommio exits at start without it.
    GlommioStart,
    /// Used by glommio or planned by weir, not probed at start: a feature
    /// degrades or fails later.
    Feature,
}

struct OpNeed {
    name: &'static str,
    code: u8,
    kernel: &'static str,
    need: Need,
    why: &'static str,
}

/// Every opcode weir depends on, directly or through glommio.
const OPS: &[OpNeed] = &[
    OpNeed { name: "NOP", code: opcode::Nop::CODE, kernel: "5.1", need: Need::GlommioStart, why: "glommio wakes and links rings with it" },
    OpNeed { name: "READV", code: opcode::Readv::CODE, kernel: "5.1", need: Need::GlommioStart, why: "vectored file reads" },
    OpNeed { name: "WRITEV", code: opcode::Writev::CODE, kernel: "5.1", need: Need::GlommioStart, why: "vectored file writes" },
    OpNeed { name: "FSYNC", code: opcode::Fsync::CODE, kernel: "5.1", need: Need::GlommioStart, why: "fdatasync of segments (acks=all group commit)" },
    OpNeed { name: "READ_FIXED", code: opcode::ReadFixed::CODE, kernel: "5.1", need: Need::GlommioStart, why: "O_DIRECT reads into registered io_memory buffers" },
    OpNeed { name: "WRITE_FIXED", code: opcode::WriteFixed::CODE, kernel: "5.1", need: Need::GlommioStart, why: "O_DIRECT appends from registered io_memory buffers" },
    OpNeed { name: "POLL_ADD", code: opcode::PollAdd::CODE, kernel: "5.1", need: Need::GlommioStart, why: "socket readiness and cross-shard wakeups (eventfd)" },
    OpNeed { name: "POLL_REMOVE", code: opcode::PollRemove::CODE, kernel: "5.1", need: Need::GlommioStart, why: "cancelling readiness waits" },
    OpNeed { name: "SENDMSG", code: opcode::SendMsg::CODE, kernel: "5.3", need: Need::GlommioStart, why: "socket sends with ancillary data" },
    OpNeed { name: "RECVMSG", code: opcode::RecvMsg::CODE, kernel: "5.3", need: Need::GlommioStart, why: "socket receives with ancillary data" },
    OpNeed { name: "TIMEOUT", code: opcode::Timeout::CODE, kernel: "5.4", need: Need::GlommioStart, why: "timers (fetch long-poll max_wait_ms, shutdown deadlines)" },
    OpNeed { name: "TIMEOUT_REMOVE", code: opcode::TimeoutRemove::CODE, kernel: "5.5", need: Need::GlommioStart, why: "cancelling timers" },
    OpNeed { name: "ACCEPT", code: opcode::Accept::CODE, kernel: "5.5", need: Need::GlommioStart, why: "accepting Kafka connections on every shard" },
    OpNeed { name: "LINK_TIMEOUT", code: opcode::LinkTimeout::CODE, kernel: "5.5", need: Need::GlommioStart, why: "I/O with deadlines; glommio's preemption timer" },
    OpNeed { name: "CONNECT", code: opcode::Connect::CODE, kernel: "5.5", need: Need::GlommioStart, why: "outgoing connections" },
    OpNeed { name: "FALLOCATE", code: opcode::Fallocate::CODE, kernel: "5.6", need: Need::GlommioStart, why: "preallocating and truncating files" },
    OpNeed { name: "OPENAT", code: opcode::OpenAt::CODE, kernel: "5.6", need: Need::GlommioStart, why: "opening segment files (DmaFile)" },
    OpNeed { name: "CLOSE", code: opcode::Close::CODE, kernel: "5.6", need: Need::GlommioStart, why: "closing segment files" },
    OpNeed { name: "STATX", code: opcode::Statx::CODE, kernel: "5.6", need: Need::GlommioStart, why: "file sizes on open and recovery" },
    OpNeed { name: "READ", code: opcode::Read::CODE, kernel: "5.6", need: Need::GlommioStart, why: "file and socket reads" },
    OpNeed { name: "WRITE", code: opcode::Write::CODE, kernel: "5.6", need: Need::GlommioStart, why: "file and socket writes" },
    OpNeed { name: "SEND", code: opcode::Send::CODE, kernel: "5.6", need: Need::GlommioStart, why: "Kafka responses" },
    OpNeed { name: "RECV", code: opcode::Recv::CODE, kernel: "5.6", need: Need::GlommioStart, why: "Kafka requests" },
    OpNeed { name: "ASYNC_CANCEL", code: opcode::AsyncCancel::CODE, kernel: "5.5", need: Need::Feature, why: "glommio cancels I/O of dropped futures with it (closed connections, timed-out fetches); without it cancelled operations linger until they complete" },
    OpNeed { name: "SPLICE", code: opcode::Splice::CODE, kernel: "5.7", need: Need::Feature, why: "an asynchronous zero-copy cold fetch (file -> pipe -> socket) on the shard's ring; weir's current splice path uses splice(2) directly" },
];

/// `kernel.io_uring_disabled` (Linux 6.6+): 0 allowed, 1 only for root or
/// `kernel.io_uring_group`, 2 nobody.
fn disabled_item() -> Item {
    let name = "io_uring_disabled";
    match host::sysctl_u64("kernel.io_uring_disabled") {
        Err(_) => Item::new(
            FAMILY,
            name,
            Status::Info,
            "absent",
            "kernel.io_uring_disabled does not exist before Linux 6.6; io_uring is then governed only \
             by the kernel build and seccomp (see io_uring/ring).",
        ),
        Ok(0) => Item::new(
            FAMILY,
            name,
            Status::Pass,
            "0",
            "io_uring is allowed for every process.",
        ),
        Ok(1) => {
            let root = host::is_root();
            Item::new(
                FAMILY,
                name,
                if root { Status::Warn } else { Status::Fail },
                "1",
                "only root (CAP_SYS_ADMIN) and members of kernel.io_uring_group may create rings: run weir \
                 as root, add its user to that group, or set kernel.io_uring_disabled=0.",
            )
        }
        Ok(value) => Item::new(
            FAMILY,
            name,
            Status::Fail,
            value.to_string(),
            "io_uring is disabled for everyone and weir cannot start: set kernel.io_uring_disabled=0 \
             (sysctl.conf template).",
        ),
    }
}

/// What an io_uring_setup error means for an operator.
fn setup_error_advice(error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(libc::ENOSYS) => "the kernel has no io_uring (CONFIG_IO_URING off, or older than 5.1): \
                               weir cannot run here"
            .into(),
        Some(libc::EPERM) => "io_uring_setup is forbidden: kernel.io_uring_disabled, or a seccomp \
                              profile (Docker/containerd default profiles block io_uring): allow \
                              io_uring_setup, io_uring_enter and io_uring_register for weir"
            .into(),
        Some(libc::ENOMEM) => "not enough locked memory for the ring (kernels before 5.12 charge rings \
                               to RLIMIT_MEMLOCK): raise LimitMEMLOCK"
            .into(),
        _ => "weir cannot run without io_uring".into(),
    }
}

pub fn check(_context: &Context) -> Vec<Item> {
    let mut items = vec![disabled_item()];
    let ring = match IoUring::new(4) {
        Ok(ring) => ring,
        Err(error) => {
            let advice = setup_error_advice(&error);
            items.push(Item::new(
                FAMILY,
                "ring",
                Status::Fail,
                format!("io_uring_setup: {error}"),
                advice,
            ));
            return items;
        }
    };
    items.push(Item::new(
        FAMILY,
        "ring",
        Status::Pass,
        "io_uring_setup works",
        "this process could create a ring; weir creates 3 per shard (main, poll, latency).",
    ));
    items.push(if ring.params().is_feature_fast_poll() {
        Item::new(
            FAMILY,
            "fast_poll",
            Status::Pass,
            "IORING_FEAT_FAST_POLL",
            "socket reads and writes that would block are retried on readiness inside the kernel \
             instead of in io-wq worker threads.",
        )
    } else {
        Item::new(
            FAMILY,
            "fast_poll",
            Status::Warn,
            "missing",
            "without IORING_FEAT_FAST_POLL (5.7) every socket op that would block goes to an io-wq \
             worker thread: more CPU and latency per request. Upgrade to 5.10+.",
        )
    });

    let mut probe = Probe::new();
    if let Err(error) = ring.submitter().register_probe(&mut probe) {
        items.push(Item::new(
            FAMILY,
            "opcodes",
            Status::Fail,
            format!("IORING_REGISTER_PROBE: {error}"),
            "the kernel cannot list its io_uring opcodes (older than 5.6): glommio 0.9 panics at start \
             ('kernel should be at least 5.8'). Upgrade the kernel.",
        ));
        return items;
    }
    let missing: Vec<&OpNeed> = OPS.iter().filter(|op| !probe.is_supported(op.code)).collect();
    let supported_count = OPS.len() - missing.len();
    let glommio_missing = missing.iter().any(|op| op.need == Need::GlommioStart);
    let (status, advice) = if missing.is_empty() {
        (
            Status::Pass,
            "every opcode glommio 0.9 probes at start and every one weir's features use is supported."
                .to_string(),
        )
    } else if glommio_missing {
        (
            Status::Fail,
            "glommio 0.9 exits at start when one of its opcodes is missing ('Your kernel is older than \
             Caesar'): upgrade the kernel to 5.10+. Missing ones are listed below."
                .to_string(),
        )
    } else {
        (
            Status::Warn,
            "weir starts, but the features listed below degrade. Upgrade the kernel.".to_string(),
        )
    };
    let names: Vec<&str> = OPS.iter().map(|op| op.name).collect();
    items.push(Item::new(
        FAMILY,
        "opcodes",
        status,
        format!("{supported_count}/{} supported ({})", OPS.len(), names.join(" ")),
        advice,
    ));
    for op in missing {
        let status = match op.need {
            Need::GlommioStart => Status::Fail,
            Need::Feature => Status::Warn,
        };
        items.push(Item::new(
            FAMILY,
            format!("opcode/{}", op.name),
            status,
            format!("missing (needs Linux {})", op.kernel),
            op.why,
        ));
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcode_table_has_every_glommio_start_op_once() {
        let glommio: Vec<&str> = OPS
            .iter()
            .filter(|op| op.need == Need::GlommioStart)
            .map(|op| op.name)
            .collect();
        // glommio 0.9 `GLOMMIO_URING_OPS` has 23 entries.
        assert_eq!(glommio.len(), 23);
        let mut codes: Vec<u8> = OPS.iter().map(|op| op.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), OPS.len(), "an opcode is listed twice");
    }

    #[test]
    fn setup_errors_explain_the_cause() {
        let advice = setup_error_advice(&std::io::Error::from_raw_os_error(libc::EPERM));
        assert!(advice.contains("seccomp"));
        let advice = setup_error_advice(&std::io::Error::from_raw_os_error(libc::ENOSYS));
        assert!(advice.contains("5.1"));
    }
}
