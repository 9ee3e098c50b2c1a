"""Round trip with kafka-python, a pure-Python client with its own protocol code.

Usage: kafka_python_roundtrip.py BOOTSTRAP
Prints "ok <check>" for each check that passes; exits non-zero on the first failure.
- roundtrip: creates a topic, produces keyed gzip records with headers
  (idempotent, acks=all), reads them back from the beginning of every
  partition, and checks offsets, order, payloads, headers and timestamps;
- transactions: a committed, an aborted and a committed transaction, offsets
  sent to the last one; a read_committed consumer sees the committed records
  only, and the group's committed offset is the one sent;
- cooperative-sticky: a second member of a cooperative-sticky group takes
  half the partitions, and the first is revoked only those; every record is
  read once;
- static-membership: two static members (group_instance_id); one closes and
  starts again within its session and gets its partitions back, and the
  other sees no rebalance;
- codec snappy, codec lz4, codec zstd: an idempotent acks=all producer per
  codec, read back exactly (keys, values, headers, dense offsets);
- partitions: a topic grows from 2 to 4 partitions; shrinking it is refused
  with INVALID_PARTITIONS;
- configs: a topic's config set at creation is described, altered
  (IncrementalAlterConfigs) and described again; defaults are not listed as
  set;
- delete-records: delete_records moves the log start, which the consumer's
  beginning offsets then show;
- groups: a group with a member is listed and described (state, member,
  assignment); its committed offsets are listed;
- offsets-reset: once the group is empty, an admin alters its offsets and
  reads them back;
- transactions-listed: an open transaction is listed and described with its
  partitions, and described as committed after its commit;
- metadata-quorum-features: DescribeQuorum names this broker as the leader
  and only voter; DescribeFeatures shows metadata.version and
  transaction.version finalized.
"""
import sys
import threading
import time

from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import InvalidPartitionsError
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.coordinator.assignors.range import RangePartitionAssignor

RECORDS = 3000
PARTITIONS = 3
BASE_TS = 1_650_000_000_000


