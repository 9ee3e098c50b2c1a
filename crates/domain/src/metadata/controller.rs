//! The controller, on shard 0: the only writer of the catalog. Each change is
//! validated, persisted (write, fsync, rename, fsync the directory), then
//! applied on every shard before the request that caused it is answered.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

use glommio::sync::Semaphore;
use uuid::Uuid;

use super::features::{self, FeatureUpdate};
use super::{validate_partition_count, validate_topic_name, Catalog, TopicMeta};
use crate::txn::producer_ids::ProducerIdAllocator;
use sluice_core::config::dynamic::{self, BrokerScope};
use sluice_core::config::topic::{self, ConfigKind};
use sluice_core::config::{BrokerConfig, DynamicConfigs, EffectiveConfig, TopicConfig};
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

/// APPEND (or SUBTRACT) of the items of `value` to (from) the list
/// `current`. Empty items are dropped, as Kafka does: an empty list plus
/// `compact` is `compact`.
fn edit_list(current: &str, value: &str, append: bool) -> String {
    let parts = |text: &str| -> Vec<String> {
        text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
    };
    let mut items = parts(current);
    for v in parts(value) {
        if append && !items.contains(&v) {
            items.push(v);
        } else if !append {
            items.retain(|i| *i != v);
        }
    }
    items.join(",")
}

/// The configs client metrics subscription `name` has after `change`,
/// checked as Kafka checks them (empty: the subscription goes).
fn client_metrics_change(
    subscriptions: &crate::telemetry::SubscriptionConfigs,
    name: &str,
    change: ConfigChange,
) -> Result<std::collections::BTreeMap<String, String>, TopicError> {
    use crate::telemetry::subscription;
    if name.is_empty() {
        return Err((ResponseError::InvalidRequest, "Subscription name can't be empty".into()));
    }
    let configs = match change {
        ConfigChange::Replace(configs) => {
            let mut out = std::collections::BTreeMap::new();
            for (k, v) in configs {
                let v =
                    v.ok_or_else(|| (ResponseError::InvalidRequest, format!("Null value not supported for : {k}")))?;
                out.insert(k, v);
            }
            out
        }
        ConfigChange::Incremental(ops) => {
            let mut configs = subscriptions.get(name).cloned().unwrap_or_default();
            for (key, op, value) in ops {
                if !subscription::CONFIG_NAMES.contains(&key.as_str()) {
                    return Err((
                        ResponseError::InvalidRequest,
                        format!("Unknown client metrics configuration: {key}"),
                    ));
                }
                let list = key != subscription::INTERVAL_MS_CONFIG;
                match (op, value) {
                    (1, _) => {
                        configs.remove(&key);
                    }
                    (0, Some(v)) => {
                        configs.insert(key, v);
                    }
                    (2 | 3, Some(v)) if list => {
                        let current = configs.get(&key).cloned().unwrap_or_default();
                        configs.insert(key, edit_list(&current, &v, op == 2));
                    }
                    (2 | 3, Some(_)) => {
                        let verb = if op == 2 { "append" } else { "subtract" };
                        return Err((
                            ResponseError::InvalidConfig,
                            format!("Config value {verb} is not allowed for config key: {key}"),
                        ));
                    }
                    (0..=3, None) => {
                        return Err((ResponseError::InvalidRequest, format!("Null value not supported for : {key}")))
                    }
                    _ => return Err((ResponseError::InvalidRequest, format!("Unknown operations type {op}"))),
                }
            }
            configs
        }
    };
    subscription::parse(name, &configs)?;
    if !subscriptions.contains_key(name)
        && !configs.is_empty()
        && subscriptions.len() >= sluice_core::constants::CLIENT_METRICS_SUBSCRIPTIONS_MAX
    {
        return Err((
            ResponseError::PolicyViolation,
            format!(
                "This broker stores at most {} client metrics subscriptions.",
                sluice_core::constants::CLIENT_METRICS_SUBSCRIPTIONS_MAX
            ),
        ));
    }
    Ok(configs)
}

/// A topic that does not exist, as Kafka answers it.
pub fn unknown_topic() -> TopicError {
    (ResponseError::UnknownTopicOrPartition, "This server does not host this topic-partition.".into())
}

