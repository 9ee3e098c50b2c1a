//! Kafka 4.4.0's operator tools against Sluice, run as `kafka-topics.sh`,
//! `kafka-metadata-quorum.sh` and `kafka-features.sh` run them (their main
//! classes on Kafka's classpath): topics created with replica assignments and
//! described a page at a time, the metadata quorum of a single node, feature
//! levels read and changed. Below the tools, the same APIs over raw frames:
//! DescribeTopicPartitions' cursors and errors, DescribeQuorum at each
//! version, UpdateFeatures, the features in ApiVersions, and CreateTopics and
//! CreatePartitions with assignments refused with Kafka's errors. Every topic
//! config of Kafka 4.1 set by `kafka-topics.sh --create --config` and shown by
//! `kafka-configs.sh --describe`; a Kafka 4.1 `server.properties` carried over.
//! `kafka-consumer-groups.sh` resetting, listing, describing and deleting a
//! group, `kafka-get-offsets.sh`, `kafka-delete-records.sh`, and
//! `kafka-topics.sh --delete`. `kafka-console-producer.sh` with every codec and
//! `kafka-console-consumer.sh` reading back, read_committed, across a kill -9.

use crate::common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{fresh_data_dir, Broker, Raw};
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_partitions_request::{CreatePartitionsAssignment, CreatePartitionsTopic};
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic;
use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, CreateAclsRequest, CreateAclsResponse,
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DescribeQuorumRequest, DescribeQuorumResponse, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
    TopicName, UpdateFeaturesRequest, UpdateFeaturesResponse,
};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, GroupId};
use kafka_protocol::protocol::StrBytes;

/// The node id the brokers here run with, so that "this node" is never a default 0.
const NODE: i32 = 3;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const INVALID_PARTITIONS: i16 = 37;
const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
const INVALID_REQUEST: i16 = 42;
const INVALID_UPDATE_VERSION: i16 = 95;

fn start(name: &str) -> Broker {
    Broker::start(name, 2, &["--node-id", &NODE.to_string()])
}

/// Runs one of Kafka's tools (its main class, as the shell script does)
/// against `broker`: whether it succeeded, its standard output and error.
fn tool(broker: &Broker, class: &str, args: &[&str]) -> (bool, String, String) {
    tool_via(broker, "--bootstrap-server", class, args)
}

/// JVM options for short runs: start quickly rather than tune for long ones.
const QUICK_JVM: &[&str] = &["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss1m"];

/// [`tool`], reaching the broker through `bootstrap_flag`
/// (`--bootstrap-server`, or `--bootstrap-controller` as for a KRaft controller).
fn tool_via(broker: &Broker, bootstrap_flag: &str, class: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new("java")
        .args(QUICK_JVM)
        .arg("-cp")
        .arg(common::clients::kafka_tools_classpath().trim())
        .arg(class)
        .args([bootstrap_flag, &broker.bootstrap()])
        .args(args)
        .output()
        .expect("run java");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).to_string();
    (output.status.success(), text(&output.stdout), text(&output.stderr))
}

/// [`tool`], which must succeed; its standard output.
fn tool_ok(broker: &Broker, class: &str, args: &[&str]) -> String {
    let (ok, stdout, stderr) = tool(broker, class, args);
    assert!(ok, "{class} {args:?} failed:\n{stdout}{stderr}\nbroker log:\n{}", broker.log());
    stdout
}

/// [`tool`], which must fail; all it printed.
fn tool_fails(broker: &Broker, class: &str, args: &[&str]) -> String {
    let (ok, stdout, stderr) = tool(broker, class, args);
    assert!(!ok, "{class} {args:?} succeeded:\n{stdout}{stderr}");
    stdout + &stderr
}

const TOPICS: &str = "org.apache.kafka.tools.TopicCommand";
const CONFIGS: &str = "org.apache.kafka.tools.ConfigCommand";
const QUORUM: &str = "org.apache.kafka.tools.MetadataQuorumCommand";
const FEATURES: &str = "org.apache.kafka.tools.FeatureCommand";
const CONSUMER_GROUPS: &str = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";

fn name(text: &str) -> TopicName {
    TopicName(StrBytes::from_string(text.to_string()))
}

/// CreateTopics (v7) of `topics` (name, partitions), which must all succeed.
fn create_topics(raw: &mut Raw, topics: &[(&str, i32)]) {
    let creatable = topics
        .iter()
        .map(|(topic, partitions)| {
            CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(*partitions)
                .with_replication_factor(-1)
        })
        .collect();
    let request = CreateTopicsRequest::default().with_timeout_ms(30_000).with_topics(creatable);
    let response: CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &request);
    for t in &response.topics {
        assert_eq!(t.error_code, 0, "{t:?}");
    }
}

fn describe_partitions(
    raw: &mut Raw,
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> DescribeTopicPartitionsResponse {
    let request = DescribeTopicPartitionsRequest::default()
        .with_topics(topics.iter().map(|t| TopicRequest::default().with_name(name(t))).collect())
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(t, p)| Cursor::default().with_topic_name(name(t)).with_partition_index(p)));
    raw.call(ApiKey::DescribeTopicPartitions, 0, &request)
}

/// A page as (topic, error code, partition indexes), and its next cursor.
type Listing = (Vec<(String, i16, Vec<i32>)>, Option<(String, i32)>);

fn listing(page: &DescribeTopicPartitionsResponse) -> Listing {
    let topics = page
        .topics
        .iter()
        .map(|t| {
            let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
            (name, t.error_code, t.partitions.iter().map(|p| p.partition_index).collect())
        })
        .collect();
    let cursor = page.next_cursor.as_ref().map(|c| (c.topic_name.0.to_string(), c.partition_index));
    (topics, cursor)
}

fn entry(topic: &str, partitions: &[i32]) -> (String, i16, Vec<i32>) {
    (topic.to_string(), 0, partitions.to_vec())
}

fn error(topic: &str, code: i16) -> (String, i16, Vec<i32>) {
    (topic.to_string(), code, Vec::new())
}

#[test]
fn kafka_topics_creates_with_replica_assignments_and_describes() {
    let broker = start("ops-topics");
    let created = tool_ok(&broker, TOPICS, &["--create", "--topic", "assigned", "--replica-assignment", "3,3,3"]);
    assert!(created.contains("Created topic assigned."), "{created}");
    // A replica on a broker that does not exist, as Kafka's controller refuses it.
    let refused = tool_fails(&broker, TOPICS, &["--create", "--topic", "elsewhere", "--replica-assignment", "3,4"]);
    assert!(
        refused.contains("The manual partition assignment includes broker 4, but no such broker is registered."),
        "{refused}"
    );

    let mut raw = Raw::connect(&broker);
    let id = describe_partitions(&mut raw, &["assigned"], 100, None).topics[0].topic_id;
    let described = tool_ok(&broker, TOPICS, &["--describe", "--topic", "assigned"]);
    let lines: Vec<&str> = described.lines().collect();
    assert_eq!(lines.len(), 4, "{described}");
    assert!(
        lines[0].starts_with(&format!(
            "Topic: assigned\tTopicId: {}\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: ",
            java_uuid(&id)
        )),
        "{described}"
    );
    for (p, line) in lines[1..].iter().enumerate() {
        assert_eq!(
            *line,
            format!("\tTopic: assigned\tPartition: {p}\tLeader: 3\tReplicas: 3\tIsr: 3\tElr: \tLastKnownElr: "),
            "{described}"
        );
    }

    // New partitions with their assignment (CreatePartitions), then one naming another broker.
    let args = ["--alter", "--topic", "assigned", "--partitions", "5", "--replica-assignment", "3,3,3,3,3"];
    tool_ok(&broker, TOPICS, &args);
    let args = ["--alter", "--topic", "assigned", "--partitions", "6", "--replica-assignment", "3,3,3,3,3,4"];
    let refused = tool_fails(&broker, TOPICS, &args);
    assert!(refused.contains("includes broker 4, but no such broker is registered."), "{refused}");
    let described = tool_ok(&broker, TOPICS, &["--describe", "--topic", "assigned"]);
    assert!(described.contains("PartitionCount: 5\t"), "{described}");
    assert!(described.contains("\tPartition: 4\tLeader: 3\tReplicas: 3\tIsr: 3\t"), "{described}");
    assert!(!described.contains("Partition: 5"), "{described}");
    broker.stop();
}

