//! Per-topic configs under Kafka's names, with the broker's values as defaults.

use std::collections::BTreeMap;

use crate::constants::{FETCH_READ_BYTES_PER_PARTITION_MAX, SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN};

/// `message.timestamp.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    #[default]
    CreateTime,
    LogAppendTime,
}

/// A topic's effective configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub segment_index_bytes: u64,
    pub index_interval_bytes: u64,
    pub max_message_bytes: u64,
    pub message_timestamp_type: TimestampType,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub cleanup_policy: String,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub min_insync_replicas: i32,
    /// Configs set explicitly on the topic, as given.
    pub overrides: BTreeMap<String, String>,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            segment_bytes: crate::constants::SEGMENT_BYTES_DEFAULT,
            segment_ms: 7 * 24 * 3600 * 1000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: crate::constants::INDEX_INTERVAL_BYTES_DEFAULT,
            max_message_bytes: crate::constants::MESSAGE_BYTES_MAX_DEFAULT,
            message_timestamp_type: TimestampType::CreateTime,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            cleanup_policy: "delete".to_string(),
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            min_insync_replicas: 1,
            overrides: BTreeMap::new(),
        }
    }
}

/// DescribeConfigs `config_type` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigKind {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    List = 7,
}

/// A topic config, the broker config that sets its default, and its type.
#[derive(Debug, Clone, Copy)]
pub struct ConfigDef {
    pub name: &'static str,
    pub broker_name: &'static str,
    pub kind: ConfigKind,
}

/// Every topic config, in name order, with Kafka's broker-level synonym.
pub const TOPIC_CONFIG_DEFS: &[ConfigDef] = &[
    ConfigDef { name: "cleanup.policy", broker_name: "log.cleanup.policy", kind: ConfigKind::List },
    ConfigDef { name: "compression.type", broker_name: "compression.type", kind: ConfigKind::String },
    ConfigDef { name: "flush.messages", broker_name: "log.flush.interval.messages", kind: ConfigKind::Long },
    ConfigDef { name: "flush.ms", broker_name: "log.flush.interval.ms", kind: ConfigKind::Long },
    ConfigDef { name: "index.interval.bytes", broker_name: "log.index.interval.bytes", kind: ConfigKind::Int },
    ConfigDef { name: "max.message.bytes", broker_name: "message.max.bytes", kind: ConfigKind::Int },
    ConfigDef { name: "message.timestamp.type", broker_name: "log.message.timestamp.type", kind: ConfigKind::String },
    ConfigDef { name: "min.insync.replicas", broker_name: "min.insync.replicas", kind: ConfigKind::Int },
    ConfigDef { name: "retention.bytes", broker_name: "log.retention.bytes", kind: ConfigKind::Long },
    ConfigDef { name: "retention.ms", broker_name: "log.retention.ms", kind: ConfigKind::Long },
    ConfigDef { name: "segment.bytes", broker_name: "log.segment.bytes", kind: ConfigKind::Int },
    ConfigDef { name: "segment.index.bytes", broker_name: "log.index.size.max.bytes", kind: ConfigKind::Int },
    ConfigDef { name: "segment.ms", broker_name: "log.roll.ms", kind: ConfigKind::Long },
];

fn parse_i64(value: &str, min: i64, max: i64) -> Result<i64, String> {
    let v: i64 = value.trim().parse().map_err(|_| format!("Invalid value {value} : not a number"))?;
    if v < min || v > max {
        return Err(format!("Invalid value {v}: value must be in [{min}, {max}]"));
    }
    Ok(v)
}

