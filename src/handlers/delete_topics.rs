//! DeleteTopics (v1-6), by name or (v6) by topic id, through the controller.

use std::rc::Rc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::access::Access;
use super::quota;
use crate::metadata::controller::TopicRef;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let refs: Vec<TopicRef> = if ctx.version() >= 6 {
        request
            .topics
            .iter()
            .map(|t| match &t.name {
                Some(name) => TopicRef::Name(name.0.to_string()),
                None => TopicRef::Id(t.topic_id),
            })
            .collect()
    } else {
        request.topic_names.iter().map(|n| TopicRef::Name(n.0.to_string())).collect()
    };
    // DELETE on each topic; a topic named by id that the principal may not
    // even describe is answered as unknown, so that its name does not leak.
    // controller_mutation_rate counts the partitions deleted (v5+ refuses past it).
    let access = Access::of(shard, ctx);
    let catalog = shard.catalog();
    let mut throttle_ms = 0u64;
    let denied: Vec<Option<ResponseError>> = refs
        .iter()
        .map(|r| {
            let name = match r {
                TopicRef::Name(name) => name.clone(),
                TopicRef::Id(id) => match catalog.topic_by_id(id) {
                    Some(topic) if !access.topic(AclOperation::Describe, &topic.name) => {
                        return Some(ResponseError::UnknownTopicId)
                    }
                    Some(topic) => topic.name.to_string(),
                    None => return None,
                },
            };
            if !access.topic(AclOperation::Delete, &name) {
                return Some(ResponseError::TopicAuthorizationFailed);
            }
            let partitions = catalog.topic(&name).map_or(0, |t| t.partitions()) as u32;
            if partitions == 0 {
                return None;
            }
            quota::mutations_verdict(shard, ctx, partitions, ctx.version() >= 5, &mut throttle_ms)
        })
        .collect();
    let topics: Vec<TopicRef> = refs.iter().zip(&denied).filter(|(_, d)| d.is_none()).map(|(r, _)| r.clone()).collect();
    let count = topics.len();
    let mut answers = if topics.is_empty() {
        Vec::new()
    } else {
        let delete = |shard: Rc<Shard>| async move {
            if shard.config.cluster.is_some() {
                return crate::cluster::topics::delete_topics(&shard, topics).await;
            }
            shard.controller().delete_topics(&shard.env(), topics).await
        };
        match shard.on_controller(delete).await {
            Ok(results) => results,
            Err(e) => (0..count).map(|_| Err((ResponseError::UnknownServerError, e.to_string()))).collect(),
        }
    }
    .into_iter();
    let results: Vec<_> = denied
        .iter()
        .map(|d| match d {
            Some(code) => Err((*code, code.to_string())),
            None => answers.next().expect("one answer per topic sent"),
        })
        .collect();
    let responses = refs
        .iter()
        .zip(results)
        .map(|(r, result)| {
            let (name, id) = match (r, &result) {
                (_, Ok(topic)) => (Some(topic.name.to_string()), topic.id),
                (TopicRef::Name(n), Err(_)) => (Some(n.clone()), Uuid::nil()),
                (TopicRef::Id(id), Err(_)) => (None, *id),
            };
            let entry = DeletableTopicResult::default()
                .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
                .with_topic_id(id);
            match result {
                Ok(topic) => {
                    tracing::info!(topic = %topic.name, "topic deleted");
                    entry
                }
                Err((code, message)) => {
                    entry.with_error_code(code.code()).with_error_message(Some(StrBytes::from_string(message)))
                }
            }
        })
        .collect();
    DeleteTopicsResponse::default()
        .with_responses(responses)
        .with_throttle_time_ms(throttle_ms.min(i32::MAX as u64) as i32)
}
