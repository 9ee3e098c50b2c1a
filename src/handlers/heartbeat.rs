//! Heartbeat (v0-4): keeps a member's session alive; tells it when to rejoin.

use std::rc::Rc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::access::Access;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: HeartbeatRequest) -> HeartbeatResponse {
    let group_id = request.group_id.0.to_string();
    if !Access::of(shard, ctx).group(AclOperation::Read, &group_id) {
        return HeartbeatResponse::default().with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    match shard.on_group(&group_id, |shard| async move { shard.groups.heartbeat(request) }).await {
        Ok(response) => response,
        Err(e) => HeartbeatResponse::default().with_error_code(super::coordinator_error(&e).code()),
    }
}
