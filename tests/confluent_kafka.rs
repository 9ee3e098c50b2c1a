//! confluent-kafka, the Python client over librdkafka (its wheel carries its
//! own librdkafka, newer than the `rdkafka` crate's): admin, every codec with
//! an idempotent producer, a classic consumer group, a cooperative-sticky
//! group, static members, KIP-848's consumer group protocol, transactions
//! with read_committed, offset lookups and admin offset and record changes,
//! and client telemetry (KIP-714) pushed to a subscription the test makes, as
//! `tests/clients/confluent_kafka_checks.py` describes. Installed on first
//! use (`common::clients`).

use crate::common;

use common::{Broker, Raw};
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::{ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

/// The `CLIENT_METRICS` config resource type (KIP-714).
const CLIENT_METRICS: i8 = 16;

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
    "telemetry",
];

/// Makes the client metrics subscription the `telemetry` check pushes to:
/// producer metrics every second, from the client `ck-telemetry` only.
fn subscribe_telemetry(broker: &Broker) {
    let config = |name: &str, value: &str| {
        AlterableConfig::default()
            .with_name(StrBytes::from_string(name.into()))
            .with_config_operation(0)
            .with_value(Some(StrBytes::from_string(value.into())))
    };
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(CLIENT_METRICS)
        .with_resource_name(StrBytes::from_static_str("confluent-kafka"))
        .with_configs(vec![
            config("metrics", "org.apache.kafka.producer."),
            config("interval.ms", "1000"),
            config("match", "client_id=ck-telemetry"),
        ])]);
    let answer: IncrementalAlterConfigsResponse =
        Raw::connect(broker).call(ApiKey::IncrementalAlterConfigs, 1, &request);
    assert_eq!(answer.responses[0].error_code, 0, "{answer:?}");
}

#[test]
fn confluent_kafka_checks() {
    let broker = Broker::start("confluent-kafka", 2, &["--group-initial-rebalance-delay-ms", "0"]);
    subscribe_telemetry(&broker);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/confluent_kafka_checks.py");
    let output = std::process::Command::new(common::clients::python())
        .arg(script)
        .arg(broker.bootstrap())
        .arg(broker.admin_url())
        .output()
        .expect("run confluent-kafka");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", broker.client_failure("confluent-kafka", &output));
    for check in CHECKS {
        assert!(stdout.contains(&format!("ok {check}\n")), "no `ok {check}` in:\n{stdout}");
    }
    assert!(stdout.ends_with("confluent-kafka ok\n"), "{stdout}");
    broker.stop();
}