/// A topic id as Java prints it: URL-safe base64 without padding.
fn java_uuid(id: &uuid::Uuid) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// DescribeTopicPartitions requests the broker has served, from its metrics.
fn describe_partitions_requests(broker: &Broker) -> f64 {
    let scrape = common::http::get(&broker.admin_url(), "/metrics").body;
    let samples = common::http::parse_metrics(&scrape);
    common::http::sum(&samples, "sluice_requests_total", &[("request", "DescribeTopicPartitions")])
}

#[test]
fn kafka_topics_describes_thirty_topics_a_page_at_a_time() {
    let broker = start("ops-paging");
    let mut raw = Raw::connect(&broker);
    let names: Vec<String> = (0..30).map(|i| format!("paged-{i:02}")).collect();
    let topics: Vec<(&str, i32)> = names.iter().map(|n| (n.as_str(), 3)).collect();
    create_topics(&mut raw, &topics);

    let before = describe_partitions_requests(&broker);
    // At most 7 partitions an answer: the tool follows the cursors through 90 partitions.
    let described = tool_ok(&broker, TOPICS, &["--describe", "--partition-size-limit-per-response", "7"]);
    let served = describe_partitions_requests(&broker) - before;
    assert!(served >= 13.0, "90 partitions 7 at a time need 13 answers, the broker served {served}");

    let mut headers = BTreeMap::new();
    let mut partitions = BTreeMap::new();
    for line in described.lines() {
        let fields: Vec<&str> = line.trim_start_matches('\t').split('\t').collect();
        let topic = fields[0].trim_start_matches("Topic: ").to_string();
        if line.starts_with('\t') {
            assert_eq!(&fields[2..5], ["Leader: 3", "Replicas: 3", "Isr: 3"], "{line}");
            *partitions.entry((topic, fields[1].to_string())).or_insert(0) += 1;
        } else {
            assert_eq!(&fields[2..4], ["PartitionCount: 3", "ReplicationFactor: 1"], "{line}");
            *headers.entry(topic).or_insert(0) += 1;
        }
    }
    assert_eq!(headers.keys().cloned().collect::<Vec<_>>(), names, "{described}");
    assert!(headers.values().all(|n| *n == 1), "{described}");
    assert_eq!(partitions.len(), 90, "{described}");
    assert!(partitions.values().all(|n| *n == 1), "every partition once:\n{described}");
    broker.stop();
}

#[test]
fn describe_topic_partitions_pages_with_cursors_and_answers_errors() {
    let broker = start("ops-cursors");
    let mut raw = Raw::connect(&broker);
    create_topics(&mut raw, &[("a", 5), ("b", 1), ("c", 3)]);

    // Every topic, four partitions at a time.
    let first = describe_partitions(&mut raw, &[], 4, None);
    assert_eq!(listing(&first), (vec![entry("a", &[0, 1, 2, 3])], Some(("a".into(), 4))));
    let second = describe_partitions(&mut raw, &[], 4, Some(("a", 4)));
    assert_eq!(
        listing(&second),
        (vec![entry("a", &[4]), entry("b", &[0]), entry("c", &[0, 1])], Some(("c".into(), 2)))
    );
    let last = describe_partitions(&mut raw, &[], 4, Some(("c", 2)));
    assert_eq!(listing(&last), (vec![entry("c", &[2])], None));
    // A page that ends with a whole topic points at the start of the next one.
    let exact = describe_partitions(&mut raw, &[], 6, None);
    assert_eq!(listing(&exact), (vec![entry("a", &[0, 1, 2, 3, 4]), entry("b", &[0])], Some(("c".into(), 0))));
    // A limit of 0 is taken as 1; one past 2000 as 2000.
    let one = describe_partitions(&mut raw, &["b", "c"], 0, None);
    assert_eq!(listing(&one), (vec![entry("b", &[0])], Some(("c".into(), 0))));

    // What a partition says: this node leads it and is its only replica.
    let partition = &first.topics[0].partitions[1];
    assert_eq!(partition.leader_id, BrokerId(NODE));
    assert_eq!(partition.leader_epoch, 0);
    assert_eq!(partition.replica_nodes, vec![BrokerId(NODE)]);
    assert_eq!(partition.isr_nodes, vec![BrokerId(NODE)]);
    assert_eq!(partition.eligible_leader_replicas, Some(Vec::new()));
    assert_eq!(partition.last_known_elr, Some(Vec::new()));
    assert!(partition.offline_replicas.is_empty());
    let topic: &DescribeTopicPartitionsResponseTopic = &first.topics[0];
    assert!(!topic.topic_id.is_nil() && !topic.is_internal);
    assert_ne!(topic.topic_authorized_operations, i32::MIN, "operations are always reported");

    // Named topics, sorted, with errors in their places.
    let named =
        describe_partitions(&mut raw, &["c", "zz-missing", "a", "bad name!", "__consumer_offsets", "c"], 100, None);
    assert_eq!(
        listing(&named).0,
        vec![
            error("__consumer_offsets", UNKNOWN_TOPIC_OR_PARTITION),
            entry("a", &[0, 1, 2, 3, 4]),
            error("bad name!", INVALID_TOPIC_EXCEPTION),
            entry("c", &[0, 1, 2]),
            error("zz-missing", UNKNOWN_TOPIC_OR_PARTITION),
        ]
    );
    assert!(named.topics[0].is_internal, "Kafka marks an internal topic's name as internal");
    assert!(named.topics[4].topic_id.is_nil());

    // A cursor outside the topics asked for, or at a negative partition, refuses the request.
    let outside = describe_partitions(&mut raw, &["a", "c"], 100, Some(("b", 0)));
    assert_eq!(listing(&outside), (vec![error("a", INVALID_REQUEST), error("c", INVALID_REQUEST)], None));
    let negative = describe_partitions(&mut raw, &["a"], 100, Some(("a", -1)));
    assert_eq!(listing(&negative).0, vec![error("a", INVALID_REQUEST)]);
    // A cursor past a topic's partitions lists none of them.
    let past = describe_partitions(&mut raw, &["a", "b"], 100, Some(("a", 9)));
    assert_eq!(listing(&past), (vec![entry("a", &[]), entry("b", &[0])], None));
    broker.stop();
}

/// A broker with ACLs on a SASL_PLAINTEXT listener: `admin` is a super user, `alice` may do what ACLs allow.
fn start_with_acls(name: &str) -> Broker {
    let dir = fresh_data_dir(name);
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
    let flags = ["--config", config.to_str().unwrap(), "--node-id", "3"];
    Broker::start_listening(dir, 2, "SASL_PLAINTEXT://127.0.0.1:0", &flags)
}

fn login(broker: &Broker, user: &str) -> Raw {
    let mut raw = Raw::connect(broker);
    let (code, message) = raw.sasl_plain(user, &format!("{user}-secret"));
    assert_eq!(code, 0, "{user} login: {message:?}");
    raw
}

#[test]
fn operator_apis_answer_only_whom_acls_allow() {
    let broker = start_with_acls("ops-acls");
    let mut admin = login(&broker, "admin");
    create_topics(&mut admin, &[("hidden", 1), ("seen", 2)]);
    // alice may DESCRIBE `seen` (TOPIC 2, LITERAL 3, DESCRIBE 8, ALLOW 3).
    let allow = AclCreation::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_static_str("seen"))
        .with_resource_pattern_type(3)
        .with_principal(StrBytes::from_static_str("User:alice"))
        .with_host(StrBytes::from_static_str("*"))
        .with_operation(8)
        .with_permission_type(3);
    let created: CreateAclsResponse =
        admin.call(ApiKey::CreateAcls, 3, &CreateAclsRequest::default().with_creations(vec![allow]));
    assert_eq!(created.results[0].error_code, 0, "{created:?}");

    let mut alice = login(&broker, "alice");
    // Named: the denied ones after the others, without an id, whether they exist or not.
    let named = describe_partitions(&mut alice, &["seen", "hidden", "absent"], 100, None);
    assert_eq!(
        listing(&named).0,
        vec![
            entry("seen", &[0, 1]),
            error("absent", TOPIC_AUTHORIZATION_FAILED),
            error("hidden", TOPIC_AUTHORIZATION_FAILED),
        ]
    );
    assert!(named.topics[2].topic_id.is_nil());
    // alice may only DESCRIBE: that is the one operation reported.
    assert_eq!(named.topics[0].topic_authorized_operations, 1 << 8);
    // All topics: the denied ones are left out.
    let all = describe_partitions(&mut alice, &[], 100, None);
    assert_eq!(listing(&all), (vec![entry("seen", &[0, 1])], None));
    assert_eq!(listing(&describe_partitions(&mut admin, &[], 100, None)).0.len(), 2);

    // The quorum needs DESCRIBE on the cluster, feature changes ALTER.
    let quorum: DescribeQuorumResponse = alice.call(ApiKey::DescribeQuorum, 2, &metadata_quorum_request());
    assert_eq!(quorum.error_code, CLUSTER_AUTHORIZATION_FAILED);
    let quorum: DescribeQuorumResponse = admin.call(ApiKey::DescribeQuorum, 2, &metadata_quorum_request());
    assert_eq!(quorum.error_code, 0);
    let update = update_features(&[("eligible.leader.replicas.version", 0, 2)], false);
    let answer: UpdateFeaturesResponse = alice.call(ApiKey::UpdateFeatures, 2, &update);
    assert_eq!(answer.error_code, CLUSTER_AUTHORIZATION_FAILED);
    let answer: UpdateFeaturesResponse = admin.call(ApiKey::UpdateFeatures, 2, &update);
    assert_eq!(answer.error_code, 0, "{answer:?}");
    broker.stop();
}

