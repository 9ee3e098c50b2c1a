//! Reads: from the tail cache (zero-copy slices of recently appended chunks)
//! when it reaches back to the fetch offset; else from the shard's batch cache
//! (what earlier disk reads brought, zero-copy slices of their DMA buffers);
//! else one disk read of at least `READ_AHEAD_BYTES`, planned from the offset
//! index and kept in the batch cache. A reader moving forward has the read
//! after the one it is in started for it (the read-ahead), so that sequential
//! consumers find their next batches in memory. Never past the high watermark,
//! nor past the last stable offset for read_committed. Fetches that found too
//! little wait on `watch`.

use std::collections::VecDeque;
use std::rc::Rc;

use bytes::Bytes;
use futures::channel::oneshot;
use futures::FutureExt;

use super::{Log, LogState};
use crate::batch_cache::{Cached, TailAccount};
use crate::dma_bytes;
use crate::metrics::IoMetrics;
use crate::segment::SegmentFile;
use crate::StorageError;
use sluice_core::constants::{FETCH_READ_BYTES_PER_PARTITION_MAX, READ_AHEAD_BYTES};
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
    /// Memory this entry holds: its bytes, plus for the last entry of a
    /// write the rest of the write's buffer (block padding, the partial
    /// block it began with), which goes when that entry goes.
    pub(super) charged_bytes: usize,
}

/// The chunks appended last, oldest first, as appended (headers patched).
/// Their bytes count in the shard's [`TailAccount`], which trims the tails of
/// the logs appended to least recently when the shard holds too much.
pub(super) struct TailCache {
    entries: VecDeque<CacheEntry>,
    bytes: usize,
    account: Rc<TailAccount>,
    /// The account's tick at the last append.
    last_append: u64,
}

impl TailCache {
    pub(super) fn new(account: Rc<TailAccount>) -> TailCache {
        TailCache { entries: VecDeque::new(), bytes: 0, account, last_append: 0 }
    }

    pub(super) fn push(&mut self, entry: CacheEntry) {
        self.bytes += entry.charged_bytes;
        self.account.grew(entry.charged_bytes);
        self.last_append = self.account.tick();
        self.entries.push_back(entry);
    }

    /// The account's tick at the last append, if anything is cached.
    pub(super) fn last_append(&self) -> Option<u64> {
        (!self.entries.is_empty()).then_some(self.last_append)
    }

    pub(super) fn bytes(&self) -> usize {
        self.bytes
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
        self.bytes -= gone.charged_bytes;
        self.account.shrank(gone.charged_bytes);
    }

    /// Zero-copy slices of the cached chunks: whole batches from the one
    /// holding `fetch_offset`, about `max_bytes` (the first batch always), synced only.
    fn read(&self, fetch_offset: i64, max_bytes: usize, high_watermark: i64) -> Vec<Bytes> {
        let mut chunks = Vec::new();
        let mut total = 0usize;
        for entry in self.entries.iter().filter(|c| c.end_offset > fetch_offset && c.end_offset <= high_watermark) {
            let (taken, whole) = take_batches(&entry.bytes, fetch_offset, high_watermark, max_bytes, &mut total);
            chunks.extend(taken);
            // A batch left out ends the read: what follows it would leave a hole.
            if !whole || total >= max_bytes {
                break;
            }
        }
        chunks
    }
}

impl Drop for TailCache {
    fn drop(&mut self) {
        self.account.shrank(self.bytes);
    }
}

/// Whole batches of `bytes` (whole batches themselves) from the one holding
/// `fetch_offset`, below `high_watermark`, while `total` stays within
/// `max_bytes` (but the first batch of a read always); adds what it took to
/// `total`. Also answers whether nothing after what it took was left out.
fn take_batches(
    bytes: &Bytes,
    fetch_offset: i64,
    high_watermark: i64,
    max_bytes: usize,
    total: &mut usize,
) -> (Option<Bytes>, bool) {
    let mut from = None;
    let mut to = 0;
    for (at, header) in batch::headers(bytes) {
        if header.last_offset() < fetch_offset {
            continue;
        }
        if header.last_offset() >= high_watermark || *total > 0 && *total + header.size_bytes > max_bytes {
            return (from.map(|from| bytes.slice(from..to)), false);
        }
        from.get_or_insert(at);
        to = at + header.size_bytes;
        *total += header.size_bytes;
    }
    (from.map(|from| bytes.slice(from..to)), true)
}

