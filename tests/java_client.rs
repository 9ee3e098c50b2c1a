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
    let broker = Broker::start(name, 2, &[]);
    run_java_on(&broker, program, &[], expected);
    broker.stop();
}

/// Runs a Java program with `args` after the bootstrap address against
/// `broker` and checks it printed `expected`.
fn run_java_on(broker: &Broker, program: &str, args: &[&str], expected: &str) {
    let classpath = common::clients::java_classpath();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/java").join(program);
    let output = Command::new("java")
        .arg("-cp")
        .arg(classpath.trim())
        .arg(&source)
        .arg(broker.bootstrap())
        .args(args)
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
}

/// How many requests of `api` the broker has answered, from `/metrics`.
fn requests(broker: &Broker, api: &str) -> f64 {
    let answer = common::http::get(&broker.admin_url(), "/metrics");
    assert_eq!(answer.status, 200, "{}", answer.body);
    common::http::sum(&common::http::parse_metrics(&answer.body), "sluice_requests_total", &[("request", api)])
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

/// Transactions V2 (KIP-890 part 2), the level a new cluster finalizes: the
/// Java client bumps its epoch with every EndTxn and never sends
/// AddPartitionsToTxn or AddOffsetsToTxn (partitions and groups join the
/// transaction when produced to or committed to). At level 1 the same
/// client goes back to the classic requests.
#[test]
fn java_client_transactions_v2() {
    let broker = Broker::start("java-transactions-v2", 2, &[]);
    run_java_on(&broker, "JavaTransactionsV2.java", &["v2"], "java transactions v2 ok");
    assert_eq!(requests(&broker, "AddPartitionsToTxn"), 0.0, "partitions joined implicitly");
    assert_eq!(requests(&broker, "AddOffsetsToTxn"), 0.0, "the group joined implicitly");
    assert!(requests(&broker, "EndTxn") >= 4.0);
    assert!(requests(&broker, "TxnOffsetCommit") >= 1.0);
    run_java_on(&broker, "JavaTransactionsV2.java", &["v1"], "java transactions v1 ok");
    assert!(requests(&broker, "AddPartitionsToTxn") >= 1.0, "at level 1 the client adds partitions itself");
    broker.stop();
}

#[test]
fn java_consumer_protocol_group() {
    run_java("java-kip848", "JavaConsumerProtocol.java", "java consumer protocol ok");
}
