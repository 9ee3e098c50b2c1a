//! A second, independent client: kafka-python (pure Python, its own protocol
//! code) creates a topic, produces and consumes against the real broker.
//! `.ci/run` installs kafka-python; a missing install fails this test.

mod common;

use common::Broker;

#[test]
fn kafka_python_round_trip() {
    let broker = Broker::start("kafka-python", 2, &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/kafka_python_roundtrip.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let output = std::process::Command::new(python).arg(script).arg(broker.bootstrap()).output().expect("run python3");
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
