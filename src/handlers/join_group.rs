//! JoinGroup (v0-9), on the shard coordinating the group; the answer waits
//! for the rebalance to complete.

use std::rc::Rc;

use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: JoinGroupRequest) -> JoinGroupResponse {
    let version = ctx.version();
    let group_id = request.group_id.0.to_string();
    let member_id = request.member_id.clone();
    if !Access::of(shard, ctx).group(AclOperation::Read, &group_id) {
        return JoinGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code())
            .with_generation_id(-1)
            .with_member_id(member_id)
            .with_protocol_name((version < 7).then(StrBytes::default));
    }
    let client_id = ctx.header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default();
    let client_host = format!("/{}", ctx.session.host);
    let join = move |shard: Rc<Shard>| async move {
        let catalog = shard.catalog();
        shard.groups.join(version, request, client_host, client_id, &catalog).await
    };
    let mut response = match shard.on_group(&group_id, join).await {
        Ok(response) => response,
        Err(e) => JoinGroupResponse::default()
            .with_error_code(super::coordinator_error(&e).code())
            .with_generation_id(-1)
            .with_member_id(member_id),
    };
    // Before v7 the protocol name is not nullable.
    if version < 7 && response.protocol_name.is_none() {
        response.protocol_name = Some(StrBytes::default());
    }
    if version < 7 {
        response.protocol_type = None;
    }
    response
}
