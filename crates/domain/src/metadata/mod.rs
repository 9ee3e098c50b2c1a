//! The topic catalog: names, ids, partition→shard assignment, config
//! overrides and finalized feature levels ([`features`]). Shard 0 is the
//! controller that changes it ([`controller`]); every shard holds a read-only
//! snapshot, replaced whole on each change.

pub mod controller;
pub mod features;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use sluice_core::config::{DynamicConfigs, TopicConfig};
use sluice_core::constants::{PARTITIONS_PER_TOPIC_MAX, TOPIC_NAME_BYTES_MAX};

/// One topic as every shard sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicMeta {
    pub name: Arc<str>,
    pub id: Uuid,
    /// The shard holding each partition's replica here, by partition index;
    /// [`REMOTE`] for a partition of a cluster with no replica on this broker.
    pub shards: Vec<u16>,
    /// On a cluster, the partitions whose replica here follows another
    /// broker's (the leader's); empty where every replica here leads.
    pub follows: Vec<bool>,
    /// Effective config: broker defaults with the topic's overrides.
    pub config: TopicConfig,
}

/// The shard of a partition this node does not lead (another broker of the cluster does).
pub const REMOTE: u16 = u16::MAX;

impl TopicMeta {
    pub fn partitions(&self) -> i32 {
        self.shards.len() as i32
    }

    /// The shard that leads `partition` here, where clients' work for it
    /// goes; `None` if there is no such partition or another broker leads it
    /// (see [`TopicMeta::is_remote`]).
    pub fn owner(&self, partition: i32) -> Option<usize> {
        self.host(partition).filter(|_| !self.follows(partition))
    }

    /// The shard holding this broker's replica of `partition`, leader or follower.
    pub fn host(&self, partition: i32) -> Option<usize> {
        usize::try_from(partition).ok().and_then(|p| self.shards.get(p)).filter(|s| **s != REMOTE).map(|s| *s as usize)
    }

    /// Whether the replica of `partition` here follows another broker's.
    pub fn follows(&self, partition: i32) -> bool {
        usize::try_from(partition).ok().and_then(|p| self.follows.get(p)) == Some(&true)
    }

    /// The shard that owns `partition` here, or the error a request for it
    /// gets: NOT_LEADER_OR_FOLLOWER where another broker leads it,
    /// UNKNOWN_TOPIC_OR_PARTITION where there is no such partition.
    pub fn locate(&self, partition: i32) -> Result<usize, sluice_protocol::ResponseError> {
        match self.owner(partition) {
            Some(shard) => Ok(shard),
            None if self.is_remote(partition) => Err(sluice_protocol::ResponseError::NotLeaderOrFollower),
            None => Err(sluice_protocol::ResponseError::UnknownTopicOrPartition),
        }
    }

    /// Whether the topic has `partition`, wherever it is led.
    pub fn has_partition(&self, partition: i32) -> bool {
        (0..self.partitions()).contains(&partition)
    }

    /// Whether `partition` exists and another broker of the cluster leads it:
    /// requests for it are NOT_LEADER_OR_FOLLOWER here, not UNKNOWN_TOPIC_OR_PARTITION.
    pub fn is_remote(&self, partition: i32) -> bool {
        self.has_partition(partition) && self.owner(partition).is_none()
    }
}

/// A snapshot of every topic and of the dynamic broker configs (stored in
/// the same file), and of the security state (ACLs, SCRAM users), which the
/// controller changes and publishes the same way but stores in a file of its own.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub topics: BTreeMap<Arc<str>, Arc<TopicMeta>>,
    pub by_id: HashMap<Uuid, Arc<str>>,
    /// Broker configs set at runtime; replaced (a new `Arc`) only when they change.
    pub broker_configs: Arc<DynamicConfigs>,
    /// Finalized feature levels (KIP-584), stored in the same file.
    pub features: features::FeatureLevels,
    /// Changes committed to the catalog file since the data directory was
    /// created: the offset of this node's metadata, which DescribeQuorum
    /// reports as the high watermark and ApiVersions as the finalized
    /// features epoch. Security changes, kept in a file of their own, do not count.
    pub version: u64,
    pub security: Arc<sluice_security::store::SecurityState>,
    /// Client metrics subscriptions (CLIENT_METRICS config resources, KIP-714),
    /// stored in the same file; replaced (a new `Arc`) only when they change.
    pub client_metrics: Arc<crate::telemetry::SubscriptionConfigs>,
}

