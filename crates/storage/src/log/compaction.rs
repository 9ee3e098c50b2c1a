//! Log compaction of one partition (`cleanup.policy=compact`), driven by the
//! shard's cleaner (`crate::cleaner`): how dirty the log is, and one
//! cleaning pass.
//!
//! A pass:
//! 1. The dirty section runs from the cleaner checkpoint (`cleaner-checkpoint`,
//!    the first offset not yet cleaned) to the first uncleanable offset: the
//!    active segment's base, the last stable offset, and the first segment
//!    newer than `min.compaction.lag.ms`, whichever comes first.
//! 2. Its keys go into the key map with their latest offsets (records of
//!    aborted transactions and markers excluded), batch by batch until the
//!    map is full; the map's end is the next checkpoint.
//! 3. Closed segments from the start up to the map's end are rewritten in
//!    groups of at most `segment.bytes` (see `cleaner::filter` for what is
//!    kept), each group into one new segment swapped in crash-safely (see
//!    `cleaner::swap`). Each group's last batch is kept, at least empty, so a
//!    segment still ends where it did and offsets are never reused.
//! 4. The checkpoint moves to the map's end.
//!
//! The log's state changes only at a swap, on the shard's thread. While a
//! swap runs retention leaves files alone; a log that closes stops the pass.

use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use glommio::io::{DmaFile, ReadResult};

use super::{Log, LogState};
use crate::cleaner::filter::{ActiveProducer, BatchFilter, Verdict};
use crate::cleaner::offset_map::OffsetMap;
use crate::cleaner::swap;
use crate::cleaner::throttle::Throttle;
use crate::segment::{align_down, align_up, Segment, SegmentFile, WriteCursor};
use crate::{file, StorageError};
use sluice_core::constants::{DMA_ALIGNMENT_BYTES, LINE_FILE_BYTES_MAX};
use sluice_protocol::batch::BatchHeader;
use sluice_protocol::records;

/// The file holding the first offset not yet cleaned.
const CLEANER_CHECKPOINT_FILE: &str = "cleaner-checkpoint";

/// Where a compacted log stands, for choosing which log to clean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cleanable {
    /// Dirty bytes over all bytes of the closed segments.
    pub dirty_ratio: f64,
    /// Whether a pass is due: the ratio reached `min.cleanable.dirty.ratio`,
    /// a record waited past `max.compaction.lag.ms`, or a delete horizon passed.
    pub due: bool,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanReport {
    pub bytes_read: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub segments_swapped: usize,
    /// The new cleaner checkpoint.
    pub cleaned_to: i64,
}

/// The dirty section of a log: `[first_dirty, upper)`.
struct Section {
    first_dirty: i64,
    upper: i64,
}

fn section(st: &LogState, now_ms: i64) -> Section {
    let active = st.segments.last().expect("a log always has a segment");
    let mut upper = active.base_offset().min(super::read::last_stable(st));
    let lag = st.config.min_compaction_lag_ms;
    if lag > 0 {
        let young = st.segments.iter().find(|s| s.max_timestamp > now_ms.saturating_sub(lag));
        if let Some(s) = young {
            upper = upper.min(s.base_offset());
        }
    }
    let first = st.segments[0].base_offset().max(st.log_start_offset);
    let first_dirty = st.first_dirty.max(first).min(upper.max(first));
    Section { first_dirty, upper }
}

/// A closed segment as a pass sees it.
#[derive(Clone)]
struct Source {
    file: Rc<SegmentFile>,
    base: i64,
    end_offset: i64,
    size: u64,
}

/// The cleaner checkpoint in `dir`, if any.
pub(super) fn read_checkpoint(dir: &Path) -> Option<i64> {
    match file::read_checked(&dir.join(CLEANER_CHECKPOINT_FILE), LINE_FILE_BYTES_MAX) {
        Ok(body) => std::str::from_utf8(&body?).ok()?.trim().parse().ok(),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cleaner checkpoint ignored");
            None
        }
    }
}

impl Log {
    /// How dirty the log is, if it is compacted and has closed segments.
    pub fn cleanable(&self, now_ms: i64) -> Option<Cleanable> {
        let st = self.state.borrow();
        if !st.config.compacts() || st.failed.is_some() || st.closing || st.segments.len() < 2 {
            return None;
        }
        let Section { first_dirty, upper } = section(&st, now_ms);
        let sealed = st.segments.iter().take_while(|s| s.sealed).count().min(st.segments.len() - 1);
        let closed = &st.segments[..sealed];
        let clean_bytes: u64 = closed.iter().filter(|s| s.base_offset() < first_dirty).map(|s| s.size_bytes).sum();
        let dirty: Vec<&Segment> =
            closed.iter().filter(|s| s.next_offset > first_dirty && s.base_offset() < upper).collect();
        let dirty_bytes: u64 = dirty.iter().map(|s| s.size_bytes).sum();
        let total = clean_bytes + dirty_bytes;
        let dirty_ratio = if total == 0 { 0.0 } else { dirty_bytes as f64 / total as f64 };
        let ratio_due = dirty_bytes > 0 && dirty_ratio >= st.config.min_cleanable_dirty_ratio.get();
        let max_lag = st.config.max_compaction_lag_ms;
        let lag_due = dirty.first().is_some_and(|s| {
            let first = if s.first_timestamp >= 0 { s.first_timestamp } else { s.max_timestamp };
            first >= 0 && max_lag < i64::MAX && first < now_ms.saturating_sub(max_lag)
        });
        let horizon_due = st.next_horizon_ms.is_some_and(|h| h <= now_ms);
        Some(Cleanable { dirty_ratio, due: ratio_due || lag_due || horizon_due })
    }

