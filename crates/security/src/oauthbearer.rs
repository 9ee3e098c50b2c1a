//! SASL/OAUTHBEARER (RFC 7628) as Apache Kafka's brokers speak it with the
//! JWT validator of Kafka's `OAuthBearerValidatorCallbackHandler`:
//!
//! - [`parse_client_initial_response`]: the client's message
//!   `n,[a=<authzid>],\x01auth=Bearer <token>\x01[<key>=<value>\x01]*\x01`
//!   with the grammar, checks and messages of Kafka's
//!   `OAuthBearerClientInitialResponse`.
//! - [`OAuthBearerConfig`] / [`OAuthBearerValidator`]: the broker settings
//!   Kafka names (`sasl.oauthbearer.*`) and the checks of Kafka's broker JWT
//!   validator: a signature by a key of the configured JWKS (selected by
//!   `kid`, key type and use), required `exp` and `iat`, `nbf` and `exp`
//!   with the allowed clock skew, audience and issuer when configured, and a
//!   non-blank subject claim. Only JWKS files are supported: the caller reads
//!   the file [`OAuthBearerConfig::jwks_file`] names and passes its text in.
//! - [`OAuthBearerServer`]: the exchange of Kafka's `OAuthBearerSaslServer`.
//!   A token that fails validation is answered with the error challenge
//!   `{"status":"invalid_token"}` ([`OAuthStep::Continue`]); the client's
//!   following `\x01` ends the exchange with that same text as the
//!   `SASL_AUTHENTICATION_FAILED` message ([`OAuthError::InvalidToken`]).
//!   Success ([`OAuthStep::Done`]) carries the principal name and the
//!   token's expiry, which bounds the session ([`session_lifetime_ms`]).
//!
//! Pure computation with bounded inputs: nothing here does I/O, and no input
//! from a client can make it panic.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, Visitor};
use serde_json::{Map, Value};

/// The SASL mechanism name.
pub const OAUTHBEARER_MECHANISM: &str = "OAUTHBEARER";

/// Largest access token accepted, in bytes. Larger tokens fail validation
/// before anything in them is decoded.
pub const MAX_TOKEN_SIZE: usize = 16 * 1024;

/// Largest client message accepted, in bytes: room for a token of
/// [`MAX_TOKEN_SIZE`] plus an authorization id and SASL extensions.
pub const MAX_CLIENT_MESSAGE_SIZE: usize = 32 * 1024;

/// Largest JWKS document [`OAuthBearerValidator::new`] accepts, in bytes.
pub const MAX_JWKS_SIZE: usize = 1 << 20;

/// The error challenge Kafka sends when a token fails validation. It is also
/// the message of the final `SASL_AUTHENTICATION_FAILED` response.
pub const INVALID_TOKEN_CHALLENGE: &str = r#"{"status":"invalid_token"}"#;

/// Where the JWKS comes from: a `file:` URL or a path (Kafka also accepts
/// `http(s)` URLs, which this broker does not support).
pub const JWKS_ENDPOINT_URL_CONFIG: &str = "sasl.oauthbearer.jwks.endpoint.url";
/// Comma-separated audiences, one of which a token's `aud` must contain.
pub const EXPECTED_AUDIENCE_CONFIG: &str = "sasl.oauthbearer.expected.audience";
/// The issuer a token's `iss` must equal.
pub const EXPECTED_ISSUER_CONFIG: &str = "sasl.oauthbearer.expected.issuer";
/// The claim naming the principal.
pub const SUB_CLAIM_NAME_CONFIG: &str = "sasl.oauthbearer.sub.claim.name";
/// The claim holding the token's scopes.
pub const SCOPE_CLAIM_NAME_CONFIG: &str = "sasl.oauthbearer.scope.claim.name";
/// Seconds of clock difference allowed when checking `exp` and `nbf`.
pub const CLOCK_SKEW_SECONDS_CONFIG: &str = "sasl.oauthbearer.clock.skew.seconds";

/// Default of [`SUB_CLAIM_NAME_CONFIG`].
pub const DEFAULT_SUB_CLAIM_NAME: &str = "sub";
/// Default of [`SCOPE_CLAIM_NAME_CONFIG`].
pub const DEFAULT_SCOPE_CLAIM_NAME: &str = "scope";
/// Default of [`CLOCK_SKEW_SECONDS_CONFIG`].
pub const DEFAULT_CLOCK_SKEW_SECONDS: i32 = 30;

/// Kafka's error code `SASL_AUTHENTICATION_FAILED`.
const SASL_AUTHENTICATION_FAILED: i16 = 58;
/// Kafka's error code `ILLEGAL_SASL_STATE`.
const ILLEGAL_SASL_STATE: i16 = 34;

/// Separator of the client message's key/value pairs (RFC 7628 `kvsep`).
const SEPARATOR: u8 = 0x01;
/// The reserved key of the client message that carries the token.
const AUTH_KEY: &str = "auth";

// ---------------------------------------------------------------------------
// Client initial response
// ---------------------------------------------------------------------------

/// A well-formed client initial response. `Debug` leaves the token out.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientInitialResponse {
    /// The bearer token (an RFC 6750 `b64token`), never empty.
    pub token: String,
    /// The GS2 authorization id as sent (`=2C` and `=3D` are kept, as Kafka
    /// keeps them); empty when absent.
    pub authorization_id: String,
    /// The SASL extensions: every key/value pair but `auth`. A key sent
    /// twice keeps its last value.
    pub extensions: BTreeMap<String, String>,
}

impl fmt::Debug for ClientInitialResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientInitialResponse")
            .field("token_len", &self.token.len())
            .field("authorization_id", &self.authorization_id)
            .field("extensions", &self.extensions)
            .finish()
    }
}

/// Why a client initial response was refused. `Display` is Kafka's message
/// (which Kafka logs but never sends: the client gets the generic message
/// of [`OAuthError::InvalidClientFirstMessage`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InitialResponseError {
    /// The message is larger than [`MAX_CLIENT_MESSAGE_SIZE`].
    #[error("Invalid OAUTHBEARER client first message: message larger than {MAX_CLIENT_MESSAGE_SIZE} bytes")]
    TooLarge {
        /// Size of the refused message in bytes.
        size: usize,
    },
    /// The message does not follow the grammar.
    #[error("Invalid OAUTHBEARER client first message")]
    Invalid,
    /// There is no `auth` pair.
    #[error("Invalid OAUTHBEARER client first message: 'auth' not specified")]
    AuthNotSpecified,
    /// The `auth` value is not `<scheme> <b64token>`.
    #[error("Invalid OAUTHBEARER client first message: invalid 'auth' format")]
    InvalidAuthFormat,
    /// The scheme is not `Bearer` (any case).
    #[error("Invalid scheme in OAUTHBEARER client first message: {0}")]
    InvalidScheme(String),
}

/// Parses a client initial response with the grammar Kafka enforces:
/// the GS2 header `n,` with an optional `a=<saslname>` (no channel binding),
/// then `\x01`, key/value pairs each ended by `\x01` (keys `[A-Za-z]+`,
/// values of printable ASCII, space, tab, CR and LF), and a final `\x01`.
/// The `auth` pair must be `<scheme> <b64token>` with scheme `Bearer` in any
/// case; every other pair is a SASL extension.
pub fn parse_client_initial_response(message: &[u8]) -> Result<ClientInitialResponse, InitialResponseError> {
    use InitialResponseError::Invalid;

    if message.len() > MAX_CLIENT_MESSAGE_SIZE {
        return Err(InitialResponseError::TooLarge { size: message.len() });
    }
    let rest = message.strip_prefix(b"n,").ok_or(Invalid)?;
    let (authorization_id, rest) = match rest.strip_prefix(b"a=") {
        Some(after) => {
            let end = after.iter().position(|&b| b == b',').ok_or(Invalid)?;
            let (name, tail) = after.split_at(end);
            if !is_saslname(name) {
                return Err(Invalid);
            }
            (ascii(name)?, tail.get(1..).unwrap_or_default())
        }
        None => (String::new(), rest.strip_prefix(b",").ok_or(Invalid)?),
    };
    let pairs = rest.strip_prefix(&[SEPARATOR]).and_then(|r| r.strip_suffix(&[SEPARATOR])).ok_or(Invalid)?;

    let mut properties = BTreeMap::new();
    if !pairs.is_empty() {
        let pairs = pairs.strip_suffix(&[SEPARATOR]).ok_or(Invalid)?;
        for pair in pairs.split(|&b| b == SEPARATOR) {
            let eq = pair.iter().position(|&b| b == b'=').ok_or(Invalid)?;
            let (key, value) = pair.split_at(eq);
            let value = value.get(1..).unwrap_or_default();
            if key.is_empty() || !key.iter().all(u8::is_ascii_alphabetic) {
                return Err(Invalid);
            }
            if value.is_empty() || !value.iter().all(|&b| is_extension_value_byte(b)) {
                return Err(Invalid);
            }
            properties.insert(ascii(key)?, ascii(value)?);
        }
    }

    let auth = properties.remove(AUTH_KEY).ok_or(InitialResponseError::AuthNotSpecified)?;
    let (scheme, token) = parse_auth_value(&auth).ok_or(InitialResponseError::InvalidAuthFormat)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(InitialResponseError::InvalidScheme(scheme.to_owned()));
    }
    Ok(ClientInitialResponse { token: token.to_owned(), authorization_id, extensions: properties })
}

/// RFC 5802 `saslname` as Kafka matches it: one or more characters in
/// `\x01`..`\x7F` other than `=` and `,`, or the escapes `=2C` and `=3D`.
fn is_saslname(name: &[u8]) -> bool {
    if name.is_empty() {
        return false;
    }
    let mut i = 0;
    while let Some(&b) = name.get(i) {
        match b {
            b'=' => match name.get(i + 1..i + 3) {
                Some(b"2C") | Some(b"3D") => i += 3,
                _ => return false,
            },
            b',' | 0 | 0x80..=0xFF => return false,
            _ => i += 1,
        }
    }
    true
}

/// RFC 7628 `value` characters: printable ASCII, space, tab, CR and LF.
fn is_extension_value_byte(b: u8) -> bool {
    matches!(b, 0x21..=0x7E | b' ' | b'\t' | b'\r' | b'\n')
}

/// RFC 6750 `b64token` characters before the trailing `=` padding.
fn is_b64token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~' | b'+' | b'/' | b'.')
}

/// Splits `<scheme> +<b64token>` (scheme of ASCII word characters).
fn parse_auth_value(auth: &str) -> Option<(&str, &str)> {
    let bytes = auth.as_bytes();
    let scheme_end = bytes.iter().position(|&b| !(b.is_ascii_alphanumeric() || b == b'_'))?;
    if scheme_end == 0 {
        return None;
    }
    let (scheme, rest) = auth.split_at(scheme_end);
    let token = rest.trim_start_matches(' ');
    if token.len() == rest.len() {
        return None;
    }
    let body = token.trim_end_matches('=');
    if body.is_empty() || !body.bytes().all(is_b64token_byte) {
        return None;
    }
    Some((scheme, token))
}

/// The bytes as a `String`; callers pass only bytes already checked to be
/// ASCII, so this never fails in practice.
fn ascii(bytes: &[u8]) -> Result<String, InitialResponseError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| InitialResponseError::Invalid)
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/// The broker settings of OAUTHBEARER token validation, under the names
/// Kafka gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthBearerConfig {
    /// [`JWKS_ENDPOINT_URL_CONFIG`]: a `file:` URL or a path.
    pub jwks_endpoint_url: String,
    /// [`EXPECTED_AUDIENCE_CONFIG`]: when non-empty, a token must carry an
    /// `aud` containing one of these.
    pub expected_audience: Vec<String>,
    /// [`EXPECTED_ISSUER_CONFIG`]: when set, a token must carry this `iss`.
    pub expected_issuer: Option<String>,
    /// [`SUB_CLAIM_NAME_CONFIG`]: the claim naming the principal.
    pub sub_claim_name: String,
    /// [`SCOPE_CLAIM_NAME_CONFIG`]: the claim holding the scopes.
    pub scope_claim_name: String,
    /// [`CLOCK_SKEW_SECONDS_CONFIG`]: leeway for `exp` and `nbf`.
    pub clock_skew_seconds: i32,
}

