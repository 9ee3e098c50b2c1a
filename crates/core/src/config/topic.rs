//! Per-topic configs under Kafka's names, with the broker's values as defaults.

use std::collections::BTreeMap;

use crate::constants::{
    DELETE_RETENTION_MS_DEFAULT, FETCH_READ_BYTES_PER_PARTITION_MAX, MAX_COMPACTION_LAG_MS_DEFAULT,
    MESSAGE_TIMESTAMP_AFTER_MAX_MS_DEFAULT, MIN_CLEANABLE_DIRTY_RATIO_DEFAULT, MIN_COMPACTION_LAG_MS_DEFAULT,
    SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN,
};

/// `message.timestamp.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    #[default]
    CreateTime,
    LogAppendTime,
}

/// The value of a `DOUBLE` config. It compares by its bits, so that configs
/// holding one can be `Eq`, and prints as Java's `Double.toString` does
/// (`0.5`, `0.01`, `1.0`, `1.7976931348623157E308`), as Kafka describes it.
#[derive(Debug, Clone, Copy)]
pub struct ConfigDouble(f64);

impl ConfigDouble {
    pub const fn new(value: f64) -> ConfigDouble {
        ConfigDouble(value)
    }

    pub const fn get(self) -> f64 {
        self.0
    }

    /// Parses `text` as Java's `Double.parseDouble` does (surrounding spaces,
    /// a sign, an exponent, a trailing `d`/`f`, `Infinity`), but refuses NaN:
    /// `None` when it is not a number.
    pub fn parse(text: &str) -> Option<ConfigDouble> {
        let t = text.trim();
        let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
        if unsigned == "Infinity" {
            return Some(ConfigDouble(if t.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY }));
        }
        // Java's float-literal suffixes; Rust would also take `inf` and `nan`, Java does not.
        let number = t.strip_suffix(['d', 'D', 'f', 'F']).unwrap_or(t);
        let digits = number.strip_prefix(['+', '-']).unwrap_or(number);
        let well_formed = digits.chars().any(|c| c.is_ascii_digit())
            && digits.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
        if !well_formed {
            return None;
        }
        number.parse::<f64>().ok().filter(|v| !v.is_nan()).map(ConfigDouble)
    }
}

impl PartialEq for ConfigDouble {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for ConfigDouble {}

impl std::fmt::Display for ConfigDouble {
    /// Java's `Double.toString`: the shortest digits that read back as the
    /// same value, in plain notation from 10^-3 up to 10^7 (with at least one
    /// digit after the point), in computerized scientific notation outside.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.0;
        if v.is_nan() {
            return f.write_str("NaN");
        }
        let sign = if v.is_sign_negative() { "-" } else { "" };
        if v.is_infinite() {
            return write!(f, "{sign}Infinity");
        }
        if v == 0.0 {
            return write!(f, "{sign}0.0");
        }
        // Rust's `{:e}` gives the shortest round-tripping digits: `d.ddde±x`.
        let sci = format!("{:e}", v.abs());
        let (mantissa, exponent) = sci.split_once('e').expect("{:e} has an exponent");
        let exponent: i32 = exponent.parse().expect("{:e} exponent is a number");
        let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
        let abs = v.abs();
        if (1e-3..1e7).contains(&abs) {
            if exponent < 0 {
                let zeros = "0".repeat((-exponent - 1) as usize);
                write!(f, "{sign}0.{zeros}{digits}")
            } else {
                let point = exponent as usize + 1;
                let (int, frac) = if digits.len() > point {
                    (digits[..point].to_string(), digits[point..].to_string())
                } else {
                    (format!("{digits}{}", "0".repeat(point - digits.len())), "0".to_string())
                };
                write!(f, "{sign}{int}.{frac}")
            }
        } else {
            let frac = if digits.len() > 1 { &digits[1..] } else { "0" };
            write!(f, "{sign}{}.{frac}E{exponent}", &digits[..1])
        }
    }
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
    /// `cleanup.policy` as Kafka prints it: the policies joined by `,` with no
    /// spaces (`delete`, `compact`, `compact,delete`, or empty for no cleanup).
    /// Read it through [`TopicConfig::compacts`] and [`TopicConfig::deletes`].
    pub cleanup_policy: String,
    /// `delete.retention.ms`: how long a compacted topic keeps tombstones (and
    /// transaction markers) once they are cleaned, `[0, i64::MAX]`.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`: the share of a log not yet compacted above
    /// which it is eligible for cleaning, `[0, 1]`.
    pub min_cleanable_dirty_ratio: ConfigDouble,
    /// `min.compaction.lag.ms`: records younger than this are never compacted, `[0, i64::MAX]`.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: records older than this make the log eligible
    /// whatever its dirty ratio, `[1, i64::MAX]`; at least `min_compaction_lag_ms`.
    pub max_compaction_lag_ms: i64,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub min_insync_replicas: i32,
    /// `message.timestamp.before.max.ms`: a `CreateTime` record older than
    /// this (against the broker's clock) is refused with INVALID_TIMESTAMP, `[0, i64::MAX]`.
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: a `CreateTime` record newer than
    /// this (against the broker's clock) is refused with INVALID_TIMESTAMP, `[0, i64::MAX]`.
    pub message_timestamp_after_max_ms: i64,
    /// `confluent.key.schema.validation`: each record's key must carry the
    /// id of a schema registered under its subject (Confluent Server's
    /// broker-side schema id validation).
    pub key_schema_validation: bool,
    /// `confluent.value.schema.validation`: the same, of each record's value.
    pub value_schema_validation: bool,
    /// `confluent.key.subject.name.strategy`: the subject a key's schema id must be registered under.
    pub key_subject_name_strategy: SubjectNameStrategy,
    /// `confluent.value.subject.name.strategy`: the subject a value's schema id must be registered under.
    pub value_subject_name_strategy: SubjectNameStrategy,
    /// The values of the configs Sluice accepts and describes but does not
    /// act on ([`ConfigDef::no_effect`]), as Kafka prints them; a config not
    /// here has its Kafka default.
    pub inert: BTreeMap<&'static str, String>,
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
            delete_retention_ms: DELETE_RETENTION_MS_DEFAULT,
            min_cleanable_dirty_ratio: ConfigDouble::new(MIN_CLEANABLE_DIRTY_RATIO_DEFAULT),
            min_compaction_lag_ms: MIN_COMPACTION_LAG_MS_DEFAULT,
            max_compaction_lag_ms: MAX_COMPACTION_LAG_MS_DEFAULT,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            min_insync_replicas: 1,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: MESSAGE_TIMESTAMP_AFTER_MAX_MS_DEFAULT,
            key_schema_validation: false,
            value_schema_validation: false,
            key_subject_name_strategy: SubjectNameStrategy::Topic,
            value_subject_name_strategy: SubjectNameStrategy::Topic,
            inert: BTreeMap::new(),
            overrides: BTreeMap::new(),
        }
    }
}

