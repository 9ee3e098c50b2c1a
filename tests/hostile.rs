//! Hostile clients and overload: malformed frames of every kind from many
//! connections, a consumer that never reads its socket, idle connections and
//! a connection cap, while well-behaved clients carry on undisturbed and the
//! broker's memory stays bounded.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{create_topic, record_batch, Broker, Raw};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, FetchRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// Every kind of malformed frame, each on its own connection.
fn malformed_frames() -> Vec<Vec<u8>> {
    let mut lying_batch = record_batch(&[b"lie"], 1);
    lying_batch[8..12].copy_from_slice(&(64 * 1024 * 1024i32).to_be_bytes());
    let produce =
        ProduceRequest::default().with_acks(-1).with_timeout_ms(1000).with_topic_data(vec![TopicProduceData::default(
        )
        .with_name(TopicName(StrBytes::from_static_str("steady")))
        .with_partition_data(vec![PartitionProduceData::default()
            .with_index(0)
            .with_records(Some(lying_batch.freeze()))])]);
    let mut produce_frame = vec![0u8, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0];
    let mut body = bytes::BytesMut::new();
    kafka_protocol::protocol::Encodable::encode(&produce, &mut body, 9).unwrap();
    produce_frame.extend_from_slice(&body);
    vec![
        0x7fff_ffffi32.to_be_bytes().to_vec(),               // 2 GiB length
        (-1i32).to_be_bytes().to_vec(),                      // negative length
        framed(&[0, 3]),                                     // truncated header
        framed(&[0x7f, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]),       // unknown API key
        framed(&[0, 3, 0, 1, 0, 0, 0, 1, 0, 2, 0xff, 0xfe]), // client id not UTF-8
        framed(&[0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // bad varint
        framed(&[0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07]), // huge array count
        framed(&[0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 5, 1, 100]), // truncated tagged fields
        framed(&[0, 18, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0xc0, 0xff]), // ApiVersions with a bad string
        framed(&produce_frame),                              // a batch lying about its length
        (50 * 1024 * 1024i32).to_be_bytes().iter().copied().chain([1, 2, 3]).collect(), // promises 50 MiB
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_floods_and_slow_readers_do_not_disturb_good_clients() {
    let broker = Broker::start("hostile", 2, &["--connections-max-idle-ms", "3000"]);
    let bootstrap = broker.bootstrap();
    let pid = broker.pid();
    create_topic(&bootstrap, "steady", 1, &[]).await;
    let baseline = rss_kib(pid);

    // Slow readers: pipelined fetches whose answers are never read.
    let slow: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut raw = Raw::connect(&broker);
            let fetch = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(100)
                .with_max_bytes(1 << 20)
                .with_session_epoch(-1)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str("steady")))
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(0)
                        .with_partition_max_bytes(1 << 20)])]);
            for _ in 0..30 {
                raw.send(ApiKey::Fetch, 11, &fetch);
            }
            raw.stream
        })
        .collect();

    // Hostile connections, over and over, until the good clients are done.
    let stop = Arc::new(AtomicBool::new(false));
    let port = broker.port;
    let attackers: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut sent = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    for frame in malformed_frames() {
                        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { continue };
                        s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
                        let _ = s.write_all(&frame);
                        let mut buf = [0u8; 64];
                        let _ = s.read(&mut buf);
                        sent += 1;
                    }
                }
                sent
            })
        })
        .collect();

    // The well-behaved producer and consumer.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("acks", "all")
        .set("linger.ms", "2")
        .create()
        .unwrap();
    let mut deliveries = Vec::new();
    for i in 0..20_000 {
        let value = format!("steady-{i}");
        deliveries.push(
            producer.send_result(FutureRecord::to("steady").key("k").payload(&value)).map_err(|(e, _)| e).unwrap(),
        );
    }
    for d in deliveries {
        d.await.unwrap().map_err(|(e, _)| e).expect("well-behaved produce succeeds");
    }
    let b = bootstrap.clone();
    let consumed = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &b)
            .set("group.id", "unused")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("steady", 0, Offset::Beginning).unwrap();
        consumer.assign(&tpl).unwrap();
        let mut n = 0;
        loop {
            match consumer.poll(Duration::from_secs(10)) {
                Some(Ok(_)) => n += 1,
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break n,
                other => panic!("consumer error {other:?}"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(consumed, 20_000);
    let peak = rss_kib(pid);
    stop.store(true, Ordering::Relaxed);
    let attempts: usize = attackers.into_iter().map(|a| a.join().unwrap()).sum();
    assert!(attempts > 100, "only {attempts} malformed connections were tried");
    assert!(peak < baseline + 512 * 1024, "RSS grew from {baseline} KiB to {peak} KiB");

    // An idle connection is closed after connections.max.idle.ms.
    let mut idle = Raw::connect(&broker);
    let started = Instant::now();
    assert!(idle.closed_by_broker(), "idle connection left open");
    assert!(started.elapsed() >= Duration::from_millis(2500));
    drop(slow);

    let mut broker = broker;
    assert!(broker.alive());
    assert!(!broker.log().contains("panicked"));
    broker.stop();
}

#[test]
fn connections_are_capped() {
    let broker = Broker::start("capped", 1, &["--max-connections", "3"]);
    // The start-up probe's connection must be gone before counting.
    std::thread::sleep(Duration::from_millis(300));
    let mut open: Vec<Raw> = (0..3).map(|_| Raw::connect(&broker)).collect();
    for raw in &mut open {
        let _: ApiVersionsResponse = raw.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    }
    let mut extra = Raw::connect(&broker);
    assert!(extra.closed_by_broker(), "a connection past max.connections is refused");
    drop(open.pop());
    std::thread::sleep(Duration::from_millis(200));
    let mut again = Raw::connect(&broker);
    let _: ApiVersionsResponse = again.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    broker.stop();
}
