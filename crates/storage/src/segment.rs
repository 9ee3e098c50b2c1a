//! One segment: its `.log` file (O_DIRECT), the writer's cursor over the
//! partially filled last block, and the in-memory offset and time indexes.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use glommio::io::{DmaFile, OpenOptions};

use super::file::write_atomically;
use super::index::{OffsetIndex, TimeIndex};
use super::{segment_file_stem, StorageError};
use sluice_core::constants::DMA_ALIGNMENT_BYTES;
use sluice_protocol::batch::{self, BatchHeader};

/// Bytes read at a time when scanning a segment to rebuild its indexes.
const SCAN_READ_BYTES: usize = 1024 * 1024;

pub fn align_down(v: u64) -> u64 {
    v / DMA_ALIGNMENT_BYTES * DMA_ALIGNMENT_BYTES
}
pub fn align_up(v: u64) -> u64 {
    v.div_ceil(DMA_ALIGNMENT_BYTES) * DMA_ALIGNMENT_BYTES
}

/// Where the next aligned write of a segment starts, and the bytes of the
/// partially filled block there, rewritten with the next append.
#[derive(Debug, Default)]
pub struct WriteCursor {
    pub block_start: u64,
    pub block: Vec<u8>,
}

impl WriteCursor {
    pub fn end(&self) -> u64 {
        self.block_start + self.block.len() as u64
    }
}

/// The file of a segment, shared by the log state and the writer task.
#[derive(Debug)]
pub struct SegmentFile {
    pub base_offset: i64,
    pub file: DmaFile,
    pub log_path: PathBuf,
    /// Only the partition's writer task touches this, never across an await.
    pub cursor: RefCell<WriteCursor>,
}

impl SegmentFile {
    pub fn index_path(&self) -> PathBuf {
        self.log_path.with_extension("index")
    }
    pub fn time_index_path(&self) -> PathBuf {
        self.log_path.with_extension("timeindex")
    }
    /// The segment's files: `.log`, `.index`, `.timeindex`.
    pub fn paths(&self) -> [PathBuf; 3] {
        [self.log_path.clone(), self.index_path(), self.time_index_path()]
    }
}

/// A segment as the log state sees it.
#[derive(Debug)]
pub struct Segment {
    pub file: std::rc::Rc<SegmentFile>,
    /// Bytes assigned to batches (appended, maybe not yet written).
    pub size_bytes: u64,
    /// Bytes written and fsynced: readers never go past this.
    pub synced_bytes: u64,
    /// Offset after the segment's last batch.
    pub next_offset: i64,
    pub max_timestamp: i64,
    /// Base timestamp of the segment's first batch (-1 if not read: indexes
    /// were loaded), for `max.compaction.lag.ms`.
    pub first_timestamp: i64,
    /// Base offset of the batch holding `max_timestamp`.
    pub offset_of_max_timestamp: i64,
    pub index: OffsetIndex,
    pub time_index: TimeIndex,
    bytes_since_index: u64,
    /// Wall-clock time the segment was created or opened, for `segment.ms`.
    pub created_ms: i64,
    /// The segment takes no more writes and its indexes are on disk (the
    /// writer sealed it, or it was closed when the log opened): only then may
    /// the cleaner replace it.
    pub sealed: bool,
    /// Set when recovery found an invalid batch with valid data after it: the
    /// byte position of the bad batch. Nothing at or after it is served.
    pub corrupt_at: Option<u64>,
}

/// How far a partition's active segment was known to be durable and indexed,
/// written now and then so that recovery after a crash only re-reads the tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryPoint {
    pub segment_base: i64,
    pub position: u64,
    pub next_offset: i64,
    pub max_timestamp: i64,
    pub offset_of_max_timestamp: i64,
}

impl RecoveryPoint {
    /// The body of the `recovery-point` file: one line of five numbers (the
    /// file's checksum is added by `file::seal`).
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "{} {} {} {} {}\n",
            self.segment_base, self.position, self.next_offset, self.max_timestamp, self.offset_of_max_timestamp
        )
        .into_bytes()
    }

    /// Reads a body written by [`encode`](Self::encode).
    pub fn decode(body: &[u8]) -> Option<RecoveryPoint> {
        let text = std::str::from_utf8(body).ok()?.trim();
        let f: Vec<i64> = text.split(' ').map(|x| x.parse().ok()).collect::<Option<_>>()?;
        (f.len() == 5 && f[1] >= 0).then(|| RecoveryPoint {
            segment_base: f[0],
            position: f[1] as u64,
            next_offset: f[2],
            max_timestamp: f[3],
            offset_of_max_timestamp: f[4],
        })
    }
}

