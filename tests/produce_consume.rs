//! Producing and consuming with librdkafka (the `rdkafka` crate) against the
//! real broker: every compression codec, keys, headers and timestamps.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{create_topic, Broker};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const RECORDS: usize = 100_000;
const KEYS: usize = 1000;
const PARTITIONS: i32 = 8;
const BASE_TIMESTAMP_MS: i64 = 1_700_000_000_000;

fn consumer(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "unused-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer")
}

/// Reads every partition of `topic` from the beginning until each reports EOF.
fn consume_all(bootstrap: &str, topic: &str, partitions: i32) -> Vec<rdkafka::message::OwnedMessage> {
    let consumer = consumer(bootstrap);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut eof = std::collections::HashSet::new();
    let mut messages = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while eof.len() < partitions as usize {
        assert!(std::time::Instant::now() < deadline, "consuming took too long: {} messages", messages.len());
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Ok(m)) => messages.push(m.detach()),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            Some(Err(e)) => panic!("consume error: {e}"),
        }
    }
    messages
}

async fn round_trip(codec: &str) {
    let broker = Broker::start(&format!("codec-{codec}"), 2, &[]);
    let bootstrap = broker.bootstrap();
    let topic = format!("records-{codec}");
    create_topic(&bootstrap, &topic, PARTITIONS, &[]).await;

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("acks", "all")
        .set("compression.codec", codec)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let mut deliveries = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let key = format!("key-{}", i % KEYS);
        let value = format!("{key}:{}:{}", i / KEYS, "x".repeat(i % 50));
        let headers = OwnedHeaders::new()
            .insert(Header { key: "idx", value: Some(&i.to_string()) })
            .insert(Header { key: "codec", value: Some(codec) });
        let record =
            FutureRecord::to(&topic).key(&key).payload(&value).headers(headers).timestamp(BASE_TIMESTAMP_MS + i as i64);
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e).expect("enqueue"));
    }
    for d in deliveries {
        let delivery = d.await.expect("delivery future").map_err(|(e, _)| e).expect("acks=all delivery");
        assert!((0..PARTITIONS).contains(&delivery.partition) && delivery.offset >= 0);
    }

    let bootstrap2 = bootstrap.clone();
    let topic2 = topic.clone();
    let messages = tokio::task::spawn_blocking(move || consume_all(&bootstrap2, &topic2, PARTITIONS)).await.unwrap();
    assert_eq!(messages.len(), RECORDS, "every record comes back exactly once");

    let mut next_seq: HashMap<String, usize> = HashMap::new();
    let mut key_partition: HashMap<String, i32> = HashMap::new();
    let mut seen = vec![false; RECORDS];
    let mut partition_offsets: HashMap<i32, i64> = HashMap::new();
    for m in &messages {
        let key = std::str::from_utf8(m.key().unwrap()).unwrap().to_string();
        let value = std::str::from_utf8(m.payload().unwrap()).unwrap();
        let headers = m.headers().expect("headers");
        assert_eq!(headers.count(), 2);
        let idx: usize = std::str::from_utf8(headers.get(0).value.unwrap()).unwrap().parse().unwrap();
        assert_eq!(headers.get(0).key, "idx");
        assert_eq!(headers.get(1).value, Some(codec.as_bytes()));
        assert!(!seen[idx], "record {idx} delivered twice");
        seen[idx] = true;
        assert_eq!(key, format!("key-{}", idx % KEYS));
        assert_eq!(value, format!("{key}:{}:{}", idx / KEYS, "x".repeat(idx % 50)));
        assert_eq!(m.timestamp().to_millis(), Some(BASE_TIMESTAMP_MS + idx as i64));
        // Per key: one partition, and records in the order produced.
        assert_eq!(*key_partition.entry(key.clone()).or_insert(m.partition()), m.partition());
        let seq = next_seq.entry(key.clone()).or_insert(0);
        assert_eq!(idx / KEYS, *seq, "key {key} out of order");
        *seq += 1;
        // Offsets within a partition are dense and increasing.
        let expected = partition_offsets.entry(m.partition()).or_insert(0);
        assert_eq!(m.offset(), *expected);
        *expected += 1;
    }
    assert!(seen.iter().all(|s| *s));
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_uncompressed() {
    round_trip("none").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_gzip() {
    round_trip("gzip").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_snappy() {
    round_trip("snappy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_lz4() {
    round_trip("lz4").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_zstd() {
    round_trip("zstd").await;
}
