//! DescribeTopicPartitions (v0, KIP-966): topics and their partitions, a page
//! at a time, as Kafka's `DescribeTopicPartitionsRequestHandler` and its
//! metadata cache answer. Topics go in name order from the cursor on; a page
//! ends once `response_partition_limit` partitions (at most 2000) are listed,
//! with `next_cursor` naming the first partition left out. This node leads
//! every partition and is its only replica; the eligible leader replicas are
//! always empty (one replica never leaves the ISR).
//!
//! Named topics the principal may not DESCRIBE are answered
//! TOPIC_AUTHORIZATION_FAILED (after the others, without their id); an
//! all-topics request leaves them out. A cursor naming a topic outside the
//! list asked for, or a negative partition, makes the whole request
//! INVALID_REQUEST.

use std::collections::BTreeSet;
use std::rc::Rc;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::access::Access;
use super::Placements;
use crate::constants::DESCRIBE_TOPIC_PARTITIONS_PER_RESPONSE_MAX;
use crate::metadata::TopicMeta;
use crate::metadata::{validate_topic_name, Catalog, INTERNAL_TOPICS};
use crate::protocol::ResponseError;
use crate::security::acl::{AclOperation, ResourceType};
use crate::server::session::RequestContext;
use crate::shard::Shard;

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// A topic answered with an error and no partitions.
fn error_entry(name: &str, error: ResponseError, is_internal: bool) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic::default()
        .with_error_code(error.code())
        .with_name(Some(topic_name(name)))
        .with_topic_id(Uuid::nil())
        .with_is_internal(is_internal)
}

/// Partitions `first..end` of `topic`, where they are placed.
fn partitions(
    placements: &Placements,
    topic: &TopicMeta,
    first: i32,
    end: i32,
) -> Vec<DescribeTopicPartitionsResponsePartition> {
    let ids = |ids: &[i32]| ids.iter().map(|id| BrokerId(*id)).collect::<Vec<_>>();
    (first..end)
        .map(|p| {
            let placed = placements.partition(topic, p);
            let error = if placed.leader < 0 { ResponseError::LeaderNotAvailable.code() } else { 0 };
            DescribeTopicPartitionsResponsePartition::default()
                .with_error_code(error)
                .with_partition_index(p)
                .with_leader_id(BrokerId(placed.leader))
                .with_leader_epoch(placed.leader_epoch)
                .with_replica_nodes(ids(&placed.replicas))
                .with_isr_nodes(ids(&placed.isr))
                .with_eligible_leader_replicas(Some(Vec::new()))
                .with_last_known_elr(Some(Vec::new()))
                .with_offline_replicas(ids(&placed.offline))
        })
        .collect()
}

/// The answer to a request Kafka refuses whole: every topic asked for with
/// the error.
fn refused(request: &DescribeTopicPartitionsRequest, error: ResponseError) -> DescribeTopicPartitionsResponse {
    let topics = request.topics.iter().map(|t| error_entry(&t.name.0, error, false)).collect();
    DescribeTopicPartitionsResponse::default().with_topics(topics)
}

/// Why a topic the catalog does not hold is not described.
fn missing(name: &str) -> ResponseError {
    // Kafka's name rule does not refuse the internal topics' names.
    if validate_topic_name(name).is_err() && !INTERNAL_TOPICS.contains(&name) {
        ResponseError::InvalidTopicException
    } else {
        ResponseError::UnknownTopicOrPartition
    }
}

/// One page: what it lists (in name order), the denied topics it passed, and where the next starts.
struct Page {
    topics: Vec<DescribeTopicPartitionsResponseTopic>,
    denied: Vec<String>,
    next: Option<(String, i32)>,
}

/// Walks `names` in order as Kafka's metadata cache does. A topic is checked
/// for DESCRIBE only when the walk reaches it, so denied topics past the
/// page's end are reported by a later page, as in Kafka.
fn page(
    catalog: &Catalog,
    placements: &Placements,
    names: BTreeSet<String>,
    all: bool,
    cursor: Option<(&str, i32)>,
    limit: i32,
    described: impl Fn(&str) -> bool,
) -> Page {
    let mut page = Page { topics: Vec::new(), denied: Vec::new(), next: None };
    let mut remaining = limit;
    for name in names {
        if !described(&name) {
            if !all {
                page.denied.push(name);
            }
            continue;
        }
        if remaining == 0 {
            // The previous topics were listed whole: the next page starts here.
            page.next = Some((name, 0));
            break;
        }
        let first = match cursor {
            Some((topic, partition)) if topic == name => partition,
            _ => 0,
        };
        let Some(topic) = catalog.topic(&name) else {
            if !all {
                let error = missing(&name);
                page.topics.push(error_entry(&name, error, INTERNAL_TOPICS.contains(&name.as_str())));
            }
            continue;
        };
        let end = topic.partitions().min(first.saturating_add(remaining));
        let listed = partitions(placements, topic, first, end);
        remaining -= listed.len() as i32;
        page.topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(topic_name(&name)))
                .with_topic_id(topic.id)
                .with_is_internal(INTERNAL_TOPICS.contains(&name.as_str()))
                .with_partitions(listed),
        );
        if end < topic.partitions() {
            page.next = Some((name, end));
            break;
        }
    }
    page
}

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let catalog = shard.catalog();
    let all = request.topics.is_empty();
    let cursor = request.cursor.as_ref().map(|c| (c.topic_name.0.as_str(), c.partition_index));
    let from = cursor.map_or("", |(topic, _)| topic);
    let names: BTreeSet<String> = if all {
        catalog.topics.keys().filter(|n| n.as_ref() >= from).map(|n| n.to_string()).collect()
    } else {
        request.topics.iter().map(|t| t.name.0.to_string()).filter(|n| n.as_str() >= from).collect()
    };
    if let Some((topic, partition)) = cursor {
        if (!all && !names.contains(topic)) || partition < 0 {
            return refused(&request, ResponseError::InvalidRequest);
        }
    }
    let access = Access::of(shard, ctx);
    let limit = request.response_partition_limit.clamp(1, DESCRIBE_TOPIC_PARTITIONS_PER_RESPONSE_MAX);
    let described = |name: &str| access.topic(AclOperation::Describe, name);
    let Page { mut topics, denied, next } =
        page(&catalog, &Placements::of(shard), names, all, cursor, limit, described);
    for topic in &mut topics {
        if let Some(name) = &topic.name {
            topic.topic_authorized_operations = access.operations(ResourceType::Topic, name);
        }
    }
    topics.extend(denied.iter().map(|name| error_entry(name, ResponseError::TopicAuthorizationFailed, false)));
    let next_cursor = next
        .map(|(name, partition)| Cursor::default().with_topic_name(topic_name(&name)).with_partition_index(partition));
    DescribeTopicPartitionsResponse::default().with_topics(topics).with_next_cursor(next_cursor)
}