    /// One cleaning pass (see the module's description). `map` is the
    /// shard's key map; `throttle` its I/O limit; reads and writes are of
    /// about `io_bytes`.
    pub async fn clean(
        &self,
        map: &mut OffsetMap,
        throttle: &mut Throttle,
        io_bytes: usize,
        now_ms: i64,
    ) -> Result<CleanReport, StorageError> {
        let io_bytes = (io_bytes as u64).max(DMA_ALIGNMENT_BYTES).div_ceil(DMA_ALIGNMENT_BYTES) * DMA_ALIGNMENT_BYTES;
        let io_bytes = io_bytes as usize;
        let _pass = self.clean_lock.lock().await;
        let (section, sources, aborted, producers, config) = {
            let st = self.state.borrow();
            if st.closing {
                return Err(StorageError::Closing);
            }
            let section = section(&st, now_ms);
            let closed = &st.segments[..st.segments.len() - 1];
            // A segment the writer has not sealed yet may still get writes or its indexes.
            let sources: Vec<Source> = closed
                .iter()
                .take_while(|s| s.sealed)
                .filter(|s| s.base_offset() < section.upper.max(section.first_dirty))
                .map(|s| Source {
                    file: s.file.clone(),
                    base: s.base_offset(),
                    end_offset: s.next_offset,
                    size: s.synced_bytes,
                })
                .collect();
            let producers: HashMap<i64, ActiveProducer> = st
                .producers
                .producers()
                .map(|(id, e)| {
                    (id, ActiveProducer { epoch: e.epoch, last_data_offset: e.batches.back().map(|b| b.last_offset) })
                })
                .collect();
            (section, sources, st.producers.aborted_txns(), producers, st.config.clone())
        };
        let batch_bytes_max = records_bytes_max(config.max_message_bytes);
        let mut report = CleanReport::default();

        // The key map over the dirty section.
        map.clear();
        let aborted_by_producer = {
            let mut by: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
            for a in &aborted {
                by.entry(a.producer_id).or_default().push((a.first_offset, a.last_offset));
            }
            by
        };
        let is_aborted = |header: &BatchHeader| {
            header.is_transactional()
                && aborted_by_producer.get(&header.producer_id).is_some_and(|txns| {
                    txns.iter().any(|(first, last)| *first <= header.base_offset && header.base_offset <= *last)
                })
        };
        let mut map_end = section.first_dirty;
        'build: for source in sources.iter().filter(|s| s.end_offset > section.first_dirty) {
            let mut position = 0;
            while position < source.size {
                let (read, batches) = self.read_source(source, position, io_bytes, throttle, &mut report).await?;
                for (at, header) in &batches {
                    position += header.size_bytes as u64;
                    if header.last_offset() < section.first_dirty {
                        continue;
                    }
                    if header.last_offset() >= section.upper {
                        break 'build;
                    }
                    if !header.is_control() && !is_aborted(header) {
                        let decoded = records::decode(&read[*at..*at + header.size_bytes], batch_bytes_max)
                            .map_err(|e| corrupt(&source.file, e))?;
                        let keyed = decoded.views.iter().filter(|v| v.key.is_some()).count();
                        if keyed > map.room() {
                            break 'build;
                        }
                        for view in &decoded.views {
                            let offset = view.offset(header.base_offset);
                            if let (Some(key), true) = (&view.key, offset >= section.first_dirty) {
                                map.put(&decoded.records[key.clone()], offset);
                            }
                        }
                    }
                    map_end = header.last_offset() + 1;
                }
            }
        }
        report.cleaned_to = map_end;

