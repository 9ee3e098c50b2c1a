//! ListOffsets, reads from the middle of older segments (index lookups on
//! disk), and long-poll fetches woken by produces on any shard.

mod common;

use std::time::{Duration, Instant};

use common::{create_topic, Broker, Raw};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const BASE_TIMESTAMP_MS: i64 = 1_600_000_000_000;

fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap()
}

fn consumer(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "unused-assign-only")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap()
}

async fn produce_numbered(bootstrap: &str, topic: &str, partition: i32, count: usize, value_bytes: usize) {
    let producer = producer(bootstrap);
    let mut deliveries = Vec::new();
    for i in 0..count {
        let value = format!("{i:08}-{}", "v".repeat(value_bytes));
        let record = FutureRecord::to(topic)
            .key("k")
            .payload(&value)
            .partition(partition)
            .timestamp(BASE_TIMESTAMP_MS + (i as i64) * 10);
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for d in deliveries {
        d.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
}

fn read_one_at(bootstrap: &str, topic: &str, partition: i32, offset: i64) -> (i64, String, i64) {
    let consumer = consumer(bootstrap);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset)).unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "no message at offset {offset}");
        if let Some(m) = consumer.poll(Duration::from_millis(500)) {
            let m = m.unwrap();
            let value = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
            return (m.offset(), value, m.timestamp().to_millis().unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_and_reads_from_older_segments() {
    let broker = Broker::start("offsets", 2, &[]);
    let bootstrap = broker.bootstrap();
    // 1 MiB segments: 20,000 records of ~300 bytes span several segments.
    create_topic(&bootstrap, "segmented", 1, &[("segment.bytes", "1048576")]).await;
    produce_numbered(&bootstrap, "segmented", 0, 20_000, 280).await;

    let logs = std::fs::read_dir(broker.data_dir.join("segmented-0"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
        .count();
    assert!(logs >= 4, "expected several segments, found {logs}");

    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let c = consumer(&b);
        let (low, high) = c.fetch_watermarks("segmented", 0, Duration::from_secs(10)).unwrap();
        assert_eq!((low, high), (0, 20_000));

        // By timestamp: record i has timestamp BASE + 10 i.
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("segmented", 0, Offset::Offset(BASE_TIMESTAMP_MS + 12_345 * 10)).unwrap();
        let found = c.offsets_for_times(tpl, Duration::from_secs(10)).unwrap();
        assert_eq!(found.elements()[0].offset(), Offset::Offset(12_345));
        // Between two records: the next one.
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("segmented", 0, Offset::Offset(BASE_TIMESTAMP_MS + 777 * 10 + 5)).unwrap();
        let found = c.offsets_for_times(tpl, Duration::from_secs(10)).unwrap();
        assert_eq!(found.elements()[0].offset(), Offset::Offset(778));
        // Newer than everything: no offset (-1, which librdkafka reports as End).
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("segmented", 0, Offset::Offset(BASE_TIMESTAMP_MS + 10_000_000)).unwrap();
        let found = c.offsets_for_times(tpl, Duration::from_secs(10)).unwrap();
        assert_eq!(found.elements()[0].offset(), Offset::End);

        // Reads starting inside old segments, found through the offset index on disk.
        for offset in [0i64, 1, 1234, 5555, 9999, 15_000, 19_999] {
            let (got, value, ts) = read_one_at(&b, "segmented", 0, offset);
            assert_eq!(got, offset);
            assert!(value.starts_with(&format!("{offset:08}-")));
            assert_eq!(ts, BASE_TIMESTAMP_MS + offset * 10);
        }
    })
    .await
    .unwrap();
    broker.stop();
}

fn fetch_request(topic: &str, partitions: &[(i32, i64)], max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(
                partitions
                    .iter()
                    .map(|(p, o)| {
                        FetchPartition::default()
                            .with_partition(*p)
                            .with_fetch_offset(*o)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            )])
}

/// A fetch waiting on four partitions (spread over both shards) is answered as
/// soon as a record lands on any of them, long before its max wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_is_woken_by_produce_on_any_shard() {
    let broker = Broker::start("longpoll", 2, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "polled", 4, &[]).await;
    let producer = producer(&bootstrap);
    let mut raw = Raw::connect(&broker);
    let max_wait_ms = 20_000;
    for partition in 0..4 {
        let offsets: Vec<(i32, i64)> = (0..4).map(|p| (p, if p < partition { 1 } else { 0 })).collect();
        let correlation = raw.send(ApiKey::Fetch, 11, &fetch_request("polled", &offsets, max_wait_ms));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent = Instant::now();
        producer
            .send(FutureRecord::to("polled").key("k").payload("wake").partition(partition), Duration::from_secs(5))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        let response: FetchResponse = tokio::task::block_in_place(|| raw.receive(ApiKey::Fetch, 11, correlation));
        let waited = sent.elapsed();
        assert!(waited < Duration::from_millis(max_wait_ms as u64 / 4), "fetch waited {waited:?} after the produce");
        let partitions = &response.responses[0].partitions;
        let woken = partitions.iter().find(|p| p.partition_index == partition).unwrap();
        assert_eq!(woken.error_code, 0);
        assert_eq!(woken.high_watermark, 1);
        assert!(woken.records.as_ref().is_some_and(|r| !r.is_empty()), "partition {partition} returned no records");
    }
    // With nothing to wake it, a fetch waits out its max wait and returns empty.
    let offsets: Vec<(i32, i64)> = (0..4).map(|p| (p, 1)).collect();
    let started = Instant::now();
    let response: FetchResponse =
        tokio::task::block_in_place(|| raw.call(ApiKey::Fetch, 11, &fetch_request("polled", &offsets, 500)));
    assert!(started.elapsed() >= Duration::from_millis(450));
    assert!(response.responses[0].partitions.iter().all(|p| p.records.as_ref().is_none_or(|r| r.is_empty())));
    broker.stop();
}

/// Fetching past the log end gives OFFSET_OUT_OF_RANGE, as Kafka does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_out_of_range() {
    let broker = Broker::start("range", 2, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "small", 1, &[]).await;
    produce_numbered(&bootstrap, "small", 0, 3, 10).await;
    let mut raw = Raw::connect(&broker);
    let response: FetchResponse =
        tokio::task::block_in_place(|| raw.call(ApiKey::Fetch, 11, &fetch_request("small", &[(0, 10)], 100)));
    assert_eq!(response.responses[0].partitions[0].error_code, 1);
    let response: FetchResponse =
        tokio::task::block_in_place(|| raw.call(ApiKey::Fetch, 11, &fetch_request("small", &[(0, 1)], 100)));
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
    assert_eq!(response.responses[0].partitions[0].high_watermark, 3);
    broker.stop();
}
