//! Sparse offset index (`.index`) and time index (`.timeindex`), in Kafka's
//! on-disk layout: big-endian entries relative to the segment's base offset.

use zerocopy::byteorder::big_endian::{I64, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// One `.index` entry: a batch's offset relative to the segment base, and its byte position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct OffsetIndexEntry {
    pub relative_offset: U32,
    pub position: U32,
}

/// One `.timeindex` entry: the largest timestamp so far and the offset of the batch holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TimeIndexEntry {
    pub timestamp: I64,
    pub relative_offset: U32,
}

const _: () = assert!(std::mem::size_of::<OffsetIndexEntry>() == 8);
const _: () = assert!(std::mem::size_of::<TimeIndexEntry>() == 12);

/// The in-memory offset index of one segment.
#[derive(Debug, Default, Clone)]
pub struct OffsetIndex {
    entries: Vec<OffsetIndexEntry>,
}

impl OffsetIndex {
    /// Appends an entry; offsets and positions must grow.
    pub fn append(&mut self, relative_offset: u32, position: u32) {
        if let Some(last) = self.entries.last() {
            assert!(relative_offset > last.relative_offset.get(), "offset index must grow");
            assert!(position > last.position.get(), "index positions must grow");
        }
        self.entries.push(OffsetIndexEntry { relative_offset: relative_offset.into(), position: position.into() });
    }

    /// Byte position of the last indexed batch at or before `relative_offset` (0 if none).
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        let i = self.entries.partition_point(|e| e.relative_offset.get() <= relative_offset);
        if i == 0 {
            0
        } else {
            self.entries[i - 1].position.get()
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn as_bytes(&self) -> &[u8] {
        self.entries.as_slice().as_bytes()
    }

    /// The bytes of the entries whose positions are below `position`.
    pub fn prefix_bytes(&self, position: u64) -> &[u8] {
        let n = self.entries.partition_point(|e| (e.position.get() as u64) < position);
        self.entries[..n].as_bytes()
    }

    /// Loads an index file's bytes; `None` if they are not whole, growing entries.
    pub fn from_bytes(bytes: &[u8]) -> Option<OffsetIndex> {
        let entries = <[OffsetIndexEntry]>::ref_from_bytes(bytes).ok()?;
        let grows = entries.windows(2).all(|w| {
            w[0].relative_offset.get() < w[1].relative_offset.get() && w[0].position.get() < w[1].position.get()
        });
        grows.then(|| OffsetIndex { entries: entries.to_vec() })
    }
}

/// The in-memory time index of one segment.
#[derive(Debug, Default, Clone)]
pub struct TimeIndex {
    entries: Vec<TimeIndexEntry>,
}

impl TimeIndex {
    /// Records that `timestamp` is the largest so far, first reached in the
    /// batch at `relative_offset`. Ignored unless the timestamp grows.
    pub fn maybe_append(&mut self, timestamp: i64, relative_offset: u32) {
        if self.entries.last().is_some_and(|e| e.timestamp.get() >= timestamp) {
            return;
        }
        self.entries.push(TimeIndexEntry { timestamp: timestamp.into(), relative_offset: relative_offset.into() });
    }

    /// Relative offset from which a scan for the first record with a timestamp
    /// `>= target` may start: every record before the returned entry's batch is older.
    pub fn scan_start(&self, target: i64) -> u32 {
        let i = self.entries.partition_point(|e| e.timestamp.get() < target);
        if i == 0 {
            0
        } else {
            self.entries[i - 1].relative_offset.get()
        }
    }

    /// The bytes of the entries for batches below `relative_offset`.
    pub fn prefix_bytes(&self, relative_offset: u32) -> &[u8] {
        let n = self.entries.partition_point(|e| e.relative_offset.get() < relative_offset);
        self.entries[..n].as_bytes()
    }

    /// The newest entry: (timestamp, relative offset).
    pub fn last(&self) -> Option<(i64, u32)> {
        self.entries.last().map(|e| (e.timestamp.get(), e.relative_offset.get()))
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn as_bytes(&self) -> &[u8] {
        self.entries.as_slice().as_bytes()
    }
    pub fn from_bytes(bytes: &[u8]) -> Option<TimeIndex> {
        let entries = <[TimeIndexEntry]>::ref_from_bytes(bytes).ok()?;
        let grows = entries.windows(2).all(|w| w[0].timestamp.get() < w[1].timestamp.get());
        grows.then(|| TimeIndex { entries: entries.to_vec() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_lookup_finds_floor_entry() {
        let mut idx = OffsetIndex::default();
        assert_eq!(idx.lookup(5), 0);
        idx.append(10, 4096);
        idx.append(20, 8192);
        assert_eq!(idx.lookup(9), 0);
        assert_eq!(idx.lookup(10), 4096);
        assert_eq!(idx.lookup(19), 4096);
        assert_eq!(idx.lookup(1000), 8192);
        let loaded = OffsetIndex::from_bytes(idx.as_bytes()).unwrap();
        assert_eq!(loaded.lookup(15), 4096);
        assert_eq!(&idx.as_bytes()[..8], &[0, 0, 0, 10, 0, 0, 0x10, 0]);
    }

    #[test]
    fn corrupt_index_bytes_are_refused() {
        assert!(OffsetIndex::from_bytes(&[0u8; 7]).is_none());
        let mut idx = OffsetIndex::default();
        idx.append(10, 100);
        idx.append(20, 200);
        let mut bytes = idx.as_bytes().to_vec();
        bytes.swap(3, 11);
        assert!(OffsetIndex::from_bytes(&bytes).is_none());
    }

    #[test]
    #[should_panic(expected = "offset index must grow")]
    fn offset_index_refuses_going_back() {
        let mut idx = OffsetIndex::default();
        idx.append(10, 100);
        idx.append(10, 200);
    }

    #[test]
    fn time_index_scan_start() {
        let mut t = TimeIndex::default();
        t.maybe_append(100, 0);
        t.maybe_append(90, 5); // not larger: ignored
        t.maybe_append(200, 10);
        assert_eq!(t.len(), 2);
        assert_eq!(t.scan_start(50), 0);
        assert_eq!(t.scan_start(150), 0);
        assert_eq!(t.scan_start(201), 10);
        assert!(TimeIndex::from_bytes(t.as_bytes()).is_some());
    }
}
