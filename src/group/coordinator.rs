//! The group coordinator of one shard: the classic protocol's membership
//! state machine (Empty → PreparingRebalance → CompletingRebalance → Stable,
//! and Dead), generations, protocol selection, session and rebalance
//! timeouts, static membership (KIP-345), member ids required from JoinGroup
//! v4 (KIP-394), and committed offsets, for the groups whose offsets
//! partitions this shard owns.
//!
//! State lives in `RefCell`s touched only by this shard; no borrow is held
//! across an `.await`: changes are applied in memory, then the journal append
//! is awaited with the borrow released.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::store::{Change, CommittedOffset, GroupStore, StoreState, StoredGroup, StoredMember};
use crate::constants::{
    GROUP_MEMBERS_MAX, GROUP_SESSION_TIMEOUT_MS_MAX, GROUP_SESSION_TIMEOUT_MS_MIN, OFFSETS_PARTITIONS,
    OFFSET_METADATA_BYTES_MAX,
};
use crate::protocol::ResponseError;

/// Where a group is in its life, named as Kafka names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Group settings from the broker config.
#[derive(Debug, Clone, Copy)]
pub struct GroupSettings {
    pub initial_rebalance_delay: Duration,
    pub offsets_retention: Duration,
}

struct Member {
    id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    last_heartbeat: Instant,
    /// Set while the member waits in JoinGroup for the rebalance to complete.
    join: Option<(i16, oneshot::Sender<JoinGroupResponse>)>,
    /// Order in which members joined this round (the first becomes leader if needed).
    join_order: u64,
    sync: Option<oneshot::Sender<SyncGroupResponse>>,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(n, _)| n == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }
}

