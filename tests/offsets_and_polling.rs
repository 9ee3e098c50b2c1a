//! ListOffsets, reads from the middle of older segments (index lookups on
//! disk), and long-poll fetches woken by produces on any shard.

use crate::common;

use std::time::{Duration, Instant};

use common::kafka::{self, assigned, consumer_config, poll_n, produce, value, Record};
use common::{create_topic, fetch_request, Broker, Raw};
use kafka_protocol::messages::{ApiKey, FetchResponse};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

const BASE_TIMESTAMP_MS: i64 = 1_600_000_000_000;

/// Producer settings: acks=all, records batched for up to 2 ms, room for many in flight.
const PRODUCER: &[(&str, &str)] = &[("acks", "all"), ("linger.ms", "2"), ("queue.buffering.max.messages", "1000000")];

/// Records `{i:08}-` padded with `value_bytes` bytes for one partition,
/// record `i` stamped `BASE_TIMESTAMP_MS + 10 i`.
fn numbered_records(partition: i32, count: usize, value_bytes: usize) -> impl Iterator<Item = Record> {
    (0..count).map(move |i| {
        Record::new(format!("{i:08}-{}", "v".repeat(value_bytes)))
            .key("k")
            .partition(partition)
            .timestamp(BASE_TIMESTAMP_MS + (i as i64) * 10)
    })
}

/// The (offset, value, timestamp) of the record at `offset`.
fn read_one_at(bootstrap: &str, topic: &str, partition: i32, offset: i64) -> (i64, String, i64) {
    let consumer =
        assigned(&consumer_config(bootstrap, "unused-assign-only"), topic, [partition], Offset::Offset(offset));
    let m = &poll_n(&consumer, 1, Duration::from_secs(30))[0];
    (m.offset(), value(m), m.timestamp().to_millis().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_and_reads_from_older_segments() {
    let broker = Broker::start("offsets", 2, &[]);
    let bootstrap = broker.bootstrap();
    // 1 MiB segments: 20,000 records of ~300 bytes span several segments.
    create_topic(&bootstrap, "segmented", 1, &[("segment.bytes", "1048576")]).await;
    produce(&kafka::producer(&bootstrap, PRODUCER), "segmented", numbered_records(0, 20_000, 280)).await;

    let logs = broker.log_segments("segmented-0");
    assert!(logs >= 4, "expected several segments, found {logs}");

    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = consumer_config(&b, "unused-assign-only").create().unwrap();
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

/// A fetch waiting on four partitions (spread over both shards) is answered as
/// soon as a record lands on any of them, long before its max wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_is_woken_by_produce_on_any_shard() {
    let broker = Broker::start("longpoll", 2, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "polled", 4, &[]).await;
    let producer = kafka::producer(&bootstrap, PRODUCER);
    let mut raw = Raw::connect(&broker);
    let max_wait_ms = 20_000;
    for partition in 0..4 {
        let offsets: Vec<(i32, i64)> = (0..4).map(|p| (p, if p < partition { 1 } else { 0 })).collect();
        let correlation = raw.send(ApiKey::Fetch, 11, &fetch_request("polled", &offsets, max_wait_ms));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent = Instant::now();
        produce(&producer, "polled", [Record::new("wake").key("k").partition(partition)]).await;
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
    produce(&kafka::producer(&bootstrap, PRODUCER), "small", numbered_records(0, 3, 10)).await;
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
