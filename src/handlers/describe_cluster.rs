//! DescribeCluster (v0-1): this broker, its cluster id, itself as controller.

use std::rc::Rc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::{Access, CLUSTER_NAME};
use crate::protocol::ResponseError;
use crate::security::acl::{AclOperation, ResourceType};
use crate::server::session::RequestContext;
use crate::shard::Shard;

/// `endpoint_type` 1: brokers (2 would ask for controllers, which clients cannot reach here).
const ENDPOINT_TYPE_BROKERS: i8 = 1;

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let response = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(shard.cluster_id.to_string()))
        .with_controller_id(BrokerId(shard.config.node_id))
        .with_endpoint_type(request.endpoint_type);
    if request.endpoint_type != ENDPOINT_TYPE_BROKERS {
        return response
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(StrBytes::from_static_str("Only brokers can be described.")));
    }
    let broker = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(shard.config.node_id))
        .with_host(StrBytes::from_string(ctx.advertised().0.to_string()))
        .with_port(ctx.advertised().1 as i32);
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
    response.with_brokers(vec![broker]).with_cluster_authorized_operations(operations)
}
