//! ListPartitionReassignments (v0), `kafka-reassign-partitions.sh --verify`
//! and `--list`: the partitions being moved, each with its replicas (the
//! target's and those still to remove) and the replicas being added and
//! removed. Only reassignments in progress are listed, as in Kafka; a
//! single node never has one.

use std::rc::Rc;

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let response = ListPartitionReassignmentsResponse::default();
    if let Err(e) = Access::of(shard, ctx).require_cluster(AclOperation::Describe) {
        return response.with_error_code(e.code());
    }
    let Some(view) = shard.cluster() else { return response };
    let asked: Vec<(String, Option<Vec<i32>>)> = match request.topics {
        Some(topics) => topics.into_iter().map(|t| (t.name.0.to_string(), Some(t.partition_indexes))).collect(),
        None => view.topics.keys().map(|name| (name.clone(), None)).collect(),
    };
    let ids = |r: &[i32]| r.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
    let mut topics = Vec::new();
    for (name, partitions) in asked {
        let Some(topic) = view.topics.get(&name) else { continue };
        let ongoing: Vec<OngoingPartitionReassignment> = topic
            .partitions
            .iter()
            .enumerate()
            .filter(|(i, p)| p.reassigning() && partitions.as_ref().is_none_or(|asked| asked.contains(&(*i as i32))))
            .map(|(i, p)| {
                OngoingPartitionReassignment::default()
                    .with_partition_index(i as i32)
                    .with_replicas(ids(&p.replicas))
                    .with_adding_replicas(ids(&p.adding))
                    .with_removing_replicas(ids(&p.removing))
            })
            .collect();
        if !ongoing.is_empty() {
            topics.push(
                OngoingTopicReassignment::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(ongoing),
            );
        }
    }
    response.with_topics(topics)
}