pub(crate) async fn open_dma(path: &Path, create_new: bool) -> Result<DmaFile, StorageError> {
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    if create_new {
        options.create_new(true);
    }
    options.dma_open(path).await.map_err(|e| StorageError::io(&format!("open {}", path.display()), e))
}

impl Segment {
    pub fn base_offset(&self) -> i64 {
        self.file.base_offset
    }

    /// Creates an empty segment starting at `base_offset` in `dir`.
    pub async fn create(dir: &Path, base_offset: i64) -> Result<Segment, StorageError> {
        let log_path = dir.join(format!("{}.log", segment_file_stem(base_offset)));
        let file = open_dma(&log_path, true).await?;
        Ok(Segment::new(SegmentFile { base_offset, file, log_path, cursor: RefCell::default() }, 0))
    }

    pub(crate) fn new(file: SegmentFile, size_bytes: u64) -> Segment {
        let base = file.base_offset;
        Segment {
            file: std::rc::Rc::new(file),
            size_bytes,
            synced_bytes: size_bytes,
            next_offset: base,
            max_timestamp: -1,
            first_timestamp: -1,
            offset_of_max_timestamp: -1,
            index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
            bytes_since_index: 0,
            created_ms: sluice_core::clock::now_ms(),
            sealed: false,
            corrupt_at: None,
        }
    }

    /// Opens an existing segment. Its indexes are loaded when the broker shut
    /// down cleanly and they are intact; otherwise they are rebuilt by reading
    /// every batch, checking each CRC, and the log is cut after the last valid batch.
    pub async fn open(
        log_path: &Path,
        base_offset: i64,
        clean: bool,
        recovery: Option<RecoveryPoint>,
        index_interval_bytes: u64,
    ) -> Result<Segment, StorageError> {
        let file = open_dma(log_path, false).await?;
        let file_size = file.file_size().await.map_err(|e| StorageError::io("stat segment", e))?;
        let segment_file =
            SegmentFile { base_offset, file, log_path: log_path.to_path_buf(), cursor: RefCell::default() };
        let mut segment = Segment::new(segment_file, 0);
        // After a crash, a recovery point of this segment lets the scan start at its tail.
        let recovery = recovery.filter(|r| !clean && r.segment_base == base_offset && r.position <= file_size);
        let loaded = if clean || recovery.is_some() { segment.load_indexes() } else { None };
        let (scan_from, rebuild) = match (loaded, recovery) {
            (Some((index, time_index)), Some(point)) if index.lookup(u32::MAX) as u64 <= point.position => {
                segment.index = index;
                segment.time_index = time_index;
                segment.next_offset = point.next_offset;
                segment.max_timestamp = point.max_timestamp;
                segment.offset_of_max_timestamp = point.offset_of_max_timestamp;
                segment.size_bytes = point.position;
                (point.position, true)
            }
            (Some((index, time_index)), None) => {
                let from = index.lookup(u32::MAX) as u64;
                if let Some((timestamp, relative)) = time_index.last() {
                    segment.max_timestamp = timestamp;
                    segment.offset_of_max_timestamp = base_offset + relative as i64;
                }
                segment.index = index;
                segment.time_index = time_index;
                (from, false)
            }
            _ => (0, true),
        };
        let end = segment.scan(scan_from, file_size, rebuild, index_interval_bytes).await?;
        if end != file_size && !clean && segment.valid_batch_follows(end, file_size).await {
            // Not a torn tail: valid data lies after the bad batch. Keep the file as
            // it is and serve nothing from the bad batch on.
            tracing::error!(
                path = %log_path.display(), position = end, offset = segment.next_offset,
                "corrupt record batch in the middle of the log; the partition is read-only up to it"
            );
            segment.corrupt_at = Some(end);
            segment.size_bytes = end;
            segment.synced_bytes = end;
            return Ok(segment);
        }
        if end != file_size {
            if clean {
                tracing::warn!(path = %log_path.display(), end, file_size, "segment has bytes after its last valid batch; cutting them");
            }
            segment.file.file.truncate(end).await.map_err(|e| StorageError::io("truncate segment", e))?;
        }
        segment.size_bytes = end;
        segment.synced_bytes = end;
        segment.load_cursor().await?;
        Ok(segment)
    }

    fn load_indexes(&self) -> Option<(OffsetIndex, TimeIndex)> {
        let index = std::fs::read(self.file.index_path()).ok()?;
        let time_index = std::fs::read(self.file.time_index_path()).ok()?;
        Some((OffsetIndex::from_bytes(&index)?, TimeIndex::from_bytes(&time_index)?))
    }

