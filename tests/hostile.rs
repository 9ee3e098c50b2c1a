//! Hostile clients and overload: malformed frames of every kind from many
//! connections, a consumer that never reads its socket, idle connections and
//! a connection cap, while well-behaved clients carry on undisturbed and the
//! broker's memory stays bounded.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::kafka::{self, consume_to_end, consumer_config, produce, Record};
use common::{create_topic, fetch_request, produce_request, record_batch, Broker, Raw};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

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
    let produce = produce_request("steady", 0, -1, lying_batch).with_timeout_ms(1000);
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
            // min_bytes 0: each is answered at once.
            let fetch = fetch_request("steady", &[(0, 0)], 100).with_min_bytes(0);
            for _ in 0..30 {
                raw.send(ApiKey::Fetch, 11, &fetch);
            }
            raw.stream
        })
        .collect();

    // Hostile connections, over and over, until the good clients are done
    // and at least `ATTEMPTS_MIN` were made.
    const ATTEMPTS_MIN: usize = 200;
    let stop = Arc::new(AtomicBool::new(false));
    let tried = Arc::new(AtomicUsize::new(0));
    let port = broker.port;
    let attackers: Vec<_> = (0..4)
        .map(|_| {
            let (stop, tried) = (stop.clone(), tried.clone());
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
                        tried.fetch_add(1, Ordering::Relaxed);
                    }
                }
                sent
            })
        })
        .collect();

    // The well-behaved producer and consumer.
    let producer = kafka::producer(&bootstrap, &[("acks", "all"), ("linger.ms", "2")]);
    produce(&producer, "steady", (0..20_000).map(|i| Record::new(format!("steady-{i}")).key("k"))).await;
    let b = bootstrap.clone();
    let consumed = tokio::task::spawn_blocking(move || {
        consume_to_end(&consumer_config(&b, "unused"), "steady", 1, Duration::from_secs(60)).len()
    })
    .await
    .unwrap();
    assert_eq!(consumed, 20_000);
    // On a fast run the good clients finish first: they keep being served
    // while the attack goes on to its minimum.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut more = 0;
    while tried.load(Ordering::Relaxed) < ATTEMPTS_MIN && Instant::now() < deadline {
        let acked = produce(&producer, "steady", (0..10).map(|i| Record::new(format!("more-{more}-{i}")))).await;
        assert_eq!(acked.len(), 10);
        more += 1;
    }
    let peak = rss_kib(pid);
    stop.store(true, Ordering::Relaxed);
    let attempts: usize = attackers.into_iter().map(|a| a.join().unwrap()).sum();
    assert!(attempts >= ATTEMPTS_MIN, "only {attempts} malformed connections were tried in a minute");
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