        // Rewrite closed segments up to the map's end, group by group.
        let mut filter =
            BatchFilter::new(map, map_end, now_ms, config.delete_retention_ms, aborted, &producers, batch_bytes_max);
        let candidates: Vec<Source> = sources.into_iter().filter(|s| s.base < map_end).collect();
        let groups = group_by_size(&candidates, config.segment_bytes);
        // Each group's files are let go once it is swapped, so that the
        // janitor can close and remove them while the pass goes on.
        let mut slots: Vec<Option<Source>> = candidates.into_iter().map(Some).collect();
        for range in groups {
            let group: Vec<Source> = slots[range].iter_mut().filter_map(Option::take).collect();
            report.bytes_before += group.iter().map(|s| s.size).sum::<u64>();
            let cleaned = self
                .clean_group(&group, &mut filter, throttle, config.index_interval_bytes, io_bytes, &mut report)
                .await?;
            report.bytes_after += cleaned;
        }
        let next_horizon = filter.next_horizon_ms;
        if map_end > section.first_dirty {
            file::write_checked(&self.dir.join(CLEANER_CHECKPOINT_FILE), format!("{map_end}\n").as_bytes()).await?;
        }
        let mut st = self.state.borrow_mut();
        st.first_dirty = st.first_dirty.max(map_end);
        st.next_horizon_ms = next_horizon;
        Ok(report)
    }

    /// The next whole batches of `source` from `position`, read within the
    /// I/O limit; stops the pass if the log closed or failed meanwhile.
    async fn read_source(
        &self,
        source: &Source,
        position: u64,
        io_bytes: usize,
        throttle: &mut Throttle,
        report: &mut CleanReport,
    ) -> Result<(ReadResult, Vec<(usize, BatchHeader)>), StorageError> {
        let (read, batches) = read_batches(&source.file.file, position, source.size, io_bytes).await?;
        report.bytes_read += read.len() as u64;
        throttle.charge(read.len()).await;
        self.check_open()?;
        Ok((read, batches))
    }

    fn check_open(&self) -> Result<(), StorageError> {
        let st = self.state.borrow();
        if st.closing {
            return Err(StorageError::Closing);
        }
        if let Some(reason) = &st.failed {
            return Err(StorageError::Failed(reason.clone()));
        }
        Ok(())
    }

    /// Cleans one group of consecutive segments into one new segment and
    /// swaps it in. Returns the new segment's bytes.
    async fn clean_group(
        &self,
        group: &[Source],
        filter: &mut BatchFilter<'_>,
        throttle: &mut Throttle,
        index_interval_bytes: u64,
        io_bytes: usize,
        report: &mut CleanReport,
    ) -> Result<u64, StorageError> {
        let base = group[0].base;
        let cleaned_path = swap::cleaned_path(&self.dir, base);
        file::remove_if_exists(&cleaned_path).await?;
        let out = crate::segment::open_dma(&cleaned_path, true).await?;
        let mut writer = CleanedWriter::new(out, swap::log_path(&self.dir, base), base, index_interval_bytes, io_bytes);
        let written = self.write_group(group, filter, throttle, &mut writer, io_bytes, report).await;
        let finished = match written {
            Ok(()) => writer.finish(throttle).await,
            Err(e) => Err(e),
        };
        let segment = match finished.and_then(|segment| self.check_open().map(|_| segment)) {
            Ok(segment) => segment,
            Err(e) => {
                let _ = file::remove_if_exists(&cleaned_path).await;
                return Err(e);
            }
        };
        let size = segment.size_bytes;
        let removed_aborts = filter.take_removed_aborts();
        self.swap_in(group, segment).await?;
        if !removed_aborts.is_empty() {
            self.state.borrow_mut().producers.forget_aborted(&removed_aborts);
        }
        report.segments_swapped += 1;
        Ok(size)
    }

    async fn write_group(
        &self,
        group: &[Source],
        filter: &mut BatchFilter<'_>,
        throttle: &mut Throttle,
        writer: &mut CleanedWriter,
        io_bytes: usize,
        report: &mut CleanReport,
    ) -> Result<(), StorageError> {
        for (i, source) in group.iter().enumerate() {
            let last_source = i + 1 == group.len();
            let mut position = 0;
            while position < source.size {
                let (read, batches) = self.read_source(source, position, io_bytes, throttle, report).await?;
                let read_end = position + batches.iter().map(|(_, h)| h.size_bytes as u64).sum::<u64>();
                for (at, header) in &batches {
                    let bytes = &read[*at..*at + header.size_bytes];
                    let batch_end = position + (*at + header.size_bytes) as u64;
                    let last_of_group = last_source && batch_end == source.size;
                    match filter.filter(bytes, last_of_group).map_err(|e| corrupt(&source.file, e))? {
                        Verdict::Keep => writer.push(bytes),
                        Verdict::Replace(new) => writer.push(&new),
                        Verdict::Drop => {}
                    }
                }
                position = read_end;
                writer.flush_full(throttle).await?;
            }
        }
        Ok(())
    }

    /// Puts `segment` (written as `<base>.cleaned`) in place of `group`.
    async fn swap_in(&self, group: &[Source], segment: Segment) -> Result<(), StorageError> {
        let base = group[0].base;
        // The group must still be in the log, whole and in place.
        let at = {
            let mut st = self.state.borrow_mut();
            let at = st.segments.iter().position(|s| Rc::ptr_eq(&s.file, &group[0].file));
            let at = at.filter(|at| {
                let in_place = group
                    .iter()
                    .enumerate()
                    .all(|(k, g)| st.segments.get(at + k).is_some_and(|s| Rc::ptr_eq(&s.file, &g.file)));
                in_place && at + group.len() < st.segments.len()
            });
            if at.is_some() {
                st.swapping = true;
            }
            at
        };
        let Some(at) = at else {
            // Retention or a close took segments meanwhile: this clean is void.
            file::remove_if_exists(&swap::cleaned_path(&self.dir, base)).await?;
            return Err(StorageError::Closing);
        };
        let swapped = self.swap_files(group, &segment).await;
        let mut st = self.state.borrow_mut();
        st.swapping = false;
        if let Err(e) = swapped {
            // Past the decision point the files are in recovery's hands.
            st.failed = Some(format!("segment swap failed: {e}"));
            return Err(e);
        }
        debug_assert!(Rc::ptr_eq(&st.segments[at].file, &group[0].file), "only the cleaner removes from the middle");
        let end = segment.next_offset;
        let replaced: Vec<Segment> = st.segments.splice(at..at + group.len(), [segment]).collect();
        st.cache.drop_below(end);
        drop(st);
        // Cached reads (and a read-ahead under way) hold what the clean removed.
        self.batch_cache.forget(self.cache_key.get());
        self.cache_key.set(self.batch_cache.register());
        for old in replaced {
            let path = swap::retired_path(&self.dir, old.base_offset());
            self.janitor.retire_segment(old.file, path);
        }
        tracing::debug!(dir = %self.dir.display(), base, end, segments = group.len(), "cleaned segments swapped in");
        Ok(())
    }

    async fn swap_files(&self, group: &[Source], segment: &Segment) -> Result<(), StorageError> {
        let dir = &self.dir;
        let base = group[0].base;
        let rename = |from: std::path::PathBuf, to: std::path::PathBuf| async move {
            glommio::io::rename(&from, &to)
                .await
                .map_err(|e| StorageError::io(&format!("rename {}", from.display()), e))
        };
        file::sync_dir(dir).await?;
        rename(swap::cleaned_path(dir, base), swap::swap_path(dir, base)).await?;
        file::sync_dir(dir).await?;
        for old in group {
            let [index, time_index, log] = swap::segment_paths(dir, old.base);
            file::remove_if_exists(&index).await?;
            file::remove_if_exists(&time_index).await?;
            rename(log, swap::retired_path(dir, old.base)).await?;
        }
        file::sync_dir(dir).await?;
        segment.write_indexes().await?;
        rename(swap::swap_path(dir, base), swap::log_path(dir, base)).await?;
        file::sync_dir(dir).await
    }
}

