//! Transactions whose coordinator is another broker of the cluster: a
//! partition's leader asks the transactional id's coordinator, as Kafka's
//! brokers do with AddPartitionsToTxn (v4 and up, which brokers send), before
//! it appends a transactional batch: from Produce v12 (transaction version
//! 2) to add the partition to the producer's transaction, before it to
//! verify that the producer added it (KIP-890). The coordinator writes its
//! markers to other brokers' partitions with WriteTxnMarkers
//! (`peers::write_markers`).

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::add_partitions_to_txn_request::{AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey,
    GroupId, ProducerId, TopicName, TransactionalId, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::metadata::INTERNAL_TOPICS;
use crate::protocol::{ResponseError, TopicPartition};
use crate::shard::Shard;

/// The AddPartitionsToTxn version a broker sends: v5 adds for a producer of
/// transaction version 2, and answers a failed verification TRANSACTION_ABORTABLE.
const ADD_VERSION: i16 = 5;
/// The version that only verifies: a failed verification is INVALID_TXN_STATE.
const VERIFY_VERSION: i16 = 4;

/// A producer (id, epoch) and a partition it writes to.
pub type Candidate = ((i64, i16), TopicPartition);

/// The broker coordinating `transactional_id` when it is another broker of
/// the cluster (the leader of its `__transaction_state` partition).
pub fn remote_coordinator(shard: &Shard, transactional_id: &str) -> Option<i32> {
    let view = shard.cluster()?;
    let n = crate::txn::txn_partition(transactional_id) as i32;
    view.leader(INTERNAL_TOPICS[1], n).filter(|leader| *leader != shard.config.node_id)
}

/// Asks `coordinator` to add each producer's partitions to its transaction
/// (`verify_only`: whether they are in it already); what each partition's
/// batch gets, as Kafka's produce path answers it: a fenced producer is
/// INVALID_PRODUCER_EPOCH, and a coordinator that cannot answer now is
/// NOT_ENOUGH_REPLICAS, which every client retries.
pub async fn add_partitions(
    shard: &Rc<Shard>,
    coordinator: i32,
    transactional_id: &str,
    candidates: &[Candidate],
    verify_only: bool,
) -> BTreeMap<Candidate, Result<(), ResponseError>> {
    let mut by_producer: BTreeMap<(i64, i16), Vec<TopicPartition>> = BTreeMap::new();
    for (producer, partition) in candidates {
        let partitions = by_producer.entry(*producer).or_default();
        if !partitions.contains(partition) {
            partitions.push(partition.clone());
        }
    }
    let transactions = by_producer
        .iter()
        .map(|((producer_id, epoch), partitions)| {
            let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
            for p in partitions {
                let name = TopicName(StrBytes::from_string(p.topic.clone()));
                match topics.iter_mut().find(|t| t.name == name) {
                    Some(t) => t.partitions.push(p.partition),
                    None => topics
                        .push(AddPartitionsToTxnTopic::default().with_name(name).with_partitions(vec![p.partition])),
                }
            }
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(transactional_id.to_string())))
                .with_producer_id(ProducerId(*producer_id))
                .with_producer_epoch(*epoch)
                .with_verify_only(verify_only)
                .with_topics(topics)
        })
        .collect();
    let request = AddPartitionsToTxnRequest::default().with_transactions(transactions);
    let version = if verify_only { VERIFY_VERSION } else { ADD_VERSION };
    let answer: Result<AddPartitionsToTxnResponse, String> =
        crate::peers::call(shard, coordinator, ApiKey::AddPartitionsToTxn, version, &request).await;
    let answer = answer.map_err(|e| {
        tracing::debug!(coordinator, error = %e, "transaction coordinator not reached");
        ResponseError::NotEnoughReplicas
    });
    let mut outcomes = BTreeMap::new();
    for (producer, partition) in candidates {
        let code = match &answer {
            Err(e) => Err(*e),
            Ok(response) if response.error_code != 0 => Err(code_of(response.error_code)),
            Ok(response) => {
                let result = response
                    .results_by_transaction
                    .iter()
                    .flat_map(|t| &t.topic_results)
                    .filter(|t| t.name.0.as_str() == partition.topic)
                    .flat_map(|t| &t.results_by_partition)
                    .find(|p| p.partition_index == partition.partition);
                match result {
                    Some(p) if p.partition_error_code == 0 => Ok(()),
                    Some(p) => Err(code_of(p.partition_error_code)),
                    None => Err(ResponseError::InvalidTxnState),
                }
            }
        };
        outcomes.insert((*producer, partition.clone()), code);
    }
    outcomes
}

/// AddOffsetsToTxn's version a broker sends.
const ADD_OFFSETS_VERSION: i16 = 4;

/// A TxnOffsetCommit's group joins the producer's transaction at
/// `coordinator` (another broker): added (`add`, TxnOffsetCommit v5 and up,
/// AddOffsetsToTxn as the producer would have sent it), or verified to be
/// in it (as Kafka's brokers verify: the group's `__consumer_offsets`
/// partition in AddPartitionsToTxn with `verify_only`).
pub async fn join_group(
    shard: &Rc<Shard>,
    coordinator: i32,
    request: &TxnOffsetCommitRequest,
    add: bool,
) -> Result<(), ResponseError> {
    let (producer_id, epoch) = (request.producer_id.0, request.producer_epoch);
    if add {
        let add = AddOffsetsToTxnRequest::default()
            .with_transactional_id(request.transactional_id.clone())
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
            .with_group_id(GroupId(request.group_id.0.clone()));
        let answer: Result<AddOffsetsToTxnResponse, String> =
            crate::peers::call(shard, coordinator, ApiKey::AddOffsetsToTxn, ADD_OFFSETS_VERSION, &add).await;
        return match answer {
            Ok(response) if response.error_code == 0 => Ok(()),
            Ok(response) => Err(match ResponseError::try_from_code(response.error_code) {
                Some(ResponseError::ProducerFenced) => ResponseError::InvalidProducerEpoch,
                Some(e) => e,
                None => ResponseError::UnknownServerError,
            }),
            Err(e) => {
                tracing::debug!(coordinator, error = %e, "transaction coordinator not reached");
                Err(ResponseError::CoordinatorNotAvailable)
            }
        };
    }
    let n = crate::group::offsets_partition(request.group_id.0.as_str()) as i32;
    let partition = TopicPartition::new(INTERNAL_TOPICS[0].to_string(), n);
    let candidate = ((producer_id, epoch), partition);
    let id = request.transactional_id.0.as_str();
    let verified = add_partitions(shard, coordinator, id, std::slice::from_ref(&candidate), true).await;
    verified.get(&candidate).copied().unwrap_or(Err(ResponseError::InvalidTxnState)).map_err(|e| match e {
        ResponseError::NotEnoughReplicas => ResponseError::CoordinatorNotAvailable,
        other => other,
    })
}

/// A coordinator's code as the produce path answers it.
fn code_of(code: i16) -> ResponseError {
    match ResponseError::try_from_code(code) {
        Some(ResponseError::ProducerFenced) => ResponseError::InvalidProducerEpoch,
        Some(
            ResponseError::ConcurrentTransactions
            | ResponseError::CoordinatorNotAvailable
            | ResponseError::CoordinatorLoadInProgress
            | ResponseError::NotCoordinator,
        ) => ResponseError::NotEnoughReplicas,
        Some(other) => other,
        None => ResponseError::UnknownServerError,
    }
}
