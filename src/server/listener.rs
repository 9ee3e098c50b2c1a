//! One listener on one shard: its accept loop and, for TLS listeners, the
//! rustls configuration (reloaded when its files change) and the mapping of
//! client certificates to principals.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use futures::future::{select, Either};
use glommio::net::{TcpListener, TcpStream};

use crate::config::{ListenerConfig, OAuthConfig, SecurityProtocol};
use crate::constants::{AUTHENTICATION_MS_MAX, PEM_FILE_BYTES_MAX, TLS_RELOAD_CHECK_MS};
use crate::security::oauthbearer::{OAuthBearerConfig, OAuthBearerValidator};
use crate::security::plain::{JaasPlainUsers, PLAIN_LOGIN_MODULE};
use crate::security::principal::{subject_dn, KafkaPrincipal, SslPrincipalMapper};
use crate::security::tls;
use crate::shard::Shard;

use super::session::Session;
use super::{connection, ConnectionSlot};

/// How often an idle accept loop looks whether the broker is stopping.
const STOP_POLL_MS: u64 = 50;

/// A TLS listener's current configuration and the stamp of the files it was built from.
struct TlsState {
    acceptor: futures_rustls::TlsAcceptor,
    stamp: Vec<Option<(SystemTime, u64)>>,
}

/// A listener as one shard serves it.
pub struct ListenerRuntime {
    pub config: ListenerConfig,
    tls: RefCell<Option<TlsState>>,
    mapper: Option<SslPrincipalMapper>,
    /// PLAIN users of the listener's JAAS config (`user_<name>="<password>"`).
    plain_users: Option<JaasPlainUsers>,
    /// OAUTHBEARER's token validator (its key set reloaded when the file changes).
    oauth: RefCell<Option<OAuthState>>,
}

/// The OAUTHBEARER validator and the stamp of the key file it was built from.
struct OAuthState {
    validator: Rc<OAuthBearerValidator>,
    stamp: Option<(SystemTime, u64)>,
}

/// Builds the OAUTHBEARER validator from the listener's settings and key file.
fn oauth_validator(settings: &OAuthConfig) -> Result<OAuthState, String> {
    let stamp = std::fs::metadata(&settings.jwks_file).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
    let text = read_small(&settings.jwks_file)?;
    let mut config = OAuthBearerConfig::new(format!("file:{}", settings.jwks_file.display()));
    config.expected_audience = settings.expected_audience.clone();
    config.expected_issuer = settings.expected_issuer.clone();
    config.sub_claim_name = settings.sub_claim_name.clone();
    config.scope_claim_name = settings.scope_claim_name.clone();
    config.clock_skew_seconds = settings.clock_skew_seconds.min(i32::MAX as u64) as i32;
    let validator = OAuthBearerValidator::new(&config, &text)
        .map_err(|e| format!("sasl.oauthbearer.jwks.endpoint.url {}: {e}", settings.jwks_file.display()))?;
    Ok(OAuthState { validator: Rc::new(validator), stamp })
}

/// Reads a key file of at most `PEM_FILE_BYTES_MAX` bytes.
fn read_small(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(PEM_FILE_BYTES_MAX + 1).read_to_string(&mut text).map_err(|e| format!("{}: {e}", path.display()))?;
    if text.len() as u64 > PEM_FILE_BYTES_MAX {
        return Err(format!("{}: larger than {PEM_FILE_BYTES_MAX} bytes", path.display()));
    }
    Ok(text)
}

impl ListenerRuntime {
    /// Builds the listener's TLS state; a bad certificate or key fails here, before it listens.
    pub fn new(config: ListenerConfig) -> Result<ListenerRuntime, String> {
        let (tls, mapper) = match &config.tls {
            None => (None, None),
            Some(settings) => {
                let server = tls::server_config(settings).map_err(|e| format!("listener {}: {e}", config.name))?;
                let mapper = SslPrincipalMapper::parse(&settings.principal_mapping_rules)
                    .map_err(|e| format!("listener {}: ssl.principal.mapping.rules: {e}", config.name))?;
                let state =
                    TlsState { acceptor: futures_rustls::TlsAcceptor::from(server), stamp: tls::stamp(settings) };
                (Some(state), Some(mapper))
            }
        };
        let plain_users = match &config.plain_jaas {
            Some(jaas) if config.sasl_mechanisms.iter().any(|m| m == "PLAIN") => {
                let users = JaasPlainUsers::parse(jaas)
                    .map_err(|e| format!("listener {}: sasl.jaas.config: {e}", config.name))?;
                if users.login_module() != PLAIN_LOGIN_MODULE {
                    tracing::warn!(listener = %config.name, module = users.login_module(), "sasl.jaas.config names no PlainLoginModule: it declares no PLAIN users");
                }
                Some(users)
            }
            _ => None,
        };
        let oauth = match &config.oauth {
            Some(settings) => Some(oauth_validator(settings).map_err(|e| format!("listener {}: {e}", config.name))?),
            None => None,
        };
        Ok(ListenerRuntime { config, tls: RefCell::new(tls), mapper, plain_users, oauth: RefCell::new(oauth) })
    }

