//! LeaveGroup (v0-5, several members from v3): members leave and the group rebalances.

use std::rc::Rc;

use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse, RequestHeader};

use crate::protocol::ResponseError;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let version = header.request_api_version;
    let group_id = request.group_id.0.to_string();
    match shard.on_group(&group_id, move |shard| async move { shard.groups.leave(version, request).await }).await {
        Ok(response) => response,
        Err(_) => LeaveGroupResponse::default().with_error_code(ResponseError::CoordinatorNotAvailable.code()),
    }
}
