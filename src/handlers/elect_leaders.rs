//! ElectLeaders (v0-2), `kafka-leader-election.sh`: the preferred election
//! gives each asked partition its first replica as leader again (after a
//! failover moved it), if that replica is live and in sync; through the
//! metadata quorum, like every leadership change. On a single node every
//! partition already has its preferred leader (ELECTION_NOT_NEEDED).
//!
//! Unclean elections (an out-of-sync replica taking over, losing what it
//! lacks) are refused: a partition without a leader answers
//! ELIGIBLE_LEADERS_NOT_AVAILABLE, as Kafka does when no replica may lead.
//! With no partitions named (null), every partition is considered and only
//! those that needed an election are answered, as in Kafka.

use std::rc::Rc;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use crate::admin::ADMIN_SHARD;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;
use sluice_cluster::MetadataRecord;

/// Kafka's `ElectionType`.
const PREFERRED: i8 = 0;

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: ElectLeadersRequest) -> ElectLeadersResponse {
    let response = ElectLeadersResponse::default();
    if !Access::of(shard, ctx).cluster(AclOperation::Alter) {
        return response.with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let catalog = shard.catalog();
    let all = request.topic_partitions.is_none();
    let asked: Vec<(String, Vec<i32>)> = match request.topic_partitions {
        Some(topics) => topics.into_iter().map(|t| (t.topic.0.to_string(), t.partitions)).collect(),
        None => catalog.topics.values().map(|t| (t.name.to_string(), (0..t.partitions()).collect())).collect(),
    };
    let view = shard.cluster();
    let mut results = Vec::with_capacity(asked.len());
    for (topic, partitions) in asked {
        let meta = catalog.topic(&topic).cloned();
        let placed = view.as_ref().and_then(|v| v.topics.get(&topic).cloned());
        let mut out = Vec::with_capacity(partitions.len());
        for partition in partitions {
            let state = placed.as_ref().and_then(|t| t.partitions.get(usize::try_from(partition).ok()?).cloned());
            let outcome = match (&meta, &placed, state) {
                (Some(meta), _, _) if !meta.has_partition(partition) => {
                    Err((ResponseError::UnknownTopicOrPartition, None))
                }
                (None, _, _) => Err((ResponseError::UnknownTopicOrPartition, None)),
                // A single node (or a topic the view does not hold yet): the preferred leader leads.
                (Some(_), None, _) | (Some(_), Some(_), None) => Err((ResponseError::ElectionNotNeeded, None)),
                (Some(_), Some(placed), Some(state)) => {
                    let live =
                        |id: i32| view.as_ref().is_some_and(|v| v.brokers.iter().any(|b| b.id == id && !b.fenced));
                    let preferred = state.replicas.first().copied().unwrap_or(-1);
                    if request.election_type != PREFERRED {
                        if state.leader >= 0 && live(state.leader) {
                            Err((ResponseError::ElectionNotNeeded, None))
                        } else {
                            Err((
                                ResponseError::EligibleLeadersNotAvailable,
                                Some("unclean leader election is not supported: a replica out of sync would lose acknowledged records".to_string()),
                            ))
                        }
                    } else if state.leader == preferred {
                        Err((ResponseError::ElectionNotNeeded, None))
                    } else if !live(preferred) || !state.isr.contains(&preferred) {
                        Err((
                            ResponseError::PreferredLeaderNotAvailable,
                            Some(format!("preferred replica {preferred} is not a live in-sync replica")),
                        ))
                    } else {
                        let record = MetadataRecord::ElectLeader {
                            name: topic.clone(),
                            id: placed.id.clone(),
                            partition,
                            leader: preferred,
                        };
                        elect(shard, record, &topic, partition, preferred).await
                    }
                }
            };
            if all && matches!(outcome, Err((ResponseError::ElectionNotNeeded, _))) {
                continue;
            }
            let result = match outcome {
                Ok(()) => PartitionResult::default().with_partition_id(partition),
                Err((code, message)) => PartitionResult::default()
                    .with_partition_id(partition)
                    .with_error_code(code.code())
                    .with_error_message(message.map(StrBytes::from_string)),
            };
            out.push(result);
        }
        if !out.is_empty() || !all {
            results.push(
                ReplicaElectionResult::default()
                    .with_topic(TopicName(StrBytes::from_string(topic)))
                    .with_partition_result(out),
            );
        }
    }
    response.with_replica_election_results(results)
}

/// Commits one election and checks what the log made of it.
async fn elect(
    shard: &Rc<Shard>,
    record: MetadataRecord,
    topic: &str,
    partition: i32,
    leader: i32,
) -> Result<(), (ResponseError, Option<String>)> {
    let proposed = shard.invoke_on(ADMIN_SHARD, move |_| async move { crate::cluster::propose(record).await }).await;
    match proposed {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let (code, message) = e.answer();
            return Err((code, Some(message)));
        }
        Err(e) => return Err((ResponseError::RequestTimedOut, Some(e.to_string()))),
    }
    let elected = shard
        .cluster()
        .and_then(|v| v.topics.get(topic).and_then(|t| t.partitions.get(partition as usize)).map(|p| p.leader));
    if elected == Some(leader) {
        Ok(())
    } else {
        Err((ResponseError::PreferredLeaderNotAvailable, Some("the in-sync replicas changed meanwhile".into())))
    }
}