fn corrupt(file: &SegmentFile, e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("{}: {e}", file.log_path.display()))
}

/// Decompressed bytes one batch may take: a batch that inflates past this is
/// refused as corrupt rather than expanded.
fn records_bytes_max(max_message_bytes: u64) -> usize {
    sluice_core::constants::DECOMPRESSED_BATCH_BYTES_MAX.max(max_message_bytes as usize)
}

/// Reads whole batches from `position` (about `io_bytes`, or one larger
/// batch whole), up to `end`. Returns the read and the batches in it.
async fn read_batches(
    file: &DmaFile,
    position: u64,
    end: u64,
    io_bytes: usize,
) -> Result<(ReadResult, Vec<(usize, BatchHeader)>), StorageError> {
    let want = ((end - position) as usize).min(io_bytes);
    let read = file.read_at(position, want).await.map_err(|e| StorageError::io("read segment", e))?;
    let batches: Vec<(usize, BatchHeader)> = sluice_protocol::batch::headers(&read).collect();
    if !batches.is_empty() {
        return Ok((read, batches));
    }
    let header = BatchHeader::parse(&read).ok_or_else(|| StorageError::Corrupt(format!("no batch at {position}")))?;
    if position + header.size_bytes as u64 > end {
        return Err(StorageError::Corrupt(format!("batch at {position} runs past the segment")));
    }
    let whole = file.read_at(position, header.size_bytes).await.map_err(|e| StorageError::io("read segment", e))?;
    Ok((whole, vec![(0, header)]))
}

/// Consecutive sources grouped so that each group's bytes stay within
/// `segment_bytes` and its offsets within the index's 32-bit range: the
/// index ranges of the groups.
fn group_by_size(sources: &[Source], segment_bytes: u64) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let mut start = 0;
    while start < sources.len() {
        let mut end = start + 1;
        let mut bytes = sources[start].size;
        while end < sources.len()
            && bytes + sources[end].size <= segment_bytes
            && sources[end].end_offset - sources[start].base <= i32::MAX as i64
        {
            bytes += sources[end].size;
            end += 1;
        }
        groups.push(start..end);
        start = end;
    }
    groups
}

/// Writes a cleaned segment with aligned O_DIRECT writes, building its
/// indexes as batches are placed.
struct CleanedWriter {
    segment: Segment,
    index_interval_bytes: u64,
    /// Bytes written at a time.
    io_bytes: usize,
    /// Bytes not yet written; they start at `flushed`.
    pending: Vec<u8>,
    flushed: u64,
}

impl CleanedWriter {
    fn new(
        file: DmaFile,
        final_path: std::path::PathBuf,
        base_offset: i64,
        index_interval_bytes: u64,
        io_bytes: usize,
    ) -> CleanedWriter {
        let segment_file = SegmentFile { base_offset, file, log_path: final_path, cursor: Default::default() };
        let segment = Segment::new(segment_file, 0);
        CleanedWriter { segment, index_interval_bytes, io_bytes, pending: Vec::with_capacity(io_bytes * 2), flushed: 0 }
    }

    fn push(&mut self, batch: &[u8]) {
        let header = BatchHeader::parse(batch).expect("a whole batch");
        let position = self.flushed + self.pending.len() as u64;
        self.segment.record_batch(position, &header, self.index_interval_bytes);
        self.pending.extend_from_slice(batch);
    }

    /// Writes the whole aligned blocks pending once there are enough of them.
    async fn flush_full(&mut self, throttle: &mut Throttle) -> Result<(), StorageError> {
        if self.pending.len() < self.io_bytes {
            return Ok(());
        }
        let whole = align_down(self.pending.len() as u64) as usize;
        self.write(whole, throttle).await
    }