fn metadata_quorum_request() -> DescribeQuorumRequest {
    quorum_request("__cluster_metadata", 0)
}

fn quorum_request(topic: &str, partition: i32) -> DescribeQuorumRequest {
    DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(name(topic))
        .with_partitions(vec![PartitionData::default().with_partition_index(partition)])])
}

/// A line of MetadataQuorumCommand's `--status` output: the value after `label:`.
fn status_value<'a>(status: &'a str, label: &str) -> &'a str {
    let prefix = format!("{label}:");
    let line = status.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {label}:\n{status}"));
    line[prefix.len()..].trim()
}

#[test]
fn kafka_metadata_quorum_describes_this_node_as_its_own_controller() {
    let broker = start("ops-quorum");
    let mut raw = Raw::connect(&broker);
    let quorum: DescribeQuorumResponse = raw.call(ApiKey::DescribeQuorum, 2, &metadata_quorum_request());
    assert_eq!(quorum.topics[0].partitions[0].high_watermark, 0, "nothing committed yet: {quorum:?}");
    // Two catalog changes.
    create_topics(&mut raw, &[("one", 1)]);
    create_topics(&mut raw, &[("two", 2)]);

    let status = tool_ok(&broker, QUORUM, &["describe", "--status"]);
    let cluster_id = std::fs::read_to_string(broker.data_dir.join("meta.properties")).unwrap();
    assert!(cluster_id.contains(&format!("cluster.id={}", status_value(&status, "ClusterId"))), "{status}");
    assert_eq!(status_value(&status, "LeaderId"), "3", "{status}");
    assert_eq!(status_value(&status, "LeaderEpoch"), "0", "{status}");
    assert_eq!(status_value(&status, "HighWatermark"), "2", "{status}");
    assert_eq!(status_value(&status, "MaxFollowerLag"), "0", "{status}");
    assert_eq!(status_value(&status, "MaxFollowerLagTimeMs"), "0", "{status}");
    assert_eq!(
        status_value(&status, "CurrentVoters"),
        format!("[{{\"id\": 3, \"endpoints\": [\"PLAINTEXT://127.0.0.1:{}\"]}}]", broker.port),
        "{status}"
    );
    assert_eq!(status_value(&status, "CurrentObservers"), "[]", "{status}");

    let replication = tool_ok(&broker, QUORUM, &["describe", "--replication"]);
    let rows: Vec<Vec<&str>> = replication.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        rows[0],
        ["NodeId", "DirectoryId", "LogEndOffset", "Lag", "LastFetchTimestamp", "LastCaughtUpTimestamp", "Status"],
        "{replication}"
    );
    assert_eq!(rows.len(), 2, "one voter, no observers:\n{replication}");
    assert_eq!(&rows[1][..4], ["3", "AAAAAAAAAAAAAAAAAAAAAA", "2", "0"], "{replication}");
    assert_eq!(rows[1][6], "Leader", "{replication}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let fetched: i64 = rows[1][4].parse().unwrap();
    assert!((now - 60_000..=now).contains(&fetched), "the leader's times are the broker's now:\n{replication}");
    let human = tool_ok(&broker, QUORUM, &["describe", "--replication", "--human-readable"]);
    assert!(human.contains(" ms ago"), "{human}");

    // Asked as a controller (`--bootstrap-controller`), the same answers:
    // the admin client finds the controllers with DescribeCluster first.
    let (ok, via_controller, stderr) = tool_via(&broker, "--bootstrap-controller", QUORUM, &["describe", "--status"]);
    assert!(ok, "{via_controller}{stderr}");
    assert_eq!(status_value(&via_controller, "LeaderId"), "3", "{via_controller}");
    assert_eq!(status_value(&via_controller, "HighWatermark"), "2", "{via_controller}");
    assert_eq!(status_value(&via_controller, "CurrentVoters"), status_value(&status, "CurrentVoters"));

    // Each version, straight.
    let v0: DescribeQuorumResponse = raw.call(ApiKey::DescribeQuorum, 0, &metadata_quorum_request());
    let partition = &v0.topics[0].partitions[0];
    assert_eq!((partition.leader_id, partition.high_watermark), (BrokerId(NODE), 2));
    assert_eq!(partition.current_voters[0].last_fetch_timestamp, -1, "v0 has no timestamps");
    assert!(partition.observers.is_empty());
    let v1: DescribeQuorumResponse = raw.call(ApiKey::DescribeQuorum, 1, &metadata_quorum_request());
    assert!(v1.topics[0].partitions[0].current_voters[0].last_caught_up_timestamp > 0);
    assert!(v1.nodes.is_empty(), "nodes are v2's");
    let v2: DescribeQuorumResponse = raw.call(ApiKey::DescribeQuorum, 2, &metadata_quorum_request());
    assert_eq!(v2.nodes.len(), 1);
    assert_eq!(v2.nodes[0].node_id, BrokerId(NODE));
    let listener = &v2.nodes[0].listeners[0];
    assert_eq!(
        (listener.name.as_str(), listener.host.as_str(), listener.port),
        ("PLAINTEXT", "127.0.0.1", broker.port)
    );
    // Another partition is not the metadata quorum's.
    let other: DescribeQuorumResponse = raw.call(ApiKey::DescribeQuorum, 2, &quorum_request("__cluster_metadata", 1));
    assert_eq!(other.error_code, 0);
    assert_eq!(other.topics[0].partitions[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    broker.stop();
}

fn update_features(updates: &[(&str, i16, i8)], validate_only: bool) -> UpdateFeaturesRequest {
    let keys = updates
        .iter()
        .map(|(feature, level, upgrade_type)| {
            FeatureUpdateKey::default()
                .with_feature(StrBytes::from_string(feature.to_string()))
                .with_max_version_level(*level)
                .with_upgrade_type(*upgrade_type)
        })
        .collect();
    UpdateFeaturesRequest::default()
        .with_timeout_ms(30_000)
        .with_feature_updates(keys)
        .with_validate_only(validate_only)
}

/// FeatureCommand's `describe`, as feature → (min, max, finalized, epoch).
fn features(broker: &Broker) -> BTreeMap<String, [String; 4]> {
    let described = tool_ok(broker, FEATURES, &["describe"]);
    described
        .lines()
        .map(|line| {
            // `Feature: <name>  SupportedMinVersion: <v>  ...`, separated by tabs
            // (Kafka 4.1) or padded columns (Kafka 4.2 on): every other word.
            let words: Vec<&str> = line.split_whitespace().collect();
            let value = |i: usize| words.get(2 * i + 1).unwrap_or_else(|| panic!("{line}")).to_string();
            (value(0), [value(1), value(2), value(3), value(4)])
        })
        .collect()
}

fn levels(min: &str, max: &str, finalized: &str, epoch: u64) -> [String; 4] {
    [min.to_string(), max.to_string(), finalized.to_string(), epoch.to_string()]
}

#[test]
fn kafka_features_describes_upgrades_and_downgrades() {
    let broker = start("ops-features");
    let expected: BTreeMap<String, [String; 4]> = [
        ("eligible.leader.replicas.version", levels("0", "1", "1", 0)),
        ("group.version", levels("0", "1", "1", 0)),
        ("kraft.version", levels("0", "0", "0", 0)),
        ("metadata.version", levels("4.1-IV1", "4.1-IV1", "4.1-IV1", 0)),
        ("share.version", levels("0", "0", "0", 0)),
        ("transaction.version", levels("0", "2", "2", 0)),
    ]
    .into_iter()
    .map(|(name, levels)| (name.to_string(), levels))
    .collect();
    assert_eq!(features(&broker), expected);

    let said = tool_ok(&broker, FEATURES, &["downgrade", "--feature", "transaction.version=0", "--dry-run"]);
    assert_eq!(said.trim(), "transaction.version can be downgraded to 0.");
    assert_eq!(features(&broker)["transaction.version"], levels("0", "2", "2", 0), "a dry run changes nothing");
    let said = tool_ok(&broker, FEATURES, &["downgrade", "--feature", "transaction.version=0"]);
    assert_eq!(said.trim(), "transaction.version was downgraded to 0.");
    assert_eq!(features(&broker)["transaction.version"], levels("0", "2", "0", 1));
    let said = tool_ok(&broker, FEATURES, &["upgrade", "--feature", "transaction.version=1"]);
    assert_eq!(said.trim(), "transaction.version was upgraded to 1.");
    assert_eq!(features(&broker)["transaction.version"], levels("0", "2", "1", 2));

    // Levels Sluice does not implement are refused with Kafka's messages.
    let refused = tool_fails(&broker, FEATURES, &["upgrade", "--feature", "transaction.version=3"]);
    assert!(
        refused.contains(
            "Could not upgrade transaction.version to 3. The update failed for all features since the following \
             feature had an error: Invalid update version 3 for feature transaction.version. Local controller 3 \
             only supports versions 0-2"
        ),
        "{refused}"
    );
    let refused = tool_fails(&broker, FEATURES, &["upgrade", "--feature", "group.version=2", "--dry-run"]);
    assert!(
        refused.contains("Can not upgrade group.version to 2. ")
            && refused.contains(
                "Invalid update version 2 for feature group.version. Local controller 3 only supports versions 0-1"
            ),
        "{refused}"
    );
    let refused = tool_fails(&broker, FEATURES, &["upgrade", "--feature", "share.version=1", "--dry-run"]);
    assert!(
        refused.contains(
            "Invalid update version 1 for feature share.version. Local controller 3 does not support this feature."
        ),
        "{refused}"
    );
    let refused = tool_fails(&broker, FEATURES, &["downgrade", "--metadata", "4.0-IV3"]);
    assert!(
        refused.contains(
            "Invalid update version 25 for feature metadata.version. Local controller 3 only supports versions 27"
        ),
        "{refused}"
    );

    // A change survives a restart.
    tool_ok(&broker, FEATURES, &["disable", "--feature", "eligible.leader.replicas.version"]);
    let dir = broker.stop();
    let broker = Broker::start_in(dir, 2, &["--node-id", &NODE.to_string()]);
    let after = features(&broker);
    assert_eq!(after["eligible.leader.replicas.version"], levels("0", "1", "0", 3));
    assert_eq!(after["transaction.version"], levels("0", "2", "1", 3), "level 1 is kept");
    broker.stop();
}

#[test]
fn update_features_and_api_versions_on_the_wire() {
    let broker = start("ops-features-raw");
    let mut raw = Raw::connect(&broker);
    let v4: ApiVersionsResponse = raw.call(ApiKey::ApiVersions, 4, &ApiVersionsRequest::default());
    let served =
        |key: ApiKey| v4.api_keys.iter().find(|k| k.api_key == key as i16).map(|k| (k.min_version, k.max_version));
    assert_eq!(served(ApiKey::DescribeTopicPartitions), Some((0, 0)));
    assert_eq!(served(ApiKey::DescribeQuorum), Some((0, 2)));
    assert_eq!(served(ApiKey::UpdateFeatures), Some((0, 2)));
    // Transaction version 2's requests, advertised whatever the finalized level, as Kafka does.
    assert_eq!(served(ApiKey::EndTxn), Some((0, 5)));
    assert_eq!(served(ApiKey::AddPartitionsToTxn), Some((0, 5)));
    assert_eq!(served(ApiKey::TxnOffsetCommit), Some((0, 5)));
    assert_eq!(served(ApiKey::AddOffsetsToTxn), Some((0, 4)));
    let supported: Vec<(&str, i16, i16)> =
        v4.supported_features.iter().map(|f| (f.name.as_str(), f.min_version, f.max_version)).collect();
    assert_eq!(supported.len(), 6, "{supported:?}");
    assert!(supported.contains(&("transaction.version", 0, 2)), "{supported:?}");
    assert!(supported.contains(&("group.version", 0, 1)), "{supported:?}");
    let finalized: Vec<(&str, i16)> =
        v4.finalized_features.iter().map(|f| (f.name.as_str(), f.max_version_level)).collect();
    assert_eq!(
        finalized,
        [
            ("eligible.leader.replicas.version", 1),
            ("group.version", 1),
            ("metadata.version", 27),
            ("transaction.version", 2)
        ]
    );
    assert_eq!(v4.finalized_features_epoch, 0);
    // Before v4, features whose minimum is 0 are left out (KAFKA-17492).
    let v3: ApiVersionsResponse = raw.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let names: Vec<&str> = v3.supported_features.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["metadata.version"]);

    // v2 answers a success with no results, v1 with one per feature.
    let off = update_features(&[("eligible.leader.replicas.version", 0, 2)], true);
    let answer: UpdateFeaturesResponse = raw.call(ApiKey::UpdateFeatures, 2, &off);
    assert_eq!((answer.error_code, answer.error_message.is_none(), answer.results.len()), (0, true, 0));
    let answer: UpdateFeaturesResponse = raw.call(ApiKey::UpdateFeatures, 1, &off);
    assert_eq!(answer.results.len(), 1);
    assert_eq!(answer.results[0].feature.as_str(), "eligible.leader.replicas.version");
    assert_eq!(answer.results[0].error_code, 0);
    let v4: ApiVersionsResponse = raw.call(ApiKey::ApiVersions, 4, &ApiVersionsRequest::default());
    assert_eq!(v4.finalized_features.len(), 4, "validate_only changed nothing");
    assert_eq!(v4.finalized_features_epoch, 0);

    // One refusal refuses every update of the request.
    let mixed = update_features(&[("eligible.leader.replicas.version", 0, 2), ("kraft.version", 1, 1)], false);
    let answer: UpdateFeaturesResponse = raw.call(ApiKey::UpdateFeatures, 2, &mixed);
    assert_eq!(answer.error_code, INVALID_UPDATE_VERSION);
    assert_eq!(
        answer.error_message.as_deref(),
        Some(
            "The update failed for all features since the following feature had an error: Invalid update version 1 \
             for feature kraft.version. Local controller 3 does not support this feature."
        )
    );
    let as_upgrade = update_features(&[("eligible.leader.replicas.version", 0, 1)], false);
    let answer: UpdateFeaturesResponse = raw.call(ApiKey::UpdateFeatures, 2, &as_upgrade);
    assert_eq!(answer.error_code, INVALID_UPDATE_VERSION);
    assert!(answer.error_message.unwrap().ends_with(
        "Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade."
    ));
    let unknown = update_features(&[("no.such.feature", 0, 1)], false);
    let answer: UpdateFeaturesResponse = raw.call(ApiKey::UpdateFeatures, 2, &unknown);
    assert_eq!(answer.error_code, INVALID_UPDATE_VERSION);
    assert!(answer.error_message.unwrap().ends_with("Feature no.such.feature not found."));

    let applied: UpdateFeaturesResponse =
        raw.call(ApiKey::UpdateFeatures, 2, &update_features(&[("eligible.leader.replicas.version", 0, 2)], false));
    assert_eq!(applied.error_code, 0);
    let v4: ApiVersionsResponse = raw.call(ApiKey::ApiVersions, 4, &ApiVersionsRequest::default());
    let finalized: Vec<&str> = v4.finalized_features.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        finalized,
        ["group.version", "metadata.version", "transaction.version"],
        "a feature at 0 is not finalized"
    );
    assert_eq!(v4.finalized_features_epoch, 1);
    broker.stop();
}

