"""Checks with confluent-kafka (Python over librdkafka), as an application would use it.

Usage: confluent_kafka_checks.py BOOTSTRAP ADMIN_URL
Each check prints "ok <name>" when it passes; the first failure raises and
exits non-zero. The last line is "confluent-kafka ok".

- admin: create topics (with configs), describe them and their configs,
  alter a config, add partitions, delete a topic;
- codecs: an idempotent acks=all producer per codec (none, gzip, snappy,
  lz4, zstd) with keys, headers and timestamps, read back exactly;
- group: two consumers of one classic group share the partitions, read every
  record once (committing before a rebalance takes partitions away), commit,
  and the committed offsets are what they read; the group is listed and
  described, and its offsets are reset once it is empty;
- cooperative-sticky: a second member of a cooperative-sticky group takes
  half the partitions, and the first is revoked only those;
- static-membership: two static members (group.instance.id); one closes and
  starts again within its session and gets its partitions back, and the
  other sees no rebalance;
- consumer-protocol: KIP-848's group protocol (group.protocol=consumer): two
  members split the partitions, every record is read once, the group is
  described as a consumer group, and the committed offsets are what was read;
- transactions: a committed and an aborted transaction, offsets sent to the
  transaction; a read_committed consumer sees the committed records only;
- offsets: watermarks and offsets_for_times; delete_records moves the log
  start;
- telemetry: with a client metrics subscription for the client id
  `ck-telemetry` (made by the test), a producer of that id pushes its
  producer metrics (KIP-714), which the broker's admin listener shows on
  `/metrics` (read with Prometheus's parser) and `/api/clients`.
"""
import json
import urllib.request
import sys
import time
import uuid

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
    ConsumerGroupTopicPartitions,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

TIMEOUT_S = 30
BASE_TS = 1_700_000_000_000


def run_id():
    return uuid.uuid4().hex[:8]


def wait_all(futures):
    return {name: f.result(timeout=TIMEOUT_S) for name, f in futures.items()}


def create_topic(admin, name, partitions, config=None):
    wait_all(admin.create_topics([NewTopic(name, partitions, 1, config=config or {})], operation_timeout=TIMEOUT_S))


def produce_all(producer, topic, records):
    """Produces (key, value, headers, partition) tuples; returns the delivered (partition, offset) per index."""
    delivered = {}
    errors = []

    def report(index):
        def on_delivery(err, msg):
            if err is not None:
                errors.append((index, err))
            else:
                delivered[index] = (msg.partition(), msg.offset())

        return on_delivery

    for i, (key, value, headers, partition) in enumerate(records):
        producer.produce(
            topic,
            key=key,
            value=value,
            headers=headers,
            partition=partition,
            timestamp=BASE_TS + i,
            on_delivery=report(i),
        )
        producer.poll(0)
    left = producer.flush(TIMEOUT_S)
    assert left == 0, f"{left} records not delivered"
    assert not errors, errors[:5]
    assert len(delivered) == len(records), (len(delivered), len(records))
    return delivered


def read(consumer, count, deadline_s=TIMEOUT_S):
    """Polls until `count` records arrived; fails on any error or a timeout."""
    got = []
    deadline = time.time() + deadline_s
    while len(got) < count and time.time() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise KafkaException(msg.error())
        got.append(msg)
    assert len(got) == count, f"read {len(got)} of {count} records"
    return got


