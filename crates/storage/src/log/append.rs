//! Appends: the idempotence verdict on each producer's sequence numbers, the
//! offsets assigned on the owning shard, headers patched in the one copy of
//! the bytes, and the roll to a new segment when the active one is full or old.
//! The bytes then wait for the writer task (`writer.rs`).

use bytes::Bytes;
use futures::channel::oneshot;

use super::writer::{wait_for, PendingWrite};
use super::{now_ms, Log, LogState};
use crate::producer_state::{self, BatchRecord, MarkerRecord, ProducerError, ProducerStateTable, SequenceCheck};
use crate::segment::Segment;
use crate::StorageError;
use sluice_core::config::TimestampType;
use sluice_protocol::batch::{self, BatchHeader, BatchSummary};

/// How far an append must get before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckLevel {
    /// acks=0: not waited for.
    None,
    /// acks=1: written to the segment file.
    Written,
    /// acks=all: below the high watermark: written and fdatasync'd here and,
    /// for a replicated partition, by every in-sync replica.
    Synced,
    /// Written and fdatasync'd here, whatever other replicas have: a
    /// follower's own append of what it fetched.
    Durable,
}

/// What a produce learns about its append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    pub base_offset: i64,
    /// The broker's timestamp, for `LogAppendTime` topics only.
    pub log_append_time_ms: Option<i64>,
    pub log_start_offset: i64,
}

/// Why an append was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Producer(#[from] ProducerError),
}

/// Who asks for a transaction marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerOrigin {
    /// This broker's transaction coordinator. A single node's coordinators
    /// never move, so none of its markers can come from a zombie coordinator.
    Coordinator,
    /// A WriteTxnMarkers request (`kafka-transactions.sh abort`, another
    /// broker's coordinator): its coordinator epoch is checked, as Kafka does.
    Request,
}

/// A transaction marker to append: the end of `producer_id`'s transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    pub producer_id: i64,
    pub epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
    pub origin: MarkerOrigin,
}

/// The producer fields of one idempotent or transactional batch of an append.
struct ProducerBatch {
    producer_id: i64,
    epoch: i16,
    first_seq: i32,
    last_seq: i32,
    transactional: bool,
}

/// The producer fields of each batch of an append, or a retried batch.
enum ProducerVerdict {
    /// Per batch, `None` for a batch without a producer id.
    Append(Vec<Option<ProducerBatch>>),
    Duplicate(BatchRecord),
}

/// An acknowledgement to wait for once the append lock is released.
type AckWait = Option<oneshot::Receiver<Result<(), StorageError>>>;

