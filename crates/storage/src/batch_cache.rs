//! The shard's cache of batches read from disk, as Redpanda's batch cache:
//! one memory budget for all the shard's partitions, least recently used out
//! first. An entry is what one disk read found: whole batches, contiguous,
//! kept as the read's own buffer (zero-copy `Bytes`, see `dma_bytes`), with
//! where they end in their segment so that a sequential reader's next read
//! (the read-ahead) can start there without the offset index.
//!
//! Entries are only ever synced bytes (below the high watermark when read),
//! which never change in place: a log forgets its entries when compaction
//! swaps a segment or the log closes. Entries below the log start offset are
//! never asked for (such fetches are out of range) and age out.
//!
//! The same shard-wide view bounds the logs' tail caches (the batches each
//! log appended last, see `log::read`): their bytes count against one budget,
//! and once it is passed the logs appended to least recently lose their
//! synced tails first, down to three quarters of it, so that idle partitions
//! do not hold memory the busy ones need.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::{Rc, Weak};

use bytes::Bytes;
use futures::future::{LocalBoxFuture, Shared};

use crate::log::Log;
use sluice_core::constants::{BATCH_CACHE_BYTES_PER_SHARD_MAX, TAIL_CACHE_BYTES_PER_SHARD_MAX};

/// Batches one disk read found.
#[derive(Debug, Clone)]
pub struct Cached {
    /// Base offset of the first batch.
    pub first_offset: i64,
    /// The offset after the last batch.
    pub end_offset: i64,
    /// Base offset of the segment the batches were read from.
    pub segment_base: i64,
    /// Position in that segment just after the last batch.
    pub end_position: u64,
    /// The batches, whole.
    pub bytes: Bytes,
}

/// A read under way into the cache (a read-ahead), which fetches reaching it may wait for.
pub type Pending = Shared<LocalBoxFuture<'static, ()>>;

struct Entry {
    cached: Cached,
    /// When it was last used (the key of `Inner::recency`).
    used: u64,
}

#[derive(Default)]
struct Inner {
    /// By (log, first offset).
    entries: BTreeMap<(u64, i64), Entry>,
    /// (log, first offset) by last use, oldest first.
    recency: BTreeMap<u64, (u64, i64)>,
    clock: u64,
    bytes: usize,
    /// Per log: the offset a read-ahead under way starts at, its token, and its completion.
    pending: HashMap<u64, (i64, u64, Pending)>,
    tokens: u64,
}

/// What the shard's tail caches hold, and a clock ordering their appends.
#[derive(Debug, Default)]
pub(crate) struct TailAccount {
    bytes: Cell<usize>,
    clock: Cell<u64>,
}

impl TailAccount {
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.get()
    }
    pub(crate) fn grew(&self, bytes: usize) {
        self.bytes.set(self.bytes.get() + bytes);
    }
    pub(crate) fn shrank(&self, bytes: usize) {
        self.bytes.set(self.bytes.get() - bytes);
    }
    /// A tick later than every earlier one.
    pub(crate) fn tick(&self) -> u64 {
        self.clock.set(self.clock.get() + 1);
        self.clock.get()
    }
}

/// One shard's batch cache.
pub struct BatchCache {
    budget_bytes: usize,
    inner: RefCell<Inner>,
    next_log: Cell<u64>,
    tail_budget_bytes: usize,
    tail_account: Rc<TailAccount>,
    /// The shard's open logs, by a key of their own, whose tails may be trimmed.
    tails: RefCell<HashMap<u64, Weak<Log>>>,
}

impl Default for BatchCache {
    fn default() -> Self {
        BatchCache::new(BATCH_CACHE_BYTES_PER_SHARD_MAX, TAIL_CACHE_BYTES_PER_SHARD_MAX)
    }
}

impl BatchCache {
    /// A cache keeping up to `budget_bytes` of disk reads, and trimming the
    /// logs' tail caches once they hold over `tail_budget_bytes`.
    pub fn new(budget_bytes: usize, tail_budget_bytes: usize) -> BatchCache {
        BatchCache {
            budget_bytes,
            inner: RefCell::default(),
            next_log: Cell::new(0),
            tail_budget_bytes,
            tail_account: Rc::default(),
            tails: RefCell::default(),
        }
    }