def check_admin(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"ck-admin-{run_id()}"
    create_topic(admin, topic, 2, {"retention.ms": "3600000", "cleanup.policy": "delete"})
    metadata = admin.list_topics(timeout=TIMEOUT_S)
    assert topic in metadata.topics, sorted(metadata.topics)
    assert len(metadata.topics[topic].partitions) == 2
    assert len(metadata.brokers) == 1, metadata.brokers

    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = list(admin.describe_configs([resource]).values())[0].result(timeout=TIMEOUT_S)
    assert configs["retention.ms"].value == "3600000", configs["retention.ms"]
    assert not configs["retention.ms"].is_default
    assert configs["segment.bytes"].is_default
    altered = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)],
    )
    wait_all(admin.incremental_alter_configs([altered]))
    configs = list(admin.describe_configs([resource]).values())[0].result(timeout=TIMEOUT_S)
    assert configs["retention.ms"].value == "7200000", configs["retention.ms"]
    assert configs["cleanup.policy"].value == "delete", configs["cleanup.policy"]

    wait_all(admin.create_partitions([NewPartitions(topic, 4)]))
    deadline = time.time() + TIMEOUT_S
    while len(admin.list_topics(topic, timeout=TIMEOUT_S).topics[topic].partitions) != 4:
        assert time.time() < deadline, "partitions never grew to 4"
        time.sleep(0.2)

    # Growing to fewer partitions is refused with Kafka's error.
    try:
        wait_all(admin.create_partitions([NewPartitions(topic, 2)]))
        raise AssertionError("shrinking partitions was accepted")
    except KafkaException as e:
        assert e.args[0].code() == KafkaError.INVALID_PARTITIONS, e

    # A topic that exists already.
    try:
        create_topic(admin, topic, 1)
        raise AssertionError("creating an existing topic was accepted")
    except KafkaException as e:
        assert e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, e

    wait_all(admin.delete_topics([topic], operation_timeout=TIMEOUT_S))
    deadline = time.time() + TIMEOUT_S
    while topic in admin.list_topics(timeout=TIMEOUT_S).topics:
        assert time.time() < deadline, "deleted topic still listed"
        time.sleep(0.2)
    print("ok admin")


def check_codecs(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
        topic = f"ck-{codec}-{run_id()}"
        create_topic(admin, topic, 3)
        producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "compression.type": codec,
                "linger.ms": 5,
            }
        )
        records = [
            (f"key-{i % 13}".encode(), f"{codec}-value-{i}".encode() * 8, [("i", str(i).encode())], i % 3)
            for i in range(2000)
        ]
        delivered = produce_all(producer, topic, records)
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"ck-reader-{run_id()}",
                "enable.auto.commit": False,
            }
        )
        consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
        got = read(consumer, len(records))
        consumer.close()
        by_place = {(m.partition(), m.offset()): m for m in got}
        assert len(by_place) == len(records), "duplicates read"
        for i, (key, value, headers, partition) in enumerate(records):
            m = by_place[delivered[i]]
            assert m.partition() == partition
            assert (m.key(), m.value()) == (key, value), (i, m.key(), m.value()[:20])
            assert m.headers() == headers, (i, m.headers())
            assert m.timestamp()[1] == BASE_TS + i, (i, m.timestamp())
        # Offsets within a partition are dense from 0 and follow send order.
        for p in range(3):
            offsets = sorted(off for (part, off) in by_place if part == p)
            assert offsets == list(range(len(offsets))), (codec, p, offsets[:5])
        print(f"ok codec {codec}")