impl Log {
    /// Writes a transaction marker (a control batch) for `producer_id`'s open
    /// transaction in this partition and waits until it is synced. Returns
    /// the marker's offset, or `None` when the producer has no transaction
    /// open here (nothing is written: ending a transaction twice is
    /// harmless; the answer still waits until the log is as durable as a
    /// marker's, as that of a retried batch does).
    pub async fn append_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
    ) -> Result<Option<i64>, AppendError> {
        let origin = MarkerOrigin::Coordinator;
        self.append_txn_marker(TxnMarker { producer_id, epoch, commit, coordinator_epoch, origin }).await
    }

    /// As [`append_marker`](Self::append_marker), for a marker of either
    /// origin: one from an older producer epoch than the partition's is
    /// refused (INVALID_PRODUCER_EPOCH), and one from a request also when its
    /// coordinator epoch is older than the producer's last marker's
    /// (TRANSACTION_COORDINATOR_FENCED), as Kafka's `ProducerAppendInfo` checks them.
    pub async fn append_txn_marker(&self, marker: TxnMarker) -> Result<Option<i64>, AppendError> {
        let timestamp = now_ms();
        let chunk =
            batch::control_batch(marker.producer_id, marker.epoch, marker.commit, marker.coordinator_epoch, timestamp);
        let summary = BatchSummary {
            position: 0,
            size_bytes: chunk.len(),
            offset_count: 1,
            max_timestamp: timestamp,
            producer_id: marker.producer_id,
        };
        let outcome = self.append_inner(&Bytes::from(chunk), &[summary], AckLevel::Synced, Some(marker)).await?;
        Ok(outcome.map(|o| o.base_offset))
    }

    /// Appends a validated chunk of batches. Offsets are assigned here, on the
    /// owning shard; the bytes are copied once, by the writer, into the DMA
    /// buffer of the disk write, patching the headers on the way, and that
    /// buffer then serves tail reads.
    pub async fn append(
        &self,
        chunk: &Bytes,
        summaries: &[BatchSummary],
        acks: AckLevel,
    ) -> Result<AppendOutcome, AppendError> {
        let outcome = self.append_inner(chunk, summaries, acks, None).await?;
        Ok(outcome.expect("only markers are skipped"))
    }

    async fn append_inner(
        &self,
        chunk: &Bytes,
        summaries: &[BatchSummary],
        acks: AckLevel,
        marker: Option<TxnMarker>,
    ) -> Result<Option<AppendOutcome>, AppendError> {
        assert!(!summaries.is_empty(), "append of an empty chunk");
        // Offsets are taken in the order appends arrive (see `FifoLock`).
        let permit = self.append_lock.lock().await;
        self.roll_if_needed(chunk.len() as u64).await?;
        let (outcome, wait) = {
            let mut st = self.state.borrow_mut();
            if let Some(reason) = &st.failed {
                return Err(StorageError::Failed(reason.clone()).into());
            }
            if st.closing {
                return Err(StorageError::Closing.into());
            }
            if st.not_leading {
                return Err(StorageError::NotLeader.into());
            }
            match marker {
                None => match check_producers(&st.producers, chunk, summaries)? {
                    ProducerVerdict::Duplicate(dup) => {
                        let (outcome, wait) = answer_duplicate(&mut st, dup, acks);
                        (Some(outcome), wait)
                    }
                    ProducerVerdict::Append(batches) => {
                        let (outcome, wait) = stage(&mut st, chunk, summaries, batches, None, acks);
                        (Some(outcome), wait)
                    }
                },
                Some(m) => {
                    let open = st.producers.check_marker(m.producer_id, m.epoch)?;
                    if m.origin == MarkerOrigin::Request {
                        st.producers.check_coordinator_epoch(m.producer_id, m.coordinator_epoch)?;
                    }
                    if open {
                        let (outcome, wait) = stage(&mut st, chunk, summaries, vec![None], marker, acks);
                        (Some(outcome), wait)
                    } else {
                        // Nothing to end: most likely the retry of a marker
                        // already appended whose answer was lost. It is
                        // answered once everything in the log is as durable
                        // as asked, that marker included, as a retried batch
                        // is: a marker only this replica has could be lost
                        // in a failover, and the producer's next transaction
                        // here would then commit the records it aborted.
                        let end = st.next_offset;
                        let wait = (!reached(&st, end, acks)).then(|| wait_for(&mut st, end, acks));
                        (None, wait)
                    }
                }
            }
        };
        drop(permit);
        let _ = self.doorbell.try_send(());
        if let Some(wait) = wait {
            wait.await.map_err(|_| StorageError::Closing)??;
        }
        Ok(outcome)
    }

    /// Starts a new segment at the log end when the active one would grow past
    /// `segment.bytes` or is older than `segment.ms`; the producer state as of
    /// that offset is snapshotted first. Runs under the append lock.
    pub(super) async fn roll_if_needed(&self, incoming_bytes: u64) -> Result<(), StorageError> {
        let base = {
            let st = self.state.borrow();
            let active = st.segments.last().expect("a log always has a segment");
            let too_big = active.size_bytes + incoming_bytes > st.config.segment_bytes;
            // A compacted topic's records must reach a closed segment within max.compaction.lag.ms.
            let segment_ms = if st.config.compacts() {
                st.config.segment_ms.min(st.config.max_compaction_lag_ms)
            } else {
                st.config.segment_ms
            };
            let too_old = now_ms().saturating_sub(active.created_ms) >= segment_ms;
            if active.size_bytes == 0 || !(too_big || too_old) {
                return Ok(());
            }
            st.next_offset
        };
        let snapshot = self.state.borrow().producers.encode();
        self.write_snapshot(base, &snapshot).await?;
        let segment = Segment::create(&self.dir, base).await?;
        crate::file::sync_dir(&self.dir).await?;
        let mut st = self.state.borrow_mut();
        st.segments.push(segment);
        st.checkpointed_bytes = 0;
        Ok(())
    }
}

