//! DescribeClientQuotas (v0-1): the quotas configured for users, client ids
//! and IPs matching the filter (DESCRIBE_CONFIGS on the cluster required), as
//! `kafka-configs.sh --describe` asks for them.

use std::rc::Rc;

use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    let refused = |code: i16, message: String| {
        DescribeClientQuotasResponse::default()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message)))
            .with_entries(None)
    };
    if let Err(e) = Access::of(shard, ctx).require_cluster(AclOperation::DescribeConfigs) {
        return refused(e.code(), "Cluster authorization failed.".into());
    }
    let components: Vec<(&str, i8, Option<&str>)> = request
        .components
        .iter()
        .map(|c| (c.entity_type.as_str(), c.match_type, c._match.as_ref().map(|m| m.as_str())))
        .collect();
    let security = shard.security();
    let described = match security.state.quotas.describe(&components, request.strict) {
        Ok(described) => described,
        Err(e) => return refused(e.error_code, e.message),
    };
    let entries = described
        .into_iter()
        .map(|(entity, values)| {
            EntryData::default()
                .with_entity(
                    entity
                        .wire_entries()
                        .into_iter()
                        .map(|(entity_type, name)| {
                            EntityData::default()
                                .with_entity_type(StrBytes::from_static_str(entity_type))
                                .with_entity_name(name.map(|n| StrBytes::from_string(n.to_string())))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .into_iter()
                        .map(|(key, value)| {
                            ValueData::default().with_key(StrBytes::from_static_str(key.as_str())).with_value(value)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}
