//! The Python clients on a secured broker: confluent-kafka (over its own
//! librdkafka) and kafka-python log in with SASL/PLAIN, with SASL/SCRAM as
//! users their own admin clients create, with OAUTHBEARER tokens signed by
//! the key the broker's JWKS file holds, and over TLS and mutual TLS (the
//! certificate's subject mapped to the principal); their admin clients create
//! and list ACLs, and principals without them are refused with Kafka's errors,
//! as `tests/clients/python_security_checks.py` describes. One broker, one run
//! of the script; certificates and tokens are made by the test.

use crate::common;

use std::path::PathBuf;

use common::tls::Pki;
use common::{fresh_data_dir, Broker};

/// The checks the script runs, each of which must print `ok <check>`.
const CHECKS: &[&str] = &[
    "confluent-kafka sasl/plain",
    "confluent-kafka acls",
    "confluent-kafka sasl/scram",
    "confluent-kafka sasl/oauthbearer",
    "confluent-kafka tls",
    "kafka-python sasl/plain",
    "kafka-python acls",
    "kafka-python sasl/scram",
    "kafka-python sasl/oauthbearer",
    "kafka-python tls",
];

const LISTENERS: &str = "SASL_SSL://127.0.0.1:0,SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,OAUTH://127.0.0.1:0";

/// The broker's JWKS file: the public half of `key` (P-256), as `test-key`.
fn jwks_of(key: &rcgen::KeyPair) -> String {
    use base64::Engine as _;
    let point = key.public_key_raw();
    assert_eq!(point.len(), 65, "an uncompressed P-256 point");
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    serde_json::json!({ "keys": [{
        "kty": "EC", "crv": "P-256", "kid": "test-key", "use": "sig", "alg": "ES256",
        "x": b64(&point[1..33]), "y": b64(&point[33..]),
    }]})
    .to_string()
}

/// A JWT for `subject` and the audience `sluice`, signed with `key`, expiring
/// `lifetime_s` from now (negative: already expired).
fn token(key: &rcgen::KeyPair, subject: &str, lifetime_s: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let claims = serde_json::json!({
        "sub": subject, "aud": "sluice", "iss": "sluice-test", "iat": now - 60, "exp": now + lifetime_s,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("test-key".into());
    let encoding = jsonwebtoken::EncodingKey::from_ec_der(&key.serialize_der());
    jsonwebtoken::encode(&header, &claims, &encoding).expect("sign JWT")
}

/// A broker with SASL_SSL, SSL (client certificates required), SASL_PLAINTEXT
/// and OAUTH (SASL_PLAINTEXT with OAUTHBEARER) listeners, PLAIN users `admin`
/// and `eve` from JAAS, SCRAM, and Kafka's StandardAuthorizer with
/// `User:admin` as the only super user.
fn secure_broker(name: &str) -> (Broker, Pki, PathBuf, rcgen::KeyPair) {
    let dir = fresh_data_dir(name);
    let pki = Pki::new(&dir.with_extension("pki"));
    let jwt_key = rcgen::KeyPair::generate().expect("JWT key");
    let jwks = dir.with_extension("jwks.json");
    std::fs::write(&jwks, jwks_of(&jwt_key)).unwrap();
    let config = dir.with_extension("properties");
    let text = format!(
        "listener.security.protocol.map=SASL_SSL:SASL_SSL,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,OAUTH:SASL_PLAINTEXT\n\
         listener.name.oauth.sasl.enabled.mechanisms=OAUTHBEARER\n\
         listener.name.oauth.oauthbearer.sasl.server.callback.handler.class=\
         org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler\n\
         sasl.oauthbearer.jwks.endpoint.url=file://{jwks}\n\
         sasl.oauthbearer.expected.audience=sluice\n\
         ssl.keystore.type=PEM\n\
         ssl.keystore.location={keystore}\n\
         ssl.truststore.type=PEM\n\
         ssl.truststore.location={ca}\n\
         listener.name.ssl.ssl.client.auth=required\n\
         ssl.principal.mapping.rules=RULE:^CN=([^,]+),OU=eng,.*$/$1/L,DEFAULT\n\
         sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN\n\
         sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
         user_admin=\"admin-secret\" user_eve=\"eve-secret\";\n\
         authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n\
         super.users=User:admin\n",
        keystore = pki.server_keystore.display(),
        ca = pki.ca.display(),
        jwks = jwks.display(),
    );
    std::fs::write(&config, text).unwrap();
    let broker = Broker::start_listening(dir.clone(), 2, LISTENERS, &["--config", config.to_str().unwrap()]);
    (broker, pki, dir, jwt_key)
}

#[test]
fn python_clients_log_in_and_obey_acls() {
    let (broker, pki, dir, jwt_key) = secure_broker("python-security");
    let mut clients = serde_json::Map::new();
    for client in ["confluent-kafka", "kafka-python"] {
        let app = pki.client(&format!("{client}-app"), false);
        let stranger = pki.untrusted_client(&format!("{client}-stranger"));
        clients.insert(
            client.to_string(),
            serde_json::json!({
                "cert": app.cert, "key": app.key,
                "untrusted_cert": stranger.cert, "untrusted_key": stranger.key,
                "token": token(&jwt_key, &format!("{client}-user"), 600),
                "expired_token": token(&jwt_key, &format!("{client}-user"), -600),
            }),
        );
    }
    let setup = serde_json::json!({
        "sasl_plaintext": broker.listener("SASL_PLAINTEXT"),
        "sasl_ssl": broker.listener("SASL_SSL"),
        "ssl": broker.listener("SSL"),
        "oauth": broker.listener("OAUTH"),
        "ca": pki.ca,
        "clients": clients,
    });
    let setup_file = dir.with_extension("setup.json");
    std::fs::write(&setup_file, setup.to_string()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/python_security_checks.py");
    let output = std::process::Command::new(common::clients::python())
        .arg(script)
        .arg(&setup_file)
        .output()
        .expect("run the Python security checks");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Python security checks failed:\nstdout:\n{stdout}\nstderr:\n{}\nbroker log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        broker.log()
    );
    for check in CHECKS {
        assert!(stdout.contains(&format!("ok {check}\n")), "no `ok {check}` in:\n{stdout}");
    }
    assert!(stdout.ends_with("python security ok\n"), "{stdout}");
    // The refused logins were the broker's doing, on every SASL listener.
    let log = broker.log();
    for listener in ["SASL_PLAINTEXT", "SASL_SSL", "OAUTH"] {
        assert!(
            log.lines()
                .map(common::strip_ansi)
                .any(|l| l.contains("failed login") && l.contains(&format!("listener={listener} "))),
            "no failed login on {listener} in the broker log:\n{log}"
        );
    }
    broker.stop();
}
