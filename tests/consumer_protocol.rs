//! KIP-848's consumer group protocol with real clients: librdkafka (2.12,
//! `group.protocol=consumer`) and raw ConsumerGroupHeartbeat requests for a
//! member that stops heartbeating and for what the broker answers at the
//! protocol's edges.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kafka::{self, client_config, produce, value, Record};
use common::{create_topic, wait_until, Broker, Raw};
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, GroupId, JoinGroupRequest, JoinGroupResponse, ListGroupsRequest,
    ListGroupsResponse, TopicName,
};
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, DescribeGroupsRequest, DescribeGroupsResponse, UpdateFeaturesRequest,
    UpdateFeaturesResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

/// (member, topic, partition, offset, value) of every record members received.
type Seen = Arc<Mutex<Vec<(String, String, i32, i64, String)>>>;

/// A broker whose consumer groups heartbeat every 500 ms and time out after 6 s.
fn start_broker(name: &str) -> Broker {
    Broker::start(
        name,
        2,
        &["--group-consumer-session-timeout-ms", "6000", "--group-consumer-heartbeat-interval-ms", "500"],
    )
}

/// A librdkafka member of the consumer protocol on its own thread, recording
/// what it receives and owns; it commits every 100 ms.
struct Member {
    stop: Arc<AtomicBool>,
    assignment: Arc<Mutex<BTreeSet<(String, i32)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Member {
    fn start(name: &str, bootstrap: &str, group: &str, topics: &[&str], seen: Seen) -> Member {
        Member::start_with("consumer", name, bootstrap, group, topics, seen)
    }

    /// A member of `protocol`'s group protocol (`consumer` or `classic`).
    fn start_with(protocol: &str, name: &str, bootstrap: &str, group: &str, topics: &[&str], seen: Seen) -> Member {
        Member::start_configured(protocol, name, bootstrap, group, topics, seen, &[])
    }

    /// A member of `protocol`'s group protocol with more client settings.
    fn start_configured(
        protocol: &str,
        name: &str,
        bootstrap: &str,
        group: &str,
        topics: &[&str],
        seen: Seen,
        extra: &[(&str, &str)],
    ) -> Member {
        let settings = [
            ("group.id", group),
            ("group.protocol", protocol),
            ("enable.auto.commit", "true"),
            ("auto.commit.interval.ms", "100"),
            ("auto.offset.reset", "earliest"),
            ("topic.metadata.refresh.interval.ms", "1000"),
        ];
        let consumer: BaseConsumer = client_config(bootstrap, &[&settings[..], extra].concat()).create().unwrap();
        consumer.subscribe(topics).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let assignment = Arc::new(Mutex::new(BTreeSet::new()));
        let (s, a, n) = (stop.clone(), assignment.clone(), name.to_string());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                    let record = (n.clone(), m.topic().to_string(), m.partition(), m.offset(), value(&m));
                    seen.lock().unwrap().push(record);
                }
                let owned = consumer
                    .assignment()
                    .unwrap()
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                *a.lock().unwrap() = owned;
            }
            // Closing the consumer leaves the group (epoch -1).
        });
        Member { stop, assignment, thread: Some(thread) }
    }

    fn owned(&self) -> BTreeSet<(String, i32)> {
        self.assignment.lock().unwrap().clone()
    }

    fn close(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
    }
}

/// Partitions 0..partitions of `topic` split among `owners`, none owned twice.
fn exclusive_cover(owners: &[BTreeSet<(String, i32)>], topic: &str, partitions: i32) -> bool {
    let total: usize = owners.iter().map(|o| o.iter().filter(|(t, _)| t == topic).count()).sum();
    let union: BTreeSet<i32> = owners.iter().flatten().filter(|(t, _)| t == topic).map(|(_, p)| *p).collect();
    total == partitions as usize && union == (0..partitions).collect()
}

fn records(prefix: &str, count: usize) -> impl Iterator<Item = Record> + '_ {
    (0..count).map(move |i| {
        let value = format!("{prefix}-{i}");
        Record::new(value.clone()).key(value)
    })
}

