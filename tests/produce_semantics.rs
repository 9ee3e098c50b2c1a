//! Produce edge cases Kafka clients rely on: acks=0 gets no response,
//! pipelined requests are answered in order, LogAppendTime topics stamp the
//! broker's time, oversized batches and bad acks get Kafka's errors,
//! compacted topics refuse records without a key, records outside
//! `message.timestamp.before.max.ms` / `after.max.ms` are refused as Kafka does,
//! and a topic setting `flush.ms` or `flush.messages` is acknowledged before
//! it is synced (write caching).

use crate::common;

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use common::{create_topic, fetch_request, produce_request, record_batch, Broker, Raw};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use sluice::protocol::builder::BatchBuilder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_pipelining_and_errors() {
    let broker = Broker::start("produce-semantics", 2, &["--message-max-bytes", "2000"]);
    create_topic(&broker.bootstrap(), "p", 1, &[]).await;
    tokio::task::block_in_place(|| {
        let mut raw = Raw::connect(&broker);
        // acks=0: no response at all; the next answer on the wire is the ApiVersions one.
        raw.send(ApiKey::Produce, 9, &produce_request("p", 0, 0, record_batch(&[b"fire", b"forget"], 1)));
        let c = raw.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        let _: ApiVersionsResponse = raw.receive(ApiKey::ApiVersions, 3, c);

        // Pipelined: a long-poll fetch, then a produce that wakes it, then ApiVersions.
        // Answers come back in request order even though the fetch finishes last.
        let c_fetch = raw.send(ApiKey::Fetch, 12, &fetch_request("p", &[(0, 2)], 10_000));
        let c_produce = raw.send(ApiKey::Produce, 9, &produce_request("p", 0, -1, record_batch(&[b"third"], 3)));
        let c_versions = raw.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        let fetched: FetchResponse = raw.receive(ApiKey::Fetch, 12, c_fetch);
        assert!(fetched.responses[0].partitions[0].records.as_ref().is_some_and(|r| !r.is_empty()));
        let produced: ProduceResponse = raw.receive(ApiKey::Produce, 9, c_produce);
        assert_eq!(produced.responses[0].partition_responses[0].base_offset, 2, "the acks=0 batch took 0 and 1");
        let _: ApiVersionsResponse = raw.receive(ApiKey::ApiVersions, 3, c_versions);

        // A batch larger than max.message.bytes: MESSAGE_TOO_LARGE.
        let big = vec![b'x'; 3000];
        assert_eq!(raw.produce("p", 0, record_batch(&[&big], 1)).0, 10);
        // acks=2 is not a thing: INVALID_REQUIRED_ACKS.
        assert_eq!(raw.produce_with(&produce_request("p", 0, 2, record_batch(&[b"x"], 1))).0, 21);
        // An unknown partition.
        assert_eq!(raw.produce("p", 5, record_batch(&[b"x"], 1)).0, 3);
    });
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_append_time_topics_stamp_the_broker_clock() {
    let broker = Broker::start("log-append-time", 2, &[]);
    create_topic(&broker.bootstrap(), "stamped", 1, &[("message.timestamp.type", "LogAppendTime")]).await;
    tokio::task::block_in_place(|| {
        let mut raw = Raw::connect(&broker);
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        let response: ProduceResponse =
            raw.call(ApiKey::Produce, 9, &produce_request("stamped", 0, -1, record_batch(&[b"a", b"b"], 1000)));
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        let partition = &response.responses[0].partition_responses[0];
        assert_eq!(partition.error_code, 0);
        assert!(partition.log_append_time_ms >= before && partition.log_append_time_ms <= after);

        let fetched: FetchResponse = raw.call(ApiKey::Fetch, 12, &fetch_request("stamped", &[(0, 0)], 100));
        // Clients read a LogAppendTime batch's records at the batch's max timestamp.
        let records = fetched.responses[0].partitions[0].records.clone().unwrap();
        let headers: Vec<_> = sluice::protocol::batch::headers(&records).collect();
        assert_eq!(headers.iter().map(|(_, h)| h.records_count).sum::<i32>(), 2);
        for (at, h) in &headers {
            assert!(h.is_log_append_time());
            assert_eq!(h.max_timestamp, partition.log_append_time_ms);
            assert!(sluice::protocol::batch::crc_matches(&records[*at..], h), "CRC recomputed after stamping");
        }
    });
    broker.stop();
}

/// SIGTERM while a long-poll fetch waits: the fetch is answered, then the broker exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_answers_in_flight_requests() {
    let broker = Broker::start("graceful", 2, &[]);
    create_topic(&broker.bootstrap(), "quiet", 1, &[]).await;
    let mut raw = Raw::connect(&broker);
    let correlation = raw.send(ApiKey::Fetch, 12, &fetch_request("quiet", &[(0, 0)], 1500));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let stopper = std::thread::spawn(move || broker.stop());
    let response: FetchResponse = tokio::task::block_in_place(|| raw.receive(ApiKey::Fetch, 12, correlation));
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
    let dir = stopper.join().unwrap();
    assert!(dir.join(".sluice_clean_shutdown").exists());
}

