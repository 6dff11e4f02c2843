//! Topic configs weir honours, by their Kafka names: validation, how an
//! override set resolves against the broker defaults, how it is edited at
//! runtime (AlterConfigs, IncrementalAlterConfigs) and how DescribeConfigs
//! reports each value's source and synonyms.
//!
//! Only configs that change behaviour are accepted: setting anything else
//! (CreateTopics, AlterConfigs) is INVALID_CONFIG rather than a silent no-op.
//! [`DEFS`] is the one table of them. Pure code: no I/O, no shard state.

use std::collections::BTreeMap;

use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// `cleanup.policy`: which of Kafka's two cleaners apply to a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// Segments are deleted by `retention.ms` and `retention.bytes`.
    pub delete: bool,
    /// Compaction keeps the last record per key (`log::compaction`).
    pub compact: bool,
}

/// The effective settings of one topic's logs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopicConfig {
    pub segment_bytes: u64,
    pub segment_ms: u64,
    pub max_message_bytes: u64,
    pub timestamp_type: TimestampType,
    pub cleanup_policy: CleanupPolicy,
    /// Segments whose newest record is older than this are deleted; < 0:
    /// never (Kafka's -1).
    pub retention_ms: i64,
    /// Oldest segments are deleted while the partition is larger; < 0: no
    /// limit.
    pub retention_bytes: i64,
    /// Compaction: a partition is cleaned once this share of it is dirty
    /// (written since its last clean).
    pub min_cleanable_dirty_ratio: f64,
    /// Compaction never touches records younger than this.
    pub min_compaction_lag_ms: i64,
    /// A dirty record older than this makes its partition due for cleaning
    /// whatever the ratio.
    pub max_compaction_lag_ms: i64,
    /// Tombstones and transaction markers are kept this long after the
    /// clean that first kept them.
    pub delete_retention_ms: i64,
}

/// ConfigType of DescribeConfigs v3+ (Kafka's `ConfigDef.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

/// Where a reported value comes from (DescribeConfigs `config_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    DynamicTopic = 1,
    StaticBroker = 4,
    Default = 5,
}

/// One topic config weir implements.
pub struct ConfigDef {
    /// The topic config's Kafka name.
    pub name: &'static str,
    pub config_type: ConfigType,
    /// The broker config that supplies the default (Kafka's synonym).
    pub broker_name: &'static str,
    /// The weir option that sets that broker default, if there is one;
    /// without one the default is Kafka's.
    pub option: Option<&'static str>,
    validate: fn(&str, &str) -> Result<(), String>,
    broker_default: fn(&Config) -> String,
    /// The last synonym Kafka lists: the broker config whose built-in
    /// default applies, and that default. For `retention.ms` and
    /// `segment.ms` it is the `…hours` config, which Kafka lists only after
    /// another synonym (`kafka_default_alone` false).
    kafka_default: (&'static str, &'static str),
    kafka_default_alone: bool,
}

