//! SaslAuthenticate (v0-2): one step of the SASL exchange the handshake
//! chose. PLAIN is checked against the listener's JAAS users, then against the
//! SCRAM credentials; SCRAM-SHA-256/512 runs RFC 5802 against the stored
//! credentials; OAUTHBEARER checks a JWT against the listener's key set (its
//! expiry bounds the session). A failed login is answered with SASL_AUTHENTICATION_FAILED
//! after a short delay, and the connection closes, as Kafka does.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::StrBytes;

use crate::constants::{FAILED_AUTHENTICATION_DELAY_MS, FAILED_AUTHENTICATION_LOGS_PER_SECOND_MAX};
use crate::protocol::ResponseError;
use crate::security::oauthbearer::{session_lifetime_ms, OAuthBearerServer, OAuthStep};
use crate::security::plain::parse_plain;
use crate::security::principal::KafkaPrincipal;
use crate::security::scram::{ScramMechanism, ScramServer, ScramStep};
use crate::server::session::{RequestContext, SaslState};
use crate::shard::Shard;

/// What one step of the exchange came to.
enum Step {
    /// More messages to exchange: these bytes go to the client.
    Continue(Vec<u8>),
    /// Logged in as `user`; these bytes (SCRAM's server-final message) go to
    /// the client; the credential ends at `expires_ms` (an OAUTHBEARER token's expiry).
    Done { user: String, bytes: Vec<u8>, expires_ms: Option<i64> },
    /// Refused, with the message the client sees.
    Failed(String),
}

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: SaslAuthenticateRequest,
) -> SaslAuthenticateResponse {
    let session = &ctx.session;
    let step = {
        let mut state = session.sasl.borrow_mut();
        let SaslState::Handshaken { mechanism, scram, oauth } = &mut *state else {
            drop(state);
            session.close_after_answer.set(true);
            return SaslAuthenticateResponse::default()
                .with_error_code(ResponseError::IllegalSaslState.code())
                .with_error_message(Some(StrBytes::from_static_str(
                    "Unexpected SaslAuthenticate request: no SaslHandshake chose a mechanism",
                )));
        };
        match mechanism.as_str() {
            "PLAIN" => plain(shard, ctx, &request.auth_bytes),
            "OAUTHBEARER" => match session.listener.oauth_validator() {
                None => Step::Failed("OAUTHBEARER is not configured on this listener".into()),
                Some(validator) => {
                    let server = oauth.get_or_insert_with(OAuthBearerServer::new);
                    match server.step(&request.auth_bytes, &validator, crate::clock::now_ms()) {
                        Ok(OAuthStep::Continue(bytes)) => Step::Continue(bytes),
                        Ok(OAuthStep::Done { token, .. }) => Step::Done {
                            user: token.principal_name,
                            bytes: Vec::new(),
                            expires_ms: Some(token.expires_at_ms),
                        },
                        Err(e) => Step::Failed(e.client_message(false)),
                    }
                }
            },
            name => match ScramMechanism::from_name(name) {
                Some(mechanism) => {
                    let server = scram.get_or_insert_with(|| ScramServer::new(mechanism));
                    let security = shard.security();
                    let lookup = |user: &str| security.state.scram_credential(user, mechanism).cloned();
                    match server.step(&request.auth_bytes, &lookup) {
                        Ok(ScramStep::Continue(bytes)) => Step::Continue(bytes),
                        Ok(ScramStep::Done { server_final, username }) => {
                            Step::Done { user: username, bytes: server_final, expires_ms: None }
                        }
                        Err(e) => Step::Failed(e.to_string()),
                    }
                }
                None => Step::Failed(format!("Unsupported SASL mechanism {name}")),
            },
        }
    };
    let (user, bytes, expires_ms) = match step {
        Step::Continue(bytes) => return SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(bytes)),
        Step::Done { user, bytes, expires_ms } => (user, bytes, expires_ms),
        Step::Failed(message) => return failed(shard, ctx, message).await,
    };
    let principal = KafkaPrincipal::user(&user).to_string();
    let previous = session.principal();
    let reauthenticating = !previous.is_empty() && *previous != *KafkaPrincipal::anonymous().to_string();
    if reauthenticating && *previous != *principal {
        return failed(
            shard,
            ctx,
            format!("Cannot change principals during re-authentication from {previous}: {principal}"),
        )
        .await;
    }
    // The session lasts connections.max.reauth.ms, and no longer than the credential (KIP-368).
    let reauth_ms = shard.config.security.connections_max_reauth_ms.min(i64::MAX as u64) as i64;
    let lifetime_ms = match expires_ms {
        Some(at) => session_lifetime_ms(at, crate::clock::now_ms(), reauth_ms),
        None => reauth_ms,
    };
    let expires = (lifetime_ms > 0 || expires_ms.is_some())
        .then(|| Instant::now() + Duration::from_millis(lifetime_ms.max(0) as u64));
    session.set_principal(&principal);
    *session.sasl.borrow_mut() = SaslState::Authenticated { expires };
    shard.metrics.authentications_succeeded.inc();
    tracing::debug!(peer = %session.peer, %principal, reauthenticating, "SASL login");
    SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(bytes)).with_session_lifetime_ms(lifetime_ms)
}

/// PLAIN: the listener's JAAS users first, then the SCRAM credentials (any mechanism).
fn plain(shard: &Rc<Shard>, ctx: &RequestContext, token: &[u8]) -> Step {
    let credentials = match parse_plain(token) {
        Ok(c) => c,
        Err(e) => return Step::Failed(e.to_string()),
    };
    let invalid = || Step::Failed("Authentication failed: Invalid username or password".into());
    if let Some(verdict) =
        ctx.session.listener.plain_users().and_then(|u| u.check(&credentials.username, &credentials.password))
    {
        return if verdict {
            Step::Done { user: credentials.username, bytes: Vec::new(), expires_ms: None }
        } else {
            invalid()
        };
    }
    let security = shard.security();
    let known = [ScramMechanism::Sha512, ScramMechanism::Sha256]
        .into_iter()
        .find_map(|m| security.state.scram_credential(&credentials.username, m));
    match known {
        Some(credential) if credential.verify_password(&credentials.password) => {
            Step::Done { user: credentials.username, bytes: Vec::new(), expires_ms: None }
        }
        _ => invalid(),
    }
}

thread_local! {
    /// This shard's failed-login log budget: the second it counts and the lines logged in it.
    static FAILURE_LOG: Cell<(u64, u32)> = const { Cell::new((0, 0)) };
}

/// A refused login: counted, logged (a few per second per shard), answered
/// after a delay so that guessing is slow, and the connection's last answer.
async fn failed(shard: &Rc<Shard>, ctx: &RequestContext, message: String) -> SaslAuthenticateResponse {
    let session = &ctx.session;
    shard.metrics.authentications_failed.inc();
    *session.sasl.borrow_mut() = SaslState::AwaitingHandshake;
    session.close_after_answer.set(true);
    let second = crate::clock::now_ms().max(0) as u64 / 1000;
    let log = FAILURE_LOG.with(|cell| {
        let (at, count) = cell.get();
        let count = if at == second { count + 1 } else { 1 };
        cell.set((second, count));
        count <= FAILED_AUTHENTICATION_LOGS_PER_SECOND_MAX
    });
    if log {
        tracing::warn!(peer = %session.peer, listener = %session.listener_config().name, reason = %message, "failed login");
    }
    glommio::timer::sleep(Duration::from_millis(FAILED_AUTHENTICATION_DELAY_MS)).await;
    SaslAuthenticateResponse::default()
        .with_error_code(ResponseError::SaslAuthenticationFailed.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}
