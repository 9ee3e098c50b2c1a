//! Exactly-once with librdkafka: an idempotent producer whose connections are
//! cut mid-flight, a consume-transform-produce loop with transactional offset
//! commits and deliberate aborts, zombie fencing, and a broker killed in the
//! middle of a transaction. Operators' side: Kafka's `kafka-transactions.sh`
//! finding and aborting a hanging transaction (WriteTxnMarkers), and the
//! expiry of idle transactional ids and producer ids.

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kafka::{self, assigned, consume_to_end, consumer_config, produce, value, Record};
use common::{create_topic, producer_batch, Broker, Raw};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey,
    DescribeProducersRequest, DescribeProducersResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    EndTxnRequest, EndTxnResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId, InitProducerIdRequest,
    InitProducerIdResponse, ListTransactionsRequest, ListTransactionsResponse, OffsetFetchRequest, OffsetFetchResponse,
    ProducerId, TopicName, TransactionalId, TxnOffsetCommitRequest, TxnOffsetCommitResponse, WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Every record value of `topic` from the beginning to the end, read with
/// `isolation.level` = `isolation`, per partition in offset order.
fn read_all(bootstrap: &str, topic: &str, partitions: i32, isolation: &str) -> BTreeMap<i32, Vec<String>> {
    let mut config = consumer_config(bootstrap, "reader");
    config.set("isolation.level", isolation);
    let mut out: BTreeMap<i32, Vec<String>> = (0..partitions).map(|p| (p, Vec::new())).collect();
    for m in consume_to_end(&config, topic, partitions, TIMEOUT) {
        out.get_mut(&m.partition()).unwrap().push(value(&m));
    }
    out
}

fn transactional_producer(bootstrap: &str, id: &str, timeout_ms: u32) -> ThreadedProducer<DefaultProducerContext> {
    let timeout_ms = timeout_ms.to_string();
    let settings = [("transactional.id", id), ("transaction.timeout.ms", &timeout_ms), ("linger.ms", "1")];
    let producer: ThreadedProducer<DefaultProducerContext> =
        kafka::client_config(bootstrap, &settings).create().unwrap();
    producer.init_transactions(TIMEOUT).unwrap();
    producer
}

fn send(producer: &ThreadedProducer<DefaultProducerContext>, topic: &str, partition: i32, value: &str) {
    kafka::send(producer, BaseRecord::to(topic).payload(value).key("k").partition(partition));
}

/// A TCP proxy in front of the broker that can cut every open connection.
struct Proxy {
    port: u16,
    cutting: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
}

impl Proxy {
    fn start(listener: TcpListener, broker_port: u16) -> Proxy {
        let port = listener.local_addr().unwrap().port();
        let connections: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let kept = connections.clone();
        let accepted: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
        let count = accepted.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(("127.0.0.1", broker_port)) else { continue };
                kept.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pipe(client, server));
                std::thread::spawn(move || pipe(s2, c2));
            }
        });
        Proxy { port, cutting: Arc::new(AtomicBool::new(false)), connections, accepted }
    }

    /// Cuts every connection every `period` until [`stop_cutting`](Self::stop_cutting).
    fn cut_every(&self, period: Duration) {
        self.cutting.store(true, Ordering::SeqCst);
        let (cutting, connections) = (self.cutting.clone(), self.connections.clone());
        std::thread::spawn(move || loop {
            std::thread::sleep(period);
            if !cutting.load(Ordering::SeqCst) {
                return;
            }
            for c in connections.lock().unwrap().drain(..) {
                let _ = c.shutdown(Shutdown::Both);
            }
        });
    }

    fn stop_cutting(&self, period: Duration) {
        self.cutting.store(false, Ordering::SeqCst);
        std::thread::sleep(period * 2);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// Connections cut under an idempotent producer: retried requests whose
/// first attempt was written are deduplicated, so every record is stored
/// once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_survives_cut_connections() {
    // Clients learn the proxy's address from the broker's metadata, so every
    // connection, not only the bootstrap one, goes through it.
    let proxy_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let advertised = format!("127.0.0.1:{}", proxy_listener.local_addr().unwrap().port());
    let broker = Broker::start("txn-cut", 2, &["--advertised-listener", &advertised]);
    let proxy = Proxy::start(proxy_listener, broker.port);
    let bootstrap = format!("127.0.0.1:{}", proxy.port);
    create_topic(&bootstrap, "cut", 3, &[]).await;
    tokio::task::spawn_blocking(move || {
        let settings = [("enable.idempotence", "true"), ("linger.ms", "2"), ("message.timeout.ms", "60000")];
        let producer: ThreadedProducer<DefaultProducerContext> =
            kafka::client_config(&bootstrap, &settings).create().unwrap();
        proxy.cut_every(Duration::from_millis(150));
        // At least 30,000 records, and on until connections were cut a few
        // times (a fast machine sends 30,000 between two cuts).
        let (mut total, block, total_max) = (0, 3_000, 1_500_000);
        while total < 30_000 || (proxy.accepted.load(Ordering::SeqCst) < 6 && total < total_max) {
            for i in total..total + block {
                send(&producer, "cut", i % 3, &i.to_string());
            }
            total += block;
        }
        producer.flush(Duration::from_secs(60)).unwrap();
        proxy.stop_cutting(Duration::from_millis(150));
        let reconnects = proxy.accepted.load(Ordering::SeqCst);
        assert!(reconnects >= 5, "connections were cut while producing ({reconnects} connections, {total} records)");
        let stored = read_all(&bootstrap, "cut", 3, "read_committed");
        let mut seen = 0;
        for (p, values) in stored {
            let numbers: Vec<i32> = values.iter().map(|v| v.parse().unwrap()).collect();
            let expected: Vec<i32> = (0..total).filter(|i| i % 3 == p).collect();
            assert_eq!(numbers, expected, "partition {p}: every record once, in order");
            seen += numbers.len();
        }
        assert_eq!(seen, total as usize);
    })
    .await
    .unwrap();
    broker.stop();
}

