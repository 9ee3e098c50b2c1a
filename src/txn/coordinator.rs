//! The transaction coordinator of one shard, for the transactional ids whose
//! transaction state partitions it owns.
//!
//! A transaction moves Empty → Ongoing (AddPartitionsToTxn, AddOffsetsToTxn)
//! → PrepareCommit/PrepareAbort (EndTxn, a timeout, or a new producer
//! fencing the old one) → CompleteCommit/CompleteAbort. Every state is made
//! durable before it is acted on: the decision (Prepare*) is fsynced before
//! any marker is written, so a broker killed in between finishes the
//! markers after it restarts; an Ongoing transaction found at restart runs
//! out its timeout and is aborted.
//!
//! Markers go to every partition of the transaction on its owning shard
//! (control batches, synced) and to the group coordinator of every group
//! whose offsets the transaction committed. Operations on one transactional
//! id run one at a time (its lock in `locks`), so no two decisions about it
//! can interleave, while different ids proceed concurrently; no `RefCell`
//! borrow is held across an `.await`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use glommio::sync::Semaphore;

use super::{TxnCall, TxnListing, TxnReply};
use crate::constants::{TXN_GROUPS_MAX, TXN_PARTITIONS, TXN_PARTITIONS_MAX};
use crate::group::store::{Change, GroupStore, StoreState, StoredTxn};
use crate::group::{GroupCall, GroupReply};
use crate::metadata::controller::{ControllerReply, ControllerRequest};
use crate::protocol::ResponseError;
use crate::router::{MarkerPart, RouteError, ShardRequest};
use crate::shard::Shard;
use crate::storage::StorageError;

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

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// One transaction state partition this shard owns.
struct TxnPartition {
    store: GroupStore,
    state: RefCell<StoreState>,
}

/// The coordinator of every transactional id whose partition this shard owns.
pub struct TxnCoordinator {
    shard_id: usize,
    shards: usize,
    /// `transaction.max.timeout.ms`.
    timeout_ms_max: i32,
    partitions: HashMap<usize, Rc<TxnPartition>>,
    /// One lock per transactional id with an operation running or waiting.
    locks: RefCell<HashMap<String, Rc<Semaphore>>>,
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

/// Checks that `producer_id` and `epoch` are the transactional id's current ones.
fn current(txn: Option<StoredTxn>, producer_id: i64, epoch: i16) -> Result<StoredTxn, ResponseError> {
    let Some(txn) = txn else { return Err(ResponseError::InvalidProducerIdMapping) };
    super::check_producer((txn.producer_id, txn.epoch), producer_id, epoch)?;
    Ok(txn)
}

/// A stored transaction's state. The store refuses to open with a number
/// above `TXN_STATE_MAX` in it, and the numbers up to it are exactly the
/// states (see the tests), so every stored number converts.
fn state_of(txn: &StoredTxn) -> TxnState {
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
    /// Opens the transaction state partitions this shard owns.
    pub async fn open(
        data_dir: &Path,
        shard_id: usize,
        shards: usize,
        timeout_ms_max: i32,
    ) -> Result<TxnCoordinator, String> {
        let mut partitions = HashMap::new();
        for n in (0..TXN_PARTITIONS).filter(|n| n % shards == shard_id) {
            let dir = data_dir.join(format!("__transaction_state-{n}"));
            let (store, state) = GroupStore::open(dir).await.map_err(|e| e.to_string())?;
            partitions.insert(n, Rc::new(TxnPartition { store, state: RefCell::new(state) }));
        }
        Ok(TxnCoordinator { shard_id, shards, timeout_ms_max, partitions, locks: RefCell::new(HashMap::new()) })
    }

    /// Waits for the transactional id's lock.
    async fn lock(&self, id: &str) -> Result<IdLock<'_>, ResponseError> {
        let lock = self.locks.borrow_mut().entry(id.to_string()).or_insert_with(|| Rc::new(Semaphore::new(1))).clone();
        lock.acquire(1).await.map_err(|_| ResponseError::CoordinatorNotAvailable)?;
        Ok(IdLock { coordinator: self, id: id.to_string(), lock })
    }

    fn partition_of(&self, id: &str) -> Rc<TxnPartition> {
        let n = super::txn_partition(id);
        assert_eq!(n % self.shards, self.shard_id, "transactional id {id} routed to the wrong shard");
        self.partitions.get(&n).expect("owned transaction partition is open").clone()
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
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        Ok(txn)
    }

