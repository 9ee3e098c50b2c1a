//! Creating and deleting topics on a cluster: checked here as a single node
//! checks them, placed on the live brokers, committed by the metadata
//! quorum, and answered once this node's catalog has them.
//!
//! A partition gets `replication.factor` replicas (or the cluster's
//! `default.replication.factor`), placed round robin over the live brokers
//! with the first as preferred leader, or where an assignment says.

use std::rc::Rc;
use std::sync::Arc;

use sluice_cluster::state::ClusterState;
use sluice_cluster::MetadataRecord;

use crate::metadata::controller::{ConfigChange, PartitionGrowth, TopicError, TopicRef, TopicSpec};
use crate::metadata::TopicMeta;
use crate::protocol::ResponseError;
use crate::shard::Shard;

/// Checks one partition's assigned replicas: some, distinct, registered brokers.
fn check_assignment(state: &ClusterState, brokers: &[i32]) -> Result<(), TopicError> {
    if brokers.is_empty() {
        return Err((
            ResponseError::InvalidReplicaAssignment,
            "The manual partition assignment includes an empty replica list.".into(),
        ));
    }
    if (1..brokers.len()).any(|i| brokers[..i].contains(&brokers[i])) {
        return Err((
            ResponseError::InvalidReplicaAssignment,
            format!("The manual partition assignment includes a duplicate replica: {brokers:?}."),
        ));
    }
    if let Some(id) = brokers.iter().find(|id| !state.brokers.contains_key(id)) {
        return Err((
            ResponseError::InvalidReplicaAssignment,
            format!("The manual partition assignment includes broker {id}, but no such broker is registered."),
        ));
    }
    Ok(())
}

/// The replication factor a spec asks for: its own, or the cluster default for -1.
fn replication_factor(shard: &Shard, spec: &TopicSpec) -> i16 {
    match spec.replication_factor {
        -1 => shard.config.cluster.as_ref().map_or(1, |c| c.default_replication_factor),
        factor => factor,
    }
}

/// The state placement works from: the live brokers and the topics placed so far.
fn placement_state(shard: &Shard) -> ClusterState {
    let mut state = ClusterState::default();
    if let Some(view) = shard.cluster() {
        state.brokers = view.brokers.iter().map(|b| (b.id, b.clone())).collect();
        state.topics = (*view.topics).clone();
    }
    state
}

/// One topic checked and placed: the record to commit and what to answer.
fn prepare(
    state: &ClusterState,
    factor: i16,
    spec: &TopicSpec,
    checked: Result<Arc<TopicMeta>, TopicError>,
) -> Result<(MetadataRecord, Arc<TopicMeta>), TopicError> {
    let meta = checked?;
    let replicas = if spec.assignments.is_empty() {
        let count = meta.partitions() as usize;
        state.place(count, factor.max(1) as usize).map_err(|m| (ResponseError::InvalidReplicationFactor, m))?
    } else {
        let mut assigned = spec.assignments.clone();
        assigned.sort_by_key(|(p, _)| *p);
        assigned.into_iter().map(|(_, brokers)| brokers).collect()
    };
    let configs = spec.configs.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect();
    let record =
        MetadataRecord::CreateTopic { name: spec.name.clone(), id: meta.id.to_string(), partitions: replicas, configs };
    Ok((record, meta))
}

/// Checks a spec's replication as a cluster without replication can take
/// it, and gives the spec the single-node checks understand (partition
/// count only, the assignments checked here).
fn check_replication(state: &ClusterState, factor: i16, spec: &TopicSpec) -> Result<TopicSpec, TopicError> {
    let mut local = spec.clone();
    if spec.assignments.is_empty() {
        if factor < -1 || factor == 0 {
            return Err((
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0, or -1 to use the default value.".into(),
            ));
        }
        let live = state.live_brokers().count() as i64;
        if i64::from(factor) > live {
            return Err((
                ResponseError::InvalidReplicationFactor,
                format!(
                    "Unable to replicate the partition {factor} time(s): The target replication factor of {factor} \
                     cannot be reached because only {live} broker(s) are registered."
                ),
            ));
        }
        local.replication_factor = -1;
        return Ok(local);
    }
    if spec.replication_factor != -1 || spec.num_partitions != -1 {
        // The single-node checks answer these with Kafka's messages.
        return Ok(local);
    }
    for (_, brokers) in &spec.assignments {
        check_assignment(state, brokers)?;
    }
    let mut partitions: Vec<i32> = spec.assignments.iter().map(|(p, _)| *p).collect();
    partitions.sort_unstable();
    partitions.dedup();
    if partitions.len() != spec.assignments.len() || partitions.iter().enumerate().any(|(i, p)| *p != i as i32) {
        return Err((
            ResponseError::InvalidReplicaAssignment,
            "partitions should be a consecutive 0-based integer sequence".into(),
        ));
    }
    local.assignments = Vec::new();
    local.num_partitions = spec.assignments.len() as i32;
    local.replication_factor = -1;
    Ok(local)
}

