//! A partition's producer state, as Kafka keeps it for idempotent producers:
//! per producer id, the epoch and the sequence range and offsets of its last
//! five batches. A retried batch is recognised and answered with its original
//! offsets; a gap in sequences or an old epoch is refused.
//!
//! For transactions it also keeps, per producer, the first offset of its open
//! transaction in this partition (the last stable offset is the smallest of
//! them) and the list of aborted transactions that read_committed consumers
//! need to drop aborted records.
//!
//! The table is snapshotted to `<offset>.snapshot` files (at segment rolls and
//! at clean shutdown) and rebuilt on open from the newest snapshot plus the
//! batches (and transaction markers) after it.

use std::collections::{HashMap, VecDeque};

use sluice_core::constants::{PRODUCERS_PER_PARTITION_MAX, PRODUCER_BATCHES_RETAINED};
use sluice_protocol::batch::BatchHeader;

/// Why a producer's batch is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    /// INVALID_PRODUCER_EPOCH: the batch's epoch is older than the producer's.
    #[error("producer {producer_id} epoch {epoch} is older than {current}")]
    InvalidEpoch { producer_id: i64, epoch: i16, current: i16 },
    /// OUT_OF_ORDER_SEQUENCE_NUMBER: a gap or a rewind in sequence numbers.
    #[error("producer {producer_id}: sequence {found} does not follow {last}")]
    OutOfOrder { producer_id: i64, last: i32, found: i32 },
    /// UNKNOWN_PRODUCER_ID: no state for this producer and the batch does not start at 0.
    #[error("no state for producer {producer_id} and sequence {found} is not 0")]
    UnknownProducer { producer_id: i64, found: i32 },
    /// TRANSACTION_COORDINATOR_FENCED: a marker from a coordinator epoch older
    /// than the one of the producer's last marker (a zombie coordinator's).
    #[error("producer {producer_id}: coordinator epoch {coordinator_epoch} is older than {current}")]
    CoordinatorFenced { producer_id: i64, coordinator_epoch: i32, current: i32 },
}

/// Sequence range and offsets of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRecord {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

/// One producer's state in a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// Newest last, at most `PRODUCER_BATCHES_RETAINED`.
    pub batches: VecDeque<BatchRecord>,
    /// Position in append order, to evict the least recently active producer.
    pub last_touch: u64,
    /// First offset of the producer's open transaction in this partition.
    pub txn_first_offset: Option<i64>,
    /// Timestamp of the producer's last batch (DescribeProducers).
    pub last_timestamp: i64,
    /// Coordinator epoch of the last transaction marker.
    pub coordinator_epoch: i32,
}

/// A transaction that was aborted: its records from `first_offset` up to its
/// marker at `last_offset` must be dropped by read_committed consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// A transaction marker as the producer state records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkerRecord {
    pub producer_id: i64,
    pub epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
    /// The marker's offset.
    pub offset: i64,
    /// The marker's timestamp: the producer's last activity, as Kafka counts it.
    pub timestamp: i64,
}

/// What to do with a producer's batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// New and in order: append it.
    Append,
    /// Already appended: answer with these offsets, write nothing.
    Duplicate(BatchRecord),
}

/// The last sequence number of a batch, wrapping at `i32::MAX` as Kafka does.
pub fn last_sequence(first_seq: i32, last_offset_delta: i32) -> i32 {
    ((first_seq as i64 + last_offset_delta as i64) % (i32::MAX as i64 + 1)) as i32
}

/// Whether `next_seq` comes right after `last_seq`.
pub fn follows(last_seq: i32, next_seq: i32) -> bool {
    next_seq as i64 == last_seq as i64 + 1 || (next_seq == 0 && last_seq == i32::MAX)
}

/// All producers of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
    touches: u64,
    /// In marker order (so by `last_offset`).
    aborted: VecDeque<AbortedTxn>,
}

