//! Broker configs changed at runtime, as Kafka's dynamic broker configs
//! (`kafka-configs.sh --entity-type brokers --entity-default`, or
//! `--entity-name <node.id>` for one broker): the log cleaner's settings
//! Kafka reconfigures at runtime and the topic defaults (`log.retention.ms`,
//! `log.cleaner.delete.retention.ms`, ...), which change the effective value
//! of every topic without an override of its own.
//!
//! The controller stores them with the topic catalog. Precedence, as in
//! Kafka: the broker's own dynamic value, then the cluster-wide dynamic
//! default, then the static config (flag, environment, file), then the
//! built-in default. Each value is checked by the same code as the static
//! file's ([`CleanerConfig::set`], [`TopicConfig::set_as`]); refusals carry
//! Kafka's messages.

use std::collections::BTreeMap;

use super::cleaner::{self, CleanerConfig};
use super::topic::{ConfigDef, ConfigKind, TopicConfig, TOPIC_CONFIG_DEFS};
use super::BrokerConfig;

/// The cleaner configs of Kafka's `LogCleaner.ReconfigurableConfigs` (its
/// `message.max.bytes` is a topic default, below). `log.cleaner.enable` is
/// not among them: Kafka, too, reads it only at start.
pub const CLEANER_KEYS: [&str; 6] = [
    cleaner::THREADS,
    cleaner::IO_MAX_BYTES_PER_SECOND,
    cleaner::DEDUPE_BUFFER_SIZE,
    cleaner::IO_BUFFER_SIZE,
    cleaner::IO_BUFFER_LOAD_FACTOR,
    cleaner::BACKOFF_MS,
];

/// The topic config whose broker default `name` is (`log.retention.ms`:
/// `retention.ms`), if it is one. Kafka's `DynamicLogConfig` makes every
/// such default dynamic.
pub fn topic_default_of(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIG_DEFS.iter().find(|def| def.broker_name == Some(name))
}

/// Whether Sluice changes broker config `name` at runtime.
pub fn is_dynamic(name: &str) -> bool {
    CLEANER_KEYS.contains(&name) || topic_default_of(name).is_some()
}

/// The DescribeConfigs type of a dynamic broker config.
pub fn kind_of(name: &str) -> Option<ConfigKind> {
    topic_default_of(name).map(|def| def.kind).or_else(|| CleanerConfig::kind_of(name))
}

/// Kafka's refusal of configs it does not change at runtime (its
/// `DynamicBrokerConfig.validateConfigs`; INVALID_REQUEST). Kafka prints
/// a Scala `Set`; the names are sorted here.
pub fn not_dynamic(names: &[&str]) -> String {
    let mut names = names.to_vec();
    names.sort_unstable();
    names.dedup();
    format!("Cannot update these configs dynamically: Set({})", names.join(", "))
}

/// Kafka's message when a reconfiguration check fails (its
/// `DynamicBrokerConfig.processReconfiguration` wraps the check's
/// `ConfigException` in `new ConfigException("Invalid dynamic configuration", e)`).
pub fn reconfiguration_refused(reason: &str) -> String {
    format!(
        "Invalid value org.apache.kafka.common.config.ConfigException: {reason} for configuration Invalid dynamic configuration"
    )
}

/// Kafka's `LogCleaner.validateReconfiguration`: the number of cleaner
/// threads changes by at most a factor of two at a time.
pub fn check_threads_change(current: usize, next: usize) -> Result<(), String> {
    if next < 1 {
        return Err(reconfiguration_refused(cleaner::THREADS_AT_LEAST_ONE));
    }
    if next < current / 2 {
        return Err(reconfiguration_refused(&format!(
            "Log cleaner threads cannot be reduced to less than half the current value {current}"
        )));
    }
    if next > current.saturating_mul(2) {
        return Err(reconfiguration_refused(&format!(
            "Log cleaner threads cannot be increased to more than double the current value {current}"
        )));
    }
    Ok(())
}

