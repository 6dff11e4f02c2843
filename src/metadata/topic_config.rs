//! Topic configs weir honours, by their Kafka names, with validation.
//!
//! Only configs that change behaviour are accepted: a CreateTopics that sets
//! anything else gets INVALID_CONFIG rather than a silent no-op.

use std::collections::BTreeMap;

use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// The effective settings of one topic's logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicConfig {
    pub segment_bytes: u64,
    pub segment_ms: u64,
    pub max_message_bytes: u64,
    pub timestamp_type: TimestampType,
}

/// Kafka name, and the broker default it falls back to.
pub const SUPPORTED: &[&str] = &[
    "cleanup.policy",
    "max.message.bytes",
    "message.timestamp.type",
    "segment.bytes",
    "segment.ms",
];

impl TopicConfig {
    /// Effective config: broker defaults overridden by the topic's settings.
    /// Overrides were validated when stored, so parse failures fall back.
    pub fn resolve(broker: &Config, overrides: &BTreeMap<String, String>) -> TopicConfig {
        let number = |key: &str, default: u64| {
            overrides
                .get(key)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(default)
        };
        TopicConfig {
            segment_bytes: number("segment.bytes", broker.segment_bytes),
            segment_ms: number("segment.ms", broker.segment_ms),
            max_message_bytes: number("max.message.bytes", broker.message_max_bytes),
            timestamp_type: match overrides.get("message.timestamp.type").map(String::as_str) {
                Some("LogAppendTime") => TimestampType::LogAppendTime,
                _ => TimestampType::CreateTime,
            },
        }
    }

    /// All supported configs with their effective value and whether the
    /// topic sets it (for DescribeConfigs).
    pub fn describe(
        broker: &Config,
        overrides: &BTreeMap<String, String>,
    ) -> Vec<(&'static str, String, bool)> {
        let effective = Self::resolve(broker, overrides);
        SUPPORTED
            .iter()
            .map(|&key| {
                let value = match key {
                    "cleanup.policy" => "delete".to_string(),
                    "max.message.bytes" => effective.max_message_bytes.to_string(),
                    "message.timestamp.type" => match effective.timestamp_type {
                        TimestampType::CreateTime => "CreateTime".to_string(),
                        TimestampType::LogAppendTime => "LogAppendTime".to_string(),
                    },
                    "segment.bytes" => effective.segment_bytes.to_string(),
                    "segment.ms" => effective.segment_ms.to_string(),
                    _ => unreachable!("SUPPORTED lists only these keys"),
                };
                (key, value, overrides.contains_key(key))
            })
            .collect()
    }
}

/// Checks one config a client wants to set; Err is the message for
/// INVALID_CONFIG.
pub fn validate(key: &str, value: &str) -> Result<(), String> {
    let number_in = |min: u64, max: u64| match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(()),
        _ => Err(format!("{key} must be an integer within {min}..={max}")),
    };
    match key {
        "cleanup.policy" if value == "delete" => Ok(()),
        "cleanup.policy" => Err("cleanup.policy: only 'delete' is supported".into()),
        "segment.bytes" => number_in(crate::limits::SEGMENT_BYTES_MIN, crate::limits::SEGMENT_BYTES_MAX),
        "segment.ms" => number_in(1, i64::MAX as u64),
        "max.message.bytes" => number_in(crate::limits::RECORD_BATCH_HEADER_BYTES as u64, i32::MAX as u64),
        "message.timestamp.type" if value == "CreateTime" || value == "LogAppendTime" => Ok(()),
        "message.timestamp.type" => Err("message.timestamp.type must be CreateTime or LogAppendTime".into()),
        _ => Err(format!(
            "config '{key}' is not supported by weir (supported: {})",
            SUPPORTED.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_over_broker_defaults() {
        let broker = Config::default();
        let mut overrides = BTreeMap::new();
        overrides.insert("segment.bytes".to_string(), "4096".to_string());
        overrides.insert("message.timestamp.type".to_string(), "LogAppendTime".to_string());
        let config = TopicConfig::resolve(&broker, &overrides);
        assert_eq!(config.segment_bytes, 4096);
        assert_eq!(config.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(config.max_message_bytes, broker.message_max_bytes);
    }

    #[test]
    fn unsupported_or_invalid_configs_are_rejected() {
        assert!(validate("segment.bytes", "12").is_err());
        assert!(validate("segment.bytes", "abc").is_err());
        assert!(validate("retention.ms", "1000").is_err());
        assert!(validate("cleanup.policy", "compact").is_err());
        assert!(validate("message.timestamp.type", "LogAppendTime").is_ok());
    }
}
