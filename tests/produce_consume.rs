//! Producing and consuming with librdkafka (the `rdkafka` crate) against the
//! real broker: every compression codec, keys, headers and timestamps.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use common::kafka::{self, consume_to_end, consumer_config, produce, Record};
use common::{create_topic, Broker};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};

const RECORDS: usize = 100_000;
const KEYS: usize = 1000;
const PARTITIONS: i32 = 8;
const BASE_TIMESTAMP_MS: i64 = 1_700_000_000_000;

async fn round_trip(codec: &str) {
    let broker = Broker::start(&format!("codec-{codec}"), 2, &[]);
    let bootstrap = broker.bootstrap();
    let topic = format!("records-{codec}");
    create_topic(&bootstrap, &topic, PARTITIONS, &[]).await;

    let producer = kafka::producer(
        &bootstrap,
        &[
            ("acks", "all"),
            ("compression.codec", codec),
            ("linger.ms", "5"),
            ("queue.buffering.max.messages", "1000000"),
        ],
    );
    let records = (0..RECORDS).map(|i| {
        let key = format!("key-{}", i % KEYS);
        let value = format!("{key}:{}:{}", i / KEYS, "x".repeat(i % 50));
        let headers = OwnedHeaders::new()
            .insert(Header { key: "idx", value: Some(&i.to_string()) })
            .insert(Header { key: "codec", value: Some(codec) });
        Record::new(value).key(key).headers(headers).timestamp(BASE_TIMESTAMP_MS + i as i64)
    });
    for (partition, offset) in produce(&producer, &topic, records).await {
        assert!((0..PARTITIONS).contains(&partition) && offset >= 0);
    }

    let config = consumer_config(&bootstrap, "unused-assign-only");
    let topic2 = topic.clone();
    let messages =
        tokio::task::spawn_blocking(move || consume_to_end(&config, &topic2, PARTITIONS, Duration::from_secs(120)))
            .await
            .unwrap();
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
