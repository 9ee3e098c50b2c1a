"""Produces to a topic with confluent-kafka until killed, printing each record
the broker acknowledged (acks=all) as `ACK partition offset value`.

Usage: confluent_kafka_acked_producer.py BOOTSTRAP TOPIC PREFIX PARTITIONS
Prints READY once the first record is acknowledged. No retries and no
idempotence, so a record is written at most once; one the broker never
acknowledged may or may not be stored. Paced at about 2,000 records a second,
like the kafka-python producer beside it, so the topic stays small.
"""
import sys
import time

from confluent_kafka import Producer


def main(bootstrap, topic, prefix, partitions):
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": False,
            "retries": 0,
            "linger.ms": 1,
            "message.timeout.ms": 30000,
        }
    )

    acked = []

    def on_delivery(err, msg):
        if err is None:
            acked.append(msg.offset())
            sys.stdout.write(f"ACK {msg.partition()} {msg.offset()} {msg.value().decode()}\n")
            sys.stdout.flush()

    first = f"{prefix}-0-" + "c" * 100
    producer.produce(topic, value=first.encode(), key=first.encode(), partition=0, on_delivery=on_delivery)
    producer.flush(30)
    assert acked, "the first record was not acknowledged"
    print("READY", flush=True)
    i = 1
    while True:
        value = f"{prefix}-{i}-" + "c" * 100
        try:
            producer.produce(
                topic, value=value.encode(), key=value.encode(), partition=i % partitions, on_delivery=on_delivery
            )
        except BufferError:  # the queue is full while the broker is away: wait for room
            producer.poll(0.01)
            continue
        producer.poll(0)
        time.sleep(0.0005)
        i += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
