//! Cluster metadata: topics, their partitions' placement on shards, and
//! per-topic config overrides.
//!
//! Shard 0 is the only writer ([`crate::shard::admin`]). It persists a new
//! [`ClusterMetadata`] with [`store`] and then sends an immutable copy to every
//! shard, which swaps its `Rc` in one step: readers on the data path never
//! lock and never see a half-applied change. Placement is decided once, when a
//! partition is created, and recorded here, so a restart never moves data.

pub mod store;
pub mod topic_config;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use topic_config::{TimestampType, TopicConfig};

/// Every topic this broker serves. Cloned whole when published; it is small
/// (one shard index per partition).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ClusterMetadata {
    /// Incremented by every change; lets shards ignore stale updates.
    pub version: u64,
    /// Chosen at the first start of a data directory; never changes.
    #[serde(default)]
    pub cluster_id: String,
    /// End (exclusive) of the last block of producer ids handed out; no id
    /// below it is ever given again (see `shard::producer_ids`).
    #[serde(default)]
    pub producer_id_block_end: i64,
    pub topics: BTreeMap<String, TopicMetadata>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopicMetadata {
    /// 32 hex digits: the topic's UUID (Metadata v10+, Fetch v13+).
    pub id: String,
    /// `shards[p]` is the shard that owns partition `p`.
    pub shards: Vec<usize>,
    /// Explicitly set topic configs (Kafka names); unset ones use the broker
    /// defaults.
    pub configs: BTreeMap<String, String>,
}

impl TopicMetadata {
    pub fn partition_count(&self) -> i32 {
        // Invariant: partition counts are bounded by TOPIC_PARTITIONS_MAX.
        i32::try_from(self.shards.len()).expect("partition count fits i32")
    }

    pub fn shard_of(&self, partition: i32) -> Option<usize> {
        usize::try_from(partition)
            .ok()
            .and_then(|p| self.shards.get(p).copied())
    }

    pub fn id_bytes(&self) -> [u8; 16] {
        parse_uuid(&self.id).unwrap_or([0; 16])
    }
}

impl ClusterMetadata {
    pub fn topic(&self, name: &str) -> Option<&TopicMetadata> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &[u8; 16]) -> Option<(&String, &TopicMetadata)> {
        self.topics.iter().find(|(_, topic)| &topic.id_bytes() == id)
    }

    /// Partitions owned by each shard, for least-loaded placement.
    pub fn partitions_per_shard(&self, shard_count: usize) -> Vec<usize> {
        let mut load = vec![0; shard_count];
        for topic in self.topics.values() {
            for &shard in &topic.shards {
                if let Some(count) = load.get_mut(shard) {
                    *count += 1;
                }
            }
        }
        load
    }

    /// Chooses owners for `new_partitions` more partitions: each goes to the
    /// currently least-loaded shard (lowest index on ties), so a topic's
    /// partitions spread over every shard.
    pub fn place_partitions(&self, shard_count: usize, new_partitions: usize) -> Vec<usize> {
        assert!(shard_count > 0, "at least one shard");
        let mut load = self.partitions_per_shard(shard_count);
        (0..new_partitions)
            .map(|_| {
                let (shard, _) = load
                    .iter()
                    .enumerate()
                    .min_by_key(|(index, count)| (**count, *index))
                    .expect("shard_count > 0");
                load[shard] += 1;
                shard
            })
            .collect()
    }
}

/// Kafka's rules for topic names: 1..=249 of `[a-zA-Z0-9._-]`, not "." or "..".
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > crate::limits::TOPIC_NAME_BYTES_MAX {
        return Err(format!(
            "topic name must be 1..={} characters",
            crate::limits::TOPIC_NAME_BYTES_MAX
        ));
    }
    if name == "." || name == ".." {
        return Err("topic name cannot be '.' or '..'".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(format!(
            "topic name '{name}' has characters outside [a-zA-Z0-9._-]"
        ));
    }
    Ok(())
}

/// A fresh random topic id as 32 hex digits.
pub fn new_topic_id() -> String {
    let mut bytes = [0u8; 16];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into the buffer.
    let filled = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if filled != 16 {
        // Fall back to time and address entropy; ids only need to be unique.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = (nanos ^ (&bytes as *const _ as u128)).to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    if text.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_spreads_partitions_over_shards() {
        let mut metadata = ClusterMetadata::default();
        let shards = metadata.place_partitions(2, 4);
        assert_eq!(shards, vec![0, 1, 0, 1]);
        metadata.topics.insert(
            "a".into(),
            TopicMetadata {
                id: new_topic_id(),
                shards: vec![0],
                configs: BTreeMap::new(),
            },
        );
        assert_eq!(metadata.place_partitions(2, 3), vec![1, 0, 1]);
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a/b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }

    #[test]
    fn topic_ids_are_unique_and_parse_back() {
        let a = new_topic_id();
        let b = new_topic_id();
        assert_ne!(a, b);
        assert!(parse_uuid(&a).is_some());
        assert_eq!(parse_uuid("zz"), None);
    }
}
