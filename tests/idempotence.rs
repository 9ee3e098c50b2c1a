//! Idempotent producers: producer ids from InitProducerId, duplicates answered
//! with their original offsets and never written twice, gaps and old epochs
//! refused, and all of it surviving clean and unclean restarts.

use crate::common;

use std::time::Duration;

use common::kafka::{self, consume_to_end, consumer_config, produce, value, Record};
use common::{create_topic, fetch_request, idempotent_batch, Broker, Raw};
use kafka_protocol::messages::{ApiKey, FetchResponse, InitProducerIdRequest, InitProducerIdResponse};
use rdkafka::message::Message;

fn init_producer_id(raw: &mut Raw) -> (i64, i16) {
    let response: InitProducerIdResponse = raw.call(
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000),
    );
    assert_eq!(response.error_code, 0);
    (response.producer_id.0, response.producer_epoch)
}

fn high_watermark(raw: &mut Raw, topic: &str) -> i64 {
    let response: FetchResponse = raw.call(ApiKey::Fetch, 11, &fetch_request(topic, &[(0, 0)], 0));
    response.responses[0].partitions[0].high_watermark
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_gaps_and_epochs_across_restarts() {
    let broker = Broker::start("idempotence", 2, &[]);
    create_topic(&broker.bootstrap(), "idem", 1, &[]).await;
    let dir = tokio::task::block_in_place(|| {
        let mut raw = Raw::connect(&broker);
        let (pid, epoch) = init_producer_id(&mut raw);
        let (other_pid, _) = init_producer_id(&mut raw);
        assert_ne!(pid, other_pid, "producer ids are unique");

        assert_eq!(raw.produce("idem", 0, idempotent_batch(pid, epoch, 0, &[b"a", b"b"], 1)), (0, 0));
        assert_eq!(raw.produce("idem", 0, idempotent_batch(pid, epoch, 2, &[b"c"], 1)), (0, 2));
        // A retry of the first batch: its original offset, nothing new written.
        assert_eq!(raw.produce("idem", 0, idempotent_batch(pid, epoch, 0, &[b"a", b"b"], 1)), (0, 0));
        assert_eq!(high_watermark(&mut raw, "idem"), 3);
        // A gap: OUT_OF_ORDER_SEQUENCE_NUMBER.
        assert_eq!(raw.produce("idem", 0, idempotent_batch(pid, epoch, 9, &[b"x"], 1)).0, 45);
        // An unknown producer not starting at 0: UNKNOWN_PRODUCER_ID.
        assert_eq!(raw.produce("idem", 0, idempotent_batch(other_pid, 0, 4, &[b"x"], 1)).0, 59);
        // A bumped epoch restarts at 0; the old epoch is then refused.
        assert_eq!(raw.produce("idem", 0, idempotent_batch(pid, epoch + 1, 0, &[b"d"], 1)), (0, 3));
        assert_eq!(raw.produce("idem", 0, idempotent_batch(pid, epoch, 3, &[b"x"], 1)).0, 47);
        assert_eq!(high_watermark(&mut raw, "idem"), 4);
        broker.stop()
    });

    // After a clean restart the state comes from the snapshot.
    let broker = Broker::start_in(dir, 2, &[]);
    let (dir, pid) = tokio::task::block_in_place(|| {
        let mut raw = Raw::connect(&broker);
        let (pid_after, _) = init_producer_id(&mut raw);
        assert!(pid_after > 1, "ids are never reused across restarts");
        let pid = pid_after; // a fresh producer
        assert_eq!(raw.produce("idem", 0, idempotent_batch(pid, 0, 0, &[b"e"], 1)), (0, 4));
        assert_eq!(raw.produce("idem", 0, idempotent_batch(pid, 0, 0, &[b"e"], 1)), (0, 4));
        assert_eq!(high_watermark(&mut raw, "idem"), 5);
        (broker.kill(), pid)
    });

    // After a kill the state is replayed from the log.
    let broker = Broker::start_in(dir, 2, &[]);
    tokio::task::block_in_place(|| {
        let mut raw = Raw::connect(&broker);
        let (next_pid, _) = init_producer_id(&mut raw);
        assert!(next_pid > pid, "ids are never reused across a crash");
        assert_eq!(raw.produce("idem", 0, idempotent_batch(pid, 0, 0, &[b"e"], 1)), (0, 4), "dedup after a crash");
        assert_eq!(raw.produce("idem", 0, idempotent_batch(pid, 0, 1, &[b"f"], 1)), (0, 5));
        assert_eq!(high_watermark(&mut raw, "idem"), 6);
    });
    broker.stop();
}

/// librdkafka with `enable.idempotence=true`: every record exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdkafka_idempotent_producer() {
    let broker = Broker::start("idempotent-rdkafka", 2, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "exactly", 3, &[]).await;
    let producer = kafka::producer(&bootstrap, &[("enable.idempotence", "true"), ("linger.ms", "1")]);
    let records = (0..20_000).map(|i| Record::new(format!("{i}")).key("k").partition(i % 3));
    produce(&producer, "exactly", records).await;
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let messages = consume_to_end(&consumer_config(&b, "unused"), "exactly", 3, Duration::from_secs(60));
        let mut last = [-1i64; 3];
        let mut count = 0;
        for m in &messages {
            let i: i64 = value(m).parse().unwrap();
            let p = m.partition() as usize;
            assert_eq!(i % 3, p as i64);
            assert!(i > last[p], "partition {p}: {i} after {}", last[p]);
            last[p] = i;
            count += 1;
        }
        assert_eq!(count, 20_000);
    })
    .await
    .unwrap();
    broker.stop();
}

