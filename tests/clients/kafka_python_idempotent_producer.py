"""Produces to a topic with kafka-python's idempotent producer (acks=all,
retries on) until killed, printing each record the broker acknowledged as
`ACK partition offset value` and each one the producer gave up on as
`FAIL value error`.

Usage: kafka_python_idempotent_producer.py BOOTSTRAP TOPIC PREFIX PARTITIONS
Values are PREFIX-N, N counting up, sent round robin over the partitions
at about 500 records a second.
"""
import sys
import time

from kafka import KafkaProducer


def say(line):
    # One write per line: the callbacks run on the producer's I/O thread.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(bootstrap, topic, prefix, partitions):
    producer = KafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=30000,
        delivery_timeout_ms=120000,
    )
    say("READY")
    i = 0
    while True:
        value = f"{prefix}-{i}"
        partition = i % partitions
        try:
            future = producer.send(topic, value=value.encode(), partition=partition)
        except Exception as e:  # noqa: BLE001 - reported, and the run goes on
            say(f"FAIL {value} {e!r}")
        else:
            future.add_callback(lambda meta, v=value: say(f"ACK {meta.partition} {meta.offset} {v}"))
            future.add_errback(lambda e, v=value: say(f"FAIL {v} {e!r}"))
        i += 1
        if i % 50 == 0:
            time.sleep(0.1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
