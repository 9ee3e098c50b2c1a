//! DescribeProducers (v0): each partition's active producers as its owner
//! tracks them (epoch, last sequence, open transaction's first offset).

use std::rc::Rc;

use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId, RequestHeader};

use super::errors::route_error_code;
use super::scatter;
use crate::protocol::ResponseError;
use crate::router::ShardRequest;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    _header: &RequestHeader,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let catalog = shard.catalog();
    // Per partition: an early error, or an index into the routed work.
    let mut slots: Vec<Vec<Result<usize, ResponseError>>> = Vec::with_capacity(request.topics.len());
    let mut work = Vec::new();
    for topic in &request.topics {
        let meta = catalog.topic(topic.name.0.as_str());
        slots.push(
            topic
                .partition_indexes
                .iter()
                .map(|p| match meta.and_then(|m| m.owner(*p).map(|owner| (m, owner))) {
                    None => Err(ResponseError::UnknownTopicOrPartition),
                    Some((m, owner)) => {
                        work.push((owner, (m.name.clone(), *p)));
                        Ok(work.len() - 1)
                    }
                })
                .collect(),
        );
    }
    let answers = scatter(shard, work, |parts, reply| ShardRequest::DescribeProducers { parts, reply }).await;
    let topics = request
        .topics
        .iter()
        .zip(slots)
        .map(|(topic, topic_slots)| {
            let partitions = topic
                .partition_indexes
                .iter()
                .zip(topic_slots)
                .map(|(p, slot)| {
                    let out = PartitionResponse::default().with_partition_index(*p);
                    let answer = slot.and_then(|i| answers[i].as_ref().map_err(route_error_code));
                    match answer {
                        Err(e) => out.with_error_code(e.code()),
                        Ok(producers) => out.with_active_producers(
                            producers
                                .iter()
                                .map(|(id, epoch, last_seq, last_ts, coordinator_epoch, txn_start)| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(*id))
                                        .with_producer_epoch(*epoch as i32)
                                        .with_last_sequence(*last_seq)
                                        .with_last_timestamp(*last_ts)
                                        .with_coordinator_epoch(*coordinator_epoch)
                                        .with_current_txn_start_offset(*txn_start)
                                })
                                .collect(),
                        ),
                    }
                })
                .collect();
            TopicResponse::default().with_name(topic.name.clone()).with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
