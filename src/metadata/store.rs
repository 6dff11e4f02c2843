//! Durable copy of [`ClusterMetadata`]: one TOML file, replaced atomically.
//!
//! The file starts with a `# crc32c=XXXXXXXX` line covering the rest, so a
//! torn or edited file is detected instead of half-parsed. A change is
//! written to a temporary file, fsynced, renamed over the old one, and the
//! directory is fsynced: after `save` returns, the new metadata survives a
//! crash; before, the old one does. Blocking std::fs calls: shard 0 runs
//! `save` on glommio's blocking pool, never on its reactor.

use std::{
    fs::{self, File},
    io::Write,
    path::{Path, PathBuf},
};

use super::ClusterMetadata;

pub const METADATA_FILE_NAME: &str = "weir-metadata.toml";

pub fn metadata_path(data_dir: &Path) -> PathBuf {
    data_dir.join(METADATA_FILE_NAME)
}

/// Loads the metadata, or an empty one when the file does not exist yet.
pub fn load(data_dir: &Path) -> Result<ClusterMetadata, String> {
    let path = metadata_path(data_dir);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ClusterMetadata::default()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let (first_line, body) = text
        .split_once('\n')
        .ok_or_else(|| format!("{}: missing checksum line", path.display()))?;
    let stored = first_line
        .strip_prefix("# crc32c=")
        .and_then(|hex| u32::from_str_radix(hex.trim(), 16).ok())
        .ok_or_else(|| format!("{}: malformed checksum line", path.display()))?;
    let computed = crc32c::crc32c(body.as_bytes());
    if stored != computed {
        return Err(format!(
            "{}: checksum mismatch (stored {stored:08x}, computed {computed:08x}); the file is corrupt",
            path.display()
        ));
    }
    toml::from_str(body).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes `metadata` durably (see the module doc for the sequence).
pub fn save(data_dir: &Path, metadata: &ClusterMetadata) -> Result<(), String> {
    let body = toml::to_string(metadata).map_err(|e| format!("cannot encode metadata: {e}"))?;
    let text = format!("# crc32c={:08x}\n{body}", crc32c::crc32c(body.as_bytes()));
    let path = metadata_path(data_dir);
    let temporary = data_dir.join(format!("{METADATA_FILE_NAME}.tmp"));
    let io = |what: &str, e: std::io::Error| format!("{what} {}: {e}", temporary.display());
    let mut file = File::create(&temporary).map_err(|e| io("create", e))?;
    file.write_all(text.as_bytes()).map_err(|e| io("write", e))?;
    file.sync_all().map_err(|e| io("fsync", e))?;
    drop(file);
    fs::rename(&temporary, &path).map_err(|e| io("rename", e))?;
    sync_directory(data_dir)
}

/// fsync a directory so a created, renamed or removed entry is durable.
pub fn sync_directory(dir: &Path) -> Result<(), String> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("fsync directory {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::TopicMetadata;

    #[test]
    fn save_then_load_round_trips_and_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), ClusterMetadata::default());
        let mut metadata = ClusterMetadata {
            version: 3,
            ..Default::default()
        };
        metadata.topics.insert(
            "orders".into(),
            TopicMetadata {
                id: crate::metadata::new_topic_id(),
                shards: vec![0, 1, 0],
                configs: [("segment.bytes".to_string(), "4096".to_string())].into(),
            },
        );
        save(dir.path(), &metadata).unwrap();
        assert_eq!(load(dir.path()).unwrap(), metadata);

        let path = metadata_path(dir.path());
        let text = fs::read_to_string(&path).unwrap().replace("orders", "orderz");
        fs::write(&path, text).unwrap();
        assert!(load(dir.path()).unwrap_err().contains("checksum mismatch"));
    }
}
