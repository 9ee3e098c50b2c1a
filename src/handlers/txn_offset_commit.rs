//! TxnOffsetCommit (v0-4): offsets committed inside a transaction. The group
//! coordinator keeps them pending (durably) until the transaction's marker
//! commits or drops them.

use std::rc::Rc;

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{RequestHeader, TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::errors::fenced_for_version;
use super::offset_commit::{codes, gather, CommitResults};
use super::{call_group, describe_txn};
use crate::group::{GroupCall, GroupReply};
use crate::protocol::ResponseError;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    header: &RequestHeader,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let version = header.request_api_version;
    let group_id = request.group_id.0.to_string();
    let asked = request.topics.iter().map(|t| {
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                let epoch = if version >= 2 { p.committed_leader_epoch } else { -1 };
                (p.partition_index, p.committed_offset, epoch, p.committed_metadata.as_ref().map(|m| m.to_string()))
            })
            .collect();
        (t.name.0.to_string(), partitions)
    });
    let (slots, offsets) = gather(shard, asked);
    let results: CommitResults = if group_id.is_empty() {
        Err(ResponseError::InvalidGroupId)
    } else if request.producer_id.0 < 0 || request.transactional_id.0.is_empty() {
        Err(ResponseError::InvalidProducerIdMapping)
    } else if let Err(e) = in_transaction(shard, &request).await {
        Err(e)
    } else {
        let call = GroupCall::TxnCommit {
            group_id: group_id.clone(),
            producer_id: request.producer_id.0,
            generation: if version >= 3 { request.generation_id } else { -1 },
            member_id: if version >= 3 { request.member_id.to_string() } else { String::new() },
            instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
            offsets,
        };
        match call_group(shard, &group_id, call).await {
            Ok(GroupReply::TxnCommit(results)) => results,
            Ok(other) => unreachable!("transactional commit answered with {other:?}"),
            Err(_) => Err(ResponseError::CoordinatorNotAvailable),
        }
    };
    let results = results.map_err(|e| fenced_for_version(e, version, 3));
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
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default().with_name(topic.name.clone()).with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// The group must be part of the producer's open transaction (AddOffsetsToTxn
/// first), or its offsets would never get a marker (KIP-890).
async fn in_transaction(shard: &Rc<Shard>, request: &TxnOffsetCommitRequest) -> Result<(), ResponseError> {
    let txn = describe_txn(shard, request.transactional_id.0.as_str()).await?;
    let added = txn.groups.iter().any(|g| g.as_str() == request.group_id.0.as_str());
    txn.check_open(request.producer_id.0, request.producer_epoch, added)
}