/// CreateTopics on a cluster (and auto-creation): runs on the controller shard.
pub async fn create_topics(
    shard: &Rc<Shard>,
    specs: Vec<TopicSpec>,
    validate_only: bool,
) -> Vec<Result<Arc<TopicMeta>, TopicError>> {
    let state = placement_state(shard);
    let mut results: Vec<Option<Result<Arc<TopicMeta>, TopicError>>> = Vec::with_capacity(specs.len());
    let mut local_specs = Vec::new();
    let mut asked = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        match check_replication(&state, replication_factor(shard, spec), spec) {
            Ok(local) => {
                results.push(None);
                local_specs.push(local);
                asked.push(i);
            }
            Err(e) => results.push(Some(Err(e))),
        }
    }
    let checked = shard.controller().check_topics(local_specs).await;
    let mut proposals = Vec::new();
    for (i, checked) in asked.into_iter().zip(checked) {
        match prepare(&state, replication_factor(shard, &specs[i]), &specs[i], checked) {
            Ok((_, meta)) if validate_only => results[i] = Some(Ok(meta)),
            Ok((record, meta)) => proposals.push((i, record, meta)),
            Err(e) => results[i] = Some(Err(e)),
        }
    }
    let answers = futures::future::join_all(proposals.into_iter().map(|(i, record, meta)| async move {
        let name = meta.name.to_string();
        let outcome = super::propose(record).await.map_err(super::ProposeError::answer);
        (i, name, meta.id, outcome)
    }))
    .await;
    let catalog = shard.catalog();
    for (i, name, id, outcome) in answers {
        results[i] = Some(outcome.and_then(|()| match catalog.topic(&name) {
            Some(topic) if topic.id == id => {
                tracing::info!(topic = %name, "topic created");
                Ok(topic.clone())
            }
            _ => Err((ResponseError::TopicAlreadyExists, format!("Topic '{name}' already exists."))),
        }));
    }
    results.into_iter().map(|r| r.expect("every topic answered")).collect()
}

/// DeleteTopics on a cluster: runs on the controller shard.
pub async fn delete_topics(shard: &Rc<Shard>, refs: Vec<TopicRef>) -> Vec<Result<Arc<TopicMeta>, TopicError>> {
    let catalog = shard.catalog();
    let deletes = refs.into_iter().map(|r| {
        let topic = match &r {
            TopicRef::Name(name) => catalog.topic(name).cloned(),
            TopicRef::Id(id) => catalog.topic_by_id(id).cloned(),
        };
        async move {
            let Some(topic) = topic else {
                return Err(match r {
                    TopicRef::Name(_) => crate::metadata::controller::unknown_topic(),
                    TopicRef::Id(_) => {
                        (ResponseError::UnknownTopicId, "This server does not host this topic ID.".to_string())
                    }
                });
            };
            let record = MetadataRecord::DeleteTopic { name: topic.name.to_string(), id: topic.id.to_string() };
            super::propose(record).await.map_err(super::ProposeError::answer)?;
            tracing::info!(topic = %topic.name, "topic deleted");
            Ok(topic)
        }
    });
    futures::future::join_all(deletes).await
}

/// Proposes one record per checked change and answers each once applied here.
async fn commit_each(
    checked: Vec<Result<MetadataRecord, TopicError>>,
    validate_only: bool,
) -> Vec<Result<(), TopicError>> {
    let commits = checked.into_iter().map(|checked| async move {
        let record = checked?;
        if validate_only {
            return Ok(());
        }
        super::propose(record).await.map_err(super::ProposeError::answer)
    });
    futures::future::join_all(commits).await
}

/// AlterConfigs and IncrementalAlterConfigs of topics on a cluster: the new
/// overrides checked here, then committed for every broker.
pub async fn alter_configs(
    shard: &Rc<Shard>,
    topics: Vec<(String, ConfigChange)>,
    validate_only: bool,
) -> Vec<Result<(), TopicError>> {
    let previews = shard.controller().preview_configs(topics).await;
    let checked = previews
        .into_iter()
        .map(|preview| {
            preview.map(|topic| MetadataRecord::SetTopicConfigs {
                name: topic.name.to_string(),
                id: topic.id.to_string(),
                configs: topic.config.overrides.clone().into_iter().collect(),
            })
        })
        .collect();
    commit_each(checked, validate_only).await
}