impl OAuthBearerConfig {
    /// A configuration with Kafka's defaults for everything but the JWKS
    /// location.
    pub fn new(jwks_endpoint_url: impl Into<String>) -> Self {
        Self {
            jwks_endpoint_url: jwks_endpoint_url.into(),
            expected_audience: Vec::new(),
            expected_issuer: None,
            sub_claim_name: DEFAULT_SUB_CLAIM_NAME.to_owned(),
            scope_claim_name: DEFAULT_SCOPE_CLAIM_NAME.to_owned(),
            clock_skew_seconds: DEFAULT_CLOCK_SKEW_SECONDS,
        }
    }

    /// Reads the settings from broker properties (`get` returns a
    /// property's value by its Kafka name), parsing them as Kafka's
    /// `ConfigDef` does: strings trimmed, the audience a comma-separated
    /// list, the skew an `int`. The JWKS location is required and checked
    /// as by [`jwks_file`](Self::jwks_file).
    pub fn from_properties<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, OAuthConfigError> {
        let jwks_endpoint_url = required_string(JWKS_ENDPOINT_URL_CONFIG, get(JWKS_ENDPOINT_URL_CONFIG))?;
        let expected_audience = match get(EXPECTED_AUDIENCE_CONFIG).map(java_trim) {
            None | Some("") => Vec::new(),
            Some(list) => list.split(',').map(|item| item.trim().to_owned()).collect(),
        };
        let expected_issuer =
            get(EXPECTED_ISSUER_CONFIG).map(java_trim).filter(|issuer| !issuer.is_empty()).map(str::to_owned);
        let sub_claim_name =
            required_string(SUB_CLAIM_NAME_CONFIG, Some(get(SUB_CLAIM_NAME_CONFIG).unwrap_or(DEFAULT_SUB_CLAIM_NAME)))?;
        let scope_claim_name = required_string(
            SCOPE_CLAIM_NAME_CONFIG,
            Some(get(SCOPE_CLAIM_NAME_CONFIG).unwrap_or(DEFAULT_SCOPE_CLAIM_NAME)),
        )?;
        let clock_skew_seconds = match get(CLOCK_SKEW_SECONDS_CONFIG) {
            None => DEFAULT_CLOCK_SKEW_SECONDS,
            Some(value) => java_trim(value)
                .parse()
                .map_err(|_| OAuthConfigError::NotAnInt { name: CLOCK_SKEW_SECONDS_CONFIG, value: value.to_owned() })?,
        };
        let config = Self {
            jwks_endpoint_url,
            expected_audience,
            expected_issuer,
            sub_claim_name,
            scope_claim_name,
            clock_skew_seconds,
        };
        config.jwks_file()?;
        Ok(config)
    }

    /// The JWKS file [`jwks_endpoint_url`](Self::jwks_endpoint_url) names:
    /// the path of a `file:` URL (percent escapes kept and any host
    /// ignored, as Kafka does), or the value itself when it has no URL
    /// scheme. `http` and `https` URLs are refused as unsupported.
    pub fn jwks_file(&self) -> Result<PathBuf, OAuthConfigError> {
        let url = java_trim(&self.jwks_endpoint_url);
        if url.is_empty() {
            return Err(OAuthConfigError::Blank(JWKS_ENDPOINT_URL_CONFIG));
        }
        let Some((scheme, rest)) = split_url_scheme(url) else {
            return Ok(PathBuf::from(url));
        };
        let malformed = |reason| OAuthConfigError::MalformedUrl { url: url.to_owned(), reason };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {}
            "http" | "https" => {
                return Err(OAuthConfigError::UnsupportedProtocol {
                    url: url.to_owned(),
                    protocol: scheme.to_ascii_lowercase(),
                })
            }
            other => return Err(OAuthConfigError::InvalidProtocol { url: url.to_owned(), protocol: other.to_owned() }),
        }
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let path = match rest.strip_prefix("//") {
            Some(authority_and_path) => match authority_and_path.find('/') {
                Some(slash) => authority_and_path.get(slash..).unwrap_or_default(),
                None => return Err(malformed("no path")),
            },
            None => rest,
        };
        if path.is_empty() {
            return Err(malformed("no path"));
        }
        Ok(PathBuf::from(path))
    }
}

/// The URL scheme of `url` and what follows its colon, if it starts with
/// one (`[A-Za-z][A-Za-z0-9+.-]*:`).
fn split_url_scheme(url: &str) -> Option<(&str, &str)> {
    let colon = url.find(':')?;
    let scheme = url.get(..colon)?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    if !first.is_ascii_alphabetic() || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-')) {
        return None;
    }
    Some((scheme, url.get(colon + 1..)?))
}

/// A required string setting, trimmed, as Kafka's `validateString`.
fn required_string(name: &'static str, value: Option<&str>) -> Result<String, OAuthConfigError> {
    let value = java_trim(value.ok_or(OAuthConfigError::Missing(name))?);
    if value.is_empty() {
        return Err(OAuthConfigError::Blank(name));
    }
    Ok(value.to_owned())
}

/// Why the OAUTHBEARER settings or the JWKS were refused. The messages are
/// those of Kafka's `ConfigException`s where Kafka has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthConfigError {
    /// A required setting is absent.
    #[error("The OAuth configuration option {0} value must be non-null")]
    Missing(&'static str),
    /// A required setting is empty or only whitespace.
    #[error("The OAuth configuration option {0} value must not contain only whitespace")]
    Blank(&'static str),
    /// An integer setting does not parse.
    #[error("Invalid value {value} for configuration {name}: Not a number of type INT")]
    NotAnInt {
        /// The setting.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// The JWKS URL is malformed.
    #[error(
        "The OAuth configuration option {JWKS_ENDPOINT_URL_CONFIG} contains a URL ({url}) that is malformed: {reason}"
    )]
    MalformedUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The JWKS URL's protocol is not one Kafka knows.
    #[error("The OAuth configuration option {JWKS_ENDPOINT_URL_CONFIG} contains a URL ({url}) that contains an invalid protocol ({protocol}); only \"http\", \"https\", and \"file\" protocol are supported")]
    InvalidProtocol {
        /// The URL.
        url: String,
        /// Its protocol, lower-cased.
        protocol: String,
    },
    /// The JWKS URL is `http` or `https`, which this broker does not fetch.
    #[error("The OAuth configuration option {JWKS_ENDPOINT_URL_CONFIG} contains a URL ({url}) with protocol {protocol}, which is not supported: only \"file\" URLs and file paths are")]
    UnsupportedProtocol {
        /// The URL.
        url: String,
        /// Its protocol, lower-cased.
        protocol: String,
    },
    /// The JWKS document is larger than [`MAX_JWKS_SIZE`].
    #[error("The JWKS is {size} bytes, larger than the limit of {MAX_JWKS_SIZE} bytes")]
    JwksTooLarge {
        /// Size of the document in bytes.
        size: usize,
    },
    /// The JWKS document is not a JSON object.
    #[error("The JWKS could not be parsed: {0}")]
    InvalidJwks(String),
    /// The JWKS object has no `keys` array.
    #[error("The JSON JWKS content does not include the keys member.")]
    JwksWithoutKeys,
}

// ---------------------------------------------------------------------------
// Token validation
// ---------------------------------------------------------------------------

/// What a valid token says, as Kafka's `BasicOAuthBearerToken` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedToken {
    /// The subject claim's value, trimmed: the principal name.
    pub principal_name: String,
    /// The `exp` claim in milliseconds since the epoch (Kafka's
    /// `lifetimeMs`): the session cannot outlive it.
    pub expires_at_ms: i64,
    /// The `iat` claim in milliseconds since the epoch (Kafka's
    /// `startTimeMs`).
    pub issued_at_ms: i64,
    /// The scope claim's values, trimmed. A string claim is one scope, as
    /// Kafka reads it (it is not split at spaces); anything but a string or
    /// an array means no scope.
    pub scopes: BTreeSet<String>,
}

/// Key types of the JWKS keys that can verify signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    Rsa,
    Ec,
    Okp,
    Oct,
}

/// A JWKS key usable for verification.
struct VerificationKey {
    kid: Option<String>,
    kty: KeyType,
    usage: Option<String>,
    alg: Option<String>,
    crv: Option<String>,
    key: DecodingKey,
}

/// The JWS algorithms Kafka's validator accepts (every one but `none`)
/// that this validator can verify, with the key type each needs.
fn jws_algorithm(name: &str) -> Option<(Algorithm, KeyType)> {
    Some(match name {
        "HS256" => (Algorithm::HS256, KeyType::Oct),
        "HS384" => (Algorithm::HS384, KeyType::Oct),
        "HS512" => (Algorithm::HS512, KeyType::Oct),
        "RS256" => (Algorithm::RS256, KeyType::Rsa),
        "RS384" => (Algorithm::RS384, KeyType::Rsa),
        "RS512" => (Algorithm::RS512, KeyType::Rsa),
        "PS256" => (Algorithm::PS256, KeyType::Rsa),
        "PS384" => (Algorithm::PS384, KeyType::Rsa),
        "PS512" => (Algorithm::PS512, KeyType::Rsa),
        "ES256" => (Algorithm::ES256, KeyType::Ec),
        "ES384" => (Algorithm::ES384, KeyType::Ec),
        "EdDSA" => (Algorithm::EdDSA, KeyType::Okp),
        _ => return None,
    })
}

/// Validates OAUTHBEARER access tokens (JWS-signed JWTs) against a JWKS and
/// the configured claims, as Kafka's broker validator does. Immutable and
/// `Send + Sync`: build one per JWKS and share it.
pub struct OAuthBearerValidator {
    keys: Vec<VerificationKey>,
    skipped_keys: Vec<String>,
    expected_audience: BTreeSet<String>,
    expected_issuer: Option<String>,
    sub_claim_name: String,
    scope_claim_name: String,
    clock_skew_seconds: i64,
}

impl fmt::Debug for OAuthBearerValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<Option<&str>> = self.keys.iter().map(|k| k.kid.as_deref()).collect();
        f.debug_struct("OAuthBearerValidator")
            .field("key_ids", &kids)
            .field("skipped_keys", &self.skipped_keys.len())
            .field("expected_audience", &self.expected_audience)
            .field("expected_issuer", &self.expected_issuer)
            .field("sub_claim_name", &self.sub_claim_name)
            .field("scope_claim_name", &self.scope_claim_name)
            .field("clock_skew_seconds", &self.clock_skew_seconds)
            .finish()
    }
}