def check_roundtrip(bootstrap):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kafka-python-test")
    admin.create_topics([NewTopic("py-topic", num_partitions=PARTITIONS, replication_factor=1)])
    names = admin.list_topics()
    assert "py-topic" in names, names
    admin.close()

    producer = KafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, compression_type="gzip", enable_idempotence=True, acks="all"
    )
    futures = []
    for i in range(RECORDS):
        key = f"key-{i % 17}".encode()
        futures.append(
            producer.send(
                "py-topic",
                key=key,
                value=f"value-{i}".encode(),
                headers=[("i", str(i).encode())],
                timestamp_ms=BASE_TS + i,
            )
        )
    producer.flush()
    for f in futures:
        meta = f.get(timeout=30)
        assert meta.offset >= 0
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    partitions = [TopicPartition("py-topic", p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    end = consumer.end_offsets(partitions)
    assert sum(end.values()) == RECORDS, end
    seen = {}
    last_offset = {}
    last_index_per_key = {}
    deadline = time.time() + 60
    while len(seen) < RECORDS:
        assert time.time() < deadline, f"timed out with {len(seen)} records"
        for tp, messages in consumer.poll(timeout_ms=1000).items():
            for m in messages:
                i = int(dict(m.headers)["i"])
                assert i not in seen, f"record {i} twice"
                seen[i] = True
                assert m.value == f"value-{i}".encode()
                assert m.key == f"key-{i % 17}".encode()
                assert m.timestamp == BASE_TS + i
                assert m.offset == last_offset.get(tp.partition, -1) + 1, "offsets must be dense"
                last_offset[tp.partition] = m.offset
                assert last_index_per_key.get(m.key, -1) < i, "per-key order"
                last_index_per_key[m.key] = i
    consumer.close()
    print(f"ok roundtrip ({RECORDS} records)")


def check_transactions(bootstrap):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kafka-python-test")
    admin.create_topics([NewTopic("py-txn", num_partitions=2, replication_factor=1)])
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id="py-txn-producer")
    producer.init_transactions()

    producer.begin_transaction()
    for i in range(50):
        producer.send("py-txn", value=f"committed-{i}".encode(), partition=i % 2)
    producer.commit_transaction()

    producer.begin_transaction()
    for i in range(30):
        producer.send("py-txn", value=f"aborted-{i}".encode(), partition=i % 2)
    producer.flush()
    producer.abort_transaction()

    producer.begin_transaction()
    producer.send("py-txn", value=b"last", partition=0)
    producer.send_offsets_to_transaction({TopicPartition("py-txn", 1): OffsetAndMetadata(7)}, "py-txn-group")
    producer.commit_transaction()
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed")
    partitions = [TopicPartition("py-txn", p) for p in range(2)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    # Each partition ends with a commit marker: its last stable offset is its end.
    end = consumer.end_offsets(partitions)
    assert sum(end.values()) == 50 + 30 + 1 + 3 * 2 - 1, end
    values = []
    deadline = time.time() + 30
    while any(consumer.position(tp) < end[tp] for tp in partitions):
        assert time.time() < deadline, f"read {len(values)} records: {values}"
        for messages in consumer.poll(timeout_ms=500).values():
            values.extend(m.value.decode() for m in messages)
    consumer.close()
    assert sorted(values) == sorted([f"committed-{i}" for i in range(50)] + ["last"]), values

    offsets = admin.list_group_offsets({"py-txn-group": None})["py-txn-group"]
    assert {tp: o.offset for tp, o in offsets.items()} == {TopicPartition("py-txn", 1): 7}, offsets
    admin.close()
    print("ok transactions")


class Revocations(ConsumerRebalanceListener):
    def __init__(self):
        self.revoked = []

    def on_partitions_revoked(self, revoked):
        if revoked:
            self.revoked.append(sorted(tp.partition for tp in revoked))

    def on_partitions_assigned(self, assigned):
        pass


def owned(consumer):
    return {tp.partition for tp in consumer.assignment()}


def read_per_partition(seen):
    """{partition: (records read, highest offset read)}."""
    found = {}
    for partition, offset in seen:
        count, highest = found.get(partition, (0, -1))
        found[partition] = (count + 1, max(highest, offset))
    return dict(sorted(found.items()))


# How long one poll of a member may wait.
POLL_MS = 200


def poll_members(members, seen, until, what):
    """Polls every member, each from a thread of its own as applications do,
    until `until()` holds, recording (partition, offset) -> member name.

    One thread polling several kafka-python consumers in turn leaves each one
    waiting in a rebalance for the others to be polled, and kafka-python
    3.0.12 then at times drops the join it was waiting for and rejoins for
    ever (the group never settles and a member never fetches)."""
    deadline = time.time() + 60
    locks = {name: threading.Lock() for name in members}
    recorded = threading.Lock()
    stop = threading.Event()
    failures = []

    def run(name, consumer):
        try:
            while not stop.is_set():
                with locks[name]:
                    polled = consumer.poll(timeout_ms=POLL_MS)
                with recorded:
                    for tp, messages in polled.items():
                        for m in messages:
                            key = (tp.partition, m.offset)
                            if key in seen:
                                failures.append(f"{key} read twice")
                            seen[key] = name
        except Exception as e:  # reported by the main thread
            failures.append(f"member {name}: {e!r}")

    def check():
        for lock in locks.values():
            lock.acquire()
        try:
            with recorded:
                return until()
        finally:
            for lock in locks.values():
                lock.release()

    threads = [threading.Thread(target=run, args=item, daemon=True) for item in members.items()]
    for t in threads:
        t.start()
    try:
        while not check():
            assert not failures, failures
            if time.time() >= deadline:
                stop.set()
                for t in threads:
                    t.join()
                raise AssertionError(
                    f"timed out waiting for {what}: owned {({n: owned(c) for n, c in members.items()})}, "
                    f"read per partition {read_per_partition(seen)}, positions "
                    f"{({n: {tp.partition: c.position(tp) for tp in c.assignment()} for n, c in members.items()})}"
                )
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not failures, failures


def group_member(bootstrap, group, topic, listener, **config):
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        heartbeat_interval_ms=500,
        **config,
    )
    consumer.subscribe([topic], listener=listener)
    return consumer


def produce_to(bootstrap, topic, count, partitions):
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(count):
        producer.send(topic, value=f"{topic}-{i}".encode(), partition=i % partitions)
    producer.flush()
    producer.close()


def check_cooperative_sticky(bootstrap):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic("py-coop", num_partitions=4, replication_factor=1)])
    admin.close()
    revocations = Revocations()
    config = {"partition_assignment_strategy": [CooperativeStickyAssignor]}
    a = group_member(bootstrap, "py-coop", "py-coop", revocations, **config)
    members = {"a": a}
    poll_members(members, {}, lambda: owned(a) == {0, 1, 2, 3}, "the first member to own every partition")
    b = group_member(bootstrap, "py-coop", "py-coop", Revocations(), **config)
    members["b"] = b
    poll_members(members, {}, lambda: len(owned(a)) == 2 and len(owned(b)) == 2, "two members with two partitions each")
    assert not owned(a) & owned(b), (owned(a), owned(b))
    # Incremental: the first member gave up the two partitions that moved, never all four.
    assert [len(r) for r in revocations.revoked] == [2], revocations.revoked
    produce_to(bootstrap, "py-coop", 200, 4)
    seen = {}
    poll_members(members, seen, lambda: len(seen) == 200, "every record")
    assert {p for (p, _), n in seen.items() if n == "a"} <= owned(a), seen
    a.close()
    b.close()
    print("ok cooperative-sticky")