/// CreatePartitions on a cluster: the count checked here, the new
/// partitions placed over the live brokers with as many replicas as the
/// topic's first partition (or where the assignment says), then committed.
pub async fn create_partitions(
    shard: &Rc<Shard>,
    topics: Vec<PartitionGrowth>,
    validate_only: bool,
) -> Vec<Result<(), TopicError>> {
    let mut state = placement_state(shard);
    let counts = topics.iter().map(|(name, count, _)| (name.clone(), *count)).collect();
    let previews = shard.controller().preview_partitions(counts).await;
    let catalog = shard.catalog();
    let mut checked = Vec::with_capacity(topics.len());
    for ((name, count, assignments), preview) in topics.into_iter().zip(previews) {
        let record = preview.and_then(|topic| {
            let current = catalog.topic(&name).map_or(0, |t| t.partitions()) as usize;
            let added = count as usize - current;
            let partitions = match assignments {
                None => {
                    let factor = state.topics.get(&name).and_then(|t| t.partitions.first()).map_or(1, |p| p.replicas.len());
                    state.place(added, factor).map_err(|m| (ResponseError::InvalidReplicationFactor, m))?
                }
                Some(assigned) => {
                    if assigned.len() != added {
                        return Err((
                            ResponseError::InvalidReplicaAssignment,
                            format!(
                                "Attempted to add {added} additional partition(s), but only {} assignment(s) were specified.",
                                assigned.len()
                            ),
                        ));
                    }
                    for brokers in &assigned {
                        check_assignment(&state, brokers)?;
                    }
                    assigned
                }
            };
            // Later topics of the same request are placed after these.
            if let Some(t) = state.topics.get_mut(&name) {
                t.partitions.extend(partitions.iter().map(|r| sluice_cluster::PartitionState::new(r.clone())));
            }
            Ok(MetadataRecord::CreatePartitions {
                name: topic.name.to_string(),
                id: topic.id.to_string(),
                after: current,
                partitions,
            })
        });
        checked.push(record);
    }
    commit_each(checked, validate_only).await
}

thread_local! {
    /// Internal topics this node is creating (on the admin shard).
    static CREATING: std::cell::RefCell<Vec<&'static str>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Creates a cluster's internal topic (`__consumer_offsets` or
/// `__transaction_state`) unless it exists, as Kafka does on the first
/// FindCoordinator that needs it: `offsets.topic.num.partitions` (or
/// `transaction.state.log.num.partitions`) partitions, each with
/// `INTERNAL_TOPIC_REPLICATION_FACTOR` replicas (one per live broker when
/// there are fewer), which must all be live brokers; kept whole (no retention),
/// its coordinators trimming it themselves. Runs on the admin shard; one
/// creation at a time per topic.
pub async fn create_internal_topic(shard: &Rc<Shard>, name: &'static str) -> Result<(), String> {
    use crate::constants::{
        INTERNAL_TOPIC_REPLICATION_FACTOR, INTERNAL_TOPIC_SEGMENT_BYTES, OFFSETS_PARTITIONS, TXN_PARTITIONS,
    };
    let view = shard.cluster().ok_or("the cluster's metadata is not loaded yet")?;
    if view.topics.contains_key(name) || CREATING.with(|c| c.borrow().contains(&name)) {
        return Ok(());
    }
    let placement = placement_state(shard);
    let live = placement.live_brokers().count().max(1);
    let count = if name == crate::metadata::INTERNAL_TOPICS[0] { OFFSETS_PARTITIONS } else { TXN_PARTITIONS };
    let partitions = placement.place(count, INTERNAL_TOPIC_REPLICATION_FACTOR.min(live))?;
    let configs = [
        ("cleanup.policy", "delete".to_string()),
        ("retention.ms", "-1".to_string()),
        ("retention.bytes", "-1".to_string()),
        ("segment.bytes", INTERNAL_TOPIC_SEGMENT_BYTES.to_string()),
    ];
    let record = MetadataRecord::CreateTopic {
        name: name.to_string(),
        id: uuid::Uuid::new_v4().to_string(),
        partitions,
        configs: configs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    };
    CREATING.with(|c| c.borrow_mut().push(name));
    let outcome = super::propose(record).await;
    CREATING.with(|c| c.borrow_mut().retain(|n| *n != name));
    outcome.map_err(|e| format!("{e:?}"))?;
    tracing::info!(topic = name, "internal topic created");
    Ok(())
}
