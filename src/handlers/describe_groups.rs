//! DescribeGroups (v0-5): state, protocol, and members with their metadata and assignment.

use std::rc::Rc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use crate::protocol::ResponseError;
use crate::security::acl::{AclOperation, ResourceType};
use crate::server::session::RequestContext;
use crate::shard::Shard;

fn s(v: String) -> StrBytes {
    StrBytes::from_string(v)
}

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let version = ctx.version();
    let access = Access::of(shard, ctx);
    let mut groups = Vec::with_capacity(request.groups.len());
    for id in &request.groups {
        let described = DescribedGroup::default().with_group_id(id.clone());
        if !access.group(AclOperation::Describe, id.0.as_str()) {
            groups.push(described.with_error_code(ResponseError::GroupAuthorizationFailed.code()));
            continue;
        }
        let group_id = id.0.to_string();
        let describe = |shard: Rc<Shard>| async move { shard.groups.describe(&group_id) };
        groups.push(match shard.on_group(id.0.as_str(), describe).await {
            // Kafka describes a group it does not know as Dead, without an error (before v6).
            Ok(None) => described.with_group_state(StrBytes::from_static_str("Dead")),
            Ok(Some(d)) => described
                .with_group_state(StrBytes::from_static_str(d.state))
                .with_protocol_type(s(d.protocol_type))
                .with_protocol_data(s(d.protocol_name))
                .with_members(
                    d.members
                        .into_iter()
                        .map(|(member_id, instance_id, client_id, host, metadata, assignment)| {
                            DescribedGroupMember::default()
                                .with_member_id(s(member_id))
                                .with_group_instance_id(if version >= 4 { instance_id.map(s) } else { None })
                                .with_client_id(s(client_id))
                                .with_client_host(s(host))
                                .with_member_metadata(metadata)
                                .with_member_assignment(assignment)
                        })
                        .collect(),
                ),
            Err(e) => described.with_error_code(super::coordinator_error(&e).code()),
        });
    }
    if request.include_authorized_operations {
        for group in groups.iter_mut().filter(|g| g.error_code == 0) {
            group.authorized_operations = access.operations(ResourceType::Group, group.group_id.0.as_str());
        }
    }
    DescribeGroupsResponse::default().with_groups(groups)
}
