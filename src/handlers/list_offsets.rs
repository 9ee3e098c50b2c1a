//! ListOffsets (v1-10): earliest (-2), latest (-1), max timestamp (-3),
//! earliest local (-4, the same as earliest without tiered storage) and
//! lookups by timestamp through the time index, each on the owning shard.
//! v10's timeout bounds reads from remote storage, which Sluice has none of.

use std::rc::Rc;

use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::access::Access;
use super::errors::route_error_code;
use crate::protocol::ResponseError;
use crate::router::OffsetQuery;
use crate::security::acl::AclOperation;
use crate::shard::gather::{Outcome, Plan};
use crate::shard::Shard;
use crate::storage::log::LEADER_EPOCH;

use crate::protocol::offset_spec::{EARLIEST, EARLIEST_LOCAL, LATEST, MAX_TIMESTAMP};
use crate::server::session::RequestContext;

/// Lowest version that may ask for each special timestamp.
fn special_supported(timestamp: i64, version: i16) -> bool {
    match timestamp {
        MAX_TIMESTAMP => version >= 7,
        EARLIEST_LOCAL => version >= 8,
        t => t >= 0 || t == LATEST || t == EARLIEST,
    }
}

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let version = ctx.version();
    let catalog = shard.catalog();
    let access = Access::of(shard, ctx);
    let mut plan = Plan::new();
    for topic in &request.topics {
        let meta = catalog.topic(topic.name.0.as_str());
        let described = access.topic(AclOperation::Describe, topic.name.0.as_str());
        for p in &topic.partitions {
            let early = |code: ResponseError| {
                ListOffsetsPartitionResponse::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code.code())
                    .with_timestamp(-1)
                    .with_offset(-1)
            };
            if !described {
                plan.answer(early(ResponseError::TopicAuthorizationFailed));
                continue;
            }
            let (meta, owner) = match meta.map(|m| m.locate(p.partition_index).map(|o| (m, o))) {
                Some(Ok(found)) => found,
                Some(Err(code)) => {
                    plan.answer(early(code));
                    continue;
                }
                None => {
                    plan.answer(early(ResponseError::UnknownTopicOrPartition));
                    continue;
                }
            };
            if let Err(code) =
                super::check_leader_epoch(p.current_leader_epoch, super::leader_epoch(shard, meta, p.partition_index))
            {
                plan.answer(early(code));
                continue;
            }
            if !special_supported(p.timestamp, version) {
                plan.answer(early(ResponseError::UnsupportedVersion));
                continue;
            }
            plan.send((
                owner,
                OffsetQuery {
                    topic: meta.name.clone(),
                    partition: p.partition_index,
                    timestamp: p.timestamp,
                    committed: request.isolation_level == 1,
                },
            ));
        }
    }
    let lookup = |shard: Rc<Shard>, queries| async move { shard.list_offsets_local(queries).await };
    let mut outcomes = plan.scatter(shard, lookup).await;
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| match outcomes.take() {
                    Outcome::Early(early) => early,
                    Outcome::Sent(answer) => {
                        let base = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                        match answer {
                            Ok(Some((timestamp, offset))) => {
                                let base = base.with_timestamp(timestamp).with_offset(offset);
                                if version >= 4 {
                                    let meta = catalog.topic(topic.name.0.as_str());
                                    base.with_leader_epoch(
                                        meta.map_or(LEADER_EPOCH, |m| super::leader_epoch(shard, m, p.partition_index)),
                                    )
                                } else {
                                    base
                                }
                            }
                            Ok(None) => base.with_timestamp(-1).with_offset(-1),
                            Err(e) => {
                                base.with_error_code(route_error_code(&e).code()).with_timestamp(-1).with_offset(-1)
                            }
                        }
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(topic.name.clone()).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
