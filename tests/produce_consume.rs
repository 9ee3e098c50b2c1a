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

/// A consumer far behind the producer reads from disk, then from the shard's
/// batch cache and read-ahead, then from the tail cache of recent appends:
/// with a small per-partition fetch size and batches of very different sizes,
/// every record still comes once and in order, read cold (after a restart)
/// and again warm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_far_behind_reads_every_record_once_from_disk_and_the_caches() {
    const TOPIC: &str = "far-behind";
    const RECORDS: usize = 6_000;
    const SIZES: [usize; 5] = [4_000, 5_000, 100, 6_000, 3_000];
    let value = |i: usize| format!("{i}:{}", "v".repeat(SIZES[i % SIZES.len()]));
    /// Reads the partition from the beginning as `group`, 70 kB per fetch, and checks every record.
    async fn read_all(bootstrap: String, group: &'static str, value: fn(usize) -> String) {
        let mut config = consumer_config(&bootstrap, group);
        config.set("fetch.message.max.bytes", "70000");
        let messages = tokio::task::spawn_blocking(move || consume_to_end(&config, TOPIC, 1, Duration::from_secs(120)))
            .await
            .unwrap();
        assert_eq!(messages.len(), RECORDS, "{group}: every record once");
        for (i, m) in messages.iter().enumerate() {
            assert_eq!(m.offset(), i as i64, "{group}: offsets dense and in order");
            assert!(kafka::value(m) == value(i), "{group}: record {i} changed");
        }
    }

    let broker = Broker::start("far-behind", 2, &[]);
    create_topic(&broker.bootstrap(), TOPIC, 1, &[]).await;
    // About 25 MB, far more than the partition's 4 MiB tail cache, in bursts
    // of 1 to 20 records, each its own batch (5 kB to 100 kB): a batch too
    // large for what is left of a fetch is often followed by one that fits.
    let producer = kafka::producer(&broker.bootstrap(), &[("acks", "all"), ("linger.ms", "2")]);
    let mut next = 0;
    for burst in [1usize, 8, 2, 20, 1].into_iter().cycle() {
        let end = (next + burst).min(RECORDS);
        produce(&producer, TOPIC, (next..end).map(|i| Record::new(value(i)).partition(0))).await;
        next = end;
        if next == RECORDS {
            break;
        }
    }
    // Each way of serving a read was used: the tail cache only before a restart.
    let served = |broker: &Broker, counters: &[&str]| {
        let samples = common::http::parse_metrics(&common::http::get(&broker.admin_url(), "/metrics").body);
        for counter in counters {
            let count = common::http::sum(&samples, &format!("sluice_{counter}_total"), &[]);
            assert!(count > 0.0, "no {counter}");
        }
    };
    read_all(broker.bootstrap(), "just-written", value).await;
    served(&broker, &["tail_cache_reads", "disk_reads"]);
    let broker = Broker::start_in(broker.stop(), 2, &[]);
    read_all(broker.bootstrap(), "after-a-restart", value).await;
    read_all(broker.bootstrap(), "read-again", value).await;
    served(&broker, &["disk_reads", "batch_cache_reads", "read_ahead_reads"]);
    broker.stop();
}
