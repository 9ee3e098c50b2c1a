//! DeleteAcls (v1-3): removes the ACL bindings matching each filter (ALTER on
//! the cluster required) and lists what each filter removed.

use std::rc::Rc;
use std::sync::Arc;

use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use super::acl_codec::filter_from_codes;
use crate::protocol::ResponseError;
use crate::security::acl::{AclBinding, AclFilter, AclOperation};
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: DeleteAclsRequest) -> DeleteAclsResponse {
    let failed = |error: ResponseError, message: String| {
        DeleteAclsFilterResult::default()
            .with_error_code(error.code())
            .with_error_message(Some(StrBytes::from_string(message)))
    };
    if let Err(e) = Access::of(shard, ctx).require_cluster(AclOperation::Alter) {
        let results = request.filters.iter().map(|_| failed(e, "Cluster authorization failed.".into())).collect();
        return DeleteAclsResponse::default().with_filter_results(results);
    }
    let parsed: Vec<Result<AclFilter, String>> = request
        .filters
        .iter()
        .map(|f| {
            filter_from_codes(
                f.resource_type_filter,
                f.resource_name_filter.as_ref().map(|s| s.to_string()),
                f.pattern_type_filter,
                f.principal_filter.as_ref().map(|s| s.to_string()),
                f.host_filter.as_ref().map(|s| s.to_string()),
                f.operation,
                f.permission_type,
                true,
            )
        })
        .collect();
    let valid: Vec<AclFilter> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
    let removed: Result<Vec<Vec<AclBinding>>, String> = if valid.is_empty() {
        Ok(Vec::new())
    } else {
        let change = move |shard: Rc<Shard>| async move {
            crate::cluster::update_security(&shard, move |state| {
                let mut acls = (*state.acls).clone();
                let removed: Vec<Vec<AclBinding>> = valid.iter().map(|f| acls.remove_matching(f)).collect();
                let changed = removed.iter().any(|r| !r.is_empty());
                state.acls = Arc::new(acls);
                (removed, changed)
            })
            .await
        };
        match shard.on_controller(change).await {
            Ok(Ok(removed)) => Ok(removed),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(e.to_string()),
        }
    };
    let mut removed = match removed {
        Ok(removed) => removed.into_iter(),
        Err(message) => {
            let results = parsed.iter().map(|_| failed(ResponseError::UnknownServerError, message.clone())).collect();
            return DeleteAclsResponse::default().with_filter_results(results);
        }
    };
    let results = parsed
        .into_iter()
        .map(|p| match p {
            Err(message) => failed(ResponseError::InvalidRequest, message),
            Ok(_) => {
                let matching = removed
                    .next()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|b| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(b.resource_type.code())
                            .with_resource_name(StrBytes::from_string(b.resource_name))
                            .with_pattern_type(b.pattern_type.code())
                            .with_principal(StrBytes::from_string(b.principal))
                            .with_host(StrBytes::from_string(b.host))
                            .with_operation(b.operation.code())
                            .with_permission_type(b.permission.code())
                    })
                    .collect();
                DeleteAclsFilterResult::default().with_matching_acls(matching)
            }
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
