//! SyncGroup (v0-5): the leader's assignment is persisted, then every member gets its share.

use std::rc::Rc;

use kafka_protocol::messages::{RequestHeader, SyncGroupRequest, SyncGroupResponse};

use super::call_group;
use crate::group::{GroupCall, GroupReply};
use crate::protocol::ResponseError;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: SyncGroupRequest) -> SyncGroupResponse {
    let version = header.request_api_version;
    let group_id = request.group_id.0.to_string();
    let mut response = match call_group(shard, &group_id, GroupCall::Sync { version, request }).await {
        Ok(GroupReply::Sync(response)) => response,
        Ok(other) => unreachable!("sync answered with {other:?}"),
        Err(_) => SyncGroupResponse::default().with_error_code(ResponseError::CoordinatorNotAvailable.code()),
    };
    if version < 5 {
        response.protocol_type = None;
        response.protocol_name = None;
    }
    response
}