    /// Bytes held by the shard's tail caches.
    pub fn tail_bytes(&self) -> usize {
        self.tail_account.bytes()
    }

    pub(crate) fn tail_account(&self) -> Rc<TailAccount> {
        self.tail_account.clone()
    }

    /// Lists `log` (under a key from [`BatchCache::register`]) among the logs whose tails may be trimmed.
    pub(crate) fn register_tail(&self, key: u64, log: Weak<Log>) {
        self.tails.borrow_mut().insert(key, log);
    }

    pub(crate) fn forget_tail(&self, key: u64) {
        self.tails.borrow_mut().remove(&key);
    }

    /// When the tail caches hold more than their budget: drops the synced
    /// tails of the logs appended to least recently until they hold three
    /// quarters of it. A log busy at the moment (its state borrowed) is passed over.
    pub(crate) fn trim_tails(&self) {
        if self.tail_bytes() <= self.tail_budget_bytes {
            return;
        }
        let low_water = self.tail_budget_bytes / 4 * 3;
        let mut logs: Vec<(u64, Rc<Log>)> = Vec::new();
        self.tails.borrow_mut().retain(|_, log| match log.upgrade() {
            Some(log) => {
                if let Some(tick) = log.tail_last_append() {
                    logs.push((tick, log));
                }
                true
            }
            None => false,
        });
        logs.sort_unstable_by_key(|(tick, _)| *tick);
        for (_, log) in logs {
            if self.tail_bytes() <= low_water {
                break;
            }
            log.drop_synced_tail();
        }
    }

    /// A key for a newly opened log; never reused, so a log opened again
    /// (or a topic re-created) never sees another's entries.
    pub fn register(&self) -> u64 {
        let id = self.next_log.get();
        self.next_log.set(id + 1);
        id
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.inner.borrow().bytes
    }

    /// The entry of `log` holding `offset`, marked as just used.
    pub fn get(&self, log: u64, offset: i64) -> Option<Cached> {
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        let (&key, entry) = inner.entries.range_mut((log, i64::MIN)..=(log, offset)).next_back()?;
        if entry.cached.end_offset <= offset {
            return None;
        }
        inner.recency.remove(&entry.used);
        inner.clock += 1;
        entry.used = inner.clock;
        inner.recency.insert(entry.used, key);
        Some(entry.cached.clone())
    }

    /// Keeps `cached` for `log`, in place of the entries it overlaps; evicts
    /// the least recently used entries (of any log) beyond the budget. An
    /// entry larger than the whole budget is not kept.
    pub fn insert(&self, log: u64, cached: Cached) {
        if cached.bytes.len() > self.budget_bytes || cached.end_offset <= cached.first_offset {
            return;
        }
        let mut inner = self.inner.borrow_mut();
        let overlapping: Vec<i64> = inner
            .entries
            .range((log, i64::MIN)..(log, cached.end_offset))
            .filter(|(_, e)| e.cached.end_offset > cached.first_offset)
            .map(|(&(_, first), _)| first)
            .collect();
        for first in overlapping {
            inner.remove((log, first));
        }
        inner.clock += 1;
        let used = inner.clock;
        inner.bytes += cached.bytes.len();
        inner.recency.insert(used, (log, cached.first_offset));
        inner.entries.insert((log, cached.first_offset), Entry { cached, used });
        while inner.bytes > self.budget_bytes {
            let Some((_, key)) = inner.recency.pop_first() else { break };
            inner.remove(key);
        }
    }

    /// Drops every entry of `log`, and forgets its read-ahead under way.
    pub fn forget(&self, log: u64) {
        let mut inner = self.inner.borrow_mut();
        let keys: Vec<(u64, i64)> = inner.entries.range((log, i64::MIN)..=(log, i64::MAX)).map(|(k, _)| *k).collect();
        for key in keys {
            inner.remove(key);
        }
        inner.pending.remove(&log);
    }

