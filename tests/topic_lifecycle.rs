//! Topic configs and lifecycle with real clients: DescribeConfigs sources,
//! AlterConfigs and IncrementalAlterConfigs, CreatePartitions,
//! DeleteRecords, DescribeLogDirs, and retention by size and by time.

use crate::common;

use std::time::Duration;

use common::kafka::{self, assigned, consumer_config, poll_n, produce, value, watermarks, Record};
use common::{create_topic, wait_until, Broker, Raw};
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::{
    ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

async fn config_of(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    name: &str,
) -> (Option<String>, ConfigSource) {
    let results = admin.describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new()).await.unwrap();
    let resource = results.into_iter().next().unwrap().unwrap();
    let entry = resource.entries.into_iter().find(|e| e.name == name).unwrap_or_else(|| panic!("no {name}"));
    (entry.value, entry.source)
}

/// `count` records of `bytes` bytes each for one partition, their offsets in
/// their first 8 characters.
fn sized_records(partition: i32, count: usize, bytes: usize) -> impl Iterator<Item = Record> {
    (0..count).map(move |i| Record::new(format!("{i:08}{}", "x".repeat(bytes))).key("k").partition(partition))
}

/// Producer settings: records batched for up to 2 ms.
const BATCHED: &[(&str, &str)] = &[("linger.ms", "2")];