#[test]
fn create_topics_and_partitions_with_assignments_as_kafka_checks_them() {
    let broker = start("ops-assignments");
    let mut raw = Raw::connect(&broker);
    let assignment = |partition: i32, brokers: &[i32]| {
        CreatableReplicaAssignment::default()
            .with_partition_index(partition)
            .with_broker_ids(brokers.iter().map(|b| BrokerId(*b)).collect())
    };
    let topic = |topic: &str, partitions: i32, factor: i16, assignments: Vec<CreatableReplicaAssignment>| {
        CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(factor)
            .with_assignments(assignments)
    };
    let request = CreateTopicsRequest::default().with_timeout_ms(30_000).with_topics(vec![
        topic("ok", -1, -1, vec![assignment(1, &[NODE]), assignment(0, &[NODE])]),
        topic("with-count", 2, -1, vec![assignment(0, &[NODE])]),
        topic("with-factor", -1, 1, vec![assignment(0, &[NODE])]),
        topic("gap", -1, -1, vec![assignment(0, &[NODE]), assignment(2, &[NODE])]),
        topic("twice", -1, -1, vec![assignment(0, &[NODE]), assignment(0, &[NODE])]),
        topic("empty", -1, -1, vec![assignment(0, &[])]),
        topic("doubled", -1, -1, vec![assignment(0, &[NODE, NODE])]),
        topic("other", -1, -1, vec![assignment(0, &[NODE + 1])]),
    ]);
    let response: CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &request);
    let outcome: BTreeMap<String, (i16, String)> = response
        .topics
        .iter()
        .map(|t| (t.name.0.to_string(), (t.error_code, t.error_message.as_deref().unwrap_or("").to_string())))
        .collect();
    let expect = |topic: &str, code: i16, message: &str| {
        assert_eq!(outcome[topic], (code, message.to_string()), "{topic}");
    };
    expect("ok", 0, "");
    expect(
        "with-count",
        INVALID_REQUEST,
        "A manual partition assignment was specified, but numPartitions was not set to -1.",
    );
    expect(
        "with-factor",
        INVALID_REQUEST,
        "A manual partition assignment was specified, but replication factor was not set to -1.",
    );
    expect("gap", INVALID_REPLICA_ASSIGNMENT, "partitions should be a consecutive 0-based integer sequence");
    expect("twice", INVALID_REPLICA_ASSIGNMENT, "Found multiple manual partition assignments for partition 0");
    expect("empty", INVALID_REPLICA_ASSIGNMENT, "The manual partition assignment includes an empty replica list.");
    expect(
        "doubled",
        INVALID_REPLICA_ASSIGNMENT,
        "The manual partition assignment includes the broker 3 more than once.",
    );
    expect(
        "other",
        INVALID_REPLICA_ASSIGNMENT,
        "The manual partition assignment includes broker 4, but no such broker is registered.",
    );
    let ok = response.topics.iter().find(|t| t.name.0.as_str() == "ok").unwrap();
    assert_eq!((ok.num_partitions, ok.replication_factor), (2, 1));

    let mut grow = |count: i32, assignments: Option<Vec<&[i32]>>| {
        let assignments = assignments.map(|a| {
            a.iter()
                .map(|b| {
                    CreatePartitionsAssignment::default().with_broker_ids(b.iter().map(|b| BrokerId(*b)).collect())
                })
                .collect()
        });
        let request = CreatePartitionsRequest::default().with_timeout_ms(30_000).with_topics(vec![
            CreatePartitionsTopic::default().with_name(name("ok")).with_count(count).with_assignments(assignments),
        ]);
        let response: CreatePartitionsResponse = raw.call(ApiKey::CreatePartitions, 3, &request);
        let result = &response.results[0];
        (result.error_code, result.error_message.as_deref().unwrap_or("").to_string())
    };
    assert_eq!(
        grow(4, Some(vec![&[NODE]])),
        (
            INVALID_REPLICA_ASSIGNMENT,
            "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified.".into()
        )
    );
    assert_eq!(grow(2, None), (INVALID_PARTITIONS, "Topic already has 2 partition(s).".into()));
    assert_eq!(
        grow(1, None),
        (INVALID_PARTITIONS, "The topic ok currently has 2 partition(s); 1 would not be an increase.".into())
    );
    assert_eq!(
        grow(3, Some(vec![&[NODE, NODE + 1]])),
        (
            INVALID_REPLICA_ASSIGNMENT,
            "The manual partition assignment includes broker 4, but no such broker is registered.".into()
        )
    );
    assert_eq!(grow(4, Some(vec![&[NODE], &[NODE]])), (0, String::new()));
    let page = describe_partitions(&mut raw, &["ok"], 100, None);
    assert_eq!(listing(&page).0, vec![entry("ok", &[0, 1, 2, 3])]);
    broker.stop();
}

