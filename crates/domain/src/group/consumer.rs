//! One group of KIP-848's consumer rebalance protocol: members heartbeat
//! (ConsumerGroupHeartbeat) and the coordinator assigns partitions itself.
//!
//! Three epochs, as in Kafka: the group epoch moves on every change of
//! membership, subscriptions or subscribed topics' metadata; the target
//! assignment is recomputed when it lags the group epoch and takes its epoch;
//! each member's epoch reaches the target's once its own reconciliation is
//! done. Reconciliation follows Kafka's `CurrentAssignmentBuilder`: a member
//! first gives up (and acknowledges, by no longer reporting them owned) the
//! partitions its target no longer holds, and only then takes the new ones
//! that no other member still holds (the rest are UNRELEASED until freed).
//! So a partition never has two owners.
//!
//! A plain type: the time and the topics are parameters, nothing here reads
//! a clock or does I/O. The coordinator persists the group as one record for
//! the group and one per member ([`ConsumerGroup::stored_group`],
//! [`ConsumerGroup::stored_member`]) and reloads it with
//! [`ConsumerGroup::from_stored`], so members keep their ids and epochs
//! across a restart, as Kafka's replay of `__consumer_offsets` does.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use regex::Regex;
use uuid::Uuid;

mod classic_members;

pub use classic_members::ClassicMembership;

use super::clock::Now;
use super::store::{
    StoredAssignment, StoredClassicMembership, StoredConsumer, StoredConsumerGroup, StoredConsumerMember,
    CONSUMER_MEMBER_STATE_MAX,
};
use sluice_core::constants::{
    GROUP_CONSUMER_REGEX_BYTES_MAX, GROUP_CONSUMER_REGEX_COMPILED_BYTES_MAX, GROUP_CONSUMER_SUBSCRIBED_TOPICS_MAX,
};
use sluice_protocol::ResponseError;

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// Kafka's member epochs with a meaning of their own.
pub const JOIN_EPOCH: i32 = 0;
pub const LEAVE_EPOCH: i32 = -1;
pub const LEAVE_STATIC_EPOCH: i32 = -2;

/// A server-side assignor (`group.consumer.assignors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AssignorKind {
    /// Balanced and sticky: members keep what they can of their previous target.
    Uniform,
    /// Contiguous ranges of each topic's partitions, members ordered by id.
    Range,
}

impl AssignorKind {
    pub fn name(self) -> &'static str {
        match self {
            AssignorKind::Uniform => "uniform",
            AssignorKind::Range => "range",
        }
    }

    /// By Kafka's short name or its class name.
    pub fn parse(name: &str) -> Option<AssignorKind> {
        match name.trim() {
            "uniform" | "org.apache.kafka.coordinator.group.assignor.UniformAssignor" => Some(AssignorKind::Uniform),
            "range" | "org.apache.kafka.coordinator.group.assignor.RangeAssignor" => Some(AssignorKind::Range),
            _ => None,
        }
    }
}

/// Settings of consumer groups, from the broker config.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// `group.consumer.session.timeout.ms`.
    pub session_timeout: Duration,
    /// `group.consumer.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.assignors`; the first is the default. Never empty.
    pub assignors: Vec<AssignorKind>,
    /// `group.consumer.max.size`.
    pub members_max: usize,
    /// Whether `group.consumer.migration.policy` allows upgrading a classic group.
    pub upgrade_enabled: bool,
    /// Whether it allows downgrading a consumer group to a classic one.
    pub downgrade_enabled: bool,
}

/// The topics as assignment needs them: id and partition count by name.
#[derive(Debug, Default, PartialEq)]
pub struct TopicImage {
    pub by_name: BTreeMap<String, (Uuid, i32)>,
    pub names: HashMap<Uuid, String>,
}

impl TopicImage {
    pub fn new(topics: impl IntoIterator<Item = (String, Uuid, i32)>) -> TopicImage {
        let mut image = TopicImage::default();
        for (name, id, partitions) in topics {
            image.names.insert(id, name.clone());
            image.by_name.insert(name, (id, partitions));
        }
        image
    }
}

/// A ConsumerGroupHeartbeat, validated.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatParams {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    /// -1: unchanged.
    pub rebalance_timeout_ms: i32,
    pub topic_names: Option<Vec<String>>,
    /// `Some("")` unsubscribes from the regex.
    pub topic_regex: Option<String>,
    pub assignor: Option<AssignorKind>,
    /// The partitions the member owns; `None`: unchanged since its last heartbeat.
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

/// The raw fields of a heartbeat, as the handler decoded them.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatFields {
    pub version: i16,
    pub group_id: String,
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub topic_names: Option<Vec<String>>,
    pub topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub owned: Option<Vec<(Uuid, Vec<i32>)>>,
    pub client_id: String,
    pub client_host: String,
}

/// A refused heartbeat: the code and Kafka's message.
pub type Refusal = (ResponseError, String);

fn invalid(message: &str) -> Refusal {
    (ResponseError::InvalidRequest, message.to_string())
}

/// Compiles a subscription regex with RE2/J's whole-name match.
pub fn compile_regex(pattern: &str) -> Result<Regex, Refusal> {
    let refuse = |why: String| (ResponseError::InvalidRegularExpression, why);
    if pattern.len() > GROUP_CONSUMER_REGEX_BYTES_MAX {
        return Err(refuse(format!("SubscribedTopicRegex is longer than {GROUP_CONSUMER_REGEX_BYTES_MAX} bytes.")));
    }
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(GROUP_CONSUMER_REGEX_COMPILED_BYTES_MAX)
        .build()
        .map_err(|e| refuse(format!("SubscribedTopicRegex `{pattern}` is not a valid regular expression: {e}.")))
}

