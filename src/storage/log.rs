//! A partition's log: the segment set, appends with offsets assigned by the
//! owning shard, a writer task that turns appends into aligned O_DIRECT writes
//! followed by one fdatasync for everything pending (group commit), a tail
//! cache of recent chunks, and reads.
//!
//! Invariants:
//! - `log_start_offset <= high_watermark <= next_offset` (the log end offset).
//! - Bytes are readable by consumers only once fsynced (`high_watermark`), so a
//!   consumer never sees a record that a crash could take back.
//! - Only the writer task writes segment files, one write at a time, so the
//!   rewritten tail block can never be overtaken by an older write.
//! - A failed write or fsync fails the partition for good: the kernel may have
//!   dropped the data, so retrying could acknowledge lost records.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use futures::channel::oneshot;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::sync::Semaphore;

use super::segment::{align_down, align_up, RecoveryPoint, Segment, SegmentFile};
use super::StorageError;
use crate::config::{TimestampType, TopicConfig};
use crate::constants::{FETCH_READ_BYTES_PER_PARTITION_MAX, TAIL_CACHE_BYTES_PER_PARTITION_MAX};
use crate::protocol::batch::{self, BatchHeader, BatchSummary};
use crate::storage::producer_state::{self, BatchRecord, ProducerError, ProducerStateTable, SequenceCheck};

/// Leader epoch stamped into every stored batch (a single-node log never changes leader).
pub const LEADER_EPOCH: i32 = 0;

/// How far an append must get before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckLevel {
    /// acks=0: not waited for.
    None,
    /// acks=1: written to the segment file.
    Written,
    /// acks=all: written and fdatasync'd.
    Synced,
}

/// What a produce learns about its append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    pub base_offset: i64,
    /// The broker's timestamp for `LogAppendTime` topics, else -1.
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
}

/// Why an append was refused.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Producer(#[from] ProducerError),
}

/// What a fetch gets from one partition.
#[derive(Debug, Clone, Default)]
pub struct ReadOutcome {
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// For read_committed reads: the aborted transactions `(producer id,
    /// first offset)` with records among the returned batches.
    pub aborted: Option<Vec<(i64, i64)>>,
    /// Whole batches, consecutive, starting with the one holding the fetch offset.
    pub chunks: Vec<Bytes>,
}

impl ReadOutcome {
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }
}

/// Appended bytes waiting for the writer.
struct PendingWrite {
    segment: Rc<SegmentFile>,
    bytes: Bytes,
    /// Position in the segment just after these bytes.
    end_position: u64,
    /// Offset just after these bytes.
    end_offset: i64,
}

struct AckWaiter {
    end_offset: i64,
    level: AckLevel,
    done: oneshot::Sender<Result<(), StorageError>>,
}

/// Recently appended bytes, kept to serve consumers at the tail without disk reads.
struct CacheEntry {
    base_offset: i64,
    end_offset: i64,
    bytes: Bytes,
}

struct LogState {
    config: TopicConfig,
    segments: Vec<Segment>,
    log_start_offset: i64,
    next_offset: i64,
    written_offset: i64,
    high_watermark: i64,
    pending: Vec<PendingWrite>,
    waiters: VecDeque<AckWaiter>,
    watchers: Vec<oneshot::Sender<()>>,
    cache: VecDeque<CacheEntry>,
    cache_bytes: usize,
    failed: Option<String>,
    /// Offset of a corrupt batch found by recovery: reads reaching it fail.
    corrupt_from: Option<i64>,
    closing: bool,
    producers: ProducerStateTable,
    /// Synced bytes of the active segment at the last recovery point.
    checkpointed_bytes: u64,
}

/// One partition's log, owned by one shard.
pub struct Log {
    pub dir: PathBuf,
    state: RefCell<LogState>,
    /// Serialises appends across a segment roll (the only await in an append).
    append_lock: Semaphore,
    doorbell: LocalSender<()>,
    writer_done: RefCell<Option<glommio::task::JoinHandle<()>>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn parse_segment_base(path: &Path) -> Option<i64> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".log")?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit())).then(|| stem.parse().ok()).flatten()
}

