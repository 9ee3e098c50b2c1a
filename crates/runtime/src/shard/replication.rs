//! A shard's replicated partitions (Kafka's ISR model): the role of each
//! replica it holds, the followers' progress on the partitions it leads, and
//! the high watermark that progress allows: the least offset that the leader
//! and every other in-sync replica have synced. acks=all waits for it.
//!
//! Followers tell the leader what they have durably by the offset they fetch
//! from next (a follower fetches again only once its last append is
//! synced), so an offset below the high watermark is on disk on every
//! in-sync replica. The metadata quorum decides leaders and in-sync sets;
//! this shard only reports a follower that caught up or fell behind.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use super::{PartitionKey, Shard};
use crate::router::RouteError;
use sluice_storage::Log;

/// A follower's progress as its leader sees it.
#[derive(Debug, Clone, Copy)]
pub struct FollowerProgress {
    /// The offset it fetches from next: it has everything below, synced.
    pub end_offset: i64,
    /// When it last fetched from at or past the leader's log end then.
    pub caught_up_at: Instant,
    /// Its log start offset as its last fetch said (-1 before one does).
    pub log_start_offset: i64,
}

/// A partition this shard leads.
#[derive(Debug, Clone)]
pub struct LeaderState {
    pub epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// Caught-up followers whose joining of the in-sync set has been
    /// proposed and is not in `isr` yet. The high watermark counts them
    /// from the proposal on (Kafka's maximal in-sync set): once the quorum
    /// has them in the set, any of them may be elected, so nothing may be
    /// acknowledged that they do not have. One that stops catching up
    /// leaves after `replica.lag.time.max.ms`, as an in-sync replica does.
    pub joining: Vec<i32>,
    pub followers: HashMap<i32, FollowerProgress>,
}

/// A partition this shard follows: the fetcher task runs while `stop` is unset.
#[derive(Debug, Clone)]
pub struct FollowerState {
    pub leader: i32,
    pub epoch: i32,
    pub stop: Rc<Cell<bool>>,
}

/// The role of a replica this shard holds.
#[derive(Debug, Clone)]
pub enum ReplicaRole {
    Leader(LeaderState),
    Follower(FollowerState),
}

/// What a replica's fetch tells its leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowerFetch {
    /// Recorded; the follower is in the in-sync set or not yet caught up.
    Recorded,
    /// The follower is out of the in-sync set and has caught up: the
    /// leader asks the quorum to add it.
    CaughtUp,
}

/// Why a replica's fetch was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaFetchError {
    /// This shard does not lead the partition.
    NotLeader,
    /// The fetcher's leader epoch is older than the leader's.
    FencedEpoch,
    /// The fetcher's leader epoch is newer than the leader's (it heard first).
    UnknownEpoch,
    /// The fetcher is not a replica of the partition.
    NotReplica,
}

impl Shard {
    /// The log of a replica this shard holds, leading or following.
    pub fn hosted_log(&self, topic: &Arc<str>, partition: i32) -> Result<Rc<Log>, RouteError> {
        if self.catalog().topic(topic).and_then(|t| t.host(partition)) != Some(self.id) {
            return Err(RouteError::NotOwner);
        }
        self.logs.borrow().get(&(topic.clone(), partition)).cloned().ok_or(RouteError::NotOwner)
    }

    /// The role of this shard's replica of `key`, if it holds one with a role.
    pub fn replica_role(&self, key: &PartitionKey) -> Option<ReplicaRole> {
        self.replicas.borrow().get(key).cloned()
    }

    /// The replicas this shard holds a role for.
    pub fn replica_keys(&self) -> Vec<PartitionKey> {
        self.replicas.borrow().keys().cloned().collect()
    }