/// Whether everything below `end` is as durable as `acks` asks.
fn reached(st: &LogState, end: i64, acks: AckLevel) -> bool {
    match acks {
        AckLevel::None => true,
        AckLevel::Written => st.written_offset >= end,
        AckLevel::Durable => st.synced_offset >= end,
        AckLevel::Synced => st.high_watermark >= end,
    }
}

/// A retry of a batch already appended: its original offsets, once as durable as asked.
fn answer_duplicate(st: &mut LogState, dup: BatchRecord, acks: AckLevel) -> (AppendOutcome, AckWait) {
    let end = dup.last_offset + 1;
    let wait = (!reached(st, end, acks)).then(|| wait_for(st, end, acks));
    let outcome =
        AppendOutcome { base_offset: dup.base_offset, log_append_time_ms: None, log_start_offset: st.log_start_offset };
    (outcome, wait)
}

/// Assigns offsets to the chunk's batches, records producers and markers,
/// and queues the chunk for the writer, which patches the headers as it
/// copies the bytes into its write (and hands them to the tail cache).
fn stage(
    st: &mut LogState,
    chunk: &Bytes,
    summaries: &[BatchSummary],
    producer_batches: Vec<Option<ProducerBatch>>,
    marker: Option<TxnMarker>,
    acks: AckLevel,
) -> (AppendOutcome, AckWait) {
    let base_offset = st.next_offset;
    let log_append_time_ms = match st.config.message_timestamp_type {
        TimestampType::LogAppendTime => Some(now_ms()),
        TimestampType::CreateTime => None,
    };
    let mut batches = Vec::with_capacity(summaries.len());
    let mut next = base_offset;
    for (s, producer) in summaries.iter().zip(producer_batches) {
        batches.push((s.position, next));
        if let Some(p) = producer {
            let record = BatchRecord {
                first_seq: p.first_seq,
                last_seq: p.last_seq,
                base_offset: next,
                last_offset: next + s.offset_count - 1,
            };
            st.producers.record(p.producer_id, p.epoch, record, p.transactional, s.max_timestamp);
        }
        if let Some(m) = marker {
            st.producers.end_txn(MarkerRecord {
                producer_id: m.producer_id,
                epoch: m.epoch,
                commit: m.commit,
                coordinator_epoch: m.coordinator_epoch,
                offset: next,
                timestamp: s.max_timestamp,
            });
        }
        next += s.offset_count;
    }
    let leader_epoch = Some(st.leader_epoch);
    let pending = index_batches(st, chunk, batches, leader_epoch, log_append_time_ms, next);
    st.next_offset = next;
    st.pending.push(pending);
    let wait = (acks != AckLevel::None).then(|| wait_for(st, next, acks));
    (AppendOutcome { base_offset, log_append_time_ms, log_start_offset: st.log_start_offset }, wait)
}