/// Consume, transform, produce, with the input offsets committed in the same
/// transaction; every third transaction is aborted and its input read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_transform_produce_exactly_once() {
    let broker = Broker::start("txn-ctp", 2, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "in", 3, &[]).await;
    create_topic(&bootstrap, "out", 3, &[]).await;
    let total: usize = 3000;
    let input = (0..total).map(|i| Record::new(format!("v{i}")).key("k").partition((i % 3) as i32));
    produce(&kafka::producer(&bootstrap, &[]), "in", input).await;
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let consumer = assigned(
            consumer_config(&b, "ctp").set("isolation.level", "read_committed").set("auto.offset.reset", "earliest"),
            "in",
            0..3,
            Offset::Beginning,
        );
        let producer = transactional_producer(&b, "ctp-1", 60_000);
        let mut positions: HashMap<i32, i64> = (0..3).map(|p| (p, 0)).collect();
        let mut committed_inputs = 0;
        let mut aborted_values = Vec::new();
        let mut round = 0;
        let deadline = Instant::now() + Duration::from_secs(120);
        while committed_inputs < total {
            assert!(Instant::now() < deadline, "loop did not finish: {committed_inputs} of {total}");
            // A batch of input.
            let mut batch = Vec::new();
            let batch_deadline = Instant::now() + Duration::from_millis(300);
            while batch.len() < 200 && Instant::now() < batch_deadline {
                if let Some(m) = consumer.poll(Duration::from_millis(50)) {
                    let m = m.unwrap();
                    let value = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
                    batch.push((m.partition(), m.offset(), value));
                }
            }
            if batch.is_empty() {
                continue;
            }
            round += 1;
            let abort = round % 3 == 0;
            producer.begin_transaction().unwrap();
            let mut next = positions.clone();
            for (p, offset, value) in &batch {
                send(&producer, "out", *p, &format!("t-{value}"));
                next.insert(*p, offset + 1);
            }
            let mut offsets = TopicPartitionList::new();
            for (p, o) in &next {
                offsets.add_partition_offset("in", *p, Offset::Offset(*o)).unwrap();
            }
            producer.send_offsets_to_transaction(&offsets, &consumer.group_metadata().unwrap(), TIMEOUT).unwrap();
            if abort {
                // Written first, so that the aborted records are in the log for sure.
                producer.flush(TIMEOUT).unwrap();
                producer.abort_transaction(TIMEOUT).unwrap();
                aborted_values.extend(batch.iter().map(|(_, _, v)| format!("t-{v}")));
                // Read the aborted input again.
                for (p, o) in &positions {
                    consumer.seek("in", *p, Offset::Offset(*o), TIMEOUT).unwrap();
                }
            } else {
                producer.commit_transaction(TIMEOUT).unwrap();
                positions = next;
                committed_inputs += batch.len();
            }
        }
        assert!(!aborted_values.is_empty(), "some transactions were aborted");
        assert_eq!(committed_inputs, total);

        // read_committed: each input transformed exactly once, none of the aborted copies.
        let committed = read_all(&b, "out", 3, "read_committed");
        let mut values: Vec<String> = committed.values().flatten().cloned().collect();
        values.sort();
        let mut expected: Vec<String> = (0..total).map(|i| format!("t-v{i}")).collect();
        expected.sort();
        assert_eq!(values, expected, "read_committed sees every committed record once and nothing aborted");
        // read_uncommitted: the aborted copies too.
        let uncommitted = read_all(&b, "out", 3, "read_uncommitted");
        let all: usize = uncommitted.values().map(Vec::len).sum();
        assert_eq!(all, total + aborted_values.len());
        // The group's committed offsets are the ends of the input.
        let committed_offsets = consumer.committed(TIMEOUT).unwrap();
        for p in 0..3 {
            let e = committed_offsets.find_partition("in", p).unwrap();
            assert_eq!(e.offset(), Offset::Offset(total as i64 / 3), "partition {p}");
        }
    })
    .await
    .unwrap();
    broker.stop();
}

/// Two producers with one transactional id: the newer one fences the older,
/// whose open transaction is aborted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_producer_is_fenced() {
    let broker = Broker::start("txn-fence", 2, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "fence", 1, &[]).await;
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let old = transactional_producer(&b, "same-id", 60_000);
        old.begin_transaction().unwrap();
        send(&old, "fence", 0, "zombie");
        old.flush(TIMEOUT).unwrap();
        let new = transactional_producer(&b, "same-id", 60_000);
        let err = old.commit_transaction(TIMEOUT).expect_err("the older producer is fenced");
        assert!(format!("{err}").to_lowercase().contains("fenc"), "fenced: {err}");
        new.begin_transaction().unwrap();
        send(&new, "fence", 0, "current");
        new.commit_transaction(TIMEOUT).unwrap();
        let read = read_all(&b, "fence", 1, "read_committed");
        assert_eq!(read[&0], vec!["current".to_string()]);
        let all = read_all(&b, "fence", 1, "read_uncommitted");
        assert_eq!(all[&0], vec!["zombie".to_string(), "current".to_string()]);
    })
    .await
    .unwrap();
    broker.stop();
}

