//! LeaveGroup (v0-5, several members from v3): members leave and the group rebalances.

use std::rc::Rc;

use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::access::Access;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let version = ctx.version();
    let group_id = request.group_id.0.to_string();
    if !Access::of(shard, ctx).group(AclOperation::Read, &group_id) {
        return LeaveGroupResponse::default().with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    match shard.on_group(&group_id, move |shard| async move { shard.groups.leave(version, request).await }).await {
        Ok(response) => response,
        Err(e) => LeaveGroupResponse::default().with_error_code(super::coordinator_error(&e).code()),
    }
}
