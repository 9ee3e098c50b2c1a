//! DescribeProducers (v0): each partition's active producers as its owner
//! tracks them (epoch, last sequence, open transaction's first offset).

use std::rc::Rc;

use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use super::access::Access;
use super::errors::route_error_code;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::gather::{Outcome, Plan};
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let catalog = shard.catalog();
    let access = Access::of(shard, ctx);
    let mut plan = Plan::new();
    for topic in &request.topics {
        let meta = catalog.topic(topic.name.0.as_str());
        let readable = access.topic(AclOperation::Read, topic.name.0.as_str());
        for p in &topic.partition_indexes {
            if !readable {
                plan.answer(ResponseError::TopicAuthorizationFailed);
                continue;
            }
            match meta.map(|m| m.locate(*p).map(|owner| (m, owner))) {
                Some(Ok((m, owner))) => plan.send((owner, (m.name.clone(), *p))),
                Some(Err(code)) => plan.answer(code),
                None => plan.answer(ResponseError::UnknownTopicOrPartition),
            }
        }
    }
    let describe = |shard: Rc<Shard>, parts| async move { shard.describe_producers_local(parts).await };
    let mut outcomes = plan.scatter(shard, describe).await;
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partition_indexes
                .iter()
                .map(|p| {
                    let out = PartitionResponse::default().with_partition_index(*p);
                    let answer = match outcomes.take() {
                        Outcome::Early(code) => Err(code),
                        Outcome::Sent(answer) => answer.map_err(|e| route_error_code(&e)),
                    };
                    match answer {
                        Err(e) => out.with_error_code(e.code()),
                        Ok(producers) => out.with_active_producers(
                            producers
                                .iter()
                                .map(|p| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(p.producer_id))
                                        .with_producer_epoch(p.epoch as i32)
                                        .with_last_sequence(p.last_sequence)
                                        .with_last_timestamp(p.last_timestamp)
                                        .with_coordinator_epoch(p.coordinator_epoch)
                                        .with_current_txn_start_offset(p.txn_first_offset)
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
