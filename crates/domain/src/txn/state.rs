//! The transaction state machine of one transactional id, as plain
//! functions of its stored state, the request and the time. They decide;
//! [`super::coordinator::TxnCoordinator`] makes each decision durable and
//! writes the markers. Nothing here reads a clock or touches a file.

use super::coordinator::{state_of, TxnState};
use crate::group::store::StoredTxn;
use sluice_protocol::ResponseError;

/// Checks that `producer_id` and `epoch` are the transactional id's current ones.
pub fn current(txn: Option<StoredTxn>, producer_id: i64, epoch: i16) -> Result<StoredTxn, ResponseError> {
    let Some(txn) = txn else { return Err(ResponseError::InvalidProducerIdMapping) };
    super::check_producer((txn.producer_id, txn.epoch), producer_id, epoch)?;
    Ok(txn)
}

/// InitProducerId's checks: the timeout is within `transaction.max.timeout.ms`
/// and, per KIP-360, a producer that names its id and epoch may only bump its own.
pub fn check_init(
    txn: Option<&StoredTxn>,
    timeout_ms: i32,
    timeout_ms_max: i32,
    producer_id: i64,
    epoch: i16,
) -> Result<(), ResponseError> {
    if timeout_ms <= 0 || timeout_ms > timeout_ms_max {
        return Err(ResponseError::InvalidTransactionTimeout);
    }
    if let Some(txn) = txn {
        if producer_id >= 0 && (producer_id != txn.producer_id || epoch != txn.epoch) {
            return Err(ResponseError::ProducerFenced);
        }
    }
    Ok(())
}

/// What InitProducerId must finish before the producer can start afresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unfinished {
    pub commit: bool,
    pub epoch: i16,
    /// The epoch was bumped to fence the old producer (its open transaction is aborted).
    pub bumped: bool,
}

/// The previous producer's transaction that InitProducerId completes first:
/// a prepared one under its epoch, an open one aborted under a bumped epoch.
/// With transaction version 2 (`epoch_bump`, the cluster's level) the abort
/// bumps the fenced epoch once more and InitProducerId bumps it again after,
/// as Kafka's `prepareFenceProducerEpoch` then `prepareAbortOrCommit` then
/// `prepareIncrementProducerEpoch`; before it the fencing epoch is the one
/// InitProducerId returns.
pub fn unfinished(txn: &StoredTxn, epoch_bump: bool) -> Result<Option<Unfinished>, ResponseError> {
    Ok(match state_of(txn) {
        TxnState::PrepareCommit => Some(Unfinished { commit: true, epoch: txn.epoch, bumped: false }),
        TxnState::PrepareAbort => Some(Unfinished { commit: false, epoch: txn.epoch, bumped: false }),
        TxnState::Ongoing if epoch_bump => {
            Some(Unfinished { commit: false, epoch: fenced_epoch(txn.epoch), bumped: false })
        }
        TxnState::Ongoing => {
            let epoch = txn.epoch.checked_add(1).ok_or(ResponseError::ProducerFenced)?;
            Some(Unfinished { commit: false, epoch, bumped: true })
        }
        _ => None,
    })
}

/// The epoch a coordinator-initiated abort (a timeout or a new producer)
/// under transaction version 2 writes its markers with: the fencing bump,
/// then the bump every ended transaction gets, never past `i16::MAX`.
fn fenced_epoch(epoch: i16) -> i16 {
    epoch.saturating_add(1).saturating_add(1)
}

/// The transactional id's state after InitProducerId: Empty, with the new
/// timeout and (unless already bumped) the next epoch. `true` means the
/// epochs are used up and the caller must give it a new producer id (epoch 0).
pub fn initialized(mut txn: StoredTxn, timeout_ms: i32, bumped: bool, now_ms: i64) -> (StoredTxn, bool) {
    let mut new_producer_id = false;
    if !bumped {
        match txn.epoch.checked_add(1).filter(|e| *e < i16::MAX) {
            Some(next) => txn.epoch = next,
            None => {
                txn.epoch = 0;
                new_producer_id = true;
            }
        }
    }
    txn.state = TxnState::Empty as u8;
    txn.timeout_ms = timeout_ms;
    txn.partitions.clear();
    txn.groups.clear();
    txn.update_ms = now_ms;
    (txn, new_producer_id)
}