/// Every topic config weir implements, in Kafka's (alphabetical) order.
pub const DEFS: &[ConfigDef] = &[
    ConfigDef {
        name: "cleanup.policy",
        config_type: ConfigType::List,
        broker_name: "log.cleanup.policy",
        option: None,
        validate: validate_cleanup_policy,
        broker_default: |_| "delete".into(),
        kafka_default: ("log.cleanup.policy", "delete"),
        kafka_default_alone: true,
    },
    ConfigDef {
        name: "delete.retention.ms",
        config_type: ConfigType::Long,
        broker_name: "log.cleaner.delete.retention.ms",
        option: None,
        validate: |key, value| integer_in(key, value, 0, i64::MAX),
        broker_default: |_| "86400000".into(),
        kafka_default: ("log.cleaner.delete.retention.ms", "86400000"),
        kafka_default_alone: true,
    },
    ConfigDef {
        name: "max.compaction.lag.ms",
        config_type: ConfigType::Long,
        broker_name: "log.cleaner.max.compaction.lag.ms",
        option: None,
        validate: |key, value| integer_in(key, value, 1, i64::MAX),
        broker_default: |_| i64::MAX.to_string(),
        kafka_default: ("log.cleaner.max.compaction.lag.ms", "9223372036854775807"),
        kafka_default_alone: true,
    },
    ConfigDef {
        name: "max.message.bytes",
        config_type: ConfigType::Int,
        broker_name: "message.max.bytes",
        option: Some("message_max_bytes"),
        validate: |key, value| int_in(key, value, 0, i64::from(i32::MAX)),
        broker_default: |broker| broker.message_max_bytes.to_string(),
        kafka_default: ("message.max.bytes", "1048588"),
        kafka_default_alone: true,
    },
    ConfigDef {
        name: "message.timestamp.type",
        config_type: ConfigType::String,
        broker_name: "log.message.timestamp.type",
        option: None,
        validate: |key, value| {
            match value {
            "CreateTime" | "LogAppendTime" => Ok(()),
            _ => Err(format!(
                "Invalid value {value} for configuration {key}: String must be one of: CreateTime, LogAppendTime"
            )),
        }
        },
        broker_default: |_| "CreateTime".into(),
        kafka_default: ("log.message.timestamp.type", "CreateTime"),
        kafka_default_alone: true,
    },
    ConfigDef {
        name: "min.cleanable.dirty.ratio",
        config_type: ConfigType::Double,
        broker_name: "log.cleaner.min.cleanable.ratio",
        option: None,
        validate: |key, value| match value.trim().parse::<f64>() {
            Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(()),
            Ok(_) => Err(format!(
                "Invalid value {value} for configuration {key}: Value must be between 0 and 1"
            )),
            Err(_) => Err(format!(
                "Invalid value {value} for configuration {key}: Not a number of type DOUBLE"
            )),
        },
        broker_default: |_| "0.5".into(),
        kafka_default: ("log.cleaner.min.cleanable.ratio", "0.5"),
        kafka_default_alone: true,
    },
    ConfigDef {
        name: "min.compaction.lag.ms",
        config_type: ConfigType::Long,
        broker_name: "log.cleaner.min.compaction.lag.ms",
        option: None,
        validate: |key, value| integer_in(key, value, 0, i64::MAX),
        broker_default: |_| "0".into(),
        kafka_default: ("log.cleaner.min.compaction.lag.ms", "0"),
        kafka_default_alone: true,
    },
    ConfigDef {
        name: "retention.bytes",
        config_type: ConfigType::Long,
        broker_name: "log.retention.bytes",
        option: Some("log_retention_bytes"),
        // Any long, as in Kafka: negative means no size limit.
        validate: |key, value| integer_in(key, value, i64::MIN, i64::MAX),
        broker_default: |broker| broker.log_retention_bytes.to_string(),
        kafka_default: ("log.retention.bytes", "-1"),
        kafka_default_alone: true,
    },
    ConfigDef {
        name: "retention.ms",
        config_type: ConfigType::Long,
        broker_name: "log.retention.ms",
        option: Some("log_retention_ms"),
        validate: |key, value| integer_in(key, value, -1, i64::MAX),
        broker_default: |broker| broker.log_retention_ms.to_string(),
        kafka_default: ("log.retention.hours", "168"),
        kafka_default_alone: false,
    },
    ConfigDef {
        name: "segment.bytes",
        config_type: ConfigType::Int,
        broker_name: "log.segment.bytes",
        option: Some("segment_bytes"),
        validate: |key, value| {
            int_in(
                key,
                value,
                crate::limits::TOPIC_SEGMENT_BYTES_MIN as i64,
                crate::limits::SEGMENT_BYTES_MAX as i64,
            )
        },
        broker_default: |broker| broker.segment_bytes.to_string(),
        kafka_default: ("log.segment.bytes", "1073741824"),
        kafka_default_alone: true,
    },
    ConfigDef {
        name: "segment.ms",
        config_type: ConfigType::Long,
        broker_name: "log.roll.ms",
        option: Some("segment_ms"),
        validate: |key, value| integer_in(key, value, 1, i64::MAX),
        broker_default: |broker| broker.segment_ms.to_string(),
        kafka_default: ("log.roll.hours", "168"),
        kafka_default_alone: false,
    },
];

pub fn def(name: &str) -> Option<&'static ConfigDef> {
    DEFS.iter().find(|def| def.name == name)
}

/// A LONG config within `min..=max`, with Kafka's messages.
fn integer_in(key: &str, value: &str, min: i64, max: i64) -> Result<(), String> {
    number_in(key, value, "LONG", min, max)
}

/// An INT config (32 bits) within `min..=max`, with Kafka's messages.
fn int_in(key: &str, value: &str, min: i64, max: i64) -> Result<(), String> {
    number_in(key, value, "INT", min, max.min(i64::from(i32::MAX)))
}

