//! Tests of log compaction (`log::compaction`) through the partition log:
//! what a consumer reads after a pass (the last value of every key, offsets
//! unchanged, tombstones until their horizon, aborted data gone), passes
//! bounded by a small key map, and crash consistency of the swap. Records
//! are read back through the log's own read path and decoded with
//! kafka-protocol's decoder (which also checks CRCs).

use std::{collections::BTreeMap, path::Path};

use bytes::Bytes;
use indexmap::IndexMap;
use kafka_protocol::records::{Record, RecordBatchDecoder, TimestampType as RecordTimestampType};

use super::{
    compaction::{unpaced, Cleaned, KEY_MAP_ENTRY_BYTES},
    now_ms,
    partition::{Durability, PartitionLog},
    recovery::open_log,
    tests::{encode_records, run, temp_dir},
};
use crate::{metadata::TopicConfig, protocol::record_batch};

const KEY_MAP_BYTES: usize = 1024 * 1024;

fn compacted(segment_bytes: u64) -> TopicConfig {
    let overrides: BTreeMap<String, String> = [
        ("cleanup.policy", "compact"),
        ("min.cleanable.dirty.ratio", "0.01"),
        ("delete.retention.ms", "1000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    TopicConfig {
        segment_bytes,
        ..TopicConfig::resolve(&crate::config::Config::default(), &overrides)
    }
}

async fn open(dir: &Path, config: TopicConfig) -> PartitionLog {
    open_log(dir, "compacted", 0, config, 1024 * 1024)
        .await
        .expect("open the log")
}

/// (key, value; None is a tombstone)
type Update = (String, Option<String>);

/// One batch of updates; transactional for `Some((producer id, first sequence))`.
fn batch(updates: &[Update], producer: Option<(i64, i32)>) -> Bytes {
    let (producer_id, epoch, first_sequence) = producer.map_or((-1, -1, 0), |(id, seq)| (id, 0, seq));
    let records: Vec<Record> = updates
        .iter()
        .enumerate()
        .map(|(index, (key, value))| Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: epoch,
            timestamp_type: RecordTimestampType::Creation,
            offset: index as i64,
            sequence: first_sequence + index as i32,
            timestamp: now_ms(),
            key: Some(Bytes::from(key.clone())),
            value: value.clone().map(Bytes::from),
            headers: IndexMap::new(),
        })
        .collect();
    encode_records(&records)
}

async fn append(log: &PartitionLog, bytes: Bytes) -> i64 {
    let header = record_batch::validate_produced_batch(&bytes, usize::MAX).expect("valid batch");
    log.append(bytes, &header, Durability::Written)
        .await
        .expect("append")
        .base_offset
}

/// Appends `updates` in batches of `per_batch`; returns (offset, update).
async fn append_all(log: &PartitionLog, updates: &[Update], per_batch: usize) -> Vec<(i64, Update)> {
    let mut written = Vec::new();
    for chunk in updates.chunks(per_batch) {
        let base = append(log, batch(chunk, None)).await;
        for (index, update) in chunk.iter().enumerate() {
            written.push((base + index as i64, update.clone()));
        }
    }
    written
}

/// A record as read back: offset, key, value, control.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Read {
    offset: i64,
    key: Option<String>,
    value: Option<String>,
    control: bool,
}

/// Every record from the log start to the high watermark, through the
/// log's read path.
async fn read_all(log: &PartitionLog) -> Vec<Read> {
    let mut offset = log.log_start_offset();
    let end = log.high_watermark();
    let mut out: Vec<Read> = Vec::new();
    while offset < end {
        let read = log.read(offset, 1024 * 1024, true).await.expect("read");
        if read.batches.is_empty() {
            // Compaction removed everything from here to the end (a
            // consumer waits here for new data, as with Kafka).
            break;
        }
        for bytes in read.batches {
            record_batch::verify_crc(&bytes).expect("CRC of a read batch");
            let header = record_batch::BatchHeader::parse(&bytes).expect("header");
            let mut buffer = bytes.clone();
            let decoded = RecordBatchDecoder::decode(&mut buffer).expect("Kafka's decoder reads it");
            for record in decoded.records {
                if record.offset < offset {
                    continue;
                }
                out.push(Read {
                    offset: record.offset,
                    key: record.key.map(|k| String::from_utf8_lossy(&k).into_owned()),
                    value: record.value.map(|v| String::from_utf8_lossy(&v).into_owned()),
                    control: record.control,
                });
            }
            offset = header.last_offset() + 1;
        }
    }
    assert!(
        out.windows(2).all(|w| w[0].offset < w[1].offset),
        "offsets increase"
    );
    out
}

