//! The transaction coordinator of one shard, for the transactional ids whose
//! transaction state partitions it owns.
//!
//! A transaction moves Empty → Ongoing (AddPartitionsToTxn, AddOffsetsToTxn)
//! → PrepareCommit/PrepareAbort (EndTxn, a timeout, or a new producer
//! fencing the old one) → CompleteCommit/CompleteAbort. Every state is made
//! durable before it is acted on: the decision (Prepare*) is fsynced before
//! any marker is written, so a broker killed in between finishes the
//! markers after it restarts; an Ongoing transaction found at restart runs
//! out its timeout and is aborted. An id left in Empty, CompleteCommit or
//! CompleteAbort for `transactional.id.expiration.ms` is forgotten (a
//! journal entry deletes it), as Kafka expires it.
//!
//! With transaction version 2 (KIP-890 part 2: EndTxn v5, implicit
//! additions from Produce v12+ and TxnOffsetCommit v5) every decision bumps
//! the producer epoch and the markers carry the new one; a producer whose
//! epochs run out is handed a new producer id when its transaction
//! completes (the id is chosen before the decision is made durable, so a
//! restart completes the same hand-over).
//!
//! Markers go to every partition of the transaction on its owning shard
//! (control batches, synced) and to the group coordinator of every group
//! whose offsets the transaction committed. Operations on one transactional
//! id run one at a time (its lock in `locks`), so no two decisions about it
//! can interleave, while different ids proceed concurrently; no `RefCell`
//! borrow is held across an `.await`.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::rc::Rc;

use glommio::sync::Semaphore;

use super::{state, TxnListing};
use crate::group::backing::{write_error, StatePartition, StatePartitions};
use crate::group::store::{Change, StoredTxn};
use sluice_core::constants::{TXN_GROUPS_MAX, TXN_IDS_EXPIRED_PER_SWEEP_MAX, TXN_PARTITIONS, TXN_PARTITIONS_MAX};
use sluice_protocol::{ResponseError, TopicPartition};

/// What the transaction coordinator needs from the rest of the broker: the
/// producer-id allocator, the partitions' owners and the groups'
/// coordinators (on whichever shards they live), and the time.
#[allow(async_fn_in_trait)]
pub trait TxnEnv {
    /// A new broker-unique producer id; a failure is COORDINATOR_NOT_AVAILABLE, which clients retry.
    async fn allocate_producer_id(&self) -> Result<i64, ResponseError>;
    /// Writes a commit or abort marker for `producer_id` at `epoch` into each
    /// partition (synced on its owner); partitions of deleted topics are skipped.
    async fn write_partition_markers(
        &self,
        partitions: &[TopicPartition],
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), String>;
    /// Commits or drops `producer_id`'s pending offsets in each group.
    async fn write_group_markers(&self, groups: &[String], producer_id: i64, commit: bool) -> Result<(), String>;
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// Whether the cluster's finalized `transaction.version` is 2 or more,
    /// which decides how the coordinator's own aborts (timeouts, fencing by
    /// a new producer) bump the epoch, as Kafka's `transactionVersionLevel`.
    fn epoch_bump(&self) -> bool;
}

/// Where a transaction is, named and numbered as Kafka's coordinator does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Empty = 0,
    Ongoing = 1,
    PrepareCommit = 2,
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
}

const _: () = assert!(TxnState::CompleteAbort as u8 == crate::group::store::TXN_STATE_MAX);

impl TxnState {
    /// Every state, in Kafka's order.
    pub const ALL: [TxnState; 6] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
        }
    }
}

/// A stored transaction state number that names no state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown transaction state number {0}")]
pub struct UnknownTxnState(pub u8);

impl TryFrom<u8> for TxnState {
    type Error = UnknownTxnState;

    /// The state a stored number stands for; never a guess.
    fn try_from(number: u8) -> Result<TxnState, UnknownTxnState> {
        match number {
            0 => Ok(TxnState::Empty),
            1 => Ok(TxnState::Ongoing),
            2 => Ok(TxnState::PrepareCommit),
            3 => Ok(TxnState::PrepareAbort),
            4 => Ok(TxnState::CompleteCommit),
            5 => Ok(TxnState::CompleteAbort),
            _ => Err(UnknownTxnState(number)),
        }
    }
}

/// Coordinator epoch written into markers: a single broker's coordinators never move.
pub const COORDINATOR_EPOCH: i32 = 0;