impl ProducerStateTable {
    pub fn len(&self) -> usize {
        self.producers.len()
    }
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Decides whether a batch of `producer_id` is appended, a duplicate, or refused.
    pub fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
    ) -> Result<SequenceCheck, ProducerError> {
        let Some(entry) = self.producers.get(&producer_id) else {
            if first_seq != 0 {
                return Err(ProducerError::UnknownProducer { producer_id, found: first_seq });
            }
            return Ok(SequenceCheck::Append);
        };
        if epoch < entry.epoch {
            return Err(ProducerError::InvalidEpoch { producer_id, epoch, current: entry.epoch });
        }
        if epoch > entry.epoch {
            // A bumped epoch starts its sequences again at 0 (KIP-360).
            if first_seq != 0 {
                return Err(ProducerError::OutOfOrder { producer_id, last: -1, found: first_seq });
            }
            return Ok(SequenceCheck::Append);
        }
        if let Some(dup) = entry.batches.iter().find(|b| b.first_seq == first_seq && b.last_seq == last_seq) {
            return Ok(SequenceCheck::Duplicate(*dup));
        }
        let last = entry.batches.back().map(|b| b.last_seq).unwrap_or(-1);
        if !follows(last, first_seq) {
            return Err(ProducerError::OutOfOrder { producer_id, last, found: first_seq });
        }
        Ok(SequenceCheck::Append)
    }

    fn entry(&mut self, producer_id: i64, epoch: i16) -> &mut ProducerEntry {
        self.touches += 1;
        let touch = self.touches;
        if !self.producers.contains_key(&producer_id) && self.producers.len() >= PRODUCERS_PER_PARTITION_MAX {
            // Evict the least recently active producer without an open transaction.
            let oldest = self
                .producers
                .iter()
                .filter(|(_, e)| e.txn_first_offset.is_none())
                .min_by_key(|(_, e)| e.last_touch)
                .map(|(id, _)| *id);
            if let Some(id) = oldest {
                self.producers.remove(&id);
            }
        }
        let entry = self.producers.entry(producer_id).or_insert_with(|| ProducerEntry {
            epoch,
            batches: VecDeque::new(),
            last_touch: touch,
            txn_first_offset: None,
            last_timestamp: -1,
            coordinator_epoch: -1,
        });
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.last_touch = touch;
        entry
    }

    /// Records an appended batch (after [`check`](Self::check) said Append, or
    /// while replaying the log). A transactional batch opens the producer's
    /// transaction in this partition if none is open.
    pub fn record(&mut self, producer_id: i64, epoch: i16, batch: BatchRecord, transactional: bool, timestamp: i64) {
        let entry = self.entry(producer_id, epoch);
        entry.batches.push_back(batch);
        while entry.batches.len() > PRODUCER_BATCHES_RETAINED {
            entry.batches.pop_front();
        }
        entry.last_timestamp = timestamp;
        if transactional && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(batch.base_offset);
        }
    }

    /// Whether a transaction marker of `producer_id` at `epoch` is accepted:
    /// `Ok(true)` if the producer has a transaction open here, `Ok(false)` if
    /// there is nothing to end, an error if the marker's epoch is older.
    pub fn check_marker(&self, producer_id: i64, epoch: i16) -> Result<bool, ProducerError> {
        match self.producers.get(&producer_id) {
            None => Ok(false),
            Some(e) if epoch < e.epoch => Err(ProducerError::InvalidEpoch { producer_id, epoch, current: e.epoch }),
            Some(e) => Ok(e.txn_first_offset.is_some()),
        }
    }

    /// Kafka's coordinator-epoch check of a marker: refused when the producer's
    /// last marker came from a newer coordinator epoch.
    pub fn check_coordinator_epoch(&self, producer_id: i64, coordinator_epoch: i32) -> Result<(), ProducerError> {
        match self.producers.get(&producer_id) {
            Some(e) if coordinator_epoch < e.coordinator_epoch => {
                Err(ProducerError::CoordinatorFenced { producer_id, coordinator_epoch, current: e.coordinator_epoch })
            }
            _ => Ok(()),
        }
    }

    /// Ends the producer's open transaction with `marker`.
    pub fn end_txn(&mut self, marker: MarkerRecord) {
        let entry = self.entry(marker.producer_id, marker.epoch);
        entry.coordinator_epoch = marker.coordinator_epoch;
        entry.last_timestamp = marker.timestamp;
        let Some(first_offset) = entry.txn_first_offset.take() else { return };
        if !marker.commit {
            let producer_id = marker.producer_id;
            self.aborted.push_back(AbortedTxn { producer_id, first_offset, last_offset: marker.offset });
        }
    }

    /// Forgets the producers idle for `expiration_ms` or longer (by the
    /// timestamp of their last batch or marker), as Kafka's
    /// `ProducerStateManager.removeExpiredProducers` does for
    /// `producer.id.expiration.ms`; a producer with a transaction open here
    /// is always kept. Returns how many were forgotten.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| e.txn_first_offset.is_some() || now_ms.saturating_sub(e.last_timestamp) < expiration_ms);
        before - self.producers.len()
    }

    /// The first offset of the oldest open transaction, if any.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.producers.values().filter_map(|e| e.txn_first_offset).min()
    }

    /// Aborted transactions with records in `[from, to)`: `(producer id, first offset)`.
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<(i64, i64)> {
        let start = self.aborted.partition_point(|a| a.last_offset < from);
        self.aborted
            .iter()
            .skip(start)
            .filter(|a| a.first_offset < to)
            .map(|a| (a.producer_id, a.first_offset))
            .collect()
    }

    /// Every aborted transaction still in the log, in marker order.
    pub fn aborted_txns(&self) -> Vec<AbortedTxn> {
        self.aborted.iter().copied().collect()
    }

    /// Forgets aborted transactions whose markers `(producer id, marker
    /// offset)` compaction removed (their records went before them).
    pub fn forget_aborted(&mut self, markers: &[(i64, i64)]) {
        let gone: std::collections::HashSet<(i64, i64)> = markers.iter().copied().collect();
        self.aborted.retain(|a| !gone.contains(&(a.producer_id, a.last_offset)));
    }

    /// Forgets aborted transactions wholly below the log start offset.
    pub fn drop_aborted_below(&mut self, log_start_offset: i64) {
        while self.aborted.front().is_some_and(|a| a.last_offset < log_start_offset) {
            self.aborted.pop_front();
        }
    }

    /// Every producer's state, for DescribeProducers.
    pub fn producers(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(id, e)| (*id, e))
    }

    /// Replays a stored batch into the table; `bytes` is the whole batch
    /// (needed for a control batch's marker type).
    pub fn replay(&mut self, header: &BatchHeader, bytes: &[u8]) {
        if header.producer_id < 0 {
            return;
        }
        if header.is_control() {
            if let Some((commit, coordinator_epoch)) = sluice_protocol::batch::control_marker(bytes) {
                self.end_txn(MarkerRecord {
                    producer_id: header.producer_id,
                    epoch: header.producer_epoch,
                    commit,
                    coordinator_epoch,
                    offset: header.base_offset,
                    timestamp: header.max_timestamp,
                });
            }
            return;
        }
        let batch = BatchRecord {
            first_seq: header.base_sequence,
            last_seq: last_sequence(header.base_sequence, header.last_offset_delta),
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
        };
        let transactional = header.is_transactional();
        self.record(header.producer_id, header.producer_epoch, batch, transactional, header.max_timestamp);
    }

    /// The body of a snapshot file: a text header, one line per producer, one
    /// per aborted transaction (the file's checksum is added by `file::seal`).
    pub fn encode(&self) -> Vec<u8> {
        let mut text = String::from("sluice-producers 2\n");
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort_unstable();
        for id in ids {
            let e = &self.producers[id];
            let batches: Vec<String> = e
                .batches
                .iter()
                .map(|b| format!("{}:{}:{}:{}", b.first_seq, b.last_seq, b.base_offset, b.last_offset))
                .collect();
            let txn = e.txn_first_offset.unwrap_or(-1);
            let batches = if batches.is_empty() { "-".to_string() } else { batches.join(",") };
            text.push_str(&format!("{id} {} {batches} {txn} {} {}\n", e.epoch, e.last_timestamp, e.coordinator_epoch));
        }
        for a in &self.aborted {
            text.push_str(&format!("aborted {} {} {}\n", a.producer_id, a.first_offset, a.last_offset));
        }
        text.into_bytes()
    }

    /// Reads a snapshot body written by [`encode`](Self::encode); `None` if it
    /// does not parse.
    pub fn decode(body: &[u8]) -> Option<ProducerStateTable> {
        let mut lines = std::str::from_utf8(body).ok()?.lines();
        let version = match lines.next()? {
            "sluice-producers 1" => 1,
            "sluice-producers 2" => 2,
            _ => return None,
        };
        let mut table = ProducerStateTable::default();
        for line in lines {
            let mut parts = line.split(' ');
            let first = parts.next()?;
            if first == "aborted" {
                let f: Vec<i64> = parts.map(|x| x.parse().ok()).collect::<Option<_>>()?;
                if f.len() != 3 {
                    return None;
                }
                table.aborted.push_back(AbortedTxn { producer_id: f[0], first_offset: f[1], last_offset: f[2] });
                continue;
            }
            let id: i64 = first.parse().ok()?;
            let epoch: i16 = parts.next()?.parse().ok()?;
            let batches = parts.next().unwrap_or("");
            let (txn, timestamp, coordinator_epoch): (i64, i64, i32) = if version >= 2 {
                (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?)
            } else {
                (-1, -1, -1)
            };
            let entry = table.entry(id, epoch);
            entry.txn_first_offset = (txn >= 0).then_some(txn);
            entry.last_timestamp = timestamp;
            entry.coordinator_epoch = coordinator_epoch;
            for batch in batches.split(',').filter(|b| !b.is_empty() && *b != "-") {
                let f: Vec<i64> = batch.split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
                if f.len() != 4 {
                    return None;
                }
                let record =
                    BatchRecord { first_seq: f[0] as i32, last_seq: f[1] as i32, base_offset: f[2], last_offset: f[3] };
                let entry = table.entry(id, epoch);
                entry.batches.push_back(record);
                while entry.batches.len() > PRODUCER_BATCHES_RETAINED {
                    entry.batches.pop_front();
                }
            }
        }
        Some(table)
    }
}

