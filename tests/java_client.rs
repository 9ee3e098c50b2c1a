//! The Java client (kafka-clients 4.4, resolved by Maven from
//! `tests/clients/java/pom.xml`) on its defaults: admin, idempotent producer,
//! consumer; its transactions; cooperative-sticky and static group members;
//! KIP-848's consumer group protocol; the admin client's calls (partitions,
//! configs, records, group offsets, ACLs, the quorum and features) and its
//! telemetry pushes against a broker with SASL and ACLs; and acknowledged
//! records and committed offsets across a kill -9. Maven resolves the jars on
//! first use (`common::clients`); a missing Java fails this test.

use crate::common;

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
    run_java_checked(broker, program, args, expected);
}

/// [`run_java_on`], returning what the program printed.
fn run_java_checked(broker: &Broker, program: &str, args: &[&str], expected: &str) -> String {
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
    assert!(output.status.success(), "{}", broker.client_failure("the Java client", &output));
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    stdout
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

/// The checks `JavaAdmin.java` runs, each of which must print `ok <check>`.
const CHECKS: &[&str] = &[
    "create-partitions",
    "configs",
    "delete-records",
    "group-offsets",
    "acls",
    "telemetry",
    "quorum-features",
    "acked-records-kept",
    "committed-offsets-kept",
];

/// The admin client's calls against a broker with a SASL_PLAINTEXT listener,
/// PLAIN users `admin` (a super user) and `alice`, and Kafka's
/// StandardAuthorizer: partitions added, configs described and altered,
/// records deleted, group offsets reset and deleted, ACLs created, listed,
/// enforced on alice's producer and deleted, the producer's telemetry pushed
/// and shown on the admin listener, and the metadata quorum and features
/// (also through `bootstrap.controllers`).
#[test]
fn java_admin_checks() {
    let dir = common::fresh_data_dir("java-admin");
    let config = dir.with_extension("properties");
    std::fs::write(
        &config,
        "sasl.enabled.mechanisms=PLAIN\n\
         sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
         user_admin=\"admin-secret\" user_alice=\"alice-secret\";\n\
         authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n\
         super.users=User:admin\n",
    )
    .unwrap();
    let flags = ["--config", config.to_str().unwrap(), "--group-initial-rebalance-delay-ms", "0"];
    let broker = Broker::start_listening(dir, 2, "SASL_PLAINTEXT://127.0.0.1:0", &flags);
    let stdout = run_java_checked(&broker, "JavaAdmin.java", &[&broker.admin_url()], "java admin ok");
    for check in &CHECKS[..7] {
        assert!(stdout.lines().any(|l| l == format!("ok {check}")), "no `ok {check}` in:\n{stdout}");
    }
    broker.stop();
}

/// kill -9 while the Java producer is producing (idempotent, acks=all):
/// after the restart on the same data directory every record it was
/// acknowledged is at the offset it was acknowledged with, offsets are dense
/// and nothing is stored twice, and the offsets its consumer group committed
/// before the kill are kept (read by the Java consumer and admin client).
#[test]
fn java_acked_records_and_committed_offsets_survive_kill_9() {
    use std::io::BufRead;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let flags = ["--group-initial-rebalance-delay-ms", "0"];
    let broker = Broker::start("java-kill", 2, &flags);
    let classpath = common::clients::java_classpath();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/java/JavaDurability.java");
    let mut load = Command::new("java")
        .arg("-cp")
        .arg(classpath.trim())
        .arg(&source)
        .args([&broker.bootstrap(), "load"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run java");
    let lines = std::io::BufReader::new(load.stdout.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut acks = Vec::new();
    let mut committed = Vec::new();
    let mut ready = false;
    // Kill once the producer has had 1000 records acknowledged under load.
    let deadline = Instant::now() + Duration::from_secs(90);
    while !ready || acks.len() < 1300 {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            panic!("the Java producer stopped ({} acks, ready {ready}); broker log:\n{}", acks.len(), broker.log())
        };
        if line == "READY" {
            ready = true;
        } else if line.starts_with("ACK ") {
            acks.push(line);
        } else if line.starts_with("COMMITTED ") {
            committed.push(line);
        }
    }
    let dir = broker.kill();
    // Acknowledgements that were on their way when the broker died.
    std::thread::sleep(Duration::from_millis(200));
    let _ = load.kill();
    let _ = load.wait();
    acks.extend(rx.try_iter().filter(|l| l.starts_with("ACK ")));

    let acks_file = dir.with_extension("acks");
    let committed_file = dir.with_extension("committed");
    std::fs::write(&acks_file, acks.join("\n") + "\n").unwrap();
    std::fs::write(&committed_file, committed.join("\n") + "\n").unwrap();
    let broker = Broker::start_in(dir, 2, &flags);
    let stdout = run_java_checked(
        &broker,
        "JavaDurability.java",
        &["verify", acks_file.to_str().unwrap(), committed_file.to_str().unwrap()],
        "java durability ok",
    );
    for check in &CHECKS[7..] {
        assert!(stdout.lines().any(|l| l.starts_with(&format!("ok {check}"))), "no `ok {check}` in:\n{stdout}");
    }
    eprintln!("{stdout}");
    broker.stop();
}
