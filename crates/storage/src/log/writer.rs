//! The writer task: drains pending appends into aligned O_DIRECT writes, then
//! one fdatasync covers all of them (group commit); acks and fetch watchers
//! are woken as offsets become written and durable. Only this task writes
//! segment files, and it seals a segment (exact length, synced, indexes
//! written) before writing the next one.

use std::collections::VecDeque;
use std::rc::Rc;

use bytes::Bytes;
use futures::channel::oneshot;
use glommio::channels::local_channel::LocalReceiver;

use super::{AckLevel, Log, LogState};
use crate::segment::{align_down, align_up, SegmentFile, WriteCursor};
use crate::StorageError;
use sluice_core::constants::TAIL_CACHE_BYTES_PER_PARTITION_MAX;

/// Appended bytes waiting for the writer.
pub(super) struct PendingWrite {
    pub(super) segment: Rc<SegmentFile>,
    pub(super) bytes: Bytes,
    /// Position in the segment just after these bytes.
    pub(super) end_position: u64,
    /// Offset just after these bytes.
    pub(super) end_offset: i64,
}

/// An append waiting until its last offset is as durable as it asked.
pub(super) struct AckWaiter {
    end_offset: i64,
    level: AckLevel,
    done: oneshot::Sender<Result<(), StorageError>>,
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

/// The writer task of `log`: runs until the log closes or a write fails.
pub(super) async fn writer_loop(log: Rc<Log>, bell: LocalReceiver<()>) {
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
        let bytes = write_run(&segment, &work[start..end]).await?;
        log.metrics.write_bytes.add(bytes as u64);
        *last_written = Some(segment.clone());
        synced_segments.push((segment, work[end - 1].end_position));
        start = end;
    }
    let written_to = work.last().expect("work is not empty").end_offset;
    resolve(log, written_to, AckLevel::Written);
    let (active, _) = synced_segments.last().expect("work is not empty");
    let sync_started = std::time::Instant::now();
    active.file.fdatasync().await.map_err(|e| StorageError::io("fdatasync", e))?;
    log.metrics.sync_us.record_duration(sync_started.elapsed());
    log.metrics.sync_batch_appends.record(work.len() as u64);
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
        let high_watermark = st.high_watermark;
        st.cache.evict_synced(high_watermark, TAIL_CACHE_BYTES_PER_PARTITION_MAX);
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
/// Returns the bytes written (whole blocks).
async fn write_run(segment: &SegmentFile, run: &[PendingWrite]) -> Result<usize, StorageError> {
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
    *segment.cursor.borrow_mut() = WriteCursor { block_start: new_block_start, block: new_block };
    Ok(written)
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
    use sluice_core::config::TopicConfig;

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