    async fn write(&mut self, len: usize, throttle: &mut Throttle) -> Result<(), StorageError> {
        let aligned = align_up(len as u64) as usize;
        let file = &self.segment.file.file;
        let mut buf = file.alloc_dma_buffer(aligned);
        buf.as_bytes_mut()[..len].copy_from_slice(&self.pending[..len]);
        buf.as_bytes_mut()[len..].fill(0);
        let written =
            file.write_at(buf, self.flushed).await.map_err(|e| StorageError::io("write cleaned segment", e))?;
        if written != aligned {
            return Err(StorageError::Failed(format!("short write: {written} of {aligned} bytes")));
        }
        throttle.charge(aligned).await;
        self.pending.drain(..len);
        self.flushed += len as u64;
        Ok(())
    }

    /// Writes the rest, cuts the file to its exact length and syncs it.
    async fn finish(mut self, throttle: &mut Throttle) -> Result<Segment, StorageError> {
        let tail_start = align_down(self.flushed + self.pending.len() as u64);
        let tail = self.pending[(tail_start - self.flushed) as usize..].to_vec();
        if !self.pending.is_empty() {
            let len = self.pending.len();
            self.write(len, throttle).await?;
        }
        let size = self.flushed;
        let file = &self.segment.file.file;
        file.truncate(size).await.map_err(|e| StorageError::io("truncate cleaned segment", e))?;
        file.fdatasync().await.map_err(|e| StorageError::io("fdatasync cleaned segment", e))?;
        assert_eq!(self.segment.size_bytes, size, "batches tile the cleaned segment");
        self.segment.synced_bytes = size;
        self.segment.sealed = true;
        *self.segment.file.cursor.borrow_mut() = WriteCursor { block_start: tail_start, block: tail };
        Ok(self.segment)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::test_support::{append_chunk, keyed_batch, open, run, temp_dir, TestProducer, TestRecord};
    use super::*;
    use crate::cleaner::offset_map::SLOT_BYTES;
    use sluice_core::config::topic::ConfigDouble;
    use sluice_core::config::TopicConfig;

    /// xorshift64*: reproducible histories without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// One record written, as the model keeps it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Written {
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        aborted: bool,
    }

    /// Every record written, by offset.
    type Model = BTreeMap<i64, Written>;
    /// Each transaction: its first offset and its marker's.
    type Txns = Vec<(i64, i64)>;

    const DELETE_RETENTION_MS: i64 = 1000;
    /// Small reads and writes, so that a pass crosses many of them.
    const TEST_IO_BYTES: usize = 4096;

    fn compact_config() -> TopicConfig {
        TopicConfig {
            segment_bytes: 8192,
            index_interval_bytes: 256,
            cleanup_policy: "compact".into(),
            min_cleanable_dirty_ratio: ConfigDouble::new(0.0),
            delete_retention_ms: DELETE_RETENTION_MS,
            ..TopicConfig::default()
        }
    }

    fn random_records(rng: &mut Rng, keys: u64, step: usize) -> Vec<TestRecord> {
        (0..1 + rng.below(3))
            .map(|i| {
                let key = format!("key-{}", rng.below(keys)).into_bytes();
                let value = (rng.below(100) >= 15).then(|| format!("value-{step}-{i}").into_bytes());
                (Some(key), value)
            })
            .collect()
    }

    fn remember(model: &mut Model, base: i64, records: &[TestRecord]) {
        for (i, (key, value)) in records.iter().enumerate() {
            let written = Written { key: key.clone().unwrap(), value: value.clone(), aborted: false };
            model.insert(base + i as i64, written);
        }
    }

    /// Writes a random history of puts and deletes, idempotent batches and
    /// transactions (committed and aborted) over `keys` keys.
    async fn write_history(log: &Log, rng: &mut Rng, steps: usize, keys: u64) -> (Model, Txns) {
        let mut model = Model::new();
        let mut txns = Txns::new();
        let mut idempotent_seq = 0;
        let mut txn_seq = 0;
        for step in 0..steps {
            let records = random_records(rng, keys, step);
            let ts = 1_000 + step as i64;
            match rng.below(10) {
                0..=5 => {
                    let base = append_chunk(log, &keyed_batch(&records, ts, None)).await.base_offset;
                    remember(&mut model, base, &records);
                }
                6..=7 => {
                    let p = TestProducer { id: 100, epoch: 0, base_sequence: idempotent_seq, transactional: false };
                    idempotent_seq += records.len() as i32;
                    let base = append_chunk(log, &keyed_batch(&records, ts, Some(p))).await.base_offset;
                    remember(&mut model, base, &records);
                }
                _ => {
                    let mut offsets = Vec::new();
                    for _ in 0..1 + rng.below(2) {
                        let records = random_records(rng, keys, step);
                        let p = TestProducer { id: 200, epoch: 0, base_sequence: txn_seq, transactional: true };
                        txn_seq += records.len() as i32;
                        let base = append_chunk(log, &keyed_batch(&records, ts, Some(p))).await.base_offset;
                        remember(&mut model, base, &records);
                        offsets.extend((0..records.len() as i64).map(|i| base + i));
                    }
                    let commit = rng.below(2) == 0;
                    let marker = log.append_marker(200, 0, commit, 0).await.unwrap().unwrap();
                    txns.push((offsets[0], marker));
                    if !commit {
                        for o in offsets {
                            model.get_mut(&o).unwrap().aborted = true;
                        }
                    }
                }
            }
        }
        (model, txns)
    }

