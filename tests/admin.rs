//! Topic administration as Kafka clients see it: CreateTopics errors and
//! validate_only, DeleteTopics by name and id, auto-creation, DescribeCluster.

mod common;

use std::time::Duration;

use common::kafka::{self, produce, Record};
use common::{create_topic, Broker, Raw};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeClusterRequest, DescribeClusterResponse, MetadataRequest, MetadataResponse, TopicName,
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