/// A valid value, not the default, of every topic config Kafka 4.1 defines.
const EVERY_TOPIC_CONFIG: [(&str, &str); 33] = [
    ("cleanup.policy", "compact"),
    ("compression.gzip.level", "5"),
    ("compression.lz4.level", "10"),
    ("compression.type", "producer"),
    ("compression.zstd.level", "7"),
    ("delete.retention.ms", "5000"),
    ("file.delete.delay.ms", "1000"),
    ("flush.messages", "1000"),
    ("flush.ms", "2000"),
    ("follower.replication.throttled.replicas", "*"),
    ("index.interval.bytes", "8192"),
    ("leader.replication.throttled.replicas", "0:3"),
    ("local.retention.bytes", "-1"),
    ("local.retention.ms", "-1"),
    ("max.compaction.lag.ms", "600000"),
    ("max.message.bytes", "2000000"),
    ("message.timestamp.after.max.ms", "60000"),
    ("message.timestamp.before.max.ms", "86400000"),
    ("message.timestamp.type", "LogAppendTime"),
    ("min.cleanable.dirty.ratio", "0.25"),
    ("min.compaction.lag.ms", "10"),
    ("min.insync.replicas", "1"),
    ("preallocate", "true"),
    ("remote.log.copy.disable", "true"),
    ("remote.log.delete.on.disable", "true"),
    ("remote.storage.enable", "false"),
    ("retention.bytes", "1048576"),
    ("retention.ms", "3600000"),
    ("segment.bytes", "1048576"),
    ("segment.index.bytes", "65536"),
    ("segment.jitter.ms", "100"),
    ("segment.ms", "600000"),
    ("unclean.leader.election.enable", "true"),
];

#[test]
fn kafka_topics_creates_with_every_kafka_4_1_topic_config_and_kafka_configs_describes_them() {
    let broker = start("ops-every-config");
    let settings: Vec<String> = EVERY_TOPIC_CONFIG.iter().map(|(name, value)| format!("{name}={value}")).collect();
    let mut args = vec!["--create", "--topic", "configured"];
    for setting in &settings {
        args.extend(["--config", setting.as_str()]);
    }
    let created = tool_ok(&broker, TOPICS, &args);
    assert!(created.contains("Created topic configured."), "{created}");

    let topic = ["--entity-type", "topics", "--entity-name", "configured"];
    let described = tool_ok(&broker, CONFIGS, &[&topic[..], &["--describe"]].concat());
    assert!(described.contains("Dynamic configs for topic configured are:"), "{described}");
    for (name, value) in EVERY_TOPIC_CONFIG {
        let line = format!("  {name}={value} sensitive=false synonyms={{DYNAMIC_TOPIC_CONFIG:{name}={value}");
        assert!(described.contains(&line), "{line} in:\n{described}");
    }

    // Altered through IncrementalAlterConfigs, a list among them; every config is described, with its default.
    let add = "preallocate=false,segment.jitter.ms=5,leader.replication.throttled.replicas=[0:3,1:3]";
    let altered = tool_ok(&broker, CONFIGS, &[&topic[..], &["--alter", "--add-config", add]].concat());
    assert!(altered.contains("Completed updating config for topic configured."), "{altered}");
    let all = tool_ok(&broker, CONFIGS, &[&topic[..], &["--describe", "--all"]].concat());
    for line in ["  preallocate=false ", "  segment.jitter.ms=5 ", "  leader.replication.throttled.replicas=0:3,1:3 "] {
        assert!(all.contains(line), "{line} in:\n{all}");
    }
    let other = ["--entity-type", "topics", "--entity-name", "plain"];
    tool_ok(&broker, TOPICS, &["--create", "--topic", "plain"]);
    let defaults = tool_ok(&broker, CONFIGS, &[&other[..], &["--describe", "--all"]].concat());
    assert_eq!(defaults.lines().filter(|l| l.starts_with("  ")).count(), 33, "{defaults}");
    for line in [
        "  file.delete.delay.ms=60000 sensitive=false synonyms={DEFAULT_CONFIG:log.segment.delete.delay.ms=60000}",
        "  message.timestamp.after.max.ms=3600000 sensitive=false \
         synonyms={DEFAULT_CONFIG:log.message.timestamp.after.max.ms=3600000}",
        "  remote.storage.enable=false sensitive=false synonyms={}",
        "  follower.replication.throttled.replicas= sensitive=false synonyms={}",
        "  unclean.leader.election.enable=false sensitive=false \
         synonyms={DEFAULT_CONFIG:unclean.leader.election.enable=false}",
    ] {
        assert!(defaults.contains(line), "{line} in:\n{defaults}");
    }

    // Refused as Kafka 4.1 refuses them: an unknown name (message.downconversion.enable is gone since 4.0),
    // a bad value, and tiered storage on a broker that has none.
    for (config, message) in [
        ("no.such.config=1", "Unknown topic config name: no.such.config"),
        ("message.downconversion.enable=true", "Unknown topic config name: message.downconversion.enable"),
        ("preallocate=yes", "Invalid value yes for configuration preallocate: Expected value to be either true or false"),
        (
            "remote.storage.enable=true",
            "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage.",
        ),
    ] {
        let refused = tool_fails(&broker, TOPICS, &["--create", "--topic", "refused", "--config", config]);
        assert!(refused.contains(message), "{config}: {refused}");
    }
    let refused =
        tool_fails(&broker, CONFIGS, &[&topic[..], &["--alter", "--add-config", "no.such.config=1"]].concat());
    assert!(refused.contains("no.such.config"), "{refused}");
    broker.stop();
}

