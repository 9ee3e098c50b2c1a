//! One group's membership state machine under the classic protocol, as
//! Kafka's `ClassicGroup` runs it: Empty → PreparingRebalance →
//! CompletingRebalance → Stable (and Dead), generations, protocol selection,
//! session and rebalance timeouts, static membership (KIP-345), and member ids
//! required from JoinGroup v4 (KIP-394).
//!
//! A plain type: no I/O, no channels, no clock. Every operation takes the time
//! as a [`Now`] and returns what its caller must do: answer the request now or
//! let it wait ([`JoinAnswer`], [`SyncAnswer`]); answer other members waiting
//! in JoinGroup or SyncGroup ([`Reply`], addressed by member id); persist the
//! group's metadata ([`Effects::persist`], [`SyncAnswer::Persist`]). The
//! coordinator ([`super::coordinator`]) keeps the waiting requests, the journal
//! and the periodic sweep that calls [`Group::tick`].
//!
//! What the coordinator relies on: a member has a JoinGroup (SyncGroup)
//! request waiting exactly while it is awaiting join (sync) here, and every
//! step that ends the wait emits a [`Reply`] for that member id, in order.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow::{self, Break, Continue};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, SyncGroupRequest,
    SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::clock::Now;
use super::store::{StoredGroup, StoredMember};
use sluice_core::constants::{GROUP_MEMBERS_MAX, GROUP_SESSION_TIMEOUT_MS_MAX, GROUP_SESSION_TIMEOUT_MS_MIN};
use sluice_protocol::ResponseError;

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

/// A JoinGroup request, with what can be checked before looking the group up.
#[derive(Debug, Clone)]
pub struct JoinParams {
    pub version: i16,
    /// Empty for a member joining for the first time.
    pub member_id: String,
    pub instance_id: Option<String>,
    pub protocol_type: String,
    /// (name, metadata), in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub client_id: String,
    pub client_host: String,
}

impl JoinParams {
    /// Reads a JoinGroup request, refusing an empty group id and a session
    /// timeout out of bounds before any group is looked up or created.
    pub fn from_request(
        version: i16,
        request: &JoinGroupRequest,
        client_host: String,
        client_id: String,
    ) -> Result<JoinParams, ResponseError> {
        if request.group_id.0.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        if !(GROUP_SESSION_TIMEOUT_MS_MIN..=GROUP_SESSION_TIMEOUT_MS_MAX).contains(&request.session_timeout_ms) {
            return Err(ResponseError::InvalidSessionTimeout);
        }
        // v0 has no rebalance timeout: it is the session timeout.
        let rebalance_timeout_ms = if version == 0 { request.session_timeout_ms } else { request.rebalance_timeout_ms };
        Ok(JoinParams {
            version,
            member_id: request.member_id.to_string(),
            instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
            protocol_type: request.protocol_type.to_string(),
            protocols: request.protocols.iter().map(|p| (p.name.to_string(), p.metadata.clone())).collect(),
            session_timeout: Duration::from_millis(request.session_timeout_ms as u64),
            rebalance_timeout: Duration::from_millis(rebalance_timeout_ms.max(0) as u64),
            client_id,
            client_host,
        })
    }
}

/// An answer for a member waiting in JoinGroup or SyncGroup.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Join(JoinGroupResponse),
    Sync(SyncGroupResponse),
}

/// What a step asks of the coordinator besides answering its own request.
#[derive(Debug, Default)]
pub struct Effects {
    /// Answers for waiting members, by member id, to deliver in this order.
    pub replies: Vec<(String, Reply)>,
    /// The group's metadata to make durable before the step's own answer
    /// goes out: a rebalance ended with the group empty, or a static member
    /// was replaced without one.
    pub persist: Option<StoredGroup>,
}

/// What a JoinGroup gets.
#[derive(Debug)]
pub enum JoinAnswer {
    /// This answer, at once.
    Now(JoinGroupResponse),
    /// The member, under this id, waits for the rebalance to complete; its
    /// answer comes later as a [`Reply::Join`].
    Wait { member_id: String },
}

/// What a SyncGroup gets.
#[derive(Debug)]
pub enum SyncAnswer {
    /// This answer, at once.
    Now(SyncGroupResponse),
    /// The member waits for the leader's assignment; its answer comes later as a [`Reply::Sync`].
    Wait,
    /// The leader's assignment ended the rebalance: persist `stored`, then
    /// answer the leader and every waiting member. If persisting fails, they
    /// all get the error instead.
    Persist { stored: StoredGroup, leader: SyncGroupResponse, followers: Vec<(String, SyncGroupResponse)> },
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol_name: String,
    /// (member id, instance id, client id, client host, metadata, assignment)
    pub members: Vec<(String, Option<String>, String, String, Bytes, Bytes)>,
}

/// A member crossing between a classic group and a consumer group (Kafka 4's
/// online upgrade and downgrade), with what both protocols need of it.
#[derive(Debug, Clone, PartialEq)]
pub struct MigratingMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    /// (name, metadata), in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// Its share of the last assignment, as the consumer protocol serializes it.
    pub assignment: Bytes,
}

#[derive(Debug, Clone)]
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
    /// The JoinGroup version of the member's request waiting for the rebalance to complete.
    awaiting_join: Option<i16>,
    /// Order in which members joined this round (the first becomes leader if needed).
    join_order: u64,
    /// Whether the member waits in SyncGroup for the leader's assignment.
    awaiting_sync: bool,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(n, _)| n == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }
}

/// One group: its members, generation and where it is in a rebalance.
#[derive(Debug, Clone)]
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
    /// The first rebalance of an empty group waits until then for more members.
    earliest_completion: Option<Instant>,
    /// `group.initial.rebalance.delay.ms`.
    initial_rebalance_delay: Duration,
    join_counter: u64,
    empty_since_ms: i64,
}

/// A step of JoinGroup: go on (with a value), or answer the request now.
type JoinStep<T> = ControlFlow<JoinGroupResponse, T>;

pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// A JoinGroup error, as Kafka answers it.
pub fn join_error(code: ResponseError, member_id: &str) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(code.code())
        .with_generation_id(-1)
        .with_member_id(str_bytes(member_id))
        .with_protocol_name(None)
}

/// The members a LeaveGroup names, (member id, instance id); before v3, one member by id.
pub(crate) fn leave_identities(version: i16, request: &LeaveGroupRequest) -> Vec<(String, Option<String>)> {
    if version >= 3 {
        request
            .members
            .iter()
            .map(|m| (m.member_id.to_string(), m.group_instance_id.as_ref().map(|s| s.to_string())))
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    }
}

/// One member's outcome in a LeaveGroup answer.
pub(crate) fn leave_result(member_id: &str, instance_id: Option<&str>, code: i16) -> MemberResponse {
    MemberResponse::default()
        .with_member_id(str_bytes(member_id))
        .with_group_instance_id(instance_id.map(str_bytes))
        .with_error_code(code)
}

/// A LeaveGroup answer: each member's outcome from v3, before that the one member's error.
pub(crate) fn leave_response(version: i16, results: Vec<MemberResponse>) -> LeaveGroupResponse {
    if version >= 3 {
        LeaveGroupResponse::default().with_members(results)
    } else {
        LeaveGroupResponse::default().with_error_code(results[0].error_code)
    }
}

fn sync_error(code: ResponseError) -> SyncGroupResponse {
    SyncGroupResponse::default().with_error_code(code.code())
}