impl Log {
    /// Opens (or creates) the log in `dir` and starts its writer task.
    pub async fn open(dir: PathBuf, config: TopicConfig, clean: bool) -> Result<Rc<Log>, StorageError> {
        std::fs::create_dir_all(&dir).map_err(|e| StorageError::io(&format!("create {}", dir.display()), e))?;
        let mut bases: Vec<i64> = std::fs::read_dir(&dir)
            .map_err(|e| StorageError::io(&format!("list {}", dir.display()), e))?
            .filter_map(|entry| entry.ok().and_then(|e| parse_segment_base(&e.path())))
            .collect();
        bases.sort_unstable();
        let mut segments = Vec::with_capacity(bases.len().max(1));
        let recovery = std::fs::read(dir.join("recovery-point")).ok().and_then(|b| RecoveryPoint::decode(&b));
        for (i, base) in bases.iter().enumerate() {
            let path = dir.join(format!("{}.log", super::segment_file_stem(*base)));
            // Only the last segment can have an unsynced tail after a crash,
            // or the one before it when the last is still empty (below). A
            // segment opened as clean still has any bytes after its last valid
            // batch cut, so a short tail there is handled either way.
            let segment_clean = clean || i + 1 < bases.len();
            let segment = Segment::open(&path, *base, segment_clean, recovery, config.index_interval_bytes).await?;
            segments.push(segment);
        }
        // A roll creates the next segment before the previous one's last
        // writes land (the writer seals a segment before writing the next).
        // A crash in between leaves the previous segment ending below the new
        // one's base, and the new one empty: drop it, so offsets stay dense
        // and the previous segment is active again.
        while let [.., previous, last] = &segments[..] {
            if last.size_bytes > 0 || previous.next_offset >= last.base_offset() {
                break;
            }
            tracing::warn!(
                dir = %dir.display(), end = previous.next_offset, next_base = last.base_offset(),
                "empty segment past the end of the log after a crash; removing it"
            );
            let dropped = segments.pop().expect("two segments");
            dropped.remove_files();
            // A recovery point names a segment by its base; a later segment
            // could be created at the same base and must not inherit it.
            if recovery.is_some_and(|r| r.segment_base == dropped.base_offset()) {
                let _ = std::fs::remove_file(dir.join("recovery-point"));
            }
            super::file::sync_dir(&dir).await?;
        }
        let corrupt_from = segments.iter().find(|s| s.corrupt_at.is_some()).map(|s| s.next_offset);
        if segments.is_empty() {
            segments.push(Segment::create(&dir, 0).await?);
            super::file::sync_dir(&dir).await?;
        }
        let next_offset = segments.last().map(|s| s.next_offset).unwrap_or(0);
        let log_start_offset = read_log_start(&dir).unwrap_or(0).max(segments[0].base_offset()).min(next_offset);
        let producers = load_producers(&dir, &segments, next_offset).await?;
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
                pending: Vec::new(),
                waiters: VecDeque::new(),
                watchers: Vec::new(),
                cache: VecDeque::new(),
                cache_bytes: 0,
                failed: corrupt_from.map(|offset| format!("corrupt record batch at offset {offset}")),
                corrupt_from,
                closing: false,
                producers,
                checkpointed_bytes: 0,
            }),
            append_lock: Semaphore::new(1),
            doorbell,
            writer_done: RefCell::new(None),
        });
        let writer = glommio::spawn_local(writer_loop(log.clone(), bell)).detach();
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
    pub fn max_message_bytes(&self) -> usize {
        self.state.borrow().config.max_message_bytes as usize
    }
    /// The last stable offset: below it every transaction is decided (and synced).
    pub fn last_stable_offset(&self) -> i64 {
        last_stable(&self.state.borrow())
    }

    /// Per producer: (id, epoch, last sequence, last timestamp, coordinator
    /// epoch, first offset of its open transaction or -1), for DescribeProducers.
    pub fn producer_states(&self) -> Vec<(i64, i16, i32, i64, i32, i64)> {
        let st = self.state.borrow();
        let mut out: Vec<_> = st
            .producers
            .producers()
            .map(|(id, e)| {
                let last_seq = e.batches.back().map(|b| b.last_seq).unwrap_or(-1);
                (id, e.epoch, last_seq, e.last_timestamp, e.coordinator_epoch, e.txn_first_offset.unwrap_or(-1))
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// Writes a transaction marker (a control batch) for `producer_id`'s open
    /// transaction in this partition and waits until it is synced. Returns
    /// the marker's offset, or `None` when the producer has no transaction
    /// open here (nothing is written: ending a transaction twice is harmless).
    pub async fn append_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
    ) -> Result<Option<i64>, AppendError> {
        let chunk = batch::control_batch(producer_id, epoch, commit, coordinator_epoch, now_ms());
        let summary =
            BatchSummary { position: 0, size_bytes: chunk.len(), offset_count: 1, max_timestamp: -1, producer_id };
        let marker = Marker { producer_id, epoch, commit, coordinator_epoch };
        let outcome = self.append_inner(&chunk, &[summary], AckLevel::Synced, Some(marker)).await?;
        Ok(outcome.map(|o| o.base_offset))
    }

    /// Appends a validated chunk of batches. Offsets are assigned here, on the
    /// owning shard; the bytes are copied once into a buffer where the headers
    /// are patched, and that buffer serves both the disk write and tail reads.
    pub async fn append(
        &self,
        chunk: &[u8],
        summaries: &[BatchSummary],
        acks: AckLevel,
    ) -> Result<AppendOutcome, AppendError> {
        let outcome = self.append_inner(chunk, summaries, acks, None).await?;
        Ok(outcome.expect("only markers are skipped"))
    }

    async fn append_inner(
        &self,
        chunk: &[u8],
        summaries: &[BatchSummary],
        acks: AckLevel,
        marker: Option<Marker>,
    ) -> Result<Option<AppendOutcome>, AppendError> {
        assert!(!summaries.is_empty(), "append of an empty chunk");
        let permit = self.append_lock.acquire_permit(1).await.map_err(|_| StorageError::Closing)?;
        self.roll_if_needed(chunk.len() as u64).await?;
        let (outcome, waiter) = 'prepare: {
            let mut st = self.state.borrow_mut();
            if let Some(reason) = &st.failed {
                return Err(StorageError::Failed(reason.clone()).into());
            }
            if st.closing {
                return Err(StorageError::Closing.into());
            }
            let producer_batches = match marker {
                None => check_producers(&st.producers, chunk, summaries)?,
                Some(m) => {
                    if !st.producers.check_marker(m.producer_id, m.epoch)? {
                        return Ok(None);
                    }
                    ProducerVerdict::Append(vec![None])
                }
            };
            if let ProducerVerdict::Duplicate(dup) = producer_batches {
                // A retry of a batch already appended: its original offsets, once as durable as asked.
                let end = dup.last_offset + 1;
                let done = match acks {
                    AckLevel::None => true,
                    AckLevel::Written => st.written_offset >= end,
                    AckLevel::Synced => st.high_watermark >= end,
                };
                let waiter = (!done).then(|| {
                    let (tx, wait) = oneshot::channel();
                    st.waiters.push_back(AckWaiter { end_offset: end, level: acks, done: tx });
                    wait
                });
                let outcome = AppendOutcome {
                    base_offset: dup.base_offset,
                    log_append_time_ms: -1,
                    log_start_offset: st.log_start_offset,
                };
                break 'prepare (outcome, waiter);
            }
            let base_offset = st.next_offset;
            let log_append_time_ms = match st.config.message_timestamp_type {
                TimestampType::LogAppendTime => now_ms(),
                TimestampType::CreateTime => -1,
            };
            let mut bytes = BytesMut::from(chunk);
            let mut next = base_offset;
            let ProducerVerdict::Append(producer_batches) = producer_batches else { unreachable!("handled above") };
            for (s, producer) in summaries.iter().zip(producer_batches) {
                let b = &mut bytes[s.position..s.position + s.size_bytes];
                batch::patch_offset_and_epoch(b, next, LEADER_EPOCH);
                if log_append_time_ms >= 0 {
                    batch::patch_log_append_time(b, log_append_time_ms);
                }
                if let Some(p) = producer {
                    let record = BatchRecord {
                        first_seq: p.first_seq,
                        last_seq: p.last_seq,
                        base_offset: next,
                        last_offset: next + s.offset_count - 1,
                    };
                    st.producers.record(p.producer_id, p.epoch, record, p.transactional, s.max_timestamp);
                }
                if let Some(m) = marker {
                    st.producers.end_txn(m.producer_id, m.epoch, m.commit, next, m.coordinator_epoch);
                }
                next += s.offset_count;
            }
            let bytes = bytes.freeze();
            let interval = st.config.index_interval_bytes;
            let segment = st.segments.last_mut().expect("a log always has a segment");
            let start_position = segment.size_bytes;
            for s in summaries {
                let header = BatchHeader::parse(&bytes[s.position..]).expect("validated batch");
                segment.record_batch(start_position + s.position as u64, &header, interval);
            }
            assert_eq!(segment.size_bytes, start_position + bytes.len() as u64, "batches must tile the chunk");
            assert_eq!(segment.next_offset, next);
            let pending = PendingWrite {
                segment: segment.file.clone(),
                bytes: bytes.clone(),
                end_position: segment.size_bytes,
                end_offset: next,
            };
            st.next_offset = next;
            st.pending.push(pending);
            st.cache_bytes += bytes.len();
            st.cache.push_back(CacheEntry { base_offset, end_offset: next, bytes });
            let waiter = match acks {
                AckLevel::None => None,
                level => {
                    let (done, wait) = oneshot::channel();
                    st.waiters.push_back(AckWaiter { end_offset: next, level, done });
                    Some(wait)
                }
            };
            (AppendOutcome { base_offset, log_append_time_ms, log_start_offset: st.log_start_offset }, waiter)
        };
        drop(permit);
        let _ = self.doorbell.try_send(());
        if let Some(wait) = waiter {
            wait.await.map_err(|_| StorageError::Closing)??;
        }
        Ok(Some(outcome))
    }

    async fn roll_if_needed(&self, incoming_bytes: u64) -> Result<(), StorageError> {
        let (dir, base) = {
            let st = self.state.borrow();
            let active = st.segments.last().expect("a log always has a segment");
            let too_big = active.size_bytes + incoming_bytes > st.config.segment_bytes;
            let too_old = now_ms().saturating_sub(active.created_ms) >= st.config.segment_ms;
            if active.size_bytes == 0 || !(too_big || too_old) {
                return Ok(());
            }
            (self.dir.clone(), st.next_offset)
        };
        let snapshot = self.state.borrow().producers.encode();
        write_producer_snapshot(&dir, base, &snapshot).await?;
        let segment = Segment::create(&dir, base).await?;
        super::file::sync_dir(&dir).await?;
        let mut st = self.state.borrow_mut();
        st.segments.push(segment);
        st.checkpointed_bytes = 0;
        Ok(())
    }

    /// Resolves once the high watermark passes `offset`, the log closes, or
    /// the returned receiver's sender is dropped.
    pub fn watch(&self, offset: i64) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut st = self.state.borrow_mut();
        if st.high_watermark > offset || st.closing {
            let _ = tx.send(());
        } else {
            // Drop watchers whose fetch already gave up, so idle partitions stay bounded.
            st.watchers.retain(|w| !w.is_canceled());
            st.watchers.push(tx);
        }
        rx
    }

    /// Reads whole batches from `fetch_offset`, at most about `max_bytes` (but
    /// always the first batch whole), never past the high watermark, nor past
    /// the last stable offset when `committed` (read_committed); those reads
    /// also get the aborted transactions among the returned batches.
    pub async fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        committed: bool,
    ) -> Result<ReadOutcome, StorageError> {
        let mut outcome = self.read_uncommitted(fetch_offset, max_bytes, committed).await?;
        if committed {
            let end = trim_below(&mut outcome.chunks, outcome.last_stable_offset).unwrap_or(fetch_offset);
            outcome.aborted = Some(self.state.borrow().producers.aborted_between(fetch_offset, end));
        }
        Ok(outcome)
    }

    async fn read_uncommitted(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        committed: bool,
    ) -> Result<ReadOutcome, StorageError> {
        let max_bytes = max_bytes.min(FETCH_READ_BYTES_PER_PARTITION_MAX);
        let (plan, mut outcome) = {
            let st = self.state.borrow();
            let mut outcome = ReadOutcome {
                high_watermark: st.high_watermark,
                last_stable_offset: last_stable(&st),
                log_start_offset: st.log_start_offset,
                aborted: None,
                chunks: Vec::new(),
            };
            if let Some(corrupt) = st.corrupt_from {
                if fetch_offset >= corrupt {
                    return Err(StorageError::Corrupt(format!("{} at offset {corrupt}", self.dir.display())));
                }
            }
            if fetch_offset < st.log_start_offset || fetch_offset > st.next_offset {
                return Err(StorageError::OffsetOutOfRange {
                    offset: fetch_offset,
                    start: st.log_start_offset,
                    end: st.next_offset,
                });
            }
            let upper = if committed { outcome.last_stable_offset } else { st.high_watermark };
            if fetch_offset >= upper {
                return Ok(outcome);
            }
            if st.cache.front().is_some_and(|c| c.base_offset <= fetch_offset) {
                outcome.chunks = read_cache(&st, fetch_offset, max_bytes);
                return Ok(outcome);
            }
            let i = st.segments.partition_point(|s| s.base_offset() <= fetch_offset).saturating_sub(1);
            let segment = &st.segments[i];
            let relative = (fetch_offset - segment.base_offset()).clamp(0, u32::MAX as i64) as u32;
            let position = segment.index.lookup(relative) as u64;
            (ReadPlan { file: segment.file.clone(), position, end: segment.synced_bytes }, outcome)
        };
        outcome.chunks = read_disk(plan, fetch_offset, max_bytes).await?;
        Ok(outcome)
    }

    /// `(timestamp, offset)` of the first record whose timestamp is at least
    /// `target`; `None` when every record is older.
    pub async fn offset_for_timestamp(&self, target: i64) -> Result<Option<(i64, i64)>, StorageError> {
        let plan = {
            let st = self.state.borrow();
            let Some(segment) = st.segments.iter().find(|s| s.max_timestamp >= target && s.synced_bytes > 0) else {
                return Ok(None);
            };
            let start = segment.time_index.scan_start(target);
            let position = segment.index.lookup(start) as u64;
            ReadPlan { file: segment.file.clone(), position, end: segment.synced_bytes }
        };
        let mut position = plan.position;
        while position < plan.end {
            let want = ((plan.end - position) as usize).min(FETCH_READ_BYTES_PER_PARTITION_MAX);
            let read = plan.file.file.read_at(position, want).await.map_err(|e| StorageError::io("read segment", e))?;
            let mut last_end = 0;
            for (at, header) in batch::headers(&read) {
                last_end = at + header.size_bytes;
                if header.max_timestamp >= target {
                    let batch_bytes = Bytes::copy_from_slice(&read[at..at + header.size_bytes]);
                    let found = batch::first_record_at_or_after(batch_bytes, target).map_err(StorageError::Corrupt)?;
                    return Ok(found.map(|(offset, timestamp)| (timestamp, offset)));
                }
            }
            if last_end == 0 {
                break;
            }
            position += last_end as u64;
        }
        Ok(None)
    }

    /// The largest timestamp in the log and the offset of the batch holding it.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let st = self.state.borrow();
        st.segments
            .iter()
            .filter(|s| s.max_timestamp >= 0 && s.synced_bytes > 0)
            .max_by_key(|s| s.max_timestamp)
            .map(|s| (s.max_timestamp, s.offset_of_max_timestamp))
    }

    /// Stops taking appends, waits for everything pending to be written and
    /// synced, and writes the active segment's indexes and exact length.
    pub async fn close(&self) -> Result<(), StorageError> {
        {
            let mut st = self.state.borrow_mut();
            st.closing = true;
            for w in st.watchers.drain(..) {
                let _ = w.send(());
            }
        }
        let _ = self.doorbell.try_send(());
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
        write_producer_snapshot(&self.dir, end, &snapshot).await?;
        // The indexes just written are newer than any recovery point.
        match std::fs::remove_file(self.dir.join("recovery-point")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StorageError::io("remove recovery point", e)),
            _ => Ok(()),
        }
    }

    /// Moves the log start offset to `offset` (-1: the high watermark), as
    /// DeleteRecords asks; it is made durable before the answer, and whole
    /// segments below it are deleted. Returns the new log start offset.
    pub async fn delete_records(&self, offset: i64) -> Result<i64, StorageError> {
        let (start, high_watermark) = {
            let st = self.state.borrow();
            (st.log_start_offset, st.high_watermark)
        };
        let target = if offset == -1 { high_watermark } else { offset };
        if target < 0 || target > high_watermark {
            return Err(StorageError::OffsetOutOfRange { offset, start, end: high_watermark });
        }
        if target <= start {
            return Ok(start);
        }
        write_log_start(&self.dir, target).await?;
        {
            let mut st = self.state.borrow_mut();
            st.log_start_offset = st.log_start_offset.max(target);
        }
        self.delete_segments_below_start();
        Ok(self.log_start_offset())
    }

    /// Deletes closed segments that retention no longer keeps, oldest first:
    /// older than `retention.ms` (by their largest timestamp), beyond
    /// `retention.bytes`, or wholly below the log start offset. The active
    /// segment is never deleted, nor anything from the middle of the log.
    pub fn enforce_retention(&self, now_ms: i64) -> usize {
        let mut deleted = 0;
        loop {
            let delete = {
                let st = self.state.borrow();
                if !st.config.cleanup_policy.split(',').any(|p| p.trim() == "delete") || st.segments.len() < 2 {
                    break;
                }
                let oldest = &st.segments[0];
                if oldest.synced_bytes < oldest.size_bytes {
                    break;
                }
                let expired = st.config.retention_ms >= 0
                    && oldest.max_timestamp >= 0
                    && oldest.max_timestamp < now_ms - st.config.retention_ms;
                let total: u64 = st.segments.iter().map(|s| s.size_bytes).sum();
                let oversize =
                    st.config.retention_bytes >= 0 && total - oldest.size_bytes >= st.config.retention_bytes as u64;
                let below_start = oldest.next_offset <= st.log_start_offset;
                expired || oversize || below_start
            };
            if !delete {
                break;
            }
            self.delete_oldest_segment();
            deleted += 1;
        }
        deleted
    }

    fn delete_segments_below_start(&self) {
        loop {
            let below = {
                let st = self.state.borrow();
                st.segments.len() >= 2 && st.segments[0].next_offset <= st.log_start_offset
            };
            if !below {
                return;
            }
            self.delete_oldest_segment();
        }
    }

    fn delete_oldest_segment(&self) {
        let mut st = self.state.borrow_mut();
        assert!(st.segments.len() >= 2, "the active segment is never deleted");
        let segment = st.segments.remove(0);
        let new_start = st.segments[0].base_offset();
        st.log_start_offset = st.log_start_offset.max(new_start);
        let start = st.log_start_offset;
        st.producers.drop_aborted_below(start);
        while st.cache.front().is_some_and(|c| c.end_offset <= st.log_start_offset) {
            let gone = st.cache.pop_front().expect("checked");
            st.cache_bytes -= gone.bytes.len();
        }
        drop(st);
        tracing::info!(dir = %self.dir.display(), base = segment.base_offset(), "segment deleted by retention");
        segment.remove_files();
    }

    /// Writes a recovery point for the active segment (its indexes up to the
    /// synced position, then where that is) once enough was synced since the
    /// last one, so that recovery after a crash re-reads only what follows.
    pub async fn maybe_checkpoint(&self, min_new_bytes: u64) -> Result<(), StorageError> {
        let (point, index, time_index, file) = {
            let st = self.state.borrow();
            let active = st.segments.last().expect("a log always has a segment");
            if active.corrupt_at.is_some() || active.synced_bytes < st.checkpointed_bytes + min_new_bytes.max(1) {
                return Ok(());
            }
            // Synced bytes end at the high watermark's batch boundary.
            let point = RecoveryPoint {
                segment_base: active.base_offset(),
                position: active.synced_bytes,
                next_offset: st.high_watermark,
                max_timestamp: active.max_timestamp,
                offset_of_max_timestamp: active.offset_of_max_timestamp,
            };
            let relative = (st.high_watermark - active.base_offset()).clamp(0, u32::MAX as i64) as u32;
            (
                point,
                active.index.prefix_bytes(active.synced_bytes).to_vec(),
                active.time_index.prefix_bytes(relative).to_vec(),
                active.file.clone(),
            )
        };
        if point.next_offset < point.segment_base {
            return Ok(());
        }
        super::file::write_atomically(&file.index_path(), &index).await?;
        super::file::write_atomically(&file.time_index_path(), &time_index).await?;
        super::file::write_atomically(&self.dir.join("recovery-point"), &point.encode()).await?;
        self.state.borrow_mut().checkpointed_bytes = point.position;
        Ok(())
    }

    /// Bytes of all the log's segments.
    pub fn size_bytes(&self) -> u64 {
        self.state.borrow().segments.iter().map(|s| s.size_bytes).sum()
    }

    /// Takes a topic's changed config (segment size, timestamps, retention...).
    pub fn set_config(&self, config: TopicConfig) {
        self.state.borrow_mut().config = config;
    }

    /// Whether the partition refuses writes after an I/O failure.
    pub fn failure(&self) -> Option<String> {
        self.state.borrow().failed.clone()
    }
}

