//! Memory: transparent huge pages, swapping, page-cache writeback
//! (`vm.dirty_*`), NUMA reclaim, and whether weir's own memory budget (tail
//! caches and io_uring buffers per shard) fits the machine.
//!
//! weir's appends bypass the page cache (O_DIRECT), but its cold reads go
//! through it, and so does everything else on the host: a large dirty
//! backlog written back in one burst makes fdatasync (acks=all) wait behind
//! it for milliseconds to seconds (measured here).

use super::Context;
use crate::{
    host::{self, format_bytes},
    report::{Item, Status},
};

const FAMILY: &str = "memory";

/// Above this much dirty page cache, background writeback starts too late
/// and arrives in bursts that stall fdatasync.
pub const DIRTY_BACKGROUND_BYTES_MAX: u64 = 1 << 30;
/// Above this, writers are throttled only after a huge backlog built up.
pub const DIRTY_BYTES_MAX: u64 = 4 << 30;
/// Above this swappiness, the kernel swaps anonymous memory (tail caches,
/// shard state) to keep page cache.
pub const SWAPPINESS_MAX: u64 = 10;
/// weir's memory above this fraction of RAM leaves too little page cache for
/// cold reads.
pub const BROKER_MEMORY_FRACTION_MAX: f64 = 0.5;

pub fn check(context: &Context) -> Vec<Item> {
    let meminfo = host::read_text("/proc/meminfo").unwrap_or_default();
    vec![
        thp_enabled_item(),
        thp_defrag_item(),
        swap_item(&meminfo),
        dirty_item(&meminfo),
        budget_item(context, &meminfo),
        zone_reclaim_item(),
    ]
}

fn thp_enabled_item() -> Item {
    match host::read_text("/sys/kernel/mm/transparent_hugepage/enabled") {
        Ok(text) => {
            let mode = host::selected_choice(&text).unwrap_or(&text).to_string();
            let (status, advice) = match mode.as_str() {
                "always" | "madvise" => (
                    Status::Pass,
                    "huge pages are available: 'always' backs large tail caches with 2 MiB pages (fewer TLB \
                     misses); keep defrag off the allocation path (see thp_defrag).",
                ),
                "never" => (
                    Status::Info,
                    "no huge pages: large tail caches pay more TLB misses. 'madvise' or 'always' (with \
                     defrag=defer+madvise) is usually better for a broker.",
                ),
                _ => (Status::Info, "unusual THP mode."),
            };
            Item::new(FAMILY, "thp_enabled", status, mode, advice)
        }
        Err(e) => Item::new(FAMILY, "thp_enabled", Status::Info, "unknown", e),
    }
}

fn thp_defrag_item() -> Item {
    match host::read_text("/sys/kernel/mm/transparent_hugepage/defrag") {
        Ok(text) => {
            let mode = host::selected_choice(&text).unwrap_or(&text).to_string();
            let (status, advice) = if mode == "always" {
                (
                    Status::Warn,
                    "a page fault that wants a huge page compacts memory synchronously: a shard stalls for \
                     milliseconds. echo defer+madvise > /sys/kernel/mm/transparent_hugepage/defrag",
                )
            } else {
                (
                    Status::Pass,
                    "compaction happens in the background (khugepaged/kcompactd), not in a shard's page \
                     fault.",
                )
            };
            Item::new(FAMILY, "thp_defrag", status, mode, advice)
        }
        Err(e) => Item::new(FAMILY, "thp_defrag", Status::Info, "unknown", e),
    }
}

fn swap_item(meminfo: &str) -> Item {
    let swap_bytes = host::meminfo_bytes(meminfo, "SwapTotal").unwrap_or(0);
    let swappiness = host::sysctl_u64("vm.swappiness");
    let value = format!(
        "vm.swappiness = {}, swap {}",
        swappiness.as_ref().map_or("unknown".into(), u64::to_string),
        format_bytes(swap_bytes)
    );
    match swappiness {
        _ if swap_bytes == 0 => Item::new(
            FAMILY,
            "swappiness",
            Status::Pass,
            value,
            "no swap: nothing of weir is ever swapped out (size tail_cache_bytes so weir fits in RAM).",
        ),
        Ok(swappiness) if swappiness > SWAPPINESS_MAX => Item::new(
            FAMILY,
            "swappiness",
            Status::Warn,
            value,
            "the kernel may swap out a shard's tail cache or state to keep page cache: the next access \
             stalls that core on disk. Set vm.swappiness=1 (sysctl.conf template).",
        ),
        Ok(_) => Item::new(
            FAMILY,
            "swappiness",
            Status::Pass,
            value,
            "anonymous memory is swapped only under real pressure.",
        ),
        Err(e) => Item::new(FAMILY, "swappiness", Status::Info, value, e),
    }
}

/// The kernel's dirty threshold: the `_bytes` setting if non-zero, else
/// `ratio`% of dirtyable memory (approximated by MemAvailable).
pub fn dirty_threshold_bytes(bytes_setting: u64, ratio_percent: u64, available_bytes: u64) -> u64 {
    if bytes_setting > 0 {
        bytes_setting
    } else {
        available_bytes / 100 * ratio_percent
    }
}

