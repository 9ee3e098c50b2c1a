//! What one shard's partition logs count: bytes through O_DIRECT, fdatasyncs
//! and how many appends each one covers, and where reads were served from.
//! One `IoMetrics` per shard, shared by its logs (see `sluice_core::metrics`).

use sluice_core::metrics::{Counter, Histogram};

#[derive(Debug, Default)]
pub struct IoMetrics {
    /// Bytes written to segment files with O_DIRECT (whole aligned blocks).
    pub write_bytes: Counter,
    /// Bytes read from segment files with O_DIRECT.
    pub read_bytes: Counter,
    /// fdatasync latency of segment files, in microseconds.
    pub sync_us: Histogram,
    /// O_DIRECT writes of segment files (one per run of appends), in microseconds.
    pub write_us: Histogram,
    /// Appends acknowledged by one fdatasync (group commit).
    pub sync_batch_appends: Histogram,
    /// Reads served from a partition's tail cache.
    pub cache_reads: Counter,
    /// Reads that went to disk.
    pub disk_reads: Counter,
    /// Reads served from the shard's batch cache.
    pub batch_cache_reads: Counter,
    /// Disk reads started ahead of a sequential reader.
    pub read_ahead_reads: Counter,
    /// Cleaning passes of compacted partitions finished.
    pub cleaner_passes: Counter,
    /// Bytes cleaning passes removed from segments.
    pub cleaner_bytes_removed: Counter,
    /// Cleaning passes that failed (the partition is not cleaned again until a restart).
    pub cleaner_failures: Counter,
}
