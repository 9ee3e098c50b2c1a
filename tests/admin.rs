//! Topic administration as Kafka clients see it: CreateTopics errors and
//! validate_only, DeleteTopics by name and id, auto-creation, DescribeCluster,
//! and the log-compaction configs (with Kafka's `kafka-configs.sh`).

use crate::common;

use std::time::Duration;

use common::kafka::{self, produce, Record};
use common::{create_topic, Broker, Raw};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeClusterRequest, DescribeClusterResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn creatable(name: &str, partitions: i32, replication: i16, configs: &[(&str, &str)]) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        .with_replication_factor(replication)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.to_string()))
                        .with_value(Some(StrBytes::from_string(v.to_string())))
                })
                .collect(),
        )
}

fn metadata(raw: &mut Raw, topics: Option<Vec<&str>>, auto_create: bool) -> MetadataResponse {
    let request = MetadataRequest::default().with_allow_auto_topic_creation(auto_create).with_topics(
        topics.map(|t| t.into_iter().map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n)))).collect()),
    );
    raw.call(ApiKey::Metadata, 12, &request)
}

#[test]
fn create_topics_errors_match_kafka() {
    let broker = Broker::start("admin-create", 2, &[]);
    let mut raw = Raw::connect(&broker);
    let request = CreateTopicsRequest::default().with_timeout_ms(5000).with_topics(vec![
        creatable("fine", 3, 1, &[("retention.ms", "60000")]),
        creatable("bad name!", 1, 1, &[]),
        creatable("zero", 0, 1, &[]),
        creatable("replicated", 1, 3, &[]),
        creatable("badconfig", 1, 1, &[("segment.bytes", "12")]),
        creatable("unknownconfig", 1, 1, &[("no.such.config", "1")]),
        creatable("defaults", -1, -1, &[]),
    ]);
    let response: CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &request);
    let codes: Vec<(String, i16)> = response.topics.iter().map(|t| (t.name.0.to_string(), t.error_code)).collect();
    assert_eq!(
        codes,
        vec![
            ("fine".into(), 0),
            ("bad name!".into(), 17),  // INVALID_TOPIC_EXCEPTION
            ("zero".into(), 37),       // INVALID_PARTITIONS
            ("replicated".into(), 38), // INVALID_REPLICATION_FACTOR
            ("badconfig".into(), 40),  // INVALID_CONFIG
            ("unknownconfig".into(), 40),
            ("defaults".into(), 0),
        ]
    );
    let fine = &response.topics[0];
    assert_eq!(fine.num_partitions, 3);
    assert!(!fine.topic_id.is_nil());
    let retention = fine.configs.as_ref().unwrap().iter().find(|c| c.name.as_str() == "retention.ms").unwrap();
    assert_eq!(retention.value.as_deref(), Some("60000"));
    assert_eq!(response.topics[6].num_partitions, 1, "num.partitions default");

    // Again: TOPIC_ALREADY_EXISTS. validate_only creates nothing.
    let again = CreateTopicsRequest::default()
        .with_topics(vec![creatable("fine", 3, 1, &[]), creatable("dry-run", 2, 1, &[])])
        .with_validate_only(true);
    let response: CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &again);
    assert_eq!(response.topics[0].error_code, 36);
    assert_eq!(response.topics[1].error_code, 0);
    let md = metadata(&mut raw, Some(vec!["dry-run"]), false);
    assert_eq!(md.topics[0].error_code, 3, "validate_only must not create the topic");

    // The metadata shows ids, partitions led by this node, and unknown ids are refused.
    let md = metadata(&mut raw, Some(vec!["fine"]), false);
    assert_eq!(md.topics[0].partitions.len(), 3);
    assert_eq!(md.topics[0].topic_id, fine.topic_id);
    assert!(md.topics[0].partitions.iter().all(|p| p.leader_id.0 == 0 && p.replica_nodes.len() == 1));
    let by_id = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(None).with_topic_id(fine.topic_id),
        MetadataRequestTopic::default().with_name(None).with_topic_id(uuid::Uuid::from_u128(42)),
    ]));
    let md: MetadataResponse = raw.call(ApiKey::Metadata, 12, &by_id);
    assert_eq!(md.topics[0].name.as_ref().unwrap().0.as_str(), "fine");
    assert_eq!(md.topics[1].error_code, 100, "UNKNOWN_TOPIC_ID");
    broker.stop();
}