impl OAuthBearerValidator {
    /// A validator for `config` whose verification keys are those of
    /// `jwks_json`, the text of the JWKS file. Keys that cannot verify
    /// signatures here (unknown key type or curve, bad encoding) are
    /// skipped, as Kafka skips them; [`skipped_keys`](Self::skipped_keys)
    /// says why. A JWKS that is not a JSON object with a `keys` array is
    /// refused.
    pub fn new(config: &OAuthBearerConfig, jwks_json: &str) -> Result<Self, OAuthConfigError> {
        config.jwks_file()?;
        let sub_claim_name = required_string(SUB_CLAIM_NAME_CONFIG, Some(&config.sub_claim_name))?;
        let scope_claim_name = required_string(SCOPE_CLAIM_NAME_CONFIG, Some(&config.scope_claim_name))?;
        if jwks_json.len() > MAX_JWKS_SIZE {
            return Err(OAuthConfigError::JwksTooLarge { size: jwks_json.len() });
        }
        let jwks = parse_json_object(jwks_json.as_bytes()).map_err(OAuthConfigError::InvalidJwks)?;
        let Some(Value::Array(entries)) = jwks.get("keys") else {
            return Err(OAuthConfigError::JwksWithoutKeys);
        };
        let mut keys = Vec::new();
        let mut skipped_keys = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            match parse_jwk(entry) {
                Ok(key) => keys.push(key),
                Err(reason) => skipped_keys.push(format!("key {index}: {reason}")),
            }
        }
        Ok(Self {
            keys,
            skipped_keys,
            expected_audience: config.expected_audience.iter().cloned().collect(),
            expected_issuer: config.expected_issuer.clone(),
            sub_claim_name,
            scope_claim_name,
            clock_skew_seconds: i64::from(config.clock_skew_seconds),
        })
    }

    /// How many JWKS keys can verify signatures.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Why each skipped JWKS key was skipped (for the broker's logs).
    pub fn skipped_keys(&self) -> &[String] {
        &self.skipped_keys
    }

    /// Validates `token` at `now_ms` (milliseconds since the epoch), with
    /// the checks of Kafka's broker validator in its order: three non-empty
    /// dot-separated sections; header and claims JSON objects; an accepted
    /// `alg` (never `none`); a JWKS key matching the header's `kid` (all
    /// keys when it has none), the algorithm's key type and use `sig`; the
    /// signature; then the claims: `aud` (required and matched when an
    /// audience is configured, refused when present but none is), `iss`
    /// (required and matched when configured), `exp` and `iat` present,
    /// `exp` not reached and `nbf` reached (both with the clock skew), `exp`
    /// not before `iat` or `nbf`, `sub` and `jti` strings if present; last
    /// the scope claim, and a subject claim that is a non-blank string.
    /// `iat` is not compared with the clock, as Kafka does not.
    pub fn validate(&self, token: &str, now_ms: i64) -> Result<ValidatedToken, TokenError> {
        if token.len() > MAX_TOKEN_SIZE {
            return Err(TokenError::TooLarge { size: token.len() });
        }
        let token = java_trim(token);
        check_sections(token)?;
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Unprocessable(format!(
                "Invalid JOSE Compact Serialization. Expecting either 3 or 5 parts for JWS or JWE respectively but was {}.",
                token.split('.').count()
            )));
        };

        let header =
            decode_json_part(header_b64).map_err(|e| TokenError::Unprocessable(format!("Invalid JOSE header: {e}")))?;
        let claims = decode_json_part(payload_b64).map_err(|e| {
            TokenError::Unprocessable(format!("Unable to parse what was expected to be the JWT Claim Set JSON: {e}"))
        })?;
        if let Some(crit) = header.get("crit").filter(|v| !v.is_null()) {
            let name = crit.as_array().and_then(|names| names.first()).and_then(Value::as_str).unwrap_or("crit");
            return Err(TokenError::Unprocessable(format!("Unrecognized header '{name}' marked as critical.")));
        }
        let alg_name = match header.get("alg") {
            None | Some(Value::Null) => {
                return Err(TokenError::Unprocessable("Signature algorithm header (alg) not set.".to_owned()))
            }
            Some(Value::String(alg)) => alg.as_str(),
            Some(_) => return Err(TokenError::Unprocessable("The 'alg' header is not a string.".to_owned())),
        };
        if alg_name == "none" {
            return Err(TokenError::Unprocessable("'none' is a blocked algorithm".to_owned()));
        }
        let Some((alg, kty)) = jws_algorithm(alg_name) else {
            return Err(TokenError::Unprocessable(format!(
                "{} is an unknown, unsupported or unavailable alg algorithm",
                truncated(alg_name)
            )));
        };
        let kid = match header.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            Some(_) => return Err(TokenError::Unprocessable("The 'kid' header is not a string.".to_owned())),
        };
        let Some(key) = self.select_key(alg_name, kty, kid) else {
            return Err(TokenError::UnresolvableKey {
                alg: alg_name.to_owned(),
                kid: kid.map(|kid| truncated(kid).to_owned()),
            });
        };
        let signing_input = token.get(..header_b64.len() + 1 + payload_b64.len()).unwrap_or_default();
        // `select_key` returned a key of the algorithm's type, so the
        // algorithm and key agree, as `crypto::verify` requires.
        match jsonwebtoken::crypto::verify(signature_b64.trim_end_matches('='), signing_input.as_bytes(), &key.key, alg)
        {
            Ok(true) => {}
            Ok(false) => return Err(TokenError::InvalidSignature),
            Err(e) => return Err(TokenError::Unprocessable(format!("Invalid JWS signature encoding: {e}"))),
        }

        let issues = self.claim_issues(&claims, now_ms);
        if !issues.is_empty() {
            return Err(TokenError::InvalidClaims(issues));
        }
        self.extract(&claims)
    }

    /// The key for a token signed with `alg` (whose key type is `kty`) and
    /// naming `kid`: keys with that `kid` (any key if none is named), of
    /// that type and of use `sig` or none; if several, those whose `alg` is
    /// absent or the token's; if still several EC keys, those on the
    /// algorithm's curve; then the first.
    fn select_key(&self, alg: &str, kty: KeyType, kid: Option<&str>) -> Option<&VerificationKey> {
        let mut candidates: Vec<&VerificationKey> = self
            .keys
            .iter()
            .filter(|k| {
                kid.is_none_or(|kid| k.kid.as_deref() == Some(kid))
                    && k.kty == kty
                    && k.usage.as_deref().is_none_or(|usage| usage == "sig")
            })
            .collect();
        if candidates.len() > 1 {
            candidates.retain(|k| k.alg.as_deref().is_none_or(|a| a == alg));
        }
        if candidates.len() > 1 && kty == KeyType::Ec {
            let curve = if alg == "ES384" { "P-384" } else { "P-256" };
            candidates.retain(|k| k.crv.as_deref().is_none_or(|c| c == curve));
        }
        candidates.first().copied()
    }

    /// The registered-claim checks, each failure reported (in the order
    /// audience, issuer, dates, `sub`, `jti`).
    fn claim_issues(&self, claims: &Map<String, Value>, now_ms: i64) -> Vec<ClaimIssue> {
        let mut issues = Vec::new();

        // Audience.
        match present(claims, "aud") {
            None if !self.expected_audience.is_empty() => issues.push(ClaimIssue::NoAudience),
            None => {}
            Some(aud) => match string_list(aud) {
                None => issues.push(ClaimIssue::MalformedClaim {
                    claim: "aud".to_owned(),
                    expected: "an array of strings or a single string value",
                }),
                Some(audiences) => {
                    if !audiences.iter().any(|a| self.expected_audience.contains(a)) {
                        issues.push(ClaimIssue::AudienceMismatch {
                            audiences,
                            expected: self.expected_audience.iter().cloned().collect(),
                        });
                    }
                }
            },
        }

        // Issuer.
        match (present(claims, "iss"), &self.expected_issuer) {
            (Some(Value::String(issuer)), Some(expected)) if issuer != expected => {
                issues.push(ClaimIssue::IssuerMismatch { issuer: issuer.clone(), expected: expected.clone() })
            }
            (Some(Value::String(_)), _) => {}
            (Some(_), _) => issues.push(ClaimIssue::MalformedClaim { claim: "iss".to_owned(), expected: "a string" }),
            (None, Some(expected)) => issues.push(ClaimIssue::NoIssuer { expected: expected.clone() }),
            (None, None) => {}
        }

        // Dates.
        if let Some(issue) = self.date_issue(claims, now_ms) {
            issues.push(issue);
        }

        // `sub` and `jti` must be strings when present.
        for claim in ["sub", "jti"] {
            if present(claims, claim).is_some_and(|v| !v.is_string()) {
                issues.push(ClaimIssue::MalformedClaim { claim: claim.to_owned(), expected: "a string" });
            }
        }
        issues
    }

    /// The first problem with `exp`, `iat` and `nbf`, if any.
    fn date_issue(&self, claims: &Map<String, Value>, now_ms: i64) -> Option<ClaimIssue> {
        let date = |claim: &str| -> Result<Option<i64>, ClaimIssue> {
            match present(claims, claim) {
                None => Ok(None),
                Some(value) => numeric_date(value)
                    .map(Some)
                    .ok_or(ClaimIssue::MalformedClaim { claim: claim.to_owned(), expected: "a number" }),
            }
        };
        let (exp, iat, nbf) = match (date("exp"), date("iat"), date("nbf")) {
            (Ok(exp), Ok(iat), Ok(nbf)) => (exp, iat, nbf),
            (Err(issue), _, _) | (_, Err(issue), _) | (_, _, Err(issue)) => return Some(issue),
        };
        let Some(exp) = exp else {
            return Some(ClaimIssue::NoExpirationTime);
        };
        let Some(iat) = iat else {
            return Some(ClaimIssue::NoIssuedAt);
        };
        let now = now_ms.div_euclid(1000);
        let skew = self.clock_skew_seconds;
        if now.saturating_sub(skew) >= exp {
            return Some(ClaimIssue::Expired { now, exp, skew });
        }
        if exp < iat {
            return Some(ClaimIssue::ExpiresBeforeIssuedAt { exp, iat });
        }
        if let Some(nbf) = nbf {
            if exp < nbf {
                return Some(ClaimIssue::ExpiresBeforeNotBefore { exp, nbf });
            }
            if now.saturating_add(skew) < nbf {
                return Some(ClaimIssue::NotYetValid { now, nbf, skew });
            }
        }
        None
    }

    /// Kafka's reading of a token whose registered claims passed: the
    /// scopes, expiry, subject and issue time, each checked.
    fn extract(&self, claims: &Map<String, Value>) -> Result<ValidatedToken, TokenError> {
        let scope_name = &self.scope_claim_name;
        let sub_name = &self.sub_claim_name;
        let raw_scopes: Vec<Option<&str>> = match claims.get(scope_name.as_str()) {
            Some(Value::String(scope)) => vec![Some(scope.as_str())],
            Some(Value::Array(items)) => {
                let mut scopes = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(scope) => scopes.push(Some(scope.as_str())),
                        Value::Null => scopes.push(None),
                        _ => return Err(TokenError::InvalidClaimValue(format!("{scope_name} value must be a string"))),
                    }
                }
                scopes
            }
            _ => Vec::new(),
        };
        let exp = present(claims, "exp").and_then(numeric_date);
        let subject = match present(claims, sub_name) {
            None => None,
            Some(Value::String(subject)) => Some(subject.as_str()),
            Some(_) => return Err(TokenError::ClaimNotExtractable(sub_name.clone())),
        };
        let iat = present(claims, "iat").and_then(numeric_date);

        let mut scopes = BTreeSet::new();
        for scope in raw_scopes {
            let scope = claim_string(scope_name, scope)?;
            if !scopes.insert(scope.to_owned()) {
                return Err(TokenError::InvalidClaimValue(format!(
                    "{scope_name} value must not contain duplicates - {scope} already present"
                )));
            }
        }
        let Some(expires_at_ms) = exp.map(|exp| exp.saturating_mul(1000)) else {
            return Err(TokenError::InvalidClaimValue("exp value must be non-null".to_owned()));
        };
        if expires_at_ms < 0 {
            return Err(TokenError::InvalidClaimValue(format!(
                "exp value must be non-negative; value given was \"{expires_at_ms}\""
            )));
        }
        let principal_name = claim_string(sub_name, subject)?.to_owned();
        let issued_at_ms = iat.map_or(0, |iat| iat.saturating_mul(1000));
        if issued_at_ms < 0 {
            return Err(TokenError::InvalidClaimValue(format!(
                "iat value must be null or non-negative; value given was \"{issued_at_ms}\""
            )));
        }
        Ok(ValidatedToken { principal_name, expires_at_ms, issued_at_ms, scopes })
    }
}

/// Kafka's check of a string claim value: present, non-empty, not only
/// whitespace; the trimmed value.
fn claim_string<'a>(name: &str, value: Option<&'a str>) -> Result<&'a str, TokenError> {
    let Some(value) = value else {
        return Err(TokenError::InvalidClaimValue(format!("{name} value must be non-null")));
    };
    if value.is_empty() {
        return Err(TokenError::InvalidClaimValue(format!("{name} value must be non-empty")));
    }
    let value = java_trim(value);
    if value.is_empty() {
        return Err(TokenError::InvalidClaimValue(format!("{name} value must not contain only whitespace")));
    }
    Ok(value)
}

/// Kafka's structural check of a serialized JWT: non-empty, three
/// dot-separated sections (trailing empty sections not counted), none of
/// them blank.
fn check_sections(token: &str) -> Result<(), TokenError> {
    if token.is_empty() {
        return Err(TokenError::Malformed(
            "Empty JWT provided; expected three sections (header, payload, and signature)".to_owned(),
        ));
    }
    let mut sections: Vec<&str> = token.split('.').collect();
    while sections.last().is_some_and(|s| s.is_empty()) {
        sections.pop();
    }
    if sections.len() != 3 {
        return Err(TokenError::Malformed(format!(
            "Malformed JWT provided; expected three sections (header, payload, and signature), but {} sections provided",
            sections.len()
        )));
    }
    for (section, name) in sections.iter().zip(["header", "payload", "signature"]) {
        if java_trim(section).is_empty() {
            return Err(TokenError::Malformed(format!(
                "Malformed JWT provided; expected at least three sections (header, payload, and signature), but {name} section missing"
            )));
        }
    }
    Ok(())
}