/// Places the batches at the end of the active segment (offsets, timestamps
/// as they will be once patched, index entries) and returns the write that
/// lands them there.
pub(super) fn index_batches(
    st: &mut LogState,
    chunk: &Bytes,
    batches: Vec<(usize, i64)>,
    leader_epoch: Option<i32>,
    log_append_time_ms: Option<i64>,
    end_offset: i64,
) -> PendingWrite {
    let interval = st.config.index_interval_bytes;
    let segment = st.segments.last_mut().expect("a log always has a segment");
    let start_position = segment.size_bytes;
    for &(position, base_offset) in &batches {
        let mut header = BatchHeader::parse(&chunk[position..]).expect("validated batch");
        header.base_offset = base_offset;
        if let Some(timestamp_ms) = log_append_time_ms {
            header.max_timestamp = timestamp_ms;
        }
        segment.record_batch(start_position + position as u64, &header, interval);
    }
    assert_eq!(segment.size_bytes, start_position + chunk.len() as u64, "batches must tile the chunk");
    assert_eq!(segment.next_offset, end_offset);
    PendingWrite {
        segment: segment.file.clone(),
        chunk: chunk.clone(),
        batches,
        leader_epoch,
        log_append_time_ms,
        end_position: segment.size_bytes,
        end_offset,
    }
}

