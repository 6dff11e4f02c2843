//! From measurements to a weir config file: which keys, which values, and
//! the measured reason for each, written as a comment above it.
//!
//! Only keys weir has are written as settings. What weir lacks (writes in
//! flight per partition, segment preallocation) is written as a comment
//! only, so the file always loads with `weir --config FILE`; the caller
//! verifies that with weir's own parser.
//!
//! The decisions are pure functions of the numbers ([`recommend`]), so they
//! are unit-tested without a disk.

use std::path::Path;

use super::{
    fsync::{FsyncCase, FsyncResult},
    write::{WriteCell, WriteMode},
};
use crate::{
    host::format_bytes,
    settings::{io_memory_bytes_for_memlock, registered_memory_bytes},
};

/// The knee of a bandwidth curve: the smallest block size reaching this
/// fraction of the best bandwidth.
pub const KNEE_FRACTION: f64 = 0.9;
/// fdatasync p99 at or below this makes `fsync_policy = "always"` cheap
/// enough to recommend (group commit hides it).
pub const FSYNC_ALWAYS_P99_US_MAX: f64 = 500.0;
/// fdatasync p99 above this makes acks=all slow: said in the comment.
pub const FSYNC_SLOW_P99_US: f64 = 20_000.0;
/// Zeroing segments ahead pays when overwriting beats appending by this
/// factor (in write bandwidth or in fdatasync latency).
pub const PREALLOCATION_GAIN_MIN: f64 = 1.2;
/// `segment_preallocate_bytes` when zeroing ahead pays (weir's default).
const PREALLOCATE_BYTES: i64 = 16 << 20;
/// weir's default `io_memory_bytes`.
pub const IO_MEMORY_BYTES_DEFAULT: u64 = 4 << 20;

/// What the host says about locked memory (for `io_memory_bytes`).
#[derive(Debug, Clone, Copy)]
pub struct MemlockFacts {
    pub soft_bytes: u64,
    pub privileged: bool,
    pub shard_count: u64,
}

pub struct Input<'a> {
    pub data_dir: &'a Path,
    pub writes: &'a [WriteCell],
    pub fsyncs: &'a [FsyncResult],
    pub memlock: MemlockFacts,
    pub quick: bool,
}

/// One line of the generated file: a setting, or a comment-only suggestion
/// for a knob weir does not have.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: &'static str,
    pub value: toml::Value,
    /// False: written as a comment (weir has no such option yet).
    pub is_weir_option: bool,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Recommendation {
    pub header: Vec<String>,
    pub entries: Vec<Entry>,
}

impl Recommendation {
    /// The value of a weir option, if recommended.
    pub fn value(&self, key: &str) -> Option<&toml::Value> {
        self.entries
            .iter()
            .find(|entry| entry.is_weir_option && entry.key == key)
            .map(|entry| &entry.value)
    }
}

/// Smallest block size whose bandwidth is within [`KNEE_FRACTION`] of the
/// best; `points` are (block bytes, MB/s).
pub fn knee_block_bytes(points: &[(usize, f64)]) -> Option<usize> {
    let best = points.iter().map(|(_, mb)| *mb).fold(0.0, f64::max);
    if best <= 0.0 {
        return None;
    }
    points
        .iter()
        .filter(|(_, mb)| *mb >= best * KNEE_FRACTION)
        .map(|(block, _)| *block)
        .min()
}

/// Smallest queue depth within [`KNEE_FRACTION`] of the best; (depth, MB/s).
pub fn knee_queue_depth(points: &[(usize, f64)]) -> Option<usize> {
    knee_block_bytes(points)
}

fn cells(writes: &[WriteCell], mode: WriteMode) -> impl Iterator<Item = &WriteCell> {
    writes.iter().filter(move |cell| cell.mode == mode)
}

