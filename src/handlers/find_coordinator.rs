//! FindCoordinator (v0-6, batched keys from v4): this broker coordinates
//! every group and every transactional id (on the shard owning the key's
//! internal partition, which the router finds).

use std::rc::Rc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let version = ctx.version();
    let access = Access::of(shard, ctx);
    let keys: Vec<StrBytes> = if version >= 4 { request.coordinator_keys.clone() } else { vec![request.key.clone()] };
    let coordinators: Vec<Coordinator> = keys
        .into_iter()
        .map(|key| {
            let refused = |code: ResponseError, message: &str| {
                Coordinator::default()
                    .with_key(key.clone())
                    .with_node_id(BrokerId(-1))
                    .with_port(-1)
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(message.to_string())))
            };
            match request.key_type {
                KEY_TYPE_GROUP if key.is_empty() => {
                    return refused(ResponseError::InvalidRequest, "Group id must not be empty.");
                }
                KEY_TYPE_TRANSACTION if key.is_empty() => {
                    return refused(ResponseError::InvalidRequest, "Transactional id must not be empty.");
                }
                KEY_TYPE_GROUP if !access.group(AclOperation::Describe, &key) => {
                    return refused(ResponseError::GroupAuthorizationFailed, "Group authorization failed.");
                }
                KEY_TYPE_TRANSACTION if !access.transactional_id(AclOperation::Describe, &key) => {
                    return refused(
                        ResponseError::TransactionalIdAuthorizationFailed,
                        "Transactional Id authorization failed.",
                    );
                }
                KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION => {}
                other => return refused(ResponseError::InvalidRequest, &format!("Unknown key type {other}.")),
            }
            Coordinator::default()
                .with_key(key)
                .with_node_id(BrokerId(shard.config.node_id))
                .with_host(StrBytes::from_string(ctx.advertised().0.to_string()))
                .with_port(ctx.advertised().1 as i32)
        })
        .collect();
    if version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let c = coordinators.into_iter().next().expect("one key before v4");
    let mut response = FindCoordinatorResponse::default()
        .with_error_code(c.error_code)
        .with_node_id(c.node_id)
        .with_host(c.host)
        .with_port(c.port);
    if version >= 1 {
        response = response.with_error_message(c.error_message);
    }
    response
}
