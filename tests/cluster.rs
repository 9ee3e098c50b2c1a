//! A three-node cluster of real `sluice` processes on loopback, configured
//! as a KRaft `server.properties` would be: the metadata quorum elects a
//! leader, every broker registers and is listed, a killed leader is replaced
//! in a later term and fenced, and a restarted node rejoins.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{
    ApiKey, DescribeClusterRequest, DescribeClusterResponse, DescribeQuorumRequest, DescribeQuorumResponse,
    MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::common::net::Network;
use crate::common::{fresh_data_dir, sluice_bin, wait_until, Broker, Raw};

/// Short sessions, so that a dead broker is fenced within the test.
const SESSION_MS: u64 = 3_000;

/// A port no one listens on now, below the kernel's ephemeral range (as a
/// deployment's ports are), so that no outgoing connection takes it while
/// its node is down for a restart. The listeners' ports must be known before
/// any node starts: each names all the voters.
fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 500) as u16 * 20;
    loop {
        let port = base + NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 10_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

struct Node {
    id: i32,
    config: PathBuf,
    data_dir: PathBuf,
    broker: Option<Broker>,
    /// `--shards` (1 unless a test wants more).
    shards: usize,
}

impl Node {
    fn start(&mut self) {
        let mut command = Command::new(sluice_bin());
        command.arg("serve").arg("--config").arg(&self.config).args(["--shards", &self.shards.to_string()]);
        // Beside the config, off the data's file system (a test may fill that).
        let log_path = self.config.with_extension(format!(
            "{}.log",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
        self.broker = Some(Broker::launch(command, None, self.data_dir.clone(), log_path, Duration::from_secs(30)));
    }

    fn bootstrap(&self) -> String {
        self.broker.as_ref().expect("running").bootstrap()
    }

    /// Keeps the node's data on `disk` (set before it starts), so a test can fill it up.
    fn keep_data_on(&mut self, disk: &crate::common::SmallDisk) {
        let dir = disk.mount.join(format!("node{}", self.id));
        let text = std::fs::read_to_string(&self.config).unwrap();
        let moved =
            text.replace(&format!("log.dirs={}", self.data_dir.display()), &format!("log.dirs={}", dir.display()));
        assert_ne!(moved, text);
        std::fs::write(&self.config, moved).unwrap();
        self.data_dir = dir;
    }
}

/// Three nodes, each a voter and a broker, with a PLAINTEXT and a CONTROLLER
/// listener on ports fixed for its life (a restarted broker is where it was).
fn cluster(name: &str) -> (Vec<Node>, Vec<u16>) {
    let (nodes, controller_ports, _) = cluster_with(name, false);
    (nodes, controller_ports)
}

/// [`cluster`], and when `proxied`, the nodes reach each other's controller
/// listeners only through a [`Network`] that can cut them apart: each
/// node's voter address is its proxy, which forwards to its listener.
fn cluster_with(name: &str, proxied: bool) -> (Vec<Node>, Vec<u16>, Option<Network>) {
    let controller_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let listener_ports: Vec<u16> =
        if proxied { (0..3).map(|_| free_port()).collect() } else { controller_ports.clone() };
    let network = proxied.then(|| {
        let links: Vec<(i32, u16, u16)> =
            (0..3).map(|i| (i as i32 + 1, controller_ports[i], listener_ports[i])).collect();
        Network::start(&links)
    });
    let voters: Vec<String> =
        controller_ports.iter().enumerate().map(|(i, port)| format!("{}@127.0.0.1:{port}", i + 1)).collect();
    let nodes = (1..=3)
        .map(|id| {
            let data_dir = fresh_data_dir(&format!("{name}-node{id}"));
            let config = data_dir.with_extension("properties");
            let text = format!(
                "process.roles=broker,controller\n\
                 node.id={id}\n\
                 controller.quorum.voters={}\n\
                 listeners=PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}\n\
                 controller.listener.names=CONTROLLER\n\
                 listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
                 log.dirs={}\n\
                 broker.session.timeout.ms={SESSION_MS}\n\
                 broker.heartbeat.interval.ms=500\n\
                 admin.listeners=127.0.0.1:0\n\
                 schema.registry.listeners=127.0.0.1:0\n",
                voters.join(","),
                free_port(),
                listener_ports[id as usize - 1],
                data_dir.display(),
            );
            std::fs::write(&config, text).unwrap();
            Node { id, config, data_dir, broker: None, shards: 1 }
        })
        .collect();
    (nodes, controller_ports, network)
}

/// A broker that is not a voter (`process.roles=broker`), added to the
/// cluster of `voters` (a running node's config names them) as node `id`.
fn broker_alone(name: &str, id: i32, voters: &Node) -> Node {
    let voters_line = std::fs::read_to_string(&voters.config)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("controller.quorum.voters="))
        .unwrap()
        .to_string();
    let data_dir = fresh_data_dir(&format!("{name}-node{id}"));
    let config = data_dir.with_extension("properties");
    let text = format!(
        "process.roles=broker\n\
         node.id={id}\n\
         {voters_line}\n\
         listeners=PLAINTEXT://127.0.0.1:{}\n\
         controller.listener.names=CONTROLLER\n\
         listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
         log.dirs={}\n\
         broker.session.timeout.ms={SESSION_MS}\n\
         broker.heartbeat.interval.ms=500\n\
         admin.listeners=127.0.0.1:0\n\
         schema.registry.listeners=127.0.0.1:0\n",
        free_port(),
        data_dir.display(),
    );
    std::fs::write(&config, text).unwrap();
    Node { id, config, data_dir, broker: None, shards: 1 }
}

/// Starts every node and waits until all three agree on the brokers and
/// the controller; returns the controller.
fn start_all(nodes: &mut [Node]) -> i32 {
    for node in nodes.iter_mut() {
        node.start();
    }
    wait_for_agreement(nodes, &[1, 2, 3], Duration::from_secs(30))
}

fn metadata(address: &str) -> Option<MetadataResponse> {
    let stream = std::net::TcpStream::connect(address).ok()?;
    drop(stream);
    Some(Raw::connect_to(address).call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None)))
}

/// (broker ids listed, controller id) as `address` answers Metadata.
fn view(address: &str) -> Option<(Vec<i32>, i32)> {
    let m = metadata(address)?;
    let mut ids: Vec<i32> = m.brokers.iter().map(|b| b.node_id.0).collect();
    ids.sort();
    Some((ids, m.controller_id.0))
}

fn describe_quorum(address: &str) -> DescribeQuorumResponse {
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    Raw::connect_to(address).call(ApiKey::DescribeQuorum, 2, &request)
}

/// Waits until every running node lists `ids` and names the same controller; returns it.
fn wait_for_agreement(nodes: &[Node], ids: &[i32], within: Duration) -> i32 {
    let deadline = Instant::now() + within;
    loop {
        let views: Vec<Option<(Vec<i32>, i32)>> =
            nodes.iter().filter(|n| n.broker.is_some()).map(|n| view(&n.bootstrap())).collect();
        if let Some(Some((first_ids, controller))) = views.first() {
            if first_ids == ids
                && *controller >= 1
                && views.iter().all(|v| v.as_ref() == Some(&(ids.to_vec(), *controller)))
            {
                return *controller;
            }
        }
        assert!(Instant::now() < deadline, "nodes do not agree on brokers {ids:?}: {views:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn three_nodes_elect_a_controller_register_fence_the_dead_and_take_back_the_restarted() {
    let (mut nodes, controller_ports) = cluster("quorum");
    let leader = start_all(&mut nodes);

    // Every broker answers with the same cluster id, and lists the others at their PLAINTEXT listeners.
    let answers: Vec<MetadataResponse> = nodes.iter().map(|n| metadata(&n.bootstrap()).unwrap()).collect();
    let cluster_id = answers[0].cluster_id.clone().unwrap();
    assert!(answers.iter().all(|m| m.cluster_id.as_ref() == Some(&cluster_id)), "{answers:?}");
    for node in &nodes {
        let port = node.bootstrap().rsplit_once(':').unwrap().1.parse::<i32>().unwrap();
        let listed = answers[0].brokers.iter().find(|b| b.node_id.0 == node.id).unwrap();
        assert_eq!((listed.host.as_str(), listed.port), ("127.0.0.1", port));
    }

    // DescribeQuorum at the leader's controller listener (a Kafka client of that listener).
    let leader_controller = format!("127.0.0.1:{}", controller_ports[leader as usize - 1]);
    wait_until("every voter has the leader's log", Duration::from_secs(10), || {
        let q = describe_quorum(&leader_controller);
        let p = &q.topics[0].partitions[0];
        p.current_voters.len() == 3 && p.current_voters.iter().all(|v| v.log_end_offset == p.high_watermark)
    });
    let q = describe_quorum(&leader_controller);
    let p = &q.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!(p.leader_id.0, leader);
    let first_term = p.leader_epoch;
    assert!(first_term >= 1, "{p:?}");
    assert!(p.high_watermark >= 3, "three registrations committed: {p:?}");
    assert_eq!(q.nodes.len(), 3);
    let mut voter_ports: Vec<u16> = q.nodes.iter().map(|n| n.listeners[0].port).collect();
    voter_ports.sort();
    let mut expected_ports = controller_ports.clone();
    expected_ports.sort();
    assert_eq!(voter_ports, expected_ports);
    // A follower names the same leader and term.
    let follower = nodes.iter().find(|n| n.id != leader).unwrap();
    let fq = describe_quorum(&follower.bootstrap());
    assert_eq!(fq.topics[0].partitions[0].leader_id.0, leader);
    assert_eq!(fq.topics[0].partitions[0].leader_epoch, first_term);

    // DescribeCluster: the controllers are the voters.
    let dc: DescribeClusterResponse = Raw::connect_to(&follower.bootstrap()).call(
        ApiKey::DescribeCluster,
        1,
        &DescribeClusterRequest::default().with_endpoint_type(2),
    );
    assert_eq!(dc.controller_id.0, leader);
    assert_eq!(dc.brokers.len(), 3);

    // kill -9 the leader: the others elect a new one in a later term and fence the dead broker.
    let killed = nodes.iter_mut().find(|n| n.id == leader).unwrap();
    killed.broker.take().unwrap().kill();
    let survivors: Vec<i32> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    let new_leader = wait_for_agreement(&nodes, &survivors, Duration::from_secs(30));
    assert_ne!(new_leader, leader);
    let address = nodes.iter().find(|n| n.id == new_leader).unwrap().bootstrap();
    let q = describe_quorum(&address);
    assert!(q.topics[0].partitions[0].leader_epoch > first_term, "{q:?}");
    // DescribeCluster with include_fenced_brokers lists the dead broker as fenced.
    let dc: DescribeClusterResponse = Raw::connect_to(&address).call(
        ApiKey::DescribeCluster,
        2,
        &DescribeClusterRequest::default().with_endpoint_type(1).with_include_fenced_brokers(true),
    );
    let dead = dc.brokers.iter().find(|b| b.broker_id.0 == leader).expect("the fenced broker is still registered");
    assert!(dead.is_fenced);

    // Restarted on its data dir, it rejoins, registers again and is listed.
    nodes.iter_mut().find(|n| n.id == leader).unwrap().start();
    let after = wait_for_agreement(&nodes, &[1, 2, 3], Duration::from_secs(30));
    assert_eq!(after, new_leader, "pre-vote: the restarted node does not depose the leader");
    let rejoined = nodes.iter().find(|n| n.id == leader).unwrap();
    assert_eq!(metadata(&rejoined.bootstrap()).unwrap().cluster_id, Some(cluster_id));
}

#[test]
fn a_data_dir_of_another_cluster_is_refused() {
    // A single node made this data dir; a cluster node may not take it over.
    let single = Broker::start("cluster-foreign", 1, &[]);
    let data_dir = single.stop();
    let port = free_port();
    let config = data_dir.with_extension("properties");
    std::fs::write(
        &config,
        format!(
            "process.roles=broker,controller\nnode.id=1\ncontroller.quorum.voters=1@127.0.0.1:{port}\n\
             listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{port}\ncontroller.listener.names=CONTROLLER\n\
             listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\nlog.dirs={}\n",
            data_dir.display()
        ),
    )
    .unwrap();
    let out = Command::new(sluice_bin()).arg("serve").arg("--config").arg(&config).output().unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("belongs to cluster"), "{text}");
}

#[test]
fn a_single_voter_cluster_serves_clients_at_once() {
    let port = free_port();
    let data_dir = fresh_data_dir("cluster-one");
    let config = data_dir.with_extension("properties");
    std::fs::write(
        &config,
        format!(
            "process.roles=broker,controller\nnode.id=1\ncontroller.quorum.voters=1@127.0.0.1:{port}\n\
             listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{port}\ncontroller.listener.names=CONTROLLER\n\
             listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\nlog.dirs={}\n",
            data_dir.display()
        ),
    )
    .unwrap();
    let mut node = Node { id: 1, config, data_dir, broker: None, shards: 1 };
    node.start();
    let nodes = vec![node];
    assert_eq!(wait_for_agreement(&nodes, &[1], Duration::from_secs(10)), 1);
}

/// Waits until `address` lists every broker in `ids`.
fn wait_for_brokers(address: &str, ids: &[i32]) {
    wait_until("the brokers are listed", Duration::from_secs(30), || {
        view(address).is_some_and(|(l, c)| l == ids && c >= 1)
    });
}

#[test]
fn topics_are_placed_across_the_brokers_and_clients_follow_the_leaders() {
    use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;

    use crate::common::kafka;

    let (mut nodes, _) = cluster("topics");
    start_all(&mut nodes);
    let runtime = tokio::runtime::Runtime::new().unwrap();

    // Created through one broker, the topic is known to every broker with the same id and leaders.
    let admin = kafka::admin(&nodes[1].bootstrap());
    let created = runtime
        .block_on(admin.create_topics(&[NewTopic::new("spread", 6, TopicReplication::Fixed(1))], &AdminOptions::new()))
        .unwrap();
    assert!(created[0].is_ok(), "{created:?}");
    let knows = |address: &str, topic: &str| {
        metadata(address)
            .is_some_and(|m| m.topics.iter().any(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic)))
    };
    // The creating broker answered once it had the topic; the others apply the log soon after.
    wait_until("every broker knows the topic", Duration::from_secs(10), || {
        nodes.iter().all(|n| knows(&n.bootstrap(), "spread"))
    });
    let answers: Vec<MetadataResponse> = nodes.iter().map(|n| metadata(&n.bootstrap()).unwrap()).collect();
    let leaders: Vec<Vec<i32>> = answers
        .iter()
        .map(|m| {
            let t = m.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "spread")).unwrap();
            t.partitions.iter().map(|p| p.leader_id.0).collect()
        })
        .collect();
    assert!(leaders.iter().all(|l| *l == leaders[0]), "every broker tells the same leaders: {leaders:?}");
    let mut leading: Vec<i32> = leaders[0].clone();
    leading.sort();
    leading.dedup();
    assert_eq!(leading, vec![1, 2, 3], "six partitions over three brokers: {leaders:?}");
    let ids: Vec<_> = answers
        .iter()
        .map(|m| m.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "spread")).unwrap().topic_id)
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]));

    // Creating it again through another broker: TOPIC_ALREADY_EXISTS. Three
    // replicas on three brokers are placed; four are refused, with the reason.
    let admin3 = kafka::admin(&nodes[2].bootstrap());
    let again = runtime
        .block_on(admin3.create_topics(
            &[
                NewTopic::new("spread", 2, TopicReplication::Fixed(1)),
                NewTopic::new("replicated", 2, TopicReplication::Fixed(3)),
                NewTopic::new("too-many", 2, TopicReplication::Fixed(4)),
            ],
            &AdminOptions::new(),
        ))
        .unwrap();
    let codes: Vec<String> = again.iter().map(|r| format!("{:?}", r.as_ref().err().map(|(_, code)| code))).collect();
    assert_eq!(codes, vec!["Some(TopicAlreadyExists)", "None", "Some(InvalidReplicationFactor)"], "{again:?}");

    // A producer bootstrapped at one broker writes every partition at its leader.
    let producer = kafka::producer(&nodes[2].bootstrap(), &[("enable.idempotence", "true")]);
    let records = (0..600).map(|i| kafka::Record::new(format!("v{i}")).key(format!("k{i}")));
    let acked = runtime.block_on(kafka::produce(&producer, "spread", records));
    let mut per_partition = [0usize; 6];
    for (p, _) in &acked {
        per_partition[*p as usize] += 1;
    }
    assert!(per_partition.iter().all(|n| *n > 0), "{per_partition:?}");

    // A Produce sent to a broker that does not lead the partition: NOT_LEADER_OR_FOLLOWER.
    let not_leader = (1..=3).find(|id| *id != leaders[0][0]).unwrap();
    let address = nodes.iter().find(|n| n.id == not_leader).unwrap().bootstrap();
    let (code, _) = Raw::connect_to(&address).produce("spread", 0, crate::common::record_batch(&[b"x"], 0));
    assert_eq!(code, 6, "NOT_LEADER_OR_FOLLOWER");

    // A consumer group bootstrapped at another broker reads all 600 once,
    // its coordinator found wherever the cluster puts it.
    let config =
        kafka::consumer_config(&nodes[0].bootstrap(), "spread-readers").set("auto.offset.reset", "earliest").clone();
    let consumer: BaseConsumer = config.create().unwrap();
    consumer.subscribe(&["spread"]).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < 600 {
        assert!(Instant::now() < deadline, "read {} of 600", seen.len());
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                assert!(seen.insert(kafka::value(&m)), "read twice: {}", kafka::value(&m));
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None => {}
        }
    }
    consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync).unwrap();

    // Deleted through a third broker, it is gone from all.
    let deleted =
        runtime.block_on(kafka::admin(&nodes[0].bootstrap()).delete_topics(&["spread"], &AdminOptions::new())).unwrap();
    assert!(deleted[0].is_ok(), "{deleted:?}");
    assert!(!knows(&nodes[0].bootstrap(), "spread"), "gone from the broker that deleted it when it answered");
    wait_until("every broker forgets the topic", Duration::from_secs(10), || {
        nodes.iter().all(|n| !knows(&n.bootstrap(), "spread"))
    });

    // Restarted, a broker keeps the cluster's topics and its partitions' records.
    runtime.block_on(kafka::produce(&producer, "kept", (0..30).map(|i| kafka::Record::new(format!("r{i}")))));
    let restarted = &mut nodes[1];
    restarted.broker.take().unwrap().stop();
    restarted.start();
    wait_for_brokers(&nodes[1].bootstrap(), &[1, 2, 3]);
    let consumer_config = kafka::consumer_config(&nodes[1].bootstrap(), "kept-readers");
    let read = kafka::consume_to_end(&consumer_config, "kept", 1, Duration::from_secs(30));
    let values: Vec<String> = read.iter().map(kafka::value).collect();
    assert_eq!(values, (0..30).map(|i| format!("r{i}")).collect::<Vec<_>>());
    assert_eq!(read.last().map(|m| m.offset()), Some(29));
}

