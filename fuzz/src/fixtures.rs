//! Fixed values shared by the `sasl_exchange` target and the seed writer, so
//! that seeds can hold exchanges the target accepts: a SCRAM login that
//! completes (fixed credential and server nonce) and JWTs signed with a key
//! of the target's JWKS.
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sluice::security::scram::{ScramCredential, ScramMechanism};

/// The one user the SCRAM credential lookup knows.
pub const SCRAM_USER: &str = "user";
/// The server nonce suffix, fixed so that a client-final message can echo
/// the whole nonce.
pub const SCRAM_NONCE_SUFFIX: &str = "fuzz-server-nonce";
pub const SCRAM_SALT: &[u8] = b"sluice-fuzz-salt";
pub const SCRAM_ITERATIONS: u32 = 4096;
/// The salted password (its first `hash_len` bytes for each mechanism):
/// given directly, so the credential is the same in every run.
pub const SCRAM_SALTED_PASSWORD: [u8; 64] = [0x5a; 64];

/// The credential of [`SCRAM_USER`] for `mechanism`.
pub fn scram_credential(mechanism: ScramMechanism) -> ScramCredential {
    let salted = &SCRAM_SALTED_PASSWORD[..mechanism.hash_len()];
    ScramCredential::from_salted_password(mechanism, salted, SCRAM_SALT, SCRAM_ITERATIONS)
}

/// The `sasl.jaas.config` PLAIN logins are checked against.
pub const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#;

/// The validation clock of the OAUTHBEARER target (ms since the epoch).
pub const NOW_MS: i64 = 1_700_000_000_000;
pub const JWT_AUDIENCE: &str = "sluice";
pub const JWT_ISSUER: &str = "https://idp.example";
/// The kid of the HMAC key the target signs fuzzed claims with.
pub const JWT_HMAC_KID: &str = "fuzz-hmac";
pub const JWT_HMAC_SECRET: &[u8] = b"sluice-fuzz-hmac-secret-32-bytes";
/// The JWKS: a P-256 key (the curve's generator point, so a valid public
/// key) and the HMAC key above.
pub const JWKS: &str = r#"{"keys":[
  {"kty":"EC","crv":"P-256","kid":"fuzz-ec","use":"sig","alg":"ES256",
   "x":"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY","y":"T-NC4v4af5uOfrSnfA-eFivOM1drMV7Oy7ZAaDe_UfU"},
  {"kty":"oct","kid":"fuzz-hmac","use":"sig","alg":"HS256","k":"c2x1aWNlLWZ1enotaG1hYy1zZWNyZXQtMzItYnl0ZXM"}
]}"#;
/// The JOSE header of the tokens the target signs when the input gives none.
pub const JWT_HEADER: &str = r#"{"alg":"HS256","typ":"JWT","kid":"fuzz-hmac"}"#;

/// A compact JWS of `header` and `claims` (as given, not checked), signed
/// with HS256 and [`JWT_HMAC_SECRET`].
pub fn jwt(header: &[u8], claims: &[u8]) -> String {
    let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, JWT_HMAC_SECRET);
    let tag = ring::hmac::sign(&key, signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// An OAUTHBEARER client initial response carrying `token`.
pub fn oauth_initial_response(authorization_id: &str, token: &str) -> Vec<u8> {
    let gs2 = if authorization_id.is_empty() { "n,,".to_owned() } else { format!("n,a={authorization_id},") };
    format!("{gs2}\x01auth=Bearer {token}\x01\x01").into_bytes()
}

/// The first byte of a `sasl_exchange` input: which code the rest drives.
pub mod mode {
    /// Both SCRAM mechanisms; the rest split at NUL into up to 3 messages.
    pub const SCRAM: u8 = 0;
    /// `parse_plain`, then the JAAS users check.
    pub const PLAIN: u8 = 1;
    /// `JaasPlainUsers::parse` of the rest as lossy UTF-8.
    pub const JAAS: u8 = 2;
    /// `parse_client_initial_response` and an `OAuthBearerServer`; the rest
    /// split at NUL into up to 3 messages.
    pub const OAUTH_EXCHANGE: u8 = 3;
    /// `OAuthBearerValidator::validate` of the rest as a token.
    pub const OAUTH_TOKEN: u8 = 4;
    /// A JWT signed with the JWKS's HMAC key: `claims`, or `header NUL claims`.
    pub const OAUTH_SIGNED: u8 = 5;
    /// `SslPrincipalMapper::parse` of the rules before the first NUL, `map`
    /// of the distinguished name after it.
    pub const PRINCIPAL_RULES: u8 = 6;
    /// `subject_dn` of the rest as a DER certificate, mapped by `DEFAULT`.
    pub const SUBJECT_DN: u8 = 7;
    pub const COUNT: u8 = 8;
}
