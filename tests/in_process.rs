//! Two brokers in one process, each with its own shards, mesh, stop request
//! and connection count (its `Lifecycle`): nothing of one broker is shared
//! with the other, and stopping one leaves the other serving.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use common::kafka::{self, consume_to_end, consumer_config, produce, Record};
use common::{create_topic, wait_until};
use sluice::config::{BrokerConfig, ServeArgs};
use sluice::shard::lifecycle::Lifecycle;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    serve: ServeArgs,
}

const SHARDS: usize = 2;

/// A broker on its own threads in this process; `address` once every shard listens.
struct InProcess {
    lifecycle: Arc<Lifecycle>,
    thread: std::thread::JoinHandle<Result<(), String>>,
}

impl InProcess {
    fn start(data_dir: &Path) -> InProcess {
        let data_dir = data_dir.to_str().unwrap();
        let shards = SHARDS.to_string();
        let args = Args::parse_from([
            "sluice",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "none",
            "--schema-registry-listen",
            "none",
            "--data-dir",
            data_dir,
            "--shards",
            &shards,
        ]);
        let config = BrokerConfig::resolve(&args.serve).expect("a valid config");
        let lifecycle = Arc::new(Lifecycle::default());
        let serving = lifecycle.clone();
        let thread = std::thread::spawn(move || sluice::broker::serve(config, serving));
        let started = Instant::now();
        while lifecycle.listening_shards() < SHARDS {
            assert!(!thread.is_finished(), "broker stopped while starting");
            assert!(started.elapsed() < Duration::from_secs(60), "broker not listening within 60 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        InProcess { lifecycle, thread }
    }

    fn bootstrap(&self) -> String {
        self.lifecycle.address().expect("listening").to_string()
    }

    fn stop(self) {
        self.lifecycle.stop();
        self.thread.join().expect("broker thread").expect("broker stopped cleanly");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_brokers_in_one_process_are_independent() {
    let root = common::fresh_data_dir("in-process");
    let a = InProcess::start(&root.join("a"));
    let b = InProcess::start(&root.join("b"));
    let (bootstrap_a, bootstrap_b) = (a.bootstrap(), b.bootstrap());
    assert_ne!(bootstrap_a, bootstrap_b);

    create_topic(&bootstrap_a, "only-on-a", 4, &[]).await;
    create_topic(&bootstrap_b, "only-on-b", 4, &[]).await;
    let producer_a = kafka::producer(&bootstrap_a, &[("acks", "all")]);
    let producer_b = kafka::producer(&bootstrap_b, &[("acks", "all")]);
    produce(&producer_a, "only-on-a", (0..200).map(|i| Record::new(format!("a-{i}")))).await;
    produce(&producer_b, "only-on-b", (0..300).map(|i| Record::new(format!("b-{i}")))).await;

    let read_a = consume_to_end(&consumer_config(&bootstrap_a, "g"), "only-on-a", 4, Duration::from_secs(30));
    let read_b = consume_to_end(&consumer_config(&bootstrap_b, "g"), "only-on-b", 4, Duration::from_secs(30));
    assert_eq!(read_a.len(), 200);
    assert_eq!(read_b.len(), 300);
    assert!(read_a.iter().all(|m| kafka::value(m).starts_with("a-")));
    assert!(read_b.iter().all(|m| kafka::value(m).starts_with("b-")));

    // Each catalog holds its own topic only.
    let admin_b = kafka::admin(&bootstrap_b);
    let metadata = admin_b.inner().fetch_metadata(None, Duration::from_secs(10)).expect("metadata");
    let names: Vec<&str> = metadata.topics().iter().map(|t| t.name()).collect();
    assert_eq!(names, vec!["only-on-b"], "broker b knows only its own topic");

    // Stopping a leaves b serving.
    a.stop();
    produce(&producer_b, "only-on-b", (300..310).map(|i| Record::new(format!("b-{i}")))).await;
    let read_b = consume_to_end(&consumer_config(&bootstrap_b, "g2"), "only-on-b", 4, Duration::from_secs(30));
    assert_eq!(read_b.len(), 310);
    wait_until("a's port closed", Duration::from_secs(10), || std::net::TcpStream::connect(&bootstrap_a).is_err());
    b.stop();
}