#[test]
fn admin_changes_made_at_one_broker_reach_every_broker() {
    use kafka_protocol::messages::create_acls_request::AclCreation;
    use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse, DescribeAclsRequest, DescribeAclsResponse};
    use rdkafka::admin::{AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication};

    use crate::common::kafka;

    let (mut nodes, _) = cluster("admin");
    start_all(&mut nodes);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let options = AdminOptions::new();
    let partitions_of = |address: &str| {
        metadata(address).and_then(|m| {
            let t = m.topics.into_iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "grown"))?;
            Some(t.partitions.iter().map(|p| p.leader_id.0).collect::<Vec<_>>())
        })
    };

    // Created at node 1, grown at node 2: every broker sees five partitions and the same leaders.
    let created = runtime
        .block_on(
            kafka::admin(&nodes[0].bootstrap())
                .create_topics(&[NewTopic::new("grown", 2, TopicReplication::Fixed(1))], &options),
        )
        .unwrap();
    assert!(created[0].is_ok(), "{created:?}");
    wait_until("node 2 knows the topic", Duration::from_secs(10), || partitions_of(&nodes[1].bootstrap()).is_some());
    let grown = runtime
        .block_on(kafka::admin(&nodes[1].bootstrap()).create_partitions(&[NewPartitions::new("grown", 5)], &options))
        .unwrap();
    assert!(grown[0].is_ok(), "{grown:?}");
    wait_until("every broker sees five partitions", Duration::from_secs(10), || {
        let all: Vec<_> = nodes.iter().map(|n| partitions_of(&n.bootstrap())).collect();
        all.iter().all(|p| p.as_ref().is_some_and(|p| p.len() == 5) && *p == all[0])
    });
    let shrunk = runtime
        .block_on(kafka::admin(&nodes[2].bootstrap()).create_partitions(&[NewPartitions::new("grown", 3)], &options))
        .unwrap();
    assert_eq!(format!("{:?}", shrunk[0].as_ref().unwrap_err().1), "InvalidPartitions");

    // A topic config altered at node 3 is what node 1 describes.
    let altered = runtime
        .block_on(kafka::admin(&nodes[2].bootstrap()).alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic("grown")).set("retention.ms", "3600000")],
            &options,
        ))
        .unwrap();
    assert!(altered[0].is_ok(), "{altered:?}");
    wait_until("node 1 describes the altered config", Duration::from_secs(10), || {
        let described = runtime
            .block_on(
                kafka::admin(&nodes[0].bootstrap()).describe_configs(&[ResourceSpecifier::Topic("grown")], &options),
            )
            .unwrap();
        let resource = described[0].as_ref().unwrap();
        resource.get("retention.ms").and_then(|e| e.value.clone()).as_deref() == Some("3600000")
    });

    // An ACL created at node 1 is listed by node 2.
    let allow = AclCreation::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_static_str("grown"))
        .with_resource_pattern_type(3)
        .with_principal(StrBytes::from_static_str("User:alice"))
        .with_host(StrBytes::from_static_str("*"))
        .with_operation(3)
        .with_permission_type(3);
    let acl: CreateAclsResponse = Raw::connect_to(&nodes[0].bootstrap()).call(
        ApiKey::CreateAcls,
        3,
        &CreateAclsRequest::default().with_creations(vec![allow]),
    );
    assert_eq!(acl.results[0].error_code, 0, "{acl:?}");
    wait_until("node 2 lists the ACL", Duration::from_secs(10), || {
        let listed: DescribeAclsResponse = Raw::connect_to(&nodes[1].bootstrap()).call(
            ApiKey::DescribeAcls,
            3,
            &DescribeAclsRequest::default()
                .with_resource_name_filter(None)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1),
        );
        listed.resources.iter().any(|r| r.resource_name.as_str() == "grown")
    });

    // What each node still keeps alone is refused, with the reason, rather than changed on one broker.
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(4)
        .with_resource_name(StrBytes::from_static_str("1"))
        .with_configs(vec![AlterableConfig::default()
            .with_name(StrBytes::from_static_str("log.retention.ms"))
            .with_config_operation(0)
            .with_value(Some(StrBytes::from_static_str("1000")))])]);
    let answer: IncrementalAlterConfigsResponse =
        Raw::connect_to(&nodes[0].bootstrap()).call(ApiKey::IncrementalAlterConfigs, 1, &request);
    let result = &answer.responses[0];
    assert_eq!(result.error_code, 42, "INVALID_REQUEST: {answer:?}");
    assert!(result.error_message.as_ref().is_some_and(|m| m.contains("do not yet share dynamic broker configs")));
}

/// The client port of node `id` in `config/cluster/`.
fn client_port(id: u16) -> u16 {
    [19092, 29092, 30092, 31092][id as usize - 1]
}

#[test]
fn the_readme_cluster_starts_from_its_config_files() {
    // The README's three commands, each run in a directory of its own (the
    // files keep data under ./data/node<id>), with the files as shipped;
    // then its fourth, which adds a broker.
    let repository = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut brokers = Vec::new();
    let mut bootstraps = Vec::new();
    for id in 1..=4 {
        let cwd = fresh_data_dir(&format!("readme-cluster-{id}"));
        std::fs::create_dir_all(&cwd).unwrap();
        let file = if id == 4 { "broker4.properties".to_string() } else { format!("node{id}.properties") };
        let mut command = Command::new(sluice_bin());
        command.current_dir(&cwd).arg("serve").arg("--config").arg(repository.join("config/cluster").join(file));
        let log_path = cwd.with_extension("log");
        brokers.push(Broker::launch(
            command,
            Some(client_port(id)),
            cwd.join(format!("data/node{id}")),
            log_path,
            Duration::from_secs(30),
        ));
        bootstraps.push(format!("127.0.0.1:{}", client_port(id)));
    }
    for address in &bootstraps {
        wait_for_brokers(address, &[1, 2, 3, 4]);
    }
    let listed = metadata(&bootstraps[0]).unwrap();
    let mut ports: Vec<i32> = listed.brokers.iter().map(|b| b.port).collect();
    ports.sort();
    assert_eq!(ports, vec![19092, 29092, 30092, 31092]);
    assert!(brokers[0].data_dir.join("__cluster_metadata-0/log").exists(), "data under ./data/node1");
    assert!(brokers[3].data_dir.exists(), "data under ./data/node4");
    assert!(!brokers[3].data_dir.join("__cluster_metadata-0").exists(), "a broker alone keeps no quorum log");
}

#[test]
fn while_a_broker_is_down_its_partitions_are_offline_and_the_others_serve() {
    use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};

    use crate::common::kafka;

    let (mut nodes, _) = cluster("offline");
    start_all(&mut nodes);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let created = runtime
        .block_on(
            kafka::admin(&nodes[0].bootstrap())
                .create_topics(&[NewTopic::new("halves", 3, TopicReplication::Fixed(1))], &AdminOptions::new()),
        )
        .unwrap();
    assert!(created[0].is_ok(), "{created:?}");
    let leaders = |address: &str| {
        metadata(address).and_then(|m| {
            let t = m.topics.into_iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "halves"))?;
            Some(t.partitions.iter().map(|p| (p.leader_id.0, p.error_code)).collect::<Vec<_>>())
        })
    };
    wait_until("every broker knows the topic", Duration::from_secs(10), || {
        nodes.iter().all(|n| leaders(&n.bootstrap()).is_some())
    });
    let before = leaders(&nodes[0].bootstrap()).unwrap();
    assert_eq!(before.iter().map(|(l, _)| *l).collect::<std::collections::BTreeSet<_>>().len(), 3, "{before:?}");

    // Node 3 dies: once fenced, its partition has no leader (LEADER_NOT_AVAILABLE), the others keep theirs.
    nodes[2].broker.take().unwrap().kill();
    let dead_partition = before.iter().position(|(l, _)| *l == 3).unwrap() as i32;
    wait_until("the dead broker's partition is offline", Duration::from_secs(30), || {
        leaders(&nodes[0].bootstrap()).is_some_and(|l| l[dead_partition as usize] == (-1, 5))
    });
    let now = leaders(&nodes[1].bootstrap()).unwrap();
    for (p, (leader, code)) in now.iter().enumerate() {
        if p as i32 != dead_partition {
            assert_eq!((*leader, *code), (before[p].0, 0), "partition {p} keeps its leader: {now:?}");
        }
    }
    // The live partitions take records meanwhile.
    let producer = kafka::producer(&nodes[0].bootstrap(), &[("message.timeout.ms", "10000")]);
    for p in (0..3).filter(|p| *p != dead_partition) {
        let acked = runtime.block_on(kafka::produce(
            &producer,
            "halves",
            (0..10).map(|i| kafka::Record::new(format!("v{i}")).partition(p)),
        ));
        assert_eq!(acked.len(), 10);
    }

    // Back, it leads its partition again and serves the records it had.
    nodes[2].start();
    wait_until("the partition is back", Duration::from_secs(30), || {
        leaders(&nodes[0].bootstrap()).is_some_and(|l| l[dead_partition as usize] == (3, 0))
    });
    let acked = runtime.block_on(kafka::produce(
        &producer,
        "halves",
        (0..10).map(|i| kafka::Record::new(format!("late{i}")).partition(dead_partition)),
    ));
    assert_eq!(acked.len(), 10);
}

