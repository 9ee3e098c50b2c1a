//! Kafka's listener model and the security settings that hang off it:
//! `listeners`, `advertised.listeners`, `listener.security.protocol.map`,
//! the `ssl.*` and `sasl.*` settings (each also readable per listener as
//! `listener.name.<name>.<key>`, as Kafka does), and the authorizer's.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use super::ConfigError;
use crate::constants::{LISTENERS_MAX, SASL_RECEIVE_BYTES_MAX_DEFAULT};

/// Kafka's `security.protocol` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(name: &str) -> Option<SecurityProtocol> {
        match name.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Connections are TLS.
    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Clients authenticate with SASL before anything else.
    pub fn sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

/// Where PEM text comes from: a file (read again when it changes) or the config itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {
    File(PathBuf),
    Inline(String),
}

/// A TLS listener's certificate, key and trusted client authorities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// `ssl.keystore.location` (a PEM file holding the private key and the
    /// certificate chain) or `ssl.keystore.certificate.chain`.
    pub certificate_chain: Pem,
    /// The private key: the same file as the chain, or `ssl.keystore.key`.
    pub private_key: Pem,
    /// `ssl.truststore.location` or `ssl.truststore.certificates`: the
    /// authorities client certificates must chain to.
    pub truststore: Option<Pem>,
    pub client_auth: ClientAuth,
    /// `ssl.principal.mapping.rules`.
    pub principal_mapping_rules: String,
}

/// SASL mechanisms a listener can offer.
pub const SASL_MECHANISMS_SUPPORTED: [&str; 4] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

/// One listener: what it binds, what clients are told, and how they prove who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// The listener's name (`PLAINTEXT`, `SASL_SSL`, or a custom one mapped
    /// by `listener.security.protocol.map`).
    pub name: String,
    pub protocol: SecurityProtocol,
    pub bind: SocketAddr,
    pub advertised_host: String,
    pub advertised_port: u16,
    pub tls: Option<TlsConfig>,
    /// `sasl.enabled.mechanisms` of this listener (SASL listeners only).
    pub sasl_mechanisms: Vec<String>,
    /// The `sasl.jaas.config` of PlainLoginModule (`user_<name>="<password>"`
    /// entries): PLAIN logins are checked against it, then against the SCRAM users.
    pub plain_jaas: Option<String>,
    /// OAUTHBEARER's JWT validation (when the listener enables OAUTHBEARER).
    pub oauth: Option<OAuthConfig>,
}

/// `sasl.oauthbearer.*`: how OAUTHBEARER tokens are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthConfig {
    /// `sasl.oauthbearer.jwks.endpoint.url`: a `file:` URL (or path) of the JSON Web Key Set.
    pub jwks_file: PathBuf,
    /// `sasl.oauthbearer.expected.audience`: accepted `aud` values (empty: not checked).
    pub expected_audience: Vec<String>,
    /// `sasl.oauthbearer.expected.issuer`.
    pub expected_issuer: Option<String>,
    /// `sasl.oauthbearer.sub.claim.name` (default `sub`): the claim naming the principal.
    pub sub_claim_name: String,
    /// `sasl.oauthbearer.scope.claim.name` (default `scope`).
    pub scope_claim_name: String,
    /// `sasl.oauthbearer.clock.skew.seconds` (default 30).
    pub clock_skew_seconds: u64,
}

/// Who may do what: Kafka's authorizer settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthorizerConfig {
    /// `authorizer.class.name` names Kafka's StandardAuthorizer.
    pub enabled: bool,
    /// `super.users`: principals allowed everything (`User:admin;User:ops`).
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_everyone_if_no_acl_found: bool,
}

/// The authorizer Kafka 4.x ships; the only one Sluice implements.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// Settings every listener shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityConfig {
    pub authorizer: AuthorizerConfig,
    /// `sasl.server.max.receive.size`.
    pub sasl_receive_bytes_max: usize,
    /// `connections.max.reauth.ms` (KIP-368); 0: sessions never expire.
    pub connections_max_reauth_ms: u64,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            authorizer: AuthorizerConfig::default(),
            sasl_receive_bytes_max: SASL_RECEIVE_BYTES_MAX_DEFAULT,
            connections_max_reauth_ms: 0,
        }
    }
}

