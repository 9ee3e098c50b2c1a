//! Command line, `SLUICE_*` environment variables and an optional Kafka-style
//! properties file, merged into one validated [`BrokerConfig`].
//!
//! Precedence: flag, then environment variable (clap reads both), then the
//! config file, then the built-in default. Broker defaults keep Kafka's names
//! in the file (`num.partitions=3`) and kebab-case as flags (`--num-partitions`).

pub mod cleaner;
pub mod cluster;
pub mod dynamic;
pub mod kafka_keys;
pub mod listeners;
pub mod topic;

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use clap::Args;

use crate::constants::{
    FRAME_BYTES_MAX_DEFAULT, FRAME_BYTES_MIN, INDEX_INTERVAL_BYTES_DEFAULT, MESSAGE_BYTES_MAX_DEFAULT,
    NUM_PARTITIONS_DEFAULT, PARTITIONS_PER_TOPIC_MAX, SEGMENT_BYTES_DEFAULT, SHARDS_MAX,
};
pub use cleaner::CleanerConfig;
pub use cluster::{ClusterConfig, Voter};
pub use dynamic::{BrokerScope, DynamicConfigs, EffectiveConfig};
pub use listeners::{
    AuthorizerConfig, ClientAuth, ListenerConfig, OAuthConfig, Pem, SecurityConfig, SecurityProtocol, TlsConfig,
};
use topic::{ConfigKind, TOPIC_CONFIG_DEFS};
pub use topic::{SubjectNameStrategy, TimestampType, TopicConfig};

/// Flags of `sluice serve`; each also reads a `SLUICE_*` environment variable.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// `listeners`: the Kafka listeners, `NAME://HOST:PORT,...` (a bare
    /// `HOST:PORT` is one PLAINTEXT listener). Every shard binds each with SO_REUSEPORT.
    #[arg(long, env = "SLUICE_LISTEN")]
    pub listen: Option<String>,
    /// Directory holding partitions and the broker's metadata.
    #[arg(long, env = "SLUICE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `advertised.listeners`: `NAME://HOST:PORT,...` given to clients in
    /// Metadata (a bare `HOST:PORT` is the PLAINTEXT listener's); defaults to each bound address.
    #[arg(long, env = "SLUICE_ADVERTISED_LISTENER")]
    pub advertised_listener: Option<String>,
    /// This broker's node id (`node.id`).
    #[arg(long, env = "SLUICE_NODE_ID")]
    pub node_id: Option<i32>,
    /// Executors to run, one per core; defaults to the CPUs the process may run on.
    #[arg(long, env = "SLUICE_SHARDS")]
    pub shards: Option<usize>,
    /// CPUs the shards are pinned to, e.g. `2-7` or `1,3,5`; defaults to the
    /// CPUs the process may run on (its affinity: `taskset`, systemd `CPUAffinity=`).
    #[arg(long, env = "SLUICE_CPUS")]
    pub cpus: Option<String>,
    /// Optional properties file (`key=value` lines, Kafka names).
    #[arg(long, env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// `num.partitions`: partitions of auto-created topics and of CreateTopics asking for -1.
    #[arg(long, env = "SLUICE_NUM_PARTITIONS")]
    pub num_partitions: Option<i32>,
    /// `auto.create.topics.enable`.
    #[arg(long, env = "SLUICE_AUTO_CREATE_TOPICS_ENABLE")]
    pub auto_create_topics_enable: Option<bool>,
    /// `socket.request.max.bytes`: largest request frame.
    #[arg(long, env = "SLUICE_SOCKET_REQUEST_MAX_BYTES")]
    pub socket_request_max_bytes: Option<usize>,
    /// `log.segment.bytes`: default `segment.bytes` of topics.
    #[arg(long, env = "SLUICE_LOG_SEGMENT_BYTES")]
    pub log_segment_bytes: Option<u64>,
    /// `log.index.interval.bytes`: default `index.interval.bytes` of topics.
    #[arg(long, env = "SLUICE_LOG_INDEX_INTERVAL_BYTES")]
    pub log_index_interval_bytes: Option<u64>,
    /// `message.max.bytes`: default `max.message.bytes` of topics.
    #[arg(long, env = "SLUICE_MESSAGE_MAX_BYTES")]
    pub message_max_bytes: Option<u64>,
    /// `log.message.timestamp.type`: CreateTime or LogAppendTime.
    #[arg(long, env = "SLUICE_LOG_MESSAGE_TIMESTAMP_TYPE")]
    pub log_message_timestamp_type: Option<String>,
    /// `log.retention.ms`: default `retention.ms` of topics.
    #[arg(long, env = "SLUICE_LOG_RETENTION_MS")]
    pub log_retention_ms: Option<i64>,
    /// `log.retention.bytes`: default `retention.bytes` of topics.
    #[arg(long, env = "SLUICE_LOG_RETENTION_BYTES")]
    pub log_retention_bytes: Option<i64>,
    /// `log.roll.ms`: default `segment.ms` of topics.
    #[arg(long, env = "SLUICE_LOG_ROLL_MS")]
    pub log_roll_ms: Option<i64>,
    /// `log.retention.check.interval.ms`: how often retention runs.
    #[arg(long, env = "SLUICE_LOG_RETENTION_CHECK_INTERVAL_MS")]
    pub log_retention_check_interval_ms: Option<u64>,
    /// `max.connections`: client connections the broker accepts at once.
    #[arg(long, env = "SLUICE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// `connections.max.idle.ms`: connections with no request for this long are closed.
    #[arg(long, env = "SLUICE_CONNECTIONS_MAX_IDLE_MS")]
    pub connections_max_idle_ms: Option<u64>,
    /// `group.initial.rebalance.delay.ms`: how long a new group waits for more members.
    #[arg(long, env = "SLUICE_GROUP_INITIAL_REBALANCE_DELAY_MS")]
    pub group_initial_rebalance_delay_ms: Option<u64>,
    /// `offsets.retention.minutes`: committed offsets of empty groups expire after this.
    #[arg(long, env = "SLUICE_OFFSETS_RETENTION_MINUTES")]
    pub offsets_retention_minutes: Option<u64>,
    /// `transaction.max.timeout.ms`: the longest `transaction.timeout.ms` a producer may ask for.
    #[arg(long, env = "SLUICE_TRANSACTION_MAX_TIMEOUT_MS")]
    pub transaction_max_timeout_ms: Option<i32>,
    /// `admin.listeners`: HOST:PORT of the admin HTTP listener (metrics,
    /// health, web console); `none` turns it off.
    #[arg(long, env = "SLUICE_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
    /// `schema.registry.listeners`: HOST:PORT of the schema registry's HTTP
    /// listener (Confluent Schema Registry's REST API); `none` turns it off.
    #[arg(long, env = "SLUICE_SCHEMA_REGISTRY_LISTEN")]
    pub schema_registry_listen: Option<String>,
    /// `metrics.partitions.enable`: per-partition series in /metrics (their
    /// number grows with the partitions).
    #[arg(long, env = "SLUICE_METRICS_PARTITIONS_ENABLE")]
    pub metrics_partitions_enable: Option<bool>,
    /// `spin.before.park.us`: microseconds a shard with nothing to do keeps
    /// polling before it sleeps: lower latency for a busy core; 0 (the
    /// default) sleeps at once.
    #[arg(long, env = "SLUICE_SPIN_BEFORE_PARK_US")]
    pub spin_before_park_us: Option<u64>,
    /// `group.consumer.session.timeout.ms`: a consumer-protocol member silent this long is removed.
    #[arg(long, env = "SLUICE_GROUP_CONSUMER_SESSION_TIMEOUT_MS")]
    pub group_consumer_session_timeout_ms: Option<u64>,
    /// `group.consumer.heartbeat.interval.ms`: how often consumer-protocol members heartbeat.
    #[arg(long, env = "SLUICE_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS")]
    pub group_consumer_heartbeat_interval_ms: Option<u64>,
    /// `group.consumer.assignors`: comma-separated server assignors (`uniform`, `range`); the first is the default.
    #[arg(long, env = "SLUICE_GROUP_CONSUMER_ASSIGNORS")]
    pub group_consumer_assignors: Option<String>,
    /// `group.consumer.max.size`: members one consumer group may have.
    #[arg(long, env = "SLUICE_GROUP_CONSUMER_MAX_SIZE")]
    pub group_consumer_max_size: Option<usize>,
    /// `group.consumer.migration.policy`: `disabled`, `upgrade`, `downgrade` or
    /// `bidirectional`: which conversions between classic and consumer groups are allowed.
    #[arg(long, env = "SLUICE_GROUP_CONSUMER_MIGRATION_POLICY")]
    pub group_consumer_migration_policy: Option<String>,
}