/// kill -9 in the middle of a transaction: after the restart the open
/// transaction times out and is aborted, committed ones stay, and
/// read_committed readers never see the open one's records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_open_at_a_crash_is_aborted() {
    let broker = Broker::start("txn-crash", 2, &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "crash", 2, &[]).await;
    let b = bootstrap.clone();
    let open = tokio::task::spawn_blocking(move || {
        let producer = transactional_producer(&b, "crashing", 4_000);
        producer.begin_transaction().unwrap();
        for i in 0..100 {
            send(&producer, "crash", i % 2, &format!("committed-{i}"));
        }
        producer.commit_transaction(TIMEOUT).unwrap();
        producer.begin_transaction().unwrap();
        for i in 0..100 {
            send(&producer, "crash", i % 2, &format!("open-{i}"));
        }
        producer.flush(TIMEOUT).unwrap();
        producer
    })
    .await
    .unwrap();
    let data_dir = broker.kill();
    drop(open);
    let broker = Broker::start_in(data_dir, 2, &[]);
    let b = broker.bootstrap();
    tokio::task::spawn_blocking(move || {
        // The open transaction blocks read_committed readers until its timeout aborts it.
        let committed = read_all(&b, "crash", 2, "read_committed");
        let values: Vec<&String> = committed.values().flatten().collect();
        assert_eq!(values.len(), 100, "only the committed transaction: {values:?}");
        assert!(values.iter().all(|v| v.starts_with("committed-")));
        // A new producer with the same id carries on.
        let producer = transactional_producer(&b, "crashing", 4_000);
        producer.begin_transaction().unwrap();
        send(&producer, "crash", 0, "after");
        producer.commit_transaction(TIMEOUT).unwrap();
        let committed = read_all(&b, "crash", 2, "read_committed");
        let values: Vec<&String> = committed.values().flatten().collect();
        assert_eq!(values.len(), 101);
        assert!(!values.iter().any(|v| v.starts_with("open-")));
        let all = read_all(&b, "crash", 2, "read_uncommitted");
        assert_eq!(all.values().map(Vec::len).sum::<usize>(), 201, "aborted records stay in the log");
    })
    .await
    .unwrap();
    broker.stop();
}

fn txn_id(id: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(id.to_string()))
}

/// The coordinator's checks and the operator APIs, at the protocol level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_checks_and_operator_views() {
    let broker = Broker::start("txn-raw", 2, &[]);
    create_topic(&broker.bootstrap(), "raw", 2, &[]).await;
    let mut raw = Raw::connect(&broker);
    let find: FindCoordinatorResponse = raw.call(
        ApiKey::FindCoordinator,
        3,
        &FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("t1")).with_key_type(1),
    );
    assert_eq!((find.error_code, find.port), (0, broker.port as i32));
    let init = |raw: &mut Raw, timeout_ms: i32| -> InitProducerIdResponse {
        raw.call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(txn_id("t1")))
                .with_transaction_timeout_ms(timeout_ms)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
    };
    assert_eq!(init(&mut raw, 0).error_code, 50, "INVALID_TRANSACTION_TIMEOUT");
    assert_eq!(init(&mut raw, 3_600_000).error_code, 50, "above transaction.max.timeout.ms");
    let first = init(&mut raw, 60_000);
    assert_eq!(first.error_code, 0);
    let (pid, epoch) = (first.producer_id.0, first.producer_epoch);
    // A batch for a partition not added to a transaction is refused.
    let batch = || producer_batch(pid, epoch, 0, &[b"a", b"b"], 1000, true);
    assert_eq!(raw.produce_transactional("t1", "raw", 0, batch()).0, 48, "INVALID_TXN_STATE");
    let end = |raw: &mut Raw, pid: i64, epoch: i16, commit: bool| -> i16 {
        let response: EndTxnResponse = raw.call(
            ApiKey::EndTxn,
            3,
            &EndTxnRequest::default()
                .with_transactional_id(txn_id("t1"))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_committed(commit),
        );
        response.error_code
    };
    assert_eq!(end(&mut raw, pid, epoch, true), 48, "nothing to end");
    let add = |raw: &mut Raw, topic: &str, epoch: i16| -> AddPartitionsToTxnResponse {
        raw.call(
            ApiKey::AddPartitionsToTxn,
            3,
            &AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(txn_id("t1"))
                .with_v3_and_below_producer_id(ProducerId(pid))
                .with_v3_and_below_producer_epoch(epoch)
                .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(vec![0])]),
        )
    };
    let code = |r: &AddPartitionsToTxnResponse| {
        r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
    };
    assert_eq!(code(&add(&mut raw, "nope", epoch)), 3, "UNKNOWN_TOPIC_OR_PARTITION");
    assert_eq!(code(&add(&mut raw, "raw", epoch + 1)), 90, "PRODUCER_FENCED");
    assert_eq!(code(&add(&mut raw, "raw", epoch)), 0);
    assert_eq!(raw.produce_transactional("t1", "raw", 0, batch()).0, 0);
    assert_eq!(raw.produce_transactional("t1", "raw", 1, batch()).0, 48, "partition 1 was not added");
    // ListOffsets: the latest offset is the high watermark, or the last stable offset for read_committed.
    let latest = |raw: &mut Raw, isolation: i8| -> i64 {
        let response: ListOffsetsResponse = raw.call(
            ApiKey::ListOffsets,
            5,
            &ListOffsetsRequest::default().with_isolation_level(isolation).with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("raw")))
                    .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-1)]),
            ]),
        );
        response.topics[0].partitions[0].offset
    };
    assert_eq!((latest(&mut raw, 0), latest(&mut raw, 1)), (2, 0));

    let described: DescribeTransactionsResponse = raw.call(
        ApiKey::DescribeTransactions,
        0,
        &DescribeTransactionsRequest::default().with_transactional_ids(vec![txn_id("t1"), txn_id("unknown")]),
    );
    let t = &described.transaction_states[0];
    assert_eq!((t.error_code, t.transaction_state.as_str(), t.producer_id.0), (0, "Ongoing", pid));
    assert_eq!(t.topics[0].partitions, vec![0]);
    assert_eq!(described.transaction_states[1].error_code, 105, "TRANSACTIONAL_ID_NOT_FOUND");
    let listed: ListTransactionsResponse = raw.call(
        ApiKey::ListTransactions,
        1,
        &ListTransactionsRequest::default()
            .with_state_filters(vec![StrBytes::from_static_str("Ongoing"), StrBytes::from_static_str("Bogus")])
            .with_duration_filter(-1),
    );
    assert_eq!(listed.transaction_states.len(), 1);
    assert_eq!(listed.unknown_state_filters, vec![StrBytes::from_static_str("Bogus")]);
    let producers: DescribeProducersResponse = raw.call(
        ApiKey::DescribeProducers,
        0,
        &DescribeProducersRequest::default().with_topics(vec![
            kafka_protocol::messages::describe_producers_request::TopicRequest::default()
                .with_name(TopicName(StrBytes::from_static_str("raw")))
                .with_partition_indexes(vec![0]),
        ]),
    );
    let active = &producers.topics[0].partitions[0].active_producers;
    assert_eq!(active.len(), 1);
    assert_eq!((active[0].producer_id.0, active[0].last_sequence, active[0].current_txn_start_offset), (pid, 1, 0));

    // A second InitProducerId fences the first producer and aborts its transaction.
    let second = init(&mut raw, 60_000);
    assert_eq!((second.error_code, second.producer_id.0), (0, pid));
    assert!(second.producer_epoch > epoch);
    assert_eq!(end(&mut raw, pid, epoch, true), 90, "the older producer is fenced");
    assert_eq!(raw.produce_transactional("t1", "raw", 0, batch()).0, 47, "INVALID_PRODUCER_EPOCH");
    let committed = tokio::task::spawn_blocking({
        let b = broker.bootstrap();
        move || read_all(&b, "raw", 2, "read_committed")
    })
    .await
    .unwrap();
    assert!(committed.values().all(Vec::is_empty), "the aborted records are not visible: {committed:?}");

    // Offsets committed in a transaction stay pending until its marker.
    let epoch = second.producer_epoch;
    let txn_commit = |raw: &mut Raw| -> TxnOffsetCommitResponse {
        raw.call(
            ApiKey::TxnOffsetCommit,
            3,
            &TxnOffsetCommitRequest::default()
                .with_transactional_id(txn_id("t1"))
                .with_group_id(GroupId(StrBytes::from_static_str("g1")))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_generation_id(-1)
                .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("raw")))
                    .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(42)])]),
        )
    };
    let refused = txn_commit(&mut raw);
    assert_eq!(refused.topics[0].partitions[0].error_code, 48, "the group was not added to the transaction");
    let added: AddOffsetsToTxnResponse = raw.call(
        ApiKey::AddOffsetsToTxn,
        3,
        &AddOffsetsToTxnRequest::default()
            .with_transactional_id(txn_id("t1"))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_group_id(GroupId(StrBytes::from_static_str("g1"))),
    );
    assert_eq!(added.error_code, 0);
    let commit = txn_commit(&mut raw);
    assert_eq!(commit.topics[0].partitions[0].error_code, 0);
    let fetch_offset = |raw: &mut Raw, require_stable: bool| -> (i16, i64) {
        let response: OffsetFetchResponse = raw.call(
            ApiKey::OffsetFetch,
            7,
            &OffsetFetchRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("g1")))
                .with_require_stable(require_stable)
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("raw")))
                    .with_partition_indexes(vec![0])])),
        );
        let p = &response.topics[0].partitions[0];
        (p.error_code, p.committed_offset)
    };
    assert_eq!(fetch_offset(&mut raw, true), (88, -1), "UNSTABLE_OFFSET_COMMIT while the transaction is open");
    assert_eq!(fetch_offset(&mut raw, false), (0, -1));
    assert_eq!(end(&mut raw, pid, epoch, true), 0);
    assert_eq!(fetch_offset(&mut raw, true), (0, 42));
    broker.stop();
}