def check_static_membership(bootstrap):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic("py-static", num_partitions=4, replication_factor=1)])
    admin.close()
    revocations = Revocations()
    config = {"partition_assignment_strategy": [RangePartitionAssignor], "session_timeout_ms": 30000}
    a = group_member(bootstrap, "py-static", "py-static", revocations, group_instance_id="py-a", **config)
    b = group_member(bootstrap, "py-static", "py-static", Revocations(), group_instance_id="py-b", **config)
    members = {"a": a, "b": b}
    poll_members(members, {}, lambda: len(owned(a)) == 2 and len(owned(b)) == 2, "two members with two partitions each")
    before = owned(b)
    revocations.revoked.clear()
    # A static member's close does not leave the group; its restart takes its place back.
    b.close()
    again = group_member(bootstrap, "py-static", "py-static", Revocations(), group_instance_id="py-b", **config)
    members["b"] = again
    poll_members(members, {}, lambda: bool(owned(again)), "the restarted member to own partitions")
    produce_to(bootstrap, "py-static", 200, 4)
    seen = {}
    poll_members(members, seen, lambda: len(seen) == 200, "every record")
    assert owned(again) == before, (owned(again), before)
    assert not revocations.revoked, f"the other member rebalanced: {revocations.revoked}"
    a.close()
    again.close()
    print("ok static-membership")


def check_codecs(bootstrap):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    for codec in ["snappy", "lz4", "zstd"]:
        topic = f"py-{codec}"
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        producer = KafkaProducer(
            bootstrap_servers=bootstrap, linger_ms=5, compression_type=codec, enable_idempotence=True, acks="all"
        )
        count = 1000
        futures = [
            producer.send(
                topic,
                key=f"k-{i % 7}".encode(),
                value=f"{codec}-{i}".encode() * 10,
                headers=[("i", str(i).encode())],
                partition=i % 2,
            )
            for i in range(count)
        ]
        producer.flush()
        placed = {(m.partition, m.offset): i for i, m in enumerate(f.get(timeout=30) for f in futures)}
        producer.close()
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
        partitions = [TopicPartition(topic, p) for p in range(2)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        got = {}
        deadline = time.time() + 30
        while len(got) < count:
            assert time.time() < deadline, f"{codec}: read {len(got)} of {count}"
            for tp, messages in consumer.poll(timeout_ms=500).items():
                for m in messages:
                    assert (tp.partition, m.offset) not in got, "read twice"
                    got[(tp.partition, m.offset)] = m
        consumer.close()
        assert sorted(got) == sorted(placed), codec
        for place, i in placed.items():
            m = got[place]
            assert (m.key, m.value) == (f"k-{i % 7}".encode(), f"{codec}-{i}".encode() * 10), (codec, i)
            assert dict(m.headers) == {"i": str(i).encode()}, (codec, i, m.headers)
        for p in range(2):
            offsets = sorted(o for (part, o) in got if part == p)
            assert offsets == list(range(len(offsets))), (codec, p)
        print(f"ok codec {codec}")
    admin.close()


def topic_config(admin, topic):
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    return described["topic"][topic]


def check_admin(bootstrap):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    topic = "py-admin"
    admin.create_topics(
        [NewTopic(topic, num_partitions=2, replication_factor=1, topic_configs={"retention.ms": "3600000"})]
    )

    admin.create_partitions({topic: 4})
    described = admin.describe_topics([topic])
    assert sorted(p["partition_index"] for p in described[0]["partitions"]) == [0, 1, 2, 3], described
    try:
        admin.create_partitions({topic: 2})
        raise AssertionError("shrinking partitions was accepted")
    except InvalidPartitionsError:
        pass
    print("ok partitions")

    configs = topic_config(admin, topic)
    assert configs["retention.ms"]["value"] == "3600000", configs
    assert configs["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG", configs
    assert "segment.bytes" not in configs, "a default listed as modified"
    resource = ConfigResource(
        ConfigResourceType.TOPIC,
        topic,
        configs={"retention.ms": (AlterConfigOp.SET, "7200000"), "cleanup.policy": (AlterConfigOp.SET, "compact")},
    )
    admin.alter_configs([resource])
    configs = topic_config(admin, topic)
    assert configs["retention.ms"]["value"] == "7200000", configs
    assert configs["cleanup.policy"]["value"] == "compact", configs
    admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"cleanup.policy": (AlterConfigOp.DELETE, None)})]
    )
    configs = topic_config(admin, topic)
    assert "cleanup.policy" not in configs and configs["retention.ms"]["value"] == "7200000", configs
    print("ok configs")

    produce_to(bootstrap, topic, 400, 4)
    tp = TopicPartition(topic, 0)
    deleted = admin.delete_records({tp: 42})
    assert deleted[tp]["low_watermark"] == 42, deleted
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    assert consumer.beginning_offsets([tp]) == {tp: 42}
    assert consumer.end_offsets([tp]) == {tp: 100}
    consumer.close()
    print("ok delete-records")

    group = "py-admin-group"
    member = group_member(bootstrap, group, topic, Revocations(), enable_auto_commit=False)
    seen = {}
    poll_members({"a": member}, seen, lambda: len(seen) == 400 - 42, "every record after the deleted ones")
    member.commit()
    listed = admin.list_groups()
    assert group in [g["group_id"] for g in listed], listed
    described = admin.describe_groups([group])[group]
    assert described["group_state"] == "Stable", described
    assert described["protocol_type"] == "consumer", described
    assert len(described["members"]) == 1, described["members"]
    assignment = described["members"][0]["member_assignment"]
    assigned = sorted(p for t in assignment["assigned_partitions"] for p in t["partitions"])
    assert assigned == [0, 1, 2, 3], assignment
    offsets = admin.list_group_offsets({group: None})[group]
    assert {t.partition: o.offset for t, o in offsets.items()} == {0: 100, 1: 100, 2: 100, 3: 100}, offsets
    member.close()
    print("ok groups")

    reset = {
        TopicPartition(topic, 0): OffsetAndMetadata(10, "", -1),
        TopicPartition(topic, 3): OffsetAndMetadata(0, "", -1),
    }
    errors = admin.alter_group_offsets(group, reset)
    assert all(e.errno == 0 for e in errors.values()), errors
    offsets = admin.list_group_offsets({group: None})[group]
    assert {t.partition: o.offset for t, o in offsets.items()} == {0: 10, 1: 100, 2: 100, 3: 0}, offsets
    print("ok offsets-reset")
    admin.close()