fn best_mb_per_s(writes: &[WriteCell], mode: WriteMode) -> Option<f64> {
    cells(writes, mode)
        .map(|cell| cell.bandwidth_mb_per_s)
        .reduce(f64::max)
}

fn curve_text(points: &[(usize, f64)], unit: impl Fn(usize) -> String) -> String {
    points
        .iter()
        .map(|(x, mb)| format!("{} {:.0}", unit(*x), mb))
        .collect::<Vec<_>>()
        .join(", ")
}

fn fsync(fsyncs: &[FsyncResult], case: FsyncCase) -> Option<&FsyncResult> {
    fsyncs
        .iter()
        .find(|result| result.case == case && result.latency.count > 0)
}

pub fn recommend(input: &Input<'_>) -> Recommendation {
    let mut recommendation = Recommendation {
        header: vec![
            "weir configuration recommended by `weir-tune disk` from measurements of this host.".into(),
            format!("Data directory probed: {}", input.data_dir.display()),
            "MB = 10^6 bytes. Every setting below says what it was derived from; options not".into(),
            "listed keep weir's defaults (`weir --help`). Lines starting with `# <key> =` are".into(),
            "knobs weir does not have yet: comments only.".into(),
        ],
        entries: Vec::new(),
    };
    if input.quick {
        recommendation
            .header
            .push("--quick: tiny probe sizes; the numbers are rough. Rerun without --quick.".into());
    }
    recommendation.entries.push(Entry {
        key: "data_dir",
        value: toml::Value::String(input.data_dir.display().to_string()),
        is_weir_option: true,
        reasons: vec![
            "the directory whose filesystem was measured (absolute: weir may run elsewhere)".into(),
        ],
    });
    let append_bytes = append_write_entry(input, &mut recommendation);
    fsync_policy_entry(input, &mut recommendation);
    io_memory_entry(input, append_bytes, &mut recommendation);
    in_flight_entry(input, append_bytes, &mut recommendation);
    preallocation_entry(input, append_bytes, &mut recommendation);
    recommendation
}

/// `append_write_bytes_max` = the knee of the append curve at queue depth 1
/// (weir keeps one append in flight per partition). Returns the value.
fn append_write_entry(input: &Input<'_>, recommendation: &mut Recommendation) -> Option<usize> {
    let points: Vec<(usize, f64)> = cells(input.writes, WriteMode::Append)
        .filter(|cell| cell.queue_depth == 1)
        .map(|cell| (cell.block_bytes, cell.bandwidth_mb_per_s))
        .collect();
    let knee = knee_block_bytes(&points)?.max(4096);
    let best = points.iter().map(|(_, mb)| *mb).fold(0.0, f64::max);
    recommendation.entries.push(Entry {
        key: "append_write_bytes_max",
        value: toml::Value::Integer(knee as i64),
        is_weir_option: true,
        reasons: vec![
            format!(
                "appending O_DIRECT writes at queue depth 1 (weir writes one append at a time per partition), MB/s: {}",
                curve_text(&points, |block| format_bytes(block as u64))
            ),
            format!(
                "{} is the smallest block within {:.0}% of the best ({best:.0} MB/s): larger writes gain little \
                 and hold the partition's write longer",
                format_bytes(knee as u64),
                KNEE_FRACTION * 100.0
            ),
        ],
    });
    Some(knee)
}

