//! ConsumerGroupHeartbeat (v0-1, KIP-848): a consumer-protocol member joins,
//! heartbeats, acknowledges revocations and leaves; the coordinator answers
//! its epoch and, when it changed, its assignment.

use std::rc::Rc;

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use crate::constants::GROUP_CONSUMER_SUBSCRIBED_TOPICS_MAX;
use crate::group::consumer::{HeartbeatAnswer, HeartbeatFields, HeartbeatParams, Refusal};
use crate::metadata::features;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let group_id = request.group_id.0.to_string();
    // Below group.version 1 the protocol is off: Kafka answers the code alone.
    if !consumer_protocol_enabled(shard) {
        return ConsumerGroupHeartbeatResponse::default().with_error_code(ResponseError::UnsupportedVersion.code());
    }
    let result = if !Access::of(shard, ctx).group(AclOperation::Read, &group_id) {
        Err((ResponseError::GroupAuthorizationFailed, String::new()))
    } else {
        let fields = fields(ctx, request);
        match HeartbeatParams::from_fields(fields, shard.groups.consumer_assignors()) {
            Err(refusal) => Err(refusal),
            Ok(params) => {
                let id = group_id.clone();
                let beat = move |shard: Rc<Shard>| async move {
                    let catalog = shard.catalog();
                    shard.groups.consumer_heartbeat(params, &id, &catalog).await
                };
                shard
                    .on_group(&group_id, beat)
                    .await
                    .unwrap_or_else(|e| Err((super::coordinator_error(&e), String::new())))
            }
        }
    };
    respond(result)
}

/// Whether `group.version` is at least 1 (Kafka's `isConsumerGroupProtocolEnabled`).
pub fn consumer_protocol_enabled(shard: &Shard) -> bool {
    shard.catalog().features.level(features::GROUP_VERSION) >= 1
}

/// The request's fields as the coordinator checks them; owned partitions
/// beyond the bound of a subscription are not read (the request is refused).
fn fields(ctx: &RequestContext, request: ConsumerGroupHeartbeatRequest) -> HeartbeatFields {
    let string = |s: StrBytes| s.to_string();
    let owned = request.topic_partitions.map(|topics| {
        topics.into_iter().take(GROUP_CONSUMER_SUBSCRIBED_TOPICS_MAX + 1).map(|t| (t.topic_id, t.partitions)).collect()
    });
    HeartbeatFields {
        version: ctx.version(),
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.map(string),
        rack_id: request.rack_id.map(string),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        topic_names: request.subscribed_topic_names.map(|names| names.into_iter().map(|n| n.0.to_string()).collect()),
        topic_regex: request.subscribed_topic_regex.map(string),
        server_assignor: request.server_assignor.map(string),
        owned,
        client_id: ctx.header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default(),
        client_host: format!("/{}", ctx.session.host),
    }
}

/// The answer, or the refusal with Kafka's message: the one place codes are set.
fn respond(result: Result<HeartbeatAnswer, Refusal>) -> ConsumerGroupHeartbeatResponse {
    match result {
        Ok(answer) => {
            let assignment = answer.assignment.map(|a| {
                Assignment::default().with_topic_partitions(
                    a.into_iter()
                        .map(|(topic_id, partitions)| {
                            TopicPartitions::default()
                                .with_topic_id(topic_id)
                                .with_partitions(partitions.into_iter().collect())
                        })
                        .collect(),
                )
            });
            ConsumerGroupHeartbeatResponse::default()
                .with_member_id(Some(StrBytes::from_string(answer.member_id)))
                .with_member_epoch(answer.member_epoch)
                .with_heartbeat_interval_ms(answer.heartbeat_interval_ms)
                .with_assignment(assignment)
        }
        Err((code, message)) => ConsumerGroupHeartbeatResponse::default()
            .with_error_code(code.code())
            .with_error_message((!message.is_empty()).then(|| StrBytes::from_string(message))),
    }
}
