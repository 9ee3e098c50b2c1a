//! SaslHandshake (v1): the client names the SASL mechanism it will log in
//! with; the answer lists the listener's mechanisms, and SaslAuthenticate
//! requests carry the exchange. (v0, after which Kafka's pre-1.0 clients send
//! bare SASL tokens outside Kafka's framing, is not served.)

use std::rc::Rc;

use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::protocol::StrBytes;

use crate::protocol::ResponseError;
use crate::server::session::{RequestContext, SaslState};
use crate::shard::Shard;

pub async fn handle(_shard: &Rc<Shard>, ctx: &RequestContext, request: SaslHandshakeRequest) -> SaslHandshakeResponse {
    let session = &ctx.session;
    let listener = session.listener_config();
    let mechanisms: Vec<StrBytes> = listener.sasl_mechanisms.iter().map(|m| StrBytes::from_string(m.clone())).collect();
    let refuse = |error: ResponseError| {
        session.close_after_answer.set(true);
        SaslHandshakeResponse::default().with_error_code(error.code()).with_mechanisms(mechanisms.clone())
    };
    let mechanism = request.mechanism.to_string();
    let mut state = session.sasl.borrow_mut();
    match &*state {
        // A SaslHandshake after a login starts a re-authentication (KIP-368), which needs SaslAuthenticate v1+.
        SaslState::AwaitingHandshake | SaslState::Authenticated { .. } => {}
        SaslState::NotNeeded | SaslState::Handshaken { .. } => return refuse(ResponseError::IllegalSaslState),
    }
    if !listener.sasl_mechanisms.contains(&mechanism) {
        tracing::info!(peer = %session.peer, %mechanism, "SASL mechanism not enabled on this listener");
        return refuse(ResponseError::UnsupportedSaslMechanism);
    }
    *state = SaslState::Handshaken { mechanism, scram: None, oauth: None };
    SaslHandshakeResponse::default().with_mechanisms(mechanisms)
}