/// A broker stopped between making a commit decision durable and writing
/// its markers (the journal says PrepareCommit, the partition still has the
/// transaction open) finishes the commit when it starts again, long before
/// the transaction's timeout could abort it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_commit_is_completed_after_restart() {
    let broker = Broker::start("txn-prepared", 2, &[]);
    create_topic(&broker.bootstrap(), "prep", 1, &[]).await;
    let mut raw = Raw::connect(&broker);
    let init: InitProducerIdResponse = raw.call(
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(txn_id("prep-id")))
            .with_transaction_timeout_ms(120_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    let (pid, epoch) = (init.producer_id.0, init.producer_epoch);
    let added: AddPartitionsToTxnResponse = raw.call(
        ApiKey::AddPartitionsToTxn,
        3,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(txn_id("prep-id"))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("prep")))
                .with_partitions(vec![0])]),
    );
    assert_eq!(added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code, 0);
    let batch = producer_batch(pid, epoch, 0, &[b"p0", b"p1", b"p2"], 1000, true);
    assert_eq!(raw.produce_transactional("prep-id", "prep", 0, batch).0, 0);
    drop(raw);
    let data_dir = broker.stop();

    // The state a crash right after the decision leaves: PrepareCommit in the journal.
    let dir = data_dir.join(format!("__transaction_state-{}", sluice::txn::txn_partition("prep-id")));
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            use sluice::group::store::{Change, GroupStore};
            let (store, state) = GroupStore::open(dir).await.unwrap();
            let mut txn = state.txns["prep-id"].clone();
            assert_eq!(txn.state, 1, "Ongoing before the decision");
            txn.state = 2;
            let change = Change::Txn { id: "prep-id".into(), state: txn };
            let mut after = state.clone();
            after.apply(&change);
            store.append(&[change], || after).await.unwrap();
            store.close().await;
        })
        .unwrap()
        .join()
        .unwrap();

    let broker = Broker::start_in(data_dir, 2, &[]);
    let b = broker.bootstrap();
    let committed = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let read = read_all(&b, "prep", 1, "read_committed");
        (read, started.elapsed())
    })
    .await
    .unwrap();
    assert_eq!(committed.0[&0], vec!["p0".to_string(), "p1".to_string(), "p2".to_string()]);
    assert!(committed.1 < Duration::from_secs(20), "completed by recovery, not by a timeout");
    let mut raw = Raw::connect(&broker);
    let described: DescribeTransactionsResponse = raw.call(
        ApiKey::DescribeTransactions,
        0,
        &DescribeTransactionsRequest::default().with_transactional_ids(vec![txn_id("prep-id")]),
    );
    assert_eq!(described.transaction_states[0].transaction_state.as_str(), "CompleteCommit");
    broker.stop();
}