/// A group as the coordinator runs it.
pub struct Group {
    id: String,
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// Static members: instance id -> member id.
    static_members: HashMap<String, String>,
    /// Member ids handed out by JoinGroup v4+ and not yet used, with their expiry.
    pending: HashMap<String, Instant>,
    rebalance_deadline: Option<Instant>,
    /// The first rebalance of an empty group waits this long for more members.
    earliest_completion: Option<Instant>,
    join_counter: u64,
    empty_since_ms: i64,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

impl Group {
    fn new(id: &str) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            rebalance_deadline: None,
            earliest_completion: None,
            join_counter: 0,
            empty_since_ms: now_ms(),
        }
    }

    fn from_stored(id: &str, stored: &StoredGroup) -> Group {
        let mut group = Group::new(id);
        group.generation = stored.generation;
        group.empty_since_ms = stored.empty_since_ms;
        if stored.members.is_empty() {
            return group;
        }
        group.state = GroupState::Stable;
        group.protocol_type = Some(stored.protocol_type.clone());
        group.protocol_name = stored.protocol_name.clone();
        group.leader = stored.leader.clone();
        let protocol = stored.protocol_name.clone().unwrap_or_default();
        for m in &stored.members {
            if let Some(instance) = &m.group_instance_id {
                group.static_members.insert(instance.clone(), m.member_id.clone());
            }
            group.members.insert(
                m.member_id.clone(),
                Member {
                    id: m.member_id.clone(),
                    instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout: Duration::from_millis(m.session_timeout_ms.max(0) as u64),
                    rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64),
                    protocols: vec![(protocol.clone(), Bytes::from(m.subscription.clone()))],
                    assignment: Bytes::from(m.assignment.clone()),
                    // A reloaded member gets a full session to come back.
                    last_heartbeat: Instant::now(),
                    join: None,
                    join_order: 0,
                    sync: None,
                },
            );
        }
        group
    }

    fn stored(&self) -> StoredGroup {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        StoredGroup {
            generation: self.generation,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone(),
            empty_since_ms: if self.members.is_empty() { self.empty_since_ms } else { 0 },
            members: self
                .members
                .values()
                .map(|m| StoredMember {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout.as_millis() as i32,
                    rebalance_timeout_ms: m.rebalance_timeout.as_millis() as i32,
                    subscription: m.metadata_for(&protocol).to_vec(),
                    assignment: m.assignment.to_vec(),
                })
                .collect(),
        }
    }

    fn state_name(&self) -> &'static str {
        self.state.name()
    }

    /// Protocols every member supports, the one most members prefer (Kafka's vote).
    fn select_protocol(&self) -> Option<String> {
        let mut candidates: Option<Vec<String>> = None;
        for m in self.members.values() {
            let names: Vec<String> = m.protocols.iter().map(|(n, _)| n.clone()).collect();
            candidates = Some(match candidates {
                None => names,
                Some(c) => c.into_iter().filter(|n| names.contains(n)).collect(),
            });
        }
        let candidates = candidates?;
        let mut votes: Vec<(String, usize)> = candidates.iter().map(|c| (c.clone(), 0)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                if let Some(v) = votes.iter_mut().find(|(c, _)| c == name) {
                    v.1 += 1;
                }
            }
        }
        votes.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(std::cmp::Ordering::Greater)).map(|(n, _)| n)
    }

    /// Whether a new member's protocols fit the group's.
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols.iter().any(|(n, _)| self.members.values().all(|m| m.protocols.iter().any(|(mn, _)| mn == n)))
    }

    fn prepare_rebalance(&mut self, settings: &GroupSettings) {
        if self.state == GroupState::CompletingRebalance {
            // Members waiting for their assignment must rejoin.
            for m in self.members.values_mut() {
                if let Some(sync) = m.sync.take() {
                    let _ = sync
                        .send(SyncGroupResponse::default().with_error_code(ResponseError::RebalanceInProgress.code()));
                }
            }
        }
        let was_empty = self.state == GroupState::Empty;
        self.state = GroupState::PreparingRebalance;
        let timeout = self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or(Duration::ZERO);
        let now = Instant::now();
        self.rebalance_deadline = Some(now + timeout);
        self.earliest_completion = was_empty.then(|| now + settings.initial_rebalance_delay.min(timeout));
    }

    fn all_joined(&self) -> bool {
        self.members.values().all(|m| m.join.is_some())
    }

    /// Ends the join phase: members that did not rejoin are dropped, a new
    /// generation begins, the leader gets every member's metadata.
    /// Returns whether the group became empty (its metadata must be persisted).
    fn complete_join(&mut self) -> bool {
        let gone: Vec<String> = self.members.values().filter(|m| m.join.is_none()).map(|m| m.id.clone()).collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.generation += 1;
        self.rebalance_deadline = None;
        self.earliest_completion = None;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol_name = None;
            self.leader = None;
            self.empty_since_ms = now_ms();
            return true;
        }
        self.protocol_name = self.select_protocol();
        let protocol = self.protocol_name.clone().unwrap_or_default();
        if !self.leader.as_ref().is_some_and(|l| self.members.contains_key(l)) {
            self.leader = self.members.values().min_by_key(|m| m.join_order).map(|m| m.id.clone());
        }
        self.state = GroupState::CompletingRebalance;
        let leader = self.leader.clone().unwrap_or_default();
        let all: Vec<JoinGroupResponseMember> = self
            .members
            .values()
            .map(|m| {
                JoinGroupResponseMember::default()
                    .with_member_id(str_bytes(&m.id))
                    .with_group_instance_id(m.instance_id.as_deref().map(str_bytes))
                    .with_metadata(m.metadata_for(&protocol))
            })
            .collect();
        let now = Instant::now();
        let (generation, protocol_type) = (self.generation, self.protocol_type.clone());
        for m in self.members.values_mut() {
            m.last_heartbeat = now;
            if let Some((version, join)) = m.join.take() {
                let members = if m.id == leader { all.clone() } else { Vec::new() };
                let response =
                    join_response(generation, protocol_type.as_deref(), version, &m.id, &leader, &protocol, members);
                let _ = join.send(response);
            }
        }
        false
    }

    fn join_response(
        &self,
        version: i16,
        member_id: &str,
        leader: &str,
        protocol: &str,
        members: Vec<JoinGroupResponseMember>,
    ) -> JoinGroupResponse {
        join_response(self.generation, self.protocol_type.as_deref(), version, member_id, leader, protocol, members)
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(m) = self.members.remove(id) {
            if let Some(instance) = &m.instance_id {
                if self.static_members.get(instance).is_some_and(|mid| mid == id) {
                    self.static_members.remove(instance);
                }
            }
            if let Some((_, join)) = m.join {
                let _ = join.send(JoinGroupResponse::default().with_error_code(ResponseError::UnknownMemberId.code()));
            }
            if let Some(sync) = m.sync {
                let _ = sync.send(SyncGroupResponse::default().with_error_code(ResponseError::UnknownMemberId.code()));
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
    }

    /// A static member whose instance id now maps to a newer member id is fenced.
    fn fenced(&self, member_id: &str, instance_id: Option<&str>) -> bool {
        instance_id.is_some_and(|i| self.static_members.get(i).is_some_and(|current| current != member_id))
    }
}

/// One offsets partition this shard owns: its durable store and state.
struct OffsetsPartition {
    store: GroupStore,
    state: RefCell<StoreState>,
}

/// The coordinator of every group whose offsets partition this shard owns.
pub struct GroupCoordinator {
    shard_id: usize,
    shards: usize,
    settings: GroupSettings,
    partitions: HashMap<usize, Rc<OffsetsPartition>>,
    groups: RefCell<HashMap<String, Group>>,
}

/// Answer to a JoinGroup: at once, or once the rebalance completes.
pub enum JoinOutcome {
    Now(JoinGroupResponse),
    Wait(oneshot::Receiver<JoinGroupResponse>),
}

/// Answer to a SyncGroup.
pub enum SyncOutcome {
    Now(SyncGroupResponse),
    Wait(oneshot::Receiver<SyncGroupResponse>),
    /// The leader's assignment: persist the group, then answer everyone.
    Persist {
        stored: StoredGroup,
        waiters: Vec<oneshot::Sender<SyncGroupResponse>>,
        responses: Vec<SyncGroupResponse>,
    },
}

/// One group's committed offsets, for OffsetFetch.
pub type FetchedOffsets = Vec<(String, i32, Option<CommittedOffset>)>;

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol_name: String,
    /// (member id, instance id, client id, client host, metadata, assignment)
    pub members: Vec<(String, Option<String>, String, String, Bytes, Bytes)>,
}