/// Checks the sequence numbers of every idempotent batch of a chunk before
/// anything is written: all of them are new and in order, or the chunk is one
/// retried batch, or the chunk is refused.
fn check_producers(
    table: &ProducerStateTable,
    chunk: &[u8],
    summaries: &[BatchSummary],
) -> Result<ProducerVerdict, ProducerError> {
    let mut batches = Vec::with_capacity(summaries.len());
    let mut seen: Vec<(i64, i16, i32)> = Vec::new();
    for s in summaries {
        let header = BatchHeader::parse(&chunk[s.position..]).expect("validated batch");
        if header.producer_id < 0 {
            batches.push(None);
            continue;
        }
        let (producer_id, epoch) = (header.producer_id, header.producer_epoch);
        let first_seq = header.base_sequence;
        let last_seq = producer_state::last_sequence(first_seq, header.last_offset_delta);
        if let Some((_, e, last)) = seen.iter().find(|(id, _, _)| *id == producer_id) {
            if *e != epoch || !producer_state::follows(*last, first_seq) {
                return Err(ProducerError::OutOfOrder { producer_id, last: *last, found: first_seq });
            }
        } else {
            match table.check(producer_id, epoch, first_seq, last_seq)? {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate(dup) if summaries.len() == 1 => return Ok(ProducerVerdict::Duplicate(dup)),
                SequenceCheck::Duplicate(dup) => {
                    return Err(ProducerError::OutOfOrder { producer_id, last: dup.last_seq, found: first_seq })
                }
            }
        }
        seen.retain(|(id, _, _)| *id != producer_id);
        seen.push((producer_id, epoch, last_seq));
        batches.push(Some(ProducerBatch {
            producer_id,
            epoch,
            first_seq,
            last_seq,
            transactional: header.is_transactional(),
        }));
    }
    Ok(ProducerVerdict::Append(batches))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{append, open, run, temp_dir};
    use super::*;
    use sluice_core::config::TopicConfig;
    use sluice_protocol::batch::{test_support::batch, validate_chunk};
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A transactional batch of `producer_id` (epoch 0) with sequences from `first_seq`.
    fn txn_batch(producer_id: i64, first_seq: i32, records: i32) -> Vec<u8> {
        let mut b = batch(1000, records);
        b[21..23].copy_from_slice(&0x10i16.to_be_bytes());
        b[43..51].copy_from_slice(&producer_id.to_be_bytes());
        b[51..53].copy_from_slice(&0i16.to_be_bytes());
        b[53..57].copy_from_slice(&first_seq.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn a_marker_with_nothing_to_end_is_answered_only_once_the_log_is_replicated() {
        run(|| async {
            let dir = temp_dir("txn-marker-retry");
            let log = open(&dir, TopicConfig::default(), false).await;
            let chunk = txn_batch(5, 0, 2);
            let summaries = validate_chunk(&chunk, 1 << 20).unwrap();
            log.append(&Bytes::copy_from_slice(&chunk), &summaries, AckLevel::Synced).await.unwrap();
            // Replicated: an in-sync follower has confirmed offsets below 2 only.
            log.set_high_watermark_limit(Some(2));
            let answered = Rc::new(RefCell::new(Vec::new()));
            let abort = |answered: Rc<RefCell<Vec<Option<i64>>>>, log: Rc<Log>| async move {
                let marker = log.append_marker(5, 0, false, 0).await.unwrap();
                answered.borrow_mut().push(marker);
            };
            let first = glommio::spawn_local(abort(answered.clone(), log.clone()));
            glommio::timer::sleep(std::time::Duration::from_millis(20)).await;
            // The coordinator did not hear back and asks again.
            let retry = glommio::spawn_local(abort(answered.clone(), log.clone()));
            glommio::timer::sleep(std::time::Duration::from_millis(50)).await;
            assert_eq!(log.log_end_offset(), 3, "one marker, at 2");
            assert!(answered.borrow().is_empty(), "neither is answered before the follower has the marker");
            log.set_high_watermark_limit(Some(3));
            first.await;
            retry.await;
            assert_eq!(*answered.borrow(), vec![Some(2), None]);
        });
    }

    #[test]
    fn transactions_hold_back_read_committed_until_their_marker() {
        run(|| async {
            let dir = temp_dir("txn");
            let log = open(&dir, TopicConfig::default(), false).await;
            let chunk = txn_batch(5, 0, 2);
            let summaries = validate_chunk(&chunk, 1 << 20).unwrap();
            assert_eq!(
                log.append(&Bytes::copy_from_slice(&chunk), &summaries, AckLevel::Synced).await.unwrap().base_offset,
                0
            );
            assert_eq!(append(&log, 3, 10).await.base_offset, 2);
            assert_eq!((log.high_watermark(), log.last_stable_offset()), (5, 0));
            let committed = log.read(0, 1 << 20, true).await.unwrap();
            assert!(committed.chunks.is_empty());
            assert_eq!(committed.last_stable_offset, 0);
            assert_eq!(log.read(0, 1 << 20, false).await.unwrap().bytes(), chunk.len() + batch(10, 3).len());

            assert_eq!(log.append_marker(5, 0, false, 0).await.unwrap(), Some(5));
            assert_eq!(log.append_marker(5, 0, false, 0).await.unwrap(), None, "nothing open: nothing written");
            assert_eq!((log.high_watermark(), log.last_stable_offset()), (6, 6));
            let read = log.read(0, 1 << 20, true).await.unwrap();
            assert_eq!(read.aborted, Some(vec![(5, 0)]));
            let last = batch::headers(read.chunks.last().unwrap()).last().unwrap().1;
            assert!(last.is_control());
            // The marker at 5 ends the aborted transaction: a read reaching it needs it.
            assert_eq!(log.read(2, 1 << 20, true).await.unwrap().aborted, Some(vec![(5, 0)]));
            assert_eq!(log.read(6, 1 << 20, true).await.unwrap().aborted, Some(vec![]));
            // A second transaction, committed.
            let chunk = txn_batch(5, 2, 1);
            let summaries = validate_chunk(&chunk, 1 << 20).unwrap();
            assert_eq!(
                log.append(&Bytes::copy_from_slice(&chunk), &summaries, AckLevel::Synced).await.unwrap().base_offset,
                6
            );
            assert_eq!(log.last_stable_offset(), 6);
            // A partial read stops before the open transaction.
            let read = log.read(3, 1 << 20, true).await.unwrap();
            let last = batch::headers(read.chunks.last().unwrap()).last().unwrap().1;
            assert_eq!(last.base_offset, 5);
            assert_eq!(log.append_marker(5, 0, true, 0).await.unwrap(), Some(7));
            assert_eq!(log.last_stable_offset(), 8);
            assert!(matches!(log.append_marker(5, -1, true, 0).await, Err(AppendError::Producer(_))));
            // An open transaction survives a crash (no close) and a clean restart.
            let chunk = txn_batch(9, 0, 1);
            let summaries = validate_chunk(&chunk, 1 << 20).unwrap();
            log.append(&Bytes::copy_from_slice(&chunk), &summaries, AckLevel::Synced).await.unwrap();
            let reopened = open(&dir, TopicConfig::default(), false).await;
            assert_eq!((reopened.high_watermark(), reopened.last_stable_offset()), (9, 8));
            assert_eq!(reopened.read(0, 1 << 20, true).await.unwrap().aborted, Some(vec![(5, 0)]));
            drop(log);
            reopened.close().await.unwrap();
            let clean = open(&dir, TopicConfig::default(), true).await;
            assert_eq!(clean.last_stable_offset(), 8);
            assert_eq!(clean.read(0, 1 << 20, true).await.unwrap().aborted, Some(vec![(5, 0)]));
            assert_eq!(clean.append_marker(9, 0, true, 0).await.unwrap(), Some(9));
            assert_eq!(clean.last_stable_offset(), 10);
            clean.close().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    #[test]
    fn requested_markers_check_the_coordinator_epoch_and_move_the_last_stable_offset() {
        run(|| async {
            let dir = temp_dir("requested-marker");
            let log = open(&dir, TopicConfig::default(), false).await;
            let request = |commit, coordinator_epoch| TxnMarker {
                producer_id: 5,
                epoch: 0,
                commit,
                coordinator_epoch,
                origin: MarkerOrigin::Request,
            };
            // A transaction its coordinator never ends: it holds the last stable offset back.
            let chunk = txn_batch(5, 0, 2);
            log.append(&Bytes::copy_from_slice(&chunk), &validate_chunk(&chunk, 1 << 20).unwrap(), AckLevel::Synced)
                .await
                .unwrap();
            assert_eq!(append(&log, 1, 10).await.base_offset, 2);
            assert_eq!((log.high_watermark(), log.last_stable_offset()), (3, 0));
            assert_eq!(log.append_txn_marker(request(false, 2)).await.unwrap(), Some(3));
            assert_eq!((log.high_watermark(), log.last_stable_offset()), (4, 4));
            assert_eq!(log.producer_states()[0].coordinator_epoch, 2);
            // The next transaction: a request from an older coordinator epoch is
            // fenced; this broker's own coordinator is not checked.
            let chunk = txn_batch(5, 2, 1);
            log.append(&Bytes::copy_from_slice(&chunk), &validate_chunk(&chunk, 1 << 20).unwrap(), AckLevel::Synced)
                .await
                .unwrap();
            let fenced = log.append_txn_marker(request(true, 1)).await;
            assert!(matches!(fenced, Err(AppendError::Producer(ProducerError::CoordinatorFenced { current: 2, .. }))));
            assert_eq!(log.last_stable_offset(), 4, "nothing was written");
            assert_eq!(log.append_marker(5, 0, true, 0).await.unwrap(), Some(5));
            assert_eq!(log.last_stable_offset(), 6);
            log.close().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    #[test]
    fn a_retried_batch_gets_its_original_offsets_and_nothing_is_written() {
        run(|| async {
            let dir = temp_dir("retry");
            let log = open(&dir, TopicConfig::default(), false).await;
            let chunk = txn_batch(7, 0, 3);
            let summaries = validate_chunk(&chunk, 1 << 20).unwrap();
            assert_eq!(
                log.append(&Bytes::copy_from_slice(&chunk), &summaries, AckLevel::Synced).await.unwrap().base_offset,
                0
            );
            assert_eq!(append(&log, 1, 10).await.base_offset, 3);
            let retried = log.append(&Bytes::copy_from_slice(&chunk), &summaries, AckLevel::Synced).await.unwrap();
            assert_eq!((retried.base_offset, retried.log_append_time_ms), (0, None));
            assert_eq!(log.log_end_offset(), 4, "a duplicate is not written again");
            let gap = txn_batch(7, 5, 1);
            let summaries = validate_chunk(&gap, 1 << 20).unwrap();
            assert!(matches!(
                log.append(&Bytes::copy_from_slice(&gap), &summaries, AckLevel::Synced).await,
                Err(AppendError::Producer(ProducerError::OutOfOrder { .. }))
            ));
            log.close().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }
}