/// A topic as a cluster's metadata log holds it, for [`Controller::adopt`].
#[derive(Debug, Clone)]
pub struct AdoptedTopic {
    pub name: String,
    pub id: Uuid,
    /// Whether this node has a replica of each partition, by index.
    pub hosted: Vec<bool>,
    /// Whether that replica follows another broker's, by index.
    pub follows: Vec<bool>,
    /// The topic's config overrides.
    pub configs: Vec<(String, String)>,
}

/// Shard 0's catalog writer.
pub struct Controller {
    catalog_path: PathBuf,
    /// ACLs and SCRAM credentials (`__sluice/security`).
    security_path: PathBuf,
    node_id: i32,
    shards: usize,
    num_partitions: i32,
    /// The static config, which the dynamic broker configs of the catalog change.
    config: Arc<BrokerConfig>,
    /// What the catalog's dynamic broker configs make of `config`: the topic
    /// defaults new and altered topics start from, and the cleaner's settings.
    effective: RefCell<EffectiveConfig>,
    catalog: RefCell<Arc<Catalog>>,
    producer_ids: ProducerIdAllocator,
    /// One catalog change (or producer id reservation) at a time.
    lock: Semaphore,
}

impl Controller {
    /// Loads the catalog from the data dir of `config`, moving partitions of
    /// shards that no longer exist, and persists it if anything moved.
    pub async fn load(config: Arc<BrokerConfig>) -> Result<Controller, String> {
        let meta_dir = config.data_dir.join("__sluice");
        std::fs::create_dir_all(&meta_dir).map_err(|e| format!("create {}: {e}", meta_dir.display()))?;
        let catalog_path = meta_dir.join("catalog");
        let mut effective = config.static_effective();
        let mut catalog = match read_bounded(&catalog_path, CATALOG_FILE_BYTES_MAX) {
            Ok(None) => Catalog::default(),
            Ok(Some(bytes)) => {
                let defaults = |dynamic: &DynamicConfigs| {
                    let (applied, skipped) = config.with_stored_dynamic(dynamic);
                    for reason in skipped {
                        tracing::error!(config = %reason, "dynamic broker config ignored: it no longer applies");
                    }
                    effective = applied;
                    effective.topic_defaults.clone()
                };
                Catalog::decode(&bytes, defaults).map_err(|e| format!("{}: {e}", catalog_path.display()))?
            }
            Err(e) => return Err(format!("{}: {e}", catalog_path.display())),
        };
        let shards = config.shards;
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
            node_id: config.node_id,
            shards,
            num_partitions: config.num_partitions,
            config,
            effective: RefCell::new(effective),
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

    /// AlterConfigs and IncrementalAlterConfigs of broker resources: the
    /// cluster-wide default or this broker. Each change is checked as Kafka's
    /// `ConfigAdminManager` and `DynamicBrokerConfig` check it; the accepted
    /// ones are stored with the catalog in one change, which also gives every
    /// topic its new effective config (defaults changed under its overrides).
    pub async fn alter_broker_configs(
        &self,
        sink: &impl CatalogSink,
        changes: Vec<(BrokerScope, ConfigChange)>,
        validate_only: bool,
    ) -> Vec<Result<(), TopicError>> {
        let _permit = self.lock.acquire_permit(1).await;
        let current = self.catalog();
        let mut dynamic = (*current.broker_configs).clone();
        let mut effective = self.effective.borrow().clone();
        let mut results = Vec::with_capacity(changes.len());
        for (scope, change) in changes {
            match self.alter_broker_config(&dynamic, &effective, scope, change) {
                Ok((next_dynamic, next_effective)) => {
                    if !validate_only {
                        dynamic = next_dynamic;
                        effective = next_effective;
                    }
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if validate_only || dynamic == *current.broker_configs {
            return results;
        }
        let mut next = (*current).clone();
        for topic in current.topics.values() {
            let overrides = topic.config.overrides.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            // Each override was accepted on its own before; the defaults do not change that.
            match effective.topic_defaults.apply_overrides(overrides) {
                Ok(config) if config != topic.config => next.insert(TopicMeta { config, ..(**topic).clone() }),
                Ok(_) => {}
                Err(e) => tracing::error!(topic = %topic.name, error = %e, "topic keeps its config"),
            }
        }
        next.broker_configs = Arc::new(dynamic);
        let stored = next.broker_configs.clone();
        if let Err(e) = self.commit(sink, next).await {
            return results.iter().map(|_| Err((ResponseError::KafkaStorageError, e.clone()))).collect();
        }
        *self.effective.borrow_mut() = effective;
        tracing::info!(
            cluster_default = ?stored.cluster_default,
            broker = ?stored.per_broker.get(&self.node_id),
            "dynamic broker configs changed"
        );
        results
    }

    /// AlterConfigs and IncrementalAlterConfigs of CLIENT_METRICS resources
    /// (client metrics subscriptions, KIP-714): each resulting set of configs
    /// is checked as Kafka's `ClientMetricsConfigs.validate` checks it; a
    /// subscription left with no config is removed. The accepted changes are
    /// stored with the catalog in one change.
    pub async fn alter_client_metrics(
        &self,
        sink: &impl CatalogSink,
        changes: Vec<(String, ConfigChange)>,
        validate_only: bool,
    ) -> Vec<Result<(), TopicError>> {
        let _permit = self.lock.acquire_permit(1).await;
        let current = self.catalog();
        let mut subscriptions = (*current.client_metrics).clone();
        let mut results = Vec::with_capacity(changes.len());
        for (name, change) in changes {
            match client_metrics_change(&subscriptions, &name, change) {
                Ok(configs) => {
                    if !validate_only {
                        if configs.is_empty() {
                            subscriptions.remove(&name);
                        } else {
                            subscriptions.insert(name, configs);
                        }
                    }
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if validate_only || subscriptions == *current.client_metrics {
            return results;
        }
        let mut next = (*current).clone();
        next.client_metrics = Arc::new(subscriptions);
        if let Err(e) = self.commit(sink, next).await {
            return results.iter().map(|_| Err((ResponseError::KafkaStorageError, e.clone()))).collect();
        }
        tracing::info!(subscriptions = self.catalog().client_metrics.len(), "client metrics subscriptions changed");
        results
    }

    /// One broker resource's change applied to `dynamic`: the configs it
    /// then holds, and the effective config they make.
    fn alter_broker_config(
        &self,
        dynamic: &DynamicConfigs,
        effective: &EffectiveConfig,
        scope: BrokerScope,
        change: ConfigChange,
    ) -> Result<(DynamicConfigs, EffectiveConfig), TopicError> {
        let invalid_request = |m: String| (ResponseError::InvalidRequest, m);
        if let BrokerScope::Broker(id) = scope {
            if id != self.node_id {
                return Err(invalid_request(format!(
                    "Unexpected broker id, expected {}, but received {id}",
                    self.node_id
                )));
            }
        }
        let names: Vec<&str> = match &change {
            ConfigChange::Replace(configs) => configs.iter().map(|(n, _)| n.as_str()).collect(),
            ConfigChange::Incremental(ops) => ops.iter().map(|(n, _, _)| n.as_str()).collect(),
        };
        let mut seen = std::collections::BTreeSet::new();
        if !names.iter().all(|n| seen.insert(*n)) {
            return Err(invalid_request("Error due to duplicate config keys".into()));
        }
        let nulls: Vec<&str> = match &change {
            ConfigChange::Replace(configs) => {
                configs.iter().filter(|(_, v)| v.is_none()).map(|(n, _)| n.as_str()).collect()
            }
            ConfigChange::Incremental(ops) => {
                ops.iter().filter(|(_, op, v)| *op != 1 && v.is_none()).map(|(n, _, _)| n.as_str()).collect()
            }
        };
        if !nulls.is_empty() {
            return Err(invalid_request(format!("Null value not supported for : {}", nulls.join(", "))));
        }
        let mut configs = match change {
            ConfigChange::Replace(configs) => configs.into_iter().map(|(n, v)| (n, v.unwrap_or_default())).collect(),
            ConfigChange::Incremental(ops) => {
                if let Some((_, op, _)) = ops.iter().find(|(_, op, _)| !(0..=3).contains(op)) {
                    return Err(invalid_request(format!("Unknown operations type {op}")));
                }
                let mut configs = dynamic.of(scope);
                for (name, op, value) in ops {
                    let value = value.unwrap_or_default();
                    match op {
                        0 => {
                            configs.insert(name, value);
                        }
                        1 => {
                            configs.remove(&name);
                        }
                        _ if dynamic::topic_default_of(&name).is_some_and(|d| d.kind == ConfigKind::List) => {
                            // As Kafka: the list set here, else the built-in default.
                            let default = dynamic::topic_default_of(&name)
                                .and_then(|d| TopicConfig::default().value_of(d.name))
                                .unwrap_or_default();
                            let current = configs.get(&name).cloned().unwrap_or(default);
                            configs.insert(name, edit_list(&current, &value, op == 2));
                        }
                        _ => {
                            let verb = if op == 2 { "append" } else { "subtract" };
                            return Err((
                                ResponseError::InvalidConfig,
                                format!("Config value {verb} is not allowed for config key: {name}"),
                            ));
                        }
                    }
                }
                configs
            }
        };
        let fixed: Vec<&str> = configs.keys().map(String::as_str).filter(|n| !dynamic::is_dynamic(n)).collect();
        if !fixed.is_empty() {
            return Err(invalid_request(dynamic::not_dynamic(&fixed)));
        }
        for (name, value) in configs.iter_mut() {
            *value = dynamic::stored_value(name, value);
        }
        let next = self.config.with_dynamic_change(dynamic, scope, &configs).map_err(invalid_request)?;
        dynamic::check_threads_change(effective.cleaner.threads, next.cleaner.threads).map_err(invalid_request)?;
        let mut stored = dynamic.clone();
        stored.replace(scope, configs);
        Ok((stored, next))
    }

    fn validate(&self, catalog: &Catalog, spec: &TopicSpec) -> Result<TopicMeta, TopicError> {
        validate_topic_name(&spec.name).map_err(|m| (ResponseError::InvalidTopicException, m))?;
        if catalog.topic(&spec.name).is_some() {
            return Err((ResponseError::TopicAlreadyExists, format!("Topic '{}' already exists.", spec.name)));
        }
        let count = if !spec.assignments.is_empty() {
            // Kafka's controller's checks (`ReplicationControlManager.createTopic`), in its order.
            let unset = |field: &str| {
                let message = format!("A manual partition assignment was specified, but {field} was not set to -1.");
                Err((ResponseError::InvalidRequest, message))
            };
            if spec.replication_factor != -1 {
                return unset("replication factor");
            }
            if spec.num_partitions != -1 {
                return unset("numPartitions");
            }
            let mut partitions = std::collections::BTreeSet::new();
            let mut replicas = None;
            for (partition, brokers) in &spec.assignments {
                if !partitions.insert(*partition) {
                    return Err((
                        ResponseError::InvalidReplicaAssignment,
                        format!("Found multiple manual partition assignments for partition {partition}"),
                    ));
                }
                self.check_replicas(brokers, replicas)?;
                replicas = Some(brokers.len());
            }
            if partitions.iter().enumerate().any(|(i, p)| *p != i as i32) {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    "partitions should be a consecutive 0-based integer sequence".into(),
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
        let defaults = &self.effective.borrow().topic_defaults;
        let config = defaults.with_overrides(overrides).map_err(|m| (ResponseError::InvalidConfig, m))?;
        Ok(TopicMeta {
            name: spec.name.as_str().into(),
            id: Uuid::new_v4(),
            shards: catalog.assign(count, self.shards),
            follows: Vec::new(),
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
        let previews = self.preview(changes, apply);
        let mut next = (*self.catalog()).clone();
        let mut results = Vec::with_capacity(previews.len());
        for preview in previews {
            results.push(preview.map(|updated| next.insert(updated)));
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
                        // As Kafka: APPEND and SUBTRACT edit the LIST configs only.
                        2 | 3 if topic::def_of(&name).is_some_and(|d| d.kind == ConfigKind::List) => {
                            let current = match overrides.get(&name) {
                                Some(v) => v.clone(),
                                None => topic.config.value_of(&name).unwrap_or_default(),
                            };
                            overrides.insert(name, edit_list(&current, &value.unwrap_or_default(), op == 2));
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
        let defaults = &self.effective.borrow().topic_defaults;
        let config =
            defaults.with_overrides(overrides.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(invalid)?;
        Ok(TopicMeta { config, ..topic.clone() })
    }

    fn add_partitions(
        &self,
        topic: &TopicMeta,
        count: i32,
        assignments: Option<Vec<Vec<i32>>>,
    ) -> Result<TopicMeta, TopicError> {
        // Kafka's controller's checks (`ReplicationControlManager.createPartitions`).
        let current = topic.partitions();
        if count <= current {
            let message = if count == current {
                format!("Topic already has {current} partition(s).")
            } else {
                format!(
                    "The topic {} currently has {current} partition(s); {count} would not be an increase.",
                    topic.name
                )
            };
            return Err((ResponseError::InvalidPartitions, message));
        }
        validate_partition_count(count).map_err(|m| (ResponseError::InvalidPartitions, m))?;
        if let Some(assignments) = &assignments {
            let additional = count - current;
            if assignments.len() != additional as usize {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
                        assignments.len()
                    ),
                ));
            }
            // Every partition has one replica, this node.
            for brokers in assignments {
                self.check_replicas(brokers, Some(1))?;
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

    /// One partition's replicas in a manual assignment, checked as Kafka's
    /// `validateManualPartitionAssignment` does; this node is the only broker
    /// registered. `replicas` is the count the earlier partitions have.
    fn check_replicas(&self, brokers: &[i32], replicas: Option<usize>) -> Result<(), TopicError> {
        let refuse = |message: String| Err((ResponseError::InvalidReplicaAssignment, message));
        if brokers.is_empty() {
            return refuse("The manual partition assignment includes an empty replica list.".into());
        }
        let mut sorted = brokers.to_vec();
        sorted.sort_unstable();
        for (i, id) in sorted.iter().enumerate() {
            if *id != self.node_id {
                return refuse(format!(
                    "The manual partition assignment includes broker {id}, but no such broker is registered."
                ));
            }
            if i > 0 && sorted[i - 1] == *id {
                return refuse(format!("The manual partition assignment includes the broker {id} more than once."));
            }
        }
        match replicas {
            Some(r) if r != brokers.len() => refuse(format!(
                "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {r} replica(s).",
                brokers.len()
            )),
            _ => Ok(()),
        }
    }

    /// UpdateFeatures: every update applied or none (Kafka's rules, in
    /// [`features::apply`]), persisted and adopted by every shard before this
    /// returns; nothing is written for a dry run or when no level changes.
    pub async fn update_features(
        &self,
        sink: &impl CatalogSink,
        updates: Vec<FeatureUpdate>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let _permit = self.lock.acquire_permit(1).await;
        let current = self.catalog();
        let levels = features::apply(&current.features, &updates, self.node_id)
            .map_err(|message| (ResponseError::InvalidUpdateVersion, message))?;
        if validate_only || levels == current.features {
            return Ok(());
        }
        let mut next = (*current).clone();
        next.features = levels;
        self.commit(sink, next).await.map_err(|e| (ResponseError::KafkaStorageError, e))?;
        tracing::info!(features = ?updates, "feature levels changed");
        Ok(())
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

    /// A cluster node's catalog follows the metadata log: `topics` is every
    /// topic the log holds, with the partitions this node leads marked by
    /// `led` (each given a local shard, the least loaded) and the others
    /// [`crate::metadata::REMOTE`], and with their config overrides. The
    /// topics of `removed` that are not in `topics` are removed (only those:
    /// a topic the log does not name is not deleted for that alone). Nothing
    /// is written when nothing changed.
    pub async fn adopt(
        &self,
        sink: &impl CatalogSink,
        topics: Vec<AdoptedTopic>,
        removed: &[String],
    ) -> Result<(), String> {
        let _permit = self.lock.acquire_permit(1).await;
        let current = self.catalog();
        let mut next = (*current).clone();
        let mut changed = false;
        for name in removed {
            if topics.iter().any(|t| t.name == *name) {
                continue;
            }
            if next.remove(name).is_some() {
                tracing::info!(topic = %name, "topic deleted by the cluster");
                changed = true;
            }
        }
        for topic in topics {
            let existing = next.topic(&topic.name).cloned();
            let mut shards: Vec<u16> = match &existing {
                Some(e) if e.id == topic.id => e.shards.clone(),
                _ => Vec::new(),
            };
            let configs: std::collections::BTreeMap<String, String> = topic.configs.iter().cloned().collect();
            let follows = if topic.follows.contains(&true) { topic.follows.clone() } else { Vec::new() };
            let mut moved = existing
                .as_ref()
                .is_none_or(|e| e.id != topic.id || e.config.overrides != configs || e.follows != follows);
            shards.resize(topic.hosted.len(), crate::metadata::REMOTE);
            for (p, hosted) in topic.hosted.iter().enumerate() {
                let local = shards[p] != crate::metadata::REMOTE;
                if *hosted && !local {
                    shards[p] = crate::metadata::internal_shard(&topic.name, p, self.shards)
                        .unwrap_or_else(|| next.assign(1, self.shards)[0]);
                    moved = true;
                } else if !*hosted && local {
                    shards[p] = crate::metadata::REMOTE;
                    moved = true;
                }
            }
            if !moved {
                continue;
            }
            let overrides: Vec<(&str, &str)> = topic.configs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let config = self
                .effective
                .borrow()
                .topic_defaults
                .with_overrides(overrides)
                .map_err(|e| format!("topic {}: {e}", topic.name))?;
            if existing.is_none() {
                tracing::info!(topic = %topic.name, "topic created by the cluster");
            }
            if existing.as_ref().is_some_and(|e| e.id != topic.id) {
                next.remove(&topic.name);
            }
            next.insert(TopicMeta { name: topic.name.as_str().into(), id: topic.id, shards, follows, config });
            changed = true;
        }
        if !changed {
            return Ok(());
        }
        self.commit(sink, next).await
    }

    /// Validates topics to create without creating them: what a cluster
    /// node checks before it proposes them to the metadata quorum.
    pub async fn check_topics(&self, topics: Vec<TopicSpec>) -> Vec<Result<Arc<TopicMeta>, TopicError>> {
        let _permit = self.lock.acquire_permit(1).await;
        let catalog = self.catalog();
        topics.iter().map(|spec| self.validate(&catalog, spec).map(Arc::new)).collect()
    }

    /// Topic config changes checked and applied to a copy, nothing stored:
    /// what a cluster node proposes to the metadata quorum.
    pub async fn preview_configs(&self, topics: Vec<(String, ConfigChange)>) -> Vec<Result<TopicMeta, TopicError>> {
        let _permit = self.lock.acquire_permit(1).await;
        self.preview(topics, |c, t, change| c.alter_config(t, change))
    }

    /// New partition counts checked, nothing stored (the cluster places the
    /// new partitions itself).
    pub async fn preview_partitions(&self, topics: Vec<(String, i32)>) -> Vec<Result<TopicMeta, TopicError>> {
        let _permit = self.lock.acquire_permit(1).await;
        self.preview(topics, |c, t, count| c.add_partitions(t, count, None))
    }

    fn preview<C>(
        &self,
        changes: Vec<(String, C)>,
        apply: impl Fn(&Self, &TopicMeta, C) -> Result<TopicMeta, TopicError>,
    ) -> Vec<Result<TopicMeta, TopicError>> {
        let mut next = (*self.catalog()).clone();
        let mut results = Vec::with_capacity(changes.len());
        for (name, change) in changes {
            let Some(topic) = next.topic(&name).cloned() else {
                results.push(Err(unknown_topic()));
                continue;
            };
            let result = apply(self, &topic, change);
            if let Ok(updated) = &result {
                next.insert(updated.clone());
            }
            results.push(result);
        }
        results
    }

    /// Persists `next`, then has every shard adopt it.
    async fn commit(&self, sink: &impl CatalogSink, mut next: Catalog) -> Result<(), String> {
        next.version += 1;
        write_atomically(&self.catalog_path, &next.encode()).await.map_err(|e| e.to_string())?;
        let next = Arc::new(next);
        *self.catalog.borrow_mut() = next.clone();
        sink.publish(next).await;
        Ok(())
    }
}