/// Runs one of Kafka's tools (by main class) against `bootstrap_flag address`; its output, which must be a success.
fn kafka_tool(class: &str, bootstrap_flag: &str, address: &str, args: &[&str]) -> String {
    let output = Command::new("java")
        .args(["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"])
        .arg("-cp")
        .arg(crate::common::clients::kafka_tools_classpath().trim())
        .arg(class)
        .args([bootstrap_flag, address])
        .args(args)
        .output()
        .expect("run java");
    let text = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{class} {args:?} failed:\n{text}");
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[test]
fn kafka_tools_create_and_describe_topics_and_describe_the_quorum_of_a_cluster() {
    const TOPICS: &str = "org.apache.kafka.tools.TopicCommand";
    const QUORUM: &str = "org.apache.kafka.tools.MetadataQuorumCommand";
    let (mut nodes, controller_ports) = cluster("tools");
    let leader = start_all(&mut nodes);

    let created = kafka_tool(
        TOPICS,
        "--bootstrap-server",
        &nodes[0].bootstrap(),
        &["--create", "--topic", "by-tools", "--partitions", "3", "--replication-factor", "1"],
    );
    assert!(created.contains("Created topic by-tools."), "{created}");
    wait_until("node 2 knows the topic", Duration::from_secs(10), || {
        metadata(&nodes[1].bootstrap())
            .is_some_and(|m| m.topics.iter().any(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "by-tools")))
    });
    let described =
        kafka_tool(TOPICS, "--bootstrap-server", &nodes[1].bootstrap(), &["--describe", "--topic", "by-tools"]);
    let mut leaders = std::collections::BTreeSet::new();
    for line in described.lines().filter(|l| l.contains("Partition: ")) {
        let field = |name: &str| {
            line.split(&format!("{name}: ")).nth(1).unwrap().split_whitespace().next().unwrap().to_string()
        };
        assert_eq!(field("Leader"), field("Replicas"), "{described}");
        assert_eq!(field("Leader"), field("Isr"), "{described}");
        leaders.insert(field("Leader"));
    }
    assert_eq!(leaders.into_iter().collect::<Vec<_>>(), ["1", "2", "3"], "{described}");

    // The quorum through any broker, and through a controller listener.
    let status_value = |status: &str, label: &str| {
        let line = status.lines().find(|l| l.starts_with(&format!("{label}:"))).unwrap_or_else(|| panic!("{status}"));
        line[label.len() + 1..].trim().to_string()
    };
    let status = kafka_tool(QUORUM, "--bootstrap-server", &nodes[2].bootstrap(), &["describe", "--status"]);
    assert_eq!(status_value(&status, "LeaderId"), leader.to_string(), "{status}");
    let voters = status_value(&status, "CurrentVoters");
    for port in &controller_ports {
        assert!(voters.contains(&format!("CONTROLLER://127.0.0.1:{port}")), "{status}");
    }
    let controller = format!("127.0.0.1:{}", controller_ports[leader as usize - 1]);
    let replication = kafka_tool(QUORUM, "--bootstrap-controller", &controller, &["describe", "--replication"]);
    let rows: Vec<&str> = replication.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "three voters:\n{replication}");
    let leader_text = leader.to_string();
    assert!(
        rows.iter().any(|r| {
            let words: Vec<&str> = r.split_whitespace().collect();
            words.first() == Some(&leader_text.as_str()) && words.last() == Some(&"Leader")
        }),
        "{replication}"
    );
}

/// CreateTopics of one topic at `address`, without waiting past `timeout`:
/// whether the broker acknowledged it (error NONE, or TOPIC_ALREADY_EXISTS
/// for a name only this test creates), or `None` when it did
/// not answer (stopped, unreachable, or slower than the timeout).
fn try_create(address: &str, topic: &str, timeout: Duration) -> Option<bool> {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
    let stream = std::net::TcpStream::connect_timeout(&address.parse().ok()?, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    drop(stream);
    let result = std::panic::catch_unwind(|| {
        let mut raw = Raw::connect_to(address);
        raw.stream.set_read_timeout(Some(timeout)).unwrap();
        let request = CreateTopicsRequest::default().with_timeout_ms(timeout.as_millis() as i32).with_topics(vec![
            CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_num_partitions(1)
                .with_replication_factor(-1),
        ]);
        let response: CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &request);
        response.topics[0].error_code
    });
    // TOPIC_ALREADY_EXISTS (36) after NOT_CONTROLLER or a timeout: an earlier
    // attempt was committed after all (each cycle's name is its own).
    result.ok().map(|code| code == 0 || code == 36)
}

/// The topic names `address` lists.
fn topic_names(address: &str) -> Option<std::collections::BTreeSet<String>> {
    let m = metadata(address)?;
    Some(m.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect())
}

/// Faults against the metadata quorum: each cycle kills -9, stops
/// (SIGSTOP) or cuts off from the others (a network partition) the leader
/// or a follower, creates a topic through a broker on the majority side
/// until one is acknowledged, and heals. At the end every broker must list
/// every acknowledged topic with the same id: no acknowledged metadata
/// change is lost or differs between brokers.
/// `SLUICE_CLUSTER_FAULT_CYCLES` (default 6) sets the number of cycles.
#[test]
fn metadata_changes_acknowledged_under_kills_pauses_and_partitions_are_never_lost() {
    let cycles: usize = std::env::var("SLUICE_CLUSTER_FAULT_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(6);
    let (mut nodes, _, network) = cluster_with("faults", true);
    let network = network.expect("proxied");
    start_all(&mut nodes);
    let mut acknowledged = Vec::new();
    let mut recovery_ms = Vec::new();
    for cycle in 0..cycles {
        let leader = wait_for_agreement(&nodes, &[1, 2, 3], Duration::from_secs(60));
        let target = match cycle % 4 {
            0 | 2 => leader,
            _ => (1..=3).find(|id| *id != leader).unwrap(),
        };
        let fault = match cycle % 6 {
            0 | 1 => Fault::Kill,
            2 | 3 => Fault::Pause,
            _ => Fault::Isolate,
        };
        eprintln!("cycle {cycle}: {fault:?} broker {target}");
        let victim = nodes.iter_mut().find(|n| n.id == target).unwrap();
        let pid = victim.broker.as_ref().unwrap().pid() as i32;
        let faulted = Instant::now();
        match fault {
            Fault::Pause => {
                // SAFETY: signalling our own child process.
                unsafe { libc::kill(pid, libc::SIGSTOP) };
            }
            Fault::Kill => {
                victim.broker.take().unwrap().kill();
            }
            Fault::Isolate => network.isolate(target, &(1..=3).filter(|id| *id != target).collect::<Vec<_>>()),
            Fault::FillDisk => unreachable!("this nemesis fills no disk"),
        };
        // A topic through a broker that is up, until one is acknowledged.
        let topic = format!("fault-{cycle}");
        let survivors: Vec<String> = nodes.iter().filter(|n| n.id != target).map(|n| n.bootstrap()).collect();
        let mut attempt = 0;
        loop {
            let address = &survivors[attempt % survivors.len()];
            if try_create(address, &topic, Duration::from_secs(20)) == Some(true) {
                break;
            }
            attempt += 1;
            assert!(faulted.elapsed() < Duration::from_secs(60), "no topic acknowledged within 60 s of the fault");
            std::thread::sleep(Duration::from_millis(50));
        }
        recovery_ms.push(faulted.elapsed().as_millis() as u64);
        if fault == Fault::Isolate {
            let cut_off = nodes.iter().find(|n| n.id == target).unwrap().bootstrap();
            let known = topic_names(&cut_off).expect("clients still reach the isolated broker");
            assert!(!known.contains(&topic), "the isolated broker cannot have learned {topic}");
        }
        acknowledged.push(topic);
        let victim = nodes.iter_mut().find(|n| n.id == target).unwrap();
        match fault {
            Fault::Pause => {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGCONT) };
            }
            Fault::Kill => victim.start(),
            Fault::Isolate => network.heal(),
            Fault::FillDisk => unreachable!("this nemesis fills no disk"),
        };
    }
    wait_for_agreement(&nodes, &[1, 2, 3], Duration::from_secs(60));
    wait_until("every broker lists every acknowledged topic", Duration::from_secs(30), || {
        nodes.iter().all(|n| topic_names(&n.bootstrap()).is_some_and(|t| acknowledged.iter().all(|a| t.contains(a))))
    });
    let ids: Vec<Vec<(String, uuid::Uuid)>> = nodes
        .iter()
        .map(|n| {
            let m = metadata(&n.bootstrap()).unwrap();
            let mut ids: Vec<_> =
                m.topics.iter().map(|t| (t.name.as_ref().unwrap().0.to_string(), t.topic_id)).collect();
            ids.sort();
            ids
        })
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "brokers differ: {ids:?}");
    recovery_ms.sort();
    eprintln!(
        "{cycles} fault cycles: every acknowledged topic on every broker; fault to acknowledged change: \
         median {} ms, max {} ms",
        recovery_ms[recovery_ms.len() / 2],
        recovery_ms[recovery_ms.len() - 1]
    );
}

/// One partition as Metadata tells it: (leader, replicas, in-sync replicas sorted).
type Replicas = (i32, Vec<i32>, Vec<i32>);

/// Each partition of `topic` as `address` tells it.
fn replicas_of(address: &str, topic: &str) -> Option<Vec<Replicas>> {
    let m = metadata(address)?;
    let t = m.topics.into_iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))?;
    let mut partitions: Vec<_> = t
        .partitions
        .iter()
        .map(|p| {
            let mut isr: Vec<i32> = p.isr_nodes.iter().map(|b| b.0).collect();
            isr.sort();
            (p.partition_index, (p.leader_id.0, p.replica_nodes.iter().map(|b| b.0).collect(), isr))
        })
        .collect();
    partitions.sort_by_key(|(p, _)| *p);
    Some(partitions.into_iter().map(|(_, r)| r).collect())
}

/// Starts a three-node cluster and creates `topic` with `partitions`
/// partitions, replication factor 3 and `min.insync.replicas=2`; returns
/// once every broker shows each partition led with three in-sync replicas.
fn replicated_cluster(name: &str, topic: &str, partitions: i32) -> (Vec<Node>, tokio::runtime::Runtime) {
    let (nodes, runtime, _, _) = replicated_cluster_with(name, topic, partitions, false, None);
    (nodes, runtime)
}

/// [`replicated_cluster`], its brokers behind a [`Network`] when `proxied`,
/// each keeping its data on a [`SmallDisk`] of its own of `disk_megabytes`
/// when given (the disks' order is the nodes').
fn replicated_cluster_with(
    name: &str,
    topic: &str,
    partitions: i32,
    proxied: bool,
    disk_megabytes: Option<u64>,
) -> (Vec<Node>, tokio::runtime::Runtime, Option<Network>, Vec<crate::common::SmallDisk>) {
    use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};

    let (mut nodes, _, network) = cluster_with(name, proxied);
    let disks: Vec<crate::common::SmallDisk> = disk_megabytes
        .map(|megabytes| {
            nodes
                .iter_mut()
                .map(|node| {
                    let disk = crate::common::SmallDisk::new(&format!("{name}-disk{}", node.id), megabytes);
                    node.keep_data_on(&disk);
                    disk
                })
                .collect()
        })
        .unwrap_or_default();
    start_all(&mut nodes);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    let admin = crate::common::kafka::admin(&nodes[0].bootstrap());
    let created = runtime.block_on(admin.create_topics(&[new], &AdminOptions::new())).unwrap();
    assert!(created[0].is_ok(), "{created:?}");
    for node in &nodes {
        wait_for_isr(&node.bootstrap(), topic, 3, Duration::from_secs(15));
    }
    (nodes, runtime, network, disks)
}

#[test]
fn replicated_partitions_keep_every_acknowledged_record_through_leader_deaths() {
    use rdkafka::admin::AdminOptions;

    use crate::common::kafka;

    let (mut nodes, runtime) = replicated_cluster("replicated", "safe", 1);
    let bootstrap: Vec<String> = nodes.iter().map(Node::bootstrap).collect();
    let producer = kafka::producer(
        &bootstrap.join(","),
        &[("enable.idempotence", "true"), ("acks", "all"), ("message.timeout.ms", "60000")],
    );
    let mut sent: Vec<String> = Vec::new();
    let produce = |sent: &mut Vec<String>, from: usize, to: usize| {
        let records = (from..to).map(|i| kafka::Record::new(format!("v{i}")));
        let acked = runtime.block_on(kafka::produce(&producer, "safe", records));
        assert_eq!(acked.len(), to - from, "every record acknowledged");
        sent.extend((from..to).map(|i| format!("v{i}")));
    };
    produce(&mut sent, 0, 500);

    // The leader dies: one of the two others leads in a later epoch, and has every acknowledged record.
    let first_leader = replicas_of(&bootstrap[0], "safe").unwrap()[0].0;
    let killed_at = Instant::now();
    nodes[first_leader as usize - 1].broker.take().unwrap().kill();
    let live = |nodes: &[Node]| nodes.iter().find(|n| n.broker.is_some()).unwrap().bootstrap();
    wait_until("another broker leads", Duration::from_secs(30), || {
        replicas_of(&live(&nodes), "safe").is_some_and(|p| p[0].0 > 0 && p[0].0 != first_leader)
    });
    produce(&mut sent, 500, 700);
    eprintln!("leader killed -> 200 more acknowledged on the new leader: {:?}", killed_at.elapsed());
    let read_all = |address: &str, group: &str| {
        let config = kafka::consumer_config(address, group);
        kafka::consume_to_end(&config, "safe", 1, Duration::from_secs(60)).iter().map(kafka::value).collect::<Vec<_>>()
    };
    assert_eq!(read_all(&live(&nodes), "after-first-death"), sent, "every acknowledged record, once, in order");

    // The old leader comes back as a follower, catches up and rejoins the in-sync replicas.
    nodes[first_leader as usize - 1].start();
    wait_until("the restarted broker is in sync again", Duration::from_secs(60), || {
        replicas_of(&live(&nodes), "safe").is_some_and(|p| p[0].2 == vec![1, 2, 3])
    });
    produce(&mut sent, 700, 800);

    // A stopped broker (SIGTERM) hands its leaderships over before it exits
    // (controlled shutdown): when its process is gone another broker
    // already leads, without waiting out the session.
    let leader = replicas_of(&live(&nodes), "safe").unwrap()[0].0;
    nodes[leader as usize - 1].broker.take().unwrap().stop();
    let after = replicas_of(&live(&nodes), "safe").unwrap()[0].clone();
    assert!(after.0 > 0 && after.0 != leader, "leadership moved before the stop ended: {after:?}");
    assert!(!after.2.contains(&leader), "the stopped broker left the in-sync set: {after:?}");
    produce(&mut sent, 800, 850);
    nodes[leader as usize - 1].start();
    wait_until("the stopped broker is in sync again", Duration::from_secs(60), || {
        replicas_of(&live(&nodes), "safe").is_some_and(|p| p[0].2 == vec![1, 2, 3])
    });

    // Now the second leader dies too: the returning broker's copy must be whole.
    let second_leader = replicas_of(&live(&nodes), "safe").unwrap()[0].0;
    nodes[second_leader as usize - 1].broker.take().unwrap().kill();
    wait_until("a third leader", Duration::from_secs(30), || {
        replicas_of(&live(&nodes), "safe").is_some_and(|p| p[0].0 > 0 && p[0].0 != second_leader)
    });
    produce(&mut sent, 850, 900);
    assert_eq!(read_all(&live(&nodes), "after-second-death"), sent, "every acknowledged record after two deaths");

    // Two in-sync replicas of three, and min.insync.replicas raised to 3:
    // acks=all is refused (NOT_ENOUGH_REPLICAS), and nothing is appended.
    wait_until("the in-sync set loses the dead broker", Duration::from_secs(30), || {
        replicas_of(&live(&nodes), "safe").is_some_and(|p| p[0].2.len() == 2)
    });
    let strict = rdkafka::admin::AlterConfig::new(rdkafka::admin::ResourceSpecifier::Topic("safe"))
        .set("min.insync.replicas", "3");
    let altered = runtime.block_on(kafka::admin(&live(&nodes)).alter_configs(&[strict], &AdminOptions::new())).unwrap();
    assert!(altered[0].is_ok(), "{altered:?}");
    let leader = replicas_of(&live(&nodes), "safe").unwrap()[0].0;
    let leader_address = nodes[leader as usize - 1].bootstrap();
    wait_until("the leader refuses acks=all", Duration::from_secs(15), || {
        let (code, _) = Raw::connect_to(&leader_address).produce("safe", 0, crate::common::record_batch(&[b"x"], 0));
        assert!(code == 19 || code == 0, "NOT_ENOUGH_REPLICAS or, before the config arrived, success: {code}");
        if code == 0 {
            sent.push("x".to_string());
        }
        code == 19
    });
    assert_eq!(read_all(&live(&nodes), "after-refusal"), sent, "a refused record is not appended");
}

