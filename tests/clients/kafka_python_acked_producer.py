"""Produces to a topic with kafka-python until killed, printing each record the
broker acknowledged (acks=all) as `ACK partition offset value`.

Usage: kafka_python_acked_producer.py BOOTSTRAP TOPIC PREFIX PARTITIONS
Prints READY once the first record is acknowledged. No retries, so a record is
written at most once; one the broker never acknowledged may or may not be stored.
"""
import sys

from kafka import KafkaProducer


def main(bootstrap, topic, prefix, partitions):
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        retries=0,
        enable_idempotence=False,
        linger_ms=1,
        max_block_ms=30000,
    )

    def acked(value):
        def on_success(meta):
            sys.stdout.write(f"ACK {meta.partition} {meta.offset} {value}\n")
            sys.stdout.flush()
        return on_success

    first = f"{prefix}-0-" + "p" * 100
    meta = producer.send(topic, value=first.encode(), key=first.encode(), partition=0).get(timeout=30)
    acked(first)(meta)
    print("READY", flush=True)
    i = 1
    while True:
        value = f"{prefix}-{i}-" + "p" * 100
        try:
            future = producer.send(topic, value=value.encode(), key=value.encode(), partition=i % partitions)
        except Exception:  # the broker is gone: keep trying until killed
            continue
        future.add_callback(acked(value))
        i += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