/// The Kafka 4.1 sample `server.properties` of a single KRaft node.
fn kafka_server_properties() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kafka-4.1-server.properties")
}

#[test]
fn a_kafka_4_1_server_properties_starts_the_broker_with_one_warning() {
    let properties = kafka_server_properties();
    let config = properties.to_str().unwrap();
    // Where and on which port it listens is the test's; everything else is the file's.
    let args = ["--config", config, "--advertised-listener", "PLAINTEXT://127.0.0.1:0"];
    let broker = Broker::start_listening(fresh_data_dir("ops-server-properties"), 1, "PLAINTEXT://127.0.0.1:0", &args);
    let log = broker.log();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("Sluice does not use")).collect();
    assert_eq!(warnings.len(), 1, "one warning names them all:\n{log}");
    for key in [
        "process.roles",
        "controller.quorum.bootstrap.servers",
        "num.network.threads",
        "num.io.threads",
        "socket.send.buffer.bytes",
        "offsets.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
        "transaction.state.log.min.isr",
    ] {
        assert!(warnings[0].contains(key), "{key} in {}", warnings[0]);
    }
    // Keys Sluice uses are not among them, and take effect: log.retention.hours=168 is a week.
    for key in ["log.retention.hours", "log.segment.bytes", "num.partitions", "node.id"] {
        assert!(!warnings[0].contains(&format!("{key},")) && !warnings[0].ends_with(key), "{key}: {}", warnings[0]);
    }
    let described =
        tool_ok(&broker, CONFIGS, &["--entity-type", "brokers", "--entity-name", "1", "--describe", "--all"]);
    // Each spelling is described as Kafka does: the one set, the one with Kafka's default, the one not set.
    for line in [
        "  log.retention.hours=168 sensitive=false \
         synonyms={STATIC_BROKER_CONFIG:log.retention.hours=168, DEFAULT_CONFIG:log.retention.hours=168}\n",
        "  log.retention.ms=null sensitive=false synonyms={}\n",
        "  log.roll.hours=168 sensitive=false synonyms={DEFAULT_CONFIG:log.roll.hours=168}\n",
        "  log.roll.ms=null sensitive=false synonyms={}\n",
    ] {
        assert!(described.contains(line), "{line} in {described}");
    }
    let created = tool_ok(&broker, TOPICS, &["--create", "--topic", "carried-over"]);
    assert!(created.contains("Created topic carried-over."), "{created}");
    // A topic's synonyms start at the first spelling, which is not set: none, as in Kafka.
    let topic = ["--entity-type", "topics", "--entity-name", "carried-over", "--describe", "--all"];
    let described = tool_ok(&broker, CONFIGS, &topic);
    assert!(described.contains("  retention.ms=604800000 sensitive=false synonyms={}\n"), "{described}");
    broker.stop();

    // A key that is not Kafka's stops the start, named.
    let text =
        std::fs::read_to_string(&properties).unwrap() + "log.retention.day=1\nzookeeper.connect=localhost:2181\n";
    let misspelt = fresh_data_dir("ops-server-properties-bad").with_extension("properties");
    std::fs::write(&misspelt, text).unwrap();
    let output = Command::new(common::sluice_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "none",
            "--schema-registry-listen",
            "none",
            "--config",
        ])
        .arg(&misspelt)
        .arg("--data-dir")
        .arg(fresh_data_dir("ops-server-properties-bad"))
        .output()
        .expect("run sluice");
    let said = String::from_utf8_lossy(&output.stderr).to_string() + &String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{said}");
    assert!(
        said.contains(
            "config file keys that are neither Kafka 4.1 broker configs nor Sluice settings (misspelt?): \
             log.retention.day, zookeeper.connect"
        ),
        "{said}"
    );
}

const GET_OFFSETS: &str = "org.apache.kafka.tools.GetOffsetShell";
const DELETE_RECORDS: &str = "org.apache.kafka.tools.DeleteRecordsCommand";