fn join_response(
    generation: i32,
    protocol_type: Option<&str>,
    version: i16,
    member_id: &str,
    leader: &str,
    protocol: &str,
    members: Vec<JoinGroupResponseMember>,
) -> JoinGroupResponse {
    let mut response = JoinGroupResponse::default()
        .with_generation_id(generation)
        .with_protocol_name(Some(str_bytes(protocol)))
        .with_leader(str_bytes(leader))
        .with_member_id(str_bytes(member_id))
        .with_members(members);
    if version >= 7 {
        response = response.with_protocol_type(protocol_type.map(str_bytes));
    }
    response
}

fn join_error(code: ResponseError, member_id: &str) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(code.code())
        .with_generation_id(-1)
        .with_member_id(str_bytes(member_id))
        .with_protocol_name(None)
}

impl GroupCoordinator {
    /// Opens the offsets partitions this shard owns and reloads their groups.
    pub async fn open(
        data_dir: &Path,
        shard_id: usize,
        shards: usize,
        settings: GroupSettings,
    ) -> Result<GroupCoordinator, String> {
        let mut partitions = HashMap::new();
        let mut groups = HashMap::new();
        for n in (0..OFFSETS_PARTITIONS).filter(|n| n % shards == shard_id) {
            let dir = data_dir.join(format!("__consumer_offsets-{n}"));
            let (store, state) = GroupStore::open(dir).await.map_err(|e| e.to_string())?;
            for (id, stored) in &state.groups {
                groups.insert(id.clone(), Group::from_stored(id, stored));
            }
            partitions.insert(n, Rc::new(OffsetsPartition { store, state: RefCell::new(state) }));
        }
        Ok(GroupCoordinator { shard_id, shards, settings, partitions, groups: RefCell::new(groups) })
    }