#[test]
fn auto_creation_follows_the_config_and_the_request() {
    let broker = Broker::start("admin-auto", 2, &["--num-partitions", "3"]);
    let mut raw = Raw::connect(&broker);
    let md = metadata(&mut raw, Some(vec!["made-on-demand"]), true);
    assert_eq!(md.topics[0].error_code, 0);
    assert_eq!(md.topics[0].partitions.len(), 3);
    let md = metadata(&mut raw, Some(vec!["not-allowed"]), false);
    assert_eq!(md.topics[0].error_code, 3);
    let md = metadata(&mut raw, Some(vec!["no spaces allowed"]), true);
    assert_eq!(md.topics[0].error_code, 17);
    broker.stop();

    let broker = Broker::start("admin-noauto", 2, &["--auto-create-topics-enable", "false"]);
    let mut raw = Raw::connect(&broker);
    let md = metadata(&mut raw, Some(vec!["never"]), true);
    assert_eq!(md.topics[0].error_code, 3);
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_topics_removes_topic_and_data() {
    let broker = Broker::start("admin-delete", 2, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "doomed", 4, &[]).await;
    create_topic(&bootstrap, "by-id", 2, &[]).await;
    assert!(broker.data_dir.join("doomed-3").exists());

    let admin = kafka::admin(&bootstrap);
    let results = admin.delete_topics(&["doomed", "never-was"], &AdminOptions::new()).await.unwrap();
    assert!(results[0].is_ok());
    assert_eq!(results[1].as_ref().unwrap_err().1, RDKafkaErrorCode::UnknownTopicOrPartition);
    for p in 0..4 {
        assert!(!broker.data_dir.join(format!("doomed-{p}")).exists(), "partition data must be removed");
    }
    // Recreating the name starts from offset zero with fresh data.
    let results = admin
        .create_topics(&[NewTopic::new("doomed", 1, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await
        .unwrap();
    assert!(results[0].is_ok());
    let acked = produce(&kafka::producer(&bootstrap, &[]), "doomed", [Record::new("fresh").key("k")]).await;
    assert_eq!(acked[0].1, 0, "a re-created topic starts at offset 0");

    // DeleteTopics v6 by topic id.
    let mut raw = Raw::connect(&broker);
    let md = metadata(&mut raw, Some(vec!["by-id"]), false);
    let id = md.topics[0].topic_id;
    let request = DeleteTopicsRequest::default().with_timeout_ms(5000).with_topics(vec![
        DeleteTopicState::default().with_topic_id(id),
        DeleteTopicState::default().with_topic_id(uuid::Uuid::from_u128(9)),
    ]);
    let response: DeleteTopicsResponse = raw.call(ApiKey::DeleteTopics, 6, &request);
    assert_eq!(response.responses[0].error_code, 0);
    assert_eq!(response.responses[0].name.as_ref().unwrap().0.as_str(), "by-id");
    assert_eq!(response.responses[1].error_code, 100);
    let md = metadata(&mut raw, None, false);
    let names: Vec<&str> = md.topics.iter().map(|t| t.name.as_ref().unwrap().0.as_str()).collect();
    assert_eq!(names, vec!["doomed"]);
    tokio::time::sleep(Duration::from_millis(10)).await;
    broker.stop();
}

#[test]
fn describe_cluster_names_this_broker() {
    let broker = Broker::start("admin-cluster", 2, &["--node-id", "7"]);
    let mut raw = Raw::connect(&broker);
    let response: DescribeClusterResponse =
        raw.call(ApiKey::DescribeCluster, 1, &DescribeClusterRequest::default().with_endpoint_type(1));
    assert_eq!(response.error_code, 0);
    assert_eq!(response.controller_id.0, 7);
    assert_eq!(response.brokers.len(), 1);
    assert_eq!(response.brokers[0].broker_id.0, 7);
    assert_eq!(response.brokers[0].port as u16, broker.port);
    // The node is its own controller, reached on the same listener
    // (`--bootstrap-controller`); v2 may ask for fenced brokers, of which there are none.
    let controllers: DescribeClusterResponse = raw.call(
        ApiKey::DescribeCluster,
        2,
        &DescribeClusterRequest::default().with_endpoint_type(2).with_include_fenced_brokers(true),
    );
    assert_eq!((controllers.error_code, controllers.endpoint_type, controllers.controller_id.0), (0, 2, 7));
    assert_eq!(controllers.brokers.len(), 1);
    assert_eq!((controllers.brokers[0].broker_id.0, controllers.brokers[0].port as u16), (7, broker.port));
    assert!(!controllers.brokers[0].is_fenced);
    let unknown: DescribeClusterResponse =
        raw.call(ApiKey::DescribeCluster, 1, &DescribeClusterRequest::default().with_endpoint_type(3));
    assert_eq!(unknown.error_code, 115, "UNSUPPORTED_ENDPOINT_TYPE");
    let md: MetadataResponse = raw.call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None));
    assert_eq!(md.cluster_id.as_deref(), Some(response.cluster_id.as_str()));
    assert_eq!(md.controller_id.0, 7);
    // The cluster id survives a restart.
    let cluster_id = response.cluster_id.to_string();
    let dir = broker.stop();
    let broker = Broker::start_in(dir, 1, &["--node-id", "7"]);
    let mut raw = Raw::connect(&broker);
    let response: DescribeClusterResponse = raw.call(ApiKey::DescribeCluster, 0, &DescribeClusterRequest::default());
    assert_eq!(response.cluster_id.as_str(), cluster_id);
    broker.stop();
}

/// One config of a DescribeConfigs answer: value, source, type and synonyms (name, value, source).
#[derive(Debug, PartialEq)]
struct Described {
    value: Option<String>,
    source: i8,
    kind: i8,
    synonyms: Vec<(String, String, i8)>,
}

/// DescribeConfigs v4 with synonyms of one resource (2: topic, 4: broker).
fn describe(raw: &mut Raw, resource_type: i8, name: &str) -> std::collections::BTreeMap<String, Described> {
    let request = DescribeConfigsRequest::default().with_include_synonyms(true).with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configuration_keys(None),
    ]);
    let response: DescribeConfigsResponse = raw.call(ApiKey::DescribeConfigs, 4, &request);
    let result = &response.results[0];
    assert_eq!(result.error_code, 0, "{:?}", result.error_message);
    result
        .configs
        .iter()
        .map(|c| {
            let synonyms = c
                .synonyms
                .iter()
                .map(|s| (s.name.to_string(), s.value.as_deref().unwrap_or_default().to_string(), s.source))
                .collect();
            let described = Described {
                value: c.value.as_ref().map(|v| v.to_string()),
                source: c.config_source,
                kind: c.config_type,
                synonyms,
            };
            (c.name.to_string(), described)
        })
        .collect()
}