fn fsync_policy_entry(input: &Input<'_>, recommendation: &mut Recommendation) {
    let Some(append) = fsync(input.fsyncs, FsyncCase::Append) else {
        return;
    };
    let latency = append.latency;
    let measured = format!(
        "fdatasync after a 4 KiB append: p50 {:.0} us, p99 {:.0} us, p99.9 {:.0} us, max {:.0} us ({} samples)",
        latency.p50_us, latency.p99_us, latency.p999_us, latency.max_us, latency.count
    );
    let (policy, why) = if latency.p99_us <= FSYNC_ALWAYS_P99_US_MAX {
        (
            "always",
            format!(
                "p99 <= {FSYNC_ALWAYS_P99_US_MAX:.0} us: syncing before every ack (acks=1 too) costs little once \
                 group-committed, and every acknowledged batch then survives power loss. Use \"acks-all\" to \
                 keep Kafka's acks=1 semantics (ack after the write only)"
            ),
        )
    } else if latency.p99_us <= FSYNC_SLOW_P99_US {
        (
            "acks-all",
            "too slow to pay on every ack, fine where producers ask for it (acks=all); acks=1 acks after the \
             O_DIRECT write"
                .to_string(),
        )
    } else {
        (
            "acks-all",
            format!(
                "p99 above {:.0} ms: acks=all produces will be slow on this disk. \"never\" would ack them \
                 after the write only (no power-loss durability): choose it knowingly, not from this tool",
                FSYNC_SLOW_P99_US / 1000.0
            ),
        )
    };
    recommendation.entries.push(Entry {
        key: "fsync_policy",
        value: toml::Value::String(policy.into()),
        is_weir_option: true,
        reasons: vec![measured, why],
    });
}

/// `io_memory_bytes`: room for a few append buffers (glommio's buddy
/// allocator rounds to powers of two), within RLIMIT_MEMLOCK when charged.
fn io_memory_entry(input: &Input<'_>, append_bytes: Option<usize>, recommendation: &mut Recommendation) {
    let append_bytes = append_bytes.unwrap_or(1 << 20) as u64;
    let wanted = IO_MEMORY_BYTES_DEFAULT.max(2 * append_bytes.next_power_of_two());
    let MemlockFacts {
        soft_bytes,
        privileged,
        shard_count,
    } = input.memlock;
    let mut reasons = vec![format!(
        "registered (fixed) buffers per shard; an append buffer of {} takes a {} block of it, and two \
         appends in flight should fit",
        format_bytes(append_bytes),
        format_bytes(append_bytes.next_power_of_two())
    )];
    let value = if privileged {
        reasons.push(format!(
            "measured as root/CAP_IPC_LOCK: not charged to RLIMIT_MEMLOCK. If weir runs unprivileged it \
             needs LimitMEMLOCK >= {} for {shard_count} shard(s) (3 rings each)",
            format_bytes(registered_memory_bytes(wanted, shard_count))
        ));
        wanted
    } else if registered_memory_bytes(wanted, shard_count) <= soft_bytes {
        reasons.push(format!(
            "fits RLIMIT_MEMLOCK {} for {shard_count} shard(s) x 3 rings",
            format_bytes(soft_bytes)
        ));
        wanted
    } else {
        match io_memory_bytes_for_memlock(soft_bytes, shard_count) {
            Some(fitting) => {
                reasons.push(format!(
                    "RLIMIT_MEMLOCK {} allows only this much for {shard_count} shard(s) x 3 rings; raise \
                     LimitMEMLOCK (or infinity) to use {}",
                    format_bytes(soft_bytes),
                    format_bytes(wanted)
                ));
                fitting
            }
            None => {
                reasons.push(format!(
                    "RLIMIT_MEMLOCK {} is too small for registered buffers at all: raise LimitMEMLOCK; \
                     glommio also refuses to start below 512 KiB",
                    format_bytes(soft_bytes)
                ));
                wanted
            }
        }
    };
    recommendation.entries.push(Entry {
        key: "io_memory_bytes",
        value: toml::Value::Integer(value as i64),
        is_weir_option: true,
        reasons,
    });
}

