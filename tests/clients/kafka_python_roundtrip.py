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
  other sees no rebalance.
"""
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
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


def poll_members(members, seen, until, what):
    """Polls every member until `until()` holds, recording (partition, offset) -> member name."""
    deadline = time.time() + 60
    while not until():
        assert time.time() < deadline, f"timed out waiting for {what}: " + str({n: owned(c) for n, c in members.items()})
        for name, consumer in members.items():
            for tp, messages in consumer.poll(timeout_ms=50).items():
                for m in messages:
                    key = (tp.partition, m.offset)
                    assert key not in seen, f"{key} read twice"
                    seen[key] = name


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


def main(bootstrap):
    check_roundtrip(bootstrap)
    check_transactions(bootstrap)
    check_cooperative_sticky(bootstrap)
    check_static_membership(bootstrap)
    print("kafka-python ok")


if __name__ == "__main__":
    main(sys.argv[1])