/// Where a dynamic broker config applies: Kafka's BROKER resource named ""
/// (every broker) or by a node id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerScope {
    ClusterDefault,
    Broker(i32),
}

/// The dynamic broker configs as stored: Kafka's names, values as given
/// (trimmed, a list as Kafka prints it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynamicConfigs {
    /// `--entity-default`: every broker.
    pub cluster_default: BTreeMap<String, String>,
    /// `--entity-name <id>`: one broker, by node id.
    pub per_broker: BTreeMap<i32, BTreeMap<String, String>>,
}

impl DynamicConfigs {
    /// The configs set on `scope` (empty when none).
    pub fn of(&self, scope: BrokerScope) -> BTreeMap<String, String> {
        match scope {
            BrokerScope::ClusterDefault => self.cluster_default.clone(),
            BrokerScope::Broker(id) => self.per_broker.get(&id).cloned().unwrap_or_default(),
        }
    }

    /// The value of `name` set on `scope`, if any.
    pub fn get(&self, scope: BrokerScope, name: &str) -> Option<&str> {
        let map = match scope {
            BrokerScope::ClusterDefault => Some(&self.cluster_default),
            BrokerScope::Broker(id) => self.per_broker.get(&id),
        };
        map.and_then(|m| m.get(name)).map(String::as_str)
    }

    /// Replaces the configs of `scope`.
    pub fn replace(&mut self, scope: BrokerScope, configs: BTreeMap<String, String>) {
        match scope {
            BrokerScope::ClusterDefault => self.cluster_default = configs,
            BrokerScope::Broker(id) if configs.is_empty() => {
                self.per_broker.remove(&id);
            }
            BrokerScope::Broker(id) => {
                self.per_broker.insert(id, configs);
            }
        }
    }
}

/// The value a dynamic config is stored as: trimmed, and a list as Kafka
/// prints it (`compact, delete` is `compact,delete`). A stored value holds
/// no spaces or line breaks, which the catalog's line format relies on.
pub fn stored_value(name: &str, value: &str) -> String {
    if let Some(def) = topic_default_of(name) {
        let mut scratch = TopicConfig::default();
        if scratch.set(def.name, value).is_ok() {
            if let Some(stored) = scratch.overrides.get(def.name) {
                return stored.clone();
            }
        }
    }
    value.trim().to_string()
}

/// A stored dynamic config that does not apply: scope, name, value, why.
type Ignored = (BrokerScope, String, String, String);

/// What the dynamic configs make of the static ones for this broker.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveConfig {
    /// The topic defaults: what a topic without an override of its own uses.
    pub topic_defaults: TopicConfig,
    pub cleaner: CleanerConfig,
}

impl EffectiveConfig {
    /// Applies one dynamic config, checked on its own as the static file's are.
    fn apply(&mut self, name: &str, value: &str) -> Result<(), String> {
        if CLEANER_KEYS.contains(&name) {
            self.cleaner.set(name, value)
        } else if let Some(def) = topic_default_of(name) {
            self.topic_defaults.set_as(def.name, value, name)
        } else {
            Err(not_dynamic(&[name]))
        }
    }

    /// The checks between configs the static file also passes, with Kafka's
    /// messages for a dynamic change.
    fn check(&self) -> Result<(), String> {
        match self.cleaner.check() {
            Ok(()) => {}
            Err((cleaner::THREADS, reason)) => return Err(reconfiguration_refused(&reason)),
            // Kafka's `KafkaConfig` checks this with Scala's `require`.
            Err((_, reason)) => return Err(format!("requirement failed: {reason}")),
        }
        self.topic_defaults.validate()
    }
}

impl BrokerConfig {
    /// The static config, before any dynamic config.
    pub fn static_effective(&self) -> EffectiveConfig {
        EffectiveConfig { topic_defaults: self.topic_defaults.clone(), cleaner: self.cleaner.clone() }
    }