fn read_log_start(dir: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(dir.join("log-start-offset")).ok()?;
    let (value, crc) = text.trim().split_once(' ')?;
    (crc32fast::hash(value.as_bytes()) == u32::from_str_radix(crc, 16).ok()?).then(|| value.parse().ok())?
}

async fn write_log_start(dir: &Path, offset: i64) -> Result<(), StorageError> {
    let value = offset.to_string();
    let text = format!("{value} {:08x}\n", crc32fast::hash(value.as_bytes()));
    super::file::write_atomically(&dir.join("log-start-offset"), text.as_bytes()).await
}

/// The producer fields of one idempotent or transactional batch of an append.
struct ProducerBatch {
    producer_id: i64,
    epoch: i16,
    first_seq: i32,
    last_seq: i32,
    transactional: bool,
}

/// The producer fields of each batch of an append, or a retried batch.
enum ProducerVerdict {
    /// Per batch, `None` for a batch without a producer id.
    Append(Vec<Option<ProducerBatch>>),
    Duplicate(BatchRecord),
}

/// Checks the sequence numbers of every idempotent batch of a chunk before
/// anything is written: all of them are new and in order, or the chunk is one
/// retried batch, or the chunk is refused.
fn check_producers(
    table: &ProducerStateTable,
    chunk: &[u8],
    summaries: &[BatchSummary],
) -> Result<ProducerVerdict, ProducerError> {
    let mut batches = Vec::with_capacity(summaries.len());
    let mut seen: Vec<(i64, i16, i32)> = Vec::new();
    for s in summaries {
        let header = BatchHeader::parse(&chunk[s.position..]).expect("validated batch");
        if header.producer_id < 0 {
            batches.push(None);
            continue;
        }
        let (producer_id, epoch) = (header.producer_id, header.producer_epoch);
        let first_seq = header.base_sequence;
        let last_seq = producer_state::last_sequence(first_seq, header.last_offset_delta);
        if let Some((_, e, last)) = seen.iter().find(|(id, _, _)| *id == producer_id) {
            if *e != epoch || !producer_state::follows(*last, first_seq) {
                return Err(ProducerError::OutOfOrder { producer_id, last: *last, found: first_seq });
            }
        } else {
            match table.check(producer_id, epoch, first_seq, last_seq)? {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate(dup) if summaries.len() == 1 => return Ok(ProducerVerdict::Duplicate(dup)),
                SequenceCheck::Duplicate(dup) => {
                    return Err(ProducerError::OutOfOrder { producer_id, last: dup.last_seq, found: first_seq })
                }
            }
        }
        seen.retain(|(id, _, _)| *id != producer_id);
        seen.push((producer_id, epoch, last_seq));
        batches.push(Some(ProducerBatch {
            producer_id,
            epoch,
            first_seq,
            last_seq,
            transactional: header.is_transactional(),
        }));
    }
    Ok(ProducerVerdict::Append(batches))
}

