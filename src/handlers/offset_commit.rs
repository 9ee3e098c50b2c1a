//! OffsetCommit (v2-9): checked against the group's generation (or accepted
//! with no generation for consumers that assign partitions themselves),
//! fdatasync'd to the offsets partition before the answer.

use std::rc::Rc;

use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, RequestHeader};

use super::call_group;
use crate::group::store::CommittedOffset;
use crate::group::{GroupCall, GroupReply};
use crate::protocol::ResponseError;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let version = header.request_api_version;
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
    let (slots, offsets) = gather(shard, asked);
    let call = GroupCall::Commit {
        group_id: group_id.clone(),
        generation: request.generation_id_or_member_epoch,
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        offsets,
    };
    let results: CommitResults = if group_id.is_empty() {
        Err(ResponseError::InvalidGroupId)
    } else {
        match call_group(shard, &group_id, call).await {
            Ok(GroupReply::Commit(results)) => results,
            Ok(other) => unreachable!("commit answered with {other:?}"),
            Err(_) => Err(ResponseError::CoordinatorNotAvailable),
        }
    };
    let topics = request
        .topics
        .iter()
        .zip(codes(slots, &results))
        .map(|(topic, codes)| {
            let partitions = topic
                .partitions
                .iter()
                .zip(codes)
                .map(|(p, code)| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(topic.name.clone()).with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// Per partition: an early error, or an index into the offsets sent to the coordinator.
pub(super) type Slots = Vec<Vec<Result<usize, ResponseError>>>;

/// The coordinator's answer to a commit: per offset sent, or one error for the group.
pub(super) type CommitResults = Result<Vec<Result<(), ResponseError>>, ResponseError>;

/// Offsets asked for one topic: (partition, offset, leader epoch, metadata).
pub(super) type AskedOffsets = Vec<(i32, i64, i32, Option<String>)>;

/// Turns the offsets of a commit (OffsetCommit, TxnOffsetCommit) into the
/// ones sent to the coordinator, stamped with the commit time; partitions
/// this broker does not host get UNKNOWN_TOPIC_OR_PARTITION at once.
pub(super) fn gather(
    shard: &Rc<Shard>,
    topics: impl Iterator<Item = (String, AskedOffsets)>,
) -> (Slots, Vec<(String, i32, CommittedOffset)>) {
    let catalog = shard.catalog();
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let mut slots = Vec::new();
    let mut offsets = Vec::new();
    for (topic, partitions) in topics {
        let meta = catalog.topic(&topic);
        let topic_slots = partitions
            .into_iter()
            .map(|(partition, offset, leader_epoch, metadata)| {
                if meta.and_then(|m| m.owner(partition)).is_none() {
                    return Err(ResponseError::UnknownTopicOrPartition);
                }
                let committed = CommittedOffset { offset, leader_epoch, metadata, commit_timestamp_ms: now_ms };
                offsets.push((topic.clone(), partition, committed));
                Ok(offsets.len() - 1)
            })
            .collect();
        slots.push(topic_slots);
    }
    (slots, offsets)
}

/// Each partition's error code, in request order.
pub(super) fn codes(slots: Slots, results: &CommitResults) -> Vec<Vec<i16>> {
    slots
        .into_iter()
        .map(|topic_slots| {
            topic_slots
                .into_iter()
                .map(|slot| match (slot, results) {
                    (Err(code), _) => code.code(),
                    (Ok(_), Err(code)) => code.code(),
                    (Ok(i), Ok(results)) => results[i].err().map(|c| c.code()).unwrap_or(0),
                })
                .collect()
        })
        .collect()
}
