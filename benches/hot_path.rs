//! Microbenchmarks of the produce and fetch hot path:
//!
//! - batch validation (header checks and CRC-32C over the batch), in bytes/s;
//! - the request path's codecs: frame length and request header parse, Produce
//!   request body decode, and the zero-copy Fetch response encoder;
//! - the sparse offset index lookup of a full segment;
//! - segment appends through O_DIRECT (glommio `DmaFile`, and the partition
//!   `Log` with acks=1 and acks=all) on a glommio executor;
//! - a consumer's sequential 1 MiB reads of a 64 MiB log: from disk (DMA
//!   reads with read-ahead, handed out without a copy), and again from the
//!   shard's batch cache;
//! - a cross-shard round trip on a glommio channel mesh between two executors.
//!
//! Numbers, not tests: run with `cargo bench --bench hot_path` (add
//! `-- --quick` for a short run). Disk benchmarks write under
//! `$SLUICE_BENCH_DIR` (default: the system temp directory); put it on the
//! device under test, since on tmpfs glommio silently turns O_DIRECT off.

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::io::DmaFile;
use glommio::{LocalExecutor, LocalExecutorBuilder, Placement};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestHeader, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use sluice::config::TopicConfig;
use sluice::constants::{FRAME_BYTES_MAX_DEFAULT, IO_MEMORY_BYTES_PER_SHARD};
use sluice::protocol::batch::{self, validate_chunk};
use sluice::protocol::builder::BatchBuilder;
use sluice::protocol::fetch_response::{FetchPartitionOut, FetchResponseOut, FetchTopicOut};
use sluice::protocol::frame::{decode_body, frame_length, parse_request};
use sluice::storage::batch_cache::BatchCache;
use sluice::storage::index::OffsetIndex;
use sluice::storage::{AckLevel, Log};

/// Largest batch `validate_chunk` accepts in these benchmarks.
const BATCH_BYTES_MAX: usize = 16 << 20;
/// Produce request version decoded (flexible, the Java client 4.x default range).
const PRODUCE_VERSION: i16 = 9;
/// Partitions in the benchmarked Produce and Fetch messages.
const PARTITIONS_PER_REQUEST: i32 = 16;
/// Bytes of one sequential O_DIRECT write in the raw `DmaFile` benchmark.
const DMA_WRITE_BYTES: usize = 1 << 20;
/// A benchmark file is started again once it reaches this size, bounding disk use.
const DMA_FILE_BYTES_MAX: u64 = 1 << 30;
/// Segment size of the benchmarked logs: rolls happen, disk use stays bounded per sample.
const BENCH_SEGMENT_BYTES: u64 = 64 << 20;
/// Bytes of the log the read benchmarks read through.
const READ_LOG_BYTES: usize = 64 << 20;
/// What one read asks for (a consumer's `max.partition.fetch.bytes`).
const READ_BYTES: usize = 1 << 20;
/// Entries of the benchmarked offset index: a 1 GiB segment indexed every 4 KiB.
const INDEX_ENTRIES: u32 = 262_144;

fn batch(records: usize, value_bytes: usize) -> Bytes {
    let value = Bytes::from(vec![b'x'; value_bytes]);
    let batch = (0..records)
        .fold(BatchBuilder::new(), |batch, i| batch.record(None, Some(value.clone()), 1_700_000_000_000 + i as i64));
    batch.build().expect("a batch of bench records").freeze()
}

fn bench_dir(name: &str) -> PathBuf {
    let root = std::env::var_os("SLUICE_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = root.join(format!("sluice-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

fn validate(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate_chunk");
    for (records, value_bytes) in [(1, 1024), (16, 1024), (1000, 100)] {
        let chunk = batch(records, value_bytes);
        group.throughput(Throughput::Bytes(chunk.len() as u64));
        group.bench_function(format!("{records}x{value_bytes}B"), |b| {
            b.iter(|| validate_chunk(std::hint::black_box(&chunk), BATCH_BYTES_MAX).unwrap())
        });
    }
    group.finish();
}

/// A whole Produce request frame body (header v2 and body), as a client sends it
/// after the 4-byte length: `PARTITIONS_PER_REQUEST` partitions of 16 x 1 KiB records.
fn produce_frame() -> Bytes {
    let chunk = batch(16, 1024);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(PRODUCE_VERSION)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("bench-producer")));
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![
        TopicProduceData::default().with_name(TopicName(StrBytes::from_static_str("bench"))).with_partition_data(
            (0..PARTITIONS_PER_REQUEST)
                .map(|p| PartitionProduceData::default().with_index(p).with_records(Some(chunk.clone())))
                .collect(),
        ),
    ]);
    let mut buf = BytesMut::new();
    header.encode(&mut buf, ApiKey::Produce.request_header_version(PRODUCE_VERSION)).unwrap();
    request.encode(&mut buf, PRODUCE_VERSION).unwrap();
    buf.freeze()
}

