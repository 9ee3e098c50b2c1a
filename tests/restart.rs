//! Stopping the broker cleanly and starting it again keeps every topic and
//! record at the same offsets, also with a different shard count; a broker
//! killed without warning comes back with every acknowledged record.

use crate::common;

use std::time::Duration;

use common::kafka::{self, consume_to_end, consumer_config, produce, value, Record};
use common::{create_topic, Broker};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;

const PARTITIONS: i32 = 4;

/// Producer settings: acks=all, records batched for up to 2 ms.
const ACKS_ALL: &[(&str, &str)] = &[("acks", "all"), ("linger.ms", "2")];

/// Produces `value-{from}` to `value-{from + count - 1}` (keyed by their value)
/// round-robin over the partitions: each record's (partition, offset, value).
async fn produce_values(bootstrap: &str, topic: &str, from: usize, count: usize) -> Vec<(i32, i64, String)> {
    let values: Vec<String> = (from..from + count).map(|i| format!("value-{i}")).collect();
    let records = (from..from + count)
        .zip(&values)
        .map(|(i, value)| Record::new(value).key(value).partition((i % PARTITIONS as usize) as i32));
    let acked = produce(&kafka::producer(bootstrap, ACKS_ALL), topic, records).await;
    acked.into_iter().zip(values).map(|((partition, offset), value)| (partition, offset, value)).collect()
}

/// Every record of `topic` as (partition, offset, value), sorted.
async fn consume_async(bootstrap: &str, topic: &str) -> Vec<(i32, i64, String)> {
    let config = consumer_config(bootstrap, "unused-assign-only");
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let mut out: Vec<(i32, i64, String)> = consume_to_end(&config, &topic, PARTITIONS, Duration::from_secs(60))
            .iter()
            .map(|m| (m.partition(), m.offset(), value(m)))
            .collect();
        out.sort();
        out
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_restart_keeps_records_at_their_offsets() {
    let broker = Broker::start("restart", 2, &[]);
    create_topic(&broker.bootstrap(), "kept", PARTITIONS, &[("segment.bytes", "1048576")]).await;
    let mut acked = produce_values(&broker.bootstrap(), "kept", 0, 20_000).await;
    acked.sort();
    assert_eq!(consume_async(&broker.bootstrap(), "kept").await, acked);
    let dir = broker.stop();
    assert!(dir.join(".sluice_clean_shutdown").exists());

    // Same shard count: everything back, and new records continue the offsets.
    let broker = Broker::start_in(dir, 2, &[]);
    assert_eq!(consume_async(&broker.bootstrap(), "kept").await, acked);
    let more = produce_values(&broker.bootstrap(), "kept", 20_000, 400).await;
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
    let mut acked = produce_values(&broker.bootstrap(), "durable", 0, 5_000).await;
    acked.sort();
    let dir = broker.kill();
    assert!(!dir.join(".sluice_clean_shutdown").exists());
    let broker = Broker::start_in(dir, 2, &[]);
    assert_eq!(consume_async(&broker.bootstrap(), "durable").await, acked);
    let more = produce_values(&broker.bootstrap(), "durable", 5_000, 100).await;
    assert!(more.iter().all(|(_, offset, _)| *offset >= 1250));
    broker.stop();
}

/// A Python producer in its own process, reporting what the broker
/// acknowledged: kafka-python (`tests/clients/kafka_python_acked_producer.py`)
/// or confluent-kafka (`tests/clients/confluent_kafka_acked_producer.py`).
struct PythonProducer {
    child: std::process::Child,
    acked: std::sync::mpsc::Receiver<(i32, i64, String)>,
    ready: std::sync::mpsc::Receiver<()>,
}

impl PythonProducer {
    /// Starts the producer of `client` (`kafka_python` or `confluent_kafka`);
    /// [`PythonProducer::wait_ready`] waits for its first acknowledgement.
    fn start(client: &str, bootstrap: &str, topic: &str, prefix: &str) -> PythonProducer {
        use std::io::BufRead;
        let script = format!("{}/tests/clients/{client}_acked_producer.py", env!("CARGO_MANIFEST_DIR"));
        let mut child = std::process::Command::new(common::clients::python())
            .args([&script, bootstrap, topic, prefix, &PARTITIONS.to_string()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the Python producer");
        let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (acked_tx, acked) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines {
                let Ok(line) = line else { break };
                if line == "READY" {
                    let _ = ready_tx.send(());
                } else if let Some(rest) = line.strip_prefix("ACK ") {
                    let mut parts = rest.splitn(3, ' ');
                    let partition = parts.next().unwrap().parse().unwrap();
                    let offset = parts.next().unwrap().parse().unwrap();
                    let _ = acked_tx.send((partition, offset, parts.next().unwrap().to_string()));
                }
            }
        });
        PythonProducer { child, acked, ready: ready_rx }
    }

    fn wait_ready(&self) {
        self.ready.recv_timeout(Duration::from_secs(60)).expect("the Python producer did not get its first ack");
    }

    /// Kills the process and returns every acknowledgement it printed.
    fn kill(mut self) -> Vec<(i32, i64, String)> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.acked.iter().collect()
    }
}

