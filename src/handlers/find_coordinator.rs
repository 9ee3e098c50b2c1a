//! FindCoordinator (v0-6, batched keys from v4). A single node coordinates
//! every group and every transactional id (on the shard owning the key's
//! internal partition, which the router finds); on a cluster, the broker
//! the view assigns the key's internal partition to.

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

/// The broker coordinating the keys of `internal_partition`: this one on a
/// single node; on a cluster the one the view names, if it is live.
fn coordinator(shard: &Shard, ctx: &RequestContext, internal_partition: usize) -> Option<super::BrokerEntry> {
    let brokers = super::brokers(shard, ctx, false);
    let id = match shard.cluster() {
        None => shard.config.node_id,
        Some(view) => view.coordinator(internal_partition as i32)?,
    };
    brokers.into_iter().find(|b| b.id == id)
}

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
            let partition = if request.key_type == KEY_TYPE_GROUP {
                crate::group::offsets_partition(&key)
            } else {
                crate::txn::txn_partition(&key)
            };
            let Some(broker) = coordinator(shard, ctx, partition) else {
                return refused(ResponseError::CoordinatorNotAvailable, "The coordinator is not available.");
            };
            Coordinator::default()
                .with_key(key)
                .with_node_id(BrokerId(broker.id))
                .with_host(StrBytes::from_string(broker.host))
                .with_port(broker.port as i32)
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
