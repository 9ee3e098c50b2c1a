"""Round trip with kafka-python, a pure-Python client with its own protocol code.

Usage: kafka_python_roundtrip.py BOOTSTRAP
Creates a topic, produces keyed records with headers (idempotent, acks=all), reads them
back from the beginning of every partition, and checks offsets, order,
payloads, headers and timestamps. Exits non-zero on any mismatch.
"""
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

RECORDS = 3000
PARTITIONS = 3
BASE_TS = 1_650_000_000_000


def main(bootstrap):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kafka-python-test")
    admin.create_topics([NewTopic("py-topic", num_partitions=PARTITIONS, replication_factor=1)])
    names = admin.list_topics()
    assert "py-topic" in names, names
    admin.close()

    # kafka-python's defaults: an idempotent producer with acks=all.
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, compression_type="gzip")
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
    print(f"kafka-python round trip ok: {RECORDS} records")


if __name__ == "__main__":
    main(sys.argv[1])
