//! The SASL server side with arbitrary client messages: both SCRAM
//! mechanisms, PLAIN and its JAAS users, OAUTHBEARER (initial response,
//! exchange, token validation against a fixed JWKS, and claims the target
//! signs itself so claim checks are reached), and the mTLS principal
//! mapping. The first byte picks the code (see `fixtures::mode`).
#![no_main]

#[path = "../src/fixtures.rs"]
mod fixtures;

use std::sync::OnceLock;

use fixtures::*;
use libfuzzer_sys::fuzz_target;
use sluice::security::oauthbearer::{
    parse_client_initial_response, session_lifetime_ms, OAuthBearerConfig, OAuthBearerServer, OAuthBearerValidator,
    OAuthError, OAuthStep, ValidatedToken, INVALID_TOKEN_CHALLENGE,
};
use sluice::security::plain::{parse_plain, JaasPlainUsers};
use sluice::security::principal::{subject_dn, SslPrincipalMapper};
use sluice::security::scram::{ScramError, ScramMechanism, ScramServer, ScramStep};

/// A default validator and one that also requires an audience and issuer.
fn validators() -> &'static [OAuthBearerValidator; 2] {
    static VALIDATORS: OnceLock<[OAuthBearerValidator; 2]> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        let plain = OAuthBearerConfig::new("file:///fuzz/jwks.json");
        let mut strict = plain.clone();
        strict.expected_audience = vec![JWT_AUDIENCE.to_owned()];
        strict.expected_issuer = Some(JWT_ISSUER.to_owned());
        let validators = [
            OAuthBearerValidator::new(&plain, JWKS).expect("fixed JWKS"),
            OAuthBearerValidator::new(&strict, JWKS).expect("fixed JWKS"),
        ];
        for validator in &validators {
            assert_eq!(validator.key_count(), 2, "skipped: {:?}", validator.skipped_keys());
        }
        validators
    })
}

fn jaas_users() -> &'static JaasPlainUsers {
    static USERS: OnceLock<JaasPlainUsers> = OnceLock::new();
    USERS.get_or_init(|| JaasPlainUsers::parse(JAAS).expect("fixed JAAS config"))
}

/// Up to `n` messages: `data` split at NUL (the last keeps any further NULs).
fn messages(data: &[u8], n: usize) -> Vec<&[u8]> {
    data.splitn(n, |&b| b == 0).collect()
}

fn scram(data: &[u8]) {
    let messages = messages(data, 3);
    for mechanism in ScramMechanism::ALL {
        let lookup = move |user: &str| (user == SCRAM_USER).then(|| scram_credential(mechanism));
        let mut server = ScramServer::with_nonce_suffix(mechanism, SCRAM_NONCE_SUFFIX).expect("printable suffix");
        let mut over = false;
        for message in &messages {
            let result = server.step(message, &lookup);
            if over {
                assert!(matches!(result, Err(ScramError::InvalidState { .. })), "step after the end: {result:?}");
                continue;
            }
            match result {
                Ok(ScramStep::Continue(server_first)) => {
                    assert!(server_first.starts_with(b"r="), "server-first {server_first:?}");
                    assert!(!server.is_complete());
                }
                Ok(ScramStep::Done { server_final, username }) => {
                    assert_eq!(username, SCRAM_USER);
                    assert!(server_final.starts_with(b"v="));
                    assert!(server.is_complete());
                    over = true;
                }
                Err(e) => {
                    let _ = (e.to_string(), e.detail(), e.client_message(true), e.error_code(), e.is_malformed());
                    assert_eq!(e.mechanism(), mechanism);
                    assert!(!server.is_complete());
                    over = true;
                }
            }
        }
        // A random server nonce, as the broker uses.
        let _ = ScramServer::new(mechanism).step(messages[0], &lookup);
    }
}