/// What compaction must leave: a record stays if it is at or after the
/// map's end, or is the last of its key before it.
fn expected(written: &[(i64, Update)], map_end: i64) -> Vec<Read> {
    let mut latest: BTreeMap<&str, i64> = BTreeMap::new();
    for (offset, (key, _)) in written.iter().filter(|(o, _)| *o < map_end) {
        latest.insert(key, *offset);
    }
    written
        .iter()
        .filter(|(offset, (key, _))| *offset >= map_end || latest.get(key.as_str()) == Some(offset))
        .map(|(offset, (key, value))| Read {
            offset: *offset,
            key: Some(key.clone()),
            value: value.clone(),
            control: false,
        })
        .collect()
}

fn updates(keys: usize, rounds: usize) -> Vec<Update> {
    (0..rounds)
        .flat_map(|round| (0..keys).map(move |key| (format!("k{key}"), Some(format!("v{key}-{round}")))))
        .collect()
}

/// Rolls the active segment so everything written so far is cleanable.
async fn seal(log: &PartitionLog) {
    log.roll_active().await.expect("roll");
}

#[test]
fn a_paced_pass_charges_every_byte_it_reads_and_rests_as_told() {
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, compacted(4096)).await;
        let written = append_all(&log, &updates(200, 10), 50).await;
        seal(&log).await;
        let charged = std::cell::Cell::new(0u64);
        let calls = std::cell::Cell::new(0u32);
        let pace = |bytes: u64| {
            charged.set(charged.get() + bytes);
            calls.set(calls.get() + 1);
            std::time::Duration::from_micros(100)
        };
        let cleaned = log
            .compact(now_ms(), KEY_MAP_BYTES, &pace)
            .await
            .expect("compact");
        // The key map reads the dirty log once, the rewrite once more.
        assert_eq!(charged.get(), 2 * cleaned.bytes_read);
        assert!(calls.get() >= 1);
        assert_eq!(read_all(&log).await, expected(&written, cleaned.map_end_offset));
    });
}

#[test]
fn a_pass_keeps_the_last_value_of_every_key_at_its_offset() {
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, compacted(4096)).await;
        let written = append_all(&log, &updates(40, 10), 7).await;
        seal(&log).await;
        // Newer data in the active segment is never touched.
        let tail = append_all(&log, &updates(3, 1), 3).await;
        let due = log.compaction_due(now_ms());
        assert!(due.is_some(), "a fully dirty log is due");
        let cleaned = log
            .compact(now_ms(), KEY_MAP_BYTES, &unpaced)
            .await
            .expect("compact");
        assert_eq!(cleaned.map_end_offset, tail[0].0);
        assert_eq!(cleaned.keys_mapped, 40);
        assert!(cleaned.groups >= 1 && cleaned.bytes_written < cleaned.bytes_read);
        let all: Vec<(i64, Update)> = written.iter().chain(&tail).cloned().collect();
        let want = expected(&all, cleaned.map_end_offset);
        assert_eq!(want.len(), 40 + 3);
        assert_eq!(read_all(&log).await, want);
        // Clean now: not due; a second pass changes nothing.
        assert_eq!(log.compaction_due(now_ms() + 10), None);
        // The same after a clean restart and after a crash (no close).
        log.close().await.expect("close");
        let log = open(&dir, compacted(4096)).await;
        assert_eq!(read_all(&log).await, want);
        drop(log);
        let log = open(&dir, compacted(4096)).await;
        assert_eq!(read_all(&log).await, want);
        assert_eq!(log.high_watermark(), tail.last().expect("tail").0 + 1);
    });
}

#[test]
fn tombstones_stay_until_their_delete_horizon_then_go() {
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, compacted(1024 * 1024)).await;
        let mut written = append_all(&log, &updates(3, 2), 3).await;
        written.extend(append_all(&log, &[("k1".to_string(), None)], 1).await);
        seal(&log).await;
        let now = now_ms();
        let first = log.compact(now, KEY_MAP_BYTES, &unpaced).await.expect("compact");
        let after_first = read_all(&log).await;
        assert_eq!(after_first, expected(&written, first.map_end_offset));
        assert!(after_first
            .iter()
            .any(|r| r.key.as_deref() == Some("k1") && r.value.is_none()));
        // Before the horizon (delete.retention.ms = 1 s): not due, kept.
        assert_eq!(log.compaction_due(now + 500), None);
        // After it: due, and the tombstone is gone; other keys stay.
        assert!(
            log.compaction_due(now + 1500).is_some(),
            "a passed horizon makes the log due"
        );
        log.compact(now + 1500, KEY_MAP_BYTES, &unpaced)
            .await
            .expect("compact");
        let after_second = read_all(&log).await;
        let keys: Vec<Option<String>> = after_second.iter().map(|r| r.key.clone()).collect();
        assert_eq!(keys, vec![Some("k0".into()), Some("k2".into())]);
    });
}