/// One producer's state in a partition, as DescribeProducers shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProducerInfo {
    pub producer_id: i64,
    pub epoch: i16,
    /// Sequence of the last batch kept, or -1.
    pub last_sequence: i32,
    pub last_timestamp: i64,
    pub coordinator_epoch: i32,
    /// First offset of the producer's open transaction, or -1.
    pub txn_first_offset: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(first: i32, last: i32, base: i64) -> BatchRecord {
        BatchRecord { first_seq: first, last_seq: last, base_offset: base, last_offset: base + (last - first) as i64 }
    }

    /// A marker of `producer_id` at `offset` (coordinator epoch 0, timestamp 0).
    fn marker(producer_id: i64, epoch: i16, commit: bool, offset: i64) -> MarkerRecord {
        MarkerRecord { producer_id, epoch, commit, coordinator_epoch: 0, offset, timestamp: 0 }
    }

    #[test]
    fn in_order_duplicates_and_gaps() {
        let mut t = ProducerStateTable::default();
        assert_eq!(t.check(7, 0, 0, 4), Ok(SequenceCheck::Append));
        t.record(7, 0, rec(0, 4, 100), false, 0);
        assert_eq!(t.check(7, 0, 5, 9), Ok(SequenceCheck::Append));
        t.record(7, 0, rec(5, 9, 105), false, 0);
        // The same batch again: a duplicate with its original offsets.
        assert_eq!(t.check(7, 0, 0, 4), Ok(SequenceCheck::Duplicate(rec(0, 4, 100))));
        // A gap.
        assert!(matches!(t.check(7, 0, 11, 12), Err(ProducerError::OutOfOrder { last: 9, found: 11, .. })));
        // An older epoch.
        assert!(matches!(t.check(7, -1, 10, 10), Err(ProducerError::InvalidEpoch { .. })));
        // A bumped epoch restarts at 0.
        assert_eq!(t.check(7, 1, 0, 0), Ok(SequenceCheck::Append));
        assert!(matches!(t.check(7, 1, 3, 3), Err(ProducerError::OutOfOrder { .. })));
        // An unknown producer must start at 0.
        assert!(matches!(t.check(8, 0, 5, 5), Err(ProducerError::UnknownProducer { .. })));
    }

    #[test]
    fn only_five_batches_are_remembered() {
        let mut t = ProducerStateTable::default();
        for i in 0..7 {
            t.record(1, 0, rec(i, i, i as i64), false, 0);
        }
        assert!(matches!(t.check(1, 0, 0, 0), Err(ProducerError::OutOfOrder { .. })));
        assert_eq!(t.check(1, 0, 2, 2), Ok(SequenceCheck::Duplicate(rec(2, 2, 2))));
    }

    #[test]
    fn transactions_open_end_and_are_indexed_when_aborted() {
        let mut t = ProducerStateTable::default();
        t.record(1, 0, rec(0, 1, 10), true, 0);
        t.record(2, 0, rec(0, 0, 12), true, 0);
        t.record(1, 0, rec(2, 2, 13), true, 0);
        assert_eq!(t.first_unstable_offset(), Some(10));
        assert_eq!(t.check_marker(1, 0), Ok(true));
        assert!(t.check_marker(1, -1).is_err());
        assert_eq!(t.check_marker(3, 0), Ok(false));
        t.end_txn(marker(1, 0, true, 14));
        assert_eq!(t.first_unstable_offset(), Some(12));
        assert_eq!(t.check_marker(1, 0), Ok(false));
        t.end_txn(marker(2, 1, false, 15));
        assert_eq!(t.first_unstable_offset(), None);
        assert_eq!(t.aborted_between(0, 12), Vec::<(i64, i64)>::new());
        assert_eq!(t.aborted_between(13, 20), vec![(2, 12)]);
        assert_eq!(t.aborted_between(16, 20), Vec::<(i64, i64)>::new());
        // The bumped epoch of the abort marker fences the producer's old epoch.
        assert!(matches!(t.check(2, 0, 1, 1), Err(ProducerError::InvalidEpoch { .. })));
        t.drop_aborted_below(16);
        assert!(t.aborted_between(0, 100).is_empty());
    }

    #[test]
    fn a_marker_from_an_older_coordinator_epoch_is_fenced() {
        let mut t = ProducerStateTable::default();
        assert_eq!(t.check_coordinator_epoch(1, 0), Ok(()), "unknown producer");
        t.record(1, 0, rec(0, 0, 0), true, 0);
        assert_eq!(t.check_coordinator_epoch(1, 0), Ok(()), "no marker yet (-1)");
        t.end_txn(MarkerRecord { coordinator_epoch: 3, ..marker(1, 0, false, 1) });
        assert_eq!(t.check_coordinator_epoch(1, 3), Ok(()));
        assert_eq!(t.check_coordinator_epoch(1, 4), Ok(()));
        assert!(matches!(t.check_coordinator_epoch(1, 2), Err(ProducerError::CoordinatorFenced { current: 3, .. })));
    }

    #[test]
    fn idle_producers_expire_unless_a_transaction_is_open() {
        let mut t = ProducerStateTable::default();
        t.record(1, 0, rec(0, 0, 0), false, 1_000);
        t.record(2, 0, rec(0, 0, 1), true, 1_000);
        t.record(3, 0, rec(0, 0, 2), false, 5_000);
        assert_eq!(t.remove_expired(5_999, 5_000), 0, "idle 4999 ms");
        assert_eq!(t.remove_expired(6_000, 5_000), 1, "producer 1 idle 5000 ms");
        assert_eq!(t.producers().map(|(id, _)| id).collect::<std::collections::BTreeSet<_>>(), [2, 3].into());
        // The open transaction keeps producer 2 however long it is idle; its
        // marker's time then counts as its last activity.
        assert_eq!(t.remove_expired(i64::MAX, 5_000), 1);
        t.end_txn(MarkerRecord { timestamp: 20_000, ..marker(2, 0, true, 3) });
        assert_eq!(t.remove_expired(24_999, 5_000), 0);
        assert_eq!(t.remove_expired(25_000, 5_000), 1);
        assert!(t.is_empty());
        // Forgotten: its next batch is that of a producer never seen.
        assert!(matches!(t.check(1, 0, 1, 1), Err(ProducerError::UnknownProducer { .. })));
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(last_sequence(i32::MAX - 1, 3), 1);
        assert!(follows(i32::MAX, 0));
    }

    #[test]
    fn snapshot_round_trip_and_damage() {
        let mut t = ProducerStateTable::default();
        t.record(1, 3, rec(0, 4, 10), false, 0);
        t.record(1, 3, rec(5, 5, 15), false, 0);
        t.record(99, 0, rec(0, 0, 16), true, 0);
        t.record(98, 0, rec(0, 0, 17), true, 0);
        t.end_txn(marker(98, 0, false, 18));
        let bytes = crate::file::seal(&t.encode());
        let back = ProducerStateTable::decode(crate::file::unseal(&bytes).unwrap()).unwrap();
        assert_eq!(back.check(1, 3, 5, 5), Ok(SequenceCheck::Duplicate(rec(5, 5, 15))));
        assert_eq!(back.check(99, 0, 1, 1), Ok(SequenceCheck::Append));
        assert_eq!(back.first_unstable_offset(), Some(16));
        assert_eq!(back.aborted_between(0, 100), vec![(98, 17)]);
        let mut bad = bytes.clone();
        bad[25] ^= 1;
        assert!(crate::file::unseal(&bad).is_err());
        assert!(ProducerStateTable::decode(b"sluice-producers 3\n").is_none());
    }
}