    /// Takes the leadership of `key` in `epoch` with these replicas and
    /// in-sync set: the log stamps the epoch from its end, a follower task
    /// stops, and the high watermark waits for the other in-sync replicas.
    pub async fn lead(
        &self,
        key: PartitionKey,
        epoch: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
    ) -> Result<(), RouteError> {
        let log = self.hosted_log(&key.0, key.1)?;
        log.become_leader(epoch).await?;
        {
            let mut roles = self.replicas.borrow_mut();
            let (followers, joining) = match roles.get(&key) {
                Some(ReplicaRole::Leader(l)) if l.epoch == epoch => {
                    (l.followers.clone(), l.joining.iter().copied().filter(|r| !isr.contains(r)).collect())
                }
                other => {
                    if let Some(ReplicaRole::Follower(f)) = other {
                        f.stop.set(true);
                    }
                    // A new leadership: each in-sync follower counts as caught up
                    // now, at the high watermark, until it fetches; one that never
                    // does leaves the in-sync set after `replica.lag.time.max.ms`.
                    let now = Instant::now();
                    let start =
                        FollowerProgress { end_offset: log.high_watermark(), caught_up_at: now, log_start_offset: -1 };
                    (isr.iter().filter(|r| **r != self.config.node_id).map(|r| (*r, start)).collect(), Vec::new())
                }
            };
            roles.insert(key.clone(), ReplicaRole::Leader(LeaderState { epoch, replicas, isr, joining, followers }));
        }
        self.update_high_watermark(&key, &log);
        Ok(())
    }

    /// Follows `leader` for `key` in `epoch`: returns the stop flag of the
    /// fetcher to start, or `None` when one already follows that leader in that epoch.
    pub fn follow(&self, key: PartitionKey, leader: i32, epoch: i32) -> Option<Rc<Cell<bool>>> {
        let mut roles = self.replicas.borrow_mut();
        match roles.get(&key) {
            Some(ReplicaRole::Follower(f)) if f.leader == leader && f.epoch == epoch && !f.stop.get() => return None,
            Some(ReplicaRole::Follower(f)) => f.stop.set(true),
            _ => {}
        }
        // The high watermark stays where it is until the new leader says more,
        // and acks=all appends taken as leader are answered NOT_LEADER_OR_FOLLOWER.
        if let Some(log) = self.logs.borrow().get(&key) {
            log.set_high_watermark_limit(Some(log.high_watermark()));
            log.release_leader_waiters();
        }
        let stop = Rc::new(Cell::new(false));
        roles.insert(key, ReplicaRole::Follower(FollowerState { leader, epoch, stop: stop.clone() }));
        Some(stop)
    }

    /// Gives up any role for `key` (a failed replica): a fetcher stops, and
    /// the partition is not served from here.
    pub fn stop_following(&self, key: &PartitionKey) {
        if let Some(ReplicaRole::Follower(f)) = self.replicas.borrow_mut().remove(key) {
            f.stop.set(true);
        }
        if let Some(log) = self.logs.borrow().get(key) {
            log.release_leader_waiters();
        }
    }

    /// Forgets the role of replicas this shard no longer holds, stopping their fetchers.
    pub fn drop_replicas_except(&self, keep: &[PartitionKey]) {
        self.replicas.borrow_mut().retain(|key, role| {
            let kept = keep.contains(key);
            if let (false, ReplicaRole::Follower(f)) = (kept, &*role) {
                f.stop.set(true);
            }
            kept
        });
    }