/// A transactional id seen for the first time.
pub fn new_txn(producer_id: i64, timeout_ms: i32, now_ms: i64) -> StoredTxn {
    StoredTxn {
        producer_id,
        epoch: 0,
        timeout_ms,
        state: TxnState::Empty as u8,
        update_ms: now_ms,
        ..Default::default()
    }
}

/// AddPartitionsToTxn and AddOffsetsToTxn: `extend` adds to the transaction
/// (starting one if none is open) and says whether it stays within its
/// bounds. `None`: nothing changed (a retry), nothing to persist.
pub fn add(
    txn: Option<StoredTxn>,
    producer_id: i64,
    epoch: i16,
    now_ms: i64,
    extend: impl FnOnce(&mut StoredTxn) -> bool,
) -> Result<Option<StoredTxn>, ResponseError> {
    let mut txn = current(txn, producer_id, epoch)?;
    match state_of(&txn) {
        TxnState::PrepareCommit | TxnState::PrepareAbort => return Err(ResponseError::ConcurrentTransactions),
        TxnState::Ongoing => {}
        _ => {
            txn.partitions.clear();
            txn.groups.clear();
            txn.start_ms = now_ms;
        }
    }
    let before = txn.clone();
    if !extend(&mut txn) {
        return Err(ResponseError::InvalidRequest);
    }
    txn.state = TxnState::Ongoing as u8;
    if txn == before {
        return Ok(None);
    }
    txn.update_ms = now_ms;
    Ok(Some(txn))
}

/// What EndTxn does.
#[derive(Debug, PartialEq, Eq)]
pub enum EndStep {
    /// Decide `txn` (commit or abort) under `epoch`. `rotate`: its epochs
    /// are used up, so the caller gives it the producer id it continues
    /// with (`next_producer_id`) before the decision is written.
    Complete { txn: StoredTxn, epoch: i16, rotate: bool },
    /// A retry of an EndTxn that already finished: nothing to write.
    AlreadyDone,
}

/// EndTxn before transaction version 2 (v0-4): the epoch stays.
pub fn end(txn: Option<StoredTxn>, producer_id: i64, epoch: i16, commit: bool) -> Result<EndStep, ResponseError> {
    let txn = current(txn, producer_id, epoch)?;
    match (state_of(&txn), commit) {
        (TxnState::Ongoing, _) => Ok(EndStep::Complete { epoch: txn.epoch, txn, rotate: false }),
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(EndStep::AlreadyDone),
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => Err(ResponseError::ConcurrentTransactions),
        _ => Err(ResponseError::InvalidTxnState),
    }
}