/// A batch of records with the given keys (`None`: a null key) and values.
fn keyed_batch(records: &[(Option<&str>, &str)], compression: Compression) -> BytesMut {
    let records = records.iter().enumerate().map(|(i, (key, value))| (*key, *value, 1_000 + i as i64));
    batch_of(records, compression)
}

/// One batch (`CreateTime`) of records given as (key, value, timestamp).
fn batch_of<'a>(records: impl Iterator<Item = (Option<&'a str>, &'a str, i64)>, compression: Compression) -> BytesMut {
    let batch = records.fold(BatchBuilder::new(), |batch, (key, value, timestamp)| {
        batch.record(
            key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            Some(Bytes::copy_from_slice(value.as_bytes())),
            timestamp,
        )
    });
    batch.compression(compression).build().expect("a batch of test records")
}

/// The partition's log end offset (ListOffsets, latest).
fn log_end(raw: &mut Raw, topic: &str) -> i64 {
    let response: ListOffsetsResponse = raw.call(
        ApiKey::ListOffsets,
        5,
        &ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-1)])]),
    );
    response.topics[0].partitions[0].offset
}

/// Kafka's `LogValidator.validateKey`: a compacted topic refuses a produce
/// holding a record without a key (INVALID_RECORD, one record error per
/// keyless record) and stores nothing of it; a `delete` topic takes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_topics_refuse_records_without_a_key() {
    let broker = Broker::start("keyless", 2, &[]);
    create_topic(&broker.bootstrap(), "compacted", 1, &[("cleanup.policy", "compact")]).await;
    create_topic(&broker.bootstrap(), "both", 1, &[("cleanup.policy", "delete,compact")]).await;
    create_topic(&broker.bootstrap(), "deleted", 1, &[("cleanup.policy", "delete")]).await;
    tokio::task::block_in_place(|| {
        let mut raw = Raw::connect(&broker);
        let reason = "Compacted topic cannot accept message without key in topic partition compacted-0";

        let response: ProduceResponse =
            raw.call(ApiKey::Produce, 9, &produce_request("compacted", 0, -1, record_batch(&[b"no key"], 1)));
        let p = &response.responses[0].partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (87, -1), "INVALID_RECORD: {p:?}");
        let expected = format!(
            "One or more records have been rejected due to 1 record errors in total, and only showing the first \
             three errors at most: [RecordError(batchIndex=0, message='{reason}')]"
        );
        assert_eq!(p.error_message.as_ref().map(|m| m.to_string()), Some(expected));
        assert_eq!(p.record_errors.len(), 1);
        assert_eq!(p.record_errors[0].batch_index, 0);
        assert_eq!(p.record_errors[0].batch_index_error_message.as_ref().map(|m| m.to_string()), Some(reason.into()));
        assert_eq!(log_end(&mut raw, "compacted"), 0, "nothing of the refused batch is stored");

        // Keyed records are taken.
        let keyed = keyed_batch(&[(Some("k1"), "v1"), (Some("k2"), "v2")], Compression::None);
        assert_eq!(raw.produce("compacted", 0, keyed), (0, 0));
        assert_eq!(log_end(&mut raw, "compacted"), 2);

        // A compressed batch with keyless records among keyed ones: each keyless one is named.
        let mixed = keyed_batch(&[(Some("k"), "a"), (None, "b"), (Some("k"), "c"), (None, "d")], Compression::Gzip);
        let response: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce_request("compacted", 0, -1, mixed));
        let p = &response.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 87);
        assert_eq!(p.record_errors.iter().map(|e| e.batch_index).collect::<Vec<_>>(), vec![1, 3]);
        assert!(p
            .error_message
            .as_ref()
            .unwrap()
            .starts_with("One or more records have been rejected due to 2 record"));
        assert_eq!(log_end(&mut raw, "compacted"), 2);

        // Produce v7 has no record errors: the code alone.
        let response: ProduceResponse =
            raw.call(ApiKey::Produce, 7, &produce_request("compacted", 0, -1, record_batch(&[b"x"], 1)));
        assert_eq!(response.responses[0].partition_responses[0].error_code, 87);

        // A compressed batch that does not inflate: CORRUPT_MESSAGE (its CRC is right).
        let mut broken = keyed_batch(&[(Some("k"), "value")], Compression::Zstd).to_vec();
        broken[61..].fill(0xaa);
        let crc = crc32c::crc32c(&broken[21..]);
        broken[17..21].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(raw.produce("compacted", 0, broken).0, 2, "CORRUPT_MESSAGE");
        assert_eq!(log_end(&mut raw, "compacted"), 2);

        // `delete,compact` compacts too; `delete` alone takes keyless records.
        assert_eq!(raw.produce("both", 0, record_batch(&[b"no key"], 1)).0, 87);
        assert_eq!(raw.produce("deleted", 0, record_batch(&[b"no key"], 1)), (0, 0));
        assert_eq!(log_end(&mut raw, "deleted"), 1);
    });
    broker.stop();
}