fn number_in(key: &str, value: &str, type_name: &str, min: i64, max: i64) -> Result<(), String> {
    let invalid = |why: String| Err(format!("Invalid value {value} for configuration {key}: {why}"));
    let parsed = match type_name {
        "INT" => value.trim().parse::<i32>().map(i64::from).ok(),
        _ => value.trim().parse::<i64>().ok(),
    };
    match parsed {
        None => invalid(format!("Not a number of type {type_name}")),
        Some(n) if n < min => invalid(format!("Value must be at least {min}")),
        Some(n) if n > max => invalid(format!("Value must be no more than {max}")),
        Some(_) => Ok(()),
    }
}

fn list_items(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|item| !item.is_empty())
}

fn validate_cleanup_policy(key: &str, value: &str) -> Result<(), String> {
    for item in list_items(value) {
        match item {
            "delete" | "compact" => {}
            _ => {
                return Err(format!(
                    "Invalid value {value} for configuration {key}: String must be one of: compact, delete"
                ))
            }
        }
    }
    Ok(())
}

/// Kafka's topic configs that weir does not implement: refused with a
/// message that says so (other names are unknown, as in Kafka).
const KAFKA_ONLY: &[&str] = &[
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.type",
    "compression.zstd.level",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "follower.replication.throttled.replicas",
    "index.interval.bytes",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "min.insync.replicas",
    "preallocate",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
    "remote.storage.enable",
    "segment.index.bytes",
    "segment.jitter.ms",
    "unclean.leader.election.enable",
];

/// Checks one config a client wants to set; Err is the message for
/// INVALID_CONFIG.
pub fn validate(key: &str, value: &str) -> Result<(), String> {
    match def(key) {
        Some(def) => (def.validate)(key, value),
        None => Err(unknown(key)),
    }
}

fn unknown(key: &str) -> String {
    if KAFKA_ONLY.contains(&key) {
        format!(
            "config '{key}' is not supported by weir (supported: {})",
            DEFS.iter().map(|def| def.name).collect::<Vec<_>>().join(", ")
        )
    } else {
        format!("Unknown topic config name: {key}")
    }
}

/// One operation of IncrementalAlterConfigs (its `config_operation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    Set(String),
    Delete,
    /// Add the items to a list config (kept once each).
    Append(String),
    /// Remove the items from a list config.
    Subtract(String),
}

impl ConfigOp {
    /// The op Kafka's `config_operation` code names (0 set, 1 delete, 2
    /// append, 3 subtract), with its value; None for an unknown code.
    pub fn from_code(code: i8, value: Option<String>) -> Option<ConfigOp> {
        let value = value.unwrap_or_default();
        match code {
            0 => Some(ConfigOp::Set(value)),
            1 => Some(ConfigOp::Delete),
            2 => Some(ConfigOp::Append(value)),
            3 => Some(ConfigOp::Subtract(value)),
            _ => None,
        }
    }
}

/// How a topic's override set changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigEdit {
    /// AlterConfigs: the new override set, whole.
    Replace(BTreeMap<String, String>),
    /// IncrementalAlterConfigs: operations on named configs, in order.
    Incremental(Vec<(String, ConfigOp)>),
}

/// The override set after `edit`, every value validated; Err is the
/// message for INVALID_CONFIG.
pub fn apply_edit(
    current: &BTreeMap<String, String>,
    edit: &ConfigEdit,
) -> Result<BTreeMap<String, String>, String> {
    let next = match edit {
        ConfigEdit::Replace(configs) => configs.clone(),
        ConfigEdit::Incremental(ops) => {
            let mut next = current.clone();
            for (key, op) in ops {
                let Some(def) = def(key) else {
                    // Deleting a config that cannot be set changes nothing,
                    // and Kafka answers it with no error.
                    if *op == ConfigOp::Delete {
                        continue;
                    }
                    return Err(unknown(key));
                };
                match op {
                    ConfigOp::Set(value) => {
                        next.insert(key.clone(), value.clone());
                    }
                    ConfigOp::Delete => {
                        next.remove(key);
                    }
                    ConfigOp::Append(_) | ConfigOp::Subtract(_) if def.config_type != ConfigType::List => {
                        let verb = if matches!(op, ConfigOp::Append(_)) {
                            "APPEND"
                        } else {
                            "SUBTRACT"
                        };
                        return Err(format!("Can't {verb} to key {key} because its type is not LIST."));
                    }
                    ConfigOp::Append(items) | ConfigOp::Subtract(items) => {
                        // Kafka edits the topic's value, or the config's own
                        // default when the topic does not set it.
                        let old = next
                            .get(key.as_str())
                            .cloned()
                            .unwrap_or_else(|| (def.broker_default)(&Config::default()));
                        let mut list: Vec<String> = list_items(&old).map(str::to_string).collect();
                        for item in list_items(items) {
                            if matches!(op, ConfigOp::Append(_)) {
                                if !list.iter().any(|have| have == item) {
                                    list.push(item.to_string());
                                }
                            } else {
                                list.retain(|have| have != item);
                            }
                        }
                        next.insert(key.clone(), list.join(","));
                    }
                }
            }
            next
        }
    };
    for (key, value) in &next {
        validate(key, value)?;
    }
    Ok(next)
}