    /// Records a follower's fetch of a partition this shard leads: it has
    /// everything below `fetch_offset`. Moves the high watermark.
    pub fn record_follower_fetch(
        &self,
        key: &PartitionKey,
        replica: i32,
        epoch: i32,
        fetch_offset: i64,
        log_start_offset: i64,
    ) -> Result<FollowerFetch, ReplicaFetchError> {
        let log = self.owned_log(&key.0, key.1).map_err(|_| ReplicaFetchError::NotLeader)?;
        let outcome = {
            let mut roles = self.replicas.borrow_mut();
            let Some(ReplicaRole::Leader(leader)) = roles.get_mut(key) else {
                return Err(ReplicaFetchError::NotLeader);
            };
            if epoch < leader.epoch {
                return Err(ReplicaFetchError::FencedEpoch);
            }
            if epoch > leader.epoch {
                return Err(ReplicaFetchError::UnknownEpoch);
            }
            if !leader.replicas.contains(&replica) {
                return Err(ReplicaFetchError::NotReplica);
            }
            let now = Instant::now();
            let caught_up = fetch_offset >= log.log_end_offset();
            let progress = leader.followers.entry(replica).or_insert(FollowerProgress {
                end_offset: fetch_offset,
                caught_up_at: now,
                log_start_offset,
            });
            progress.end_offset = fetch_offset;
            progress.log_start_offset = log_start_offset;
            if caught_up {
                progress.caught_up_at = now;
            }
            // Kafka's condition: at least the high watermark, and inside this leader's epoch.
            let start_of_epoch = log.end_offset_for_epoch(leader.epoch - 1).end_offset.max(0);
            let joins = !leader.isr.contains(&replica)
                && fetch_offset >= log.high_watermark()
                && fetch_offset >= start_of_epoch;
            if joins {
                if !leader.joining.contains(&replica) {
                    leader.joining.push(replica);
                }
                FollowerFetch::CaughtUp
            } else {
                FollowerFetch::Recorded
            }
        };
        self.update_high_watermark(key, &log);
        Ok(outcome)
    }

    /// The followers of partitions this shard leads that are in the in-sync
    /// set but have not caught up for `lag_max`: (partition, epoch, in-sync set without them).
    pub fn lagging_followers(&self, lag_max: std::time::Duration) -> Vec<(PartitionKey, i32, Vec<i32>)> {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut pruned = Vec::new();
        let mut roles = self.replicas.borrow_mut();
        for (key, role) in roles.iter_mut() {
            let ReplicaRole::Leader(leader) = role else { continue };
            let before = leader.joining.len();
            let followers = &leader.followers;
            leader.joining.retain(|r| followers.get(r).is_some_and(|f| now.duration_since(f.caught_up_at) <= lag_max));
            if leader.joining.len() != before {
                pruned.push(key.clone());
            }
            let lagging: Vec<i32> = leader
                .isr
                .iter()
                .copied()
                .filter(|r| *r != self.config.node_id)
                .filter(|r| leader.followers.get(r).is_some_and(|f| now.duration_since(f.caught_up_at) > lag_max))
                .collect();
            if !lagging.is_empty() {
                let isr = leader.isr.iter().copied().filter(|r| !lagging.contains(r)).collect();
                out.push((key.clone(), leader.epoch, isr));
            }
        }
        drop(roles);
        for key in pruned {
            if let Some(log) = self.logs.borrow().get(&key).cloned() {
                self.update_high_watermark(&key, &log);
            }
        }
        out
    }

    /// Kafka's low watermark of a partition this shard leads: the least log
    /// start offset of its own replica and of every other replica on a live
    /// broker, as their fetches last said (`None` while one has not said).
    /// `None` too for a partition this shard does not lead.
    pub fn low_watermark(&self, key: &PartitionKey) -> Option<i64> {
        let log = self.logs.borrow().get(key).cloned()?;
        let roles = self.replicas.borrow();
        let Some(ReplicaRole::Leader(leader)) = roles.get(key) else { return None };
        let view = self.cluster();
        let live = |id: i32| view.as_ref().is_some_and(|v| v.brokers.iter().any(|b| b.id == id && !b.fenced));
        let mut low = log.log_start_offset();
        for replica in leader.replicas.iter().copied().filter(|r| *r != self.config.node_id && live(*r)) {
            let start = leader.followers.get(&replica).map_or(-1, |f| f.log_start_offset);
            if start < 0 {
                return None;
            }
            low = low.min(start);
        }
        Some(low)
    }