/// A claim's value unless absent or JSON `null` (which Kafka's JWT library
/// treats as absent).
fn present<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    claims.get(name).filter(|v| !v.is_null())
}

/// A NumericDate claim in whole seconds (fractions truncated, out-of-range
/// values saturated), or `None` if the value is not a number.
fn numeric_date(value: &Value) -> Option<i64> {
    let Value::Number(n) = value else {
        return None;
    };
    if let Some(i) = n.as_i64() {
        Some(i)
    } else if n.as_u64().is_some() {
        Some(i64::MAX)
    } else {
        // `as` truncates toward zero and saturates, as Java's `longValue`.
        n.as_f64().map(|f| f as i64)
    }
}

/// A string or an array of strings as a list; `None` for anything else.
fn string_list(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items.iter().map(|item| item.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}

/// At most 64 bytes of `s` (at a character boundary), for messages quoting
/// client input.
fn truncated(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// Java's `String.trim`: strips characters up to U+0020 at both ends.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// A base64url JWS part (padding tolerated) decoded as a JSON object.
fn decode_json_part(part: &str) -> Result<Map<String, Value>, String> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).map_err(|e| e.to_string())?;
    parse_json_object(&bytes)
}

/// Parses a JSON object, refusing duplicate member names at its top level
/// (as Kafka's JWT library refuses them).
fn parse_json_object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    serde_json::from_slice::<UniqueKeyObject>(bytes).map(|object| object.0).map_err(|e| e.to_string())
}

/// A JSON object whose member names are unique.
struct UniqueKeyObject(Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueKeyObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = UniqueKeyObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UniqueKeyObject, A::Error> {
                let mut map = Map::new();
                while let Some(name) = access.next_key::<String>()? {
                    if map.contains_key(&name) {
                        return Err(A::Error::custom(format_args!(
                            "an entry for '{}' already exists; names must be unique",
                            truncated(&name)
                        )));
                    }
                    let value: Value = access.next_value()?;
                    map.insert(name, value);
                }
                Ok(UniqueKeyObject(map))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// A JWKS entry as a verification key, or why it cannot be one.
fn parse_jwk(entry: &Value) -> Result<VerificationKey, String> {
    let Value::Object(jwk) = entry else {
        return Err("not a JSON object".to_owned());
    };
    let text = |name: &str| -> Result<Option<String>, String> {
        match jwk.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("'{name}' is not a string")),
        }
    };
    let required = |name: &str| -> Result<Vec<u8>, String> {
        let value = text(name)?.ok_or_else(|| format!("'{name}' is missing"))?;
        URL_SAFE_NO_PAD.decode(value.trim_end_matches('=')).map_err(|e| format!("'{name}' is not base64url: {e}"))
    };
    let kid = text("kid")?;
    let usage = text("use")?;
    let alg = text("alg")?;
    let crv = text("crv")?;
    let kty_name = text("kty")?.ok_or("'kty' is missing")?;
    let (kty, key) = match kty_name.as_str() {
        "RSA" => {
            let n = required("n")?;
            let e = required("e")?;
            let n = strip_leading_zeros(&n);
            let e = strip_leading_zeros(&e);
            if n.is_empty() || e.is_empty() {
                return Err("RSA modulus or exponent is zero".to_owned());
            }
            (KeyType::Rsa, DecodingKey::from_rsa_raw_components(n, e))
        }
        "EC" => {
            let size = match crv.as_deref() {
                Some("P-256") => 32,
                Some("P-384") => 48,
                Some(other) => return Err(format!("unsupported curve {}", truncated(other))),
                None => return Err("'crv' is missing".to_owned()),
            };
            let x = required("x")?;
            let y = required("y")?;
            if x.len() != size || y.len() != size {
                return Err("EC coordinates do not match the curve".to_owned());
            }
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            // An uncompressed SEC1 point, the form the ECDSA verifier takes.
            (KeyType::Ec, DecodingKey::from_ec_der(&point))
        }
        "OKP" => {
            match crv.as_deref() {
                Some("Ed25519") => {}
                Some(other) => return Err(format!("unsupported curve {}", truncated(other))),
                None => return Err("'crv' is missing".to_owned()),
            }
            let x = required("x")?;
            if x.len() != 32 {
                return Err("Ed25519 public key is not 32 bytes".to_owned());
            }
            (KeyType::Okp, DecodingKey::from_ed_der(&x))
        }
        "oct" => {
            let k = required("k")?;
            if k.is_empty() {
                return Err("'k' is empty".to_owned());
            }
            (KeyType::Oct, DecodingKey::from_secret(&k))
        }
        other => return Err(format!("unsupported key type {}", truncated(other))),
    };
    Ok(VerificationKey { kid, kty, usage, alg, crv, key })
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// Why a token failed validation. `Display` is the reason Kafka's validator
/// gives (for the broker's logs: the client only ever sees
/// [`INVALID_TOKEN_CHALLENGE`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is larger than [`MAX_TOKEN_SIZE`].
    #[error(
        "Could not validate the access token: it is {size} bytes, larger than the limit of {MAX_TOKEN_SIZE} bytes"
    )]
    TooLarge {
        /// Size of the token in bytes.
        size: usize,
    },
    /// Not three non-empty dot-separated sections.
    #[error("{0}")]
    Malformed(String),
    /// The sections do not decode to a JWS this validator accepts: bad
    /// base64url or JSON, a `crit` header, no `alg`, `alg` `none` or not
    /// supported.
    #[error("Could not validate the access token: Unable to process JOSE object (cause: {0})")]
    Unprocessable(String),
    /// No JWKS key matches the header's `kid` and algorithm.
    #[error("Could not validate the access token: Unable to process JOSE object (cause: Unable to find a suitable verification key for JWS w/ header {{\"alg\":\"{alg}\"{}}})", kid.as_ref().map(|kid| format!(",\"kid\":\"{kid}\"")).unwrap_or_default())]
    UnresolvableKey {
        /// The header's `alg`.
        alg: String,
        /// The header's `kid` (at most 64 bytes of it).
        kid: Option<String>,
    },
    /// The signature does not verify with the selected key.
    #[error("Could not validate the access token: JWS signature is invalid")]
    InvalidSignature,
    /// Registered claims failed their checks.
    #[error("Could not validate the access token: JWT rejected due to invalid claims or other invalid content. Additional details: [{}]", issues_text(.0))]
    InvalidClaims(Vec<ClaimIssue>),
    /// The subject claim is not a string.
    #[error("Could not extract the '{0}' claim from the access token")]
    ClaimNotExtractable(String),
    /// The scope, `exp`, subject or `iat` value failed Kafka's checks
    /// (missing, empty, blank, duplicate, negative).
    #[error("{0}")]
    InvalidClaimValue(String),
}

impl TokenError {
    /// Whether the claim checks reported `issue` (compared by kind).
    pub fn has_issue(&self, issue: fn(&ClaimIssue) -> bool) -> bool {
        matches!(self, Self::InvalidClaims(issues) if issues.iter().any(issue))
    }
}

fn issues_text(issues: &[ClaimIssue]) -> String {
    issues.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// One failed check of a registered claim. Times are in seconds since the
/// epoch; `Display` is the message of Kafka's JWT library.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimIssue {
    /// An audience is configured but the token has no `aud`.
    NoAudience,
    /// No `aud` value is an expected one (or none is configured).
    AudienceMismatch {
        /// The token's audiences.
        audiences: Vec<String>,
        /// The configured audiences.
        expected: Vec<String>,
    },
    /// An issuer is configured but the token has no `iss`.
    NoIssuer {
        /// The configured issuer.
        expected: String,
    },
    /// `iss` is not the configured issuer.
    IssuerMismatch {
        /// The token's issuer.
        issuer: String,
        /// The configured issuer.
        expected: String,
    },
    /// No `exp`.
    NoExpirationTime,
    /// No `iat`.
    NoIssuedAt,
    /// `exp` has passed, even with the skew.
    Expired {
        /// The evaluation time.
        now: i64,
        /// The `exp` claim.
        exp: i64,
        /// The allowed clock skew in seconds.
        skew: i64,
    },
    /// `exp` is before `iat`.
    ExpiresBeforeIssuedAt {
        /// The `exp` claim.
        exp: i64,
        /// The `iat` claim.
        iat: i64,
    },
    /// `exp` is before `nbf`.
    ExpiresBeforeNotBefore {
        /// The `exp` claim.
        exp: i64,
        /// The `nbf` claim.
        nbf: i64,
    },
    /// `nbf` has not come, even with the skew.
    NotYetValid {
        /// The evaluation time.
        now: i64,
        /// The `nbf` claim.
        nbf: i64,
        /// The allowed clock skew in seconds.
        skew: i64,
    },
    /// A registered claim has the wrong JSON type.
    MalformedClaim {
        /// The claim.
        claim: String,
        /// What it should be.
        expected: &'static str,
    },
}

impl fmt::Display for ClaimIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let leeway = |skew: i64| {
            if skew > 0 {
                format!(" (even when providing {skew} seconds of leeway to account for clock skew).")
            } else {
                ".".to_owned()
            }
        };
        let expected_text = |expected: &[String]| match expected {
            [one] => one.clone(),
            many => format!("one of [{}]", many.join(", ")),
        };
        match self {
            Self::NoAudience => f.write_str("No Audience (aud) claim present."),
            Self::AudienceMismatch { audiences, expected } => {
                write!(f, "Audience (aud) claim [{}]", audiences.join(", "))?;
                if expected.is_empty() {
                    f.write_str(" present in the JWT but no expected audience value(s) were provided to the JWT Consumer.")?;
                } else {
                    f.write_str(" doesn't contain an acceptable identifier.")?;
                }
                write!(f, " Expected {} as an aud value.", expected_text(expected))
            }
            Self::NoIssuer { expected } => write!(f, "No Issuer (iss) claim present but was expecting {expected}"),
            Self::IssuerMismatch { issuer, expected } => {
                write!(f, "Issuer (iss) claim value ({issuer}) doesn't match expected value of {expected}")
            }
            Self::NoExpirationTime => f.write_str("No Expiration Time (exp) claim present."),
            Self::NoIssuedAt => f.write_str("No Issued At (iat) claim present."),
            Self::Expired { now, exp, skew } => write!(
                f,
                "The JWT is no longer valid - the evaluation time NumericDate{{{now}}} is on or after the Expiration Time (exp=NumericDate{{{exp}}}) claim value{}",
                leeway(*skew)
            ),
            Self::ExpiresBeforeIssuedAt { exp, iat } => write!(
                f,
                "The Expiration Time (exp=NumericDate{{{exp}}}) claim value cannot be before the Issued At (iat=NumericDate{{{iat}}}) claim value."
            ),
            Self::ExpiresBeforeNotBefore { exp, nbf } => write!(
                f,
                "The Expiration Time (exp=NumericDate{{{exp}}}) claim value cannot be before the Not Before (nbf=NumericDate{{{nbf}}}) claim value."
            ),
            Self::NotYetValid { now, nbf, skew } => write!(
                f,
                "The JWT is not yet valid as the evaluation time NumericDate{{{now}}} is before the Not Before (nbf=NumericDate{{{nbf}}}) claim time{}",
                leeway(*skew)
            ),
            Self::MalformedClaim { claim, expected } => {
                write!(f, "The value of the '{claim}' claim is not the expected type ({expected})")
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Server exchange
// ---------------------------------------------------------------------------

/// Why an OAUTHBEARER exchange failed.
///
/// `Display` is exactly the message Kafka sends to the client in the
/// `SaslAuthenticate` response for a first authentication (see
/// [`client_message`](Self::client_message) for re-authentication); the
/// reason behind it, for the broker's logs, is [`detail`](Self::detail).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    /// The client message is not a valid initial response.
    #[error("Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER")]
    InvalidClientFirstMessage(InitialResponseError),
    /// The token failed validation and the client acknowledged the error
    /// challenge with `\x01`.
    #[error("{{\"status\":\"invalid_token\"}}")]
    InvalidToken(TokenError),
    /// The initial response names an authorization id other than the
    /// token's principal.
    #[error("Authentication failed: Client requested an authorization id ({requested}) that is different from the token's principal name ({principal})")]
    AuthorizationIdMismatch {
        /// The authorization id the client sent.
        requested: String,
        /// The token's principal name.
        principal: String,
    },
    /// A message arrived after the exchange had completed or failed. Kafka
    /// answers this with `ILLEGAL_SASL_STATE` and closes the connection.
    #[error("Unexpected challenge in Sasl server state {state}")]
    InvalidState {
        /// `COMPLETE` or `FAILED`.
        state: &'static str,
    },
}

impl From<TokenError> for OAuthError {
    fn from(error: TokenError) -> Self {
        Self::InvalidToken(error)
    }
}

impl OAuthError {
    /// The Kafka error code of the response: `SASL_AUTHENTICATION_FAILED`
    /// (58), or `ILLEGAL_SASL_STATE` (34) for [`OAuthError::InvalidState`].
    pub fn error_code(&self) -> i16 {
        match self {
            Self::InvalidState { .. } => ILLEGAL_SASL_STATE,
            _ => SASL_AUTHENTICATION_FAILED,
        }
    }

    /// Whether the client sent something that is not a valid message for
    /// this point of the exchange (as opposed to a bad token).
    pub fn is_malformed(&self) -> bool {
        matches!(self, Self::InvalidClientFirstMessage(_) | Self::InvalidState { .. })
    }

    /// The message Kafka sends to the client; `reauthenticating` selects
    /// Kafka's wording for a re-authentication (KIP-368).
    pub fn client_message(&self, reauthenticating: bool) -> String {
        match self {
            Self::InvalidClientFirstMessage(_) => format!(
                "Authentication failed during {} due to invalid credentials with SASL mechanism {OAUTHBEARER_MECHANISM}",
                if reauthenticating { "re-authentication" } else { "authentication" },
            ),
            other => other.to_string(),
        }
    }

    /// What actually went wrong, for the broker's logs; never send it to
    /// the client.
    pub fn detail(&self) -> String {
        match self {
            Self::InvalidClientFirstMessage(e) => e.to_string(),
            Self::InvalidToken(e) => e.to_string(),
            Self::AuthorizationIdMismatch { .. } => "authorization id differs from the token's principal".to_owned(),
            Self::InvalidState { state } => format!("message received in state {state}"),
        }
    }
}

/// What the server sends after a successful step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthStep {
    /// The token failed validation: send these bytes (the error challenge
    /// [`INVALID_TOKEN_CHALLENGE`]) with no error; the client answers
    /// `\x01`, which fails the exchange with [`OAuthError::InvalidToken`].
    Continue(Vec<u8>),
    /// The client is authenticated: send empty auth bytes.
    Done {
        /// The validated token: principal name, expiry, scopes.
        token: ValidatedToken,
        /// The client's SASL extensions (all accepted, as by Kafka's
        /// validator callback handler).
        extensions: BTreeMap<String, String>,
    },
}

