//! The group coordinator of one shard, for the groups whose offsets
//! partitions it owns: the I/O shell around the classic group state machine
//! ([`super::classic::Group`]) and the consumer group one
//! ([`super::consumer::ConsumerGroup`]), and committed offsets. A consumer
//! group's change is written as the difference between the group in memory
//! and its stored records, so a heartbeat that changes nothing writes nothing.
//!
//! The shell reads the clock once per operation ([`Now::system`]) and hands
//! the reading to the state machine; it keeps the JoinGroup and SyncGroup
//! requests that wait for a rebalance and answers them with the replies the
//! state machine addresses to their member ids; it makes group metadata and
//! offsets durable in the offsets partitions' journals; and its `sweep`, run
//! every `GROUP_SWEEP_INTERVAL_MS`, is the timer that expires sessions and
//! completes rebalances whose time is up.
//!
//! State lives in `RefCell`s touched only by this shard; no borrow is held
//! across an `.await`: changes are applied in memory, then the journal append
//! is awaited with the borrow released. Replies reach their waiting requests
//! before any `.await` (a SyncGroup answered after the journal append is
//! taken out of the waiting requests before it), so a reply can never reach a
//! later request of the same member id.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::oneshot;
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    SyncGroupRequest, SyncGroupResponse,
};

use super::backing::{write_error, Backing, StatePartition, StatePartitions};
pub use super::classic::GroupDescription;
use super::classic::{join_error, Group, GroupState, JoinAnswer, JoinParams, Reply, SyncAnswer};
use super::clock::Now;
use super::consumer::{
    ConsumerGroup, ConsumerGroupDescription, ConsumerSettings, HeartbeatAnswer, HeartbeatParams, Refusal, TopicImage,
};
use super::store::{Change, CommittedOffset, StoredGroup};
use crate::metadata::Catalog;
use sluice_core::constants::{GROUP_MEMBERS_MAX, OFFSETS_PARTITIONS, OFFSET_METADATA_BYTES_MAX};
use sluice_protocol::{ResponseError, TopicPartition};

/// Group settings from the broker config.
#[derive(Debug, Clone)]
pub struct GroupSettings {
    pub initial_rebalance_delay: Duration,
    pub offsets_retention: Duration,
    /// Groups of the consumer protocol (KIP-848).
    pub consumer: ConsumerSettings,
}

/// Requests of one group's members waiting for a rebalance, by member id.
#[derive(Default)]
struct Waiting {
    joins: HashMap<String, oneshot::Sender<JoinGroupResponse>>,
    syncs: HashMap<String, oneshot::Sender<SyncGroupResponse>>,
}

/// A group and the requests waiting on it.
struct Hosted {
    group: Group,
    waiting: Waiting,
}

impl Hosted {
    fn new(group: Group) -> Hosted {
        Hosted { group, waiting: Waiting::default() }
    }

    /// Answers the waiting requests the replies are addressed to. A request
    /// whose client went away is simply not answered.
    fn deliver(&mut self, replies: Vec<(String, Reply)>) {
        for (member_id, reply) in replies {
            match reply {
                Reply::Join(response) => {
                    if let Some(waiter) = self.waiting.joins.remove(&member_id) {
                        let _ = waiter.send(response);
                    }
                }
                Reply::Sync(response) => {
                    if let Some(waiter) = self.waiting.syncs.remove(&member_id) {
                        let _ = waiter.send(response);
                    }
                }
            }
        }
    }

    /// The group is leaving this shard (another broker coordinates it now):
    /// every request still waiting is answered `error`.
    fn answer_waiting(self, error: ResponseError) {
        for (member_id, waiter) in self.waiting.joins {
            let _ = waiter.send(join_error(error, &member_id));
        }
        for (_, waiter) in self.waiting.syncs {
            let _ = waiter.send(SyncGroupResponse::default().with_error_code(error.code()));
        }
    }

    /// The group is leaving this map (it became a consumer group): every
    /// request still waiting is told to rejoin, as Kafka's conversion does.
    fn rebalance_waiting(self) {
        for (member_id, waiter) in self.waiting.joins {
            let _ = waiter.send(join_error(ResponseError::RebalanceInProgress, &member_id));
        }
        for (_, waiter) in self.waiting.syncs {
            let _ =
                waiter.send(SyncGroupResponse::default().with_error_code(ResponseError::RebalanceInProgress.code()));
        }
    }

    /// A request waits here exactly while the state machine has its member waiting.
    fn check_waiting(&self) {
        debug_assert!(self.waiting.joins.keys().all(|id| self.group.is_awaiting_join(id)), "stray JoinGroup waiter");
        debug_assert!(self.waiting.syncs.keys().all(|id| self.group.is_awaiting_sync(id)), "stray SyncGroup waiter");
        debug_assert!(
            self.group.member_ids().all(|id| self.group.is_awaiting_join(id) == self.waiting.joins.contains_key(id)
                && self.group.is_awaiting_sync(id) == self.waiting.syncs.contains_key(id)),
            "a waiting member without its request"
        );
    }
}

/// The coordinator of every group whose offsets partition this shard owns.
pub struct GroupCoordinator {
    shard_id: usize,
    shards: usize,
    settings: GroupSettings,
    /// The offsets partitions this shard holds.
    partitions: StatePartitions,
    groups: RefCell<HashMap<String, Hosted>>,
    /// Groups of the consumer protocol; a group id is in at most one of the two maps.
    consumer_groups: RefCell<HashMap<String, ConsumerGroup>>,
    /// The topics as the consumer groups' assignment sees them, and the catalog they were taken from.
    topic_image: RefCell<Option<(Arc<Catalog>, Rc<TopicImage>)>>,
}

/// What a group id names, for the checks between the two protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupKind {
    Classic,
    Consumer,
}

