//! The controller, on shard 0: the only writer of the catalog. Each change is
//! validated, persisted (write, fsync, rename, fsync the directory), then
//! applied on every shard before the request that caused it is answered.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

use glommio::sync::Semaphore;
use uuid::Uuid;

use super::{validate_partition_count, validate_topic_name, Catalog, TopicMeta};
use crate::txn::producer_ids::ProducerIdAllocator;
use sluice_core::config::TopicConfig;
use sluice_core::constants::{CATALOG_FILE_BYTES_MAX, PARTITIONS_PER_BROKER_MAX, SECURITY_FILE_BYTES_MAX};
use sluice_protocol::ResponseError;
use sluice_security::store::SecurityState;
use sluice_storage::file::{read_bounded, seal, unseal, write_atomically};

/// A topic to create, as CreateTopics (or auto-creation) asks.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    /// -1 for the broker's `num.partitions`.
    pub num_partitions: i32,
    /// -1 or 1: there is one broker.
    pub replication_factor: i16,
    /// Explicit replica assignment: partition -> broker ids.
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: Vec<(String, Option<String>)>,
}

/// A topic to delete, by name or id.
#[derive(Debug, Clone)]
pub enum TopicRef {
    Name(String),
    Id(Uuid),
}

/// A refused topic operation: Kafka's error code and message.
pub type TopicError = (ResponseError, String);

/// A change to one topic's config overrides.
#[derive(Debug, Clone)]
pub enum ConfigChange {
    /// AlterConfigs: these overrides replace all the topic's overrides.
    Replace(Vec<(String, Option<String>)>),
    /// IncrementalAlterConfigs: (name, operation, value); SET 0, DELETE 1, APPEND 2, SUBTRACT 3.
    Incremental(Vec<(String, i8, Option<String>)>),
}

/// CreatePartitions for one topic: (name, new total count, assignments of the new partitions).
pub type PartitionGrowth = (String, i32, Option<Vec<Vec<i32>>>);

/// Where a committed catalog goes: every shard adopts it before the change
/// that made it is answered.
#[allow(async_fn_in_trait)]
pub trait CatalogSink {
    async fn publish(&self, catalog: Arc<Catalog>);
}

/// A topic that does not exist, as Kafka answers it.
pub fn unknown_topic() -> TopicError {
    (ResponseError::UnknownTopicOrPartition, "This server does not host this topic-partition.".into())
}

/// Shard 0's catalog writer.
pub struct Controller {
    catalog_path: PathBuf,
    /// ACLs and SCRAM credentials (`__sluice/security`).
    security_path: PathBuf,
    node_id: i32,
    shards: usize,
    defaults: TopicConfig,
    num_partitions: i32,
    catalog: RefCell<Arc<Catalog>>,
    producer_ids: ProducerIdAllocator,
    /// One catalog change (or producer id reservation) at a time.
    lock: Semaphore,
}

