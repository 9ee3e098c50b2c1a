//! AddPartitionsToTxn (v0-5): partitions join the producer's transaction
//! before it writes to them. v4 batches several transactions and may only
//! verify (`verify_only`) that partitions are already part of one; v5 is how
//! Kafka's brokers add a partition for a producer of transaction version 2
//! (which never sends this request itself), and answers a verification of a
//! partition outside the transaction with TRANSACTION_ABORTABLE.

use std::rc::Rc;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use super::access::Access;
use super::coordinator_answer;
use super::errors::fenced_for_version;
use crate::protocol::{ResponseError, TopicPartition};
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let version = ctx.version();
    let access = Access::of(shard, ctx);
    if version <= 3 {
        let producer = Producer {
            transactional_id: request.v3_and_below_transactional_id.0.to_string(),
            producer_id: request.v3_and_below_producer_id.0,
            epoch: request.v3_and_below_producer_epoch,
            verify_only: false,
        };
        let results = add(shard, &access, version, producer, &request.v3_and_below_topics).await;
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    }
    // v4+ is how brokers verify transactions among themselves: CLUSTER_ACTION.
    if let Err(e) = access.require_cluster(AclOperation::ClusterAction) {
        return AddPartitionsToTxnResponse::default().with_error_code(e.code());
    }
    let mut by_transaction = Vec::with_capacity(request.transactions.len());
    for t in &request.transactions {
        let producer = Producer {
            transactional_id: t.transactional_id.0.to_string(),
            producer_id: t.producer_id.0,
            epoch: t.producer_epoch,
            verify_only: t.verify_only,
        };
        let results = add(shard, &access, version, producer, &t.topics).await;
        by_transaction.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id.clone())
                .with_topic_results(results),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(by_transaction)
}

/// The producer whose transaction the partitions join (or are verified in, v4+).
struct Producer {
    transactional_id: String,
    producer_id: i64,
    epoch: i16,
    verify_only: bool,
}

async fn add(
    shard: &Rc<Shard>,
    access: &Access,
    version: i16,
    producer: Producer,
    topics: &[AddPartitionsToTxnTopic],
) -> Vec<AddPartitionsToTxnTopicResult> {
    let Producer { transactional_id, producer_id, epoch, verify_only } = producer;
    let catalog = shard.catalog();
    // Any partition of the cluster: the coordinator writes the markers of
    // partitions other brokers lead there (WriteTxnMarkers).
    let known = |topic: &AddPartitionsToTxnTopic, p: i32| {
        catalog.topic(topic.name.0.as_str()).is_some_and(|m| (0..m.partitions()).contains(&p))
    };
    let all_known = topics.iter().all(|t| t.partitions.iter().all(|p| known(t, *p)));
    // WRITE on the transactional id and on every topic, else nothing is attempted.
    let txn_denied = !access.transactional_id(AclOperation::Write, &transactional_id);
    let writable = |t: &AddPartitionsToTxnTopic| access.topic(AclOperation::Write, t.name.0.as_str());
    let all_writable = topics.iter().all(writable);
    let partitions: Vec<TopicPartition> =
        topics.iter().flat_map(|t| t.partitions.iter().map(|p| TopicPartition::new(t.name.0.as_str(), *p))).collect();
    // Unknown partitions fail the request; the others are not attempted, as in Kafka.
    let outcome: Result<(), ResponseError> = if txn_denied {
        Err(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !all_writable || !all_known {
        Err(ResponseError::OperationNotAttempted)
    } else if verify_only {
        verify(shard, &transactional_id, producer_id, epoch, &partitions).await.map_err(|e| match e {
            ResponseError::InvalidTxnState if version >= 5 => ResponseError::TransactionAbortable,
            other => other,
        })
    } else if transactional_id.is_empty() {
        Err(ResponseError::InvalidRequest)
    } else {
        let id = transactional_id.clone();
        let add = move |shard: Rc<Shard>| async move {
            shard.txns.add_partitions(&shard.env(), &id, producer_id, epoch, partitions).await
        };
        coordinator_answer(shard.on_txn(&transactional_id, add).await)
    };
    let outcome = outcome.map_err(|e| fenced_for_version(e, version, 2));
    topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = match outcome {
                        Ok(()) => 0,
                        Err(ResponseError::OperationNotAttempted) if !writable(t) => {
                            ResponseError::TopicAuthorizationFailed.code()
                        }
                        Err(ResponseError::OperationNotAttempted) if all_writable && !known(t, *p) => {
                            ResponseError::UnknownTopicOrPartition.code()
                        }
                        Err(e) => e.code(),
                    };
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(code)
                })
                .collect();
            AddPartitionsToTxnTopicResult::default().with_name(t.name.clone()).with_results_by_partition(partitions)
        })
        .collect()
}

/// `verify_only`: the partitions must already be in the producer's open transaction.
async fn verify(
    shard: &Rc<Shard>,
    transactional_id: &str,
    producer_id: i64,
    epoch: i16,
    partitions: &[TopicPartition],
) -> Result<(), ResponseError> {
    let txn = shard.describe_txn(transactional_id).await?;
    // A partition of `__consumer_offsets` is in the transaction when a group
    // hashing to it is: a group coordinator of another broker verifies a
    // TxnOffsetCommit so, as Kafka's do.
    let added = |p: &TopicPartition| {
        txn.partitions.contains(p)
            || (p.topic == crate::metadata::INTERNAL_TOPICS[0]
                && txn.groups.iter().any(|g| crate::group::offsets_partition(g) as i32 == p.partition))
    };
    txn.check_open(producer_id, epoch, partitions.iter().all(added))
}