/// The coordinator's settings, from the broker config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnSettings {
    /// `transaction.max.timeout.ms`: the longest timeout a producer may ask for.
    pub timeout_ms_max: i32,
    /// `transactional.id.expiration.ms`: an id idle this long with nothing open is forgotten.
    pub id_expiration_ms: i64,
}

/// The coordinator of every transactional id whose partition this shard owns.
pub struct TxnCoordinator {
    shard_id: usize,
    shards: usize,
    settings: TxnSettings,
    /// The transaction state partitions this shard holds.
    partitions: StatePartitions,
    /// One lock per transactional id with an operation running or waiting.
    locks: RefCell<HashMap<String, Rc<Semaphore>>>,
    committed: sluice_core::metrics::Counter,
    aborted: sluice_core::metrics::Counter,
}

/// How many transactions this coordinator has open and has ended since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxnCounts {
    /// Ongoing or prepared.
    pub open: u64,
    pub committed: u64,
    pub aborted: u64,
}

/// Holds a transactional id's lock; the last holder removes it from the map.
struct IdLock<'a> {
    coordinator: &'a TxnCoordinator,
    id: String,
    lock: Rc<Semaphore>,
}

impl Drop for IdLock<'_> {
    fn drop(&mut self) {
        self.lock.signal(1);
        // Only the map and this guard hold it: nobody else waits.
        if Rc::strong_count(&self.lock) == 2 {
            self.coordinator.locks.borrow_mut().remove(&self.id);
        }
    }
}

/// A stored transaction's state. The store refuses to open with a number
/// above `TXN_STATE_MAX` in it, and the numbers up to it are exactly the
/// states (see the tests), so every stored number converts.
pub(super) fn state_of(txn: &StoredTxn) -> TxnState {
    TxnState::try_from(txn.state).unwrap_or_else(|e| panic!("{e} passed the store's decoder"))
}

fn listing(id: &str, txn: &StoredTxn) -> TxnListing {
    TxnListing {
        transactional_id: id.to_string(),
        producer_id: txn.producer_id,
        epoch: txn.epoch,
        state: state_of(txn),
        timeout_ms: txn.timeout_ms,
        start_ms: if state_of(txn) == TxnState::Empty { -1 } else { txn.start_ms },
        partitions: txn.partitions.clone(),
        groups: txn.groups.clone(),
    }
}

impl TxnCoordinator {
    /// Opens the transaction state partitions this shard owns; on a
    /// cluster (`replicated`) none is held until this broker leads one
    /// ([`load`](Self::load)).
    pub async fn open(
        data_dir: &Path,
        shard_id: usize,
        shards: usize,
        settings: TxnSettings,
        replicated: bool,
    ) -> Result<TxnCoordinator, String> {
        let partitions = if replicated {
            StatePartitions::new(shard_id, shards)
        } else {
            StatePartitions::open_files(data_dir, "__transaction_state", TXN_PARTITIONS, shard_id, shards).await?
        };
        Ok(TxnCoordinator {
            shard_id,
            shards,
            settings,
            partitions,
            locks: RefCell::new(HashMap::new()),
            committed: Default::default(),
            aborted: Default::default(),
        })
    }

