//! WriteTxnMarkers (v1): writes commit or abort markers into partitions, as
//! another broker's transaction coordinator asks Kafka to, and as
//! `kafka-transactions.sh abort` asks (Admin `abortTransaction`) to end a
//! hanging transaction, one its coordinator does not know of. Each marker is a
//! control batch appended and synced on the partition's owner; it ends the
//! producer's open transaction there, which moves the last stable offset on.

use std::rc::Rc;

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use super::access::Access;
use super::errors::route_error_code;
use crate::metadata::INTERNAL_TOPICS;
use crate::protocol::ResponseError;
use crate::router::MarkerPart;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::gather::{Outcome, Plan};
use crate::shard::Shard;
use crate::storage::log::{MarkerOrigin, TxnMarker};

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    // Kafka takes ALTER on the cluster (what an operator's abort needs) or
    // else CLUSTER_ACTION (what brokers have); without either the whole
    // request fails with CLUSTER_AUTHORIZATION_FAILED.
    let access = Access::of(shard, ctx);
    let allowed = access.cluster(AclOperation::Alter) || access.cluster(AclOperation::ClusterAction);
    let catalog = shard.catalog();
    // Markers for partitions of `__consumer_offsets` end the transaction's
    // offsets of the groups on them (another broker's transaction
    // coordinator sends these), by their coordinator here.
    let mut group_codes: Vec<i16> = Vec::new();
    for marker in &request.markers {
        for topic in marker.topics.iter().filter(|t| is_offsets(&t.name)) {
            for p in &topic.partition_indexes {
                let code = if allowed {
                    end_group_offsets(shard, *p, marker.producer_id.0, marker.transaction_result).await
                } else {
                    ResponseError::ClusterAuthorizationFailed.code()
                };
                group_codes.push(code);
            }
        }
    }
    let mut group_codes = group_codes.into_iter();
    let mut plan = Plan::new();
    for marker in &request.markers {
        let txn_marker = TxnMarker {
            producer_id: marker.producer_id.0,
            epoch: marker.producer_epoch,
            commit: marker.transaction_result,
            coordinator_epoch: marker.coordinator_epoch,
            origin: MarkerOrigin::Request,
        };
        for topic in marker.topics.iter().filter(|t| !is_offsets(&t.name)) {
            let meta = catalog.topic(topic.name.0.as_str());
            for p in &topic.partition_indexes {
                if !allowed {
                    plan.answer(ResponseError::ClusterAuthorizationFailed);
                    continue;
                }
                if INTERNAL_TOPICS.contains(&topic.name.0.as_str()) {
                    plan.answer(ResponseError::InvalidTopicException);
                    continue;
                }
                match meta.map(|m| m.locate(*p).map(|owner| (m, owner))) {
                    Some(Ok((m, owner))) => {
                        plan.send((owner, MarkerPart { topic: m.name.clone(), partition: *p, marker: txn_marker }))
                    }
                    Some(Err(code)) => plan.answer(code),
                    None => plan.answer(ResponseError::UnknownTopicOrPartition),
                }
            }
        }
    }
    let write = |shard: Rc<Shard>, markers| async move { shard.write_markers_local(markers).await };
    let mut outcomes = plan.scatter(shard, write).await;
    let mut results: Vec<WritableTxnMarkerResult> = Vec::with_capacity(request.markers.len());
    for marker in &request.markers {
        for topic in &marker.topics {
            for p in &topic.partition_indexes {
                if is_offsets(&topic.name) {
                    let code = group_codes.next().expect("a code for each offsets partition");
                    record(&mut results, marker.producer_id, &topic.name, *p, code);
                    continue;
                }
                let code = match outcomes.take() {
                    Outcome::Early(e) => e.code(),
                    // Nothing open for the producer there: nothing to end, as Kafka's marker changes nothing.
                    Outcome::Sent(Ok(_)) => 0,
                    Outcome::Sent(Err(e)) => route_error_code(&e).code(),
                };
                record(&mut results, marker.producer_id, &topic.name, *p, code);
            }
        }
    }
    WriteTxnMarkersResponse::default().with_markers(results)
}

fn is_offsets(topic: &TopicName) -> bool {
    topic.0.as_str() == INTERNAL_TOPICS[0]
}

/// Ends a producer's transactional offsets of the groups on offsets
/// partition `partition`, on the shard coordinating them: NOT_COORDINATOR
/// unless this broker holds that partition.
async fn end_group_offsets(shard: &Rc<Shard>, partition: i32, producer_id: i64, commit: bool) -> i16 {
    let Some(n) = usize::try_from(partition).ok().filter(|n| *n < crate::constants::OFFSETS_PARTITIONS) else {
        return ResponseError::UnknownTopicOrPartition.code();
    };
    let end = move |shard: Rc<Shard>| async move { shard.groups.txn_end_partition(n, producer_id, commit).await };
    match shard.invoke_on(n % shard.router.shards, end).await {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => e.code(),
        Err(e) => route_error_code(&e).code(),
    }
}

/// Adds one partition's code to the answer. Kafka answers one entry per
/// producer id and per topic in it, so markers of the same producer (and
/// topics named twice) share theirs; a partition named twice keeps its last code.
fn record(
    results: &mut Vec<WritableTxnMarkerResult>,
    producer_id: kafka_protocol::messages::ProducerId,
    topic: &TopicName,
    partition: i32,
    code: i16,
) {
    let at = match results.iter().position(|r| r.producer_id == producer_id) {
        Some(at) => at,
        None => {
            results.push(WritableTxnMarkerResult::default().with_producer_id(producer_id));
            results.len() - 1
        }
    };
    let topics = &mut results[at].topics;
    let at = match topics.iter().position(|t| &t.name == topic) {
        Some(at) => at,
        None => {
            topics.push(WritableTxnMarkerTopicResult::default().with_name(topic.clone()));
            topics.len() - 1
        }
    };
    let partitions = &mut topics[at].partitions;
    let result = WritableTxnMarkerPartitionResult::default().with_partition_index(partition).with_error_code(code);
    match partitions.iter_mut().find(|r| r.partition_index == partition) {
        Some(existing) => *existing = result,
        None => partitions.push(result),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ProducerId;
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn answers_are_grouped_by_producer_and_topic() {
        let topic = |name: &'static str| TopicName(StrBytes::from_static_str(name));
        let mut results = Vec::new();
        record(&mut results, ProducerId(1), &topic("a"), 0, 0);
        record(&mut results, ProducerId(2), &topic("a"), 0, 47);
        record(&mut results, ProducerId(1), &topic("b"), 3, 3);
        record(&mut results, ProducerId(1), &topic("a"), 1, 0);
        record(&mut results, ProducerId(1), &topic("a"), 0, 52);
        assert_eq!(results.len(), 2);
        let first = &results[0];
        assert_eq!(first.producer_id, ProducerId(1));
        assert_eq!(first.topics.iter().map(|t| t.name.0.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        let a: Vec<(i32, i16)> = first.topics[0].partitions.iter().map(|p| (p.partition_index, p.error_code)).collect();
        assert_eq!(a, [(0, 52), (1, 0)]);
        assert_eq!(results[1].topics[0].partitions[0].error_code, 47);
    }
}
