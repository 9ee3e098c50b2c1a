//! Consumer groups with real clients: librdkafka (the `rdkafka` crate) and
//! kafka-python, whose group code is its own (and confluent-kafka's and
//! kafka-python's committed offsets across a broker restart).

use crate::common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kafka::{self, consumer_config, poll_n, produce, value, Record};
use common::{create_topic, wait_until, Broker, Raw};
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse, GroupId,
    ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::ClientContext;

type Seen = Arc<Mutex<Vec<(String, i32, i64, String)>>>;

/// A group member on its own thread, recording what it receives and owns.
struct Member {
    name: String,
    stop: Arc<AtomicBool>,
    assignment: Arc<Mutex<BTreeSet<i32>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A group member's config: auto-commit on (librdkafka's default), reading
/// from the earliest offset where the group has none, a 6 s session; then `extra`.
fn group_config(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut config = consumer_config(bootstrap, group);
    config
        .set("enable.auto.commit", "true")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config
}

impl Member {
    fn start(name: &str, bootstrap: &str, group: &str, topic: &str, seen: Seen, extra: &[(&str, &str)]) -> Member {
        let consumer: BaseConsumer = group_config(bootstrap, group, extra).create().unwrap();
        consumer.subscribe(&[topic]).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let assignment = Arc::new(Mutex::new(BTreeSet::new()));
        let (s, a, n) = (stop.clone(), assignment.clone(), name.to_string());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                    seen.lock().unwrap().push((n.clone(), m.partition(), m.offset(), value(&m)));
                }
                let owned: BTreeSet<i32> =
                    consumer.assignment().unwrap().elements().iter().map(|e| e.partition()).collect();
                *a.lock().unwrap() = owned;
            }
            // Dropping the consumer closes it: it leaves the group.
        });
        Member { name: name.to_string(), stop, assignment, thread: Some(thread) }
    }

    fn owned(&self) -> BTreeSet<i32> {
        self.assignment.lock().unwrap().clone()
    }

    fn close(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
    }
}

/// Partitions are split among `owners` with none owned twice and all owned.
fn exclusive_cover(owners: &[BTreeSet<i32>], partitions: i32) -> bool {
    let total: usize = owners.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<i32> = owners.iter().flatten().copied().collect();
    total == partitions as usize && union.len() == partitions as usize
}

/// Records `{prefix}-0` to `{prefix}-{count - 1}`, keyed by their value.
fn prefixed(prefix: &str, count: usize) -> impl Iterator<Item = Record> + '_ {
    (0..count).map(move |i| {
        let value = format!("{prefix}-{i}");
        Record::new(value.clone()).key(value)
    })
}

/// Producer settings: records batched for up to 2 ms.
const BATCHED: &[(&str, &str)] = &[("linger.ms", "2")];

/// A kafka-python member in its own process, so it can be killed without leaving.
struct PythonMember {
    child: std::process::Child,
    assignment: Arc<Mutex<BTreeSet<i32>>>,
    records: Arc<Mutex<Vec<(i32, i64, String)>>>,
}

impl PythonMember {
    fn start(bootstrap: &str, group: &str, topic: &str) -> PythonMember {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/kafka_python_group.py");
        let mut child = Command::new(common::clients::python())
            .args([script, bootstrap, group, topic])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kafka-python member");
        let stdout = child.stdout.take().unwrap();
        let assignment = Arc::new(Mutex::new(BTreeSet::new()));
        let records = Arc::new(Mutex::new(Vec::new()));
        let (a, r) = (assignment.clone(), records.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(list) = line.strip_prefix("ASSIGNED ") {
                    *a.lock().unwrap() =
                        list.split(',').filter(|s| !s.is_empty()).map(|p| p.parse().unwrap()).collect();
                } else if let Some(rest) = line.strip_prefix("RECORD ") {
                    let mut parts = rest.splitn(3, ' ');
                    let p = parts.next().unwrap().parse().unwrap();
                    let o = parts.next().unwrap().parse().unwrap();
                    r.lock().unwrap().push((p, o, parts.next().unwrap().to_string()));
                }
            }
        });
        PythonMember { child, assignment, records }
    }

    fn owned(&self) -> BTreeSet<i32> {
        self.assignment.lock().unwrap().clone()
    }
}