def check_group(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"ck-group-{run_id()}"
    group = f"ck-group-{run_id()}"
    create_topic(admin, topic, 4)
    producer = Producer({"bootstrap.servers": bootstrap})
    records = [(None, f"g-{i}".encode(), None, i % 4) for i in range(400)]
    produce_all(producer, topic, records)

    def member():
        return Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "partition.assignment.strategy": "range",
            }
        )

    def hand_over(consumer, partitions):
        # Commit what was read before partitions move, so no one reads it again.
        try:
            consumer.commit(asynchronous=False)
        except KafkaException as e:
            assert e.args[0].code() == KafkaError._NO_OFFSET, e

    a, b = member(), member()
    a.subscribe([topic], on_revoke=hand_over)
    b.subscribe([topic], on_revoke=hand_over)
    seen = {}
    deadline = time.time() + TIMEOUT_S
    while len(seen) < len(records) and time.time() < deadline:
        for c in (a, b):
            msg = c.poll(0.2)
            if msg is None or msg.error():
                assert msg is None or msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                continue
            key = (msg.partition(), msg.offset())
            assert key not in seen, f"{key} read twice"
            seen[key] = c
    assert len(seen) == len(records), f"group read {len(seen)} of {len(records)}"
    assigned_a = {tp.partition for tp in a.assignment()}
    assigned_b = {tp.partition for tp in b.assignment()}
    assert assigned_a and assigned_b and not (assigned_a & assigned_b), (assigned_a, assigned_b)
    assert assigned_a | assigned_b == {0, 1, 2, 3}
    a.commit(asynchronous=False)
    b.commit(asynchronous=False)
    committed = a.committed([TopicPartition(topic, p) for p in range(4)], timeout=TIMEOUT_S)
    assert sorted((tp.partition, tp.offset) for tp in committed) == [(p, 100) for p in range(4)], committed

    listed = admin.list_consumer_groups().result(timeout=TIMEOUT_S)
    assert group in [g.group_id for g in listed.valid], listed.valid
    described = admin.describe_consumer_groups([group])[group].result(timeout=TIMEOUT_S)
    assert len(described.members) == 2, described.members
    assert str(described.state).endswith("STABLE"), described.state
    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(
        timeout=TIMEOUT_S
    )
    assert sorted((tp.partition, tp.offset) for tp in offsets.topic_partitions) == [(p, 100) for p in range(4)]
    a.close()
    b.close()

    # Once the group is empty, an operator resets its offsets.
    reset = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 10), TopicPartition(topic, 3, 0)])
    admin.alter_consumer_group_offsets([reset])[group].result(timeout=TIMEOUT_S)
    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(
        timeout=TIMEOUT_S
    )
    assert sorted((tp.partition, tp.offset) for tp in offsets.topic_partitions) == [(0, 10), (1, 100), (2, 100), (3, 0)]
    print("ok group")


def poll_members(members, seen, until, what, deadline_s=TIMEOUT_S):
    """Polls every member until `until()` holds, recording (partition, offset) -> member; fails on errors."""
    deadline = time.time() + deadline_s
    while not until():
        assert time.time() < deadline, f"timed out waiting for {what}"
        for name, c in members.items():
            msg = c.poll(0.1)
            if msg is None:
                continue
            if msg.error():
                assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                continue
            key = (msg.partition(), msg.offset())
            assert key not in seen, f"{key} read twice"
            seen[key] = name


def owned(consumer):
    return {tp.partition for tp in consumer.assignment()}


def check_cooperative_sticky(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"ck-coop-{run_id()}"
    group = f"ck-coop-{run_id()}"
    create_topic(admin, topic, 4)
    revoked = {"a": [], "b": []}

    def member(name):
        c = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "cooperative-sticky",
            }
        )
        c.subscribe([topic], on_revoke=lambda _c, ps: revoked[name].append(sorted(tp.partition for tp in ps)))
        return c

    a = member("a")
    members = {"a": a}
    poll_members(members, {}, lambda: owned(a) == {0, 1, 2, 3}, "the first member to own every partition")
    b = member("b")
    members["b"] = b
    poll_members(
        members, {}, lambda: len(owned(a)) == 2 and len(owned(b)) == 2, "two members with two partitions each"
    )
    assert not owned(a) & owned(b), (owned(a), owned(b))
    # Incremental: the first member gave up the two partitions that moved, never all four.
    assert [len(r) for r in revoked["a"] if r] == [2], revoked
    records = [(None, f"c-{i}".encode(), None, i % 4) for i in range(200)]
    produce_all(Producer({"bootstrap.servers": bootstrap}), topic, records)
    seen = {}
    poll_members(members, seen, lambda: len(seen) == len(records), "every record")
    assert {p for (p, _), n in seen.items() if n == "a"} == owned(a), seen
    a.close()
    b.close()
    print("ok cooperative-sticky")