/// The offset of the first record read from `offset` on (the payload must name it).
fn first_record_at(bootstrap: &str, topic: &str, offset: i64) -> i64 {
    let consumer = assigned(&consumer_config(bootstrap, "unused"), topic, [0], Offset::Offset(offset));
    let m = &poll_n(&consumer, 1, Duration::from_secs(20))[0];
    assert_eq!(value(m)[..8].parse::<i64>().unwrap(), m.offset(), "payload matches its offset");
    m.offset()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_are_described_altered_and_sourced_like_kafka() {
    let broker = Broker::start("configs", 2, &["--log-retention-ms", "3600000"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "tuned", 2, &[("segment.bytes", "2097152")]).await;
    let admin = kafka::admin(&bootstrap);

    assert_eq!(config_of(&admin, "tuned", "segment.bytes").await, (Some("2097152".into()), ConfigSource::DynamicTopic));
    assert_eq!(config_of(&admin, "tuned", "retention.ms").await, (Some("3600000".into()), ConfigSource::StaticBroker));
    assert_eq!(config_of(&admin, "tuned", "max.message.bytes").await, (Some("1048588".into()), ConfigSource::Default));

    // AlterConfigs replaces the overrides: segment.bytes goes back to its default.
    let alter = AlterConfig::new(ResourceSpecifier::Topic("tuned")).set("retention.ms", "60000");
    let results = admin.alter_configs(&[alter], &AdminOptions::new()).await.unwrap();
    assert!(results[0].is_ok());
    assert_eq!(config_of(&admin, "tuned", "retention.ms").await, (Some("60000".into()), ConfigSource::DynamicTopic));
    assert_eq!(config_of(&admin, "tuned", "segment.bytes").await.1, ConfigSource::Default);
    // The rdkafka crate drops per-resource AlterConfigs errors, so check them on the wire.
    tokio::task::block_in_place(|| {
        use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
        use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
        let mut raw = Raw::connect(&broker);
        let resource = |topic: &'static str, value: &'static str| {
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str(topic))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("retention.ms"))
                    .with_value(Some(StrBytes::from_static_str(value)))])
        };
        let request =
            AlterConfigsRequest::default().with_resources(vec![resource("tuned", "soon"), resource("missing", "1")]);
        let response: AlterConfigsResponse = raw.call(ApiKey::AlterConfigs, 2, &request);
        assert_eq!(response.responses[0].error_code, 40, "INVALID_CONFIG");
        assert_eq!(response.responses[1].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    });
    assert_eq!(
        config_of(&admin, "tuned", "retention.ms").await.0.as_deref(),
        Some("60000"),
        "a refused change changes nothing"
    );

    // IncrementalAlterConfigs: SET, DELETE, APPEND.
    tokio::task::block_in_place(|| {
        let mut raw = Raw::connect(&broker);
        let op = |name: &str, op: i8, value: Option<&str>| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(name.into()))
                .with_config_operation(op)
                .with_value(value.map(|v| StrBytes::from_string(v.into())))
        };
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("tuned"))
                .with_configs(vec![
                    op("segment.bytes", 0, Some("4194304")),
                    op("retention.ms", 1, None),
                    op("cleanup.policy", 2, Some("compact")),
                ]),
            AlterConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(StrBytes::from_static_str("0"))
                .with_configs(vec![op("log.dirs", 0, Some("/elsewhere"))]),
        ]);
        let response: IncrementalAlterConfigsResponse = raw.call(ApiKey::IncrementalAlterConfigs, 1, &request);
        assert_eq!(response.responses[0].error_code, 0);
        assert_eq!(response.responses[1].error_code, 42, "a broker config Kafka does not change at runtime");
        assert_eq!(
            response.responses[1].error_message.as_deref(),
            Some("Cannot update these configs dynamically: Set(log.dirs)")
        );
    });
    assert_eq!(config_of(&admin, "tuned", "segment.bytes").await.0.as_deref(), Some("4194304"));
    assert_eq!(config_of(&admin, "tuned", "retention.ms").await, (Some("3600000".into()), ConfigSource::StaticBroker));
    assert_eq!(config_of(&admin, "tuned", "cleanup.policy").await.0.as_deref(), Some("delete,compact"));

    // Configs survive a restart.
    let dir = broker.stop();
    let broker = Broker::start_in(dir, 2, &[]);
    let admin = kafka::admin(&broker.bootstrap());
    assert_eq!(config_of(&admin, "tuned", "segment.bytes").await.0.as_deref(), Some("4194304"));
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_grow_and_log_dirs_report_sizes() {
    let broker = Broker::start("partitions", 2, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "growing", 2, &[]).await;
    let admin = kafka::admin(&bootstrap);
    let results = admin.create_partitions(&[NewPartitions::new("growing", 5)], &AdminOptions::new()).await.unwrap();
    assert!(results[0].is_ok());
    produce(&kafka::producer(&bootstrap, BATCHED), "growing", sized_records(4, 50, 100)).await;
    let b = bootstrap.clone();
    let (low, high) = tokio::task::spawn_blocking(move || watermarks(&b, "growing", 4)).await.unwrap();
    assert_eq!((low, high), (0, 50));
    let shrink = admin.create_partitions(&[NewPartitions::new("growing", 3)], &AdminOptions::new()).await.unwrap();
    assert!(shrink[0].is_err());

    tokio::task::block_in_place(|| {
        let mut raw = Raw::connect(&broker);
        let response: DescribeLogDirsResponse =
            raw.call(ApiKey::DescribeLogDirs, 4, &DescribeLogDirsRequest::default().with_topics(None));
        let dir = &response.results[0];
        assert!(dir.total_bytes > 0 && dir.usable_bytes > 0);
        let topic = dir.topics.iter().find(|t| t.name.0.as_str() == "growing").unwrap();
        assert_eq!(topic.partitions.len(), 5);
        let p4 = topic.partitions.iter().find(|p| p.partition_index == 4).unwrap();
        assert!(p4.partition_size > 50 * 100, "size {}", p4.partition_size);
    });
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_moves_the_log_start_durably() {
    let broker = Broker::start("delete-records", 2, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "trimmed", 1, &[("segment.bytes", "1048576")]).await;
    produce(&kafka::producer(&bootstrap, BATCHED), "trimmed", sized_records(0, 10_000, 300)).await;
    let admin = kafka::admin(&bootstrap);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("trimmed", 0, Offset::Offset(6_000)).unwrap();
    let result = admin.delete_records(&tpl, &AdminOptions::new()).await.unwrap();
    assert_eq!(result.elements()[0].offset(), Offset::Offset(6_000));
    let segments_before = broker.log_segments("trimmed-0");
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        assert_eq!(watermarks(&b, "trimmed", 0), (6_000, 10_000));
        assert_eq!(first_record_at(&b, "trimmed", 6_000), 6_000);
    })
    .await
    .unwrap();
    // Past the high watermark: OFFSET_OUT_OF_RANGE.
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("trimmed", 0, Offset::Offset(20_000)).unwrap();
    let result = admin.delete_records(&tpl, &AdminOptions::new()).await.unwrap();
    assert!(result.elements()[0].error().is_err());

    // Killed and restarted: the log start offset stays.
    let dir = broker.kill();
    let broker = Broker::start_in(dir, 2, &[]);
    let b = broker.bootstrap();
    tokio::task::spawn_blocking(move || assert_eq!(watermarks(&b, "trimmed", 0), (6_000, 10_000))).await.unwrap();
    assert!(broker.log_segments("trimmed-0") <= segments_before);

    // A compacted topic keeps its records: POLICY_VIOLATION, as Kafka answers.
    let b = broker.bootstrap();
    create_topic(&b, "kept", 1, &[("cleanup.policy", "compact")]).await;
    produce(&kafka::producer(&b, BATCHED), "kept", (0..10).map(|i| Record::new("v").key(format!("k{i}")))).await;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("kept", 0, Offset::Offset(5)).unwrap();
    let result = kafka::admin(&b).delete_records(&tpl, &AdminOptions::new()).await.unwrap();
    let policy_violation = rdkafka::types::RDKafkaErrorCode::PolicyViolation;
    assert_eq!(result.elements()[0].error(), Err(rdkafka::error::KafkaError::OffsetFetch(policy_violation)));
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_segments_from_the_start_only() {
    let broker = Broker::start("retention", 2, &["--log-retention-check-interval-ms", "200"]);
    let bootstrap = broker.bootstrap();
    // By size: keep about 2 MiB of 1 MiB segments.
    create_topic(&bootstrap, "by-size", 1, &[("segment.bytes", "1048576"), ("retention.bytes", "2097152")]).await;
    produce(&kafka::producer(&bootstrap, BATCHED), "by-size", sized_records(0, 20_000, 300)).await;
    // By time: records stamped in 2001 are long past a one-hour retention.
    create_topic(&bootstrap, "by-time", 1, &[("segment.bytes", "1048576"), ("retention.ms", "3600000")]).await;
    let stamped = sized_records(0, 10_000, 300).map(|r| r.timestamp(1_000_000_000_000));
    produce(&kafka::producer(&bootstrap, BATCHED), "by-time", stamped).await;

    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        wait_until("retention to move the log start of by-size and of by-time", Duration::from_secs(20), || {
            watermarks(&b, "by-size", 0).0 > 0 && watermarks(&b, "by-time", 0).0 > 0
        });
        let (low, high) = watermarks(&b, "by-size", 0);
        let (time_low, time_high) = watermarks(&b, "by-time", 0);
        assert_eq!(high, 20_000);
        assert_eq!(time_high, 10_000);
        // Reads start at the new log start, and everything after it is intact.
        assert_eq!(first_record_at(&b, "by-size", low), low);
        assert_eq!(first_record_at(&b, "by-size", 19_999), 19_999);
        assert_eq!(first_record_at(&b, "by-time", time_low), time_low);
    })
    .await
    .unwrap();
    // A consumer positioned before the new start resets to it (auto.offset.reset=earliest).
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let (low, _) = watermarks(&b, "by-size", 0);
        let c = assigned(
            consumer_config(&b, "late-reader").set("auto.offset.reset", "earliest"),
            "by-size",
            [0],
            Offset::Offset(0),
        );
        let m = &poll_n(&c, 1, Duration::from_secs(20))[0];
        assert!(m.offset() >= low, "read {} below the log start {low}", m.offset());
    })
    .await
    .unwrap();
    // Size retention keeps the active segment and about two more; time retention only the active one.
    assert!(broker.log_segments("by-size-0") <= 4, "{} segments", broker.log_segments("by-size-0"));
    assert_eq!(broker.log_segments("by-time-0"), 1);
    broker.stop();
}

