//! CreateTopics (v2-7), through the controller on shard 0.

use std::collections::HashMap;
use std::rc::Rc;

use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use super::create_topics;
use super::quota;
use crate::metadata::controller::TopicSpec;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

/// `config_source` values of Kafka's DescribeConfigs.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in &request.topics {
        *counts.entry(t.name.0.as_str()).or_default() += 1;
    }
    // CREATE on the cluster, or on the topic (literal or by prefix).
    let access = Access::of(shard, ctx);
    let cluster_create = access.cluster(AclOperation::Create);
    let creatable = |name: &str| cluster_create || access.topic(AclOperation::Create, name);
    // controller_mutation_rate: each new partition counts; v6+ refuses past the quota.
    let mut throttle_ms = 0u64;
    let mut throttled: HashMap<&str, bool> = HashMap::new();
    for t in request.topics.iter().filter(|t| counts[t.name.0.as_str()] == 1 && creatable(t.name.0.as_str())) {
        let partitions = if !t.assignments.is_empty() {
            t.assignments.len() as u32
        } else if t.num_partitions > 0 {
            t.num_partitions as u32
        } else {
            shard.config.num_partitions.max(1) as u32
        };
        let refused = !request.validate_only
            && quota::mutations_verdict(shard, ctx, partitions, ctx.version() >= 6, &mut throttle_ms).is_some();
        throttled.insert(t.name.0.as_str(), refused);
    }
    let specs: Vec<TopicSpec> = request
        .topics
        .iter()
        .filter(|t| throttled.get(t.name.0.as_str()) == Some(&false))
        .map(|t| TopicSpec {
            name: t.name.0.to_string(),
            num_partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            assignments: t
                .assignments
                .iter()
                .map(|a| (a.partition_index, a.broker_ids.iter().map(|b| b.0).collect()))
                .collect(),
            configs: t.configs.iter().map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string()))).collect(),
        })
        .collect();
    let mut results = create_topics(shard, specs, request.validate_only).await.into_iter();

    let topics = request
        .topics
        .iter()
        .map(|t| {
            let result = CreatableTopicResult::default().with_name(t.name.clone());
            if counts[t.name.0.as_str()] > 1 {
                return result.with_error_code(ResponseError::InvalidRequest.code()).with_error_message(Some(
                    StrBytes::from_string(format!("Found multiple entries for {}", t.name.0)),
                ));
            }
            if !creatable(t.name.0.as_str()) {
                return result
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_error_message(Some(StrBytes::from_static_str("Authorization failed.")));
            }
            if throttled.get(t.name.0.as_str()) == Some(&true) {
                return result
                    .with_error_code(ResponseError::ThrottlingQuotaExceeded.code())
                    .with_error_message(Some(StrBytes::from_static_str("The throttling quota has been exceeded.")));
            }
            match results.next().expect("one result per unique topic") {
                Ok(topic) if !access.topic(AclOperation::DescribeConfigs, &topic.name) => result
                    .with_topic_id(topic.id)
                    .with_num_partitions(topic.partitions())
                    .with_replication_factor(1)
                    .with_topic_config_error_code(ResponseError::TopicAuthorizationFailed.code()),
                Ok(topic) => {
                    let configs = [
                        ("segment.bytes", topic.config.segment_bytes.to_string()),
                        ("max.message.bytes", topic.config.max_message_bytes.to_string()),
                        ("retention.ms", topic.config.retention_ms.to_string()),
                        ("cleanup.policy", topic.config.cleanup_policy.clone()),
                    ]
                    .into_iter()
                    .map(|(name, value)| {
                        let source =
                            if topic.config.overrides.contains_key(name) { SOURCE_TOPIC } else { SOURCE_DEFAULT };
                        CreatableTopicConfigs::default()
                            .with_name(StrBytes::from_static_str(name))
                            .with_value(Some(StrBytes::from_string(value)))
                            .with_config_source(source)
                    })
                    .collect();
                    result
                        .with_topic_id(topic.id)
                        .with_num_partitions(topic.partitions())
                        .with_replication_factor(1)
                        .with_configs(Some(configs))
                }
                Err((code, message)) => {
                    result.with_error_code(code.code()).with_error_message(Some(StrBytes::from_string(message)))
                }
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics).with_throttle_time_ms(throttle_ms.min(i32::MAX as u64) as i32)
}
