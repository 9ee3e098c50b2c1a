//! CreatePartitions (v0-3): grows a topic; new partitions go to the
//! least-loaded shards, through the controller.

use std::rc::Rc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use super::quota;
use crate::metadata::controller::PartitionGrowth;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    // ALTER on each topic, then controller_mutation_rate for the partitions added (v3+ refuses past it).
    let access = Access::of(shard, ctx);
    let catalog = shard.catalog();
    let mut throttle_ms = 0u64;
    let verdicts: Vec<Option<ResponseError>> = request
        .topics
        .iter()
        .map(|t| {
            if !access.topic(AclOperation::Alter, &t.name.0) {
                return Some(ResponseError::TopicAuthorizationFailed);
            }
            let current = catalog.topic(&t.name.0).map_or(0, |m| m.partitions());
            let added = (t.count - current).max(0) as u32;
            if request.validate_only || added == 0 {
                return None;
            }
            quota::mutations_verdict(shard, ctx, added, ctx.version() >= 3, &mut throttle_ms)
        })
        .collect();
    let allowed: Vec<bool> = verdicts.iter().map(Option::is_none).collect();
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
        if shard.config.cluster.is_some() {
            return crate::cluster::topics::create_partitions(&shard, topics, validate_only).await;
        }
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
        .zip(verdicts)
        .map(|(t, verdict)| {
            let result = match verdict {
                None => answers.next().expect("one answer per topic sent"),
                Some(code) => Err((code, code.to_string())),
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
    CreatePartitionsResponse::default()
        .with_results(results)
        .with_throttle_time_ms(throttle_ms.min(i32::MAX as u64) as i32)
}