/// Consumer groups of KIP-848's protocol (`group.consumer.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupConfig {
    pub session_timeout_ms: u64,
    pub heartbeat_interval_ms: u64,
    /// Assignor names, validated by the group coordinator's parser; never empty.
    pub assignors: Vec<String>,
    pub max_size: usize,
    /// `group.consumer.migration.policy`, lower-cased: one of [`MIGRATION_POLICIES`].
    pub migration_policy: String,
}

/// `group.consumer.migration.policy`'s values (Kafka's `ConsumerGroupMigrationPolicy`).
pub const MIGRATION_POLICIES: [&str; 4] = ["disabled", "upgrade", "downgrade", "bidirectional"];

impl Default for ConsumerGroupConfig {
    /// Kafka's defaults.
    fn default() -> ConsumerGroupConfig {
        use crate::constants::*;
        ConsumerGroupConfig {
            session_timeout_ms: GROUP_CONSUMER_SESSION_TIMEOUT_MS_DEFAULT,
            heartbeat_interval_ms: GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS_DEFAULT,
            assignors: GROUP_CONSUMER_ASSIGNORS_DEFAULT.split(',').map(str::to_string).collect(),
            max_size: GROUP_CONSUMER_MAX_SIZE_DEFAULT,
            migration_policy: "bidirectional".to_string(),
        }
    }
}

impl ConsumerGroupConfig {
    fn resolve(args: &ServeArgs, file: &BTreeMap<String, String>) -> Result<ConsumerGroupConfig, ConfigError> {
        use crate::constants::*;
        let session_timeout_ms = match args.group_consumer_session_timeout_ms {
            Some(v) => v,
            None => from_file(file, "group.consumer.session.timeout.ms")?
                .unwrap_or(GROUP_CONSUMER_SESSION_TIMEOUT_MS_DEFAULT),
        };
        let heartbeat_interval_ms = match args.group_consumer_heartbeat_interval_ms {
            Some(v) => v,
            None => from_file(file, "group.consumer.heartbeat.interval.ms")?
                .unwrap_or(GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS_DEFAULT),
        };
        if !(1..=i32::MAX as u64).contains(&heartbeat_interval_ms) {
            return Err(invalid("group.consumer.heartbeat.interval.ms", "must be between 1 and 2147483647"));
        }
        // Kafka requires the interval to be below the session timeout.
        if session_timeout_ms <= heartbeat_interval_ms || session_timeout_ms > i32::MAX as u64 {
            return Err(invalid(
                "group.consumer.session.timeout.ms",
                "must be greater than group.consumer.heartbeat.interval.ms",
            ));
        }
        let assignors_text = args
            .group_consumer_assignors
            .clone()
            .or_else(|| file.get("group.consumer.assignors").cloned())
            .unwrap_or_else(|| crate::constants::GROUP_CONSUMER_ASSIGNORS_DEFAULT.to_string());
        let assignors: Vec<String> =
            assignors_text.split(',').map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect();
        if assignors.is_empty() {
            return Err(invalid("group.consumer.assignors", "must name at least one assignor"));
        }
        let max_size = match args.group_consumer_max_size {
            Some(v) => v,
            None => from_file(file, "group.consumer.max.size")?.unwrap_or(GROUP_CONSUMER_MAX_SIZE_DEFAULT),
        };
        if !(1..=GROUP_MEMBERS_MAX).contains(&max_size) {
            return Err(invalid("group.consumer.max.size", format!("must be between 1 and {GROUP_MEMBERS_MAX}")));
        }
        // Kafka parses the policy ignoring case.
        let migration_policy = args
            .group_consumer_migration_policy
            .clone()
            .or_else(|| file.get("group.consumer.migration.policy").cloned())
            .unwrap_or_else(|| "bidirectional".to_string())
            .trim()
            .to_ascii_lowercase();
        if !MIGRATION_POLICIES.contains(&migration_policy.as_str()) {
            return Err(invalid(
                "group.consumer.migration.policy",
                format!("must be one of {}", MIGRATION_POLICIES.join(", ")),
            ));
        }
        Ok(ConsumerGroupConfig { session_timeout_ms, heartbeat_interval_ms, assignors, max_size, migration_policy })
    }
}