/// A replica that was down while its leader deleted records it never got
/// (DeleteRecords past its log end) starts over at the leader's log start,
/// as Kafka's follower does, instead of asking for what is gone forever;
/// and the deleted records do not come back when it leads.
#[test]
fn a_follower_behind_its_leaders_log_start_starts_over_there() {
    use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
    use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

    use crate::common::kafka;

    let (mut nodes, runtime) = replicated_cluster("trimmed", "trimmed", 1);
    let bootstrap: Vec<String> = nodes.iter().map(Node::bootstrap).collect();
    let producer = kafka::producer(&bootstrap.join(","), &[("acks", "all"), ("message.timeout.ms", "60000")]);
    let produce = |from: usize, to: usize| {
        let records = (from..to).map(|i| kafka::Record::new(format!("v{i}")));
        let acked = runtime.block_on(kafka::produce(&producer, "trimmed", records));
        assert_eq!(acked.len(), to - from, "every record acknowledged");
    };
    produce(0, 100);

    // The preferred replica (the leader) goes down; the records after it are deleted up to 250.
    let (preferred, replicas, _) = replicas_of(&bootstrap[0], "trimmed").unwrap()[0].clone();
    assert_eq!(Some(&preferred), replicas.first());
    let down = preferred as usize - 1;
    nodes[down].broker.take().unwrap().kill();
    let live = nodes.iter().position(|n| n.broker.is_some()).unwrap();
    wait_until("another broker leads", Duration::from_secs(30), || {
        replicas_of(&bootstrap[live], "trimmed").is_some_and(|p| p[0].0 > 0 && p[0].0 != preferred)
    });
    produce(100, 300);
    let leader = replicas_of(&bootstrap[live], "trimmed").unwrap()[0].0;
    let request =
        DeleteRecordsRequest::default().with_timeout_ms(30_000).with_topics(vec![DeleteRecordsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("trimmed")))
            .with_partitions(vec![DeleteRecordsPartition::default().with_partition_index(0).with_offset(250)])]);
    let deleted: DeleteRecordsResponse =
        Raw::connect_to(&bootstrap[leader as usize - 1]).call(ApiKey::DeleteRecords, 2, &request);
    let deleted = &deleted.topics[0].partitions[0];
    assert_eq!((deleted.error_code, deleted.low_watermark), (0, 250), "{deleted:?}");

    // It comes back 150 records short of the leader's log start, starts over
    // there, catches up and, preferred again, leads.
    nodes[down].start();
    wait_until("the returned broker is in sync again", Duration::from_secs(60), || {
        replicas_of(&bootstrap[live], "trimmed").is_some_and(|p| p[0].2.len() == 3)
    });
    let request = kafka_protocol::messages::ElectLeadersRequest::default()
        .with_election_type(0)
        .with_topic_partitions(None)
        .with_timeout_ms(30_000);
    let elected: kafka_protocol::messages::ElectLeadersResponse =
        Raw::connect_to(&bootstrap[live]).call(ApiKey::ElectLeaders, 2, &request);
    assert_eq!(elected.error_code, 0, "{elected:?}");
    wait_until("the preferred replica leads again", Duration::from_secs(15), || {
        replicas_of(&bootstrap[down], "trimmed").is_some_and(|p| p[0].0 == preferred)
    });
    // The deleted records stay deleted (asked again while the clients learn the new leader).
    let mut watermarks = None;
    wait_until("the watermarks of the new leader", Duration::from_secs(30), || {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let consumer: BaseConsumer = kafka::client_config(&bootstrap[down], &[]).create().expect("consumer");
        watermarks = consumer.fetch_watermarks("trimmed", 0, Duration::from_secs(5)).ok();
        watermarks.is_some()
    });
    assert_eq!(watermarks, Some((250, 300)), "the deleted records stay deleted");
    let config = kafka::consumer_config(&bootstrap[down], "after-restart");
    let read: Vec<String> =
        kafka::consume_to_end(&config, "trimmed", 1, Duration::from_secs(60)).iter().map(kafka::value).collect();
    let expected: Vec<String> = (250..300).map(|i| format!("v{i}")).collect();
    assert_eq!(read, expected);
    let log = nodes[down].broker.as_ref().unwrap().log();
    assert!(log.contains("replica starting over, empty"), "the replica started over at the leader's log start");
}

/// Waits until every partition of `topic` has a leader and `isr` in-sync replicas, as `address` tells it.
fn wait_for_isr(address: &str, topic: &str, isr: usize, within: Duration) {
    wait_until(&format!("{topic}: a leader and {isr} in-sync replicas everywhere"), within, || {
        replicas_of(address, topic).is_some_and(|ps| ps.iter().all(|(l, _, i)| *l > 0 && i.len() == isr))
    });
}

/// Waits until every partition of every topic (the internal ones too) has a
/// leader and all its replicas in sync, as `address` tells it.
fn wait_for_every_replica_in_sync(address: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        // (topic, partition, leader, replicas, in-sync replicas) of those not there yet.
        let mut behind = Vec::new();
        for t in metadata(address).map(|m| m.topics).unwrap_or_default() {
            for p in &t.partitions {
                let mut isr: Vec<i32> = p.isr_nodes.iter().map(|b| b.0).collect();
                let mut replicas: Vec<i32> = p.replica_nodes.iter().map(|b| b.0).collect();
                isr.sort();
                replicas.sort();
                if p.leader_id.0 < 0 || isr != replicas {
                    behind.push((t.name.clone(), p.partition_index, p.leader_id.0, replicas, isr));
                }
            }
        }
        if behind.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "partitions not led or not all in sync within {within:?}: {behind:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// kafka-python's idempotent producer (`tests/clients/kafka_python_idempotent_producer.py`)
/// running beside the test's own: what it acknowledged, and when.
struct SecondProducer {
    child: std::process::Child,
    /// (partition, offset, value, when).
    acked: std::sync::mpsc::Receiver<(i32, i64, String, Instant)>,
    failed: std::sync::mpsc::Receiver<String>,
}

impl SecondProducer {
    fn start(bootstrap: &str, topic: &str, prefix: &str) -> SecondProducer {
        use std::io::BufRead;
        let script = format!("{}/tests/clients/kafka_python_idempotent_producer.py", env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new(crate::common::clients::python())
            .args([&script, bootstrap, topic, prefix, "3"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start kafka-python's producer");
        let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let (acked_tx, acked) = std::sync::mpsc::channel();
        let (failed_tx, failed) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("ACK ") {
                    let mut parts = rest.splitn(3, ' ');
                    let partition = parts.next().unwrap().parse().unwrap();
                    let offset = parts.next().unwrap().parse().unwrap();
                    let _ = acked_tx.send((partition, offset, parts.next().unwrap().to_string(), Instant::now()));
                } else if let Some(rest) = line.strip_prefix("FAIL ") {
                    let _ = failed_tx.send(rest.to_string());
                }
            }
        });
        SecondProducer { child, acked, failed }
    }

    /// Kills it; what it acknowledged and what it gave up on.
    #[allow(clippy::type_complexity)]
    fn stop(mut self) -> (Vec<(i32, i64, String, Instant)>, Vec<String>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(200));
        (self.acked.try_iter().collect(), self.failed.try_iter().collect())
    }
}

/// A transactional producer (librdkafka) ending transactions on `topic`
/// through the faults, one record per partition each, every fifth aborted
/// on purpose; what each transaction came to is kept for the checker.
struct TxnWriter {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<TxnHistory>,
}

/// Per partition, the values of committed transactions in order, and every aborted value.
#[derive(Default)]
struct TxnHistory {
    committed: Vec<Vec<String>>,
    aborted: Vec<String>,
}

impl TxnWriter {
    fn start(bootstrap: &str, topic: &'static str, partitions: usize) -> TxnWriter {
        use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let bootstrap = bootstrap.to_string();
        let thread = std::thread::spawn(move || {
            let settings =
                [("transactional.id", "nemesis-txn"), ("transaction.timeout.ms", "300000"), ("linger.ms", "1")];
            let producer: ThreadedProducer<DefaultProducerContext> =
                crate::common::kafka::client_config(&bootstrap, &settings).create().unwrap();
            let long = Duration::from_secs(60);
            while let TxnStep::Retry = txn_step(producer.init_transactions(long)) {}
            let mut history = TxnHistory { committed: vec![Vec::new(); partitions], aborted: Vec::new() };
            let mut n = 0usize;
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                let began = Instant::now();
                producer.begin_transaction().unwrap();
                let values: Vec<String> = (0..partitions).map(|p| format!("t{n}-{p}")).collect();
                for (p, value) in values.iter().enumerate() {
                    crate::common::kafka::send(
                        &producer,
                        BaseRecord::to(topic).payload(value.as_str()).key("k").partition(p as i32),
                    );
                }
                let mut abort = n % 5 == 4;
                if abort {
                    // The records are in the log before the abort, so a reader could see them.
                    let _ = producer.flush(long);
                }
                loop {
                    let step = if abort { producer.abort_transaction(long) } else { producer.commit_transaction(long) };
                    match txn_step(step) {
                        TxnStep::Done => break,
                        TxnStep::Retry => continue,
                        TxnStep::Abort => abort = true,
                    }
                }
                if began.elapsed() > Duration::from_secs(5) {
                    eprintln!("transaction {n} took {:?} (aborted: {abort})", began.elapsed());
                }
                if abort {
                    history.aborted.extend(values);
                } else {
                    values.into_iter().enumerate().for_each(|(p, v)| history.committed[p].push(v));
                }
                n += 1;
            }
            history
        });
        TxnWriter { stop, thread }
    }

    fn stop(self) -> TxnHistory {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("the transactional producer went on through every fault")
    }
}

/// The Java client's transactional producer
/// (`tests/clients/java/JavaNemesisTransactions.java`) ending transactions
/// on a topic through the faults as [`TxnWriter`] does with librdkafka: one
/// record per partition each (`j<n>-<partition>`), every fifth aborted.
struct JavaTxnWriter {
    child: std::process::Child,
    stop_file: PathBuf,
    stderr: PathBuf,
    lines: std::sync::mpsc::Receiver<String>,
}

impl JavaTxnWriter {
    fn start(bootstrap: &str, topic: &str, partitions: usize) -> JavaTxnWriter {
        use std::io::BufRead;
        let classpath = crate::common::clients::java_classpath();
        let source = format!("{}/tests/clients/java/JavaNemesisTransactions.java", env!("CARGO_MANIFEST_DIR"));
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("java-nemesis-txn-{}", std::process::id()));
        let stop_file = base.with_extension("stop");
        let stderr = base.with_extension("log");
        let _ = std::fs::remove_file(&stop_file);
        let mut child = Command::new("java")
            .arg("-cp")
            .arg(classpath.trim())
            .arg(&source)
            .args([bootstrap, topic, &partitions.to_string(), "nemesis-java-txn"])
            .arg(&stop_file)
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start the Java client's transactional producer");
        eprintln!("the Java client's transactional producer logs to {}", stderr.display());
        let (tx, lines) = std::sync::mpsc::channel();
        let out = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        std::thread::spawn(move || {
            for line in out.map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        JavaTxnWriter { child, stop_file, stderr, lines }
    }

    /// Lets it finish the transaction under way and exit; what each came to.
    fn stop(mut self, partitions: usize) -> TxnHistory {
        std::fs::write(&self.stop_file, b"").unwrap();
        let deadline = Instant::now() + Duration::from_secs(180);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the Java client's producer did not finish its last transaction");
            std::thread::sleep(Duration::from_millis(100));
        };
        std::thread::sleep(Duration::from_millis(200));
        let lines: Vec<String> = self.lines.try_iter().collect();
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let tail = &stderr[stderr.len().saturating_sub(4_000)..];
        assert!(
            status.success() && lines.last().is_some_and(|l| l == "DONE"),
            "the Java client's transactional producer went on through every fault ({status}): {:?}\n{tail}",
            &lines[lines.len().saturating_sub(5)..]
        );
        let mut history = TxnHistory { committed: vec![Vec::new(); partitions], aborted: Vec::new() };
        for line in &lines {
            let values = |n: &str| (0..partitions).map(|p| format!("j{n}-{p}")).collect::<Vec<_>>();
            if let Some(n) = line.strip_prefix("COMMITTED ") {
                values(n).into_iter().enumerate().for_each(|(p, v)| history.committed[p].push(v));
            } else if let Some(n) = line.strip_prefix("ABORTED ") {
                history.aborted.extend(values(n));
            }
        }
        history
    }
}

/// A consumer group member (librdkafka) reading `topic` through the faults,
/// committing as it goes; the values it read.
struct GroupReader {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
    seen: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl GroupReader {
    fn start(bootstrap: &str, topic: &'static str, group: &str) -> GroupReader {
        use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>> = Default::default();
        let (stopping, seeing) = (stop.clone(), seen.clone());
        let config =
            crate::common::kafka::consumer_config(bootstrap, group).set("auto.offset.reset", "earliest").clone();
        let thread = std::thread::spawn(move || {
            let consumer: BaseConsumer = config.create().unwrap();
            consumer.subscribe(&[topic]).unwrap();
            let mut read = 0u64;
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                    seeing.lock().unwrap().insert(crate::common::kafka::value(&m));
                    read += 1;
                    if read.is_multiple_of(100) {
                        let _ = consumer.commit_message(&m, CommitMode::Async);
                    }
                }
            }
        });
        GroupReader { stop, thread, seen }
    }

    fn seen(&self) -> std::collections::HashSet<String> {
        self.seen.lock().unwrap().clone()
    }

    fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("the group member went on through every fault");
    }
}

