//! SyncGroup (v0-5): the leader's assignment is persisted, then every member gets its share.

use std::rc::Rc;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::access::Access;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: SyncGroupRequest) -> SyncGroupResponse {
    let version = ctx.version();
    let group_id = request.group_id.0.to_string();
    if !Access::of(shard, ctx).group(AclOperation::Read, &group_id) {
        return SyncGroupResponse::default().with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let sync = move |shard: Rc<Shard>| async move {
        let catalog = shard.catalog();
        shard.groups.sync(version, request, &catalog).await
    };
    let mut response = match shard.on_group(&group_id, sync).await {
        Ok(response) => response,
        Err(e) => SyncGroupResponse::default().with_error_code(super::coordinator_error(&e).code()),
    };
    if version < 5 {
        response.protocol_type = None;
        response.protocol_name = None;
    }
    response
}