impl TopicConfig {
    /// Effective config: broker defaults overridden by the topic's settings.
    /// Overrides were validated when stored, so parse failures fall back.
    pub fn resolve(broker: &Config, overrides: &BTreeMap<String, String>) -> TopicConfig {
        let unsigned = |key: &str, default: u64| {
            overrides
                .get(key)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(default)
        };
        let signed = |key: &str, default: i64| {
            overrides
                .get(key)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(default)
        };
        let cleanup_policy = match overrides.get("cleanup.policy") {
            Some(value) => CleanupPolicy {
                delete: list_items(value).any(|item| item == "delete"),
                compact: list_items(value).any(|item| item == "compact"),
            },
            None => CleanupPolicy {
                delete: true,
                compact: false,
            },
        };
        TopicConfig {
            segment_bytes: unsigned("segment.bytes", broker.segment_bytes),
            segment_ms: unsigned("segment.ms", broker.segment_ms),
            max_message_bytes: unsigned("max.message.bytes", broker.message_max_bytes),
            timestamp_type: match overrides.get("message.timestamp.type").map(String::as_str) {
                Some("LogAppendTime") => TimestampType::LogAppendTime,
                _ => TimestampType::CreateTime,
            },
            cleanup_policy,
            retention_ms: signed("retention.ms", broker.log_retention_ms),
            retention_bytes: signed("retention.bytes", broker.log_retention_bytes),
            min_cleanable_dirty_ratio: overrides
                .get("min.cleanable.dirty.ratio")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.5),
            min_compaction_lag_ms: signed("min.compaction.lag.ms", 0),
            max_compaction_lag_ms: signed("max.compaction.lag.ms", i64::MAX),
            delete_retention_ms: signed("delete.retention.ms", 86_400_000),
        }
    }

    /// Every supported config of a topic as DescribeConfigs and CreateTopics
    /// report it: value, source and synonyms (most specific first: the
    /// topic's override, the broker's static setting, the default).
    pub fn describe(broker: &Config, overrides: &BTreeMap<String, String>) -> Vec<DescribedConfig> {
        DEFS.iter()
            .map(|def| {
                let broker_value = (def.broker_default)(broker);
                let broker_source = match def.option {
                    Some(option) if broker.explicit.contains(option) => ConfigSource::StaticBroker,
                    _ => ConfigSource::Default,
                };
                // Kafka's order: the topic's override, the broker's static
                // setting, the built-in default.
                let mut synonyms = Vec::with_capacity(3);
                if let Some(value) = overrides.get(def.name) {
                    synonyms.push((def.name, value.clone(), ConfigSource::DynamicTopic));
                }
                if broker_source == ConfigSource::StaticBroker {
                    synonyms.push((def.broker_name, broker_value.clone(), broker_source));
                }
                if def.kafka_default_alone || broker_source == ConfigSource::StaticBroker {
                    let (name, value) = def.kafka_default;
                    synonyms.push((name, value.to_string(), ConfigSource::Default));
                }
                let (value, source) = match overrides.get(def.name) {
                    Some(value) => (value.clone(), ConfigSource::DynamicTopic),
                    None => (broker_value, broker_source),
                };
                DescribedConfig {
                    name: def.name,
                    value,
                    source,
                    config_type: def.config_type,
                    synonyms,
                }
            })
            .collect()
    }
}

