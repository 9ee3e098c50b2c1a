//! TxnOffsetCommit (v0-5): offsets committed inside a transaction. The group
//! coordinator keeps them pending (durably) until the transaction's marker
//! commits or drops them. Before v5 the group must have joined the
//! transaction (AddOffsetsToTxn); v5 is transaction version 2, whose clients
//! send no AddOffsetsToTxn: the group joins here, as Kafka's group
//! coordinator has the transaction coordinator add it.

use std::rc::Rc;

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::access::Access;
use super::coordinator_answer;
use super::errors::fenced_for_version;
use super::offset_commit::{codes, plan_commit};
use crate::group::PartitionResults;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let version = ctx.version();
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
    let access = Access::of(shard, ctx);
    let plan = plan_commit(shard, &access, asked);
    let offsets = plan.sent().to_vec();
    let results: PartitionResults = if group_id.is_empty() {
        Err(ResponseError::InvalidGroupId)
    } else if !access.transactional_id(AclOperation::Write, request.transactional_id.0.as_str()) {
        Err(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !access.group(AclOperation::Read, &group_id) {
        Err(ResponseError::GroupAuthorizationFailed)
    } else if request.producer_id.0 < 0 || request.transactional_id.0.is_empty() {
        Err(ResponseError::InvalidProducerIdMapping)
    } else if let Err(e) = join_transaction(shard, &request, version).await {
        Err(e)
    } else {
        let producer_id = request.producer_id.0;
        let generation = if version >= 3 { request.generation_id } else { -1 };
        let member_id = if version >= 3 { request.member_id.to_string() } else { String::new() };
        let instance_id = request.group_instance_id.as_ref().map(|s| s.to_string());
        let id = group_id.clone();
        let commit = move |shard: Rc<Shard>| async move {
            shard.groups.txn_commit(&id, producer_id, generation, &member_id, instance_id.as_deref(), offsets).await
        };
        shard.on_group(&group_id, commit).await.unwrap_or_else(|e| Err(super::coordinator_error(&e)))
    };
    let results = results.map_err(|e| fenced_for_version(e, version, 3));
    let mut codes = codes(plan, results);
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.next().unwrap_or(ResponseError::UnknownServerError.code()))
                })
                .collect();
            TxnOffsetCommitResponseTopic::default().with_name(topic.name.clone()).with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// The first version whose group joins the transaction implicitly.
const IMPLICIT_ADD_VERSION: i16 = 5;

/// The group must be part of the producer's open transaction, or its offsets
/// would never get a marker (KIP-890): checked before v5, added from v5. A
/// fenced epoch is INVALID_PRODUCER_EPOCH there, as Kafka's
/// `AddPartitionsToTxnManager` answers the group coordinator.
async fn join_transaction(
    shard: &Rc<Shard>,
    request: &TxnOffsetCommitRequest,
    version: i16,
) -> Result<(), ResponseError> {
    let transactional_id = request.transactional_id.0.to_string();
    if let Some(coordinator) = crate::cluster::txn::remote_coordinator(shard, &transactional_id) {
        return crate::cluster::txn::join_group(shard, coordinator, request, version >= IMPLICIT_ADD_VERSION).await;
    }
    if version < IMPLICIT_ADD_VERSION {
        return in_transaction(shard, request).await;
    }
    let (producer_id, epoch) = (request.producer_id.0, request.producer_epoch);
    let (id, group_id) = (transactional_id.clone(), request.group_id.0.to_string());
    let add = move |shard: Rc<Shard>| async move {
        shard.txns.add_offsets(&shard.env(), &id, producer_id, epoch, group_id).await
    };
    coordinator_answer(shard.on_txn(&transactional_id, add).await).map_err(|e| match e {
        ResponseError::ProducerFenced => ResponseError::InvalidProducerEpoch,
        other => other,
    })
}

/// Before v5: the group was added by AddOffsetsToTxn to the open transaction.
async fn in_transaction(shard: &Rc<Shard>, request: &TxnOffsetCommitRequest) -> Result<(), ResponseError> {
    let txn = shard.describe_txn(request.transactional_id.0.as_str()).await?;
    let added = txn.groups.iter().any(|g| g.as_str() == request.group_id.0.as_str());
    txn.check_open(request.producer_id.0, request.producer_epoch, added)
}
