//! Client telemetry (KIP-714) end to end: client metrics subscriptions made
//! with Kafka 4.1's `kafka-client-metrics.sh` and `kafka-configs.sh` (their
//! main classes) and over raw frames, GetTelemetrySubscriptions and
//! PushTelemetry with Kafka's answers (unknown subscription id, too large,
//! too frequent, terminated), and librdkafka pushing its producer metrics,
//! which the admin listener then shows on `/metrics` and `/api/clients`.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{http, Broker, Raw};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, GetTelemetrySubscriptionsRequest,
    GetTelemetrySubscriptionsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    ListConfigResourcesRequest, ListConfigResourcesResponse, PushTelemetryRequest, PushTelemetryResponse,
};
use kafka_protocol::protocol::StrBytes;
use prost::Message;
use sluice_domain::telemetry::otlp;

const CLIENT_METRICS: i8 = 16;
const INVALID_REQUEST: i16 = 42;
const INVALID_CONFIG: i16 = 40;
const THROTTLING_QUOTA_EXCEEDED: i16 = 89;
const UNKNOWN_SUBSCRIPTION_ID: i16 = 117;
const TELEMETRY_TOO_LARGE: i16 = 118;
const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
const INVALID_RECORD: i16 = 87;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// Sets configs of client metrics subscription `name` (IncrementalAlterConfigs SET): its error code.
fn subscribe(raw: &mut Raw, name: &str, configs: &[(&str, &str)]) -> i16 {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(CLIENT_METRICS)
        .with_resource_name(s(name))
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    AlterableConfig::default().with_name(s(k)).with_config_operation(0).with_value(Some(s(v)))
                })
                .collect(),
        )]);
    let answer: IncrementalAlterConfigsResponse = raw.call(ApiKey::IncrementalAlterConfigs, 1, &request);
    answer.responses[0].error_code
}

fn get_subscriptions(raw: &mut Raw, id: uuid::Uuid) -> GetTelemetrySubscriptionsResponse {
    raw.call(
        ApiKey::GetTelemetrySubscriptions,
        0,
        &GetTelemetrySubscriptionsRequest::default().with_client_instance_id(id),
    )
}

fn push(
    raw: &mut Raw,
    id: uuid::Uuid,
    subscription_id: i32,
    compression: i8,
    metrics: Vec<u8>,
    terminating: bool,
) -> i16 {
    let request = PushTelemetryRequest::default()
        .with_client_instance_id(id)
        .with_subscription_id(subscription_id)
        .with_compression_type(compression)
        .with_terminating(terminating)
        .with_metrics(Bytes::from(metrics));
    let answer: PushTelemetryResponse = raw.call(ApiKey::PushTelemetry, 0, &request);
    answer.error_code
}

/// A `MetricsData` with one gauge, as a Java producer sends it.
fn metrics_data(name: &str, value: f64) -> Vec<u8> {
    let gauge = otlp::Metric {
        name: name.into(),
        data: Some(otlp::Data::Gauge(otlp::Gauge {
            data_points: vec![otlp::NumberDataPoint {
                attributes: vec![],
                time_unix_nano: 1,
                value: Some(otlp::NumberValue::AsDouble(value)),
            }],
        })),
        ..Default::default()
    };
    otlp::MetricsData {
        resource_metrics: vec![otlp::ResourceMetrics {
            resource: None,
            scope_metrics: vec![otlp::ScopeMetrics { metrics: vec![gauge] }],
        }],
    }
    .encode_to_vec()
}