fn codec(c: &mut Criterion) {
    let frame = produce_frame();
    let mut prefix = BytesMut::with_capacity(4);
    prefix.put_i32(frame.len() as i32);
    let prefix: [u8; 4] = prefix[..].try_into().unwrap();

    let mut group = c.benchmark_group("codec");
    group.bench_function("frame_length_and_request_header_parse", |b| {
        b.iter(|| {
            let length = frame_length(std::hint::black_box(prefix), FRAME_BYTES_MAX_DEFAULT).unwrap();
            let request = parse_request(std::hint::black_box(frame.clone())).unwrap();
            assert_eq!(length, frame.len());
            request
        })
    });
    let body = parse_request(frame.clone()).unwrap().body;
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function(format!("produce_v{PRODUCE_VERSION}_decode_{PARTITIONS_PER_REQUEST}_partitions"), |b| {
        b.iter(|| {
            let mut body = std::hint::black_box(body.clone());
            decode_body::<ProduceRequest>(ApiKey::Produce, PRODUCE_VERSION, &mut body).unwrap()
        })
    });

    let chunk = batch(16, 1024);
    let response = FetchResponseOut {
        topics: vec![FetchTopicOut {
            name: "bench".into(),
            partitions: (0..PARTITIONS_PER_REQUEST)
                .map(|p| FetchPartitionOut { partition_index: p, records: vec![chunk.clone()], ..Default::default() })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    group.throughput(Throughput::Bytes(chunk.len() as u64 * PARTITIONS_PER_REQUEST as u64));
    group.bench_function(format!("fetch_response_encode_{PARTITIONS_PER_REQUEST}_partitions"), |b| {
        b.iter(|| std::hint::black_box(&response).encode(16, 7))
    });
    group.finish();
}

fn index_lookup(c: &mut Criterion) {
    let mut index = OffsetIndex::default();
    for i in 1..=INDEX_ENTRIES {
        // One entry every 4 KiB of 4-record batches.
        index.append(i * 4, i * 4096);
    }
    let offset_max = INDEX_ENTRIES * 4 + 3;
    c.bench_function(&format!("offset_index_lookup_{INDEX_ENTRIES}_entries"), |b| {
        let mut x: u32 = 0x9e37_79b9;
        b.iter(|| {
            // xorshift: lookups land all over the index, as consumers' offsets do.
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            index.lookup(std::hint::black_box(x % offset_max))
        })
    });
}

fn executor() -> LocalExecutor {
    LocalExecutorBuilder::new(Placement::Unbound)
        .name("bench-shard")
        .io_memory(IO_MEMORY_BYTES_PER_SHARD)
        .make()
        .expect("glommio executor (io_uring and RLIMIT_MEMLOCK, see tuning/README.md)")
}

fn dma_write(c: &mut Criterion) {
    let ex = executor();
    let dir = bench_dir("dma");
    let path = dir.join("seq.bin");
    let mut group = c.benchmark_group("dma_file");
    group.throughput(Throughput::Bytes(DMA_WRITE_BYTES as u64));
    group.bench_function("sequential_write_1MiB", |b| {
        b.iter_custom(|iters| {
            ex.run(async {
                let _ = std::fs::remove_file(&path);
                let file = DmaFile::create(&path).await.expect("create O_DIRECT file");
                let mut position = 0u64;
                let start = Instant::now();
                for _ in 0..iters {
                    if position >= DMA_FILE_BYTES_MAX {
                        file.truncate(0).await.expect("truncate");
                        position = 0;
                    }
                    let mut buf = file.alloc_dma_buffer(DMA_WRITE_BYTES);
                    buf.as_bytes_mut().fill(b'x');
                    file.write_at(buf, position).await.expect("O_DIRECT write");
                    position += DMA_WRITE_BYTES as u64;
                }
                file.fdatasync().await.expect("fdatasync");
                let elapsed = start.elapsed();
                file.close().await.expect("close");
                elapsed
            })
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

fn log_append(c: &mut Criterion) {
    let ex = executor();
    let dir = bench_dir("log");
    let chunk = batch(16, 1024);
    let summaries = validate_chunk(&chunk, BATCH_BYTES_MAX).unwrap();
    let config = TopicConfig { segment_bytes: BENCH_SEGMENT_BYTES, ..TopicConfig::default() };
    let mut group = c.benchmark_group("log_append_16x1KiB");
    group.throughput(Throughput::Bytes(chunk.len() as u64));
    for (name, acks) in [("acks_1_written", AckLevel::Written), ("acks_all_fdatasync", AckLevel::Synced)] {
        if acks == AckLevel::Synced {
            group.sample_size(10).measurement_time(Duration::from_secs(5));
        }
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let partition = dir.join(format!("{name}-0"));
                let _ = std::fs::remove_dir_all(&partition);
                ex.run(async {
                    let log =
                        Log::open(partition.clone(), config.clone(), true, Default::default(), Default::default())
                            .await
                            .expect("open log");
                    let start = Instant::now();
                    for _ in 0..iters {
                        log.append(&chunk, &summaries, acks).await.expect("append");
                    }
                    let elapsed = start.elapsed();
                    log.close().await.expect("close log");
                    elapsed
                })
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reads `log` from its start to its high watermark, `READ_BYTES` at a time, as a consumer does.
async fn read_through(log: &Log) -> usize {
    let end = log.high_watermark();
    let (mut offset, mut bytes) = (0, 0);
    while offset < end {
        let read = log.read(offset, READ_BYTES, false).await.expect("read");
        for chunk in &read.chunks {
            bytes += chunk.len();
            if let Some((_, last)) = batch::headers(chunk).last() {
                offset = last.last_offset() + 1;
            }
        }
    }
    bytes
}

fn log_read(c: &mut Criterion) {
    let ex = executor();
    let dir = bench_dir("read");
    let partition = dir.join("read-0");
    let chunk = batch(16, 1024);
    let summaries = validate_chunk(&chunk, BATCH_BYTES_MAX).unwrap();
    let config = TopicConfig { segment_bytes: BENCH_SEGMENT_BYTES, ..TopicConfig::default() };
    let open = |cache: Rc<BatchCache>| {
        let (partition, config) = (partition.clone(), config.clone());
        async move { Log::open(partition, config, true, Default::default(), cache).await.expect("open log") }
    };
    ex.run(async {
        let _ = std::fs::remove_dir_all(&partition);
        let log = open(Rc::default()).await;
        let mut written = 0;
        while written < READ_LOG_BYTES {
            log.append(&chunk, &summaries, AckLevel::Written).await.expect("append");
            written += chunk.len();
        }
        log.close().await.expect("close log");
    });
    let mut group = c.benchmark_group("log_read_1MiB_reads");
    group.throughput(Throughput::Bytes(READ_LOG_BYTES as u64)).sample_size(10);
    for (name, warm) in [("from_disk_with_read_ahead", false), ("from_the_batch_cache", true)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                ex.run(async {
                    let mut elapsed = Duration::ZERO;
                    for _ in 0..iters {
                        // Reopened: nothing in the tail cache, a batch cache of its own.
                        let log = open(Rc::default()).await;
                        if warm {
                            read_through(&log).await;
                        }
                        let start = Instant::now();
                        std::hint::black_box(read_through(&log).await);
                        elapsed += start.elapsed();
                        log.close().await.expect("close log");
                    }
                    elapsed
                })
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// What the benchmark thread asks the pinging shard: round trips to make.
type Rounds = u64;

fn mesh_round_trip(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let placement = |shard: usize| if cores >= 2 { Placement::Fixed(shard) } else { Placement::Unbound };
    let mesh = MeshBuilder::<u64, _>::full(2, sluice::constants::MESH_CHANNEL_DEPTH);
    let (rounds_tx, rounds_rx) = mpsc::channel::<Rounds>();
    let (elapsed_tx, elapsed_rx) = mpsc::channel::<Duration>();

    let ping_mesh = mesh.clone();
    let ping = LocalExecutorBuilder::new(placement(0))
        .name("bench-shard-0")
        .spawn(move || async move {
            let (senders, receivers) = ping_mesh.join().await.expect("join mesh");
            let peer = 1 - senders.peer_id();
            // Blocking here is fine: this executor runs nothing else.
            while let Ok(rounds) = rounds_rx.recv() {
                let start = Instant::now();
                for i in 0..rounds {
                    senders.send_to(peer, i).await.expect("send ping");
                    let pong = receivers.recv_from(peer).await.expect("receive pong").expect("peer alive");
                    assert_eq!(pong, i, "pongs come back in order");
                }
                elapsed_tx.send(start.elapsed()).expect("benchmark thread alive");
            }
            senders.close();
        })
        .expect("spawn ping shard");
    let pong = LocalExecutorBuilder::new(placement(1))
        .name("bench-shard-1")
        .spawn(move || async move {
            let (senders, receivers) = mesh.join().await.expect("join mesh");
            let peer = 1 - senders.peer_id();
            while let Ok(Some(ping)) = receivers.recv_from(peer).await {
                if senders.send_to(peer, ping).await.is_err() {
                    break;
                }
            }
        })
        .expect("spawn pong shard");

    c.bench_function("mesh_round_trip_2_shards", |b| {
        b.iter_custom(|iters| {
            rounds_tx.send(iters).expect("ping shard alive");
            elapsed_rx.recv().expect("ping shard answers")
        })
    });
    drop(rounds_tx);
    ping.join().expect("ping shard");
    pong.join().expect("pong shard");
}

criterion_group!(benches, validate, codec, index_lookup, dma_write, log_append, log_read, mesh_round_trip);
criterion_main!(benches);