/// A configuration problem, reported before any shard starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
    #[error("config file line {line}: {reason}")]
    FileLine { line: usize, reason: String },
    #[error("{key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error("{key}: {reason}")]
    Listener { key: String, reason: String },
    #[error(
        "config file keys that are neither Kafka 4.1 broker configs nor Sluice settings (misspelt?): {}",
        keys.join(", ")
    )]
    NotKafka { keys: Vec<String> },
}

/// The broker's validated configuration, shared read-only by every shard.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// The Kafka listeners, in the order configured (at least one).
    pub listeners: Vec<ListenerConfig>,
    /// Authorizer and SASL settings shared by every listener.
    pub security: SecurityConfig,
    /// Kafka broker configs of the config file that Sluice does not use;
    /// logged once at start, as Kafka logs keys it does not know.
    pub ignored_keys: Vec<String>,
    pub data_dir: PathBuf,
    pub node_id: i32,
    pub shards: usize,
    /// CPUs the shards are spread over; `None`: the process's affinity.
    pub cpus: Option<Vec<usize>>,
    pub num_partitions: i32,
    pub auto_create_topics_enable: bool,
    pub socket_request_max_bytes: usize,
    /// Topic config defaults (`log.segment.bytes` and friends).
    pub topic_defaults: TopicConfig,
    /// The broker spellings of topic defaults given at start (flag or file),
    /// by the key they were given under, every spelling of each
    /// (`log.retention.hours` as well as `log.retention.ms`), as given.
    pub static_topic_defaults: BTreeMap<String, String>,
    /// The log cleaner's settings (`log.cleaner.enable` and friends); each
    /// shard runs one cleaner for its own partitions.
    pub cleaner: CleanerConfig,
    pub group_initial_rebalance_delay_ms: u64,
    pub offsets_retention_minutes: u64,
    pub transaction_max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`: transactional ids idle this long with nothing open are forgotten.
    pub transactional_id_expiration_ms: i32,
    /// `producer.id.expiration.ms`: partitions forget producers idle this long with no transaction open.
    pub producer_id_expiration_ms: i32,
    pub log_retention_check_interval_ms: u64,
    pub max_connections: usize,
    pub connections_max_idle_ms: u64,
    /// The admin HTTP listener's address; `None`: turned off.
    pub admin_listen: Option<SocketAddr>,
    /// The schema registry's listener; `None`: turned off.
    pub schema_registry_listen: Option<SocketAddr>,
    pub metrics_partitions_enable: bool,
    /// How long a shard with nothing to do polls before it sleeps, in microseconds.
    pub spin_before_park_us: u64,
    pub consumer_groups: ConsumerGroupConfig,
    /// The node's place in a cluster; `None`: a single node.
    pub cluster: Option<ClusterConfig>,
}

/// `compression.type`, a broker config that Sluice does not use (it stores batches as produced).
const COMPRESSION_TYPE: &str = "compression.type";

/// One of Kafka's other broker spellings of a topic default, read when the
/// first spelling (the topic config's `broker_name`) is absent.
#[derive(Debug, Clone, Copy)]
pub struct BrokerSynonym {
    pub key: &'static str,
    /// The first spelling, which this one stands in for.
    pub of: &'static str,
    /// Milliseconds per unit of this spelling.
    pub unit_ms: i64,
    /// Kafka 4.1's default of this spelling; where one of these has a
    /// default, the first spelling has none.
    pub default: Option<&'static str>,
    pub kind: ConfigKind,
}

/// Kafka's other spellings of topic defaults, in its order of precedence
/// after the first (its `ServerTopicConfigSynonyms`).
pub const BROKER_SYNONYMS: [BrokerSynonym; 5] = [
    BrokerSynonym {
        key: "log.retention.minutes",
        of: "log.retention.ms",
        unit_ms: 60 * 1000,
        default: None,
        kind: ConfigKind::Int,
    },
    BrokerSynonym {
        key: "log.retention.hours",
        of: "log.retention.ms",
        unit_ms: 3600 * 1000,
        default: Some("168"),
        kind: ConfigKind::Int,
    },
    BrokerSynonym {
        key: "log.roll.hours",
        of: "log.roll.ms",
        unit_ms: 3600 * 1000,
        default: Some("168"),
        kind: ConfigKind::Int,
    },
    BrokerSynonym {
        key: "log.roll.jitter.hours",
        of: "log.roll.jitter.ms",
        unit_ms: 3600 * 1000,
        default: Some("0"),
        kind: ConfigKind::Int,
    },
    BrokerSynonym {
        key: "log.flush.scheduler.interval.ms",
        of: "log.flush.interval.ms",
        unit_ms: 1,
        default: Some("9223372036854775807"),
        kind: ConfigKind::Long,
    },
];

/// Every spelling of the broker config `key` stands for, first spelling
/// first (Kafka's `brokerConfigSynonyms`): `log.retention.hours` gives
/// `[log.retention.ms, log.retention.minutes, log.retention.hours]`.
pub fn broker_synonyms(key: &str) -> Vec<&str> {
    let first = BROKER_SYNONYMS.iter().find(|s| s.key == key).map_or(key, |s| s.of);
    std::iter::once(first).chain(BROKER_SYNONYMS.iter().filter(|s| s.of == first).map(|s| s.key)).collect()
}

/// The value of first spelling `first` from another spelling in `file`, as
/// Kafka derives it (`log.retention.hours=168` is `log.retention.ms=604800000`;
/// a negative retention is -1, unlimited).
fn derived_from_synonym(file: &BTreeMap<String, String>, first: &str) -> Result<Option<String>, ConfigError> {
    for synonym in BROKER_SYNONYMS.iter().filter(|s| s.of == first) {
        let Some(text) = file.get(synonym.key) else { continue };
        let count = match synonym.kind {
            ConfigKind::Int => topic::int(synonym.key, text, i32::MIN.into(), i32::MAX.into()),
            _ => topic::long(synonym.key, text, i64::MIN, i64::MAX),
        }
        .map_err(|reason| invalid(synonym.key, reason))?;
        let ms = count.saturating_mul(synonym.unit_ms);
        return Ok(Some(if first == "log.retention.ms" && ms < 0 { -1 } else { ms }.to_string()));
    }
    Ok(None)
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, reason: reason.into() }
}

/// Parses a properties file: `key=value` lines, `#` and `!` comments.
pub fn parse_properties(text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut map = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| ConfigError::FileLine {
            line: i + 1,
            reason: format!("expected key=value, got {line:?}"),
        })?;
        map.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(map)
}

