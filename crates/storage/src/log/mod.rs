//! A partition's log: the segment set, appends with offsets assigned by the
//! owning shard, a writer task that turns appends into aligned O_DIRECT writes
//! followed by one fdatasync for everything pending (group commit), a tail
//! cache of recent chunks, and reads.
//!
//! Invariants:
//! - `log_start_offset <= high_watermark <= next_offset` (the log end offset).
//! - Bytes are readable by consumers only once fsynced (`high_watermark`), so a
//!   consumer never sees a record that a crash could take back; except on a
//!   topic that asks for write caching (`flush.messages`/`flush.ms`, see
//!   `writer.rs`), where they are once written, as in Kafka.
//! - Only the writer task writes segment files, one write at a time, so the
//!   rewritten tail block can never be overtaken by an older write.
//! - A failed write or fsync fails the partition for good: the kernel may have
//!   dropped the data, so retrying could acknowledge lost records.
//! - A file is removed only after the log state no longer refers to it, and
//!   never on the append or write path (the janitor task removes it).
//!
//! One concern per file:
//! - `mod.rs`: the `Log` and its state, open and close, small accessors.
//! - `append.rs`: idempotence and transaction checks, offsets, segment rolls.
//! - `writer.rs`: the writer task, group commit, acks, sealing a full segment.
//! - `read.rs`: the tail cache, the batch cache and read-ahead, disk reads, long-poll watches.
//! - `timestamps.rs`: offset lookup by timestamp.
//! - `retention.rs`: retention, DeleteRecords and the `log-start-offset` file.
//! - `snapshots.rs`: producer-state snapshots, written and loaded.
//! - `recovery.rs`: reopening segments after a crash and the `recovery-point` file.
//! - `janitor.rs`: removal of files the log dropped, off the shard's hot path.

mod append;
mod compaction;
mod janitor;
mod read;
mod recovery;
mod replica;
mod retention;
mod snapshots;
mod timestamps;
mod writer;

#[cfg(test)]
mod test_support;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::rc::Rc;

use futures::channel::oneshot;
use glommio::channels::local_channel::{self, LocalSender};

pub use append::{AckLevel, AppendError, AppendOutcome, MarkerOrigin, TxnMarker};
pub use compaction::{CleanReport, Cleanable};
pub use read::ReadOutcome;
pub use replica::{EpochEnd, ReplicaAppendError};

use super::segment::Segment;
use super::StorageError;
use crate::batch_cache::BatchCache;
use crate::metrics::IoMetrics;
use crate::producer_state::{ProducerInfo, ProducerStateTable};
use janitor::Janitor;
use read::TailCache;
use sluice_core::config::TopicConfig;
use writer::{AckWaiter, PendingWrite};

/// Leader epoch stamped into the batches of a log that has never had
/// another (a single node's, or a partition's first leader's).
pub const LEADER_EPOCH: i32 = 0;