/// kafka-python's group member (`tests/clients/kafka_python_group.py`,
/// kafka-python's own group protocol code, auto-committing) reading a topic
/// through the faults; the values it read.
struct PythonGroupMember {
    child: std::process::Child,
    seen: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl PythonGroupMember {
    fn start(bootstrap: &str, group: &str, topic: &str) -> PythonGroupMember {
        use std::io::BufRead;
        let script = format!("{}/tests/clients/kafka_python_group.py", env!("CARGO_MANIFEST_DIR"));
        let log = std::env::temp_dir().join(format!("sluice-python-group-{}.log", std::process::id()));
        let mut child = Command::new(crate::common::clients::python())
            .args([&script, bootstrap, group, topic])
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start kafka-python's group member");
        eprintln!("kafka-python's group member logs to {}", log.display());
        let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let seen: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>> = Default::default();
        let seeing = seen.clone();
        std::thread::spawn(move || {
            for line in lines {
                let Ok(line) = line else { break };
                if let Some(value) = line.strip_prefix("RECORD ").and_then(|r| r.splitn(3, ' ').nth(2)) {
                    seeing.lock().unwrap().insert(value.to_string());
                }
            }
        });
        PythonGroupMember { child, seen }
    }

    fn seen(&self) -> std::collections::HashSet<String> {
        self.seen.lock().unwrap().clone()
    }

    /// Stops it; whether it was still running (it never gives up on its own).
    fn stop(mut self) -> bool {
        let running = self.child.try_wait().ok().flatten().is_none();
        let _ = self.child.kill();
        let _ = self.child.wait();
        running
    }
}

/// A fault the nemesis injects into one broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// kill -9, then a restart.
    Kill,
    /// SIGSTOP past the session timeout, then SIGCONT.
    Pause,
    /// A network partition between it and the other brokers past the
    /// session timeout (clients still reach it), then healed.
    Isolate,
    /// Its disk filled up: its replicas' logs fail (or its metadata log, and
    /// it stops) and it leaves the in-sync sets; then the space is freed and
    /// it is restarted, as a broker with a failed log directory must be.
    FillDisk,
}

/// The nemesis for partition data: each cycle kills (-9), pauses (SIGSTOP,
/// past the session timeout), cuts off from the other brokers (a network
/// partition, past the session timeout) or fills the disk of one broker, a
/// partition's leader or a follower, while idempotent acks=all producers
/// (librdkafka's and kafka-python's) write through all three, transactional
/// producers (librdkafka's and the Java client's) commit and abort, and
/// group members (librdkafka's and kafka-python's) read; then brings it back
/// and waits until it is in sync again. The checker reads every partition to
/// its end and reports acknowledged records lost, found at another offset
/// than acknowledged, duplicated, or out of order; under read_committed,
/// transactions other than exactly the committed ones; and records the
/// group members never read.
#[test]
fn acknowledged_records_survive_kills_pauses_and_partitions_of_replicas() {
    use crate::common::kafka;

    let cycles: usize = std::env::var("SLUICE_CLUSTER_FAULT_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let (mut nodes, runtime, network, disks) = replicated_cluster_with("nemesis", "ledger", 3, true, Some(256));
    let network = network.expect("proxied");
    let bootstrap: Vec<String> = nodes.iter().map(Node::bootstrap).collect();
    let producer = kafka::producer(
        &bootstrap.join(","),
        &[("enable.idempotence", "true"), ("acks", "all"), ("message.timeout.ms", "120000"), ("linger.ms", "5")],
    );
    // A second client library beside rdkafka: kafka-python's idempotent
    // producer writes to the same partitions through every fault.
    let second = SecondProducer::start(&bootstrap.join(","), "ledger", "py");
    // Transactions (librdkafka's and the Java client's) on a topic of their
    // own, and consumer groups (librdkafka's and kafka-python's) reading the ledger.
    {
        use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
        let new = NewTopic::new("txns", 3, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
        let created =
            runtime.block_on(kafka::admin(&bootstrap[0]).create_topics(&[new], &AdminOptions::new())).unwrap();
        assert!(created[0].is_ok(), "{created:?}");
        wait_for_isr(&bootstrap[0], "txns", 3, Duration::from_secs(15));
    }
    let txn_writer = TxnWriter::start(&bootstrap.join(","), "txns", 3);
    let java_txn_writer = JavaTxnWriter::start(&bootstrap.join(","), "txns", 3);
    let group_reader = GroupReader::start(&bootstrap.join(","), "ledger", "nemesis-readers");
    let python_reader = PythonGroupMember::start(&bootstrap.join(","), "nemesis-python-readers", "ledger");
    // Acknowledged: (partition, offset) -> value.
    let mut acknowledged = std::collections::BTreeMap::new();
    let mut recovery_ms = Vec::new();
    // Leader kills: kill to the first record acknowledged by the partition's next leader.
    let mut leader_killed_ms = Vec::new();
    let mut last_fault_at = Instant::now();
    const PER_CYCLE: usize = 300;
    for cycle in 0..cycles {
        for node in &nodes {
            wait_for_isr(&node.bootstrap(), "ledger", 3, Duration::from_secs(60));
        }
        let partitions = replicas_of(&nodes[0].bootstrap(), "ledger").unwrap();
        let (leader, replicas, _) = &partitions[cycle % 3];
        let target = if cycle % 2 == 0 { *leader } else { *replicas.iter().find(|r| *r != leader).unwrap() };
        let fault = match cycle % 8 {
            0 | 1 => Fault::Kill,
            2 | 3 => Fault::Pause,
            4 | 5 => Fault::Isolate,
            _ => Fault::FillDisk,
        };
        let records: Vec<kafka::Record> =
            (0..PER_CYCLE).map(|i| kafka::Record::new(format!("c{cycle}-{i}")).partition((i % 3) as i32)).collect();
        let values: Vec<String> = (0..PER_CYCLE).map(|i| format!("c{cycle}-{i}")).collect();
        let sending = {
            let producer = producer.clone();
            runtime.spawn(async move { kafka::produce(&producer, "ledger", records).await })
        };
        std::thread::sleep(Duration::from_millis(50));
        eprintln!("cycle {cycle}: {fault:?} broker {target}");
        let victim = nodes.iter_mut().find(|n| n.id == target).unwrap();
        let pid = victim.broker.as_ref().unwrap().pid() as i32;
        let faulted = Instant::now();
        last_fault_at = faulted;
        // Records sent while a full disk is waited for, and their values.
        let mut while_full = Vec::new();
        match fault {
            Fault::Pause => {
                // SAFETY: signalling our own child process.
                unsafe { libc::kill(pid, libc::SIGSTOP) };
                std::thread::sleep(Duration::from_millis(SESSION_MS + 1_000));
            }
            Fault::Kill => {
                victim.broker.take().unwrap().kill();
            }
            Fault::Isolate => {
                // Cut off from the other brokers (clients still reach it) until
                // it is fenced and its partitions have new leaders; then healed.
                let others: Vec<i32> = (1..=3).filter(|id| *id != target).collect();
                network.isolate(target, &others);
                let survivor = nodes.iter().find(|n| n.id != target).unwrap().bootstrap();
                wait_until("the others fence the isolated broker", Duration::from_secs(30), || {
                    view(&survivor).is_some_and(|(ids, _)| ids == others)
                });
                std::thread::sleep(Duration::from_millis(1_000));
                network.heal();
            }
            Fault::FillDisk => {
                // Full: a write needing a new block fails. Records go to every
                // partition until it is out of every in-sync set (or has
                // stopped on a failed metadata log, and been fenced).
                disks[target as usize - 1].fill();
                let survivor = nodes.iter().find(|n| n.id != target).unwrap().bootstrap();
                let mut k = 0;
                while !replicas_of(&survivor, "ledger").is_some_and(|ps| ps.iter().all(|(.., i)| !i.contains(&target)))
                {
                    assert!(
                        faulted.elapsed() < Duration::from_secs(60),
                        "broker {target}'s disk is full and it is in sync"
                    );
                    let i = PER_CYCLE + 1 + k;
                    let record = kafka::Record::new(format!("c{cycle}-{i}")).partition((k % 3) as i32);
                    let producer = producer.clone();
                    let sent = runtime.spawn(async move { kafka::produce(&producer, "ledger", [record]).await });
                    while_full.push((sent, format!("c{cycle}-{i}")));
                    k += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                let victim = nodes.iter_mut().find(|n| n.id == target).unwrap();
                let stopped = !victim.broker.as_mut().unwrap().alive();
                eprintln!(
                    "broker {target}: out of every in-sync set (stopped: {stopped}) after {:?}",
                    faulted.elapsed()
                );
            }
        }
        // Availability: a record sent to the killed leader's partition at
        // the kill; it is acknowledged once a next leader takes produces. (A
        // paused leader is not dead: a request to it waits out the client's
        // request timeout, as with Kafka.)
        let probe = (target == *leader && fault == Fault::Kill).then(|| {
            let producer = producer.clone();
            let record = kafka::Record::new(format!("c{cycle}-{PER_CYCLE}")).partition((cycle % 3) as i32);
            let value = format!("c{cycle}-{PER_CYCLE}");
            runtime.spawn(async move {
                let acked = kafka::produce(&producer, "ledger", [record]).await;
                (acked, value, faulted.elapsed())
            })
        });
        let acked = runtime.block_on(sending).unwrap();
        recovery_ms.push(faulted.elapsed().as_millis() as u64);
        eprintln!("cycle {cycle}: the cycle's records acknowledged {:?} after the fault", faulted.elapsed());
        if let Some(probe) = probe {
            let (probe_acked, value, took) = runtime.block_on(probe).unwrap();
            assert_eq!(probe_acked.len(), 1, "the probe is acknowledged");
            assert!(acknowledged.insert(probe_acked[0], value).is_none(), "the probe's offset acked twice");
            leader_killed_ms.push(took.as_millis() as u64);
        }
        let full_acked = while_full.into_iter().map(|(sent, value)| {
            let acked = runtime.block_on(sent).unwrap();
            assert_eq!(acked.len(), 1, "{value} is acknowledged");
            (acked[0], value)
        });
        for ((partition, offset), value) in acked.into_iter().zip(values).chain(full_acked) {
            assert!(
                acknowledged.insert((partition, offset), value).is_none(),
                "offset {partition}/{offset} acked twice"
            );
        }
        let victim = nodes.iter_mut().find(|n| n.id == target).unwrap();
        match fault {
            Fault::Pause => {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGCONT) };
            }
            Fault::Kill => victim.start(),
            Fault::Isolate => {}
            Fault::FillDisk => {
                disks[target as usize - 1].free_up();
                victim.broker.take().unwrap().kill();
                victim.start();
            }
        };
    }
    for node in &nodes {
        wait_for_isr(&node.bootstrap(), "ledger", 3, Duration::from_secs(60));
    }

    // A preferred election (kafka-leader-election.sh's request) gives every
    // partition its first replica as leader again, after the failovers moved
    // them, once every replica is back in sync.
    wait_for_every_replica_in_sync(&nodes[0].bootstrap(), Duration::from_secs(60));
    let request = kafka_protocol::messages::ElectLeadersRequest::default()
        .with_election_type(0)
        .with_topic_partitions(None)
        .with_timeout_ms(30_000);
    // A broker the last cycle restarted is fenced until it has caught up
    // with the metadata log, and its partitions answer
    // PREFERRED_LEADER_NOT_AVAILABLE meanwhile, as Kafka's do: those are
    // asked again, as an operator runs kafka-leader-election.sh again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let elected: kafka_protocol::messages::ElectLeadersResponse =
            Raw::connect_to(&nodes[2].bootstrap()).call(ApiKey::ElectLeaders, 2, &request);
        assert_eq!(elected.error_code, 0);
        let results = || elected.replica_election_results.iter().flat_map(|r| &r.partition_result);
        for result in results() {
            assert!([0, 80].contains(&result.error_code), "{elected:?}");
        }
        if results().all(|r| r.error_code == 0) {
            break;
        }
        assert!(Instant::now() < deadline, "preferred replicas still not available: {elected:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    // Every topic the election covered, on every broker: a broker that has
    // not applied the last election yet would find it still to be made.
    wait_until("every partition led by its preferred replica", Duration::from_secs(15), || {
        nodes.iter().all(|n| {
            metadata(&n.bootstrap()).is_some_and(|m| {
                !m.topics.is_empty()
                    && m.topics.iter().all(|t| {
                        t.partitions.iter().all(|p| p.replica_nodes.first().is_some_and(|r| r.0 == p.leader_id.0))
                    })
            })
        })
    });
    let again: kafka_protocol::messages::ElectLeadersResponse =
        Raw::connect_to(&nodes[0].bootstrap()).call(ApiKey::ElectLeaders, 2, &request);
    assert!(again.replica_election_results.iter().all(|r| r.partition_result.is_empty()), "{again:?}");

    // kafka-python's acknowledgements join the history; it must have gone on
    // through the faults, to the last cycle.
    let (second_acked, second_failed) = second.stop();
    let last_cycle_began = second_acked.iter().filter(|(.., at)| *at >= last_fault_at).count();
    eprintln!(
        "kafka-python: {} records acknowledged, {} given up on, {last_cycle_began} acknowledged after the last fault",
        second_acked.len(),
        second_failed.len()
    );
    assert!(last_cycle_began > 0, "kafka-python acknowledged nothing after the last fault: {second_failed:?}");
    for (partition, offset, value, _) in &second_acked {
        assert!(
            acknowledged.insert((*partition, *offset), value.clone()).is_none(),
            "offset {partition}/{offset} acked twice"
        );
    }

    // The checker: every partition read to its end through one broker.
    let config = kafka::consumer_config(&nodes[1].bootstrap(), "checker");
    let read = kafka::consume_to_end(&config, "ledger", 3, Duration::from_secs(60));
    let mut found = std::collections::BTreeMap::new();
    let mut last_offset = std::collections::BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for m in &read {
        use rdkafka::Message;
        let value = kafka::value(m);
        assert!(seen.insert(value.clone()), "duplicated: {value}");
        let previous = last_offset.insert(m.partition(), m.offset());
        assert!(previous.is_none_or(|p| p < m.offset()), "offsets go backwards in partition {}", m.partition());
        found.insert((m.partition(), m.offset()), value);
    }
    for (at, value) in &acknowledged {
        assert_eq!(found.get(at), Some(value), "acknowledged {value} at {at:?} is not there");
    }
    // Within a partition each producer's records keep the order they were sent in.
    for p in 0..3 {
        let second: Vec<usize> = found
            .iter()
            .filter(|((partition, _), v)| *partition == p && v.starts_with("py-"))
            .map(|(_, v)| v["py-".len()..].parse().unwrap())
            .collect();
        assert!(second.windows(2).all(|w| w[0] < w[1]), "kafka-python's records out of order in partition {p}");
        let sequence: Vec<(usize, usize)> = found
            .iter()
            .filter(|((partition, _), v)| *partition == p && v.starts_with('c'))
            .map(|(_, v)| {
                let (c, i) = v[1..].split_once('-').unwrap();
                (c.parse().unwrap(), i.parse().unwrap())
            })
            .collect();
        assert!(sequence.windows(2).all(|w| w[0] < w[1]), "partition {p} out of order");
    }
    // The group members (librdkafka's and kafka-python's) read every
    // acknowledged record (at least once: they commit now and then, so a
    // move of their coordinator may replay some).
    wait_until("the group member has read every acknowledged record", Duration::from_secs(120), || {
        let seen = group_reader.seen();
        acknowledged.values().all(|v| seen.contains(v))
    });
    group_reader.stop();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let seen = python_reader.seen();
        let missing = acknowledged.values().filter(|v| !seen.contains(*v)).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "kafka-python's group member has not read {missing} acknowledged records (it read {})",
            seen.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(python_reader.stop(), "kafka-python's group member went on through every fault");
    // Transactions: read_committed shows exactly the committed ones of each
    // producer, in order, and nothing of an aborted one.
    let histories: [(&str, char, TxnHistory); 2] =
        [("librdkafka", 't', txn_writer.stop()), ("the Java client", 'j', java_txn_writer.stop(3))];
    let mut committed_config = kafka::consumer_config(&nodes[2].bootstrap(), "txn-checker");
    committed_config.set("isolation.level", "read_committed");
    let mut read_committed: Vec<Vec<String>> = vec![Vec::new(); 3];
    for m in kafka::consume_to_end(&committed_config, "txns", 3, Duration::from_secs(60)) {
        use rdkafka::Message;
        read_committed[m.partition() as usize].push(kafka::value(&m));
    }
    for (client, prefix, history) in histories {
        let read: Vec<Vec<String>> =
            read_committed.iter().map(|p| p.iter().filter(|v| v.starts_with(prefix)).cloned().collect()).collect();
        assert_eq!(read, history.committed, "read_committed: exactly {client}'s committed transactions, in order");
        let committed_count = history.committed[0].len();
        assert!(committed_count > 0 && !history.aborted.is_empty(), "{client}'s transactions committed and aborted");
        eprintln!(
            "{client}'s transactions: {committed_count} committed and {} aborted through the faults; \
             read_committed saw exactly the committed",
            history.aborted.len() / 3
        );
    }
    recovery_ms.sort();
    leader_killed_ms.sort();
    if let (Some(median), Some(p99)) =
        (leader_killed_ms.get(leader_killed_ms.len() / 2), leader_killed_ms.get(leader_killed_ms.len() * 99 / 100))
    {
        eprintln!(
            "leader killed ({} cycles): kill to the first record acknowledged by the next leader: \
             p50 {median} ms, p99 {p99} ms, max {} ms",
            leader_killed_ms.len(),
            leader_killed_ms[leader_killed_ms.len() - 1]
        );
    }
    eprintln!(
        "{cycles} fault cycles, {} acknowledged records: none lost, moved, duplicated or reordered; \
         fault to all of a cycle's {PER_CYCLE} records acknowledged: median {} ms, max {} ms",
        acknowledged.len(),
        recovery_ms[recovery_ms.len() / 2],
        recovery_ms[recovery_ms.len() - 1]
    );
    // The brokers go before their disks are unmounted.
    drop(nodes);
    drop(disks);
}

/// AlterPartitionReassignments of one partition as raw bytes: its error code.
fn reassign(address: &str, topic: &str, target: Option<Vec<i32>>, allow_replication_factor_change: bool) -> i16 {
    use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
    use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId};
    let request = AlterPartitionReassignmentsRequest::default()
        .with_allow_replication_factor_change(allow_replication_factor_change)
        .with_topics(vec![ReassignableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![ReassignablePartition::default()
                .with_partition_index(0)
                .with_replicas(target.map(|t| t.into_iter().map(BrokerId).collect()))])]);
    let response: AlterPartitionReassignmentsResponse =
        Raw::connect_to(address).call(ApiKey::AlterPartitionReassignments, 1, &request);
    assert_eq!(response.error_code, 0, "{response:?}");
    response.responses[0].partitions[0].error_code
}