/// Checks what one topic holds after the kill loop: offsets dense from 0 in
/// every partition (never reused, never skipped), every record one that was
/// sent (`was_sent`), whole and stored once, and every acknowledged record at
/// the offset it was acknowledged with.
fn check_after_kills(
    topic: &str,
    stored: &[(i32, i64, String)],
    acked: &[(i32, i64, String)],
    was_sent: impl Fn(&str) -> bool,
) {
    for p in 0..PARTITIONS {
        let offsets: Vec<i64> = stored.iter().filter(|s| s.0 == p).map(|s| s.1).collect();
        assert!(offsets.iter().enumerate().all(|(i, o)| *o == i as i64), "{topic}: partition {p} has gaps");
    }
    let mut seen = std::collections::HashSet::new();
    for (_, _, value) in stored {
        assert!(was_sent(value), "{topic}: a record nobody sent: {value:.40}");
        assert!(seen.insert(value.clone()), "{topic}: stored twice: {value:.40}");
    }
    let stored_set: std::collections::HashSet<&(i32, i64, String)> = stored.iter().collect();
    let missing: Vec<_> = acked.iter().filter(|a| !stored_set.contains(a)).collect();
    assert!(
        missing.is_empty(),
        "{topic}: {} acknowledged records lost or moved, e.g. {:?}",
        missing.len(),
        missing.first()
    );
}