impl Drop for PythonMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_share_partitions_and_take_over_on_leave_and_crash() {
    let broker = Broker::start("groups-share", 2, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "shared", 6, &[]).await;
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let members: Vec<Member> =
        ["a", "b", "c"].iter().map(|n| Member::start(n, &bootstrap, "sharers", "shared", seen.clone(), &[])).collect();
    tokio::task::block_in_place(|| {
        wait_until("three members to split six partitions", Duration::from_secs(30), || {
            let owned: Vec<_> = members.iter().map(Member::owned).collect();
            exclusive_cover(&owned, 6) && owned.iter().all(|o| o.len() == 2)
        })
    });

    produce(&kafka::producer(&bootstrap, BATCHED), "shared", prefixed("first", 3000)).await;
    tokio::task::block_in_place(|| {
        wait_until("3000 records", Duration::from_secs(30), || seen.lock().unwrap().len() >= 3000)
    });
    std::thread::sleep(Duration::from_millis(300));
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3000, "every record exactly once");
        let values: BTreeSet<&String> = seen.iter().map(|s| &s.3).collect();
        assert_eq!(values.len(), 3000);
        // Each partition was read by exactly one member.
        let mut readers: HashMap<i32, BTreeSet<&String>> = HashMap::new();
        for (member, partition, _, _) in seen.iter() {
            readers.entry(*partition).or_default().insert(member);
        }
        assert!(readers.values().all(|r| r.len() == 1), "{readers:?}");
    }

    // A member that closes leaves; its partitions move to the others.
    let mut members = members;
    let leaving = members.pop().unwrap();
    let left = leaving.name.clone();
    leaving.close();
    tokio::task::block_in_place(|| {
        wait_until("two members to own all six partitions", Duration::from_secs(30), || {
            let owned: Vec<_> = members.iter().map(Member::owned).collect();
            exclusive_cover(&owned, 6)
        })
    });
    seen.lock().unwrap().clear();
    produce(&kafka::producer(&bootstrap, BATCHED), "shared", prefixed("second", 600)).await;
    tokio::task::block_in_place(|| {
        wait_until("600 more records", Duration::from_secs(30), || seen.lock().unwrap().len() >= 600)
    });
    assert!(seen.lock().unwrap().iter().all(|s| s.0 != left));

    // A kafka-python member joins, then is killed without leaving: after its
    // session times out, its partitions go back to the others.
    let python = PythonMember::start(&bootstrap, "sharers", "shared");
    tokio::task::block_in_place(|| {
        wait_until("the kafka-python member to own partitions", Duration::from_secs(40), || {
            let mut owned: Vec<_> = members.iter().map(Member::owned).collect();
            owned.push(python.owned());
            exclusive_cover(&owned, 6) && !python.owned().is_empty()
        })
    });
    let python_owned = python.owned();
    seen.lock().unwrap().clear();
    produce(&kafka::producer(&bootstrap, BATCHED), "shared", prefixed("third", 600)).await;
    tokio::task::block_in_place(|| {
        wait_until("records split between clients", Duration::from_secs(30), || {
            seen.lock().unwrap().len() + python.records.lock().unwrap().len() >= 600
        })
    });
    assert!(python.records.lock().unwrap().iter().all(|(p, _, v)| python_owned.contains(p) && v.starts_with("third")));
    let killed_at = Instant::now();
    drop(python); // SIGKILL: no LeaveGroup
    tokio::task::block_in_place(|| {
        wait_until("the survivors to own all partitions again", Duration::from_secs(40), || {
            let owned: Vec<_> = members.iter().map(Member::owned).collect();
            exclusive_cover(&owned, 6)
        })
    });
    assert!(killed_at.elapsed() >= Duration::from_secs(5), "partitions moved before the session timed out");
    for m in members {
        m.close();
    }
    broker.stop();
}

fn consume_group(bootstrap: &str, group: &str, topic: &str, want: usize) -> Vec<(i32, i64, String)> {
    let consumer: BaseConsumer = group_config(bootstrap, group, &[("enable.auto.commit", "false")]).create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let got = poll_n(&consumer, want, Duration::from_secs(30));
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();
    got.iter().map(|m| (m.partition(), m.offset(), value(m))).collect()
}