impl HeartbeatParams {
    /// Kafka's checks of a heartbeat (`throwIfConsumerGroupHeartbeatRequestIsInvalid`).
    pub fn from_fields(fields: HeartbeatFields, assignors: &[AssignorKind]) -> Result<HeartbeatParams, Refusal> {
        let f = fields;
        if f.group_id.is_empty() {
            return Err(invalid("GroupId can't be empty."));
        }
        if f.instance_id.as_deref() == Some("") {
            return Err(invalid("InstanceId can't be empty."));
        }
        if f.rack_id.as_deref() == Some("") {
            return Err(invalid("RackId can't be empty."));
        }
        let mut member_id = f.member_id;
        if member_id.is_empty() {
            if f.version >= 1 || f.member_epoch != JOIN_EPOCH {
                return Err(invalid("MemberId can't be empty."));
            }
            // Before v1 the coordinator names a joining member.
            member_id = Uuid::new_v4().to_string();
        }
        if f.member_epoch == JOIN_EPOCH {
            if f.rebalance_timeout_ms == -1 {
                return Err(invalid("RebalanceTimeoutMs must be provided in first request."));
            }
            if f.owned.as_ref().is_none_or(|o| !o.is_empty()) {
                return Err(invalid("TopicPartitions must be empty when (re-)joining."));
            }
            if f.topic_names.is_none() && f.topic_regex.is_none() {
                return Err(invalid("SubscribedTopicNames or SubscribedTopicRegex must be set in first request."));
            }
        } else if f.member_epoch == LEAVE_STATIC_EPOCH {
            if f.instance_id.is_none() {
                return Err(invalid("InstanceId can't be null."));
            }
        } else if f.member_epoch < LEAVE_STATIC_EPOCH {
            return Err(invalid("MemberEpoch is invalid."));
        }
        if f.topic_names.as_ref().is_some_and(|n| n.len() > GROUP_CONSUMER_SUBSCRIBED_TOPICS_MAX) {
            return Err(invalid("SubscribedTopicNames has too many topics."));
        }
        if let Some(pattern) = f.topic_regex.as_deref().filter(|p| !p.is_empty()) {
            compile_regex(pattern)?;
        }
        let assignor = match f.server_assignor {
            None => None,
            Some(name) => match AssignorKind::parse(&name).filter(|a| assignors.contains(a)) {
                Some(a) => Some(a),
                None => {
                    return Err((
                        ResponseError::UnsupportedAssignor,
                        format!(
                            "ServerAssignor {name} is not supported. Supported assignors: {}.",
                            assignors.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
                        ),
                    ))
                }
            },
        };
        let owned = f.owned.map(|topics| {
            let mut owned = Assignment::new();
            for (id, partitions) in topics {
                owned.entry(id).or_default().extend(partitions);
            }
            owned
        });
        Ok(HeartbeatParams {
            member_id,
            member_epoch: f.member_epoch,
            instance_id: f.instance_id,
            rack_id: f.rack_id,
            rebalance_timeout_ms: f.rebalance_timeout_ms,
            topic_names: f.topic_names,
            topic_regex: f.topic_regex,
            assignor,
            owned,
            client_id: f.client_id,
            client_host: f.client_host,
        })
    }
}

/// What a heartbeat is answered.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatAnswer {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// The member's assignment, when it changed or the member reported owning something else.
    pub assignment: Option<Assignment>,
}

/// A member's place in its reconciliation, as Kafka's `MemberState`; the
/// numbers are those stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MemberState {
    Stable = 0,
    /// Waiting for the member to acknowledge the revocation of partitions.
    UnrevokedPartitions = 1,
    /// Waiting for other members to release partitions of its target.
    UnreleasedPartitions = 2,
}
const _: () = assert!(MemberState::UnreleasedPartitions as u8 == CONSUMER_MEMBER_STATE_MAX);

#[derive(Debug, Clone)]
struct Member {
    id: String,
    instance_id: Option<String>,
    rack_id: Option<String>,
    client_id: String,
    client_host: String,
    epoch: i32,
    previous_epoch: i32,
    state: MemberState,
    rebalance_timeout_ms: i32,
    topic_names: BTreeSet<String>,
    regex: Option<(String, Regex)>,
    assignor: Option<AssignorKind>,
    assigned: Assignment,
    revoking: Assignment,
    session_deadline: Instant,
    /// Set while partitions wait for the member's acknowledgement of their revocation.
    revocation_deadline: Option<Instant>,
    /// Set for a member speaking the classic protocol (JoinGroup, SyncGroup, Heartbeat).
    classic: Option<ClassicMembership>,
}

impl Member {
    fn subscribes_to(&self, topic: &str) -> bool {
        self.topic_names.contains(topic) || self.regex.as_ref().is_some_and(|(_, r)| r.is_match(topic))
    }
}

/// A member as ConsumerGroupDescribe shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub member_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub topic_names: Vec<String>,
    pub topic_regex: Option<String>,
    pub assignment: Vec<(Uuid, String, Vec<i32>)>,
    pub target_assignment: Vec<(Uuid, String, Vec<i32>)>,
    /// Whether the member speaks the classic protocol.
    pub classic: bool,
}

/// A consumer group as ConsumerGroupDescribe shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerGroupDescription {
    pub state: &'static str,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: &'static str,
    pub members: Vec<MemberDescription>,
}

/// What the timer removed from a group.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// Some member.
    pub any: bool,
    /// Some member speaking the consumer protocol (the group may downgrade).
    pub consumer_protocol: bool,
}

/// One consumer group.
#[derive(Debug)]
pub struct ConsumerGroup {
    id: String,
    group_epoch: i32,
    assignment_epoch: i32,
    members: BTreeMap<String, Member>,
    /// Static members' ids by instance id.
    static_ids: HashMap<String, String>,
    /// The target assignment of each member, at `assignment_epoch`.
    target: HashMap<String, Assignment>,
    /// The subscribed topics' ids and partition counts the target was computed from.
    subscribed: BTreeMap<String, (Uuid, i32)>,
    /// The topic image `subscribed` was taken from; `None` once a subscription changed.
    image_seen: Option<Rc<TopicImage>>,
    assignor: AssignorKind,
}