/// A reassignment in progress: (topic, partition, replicas, adding, removing).
type Ongoing = (String, i32, Vec<i32>, Vec<i32>, Vec<i32>);

/// The reassignments in progress as `address` lists them.
fn ongoing_reassignments(address: &str) -> Vec<Ongoing> {
    use kafka_protocol::messages::{ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse};
    let response: ListPartitionReassignmentsResponse = Raw::connect_to(address).call(
        ApiKey::ListPartitionReassignments,
        0,
        &ListPartitionReassignmentsRequest::default().with_topics(None),
    );
    assert_eq!(response.error_code, 0, "{response:?}");
    let ids = |r: &[kafka_protocol::messages::BrokerId]| r.iter().map(|b| b.0).collect::<Vec<i32>>();
    response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    ids(&p.replicas),
                    ids(&p.adding_replicas),
                    ids(&p.removing_replicas),
                )
            })
        })
        .collect()
}

/// `kafka-reassign-partitions.sh` moves a partition from brokers 1 and 2
/// to 3 and 2 while it is written: broker 3 catches up and joins the
/// in-sync set, broker 1 leaves it and deletes its copy, broker 3 leads,
/// and every record is there in order. A move to a broker that is down
/// stays in progress, is listed, and is cancelled back; bad targets get
/// Kafka's errors.
#[test]
fn kafka_reassign_partitions_moves_a_partition_to_other_brokers() {
    use crate::common::kafka;
    const TOPICS: &str = "org.apache.kafka.tools.TopicCommand";
    const REASSIGN: &str = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand";

    let (mut nodes, _) = cluster("reassign");
    start_all(&mut nodes);
    let bootstrap: Vec<String> = nodes.iter().map(Node::bootstrap).collect();
    kafka_tool(
        TOPICS,
        "--bootstrap-server",
        &bootstrap[0],
        &["--create", "--topic", "moved", "--replica-assignment", "1:2"],
    );
    wait_for_isr(&bootstrap[0], "moved", 2, Duration::from_secs(15));
    assert_eq!(replicas_of(&bootstrap[0], "moved").unwrap()[0], (1, vec![1, 2], vec![1, 2]));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Idempotent: a batch the old leader answered NOT_LEADER_OR_FOLLOWER as
    // it handed over may be in the log already, and its retry must not add it twice.
    let producer = kafka::producer(
        &bootstrap.join(","),
        &[("acks", "all"), ("enable.idempotence", "true"), ("message.timeout.ms", "60000")],
    );
    let produce = |from: usize, to: usize| {
        let records = (from..to).map(|i| kafka::Record::new(format!("v{i}")));
        let acked = runtime.block_on(kafka::produce(&producer, "moved", records));
        assert_eq!(acked.len(), to - from, "every record acknowledged");
    };
    produce(0, 300);
    let moved_dir = nodes[0].data_dir.join("moved-0");
    assert!(moved_dir.exists(), "broker 1 holds the partition");

    let plan = nodes[0].data_dir.with_file_name("reassign-plan.json");
    std::fs::write(&plan, r#"{"version":1,"partitions":[{"topic":"moved","partition":0,"replicas":[3,2]}]}"#).unwrap();
    let plan = plan.display().to_string();
    let started =
        kafka_tool(REASSIGN, "--bootstrap-server", &bootstrap[1], &["--reassignment-json-file", &plan, "--execute"]);
    assert!(started.contains("Successfully started partition reassignment"), "{started}");
    produce(300, 400);
    let mut verified = String::new();
    wait_until("the reassignment completes", Duration::from_secs(60), || {
        verified =
            kafka_tool(REASSIGN, "--bootstrap-server", &bootstrap[2], &["--reassignment-json-file", &plan, "--verify"]);
        verified.contains("Reassignment of partition moved-0 is completed.")
    });
    assert!(ongoing_reassignments(&bootstrap[0]).is_empty());
    wait_until("every broker sees the partition on 3 and 2, led by 3", Duration::from_secs(15), || {
        bootstrap.iter().all(|b| replicas_of(b, "moved").is_some_and(|p| p[0] == (3, vec![3, 2], vec![2, 3])))
    });
    wait_until("broker 1 deletes its copy", Duration::from_secs(15), || !moved_dir.exists());
    produce(400, 450);
    let config = kafka::consumer_config(&bootstrap[2], "after-move");
    let read: Vec<String> =
        kafka::consume_to_end(&config, "moved", 1, Duration::from_secs(60)).iter().map(kafka::value).collect();
    assert_eq!(read, (0..450).map(|i| format!("v{i}")).collect::<Vec<_>>());

    // Broker 1 is down: a move to it stays in progress until cancelled.
    nodes[0].broker.take().unwrap().kill();
    wait_until("broker 1 is fenced", Duration::from_secs(30), || {
        view(&bootstrap[1]).is_some_and(|(ids, _)| ids == [2, 3])
    });
    assert_eq!(reassign(&bootstrap[1], "moved", Some(vec![1, 3]), true), 0);
    let expected = [("moved".to_string(), 0, vec![1, 3, 2], vec![1], vec![2])];
    assert_eq!(ongoing_reassignments(&bootstrap[1]), expected, "listed where it was made");
    wait_until("the other broker lists it", Duration::from_secs(10), || {
        ongoing_reassignments(&bootstrap[2]) == expected
    });
    let listed = kafka_tool(REASSIGN, "--bootstrap-server", &bootstrap[1], &["--list"]);
    assert!(listed.contains("moved-0"), "{listed}");
    produce(450, 460);
    let cancelled =
        kafka_tool(REASSIGN, "--bootstrap-server", &bootstrap[1], &["--reassignment-json-file", &plan, "--cancel"]);
    assert!(cancelled.contains("Successfully cancelled partition reassignment"), "{cancelled}");
    assert!(ongoing_reassignments(&bootstrap[1]).is_empty());
    assert_eq!(replicas_of(&bootstrap[1], "moved").unwrap()[0], (3, vec![3, 2], vec![2, 3]));

    // Kafka's errors.
    assert_eq!(reassign(&bootstrap[1], "moved", None, true), 85, "NO_REASSIGNMENT_IN_PROGRESS");
    assert_eq!(reassign(&bootstrap[1], "moved", Some(vec![2, 9]), true), 39, "INVALID_REPLICA_ASSIGNMENT");
    assert_eq!(reassign(&bootstrap[1], "moved", Some(vec![2, 2]), true), 39, "INVALID_REPLICA_ASSIGNMENT");
    assert_eq!(reassign(&bootstrap[1], "moved", Some(vec![2]), false), 38, "INVALID_REPLICATION_FACTOR");
    assert_eq!(reassign(&bootstrap[1], "nowhere", Some(vec![2]), true), 3, "UNKNOWN_TOPIC_OR_PARTITION");
}

/// A rolling restart under load: an idempotent acks=all producer keeps up
/// to 500 records in flight to three replicated partitions while each
/// broker in turn is stopped (SIGTERM: controlled shutdown hands its
/// leaderships over first), restarted, and waited for until it is in sync
/// again. Prints the acknowledged records per second before and during the
/// restart and the longest time without an acknowledgement; every
/// acknowledged record must be there, once, at its offset.
#[test]
fn a_rolling_restart_keeps_acknowledging_and_loses_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use futures::stream::{FuturesUnordered, StreamExt};
    use rdkafka::producer::FutureRecord;

    use crate::common::kafka;

    const IN_FLIGHT: usize = 500;
    let (mut nodes, runtime) = replicated_cluster("rolling", "rolling", 3);
    let bootstrap: Vec<String> = nodes.iter().map(Node::bootstrap).collect();
    let producer = kafka::producer(
        &bootstrap.join(","),
        &[("enable.idempotence", "true"), ("acks", "all"), ("message.timeout.ms", "120000"), ("linger.ms", "5")],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let pump = {
        let (producer, stop) = (producer.clone(), stop.clone());
        runtime.spawn(async move {
            let mut in_flight = FuturesUnordered::new();
            let mut acked = Vec::new();
            let mut next = 0usize;
            loop {
                while !stop.load(Ordering::SeqCst) && in_flight.len() < IN_FLIGHT {
                    let value = format!("r{next}");
                    let record = FutureRecord::<str, str>::to("rolling").payload(&value).partition((next % 3) as i32);
                    let delivery = producer.send_result(record).map_err(|(e, _)| e).expect("queue a record");
                    in_flight.push(async move { (delivery.await, value) });
                    next += 1;
                }
                match in_flight.next().await {
                    Some((Ok(Ok(delivery)), value)) => {
                        acked.push((Instant::now(), delivery.partition, delivery.offset, value))
                    }
                    Some((outcome, value)) => panic!("{value} not acknowledged: {outcome:?}"),
                    None => return acked,
                }
            }
        })
    };
    let steady = Duration::from_secs(8);
    std::thread::sleep(steady);
    let restart_began = started.elapsed();
    for i in 0..nodes.len() {
        nodes[i].broker.take().unwrap().stop();
        nodes[i].start();
        let address = nodes[(i + 1) % nodes.len()].bootstrap();
        wait_until("the restarted broker is in sync again", Duration::from_secs(60), || {
            replicas_of(&address, "rolling").is_some_and(|ps| ps.iter().all(|(l, _, isr)| *l > 0 && isr.len() == 3))
        });
    }
    let restart_ended = started.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    let acked = runtime.block_on(pump).unwrap();

    // Per second, and the longest gap between acknowledgements while restarting.
    let seconds = |from: Duration, to: Duration| -> Vec<usize> {
        let mut counts = vec![0usize; (to.as_secs() - from.as_secs()).max(1) as usize];
        for (at, ..) in &acked {
            let t = at.duration_since(started);
            if t >= from && t < to {
                let slot = ((t - from).as_secs() as usize).min(counts.len() - 1);
                counts[slot] += 1;
            }
        }
        counts
    };
    let median = |mut v: Vec<usize>| {
        v.sort();
        v[v.len() / 2]
    };
    let before = seconds(Duration::from_secs(2), restart_began);
    let during = seconds(restart_began, restart_ended);
    let mut times: Vec<Duration> = acked.iter().map(|(at, ..)| at.duration_since(started)).collect();
    times.sort();
    let longest_gap = times
        .windows(2)
        .filter(|w| w[1] > restart_began && w[0] < restart_ended)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    eprintln!(
        "rolling restart of 3 brokers in {:.1} s: acknowledged records per second before: median {}; during: \
         median {}, lowest second {}; longest time without an acknowledgement {} ms; {} records acknowledged",
        (restart_ended - restart_began).as_secs_f64(),
        median(before.clone()),
        median(during.clone()),
        during.iter().min().unwrap(),
        longest_gap.as_millis(),
        acked.len()
    );
    eprintln!("acknowledged per second while restarting: {during:?}");
    assert!(longest_gap < Duration::from_secs(20), "the cluster stopped acknowledging for {longest_gap:?}");

    // The checker: every acknowledged record at its offset, nothing twice.
    let config = kafka::consumer_config(&bootstrap[0], "rolling-checker");
    let read = kafka::consume_to_end(&config, "rolling", 3, Duration::from_secs(60));
    let mut found = std::collections::HashMap::new();
    for m in &read {
        use rdkafka::Message;
        assert!(
            found.insert(kafka::value(m), (m.partition(), m.offset())).is_none(),
            "duplicated: {}",
            kafka::value(m)
        );
    }
    for (_, partition, offset, value) in &acked {
        assert_eq!(
            found.get(value),
            Some(&(*partition, *offset)),
            "acknowledged {value} is not where it was acknowledged"
        );
    }
}

/// A full disk under a leader: broker 1 keeps its data on a small file
/// system that fills up while it leads a replicated partition. Its log
/// fails (KAFKA_STORAGE_ERROR to the producer), the broker reports the
/// failed replica to the quorum, another in-sync replica leads, the
/// producer goes on there without a setting of its own, and every
/// acknowledged record is kept. Metadata lists the failed replica as offline.
#[test]
fn a_full_disk_moves_the_leadership_to_a_replica_with_room() {
    use crate::common::{kafka, SmallDisk};
    const TOPICS: &str = "org.apache.kafka.tools.TopicCommand";

    let disk = SmallDisk::new("cluster-full-disk", 48);
    let (mut nodes, _) = cluster("fulldisk");
    nodes[0].keep_data_on(&disk);
    start_all(&mut nodes);
    let bootstrap: Vec<String> = nodes.iter().map(Node::bootstrap).collect();
    kafka_tool(
        TOPICS,
        "--bootstrap-server",
        &bootstrap[1],
        &["--create", "--topic", "filling", "--replica-assignment", "1:2:3", "--config", "min.insync.replicas=2"],
    );
    wait_for_isr(&bootstrap[1], "filling", 3, Duration::from_secs(15));
    assert_eq!(replicas_of(&bootstrap[1], "filling").unwrap()[0].0, 1);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let producer = kafka::producer(
        &bootstrap.join(","),
        &[("enable.idempotence", "true"), ("acks", "all"), ("message.timeout.ms", "120000")],
    );
    let mut acknowledged = Vec::new();
    let filler = "f".repeat(100 * 1024);
    let mut sent = 0usize;
    // Waves of 5 MB until broker 1 no longer leads (the disk holds 48 MB).
    while replicas_of(&bootstrap[1], "filling").unwrap()[0].0 == 1 {
        assert!(sent < 2_000, "200 MB sent and broker 1 still leads");
        let values: Vec<String> = (sent..sent + 50).map(|i| format!("{i}:{filler}")).collect();
        let acked = runtime.block_on(kafka::produce(
            &producer,
            "filling",
            values.iter().map(|v| kafka::Record::new(v.clone()).partition(0)),
        ));
        acknowledged.extend(acked.into_iter().zip(values));
        sent += 50;
    }
    let values: Vec<String> = (sent..sent + 20).map(|i| format!("{i}:after")).collect();
    let acked = runtime.block_on(kafka::produce(
        &producer,
        "filling",
        values.iter().map(|v| kafka::Record::new(v.clone()).partition(0)),
    ));
    acknowledged.extend(acked.into_iter().zip(values));

    let (leader, _, isr) = replicas_of(&bootstrap[1], "filling").unwrap()[0].clone();
    assert!(leader == 2 || leader == 3, "a replica with room leads: {leader}");
    assert!(!isr.contains(&1), "the failed replica left the in-sync set: {isr:?}");
    let m = metadata(&bootstrap[2]).unwrap();
    let partition =
        &m.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "filling")).unwrap().partitions[0];
    assert_eq!(partition.offline_replicas.iter().map(|b| b.0).collect::<Vec<_>>(), [1], "{partition:?}");

    let config = kafka::consumer_config(&bootstrap[2], "full-disk-checker");
    let read = kafka::consume_to_end(&config, "filling", 1, Duration::from_secs(60));
    let found: std::collections::HashMap<i64, String> = read
        .iter()
        .map(|m| {
            use rdkafka::Message;
            (m.offset(), kafka::value(m))
        })
        .collect();
    let distinct: std::collections::HashSet<&String> = found.values().collect();
    assert_eq!(distinct.len(), read.len(), "no record twice");
    for ((_, offset), value) in &acknowledged {
        assert_eq!(found.get(offset), Some(value), "acknowledged record at {offset} is not there");
    }
    let log = nodes[0].broker.as_ref().unwrap().log();
    assert!(log.contains("replica failed; leaving the in-sync set"), "{log}");
    assert!(nodes[0].broker.as_mut().unwrap().alive(), "broker 1 still runs:\n{log}");
    drop(nodes);
    drop(disk);
}

