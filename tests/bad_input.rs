//! Malformed input: each bad frame closes its own connection (or gets Kafka's
//! error where the protocol has one), loses nothing, and leaves the broker
//! serving everyone else.

use crate::common;

use std::io::Write;
use std::time::Duration;

use common::kafka::{self, consume_to_end, consumer_config, produce, Record};
use common::{create_topic, record_batch, Broker, Raw};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse};
use rdkafka::message::Message;

fn assert_closed(broker: &Broker, bytes: &[u8], what: &str) {
    let mut raw = Raw::connect(broker);
    raw.send_bytes(bytes);
    assert!(raw.closed_by_broker(), "{what}: connection left open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_close_only_their_connection() {
    let broker = Broker::start("bad-input", 2, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "safe", 1, &[]).await;

    assert_closed(&broker, &0x7fff_ffffi32.to_be_bytes(), "2 GiB frame length");
    assert_closed(&broker, &(-5i32).to_be_bytes(), "negative frame length");
    assert_closed(&broker, &[0, 0, 0, 3, 0, 3, 0], "frame shorter than a header");
    // Metadata v1 whose client id claims 100 bytes that are not there.
    assert_closed(&broker, &[0, 0, 0, 10, 0, 3, 0, 1, 0, 0, 0, 7, 0, 100], "truncated header");
    // An API key Kafka does not define.
    assert_closed(&broker, &[0, 0, 0, 10, 0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff], "unknown api key");
    // Produce v2 is advertised (as Kafka does) but not served.
    assert_closed(&broker, &[0, 0, 0, 10, 0, 0, 0, 2, 0, 0, 0, 1, 0xff, 0xff], "produce v2");
    // Metadata v12 whose topic array claims two billion entries.
    let mut huge_array = vec![0, 3, 0, 12, 0, 0, 0, 9, 0, 0, 0];
    huge_array.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x07]);
    let mut framed = (huge_array.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&huge_array);
    assert_closed(&broker, &framed, "huge array count");
    // Random bytes with a plausible length.
    let mut junk = vec![0, 0, 1, 0];
    junk.extend((0..256u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    assert_closed(&broker, &junk, "random bytes");
    // A frame that announces 50 MiB and stops: the broker waits; closing is fine.
    {
        let mut raw = Raw::connect(&broker);
        raw.send_bytes(&(50 * 1024 * 1024i32).to_be_bytes());
        raw.stream.write_all(&[1, 2, 3]).unwrap();
    }

    // ApiVersions at a version the broker does not know: Kafka's v0-shaped answer.
    let mut raw = Raw::connect(&broker);
    let correlation = raw.send(ApiKey::ApiVersions, 4, &ApiVersionsRequest::default());
    let mut frame = raw.read_frame().unwrap();
    assert_eq!(bytes::Buf::get_i32(&mut frame), correlation);
    drop(raw);
    let mut raw = Raw::connect(&broker);
    let mut request = vec![0u8, 18, 0, 99, 0, 0, 0, 42, 0xff, 0xff, 0];
    let mut framed = (request.len() as i32).to_be_bytes().to_vec();
    framed.append(&mut request);
    raw.send_bytes(&framed);
    let mut frame = raw.read_frame().unwrap();
    assert_eq!(bytes::Buf::get_i32(&mut frame), 42);
    let answer = <ApiVersionsResponse as kafka_protocol::protocol::Decodable>::decode(&mut frame, 0).unwrap();
    assert_eq!(answer.error_code, 35, "UNSUPPORTED_VERSION");
    // Only ApiVersions' own range (KIP-511): the client retries with it.
    assert_eq!(
        answer.api_keys.iter().map(|k| (k.api_key, k.min_version, k.max_version)).collect::<Vec<_>>(),
        [(18, 0, 4)]
    );

    // A produce whose batch fails its CRC, or lies about its length: CORRUPT_MESSAGE, nothing written.
    let mut raw = Raw::connect(&broker);
    let mut batch = record_batch(&[b"one", b"two"], 1000);
    let last = batch.len() - 1;
    batch[last] ^= 0xff;
    assert_eq!(raw.produce("safe", 0, batch).0, 2);
    let mut lying = record_batch(&[b"one"], 1000);
    lying[8..12].copy_from_slice(&1_000_000i32.to_be_bytes());
    assert_eq!(raw.produce("safe", 0, lying).0, 2);
    // The same connection still works, and a good batch lands at offset 0.
    assert_eq!(raw.produce("safe", 0, record_batch(&[b"good"], 1000)), (0, 0));
    let metadata: MetadataResponse = raw.call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None));
    assert!(metadata.topics.iter().any(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "safe")));

    // A well-behaved client is unaffected.
    let after = Record::new("after").key("k").partition(0);
    produce(&kafka::producer(&bootstrap, &[("acks", "all")]), "safe", [after]).await;
    let b = bootstrap.clone();
    let values = tokio::task::spawn_blocking(move || {
        let messages = consume_to_end(&consumer_config(&b, "unused"), "safe", 1, Duration::from_secs(30));
        messages.iter().map(|m| (m.offset(), m.payload().unwrap().to_vec())).collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert_eq!(values, vec![(0, b"good".to_vec()), (1, b"after".to_vec())]);
    let mut broker = broker;
    assert!(broker.alive());
    assert!(!broker.log().contains("panicked"));
    broker.stop();
}
