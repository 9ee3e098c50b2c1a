"""A kafka-python group member, for the consumer group tests.

Usage: kafka_python_group.py BOOTSTRAP GROUP TOPIC
Joins GROUP (kafka-python's own group protocol code), prints
"ASSIGNED <partitions>" whenever its assignment changes and
"RECORD <partition> <offset> <value>" for every record, until killed.
kafka-python 3's poll() can raise a retriable error, such as a refused
connection to a broker that is down while it refreshes metadata; the
member logs it and polls again, as an application must.
"""
import sys

from kafka import KafkaConsumer
from kafka.errors import KafkaError

bootstrap, group, topic = sys.argv[1:4]
consumer = KafkaConsumer(
    topic,
    bootstrap_servers=bootstrap,
    group_id=group,
    client_id="kafka-python-member",
    auto_offset_reset="earliest",
    session_timeout_ms=6000,
    heartbeat_interval_ms=1000,
    max_poll_interval_ms=60000,
)
last = None
while True:
    try:
        batch = consumer.poll(timeout_ms=200)
    except KafkaError as e:
        if not e.retriable:
            raise
        print(f"poll: {e!r}; again", file=sys.stderr, flush=True)
        continue
    assigned = sorted(tp.partition for tp in consumer.assignment())
    if assigned != last:
        print("ASSIGNED " + ",".join(map(str, assigned)), flush=True)
        last = assigned
    for tp, records in batch.items():
        for r in records:
            print(f"RECORD {tp.partition} {r.offset} {r.value.decode()}", flush=True)
