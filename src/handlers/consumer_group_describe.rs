//! ConsumerGroupDescribe (v0-1, KIP-848): a consumer group's epochs,
//! assignor and members with their subscriptions and assignments. A classic
//! or unknown group is GROUP_ID_NOT_FOUND, as in Kafka.

use std::rc::Rc;

use kafka_protocol::messages::consumer_group_describe_response::{Assignment, DescribedGroup, Member, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::access::Access;
use crate::group::consumer::ConsumerGroupDescription;
use crate::protocol::ResponseError;
use crate::security::acl::{AclOperation, ResourceType};
use crate::server::session::RequestContext;
use crate::shard::Shard;

fn s(v: String) -> StrBytes {
    StrBytes::from_string(v)
}

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    if !super::consumer_group_heartbeat::consumer_protocol_enabled(shard) {
        // Below group.version 1, as Kafka: every group answers UNSUPPORTED_VERSION.
        let unsupported = request.group_ids.iter().map(|id| {
            DescribedGroup::default()
                .with_group_id(id.clone())
                .with_error_code(ResponseError::UnsupportedVersion.code())
        });
        return ConsumerGroupDescribeResponse::default().with_groups(unsupported.collect());
    }
    let access = Access::of(shard, ctx);
    let mut groups = Vec::with_capacity(request.group_ids.len());
    for id in &request.group_ids {
        let group_id = id.0.to_string();
        let result = if !access.group(AclOperation::Describe, &group_id) {
            Err((ResponseError::GroupAuthorizationFailed, String::new()))
        } else {
            let gid = group_id.clone();
            let describe = move |shard: Rc<Shard>| async move {
                let catalog = shard.catalog();
                shard.groups.consumer_describe(&gid, &catalog)
            };
            shard
                .on_group(&group_id, describe)
                .await
                .unwrap_or_else(|e| Err((super::coordinator_error(&e), String::new())))
        };
        let described = DescribedGroup::default().with_group_id(id.clone());
        groups.push(match result {
            Ok(d) => {
                let mut g = described_group(described, d);
                if request.include_authorized_operations {
                    g.authorized_operations = access.operations(ResourceType::Group, &group_id);
                }
                g
            }
            Err((code, message)) => {
                described.with_error_code(code.code()).with_error_message((!message.is_empty()).then(|| s(message)))
            }
        });
    }
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}

fn assignment(partitions: Vec<(Uuid, String, Vec<i32>)>) -> Assignment {
    Assignment::default().with_topic_partitions(
        partitions
            .into_iter()
            .map(|(id, name, p)| {
                TopicPartitions::default().with_topic_id(id).with_topic_name(TopicName(s(name))).with_partitions(p)
            })
            .collect(),
    )
}

fn described_group(described: DescribedGroup, d: ConsumerGroupDescription) -> DescribedGroup {
    let members = d
        .members
        .into_iter()
        .map(|m| {
            Member::default()
                .with_member_id(s(m.member_id))
                .with_instance_id(m.instance_id.map(s))
                .with_rack_id(m.rack_id.map(s))
                .with_member_epoch(m.member_epoch)
                .with_client_id(s(m.client_id))
                .with_client_host(s(m.client_host))
                .with_subscribed_topic_names(m.topic_names.into_iter().map(|n| TopicName(s(n))).collect())
                .with_subscribed_topic_regex(m.topic_regex.map(s))
                .with_assignment(assignment(m.assignment))
                .with_target_assignment(assignment(m.target_assignment))
                // v1: 0 = a classic member, 1 = a consumer-protocol member.
                .with_member_type(if m.classic { 0 } else { 1 })
        })
        .collect();
    described
        .with_group_state(StrBytes::from_static_str(d.state))
        .with_group_epoch(d.group_epoch)
        .with_assignment_epoch(d.assignment_epoch)
        .with_assignor_name(StrBytes::from_static_str(d.assignor))
        .with_members(members)
}