struct LogState {
    config: TopicConfig,
    segments: Vec<Segment>,
    log_start_offset: i64,
    next_offset: i64,
    written_offset: i64,
    high_watermark: i64,
    /// The offset after the last synced batch: the high watermark, except
    /// for a topic caching writes, where it may trail it.
    synced_offset: i64,
    pending: Vec<PendingWrite>,
    waiters: VecDeque<AckWaiter>,
    watchers: Vec<oneshot::Sender<()>>,
    /// Replica fetches waiting for the log end to move (followers read
    /// what is written, not only what is below the high watermark).
    end_watchers: Vec<oneshot::Sender<()>>,
    /// The most the high watermark may reach, where replicas must have the
    /// records too: on a leader, the least durable offset over the other
    /// in-sync replicas; on a follower, the leader's high watermark. `None`
    /// where this log alone decides (a single replica).
    high_watermark_limit: Option<i64>,
    /// A replica that does not lead (a follower, or one not yet given its
    /// role): appends are refused ([`StorageError::NotLeader`]), only the
    /// leader's batches are copied in. Checked where an append is staged, so
    /// one that began while leading cannot land after the leadership went.
    not_leading: bool,
    /// Leading since `become_leader`, until it follows again: a fetched
    /// chunk that arrives now (its fetch was on its way when the role
    /// changed) is refused, as it would land after the new epoch's start.
    leading: bool,
    /// The epoch this log stamps into the batches appended as leader.
    leader_epoch: i32,
    /// Each leader epoch and the first offset appended in it, oldest first
    /// (Kafka's leader-epoch cache): where a follower's log diverges.
    epochs: Vec<(i32, i64)>,
    cache: TailCache,
    failed: Option<String>,
    /// Offset of a corrupt batch found by recovery: reads reaching it fail.
    corrupt_from: Option<i64>,
    closing: bool,
    producers: ProducerStateTable,
    /// Offsets of the producer snapshots on disk, oldest first.
    snapshot_offsets: Vec<i64>,
    /// Synced bytes of the active segment at the last recovery point.
    checkpointed_bytes: u64,
    /// Compaction: the first offset not yet cleaned (the cleaner checkpoint).
    first_dirty: i64,
    /// Compaction: the earliest delete horizon of a kept tombstone or marker.
    next_horizon_ms: Option<i64>,
    /// A cleaned segment is being swapped in: retention leaves files alone.
    swapping: bool,
}

/// One partition's log, owned by one shard.
pub struct Log {
    pub dir: PathBuf,
    state: RefCell<LogState>,
    /// Serialises appends across a segment roll (the only await in an append).
    append_lock: crate::fifo_lock::FifoLock,
    /// Held by a cleaning pass; `close` waits for it.
    clean_lock: crate::fifo_lock::FifoLock,
    doorbell: LocalSender<()>,
    writer_done: RefCell<Option<glommio::task::JoinHandle<()>>>,
    janitor: Janitor,
    /// The owning shard's I/O counters.
    metrics: Rc<IoMetrics>,
    /// The owning shard's batch cache, and this log's key in it (a new key
    /// whenever compaction changes the bytes at some offsets).
    batch_cache: Rc<BatchCache>,
    cache_key: Cell<u64>,
    /// This log's key among the batch cache's tails.
    tail_key: u64,
}

use sluice_core::clock::now_ms;

impl Log {
    /// Opens (or creates) the log in `dir` and starts its writer task; its
    /// disk reads are kept in the shard's `batch_cache`.
    pub async fn open(
        dir: PathBuf,
        config: TopicConfig,
        clean: bool,
        metrics: Rc<IoMetrics>,
        batch_cache: Rc<BatchCache>,
    ) -> Result<Rc<Log>, StorageError> {
        let segments = recovery::open_segments(&dir, &config, clean).await?;
        let corrupt_from = segments.iter().find(|s| s.corrupt_at.is_some()).map(|s| s.next_offset);
        let next_offset = segments.last().map(|s| s.next_offset).unwrap_or(0);
        let log_start_offset =
            retention::read_log_start(&dir).unwrap_or(0).max(segments[0].base_offset()).min(next_offset);
        let (producers, snapshot_offsets) = snapshots::load_producers(&dir, &segments, next_offset).await?;
        let epochs = replica::load_epochs(&dir, log_start_offset, next_offset)?;
        let leader_epoch = epochs.last().map_or(LEADER_EPOCH, |e| e.0);
        let checkpoint = compaction::read_checkpoint(&dir);
        // After a restart the horizons of kept tombstones are not known; none is
        // later than a horizon set now.
        let next_horizon_ms = checkpoint.map(|_| now_ms().saturating_add(config.delete_retention_ms));
        let (doorbell, bell) = local_channel::new_bounded(1);
        let log = Rc::new(Log {
            dir,
            state: RefCell::new(LogState {
                config,
                segments,
                log_start_offset,
                next_offset,
                written_offset: next_offset,
                high_watermark: next_offset,
                synced_offset: next_offset,
                pending: Vec::new(),
                waiters: VecDeque::new(),
                watchers: Vec::new(),
                end_watchers: Vec::new(),
                high_watermark_limit: None,
                not_leading: false,
                leading: false,
                leader_epoch,
                epochs,
                cache: TailCache::new(batch_cache.tail_account()),
                failed: corrupt_from.map(|offset| format!("corrupt record batch at offset {offset}")),
                corrupt_from,
                closing: false,
                producers,
                snapshot_offsets,
                checkpointed_bytes: 0,
                first_dirty: checkpoint.unwrap_or(0),
                next_horizon_ms,
                swapping: false,
            }),
            append_lock: crate::fifo_lock::FifoLock::new(),
            clean_lock: crate::fifo_lock::FifoLock::new(),
            doorbell,
            writer_done: RefCell::new(None),
            janitor: Janitor::start(),
            metrics,
            cache_key: Cell::new(batch_cache.register()),
            tail_key: batch_cache.register(),
            batch_cache,
        });
        log.batch_cache.register_tail(log.tail_key, Rc::downgrade(&log));
        let writer = glommio::spawn_local(writer::writer_loop(log.clone(), bell)).detach();
        *log.writer_done.borrow_mut() = Some(writer);
        Ok(log)
    }