/// Broker keys this module reads (besides the `listener.name.` forms).
pub const SECURITY_KEYS: &[&str] = &[
    "listener.security.protocol.map",
    "controller.listener.names",
    "inter.broker.listener.name",
    "security.inter.broker.protocol",
    "sasl.enabled.mechanisms",
    "sasl.mechanism.inter.broker.protocol",
    "sasl.jaas.config",
    "sasl.server.max.receive.size",
    "connections.max.reauth.ms",
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.certificates",
    "ssl.client.auth",
    "ssl.principal.mapping.rules",
    "ssl.endpoint.identification.algorithm",
    "ssl.enabled.protocols",
    "ssl.protocol",
    "authorizer.class.name",
    "super.users",
    "allow.everyone.if.no.acl.found",
    "sasl.oauthbearer.jwks.endpoint.url",
    "sasl.oauthbearer.expected.audience",
    "sasl.oauthbearer.expected.issuer",
    "sasl.oauthbearer.sub.claim.name",
    "sasl.oauthbearer.scope.claim.name",
    "sasl.oauthbearer.clock.skew.seconds",
    "oauthbearer.sasl.server.callback.handler.class",
    "sasl.server.callback.handler.class",
];

/// Kafka's broker-side OAUTHBEARER validator (JWT checked against a JWKS).
pub const OAUTH_VALIDATOR_HANDLER: &str =
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler";

fn oauth_config(name: &str, keys: &ListenerKeys) -> Result<OAuthConfig, ConfigError> {
    let handler = keys
        .get("oauthbearer.sasl.server.callback.handler.class")
        .or_else(|| keys.get("sasl.server.callback.handler.class"));
    if let Some(h) = handler {
        if h.trim() != OAUTH_VALIDATOR_HANDLER {
            return Err(invalid(
                "sasl.server.callback.handler.class",
                format!("listener {name}: only {OAUTH_VALIDATOR_HANDLER} is available for OAUTHBEARER"),
            ));
        }
    }
    let url = keys.get("sasl.oauthbearer.jwks.endpoint.url").ok_or_else(|| {
        invalid(
            "sasl.oauthbearer.jwks.endpoint.url",
            format!("listener {name} enables OAUTHBEARER: name the JSON Web Key Set as a file: URL"),
        )
    })?;
    let jwks_file = match url.trim().strip_prefix("file://").or_else(|| url.trim().strip_prefix("file:")) {
        Some(path) => PathBuf::from(path),
        None if url.starts_with('/') => PathBuf::from(url.trim()),
        None => {
            return Err(invalid(
                "sasl.oauthbearer.jwks.endpoint.url",
                format!("listener {name}: {url:?}: Sluice reads keys from a file: URL, not over the network"),
            ))
        }
    };
    let clock_skew_seconds = match keys.get("sasl.oauthbearer.clock.skew.seconds") {
        None => 30,
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| invalid("sasl.oauthbearer.clock.skew.seconds", format!("cannot parse {v:?}")))?,
    };
    Ok(OAuthConfig {
        jwks_file,
        expected_audience: keys
            .get("sasl.oauthbearer.expected.audience")
            .map(|t| t.split(',').map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect())
            .unwrap_or_default(),
        expected_issuer: keys.get("sasl.oauthbearer.expected.issuer").map(|s| s.trim().to_string()),
        sub_claim_name: keys.get("sasl.oauthbearer.sub.claim.name").cloned().unwrap_or_else(|| "sub".into()),
        scope_claim_name: keys.get("sasl.oauthbearer.scope.claim.name").cloned().unwrap_or_else(|| "scope".into()),
        clock_skew_seconds,
    })
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Listener { key: key.to_string(), reason: reason.into() }
}