/// A transaction marker being appended.
#[derive(Debug, Clone, Copy)]
struct Marker {
    producer_id: i64,
    epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
}

fn last_stable(st: &LogState) -> i64 {
    st.producers.first_unstable_offset().map_or(st.high_watermark, |first| first.min(st.high_watermark))
}

/// Cuts read chunks before the first batch at or past `upper`; returns the
/// offset just after the last batch kept.
fn trim_below(chunks: &mut Vec<Bytes>, upper: i64) -> Option<i64> {
    let mut keep = 0;
    let mut end_offset = None;
    for chunk in chunks.iter_mut() {
        let mut end = 0;
        let mut cut = false;
        for (at, header) in batch::headers(chunk) {
            if header.base_offset >= upper {
                cut = true;
                break;
            }
            end = at + header.size_bytes;
            end_offset = Some(header.last_offset() + 1);
        }
        if end > 0 {
            *chunk = chunk.slice(..end);
            keep += 1;
        }
        if cut || end == 0 {
            break;
        }
    }
    chunks.truncate(keep);
    end_offset
}

fn snapshot_offset(path: &Path) -> Option<i64> {
    let stem = path.file_name()?.to_str()?.strip_suffix(".snapshot")?;
    (stem.len() == 20).then(|| stem.parse().ok()).flatten()
}

