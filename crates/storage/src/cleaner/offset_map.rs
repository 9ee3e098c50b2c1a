//! The key map of one cleaning pass: for each key of the dirty section, the
//! offset of its latest record, in fixed memory.
//!
//! A key is stored as two independent 64-bit hashes. The table is indexed by
//! the first; the second tells keys apart when the first collides. Two keys
//! whose first hashes collide are detected when both are inserted, and the
//! slot is then marked ambiguous: every record hashing there is kept. A
//! collision can therefore never drop a live record unless both 128 bits
//! collide (the odds of Kafka's MD5-keyed map).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// Bytes one slot takes.
pub const SLOT_BYTES: usize = std::mem::size_of::<Slot>();

/// An ambiguous slot: two different keys share its first hash.
const AMBIGUOUS: i64 = i64::MAX;
const EMPTY: i64 = -1;

#[derive(Debug, Clone, Copy)]
struct Slot {
    first: u64,
    second: u64,
    offset: i64,
}

const EMPTY_SLOT: Slot = Slot { first: 0, second: 0, offset: EMPTY };

/// What the map says about a record's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latest {
    /// The key is not in the map.
    Absent,
    /// The key's latest offset in the dirty section.
    At(i64),
    /// The map cannot tell this key from another: keep the record.
    Unsure,
}

/// A fixed-size open-addressing map from a key's hashes to its latest offset.
pub struct OffsetMap {
    slots: Vec<Slot>,
    entries: usize,
    entries_max: usize,
    first_hasher: RandomState,
    second_hasher: RandomState,
}

impl OffsetMap {
    /// A map in about `bytes` of memory, filled to at most `load_factor` of its slots.
    pub fn with_bytes(bytes: usize, load_factor: f64) -> OffsetMap {
        let slots = (bytes / SLOT_BYTES).max(2);
        let entries_max = ((slots as f64) * load_factor.clamp(0.1, 0.95)) as usize;
        OffsetMap {
            slots: vec![EMPTY_SLOT; slots],
            entries: 0,
            entries_max: entries_max.clamp(1, slots - 1),
            first_hasher: RandomState::new(),
            second_hasher: RandomState::new(),
        }
    }

    /// Forgets every key (the memory stays).
    pub fn clear(&mut self) {
        self.slots.fill(EMPTY_SLOT);
        self.entries = 0;
    }

    pub fn len(&self) -> usize {
        self.entries
    }
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
    /// Keys the map can still take.
    pub fn room(&self) -> usize {
        self.entries_max - self.entries
    }

    fn hashes(&self, key: &[u8]) -> (u64, u64) {
        (self.first_hasher.hash_one(key), self.second_hasher.hash_one(key))
    }

    /// The slot holding `first`, or the empty slot where it would go.
    fn find(&self, first: u64) -> usize {
        let n = self.slots.len();
        let mut i = (first as usize) % n;
        loop {
            let slot = &self.slots[i];
            if slot.offset == EMPTY || slot.first == first {
                return i;
            }
            i = (i + 1) % n;
        }
    }

    /// Records `offset` as the latest of `key`. Returns false, changing
    /// nothing, when the key is new and the map is full.
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let (first, second) = self.hashes(key);
        let i = self.find(first);
        let slot = &mut self.slots[i];
        if slot.offset == EMPTY {
            if self.entries >= self.entries_max {
                return false;
            }
            *slot = Slot { first, second, offset };
            self.entries += 1;
        } else if slot.offset == AMBIGUOUS {
        } else if slot.second == second {
            slot.offset = slot.offset.max(offset);
        } else {
            slot.offset = AMBIGUOUS;
        }
        true
    }

    /// The latest offset of `key`, as far as the map can tell.
    pub fn get(&self, key: &[u8]) -> Latest {
        let (first, second) = self.hashes(key);
        let slot = &self.slots[self.find(first)];
        match slot.offset {
            EMPTY => Latest::Absent,
            AMBIGUOUS => Latest::Unsure,
            _ if slot.second != second => Latest::Unsure,
            offset => Latest::At(offset),
        }
    }

    #[cfg(test)]
    fn put_hashed(&mut self, first: u64, second: u64, offset: i64) {
        let i = self.find(first);
        let slot = &mut self.slots[i];
        if slot.offset == EMPTY {
            *slot = Slot { first, second, offset };
            self.entries += 1;
        } else if slot.second != second {
            slot.offset = AMBIGUOUS;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_offsets_and_fullness() {
        let mut map = OffsetMap::with_bytes(SLOT_BYTES * 100, 0.5);
        assert_eq!(map.room(), 50);
        assert!(map.put(b"a", 1));
        assert!(map.put(b"a", 7));
        assert!(map.put(b"a", 3), "an older offset does not win");
        assert_eq!(map.get(b"a"), Latest::At(7));
        assert_eq!(map.get(b"b"), Latest::Absent);
        for i in 0..49 {
            assert!(map.put(format!("k{i}").as_bytes(), i));
        }
        assert_eq!(map.room(), 0);
        assert!(!map.put(b"new", 99), "full: a new key is refused");
        assert!(map.put(b"a", 100), "a known key still updates");
        assert_eq!(map.get(b"new"), Latest::Absent);
        map.clear();
        assert_eq!((map.len(), map.get(b"a")), (0, Latest::Absent));
    }

    #[test]
    fn a_collision_of_the_first_hash_keeps_both_keys_records() {
        let mut map = OffsetMap::with_bytes(SLOT_BYTES * 64, 0.9);
        let (first, second) = map.hashes(b"x");
        // Another key with the same first hash and a different second one.
        map.put_hashed(first, second ^ 1, 5);
        assert_eq!(map.get(b"x"), Latest::Unsure, "the slot belongs to another key");
        map.put(b"x", 9);
        assert_eq!(map.get(b"x"), Latest::Unsure, "both inserted: ambiguous");
        map.put(b"x", 10);
        assert_eq!(map.get(b"x"), Latest::Unsure, "ambiguity is never undone");
    }
}