/// kill -9 under load from three client libraries at once (librdkafka through
/// the `rdkafka` crate, kafka-python and confluent-kafka), 20 times in a row (`SLUICE_KILL_ROUNDS`
/// sets how many: `SLUICE_KILL_ROUNDS=100 cargo test --release --test
/// integration restart::repeated_kills`): every acknowledged record is present exactly once at the
/// offset it was acknowledged with, offsets are never reused, and
/// unacknowledged records are absent or present whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_kills_under_load_lose_no_acknowledged_record() {
    let rounds: usize = std::env::var("SLUICE_KILL_ROUNDS").map(|r| r.parse().expect("a number")).unwrap_or(20);
    let mut broker = Broker::start("killed-busy", 2, &[]);
    create_topic(&broker.bootstrap(), "busy", PARTITIONS, &[("segment.bytes", "1048576")]).await;
    create_topic(&broker.bootstrap(), "busy-py", PARTITIONS, &[("segment.bytes", "1048576")]).await;
    create_topic(&broker.bootstrap(), "busy-ck", PARTITIONS, &[("segment.bytes", "1048576")]).await;
    let mut acked: Vec<(i32, i64, String)> = Vec::new();
    let mut acked_py: Vec<(i32, i64, String)> = Vec::new();
    let mut acked_ck: Vec<(i32, i64, String)> = Vec::new();
    let mut sent: std::collections::HashSet<String> = std::collections::HashSet::new();
    for round in 0..rounds {
        let python = PythonProducer::start("kafka_python", &broker.bootstrap(), "busy-py", &format!("py-r{round}"));
        let confluent =
            PythonProducer::start("confluent_kafka", &broker.bootstrap(), "busy-ck", &format!("ck-r{round}"));
        python.wait_ready();
        confluent.wait_ready();
        let producer = kafka::producer(
            &broker.bootstrap(),
            &[("acks", "all"), ("linger.ms", "1"), ("message.timeout.ms", "3000")],
        );
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Vary when the plug is pulled: after 50 to 400 ms of production.
        let kill_at = std::time::Instant::now() + Duration::from_millis(50 + (round as u64 * 97) % 350);
        let mut i = 0usize;
        while std::time::Instant::now() < kill_at {
            let value = format!("r{round}-{i}-{}", "w".repeat(100));
            let record = FutureRecord::to("busy").key(&value).payload(&value).partition((i % 4) as i32);
            match producer.send_result(record) {
                Ok(delivery) => {
                    sent.insert(value.clone());
                    let got = got.clone();
                    tasks.push(tokio::spawn(async move {
                        if let Ok(Ok(d)) = delivery.await {
                            got.lock().unwrap().push((d.partition, d.offset, value));
                        }
                    }));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
            i += 1;
            if i.is_multiple_of(200) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let dir = broker.kill();
        acked_py.extend(python.kill());
        acked_ck.extend(confluent.kill());
        drop(producer);
        for t in tasks {
            let _ = t.await;
        }
        acked.extend(got.lock().unwrap().drain(..));
        broker = Broker::start_in(dir, 2, &[]);
    }
    assert!(acked.len() > 1000, "only {} records acknowledged to librdkafka", acked.len());
    assert!(acked_py.len() >= rounds, "only {} records acknowledged to kafka-python", acked_py.len());
    assert!(acked_ck.len() >= rounds, "only {} records acknowledged to confluent-kafka", acked_ck.len());
    let stored = consume_async(&broker.bootstrap(), "busy").await;
    check_after_kills("busy", &stored, &acked, |v| sent.contains(v));
    let stored_py = consume_async(&broker.bootstrap(), "busy-py").await;
    // A Python producer's values: `<tag>-r<round>-<i>-` and 100 times `pad`.
    let python_value = |tag: &'static str, pad: &'static str| {
        move |v: &str| {
            let mut parts = v.splitn(3, '-');
            parts.next() == Some(tag)
                && parts.next().is_some_and(|r| r.starts_with('r') && r[1..].parse::<usize>().is_ok_and(|r| r < rounds))
                && parts.next().is_some_and(|rest| {
                    rest.split_once('-').is_some_and(|(i, p)| i.parse::<usize>().is_ok() && p == pad.repeat(100))
                })
        }
    };
    check_after_kills("busy-py", &stored_py, &acked_py, python_value("py", "p"));
    let stored_ck = consume_async(&broker.bootstrap(), "busy-ck").await;
    check_after_kills("busy-ck", &stored_ck, &acked_ck, python_value("ck", "c"));
    eprintln!(
        "{rounds} kills: librdkafka {} acknowledged, {} stored; kafka-python {} acknowledged, {} stored; \
         confluent-kafka {} acknowledged, {} stored",
        acked.len(),
        stored.len(),
        acked_py.len(),
        stored_py.len(),
        acked_ck.len(),
        stored_ck.len()
    );
    broker.stop_with(libc::SIGINT);
}

/// Garbage written over the end of the active segment while the broker is
/// down (a torn write): it starts, cuts the log after the last valid batch and serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_tail_is_cut_and_the_log_continues() {
    let broker = Broker::start("torn-tail", 2, &[]);
    create_topic(&broker.bootstrap(), "torn", PARTITIONS, &[]).await;
    let acked = produce_values(&broker.bootstrap(), "torn", 0, 400).await;
    let dir = broker.kill();
    let log = dir.join("torn-1").join("00000000000000000000.log");
    let mut bytes = std::fs::read(&log).unwrap();
    // Half a batch of scribble after the last valid batch.
    let valid = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;
    bytes.truncate(valid);
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 90, 0xde, 0xad, 0xbe, 0xef]);
    std::fs::write(&log, &bytes).unwrap();
    let broker = Broker::start_in(dir, 2, &[]);
    let mut expected = acked.clone();
    expected.sort();
    assert_eq!(consume_async(&broker.bootstrap(), "torn").await, expected);
    let more = produce_values(&broker.bootstrap(), "torn", 400, 4).await;
    assert!(more.iter().all(|(_, offset, _)| *offset == 100), "{more:?}");
    broker.stop();
}
