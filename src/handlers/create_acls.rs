//! CreateAcls (v1-3): adds ACL bindings (ALTER on the cluster required). Each
//! creation is validated as Kafka's StandardAuthorizer does; the valid ones
//! are stored in one change.

use std::rc::Rc;
use std::sync::Arc;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use super::acl_codec::binding_from_creation;
use crate::constants::ACLS_MAX;
use crate::protocol::ResponseError;
use crate::security::acl::{AclBinding, AclOperation};
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: CreateAclsRequest) -> CreateAclsResponse {
    let failed = |error: ResponseError, message: String| {
        AclCreationResult::default()
            .with_error_code(error.code())
            .with_error_message(Some(StrBytes::from_string(message)))
    };
    if let Err(e) = Access::of(shard, ctx).require_cluster(AclOperation::Alter) {
        let results = request.creations.iter().map(|_| failed(e, "Cluster authorization failed.".into())).collect();
        return CreateAclsResponse::default().with_results(results);
    }
    let parsed: Vec<Result<AclBinding, String>> = request.creations.iter().map(binding_from_creation).collect();
    let valid: Vec<AclBinding> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
    let outcome = if valid.is_empty() {
        Ok(Ok(Ok(())))
    } else {
        let change = move |shard: Rc<Shard>| async move {
            crate::cluster::update_security(&shard, move |state| {
                let mut acls = (*state.acls).clone();
                if acls.len() + valid.len() > ACLS_MAX {
                    return (Err(format!("This broker stores at most {ACLS_MAX} ACLs.")), false);
                }
                let added = valid.into_iter().filter(|b| acls.add(b.clone())).count();
                state.acls = Arc::new(acls);
                (Ok(()), added > 0)
            })
            .await
        };
        shard.on_controller(change).await.map_err(|e| e.to_string())
    };
    let stored: Result<(), (ResponseError, String)> = match outcome {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(limit))) => Err((ResponseError::PolicyViolation, limit)),
        Ok(Err(e)) | Err(e) => Err((ResponseError::UnknownServerError, e)),
    };
    let results = parsed
        .into_iter()
        .map(|p| match (p, &stored) {
            (Err(message), _) => failed(ResponseError::InvalidRequest, message),
            (Ok(_), Err((code, message))) => failed(*code, message.clone()),
            (Ok(_), Ok(())) => AclCreationResult::default(),
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}
