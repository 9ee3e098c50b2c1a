//! The topic catalog: names, ids, partition→shard assignment and config
//! overrides. Shard 0 is the controller that changes it ([`controller`]);
//! every shard holds a read-only snapshot, replaced whole on each change.

pub mod controller;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use sluice_core::config::TopicConfig;
use sluice_core::constants::{PARTITIONS_PER_TOPIC_MAX, TOPIC_NAME_BYTES_MAX};

/// One topic as every shard sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicMeta {
    pub name: Arc<str>,
    pub id: Uuid,
    /// Owning shard of each partition, by partition index.
    pub shards: Vec<u16>,
    /// Effective config: broker defaults with the topic's overrides.
    pub config: TopicConfig,
}

impl TopicMeta {
    pub fn partitions(&self) -> i32 {
        self.shards.len() as i32
    }
    pub fn owner(&self, partition: i32) -> Option<usize> {
        usize::try_from(partition).ok().and_then(|p| self.shards.get(p)).map(|s| *s as usize)
    }
}

/// A snapshot of every topic, and of the security state (ACLs, SCRAM users),
/// which the controller changes and publishes the same way but stores in a
/// file of its own.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub topics: BTreeMap<Arc<str>, Arc<TopicMeta>>,
    pub by_id: HashMap<Uuid, Arc<str>>,
    pub security: Arc<sluice_security::store::SecurityState>,
}

const CATALOG_MAGIC: &str = "sluice-catalog 1";

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
            if topic.shards.iter().all(|s| (*s as usize) < shards) {
                continue;
            }
            let mut updated = (*topic).clone();
            for p in 0..updated.shards.len() {
                if updated.shards[p] as usize >= shards {
                    self.topics.insert(name.clone(), Arc::new(updated.clone()));
                    updated.shards[p] = self.assign(1, shards)[0];
                }
            }
            self.topics.insert(name.clone(), Arc::new(updated));
            moved = true;
        }
        moved
    }

    /// The catalog file: a text header, one `topic` line per topic, one
    /// `config` line per override, and a CRC-32 of everything before it.
    pub fn encode(&self) -> Vec<u8> {
        let mut text = String::new();
        text.push_str(CATALOG_MAGIC);
        text.push('\n');
        for topic in self.topics.values() {
            let shards: Vec<String> = topic.shards.iter().map(u16::to_string).collect();
            text.push_str(&format!("topic {} {} {}\n", topic.name, topic.id, shards.join(",")));
            for (k, v) in &topic.config.overrides {
                text.push_str(&format!("config {} {}={}\n", topic.name, k, v));
            }
        }
        sluice_storage::file::seal(text.as_bytes())
    }

    /// Reads a catalog file written by [`Catalog::encode`].
    pub fn decode(bytes: &[u8], defaults: &TopicConfig) -> Result<Catalog, String> {
        let body = sluice_storage::file::unseal(bytes).map_err(|e| format!("catalog {e}"))?;
        let body = std::str::from_utf8(body).map_err(|_| "catalog is not UTF-8".to_string())?;
        let mut lines = body.lines();
        if lines.next() != Some(CATALOG_MAGIC) {
            return Err("not a catalog file".into());
        }
        type Entry = (Uuid, Vec<u16>, Vec<(String, String)>);
        let mut topics: BTreeMap<String, Entry> = BTreeMap::new();
        for line in lines {
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
        let mut catalog = Catalog::default();
        for (name, (id, shards, overrides)) in topics {
            // Checked one by one only: a broker default changed since must not make a stored topic unreadable.
            let config = defaults
                .apply_overrides(overrides.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .map_err(|e| format!("topic {name}: {e}"))?;
            catalog.insert(TopicMeta { name: name.into(), id, shards, config });
        }
        Ok(catalog)
    }
}

/// Kafka's topic name rule: 1-249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
/// Kafka's internal topics: Sluice keeps group offsets and transaction state
/// under these names (see `group` and `txn`).
pub const INTERNAL_TOPICS: [&str; 2] = ["__consumer_offsets", "__transaction_state"];

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
        TopicMeta { name: name.into(), id: Uuid::new_v4(), shards, config: TopicConfig::default() }
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
        let back = Catalog::decode(&bytes, &TopicConfig::default()).unwrap();
        assert_eq!(**back.topic("orders").unwrap(), t);
        assert_eq!(back.topic_by_id(&t.id).unwrap().name.as_ref(), "orders");
        let mut bad = bytes.clone();
        bad[20] ^= 1;
        assert!(Catalog::decode(&bad, &TopicConfig::default()).is_err());
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