enum State {
    AwaitingInitialResponse,
    AwaitingErrorAcknowledgement(TokenError),
    Complete,
    Failed,
}

/// The server side of one OAUTHBEARER exchange: feed it each client
/// message with [`step`](Self::step). After [`OAuthStep::Done`] or any
/// error, every further step fails with [`OAuthError::InvalidState`].
pub struct OAuthBearerServer {
    state: State,
}

impl fmt::Debug for OAuthBearerServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::AwaitingInitialResponse => "AWAITING_INITIAL_RESPONSE",
            State::AwaitingErrorAcknowledgement(_) => "AWAITING_ERROR_ACKNOWLEDGEMENT",
            State::Complete => "COMPLETE",
            State::Failed => "FAILED",
        };
        f.debug_struct("OAuthBearerServer").field("state", &state).finish()
    }
}

impl Default for OAuthBearerServer {
    fn default() -> Self {
        Self::new()
    }
}

impl OAuthBearerServer {
    /// A new exchange awaiting the client's initial response.
    pub fn new() -> Self {
        Self { state: State::AwaitingInitialResponse }
    }

    /// Whether the exchange completed successfully.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Complete)
    }

    /// Processes the next client message at `now_ms` (milliseconds since
    /// the epoch), as Kafka's `OAuthBearerSaslServer` does:
    ///
    /// - an initial response whose token is valid completes the exchange
    ///   ([`OAuthStep::Done`]), unless it names an authorization id other
    ///   than the token's principal;
    /// - one whose token is not valid gets the error challenge
    ///   ([`OAuthStep::Continue`]); then a lone `\x01` fails the exchange
    ///   with [`OAuthError::InvalidToken`], while any other message is taken
    ///   as a new initial response;
    /// - a message that is not a valid initial response fails the exchange.
    pub fn step(
        &mut self,
        client_message: &[u8],
        validator: &OAuthBearerValidator,
        now_ms: i64,
    ) -> Result<OAuthStep, OAuthError> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Complete => {
                self.state = State::Complete;
                Err(OAuthError::InvalidState { state: "COMPLETE" })
            }
            State::Failed => Err(OAuthError::InvalidState { state: "FAILED" }),
            State::AwaitingErrorAcknowledgement(reason) if client_message == [SEPARATOR] => {
                Err(OAuthError::InvalidToken(reason))
            }
            State::AwaitingInitialResponse | State::AwaitingErrorAcknowledgement(_) => {
                self.initial_response(client_message, validator, now_ms)
            }
        }
    }

    fn initial_response(
        &mut self,
        client_message: &[u8],
        validator: &OAuthBearerValidator,
        now_ms: i64,
    ) -> Result<OAuthStep, OAuthError> {
        let response = parse_client_initial_response(client_message).map_err(OAuthError::InvalidClientFirstMessage)?;
        let token = match validator.validate(&response.token, now_ms) {
            Ok(token) => token,
            Err(reason) => {
                self.state = State::AwaitingErrorAcknowledgement(reason);
                return Ok(OAuthStep::Continue(INVALID_TOKEN_CHALLENGE.as_bytes().to_vec()));
            }
        };
        if !response.authorization_id.is_empty() && response.authorization_id != token.principal_name {
            return Err(OAuthError::AuthorizationIdMismatch {
                requested: response.authorization_id,
                principal: token.principal_name,
            });
        }
        self.state = State::Complete;
        Ok(OAuthStep::Done { token, extensions: response.extensions })
    }
}