/// How the subject a record's schema id must be registered under is
/// named: Confluent's subject name strategies, by their class names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectNameStrategy {
    /// `<topic>-key` or `<topic>-value` (the default).
    Topic,
    /// The schema's record name.
    Record,
    /// `<topic>-<record name>`.
    TopicRecord,
}

impl SubjectNameStrategy {
    const ALL: [SubjectNameStrategy; 3] =
        [SubjectNameStrategy::Topic, SubjectNameStrategy::Record, SubjectNameStrategy::TopicRecord];

    /// The strategy's Java class name, as Confluent's configs give it.
    pub fn class_name(self) -> &'static str {
        match self {
            SubjectNameStrategy::Topic => "io.confluent.kafka.serializers.subject.TopicNameStrategy",
            SubjectNameStrategy::Record => "io.confluent.kafka.serializers.subject.RecordNameStrategy",
            SubjectNameStrategy::TopicRecord => "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy",
        }
    }

    fn parse(shown: &str, value: &str) -> Result<SubjectNameStrategy, String> {
        let value = value.trim();
        Self::ALL.into_iter().find(|s| s.class_name() == value).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|s| s.class_name()).collect();
            refused(shown, value, &format!("String must be one of: {}", names.join(", ")))
        })
    }

    /// The subject a key's (`is_key`) or value's schema must be registered
    /// under in `topic`; `record_name` is asked for only by the record strategies.
    pub fn subject<E>(
        self,
        topic: &str,
        is_key: bool,
        record_name: impl FnOnce() -> Result<String, E>,
    ) -> Result<String, E> {
        Ok(match self {
            SubjectNameStrategy::Topic => format!("{topic}-{}", if is_key { "key" } else { "value" }),
            SubjectNameStrategy::Record => record_name()?,
            SubjectNameStrategy::TopicRecord => format!("{topic}-{}", record_name()?),
        })
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
    Double = 6,
    List = 7,
}

/// A topic config, the broker config that sets its default, and its type.
#[derive(Debug, Clone, Copy)]
pub struct ConfigDef {
    pub name: &'static str,
    /// The broker config that sets this config's default (Kafka's first
    /// synonym, `log.retention.ms` for `retention.ms`); `None`: no broker
    /// config does (the remote-storage and replication-throttle configs).
    pub broker_name: Option<&'static str>,
    pub kind: ConfigKind,
    /// `Some`: accepted, checked and described as Kafka does, but with no
    /// effect on Sluice; how it is checked, its default and why it does nothing.
    pub no_effect: Option<NoEffect>,
}

/// A config Sluice accepts and describes without acting on it.
#[derive(Debug, Clone, Copy)]
pub struct NoEffect {
    pub check: Check,
    /// Kafka 4.1's default, as Kafka prints it.
    pub default: &'static str,
    /// Why the config has no effect on Sluice (the README's table says the same).
    pub why: &'static str,
}

/// How the value of a [`NoEffect`] config is checked: Kafka 4.1's validator.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// A `LONG` of at least `min`.
    LongAtLeast(i64),
    /// An `INT` within `[min, max]`.
    IntBetween(i32, i32),
    /// `compression.gzip.level`: an `INT` within `[1, 9]`, or -1.
    GzipLevel,
    /// A `BOOLEAN`.
    Boolean,
    /// A `BOOLEAN` that must stay `false`: `remote.storage.enable` on a broker without tiered storage.
    RemoteStorageOff,
    /// `*` or a list of `partition:broker` (the replication throttle lists).
    ThrottledReplicas,
}

const fn honoured(name: &'static str, broker_name: &'static str, kind: ConfigKind) -> ConfigDef {
    ConfigDef { name, broker_name: Some(broker_name), kind, no_effect: None }
}

/// A config of Confluent Server's that Sluice acts on; no broker config sets its default.
const fn confluent(name: &'static str, kind: ConfigKind) -> ConfigDef {
    ConfigDef { name, broker_name: None, kind, no_effect: None }
}

impl ConfigDef {
    /// A config beyond Kafka's (Confluent Server's schema id validation):
    /// described where a topic sets it or a request names it, so that a
    /// topic's full listing is Kafka's.
    pub fn extension(&self) -> bool {
        self.name.starts_with("confluent.")
    }
}

const fn inert(
    name: &'static str,
    broker_name: Option<&'static str>,
    kind: ConfigKind,
    check: Check,
    default: &'static str,
    why: &'static str,
) -> ConfigDef {
    ConfigDef { name, broker_name, kind, no_effect: Some(NoEffect { check, default, why }) }
}

const WHY_NO_THROTTLES: &str = "replication is not throttled: a follower copies as fast as the brokers can";
const WHY_NO_UNCLEAN_ELECTION: &str =
    "no unclean leader election: a partition with no in-sync replica waits for one to come back";
const WHY_NO_RECOMPRESSION: &str = "batches are stored as the producer compressed them, never recompressed";
const WHY_NO_TIERED_STORAGE: &str = "no tiered storage: every segment stays local";

