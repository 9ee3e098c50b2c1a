//! AlterConfigs (v0-2): replaces a topic's config overrides, or the dynamic
//! configs of a broker resource (the cluster default or this broker),
//! through the controller.

use std::rc::Rc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};

use super::{alter_configs, ConfigResult};
use crate::metadata::controller::ConfigChange;
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let resources: Vec<(i8, String, ConfigChange)> = request
        .resources
        .iter()
        .map(|r| {
            let configs =
                r.configs.iter().map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string()))).collect();
            (r.resource_type, r.resource_name.to_string(), ConfigChange::Replace(configs))
        })
        .collect();
    let results = alter_configs(shard, ctx, resources, request.validate_only).await;
    let responses = results
        .into_iter()
        .map(|ConfigResult { resource_type, name, code, message }| {
            AlterConfigsResourceResponse::default()
                .with_resource_type(resource_type)
                .with_resource_name(name)
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}
