//! Idempotent producers: producer ids from InitProducerId, duplicates answered
//! with their original offsets and never written twice, gaps and old epochs
//! refused, and all of it surviving clean and unclean restarts.

mod common;

use std::time::Duration;

use common::{create_topic, idempotent_batch, Broker, Raw};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, InitProducerIdRequest, InitProducerIdResponse, ProduceRequest,
    ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

fn produce(raw: &mut Raw, topic: &str, records: bytes::BytesMut) -> (i16, i64) {
    let request =
        ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default(
        )
        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partition_data(vec![PartitionProduceData::default()
            .with_index(0)
            .with_records(Some(records.freeze()))])]);
    let response: ProduceResponse = raw.call(ApiKey::Produce, 9, &request);
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

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
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![FetchPartition::default().with_partition(0).with_partition_max_bytes(1 << 20)])]);
    let response: FetchResponse = raw.call(ApiKey::Fetch, 11, &request);
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

        assert_eq!(produce(&mut raw, "idem", idempotent_batch(pid, epoch, 0, &[b"a", b"b"], 1)), (0, 0));
        assert_eq!(produce(&mut raw, "idem", idempotent_batch(pid, epoch, 2, &[b"c"], 1)), (0, 2));
        // A retry of the first batch: its original offset, nothing new written.
        assert_eq!(produce(&mut raw, "idem", idempotent_batch(pid, epoch, 0, &[b"a", b"b"], 1)), (0, 0));
        assert_eq!(high_watermark(&mut raw, "idem"), 3);
        // A gap: OUT_OF_ORDER_SEQUENCE_NUMBER.
        assert_eq!(produce(&mut raw, "idem", idempotent_batch(pid, epoch, 9, &[b"x"], 1)).0, 45);
        // An unknown producer not starting at 0: UNKNOWN_PRODUCER_ID.
        assert_eq!(produce(&mut raw, "idem", idempotent_batch(other_pid, 0, 4, &[b"x"], 1)).0, 59);
        // A bumped epoch restarts at 0; the old epoch is then refused.
        assert_eq!(produce(&mut raw, "idem", idempotent_batch(pid, epoch + 1, 0, &[b"d"], 1)), (0, 3));
        assert_eq!(produce(&mut raw, "idem", idempotent_batch(pid, epoch, 3, &[b"x"], 1)).0, 47);
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
        assert_eq!(produce(&mut raw, "idem", idempotent_batch(pid, 0, 0, &[b"e"], 1)), (0, 4));
        assert_eq!(produce(&mut raw, "idem", idempotent_batch(pid, 0, 0, &[b"e"], 1)), (0, 4));
        assert_eq!(high_watermark(&mut raw, "idem"), 5);
        (broker.kill(), pid)
    });

    // After a kill the state is replayed from the log.
    let broker = Broker::start_in(dir, 2, &[]);
    tokio::task::block_in_place(|| {
        let mut raw = Raw::connect(&broker);
        let (next_pid, _) = init_producer_id(&mut raw);
        assert!(next_pid > pid, "ids are never reused across a crash");
        assert_eq!(produce(&mut raw, "idem", idempotent_batch(pid, 0, 0, &[b"e"], 1)), (0, 4), "dedup after a crash");
        assert_eq!(produce(&mut raw, "idem", idempotent_batch(pid, 0, 1, &[b"f"], 1)), (0, 5));
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
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "1")
        .create()
        .unwrap();
    let mut deliveries = Vec::new();
    for i in 0..20_000 {
        let value = format!("{i}");
        let record = FutureRecord::to("exactly").key("k").payload(&value).partition(i % 3);
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for d in deliveries {
        d.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &b)
            .set("group.id", "unused")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..3 {
            tpl.add_partition_offset("exactly", p, Offset::Beginning).unwrap();
        }
        consumer.assign(&tpl).unwrap();
        let mut last = [-1i64; 3];
        let mut count = 0;
        let mut eof = 0;
        while eof < 3 {
            match consumer.poll(Duration::from_secs(10)) {
                Some(Ok(m)) => {
                    let i: i64 = std::str::from_utf8(m.payload().unwrap()).unwrap().parse().unwrap();
                    let p = m.partition() as usize;
                    assert_eq!(i % 3, p as i64);
                    assert!(i > last[p], "partition {p}: {i} after {}", last[p]);
                    last[p] = i;
                    count += 1;
                }
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => eof += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(count, 20_000);
    })
    .await
    .unwrap();
    broker.stop();
}
