//! A replicated partition's log: the leader-epoch cache (each epoch and the
//! offset it began at, in `leader-epoch-checkpoint`), a follower's append of
//! the leader's batches as they are (offsets and epochs kept), the high
//! watermark bounded by what the other replicas have, reads and waits for
//! followers up to what is written, and truncation to where a follower's
//! log diverges from its new leader's.
//!
//! The epoch cache is written before the first batch of a new epoch is
//! staged, so after a crash it never lacks an epoch the log has; entries
//! past the log end (a torn tail) are dropped when the log opens.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::writer::{advance_high_watermark, wait_for, write_caching};
use super::{AckLevel, Log, LEADER_EPOCH};
use crate::{file, StorageError};
use futures::channel::oneshot;
use sluice_core::constants::{BATCH_HEADER_BYTES, LINE_FILE_BYTES_MAX};
use sluice_protocol::batch::{BatchHeader, BatchSummary};

/// The file holding a log's leader-epoch cache.
const EPOCHS_FILE: &str = "leader-epoch-checkpoint";

/// Where a leader epoch ends in this log (OffsetForLeaderEpoch's answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEnd {
    /// The largest epoch at or below the one asked for; -1 if none.
    pub epoch: i32,
    /// The first offset after that epoch (the log end for the latest); -1 if none.
    pub end_offset: i64,
}

/// Why a follower's append was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReplicaAppendError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The batches do not start at the log end or are not consecutive.
    #[error("replica batches start at offset {found}, the log ends at {expected}")]
    NotContiguous { expected: i64, found: i64 },
    /// The replica leads the partition now: what its last fetch brought
    /// would land after its own epoch's start.
    #[error("the replica leads the partition now")]
    Leading,
}

fn epochs_path(dir: &Path) -> PathBuf {
    dir.join(EPOCHS_FILE)
}

/// Adds `epoch` starting at `start`, dropping the entries it supersedes (a
/// later or equal epoch, or one starting at or after it), as Kafka's cache does.
fn push_epoch(epochs: &mut Vec<(i32, i64)>, epoch: i32, start: i64) {
    epochs.retain(|(e, s)| *e < epoch && *s < start);
    epochs.push((epoch, start));
}

fn encode_epochs(epochs: &[(i32, i64)]) -> String {
    epochs.iter().map(|(epoch, start)| format!("{epoch} {start}\n")).collect()
}

/// The epoch cache of the log in `dir`: the stored one without entries
/// past the log end, or for a log without one (a single node's, all epoch
/// 0, or a new one) epoch 0 from its start, as a first leader's.
pub(super) fn load_epochs(dir: &Path, log_start: i64, log_end: i64) -> Result<Vec<(i32, i64)>, StorageError> {
    let stored = file::read_checked(&epochs_path(dir), LINE_FILE_BYTES_MAX)?;
    let Some(body) = stored else {
        return Ok(vec![(LEADER_EPOCH, log_start)]);
    };
    let text = String::from_utf8(body).map_err(|_| StorageError::Corrupt(format!("{}", epochs_path(dir).display())))?;
    let mut epochs = Vec::new();
    for line in text.lines() {
        let parsed = line.split_once(' ').and_then(|(e, s)| Some((e.parse::<i32>().ok()?, s.parse::<i64>().ok()?)));
        let Some(entry) = parsed else {
            return Err(StorageError::Corrupt(format!("{}: {line:?}", epochs_path(dir).display())));
        };
        epochs.push(entry);
    }
    epochs.retain(|(_, start)| *start <= log_end);
    Ok(epochs)
}

impl Log {
    /// The epoch this log stamps into what it appends as leader.
    pub fn leader_epoch(&self) -> i32 {
        self.state.borrow().leader_epoch
    }

    /// The latest epoch of the log's batches (or of its leadership); -1 when it has none.
    pub fn last_epoch(&self) -> i32 {
        self.state.borrow().epochs.last().map_or(-1, |e| e.0)
    }

    /// The offset after the last batch the writer has written (not
    /// necessarily synced): what a follower may fetch.
    pub fn written_offset(&self) -> i64 {
        self.state.borrow().written_offset
    }