/// `NAME://host:port` entries of `listeners` or `advertised.listeners`. A bare
/// `host:port` is a PLAINTEXT listener (Sluice's `--listen` took that form first).
pub(super) fn parse_endpoints(key: &str, text: &str) -> Result<Vec<(String, String, u16)>, ConfigError> {
    let mut endpoints = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, address) = match entry.split_once("://") {
            Some((name, address)) => (name.to_ascii_uppercase(), address),
            None => ("PLAINTEXT".to_string(), entry),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(invalid(key, format!("bad listener name in {entry:?}")));
        }
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| invalid(key, format!("expected NAME://HOST:PORT, got {entry:?}")))?;
        let port: u16 = port.parse().map_err(|_| invalid(key, format!("bad port in {entry:?}")))?;
        let host = host.trim_matches(|c| c == '[' || c == ']').to_string();
        if endpoints.iter().any(|(n, _, _)| *n == name) {
            return Err(invalid(key, format!("listener {name} is named twice")));
        }
        endpoints.push((name, host, port));
    }
    if endpoints.is_empty() {
        return Err(invalid(key, "names no listener"));
    }
    if endpoints.len() > LISTENERS_MAX {
        return Err(invalid(key, format!("at most {LISTENERS_MAX} listeners")));
    }
    Ok(endpoints)
}

/// `listener.security.protocol.map`: Kafka's default maps each protocol's name to itself.
pub(super) fn protocol_map(text: Option<&String>) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    let key = "listener.security.protocol.map";
    let mut map: BTreeMap<String, SecurityProtocol> = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ]
    .into_iter()
    .map(|p| (p.name().to_string(), p))
    .collect();
    if let Some(text) = text {
        map.clear();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, protocol) =
                entry.split_once(':').ok_or_else(|| invalid(key, format!("expected NAME:PROTOCOL, got {entry:?}")))?;
            let protocol = SecurityProtocol::parse(protocol.trim())
                .ok_or_else(|| invalid(key, format!("unknown security protocol in {entry:?}")))?;
            map.insert(name.trim().to_ascii_uppercase(), protocol);
        }
    }
    Ok(map)
}

/// A listener's view of the file: `listener.name.<name>.<key>` first, then `<key>`.
struct ListenerKeys<'a> {
    file: &'a BTreeMap<String, String>,
    prefix: String,
}

impl<'a> ListenerKeys<'a> {
    fn get(&self, key: &str) -> Option<&'a String> {
        self.file.get(&format!("{}{key}", self.prefix)).or_else(|| self.file.get(key))
    }
}