    /// Waits for the transactional id's lock.
    async fn lock(&self, id: &str) -> Result<IdLock<'_>, ResponseError> {
        let lock = self.locks.borrow_mut().entry(id.to_string()).or_insert_with(|| Rc::new(Semaphore::new(1))).clone();
        lock.acquire(1).await.map_err(|_| ResponseError::CoordinatorNotAvailable)?;
        let guard = IdLock { coordinator: self, id: id.to_string(), lock };
        // Its partition may have been unloaded (or be reloading) while this waited.
        self.serves(id)?;
        Ok(guard)
    }

    fn partition_of(&self, id: &str) -> Rc<StatePartition> {
        let n = super::txn_partition(id);
        debug_assert_eq!(n % self.shards, self.shard_id, "transactional id {id} routed to the wrong shard");
        self.partitions.get(n)
    }

    /// Whether this shard serves `transactional_id` now: NOT_COORDINATOR
    /// when its state partition is not held here, COORDINATOR_LOAD_IN_PROGRESS while it loads.
    pub fn serves(&self, transactional_id: &str) -> Result<(), ResponseError> {
        self.partitions.status(super::txn_partition(transactional_id))
    }

    /// Whether state partition `n` is held or loading here.
    pub fn holds(&self, n: usize) -> bool {
        self.partitions.holds_or_loads(n)
    }

    /// Whether state partition `n` is held here with a failed write.
    pub fn failed(&self, n: usize) -> bool {
        self.partitions.failed(n)
    }

    /// Loads state partition `n` from the replicated log this broker now
    /// leads. Its prepared transactions are finished by the next sweep, and
    /// its open ones time out there as they would have on the old coordinator.
    pub async fn load(&self, n: usize, log: Rc<sluice_storage::log::Log>) {
        if self.partitions.load(n, log, "transaction state").await {
            let ids = self.partitions.get(n).state.borrow().txns.len();
            tracing::info!(partition = n, transactional_ids = ids, "transaction state partition loaded");
        }
    }

    /// Stops coordinating the transactional ids of state partition `n`.
    pub fn unload(&self, n: usize) {
        if self.partitions.remove(n) {
            tracing::info!(partition = n, "transaction state partition unloaded");
        }
    }

    fn get(&self, id: &str) -> Option<StoredTxn> {
        self.partition_of(id).state.borrow().txns.get(id).cloned()
    }

    /// Makes a transactional id's new state durable, then current.
    async fn persist(&self, id: &str, txn: StoredTxn) -> Result<StoredTxn, ResponseError> {
        let partition = self.partition_of(id);
        let change = Change::Txn { id: id.to_string(), state: txn.clone() };
        let previous = partition.state.borrow().txns.get(id).cloned();
        partition.state.borrow_mut().apply(&change);
        // The whole state is copied only when the journal is checkpointed.
        let snapshot = || partition.state.borrow().clone();
        if let Err(e) = partition.store.append(std::slice::from_ref(&change), snapshot).await {
            tracing::error!(transactional_id = id, error = %e, "transaction state write failed");
            // Nothing may act on a state that did not become durable.
            let mut state = partition.state.borrow_mut();
            match previous {
                Some(previous) => state.txns.insert(id.to_string(), previous),
                None => state.txns.remove(id),
            };
            return Err(write_error(&e));
        }
        Ok(txn)
    }

    /// The transaction of `id`, as DescribeTransactions shows it.
    pub fn describe(&self, id: &str) -> Result<TxnListing, ResponseError> {
        self.get(id).map(|t| listing(id, &t)).ok_or(ResponseError::TransactionalIdNotFound)
    }

    /// AddPartitionsToTxn: the partitions join the producer's transaction.
    pub async fn add_partitions(
        &self,
        env: &impl TxnEnv,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<TopicPartition>,
    ) -> Result<(), ResponseError> {
        let _guard = self.lock(id).await?;
        self.add(env, id, producer_id, epoch, |txn| {
            for p in partitions {
                if !txn.partitions.contains(&p) {
                    txn.partitions.push(p);
                }
            }
            txn.partitions.len() <= TXN_PARTITIONS_MAX
        })
        .await
    }

    /// AddOffsetsToTxn: the group's offsets become part of the producer's transaction.
    pub async fn add_offsets(
        &self,
        env: &impl TxnEnv,
        id: &str,
        producer_id: i64,
        epoch: i16,
        group_id: String,
    ) -> Result<(), ResponseError> {
        let _guard = self.lock(id).await?;
        self.add(env, id, producer_id, epoch, |txn| {
            if !txn.groups.contains(&group_id) {
                txn.groups.push(group_id);
            }
            txn.groups.len() <= TXN_GROUPS_MAX
        })
        .await
    }

    /// InitProducerId with a transactional id: a producer id (new, or the
    /// id's existing one) and a bumped epoch that fences older producers. An
    /// open transaction of the previous producer is aborted first.
    pub async fn init_producer_id(
        &self,
        env: &impl TxnEnv,
        id: &str,
        timeout_ms: i32,
        producer_id: i64,
        epoch: i16,
    ) -> Result<(i64, i16), ResponseError> {
        let _guard = self.lock(id).await?;
        let existing = self.get(id);
        state::check_init(existing.as_ref(), timeout_ms, self.settings.timeout_ms_max, producer_id, epoch)?;
        let Some(mut txn) = existing else {
            let producer_id = env.allocate_producer_id().await?;
            let txn = self.persist(id, state::new_txn(producer_id, timeout_ms, env.now_ms())).await?;
            return Ok((txn.producer_id, txn.epoch));
        };
        let mut bumped = false;
        if let Some(unfinished) = state::unfinished(&txn, env.epoch_bump())? {
            txn = self.complete(env, id, txn, unfinished.commit, unfinished.epoch).await?;
            bumped = unfinished.bumped;
        }
        if matches!(state_of(&txn), TxnState::PrepareCommit | TxnState::PrepareAbort) {
            // Markers of the previous transaction are not all written yet: the client retries.
            return Err(ResponseError::ConcurrentTransactions);
        }
        let (mut txn, new_producer_id) = state::initialized(txn, timeout_ms, bumped, env.now_ms());
        if new_producer_id {
            txn.producer_id = env.allocate_producer_id().await?;
        }
        let txn = self.persist(id, txn).await?;
        Ok((txn.producer_id, txn.epoch))
    }

    /// AddPartitionsToTxn and AddOffsetsToTxn: `extend` adds to the
    /// transaction and says whether it stays within its bounds.
    async fn add(
        &self,
        env: &impl TxnEnv,
        id: &str,
        producer_id: i64,
        epoch: i16,
        extend: impl FnOnce(&mut StoredTxn) -> bool,
    ) -> Result<(), ResponseError> {
        match state::add(self.get(id), producer_id, epoch, env.now_ms(), extend)? {
            Some(txn) => self.persist(id, txn).await.map(|_| ()),
            None => Ok(()),
        }
    }

    /// EndTxn: commits or aborts the producer's open transaction. With
    /// transaction version 2 (`epoch_bump`: EndTxn v5) the epoch is bumped
    /// and the answer is the producer id and epoch the client continues
    /// with; before it, the ones it has.
    pub async fn end_txn(
        &self,
        env: &impl TxnEnv,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        epoch_bump: bool,
    ) -> Result<(i64, i16), ResponseError> {
        let _guard = self.lock(id).await?;
        let step = match epoch_bump {
            true => state::end_v2(self.get(id), producer_id, epoch, commit, env.now_ms())?,
            false => state::end(self.get(id), producer_id, epoch, commit)?,
        };
        match step {
            state::EndStep::Complete { mut txn, epoch, rotate } => {
                if rotate {
                    txn.next_producer_id = env.allocate_producer_id().await?;
                }
                let done = self.complete(env, id, txn, commit, epoch).await?;
                Ok(state::continues_with(&done))
            }
            state::EndStep::AlreadyDone => {
                let txn = self.get(id).ok_or(ResponseError::InvalidProducerIdMapping)?;
                Ok(state::continues_with(&txn))
            }
        }
    }

    /// Decides `txn` (commit or abort) under `epoch`: the decision is made
    /// durable, then markers are written everywhere, then the completion. If
    /// a marker cannot be written the transaction stays prepared and the
    /// sweep tries again; the decision itself is never taken back.
    async fn complete(
        &self,
        env: &impl TxnEnv,
        id: &str,
        mut txn: StoredTxn,
        commit: bool,
        epoch: i16,
    ) -> Result<StoredTxn, ResponseError> {
        if let Some(prepared) = state::prepared(&txn, commit, epoch, env.now_ms()) {
            txn = self.persist(id, prepared).await?;
        }
        let written = match env.write_partition_markers(&txn.partitions, txn.producer_id, txn.epoch, commit).await {
            Ok(()) => env.write_group_markers(&txn.groups, txn.producer_id, commit).await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::warn!(transactional_id = id, error = %e, "transaction markers not written yet; will retry");
            return Ok(txn);
        }
        tracing::debug!(transactional_id = id, commit, "transaction completed");
        let completed = self.persist(id, state::completed(txn, commit, env.now_ms())).await?;
        if commit { &self.committed } else { &self.aborted }.inc();
        Ok(completed)
    }

    /// Open transactions now, and those ended since start.
    pub fn counts(&self) -> TxnCounts {
        let open = self
            .partitions
            .held()
            .iter()
            .map(|(_, p)| {
                let state = p.state.borrow();
                state
                    .txns
                    .values()
                    .filter(|t| {
                        matches!(state_of(t), TxnState::Ongoing | TxnState::PrepareCommit | TxnState::PrepareAbort)
                    })
                    .count() as u64
            })
            .sum();
        TxnCounts { open, committed: self.committed.get(), aborted: self.aborted.get() }
    }

    /// ListTransactions: the transactions in the given states (all when
    /// empty), of the given producers (all when empty), open at least `min_duration_ms` (-1: any).
    pub fn list(&self, now_ms: i64, states: &[String], producer_ids: &[i64], min_duration_ms: i64) -> Vec<TxnListing> {
        let mut out = Vec::new();
        for (_, partition) in self.partitions.held() {
            for (id, txn) in &partition.state.borrow().txns {
                if state::listed(txn, states, producer_ids, min_duration_ms, now_ms) {
                    out.push(listing(id, txn));
                }
            }
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }

    /// Aborts transactions open longer than their timeout (bumping the epoch,
    /// which fences the producer, as Kafka does), finishes prepared ones
    /// whose markers are not all written yet (after a failure or a restart),
    /// and forgets transactional ids past `transactional.id.expiration.ms`.
    pub async fn sweep(&self, env: &impl TxnEnv) {
        let now = env.now_ms();
        let epoch_bump = env.epoch_bump();
        let mut due: Vec<(String, StoredTxn)> = Vec::new();
        let mut idle: BTreeMap<usize, Vec<(String, StoredTxn)>> = BTreeMap::new();
        let mut idle_count = 0;
        for (n, partition) in self.partitions.held() {
            for (id, txn) in &partition.state.borrow().txns {
                if state::sweep(txn, now, epoch_bump).is_some() {
                    due.push((id.clone(), txn.clone()));
                } else if idle_count < TXN_IDS_EXPIRED_PER_SWEEP_MAX
                    && state::expired(txn, now, self.settings.id_expiration_ms)
                {
                    idle.entry(n).or_default().push((id.clone(), txn.clone()));
                    idle_count += 1;
                }
            }
        }
        for (n, ids) in idle {
            self.expire(n, ids).await;
        }
        for (id, seen) in due {
            let Ok(_guard) = self.lock(&id).await else { return };
            // Look again under the lock: a request may have moved it on.
            let Some(txn) = self.get(&id) else { continue };
            if txn != seen {
                continue;
            }
            let Some((commit, epoch)) = state::sweep(&txn, now, epoch_bump) else { continue };
            if state_of(&txn) == TxnState::Ongoing {
                tracing::info!(transactional_id = %id, producer_id = txn.producer_id, "transaction timed out; aborting");
            }
            if let Err(e) = self.complete(env, &id, txn, commit, epoch).await {
                tracing::warn!(transactional_id = %id, error = ?e, "cannot finish transaction");
            }
        }
    }

    /// Forgets the expired transactional ids `seen` of state partition `n`
    /// in one journal write, each under its lock and only if nothing changed
    /// it since it was seen. Only the sweep holds several locks at once, so
    /// taking them one after another cannot deadlock.
    async fn expire(&self, n: usize, seen: Vec<(String, StoredTxn)>) {
        let partition = self.partitions.get(n);
        let mut guards = Vec::with_capacity(seen.len());
        let mut forgotten = Vec::with_capacity(seen.len());
        for (id, txn) in seen {
            let Ok(guard) = self.lock(&id).await else { return };
            if self.get(&id).as_ref() == Some(&txn) {
                forgotten.push((id, txn));
                guards.push(guard);
            }
        }
        if forgotten.is_empty() {
            return;
        }
        let changes: Vec<Change> = forgotten.iter().map(|(id, _)| Change::DeleteTxn { id: id.clone() }).collect();
        for change in &changes {
            partition.state.borrow_mut().apply(change);
        }
        let snapshot = || partition.state.borrow().clone();
        if let Err(e) = partition.store.append(&changes, snapshot).await {
            tracing::error!(partition = n, error = %e, "transactional id expiration not written; kept");
            let mut state = partition.state.borrow_mut();
            for (id, txn) in forgotten {
                state.txns.insert(id, txn);
            }
            return;
        }
        for (id, txn) in &forgotten {
            tracing::info!(transactional_id = %id, producer_id = txn.producer_id, "transactional id expired");
        }
    }

    /// Closes the journals; an append under way finishes first.
    pub async fn close(&self) {
        for (_, partition) in self.partitions.held() {
            partition.store.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::store::TXN_STATE_MAX;

    #[test]
    fn stored_state_numbers_convert_back_and_unknown_ones_are_refused() {
        for state in TxnState::ALL {
            assert_eq!(TxnState::try_from(state as u8), Ok(state));
        }
        // Exactly the numbers the store accepts name a state: no stored one is refused here.
        for number in 0..=u8::MAX {
            assert_eq!(TxnState::try_from(number).is_ok(), number <= TXN_STATE_MAX, "state number {number}");
        }
        assert_eq!(TxnState::try_from(TXN_STATE_MAX + 1), Err(UnknownTxnState(TXN_STATE_MAX + 1)));
        assert_eq!(UnknownTxnState(9).to_string(), "unknown transaction state number 9");
    }
}