    /// The OAUTHBEARER validator, if the listener offers OAUTHBEARER.
    pub fn oauth_validator(&self) -> Option<Rc<OAuthBearerValidator>> {
        self.oauth.borrow().as_ref().map(|o| o.validator.clone())
    }

    /// Rebuilds the OAUTHBEARER validator when its key file changed (keys rotate).
    fn reload_oauth(&self) {
        let Some(settings) = &self.config.oauth else { return };
        let stamp = std::fs::metadata(&settings.jwks_file).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
        if self.oauth.borrow().as_ref().is_some_and(|o| o.stamp == stamp) {
            return;
        }
        match oauth_validator(settings) {
            Ok(state) => {
                *self.oauth.borrow_mut() = Some(state);
                tracing::info!(listener = %self.config.name, "OAUTHBEARER keys reloaded");
            }
            Err(e) => {
                tracing::warn!(listener = %self.config.name, error = %e, "OAUTHBEARER key file changed but does not load")
            }
        }
    }

    /// The PLAIN users the listener's JAAS config declares, if any.
    pub fn plain_users(&self) -> Option<&JaasPlainUsers> {
        self.plain_users.as_ref()
    }

    /// Rebuilds the TLS configuration when its files changed. A change that
    /// does not load (a key written before its certificate) keeps the old
    /// configuration and is tried again at the next check.
    fn reload_tls(&self) {
        let Some(settings) = &self.config.tls else { return };
        let stamp = tls::stamp(settings);
        if self.tls.borrow().as_ref().is_some_and(|t| t.stamp == stamp) {
            return;
        }
        match tls::server_config(settings) {
            Ok(server) => {
                *self.tls.borrow_mut() = Some(TlsState { acceptor: futures_rustls::TlsAcceptor::from(server), stamp });
                tracing::info!(listener = %self.config.name, "TLS certificate reloaded");
            }
            Err(e) => tracing::warn!(listener = %self.config.name, error = %e, "TLS files changed but do not load"),
        }
    }

    fn acceptor(&self) -> Option<futures_rustls::TlsAcceptor> {
        self.tls.borrow().as_ref().map(|t| t.acceptor.clone())
    }

    /// The principal of a TLS client certificate, mapped by `ssl.principal.mapping.rules`.
    fn certificate_principal(&self, certificate: &[u8]) -> Result<KafkaPrincipal, String> {
        let dn = subject_dn(certificate)?;
        let mapper = self.mapper.as_ref().ok_or("no principal mapping on a plaintext listener")?;
        Ok(KafkaPrincipal::user(&mapper.map(&dn)?))
    }
}

/// Binds one listener's address on this shard (SO_REUSEPORT).
pub fn bind(shard: &Shard, listener: &ListenerRuntime) -> std::io::Result<TcpListener> {
    let address = listener.config.bind;
    let socket = TcpListener::bind(address).map_err(|e| std::io::Error::other(e.to_string()))?;
    tracing::info!(
        shard = shard.id, listener = %listener.config.name, protocol = listener.config.protocol.name(),
        addr = %address, "listening"
    );
    Ok(socket)
}

/// Accepts connections on one bound listener until the broker stops.
pub async fn serve(shard: Rc<Shard>, listener: Rc<ListenerRuntime>, socket: TcpListener) {
    // One accept stays pending across the stop checks: dropping an accept the
    // kernel may already have completed would lose that connection.
    let mut accept = Box::pin(socket.accept());
    let mut next_reload = Instant::now() + Duration::from_millis(TLS_RELOAD_CHECK_MS);
    loop {
        let tick = glommio::timer::sleep(Duration::from_millis(STOP_POLL_MS));
        futures::pin_mut!(tick);
        if let Either::Left((accepted, _)) = select(accept.as_mut(), tick).await {
            accept = Box::pin(socket.accept());
            match accepted {
                Ok(stream) => admit(&shard, &listener, stream),
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            }
        }
        if shard.lifecycle.stopping() {
            return;
        }
        if Instant::now() >= next_reload {
            listener.reload_tls();
            listener.reload_oauth();
            next_reload = Instant::now() + Duration::from_millis(TLS_RELOAD_CHECK_MS);
        }
    }
}

/// Takes a connection slot and serves the connection on a task of its own.
fn admit(shard: &Rc<Shard>, listener: &Rc<ListenerRuntime>, stream: TcpStream) {
    let Some(slot) = ConnectionSlot::take(&shard.lifecycle, shard.config.max_connections) else {
        tracing::warn!(max = shard.config.max_connections, "max.connections reached; refusing a connection");
        shard.metrics.connections_refused.inc();
        return;
    };
    shard.metrics.connections_accepted.inc();
    let shard = shard.clone();
    let listener = listener.clone();
    glommio::spawn_local(async move {
        shard.metrics.connections_open.add(1);
        serve_stream(shard.clone(), listener, stream).await;
        shard.metrics.connections_open.add(-1);
        drop(slot);
    })
    .detach();
}