    /// A stored batch's records: offset, key, value.
    fn batch_records(bytes: &[u8]) -> Vec<(i64, Vec<u8>, Option<Vec<u8>>)> {
        let decoded = records::decode(bytes, 1 << 24).unwrap();
        decoded
            .views
            .iter()
            .map(|v| {
                let key = v.key.clone().map(|r| decoded.records[r].to_vec()).unwrap_or_default();
                let value = v.value.clone().map(|r| decoded.records[r].to_vec());
                (v.offset(decoded.header.base_offset), key, value)
            })
            .collect()
    }

    /// Everything the log serves, read as a consumer does from its start:
    /// data records by offset, and the offsets of markers.
    async fn read_all(log: &Log) -> (BTreeMap<i64, (Vec<u8>, Option<Vec<u8>>)>, Vec<i64>) {
        let mut records = BTreeMap::new();
        let mut markers = Vec::new();
        let mut offset = log.log_start_offset();
        let end = log.high_watermark();
        while offset < end {
            let read = log.read(offset, 1 << 20, false).await.unwrap();
            assert!(!read.chunks.is_empty(), "a read at {offset} below the end {end} finds a batch");
            for chunk in &read.chunks {
                for (at, header) in sluice_protocol::batch::headers(chunk) {
                    let bytes = &chunk[at..at + header.size_bytes];
                    assert!(sluice_protocol::batch::crc_matches(bytes, &header));
                    assert!(header.last_offset() >= offset, "batches come in offset order");
                    if header.is_control() {
                        if header.records_count > 0 {
                            markers.push(header.base_offset);
                        }
                    } else {
                        for (o, k, v) in batch_records(bytes) {
                            assert!(records.insert(o, (k, v)).is_none(), "offset {o} served twice");
                        }
                    }
                    offset = header.last_offset() + 1;
                }
            }
        }
        (records, markers)
    }

    /// A fetch at any offset, removed or not, starts with the first batch
    /// that ends at or after it; ListOffsets by time finds the first record
    /// at or after the time.
    async fn check_fetch_at_every_offset(log: &Log) {
        let mut batches = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.high_watermark() {
            let read = log.read(offset, 1, false).await.unwrap();
            let header = BatchHeader::parse(&read.chunks[0]).unwrap();
            batches.push((header.base_offset, header.last_offset()));
            offset = header.last_offset() + 1;
        }
        for offset in log.log_start_offset()..log.high_watermark() {
            let read = log.read(offset, 1, false).await.unwrap();
            let header = BatchHeader::parse(&read.chunks[0]).unwrap();
            let expected = batches.iter().find(|(_, last)| *last >= offset).unwrap();
            assert_eq!((header.base_offset, header.last_offset()), *expected, "fetch at {offset}");
        }
        // ListOffsets by time: the first record (markers too) stamped at or after it.
        let mut stamped = Vec::new();
        for (base, _) in &batches {
            let read = log.read(*base, 1, false).await.unwrap();
            let decoded = records::decode(&read.chunks[0], 1 << 24).unwrap();
            for view in &decoded.views {
                let header = &decoded.header;
                stamped.push((view.offset(header.base_offset), view.timestamp(header.base_timestamp)));
            }
        }
        // The test histories stamp step i at 1000 + i.
        for target in (1_000..1_800).step_by(7) {
            let expected = stamped.iter().find(|(_, t)| *t >= target).map(|(o, t)| (*t, *o));
            assert_eq!(log.offset_for_timestamp(target).await.unwrap(), expected, "time {target}");
        }
    }

    /// The safety of a clean, whatever state it reached: every record served
    /// is one written at that offset; each key's latest value is served; a
    /// key whose latest record is a tombstone that went has nothing served.
    fn check_safe(model: &Model, served: &BTreeMap<i64, (Vec<u8>, Option<Vec<u8>>)>) {
        for (offset, (key, value)) in served {
            let written = model.get(offset).unwrap_or_else(|| panic!("offset {offset} never written"));
            assert_eq!((&written.key, &written.value), (key, value), "offset {offset}");
        }
        let keys: std::collections::BTreeSet<&Vec<u8>> = model.values().map(|w| &w.key).collect();
        for key in keys {
            let latest = model.iter().rev().find(|(_, w)| &w.key == key && !w.aborted);
            let Some((offset, written)) = latest else { continue };
            if written.value.is_some() {
                assert!(served.contains_key(offset), "latest value of {key:?} at {offset} lost");
            } else if !served.contains_key(offset) {
                // (An aborted record past it may be served, as written: readers skip it.)
                let resurrected = served.iter().find(|(o, (k, _))| k == key && !model[*o].aborted);
                assert!(resurrected.is_none(), "{key:?} deleted at {offset} but {resurrected:?} served");
            }
        }
    }

    /// What a whole clean leaves below `cleaned_to`: only each key's latest
    /// record there, never an aborted one, and tombstones only while `tombstones`;
    /// everything at or past it as written.
    fn check_compacted(
        model: &Model,
        served: &BTreeMap<i64, (Vec<u8>, Option<Vec<u8>>)>,
        cleaned_to: i64,
        tombstones: bool,
    ) {
        check_safe(model, served);
        for (offset, written) in model {
            // Latest within the cleaned range: the key map saw nothing past it.
            let latest =
                model.range(offset + 1..cleaned_to.max(offset + 1)).all(|(_, w)| w.key != written.key || w.aborted);
            let expected = if *offset >= cleaned_to {
                true
            } else {
                !written.aborted && latest && (written.value.is_some() || tombstones)
            };
            assert_eq!(served.contains_key(offset), expected, "offset {offset}: {written:?} (cleaned to {cleaned_to})");
        }
    }