/// Comment only: how many writes per partition should be in flight, from
/// the overwrite curve at the chosen block size (appends cannot use more).
fn in_flight_entry(input: &Input<'_>, append_bytes: Option<usize>, recommendation: &mut Recommendation) {
    let Some(block) = append_bytes else {
        return;
    };
    let row = |mode: WriteMode| -> Vec<(usize, f64)> {
        cells(input.writes, mode)
            .filter(|cell| cell.block_bytes == block)
            .map(|cell| (cell.queue_depth, cell.bandwidth_mb_per_s))
            .collect()
    };
    let overwrite = row(WriteMode::Overwrite);
    let append = row(WriteMode::Append);
    let Some(depth) = knee_queue_depth(&overwrite) else {
        return;
    };
    let depth_text = |depth: usize| format!("QD{depth}");
    recommendation.entries.push(Entry {
        key: "append_writes_in_flight_max",
        value: toml::Value::Integer(depth as i64),
        is_weir_option: false,
        reasons: vec![
            format!(
                "weir has no such option: it keeps one O_DIRECT append in flight per partition. At {} blocks, MB/s:",
                format_bytes(block as u64)
            ),
            format!("  appending:   {}", curve_text(&append, depth_text)),
            format!("  overwriting: {}", curve_text(&overwrite, depth_text)),
            format!(
                "more writes in flight pay only into already written (preallocated) blocks; {} reaches \
                 {:.0}% of the best there",
                depth_text(depth),
                KNEE_FRACTION * 100.0
            ),
        ],
    });
}

/// `segment_preallocate_bytes`: whether keeping segments written with zeros
/// ahead of the appends pays on this disk (appends then overwrite: they
/// complete inline, and their fdatasync commits no journal), judged by the
/// fdatasync latency after an overwrite against after an append, and by the
/// write bandwidth at one write in flight and the chosen block size, which
/// is how weir writes.
fn preallocation_entry(input: &Input<'_>, append_bytes: Option<usize>, recommendation: &mut Recommendation) {
    let (Some(append), Some(overwrite)) = (
        best_mb_per_s(input.writes, WriteMode::Append),
        best_mb_per_s(input.writes, WriteMode::Overwrite),
    ) else {
        return;
    };
    let fallocated = best_mb_per_s(input.writes, WriteMode::Fallocated);
    let show = |mb: Option<f64>| mb.map_or("n/a".to_string(), |mb| format!("{mb:.0}"));
    let mut reasons = vec![format!(
        "best O_DIRECT write bandwidth at any depth, MB/s: appending {append:.0}, into fallocated space {}, \
         overwriting written blocks {overwrite:.0}",
        show(fallocated)
    )];
    let block = append_bytes.unwrap_or(1 << 20);
    let at_depth_one = |mode: WriteMode| {
        cells(input.writes, mode)
            .find(|cell| cell.block_bytes == block && cell.queue_depth == 1)
            .map(|cell| cell.bandwidth_mb_per_s)
    };
    let (append_one, overwrite_one) = (
        at_depth_one(WriteMode::Append),
        at_depth_one(WriteMode::Overwrite),
    );
    reasons.push(format!(
        "at one write in flight and {} blocks (how weir writes), MB/s: appending {}, overwriting {}",
        format_bytes(block as u64),
        show(append_one),
        show(overwrite_one)
    ));
    let faster_writes = overwrite >= append * PREALLOCATION_GAIN_MIN;
    let mut cheaper_syncs = false;
    if let (Some(append_sync), Some(overwrite_sync)) = (
        fsync(input.fsyncs, FsyncCase::Append),
        fsync(input.fsyncs, FsyncCase::Overwrite),
    ) {
        cheaper_syncs = overwrite_sync.latency.p50_us * PREALLOCATION_GAIN_MIN <= append_sync.latency.p50_us;
        reasons.push(format!(
            "fdatasync after a 4 KiB write, p50/p99: appending {:.0}/{:.0} us, overwriting {:.0}/{:.0} us",
            append_sync.latency.p50_us,
            append_sync.latency.p99_us,
            overwrite_sync.latency.p50_us,
            overwrite_sync.latency.p99_us
        ));
    }
    let value = if faster_writes || cheaper_syncs {
        reasons.push(
            "overwriting is faster here: keep the active segment zeroed ahead (weir's default, 16 MiB; it \
             costs up to that much disk per partition being written)"
                .into(),
        );
        PREALLOCATE_BYTES
    } else {
        reasons
            .push("overwriting is no faster than appending here: zeroing ahead would only add writes".into());
        0
    };
    recommendation.entries.push(Entry {
        key: "segment_preallocate_bytes",
        value: toml::Value::Integer(value),
        is_weir_option: true,
        reasons,
    });
}

