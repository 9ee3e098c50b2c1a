//! Log compaction with real clients: keyed updates over many segments cleaned
//! to the latest value per key at its original offset, tombstones removed
//! after `delete.retention.ms`, aborted transactions removed and committed
//! ones kept, an idempotent producer producing straight through cleaning,
//! and kill -9 in the middle of cleaning, again and again, with the model
//! checked after every restart.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::kafka::{self, consume_to_end, consumer_config, produce, Record};
use common::{create_topic, Broker};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, FutureProducer, FutureRecord, Producer, ThreadedProducer};

const TIMEOUT: Duration = Duration::from_secs(60);

/// What a consumer reads from a partition, by offset: key and value (`None`: a tombstone).
type Served = BTreeMap<i64, (String, Option<String>)>;

/// A broker whose cleaner looks for work every 100 ms.
fn start(name: &str, extra_properties: &str) -> Broker {
    let dir = common::fresh_data_dir(name);
    let properties = dir.with_extension("properties");
    std::fs::write(&properties, format!("log.cleaner.backoff.ms=100\n{extra_properties}")).unwrap();
    Broker::start_in(dir, 2, &["--config", properties.to_str().unwrap()])
}

/// Topic configs of a compacted topic with small segments that is cleaned
/// as soon as anything is dirty.
fn compacted(delete_retention_ms: &str) -> Vec<(&'static str, String)> {
    vec![
        ("cleanup.policy", "compact".to_string()),
        ("segment.bytes", "1048576".to_string()),
        ("min.cleanable.dirty.ratio", "0.01".to_string()),
        ("delete.retention.ms", delete_retention_ms.to_string()),
    ]
}

async fn create_compacted(broker: &Broker, topic: &str, configs: &[(&str, String)]) {
    let configs: Vec<(&str, &str)> = configs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    create_topic(&broker.bootstrap(), topic, 1, &configs).await;
}

/// Every record of partition 0 of `topic`, read from the start to the end.
fn read(bootstrap: &str, topic: &str, isolation: &str) -> Served {
    let mut config = consumer_config(bootstrap, "compaction-reader");
    config.set("isolation.level", isolation);
    consume_to_end(&config, topic, 1, TIMEOUT)
        .iter()
        .map(|m| {
            let key = String::from_utf8(m.key().expect("a key").to_vec()).unwrap();
            let value = m.payload().map(|p| String::from_utf8(p.to_vec()).unwrap());
            (m.offset(), (key, value))
        })
        .collect()
}

/// Reads until `done` holds for what is served, or panics with the last read.
fn read_until(bootstrap: &str, topic: &str, isolation: &str, what: &str, done: impl Fn(&Served) -> bool) -> Served {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let served = read(bootstrap, topic, isolation);
        if done(&served) {
            return served;
        }
        if Instant::now() >= deadline {
            let brief: Vec<_> = served.iter().map(|(o, (k, v))| (o, k, v.is_some())).collect();
            panic!("{what} not reached within {TIMEOUT:?}; served (offset, key, has a value): {brief:?}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Cleaning passes the broker finished, from its metrics.
fn cleaner_passes(broker: &Broker) -> f64 {
    let metrics = common::http::get(&broker.admin_url(), "/metrics").body;
    common::http::sum(&common::http::parse_metrics(&metrics), "sluice_cleaner_passes_total", &[])
}

/// The record a producer wrote at each offset.
type Model = BTreeMap<i64, (String, Option<String>)>;

/// The model's latest record of each key.
fn latest(model: &Model) -> Served {
    let mut by_key: BTreeMap<&String, (i64, &Option<String>)> = BTreeMap::new();
    for (offset, (key, value)) in model {
        by_key.insert(key, (*offset, value));
    }
    by_key.into_iter().map(|(k, (o, v))| (o, (k.clone(), v.clone()))).collect()
}

/// Sends a tombstone for `key` and waits for its offset.
async fn delete(producer: &FutureProducer, topic: &str, key: &str) -> i64 {
    let record: FutureRecord<'_, str, str> = FutureRecord::to(topic).key(key).partition(0);
    producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e).expect("tombstone").offset
}

/// About 1 KB of text that compresses poorly, different for each `seed`.
fn filler(seed: u64) -> String {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..1000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"[(x % 64) as usize])
        })
        .collect()
}

/// Writes `rounds` values (about 1 KB each) for each of `keys` keys, a round at a time.
async fn write_rounds(producer: &FutureProducer, topic: &str, keys: usize, rounds: usize, model: &mut Model) {
    let start = model.len() as u64;
    for round in 0..rounds {
        let values: Vec<String> =
            (0..keys).map(|k| format!("v{round}-{}", filler(start + (round * keys + k) as u64))).collect();
        let records: Vec<Record> = values
            .iter()
            .enumerate()
            .map(|(k, v)| Record::new(v.clone()).key(format!("key-{k}")).partition(0))
            .collect();
        let offsets = produce(producer, topic, records).await;
        for ((k, (_, offset)), value) in offsets.into_iter().enumerate().zip(values) {
            model.insert(offset, (format!("key-{k}"), Some(value)));
        }
    }
}