/// One config as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedConfig {
    pub name: &'static str,
    pub value: String,
    pub source: ConfigSource,
    pub config_type: ConfigType,
    /// (name, value, source), the effective one first.
    pub synonyms: Vec<(&'static str, String, ConfigSource)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn overrides_win_over_broker_defaults() {
        let broker = Config::default();
        let overrides = map(&[
            ("segment.bytes", "4096"),
            ("message.timestamp.type", "LogAppendTime"),
            ("retention.ms", "-1"),
        ]);
        let config = TopicConfig::resolve(&broker, &overrides);
        assert_eq!(config.segment_bytes, 4096);
        assert_eq!(config.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(config.max_message_bytes, broker.message_max_bytes);
        assert_eq!(config.retention_ms, -1);
        assert_eq!(config.retention_bytes, broker.log_retention_bytes);
        assert!(config.cleanup_policy.delete && !config.cleanup_policy.compact);
    }

    #[test]
    fn unsupported_or_invalid_configs_are_rejected() {
        assert!(validate("segment.bytes", "12").is_err());
        assert!(validate("segment.bytes", "abc").is_err());
        assert!(validate("retention.ms", "1000").is_ok());
        assert!(validate("retention.ms", "-2").is_err());
        assert!(validate("retention.bytes", "-5").is_ok());
        assert!(validate("flush.messages", "1").is_err());
        assert!(validate("cleanup.policy", "compact").is_ok());
        assert!(validate("cleanup.policy", "compact,delete").is_ok());
        assert!(validate("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate("min.cleanable.dirty.ratio", "0.01").is_ok());
        assert!(validate("delete.retention.ms", "-1").is_err());
        assert!(validate("cleanup.policy", "delete,bogus").is_err());
        assert!(validate("message.timestamp.type", "LogAppendTime").is_ok());
    }

    #[test]
    fn incremental_edits_set_delete_append_and_subtract() {
        let current = map(&[("retention.ms", "1000"), ("segment.bytes", "1048576")]);
        let edit = ConfigEdit::Incremental(vec![
            ("retention.ms".into(), ConfigOp::Delete),
            ("retention.bytes".into(), ConfigOp::Set("2048".into())),
            ("cleanup.policy".into(), ConfigOp::Append("delete".into())),
        ]);
        let next = apply_edit(&current, &edit).expect("valid edit");
        assert_eq!(
            next,
            map(&[
                ("cleanup.policy", "delete"),
                ("retention.bytes", "2048"),
                ("segment.bytes", "1048576")
            ])
        );
        let subtract = ConfigEdit::Incremental(vec![(
            "cleanup.policy".into(),
            ConfigOp::Subtract("delete".into()),
        )]);
        assert_eq!(apply_edit(&next, &subtract).expect("valid")["cleanup.policy"], "");
        let append_to_number =
            ConfigEdit::Incremental(vec![("retention.ms".into(), ConfigOp::Append("5".into()))]);
        assert!(apply_edit(&current, &append_to_number).is_err());
        // Deleting an unknown name is a no-op (as Kafka answers it);
        // setting one is refused.
        let delete_unknown = ConfigEdit::Incremental(vec![("no.such".into(), ConfigOp::Delete)]);
        assert_eq!(apply_edit(&current, &delete_unknown).as_ref(), Ok(&current));
        let set_unknown = ConfigEdit::Incremental(vec![("no.such".into(), ConfigOp::Set("1".into()))]);
        assert_eq!(
            apply_edit(&current, &set_unknown),
            Err("Unknown topic config name: no.such".into())
        );
        let invalid = ConfigEdit::Incremental(vec![("retention.ms".into(), ConfigOp::Set("x".into()))]);
        assert!(apply_edit(&current, &invalid).is_err());
        let replace = ConfigEdit::Replace(map(&[("segment.ms", "100")]));
        assert_eq!(
            apply_edit(&current, &replace).expect("valid"),
            map(&[("segment.ms", "100")])
        );
    }

    #[test]
    fn describe_names_sources_and_synonyms() {
        let mut broker = Config {
            log_retention_ms: 5000,
            ..Config::default()
        };
        broker.explicit.insert("log_retention_ms".into());
        let described = TopicConfig::describe(&broker, &map(&[("retention.bytes", "100")]));
        let find = |name: &str| described.iter().find(|c| c.name == name).expect("described");
        let bytes = find("retention.bytes");
        assert_eq!(
            (bytes.value.as_str(), bytes.source),
            ("100", ConfigSource::DynamicTopic)
        );
        assert_eq!(
            bytes.synonyms,
            vec![
                ("retention.bytes", "100".to_string(), ConfigSource::DynamicTopic),
                ("log.retention.bytes", "-1".to_string(), ConfigSource::Default)
            ]
        );
        let ms = find("retention.ms");
        assert_eq!(
            (ms.value.as_str(), ms.source),
            ("5000", ConfigSource::StaticBroker)
        );
        assert_eq!(find("cleanup.policy").value, "delete");
    }
}
