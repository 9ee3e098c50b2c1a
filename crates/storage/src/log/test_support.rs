//! Helpers shared by the log's unit tests.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::{AckLevel, AppendOutcome, Log};
use sluice_core::config::TopicConfig;
use sluice_protocol::batch::{self, test_support::batch, validate_chunk, BatchHeader};

/// Runs `f` on a fresh glommio executor (with its blocking thread).
pub(super) fn run<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::default().spawn(f).unwrap().join().unwrap();
}

/// An empty directory for one test.
pub(super) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-log-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub(super) async fn open(dir: &Path, config: TopicConfig, clean: bool) -> Rc<Log> {
    Log::open(dir.to_path_buf(), config, clean, Rc::default(), Rc::default()).await.unwrap()
}

/// 8 KiB segments, an index entry every 256 bytes.
pub(super) fn small_config() -> TopicConfig {
    TopicConfig { segment_bytes: 8192, index_interval_bytes: 256, ..TopicConfig::default() }
}

/// Appends one batch of `records` records stamped from `timestamp`, acks=all.
pub(super) async fn append(log: &Log, records: i32, timestamp: i64) -> AppendOutcome {
    let chunk = batch(timestamp, records);
    let summaries = validate_chunk(&chunk, 1 << 20).unwrap();
    log.append(&bytes::Bytes::copy_from_slice(&chunk), &summaries, AckLevel::Synced).await.unwrap()
}

/// Every offset of the log reads back as the batch holding it.
pub(super) async fn check_reads(log: &Log, end: i64) {
    for offset in 0..end {
        let read = log.read(offset, 1 << 20, false).await.unwrap();
        let first = read.chunks.first().unwrap_or_else(|| panic!("no data at {offset}"));
        let header = BatchHeader::parse(first).unwrap();
        assert!(header.base_offset <= offset && offset <= header.last_offset(), "offset {offset}");
        assert!(batch::crc_matches(first, &header));
    }
}

/// Segment files (`.log`) in `dir`.
pub(super) fn log_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
        .count()
}

/// A record for [`keyed_batch`]: key and value, `None` for null.
pub(crate) type TestRecord = (Option<Vec<u8>>, Option<Vec<u8>>);

/// The producer fields of a test batch: id, epoch, base sequence, transactional.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TestProducer {
    pub id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
    pub transactional: bool,
}

fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// An uncompressed batch of `records`, timestamps `timestamp + i`.
pub(crate) fn keyed_batch(records: &[TestRecord], timestamp: i64, producer: Option<TestProducer>) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, (key, value)) in records.iter().enumerate() {
        let mut r = vec![0u8];
        put_varlong(&mut r, i as i64);
        put_varlong(&mut r, i as i64);
        for field in [key, value] {
            match field {
                Some(bytes) => {
                    put_varlong(&mut r, bytes.len() as i64);
                    r.extend_from_slice(bytes);
                }
                None => put_varlong(&mut r, -1),
            }
        }
        put_varlong(&mut r, 0);
        put_varlong(&mut body, r.len() as i64);
        body.extend_from_slice(&r);
    }
    let count = records.len() as i32;
    let mut b = vec![0u8; sluice_core::constants::BATCH_HEADER_BYTES];
    b.extend_from_slice(&body);
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    b[12..16].copy_from_slice(&(-1i32).to_be_bytes());
    b[16] = 2;
    let attributes: i16 = if producer.is_some_and(|p| p.transactional) { 0x10 } else { 0 };
    b[21..23].copy_from_slice(&attributes.to_be_bytes());
    b[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    b[27..35].copy_from_slice(&timestamp.to_be_bytes());
    b[35..43].copy_from_slice(&(timestamp + count as i64 - 1).to_be_bytes());
    let (id, epoch, seq) = producer.map_or((-1, -1, -1), |p| (p.id, p.epoch, p.base_sequence));
    b[43..51].copy_from_slice(&id.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&seq.to_be_bytes());
    b[57..61].copy_from_slice(&count.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Appends a chunk of batches, acks=all.
pub(crate) async fn append_chunk(log: &Log, chunk: &[u8]) -> AppendOutcome {
    let summaries = validate_chunk(chunk, 1 << 20).unwrap();
    log.append(&bytes::Bytes::copy_from_slice(chunk), &summaries, AckLevel::Synced).await.unwrap()
}
