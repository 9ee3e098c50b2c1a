//! Microbenchmarks of the produce and fetch hot path: batch validation
//! (header checks and CRC-32C over the batch) and the fetch response encoder.
//! Numbers, not tests: run with `cargo bench`.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use sluice::protocol::batch::validate_chunk;
use sluice::protocol::fetch_response::{FetchPartitionOut, FetchResponseOut, FetchTopicOut};

fn batch(records: usize, value_bytes: usize) -> Bytes {
    let value = Bytes::from(vec![b'x'; value_bytes]);
    let records: Vec<Record> = (0..records)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: 1_700_000_000_000 + i as i64,
            key: None,
            value: Some(value.clone()),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression: Compression::None })
        .unwrap();
    buf.freeze()
}

fn validate(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate_chunk");
    for (records, value_bytes) in [(1, 1024), (16, 1024), (1000, 100)] {
        let chunk = batch(records, value_bytes);
        group.throughput(Throughput::Bytes(chunk.len() as u64));
        group.bench_function(format!("{records}x{value_bytes}B"), |b| {
            b.iter(|| validate_chunk(std::hint::black_box(&chunk), 16 << 20).unwrap())
        });
    }
    group.finish();
}

fn fetch_encode(c: &mut Criterion) {
    let chunk = batch(16, 1024);
    let response = FetchResponseOut {
        topics: vec![FetchTopicOut {
            name: "bench".into(),
            partitions: (0..16)
                .map(|p| FetchPartitionOut { partition_index: p, records: vec![chunk.clone()], ..Default::default() })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    c.bench_function("fetch_response_encode_16_partitions", |b| {
        b.iter(|| std::hint::black_box(&response).encode(16, 7))
    });
}

criterion_group!(benches, validate, fetch_encode);
criterion_main!(benches);