/// InitProducerId v4: a producer id and epoch, for `transactional_id` (with
/// `timeout_ms`) or, with `None`, for an idempotent producer.
fn init_producer(raw: &mut Raw, transactional_id: Option<&str>, timeout_ms: i32) -> (i64, i16) {
    let response: InitProducerIdResponse = raw.call(
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(transactional_id.map(txn_id))
            .with_transaction_timeout_ms(timeout_ms)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!(response.error_code, 0, "InitProducerId {transactional_id:?}");
    (response.producer_id.0, response.producer_epoch)
}

/// AddPartitionsToTxn v3 of one partition: its error code.
fn add_partition(raw: &mut Raw, id: &str, (pid, epoch): (i64, i16), topic: &str, partition: i32) -> i16 {
    let response: AddPartitionsToTxnResponse = raw.call(
        ApiKey::AddPartitionsToTxn,
        3,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(txn_id(id))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![partition])]),
    );
    response.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

/// EndTxn v3: its error code.
fn end_txn(raw: &mut Raw, id: &str, (pid, epoch): (i64, i16), commit: bool) -> i16 {
    let response: EndTxnResponse = raw.call(
        ApiKey::EndTxn,
        3,
        &EndTxnRequest::default()
            .with_transactional_id(txn_id(id))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_committed(commit),
    );
    response.error_code
}

/// DescribeTransactions v0 of one id: (error code, state, producer id).
fn describe_txn(raw: &mut Raw, id: &str) -> (i16, String, i64) {
    let response: DescribeTransactionsResponse = raw.call(
        ApiKey::DescribeTransactions,
        0,
        &DescribeTransactionsRequest::default().with_transactional_ids(vec![txn_id(id)]),
    );
    let t = &response.transaction_states[0];
    (t.error_code, t.transaction_state.to_string(), t.producer_id.0)
}

/// DescribeProducers v0 of one partition: (producer id, current transaction start offset), by producer id.
fn active_producers(raw: &mut Raw, topic: &str, partition: i32) -> Vec<(i64, i64)> {
    let response: DescribeProducersResponse = raw.call(
        ApiKey::DescribeProducers,
        0,
        &DescribeProducersRequest::default().with_topics(vec![
            kafka_protocol::messages::describe_producers_request::TopicRequest::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partition_indexes(vec![partition]),
        ]),
    );
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, 0, "DescribeProducers {topic}-{partition}");
    let mut producers: Vec<(i64, i64)> =
        p.active_producers.iter().map(|s| (s.producer_id.0, s.current_txn_start_offset)).collect();
    producers.sort_unstable();
    producers
}

/// ListOffsets v5 latest of one partition: (high watermark, last stable offset).
fn watermarks(raw: &mut Raw, topic: &str, partition: i32) -> (i64, i64) {
    let mut latest = |isolation: i8| -> i64 {
        let response: ListOffsetsResponse = raw.call(
            ApiKey::ListOffsets,
            5,
            &ListOffsetsRequest::default().with_isolation_level(isolation).with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(partition)
                        .with_timestamp(-1)]),
            ]),
        );
        response.topics[0].partitions[0].offset
    };
    (latest(0), latest(1))
}

/// WriteTxnMarkers v1 of one marker: each (topic, partition) with its error code, in answer order.
fn write_markers(
    raw: &mut Raw,
    (pid, epoch): (i64, i16),
    commit: bool,
    partitions: &[(&str, i32)],
) -> Vec<(String, i32, i16)> {
    use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
    let topics = partitions
        .iter()
        .map(|(topic, p)| {
            WritableTxnMarkerTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partition_indexes(vec![*p])
        })
        .collect();
    let response: WriteTxnMarkersResponse = raw.call(
        ApiKey::WriteTxnMarkers,
        1,
        &WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_transaction_result(commit)
            .with_coordinator_epoch(0)
            .with_topics(topics)]),
    );
    assert_eq!(response.markers.len(), 1);
    assert_eq!(response.markers[0].producer_id.0, pid);
    let mut codes = Vec::new();
    for t in &response.markers[0].topics {
        for p in &t.partitions {
            codes.push((t.name.0.to_string(), p.partition_index, p.error_code));
        }
    }
    codes
}

/// Runs Kafka's `kafka-transactions.sh` (`org.apache.kafka.tools.TransactionsCommand`)
/// against `bootstrap` and returns its output; it must succeed.
fn kafka_transactions(bootstrap: &str, args: &[&str]) -> String {
    let classpath = common::clients::kafka_tools_classpath();
    let output = std::process::Command::new("java")
        .arg("-cp")
        .arg(classpath.trim())
        .arg("org.apache.kafka.tools.TransactionsCommand")
        .args(["--bootstrap-server", bootstrap])
        .args(args)
        .output()
        .expect("run java");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "kafka-transactions.sh {args:?} failed:\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The rows of a table `kafka-transactions.sh` printed, as words, without its header.
fn table_rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .filter(|r: &Vec<_>| !r.is_empty())
        .collect()
}