    /// Runs one routed transaction call.
    pub async fn serve(&self, shard: &Rc<Shard>, call: TxnCall) -> TxnReply {
        match call {
            TxnCall::List { states, producer_ids, min_duration_ms } => {
                TxnReply::List(self.list(&states, &producer_ids, min_duration_ms))
            }
            TxnCall::Describe { transactional_id } => TxnReply::Describe(
                self.get(&transactional_id)
                    .map(|t| listing(&transactional_id, &t))
                    .ok_or(ResponseError::TransactionalIdNotFound),
            ),
            call => {
                let id = match &call {
                    TxnCall::InitProducerId { transactional_id, .. }
                    | TxnCall::AddPartitions { transactional_id, .. }
                    | TxnCall::AddOffsets { transactional_id, .. }
                    | TxnCall::EndTxn { transactional_id, .. } => transactional_id.clone(),
                    TxnCall::List { .. } | TxnCall::Describe { .. } => unreachable!("answered above"),
                };
                let _guard = match self.lock(&id).await {
                    Ok(guard) => guard,
                    Err(e) => return TxnReply::Done(Err(e)),
                };
                match call {
                    TxnCall::InitProducerId { transactional_id, timeout_ms, producer_id, epoch } => {
                        TxnReply::ProducerId(
                            self.init_producer_id(shard, &transactional_id, timeout_ms, producer_id, epoch).await,
                        )
                    }
                    TxnCall::AddPartitions { transactional_id, producer_id, epoch, partitions } => TxnReply::Done(
                        self.add(&transactional_id, producer_id, epoch, |txn| {
                            for p in partitions {
                                if !txn.partitions.contains(&p) {
                                    txn.partitions.push(p);
                                }
                            }
                            txn.partitions.len() <= TXN_PARTITIONS_MAX
                        })
                        .await,
                    ),
                    TxnCall::AddOffsets { transactional_id, producer_id, epoch, group_id } => TxnReply::Done(
                        self.add(&transactional_id, producer_id, epoch, |txn| {
                            if !txn.groups.contains(&group_id) {
                                txn.groups.push(group_id);
                            }
                            txn.groups.len() <= TXN_GROUPS_MAX
                        })
                        .await,
                    ),
                    TxnCall::EndTxn { transactional_id, producer_id, epoch, commit } => {
                        TxnReply::Done(self.end_txn(shard, &transactional_id, producer_id, epoch, commit).await)
                    }
                    TxnCall::List { .. } | TxnCall::Describe { .. } => unreachable!("answered above"),
                }
            }
        }
    }

    /// InitProducerId with a transactional id: a producer id (new, or the
    /// id's existing one) and a bumped epoch that fences older producers. An
    /// open transaction of the previous producer is aborted first.
    async fn init_producer_id(
        &self,
        shard: &Rc<Shard>,
        id: &str,
        timeout_ms: i32,
        producer_id: i64,
        epoch: i16,
    ) -> Result<(i64, i16), ResponseError> {
        if timeout_ms <= 0 || timeout_ms > self.timeout_ms_max {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        let Some(mut txn) = self.get(id) else {
            let producer_id = allocate_producer_id(shard).await?;
            let txn = StoredTxn {
                producer_id,
                epoch: 0,
                timeout_ms,
                state: TxnState::Empty as u8,
                update_ms: now_ms(),
                ..Default::default()
            };
            let txn = self.persist(id, txn).await?;
            return Ok((txn.producer_id, txn.epoch));
        };
        // KIP-360: a producer that knows its id and epoch may only bump its own.
        if producer_id >= 0 && (producer_id != txn.producer_id || epoch != txn.epoch) {
            return Err(ResponseError::ProducerFenced);
        }
        let mut bumped = false;
        match state_of(&txn) {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                let commit = state_of(&txn) == TxnState::PrepareCommit;
                let epoch = txn.epoch;
                txn = self.complete(shard, id, txn, commit, epoch).await?;
            }
            TxnState::Ongoing => {
                // The old producer's transaction is aborted under a bumped epoch, which fences it.
                let epoch = txn.epoch.checked_add(1).ok_or(ResponseError::ProducerFenced)?;
                txn = self.complete(shard, id, txn, false, epoch).await?;
                bumped = true;
            }
            _ => {}
        }
        if matches!(state_of(&txn), TxnState::PrepareCommit | TxnState::PrepareAbort) {
            // Markers of the previous transaction are not all written yet: the client retries.
            return Err(ResponseError::ConcurrentTransactions);
        }
        if !bumped {
            match txn.epoch.checked_add(1).filter(|e| *e < i16::MAX) {
                Some(next) => txn.epoch = next,
                None => {
                    // Epochs are used up: a new producer id starts again at 0.
                    txn.producer_id = allocate_producer_id(shard).await?;
                    txn.epoch = 0;
                }
            }
        }
        txn.state = TxnState::Empty as u8;
        txn.timeout_ms = timeout_ms;
        txn.partitions.clear();
        txn.groups.clear();
        txn.update_ms = now_ms();
        let txn = self.persist(id, txn).await?;
        Ok((txn.producer_id, txn.epoch))
    }

