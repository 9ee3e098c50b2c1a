//! DescribeQuorum (v0-2). On a cluster, the metadata quorum's leader, term,
//! committed index and voters (`cluster_quorum`). On a single node, this
//! node as the only voter and the leader of its own metadata quorum, as a single Kafka node in combined mode answers
//! (Kafka's brokers forward the request to the active controller; here the
//! node is that controller). DESCRIBE on the cluster is required.
//!
//! What is reported, and why it is true here:
//! - leader: this node, at epoch [`LEADER_EPOCH`]: there has never been an
//!   election, as for every partition this node leads;
//! - high watermark and the leader's log end offset: the catalog's version,
//!   the count of metadata changes committed so far (topics, partitions,
//!   configs, feature levels), each durable before it was answered, so the
//!   committed offset is the end of the log;
//! - voters: this node alone, with no directory id (a static quorum,
//!   `kraft.version` 0) and, from v2, every listener as an endpoint, since
//!   the node answers controller requests on each; observers: none on a
//!   single node; on a cluster's leader, the brokers that follow the quorum
//!   without voting.

use std::rc::Rc;

use kafka_protocol::messages::describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::access::Access;
use crate::clock::now_ms;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;
use crate::storage::log::LEADER_EPOCH;
use sluice_cluster::ClusterView;

/// The metadata log's topic and partition, the only quorum there is.
const METADATA_TOPIC: &str = "__cluster_metadata";
const METADATA_PARTITION: i32 = 0;

/// Whether the request asks for the metadata partition and nothing else (Kafka's `hasValidTopicPartition`).
fn asks_for_metadata(request: &DescribeQuorumRequest) -> bool {
    matches!(request.topics.as_slice(), [topic] if topic.topic_name.0.as_str() == METADATA_TOPIC
        && matches!(topic.partitions.as_slice(), [p] if p.partition_index == METADATA_PARTITION))
}

/// Each partition asked for, answered with `error`.
fn partitions_refused(request: &DescribeQuorumRequest, error: ResponseError) -> DescribeQuorumResponse {
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    PartitionData::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error.code())
                        .with_error_message(Some(StrBytes::from_string(error.to_string())))
                })
                .collect();
            TopicData::default().with_topic_name(t.topic_name.clone()).with_partitions(partitions)
        })
        .collect();
    DescribeQuorumResponse::default().with_topics(topics)
}

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: DescribeQuorumRequest) -> DescribeQuorumResponse {
    if !Access::of(shard, ctx).cluster(AclOperation::Describe) {
        let error = ResponseError::ClusterAuthorizationFailed;
        return DescribeQuorumResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(StrBytes::from_string(error.to_string())));
    }
    if !asks_for_metadata(&request) {
        return partitions_refused(&request, ResponseError::UnknownTopicOrPartition);
    }
    if let Some(view) = shard.cluster() {
        // A broker that does not lead the quorum asks the leader, which knows
        // every voter's and observer's progress (Kafka's brokers forward it
        // to the active controller); a forwarded request is answered where it lands.
        let forwarded = ctx.header.client_id.as_ref().is_some_and(|c| c.starts_with("replica-"));
        if let Some(leader) = view.leader.filter(|l| *l != view.node_id && !forwarded) {
            let version = ctx.version();
            match crate::peers::call(shard, leader, kafka_protocol::messages::ApiKey::DescribeQuorum, version, &request)
                .await
            {
                Ok(answer) => return answer,
                Err(e) => {
                    tracing::debug!(leader, error = %e, "DescribeQuorum not answered by the leader; answering here")
                }
            }
        }
        return cluster_quorum(&view, ctx.version());
    }
    let node = shard.config.node_id;
    let offset = shard.catalog().version as i64;
    // The leader's own fetch and catch-up times are now, as Kafka reports them.
    let now = now_ms();
    let voter = ReplicaState::default()
        .with_replica_id(BrokerId(node))
        .with_replica_directory_id(Uuid::nil())
        .with_log_end_offset(offset)
        .with_last_fetch_timestamp(now)
        .with_last_caught_up_timestamp(now);
    let partition = PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_leader_id(BrokerId(node))
        .with_leader_epoch(LEADER_EPOCH)
        .with_high_watermark(offset)
        .with_current_voters(vec![voter]);
    let topic = TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
        .with_partitions(vec![partition]);
    let response = DescribeQuorumResponse::default().with_topics(vec![topic]);
    if ctx.version() < 2 {
        return response;
    }
    let listeners = shard
        .config
        .listeners
        .iter()
        .map(|l| {
            Listener::default()
                .with_name(StrBytes::from_string(l.name.clone()))
                .with_host(StrBytes::from_string(l.advertised_host.clone()))
                .with_port(l.advertised_port)
        })
        .collect();
    response.with_nodes(vec![Node::default().with_node_id(BrokerId(node)).with_listeners(listeners)])
}

/// A cluster's quorum as this node knows it (the leader's, or this node's
/// when the leader does not answer). The leader knows every voter's
/// log end; another voter knows its own and reports the others' as -1
/// (unknown), with its committed index as the high watermark.
fn cluster_quorum(view: &ClusterView, version: i16) -> DescribeQuorumResponse {
    let leads = view.leader == Some(view.node_id);
    let now = now_ms();
    let voters = view
        .voters
        .iter()
        .map(|v| {
            let end = match v.matched {
                Some(matched) => matched as i64,
                None if v.node == view.node_id => view.last_index as i64,
                None => -1,
            };
            let known = leads || v.node == view.node_id;
            ReplicaState::default()
                .with_replica_id(BrokerId(v.node))
                .with_replica_directory_id(Uuid::nil())
                .with_log_end_offset(end)
                .with_last_fetch_timestamp(if known { now } else { -1 })
                .with_last_caught_up_timestamp(if known && end >= view.committed as i64 { now } else { -1 })
        })
        .collect();
    // Brokers that follow without voting, as the leader last heard them fetch.
    let observers = view
        .observers
        .iter()
        .map(|o| {
            let end = o.matched.map_or(-1, |m| m as i64);
            ReplicaState::default()
                .with_replica_id(BrokerId(o.node))
                .with_replica_directory_id(Uuid::nil())
                .with_log_end_offset(end)
                .with_last_fetch_timestamp(now)
                .with_last_caught_up_timestamp(if end >= view.committed as i64 { now } else { -1 })
        })
        .collect();
    let partition = PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_leader_id(BrokerId(view.leader.unwrap_or(-1)))
        .with_leader_epoch(view.term as i32)
        .with_high_watermark(view.committed as i64)
        .with_current_voters(voters)
        .with_observers(observers);
    let topic = TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
        .with_partitions(vec![partition]);
    let response = DescribeQuorumResponse::default().with_topics(vec![topic]);
    if version < 2 {
        return response;
    }
    let nodes = view
        .voters
        .iter()
        .map(|v| {
            let listener = Listener::default()
                .with_name(StrBytes::from_string(view.controller_listener.clone()))
                .with_host(StrBytes::from_string(v.host.clone()))
                .with_port(v.port);
            Node::default().with_node_id(BrokerId(v.node)).with_listeners(vec![listener])
        })
        .collect();
    response.with_nodes(nodes)
}