/// Every topic config of Kafka 4.1 (its `LogConfig`, internal ones left
/// out) and Confluent Server's broker-side schema id validation configs,
/// in name order, with the broker config that sets its default.
pub const TOPIC_CONFIG_DEFS: &[ConfigDef] = &[
    honoured("cleanup.policy", "log.cleanup.policy", ConfigKind::List),
    inert(
        "compression.gzip.level",
        Some("compression.gzip.level"),
        ConfigKind::Int,
        Check::GzipLevel,
        "-1",
        WHY_NO_RECOMPRESSION,
    ),
    inert(
        "compression.lz4.level",
        Some("compression.lz4.level"),
        ConfigKind::Int,
        Check::IntBetween(1, 17),
        "9",
        WHY_NO_RECOMPRESSION,
    ),
    honoured("compression.type", "compression.type", ConfigKind::String),
    inert(
        "compression.zstd.level",
        Some("compression.zstd.level"),
        ConfigKind::Int,
        Check::IntBetween(-131_072, 22),
        "3",
        WHY_NO_RECOMPRESSION,
    ),
    confluent("confluent.key.schema.validation", ConfigKind::Boolean),
    confluent("confluent.key.subject.name.strategy", ConfigKind::String),
    confluent("confluent.value.schema.validation", ConfigKind::Boolean),
    confluent("confluent.value.subject.name.strategy", ConfigKind::String),
    honoured("delete.retention.ms", "log.cleaner.delete.retention.ms", ConfigKind::Long),
    inert(
        "file.delete.delay.ms",
        Some("log.segment.delete.delay.ms"),
        ConfigKind::Long,
        Check::LongAtLeast(0),
        "60000",
        "segments are removed once no reader holds them, not after a delay",
    ),
    honoured("flush.messages", "log.flush.interval.messages", ConfigKind::Long),
    honoured("flush.ms", "log.flush.interval.ms", ConfigKind::Long),
    inert(
        "follower.replication.throttled.replicas",
        None,
        ConfigKind::List,
        Check::ThrottledReplicas,
        "",
        WHY_NO_THROTTLES,
    ),
    honoured("index.interval.bytes", "log.index.interval.bytes", ConfigKind::Int),
    inert(
        "leader.replication.throttled.replicas",
        None,
        ConfigKind::List,
        Check::ThrottledReplicas,
        "",
        WHY_NO_THROTTLES,
    ),
    inert(
        "local.retention.bytes",
        Some("log.local.retention.bytes"),
        ConfigKind::Long,
        Check::LongAtLeast(-2),
        "-2",
        WHY_NO_TIERED_STORAGE,
    ),
    inert(
        "local.retention.ms",
        Some("log.local.retention.ms"),
        ConfigKind::Long,
        Check::LongAtLeast(-2),
        "-2",
        WHY_NO_TIERED_STORAGE,
    ),
    honoured("max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms", ConfigKind::Long),
    honoured("max.message.bytes", "message.max.bytes", ConfigKind::Int),
    honoured("message.timestamp.after.max.ms", "log.message.timestamp.after.max.ms", ConfigKind::Long),
    honoured("message.timestamp.before.max.ms", "log.message.timestamp.before.max.ms", ConfigKind::Long),
    honoured("message.timestamp.type", "log.message.timestamp.type", ConfigKind::String),
    honoured("min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio", ConfigKind::Double),
    honoured("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", ConfigKind::Long),
    honoured("min.insync.replicas", "min.insync.replicas", ConfigKind::Int),
    inert(
        "preallocate",
        Some("log.preallocate"),
        ConfigKind::Boolean,
        Check::Boolean,
        "false",
        "segment files grow as they are written; none is created at full size",
    ),
    inert("remote.log.copy.disable", None, ConfigKind::Boolean, Check::Boolean, "false", WHY_NO_TIERED_STORAGE),
    inert("remote.log.delete.on.disable", None, ConfigKind::Boolean, Check::Boolean, "false", WHY_NO_TIERED_STORAGE),
    inert(
        "remote.storage.enable",
        None,
        ConfigKind::Boolean,
        Check::RemoteStorageOff,
        "false",
        "only `false` is accepted: no tiered storage",
    ),
    honoured("retention.bytes", "log.retention.bytes", ConfigKind::Long),
    honoured("retention.ms", "log.retention.ms", ConfigKind::Long),
    honoured("segment.bytes", "log.segment.bytes", ConfigKind::Int),
    honoured("segment.index.bytes", "log.index.size.max.bytes", ConfigKind::Int),
    inert(
        "segment.jitter.ms",
        Some("log.roll.jitter.ms"),
        ConfigKind::Long,
        Check::LongAtLeast(0),
        "0",
        "segments roll at `segment.ms` exactly, without a random jitter",
    ),
    honoured("segment.ms", "log.roll.ms", ConfigKind::Long),
    inert(
        "unclean.leader.election.enable",
        Some("unclean.leader.election.enable"),
        ConfigKind::Boolean,
        Check::Boolean,
        "false",
        WHY_NO_UNCLEAN_ELECTION,
    ),
];

/// The definition of topic config `name`, if Kafka 4.1 has one.
pub fn def_of(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIG_DEFS.binary_search_by(|def| def.name.cmp(name)).ok().map(|i| &TOPIC_CONFIG_DEFS[i])
}

/// Kafka's message when `remote.storage.enable=true` meets a broker without
/// tiered storage (its `LogConfig.validateRemoteStorageOnlyIfSystemEnabled`).
pub const REMOTE_STORAGE_DISABLED: &str =
    "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage.";

/// Kafka's message for a refused value (its `ConfigException`).
pub(super) fn refused(name: &str, value: impl std::fmt::Display, reason: &str) -> String {
    format!("Invalid value {value} for configuration {name}: {reason}")
}

/// An `INT` (`int`) or `LONG` config within `[min, max]`, refused with Kafka's messages.
fn integer(name: &str, value: &str, int: bool, min: i64, max: i64) -> Result<i64, String> {
    let trimmed = value.trim();
    let parsed = if int { trimmed.parse::<i32>().map(i64::from) } else { trimmed.parse::<i64>() };
    let v = parsed.map_err(|_| {
        refused(name, value, if int { "Not a number of type INT" } else { "Not a number of type LONG" })
    })?;
    if v < min {
        return Err(refused(name, v, &format!("Value must be at least {min}")));
    }
    if v > max {
        return Err(refused(name, v, &format!("Value must be no more than {max}")));
    }
    Ok(v)
}

pub(super) fn long(name: &str, value: &str, min: i64, max: i64) -> Result<i64, String> {
    integer(name, value, false, min, max)
}

pub(super) fn int(name: &str, value: &str, min: i64, max: i64) -> Result<i64, String> {
    integer(name, value, true, min, max)
}