/// Offsets committed by librdkafka (the `rdkafka` crate), confluent-kafka and
/// kafka-python survive their consumers and a kill -9 of the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_consumer_and_broker_restarts() {
    let broker = Broker::start("groups-commit", 2, &["--group-initial-rebalance-delay-ms", "0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "resumable", 1, &[]).await;
    produce(&kafka::producer(&bootstrap, BATCHED), "resumable", prefixed("r", 100)).await;
    let b = bootstrap.clone();
    let first = tokio::task::spawn_blocking(move || consume_group(&b, "resumer", "resumable", 60)).await.unwrap();
    assert_eq!(first.last().unwrap().1, 59);
    // A new consumer of the group resumes after the committed offset.
    let b = bootstrap.clone();
    let second = tokio::task::spawn_blocking(move || consume_group(&b, "resumer", "resumable", 20)).await.unwrap();
    assert_eq!(second[0].1, 60);
    // confluent-kafka and kafka-python commit in groups of their own.
    tokio::task::block_in_place(|| python_committed_offsets(&broker, "commit"));
    // Kill the broker right after the commit: the commit was durable.
    let dir = broker.kill();
    let broker = Broker::start_in(dir, 2, &["--group-initial-rebalance-delay-ms", "0"]);
    let b = broker.bootstrap();
    let third = tokio::task::spawn_blocking(move || consume_group(&b, "resumer", "resumable", 20)).await.unwrap();
    assert_eq!(third[0].1, 80);
    assert_eq!(third.last().unwrap().1, 99);
    tokio::task::block_in_place(|| python_committed_offsets(&broker, "resume"));

    // A consumer outside group management commits with no generation; the
    // metadata and leader epoch come back exactly as committed.
    tokio::task::block_in_place(|| {
        let mut raw = Raw::connect(&broker);
        let commit = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("standalone")))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("resumable")))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(42)
                    .with_committed_leader_epoch(0)
                    .with_committed_metadata(Some(StrBytes::from_static_str("checkpoint-7")))])]);
        let response: OffsetCommitResponse = raw.call(ApiKey::OffsetCommit, 8, &commit);
        assert_eq!(response.topics[0].partitions[0].error_code, 0);
        let fetch = OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("standalone")))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("resumable")))
                .with_partition_indexes(vec![0, 5])]));
        let response: OffsetFetchResponse = raw.call(ApiKey::OffsetFetch, 7, &fetch);
        let parts = &response.topics[0].partitions;
        assert_eq!((parts[0].committed_offset, parts[0].committed_leader_epoch), (42, 0));
        assert_eq!(parts[0].metadata.as_deref(), Some("checkpoint-7"));
        assert_eq!(parts[1].committed_offset, -1, "nothing committed for partition 5");
        // Committing for a topic that does not exist.
        let mut bad = commit.clone();
        bad.topics[0].name = TopicName(StrBytes::from_static_str("nope"));
        let response: OffsetCommitResponse = raw.call(ApiKey::OffsetCommit, 8, &bad);
        assert_eq!(response.topics[0].partitions[0].error_code, 3);
    });
    broker.stop();
}