def check_static_membership(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"ck-static-{run_id()}"
    group = f"ck-static-{run_id()}"
    create_topic(admin, topic, 4)
    revoked = []

    def member(instance, on_revoke):
        c = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "group.instance.id": instance,
                "session.timeout.ms": 30000,
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "range",
            }
        )
        c.subscribe([topic], on_revoke=on_revoke)
        return c

    a = member("static-a", lambda _c, ps: revoked.append(sorted(tp.partition for tp in ps)))
    b = member("static-b", lambda _c, ps: None)
    members = {"a": a, "b": b}
    poll_members(
        members, {}, lambda: len(owned(a)) == 2 and len(owned(b)) == 2, "two static members with two partitions each"
    )
    before = owned(b)
    revoked.clear()
    # A static member's close does not leave the group; its restart takes its place back.
    b.close()
    again = member("static-b", lambda _c, ps: None)
    members["b"] = again
    poll_members(members, {}, lambda: bool(owned(again)), "the restarted member to own partitions")
    records = [(None, f"s-{i}".encode(), None, i % 4) for i in range(200)]
    produce_all(Producer({"bootstrap.servers": bootstrap}), topic, records)
    seen = {}
    poll_members(members, seen, lambda: len(seen) == len(records), "every record")
    assert owned(again) == before, (owned(again), before)
    assert not revoked, f"the other member rebalanced: {revoked}"
    a.close()
    again.close()
    print("ok static-membership")


def check_consumer_protocol(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"ck-kip848-{run_id()}"
    group = f"ck-kip848-{run_id()}"
    create_topic(admin, topic, 4)

    def member():
        c = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "group.protocol": "consumer",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        c.subscribe([topic])
        return c

    a = member()
    members = {"a": a}
    poll_members(members, {}, lambda: owned(a) == {0, 1, 2, 3}, "the first member to own every partition")
    b = member()
    members["b"] = b
    poll_members(
        members,
        {},
        lambda: len(owned(a)) == 2 and len(owned(b)) == 2 and not owned(a) & owned(b),
        "two members with two partitions each",
    )
    records = [(None, f"k-{i}".encode(), None, i % 4) for i in range(400)]
    produce_all(Producer({"bootstrap.servers": bootstrap}), topic, records)
    seen = {}
    poll_members(members, seen, lambda: len(seen) == len(records), "every record")
    for name, c in members.items():
        assert {p for (p, _), n in seen.items() if n == name} == owned(c), (name, owned(c))
        c.commit(asynchronous=False)

    described = admin.describe_consumer_groups([group])[group].result(timeout=TIMEOUT_S)
    assert len(described.members) == 2, described.members
    assert str(described.type).endswith("CONSUMER"), described.type
    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(
        timeout=TIMEOUT_S
    )
    assert sorted((tp.partition, tp.offset) for tp in offsets.topic_partitions) == [(p, 100) for p in range(4)]
    a.close()
    b.close()
    print("ok consumer-protocol")


def check_transactions(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"ck-txn-{run_id()}"
    source_group = f"ck-txn-group-{run_id()}"
    create_topic(admin, topic, 2)
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"ck-txn-{run_id()}"})
    producer.init_transactions(TIMEOUT_S)

    producer.begin_transaction()
    for i in range(50):
        producer.produce(topic, key=b"k", value=f"committed-{i}".encode(), partition=i % 2)
    producer.send_offsets_to_transaction(
        [TopicPartition(topic, 0, 7)],
        Consumer({"bootstrap.servers": bootstrap, "group.id": source_group}).consumer_group_metadata(),
        TIMEOUT_S,
    )
    producer.commit_transaction(TIMEOUT_S)

    producer.begin_transaction()
    for i in range(30):
        producer.produce(topic, key=b"k", value=f"aborted-{i}".encode(), partition=i % 2)
    producer.flush(TIMEOUT_S)
    producer.abort_transaction(TIMEOUT_S)

    producer.begin_transaction()
    producer.produce(topic, key=b"k", value=b"last", partition=0)
    producer.commit_transaction(TIMEOUT_S)

    reader = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"ck-txn-reader-{run_id()}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    reader.assign([TopicPartition(topic, p, 0) for p in range(2)])
    # Every committed record, and then the end of both partitions: the aborted
    # records never show. A partition's end may come before the other's
    # records, so ends are noted all along (a record after one unnotes it).
    values = []
    eofs = set()
    deadline = time.time() + TIMEOUT_S
    while (len(values) < 51 or eofs != {0, 1}) and time.time() < deadline:
        msg = reader.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
            eofs.add(msg.partition())
            continue
        eofs.discard(msg.partition())
        values.append(msg.value().decode())
    assert sorted(values) == sorted([f"committed-{i}" for i in range(50)] + ["last"]), values
    assert eofs == {0, 1}, eofs
    reader.close()

    offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(source_group)])[source_group].result(
        timeout=TIMEOUT_S
    )
    assert [(tp.topic, tp.partition, tp.offset) for tp in offsets.topic_partitions] == [(topic, 0, 7)], offsets
    print("ok transactions")


