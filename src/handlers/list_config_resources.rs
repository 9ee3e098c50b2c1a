//! ListConfigResources (v0-1; v0 was ListClientMetricsResources): v0 lists
//! the client metrics subscriptions; v1 the config resources of the types
//! asked for (all when none is named): topics, this broker (as BROKER and
//! BROKER_LOGGER), client metrics subscriptions, and groups with configs
//! (none: Sluice stores no group configs). Needs DESCRIBE_CONFIGS on the cluster.

use std::rc::Rc;

use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
/// ConfigResource type CLIENT_METRICS.
pub const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: ListConfigResourcesRequest,
) -> ListConfigResourcesResponse {
    if !Access::of(shard, ctx).cluster(AclOperation::DescribeConfigs) {
        return ListConfigResourcesResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let supported: &[i8] =
        if ctx.version() == 0 { &[CLIENT_METRICS] } else { &[TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP] };
    let types: Vec<i8> =
        if request.resource_types.is_empty() { supported.to_vec() } else { request.resource_types.clone() };
    if types.iter().any(|t| !supported.contains(t)) {
        return ListConfigResourcesResponse::default().with_error_code(ResponseError::UnsupportedVersion.code());
    }
    let catalog = shard.catalog();
    let node = shard.config.node_id.to_string();
    let mut resources = Vec::new();
    let mut add = |resource_type: i8, name: &str| {
        resources.push(
            ConfigResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(name.to_string())),
        )
    };
    for t in types {
        match t {
            TOPIC => catalog.topics.keys().for_each(|name| add(TOPIC, name)),
            BROKER | BROKER_LOGGER => add(t, &node),
            CLIENT_METRICS => catalog.client_metrics.keys().for_each(|name| add(CLIENT_METRICS, name)),
            _ => {}
        }
    }
    ListConfigResourcesResponse::default().with_config_resources(resources)
}
