//! Where the state of an internal partition (`__consumer_offsets-<n>`,
//! `__transaction_state-<n>`) is made durable, and which of them a shard
//! holds right now.
//!
//! - A single node keeps each one in files of its own (`GroupStore`:
//!   checkpoint plus journal), opened at start and held for the process's life.
//! - A cluster keeps each one as records of a replicated partition of the
//!   internal topic (`LogJournal`): one record per change, its value the
//!   change as the journal encodes it. The broker leading that partition
//!   loads it (replays its records) and coordinates its keys; one that
//!   stops leading it unloads it. When the records since the log start
//!   pass `OFFSETS_JOURNAL_BYTES_MAX`, the whole state is appended as a
//!   snapshot and the log start moved to it (DeleteRecords, which the
//!   followers follow), so a load replays a bounded amount.
//!
//! Replaying a snapshot over the records before it gives the same state:
//! a snapshot holds only "set" changes of values the state already has.
//! So a leader that fails between writing a snapshot and moving the log
//! start leaves a log that loads correctly.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use super::store::{decode_change, encode_change, Change, GroupStore, StoreState};
use sluice_core::constants::{
    OFFSETS_COMMIT_TIMEOUT_MS, OFFSETS_JOURNAL_BYTES_MAX, OFFSETS_LOAD_READ_BYTES, OFFSETS_RECORD_BYTES_MAX,
};
use sluice_protocol::batch::{headers, validate_chunk};
use sluice_protocol::builder::BatchBuilder;
use sluice_protocol::records::decode;
use sluice_protocol::ResponseError;
use sluice_storage::fifo_lock::FifoLock;
use sluice_storage::log::{AckLevel, Log};
use sluice_storage::StorageError;

/// The most bytes of changes one batch of a `LogJournal` carries (one
/// larger change goes alone).
const JOURNAL_BATCH_BYTES_MAX: usize = 1024 * 1024;

/// One internal partition's store.
pub enum Backing {
    /// A single node's files.
    Files(GroupStore),
    /// A cluster's replicated partition, led by this broker.
    Log(LogJournal),
    /// Not held here: every write is refused as NOT_COORDINATOR.
    Absent,
}

impl Backing {
    /// Whether a write failed: memory may hold what the disk does not.
    pub fn failed(&self) -> bool {
        match self {
            Backing::Files(store) => store.failed(),
            Backing::Log(journal) => journal.failed.get(),
            Backing::Absent => false,
        }
    }

    /// Makes `changes` durable (`state` is the whole state after them,
    /// asked for only when a checkpoint or snapshot is due).
    pub async fn append(&self, changes: &[Change], state: impl FnOnce() -> StoreState) -> Result<(), StorageError> {
        match self {
            Backing::Files(store) => store.append(changes, state).await,
            Backing::Log(journal) => journal.append(changes, state).await,
            Backing::Absent => Err(StorageError::NotLeader),
        }
    }

    /// Waits for every write begun before it to be durable (on a cluster,
    /// on every in-sync replica); an error if one failed. What memory
    /// shows is then what the store holds: a change made in memory but
    /// still being written is not answered for as if it were durable.
    pub async fn settle(&self) -> Result<(), StorageError> {
        match self {
            Backing::Files(store) => store.settle().await,
            Backing::Log(journal) => journal.settle().await,
            Backing::Absent => Err(StorageError::NotLeader),
        }
    }

    pub async fn close(&self) {
        if let Backing::Files(store) = self {
            store.close().await;
        }
    }
}

/// The answer for a coordinator whose write failed: Kafka's mapping of the
/// append's error (another leader: NOT_COORDINATOR; anything else:
/// COORDINATOR_NOT_AVAILABLE, which clients retry).
pub fn write_error(e: &StorageError) -> ResponseError {
    match e {
        StorageError::NotLeader | StorageError::Closing => ResponseError::NotCoordinator,
        _ => ResponseError::CoordinatorNotAvailable,
    }
}

/// An internal partition kept as records of a replicated partition this
/// broker leads.
pub struct LogJournal {
    log: Rc<Log>,
    /// One append (or snapshot) at a time, in the order changes were made.
    lock: FifoLock,
    failed: Cell<bool>,
    /// Bytes appended since the log start, about.
    bytes_since_start: Cell<u64>,
}

