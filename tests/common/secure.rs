//! A secured broker: SASL_SSL, SSL with required client certificates,
//! SASL_PLAINTEXT and OAUTH (SASL_PLAINTEXT with OAUTHBEARER) listeners, PLAIN
//! users `admin` and `eve` from JAAS, SCRAM, and Kafka's StandardAuthorizer
//! with `User:admin` as the only super user; and the OAUTHBEARER tokens it trusts.

use std::path::{Path, PathBuf};

use super::tls::Pki;
use super::{fresh_data_dir, Broker};

pub const LISTENERS: &str = "SASL_SSL://127.0.0.1:0,SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,OAUTH://127.0.0.1:0";

/// PLAIN users and their passwords: `admin` (the super user) and `eve`.
pub const JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
                        user_admin=\"admin-secret\" user_eve=\"eve-secret\";";

/// A broker with four listeners (SASL_SSL, SSL with required client
/// certificates, SASL_PLAINTEXT, and OAUTH: SASL_PLAINTEXT with OAUTHBEARER),
/// PLAIN users from JAAS, SCRAM, and Kafka's StandardAuthorizer with
/// `User:admin` as the only super user.
pub struct Secure {
    pub broker: Broker,
    pub pki: Pki,
    pub dir: PathBuf,
    pub config: PathBuf,
    /// The key OAUTHBEARER tokens are signed with (its public half is in the broker's JWKS file).
    pub jwt_key: rcgen::KeyPair,
}

impl Secure {
    pub fn start(name: &str) -> Secure {
        Secure::start_with(name, "")
    }

    /// [`Secure::start`] with more lines for the properties file.
    pub fn start_with(name: &str, more: &str) -> Secure {
        let dir = fresh_data_dir(name);
        let pki = Pki::new(&dir.with_extension("pki"));
        let config = dir.with_extension("properties");
        let jwt_key = rcgen::KeyPair::generate().expect("JWT key");
        let jwks = dir.with_extension("jwks.json");
        std::fs::write(&jwks, jwks_of(&jwt_key)).unwrap();
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
             sasl.jaas.config={JAAS}\n\
             authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n\
             super.users=User:admin\n{more}",
            keystore = pki.server_keystore.display(),
            ca = pki.ca.display(),
            jwks = jwks.display(),
        );
        std::fs::write(&config, text).unwrap();
        let broker = Secure::launch(&dir, &config);
        Secure { broker, pki, dir, config, jwt_key }
    }

    fn launch(dir: &Path, config: &Path) -> Broker {
        Broker::start_listening(dir.to_path_buf(), 2, LISTENERS, &["--config", config.to_str().unwrap()])
    }

    pub fn restart(self) -> Secure {
        let Secure { broker, pki, dir, config, jwt_key } = self;
        broker.stop();
        let broker = Secure::launch(&dir, &config);
        Secure { broker, pki, dir, config, jwt_key }
    }

    /// A JWT for `subject`, signed with the broker's trusted key, expiring
    /// `lifetime_s` from now (negative: already expired).
    pub fn token(&self, subject: &str, audience: &str, lifetime_s: i64) -> String {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let claims = serde_json::json!({
            "sub": subject, "aud": audience, "iss": "sluice-test", "iat": now - 60, "exp": now + lifetime_s,
        });
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("test-key".into());
        let key = jsonwebtoken::EncodingKey::from_ec_der(&self.jwt_key.serialize_der());
        jsonwebtoken::encode(&header, &claims, &key).expect("sign JWT")
    }
}

/// The JSON Web Key Set holding the public half of a P-256 key.
pub fn jwks_of(key: &rcgen::KeyPair) -> String {
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
