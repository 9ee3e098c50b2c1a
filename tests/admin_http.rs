//! The admin HTTP listener from outside: `/metrics` read by Prometheus's own
//! text parser and checked against what real clients did, `/health` and
//! `/ready`, hostile HTTP clients that must cost the Kafka side nothing, and
//! the console's JSON API, whose actions answer with Kafka's errors.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::http::{self, parse_metrics, sum, Sample};
use common::kafka::{self, commit, committed, consume_to_end, consumer_config, produce, Record};
use common::{create_topic, wait_until, Broker};
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(60);

fn scrape(broker: &Broker) -> Vec<Sample> {
    let answer = http::get(&broker.admin_url(), "/metrics");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.headers["content-type"].starts_with("text/plain; version=0.0.4"), "{:?}", answer.headers);
    parse_metrics(&answer.body)
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_what_clients_did() {
    let broker = Broker::start("admin-metrics", 2, &["--metrics-partitions-enable", "true"]);
    let b = broker.bootstrap();
    create_topic(&b, "metered", 4, &[]).await;
    let before = scrape(&broker);

    let records = (0..400).map(|i| Record::new(format!("value-{i}")).key(format!("k{i}")).partition(i % 4));
    produce(&kafka::producer(&b, &[("acks", "all"), ("linger.ms", "5")]), "metered", records).await;
    let read = consume_to_end(&consumer_config(&b, "reader"), "metered", 4, TIMEOUT);
    assert_eq!(read.len(), 400);
    commit(&b, "metered-group", "metered", &[(0, 40), (1, 100), (2, 0), (3, 70)]);
    let after = scrape(&broker);

    let delta = |name: &str, labels: &[(&str, &str)]| sum(&after, name, labels) - sum(&before, name, labels);
    assert_eq!(delta("sluice_messages_in_total", &[]), 400.0, "every record produced counts once");
    assert!(delta("sluice_bytes_in_total", &[]) > 400.0 * 7.0);
    assert!(delta("sluice_messages_out_total", &[]) >= 400.0, "the consumer read them all");
    assert!(delta("sluice_bytes_out_total", &[]) >= delta("sluice_bytes_in_total", &[]));
    let produce_requests = delta("sluice_requests_total", &[("request", "Produce")]);
    assert!(produce_requests >= 1.0);
    assert_eq!(
        delta("sluice_request_total_time_seconds_count", &[("request", "Produce")]),
        produce_requests,
        "one latency sample per request"
    );
    assert!(delta("sluice_requests_total", &[("request", "Fetch")]) >= 1.0);
    assert!(delta("sluice_log_flush_time_seconds_count", &[]) >= 1.0, "acks=all produces were fdatasync'd");
    let written = sum(&after, "sluice_dma_write_bytes_total", &[]);
    assert!(written >= delta("sluice_bytes_in_total", &[]) && written % 512.0 == 0.0, "whole blocks: {written}");

    // Histogram buckets are cumulative and end at the count.
    for shard in ["0", "1"] {
        let labels = [("shard", shard), ("request", "Produce")];
        let buckets: Vec<&Sample> = after
            .iter()
            .filter(|s| s.name == "sluice_request_total_time_seconds_bucket")
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
            .collect();
        if buckets.is_empty() {
            continue;
        }
        assert!(buckets.windows(2).all(|w| w[0].value <= w[1].value), "buckets are cumulative");
        let inf = buckets.iter().find(|s| s.labels["le"] == "+Inf").expect("+Inf bucket");
        assert_eq!(inf.value, sum(&after, "sluice_request_total_time_seconds_count", &labels));
    }

    // Per partition (switched on here) and per group.
    assert_eq!(sum(&after, "sluice_partition_high_watermark", &[("topic", "metered")]), 400.0);
    assert_eq!(sum(&after, "sluice_partition_log_end_offset", &[("topic", "metered")]), 400.0);
    assert_eq!(sum(&after, "sluice_partition_segments", &[("topic", "metered")]), 4.0);
    assert_eq!(sum(&after, "sluice_group_committed_offset", &[("group", "metered-group")]), 210.0);
    assert_eq!(sum(&after, "sluice_group_lag", &[("group", "metered-group")]), 400.0 - 210.0);
    assert_eq!(sum(&after, "sluice_group_lag", &[("group", "metered-group"), ("partition", "2")]), 100.0);
    assert_eq!(sum(&after, "sluice_shard_up", &[]), 2.0);
    assert!(sum(&after, "sluice_partitions", &[]) >= 4.0);
    assert!(sum(&after, "sluice_connections_accepted_total", &[]) >= 2.0);

    // OpenMetrics when asked for.
    let asked = http::raw(
        &broker.admin_url(),
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text; version=1.0.0\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert!(asked.headers["content-type"].starts_with("application/openmetrics-text"));
    assert!(asked.body.ends_with("# EOF\n"));
    broker.stop();
}

/// Opens a connection and holds it without sending anything.
fn idle(base: &str) -> TcpStream {
    TcpStream::connect(base.trim_start_matches("http://")).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn health_ready_and_hostile_http_clients_cost_kafka_nothing() {
    let broker = Broker::start("admin-hostile", 2, &[]);
    let admin = broker.admin_url();
    let health = http::get(&admin, "/health");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let ready = http::get(&admin, "/ready");
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
    assert!(
        !scrape(&broker).iter().any(|s| s.name.starts_with("sluice_partition_")),
        "per-partition series are off by default"
    );

    assert_eq!(http::get(&admin, "/nothing-here").status, 404);
    assert_eq!(http::request(&admin, "POST", "/metrics", None).status, 405);
    assert_eq!(http::get(&admin, "/api/nothing").status, 404);

    // A request head past the limit, a body past the limit, bad JSON, and bytes that are not HTTP.
    let huge_header = format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(32 * 1024));
    if let Some(answer) = http::raw(&admin, huge_header.as_bytes()) {
        assert_eq!(answer.status, 431, "{answer:?}");
    }
    let big_body = format!("{{\"name\":\"{}\"}}", "x".repeat(100 * 1024));
    let too_big = http::request(&admin, "POST", "/api/topics", Some(&big_body));
    assert_eq!(too_big.status, 413);
    assert_eq!(too_big.json()["error"], "INVALID_REQUEST");
    let bad_json = http::request(&admin, "POST", "/api/topics", Some("{not json"));
    assert_eq!(bad_json.status, 400);
    assert!(bad_json.json()["message"].as_str().unwrap().contains("bad JSON"));
    // What another web page could make an operator's browser send is refused.
    let host = admin.trim_start_matches("http://");
    let cross_site = format!(
        "POST /api/topics HTTP/1.1\r\nHost: {host}\r\nOrigin: http://evil.example\r\nContent-Type: application/json\r\n\
         Content-Length: 15\r\nConnection: close\r\n\r\n{{\"name\":\"csrf\"}}"
    );
    assert_eq!(http::raw(&admin, cross_site.as_bytes()).unwrap().status, 403);
    let form = format!(
        "POST /api/topics HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain\r\n\
         Content-Length: 15\r\nConnection: close\r\n\r\n{{\"name\":\"csrf\"}}"
    );
    assert_eq!(http::raw(&admin, form.as_bytes()).unwrap().status, 415);
    let same_origin = format!(
        "POST /api/topics HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nContent-Type: application/json\r\n\
         Content-Length: 15\r\nConnection: close\r\n\r\n{{\"name\":\"csrf\"}}"
    );
    assert_eq!(http::raw(&admin, same_origin.as_bytes()).unwrap().status, 200, "the console's own origin is served");
    if let Some(answer) = http::raw(&admin, b"\x00\x01\x02 garbage\r\n\r\n") {
        assert_eq!(answer.status, 400);
    }

    // Every admin connection slot held by a client that sends nothing: the
    // next one is closed at once, and Kafka clients do not notice.
    let held: Vec<TcpStream> = (0..64).map(|_| idle(&admin)).collect();
    let mut extra = idle(&admin);
    extra.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = extra.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut answer = Vec::new();
    let _ = extra.read_to_end(&mut answer);
    assert!(answer.is_empty(), "a 65th admin connection was served: {}", String::from_utf8_lossy(&answer));
    let b = broker.bootstrap();
    let records = (0..50).map(|i| Record::new(format!("v{i}")).partition(0));
    produce(&kafka::producer(&b, &[("acks", "all")]), "while-held", records).await;
    assert_eq!(consume_to_end(&consumer_config(&b, "held"), "while-held", 1, TIMEOUT).len(), 50);
    drop(held);
    wait_until("the admin listener serves again", Duration::from_secs(10), || {
        std::panic::catch_unwind(|| http::get(&admin, "/health").status == 200).unwrap_or(false)
    });
    broker.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn console_api_acts_through_the_kafka_handlers() {
    let broker = Broker::start("admin-api", 2, &["--group-initial-rebalance-delay-ms", "0"]);
    let (admin, b) = (broker.admin_url(), broker.bootstrap());

    // Topics: created, refused as Kafka refuses, configs altered and reset, deleted.
    let created = http::post(&admin, "/api/topics", &json!({ "name": "shown", "partitions": 3, "configs": {} }));
    assert_eq!(created.status, 200, "{}", created.body);
    let client: BaseConsumer = kafka::client_config(&b, &[]).create().unwrap();
    let metadata = client.fetch_metadata(Some("shown"), Duration::from_secs(10)).unwrap();
    assert_eq!(metadata.topics()[0].partitions().len(), 3, "a Kafka client sees the topic the console created");
    let again = http::post(&admin, "/api/topics", &json!({ "name": "shown", "partitions": 3 }));
    assert_eq!((again.status, again.json()["error"].as_str()), (409, Some("TOPIC_ALREADY_EXISTS")));
    assert_eq!(again.json()["error_code"], 36);
    let bad_name = http::post(&admin, "/api/topics", &json!({ "name": "no spaces allowed", "partitions": 1 }));
    assert_eq!(bad_name.json()["error"], "INVALID_TOPIC_EXCEPTION");
    let alter = http::post(&admin, "/api/topics/shown/configs", &json!({ "set": { "retention.ms": "3600000" } }));
    assert_eq!(alter.status, 200, "{}", alter.body);
    let detail = http::get(&admin, "/api/topics/shown").json();
    assert_eq!(detail["partitions"].as_array().unwrap().len(), 3);
    let retention = detail["configs"].as_array().unwrap().iter().find(|c| c["name"] == "retention.ms").unwrap().clone();
    assert_eq!(
        (retention["value"].as_str(), retention["source"].as_str()),
        (Some("3600000"), Some("DYNAMIC_TOPIC_CONFIG"))
    );
    let bad_value = http::post(&admin, "/api/topics/shown/configs", &json!({ "set": { "retention.ms": "soon" } }));
    assert_eq!(bad_value.json()["error"], "INVALID_CONFIG");
    http::post(&admin, "/api/topics/shown/configs", &json!({ "delete": ["retention.ms"] }));
    let detail = http::get(&admin, "/api/topics/shown").json();
    let retention = detail["configs"].as_array().unwrap().iter().find(|c| c["name"] == "retention.ms").unwrap().clone();
    assert_eq!(retention["source"], "DEFAULT_CONFIG");

    // Records as a person sees them: text, JSON, headers, timestamps, markers.
    create_topic(&b, "browse", 1, &[]).await;
    let headers =
        rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header { key: "trace", value: Some("t-1") });
    let records = (0..20).map(|i| {
        Record::new(format!("{{\"n\":{i}}}"))
            .key(format!("key-{i}"))
            .partition(0)
            .timestamp(1_700_000_000_000 + i * 1000)
    });
    produce(&kafka::producer(&b, &[("acks", "all")]), "browse", records).await;
    produce(
        &kafka::producer(&b, &[("acks", "all")]),
        "browse",
        [Record::new("with header").partition(0).headers(headers)],
    )
    .await;
    {
        use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
        let producer: ThreadedProducer<rdkafka::producer::DefaultProducerContext> =
            kafka::client_config(&b, &[("transactional.id", "console-txn")]).create().unwrap();
        producer.init_transactions(TIMEOUT).unwrap();
        producer.begin_transaction().unwrap();
        producer.send(BaseRecord::to("browse").payload("committed").key("t").partition(0)).unwrap();
        producer.commit_transaction(TIMEOUT).unwrap();
        producer.begin_transaction().unwrap();
        producer.send(BaseRecord::to("browse").payload("aborted").key("t").partition(0)).unwrap();
        // Sent before the abort (an abort drops what is still queued).
        producer.flush(TIMEOUT).unwrap();
        producer.abort_transaction(TIMEOUT).unwrap();
    }
    let page = http::get(&admin, "/api/topics/browse/partitions/0/records?offset=0&limit=100").json();
    let records = page["records"].as_array().unwrap();
    assert_eq!(records[0]["key"]["text"], "key-0");
    assert_eq!(records[0]["value"]["text"], "{\"n\":0}");
    assert_eq!(records[0]["timestamp"], 1_700_000_000_000i64);
    assert_eq!(records[0]["value"]["hex"], "7b226e223a307d");
    assert_eq!(records[20]["headers"][0]["key"], "trace");
    assert_eq!(records[20]["headers"][0]["value"]["text"], "t-1");
    let controls: Vec<&str> = records.iter().filter_map(|r| r["control"].as_str()).collect();
    assert_eq!(controls, ["COMMIT", "ABORT"]);
    assert!(records.iter().any(|r| r["value"]["text"] == "aborted" && r["transactional"] == true));
    let end = page["high_watermark"].as_i64().unwrap();
    assert_eq!(end, 25);
    let latest = http::get(&admin, "/api/topics/browse/partitions/0/records?from=latest&limit=5").json();
    assert_eq!(latest["records"][0]["offset"], end - 5);
    let by_time = http::get(&admin, "/api/topics/browse/partitions/0/records?timestamp=1700000005000&limit=1").json();
    assert_eq!(by_time["records"][0]["offset"], 5);
    assert_eq!(
        http::get(&admin, "/api/topics/none/partitions/0/records").json()["error"],
        "UNKNOWN_TOPIC_OR_PARTITION"
    );

    // Delete records, then reading from 0 starts at the new log start.
    let deleted = http::post(&admin, "/api/topics/browse/delete-records", &json!({ "partition": 0, "offset": 10 }));
    assert_eq!(deleted.json()["low_watermark"], 10);
    let page = http::get(&admin, "/api/topics/browse/partitions/0/records?offset=0&limit=1").json();
    assert_eq!((page["log_start_offset"].as_i64(), page["records"][0]["offset"].as_i64()), (Some(10), Some(10)));

    // Groups: lag, no reset while members are in, reset when empty, delete.
    commit(&b, "viewers", "browse", &[(0, 12)]);
    let groups = http::get(&admin, "/api/groups").json();
    let viewers = groups["groups"].as_array().unwrap().iter().find(|g| g["group_id"] == "viewers").unwrap().clone();
    assert_eq!(viewers["total_lag"], end - 12);
    let member: BaseConsumer = consumer_config(&b, "viewers").set("session.timeout.ms", "6000").create().unwrap();
    member.subscribe(&["browse"]).unwrap();
    wait_until("the member joins", TIMEOUT, || {
        member.poll(Duration::from_millis(100));
        http::get(&admin, "/api/groups/viewers").json()["state"] == "Stable"
    });
    let group = http::get(&admin, "/api/groups/viewers").json();
    assert_eq!(group["members"][0]["assignments"][0]["topic"], "browse");
    assert_eq!(group["members"][0]["assignments"][0]["partitions"], json!([0]));
    let refused =
        http::post(&admin, "/api/groups/viewers/reset-offsets", &json!({ "topic": "browse", "mode": "earliest" }));
    assert_eq!((refused.status, refused.json()["error"].as_str()), (409, Some("NON_EMPTY_GROUP")));
    assert_eq!(http::delete(&admin, "/api/groups/viewers").json()["error"], "NON_EMPTY_GROUP");
    member.unsubscribe();
    drop(member);
    wait_until("the group empties", TIMEOUT, || http::get(&admin, "/api/groups/viewers").json()["state"] == "Empty");
    let reset =
        http::post(&admin, "/api/groups/viewers/reset-offsets", &json!({ "topic": "browse", "mode": "earliest" }));
    assert_eq!(reset.status, 200, "{}", reset.body);
    assert_eq!(committed(&b, "viewers", "browse", 1), [10]);
    http::post(&admin, "/api/groups/viewers/reset-offsets", &json!({ "mode": "shift", "value": 3 }));
    assert_eq!(committed(&b, "viewers", "browse", 1), [13]);
    http::post(&admin, "/api/groups/viewers/reset-offsets", &json!({ "mode": "offset", "value": 1_000 }));
    assert_eq!(committed(&b, "viewers", "browse", 1), [end], "offsets past the end are clamped, as the tool does");
    assert_eq!(http::delete(&admin, "/api/groups/viewers").status, 200);
    assert_eq!(http::get(&admin, "/api/groups/viewers").status, 404);

    // Transactions and producers.
    let txns = http::get(&admin, "/api/transactions").json();
    let txn = txns["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["transactional_id"] == "console-txn")
        .unwrap()
        .clone();
    assert_eq!(txn["state"], "CompleteAbort");
    assert!(txns["producers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["topic"] == "browse" && p["producer_id"] == txn["producer_id"]));

    // Deleting a topic.
    assert_eq!(http::delete(&admin, "/api/topics/shown").status, 200);
    let gone = http::get(&admin, "/api/topics/shown");
    assert_eq!((gone.status, gone.json()["error"].as_str()), (404, Some("UNKNOWN_TOPIC_OR_PARTITION")));
    broker.stop();
}