    /// This broker's config once the dynamic configs of `scope` are
    /// `configs` (the other scope's as stored): for a change, each of
    /// `configs` and the whole checked, refused with the first problem
    /// (Kafka's message). A stored value that is ignored already (see
    /// [`BrokerConfig::with_stored_dynamic`]) stays ignored.
    pub fn with_dynamic_change(
        &self,
        stored: &DynamicConfigs,
        scope: BrokerScope,
        configs: &BTreeMap<String, String>,
    ) -> Result<EffectiveConfig, String> {
        let layers = [BrokerScope::ClusterDefault, BrokerScope::Broker(self.node_id)];
        let (current, ignored) = self.apply_stored(stored);
        if !layers.contains(&scope) {
            // Another broker's: checked on their own, and nothing here changes.
            let mut scratch = self.static_effective();
            for (name, value) in configs {
                scratch.apply(name, value)?;
            }
            scratch.check()?;
            return Ok(current);
        }
        let mut effective = self.static_effective();
        for layer in layers {
            if layer == scope {
                for (name, value) in configs {
                    effective.apply(name, value)?;
                }
            } else {
                for (name, value) in stored.of(layer) {
                    if !ignored.iter().any(|(s, n, _, _)| *s == layer && *n == name) {
                        effective.apply(&name, &value)?;
                    }
                }
            }
        }
        effective.check()?;
        Ok(effective)
    }

    /// This broker's config with the stored dynamic configs applied. A value
    /// that no longer applies (the static config changed since it was set)
    /// is skipped rather than refused, as Kafka ignores it; returns what was
    /// skipped and why.
    pub fn with_stored_dynamic(&self, dynamic: &DynamicConfigs) -> (EffectiveConfig, Vec<String>) {
        let (effective, ignored) = self.apply_stored(dynamic);
        let skipped = ignored.into_iter().map(|(_, name, value, reason)| format!("{name}={value}: {reason}")).collect();
        (effective, skipped)
    }

