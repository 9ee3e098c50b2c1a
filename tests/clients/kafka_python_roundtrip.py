"""Round trip with kafka-python, a pure-Python client with its own protocol code.

Usage: kafka_python_roundtrip.py BOOTSTRAP
Prints "ok <check>" for each check that passes; exits non-zero on the first failure.
- roundtrip: creates a topic, produces keyed gzip records with headers
  (idempotent, acks=all), reads them back from the beginning of every
  partition, and checks offsets, order, payloads, headers and timestamps;
- transactions: a committed, an aborted and a committed transaction, offsets
  sent to the last one; a read_committed consumer sees the committed records
  only, and the group's committed offset is the one sent.
"""
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

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


def main(bootstrap):
    check_roundtrip(bootstrap)
    check_transactions(bootstrap)
    print("kafka-python ok")


if __name__ == "__main__":
    main(sys.argv[1])
