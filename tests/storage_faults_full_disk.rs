//! Storage faults, family 3: a real full disk. weir's data directory is on a
//! small ext4 file system (a loop device; needs root, as CI runs). A
//! producer fills it until appends fail with ENOSPC: it gets
//! KAFKA_STORAGE_ERROR and nothing acknowledged is lost. Retention then
//! deletes the oldest segments, which frees space, and the partition takes
//! appends again without a restart.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use common::{
    consume_from, create_topic, produce_and_flush, producer_config, recording_producer, watermarks, Broker,
    BrokerOptions, TestMessage,
};

const TOPIC: &str = "fills";
const DISK_BYTES: u64 = 48 * 1024 * 1024;
/// Long enough that the disk fills before anything expires.
const RETENTION_MS: &str = "45000";

/// A loop-mounted ext4 file system, unmounted when dropped.
struct SmallDisk {
    mount_point: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount() -> SmallDisk {
        let dir = tempfile::tempdir().expect("temp dir");
        let image = dir.path().join("disk.img");
        let mount_point = dir.path().join("mnt");
        std::fs::create_dir(&mount_point).expect("mount point");
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(DISK_BYTES))
            .expect("image file");
        run(
            "mkfs.ext4",
            &["-q", "-F", "-m", "0", image.to_str().expect("path")],
        );
        run(
            "mount",
            &[
                "-o",
                "loop",
                image.to_str().expect("path"),
                mount_point.to_str().expect("path"),
            ],
        );
        SmallDisk {
            mount_point,
            _dir: dir,
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount_point).status();
    }
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(status.success(), "{program} {args:?}: {status}");
}

fn message(index: usize) -> TestMessage {
    TestMessage::keyed(0, format!("k{index}"), format!("{index:08}-{}", "f".repeat(1000)))
}

fn free_bytes(path: &Path) -> u64 {
    let path = std::ffi::CString::new(path.to_str().expect("path")).expect("path");
    // SAFETY: statvfs writes into the zeroed struct we own.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut stats) }, 0, "statvfs");
    stats.f_bavail as u64 * stats.f_frsize as u64
}

#[test]
fn a_full_disk_refuses_appends_and_recovers_once_retention_frees_space() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting a small file system needs root (CI runs as root)");
        return;
    }
    let disk = SmallDisk::mount();
    let data_dir = disk.mount_point.join("data");
    std::fs::create_dir(&data_dir).expect("data dir");
    let broker = Broker::start_weir(BrokerOptions {
        data_dir: Some(data_dir),
        settings: vec![(
            "log_retention_check_interval_ms",
            "log.retention.check.interval.ms",
            "300".into(),
        )],
        ..BrokerOptions::default()
    });
    let bootstrap = broker.bootstrap();
    create_topic(
        &bootstrap,
        TOPIC,
        1,
        &[("segment.bytes", "1048576"), ("retention.ms", RETENTION_MS)],
    );

    // Fill the disk: acknowledged records are kept in `sent` by offset.
    let (producer, deliveries) = recording_producer(&producer_config(&bootstrap, "all"));
    let mut sent: Vec<TestMessage> = Vec::new();
    let mut refused = None;
    'fill: for round in 0..100 {
        let batch: Vec<TestMessage> = (0..1000).map(|i| message(round * 1000 + i)).collect();
        for (id, outcome) in produce_and_flush(&producer, &deliveries, TOPIC, &batch)
            .into_iter()
            .map(|d| (d.id, d.outcome))
        {
            match outcome {
                Ok((_, offset)) => {
                    assert_eq!(offset, sent.len() as i64, "acknowledged offsets are dense");
                    sent.push(batch[id].clone());
                }
                Err(error) => {
                    refused = Some(error);
                    break 'fill;
                }
            }
        }
    }
    let refused = refused.expect("the disk filled up");
    assert!(
        refused.contains("Disk error") || refused.contains("storage"),
        "refused with KAFKA_STORAGE_ERROR: {refused}"
    );
    let free_when_full = free_bytes(&disk.mount_point);
    assert!(
        free_when_full < 8 * 1024 * 1024,
        "the file system is (nearly) full"
    );

    // Keep producing: appends fail while the disk is full (a small one may
    // still fit now and then); once retention deleted the oldest segments,
    // they are taken again.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut round = 1000;
    let probe = loop {
        assert!(
            Instant::now() < deadline,
            "no recovery after retention freed the disk"
        );
        let (low, _) = watermarks(&bootstrap, TOPIC, 0);
        round += 1;
        let batch: Vec<TestMessage> = (0..200).map(|i| message(round * 1000 + i)).collect();
        let outcomes = produce_and_flush(&producer, &deliveries, TOPIC, &batch);
        if low > 0 && outcomes.iter().all(|d| d.outcome.is_ok()) {
            break batch;
        }
        thread::sleep(Duration::from_millis(500));
    };
    // Retention keeps deleting as more segments expire: stop it, so the
    // log holds still while it is read back.
    common::alter_topic_configs(
        &bootstrap,
        TOPIC,
        &[("segment.bytes", "1048576"), ("retention.ms", "-1")],
    );
    thread::sleep(Duration::from_secs(2));
    let (low, high) = watermarks(&bootstrap, TOPIC, 0);
    assert!(low > 0, "retention deleted segments");
    // Whole segments went, oldest first: the first file left starts at the
    // log start offset. (Free space itself is no measure here: appends that
    // still fit after the first refusal, and the probe, use what retention
    // freed.)
    let bases = common::segment_bases(&disk.mount_point.join("data").join(format!("{TOPIC}-0")));
    assert_eq!(
        bases.first(),
        Some(&low),
        "segments below the log start are gone from disk: {bases:?}"
    );
    let probe_offset = high - probe.len() as i64;
    // Nothing acknowledged was lost: offsets from the low watermark hold
    // what was sent there; the probe follows what was written before it.
    let read = consume_from(
        &bootstrap,
        TOPIC,
        0,
        low,
        usize::try_from(high - low).expect("count"),
    );
    for record in &read[..read.len() - probe.len()] {
        let offset = usize::try_from(record.offset).expect("offset");
        if let Some(sent) = sent.get(offset) {
            assert!(
                record.value == sent.value,
                "offset {offset} holds what was acknowledged there"
            );
        }
    }
    assert!(
        probe_offset >= sent.len() as i64,
        "acknowledged offsets are never reused"
    );
    let tail: Vec<&Option<Vec<u8>>> = read[read.len() - probe.len()..]
        .iter()
        .map(|r| &r.value)
        .collect();
    assert!(
        tail == probe.iter().map(|m| &m.value).collect::<Vec<_>>(),
        "the last batch follows, whole"
    );
}