/// The data rows of a table ConsumerGroupCommand printed (after its header), as words.
fn group_rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .skip_while(|l| !l.starts_with("GROUP "))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// `kafka-consumer-groups.sh` resetting, listing, describing and deleting a
/// group, `kafka-get-offsets.sh` and `kafka-delete-records.sh` moving the log
/// start, and `kafka-topics.sh --delete`, each checked by the next tool.
#[test]
fn kafka_consumer_groups_get_offsets_and_delete_records() {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

    let broker = start("ops-groups");
    tool_ok(&broker, TOPICS, &["--create", "--topic", "ops", "--partitions", "2"]);
    let described = tool_ok(&broker, TOPICS, &["--describe", "--topic", "ops"]);
    assert!(described.contains("Topic: ops\t") && described.contains("PartitionCount: 2\t"), "{described}");
    let producer: ThreadedProducer<DefaultProducerContext> =
        common::kafka::client_config(&broker.bootstrap(), &[("acks", "all")]).create().unwrap();
    for i in 0..10 {
        common::kafka::send(&producer, BaseRecord::to("ops").partition(i % 2).payload("x").key("k"));
    }
    producer.flush(std::time::Duration::from_secs(10)).unwrap();

    // Offsets of a group with no members, set by the tool (OffsetCommit).
    let reset = ["--group", "opsg", "--topic", "ops", "--reset-offsets", "--to-offset", "3", "--execute"];
    let out = tool_ok(&broker, CONSUMER_GROUPS, &reset);
    assert_eq!(group_rows(&out), [["opsg", "ops", "0", "3"], ["opsg", "ops", "1", "3"]], "{out}");
    let reset = ["--group", "opsg", "--topic", "ops:1", "--reset-offsets", "--to-earliest", "--execute"];
    let out = tool_ok(&broker, CONSUMER_GROUPS, &reset);
    assert_eq!(group_rows(&out), [["opsg", "ops", "1", "0"]], "{out}");
    let listed = tool_ok(&broker, CONSUMER_GROUPS, &["--list"]);
    assert_eq!(listed.lines().collect::<Vec<_>>(), ["opsg"], "{listed}");
    let described = tool_ok(&broker, CONSUMER_GROUPS, &["--describe", "--group", "opsg"]);
    let rows: Vec<Vec<String>> = group_rows(&described).into_iter().map(|r| r[..5].to_vec()).collect();
    assert_eq!(rows, [["opsg", "ops", "0", "3", "5"], ["opsg", "ops", "1", "0", "5"]], "{described}");

    // kafka-delete-records.sh moves partition 0's log start; kafka-get-offsets.sh sees it.
    let ends = tool_ok(&broker, GET_OFFSETS, &["--topic", "ops"]);
    assert_eq!(ends.lines().collect::<Vec<_>>(), ["ops:0:5", "ops:1:5"], "{ends}");
    let json = fresh_data_dir("ops-groups-delete").with_extension("json");
    std::fs::write(&json, r#"{"partitions":[{"topic":"ops","partition":0,"offset":2}],"version":1}"#).unwrap();
    let deleted = tool_ok(&broker, DELETE_RECORDS, &["--offset-json-file", json.to_str().unwrap()]);
    assert!(deleted.contains("partition: ops-0\tlow_watermark: 2"), "{deleted}");
    let starts = tool_ok(&broker, GET_OFFSETS, &["--topic", "ops", "--time", "-2"]);
    assert_eq!(starts.lines().collect::<Vec<_>>(), ["ops:0:2", "ops:1:0"], "{starts}");

    let out = tool_ok(&broker, CONSUMER_GROUPS, &["--delete", "--group", "opsg"]);
    assert!(out.contains("Deletion of requested consumer groups ('opsg') was successful."), "{out}");
    tool_ok(&broker, TOPICS, &["--delete", "--topic", "ops"]);
    let mut raw = Raw::connect(&broker);
    assert_eq!(describe_partitions(&mut raw, &["ops"], 100, None).topics[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    broker.stop();
}

#[test]
fn kafka_consumer_groups_describes_a_consumer_protocol_group_with_members_and_offsets() {
    let broker = start("ops-consumer-groups");
    let mut raw = Raw::connect(&broker);
    create_topics(&mut raw, &[("watched", 2)]);
    // Offsets first (an empty group), then a consumer-protocol member takes the group over.
    common::kafka::commit(&broker.bootstrap(), "watchers", "watched", &[(0, 0), (1, 0)]);
    let join = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("watchers")))
        .with_member_id(StrBytes::from_static_str("member-one"))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![name("watched")]))
        .with_topic_partitions(Some(Vec::new()));
    let joined: ConsumerGroupHeartbeatResponse = raw.call(ApiKey::ConsumerGroupHeartbeat, 1, &join);
    assert_eq!((joined.error_code, joined.member_epoch), (0, 1), "{joined:?}");
    let owned: Vec<TopicPartitions> = joined
        .assignment
        .unwrap()
        .topic_partitions
        .iter()
        .map(|t| TopicPartitions::default().with_topic_id(t.topic_id).with_partitions(t.partitions.clone()))
        .collect();
    let beat = join.clone().with_member_epoch(1).with_topic_partitions(Some(owned));
    // Each tool run starts a JVM: the member heartbeats before each, so its
    // session (45 s) never lapses on a slow machine.
    let mut keep_alive = || {
        let stable: ConsumerGroupHeartbeatResponse = raw.call(ApiKey::ConsumerGroupHeartbeat, 1, &beat);
        assert_eq!(stable.error_code, 0, "{stable:?}");
    };
    keep_alive();

    let offsets = tool_ok(&broker, CONSUMER_GROUPS, &["--describe", "--group", "watchers"]);
    let rows: Vec<Vec<&str>> =
        offsets.lines().filter(|l| l.starts_with("watchers ")).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "one row per partition:\n{offsets}");
    for row in &rows {
        // GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
        assert_eq!((row[1], row[3], row[4], row[5], row[6]), ("watched", "0", "0", "0", "member-one"), "{offsets}");
    }
    keep_alive();
    let state = tool_ok(&broker, CONSUMER_GROUPS, &["--describe", "--group", "watchers", "--state"]);
    let line = state.lines().find(|l| l.starts_with("watchers ")).unwrap_or_else(|| panic!("{state}"));
    // GROUP COORDINATOR (ID) ASSIGNMENT-STRATEGY STATE #MEMBERS
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[fields.len() - 3..], ["uniform", "Stable", "1"], "{state}");
    keep_alive();
    let members = tool_ok(&broker, CONSUMER_GROUPS, &["--describe", "--group", "watchers", "--members"]);
    let line = members.lines().find(|l| l.starts_with("watchers ")).unwrap_or_else(|| panic!("{members}"));
    assert!(line.contains("member-one") && line.split_whitespace().last() == Some("2"), "{members}");
    let listed = tool_ok(&broker, CONSUMER_GROUPS, &["--list", "--type"]);
    assert!(listed.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["watchers", "Consumer"]), "{listed}");
    broker.stop();
}

const CONSOLE_PRODUCER: &str = "org.apache.kafka.tools.ConsoleProducer";
const CONSOLE_CONSUMER: &str = "org.apache.kafka.tools.consumer.ConsoleConsumer";

/// The codecs of `kafka-console-producer.sh --compression-codec`, with the
/// codec id a record batch's attributes carry.
const CONSOLE_CODECS: &[(&str, i16)] = &[("none", 0), ("gzip", 1), ("snappy", 2), ("lz4", 3), ("zstd", 4)];

/// Lines each `kafka-console-producer.sh` run sends.
const CONSOLE_LINES: usize = 300;

/// A record batch's header fields, as the broker serves it.
#[derive(Debug)]
struct BatchHeader {
    base_offset: i64,
    codec: i16,
    producer_id: i64,
    base_sequence: i32,
    records: i32,
}

/// The headers of the batches of `topic` partition 0 from offset 0, from a Fetch (v11).
fn batch_headers(broker: &Broker, topic: &str) -> Vec<BatchHeader> {
    use kafka_protocol::messages::FetchResponse;
    let mut raw = Raw::connect(broker);
    let response: FetchResponse = raw.call(ApiKey::Fetch, 11, &common::fetch_request(topic, &[(0, 0)], 0));
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0, "{partition:?}");
    let bytes = partition.records.clone().unwrap_or_default();
    let (mut headers, mut at) = (Vec::new(), 0);
    let i16_at = |p: usize| i16::from_be_bytes(bytes[p..p + 2].try_into().unwrap());
    let i32_at = |p: usize| i32::from_be_bytes(bytes[p..p + 4].try_into().unwrap());
    let i64_at = |p: usize| i64::from_be_bytes(bytes[p..p + 8].try_into().unwrap());
    // baseOffset, batchLength, partitionLeaderEpoch, magic, crc, attributes,
    // lastOffsetDelta, baseTimestamp, maxTimestamp, producerId, producerEpoch,
    // baseSequence, records count.
    while at + 61 <= bytes.len() {
        let end = at + 12 + i32_at(at + 8) as usize;
        assert!(end <= bytes.len(), "a batch cut short in a 1 MiB fetch of {} bytes", bytes.len());
        assert_eq!(bytes[at + 16], 2, "magic");
        headers.push(BatchHeader {
            base_offset: i64_at(at),
            codec: i16_at(at + 21) & 7,
            producer_id: i64_at(at + 43),
            base_sequence: i32_at(at + 53),
            records: i32_at(at + 57),
        });
        at = end;
    }
    headers
}

/// The batches `kafka-console-producer.sh --compression-codec <codec>` wrote
/// to `console-<codec>` are stored as sent: compressed with that codec, by one
/// idempotent producer (a producer id, sequences from 0 without gaps). The producer ids.
fn assert_console_batches(broker: &Broker) -> Vec<i64> {
    let mut producers = Vec::new();
    for (codec, id) in CONSOLE_CODECS {
        let batches = batch_headers(broker, &format!("console-{codec}"));
        assert!(!batches.is_empty(), "console-{codec} has no batches");
        let mut next = 0;
        for batch in &batches {
            assert_eq!(batch.codec, *id, "console-{codec}: {batch:?}");
            assert!(batch.producer_id >= 0, "console-{codec}: not idempotent: {batch:?}");
            assert_eq!(batch.producer_id, batches[0].producer_id, "console-{codec}: {batches:?}");
            assert_eq!((batch.base_offset, batch.base_sequence as i64), (next, next), "console-{codec}: {batches:?}");
            next += batch.records as i64;
        }
        assert_eq!(next, CONSOLE_LINES as i64, "console-{codec}: {batches:?}");
        producers.push(batches[0].producer_id);
    }
    producers
}

/// `kafka-console-consumer.sh --include 'console-.*' --from-beginning` reading
/// read_committed until it has `count` records (`extra` options added): the
/// values, one a line.
fn console_consume(broker: &Broker, count: usize, extra: &[&str]) -> Vec<String> {
    let count = count.to_string();
    let mut args = vec!["--include", "console-.*", "--from-beginning", "--isolation-level", "read_committed"];
    args.extend(["--max-messages", &count, "--timeout-ms", "60000"]);
    args.extend(extra);
    tool_ok(broker, CONSOLE_CONSUMER, &args).lines().map(str::to_string).collect()
}

/// What a read_committed console consumer must print, per topic: every line of
/// every codec's producer, in order, and the transactional producer's
/// committed records, never its aborted ones.
fn assert_console_values(values: &[String]) {
    for (codec, _) in CONSOLE_CODECS {
        let expected: Vec<String> = (0..CONSOLE_LINES).map(|i| format!("{codec}-{i:04}")).collect();
        let got: Vec<&String> = values.iter().filter(|v| v.starts_with(&format!("{codec}-"))).collect();
        assert_eq!(got, expected.iter().collect::<Vec<_>>(), "console-{codec}");
    }
    let expected: Vec<String> = (0..10).map(|i| format!("committed-{i}")).collect();
    let got: Vec<&String> =
        values.iter().filter(|v| v.starts_with("committed-") || v.starts_with("aborted-")).collect();
    assert_eq!(got, expected.iter().collect::<Vec<_>>(), "console-txn, read_committed");
    assert_eq!(values.len(), CONSOLE_CODECS.len() * CONSOLE_LINES + 10, "{values:?}");
}