fn from_file<T: std::str::FromStr>(
    file: &BTreeMap<String, String>,
    key: &'static str,
) -> Result<Option<T>, ConfigError> {
    match file.get(key) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| invalid(key, format!("cannot parse {v:?}"))),
    }
}

/// Parses a Linux CPU list (`0-3,6,8-9`) into sorted, distinct CPU numbers.
pub fn parse_cpu_list(text: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("cannot parse CPU list {text:?}");
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => {
                (a.trim().parse::<usize>().map_err(|_| bad())?, b.trim().parse::<usize>().map_err(|_| bad())?)
            }
            None => {
                let n = part.parse::<usize>().map_err(|_| bad())?;
                (n, n)
            }
        };
        if first > last || last >= crate::constants::CPUS_MAX {
            return Err(bad());
        }
        cpus.extend(first..=last);
    }
    cpus.sort_unstable();
    cpus.dedup();
    if cpus.is_empty() {
        return Err(format!("CPU list {text:?} names no CPU"));
    }
    Ok(cpus)
}

/// `HOST:PORT` (an `http://` prefix is allowed), or `none` / empty for no listener.
fn parse_http_listen(key: &'static str, text: &str) -> Result<Option<SocketAddr>, ConfigError> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let address = text.strip_prefix("http://").unwrap_or(text);
    let resolved = address
        .to_socket_addrs()
        .map_err(|e| invalid(key, format!("{text:?}: {e}")))?
        .next()
        .ok_or_else(|| invalid(key, format!("{text:?} resolves to nothing")))?;
    Ok(Some(resolved))
}

