//! SASL/SCRAM (RFC 5802, RFC 7677) as Apache Kafka's brokers speak it:
//! the two mechanisms and their wire codes ([`ScramMechanism`]), the stored
//! credential ([`ScramCredential`]) with Kafka's durable text form, and the
//! server side of one authentication exchange ([`ScramServer`]).
//!
//! Everything here is pure computation over bytes; the caller owns the
//! connection, the credential store and the mapping of [`ScramError`] onto
//! a `SaslAuthenticate` response.
//!
//! Behaviour follows Kafka's `ScramSaslServer`:
//! * the client-first message is `gs2-header client-first-message-bare`, where
//!   the GS2 header is `n,` or `y,` followed by an optional `a=<authzid>` and
//!   a comma; channel binding (`p=`) and mandatory extensions (`m=`) are
//!   refused;
//! * usernames are `saslname`s (`=2C` is a comma, `=3D` an equals sign) of
//!   ASCII characters, as Kafka's message grammar allows;
//! * an unknown user fails at the client-first message, with the same
//!   client-visible message as a wrong password;
//! * an authorization id, when given, must equal the username;
//! * the `tokenauth` extension (delegation tokens) is refused with its own
//!   message, other extensions are ignored;
//! * the server nonce is the client nonce followed by a random printable
//!   suffix.
//!
//! All cryptography comes from `ring`.

use std::fmt;
use std::num::NonZeroU32;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};

/// Largest client message (client-first or client-final) accepted, in bytes.
/// Real clients send well under 300 bytes; anything larger is refused before
/// it is parsed.
pub const MAX_SCRAM_MESSAGE_SIZE: usize = 1024;

/// Smallest iteration count a credential may have to be used for
/// authentication or be created (Kafka's `ScramMechanism.minIterations`).
pub const MIN_ITERATIONS: u32 = 4096;

/// Largest iteration count `AlterUserScramCredentials` accepts (Kafka's
/// `ScramMechanism.maxIterations`).
pub const MAX_ITERATIONS: u32 = 16384;

/// Wire code of an unknown mechanism in `DescribeUserScramCredentials` and
/// `AlterUserScramCredentials` (Kafka's `ScramMechanism.UNKNOWN`).
pub const UNKNOWN_MECHANISM_CODE: i8 = 0;

/// Longest text [`ScramCredential::from_text`] accepts, in bytes.
pub const MAX_CREDENTIAL_TEXT_SIZE: usize = 1024;

/// Length in bytes of the random salt [`ScramCredential::from_password`]
/// draws.
pub const SALT_LEN: usize = 32;

/// Random bytes behind the server's part of the nonce (144 bits, encoded as
/// 24 URL-safe base64 characters).
const NONCE_SUFFIX_RANDOM_BYTES: usize = 18;

/// Kafka's error code `SASL_AUTHENTICATION_FAILED`.
const SASL_AUTHENTICATION_FAILED: i16 = 58;

/// Kafka's error code `ILLEGAL_SASL_STATE`.
const ILLEGAL_SASL_STATE: i16 = 34;

/// A SCRAM mechanism Kafka supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScramMechanism {
    /// `SCRAM-SHA-256`: SHA-256 and HMAC-SHA-256 (RFC 7677), wire code 1.
    Sha256,
    /// `SCRAM-SHA-512`: SHA-512 and HMAC-SHA-512, wire code 2.
    Sha512,
}

impl ScramMechanism {
    /// Both mechanisms, in wire-code order.
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The mechanism with this SASL name (`SCRAM-SHA-256` or
    /// `SCRAM-SHA-512`, exact case), or `None`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "SCRAM-SHA-256" => Some(Self::Sha256),
            "SCRAM-SHA-512" => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The SASL mechanism name, as negotiated in `SaslHandshake`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SCRAM-SHA-256",
            Self::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism with this wire code (1 or 2), or `None` for
    /// [`UNKNOWN_MECHANISM_CODE`] and any other value.
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            1 => Some(Self::Sha256),
            2 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The wire code used by `DescribeUserScramCredentials` and
    /// `AlterUserScramCredentials`.
    pub fn code(self) -> i8 {
        match self {
            Self::Sha256 => 1,
            Self::Sha512 => 2,
        }
    }

    /// Smallest usable iteration count ([`MIN_ITERATIONS`]).
    pub fn min_iterations(self) -> u32 {
        MIN_ITERATIONS
    }

    /// Largest iteration count accepted on upsertion ([`MAX_ITERATIONS`]).
    pub fn max_iterations(self) -> u32 {
        MAX_ITERATIONS
    }

    /// Checks the iteration count of an `AlterUserScramCredentials`
    /// upsertion as Kafka's controller does, returning it as `u32` or the
    /// message Kafka sends with `UNACCEPTABLE_CREDENTIAL`.
    pub fn validate_iterations(self, iterations: i32) -> Result<u32, &'static str> {
        match u32::try_from(iterations) {
            Ok(n) if n < self.min_iterations() => Err("Too few iterations"),
            Err(_) => Err("Too few iterations"),
            Ok(n) if n > self.max_iterations() => Err("Too many iterations"),
            Ok(n) => Ok(n),
        }
    }

    /// Length in bytes of the hash, and so of StoredKey, ServerKey, the
    /// client proof and the server signature.
    pub fn hash_len(self) -> usize {
        self.digest_algorithm().output_len()
    }

