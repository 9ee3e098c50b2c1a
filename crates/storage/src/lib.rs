//! Storage: each partition is a log of segments in Kafka's layout
//! (`<data-dir>/<topic>-<partition>/<20-digit base offset>.log|.index|.timeindex`),
//! written with O_DIRECT through glommio's DMA files and owned by exactly one shard.
//!
//! - [`segment`]: one segment file, its write cursor and its in-memory indexes.
//! - [`index`]: the `.index` / `.timeindex` entry layouts.
//! - [`log`]: a partition's log, one concern per file: the `Log` (open,
//!   close), appends, the writer task (group commit), the tail cache and
//!   reads, timestamps, retention, producer snapshots, crash recovery and
//!   recovery points, and the janitor that removes dropped files.
//! - [`cleaner`]: log compaction: the shard's cleaner, the key map, Kafka's
//!   rules for what a clean keeps, its I/O limit and the crash-safe swap.
//! - [`producer_state`]: each partition's table of producers (sequence numbers
//!   of their last five batches for dedup and ordering, open transactions, the
//!   aborted-transaction index), snapshotted with the log.
//! - [`file`]: small whole-file writes (index files, metadata) made durable,
//!   and the one checksummed format of the small state files.
//! - [`recovery`]: the batch-by-batch validity scan used after a crash.
//! - [`batch_cache`]: the shard's cache of batches read from disk, one memory
//!   budget for all its partitions, and their read-ahead under way.
//! - [`dma_bytes`]: disk reads handed out as `Bytes` without a copy, released
//!   on the shard that read them wherever they were last used.
//! - [`metrics`]: what a shard's logs count (I/O bytes, fdatasyncs, cache reads).

pub mod batch_cache;
pub mod cleaner;
pub mod dma_bytes;
pub mod fifo_lock;
pub mod file;
pub mod index;
pub mod log;
pub mod metrics;
pub mod producer_state;
pub mod quorum_log;
pub mod recovery;
pub mod segment;

pub use log::{AckLevel, AppendOutcome, Log, ReadOutcome};

/// Storage failures, mapped to Kafka error codes in `handlers::errors`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// A write or fsync failed; the partition takes no more writes (never retried).
    #[error("partition storage failed: {0}")]
    Failed(String),
    /// The requested offset is outside `[log_start_offset, log_end_offset]`.
    #[error("offset {offset} out of range [{start}, {end}]")]
    OffsetOutOfRange { offset: i64, start: i64, end: i64 },
    /// The partition is being closed or deleted.
    #[error("partition is closing")]
    Closing,
    /// The replica stopped leading the partition before the in-sync
    /// replicas confirmed an append (acks=all): the new leader decides
    /// whether its records stay.
    #[error("the replica no longer leads the partition")]
    NotLeader,
    /// A stored batch could not be read back intact.
    #[error("corrupt data in {0}")]
    Corrupt(String),
}

impl StorageError {
    pub fn io(context: &str, e: impl std::fmt::Display) -> StorageError {
        StorageError::Failed(format!("{context}: {e}"))
    }
}

/// `<base offset>` as Kafka names segment files: 20 digits, zero padded.
pub fn segment_file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn segment_names_are_kafkas() {
        assert_eq!(super::segment_file_stem(0), "00000000000000000000");
        assert_eq!(super::segment_file_stem(1234), "00000000000000001234");
    }
}
