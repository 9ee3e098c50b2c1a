//! Who is on the other end of a connection: the listener it came in on, its
//! address, its principal and where it stands in SASL authentication. Every
//! request's handler sees this through its [`RequestContext`].

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use kafka_protocol::messages::RequestHeader;

use crate::config::ListenerConfig;
use crate::security::oauthbearer::OAuthBearerServer;
use crate::security::principal::KafkaPrincipal;
use crate::security::scram::ScramServer;

use super::listener::ListenerRuntime;
use super::turns::{Turn, Turns};

/// Where a connection stands in authentication.
pub enum SaslState {
    /// The listener has no SASL: the connection is as authenticated as it gets
    /// (by its TLS certificate, or not at all).
    NotNeeded,
    /// A SaslHandshake must come first.
    AwaitingHandshake,
    /// The handshake chose `mechanism`; SaslAuthenticate requests carry the exchange.
    Handshaken { mechanism: String, scram: Option<ScramServer>, oauth: Option<OAuthBearerServer> },
    /// Logged in; the session ends at `expires` (`connections.max.reauth.ms`).
    Authenticated { expires: Option<Instant> },
}

/// One connection's security state, shared by its requests.
pub struct Session {
    pub listener: Rc<ListenerRuntime>,
    pub peer: SocketAddr,
    /// The peer's address as ACL host rules name it.
    pub host: Rc<str>,
    principal: RefCell<Rc<str>>,
    pub sasl: RefCell<SaslState>,
    /// Set by a handler whose answer must be the connection's last (a failed login).
    pub close_after_answer: Cell<bool>,
    /// A throttled client's connection is not read from until then (KIP-219).
    muted_until: Cell<Option<Instant>>,
    /// The client software name and version its ApiVersions (v3+) gave.
    pub client_software: RefCell<Option<(String, String)>>,
    /// The order this connection's produce requests reach their partitions in.
    pub produce_turns: Rc<Turns>,
}

impl Session {
    pub fn new(listener: Rc<ListenerRuntime>, peer: SocketAddr, principal: KafkaPrincipal) -> Session {
        let sasl = if listener.config.protocol.sasl() { SaslState::AwaitingHandshake } else { SaslState::NotNeeded };
        Session {
            listener,
            peer,
            host: crate::security::acl::host_address(peer.ip()).into(),
            principal: RefCell::new(principal.to_string().into()),
            sasl: RefCell::new(sasl),
            close_after_answer: Cell::new(false),
            muted_until: Cell::new(None),
            client_software: RefCell::new(None),
            produce_turns: Rc::default(),
        }
    }

    /// Mutes the connection for `ms` from now (a quota's throttle time), as
    /// Kafka does once it has sent the answer that carries the throttle time.
    pub fn throttle(&self, ms: u64) {
        if ms == 0 {
            return;
        }
        let until = Instant::now() + std::time::Duration::from_millis(ms);
        if self.muted_until.get().is_none_or(|u| u < until) {
            self.muted_until.set(Some(until));
        }
    }

    /// Until when the connection is muted, if it is.
    pub fn muted_until(&self, now: Instant) -> Option<Instant> {
        self.muted_until.get().filter(|u| *u > now)
    }

    /// The user name quotas are keyed by (the principal's name, `ANONYMOUS` unauthenticated).
    pub fn quota_user(&self) -> String {
        let principal = self.principal();
        principal.split_once(':').map(|(_, name)| name.to_string()).unwrap_or_else(|| principal.to_string())
    }

    /// `Type:name`, e.g. `User:alice`; `User:ANONYMOUS` before authentication.
    pub fn principal(&self) -> Rc<str> {
        self.principal.borrow().clone()
    }

    pub fn set_principal(&self, principal: &str) {
        *self.principal.borrow_mut() = principal.into();
    }

    pub fn listener_config(&self) -> &ListenerConfig {
        &self.listener.config
    }

    /// Requests other than ApiVersions and the SASL APIs may be served.
    pub fn authenticated(&self) -> bool {
        matches!(*self.sasl.borrow(), SaslState::NotNeeded | SaslState::Authenticated { .. })
    }

    /// The SASL session's lifetime ran out without re-authentication.
    pub fn expired(&self, now: Instant) -> bool {
        matches!(*self.sasl.borrow(), SaslState::Authenticated { expires: Some(at) } if now >= at)
    }
}

/// What a handler knows about its request besides the body.
pub struct RequestContext {
    pub header: RequestHeader,
    pub session: Rc<Session>,
    /// A produce request's place in its connection's order (see [`Turns`]).
    pub turn: Cell<Option<Turn>>,
}

impl RequestContext {
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }

    /// The host and port clients are told to reach this broker at: those of
    /// the listener the request came in on, as Kafka answers.
    pub fn advertised(&self) -> (&str, u16) {
        let listener = self.session.listener_config();
        (&listener.advertised_host, listener.advertised_port)
    }
}