/// EndTxn with transaction version 2 (v5), as Kafka's coordinator decides
/// it: every decision bumps the epoch (the markers carry the new one and the
/// client continues with it), so a retry is told apart from the next
/// transaction by its epoch being one less than the stored one (or, after a
/// rotation, the previous producer id at the last epoch). An abort with no
/// transaction open is accepted: the client may have produced to partitions
/// whose implicit addition never reached the coordinator.
pub fn end_v2(
    txn: Option<StoredTxn>,
    producer_id: i64,
    epoch: i16,
    commit: bool,
    now_ms: i64,
) -> Result<EndStep, ResponseError> {
    let Some(txn) = txn else { return Err(ResponseError::InvalidProducerIdMapping) };
    let state = state_of(&txn);
    let retry_on_overflow = txn.prev_producer_id == producer_id && epoch == i16::MAX - 1 && txn.epoch == 0;
    let retry_on_bump = epoch.checked_add(1) == Some(txn.epoch);
    let valid_epoch = match state {
        TxnState::Ongoing | TxnState::Empty => epoch == txn.epoch,
        TxnState::PrepareCommit | TxnState::PrepareAbort => retry_on_bump,
        TxnState::CompleteCommit | TxnState::CompleteAbort => retry_on_bump || retry_on_overflow || epoch == txn.epoch,
    };
    if txn.producer_id != producer_id && !retry_on_overflow {
        return Err(ResponseError::InvalidProducerIdMapping);
    }
    if !valid_epoch {
        return Err(ResponseError::ProducerFenced);
    }
    let retry = retry_on_bump || retry_on_overflow;
    let decide = |mut txn: StoredTxn, nothing_added: bool| {
        if nothing_added {
            txn.partitions.clear();
            txn.groups.clear();
            txn.start_ms = now_ms;
        }
        // Kafka lets an abort at the last epoch through without a bump, to recover.
        let epoch = txn.epoch.saturating_add(1);
        let rotate = txn.epoch >= i16::MAX - 1;
        Ok(EndStep::Complete { txn, epoch, rotate })
    };
    match (state, commit) {
        (TxnState::Ongoing, _) => decide(txn, false),
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) if retry => Ok(EndStep::AlreadyDone),
        (TxnState::CompleteCommit | TxnState::CompleteAbort | TxnState::Empty, false) if !retry => decide(txn, true),
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => Err(ResponseError::ConcurrentTransactions),
        _ => Err(ResponseError::InvalidTxnState),
    }
}

/// The producer id and epoch the client continues with once `txn` (decided
/// or completed) is done: after a rotation, the next producer id at epoch 0.
pub fn continues_with(txn: &StoredTxn) -> (i64, i16) {
    if txn.next_producer_id >= 0 {
        (txn.next_producer_id, 0)
    } else {
        (txn.producer_id, txn.epoch)
    }
}

/// The decision, before any marker: PrepareCommit or PrepareAbort under
/// `epoch`. `None` when the transaction is already prepared so.
pub fn prepared(txn: &StoredTxn, commit: bool, epoch: i16, now_ms: i64) -> Option<StoredTxn> {
    let state = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
    if state_of(txn) == state && txn.epoch == epoch {
        return None;
    }
    let mut txn = txn.clone();
    txn.state = state as u8;
    txn.epoch = epoch;
    txn.update_ms = now_ms;
    Some(txn)
}

/// After every marker is written: CompleteCommit or CompleteAbort, nothing
/// left in it; a transaction whose epochs ran out hands over to its next
/// producer id at epoch 0 (Kafka's `prepareComplete`).
pub fn completed(mut txn: StoredTxn, commit: bool, now_ms: i64) -> StoredTxn {
    if txn.next_producer_id >= 0 {
        txn.prev_producer_id = txn.producer_id;
        txn.producer_id = txn.next_producer_id;
        txn.epoch = 0;
        txn.next_producer_id = -1;
    }
    txn.state = if commit { TxnState::CompleteCommit } else { TxnState::CompleteAbort } as u8;
    txn.partitions.clear();
    txn.groups.clear();
    txn.update_ms = now_ms;
    txn
}

/// What the sweep does with a transaction at `now_ms`: abort one open past
/// its timeout (bumping the epoch, which fences the producer, as Kafka does;
/// with transaction version 2, `epoch_bump`, bumped once more as every ended
/// transaction is; never past the last epoch), or finish a prepared one
/// whose markers are not all written. `None`: leave it.
pub fn sweep(txn: &StoredTxn, now_ms: i64, epoch_bump: bool) -> Option<(bool, i16)> {
    match state_of(txn) {
        TxnState::Ongoing if now_ms - txn.start_ms > txn.timeout_ms as i64 => {
            Some((false, if epoch_bump { fenced_epoch(txn.epoch) } else { txn.epoch.saturating_add(1) }))
        }
        TxnState::PrepareCommit => Some((true, txn.epoch)),
        TxnState::PrepareAbort => Some((false, txn.epoch)),
        _ => None,
    }
}