/// `cleanup.policy` as Kafka 4.1 reads a list: empty (after trimming) is
/// the empty list (no cleanup at all), otherwise the items between commas,
/// spaces around them dropped, each `compact` or `delete`. Returns the
/// items joined by `,`, as Kafka prints the list.
fn cleanup_policy(shown: &str, value: &str) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let items: Vec<&str> = trimmed.split(',').map(str::trim).collect();
    if let Some(bad) = items.iter().find(|p| **p != "compact" && **p != "delete") {
        return Err(refused(shown, bad, "String must be one of: compact, delete"));
    }
    Ok(items.join(","))
}

/// The values of `compression.type` Kafka knows besides `producer`.
const KAFKA_COMPRESSION_TYPES: [&str; 5] = ["uncompressed", "zstd", "lz4", "snappy", "gzip"];

/// A `BOOLEAN` as Kafka reads one: `true` or `false` in any case, spaces around dropped.
fn boolean(name: &str, value: &str) -> Result<bool, String> {
    match value.trim() {
        v if v.eq_ignore_ascii_case("true") => Ok(true),
        v if v.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(refused(name, value, "Expected value to be either true or false")),
    }
}

/// A replication throttle list as Kafka 4.1 reads it (`ThrottledReplicaListValidator`):
/// `*`, or items `partition:broker` (an empty item allowed) between commas.
/// Returns the items joined by `,`, as Kafka prints the list.
fn throttled_replicas(name: &str, value: &str) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let items: Vec<&str> = trimmed.split(',').map(str::trim).collect();
    let number = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let replica = |item: &&str| item.is_empty() || item.split_once(':').is_some_and(|(p, b)| number(p) && number(b));
    if items.concat() == "*" || items.iter().all(replica) {
        return Ok(items.join(","));
    }
    Err(refused(
        name,
        format!("[{}]", items.join(", ")),
        &format!(
            "{name} must be the literal '*' or a list of replicas in the following format: \
             [partitionId]:[brokerId],[partitionId]:[brokerId],..."
        ),
    ))
}

/// Checks the value of a config with no effect as Kafka's validator does;
/// the value as Kafka prints it.
fn checked(name: &str, value: &str, check: Check) -> Result<String, String> {
    let printed = match check {
        Check::LongAtLeast(min) => long(name, value, min, i64::MAX)?.to_string(),
        Check::IntBetween(min, max) => int(name, value, min.into(), max.into())?.to_string(),
        Check::GzipLevel => {
            let level = int(name, value, i32::MIN.into(), i32::MAX.into())?;
            if level != -1 && !(1..=9).contains(&level) {
                return Err(refused(name, level, "Value must be between 1 and 9 or equal to -1"));
            }
            level.to_string()
        }
        Check::Boolean => boolean(name, value)?.to_string(),
        Check::RemoteStorageOff => match boolean(name, value)? {
            false => "false".to_string(),
            true => return Err(REMOTE_STORAGE_DISABLED.to_string()),
        },
        Check::ThrottledReplicas => throttled_replicas(name, value)?,
    };
    Ok(printed)
}

