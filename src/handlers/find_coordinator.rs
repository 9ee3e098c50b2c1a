//! FindCoordinator (v0-6, batched keys from v4). A single node coordinates
//! every group and every transactional id (on the shard owning the key's
//! internal partition, which the router finds); on a cluster, the broker
//! leading the key's partition of the internal topic.

use std::rc::Rc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use crate::metadata::INTERNAL_TOPICS;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// The broker coordinating the keys of partition `internal_partition` of
/// the internal topic `topic`: this one on a single node; on a cluster the
/// leader of that partition, if it is live. A cluster's internal topic is
/// created by the first request that needs it (the answer is then
/// COORDINATOR_NOT_AVAILABLE, which clients retry), as Kafka does.
fn coordinator(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    topic: &'static str,
    internal_partition: usize,
) -> Option<super::BrokerEntry> {
    let brokers = super::brokers(shard, ctx, false);
    let id = match shard.cluster() {
        None => shard.config.node_id,
        Some(view) => {
            if !view.topics.contains_key(topic) {
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    let created = shard
                        .invoke_on(crate::admin::ADMIN_SHARD, move |admin| async move {
                            crate::cluster::topics::create_internal_topic(&admin, topic).await
                        })
                        .await;
                    if let Ok(Err(e)) = created {
                        tracing::warn!(topic, error = %e, "cannot create the internal topic yet");
                    }
                })
                .detach();
            }
            view.coordinator(topic, internal_partition)?
        }
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
            let (topic, partition) = if request.key_type == KEY_TYPE_GROUP {
                (INTERNAL_TOPICS[0], crate::group::offsets_partition(&key))
            } else {
                (INTERNAL_TOPICS[1], crate::txn::txn_partition(&key))
            };
            let Some(broker) = coordinator(shard, ctx, topic, partition) else {
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