/// IncrementalAlterConfigs SET of topic configs: the error code and message.
fn set_topic_configs(raw: &mut Raw, topic: &str, configs: &[(&str, &str)]) -> (i16, Option<String>) {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_string(topic.to_string()))
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    AlterableConfig::default()
                        .with_name(StrBytes::from_string(k.to_string()))
                        .with_config_operation(0)
                        .with_value(Some(StrBytes::from_string(v.to_string())))
                })
                .collect(),
        )]);
    let response: IncrementalAlterConfigsResponse = raw.call(ApiKey::IncrementalAlterConfigs, 1, &request);
    let r = &response.responses[0];
    (r.error_code, r.error_message.as_ref().map(|m| m.to_string()))
}

const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const TYPE_LONG: i8 = 5;
const TYPE_DOUBLE: i8 = 6;
const TYPE_LIST: i8 = 7;

#[test]
fn compaction_configs_are_created_described_and_altered_as_in_kafka() {
    let dir = common::fresh_data_dir("admin-compaction");
    let properties = dir.with_extension("properties");
    std::fs::write(
        &properties,
        "log.cleaner.min.cleanable.ratio=0.25\nlog.cleaner.threads=2\ngroup.consumer.max.size=50\n\
         log.roll.ms=7200000\nlog.roll.hours=3\n",
    )
    .unwrap();
    let broker = Broker::start_in(dir, 2, &["--config", properties.to_str().unwrap()]);
    let mut raw = Raw::connect(&broker);

    let request = CreateTopicsRequest::default().with_timeout_ms(5000).with_topics(vec![
        creatable(
            "compacted",
            2,
            1,
            &[("cleanup.policy", "compact"), ("min.cleanable.dirty.ratio", "0.01"), ("delete.retention.ms", "1000")],
        ),
        creatable("too-dirty", 1, 1, &[("min.cleanable.dirty.ratio", "1.5")]),
        creatable("lagging", 1, 1, &[("min.compaction.lag.ms", "100"), ("max.compaction.lag.ms", "10")]),
    ]);
    let response: CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &request);
    assert_eq!(response.topics[0].error_code, 0, "{:?}", response.topics[0].error_message);
    assert_eq!(response.topics[1].error_code, 40, "INVALID_CONFIG");
    assert_eq!(
        response.topics[1].error_message.as_deref(),
        Some("Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be no more than 1")
    );
    assert_eq!(response.topics[2].error_code, 40, "min.compaction.lag.ms > max.compaction.lag.ms");
    assert_eq!(
        response.topics[2].error_message.as_deref(),
        Some("conflict topic config setting min.compaction.lag.ms (100) > max.compaction.lag.ms (10)")
    );

    let configs = describe(&mut raw, 2, "compacted");
    let described = |value: &str, source: i8, kind: i8, synonyms: &[(&str, &str, i8)]| Described {
        value: Some(value.to_string()),
        source,
        kind,
        synonyms: synonyms.iter().map(|(n, v, s)| (n.to_string(), v.to_string(), *s)).collect(),
    };
    assert_eq!(
        configs["cleanup.policy"],
        described(
            "compact",
            SOURCE_TOPIC,
            TYPE_LIST,
            &[("cleanup.policy", "compact", SOURCE_TOPIC), ("log.cleanup.policy", "delete", SOURCE_DEFAULT)]
        )
    );
    assert_eq!(
        configs["min.cleanable.dirty.ratio"],
        described(
            "0.01",
            SOURCE_TOPIC,
            TYPE_DOUBLE,
            &[
                ("min.cleanable.dirty.ratio", "0.01", SOURCE_TOPIC),
                ("log.cleaner.min.cleanable.ratio", "0.25", SOURCE_STATIC_BROKER),
                ("log.cleaner.min.cleanable.ratio", "0.5", SOURCE_DEFAULT),
            ]
        )
    );
    assert_eq!(
        configs["delete.retention.ms"],
        described(
            "1000",
            SOURCE_TOPIC,
            TYPE_LONG,
            &[
                ("delete.retention.ms", "1000", SOURCE_TOPIC),
                ("log.cleaner.delete.retention.ms", "86400000", SOURCE_DEFAULT)
            ]
        )
    );
    assert_eq!(
        configs["min.compaction.lag.ms"],
        described("0", SOURCE_DEFAULT, TYPE_LONG, &[("log.cleaner.min.compaction.lag.ms", "0", SOURCE_DEFAULT)])
    );
    assert_eq!(
        configs["max.compaction.lag.ms"],
        described(
            "9223372036854775807",
            SOURCE_DEFAULT,
            TYPE_LONG,
            &[("log.cleaner.max.compaction.lag.ms", "9223372036854775807", SOURCE_DEFAULT)]
        )
    );

    // IncrementalAlterConfigs SET; the checks between configs apply to the result.
    assert_eq!(set_topic_configs(&mut raw, "compacted", &[("max.compaction.lag.ms", "60000")]), (0, None));
    let configs = describe(&mut raw, 2, "compacted");
    assert_eq!(configs["max.compaction.lag.ms"].value.as_deref(), Some("60000"));
    assert_eq!(configs["max.compaction.lag.ms"].source, SOURCE_TOPIC);
    assert_eq!(configs["cleanup.policy"].value.as_deref(), Some("compact"), "other overrides stay");
    let (code, message) = set_topic_configs(&mut raw, "compacted", &[("min.compaction.lag.ms", "120000")]);
    assert_eq!(code, 40);
    assert_eq!(
        message.as_deref(),
        Some("conflict topic config setting min.compaction.lag.ms (120000) > max.compaction.lag.ms (60000)")
    );
    let (code, message) = set_topic_configs(&mut raw, "compacted", &[("min.cleanable.dirty.ratio", "1.5")]);
    assert_eq!(code, 40, "{message:?}");
    assert_eq!(describe(&mut raw, 2, "compacted")["min.cleanable.dirty.ratio"].value.as_deref(), Some("0.01"));
    assert_eq!(
        set_topic_configs(
            &mut raw,
            "compacted",
            &[("cleanup.policy", "delete, compact"), ("min.compaction.lag.ms", "10")]
        ),
        (0, None)
    );
    let configs = describe(&mut raw, 2, "compacted");
    assert_eq!(configs["cleanup.policy"].value.as_deref(), Some("delete,compact"));
    assert_eq!(configs["min.compaction.lag.ms"].value.as_deref(), Some("10"));

    // The broker's cleaner configs: from the file, or Kafka's defaults.
    let configs = describe(&mut raw, 4, "0");
    let value_source = |name: &str| {
        let c = configs.get(name).unwrap_or_else(|| panic!("no {name}"));
        (c.value.clone().unwrap_or_default(), c.source, c.kind)
    };
    assert_eq!(value_source("log.cleaner.threads"), ("2".into(), SOURCE_STATIC_BROKER, 3));
    assert_eq!(value_source("log.cleaner.enable"), ("true".into(), SOURCE_DEFAULT, 1));
    // KIP-848's group configs: from the file, or Kafka's defaults.
    assert_eq!(value_source("group.consumer.session.timeout.ms"), ("45000".into(), SOURCE_DEFAULT, 3));
    assert_eq!(value_source("group.consumer.heartbeat.interval.ms"), ("5000".into(), SOURCE_DEFAULT, 3));
    assert_eq!(value_source("group.consumer.assignors"), ("uniform,range".into(), SOURCE_DEFAULT, 7));
    assert_eq!(value_source("group.consumer.max.size"), ("50".into(), SOURCE_STATIC_BROKER, 3));
    assert_eq!(value_source("log.cleaner.backoff.ms"), ("15000".into(), SOURCE_DEFAULT, TYPE_LONG));
    assert_eq!(value_source("log.cleaner.dedupe.buffer.size"), ("134217728".into(), SOURCE_DEFAULT, TYPE_LONG));
    assert_eq!(value_source("log.cleaner.io.buffer.size"), ("524288".into(), SOURCE_DEFAULT, 3));
    assert_eq!(value_source("log.cleaner.io.buffer.load.factor"), ("0.9".into(), SOURCE_DEFAULT, TYPE_DOUBLE));
    assert_eq!(
        value_source("log.cleaner.io.max.bytes.per.second"),
        ("1.7976931348623157E308".into(), SOURCE_DEFAULT, TYPE_DOUBLE)
    );
    assert_eq!(value_source("log.cleaner.min.cleanable.ratio"), ("0.25".into(), SOURCE_STATIC_BROKER, TYPE_DOUBLE));
    assert_eq!(value_source("log.cleaner.delete.retention.ms"), ("86400000".into(), SOURCE_DEFAULT, TYPE_LONG));
    // Each spelling of a topic default, with Kafka's synonyms: from the
    // spelling described on, static before default; Kafka's default is the hours'.
    let spelling = |value: Option<&str>, source: i8, kind: i8, synonyms: &[(&str, &str, i8)]| Described {
        value: value.map(str::to_string),
        source,
        kind,
        synonyms: synonyms.iter().map(|(n, v, s)| (n.to_string(), v.to_string(), *s)).collect(),
    };
    let roll = [
        ("log.roll.ms", "7200000", SOURCE_STATIC_BROKER),
        ("log.roll.hours", "3", SOURCE_STATIC_BROKER),
        ("log.roll.hours", "168", SOURCE_DEFAULT),
    ];
    assert_eq!(configs["log.roll.ms"], spelling(Some("7200000"), SOURCE_STATIC_BROKER, TYPE_LONG, &roll));
    assert_eq!(configs["log.roll.hours"], spelling(Some("3"), SOURCE_STATIC_BROKER, 3, &roll[1..]));
    assert_eq!(configs["log.roll.jitter.ms"], spelling(None, SOURCE_DEFAULT, TYPE_LONG, &[]));
    let jitter = [("log.roll.jitter.hours", "0", SOURCE_DEFAULT)];
    assert_eq!(configs["log.roll.jitter.hours"], spelling(Some("0"), SOURCE_DEFAULT, 3, &jitter));
    let topic = describe(&mut raw, 2, "compacted");
    assert_eq!(topic["segment.ms"], spelling(Some("7200000"), SOURCE_STATIC_BROKER, TYPE_LONG, &roll));
    assert_eq!(topic["segment.jitter.ms"], spelling(Some("0"), SOURCE_DEFAULT, TYPE_LONG, &[]));

    // The overrides survive a restart.
    let dir = broker.stop();
    let broker = Broker::start_in(dir, 2, &["--config", properties.to_str().unwrap()]);
    let mut raw = Raw::connect(&broker);
    let configs = describe(&mut raw, 2, "compacted");
    assert_eq!(configs["cleanup.policy"].value.as_deref(), Some("delete,compact"));
    assert_eq!(configs["min.cleanable.dirty.ratio"].value.as_deref(), Some("0.01"));
    assert_eq!(configs["max.compaction.lag.ms"].value.as_deref(), Some("60000"));
    broker.stop();
}

