//! The Python clients on a secured broker: confluent-kafka (over its own
//! librdkafka) and kafka-python log in with SASL/PLAIN, with SASL/SCRAM as
//! users their own admin clients create, with OAUTHBEARER tokens signed by
//! the key the broker's JWKS file holds, and over TLS and mutual TLS (the
//! certificate's subject mapped to the principal); their admin clients create
//! and list ACLs, and principals without them are refused with Kafka's errors,
//! as `tests/clients/python_security_checks.py` describes. One broker, one run
//! of the script; certificates and tokens are made by the test.

use crate::common;

use common::secure::Secure;

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

#[test]
fn python_clients_log_in_and_obey_acls() {
    let secure = Secure::start("python-security");
    let (broker, pki, dir) = (&secure.broker, &secure.pki, &secure.dir);
    let mut clients = serde_json::Map::new();
    for client in ["confluent-kafka", "kafka-python"] {
        let app = pki.client(&format!("{client}-app"), false);
        let stranger = pki.untrusted_client(&format!("{client}-stranger"));
        clients.insert(
            client.to_string(),
            serde_json::json!({
                "cert": app.cert, "key": app.key,
                "untrusted_cert": stranger.cert, "untrusted_key": stranger.key,
                "token": secure.token(&format!("{client}-user"), "sluice", 600),
                "expired_token": secure.token(&format!("{client}-user"), "sluice", -600),
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
    assert!(output.status.success(), "{}", broker.client_failure("the Python security checks", &output));
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
    secure.broker.stop();
}
