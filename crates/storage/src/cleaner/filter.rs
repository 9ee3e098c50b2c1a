//! Kafka's cleaning rules for one batch at a time, in offset order over the
//! cleaned range (`LogCleaner`'s `cleanInto` and `CleanedTransactionMetadata`):
//!
//! - A record is kept if it is the latest of its key in the key map (or past
//!   what the map covers), and either has a value or is a tombstone whose
//!   batch's delete horizon has not passed yet. A record without a key goes.
//! - A tombstone kept in a batch without a delete horizon gets one (KIP-534):
//!   the batch is rewritten with horizon = now + `delete.retention.ms`.
//! - Records of aborted transactions go. A transaction marker stays until a
//!   pass finds no batch of its transaction, then gets a horizon, and goes
//!   once that passed.
//! - The batch holding an active producer's last sequence stays, empty if
//!   nothing of it is kept, so idempotence survives a clean.
//! - A batch is copied as stored unless records are dropped from it or a
//!   horizon is set; then it is rebuilt with its own codec, base offset, last
//!   offset delta and producer fields.

use std::collections::{HashMap, HashSet};

use super::offset_map::{Latest, OffsetMap};
use crate::producer_state::AbortedTxn;
use sluice_protocol::batch::{BatchHeader, ATTR_CONTROL, ATTR_TRANSACTIONAL};
use sluice_protocol::records::{self, RecordsError};

/// What a producer's last batch in the partition is, for the retention of its sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    pub epoch: i16,
    /// Last offset of the producer's last data batch; `None` if it only has a marker.
    pub last_data_offset: Option<i64>,
}

/// What becomes of one stored batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Copied as stored.
    Keep,
    /// Replaced by these bytes (fewer records, a horizon set, or empty).
    Replace(Vec<u8>),
    /// Removed.
    Drop,
}

/// Decisions for the batches of one pass, in offset order.
pub struct BatchFilter<'a> {
    map: &'a OffsetMap,
    /// Records at or past this offset were not seen by the map: kept.
    map_end: i64,
    now_ms: i64,
    delete_retention_ms: i64,
    /// Aborted transactions by first offset.
    aborted: Vec<AbortedTxn>,
    next_aborted: usize,
    /// Aborted transactions reached, by producer, with the last batch of
    /// each seen. One whose marker went in an earlier pass ends at its
    /// marker's offset all the same.
    ongoing_aborted: HashMap<i64, (AbortedTxn, Option<i64>)>,
    ongoing_committed: HashSet<i64>,
    producers: &'a HashMap<i64, ActiveProducer>,
    /// Decompressed bytes a batch may have.
    batch_bytes_max: usize,
    /// The earliest horizon among tombstones and markers kept.
    pub next_horizon_ms: Option<i64>,
    /// Abort markers removed since the last [`take_removed_aborts`](Self::take_removed_aborts):
    /// (producer id, marker offset).
    removed_aborts: Vec<(i64, i64)>,
}