/// Waits until `count` records with values starting with `prefix` were seen,
/// then checks each was seen exactly once.
fn seen_exactly_once(seen: &Seen, prefix: &str, count: usize) {
    let with_prefix = || seen.lock().unwrap().iter().filter(|s| s.4.starts_with(prefix)).count();
    wait_until(&format!("{count} {prefix} records"), Duration::from_secs(60), || with_prefix() >= count);
    std::thread::sleep(Duration::from_millis(500));
    let seen = seen.lock().unwrap();
    let values: Vec<&String> = seen.iter().filter(|s| s.4.starts_with(prefix)).map(|s| &s.4).collect();
    let distinct: BTreeSet<&String> = values.iter().copied().collect();
    assert_eq!((values.len(), distinct.len()), (count, count), "{prefix}: no duplicates, no gaps");
}

fn heartbeat(raw: &mut Raw, request: &ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse {
    raw.call(ApiKey::ConsumerGroupHeartbeat, 1, request)
}

fn join_request(group: &str, member: &str, topics: &[&str]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_member_id(StrBytes::from_string(member.into()))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(
            topics.iter().map(|t| TopicName(StrBytes::from_string(t.to_string()))).collect(),
        ))
        .with_topic_partitions(Some(Vec::new()))
}

fn describe(raw: &mut Raw, group: &str) -> ConsumerGroupDescribeResponse {
    let request =
        ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(StrBytes::from_string(group.into()))]);
    raw.call(ApiKey::ConsumerGroupDescribe, 1, &request)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_scale_out_and_in_and_a_silent_member_times_out() {
    let broker = start_broker("kip848-scale");
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "flow", 6, &[]).await;
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let a = Member::start("a", &bootstrap, "flowers", &["flow"], seen.clone());
    tokio::task::block_in_place(|| {
        wait_until("a to own all six partitions", Duration::from_secs(30), || exclusive_cover(&[a.owned()], "flow", 6))
    });
    produce(&kafka::producer(&bootstrap, &[]), "flow", records("first", 600)).await;
    tokio::task::block_in_place(|| seen_exactly_once(&seen, "first", 600));
    // Let the auto-commit catch up before partitions move.
    std::thread::sleep(Duration::from_millis(1000));

    // Scale out: three members, two partitions each, the offsets carried over.
    let b = Member::start("b", &bootstrap, "flowers", &["flow"], seen.clone());
    let c = Member::start("c", &bootstrap, "flowers", &["flow"], seen.clone());
    let members = [&a, &b, &c];
    tokio::task::block_in_place(|| {
        wait_until("three members to own two partitions each", Duration::from_secs(60), || {
            let owned: Vec<_> = members.iter().map(|m| m.owned()).collect();
            exclusive_cover(&owned, "flow", 6) && owned.iter().all(|o| o.len() == 2)
        })
    });
    let mut raw = Raw::connect(&broker);
    let described = describe(&mut raw, "flowers");
    let group = &described.groups[0];
    assert_eq!((group.error_code, group.group_state.as_str(), group.members.len()), (0, "Stable", 3), "{group:?}");
    assert_eq!(group.assignor_name.as_str(), "uniform");
    assert!(group
        .members
        .iter()
        .all(|m| m.member_epoch == group.assignment_epoch && m.assignment.topic_partitions[0].partitions.len() == 2));
    produce(&kafka::producer(&bootstrap, &[]), "flow", records("second", 600)).await;
    tokio::task::block_in_place(|| seen_exactly_once(&seen, "second", 600));
    {
        // Each partition read by one member only.
        let seen = seen.lock().unwrap();
        let mut readers: BTreeMap<i32, BTreeSet<&String>> = BTreeMap::new();
        for (member, _, partition, _, v) in seen.iter() {
            if v.starts_with("second") {
                readers.entry(*partition).or_default().insert(member);
            }
        }
        assert!(readers.values().all(|r| r.len() == 1), "{readers:?}");
    }
    std::thread::sleep(Duration::from_millis(1000));

    // Scale in: c leaves; a and b take its partitions and go on from its offsets.
    c.close();
    tokio::task::block_in_place(|| {
        wait_until("two members to own all six partitions", Duration::from_secs(60), || {
            exclusive_cover(&[a.owned(), b.owned()], "flow", 6)
        })
    });
    produce(&kafka::producer(&bootstrap, &[]), "flow", records("third", 600)).await;
    tokio::task::block_in_place(|| seen_exactly_once(&seen, "third", 600));
    assert!(seen.lock().unwrap().iter().filter(|s| s.4.starts_with("third")).all(|s| s.0 != "c"));

    // A member that joins, takes its share, then goes silent (a crash): once
    // its session times out, a and b own everything again.
    let mut silent = join_request("flowers", "silent-member", &["flow"]);
    let mut response = heartbeat(&mut raw, &silent);
    assert_eq!(response.error_code, 0, "{response:?}");
    let started = Instant::now();
    loop {
        let owned = response.assignment.as_ref().map(|a| a.topic_partitions.clone());
        if let Some(owned) = owned {
            silent = silent.with_topic_partitions(Some(
                owned
                    .iter()
                    .map(|t| TopicPartitions::default().with_topic_id(t.topic_id).with_partitions(t.partitions.clone()))
                    .collect(),
            ));
            if owned.iter().map(|t| t.partitions.len()).sum::<usize>() == 2 {
                break;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the silent member never got its partitions");
        std::thread::sleep(Duration::from_millis(300));
        silent = silent.with_member_epoch(response.member_epoch).with_subscribed_topic_names(None);
        response = heartbeat(&mut raw, &silent);
        assert_eq!(response.error_code, 0, "{response:?}");
    }
    let silent_since = Instant::now();
    tokio::task::block_in_place(|| {
        wait_until("a and b to own four partitions", Duration::from_secs(30), || {
            a.owned().len() + b.owned().len() == 4
        });
        wait_until("a and b to own all six partitions again", Duration::from_secs(40), || {
            exclusive_cover(&[a.owned(), b.owned()], "flow", 6)
        })
    });
    assert!(silent_since.elapsed() >= Duration::from_secs(5), "partitions moved before the session timed out");
    // The timed-out member is unknown now.
    let late = heartbeat(&mut raw, &silent.with_member_epoch(response.member_epoch));
    assert_eq!(late.error_code, 25, "UNKNOWN_MEMBER_ID: {late:?}");
    a.close();
    b.close();
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regex_subscription_picks_up_a_topic_created_later() {
    let broker = start_broker("kip848-regex");
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "orders-eu", 2, &[]).await;
    create_topic(&bootstrap, "payments", 1, &[]).await;
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let member = Member::start("r", &bootstrap, "regexers", &["^orders-.*"], seen.clone());
    tokio::task::block_in_place(|| {
        wait_until("orders-eu assigned", Duration::from_secs(30), || exclusive_cover(&[member.owned()], "orders-eu", 2))
    });
    produce(&kafka::producer(&bootstrap, &[]), "orders-eu", records("eu", 50)).await;
    produce(&kafka::producer(&bootstrap, &[]), "payments", records("pay", 10)).await;
    tokio::task::block_in_place(|| seen_exactly_once(&seen, "eu", 50));

    create_topic(&bootstrap, "orders-us", 3, &[]).await;
    tokio::task::block_in_place(|| {
        wait_until("orders-us assigned too", Duration::from_secs(60), || {
            exclusive_cover(&[member.owned()], "orders-us", 3)
        })
    });
    produce(&kafka::producer(&bootstrap, &[]), "orders-us", records("us", 50)).await;
    tokio::task::block_in_place(|| seen_exactly_once(&seen, "us", 50));
    assert!(seen.lock().unwrap().iter().all(|s| s.1 != "payments"), "payments does not match the regex");

    // The two protocols side by side: ListGroups v5 tells them apart, a
    // classic JoinGroup may not take the consumer group, and
    // ConsumerGroupDescribe does not describe a classic group.
    let mut raw = Raw::connect(&broker);
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("regexers")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"));
    let refused: JoinGroupResponse = raw.call(ApiKey::JoinGroup, 9, &join);
    assert_eq!(refused.error_code, 23, "INCONSISTENT_GROUP_PROTOCOL: {refused:?}");
    kafka::commit(&bootstrap, "classic-only", "payments", &[(0, 5)]);
    let listed: ListGroupsResponse = raw.call(ApiKey::ListGroups, 5, &ListGroupsRequest::default());
    let types: BTreeMap<String, String> =
        listed.groups.iter().map(|g| (g.group_id.0.to_string(), g.group_type.to_string())).collect();
    assert_eq!(types.get("regexers").map(String::as_str), Some("consumer"), "{types:?}");
    assert_eq!(types.get("classic-only").map(String::as_str), Some("classic"), "{types:?}");
    let only_consumer = ListGroupsRequest::default().with_types_filter(vec![StrBytes::from_static_str("consumer")]);
    let listed: ListGroupsResponse = raw.call(ApiKey::ListGroups, 5, &only_consumer);
    assert!(listed.groups.iter().all(|g| g.group_type.as_str() == "consumer") && !listed.groups.is_empty());
    let described = describe(&mut raw, "classic-only");
    assert_eq!(described.groups[0].error_code, 69, "GROUP_ID_NOT_FOUND: {described:?}");
    let described = describe(&mut raw, "regexers");
    assert_eq!((described.groups[0].error_code, described.groups[0].members.len()), (0, 1), "{described:?}");
    member.close();
    broker.stop();
}

/// The broker flags of these tests, for a restart on the same data dir.
const FLAGS: [&str; 4] =
    ["--group-consumer-session-timeout-ms", "6000", "--group-consumer-heartbeat-interval-ms", "500"];

/// The partitions a heartbeat answer assigned, as the next heartbeat reports them owned.
fn owned_from(response: &ConsumerGroupHeartbeatResponse) -> Vec<TopicPartitions> {
    let topics = response.assignment.as_ref().map(|a| a.topic_partitions.clone()).unwrap_or_default();
    topics
        .iter()
        .map(|t| TopicPartitions::default().with_topic_id(t.topic_id).with_partitions(t.partitions.clone()))
        .collect()
}

fn beat_request(group: &str, member: &str, epoch: i32, owned: &[TopicPartitions]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_member_id(StrBytes::from_string(member.into()))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(-1)
        .with_topic_partitions(Some(owned.to_vec()))
}

/// (group epoch, [(member id, member epoch)]) as ConsumerGroupDescribe shows them.
fn epochs(raw: &mut Raw, group: &str) -> (i32, Vec<(String, i32)>) {
    let described = describe(raw, group);
    let g = &described.groups[0];
    assert_eq!(g.error_code, 0, "{g:?}");
    (g.group_epoch, g.members.iter().map(|m| (m.member_id.to_string(), m.member_epoch)).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_keep_their_ids_and_epochs_across_restarts_and_sessions_restart_on_load() {
    let broker = start_broker("kip848-restart");
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "kept", 2, &[]).await;
    // Offsets committed by hand first: an empty classic group, which the consumer protocol takes over.
    kafka::commit(&bootstrap, "restarters", "kept", &[(0, 1), (1, 0)]);
    let mut raw = Raw::connect(&broker);
    let joined = heartbeat(&mut raw, &join_request("restarters", "m1", &["kept"]));
    assert_eq!((joined.error_code, joined.member_epoch), (0, 1), "{joined:?}");
    let owned = owned_from(&joined);
    assert_eq!(owned.iter().map(|t| t.partitions.len()).sum::<usize>(), 2);
    // Malformed heartbeats are refused as Kafka does.
    let bad = join_request("restarters", "m2", &["kept"]).with_topic_partitions(None);
    assert_eq!(heartbeat(&mut raw, &bad).error_code, 42, "INVALID_REQUEST");
    let bad =
        join_request("restarters", "m2", &["kept"]).with_subscribed_topic_regex(Some(StrBytes::from_static_str("(")));
    assert_eq!(heartbeat(&mut raw, &bad).error_code, 128, "INVALID_REGULAR_EXPRESSION");
    let fenced = heartbeat(&mut raw, &join_request("restarters", "m1", &["kept"]).with_member_epoch(7));
    assert_eq!(fenced.error_code, 110, "FENCED_MEMBER_EPOCH: {fenced:?}");
    let before = epochs(&mut raw, "restarters");
    assert_eq!(before, (1, vec![("m1".to_string(), 1)]));

    // A clean stop: m1 goes on heartbeating at its epoch, no rejoin, nothing moves.
    let dir = broker.stop();
    let broker = Broker::start_in(dir, 2, &FLAGS);
    let mut raw = Raw::connect(&broker);
    let after = heartbeat(&mut raw, &beat_request("restarters", "m1", 1, &owned));
    assert_eq!((after.error_code, after.member_epoch), (0, 1), "{after:?}");
    assert!(after.assignment.is_none(), "nothing changed for m1: {after:?}");
    assert_eq!(epochs(&mut raw, "restarters"), before);

    // kill -9, and the broker down for longer than the session timeout: the
    // session restarts when the group is loaded, as Kafka's.
    let dir = broker.kill();
    std::thread::sleep(Duration::from_secs(7));
    let broker = Broker::start_in(dir, 2, &FLAGS);
    let mut raw = Raw::connect(&broker);
    assert_eq!(epochs(&mut raw, "restarters"), before);
    let after = heartbeat(&mut raw, &beat_request("restarters", "m1", 1, &owned));
    assert_eq!((after.error_code, after.member_epoch), (0, 1), "{after:?}");
    assert_eq!(kafka::committed(&broker.bootstrap(), "restarters", "kept", 2)[0], 1, "offsets survive");

    // A second member moves the group epoch; both survive another crash.
    let m2 = heartbeat(&mut raw, &join_request("restarters", "m2", &["kept"]));
    assert_eq!((m2.error_code, m2.member_epoch), (0, 2), "{m2:?}");
    let revoke = heartbeat(&mut raw, &beat_request("restarters", "m1", 1, &owned));
    assert_eq!(revoke.error_code, 0, "{revoke:?}");
    let kept = owned_from(&revoke);
    assert_eq!(kept.iter().map(|t| t.partitions.len()).sum::<usize>(), 1, "m1 gives one partition up");
    let dir = broker.kill();
    let broker = Broker::start_in(dir, 2, &FLAGS);
    let mut raw = Raw::connect(&broker);
    // m1 acknowledges the revocation after the crash and reaches epoch 2; m2 then gets the partition.
    let acked = heartbeat(&mut raw, &beat_request("restarters", "m1", 1, &kept));
    assert_eq!((acked.error_code, acked.member_epoch), (0, 2), "{acked:?}");
    let m2 = heartbeat(&mut raw, &beat_request("restarters", "m2", 2, &[]));
    assert_eq!(m2.error_code, 0, "{m2:?}");
    assert_eq!(owned_from(&m2).iter().map(|t| t.partitions.len()).sum::<usize>(), 1, "{m2:?}");
    let (group_epoch, members) = epochs(&mut raw, "restarters");
    assert_eq!((group_epoch, members), (2, vec![("m1".to_string(), 2), ("m2".to_string(), 2)]));

    // Silent after the restart: the restarted sessions expire as usual.
    tokio::task::block_in_place(|| {
        wait_until("both sessions to expire", Duration::from_secs(20), || epochs(&mut raw, "restarters").1.is_empty())
    });
    let late = heartbeat(&mut raw, &beat_request("restarters", "m1", 2, &kept));
    assert_eq!(late.error_code, 25, "UNKNOWN_MEMBER_ID: {late:?}");
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_librdkafka_member_consumes_on_across_a_restart_and_a_crash() {
    let broker = start_broker("kip848-restart-rdkafka");
    let bootstrap = broker.bootstrap();
    // The broker comes back on the same port, so the client reconnects to it.
    let listen = bootstrap.clone();
    create_topic(&bootstrap, "steady", 3, &[]).await;
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let member = Member::start("s", &bootstrap, "steadies", &["steady"], seen.clone());
    tokio::task::block_in_place(|| {
        wait_until("the member to own all three partitions", Duration::from_secs(30), || {
            exclusive_cover(&[member.owned()], "steady", 3)
        })
    });
    produce(&kafka::producer(&bootstrap, &[]), "steady", records("before", 300)).await;
    tokio::task::block_in_place(|| seen_exactly_once(&seen, "before", 300));
    std::thread::sleep(Duration::from_millis(1000));
    let mut raw = Raw::connect(&broker);
    let before = epochs(&mut raw, "steadies");
    assert_eq!(before.1.len(), 1, "{before:?}");
    drop(raw);

    let mut broker = broker;
    for (round, crash) in [("clean", false), ("crash", true)] {
        let dir = if crash { broker.kill() } else { broker.stop() };
        broker = Broker::start_listening(dir, 2, &listen, &FLAGS);
        assert_eq!(broker.bootstrap(), listen);
        produce(&kafka::producer(&listen, &[]), "steady", records(round, 300)).await;
        tokio::task::block_in_place(|| seen_exactly_once(&seen, round, 300));
        let mut raw = Raw::connect(&broker);
        assert_eq!(epochs(&mut raw, "steadies"), before, "{round}: the member went on without rejoining");
    }
    assert!(exclusive_cover(&[member.owned()], "steady", 3));
    member.close();
    broker.stop();
}

/// The state DescribeGroups (v5) gives the group.
fn classic_state(raw: &mut Raw, group: &str) -> String {
    let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(StrBytes::from_string(group.into()))]);
    let described: DescribeGroupsResponse = raw.call(ApiKey::DescribeGroups, 5, &request);
    assert_eq!(described.groups[0].error_code, 0, "{described:?}");
    described.groups[0].group_state.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_and_consumer_members_take_turns_on_one_group_and_its_offsets() {
    let broker = start_broker("kip848-turns");
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "turns", 2, &[]).await;
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let mut raw = Raw::connect(&broker);

    // A classic member first.
    produce(&kafka::producer(&bootstrap, &[]), "turns", records("one", 100)).await;
    let classic = Member::start_with("classic", "c1", &bootstrap, "turners", &["turns"], seen.clone());
    tokio::task::block_in_place(|| seen_exactly_once(&seen, "one", 100));
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(classic_state(&mut raw, "turners"), "Stable");
    // Only a joining member (epoch 0) may upgrade a classic group with members.
    let refused = heartbeat(&mut raw, &beat_request("turners", "k1", 3, &[]));
    assert_eq!(refused.error_code, 69, "GROUP_ID_NOT_FOUND: {refused:?}");
    assert_eq!(refused.error_message.as_deref(), Some("Group turners is not a consumer group."));
    classic.close();
    assert_eq!(classic_state(&mut raw, "turners"), "Empty");

    // The empty classic group becomes a consumer group, from the committed offsets.
    produce(&kafka::producer(&bootstrap, &[]), "turns", records("two", 100)).await;
    let modern = Member::start("k1", &bootstrap, "turners", &["turns"], seen.clone());
    tokio::task::block_in_place(|| seen_exactly_once(&seen, "two", 100));
    std::thread::sleep(Duration::from_millis(1000));
    // As Kafka 4.1's: DescribeGroups before v6 describes a consumer group as Dead, with no error.
    assert_eq!(classic_state(&mut raw, "turners"), "Dead");
    assert_eq!(epochs(&mut raw, "turners").1.len(), 1);
    // A classic member of another protocol type is refused.
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("turners")))
        .with_member_id(StrBytes::from_static_str("classic-1"))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(StrBytes::from_static_str("connect"));
    let refused: JoinGroupResponse = raw.call(ApiKey::JoinGroup, 9, &join);
    assert_eq!(refused.error_code, 23, "INCONSISTENT_GROUP_PROTOCOL: {refused:?}");
    modern.close();

    // Empty again: a classic member takes the group back, from the offsets the consumer protocol committed.
    produce(&kafka::producer(&bootstrap, &[]), "turns", records("three", 100)).await;
    let classic = Member::start_with("classic", "c2", &bootstrap, "turners", &["turns"], seen.clone());
    tokio::task::block_in_place(|| seen_exactly_once(&seen, "three", 100));
    {
        let seen = seen.lock().unwrap();
        let values: BTreeSet<&String> = seen.iter().map(|s| &s.4).collect();
        assert_eq!((seen.len(), values.len()), (300, 300), "every record once, in three turns");
    }
    classic.close();
    broker.stop();
}