impl LogJournal {
    /// Replays the partition's records from its log start to its end.
    pub async fn load(log: Rc<Log>) -> Result<(LogJournal, StoreState), StorageError> {
        let mut state = StoreState::default();
        let mut offset = log.log_start_offset();
        let mut bytes = 0u64;
        while offset < log.log_end_offset() {
            let read = log.read_replica(offset, OFFSETS_LOAD_READ_BYTES).await?;
            let mut next = offset;
            for chunk in &read.chunks {
                for (position, header) in headers(chunk) {
                    let last = header.last_offset();
                    if !header.is_control() && last >= offset {
                        let batch = &chunk[position..position + header.size_bytes];
                        let decoded = decode(batch, OFFSETS_RECORD_BYTES_MAX * 2).map_err(|e| {
                            StorageError::Corrupt(format!("internal partition batch at {}: {e}", header.base_offset))
                        })?;
                        for view in &decoded.views {
                            if view.offset(header.base_offset) < offset {
                                continue;
                            }
                            let Some(value) = decoded.value(view) else { continue };
                            let change = decode_change(value).map_err(|e| {
                                StorageError::Corrupt(format!(
                                    "internal partition record at {}: {e:?}",
                                    view.offset(header.base_offset)
                                ))
                            })?;
                            state.apply(&change);
                        }
                    }
                    bytes += header.size_bytes as u64;
                    next = next.max(last + 1);
                }
            }
            if next <= offset {
                break;
            }
            offset = next;
        }
        let journal =
            LogJournal { log, lock: FifoLock::new(), failed: Cell::new(false), bytes_since_start: Cell::new(bytes) };
        Ok((journal, state))
    }

    async fn append(&self, changes: &[Change], state: impl FnOnce() -> StoreState) -> Result<(), StorageError> {
        let refused = || StorageError::Failed("the coordinator's earlier write failed".into());
        if self.failed.get() {
            return Err(refused());
        }
        let _permit = self.lock.lock().await;
        // A write that waited behind one that failed fails too: the
        // partition is reloaded from the log, which may not show it.
        if self.failed.get() {
            return Err(refused());
        }
        let result = if self.bytes_since_start.get() > OFFSETS_JOURNAL_BYTES_MAX as u64 {
            self.snapshot(state()).await
        } else {
            self.write(changes.iter().map(encode_change)).await.map(|_| ())
        };
        if result.is_err() {
            // Memory may hold a change the log does not: the partition is
            // reloaded from the log rather than written again.
            self.failed.set(true);
        }
        result
    }

    async fn settle(&self) -> Result<(), StorageError> {
        let _permit = self.lock.lock().await;
        if self.failed.get() {
            return Err(StorageError::Failed("the coordinator's earlier write failed".into()));
        }
        Ok(())
    }

    /// Appends the whole state and moves the log start to its first record.
    async fn snapshot(&self, state: StoreState) -> Result<(), StorageError> {
        let first = self.write(state.changes().iter().map(encode_change)).await?;
        if let Some(first) = first {
            self.log.delete_records(first).await?;
        }
        Ok(())
    }

    /// Appends one record per payload, in batches, each acknowledged once
    /// every in-sync replica has it. Returns the first record's offset.
    async fn write(&self, payloads: impl Iterator<Item = Vec<u8>>) -> Result<Option<i64>, StorageError> {
        let now_ms = sluice_core::clock::now_ms();
        let mut first = None;
        let mut batch = BatchBuilder::new();
        let mut batch_bytes = 0usize;
        for payload in payloads {
            assert!(payload.len() <= OFFSETS_RECORD_BYTES_MAX, "internal record exceeds its bound");
            if batch_bytes > 0 && batch_bytes + payload.len() > JOURNAL_BATCH_BYTES_MAX {
                let base = self.append_batch(std::mem::take(&mut batch)).await?;
                first = first.or(Some(base));
                batch_bytes = 0;
            }
            batch_bytes += payload.len();
            batch = batch.record(None, Some(Bytes::from(payload)), now_ms);
        }
        if batch_bytes > 0 {
            let base = self.append_batch(batch).await?;
            first = first.or(Some(base));
        }
        Ok(first)
    }