/// Produce requests in flight on one connection are appended in the order
/// they were sent, as Kafka's one-request-at-a-time connections append them,
/// even when the first has more to do before its partitions are written
/// (here: auto-creating another topic it also writes to). Were the second
/// appended first, the producer would be told OUT_OF_ORDER_SEQUENCE for it
/// while the first succeeded, which it could not recover from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_appended_in_the_order_they_were_sent() {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    /// Topics the first request of each round creates on its way.
    const NEW_TOPICS: usize = 4;
    /// Connections, one producer each: the kernel spreads them over both
    /// shards, so that some are served away from the shard creating topics.
    const CONNECTIONS: usize = 8;
    const ROUNDS: i32 = 3;
    let broker = Broker::start("idempotence-pipelined", 2, &[]);
    create_topic(&broker.bootstrap(), "ordered", 1, &[]).await;
    tokio::task::block_in_place(|| {
        let mut connections: Vec<(Raw, i64, i16)> = (0..CONNECTIONS)
            .map(|_| {
                let mut raw = Raw::connect(&broker);
                // Both requests of a round go out at once.
                raw.stream.set_nodelay(true).unwrap();
                let (pid, epoch) = init_producer_id(&mut raw);
                (raw, pid, epoch)
            })
            .collect();
        for round in 0..ROUNDS {
            for (c, (raw, pid, epoch)) in connections.iter_mut().enumerate() {
                let sequence = 2 * round;
                let batch = |sequence, value: &[u8]| idempotent_batch(*pid, *epoch, sequence, &[value], 1);
                let mut first = common::produce_request("ordered", 0, -1, batch(sequence, b"a"));
                for n in 0..NEW_TOPICS {
                    let new_topic = TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_string(format!("on-the-way-{round}-{c}-{n}"))))
                        .with_partition_data(vec![PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(common::record_batch(&[b"other"], 1).freeze()))]);
                    first.topic_data.insert(0, new_topic);
                }
                let second = common::produce_request("ordered", 0, -1, batch(sequence + 1, b"b"));
                let first_id = raw.send(ApiKey::Produce, 9, &first);
                let second_id = raw.send(ApiKey::Produce, 9, &second);
                let first: ProduceResponse = raw.receive(ApiKey::Produce, 9, first_id);
                let second: ProduceResponse = raw.receive(ApiKey::Produce, 9, second_id);
                for created in &first.responses[..NEW_TOPICS] {
                    let created = &created.partition_responses[0];
                    assert_eq!(created.error_code, 0, "round {round}: an auto-created topic: {created:?}");
                }
                let answers =
                    [&first.responses[NEW_TOPICS].partition_responses[0], &second.responses[0].partition_responses[0]];
                let answers: Vec<i16> = answers.iter().map(|p| p.error_code).collect();
                assert_eq!(answers, [0, 0], "round {round}, connection {c}: appended in the order sent");
                assert!(
                    second.responses[0].partition_responses[0].base_offset
                        > first.responses[NEW_TOPICS].partition_responses[0].base_offset
                );
            }
        }
        let (raw, _, _) = &mut connections[0];
        assert_eq!(high_watermark(raw, "ordered"), (CONNECTIONS as i64) * 2 * i64::from(ROUNDS));
    });
    broker.stop();
}