/// DeleteRecords of `topic`'s partition 0 up to `offset` at `address`, waiting at most `timeout_ms`:
/// (error code, low watermark).
fn delete_records(address: &str, topic: &str, offset: i64, timeout_ms: i32) -> (i16, i64) {
    use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
    use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
    let request =
        DeleteRecordsRequest::default().with_timeout_ms(timeout_ms).with_topics(vec![DeleteRecordsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![DeleteRecordsPartition::default().with_partition_index(0).with_offset(offset)])]);
    let response: DeleteRecordsResponse = Raw::connect_to(address).call(ApiKey::DeleteRecords, 2, &request);
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.low_watermark)
}

/// DeleteRecords on a replicated partition answers once the followers
/// have deleted too (Kafka's low watermark): a leader killed right after
/// the answer leaves a new leader whose log starts there. A follower that
/// is alive but silent (paused) holds the answer back until the request
/// times out (REQUEST_TIMED_OUT), as in Kafka.
#[test]
fn delete_records_answers_once_the_followers_have_deleted_too() {
    use crate::common::kafka;

    let (mut nodes, runtime) = replicated_cluster("deleting", "deleting", 1);
    let bootstrap: Vec<String> = nodes.iter().map(Node::bootstrap).collect();
    let producer = kafka::producer(&bootstrap.join(","), &[("acks", "all")]);
    let acked =
        runtime.block_on(kafka::produce(&producer, "deleting", (0..100).map(|i| kafka::Record::new(format!("d{i}")))));
    assert_eq!(acked.len(), 100);
    let (leader, replicas, _) = replicas_of(&bootstrap[0], "deleting").unwrap()[0].clone();
    assert_eq!(delete_records(&bootstrap[leader as usize - 1], "deleting", 60, 30_000), (0, 60));

    // The leader dies at once: the next one's log starts at 60.
    nodes[leader as usize - 1].broker.take().unwrap().kill();
    let live = nodes.iter().position(|n| n.broker.is_some()).unwrap();
    let mut next = 0;
    wait_until("another broker leads", Duration::from_secs(30), || {
        next = replicas_of(&bootstrap[live], "deleting").map_or(0, |p| p[0].0);
        next > 0 && next != leader
    });
    let mut watermarks = None;
    wait_until("the new leader's watermarks", Duration::from_secs(30), || {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let consumer: BaseConsumer = kafka::client_config(&bootstrap[next as usize - 1], &[]).create().unwrap();
        watermarks = consumer.fetch_watermarks("deleting", 0, Duration::from_secs(5)).ok();
        watermarks.is_some()
    });
    assert_eq!(watermarks, Some((60, 100)), "the deleted records are gone on the new leader too");

    // The third replica is paused: alive until its session ends, and silent.
    let paused = *replicas.iter().find(|r| **r != leader && **r != next).unwrap();
    let pid = nodes[paused as usize - 1].broker.as_ref().unwrap().pid() as i32;
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let answer = delete_records(&bootstrap[next as usize - 1], "deleting", 80, 300);
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert_eq!(answer, (7, -1), "REQUEST_TIMED_OUT while a live follower has not deleted");
    assert_eq!(delete_records(&bootstrap[next as usize - 1], "deleting", 80, 30_000), (0, 80));
}

/// A group's coordinator is the leader of the group's partition of
/// `__consumer_offsets`, a replicated topic the first FindCoordinator
/// creates. When that broker dies the partition's next leader loads the
/// group's state from its copy: committed offsets are all there, and a
/// subscribed consumer goes on from them with no setting of Sluice's,
/// reading every later record once.
#[test]
fn a_groups_coordinator_moves_with_its_offsets_partition_and_keeps_the_commits() {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};

    use crate::common::kafka;

    let (mut nodes, runtime) = replicated_cluster("coordinator", "work", 3);
    let bootstrap: Vec<String> = nodes.iter().map(Node::bootstrap).collect();
    let producer = kafka::producer(&bootstrap.join(","), &[("acks", "all"), ("enable.idempotence", "true")]);
    let produce = |from: usize, to: usize| {
        let records = (from..to).map(|i| kafka::Record::new(format!("v{i}")).partition((i % 3) as i32));
        assert_eq!(runtime.block_on(kafka::produce(&producer, "work", records)).len(), to - from);
    };
    produce(0, 300);
    let live = |nodes: &[Node]| nodes.iter().filter(|n| n.broker.is_some()).map(Node::bootstrap).collect::<Vec<_>>();
    let coordinator_of = |nodes: &[Node], group: &str| {
        let n = sluice::group::offsets_partition(group);
        let partitions = replicas_of(&live(nodes)[0], "__consumer_offsets")?;
        let (leader, replicas, isr) = partitions.get(n)?.clone();
        (leader > 0).then_some((leader, replicas, isr))
    };

    // A member-less commit, then its coordinator dies.
    kafka::commit(&bootstrap.join(","), "ledger", "work", &[(0, 40), (1, 50), (2, 60)]);
    let (first, replicas, isr) = coordinator_of(&nodes, "ledger").expect("the offsets topic exists");
    assert_eq!((replicas.len(), isr.len()), (3, 3), "the offsets partition has three in-sync replicas");
    // Named in a Metadata request (kafka-topics.sh --describe --topic __consumer_offsets), it is described as internal.
    let wanted = kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
        .with_name(Some(kafka_protocol::messages::TopicName(StrBytes::from_static_str("__consumer_offsets"))));
    let named: MetadataResponse = Raw::connect_to(&bootstrap[1]).call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(vec![wanted])),
    );
    let topic = &named.topics[0];
    assert_eq!((topic.error_code, topic.is_internal, topic.partitions.len()), (0, true, 50), "{topic:?}");
    nodes[first as usize - 1].broker.take().unwrap().kill();
    wait_until("another broker coordinates the group", Duration::from_secs(30), || {
        coordinator_of(&nodes, "ledger").is_some_and(|(leader, _, _)| leader != first)
    });
    let moved_to = coordinator_of(&nodes, "ledger").unwrap().0;
    assert_eq!(kafka::committed(&live(&nodes).join(","), "ledger", "work", 3), vec![40, 50, 60], "commits kept");
    eprintln!("group coordinator moved from broker {first} to broker {moved_to}");
    nodes[first as usize - 1].start();
    wait_until("the restarted broker is in sync again", Duration::from_secs(60), || {
        coordinator_of(&nodes, "ledger").is_some_and(|(_, _, isr)| isr.len() == 3)
    });

    // A subscribed member commits as it reads; its coordinator dies; it goes on.
    let config = kafka::consumer_config(&bootstrap.join(","), "readers").set("auto.offset.reset", "earliest").clone();
    let consumer: BaseConsumer = config.create().unwrap();
    consumer.subscribe(&["work"]).unwrap();
    let mut seen: Vec<String> = Vec::new();
    let read = |consumer: &BaseConsumer, until: usize, seen: &mut Vec<String>| {
        let deadline = Instant::now() + Duration::from_secs(90);
        while seen.len() < until {
            assert!(Instant::now() < deadline, "only {} of {until} records read", seen.len());
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    seen.push(kafka::value(&m));
                    let _ = consumer.commit_message(&m, CommitMode::Sync);
                }
                Some(Err(e)) => eprintln!("consumer: {e}"),
                None => {}
            }
        }
    };
    read(&consumer, 300, &mut seen);
    let (coordinator, _, _) = coordinator_of(&nodes, "readers").unwrap();
    nodes[coordinator as usize - 1].broker.take().unwrap().kill();
    produce(300, 450);
    read(&consumer, 450, &mut seen);
    // Nothing more arrives: every record once.
    let extra = consumer.poll(Duration::from_secs(3));
    assert!(!matches!(extra, Some(Ok(_))), "a record read twice: {:?}", extra.map(|m| m.map(|m| kafka::value(&m))));
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 450, "450 distinct records read");
    wait_until("the member's last commits reach the new coordinator", Duration::from_secs(30), || {
        kafka::committed(&live(&nodes).join(","), "readers", "work", 3) == vec![150, 150, 150]
    });
    assert_ne!(coordinator_of(&nodes, "readers").unwrap().0, coordinator, "the coordinator moved");
    drop(consumer);
}

/// The leader of partition `n` of an internal topic, as `address` shows it.
fn internal_leader(address: &str, topic: &str, n: usize) -> Option<i32> {
    replicas_of(address, topic)?.get(n).map(|r| r.0).filter(|leader| *leader > 0)
}

/// What a transactional call came to, for a client that goes on after a
/// coordinator's death as Kafka's documentation says to: retry what is
/// retriable, abort what needs an abort, and stop on anything fatal.
enum TxnStep {
    Done,
    Retry,
    Abort,
}