    async fn append_batch(&self, batch: BatchBuilder) -> Result<i64, StorageError> {
        let chunk = batch.build().map_err(StorageError::Failed)?.freeze();
        let summaries = validate_chunk(&chunk, chunk.len()).map_err(|e| StorageError::Failed(e.to_string()))?;
        let append = self.log.append(&chunk, &summaries, AckLevel::Synced);
        let appended = glommio::timer::timeout(Duration::from_millis(OFFSETS_COMMIT_TIMEOUT_MS), async {
            Ok(append.await.map_err(|e| match e {
                sluice_storage::log::AppendError::Storage(s) => s,
                other => StorageError::Failed(other.to_string()),
            }))
        })
        .await
        .map_err(|_| StorageError::Failed("the in-sync replicas did not confirm the write in time".into()))??;
        self.bytes_since_start.set(self.bytes_since_start.get() + chunk.len() as u64);
        Ok(appended.base_offset)
    }
}

/// One internal partition held by this shard: its store and its state.
pub struct StatePartition {
    pub store: Backing,
    pub state: RefCell<StoreState>,
}

/// The internal partitions of one kind a shard is responsible for: those
/// `n` with `n % shards == shard_id`. A single node holds all of them from
/// the start; a cluster node holds those whose partition it leads, once loaded.
pub struct StatePartitions {
    shard_id: usize,
    shards: usize,
    held: RefCell<HashMap<usize, Rc<StatePartition>>>,
    /// Partitions being loaded, each with the token of its load.
    loading: RefCell<HashMap<usize, u64>>,
    next_token: Cell<u64>,
    /// What a partition not held here reads as: empty, and refusing writes.
    absent: Rc<StatePartition>,
}

impl StatePartitions {
    /// None held yet (a cluster node).
    pub fn new(shard_id: usize, shards: usize) -> StatePartitions {
        let absent = Rc::new(StatePartition { store: Backing::Absent, state: RefCell::default() });
        StatePartitions {
            shard_id,
            shards,
            held: RefCell::default(),
            loading: RefCell::default(),
            next_token: Cell::new(0),
            absent,
        }
    }

    /// A single node's: every partition of this shard opened from
    /// `<data_dir>/<prefix>-<n>/`.
    pub async fn open_files(
        data_dir: &Path,
        prefix: &str,
        count: usize,
        shard_id: usize,
        shards: usize,
    ) -> Result<StatePartitions, String> {
        let partitions = StatePartitions::new(shard_id, shards);
        for n in (0..count).filter(|n| n % shards == shard_id) {
            let (store, state) =
                GroupStore::open(data_dir.join(format!("{prefix}-{n}"))).await.map_err(|e| e.to_string())?;
            partitions.insert(n, StatePartition { store: Backing::Files(store), state: RefCell::new(state) });
        }
        Ok(partitions)
    }

    /// Partition `n`: the held one, or an empty one that refuses writes.
    pub fn get(&self, n: usize) -> Rc<StatePartition> {
        debug_assert_eq!(n % self.shards, self.shard_id, "internal partition {n} routed to the wrong shard");
        self.held.borrow().get(&n).cloned().unwrap_or_else(|| self.absent.clone())
    }