    /// The read-ahead under way for `log`: where it starts, and its completion.
    pub fn pending(&self, log: u64) -> Option<(i64, Pending)> {
        self.inner.borrow().pending.get(&log).map(|(offset, _, done)| (*offset, done.clone()))
    }

    /// A token naming one read-ahead.
    pub fn next_token(&self) -> u64 {
        let mut inner = self.inner.borrow_mut();
        inner.tokens += 1;
        inner.tokens
    }

    /// Records read-ahead `token` under way for `log` from `offset`, unless one is.
    pub fn start_pending(&self, log: u64, offset: i64, token: u64, done: Pending) -> bool {
        let mut inner = self.inner.borrow_mut();
        if inner.pending.contains_key(&log) {
            return false;
        }
        inner.pending.insert(log, (offset, token, done));
        true
    }

    /// Read-ahead `token` of `log` ended.
    pub fn end_pending(&self, log: u64, token: u64) {
        let mut inner = self.inner.borrow_mut();
        if inner.pending.get(&log).is_some_and(|(_, t, _)| *t == token) {
            inner.pending.remove(&log);
        }
    }
}

impl Inner {
    fn remove(&mut self, key: (u64, i64)) {
        if let Some(entry) = self.entries.remove(&key) {
            self.recency.remove(&entry.used);
            self.bytes -= entry.cached.bytes.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(first: i64, end: i64, bytes: usize) -> Cached {
        Cached {
            first_offset: first,
            end_offset: end,
            segment_base: 0,
            end_position: 0,
            bytes: Bytes::from(vec![0; bytes]),
        }
    }

    #[test]
    fn entries_are_found_by_any_offset_they_hold() {
        let cache = BatchCache::new(1000, TAIL_CACHE_BYTES_PER_SHARD_MAX);
        let log = cache.register();
        cache.insert(log, cached(10, 20, 100));
        assert!(cache.get(log, 9).is_none());
        assert_eq!(cache.get(log, 10).unwrap().first_offset, 10);
        assert_eq!(cache.get(log, 19).unwrap().end_offset, 20);
        assert!(cache.get(log, 20).is_none());
        assert!(cache.get(cache.register(), 15).is_none(), "another log's offsets are its own");
    }

    #[test]
    fn the_budget_is_kept_by_evicting_the_least_recently_used_of_any_log() {
        let cache = BatchCache::new(300, TAIL_CACHE_BYTES_PER_SHARD_MAX);
        let (a, b) = (cache.register(), cache.register());
        cache.insert(a, cached(0, 10, 100));
        cache.insert(b, cached(0, 10, 100));
        cache.insert(a, cached(10, 20, 100));
        // Used: b's entry is now the most recent, a's first the least.
        assert!(cache.get(b, 5).is_some());
        cache.insert(b, cached(10, 20, 100));
        assert_eq!(cache.bytes(), 300);
        assert!(cache.get(a, 5).is_none(), "the least recently used went first");
        assert!(cache.get(a, 15).is_some() && cache.get(b, 5).is_some() && cache.get(b, 15).is_some());
        // Larger than the whole budget: not kept, nothing evicted for it.
        cache.insert(a, cached(20, 30, 301));
        assert!(cache.get(a, 25).is_none());
        assert_eq!(cache.bytes(), 300);
    }

    #[test]
    fn an_entry_replaces_those_it_overlaps_and_forget_drops_a_log() {
        let cache = BatchCache::new(1000, TAIL_CACHE_BYTES_PER_SHARD_MAX);
        let (a, b) = (cache.register(), cache.register());
        cache.insert(a, cached(0, 10, 100));
        cache.insert(a, cached(10, 20, 100));
        cache.insert(a, cached(5, 15, 100));
        assert_eq!(cache.bytes(), 100);
        assert!(cache.get(a, 2).is_none() && cache.get(a, 17).is_none());
        assert_eq!(cache.get(a, 12).unwrap().first_offset, 5);
        cache.insert(b, cached(0, 10, 100));
        cache.forget(a);
        assert_eq!(cache.bytes(), 100);
        assert!(cache.get(a, 12).is_none() && cache.get(b, 0).is_some());
    }
}