impl ConsumerGroup {
    pub fn new(id: &str, default_assignor: AssignorKind) -> ConsumerGroup {
        ConsumerGroup {
            id: id.to_string(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            static_ids: HashMap::new(),
            target: HashMap::new(),
            subscribed: BTreeMap::new(),
            image_seen: None,
            assignor: default_assignor,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Whether a static member with `instance_id` is in the group.
    pub fn has_static_member(&self, instance_id: &str) -> bool {
        self.static_ids.contains_key(instance_id)
    }

    pub fn group_epoch(&self) -> i32 {
        self.group_epoch
    }

    /// Kafka's `ConsumerGroupState` names.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self.members.values().any(|m| m.epoch != self.assignment_epoch || m.state != MemberState::Stable) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// The names of the topics some member subscribes to (OffsetDelete refuses their offsets).
    pub fn subscribed_topics(&self) -> Vec<String> {
        self.subscribed.keys().cloned().collect()
    }

    /// Kafka's checks of an OffsetCommit (or OffsetFetch) by a member of this group.
    pub fn admit_commit(&self, member_id: &str, member_epoch: i32) -> Result<(), ResponseError> {
        if member_epoch < 0 && member_id.is_empty() {
            // The admin client, or a consumer assigning partitions itself.
            return if self.members.is_empty() { Ok(()) } else { Err(ResponseError::UnknownMemberId) };
        }
        let member = self.members.get(member_id).ok_or(ResponseError::UnknownMemberId)?;
        if member_epoch != member.epoch {
            // A classic member commits with its generation, which is its epoch.
            return Err(if member.classic.is_some() {
                ResponseError::IllegalGeneration
            } else {
                ResponseError::StaleMemberEpoch
            });
        }
        Ok(())
    }

    /// One heartbeat: join, leave, or a member's regular heartbeat.
    pub fn heartbeat(
        &mut self,
        now: Now,
        params: HeartbeatParams,
        image: &Rc<TopicImage>,
        settings: &ConsumerSettings,
    ) -> Result<HeartbeatAnswer, Refusal> {
        let answer = |member_id: String, member_epoch: i32| HeartbeatAnswer {
            member_id,
            member_epoch,
            heartbeat_interval_ms: settings.heartbeat_interval_ms,
            assignment: None,
        };
        match params.member_epoch {
            LEAVE_EPOCH => {
                let member_id = self.resolve_leaving(&params)?;
                self.remove_member(&member_id);
                return Ok(answer(params.member_id, LEAVE_EPOCH));
            }
            LEAVE_STATIC_EPOCH => {
                let member_id = self.resolve_leaving(&params)?;
                // A static member leaving for a while keeps its partitions
                // until its session expires or it comes back.
                if let Some(member) = self.members.get_mut(&member_id) {
                    member.epoch = LEAVE_STATIC_EPOCH;
                }
                return Ok(answer(params.member_id, LEAVE_STATIC_EPOCH));
            }
            _ => {}
        }
        let joining = params.member_epoch == JOIN_EPOCH;
        let mut changed = if joining { self.join(now, &params, settings)? } else { self.check_member(&params)? };
        let member_id = params.member_id.clone();
        changed |= self.update_member(now, &params, settings);
        if changed {
            self.group_epoch += 1;
            self.image_seen = None;
        }
        self.refresh_subscribed(image, !changed);
        if self.group_epoch > self.assignment_epoch {
            self.compute_target(settings);
        }
        let before = self.members.get(&member_id).map(|m| m.assigned.clone()).unwrap_or_default();
        self.reconcile(&member_id, params.owned.as_ref(), now);
        let member = self.members.get(&member_id).expect("member present after reconciliation");
        let mismatch = params.owned.as_ref().is_some_and(|owned| !same_partitions(owned, &member.assigned));
        let send = joining || before != member.assigned || mismatch;
        Ok(HeartbeatAnswer { assignment: send.then(|| member.assigned.clone()), ..answer(member_id, member.epoch) })
    }

    /// The member a leave heartbeat is about.
    fn resolve_leaving(&self, params: &HeartbeatParams) -> Result<String, Refusal> {
        let unknown = || {
            (
                ResponseError::UnknownMemberId,
                format!("Member {} is not a member of group {}.", params.member_id, self.id),
            )
        };
        if let Some(instance_id) = &params.instance_id {
            let member_id = self.static_ids.get(instance_id).ok_or_else(unknown)?;
            if *member_id != params.member_id {
                return Err((
                    ResponseError::FencedInstanceId,
                    format!(
                        "Static member {} with instance id {instance_id} is fenced by another member.",
                        params.member_id
                    ),
                ));
            }
            return Ok(member_id.clone());
        }
        self.members.contains_key(&params.member_id).then(|| params.member_id.clone()).ok_or_else(unknown)
    }

    /// A member joining (epoch 0): new, rejoining, or a static member coming
    /// back under a new member id. Whether the group changed.
    fn join(&mut self, now: Now, params: &HeartbeatParams, settings: &ConsumerSettings) -> Result<bool, Refusal> {
        if self.members.contains_key(&params.member_id) {
            return Ok(false);
        }
        let previous = params.instance_id.as_ref().and_then(|i| self.static_ids.get(i)).cloned();
        if let Some(old_id) = previous {
            let old = self.members.get(&old_id).cloned();
            if let Some(old) = old {
                if old.epoch != LEAVE_STATIC_EPOCH {
                    return Err((
                        ResponseError::UnreleasedInstanceId,
                        format!("Static member {} with instance id {} cannot join the group because the instance id is owned by member {old_id}.", params.member_id, params.instance_id.as_deref().unwrap_or_default()),
                    ));
                }
                // The new member takes the old one's place, target and partitions: no rebalance.
                self.members.remove(&old_id);
                let target = self.target.remove(&old_id).unwrap_or_default();
                self.target.insert(params.member_id.clone(), target);
                let mut member = old;
                member.id = params.member_id.clone();
                member.epoch = JOIN_EPOCH;
                member.previous_epoch = JOIN_EPOCH;
                member.session_deadline = now.instant + settings.session_timeout;
                self.members.insert(params.member_id.clone(), member);
                if let Some(instance_id) = &params.instance_id {
                    self.static_ids.insert(instance_id.clone(), params.member_id.clone());
                }
                return Ok(false);
            }
        }
        if self.members.len() >= settings.members_max {
            return Err((
                ResponseError::GroupMaxSizeReached,
                format!("The consumer group has reached its maximum capacity of {} members.", settings.members_max),
            ));
        }
        let member = Member {
            id: params.member_id.clone(),
            instance_id: params.instance_id.clone(),
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            epoch: JOIN_EPOCH,
            previous_epoch: JOIN_EPOCH,
            state: MemberState::Stable,
            rebalance_timeout_ms: params.rebalance_timeout_ms.max(0),
            topic_names: BTreeSet::new(),
            regex: None,
            assignor: None,
            assigned: Assignment::new(),
            revoking: Assignment::new(),
            session_deadline: now.instant + settings.session_timeout,
            revocation_deadline: None,
            classic: None,
        };
        if let Some(instance_id) = &params.instance_id {
            self.static_ids.insert(instance_id.clone(), params.member_id.clone());
        }
        self.members.insert(params.member_id.clone(), member);
        Ok(true)
    }

    /// Kafka's checks of a known member's heartbeat (`throwIfMemberEpochIsInvalid`).
    fn check_member(&self, params: &HeartbeatParams) -> Result<bool, Refusal> {
        let member = self.members.get(&params.member_id).ok_or_else(|| {
            (
                ResponseError::UnknownMemberId,
                format!("Member {} is not a member of group {}.", params.member_id, self.id),
            )
        })?;
        if let Some(instance_id) = &params.instance_id {
            if self.static_ids.get(instance_id) != Some(&params.member_id) {
                return Err((
                    ResponseError::FencedInstanceId,
                    format!("Instance id {instance_id} is owned by another member."),
                ));
            }
        }
        let fenced = || {
            (
                ResponseError::FencedMemberEpoch,
                format!("The consumer group member has a greater member epoch ({}) than the one known by the group coordinator ({}).", params.member_epoch, member.epoch),
            )
        };
        if params.member_epoch > member.epoch {
            return Err(fenced());
        }
        if params.member_epoch < member.epoch {
            // The answer bumping its epoch may have been lost: the previous
            // epoch is accepted while the member owns no more than it is assigned.
            let subset = params.owned.as_ref().is_some_and(|owned| is_subset(owned, &member.assigned));
            if params.member_epoch != member.previous_epoch || !subset {
                return Err((
                    ResponseError::FencedMemberEpoch,
                    format!("The consumer group member has a smaller member epoch ({}) than the one known by the group coordinator ({}).", params.member_epoch, member.epoch),
                ));
            }
        }
        Ok(false)
    }

    /// Refreshes a member's session and settings; whether its subscription changed.
    fn update_member(&mut self, now: Now, params: &HeartbeatParams, settings: &ConsumerSettings) -> bool {
        let Some(member) = self.members.get_mut(&params.member_id) else { return false };
        member.session_deadline = now.instant + settings.session_timeout;
        member.client_id.clone_from(&params.client_id);
        member.client_host.clone_from(&params.client_host);
        if params.rebalance_timeout_ms >= 0 {
            member.rebalance_timeout_ms = params.rebalance_timeout_ms;
        }
        if params.rack_id.is_some() {
            member.rack_id.clone_from(&params.rack_id);
        }
        let mut changed = false;
        if let Some(names) = &params.topic_names {
            let names: BTreeSet<String> = names.iter().cloned().collect();
            if names != member.topic_names {
                member.topic_names = names;
                changed = true;
            }
        }
        if let Some(pattern) = &params.topic_regex {
            let current = member.regex.as_ref().map(|(p, _)| p.as_str()).unwrap_or("");
            if pattern != current {
                // Checked when the heartbeat was validated.
                member.regex =
                    if pattern.is_empty() { None } else { compile_regex(pattern).ok().map(|r| (pattern.clone(), r)) };
                changed = true;
            }
        }
        if params.assignor.is_some() && params.assignor != member.assignor {
            member.assignor = params.assignor;
            changed = true;
        }
        changed
    }

    /// Takes the subscribed topics from `image` if it is new; a change of them
    /// moves the group epoch (once per heartbeat: `bump` is false when it already moved).
    fn refresh_subscribed(&mut self, image: &Rc<TopicImage>, bump: bool) {
        if self.image_seen.as_ref().is_some_and(|seen| Rc::ptr_eq(seen, image)) {
            return;
        }
        let subscribed: BTreeMap<String, (Uuid, i32)> = image
            .by_name
            .iter()
            .filter(|(name, _)| self.members.values().any(|m| m.subscribes_to(name)))
            .map(|(name, meta)| (name.clone(), *meta))
            .collect();
        if subscribed != self.subscribed {
            self.subscribed = subscribed;
            if bump {
                self.group_epoch += 1;
            }
        }
        self.image_seen = Some(image.clone());
    }

    /// The assignor the members prefer most (ties: the first configured), else the default.
    fn choose_assignor(&self, settings: &ConsumerSettings) -> AssignorKind {
        let mut votes: BTreeMap<usize, usize> = BTreeMap::new();
        for a in self.members.values().filter_map(|m| m.assignor) {
            if let Some(rank) = settings.assignors.iter().position(|s| *s == a) {
                *votes.entry(rank).or_default() += 1;
            }
        }
        let best = votes.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map(|(rank, _)| *rank);
        best.and_then(|rank| settings.assignors.get(rank).copied()).unwrap_or(settings.assignors[0])
    }

    /// Recomputes every member's target at the group epoch.
    fn compute_target(&mut self, settings: &ConsumerSettings) {
        self.assignor = self.choose_assignor(settings);
        let subscriptions: Vec<(String, Vec<(Uuid, i32)>)> = self
            .members
            .values()
            .map(|m| {
                let topics =
                    self.subscribed.iter().filter(|(name, _)| m.subscribes_to(name)).map(|(_, t)| *t).collect();
                (m.id.clone(), topics)
            })
            .collect();
        self.target = match self.assignor {
            AssignorKind::Uniform => assign_uniform(&subscriptions, &self.target),
            AssignorKind::Range => assign_range(&subscriptions),
        };
        self.assignment_epoch = self.group_epoch;
    }

    /// Whether a member other than `member_id` still holds the partition.
    fn held_by_other(&self, member_id: &str, topic: &Uuid, partition: i32) -> bool {
        self.members.values().any(|m| {
            m.id != member_id
                && (m.assigned.get(topic).is_some_and(|p| p.contains(&partition))
                    || m.revoking.get(topic).is_some_and(|p| p.contains(&partition)))
        })
    }

    /// Kafka's `CurrentAssignmentBuilder`: moves one member toward its target.
    fn reconcile(&mut self, member_id: &str, owned: Option<&Assignment>, now: Now) {
        let Some(member) = self.members.get(member_id) else { return };
        let compute = match member.state {
            MemberState::Stable => member.epoch != self.assignment_epoch,
            // Still owning a partition being revoked: it waits.
            MemberState::UnrevokedPartitions => !owns_any(owned, &member.revoking),
            MemberState::UnreleasedPartitions => true,
        };
        if !compute {
            return;
        }
        let empty = Assignment::new();
        let target = self.target.get(member_id).unwrap_or(&empty);
        let mut kept = Assignment::new();
        let mut revoking = Assignment::new();
        let mut assignable = Assignment::new();
        let mut unreleased = false;
        for (topic, partitions) in &member.assigned {
            let wanted = target.get(topic);
            for p in partitions {
                let into = if wanted.is_some_and(|w| w.contains(p)) { &mut kept } else { &mut revoking };
                into.entry(*topic).or_default().insert(*p);
            }
        }
        for (topic, partitions) in target {
            for p in partitions {
                if member.assigned.get(topic).is_some_and(|a| a.contains(p)) {
                    continue;
                }
                if self.held_by_other(member_id, topic, *p) {
                    unreleased = true;
                } else {
                    assignable.entry(*topic).or_default().insert(*p);
                }
            }
        }
        let target_epoch = self.assignment_epoch;
        let member = self.members.get_mut(member_id).expect("checked above");
        if !revoking.is_empty() && owns_any(owned, &revoking) {
            member.state = MemberState::UnrevokedPartitions;
            member.previous_epoch = member.epoch;
            member.assigned = kept;
            member.revoking = revoking;
            member.revocation_deadline =
                Some(now.instant + Duration::from_millis(member.rebalance_timeout_ms.max(0) as u64));
            return;
        }
        for (topic, partitions) in assignable {
            kept.entry(topic).or_default().extend(partitions);
        }
        member.state = if unreleased { MemberState::UnreleasedPartitions } else { MemberState::Stable };
        member.previous_epoch = member.epoch;
        member.epoch = target_epoch;
        member.assigned = kept;
        member.revoking = Assignment::new();
        member.revocation_deadline = None;
    }

    fn remove_member(&mut self, member_id: &str) {
        if let Some(member) = self.members.remove(member_id) {
            if let Some(instance_id) = &member.instance_id {
                if self.static_ids.get(instance_id).map(String::as_str) == Some(member_id) {
                    self.static_ids.remove(instance_id);
                }
            }
            self.target.remove(member_id);
            self.group_epoch += 1;
            // The subscribed topics may shrink.
            self.image_seen = None;
        }
    }

    /// The coordinator's timer: members whose session lapsed, who did not
    /// acknowledge a revocation within their rebalance timeout, or (classic
    /// members) did not rejoin or sync in time, are removed.
    pub fn tick(&mut self, now: Now, settings: &ConsumerSettings) -> Expired {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                now.instant >= m.session_deadline
                    || m.revocation_deadline.is_some_and(|d| now.instant >= d)
                    || m.classic.as_ref().is_some_and(|c| c.lapsed(now))
            })
            .map(|m| m.id.clone())
            .collect();
        let mut outcome = Expired::default();
        for member_id in &expired {
            tracing::info!(group = %self.id, member = %member_id, "consumer group member expired");
            outcome.any = true;
            outcome.consumer_protocol |= self.members.get(member_id).is_some_and(|m| m.classic.is_none());
            self.remove_member(member_id);
        }
        if !expired.is_empty() {
            // The subscribed topics as they were: the image is refreshed by the next heartbeat.
            let members = &self.members;
            self.subscribed.retain(|name, _| members.values().any(|m| m.subscribes_to(name)));
            self.compute_target(settings);
        }
        outcome
    }

    /// The group as the offsets partition stores it: its own record and each member's.
    pub fn stored_group(&self) -> StoredConsumerGroup {
        StoredConsumerGroup {
            group_epoch: self.group_epoch,
            assignment_epoch: self.assignment_epoch,
            assignor: self.assignor.name().to_string(),
            subscribed: self.subscribed.iter().map(|(name, (id, count))| (name.clone(), *id, *count)).collect(),
        }
    }

    /// The ids of the members, in order.
    pub fn member_ids(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    /// One member as stored, with its target.
    pub fn stored_member(&self, member_id: &str) -> Option<StoredConsumerMember> {
        let m = self.members.get(member_id)?;
        let flat = |a: &Assignment| -> StoredAssignment {
            a.iter().filter(|(_, p)| !p.is_empty()).map(|(t, p)| (*t, p.iter().copied().collect())).collect()
        };
        Some(StoredConsumerMember {
            member_id: m.id.clone(),
            instance_id: m.instance_id.clone(),
            rack_id: m.rack_id.clone(),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            epoch: m.epoch,
            previous_epoch: m.previous_epoch,
            state: m.state as u8,
            rebalance_timeout_ms: m.rebalance_timeout_ms,
            topic_names: m.topic_names.iter().cloned().collect(),
            topic_regex: m.regex.as_ref().map(|(p, _)| p.clone()),
            assignor: m.assignor.map(|a| a.name().to_string()),
            assigned: flat(&m.assigned),
            revoking: flat(&m.revoking),
            target: self.target.get(&m.id).map(flat).unwrap_or_default(),
            classic: m.classic.as_ref().map(|c| StoredClassicMembership {
                session_timeout_ms: c.session_timeout.as_millis().min(i32::MAX as u128) as i32,
                protocols: c.protocols.iter().map(|(n, m)| (n.clone(), m.to_vec())).collect(),
            }),
        })
    }

    /// A group as loaded from its offsets partition. Sessions restart now, and
    /// so does the time a member has to acknowledge a revocation, as Kafka's
    /// coordinator schedules both when it loads a group.
    pub fn from_stored(id: &str, stored: &StoredConsumer, now: Now, settings: &ConsumerSettings) -> ConsumerGroup {
        let default = settings.assignors[0];
        let unflat =
            |a: &StoredAssignment| -> Assignment { a.iter().map(|(t, p)| (*t, p.iter().copied().collect())).collect() };
        let mut group = ConsumerGroup::new(id, AssignorKind::parse(&stored.group.assignor).unwrap_or(default));
        group.group_epoch = stored.group.group_epoch;
        group.assignment_epoch = stored.group.assignment_epoch;
        group.subscribed =
            stored.group.subscribed.iter().map(|(name, id, count)| (name.clone(), (*id, *count))).collect();
        for m in stored.members.values() {
            let state = match m.state {
                1 => MemberState::UnrevokedPartitions,
                2 => MemberState::UnreleasedPartitions,
                _ => MemberState::Stable,
            };
            let regex = m.topic_regex.as_ref().and_then(|p| compile_regex(p).ok().map(|r| (p.clone(), r)));
            let revocation_deadline = (state == MemberState::UnrevokedPartitions)
                .then(|| now.instant + Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64));
            let member = Member {
                id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                rack_id: m.rack_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                epoch: m.epoch,
                previous_epoch: m.previous_epoch,
                state,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                topic_names: m.topic_names.iter().cloned().collect(),
                regex,
                assignor: m.assignor.as_deref().and_then(AssignorKind::parse),
                assigned: unflat(&m.assigned),
                revoking: unflat(&m.revoking),
                session_deadline: now.instant
                    + m.classic.as_ref().map_or(settings.session_timeout, |c| {
                        Duration::from_millis(c.session_timeout_ms.max(0) as u64)
                    }),
                revocation_deadline,
                classic: m.classic.as_ref().map(ClassicMembership::from_stored),
            };
            if let Some(instance_id) = &member.instance_id {
                group.static_ids.insert(instance_id.clone(), member.id.clone());
            }
            group.target.insert(member.id.clone(), unflat(&m.target));
            group.members.insert(member.id.clone(), member);
        }
        group
    }

    pub fn description(&self, image: &TopicImage) -> ConsumerGroupDescription {
        let named = |a: &Assignment| -> Vec<(Uuid, String, Vec<i32>)> {
            a.iter()
                .map(|(id, p)| (*id, image.names.get(id).cloned().unwrap_or_default(), p.iter().copied().collect()))
                .collect()
        };
        let empty = Assignment::new();
        let members = self
            .members
            .values()
            .map(|m| MemberDescription {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                rack_id: m.rack_id.clone(),
                member_epoch: m.epoch,
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                topic_names: m.topic_names.iter().cloned().collect(),
                topic_regex: m.regex.as_ref().map(|(p, _)| p.clone()),
                assignment: named(&m.assigned),
                target_assignment: named(self.target.get(&m.id).unwrap_or(&empty)),
                classic: m.classic.is_some(),
            })
            .collect();
        ConsumerGroupDescription {
            state: self.state_name(),
            group_epoch: self.group_epoch,
            assignment_epoch: self.assignment_epoch,
            assignor: self.assignor.name(),
            members,
        }
    }
}

/// Whether the member (by what it reported) still owns any of `partitions`;
/// a heartbeat that reports nothing is taken as still owning them.
fn owns_any(owned: Option<&Assignment>, partitions: &Assignment) -> bool {
    let Some(owned) = owned else { return true };
    partitions.iter().any(|(t, ps)| owned.get(t).is_some_and(|o| ps.iter().any(|p| o.contains(p))))
}

fn is_subset(small: &Assignment, big: &Assignment) -> bool {
    small.iter().all(|(t, ps)| ps.is_empty() || big.get(t).is_some_and(|b| ps.is_subset(b)))
}

fn same_partitions(a: &Assignment, b: &Assignment) -> bool {
    is_subset(a, b) && is_subset(b, a)
}

/// Each member's subscribed topics: (topic id, partition count).
type Subscriptions = [(String, Vec<(Uuid, i32)>)];

/// The uniform assignor: as even as the subscriptions allow, and sticky:
/// members keep what they can of their previous target.
pub fn assign_uniform(members: &Subscriptions, previous: &HashMap<String, Assignment>) -> HashMap<String, Assignment> {
    let mut result: HashMap<String, Assignment> =
        members.iter().map(|(id, _)| (id.clone(), Assignment::new())).collect();
    let eligible: BTreeMap<(Uuid, i32), Vec<&str>> = {
        let mut eligible: BTreeMap<(Uuid, i32), Vec<&str>> = BTreeMap::new();
        for (member, topics) in members {
            for (topic, count) in topics {
                for p in 0..*count {
                    eligible.entry((*topic, p)).or_default().push(member.as_str());
                }
            }
        }
        eligible
    };
    let active = members.iter().filter(|(_, t)| !t.is_empty()).count();
    if active == 0 {
        return result;
    }
    let base = eligible.len() / active;
    let mut extra = eligible.len() % active;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let mut taken: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    // Sticky: each member keeps up to `base` of its previous partitions, then
    // the first ones up to one more while the remainder lasts.
    for quota_extra in [false, true] {
        for (member, _) in members {
            let Some(before) = previous.get(member) else { continue };
            for (topic, partitions) in before {
                for p in partitions {
                    let key = (*topic, *p);
                    let count = counts.entry(member.as_str()).or_default();
                    let quota = if quota_extra { base + usize::from(extra > 0 && *count == base) } else { base };
                    if taken.contains(&key) || *count >= quota {
                        continue;
                    }
                    if !eligible.get(&key).is_some_and(|m| m.contains(&member.as_str())) {
                        continue;
                    }
                    if quota_extra && *count == base {
                        extra -= 1;
                    }
                    *count += 1;
                    taken.insert(key);
                    result.entry(member.clone()).or_default().entry(*topic).or_default().insert(*p);
                }
            }
        }
    }
    // The rest, each to the least loaded member that subscribes to it.
    for (key, candidates) in &eligible {
        if taken.contains(key) {
            continue;
        }
        let Some(member) = candidates.iter().copied().min_by_key(|m| (counts.get(m).copied().unwrap_or(0), *m)) else {
            continue;
        };
        *counts.entry(member).or_default() += 1;
        result.entry(member.to_string()).or_default().entry(key.0).or_default().insert(key.1);
    }
    result
}

/// The range assignor: per topic, its subscribers ordered by member id each
/// take a contiguous range; the first `partitions % members` one more.
pub fn assign_range(members: &Subscriptions) -> HashMap<String, Assignment> {
    let mut result: HashMap<String, Assignment> =
        members.iter().map(|(id, _)| (id.clone(), Assignment::new())).collect();
    let mut subscribers: BTreeMap<(Uuid, i32), Vec<&str>> = BTreeMap::new();
    for (member, topics) in members {
        for (topic, count) in topics {
            subscribers.entry((*topic, *count)).or_default().push(member.as_str());
        }
    }
    for ((topic, count), mut ids) in subscribers {
        ids.sort_unstable();
        let n = ids.len() as i32;
        let (base, extra) = (count / n, count % n);
        let mut start = 0;
        for (i, member) in ids.iter().enumerate() {
            let len = base + i32::from((i as i32) < extra);
            if len > 0 {
                result.entry(member.to_string()).or_default().entry(topic).or_default().extend(start..start + len);
            }
            start += len;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ConsumerSettings {
        ConsumerSettings {
            session_timeout: Duration::from_secs(45),
            heartbeat_interval_ms: 5_000,
            assignors: vec![AssignorKind::Uniform, AssignorKind::Range],
            members_max: 3,
            upgrade_enabled: true,
            downgrade_enabled: true,
        }
    }

    fn topic_id(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    fn image(topics: &[(&str, u8, i32)]) -> Rc<TopicImage> {
        Rc::new(TopicImage::new(topics.iter().map(|(n, id, p)| (n.to_string(), topic_id(*id), *p))))
    }

    fn join(member: &str, topics: &[&str]) -> HeartbeatParams {
        HeartbeatParams {
            member_id: member.into(),
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            topic_names: Some(topics.iter().map(|t| t.to_string()).collect()),
            owned: Some(Assignment::new()),
            ..HeartbeatParams::default()
        }
    }

    fn beat(member: &str, epoch: i32, owned: &Assignment) -> HeartbeatParams {
        HeartbeatParams {
            member_id: member.into(),
            member_epoch: epoch,
            rebalance_timeout_ms: -1,
            owned: Some(owned.clone()),
            ..HeartbeatParams::default()
        }
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(BTreeSet::len).sum()
    }

    /// A member as a client runs it: what it owns and its epoch.
    struct Client {
        id: &'static str,
        epoch: i32,
        owned: Assignment,
    }

    impl Client {
        fn beat(&mut self, g: &mut ConsumerGroup, now: Now, img: &Rc<TopicImage>) -> HeartbeatAnswer {
            let a = g.heartbeat(now, beat(self.id, self.epoch, &self.owned), img, &settings()).unwrap();
            self.epoch = a.member_epoch;
            if let Some(assigned) = &a.assignment {
                // The client gives up what is no longer assigned at once.
                self.owned = assigned.clone();
            }
            a
        }
    }

    fn no_partition_twice(clients: &[&Client]) -> bool {
        let mut seen = BTreeSet::new();
        clients.iter().all(|c| c.owned.iter().all(|(t, ps)| ps.iter().all(|p| seen.insert((*t, *p)))))
    }

    #[test]
    fn first_member_gets_every_partition_at_epoch_one() {
        let img = image(&[("t", 1, 4)]);
        let mut g = ConsumerGroup::new("g", AssignorKind::Uniform);
        let a = g.heartbeat(Now::system(), join("a", &["t"]), &img, &settings()).unwrap();
        assert_eq!((a.member_epoch, count(a.assignment.as_ref().unwrap())), (1, 4));
        assert_eq!(g.state_name(), "Stable");
    }

    #[test]
    fn a_partition_moves_only_after_its_revocation_is_acknowledged() {
        let now = Now::system();
        let img = image(&[("t", 1, 4)]);
        let mut g = ConsumerGroup::new("g", AssignorKind::Uniform);
        let mut a = Client { id: "a", epoch: 0, owned: Assignment::new() };
        let first = g.heartbeat(now, join("a", &["t"]), &img, &settings()).unwrap();
        a.epoch = first.member_epoch;
        a.owned = first.assignment.unwrap();
        // b joins: its target holds two of a's partitions, still owned by a.
        let jb = g.heartbeat(now, join("b", &["t"]), &img, &settings()).unwrap();
        assert_eq!(jb.member_epoch, 2);
        assert_eq!(count(jb.assignment.as_ref().unwrap()), 0, "nothing before a releases");
        let mut b = Client { id: "b", epoch: 2, owned: Assignment::new() };
        assert_eq!(g.state_name(), "Reconciling");
        // a is told to give up two partitions, at its old epoch.
        let ra = a.beat(&mut g, now, &img);
        assert_eq!((ra.member_epoch, count(&a.owned)), (1, 2));
        // Before a acknowledges (it reported owning them then), b still gets nothing.
        b.beat(&mut g, now, &img);
        assert_eq!(count(&b.owned), 0);
        // a acknowledges by reporting what it owns now, and moves to epoch 2.
        let ra = a.beat(&mut g, now, &img);
        assert_eq!(ra.member_epoch, 2);
        b.beat(&mut g, now, &img);
        assert_eq!((count(&a.owned), count(&b.owned)), (2, 2));
        assert!(no_partition_twice(&[&a, &b]));
        assert_eq!(g.state_name(), "Stable");
    }

    #[test]
    fn leave_and_session_expiry_hand_partitions_over() {
        let now = Now::system();
        let img = image(&[("t", 1, 6)]);
        let mut g = ConsumerGroup::new("g", AssignorKind::Uniform);
        let mut clients: Vec<Client> =
            ["a", "b", "c"].into_iter().map(|id| Client { id, epoch: 0, owned: Assignment::new() }).collect();
        for c in clients.iter_mut() {
            let a = g.heartbeat(now, join(c.id, &["t"]), &img, &settings()).unwrap();
            c.epoch = a.member_epoch;
            c.owned = a.assignment.unwrap();
        }
        for _ in 0..3 {
            for c in clients.iter_mut() {
                c.beat(&mut g, now, &img);
            }
        }
        assert!(clients.iter().all(|c| count(&c.owned) == 2));
        // c leaves.
        let left = g
            .heartbeat(
                now,
                HeartbeatParams { member_epoch: -1, ..beat("c", clients[2].epoch, &clients[2].owned) },
                &img,
                &settings(),
            )
            .unwrap();
        assert_eq!(left.member_epoch, -1);
        clients.pop();
        for c in clients.iter_mut() {
            c.beat(&mut g, now, &img);
        }
        assert!(clients.iter().all(|c| count(&c.owned) == 3));
        // b stops heartbeating: after the session timeout a takes everything.
        let later = now.after(Duration::from_secs(46));
        assert!(!g.tick(now.after(Duration::from_secs(30)), &settings()).any);
        clients[0].beat(&mut g, now.after(Duration::from_secs(30)), &img);
        assert!(g.tick(later, &settings()).any);
        clients[0].beat(&mut g, later, &img);
        assert_eq!(count(&clients[0].owned), 6);
        // b comes back with its old epoch: unknown.
        let err = g.heartbeat(later, beat("b", clients[1].epoch, &clients[1].owned), &img, &settings()).unwrap_err();
        assert_eq!(err.0, ResponseError::UnknownMemberId);
    }

    #[test]
    fn epochs_are_fenced_as_kafka_does() {
        let now = Now::system();
        let img = image(&[("t", 1, 2)]);
        let mut g = ConsumerGroup::new("g", AssignorKind::Uniform);
        let a = g.heartbeat(now, join("a", &["t"]), &img, &settings()).unwrap();
        let owned = a.assignment.unwrap();
        let err = g.heartbeat(now, beat("a", 5, &owned), &img, &settings()).unwrap_err();
        assert_eq!(err.0, ResponseError::FencedMemberEpoch);
        // A partition more: epoch 2. Then a heartbeat at epoch 1 as if the
        // answer was lost, owning a subset of the assignment: accepted.
        let img2 = image(&[("t", 1, 3)]);
        let two = g.heartbeat(now, beat("a", 1, &owned), &img2, &settings()).unwrap();
        assert_eq!(two.member_epoch, 2);
        assert_eq!(g.heartbeat(now, beat("a", 1, &owned), &img2, &settings()).unwrap().member_epoch, 2);
        // At epoch 1 owning something not assigned: fenced.
        let stranger = Assignment::from([(topic_id(9), BTreeSet::from([0]))]);
        let err = g.heartbeat(now, beat("a", 1, &stranger), &img2, &settings()).unwrap_err();
        assert_eq!(err.0, ResponseError::FencedMemberEpoch);
        assert!(g.admit_commit("a", 2).is_ok());
        assert_eq!(g.admit_commit("a", 1), Err(ResponseError::StaleMemberEpoch));
        assert_eq!(g.admit_commit("x", 2), Err(ResponseError::UnknownMemberId));
        assert_eq!(g.admit_commit("", -1), Err(ResponseError::UnknownMemberId));
    }

    #[test]
    fn group_size_and_static_members() {
        let now = Now::system();
        let img = image(&[("t", 1, 2)]);
        let mut g = ConsumerGroup::new("g", AssignorKind::Uniform);
        let with_instance = |id: &str| HeartbeatParams { instance_id: Some("i1".into()), ..join(id, &["t"]) };
        let a = g.heartbeat(now, with_instance("a"), &img, &settings()).unwrap();
        // The instance id is still in use by a.
        let err = g.heartbeat(now, with_instance("a2"), &img, &settings()).unwrap_err();
        assert_eq!(err.0, ResponseError::UnreleasedInstanceId);
        // a leaves for a while (-2); a2 comes back with its partitions, no new group epoch.
        let epoch = g.group_epoch();
        let leave = HeartbeatParams {
            member_epoch: -2,
            instance_id: Some("i1".into()),
            ..beat("a", 1, &a.assignment.clone().unwrap())
        };
        assert_eq!(g.heartbeat(now, leave, &img, &settings()).unwrap().member_epoch, -2);
        let back = g.heartbeat(now, with_instance("a2"), &img, &settings()).unwrap();
        assert_eq!((back.assignment, back.member_epoch, g.group_epoch()), (a.assignment, epoch, epoch));
        g.heartbeat(now, join("b", &["t"]), &img, &settings()).unwrap();
        g.heartbeat(now, join("c", &["t"]), &img, &settings()).unwrap();
        let err = g.heartbeat(now, join("d", &["t"]), &img, &settings()).unwrap_err();
        assert_eq!(err.0, ResponseError::GroupMaxSizeReached);
    }

    #[test]
    fn topic_changes_and_regex_move_the_group_epoch() {
        let now = Now::system();
        let mut g = ConsumerGroup::new("g", AssignorKind::Uniform);
        let img = image(&[("orders-1", 1, 2), ("other", 2, 2)]);
        let regex = HeartbeatParams { topic_names: None, topic_regex: Some("orders-.*".into()), ..join("a", &[]) };
        let a = g.heartbeat(now, regex, &img, &settings()).unwrap();
        assert_eq!(a.assignment.as_ref().unwrap().keys().collect::<Vec<_>>(), vec![&topic_id(1)]);
        // A topic created later that matches, and more partitions of the first.
        let img2 = image(&[("orders-1", 1, 3), ("orders-2", 3, 1), ("other", 2, 2)]);
        let a2 =
            g.heartbeat(now, beat("a", a.member_epoch, a.assignment.as_ref().unwrap()), &img2, &settings()).unwrap();
        assert_eq!(a2.member_epoch, 2);
        assert_eq!(count(a2.assignment.as_ref().unwrap()), 4);
        // The first topic deleted: its partitions are revoked.
        let img3 = image(&[("orders-2", 3, 1)]);
        let a3 = g.heartbeat(now, beat("a", 2, a2.assignment.as_ref().unwrap()), &img3, &settings()).unwrap();
        assert_eq!(count(a3.assignment.as_ref().unwrap()), 1);
    }

    #[test]
    fn invalid_heartbeats_are_refused() {
        let fields = |epoch: i32| HeartbeatFields {
            version: 1,
            group_id: "g".into(),
            member_id: "m".into(),
            member_epoch: epoch,
            rebalance_timeout_ms: 1000,
            topic_names: Some(vec![]),
            owned: Some(vec![]),
            ..HeartbeatFields::default()
        };
        let kinds = [AssignorKind::Uniform];
        let code = |f: HeartbeatFields| HeartbeatParams::from_fields(f, &kinds).map(|_| ()).map_err(|e| e.0);
        assert_eq!(code(fields(0)), Ok(()));
        assert_eq!(code(HeartbeatFields { member_id: String::new(), ..fields(0) }), Err(ResponseError::InvalidRequest));
        assert_eq!(code(HeartbeatFields { version: 0, member_id: String::new(), ..fields(0) }), Ok(()));
        assert_eq!(code(fields(-3)), Err(ResponseError::InvalidRequest));
        assert_eq!(code(fields(-2)), Err(ResponseError::InvalidRequest));
        assert_eq!(
            code(HeartbeatFields { topic_regex: Some("(".into()), ..fields(0) }),
            Err(ResponseError::InvalidRegularExpression)
        );
        assert_eq!(
            code(HeartbeatFields { server_assignor: Some("range".into()), ..fields(0) }),
            Err(ResponseError::UnsupportedAssignor)
        );
        assert_eq!(code(HeartbeatFields { owned: None, ..fields(0) }), Err(ResponseError::InvalidRequest));
        let long = "a".repeat(GROUP_CONSUMER_REGEX_BYTES_MAX + 1);
        assert_eq!(
            code(HeartbeatFields { topic_regex: Some(long), ..fields(0) }),
            Err(ResponseError::InvalidRegularExpression)
        );
    }

    #[test]
    fn regex_matches_whole_names() {
        let r = compile_regex("orders|pay.*").unwrap();
        assert!(r.is_match("orders") && r.is_match("payments"));
        assert!(!r.is_match("orders-2") && !r.is_match("repay"));
    }

    #[test]
    fn uniform_is_balanced_and_sticky() {
        let t = topic_id(1);
        let subs = |ids: &[&str]| ids.iter().map(|id| (id.to_string(), vec![(t, 7)])).collect::<Vec<_>>();
        let first = assign_uniform(&subs(&["a", "b"]), &HashMap::new());
        let sizes = |r: &HashMap<String, Assignment>| {
            let mut s: Vec<usize> = r.values().map(count).collect();
            s.sort();
            s
        };
        assert_eq!(sizes(&first), vec![3, 4]);
        let second = assign_uniform(&subs(&["a", "b", "c"]), &first);
        assert_eq!(sizes(&second), vec![2, 2, 3]);
        // a and b kept only partitions they had.
        for id in ["a", "b"] {
            assert!(is_subset(&second[id], &first[id]), "{id} moved partitions it could keep");
        }
        let all: BTreeSet<i32> = second.values().flat_map(|a| a[&t].iter().copied()).collect();
        assert_eq!(all.len(), 7);
    }

    #[test]
    fn uniform_respects_subscriptions() {
        let (t1, t2) = (topic_id(1), topic_id(2));
        let subs = vec![("a".to_string(), vec![(t1, 2)]), ("b".to_string(), vec![(t1, 2), (t2, 4)])];
        let r = assign_uniform(&subs, &HashMap::new());
        assert!(!r["a"].contains_key(&t2));
        assert_eq!(count(&r["a"]) + count(&r["b"]), 6);
        assert_eq!(r["b"][&t2].len(), 4);
    }

    #[test]
    fn range_gives_contiguous_ranges_in_member_order() {
        let t = topic_id(1);
        let subs = vec![("b".to_string(), vec![(t, 5)]), ("a".to_string(), vec![(t, 5)])];
        let r = assign_range(&subs);
        assert_eq!(r["a"][&t], BTreeSet::from([0, 1, 2]));
        assert_eq!(r["b"][&t], BTreeSet::from([3, 4]));
    }

    fn stored(g: &ConsumerGroup) -> StoredConsumer {
        StoredConsumer {
            group: g.stored_group(),
            members: g.member_ids().map(|id| (id.to_string(), g.stored_member(id).unwrap())).collect(),
        }
    }

    #[test]
    fn a_reloaded_group_goes_on_where_it_was_with_fresh_sessions() {
        let now = Now::system();
        let img = image(&[("t", 1, 4)]);
        let mut g = ConsumerGroup::new("g", AssignorKind::Uniform);
        let mut a = Client { id: "a", epoch: 0, owned: Assignment::new() };
        let first = g.heartbeat(now, join("a", &["t"]), &img, &settings()).unwrap();
        (a.epoch, a.owned) = (first.member_epoch, first.assignment.unwrap());
        let static_b = HeartbeatParams { instance_id: Some("ib".into()), ..join("b", &["t"]) };
        g.heartbeat(now, static_b, &img, &settings()).unwrap();
        // a is told to give two partitions up: it is mid-revocation when the broker stops.
        a.beat(&mut g, now, &img);
        assert_eq!((a.epoch, count(&a.owned)), (1, 2));
        let saved = stored(&g);

        // Loaded 40 s later: sessions (45 s) and the revocation (30 s) start over.
        let later = now.after(Duration::from_secs(40));
        let mut back = ConsumerGroup::from_stored("g", &saved, later, &settings());
        assert_eq!(stored(&back), saved, "nothing is lost or invented by a reload");
        assert_eq!((back.group_epoch(), back.state_name()), (2, "Reconciling"));
        assert!(!back.tick(later.after(Duration::from_secs(29)), &settings()).any, "nobody expires early");
        // a acknowledges the revocation at its old epoch and reaches the group's.
        let answer = a.beat(&mut back, later, &img);
        assert_eq!(answer.member_epoch, 2);
        let mut b = Client { id: "b", epoch: 2, owned: Assignment::new() };
        b.beat(&mut back, later, &img);
        assert_eq!((count(&a.owned), count(&b.owned)), (2, 2));
        assert!(no_partition_twice(&[&a, &b]));
        assert_eq!(back.group_epoch(), 2, "no rebalance came of the reload");
        // The static member is still known by its instance id.
        let replaced = HeartbeatParams { instance_id: Some("ib".into()), ..join("b2", &["t"]) };
        let err = back.heartbeat(later, replaced, &img, &settings()).unwrap_err();
        assert_eq!(err.0, ResponseError::UnreleasedInstanceId);
        // Silent members expire a session timeout after the reload.
        assert!(back.tick(later.after(Duration::from_secs(46)), &settings()).any);
        assert!(back.is_empty());
    }

    #[test]
    fn the_most_wanted_assignor_is_used() {
        let now = Now::system();
        let img = image(&[("t", 1, 4)]);
        let mut g = ConsumerGroup::new("g", AssignorKind::Uniform);
        let ranged = HeartbeatParams { assignor: Some(AssignorKind::Range), ..join("a", &["t"]) };
        g.heartbeat(now, ranged, &img, &settings()).unwrap();
        assert_eq!(g.description(&img).assignor, "range");
    }
}
