//! Heartbeat (v0-4): keeps a member's session alive; tells it when to rejoin.

use std::rc::Rc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse, RequestHeader};

use super::call_group;
use crate::group::{GroupCall, GroupReply};
use crate::protocol::ResponseError;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, _header: &RequestHeader, request: HeartbeatRequest) -> HeartbeatResponse {
    let group_id = request.group_id.0.to_string();
    match call_group(shard, &group_id, GroupCall::Heartbeat { request }).await {
        Ok(GroupReply::Heartbeat(response)) => response,
        Ok(other) => unreachable!("heartbeat answered with {other:?}"),
        Err(_) => HeartbeatResponse::default().with_error_code(ResponseError::CoordinatorNotAvailable.code()),
    }
}