/// Writes the producer state as of `offset`, keeping only the newest snapshots.
async fn write_producer_snapshot(dir: &Path, offset: i64, bytes: &[u8]) -> Result<(), StorageError> {
    let path = dir.join(format!("{}.snapshot", super::segment_file_stem(offset)));
    super::file::write_atomically(&path, bytes).await?;
    let mut offsets: Vec<i64> = std::fs::read_dir(dir)
        .map_err(|e| StorageError::io("list snapshots", e))?
        .filter_map(|e| e.ok().and_then(|e| snapshot_offset(&e.path())))
        .collect();
    offsets.sort_unstable();
    let keep_from = offsets.len().saturating_sub(crate::constants::PRODUCER_SNAPSHOTS_RETAINED);
    for old in &offsets[..keep_from] {
        let _ = std::fs::remove_file(dir.join(format!("{}.snapshot", super::segment_file_stem(*old))));
    }
    Ok(())
}

/// Rebuilds the producer table: the newest intact snapshot at or below the
/// log end, then every batch after it. Snapshots past the log end (the log
/// was cut after a crash) are removed.
async fn load_producers(dir: &Path, segments: &[Segment], log_end: i64) -> Result<ProducerStateTable, StorageError> {
    let mut offsets: Vec<i64> = std::fs::read_dir(dir)
        .map_err(|e| StorageError::io("list snapshots", e))?
        .filter_map(|e| e.ok().and_then(|e| snapshot_offset(&e.path())))
        .collect();
    offsets.sort_unstable_by(|a, b| b.cmp(a));
    let mut start = (ProducerStateTable::default(), segments.first().map(|s| s.base_offset()).unwrap_or(0));
    for offset in offsets {
        let path = dir.join(format!("{}.snapshot", super::segment_file_stem(offset)));
        if offset > log_end {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if let Some(table) = std::fs::read(&path).ok().and_then(|b| ProducerStateTable::decode(&b)) {
            start = (table, offset);
            break;
        }
        tracing::warn!(path = %path.display(), "damaged producer snapshot ignored");
    }
    let (mut table, from) = start;
    for segment in segments.iter().filter(|s| s.next_offset > from) {
        let relative = (from - segment.base_offset()).clamp(0, u32::MAX as i64) as u32;
        let mut position = segment.index.lookup(relative) as u64;
        while position < segment.synced_bytes {
            let want = ((segment.synced_bytes - position) as usize).min(FETCH_READ_BYTES_PER_PARTITION_MAX);
            let read =
                segment.file.file.read_at(position, want).await.map_err(|e| StorageError::io("read segment", e))?;
            let mut consumed = 0;
            for (at, header) in batch::headers(&read) {
                consumed = at + header.size_bytes;
                if header.last_offset() >= from {
                    table.replay(&header, &read[at..at + header.size_bytes]);
                }
            }
            if consumed == 0 {
                break;
            }
            position += consumed as u64;
        }
    }
    Ok(table)
}

struct ReadPlan {
    file: Rc<SegmentFile>,
    position: u64,
    end: u64,
}

/// Serves a read from the tail cache: zero-copy slices of the appended chunks.
fn read_cache(st: &LogState, fetch_offset: i64, max_bytes: usize) -> Vec<Bytes> {
    let mut chunks = Vec::new();
    let mut total = 0usize;
    for entry in st.cache.iter().filter(|c| c.end_offset > fetch_offset && c.end_offset <= st.high_watermark) {
        let mut from = None;
        let mut to = 0;
        for (at, header) in batch::headers(&entry.bytes) {
            if header.last_offset() < fetch_offset {
                continue;
            }
            if total > 0 && total + header.size_bytes > max_bytes {
                break;
            }
            from.get_or_insert(at);
            to = at + header.size_bytes;
            total += header.size_bytes;
        }
        if let Some(from) = from {
            chunks.push(entry.bytes.slice(from..to));
        }
        if to < entry.bytes.len() && from.is_some() || total >= max_bytes {
            break;
        }
    }
    chunks
}

/// Serves a read from a segment file: one DMA read from the indexed position,
/// trimmed to whole batches holding `fetch_offset` and after.
async fn read_disk(plan: ReadPlan, fetch_offset: i64, max_bytes: usize) -> Result<Vec<Bytes>, StorageError> {
    let mut position = plan.position;
    loop {
        if position >= plan.end {
            return Ok(Vec::new());
        }
        let want = ((plan.end - position) as usize)
            .min(max_bytes.saturating_add(64 * 1024))
            .min(FETCH_READ_BYTES_PER_PARTITION_MAX);
        let read = plan.file.file.read_at(position, want).await.map_err(|e| StorageError::io("read segment", e))?;
        let mut from = None;
        let mut to = 0usize;
        let mut skipped_to = 0usize;
        let mut first_incomplete = None;
        let mut at = 0usize;
        while let Some(header) = BatchHeader::parse(&read[at..]) {
            if at + header.size_bytes > read.len() {
                if from.is_none() {
                    first_incomplete = Some(header.size_bytes);
                }
                break;
            }
            if header.last_offset() < fetch_offset {
                skipped_to = at + header.size_bytes;
            } else {
                if from.is_some() && to - from.unwrap_or(0) + header.size_bytes > max_bytes {
                    break;
                }
                from.get_or_insert(at);
                to = at + header.size_bytes;
            }
            at += header.size_bytes;
        }
        if let Some(from) = from {
            return Ok(vec![Bytes::copy_from_slice(&read[from..to])]);
        }
        if let Some(size) = first_incomplete {
            // The wanted batch is larger than what was read: read exactly it.
            let at = position + skipped_to as u64;
            if size > FETCH_READ_BYTES_PER_PARTITION_MAX || at + size as u64 > plan.end {
                return Err(StorageError::Corrupt(format!("{} at {at}", plan.file.log_path.display())));
            }
            let whole = plan.file.file.read_at(at, size).await.map_err(|e| StorageError::io("read segment", e))?;
            return Ok(vec![Bytes::copy_from_slice(&whole)]);
        }
        if skipped_to == 0 {
            return Err(StorageError::Corrupt(format!("{} at {position}", plan.file.log_path.display())));
        }
        position += skipped_to as u64;
    }
}

/// The writer task: drains pending appends into aligned writes, then one
/// fdatasync covers all of them; wakes acks and fetches as offsets become
/// written and durable.
async fn writer_loop(log: Rc<Log>, bell: LocalReceiver<()>) {
    let mut last_written: Option<Rc<SegmentFile>> = None;
    loop {
        let work: Vec<PendingWrite> = std::mem::take(&mut log.state.borrow_mut().pending);
        if work.is_empty() {
            if log.state.borrow().closing {
                return;
            }
            if bell.recv().await.is_none() {
                return;
            }
            continue;
        }
        if let Err(e) = write_and_sync(&log, work, &mut last_written).await {
            tracing::error!(dir = %log.dir.display(), error = %e, "partition write failed; refusing further writes");
            let mut st = log.state.borrow_mut();
            let reason = e.to_string();
            st.failed = Some(reason.clone());
            st.pending.clear();
            for w in st.waiters.drain(..) {
                let _ = w.done.send(Err(StorageError::Failed(reason.clone())));
            }
            return;
        }
    }
}

async fn write_and_sync(
    log: &Log,
    work: Vec<PendingWrite>,
    last_written: &mut Option<Rc<SegmentFile>>,
) -> Result<(), StorageError> {
    let mut start = 0;
    let mut synced_segments: Vec<(Rc<SegmentFile>, u64)> = Vec::new();
    while start < work.len() {
        let segment = work[start].segment.clone();
        let mut end = start;
        while end < work.len() && Rc::ptr_eq(&work[end].segment, &segment) {
            end += 1;
        }
        // Writes moving to a newer segment mean the previous one is sealed: finish it first.
        if let Some(previous) = last_written.take() {
            if !Rc::ptr_eq(&previous, &segment) {
                seal(log, &previous).await?;
            }
        }
        write_run(&segment, &work[start..end]).await?;
        *last_written = Some(segment.clone());
        synced_segments.push((segment, work[end - 1].end_position));
        start = end;
    }
    let written_to = work.last().expect("work is not empty").end_offset;
    resolve(log, written_to, AckLevel::Written);
    let (active, _) = synced_segments.last().expect("work is not empty");
    active.file.fdatasync().await.map_err(|e| StorageError::io("fdatasync", e))?;
    {
        let mut st = log.state.borrow_mut();
        for (file, end_position) in &synced_segments {
            if let Some(s) = st.segments.iter_mut().rev().find(|s| Rc::ptr_eq(&s.file, file)) {
                s.synced_bytes = *end_position;
            }
        }
        st.high_watermark = written_to;
        for w in st.watchers.drain(..) {
            let _ = w.send(());
        }
        while st.cache_bytes > TAIL_CACHE_BYTES_PER_PARTITION_MAX
            && st.cache.front().is_some_and(|c| c.end_offset <= st.high_watermark)
        {
            let evicted = st.cache.pop_front().expect("checked");
            st.cache_bytes -= evicted.bytes.len();
        }
    }
    resolve(log, written_to, AckLevel::Synced);
    Ok(())
}

/// Acknowledges waiters up to `offset` that needed no more than `level`.
fn resolve(log: &Log, offset: i64, level: AckLevel) {
    let mut st = log.state.borrow_mut();
    if level == AckLevel::Written {
        st.written_offset = offset;
    }
    let mut kept = VecDeque::with_capacity(st.waiters.len());
    while let Some(w) = st.waiters.pop_front() {
        let satisfied = w.end_offset <= offset && (w.level == AckLevel::Written || level == AckLevel::Synced);
        if satisfied {
            let _ = w.done.send(Ok(()));
        } else {
            kept.push_back(w);
        }
    }
    st.waiters = kept;
}

/// Writes consecutive chunks of one segment with one aligned O_DIRECT write
/// that begins with the partially filled block left by the previous write.
async fn write_run(segment: &SegmentFile, run: &[PendingWrite]) -> Result<(), StorageError> {
    let (block_start, block) = {
        let cursor = segment.cursor.borrow();
        (cursor.block_start, cursor.block.clone())
    };
    let data_len: usize = run.iter().map(|w| w.bytes.len()).sum();
    let logical_len = block.len() + data_len;
    assert_eq!(
        block_start + logical_len as u64,
        run.last().expect("run").end_position,
        "write must continue the segment"
    );
    let mut buf = segment.file.alloc_dma_buffer(align_up(logical_len as u64) as usize);
    {
        let out = buf.as_bytes_mut();
        out[..block.len()].copy_from_slice(&block);
        let mut at = block.len();
        for w in run {
            out[at..at + w.bytes.len()].copy_from_slice(&w.bytes);
            at += w.bytes.len();
        }
        out[at..].fill(0);
    }
    let end = block_start + logical_len as u64;
    let new_block_start = align_down(end);
    let new_block = buf.as_bytes()[(new_block_start - block_start) as usize..logical_len].to_vec();
    let expected = buf.len();
    let written = segment.file.write_at(buf, block_start).await.map_err(|e| StorageError::io("write segment", e))?;
    if written != expected {
        return Err(StorageError::Failed(format!("short write: {written} of {expected} bytes")));
    }
    *segment.cursor.borrow_mut() = super::segment::WriteCursor { block_start: new_block_start, block: new_block };
    Ok(())
}

/// Finishes a segment that takes no more appends: exact length, synced, indexes written.
async fn seal(log: &Log, segment: &Rc<SegmentFile>) -> Result<(), StorageError> {
    let end = segment.cursor.borrow().end();
    segment.file.truncate(end).await.map_err(|e| StorageError::io("truncate sealed segment", e))?;
    segment.file.fdatasync().await.map_err(|e| StorageError::io("fdatasync sealed segment", e))?;
    let indexes = {
        let st = log.state.borrow();
        st.segments.iter().find(|s| Rc::ptr_eq(&s.file, segment)).map(|s| (s.index.clone(), s.time_index.clone()))
    };
    if let Some((index, time_index)) = indexes {
        super::file::write_atomically(&segment.index_path(), index.as_bytes()).await?;
        super::file::write_atomically(&segment.time_index_path(), time_index.as_bytes()).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::{tests::batch, validate_chunk};

    fn run<F, Fut>(f: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        glommio::LocalExecutorBuilder::default().spawn(f).unwrap().join().unwrap();
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sluice-log-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    async fn open(dir: &Path, config: TopicConfig, clean: bool) -> Rc<Log> {
        Log::open(dir.to_path_buf(), config, clean).await.unwrap()
    }

    fn small_config() -> TopicConfig {
        TopicConfig { segment_bytes: 8192, index_interval_bytes: 256, ..TopicConfig::default() }
    }

    async fn append(log: &Log, records: i32, timestamp: i64) -> AppendOutcome {
        let chunk = batch(timestamp, records);
        let summaries = validate_chunk(&chunk, 1 << 20).unwrap();
        log.append(&chunk, &summaries, AckLevel::Synced).await.unwrap()
    }

    /// Every offset of the log reads back as the batch holding it.
    async fn check_reads(log: &Log, end: i64) {
        for offset in 0..end {
            let read = log.read(offset, 1 << 20, false).await.unwrap();
            let first = read.chunks.first().unwrap_or_else(|| panic!("no data at {offset}"));
            let header = BatchHeader::parse(first).unwrap();
            assert!(header.base_offset <= offset && offset <= header.last_offset(), "offset {offset}");
            assert!(batch::crc_matches(first, &header));
        }
    }

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

    #[test]
    fn torn_tail_is_cut_at_the_last_valid_batch() {
        run(|| async {
            let dir = temp_dir("torn");
            let log = open(&dir, TopicConfig::default(), false).await;
            for i in 0..5 {
                append(&log, 2, i).await;
            }
            log.close().await.unwrap();
            let path = dir.join("00000000000000000000.log");
            let good_len = std::fs::metadata(&path).unwrap().len();
            // Half a batch after the last whole one, as a crash mid-write leaves it.
            let mut torn = batch(99, 4);
            torn.truncate(torn.len() / 2);
            let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
            std::io::Write::write_all(&mut f, &torn).unwrap();
            drop(f);
            let log = open(&dir, TopicConfig::default(), false).await;
            assert_eq!(log.log_end_offset(), 10);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
            assert_eq!(append(&log, 1, 7).await.base_offset, 10);
            check_reads(&log, 11).await;
            log.close().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    /// A roll creates the next segment before the previous one's last writes
    /// land: a crash in between leaves that segment short and an empty one
    /// starting past its end. Recovery must not leave the gap.
    #[test]
    fn a_crash_between_a_roll_and_the_previous_segments_last_write_leaves_no_gap() {
        run(|| async {
            let dir = temp_dir("roll-crash");
            let log = open(&dir, TopicConfig::default(), false).await;
            for i in 0..5 {
                append(&log, 2, i).await;
            }
            log.close().await.unwrap();
            let path = dir.join("00000000000000000000.log");
            let len = std::fs::metadata(&path).unwrap().len();
            // The last batch (offsets 8-9) never reached the disk, but the
            // next segment (base 10) was created.
            let batch_len = batch(4, 2).len() as u64;
            std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - batch_len).unwrap();
            for name in ["00000000000000000000.index", "00000000000000000000.timeindex"] {
                let _ = std::fs::remove_file(dir.join(name));
            }
            std::fs::File::create(dir.join("00000000000000000010.log")).unwrap();
            let log = open(&dir, TopicConfig::default(), false).await;
            assert_eq!(log.log_end_offset(), 8, "the log ends where the data ends");
            assert!(!dir.join("00000000000000000010.log").exists(), "the empty segment past the gap is gone");
            assert_eq!(append(&log, 3, 7).await.base_offset, 8);
            check_reads(&log, 11).await;
            log.close().await.unwrap();
            let log = open(&dir, TopicConfig::default(), true).await;
            assert_eq!(log.log_end_offset(), 11);
            check_reads(&log, 11).await;
            log.close().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    fn flip_byte(path: &Path, at: u64) {
        use std::io::{Read, Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
        let mut b = [0u8; 1];
        f.seek(SeekFrom::Start(at)).unwrap();
        f.read_exact(&mut b).unwrap();
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&[b[0] ^ 0xff]).unwrap();
    }

    #[test]
    fn mid_log_corruption_is_reported_not_truncated() {
        run(|| async {
            let dir = temp_dir("corrupt");
            let log = open(&dir, TopicConfig::default(), false).await;
            for i in 0..50 {
                append(&log, 2, i).await;
            }
            log.close().await.unwrap();
            let path = dir.join("00000000000000000000.log");
            let len = std::fs::metadata(&path).unwrap().len();
            // Batch 25 of 50 (offsets 50 and 51): flip a byte of its records.
            let batch_len = len / 50;
            flip_byte(&path, 25 * batch_len + 70);
            let log = open(&dir, TopicConfig::default(), false).await;
            assert_eq!(std::fs::metadata(&path).unwrap().len(), len, "valid data after the bad batch is kept");
            check_reads(&log, 50).await;
            assert!(matches!(log.read(50, 1 << 20, false).await, Err(StorageError::Corrupt(_))));
            assert!(matches!(
                log.read(70, 1 << 20, false).await,
                Err(StorageError::Corrupt(_)) | Err(StorageError::OffsetOutOfRange { .. })
            ));
            let chunk = batch(1, 1);
            let summaries = validate_chunk(&chunk, 1 << 20).unwrap();
            assert!(matches!(
                log.append(&chunk, &summaries, AckLevel::Synced).await,
                Err(AppendError::Storage(StorageError::Failed(_)))
            ));
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    #[test]
    fn recovery_starts_at_the_recovery_point() {
        run(|| async {
            let dir = temp_dir("recovery-point");
            let log = open(&dir, small_config_large_segments(), false).await;
            for i in 0..300 {
                append(&log, 2, i).await;
            }
            log.maybe_checkpoint(1).await.unwrap();
            for i in 300..400 {
                append(&log, 2, i).await;
            }
            // A crash: no close. Damage a batch before the recovery point: a
            // scan from the recovery point does not read it again.
            let path = dir.join("00000000000000000000.log");
            let batch_len = std::fs::metadata(&path).unwrap().len() / 400;
            flip_byte(&path, 10 * batch_len + 70);
            let reopened = open(&dir, small_config_large_segments(), false).await;
            assert_eq!(reopened.log_end_offset(), 800);
            assert!(!reopened.read(700, 1 << 20, false).await.unwrap().chunks.is_empty());
            drop(log);
            reopened.close().await.unwrap();
            // Without a recovery point the whole segment is scanned and the damage is found.
            let rescanned = open(&dir, small_config_large_segments(), false).await;
            assert!(matches!(rescanned.read(60, 1 << 20, false).await, Err(StorageError::Corrupt(_))));
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    /// A transactional batch of `producer_id` (epoch 0) with sequences from `first_seq`.
    fn txn_batch(producer_id: i64, first_seq: i32, records: i32) -> Vec<u8> {
        let mut b = batch(1000, records);
        b[21..23].copy_from_slice(&0x10i16.to_be_bytes());
        b[43..51].copy_from_slice(&producer_id.to_be_bytes());
        b[51..53].copy_from_slice(&0i16.to_be_bytes());
        b[53..57].copy_from_slice(&first_seq.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn transactions_hold_back_read_committed_until_their_marker() {
        run(|| async {
            let dir = temp_dir("txn");
            let log = open(&dir, TopicConfig::default(), false).await;
            let chunk = txn_batch(5, 0, 2);
            let summaries = validate_chunk(&chunk, 1 << 20).unwrap();
            assert_eq!(log.append(&chunk, &summaries, AckLevel::Synced).await.unwrap().base_offset, 0);
            assert_eq!(append(&log, 3, 10).await.base_offset, 2);
            assert_eq!((log.high_watermark(), log.last_stable_offset()), (5, 0));
            let committed = log.read(0, 1 << 20, true).await.unwrap();
            assert!(committed.chunks.is_empty());
            assert_eq!(committed.last_stable_offset, 0);
            assert_eq!(log.read(0, 1 << 20, false).await.unwrap().bytes(), chunk.len() + batch(10, 3).len());

            assert_eq!(log.append_marker(5, 0, false, 0).await.unwrap(), Some(5));
            assert_eq!(log.append_marker(5, 0, false, 0).await.unwrap(), None, "nothing open: nothing written");
            assert_eq!((log.high_watermark(), log.last_stable_offset()), (6, 6));
            let read = log.read(0, 1 << 20, true).await.unwrap();
            assert_eq!(read.aborted, Some(vec![(5, 0)]));
            let last = batch::headers(read.chunks.last().unwrap()).last().unwrap().1;
            assert!(last.is_control());
            // The marker at 5 ends the aborted transaction: a read reaching it needs it.
            assert_eq!(log.read(2, 1 << 20, true).await.unwrap().aborted, Some(vec![(5, 0)]));
            assert_eq!(log.read(6, 1 << 20, true).await.unwrap().aborted, Some(vec![]));
            // A second transaction, committed.
            let chunk = txn_batch(5, 2, 1);
            let summaries = validate_chunk(&chunk, 1 << 20).unwrap();
            assert_eq!(log.append(&chunk, &summaries, AckLevel::Synced).await.unwrap().base_offset, 6);
            assert_eq!(log.last_stable_offset(), 6);
            // A partial read stops before the open transaction.
            let read = log.read(3, 1 << 20, true).await.unwrap();
            let last = batch::headers(read.chunks.last().unwrap()).last().unwrap().1;
            assert_eq!(last.base_offset, 5);
            assert_eq!(log.append_marker(5, 0, true, 0).await.unwrap(), Some(7));
            assert_eq!(log.last_stable_offset(), 8);
            assert!(matches!(log.append_marker(5, -1, true, 0).await, Err(AppendError::Producer(_))));
            // An open transaction survives a crash (no close) and a clean restart.
            let chunk = txn_batch(9, 0, 1);
            let summaries = validate_chunk(&chunk, 1 << 20).unwrap();
            log.append(&chunk, &summaries, AckLevel::Synced).await.unwrap();
            let reopened = open(&dir, TopicConfig::default(), false).await;
            assert_eq!((reopened.high_watermark(), reopened.last_stable_offset()), (9, 8));
            assert_eq!(reopened.read(0, 1 << 20, true).await.unwrap().aborted, Some(vec![(5, 0)]));
            drop(log);
            reopened.close().await.unwrap();
            let clean = open(&dir, TopicConfig::default(), true).await;
            assert_eq!(clean.last_stable_offset(), 8);
            assert_eq!(clean.read(0, 1 << 20, true).await.unwrap().aborted, Some(vec![(5, 0)]));
            assert_eq!(clean.append_marker(9, 0, true, 0).await.unwrap(), Some(9));
            assert_eq!(clean.last_stable_offset(), 10);
            clean.close().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    fn small_config_large_segments() -> TopicConfig {
        TopicConfig { index_interval_bytes: 256, ..TopicConfig::default() }
    }

    #[test]
    fn concurrent_appends_share_fsyncs_and_keep_order() {
        run(|| async {
            let dir = temp_dir("group");
            let log = open(&dir, TopicConfig::default(), false).await;
            let appends = (0..64).map(|i| append(&log, 1, i));
            let outcomes = futures::future::join_all(appends).await;
            let mut offsets: Vec<i64> = outcomes.iter().map(|o| o.base_offset).collect();
            offsets.sort_unstable();
            assert_eq!(offsets, (0..64).collect::<Vec<_>>());
            check_reads(&log, 64).await;
            log.close().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }
}