const CATALOG_MAGIC: &str = "sluice-catalog 1";
/// The scope of a `broker` line holding a cluster-wide default.
const BROKER_DEFAULT: &str = "default";

/// `%XX`-escapes the bytes of `text` that would end a catalog line's field:
/// `%`, control characters, and (in names) space and `=`.
fn escape(text: &str, name: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '%' || c.is_control() || (name && (c == ' ' || c == '=')) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Reverses [`escape`].
fn unescape(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or_else(|| format!("bad escape in {text:?}"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape in {text:?}"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("bad escape in {text:?}"))
}

impl Catalog {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicMeta>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&Arc<TopicMeta>> {
        self.by_id.get(id).and_then(|name| self.topics.get(name))
    }

    pub fn insert(&mut self, topic: TopicMeta) {
        self.by_id.insert(topic.id, topic.name.clone());
        self.topics.insert(topic.name.clone(), Arc::new(topic));
    }

    pub fn remove(&mut self, name: &str) -> Option<Arc<TopicMeta>> {
        let topic = self.topics.remove(name)?;
        self.by_id.remove(&topic.id);
        Some(topic)
    }

    /// Partitions each shard owns.
    pub fn load(&self, shards: usize) -> Vec<usize> {
        let mut load = vec![0usize; shards];
        for topic in self.topics.values() {
            for s in &topic.shards {
                if let Some(l) = load.get_mut(*s as usize) {
                    *l += 1;
                }
            }
        }
        load
    }

    /// Shards for `count` new partitions: each goes to the least-loaded shard.
    pub fn assign(&self, count: i32, shards: usize) -> Vec<u16> {
        let mut load = self.load(shards);
        (0..count)
            .map(|_| {
                let (shard, _) = load.iter().enumerate().min_by_key(|(i, l)| (**l, *i)).expect("at least one shard");
                load[shard] += 1;
                shard as u16
            })
            .collect()
    }

    /// Moves partitions recorded on shards that no longer exist (the broker
    /// restarted with fewer shards) to the least-loaded ones. Returns whether anything moved.
    pub fn reassign_for(&mut self, shards: usize) -> bool {
        let mut moved = false;
        let names: Vec<Arc<str>> = self.topics.keys().cloned().collect();
        for name in names {
            let topic = self.topics[&name].clone();
            // An internal topic's partition `p` belongs on shard `p % shards`, its coordinator's.
            let misplaced = |p: usize, s: u16| {
                s != REMOTE && internal_shard(&name, p, shards).map_or(s as usize >= shards, |want| want != s)
            };
            if !topic.shards.iter().enumerate().any(|(p, s)| misplaced(p, *s)) {
                continue;
            }
            let mut updated = (*topic).clone();
            for p in 0..updated.shards.len() {
                if misplaced(p, updated.shards[p]) {
                    self.topics.insert(name.clone(), Arc::new(updated.clone()));
                    updated.shards[p] = internal_shard(&name, p, shards).unwrap_or_else(|| self.assign(1, shards)[0]);
                }
            }
            self.topics.insert(name.clone(), Arc::new(updated));
            moved = true;
        }
        moved
    }

    /// The catalog file: a text header, one `topic` line per topic, one
    /// `config` line per override, one `broker` line per dynamic broker
    /// config (`broker default NAME=VALUE` for the cluster default, `broker
    /// ID NAME=VALUE` for one broker), and a CRC-32 of everything before it.
    /// A `version N` line and one `feature NAME LEVEL` line per finalized
    /// feature follow the header; files written before features were stored
    /// have neither (version 0, [`features::FeatureLevels::unrecorded`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut text = String::new();
        text.push_str(CATALOG_MAGIC);
        text.push('\n');
        text.push_str(&format!("version {}\n", self.version));
        for (name, level) in self.features.iter() {
            text.push_str(&format!("feature {name} {level}\n"));
        }
        for topic in self.topics.values() {
            let shards: Vec<String> = topic.shards.iter().map(u16::to_string).collect();
            text.push_str(&format!("topic {} {} {}\n", topic.name, topic.id, shards.join(",")));
            for (k, v) in &topic.config.overrides {
                text.push_str(&format!("config {} {}={}\n", topic.name, k, v));
            }
        }
        for (k, v) in &self.broker_configs.cluster_default {
            text.push_str(&format!("broker {BROKER_DEFAULT} {k}={v}\n"));
        }
        for (id, configs) in &self.broker_configs.per_broker {
            for (k, v) in configs {
                text.push_str(&format!("broker {id} {k}={v}\n"));
            }
        }
        for (name, configs) in self.client_metrics.iter() {
            for (k, v) in configs {
                text.push_str(&format!("clientmetrics {} {k}={}\n", escape(name, true), escape(v, false)));
            }
        }
        sluice_storage::file::seal(text.as_bytes())
    }

    /// Reads a catalog file written by [`Catalog::encode`]. `defaults` gives
    /// the topic defaults the stored dynamic broker configs make (the static
    /// ones with the dynamic applied), which topics without an override use.
    pub fn decode(bytes: &[u8], defaults: impl FnOnce(&DynamicConfigs) -> TopicConfig) -> Result<Catalog, String> {
        let body = sluice_storage::file::unseal(bytes).map_err(|e| format!("catalog {e}"))?;
        let body = std::str::from_utf8(body).map_err(|_| "catalog is not UTF-8".to_string())?;
        let mut lines = body.lines();
        if lines.next() != Some(CATALOG_MAGIC) {
            return Err("not a catalog file".into());
        }
        type Entry = (Uuid, Vec<u16>, Vec<(String, String)>);
        let mut topics: BTreeMap<String, Entry> = BTreeMap::new();
        let mut broker_configs = DynamicConfigs::default();
        let mut version = 0;
        let mut levels: Option<Vec<(String, i16)>> = None;
        let mut client_metrics = crate::telemetry::SubscriptionConfigs::new();
        for line in lines {
            if let Some(rest) = line.strip_prefix("clientmetrics ") {
                let bad = || format!("bad client metrics line {line:?}");
                let (name, pair) = rest.split_once(' ').ok_or_else(bad)?;
                let (k, v) = pair.split_once('=').ok_or_else(bad)?;
                client_metrics.entry(unescape(name)?).or_default().insert(k.to_string(), unescape(v)?);
                continue;
            }
            if let Some(n) = line.strip_prefix("version ") {
                version = n.parse().map_err(|_| format!("bad version line {line:?}"))?;
                continue;
            }
            if let Some(rest) = line.strip_prefix("feature ") {
                let bad = || format!("bad feature line {line:?}");
                let (name, level) = rest.split_once(' ').ok_or_else(bad)?;
                let level = level.parse().map_err(|_| bad())?;
                levels.get_or_insert_with(Vec::new).push((name.to_string(), level));
                continue;
            }
            if let Some(rest) = line.strip_prefix("broker ") {
                let bad = || format!("bad broker config line {line:?}");
                let (scope, pair) = rest.split_once(' ').ok_or_else(bad)?;
                let (k, v) = pair.split_once('=').ok_or_else(bad)?;
                let configs = match scope {
                    BROKER_DEFAULT => &mut broker_configs.cluster_default,
                    id => broker_configs.per_broker.entry(id.parse().map_err(|_| bad())?).or_default(),
                };
                configs.insert(k.to_string(), v.to_string());
                continue;
            }
            let mut parts = line.splitn(4, ' ');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some("topic"), Some(name), Some(id), Some(shards)) => {
                    let id = Uuid::parse_str(id).map_err(|e| format!("topic {name}: {e}"))?;
                    let shards = shards
                        .split(',')
                        .map(|s| s.parse::<u16>().map_err(|e| format!("topic {name}: {e}")))
                        .collect::<Result<Vec<_>, _>>()?;
                    topics.insert(name.to_string(), (id, shards, Vec::new()));
                }
                (Some("config"), Some(name), Some(pair), None) => {
                    let (k, v) = pair.split_once('=').ok_or_else(|| format!("bad config line {line:?}"))?;
                    topics
                        .get_mut(name)
                        .ok_or_else(|| format!("config for unknown topic {name}"))?
                        .2
                        .push((k.to_string(), v.to_string()));
                }
                _ => return Err(format!("bad catalog line {line:?}")),
            }
        }
        let defaults = defaults(&broker_configs);
        let features = levels.map_or_else(features::FeatureLevels::unrecorded, features::FeatureLevels::from_levels);
        let mut catalog = Catalog {
            broker_configs: Arc::new(broker_configs),
            features,
            version,
            client_metrics: Arc::new(client_metrics),
            ..Catalog::default()
        };
        for (name, (id, shards, overrides)) in topics {
            // Checked one by one only: a broker default changed since must not make a stored topic unreadable.
            let config = defaults
                .apply_overrides(overrides.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .map_err(|e| format!("topic {name}: {e}"))?;
            catalog.insert(TopicMeta { name: name.into(), id, shards, follows: Vec::new(), config });
        }
        Ok(catalog)
    }
}

/// Kafka's topic name rule: 1-249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
/// Kafka's internal topics: Sluice keeps group offsets and transaction state
/// under these names (see `group` and `txn`).
pub const INTERNAL_TOPICS: [&str; 2] = ["__consumer_offsets", "__transaction_state"];

/// The shard of partition `partition` of an internal topic: `partition %
/// shards`, the shard whose coordinator owns the keys hashing to it. `None`
/// for any other topic.
pub fn internal_shard(topic: &str, partition: usize, shards: usize) -> Option<u16> {
    INTERNAL_TOPICS.contains(&topic).then(|| (partition % shards) as u16)
}

pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return Err(format!(
            "Topic name is illegal, it can't be longer than {TOPIC_NAME_BYTES_MAX} characters, topic name: {name}"
        ));
    }
    if INTERNAL_TOPICS.contains(&name) {
        // Their state lives in `<data-dir>/<name>-<n>/`, where a user topic's
        // partitions would go; clients may not create or write them, as in Kafka.
        return Err(format!("Topic {name} is an internal topic of the broker and cannot be created or written"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Checks a requested partition count against Kafka's rules and Sluice's bound.
pub fn validate_partition_count(count: i32) -> Result<(), String> {
    if count < 1 {
        return Err("Number of partitions must be larger than 0.".into());
    }
    if count > PARTITIONS_PER_TOPIC_MAX {
        return Err(format!("Number of partitions must be at most {PARTITIONS_PER_TOPIC_MAX}."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, shards: Vec<u16>) -> TopicMeta {
        TopicMeta { name: name.into(), id: Uuid::new_v4(), shards, follows: Vec::new(), config: TopicConfig::default() }
    }

    #[test]
    fn assignment_balances_by_partition_count() {
        let mut c = Catalog::default();
        c.insert(topic("a", vec![0, 0, 0]));
        assert_eq!(c.assign(4, 3), vec![1, 2, 1, 2]);
    }

    #[test]
    fn encode_decode_round_trip_and_checksum() {
        let mut c = Catalog::default();
        let mut t = topic("orders", vec![0, 1]);
        t.config = TopicConfig::default().with_overrides([("retention.ms", "1000")]).unwrap();
        c.insert(t.clone());
        let bytes = c.encode();
        let back = Catalog::decode(&bytes, |_| TopicConfig::default()).unwrap();
        assert_eq!(**back.topic("orders").unwrap(), t);
        assert_eq!(back.topic_by_id(&t.id).unwrap().name.as_ref(), "orders");
        assert_eq!(*back.broker_configs, DynamicConfigs::default());
        let mut bad = bytes.clone();
        bad[20] ^= 1;
        assert!(Catalog::decode(&bad, |_| TopicConfig::default()).is_err());
    }

    #[test]
    fn features_and_version_are_stored_and_older_files_get_the_initial_ones() {
        use features::{upgrade_type, FeatureLevels, FeatureUpdate, ELR_VERSION};
        let mut c = Catalog { version: 7, ..Catalog::default() };
        let off = FeatureUpdate { name: ELR_VERSION.into(), level: 0, upgrade_type: upgrade_type::SAFE_DOWNGRADE };
        c.features = features::apply(&c.features, &[off], 0).unwrap();
        let back = Catalog::decode(&c.encode(), |_| TopicConfig::default()).unwrap();
        assert_eq!(back.version, 7);
        assert_eq!(back.features, c.features);
        assert_ne!(back.features, FeatureLevels::default());
        let older = sluice_storage::file::seal(format!("{CATALOG_MAGIC}\ntopic a {} 0\n", Uuid::new_v4()).as_bytes());
        let back = Catalog::decode(&older, |_| TopicConfig::default()).unwrap();
        assert_eq!((back.version, back.features.clone()), (0, FeatureLevels::unrecorded()));
        assert_eq!(back.features.level(features::TRANSACTION_VERSION), 1, "an upgraded data directory keeps level 1");
        // A catalog that stored level 1 keeps it; a new one starts at 2.
        let mut one = Catalog::default();
        assert_eq!(one.features.level(features::TRANSACTION_VERSION), 2);
        one.features = FeatureLevels::from_levels([(features::TRANSACTION_VERSION.to_string(), 1)]);
        let back = Catalog::decode(&one.encode(), |_| TopicConfig::default()).unwrap();
        assert_eq!(back.features.level(features::TRANSACTION_VERSION), 1);
    }

    #[test]
    fn dynamic_broker_configs_are_stored_and_make_the_topic_defaults() {
        let mut c = Catalog::default();
        c.insert(topic("plain", vec![0]));
        let mut own = topic("own", vec![0]);
        own.config = TopicConfig::default().with_overrides([("delete.retention.ms", "1000")]).unwrap();
        c.insert(own);
        let mut dynamic = DynamicConfigs::default();
        dynamic.cluster_default.insert("log.cleaner.delete.retention.ms".into(), "5000".into());
        dynamic.per_broker.entry(3).or_default().insert("log.cleaner.backoff.ms".into(), "10".into());
        c.broker_configs = Arc::new(dynamic.clone());
        let bytes = c.encode();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("broker default log.cleaner.delete.retention.ms=5000\n"), "{text}");
        assert!(text.contains("broker 3 log.cleaner.backoff.ms=10\n"), "{text}");
        let back = Catalog::decode(&bytes, |d| {
            let mut defaults = TopicConfig::default();
            for (k, v) in &d.cluster_default {
                assert_eq!(k, "log.cleaner.delete.retention.ms");
                defaults.set("delete.retention.ms", v).unwrap();
            }
            defaults
        })
        .unwrap();
        assert_eq!(*back.broker_configs, dynamic);
        assert_eq!(back.topic("plain").unwrap().config.delete_retention_ms, 5000, "the dynamic default applies");
        assert_eq!(back.topic("own").unwrap().config.delete_retention_ms, 1000, "an override wins");
        assert!(back.topic("plain").unwrap().config.overrides.is_empty());
    }

    #[test]
    fn client_metrics_subscriptions_are_stored_with_odd_names_and_values() {
        let mut c = Catalog::default();
        let mut subs = crate::telemetry::SubscriptionConfigs::new();
        let configs = [("metrics", "a.,b"), ("match", "client_id=x y%=z")];
        subs.insert("my sub=1%".into(), configs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        c.client_metrics = Arc::new(subs.clone());
        let back = Catalog::decode(&c.encode(), |_| TopicConfig::default()).unwrap();
        assert_eq!(*back.client_metrics, subs);
    }

    #[test]
    fn fewer_shards_reassigns() {
        let mut c = Catalog::default();
        c.insert(topic("a", vec![0, 1, 2, 3]));
        assert!(c.reassign_for(2));
        assert!(c.topic("a").unwrap().shards.iter().all(|s| *s < 2));
        assert!(!c.reassign_for(2));
    }

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders.v1_x-y").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
        assert!(validate_topic_name("__consumer_offsets").is_err());
        assert!(validate_topic_name("__transaction_state").is_err());
        assert!(validate_topic_name("__consumer_offsets_copy").is_ok());
    }
}
