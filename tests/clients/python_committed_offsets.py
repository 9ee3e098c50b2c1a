"""Offsets the Python clients commit, read back after the broker restarts.

Usage: python_committed_offsets.py BOOTSTRAP TOPIC commit|resume
TOPIC has one partition holding at least 100 records, record i being
"r-<i>". `commit`: a confluent-kafka member of group ck-resumer reads 37
records and commits offset 37 with metadata, and a kafka-python member of
group py-resumer does the same with 41; both read their commits back.
`resume` (run after the broker was killed and started again): each client's
group has the offset and metadata it committed, and a new member of the group
starts reading there. Prints "ok <client> <phase>" per client.
"""
import sys
import time

TIMEOUT_S = 30
OFFSETS = {"confluent-kafka": 37, "kafka-python": 41}


def confluent(bootstrap, topic, phase):
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

    offset = OFFSETS["confluent-kafka"]
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "ck-resumer",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])

    def next_record():
        deadline = time.time() + TIMEOUT_S
        while True:
            assert time.time() < deadline, "no record"
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                continue
            return msg

    if phase == "commit":
        for i in range(offset):
            msg = next_record()
            assert (msg.offset(), msg.value()) == (i, f"r-{i}".encode()), (i, msg.offset(), msg.value())
        consumer.commit(offsets=[TopicPartition(topic, 0, offset, metadata="ck-checkpoint")], asynchronous=False)
    else:
        first = next_record()
        assert (first.offset(), first.value()) == (offset, f"r-{offset}".encode()), (first.offset(), first.value())
    committed = consumer.committed([TopicPartition(topic, 0)], timeout=TIMEOUT_S)
    assert [(tp.offset, tp.metadata) for tp in committed] == [(offset, "ck-checkpoint")], committed
    if committed[0].error:
        raise KafkaException(committed[0].error)
    consumer.close()
    print(f"ok confluent-kafka {phase}", flush=True)


def kafka_python(bootstrap, topic, phase):
    from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

    offset = OFFSETS["kafka-python"]
    tp = TopicPartition(topic, 0)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id="py-resumer",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=1,
    )
    consumer.subscribe([topic])

    def next_record():
        deadline = time.time() + TIMEOUT_S
        while True:
            assert time.time() < deadline, "no record"
            for messages in consumer.poll(timeout_ms=500).values():
                return messages[0]

    if phase == "commit":
        for i in range(offset):
            m = next_record()
            assert (m.offset, m.value) == (i, f"r-{i}".encode()), (i, m.offset, m.value)
        consumer.commit({tp: OffsetAndMetadata(offset, "py-checkpoint", -1)})
    else:
        m = next_record()
        assert (m.offset, m.value) == (offset, f"r-{offset}".encode()), (m.offset, m.value)
    committed = consumer.committed(tp, metadata=True)
    assert (committed.offset, committed.metadata) == (offset, "py-checkpoint"), committed
    consumer.close()
    print(f"ok kafka-python {phase}", flush=True)


if __name__ == "__main__":
    bootstrap, topic, phase = sys.argv[1], sys.argv[2], sys.argv[3]
    assert phase in ("commit", "resume"), phase
    confluent(bootstrap, topic, phase)
    kafka_python(bootstrap, topic, phase)