fn tls_config(name: &str, keys: &ListenerKeys) -> Result<TlsConfig, ConfigError> {
    for type_key in ["ssl.keystore.type", "ssl.truststore.type"] {
        if let Some(t) = keys.get(type_key) {
            if !t.eq_ignore_ascii_case("PEM") {
                return Err(invalid(
                    type_key,
                    format!(
                        "listener {name}: Sluice reads PEM keystores and truststores, not {t} (convert with openssl)"
                    ),
                ));
            }
        }
    }
    if keys.get("ssl.key.password").is_some_and(|p| !p.is_empty()) {
        return Err(invalid("ssl.key.password", format!("listener {name}: encrypted private keys are not supported")));
    }
    let (certificate_chain, private_key) = match (
        keys.get("ssl.keystore.location"),
        keys.get("ssl.keystore.certificate.chain"),
        keys.get("ssl.keystore.key"),
    ) {
        (Some(path), None, None) => (Pem::File(path.into()), Pem::File(path.into())),
        (None, Some(chain), Some(key)) => (Pem::Inline(chain.clone()), Pem::Inline(key.clone())),
        (None, None, None) => {
            return Err(invalid(
                "ssl.keystore.location",
                format!("listener {name} uses TLS: set ssl.keystore.location (a PEM file with key and certificates)"),
            ))
        }
        _ => {
            return Err(invalid(
                "ssl.keystore.location",
                format!(
                    "listener {name}: set either ssl.keystore.location or both ssl.keystore.certificate.chain and \
                     ssl.keystore.key"
                ),
            ))
        }
    };
    let truststore = match (keys.get("ssl.truststore.location"), keys.get("ssl.truststore.certificates")) {
        (Some(path), None) => Some(Pem::File(path.into())),
        (None, Some(text)) => Some(Pem::Inline(text.clone())),
        (None, None) => None,
        _ => {
            return Err(invalid(
                "ssl.truststore.location",
                format!("listener {name}: set ssl.truststore.location or ssl.truststore.certificates, not both"),
            ))
        }
    };
    let client_auth = match keys.get("ssl.client.auth").map(|s| s.to_ascii_lowercase()).as_deref() {
        None | Some("none") => ClientAuth::None,
        Some("requested") => ClientAuth::Requested,
        Some("required") => ClientAuth::Required,
        Some(other) => {
            return Err(invalid("ssl.client.auth", format!("expected required, requested or none, got {other:?}")))
        }
    };
    if client_auth != ClientAuth::None && truststore.is_none() {
        return Err(invalid(
            "ssl.truststore.location",
            format!("listener {name}: ssl.client.auth needs a truststore to check client certificates against"),
        ));
    }
    let principal_mapping_rules = keys.get("ssl.principal.mapping.rules").cloned().unwrap_or_else(|| "DEFAULT".into());
    Ok(TlsConfig { certificate_chain, private_key, truststore, client_auth, principal_mapping_rules })
}

/// A listener's security protocol (from `listener.security.protocol.map`)
/// and the address it binds (an empty host: every interface).
pub(super) fn protocol_and_bind(
    map: &BTreeMap<String, SecurityProtocol>,
    name: &str,
    host: &str,
    port: u16,
) -> Result<(SecurityProtocol, SocketAddr), ConfigError> {
    let protocol = *map.get(name).ok_or_else(|| {
        invalid(
            "listener.security.protocol.map",
            format!("listener {name} is not a security protocol and is not mapped to one"),
        )
    })?;
    let bind_host = if host.is_empty() { "0.0.0.0" } else { host };
    let bind = (bind_host, port)
        .to_socket_addrs()
        .map_err(|e| invalid("listeners", format!("{name}://{host}:{port}: {e}")))?
        .next()
        .ok_or_else(|| invalid("listeners", format!("{name}://{host}:{port} resolves to nothing")))?;
    Ok((protocol, bind))
}

/// The first of `controller.listener.names` among `listeners`: its name,
/// security protocol and bind address. `None` when no controller listener is named.
pub fn controller_listener(
    listeners: &str,
    file: &BTreeMap<String, String>,
) -> Result<Option<(String, SecurityProtocol, SocketAddr)>, ConfigError> {
    let Some(name) = file
        .get("controller.listener.names")
        .and_then(|t| t.split(',').map(|n| n.trim().to_ascii_uppercase()).find(|n| !n.is_empty()))
    else {
        return Ok(None);
    };
    let map = protocol_map(file.get("listener.security.protocol.map"))?;
    let Some((_, host, port)) = parse_endpoints("listeners", listeners)?.into_iter().find(|(n, _, _)| *n == name)
    else {
        return Err(invalid("controller.listener.names", format!("{name} is not one of the listeners")));
    };
    let (protocol, bind) = protocol_and_bind(&map, &name, &host, port)?;
    Ok(Some((name, protocol, bind)))
}

