//! The built-in schema registry with Confluent's own Python client and
//! serializers (confluent-kafka's `schema_registry` package), as
//! `tests/clients/schema_registry_checks.py` describes: the REST API and its
//! errors, evolutions per schema type and compatibility level, Avro, JSON
//! Schema and Protobuf records produced and consumed through the
//! serializers, concurrent registrations, bad input; then a kill -9 and a
//! restart on the same data, after which every id, version, config and mode
//! is still there and new ids continue after the old ones.

use crate::common;

use common::Broker;

const FRESH_CHECKS: &[&str] = &[
    "rest",
    "compatibility",
    "avro",
    "json",
    "protobuf",
    "concurrent",
    "bad-input",
    "validation",
    "documented-examples",
];

fn run(broker: &Broker, phase: &str, state: &std::path::Path) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/schema_registry_checks.py");
    let output = std::process::Command::new(common::clients::python())
        .arg(script)
        .arg(broker.bootstrap())
        .arg(broker.schema_registry_url())
        .arg(phase)
        .arg(state)
        .output()
        .expect("run the schema registry checks");
    assert!(output.status.success(), "{}", broker.client_failure("schema registry checks", &output));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(stdout.ends_with("schema registry ok\n"), "{stdout}");
    stdout
}

#[test]
fn confluent_clients_use_the_registry_and_nothing_is_lost_in_a_crash() {
    let broker = Broker::start("schema-registry", 2, &["--group-initial-rebalance-delay-ms", "0"]);
    let state = common::fresh_data_dir("schema-registry-state").join("state.json");
    std::fs::create_dir_all(state.parent().expect("a directory")).expect("state directory");
    let stdout = run(&broker, "fresh", &state);
    for check in FRESH_CHECKS {
        assert!(stdout.contains(&format!("ok {check}\n")), "no `ok {check}` in:\n{stdout}");
    }
    let data = broker.kill();
    let broker = Broker::start_in(data, 2, &[]);
    let stdout = run(&broker, "restarted", &state);
    assert!(stdout.contains("ok restarted\n"), "{stdout}");
    broker.stop();
}