/// Runs Kafka's `kafka-configs.sh` (`org.apache.kafka.tools.ConfigCommand`) against `bootstrap`; returns its output.
fn kafka_configs(bootstrap: &str, args: &[&str]) -> String {
    let classpath = common::clients::kafka_tools_classpath();
    let output = std::process::Command::new("java")
        .arg("-cp")
        .arg(classpath.trim())
        .arg("org.apache.kafka.tools.ConfigCommand")
        .args(["--bootstrap-server", bootstrap])
        .args(args)
        .output()
        .expect("run java");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "ConfigCommand {args:?} failed:\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_configs_sh_alters_and_describes_compaction_configs() {
    let broker = Broker::start("admin-config-command", 2, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "t", 1, &[("cleanup.policy", "compact")]).await;
    tokio::task::block_in_place(|| {
        let topic = ["--entity-type", "topics", "--entity-name", "t"];
        let add =
            [&topic[..], &["--alter", "--add-config", "delete.retention.ms=5000,min.compaction.lag.ms=10"]].concat();
        let out = kafka_configs(&bootstrap, &add);
        assert!(out.contains("Completed updating config for topic t."), "{out}");
        let out = kafka_configs(&bootstrap, &[&topic[..], &["--describe"]].concat());
        assert!(out.contains("delete.retention.ms=5000"), "{out}");
        assert!(out.contains("min.compaction.lag.ms=10"), "{out}");
        assert!(out.contains("cleanup.policy=compact"), "{out}");
        assert!(out.contains("DEFAULT_CONFIG:log.cleaner.delete.retention.ms=86400000"), "{out}");
        // Every config, with Kafka's defaults for those not set.
        let out = kafka_configs(&bootstrap, &[&topic[..], &["--describe", "--all"]].concat());
        assert!(out.contains("min.cleanable.dirty.ratio=0.5"), "{out}");
        assert!(out.contains("max.compaction.lag.ms=9223372036854775807"), "{out}");
        // A ratio above 1 is refused by the broker.
        let refused = std::process::Command::new("java")
            .arg("-cp")
            .arg(common::clients::kafka_tools_classpath().trim())
            .arg("org.apache.kafka.tools.ConfigCommand")
            .args(["--bootstrap-server", &bootstrap])
            .args(topic)
            .args(["--alter", "--add-config", "min.cleanable.dirty.ratio=1.5"])
            .output()
            .expect("run java");
        let said = format!("{}{}", String::from_utf8_lossy(&refused.stdout), String::from_utf8_lossy(&refused.stderr));
        assert!(said.contains("Value must be no more than 1"), "{said}");
    });
    broker.stop();
}