    fn digest_algorithm(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha256 => &digest::SHA256,
            Self::Sha512 => &digest::SHA512,
        }
    }

    fn hmac_algorithm(self) -> hmac::Algorithm {
        match self {
            Self::Sha256 => hmac::HMAC_SHA256,
            Self::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn pbkdf2_algorithm(self) -> pbkdf2::Algorithm {
        match self {
            Self::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            Self::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> hmac::Tag {
        hmac::sign(&hmac::Key::new(self.hmac_algorithm(), key), data)
    }

    fn hash(self, data: &[u8]) -> digest::Digest {
        digest::digest(self.digest_algorithm(), data)
    }

    /// `Hi(password, salt, i)` of RFC 5802: PBKDF2 with this mechanism's
    /// HMAC. An iteration count of zero is derived as one round (such a
    /// credential is refused for authentication anyway, being below
    /// [`MIN_ITERATIONS`]).
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let rounds = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
        let mut out = vec![0u8; self.hash_len()];
        pbkdf2::derive(self.pbkdf2_algorithm(), rounds, salt, password, &mut out);
        out
    }

    /// `(StoredKey, ServerKey)` of a salted password.
    fn keys(self, salted_password: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let client_key = self.hmac(salted_password, b"Client Key");
        let stored_key = self.hash(client_key.as_ref()).as_ref().to_vec();
        let server_key = self.hmac(salted_password, b"Server Key").as_ref().to_vec();
        (stored_key, server_key)
    }
}

impl fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Compares two byte strings without a timing side channel on their
/// contents (only on their lengths): both are MACed under one key and the
/// tags compared by `ring`'s constant-time tag check.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, b"sluice constant-time comparison");
    let tag = hmac::sign(&key, b);
    hmac::verify(&key, a, tag.as_ref()).is_ok()
}

/// The system's random number generator failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomError;

/// What a broker keeps for one user and one mechanism: the salt, the
/// iteration count and the two keys derived from the salted password. The
/// password and the salted password themselves are never kept.
///
/// `Debug` leaves the keys out. `PartialEq` is for tests and bookkeeping,
/// not for authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// The mechanism the keys were derived with.
    pub mechanism: ScramMechanism,
    /// The salt sent to clients in the server-first message.
    pub salt: Vec<u8>,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
    /// The PBKDF2 iteration count.
    pub iterations: u32,
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential")
            .field("mechanism", &self.mechanism)
            .field("salt_len", &self.salt.len())
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Why a credential's text form was refused by [`ScramCredential::from_text`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SCRAM credential text: {reason}")]
pub struct CredentialTextError {
    /// What was wrong.
    pub reason: &'static str,
}

impl ScramCredential {
    /// Derives a credential from a password with a fresh random salt of
    /// [`SALT_LEN`] bytes. The password is used as its UTF-8 bytes, without
    /// SASLprep, as Kafka does. Callers creating credentials on a client's
    /// behalf check `iterations` first with
    /// [`ScramMechanism::validate_iterations`].
    pub fn from_password(mechanism: ScramMechanism, password: &str, iterations: u32) -> Result<Self, RandomError> {
        let mut salt = vec![0u8; SALT_LEN];
        SystemRandom::new().fill(&mut salt).map_err(|_| RandomError)?;
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
        Ok(Self::from_salted_password(mechanism, &salted, &salt, iterations))
    }

    /// Builds a credential from a salted password computed elsewhere, as
    /// `AlterUserScramCredentials` delivers it: only StoredKey and ServerKey
    /// are derived and kept.
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salted_password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Self {
        let (stored_key, server_key) = mechanism.keys(salted_password);
        Self { mechanism, salt: salt.to_vec(), stored_key, server_key, iterations }
    }

    /// Whether `password` is the one this credential was derived from
    /// (used to check SASL/PLAIN logins against SCRAM credentials). Costs
    /// one PBKDF2 derivation; the final comparison is constant-time.
    pub fn verify_password(&self, password: &str) -> bool {
        if self.stored_key.len() != self.mechanism.hash_len() {
            return false;
        }
        let salted = self.mechanism.salted_password(password.as_bytes(), &self.salt, self.iterations);
        let (stored_key, _) = self.mechanism.keys(&salted);
        constant_time_eq(&stored_key, &self.stored_key)
    }

    /// The durable text form, as Kafka's
    /// `ScramCredentialUtils.credentialToString`:
    /// `salt=<b64>,stored_key=<b64>,server_key=<b64>,iterations=<n>`. The
    /// mechanism is not part of it.
    pub fn to_text(&self) -> String {
        format!(
            "salt={},stored_key={},server_key={},iterations={}",
            STANDARD.encode(&self.salt),
            STANDARD.encode(&self.stored_key),
            STANDARD.encode(&self.server_key),
            self.iterations
        )
    }

    /// Parses the text form of [`to_text`](Self::to_text) for `mechanism`.
    /// The four fields may come in any order (as Kafka accepts), each
    /// exactly once; base64 must be canonical with padding, the salt
    /// non-empty, both keys as long as the mechanism's hash and the
    /// iteration count a decimal number from 1 to 2^31 - 1.
    pub fn from_text(mechanism: ScramMechanism, text: &str) -> Result<Self, CredentialTextError> {
        let err = |reason| CredentialTextError { reason };
        if text.len() > MAX_CREDENTIAL_TEXT_SIZE {
            return Err(err("too long"));
        }
        let (mut salt, mut stored_key, mut server_key, mut iterations) = (None, None, None, None);
        for field in text.split(',') {
            let (key, value) = field.split_once('=').ok_or(err("field without '='"))?;
            let slot = match key {
                "salt" => &mut salt,
                "stored_key" => &mut stored_key,
                "server_key" => &mut server_key,
                "iterations" => &mut iterations,
                _ => return Err(err("unknown field")),
            };
            if slot.replace(value).is_some() {
                return Err(err("duplicate field"));
            }
        }
        let decode = |value: Option<&str>, missing| -> Result<Vec<u8>, CredentialTextError> {
            let value = value.ok_or(err(missing))?;
            STANDARD.decode(value).map_err(|_| err("invalid base64"))
        };
        let salt = decode(salt, "missing salt")?;
        let stored_key = decode(stored_key, "missing stored_key")?;
        let server_key = decode(server_key, "missing server_key")?;
        let iterations = iterations.ok_or(err("missing iterations"))?;
        if salt.is_empty() {
            return Err(err("empty salt"));
        }
        if stored_key.len() != mechanism.hash_len() || server_key.len() != mechanism.hash_len() {
            return Err(err("key length does not match the mechanism"));
        }
        if iterations.is_empty() || iterations.len() > 10 || !iterations.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("invalid iterations"));
        }
        let iterations: u32 = iterations.parse().map_err(|_| err("invalid iterations"))?;
        if iterations == 0 || iterations > i32::MAX as u32 {
            return Err(err("invalid iterations"));
        }
        Ok(Self { mechanism, salt, stored_key, server_key, iterations })
    }
}