/// Width at which reason comments wrap.
const COMMENT_WIDTH_CHARS: usize = 100;

/// The config file's text.
pub fn render(recommendation: &Recommendation) -> String {
    let mut text = String::new();
    for line in &recommendation.header {
        text.push_str(&format!("# {line}\n"));
    }
    for entry in &recommendation.entries {
        text.push('\n');
        for reason in &entry.reasons {
            let indent = reason.len() - reason.trim_start().len();
            let prefix = format!("# {}", " ".repeat(indent));
            for line in crate::report::wrap(reason, COMMENT_WIDTH_CHARS - prefix.len()) {
                text.push_str(&format!("{prefix}{line}\n"));
            }
        }
        if entry.is_weir_option {
            text.push_str(&format!("{} = {}\n", entry.key, entry.value));
        } else {
            text.push_str(&format!(
                "# {} = {}    (not a weir option yet)\n",
                entry.key, entry.value
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::disk::fsync::LatencySummary;

    fn cell(mode: WriteMode, block_bytes: usize, queue_depth: usize, mb: f64) -> WriteCell {
        WriteCell {
            mode,
            block_bytes,
            queue_depth,
            bytes: 1,
            elapsed_s: 1.0,
            bandwidth_mb_per_s: mb,
        }
    }

    fn fsync_result(case: FsyncCase, p99_us: f64) -> FsyncResult {
        FsyncResult {
            case,
            write_bytes: 4096,
            latency: LatencySummary {
                count: 100,
                mean_us: p99_us / 2.0,
                p50_us: p99_us / 2.0,
                p99_us,
                p999_us: p99_us * 2.0,
                max_us: p99_us * 3.0,
            },
        }
    }

    /// A disk like this VM's: appends flat in queue depth, overwrites scale.
    fn writes() -> Vec<WriteCell> {
        let mut writes = Vec::new();
        for (block, append_mb) in [
            (65536, 400.0),
            (262_144, 1000.0),
            (1 << 20, 1700.0),
            (4 << 20, 1750.0),
        ] {
            for depth in [1, 2, 4, 8] {
                writes.push(cell(WriteMode::Append, block, depth, append_mb));
                writes.push(cell(WriteMode::Fallocated, block, depth, append_mb * 1.1));
                let scaling = match depth {
                    1 => 1.0,
                    2 => 1.6,
                    4 => 2.0,
                    _ => 2.05,
                };
                writes.push(cell(WriteMode::Overwrite, block, depth, append_mb * scaling));
            }
        }
        writes
    }

    fn input<'a>(dir: &'a Path, writes: &'a [WriteCell], fsyncs: &'a [FsyncResult]) -> Input<'a> {
        Input {
            data_dir: dir,
            writes,
            fsyncs,
            memlock: MemlockFacts {
                soft_bytes: 8 << 20,
                privileged: false,
                shard_count: 2,
            },
            quick: false,
        }
    }

    #[test]
    fn the_knee_is_the_smallest_block_near_the_best() {
        let points = [
            (65536, 400.0),
            (262_144, 1000.0),
            (1 << 20, 1700.0),
            (4 << 20, 1750.0),
        ];
        assert_eq!(knee_block_bytes(&points), Some(1 << 20));
        assert_eq!(knee_block_bytes(&[(65536, 100.0)]), Some(65536));
        assert_eq!(knee_block_bytes(&[]), None);
        assert_eq!(knee_block_bytes(&[(65536, 0.0)]), None);
    }

    #[test]
    fn generated_toml_parses_back_with_weirs_keys_and_comment_only_knobs() {
        let dir = PathBuf::from("/var/lib/weir \"data\"");
        let writes = writes();
        let fsyncs = [
            fsync_result(FsyncCase::Append, 2000.0),
            fsync_result(FsyncCase::Overwrite, 150.0),
        ];
        let recommendation = recommend(&input(&dir, &writes, &fsyncs));
        let text = render(&recommendation);
        let table: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(table["data_dir"].as_str(), Some("/var/lib/weir \"data\""));
        assert_eq!(table["append_write_bytes_max"].as_integer(), Some(1 << 20));
        assert_eq!(table["fsync_policy"].as_str(), Some("acks-all"));
        let io_memory = table["io_memory_bytes"].as_integer().unwrap() as u64;
        assert!(
            registered_memory_bytes(io_memory, 2) <= 8 << 20,
            "must fit memlock"
        );
        // Knobs weir lacks are comments, never keys.
        assert!(!table.contains_key("append_writes_in_flight_max"));
        // Overwrites sync in 150 us against 2 ms: zeroing ahead pays.
        assert_eq!(table["segment_preallocate_bytes"].as_integer(), Some(16 << 20));
        assert!(
            text.contains("# append_writes_in_flight_max = 4    (not a weir option yet)"),
            "{text}"
        );
        assert!(text.contains("at one write in flight and 1 MiB blocks"), "{text}");
        // Every key is one of weir's options.
        for key in table.keys() {
            assert!(
                weir::config::OPTIONS.iter().any(|option| option.key == key),
                "{key}"
            );
        }
        // Every setting has a reason comment right above it.
        let lines: Vec<&str> = text.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            if !line.starts_with('#') && line.contains(" = ") {
                assert!(lines[index - 1].starts_with('#'), "no reason above '{line}'");
            }
        }
    }

    #[test]
    fn the_generated_file_loads_with_weirs_own_parser() {
        let dir = tempfile::tempdir().unwrap();
        let writes = writes();
        let fsyncs = [
            fsync_result(FsyncCase::Append, 100.0),
            fsync_result(FsyncCase::Overwrite, 50.0),
        ];
        let text = render(&recommend(&input(dir.path(), &writes, &fsyncs)));
        let path = dir.path().join("weir.toml");
        std::fs::write(&path, text).unwrap();
        let config = crate::settings::load_weir_config_file(&path).unwrap();
        assert_eq!(config.append_write_bytes_max, 1 << 20);
        assert_eq!(config.fsync_policy, weir::config::FsyncPolicy::Always);
        assert_eq!(config.data_dir, dir.path());
    }

    #[test]
    fn fsync_policy_follows_the_append_fdatasync_p99() {
        let dir = PathBuf::from("/d");
        let writes = writes();
        let policy = |p99_us: f64| {
            let fsyncs = [fsync_result(FsyncCase::Append, p99_us)];
            let recommendation = recommend(&input(&dir, &writes, &fsyncs));
            recommendation
                .value("fsync_policy")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        assert_eq!(policy(200.0).as_deref(), Some("always"));
        assert_eq!(policy(3000.0).as_deref(), Some("acks-all"));
        assert_eq!(policy(80_000.0).as_deref(), Some("acks-all"));
        let recommendation = recommend(&input(&dir, &writes, &[]));
        assert!(recommendation.value("fsync_policy").is_none());
    }

    #[test]
    fn privileged_probes_keep_the_wanted_io_memory_and_say_what_unprivileged_needs() {
        let dir = PathBuf::from("/d");
        let writes = writes();
        let mut input = input(&dir, &writes, &[]);
        input.memlock.privileged = true;
        let recommendation = recommend(&input);
        assert_eq!(
            recommendation
                .value("io_memory_bytes")
                .and_then(|v| v.as_integer()),
            Some(4 << 20)
        );
    }
}