    /// Makes this log the leader's for `epoch`: what it appends from now on is
    /// stamped with it, and the epoch begins at the log end.
    pub async fn become_leader(&self, epoch: i32) -> Result<(), StorageError> {
        let _permit = self.append_lock.lock().await;
        let changed = {
            let mut st = self.state.borrow_mut();
            st.not_leading = false;
            st.leading = true;
            st.leader_epoch = st.leader_epoch.max(epoch);
            let start = st.next_offset;
            match st.epochs.last() {
                Some((last, _)) if *last >= epoch => false,
                _ => {
                    push_epoch(&mut st.epochs, epoch, start);
                    true
                }
            }
        };
        if changed {
            self.write_epochs().await?;
        }
        Ok(())
    }

    async fn write_epochs(&self) -> Result<(), StorageError> {
        let body = encode_epochs(&self.state.borrow().epochs);
        file::write_checked(&epochs_path(&self.dir), body.as_bytes()).await
    }

    /// Where `epoch` ends in this log, as Kafka's leader-epoch cache answers
    /// OffsetForLeaderEpoch: the latest epoch ends at the log end; an earlier
    /// one at the start of the next epoch, reported under the largest epoch at
    /// or below it (or itself when the log has none that early); an epoch
    /// later than every epoch here, or -1, is undefined (-1, -1).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> EpochEnd {
        let st = self.state.borrow();
        let undefined = EpochEnd { epoch: -1, end_offset: -1 };
        if epoch < 0 {
            return undefined;
        }
        if st.epochs.last().is_some_and(|(latest, _)| *latest == epoch) {
            return EpochEnd { epoch, end_offset: st.next_offset };
        }
        let Some(higher) = st.epochs.iter().position(|(e, _)| *e > epoch) else {
            return undefined;
        };
        let floor = higher.checked_sub(1).map_or(epoch, |i| st.epochs[i].0);
        EpochEnd { epoch: floor, end_offset: st.epochs[higher].1 }
    }

    /// Bounds the high watermark by what the other replicas have (`None`:
    /// this log alone decides) and moves it as far as that allows.
    pub fn set_high_watermark_limit(&self, limit: Option<i64>) {
        let reached = {
            let mut st = self.state.borrow_mut();
            st.high_watermark_limit = limit;
            if write_caching(&st.config).is_some() {
                st.written_offset
            } else {
                st.synced_offset
            }
        };
        advance_high_watermark(self, reached);
    }

    /// The replica stops leading: appends waiting for the in-sync replicas
    /// (acks=all) are answered at once with [`StorageError::NotLeader`], as
    /// Kafka completes its delayed produces when a leader becomes a
    /// follower. Their records stay only if the new leader has them; a
    /// client's retry finds them there (idempotence) or appends them anew.
    /// Appends from now until [`become_leader`](Self::become_leader) are
    /// refused the same way, even one already on its way.
    pub fn release_leader_waiters(&self) {
        let mut st = self.state.borrow_mut();
        st.not_leading = true;
        st.leading = false;
        super::writer::release_synced_waiters(&mut st, StorageError::NotLeader);
    }

    /// For a replica's log just opened: what the other replicas have is not
    /// known, so the high watermark goes back to the log start and moves
    /// only as the leader (to a follower) or the in-sync followers (to a
    /// leader) say. Kafka starts from a checkpoint of it instead; starting
    /// low holds consumers back a moment, never shows them a record that
    /// only this replica has.
    pub fn hold_high_watermark_at_start(&self) {
        let mut st = self.state.borrow_mut();
        st.high_watermark = st.log_start_offset;
        st.high_watermark_limit = Some(st.log_start_offset);
        st.not_leading = true;
        st.leading = false;
    }

    /// Resolves once what is written passes `offset` (a follower has
    /// something to fetch), the log closes, or the sender is dropped.
    pub fn watch_end(&self, offset: i64) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut st = self.state.borrow_mut();
        if st.written_offset > offset || st.closing {
            let _ = tx.send(());
        } else {
            st.end_watchers.retain(|w| !w.is_canceled());
            st.end_watchers.push(tx);
        }
        rx
    }

    /// A follower's append of batches fetched from its leader: written with
    /// the leader's offsets and epochs, and answered once synced here.
    /// Returns the new log end.
    pub async fn append_replica(&self, chunk: &Bytes, summaries: &[BatchSummary]) -> Result<i64, ReplicaAppendError> {
        assert!(!summaries.is_empty(), "append of an empty chunk");
        let permit = self.append_lock.lock().await;
        self.roll_if_needed(chunk.len() as u64).await?;
        let mut batches = Vec::with_capacity(summaries.len());
        let mut new_epochs = Vec::new();
        let end = {
            let st = self.state.borrow();
            if let Some(reason) = &st.failed {
                return Err(StorageError::Failed(reason.clone()).into());
            }
            if st.closing {
                return Err(StorageError::Closing.into());
            }
            if st.leading {
                return Err(ReplicaAppendError::Leading);
            }
            let mut next = st.next_offset;
            let mut last_epoch = st.epochs.last().map_or(-1, |e| e.0);
            for s in summaries {
                let header = BatchHeader::parse(&chunk[s.position..]).expect("validated batch");
                if header.base_offset != next {
                    return Err(ReplicaAppendError::NotContiguous { expected: next, found: header.base_offset });
                }
                if header.partition_leader_epoch > last_epoch {
                    last_epoch = header.partition_leader_epoch;
                    new_epochs.push((last_epoch, next));
                }
                batches.push((s.position, next));
                next += s.offset_count;
            }
            next
        };
        if !new_epochs.is_empty() {
            {
                let mut st = self.state.borrow_mut();
                for (epoch, start) in new_epochs {
                    push_epoch(&mut st.epochs, epoch, start);
                }
            }
            self.write_epochs().await?;
        }
        let wait = {
            let mut st = self.state.borrow_mut();
            for s in summaries {
                let header = BatchHeader::parse(&chunk[s.position..]).expect("validated batch");
                st.producers.replay(&header, &chunk[s.position..s.position + s.size_bytes]);
                st.leader_epoch = st.leader_epoch.max(header.partition_leader_epoch);
            }
            let pending = super::append::index_batches(&mut st, chunk, batches, None, None, end);
            st.next_offset = end;
            st.pending.push(pending);
            wait_for(&mut st, end, AckLevel::Durable)
        };
        drop(permit);
        let _ = self.doorbell.try_send(());
        wait.await.map_err(|_| StorageError::Closing)??;
        Ok(end)
    }

    /// Cuts the closed log in `dir` back to the start of the batch holding
    /// `offset` (everything from there on is dropped), so that it reopens
    /// ending there: a follower whose log diverged from its new leader's.
    /// Indexes of the cut segment are rebuilt when it reopens (not clean).
    pub async fn truncate_closed(dir: &Path, offset: i64) -> Result<(), StorageError> {
        let mut bases: Vec<i64> = std::fs::read_dir(dir)
            .map_err(|e| StorageError::io(&format!("list {}", dir.display()), e))?
            .filter_map(|entry| entry.ok().and_then(|e| super::recovery::parse_segment_base(&e.path())))
            .collect();
        bases.sort_unstable();
        let keep = bases.iter().filter(|b| **b < offset).count().max(1);
        for base in &bases[keep..] {
            for suffix in ["log", "index", "timeindex"] {
                file::remove_if_exists(&dir.join(format!("{}.{suffix}", crate::segment_file_stem(*base)))).await?;
            }
        }
        if let Some(base) = bases.get(keep - 1) {
            let stem = crate::segment_file_stem(*base);
            let path = dir.join(format!("{stem}.log"));
            let cut = if *base >= offset { 0 } else { batch_position(&path, offset)? };
            let segment =
                std::fs::OpenOptions::new().write(true).open(&path).map_err(|e| StorageError::io("open segment", e))?;
            segment.set_len(cut).map_err(|e| StorageError::io("truncate segment", e))?;
            segment.sync_all().map_err(|e| StorageError::io("sync segment", e))?;
            for suffix in ["index", "timeindex"] {
                file::remove_if_exists(&dir.join(format!("{stem}.{suffix}"))).await?;
            }
        }
        super::recovery::remove_recovery_point(dir).await?;
        let stored = load_epochs(dir, 0, i64::MAX)?;
        let kept: Vec<(i32, i64)> = stored.into_iter().filter(|(_, start)| *start < offset).collect();
        file::write_checked(&epochs_path(dir), encode_epochs(&kept).as_bytes()).await?;
        file::sync_dir(dir).await
    }
    /// Empties the closed log in `dir` and starts it again, with nothing in
    /// it, at `offset` (Kafka's `truncateFullyAndStartAt`): a follower so far
    /// behind that its leader no longer has the records it would fetch next
    /// starts over at the leader's log start. Segments, producer snapshots and
    /// epochs go; the log start offset is written first, so a crash half way
    /// leaves a log that starts at or before `offset` and is redone.
    pub async fn start_closed_at(dir: &Path, offset: i64) -> Result<(), StorageError> {
        super::retention::write_log_start(dir, offset).await?;
        let entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| StorageError::io(&format!("list {}", dir.display()), e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .collect();
        for path in entries {
            let base = super::recovery::parse_segment_base(&path);
            if let Some(base) = base {
                for suffix in ["log", "index", "timeindex"] {
                    file::remove_if_exists(&dir.join(format!("{}.{suffix}", crate::segment_file_stem(base)))).await?;
                }
            } else if super::snapshots::is_snapshot(&path) {
                file::remove_if_exists(&path).await?;
            }
        }
        super::recovery::remove_recovery_point(dir).await?;
        file::write_checked(&epochs_path(dir), b"").await?;
        let first = dir.join(format!("{}.log", crate::segment_file_stem(offset)));
        let created = std::fs::File::create(&first).and_then(|f| f.sync_all());
        created.map_err(|e| StorageError::io("create segment", e))?;
        file::sync_dir(dir).await
    }
}