def check_offsets(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"ck-offsets-{run_id()}"
    create_topic(admin, topic, 1)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    produce_all(producer, topic, [(None, b"x", None, 0) for _ in range(100)])
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ck-offsets-{run_id()}"})
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT_S)
    assert (low, high) == (0, 100), (low, high)
    # Record i carries timestamp BASE_TS + i.
    found = consumer.offsets_for_times([TopicPartition(topic, 0, BASE_TS + 42)], timeout=TIMEOUT_S)
    assert found[0].offset == 42, found
    past_end = consumer.offsets_for_times([TopicPartition(topic, 0, BASE_TS + 10_000)], timeout=TIMEOUT_S)
    assert past_end[0].offset == -1, past_end
    deleted = admin.delete_records([TopicPartition(topic, 0, 42)])
    assert list(deleted.values())[0].result(timeout=TIMEOUT_S).low_watermark == 42
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT_S, cached=False)
    assert (low, high) == (42, 100), (low, high)
    consumer.close()
    print("ok offsets")


def check_telemetry(bootstrap, admin_url):
    from prometheus_client.parser import text_string_to_metric_families

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"ck-telemetry-{run_id()}"
    create_topic(admin, topic, 1)
    producer = Producer({"bootstrap.servers": bootstrap, "client.id": "ck-telemetry", "enable.metrics.push": True})
    deadline = time.time() + TIMEOUT_S
    while True:
        produce_all(producer, topic, [(None, b"x", None, 0)])
        with urllib.request.urlopen(f"{admin_url}/metrics", timeout=TIMEOUT_S) as r:
            text = r.read().decode()
        pushed = [
            s
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "sluice_client_metric"
            and s.labels.get("client_id") == "ck-telemetry"
            and s.labels.get("name", "").startswith("org.apache.kafka.producer.")
        ]
        if pushed:
            break
        assert time.time() < deadline, "confluent-kafka's metrics never showed"
        time.sleep(0.5)
    assert {s.labels.get("client_software_name") for s in pushed} == {"confluent-kafka-python"}, pushed[0].labels
    with urllib.request.urlopen(f"{admin_url}/api/clients", timeout=TIMEOUT_S) as r:
        clients = json.load(r)["clients"]
    mine = [c for c in clients if c["client_id"] == "ck-telemetry"]
    assert len(mine) == 1 and mine[0]["pushes"] >= 1, clients
    # Another client id matches no subscription and pushes nothing.
    assert not [c for c in clients if c["client_id"] != "ck-telemetry" and c.get("pushes")], clients
    producer.flush(TIMEOUT_S)
    print("ok telemetry")


def main(bootstrap, admin_url):
    check_admin(bootstrap)
    check_codecs(bootstrap)
    check_group(bootstrap)
    check_cooperative_sticky(bootstrap)
    check_static_membership(bootstrap)
    check_consumer_protocol(bootstrap)
    check_transactions(bootstrap)
    check_offsets(bootstrap)
    check_telemetry(bootstrap, admin_url)
    print("confluent-kafka ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