    /// The stored configs applied in order of precedence: each that passes
    /// on its own, if together they pass the checks between configs (as
    /// they did when stored); else each kept only if it passes with those
    /// before it. The others: (scope, name, value, why).
    fn apply_stored(&self, dynamic: &DynamicConfigs) -> (EffectiveConfig, Vec<Ignored>) {
        let stored: Vec<(BrokerScope, String, String)> =
            [BrokerScope::ClusterDefault, BrokerScope::Broker(self.node_id)]
                .into_iter()
                .flat_map(|scope| dynamic.of(scope).into_iter().map(move |(name, value)| (scope, name, value)))
                .collect();
        let mut effective = self.static_effective();
        let mut ignored = Vec::new();
        for (scope, name, value) in &stored {
            if let Err(reason) = effective.apply(name, value) {
                ignored.push((*scope, name.clone(), value.clone(), reason));
            }
        }
        if effective.check().is_ok() {
            return (effective, ignored);
        }
        let mut effective = self.static_effective();
        let mut ignored = Vec::new();
        for (scope, name, value) in stored {
            let mut next = effective.clone();
            match next.apply(&name, &value).and_then(|()| next.check()) {
                Ok(()) => effective = next,
                Err(reason) => ignored.push((scope, name, value, reason)),
            }
        }
        (effective, ignored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker() -> BrokerConfig {
        let mut file = BTreeMap::new();
        file.insert("log.cleaner.backoff.ms".to_string(), "100".to_string());
        BrokerConfig {
            node_id: 3,
            cleaner: CleanerConfig::from_file(&file).unwrap(),
            topic_defaults: TopicConfig::default().with_overrides([("retention.ms", "1000")]).unwrap(),
            ..BrokerConfig::resolve(&crate::config::tests::args()).unwrap()
        }
    }

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The effective config of `b` with `d` as stored, every value applied.
    fn strictly(b: &BrokerConfig, d: &DynamicConfigs) -> EffectiveConfig {
        let (effective, skipped) = b.with_stored_dynamic(d);
        assert!(skipped.is_empty(), "{skipped:?}");
        effective
    }

    #[test]
    fn dynamic_keys_are_kafkas_cleaner_and_topic_defaults() {
        for key in CLEANER_KEYS {
            assert!(is_dynamic(key) && kind_of(key).is_some(), "{key}");
        }
        for broker_name in TOPIC_CONFIG_DEFS.iter().filter_map(|def| def.broker_name) {
            assert!(is_dynamic(broker_name), "{broker_name}");
        }
        for key in ["log.cleaner.enable", "log.dirs", "num.partitions", "node.id", "retention.ms", "no.such"] {
            assert!(!is_dynamic(key), "{key}");
        }
        assert_eq!(not_dynamic(&["log.dirs"]), "Cannot update these configs dynamically: Set(log.dirs)");
        assert_eq!(
            not_dynamic(&["node.id", "log.dirs"]),
            "Cannot update these configs dynamically: Set(log.dirs, node.id)"
        );
        assert_eq!(stored_value("log.cleanup.policy", " compact, delete "), "compact,delete");
        assert_eq!(stored_value("log.cleaner.backoff.ms", " 10 "), "10");
    }

    #[test]
    fn precedence_is_broker_then_cluster_default_then_static_then_default() {
        let b = broker();
        let mut d = DynamicConfigs::default();
        let e = strictly(&b, &d);
        assert_eq!((e.cleaner.backoff_ms, e.topic_defaults.retention_ms), (100, 1000));
        d.replace(
            BrokerScope::ClusterDefault,
            configs(&[("log.cleaner.backoff.ms", "200"), ("log.cleaner.delete.retention.ms", "5000")]),
        );
        let e = strictly(&b, &d);
        assert_eq!((e.cleaner.backoff_ms, e.topic_defaults.delete_retention_ms), (200, 5000));
        d.replace(BrokerScope::Broker(3), configs(&[("log.cleaner.backoff.ms", "300"), ("log.retention.ms", "7")]));
        // Another broker's values do not apply here.
        d.replace(BrokerScope::Broker(4), configs(&[("log.cleaner.backoff.ms", "400")]));
        let e = strictly(&b, &d);
        assert_eq!((e.cleaner.backoff_ms, e.topic_defaults.retention_ms), (300, 7));
        assert_eq!(e.topic_defaults.delete_retention_ms, 5000);
        assert_eq!(d.get(BrokerScope::Broker(3), "log.retention.ms"), Some("7"));
        d.replace(BrokerScope::Broker(3), BTreeMap::new());
        assert!(!d.per_broker.contains_key(&3));
        assert_eq!(strictly(&b, &d).cleaner.backoff_ms, 200);
    }

    #[test]
    fn refusals_carry_kafkas_messages() {
        let b = broker();
        let refused = |pairs: &[(&str, &str)]| {
            b.with_dynamic_change(&DynamicConfigs::default(), BrokerScope::ClusterDefault, &configs(pairs)).unwrap_err()
        };
        assert_eq!(
            refused(&[("log.cleaner.backoff.ms", "-1")]),
            "Invalid value -1 for configuration log.cleaner.backoff.ms: Value must be at least 0"
        );
        assert_eq!(
            refused(&[("log.retention.ms", "soon")]),
            "Invalid value soon for configuration log.retention.ms: Not a number of type LONG"
        );
        assert_eq!(
            refused(&[("log.cleaner.min.cleanable.ratio", "2")]),
            "Invalid value 2.0 for configuration log.cleaner.min.cleanable.ratio: Value must be no more than 1"
        );
        assert_eq!(
            refused(&[("log.cleanup.policy", "shred")]),
            "Invalid value shred for configuration log.cleanup.policy: String must be one of: compact, delete"
        );
        assert_eq!(
            refused(&[("log.cleaner.dedupe.buffer.size", "1048576")]),
            "requirement failed: log.cleaner.dedupe.buffer.size must be at least 1MB per cleaner thread."
        );
        assert_eq!(
            refused(&[("log.cleaner.threads", "0")]),
            "Invalid value org.apache.kafka.common.config.ConfigException: Log cleaner threads should be at least 1 \
             for configuration Invalid dynamic configuration"
        );
        assert_eq!(
            refused(&[("log.cleaner.min.compaction.lag.ms", "10"), ("log.cleaner.max.compaction.lag.ms", "5")]),
            "conflict topic config setting min.compaction.lag.ms (10) > max.compaction.lag.ms (5)"
        );
        assert_eq!(refused(&[("log.dirs", "/tmp")]), "Cannot update these configs dynamically: Set(log.dirs)");
        // A change is checked with what the other scope holds.
        let mut d = DynamicConfigs::default();
        d.replace(BrokerScope::Broker(3), configs(&[("log.cleaner.min.compaction.lag.ms", "10")]));
        let lag = configs(&[("log.cleaner.max.compaction.lag.ms", "5")]);
        assert!(b.with_dynamic_change(&d, BrokerScope::ClusterDefault, &lag).unwrap_err().contains("conflict"));
        let fine = configs(&[("log.cleaner.max.compaction.lag.ms", "50")]);
        let e = b.with_dynamic_change(&d, BrokerScope::ClusterDefault, &fine).unwrap();
        assert_eq!((e.topic_defaults.min_compaction_lag_ms, e.topic_defaults.max_compaction_lag_ms), (10, 50));
        assert!(check_threads_change(1, 2).is_ok());
        assert_eq!(
            check_threads_change(1, 3).unwrap_err(),
            "Invalid value org.apache.kafka.common.config.ConfigException: Log cleaner threads cannot be increased \
             to more than double the current value 1 for configuration Invalid dynamic configuration"
        );
        assert!(check_threads_change(8, 3).unwrap_err().contains("reduced to less than half the current value 8"));
    }

    #[test]
    fn stored_values_that_no_longer_apply_are_skipped() {
        let b = broker();
        let mut d = DynamicConfigs::default();
        d.replace(
            BrokerScope::ClusterDefault,
            configs(&[("log.cleaner.backoff.ms", "-1"), ("log.cleaner.delete.retention.ms", "5000")]),
        );
        let (e, skipped) = b.with_stored_dynamic(&d);
        assert_eq!((e.cleaner.backoff_ms, e.topic_defaults.delete_retention_ms), (100, 5000));
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].starts_with("log.cleaner.backoff.ms=-1: "), "{skipped:?}");

        // Values set together are read back together, whatever order they are applied in.
        let b =
            BrokerConfig { topic_defaults: TopicConfig { min_compaction_lag_ms: 50, ..TopicConfig::default() }, ..b };
        let lags = configs(&[("log.cleaner.max.compaction.lag.ms", "10"), ("log.cleaner.min.compaction.lag.ms", "5")]);
        let e = b.with_dynamic_change(&DynamicConfigs::default(), BrokerScope::ClusterDefault, &lags).unwrap();
        assert_eq!((e.topic_defaults.min_compaction_lag_ms, e.topic_defaults.max_compaction_lag_ms), (5, 10));
        let mut d = DynamicConfigs::default();
        d.replace(BrokerScope::ClusterDefault, lags);
        assert_eq!(strictly(&b, &d), e);
        // A stored value that conflicts with a since-changed static one is the one left out.
        d.replace(BrokerScope::ClusterDefault, configs(&[("log.cleaner.max.compaction.lag.ms", "10")]));
        let (e, skipped) = b.with_stored_dynamic(&d);
        assert_eq!((e.topic_defaults.min_compaction_lag_ms, e.topic_defaults.max_compaction_lag_ms), (50, i64::MAX));
        assert_eq!(skipped.len(), 1, "{skipped:?}");
    }
}
