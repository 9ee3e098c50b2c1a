//! DeleteTopics (v1-6), by name or (v6) by topic id, through the controller.

use std::rc::Rc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, RequestHeader, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::metadata::controller::TopicRef;
use crate::protocol::ResponseError;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let refs: Vec<TopicRef> = if header.request_api_version >= 6 {
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
    let count = refs.len();
    let topics = refs.clone();
    let delete = |shard: Rc<Shard>| async move { shard.controller().delete_topics(&shard.env(), topics).await };
    let results = match shard.on_controller(delete).await {
        Ok(results) => results,
        Err(e) => (0..count).map(|_| Err((ResponseError::UnknownServerError, e.to_string()))).collect(),
    };
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
    DeleteTopicsResponse::default().with_responses(responses)
}
