//! Metadata (v0-13; v13's top-level error code stays NONE: this broker
//! never asks a client to rebootstrap): this broker as the only node and controller, topics
//! with ids, every partition led by this node. Auto-creates topics when
//! `auto.create.topics.enable` and the request allow it, and the principal
//! may create them. Topics the principal may not DESCRIBE are left out of an
//! all-topics answer and answered TOPIC_AUTHORIZATION_FAILED when named.

use std::rc::Rc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::access::{Access, CLUSTER_NAME};
use super::{resolve_topics, Placements};
use crate::metadata::{validate_topic_name, TopicMeta, INTERNAL_TOPICS};
use crate::protocol::ResponseError;
use crate::security::acl::{AclOperation, ResourceType};
use crate::server::session::RequestContext;
use crate::shard::Shard;

fn topic_entry(placements: &Placements, topic: &TopicMeta) -> MetadataResponseTopic {
    let ids = |ids: &[i32]| ids.iter().map(|id| BrokerId(*id)).collect::<Vec<_>>();
    let partitions = (0..topic.partitions())
        .map(|p| {
            let placed = placements.partition(topic, p);
            let error = if placed.leader < 0 { ResponseError::LeaderNotAvailable.code() } else { 0 };
            MetadataResponsePartition::default()
                .with_error_code(error)
                .with_partition_index(p)
                .with_leader_id(BrokerId(placed.leader))
                .with_leader_epoch(placed.leader_epoch)
                .with_replica_nodes(ids(&placed.replicas))
                .with_isr_nodes(ids(&placed.isr))
                .with_offline_replicas(ids(&placed.offline))
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.to_string()))))
        .with_topic_id(topic.id)
        .with_is_internal(crate::metadata::INTERNAL_TOPICS.contains(&topic.name.as_ref()))
        .with_partitions(partitions)
}

fn error_entry(name: Option<&str>, id: Uuid, error: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name.map(|n| TopicName(StrBytes::from_string(n.to_string()))))
        .with_topic_id(id)
        .with_error_code(error.code())
}

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: MetadataRequest) -> MetadataResponse {
    let placements = Placements::of(shard);
    let version = ctx.version();
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let all = match &request.topics {
        None => true,
        Some(t) => t.is_empty() && version == 0,
    };
    let access = Access::of(shard, ctx);
    let described = |name: &str| access.topic(AclOperation::Describe, name);
    let mut topics: Vec<MetadataResponseTopic> = if all {
        shard.catalog().topics.values().filter(|t| described(&t.name)).map(|t| topic_entry(&placements, t)).collect()
    } else {
        let wanted = request.topics.unwrap_or_default();
        let allow = version < 4 || request.allow_auto_topic_creation;
        let names: Vec<String> = wanted
            .iter()
            .filter_map(|t| t.name.as_ref())
            .map(|n| n.0.to_string())
            .filter(|n| validate_topic_name(n).is_ok() && described(n))
            .collect();
        let resolved = resolve_topics(shard, &names, allow.then_some(&access)).await;
        let catalog = shard.catalog();
        wanted
            .iter()
            .map(|t| match &t.name {
                // Named, an internal topic is described as any other (never auto-created).
                Some(name) if INTERNAL_TOPICS.contains(&name.0.as_str()) => match catalog.topic(name) {
                    _ if !described(name) => {
                        error_entry(Some(name), Uuid::nil(), ResponseError::TopicAuthorizationFailed)
                    }
                    Some(topic) => topic_entry(&placements, topic),
                    None => error_entry(Some(name), Uuid::nil(), ResponseError::UnknownTopicOrPartition),
                },
                Some(name) if validate_topic_name(name).is_err() => {
                    error_entry(Some(name), Uuid::nil(), ResponseError::InvalidTopicException)
                }
                Some(name) if !described(name) => {
                    error_entry(Some(name), Uuid::nil(), ResponseError::TopicAuthorizationFailed)
                }
                Some(name) => match resolved.get(name.0.as_str()) {
                    Some(Ok(topic)) => topic_entry(&placements, topic),
                    Some(Err((code, _))) => error_entry(Some(name), Uuid::nil(), *code),
                    None => error_entry(Some(name), Uuid::nil(), ResponseError::UnknownTopicOrPartition),
                },
                None => match catalog.topic_by_id(&t.topic_id) {
                    // The name is not given away to whoever may not see the topic.
                    Some(topic) if !described(&topic.name) => {
                        error_entry(None, t.topic_id, ResponseError::TopicAuthorizationFailed)
                    }
                    Some(topic) => topic_entry(&placements, topic),
                    None => error_entry(None, t.topic_id, ResponseError::UnknownTopicId),
                },
            })
            .collect()
    };
    let brokers = super::brokers(shard, ctx, false)
        .into_iter()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(b.host))
                .with_port(b.port as i32)
                .with_rack(b.rack.map(StrBytes::from_string))
        })
        .collect();
    if request.include_topic_authorized_operations {
        for topic in topics.iter_mut().filter(|t| t.error_code == 0) {
            if let Some(name) = &topic.name {
                topic.topic_authorized_operations = access.operations(ResourceType::Topic, name);
            }
        }
    }
    let cluster_operations = if request.include_cluster_authorized_operations {
        access.operations(ResourceType::Cluster, CLUSTER_NAME)
    } else {
        i32::MIN
    };
    MetadataResponse::default()
        .with_cluster_authorized_operations(cluster_operations)
        .with_brokers(brokers)
        .with_cluster_id(Some(StrBytes::from_string(shard.cluster_id.to_string())))
        .with_controller_id(BrokerId(super::controller_id(shard)))
        .with_topics(topics)
}