/// ConsumerGroupDescribe's member types (0 classic, 1 consumer), by member count.
fn member_types(raw: &mut Raw, group: &str) -> Vec<i8> {
    let mut types: Vec<i8> = describe(raw, group).groups[0].members.iter().map(|m| m.member_type).collect();
    types.sort();
    types
}

/// Kafka 4's online migration with live members: a classic group upgrades to
/// a consumer group when a member of the consumer protocol joins, its classic
/// members share the partitions with it through JoinGroup/SyncGroup, and the
/// group turns classic again when that member leaves; no record is lost or
/// read twice on the way. Run with an eager and a cooperative classic assignor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classic_group_with_members_upgrades_online_and_downgrades_when_the_last_consumer_member_leaves() {
    let broker = start_broker("kip848-online");
    let bootstrap = broker.bootstrap();
    let mut raw = Raw::connect(&broker);
    for assignor in ["range", "cooperative-sticky"] {
        let (topic, group) = (format!("online-{assignor}"), format!("migrating-{assignor}"));
        create_topic(&bootstrap, &topic, 4, &[]).await;
        let seen: Seen = Arc::new(Mutex::new(Vec::new()));
        let producer = kafka::producer(&bootstrap, &[]);
        let extra = [("partition.assignment.strategy", assignor), ("session.timeout.ms", "10000")];
        let classic = Member::start_configured("classic", "c", &bootstrap, &group, &[&topic], seen.clone(), &extra);
        produce(&producer, &topic, records("one", 100)).await;
        tokio::task::block_in_place(|| {
            seen_exactly_once(&seen, "one", 100);
            wait_until("the classic member to own every partition", Duration::from_secs(30), || {
                exclusive_cover(&[classic.owned()], &topic, 4) && classic_state(&mut raw, &group) == "Stable"
            });
        });

        // A member of the consumer protocol joins: the group is upgraded, and
        // the two share the partitions once the classic member rejoined.
        let modern = Member::start("k", &bootstrap, &group, &[&topic], seen.clone());
        tokio::task::block_in_place(|| {
            wait_until("the two members to share the partitions", Duration::from_secs(60), || {
                let (c, m) = (classic.owned(), modern.owned());
                !c.is_empty() && !m.is_empty() && exclusive_cover(&[c, m], &topic, 4)
            })
        });
        assert_eq!(member_types(&mut raw, &group), [0, 1], "one classic member, one consumer-protocol member");
        assert_eq!(classic_state(&mut raw, &group), "Dead", "DescribeGroups v5 sees no classic group");
        produce(&producer, &topic, records("two", 200)).await;
        tokio::task::block_in_place(|| seen_exactly_once(&seen, "two", 200));
        let readers: BTreeSet<String> =
            seen.lock().unwrap().iter().filter(|r| r.4.starts_with("two")).map(|r| r.0.clone()).collect();
        assert_eq!(readers.len(), 2, "both members read: {readers:?}");

        // The member of the consumer protocol leaves: the group is classic
        // again and its classic member takes every partition back.
        modern.close();
        tokio::task::block_in_place(|| {
            wait_until("the classic group to be stable with one member", Duration::from_secs(60), || {
                classic_state(&mut raw, &group) == "Stable" && exclusive_cover(&[classic.owned()], &topic, 4)
            })
        });
        let described = describe(&mut raw, &group);
        assert_eq!(described.groups[0].error_code, 69, "no longer a consumer group: {described:?}");
        produce(&producer, &topic, records("three", 100)).await;
        tokio::task::block_in_place(|| seen_exactly_once(&seen, "three", 100));
        classic.close();
    }
    broker.stop();
}

