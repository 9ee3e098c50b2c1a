//! DescribeUserScramCredentials (v0): which SCRAM mechanisms each user has
//! credentials for, and their iterations (DESCRIBE on the cluster required).
//! Never the salt or keys.

use std::collections::BTreeSet;
use std::rc::Rc;

use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::security::scram::ScramCredential;
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    if let Err(e) = Access::of(shard, ctx).require_cluster(AclOperation::Describe) {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(StrBytes::from_static_str("Cluster authorization failed.")));
    }
    let security = shard.security();
    let infos = |credentials: &[ScramCredential]| -> Vec<CredentialInfo> {
        credentials
            .iter()
            .map(|c| CredentialInfo::default().with_mechanism(c.mechanism.code()).with_iterations(c.iterations as i32))
            .collect()
    };
    let requested: Vec<String> = request.users.unwrap_or_default().into_iter().map(|u| u.name.to_string()).collect();
    if requested.is_empty() {
        let results = security
            .state
            .scram
            .iter()
            .map(|(user, credentials)| {
                DescribeUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(user.clone()))
                    .with_credential_infos(infos(credentials))
            })
            .collect();
        return DescribeUserScramCredentialsResponse::default().with_results(results);
    }
    let mut seen = BTreeSet::new();
    let duplicates: BTreeSet<&String> = requested.iter().filter(|u| !seen.insert(*u)).collect();
    let mut answered = BTreeSet::new();
    let results = requested
        .iter()
        .filter(|user| answered.insert(*user))
        .map(|user| {
            let result = DescribeUserScramCredentialsResult::default().with_user(StrBytes::from_string(user.clone()));
            let failed = |error: ResponseError, message: &str| {
                result
                    .clone()
                    .with_error_code(error.code())
                    .with_error_message(Some(StrBytes::from_string(message.into())))
            };
            if duplicates.contains(user) {
                return failed(
                    ResponseError::DuplicateResource,
                    "Cannot describe SCRAM credentials for the same user twice in a single request",
                );
            }
            match security.state.scram.get(user) {
                Some(credentials) => result.clone().with_credential_infos(infos(credentials)),
                None => {
                    failed(ResponseError::ResourceNotFound, "Attempt to describe a user credential that does not exist")
                }
            }
        })
        .collect();
    DescribeUserScramCredentialsResponse::default().with_results(results)
}
