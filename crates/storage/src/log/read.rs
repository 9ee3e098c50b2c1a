//! Reads: from the tail cache (zero-copy slices of recently appended chunks)
//! when it reaches back to the fetch offset, else one disk read planned from
//! the offset index; never past the high watermark, nor past the last stable
//! offset for read_committed. Fetches that found too little wait on `watch`.

use std::collections::VecDeque;
use std::rc::Rc;

use bytes::Bytes;
use futures::channel::oneshot;

use super::{Log, LogState};
use crate::segment::SegmentFile;
use crate::StorageError;
use sluice_core::constants::FETCH_READ_BYTES_PER_PARTITION_MAX;
use sluice_protocol::batch::{self, BatchHeader};

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

/// Recently appended bytes, kept to serve consumers at the tail without disk reads.
pub(super) struct CacheEntry {
    pub(super) base_offset: i64,
    pub(super) end_offset: i64,
    pub(super) bytes: Bytes,
}

/// The chunks appended last, oldest first, as appended (headers patched).
#[derive(Default)]
pub(super) struct TailCache {
    entries: VecDeque<CacheEntry>,
    bytes: usize,
}

impl TailCache {
    pub(super) fn push(&mut self, entry: CacheEntry) {
        self.bytes += entry.bytes.len();
        self.entries.push_back(entry);
    }

    /// Whether the oldest cached chunk starts at or below `offset`.
    fn reaches_back_to(&self, offset: i64) -> bool {
        self.entries.front().is_some_and(|c| c.base_offset <= offset)
    }

    /// Drops the oldest synced chunks while more than `bytes_max` are cached.
    pub(super) fn evict_synced(&mut self, high_watermark: i64, bytes_max: usize) {
        while self.bytes > bytes_max && self.entries.front().is_some_and(|c| c.end_offset <= high_watermark) {
            self.pop_front();
        }
    }

    /// Drops the chunks wholly below the log start offset.
    pub(super) fn drop_below(&mut self, log_start_offset: i64) {
        while self.entries.front().is_some_and(|c| c.end_offset <= log_start_offset) {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        let gone = self.entries.pop_front().expect("checked by the caller");
        self.bytes -= gone.bytes.len();
    }

    /// Zero-copy slices of the cached chunks: whole batches from the one
    /// holding `fetch_offset`, about `max_bytes` (the first batch always), synced only.
    fn read(&self, fetch_offset: i64, max_bytes: usize, high_watermark: i64) -> Vec<Bytes> {
        let mut chunks = Vec::new();
        let mut total = 0usize;
        for entry in self.entries.iter().filter(|c| c.end_offset > fetch_offset && c.end_offset <= high_watermark) {
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
}

/// Where a disk read starts and how far it may go.
pub(super) struct ReadPlan {
    pub(super) file: Rc<SegmentFile>,
    pub(super) position: u64,
    /// Synced bytes of the segment: nothing past them is read.
    pub(super) end: u64,
}

pub(super) fn last_stable(st: &LogState) -> i64 {
    st.producers.first_unstable_offset().map_or(st.high_watermark, |first| first.min(st.high_watermark))
}

impl Log {
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
            if st.cache.reaches_back_to(fetch_offset) {
                outcome.chunks = st.cache.read(fetch_offset, max_bytes, st.high_watermark);
                self.metrics.cache_reads.inc();
                return Ok(outcome);
            }
            let i = st.segments.partition_point(|s| s.base_offset() <= fetch_offset).saturating_sub(1);
            let segment = &st.segments[i];
            let relative = (fetch_offset - segment.base_offset()).clamp(0, u32::MAX as i64) as u32;
            let position = segment.index.lookup(relative) as u64;
            (ReadPlan { file: segment.file.clone(), position, end: segment.synced_bytes }, outcome)
        };
        self.metrics.disk_reads.inc();
        outcome.chunks = read_disk(plan, fetch_offset, max_bytes, &self.metrics.read_bytes).await?;
        Ok(outcome)
    }
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

/// Serves a read from a segment file: one DMA read from the indexed position,
/// trimmed to whole batches holding `fetch_offset` and after.
async fn read_disk(
    plan: ReadPlan,
    fetch_offset: i64,
    max_bytes: usize,
    read_bytes: &sluice_core::metrics::Counter,
) -> Result<Vec<Bytes>, StorageError> {
    let mut position = plan.position;
    loop {
        if position >= plan.end {
            return Ok(Vec::new());
        }
        let want = ((plan.end - position) as usize)
            .min(max_bytes.saturating_add(64 * 1024))
            .min(FETCH_READ_BYTES_PER_PARTITION_MAX);
        let read = plan.file.file.read_at(position, want).await.map_err(|e| StorageError::io("read segment", e))?;
        read_bytes.add(read.len() as u64);
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
            read_bytes.add(whole.len() as u64);
            return Ok(vec![Bytes::copy_from_slice(&whole)]);
        }
        if skipped_to == 0 {
            return Err(StorageError::Corrupt(format!("{} at {position}", plan.file.log_path.display())));
        }
        position += skipped_to as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{append, open, run, temp_dir};
    use super::*;
    use sluice_core::config::TopicConfig;

    #[test]
    fn tail_reads_are_slices_of_the_appended_chunks_and_disk_reads_match_them() {
        run(|| async {
            let dir = temp_dir("tail");
            let log = open(&dir, TopicConfig::default(), false).await;
            for i in 0..10 {
                append(&log, 2, i).await;
            }
            let cached = log.read(4, 1 << 20, false).await.unwrap();
            let first = BatchHeader::parse(&cached.chunks[0]).unwrap();
            assert_eq!(
                (first.base_offset, cached.chunks.iter().map(|c| batch::headers(c).count()).sum::<usize>()),
                (4, 8)
            );
            // The same bytes from disk once the cache no longer reaches back.
            log.state.borrow_mut().cache = TailCache::default();
            let disk = log.read(4, 1 << 20, false).await.unwrap();
            assert_eq!(disk.chunks.concat(), cached.chunks.concat());
            // A small max_bytes still returns the first batch whole, and only it.
            let one = log.read(5, 1, false).await.unwrap();
            assert_eq!(batch::headers(&one.chunks[0]).count(), 1);
            assert_eq!(BatchHeader::parse(&one.chunks[0]).unwrap().base_offset, 4);
            log.close().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    #[test]
    fn the_cache_keeps_unsynced_chunks_and_drops_what_retention_removed() {
        let entry =
            |base: i64, end: i64| CacheEntry { base_offset: base, end_offset: end, bytes: Bytes::from(vec![0; 10]) };
        let mut cache = TailCache::default();
        for base in 0..5 {
            cache.push(entry(base * 2, base * 2 + 2));
        }
        cache.evict_synced(4, 0);
        assert!(!cache.reaches_back_to(3) && cache.reaches_back_to(4), "only synced chunks are evicted");
        assert_eq!(cache.bytes, 30);
        cache.drop_below(8);
        assert!(cache.reaches_back_to(8) && !cache.reaches_back_to(7));
        assert_eq!(cache.bytes, 10);
    }
}
