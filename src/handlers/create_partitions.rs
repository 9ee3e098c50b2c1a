//! CreatePartitions (v0-3): grows a topic; new partitions go to the
//! least-loaded shards, through the controller.

use std::rc::Rc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use crate::metadata::controller::PartitionGrowth;
use crate::security::acl::AclOperation;
use crate::protocol::ResponseError;
use crate::shard::Shard;
use crate::server::session::RequestContext;

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    // ALTER on each topic.
    let access = Access::of(shard, ctx);
    let allowed: Vec<bool> = request.topics.iter().map(|t| access.topic(AclOperation::Alter, &t.name.0)).collect();
    let topics: Vec<PartitionGrowth> = request
        .topics
        .iter()
        .zip(&allowed)
        .filter(|(_, allowed)| **allowed)
        .map(|(t, _)| {
            let assignments =
                t.assignments.as_ref().map(|a| a.iter().map(|x| x.broker_ids.iter().map(|b| b.0).collect()).collect());
            (t.name.0.to_string(), t.count, assignments)
        })
        .collect();
    let count = topics.len();
    let validate_only = request.validate_only;
    let grow = move |shard: Rc<Shard>| async move {
        shard.controller().create_partitions(&shard.env(), topics, validate_only).await
    };
    let mut answers = if count == 0 {
        Vec::new()
    } else {
        match shard.on_controller(grow).await {
            Ok(results) => results,
            Err(e) => (0..count).map(|_| Err((ResponseError::UnknownServerError, e.to_string()))).collect(),
        }
    }
    .into_iter();
    let results = request
        .topics
        .iter()
        .zip(allowed)
        .map(|(t, allowed)| {
            let result = if allowed {
                answers.next().expect("one answer per topic sent")
            } else {
                Err((ResponseError::TopicAuthorizationFailed, "Authorization failed.".to_string()))
            };
            let r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            match result {
                Ok(()) => r,
                Err((code, message)) => {
                    r.with_error_code(code.code()).with_error_message(Some(StrBytes::from_string(message)))
                }
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
