//! DeleteRecords (v0-2): moves log start offsets forward on the owning
//! shards. On a replicated partition the answer waits (up to the request's
//! timeout) until the replicas on live brokers have moved theirs too, and
//! is the partition's low watermark, as in Kafka.

use std::rc::Rc;

use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::access::Access;
use super::errors::route_error_code;
use crate::protocol::ResponseError;
use crate::router::DeletePart;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::gather::{Outcome, Plan};
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let catalog = shard.catalog();
    let access = Access::of(shard, ctx);
    let mut plan = Plan::new();
    for topic in &request.topics {
        let meta = catalog.topic(topic.name.0.as_str());
        let allowed = access.topic(AclOperation::Delete, topic.name.0.as_str());
        for p in &topic.partitions {
            if !allowed {
                plan.answer(ResponseError::TopicAuthorizationFailed);
                continue;
            }
            if meta.is_some_and(|m| m.is_remote(p.partition_index)) {
                plan.answer(ResponseError::NotLeaderOrFollower);
                continue;
            }
            match meta.and_then(|m| m.owner(p.partition_index).map(|o| (m, o))) {
                // As Kafka's `Partition.deleteRecordsOnLeader`: a topic without `delete`
                // in its cleanup policy keeps its records.
                Some((meta, _)) if !meta.config.deletes() => plan.answer(ResponseError::PolicyViolation),
                Some((meta, owner)) => plan.send((
                    owner,
                    DeletePart { topic: meta.name.clone(), partition: p.partition_index, offset: p.offset },
                )),
                None => plan.answer(ResponseError::UnknownTopicOrPartition),
            }
        }
    }
    let timeout = std::time::Duration::from_millis(request.timeout_ms.max(0) as u64);
    let delete = move |shard: Rc<Shard>, parts| async move { shard.delete_records_local(parts, timeout).await };
    let mut outcomes = plan.scatter(shard, delete).await;
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let r = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
                    match outcomes.take() {
                        Outcome::Early(code) => r.with_error_code(code.code()).with_low_watermark(-1),
                        Outcome::Sent(Ok(low)) => r.with_low_watermark(low),
                        Outcome::Sent(Err(e)) => r.with_error_code(route_error_code(&e).code()).with_low_watermark(-1),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default().with_name(topic.name.clone()).with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
