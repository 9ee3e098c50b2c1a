//! confluent-kafka, the Python client over librdkafka (its wheel carries its
//! own librdkafka, newer than the `rdkafka` crate's): admin, every codec with
//! an idempotent producer, a classic consumer group, a cooperative-sticky
//! group, static members, KIP-848's consumer group protocol, transactions
//! with read_committed, offset lookups and admin offset and record changes,
//! as `tests/clients/confluent_kafka_checks.py` describes. Installed on first
//! use (`common::clients`).

mod common;

use common::Broker;

/// The checks the script runs, each of which must print `ok <check>`.
const CHECKS: &[&str] = &[
    "admin",
    "codec none",
    "codec gzip",
    "codec snappy",
    "codec lz4",
    "codec zstd",
    "group",
    "cooperative-sticky",
    "static-membership",
    "consumer-protocol",
    "transactions",
    "offsets",
];

#[test]
fn confluent_kafka_checks() {
    let broker = Broker::start("confluent-kafka", 2, &["--group-initial-rebalance-delay-ms", "0"]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/confluent_kafka_checks.py");
    let output = std::process::Command::new(common::clients::python())
        .arg(script)
        .arg(broker.bootstrap())
        .output()
        .expect("run confluent-kafka");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "confluent-kafka failed:\nstdout:\n{stdout}\nstderr:\n{}\nbroker log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        broker.log()
    );
    for check in CHECKS {
        assert!(stdout.contains(&format!("ok {check}\n")), "no `ok {check}` in:\n{stdout}");
    }
    assert!(stdout.ends_with("confluent-kafka ok\n"), "{stdout}");
    broker.stop();
}
