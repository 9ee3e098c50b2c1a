//! OffsetDelete (v0): a group's committed offsets for topics it does not consume.

use std::rc::Rc;

use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::access::Access;
use crate::protocol::{ResponseError, TopicPartition};
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::gather::{Outcome, Plan};
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group_id = request.group_id.0.to_string();
    let access = Access::of(shard, ctx);
    if !access.group(AclOperation::Delete, &group_id) {
        return OffsetDeleteResponse::default().with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let catalog = shard.catalog();
    let mut plan = Plan::new();
    for topic in &request.topics {
        let meta = catalog.topic(topic.name.0.as_str());
        let readable = access.topic(AclOperation::Read, topic.name.0.as_str());
        for p in &topic.partitions {
            if !readable {
                plan.answer(ResponseError::TopicAuthorizationFailed);
                continue;
            }
            match meta.filter(|m| m.has_partition(p.partition_index)) {
                Some(_) => plan.send(TopicPartition::new(topic.name.0.as_str(), p.partition_index)),
                None => plan.answer(ResponseError::UnknownTopicOrPartition),
            }
        }
    }
    let partitions = plan.sent().to_vec();
    let id = group_id.clone();
    let delete = move |shard: Rc<Shard>| async move { shard.groups.delete_offsets(&id, partitions).await };
    let results = match shard.on_group(&group_id, delete).await {
        Ok(Ok(results)) => results,
        Ok(Err(code)) => return OffsetDeleteResponse::default().with_error_code(code.code()),
        Err(e) => return OffsetDeleteResponse::default().with_error_code(super::coordinator_error(&e).code()),
    };
    let mut outcomes = plan.finish(results, || Err(ResponseError::UnknownServerError));
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let code = match outcomes.take() {
                        Outcome::Early(code) | Outcome::Sent(Err(code)) => code.code(),
                        Outcome::Sent(Ok(())) => 0,
                    };
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetDeleteResponseTopic::default().with_name(topic.name.clone()).with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