impl<'a> BatchFilter<'a> {
    pub fn new(
        map: &'a OffsetMap,
        map_end: i64,
        now_ms: i64,
        delete_retention_ms: i64,
        mut aborted: Vec<AbortedTxn>,
        producers: &'a HashMap<i64, ActiveProducer>,
        batch_bytes_max: usize,
    ) -> BatchFilter<'a> {
        aborted.sort_by_key(|a| a.first_offset);
        BatchFilter {
            map,
            map_end,
            now_ms,
            delete_retention_ms,
            aborted,
            next_aborted: 0,
            ongoing_aborted: HashMap::new(),
            ongoing_committed: HashSet::new(),
            producers,
            batch_bytes_max,
            next_horizon_ms: None,
            removed_aborts: Vec::new(),
        }
    }

    fn consume_aborted_up_to(&mut self, offset: i64) {
        while let Some(a) = self.aborted.get(self.next_aborted) {
            if a.first_offset > offset {
                break;
            }
            self.ongoing_aborted.insert(a.producer_id, (*a, None));
            self.next_aborted += 1;
        }
    }

    /// Whether a data batch's records may all go (it belongs to an aborted transaction).
    fn on_data_batch(&mut self, header: &BatchHeader) -> bool {
        self.consume_aborted_up_to(header.last_offset());
        if !header.is_transactional() {
            return false;
        }
        match self.ongoing_aborted.get_mut(&header.producer_id) {
            Some((txn, last_seen)) if header.base_offset <= txn.last_offset => {
                *last_seen = Some(header.last_offset());
                true
            }
            _ => {
                self.ongoing_committed.insert(header.producer_id);
                false
            }
        }
    }

    /// Whether a marker may go: no batch of its transaction was met in this pass.
    fn on_control_batch(&mut self, header: &BatchHeader, bytes: &[u8]) -> bool {
        self.consume_aborted_up_to(header.last_offset());
        match sluice_protocol::batch::control_marker(bytes) {
            // An empty control batch was cleaned before.
            None => true,
            Some((false, _)) => !matches!(self.ongoing_aborted.remove(&header.producer_id), Some((_, Some(_)))),
            Some((true, _)) => !self.ongoing_committed.remove(&header.producer_id),
        }
    }

    fn is_producers_last(&self, header: &BatchHeader) -> bool {
        if header.producer_id < 0 {
            return false;
        }
        match self.producers.get(&header.producer_id) {
            Some(p) => match p.last_data_offset {
                Some(offset) => header.last_offset() == offset,
                None => header.is_control() && header.producer_epoch == p.epoch,
            },
            None => false,
        }
    }

    fn keeps_record(&self, offset: i64, key: Option<&[u8]>, has_value: bool, horizon: Option<i64>) -> bool {
        if offset >= self.map_end {
            return true;
        }
        let Some(key) = key else { return false };
        let latest = match self.map.get(key) {
            Latest::Absent => true,
            Latest::Unsure => return true,
            Latest::At(found) => offset >= found,
        };
        let keeps_deletes = horizon.is_none_or(|h| self.now_ms < h);
        latest && (has_value || keeps_deletes)
    }

    /// Decides one stored batch. `keep_offsets` forces a batch that would go
    /// to stay as an empty batch (the last of an output segment, so that the
    /// segment still ends where it did).
    pub fn filter(&mut self, bytes: &[u8], keep_offsets: bool) -> Result<Verdict, RecordsError> {
        let header = BatchHeader::parse(bytes).ok_or(RecordsError::Truncated)?;
        let horizon = header.delete_horizon_ms();
        let can_discard =
            if header.is_control() { self.on_control_batch(&header, bytes) } else { self.on_data_batch(&header) };
        let discard_records =
            if header.is_control() { can_discard && horizon.is_some_and(|h| h <= self.now_ms) } else { can_discard };
        let producers_last = self.is_producers_last(&header);
        let marker_of_empty_txn = can_discard && header.is_control();
        if discard_records {
            if header.is_control() && sluice_protocol::batch::control_marker(bytes).is_some_and(|(commit, _)| !commit) {
                self.removed_aborts.push((header.producer_id, header.base_offset));
            }
            return Ok(emptied(&header, producers_last, keep_offsets));
        }
        if header.is_control() {
            // The marker itself is kept; it gets a horizon once its transaction is empty.
            if marker_of_empty_txn && horizon.is_none() {
                let decoded = records::decode(bytes, self.batch_bytes_max)?;
                let all: Vec<usize> = (0..decoded.views.len()).collect();
                let h = self.horizon_from_now();
                self.note_horizon(h);
                return Ok(Verdict::Replace(records::rebuild(&decoded, &all, Some(h))?));
            }
            if let Some(h) = horizon {
                self.note_horizon(h);
            }
            return Ok(Verdict::Keep);
        }
        if header.base_offset >= self.map_end {
            return Ok(Verdict::Keep);
        }
        let decoded = records::decode(bytes, self.batch_bytes_max)?;
        let mut keep = Vec::with_capacity(decoded.views.len());
        let mut tombstones = false;
        for (i, view) in decoded.views.iter().enumerate() {
            let key = view.key.clone().map(|r| &decoded.records[r]);
            let offset = view.offset(header.base_offset);
            if self.keeps_record(offset, key, view.value.is_some(), horizon) {
                keep.push(i);
                tombstones |= view.value.is_none();
            }
        }
        if keep.is_empty() {
            return Ok(emptied(&header, producers_last, keep_offsets));
        }
        let set_horizon = tombstones && horizon.is_none();
        let new_horizon = if set_horizon { Some(self.horizon_from_now()) } else { None };
        if tombstones {
            self.note_horizon(new_horizon.or(horizon).expect("a horizon is set or kept"));
        }
        if keep.len() == decoded.views.len() && !set_horizon {
            return Ok(Verdict::Keep);
        }
        Ok(Verdict::Replace(records::rebuild(&decoded, &keep, new_horizon)?))
    }

    /// The abort markers removed since the last call: their transactions
    /// leave the aborted-transaction index once the removal is swapped in.
    pub fn take_removed_aborts(&mut self) -> Vec<(i64, i64)> {
        std::mem::take(&mut self.removed_aborts)
    }

    fn horizon_from_now(&self) -> i64 {
        self.now_ms.saturating_add(self.delete_retention_ms)
    }

    fn note_horizon(&mut self, horizon: i64) {
        self.next_horizon_ms = Some(self.next_horizon_ms.map_or(horizon, |h| h.min(horizon)));
    }
}

/// What is left of a batch whose records all go: the empty batch Kafka keeps
/// for a producer's last sequence; else, for a batch that must keep its
/// offsets, an empty batch that belongs to no producer or transaction (so it
/// holds no marker back); else nothing.
fn emptied(header: &BatchHeader, producers_last: bool, keep_offsets: bool) -> Verdict {
    if producers_last {
        return Verdict::Replace(records::empty_batch(header));
    }
    if keep_offsets {
        let placeholder = BatchHeader {
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            attributes: header.attributes & !(ATTR_TRANSACTIONAL | ATTR_CONTROL),
            ..*header
        };
        return Verdict::Replace(records::empty_batch(&placeholder));
    }
    Verdict::Drop
}