/// Produces one record after `segment.ms` passed: the records before it are
/// then in closed segments, which the cleaner may clean.
async fn roll(producer: &FutureProducer, topic: &str, segment_ms: u64, model: &mut Model) {
    tokio::time::sleep(Duration::from_millis(segment_ms + 100)).await;
    let offsets = produce(producer, topic, [Record::new("after").key("roll").partition(0)]).await;
    model.insert(offsets[0].1, ("roll".to_string(), Some("after".to_string())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_updates_and_tombstones_compact_to_the_latest_value_per_key() {
    let broker = start("compaction-latest", "");
    let mut configs = compacted("3000");
    configs.push(("segment.ms", "1500".to_string()));
    create_compacted(&broker, "prices", &configs).await;
    // lz4 batches of many records: the cleaner rewrites them with their own codec.
    let producer =
        kafka::producer(&broker.bootstrap(), &[("acks", "all"), ("compression.type", "lz4"), ("linger.ms", "5")]);
    let mut model = Model::new();
    write_rounds(&producer, "prices", 100, 60, &mut model).await;
    for k in 0..10 {
        let key = format!("key-{k}");
        let offset = delete(&producer, "prices", &key).await;
        model.insert(offset, (key, None));
    }
    roll(&producer, "prices", 1500, &mut model).await;
    let (_, end) = kafka::watermarks(&broker.bootstrap(), "prices", 0);

    // Cleaned: exactly each key's latest record, tombstones included, at its original offset.
    let expected = latest(&model);
    let bootstrap = broker.bootstrap();
    tokio::task::block_in_place(|| {
        read_until(&bootstrap, "prices", "read_uncommitted", "the latest value per key", |s| *s == expected);
    });
    assert_eq!(kafka::watermarks(&bootstrap, "prices", 0), (0, end), "offsets never change");

    // Past delete.retention.ms the tombstones go, and nothing of their keys comes back.
    let live: Served = expected.into_iter().filter(|(_, (_, v))| v.is_some()).collect();
    tokio::task::block_in_place(|| {
        read_until(&bootstrap, "prices", "read_uncommitted", "tombstones removed", |s| *s == live);
    });
    let size: u64 = std::fs::read_dir(broker.data_dir.join("prices-0"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(size < 2 * 1024 * 1024, "bounded by the live keys: {size} bytes");
    assert!(cleaner_passes(&broker) >= 2.0, "cleaner passes counted");
    broker.stop();
}

fn transactional_producer(bootstrap: &str, id: &str) -> ThreadedProducer<DefaultProducerContext> {
    let settings = [("transactional.id", id), ("linger.ms", "1")];
    let producer: ThreadedProducer<DefaultProducerContext> =
        kafka::client_config(bootstrap, &settings).create().unwrap();
    producer.init_transactions(TIMEOUT).unwrap();
    producer
}

fn send(producer: &ThreadedProducer<DefaultProducerContext>, topic: &str, key: &str, value: &str) {
    kafka::send(producer, BaseRecord::to(topic).payload(value).key(key).partition(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_transactions_go_and_committed_ones_stay() {
    let broker = start("compaction-txn", "");
    let mut configs = compacted("1000");
    configs.push(("segment.ms", "1000".to_string()));
    create_compacted(&broker, "ledger", &configs).await;
    let bootstrap = broker.bootstrap();
    let pad = "y".repeat(1000);
    tokio::task::block_in_place(|| {
        let producer = transactional_producer(&bootstrap, "ledger-writer");
        for round in 0..30 {
            producer.begin_transaction().unwrap();
            for k in 0..40 {
                send(&producer, "ledger", &format!("acct-{k}"), &format!("{round}-{pad}"));
            }
            // Every third transaction is aborted, the last one among them.
            if round % 3 == 2 || round == 29 {
                producer.abort_transaction(TIMEOUT).unwrap();
            } else {
                producer.commit_transaction(TIMEOUT).unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(1100));
        producer.begin_transaction().unwrap();
        send(&producer, "ledger", "roll", "after");
        producer.commit_transaction(TIMEOUT).unwrap();
    });
    // Round 28 is the last committed one (29 aborted): its values are every key's latest.
    let committed_latest = |s: &Served| {
        let accounts: Vec<_> = s.values().filter(|(k, _)| k.starts_with("acct-")).collect();
        accounts.len() == 40 && accounts.iter().all(|(_, v)| v.as_deref() == Some(&format!("28-{pad}")))
    };
    tokio::task::block_in_place(|| {
        let before = read(&bootstrap, "ledger", "read_committed");
        assert!(committed_latest(&before) || before.len() > 40, "read_committed sees committed data only");
        // Cleaned: even read_uncommitted sees no aborted record and one record per key.
        let served = read_until(&bootstrap, "ledger", "read_uncommitted", "aborted data removed", |s| {
            committed_latest(s) && s.len() == 41
        });
        let committed = read(&bootstrap, "ledger", "read_committed");
        assert_eq!(committed, served, "read_committed sees the same after cleaning");
    });
    broker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_producer_produces_through_cleaning() {
    let broker = start("compaction-idempotent", "");
    create_compacted(&broker, "state", &compacted("60000")).await;
    let producer = kafka::producer(
        &broker.bootstrap(),
        &[("enable.idempotence", "true"), ("acks", "all"), ("linger.ms", "2"), ("compression.type", "zstd")],
    );
    // 12 MB over 200 keys in 1 MiB segments: the log is cleaned many times while
    // the producer goes on; a sequence error or a duplicate fails `produce`.
    let mut model = Model::new();
    write_rounds(&producer, "state", 200, 60, &mut model).await;
    let bootstrap = broker.bootstrap();
    tokio::task::block_in_place(|| common::wait_until("a clean", TIMEOUT, || cleaner_passes(&broker) >= 1.0));
    write_rounds(&producer, "state", 200, 5, &mut model).await;
    // Every offset the producer was given holds its record, or a later value of its key.
    let served = tokio::task::block_in_place(|| read(&bootstrap, "state", "read_uncommitted"));
    let values: std::collections::HashSet<_> = served.values().collect();
    assert_eq!(values.len(), served.len(), "no record served twice");
    for (offset, (key, value)) in &served {
        assert_eq!(model.get(offset), Some(&(key.clone(), value.clone())), "offset {offset}");
    }
    for (offset, record) in latest(&model) {
        assert_eq!(served.get(&offset), Some(&record), "latest of {} kept", record.0);
    }
    assert!(served.len() < model.len(), "cleaning removed superseded values");
    broker.stop();
}

/// The safety of what is served, whatever a crash left: every record served is
/// the one written at its offset; each key's latest value is served; a key
/// whose latest record is a tombstone no longer served has nothing served.
fn check_safe(model: &Model, served: &Served) {
    for (offset, record) in served {
        assert_eq!(model.get(offset), Some(record), "offset {offset} serves what was written there");
    }
    for (offset, (key, value)) in latest(model) {
        if value.is_some() {
            assert!(served.contains_key(&offset), "latest value of {key} at {offset} lost");
        } else if !served.contains_key(&offset) {
            let resurrected: Vec<_> = served.iter().filter(|(_, (k, _))| *k == key).collect();
            assert!(resurrected.is_empty(), "{key} deleted at {offset}, yet {resurrected:?} served");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_cleaning_loses_and_resurrects_nothing() {
    // A slow cleaner (1 MB/s per shard) so that the kills land inside passes.
    let properties = "log.cleaner.io.max.bytes.per.second=2000000\n";
    let mut broker = start("compaction-kill", properties);
    let mut configs = compacted("0");
    configs.push(("segment.ms", "500".to_string()));
    create_compacted(&broker, "orders", &configs).await;
    let mut model = Model::new();
    let mut kills_during_a_pass = 0;
    for round in 0..6u64 {
        let producer = kafka::producer(&broker.bootstrap(), &[("acks", "all"), ("linger.ms", "5")]);
        write_rounds(&producer, "orders", 150, 12, &mut model).await;
        for k in (round as usize * 7..150).step_by(11) {
            let key = format!("key-{k}");
            let offset = delete(&producer, "orders", &key).await;
            model.insert(offset, (key, None));
        }
        roll(&producer, "orders", 500, &mut model).await;
        drop(producer);
        // Somewhere inside the next clean.
        tokio::time::sleep(Duration::from_millis(300 + 350 * round)).await;
        let files: Vec<String> = std::fs::read_dir(broker.data_dir.join("orders-0"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        if files.iter().any(|f| f.ends_with(".cleaned") || f.ends_with(".swap")) {
            kills_during_a_pass += 1;
        }
        let dir = broker.kill();
        let properties = dir.with_extension("properties");
        broker = Broker::start_in(dir, 2, &["--config", properties.to_str().unwrap()]);
        let served = tokio::task::block_in_place(|| read(&broker.bootstrap(), "orders", "read_uncommitted"));
        check_safe(&model, &served);
        assert_eq!(kafka::watermarks(&broker.bootstrap(), "orders", 0).1, *model.keys().last().unwrap() + 1);
    }
    assert!(kills_during_a_pass >= 1, "at least one kill landed while a clean was under way");
    // Left alone, it converges on the model: the latest live value of every key
    // in the closed segments (the cleaner sees nothing of the active one,
    // where only the last record is), then that last record.
    let mut closed = model.clone();
    let last = closed.pop_last().unwrap();
    let mut expected: Served = latest(&closed).into_iter().filter(|(_, (_, v))| v.is_some()).collect();
    expected.insert(last.0, last.1);
    let bootstrap = broker.bootstrap();
    tokio::task::block_in_place(|| {
        read_until(&bootstrap, "orders", "read_uncommitted", "the model", |s| *s == expected);
    });
    broker.stop();
}