    pub fn high_watermark(&self) -> i64 {
        self.state.borrow().high_watermark
    }
    pub fn log_start_offset(&self) -> i64 {
        self.state.borrow().log_start_offset
    }
    pub fn log_end_offset(&self) -> i64 {
        self.state.borrow().next_offset
    }
    /// The topic's `min.insync.replicas`.
    pub fn min_insync_replicas(&self) -> i32 {
        self.state.borrow().config.min_insync_replicas
    }
    pub fn max_message_bytes(&self) -> usize {
        self.state.borrow().config.max_message_bytes as usize
    }
    /// The last stable offset: below it every transaction is decided (and synced).
    pub fn last_stable_offset(&self) -> i64 {
        read::last_stable(&self.state.borrow())
    }

    /// Per producer: (id, epoch, last sequence, last timestamp, coordinator
    /// epoch, first offset of its open transaction or -1), for DescribeProducers.
    pub fn producer_states(&self) -> Vec<ProducerInfo> {
        let st = self.state.borrow();
        let mut out: Vec<_> = st
            .producers
            .producers()
            .map(|(producer_id, e)| ProducerInfo {
                producer_id,
                epoch: e.epoch,
                last_sequence: e.batches.back().map(|b| b.last_seq).unwrap_or(-1),
                last_timestamp: e.last_timestamp,
                coordinator_epoch: e.coordinator_epoch,
                txn_first_offset: e.txn_first_offset.unwrap_or(-1),
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// Forgets the producers idle for `expiration_ms` or longer
    /// (`producer.id.expiration.ms`) that have no transaction open here;
    /// returns how many. Their batches stay in the log.
    pub fn remove_expired_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        self.state.borrow_mut().producers.remove_expired(now_ms, expiration_ms)
    }

    /// Bytes of all the log's segments.
    pub fn size_bytes(&self) -> u64 {
        self.state.borrow().segments.iter().map(|s| s.size_bytes).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.state.borrow().segments.len()
    }

    /// Takes a topic's changed config (segment size, timestamps, retention...).
    pub fn set_config(&self, config: TopicConfig) {
        self.state.borrow_mut().config = config;
    }

    /// When the tail cache last took an append (a tick of the shard's tail
    /// account), if it holds anything; None while the log is busy.
    pub(crate) fn tail_last_append(&self) -> Option<u64> {
        self.state.try_borrow().ok()?.cache.last_append()
    }

    /// Drops the synced part of the tail cache (unless the log is busy);
    /// reads below it go to the batch cache or the disk.
    pub(crate) fn drop_synced_tail(&self) {
        if let Ok(mut st) = self.state.try_borrow_mut() {
            let synced = st.synced_offset;
            st.cache.evict_synced(synced, 0);
        }
    }

    /// Bytes in the tail cache.
    pub fn tail_bytes(&self) -> usize {
        self.state.borrow().cache.bytes()
    }

    /// Whether the partition refuses writes after an I/O failure.
    pub fn failure(&self) -> Option<String> {
        self.state.borrow().failed.clone()
    }

    /// Stops taking appends, waits for everything pending to be written and
    /// synced, and writes the active segment's indexes and exact length. Files
    /// queued for removal are gone when it returns, so the directory can then
    /// be deleted or opened again.
    pub async fn close(&self) -> Result<(), StorageError> {
        self.batch_cache.forget(self.cache_key.get());
        self.batch_cache.forget_tail(self.tail_key);
        let closed = self.close_files().await;
        self.janitor.drain().await;
        closed
    }

    async fn close_files(&self) -> Result<(), StorageError> {
        {
            let mut st = self.state.borrow_mut();
            st.closing = true;
            let st = &mut *st;
            for w in st.watchers.drain(..).chain(st.end_watchers.drain(..)) {
                let _ = w.send(());
            }
        }
        let _ = self.doorbell.try_send(());
        // A cleaning pass notices the close and stops; wait until it has.
        drop(self.clean_lock.lock().await);
        let writer = self.writer_done.borrow_mut().take();
        if let Some(writer) = writer {
            writer.await;
        }
        let failed = self.state.borrow().failed.clone();
        if let Some(reason) = failed {
            return Err(StorageError::Failed(reason));
        }
        let active = {
            let st = self.state.borrow();
            st.segments.last().map(|s| (s.file.clone(), s.size_bytes))
        };
        if let Some((file, size)) = active {
            file.file.truncate(size).await.map_err(|e| StorageError::io("truncate segment", e))?;
            file.file.fdatasync().await.map_err(|e| StorageError::io("fdatasync", e))?;
            let (index, time_index) = {
                let st = self.state.borrow();
                let last = st.segments.last().expect("active segment");
                (last.index.clone(), last.time_index.clone())
            };
            super::file::write_atomically(&file.index_path(), index.as_bytes()).await?;
            super::file::write_atomically(&file.time_index_path(), time_index.as_bytes()).await?;
        }
        let (end, snapshot) = {
            let st = self.state.borrow();
            (st.next_offset, st.producers.encode())
        };
        self.write_snapshot(end, &snapshot).await?;
        // The indexes just written are newer than any recovery point.
        recovery::remove_recovery_point(&self.dir).await
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{append, check_reads, open, run, small_config, temp_dir};
    use super::*;

    #[test]
    fn append_assigns_offsets_rolls_and_reads_back_after_reopen() {
        run(|| async {
            let dir = temp_dir("roll");
            let log = open(&dir, small_config(), false).await;
            let mut expected = 0;
            for i in 0..200 {
                let outcome = append(&log, 3, 1000 + i * 10).await;
                assert_eq!(outcome.base_offset, expected);
                expected += 3;
            }
            assert_eq!(log.high_watermark(), 600);
            check_reads(&log, 600).await;
            // Timestamps: batch i holds 1000 + 10 i .. + 2.
            assert_eq!(log.offset_for_timestamp(1000 + 50 * 10 + 1).await.unwrap(), Some((1501, 151)));
            assert_eq!(log.offset_for_timestamp(99_999).await.unwrap(), None);
            assert!(matches!(log.read(601, 100, false).await, Err(StorageError::OffsetOutOfRange { .. })));
            assert!(log.read(600, 100, false).await.unwrap().chunks.is_empty());
            log.close().await.unwrap();
            let segments = std::fs::read_dir(&dir)
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"));
            assert!(segments.count() >= 3, "8 KiB segments must have rolled");

            // Reopened cleanly: indexes loaded, all offsets read from disk.
            let log = open(&dir, small_config(), true).await;
            assert_eq!(log.log_end_offset(), 600);
            check_reads(&log, 600).await;
            assert_eq!(append(&log, 2, 5000).await.base_offset, 600);
            log.close().await.unwrap();

            // Reopened as after a crash: indexes rebuilt by scanning.
            let log = open(&dir, small_config(), false).await;
            assert_eq!(log.log_end_offset(), 602);
            check_reads(&log, 602).await;
            log.close().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }
}