def check_transactions_listed(bootstrap):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic("py-txn-listed", num_partitions=2, replication_factor=1)])
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id="py-txn-listed")
    producer.init_transactions()
    producer.begin_transaction()
    producer.send("py-txn-listed", value=b"open", partition=1).get(timeout=30)
    listed = [t for ts in admin.list_transactions().values() for t in ts]
    mine = [t for t in listed if t.transactional_id == "py-txn-listed"]
    assert len(mine) == 1 and str(mine[0].state).endswith("ONGOING"), listed
    ongoing = admin.list_transactions(state_filters=["Ongoing"])
    assert "py-txn-listed" in [t.transactional_id for ts in ongoing.values() for t in ts], ongoing
    described = admin.describe_transactions(["py-txn-listed"])["py-txn-listed"]
    assert str(described.state).endswith("ONGOING"), described
    assert described.topic_partitions == {TopicPartition("py-txn-listed", 1)}, described
    assert described.producer_id == mine[0].producer_id, (described, mine)
    producer.commit_transaction()
    producer.close()
    described = admin.describe_transactions(["py-txn-listed"])["py-txn-listed"]
    assert str(described.state).endswith("COMPLETE_COMMIT"), described
    assert not described.topic_partitions, described
    admin.close()
    print("ok transactions-listed")


def check_metadata_quorum_features(bootstrap):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    quorum = admin.describe_metadata_quorum()
    partition = quorum["topics"][0]["partitions"][0]
    assert quorum["topics"][0]["topic_name"] == "__cluster_metadata", quorum
    node = partition["leader_id"]
    assert [v["replica_id"] for v in partition["current_voters"]] == [node], quorum
    assert partition["observers"] == [] and partition["high_watermark"] > 0, quorum
    assert [n["node_id"] for n in quorum["nodes"]] == [node], quorum
    features = admin.describe_features()
    assert features["metadata.version"]["finalized"][0] >= 1, features
    assert features["transaction.version"]["finalized"] == (2, 2), features
    assert features["transaction.version"]["supported"][1] >= 2, features
    admin.close()
    print("ok metadata-quorum-features")


def main(bootstrap):
    check_roundtrip(bootstrap)
    check_transactions(bootstrap)
    check_cooperative_sticky(bootstrap)
    check_static_membership(bootstrap)
    check_codecs(bootstrap)
    check_admin(bootstrap)
    check_transactions_listed(bootstrap)
    check_metadata_quorum_features(bootstrap)
    print("kafka-python ok")


if __name__ == "__main__":
    main(sys.argv[1])
