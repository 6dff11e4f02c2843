//! Networking sysctls that bound a broker's connections and throughput:
//! the accept backlog, TCP buffer autotuning limits, TCP memory, the
//! receive backlog and slow start after idle.
//!
//! In a container without its own view of `/proc/sys/net` these are
//! missing; that is reported as INFO.

use super::Context;
use crate::{
    host::{self, format_bytes},
    report::{Item, Status},
};

const FAMILY: &str = "net";

/// weir listens with this backlog (`src/net/listener.rs`); the kernel caps
/// it at net.core.somaxconn.
pub const WEIR_LISTEN_BACKLOG: u64 = 1024;
/// Below this TCP buffer autotuning maximum, one connection cannot fill a
/// fast link with any real round-trip time.
pub const TCP_BUFFER_BYTES_MAX_MIN: u64 = 4 << 20;
/// Page size for net.ipv4.tcp_mem (counted in pages).
const PAGE_BYTES: u64 = 4096;

pub fn check(_context: &Context) -> Vec<Item> {
    let mut items = vec![
        at_least_item(
            "net.core.somaxconn",
            WEIR_LISTEN_BACKLOG,
            "weir listens with a backlog of 1024; the kernel silently caps it at somaxconn, and a burst \
             of connecting clients beyond it sees SYN retries (1 s, 3 s, ...). Set 4096 (template).",
        ),
        at_least_item(
            "net.ipv4.tcp_max_syn_backlog",
            WEIR_LISTEN_BACKLOG,
            "half-open connections kept per listener during a connection storm. Set 4096 (template).",
        ),
    ];
    items.push(tcp_buffer_item("net.ipv4.tcp_rmem", "receive (producers' data)"));
    items.push(tcp_buffer_item("net.ipv4.tcp_wmem", "send (fetch responses)"));
    items.push(tcp_mem_item());
    items.push(info_item(
        "net.core.netdev_max_backlog",
        "packets queued per CPU between the NIC and the TCP stack; 1000 drops packets on 10G+ links \
         under bursts: 16384 on fast NICs (template).",
    ));
    items.push(match host::sysctl_u64("net.ipv4.tcp_slow_start_after_idle") {
        Ok(1) => Item::new(
            FAMILY,
            "net.ipv4.tcp_slow_start_after_idle",
            Status::Info,
            "1",
            "a connection idle for one RTO restarts from a small congestion window: a consumer's first \
             fetch after a pause ramps up slowly. 0 keeps the window (template).",
        ),
        Ok(value) => Item::new(
            FAMILY,
            "net.ipv4.tcp_slow_start_after_idle",
            Status::Pass,
            value.to_string(),
            "idle connections keep their congestion window.",
        ),
        Err(e) => missing_item("net.ipv4.tcp_slow_start_after_idle", e),
    });
    items
}

fn missing_item(name: &str, error: String) -> Item {
    Item::new(
        FAMILY,
        name,
        Status::Info,
        "unreadable",
        format!("{error} (containers may not expose the host's network sysctls)"),
    )
}

fn at_least_item(name: &'static str, minimum: u64, why: &str) -> Item {
    match host::sysctl_u64(name) {
        Ok(value) if value >= minimum => Item::new(
            FAMILY,
            name,
            Status::Pass,
            value.to_string(),
            format!("at least {minimum}. {why}"),
        ),
        Ok(value) => Item::new(
            FAMILY,
            name,
            Status::Warn,
            value.to_string(),
            format!("below {minimum}: {why}"),
        ),
        Err(e) => missing_item(name, e),
    }
}

fn info_item(name: &'static str, why: &str) -> Item {
    match host::sysctl(name) {
        Ok(value) => Item::new(FAMILY, name, Status::Info, value, why),
        Err(e) => missing_item(name, e),
    }
}

/// `min default max` of tcp_rmem/tcp_wmem: judged on the max.
pub fn tcp_buffer_verdict(values: &[u64]) -> Status {
    match values.get(2) {
        Some(&max) if max >= TCP_BUFFER_BYTES_MAX_MIN => Status::Pass,
        Some(_) => Status::Warn,
        None => Status::Info,
    }
}

fn tcp_buffer_item(name: &'static str, direction: &str) -> Item {
    match host::sysctl_u64_list(name) {
        Ok(values) => {
            let status = tcp_buffer_verdict(&values);
            let value = values.iter().map(u64::to_string).collect::<Vec<_>>().join(" ");
            let max = values.get(2).copied().unwrap_or(0);
            let advice = format!(
                "TCP {direction} buffers autotune up to {} per connection (weir sets no SO_RCVBUF/SO_SNDBUF, \
                 so net.core.*mem_max does not apply). Throughput per connection <= buffer / RTT: {} at 1 ms. \
                 16 MiB max for fast links across data centres (template).",
                format_bytes(max),
                format_bytes(max.saturating_mul(1000)) + "/s"
            );
            Item::new(FAMILY, name, status, value, advice)
        }
        Err(e) => missing_item(name, e),
    }
}

fn tcp_mem_item() -> Item {
    match host::sysctl_u64_list("net.ipv4.tcp_mem") {
        Ok(values) if values.len() == 3 => Item::new(
            FAMILY,
            "net.ipv4.tcp_mem",
            Status::Info,
            format!(
                "{} (pages: pressure at {}, limit {})",
                values.iter().map(u64::to_string).collect::<Vec<_>>().join(" "),
                format_bytes(values[1].saturating_mul(PAGE_BYTES)),
                format_bytes(values[2].saturating_mul(PAGE_BYTES))
            ),
            "memory all TCP sockets together may use; above 'pressure' the kernel shrinks buffers. The \
             default (a fraction of RAM) is right for most brokers.",
        ),
        Ok(values) => Item::new(
            FAMILY,
            "net.ipv4.tcp_mem",
            Status::Info,
            format!("{values:?}"),
            "unexpected format",
        ),
        Err(e) => missing_item("net.ipv4.tcp_mem", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_buffers_are_judged_on_their_maximum() {
        assert_eq!(tcp_buffer_verdict(&[4096, 131_072, 6_291_456]), Status::Pass);
        assert_eq!(tcp_buffer_verdict(&[4096, 16_384, 1_048_576]), Status::Warn);
        assert_eq!(tcp_buffer_verdict(&[4096]), Status::Info);
    }
}