#[test]
fn a_small_key_map_cleans_in_several_passes_to_the_same_result() {
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, compacted(8192)).await;
        let written = append_all(&log, &updates(300, 3), 10).await;
        seal(&log).await;
        let end = log.high_watermark();
        // 64 keys per pass.
        let mut passes = 0;
        let mut last = Cleaned::default();
        while log.compaction_due(now_ms()).is_some() {
            last = log
                .compact(now_ms(), 64 * KEY_MAP_ENTRY_BYTES, &unpaced)
                .await
                .expect("compact");
            assert!(last.keys_mapped <= 64);
            passes += 1;
            assert!(passes < 100, "passes make progress");
        }
        assert!(passes > 1, "the key map forced several passes");
        assert_eq!(last.map_end_offset, end);
        assert_eq!(read_all(&log).await, expected(&written, end));
    });
}

#[test]
fn aborted_transactions_go_committed_stay_and_markers_outlive_their_data_only_until_the_horizon() {
    const COMMITTED: i64 = 7;
    const ABORTED: i64 = 8;
    let (_guard, dir) = temp_dir();
    run(move || async move {
        let log = open(&dir, compacted(1024 * 1024)).await;
        let plain = append_all(&log, &[("a".into(), Some("plain".into()))], 1).await;
        let committed_at = append(
            &log,
            batch(&[("b".into(), Some("committed".into()))], Some((COMMITTED, 0))),
        )
        .await;
        append(
            &log,
            batch(&[("a".into(), Some("aborted".into()))], Some((ABORTED, 0))),
        )
        .await;
        let commit_at = log
            .append_marker(COMMITTED, 0, 0, true, Durability::Written)
            .await
            .expect("commit");
        let abort_at = log
            .append_marker(ABORTED, 0, 0, false, Durability::Written)
            .await
            .expect("abort");
        seal(&log).await;
        let now = now_ms();
        log.compact(now, KEY_MAP_BYTES, &unpaced).await.expect("compact");
        let read = read_all(&log).await;
        // (Control records' values are the markers themselves.)
        let summary: Vec<(i64, Option<String>, bool)> = read
            .iter()
            .map(|r| (r.offset, r.value.clone().filter(|_| !r.control), r.control))
            .collect();
        // The aborted update of "a" did not hide the plain one; the commit
        // marker stays with its data, the abort marker until its horizon.
        assert_eq!(
            summary,
            vec![
                (plain[0].0, Some("plain".into()), false),
                (committed_at, Some("committed".into()), false),
                (commit_at, None, true),
                (abort_at, None, true),
            ]
        );
        log.compact(now + 1500, KEY_MAP_BYTES, &unpaced)
            .await
            .expect("compact");
        let offsets: Vec<i64> = read_all(&log).await.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![plain[0].0, committed_at, commit_at]);
        assert_eq!(log.last_stable_offset(), log.high_watermark());
    });
}

#[test]
fn a_crash_before_the_swap_keeps_the_old_files_and_after_it_the_new() {
    let (_guard, dir) = temp_dir();
    let (_before_guard, before) = temp_dir();
    let (_crash_guard, crashed) = temp_dir();
    run(move || async move {
        let log = open(&dir, compacted(1024 * 1024)).await;
        let written = append_all(&log, &updates(20, 5), 4).await;
        seal(&log).await;
        log.close().await.expect("close");
        copy_dir(&dir, &before);
        let log = open(&dir, compacted(1024 * 1024)).await;
        let cleaned = log
            .compact(now_ms(), KEY_MAP_BYTES, &unpaced)
            .await
            .expect("compact");
        let compacted_records = read_all(&log).await;
        let cleaned_log = std::fs::read(super::segment::log_path(&dir, 0)).expect("the cleaned segment");
        drop(log);

        // Crashed while writing the cleaned file: the old set is served.
        copy_dir(&before, &crashed);
        std::fs::write(crashed.join(format!("{:020}.log.cleaned", 0)), &cleaned_log).expect("write");
        let log = open(&crashed, compacted(1024 * 1024)).await;
        assert_eq!(read_all(&log).await, expected(&written, 0));
        assert!(!crashed.join(format!("{:020}.log.cleaned", 0)).exists());
        drop(log);

        // Crashed after the commit point (the swap file is there, the old
        // segment and its indexes too): recovery completes the swap.
        let _ = std::fs::remove_dir_all(&crashed);
        copy_dir(&before, &crashed);
        let end = written.last().expect("written").0 + 1;
        std::fs::write(crashed.join(format!("{:020}.{end:020}.swap", 0)), &cleaned_log).expect("write");
        // A pass writes its checkpoint before its first swap.
        let checkpoint = super::compaction::CHECKPOINT_FILE;
        std::fs::copy(dir.join(checkpoint), crashed.join(checkpoint)).expect("copy the checkpoint");
        let log = open(&crashed, compacted(1024 * 1024)).await;
        assert_eq!(read_all(&log).await, compacted_records);
        assert_eq!(compacted_records, expected(&written, cleaned.map_end_offset));
    });
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create");
    for entry in std::fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}
