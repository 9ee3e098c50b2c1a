//! Driving the broker with librdkafka (the `rdkafka` crate): producing records
//! and waiting for every acknowledgement, consumer configs, and reading
//! partitions back.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, FutureProducer, FutureRecord, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

/// An admin client for `bootstrap`.
pub fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    client_config(bootstrap, &[]).create().expect("admin client")
}

/// A client config for `bootstrap` with `settings` (such as `("acks", "all")`)
/// over librdkafka's defaults.
pub fn client_config(bootstrap: &str, settings: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    for (key, value) in settings {
        config.set(*key, *value);
    }
    config
}

/// A producer for `bootstrap` with `settings` over librdkafka's defaults.
pub fn producer(bootstrap: &str, settings: &[(&str, &str)]) -> FutureProducer {
    client_config(bootstrap, settings).create().expect("producer")
}

/// One record for [`produce`]: a value, and optionally a key, a partition
/// (else the producer's partitioner picks one), a timestamp and headers.
#[derive(Clone, Default)]
pub struct Record {
    value: String,
    key: Option<String>,
    partition: Option<i32>,
    timestamp: Option<i64>,
    headers: Option<OwnedHeaders>,
}

impl Record {
    pub fn new(value: impl Into<String>) -> Record {
        Record { value: value.into(), ..Record::default() }
    }

    pub fn key(mut self, key: impl Into<String>) -> Record {
        self.key = Some(key.into());
        self
    }

    pub fn partition(mut self, partition: i32) -> Record {
        self.partition = Some(partition);
        self
    }

    pub fn timestamp(mut self, timestamp_ms: i64) -> Record {
        self.timestamp = Some(timestamp_ms);
        self
    }

    pub fn headers(mut self, headers: OwnedHeaders) -> Record {
        self.headers = Some(headers);
        self
    }
}

/// Sends every record to `topic` (all in flight at once), then waits for each
/// delivery; panics if one cannot be queued or is not acknowledged. Returns
/// each record's (partition, offset), in the order given.
pub async fn produce(
    producer: &FutureProducer,
    topic: &str,
    records: impl IntoIterator<Item = Record>,
) -> Vec<(i32, i64)> {
    let mut deliveries = Vec::new();
    for Record { value, key, partition, timestamp, headers } in records {
        let record: FutureRecord<'_, str, str> =
            FutureRecord { topic, partition, payload: Some(&value), key: key.as_deref(), timestamp, headers };
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e).expect("queue a record"));
    }
    let mut acked = Vec::with_capacity(deliveries.len());
    for d in deliveries {
        let delivery = d.await.expect("delivery future").map_err(|(e, _)| e).expect("record acknowledged");
        acked.push((delivery.partition, delivery.offset));
    }
    acked
}

/// A consumer config for `group` with auto-commit off (`enable.auto.commit=false`):
/// chain `.set(...)` for anything else.
pub fn consumer_config(bootstrap: &str, group: &str) -> ClientConfig {
    client_config(bootstrap, &[("group.id", group), ("enable.auto.commit", "false")])
}

/// A consumer made from `config` and assigned `partitions` of `topic`, each
/// starting at `offset`.
pub fn assigned(
    config: &ClientConfig,
    topic: &str,
    partitions: impl IntoIterator<Item = i32>,
    offset: Offset,
) -> BaseConsumer {
    let consumer: BaseConsumer = config.create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition_offset(topic, p, offset).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    consumer
}

/// Polls `consumer` until it has `count` messages; panics on a consumer error,
/// or when `timeout` passes first.
pub fn poll_n(consumer: &BaseConsumer, count: usize, timeout: Duration) -> Vec<OwnedMessage> {
    let deadline = Instant::now() + timeout;
    let mut messages = Vec::with_capacity(count);
    while messages.len() < count {
        assert!(Instant::now() < deadline, "only {} of {count} messages within {timeout:?}", messages.len());
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => messages.push(m.detach()),
            Some(Err(e)) => panic!("consume: {e}"),
            None => {}
        }
    }
    messages
}

/// Every message of partitions `0..partitions` of `topic`, read from the
/// beginning with `config` until each partition is at its end (its last event
/// is end-of-partition), in the order received. Panics on a consumer error,
/// or when `timeout` passes first.
pub fn consume_to_end(config: &ClientConfig, topic: &str, partitions: i32, timeout: Duration) -> Vec<OwnedMessage> {
    let mut config = config.clone();
    config.set("enable.partition.eof", "true");
    let consumer = assigned(&config, topic, 0..partitions, Offset::Beginning);
    let deadline = Instant::now() + timeout;
    let mut at_end = BTreeSet::new();
    let mut messages = Vec::new();
    while at_end.len() < partitions as usize {
        assert!(
            Instant::now() < deadline,
            "{topic} not read to its end within {timeout:?}: {} messages, at the end of {at_end:?}",
            messages.len()
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                at_end.remove(&m.partition());
                messages.push(m.detach());
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => panic!("consuming {topic}: {e}"),
            None => {}
        }
    }
    messages
}

/// A message's payload as text.
pub fn value(message: &impl Message) -> String {
    String::from_utf8(message.payload().expect("a payload").to_vec()).expect("a UTF-8 payload")
}

/// The (low, high) watermarks of a partition.
pub fn watermarks(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    let consumer: BaseConsumer = client_config(bootstrap, &[]).create().expect("consumer");
    consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)).expect("watermarks")
}

/// Commits `offsets` ((partition, offset) pairs of `topic`) for `group`, as a member-less client does.
pub fn commit(bootstrap: &str, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    use rdkafka::consumer::CommitMode;
    let consumer: BaseConsumer = consumer_config(bootstrap, group).create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for (p, o) in offsets {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*o)).unwrap();
    }
    consumer.commit(&tpl, CommitMode::Sync).expect("commit offsets");
}

/// `group`'s committed offsets of partitions `0..partitions` of `topic`; panics where there is none.
pub fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = consumer_config(bootstrap, group).create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = consumer.committed_offsets(tpl, Duration::from_secs(10)).expect("committed offsets");
    (0..partitions)
        .map(|p| match got.find_partition(topic, p).expect("asked for").offset() {
            Offset::Offset(o) => o,
            other => panic!("{group} has no committed offset for {topic}-{p}: {other:?}"),
        })
        .collect()
}

/// Queues `record` on a threaded producer, waiting while its queue is full;
/// panics on any other error.
pub fn send(producer: &ThreadedProducer<DefaultProducerContext>, mut record: BaseRecord<'_, str, str>) {
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => panic!("send: {e}"),
        }
    }
}