/// librdkafka's admin calls for a group's offsets, `rd_kafka_AlterConsumerGroupOffsets`
/// (`offsets` set) and `rd_kafka_ListConsumerGroupOffsets` (`offsets` `None`: those
/// of `partitions`), which the rdkafka crate does not wrap, through its bindings:
/// each partition's (partition, offset, error code), or the request's error code.
fn group_offsets_admin(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: &[i32],
    offsets: Option<&[i64]>,
) -> Result<Vec<(i32, i64, i32)>, i32> {
    use rdkafka::bindings as rd;
    use rdkafka::{Offset, TopicPartitionList};
    use std::ffi::CString;

    let admin = kafka::admin(bootstrap);
    let rk = admin.inner().native_ptr();
    let mut tpl = TopicPartitionList::new();
    for (i, p) in partitions.iter().enumerate() {
        match offsets {
            Some(offsets) => tpl.add_partition_offset(topic, *p, Offset::Offset(offsets[i])).unwrap(),
            None => {
                tpl.add_partition(topic, *p);
            }
        }
    }
    let group = CString::new(group).unwrap();
    // SAFETY: every object made here is destroyed here; the request objects
    // are copied by the calls taking them; the result's partitions are read
    // before its event is destroyed.
    unsafe {
        let queue = rd::rd_kafka_queue_new(rk);
        let event = if offsets.is_some() {
            let op = rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS;
            let options = rd::rd_kafka_AdminOptions_new(rk, op);
            let mut request = rd::rd_kafka_AlterConsumerGroupOffsets_new(group.as_ptr(), tpl.ptr());
            rd::rd_kafka_AlterConsumerGroupOffsets(rk, &mut request, 1, options, queue);
            rd::rd_kafka_AlterConsumerGroupOffsets_destroy(request);
            rd::rd_kafka_AdminOptions_destroy(options);
            rd::rd_kafka_queue_poll(queue, 30_000)
        } else {
            let op = rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS;
            let options = rd::rd_kafka_AdminOptions_new(rk, op);
            let mut request = rd::rd_kafka_ListConsumerGroupOffsets_new(group.as_ptr(), tpl.ptr());
            rd::rd_kafka_ListConsumerGroupOffsets(rk, &mut request, 1, options, queue);
            rd::rd_kafka_ListConsumerGroupOffsets_destroy(request);
            rd::rd_kafka_AdminOptions_destroy(options);
            rd::rd_kafka_queue_poll(queue, 30_000)
        };
        rd::rd_kafka_queue_destroy(queue);
        assert!(!event.is_null(), "no answer within 30 s");
        let error = rd::rd_kafka_event_error(event) as i32;
        let answer = if error != 0 {
            Err(error)
        } else {
            let mut count = 0;
            let groups = if offsets.is_some() {
                let result = rd::rd_kafka_event_AlterConsumerGroupOffsets_result(event);
                rd::rd_kafka_AlterConsumerGroupOffsets_result_groups(result, &mut count)
            } else {
                let result = rd::rd_kafka_event_ListConsumerGroupOffsets_result(event);
                rd::rd_kafka_ListConsumerGroupOffsets_result_groups(result, &mut count)
            };
            assert_eq!(count, 1, "one group asked for");
            let group_error = rd::rd_kafka_group_result_error(*groups);
            if !group_error.is_null() {
                Err(rd::rd_kafka_error_code(group_error) as i32)
            } else {
                let list = &*rd::rd_kafka_group_result_partitions(*groups);
                let elems = std::slice::from_raw_parts(list.elems, list.cnt as usize);
                Ok(elems.iter().map(|e| (e.partition, e.offset, e.err as i32)).collect())
            }
        };
        rd::rd_kafka_event_destroy(event);
        answer
    }
}

/// Runs `tests/clients/python_committed_offsets.py` against `resumable`:
/// `commit` has confluent-kafka and kafka-python commit offsets, `resume`
/// checks them and that new members start there.
fn python_committed_offsets(broker: &Broker, phase: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/python_committed_offsets.py");
    let output = Command::new(common::clients::python())
        .args([script, &broker.bootstrap(), "resumable", phase])
        .output()
        .expect("run the Python clients");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", broker.client_failure(&format!("the Python clients ({phase})"), &output));
    assert_eq!(stdout, format!("ok confluent-kafka {phase}\nok kafka-python {phase}\n"));
}