/// Polls `/metrics` until `found` holds of its text.
fn wait_for_metrics(broker: &Broker, what: &str, found: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = http::get(&broker.admin_url(), "/metrics").body;
        if found(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what} never showed on /metrics:\n{text}\nbroker log:\n{}", broker.log());
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn subscriptions_are_configs_checked_as_kafka_checks_them() {
    let broker = Broker::start("telemetry-configs", 2, &[]);
    let mut raw = Raw::connect(&broker);
    assert_eq!(subscribe(&mut raw, "all", &[("metrics", "org.apache.kafka.producer."), ("interval.ms", "2000")]), 0);
    assert_eq!(subscribe(&mut raw, "bad", &[("interval.ms", "50")]), INVALID_REQUEST);
    assert_eq!(subscribe(&mut raw, "bad", &[("nope", "1")]), INVALID_REQUEST);
    assert_eq!(subscribe(&mut raw, "bad", &[("match", "hostname=x")]), INVALID_CONFIG);
    assert_eq!(subscribe(&mut raw, "", &[("metrics", "*")]), INVALID_REQUEST);

    let describe = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(CLIENT_METRICS)
        .with_resource_name(s("all"))
        .with_configuration_keys(None)]);
    let answer: DescribeConfigsResponse = raw.call(ApiKey::DescribeConfigs, 4, &describe);
    let configs: Vec<(String, String, i8)> = answer.results[0]
        .configs
        .iter()
        .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(), c.config_source))
        .collect();
    assert_eq!(
        configs,
        [
            ("interval.ms".to_string(), "2000".to_string(), 7),
            ("match".to_string(), String::new(), 5),
            ("metrics".to_string(), "org.apache.kafka.producer.".to_string(), 7),
        ]
    );
    let list: ListConfigResourcesResponse =
        raw.call(ApiKey::ListConfigResources, 0, &ListConfigResourcesRequest::default());
    let names: Vec<String> = list.config_resources.iter().map(|r| r.resource_name.to_string()).collect();
    assert_eq!(names, ["all"]);

    // Kept across a restart, like every config in the catalog.
    drop(raw);
    let data_dir = broker.stop();
    let broker = Broker::start_in(data_dir, 2, &[]);
    let mut raw = Raw::connect(&broker);
    let list: ListConfigResourcesResponse = raw.call(
        ApiKey::ListConfigResources,
        1,
        &ListConfigResourcesRequest::default().with_resource_types(vec![CLIENT_METRICS]),
    );
    assert_eq!(list.config_resources.len(), 1);
}

#[test]
fn pushes_are_answered_as_kafka_answers_them_and_shown() {
    let broker = Broker::start("telemetry-wire", 2, &[]);
    let mut raw = Raw::connect(&broker);

    // No subscription: no metrics, Kafka's default interval.
    let first = get_subscriptions(&mut raw, uuid::Uuid::nil());
    assert_eq!(first.error_code, 0);
    assert!(!first.client_instance_id.is_nil());
    assert!(first.requested_metrics.is_empty());
    assert_eq!(first.push_interval_ms, 300_000);
    assert_eq!(first.accepted_compression_types, [4, 3, 1, 2]);
    assert_eq!(first.telemetry_max_bytes, 1024 * 1024);
    assert!(first.delta_temporality);

    assert_eq!(
        subscribe(&mut raw, "raw", &[("metrics", "*"), ("interval.ms", "1000"), ("match", "client_id=raw-test")]),
        0
    );
    // The subscription changed: answered at once, not throttled.
    let got = get_subscriptions(&mut raw, first.client_instance_id);
    assert_eq!(got.error_code, 0);
    assert_eq!(got.client_instance_id, first.client_instance_id);
    assert_eq!(got.requested_metrics, [s("*")]);
    assert_eq!(got.push_interval_ms, 1000);
    assert_ne!(got.subscription_id, first.subscription_id);
    // Asking again within the interval is too frequent.
    assert_eq!(get_subscriptions(&mut raw, got.client_instance_id).error_code, THROTTLING_QUOTA_EXCEEDED);

    let id = got.client_instance_id;
    let sub = got.subscription_id;
    let payload = metrics_data("org.apache.kafka.producer.record.queue.time.max", 42.0);
    assert_eq!(push(&mut raw, id, sub.wrapping_add(1), 0, payload.clone(), false), UNKNOWN_SUBSCRIPTION_ID);
    assert_eq!(push(&mut raw, uuid::Uuid::nil(), sub, 0, payload.clone(), false), INVALID_REQUEST);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(push(&mut raw, id, sub, 0, vec![0u8; 1024 * 1024 + 1], false), TELEMETRY_TOO_LARGE);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(push(&mut raw, id, sub, 9, payload.clone(), false), UNSUPPORTED_COMPRESSION_TYPE);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(push(&mut raw, id, sub, 0, vec![0xff; 16], false), INVALID_RECORD);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(push(&mut raw, id, sub, 1, gzip(&payload), false), 0);
    assert_eq!(push(&mut raw, id, sub, 0, payload.clone(), false), THROTTLING_QUOTA_EXCEEDED, "within the interval");

    let text = wait_for_metrics(&broker, "the pushed gauge", |t| t.contains("record.queue.time.max"));
    let samples = http::parse_metrics(&text);
    let value = http::sum(
        &samples,
        "sluice_client_metric",
        &[("client_id", "raw-test"), ("name", "org.apache.kafka.producer.record.queue.time.max")],
    );
    assert_eq!(value, 42.0, "{text}");
    assert!(http::sum(&samples, "sluice_client_telemetry_unknown_subscription_requests_total", &[]) >= 1.0, "{text}");
    let api = http::get(&broker.admin_url(), "/api/clients").json();
    let client =
        api["clients"].as_array().unwrap().iter().find(|c| c["client_id"] == "raw-test").expect("raw-test listed");
    assert_eq!(client["metrics"][0]["value"], 42.0);
    assert_eq!(api["subscriptions"][0]["name"], "raw");

    // A terminating push is taken early; nothing is taken after it.
    assert_eq!(push(&mut raw, id, sub, 0, payload.clone(), true), 0);
    assert_eq!(push(&mut raw, id, sub, 0, payload, false), INVALID_REQUEST);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    sluice_protocol::compression::compress(sluice_protocol::compression::GZIP, data).unwrap()
}