    fn unbounded_map() -> OffsetMap {
        OffsetMap::with_bytes(SLOT_BYTES * 4096, 0.9)
    }

    #[test]
    fn random_histories_clean_to_the_model() {
        for seed in 1..=6u64 {
            run(move || async move {
                let dir = temp_dir(&format!("compact-model-{seed}"));
                let log = open(&dir, compact_config(), false).await;
                let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
                let (model, txns) = write_history(&log, &mut rng, 700, 40).await;
                let producers_before: Vec<_> =
                    log.producer_states().iter().map(|p| (p.producer_id, p.epoch, p.last_sequence)).collect();
                let end = log.log_end_offset();
                let mut map = unbounded_map();
                let mut throttle = Throttle::new(f64::MAX);

                let first = log.clean(&mut map, &mut throttle, TEST_IO_BYTES, 10_000).await.unwrap();
                assert!(first.segments_swapped >= 1 && first.bytes_after < first.bytes_before, "{first:?}");
                let active_base = log.state.borrow().segments.last().unwrap().base_offset();
                assert_eq!(first.cleaned_to, active_base, "the whole closed log was cleaned");
                let (served, _) = read_all(&log).await;
                check_compacted(&model, &served, first.cleaned_to, true);
                assert_eq!(log.log_end_offset(), end);
                check_fetch_at_every_offset(&log).await;

                // Past the delete horizon the tombstones and empty transactions' markers go.
                assert!(log.cleanable(10_000 + DELETE_RETENTION_MS).unwrap().due, "a horizon passing makes a pass due");
                log.clean(&mut map, &mut throttle, TEST_IO_BYTES, 10_000 + DELETE_RETENTION_MS).await.unwrap();
                // A marker goes one horizon after the pass that finds its transaction
                // empty (a transaction emptied by its tombstones going takes two).
                log.clean(&mut map, &mut throttle, TEST_IO_BYTES, 20_000 + DELETE_RETENTION_MS).await.unwrap();
                log.clean(&mut map, &mut throttle, TEST_IO_BYTES, 30_000 + DELETE_RETENTION_MS).await.unwrap();
                let (served, markers) = read_all(&log).await;
                check_compacted(&model, &served, first.cleaned_to, false);
                // A marker stays only while its transaction has records, or ends
                // the producer's last transaction (its sequence is kept).
                let last_txn = txns.last().copied();
                for marker in markers.iter().filter(|o| **o < first.cleaned_to) {
                    let txn = txns.iter().find(|(_, m)| m == marker).expect("a written marker");
                    let has_records = served.range(txn.0..txn.1).next().is_some();
                    assert!(has_records || Some(*txn) == last_txn, "marker {marker} of an emptied transaction kept");
                }
                // An aborted transaction leaves the index with its marker.
                for aborted in log.state.borrow().producers.aborted_txns() {
                    assert!(markers.contains(&aborted.last_offset), "{aborted:?} indexed without its marker");
                }
                let emptied = txns.iter().filter(|t| t.1 < first.cleaned_to && served.range(t.0..t.1).next().is_none());
                assert!(emptied.count() > 0, "some transaction was emptied, so the check above means something");

                // A crash (no close), the producer snapshots lost: producer state
                // rebuilt from the cleaned log keeps each producer's last sequence.
                drop(log);
                for entry in std::fs::read_dir(&dir).unwrap() {
                    let path = entry.unwrap().path();
                    if path.extension().is_some_and(|x| x == "snapshot") {
                        std::fs::remove_file(path).unwrap();
                    }
                }
                let log = open(&dir, compact_config(), false).await;
                assert_eq!(log.log_end_offset(), end, "no offset is reused after a crash");
                let producers_after: Vec<_> =
                    log.producer_states().iter().map(|p| (p.producer_id, p.epoch, p.last_sequence)).collect();
                assert_eq!(producers_after, producers_before);
                let (served_again, _) = read_all(&log).await;
                assert_eq!(served_again, served);
                log.close().await.unwrap();
                std::fs::remove_dir_all(&dir).unwrap();
            });
        }
    }