/// (topic, partition, current offset, log end offset) of each row of
/// `kafka-consumer-groups.sh --describe --group <group>`.
fn committed_rows(broker: &Broker, group: &str) -> Vec<(String, String, String, String)> {
    let out = tool_ok(broker, CONSUMER_GROUPS, &["--describe", "--group", group]);
    let mut rows: Vec<_> = group_rows(&out)
        .into_iter()
        .map(|r| {
            assert_eq!(r[0], group, "{out}");
            (r[1].clone(), r[2].clone(), r[3].clone(), r[4].clone())
        })
        .collect();
    rows.sort();
    rows
}

/// `kafka-console-producer.sh` with every codec (acks=all, idempotent: the
/// batches are stored compressed with that codec, with a producer id and
/// sequences), `kafka-console-consumer.sh --isolation-level read_committed
/// --group` reading them back exactly with a transactional producer's
/// (librdkafka's) committed records and none of its aborted ones; then the
/// broker is killed with SIGKILL and restarted on its data: every record is
/// read back again, and `kafka-consumer-groups.sh --describe` shows the
/// group's offsets as committed before the kill.
#[test]
fn kafka_console_tools_round_trip_every_codec_and_keep_records_and_offsets_across_kill_9() {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    use std::io::Write;
    use std::process::Stdio;
    use std::time::Duration;

    // No initial rebalance delay: the console consumers join their groups at once.
    let no_delay = ["--node-id", &NODE.to_string(), "--group-initial-rebalance-delay-ms", "0"];
    let broker = Broker::start("ops-console", 2, &no_delay);
    let mut raw = Raw::connect(&broker);
    let topics: Vec<String> = CONSOLE_CODECS.iter().map(|(codec, _)| format!("console-{codec}")).collect();
    let mut creatable: Vec<(&str, i32)> = topics.iter().map(|t| (t.as_str(), 1)).collect();
    creatable.push(("console-txn", 1));
    create_topics(&mut raw, &creatable);

    // One producer per codec, side by side; 1 KiB batches, so each run writes several.
    let classpath = common::clients::kafka_tools_classpath();
    let producers: Vec<_> = CONSOLE_CODECS
        .iter()
        .map(|(codec, _)| {
            let mut child = Command::new("java")
                .args(QUICK_JVM)
                .arg("-cp")
                .arg(classpath.trim())
                .arg(CONSOLE_PRODUCER)
                .args(["--bootstrap-server", &broker.bootstrap(), "--topic", &format!("console-{codec}")])
                .args(["--compression-codec", codec, "--batch-size", "1024"])
                .args(["--command-property", "acks=all", "--command-property", "enable.idempotence=true"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run java");
            let mut stdin = child.stdin.take().unwrap();
            for i in 0..CONSOLE_LINES {
                writeln!(stdin, "{codec}-{i:04}").unwrap();
            }
            drop(stdin);
            (codec, child)
        })
        .collect();
    for (codec, child) in producers {
        let out = child.wait_with_output().expect("wait for java");
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "kafka-console-producer --compression-codec {codec} failed:\n{text}");
    }
    let producer_ids = assert_console_batches(&broker);
    let mut distinct = producer_ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), CONSOLE_CODECS.len(), "one producer id per producer: {producer_ids:?}");

    // The tools have no transactional producer: librdkafka commits, aborts, commits.
    {
        let timeout = Duration::from_secs(30);
        let txn: ThreadedProducer<DefaultProducerContext> =
            common::kafka::client_config(&broker.bootstrap(), &[("transactional.id", "console-txn")]).create().unwrap();
        txn.init_transactions(timeout).unwrap();
        for (prefix, range, commit) in [("committed", 0..5, true), ("aborted", 0..5, false), ("committed", 5..10, true)]
        {
            txn.begin_transaction().unwrap();
            for i in range {
                let value = format!("{prefix}-{i}");
                common::kafka::send(&txn, BaseRecord::to("console-txn").partition(0).payload(value.as_str()).key("t"));
            }
            txn.flush(timeout).unwrap();
            if commit {
                txn.commit_transaction(timeout).unwrap();
            } else {
                txn.abort_transaction(timeout).unwrap();
            }
        }
    }
    let total = CONSOLE_CODECS.len() * CONSOLE_LINES + 10;
    assert_console_values(&console_consume(&broker, total, &["--group", "console-readers"]));

    // The group's offsets: every partition read to its end (the transaction's
    // topic past its last commit marker).
    let committed = committed_rows(&broker, "console-readers");
    let mut expected: Vec<_> = topics
        .iter()
        .map(|t| (t.clone(), "0".to_string(), CONSOLE_LINES.to_string(), CONSOLE_LINES.to_string()))
        .collect();
    // 15 records and 3 markers.
    expected.push(("console-txn".to_string(), "0".to_string(), "18".to_string(), "18".to_string()));
    expected.sort();
    assert_eq!(committed, expected);

    let dir = broker.kill();
    assert!(!dir.join(".sluice_clean_shutdown").exists());
    let broker = Broker::start_in(dir, 2, &no_delay);
    assert_eq!(assert_console_batches(&broker), producer_ids);
    assert_eq!(committed_rows(&broker, "console-readers"), committed);
    assert_console_values(&console_consume(&broker, total, &[]));
    broker.stop();
}

/// `kafka-reassign-partitions.sh` on a single node: the only assignment
/// there is, the node itself, is accepted and complete at once; another
/// broker is not registered, and there is never a reassignment to cancel
/// or list.
#[test]
fn kafka_reassign_partitions_on_a_single_node_accepts_only_itself() {
    use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
    use kafka_protocol::messages::{
        AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
        ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
    };
    const REASSIGN: &str = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand";
    let broker = start("reassign-single");
    let mut raw = Raw::connect(&broker);
    create_topics(&mut raw, &[("stay", 2)]);
    let plan = broker.data_dir.with_file_name("reassign-single-plan.json");
    let write_plan = |replicas: &str| {
        std::fs::write(
            &plan,
            format!(r#"{{"version":1,"partitions":[{{"topic":"stay","partition":1,"replicas":[{replicas}]}}]}}"#),
        )
        .unwrap()
    };
    let plan_arg = plan.display().to_string();
    write_plan(&NODE.to_string());
    let started = tool_ok(&broker, REASSIGN, &["--reassignment-json-file", &plan_arg, "--execute"]);
    assert!(started.contains("Successfully started partition reassignment"), "{started}");
    let verified = tool_ok(&broker, REASSIGN, &["--reassignment-json-file", &plan_arg, "--verify"]);
    assert!(verified.contains("Reassignment of partition stay-1 is completed."), "{verified}");
    write_plan("7");
    let refused = tool_fails(&broker, REASSIGN, &["--reassignment-json-file", &plan_arg, "--execute"]);
    assert!(refused.contains("Unknown broker id 7"), "the tool checks the brokers first:\n{refused}");

    let alter = |target: Option<Vec<i32>>| {
        let request = AlterPartitionReassignmentsRequest::default().with_topics(vec![ReassignableTopic::default()
            .with_name(name("stay"))
            .with_partitions(vec![ReassignablePartition::default()
                .with_partition_index(1)
                .with_replicas(target.map(|t| t.into_iter().map(BrokerId).collect()))])]);
        let response: AlterPartitionReassignmentsResponse =
            Raw::connect(&broker).call(ApiKey::AlterPartitionReassignments, 0, &request);
        let p = &response.responses[0].partitions[0];
        (p.error_code, p.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default())
    };
    assert_eq!(alter(Some(vec![NODE])).0, 0);
    let (code, message) = alter(Some(vec![NODE, 7]));
    assert_eq!(code, INVALID_REPLICA_ASSIGNMENT);
    assert!(message.contains("broker 7, but no such broker is registered"), "{message}");
    assert_eq!(alter(None).0, 85, "NO_REASSIGNMENT_IN_PROGRESS");
    let listed: ListPartitionReassignmentsResponse =
        raw.call(ApiKey::ListPartitionReassignments, 0, &ListPartitionReassignmentsRequest::default());
    assert_eq!((listed.error_code, listed.topics.len()), (0, 0));
}