    /// Reads batches from `from` to `file_size`, updating offsets, timestamps and,
    /// if `rebuild`, the indexes. Returns the end of the last valid batch.
    async fn scan(
        &mut self,
        from: u64,
        file_size: u64,
        rebuild: bool,
        index_interval_bytes: u64,
    ) -> Result<u64, StorageError> {
        let mut position = from;
        while position < file_size {
            let want = (file_size - position).min(SCAN_READ_BYTES as u64) as usize;
            let read = self.file.file.read_at(position, want).await.map_err(|e| StorageError::io("read segment", e))?;
            let bytes: &[u8] = &read;
            // A batch below the segment's base offset is as invalid as one that goes back.
            let next = Some(self.next_offset.max(self.file.base_offset));
            let scanned = super::recovery::scan_chunk(bytes, next);
            for (at, header) in &scanned.batches {
                let interval = if rebuild { index_interval_bytes } else { u64::MAX };
                self.record_batch(position + *at as u64, header, interval);
            }
            let mut consumed = scanned.consumed;
            if consumed == 0 {
                // A batch larger than the read, or the first invalid one.
                let Some(header) = BatchHeader::parse(bytes) else { break };
                if header.size_bytes <= want || position + header.size_bytes as u64 > file_size {
                    break;
                }
                let whole = self
                    .file
                    .file
                    .read_at(position, header.size_bytes)
                    .await
                    .map_err(|e| StorageError::io("read segment", e))?;
                let goes_back = header.base_offset < self.next_offset.max(self.file.base_offset);
                if header.magic != 2 || goes_back || !batch::crc_matches(&whole, &header) {
                    break;
                }
                self.record_batch(position, &header, if rebuild { index_interval_bytes } else { u64::MAX });
                consumed = header.size_bytes;
            }
            position += consumed as u64;
        }
        Ok(position)
    }

    /// Whether the bytes at `position` claim a batch whose end is followed by a
    /// valid batch (magic 2, CRC-32C): mid-log corruption rather than a torn tail.
    async fn valid_batch_follows(&self, position: u64, file_size: u64) -> bool {
        let Ok(head) = self.file.file.read_at(position, sluice_core::constants::BATCH_HEADER_BYTES).await else {
            return false;
        };
        let Some(bad) = BatchHeader::parse(&head) else { return false };
        let next = position + bad.size_bytes as u64;
        if next >= file_size {
            return false;
        }
        let Ok(head) = self.file.file.read_at(next, sluice_core::constants::BATCH_HEADER_BYTES).await else {
            return false;
        };
        let Some(header) = BatchHeader::parse(&head) else { return false };
        if header.magic != 2 || next + header.size_bytes as u64 > file_size {
            return false;
        }
        match self.file.file.read_at(next, header.size_bytes).await {
            Ok(whole) => batch::crc_matches(&whole, &header),
            Err(_) => false,
        }
    }

    async fn load_cursor(&mut self) -> Result<(), StorageError> {
        let block_start = align_down(self.size_bytes);
        let len = (self.size_bytes - block_start) as usize;
        let block = if len == 0 {
            Vec::new()
        } else {
            let read = self.file.file.read_at(block_start, len).await.map_err(|e| StorageError::io("read tail", e))?;
            read.to_vec()
        };
        *self.file.cursor.borrow_mut() = WriteCursor { block_start, block };
        Ok(())
    }

    /// Accounts for a batch placed at `position`: offsets, timestamps, and an
    /// index entry every `index_interval_bytes`.
    pub fn record_batch(&mut self, position: u64, header: &BatchHeader, index_interval_bytes: u64) {
        assert!(header.base_offset >= self.file.base_offset, "batch below segment base");
        let relative = (header.base_offset - self.file.base_offset) as u32;
        if position == 0 {
            self.first_timestamp = header.base_timestamp;
        }
        if self.bytes_since_index >= index_interval_bytes && position > 0 {
            self.index.append(relative, position as u32);
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += header.size_bytes as u64;
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.base_offset;
            if index_interval_bytes != u64::MAX {
                self.time_index.maybe_append(header.max_timestamp, relative);
            }
        }
        self.next_offset = header.last_offset() + 1;
        self.size_bytes = self.size_bytes.max(position + header.size_bytes as u64);
    }

    /// Writes the `.index` and `.timeindex` files of a segment that takes no more appends.
    pub async fn write_indexes(&self) -> Result<(), StorageError> {
        write_atomically(&self.file.index_path(), self.index.as_bytes()).await?;
        write_atomically(&self.file.time_index_path(), self.time_index.as_bytes()).await
    }
}
