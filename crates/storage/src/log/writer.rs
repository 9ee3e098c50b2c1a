//! The writer task: drains pending appends into aligned O_DIRECT writes, then
//! one fdatasync covers all of them (group commit); acks and fetch watchers
//! are woken as offsets become written and durable. Only this task writes
//! segment files, and it seals a segment (exact length, synced, indexes
//! written) before writing the next one.
//!
//! Write caching: a topic that sets Kafka's `flush.messages` (above 1) or
//! `flush.ms` (above 0) asks for Kafka's semantics instead of Sluice's
//! default: acks=all is answered, and consumers see the records, once they
//! are written (not yet synced), and the log is synced once that many
//! messages are unsynced or the oldest unsynced write is that old, whichever
//! comes first (and at every segment roll and close). A crash may lose what
//! was acknowledged and not yet synced.

use std::collections::VecDeque;
use std::rc::Rc;

use bytes::Bytes;
use futures::channel::oneshot;
use glommio::channels::local_channel::LocalReceiver;

use super::read::CacheEntry;
use super::{AckLevel, Log, LogState};
use crate::segment::{align_down, align_up, SegmentFile, WriteCursor};
use crate::StorageError;
use sluice_core::config::TopicConfig;
use sluice_core::constants::TAIL_CACHE_BYTES_PER_PARTITION_MAX;
use sluice_protocol::batch;

/// An append waiting for the writer: its batches as the producer sent them
/// (a slice of the request, not copied), patched as they are copied into the
/// write's DMA buffer, which then serves tail reads.
pub(super) struct PendingWrite {
    pub(super) segment: Rc<SegmentFile>,
    pub(super) chunk: Bytes,
    /// Each batch's position in `chunk` and the base offset it was given.
    pub(super) batches: Vec<(usize, i64)>,
    /// The leader epoch stamped into each batch; `None` for a follower's
    /// append, whose batches keep the leader's offsets and epochs as sent.
    pub(super) leader_epoch: Option<i32>,
    /// A `LogAppendTime` topic's timestamp for every batch.
    pub(super) log_append_time_ms: Option<i64>,
    /// Position in the segment just after these bytes.
    pub(super) end_position: u64,
    /// Offset just after these bytes.
    pub(super) end_offset: i64,
}

impl PendingWrite {
    fn base_offset(&self) -> i64 {
        self.batches.first().expect("an append has batches").1
    }

    /// Copies the chunk into `out` (as long as it), patching each batch's
    /// offset and leader epoch, and its timestamp (and CRC) for `LogAppendTime`.
    fn copy_patched(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.chunk);
        let Some(leader_epoch) = self.leader_epoch else {
            return;
        };
        for &(position, base_offset) in &self.batches {
            let batch = &mut out[position..];
            batch::patch_offset_and_epoch(batch, base_offset, leader_epoch);
            if let Some(timestamp_ms) = self.log_append_time_ms {
                batch::patch_log_append_time(batch, timestamp_ms);
            }
        }
    }
}

/// An append waiting until its last offset is as durable as it asked.
pub(super) struct AckWaiter {
    end_offset: i64,
    level: AckLevel,
    done: oneshot::Sender<Result<(), StorageError>>,
}

/// Answers the waiters for the high watermark (acks=all) with `error`; the
/// others wait on.
pub(super) fn release_synced_waiters(st: &mut LogState, error: StorageError) {
    let waiters = std::mem::take(&mut st.waiters);
    for waiter in waiters {
        if waiter.level == AckLevel::Synced {
            let _ = waiter.done.send(Err(error.clone()));
        } else {
            st.waiters.push_back(waiter);
        }
    }
}

/// Queues a waiter released once offsets below `end_offset` reach `level`.
pub(super) fn wait_for(
    st: &mut LogState,
    end_offset: i64,
    level: AckLevel,
) -> oneshot::Receiver<Result<(), StorageError>> {
    assert!(level != AckLevel::None, "acks=0 is not waited for");
    let (done, wait) = oneshot::channel();
    st.waiters.push_back(AckWaiter { end_offset, level, done });
    wait
}

/// When a write-caching topic syncs: after `messages` unsynced messages, or
/// once the oldest unsynced write is `after` old.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SyncBound {
    messages: i64,
    after: Option<std::time::Duration>,
}