fn txn_step(result: rdkafka::error::KafkaResult<()>) -> TxnStep {
    match result {
        Ok(()) => TxnStep::Done,
        Err(rdkafka::error::KafkaError::Transaction(e)) if e.txn_requires_abort() => TxnStep::Abort,
        Err(rdkafka::error::KafkaError::Transaction(e)) if e.is_retriable() => TxnStep::Retry,
        // librdkafka: a commit or abort that timed out has an unknown outcome
        // and is called again (a paused broker holds a request for the
        // client's whole request timeout).
        Err(rdkafka::error::KafkaError::Flush(rdkafka::types::RDKafkaErrorCode::OperationTimedOut)) => TxnStep::Retry,
        Err(e) => panic!("transaction failed for good: {e}"),
    }
}

/// Transactions on a cluster: each one writes to partitions every broker
/// leads and commits a group's offsets at a coordinator on another broker
/// than the transaction's (markers and verification go between brokers as
/// Kafka's do); then the transaction coordinator's broker is killed, and
/// the producer goes on at the next leader of its `__transaction_state`
/// partition. read_committed readers see exactly the committed
/// transactions' records, in order, and the group's offset is the last
/// committed transaction's.
#[test]
fn transactions_span_brokers_and_survive_their_coordinators_death() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    use rdkafka::{Message, Offset, TopicPartitionList};

    use crate::common::kafka;

    const PARTITIONS: i32 = 6;
    let (mut nodes, _runtime) = replicated_cluster("transactions", "ledger", PARTITIONS);
    let all: Vec<String> = nodes.iter().map(Node::bootstrap).collect();
    let bootstrap = all.join(",");
    let leaders: std::collections::BTreeSet<i32> =
        replicas_of(&all[0], "ledger").unwrap().iter().map(|r| r.0).collect();
    assert_eq!(leaders.len(), 3, "every broker leads some of the partitions: {leaders:?}");

    let settings = [("transactional.id", "tx-ledger"), ("transaction.timeout.ms", "60000"), ("linger.ms", "1")];
    let producer: ThreadedProducer<DefaultProducerContext> =
        kafka::client_config(&bootstrap, &settings).create().unwrap();
    let long = Duration::from_secs(60);
    producer.init_transactions(long).unwrap();
    let txn_coordinator = internal_leader(&all[0], "__transaction_state", sluice::txn::txn_partition("tx-ledger"))
        .expect("the transaction state topic exists once a producer initialized");
    // A group coordinated elsewhere (the offsets topic exists once a group is used).
    kafka::commit(&bootstrap, "warm-up", "ledger", &[(0, 0)]);
    let group = (0..100)
        .map(|i| format!("copier-{i}"))
        .find(|g| {
            internal_leader(&all[0], "__consumer_offsets", sluice::group::offsets_partition(g))
                .is_some_and(|leader| leader != txn_coordinator)
        })
        .expect("a group another broker coordinates");
    let consumer: BaseConsumer = kafka::consumer_config(&bootstrap, &group).create().unwrap();
    let metadata = consumer.group_metadata().unwrap();

    let mut expected: Vec<Vec<String>> = vec![Vec::new(); PARTITIONS as usize];
    let mut last_committed: Option<i64> = None;
    let mut aborted = 0;
    let mut run = |t: usize, producer: &ThreadedProducer<DefaultProducerContext>| {
        producer.begin_transaction().unwrap();
        let values: Vec<String> = (0..PARTITIONS).map(|p| format!("t{t}-p{p}")).collect();
        for (p, value) in values.iter().enumerate() {
            kafka::send(producer, BaseRecord::to("ledger").payload(value.as_str()).key("k").partition(p as i32));
        }
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset("ledger", 0, Offset::Offset(t as i64 + 1)).unwrap();
        let mut abort = t % 4 == 3;
        loop {
            match txn_step(producer.send_offsets_to_transaction(&offsets, &metadata, long)) {
                TxnStep::Done => break,
                TxnStep::Retry => continue,
                TxnStep::Abort => {
                    abort = true;
                    break;
                }
            }
        }
        loop {
            let step = if abort { producer.abort_transaction(long) } else { producer.commit_transaction(long) };
            match txn_step(step) {
                TxnStep::Done => break,
                TxnStep::Retry => continue,
                TxnStep::Abort => abort = true,
            }
        }
        if abort {
            aborted += 1;
        } else {
            for (p, value) in values.into_iter().enumerate() {
                expected[p].push(value);
            }
            last_committed = Some(t as i64 + 1);
        }
    };
    for t in 0..12 {
        run(t, &producer);
    }
    nodes[txn_coordinator as usize - 1].broker.take().unwrap().kill();
    let killed_at = Instant::now();
    for t in 12..24 {
        run(t, &producer);
    }
    eprintln!("coordinator {txn_coordinator} killed; 12 more transactions ended in {:?}", killed_at.elapsed());
    let moved = internal_leader(
        &nodes[txn_coordinator as usize % 3].bootstrap(),
        "__transaction_state",
        sluice::txn::txn_partition("tx-ledger"),
    );
    assert!(moved.is_some_and(|c| c != txn_coordinator), "the coordinator moved: {moved:?}");
    assert!(aborted >= 6, "the deliberate aborts ended as aborts: {aborted}");

    let live: Vec<String> = nodes.iter().filter(|n| n.broker.is_some()).map(Node::bootstrap).collect();
    let mut config = kafka::consumer_config(&live.join(","), "committed-reader");
    config.set("isolation.level", "read_committed");
    let mut read: Vec<Vec<String>> = vec![Vec::new(); PARTITIONS as usize];
    for m in kafka::consume_to_end(&config, "ledger", PARTITIONS, long) {
        read[m.partition() as usize].push(kafka::value(&m));
    }
    assert_eq!(read, expected, "exactly the committed transactions' records, in order");
    wait_until("the group's offset is the last committed transaction's", Duration::from_secs(30), || {
        kafka::committed(&live.join(","), &group, "ledger", 1) == vec![last_committed.unwrap()]
    });
}

/// A broker added to a running cluster (`process.roles=broker`, not a
/// voter) follows the metadata quorum: it is registered and listed by
/// every broker, DescribeQuorum shows it as an observer, topics created
/// through it are placed on it too, a partition reassigned to it is
/// copied there and led by it, and clients produce and consume through it.
/// Killed, its partitions fail over to the others with every acknowledged
/// record; restarted, it fetches the metadata log again and rejoins the
/// in-sync replicas.
#[test]
fn a_broker_added_to_a_running_cluster_takes_partitions_and_fails_over() {
    use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};

    use crate::common::kafka;

    let (mut nodes, _) = cluster("grow");
    let controller = start_all(&mut nodes);
    let mut added = broker_alone("grow", 4, &nodes[0]);
    added.start();
    nodes.push(added);
    wait_for_agreement(&nodes, &[1, 2, 3, 4], Duration::from_secs(30));

    // The leader lists it among the observers; the voters stay three.
    let quorum = describe_quorum(&nodes[controller as usize - 1].bootstrap());
    let partition = &quorum.topics[0].partitions[0];
    let ids = |r: &[kafka_protocol::messages::describe_quorum_response::ReplicaState]| {
        r.iter().map(|v| v.replica_id.0).collect::<Vec<i32>>()
    };
    assert_eq!(ids(&partition.current_voters), vec![1, 2, 3], "{quorum:?}");
    assert_eq!(ids(&partition.observers), vec![4], "{quorum:?}");
    // Any broker answers as the leader does: the new one asks the leader.
    let asked_elsewhere = describe_quorum(&nodes[3].bootstrap());
    let partition = &asked_elsewhere.topics[0].partitions[0];
    assert_eq!(ids(&partition.observers), vec![4], "{asked_elsewhere:?}");
    assert!(partition.current_voters.iter().all(|v| v.log_end_offset > 0), "{asked_elsewhere:?}");
    // kafka-metadata-quorum.sh through the new broker lists it as an observer.
    let replication = kafka_tool(
        "org.apache.kafka.tools.MetadataQuorumCommand",
        "--bootstrap-server",
        &nodes[3].bootstrap(),
        &["describe", "--replication"],
    );
    assert!(
        replication.lines().any(|r| r.split_whitespace().next() == Some("4") && r.trim_end().ends_with("Observer")),
        "{replication}"
    );

    // A topic created through the new broker is placed over all four.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let new = NewTopic::new("grown", 4, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    let created =
        runtime.block_on(kafka::admin(&nodes[3].bootstrap()).create_topics(&[new], &AdminOptions::new())).unwrap();
    assert!(created[0].is_ok(), "{created:?}");
    for node in &nodes {
        wait_for_isr(&node.bootstrap(), "grown", 3, Duration::from_secs(20));
    }
    let placed = replicas_of(&nodes[0].bootstrap(), "grown").unwrap();
    assert!(placed.iter().filter(|(_, replicas, _)| replicas.contains(&4)).count() >= 2, "{placed:?}");

    // Partition 0 moves to broker 4 and two voters, away from its leader: broker 4 leads it.
    let leader = placed[0].0;
    let mut target: Vec<i32> = vec![4];
    target.extend([1, 2, 3].into_iter().filter(|b| *b != leader).take(2));
    let mut in_sync = target.clone();
    in_sync.sort();
    assert_eq!(reassign(&nodes[3].bootstrap(), "grown", Some(target.clone()), false), 0);
    wait_until("broker 4 leads partition 0 with three in-sync replicas", Duration::from_secs(60), || {
        nodes.iter().all(|n| {
            replicas_of(&n.bootstrap(), "grown")
                .is_some_and(|ps| ps[0].0 == 4 && ps[0].1 == target && ps[0].2 == in_sync)
        })
    });

    // Records go in through one broker and come out through the new one.
    let producer = kafka::producer(&nodes[0].bootstrap(), &[("acks", "all"), ("message.timeout.ms", "30000")]);
    let first = runtime.block_on(kafka::produce(
        &producer,
        "grown",
        (0..200).map(|i| kafka::Record::new(format!("first-{i}")).partition(i % 4)),
    ));
    assert_eq!(first.len(), 200);
    let config = kafka::consumer_config(&nodes[3].bootstrap(), "grown-reader");
    let read = kafka::consume_to_end(&config, "grown", 4, Duration::from_secs(30));
    assert_eq!(read.len(), 200, "every record is read through the new broker");

    // Killed, its partitions move to the other in-sync replicas, and nothing acknowledged is lost.
    nodes[3].broker.take().unwrap().kill();
    wait_until("partition 0 has another leader", Duration::from_secs(30), || {
        replicas_of(&nodes[0].bootstrap(), "grown").is_some_and(|ps| ps[0].0 > 0 && ps[0].0 != 4)
    });
    let second = runtime.block_on(kafka::produce(
        &producer,
        "grown",
        (0..200).map(|i| kafka::Record::new(format!("second-{i}")).partition(i % 4)),
    ));
    assert_eq!(second.len(), 200);
    let config = kafka::consumer_config(&nodes[0].bootstrap(), "grown-reader-2");
    let read = kafka::consume_to_end(&config, "grown", 4, Duration::from_secs(30));
    let mut values: Vec<String> = read.iter().map(kafka::value).collect();
    values.sort();
    let mut expected: Vec<String> = (0..200).flat_map(|i| [format!("first-{i}"), format!("second-{i}")]).collect();
    expected.sort();
    assert_eq!(values, expected, "every acknowledged record, once");

    // Restarted, it fetches the metadata again, registers anew and catches up.
    nodes[3].start();
    wait_for_agreement(&nodes, &[1, 2, 3, 4], Duration::from_secs(30));
    for node in &nodes {
        wait_for_isr(&node.bootstrap(), "grown", 3, Duration::from_secs(30));
    }
    let placed = replicas_of(&nodes[3].bootstrap(), "grown").unwrap();
    assert_eq!(placed[0].2, in_sync, "broker 4 is in sync again: {placed:?}");
}

/// Replica fetches go core to core: on brokers of two shards, each
/// follower's connection is handed by the broker that accepts it (on its
/// controller listener, or a broker alone's PLAINTEXT listener) to the
/// shard that owns the partition, and every record acknowledged with
/// acks=all is there.
#[test]
fn replica_fetches_are_served_by_the_shard_that_owns_the_partition() {
    use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};

    use crate::common::http;
    use crate::common::kafka;

    let (mut nodes, _) = cluster("cores");
    for node in nodes.iter_mut() {
        node.shards = 2;
    }
    start_all(&mut nodes);
    let mut added = broker_alone("cores", 4, &nodes[0]);
    added.shards = 2;
    added.start();
    nodes.push(added);
    wait_for_agreement(&nodes, &[1, 2, 3, 4], Duration::from_secs(30));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let new = NewTopic::new("cores", 8, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    let created =
        runtime.block_on(kafka::admin(&nodes[0].bootstrap()).create_topics(&[new], &AdminOptions::new())).unwrap();
    assert!(created[0].is_ok(), "{created:?}");
    for node in &nodes {
        wait_for_isr(&node.bootstrap(), "cores", 3, Duration::from_secs(30));
    }
    let producer = kafka::producer(&nodes[1].bootstrap(), &[("acks", "all"), ("message.timeout.ms", "30000")]);
    let acked = runtime.block_on(kafka::produce(
        &producer,
        "cores",
        (0..800).map(|i| kafka::Record::new(format!("r{i}")).partition(i % 8)),
    ));
    assert_eq!(acked.len(), 800);
    let read = kafka::consume_to_end(
        &kafka::consumer_config(&nodes[3].bootstrap(), "cores"),
        "cores",
        8,
        Duration::from_secs(30),
    );
    assert_eq!(read.len(), 800);

    // 8 partitions with 2 followers each: 16 replica connections, each
    // counted by the shard that serves it. Both shards of the brokers serve
    // some, the broker alone included.
    let served = |node: &Node, shard: &str| {
        let answer = http::get(&node.broker.as_ref().unwrap().admin_url(), "/metrics");
        http::sum(&http::parse_metrics(&answer.body), "sluice_replica_connections_total", &[("shard", shard)])
    };
    let per_shard: Vec<(f64, f64)> = nodes.iter().map(|n| (served(n, "0"), served(n, "1"))).collect();
    let total: f64 = per_shard.iter().map(|(a, b)| a + b).sum();
    assert!(total >= 16.0, "{per_shard:?}");
    // A voter accepts them on its controller listener, on shard 0 alone: those shard 1 serves were handed over.
    assert!(per_shard[..3].iter().map(|(_, b)| b).sum::<f64>() > 0.0, "some go to shard 1: {per_shard:?}");
    assert!(per_shard.iter().map(|(a, _)| a).sum::<f64>() > 0.0, "some stay on shard 0: {per_shard:?}");
    assert!(per_shard[3].0 + per_shard[3].1 > 0.0, "the broker alone serves followers too: {per_shard:?}");
}