/// Whether the transactional id is forgotten at `now_ms`, as Kafka's
/// `transactional.id.expiration.ms` forgets it: no transaction open or being
/// decided (Empty, CompleteCommit, CompleteAbort) and no change of state for
/// `expiration_ms`.
pub fn expired(txn: &StoredTxn, now_ms: i64, expiration_ms: i64) -> bool {
    matches!(state_of(txn), TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort)
        && txn.update_ms <= now_ms.saturating_sub(expiration_ms)
}

/// Whether ListTransactions shows `txn`: in one of `states` (any when
/// empty), of one of `producer_ids` (any when empty), and open at least
/// `min_duration_ms` (-1: any, including not open).
pub fn listed(txn: &StoredTxn, states: &[String], producer_ids: &[i64], min_duration_ms: i64, now_ms: i64) -> bool {
    let state = state_of(txn);
    if !states.is_empty() && !states.iter().any(|s| s == state.name()) {
        return false;
    }
    if !producer_ids.is_empty() && !producer_ids.contains(&txn.producer_id) {
        return false;
    }
    !(min_duration_ms >= 0 && (state == TxnState::Empty || now_ms - txn.start_ms < min_duration_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocol::TopicPartition;

    const PID: i64 = 7;

    fn txn(state: TxnState, epoch: i16) -> StoredTxn {
        StoredTxn { producer_id: PID, epoch, timeout_ms: 60_000, state: state as u8, ..Default::default() }
    }

    fn add_partition(t: &mut StoredTxn) -> bool {
        if !t.partitions.contains(&TopicPartition::new("t", 0)) {
            t.partitions.push(TopicPartition::new("t", 0));
        }
        true
    }

    #[test]
    fn first_add_opens_a_transaction_and_a_retry_changes_nothing() {
        let opened = add(Some(txn(TxnState::Empty, 3)), PID, 3, 1_000, add_partition).unwrap().unwrap();
        assert_eq!(state_of(&opened), TxnState::Ongoing);
        assert_eq!(opened.start_ms, 1_000);
        assert_eq!(opened.partitions, vec![TopicPartition::new("t", 0)]);
        assert_eq!(add(Some(opened.clone()), PID, 3, 2_000, add_partition), Ok(None));
        // A completed transaction is left behind: the next add starts a new one.
        let mut done = completed(opened, true, 3_000);
        done.partitions.push(TopicPartition::new("old", 1));
        let next = add(Some(done), PID, 3, 4_000, add_partition).unwrap().unwrap();
        assert_eq!(next.partitions, vec![TopicPartition::new("t", 0)]);
        assert_eq!(next.start_ms, 4_000);
    }

    #[test]
    fn add_checks_producer_state_and_bounds() {
        assert_eq!(add(None, PID, 0, 0, add_partition), Err(ResponseError::InvalidProducerIdMapping));
        assert_eq!(
            add(Some(txn(TxnState::Empty, 3)), PID + 1, 3, 0, add_partition),
            Err(ResponseError::InvalidProducerIdMapping)
        );
        assert_eq!(add(Some(txn(TxnState::Empty, 3)), PID, 2, 0, add_partition), Err(ResponseError::ProducerFenced));
        assert_eq!(
            add(Some(txn(TxnState::PrepareCommit, 3)), PID, 3, 0, add_partition),
            Err(ResponseError::ConcurrentTransactions)
        );
        assert_eq!(add(Some(txn(TxnState::Ongoing, 3)), PID, 3, 0, |_| false), Err(ResponseError::InvalidRequest));
    }

    #[test]
    fn end_txn_completes_open_and_recognises_retries() {
        let open = txn(TxnState::Ongoing, 1);
        assert_eq!(end(Some(open.clone()), PID, 1, true), Ok(EndStep::Complete { txn: open, epoch: 1, rotate: false }));
        assert_eq!(end(Some(txn(TxnState::CompleteCommit, 1)), PID, 1, true), Ok(EndStep::AlreadyDone));
        assert_eq!(end(Some(txn(TxnState::CompleteAbort, 1)), PID, 1, false), Ok(EndStep::AlreadyDone));
        assert_eq!(end(Some(txn(TxnState::CompleteCommit, 1)), PID, 1, false), Err(ResponseError::InvalidTxnState));
        assert_eq!(end(Some(txn(TxnState::Empty, 1)), PID, 1, true), Err(ResponseError::InvalidTxnState));
        assert_eq!(
            end(Some(txn(TxnState::PrepareAbort, 1)), PID, 1, false),
            Err(ResponseError::ConcurrentTransactions)
        );
        assert_eq!(end(Some(txn(TxnState::Ongoing, 2)), PID, 1, true), Err(ResponseError::ProducerFenced));
    }

    #[test]
    fn prepare_then_complete() {
        let open = txn(TxnState::Ongoing, 1);
        let prepared = prepared(&open, true, 1, 10).unwrap();
        assert_eq!(state_of(&prepared), TxnState::PrepareCommit);
        assert_eq!(super::prepared(&prepared, true, 1, 11), None, "already prepared: nothing to write");
        let aborting = super::prepared(&open, false, 2, 12).unwrap();
        assert_eq!((state_of(&aborting), aborting.epoch), (TxnState::PrepareAbort, 2));
        let mut with_parts = prepared.clone();
        with_parts.partitions.push(TopicPartition::new("t", 0));
        with_parts.groups.push("g".to_string());
        let done = completed(with_parts, true, 20);
        assert_eq!(state_of(&done), TxnState::CompleteCommit);
        assert!(done.partitions.is_empty() && done.groups.is_empty());
        assert_eq!(done.update_ms, 20);
    }

    #[test]
    fn init_checks_timeout_and_kip_360_fencing() {
        let t = txn(TxnState::Empty, 4);
        assert_eq!(check_init(Some(&t), 0, 900_000, -1, -1), Err(ResponseError::InvalidTransactionTimeout));
        assert_eq!(check_init(Some(&t), 900_001, 900_000, -1, -1), Err(ResponseError::InvalidTransactionTimeout));
        assert_eq!(check_init(Some(&t), 60_000, 900_000, -1, -1), Ok(()));
        assert_eq!(check_init(Some(&t), 60_000, 900_000, PID, 4), Ok(()));
        assert_eq!(check_init(Some(&t), 60_000, 900_000, PID, 3), Err(ResponseError::ProducerFenced));
        assert_eq!(check_init(Some(&t), 60_000, 900_000, PID + 1, 4), Err(ResponseError::ProducerFenced));
        assert_eq!(check_init(None, 60_000, 900_000, PID, 4), Ok(()));
    }

    #[test]
    fn init_finishes_what_the_previous_producer_left() {
        assert_eq!(unfinished(&txn(TxnState::Empty, 4), false), Ok(None));
        assert_eq!(unfinished(&txn(TxnState::CompleteAbort, 4), false), Ok(None));
        assert_eq!(
            unfinished(&txn(TxnState::PrepareCommit, 4), false),
            Ok(Some(Unfinished { commit: true, epoch: 4, bumped: false }))
        );
        // An open transaction is aborted under a bumped epoch, which fences its producer.
        assert_eq!(
            unfinished(&txn(TxnState::Ongoing, 4), false),
            Ok(Some(Unfinished { commit: false, epoch: 5, bumped: true }))
        );
        assert_eq!(unfinished(&txn(TxnState::Ongoing, i16::MAX), false), Err(ResponseError::ProducerFenced));
    }

    #[test]
    fn init_bumps_the_epoch_until_it_is_used_up() {
        let mut t = txn(TxnState::CompleteCommit, 4);
        t.partitions.push(TopicPartition::new("t", 0));
        let (next, new_id) = initialized(t.clone(), 30_000, false, 99);
        assert_eq!((next.epoch, new_id, state_of(&next), next.timeout_ms), (5, false, TxnState::Empty, 30_000));
        assert!(next.partitions.is_empty());
        let (same, _) = initialized(t, 30_000, true, 99);
        assert_eq!(same.epoch, 4, "an epoch bumped by the abort is not bumped again");
        let (fresh, new_id) = initialized(txn(TxnState::Empty, i16::MAX - 1), 30_000, false, 99);
        assert_eq!((fresh.epoch, new_id), (0, true), "epochs used up: a new producer id at epoch 0");
    }

    #[test]
    fn sweep_aborts_timed_out_and_finishes_prepared() {
        let mut open = txn(TxnState::Ongoing, 2);
        open.start_ms = 1_000;
        open.timeout_ms = 500;
        assert_eq!(sweep(&open, 1_400, false), None);
        assert_eq!(sweep(&open, 1_501, false), Some((false, 3)));
        open.epoch = i16::MAX;
        assert_eq!(sweep(&open, 1_501, false), Some((false, i16::MAX)));
        assert_eq!(sweep(&txn(TxnState::PrepareCommit, 2), 0, false), Some((true, 2)));
        assert_eq!(sweep(&txn(TxnState::PrepareAbort, 2), 0, false), Some((false, 2)));
        assert_eq!(sweep(&txn(TxnState::CompleteCommit, 2), i64::MAX, false), None);
    }

    #[test]
    fn v2_end_bumps_the_epoch_and_the_client_continues_with_it() {
        let mut open = txn(TxnState::Ongoing, 4);
        open.partitions.push(TopicPartition::new("t", 0));
        let Ok(EndStep::Complete { txn: decided, epoch, rotate }) = end_v2(Some(open.clone()), PID, 4, true, 50) else {
            panic!("an open transaction is decided")
        };
        assert_eq!((epoch, rotate), (5, false));
        assert_eq!(decided.partitions, open.partitions, "markers go to every partition added");
        let prepared = prepared(&decided, true, epoch, 60).unwrap();
        assert_eq!(continues_with(&prepared), (PID, 5));
        let done = completed(prepared, true, 70);
        assert_eq!((state_of(&done), continues_with(&done)), (TxnState::CompleteCommit, (PID, 5)));
        // The retry of that EndTxn carries the epoch before the bump: nothing to do.
        assert_eq!(end_v2(Some(done.clone()), PID, 4, true, 80), Ok(EndStep::AlreadyDone));
        // A retry that asks for the other outcome is refused.
        assert_eq!(end_v2(Some(done.clone()), PID, 4, false, 80), Err(ResponseError::InvalidTxnState));
        // A commit at the new epoch with nothing open: nothing to commit.
        assert_eq!(end_v2(Some(done.clone()), PID, 5, true, 80), Err(ResponseError::InvalidTxnState));
        // Older or newer epochs are fenced; another producer id is unknown.
        assert_eq!(end_v2(Some(done.clone()), PID, 3, true, 80), Err(ResponseError::ProducerFenced));
        assert_eq!(end_v2(Some(done.clone()), PID, 6, true, 80), Err(ResponseError::ProducerFenced));
        assert_eq!(end_v2(Some(done), PID + 1, 5, true, 80), Err(ResponseError::InvalidProducerIdMapping));
        assert_eq!(end_v2(None, PID, 5, true, 80), Err(ResponseError::InvalidProducerIdMapping));
        // While decided, the same epoch is fenced and the retry waits for the markers.
        let deciding = txn(TxnState::PrepareCommit, 5);
        assert_eq!(end_v2(Some(deciding.clone()), PID, 5, true, 0), Err(ResponseError::ProducerFenced));
        assert_eq!(end_v2(Some(deciding.clone()), PID, 4, true, 0), Err(ResponseError::ConcurrentTransactions));
        assert_eq!(end_v2(Some(deciding), PID, 4, false, 0), Err(ResponseError::InvalidTxnState));
    }

    #[test]
    fn v2_abort_with_nothing_open_is_accepted_and_bumps() {
        for state in [TxnState::Empty, TxnState::CompleteCommit, TxnState::CompleteAbort] {
            let mut idle = txn(state, 2);
            idle.partitions.push(TopicPartition::new("stale", 0));
            let step = end_v2(Some(idle), PID, 2, false, 1_234).unwrap();
            let EndStep::Complete { txn: decided, epoch, rotate } = step else { panic!("{state:?}: decided") };
            assert_eq!((epoch, rotate, decided.start_ms), (3, false, 1_234), "{state:?}");
            assert!(decided.partitions.is_empty(), "{state:?}: no marker to write");
        }
        assert_eq!(end_v2(Some(txn(TxnState::Empty, 2)), PID, 2, true, 0), Err(ResponseError::InvalidTxnState));
    }

    #[test]
    fn v2_end_at_the_last_epochs_rotates_the_producer_id() {
        let open = txn(TxnState::Ongoing, i16::MAX - 1);
        let Ok(EndStep::Complete { txn: mut decided, epoch, rotate }) = end_v2(Some(open), PID, i16::MAX - 1, true, 0)
        else {
            panic!("decided")
        };
        assert_eq!((epoch, rotate), (i16::MAX, true));
        decided.next_producer_id = PID + 100;
        let prepared = prepared(&decided, true, epoch, 1).unwrap();
        assert_eq!(prepared.epoch, i16::MAX, "markers carry the last epoch of the old producer id");
        assert_eq!(continues_with(&prepared), (PID + 100, 0));
        let done = completed(prepared, true, 2);
        assert_eq!(
            (done.producer_id, done.epoch, done.prev_producer_id, done.next_producer_id),
            (PID + 100, 0, PID, -1)
        );
        // The retry names the old producer id at its last epoch seen by the client.
        assert_eq!(end_v2(Some(done.clone()), PID, i16::MAX - 1, true, 3), Ok(EndStep::AlreadyDone));
        assert_eq!(end_v2(Some(done), PID, i16::MAX - 2, true, 3), Err(ResponseError::InvalidProducerIdMapping));
        // An abort already at the last epoch goes through without a bump.
        let stuck = txn(TxnState::Ongoing, i16::MAX);
        let Ok(EndStep::Complete { epoch, .. }) = end_v2(Some(stuck), PID, i16::MAX, false, 0) else { panic!() };
        assert_eq!(epoch, i16::MAX);
    }

    #[test]
    fn coordinator_aborts_bump_twice_with_transaction_version_2() {
        let mut open = txn(TxnState::Ongoing, 2);
        open.start_ms = 1_000;
        open.timeout_ms = 500;
        assert_eq!(sweep(&open, 1_501, true), Some((false, 4)));
        open.epoch = i16::MAX - 1;
        assert_eq!(sweep(&open, 1_501, true), Some((false, i16::MAX)));
        assert_eq!(
            unfinished(&txn(TxnState::Ongoing, 4), true),
            Ok(Some(Unfinished { commit: false, epoch: 6, bumped: false })),
            "InitProducerId then bumps to 7, as Kafka's retried InitProducerId does"
        );
        assert_eq!(
            unfinished(&txn(TxnState::PrepareAbort, 4), true),
            Ok(Some(Unfinished { commit: false, epoch: 4, bumped: false }))
        );
    }

    #[test]
    fn only_idle_ids_with_nothing_open_expire() {
        for state in TxnState::ALL {
            let mut t = txn(state, 0);
            t.update_ms = 1_000;
            let idle = matches!(state, TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort);
            assert_eq!(expired(&t, 6_000, 5_000), idle, "{state:?}");
            assert!(!expired(&t, 5_999, 5_000), "{state:?} changed 4999 ms ago");
        }
    }

    #[test]
    fn list_filters() {
        let mut open = txn(TxnState::Ongoing, 0);
        open.start_ms = 1_000;
        let none: [String; 0] = [];
        assert!(listed(&open, &none, &[], -1, 0));
        assert!(listed(&open, &["Ongoing".to_string()], &[PID], -1, 0));
        assert!(!listed(&open, &["Empty".to_string()], &[], -1, 0));
        assert!(!listed(&open, &none, &[PID + 1], -1, 0));
        assert!(listed(&open, &none, &[], 500, 1_600));
        assert!(!listed(&open, &none, &[], 500, 1_400));
        assert!(!listed(&txn(TxnState::Empty, 0), &none, &[], 0, 10_000), "Empty is never open long enough");
    }
}