/// Kafka's internal topic names hold the broker's own group and transaction
/// state: an admin client may not create them, and a producer may not
/// auto-create or write them, so committed offsets cannot be overwritten or
/// deleted through a topic of the same name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_topic_names_are_refused() {
    use rdkafka::admin::{NewTopic, TopicReplication};
    use rdkafka::types::RDKafkaErrorCode;
    let broker = Broker::start("internal-names", 2, &[]);
    let admin = kafka::admin(&broker.bootstrap());
    for name in ["__consumer_offsets", "__transaction_state"] {
        let results = admin
            .create_topics(&[NewTopic::new(name, 1, TopicReplication::Fixed(1))], &AdminOptions::new())
            .await
            .expect("create topics");
        assert_eq!(results[0].as_ref().unwrap_err().1, RDKafkaErrorCode::InvalidTopic, "{name}");
        let producer = kafka::producer(&broker.bootstrap(), &[("message.timeout.ms", "5000")]);
        let sent = producer.send(FutureRecord::to(name).payload("x").key("k"), Duration::from_secs(5)).await;
        assert!(sent.is_err(), "a record was written to {name}");
    }
    assert!(broker.data_dir.join("__consumer_offsets-0").is_dir(), "the broker's own offsets partition is intact");
    broker.stop();
}
