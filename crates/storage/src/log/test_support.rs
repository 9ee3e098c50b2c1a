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
    Log::open(dir.to_path_buf(), config, clean, Rc::default()).await.unwrap()
}

/// 8 KiB segments, an index entry every 256 bytes.
pub(super) fn small_config() -> TopicConfig {
    TopicConfig { segment_bytes: 8192, index_interval_bytes: 256, ..TopicConfig::default() }
}

/// Appends one batch of `records` records stamped from `timestamp`, acks=all.
pub(super) async fn append(log: &Log, records: i32, timestamp: i64) -> AppendOutcome {
    let chunk = batch(timestamp, records);
    let summaries = validate_chunk(&chunk, 1 << 20).unwrap();
    log.append(&chunk, &summaries, AckLevel::Synced).await.unwrap()
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