/// Why a SCRAM exchange failed.
///
/// `Display` is exactly the message Kafka sends to the client in the
/// `SaslAuthenticate` response (for a first authentication; see
/// [`client_message`](Self::client_message) for re-authentication), so it is
/// safe to send: it never says whether the user exists. The reason behind
/// it, for the broker's own logs, is [`detail`](Self::detail).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScramError {
    /// The client message is larger than [`MAX_SCRAM_MESSAGE_SIZE`].
    #[error("Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}")]
    MessageTooLarge {
        /// Mechanism of the exchange.
        mechanism: ScramMechanism,
        /// Size of the refused message in bytes.
        size: usize,
    },
    /// The client message does not follow the SCRAM grammar, asks for
    /// something not supported (channel binding, mandatory extensions), or
    /// contradicts the exchange so far (nonce, channel binding data).
    #[error("Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}")]
    Malformed {
        /// Mechanism of the exchange.
        mechanism: ScramMechanism,
        /// What was wrong, for logs.
        reason: &'static str,
    },
    /// Well-formed, but the credentials are not good: unknown user, wrong
    /// proof, or a stored credential that cannot be used.
    #[error("Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}")]
    InvalidCredentials {
        /// Mechanism of the exchange.
        mechanism: ScramMechanism,
        /// What was wrong, for logs.
        reason: &'static str,
    },
    /// The GS2 header carries an authorization id different from the
    /// username.
    #[error("Authentication failed: Client requested an authorization id that is different from username")]
    AuthorizationIdMismatch {
        /// Mechanism of the exchange.
        mechanism: ScramMechanism,
    },
    /// The client asked for delegation-token authentication
    /// (`tokenauth=true`), which this broker does not support.
    #[error("Authentication failed: delegation token authentication is not supported")]
    TokenAuthenticationUnsupported {
        /// Mechanism of the exchange.
        mechanism: ScramMechanism,
    },
    /// The broker could not complete the step (its random number generator
    /// failed).
    #[error("Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}")]
    Internal {
        /// Mechanism of the exchange.
        mechanism: ScramMechanism,
        /// What failed, for logs.
        reason: &'static str,
    },
    /// A message arrived after the exchange had completed or failed. Kafka
    /// answers this with `ILLEGAL_SASL_STATE` and closes the connection.
    #[error("Unexpected challenge in Sasl server state {state}")]
    InvalidState {
        /// Mechanism of the exchange.
        mechanism: ScramMechanism,
        /// `COMPLETE` or `FAILED`.
        state: &'static str,
    },
}

impl ScramError {
    /// The mechanism of the failed exchange.
    pub fn mechanism(&self) -> ScramMechanism {
        match self {
            Self::MessageTooLarge { mechanism, .. }
            | Self::Malformed { mechanism, .. }
            | Self::InvalidCredentials { mechanism, .. }
            | Self::AuthorizationIdMismatch { mechanism }
            | Self::TokenAuthenticationUnsupported { mechanism }
            | Self::Internal { mechanism, .. }
            | Self::InvalidState { mechanism, .. } => *mechanism,
        }
    }

    /// Whether the client sent something that is not a valid SCRAM
    /// message for this point of the exchange (as opposed to valid messages
    /// with bad credentials).
    pub fn is_malformed(&self) -> bool {
        matches!(self, Self::MessageTooLarge { .. } | Self::Malformed { .. } | Self::InvalidState { .. })
    }

    /// The Kafka error code of the response: `SASL_AUTHENTICATION_FAILED`
    /// (58), or `ILLEGAL_SASL_STATE` (34) for [`ScramError::InvalidState`].
    pub fn error_code(&self) -> i16 {
        match self {
            Self::InvalidState { .. } => ILLEGAL_SASL_STATE,
            _ => SASL_AUTHENTICATION_FAILED,
        }
    }

    /// The message Kafka sends to the client; `reauthenticating` selects
    /// Kafka's wording for a re-authentication (KIP-368).
    pub fn client_message(&self, reauthenticating: bool) -> String {
        match self {
            Self::MessageTooLarge { mechanism, .. }
            | Self::Malformed { mechanism, .. }
            | Self::InvalidCredentials { mechanism, .. }
            | Self::Internal { mechanism, .. } => format!(
                "Authentication failed during {} due to invalid credentials with SASL mechanism {}",
                if reauthenticating { "re-authentication" } else { "authentication" },
                mechanism
            ),
            other => other.to_string(),
        }
    }

    /// What actually went wrong, for the broker's logs; never send it to
    /// the client.
    pub fn detail(&self) -> String {
        match self {
            Self::MessageTooLarge { size, .. } => {
                format!("client message of {size} bytes exceeds the limit of {MAX_SCRAM_MESSAGE_SIZE}")
            }
            Self::Malformed { reason, .. } => format!("malformed client message: {reason}"),
            Self::InvalidCredentials { reason, .. } => format!("invalid credentials: {reason}"),
            Self::AuthorizationIdMismatch { .. } => "authorization id differs from username".to_owned(),
            Self::TokenAuthenticationUnsupported { .. } => "delegation token authentication requested".to_owned(),
            Self::Internal { reason, .. } => format!("internal error: {reason}"),
            Self::InvalidState { state, .. } => format!("message received in state {state}"),
        }
    }
}

/// What the server sends after a successful step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramStep {
    /// The server-first message; the exchange continues with the
    /// client-final message.
    Continue(Vec<u8>),
    /// The client is authenticated: send `server_final` (`v=<signature>`)
    /// and take `username` as the authenticated name.
    Done {
        /// The server-final message.
        server_final: Vec<u8>,
        /// The authenticated username (decoded from its `saslname` form).
        username: String,
    },
}

/// What the server remembers between the client-first and client-final
/// messages.
struct Pending {
    username: String,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    credential: ScramCredential,
}

enum State {
    AwaitingClientFirst,
    AwaitingClientFinal(Box<Pending>),
    Complete,
    Failed,
}

/// The server side of one SCRAM exchange: feed it each client message with
/// [`step`](Self::step). After [`ScramStep::Done`] or any error, every
/// further step fails with [`ScramError::InvalidState`].
pub struct ScramServer {
    mechanism: ScramMechanism,
    nonce_suffix: Option<String>,
    state: State,
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::AwaitingClientFirst => "AWAITING_CLIENT_FIRST",
            State::AwaitingClientFinal(_) => "AWAITING_CLIENT_FINAL",
            State::Complete => "COMPLETE",
            State::Failed => "FAILED",
        };
        f.debug_struct("ScramServer").field("mechanism", &self.mechanism).field("state", &state).finish_non_exhaustive()
    }
}

