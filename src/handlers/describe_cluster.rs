//! DescribeCluster (v0-2): the cluster id and this node, which is both the
//! cluster's only broker and its KRaft controller.
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
        .with_controller_id(BrokerId(shard.config.node_id))
        .with_endpoint_type(request.endpoint_type);
    if request.endpoint_type != ENDPOINT_TYPE_BROKERS && request.endpoint_type != ENDPOINT_TYPE_CONTROLLERS {
        return response.with_error_code(ResponseError::UnsupportedEndpointType.code()).with_error_message(Some(
            StrBytes::from_string(format!("Unsupported endpoint type {}", request.endpoint_type)),
        ));
    }
    // The one node is never fenced, so `include_fenced_brokers` (v2) changes nothing.
    let node = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(shard.config.node_id))
        .with_host(StrBytes::from_string(ctx.advertised().0.to_string()))
        .with_port(ctx.advertised().1 as i32)
        .with_is_fenced(false);
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
    response.with_brokers(vec![node]).with_cluster_authorized_operations(operations)
}