impl TopicConfig {
    /// Sets one config by its Kafka name, validating the value as Kafka does.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        match name {
            "segment.bytes" => {
                self.segment_bytes = parse_i64(value, SEGMENT_BYTES_MIN as i64, SEGMENT_BYTES_MAX as i64)? as u64
            }
            "segment.ms" => self.segment_ms = parse_i64(value, 1, i64::MAX)?,
            "segment.index.bytes" => self.segment_index_bytes = parse_i64(value, 4, i32::MAX as i64)? as u64,
            "index.interval.bytes" => self.index_interval_bytes = parse_i64(value, 0, i32::MAX as i64)? as u64,
            "max.message.bytes" => {
                self.max_message_bytes = parse_i64(value, 0, FETCH_READ_BYTES_PER_PARTITION_MAX as i64)? as u64
            }
            "message.timestamp.type" => {
                self.message_timestamp_type = match value {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => return Err(format!("Invalid value {value}: must be CreateTime or LogAppendTime")),
                }
            }
            "retention.ms" => self.retention_ms = parse_i64(value, -1, i64::MAX)?,
            "retention.bytes" => self.retention_bytes = parse_i64(value, -1, i64::MAX)?,
            "cleanup.policy" => {
                let ok = value.split(',').map(str::trim).all(|p| p == "delete" || p == "compact");
                if !ok || value.trim().is_empty() {
                    return Err(format!("Invalid value {value}: must be delete, compact or both"));
                }
                self.cleanup_policy = value.to_string();
            }
            "flush.messages" => self.flush_messages = parse_i64(value, 1, i64::MAX)?,
            "flush.ms" => self.flush_ms = parse_i64(value, 0, i64::MAX)?,
            "min.insync.replicas" => self.min_insync_replicas = parse_i64(value, 1, i32::MAX as i64)? as i32,
            // The broker stores batches as the producer compressed them; it never recompresses.
            "compression.type" if value == "producer" => {}
            "compression.type" => {
                return Err(format!(
                    "Invalid value {value}: Sluice stores batches as produced; only 'producer' is supported"
                ))
            }
            _ => return Err(format!("Unknown topic config name: {name}")),
        }
        self.overrides.insert(name.to_string(), value.to_string());
        Ok(())
    }

    /// The effective value of a config, as Kafka prints it.
    pub fn value_of(&self, name: &str) -> Option<String> {
        Some(match name {
            "cleanup.policy" => self.cleanup_policy.clone(),
            "compression.type" => "producer".to_string(),
            "flush.messages" => self.flush_messages.to_string(),
            "flush.ms" => self.flush_ms.to_string(),
            "index.interval.bytes" => self.index_interval_bytes.to_string(),
            "max.message.bytes" => self.max_message_bytes.to_string(),
            "message.timestamp.type" => match self.message_timestamp_type {
                TimestampType::CreateTime => "CreateTime".to_string(),
                TimestampType::LogAppendTime => "LogAppendTime".to_string(),
            },
            "min.insync.replicas" => self.min_insync_replicas.to_string(),
            "retention.bytes" => self.retention_bytes.to_string(),
            "retention.ms" => self.retention_ms.to_string(),
            "segment.bytes" => self.segment_bytes.to_string(),
            "segment.index.bytes" => self.segment_index_bytes.to_string(),
            "segment.ms" => self.segment_ms.to_string(),
            _ => return None,
        })
    }

    /// The defaults with `overrides` applied, or the first invalid entry.
    pub fn with_overrides<'a>(
        &self,
        overrides: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<TopicConfig, String> {
        let mut config = TopicConfig { overrides: BTreeMap::new(), ..self.clone() };
        for (name, value) in overrides {
            config.set(name, value)?;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_values() {
        let base = TopicConfig::default();
        let c =
            base.with_overrides([("segment.bytes", "1048576"), ("message.timestamp.type", "LogAppendTime")]).unwrap();
        assert_eq!(c.segment_bytes, 1 << 20);
        assert_eq!(c.message_timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(c.overrides.len(), 2);
        assert!(base.with_overrides([("segment.bytes", "10")]).is_err());
        assert!(base.with_overrides([("retention.ms", "x")]).is_err());
        assert!(base.with_overrides([("no.such.config", "1")]).unwrap_err().contains("Unknown"));
        assert!(base.with_overrides([("compression.type", "gzip")]).is_err());
        assert!(base.with_overrides([("cleanup.policy", "compact,delete")]).is_ok());
    }

    #[test]
    fn every_defined_config_has_a_value_and_round_trips() {
        let base = TopicConfig::default();
        for def in TOPIC_CONFIG_DEFS {
            let value = base.value_of(def.name).unwrap_or_else(|| panic!("{} has no value", def.name));
            let again = base.with_overrides([(def.name, value.as_str())]).unwrap();
            assert_eq!(again.value_of(def.name), Some(value), "{}", def.name);
        }
        assert!(TOPIC_CONFIG_DEFS.windows(2).all(|w| w[0].name < w[1].name));
    }
}
