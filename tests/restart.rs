//! Stopping the broker cleanly and starting it again keeps every topic and
//! record at the same offsets, also with a different shard count; a broker
//! killed without warning comes back with every acknowledged record.

mod common;

use std::time::Duration;

use common::{create_topic, Broker};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 4;

async fn produce(bootstrap: &str, topic: &str, from: usize, count: usize) -> Vec<(i32, i64, String)> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("linger.ms", "2")
        .create()
        .unwrap();
    let mut deliveries = Vec::new();
    for i in from..from + count {
        let value = format!("value-{i}");
        let record = FutureRecord::to(topic).key(&value).payload(&value).partition((i % PARTITIONS as usize) as i32);
        deliveries.push((value.clone(), producer.send_result(record).map_err(|(e, _)| e).unwrap()));
    }
    let mut acked = Vec::new();
    for (value, d) in deliveries {
        let delivery = d.await.unwrap().map_err(|(e, _)| e).unwrap();
        acked.push((delivery.partition, delivery.offset, value));
    }
    acked
}

fn consume(bootstrap: &str, topic: &str) -> Vec<(i32, i64, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "unused-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut eof = std::collections::HashSet::new();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while eof.len() < PARTITIONS as usize {
        assert!(std::time::Instant::now() < deadline, "consume timed out");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                out.push((m.partition(), m.offset(), String::from_utf8(m.payload().unwrap().to_vec()).unwrap()))
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None => {}
        }
    }
    out.sort();
    out
}

async fn consume_async(bootstrap: &str, topic: &str) -> Vec<(i32, i64, String)> {
    let (b, t) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || consume(&b, &t)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_restart_keeps_records_at_their_offsets() {
    let broker = Broker::start("restart", 2, &[]);
    create_topic(&broker.bootstrap(), "kept", PARTITIONS, &[("segment.bytes", "1048576")]).await;
    let mut acked = produce(&broker.bootstrap(), "kept", 0, 20_000).await;
    acked.sort();
    assert_eq!(consume_async(&broker.bootstrap(), "kept").await, acked);
    let dir = broker.stop();
    assert!(dir.join(".sluice_clean_shutdown").exists());

    // Same shard count: everything back, and new records continue the offsets.
    let broker = Broker::start_in(dir, 2, &[]);
    assert_eq!(consume_async(&broker.bootstrap(), "kept").await, acked);
    let more = produce(&broker.bootstrap(), "kept", 20_000, 400).await;
    for (partition, offset, _) in &more {
        assert!(*offset >= 5000, "partition {partition} reused offset {offset}");
    }
    acked.extend(more);
    acked.sort();
    let dir = broker.stop();

    // One shard instead of two: partitions are reassigned, data stays where it is.
    let broker = Broker::start_in(dir, 1, &[]);
    assert_eq!(consume_async(&broker.bootstrap(), "kept").await, acked);
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_broker_keeps_acknowledged_records() {
    let broker = Broker::start("killed", 2, &[]);
    create_topic(&broker.bootstrap(), "durable", PARTITIONS, &[]).await;
    let mut acked = produce(&broker.bootstrap(), "durable", 0, 5_000).await;
    acked.sort();
    let dir = broker.kill();
    assert!(!dir.join(".sluice_clean_shutdown").exists());
    let broker = Broker::start_in(dir, 2, &[]);
    assert_eq!(consume_async(&broker.bootstrap(), "durable").await, acked);
    let more = produce(&broker.bootstrap(), "durable", 5_000, 100).await;
    assert!(more.iter().all(|(_, offset, _)| *offset >= 1250));
    broker.stop();
}