fn dirty_item(meminfo: &str) -> Item {
    let read = |name: &str| host::sysctl_u64(name).ok();
    let (Some(background_bytes), Some(background_ratio), Some(dirty_bytes), Some(dirty_ratio)) = (
        read("vm.dirty_background_bytes"),
        read("vm.dirty_background_ratio"),
        read("vm.dirty_bytes"),
        read("vm.dirty_ratio"),
    ) else {
        return Item::new(
            FAMILY,
            "dirty",
            Status::Info,
            "unknown",
            "vm.dirty_* sysctls not readable here",
        );
    };
    let available = host::meminfo_bytes(meminfo, "MemAvailable")
        .or_else(|| host::meminfo_bytes(meminfo, "MemTotal"))
        .unwrap_or(0);
    let background = dirty_threshold_bytes(background_bytes, background_ratio, available);
    let dirty = dirty_threshold_bytes(dirty_bytes, dirty_ratio, available);
    let describe = |bytes: u64, ratio: u64, threshold: u64| {
        if bytes > 0 {
            format_bytes(bytes)
        } else {
            format!("{ratio}% (about {} now)", format_bytes(threshold))
        }
    };
    let expire = read("vm.dirty_expire_centisecs").map_or("?".into(), |v| v.to_string());
    let value = format!(
        "background {}, throttle {}, expire {} cs",
        describe(background_bytes, background_ratio, background),
        describe(dirty_bytes, dirty_ratio, dirty),
        expire
    );
    if background > DIRTY_BACKGROUND_BYTES_MAX || dirty > DIRTY_BYTES_MAX {
        Item::new(
            FAMILY,
            "dirty",
            Status::Warn,
            value,
            format!(
                "page-cache writeback starts only after {} are dirty and then arrives in bursts; an \
                 fdatasync (acks=all) issued meanwhile queues behind it (ms to s). weir's own appends \
                 are O_DIRECT, but logs, other services and cold-read neighbours are not. Set \
                 vm.dirty_background_bytes=268435456 and vm.dirty_bytes=1073741824 (sysctl.conf template).",
                format_bytes(background)
            ),
        )
    } else {
        Item::new(
            FAMILY,
            "dirty",
            Status::Pass,
            value,
            "writeback starts early and in small pieces: fdatasync rarely waits behind a burst.",
        )
    }
}

fn budget_item(context: &Context, meminfo: &str) -> Item {
    let config = &context.settings.config;
    let shards = context.settings.shard_count as u64;
    let per_shard = (config.tail_cache_bytes as u64).saturating_add(config.io_memory_bytes as u64);
    let broker_bytes = per_shard.saturating_mul(shards);
    let Some(total) = host::meminfo_bytes(meminfo, "MemTotal") else {
        return Item::new(
            FAMILY,
            "budget",
            Status::Info,
            "MemTotal unknown",
            "/proc/meminfo not readable",
        );
    };
    let value = format!(
        "{} shard(s) x (tail_cache_bytes {} + io_memory_bytes {}) = {} of {} RAM",
        shards,
        format_bytes(config.tail_cache_bytes as u64),
        format_bytes(config.io_memory_bytes as u64),
        format_bytes(broker_bytes),
        format_bytes(total)
    );
    if broker_bytes as f64 > total as f64 * BROKER_MEMORY_FRACTION_MAX {
        Item::new(
            FAMILY,
            "budget",
            Status::Warn,
            value,
            format!(
                "more than {:.0}% of RAM: little page cache is left for cold reads (spliced from the page \
                 cache) and the host may swap or OOM. Lower tail_cache_bytes.",
                BROKER_MEMORY_FRACTION_MAX * 100.0
            ),
        )
    } else {
        Item::new(
            FAMILY,
            "budget",
            Status::Pass,
            value,
            "the rest of RAM serves as page cache for cold reads; a bigger tail cache serves more \
             consumers from memory.",
        )
    }
}

fn zone_reclaim_item() -> Item {
    match host::sysctl_u64("vm.zone_reclaim_mode") {
        Ok(0) => Item::new(
            FAMILY,
            "zone_reclaim_mode",
            Status::Pass,
            "0",
            "on NUMA machines memory is taken from a remote node before page cache is reclaimed locally.",
        ),
        Ok(mode) => Item::new(
            FAMILY,
            "zone_reclaim_mode",
            Status::Warn,
            mode.to_string(),
            "the kernel reclaims page cache on the local NUMA node instead of using remote memory: cold \
             reads lose their cache and allocations stall. Set vm.zone_reclaim_mode=0.",
        ),
        Err(e) => Item::new(FAMILY, "zone_reclaim_mode", Status::Info, "unknown", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_threshold_prefers_bytes_over_ratio() {
        assert_eq!(dirty_threshold_bytes(256 << 20, 10, 24 << 30), 256 << 20);
        assert_eq!(dirty_threshold_bytes(0, 10, 1000 << 20), 100 << 20);
        assert_eq!(dirty_threshold_bytes(0, 0, 1 << 30), 0);
    }
}