fn list_groups(raw: &mut Raw) -> BTreeMap<String, String> {
    let response: ListGroupsResponse = raw.call(ApiKey::ListGroups, 4, &ListGroupsRequest::default());
    response.groups.iter().map(|g| (g.group_id.0.to_string(), g.group_state.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_independent_listed_described_and_deleted() {
    let broker = Broker::start("groups-admin", 2, &["--group-initial-rebalance-delay-ms", "0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "both", 3, &[]).await;
    produce(&kafka::producer(&bootstrap, BATCHED), "both", prefixed("x", 300)).await;
    // Two groups each read everything.
    for group in ["alpha", "beta"] {
        let b = bootstrap.clone();
        let got = tokio::task::spawn_blocking(move || consume_group(&b, group, "both", 300)).await.unwrap();
        let values: BTreeSet<String> = got.into_iter().map(|g| g.2).collect();
        assert_eq!(values.len(), 300);
    }
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let member = Member::start("live", &bootstrap, "beta", "both", seen, &[]);
    tokio::task::block_in_place(|| {
        wait_until("beta to be stable", Duration::from_secs(30), || member.owned().len() == 3);

        // librdkafka's rd_kafka_list_groups: ListGroups, then DescribeGroups of each.
        let admin = kafka::admin(&bootstrap);
        let list = admin.inner().fetch_group_list(None, Duration::from_secs(10)).expect("group list");
        let groups: BTreeMap<&str, &rdkafka::groups::GroupInfo> = list.groups().iter().map(|g| (g.name(), g)).collect();
        assert_eq!(groups.keys().copied().collect::<Vec<_>>(), ["alpha", "beta"]);
        assert_eq!((groups["alpha"].state(), groups["alpha"].members().len()), ("Empty", 0));
        let beta = groups["beta"];
        assert_eq!((beta.state(), beta.protocol_type(), beta.protocol()), ("Stable", "consumer", "range"));
        assert_eq!(beta.members().len(), 1);
        assert_eq!(beta.members()[0].client_id(), "rdkafka");
        assert!(beta.members()[0].client_host().starts_with("/127.0.0.1"), "{}", beta.members()[0].client_host());
        assert!(beta.members()[0].assignment().is_some_and(|a| !a.is_empty()));
        let one = admin.inner().fetch_group_list(Some("beta"), Duration::from_secs(10)).expect("group list");
        assert_eq!(one.groups().iter().map(|g| (g.name(), g.state())).collect::<Vec<_>>(), [("beta", "Stable")]);

        // Offsets reset by librdkafka's admin API: alpha (empty) is moved back;
        // beta, with a member, refuses it (UNKNOWN_MEMBER_ID) and keeps its own.
        let ends: Vec<i64> = (0..3).map(|p| kafka::watermarks(&bootstrap, "both", p).1).collect();
        let listed = group_offsets_admin(&bootstrap, "alpha", "both", &[0, 1, 2], None).expect("list offsets");
        assert_eq!(listed, [(0, ends[0], 0), (1, ends[1], 0), (2, ends[2], 0)]);
        let reset = [5, 0, ends[2] - 1];
        let altered = group_offsets_admin(&bootstrap, "alpha", "both", &[0, 1, 2], Some(&reset)).expect("alter");
        assert_eq!(altered, [(0, 5, 0), (1, 0, 0), (2, ends[2] - 1, 0)]);
        let listed = group_offsets_admin(&bootstrap, "alpha", "both", &[0, 1, 2], None).expect("list offsets");
        assert_eq!(listed, altered);
        let refused = group_offsets_admin(&bootstrap, "beta", "both", &[0], Some(&[0])).expect("alter");
        assert_eq!(refused, [(0, 0, 25)], "UNKNOWN_MEMBER_ID");
        let beta_offsets = group_offsets_admin(&bootstrap, "beta", "both", &[0], None).expect("list offsets");
        assert_eq!(beta_offsets, [(0, ends[0], 0)]);
        // A member of alpha resumes where the admin put it.
        let want = (ends[0] - 5 + ends[1] + 1) as usize;
        let resumed = consume_group(&bootstrap, "alpha", "both", want);
        for (p, from) in reset.iter().enumerate() {
            let first = resumed.iter().find(|m| m.0 == p as i32).map(|m| m.1);
            assert_eq!(first, Some(*from), "partition {p} resumed at the reset offset");
        }

        let mut raw = Raw::connect(&broker);
        let listed = list_groups(&mut raw);
        assert_eq!(listed.get("alpha").map(String::as_str), Some("Empty"));
        assert_eq!(listed.get("beta").map(String::as_str), Some("Stable"));

        let described: DescribeGroupsResponse = raw.call(
            ApiKey::DescribeGroups,
            5,
            &DescribeGroupsRequest::default().with_groups(vec![
                GroupId(StrBytes::from_static_str("beta")),
                GroupId(StrBytes::from_static_str("never")),
            ]),
        );
        let beta = &described.groups[0];
        assert_eq!(beta.group_state.as_str(), "Stable");
        assert_eq!(beta.protocol_type.as_str(), "consumer");
        assert_eq!(beta.members.len(), 1);
        assert!(!beta.members[0].member_assignment.is_empty());
        assert!(beta.members[0].client_host.starts_with("/127.0.0.1"));
        assert_eq!(described.groups[1].group_state.as_str(), "Dead");

        let delete = |raw: &mut Raw, name: &'static str| {
            let response: DeleteGroupsResponse = raw.call(
                ApiKey::DeleteGroups,
                2,
                &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(StrBytes::from_static_str(name))]),
            );
            response.results[0].error_code
        };
        assert_eq!(delete(&mut raw, "beta"), 68, "NON_EMPTY_GROUP");
        assert_eq!(delete(&mut raw, "never"), 69, "GROUP_ID_NOT_FOUND");
        assert_eq!(delete(&mut raw, "alpha"), 0);
        assert!(!list_groups(&mut raw).contains_key("alpha"));
        let fetch =
            OffsetFetchRequest::default().with_group_id(GroupId(StrBytes::from_static_str("alpha"))).with_topics(None);
        let response: OffsetFetchResponse = raw.call(ApiKey::OffsetFetch, 7, &fetch);
        assert!(response.topics.is_empty(), "deleted group keeps no offsets");
    });
    member.close();
    broker.stop();
}

/// Records the rebalance callbacks a consumer sees.
struct Recorder(Arc<Mutex<Vec<String>>>);
impl ClientContext for Recorder {}
impl ConsumerContext for Recorder {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance) {
        let event = match rebalance {
            Rebalance::Assign(tpl) => format!("assign {}", tpl.count()),
            Rebalance::Revoke(tpl) => format!("revoke {}", tpl.count()),
            Rebalance::Error(e) => format!("error {e}"),
        };
        self.0.lock().unwrap().push(event);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_rebalances_incrementally() {
    let broker = Broker::start("groups-coop", 2, &["--group-initial-rebalance-delay-ms", "0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "coop", 4, &[]).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let config = group_config(&bootstrap, "coop-group", &[("partition.assignment.strategy", "cooperative-sticky")]);
    let first: BaseConsumer<Recorder> = config.create_with_context(Recorder(events.clone())).unwrap();
    first.subscribe(&["coop"]).unwrap();
    let owned = |c: &BaseConsumer<Recorder>| c.assignment().unwrap().count();
    tokio::task::block_in_place(|| {
        wait_until("the first member to own everything", Duration::from_secs(30), || {
            first.poll(Duration::from_millis(50));
            owned(&first) == 4
        });
        let second: BaseConsumer = config.create().unwrap();
        second.subscribe(&["coop"]).unwrap();
        wait_until("two members with two partitions each", Duration::from_secs(40), || {
            first.poll(Duration::from_millis(50));
            second.poll(Duration::from_millis(50));
            owned(&first) == 2 && second.assignment().unwrap().count() == 2
        });
    });
    let events = events.lock().unwrap().clone();
    // Incremental: the first member gave up two partitions and kept two; it never revoked all four.
    assert!(events.contains(&"revoke 2".to_string()), "{events:?}");
    assert!(!events.contains(&"revoke 4".to_string()), "{events:?}");
    broker.stop();
}

/// Static membership (KIP-345) with librdkafka: a static member that closes
/// (without leaving) and starts again within its session gets its partitions
/// back, and the other member sees no rebalance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_member_restarts_without_a_rebalance() {
    let broker = Broker::start("groups-static", 2, &["--group-initial-rebalance-delay-ms", "0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "statics", 4, &[]).await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let config = |instance: &str| {
        group_config(&bootstrap, "static-group", &[("group.instance.id", instance), ("session.timeout.ms", "30000")])
    };
    tokio::task::block_in_place(|| {
        let a: BaseConsumer<Recorder> = config("static-a").create_with_context(Recorder(events.clone())).unwrap();
        a.subscribe(&["statics"]).unwrap();
        let partitions = |c: &BaseConsumer<Recorder>| -> BTreeSet<i32> {
            c.assignment().unwrap().elements().iter().map(|e| e.partition()).collect()
        };
        let b: BaseConsumer<Recorder> =
            config("static-b").create_with_context(Recorder(Arc::new(Mutex::new(Vec::new())))).unwrap();
        b.subscribe(&["statics"]).unwrap();
        wait_until("two static members with two partitions each", Duration::from_secs(40), || {
            a.poll(Duration::from_millis(50));
            b.poll(Duration::from_millis(50));
            exclusive_cover(&[partitions(&a), partitions(&b)], 4) && partitions(&a).len() == 2
        });
        let before = partitions(&b);
        events.lock().unwrap().clear();
        drop(b);
        let again: BaseConsumer<Recorder> =
            config("static-b").create_with_context(Recorder(Arc::new(Mutex::new(Vec::new())))).unwrap();
        again.subscribe(&["statics"]).unwrap();
        wait_until("the restarted member to own partitions", Duration::from_secs(20), || {
            a.poll(Duration::from_millis(50));
            again.poll(Duration::from_millis(50));
            !partitions(&again).is_empty()
        });
        for _ in 0..10 {
            a.poll(Duration::from_millis(50));
            again.poll(Duration::from_millis(50));
        }
        assert_eq!(partitions(&again), before, "the restarted member got other partitions");
        assert_eq!(partitions(&a).len(), 2);
        assert!(events.lock().unwrap().is_empty(), "the other member rebalanced: {:?}", events.lock().unwrap());
    });
    broker.stop();
}

/// Static membership (KIP-345) on the wire: a restarted static member gets a
/// new member id without a rebalance and fences its old id; OffsetDelete is
/// refused for subscribed topics; ListGroups filters by state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_members_rejoin_without_rebalance_and_offsets_can_be_deleted() {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition as OffsetDeletePartition, OffsetDeleteRequestTopic as OffsetDeleteTopic,
    };
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    use kafka_protocol::messages::{
        ConsumerProtocolSubscription, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse,
        LeaveGroupRequest, LeaveGroupResponse, OffsetDeleteRequest, OffsetDeleteResponse, SyncGroupRequest,
        SyncGroupResponse,
    };
    use kafka_protocol::protocol::Encodable;

    let broker = Broker::start("groups-static", 2, &["--group-initial-rebalance-delay-ms", "0"]);
    create_topic(&broker.bootstrap(), "statics", 2, &[]).await;
    tokio::task::block_in_place(|| {
        let mut raw = Raw::connect(&broker);
        let group = GroupId(StrBytes::from_static_str("static-group"));
        let mut subscription = bytes::BytesMut::new();
        subscription.extend_from_slice(&0i16.to_be_bytes());
        ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_static_str("statics")])
            .encode(&mut subscription, 0)
            .unwrap();
        let join = |member: &str| {
            JoinGroupRequest::default()
                .with_group_id(group.clone())
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_member_id(StrBytes::from_string(member.to_string()))
                .with_group_instance_id(Some(StrBytes::from_static_str("instance-1")))
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("range"))
                    .with_metadata(subscription.clone().freeze())])
        };
        let first: JoinGroupResponse = raw.call(ApiKey::JoinGroup, 7, &join(""));
        assert_eq!(first.error_code, 0, "a static member needs no MEMBER_ID_REQUIRED round");
        assert_eq!(first.leader, first.member_id);
        let synced: SyncGroupResponse = raw.call(
            ApiKey::SyncGroup,
            5,
            &SyncGroupRequest::default()
                .with_group_id(group.clone())
                .with_generation_id(first.generation_id)
                .with_member_id(first.member_id.clone())
                .with_group_instance_id(Some(StrBytes::from_static_str("instance-1")))
                .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
                .with_protocol_name(Some(StrBytes::from_static_str("range")))
                .with_assignments(vec![SyncGroupRequestAssignment::default()
                    .with_member_id(first.member_id.clone())
                    .with_assignment(bytes::Bytes::from_static(b"assignment-1"))]),
        );
        assert_eq!(synced.error_code, 0);
        assert_eq!(&synced.assignment[..], b"assignment-1");

        // The same instance comes back with no member id: same generation, new id, no rebalance.
        let again: JoinGroupResponse = raw.call(ApiKey::JoinGroup, 7, &join(""));
        assert_eq!(again.error_code, 0);
        assert_eq!(again.generation_id, first.generation_id, "no rebalance for a returning static member");
        assert_ne!(again.member_id, first.member_id);
        let heartbeat = |raw: &mut Raw, member: &StrBytes| -> i16 {
            let r: HeartbeatResponse = raw.call(
                ApiKey::Heartbeat,
                4,
                &HeartbeatRequest::default()
                    .with_group_id(group.clone())
                    .with_generation_id(first.generation_id)
                    .with_member_id(member.clone())
                    .with_group_instance_id(Some(StrBytes::from_static_str("instance-1"))),
            );
            r.error_code
        };
        assert_eq!(heartbeat(&mut raw, &first.member_id), 82, "the old id is fenced (FENCED_INSTANCE_ID)");
        assert_eq!(heartbeat(&mut raw, &again.member_id), 0);

        // Commit as the member, then try to delete offsets of the subscribed topic.
        let commit = OffsetCommitRequest::default()
            .with_group_id(group.clone())
            .with_generation_id_or_member_epoch(first.generation_id)
            .with_member_id(again.member_id.clone())
            .with_group_instance_id(Some(StrBytes::from_static_str("instance-1")))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("statics")))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(1)
                    .with_committed_offset(7)])]);
        let committed: OffsetCommitResponse = raw.call(ApiKey::OffsetCommit, 7, &commit);
        assert_eq!(committed.topics[0].partitions[0].error_code, 0);
        let delete =
            OffsetDeleteRequest::default().with_group_id(group.clone()).with_topics(vec![OffsetDeleteTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("statics")))
                .with_partitions(vec![OffsetDeletePartition::default().with_partition_index(1)])]);
        let refused: OffsetDeleteResponse = raw.call(ApiKey::OffsetDelete, 0, &delete);
        assert_eq!(refused.topics[0].partitions[0].error_code, 86, "GROUP_SUBSCRIBED_TO_TOPIC");

        // Leave by instance id: the group is Empty, and then the offsets can go.
        let left: LeaveGroupResponse = raw.call(
            ApiKey::LeaveGroup,
            4,
            &LeaveGroupRequest::default().with_group_id(group.clone()).with_members(vec![MemberIdentity::default()
                .with_member_id(StrBytes::default())
                .with_group_instance_id(Some(StrBytes::from_static_str("instance-1")))]),
        );
        assert_eq!(left.members[0].error_code, 0);
        let empty: ListGroupsResponse = raw.call(
            ApiKey::ListGroups,
            4,
            &ListGroupsRequest::default().with_states_filter(vec![StrBytes::from_static_str("Empty")]),
        );
        assert!(empty.groups.iter().any(|g| g.group_id == group));
        let stable: ListGroupsResponse = raw.call(
            ApiKey::ListGroups,
            4,
            &ListGroupsRequest::default().with_states_filter(vec![StrBytes::from_static_str("Stable")]),
        );
        assert!(!stable.groups.iter().any(|g| g.group_id == group));
        let deleted: OffsetDeleteResponse = raw.call(ApiKey::OffsetDelete, 0, &delete);
        assert_eq!(deleted.error_code, 0);
        assert_eq!(deleted.topics[0].partitions[0].error_code, 0);
        let fetch = OffsetFetchRequest::default().with_group_id(group.clone()).with_topics(None);
        let offsets: OffsetFetchResponse = raw.call(ApiKey::OffsetFetch, 7, &fetch);
        assert!(offsets.topics.is_empty(), "the deleted offset is gone");
    });
    broker.stop();
}