    /// AddPartitionsToTxn and AddOffsetsToTxn: `extend` adds to the
    /// transaction and says whether it stays within its bounds.
    async fn add(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        extend: impl FnOnce(&mut StoredTxn) -> bool,
    ) -> Result<(), ResponseError> {
        let mut txn = current(self.get(id), producer_id, epoch)?;
        match state_of(&txn) {
            TxnState::PrepareCommit | TxnState::PrepareAbort => return Err(ResponseError::ConcurrentTransactions),
            TxnState::Ongoing => {}
            _ => {
                txn.partitions.clear();
                txn.groups.clear();
                txn.start_ms = now_ms();
            }
        }
        let before = txn.clone();
        if !extend(&mut txn) {
            return Err(ResponseError::InvalidRequest);
        }
        txn.state = TxnState::Ongoing as u8;
        if txn == before {
            return Ok(());
        }
        txn.update_ms = now_ms();
        self.persist(id, txn).await.map(|_| ())
    }

    async fn end_txn(
        &self,
        shard: &Rc<Shard>,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), ResponseError> {
        let txn = current(self.get(id), producer_id, epoch)?;
        match (state_of(&txn), commit) {
            (TxnState::Ongoing, _) => self.complete(shard, id, txn, commit, epoch).await.map(|_| ()),
            // A retry of an EndTxn that already finished.
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(()),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(ResponseError::ConcurrentTransactions)
            }
            _ => Err(ResponseError::InvalidTxnState),
        }
    }

    /// Decides `txn` (commit or abort) under `epoch`: the decision is made
    /// durable, then markers are written everywhere, then the completion. If
    /// a marker cannot be written the transaction stays prepared and the
    /// sweep tries again; the decision itself is never taken back.
    async fn complete(
        &self,
        shard: &Rc<Shard>,
        id: &str,
        mut txn: StoredTxn,
        commit: bool,
        epoch: i16,
    ) -> Result<StoredTxn, ResponseError> {
        let prepared = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
        if state_of(&txn) != prepared || txn.epoch != epoch {
            txn.state = prepared as u8;
            txn.epoch = epoch;
            txn.update_ms = now_ms();
            txn = self.persist(id, txn).await?;
        }
        if let Err(e) = write_markers(shard, &txn, commit).await {
            tracing::warn!(transactional_id = id, error = %e, "transaction markers not written yet; will retry");
            return Ok(txn);
        }
        txn.state = if commit { TxnState::CompleteCommit } else { TxnState::CompleteAbort } as u8;
        txn.partitions.clear();
        txn.groups.clear();
        txn.update_ms = now_ms();
        tracing::debug!(transactional_id = id, commit, "transaction completed");
        self.persist(id, txn).await
    }

    fn list(&self, states: &[String], producer_ids: &[i64], min_duration_ms: i64) -> Vec<TxnListing> {
        let now = now_ms();
        let mut out = Vec::new();
        for partition in self.partitions.values() {
            for (id, txn) in &partition.state.borrow().txns {
                let state = state_of(txn);
                if !states.is_empty() && !states.iter().any(|s| s == state.name()) {
                    continue;
                }
                if !producer_ids.is_empty() && !producer_ids.contains(&txn.producer_id) {
                    continue;
                }
                if min_duration_ms >= 0 && (state == TxnState::Empty || now - txn.start_ms < min_duration_ms) {
                    continue;
                }
                out.push(listing(id, txn));
            }
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }

    /// Aborts transactions open longer than their timeout (bumping the epoch,
    /// which fences the producer, as Kafka does) and finishes prepared ones
    /// whose markers are not all written yet (after a failure or a restart).
    pub async fn sweep(&self, shard: &Rc<Shard>) {
        let now = now_ms();
        let mut due: Vec<(String, StoredTxn)> = Vec::new();
        for partition in self.partitions.values() {
            for (id, txn) in &partition.state.borrow().txns {
                let state = state_of(txn);
                let timed_out = state == TxnState::Ongoing && now - txn.start_ms > txn.timeout_ms as i64;
                if timed_out || matches!(state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
                    due.push((id.clone(), txn.clone()));
                }
            }
        }
        if due.is_empty() {
            return;
        }
        for (id, seen) in due {
            let Ok(_guard) = self.lock(&id).await else { return };
            // Look again under the lock: a request may have moved it on.
            let Some(txn) = self.get(&id) else { continue };
            if txn != seen {
                continue;
            }
            let result = match state_of(&txn) {
                TxnState::Ongoing => {
                    tracing::info!(transactional_id = %id, producer_id = txn.producer_id, "transaction timed out; aborting");
                    match txn.epoch.checked_add(1) {
                        Some(epoch) => self.complete(shard, &id, txn, false, epoch).await,
                        None => {
                            let epoch = txn.epoch;
                            self.complete(shard, &id, txn, false, epoch).await
                        }
                    }
                }
                state => {
                    let epoch = txn.epoch;
                    self.complete(shard, &id, txn, state == TxnState::PrepareCommit, epoch).await
                }
            };
            if let Err(e) = result {
                tracing::warn!(transactional_id = %id, error = ?e, "cannot finish transaction");
            }
        }
    }

    /// Closes the journals; an append under way finishes first.
    pub async fn close(&self) {
        for partition in self.partitions.values() {
            partition.store.close().await;
        }
    }
}