    fn partition_of(&self, group_id: &str) -> Rc<OffsetsPartition> {
        let n = super::offsets_partition(group_id);
        assert_eq!(n % self.shards, self.shard_id, "group {group_id} routed to the wrong shard");
        self.partitions.get(&n).expect("owned offsets partition is open").clone()
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
            tracing::error!(group = group_id, error = %e, "offsets store write failed");
            ResponseError::CoordinatorNotAvailable
        })
    }

    pub async fn join(
        &self,
        version: i16,
        request: JoinGroupRequest,
        client_host: String,
        client_id: String,
    ) -> JoinGroupResponse {
        let outcome = self.join_now(version, request, client_host, client_id);
        match outcome {
            JoinOutcome::Now(response) => response,
            JoinOutcome::Wait(rx) => rx.await.unwrap_or_else(|_| join_error(ResponseError::UnknownMemberId, "")),
        }
    }

    fn join_now(&self, version: i16, request: JoinGroupRequest, client_host: String, client_id: String) -> JoinOutcome {
        let group_id = request.group_id.0.to_string();
        let member_id = request.member_id.to_string();
        if group_id.is_empty() {
            return JoinOutcome::Now(join_error(ResponseError::InvalidGroupId, &member_id));
        }
        if !(GROUP_SESSION_TIMEOUT_MS_MIN..=GROUP_SESSION_TIMEOUT_MS_MAX).contains(&request.session_timeout_ms) {
            return JoinOutcome::Now(join_error(ResponseError::InvalidSessionTimeout, &member_id));
        }
        let protocols: Vec<(String, Bytes)> =
            request.protocols.iter().map(|p| (p.name.to_string(), p.metadata.clone())).collect();
        let protocol_type = request.protocol_type.to_string();
        let instance_id = request.group_instance_id.as_ref().map(|s| s.to_string());
        // v0 has no rebalance timeout: it is the session timeout.
        let rebalance_timeout_ms = if version == 0 { request.session_timeout_ms } else { request.rebalance_timeout_ms };

        let mut groups = self.groups.borrow_mut();
        let group = groups.entry(group_id.clone()).or_insert_with(|| Group::new(&group_id));
        if group.state == GroupState::Dead {
            return JoinOutcome::Now(join_error(ResponseError::CoordinatorNotAvailable, &member_id));
        }
        if !group.supports(&protocol_type, &protocols) {
            return JoinOutcome::Now(join_error(ResponseError::InconsistentGroupProtocol, &member_id));
        }

        let member_id = if member_id.is_empty() {
            let new_id =
                format!("{}-{}", if client_id.is_empty() { "member" } else { &client_id }, uuid::Uuid::new_v4());
            match &instance_id {
                Some(instance) if group.static_members.contains_key(instance) => {
                    // A static member restarting: it takes over its old identity under a new id.
                    let old = group.static_members[instance].clone();
                    if let Some(mut m) = group.members.remove(&old) {
                        m.id = new_id.clone();
                        if let Some((_, join)) = m.join.take() {
                            let _ = join.send(join_error(ResponseError::FencedInstanceId, &old));
                        }
                        group.members.insert(new_id.clone(), m);
                    }
                    group.static_members.insert(instance.clone(), new_id.clone());
                    if group.leader.as_deref() == Some(old.as_str()) {
                        group.leader = Some(new_id.clone());
                    }
                    let unchanged = group.members.get(&new_id).is_some_and(|m| m.protocols == protocols);
                    if group.state == GroupState::Stable && unchanged {
                        let member = group.members.get_mut(&new_id).expect("just inserted");
                        member.last_heartbeat = Instant::now();
                        let protocol = group.protocol_name.clone().unwrap_or_default();
                        let leader = group.leader.clone().unwrap_or_default();
                        return JoinOutcome::Now(group.join_response(version, &new_id, &leader, &protocol, Vec::new()));
                    }
                    new_id
                }
                _ if version >= 4 && instance_id.is_none() => {
                    // KIP-394: hand out the id and have the member join with it.
                    let session = Duration::from_millis(request.session_timeout_ms as u64);
                    group.pending.insert(new_id.clone(), Instant::now() + session);
                    return JoinOutcome::Now(join_error(ResponseError::MemberIdRequired, &new_id));
                }
                _ => new_id,
            }
        } else {
            let known = group.members.contains_key(&member_id) || group.pending.contains_key(&member_id);
            if !known {
                return JoinOutcome::Now(join_error(ResponseError::UnknownMemberId, &member_id));
            }
            if group.fenced(&member_id, instance_id.as_deref()) {
                return JoinOutcome::Now(join_error(ResponseError::FencedInstanceId, &member_id));
            }
            member_id
        };
        group.pending.remove(&member_id);
        if !group.members.contains_key(&member_id) && group.members.len() >= GROUP_MEMBERS_MAX {
            return JoinOutcome::Now(join_error(ResponseError::GroupMaxSizeReached, &member_id));
        }

        // A known member rejoining a stable group with nothing changed gets the current generation.
        if group.state == GroupState::Stable || group.state == GroupState::CompletingRebalance {
            if let Some(m) = group.members.get(&member_id) {
                let is_leader = group.leader.as_deref() == Some(member_id.as_str());
                if m.protocols == protocols && !(is_leader && group.state == GroupState::Stable) {
                    let protocol = group.protocol_name.clone().unwrap_or_default();
                    let leader = group.leader.clone().unwrap_or_default();
                    let members = if is_leader {
                        group
                            .members
                            .values()
                            .map(|m| {
                                JoinGroupResponseMember::default()
                                    .with_member_id(str_bytes(&m.id))
                                    .with_group_instance_id(m.instance_id.as_deref().map(str_bytes))
                                    .with_metadata(m.metadata_for(&protocol))
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    return JoinOutcome::Now(group.join_response(version, &member_id, &leader, &protocol, members));
                }
            }
        }

        group.join_counter += 1;
        let order = group.join_counter;
        let (tx, rx) = oneshot::channel();
        match group.members.get_mut(&member_id) {
            Some(m) => {
                m.protocols = protocols;
                m.session_timeout = Duration::from_millis(request.session_timeout_ms as u64);
                m.rebalance_timeout = Duration::from_millis(rebalance_timeout_ms.max(0) as u64);
                m.last_heartbeat = Instant::now();
                if let Some((_, old)) = m.join.replace((version, tx)) {
                    let _ = old.send(join_error(ResponseError::UnknownMemberId, &member_id));
                }
                m.join_order = order;
            }
            None => {
                if group.members.is_empty() {
                    group.protocol_type = Some(protocol_type);
                }
                if let Some(instance) = &instance_id {
                    group.static_members.insert(instance.clone(), member_id.clone());
                }
                group.members.insert(
                    member_id.clone(),
                    Member {
                        id: member_id.clone(),
                        instance_id,
                        client_id,
                        client_host,
                        session_timeout: Duration::from_millis(request.session_timeout_ms as u64),
                        rebalance_timeout: Duration::from_millis(rebalance_timeout_ms.max(0) as u64),
                        protocols,
                        assignment: Bytes::new(),
                        last_heartbeat: Instant::now(),
                        join: Some((version, tx)),
                        join_order: order,
                        sync: None,
                    },
                );
            }
        }
        if group.state != GroupState::PreparingRebalance {
            group.prepare_rebalance(&self.settings);
        }
        let ready = group.all_joined() && group.earliest_completion.is_none_or(|t| Instant::now() >= t);
        if ready {
            let became_empty = group.complete_join();
            debug_assert!(!became_empty, "a joining member keeps the group non-empty");
        }
        JoinOutcome::Wait(rx)
    }

    pub async fn sync(&self, version: i16, request: SyncGroupRequest) -> SyncGroupResponse {
        let group_id = request.group_id.0.to_string();
        match self.sync_now(version, request) {
            SyncOutcome::Now(response) => response,
            SyncOutcome::Wait(rx) => rx.await.unwrap_or_else(|_| {
                SyncGroupResponse::default().with_error_code(ResponseError::RebalanceInProgress.code())
            }),
            SyncOutcome::Persist { stored, waiters, mut responses } => {
                let result =
                    self.persist(&group_id, vec![Change::Group { group: group_id.clone(), state: stored }]).await;
                let leader_response = responses.pop().expect("the leader's own response");
                for (waiter, response) in waiters.into_iter().zip(responses) {
                    let response = match result {
                        Ok(()) => response,
                        Err(code) => SyncGroupResponse::default().with_error_code(code.code()),
                    };
                    let _ = waiter.send(response);
                }
                match result {
                    Ok(()) => leader_response,
                    Err(code) => SyncGroupResponse::default().with_error_code(code.code()),
                }
            }
        }
    }

    fn sync_now(&self, version: i16, request: SyncGroupRequest) -> SyncOutcome {
        let error = |code: ResponseError| SyncOutcome::Now(SyncGroupResponse::default().with_error_code(code.code()));
        let group_id = request.group_id.0.to_string();
        let member_id = request.member_id.to_string();
        let mut groups = self.groups.borrow_mut();
        let Some(group) = groups.get_mut(&group_id) else {
            return error(ResponseError::UnknownMemberId);
        };
        if !group.members.contains_key(&member_id) {
            return error(ResponseError::UnknownMemberId);
        }
        if group.fenced(&member_id, request.group_instance_id.as_deref()) {
            return error(ResponseError::FencedInstanceId);
        }
        if request.generation_id != group.generation {
            return error(ResponseError::IllegalGeneration);
        }
        if version >= 5 {
            let type_ok = request.protocol_type.as_deref().is_none_or(|t| Some(t) == group.protocol_type.as_deref());
            let name_ok = request.protocol_name.as_deref().is_none_or(|n| Some(n) == group.protocol_name.as_deref());
            if !type_ok || !name_ok {
                return error(ResponseError::InconsistentGroupProtocol);
            }
        }
        let with_protocol = |assignment: Bytes, group: &Group| {
            let mut response = SyncGroupResponse::default().with_assignment(assignment);
            if version >= 5 {
                response = response
                    .with_protocol_type(group.protocol_type.as_deref().map(str_bytes))
                    .with_protocol_name(group.protocol_name.as_deref().map(str_bytes));
            }
            response
        };
        match group.state {
            GroupState::Empty | GroupState::Dead => error(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => error(ResponseError::RebalanceInProgress),
            GroupState::Stable => {
                let assignment = group.members[&member_id].assignment.clone();
                SyncOutcome::Now(with_protocol(assignment, group))
            }
            GroupState::CompletingRebalance => {
                let is_leader = group.leader.as_deref() == Some(member_id.as_str());
                if !is_leader {
                    let (tx, rx) = oneshot::channel();
                    group.members.get_mut(&member_id).expect("checked").sync = Some(tx);
                    return SyncOutcome::Wait(rx);
                }
                let assignments: HashMap<String, Bytes> =
                    request.assignments.iter().map(|a| (a.member_id.to_string(), a.assignment.clone())).collect();
                for m in group.members.values_mut() {
                    m.assignment = assignments.get(&m.id).cloned().unwrap_or_default();
                }
                group.state = GroupState::Stable;
                let stored = group.stored();
                let mut waiters = Vec::new();
                let mut responses = Vec::new();
                let ids: Vec<String> = group.members.keys().cloned().collect();
                for id in ids {
                    let waiter = group.members.get_mut(&id).expect("member").sync.take();
                    if let Some(waiter) = waiter {
                        responses.push(with_protocol(group.members[&id].assignment.clone(), group));
                        waiters.push(waiter);
                    }
                }
                responses.push(with_protocol(group.members[&member_id].assignment.clone(), group));
                SyncOutcome::Persist { stored, waiters, responses }
            }
        }
    }

    pub fn heartbeat(&self, request: HeartbeatRequest) -> HeartbeatResponse {
        let code = self.heartbeat_code(&request);
        HeartbeatResponse::default().with_error_code(code.map(|c| c.code()).unwrap_or(0))
    }

    fn heartbeat_code(&self, request: &HeartbeatRequest) -> Option<ResponseError> {
        let mut groups = self.groups.borrow_mut();
        let member_id = request.member_id.as_str();
        let Some(group) = groups.get_mut(request.group_id.0.as_str()) else {
            return Some(ResponseError::UnknownMemberId);
        };
        if group.fenced(member_id, request.group_instance_id.as_deref()) {
            return Some(ResponseError::FencedInstanceId);
        }
        let Some(member) = group.members.get_mut(member_id) else {
            return Some(ResponseError::UnknownMemberId);
        };
        member.last_heartbeat = Instant::now();
        match group.state {
            GroupState::Empty | GroupState::Dead => Some(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => Some(ResponseError::RebalanceInProgress),
            _ if request.generation_id != group.generation => Some(ResponseError::IllegalGeneration),
            _ => None,
        }
    }

    pub async fn leave(&self, version: i16, request: LeaveGroupRequest) -> LeaveGroupResponse {
        let group_id = request.group_id.0.to_string();
        let identities: Vec<(String, Option<String>)> = if version >= 3 {
            request
                .members
                .iter()
                .map(|m| (m.member_id.to_string(), m.group_instance_id.as_ref().map(|s| s.to_string())))
                .collect()
        } else {
            vec![(request.member_id.to_string(), None)]
        };
        let (response, persist) = {
            let mut groups = self.groups.borrow_mut();
            let Some(group) = groups.get_mut(&group_id) else {
                return LeaveGroupResponse::default().with_error_code(ResponseError::UnknownMemberId.code());
            };
            let mut results = Vec::new();
            let mut any_left = false;
            for (member_id, instance_id) in &identities {
                // A static member may leave by instance id alone.
                let target = match instance_id {
                    Some(instance) => match group.static_members.get(instance) {
                        Some(current) if member_id.is_empty() || current == member_id => Ok(current.clone()),
                        Some(_) => Err(ResponseError::FencedInstanceId),
                        None => Err(ResponseError::UnknownMemberId),
                    },
                    None if group.members.contains_key(member_id) => Ok(member_id.clone()),
                    None => Err(ResponseError::UnknownMemberId),
                };
                let code = match target {
                    Ok(id) => {
                        group.remove_member(&id);
                        any_left = true;
                        0
                    }
                    Err(code) => code.code(),
                };
                results.push(
                    MemberResponse::default()
                        .with_member_id(str_bytes(member_id))
                        .with_group_instance_id(instance_id.as_deref().map(str_bytes))
                        .with_error_code(code),
                );
            }
            let mut persist = None;
            if any_left {
                match group.state {
                    GroupState::Stable | GroupState::CompletingRebalance => group.prepare_rebalance(&self.settings),
                    _ => {}
                }
                if group.state == GroupState::PreparingRebalance && group.all_joined() && group.complete_join() {
                    persist = Some(group.stored());
                }
            }
            let response = if version >= 3 {
                LeaveGroupResponse::default().with_members(results)
            } else {
                LeaveGroupResponse::default().with_error_code(results[0].error_code)
            };
            (response, persist)
        };
        if let Some(stored) = persist {
            let _ = self.persist(&group_id, vec![Change::Group { group: group_id.clone(), state: stored }]).await;
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
    pub async fn txn_end(&self, group_id: &str, producer_id: i64, commit: bool) -> Result<(), ResponseError> {
        let pending = self
            .partition_of(group_id)
            .state
            .borrow()
            .pending_txn_offsets
            .contains_key(&(group_id.to_string(), producer_id));
        if !pending {
            return Ok(());
        }
        self.persist(group_id, vec![Change::TxnOffsetEnd { group: group_id.to_string(), producer_id, commit }]).await
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
        {
            let mut groups = self.groups.borrow_mut();
            match groups.get_mut(group_id) {
                None if generation < 0 => {
                    // A consumer that manages its own partitions commits with no generation.
                    groups.insert(group_id.to_string(), Group::new(group_id));
                }
                None => return Err(ResponseError::IllegalGeneration),
                Some(group) if group.state == GroupState::Dead => return Err(ResponseError::CoordinatorNotAvailable),
                Some(group) if generation < 0 && group.state == GroupState::Empty => {}
                Some(group) => {
                    if group.fenced(member_id, instance_id) {
                        return Err(ResponseError::FencedInstanceId);
                    }
                    if !group.members.contains_key(member_id) {
                        return Err(ResponseError::UnknownMemberId);
                    }
                    if generation != group.generation {
                        return Err(ResponseError::IllegalGeneration);
                    }
                    if group.state == GroupState::CompletingRebalance {
                        return Err(ResponseError::RebalanceInProgress);
                    }
                    if let Some(m) = group.members.get_mut(member_id) {
                        m.last_heartbeat = Instant::now();
                    }
                }
            }
        }
        Ok(())
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

    /// Every group on this shard: (id, protocol type, state).
    pub fn list(&self) -> Vec<(String, String, &'static str)> {
        let groups = self.groups.borrow();
        let mut listed: Vec<_> = groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .map(|g| (g.id.clone(), g.protocol_type.clone().unwrap_or_default(), g.state_name()))
            .collect();
        // Groups known only by their committed offsets (no membership) are Empty groups too.
        for partition in self.partitions.values() {
            for id in partition.state.borrow().offsets.keys() {
                if !groups.contains_key(id) {
                    listed.push((id.clone(), String::new(), GroupState::Empty.name()));
                }
            }
        }
        listed.sort();
        listed
    }

    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let groups = self.groups.borrow();
        let Some(group) = groups.get(group_id) else {
            let has_offsets = self.partition_of(group_id).state.borrow().offsets.contains_key(group_id);
            return has_offsets.then(|| GroupDescription {
                state: GroupState::Empty.name(),
                protocol_type: String::new(),
                protocol_name: String::new(),
                members: Vec::new(),
            });
        };
        let protocol = group.protocol_name.clone().unwrap_or_default();
        let stable = group.state == GroupState::Stable;
        Some(GroupDescription {
            state: group.state_name(),
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol_name: if stable { protocol.clone() } else { String::new() },
            members: group
                .members
                .values()
                .map(|m| {
                    (
                        m.id.clone(),
                        m.instance_id.clone(),
                        m.client_id.clone(),
                        m.client_host.clone(),
                        if stable { m.metadata_for(&protocol) } else { Bytes::new() },
                        if stable { m.assignment.clone() } else { Bytes::new() },
                    )
                })
                .collect(),
        })
    }

    /// DeleteGroups for one group: only an empty group may go.
    pub async fn delete(&self, group_id: &str) -> Result<(), ResponseError> {
        {
            let mut groups = self.groups.borrow_mut();
            let has_offsets = self.partition_of(group_id).state.borrow().offsets.contains_key(group_id);
            match groups.get(group_id) {
                None if !has_offsets => return Err(ResponseError::GroupIdNotFound),
                Some(g) if g.state == GroupState::Dead => return Err(ResponseError::GroupIdNotFound),
                Some(g) if g.state != GroupState::Empty => return Err(ResponseError::NonEmptyGroup),
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
        partitions: Vec<(String, i32)>,
    ) -> Result<Vec<Result<(), ResponseError>>, ResponseError> {
        let subscribed: Vec<String> = {
            let groups = self.groups.borrow();
            let has_offsets = self.partition_of(group_id).state.borrow().offsets.contains_key(group_id);
            match groups.get(group_id) {
                None if !has_offsets => return Err(ResponseError::GroupIdNotFound),
                Some(g) if g.state == GroupState::Dead => return Err(ResponseError::GroupIdNotFound),
                Some(g) if g.state != GroupState::Empty && g.protocol_type.as_deref() == Some("consumer") => {
                    subscribed_topics(g)
                }
                _ => Vec::new(),
            }
        };
        let mut results = Vec::new();
        let mut changes = Vec::new();
        for (topic, partition) in partitions {
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

    /// Expires members whose session lapsed, completes rebalances whose time
    /// is up, and expires offsets of groups empty for `offsets.retention.minutes`.
    pub async fn sweep(&self) {
        let now = Instant::now();
        let mut to_persist = Vec::new();
        {
            let mut groups = self.groups.borrow_mut();
            for group in groups.values_mut() {
                group.pending.retain(|_, expiry| *expiry > now);
                let expired: Vec<String> = group
                    .members
                    .values()
                    .filter(|m| m.join.is_none() && now.duration_since(m.last_heartbeat) > m.session_timeout)
                    .map(|m| m.id.clone())
                    .collect();
                if !expired.is_empty() {
                    for id in &expired {
                        tracing::info!(group = %group.id, member = %id, "member session expired");
                        group.remove_member(id);
                    }
                    if matches!(group.state, GroupState::Stable | GroupState::CompletingRebalance) {
                        group.prepare_rebalance(&self.settings);
                    }
                }
                if group.state == GroupState::PreparingRebalance {
                    let delay_over = group.earliest_completion.is_none_or(|t| now >= t);
                    let timed_out = group.rebalance_deadline.is_some_and(|d| now >= d);
                    if ((group.all_joined() && delay_over) || timed_out) && group.complete_join() {
                        to_persist.push((group.id.clone(), group.stored()));
                    }
                }
            }
        }
        for (group_id, stored) in to_persist {
            let _ = self.persist(&group_id, vec![Change::Group { group: group_id.clone(), state: stored }]).await;
        }
        self.expire_offsets().await;
    }

    async fn expire_offsets(&self) {
        let retention_ms = self.settings.offsets_retention.as_millis() as i64;
        let now = now_ms();
        let mut expired: Vec<(String, Vec<Change>)> = Vec::new();
        {
            let groups = self.groups.borrow();
            for partition in self.partitions.values() {
                let state = partition.state.borrow();
                for (group_id, offsets) in &state.offsets {
                    let group = groups.get(group_id);
                    if group.is_some_and(|g| g.state != GroupState::Empty) {
                        continue;
                    }
                    let empty_since = group.map(|g| g.empty_since_ms).unwrap_or(0);
                    let changes: Vec<Change> = offsets
                        .iter()
                        .filter(|(_, o)| now - o.commit_timestamp_ms.max(empty_since) > retention_ms)
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

    pub async fn close(&self) {
        for partition in self.partitions.values() {
            partition.store.close().await;
        }
    }
}

/// Topics a consumer group's members subscribe to, from their subscription metadata.
fn subscribed_topics(group: &Group) -> Vec<String> {
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Decodable;
    let protocol = group.protocol_name.clone().unwrap_or_default();
    let mut topics = Vec::new();
    for m in group.members.values() {
        let mut metadata = m.metadata_for(&protocol);
        if metadata.len() < 2 {
            continue;
        }
        let version = i16::from_be_bytes([metadata[0], metadata[1]]);
        let _ = bytes::Buf::get_i16(&mut metadata);
        if let Ok(sub) = ConsumerProtocolSubscription::decode(&mut metadata, version) {
            topics.extend(sub.topics.iter().map(|t| t.to_string()));
        }
    }
    topics.sort();
    topics.dedup();
    topics
}