/// Offsets of a group that stays empty expire after offsets.retention.minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_of_empty_groups_expire() {
    let broker = Broker::start("groups-expiry", 1, &["--offsets-retention-minutes", "1"]);
    create_topic(&broker.bootstrap(), "expiring", 1, &[]).await;
    tokio::task::block_in_place(|| {
        let mut raw = Raw::connect(&broker);
        // Committed with no generation, as a standalone consumer does; its commit time is now.
        let commit = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("forgetful")))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("expiring")))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(3)])]);
        let committed: OffsetCommitResponse = raw.call(ApiKey::OffsetCommit, 8, &commit);
        assert_eq!(committed.topics[0].partitions[0].error_code, 0);
        let fetch = OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("forgetful")))
            .with_topics(None);
        let before: OffsetFetchResponse = raw.call(ApiKey::OffsetFetch, 7, &fetch);
        assert_eq!(before.topics[0].partitions[0].committed_offset, 3);
        // Still there well inside the minute; gone a little after it.
        std::thread::sleep(Duration::from_secs(30));
        let inside: OffsetFetchResponse = raw.call(ApiKey::OffsetFetch, 7, &fetch);
        assert_eq!(inside.topics.len(), 1);
        wait_until("the offsets to expire", Duration::from_secs(60), || {
            let after: OffsetFetchResponse = raw.call(ApiKey::OffsetFetch, 7, &fetch);
            after.topics.is_empty()
        });
    });
    broker.stop();
}