/// The sync bound of a topic with write caching (`flush.messages` above 1 or
/// `flush.ms` above 0, either set); None for Sluice's default, where every
/// write is synced before it is acknowledged.
pub(super) fn write_caching(config: &TopicConfig) -> Option<SyncBound> {
    let messages = config.flush_messages;
    let ms = config.flush_ms;
    let cached = (messages != i64::MAX || ms != i64::MAX) && messages > 1 && ms > 0;
    cached.then(|| SyncBound { messages, after: (ms != i64::MAX).then(|| std::time::Duration::from_millis(ms as u64)) })
}

/// Written and acknowledged, not yet synced (write caching).
struct Unsynced {
    /// When the oldest of these writes was made.
    since: std::time::Instant,
    /// The first offset not synced.
    from_offset: i64,
    /// The offset after the last written.
    to_offset: i64,
    /// Segments written, with the position their writes reached.
    segments: Vec<(Rc<SegmentFile>, u64)>,
    /// Appends written.
    appends: u64,
}

/// The writer task of `log`: runs until the log closes or a write fails.
pub(super) async fn writer_loop(log: Rc<Log>, bell: LocalReceiver<()>) {
    let mut last_written: Option<Rc<SegmentFile>> = None;
    let mut unsynced: Option<Unsynced> = None;
    loop {
        let work: Vec<PendingWrite> = std::mem::take(&mut log.state.borrow_mut().pending);
        let done = if work.is_empty() {
            let (closing, bound) = {
                let st = log.state.borrow();
                (st.closing, write_caching(&st.config))
            };
            // When what is written but unsynced must be synced, if ever without more writes.
            let sync_at = match (&unsynced, bound) {
                (None, _) => None,
                // Closing, or the topic no longer caches writes: now.
                (Some(_), _) if closing => Some(std::time::Instant::now()),
                (Some(_), None) => Some(std::time::Instant::now()),
                (Some(u), Some(bound)) => bound.after.map(|after| u.since + after),
            };
            match sync_at {
                Some(at) if at <= std::time::Instant::now() => {
                    let written = unsynced.take().expect("unsynced writes");
                    let synced = sync(&log, written).await;
                    if synced.is_ok() && closing {
                        return;
                    }
                    synced
                }
                _ if closing => return,
                Some(at) => {
                    let timer = glommio::timer::sleep(at.saturating_duration_since(std::time::Instant::now()));
                    futures::pin_mut!(timer);
                    if let futures::future::Either::Left((None, _)) =
                        futures::future::select(Box::pin(bell.recv()), timer).await
                    {
                        return;
                    }
                    continue;
                }
                None => {
                    if bell.recv().await.is_none() {
                        return;
                    }
                    continue;
                }
            }
        } else {
            write_and_sync(&log, work, &mut last_written, &mut unsynced).await
        };
        if let Err(e) = done {
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

/// Writes `work`; then, unless the topic caches writes and its bound is not
/// reached, syncs everything written so far.
async fn write_and_sync(
    log: &Log,
    work: Vec<PendingWrite>,
    last_written: &mut Option<Rc<SegmentFile>>,
    unsynced: &mut Option<Unsynced>,
) -> Result<(), StorageError> {
    let mut start = 0;
    let written = unsynced.get_or_insert_with(|| Unsynced {
        since: std::time::Instant::now(),
        from_offset: log.state.borrow().synced_offset,
        to_offset: 0,
        segments: Vec::new(),
        appends: 0,
    });
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
        let write_started = std::time::Instant::now();
        let (bytes, written_chunks) = write_run(&segment, &work[start..end]).await?;
        log.metrics.write_us.record_duration(write_started.elapsed());
        log.metrics.write_bytes.add(bytes as u64);
        // The written bytes serve tail reads from here (readable once the high watermark passes them).
        let mut st = log.state.borrow_mut();
        let mut at = 0;
        for (i, w) in work[start..end].iter().enumerate() {
            let chunk = written_chunks.slice(at..at + w.chunk.len());
            at += w.chunk.len();
            let rest_of_buffer = if start + i + 1 == end { bytes - written_chunks.len() } else { 0 };
            let charged_bytes = chunk.len() + rest_of_buffer;
            st.cache.push(CacheEntry {
                base_offset: w.base_offset(),
                end_offset: w.end_offset,
                bytes: chunk,
                charged_bytes,
            });
        }
        drop(st);
        *last_written = Some(segment.clone());
        let reached = work[end - 1].end_position;
        match written.segments.iter_mut().find(|(file, _)| Rc::ptr_eq(file, &segment)) {
            Some((_, position)) => *position = reached,
            None => written.segments.push((segment, reached)),
        }
        start = end;
    }
    let written_to = work.last().expect("work is not empty").end_offset;
    written.to_offset = written_to;
    written.appends += work.len() as u64;
    log.state.borrow_mut().written_offset = written_to;
    wake_end_watchers(log);
    let bound = write_caching(&log.state.borrow().config);
    if let Some(bound) = bound {
        // Acknowledged and visible now; synced within the bound.
        advance_high_watermark(log, written_to);
        let due = written_to - written.from_offset >= bound.messages
            || bound.after.is_some_and(|after| written.since.elapsed() >= after);
        if !due {
            return Ok(());
        }
    }
    let written = unsynced.take().expect("set above");
    sync(log, written).await
}

/// Syncs what was written: one fdatasync of the active segment (the ones
/// before it were synced when sealed), then the high watermark moves and
/// acks=all waiters are answered.
async fn sync(log: &Log, written: Unsynced) -> Result<(), StorageError> {
    let Some((active, _)) = written.segments.last() else {
        return Ok(());
    };
    let sync_started = std::time::Instant::now();
    active.file.fdatasync().await.map_err(|e| StorageError::io("fdatasync", e))?;
    log.metrics.sync_us.record_duration(sync_started.elapsed());
    log.metrics.sync_batch_appends.record(written.appends);
    {
        let mut st = log.state.borrow_mut();
        for (file, end_position) in &written.segments {
            if let Some(s) = st.segments.iter_mut().rev().find(|s| Rc::ptr_eq(&s.file, file)) {
                s.synced_bytes = *end_position;
            }
        }
        st.synced_offset = written.to_offset;
        let synced = st.synced_offset;
        st.cache.evict_synced(synced, TAIL_CACHE_BYTES_PER_PARTITION_MAX);
    }
    log.batch_cache.trim_tails();
    advance_high_watermark(log, written.to_offset);
    Ok(())
}

/// Moves the high watermark up to `offset`, or as far towards it as the
/// replicas allow (never back), wakes fetches waiting for it and answers
/// the appends it satisfies.
pub(super) fn advance_high_watermark(log: &Log, offset: i64) {
    let mut st = log.state.borrow_mut();
    let offset = st.high_watermark_limit.map_or(offset, |limit| limit.min(offset));
    if offset > st.high_watermark {
        st.high_watermark = offset;
        for w in st.watchers.drain(..) {
            let _ = w.send(());
        }
    }
    drop(st);
    resolve(log);
}

/// Wakes replica fetches waiting for the log end to move.
fn wake_end_watchers(log: &Log) {
    let mut st = log.state.borrow_mut();
    for w in st.end_watchers.drain(..) {
        let _ = w.send(());
    }
    drop(st);
    resolve(log);
}

/// Answers the appends whose last offset reached the level they asked for.
fn resolve(log: &Log) {
    let mut st = log.state.borrow_mut();
    let (written, synced, high_watermark) = (st.written_offset, st.synced_offset, st.high_watermark);
    let mut kept = VecDeque::with_capacity(st.waiters.len());
    while let Some(w) = st.waiters.pop_front() {
        let reached = match w.level {
            AckLevel::Written => written,
            AckLevel::Durable => synced,
            AckLevel::Synced => high_watermark,
            AckLevel::None => i64::MAX,
        };
        if w.end_offset <= reached {
            let _ = w.done.send(Ok(()));
        } else {
            kept.push_back(w);
        }
    }
    st.waiters = kept;
}

/// Writes consecutive chunks of one segment with one aligned O_DIRECT write
/// that begins with the partially filled block left by the previous write,
/// patching the chunks' batch headers as they are copied in. Returns the
/// bytes written (whole blocks) and the chunks as written, one after the
/// other: a view of the write's own buffer, not a copy.
async fn write_run(segment: &SegmentFile, run: &[PendingWrite]) -> Result<(usize, Bytes), StorageError> {
    // Buffers last used on other shards come home before this one allocates.
    crate::dma_bytes::release_returned();
    let (block_start, block) = {
        let cursor = segment.cursor.borrow();
        (cursor.block_start, cursor.block.clone())
    };
    let data_len: usize = run.iter().map(|w| w.chunk.len()).sum();
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
            w.copy_patched(&mut out[at..at + w.chunk.len()]);
            at += w.chunk.len();
        }
        out[at..].fill(0);
    }
    let end = block_start + logical_len as u64;
    let new_block_start = align_down(end);
    let new_block = buf.as_bytes()[(new_block_start - block_start) as usize..logical_len].to_vec();
    let expected = buf.len();
    let buf = Rc::new(buf);
    let written =
        segment.file.write_rc_at(buf.clone(), block_start).await.map_err(|e| StorageError::io("write segment", e))?;
    if written != expected {
        return Err(StorageError::Failed(format!("short write: {written} of {expected} bytes")));
    }
    *segment.cursor.borrow_mut() = WriteCursor { block_start: new_block_start, block: new_block };
    Ok((written, crate::dma_bytes::bytes_of_written(buf).slice(block.len()..logical_len)))
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
        crate::file::write_atomically(&segment.index_path(), index.as_bytes()).await?;
        crate::file::write_atomically(&segment.time_index_path(), time_index.as_bytes()).await?;
    }
    let mut st = log.state.borrow_mut();
    if let Some(s) = st.segments.iter_mut().find(|s| Rc::ptr_eq(&s.file, segment)) {
        s.sealed = true;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{append, check_reads, open, run, temp_dir};
    use super::*;
    use sluice_core::config::TopicConfig;

    fn config(overrides: &[(&str, &str)]) -> TopicConfig {
        TopicConfig::default().with_overrides(overrides.iter().copied()).unwrap()
    }

    #[test]
    fn only_flush_settings_that_allow_an_unsynced_write_cache_writes() {
        assert_eq!(write_caching(&TopicConfig::default()), None, "Sluice's default: synced before acknowledged");
        assert_eq!(write_caching(&config(&[("flush.messages", "1")])), None, "every message synced");
        assert_eq!(write_caching(&config(&[("flush.ms", "0")])), None, "synced at once");
        assert_eq!(write_caching(&config(&[("flush.messages", "1"), ("flush.ms", "100")])), None);
        assert_eq!(
            write_caching(&config(&[("flush.ms", "100")])),
            Some(SyncBound { messages: i64::MAX, after: Some(std::time::Duration::from_millis(100)) })
        );
        assert_eq!(
            write_caching(&config(&[("flush.messages", "1000")])),
            Some(SyncBound { messages: 1000, after: None })
        );
    }

    fn synced_offset(log: &Log) -> i64 {
        log.state.borrow().synced_offset
    }

    /// Waits (up to a second) for the sync that an acknowledged write started.
    async fn synced_soon(log: &Log) -> i64 {
        for _ in 0..100 {
            if synced_offset(log) == log.high_watermark() {
                break;
            }
            glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
        }
        synced_offset(log)
    }

    #[test]
    fn a_caching_topic_acknowledges_before_syncing_and_syncs_within_flush_ms() {
        run(|| async {
            let dir = temp_dir("caching-ms");
            let log = open(&dir, config(&[("flush.ms", "300")]), false).await;
            append(&log, 2, 0).await;
            append(&log, 3, 1).await;
            // Acknowledged (acks=all) and readable, not yet synced.
            glommio::timer::sleep(std::time::Duration::from_millis(50)).await;
            assert_eq!((log.high_watermark(), synced_offset(&log)), (5, 0));
            check_reads(&log, 5).await;
            glommio::timer::sleep(std::time::Duration::from_millis(600)).await;
            assert_eq!(synced_offset(&log), 5, "synced within flush.ms");
            assert_eq!(log.state.borrow().segments[0].synced_bytes, log.state.borrow().segments[0].size_bytes);
            log.close().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    #[test]
    fn a_caching_topic_syncs_after_flush_messages_and_at_close() {
        run(|| async {
            let dir = temp_dir("caching-messages");
            let log = open(&dir, config(&[("flush.messages", "5")]), false).await;
            for i in 0..4 {
                append(&log, 1, i).await;
            }
            // Idle, yet not synced: only flush.messages bounds this topic.
            glommio::timer::sleep(std::time::Duration::from_millis(100)).await;
            assert_eq!((log.high_watermark(), synced_offset(&log)), (4, 0));
            append(&log, 1, 4).await;
            assert_eq!(synced_soon(&log).await, 5, "the fifth message made it sync");
            append(&log, 2, 5).await;
            assert_eq!((log.high_watermark(), synced_offset(&log)), (7, 5));
            // Sluice's default again: the next write is synced before it is acknowledged.
            log.set_config(TopicConfig::default());
            append(&log, 1, 6).await;
            assert_eq!((log.high_watermark(), synced_offset(&log)), (8, 8));
            log.set_config(config(&[("flush.messages", "100")]));
            append(&log, 1, 7).await;
            assert_eq!(synced_offset(&log), 8);
            log.close().await.unwrap();
            // The close synced it: all there after a clean reopen.
            let log = open(&dir, TopicConfig::default(), true).await;
            assert_eq!(log.log_end_offset(), 9);
            check_reads(&log, 9).await;
            log.close().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
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
