//! The Java client (kafka-clients 4.4, resolved by Maven from
//! `tests/clients/java/pom.xml`) on its defaults: admin, idempotent producer,
//! consumer; its transactions; cooperative-sticky and static group members;
//! and KIP-848's consumer group protocol. Maven resolves the jars on first use
//! (`common::clients`); a missing Java fails this test.

mod common;

use std::path::Path;
use std::process::Command;

use common::Broker;

/// Runs one of the Java programs in `tests/clients/java/` against a fresh
/// broker and checks it printed `expected`.
fn run_java(name: &str, program: &str, expected: &str) {
    let classpath = common::clients::java_classpath();
    let broker = Broker::start(name, 2, &[]);
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/java").join(program);
    let output = Command::new("java")
        .arg("-cp")
        .arg(classpath.trim())
        .arg(&source)
        .arg(broker.bootstrap())
        .output()
        .expect("run java");
    assert!(
        output.status.success(),
        "Java client failed:\nstdout:\n{}\nstderr:\n{}\nbroker log:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        broker.log()
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains(expected));
    broker.stop();
}

#[test]
fn java_client_round_trip() {
    run_java("java-client", "JavaRoundTrip.java", "java round trip ok");
}

/// Transactions with the Java client: consume-transform-produce with aborts,
/// fencing, and the admin client's transaction and producer views.
#[test]
fn java_client_transactions() {
    run_java("java-transactions", "JavaTransactions.java", "java transactions ok");
}

/// Classic groups with the Java client: the cooperative-sticky assignor and
/// static membership.
#[test]
fn java_client_groups() {
    run_java("java-groups", "JavaGroups.java", "java groups ok");
}

#[test]
fn java_consumer_protocol_group() {
    run_java("java-kip848", "JavaConsumerProtocol.java", "java consumer protocol ok");
}