const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;

/// IncrementalAlterConfigs of the broker resource `name` ("" for the cluster
/// default) with (config, operation, value) operations: the error code and message.
fn alter_broker(
    raw: &mut Raw,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, Option<String>) {
    let configs = ops
        .iter()
        .map(|(k, op, v)| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(k.to_string()))
                .with_config_operation(*op)
                .with_value(v.map(|v| StrBytes::from_string(v.to_string())))
        })
        .collect();
    let request = IncrementalAlterConfigsRequest::default().with_validate_only(validate_only).with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configs(configs),
    ]);
    let response: IncrementalAlterConfigsResponse = raw.call(ApiKey::IncrementalAlterConfigs, 1, &request);
    let r = &response.responses[0];
    (r.error_code, r.error_message.as_ref().map(|m| m.to_string()))
}

/// Runs `kafka-configs.sh` expecting it to fail; returns what it printed.
fn kafka_configs_refused(bootstrap: &str, args: &[&str]) -> String {
    let output = std::process::Command::new("java")
        .arg("-cp")
        .arg(common::clients::kafka_tools_classpath().trim())
        .arg("org.apache.kafka.tools.ConfigCommand")
        .args(["--bootstrap-server", bootstrap])
        .args(args)
        .output()
        .expect("run java");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success(), "ConfigCommand {args:?} should have failed:\n{said}");
    said
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_configs_sh_changes_cleaner_configs_at_runtime() {
    let dir = common::fresh_data_dir("admin-dynamic-configs");
    let properties = dir.with_extension("properties");
    std::fs::write(&properties, "log.cleaner.backoff.ms=100\n").unwrap();
    let flags = ["--node-id", "3", "--config", properties.to_str().unwrap()];
    let broker = Broker::start_in(dir, 2, &flags);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "plain", 1, &[("cleanup.policy", "compact")]).await;
    create_topic(&bootstrap, "own", 1, &[("cleanup.policy", "compact"), ("delete.retention.ms", "1000")]).await;
    let synonyms = |list: &[(&str, &str, i8)]| -> Vec<(String, String, i8)> {
        list.iter().map(|(n, v, s)| (n.to_string(), v.to_string(), *s)).collect()
    };
    let default = ["--entity-type", "brokers", "--entity-default"];
    let this = ["--entity-type", "brokers", "--entity-name", "3"];
    tokio::task::block_in_place(|| {
        let add = "log.cleaner.io.max.bytes.per.second=1000000,log.cleaner.delete.retention.ms=5000";
        let out = kafka_configs(&bootstrap, &[&default[..], &["--alter", "--add-config", add]].concat());
        assert!(out.contains("Completed updating default config for brokers in the cluster."), "{out}");
        let out = kafka_configs(&bootstrap, &[&default[..], &["--describe"]].concat());
        assert!(out.contains("Default configs for brokers in the cluster are:"), "{out}");
        assert!(
            out.contains(
                "log.cleaner.io.max.bytes.per.second=1000000 sensitive=false \
                 synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:log.cleaner.io.max.bytes.per.second=1000000}"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "log.cleaner.delete.retention.ms=5000 sensitive=false \
                 synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:log.cleaner.delete.retention.ms=5000}"
            ),
            "{out}"
        );

        // A topic without an override of its own follows the dynamic default; one with keeps its own.
        let plain = ["--entity-type", "topics", "--entity-name", "plain", "--describe", "--all"];
        let out = kafka_configs(&bootstrap, &plain);
        assert!(
            out.contains(
                "delete.retention.ms=5000 sensitive=false \
                 synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:log.cleaner.delete.retention.ms=5000, \
                 DEFAULT_CONFIG:log.cleaner.delete.retention.ms=86400000}"
            ),
            "{out}"
        );
        let mut raw = Raw::connect(&broker);
        assert_eq!(
            describe(&mut raw, 2, "plain")["delete.retention.ms"],
            Described {
                value: Some("5000".into()),
                source: SOURCE_DYNAMIC_DEFAULT_BROKER,
                kind: TYPE_LONG,
                synonyms: synonyms(&[
                    ("log.cleaner.delete.retention.ms", "5000", SOURCE_DYNAMIC_DEFAULT_BROKER),
                    ("log.cleaner.delete.retention.ms", "86400000", SOURCE_DEFAULT),
                ]),
            }
        );
        let own = describe(&mut raw, 2, "own");
        assert_eq!(own["delete.retention.ms"].value.as_deref(), Some("1000"));
        assert_eq!(
            own["delete.retention.ms"].synonyms,
            synonyms(&[
                ("delete.retention.ms", "1000", SOURCE_TOPIC),
                ("log.cleaner.delete.retention.ms", "5000", SOURCE_DYNAMIC_DEFAULT_BROKER),
                ("log.cleaner.delete.retention.ms", "86400000", SOURCE_DEFAULT),
            ])
        );

        // This broker's own value wins over the cluster default.
        let set = ["--alter", "--add-config", "log.cleaner.io.max.bytes.per.second=2000000"];
        let out = kafka_configs(&bootstrap, &[&this[..], &set].concat());
        assert!(out.contains("Completed updating config for broker 3."), "{out}");
        let out = kafka_configs(&bootstrap, &[&this[..], &["--describe"]].concat());
        assert!(out.contains("Dynamic configs for broker 3 are:"), "{out}");
        assert!(
            out.contains(
                "log.cleaner.io.max.bytes.per.second=2000000.0 sensitive=false \
                 synonyms={DYNAMIC_BROKER_CONFIG:log.cleaner.io.max.bytes.per.second=2000000, \
                 DYNAMIC_DEFAULT_BROKER_CONFIG:log.cleaner.io.max.bytes.per.second=1000000, \
                 DEFAULT_CONFIG:log.cleaner.io.max.bytes.per.second=1.7976931348623157E308}"
            ),
            "{out}"
        );
        let configs = describe(&mut raw, 4, "3");
        assert_eq!(configs["log.cleaner.io.max.bytes.per.second"].source, SOURCE_DYNAMIC_BROKER);
        assert_eq!(configs["log.cleaner.delete.retention.ms"].value.as_deref(), Some("5000"));
        assert_eq!(configs["log.cleaner.delete.retention.ms"].source, SOURCE_DYNAMIC_DEFAULT_BROKER);
        assert_eq!(
            configs["log.cleaner.backoff.ms"].synonyms,
            synonyms(&[
                ("log.cleaner.backoff.ms", "100", SOURCE_STATIC_BROKER),
                ("log.cleaner.backoff.ms", "15000", SOURCE_DEFAULT)
            ])
        );
        // The shards' cleaners take the new settings.
        common::wait_until("the cleaners are reconfigured", Duration::from_secs(10), || {
            broker.log().contains("log cleaner reconfigured")
        });

        // Refused as Kafka refuses them.
        let set = ["--alter", "--add-config", "log.dirs=/elsewhere"];
        let said = kafka_configs_refused(&bootstrap, &[&default[..], &set].concat());
        assert!(said.contains("Cannot update these configs dynamically: Set(log.dirs)"), "{said}");
        let backoff = |v: &'static str| [("log.cleaner.backoff.ms", 0, Some(v))];
        assert_eq!(
            alter_broker(&mut raw, "4", &backoff("10"), false),
            (42, Some("Unexpected broker id, expected 3, but received 4".into()))
        );
        assert_eq!(
            alter_broker(&mut raw, "three", &backoff("10"), false),
            (42, Some("Node id must be an integer, but it is: three".into()))
        );
        assert_eq!(
            alter_broker(&mut raw, "", &backoff("-1"), false),
            (42, Some("Invalid value -1 for configuration log.cleaner.backoff.ms: Value must be at least 0".into()))
        );
        assert_eq!(
            alter_broker(&mut raw, "3", &[("log.cleaner.enable", 0, Some("false"))], false),
            (42, Some("Cannot update these configs dynamically: Set(log.cleaner.enable)".into()))
        );
        assert_eq!(
            alter_broker(&mut raw, "", &[("log.cleaner.threads", 0, Some("3"))], false),
            (
                42,
                Some(
                    "Invalid value org.apache.kafka.common.config.ConfigException: Log cleaner threads cannot be \
                     increased to more than double the current value 1 for configuration Invalid dynamic configuration"
                        .into()
                )
            )
        );
        assert_eq!(
            alter_broker(&mut raw, "", &[("log.cleaner.backoff.ms", 2, Some("10"))], false),
            (40, Some("Config value append is not allowed for config key: log.cleaner.backoff.ms".into()))
        );
        let request = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_static_str("4"))
            .with_configuration_keys(None)]);
        let response: DescribeConfigsResponse = raw.call(ApiKey::DescribeConfigs, 4, &request);
        assert_eq!(response.results[0].error_code, 42);
        assert_eq!(
            response.results[0].error_message.as_deref(),
            Some("Unexpected broker id, expected 3 or empty string, but received 4")
        );
        // validate_only checks and changes nothing.
        let retention = [("log.cleaner.delete.retention.ms", 0, Some("7"))];
        assert_eq!(alter_broker(&mut raw, "", &retention, true), (0, None));
        assert_eq!(describe(&mut raw, 2, "plain")["delete.retention.ms"].value.as_deref(), Some("5000"));
        let threads = [("log.cleaner.threads", 0, Some("3"))];
        assert_eq!(alter_broker(&mut raw, "", &threads, true).0, 42, "validate_only refuses as the change would");

        // Deleting this broker's value: the cluster default applies again.
        let delete = ["--alter", "--delete-config", "log.cleaner.io.max.bytes.per.second"];
        let out = kafka_configs(&bootstrap, &[&this[..], &delete].concat());
        assert!(out.contains("Completed updating config for broker 3."), "{out}");
        let configs = describe(&mut raw, 4, "3");
        assert_eq!(configs["log.cleaner.io.max.bytes.per.second"].value.as_deref(), Some("1000000.0"));
        assert_eq!(configs["log.cleaner.io.max.bytes.per.second"].source, SOURCE_DYNAMIC_DEFAULT_BROKER);
    });

    // Stored with the catalog: they survive kill -9 and a restart.
    let dir = broker.kill();
    let broker = Broker::start_in(dir, 2, &flags);
    let bootstrap = broker.bootstrap();
    tokio::task::block_in_place(|| {
        let mut raw = Raw::connect(&broker);
        let defaults = describe(&mut raw, 4, "");
        let stored: Vec<(&str, Option<&str>, i8)> =
            defaults.iter().map(|(k, c)| (k.as_str(), c.value.as_deref(), c.source)).collect();
        assert_eq!(
            stored,
            [
                ("log.cleaner.delete.retention.ms", Some("5000"), SOURCE_DYNAMIC_DEFAULT_BROKER),
                ("log.cleaner.io.max.bytes.per.second", Some("1000000"), SOURCE_DYNAMIC_DEFAULT_BROKER),
            ]
        );
        let plain = describe(&mut raw, 2, "plain");
        assert_eq!(plain["delete.retention.ms"].value.as_deref(), Some("5000"));
        assert_eq!(plain["delete.retention.ms"].source, SOURCE_DYNAMIC_DEFAULT_BROKER);

        // Deleting the default: the topic is back to Kafka's default.
        let delete = ["--alter", "--delete-config", "log.cleaner.delete.retention.ms"];
        let out = kafka_configs(&bootstrap, &[&default[..], &delete].concat());
        assert!(out.contains("Completed updating default config for brokers in the cluster."), "{out}");
        let plain = describe(&mut raw, 2, "plain");
        assert_eq!(plain["delete.retention.ms"].value.as_deref(), Some("86400000"));
        assert_eq!(plain["delete.retention.ms"].source, SOURCE_DEFAULT);

        // The legacy AlterConfigs replaces the whole set of the resource.
        use kafka_protocol::messages::alter_configs_request::{
            AlterConfigsResource as LegacyResource, AlterableConfig as LegacyConfig,
        };
        use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
        let request = AlterConfigsRequest::default().with_resources(vec![LegacyResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_static_str(""))
            .with_configs(vec![LegacyConfig::default()
                .with_name(StrBytes::from_static_str("log.retention.ms"))
                .with_value(Some(StrBytes::from_static_str("3600000")))])]);
        let response: AlterConfigsResponse = raw.call(ApiKey::AlterConfigs, 2, &request);
        assert_eq!(response.responses[0].error_code, 0, "{:?}", response.responses[0].error_message);
        let defaults = describe(&mut raw, 4, "");
        assert_eq!(defaults.keys().collect::<Vec<_>>(), ["log.retention.ms"]);
        assert_eq!(describe(&mut raw, 2, "plain")["retention.ms"].value.as_deref(), Some("3600000"));
    });
    broker.stop();
}