impl Group {
    /// A new, empty group.
    pub fn new(id: &str, now: Now, initial_rebalance_delay: Duration) -> Group {
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
            initial_rebalance_delay,
            join_counter: 0,
            empty_since_ms: now.wall_ms,
        }
    }

    /// The group as persisted at its last completed rebalance: Stable if it
    /// has members, each of which gets a full session to come back.
    pub fn from_stored(id: &str, stored: &StoredGroup, now: Now, initial_rebalance_delay: Duration) -> Group {
        let mut group = Group::new(id, now, initial_rebalance_delay);
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
                    last_heartbeat: now.instant,
                    awaiting_join: None,
                    join_order: 0,
                    awaiting_sync: false,
                },
            );
        }
        group
    }

    /// The group a consumer group becomes when its last member speaking the
    /// consumer protocol leaves (Kafka's `ClassicGroup.fromConsumerGroup`):
    /// its members with the assignment they were last given, at the group
    /// epoch as generation, and at once rebalancing so that they rejoin.
    pub fn from_consumer_group(
        id: &str,
        generation: i32,
        members: Vec<MigratingMember>,
        now: Now,
        initial_rebalance_delay: Duration,
        rebalance: bool,
    ) -> Group {
        let mut group = Group::new(id, now, initial_rebalance_delay);
        group.generation = generation;
        group.protocol_type = Some("consumer".to_string());
        for m in members {
            if let Some(instance) = &m.instance_id {
                group.static_members.insert(instance.clone(), m.id.clone());
            }
            group.leader.get_or_insert_with(|| m.id.clone());
            group.join_counter += 1;
            group.members.insert(
                m.id.clone(),
                Member {
                    id: m.id,
                    instance_id: m.instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout: m.session_timeout,
                    rebalance_timeout: m.rebalance_timeout,
                    protocols: m.protocols,
                    assignment: m.assignment,
                    last_heartbeat: now.instant,
                    awaiting_join: None,
                    join_order: group.join_counter,
                    awaiting_sync: false,
                },
            );
        }
        if group.members.is_empty() {
            return group;
        }
        group.state = GroupState::Stable;
        group.protocol_name = group.select_protocol();
        if rebalance {
            group.prepare_rebalance(now, &mut Vec::new());
        }
        group
    }

    /// The members as a consumer group takes them over, with the metadata of
    /// the group's protocol first; empty unless the group uses the consumer protocol.
    pub fn migrating_members(&self) -> Vec<MigratingMember> {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        self.members
            .values()
            .map(|m| {
                let mut protocols = m.protocols.clone();
                if let Some(i) = protocols.iter().position(|(n, _)| *n == protocol) {
                    let chosen = protocols.remove(i);
                    protocols.insert(0, chosen);
                }
                MigratingMember {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout: m.session_timeout,
                    rebalance_timeout: m.rebalance_timeout,
                    protocols,
                    assignment: m.assignment.clone(),
                }
            })
            .collect()
    }

    /// The group's metadata as persisted.
    pub fn stored(&self) -> StoredGroup {
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

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    /// When the group last became empty, in wall-clock ms (for offset expiry).
    pub fn empty_since_ms(&self) -> i64 {
        self.empty_since_ms
    }

    /// Member ids, in order.
    pub fn member_ids(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    /// Whether the member has a JoinGroup waiting for the rebalance to complete.
    pub fn is_awaiting_join(&self, member_id: &str) -> bool {
        self.members.get(member_id).is_some_and(|m| m.awaiting_join.is_some())
    }

    /// Whether the member has a SyncGroup waiting for the leader's assignment.
    pub fn is_awaiting_sync(&self, member_id: &str) -> bool {
        self.members.get(member_id).is_some_and(|m| m.awaiting_sync)
    }

    // ---- JoinGroup ----------------------------------------------------------

    /// JoinGroup: admit the member (handing out or checking its id), answer
    /// at once if nothing changes for it, otherwise add or update it and
    /// start or complete a rebalance.
    pub fn join(&mut self, now: Now, params: JoinParams) -> (JoinAnswer, Effects) {
        let mut effects = Effects::default();
        let answer = match self.join_steps(now, params, &mut effects) {
            Break(response) => JoinAnswer::Now(response),
            Continue(member_id) => JoinAnswer::Wait { member_id },
        };
        (answer, effects)
    }

    fn join_steps(&mut self, now: Now, params: JoinParams, effects: &mut Effects) -> JoinStep<String> {
        self.check_joinable(&params)?;
        let member_id = if params.member_id.is_empty() {
            self.join_new_member(now, &params, effects)?
        } else {
            self.check_known_member(&params)?
        };
        self.pending.remove(&member_id);
        self.check_room_for(&member_id)?;
        self.answer_unchanged_member(&member_id, &params)?;
        self.add_or_update_member(now, &member_id, params, effects);
        self.rebalance_for_join(now, member_id, effects)
    }

    /// A dead group takes nobody; a new member must share the group's
    /// protocol type and at least one protocol with every member.
    fn check_joinable(&self, params: &JoinParams) -> JoinStep<()> {
        if self.state == GroupState::Dead {
            return Break(join_error(ResponseError::CoordinatorNotAvailable, &params.member_id));
        }
        if !self.supports(&params.protocol_type, &params.protocols) {
            return Break(join_error(ResponseError::InconsistentGroupProtocol, &params.member_id));
        }
        Continue(())
    }

    /// A member joining without an id gets one. A static member takes over
    /// its instance's old identity. Anyone else needs room in the group
    /// before an id is handed out; from v4 a dynamic member is then told to
    /// join again with its new id (KIP-394), which is held for one session.
    fn join_new_member(&mut self, now: Now, params: &JoinParams, effects: &mut Effects) -> JoinStep<String> {
        let client = if params.client_id.is_empty() { "member" } else { &params.client_id };
        let new_id = format!("{client}-{}", uuid::Uuid::new_v4());
        if let Some(instance) = params.instance_id.as_deref().filter(|i| self.static_members.contains_key(*i)) {
            return self.replace_static_member(now, instance, new_id, params, effects);
        }
        self.check_room_for(&new_id)?;
        if params.instance_id.is_none() && params.version >= 4 {
            self.pending.insert(new_id.clone(), now.instant + params.session_timeout);
            return Break(join_error(ResponseError::MemberIdRequired, &new_id));
        }
        Continue(new_id)
    }

    /// KIP-345: a static member that restarted takes over its old member
    /// under a new id, fencing the old id (a request of the old one still
    /// waiting is answered FENCED_INSTANCE_ID), with the protocols and
    /// timeouts it joins with now. If the group is stable and would still
    /// select the same protocol, it gets the current generation without a
    /// rebalance, once the new id is persisted (or a broker restart would
    /// fence it): its subscription's bytes may differ (owned partitions, say)
    /// without that costing the group a rebalance, as in Kafka. While the
    /// leader assigns partitions, the assignment may name the old id: the
    /// group rebalances again, as Kafka's does.
    fn replace_static_member(
        &mut self,
        now: Now,
        instance: &str,
        new_id: String,
        params: &JoinParams,
        effects: &mut Effects,
    ) -> JoinStep<String> {
        let old = self.static_members[instance].clone();
        let previous_leader = self.leader.clone().unwrap_or_default();
        if let Some(mut member) = self.members.remove(&old) {
            member.id = new_id.clone();
            if member.awaiting_join.take().is_some() {
                effects.replies.push((old.clone(), Reply::Join(join_error(ResponseError::FencedInstanceId, &old))));
            }
            if std::mem::take(&mut member.awaiting_sync) {
                effects.replies.push((old.clone(), Reply::Sync(sync_error(ResponseError::FencedInstanceId))));
            }
            member.protocols = params.protocols.clone();
            member.session_timeout = params.session_timeout;
            member.rebalance_timeout = params.rebalance_timeout;
            member.last_heartbeat = now.instant;
            self.members.insert(new_id.clone(), member);
        }
        self.static_members.insert(instance.to_string(), new_id.clone());
        if self.leader.as_deref() == Some(old.as_str()) {
            self.leader = Some(new_id.clone());
        }
        let replaced = self.members.contains_key(&new_id);
        match self.state {
            GroupState::Stable if replaced && self.select_protocol() == self.protocol_name => {
                effects.persist = Some(self.stored());
                Break(self.static_rejoin_response(params.version, &new_id, &previous_leader))
            }
            GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, &mut effects.replies);
                Continue(new_id)
            }
            _ => Continue(new_id),
        }
    }

    /// The answer to a static member that took its place back in a stable
    /// group. From v9 (KIP-814) a returning leader is told it leads, with the
    /// members, and to skip the assignment it has no need to redo; before
    /// v9 the answer names the previous leader, so no member assigns again.
    fn static_rejoin_response(&self, version: i16, member_id: &str, previous_leader: &str) -> JoinGroupResponse {
        if version < 9 {
            return self.join_response(version, member_id, Vec::new()).with_leader(str_bytes(previous_leader));
        }
        let is_leader = self.leader.as_deref() == Some(member_id);
        let members = if is_leader { self.member_metadata() } else { Vec::new() };
        self.join_response(version, member_id, members).with_skip_assignment(is_leader)
    }

    /// A member joining with an id must not be a fenced static member, and
    /// must be a member or hold an id handed out by [`Self::join_new_member`].
    /// The instance is checked first, as Kafka does: the old id of a replaced
    /// static member is fenced, not unknown.
    fn check_known_member(&self, params: &JoinParams) -> JoinStep<String> {
        let member_id = &params.member_id;
        if self.fenced(member_id, params.instance_id.as_deref()) {
            return Break(join_error(ResponseError::FencedInstanceId, member_id));
        }
        if !self.members.contains_key(member_id) && !self.pending.contains_key(member_id) {
            return Break(join_error(ResponseError::UnknownMemberId, member_id));
        }
        Continue(member_id.clone())
    }

    /// `group.max.size`: a new member may not make the group larger. Kafka
    /// answers this with no member id.
    fn check_room_for(&self, member_id: &str) -> JoinStep<()> {
        if !self.members.contains_key(member_id) && self.members.len() >= GROUP_MEMBERS_MAX {
            return Break(join_error(ResponseError::GroupMaxSizeReached, ""));
        }
        Continue(())
    }

    /// A member rejoining a completing or stable group with the same
    /// protocols (it lost the JoinGroup answer, say) gets the current
    /// generation again. The leader of a stable group rejoining forces a
    /// rebalance instead, as in Kafka: it may have seen metadata change.
    fn answer_unchanged_member(&self, member_id: &str, params: &JoinParams) -> JoinStep<()> {
        if !matches!(self.state, GroupState::Stable | GroupState::CompletingRebalance) {
            return Continue(());
        }
        let Some(member) = self.members.get(member_id) else { return Continue(()) };
        let is_leader = self.leader.as_deref() == Some(member_id);
        if member.protocols != params.protocols || (is_leader && self.state == GroupState::Stable) {
            return Continue(());
        }
        let members = if is_leader { self.member_metadata() } else { Vec::new() };
        Break(self.join_response(params.version, member_id, members))
    }

    /// Records the join: a known member's protocols and timeouts are updated
    /// (a JoinGroup of it still waiting is superseded and answered
    /// UNKNOWN_MEMBER_ID), a new member is added. Either way it now awaits the
    /// rebalance.
    fn add_or_update_member(&mut self, now: Now, member_id: &str, params: JoinParams, effects: &mut Effects) {
        self.join_counter += 1;
        let join_order = self.join_counter;
        if let Some(member) = self.members.get_mut(member_id) {
            member.protocols = params.protocols;
            member.session_timeout = params.session_timeout;
            member.rebalance_timeout = params.rebalance_timeout;
            member.last_heartbeat = now.instant;
            member.join_order = join_order;
            if member.awaiting_join.replace(params.version).is_some() {
                let superseded = join_error(ResponseError::UnknownMemberId, member_id);
                effects.replies.push((member_id.to_string(), Reply::Join(superseded)));
            }
            return;
        }
        if self.members.is_empty() {
            self.protocol_type = Some(params.protocol_type);
        }
        if let Some(instance) = &params.instance_id {
            self.static_members.insert(instance.clone(), member_id.to_string());
        }
        let member = Member {
            id: member_id.to_string(),
            instance_id: params.instance_id,
            client_id: params.client_id,
            client_host: params.client_host,
            session_timeout: params.session_timeout,
            rebalance_timeout: params.rebalance_timeout,
            protocols: params.protocols,
            assignment: Bytes::new(),
            last_heartbeat: now.instant,
            awaiting_join: Some(params.version),
            join_order,
            awaiting_sync: false,
        };
        self.members.insert(member_id.to_string(), member);
    }

    /// Starts a rebalance unless one is under way, and completes it if this
    /// was the last member it waited for. The joining member then gets its
    /// answer at once; otherwise it waits.
    fn rebalance_for_join(&mut self, now: Now, member_id: String, effects: &mut Effects) -> JoinStep<String> {
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now, &mut effects.replies);
        }
        if !self.all_joined_in_time(now) {
            return Continue(member_id);
        }
        let mut completed = Vec::new();
        let became_empty = self.complete_join(now, &mut completed);
        debug_assert!(!became_empty, "a joining member keeps the group non-empty");
        let own = completed.iter().position(|(id, reply)| *id == member_id && matches!(reply, Reply::Join(_)));
        let own = own.map(|at| completed.remove(at));
        effects.replies.extend(completed);
        match own {
            Some((_, Reply::Join(response))) => Break(response),
            _ => unreachable!("member {member_id} awaited the rebalance it completed"),
        }
    }

    // ---- rebalances -----------------------------------------------------------

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

    /// Enters PreparingRebalance: members waiting in SyncGroup are told to
    /// rejoin (REBALANCE_IN_PROGRESS), and the deadline is the longest
    /// rebalance timeout. The first rebalance of an empty group also waits
    /// `group.initial.rebalance.delay.ms` for more members.
    fn prepare_rebalance(&mut self, now: Now, replies: &mut Vec<(String, Reply)>) {
        if self.state == GroupState::CompletingRebalance {
            for m in self.members.values_mut() {
                if std::mem::take(&mut m.awaiting_sync) {
                    replies.push((m.id.clone(), Reply::Sync(sync_error(ResponseError::RebalanceInProgress))));
                }
            }
        }
        let was_empty = self.state == GroupState::Empty;
        self.state = GroupState::PreparingRebalance;
        let timeout = self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or(Duration::ZERO);
        self.rebalance_deadline = Some(now.instant + timeout);
        self.earliest_completion = was_empty.then(|| now.instant + self.initial_rebalance_delay.min(timeout));
    }

    fn all_joined(&self) -> bool {
        self.members.values().all(|m| m.awaiting_join.is_some())
    }

    /// Whether a rebalance under way may complete now because every member
    /// has joined (after the initial delay, for a group that was empty).
    fn all_joined_in_time(&self, now: Now) -> bool {
        self.state == GroupState::PreparingRebalance
            && self.all_joined()
            && self.earliest_completion.is_none_or(|t| now.instant >= t)
    }

    /// Ends the join phase: members that did not rejoin are dropped, a new
    /// generation begins, every waiting member gets its JoinGroup answer and
    /// the leader every member's metadata. Returns whether the group became
    /// empty (its metadata must then be persisted).
    fn complete_join(&mut self, now: Now, replies: &mut Vec<(String, Reply)>) -> bool {
        let gone: Vec<String> =
            self.members.values().filter(|m| m.awaiting_join.is_none()).map(|m| m.id.clone()).collect();
        for id in gone {
            self.remove_member(&id, replies);
        }
        self.generation += 1;
        self.rebalance_deadline = None;
        self.earliest_completion = None;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol_name = None;
            self.leader = None;
            self.empty_since_ms = now.wall_ms;
            return true;
        }
        self.protocol_name = self.select_protocol();
        if !self.leader.as_ref().is_some_and(|l| self.members.contains_key(l)) {
            self.leader = self.members.values().min_by_key(|m| m.join_order).map(|m| m.id.clone());
        }
        self.state = GroupState::CompletingRebalance;
        let mut joined = Vec::new();
        for m in self.members.values_mut() {
            m.last_heartbeat = now.instant;
            if let Some(version) = m.awaiting_join.take() {
                joined.push((m.id.clone(), version));
            }
        }
        let all = self.member_metadata();
        for (id, version) in joined {
            let members = if self.leader.as_deref() == Some(id.as_str()) { all.clone() } else { Vec::new() };
            let response = self.join_response(version, &id, members);
            replies.push((id, Reply::Join(response)));
        }
        false
    }

    /// Every member's metadata for the selected protocol, as the leader gets it.
    fn member_metadata(&self) -> Vec<JoinGroupResponseMember> {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        self.members
            .values()
            .map(|m| {
                JoinGroupResponseMember::default()
                    .with_member_id(str_bytes(&m.id))
                    .with_group_instance_id(m.instance_id.as_deref().map(str_bytes))
                    .with_metadata(m.metadata_for(&protocol))
            })
            .collect()
    }

    /// A successful JoinGroup answer for the current generation.
    fn join_response(&self, version: i16, member_id: &str, members: Vec<JoinGroupResponseMember>) -> JoinGroupResponse {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        let leader = self.leader.as_deref().unwrap_or_default();
        let mut response = JoinGroupResponse::default()
            .with_generation_id(self.generation)
            .with_protocol_name(Some(str_bytes(protocol)))
            .with_leader(str_bytes(leader))
            .with_member_id(str_bytes(member_id))
            .with_members(members);
        if version >= 7 {
            response = response.with_protocol_type(self.protocol_type.as_deref().map(str_bytes));
        }
        response
    }

    /// Removes a member; a request of it still waiting is answered UNKNOWN_MEMBER_ID.
    fn remove_member(&mut self, id: &str, replies: &mut Vec<(String, Reply)>) {
        if let Some(m) = self.members.remove(id) {
            if let Some(instance) = &m.instance_id {
                if self.static_members.get(instance).is_some_and(|mid| mid == id) {
                    self.static_members.remove(instance);
                }
            }
            if m.awaiting_join.is_some() {
                let response = JoinGroupResponse::default().with_error_code(ResponseError::UnknownMemberId.code());
                replies.push((id.to_string(), Reply::Join(response)));
            }
            if m.awaiting_sync {
                replies.push((id.to_string(), Reply::Sync(sync_error(ResponseError::UnknownMemberId))));
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

    // ---- SyncGroup, Heartbeat, LeaveGroup, OffsetCommit --------------------------

    /// SyncGroup: followers wait for the leader's assignment; the leader's
    /// assignment makes the group stable, once persisted.
    pub fn sync(&mut self, version: i16, request: &SyncGroupRequest) -> SyncAnswer {
        let member_id = request.member_id.as_str();
        if let Err(code) = self.check_sync(version, request) {
            return SyncAnswer::Now(sync_error(code));
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => SyncAnswer::Now(sync_error(ResponseError::UnknownMemberId)),
            GroupState::PreparingRebalance => SyncAnswer::Now(sync_error(ResponseError::RebalanceInProgress)),
            GroupState::Stable => SyncAnswer::Now(self.sync_response(version, member_id)),
            GroupState::CompletingRebalance if self.leader.as_deref() != Some(member_id) => {
                self.members.get_mut(member_id).expect("checked").awaiting_sync = true;
                SyncAnswer::Wait
            }
            GroupState::CompletingRebalance => self.complete_sync(version, request),
        }
    }

    /// Kafka's checks of a SyncGroup: the instance first (a replaced static
    /// member is fenced), then the member, the generation and the protocol.
    fn check_sync(&self, version: i16, request: &SyncGroupRequest) -> Result<(), ResponseError> {
        let member_id = request.member_id.as_str();
        if self.fenced(member_id, request.group_instance_id.as_deref()) {
            return Err(ResponseError::FencedInstanceId);
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if request.generation_id != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        if version >= 5 {
            let type_ok = request.protocol_type.as_deref().is_none_or(|t| Some(t) == self.protocol_type.as_deref());
            let name_ok = request.protocol_name.as_deref().is_none_or(|n| Some(n) == self.protocol_name.as_deref());
            if !type_ok || !name_ok {
                return Err(ResponseError::InconsistentGroupProtocol);
            }
        }
        Ok(())
    }

    /// The leader's SyncGroup: every member gets its part of the assignment
    /// (none if the leader gave it none) and the group becomes stable.
    fn complete_sync(&mut self, version: i16, request: &SyncGroupRequest) -> SyncAnswer {
        let assignments: HashMap<&str, &Bytes> =
            request.assignments.iter().map(|a| (a.member_id.as_str(), &a.assignment)).collect();
        for m in self.members.values_mut() {
            m.assignment = assignments.get(m.id.as_str()).map(|a| (*a).clone()).unwrap_or_default();
        }
        self.state = GroupState::Stable;
        let mut waiting = Vec::new();
        for m in self.members.values_mut() {
            if std::mem::take(&mut m.awaiting_sync) {
                waiting.push(m.id.clone());
            }
        }
        let followers = waiting
            .into_iter()
            .map(|id| {
                let response = self.sync_response(version, &id);
                (id, response)
            })
            .collect();
        let leader = self.sync_response(version, request.member_id.as_str());
        SyncAnswer::Persist { stored: self.stored(), leader, followers }
    }

    /// A member's assignment, with the protocol from v5.
    fn sync_response(&self, version: i16, member_id: &str) -> SyncGroupResponse {
        let assignment = self.members.get(member_id).map(|m| m.assignment.clone()).unwrap_or_default();
        let mut response = SyncGroupResponse::default().with_assignment(assignment);
        if version >= 5 {
            response = response
                .with_protocol_type(self.protocol_type.as_deref().map(str_bytes))
                .with_protocol_name(self.protocol_name.as_deref().map(str_bytes));
        }
        response
    }

    /// Heartbeat: keeps the member's session alive and tells it whether to rejoin.
    pub fn heartbeat(&mut self, now: Now, request: &HeartbeatRequest) -> Result<(), ResponseError> {
        let member_id = request.member_id.as_str();
        if self.fenced(member_id, request.group_instance_id.as_deref()) {
            return Err(ResponseError::FencedInstanceId);
        }
        let Some(member) = self.members.get_mut(member_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        member.last_heartbeat = now.instant;
        match self.state {
            GroupState::Empty | GroupState::Dead => Err(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            _ if request.generation_id != self.generation => Err(ResponseError::IllegalGeneration),
            _ => Ok(()),
        }
    }

    /// LeaveGroup: members leave (a static one may leave by instance id
    /// alone) and the rest rebalance.
    pub fn leave(&mut self, now: Now, version: i16, request: &LeaveGroupRequest) -> (LeaveGroupResponse, Effects) {
        let identities = leave_identities(version, request);
        let mut effects = Effects::default();
        let mut results = Vec::new();
        let mut any_left = false;
        for (member_id, instance_id) in &identities {
            let code = match self.leaving_member(member_id, instance_id.as_deref()) {
                Ok(id) => {
                    self.remove_member(&id, &mut effects.replies);
                    any_left = true;
                    0
                }
                Err(code) => code.code(),
            };
            results.push(leave_result(member_id, instance_id.as_deref(), code));
        }
        if any_left {
            if matches!(self.state, GroupState::Stable | GroupState::CompletingRebalance) {
                self.prepare_rebalance(now, &mut effects.replies);
            }
            if self.all_joined_in_time(now) && self.complete_join(now, &mut effects.replies) {
                effects.persist = Some(self.stored());
            }
        }
        (leave_response(version, results), effects)
    }

    /// The member id a LeaveGroup identity names.
    fn leaving_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<String, ResponseError> {
        match instance_id {
            Some(instance) => match self.static_members.get(instance) {
                Some(current) if member_id.is_empty() || current == member_id => Ok(current.clone()),
                Some(_) => Err(ResponseError::FencedInstanceId),
                None => Err(ResponseError::UnknownMemberId),
            },
            None if self.members.contains_key(member_id) => Ok(member_id.to_string()),
            None => Err(ResponseError::UnknownMemberId),
        }
    }

    /// Kafka's checks of a member committing offsets (OffsetCommit,
    /// TxnOffsetCommit); a commit also counts as a heartbeat. A negative
    /// generation to an empty group is a consumer that assigns its own partitions.
    pub fn admit_commit(
        &mut self,
        now: Now,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if generation < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if self.fenced(member_id, instance_id) {
            return Err(ResponseError::FencedInstanceId);
        }
        let Some(member) = self.members.get_mut(member_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        member.last_heartbeat = now.instant;
        Ok(())
    }

    // ---- time -----------------------------------------------------------------------

    /// What time does to the group: handed-out member ids expire, members
    /// whose session lapsed are removed (and the rest rebalance), and a
    /// rebalance completes once everyone joined or its time is up.
    pub fn tick(&mut self, now: Now) -> Effects {
        let mut effects = Effects::default();
        self.pending.retain(|_, expiry| *expiry > now.instant);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && now.instant.duration_since(m.last_heartbeat) > m.session_timeout)
            .map(|m| m.id.clone())
            .collect();
        if !expired.is_empty() {
            for id in &expired {
                tracing::info!(group = %self.id, member = %id, "member session expired");
                self.remove_member(id, &mut effects.replies);
            }
            if matches!(self.state, GroupState::Stable | GroupState::CompletingRebalance) {
                self.prepare_rebalance(now, &mut effects.replies);
            }
        }
        let timed_out = self.rebalance_deadline.is_some_and(|d| now.instant >= d);
        let due = self.all_joined_in_time(now) || (self.state == GroupState::PreparingRebalance && timed_out);
        if due && self.complete_join(now, &mut effects.replies) {
            effects.persist = Some(self.stored());
        }
        effects
    }

    // ---- reading ------------------------------------------------------------------------

    /// The group as DescribeGroups shows it: protocol, metadata and
    /// assignments only once stable.
    pub fn description(&self) -> GroupDescription {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let stable = self.state == GroupState::Stable;
        GroupDescription {
            state: self.state.name(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol_name: if stable { protocol.clone() } else { String::new() },
            members: self
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
        }
    }

    /// Topics a consumer group's members subscribe to, from their subscription metadata.
    pub fn subscribed_topics(&self) -> Vec<String> {
        use kafka_protocol::messages::ConsumerProtocolSubscription;
        use kafka_protocol::protocol::Decodable;
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let mut topics = Vec::new();
        for m in self.members.values() {
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
}

#[cfg(test)]
mod tests {
    //! One group at a time, with no executor, socket or file: requests go in,
    //! answers and replies come out, and time moves only when a test moves it.
    //! Every expectation is what Kafka 4's classic group coordinator answers.

    use super::*;
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    use kafka_protocol::messages::GroupId;

    const SESSION: Duration = Duration::from_secs(10);
    const REBALANCE: Duration = Duration::from_secs(30);
    const INITIAL_DELAY: Duration = Duration::from_secs(3);
    /// The newest versions Sluice serves.
    const JOIN_V: i16 = 9;
    const SYNC_V: i16 = 5;
    const LEAVE_V: i16 = 5;

    /// The test's clock: an arbitrary start, moved only by `advance`.
    struct Clock(Now);

    impl Clock {
        fn start() -> Clock {
            Clock(Now::system())
        }
        fn now(&self) -> Now {
            self.0
        }
        fn advance(&mut self, elapsed: Duration) {
            self.0 = self.0.after(elapsed);
        }
    }

    fn join_params(version: i16, member_id: &str, instance: Option<&str>, protocols: &[&str]) -> JoinParams {
        join_params_typed(version, member_id, instance, "consumer", protocols)
    }

    fn join_params_typed(
        version: i16,
        member_id: &str,
        instance: Option<&str>,
        protocol_type: &str,
        protocols: &[&str],
    ) -> JoinParams {
        let request = JoinGroupRequest::default()
            .with_group_id(GroupId(str_bytes("g")))
            .with_member_id(str_bytes(member_id))
            .with_group_instance_id(instance.map(str_bytes))
            .with_protocol_type(str_bytes(protocol_type))
            .with_session_timeout_ms(SESSION.as_millis() as i32)
            .with_rebalance_timeout_ms(REBALANCE.as_millis() as i32)
            .with_protocols(
                protocols
                    .iter()
                    .map(|p| {
                        JoinGroupRequestProtocol::default()
                            .with_name(str_bytes(p))
                            .with_metadata(Bytes::from(format!("subscription of {}", instance.unwrap_or("a member"))))
                    })
                    .collect(),
            );
        JoinParams::from_request(version, &request, "/127.0.0.1".into(), "client".into()).unwrap()
    }

    fn now_answer(answer: JoinAnswer) -> JoinGroupResponse {
        match answer {
            JoinAnswer::Now(response) => response,
            JoinAnswer::Wait { member_id } => panic!("{member_id} waits; an answer at once was expected"),
        }
    }

    fn waits(answer: JoinAnswer) -> String {
        match answer {
            JoinAnswer::Wait { member_id } => member_id,
            JoinAnswer::Now(response) => panic!("answered at once: {response:?}"),
        }
    }

    /// The JoinGroup reply for a member among a step's replies.
    fn join_reply<'a>(replies: &'a [(String, Reply)], member_id: &str) -> &'a JoinGroupResponse {
        let found = replies.iter().find_map(|(id, reply)| match reply {
            Reply::Join(response) if id == member_id => Some(response),
            _ => None,
        });
        found.unwrap_or_else(|| panic!("no JoinGroup reply for {member_id} in {replies:?}"))
    }

    fn sync_reply<'a>(replies: &'a [(String, Reply)], member_id: &str) -> &'a SyncGroupResponse {
        let found = replies.iter().find_map(|(id, reply)| match reply {
            Reply::Sync(response) if id == member_id => Some(response),
            _ => None,
        });
        found.unwrap_or_else(|| panic!("no SyncGroup reply for {member_id} in {replies:?}"))
    }

    fn code(error: ResponseError) -> i16 {
        error.code()
    }

    /// A dynamic member's first join from v4: it is handed an id (KIP-394)
    /// and joins again with it. Returns the id and the second join's outcome.
    fn join_dynamic(group: &mut Group, now: Now, protocols: &[&str]) -> (String, JoinAnswer, Effects) {
        let required = now_answer(group.join(now, join_params(JOIN_V, "", None, protocols)).0);
        assert_eq!(required.error_code, code(ResponseError::MemberIdRequired));
        let member_id = required.member_id.to_string();
        let (answer, effects) = group.join(now, join_params(JOIN_V, &member_id, None, protocols));
        (member_id, answer, effects)
    }

    fn sync_request(member_id: &str, generation: i32, assignments: &[(&str, &str)]) -> SyncGroupRequest {
        SyncGroupRequest::default()
            .with_group_id(GroupId(str_bytes("g")))
            .with_member_id(str_bytes(member_id))
            .with_generation_id(generation)
            .with_protocol_type(Some(str_bytes("consumer")))
            .with_protocol_name(Some(str_bytes("range")))
            .with_assignments(
                assignments
                    .iter()
                    .map(|(m, a)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(str_bytes(m))
                            .with_assignment(Bytes::from(a.to_string()))
                    })
                    .collect(),
            )
    }

    fn heartbeat(
        group: &mut Group,
        now: Now,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(str_bytes("g")))
            .with_member_id(str_bytes(member_id))
            .with_group_instance_id(instance.map(str_bytes))
            .with_generation_id(generation);
        group.heartbeat(now, &request)
    }

    fn leave(group: &mut Group, now: Now, members: &[(&str, Option<&str>)]) -> (Vec<i16>, Effects) {
        let request = LeaveGroupRequest::default().with_group_id(GroupId(str_bytes("g"))).with_members(
            members
                .iter()
                .map(|(m, i)| {
                    MemberIdentity::default().with_member_id(str_bytes(m)).with_group_instance_id(i.map(str_bytes))
                })
                .collect(),
        );
        let (response, effects) = group.leave(now, LEAVE_V, &request);
        (response.members.iter().map(|m| m.error_code).collect(), effects)
    }

    /// A stable group at generation 1 whose members joined in this order
    /// (`Some(instance)` for a static member); the first is the leader.
    fn stable_group(clock: &mut Clock, members: &[Option<&str>]) -> (Group, Vec<String>) {
        let mut group = Group::new("g", clock.now(), INITIAL_DELAY);
        let mut ids = Vec::new();
        for instance in members {
            let id = match instance {
                None => waits(join_dynamic(&mut group, clock.now(), &["range"]).1),
                Some(i) => waits(group.join(clock.now(), join_params(JOIN_V, "", Some(i), &["range"])).0),
            };
            ids.push(id);
        }
        clock.advance(INITIAL_DELAY);
        let effects = group.tick(clock.now());
        assert_eq!(effects.replies.len(), ids.len());
        let assignments: Vec<(&str, &str)> = ids.iter().map(|id| (id.as_str(), "assigned")).collect();
        let SyncAnswer::Persist { leader, followers, .. } = group.sync(SYNC_V, &sync_request(&ids[0], 1, &assignments))
        else {
            panic!("the leader's assignment is persisted");
        };
        assert_eq!((leader.error_code, followers.len()), (0, 0));
        assert_eq!((group.state(), group.generation()), (GroupState::Stable, 1));
        (group, ids)
    }

    #[test]
    fn a_first_join_from_v4_is_told_to_join_again_with_a_member_id() {
        let clock = Clock::start();
        let mut group = Group::new("g", clock.now(), INITIAL_DELAY);
        let (answer, effects) = group.join(clock.now(), join_params(JOIN_V, "", None, &["range"]));
        let required = now_answer(answer);
        assert_eq!(required.error_code, code(ResponseError::MemberIdRequired));
        assert_eq!(required.generation_id, -1);
        assert!(required.member_id.starts_with("client-"), "id from the client id: {}", required.member_id.as_str());
        assert!(effects.replies.is_empty());
        // Nobody joined yet: the group stays empty and no rebalance starts.
        assert_eq!((group.state(), group.member_ids().count()), (GroupState::Empty, 0));

        let member_id = required.member_id.to_string();
        let answer = group.join(clock.now(), join_params(JOIN_V, &member_id, None, &["range"])).0;
        assert_eq!(waits(answer), member_id);
        assert_eq!(group.state(), GroupState::PreparingRebalance);

        // An id the coordinator never handed out is refused.
        let unknown = now_answer(group.join(clock.now(), join_params(JOIN_V, "made-up", None, &["range"])).0);
        assert_eq!(unknown.error_code, code(ResponseError::UnknownMemberId));
    }

    #[test]
    fn before_v4_a_first_join_is_admitted_at_once() {
        let clock = Clock::start();
        let mut group = Group::new("g", clock.now(), INITIAL_DELAY);
        let member_id = waits(group.join(clock.now(), join_params(3, "", None, &["range"])).0);
        assert!(member_id.starts_with("client-"));
        assert_eq!(group.member_ids().collect::<Vec<_>>(), [member_id.as_str()]);
        assert_eq!(group.state(), GroupState::PreparingRebalance);
    }

    #[test]
    fn a_member_id_handed_out_expires_after_a_session_unused() {
        let mut clock = Clock::start();
        let mut group = Group::new("g", clock.now(), INITIAL_DELAY);
        let required = now_answer(group.join(clock.now(), join_params(JOIN_V, "", None, &["range"])).0);
        clock.advance(SESSION + Duration::from_millis(1));
        group.tick(clock.now());
        let late = now_answer(group.join(clock.now(), join_params(JOIN_V, &required.member_id, None, &["range"])).0);
        assert_eq!(late.error_code, code(ResponseError::UnknownMemberId));
        assert_eq!(group.state(), GroupState::Empty);
    }

    #[test]
    fn join_elects_the_first_member_leader_and_sync_hands_out_assignments() {
        let mut clock = Clock::start();
        let mut group = Group::new("g", clock.now(), INITIAL_DELAY);
        let (a, answer, _) = join_dynamic(&mut group, clock.now(), &["range"]);
        waits(answer);
        let (b, answer, _) = join_dynamic(&mut group, clock.now(), &["range", "roundrobin"]);
        waits(answer);

        // The first rebalance of an empty group waits group.initial.rebalance.delay.ms for more members.
        clock.advance(INITIAL_DELAY - Duration::from_millis(1));
        assert!(group.tick(clock.now()).replies.is_empty());
        assert_eq!(group.state(), GroupState::PreparingRebalance);
        clock.advance(Duration::from_millis(1));
        let effects = group.tick(clock.now());
        assert!(effects.persist.is_none());
        assert_eq!(group.state(), GroupState::CompletingRebalance);

        let to_leader = join_reply(&effects.replies, &a);
        assert_eq!((to_leader.error_code, to_leader.generation_id), (0, 1));
        assert_eq!(to_leader.leader.as_str(), a);
        assert_eq!(to_leader.protocol_name.as_deref(), Some("range"), "the only protocol both support");
        assert_eq!(to_leader.protocol_type.as_deref(), Some("consumer"));
        let listed: Vec<&str> = to_leader.members.iter().map(|m| m.member_id.as_str()).collect();
        let mut expected = vec![a.as_str(), b.as_str()];
        expected.sort();
        assert_eq!(listed, expected, "the leader gets every member's metadata");
        assert!(to_leader.members.iter().all(|m| !m.metadata.is_empty()));
        let to_follower = join_reply(&effects.replies, &b);
        assert_eq!((to_follower.error_code, to_follower.generation_id), (0, 1));
        assert_eq!(to_follower.leader.as_str(), a);
        assert!(to_follower.members.is_empty(), "followers do not get the members");

        // The follower waits for the leader's assignment.
        assert!(matches!(group.sync(SYNC_V, &sync_request(&b, 1, &[])), SyncAnswer::Wait));
        assert!(group.is_awaiting_sync(&b));
        let answer = group.sync(SYNC_V, &sync_request(&a, 1, &[(&a, "a's partitions"), (&b, "b's partitions")]));
        let SyncAnswer::Persist { stored, leader, followers } = answer else {
            panic!("the leader's assignment is persisted before it is handed out: {answer:?}");
        };
        assert_eq!(group.state(), GroupState::Stable);
        assert_eq!((stored.generation, stored.leader.as_deref(), stored.members.len()), (1, Some(a.as_str()), 2));
        assert_eq!((leader.error_code, &leader.assignment[..]), (0, &b"a's partitions"[..]));
        assert_eq!(leader.protocol_name.as_deref(), Some("range"));
        assert_eq!(followers.len(), 1);
        assert_eq!(followers[0].0, b);
        assert_eq!(&followers[0].1.assignment[..], b"b's partitions");
        assert!(!group.is_awaiting_sync(&b));

        // Stable: a SyncGroup again gets the same assignment; heartbeats are fine.
        let SyncAnswer::Now(again) = group.sync(SYNC_V, &sync_request(&b, 1, &[])) else { panic!("answered at once") };
        assert_eq!((again.error_code, &again.assignment[..]), (0, &b"b's partitions"[..]));
        assert_eq!(heartbeat(&mut group, clock.now(), &a, None, 1), Ok(()));
        assert_eq!(heartbeat(&mut group, clock.now(), &b, None, 1), Ok(()));
    }

    #[test]
    fn a_new_member_rebalances_the_group_and_all_get_the_new_generation() {
        let mut clock = Clock::start();
        let (mut group, ids) = stable_group(&mut clock, &[None]);
        let a = &ids[0];
        let (b, answer, _) = join_dynamic(&mut group, clock.now(), &["range"]);
        waits(answer);
        assert_eq!(group.state(), GroupState::PreparingRebalance);
        assert_eq!(heartbeat(&mut group, clock.now(), a, None, 1), Err(ResponseError::RebalanceInProgress));

        // The last member to rejoin completes the join phase (no delay: the group was not empty).
        let (answer, effects) = group.join(clock.now(), join_params(JOIN_V, a, None, &["range"]));
        let to_a = now_answer(answer);
        assert_eq!((to_a.error_code, to_a.generation_id, to_a.leader.as_str()), (0, 2, a.as_str()));
        assert_eq!(to_a.members.len(), 2, "the leader stays the leader and sees both members");
        let to_b = join_reply(&effects.replies, &b);
        assert_eq!((to_b.error_code, to_b.generation_id, to_b.leader.as_str()), (0, 2, a.as_str()));
        assert_eq!((group.state(), group.generation()), (GroupState::CompletingRebalance, 2));
        assert_eq!(heartbeat(&mut group, clock.now(), a, None, 1), Err(ResponseError::IllegalGeneration));
        assert_eq!(heartbeat(&mut group, clock.now(), &b, None, 2), Ok(()));
    }

    #[test]
    fn during_a_rebalance_heartbeats_and_syncs_answer_rebalance_in_progress() {
        let mut clock = Clock::start();
        let (mut group, ids) = stable_group(&mut clock, &[None, None]);
        let (a, b) = (&ids[0], &ids[1]);
        // The leader rejoining forces a rebalance.
        waits(group.join(clock.now(), join_params(JOIN_V, a, None, &["range"])).0);
        assert_eq!(group.state(), GroupState::PreparingRebalance);
        assert_eq!(heartbeat(&mut group, clock.now(), b, None, 1), Err(ResponseError::RebalanceInProgress));
        let SyncAnswer::Now(sync) = group.sync(SYNC_V, &sync_request(b, 1, &[])) else { panic!("answered at once") };
        assert_eq!(sync.error_code, code(ResponseError::RebalanceInProgress));
        // Offsets may still be committed in the current generation until the member rejoins.
        assert_eq!(group.admit_commit(clock.now(), 1, b, None), Ok(()));

        // b rejoins: CompletingRebalance at generation 2, b waits for its assignment ...
        let (answer, effects) = group.join(clock.now(), join_params(JOIN_V, b, None, &["range"]));
        assert_eq!(now_answer(answer).generation_id, 2);
        assert_eq!(join_reply(&effects.replies, a).generation_id, 2);
        assert!(matches!(group.sync(SYNC_V, &sync_request(b, 2, &[])), SyncAnswer::Wait));
        assert_eq!(group.admit_commit(clock.now(), 2, b, None), Err(ResponseError::RebalanceInProgress));
        // ... when a new member starts another rebalance: b is told to rejoin.
        let (_, answer, effects) = join_dynamic(&mut group, clock.now(), &["range"]);
        waits(answer);
        assert_eq!(sync_reply(&effects.replies, b).error_code, code(ResponseError::RebalanceInProgress));
        assert!(!group.is_awaiting_sync(b));
        assert_eq!(group.state(), GroupState::PreparingRebalance);
    }

    #[test]
    fn unknown_members_and_old_generations_are_refused() {
        let mut clock = Clock::start();
        let (mut group, ids) = stable_group(&mut clock, &[None]);
        let a = &ids[0];
        let now = clock.now();
        assert_eq!(heartbeat(&mut group, now, "stranger", None, 1), Err(ResponseError::UnknownMemberId));
        assert_eq!(heartbeat(&mut group, now, a, None, 0), Err(ResponseError::IllegalGeneration));
        let SyncAnswer::Now(sync) = group.sync(SYNC_V, &sync_request("stranger", 1, &[])) else { panic!() };
        assert_eq!(sync.error_code, code(ResponseError::UnknownMemberId));
        let SyncAnswer::Now(sync) = group.sync(SYNC_V, &sync_request(a, 2, &[])) else { panic!() };
        assert_eq!(sync.error_code, code(ResponseError::IllegalGeneration));
        assert_eq!(group.admit_commit(now, 1, "stranger", None), Err(ResponseError::UnknownMemberId));
        assert_eq!(group.admit_commit(now, 0, a, None), Err(ResponseError::IllegalGeneration));
        assert_eq!(group.admit_commit(now, 1, a, None), Ok(()));
        let (codes, _) = leave(&mut group, now, &[("stranger", None)]);
        assert_eq!(codes, [code(ResponseError::UnknownMemberId)]);
        assert_eq!((group.state(), group.generation()), (GroupState::Stable, 1), "nothing changed");

        // An empty group: only a commit with no generation (a consumer assigning its own partitions) passes.
        let mut empty = Group::new("g", now, INITIAL_DELAY);
        assert_eq!(empty.admit_commit(now, -1, "", None), Ok(()));
        assert_eq!(empty.admit_commit(now, 1, "m", None), Err(ResponseError::UnknownMemberId));
        assert_eq!(heartbeat(&mut empty, now, "m", None, 0), Err(ResponseError::UnknownMemberId));
    }

    #[test]
    fn a_restarted_static_member_takes_over_without_a_rebalance_and_fences_its_old_id() {
        let mut clock = Clock::start();
        let (mut group, ids) = stable_group(&mut clock, &[Some("instance-1"), None]);
        let (old, b) = (&ids[0], &ids[1]);
        let instance = Some("instance-1");

        // The same instance joins with no member id (a restart), its protocols unchanged.
        let (answer, effects) = group.join(clock.now(), join_params(JOIN_V, "", instance, &["range"]));
        let taken_over = now_answer(answer);
        assert!(effects.replies.is_empty());
        // The new id is persisted before the answer: a broker restart must not fence it.
        let stored = effects.persist.expect("the replacement is persisted");
        let mut reloaded = Group::from_stored("g", &stored, clock.now(), INITIAL_DELAY);
        assert_eq!(heartbeat(&mut reloaded, clock.now(), &taken_over.member_id, instance, 1), Ok(()));
        assert_eq!(taken_over.error_code, 0);
        assert_ne!(taken_over.member_id.as_str(), old);
        assert_eq!(taken_over.generation_id, 1, "no rebalance");
        assert_eq!(taken_over.leader.as_str(), taken_over.member_id.as_str(), "it was the leader and still is");
        assert!(taken_over.skip_assignment, "the leader need not assign again");
        assert_eq!(taken_over.members.len(), 2, "a leader is told the members");
        assert_eq!((group.state(), group.generation()), (GroupState::Stable, 1));
        let new = taken_over.member_id.to_string();
        let mut expected = vec![new.as_str(), b.as_str()];
        expected.sort();
        assert_eq!(group.member_ids().collect::<Vec<_>>(), expected);

        // The old id is fenced everywhere; the new one carries on.
        let now = clock.now();
        assert_eq!(heartbeat(&mut group, now, old, instance, 1), Err(ResponseError::FencedInstanceId));
        assert_eq!(heartbeat(&mut group, now, &new, instance, 1), Ok(()));
        let old_sync = sync_request(old, 1, &[]).with_group_instance_id(instance.map(str_bytes));
        let SyncAnswer::Now(sync) = group.sync(SYNC_V, &old_sync) else { panic!("answered at once") };
        assert_eq!(sync.error_code, code(ResponseError::FencedInstanceId));
        assert_eq!(group.admit_commit(now, 1, old, instance), Err(ResponseError::FencedInstanceId));
        let rejoin = now_answer(group.join(now, join_params(JOIN_V, old, instance, &["range"])).0);
        assert_eq!(rejoin.error_code, code(ResponseError::FencedInstanceId));
        let (codes, _) = leave(&mut group, now, &[(old, instance)]);
        assert_eq!(codes, [code(ResponseError::FencedInstanceId)]);

        // A JoinGroup of the old id still waiting in a rebalance is answered FENCED_INSTANCE_ID.
        waits(group.join(now, join_params(JOIN_V, &new, instance, &["range"])).0);
        let (answer, effects) = group.join(now, join_params(JOIN_V, "", instance, &["range"]));
        let newest = waits(answer);
        assert_eq!(join_reply(&effects.replies, &new).error_code, code(ResponseError::FencedInstanceId));
        assert!(group.is_awaiting_join(&newest));
        assert_eq!(group.member_ids().count(), 2);
    }

    #[test]
    fn a_restarted_static_member_with_other_subscription_bytes_takes_over_without_a_rebalance() {
        let mut clock = Clock::start();
        let (mut group, ids) = stable_group(&mut clock, &[None, Some("instance-2")]);
        let old = &ids[1];
        // The restarted client owns nothing yet, so its subscription's bytes differ;
        // the protocol the group selects does not, so nobody rebalances (Kafka 4.x).
        let mut params = join_params(JOIN_V, "", Some("instance-2"), &["range"]);
        params.protocols[0].1 = Bytes::from_static(b"a subscription owning nothing");
        let (answer, effects) = group.join(clock.now(), params);
        let taken_over = now_answer(answer);
        assert_eq!((taken_over.error_code, taken_over.generation_id), (0, 1));
        assert!(effects.persist.is_some());
        assert_eq!((group.state(), group.generation()), (GroupState::Stable, 1));
        assert_ne!(taken_over.leader.as_str(), taken_over.member_id.as_str());
        assert!(!taken_over.skip_assignment && taken_over.members.is_empty());
        assert_eq!(heartbeat(&mut group, clock.now(), &ids[0], None, 1), Ok(()), "no rebalance for the other");
        assert_eq!(
            heartbeat(&mut group, clock.now(), old, Some("instance-2"), 1),
            Err(ResponseError::FencedInstanceId)
        );
        // The member now carries the new subscription: a later leader sees it.
        let new = taken_over.member_id.to_string();
        let listed = group.member_metadata();
        let mine = listed.iter().find(|m| m.member_id.as_str() == new).expect("listed");
        assert_eq!(mine.metadata.as_ref(), b"a subscription owning nothing");

        // Before JoinGroup v9 a returning leader is not told it leads, so it does not assign.
        let (mut group, ids) = stable_group(&mut clock, &[Some("instance-1"), None]);
        let answer = now_answer(group.join(clock.now(), join_params(8, "", Some("instance-1"), &["range"])).0);
        assert_eq!(answer.leader.as_str(), ids[0].as_str(), "the previous leader's id");
        assert_ne!(answer.member_id.as_str(), ids[0].as_str());
        assert!(answer.members.is_empty());

        // A protocol the group would no longer select rebalances it (at once: every member joined).
        let (mut group, _) = stable_group(&mut clock, &[Some("instance-1")]);
        let params = join_params(JOIN_V, "", Some("instance-1"), &["roundrobin", "range"]);
        let answer = now_answer(group.join(clock.now(), params).0);
        assert_eq!((answer.generation_id, answer.protocol_name.as_deref()), (2, Some("roundrobin")));
        assert_eq!(group.state(), GroupState::CompletingRebalance);
    }

    #[test]
    fn a_static_member_restarting_while_the_leader_assigns_rebalances_the_group() {
        let mut clock = Clock::start();
        let mut group = Group::new("g", clock.now(), INITIAL_DELAY);
        let (a, answer, _) = join_dynamic(&mut group, clock.now(), &["range"]);
        waits(answer);
        let old = waits(group.join(clock.now(), join_params(JOIN_V, "", Some("instance-1"), &["range"])).0);
        clock.advance(INITIAL_DELAY);
        group.tick(clock.now());
        assert!(matches!(group.sync(SYNC_V, &sync_request(&old, 1, &[])), SyncAnswer::Wait));
        assert_eq!(group.state(), GroupState::CompletingRebalance);

        // The leader may be assigning partitions to the old id: everyone joins again.
        let (answer, effects) = group.join(clock.now(), join_params(JOIN_V, "", Some("instance-1"), &["range"]));
        let new = waits(answer);
        assert_ne!(new, old);
        assert_eq!(sync_reply(&effects.replies, &old).error_code, code(ResponseError::FencedInstanceId));
        assert!(effects.persist.is_none());
        assert_eq!(group.state(), GroupState::PreparingRebalance);
        let SyncAnswer::Now(sync) = group.sync(SYNC_V, &sync_request(&a, 1, &[(&old, "stale")])) else { panic!() };
        assert_eq!(sync.error_code, code(ResponseError::RebalanceInProgress));
        let (answer, effects) = group.join(clock.now(), join_params(JOIN_V, &a, None, &["range"]));
        let to_a = now_answer(answer);
        assert_eq!(to_a.generation_id, 2);
        let listed: Vec<&str> = to_a.members.iter().map(|m| m.member_id.as_str()).collect();
        assert!(listed.contains(&new.as_str()) && !listed.contains(&old.as_str()), "{listed:?}");
        assert_eq!(join_reply(&effects.replies, &new).generation_id, 2);
    }

    #[test]
    fn members_leave_the_rest_rebalance_and_the_last_one_empties_the_group() {
        let mut clock = Clock::start();
        let (mut group, ids) = stable_group(&mut clock, &[None, None]);
        let (a, b) = (&ids[0], &ids[1]);
        let (codes, effects) = leave(&mut group, clock.now(), &[(b, None)]);
        assert_eq!(codes, [0]);
        assert!(effects.persist.is_none());
        assert_eq!(group.state(), GroupState::PreparingRebalance);
        assert_eq!(heartbeat(&mut group, clock.now(), b, None, 1), Err(ResponseError::UnknownMemberId));

        let to_a = now_answer(group.join(clock.now(), join_params(JOIN_V, a, None, &["range"])).0);
        assert_eq!((to_a.generation_id, to_a.members.len()), (2, 1));
        assert!(matches!(group.sync(SYNC_V, &sync_request(a, 2, &[(a, "all")])), SyncAnswer::Persist { .. }));

        // The last member leaves: the join phase completes at once with nobody, so the
        // group is Empty at the next generation, and that is persisted.
        clock.advance(Duration::from_secs(1));
        let (codes, effects) = leave(&mut group, clock.now(), &[(a, None)]);
        assert_eq!(codes, [0]);
        assert_eq!((group.state(), group.generation()), (GroupState::Empty, 3));
        let stored = effects.persist.expect("an emptied group is persisted");
        assert_eq!((stored.generation, stored.members.len()), (3, 0));
        assert_eq!(stored.empty_since_ms, clock.now().wall_ms, "offsets expire counting from now");
    }

    #[test]
    fn a_member_leaving_during_the_initial_delay_does_not_cut_it_short() {
        let mut clock = Clock::start();
        let mut group = Group::new("g", clock.now(), INITIAL_DELAY);
        let (a, answer, _) = join_dynamic(&mut group, clock.now(), &["range"]);
        waits(answer);
        let (b, answer, _) = join_dynamic(&mut group, clock.now(), &["range"]);
        waits(answer);
        let (codes, effects) = leave(&mut group, clock.now(), &[(&b, None)]);
        assert_eq!(codes, [0]);
        // b's JoinGroup is answered; a keeps waiting for the delay, in which others may still join.
        assert_eq!(join_reply(&effects.replies, &b).error_code, code(ResponseError::UnknownMemberId));
        assert_eq!(effects.replies.len(), 1);
        assert_eq!(group.state(), GroupState::PreparingRebalance);
        clock.advance(INITIAL_DELAY);
        let effects = group.tick(clock.now());
        let to_a = join_reply(&effects.replies, &a);
        assert_eq!((to_a.generation_id, to_a.members.len()), (1, 1));
    }

    #[test]
    fn a_static_member_may_be_removed_by_its_instance_id() {
        let mut clock = Clock::start();
        let (mut group, ids) = stable_group(&mut clock, &[None, Some("instance-1")]);
        let (codes, _) = leave(&mut group, clock.now(), &[("", Some("instance-1")), ("", Some("instance-2"))]);
        assert_eq!(codes, [0, code(ResponseError::UnknownMemberId)]);
        assert_eq!(group.member_ids().collect::<Vec<_>>(), [ids[0].as_str()]);
        assert_eq!(group.state(), GroupState::PreparingRebalance);
    }

    #[test]
    fn an_expired_session_removes_the_member_and_rebalances_the_rest() {
        let mut clock = Clock::start();
        let (mut group, ids) = stable_group(&mut clock, &[None, None]);
        let (a, b) = (&ids[0], &ids[1]);
        clock.advance(SESSION / 2);
        assert_eq!(heartbeat(&mut group, clock.now(), a, None, 1), Ok(()));
        clock.advance(SESSION / 2);
        assert!(group.tick(clock.now()).replies.is_empty());
        assert_eq!(group.state(), GroupState::Stable, "a session lapses only once it is over");

        clock.advance(Duration::from_millis(1));
        let effects = group.tick(clock.now());
        assert!(effects.persist.is_none());
        assert_eq!(group.member_ids().collect::<Vec<_>>(), [a.as_str()]);
        assert_eq!(group.state(), GroupState::PreparingRebalance);
        assert_eq!(heartbeat(&mut group, clock.now(), b, None, 1), Err(ResponseError::UnknownMemberId));
        assert_eq!(heartbeat(&mut group, clock.now(), a, None, 1), Err(ResponseError::RebalanceInProgress));
        let to_a = now_answer(group.join(clock.now(), join_params(JOIN_V, a, None, &["range"])).0);
        assert_eq!((to_a.error_code, to_a.generation_id, to_a.members.len()), (0, 2, 1));

        // The last member's session lapsing empties the group at the next generation, persisted.
        assert!(matches!(group.sync(SYNC_V, &sync_request(a, 2, &[])), SyncAnswer::Persist { .. }));
        clock.advance(SESSION + Duration::from_millis(1));
        let stored = group.tick(clock.now()).persist.expect("an emptied group is persisted");
        assert_eq!((group.state(), group.generation(), stored.generation), (GroupState::Empty, 3, 3));
    }

    #[test]
    fn a_rebalance_whose_time_is_up_completes_without_the_members_that_did_not_rejoin() {
        let mut clock = Clock::start();
        let (mut group, ids) = stable_group(&mut clock, &[None, None]);
        let (a, b) = (&ids[0], &ids[1]);
        let (c, answer, _) = join_dynamic(&mut group, clock.now(), &["range"]);
        waits(answer);
        waits(group.join(clock.now(), join_params(JOIN_V, a, None, &["range"])).0);
        // b keeps its session alive with heartbeats but never rejoins.
        let step = REBALANCE / 6;
        for _ in 0..5 {
            clock.advance(step);
            assert_eq!(heartbeat(&mut group, clock.now(), b, None, 1), Err(ResponseError::RebalanceInProgress));
            assert!(group.tick(clock.now()).replies.is_empty());
        }
        clock.advance(step);
        let effects = group.tick(clock.now());
        assert_eq!((group.state(), group.generation()), (GroupState::CompletingRebalance, 2));
        let mut expected = vec![a.as_str(), c.as_str()];
        expected.sort();
        assert_eq!(group.member_ids().collect::<Vec<_>>(), expected);
        assert_eq!(join_reply(&effects.replies, a).members.len(), 2);
        assert_eq!(join_reply(&effects.replies, &c).generation_id, 2);
        assert_eq!(heartbeat(&mut group, clock.now(), b, None, 1), Err(ResponseError::UnknownMemberId));
    }

    #[test]
    fn a_member_without_a_protocol_in_common_is_refused() {
        let mut clock = Clock::start();
        let (mut group, _) = stable_group(&mut clock, &[None]);
        let now = clock.now();
        let other = now_answer(group.join(now, join_params(JOIN_V, "", None, &["roundrobin"])).0);
        assert_eq!(other.error_code, code(ResponseError::InconsistentGroupProtocol));
        let other_type = now_answer(group.join(now, join_params_typed(JOIN_V, "", None, "connect", &["range"])).0);
        assert_eq!(other_type.error_code, code(ResponseError::InconsistentGroupProtocol));
        let SyncAnswer::Now(sync) = group.sync(
            SYNC_V,
            &sync_request(group.leader().unwrap_or_default().to_string().as_str(), 1, &[])
                .with_protocol_name(Some(str_bytes("roundrobin"))),
        ) else {
            panic!()
        };
        assert_eq!(sync.error_code, code(ResponseError::InconsistentGroupProtocol));
        assert_eq!((group.state(), group.member_ids().count()), (GroupState::Stable, 1));
        // One protocol in common is enough.
        let both = now_answer(group.join(now, join_params(JOIN_V, "", None, &["roundrobin", "range"])).0);
        assert_eq!(both.error_code, code(ResponseError::MemberIdRequired));

        // The first member of a group must name a protocol type and a protocol.
        let mut empty = Group::new("g", now, INITIAL_DELAY);
        let none = now_answer(empty.join(now, join_params(JOIN_V, "", None, &[])).0);
        assert_eq!(none.error_code, code(ResponseError::InconsistentGroupProtocol));
        let untyped = now_answer(empty.join(now, join_params_typed(JOIN_V, "", None, "", &["range"])).0);
        assert_eq!(untyped.error_code, code(ResponseError::InconsistentGroupProtocol));
    }

    #[test]
    fn a_full_group_refuses_new_members_but_not_its_own() {
        let clock = Clock::start();
        let now = clock.now();
        let mut group = Group::new("g", now, INITIAL_DELAY);
        let mut first = String::new();
        for i in 0..GROUP_MEMBERS_MAX - 1 {
            let id = waits(group.join(now, join_params(3, "", None, &["range"])).0);
            if i == 0 {
                first = id;
            }
        }
        // An id handed out while there was room, used once there is none.
        let required = now_answer(group.join(now, join_params(JOIN_V, "", None, &["range"])).0);
        assert_eq!(required.error_code, code(ResponseError::MemberIdRequired));
        waits(group.join(now, join_params(3, "", None, &["range"])).0);
        assert_eq!(group.member_ids().count(), GROUP_MEMBERS_MAX);
        let late = now_answer(group.join(now, join_params(JOIN_V, &required.member_id, None, &["range"])).0);
        assert_eq!((late.error_code, late.member_id.as_str()), (code(ResponseError::GroupMaxSizeReached), ""));

        // A newcomer is refused before any member id is handed out, whatever its version.
        for version in [3, JOIN_V] {
            let refused = now_answer(group.join(now, join_params(version, "", None, &["range"])).0);
            assert_eq!(
                (refused.error_code, refused.member_id.as_str()),
                (code(ResponseError::GroupMaxSizeReached), "")
            );
        }
        assert_eq!(group.member_ids().count(), GROUP_MEMBERS_MAX);
        // A member already in the group may join again.
        let (answer, effects) = group.join(now, join_params(3, &first, None, &["range"]));
        assert_eq!(waits(answer), first);
        assert_eq!(join_reply(&effects.replies, &first).error_code, code(ResponseError::UnknownMemberId), "superseded");
    }

    #[test]
    fn a_reloaded_group_is_stable_with_its_members_and_assignments() {
        let mut clock = Clock::start();
        let (group, ids) = stable_group(&mut clock, &[Some("instance-1"), None]);
        clock.advance(Duration::from_secs(60));
        let mut reloaded = Group::from_stored("g", &group.stored(), clock.now(), INITIAL_DELAY);
        assert_eq!(
            (reloaded.state(), reloaded.generation(), reloaded.leader()),
            (GroupState::Stable, 1, Some(ids[0].as_str()))
        );
        // Sessions count from the reload.
        assert!(reloaded.tick(clock.now()).replies.is_empty());
        assert_eq!(reloaded.member_ids().count(), 2);
        assert_eq!(heartbeat(&mut reloaded, clock.now(), &ids[0], Some("instance-1"), 1), Ok(()));
        let SyncAnswer::Now(sync) = reloaded.sync(SYNC_V, &sync_request(&ids[1], 1, &[])) else { panic!() };
        assert_eq!(&sync.assignment[..], b"assigned");
        assert_eq!(reloaded.stored(), group.stored());
    }

    #[test]
    fn join_requests_are_checked_before_any_group_is_touched() {
        let request = |group_id: &str, session_ms: i32| {
            JoinGroupRequest::default()
                .with_group_id(GroupId(str_bytes(group_id)))
                .with_session_timeout_ms(session_ms)
                .with_rebalance_timeout_ms(60_000)
        };
        let read = |version, r: &JoinGroupRequest| JoinParams::from_request(version, r, String::new(), String::new());
        assert_eq!(read(JOIN_V, &request("", 10_000)).unwrap_err(), ResponseError::InvalidGroupId);
        let too_short = GROUP_SESSION_TIMEOUT_MS_MIN - 1;
        assert_eq!(read(JOIN_V, &request("g", too_short)).unwrap_err(), ResponseError::InvalidSessionTimeout);
        let too_long = GROUP_SESSION_TIMEOUT_MS_MAX + 1;
        assert_eq!(read(JOIN_V, &request("g", too_long)).unwrap_err(), ResponseError::InvalidSessionTimeout);
        // v0 has no rebalance timeout: the session timeout stands in.
        assert_eq!(read(0, &request("g", 10_000)).unwrap().rebalance_timeout, Duration::from_secs(10));
        assert_eq!(read(1, &request("g", 10_000)).unwrap().rebalance_timeout, Duration::from_secs(60));
    }
}
