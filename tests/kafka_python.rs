//! A second, independent client: kafka-python (pure Python, its own protocol
//! code) creates a topic, produces and consumes against the real broker with
//! every codec, runs transactions read back with read_committed, a
//! cooperative-sticky group and static group members, and its admin client
//! adds partitions, describes and alters configs, deletes records, lists and
//! describes groups and resets their offsets, lists and describes
//! transactions, and describes the metadata quorum and the features, as
//! `tests/clients/kafka_python_roundtrip.py` describes.
//! kafka-python is installed on first use (`common::clients`).

use crate::common;

use common::Broker;

/// The checks the script runs, each of which must print `ok <check>`.
const CHECKS: &[&str] = &[
    "roundtrip",
    "transactions",
    "cooperative-sticky",
    "static-membership",
    "codec snappy",
    "codec lz4",
    "codec zstd",
    "partitions",
    "configs",
    "delete-records",
    "groups",
    "offsets-reset",
    "transactions-listed",
    "metadata-quorum-features",
];

#[test]
fn kafka_python_round_trip() {
    let broker = Broker::start("kafka-python", 2, &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/kafka_python_roundtrip.py");
    let output = std::process::Command::new(common::clients::python())
        .arg(script)
        .arg(broker.bootstrap())
        .output()
        .expect("run kafka-python");
    assert!(output.status.success(), "{}", broker.client_failure("kafka-python", &output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for check in CHECKS {
        assert!(
            stdout.lines().any(|l| l == format!("ok {check}") || l.starts_with(&format!("ok {check} ("))),
            "no `ok {check}` in:\n{stdout}"
        );
    }
    assert!(stdout.ends_with("kafka-python ok\n"), "{stdout}");
    broker.stop();
}
