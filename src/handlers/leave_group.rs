//! LeaveGroup (v0-5, several members from v3): members leave and the group rebalances.

use std::rc::Rc;

use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse, RequestHeader};

use super::call_group;
use crate::group::{GroupCall, GroupReply};
use crate::protocol::ResponseError;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let version = header.request_api_version;
    let group_id = request.group_id.0.to_string();
    match call_group(shard, &group_id, GroupCall::Leave { version, request }).await {
        Ok(GroupReply::Leave(response)) => response,
        Ok(other) => unreachable!("leave answered with {other:?}"),
        Err(_) => LeaveGroupResponse::default().with_error_code(ResponseError::CoordinatorNotAvailable.code()),
    }
}