/// The byte position in the segment at `path` of the first batch whose last
/// offset is at or past `offset` (the file's end if none is), read header by header.
fn batch_position(path: &Path, offset: i64) -> Result<u64, StorageError> {
    let segment = std::fs::File::open(path).map_err(|e| StorageError::io("open segment", e))?;
    let size = segment.metadata().map_err(|e| StorageError::io("stat segment", e))?.len();
    let mut position = 0u64;
    let mut header = [0u8; BATCH_HEADER_BYTES];
    while position + BATCH_HEADER_BYTES as u64 <= size {
        segment.read_exact_at(&mut header, position).map_err(|e| StorageError::io("read segment", e))?;
        let Some(parsed) = BatchHeader::parse(&header) else {
            break;
        };
        if parsed.last_offset() >= offset || parsed.size_bytes == 0 {
            break;
        }
        position += parsed.size_bytes as u64;
    }
    Ok(position.min(size))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{append, open, run, small_config, temp_dir};
    use super::*;
    use sluice_protocol::batch::{self, validate_chunk};

    /// Copies what `leader` has from `follower`'s end into `follower`, as a replica fetch would.
    async fn replicate(leader: &Log, follower: &Log) {
        loop {
            let read = leader.read_replica(follower.log_end_offset(), 1 << 20).await.unwrap();
            if read.chunks.is_empty() {
                return;
            }
            for chunk in read.chunks {
                let summaries = validate_chunk(&chunk, 1 << 20).unwrap();
                follower.append_replica(&chunk, &summaries).await.unwrap();
            }
        }
    }

    /// An acks=1 append: answered once written, whatever the high watermark.
    async fn append_written(log: &Log, records: i32, timestamp: i64) {
        let chunk = batch::test_support::batch(timestamp, records);
        let summaries = validate_chunk(&chunk, 1 << 20).unwrap();
        log.append(&Bytes::from(chunk), &summaries, AckLevel::Written).await.unwrap();
    }

    fn epochs_of(log: &Log) -> Vec<i32> {
        log.state.borrow().epochs.iter().map(|e| e.0).collect()
    }

    #[test]
    fn a_fetch_answered_after_the_replica_was_elected_is_not_appended() {
        run(|| async {
            let (leader_dir, follower_dir) = (temp_dir("replica-late-leader"), temp_dir("replica-late-follower"));
            let leader = open(&leader_dir, small_config(), false).await;
            let follower = open(&follower_dir, small_config(), false).await;
            leader.become_leader(1).await.unwrap();
            append(&leader, 2, 1000).await;
            replicate(&leader, &follower).await;
            append_written(&leader, 3, 2000).await;
            // The follower's fetch of 2..5 is on its way when it is elected for epoch 2.
            let late = leader.read_replica(2, 1 << 20).await.unwrap().chunks.concat();
            follower.become_leader(2).await.unwrap();
            let summaries = validate_chunk(&late, 1 << 20).unwrap();
            let refused = follower.append_replica(&Bytes::from(late), &summaries).await;
            assert!(matches!(refused, Err(ReplicaAppendError::Leading)), "{refused:?}");
            // Epoch 2 starts at the log end it was elected with, and nothing of epoch 1 follows it.
            assert_eq!(follower.log_end_offset(), 2);
            assert_eq!(follower.end_offset_for_epoch(1), EpochEnd { epoch: 1, end_offset: 2 });
        });
    }

    #[test]
    fn a_follower_keeps_the_leaders_offsets_and_epochs_and_truncates_where_it_diverged() {
        run(|| async {
            let (leader_dir, follower_dir) = (temp_dir("replica-leader"), temp_dir("replica-follower"));
            let leader = open(&leader_dir, small_config(), false).await;
            let follower = open(&follower_dir, small_config(), false).await;
            leader.become_leader(1).await.unwrap();
            for i in 0..10 {
                append(&leader, 2, 1000 + i).await;
            }
            // The high watermark waits for the follower once it is bounded by it.
            leader.set_high_watermark_limit(Some(0));
            append_written(&leader, 2, 2000).await;
            assert_eq!((leader.high_watermark(), leader.written_offset()), (20, 22));
            assert!(leader.read(20, 1 << 20, false).await.unwrap().chunks.is_empty(), "consumers stop at the HW");
            replicate(&leader, &follower).await;
            assert_eq!(follower.log_end_offset(), 22);
            leader.set_high_watermark_limit(Some(follower.log_end_offset()));
            assert_eq!(leader.high_watermark(), 22);
            // Same bytes, same offsets and epochs.
            let (a, b) =
                (leader.read(0, 1 << 20, false).await.unwrap(), follower.read(0, 1 << 20, false).await.unwrap());
            assert_eq!(a.chunks.concat(), b.chunks.concat());
            assert!(batch::headers(&b.chunks.concat()).all(|(_, h)| h.partition_leader_epoch == 1));
            assert_eq!(epochs_of(&follower), vec![1]);

            // The leader dies after appending what the follower never got;
            // the follower leads epoch 2 and appends its own.
            append_written(&leader, 3, 3000).await;
            follower.become_leader(2).await.unwrap();
            append(&follower, 1, 4000).await;
            assert_eq!(follower.end_offset_for_epoch(1), EpochEnd { epoch: 1, end_offset: 22 });
            assert_eq!(follower.end_offset_for_epoch(2), EpochEnd { epoch: 2, end_offset: 23 });
            assert_eq!(follower.end_offset_for_epoch(0), EpochEnd { epoch: 0, end_offset: 0 });
            assert_eq!(follower.end_offset_for_epoch(3), EpochEnd { epoch: -1, end_offset: -1 });
            // The old leader comes back as a follower: its epoch 1 ends at 22
            // on the new leader, so it cuts its log there and fetches.
            let diverged = follower.end_offset_for_epoch(leader.last_epoch());
            assert_eq!(diverged.end_offset, 22);
            leader.close().await.unwrap();
            drop(leader);
            Log::truncate_closed(&leader_dir, diverged.end_offset).await.unwrap();
            let old = open(&leader_dir, small_config(), false).await;
            assert_eq!(old.log_end_offset(), 22);
            replicate(&follower, &old).await;
            assert_eq!(old.log_end_offset(), 23);
            assert_eq!(epochs_of(&old), vec![1, 2]);
            let (a, b) =
                (follower.read_replica(0, 1 << 20).await.unwrap(), old.read_replica(0, 1 << 20).await.unwrap());
            assert_eq!(a.chunks.concat(), b.chunks.concat());
            // A truncation to the start drops every segment.
            old.close().await.unwrap();
            drop(old);
            Log::truncate_closed(&leader_dir, 0).await.unwrap();
            let empty = open(&leader_dir, small_config(), false).await;
            assert_eq!((empty.log_end_offset(), empty.last_epoch()), (0, -1));
            empty.close().await.unwrap();
            follower.close().await.unwrap();
            std::fs::remove_dir_all(&leader_dir).unwrap();
            std::fs::remove_dir_all(&follower_dir).unwrap();
        });
    }

    #[test]
    fn a_batch_that_does_not_continue_the_log_is_refused() {
        run(|| async {
            let (leader_dir, follower_dir) = (temp_dir("replica-gap-leader"), temp_dir("replica-gap-follower"));
            let leader = open(&leader_dir, small_config(), false).await;
            let follower = open(&follower_dir, small_config(), false).await;
            // A new log answers for epoch 0 as Kafka's first leader does: it ends at the log end.
            assert_eq!(follower.end_offset_for_epoch(0), EpochEnd { epoch: 0, end_offset: 0 });
            append(&leader, 2, 1000).await;
            append(&leader, 2, 1001).await;
            assert_eq!(leader.end_offset_for_epoch(0), EpochEnd { epoch: 0, end_offset: 4 });
            let read = leader.read_replica(2, 1 << 20).await.unwrap();
            let chunk = read.chunks.concat();
            let summaries = validate_chunk(&chunk, 1 << 20).unwrap();
            let refused = follower.append_replica(&Bytes::from(chunk), &summaries).await;
            assert!(matches!(refused, Err(ReplicaAppendError::NotContiguous { expected: 0, found: 2 })));
            assert_eq!(follower.log_end_offset(), 0);
            leader.close().await.unwrap();
            follower.close().await.unwrap();
            std::fs::remove_dir_all(&leader_dir).unwrap();
            std::fs::remove_dir_all(&follower_dir).unwrap();
        });
    }

    #[test]
    fn a_follower_behind_the_leaders_log_start_starts_over_there() {
        run(|| async {
            let (leader_dir, follower_dir) = (temp_dir("replica-start-leader"), temp_dir("replica-start-follower"));
            let leader = open(&leader_dir, small_config(), false).await;
            let follower = open(&follower_dir, small_config(), false).await;
            for i in 0..10 {
                append(&leader, 2, 1000 + i).await;
            }
            replicate(&leader, &follower).await;
            for i in 0..10 {
                append(&leader, 2, 2000 + i).await;
            }
            // Records the follower never fetched are deleted on the leader.
            assert_eq!(leader.delete_records(30).await.unwrap(), 30);
            let refused = leader.read_replica(follower.log_end_offset(), 1 << 20).await;
            assert!(matches!(refused, Err(StorageError::OffsetOutOfRange { offset: 20, start: 30, .. })));
            follower.close().await.unwrap();
            drop(follower);
            Log::start_closed_at(&follower_dir, 30).await.unwrap();
            let follower = open(&follower_dir, small_config(), false).await;
            let state = (follower.log_start_offset(), follower.log_end_offset(), follower.last_epoch());
            assert_eq!(state, (30, 30, -1), "empty, from the leader's log start");
            replicate(&leader, &follower).await;
            assert_eq!(follower.log_end_offset(), 40);
            let (a, b) =
                (leader.read_replica(30, 1 << 20).await.unwrap(), follower.read_replica(30, 1 << 20).await.unwrap());
            assert_eq!(a.chunks.concat(), b.chunks.concat());
            // It opens the same way again.
            follower.close().await.unwrap();
            drop(follower);
            let follower = open(&follower_dir, small_config(), false).await;
            assert_eq!((follower.log_start_offset(), follower.log_end_offset()), (30, 40));
            leader.close().await.unwrap();
            follower.close().await.unwrap();
            std::fs::remove_dir_all(&leader_dir).unwrap();
            std::fs::remove_dir_all(&follower_dir).unwrap();
        });
    }

    #[test]
    fn a_replica_that_stopped_leading_refuses_appends_until_it_leads_again() {
        run(|| async {
            let dir = temp_dir("replica-not-leading");
            let log = open(&dir, small_config(), false).await;
            log.become_leader(1).await.unwrap();
            append(&log, 2, 1000).await;
            log.release_leader_waiters();
            let chunk = batch::test_support::batch(1001, 2);
            let summaries = validate_chunk(&chunk, 1 << 20).unwrap();
            let refused = log.append(&Bytes::from(chunk.clone()), &summaries, AckLevel::Written).await;
            assert!(matches!(refused, Err(super::super::AppendError::Storage(StorageError::NotLeader))), "{refused:?}");
            assert_eq!(log.log_end_offset(), 2, "nothing appended");
            log.become_leader(2).await.unwrap();
            log.append(&Bytes::from(chunk), &summaries, AckLevel::Written).await.unwrap();
            assert_eq!(log.log_end_offset(), 4);
            log.close().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    #[test]
    fn a_replica_opened_again_shows_consumers_only_what_the_others_confirm() {
        run(|| async {
            let dir = temp_dir("replica-reopened");
            let log = open(&dir, small_config(), false).await;
            for i in 0..5 {
                append(&log, 2, 1000 + i).await;
            }
            log.close().await.unwrap();
            drop(log);
            let log = open(&dir, small_config(), false).await;
            assert_eq!(log.high_watermark(), 10, "a single node's log shows what it synced");
            log.hold_high_watermark_at_start();
            assert_eq!((log.high_watermark(), log.log_end_offset()), (0, 10));
            assert!(log.read(0, 1 << 20, false).await.unwrap().chunks.is_empty(), "nothing confirmed yet");
            assert!(!log.read_replica(0, 1 << 20).await.unwrap().chunks.is_empty(), "followers still fetch it");
            log.set_high_watermark_limit(Some(6));
            assert_eq!(log.high_watermark(), 6);
            log.set_high_watermark_limit(None);
            assert_eq!(log.high_watermark(), 10);
            log.close().await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }
}