    #[test]
    fn a_small_key_map_cleans_in_several_passes_and_never_loses_a_live_record() {
        run(|| async {
            let dir = temp_dir("compact-small-map");
            let log = open(&dir, compact_config(), false).await;
            let mut rng = Rng(77);
            let (model, _) = write_history(&log, &mut rng, 600, 60).await;
            let mut map = OffsetMap::with_bytes(SLOT_BYTES * 40, 0.5);
            let mut throttle = Throttle::new(f64::MAX);
            let active_base = log.state.borrow().segments.last().unwrap().base_offset();
            let mut passes = 0;
            loop {
                let report = log.clean(&mut map, &mut throttle, TEST_IO_BYTES, 10_000).await.unwrap();
                passes += 1;
                let (served, _) = read_all(&log).await;
                check_safe(&model, &served);
                if report.cleaned_to == active_base {
                    break;
                }
                assert!(passes < 200, "the checkpoint must advance");
            }
            assert!(passes > 1, "20 keys per pass cannot cover 60 keys at once");
            // A whole pass over it all then leaves the model's log.
            log.state.borrow_mut().first_dirty = 0;
            log.clean(&mut unbounded_map(), &mut throttle, TEST_IO_BYTES, 10_000).await.unwrap();
            let (served, _) = read_all(&log).await;
            check_compacted(&model, &served, active_base, true);
            log.close().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    fn copy_dir(from: &Path, to: &Path) {
        let _ = std::fs::remove_dir_all(to);
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }

    fn segment_bases(dir: &Path) -> Vec<i64> {
        let mut bases: Vec<i64> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_suffix(".log").and_then(|s| s.parse().ok())
            })
            .collect();
        bases.sort_unstable();
        bases
    }

    /// The states a crash can leave at each step of a swap, made from the
    /// files before and after a real clean: each one recovers to a log that
    /// serves the model's latest records and nothing cleaned away.
    #[test]
    fn a_crash_at_any_step_of_a_swap_recovers_safely() {
        run(|| async {
            let dir = temp_dir("compact-crash");
            let before = temp_dir("compact-crash-before");
            let state = temp_dir("compact-crash-state");
            let log = open(&dir, compact_config(), false).await;
            let mut rng = Rng(4242);
            let (model, _) = write_history(&log, &mut rng, 500, 30).await;
            let end = log.log_end_offset();
            // A first pass shrinks the segments; the second merges them, and is the one crashed.
            log.clean(&mut unbounded_map(), &mut Throttle::new(f64::MAX), TEST_IO_BYTES, 10_000).await.unwrap();
            log.close().await.unwrap();
            copy_dir(&dir, &before);
            let log = open(&dir, compact_config(), true).await;
            let report =
                log.clean(&mut unbounded_map(), &mut Throttle::new(f64::MAX), TEST_IO_BYTES, 10_000).await.unwrap();
            assert!(report.segments_swapped >= 1, "{report:?}");
            let (cleaned, _) = read_all(&log).await;
            log.close().await.unwrap();
            let old_bases = segment_bases(&before);
            let new_bases = segment_bases(&dir);
            let first = new_bases[0];
            // The first group: the old segments from `first` below the second new base.
            let group: Vec<i64> = old_bases.iter().copied().filter(|b| *b < new_bases[1]).collect();
            assert!(group.len() >= 2, "the first group merged segments: {group:?}");
            let cleaned_segment = std::fs::read(swap::log_path(&dir, first)).unwrap();

            type Damage = fn(&Path, &[i64], &[u8]);
            let steps: [(&str, Damage); 5] = [
                ("cleaned file written", |d, _, bytes| std::fs::write(swap::cleaned_path(d, 0), bytes).unwrap()),
                ("renamed to swap", |d, _, bytes| std::fs::write(swap::swap_path(d, 0), bytes).unwrap()),
                ("old files partly removed", |d, group, bytes| {
                    std::fs::write(swap::swap_path(d, 0), bytes).unwrap();
                    for path in swap::segment_paths(d, 0).iter().take(2) {
                        std::fs::remove_file(path).unwrap();
                    }
                    std::fs::remove_file(swap::log_path(d, group[1])).unwrap();
                }),
                ("old segments renamed aside", |d, group, bytes| {
                    std::fs::write(swap::swap_path(d, 0), bytes).unwrap();
                    for base in group {
                        let [index, time_index, log] = swap::segment_paths(d, *base);
                        std::fs::remove_file(index).unwrap();
                        std::fs::remove_file(time_index).unwrap();
                        std::fs::rename(log, swap::retired_path(d, *base)).unwrap();
                    }
                }),
                ("old files removed, new indexes written", |d, group, bytes| {
                    std::fs::write(swap::swap_path(d, 0), bytes).unwrap();
                    for base in &group[1..] {
                        for path in swap::segment_paths(d, *base) {
                            std::fs::remove_file(path).unwrap();
                        }
                    }
                    std::fs::write(swap::log_path(d, 0).with_extension("index"), b"garbage!").unwrap();
                }),
            ];
            assert_eq!(first, 0);
            for (step, damage) in steps {
                copy_dir(&before, &state);
                damage(&state, &group, &cleaned_segment);
                let log = open(&state, compact_config(), false).await;
                assert_eq!(log.log_end_offset(), end, "{step}");
                let (served, _) = read_all(&log).await;
                check_safe(&model, &served);
                let names: Vec<String> =
                    std::fs::read_dir(&state).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
                let leftover = |n: &String| n.ends_with(".cleaned") || n.ends_with(".swap") || n.ends_with(".deleted");
                assert!(!names.iter().any(leftover), "{step}: {names:?}");
                if step != "cleaned file written" {
                    let group_end = new_bases[1];
                    let first_group: Vec<_> = served.range(..group_end).collect();
                    let expected: Vec<_> = cleaned.range(..group_end).collect();
                    assert_eq!(first_group, expected, "{step}: the swap was finished");
                }
                log.close().await.unwrap();
            }
            for d in [&dir, &before, &state] {
                std::fs::remove_dir_all(d).unwrap();
            }
        });
    }
}
