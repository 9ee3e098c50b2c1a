//! OffsetForLeaderEpoch (v2-4): every partition has had one leader epoch (0)
//! since it was created, so epoch 0 ends at the log end offset.

use std::rc::Rc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

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
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let catalog = shard.catalog();
    let access = Access::of(shard, ctx);
    let mut plan = Plan::new();
    for topic in &request.topics {
        let meta = catalog.topic(topic.topic.0.as_str());
        let described = access.topic(AclOperation::Describe, topic.topic.0.as_str());
        for p in &topic.partitions {
            let early = |code: ResponseError| {
                EpochEndOffset::default()
                    .with_partition(p.partition)
                    .with_error_code(code.code())
                    .with_leader_epoch(-1)
                    .with_end_offset(-1)
            };
            if !described {
                plan.answer(early(ResponseError::TopicAuthorizationFailed));
                continue;
            }
            let (meta, owner) = match meta.map(|m| m.locate(p.partition).map(|o| (m, o))) {
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
                super::check_leader_epoch(p.current_leader_epoch, super::leader_epoch(shard, meta, p.partition))
            {
                plan.answer(early(code));
                continue;
            }
            plan.send((owner, (meta.name.clone(), p.partition, p.leader_epoch)));
        }
    }
    let mut outcomes = plan.scatter(shard, |shard, parts| async move { shard.epoch_ends_local(parts).await }).await;
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
                        let base = EpochEndOffset::default().with_partition(p.partition);
                        match answer {
                            Ok(end) => base.with_leader_epoch(end.epoch).with_end_offset(end.end_offset),
                            Err(e) => base
                                .with_error_code(route_error_code(&e).code())
                                .with_leader_epoch(-1)
                                .with_end_offset(-1),
                        }
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(topic.topic.clone()).with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