fn plain(data: &[u8]) {
    match parse_plain(data) {
        Ok(credentials) => {
            assert!(!credentials.username.is_empty() && !credentials.password.is_empty());
            let _ = format!("{credentials:?}");
            let _ = jaas_users().authenticate(&credentials);
        }
        Err(e) => {
            let _ = (e.to_string(), e.error_code(), e.is_malformed());
        }
    }
}

fn jaas(data: &[u8]) {
    match JaasPlainUsers::parse(&String::from_utf8_lossy(data)) {
        Ok(users) => {
            let _ = (format!("{users:?}"), users.login_module(), users.is_empty());
            let names: Vec<String> = users.usernames().map(str::to_owned).collect();
            assert_eq!(names.len(), users.len());
            for name in &names {
                assert!(users.contains(name));
                assert!(users.check(name, "password").is_some());
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fn check_token(token: &ValidatedToken) {
    let name = &token.principal_name;
    assert!(!name.is_empty() && name.trim_matches(|c: char| c <= ' ') == name, "principal {name:?}");
    assert!(token.expires_at_ms >= 0 && token.issued_at_ms >= 0, "{token:?}");
    assert!(token.scopes.iter().all(|s| !s.is_empty()), "{token:?}");
    assert!(session_lifetime_ms(token.expires_at_ms, NOW_MS, 0) >= 0);
}

/// An OAUTHBEARER exchange of `messages` with each validator.
fn oauth_exchange(messages: &[&[u8]]) {
    for validator in validators() {
        let mut server = OAuthBearerServer::new();
        let mut over = false;
        for message in messages {
            let result = server.step(message, validator, NOW_MS);
            if over {
                assert!(matches!(result, Err(OAuthError::InvalidState { .. })), "step after the end: {result:?}");
                continue;
            }
            match result {
                Ok(OAuthStep::Continue(challenge)) => {
                    assert_eq!(challenge, INVALID_TOKEN_CHALLENGE.as_bytes());
                    assert!(!server.is_complete());
                }
                Ok(OAuthStep::Done { token, .. }) => {
                    check_token(&token);
                    assert!(server.is_complete());
                    over = true;
                }
                Err(e) => {
                    let _ = (e.to_string(), e.detail(), e.client_message(true), e.error_code(), e.is_malformed());
                    assert!(!server.is_complete());
                    over = true;
                }
            }
        }
    }
}

fn oauth_token(token: &str) {
    for validator in validators() {
        match validator.validate(token, NOW_MS) {
            Ok(validated) => check_token(&validated),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}

fn oauth_signed(data: &[u8]) {
    let (header, claims) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (JWT_HEADER.as_bytes(), data),
    };
    let token = jwt(header, claims);
    oauth_token(&token);
    oauth_exchange(&[&oauth_initial_response("", &token), b"\x01"]);
}

fn principal_rules(data: &[u8]) {
    let (rules, dn) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"CN=alice,OU=eng,O=Sluice\\, Inc.,C=US"[..]),
    };
    if let Ok(mapper) = SslPrincipalMapper::parse(&String::from_utf8_lossy(rules)) {
        let _ = mapper.to_string();
        let _ = mapper.map(&String::from_utf8_lossy(dn));
    }
}

fn certificate(data: &[u8]) {
    if let Ok(dn) = subject_dn(data) {
        let _ = SslPrincipalMapper::default().map(&dn).expect("DEFAULT maps every subject");
        let _ = SslPrincipalMapper::default().principal_for_certificate(data).expect("DEFAULT maps every subject");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    match selector % mode::COUNT {
        mode::SCRAM => scram(rest),
        mode::PLAIN => plain(rest),
        mode::JAAS => jaas(rest),
        mode::OAUTH_EXCHANGE => {
            let _ = parse_client_initial_response(rest).map_err(|e| e.to_string());
            oauth_exchange(&messages(rest, 3));
        }
        mode::OAUTH_TOKEN => oauth_token(&String::from_utf8_lossy(rest)),
        mode::OAUTH_SIGNED => oauth_signed(rest),
        mode::PRINCIPAL_RULES => principal_rules(rest),
        _ => certificate(rest),
    }
});
