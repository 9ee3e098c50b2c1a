//! A partition's producer state, as Kafka keeps it for idempotent producers:
//! per producer id, the epoch and the sequence range and offsets of its last
//! five batches. A retried batch is recognised and answered with its original
//! offsets; a gap in sequences or an old epoch is refused.
//!
//! The table is snapshotted to `<offset>.snapshot` files (at segment rolls and
//! at clean shutdown) and rebuilt on open from the newest snapshot plus the
//! batches after it.

use std::collections::{HashMap, VecDeque};

use crate::constants::{PRODUCERS_PER_PARTITION_MAX, PRODUCER_BATCHES_RETAINED};
use crate::protocol::batch::BatchHeader;

/// Why a producer's batch is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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

    /// Records an appended batch (after [`check`](Self::check) said Append, or
    /// while replaying the log).
    pub fn record(&mut self, producer_id: i64, epoch: i16, batch: BatchRecord) {
        self.touches += 1;
        let touch = self.touches;
        let entry = self.producers.entry(producer_id).or_insert_with(|| ProducerEntry {
            epoch,
            batches: VecDeque::new(),
            last_touch: touch,
        });
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(batch);
        while entry.batches.len() > PRODUCER_BATCHES_RETAINED {
            entry.batches.pop_front();
        }
        entry.last_touch = touch;
        if self.producers.len() > PRODUCERS_PER_PARTITION_MAX {
            let oldest = self.producers.iter().min_by_key(|(_, e)| e.last_touch).map(|(id, _)| *id);
            if let Some(id) = oldest {
                self.producers.remove(&id);
            }
        }
    }

    /// Replays a stored batch header into the table.
    pub fn replay(&mut self, header: &BatchHeader) {
        if header.producer_id < 0 || header.is_control() {
            return;
        }
        let batch = BatchRecord {
            first_seq: header.base_sequence,
            last_seq: last_sequence(header.base_sequence, header.last_offset_delta),
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
        };
        self.record(header.producer_id, header.producer_epoch, batch);
    }

    /// The snapshot file's bytes: a text header, one line per producer, a CRC-32.
    pub fn encode(&self) -> Vec<u8> {
        let mut text = String::from("sluice-producers 1\n");
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort_unstable();
        for id in ids {
            let e = &self.producers[id];
            let batches: Vec<String> = e
                .batches
                .iter()
                .map(|b| format!("{}:{}:{}:{}", b.first_seq, b.last_seq, b.base_offset, b.last_offset))
                .collect();
            text.push_str(&format!("{id} {} {}\n", e.epoch, batches.join(",")));
        }
        let crc = crc32fast::hash(text.as_bytes());
        text.push_str(&format!("crc {crc:08x}\n"));
        text.into_bytes()
    }

    /// Reads a snapshot written by [`encode`](Self::encode); `None` if it is damaged.
    pub fn decode(bytes: &[u8]) -> Option<ProducerStateTable> {
        let text = std::str::from_utf8(bytes).ok()?;
        let crc_at = text.rfind("crc ")?;
        let (body, crc_line) = text.split_at(crc_at);
        let stored = u32::from_str_radix(crc_line.trim_start_matches("crc ").trim(), 16).ok()?;
        if crc32fast::hash(body.as_bytes()) != stored {
            return None;
        }
        let mut lines = body.lines();
        if lines.next()? != "sluice-producers 1" {
            return None;
        }
        let mut table = ProducerStateTable::default();
        for line in lines {
            let mut parts = line.split(' ');
            let id: i64 = parts.next()?.parse().ok()?;
            let epoch: i16 = parts.next()?.parse().ok()?;
            for batch in parts.next().unwrap_or("").split(',').filter(|b| !b.is_empty()) {
                let f: Vec<i64> = batch.split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
                if f.len() != 4 {
                    return None;
                }
                let record =
                    BatchRecord { first_seq: f[0] as i32, last_seq: f[1] as i32, base_offset: f[2], last_offset: f[3] };
                table.record(id, epoch, record);
            }
        }
        Some(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(first: i32, last: i32, base: i64) -> BatchRecord {
        BatchRecord { first_seq: first, last_seq: last, base_offset: base, last_offset: base + (last - first) as i64 }
    }

    #[test]
    fn in_order_duplicates_and_gaps() {
        let mut t = ProducerStateTable::default();
        assert_eq!(t.check(7, 0, 0, 4), Ok(SequenceCheck::Append));
        t.record(7, 0, rec(0, 4, 100));
        assert_eq!(t.check(7, 0, 5, 9), Ok(SequenceCheck::Append));
        t.record(7, 0, rec(5, 9, 105));
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
            t.record(1, 0, rec(i, i, i as i64));
        }
        assert!(matches!(t.check(1, 0, 0, 0), Err(ProducerError::OutOfOrder { .. })));
        assert_eq!(t.check(1, 0, 2, 2), Ok(SequenceCheck::Duplicate(rec(2, 2, 2))));
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(last_sequence(i32::MAX - 1, 3), 1);
        assert!(follows(i32::MAX, 0));
    }

    #[test]
    fn snapshot_round_trip_and_damage() {
        let mut t = ProducerStateTable::default();
        t.record(1, 3, rec(0, 4, 10));
        t.record(1, 3, rec(5, 5, 15));
        t.record(99, 0, rec(0, 0, 16));
        let bytes = t.encode();
        let back = ProducerStateTable::decode(&bytes).unwrap();
        assert_eq!(back.check(1, 3, 5, 5), Ok(SequenceCheck::Duplicate(rec(5, 5, 15))));
        assert_eq!(back.check(99, 0, 1, 1), Ok(SequenceCheck::Append));
        let mut bad = bytes.clone();
        bad[25] ^= 1;
        assert!(ProducerStateTable::decode(&bad).is_none());
    }
}
