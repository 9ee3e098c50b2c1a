//! DeleteGroups (v0-2): an empty group and its committed offsets are removed.

use std::rc::Rc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, RequestHeader};

use crate::protocol::ResponseError;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, _header: &RequestHeader, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for id in &request.groups_names {
        let group_id = id.0.to_string();
        let code =
            match shard.on_group(id.0.as_str(), |shard| async move { shard.groups.delete(&group_id).await }).await {
                Ok(Ok(())) => 0,
                Ok(Err(code)) => code.code(),
                Err(_) => ResponseError::CoordinatorNotAvailable.code(),
            };
        results.push(DeletableGroupResult::default().with_group_id(id.clone()).with_error_code(code));
    }
    DeleteGroupsResponse::default().with_results(results)
}