/// Resolves the listeners from `listeners` (flag or file) and the rest of the file.
pub fn resolve_listeners(
    listeners: &str,
    advertised: Option<&str>,
    file: &BTreeMap<String, String>,
) -> Result<Vec<ListenerConfig>, ConfigError> {
    let map = protocol_map(file.get("listener.security.protocol.map"))?;
    let controller_names: Vec<String> = file
        .get("controller.listener.names")
        .map(|t| t.split(',').map(|n| n.trim().to_ascii_uppercase()).filter(|n| !n.is_empty()).collect())
        .unwrap_or_default();
    let advertised = match advertised {
        Some(text) => parse_endpoints("advertised.listeners", text)?,
        None => Vec::new(),
    };
    let mut resolved = Vec::new();
    for (name, host, port) in parse_endpoints("listeners", listeners)? {
        // A KRaft controller's listener: the metadata quorum serves it (config::cluster).
        if controller_names.contains(&name) {
            continue;
        }
        let (protocol, bind) = protocol_and_bind(&map, &name, &host, port)?;
        if resolved.iter().any(|l: &ListenerConfig| l.bind == bind && port != 0) {
            return Err(invalid("listeners", format!("two listeners bind {bind}")));
        }
        let (advertised_host, advertised_port) = match advertised.iter().find(|(n, _, _)| *n == name) {
            Some((_, h, p)) => (h.clone(), *p),
            None => (bind.ip().to_string(), port),
        };
        let keys = ListenerKeys { file, prefix: format!("listener.name.{}.", name.to_ascii_lowercase()) };
        let tls = if protocol.tls() { Some(tls_config(&name, &keys)?) } else { None };
        let (sasl_mechanisms, plain_jaas, oauth) = if protocol.sasl() {
            let text = keys.get("sasl.enabled.mechanisms").map(String::as_str).unwrap_or("SCRAM-SHA-256,SCRAM-SHA-512");
            let mut mechanisms = Vec::new();
            for m in text.split(',').map(|m| m.trim().to_ascii_uppercase()).filter(|m| !m.is_empty()) {
                if m == "GSSAPI" {
                    continue;
                }
                if !SASL_MECHANISMS_SUPPORTED.contains(&m.as_str()) {
                    return Err(invalid("sasl.enabled.mechanisms", format!("listener {name}: unknown mechanism {m}")));
                }
                mechanisms.push(m);
            }
            if mechanisms.is_empty() {
                return Err(invalid(
                    "sasl.enabled.mechanisms",
                    format!(
                        "listener {name} enables no mechanism Sluice offers (GSSAPI/Kerberos is not supported): \
                         choose from {}",
                        SASL_MECHANISMS_SUPPORTED.join(", ")
                    ),
                ));
            }
            let jaas = keys.get("plain.sasl.jaas.config").or_else(|| keys.get("sasl.jaas.config")).cloned();
            let oauth =
                if mechanisms.iter().any(|m| m == "OAUTHBEARER") { Some(oauth_config(&name, &keys)?) } else { None };
            (mechanisms, jaas, oauth)
        } else {
            (Vec::new(), None, None)
        };
        resolved.push(ListenerConfig {
            name,
            protocol,
            bind,
            advertised_host,
            advertised_port,
            tls,
            sasl_mechanisms,
            plain_jaas,
            oauth,
        });
    }
    if resolved.is_empty() {
        return Err(invalid("listeners", "every listener is a controller listener; name one for clients"));
    }
    if let Some((name, _, _)) = advertised.iter().find(|(n, _, _)| !resolved.iter().any(|l| l.name == *n)) {
        return Err(invalid("advertised.listeners", format!("{name} is not one of the listeners")));
    }
    Ok(resolved)
}