/// A hanging transaction, as Kafka's operations docs describe it: a
/// transactional batch in a partition whose coordinator does not know the
/// partition is in a transaction, so no marker will ever end it, and the
/// partition's last stable offset stays behind it. `kafka-transactions.sh`
/// finds it (`find-hanging`) and ends it (`abort`, which sends WriteTxnMarkers
/// to the partition's leader); then read_committed consumers get past it and
/// never see its records.
///
/// Sluice checks every transactional batch against its coordinator (KIP-890),
/// so a client cannot write one; it comes here the way one arises: a batch of
/// the producer landing after its coordinator completed the transaction (in
/// Kafka, a produce delayed in flight past the commit). The batch is written
/// into the partition's log while the broker is stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_transactions_sh_finds_and_aborts_a_hanging_transaction() {
    let broker = Broker::start("txn-hanging", 2, &[]);
    create_topic(&broker.bootstrap(), "hang", 1, &[]).await;
    let mut raw = Raw::connect(&broker);
    let old = init_producer(&mut raw, Some("hang-id"), 60_000);
    // A second InitProducerId bumps the epoch, so there is an older one to fence.
    let producer = init_producer(&mut raw, Some("hang-id"), 60_000);
    let (pid, epoch) = producer;
    assert_eq!((pid, epoch), (old.0, old.1 + 1));
    assert_eq!(add_partition(&mut raw, "hang-id", producer, "hang", 0), 0);
    let committed = producer_batch(pid, epoch, 0, &[b"c0", b"c1"], 1000, true);
    assert_eq!(raw.produce_transactional("hang-id", "hang", 0, committed), (0, 0));
    assert_eq!(end_txn(&mut raw, "hang-id", producer, true), 0, "commit marker at offset 2");
    drop(raw);
    let data_dir = broker.stop();

    // The late batch: the producer's next sequence, long ago by its timestamp.
    let partition_dir = data_dir.join("hang-0");
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            use sluice::storage::log::{AckLevel, Log};
            let metrics = std::rc::Rc::new(sluice::storage::metrics::IoMetrics::default());
            let config = sluice::config::TopicConfig::default();
            let log = Log::open(partition_dir, config, true, metrics, Default::default()).await.unwrap();
            let chunk = producer_batch(pid, epoch, 2, &[b"h0", b"h1"], 1000, true);
            let summaries = sluice::protocol::batch::validate_chunk(&chunk[..], 1 << 20).unwrap();
            assert_eq!(log.append(&chunk.freeze(), &summaries, AckLevel::Synced).await.unwrap().base_offset, 3);
            log.close().await.unwrap();
        })
        .unwrap()
        .join()
        .unwrap();

    let broker = Broker::start_in(data_dir, 2, &[]);
    let bootstrap = broker.bootstrap();
    let mut raw = Raw::connect(&broker);
    assert_eq!(raw.produce("hang", 0, common::record_batch(&[b"after"], 1000)), (0, 5));
    assert_eq!(watermarks(&mut raw, "hang", 0), (6, 3), "the open transaction holds the last stable offset at 3");
    assert_eq!(describe_txn(&mut raw, "hang-id"), (0, "CompleteCommit".to_string(), pid));
    assert_eq!(active_producers(&mut raw, "hang", 0), vec![(pid, 3)]);

    // WriteTxnMarkers checks each partition: an unknown one, and an older epoch than the partition's producer.
    let codes = write_markers(&mut raw, (pid, epoch - 1), false, &[("hang", 0), ("nope", 0)]);
    assert_eq!(
        codes,
        vec![("hang".into(), 0, 47), ("nope".into(), 0, 3)],
        "INVALID_PRODUCER_EPOCH, UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_eq!(watermarks(&mut raw, "hang", 0), (6, 3), "nothing written");

    let (pid_text, epoch_text) = (pid.to_string(), epoch.to_string());
    let (pid_text, epoch_text) = (pid_text.as_str(), epoch_text.as_str());
    tokio::task::block_in_place(|| {
        let listed = table_rows(&kafka_transactions(&bootstrap, &["list"]));
        assert!(listed.iter().any(|r| r[..] == ["hang-id", "0", pid_text, "CompleteCommit"]), "{listed:?}");
        let described = kafka_transactions(&bootstrap, &["describe", "--transactional-id", "hang-id"]);
        let row = &table_rows(&described)[0];
        assert_eq!(row[..5], ["0", "hang-id", pid_text, epoch_text, "CompleteCommit"], "{described}");
        let producers = kafka_transactions(&bootstrap, &["describe-producers", "--topic", "hang", "--partition", "0"]);
        let row = &table_rows(&producers)[0];
        // ProducerId ProducerEpoch LatestCoordinatorEpoch LastSequence LastTimestamp CurrentTransactionStartOffset
        assert_eq!(row[..], [pid_text, epoch_text, "0", "3", "1001", "3"], "{producers}");

        let hanging = table_rows(&kafka_transactions(&bootstrap, &["find-hanging", "--broker-id", "0"]));
        // Topic Partition ProducerId ProducerEpoch CoordinatorEpoch StartOffset LastTimestamp Duration(min)
        assert_eq!(hanging.len(), 1, "{hanging:?}");
        assert_eq!(hanging[0][..7], ["hang", "0", pid_text, epoch_text, "0", "3", "1001"], "{hanging:?}");

        kafka_transactions(&bootstrap, &["abort", "--topic", "hang", "--partition", "0", "--start-offset", "3"]);
        let hanging = table_rows(&kafka_transactions(&bootstrap, &["find-hanging", "--broker-id", "0"]));
        assert!(hanging.is_empty(), "{hanging:?}");
        let producers = kafka_transactions(&bootstrap, &["describe-producers", "--topic", "hang", "--partition", "0"]);
        assert_eq!(table_rows(&producers)[0][5], "None", "{producers}");
    });

    // The abort marker went at 6; the last stable offset is the high watermark again.
    assert_eq!(watermarks(&mut raw, "hang", 0), (7, 7));
    assert_eq!(active_producers(&mut raw, "hang", 0), vec![(pid, -1)]);
    let b = broker.bootstrap();
    let (committed, uncommitted) = tokio::task::spawn_blocking(move || {
        (read_all(&b, "hang", 1, "read_committed"), read_all(&b, "hang", 1, "read_uncommitted"))
    })
    .await
    .unwrap();
    assert_eq!(committed[&0], ["c0", "c1", "after"], "the aborted records are skipped");
    assert_eq!(uncommitted[&0], ["c0", "c1", "h0", "h1", "after"]);
    broker.stop();
}