/// A listed group: id, protocol type, state, kind.
pub type ListedGroup = (String, String, &'static str, GroupKind);

/// One group's committed offsets, for OffsetFetch.
pub type FetchedOffsets = Vec<(String, i32, Option<CommittedOffset>)>;

/// How a JoinGroup goes on once the group is no longer borrowed.
enum JoinThen {
    Answer(Box<JoinGroupResponse>),
    Wait(oneshot::Receiver<JoinGroupResponse>),
}

/// How a SyncGroup goes on once the group is no longer borrowed.
enum SyncThen {
    Wait(oneshot::Receiver<SyncGroupResponse>),
    Persist(Box<Assigned>),
}

/// The leader's assignment, to persist before anyone gets it.
struct Assigned {
    stored: StoredGroup,
    leader: SyncGroupResponse,
    followers: Vec<(oneshot::Sender<SyncGroupResponse>, SyncGroupResponse)>,
}

impl GroupCoordinator {
    /// Opens the offsets partitions this shard owns and reloads their
    /// groups; on a cluster (`replicated`) none is held until this broker
    /// leads one ([`load`](Self::load)).
    pub async fn open(
        data_dir: &Path,
        shard_id: usize,
        shards: usize,
        settings: GroupSettings,
        replicated: bool,
    ) -> Result<GroupCoordinator, String> {
        let partitions = if replicated {
            StatePartitions::new(shard_id, shards)
        } else {
            StatePartitions::open_files(data_dir, "__consumer_offsets", OFFSETS_PARTITIONS, shard_id, shards).await?
        };
        let coordinator = GroupCoordinator {
            shard_id,
            shards,
            settings,
            partitions,
            groups: RefCell::default(),
            consumer_groups: RefCell::default(),
            topic_image: RefCell::new(None),
        };
        for (_, partition) in coordinator.partitions.held() {
            coordinator.install(&partition);
        }
        Ok(coordinator)
    }

    /// Builds the groups a partition's state holds.
    fn install(&self, partition: &StatePartition) {
        let now = self.now();
        let state = partition.state.borrow();
        let mut groups = self.groups.borrow_mut();
        for (id, stored) in &state.groups {
            let group = Group::from_stored(id, stored, now, self.settings.initial_rebalance_delay);
            groups.insert(id.clone(), Hosted::new(group));
        }
        let mut consumer_groups = self.consumer_groups.borrow_mut();
        for (id, stored) in &state.consumer_groups {
            consumer_groups.insert(id.clone(), ConsumerGroup::from_stored(id, stored, now, &self.settings.consumer));
        }
    }

    /// Whether this shard serves `group_id` now: NOT_COORDINATOR when its
    /// offsets partition is not held here, COORDINATOR_LOAD_IN_PROGRESS
    /// while it loads.
    pub fn serves(&self, group_id: &str) -> Result<(), ResponseError> {
        self.partitions.status(super::offsets_partition(group_id))
    }

    /// Whether offsets partition `n` is held or loading here.
    pub fn holds(&self, n: usize) -> bool {
        self.partitions.holds_or_loads(n)
    }

    /// Whether offsets partition `n` is held here with a failed write: it
    /// is to be unloaded and loaded again from its log.
    pub fn failed(&self, n: usize) -> bool {
        self.partitions.failed(n)
    }

    /// Loads offsets partition `n` from the replicated log this broker now
    /// leads and coordinates its groups. Requests for them meanwhile are
    /// COORDINATOR_LOAD_IN_PROGRESS.
    pub async fn load(&self, n: usize, log: Rc<sluice_storage::log::Log>) {
        if self.partitions.load(n, log, "offsets").await {
            let partition = self.partitions.get(n);
            self.install(&partition);
            let state = partition.state.borrow();
            let groups = state.groups.len() + state.consumer_groups.len();
            tracing::info!(partition = n, groups, "offsets partition loaded");
        }
    }

    /// Stops coordinating the groups of offsets partition `n` (another
    /// broker leads it now): requests waiting on them are answered
    /// NOT_COORDINATOR, and their state leaves memory.
    pub fn unload(&self, n: usize) {
        if !self.partitions.remove(n) {
            return;
        }
        let mine = |id: &String| super::offsets_partition(id) == n;
        let gone: Vec<String> = self.groups.borrow().keys().filter(|id| mine(id)).cloned().collect();
        for id in gone {
            if let Some(hosted) = self.groups.borrow_mut().remove(&id) {
                hosted.answer_waiting(ResponseError::NotCoordinator);
            }
        }
        self.consumer_groups.borrow_mut().retain(|id, _| !mine(id));
        tracing::info!(partition = n, "offsets partition unloaded");
    }

    /// The time, read once per operation.
    fn now(&self) -> Now {
        Now::system()
    }

    fn new_group(&self, group_id: &str, now: Now) -> Hosted {
        Hosted::new(Group::new(group_id, now, self.settings.initial_rebalance_delay))
    }

    fn partition_of(&self, group_id: &str) -> Rc<StatePartition> {
        let n = super::offsets_partition(group_id);
        debug_assert_eq!(n % self.shards, self.shard_id, "group {group_id} routed to the wrong shard");
        self.partitions.get(n)
    }

    /// Applies changes in memory and makes them durable.
    async fn persist(&self, group_id: &str, changes: Vec<Change>) -> Result<(), ResponseError> {
        let partition = self.partition_of(group_id);
        {
            let mut state = partition.state.borrow_mut();
            changes.iter().for_each(|c| state.apply(c));
        }
        // The whole state is copied only when the journal is checkpointed.
        let snapshot = || partition.state.borrow().clone();
        partition.store.append(&changes, snapshot).await.map_err(|e| {
            if !matches!(partition.store, Backing::Absent) {
                tracing::error!(group = group_id, error = %e, "offsets store write failed");
            }
            write_error(&e)
        })
    }

    /// What to write so that the stored consumer group matches `group`: its
    /// record if it changed, and the records of the members that joined,
    /// changed or left. Nothing when nothing changed (a steady heartbeat).
    fn consumer_changes(&self, group_id: &str, group: &ConsumerGroup) -> Vec<Change> {
        let partition = self.partition_of(group_id);
        let state = partition.state.borrow();
        let stored = state.consumer_groups.get(group_id);
        let mut changes = Vec::new();
        let record = group.stored_group();
        if stored.is_none_or(|s| s.group != record) {
            changes.push(Change::ConsumerGroup { group: group_id.to_string(), state: record });
        }
        for member_id in group.member_ids() {
            let Some(member) = group.stored_member(member_id) else { continue };
            if stored.and_then(|s| s.members.get(member_id)) != Some(&member) {
                changes.push(Change::ConsumerMember { group: group_id.to_string(), member });
            }
        }
        if let Some(stored) = stored {
            let live: std::collections::HashSet<&str> = group.member_ids().collect();
            for member_id in stored.members.keys().filter(|id| !live.contains(id.as_str())) {
                changes
                    .push(Change::DeleteConsumerMember { group: group_id.to_string(), member_id: member_id.clone() });
            }
        }
        changes
    }

    async fn persist_group(&self, group_id: &str, stored: StoredGroup) -> Result<(), ResponseError> {
        self.persist(group_id, vec![Change::Group { group: group_id.to_string(), state: stored }]).await
    }

    /// JoinGroup: answered at once, or when the rebalance completes.
    pub async fn join(
        &self,
        version: i16,
        request: JoinGroupRequest,
        client_host: String,
        client_id: String,
        catalog: &Arc<Catalog>,
    ) -> JoinGroupResponse {
        let params = match JoinParams::from_request(version, &request, client_host, client_id) {
            Ok(params) => params,
            Err(code) => return join_error(code, request.member_id.as_str()),
        };
        let group_id = request.group_id.0.as_str();
        if self.consumer_groups.borrow().get(group_id).is_some_and(|g| !g.is_empty()) {
            return self.classic_join_to_consumer_group(group_id, &params, catalog).await;
        }
        self.consumer_groups.borrow_mut().remove(group_id);
        let (answer, persist) = {
            let now = self.now();
            let mut groups = self.groups.borrow_mut();
            let hosted = groups.entry(group_id.to_string()).or_insert_with(|| self.new_group(group_id, now));
            let (answer, effects) = hosted.group.join(now, params);
            hosted.deliver(effects.replies);
            let answer = match answer {
                JoinAnswer::Now(response) => JoinThen::Answer(Box::new(response)),
                JoinAnswer::Wait { member_id } => {
                    let (tx, rx) = oneshot::channel();
                    hosted.waiting.joins.insert(member_id, tx);
                    JoinThen::Wait(rx)
                }
            };
            hosted.check_waiting();
            (answer, effects.persist)
        };
        if let Some(stored) = persist {
            if let Err(code) = self.persist_group(group_id, stored).await {
                return join_error(code, "");
            }
        }
        match answer {
            JoinThen::Answer(response) => *response,
            JoinThen::Wait(rx) => rx.await.unwrap_or_else(|_| join_error(ResponseError::UnknownMemberId, "")),
        }
    }

    /// JoinGroup of a classic member to a consumer group: answered once what
    /// changed is durable.
    async fn classic_join_to_consumer_group(
        &self,
        group_id: &str,
        params: &JoinParams,
        catalog: &Arc<Catalog>,
    ) -> JoinGroupResponse {
        let image = self.topic_image(catalog);
        let now = self.now();
        let (result, changes) = {
            let mut consumer_groups = self.consumer_groups.borrow_mut();
            let group = consumer_groups.get_mut(group_id).expect("checked by the caller");
            let replacing = params.instance_id.as_deref().is_some_and(|i| group.has_static_member(i));
            let result = group.classic_join(now, params, &image, &self.settings.consumer);
            // A classic static member in the place of the last member of the consumer
            // protocol: the group is classic at once (Kafka's
            // `validateOnlineDowngradeWithReplacedMemberId`), at the epoch it reached.
            let downgraded = match &result {
                Ok(_) if replacing => self.downgrade(group, group.group_epoch(), &image, now, false),
                _ => None,
            };
            match downgraded {
                Some(classic) => {
                    consumer_groups.remove(group_id);
                    let change = Change::Group { group: group_id.to_string(), state: classic.stored() };
                    // The member syncs with the classic group it is now in.
                    let result = result.map(|response| {
                        let protocol = classic
                            .protocol_name()
                            .map(|p| kafka_protocol::protocol::StrBytes::from_string(p.to_string()));
                        response.with_generation_id(classic.generation()).with_protocol_name(protocol)
                    });
                    self.groups.borrow_mut().insert(group_id.to_string(), Hosted::new(classic));
                    (result, vec![change])
                }
                None => (result, self.consumer_changes(group_id, group)),
            }
        };
        if !changes.is_empty() {
            if let Err(code) = self.persist(group_id, changes).await {
                return join_error(code, &params.member_id);
            }
        }
        result.unwrap_or_else(|code| join_error(code, &params.member_id))
    }

    /// SyncGroup: the leader's assignment is persisted before anyone gets it.
    pub async fn sync(&self, version: i16, request: SyncGroupRequest, catalog: &Arc<Catalog>) -> SyncGroupResponse {
        let error = |code: ResponseError| SyncGroupResponse::default().with_error_code(code.code());
        let group_id = request.group_id.0.to_string();
        if self.consumer_groups.borrow().contains_key(&group_id) {
            let image = self.topic_image(catalog);
            let mut consumer_groups = self.consumer_groups.borrow_mut();
            let group = consumer_groups.get_mut(&group_id).expect("checked above");
            return group.classic_sync(self.now(), &request, &image).unwrap_or_else(error);
        }
        let then = {
            let mut groups = self.groups.borrow_mut();
            let Some(hosted) = groups.get_mut(&group_id) else {
                return error(ResponseError::UnknownMemberId);
            };
            let then = match hosted.group.sync(version, &request) {
                SyncAnswer::Now(response) => return response,
                SyncAnswer::Wait => {
                    let (tx, rx) = oneshot::channel();
                    // A SyncGroup of the same member still waiting is dropped: it answers REBALANCE_IN_PROGRESS.
                    hosted.waiting.syncs.insert(request.member_id.to_string(), tx);
                    SyncThen::Wait(rx)
                }
                SyncAnswer::Persist { stored, leader, followers } => {
                    let followers = followers
                        .into_iter()
                        .filter_map(|(id, response)| Some((hosted.waiting.syncs.remove(&id)?, response)))
                        .collect();
                    SyncThen::Persist(Box::new(Assigned { stored, leader, followers }))
                }
            };
            hosted.check_waiting();
            then
        };
        match then {
            SyncThen::Wait(rx) => rx.await.unwrap_or_else(|_| error(ResponseError::RebalanceInProgress)),
            SyncThen::Persist(assigned) => {
                let Assigned { stored, leader, followers } = *assigned;
                let result = self.persist_group(&group_id, stored).await;
                for (waiter, response) in followers {
                    let _ = waiter.send(match result {
                        Ok(()) => response,
                        Err(code) => error(code),
                    });
                }
                match result {
                    Ok(()) => leader,
                    Err(code) => error(code),
                }
            }
        }
    }

    pub fn heartbeat(&self, request: HeartbeatRequest) -> HeartbeatResponse {
        let now = self.now();
        let group_id = request.group_id.0.as_str();
        let result = if let Some(group) = self.consumer_groups.borrow_mut().get_mut(group_id) {
            group.classic_heartbeat(now, &request)
        } else {
            match self.groups.borrow_mut().get_mut(group_id) {
                None => Err(ResponseError::UnknownMemberId),
                Some(hosted) => hosted.group.heartbeat(now, &request),
            }
        };
        HeartbeatResponse::default().with_error_code(result.err().map(|c| c.code()).unwrap_or(0))
    }

    pub async fn leave(&self, version: i16, request: LeaveGroupRequest) -> LeaveGroupResponse {
        let group_id = request.group_id.0.to_string();
        let consumer_leave = self.consumer_groups.borrow_mut().get_mut(&group_id).map(|group| {
            let response = group.classic_leave(version, &request);
            (response, self.consumer_changes(&group_id, group))
        });
        if let Some((response, changes)) = consumer_leave {
            if !changes.is_empty() {
                if let Err(code) = self.persist(&group_id, changes).await {
                    return LeaveGroupResponse::default().with_error_code(code.code());
                }
            }
            return response;
        }
        let (response, persist) = {
            let now = self.now();
            let mut groups = self.groups.borrow_mut();
            let Some(hosted) = groups.get_mut(&group_id) else {
                return LeaveGroupResponse::default().with_error_code(ResponseError::UnknownMemberId.code());
            };
            let (response, effects) = hosted.group.leave(now, version, &request);
            hosted.deliver(effects.replies);
            hosted.check_waiting();
            (response, effects.persist)
        };
        if let Some(stored) = persist {
            let _ = self.persist_group(&group_id, stored).await;
        }
        response
    }

    /// OffsetCommit for one group: Kafka's checks, then one durable append.
    pub async fn commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<Vec<Result<(), ResponseError>>, ResponseError> {
        self.admit_commit(group_id, generation, member_id, instance_id)?;
        self.persist_offsets(group_id, offsets, |topic, partition, offset| Change::Commit {
            group: group_id.to_string(),
            topic,
            partition,
            offset,
        })
        .await
    }

    /// TxnOffsetCommit: the offsets wait, durable, for the transaction's marker.
    pub async fn txn_commit(
        &self,
        group_id: &str,
        producer_id: i64,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<Vec<Result<(), ResponseError>>, ResponseError> {
        self.admit_commit(group_id, generation, member_id, instance_id)?;
        self.persist_offsets(group_id, offsets, |topic, partition, offset| Change::TxnOffset {
            group: group_id.to_string(),
            producer_id,
            topic,
            partition,
            offset,
        })
        .await
    }

    /// The transaction marker for a group: the producer's pending offsets are
    /// committed or dropped, durably.
    /// With nothing pending (a retried marker whose first answer was
    /// lost), it is answered once every earlier write is durable: memory
    /// changes before the store does, and the first marker may still be
    /// waiting for the in-sync replicas, or have failed.
    pub async fn txn_end(&self, group_id: &str, producer_id: i64, commit: bool) -> Result<(), ResponseError> {
        let partition = self.partition_of(group_id);
        let pending = partition.state.borrow().pending_txn_offsets.contains_key(&(group_id.to_string(), producer_id));
        if !pending {
            return partition.store.settle().await.map_err(|e| write_error(&e));
        }
        self.persist(group_id, vec![Change::TxnOffsetEnd { group: group_id.to_string(), producer_id, commit }]).await
    }

    /// The transaction marker for offsets partition `n`, as another
    /// broker's transaction coordinator sends it: the producer's pending
    /// offsets of every group on it are committed or dropped, durably.
    pub async fn txn_end_partition(&self, n: usize, producer_id: i64, commit: bool) -> Result<(), ResponseError> {
        self.partitions.status(n)?;
        let groups: Vec<String> = self
            .partitions
            .get(n)
            .state
            .borrow()
            .pending_txn_offsets
            .keys()
            .filter(|(_, producer)| *producer == producer_id)
            .map(|(group, _)| group.clone())
            .collect();
        if groups.is_empty() {
            // A retried marker: answered once the first one is durable.
            return self.partitions.get(n).store.settle().await.map_err(|e| write_error(&e));
        }
        for group in groups {
            self.txn_end(&group, producer_id, commit).await?;
        }
        Ok(())
    }

    /// Whether an open transaction has committed an offset for this partition
    /// (OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT).
    pub fn has_pending_offset(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        let key = (topic.to_string(), partition);
        self.partition_of(group_id)
            .state
            .borrow()
            .pending_txn_offsets
            .iter()
            .any(|((g, _), offsets)| g == group_id && offsets.contains_key(&key))
    }

    async fn persist_offsets(
        &self,
        group_id: &str,
        offsets: Vec<(String, i32, CommittedOffset)>,
        change: impl Fn(String, i32, CommittedOffset) -> Change,
    ) -> Result<Vec<Result<(), ResponseError>>, ResponseError> {
        let mut results = Vec::with_capacity(offsets.len());
        let mut changes = Vec::with_capacity(offsets.len());
        for (topic, partition, offset) in offsets {
            if offset.metadata.as_ref().is_some_and(|m| m.len() > OFFSET_METADATA_BYTES_MAX) {
                results.push(Err(ResponseError::OffsetMetadataTooLarge));
                continue;
            }
            results.push(Ok(()));
            changes.push(change(topic, partition, offset));
        }
        if !changes.is_empty() {
            self.persist(group_id, changes).await?;
        }
        Ok(results)
    }

    /// Kafka's checks of a committing member against the group.
    fn admit_commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        if let Some(group) = self.consumer_groups.borrow().get(group_id) {
            return group.admit_commit(member_id, generation);
        }
        let now = self.now();
        let mut groups = self.groups.borrow_mut();
        match groups.get_mut(group_id) {
            Some(hosted) => hosted.group.admit_commit(now, generation, member_id, instance_id),
            None if generation < 0 => {
                // A consumer that manages its own partitions commits with no generation.
                groups.insert(group_id.to_string(), self.new_group(group_id, now));
                Ok(())
            }
            None => Err(ResponseError::IllegalGeneration),
        }
    }

    /// Committed offsets of a group: all of them, or those asked for. Once its
    /// offsets partition failed a write, the group's offsets are not served
    /// (COORDINATOR_NOT_AVAILABLE): memory may hold a commit whose client was
    /// told it failed and that the next start would not find.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        wanted: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<FetchedOffsets, ResponseError> {
        let partition = self.partition_of(group_id);
        if partition.store.failed() {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        let state = partition.state.borrow();
        let offsets = state.offsets.get(group_id);
        Ok(match wanted {
            None => offsets
                .map(|o| o.iter().map(|((t, p), c)| (t.clone(), *p, Some(c.clone()))).collect())
                .unwrap_or_default(),
            Some(topics) => topics
                .into_iter()
                .flat_map(|(topic, partitions)| {
                    partitions.into_iter().map(move |p| {
                        let found = offsets.and_then(|o| o.get(&(topic.clone(), p))).cloned();
                        (topic.clone(), p, found)
                    })
                })
                .collect(),
        })
    }

    /// Every committed offset of every group on this shard: (group, topic, partition, offset).
    pub fn all_offsets(&self) -> Vec<(String, String, i32, i64)> {
        let mut out = Vec::new();
        for (_, partition) in self.partitions.held() {
            for (group, offsets) in &partition.state.borrow().offsets {
                out.extend(offsets.iter().map(|((topic, p), c)| (group.clone(), topic.clone(), *p, c.offset)));
            }
        }
        out
    }

    /// Every group on this shard, classic and consumer.
    pub fn list(&self) -> Vec<ListedGroup> {
        let groups = self.groups.borrow();
        let consumer_groups = self.consumer_groups.borrow();
        let mut listed: Vec<_> = groups
            .values()
            .map(|hosted| &hosted.group)
            .filter(|g| g.state() != GroupState::Dead)
            .map(|g| {
                let protocol_type = g.protocol_type().unwrap_or_default().to_string();
                (g.id().to_string(), protocol_type, g.state().name(), GroupKind::Classic)
            })
            .collect();
        listed.extend(
            consumer_groups
                .values()
                .map(|g| (g.id().to_string(), "consumer".to_string(), g.state_name(), GroupKind::Consumer)),
        );
        // Groups known only by their committed offsets (no membership) are Empty groups too.
        for (_, partition) in self.partitions.held() {
            for id in partition.state.borrow().offsets.keys() {
                if !groups.contains_key(id) && !consumer_groups.contains_key(id) {
                    listed.push((id.clone(), String::new(), GroupState::Empty.name(), GroupKind::Classic));
                }
            }
        }
        listed.sort();
        listed
    }

    /// DescribeGroups: a consumer group is not described (Kafka: "not a
    /// classic group", Dead before v6); ConsumerGroupDescribe describes it.
    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        if self.consumer_groups.borrow().contains_key(group_id) {
            return None;
        }
        let groups = self.groups.borrow();
        let Some(hosted) = groups.get(group_id) else {
            let has_offsets = self.partition_of(group_id).state.borrow().offsets.contains_key(group_id);
            return has_offsets.then(|| GroupDescription {
                state: GroupState::Empty.name(),
                protocol_type: String::new(),
                protocol_name: String::new(),
                members: Vec::new(),
            });
        };
        Some(hosted.group.description())
    }

    /// DeleteGroups for one group: only an empty group may go.
    pub async fn delete(&self, group_id: &str) -> Result<(), ResponseError> {
        let consumer_group_empty = self.consumer_groups.borrow().get(group_id).map(ConsumerGroup::is_empty);
        match consumer_group_empty {
            Some(false) => return Err(ResponseError::NonEmptyGroup),
            Some(true) => {
                self.consumer_groups.borrow_mut().remove(group_id);
                return self.persist(group_id, vec![Change::DeleteGroup { group: group_id.to_string() }]).await;
            }
            None => {}
        }
        {
            let mut groups = self.groups.borrow_mut();
            let has_offsets = self.partition_of(group_id).state.borrow().offsets.contains_key(group_id);
            match groups.get(group_id).map(|hosted| hosted.group.state()) {
                None if !has_offsets => return Err(ResponseError::GroupIdNotFound),
                Some(GroupState::Dead) => return Err(ResponseError::GroupIdNotFound),
                Some(state) if state != GroupState::Empty => return Err(ResponseError::NonEmptyGroup),
                _ => {}
            }
            groups.remove(group_id);
        }
        self.persist(group_id, vec![Change::DeleteGroup { group: group_id.to_string() }]).await
    }

    /// OffsetDelete: offsets of topics the group is not consuming may go.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<TopicPartition>,
    ) -> Result<Vec<Result<(), ResponseError>>, ResponseError> {
        let consumer_subscribed = self.consumer_groups.borrow().get(group_id).map(|g| {
            if g.is_empty() {
                Vec::new()
            } else {
                g.subscribed_topics()
            }
        });
        let subscribed: Vec<String> = if let Some(subscribed) = consumer_subscribed {
            subscribed
        } else {
            let groups = self.groups.borrow();
            let has_offsets = self.partition_of(group_id).state.borrow().offsets.contains_key(group_id);
            match groups.get(group_id).map(|hosted| &hosted.group) {
                None if !has_offsets => return Err(ResponseError::GroupIdNotFound),
                Some(g) if g.state() == GroupState::Dead => return Err(ResponseError::GroupIdNotFound),
                Some(g) if g.state() != GroupState::Empty && g.protocol_type() == Some("consumer") => {
                    g.subscribed_topics()
                }
                _ => Vec::new(),
            }
        };
        let mut results = Vec::new();
        let mut changes = Vec::new();
        for TopicPartition { topic, partition } in partitions {
            if subscribed.contains(&topic) {
                results.push(Err(ResponseError::GroupSubscribedToTopic));
            } else {
                results.push(Ok(()));
                changes.push(Change::DeleteOffset { group: group_id.to_string(), topic, partition });
            }
        }
        if !changes.is_empty() {
            self.persist(group_id, changes).await?;
        }
        Ok(results)
    }

    /// The coordinator's timer: expires members whose session lapsed,
    /// completes rebalances whose time is up, and expires offsets of groups
    /// empty for `offsets.retention.minutes`.
    pub async fn sweep(&self) {
        let now = self.now();
        let mut to_persist = Vec::new();
        {
            let mut groups = self.groups.borrow_mut();
            for hosted in groups.values_mut() {
                let effects = hosted.group.tick(now);
                hosted.deliver(effects.replies);
                hosted.check_waiting();
                if let Some(stored) = effects.persist {
                    to_persist.push((hosted.group.id().to_string(), stored));
                }
            }
        }
        for (group_id, stored) in to_persist {
            let _ = self.persist_group(&group_id, stored).await;
        }
        let mut consumer_writes: Vec<(String, Vec<Change>)> = Vec::new();
        {
            let mut consumer_groups = self.consumer_groups.borrow_mut();
            let image = self.topic_image.borrow().as_ref().map(|(_, image)| image.clone()).unwrap_or_default();
            let mut downgraded = Vec::new();
            for (id, group) in consumer_groups.iter_mut() {
                let epoch_before = group.group_epoch();
                let expired = group.tick(now, &self.settings.consumer);
                let downgraded_group =
                    expired.consumer_protocol.then(|| self.downgrade(group, epoch_before, &image, now, true)).flatten();
                if let Some(classic) = downgraded_group {
                    consumer_writes
                        .push((id.clone(), vec![Change::Group { group: id.clone(), state: classic.stored() }]));
                    downgraded.push(classic);
                } else if expired.any {
                    consumer_writes.push((id.clone(), self.consumer_changes(id, group)));
                }
            }
            for classic in downgraded {
                consumer_groups.remove(classic.id());
                self.groups.borrow_mut().insert(classic.id().to_string(), Hosted::new(classic));
            }
            // An empty consumer group with no offsets is gone, as Kafka's once its offsets expire.
            consumer_groups.retain(|id, g| {
                let keep = !g.is_empty() || self.partition_of(id).state.borrow().offsets.contains_key(id.as_str());
                if !keep {
                    consumer_writes.push((id.clone(), vec![Change::DeleteGroup { group: id.clone() }]));
                }
                keep
            });
        }
        for (group_id, changes) in consumer_writes {
            if !changes.is_empty() {
                let _ = self.persist(&group_id, changes).await;
            }
        }
        self.expire_offsets(now).await;
    }

    async fn expire_offsets(&self, now: Now) {
        let retention_ms = self.settings.offsets_retention.as_millis() as i64;
        let mut expired: Vec<(String, Vec<Change>)> = Vec::new();
        {
            let groups = self.groups.borrow();
            for (_, partition) in self.partitions.held() {
                let state = partition.state.borrow();
                for (group_id, offsets) in &state.offsets {
                    let group = groups.get(group_id).map(|hosted| &hosted.group);
                    if group.is_some_and(|g| g.state() != GroupState::Empty) {
                        continue;
                    }
                    if self.consumer_groups.borrow().get(group_id).is_some_and(|g| !g.is_empty()) {
                        continue;
                    }
                    let empty_since = group.map(|g| g.empty_since_ms()).unwrap_or(0);
                    let changes: Vec<Change> = offsets
                        .iter()
                        .filter(|(_, o)| now.wall_ms - o.commit_timestamp_ms.max(empty_since) > retention_ms)
                        .map(|((topic, partition), _)| Change::DeleteOffset {
                            group: group_id.clone(),
                            topic: topic.clone(),
                            partition: *partition,
                        })
                        .collect();
                    if !changes.is_empty() {
                        expired.push((group_id.clone(), changes));
                    }
                }
            }
        }
        for (group_id, changes) in expired {
            tracing::info!(group = %group_id, offsets = changes.len(), "committed offsets expired");
            let _ = self.persist(&group_id, changes).await;
        }
    }

    /// The server assignors consumer groups may name (`group.consumer.assignors`).
    pub fn consumer_assignors(&self) -> &[super::consumer::AssignorKind] {
        &self.settings.consumer.assignors
    }

    /// The topics as assignment sees them, rebuilt only when the catalog changed.
    fn topic_image(&self, catalog: &Arc<Catalog>) -> Rc<TopicImage> {
        let mut cached = self.topic_image.borrow_mut();
        if let Some((seen, image)) = cached.as_ref() {
            if Arc::ptr_eq(seen, catalog) {
                return image.clone();
            }
        }
        let image =
            Rc::new(TopicImage::new(catalog.topics.values().map(|t| (t.name.to_string(), t.id, t.partitions()))));
        *cached = Some((catalog.clone(), image.clone()));
        image
    }

    /// ConsumerGroupHeartbeat. A member joining a classic group of that id
    /// converts it to a consumer group (its members go on with the classic
    /// protocol) when `group.consumer.migration.policy` and Kafka's other
    /// checks allow, else GROUP_ID_NOT_FOUND, as Kafka's. The last member of
    /// the consumer protocol leaving a group of classic members converts it
    /// back, if the policy allows. What changed is durable before the member
    /// is answered.
    pub async fn consumer_heartbeat(
        &self,
        params: HeartbeatParams,
        group_id: &str,
        catalog: &Arc<Catalog>,
    ) -> Result<HeartbeatAnswer, Refusal> {
        let (answer, changes) = self.consumer_heartbeat_in_memory(params, group_id, catalog)?;
        if !changes.is_empty() {
            self.persist(group_id, changes).await.map_err(|code| (code, String::new()))?;
        }
        Ok(answer)
    }

    /// A classic group with members as a consumer group, if Kafka's checks
    /// (`validateOnlineUpgrade`) allow, with its messages when they do not.
    fn upgrade(&self, group: &Group, image: &Rc<TopicImage>, now: Now) -> Result<ConsumerGroup, Refusal> {
        let id = group.id();
        let cannot = |why: &str| {
            (
                ResponseError::GroupIdNotFound,
                format!("Cannot upgrade classic group {id} to consumer group because {why}."),
            )
        };
        if !self.settings.consumer.upgrade_enabled {
            return Err(cannot("online upgrade is disabled"));
        }
        if group.protocol_type() != Some("consumer") {
            return Err(cannot("the group does not use the consumer embedded protocol"));
        }
        if group.member_ids().count() > self.settings.consumer.members_max {
            return Err(cannot("the group size exceeds the consumer group maximum size"));
        }
        let members = group.migrating_members();
        ConsumerGroup::from_classic_group(id, group.generation(), members, image, now, &self.settings.consumer)
            .ok_or_else(|| cannot("the embedded consumer protocol is malformed"))
    }

    /// The classic group a consumer group becomes once a member of the
    /// consumer protocol left it with only classic members (Kafka's
    /// `validateOnlineDowngradeWithFencedMember` and `convertToClassicGroup`),
    /// or None if it stays. Its generation is the group epoch before the
    /// member left (`generation`): Kafka converts without bumping it, so the
    /// classic members' commits at their epoch still count while they rejoin.
    /// The group rebalances, as Kafka's, unless a classic static member took
    /// the place of the last member of the consumer protocol (`rebalance`
    /// false): that one takes over its assignment, and the others keep theirs.
    fn downgrade(
        &self,
        group: &ConsumerGroup,
        generation: i32,
        image: &TopicImage,
        now: Now,
        rebalance: bool,
    ) -> Option<Group> {
        if group.is_empty() || !group.all_classic() || !self.settings.consumer.downgrade_enabled {
            return None;
        }
        if group.len() > GROUP_MEMBERS_MAX {
            tracing::info!(group = group.id(), "not downgraded: more members than a classic group may have");
            return None;
        }
        tracing::info!(group = group.id(), "consumer group downgraded to a classic group");
        let members = group.migrating_members(image);
        let delay = self.settings.initial_rebalance_delay;
        Some(Group::from_consumer_group(group.id(), generation, members, now, delay, rebalance))
    }

    /// The heartbeat applied in memory, and the records that make it durable.
    fn consumer_heartbeat_in_memory(
        &self,
        params: HeartbeatParams,
        group_id: &str,
        catalog: &Arc<Catalog>,
    ) -> Result<(HeartbeatAnswer, Vec<Change>), Refusal> {
        let now = self.now();
        let image = self.topic_image(catalog);
        {
            let mut groups = self.groups.borrow_mut();
            if let Some(hosted) = groups.get(group_id) {
                let state = hosted.group.state();
                if state != GroupState::Empty && state != GroupState::Dead {
                    if params.member_epoch != super::consumer::JOIN_EPOCH {
                        return Err((
                            ResponseError::GroupIdNotFound,
                            format!("Group {group_id} is not a consumer group."),
                        ));
                    }
                    let upgraded = self.upgrade(&hosted.group, &image, now)?;
                    tracing::info!(group = group_id, "classic group upgraded to a consumer group");
                    self.consumer_groups.borrow_mut().insert(group_id.to_string(), upgraded);
                }
                if let Some(hosted) = groups.remove(group_id) {
                    hosted.rebalance_waiting();
                }
            }
        }
        let mut consumer_groups = self.consumer_groups.borrow_mut();
        if !consumer_groups.contains_key(group_id) {
            if params.member_epoch != super::consumer::JOIN_EPOCH {
                return Err((
                    ResponseError::UnknownMemberId,
                    format!("Group {group_id} has no member {}.", params.member_id),
                ));
            }
            consumer_groups
                .insert(group_id.to_string(), ConsumerGroup::new(group_id, self.settings.consumer.assignors[0]));
        }
        let group = consumer_groups.get_mut(group_id).expect("inserted above");
        let leaving = params.member_epoch == super::consumer::LEAVE_EPOCH;
        let leaving_consumer_protocol = leaving && group.uses_consumer_protocol(&params.member_id) == Some(true);
        let epoch_before = group.group_epoch();
        // A refused heartbeat may still have changed the group (a member fenced): persist either way.
        let result = group.heartbeat(now, params, &image, &self.settings.consumer);
        if result.is_ok() && leaving_consumer_protocol {
            if let Some(classic) = self.downgrade(group, epoch_before, &image, now, true) {
                consumer_groups.remove(group_id);
                let stored = classic.stored();
                self.groups.borrow_mut().insert(group_id.to_string(), Hosted::new(classic));
                let change = Change::Group { group: group_id.to_string(), state: stored };
                return result.map(|answer| (answer, vec![change]));
            }
        }
        let changes = self.consumer_changes(group_id, group);
        if group.is_empty() && group.group_epoch() == 0 {
            // A first join that was refused leaves no group behind.
            consumer_groups.remove(group_id);
            return result.map(|answer| (answer, Vec::new()));
        }
        result.map(|answer| (answer, changes))
    }

    /// ConsumerGroupDescribe: GROUP_ID_NOT_FOUND for an unknown or a classic group, as Kafka.
    pub fn consumer_describe(
        &self,
        group_id: &str,
        catalog: &Arc<Catalog>,
    ) -> Result<ConsumerGroupDescription, Refusal> {
        let image = self.topic_image(catalog);
        match self.consumer_groups.borrow().get(group_id) {
            Some(group) => Ok(group.description(&image)),
            None if self.groups.borrow().contains_key(group_id) => {
                Err((ResponseError::GroupIdNotFound, format!("Group {group_id} is not a consumer group.")))
            }
            None => Err((ResponseError::GroupIdNotFound, format!("Group {group_id} not found."))),
        }
    }

    /// OffsetFetch by a member of a consumer group (v9's member id and epoch).
    pub fn admit_fetch(&self, group_id: &str, member_id: Option<&str>, member_epoch: i32) -> Result<(), ResponseError> {
        let Some(member_id) = member_id else { return Ok(()) };
        if member_epoch < 0 && member_id.is_empty() {
            return Ok(());
        }
        match self.consumer_groups.borrow().get(group_id) {
            Some(group) => group.admit_commit(member_id, member_epoch),
            // Classic groups' members fetch with no checks, as in Kafka.
            None if self.groups.borrow().contains_key(group_id) => Ok(()),
            None => Err(ResponseError::UnknownMemberId),
        }
    }

    pub async fn close(&self) {
        for (_, partition) in self.partitions.held() {
            partition.store.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use sluice_storage::log::Log;

    /// A retried transaction marker for a group finds nothing pending (the
    /// first one ended it in memory), but is answered only once the first
    /// is on every in-sync replica, and fails if the first failed.
    #[test]
    fn a_retried_group_marker_is_answered_only_once_the_first_is_replicated() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let dir = std::env::temp_dir().join(format!("sluice-group-marker-retry-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                let settings = GroupSettings {
                    initial_rebalance_delay: Duration::ZERO,
                    offsets_retention: Duration::from_secs(7 * 24 * 3600),
                    consumer: super::super::consumer::ConsumerSettings {
                        session_timeout: Duration::from_secs(45),
                        heartbeat_interval_ms: 5_000,
                        assignors: vec![super::super::consumer::AssignorKind::Uniform],
                        members_max: 8,
                        upgrade_enabled: true,
                        downgrade_enabled: true,
                    },
                };
                let groups = Rc::new(GroupCoordinator::open(&dir, 0, 1, settings, true).await.unwrap());
                let log =
                    Log::open(dir.join("log"), Default::default(), false, Rc::default(), Rc::default()).await.unwrap();
                let n = super::super::offsets_partition("g");
                groups.load(n, log.clone()).await;
                assert_eq!(groups.serves("g"), Ok(()));
                let offset = CommittedOffset { offset: 9, leader_epoch: 0, metadata: None, commit_timestamp_ms: 1 };
                let committed = groups.txn_commit("g", 7, -1, "", None, vec![("t".into(), 0, offset)]).await;
                assert_eq!(committed, Ok(vec![Ok(())]));
                // From here an in-sync follower confirms nothing more.
                log.set_high_watermark_limit(Some(log.log_end_offset()));
                let answers = Rc::new(RefCell::new(Vec::new()));
                let end = |groups: Rc<GroupCoordinator>, answers: Rc<RefCell<Vec<_>>>| async move {
                    let answer = groups.txn_end("g", 7, true).await;
                    answers.borrow_mut().push(answer);
                };
                let first = glommio::spawn_local(end(groups.clone(), answers.clone()));
                glommio::timer::sleep(Duration::from_millis(20)).await;
                // The coordinator did not hear back and asks again.
                let retry = glommio::spawn_local(end(groups.clone(), answers.clone()));
                glommio::timer::sleep(Duration::from_millis(50)).await;
                assert!(answers.borrow().is_empty(), "answered before the follower has the marker");
                log.set_high_watermark_limit(Some(log.log_end_offset()));
                first.await;
                retry.await;
                assert_eq!(*answers.borrow(), vec![Ok(()), Ok(())]);

                // A marker whose write fails: its retry fails too, and the
                // partition answers nothing until it is loaded again.
                log.set_high_watermark_limit(None);
                let offset = CommittedOffset { offset: 10, leader_epoch: 0, metadata: None, commit_timestamp_ms: 1 };
                let committed = groups.txn_commit("g", 8, -1, "", None, vec![("t".into(), 0, offset)]).await;
                assert_eq!(committed, Ok(vec![Ok(())]));
                log.set_high_watermark_limit(Some(log.log_end_offset()));
                let first = glommio::spawn_local(async move {
                    let answer = groups.txn_end("g", 8, false).await;
                    (groups, answer)
                });
                glommio::timer::sleep(Duration::from_millis(20)).await;
                let (groups, answer) = first.await;
                assert_eq!(answer, Err(ResponseError::CoordinatorNotAvailable), "no follower confirmed it in time");
                assert_eq!(groups.txn_end("g", 8, false).await, Err(ResponseError::CoordinatorNotAvailable));
                assert_eq!(groups.serves("g"), Err(ResponseError::CoordinatorNotAvailable));
                assert!(groups.failed(n));
                std::fs::remove_dir_all(&dir).unwrap();
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