impl Controller {
    /// Loads the catalog from `data_dir`, moving partitions of shards that no
    /// longer exist, and persists it if anything moved.
    pub async fn load(
        data_dir: PathBuf,
        node_id: i32,
        shards: usize,
        defaults: TopicConfig,
        num_partitions: i32,
    ) -> Result<Controller, String> {
        let meta_dir = data_dir.join("__sluice");
        std::fs::create_dir_all(&meta_dir).map_err(|e| format!("create {}: {e}", meta_dir.display()))?;
        let catalog_path = meta_dir.join("catalog");
        let mut catalog = match read_bounded(&catalog_path, CATALOG_FILE_BYTES_MAX) {
            Ok(None) => Catalog::default(),
            Ok(Some(bytes)) => {
                Catalog::decode(&bytes, &defaults).map_err(|e| format!("{}: {e}", catalog_path.display()))?
            }
            Err(e) => return Err(format!("{}: {e}", catalog_path.display())),
        };
        if catalog.reassign_for(shards) {
            tracing::info!(shards, "partitions of removed shards reassigned");
            write_atomically(&catalog_path, &catalog.encode()).await.map_err(|e| e.to_string())?;
        }
        let security_path = meta_dir.join("security");
        catalog.security = match read_bounded(&security_path, SECURITY_FILE_BYTES_MAX) {
            Ok(None) => Arc::default(),
            Ok(Some(bytes)) => {
                let body = unseal(&bytes).map_err(|e| format!("{}: {e}", security_path.display()))?;
                let text = std::str::from_utf8(body).map_err(|_| format!("{}: not UTF-8", security_path.display()))?;
                Arc::new(SecurityState::decode(text).map_err(|e| format!("{}: {e}", security_path.display()))?)
            }
            Err(e) => return Err(format!("{}: {e}", security_path.display())),
        };
        let producer_ids = ProducerIdAllocator::load(&meta_dir)?;
        Ok(Controller {
            security_path,
            producer_ids,
            catalog_path,
            node_id,
            shards,
            defaults,
            num_partitions,
            catalog: RefCell::new(Arc::new(catalog)),
            lock: Semaphore::new(1),
        })
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    /// CreateTopics (and auto-creation): each topic validated, then all
    /// created in one catalog change.
    pub async fn create_topics(
        &self,
        sink: &impl CatalogSink,
        topics: Vec<TopicSpec>,
        validate_only: bool,
    ) -> Vec<Result<Arc<TopicMeta>, TopicError>> {
        let _permit = self.lock.acquire_permit(1).await;
        self.create(sink, topics, validate_only).await
    }

    /// DeleteTopics, by name or id.
    pub async fn delete_topics(
        &self,
        sink: &impl CatalogSink,
        topics: Vec<TopicRef>,
    ) -> Vec<Result<Arc<TopicMeta>, TopicError>> {
        let _permit = self.lock.acquire_permit(1).await;
        self.delete(sink, topics).await
    }

    /// Reserves (durably, in blocks) and hands out a broker-unique producer id.
    pub async fn allocate_producer_id(&self) -> Result<i64, String> {
        let _permit = self.lock.acquire_permit(1).await;
        self.producer_ids.allocate().await
    }

    /// AlterConfigs and IncrementalAlterConfigs of topics.
    pub async fn alter_configs(
        &self,
        sink: &impl CatalogSink,
        topics: Vec<(String, ConfigChange)>,
        validate_only: bool,
    ) -> Vec<Result<(), TopicError>> {
        let _permit = self.lock.acquire_permit(1).await;
        self.alter(sink, validate_only, topics, |c, t, change| c.alter_config(t, change)).await
    }

    /// CreatePartitions: (topic, new total count, assignments of the new partitions).
    pub async fn create_partitions(
        &self,
        sink: &impl CatalogSink,
        topics: Vec<PartitionGrowth>,
        validate_only: bool,
    ) -> Vec<Result<(), TopicError>> {
        let _permit = self.lock.acquire_permit(1).await;
        let topics = topics.into_iter().map(|(t, n, a)| (t, (n, a))).collect();
        self.alter(sink, validate_only, topics, |c, t, (n, a)| c.add_partitions(t, n, a)).await
    }

    fn validate(&self, catalog: &Catalog, spec: &TopicSpec) -> Result<TopicMeta, TopicError> {
        validate_topic_name(&spec.name).map_err(|m| (ResponseError::InvalidTopicException, m))?;
        if catalog.topic(&spec.name).is_some() {
            return Err((ResponseError::TopicAlreadyExists, format!("Topic '{}' already exists.", spec.name)));
        }
        let count = if !spec.assignments.is_empty() {
            if spec.num_partitions != -1 || spec.replication_factor != -1 {
                return Err((
                    ResponseError::InvalidRequest,
                    "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
                ));
            }
            let mut seen: Vec<i32> = spec.assignments.iter().map(|(p, _)| *p).collect();
            seen.sort_unstable();
            if seen.iter().enumerate().any(|(i, p)| *p != i as i32) {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    "Partitions should be consecutive and start at 0.".into(),
                ));
            }
            if spec.assignments.iter().any(|(_, brokers)| brokers.as_slice() != [self.node_id]) {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    format!("Replica assignments may only name broker {}.", self.node_id),
                ));
            }
            spec.assignments.len() as i32
        } else {
            if spec.replication_factor != -1 && spec.replication_factor != 1 {
                let message = if spec.replication_factor < 1 {
                    "Replication factor must be larger than 0, or -1 to use the default value.".to_string()
                } else {
                    format!("Unable to replicate the partition {} time(s): The target replication factor of {} cannot be reached because only 1 broker(s) are registered.", spec.replication_factor, spec.replication_factor)
                };
                return Err((ResponseError::InvalidReplicationFactor, message));
            }
            if spec.num_partitions == -1 {
                self.num_partitions
            } else {
                spec.num_partitions
            }
        };
        validate_partition_count(count).map_err(|m| (ResponseError::InvalidPartitions, m))?;
        let total: usize = catalog.topics.values().map(|t| t.shards.len()).sum();
        if total + count as usize > PARTITIONS_PER_BROKER_MAX {
            return Err((
                ResponseError::PolicyViolation,
                format!("This broker hosts at most {PARTITIONS_PER_BROKER_MAX} partitions."),
            ));
        }
        let mut overrides = Vec::with_capacity(spec.configs.len());
        for (name, value) in &spec.configs {
            let value = value.as_deref().ok_or_else(|| {
                (ResponseError::InvalidConfig, format!("Null value not supported for topic configs: {name}"))
            })?;
            overrides.push((name.as_str(), value));
        }
        let config = self.defaults.with_overrides(overrides).map_err(|m| (ResponseError::InvalidConfig, m))?;
        Ok(TopicMeta {
            name: spec.name.as_str().into(),
            id: Uuid::new_v4(),
            shards: catalog.assign(count, self.shards),
            config,
        })
    }

    async fn create(
        &self,
        sink: &impl CatalogSink,
        specs: Vec<TopicSpec>,
        validate_only: bool,
    ) -> Vec<Result<Arc<TopicMeta>, TopicError>> {
        let mut next = (*self.catalog()).clone();
        let mut results = Vec::with_capacity(specs.len());
        for spec in &specs {
            match self.validate(&next, spec) {
                Ok(topic) => {
                    let topic = Arc::new(topic);
                    if !validate_only {
                        next.insert((*topic).clone());
                    }
                    results.push(Ok(topic));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if validate_only || results.iter().all(Result::is_err) {
            return results;
        }
        if let Err(e) = self.commit(sink, next).await {
            return specs.iter().map(|_| Err((ResponseError::KafkaStorageError, e.clone()))).collect();
        }
        for (name, t) in specs.iter().map(|s| s.name.as_str()).zip(results.iter()) {
            if t.is_ok() {
                tracing::info!(topic = name, "topic created");
            }
        }
        results
    }

    async fn delete(&self, sink: &impl CatalogSink, refs: Vec<TopicRef>) -> Vec<Result<Arc<TopicMeta>, TopicError>> {
        let mut next = (*self.catalog()).clone();
        let results: Vec<_> = refs
            .iter()
            .map(|r| {
                let name = match r {
                    TopicRef::Name(n) => Some(n.clone()),
                    TopicRef::Id(id) => next.topic_by_id(id).map(|t| t.name.to_string()),
                };
                match name.and_then(|n| next.remove(&n)) {
                    Some(t) => Ok(t),
                    None => Err(match r {
                        TopicRef::Name(_) => (
                            ResponseError::UnknownTopicOrPartition,
                            "This server does not host this topic-partition.".to_string(),
                        ),
                        TopicRef::Id(_) => {
                            (ResponseError::UnknownTopicId, "This server does not host this topic ID.".to_string())
                        }
                    }),
                }
            })
            .collect();
        if results.iter().all(Result::is_err) {
            return results;
        }
        if let Err(e) = self.commit(sink, next).await {
            return refs.iter().map(|_| Err((ResponseError::KafkaStorageError, e.clone()))).collect();
        }
        results
    }

    /// Applies `change` to each named topic of a copy of the catalog, then
    /// commits the copy unless every change failed or this is a dry run.
    async fn alter<C>(
        &self,
        sink: &impl CatalogSink,
        validate_only: bool,
        changes: Vec<(String, C)>,
        apply: impl Fn(&Self, &TopicMeta, C) -> Result<TopicMeta, TopicError>,
    ) -> Vec<Result<(), TopicError>> {
        let mut next = (*self.catalog()).clone();
        let mut results = Vec::with_capacity(changes.len());
        for (name, change) in changes {
            let Some(topic) = next.topic(&name).cloned() else {
                results.push(Err(unknown_topic()));
                continue;
            };
            match apply(self, &topic, change) {
                Ok(updated) => {
                    next.insert(updated);
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if validate_only || results.iter().all(Result::is_err) {
            return results;
        }
        if let Err(e) = self.commit(sink, next).await {
            return results.iter().map(|_| Err((ResponseError::KafkaStorageError, e.clone()))).collect();
        }
        results
    }

    fn alter_config(&self, topic: &TopicMeta, change: ConfigChange) -> Result<TopicMeta, TopicError> {
        let invalid = |m: String| (ResponseError::InvalidConfig, m);
        let mut overrides = match &change {
            ConfigChange::Replace(_) => std::collections::BTreeMap::new(),
            ConfigChange::Incremental(_) => topic.config.overrides.clone(),
        };
        match change {
            ConfigChange::Replace(configs) => {
                for (name, value) in configs {
                    let value = value.ok_or_else(|| invalid(format!("Null value not supported for : {name}")))?;
                    overrides.insert(name, value);
                }
            }
            ConfigChange::Incremental(ops) => {
                for (name, op, value) in ops {
                    match op {
                        0 => {
                            let value =
                                value.ok_or_else(|| invalid(format!("Null value not supported for : {name}")))?;
                            overrides.insert(name, value);
                        }
                        1 => {
                            overrides.remove(&name);
                        }
                        2 | 3 if name == "cleanup.policy" => {
                            let current =
                                overrides.get(&name).cloned().unwrap_or_else(|| topic.config.cleanup_policy.clone());
                            // Empty items are dropped, as Kafka does: an empty policy plus `compact` is `compact`.
                            let parts = |text: &str| -> Vec<String> {
                                text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
                            };
                            let mut items = parts(&current);
                            for v in parts(&value.unwrap_or_default()) {
                                if op == 2 && !items.contains(&v) {
                                    items.push(v);
                                } else if op == 3 {
                                    items.retain(|i| *i != v);
                                }
                            }
                            overrides.insert(name, items.join(","));
                        }
                        2 | 3 => {
                            return Err(invalid(format!(
                                "Config value append/subtract is not allowed for config key: {name}"
                            )))
                        }
                        _ => return Err((ResponseError::InvalidRequest, format!("Unknown config operation {op}"))),
                    }
                }
            }
        }
        let config =
            self.defaults.with_overrides(overrides.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(invalid)?;
        Ok(TopicMeta { config, ..topic.clone() })
    }

    fn add_partitions(
        &self,
        topic: &TopicMeta,
        count: i32,
        assignments: Option<Vec<Vec<i32>>>,
    ) -> Result<TopicMeta, TopicError> {
        let current = topic.partitions();
        if count <= current {
            let message = if count == current {
                format!("Topic already has {current} partitions.")
            } else {
                format!("Topic currently has {current} partitions, which is higher than the requested {count}.")
            };
            return Err((ResponseError::InvalidPartitions, message));
        }
        validate_partition_count(count).map_err(|m| (ResponseError::InvalidPartitions, m))?;
        if let Some(assignments) = &assignments {
            if assignments.len() != (count - current) as usize {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "Increasing the number of partitions by {} but {} assignments provided.",
                        count - current,
                        assignments.len()
                    ),
                ));
            }
            if assignments.iter().any(|a| a.as_slice() != [self.node_id]) {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    format!("Replica assignments may only name broker {}.", self.node_id),
                ));
            }
        }
        let catalog = self.catalog();
        let total: usize = catalog.topics.values().map(|t| t.shards.len()).sum();
        if total + (count - current) as usize > PARTITIONS_PER_BROKER_MAX {
            return Err((
                ResponseError::PolicyViolation,
                format!("This broker hosts at most {PARTITIONS_PER_BROKER_MAX} partitions."),
            ));
        }
        let mut updated = topic.clone();
        updated.shards.extend(catalog.assign(count - current, self.shards));
        Ok(updated)
    }

    /// Changes the security state (ACLs, SCRAM credentials): `change` edits a
    /// copy and says whether anything changed; a changed copy is persisted,
    /// then every shard adopts it before this returns.
    pub async fn update_security<R>(
        &self,
        sink: &impl CatalogSink,
        change: impl FnOnce(&mut SecurityState) -> (R, bool),
    ) -> Result<R, String> {
        let _permit = self.lock.acquire_permit(1).await;
        let current = self.catalog();
        let mut security = (*current.security).clone();
        let (answer, changed) = change(&mut security);
        if !changed {
            return Ok(answer);
        }
        write_atomically(&self.security_path, &seal(security.encode().as_bytes())).await.map_err(|e| e.to_string())?;
        let mut next = (*current).clone();
        next.security = Arc::new(security);
        let next = Arc::new(next);
        *self.catalog.borrow_mut() = next.clone();
        sink.publish(next).await;
        Ok(answer)
    }

    /// Persists `next`, then has every shard adopt it.
    async fn commit(&self, sink: &impl CatalogSink, next: Catalog) -> Result<(), String> {
        write_atomically(&self.catalog_path, &next.encode()).await.map_err(|e| e.to_string())?;
        let next = Arc::new(next);
        *self.catalog.borrow_mut() = next.clone();
        sink.publish(next).await;
        Ok(())
    }
}