/// `transactional.id.expiration.ms`: the coordinator forgets a transactional
/// id with nothing open once it has not changed for that long, durably; one
/// with a transaction open stays. The id then starts afresh with a new producer id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_transactional_ids_expire() {
    let dir = common::fresh_data_dir("txn-id-expiry");
    let properties = dir.with_extension("properties");
    std::fs::write(&properties, "transactional.id.expiration.ms=2000\n").unwrap();
    let broker = Broker::start_in(dir, 2, &["--config", properties.to_str().unwrap()]);
    create_topic(&broker.bootstrap(), "exp", 1, &[]).await;
    let mut raw = Raw::connect(&broker);
    let (idle_pid, _) = init_producer(&mut raw, Some("idle-id"), 60_000);
    let busy = init_producer(&mut raw, Some("busy-id"), 600_000);
    assert_eq!(add_partition(&mut raw, "busy-id", busy, "exp", 0), 0);
    assert_eq!(describe_txn(&mut raw, "idle-id"), (0, "Empty".to_string(), idle_pid));
    tokio::task::block_in_place(|| {
        common::wait_until("idle-id to expire", Duration::from_secs(20), || describe_txn(&mut raw, "idle-id").0 == 105);
    });
    assert_eq!(describe_txn(&mut raw, "busy-id"), (0, "Ongoing".to_string(), busy.0), "an open transaction stays");
    let listed: ListTransactionsResponse =
        raw.call(ApiKey::ListTransactions, 1, &ListTransactionsRequest::default().with_duration_filter(-1));
    let ids: Vec<&str> = listed.transaction_states.iter().map(|t| t.transactional_id.0.as_str()).collect();
    assert_eq!(ids, ["busy-id"]);
    drop(raw);

    // Forgotten for good: a restart with the default expiration (7 days) does not bring it back.
    let data_dir = broker.stop();
    let broker = Broker::start_in(data_dir, 2, &[]);
    let mut raw = Raw::connect(&broker);
    assert_eq!(describe_txn(&mut raw, "idle-id").0, 105, "TRANSACTIONAL_ID_NOT_FOUND");
    assert_eq!(describe_txn(&mut raw, "busy-id").1, "Ongoing");
    let (new_pid, epoch) = init_producer(&mut raw, Some("idle-id"), 60_000);
    assert!(new_pid != idle_pid && epoch == 0, "a new producer id: {new_pid} (was {idle_pid}), epoch {epoch}");
    broker.stop();
}

/// `producer.id.expiration.ms`: a partition forgets a producer whose last
/// batch or marker is that old, unless it has a transaction open there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_producers_are_forgotten_unless_a_transaction_is_open() {
    let dir = common::fresh_data_dir("producer-id-expiry");
    let properties = dir.with_extension("properties");
    std::fs::write(&properties, "producer.id.expiration.ms=2000\n").unwrap();
    let broker = Broker::start_in(dir, 2, &["--config", properties.to_str().unwrap()]);
    create_topic(&broker.bootstrap(), "pexp", 1, &[]).await;
    let mut raw = Raw::connect(&broker);
    let now_ms = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    // A transaction left open, its only batch long ago by its timestamp.
    let txn = init_producer(&mut raw, Some("pexp-id"), 600_000);
    assert_eq!(add_partition(&mut raw, "pexp-id", txn, "pexp", 0), 0);
    let batch = producer_batch(txn.0, txn.1, 0, &[b"t0"], 1000, true);
    assert_eq!(raw.produce_transactional("pexp-id", "pexp", 0, batch), (0, 0));
    let (idempotent, _) = init_producer(&mut raw, None, 60_000);
    let batch = common::idempotent_batch(idempotent, 0, 0, &[b"i0"], now_ms());
    assert_eq!(raw.produce("pexp", 0, batch), (0, 1));
    assert_eq!(active_producers(&mut raw, "pexp", 0), vec![(txn.0, 0), (idempotent, -1)]);

    tokio::task::block_in_place(|| {
        common::wait_until("the idempotent producer to be forgotten", Duration::from_secs(20), || {
            active_producers(&mut raw, "pexp", 0) == vec![(txn.0, 0)]
        });
    });
    // Its marker is the transactional producer's last activity: it is kept for
    // another expiration, then forgotten.
    assert_eq!(end_txn(&mut raw, "pexp-id", txn, true), 0);
    let committed = Instant::now();
    assert_eq!(active_producers(&mut raw, "pexp", 0), vec![(txn.0, -1)]);
    tokio::task::block_in_place(|| {
        common::wait_until("the transactional producer to be forgotten", Duration::from_secs(20), || {
            active_producers(&mut raw, "pexp", 0).is_empty()
        });
    });
    assert!(committed.elapsed() >= Duration::from_millis(1900), "kept for the expiration after its marker");
    broker.stop();
}