impl BrokerConfig {
    /// Merges flags/environment with the optional file and validates the result.
    pub fn resolve(args: &ServeArgs) -> Result<BrokerConfig, ConfigError> {
        let file = match &args.config {
            None => BTreeMap::new(),
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::File { path: path.clone(), source })?;
                parse_properties(&text)?
            }
        };
        const KNOWN: &[&str] = &[
            "listeners",
            "log.dirs",
            "advertised.listeners",
            "node.id",
            "num.partitions",
            "auto.create.topics.enable",
            "socket.request.max.bytes",
            "log.segment.bytes",
            "log.index.interval.bytes",
            "message.max.bytes",
            "log.message.timestamp.type",
            "log.retention.ms",
            "log.retention.bytes",
            "log.roll.ms",
            "log.cleanup.policy",
            "log.cleaner.delete.retention.ms",
            "log.cleaner.min.cleanable.ratio",
            "log.cleaner.min.compaction.lag.ms",
            "log.cleaner.max.compaction.lag.ms",
            "log.retention.check.interval.ms",
            "max.connections",
            "connections.max.idle.ms",
            "group.initial.rebalance.delay.ms",
            "offsets.retention.minutes",
            "transaction.max.timeout.ms",
            "transactional.id.expiration.ms",
            "producer.id.expiration.ms",
            "shards",
            "cpus",
            "admin.listeners",
            "schema.registry.listeners",
            "metrics.partitions.enable",
            "spin.before.park.us",
            "group.consumer.session.timeout.ms",
            "group.consumer.heartbeat.interval.ms",
            "group.consumer.assignors",
            "group.consumer.max.size",
            "group.consumer.migration.policy",
        ];
        let used = |k: &str| {
            KNOWN.contains(&k)
                || cleaner::KEYS.contains(&k)
                || listeners::is_security_key(k)
                || (file.contains_key("controller.quorum.voters") && cluster::KEYS.contains(&k))
                || BROKER_SYNONYMS.iter().any(|s| s.key == k)
                || TOPIC_CONFIG_DEFS.iter().any(|d| d.broker_name == Some(k) && k != COMPRESSION_TYPE)
        };
        let (ignored_keys, not_kafka): (Vec<String>, Vec<String>) =
            file.keys().filter(|k| !used(k)).cloned().partition(|k| kafka_keys::is_kafka_broker_key(k));
        if !not_kafka.is_empty() {
            return Err(ConfigError::NotKafka { keys: not_kafka });
        }

        let listeners_text = args
            .listen
            .clone()
            .or_else(|| file.get("listeners").cloned())
            .unwrap_or_else(|| crate::constants::LISTENERS_DEFAULT.to_string());
        let advertised = args.advertised_listener.clone().or_else(|| file.get("advertised.listeners").cloned());
        let listeners = listeners::resolve_listeners(&listeners_text, advertised.as_deref(), &file)?;
        let security = listeners::resolve_security(&file)?;

        let data_dir = args
            .data_dir
            .clone()
            .or_else(|| file.get("log.dirs").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("./data"));
        let node_id = match args.node_id {
            Some(v) => v,
            None => from_file(&file, "node.id")?.unwrap_or(0),
        };
        if node_id < 0 {
            return Err(invalid("node-id", "must be >= 0"));
        }
        let cluster = cluster::resolve(&listeners_text, node_id, &file)?;
        let cpus = match args.cpus.clone().or_else(|| file.get("cpus").cloned()) {
            None => None,
            Some(text) => Some(parse_cpu_list(&text).map_err(|reason| invalid("cpus", reason))?),
        };
        // available_parallelism honours the process's CPU affinity.
        let allowed = cpus
            .as_ref()
            .map(Vec::len)
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        let shards = match args.shards {
            Some(v) => v,
            None => from_file(&file, "shards")?.unwrap_or(allowed),
        };
        if shards == 0 || shards > SHARDS_MAX {
            return Err(invalid("shards", format!("must be 1..={SHARDS_MAX}")));
        }
        if cpus.is_some() && shards > allowed {
            return Err(invalid("shards", format!("{shards} shards need as many CPUs; --cpus lists {allowed}")));
        }
        let num_partitions = match args.num_partitions {
            Some(v) => v,
            None => from_file(&file, "num.partitions")?.unwrap_or(NUM_PARTITIONS_DEFAULT),
        };
        if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&num_partitions) {
            return Err(invalid("num.partitions", format!("must be 1..={PARTITIONS_PER_TOPIC_MAX}")));
        }
        let auto_create_topics_enable = match args.auto_create_topics_enable {
            Some(v) => v,
            None => from_file(&file, "auto.create.topics.enable")?.unwrap_or(true),
        };
        let socket_request_max_bytes = match args.socket_request_max_bytes {
            Some(v) => v,
            None => from_file(&file, "socket.request.max.bytes")?.unwrap_or(FRAME_BYTES_MAX_DEFAULT),
        };
        if !(FRAME_BYTES_MIN..=crate::constants::REQUEST_BYTES_PER_SHARD_MAX).contains(&socket_request_max_bytes) {
            return Err(invalid(
                "socket.request.max.bytes",
                format!("must be {FRAME_BYTES_MIN}..={}", crate::constants::REQUEST_BYTES_PER_SHARD_MAX),
            ));
        }
        let max_connections = match args.max_connections {
            Some(v) => v,
            None => from_file(&file, "max.connections")?.unwrap_or(crate::constants::CONNECTIONS_MAX_DEFAULT),
        };
        if max_connections == 0 {
            return Err(invalid("max.connections", "must be at least 1"));
        }
        let connections_max_idle_ms = match args.connections_max_idle_ms {
            Some(v) => v,
            None => {
                from_file(&file, "connections.max.idle.ms")?.unwrap_or(crate::constants::CONNECTION_IDLE_MS_DEFAULT)
            }
        };
        if connections_max_idle_ms == 0 {
            return Err(invalid("connections.max.idle.ms", "must be at least 1"));
        }

        let mut topic_defaults = TopicConfig {
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            index_interval_bytes: INDEX_INTERVAL_BYTES_DEFAULT,
            max_message_bytes: MESSAGE_BYTES_MAX_DEFAULT,
            ..TopicConfig::default()
        };
        let mut static_topic_defaults = BTreeMap::new();
        let flags: [(&str, Option<String>); 8] = [
            ("log.retention.ms", args.log_retention_ms.map(|v| v.to_string())),
            ("log.retention.bytes", args.log_retention_bytes.map(|v| v.to_string())),
            ("log.roll.ms", args.log_roll_ms.map(|v| v.to_string())),
            ("log.segment.bytes", args.log_segment_bytes.map(|v| v.to_string())),
            ("log.index.interval.bytes", args.log_index_interval_bytes.map(|v| v.to_string())),
            ("message.max.bytes", args.message_max_bytes.map(|v| v.to_string())),
            ("log.message.timestamp.type", args.log_message_timestamp_type.clone()),
            ("log.cleaner.delete.retention.ms", None),
        ];
        for def in TOPIC_CONFIG_DEFS {
            // Sluice never recompresses: a broker `compression.type` is one of the keys it does not use.
            let Some(broker_key) = def.broker_name.filter(|k| *k != COMPRESSION_TYPE) else { continue };
            let flag = flags.iter().find(|(k, _)| *k == broker_key).and_then(|(_, v)| v.clone());
            let first = flag.or_else(|| file.get(broker_key).cloned());
            for key in broker_synonyms(broker_key) {
                let given = if key == broker_key { first.clone() } else { file.get(key).cloned() };
                if let Some(value) = given {
                    static_topic_defaults.insert(key.to_string(), value);
                }
            }
            let value = match first {
                Some(value) => value,
                None => match derived_from_synonym(&file, broker_key)? {
                    Some(value) => value,
                    None => continue,
                },
            };
            topic_defaults.set(def.name, &value).map_err(|reason| invalid(broker_key, reason))?;
        }
        // Kafka checks the defaults as a whole at start, as it checks each topic's config.
        topic_defaults.validate().map_err(|reason| invalid("log.cleaner.min.compaction.lag.ms", reason))?;
        let cleaner = CleanerConfig::from_file(&file)?;

        let group_initial_rebalance_delay_ms = match args.group_initial_rebalance_delay_ms {
            Some(v) => v,
            None => from_file(&file, "group.initial.rebalance.delay.ms")?
                .unwrap_or(crate::constants::GROUP_INITIAL_REBALANCE_DELAY_MS_DEFAULT),
        };
        let offsets_retention_minutes = match args.offsets_retention_minutes {
            Some(v) => v,
            None => from_file(&file, "offsets.retention.minutes")?
                .unwrap_or(crate::constants::OFFSETS_RETENTION_MINUTES_DEFAULT),
        };
        if offsets_retention_minutes == 0 {
            return Err(invalid("offsets.retention.minutes", "must be at least 1"));
        }
        let transaction_max_timeout_ms = match args.transaction_max_timeout_ms {
            Some(v) => v,
            None => {
                from_file(&file, "transaction.max.timeout.ms")?.unwrap_or(crate::constants::TXN_TIMEOUT_MS_MAX_DEFAULT)
            }
        };
        if transaction_max_timeout_ms <= 0 {
            return Err(invalid("transaction.max.timeout.ms", "must be at least 1"));
        }
        // File keys only; Kafka requires at least 1 ms of each.
        let transactional_id_expiration_ms = from_file(&file, "transactional.id.expiration.ms")?
            .unwrap_or(crate::constants::TXN_ID_EXPIRATION_MS_DEFAULT);
        if transactional_id_expiration_ms < 1 {
            return Err(invalid("transactional.id.expiration.ms", "must be at least 1"));
        }
        let producer_id_expiration_ms = from_file(&file, "producer.id.expiration.ms")?
            .unwrap_or(crate::constants::PRODUCER_ID_EXPIRATION_MS_DEFAULT);
        if producer_id_expiration_ms < 1 {
            return Err(invalid("producer.id.expiration.ms", "must be at least 1"));
        }
        let log_retention_check_interval_ms = match args.log_retention_check_interval_ms {
            Some(v) => v,
            None => from_file(&file, "log.retention.check.interval.ms")?
                .unwrap_or(crate::constants::LOG_RETENTION_CHECK_INTERVAL_MS_DEFAULT),
        };
        if log_retention_check_interval_ms == 0 {
            return Err(invalid("log.retention.check.interval.ms", "must be at least 1"));
        }
        let admin_text = args
            .admin_listen
            .clone()
            .or_else(|| file.get("admin.listeners").cloned())
            .unwrap_or_else(|| crate::constants::ADMIN_LISTEN_DEFAULT.to_string());
        let admin_listen = parse_http_listen("admin.listeners", &admin_text)?;
        let registry_text = args
            .schema_registry_listen
            .clone()
            .or_else(|| file.get("schema.registry.listeners").cloned())
            .unwrap_or_else(|| crate::constants::SCHEMA_REGISTRY_LISTEN_DEFAULT.to_string());
        let schema_registry_listen = parse_http_listen("schema.registry.listeners", &registry_text)?;
        let metrics_partitions_enable = match args.metrics_partitions_enable {
            Some(v) => v,
            None => from_file(&file, "metrics.partitions.enable")?.unwrap_or(false),
        };
        let spin_before_park_us = match args.spin_before_park_us {
            Some(v) => v,
            None => from_file(&file, "spin.before.park.us")?.unwrap_or(0),
        };
        if spin_before_park_us > crate::constants::SPIN_BEFORE_PARK_US_MAX {
            return Err(invalid(
                "spin.before.park.us",
                format!("must be 0..={}", crate::constants::SPIN_BEFORE_PARK_US_MAX),
            ));
        }
        let consumer_groups = ConsumerGroupConfig::resolve(args, &file)?;
        Ok(BrokerConfig {
            consumer_groups,
            cluster,
            admin_listen,
            schema_registry_listen,
            metrics_partitions_enable,
            spin_before_park_us,
            max_connections,
            connections_max_idle_ms,
            log_retention_check_interval_ms,
            group_initial_rebalance_delay_ms,
            offsets_retention_minutes,
            transaction_max_timeout_ms,
            transactional_id_expiration_ms,
            producer_id_expiration_ms,
            listeners,
            security,
            ignored_keys,
            data_dir,
            node_id,
            shards,
            cpus,
            num_partitions,
            auto_create_topics_enable,
            socket_request_max_bytes,
            topic_defaults,
            static_topic_defaults,
            cleaner,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn args() -> ServeArgs {
        ServeArgs {
            listen: None,
            data_dir: None,
            advertised_listener: None,
            node_id: None,
            shards: Some(2),
            cpus: None,
            config: None,
            num_partitions: None,
            auto_create_topics_enable: None,
            socket_request_max_bytes: None,
            log_segment_bytes: None,
            log_index_interval_bytes: None,
            message_max_bytes: None,
            log_message_timestamp_type: None,
            group_initial_rebalance_delay_ms: None,
            offsets_retention_minutes: None,
            transaction_max_timeout_ms: None,
            log_retention_ms: None,
            log_retention_bytes: None,
            log_roll_ms: None,
            log_retention_check_interval_ms: None,
            max_connections: None,
            connections_max_idle_ms: None,
            admin_listen: None,
            schema_registry_listen: None,
            metrics_partitions_enable: None,
            spin_before_park_us: None,
            group_consumer_session_timeout_ms: None,
            group_consumer_heartbeat_interval_ms: None,
            group_consumer_assignors: None,
            group_consumer_max_size: None,
            group_consumer_migration_policy: None,
        }
    }

    #[test]
    fn the_schema_registry_defaults_to_confluents_port_on_localhost_and_can_be_turned_off() {
        let c = BrokerConfig::resolve(&args()).unwrap();
        assert_eq!(c.schema_registry_listen.unwrap().to_string(), "127.0.0.1:8081");
        let c = BrokerConfig::resolve(&ServeArgs { schema_registry_listen: Some("none".into()), ..args() }).unwrap();
        assert_eq!(c.schema_registry_listen, None);
        let bad = BrokerConfig::resolve(&ServeArgs { schema_registry_listen: Some("nowhere".into()), ..args() });
        assert!(bad.unwrap_err().to_string().contains("schema.registry.listeners"));
    }

    #[test]
    fn the_admin_listener_defaults_to_localhost_and_can_be_turned_off() {
        let c = BrokerConfig::resolve(&args()).unwrap();
        assert_eq!(c.admin_listen.unwrap().to_string(), "127.0.0.1:9644");
        assert!(!c.metrics_partitions_enable);
        for off in ["none", "", "NONE"] {
            let c = BrokerConfig::resolve(&ServeArgs { admin_listen: Some(off.into()), ..args() }).unwrap();
            assert_eq!(c.admin_listen, None, "{off:?}");
        }
        let c = BrokerConfig::resolve(&ServeArgs { admin_listen: Some("http://127.0.0.1:0".into()), ..args() });
        assert_eq!(c.unwrap().admin_listen.unwrap().port(), 0);
        assert!(BrokerConfig::resolve(&ServeArgs { admin_listen: Some("nowhere".into()), ..args() }).is_err());
    }

    #[test]
    fn spinning_before_parking_is_off_by_default_and_bounded() {
        assert_eq!(BrokerConfig::resolve(&args()).unwrap().spin_before_park_us, 0);
        let spin = |us: u64| BrokerConfig::resolve(&ServeArgs { spin_before_park_us: Some(us), ..args() });
        assert_eq!(spin(200).unwrap().spin_before_park_us, 200);
        assert_eq!(spin(crate::constants::SPIN_BEFORE_PARK_US_MAX).unwrap().spin_before_park_us, 10_000);
        let refused = spin(crate::constants::SPIN_BEFORE_PARK_US_MAX + 1).unwrap_err().to_string();
        assert!(refused.contains("spin.before.park.us"), "{refused}");
    }

    #[test]
    fn defaults_match_kafka() {
        let c = BrokerConfig::resolve(&args()).unwrap();
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.listeners[0].bind.to_string(), "127.0.0.1:9092");
        assert_eq!(c.listeners[0].protocol, SecurityProtocol::Plaintext);
        assert_eq!(c.num_partitions, 1);
        assert!(c.auto_create_topics_enable);
        assert_eq!(c.socket_request_max_bytes, 100 * 1024 * 1024);
        assert_eq!(c.topic_defaults.segment_bytes, 1 << 30);
        assert_eq!(c.listeners[0].advertised_port, 9092);
        assert!(!c.security.authorizer.enabled);
    }

    #[test]
    fn file_fills_in_and_flags_win() {
        let dir = std::env::temp_dir().join(format!("sluice-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("server.properties");
        std::fs::write(&path, "# comment\nnum.partitions=3\nlog.segment.bytes=2097152\nnode.id=5\n").unwrap();
        let mut a = args();
        a.config = Some(path);
        a.node_id = Some(7);
        let c = BrokerConfig::resolve(&a).unwrap();
        assert_eq!(c.num_partitions, 3);
        assert_eq!(c.topic_defaults.segment_bytes, 2 * 1024 * 1024);
        assert_eq!(c.node_id, 7);
    }

    #[test]
    fn cpu_lists_and_every_documented_file_key() {
        assert_eq!(parse_cpu_list("0-2,5, 7-7").unwrap(), vec![0, 1, 2, 5, 7]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
        assert!(parse_cpu_list("").is_err());
        let dir = std::env::temp_dir().join(format!("sluice-config-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("server.properties");
        let text = "offsets.retention.minutes=5\nmax.connections=7\nconnections.max.idle.ms=1000\n\
                    group.initial.rebalance.delay.ms=0\ntransaction.max.timeout.ms=60000\nlog.retention.ms=1000\n\
                    log.retention.check.interval.ms=500\ncpus=0\n";
        std::fs::write(&path, text).unwrap();
        let mut a = args();
        a.config = Some(path);
        a.shards = None;
        let c = BrokerConfig::resolve(&a).unwrap();
        assert_eq!((c.offsets_retention_minutes, c.max_connections, c.transaction_max_timeout_ms), (5, 7, 60_000));
        assert_eq!((c.shards, c.cpus.clone()), (1, Some(vec![0])));
        a.shards = Some(2);
        assert!(BrokerConfig::resolve(&a).is_err(), "two shards on one listed CPU");
    }

    #[test]
    fn expiration_keys_default_to_kafkas_and_must_be_positive() {
        let c = BrokerConfig::resolve(&args()).unwrap();
        assert_eq!((c.transactional_id_expiration_ms, c.producer_id_expiration_ms), (604_800_000, 86_400_000));
        let dir = std::env::temp_dir().join(format!("sluice-config-expiration-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("server.properties");
        let mut a = args();
        a.config = Some(path.clone());
        std::fs::write(&path, "transactional.id.expiration.ms=2000\nproducer.id.expiration.ms=3000\n").unwrap();
        let c = BrokerConfig::resolve(&a).unwrap();
        assert_eq!((c.transactional_id_expiration_ms, c.producer_id_expiration_ms), (2000, 3000));
        assert!(c.ignored_keys.is_empty(), "{:?}", c.ignored_keys);
        std::fs::write(&path, "producer.id.expiration.ms=0\n").unwrap();
        assert!(BrokerConfig::resolve(&a).is_err());
        std::fs::write(&path, "transactional.id.expiration.ms=-1\n").unwrap();
        assert!(BrokerConfig::resolve(&a).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn compaction_defaults_and_the_cleaner_come_from_the_file() {
        let dir = std::env::temp_dir().join(format!("sluice-config-cleaner-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("server.properties");
        let resolve = |text: &str| {
            std::fs::write(&path, text).unwrap();
            BrokerConfig::resolve(&ServeArgs { config: Some(path.clone()), ..args() })
        };

        let c = resolve("").unwrap();
        assert_eq!(c.cleaner, CleanerConfig::default());
        assert_eq!(c.topic_defaults.delete_retention_ms, 86_400_000);
        assert_eq!(c.topic_defaults.value_of("min.cleanable.dirty.ratio").as_deref(), Some("0.5"));

        let text = "log.cleaner.delete.retention.ms=1000\nlog.cleaner.min.cleanable.ratio=0.25\n\
                    log.cleaner.min.compaction.lag.ms=5\nlog.cleaner.max.compaction.lag.ms=60000\n\
                    log.cleaner.enable=false\nlog.cleaner.threads=2\nlog.cleaner.backoff.ms=100\n\
                    log.cleaner.dedupe.buffer.size=33554432\nlog.cleaner.io.buffer.size=65536\n\
                    log.cleaner.io.buffer.load.factor=0.5\nlog.cleaner.io.max.bytes.per.second=1e6\n";
        let c = resolve(text).unwrap();
        let t = &c.topic_defaults;
        assert_eq!((t.delete_retention_ms, t.min_compaction_lag_ms, t.max_compaction_lag_ms), (1000, 5, 60_000));
        assert_eq!(t.min_cleanable_dirty_ratio.get(), 0.25);
        assert_eq!(t.overrides.len(), 4, "each is reported as set on the broker");
        assert!(!c.cleaner.enable);
        assert_eq!((c.cleaner.threads, c.cleaner.backoff_ms, c.cleaner.io_buffer_size), (2, 100, 65_536));
        assert_eq!(c.cleaner.dedupe_buffer_bytes_per_shard(c.shards), 16 << 20);
        assert_eq!((c.cleaner.io_buffer_load_factor, c.cleaner.io_max_bytes_per_second), (0.5, 1e6));
        assert!(c.ignored_keys.is_empty(), "{:?}", c.ignored_keys);

        let refused = |text: &str| resolve(text).unwrap_err().to_string();
        assert_eq!(
            refused("log.cleaner.min.compaction.lag.ms=10\nlog.cleaner.max.compaction.lag.ms=5\n"),
            "log.cleaner.min.compaction.lag.ms: conflict topic config setting min.compaction.lag.ms (10) > \
             max.compaction.lag.ms (5)"
        );
        assert!(refused("log.cleaner.min.cleanable.ratio=2\n").contains("Value must be no more than 1"));
        assert!(refused("log.cleaner.delete.retention.ms=-1\n").contains("Value must be at least 0"));
        assert!(refused("log.cleaner.threads=0\n").contains("at least 1"));
    }

    #[test]
    fn bad_values_are_refused() {
        let mut a = args();
        a.num_partitions = Some(0);
        assert!(BrokerConfig::resolve(&a).is_err());
        let mut a = args();
        a.log_message_timestamp_type = Some("Sometime".into());
        assert!(BrokerConfig::resolve(&a).is_err());
        assert!(parse_properties("no equals sign").is_err());
    }

    #[test]
    fn kafka_keys_sluice_does_not_use_are_listed_and_others_refused() {
        let dir = std::env::temp_dir().join(format!("sluice-config-kafka-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("server.properties");
        let resolve = |text: &str| {
            std::fs::write(&path, text).unwrap();
            BrokerConfig::resolve(&ServeArgs { config: Some(path.clone()), ..args() })
        };
        let c = resolve(
            "process.roles=broker,controller\nnum.io.threads=8\nlog.retention.hours=24\n\
             compression.type=gzip\nlog.preallocate=true\nmin.insync.replicas=2\nlog.roll.hours=1\n",
        )
        .unwrap();
        assert_eq!(c.ignored_keys, ["compression.type", "num.io.threads", "process.roles"]);
        assert_eq!(c.topic_defaults.retention_ms, 24 * 3_600_000, "log.retention.hours is read");
        assert_eq!(c.topic_defaults.segment_ms, 3_600_000, "log.roll.hours is read");
        assert_eq!(c.topic_defaults.value_of("preallocate").as_deref(), Some("true"));
        assert_eq!(c.topic_defaults.min_insync_replicas, 2);
        let c = resolve("log.retention.hours=168\nlog.retention.ms=1000\nlog.retention.minutes=5\n").unwrap();
        assert_eq!(c.topic_defaults.retention_ms, 1000, "the millisecond key wins");
        let given: Vec<(&str, &str)> = c.static_topic_defaults.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            given,
            [("log.retention.hours", "168"), ("log.retention.minutes", "5"), ("log.retention.ms", "1000")],
            "every spelling given is kept, as given"
        );
        assert_eq!(
            broker_synonyms("log.retention.hours"),
            ["log.retention.ms", "log.retention.minutes", "log.retention.hours"]
        );
        assert_eq!(broker_synonyms("log.segment.bytes"), ["log.segment.bytes"]);
        let c = resolve("log.flush.scheduler.interval.ms=2000\n").unwrap();
        assert_eq!(c.topic_defaults.value_of("flush.ms").as_deref(), Some("2000"), "Kafka's fallback for flush.ms");
        assert_eq!(resolve("log.retention.hours=-1\n").unwrap().topic_defaults.retention_ms, -1);

        let refused = |text: &str| resolve(text).unwrap_err().to_string();
        assert_eq!(
            refused("num.io.threads=8\nzookeeper.connect=localhost:2181\nlog.retention.day=1\n"),
            "config file keys that are neither Kafka 4.1 broker configs nor Sluice settings (misspelt?): \
             log.retention.day, zookeeper.connect"
        );
        assert_eq!(
            refused("log.retention.hours=a week\n"),
            "log.retention.hours: Invalid value a week for configuration log.retention.hours: Not a number of type INT"
        );
        assert!(refused("log.preallocate=yes\n").contains("Expected value to be either true or false"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