/// The authorizer and SASL settings.
pub fn resolve_security(file: &BTreeMap<String, String>) -> Result<SecurityConfig, ConfigError> {
    let enabled = match file.get("authorizer.class.name").map(|s| s.trim()) {
        None | Some("") => false,
        Some(STANDARD_AUTHORIZER) => true,
        Some("kafka.security.authorizer.AclAuthorizer") => {
            return Err(invalid(
                "authorizer.class.name",
                format!("AclAuthorizer is ZooKeeper's and gone in Kafka 4; use {STANDARD_AUTHORIZER}"),
            ))
        }
        Some(other) => {
            return Err(invalid(
                "authorizer.class.name",
                format!("{other} is not available; use {STANDARD_AUTHORIZER}"),
            ))
        }
    };
    let super_users = file
        .get("super.users")
        .map(|t| t.split(';').map(str::trim).filter(|u| !u.is_empty()).map(str::to_string).collect::<Vec<_>>())
        .unwrap_or_default();
    for user in &super_users {
        if !user.contains(':') {
            return Err(invalid("super.users", format!("{user:?} is not a principal (Type:name, e.g. User:admin)")));
        }
    }
    let flag = |key: &str| -> Result<Option<bool>, ConfigError> {
        file.get(key)
            .map(|v| v.trim().parse().map_err(|_| invalid(key, format!("expected true or false, got {v:?}"))))
            .transpose()
    };
    let number = |key: &str| -> Result<Option<u64>, ConfigError> {
        file.get(key).map(|v| v.trim().parse().map_err(|_| invalid(key, format!("cannot parse {v:?}")))).transpose()
    };
    let sasl_receive_bytes_max =
        number("sasl.server.max.receive.size")?.map(|v| v as usize).unwrap_or(SASL_RECEIVE_BYTES_MAX_DEFAULT);
    if sasl_receive_bytes_max < 1024 {
        return Err(invalid("sasl.server.max.receive.size", "must be at least 1024"));
    }
    Ok(SecurityConfig {
        authorizer: AuthorizerConfig {
            enabled,
            super_users,
            allow_everyone_if_no_acl_found: flag("allow.everyone.if.no.acl.found")?.unwrap_or(false),
        },
        sasl_receive_bytes_max,
        connections_max_reauth_ms: number("connections.max.reauth.ms")?.unwrap_or(0),
    })
}

