//! OffsetCommit (v2-9): checked against the group's generation (or accepted
//! with no generation for consumers that assign partitions themselves),
//! fdatasync'd to the offsets partition before the answer.

use std::rc::Rc;

use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::access::Access;
use crate::group::store::CommittedOffset;
use crate::group::PartitionResults;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::gather::{Outcome, Plan};
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let version = ctx.version();
    let group_id = request.group_id.0.to_string();
    let asked = request.topics.iter().map(|t| {
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                let epoch = if version >= 6 { p.committed_leader_epoch } else { -1 };
                (p.partition_index, p.committed_offset, epoch, p.committed_metadata.as_ref().map(|m| m.to_string()))
            })
            .collect();
        (t.name.0.to_string(), partitions)
    });
    let access = Access::of(shard, ctx);
    let plan = plan_commit(shard, &access, asked);
    let offsets = plan.sent().to_vec();
    let results: PartitionResults = if group_id.is_empty() {
        Err(ResponseError::InvalidGroupId)
    } else if !access.group(AclOperation::Read, &group_id) {
        Err(ResponseError::GroupAuthorizationFailed)
    } else {
        let generation = request.generation_id_or_member_epoch;
        let member_id = request.member_id.to_string();
        let instance_id = request.group_instance_id.as_ref().map(|s| s.to_string());
        let id = group_id.clone();
        let commit = move |shard: Rc<Shard>| async move {
            shard.groups.commit(&id, generation, &member_id, instance_id.as_deref(), offsets).await
        };
        shard.on_group(&group_id, commit).await.unwrap_or_else(|e| Err(super::coordinator_error(&e)))
    };
    let mut codes = codes(plan, results);
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.next().unwrap_or(ResponseError::UnknownServerError.code()))
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(topic.name.clone()).with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// Offsets asked for one topic: (partition, offset, leader epoch, metadata).
pub(super) type AskedOffsets = Vec<(i32, i64, i32, Option<String>)>;

/// A commit's partitions: answered at once (unknown partition) or sent to the coordinator.
pub(super) type CommitPlan = Plan<ResponseError, (String, i32, CommittedOffset)>;

/// Turns the offsets of a commit (OffsetCommit, TxnOffsetCommit) into the
/// ones sent to the coordinator, stamped with the commit time; partitions
/// this broker does not host get UNKNOWN_TOPIC_OR_PARTITION at once.
pub(super) fn plan_commit(
    shard: &Rc<Shard>,
    access: &Access,
    topics: impl Iterator<Item = (String, AskedOffsets)>,
) -> CommitPlan {
    let catalog = shard.catalog();
    let now_ms = crate::clock::now_ms();
    let mut plan = Plan::new();
    for (topic, partitions) in topics {
        let meta = catalog.topic(&topic);
        let readable = access.topic(AclOperation::Read, &topic);
        for (partition, offset, leader_epoch, metadata) in partitions {
            if !readable {
                plan.answer(ResponseError::TopicAuthorizationFailed);
                continue;
            }
            if !meta.is_some_and(|m| m.has_partition(partition)) {
                plan.answer(ResponseError::UnknownTopicOrPartition);
                continue;
            }
            let committed = CommittedOffset { offset, leader_epoch, metadata, commit_timestamp_ms: now_ms };
            plan.send((topic.clone(), partition, committed));
        }
    }
    plan
}

/// Each partition's error code, in request order: its own, or the whole
/// group's when the coordinator refused the commit.
pub(super) fn codes(plan: CommitPlan, results: PartitionResults) -> impl Iterator<Item = i16> {
    let (answers, group_error) = match results {
        Ok(answers) => (answers, None),
        Err(code) => (Vec::new(), Some(code)),
    };
    let mut outcomes = plan.finish(answers, || Err(ResponseError::UnknownServerError));
    std::iter::from_fn(move || {
        Some(match (outcomes.take(), group_error) {
            (Outcome::Early(code), _) => code.code(),
            (Outcome::Sent(_), Some(code)) => code.code(),
            (Outcome::Sent(result), None) => result.err().map_or(0, |c| c.code()),
        })
    })
}