/// A classic static member taking the place of the last member of the
/// consumer protocol (same `group.instance.id`) makes the group classic at
/// once, as Kafka's: no rebalance, and it reads the partitions the member it
/// replaced owned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classic_static_member_replacing_the_last_consumer_member_downgrades_the_group() {
    let broker = start_broker("kip848-static-replacement");
    let bootstrap = broker.bootstrap();
    let mut raw = Raw::connect(&broker);
    let (topic, group) = ("replaced", "replacing");
    create_topic(&bootstrap, topic, 2, &[]).await;
    let instance = || Some(StrBytes::from_static_str("instance-1"));

    // A static member of the consumer protocol, on the wire: it owns both
    // partitions, then leaves for now (epoch -2), keeping its place.
    let joined = heartbeat(&mut raw, &join_request(group, "k1", &[topic]).with_instance_id(instance()));
    assert_eq!(joined.error_code, 0, "{joined:?}");
    let owned = owned_from(&joined);
    assert_eq!(owned.iter().map(|t| t.partitions.len()).sum::<usize>(), 2, "{joined:?}");
    let acked = heartbeat(&mut raw, &beat_request(group, "k1", joined.member_epoch, &owned));
    assert_eq!(acked.error_code, 0, "{acked:?}");
    let left = heartbeat(&mut raw, &beat_request(group, "k1", -2, &owned).with_instance_id(instance()));
    assert_eq!((left.error_code, left.member_epoch), (0, -2), "{left:?}");
    assert_eq!(member_types(&mut raw, group), [1], "the static member keeps its place");
    let producer = kafka::producer(&bootstrap, &[]);
    produce(&producer, topic, records("one", 100)).await;

    // A classic member comes back under the same instance id.
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let extra = [("group.instance.id", "instance-1"), ("session.timeout.ms", "10000")];
    let classic = Member::start_configured("classic", "c", &bootstrap, group, &[topic], seen.clone(), &extra);
    tokio::task::block_in_place(|| {
        wait_until("the classic member to own both partitions", Duration::from_secs(30), || {
            exclusive_cover(&[classic.owned()], topic, 2)
        });
        seen_exactly_once(&seen, "one", 100);
    });
    assert_eq!(classic_state(&mut raw, group), "Stable");
    let described = describe(&mut raw, group);
    assert_eq!(described.groups[0].error_code, 69, "no longer a consumer group: {described:?}");
    let log = broker.log();
    let downgrades = log.lines().filter(|l| l.contains("consumer group downgraded to a classic group")).count();
    assert_eq!(downgrades, 1, "downgraded by the replacement, not emptied by a timeout:\n{log}");
    produce(&producer, topic, records("two", 100)).await;
    tokio::task::block_in_place(|| seen_exactly_once(&seen, "two", 100));
    classic.close();
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_migration_policy_disabled_a_classic_group_is_not_upgraded() {
    let broker = Broker::start(
        "kip848-no-upgrade",
        2,
        &[&FLAGS[..], &["--group-consumer-migration-policy", "DISABLED"]].concat(),
    );
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "kept-classic", 1, &[]).await;
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let classic = Member::start_with("classic", "c", &bootstrap, "classics", &["kept-classic"], seen.clone());
    let mut raw = Raw::connect(&broker);
    tokio::task::block_in_place(|| {
        wait_until("the classic group to be stable", Duration::from_secs(30), || {
            classic_state(&mut raw, "classics") == "Stable"
        })
    });
    let refused = heartbeat(&mut raw, &join_request("classics", "k1", &["kept-classic"]));
    assert_eq!(refused.error_code, 69, "GROUP_ID_NOT_FOUND: {refused:?}");
    assert_eq!(
        refused.error_message.as_deref(),
        Some("Cannot upgrade classic group classics to consumer group because online upgrade is disabled.")
    );
    classic.close();
    // An empty classic group is replaced whatever the policy, as in Kafka.
    let joined = heartbeat(&mut raw, &join_request("classics", "k1", &["kept-classic"]));
    assert_eq!((joined.error_code, joined.member_epoch), (0, 1), "{joined:?}");
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_group_version_1_the_consumer_protocol_answers_unsupported_version() {
    let broker = start_broker("kip848-feature");
    let mut raw = Raw::connect(&broker);
    let joined = heartbeat(&mut raw, &join_request("featured", "m1", &["any"]));
    assert_eq!(joined.error_code, 0, "a new cluster starts at group.version 1: {joined:?}");
    let off =
        UpdateFeaturesRequest::default().with_timeout_ms(30_000).with_feature_updates(vec![FeatureUpdateKey::default(
        )
        .with_feature(StrBytes::from_static_str("group.version"))
        .with_max_version_level(0)
        .with_upgrade_type(2)]);
    let answer: UpdateFeaturesResponse = raw.call(ApiKey::UpdateFeatures, 1, &off);
    assert_eq!(answer.error_code, 0, "{answer:?}");
    let refused = heartbeat(&mut raw, &join_request("featured", "m1", &["any"]));
    assert_eq!((refused.error_code, refused.error_message.as_deref()), (35, None), "UNSUPPORTED_VERSION");
    let described = describe(&mut raw, "featured");
    assert_eq!(described.groups[0].error_code, 35, "UNSUPPORTED_VERSION: {described:?}");
    // ApiVersions still lists the API, as Kafka's.
    let versions: ApiVersionsResponse = raw.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert!(versions.api_keys.iter().any(|k| k.api_key == ApiKey::ConsumerGroupHeartbeat as i16));
    let on =
        UpdateFeaturesRequest::default().with_timeout_ms(30_000).with_feature_updates(vec![FeatureUpdateKey::default(
        )
        .with_feature(StrBytes::from_static_str("group.version"))
        .with_max_version_level(1)
        .with_upgrade_type(1)]);
    let answer: UpdateFeaturesResponse = raw.call(ApiKey::UpdateFeatures, 1, &on);
    assert_eq!(answer.error_code, 0, "{answer:?}");
    let beat = heartbeat(&mut raw, &beat_request("featured", "m1", 1, &[]));
    assert_eq!((beat.error_code, beat.member_epoch), (0, 1), "the group was kept: {beat:?}");
    broker.stop();
}