/// The newest versions of the core APIs, as Kafka 4.x clients send them:
/// Produce v13 and Fetch v18 name topics by id (an unknown id is
/// UNKNOWN_TOPIC_ID, never an auto-created topic), ListOffsets v10 carries a
/// timeout, Metadata v13 a top-level error code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_versions_name_topics_by_id() {
    use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
    use uuid::Uuid;
    let broker = Broker::start("newest-versions", 2, &[]);
    create_topic(&broker.bootstrap(), "by-id", 2, &[]).await;
    tokio::task::block_in_place(|| {
        let mut raw = Raw::connect(&broker);
        let metadata: MetadataResponse = raw.call(ApiKey::Metadata, 13, &MetadataRequest::default().with_topics(None));
        assert_eq!(metadata.error_code, 0);
        let topic = metadata.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "by-id")).unwrap();
        let id = topic.topic_id;
        assert_ne!(id, Uuid::nil());

        let mut by_id = produce_request("", 1, -1, record_batch(&[b"one", b"two"], 7));
        by_id.topic_data[0].topic_id = id;
        let produced: ProduceResponse = raw.call(ApiKey::Produce, 13, &by_id);
        let answer = &produced.responses[0];
        assert_eq!(answer.topic_id, id);
        assert_eq!((answer.partition_responses[0].error_code, answer.partition_responses[0].base_offset), (0, 0));
        let again: ProduceResponse = raw.call(ApiKey::Produce, 13, &by_id);
        assert_eq!(again.responses[0].partition_responses[0].base_offset, 2);

        let mut unknown = produce_request("by-id", 0, -1, record_batch(&[b"lost"], 7));
        unknown.topic_data[0].topic_id = Uuid::from_u128(0x1234);
        let refused: ProduceResponse = raw.call(ApiKey::Produce, 13, &unknown);
        assert_eq!(refused.responses[0].partition_responses[0].error_code, 100, "UNKNOWN_TOPIC_ID");
        let after: MetadataResponse = raw.call(ApiKey::Metadata, 13, &MetadataRequest::default().with_topics(None));
        assert_eq!(after.topics.len(), metadata.topics.len(), "nothing was created");

        let mut fetch = fetch_request("", &[(1, 0)], 100);
        fetch.topics[0].topic_id = id;
        let fetched: FetchResponse = raw.call(ApiKey::Fetch, 18, &fetch);
        let partition = &fetched.responses[0].partitions[0];
        assert_eq!((fetched.responses[0].topic_id, partition.error_code, partition.high_watermark), (id, 0, 4));
        let offsets: Vec<i64> = sluice::protocol::batch::headers(partition.records.as_ref().unwrap())
            .flat_map(|(_, h)| h.base_offset..=h.base_offset + h.last_offset_delta as i64)
            .collect();
        assert_eq!(offsets, [0, 1, 2, 3], "both produces, by id");

        let list = ListOffsetsRequest::default().with_replica_id((-1).into()).with_timeout_ms(1000).with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("by-id")))
                .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(1).with_timestamp(-1)]),
        ]);
        let listed: ListOffsetsResponse = raw.call(ApiKey::ListOffsets, 10, &list);
        assert_eq!(listed.topics[0].partitions[0].offset, 4);
    });
    broker.stop();
}

