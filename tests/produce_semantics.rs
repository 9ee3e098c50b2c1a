//! Produce edge cases Kafka clients rely on: acks=0 gets no response,
//! pipelined requests are answered in order, LogAppendTime topics stamp the
//! broker's time, oversized batches and bad acks get Kafka's errors.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{create_topic, fetch_request, produce_request, record_batch, Broker, Raw};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchResponse, ProduceResponse};

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