impl TopicConfig {
    /// Sets one config by its Kafka name, validating the value as Kafka does.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        self.set_as(name, value, name)
    }

    /// [`TopicConfig::set`], with a refused value reported under `shown`:
    /// the broker config that sets this default (`log.retention.ms` for
    /// `retention.ms`), as Kafka reports a broker config it refuses.
    pub fn set_as(&mut self, name: &str, value: &str, shown: &str) -> Result<(), String> {
        match name {
            "segment.bytes" => {
                self.segment_bytes = int(shown, value, SEGMENT_BYTES_MIN as i64, SEGMENT_BYTES_MAX as i64)? as u64
            }
            "segment.ms" => self.segment_ms = long(shown, value, 1, i64::MAX)?,
            "segment.index.bytes" => self.segment_index_bytes = int(shown, value, 4, i32::MAX as i64)? as u64,
            "index.interval.bytes" => self.index_interval_bytes = int(shown, value, 0, i32::MAX as i64)? as u64,
            "max.message.bytes" => {
                self.max_message_bytes = int(shown, value, 0, FETCH_READ_BYTES_PER_PARTITION_MAX as i64)? as u64
            }
            "message.timestamp.type" => {
                self.message_timestamp_type = match value.trim() {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => return Err(refused(shown, value, "String must be one of: CreateTime, LogAppendTime")),
                }
            }
            "retention.ms" => self.retention_ms = long(shown, value, -1, i64::MAX)?,
            "retention.bytes" => self.retention_bytes = long(shown, value, -1, i64::MAX)?,
            "cleanup.policy" => self.cleanup_policy = cleanup_policy(shown, value)?,
            "delete.retention.ms" => self.delete_retention_ms = long(shown, value, 0, i64::MAX)?,
            "min.cleanable.dirty.ratio" => {
                let ratio =
                    ConfigDouble::parse(value).ok_or_else(|| refused(shown, value, "Not a number of type DOUBLE"))?;
                if ratio.get() < 0.0 {
                    return Err(refused(shown, ratio, "Value must be at least 0"));
                }
                if ratio.get() > 1.0 {
                    return Err(refused(shown, ratio, "Value must be no more than 1"));
                }
                self.min_cleanable_dirty_ratio = ratio;
            }
            "min.compaction.lag.ms" => self.min_compaction_lag_ms = long(shown, value, 0, i64::MAX)?,
            "max.compaction.lag.ms" => self.max_compaction_lag_ms = long(shown, value, 1, i64::MAX)?,
            "flush.messages" => self.flush_messages = long(shown, value, 1, i64::MAX)?,
            "flush.ms" => self.flush_ms = long(shown, value, 0, i64::MAX)?,
            "min.insync.replicas" => self.min_insync_replicas = int(shown, value, 1, i32::MAX as i64)? as i32,
            "message.timestamp.before.max.ms" => {
                self.message_timestamp_before_max_ms = long(shown, value, 0, i64::MAX)?
            }
            "message.timestamp.after.max.ms" => self.message_timestamp_after_max_ms = long(shown, value, 0, i64::MAX)?,
            "confluent.key.schema.validation" => self.key_schema_validation = boolean(shown, value)?,
            "confluent.value.schema.validation" => self.value_schema_validation = boolean(shown, value)?,
            "confluent.key.subject.name.strategy" => {
                self.key_subject_name_strategy = SubjectNameStrategy::parse(shown, value)?
            }
            "confluent.value.subject.name.strategy" => {
                self.value_subject_name_strategy = SubjectNameStrategy::parse(shown, value)?
            }
            // The broker stores batches as the producer compressed them; it never recompresses.
            "compression.type" if value.trim() == "producer" => {}
            "compression.type" if KAFKA_COMPRESSION_TYPES.contains(&value.trim()) => {
                return Err(refused(shown, value, "Sluice stores batches as produced; only 'producer' is supported"))
            }
            "compression.type" => {
                return Err(refused(
                    shown,
                    value,
                    "String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer",
                ))
            }
            _ => {
                let def = def_of(name).ok_or_else(|| format!("Unknown topic config name: {name}"))?;
                let no_effect = def.no_effect.ok_or_else(|| format!("Unknown topic config name: {name}"))?;
                let printed = checked(shown, value, no_effect.check)?;
                self.inert.insert(def.name, printed.clone());
                self.overrides.insert(name.to_string(), printed);
                return Ok(());
            }
        }
        // Kafka trims every value it parses; kept trimmed (a list as printed),
        // an override holds no spaces or line breaks, which the catalog's
        // one-line-per-override file relies on.
        let stored = if name == "cleanup.policy" { self.cleanup_policy.clone() } else { value.trim().to_string() };
        self.overrides.insert(name.to_string(), stored);
        Ok(())
    }

    /// Whether a record's `CreateTime` timestamp lies outside
    /// `message.timestamp.before.max.ms` / `after.max.ms` of `now_ms`, so that
    /// Kafka refuses it (its `LogValidator.recordHasInvalidTimestamp`, with
    /// Java's wrapping arithmetic). `LogAppendTime` topics and records
    /// without a timestamp (-1) pass.
    pub fn timestamp_refused(&self, now_ms: i64, timestamp_ms: i64) -> bool {
        if self.message_timestamp_type != TimestampType::CreateTime || timestamp_ms == -1 {
            return false;
        }
        let diff_ms = now_ms.wrapping_sub(timestamp_ms);
        diff_ms > self.message_timestamp_before_max_ms || diff_ms.wrapping_neg() > self.message_timestamp_after_max_ms
    }

    /// The range of timestamps accepted at `now_ms`, as Kafka prints it in its refusal.
    pub fn timestamp_bounds(&self, now_ms: i64) -> (i64, i64) {
        (
            now_ms.wrapping_sub(self.message_timestamp_before_max_ms),
            now_ms.wrapping_add(self.message_timestamp_after_max_ms),
        )
    }

    /// Whether `cleanup.policy` includes `compact`: the log cleaner keeps the
    /// newest record of each key.
    pub fn compacts(&self) -> bool {
        self.cleanup_policy.split(',').any(|p| p.trim().eq_ignore_ascii_case("compact"))
    }

    /// Whether `cleanup.policy` includes `delete`: retention removes old segments.
    pub fn deletes(&self) -> bool {
        self.cleanup_policy.split(',').any(|p| p.trim().eq_ignore_ascii_case("delete"))
    }

    /// The checks between configs of Kafka's `LogConfig.validateValues`, run
    /// on a topic's whole config (broker defaults and its overrides) when it
    /// is created or altered, and on the broker defaults at start.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_compaction_lag_ms > self.max_compaction_lag_ms {
            return Err(format!(
                "conflict topic config setting min.compaction.lag.ms ({}) > max.compaction.lag.ms ({})",
                self.min_compaction_lag_ms, self.max_compaction_lag_ms
            ));
        }
        Ok(())
    }

    /// The effective value of a config, as Kafka prints it.
    pub fn value_of(&self, name: &str) -> Option<String> {
        Some(match name {
            "cleanup.policy" => self.cleanup_policy.clone(),
            "compression.type" => "producer".to_string(),
            "delete.retention.ms" => self.delete_retention_ms.to_string(),
            "flush.messages" => self.flush_messages.to_string(),
            "flush.ms" => self.flush_ms.to_string(),
            "index.interval.bytes" => self.index_interval_bytes.to_string(),
            "max.compaction.lag.ms" => self.max_compaction_lag_ms.to_string(),
            "max.message.bytes" => self.max_message_bytes.to_string(),
            "message.timestamp.type" => match self.message_timestamp_type {
                TimestampType::CreateTime => "CreateTime".to_string(),
                TimestampType::LogAppendTime => "LogAppendTime".to_string(),
            },
            "min.cleanable.dirty.ratio" => self.min_cleanable_dirty_ratio.to_string(),
            "min.compaction.lag.ms" => self.min_compaction_lag_ms.to_string(),
            "min.insync.replicas" => self.min_insync_replicas.to_string(),
            "retention.bytes" => self.retention_bytes.to_string(),
            "retention.ms" => self.retention_ms.to_string(),
            "segment.bytes" => self.segment_bytes.to_string(),
            "segment.index.bytes" => self.segment_index_bytes.to_string(),
            "segment.ms" => self.segment_ms.to_string(),
            "message.timestamp.before.max.ms" => self.message_timestamp_before_max_ms.to_string(),
            "message.timestamp.after.max.ms" => self.message_timestamp_after_max_ms.to_string(),
            "confluent.key.schema.validation" => self.key_schema_validation.to_string(),
            "confluent.value.schema.validation" => self.value_schema_validation.to_string(),
            "confluent.key.subject.name.strategy" => self.key_subject_name_strategy.class_name().to_string(),
            "confluent.value.subject.name.strategy" => self.value_subject_name_strategy.class_name().to_string(),
            _ => {
                let def = def_of(name)?;
                let no_effect = def.no_effect?;
                self.inert.get(def.name).cloned().unwrap_or_else(|| no_effect.default.to_string())
            }
        })
    }

    /// The defaults with `overrides` applied and the whole checked
    /// ([`TopicConfig::validate`]), or the first problem: what a topic being
    /// created or altered must pass.
    pub fn with_overrides<'a>(
        &self,
        overrides: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<TopicConfig, String> {
        let config = self.apply_overrides(overrides)?;
        config.validate()?;
        Ok(config)
    }

    /// The defaults with `overrides` applied, each value checked on its own
    /// but not against the others: for overrides accepted before and read
    /// back at start, which a since-changed broker default must not make
    /// unreadable (Kafka, too, checks them only when they are set).
    pub fn apply_overrides<'a>(
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
    fn schema_id_validation_configs() {
        let base = TopicConfig::default();
        assert!(!base.key_schema_validation && !base.value_schema_validation);
        assert_eq!(
            base.value_of("confluent.value.subject.name.strategy").unwrap(),
            SubjectNameStrategy::Topic.class_name()
        );
        let c = base
            .with_overrides([
                ("confluent.value.schema.validation", "true"),
                ("confluent.key.subject.name.strategy", "io.confluent.kafka.serializers.subject.RecordNameStrategy"),
            ])
            .unwrap();
        assert!(c.value_schema_validation && !c.key_schema_validation);
        assert_eq!(c.key_subject_name_strategy, SubjectNameStrategy::Record);
        assert_eq!(c.value_of("confluent.value.schema.validation").as_deref(), Some("true"));
        let refused = base.with_overrides([("confluent.value.subject.name.strategy", "TopicNameStrategy")]);
        assert!(refused
            .unwrap_err()
            .contains("String must be one of: io.confluent.kafka.serializers.subject.TopicNameStrategy"));
        assert!(base.with_overrides([("confluent.key.schema.validation", "yes")]).is_err());

        let name = || Ok::<_, ()>("exchange.Trade".to_string());
        assert_eq!(SubjectNameStrategy::Topic.subject("trades", false, name), Ok("trades-value".to_string()));
        assert_eq!(SubjectNameStrategy::Topic.subject("trades", true, name), Ok("trades-key".to_string()));
        assert_eq!(SubjectNameStrategy::Record.subject("trades", true, name), Ok("exchange.Trade".to_string()));
        assert_eq!(
            SubjectNameStrategy::TopicRecord.subject("trades", false, name),
            Ok("trades-exchange.Trade".to_string())
        );
        assert_eq!(
            SubjectNameStrategy::Record.subject("trades", false, || Err::<String, _>("unnamed")),
            Err("unnamed")
        );
    }

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

    #[test]
    fn doubles_print_as_java_does() {
        let java = |v: f64| ConfigDouble::new(v).to_string();
        assert_eq!(java(0.5), "0.5");
        assert_eq!(java(0.01), "0.01");
        assert_eq!(java(1.0), "1.0");
        assert_eq!(java(0.9), "0.9");
        assert_eq!(java(0.0), "0.0");
        assert_eq!(java(-0.0), "-0.0");
        assert_eq!(java(0.001), "0.001");
        assert_eq!(java(0.0001), "1.0E-4");
        assert_eq!(java(100.0), "100.0");
        assert_eq!(java(123456.7), "123456.7");
        assert_eq!(java(9999999.0), "9999999.0");
        assert_eq!(java(1e7), "1.0E7");
        assert_eq!(java(1.25e-5), "1.25E-5");
        assert_eq!(java(f64::MAX), "1.7976931348623157E308");
        assert_eq!(java(f64::INFINITY), "Infinity");
        assert_eq!(java(-2.5), "-2.5");
    }

    #[test]
    fn doubles_parse_as_java_does_but_not_nan() {
        let parse = |t: &str| ConfigDouble::parse(t).map(ConfigDouble::get);
        assert_eq!(parse("0.5"), Some(0.5));
        assert_eq!(parse(" 0.50 "), Some(0.5));
        assert_eq!(parse("5e-1"), Some(0.5));
        assert_eq!(parse(".5"), Some(0.5));
        assert_eq!(parse("1."), Some(1.0));
        assert_eq!(parse("+1"), Some(1.0));
        assert_eq!(parse("0.5d"), Some(0.5));
        assert_eq!(parse("1.7976931348623157E308"), Some(f64::MAX));
        assert_eq!(parse("Infinity"), Some(f64::INFINITY));
        for bad in ["", " ", "NaN", "nan", "inf", "infinity", "abc", "0.5x", "1,5", "e5", "."] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(ConfigDouble::new(0.5), ConfigDouble::parse("0.5").unwrap());
        assert_ne!(ConfigDouble::new(0.0), ConfigDouble::new(-0.0), "compared by bits");
    }

    #[test]
    fn compaction_configs_are_validated_as_kafka_does() {
        let base = TopicConfig::default();
        assert_eq!(base.delete_retention_ms, 86_400_000);
        assert_eq!(base.min_cleanable_dirty_ratio.get(), 0.5);
        assert_eq!(base.value_of("min.cleanable.dirty.ratio").as_deref(), Some("0.5"));
        assert_eq!((base.min_compaction_lag_ms, base.max_compaction_lag_ms), (0, i64::MAX));
        assert_eq!(base.value_of("max.compaction.lag.ms").as_deref(), Some("9223372036854775807"));

        let c = base
            .with_overrides([
                ("min.cleanable.dirty.ratio", "0.01"),
                ("delete.retention.ms", "1000"),
                ("min.compaction.lag.ms", "10"),
                ("max.compaction.lag.ms", "10"),
            ])
            .unwrap();
        assert_eq!(c.min_cleanable_dirty_ratio.get(), 0.01);
        assert_eq!(c.value_of("min.cleanable.dirty.ratio").as_deref(), Some("0.01"));
        assert_eq!((c.delete_retention_ms, c.min_compaction_lag_ms, c.max_compaction_lag_ms), (1000, 10, 10));
        assert_eq!(c.overrides["min.cleanable.dirty.ratio"], "0.01");
        let spaced = base.with_overrides([("min.cleanable.dirty.ratio", " 0.010\n")]).unwrap();
        assert_eq!(spaced.overrides["min.cleanable.dirty.ratio"], "0.010", "overrides are kept trimmed");
        for (ratio, printed) in [("0", "0.0"), ("1", "1.0"), ("1.0", "1.0"), (" 0.50 ", "0.5"), ("1e-2", "0.01")] {
            let c = base.with_overrides([("min.cleanable.dirty.ratio", ratio)]).unwrap();
            assert_eq!(c.value_of("min.cleanable.dirty.ratio").as_deref(), Some(printed), "{ratio:?}");
        }

        let refused = |name: &str, value: &str| base.with_overrides([(name, value)]).unwrap_err();
        assert_eq!(
            refused("min.cleanable.dirty.ratio", "1.5"),
            "Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"
        );
        assert_eq!(
            refused("min.cleanable.dirty.ratio", "-0.1"),
            "Invalid value -0.1 for configuration min.cleanable.dirty.ratio: Value must be at least 0"
        );
        assert_eq!(
            refused("min.cleanable.dirty.ratio", "half"),
            "Invalid value half for configuration min.cleanable.dirty.ratio: Not a number of type DOUBLE"
        );
        assert!(refused("min.cleanable.dirty.ratio", "NaN").contains("Not a number"));
        assert_eq!(
            refused("delete.retention.ms", "-1"),
            "Invalid value -1 for configuration delete.retention.ms: Value must be at least 0"
        );
        assert_eq!(
            refused("min.compaction.lag.ms", "-1"),
            "Invalid value -1 for configuration min.compaction.lag.ms: Value must be at least 0"
        );
        assert_eq!(
            refused("max.compaction.lag.ms", "0"),
            "Invalid value 0 for configuration max.compaction.lag.ms: Value must be at least 1"
        );
        assert_eq!(
            refused("max.compaction.lag.ms", "9223372036854775808"),
            "Invalid value 9223372036854775808 for configuration max.compaction.lag.ms: Not a number of type LONG"
        );
        assert!(base.with_overrides([("delete.retention.ms", "9223372036854775807")]).is_ok());

        // min.compaction.lag.ms > max.compaction.lag.ms is refused on the whole config, in either order,
        // and against the defaults (here the broker's).
        let conflict = "conflict topic config setting min.compaction.lag.ms (100) > max.compaction.lag.ms (10)";
        let pair = [("min.compaction.lag.ms", "100"), ("max.compaction.lag.ms", "10")];
        assert_eq!(base.with_overrides(pair).unwrap_err(), conflict);
        assert_eq!(base.with_overrides(pair.into_iter().rev()).unwrap_err(), conflict);
        let broker = TopicConfig { min_compaction_lag_ms: 100, ..TopicConfig::default() };
        assert_eq!(broker.with_overrides([("max.compaction.lag.ms", "10")]).unwrap_err(), conflict);
        // Read back at start, a stored topic is not checked against changed defaults.
        assert_eq!(broker.apply_overrides([("max.compaction.lag.ms", "10")]).unwrap().max_compaction_lag_ms, 10);
    }

    #[test]
    fn cleanup_policy_spellings_of_kafka_4() {
        let base = TopicConfig::default();
        assert!(base.deletes() && !base.compacts());
        let policy = |v: &str| base.with_overrides([("cleanup.policy", v)]).map(|c| (c.cleanup_policy.clone(), c));
        for (given, printed, compacts, deletes) in [
            ("delete", "delete", false, true),
            ("compact", "compact", true, false),
            ("compact,delete", "compact,delete", true, true),
            ("delete,compact", "delete,compact", true, true),
            (" compact , delete ", "compact,delete", true, true),
            ("delete,delete", "delete,delete", false, true),
            ("", "", false, false),
            ("  ", "", false, false),
        ] {
            let (value, c) = policy(given).unwrap_or_else(|e| panic!("{given:?}: {e}"));
            assert_eq!(value, printed, "{given:?}");
            assert_eq!(c.value_of("cleanup.policy").as_deref(), Some(printed));
            assert_eq!((c.compacts(), c.deletes()), (compacts, deletes), "{given:?}");
            assert_eq!(c.overrides["cleanup.policy"], printed, "the override is kept as Kafka prints the list");
        }
        assert_eq!(
            policy("Compact").unwrap_err(),
            "Invalid value Compact for configuration cleanup.policy: String must be one of: compact, delete"
        );
        assert!(policy("compact,").is_err(), "an empty item");
        assert!(policy("compact;delete").is_err());
        assert_eq!(policy("compact,\n delete").unwrap().1.overrides["cleanup.policy"], "compact,delete");
    }

    #[test]
    fn numeric_messages_are_kafkas() {
        let base = TopicConfig::default();
        assert_eq!(
            base.with_overrides([("retention.ms", "x")]).unwrap_err(),
            "Invalid value x for configuration retention.ms: Not a number of type LONG"
        );
        assert_eq!(
            base.with_overrides([("min.insync.replicas", "0")]).unwrap_err(),
            "Invalid value 0 for configuration min.insync.replicas: Value must be at least 1"
        );
        assert_eq!(
            base.with_overrides([("segment.index.bytes", "4294967296")]).unwrap_err(),
            "Invalid value 4294967296 for configuration segment.index.bytes: Not a number of type INT"
        );
        assert!(base.with_overrides([("message.timestamp.type", " LogAppendTime ")]).is_ok());
    }

    /// The topic configs of Kafka 4.1.1 (`LogConfig.nonInternalConfigNames()`) with their defaults.
    const KAFKA_4_1_DEFAULTS: [(&str, &str); 33] = [
        ("cleanup.policy", "delete"),
        ("compression.gzip.level", "-1"),
        ("compression.lz4.level", "9"),
        ("compression.type", "producer"),
        ("compression.zstd.level", "3"),
        ("delete.retention.ms", "86400000"),
        ("file.delete.delay.ms", "60000"),
        ("flush.messages", "9223372036854775807"),
        ("flush.ms", "9223372036854775807"),
        ("follower.replication.throttled.replicas", ""),
        ("index.interval.bytes", "4096"),
        ("leader.replication.throttled.replicas", ""),
        ("local.retention.bytes", "-2"),
        ("local.retention.ms", "-2"),
        ("max.compaction.lag.ms", "9223372036854775807"),
        ("max.message.bytes", "1048588"),
        ("message.timestamp.after.max.ms", "3600000"),
        ("message.timestamp.before.max.ms", "9223372036854775807"),
        ("message.timestamp.type", "CreateTime"),
        ("min.cleanable.dirty.ratio", "0.5"),
        ("min.compaction.lag.ms", "0"),
        ("min.insync.replicas", "1"),
        ("preallocate", "false"),
        ("remote.log.copy.disable", "false"),
        ("remote.log.delete.on.disable", "false"),
        ("remote.storage.enable", "false"),
        ("retention.bytes", "-1"),
        ("retention.ms", "604800000"),
        ("segment.bytes", "1073741824"),
        ("segment.index.bytes", "10485760"),
        ("segment.jitter.ms", "0"),
        ("segment.ms", "604800000"),
        ("unclean.leader.election.enable", "false"),
    ];

    #[test]
    fn every_kafka_4_1_topic_config_is_defined_with_its_default() {
        let names: Vec<&str> =
            TOPIC_CONFIG_DEFS.iter().map(|d| d.name).filter(|n| !n.starts_with("confluent.")).collect();
        let kafka: Vec<&str> = KAFKA_4_1_DEFAULTS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, kafka);
        let base = TopicConfig::default();
        for (name, default) in KAFKA_4_1_DEFAULTS {
            assert_eq!(base.value_of(name).as_deref(), Some(default), "{name}");
            assert!(def_of(name).is_some(), "{name}");
        }
        // Removed in Kafka 4.0 (KIP-724): unknown, as Kafka 4.1 answers it.
        assert_eq!(
            base.with_overrides([("message.downconversion.enable", "true")]).unwrap_err(),
            "Unknown topic config name: message.downconversion.enable"
        );
    }

    #[test]
    fn configs_with_no_effect_are_checked_and_printed_as_kafka_does() {
        let base = TopicConfig::default();
        let c = base
            .with_overrides([
                ("preallocate", " TRUE "),
                ("segment.jitter.ms", "100"),
                ("compression.gzip.level", "9"),
                ("compression.zstd.level", "-5"),
                ("leader.replication.throttled.replicas", "0:1 , 1:2"),
                ("follower.replication.throttled.replicas", " * "),
                ("local.retention.ms", "-2"),
                ("remote.storage.enable", "false"),
                ("unclean.leader.election.enable", "false"),
            ])
            .unwrap();
        for (name, printed) in [
            ("preallocate", "true"),
            ("segment.jitter.ms", "100"),
            ("compression.gzip.level", "9"),
            ("compression.zstd.level", "-5"),
            ("leader.replication.throttled.replicas", "0:1,1:2"),
            ("follower.replication.throttled.replicas", "*"),
            ("local.retention.ms", "-2"),
        ] {
            assert_eq!(c.value_of(name).as_deref(), Some(printed), "{name}");
            assert_eq!(c.overrides[name], printed, "the override is kept as Kafka prints it");
        }
        // Kafka 4.1.1's own messages (its `LogConfig.validate`).
        let refused = |name: &str, value: &str| base.with_overrides([(name, value)]).unwrap_err();
        for (name, value, message) in [
            ("compression.gzip.level", "0", "Invalid value 0 for configuration compression.gzip.level: Value must be between 1 and 9 or equal to -1"),
            ("compression.gzip.level", "x", "Invalid value x for configuration compression.gzip.level: Not a number of type INT"),
            ("compression.lz4.level", "18", "Invalid value 18 for configuration compression.lz4.level: Value must be no more than 17"),
            ("compression.zstd.level", "-131073", "Invalid value -131073 for configuration compression.zstd.level: Value must be at least -131072"),
            ("preallocate", "yes", "Invalid value yes for configuration preallocate: Expected value to be either true or false"),
            ("local.retention.ms", "-3", "Invalid value -3 for configuration local.retention.ms: Value must be at least -2"),
            ("segment.jitter.ms", "-1", "Invalid value -1 for configuration segment.jitter.ms: Value must be at least 0"),
            ("file.delete.delay.ms", "-1", "Invalid value -1 for configuration file.delete.delay.ms: Value must be at least 0"),
            ("message.timestamp.before.max.ms", "-1", "Invalid value -1 for configuration message.timestamp.before.max.ms: Value must be at least 0"),
            ("remote.storage.enable", "maybe", "Invalid value maybe for configuration remote.storage.enable: Expected value to be either true or false"),
            ("compression.type", "brotli", "Invalid value brotli for configuration compression.type: String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"),
            ("leader.replication.throttled.replicas", "0:1, 1:x", "Invalid value [0:1, 1:x] for configuration leader.replication.throttled.replicas: leader.replication.throttled.replicas must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."),
            ("leader.replication.throttled.replicas", "*,0:1", "Invalid value [*, 0:1] for configuration leader.replication.throttled.replicas: leader.replication.throttled.replicas must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."),
            ("remote.storage.enable", "true", REMOTE_STORAGE_DISABLED),
        ] {
            assert_eq!(refused(name, value), message, "{name}={value}");
        }
        assert_eq!(
            base.with_overrides([("leader.replication.throttled.replicas", "0:1,")])
                .unwrap()
                .value_of("leader.replication.throttled.replicas")
                .as_deref(),
            Some("0:1,")
        );
    }

    #[test]
    fn timestamp_bounds_are_kafkas() {
        let now = 1_700_000_000_000;
        let base = TopicConfig::default();
        assert!(!base.timestamp_refused(now, 1), "no lower bound by default");
        assert!(!base.timestamp_refused(now, now + 3_600_000));
        assert!(base.timestamp_refused(now, now + 3_600_001), "one hour ahead at most by default");
        assert!(!base.timestamp_refused(now, -1), "no timestamp");
        let c = base
            .with_overrides([("message.timestamp.before.max.ms", "1000"), ("message.timestamp.after.max.ms", "0")])
            .unwrap();
        assert!(c.timestamp_refused(now, now - 1001) && !c.timestamp_refused(now, now - 1000));
        assert!(c.timestamp_refused(now, now + 1));
        assert_eq!(c.timestamp_bounds(now), (now - 1000, now));
        let log_append = c.with_overrides([("message.timestamp.type", "LogAppendTime")]).unwrap();
        assert!(!log_append.timestamp_refused(now, now + 1), "the broker sets LogAppendTime");
        let unbounded = base.with_overrides([("message.timestamp.after.max.ms", "9223372036854775807")]).unwrap();
        assert!(!unbounded.timestamp_refused(now, i64::MAX));
    }
}
