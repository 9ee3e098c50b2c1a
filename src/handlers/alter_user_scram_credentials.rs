//! AlterUserScramCredentials (v0): adds, replaces and deletes SCRAM
//! credentials (ALTER on the cluster required). The client sends a salted
//! password; the broker stores only the salt, StoredKey and ServerKey derived
//! from it, durably, before answering. One result per user, as Kafka answers.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use crate::constants::SCRAM_USERS_MAX;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::security::scram::{ScramCredential, ScramMechanism};
use crate::server::session::RequestContext;
use crate::shard::Shard;

/// One user's change, once validated.
enum Change {
    Delete(ScramMechanism),
    Upsert(ScramCredential),
}

type Failure = (ResponseError, String);

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    // Users in request order, each with its changes or the first reason it fails.
    let mut users: BTreeMap<String, Result<Vec<Change>, Failure>> = BTreeMap::new();
    let mut order = Vec::new();
    let mut seen: BTreeSet<(String, i8)> = BTreeSet::new();
    let denied = Access::of(shard, ctx).require_cluster(AclOperation::Alter).err();
    let entries = request
        .deletions
        .iter()
        .map(|d| (d.name.to_string(), d.mechanism, None))
        .chain(request.upsertions.iter().map(|u| (u.name.to_string(), u.mechanism, Some(u))));
    for (user, mechanism_code, upsertion) in entries {
        if !users.contains_key(&user) {
            order.push(user.clone());
            users.insert(user.clone(), Ok(Vec::new()));
        }
        let slot = users.get_mut(&user).expect("inserted above");
        let Ok(changes) = slot else { continue };
        let verdict: Result<Change, Failure> = (|| {
            if let Some(e) = denied {
                return Err((e, "Cluster authorization failed.".to_string()));
            }
            if user.is_empty() {
                return Err((ResponseError::UnacceptableCredential, "Username must not be empty".into()));
            }
            let mechanism = ScramMechanism::from_code(mechanism_code)
                .ok_or((ResponseError::UnsupportedSaslMechanism, "Unknown SCRAM mechanism".to_string()))?;
            if !seen.insert((user.clone(), mechanism_code)) {
                return Err((
                    ResponseError::DuplicateResource,
                    "A user credential cannot be altered twice in the same request".into(),
                ));
            }
            let Some(u) = upsertion else { return Ok(Change::Delete(mechanism)) };
            let iterations = mechanism
                .validate_iterations(u.iterations)
                .map_err(|m| (ResponseError::UnacceptableCredential, m.to_string()))?;
            if u.salt.is_empty() {
                return Err((ResponseError::UnacceptableCredential, "Salt must not be empty".into()));
            }
            if u.salted_password.len() != mechanism.hash_len() {
                return Err((ResponseError::UnacceptableCredential, "Salted password has the wrong length".into()));
            }
            Ok(Change::Upsert(ScramCredential::from_salted_password(
                mechanism,
                &u.salted_password,
                &u.salt,
                iterations,
            )))
        })();
        match verdict {
            Ok(change) => changes.push(change),
            Err(failure) => *slot = Err(failure),
        }
    }
    let valid: Vec<(String, Vec<Change>)> = order
        .iter()
        .filter_map(|user| match users.get_mut(user) {
            Some(Ok(changes)) => Some((user.clone(), std::mem::take(changes))),
            _ => None,
        })
        .collect();
    let outcome: BTreeMap<String, Result<(), Failure>> = if valid.is_empty() {
        BTreeMap::new()
    } else {
        let apply = move |shard: Rc<Shard>| async move {
            crate::cluster::update_security(&shard, move |state| {
                let mut results = BTreeMap::new();
                let mut changed = false;
                for (user, changes) in valid {
                    // A user's changes apply together or not at all.
                    let mut next = state.clone();
                    let mut result = Ok(());
                    for change in changes {
                        match change {
                            Change::Delete(m) => {
                                if !next.delete_scram(&user, m) {
                                    result = Err((
                                        ResponseError::ResourceNotFound,
                                        "Attempt to delete a user credential that does not exist".to_string(),
                                    ));
                                    break;
                                }
                            }
                            Change::Upsert(c) => {
                                if !next.scram.contains_key(&user) && next.scram.len() >= SCRAM_USERS_MAX {
                                    result = Err((
                                        ResponseError::PolicyViolation,
                                        format!("This broker stores at most {SCRAM_USERS_MAX} SCRAM users."),
                                    ));
                                    break;
                                }
                                next.upsert_scram(&user, c)
                            }
                        }
                    }
                    if result.is_ok() {
                        *state = next;
                        changed = true;
                    }
                    results.insert(user, result);
                }
                (results, changed)
            })
            .await
        };
        match shard.on_controller(apply).await {
            Ok(Ok(results)) => results,
            Ok(Err(e)) => {
                order.iter().map(|u| (u.clone(), Err((ResponseError::UnknownServerError, e.clone())))).collect()
            }
            Err(e) => {
                order.iter().map(|u| (u.clone(), Err((ResponseError::UnknownServerError, e.to_string())))).collect()
            }
        }
    };
    let results = order
        .into_iter()
        .map(|user| {
            let result = match users.remove(&user) {
                Some(Err(failure)) => Err(failure),
                _ => outcome.get(&user).cloned().unwrap_or(Ok(())),
            };
            let answer = AlterUserScramCredentialsResult::default().with_user(StrBytes::from_string(user));
            match result {
                Ok(()) => answer,
                Err((code, message)) => {
                    answer.with_error_code(code.code()).with_error_message(Some(StrBytes::from_string(message)))
                }
            }
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}