/// A new broker-unique producer id from shard 0's allocator: for an
/// idempotent producer (InitProducerId without a transactional id) and for a
/// transactional id's first or exhausted producer id alike. A failure to
/// reserve ids on disk is logged and answered as COORDINATOR_NOT_AVAILABLE,
/// which clients retry.
pub async fn allocate_producer_id(shard: &Rc<Shard>) -> Result<i64, ResponseError> {
    let reply =
        shard.call(0, |reply| ShardRequest::Controller { request: ControllerRequest::AllocateProducerId, reply }).await;
    match reply {
        Ok(ControllerReply::ProducerId(Ok(id))) => Ok(id),
        Ok(ControllerReply::ProducerId(Err(e))) => {
            tracing::error!(error = %e, "cannot reserve producer ids");
            Err(ResponseError::CoordinatorNotAvailable)
        }
        Ok(other) => unreachable!("controller answered a producer id request with {other:?}"),
        Err(_) => Err(ResponseError::CoordinatorNotAvailable),
    }
}

/// Writes the transaction's markers: a control batch in each of its
/// partitions (on their owners, synced) and the offsets decision at each
/// group's coordinator. Partitions of deleted topics are skipped.
async fn write_markers(shard: &Rc<Shard>, txn: &StoredTxn, commit: bool) -> Result<(), String> {
    let catalog = shard.catalog();
    let mut items = Vec::with_capacity(txn.partitions.len());
    for (topic, partition) in &txn.partitions {
        let Some(meta) = catalog.topic(topic) else { continue };
        let Some(owner) = meta.owner(*partition) else { continue };
        let part = MarkerPart {
            topic: meta.name.clone(),
            partition: *partition,
            producer_id: txn.producer_id,
            epoch: txn.epoch,
            commit,
            coordinator_epoch: COORDINATOR_EPOCH,
        };
        items.push((owner, part));
    }
    let written =
        crate::handlers::scatter(shard, items, |markers, reply| ShardRequest::WriteMarkers { markers, reply }).await;
    for result in written {
        match result {
            Ok(_) => {}
            // The producer has moved on to a newer epoch there: nothing of this one is open.
            Err(RouteError::Producer(_)) => {}
            Err(RouteError::Storage(StorageError::Failed(reason))) => return Err(reason),
            Err(e) => return Err(e.to_string()),
        }
    }
    for group_id in &txn.groups {
        let call = GroupCall::TxnEnd { group_id: group_id.clone(), producer_id: txn.producer_id, commit };
        match crate::handlers::call_group(shard, group_id, call).await {
            Ok(GroupReply::TxnEnd(Ok(()))) => {}
            Ok(GroupReply::TxnEnd(Err(e))) => return Err(format!("group {group_id}: {e:?}")),
            Ok(other) => unreachable!("group coordinator answered a marker with {other:?}"),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
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
