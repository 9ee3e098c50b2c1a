//! DescribeAcls (v1-3): the ACL bindings matching a filter (DESCRIBE on the
//! cluster required), grouped by resource pattern as Kafka answers.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use super::acl_codec::filter_from_codes;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: DescribeAclsRequest) -> DescribeAclsResponse {
    let refused = |error: ResponseError, message: String| {
        DescribeAclsResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(StrBytes::from_string(message)))
    };
    if let Err(e) = Access::of(shard, ctx).require_cluster(AclOperation::Describe) {
        return refused(e, "Cluster authorization failed.".into());
    }
    let filter = match filter_from_codes(
        request.resource_type_filter,
        request.resource_name_filter.as_ref().map(|s| s.to_string()),
        request.pattern_type_filter,
        request.principal_filter.as_ref().map(|s| s.to_string()),
        request.host_filter.as_ref().map(|s| s.to_string()),
        request.operation,
        request.permission_type,
        false,
    ) {
        Ok(filter) => filter,
        Err(message) => return refused(ResponseError::InvalidRequest, message),
    };
    let security = shard.security();
    let mut resources: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for binding in security.state.acls.matching(&filter) {
        let key = (binding.resource_type.code(), binding.resource_name.clone(), binding.pattern_type.code());
        resources.entry(key).or_default().push(
            AclDescription::default()
                .with_principal(StrBytes::from_string(binding.principal.clone()))
                .with_host(StrBytes::from_string(binding.host.clone()))
                .with_operation(binding.operation.code())
                .with_permission_type(binding.permission.code()),
        );
    }
    let resources = resources
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(name))
                .with_pattern_type(pattern_type)
                .with_acls(acls)
        })
        .collect();
    DescribeAclsResponse::default().with_resources(resources)
}
