//! DescribeCluster (v0-2): the cluster id, the brokers and the active
//! controller. On a single node, the node is both the only broker and its
//! KRaft controller; on a cluster, the registered brokers (fenced ones when
//! `include_fenced_brokers`), the quorum's voters as controllers, and its
//! leader as the controller id.
//!
//! Kafka's brokers describe brokers and its controllers describe
//! controllers, each refusing the other endpoint type. Sluice's controller
//! is reached on the same listeners as its broker, so both are answered,
//! with the listener the request came in on: `kafka-metadata-quorum.sh
//! --bootstrap-controller` and `kafka-features.sh --bootstrap-controller`
//! work against it as against a Kafka controller.

use std::rc::Rc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::{Access, CLUSTER_NAME};
use crate::protocol::ResponseError;
use crate::security::acl::{AclOperation, ResourceType};
use crate::server::session::RequestContext;
use crate::shard::Shard;

/// Kafka's `EndpointType`: 1 describes brokers, 2 controllers.
const ENDPOINT_TYPE_BROKERS: i8 = 1;
const ENDPOINT_TYPE_CONTROLLERS: i8 = 2;

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let response = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(shard.cluster_id.to_string()))
        .with_controller_id(BrokerId(super::controller_id(shard)))
        .with_endpoint_type(request.endpoint_type);
    if request.endpoint_type != ENDPOINT_TYPE_BROKERS && request.endpoint_type != ENDPOINT_TYPE_CONTROLLERS {
        return response.with_error_code(ResponseError::UnsupportedEndpointType.code()).with_error_message(Some(
            StrBytes::from_string(format!("Unsupported endpoint type {}", request.endpoint_type)),
        ));
    }
    let nodes: Vec<DescribeClusterBroker> = match (shard.cluster(), request.endpoint_type) {
        // A cluster's controllers are its voters, at their controller listener.
        (Some(view), ENDPOINT_TYPE_CONTROLLERS) => view
            .voters
            .iter()
            .map(|v| {
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(v.node))
                    .with_host(StrBytes::from_string(v.host.clone()))
                    .with_port(v.port as i32)
            })
            .collect(),
        // A single node is never fenced, so `include_fenced_brokers` (v2) changes nothing there.
        _ => super::brokers(shard, ctx, request.include_fenced_brokers)
            .into_iter()
            .map(|b| {
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(b.id))
                    .with_host(StrBytes::from_string(b.host))
                    .with_port(b.port as i32)
                    .with_rack(b.rack.map(StrBytes::from_string))
                    .with_is_fenced(b.fenced)
            })
            .collect(),
    };
    // Authorized operations are reported only to whoever may describe the cluster, as Kafka does.
    let operations = if request.include_cluster_authorized_operations {
        let access = Access::of(shard, ctx);
        if access.cluster(AclOperation::Describe) {
            access.operations(ResourceType::Cluster, CLUSTER_NAME)
        } else {
            0
        }
    } else {
        i32::MIN
    };
    response.with_brokers(nodes).with_cluster_authorized_operations(operations)
}