/// One batch of keyless records stamped `timestamps` (`CreateTime`).
fn timed_batch(timestamps: &[i64], compression: Compression) -> BytesMut {
    batch_of(timestamps.iter().map(|t| (None, "v", *t)), compression)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_outside_the_timestamp_bounds_are_refused_as_kafka_does() {
    let broker = Broker::start("timestamp-bounds", 2, &[]);
    let bounds = [("message.timestamp.before.max.ms", "60000"), ("message.timestamp.after.max.ms", "60000")];
    create_topic(&broker.bootstrap(), "bounded", 1, &bounds).await;
    create_topic(&broker.bootstrap(), "default", 1, &[]).await;
    create_topic(&broker.bootstrap(), "stamped", 1, &[("message.timestamp.type", "LogAppendTime")]).await;
    tokio::task::block_in_place(|| {
        let mut raw = Raw::connect(&broker);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        let two_hours = 2 * 3600 * 1000;

        // Kafka 4.1's defaults: any age, at most an hour ahead.
        assert_eq!(raw.produce("default", 0, record_batch(&[b"old"], 1)).0, 0);
        assert_eq!(raw.produce("default", 0, timed_batch(&[now + two_hours], Compression::None)).0, 32);
        // The broker stamps LogAppendTime topics: the producer's timestamp is not checked.
        assert_eq!(raw.produce("stamped", 0, timed_batch(&[now + two_hours], Compression::None)).0, 0);

        // A compressed batch with one record too old among recent ones: that record is named.
        let batch = timed_batch(&[now, now - two_hours, now], Compression::Gzip);
        let response: ProduceResponse = raw.call(ApiKey::Produce, 9, &produce_request("bounded", 0, -1, batch));
        let p = &response.responses[0].partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (32, -1), "INVALID_TIMESTAMP: {p:?}");
        assert_eq!(p.error_message.as_deref(), Some("One or more records have been rejected due to invalid timestamp"));
        assert_eq!(p.record_errors.iter().map(|e| e.batch_index).collect::<Vec<_>>(), vec![1]);
        let said = p.record_errors[0].batch_index_error_message.as_deref().unwrap_or_default().to_string();
        let prefix = format!(
            "Timestamp {} of message with offset 1 is out of range. The timestamp should be within [",
            now - two_hours
        );
        assert!(said.starts_with(&prefix), "{said}");
        assert_eq!(log_end(&mut raw, "bounded"), 0, "nothing of the refused batch is stored");
        assert_eq!(raw.produce("bounded", 0, timed_batch(&[now - 1000, now + 1000], Compression::None)).0, 0);
        assert_eq!(raw.produce("bounded", 0, record_batch(&[b"old"], 1)).0, 32);
    });
    broker.stop();
}

/// acks=all on a default topic is answered after an fdatasync of each write;
/// on a topic that sets `flush.ms` (write caching), once written: the syncs
/// come at most every `flush.ms`, and the records are readable at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_setting_flush_ms_is_acknowledged_before_it_is_synced() {
    const WRITES: i64 = 30;
    let broker = Broker::start("write-caching", 1, &[]);
    create_topic(&broker.bootstrap(), "cached", 1, &[("flush.ms", "60000")]).await;
    create_topic(&broker.bootstrap(), "durable", 1, &[]).await;
    let syncs = || {
        let samples = common::http::parse_metrics(&common::http::get(&broker.admin_url(), "/metrics").body);
        common::http::sum(&samples, "sluice_log_flush_time_seconds_count", &[])
    };
    tokio::task::block_in_place(|| {
        let mut raw = Raw::connect(&broker);
        for (topic, syncs_min, syncs_max) in [("cached", 0.0, 1.0), ("durable", WRITES as f64, f64::MAX)] {
            let before = syncs();
            for i in 0..WRITES {
                let value = format!("{topic}-{i}");
                assert_eq!(raw.produce(topic, 0, record_batch(&[value.as_bytes()], 1000 + i)), (0, i));
            }
            let synced = syncs() - before;
            assert!((syncs_min..=syncs_max).contains(&synced), "{topic}: {synced} fdatasyncs for {WRITES} writes");
            // Acknowledged records are readable, synced or not.
            let response: FetchResponse = raw.call(ApiKey::Fetch, 12, &fetch_request(topic, &[(0, 0)], 0));
            let partition = &response.responses[0].partitions[0];
            assert_eq!((partition.error_code, partition.high_watermark), (0, WRITES), "{topic}");
        }
    });
    broker.stop();
}