impl ScramServer {
    /// A new exchange for `mechanism`, awaiting the client-first message.
    pub fn new(mechanism: ScramMechanism) -> Self {
        Self { mechanism, nonce_suffix: None, state: State::AwaitingClientFirst }
    }

    /// A new exchange whose server nonce suffix is `suffix` instead of a
    /// random one (for reproducing published test vectors). `None` if the
    /// suffix is empty or holds anything but printable ASCII other than a
    /// comma.
    pub fn with_nonce_suffix(mechanism: ScramMechanism, suffix: &str) -> Option<Self> {
        if suffix.is_empty() || !suffix.bytes().all(is_printable) {
            return None;
        }
        Some(Self { mechanism, nonce_suffix: Some(suffix.to_owned()), state: State::AwaitingClientFirst })
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// Whether the exchange completed successfully.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Complete)
    }

    /// Processes the next client message. `lookup` maps a username to its
    /// credential for this server's mechanism (`None`: no such user); it is
    /// called once, on the client-first message.
    pub fn step(
        &mut self,
        client_message: &[u8],
        lookup: &dyn Fn(&str) -> Option<ScramCredential>,
    ) -> Result<ScramStep, ScramError> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        let result = match state {
            State::AwaitingClientFirst => self.client_first(client_message, lookup).map(|pending| {
                let message = pending.server_first.clone().into_bytes();
                self.state = State::AwaitingClientFinal(Box::new(pending));
                ScramStep::Continue(message)
            }),
            State::AwaitingClientFinal(pending) => self.client_final(client_message, &pending).map(|server_final| {
                self.state = State::Complete;
                ScramStep::Done { server_final, username: pending.username }
            }),
            State::Complete => {
                self.state = State::Complete;
                Err(ScramError::InvalidState { mechanism: self.mechanism, state: "COMPLETE" })
            }
            State::Failed => Err(ScramError::InvalidState { mechanism: self.mechanism, state: "FAILED" }),
        };
        // On any error the state stays `Failed` (or `Complete` for a stray
        // message after success).
        result
    }

    fn malformed(&self, reason: &'static str) -> ScramError {
        ScramError::Malformed { mechanism: self.mechanism, reason }
    }

    fn invalid(&self, reason: &'static str) -> ScramError {
        ScramError::InvalidCredentials { mechanism: self.mechanism, reason }
    }

    /// Checks size and character set, returning the message as text.
    fn message_text<'a>(&self, message: &'a [u8]) -> Result<&'a str, ScramError> {
        if message.len() > MAX_SCRAM_MESSAGE_SIZE {
            return Err(ScramError::MessageTooLarge { mechanism: self.mechanism, size: message.len() });
        }
        // Kafka's grammar admits only characters 0x01..=0x7F anywhere in
        // a client message.
        if !message.iter().all(|&b| (0x01..=0x7F).contains(&b)) {
            return Err(self.malformed("character outside 0x01..=0x7F"));
        }
        std::str::from_utf8(message).map_err(|_| self.malformed("invalid UTF-8"))
    }

    fn client_first(
        &self,
        message: &[u8],
        lookup: &dyn Fn(&str) -> Option<ScramCredential>,
    ) -> Result<Pending, ScramError> {
        let text = self.message_text(message)?;
        let first = parse_client_first(text).map_err(|reason| self.malformed(reason))?;
        if first.token_auth {
            return Err(ScramError::TokenAuthenticationUnsupported { mechanism: self.mechanism });
        }
        let credential = lookup(&first.username).ok_or_else(|| self.invalid("unknown user"))?;
        if credential.mechanism != self.mechanism
            || credential.stored_key.len() != self.mechanism.hash_len()
            || credential.server_key.len() != self.mechanism.hash_len()
        {
            return Err(self.invalid("stored credential does not match the mechanism"));
        }
        if first.authzid.as_deref().is_some_and(|authzid| authzid != first.username) {
            return Err(ScramError::AuthorizationIdMismatch { mechanism: self.mechanism });
        }
        if credential.iterations < self.mechanism.min_iterations() {
            return Err(self.invalid("stored credential has fewer iterations than the minimum"));
        }
        let suffix = match &self.nonce_suffix {
            Some(suffix) => suffix.clone(),
            None => random_nonce_suffix().map_err(|_| ScramError::Internal {
                mechanism: self.mechanism,
                reason: "random number generator failed",
            })?,
        };
        let nonce = format!("{}{}", first.nonce, suffix);
        let server_first = format!("r={},s={},i={}", nonce, STANDARD.encode(&credential.salt), credential.iterations);
        Ok(Pending {
            username: first.username,
            gs2_header: first.gs2_header.to_owned(),
            client_first_bare: first.bare.to_owned(),
            server_first,
            nonce,
            credential,
        })
    }

    fn client_final(&self, message: &[u8], pending: &Pending) -> Result<Vec<u8>, ScramError> {
        let text = self.message_text(message)?;
        let fin = parse_client_final(text).map_err(|reason| self.malformed(reason))?;
        if fin.channel_binding != pending.gs2_header.as_bytes() {
            return Err(self.malformed("channel binding does not match the GS2 header"));
        }
        if fin.nonce != pending.nonce {
            return Err(self.malformed("nonce does not match the server nonce"));
        }
        let mechanism = self.mechanism;
        if fin.proof.len() != mechanism.hash_len() {
            return Err(self.malformed("client proof has the wrong length"));
        }
        let auth_message = format!("{},{},{}", pending.client_first_bare, pending.server_first, fin.without_proof);
        let credential = &pending.credential;
        let client_signature = mechanism.hmac(&credential.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = fin.proof.iter().zip(client_signature.as_ref()).map(|(p, s)| p ^ s).collect();
        let computed_stored_key = mechanism.hash(&client_key);
        if !constant_time_eq(computed_stored_key.as_ref(), &credential.stored_key) {
            return Err(self.invalid("client proof does not verify"));
        }
        let server_signature = mechanism.hmac(&credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", STANDARD.encode(server_signature.as_ref())).into_bytes())
    }
}

/// A random server nonce suffix: URL-safe base64, so printable and free
/// of commas.
fn random_nonce_suffix() -> Result<String, RandomError> {
    let mut bytes = [0u8; NONCE_SUFFIX_RANDOM_BYTES];
    SystemRandom::new().fill(&mut bytes).map_err(|_| RandomError)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// RFC 5802 `printable`: 0x21..=0x7E except the comma.
fn is_printable(b: u8) -> bool {
    (0x21..=0x7E).contains(&b) && b != b','
}

/// Decodes a `saslname` (Kafka's grammar: one or more of 0x01..=0x7F
/// except `=` and `,`, or `=2C`, or `=3D`).
fn decode_saslname(name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        match c {
            '=' => {
                if let Some(tail) = rest.strip_prefix("=2C") {
                    out.push(',');
                    rest = tail;
                } else if let Some(tail) = rest.strip_prefix("=3D") {
                    out.push('=');
                    rest = tail;
                } else {
                    return None;
                }
            }
            ',' | '\0' => return None,
            c if c.is_ascii() => {
                out.push(c);
                rest = &rest[1..];
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Checks an extension `ALPHA+ "=" VALUE+` (the value's characters are
/// already known to be in 0x01..=0x7F without commas), returning it split.
fn parse_extension(item: &str) -> Option<(&str, &str)> {
    let (key, value) = item.split_once('=')?;
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) || value.is_empty() {
        return None;
    }
    Some((key, value))
}

struct ClientFirst<'a> {
    gs2_header: &'a str,
    authzid: Option<String>,
    username: String,
    nonce: &'a str,
    bare: &'a str,
    token_auth: bool,
}

fn parse_client_first(text: &str) -> Result<ClientFirst<'_>, &'static str> {
    let after_flag = if let Some(rest) = text.strip_prefix("n,").or_else(|| text.strip_prefix("y,")) {
        rest
    } else if text.starts_with("p=") {
        return Err("channel binding is not supported");
    } else {
        return Err("invalid GS2 header");
    };
    let (authz, bare) = after_flag.split_once(',').ok_or("invalid GS2 header")?;
    let authzid = if authz.is_empty() {
        None
    } else {
        let name = authz.strip_prefix("a=").ok_or("invalid GS2 header")?;
        Some(decode_saslname(name).ok_or("invalid authorization id")?)
    };
    let gs2_header = &text[..text.len() - bare.len()];
    if bare.starts_with("m=") {
        return Err("mandatory extensions are not supported");
    }
    let mut items = bare.split(',');
    let username = items.next().and_then(|item| item.strip_prefix("n=")).ok_or("missing username")?;
    let username = decode_saslname(username).ok_or("invalid username")?;
    let nonce = items.next().and_then(|item| item.strip_prefix("r=")).ok_or("missing nonce")?;
    if nonce.is_empty() || !nonce.bytes().all(is_printable) {
        return Err("invalid nonce");
    }
    let mut token_auth = false;
    for item in items {
        let (key, value) = parse_extension(item).ok_or("invalid extension")?;
        if key == "tokenauth" {
            token_auth = value.eq_ignore_ascii_case("true");
        }
    }
    Ok(ClientFirst { gs2_header, authzid, username, nonce, bare, token_auth })
}

struct ClientFinal<'a> {
    channel_binding: Vec<u8>,
    nonce: &'a str,
    proof: Vec<u8>,
    without_proof: &'a str,
}

fn parse_client_final(text: &str) -> Result<ClientFinal<'_>, &'static str> {
    let (without_proof, proof) = text.rsplit_once(",p=").ok_or("missing proof")?;
    let proof = STANDARD.decode(proof).map_err(|_| "invalid proof encoding")?;
    let mut items = without_proof.split(',');
    let channel_binding = items.next().and_then(|item| item.strip_prefix("c=")).ok_or("missing channel binding")?;
    let channel_binding = STANDARD.decode(channel_binding).map_err(|_| "invalid channel binding encoding")?;
    let nonce = items.next().and_then(|item| item.strip_prefix("r=")).ok_or("missing nonce")?;
    if nonce.is_empty() || !nonce.bytes().all(is_printable) {
        return Err("invalid nonce");
    }
    for item in items {
        parse_extension(item).ok_or("invalid extension")?;
    }
    Ok(ClientFinal { channel_binding, nonce, proof, without_proof })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SCRAM client written against RFC 5802 directly with `ring`.
    struct TestClient {
        mechanism: ScramMechanism,
        gs2_header: String,
        client_first_bare: String,
        password: String,
    }

    impl TestClient {
        fn new(mechanism: ScramMechanism, gs2_header: &str, sasl_user: &str, nonce: &str, password: &str) -> Self {
            Self {
                mechanism,
                gs2_header: gs2_header.to_owned(),
                client_first_bare: format!("n={sasl_user},r={nonce}"),
                password: password.to_owned(),
            }
        }

        fn first(&self) -> Vec<u8> {
            format!("{}{}", self.gs2_header, self.client_first_bare).into_bytes()
        }

        /// Returns the client-final message and the expected server
        /// signature.
        fn finish(&self, server_first: &[u8], override_nonce: Option<&str>, cbind: Option<&str>) -> (Vec<u8>, Vec<u8>) {
            let server_first = std::str::from_utf8(server_first).unwrap();
            let mut parts = server_first.split(',');
            let nonce = parts.next().unwrap().strip_prefix("r=").unwrap();
            let salt = STANDARD.decode(parts.next().unwrap().strip_prefix("s=").unwrap()).unwrap();
            let iterations: u32 = parts.next().unwrap().strip_prefix("i=").unwrap().parse().unwrap();
            let (alg, hmac_alg, pbkdf) = match self.mechanism {
                ScramMechanism::Sha256 => (&digest::SHA256, hmac::HMAC_SHA256, pbkdf2::PBKDF2_HMAC_SHA256),
                ScramMechanism::Sha512 => (&digest::SHA512, hmac::HMAC_SHA512, pbkdf2::PBKDF2_HMAC_SHA512),
            };
            let mut salted = vec![0u8; alg.output_len()];
            pbkdf2::derive(pbkdf, NonZeroU32::new(iterations).unwrap(), &salt, self.password.as_bytes(), &mut salted);
            let salted_key = hmac::Key::new(hmac_alg, &salted);
            let client_key = hmac::sign(&salted_key, b"Client Key");
            let stored_key = digest::digest(alg, client_key.as_ref());
            let cbind = cbind.map(str::to_owned).unwrap_or_else(|| STANDARD.encode(self.gs2_header.as_bytes()));
            let without_proof = format!("c={},r={}", cbind, override_nonce.unwrap_or(nonce));
            let auth_message = format!("{},{},{}", self.client_first_bare, server_first, without_proof);
            let signature = hmac::sign(&hmac::Key::new(hmac_alg, stored_key.as_ref()), auth_message.as_bytes());
            let proof: Vec<u8> = client_key.as_ref().iter().zip(signature.as_ref()).map(|(a, b)| a ^ b).collect();
            let server_key = hmac::sign(&salted_key, b"Server Key");
            let server_signature = hmac::sign(&hmac::Key::new(hmac_alg, server_key.as_ref()), auth_message.as_bytes());
            (
                format!("{},p={}", without_proof, STANDARD.encode(proof)).into_bytes(),
                format!("v={}", STANDARD.encode(server_signature.as_ref())).into_bytes(),
            )
        }
    }

    fn store(credential: ScramCredential, name: &'static str) -> impl Fn(&str) -> Option<ScramCredential> {
        move |user| (user == name).then(|| credential.clone())
    }

    fn rfc7677_credential() -> ScramCredential {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = ScramMechanism::Sha256.salted_password(b"pencil", &salt, 4096);
        ScramCredential::from_salted_password(ScramMechanism::Sha256, &salted, &salt, 4096)
    }

    #[test]
    fn mechanism_names_and_codes() {
        for m in ScramMechanism::ALL {
            assert_eq!(ScramMechanism::from_name(m.name()), Some(m));
            assert_eq!(ScramMechanism::from_code(m.code()), Some(m));
            assert_eq!(m.to_string(), m.name());
        }
        assert_eq!(ScramMechanism::Sha256.name(), "SCRAM-SHA-256");
        assert_eq!(ScramMechanism::Sha512.code(), 2);
        assert_eq!(ScramMechanism::from_code(UNKNOWN_MECHANISM_CODE), None);
        assert_eq!(ScramMechanism::from_code(3), None);
        assert_eq!(ScramMechanism::from_name("scram-sha-256"), None);
        assert_eq!(ScramMechanism::Sha256.hash_len(), 32);
        assert_eq!(ScramMechanism::Sha512.hash_len(), 64);
        let m = ScramMechanism::Sha256;
        assert_eq!(m.validate_iterations(4095), Err("Too few iterations"));
        assert_eq!(m.validate_iterations(-1), Err("Too few iterations"));
        assert_eq!(m.validate_iterations(4096), Ok(4096));
        assert_eq!(m.validate_iterations(16384), Ok(16384));
        assert_eq!(m.validate_iterations(16385), Err("Too many iterations"));
    }

    #[test]
    fn rfc7677_test_vector() {
        let mut server =
            ScramServer::with_nonce_suffix(ScramMechanism::Sha256, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0").unwrap();
        let lookup = store(rfc7677_credential(), "user");
        let step = server.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", &lookup).unwrap();
        assert_eq!(
            step,
            ScramStep::Continue(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".to_vec()
            )
        );
        let step = server
            .step(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                &lookup,
            )
            .unwrap();
        assert_eq!(
            step,
            ScramStep::Done {
                server_final: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec(),
                username: "user".to_owned(),
            }
        );
        assert!(server.is_complete());
        let again = server.step(b"c=biws", &lookup).unwrap_err();
        assert_eq!(again.to_string(), "Unexpected challenge in Sasl server state COMPLETE");
        assert_eq!(again.error_code(), 34);
        assert!(server.is_complete());
    }

    #[test]
    fn full_exchange_both_mechanisms() {
        for mechanism in ScramMechanism::ALL {
            let credential = ScramCredential::from_password(mechanism, "s3cret", 4096).unwrap();
            assert_eq!(credential.salt.len(), SALT_LEN);
            let lookup = store(credential, "alice");
            let client = TestClient::new(mechanism, "n,,", "alice", "fyko+d2lbbFgONRv9qkxdawL", "s3cret");
            let mut server = ScramServer::new(mechanism);
            let ScramStep::Continue(server_first) = server.step(&client.first(), &lookup).unwrap() else {
                panic!("expected server-first");
            };
            let text = std::str::from_utf8(&server_first).unwrap();
            let nonce = text.split(',').next().unwrap().strip_prefix("r=").unwrap();
            assert!(nonce.starts_with("fyko+d2lbbFgONRv9qkxdawL"));
            assert!(nonce.len() > "fyko+d2lbbFgONRv9qkxdawL".len() + 16);
            assert!(text.ends_with(",i=4096"));
            let (client_final, expected) = client.finish(&server_first, None, None);
            let done = server.step(&client_final, &lookup).unwrap();
            assert_eq!(done, ScramStep::Done { server_final: expected, username: "alice".to_owned() });
        }
    }

    #[test]
    fn random_nonce_suffixes_differ() {
        let lookup = store(rfc7677_credential(), "user");
        let first = |server: &mut ScramServer| match server.step(b"n,,n=user,r=abc", &lookup).unwrap() {
            ScramStep::Continue(m) => m,
            other => panic!("unexpected {other:?}"),
        };
        let a = first(&mut ScramServer::new(ScramMechanism::Sha256));
        let b = first(&mut ScramServer::new(ScramMechanism::Sha256));
        assert_ne!(a, b);
    }

    #[test]
    fn sasl_names_authzid_and_y_flag() {
        let mechanism = ScramMechanism::Sha256;
        let credential = ScramCredential::from_password(mechanism, "pw", 4096).unwrap();
        let lookup = store(credential, "a,b=c");
        for gs2 in ["n,,", "y,,", "n,a=a=2Cb=3Dc,"] {
            let client = TestClient::new(mechanism, gs2, "a=2Cb=3Dc", "nonce", "pw");
            let mut server = ScramServer::new(mechanism);
            let ScramStep::Continue(server_first) = server.step(&client.first(), &lookup).unwrap() else {
                panic!("expected server-first");
            };
            let (client_final, _) = client.finish(&server_first, None, None);
            match server.step(&client_final, &lookup).unwrap() {
                ScramStep::Done { username, .. } => assert_eq!(username, "a,b=c"),
                other => panic!("unexpected {other:?}"),
            }
        }
        let mut server = ScramServer::new(mechanism);
        let err = server.step(b"n,a=other,n=a=2Cb=3Dc,r=x", &lookup).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Authentication failed: Client requested an authorization id that is different from username"
        );
        assert!(!err.is_malformed());
    }

    #[test]
    fn wrong_password() {
        let mechanism = ScramMechanism::Sha512;
        let lookup = store(ScramCredential::from_password(mechanism, "right", 4096).unwrap(), "bob");
        let client = TestClient::new(mechanism, "n,,", "bob", "nonce123", "wrong");
        let mut server = ScramServer::new(mechanism);
        let ScramStep::Continue(server_first) = server.step(&client.first(), &lookup).unwrap() else {
            panic!("expected server-first");
        };
        let (client_final, _) = client.finish(&server_first, None, None);
        let err = server.step(&client_final, &lookup).unwrap_err();
        assert!(matches!(err, ScramError::InvalidCredentials { .. }));
        assert!(!err.is_malformed());
        assert_eq!(
            err.to_string(),
            "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
        );
        assert_eq!(
            err.client_message(true),
            "Authentication failed during re-authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
        );
        assert_eq!(err.error_code(), 58);
        let again = server.step(&client_final, &lookup).unwrap_err();
        assert_eq!(again.to_string(), "Unexpected challenge in Sasl server state FAILED");
    }

    #[test]
    fn unknown_user_fails_at_client_first() {
        let lookup = store(rfc7677_credential(), "user");
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let err = server.step(b"n,,n=nobody,r=abc", &lookup).unwrap_err();
        assert_eq!(err, ScramError::InvalidCredentials { mechanism: ScramMechanism::Sha256, reason: "unknown user" });
        assert_eq!(
            err.to_string(),
            "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
        );
    }

    #[test]
    fn unusable_stored_credentials() {
        let mut weak = rfc7677_credential();
        weak.iterations = 4095;
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let err = server.step(b"n,,n=user,r=abc", &store(weak, "user")).unwrap_err();
        assert!(matches!(err, ScramError::InvalidCredentials { .. }));
        let other = ScramCredential::from_password(ScramMechanism::Sha512, "x", 4096).unwrap();
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let err = server.step(b"n,,n=user,r=abc", &store(other, "user")).unwrap_err();
        assert!(matches!(err, ScramError::InvalidCredentials { .. }));
    }

    fn exchange_with(client_final_tamper: impl Fn(&TestClient, &[u8]) -> Vec<u8>) -> ScramError {
        let mechanism = ScramMechanism::Sha256;
        let lookup = store(ScramCredential::from_password(mechanism, "pw", 4096).unwrap(), "u");
        let client = TestClient::new(mechanism, "n,,", "u", "clientnonce", "pw");
        let mut server = ScramServer::new(mechanism);
        let ScramStep::Continue(server_first) = server.step(&client.first(), &lookup).unwrap() else {
            panic!("expected server-first");
        };
        let message = client_final_tamper(&client, &server_first);
        server.step(&message, &lookup).unwrap_err()
    }

    #[test]
    fn tampered_nonce() {
        let err = exchange_with(|client, server_first| client.finish(server_first, Some("clientnonce"), None).0);
        assert_eq!(err.detail(), "malformed client message: nonce does not match the server nonce");
        let err = exchange_with(|client, server_first| {
            let nonce = std::str::from_utf8(server_first).unwrap().split(',').next().unwrap()[2..].to_owned();
            client.finish(server_first, Some(&format!("X{nonce}")), None).0
        });
        assert!(err.is_malformed());
    }

    #[test]
    fn wrong_channel_binding() {
        // base64("y,,") where the client sent "n,,".
        let err = exchange_with(|client, server_first| client.finish(server_first, None, Some("eSws")).0);
        assert_eq!(err.detail(), "malformed client message: channel binding does not match the GS2 header");
        let err = exchange_with(|client, server_first| client.finish(server_first, None, Some("biw")).0);
        assert!(err.is_malformed());
    }

    #[test]
    fn tampered_proof() {
        let err = exchange_with(|client, server_first| {
            let mut message = client.finish(server_first, None, None).0;
            let i = message.len() - 3;
            message[i] = if message[i] == b'A' { b'B' } else { b'A' };
            message
        });
        assert!(matches!(err, ScramError::InvalidCredentials { .. }));
        let err = exchange_with(|client, server_first| {
            let message = String::from_utf8(client.finish(server_first, None, None).0).unwrap();
            let (head, _) = message.rsplit_once(",p=").unwrap();
            format!("{head},p=AAAA").into_bytes()
        });
        assert_eq!(err.detail(), "malformed client message: client proof has the wrong length");
    }

    #[test]
    fn refused_client_first_messages() {
        let lookup = store(rfc7677_credential(), "user");
        let cases: &[(&[u8], &str)] = &[
            (b"p=tls-unique,,n=user,r=abc", "channel binding is not supported"),
            (b"n,,m=x,n=user,r=abc", "mandatory extensions are not supported"),
            (b"x,,n=user,r=abc", "invalid GS2 header"),
            (b"n,b=user,n=user,r=abc", "invalid GS2 header"),
            (b"n,,n=,r=abc", "invalid username"),
            (b"n,,n=us=2Cer=,r=abc", "invalid username"),
            (b"n,,n=us=2cer,r=abc", "invalid username"),
            (b"n,,n=user,r=", "invalid nonce"),
            (b"n,,n=user", "missing nonce"),
            (b"n,,r=abc,n=user", "missing username"),
            (b"n,,n=user,r=abc,", "invalid extension"),
            (b"n,,n=user,r=abc,1=x", "invalid extension"),
            (b"n,,n=us\xc3\xa9r,r=abc", "character outside 0x01..=0x7F"),
            (b"n,,n=us\0er,r=abc", "character outside 0x01..=0x7F"),
        ];
        for (message, reason) in cases {
            let mut server = ScramServer::new(ScramMechanism::Sha256);
            let err = server.step(message, &lookup).unwrap_err();
            assert_eq!(
                err,
                ScramError::Malformed { mechanism: ScramMechanism::Sha256, reason },
                "{}",
                String::from_utf8_lossy(message)
            );
        }
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let big = [b"n,,n=user,r=".as_slice(), &[b'a'; MAX_SCRAM_MESSAGE_SIZE]].concat();
        assert!(matches!(server.step(&big, &lookup), Err(ScramError::MessageTooLarge { .. })));
    }

    #[test]
    fn extensions_and_token_auth() {
        let lookup = store(rfc7677_credential(), "user");
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        assert!(matches!(server.step(b"n,,n=user,r=abc,foo=bar=baz", &lookup), Ok(ScramStep::Continue(_))));
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let err = server.step(b"n,,n=user,r=abc,tokenauth=TRUE", &lookup).unwrap_err();
        assert_eq!(err.to_string(), "Authentication failed: delegation token authentication is not supported");
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        assert!(server.step(b"n,,n=user,r=abc,tokenauth=false", &lookup).is_ok());
    }

    #[test]
    fn with_nonce_suffix_validates() {
        assert!(ScramServer::with_nonce_suffix(ScramMechanism::Sha256, "").is_none());
        assert!(ScramServer::with_nonce_suffix(ScramMechanism::Sha256, "a,b").is_none());
        assert!(ScramServer::with_nonce_suffix(ScramMechanism::Sha256, "a b").is_none());
        assert!(ScramServer::with_nonce_suffix(ScramMechanism::Sha256, "ab~").is_some());
    }

    #[test]
    fn verify_password_against_credential() {
        for mechanism in ScramMechanism::ALL {
            let credential = ScramCredential::from_password(mechanism, "hunter2", 4096).unwrap();
            assert!(credential.verify_password("hunter2"));
            assert!(!credential.verify_password("hunter3"));
            assert!(!credential.verify_password(""));
        }
        assert!(rfc7677_credential().verify_password("pencil"));
        let mut broken = rfc7677_credential();
        broken.stored_key.pop();
        assert!(!broken.verify_password("pencil"));
    }

    #[test]
    fn from_salted_password_matches_from_password() {
        let salt = b"some salt".to_vec();
        let salted = ScramMechanism::Sha512.salted_password(b"pw", &salt, 5000);
        let credential = ScramCredential::from_salted_password(ScramMechanism::Sha512, &salted, &salt, 5000);
        assert!(credential.verify_password("pw"));
        assert_eq!(credential.iterations, 5000);
        assert_eq!(credential.stored_key.len(), 64);
        assert!(!format!("{credential:?}").contains("stored_key"));
    }

    #[test]
    fn credential_text_round_trip() {
        let credential = rfc7677_credential();
        let text = credential.to_text();
        assert!(text.starts_with("salt=W22ZaJ0SNY7soEsUEjb6gQ==,stored_key="));
        assert!(text.ends_with(",iterations=4096"));
        assert_eq!(ScramCredential::from_text(ScramMechanism::Sha256, &text), Ok(credential.clone()));
        let mut fields: Vec<&str> = text.split(',').collect();
        fields.reverse();
        assert_eq!(ScramCredential::from_text(ScramMechanism::Sha256, &fields.join(",")), Ok(credential.clone()));
        assert!(ScramCredential::from_text(ScramMechanism::Sha512, &text).is_err());
    }

    #[test]
    fn credential_text_rejections() {
        let good = rfc7677_credential().to_text();
        let bad = [
            String::new(),
            format!("{good},"),
            format!("{good},iterations=4096"),
            format!("{good},extra=1"),
            good.replace("iterations=4096", "iterations=+4096"),
            good.replace("iterations=4096", "iterations=0"),
            good.replace("iterations=4096", "iterations=2147483648"),
            good.replace("iterations=4096", "iterations=99999999999999999999"),
            good.replace("iterations=4096", "iterations="),
            good.replace("salt=W22ZaJ0SNY7soEsUEjb6gQ==", "salt="),
            good.replace("salt=W22ZaJ0SNY7soEsUEjb6gQ==", "salt=W22ZaJ0SNY7soEsUEjb6gQ"),
            good.replace(",iterations=4096", ""),
            "x".repeat(MAX_CREDENTIAL_TEXT_SIZE + 1),
        ];
        for text in bad {
            assert!(ScramCredential::from_text(ScramMechanism::Sha256, &text).is_err(), "{text}");
        }
    }

    #[test]
    fn constant_time_eq_behaviour() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    /// A small deterministic generator for the robustness loop.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let mechanism = ScramMechanism::Sha256;
        let lookup = store(ScramCredential::from_password(mechanism, "pw", 4096).unwrap(), "u");
        let client = TestClient::new(mechanism, "n,,", "u", "cnonce", "pw");
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let first = client.first();
        let alphabet = b"nyp=,arcmiv2C3D01+/\x00\xff\x7fAZ";
        for round in 0..3000 {
            let mut server = ScramServer::new(mechanism);
            let random_len = (rng.next() % 80) as usize;
            let message: Vec<u8> = match round % 4 {
                0 => (0..random_len).map(|_| rng.next() as u8).collect(),
                1 => (0..random_len).map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize]).collect(),
                2 => first[..(rng.next() as usize % (first.len() + 1))].to_vec(),
                _ => {
                    let mut m = first.clone();
                    let i = rng.next() as usize % m.len();
                    m[i] = rng.next() as u8;
                    m
                }
            };
            let _ = server.step(&message, &lookup);
            let _ = server.step(&message, &lookup);
        }
        // Client-final variations after a genuine client-first.
        let fixed_server = || ScramServer::with_nonce_suffix(mechanism, "srv").unwrap();
        let ScramStep::Continue(server_first) = fixed_server().step(&first, &lookup).unwrap() else {
            panic!("expected server-first");
        };
        let (good, _) = client.finish(&server_first, None, None);
        for round in 0..1000 {
            let mut server = fixed_server();
            assert!(server.step(&first, &lookup).is_ok());
            let message: Vec<u8> = match round % 3 {
                0 => good[..(rng.next() as usize % good.len())].to_vec(),
                1 => {
                    let mut m = good.clone();
                    let i = rng.next() as usize % m.len();
                    m[i] = alphabet[(rng.next() % alphabet.len() as u64) as usize];
                    m
                }
                _ => (0..(rng.next() % 120) as usize).map(|_| rng.next() as u8).collect(),
            };
            if message != good {
                assert!(server.step(&message, &lookup).is_err());
            }
        }
        let mut server = ScramServer::new(mechanism);
        let huge = vec![b'n'; 1 << 20];
        assert!(server.step(&huge, &lookup).is_err());
    }
}
