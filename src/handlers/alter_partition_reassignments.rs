//! AlterPartitionReassignments (v0-1), `kafka-reassign-partitions.sh
//! --execute` and `--cancel`: moves a partition to other replicas (KIP-455).
//! The new replicas join the partition and fetch from its leader; once every
//! target replica is in sync the metadata log removes the others (their data
//! is deleted) and, if the leader was one of them, elects a target replica
//! in a new epoch. The answer comes once the reassignment has started, as in
//! Kafka; `ListPartitionReassignments` follows it. A null replica list
//! cancels the reassignment in progress (back to the original replicas).
//!
//! A single node is its only broker: the one assignment it accepts is
//! itself, which needs no moving.

use std::rc::Rc;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use crate::admin::ADMIN_SHARD;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;
use sluice_cluster::state::valid_assignment;
use sluice_cluster::MetadataRecord;

/// A partition's refusal: Kafka's error and its message.
type Refusal = (ResponseError, String);

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let response = AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(request.allow_replication_factor_change);
    if let Err(e) = Access::of(shard, ctx).require_cluster(AclOperation::Alter) {
        return response.with_error_code(e.code());
    }
    let mut responses = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let target = p.replicas.map(|r| r.into_iter().map(|b| b.0).collect::<Vec<i32>>());
            let outcome =
                reassign(shard, &name, p.partition_index, target, request.allow_replication_factor_change).await;
            let (code, message) = match outcome {
                Ok(()) => (0, None),
                Err((code, message)) => (code.code(), Some(StrBytes::from_string(message))),
            };
            partitions.push(
                ReassignablePartitionResponse::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code)
                    .with_error_message(message),
            );
        }
        responses.push(ReassignableTopicResponse::default().with_name(topic.name).with_partitions(partitions));
    }
    response.with_responses(responses)
}

/// Checks one partition's reassignment (`None`: its cancellation) as Kafka
/// does and commits it.
async fn reassign(
    shard: &Rc<Shard>,
    topic: &str,
    partition: i32,
    target: Option<Vec<i32>>,
    allow_replication_factor_change: bool,
) -> Result<(), Refusal> {
    let unknown = || (ResponseError::UnknownTopicOrPartition, format!("Unable to find partition {topic}-{partition}."));
    let catalog = shard.catalog();
    let meta = catalog.topic(topic).filter(|m| m.has_partition(partition)).ok_or_else(unknown)?;
    let view = shard.cluster();
    let (topic_id, current, registered): (String, sluice_cluster::PartitionState, Vec<i32>) = match &view {
        Some(view) => {
            let placed = view.topics.get(topic).ok_or_else(unknown)?;
            let state = placed.partitions.get(partition as usize).ok_or_else(unknown)?;
            (placed.id.clone(), state.clone(), view.brokers.iter().map(|b| b.id).collect())
        }
        None => {
            let me = shard.config.node_id;
            (meta.id.to_string(), sluice_cluster::PartitionState::new(vec![me]), vec![me])
        }
    };
    let Some(target) = target else {
        if !current.reassigning() {
            return Err((
                ResponseError::NoReassignmentInProgress,
                format!(
                    "Unable to cancel reassignment for partition {topic}-{partition}: no reassignment is in progress."
                ),
            ));
        }
        return commit(shard, topic_id, topic, partition, None).await;
    };
    check_target(&target, &registered)?;
    let factor = current.target_replicas().len();
    if !allow_replication_factor_change && target.len() != factor {
        return Err((
            ResponseError::InvalidReplicationFactor,
            format!("The replication factor is changed from {factor} to {}", target.len()),
        ));
    }
    if view.is_none() {
        // This node is the target, and holds the partition already.
        return Ok(());
    }
    commit(shard, topic_id, topic, partition, Some(target)).await
}

/// A target assignment as Kafka checks one: replicas, none twice, all registered brokers.
fn check_target(target: &[i32], registered: &[i32]) -> Result<(), Refusal> {
    if valid_assignment(target, |r| registered.contains(&r)) {
        return Ok(());
    }
    let message = if target.is_empty() {
        "The manual partition assignment includes an empty replica list.".to_string()
    } else if let Some(id) = target.iter().find(|r| !registered.contains(r)) {
        format!("The manual partition assignment includes broker {id}, but no such broker is registered.")
    } else {
        format!("The manual partition assignment includes a duplicate replica: {target:?}.")
    };
    Err((ResponseError::InvalidReplicaAssignment, message))
}

/// Commits the reassignment through the metadata quorum.
async fn commit(
    shard: &Rc<Shard>,
    id: String,
    topic: &str,
    partition: i32,
    target: Option<Vec<i32>>,
) -> Result<(), Refusal> {
    let record = MetadataRecord::ReassignPartition { name: topic.to_string(), id, partition, target };
    let proposed = shard.invoke_on(ADMIN_SHARD, move |_| async move { crate::cluster::propose(record).await }).await;
    match proposed {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.answer()),
        Err(e) => Err((ResponseError::RequestTimedOut, e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_checked_as_kafka_checks_them() {
        assert!(check_target(&[1, 2], &[1, 2, 3]).is_ok());
        let refused = |target: &[i32]| check_target(target, &[1, 2, 3]).unwrap_err();
        assert_eq!(refused(&[]).0, ResponseError::InvalidReplicaAssignment);
        assert!(refused(&[]).1.contains("empty replica list"));
        assert!(refused(&[1, 1]).1.contains("duplicate replica"));
        assert!(refused(&[1, 4]).1.contains("broker 4, but no such broker is registered"));
    }
}