/// Whether `key` is one this module reads, directly or per listener.
pub fn is_security_key(key: &str) -> bool {
    if SECURITY_KEYS.contains(&key) {
        return true;
    }
    match key.strip_prefix("listener.name.") {
        Some(rest) => rest.split_once('.').is_some_and(|(_, k)| {
            SECURITY_KEYS.contains(&k)
                || k.strip_suffix("sasl.jaas.config").is_some_and(|mech| mech.is_empty() || mech.ends_with('.'))
        }),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_bare_address_is_one_plaintext_listener() {
        let l = resolve_listeners("127.0.0.1:9092", None, &BTreeMap::new()).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!((l[0].name.as_str(), l[0].protocol), ("PLAINTEXT", SecurityProtocol::Plaintext));
        assert_eq!((l[0].advertised_host.as_str(), l[0].advertised_port), ("127.0.0.1", 9092));
    }

    #[test]
    fn kafka_listener_lines_carry_over() {
        let f = file(&[
            ("listener.security.protocol.map", "CLIENT:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"),
            ("controller.listener.names", "CONTROLLER"),
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.location", "/etc/sluice/broker.pem"),
            ("listener.name.client.sasl.enabled.mechanisms", "SCRAM-SHA-512,PLAIN"),
            ("listener.name.client.plain.sasl.jaas.config", "x required user_a=\"b\";"),
        ]);
        let l = resolve_listeners(
            "CLIENT://0.0.0.0:9093,INTERNAL://127.0.0.1:9092,CONTROLLER://:9094",
            Some("CLIENT://broker1.example:19093"),
            &f,
        )
        .unwrap();
        assert_eq!(l.len(), 2, "the controller listener is not served");
        assert_eq!(l[0].protocol, SecurityProtocol::SaslSsl);
        assert_eq!((l[0].advertised_host.as_str(), l[0].advertised_port), ("broker1.example", 19093));
        assert_eq!(l[0].sasl_mechanisms, vec!["SCRAM-SHA-512", "PLAIN"]);
        assert!(l[0].plain_jaas.is_some());
        let tls = l[0].tls.as_ref().unwrap();
        assert_eq!(tls.certificate_chain, Pem::File("/etc/sluice/broker.pem".into()));
        assert_eq!(tls.client_auth, ClientAuth::None);
        assert_eq!(l[1].protocol, SecurityProtocol::Plaintext);
        assert!(l[1].tls.is_none());
    }

    #[test]
    fn misconfigurations_are_named() {
        let none = BTreeMap::new();
        assert!(resolve_listeners("CLIENT://127.0.0.1:1", None, &none).is_err(), "unmapped name");
        assert!(resolve_listeners("SSL://127.0.0.1:1", None, &none).is_err(), "TLS without a keystore");
        let jks = file(&[("ssl.keystore.type", "JKS"), ("ssl.keystore.location", "/k.jks")]);
        assert!(resolve_listeners("SSL://127.0.0.1:1", None, &jks).is_err());
        let mtls = file(&[("ssl.keystore.location", "/k.pem"), ("ssl.client.auth", "required")]);
        assert!(resolve_listeners("SSL://127.0.0.1:1", None, &mtls).is_err(), "client auth without a truststore");
        let gssapi = file(&[("sasl.enabled.mechanisms", "GSSAPI")]);
        assert!(resolve_listeners("SASL_PLAINTEXT://127.0.0.1:1", None, &gssapi).is_err());
        assert!(resolve_listeners("PLAINTEXT://127.0.0.1:1,PLAINTEXT://127.0.0.1:2", None, &none).is_err());
        assert!(resolve_listeners("PLAINTEXT://127.0.0.1:1", Some("SSL://h:1"), &none).is_err());
    }

    #[test]
    fn oauthbearer_needs_a_key_file() {
        let none = file(&[("sasl.enabled.mechanisms", "OAUTHBEARER")]);
        assert!(resolve_listeners("SASL_PLAINTEXT://127.0.0.1:1", None, &none).is_err());
        let remote = file(&[
            ("sasl.enabled.mechanisms", "OAUTHBEARER"),
            ("sasl.oauthbearer.jwks.endpoint.url", "https://idp.example/jwks"),
        ]);
        assert!(resolve_listeners("SASL_PLAINTEXT://127.0.0.1:1", None, &remote).is_err());
        let good = file(&[
            ("sasl.enabled.mechanisms", "OAUTHBEARER"),
            ("sasl.oauthbearer.jwks.endpoint.url", "file:///etc/sluice/jwks.json"),
            ("sasl.oauthbearer.expected.audience", "kafka, sluice"),
            ("listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class", OAUTH_VALIDATOR_HANDLER),
        ]);
        let l = resolve_listeners("SASL_PLAINTEXT://127.0.0.1:1", None, &good).unwrap();
        let oauth = l[0].oauth.as_ref().unwrap();
        assert_eq!(oauth.jwks_file, PathBuf::from("/etc/sluice/jwks.json"));
        assert_eq!(oauth.expected_audience, vec!["kafka", "sluice"]);
        assert_eq!((oauth.sub_claim_name.as_str(), oauth.clock_skew_seconds), ("sub", 30));
    }

    #[test]
    fn authorizer_settings() {
        assert!(!resolve_security(&BTreeMap::new()).unwrap().authorizer.enabled);
        let s = resolve_security(&file(&[
            ("authorizer.class.name", STANDARD_AUTHORIZER),
            ("super.users", "User:admin;User:ops"),
            ("allow.everyone.if.no.acl.found", "true"),
        ]))
        .unwrap();
        assert!(s.authorizer.enabled && s.authorizer.allow_everyone_if_no_acl_found);
        assert_eq!(s.authorizer.super_users, vec!["User:admin", "User:ops"]);
        assert!(resolve_security(&file(&[("authorizer.class.name", "com.example.Mine")])).is_err());
        assert!(resolve_security(&file(&[("super.users", "admin")])).is_err());
    }

    #[test]
    fn per_listener_keys_are_recognised() {
        assert!(is_security_key("listener.name.sasl_ssl.ssl.keystore.location"));
        assert!(is_security_key("listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"));
        assert!(is_security_key("listener.name.sasl_ssl.sasl.jaas.config"));
        assert!(!is_security_key("listener.name.sasl_ssl.nonsense"));
    }
}