/// The session lifetime Kafka sends with a successful `SaslAuthenticate`
/// (KIP-368) for a token expiring at `expires_at_ms`, authenticated at
/// `now_ms`: the time left until expiry, capped by
/// `connections.max.reauth.ms` when that is positive, and 0 if the token
/// has already expired (within the clock skew). The broker closes the
/// connection if it is not re-authenticated within this time.
pub fn session_lifetime_ms(expires_at_ms: i64, now_ms: i64, connections_max_reauth_ms: i64) -> i64 {
    let remaining = expires_at_ms.saturating_sub(now_ms);
    let lifetime = if connections_max_reauth_ms > 0 { remaining.min(connections_max_reauth_ms) } else { remaining };
    lifetime.max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use ring::rand::SystemRandom;
    use ring::signature::{
        EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents, ECDSA_P256_SHA256_FIXED_SIGNING,
    };
    use serde_json::json;

    const NOW_MS: i64 = 1_700_000_000_123;
    const NOW: i64 = 1_700_000_000;

    /// A 2048-bit RSA private key (PKCS#1 DER, base64) used only by these
    /// tests.
    const RSA_PKCS1_DER_B64: &str = concat!(
        "MIIEowIBAAKCAQEAqtT/L4Omg3W7SJgqFx4SRVewBN+TluZYYUOh0mt+Cnod3VelninTb7Pqwd1OMAFXv28gMOLDpchBVVnB",
        "BNB0wd0E9VqEz2gyCuvEZPMbJI7LqVv+7roVsFOA2yp5iqqjMpXUBBr95/m5nHLlLHLxYhlyTc0tOk35vzKFyYMidWTCYKhK",
        "OqquKygdzhbTTu9zCDwn+37d0KQwLqUzAYzx6RbmtTRoqWgf//XJCXk8KCnXcq3GGQWLACIvuOM+rTqehoDO8LkA5D7UiAcg",
        "TpNg1zAOZzuVlJUiK4xzyaCjrdNz7STNEDi6SomtkErMVFpaTTONh5kD6eOPMLoWPp4VpQIDAQABAoIBAB7kXhIuTTAEG/48",
        "cA4WpMiv2veCo7qbxHswQwTdZeFIpHpolV1E5ISUZT0yAyfYslC+rHRSqX0i+beQv8AaXybIjFM/D3m/Np91c6IquSuS+/7Q",
        "EUmD0pS8gPaBF5INGe51nC2y4Nvwc5F4UHuJfJ+YCOzLT+S1gZaC8SEX6uUN62sSXN7oLKnUq2/Pqcvwh2yedd9JttQC0Tke",
        "4+TrzTcbt1S/EppOhz4Ze9v9Jn/jEHwZiozL4vj5noilGnvFYuurFCS1PL1QRC2qDI5B7GlkrJEN/CaNJk6/zutBOKppqXN3",
        "2+jESV3Dv9Z2ptbOgWfC4p/JRsP6vGeCIXI9YyECgYEA70w4UOj0/gEQmVz8SP1wC69U6uT/1ReyBSYvhGYUEUYhqfhaAwD9",
        "DrdjhrnbjjgdoXLrZJqGhyDtuHUO5XCH7qS3m+ZIhw1wZRNr1Qfhog2I4Anano/IYoEZZV1C2n1gFeer/VMBFx8VO/9Sp5yM",
        "vvbjJvDkaXJpYKWNAZatF6ECgYEAtsFt2lOar2yqJo73DCC/bUjNWZMJFYxzMRlRIJWMm22318UD15GHbyBufQ5HHmMEpd4a",
        "rtGaMx8znMknZYlG1YKJMam08nglFTwPkspvOJWEVuONiMr/5HA/iLoz73wwFTIkRdiHFrfi8Rr5Ok3ESAV4mPKsnuOwHIir",
        "a8wyb4UCgYAUaTXsgNJU0BZwXmQOfb+O35eoqXvA21KN6eHnsyVHC+pXKx3SX8U1+iJ9HWFC0jqEyN6XKC8NW5urPiDVJTIT",
        "Au2+WHgbPOQ3Wt65vwBZ6DmiknSZTb5T2Jsn8DqBlGwbsjUTWH8hT79p7K9KKKpAp6JccfOpot6mJbjPR+DfwQKBgBEJFNFe",
        "K7Qgf/faKcMypkVsnN+1qgodLnusLXjJF/NBFfsB/WqxwRslvcbgdtapSjyf6ILVPPd4+BmsUoTPeA/c/Cbp99kGRAans5fu",
        "UNHIdi6XRZEzwwirQfDf0omHXQAMzX7JQUZn27q31fWOXDaOdABl1pt1A+yU/M2umiD1AoGBAJC87pwNjx5xZMU142Wt2ymM",
        "nyQmqPynpIe8PZaicD63oFxWxldgG5Hs3Z9qQDIZne/lSJcMYy22OyoVBpIUQC/GCtbMshbixq0Ddr4O1HrgNHgNf17Zw6BT",
        "tJxbZPuk6sK4rMGjF4HXHA1/qgcTxnBKrjenTWEstE3WtkMSDkkg",
    );

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A signing key with its public JWK.
    struct TestKey {
        alg: Algorithm,
        encoding: EncodingKey,
        jwk: Value,
    }

    impl TestKey {
        fn ec(kid: &str) -> Self {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
            let point = pair.public_key().as_ref();
            assert_eq!(point.len(), 65);
            Self {
                alg: Algorithm::ES256,
                encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
                jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                            "x": b64(&point[1..33]), "y": b64(&point[33..])}),
            }
        }

        fn rsa(kid: &str) -> Self {
            let der = base64::engine::general_purpose::STANDARD.decode(RSA_PKCS1_DER_B64).unwrap();
            let pair = RsaKeyPair::from_der(&der).unwrap();
            let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
            Self {
                alg: Algorithm::RS256,
                encoding: EncodingKey::from_rsa_der(&der),
                jwk: json!({"kty": "RSA", "kid": kid, "alg": "RS256", "n": b64(&public.n), "e": b64(&public.e)}),
            }
        }

        fn ed25519(kid: &str) -> Self {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
            Self {
                alg: Algorithm::EdDSA,
                encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
                jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(pair.public_key().as_ref())}),
            }
        }

        fn hmac(kid: &str, secret: &[u8]) -> Self {
            Self {
                alg: Algorithm::HS256,
                encoding: EncodingKey::from_secret(secret),
                jwk: json!({"kty": "oct", "kid": kid, "k": b64(secret)}),
            }
        }

        fn kid(&self) -> Option<String> {
            self.jwk["kid"].as_str().map(str::to_owned)
        }

        fn sign(&self, claims: &Value) -> String {
            self.sign_with_kid(self.kid(), claims)
        }

        fn sign_with_kid(&self, kid: Option<String>, claims: &Value) -> String {
            let mut header = Header::new(self.alg);
            header.kid = kid;
            jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
        }
    }

    fn jwks(keys: &[&TestKey]) -> String {
        json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
    }

    fn validator_with(config: OAuthBearerConfig, keys: &[&TestKey]) -> OAuthBearerValidator {
        OAuthBearerValidator::new(&config, &jwks(keys)).unwrap()
    }

    fn config() -> OAuthBearerConfig {
        OAuthBearerConfig::new("file:///etc/sluice/jwks.json")
    }

    fn validator(keys: &[&TestKey]) -> OAuthBearerValidator {
        validator_with(config(), keys)
    }

    fn claims() -> Value {
        json!({"sub": "alice", "iat": NOW - 60, "exp": NOW + 3600, "scope": "kafka"})
    }

    fn with(mut claims: Value, name: &str, value: Value) -> Value {
        claims[name] = value;
        claims
    }

    fn without(mut claims: Value, name: &str) -> Value {
        claims.as_object_mut().unwrap().remove(name);
        claims
    }

    fn client_first(token: &str) -> Vec<u8> {
        format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
    }

    fn unsigned_token(header: &Value, claims: &Value, signature: &str) -> String {
        format!("{}.{}.{signature}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()))
    }

    // --- client initial response ------------------------------------------

    #[test]
    fn parses_minimal_initial_response() {
        let response = parse_client_initial_response(b"n,,\x01auth=Bearer abc.def-_~+/.ghi==\x01\x01").unwrap();
        assert_eq!(response.token, "abc.def-_~+/.ghi==");
        assert_eq!(response.authorization_id, "");
        assert!(response.extensions.is_empty());
        assert!(!format!("{response:?}").contains("abc.def"));
    }

    #[test]
    fn parses_authzid_extensions_and_scheme_case() {
        let message = b"n,a=us=2Cer=3D,\x01auth=bEaReR   tok\x01traceId=a b\tc=d\x01traceId=last\x01Other=x\x01\x01";
        let response = parse_client_initial_response(message).unwrap();
        assert_eq!(response.token, "tok");
        assert_eq!(response.authorization_id, "us=2Cer=3D");
        assert_eq!(
            response.extensions,
            BTreeMap::from([("Other".to_owned(), "x".to_owned()), ("traceId".to_owned(), "last".to_owned())])
        );
    }

    #[test]
    fn refuses_malformed_initial_responses_with_kafkas_messages() {
        use InitialResponseError::*;
        let cases: &[(&[u8], InitialResponseError)] = &[
            (b"", Invalid),
            (b"\x01", Invalid),
            (b"y,,\x01auth=Bearer t\x01\x01", Invalid),
            (b"p=tls-unique,,\x01auth=Bearer t\x01\x01", Invalid),
            (b"n,\x01auth=Bearer t\x01\x01", Invalid),
            (b"n,,auth=Bearer t\x01\x01", Invalid),
            (b"n,,\x01auth=Bearer t\x01", Invalid),
            (b"n,,\x01auth=Bearer t\x01\x01\x01", Invalid),
            (b"n,,\x01auth=Bearer t\x01\x01x", Invalid),
            (b"n,a=,\x01auth=Bearer t\x01\x01", Invalid),
            (b"n,a=x=2X,\x01auth=Bearer t\x01\x01", Invalid),
            (b"n,a=\xc3\xa9,\x01auth=Bearer t\x01\x01", Invalid),
            (b"n,,\x01auth=Bearer t\x01k1=v\x01\x01", Invalid),
            (b"n,,\x01auth=Bearer t\x01k=\x01\x01", Invalid),
            (b"n,,\x01auth=Bearer t\x01=v\x01\x01", Invalid),
            (b"n,,\x01auth=Bearer t\x01k=v\x00\x01\x01", Invalid),
            (b"n,,\x01auth=Bearer t\x01k=\xc3\xa9\x01\x01", Invalid),
            (b"n,,\x01\x01", AuthNotSpecified),
            (b"n,,\x01Auth=Bearer t\x01\x01", AuthNotSpecified),
            (b"n,,\x01auth=Bearer\x01\x01", InvalidAuthFormat),
            (b"n,,\x01auth=Bearer t t\x01\x01", InvalidAuthFormat),
            (b"n,,\x01auth= Bearer t\x01\x01", InvalidAuthFormat),
            (b"n,,\x01auth=Bearer t=x\x01\x01", InvalidAuthFormat),
            (b"n,,\x01auth=Bearer ===\x01\x01", InvalidAuthFormat),
            (b"n,,\x01auth=Basic dXNlcjpwYXNz\x01\x01", InvalidScheme("Basic".to_owned())),
        ];
        for (message, expected) in cases {
            assert_eq!(
                parse_client_initial_response(message).as_ref(),
                Err(expected),
                "{:?}",
                String::from_utf8_lossy(message)
            );
        }
        assert_eq!(
            InitialResponseError::AuthNotSpecified.to_string(),
            "Invalid OAUTHBEARER client first message: 'auth' not specified"
        );
        let oversize = client_first(&"a".repeat(MAX_CLIENT_MESSAGE_SIZE));
        assert_eq!(
            parse_client_initial_response(&oversize),
            Err(InitialResponseError::TooLarge { size: oversize.len() })
        );
    }

    // --- configuration ------------------------------------------------------

    #[test]
    fn reads_kafka_properties_with_defaults() {
        let props = BTreeMap::from([(JWKS_ENDPOINT_URL_CONFIG, " file:/etc/jwks.json ")]);
        let config = OAuthBearerConfig::from_properties(|name| props.get(name).copied()).unwrap();
        assert_eq!(config, OAuthBearerConfig::new("file:/etc/jwks.json"));
        assert_eq!(config.sub_claim_name, "sub");
        assert_eq!(config.scope_claim_name, "scope");
        assert_eq!(config.clock_skew_seconds, 30);

        let props = BTreeMap::from([
            (JWKS_ENDPOINT_URL_CONFIG, "/etc/jwks.json"),
            (EXPECTED_AUDIENCE_CONFIG, " kafka , other "),
            (EXPECTED_ISSUER_CONFIG, " https://idp "),
            (SUB_CLAIM_NAME_CONFIG, "client_id"),
            (SCOPE_CLAIM_NAME_CONFIG, "scp"),
            (CLOCK_SKEW_SECONDS_CONFIG, " 5 "),
        ]);
        let config = OAuthBearerConfig::from_properties(|name| props.get(name).copied()).unwrap();
        assert_eq!(config.expected_audience, ["kafka", "other"]);
        assert_eq!(config.expected_issuer.as_deref(), Some("https://idp"));
        assert_eq!(config.sub_claim_name, "client_id");
        assert_eq!(config.scope_claim_name, "scp");
        assert_eq!(config.clock_skew_seconds, 5);
    }

    #[test]
    fn refuses_bad_properties() {
        let props: BTreeMap<&str, &str> = BTreeMap::new();
        let err = OAuthBearerConfig::from_properties(|name| props.get(name).copied()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "The OAuth configuration option sasl.oauthbearer.jwks.endpoint.url value must be non-null"
        );
        let props = BTreeMap::from([(JWKS_ENDPOINT_URL_CONFIG, "/j"), (SUB_CLAIM_NAME_CONFIG, "  ")]);
        assert_eq!(
            OAuthBearerConfig::from_properties(|name| props.get(name).copied()),
            Err(OAuthConfigError::Blank(SUB_CLAIM_NAME_CONFIG))
        );
        let props = BTreeMap::from([(JWKS_ENDPOINT_URL_CONFIG, "/j"), (CLOCK_SKEW_SECONDS_CONFIG, "lots")]);
        assert_eq!(
            OAuthBearerConfig::from_properties(|name| props.get(name).copied()).unwrap_err().to_string(),
            "Invalid value lots for configuration sasl.oauthbearer.clock.skew.seconds: Not a number of type INT"
        );
        let props = BTreeMap::from([(JWKS_ENDPOINT_URL_CONFIG, "https://idp/jwks")]);
        assert!(matches!(
            OAuthBearerConfig::from_properties(|name| props.get(name).copied()),
            Err(OAuthConfigError::UnsupportedProtocol { .. })
        ));
    }

    #[test]
    fn resolves_jwks_file_locations() {
        let path = |url: &str| OAuthBearerConfig::new(url).jwks_file();
        assert_eq!(path("file:///etc/jwks.json"), Ok(PathBuf::from("/etc/jwks.json")));
        assert_eq!(path("file:/etc/jwks.json"), Ok(PathBuf::from("/etc/jwks.json")));
        assert_eq!(path("FILE://localhost/etc/jwks.json?x#y"), Ok(PathBuf::from("/etc/jwks.json")));
        assert_eq!(path("file:///etc/a%20b.json"), Ok(PathBuf::from("/etc/a%20b.json")));
        assert_eq!(path("/etc/jwks.json"), Ok(PathBuf::from("/etc/jwks.json")));
        assert_eq!(path("conf/jwks.json"), Ok(PathBuf::from("conf/jwks.json")));
        assert!(matches!(path("file://host"), Err(OAuthConfigError::MalformedUrl { .. })));
        assert!(matches!(path("file:"), Err(OAuthConfigError::MalformedUrl { .. })));
        assert!(matches!(path("http://idp/jwks"), Err(OAuthConfigError::UnsupportedProtocol { .. })));
        assert_eq!(
            path("ftp://idp/jwks").unwrap_err().to_string(),
            "The OAuth configuration option sasl.oauthbearer.jwks.endpoint.url contains a URL (ftp://idp/jwks) that \
             contains an invalid protocol (ftp); only \"http\", \"https\", and \"file\" protocol are supported"
        );
        assert_eq!(path(" "), Err(OAuthConfigError::Blank(JWKS_ENDPOINT_URL_CONFIG)));
    }

    #[test]
    fn loads_jwks_skipping_unusable_keys() {
        let ec = TestKey::ec("ec");
        let text = json!({"keys": [
            ec.jwk,
            {"kty": "EC", "crv": "P-521", "kid": "big", "x": "AA", "y": "AA"},
            {"kty": "RSA", "kid": "no-n", "e": "AQAB"},
            {"kty": "weird"},
            {"kty": "OKP", "crv": "Ed448", "x": "AA"},
            {"kty": "EC", "crv": "P-256", "x": b64(&[1; 31]), "y": b64(&[1; 32])},
            "not a key",
        ]})
        .to_string();
        let validator = OAuthBearerValidator::new(&config(), &text).unwrap();
        assert_eq!(validator.key_count(), 1);
        assert_eq!(validator.skipped_keys().len(), 6);
        assert!(validator.skipped_keys()[0].contains("unsupported curve P-521"));
        assert!(!format!("{validator:?}").contains(ec.jwk["x"].as_str().unwrap()));
    }

    #[test]
    fn refuses_bad_jwks_documents() {
        let load = |text: &str| OAuthBearerValidator::new(&config(), text).map(|_| ());
        assert_eq!(load(r#"{"nokeys": []}"#), Err(OAuthConfigError::JwksWithoutKeys));
        assert_eq!(load(r#"{"keys": {}}"#), Err(OAuthConfigError::JwksWithoutKeys));
        assert!(matches!(load("[1, 2]"), Err(OAuthConfigError::InvalidJwks(_))));
        assert!(matches!(load("{"), Err(OAuthConfigError::InvalidJwks(_))));
        assert!(matches!(load(r#"{"keys": [], "keys": []}"#), Err(OAuthConfigError::InvalidJwks(_))));
        let huge = format!(r#"{{"keys": [], "pad": "{}"}}"#, " ".repeat(MAX_JWKS_SIZE));
        assert!(matches!(load(&huge), Err(OAuthConfigError::JwksTooLarge { .. })));
        assert_eq!(load(r#"{"keys": []}"#), Ok(()));
        let mut bad = config();
        bad.jwks_endpoint_url = "https://idp/jwks".to_owned();
        assert!(OAuthBearerValidator::new(&bad, r#"{"keys": []}"#).is_err());
    }

    // --- token validation ---------------------------------------------------

    #[test]
    fn accepts_valid_tokens_of_each_key_type() {
        let ec = TestKey::ec("ec-1");
        let rsa = TestKey::rsa("rsa-1");
        let ed = TestKey::ed25519("ed-1");
        let hs = TestKey::hmac("hs-1", b"0123456789abcdef0123456789abcdef");
        let validator = validator(&[&ec, &rsa, &ed, &hs]);
        for key in [&ec, &rsa, &ed, &hs] {
            let token = validator.validate(&key.sign(&claims()), NOW_MS).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                token,
                ValidatedToken {
                    principal_name: "alice".to_owned(),
                    expires_at_ms: (NOW + 3600) * 1000,
                    issued_at_ms: (NOW - 60) * 1000,
                    scopes: BTreeSet::from(["kafka".to_owned()]),
                }
            );
        }
    }

    #[test]
    fn selects_keys_like_kafka() {
        let a = TestKey::ec("a");
        let b = TestKey::ec("b");
        let validator = validator(&[&a, &b]);
        // The header's kid picks the key.
        assert!(validator.validate(&b.sign(&claims()), NOW_MS).is_ok());
        // Without a kid, the first key of the right type is used.
        assert!(validator.validate(&a.sign_with_kid(None, &claims()), NOW_MS).is_ok());
        assert_eq!(validator.validate(&b.sign_with_kid(None, &claims()), NOW_MS), Err(TokenError::InvalidSignature));
        // Unknown kid.
        let err = validator.validate(&a.sign_with_kid(Some("zzz".to_owned()), &claims()), NOW_MS).unwrap_err();
        assert_eq!(err, TokenError::UnresolvableKey { alg: "ES256".to_owned(), kid: Some("zzz".to_owned()) });
        assert_eq!(
            err.to_string(),
            "Could not validate the access token: Unable to process JOSE object (cause: Unable to find a suitable \
             verification key for JWS w/ header {\"alg\":\"ES256\",\"kid\":\"zzz\"})"
        );
        // A key of another type under the same kid is not used.
        let hs = TestKey::hmac("a", b"secret-secret-secret-secret-1234");
        assert!(matches!(validator.validate(&hs.sign(&claims()), NOW_MS), Err(TokenError::UnresolvableKey { .. })));
        // Keys meant for encryption are not used.
        let mut enc = TestKey::ec("enc");
        enc.jwk["use"] = json!("enc");
        let validator = self::validator(&[&enc]);
        assert!(matches!(validator.validate(&enc.sign(&claims()), NOW_MS), Err(TokenError::UnresolvableKey { .. })));
    }

    #[test]
    fn refuses_bad_signatures() {
        let key = TestKey::ec("k");
        let impostor = TestKey::ec("k");
        let validator = validator(&[&key]);
        assert_eq!(validator.validate(&impostor.sign(&claims()), NOW_MS), Err(TokenError::InvalidSignature));

        // A payload swapped under a valid signature.
        let token = key.sign(&claims());
        let forged = key.sign(&with(claims(), "sub", json!("mallory")));
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[1] = forged.split('.').nth(1).unwrap();
        assert_eq!(validator.validate(&parts.join("."), NOW_MS), Err(TokenError::InvalidSignature));

        // A zero or short signature, and one that is not base64url.
        for signature in [b64(&[0; 64]), b64(&[1; 10])] {
            let token = format!("{}.{}.{signature}", parts[0], parts[1]);
            assert_eq!(validator.validate(&token, NOW_MS), Err(TokenError::InvalidSignature));
        }
        let garbage = format!("{}.{}.!!!!", parts[0], parts[1]);
        assert!(matches!(validator.validate(&garbage, NOW_MS), Err(TokenError::Unprocessable(_))));
    }

    #[test]
    fn refuses_unsigned_and_unsupported_algorithms() {
        let key = TestKey::ec("k");
        let validator = validator(&[&key]);
        let none = unsigned_token(&json!({"alg": "none", "kid": "k"}), &claims(), "x");
        assert_eq!(
            validator.validate(&none, NOW_MS),
            Err(TokenError::Unprocessable("'none' is a blocked algorithm".to_owned()))
        );
        for header in [json!({"kid": "k"}), json!({"alg": "ES512", "kid": "k"}), json!({"alg": 7})] {
            let token = unsigned_token(&header, &claims(), "x");
            assert!(matches!(validator.validate(&token, NOW_MS), Err(TokenError::Unprocessable(_))), "{header}");
        }
        let crit = unsigned_token(&json!({"alg": "ES256", "kid": "k", "crit": ["exp"]}), &claims(), "x");
        assert_eq!(
            validator.validate(&crit, NOW_MS),
            Err(TokenError::Unprocessable("Unrecognized header 'exp' marked as critical.".to_owned()))
        );
    }

    #[test]
    fn checks_expiry_and_not_before_with_skew() {
        let key = TestKey::ec("k");
        let validator = validator(&[&key]);
        let check = |claims: Value| validator.validate(&key.sign(&claims), NOW_MS);

        let expired = check(with(claims(), "exp", json!(NOW - 31))).unwrap_err();
        assert!(expired.has_issue(|i| matches!(i, ClaimIssue::Expired { skew: 30, .. })), "{expired}");
        assert!(expired.to_string().contains(
            "The JWT is no longer valid - the evaluation time NumericDate{1700000000} is on or after the Expiration \
             Time (exp=NumericDate{1699999969}) claim value (even when providing 30 seconds of leeway"
        ));
        // Within the skew the token is still good; its session lifetime is 0.
        let token = check(with(claims(), "exp", json!(NOW - 29))).unwrap();
        assert_eq!(token.expires_at_ms, (NOW - 29) * 1000);
        assert_eq!(session_lifetime_ms(token.expires_at_ms, NOW_MS, 0), 0);
        // Exactly skew seconds after exp is expired.
        assert!(check(with(claims(), "exp", json!(NOW - 30))).is_err());

        let early = check(with(claims(), "nbf", json!(NOW + 31))).unwrap_err();
        assert!(early.has_issue(|i| matches!(i, ClaimIssue::NotYetValid { .. })), "{early}");
        assert!(check(with(claims(), "nbf", json!(NOW + 30))).is_ok());

        // iat is required but not compared with the clock.
        let err = check(without(claims(), "iat")).unwrap_err();
        assert!(err.has_issue(|i| matches!(i, ClaimIssue::NoIssuedAt)), "{err}");
        assert!(check(with(claims(), "iat", json!(NOW + 600))).is_ok());
        let err = check(with(claims(), "iat", json!(NOW + 7200))).unwrap_err();
        assert!(err.has_issue(|i| matches!(i, ClaimIssue::ExpiresBeforeIssuedAt { .. })), "{err}");

        let err = check(without(claims(), "exp")).unwrap_err();
        assert!(err.has_issue(|i| matches!(i, ClaimIssue::NoExpirationTime)), "{err}");
        let err = check(with(claims(), "exp", json!("tomorrow"))).unwrap_err();
        assert!(err.has_issue(|i| matches!(i, ClaimIssue::MalformedClaim { claim, .. } if claim == "exp")), "{err}");

        // Fractional and huge dates do not break anything.
        assert_eq!(check(with(claims(), "exp", json!(NOW as f64 + 100.9))).unwrap().expires_at_ms, (NOW + 100) * 1000);
        assert_eq!(check(with(claims(), "exp", json!(u64::MAX))).unwrap().expires_at_ms, i64::MAX);
        let err = check(with(claims(), "iat", json!(-5))).unwrap_err();
        assert_eq!(
            err,
            TokenError::InvalidClaimValue(
                "iat value must be null or non-negative; value given was \"-5000\"".to_owned()
            )
        );
    }

    #[test]
    fn honours_configured_skew() {
        let key = TestKey::ec("k");
        let mut config = config();
        config.clock_skew_seconds = 0;
        let validator = validator_with(config, &[&key]);
        let err = validator.validate(&key.sign(&with(claims(), "exp", json!(NOW))), NOW_MS).unwrap_err();
        assert!(err.to_string().ends_with("claim value.]"), "{err}");
        assert!(validator.validate(&key.sign(&with(claims(), "exp", json!(NOW + 1))), NOW_MS).is_ok());
    }

    #[test]
    fn checks_audience() {
        let key = TestKey::ec("k");
        // Without a configured audience a token carrying one is refused.
        let open = validator(&[&key]);
        let err = open.validate(&key.sign(&with(claims(), "aud", json!("kafka"))), NOW_MS).unwrap_err();
        assert!(err.to_string().contains(
            "Audience (aud) claim [kafka] present in the JWT but no expected audience value(s) were provided to the JWT Consumer."
        ));
        assert!(open.validate(&key.sign(&claims()), NOW_MS).is_ok());

        let mut config = config();
        config.expected_audience = vec!["kafka".to_owned(), "other".to_owned()];
        let validator = validator_with(config, &[&key]);
        let check = |claims: Value| validator.validate(&key.sign(&claims), NOW_MS);
        assert!(check(with(claims(), "aud", json!("kafka"))).is_ok());
        assert!(check(with(claims(), "aud", json!(["web", "other"]))).is_ok());
        let err = check(with(claims(), "aud", json!(["web"]))).unwrap_err();
        assert!(err.has_issue(|i| matches!(i, ClaimIssue::AudienceMismatch { .. })), "{err}");
        assert!(err.to_string().contains(
            "Audience (aud) claim [web] doesn't contain an acceptable identifier. Expected one of [kafka, other] as an aud value."
        ));
        let err = check(claims()).unwrap_err();
        assert!(err.has_issue(|i| matches!(i, ClaimIssue::NoAudience)), "{err}");
        let err = check(with(claims(), "aud", json!([1]))).unwrap_err();
        assert!(err.has_issue(|i| matches!(i, ClaimIssue::MalformedClaim { claim, .. } if claim == "aud")), "{err}");
    }

    #[test]
    fn checks_issuer() {
        let key = TestKey::ec("k");
        let mut config = config();
        config.expected_issuer = Some("https://idp".to_owned());
        let validator = validator_with(config, &[&key]);
        let check = |claims: Value| validator.validate(&key.sign(&claims), NOW_MS);
        assert!(check(with(claims(), "iss", json!("https://idp"))).is_ok());
        let err = check(with(claims(), "iss", json!("https://evil"))).unwrap_err();
        assert_eq!(
            err,
            TokenError::InvalidClaims(vec![ClaimIssue::IssuerMismatch {
                issuer: "https://evil".to_owned(),
                expected: "https://idp".to_owned()
            }])
        );
        let err = check(claims()).unwrap_err();
        assert!(err.has_issue(|i| matches!(i, ClaimIssue::NoIssuer { .. })), "{err}");
        // Several failures are all reported.
        let err = check(with(without(claims(), "exp"), "iss", json!("x"))).unwrap_err();
        assert!(matches!(&err, TokenError::InvalidClaims(issues) if issues.len() == 2), "{err}");
        // Without a configured issuer any issuer is fine.
        let open = self::validator(&[&key]);
        assert!(open.validate(&key.sign(&with(claims(), "iss", json!("anyone"))), NOW_MS).is_ok());
    }

    #[test]
    fn checks_subject_and_scopes() {
        let key = TestKey::ec("k");
        let validator = validator(&[&key]);
        let check = |claims: Value| validator.validate(&key.sign(&claims), NOW_MS);
        fn value_error<T>(message: &str) -> Result<T, TokenError> {
            Err(TokenError::InvalidClaimValue(message.to_owned()))
        }

        assert_eq!(check(without(claims(), "sub")), value_error("sub value must be non-null"));
        assert_eq!(check(with(claims(), "sub", json!(null))), value_error("sub value must be non-null"));
        assert_eq!(check(with(claims(), "sub", json!(""))), value_error("sub value must be non-empty"));
        assert_eq!(
            check(with(claims(), "sub", json!(" \t"))),
            value_error("sub value must not contain only whitespace")
        );
        assert_eq!(check(with(claims(), "sub", json!("  bob "))).unwrap().principal_name, "bob");
        let err = check(with(claims(), "sub", json!(42))).unwrap_err();
        assert!(err.has_issue(|i| matches!(i, ClaimIssue::MalformedClaim { claim, .. } if claim == "sub")), "{err}");

        let scopes = |claims: Value| check(claims).map(|t| t.scopes.into_iter().collect::<Vec<_>>());
        assert_eq!(scopes(with(claims(), "scope", json!("read write"))).unwrap(), ["read write"]);
        assert_eq!(scopes(with(claims(), "scope", json!([" b", "a "]))).unwrap(), ["a", "b"]);
        assert!(scopes(without(claims(), "scope")).unwrap().is_empty());
        assert!(scopes(with(claims(), "scope", json!(7))).unwrap().is_empty());
        assert_eq!(
            scopes(with(claims(), "scope", json!(["a", " a"]))),
            value_error("scope value must not contain duplicates - a already present")
        );
        assert_eq!(scopes(with(claims(), "scope", json!(["a", ""]))), value_error("scope value must be non-empty"));
        assert_eq!(scopes(with(claims(), "scope", json!([null]))), value_error("scope value must be non-null"));
        assert_eq!(scopes(with(claims(), "scope", json!([{}]))), value_error("scope value must be a string"));
    }

    #[test]
    fn uses_configured_claim_names() {
        let key = TestKey::ec("k");
        let mut config = config();
        config.sub_claim_name = "client_id".to_owned();
        config.scope_claim_name = "scp".to_owned();
        let validator = validator_with(config, &[&key]);
        let claims = json!({"client_id": "svc", "scp": ["produce"], "sub": "ignored", "iat": NOW, "exp": NOW + 10});
        let token = validator.validate(&key.sign(&claims), NOW_MS).unwrap();
        assert_eq!(token.principal_name, "svc");
        assert_eq!(token.scopes, BTreeSet::from(["produce".to_owned()]));
        let claims = json!({"client_id": ["svc"], "iat": NOW, "exp": NOW + 10});
        assert_eq!(
            validator.validate(&key.sign(&claims), NOW_MS),
            Err(TokenError::ClaimNotExtractable("client_id".to_owned()))
        );
    }

    #[test]
    fn refuses_malformed_tokens() {
        let key = TestKey::ec("k");
        let validator = validator(&[&key]);
        let malformed = |token: &str| match validator.validate(token, NOW_MS) {
            Err(TokenError::Malformed(message)) => message,
            other => panic!("{token:?}: {other:?}"),
        };
        assert_eq!(malformed("  "), "Empty JWT provided; expected three sections (header, payload, and signature)");
        assert_eq!(
            malformed("abc"),
            "Malformed JWT provided; expected three sections (header, payload, and signature), but 1 sections provided"
        );
        assert!(malformed("a.b.c.d").ends_with("but 4 sections provided"));
        assert!(malformed("a.b..").ends_with("but 2 sections provided"));
        assert!(malformed("...").ends_with("but 0 sections provided"));
        assert!(malformed("a..c").ends_with("but payload section missing"));
        assert!(malformed(".b.c").ends_with("but header section missing"));
        assert!(malformed("a. .c").ends_with("but payload section missing"));

        let token = key.sign(&claims());
        assert!(matches!(validator.validate(&format!("{token}."), NOW_MS), Err(TokenError::Unprocessable(_))));
        assert!(matches!(validator.validate("e30.e30.AAAA", NOW_MS), Err(TokenError::Unprocessable(_))));
        assert!(matches!(validator.validate("!!.??.AAAA", NOW_MS), Err(TokenError::Unprocessable(_))));
        let array_claims = format!("{}.{}.AAAA", b64(br#"{"alg":"ES256"}"#), b64(b"[1]"));
        assert!(matches!(validator.validate(&array_claims, NOW_MS), Err(TokenError::Unprocessable(_))));
        let duplicate = format!("{}.{}.AAAA", b64(br#"{"alg":"ES256"}"#), b64(br#"{"sub":"a","sub":"b"}"#));
        assert!(matches!(validator.validate(&duplicate, NOW_MS), Err(TokenError::Unprocessable(_))));
        // Padding on the signature is tolerated, as RFC 6750 b64tokens allow it.
        assert!(validator.validate(&format!("{token}=="), NOW_MS).is_ok());
        // Surrounding whitespace is trimmed, as Kafka trims it.
        assert!(validator.validate(&format!(" {token}\n"), NOW_MS).is_ok());

        let big = "a".repeat(MAX_TOKEN_SIZE + 1);
        assert_eq!(validator.validate(&big, NOW_MS), Err(TokenError::TooLarge { size: MAX_TOKEN_SIZE + 1 }));
        let padded = key.sign(&with(claims(), "pad", json!("x".repeat(MAX_TOKEN_SIZE))));
        assert!(matches!(validator.validate(&padded, NOW_MS), Err(TokenError::TooLarge { .. })));
    }

    // --- server exchange ------------------------------------------------------

    #[test]
    fn exchange_succeeds_with_principal_expiry_and_extensions() {
        let key = TestKey::ec("k");
        let validator = validator(&[&key]);
        let mut server = OAuthBearerServer::new();
        let message = format!("n,a=alice,\x01auth=Bearer {}\x01traceId=42\x01\x01", key.sign(&claims()));
        let step = server.step(message.as_bytes(), &validator, NOW_MS).unwrap();
        let OAuthStep::Done { token, extensions } = step else { panic!("{step:?}") };
        assert_eq!(token.principal_name, "alice");
        assert_eq!(token.expires_at_ms, (NOW + 3600) * 1000);
        assert_eq!(extensions, BTreeMap::from([("traceId".to_owned(), "42".to_owned())]));
        assert!(server.is_complete());
        assert_eq!(session_lifetime_ms(token.expires_at_ms, NOW_MS, 0), 3_599_877);
        assert_eq!(session_lifetime_ms(token.expires_at_ms, NOW_MS, 60_000), 60_000);

        let err = server.step(b"\x01", &validator, NOW_MS).unwrap_err();
        assert_eq!(err, OAuthError::InvalidState { state: "COMPLETE" });
        assert_eq!(err.error_code(), 34);
        assert!(server.is_complete());
    }

    #[test]
    fn bad_token_gets_error_challenge_then_fails_on_acknowledgement() {
        let key = TestKey::ec("k");
        let validator = validator(&[&key]);
        let mut server = OAuthBearerServer::new();
        let expired = key.sign(&with(claims(), "exp", json!(NOW - 3600)));
        let step = server.step(&client_first(&expired), &validator, NOW_MS).unwrap();
        assert_eq!(step, OAuthStep::Continue(br#"{"status":"invalid_token"}"#.to_vec()));
        assert!(!server.is_complete());

        let err = server.step(b"\x01", &validator, NOW_MS).unwrap_err();
        assert!(
            matches!(&err, OAuthError::InvalidToken(reason) if reason.has_issue(|i| matches!(i, ClaimIssue::Expired { .. })))
        );
        assert_eq!(err.error_code(), 58);
        assert_eq!(err.client_message(false), r#"{"status":"invalid_token"}"#);
        assert_eq!(err.client_message(true), r#"{"status":"invalid_token"}"#);
        assert!(err.detail().contains("The JWT is no longer valid"));
        assert!(!err.is_malformed());
        assert_eq!(server.step(b"\x01", &validator, NOW_MS), Err(OAuthError::InvalidState { state: "FAILED" }));
    }

    #[test]
    fn every_kind_of_bad_token_gets_the_challenge() {
        let key = TestKey::ec("k");
        let other = TestKey::ec("k");
        let validator = validator(&[&key]);
        let tokens = [
            other.sign(&claims()),
            key.sign_with_kid(Some("unknown".to_owned()), &claims()),
            key.sign(&without(claims(), "sub")),
            key.sign(&with(claims(), "nbf", json!(NOW + 3600))),
            key.sign(&with(claims(), "aud", json!("x"))),
            "not.a.jwt".to_owned(),
            "x".repeat(MAX_TOKEN_SIZE + 1),
        ];
        for token in tokens {
            let mut server = OAuthBearerServer::new();
            let step = server.step(&client_first(&token), &validator, NOW_MS).unwrap();
            assert_eq!(step, OAuthStep::Continue(INVALID_TOKEN_CHALLENGE.as_bytes().to_vec()));
            assert!(matches!(server.step(b"\x01", &validator, NOW_MS), Err(OAuthError::InvalidToken(_))));
        }
    }

    #[test]
    fn client_may_retry_after_the_challenge() {
        let key = TestKey::ec("k");
        let validator = validator(&[&key]);
        let mut server = OAuthBearerServer::new();
        let bad = key.sign(&without(claims(), "exp"));
        assert!(matches!(server.step(&client_first(&bad), &validator, NOW_MS), Ok(OAuthStep::Continue(_))));
        let good = key.sign(&claims());
        assert!(matches!(server.step(&client_first(&good), &validator, NOW_MS), Ok(OAuthStep::Done { .. })));
    }

    #[test]
    fn malformed_message_fails_with_generic_message() {
        let key = TestKey::ec("k");
        let validator = validator(&[&key]);
        let mut server = OAuthBearerServer::new();
        // A lone \x01 before any challenge is a malformed initial response.
        let err = server.step(b"\x01", &validator, NOW_MS).unwrap_err();
        assert_eq!(err, OAuthError::InvalidClientFirstMessage(InitialResponseError::Invalid));
        assert_eq!(
            err.to_string(),
            "Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER"
        );
        assert_eq!(
            err.client_message(true),
            "Authentication failed during re-authentication due to invalid credentials with SASL mechanism OAUTHBEARER"
        );
        assert_eq!(err.detail(), "Invalid OAUTHBEARER client first message");
        assert!(err.is_malformed());
        assert_eq!(server.step(b"\x01", &validator, NOW_MS), Err(OAuthError::InvalidState { state: "FAILED" }));

        let mut server = OAuthBearerServer::new();
        let oversize = vec![b'n'; MAX_CLIENT_MESSAGE_SIZE + 1];
        assert!(matches!(
            server.step(&oversize, &validator, NOW_MS),
            Err(OAuthError::InvalidClientFirstMessage(InitialResponseError::TooLarge { .. }))
        ));
    }

    #[test]
    fn authorization_id_must_match_principal() {
        let key = TestKey::ec("k");
        let validator = validator(&[&key]);
        let mut server = OAuthBearerServer::new();
        let message = format!("n,a=bob,\x01auth=Bearer {}\x01\x01", key.sign(&claims()));
        let err = server.step(message.as_bytes(), &validator, NOW_MS).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Authentication failed: Client requested an authorization id (bob) that is different from the token's \
             principal name (alice)"
        );
        assert_eq!(err.client_message(true), err.to_string());
        assert_eq!(err.error_code(), 58);
        assert!(!server.is_complete());
    }

    #[test]
    fn session_lifetime_is_bounded_by_expiry_and_max_reauth() {
        assert_eq!(session_lifetime_ms(10_000, 4_000, 0), 6_000);
        assert_eq!(session_lifetime_ms(10_000, 4_000, -1), 6_000);
        assert_eq!(session_lifetime_ms(10_000, 4_000, 1_000), 1_000);
        assert_eq!(session_lifetime_ms(10_000, 12_000, 1_000), 0);
        assert_eq!(session_lifetime_ms(i64::MAX, i64::MIN, 0), i64::MAX);
    }

    #[test]
    fn validator_and_server_can_be_shared_and_moved() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<OAuthBearerValidator>();
        assert_send_sync::<OAuthBearerServer>();
    }

    /// A small deterministic generator for the mutation test.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn mutated_messages_never_panic_or_authenticate_wrongly() {
        let key = TestKey::ec("k");
        let validator = validator(&[&key]);
        let valid = client_first(&key.sign(&claims()));
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let alphabet = b"n,a=\x01.-_eyJAauthBearer =0{}\"\x00\xff";
        for _ in 0..3000 {
            let mut message = valid.clone();
            for _ in 0..=rng.below(4) {
                let at = rng.below(message.len() + 1);
                match rng.below(3) {
                    0 if at < message.len() => {
                        message.remove(at);
                    }
                    1 if at < message.len() => message[at] = alphabet[rng.below(alphabet.len())],
                    _ => message.insert(at, alphabet[rng.below(alphabet.len())]),
                }
            }
            let mut server = OAuthBearerServer::new();
            match server.step(&message, &validator, NOW_MS) {
                Ok(OAuthStep::Done { token, .. }) => assert_eq!(token.principal_name, "alice"),
                Ok(OAuthStep::Continue(challenge)) => {
                    assert_eq!(challenge, INVALID_TOKEN_CHALLENGE.as_bytes());
                    assert!(matches!(server.step(b"\x01", &validator, NOW_MS), Err(OAuthError::InvalidToken(_))));
                }
                Err(e) => assert!(e.is_malformed() || matches!(e, OAuthError::AuthorizationIdMismatch { .. })),
            }
        }
    }
}