/// Where a disk read starts and how far it may go.
pub(super) struct ReadPlan {
    pub(super) file: Rc<SegmentFile>,
    /// Base offset of the segment.
    pub(super) segment_base: i64,
    pub(super) position: u64,
    /// Synced bytes of the segment: nothing past them is read.
    pub(super) end: u64,
}

impl ReadPlan {
    /// A read of segment `i` from `position`, if anything synced is there.
    fn of(st: &LogState, i: usize, position: u64) -> Option<ReadPlan> {
        let segment = st.segments.get(i)?;
        (position < segment.synced_bytes).then(|| ReadPlan {
            file: segment.file.clone(),
            segment_base: segment.base_offset(),
            position,
            end: segment.synced_bytes,
        })
    }

    /// A read from the indexed position at or before `offset`.
    fn at_offset(st: &LogState, offset: i64) -> Option<ReadPlan> {
        let i = st.segments.partition_point(|s| s.base_offset() <= offset).saturating_sub(1);
        let segment = st.segments.get(i)?;
        let relative = (offset - segment.base_offset()).clamp(0, u32::MAX as i64) as u32;
        ReadPlan::of(st, i, segment.index.lookup(relative) as u64)
    }

    /// A read from `position` of the segment based at `segment_base`, or from
    /// the start of the next segment when that one has nothing synced there
    /// and is sealed.
    fn after(st: &LogState, segment_base: i64, position: u64) -> Option<ReadPlan> {
        let i = st.segments.binary_search_by_key(&segment_base, |s| s.base_offset()).ok()?;
        if position < st.segments[i].synced_bytes {
            return ReadPlan::of(st, i, position);
        }
        if i + 1 < st.segments.len() && position >= st.segments[i].size_bytes {
            return ReadPlan::of(st, i + 1, 0);
        }
        None
    }
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
        self.read_below(fetch_offset, max_bytes, committed, false).await
    }

    /// As [`read`](Self::read), for a follower replica: up to what is
    /// written (the log end once the writer has it), not only below the
    /// high watermark, which moves once followers have the records.
    pub async fn read_replica(&self, fetch_offset: i64, max_bytes: usize) -> Result<ReadOutcome, StorageError> {
        self.read_below(fetch_offset, max_bytes, false, true).await
    }

    async fn read_below(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        committed: bool,
        replica: bool,
    ) -> Result<ReadOutcome, StorageError> {
        let mut outcome = self.read_uncommitted(fetch_offset, max_bytes, committed, replica).await?;
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
        replica: bool,
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
            let readable = if replica { st.written_offset } else { st.high_watermark };
            let upper = if committed { outcome.last_stable_offset } else { readable };
            if fetch_offset >= upper {
                return Ok(outcome);
            }
            if st.cache.reaches_back_to(fetch_offset) {
                outcome.chunks = st.cache.read(fetch_offset, max_bytes, readable);
                self.metrics.cache_reads.inc();
                return Ok(outcome);
            }
            (ReadPlan::at_offset(&st, fetch_offset), outcome)
        };
        // The bound below which batches are read: the high watermark, or for a replica what is written.
        let high_watermark = if replica { self.state.borrow().written_offset } else { outcome.high_watermark };
        let mut chunks = self.read_cached(fetch_offset, max_bytes, high_watermark);
        if chunks.is_empty() {
            // A read-ahead under way from at or before this offset: it is the read wanted.
            if let Some((from, done)) = self.batch_cache.pending(self.cache_key.get()) {
                if from <= fetch_offset {
                    done.await;
                    chunks = self.read_cached(fetch_offset, max_bytes, high_watermark);
                }
            }
        }
        if chunks.is_empty() {
            let key = self.cache_key.get();
            let mut plan = plan;
            let cached = loop {
                let Some(read) = plan else {
                    return Ok(outcome);
                };
                self.metrics.disk_reads.inc();
                let (segment_base, end) = (read.segment_base, read.end);
                match read_disk(read, fetch_offset, max_bytes, &self.metrics).await? {
                    Some(cached) => break cached,
                    // Compaction left no batch from the offset to the segment's end: the next segment's first.
                    None => plan = ReadPlan::after(&self.state.borrow(), segment_base, end),
                }
            };
            let mut total = 0;
            chunks.extend(take_batches(&cached.bytes, fetch_offset, high_watermark, max_bytes, &mut total).0);
            self.batch_cache.insert(key, cached);
        } else {
            self.metrics.batch_cache_reads.inc();
        }
        if let Some(next) = chunks.last().and_then(|c| batch::headers(c).last()).map(|(_, h)| h.last_offset() + 1) {
            self.read_ahead(next, high_watermark);
        }
        outcome.chunks = chunks;
        Ok(outcome)
    }

    /// Whole batches from the batch cache, from the one holding
    /// `fetch_offset`, across contiguous entries, about `max_bytes`.
    fn read_cached(&self, fetch_offset: i64, max_bytes: usize, high_watermark: i64) -> Vec<Bytes> {
        let key = self.cache_key.get();
        let mut chunks = Vec::new();
        let mut total = 0;
        let mut offset = fetch_offset;
        while let Some(cached) = self.batch_cache.get(key, offset) {
            let (taken, whole) = take_batches(&cached.bytes, offset, high_watermark, max_bytes, &mut total);
            let took = taken.is_some();
            chunks.extend(taken);
            // A batch left out ends the read: what follows it would leave a hole.
            if !took || !whole || total >= max_bytes {
                break;
            }
            offset = cached.end_offset;
        }
        chunks
    }

    /// Starts the read after the batch cache entry holding `next` (or of
    /// `next` itself when no entry holds it), unless it is cached, under way,
    /// or past what is synced.
    fn read_ahead(&self, next: i64, high_watermark: i64) {
        let key = self.cache_key.get();
        if next >= high_watermark || self.batch_cache.pending(key).is_some() {
            return;
        }
        let (from, plan) = {
            let st = self.state.borrow();
            match self.batch_cache.get(key, next) {
                Some(current) if current.end_offset >= high_watermark => return,
                Some(current) if self.batch_cache.get(key, current.end_offset).is_some() => return,
                Some(current) => (current.end_offset, ReadPlan::after(&st, current.segment_base, current.end_position)),
                None => (next, ReadPlan::at_offset(&st, next)),
            }
        };
        let Some(plan) = plan else { return };
        // What the tail cache holds is never read from disk.
        if self.state.borrow().cache.reaches_back_to(from) {
            return;
        }
        let cache = self.batch_cache.clone();
        let metrics = self.metrics.clone();
        let token = cache.next_token();
        let read = async move {
            metrics.read_ahead_reads.inc();
            match read_disk(plan, from, READ_AHEAD_BYTES, &metrics).await {
                Ok(Some(cached)) => cache.insert(key, cached),
                Ok(None) => {}
                // The fetch that reaches this offset reads it again and reports the error.
                Err(e) => tracing::debug!(error = %e, offset = from, "read-ahead failed"),
            }
            cache.end_pending(key, token);
        }
        .boxed_local()
        .shared();
        if self.batch_cache.start_pending(key, from, token, read.clone()) {
            glommio::spawn_local(read).detach();
        }
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

/// One DMA read from the planned position, of at least `READ_AHEAD_BYTES`
/// and enough for `max_bytes` from `fetch_offset`: the whole batches it
/// brought, from the one holding `fetch_offset`, as a batch cache entry over
/// the read's own buffer. None when every batch from the planned position to
/// the segment's synced end is before `fetch_offset`.
async fn read_disk(
    plan: ReadPlan,
    fetch_offset: i64,
    max_bytes: usize,
    metrics: &IoMetrics,
) -> Result<Option<Cached>, StorageError> {
    // Buffers last used on other shards come home before this one allocates.
    dma_bytes::release_returned();
    let mut position = plan.position;
    loop {
        if position >= plan.end {
            return Ok(None);
        }
        let want = ((plan.end - position) as usize)
            .min(max_bytes.saturating_add(64 * 1024).max(READ_AHEAD_BYTES))
            .min(FETCH_READ_BYTES_PER_PARTITION_MAX);
        let read = plan.file.file.read_at(position, want).await.map_err(|e| StorageError::io("read segment", e))?;
        metrics.read_bytes.add(read.len() as u64);
        let mut from = None;
        let mut to = 0usize;
        let mut skipped_to = 0usize;
        let mut first_incomplete = None;
        let mut first_offset = 0;
        let mut end_offset = 0;
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
                if from.is_none() {
                    first_offset = header.base_offset;
                }
                from.get_or_insert(at);
                to = at + header.size_bytes;
                end_offset = header.last_offset() + 1;
            }
            at += header.size_bytes;
        }
        if let Some(from) = from {
            let bytes = dma_bytes::bytes_of(read).slice(from..to);
            let end_position = position + to as u64;
            return Ok(Some(Cached { first_offset, end_offset, segment_base: plan.segment_base, end_position, bytes }));
        }
        if let Some(size) = first_incomplete {
            // The wanted batch is larger than what was read: read exactly it.
            let at = position + skipped_to as u64;
            if size > FETCH_READ_BYTES_PER_PARTITION_MAX || at + size as u64 > plan.end {
                return Err(StorageError::Corrupt(format!("{} at {at}", plan.file.log_path.display())));
            }
            let whole = plan.file.file.read_at(at, size).await.map_err(|e| StorageError::io("read segment", e))?;
            metrics.read_bytes.add(whole.len() as u64);
            let header = BatchHeader::parse(&whole)
                .filter(|h| h.size_bytes == whole.len())
                .ok_or_else(|| StorageError::Corrupt(format!("{} at {at}", plan.file.log_path.display())))?;
            return Ok(Some(Cached {
                first_offset: header.base_offset,
                end_offset: header.last_offset() + 1,
                segment_base: plan.segment_base,
                end_position: at + size as u64,
                bytes: dma_bytes::bytes_of(whole),
            }));
        }
        if skipped_to == 0 {
            return Err(StorageError::Corrupt(format!("{} at {position}", plan.file.log_path.display())));
        }
        position += skipped_to as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{append, check_reads, open, run, temp_dir};
    use super::*;
    use crate::batch_cache::BatchCache;
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
            log.drop_synced_tail();
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

    /// Reads from `offset` to the high watermark with `max_bytes` per read:
    /// every offset must come once, in order, with no hole.
    async fn read_sequentially(log: &Log, max_bytes: usize) -> i64 {
        let end = log.high_watermark();
        let mut next = 0;
        while next < end {
            let read = log.read(next, max_bytes, false).await.unwrap();
            assert!(!read.chunks.is_empty(), "nothing at {next} with max_bytes {max_bytes}");
            for chunk in &read.chunks {
                for (_, header) in batch::headers(chunk) {
                    assert!(
                        header.base_offset <= next && next <= header.last_offset(),
                        "batch {}..={} after offset {next} with max_bytes {max_bytes}",
                        header.base_offset,
                        header.last_offset()
                    );
                    next = header.last_offset() + 1;
                }
            }
        }
        next
    }

    #[test]
    fn a_sequential_reader_gets_every_offset_once_from_each_cache_and_the_disk() {
        run(|| async {
            let dir = temp_dir("sequential");
            let log = open(&dir, TopicConfig::default(), false).await;
            // Batches of 1 to 40 records, so that some never fit beside others.
            for i in 0..60 {
                append(&log, [1, 40, 2, 17, 5][i % 5], i as i64).await;
            }
            let end = log.high_watermark();
            for max_bytes in [1, 300, 700, 2000, 5000, 1 << 20] {
                // From the tail cache.
                assert_eq!(read_sequentially(&log, max_bytes).await, end);
            }
            log.drop_synced_tail();
            for max_bytes in [1, 300, 700, 2000, 5000, 1 << 20] {
                // From the disk, then from the batch cache it filled.
                log.batch_cache.forget(log.cache_key.get());
                assert_eq!(read_sequentially(&log, max_bytes).await, end);
                assert_eq!(read_sequentially(&log, max_bytes).await, end);
            }
            log.close().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    #[test]
    fn a_batch_too_large_for_max_bytes_ends_a_tail_read() {
        run(|| async {
            let dir = temp_dir("tail-hole");
            let log = open(&dir, TopicConfig::default(), false).await;
            let small = append(&log, 1, 0).await;
            append(&log, 40, 1).await;
            append(&log, 1, 2).await;
            let first = log.read(small.base_offset, 1, false).await.unwrap();
            let one_batch = first.bytes();
            // Room for two small batches, not for the large one between them.
            let read = log.read(0, one_batch * 2 + 1, false).await.unwrap();
            assert_eq!(read.chunks.iter().map(|c| batch::headers(c).count()).sum::<usize>(), 1);
            log.close().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    #[test]
    fn the_shard_keeps_its_tail_budget_by_trimming_the_partitions_appended_to_least_recently() {
        run(|| async {
            let dir = temp_dir("tail-budget");
            // Each append is its own write here, charged its whole buffer (one
            // or two 4 KiB blocks): room for six to twelve of them.
            let budget = 12 * 4096;
            let cache = Rc::new(BatchCache::new(1 << 20, budget));
            let mut logs = Vec::new();
            for i in 0..4 {
                let log =
                    Log::open(dir.join(i.to_string()), TopicConfig::default(), false, Rc::default(), cache.clone())
                        .await
                        .unwrap();
                logs.push(log);
            }
            // Five batches each, partition 0 first: partition 3 is the one appended to last.
            for log in &logs {
                for t in 0..5 {
                    append(log, 10, t).await;
                }
            }
            assert!(cache.tail_bytes() <= budget, "{} bytes over a budget of {budget}", cache.tail_bytes());
            assert_eq!(cache.tail_bytes(), logs.iter().map(|l| l.tail_bytes()).sum::<usize>());
            assert_eq!(logs[0].tail_bytes(), 0, "the coldest partition gave its tail up");
            assert!(logs[3].tail_bytes() >= 5 * 4096, "the hottest kept its tail");
            // A trimmed partition still reads every record, from disk.
            for log in &logs {
                check_reads(log, 50).await;
            }
            for log in &logs {
                log.close().await.unwrap();
            }
            drop(logs);
            assert_eq!(cache.tail_bytes(), 0, "closed logs hold nothing");
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    #[test]
    fn the_cache_keeps_unsynced_chunks_and_drops_what_retention_removed() {
        let entry = |base: i64, end: i64| CacheEntry {
            base_offset: base,
            end_offset: end,
            bytes: Bytes::from(vec![0; 10]),
            charged_bytes: 10,
        };
        let account = Rc::new(TailAccount::default());
        let mut cache = TailCache::new(account.clone());
        for base in 0..5 {
            cache.push(entry(base * 2, base * 2 + 2));
        }
        assert_eq!(account.bytes(), 50);
        cache.evict_synced(4, 0);
        assert!(!cache.reaches_back_to(3) && cache.reaches_back_to(4), "only synced chunks are evicted");
        assert_eq!((cache.bytes, account.bytes()), (30, 30));
        cache.drop_below(8);
        assert!(cache.reaches_back_to(8) && !cache.reaches_back_to(7));
        assert_eq!((cache.bytes, account.bytes()), (10, 10));
        drop(cache);
        assert_eq!(account.bytes(), 0, "a closed log's tail leaves the account");
    }
}