/// Runs the TLS handshake when the listener has TLS, then serves the connection.
async fn serve_stream(shard: Rc<Shard>, listener: Rc<ListenerRuntime>, mut stream: TcpStream) {
    let Ok(peer) = stream.peer_addr() else { return };
    // connection_creation_rate of the peer's IP: past it the connection is
    // closed after the throttle time (bounded by one window), as Kafka does.
    if let Some(delay) = connection_throttle(&shard, peer.ip()) {
        tracing::debug!(%peer, delay_ms = delay.as_millis() as u64, "connection_creation_rate exceeded; closing");
        glommio::timer::sleep(delay).await;
        return;
    }
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(shard.config.connections_max_idle_ms)));
    let Some(acceptor) = listener.acceptor() else {
        if serves_brokers(&shard, &listener) {
            // Followers open their replica-fetch connections here: each goes to its partition's shard.
            use crate::cluster::transport::{Prefixed, REPLICA_MAGIC};
            use futures::io::AsyncReadExt;
            let mut first = [0u8; 4];
            if stream.read_exact(&mut first).await.is_err() {
                return;
            }
            if first == REPLICA_MAGIC {
                let config = listener.config.clone();
                return crate::cluster::replication::hand_over_replica_connection(&shard, stream, config, peer).await;
            }
            let session = Rc::new(Session::new(listener, peer, KafkaPrincipal::anonymous()));
            connection::serve(shard, session, Prefixed::new(first.to_vec(), stream)).await;
            return;
        }
        let session = Rc::new(Session::new(listener, peer, KafkaPrincipal::anonymous()));
        connection::serve(shard, session, stream).await;
        return;
    };
    let deadline = glommio::timer::sleep(Duration::from_millis(AUTHENTICATION_MS_MAX));
    futures::pin_mut!(deadline);
    let handshake = acceptor.accept(stream);
    futures::pin_mut!(handshake);
    let stream = match select(handshake, deadline).await {
        Either::Left((Ok(stream), _)) => stream,
        Either::Left((Err(e), _)) => {
            shard.metrics.tls_handshakes_failed.inc();
            tracing::debug!(%peer, listener = %listener.config.name, error = %e, "TLS handshake failed");
            return;
        }
        Either::Right(_) => {
            shard.metrics.tls_handshakes_failed.inc();
            tracing::debug!(%peer, listener = %listener.config.name, "TLS handshake timed out");
            return;
        }
    };
    // With ssl.client.auth the principal is the certificate's subject; SASL replaces it on SASL_SSL.
    let certificate = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.as_ref().to_vec());
    let principal = match (certificate, listener.config.protocol) {
        (Some(der), SecurityProtocol::Ssl) => match listener.certificate_principal(&der) {
            Ok(p) => p,
            Err(e) => {
                shard.metrics.authentications_failed.inc();
                tracing::warn!(%peer, listener = %listener.config.name, error = %e, "client certificate maps to no principal");
                return;
            }
        },
        _ => KafkaPrincipal::anonymous(),
    };
    let session = Rc::new(Session::new(listener, peer, principal));
    connection::serve(shard, session, stream).await;
}

/// Whether `listener` is where other brokers reach this one: a broker
/// alone's `inter.broker.listener.name` (a voter's is its controller
/// listener, served in `cluster`).
fn serves_brokers(shard: &Shard, listener: &ListenerRuntime) -> bool {
    shard
        .config
        .cluster
        .as_ref()
        .is_some_and(|c| c.controller_bind.is_none() && c.inter_broker_listener == listener.config.name)
}

/// The delay before closing a connection from `ip` that goes over its
/// `connection_creation_rate`, or `None` when it may be served.
fn connection_throttle(shard: &Rc<Shard>, ip: std::net::IpAddr) -> Option<Duration> {
    use crate::security::quota::{QuotaKey, QuotaSensorKey};
    let security = shard.security();
    if security.state.quotas.is_empty() {
        return None;
    }
    // The kernel spreads an address's connections over the shards' listeners,
    // so each shard allows its share of the rate.
    let (quota, _) = security.state.quotas.ip_quota(ip)?;
    let quota = quota / shard.router.shards as f64;
    let now = crate::clock::now_ms().max(0) as u64;
    let sensor = QuotaSensorKey { user: ip.to_string(), client_id: String::new() };
    let mut usage = shard.quota_usage.borrow_mut();
    let sampler = usage.rate(QuotaKey::ConnectionCreationRate, sensor, now);
    sampler.record(now, 1.0);
    let window = sampler.window_ms();
    let ms = sampler.bounded_throttle_time_ms(now, quota, window);
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// Every listener's TLS state built once before any shard starts, so that a
/// bad certificate fails the start with its reason.
pub fn check_listeners(listeners: &[ListenerConfig]) -> Result<(), String> {
    for listener in listeners {
        ListenerRuntime::new(listener.clone())?;
    }
    Ok(())
}

/// The listeners of one shard, built from the broker's config.
pub fn runtimes(listeners: &[ListenerConfig]) -> Result<Vec<Rc<ListenerRuntime>>, String> {
    listeners.iter().map(|l| ListenerRuntime::new(l.clone()).map(Rc::new)).collect()
}