/// Produce at `version` of one transactional batch to one partition: its error code.
fn produce_at(raw: &mut Raw, version: i16, id: &str, topic: &str, partition: i32, batch: bytes::BytesMut) -> i16 {
    let request = common::produce_request(topic, partition, -1, batch).with_transactional_id(Some(txn_id(id)));
    let response: kafka_protocol::messages::ProduceResponse = raw.call(ApiKey::Produce, version, &request);
    response.responses[0].partition_responses[0].error_code
}

/// EndTxn v5: (error code, producer id, epoch) of the answer.
fn end_txn_v5(raw: &mut Raw, id: &str, (pid, epoch): (i64, i16), commit: bool) -> (i16, i64, i16) {
    let response: EndTxnResponse = raw.call(
        ApiKey::EndTxn,
        5,
        &EndTxnRequest::default()
            .with_transactional_id(txn_id(id))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_committed(commit),
    );
    (response.error_code, response.producer_id.0, response.producer_epoch)
}

/// DescribeTransactions v0 of one id: (state, epoch, partitions as `topic-n`).
fn describe_epoch(raw: &mut Raw, id: &str) -> (String, i16, Vec<String>) {
    let response: DescribeTransactionsResponse = raw.call(
        ApiKey::DescribeTransactions,
        0,
        &DescribeTransactionsRequest::default().with_transactional_ids(vec![txn_id(id)]),
    );
    let t = &response.transaction_states[0];
    assert_eq!(t.error_code, 0, "DescribeTransactions {id}");
    let partitions =
        t.topics.iter().flat_map(|topic| topic.partitions.iter().map(move |p| format!("{}-{p}", topic.topic.0)));
    (t.transaction_state.to_string(), t.producer_epoch, partitions.collect())
}

/// Transaction version 2 on the wire, at the level a new cluster finalizes:
/// Produce v12 adds its partition to the transaction (v11 still needs
/// AddPartitionsToTxn first), EndTxn v5 answers the bumped epoch the
/// markers carry and recognises its own retry, the old epoch is fenced, and
/// a classic EndTxn v3 at the same level keeps the epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_version_2_on_the_wire() {
    const INVALID_PRODUCER_EPOCH: i16 = 47;
    const INVALID_TXN_STATE: i16 = 48;
    let broker = Broker::start("txn-v2-wire", 2, &[]);
    create_topic(&broker.bootstrap(), "tv2w", 2, &[]).await;
    let mut raw = Raw::connect(&broker);
    let (pid, e0) = init_producer(&mut raw, Some("w2"), 60_000);

    let batch = |epoch: i16, seq: i32, values: &[&[u8]]| producer_batch(pid, epoch, seq, values, 1_000, true);
    assert_eq!(
        produce_at(&mut raw, 11, "w2", "tv2w", 1, batch(e0, 0, &[b"never"])),
        INVALID_TXN_STATE,
        "v11: not added"
    );
    assert_eq!(produce_at(&mut raw, 12, "w2", "tv2w", 0, batch(e0, 0, &[b"a", b"b"])), 0, "v12 adds the partition");
    let (state, epoch, partitions) = describe_epoch(&mut raw, "w2");
    assert_eq!((state.as_str(), epoch, partitions), ("Ongoing", e0, vec!["tv2w-0".to_string()]));

    assert_eq!(end_txn_v5(&mut raw, "w2", (pid, e0), true), (0, pid, e0 + 1), "commit bumps the epoch");
    assert_eq!(end_txn_v5(&mut raw, "w2", (pid, e0), true), (0, pid, e0 + 1), "a retry gets the same answer");
    assert_eq!(describe_epoch(&mut raw, "w2").0, "CompleteCommit");
    assert_eq!(end_txn_v5(&mut raw, "w2", (pid, e0 + 1), true).0, INVALID_TXN_STATE, "nothing open to commit");
    // The marker carried the new epoch: the old one is fenced at the partition and the coordinator.
    assert_eq!(produce_at(&mut raw, 12, "w2", "tv2w", 0, batch(e0, 2, &[b"zombie"])), INVALID_PRODUCER_EPOCH);
    assert_eq!(produce_at(&mut raw, 12, "w2", "tv2w", 0, batch(e0 + 1, 0, &[b"gone"])), 0);
    assert_eq!(end_txn_v5(&mut raw, "w2", (pid, e0 + 1), false), (0, pid, e0 + 2), "abort bumps too");
    assert_eq!(produce_at(&mut raw, 12, "w2", "tv2w", 1, batch(e0 + 2, 0, &[b"c"])), 0);
    assert_eq!(end_txn_v5(&mut raw, "w2", (pid, e0 + 2), true), (0, pid, e0 + 3));
    assert_eq!(watermarks(&mut raw, "tv2w", 0).0, watermarks(&mut raw, "tv2w", 0).1, "nothing left open");

    // A classic client at the same level: AddPartitionsToTxn, EndTxn v3, no bump.
    let classic = init_producer(&mut raw, Some("w1"), 60_000);
    assert_eq!(add_partition(&mut raw, "w1", classic, "tv2w", 1), 0);
    let classic_batch = producer_batch(classic.0, classic.1, 0, &[b"d"], 1_000, true);
    assert_eq!(produce_at(&mut raw, 9, "w1", "tv2w", 1, classic_batch), 0);
    assert_eq!(end_txn(&mut raw, "w1", classic, true), 0);
    assert_eq!(describe_epoch(&mut raw, "w1").1, classic.1, "EndTxn v3 keeps the epoch");
    drop(raw);

    let b = broker.bootstrap();
    let read = tokio::task::spawn_blocking(move || read_all(&b, "tv2w", 2, "read_committed")).await.unwrap();
    assert_eq!(read[&0], vec!["a".to_string(), "b".to_string()]);
    assert_eq!(read[&1], vec!["c".to_string(), "d".to_string()]);
    broker.stop();
}