    /// Bounds the high watermark of a partition this shard leads by its
    /// other in-sync replicas' progress, and the joining ones' (one not
    /// heard from holds it where it is).
    fn update_high_watermark(&self, key: &PartitionKey, log: &Log) {
        let me = self.config.node_id;
        let limit = match self.replicas.borrow().get(key) {
            Some(ReplicaRole::Leader(leader)) => leader
                .isr
                .iter()
                .chain(&leader.joining)
                .filter(|r| **r != me)
                .map(|r| leader.followers.get(r).map_or(log.high_watermark(), |f| f.end_offset))
                .min(),
            _ => return,
        };
        log.set_high_watermark_limit(limit);
    }

    /// The in-sync replicas of a partition this shard leads, and its
    /// `min.insync.replicas`; `None` for a partition without a replica set (a single node's).
    pub fn in_sync_replicas(&self, key: &PartitionKey) -> Option<usize> {
        match self.replicas.borrow().get(key) {
            Some(ReplicaRole::Leader(leader)) => Some(leader.isr.len()),
            _ => None,
        }
    }

    /// An acks=all write's check of a partition this shard leads: fewer
    /// in-sync replicas than `min.insync.replicas` is NOT_ENOUGH_REPLICAS
    /// before the append, NOT_ENOUGH_REPLICAS_AFTER_APPEND (`appended`)
    /// once it waited. A partition that is not replicated passes.
    pub fn check_min_insync(&self, key: &PartitionKey, log: &Log, appended: bool) -> Result<(), RouteError> {
        let min = log.min_insync_replicas();
        match self.in_sync_replicas(key) {
            Some(isr) if (isr as i64) < i64::from(min) => Err(RouteError::NotEnoughReplicas { isr, min, appended }),
            _ => Ok(()),
        }
    }

    /// Cuts the replica of `key` back to `offset` (its log diverged from
    /// its new leader's, or it is ahead of it), or empties it to start over at
    /// `offset` (its leader's log start is past its end): closed, cut, and
    /// opened again.
    pub async fn cut_replica(&self, key: &PartitionKey, cut: ReplicaCut) -> Result<(), RouteError> {
        let log = self.hosted_log(&key.0, key.1)?;
        let config = self.catalog().topic(&key.0).map(|t| t.config.clone()).ok_or(RouteError::NotOwner)?;
        let from = log.log_end_offset();
        match cut {
            ReplicaCut::TruncateTo(to) => {
                tracing::warn!(topic = %key.0, partition = key.1, from, to, "replica diverged from its leader; truncating")
            }
            ReplicaCut::StartAt(at) => {
                tracing::warn!(topic = %key.0, partition = key.1, from, at, "replica starting over, empty, at an offset of its leader's")
            }
        }
        let _cutting = Cutting::start(&self.cutting, key);
        self.logs.borrow_mut().remove(key);
        log.close().await?;
        let dir = log.dir.clone();
        drop(log);
        match cut {
            ReplicaCut::TruncateTo(offset) => Log::truncate_closed(&dir, offset).await?,
            ReplicaCut::StartAt(offset) => Log::start_closed_at(&dir, offset).await?,
        }
        let reopened = Log::open(dir, config, false, self.metrics.io.clone(), self.batch_cache.clone()).await?;
        reopened.hold_high_watermark_at_start();
        self.logs.borrow_mut().insert(key.clone(), reopened);
        Ok(())
    }
}

/// A replica marked as being cut for as long as this lives; a cut that
/// fails half way leaves the replica to the next catalog to open again.
struct Cutting<'a> {
    set: &'a RefCell<HashSet<PartitionKey>>,
    key: PartitionKey,
}

impl<'a> Cutting<'a> {
    fn start(set: &'a RefCell<HashSet<PartitionKey>>, key: &PartitionKey) -> Cutting<'a> {
        set.borrow_mut().insert(key.clone());
        Cutting { set, key: key.clone() }
    }
}

impl Drop for Cutting<'_> {
    fn drop(&mut self) {
        self.set.borrow_mut().remove(&self.key);
    }
}

/// How a follower's log is cut to follow its leader again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaCut {
    /// Everything from the batch holding this offset on goes.
    TruncateTo(i64),
    /// Everything goes; the log starts again, empty, at this offset.
    StartAt(i64),
}
