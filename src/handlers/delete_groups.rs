//! DeleteGroups (v0-2): an empty group and its committed offsets are removed.

use std::rc::Rc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::access::Access;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let access = Access::of(shard, ctx);
    let mut results = Vec::with_capacity(request.groups_names.len());
    for id in &request.groups_names {
        let group_id = id.0.to_string();
        let code = if !access.group(AclOperation::Delete, &group_id) {
            ResponseError::GroupAuthorizationFailed.code()
        } else {
            match shard.on_group(id.0.as_str(), |shard| async move { shard.groups.delete(&group_id).await }).await {
                Ok(Ok(())) => 0,
                Ok(Err(code)) => code.code(),
                Err(e) => super::coordinator_error(&e).code(),
            }
        };
        results.push(DeletableGroupResult::default().with_group_id(id.clone()).with_error_code(code));
    }
    DeleteGroupsResponse::default().with_results(results)
}