#[test]
fn librdkafka_pushes_its_producer_metrics() {
    use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
    let broker = Broker::start("telemetry-rdkafka", 2, &[]);
    let mut raw = Raw::connect(&broker);
    assert_eq!(
        subscribe(&mut raw, "producers", &[("metrics", "org.apache.kafka.producer."), ("interval.ms", "1000")]),
        0
    );
    let producer: ThreadedProducer<_> = common::kafka::client_config(&broker.bootstrap(), &[])
        .set("client.id", "telemetry-rdkafka")
        .set("enable.metrics.push", "true")
        .create()
        .expect("producer");
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        common::kafka::send(&producer, BaseRecord::to("telemetry").payload("x").key("k"));
        producer.flush(Duration::from_secs(5)).unwrap();
        let text = http::get(&broker.admin_url(), "/metrics").body;
        let pushed = http::parse_metrics(&text).into_iter().any(|m| {
            m.name == "sluice_client_metric"
                && m.labels.get("client_id").map(String::as_str) == Some("telemetry-rdkafka")
                && m.labels.get("name").is_some_and(|n| n.starts_with("org.apache.kafka.producer."))
        });
        if pushed {
            break text;
        }
        assert!(Instant::now() < deadline, "librdkafka's metrics never showed:\n{text}\nbroker log:\n{}", broker.log());
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(text.contains("client_software_name=\"librdkafka\""), "{text}");
    let api = http::get(&broker.admin_url(), "/api/clients").json();
    let client = api["clients"].as_array().unwrap().iter().find(|c| c["client_id"] == "telemetry-rdkafka").unwrap();
    assert!(client["pushes"].as_u64().unwrap() >= 1, "{api}");
}

#[test]
fn kafka_client_metrics_tool_manages_subscriptions() {
    let broker = Broker::start("telemetry-tools", 2, &[]);
    let run = |class: &str, args: &[&str]| {
        let output = Command::new("java")
            .arg("-cp")
            .arg(common::clients::kafka_tools_classpath().trim())
            .arg(class)
            .args(["--bootstrap-server", &broker.bootstrap()])
            .args(args)
            .output()
            .expect("run java");
        let text = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{class} {args:?} failed:\n{text}\nbroker log:\n{}", broker.log());
        text
    };
    const CLIENT_METRICS_TOOL: &str = "org.apache.kafka.tools.ClientMetricsCommand";
    const CONFIGS: &str = "org.apache.kafka.tools.ConfigCommand";
    run(
        CLIENT_METRICS_TOOL,
        &[
            "--alter",
            "--name",
            "java-producers",
            "--metrics",
            "org.apache.kafka.producer.",
            "--interval",
            "1000",
            "--match",
            "client_software_name=apache-kafka-java",
        ],
    );
    run(
        CONFIGS,
        &[
            "--alter",
            "--entity-type",
            "client-metrics",
            "--entity-name",
            "all",
            "--add-config",
            "metrics=*,interval.ms=60000",
        ],
    );
    let listed = run(CLIENT_METRICS_TOOL, &["--list"]);
    assert!(listed.contains("java-producers") && listed.contains("all"), "{listed}");
    let described = run(CLIENT_METRICS_TOOL, &["--describe", "--name", "java-producers"]);
    assert!(described.contains("org.apache.kafka.producer."), "{described}");
    assert!(described.contains("1000"), "{described}");
    let described = run(CONFIGS, &["--describe", "--entity-type", "client-metrics", "--entity-name", "all"]);
    assert!(described.contains("interval.ms=60000"), "{described}");
    run(
        CONFIGS,
        &[
            "--alter",
            "--entity-type",
            "client-metrics",
            "--entity-name",
            "all",
            "--delete-config",
            "metrics,interval.ms",
        ],
    );
    let listed = run(CLIENT_METRICS_TOOL, &["--list"]);
    assert!(!listed.lines().any(|l| l.trim() == "all"), "{listed}");
}
