//! A second, independent client: kafka-python (pure Python, its own protocol
//! code) creates a topic, produces and consumes against the real broker.
//! kafka-python is installed on first use (`common::clients`).

mod common;

use common::Broker;

#[test]
fn kafka_python_round_trip() {
    let broker = Broker::start("kafka-python", 2, &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/kafka_python_roundtrip.py");
    let output = std::process::Command::new(common::clients::python())
        .arg(script)
        .arg(broker.bootstrap())
        .output()
        .expect("run kafka-python");
    assert!(
        output.status.success(),
        "kafka-python failed:\nstdout:\n{}\nstderr:\n{}\nbroker log:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        broker.log()
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("round trip ok"));
    broker.stop();
}