    /// Whether keys of partition `n` are served here: NOT_COORDINATOR when
    /// it is not held, COORDINATOR_LOAD_IN_PROGRESS while it loads,
    /// COORDINATOR_NOT_AVAILABLE while a failed write waits for its reload.
    pub fn status(&self, n: usize) -> Result<(), ResponseError> {
        if self.loading.borrow().contains_key(&n) {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        match self.held.borrow().get(&n) {
            // Memory may hold a change the store does not: nothing is
            // answered from it until it is loaded again.
            Some(p) if p.store.failed() => Err(ResponseError::CoordinatorNotAvailable),
            Some(_) => Ok(()),
            None => Err(ResponseError::NotCoordinator),
        }
    }

    /// Every held partition, by number.
    pub fn held(&self) -> Vec<(usize, Rc<StatePartition>)> {
        let mut held: Vec<_> = self.held.borrow().iter().map(|(n, p)| (*n, p.clone())).collect();
        held.sort_by_key(|(n, _)| *n);
        held
    }

    /// Whether partition `n` is held or loading.
    pub fn holds_or_loads(&self, n: usize) -> bool {
        self.held.borrow().contains_key(&n) || self.loading.borrow().contains_key(&n)
    }

    /// Whether partition `n` is held with a store whose write failed.
    pub fn failed(&self, n: usize) -> bool {
        self.held.borrow().get(&n).is_some_and(|p| p.store.failed())
    }

    /// Marks partition `n` loading and returns the load's token; `None`
    /// if it is held or loading already.
    pub fn begin_load(&self, n: usize) -> Option<u64> {
        if self.holds_or_loads(n) {
            return None;
        }
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        self.loading.borrow_mut().insert(n, token);
        Some(token)
    }

    /// Ends the load of `token`; false (and nothing held) when it was
    /// cancelled meanwhile ([`remove`](Self::remove)), even if another load
    /// of the partition began since.
    pub fn finish_load(&self, n: usize, token: u64, partition: Option<StatePartition>) -> bool {
        if self.loading.borrow().get(&n) != Some(&token) {
            return false;
        }
        self.loading.borrow_mut().remove(&n);
        match partition {
            Some(partition) => {
                self.insert(n, partition);
                true
            }
            None => false,
        }
    }

    /// Loads partition `n` from the replicated `log` this broker now leads
    /// (`what` names it in the logs); true once it is held, false when it
    /// was held or loading already, could not be read, or was removed meanwhile.
    pub async fn load(&self, n: usize, log: Rc<Log>, what: &str) -> bool {
        let Some(token) = self.begin_load(n) else { return false };
        let loaded = match LogJournal::load(log).await {
            Ok((journal, state)) => Some(StatePartition { store: Backing::Log(journal), state: RefCell::new(state) }),
            Err(e) => {
                tracing::error!(partition = n, error = %e, "cannot load the {what} partition");
                None
            }
        };
        self.finish_load(n, token, loaded)
    }

    fn insert(&self, n: usize, partition: StatePartition) {
        self.held.borrow_mut().insert(n, Rc::new(partition));
    }

    /// Stops holding partition `n` (and cancels a load of it); returns whether it was held.
    pub fn remove(&self, n: usize) -> bool {
        self.loading.borrow_mut().remove(&n);
        self.held.borrow_mut().remove(&n).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::store::CommittedOffset;

    fn commit(partition: i32, offset: i64) -> Change {
        let metadata = Some("m".repeat(400));
        let offset = CommittedOffset { offset, leader_epoch: 0, metadata, commit_timestamp_ms: 1 };
        Change::Commit { group: "g".into(), topic: "t".into(), partition, offset }
    }

    #[test]
    fn a_log_journal_reloads_what_it_wrote_and_snapshots_past_its_bound() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let dir = std::env::temp_dir().join(format!("sluice-log-journal-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                let open = || async {
                    // Segments below the moved log start are deleted once closed.
                    let config = sluice_core::config::TopicConfig { segment_bytes: 64 * 1024, ..Default::default() };
                    Log::open(dir.clone(), config, false, Rc::default(), Rc::default()).await.unwrap()
                };
                let log = open().await;
                let (journal, mut state) = LogJournal::load(log.clone()).await.unwrap();
                assert_eq!(state, StoreState::default());
                for i in 0..3_000 {
                    let change = commit(i % 5, i as i64);
                    state.apply(&change);
                    journal.append(&[change], || state.clone()).await.unwrap();
                }
                assert!(log.log_start_offset() > 0, "a snapshot moved the log start");
                assert!(log.size_bytes() < 3 * OFFSETS_JOURNAL_BYTES_MAX as u64, "{} bytes kept", log.size_bytes());
                log.close().await.unwrap();
                let (_, reloaded) = LogJournal::load(open().await).await.unwrap();
                assert_eq!(reloaded, state);
                assert_eq!(reloaded.offsets["g"][&("t".to_string(), 4)].offset, 2_999);
                std::fs::remove_dir_all(&dir).unwrap();
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn a_snapshot_replayed_over_the_records_before_it_changes_nothing() {
        let mut state = StoreState::default();
        for i in 0..50 {
            state.apply(&commit(i % 3, i64::from(i)));
        }
        state.apply(&Change::DeleteOffset { group: "g".into(), topic: "t".into(), partition: 1 });
        let mut replayed = state.clone();
        for change in state.changes() {
            replayed.apply(&change);
        }
        assert_eq!(replayed, state);
    }
}
