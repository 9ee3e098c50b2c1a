//! Members that still speak the classic protocol inside a consumer group, as
//! Kafka 4 runs them once a group has migrated online (KIP-848's upgrade
//! path): a classic group with members becomes a consumer group when a
//! member of the consumer protocol joins it, and its members go on with
//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup. The coordinator assigns
//! them partitions as it does every other member, and they reconcile through
//! rejoining:
//!
//! - JoinGroup updates the member's subscription from its embedded consumer
//!   protocol metadata and moves it toward its target, taking the partitions
//!   it reports owned as its acknowledgement of a revocation. It answers at
//!   once, with the member's epoch as generation and no leader: nobody
//!   assigns on the client side.
//! - SyncGroup hands out the member's current assignment, serialized at the
//!   version of its subscription.
//! - Heartbeat answers REBALANCE_IN_PROGRESS while the member has catching up
//!   to do (a newer group epoch, partitions to give up, or freed partitions to
//!   take); it then has its rebalance timeout to rejoin, and after joining, to
//!   sync.
//!
//! When the last member speaking the consumer protocol leaves, the group
//! turns back into a classic group ([`ConsumerGroup::migrating_members`]).

use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, HeartbeatRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::{Assignment, ConsumerGroup, ConsumerSettings, Member, MemberState, TopicImage, JOIN_EPOCH};
use crate::group::classic::{
    join_error, leave_identities, leave_response, leave_result, str_bytes, JoinParams, MigratingMember,
};
use crate::group::clock::Now;
use crate::group::store::StoredClassicMembership;
use sluice_protocol::ResponseError;

/// The embedded protocol type every classic member of a consumer group uses.
const CONSUMER_PROTOCOL_TYPE: &str = "consumer";
/// The highest ConsumerProtocolAssignment version there is.
const ASSIGNMENT_VERSION_MAX: i16 = 3;
/// The highest ConsumerProtocolSubscription version there is.
const SUBSCRIPTION_VERSION_MAX: i16 = 3;

/// What a consumer group knows of a member speaking the classic protocol.
#[derive(Debug, Clone)]
pub struct ClassicMembership {
    pub(super) session_timeout: Duration,
    /// (name, metadata) as its last JoinGroup listed them, in its order.
    pub(super) protocols: Vec<(String, Bytes)>,
    /// Told to rejoin: removed unless it joins by then.
    join_deadline: Option<Instant>,
    /// Joined: removed unless it syncs by then.
    sync_deadline: Option<Instant>,
}

impl ClassicMembership {
    pub(super) fn from_stored(stored: &StoredClassicMembership) -> ClassicMembership {
        ClassicMembership {
            session_timeout: Duration::from_millis(stored.session_timeout_ms.max(0) as u64),
            protocols: stored.protocols.iter().map(|(n, m)| (n.clone(), Bytes::from(m.clone()))).collect(),
            join_deadline: None,
            sync_deadline: None,
        }
    }

    /// Whether the member missed the time it had to rejoin or to sync.
    pub(super) fn lapsed(&self, now: Now) -> bool {
        [self.join_deadline, self.sync_deadline].into_iter().flatten().any(|d| now.instant >= d)
    }

    fn protocol_name(&self) -> &str {
        self.protocols.first().map(|(n, _)| n.as_str()).unwrap_or_default()
    }

    /// The version its assignment is serialized at: that of its subscription.
    fn assignment_version(&self) -> i16 {
        let metadata = self.protocols.first().map(|(_, m)| m.as_ref()).unwrap_or_default();
        match metadata {
            [a, b, ..] => i16::from_be_bytes([*a, *b]).clamp(0, ASSIGNMENT_VERSION_MAX),
            _ => 0,
        }
    }
}

/// A member's embedded consumer protocol subscription.
struct Subscription {
    topics: BTreeSet<String>,
    owned: Vec<(String, Vec<i32>)>,
    rack_id: Option<String>,
}

fn decode_subscription(metadata: &Bytes) -> Option<Subscription> {
    let mut buf = metadata.clone();
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16().clamp(0, SUBSCRIPTION_VERSION_MAX);
    let sub = ConsumerProtocolSubscription::decode(&mut buf, version).ok()?;
    Some(Subscription {
        topics: sub.topics.iter().map(|t| t.to_string()).collect(),
        owned: sub.owned_partitions.iter().map(|o| (o.topic.to_string(), o.partitions.clone())).collect(),
        rack_id: sub.rack_id.map(|r| r.to_string()),
    })
}

/// A member's share of a classic assignment; empty bytes are no partitions.
fn decode_assignment(bytes: &Bytes, image: &TopicImage) -> Option<Assignment> {
    if bytes.is_empty() {
        return Some(Assignment::new());
    }
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16().clamp(0, ASSIGNMENT_VERSION_MAX);
    let decoded = ConsumerProtocolAssignment::decode(&mut buf, version).ok()?;
    Some(by_id(decoded.assigned_partitions.iter().map(|t| (t.topic.to_string(), t.partitions.clone())), image))
}

/// Partitions by topic name as partitions by topic id; topics gone are dropped.
fn by_id(named: impl Iterator<Item = (String, Vec<i32>)>, image: &TopicImage) -> Assignment {
    let mut assignment = Assignment::new();
    for (name, partitions) in named {
        if let Some((id, _)) = image.by_name.get(&name) {
            assignment.entry(*id).or_default().extend(partitions);
        }
    }
    assignment
}

/// An assignment as the consumer protocol serializes it for a classic member.
fn encode_assignment(assignment: &Assignment, image: &TopicImage, version: i16) -> Bytes {
    let topics = assignment
        .iter()
        .filter(|(_, p)| !p.is_empty())
        .filter_map(|(id, p)| {
            let name = image.names.get(id)?;
            Some(
                AssignedTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(name.clone())))
                    .with_partitions(p.iter().copied().collect()),
            )
        })
        .collect();
    let body = ConsumerProtocolAssignment::default().with_assigned_partitions(topics);
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    // Only a version outside 0..=3 fails, and the version is clamped to it.
    let _ = body.encode(&mut buf, version);
    buf.freeze()
}

impl ConsumerGroup {
    /// A classic group with members as a consumer group (Kafka's
    /// `ConsumerGroup.fromClassicGroup`): each member keeps its last
    /// assignment as both current and target, Stable at the generation,
    /// which becomes the group and assignment epoch. None if a member's
    /// embedded protocol cannot be read.
    pub fn from_classic_group(
        id: &str,
        generation: i32,
        members: Vec<MigratingMember>,
        image: &Rc<TopicImage>,
        now: Now,
        settings: &ConsumerSettings,
    ) -> Option<ConsumerGroup> {
        let mut group = ConsumerGroup::new(id, settings.assignors[0]);
        group.group_epoch = generation;
        group.assignment_epoch = generation;
        for m in members {
            let subscription = decode_subscription(&m.protocols.first()?.1)?;
            let assigned = decode_assignment(&m.assignment, image)?;
            if let Some(instance_id) = &m.instance_id {
                group.static_ids.insert(instance_id.clone(), m.id.clone());
            }
            group.target.insert(m.id.clone(), assigned.clone());
            let member = Member {
                id: m.id.clone(),
                instance_id: m.instance_id,
                rack_id: subscription.rack_id,
                client_id: m.client_id,
                client_host: m.client_host,
                epoch: generation,
                previous_epoch: generation,
                state: MemberState::Stable,
                rebalance_timeout_ms: m.rebalance_timeout.as_millis().min(i32::MAX as u128) as i32,
                topic_names: subscription.topics,
                regex: None,
                assignor: None,
                assigned,
                revoking: Assignment::new(),
                session_deadline: now.instant + m.session_timeout,
                revocation_deadline: None,
                classic: Some(ClassicMembership {
                    session_timeout: m.session_timeout,
                    protocols: m.protocols,
                    join_deadline: None,
                    sync_deadline: None,
                }),
            };
            group.members.insert(m.id, member);
        }
        group.refresh_subscribed(image, false);
        Some(group)
    }

    /// Whether the member speaks the consumer protocol (None: no such member).
    pub fn uses_consumer_protocol(&self, member_id: &str) -> Option<bool> {
        self.members.get(member_id).map(|m| m.classic.is_none())
    }

    /// Whether every member speaks the classic protocol.
    pub fn all_classic(&self) -> bool {
        self.members.values().all(|m| m.classic.is_some())
    }

    /// How many members the group has.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// The members as a classic group takes them over, each with its target
    /// assignment serialized for it (Kafka's `ClassicGroup.fromConsumerGroup`).
    /// Only members speaking the classic protocol can be taken over.
    pub fn migrating_members(&self, image: &TopicImage) -> Vec<MigratingMember> {
        let empty = Assignment::new();
        self.members
            .values()
            .filter_map(|m| {
                let classic = m.classic.as_ref()?;
                let target = self.target.get(&m.id).unwrap_or(&empty);
                Some(MigratingMember {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout: classic.session_timeout,
                    rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64),
                    protocols: classic.protocols.clone(),
                    assignment: encode_assignment(target, image, classic.assignment_version()),
                })
            })
            .collect()
    }

    /// Whether a classic member's protocols fit the group (Kafka's
    /// `supportsClassicProtocols`): the consumer protocol type, and a protocol
    /// every classic member lists.
    fn supports_classic(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type != CONSUMER_PROTOCOL_TYPE || protocols.is_empty() {
            return false;
        }
        protocols.iter().any(|(name, _)| {
            self.members.values().filter_map(|m| m.classic.as_ref()).all(|c| c.protocols.iter().any(|(n, _)| n == name))
        })
    }

    /// JoinGroup of a classic member (Kafka's `classicGroupJoinToConsumerGroup`):
    /// answered at once. An error answer is `Ok` when it carries a member id
    /// (MEMBER_ID_REQUIRED).
    pub fn classic_join(
        &mut self,
        now: Now,
        params: &JoinParams,
        image: &Rc<TopicImage>,
        settings: &ConsumerSettings,
    ) -> Result<JoinGroupResponse, ResponseError> {
        let unknown = params.member_id.is_empty();
        let member_id = if unknown { uuid::Uuid::new_v4().to_string() } else { params.member_id.clone() };
        let known = self.members.contains_key(&member_id);
        let replaces = params.instance_id.as_ref().and_then(|i| self.static_ids.get(i)).cloned();
        if !known && replaces.is_none() && self.members.len() >= settings.members_max {
            return Err(ResponseError::GroupMaxSizeReached);
        }
        if !self.supports_classic(&params.protocol_type, &params.protocols) {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        if unknown && params.instance_id.is_none() && params.version >= 4 {
            return Ok(join_error(ResponseError::MemberIdRequired, &member_id));
        }
        let subscription = decode_subscription(&params.protocols[0].1).ok_or(ResponseError::UnknownServerError)?;
        let mut changed = false;
        match replaces {
            Some(old_id) if old_id != member_id => {
                if !unknown {
                    return Err(ResponseError::FencedInstanceId);
                }
                // A static member back under a new id takes its old place, target and partitions.
                let mut member = self.members.remove(&old_id).expect("static ids name members");
                let target = self.target.remove(&old_id).unwrap_or_default();
                self.target.insert(member_id.clone(), target);
                member.id = member_id.clone();
                member.epoch = JOIN_EPOCH;
                member.previous_epoch = JOIN_EPOCH;
                self.members.insert(member_id.clone(), member);
            }
            Some(_) => {}
            None if known => {}
            None => {
                self.members.insert(
                    member_id.clone(),
                    Member {
                        id: member_id.clone(),
                        instance_id: None,
                        rack_id: None,
                        client_id: String::new(),
                        client_host: String::new(),
                        epoch: JOIN_EPOCH,
                        previous_epoch: JOIN_EPOCH,
                        state: MemberState::Stable,
                        rebalance_timeout_ms: 0,
                        topic_names: BTreeSet::new(),
                        regex: None,
                        assignor: None,
                        assigned: Assignment::new(),
                        revoking: Assignment::new(),
                        session_deadline: now.instant,
                        revocation_deadline: None,
                        classic: None,
                    },
                );
                changed = true;
            }
        }
        if let Some(instance_id) = &params.instance_id {
            self.static_ids.insert(instance_id.clone(), member_id.clone());
        }
        let member = self.members.get_mut(&member_id).expect("present above");
        member.instance_id.clone_from(&params.instance_id);
        if subscription.rack_id.is_some() {
            member.rack_id = subscription.rack_id;
        }
        member.rebalance_timeout_ms = params.rebalance_timeout.as_millis().min(i32::MAX as u128) as i32;
        member.client_id.clone_from(&params.client_id);
        member.client_host.clone_from(&params.client_host);
        member.session_deadline = now.instant + params.session_timeout;
        if member.topic_names != subscription.topics || member.regex.is_some() {
            member.topic_names = subscription.topics;
            member.regex = None;
            changed = true;
        }
        member.classic = Some(ClassicMembership {
            session_timeout: params.session_timeout,
            protocols: params.protocols.clone(),
            join_deadline: None,
            sync_deadline: Some(now.instant + params.rebalance_timeout),
        });
        if changed {
            self.group_epoch += 1;
            self.image_seen = None;
        }
        self.refresh_subscribed(image, !changed);
        if self.group_epoch > self.assignment_epoch {
            self.compute_target(settings);
        }
        let owned = by_id(subscription.owned.into_iter(), image);
        self.reconcile(&member_id, Some(&owned), now);
        let member = &self.members[&member_id];
        let protocol = member.classic.as_ref().map(ClassicMembership::protocol_name).unwrap_or_default();
        Ok(JoinGroupResponse::default()
            .with_member_id(str_bytes(&member_id))
            .with_generation_id(member.epoch)
            .with_protocol_type(Some(str_bytes(CONSUMER_PROTOCOL_TYPE)))
            .with_protocol_name(Some(str_bytes(protocol)))
            .with_leader(StrBytes::default()))
    }

    /// The classic member a request names (Kafka's `validateConsumerGroupMember`
    /// and `throwIfMemberDoesNotUseClassicProtocol`).
    fn classic_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<&Member, ResponseError> {
        let member = match instance_id {
            Some(instance_id) => {
                let current = self.static_ids.get(instance_id).ok_or(ResponseError::UnknownMemberId)?;
                if current != member_id {
                    return Err(ResponseError::FencedInstanceId);
                }
                self.members.get(current)
            }
            None => self.members.get(member_id),
        };
        member.filter(|m| m.classic.is_some()).ok_or(ResponseError::UnknownMemberId)
    }

    /// Starts the time a classic member has to rejoin, unless it already runs.
    fn expect_rejoin(&mut self, member_id: &str, now: Now) {
        if let Some(member) = self.members.get_mut(member_id) {
            let timeout = Duration::from_millis(member.rebalance_timeout_ms.max(0) as u64);
            if let Some(classic) = member.classic.as_mut() {
                classic.join_deadline.get_or_insert(now.instant + timeout);
            }
        }
    }

    /// SyncGroup of a classic member (Kafka's `classicGroupSyncToConsumerGroup`).
    pub fn classic_sync(
        &mut self,
        now: Now,
        request: &SyncGroupRequest,
        image: &TopicImage,
    ) -> Result<SyncGroupResponse, ResponseError> {
        let member = self.classic_member(request.member_id.as_str(), request.group_instance_id.as_deref())?;
        let classic = member.classic.as_ref().expect("a classic member");
        if request.generation_id != member.epoch {
            return Err(ResponseError::IllegalGeneration);
        }
        let type_differs = request.protocol_type.as_ref().is_some_and(|t| t.as_str() != CONSUMER_PROTOCOL_TYPE);
        let name_differs = request.protocol_name.as_ref().is_some_and(|n| n.as_str() != classic.protocol_name());
        if type_differs || name_differs {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        let member_id = member.id.clone();
        if self.group_epoch > member.epoch && member.state != MemberState::UnrevokedPartitions {
            self.expect_rejoin(&member_id, now);
            return Err(ResponseError::RebalanceInProgress);
        }
        let member = self.members.get_mut(&member_id).expect("found above");
        let classic = member.classic.as_mut().expect("a classic member");
        classic.sync_deadline = None;
        member.session_deadline = now.instant + classic.session_timeout;
        let assignment = encode_assignment(&member.assigned, image, classic.assignment_version());
        Ok(SyncGroupResponse::default()
            .with_protocol_type(request.protocol_type.clone())
            .with_protocol_name(request.protocol_name.clone())
            .with_assignment(assignment))
    }

    /// Heartbeat of a classic member (Kafka's `classicGroupHeartbeatToConsumerGroup`):
    /// REBALANCE_IN_PROGRESS while it has catching up to do.
    pub fn classic_heartbeat(&mut self, now: Now, request: &HeartbeatRequest) -> Result<(), ResponseError> {
        let member = self.classic_member(request.member_id.as_str(), request.group_instance_id.as_deref())?;
        if request.generation_id != member.epoch {
            return Err(ResponseError::IllegalGeneration);
        }
        let member_id = member.id.clone();
        let rejoin = member.epoch < self.group_epoch
            || member.state == MemberState::UnrevokedPartitions
            || (member.state == MemberState::UnreleasedPartitions && !self.waits_on_unreleased(member));
        let member = self.members.get_mut(&member_id).expect("found above");
        let timeout = member.classic.as_ref().expect("a classic member").session_timeout;
        member.session_deadline = now.instant + timeout;
        if rejoin {
            self.expect_rejoin(&member_id, now);
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Whether a partition of the member's target is still held by another member.
    fn waits_on_unreleased(&self, member: &Member) -> bool {
        self.target.get(&member.id).is_some_and(|target| {
            target.iter().any(|(topic, partitions)| {
                partitions.iter().any(|p| {
                    !member.assigned.get(topic).is_some_and(|a| a.contains(p))
                        && self.held_by_other(&member.id, topic, *p)
                })
            })
        })
    }

    /// LeaveGroup to a consumer group (Kafka's `classicGroupLeaveToConsumerGroup`):
    /// only classic members leave this way; a static one may be named by its
    /// instance id alone.
    pub fn classic_leave(&mut self, version: i16, request: &LeaveGroupRequest) -> LeaveGroupResponse {
        let identities = leave_identities(version, request);
        let mut results = Vec::with_capacity(identities.len());
        for (member_id, instance_id) in &identities {
            let leaving = match instance_id.as_deref() {
                Some(instance) => match self.static_ids.get(instance) {
                    Some(current) if member_id.is_empty() || current == member_id => {
                        self.classic_member(current, Some(instance)).map(|m| m.id.clone())
                    }
                    Some(_) => Err(ResponseError::FencedInstanceId),
                    None => Err(ResponseError::UnknownMemberId),
                },
                None => self.classic_member(member_id, None).map(|m| m.id.clone()),
            };
            let code = match leaving {
                Ok(id) => {
                    self.remove_member(&id);
                    0
                }
                Err(code) => code.code(),
            };
            results.push(leave_result(member_id, instance_id.as_deref(), code));
        }
        leave_response(version, results)
    }
}

#[cfg(test)]
mod tests {
    //! A classic member and a member of the consumer protocol in one group,
    //! with no executor or socket: what Kafka 4's coordinator answers each.
    use super::*;
    use crate::group::classic::{Group, GroupState};
    use crate::group::consumer::{AssignorKind, HeartbeatParams};
    use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
    use kafka_protocol::messages::GroupId;
    use uuid::Uuid;

    fn settings() -> ConsumerSettings {
        ConsumerSettings {
            session_timeout: Duration::from_secs(45),
            heartbeat_interval_ms: 5_000,
            assignors: vec![AssignorKind::Uniform],
            members_max: 10,
            upgrade_enabled: true,
            downgrade_enabled: true,
        }
    }

    fn image() -> Rc<TopicImage> {
        Rc::new(TopicImage::new([("t".to_string(), Uuid::from_bytes([1; 16]), 4)]))
    }

    fn t() -> Uuid {
        Uuid::from_bytes([1; 16])
    }

    /// A v1 subscription to `t` reporting `owned` partitions of it.
    fn subscription(owned: &[i32]) -> Bytes {
        let body = ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_static_str("t")])
            .with_owned_partitions(vec![OwnedTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(owned.to_vec())]);
        let mut buf = BytesMut::new();
        buf.put_i16(1);
        body.encode(&mut buf, 1).unwrap();
        buf.freeze()
    }

    fn join_params(member_id: &str, owned: &[i32]) -> JoinParams {
        JoinParams {
            version: 9,
            member_id: member_id.into(),
            instance_id: None,
            protocol_type: "consumer".into(),
            protocols: vec![("cooperative-sticky".into(), subscription(owned))],
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(30),
            client_id: "classic-client".into(),
            client_host: "/127.0.0.1".into(),
        }
    }

    fn partitions(a: &Assignment) -> Vec<i32> {
        a.get(&t()).map(|p| p.iter().copied().collect()).unwrap_or_default()
    }

    fn sync(member_id: &str, generation: i32) -> SyncGroupRequest {
        SyncGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_member_id(StrBytes::from_string(member_id.into()))
            .with_generation_id(generation)
            .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
            .with_protocol_name(Some(StrBytes::from_static_str("cooperative-sticky")))
    }

    fn beat(member_id: &str, generation: i32) -> HeartbeatRequest {
        HeartbeatRequest::default()
            .with_member_id(StrBytes::from_string(member_id.into()))
            .with_generation_id(generation)
    }

    fn synced(group: &mut ConsumerGroup, now: Now, member_id: &str, generation: i32) -> Vec<i32> {
        let response = group.classic_sync(now, &sync(member_id, generation), &image()).unwrap();
        partitions(&decode_assignment(&response.assignment, &image()).unwrap())
    }

    /// A classic group at generation 5 whose one member "c" owns all of `t`.
    fn upgraded(now: Now) -> ConsumerGroup {
        let all: Assignment = [(t(), (0..4).collect())].into();
        let member = MigratingMember {
            id: "c".into(),
            instance_id: None,
            client_id: "classic-client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(30),
            protocols: vec![("cooperative-sticky".into(), subscription(&[0, 1, 2, 3]))],
            assignment: encode_assignment(&all, &image(), 1),
        };
        ConsumerGroup::from_classic_group("g", 5, vec![member], &image(), now, &settings()).unwrap()
    }

    #[test]
    fn a_classic_member_gives_up_partitions_by_rejoining_and_the_group_downgrades_when_the_other_leaves() {
        let now = Now::system();
        let mut group = upgraded(now);
        assert_eq!((group.group_epoch(), group.state_name()), (5, "Stable"));
        assert_eq!(group.uses_consumer_protocol("c"), Some(false));
        assert_eq!(group.classic_heartbeat(now, &beat("c", 5)), Ok(()), "nothing to catch up on yet");

        // A member of the consumer protocol joins: the target splits the topic.
        let params = HeartbeatParams {
            member_id: "k".into(),
            member_epoch: JOIN_EPOCH,
            rebalance_timeout_ms: 30_000,
            topic_names: Some(vec!["t".into()]),
            owned: Some(Assignment::new()),
            ..HeartbeatParams::default()
        };
        let joined = group.heartbeat(now, params, &image(), &settings()).unwrap();
        assert_eq!(group.group_epoch(), 6);
        assert_eq!(joined.assignment.as_ref().map(partitions), Some(vec![]), "all still held by the classic member");

        // The classic member is told to rejoin; a stale generation is refused.
        assert_eq!(group.classic_heartbeat(now, &beat("c", 5)), Err(ResponseError::RebalanceInProgress));
        assert_eq!(group.classic_heartbeat(now, &beat("c", 4)), Err(ResponseError::IllegalGeneration));
        // Rejoining while still owning everything: it keeps its share at its epoch and must revoke the rest.
        let rejoined = group.classic_join(now, &join_params("c", &[0, 1, 2, 3]), &image(), &settings()).unwrap();
        assert_eq!((rejoined.error_code, rejoined.generation_id), (0, 5));
        assert_eq!(rejoined.leader.as_str(), "", "no member assigns on the client side");
        let kept = synced(&mut group, now, "c", 5);
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert_eq!(group.classic_heartbeat(now, &beat("c", 5)), Err(ResponseError::RebalanceInProgress));
        // Having revoked them, it rejoins at the new epoch.
        let caught_up = group.classic_join(now, &join_params("c", &kept), &image(), &settings()).unwrap();
        assert_eq!(caught_up.generation_id, 6);
        assert_eq!(synced(&mut group, now, "c", 6), kept);
        assert_eq!(group.classic_heartbeat(now, &beat("c", 6)), Ok(()));
        assert_eq!(group.admit_commit("c", 5), Err(ResponseError::IllegalGeneration));
        assert_eq!(group.admit_commit("c", 6), Ok(()));

        // The freed partitions go to the other member.
        let params = HeartbeatParams {
            member_id: "k".into(),
            member_epoch: 6,
            owned: Some(Assignment::new()),
            ..HeartbeatParams::default()
        };
        let answer = group.heartbeat(now, params, &image(), &settings()).unwrap();
        let theirs = answer.assignment.as_ref().map(partitions).unwrap_or_default();
        assert_eq!(theirs.len(), 2);
        assert!(theirs.iter().all(|p| !kept.contains(p)), "no partition owned twice");
        assert_eq!(group.state_name(), "Stable");

        // It leaves: only the classic member is left, and a classic group takes it over, rebalancing.
        assert!(!group.all_classic());
        let params = HeartbeatParams { member_id: "k".into(), member_epoch: -1, ..HeartbeatParams::default() };
        group.heartbeat(now, params, &image(), &settings()).unwrap();
        assert!(group.all_classic());
        let members = group.migrating_members(&image());
        assert_eq!(members.len(), 1);
        let classic = Group::from_consumer_group("g", group.group_epoch(), members.clone(), now, Duration::ZERO, true);
        assert_eq!((classic.state(), classic.protocol_type()), (GroupState::PreparingRebalance, Some("consumer")));
        assert_eq!(classic.generation(), group.group_epoch());
        // Taken over after a static replacement: no rebalance, each member keeps its assignment.
        let kept_assignment = members[0].assignment.clone();
        let classic = Group::from_consumer_group("g", group.group_epoch(), members, now, Duration::ZERO, false);
        assert_eq!((classic.state(), classic.protocol_name()), (GroupState::Stable, Some("cooperative-sticky")));
        let stored = classic.stored();
        assert_eq!(stored.members.len(), 1);
        assert_eq!(stored.members[0].assignment, kept_assignment);
    }

    #[test]
    fn classic_members_are_checked_as_kafka_checks_them() {
        let now = Now::system();
        let mut group = upgraded(now);
        // Another protocol type, or no protocol in common with the classic members.
        let mut other_type = join_params("", &[]);
        other_type.protocol_type = "connect".into();
        assert_eq!(
            group.classic_join(now, &other_type, &image(), &settings()).unwrap_err(),
            ResponseError::InconsistentGroupProtocol
        );
        let mut other_protocol = join_params("", &[]);
        other_protocol.protocols[0].0 = "range".into();
        assert_eq!(
            group.classic_join(now, &other_protocol, &image(), &settings()).unwrap_err(),
            ResponseError::InconsistentGroupProtocol
        );
        // A new dynamic member from v4 is given an id to join again with.
        let first = group.classic_join(now, &join_params("", &[]), &image(), &settings()).unwrap();
        assert_eq!(first.error_code, ResponseError::MemberIdRequired.code());
        assert!(!first.member_id.is_empty());
        assert_eq!(group.len(), 1, "no member until it comes back");
        // Unknown members, and a member of the consumer protocol, cannot sync, heartbeat or leave classically.
        assert_eq!(group.classic_sync(now, &sync("nobody", 5), &image()).unwrap_err(), ResponseError::UnknownMemberId);
        assert_eq!(group.classic_heartbeat(now, &beat("nobody", 5)), Err(ResponseError::UnknownMemberId));
        let leave = LeaveGroupRequest::default().with_member_id(StrBytes::from_static_str("nobody"));
        assert_eq!(group.classic_leave(2, &leave).error_code, ResponseError::UnknownMemberId.code());
        // A wrong protocol name in SyncGroup.
        let wrong = sync("c", 5).with_protocol_name(Some(StrBytes::from_static_str("range")));
        assert_eq!(group.classic_sync(now, &wrong, &image()).unwrap_err(), ResponseError::InconsistentGroupProtocol);
        // A classic member that does not rejoin in time is removed.
        let params = HeartbeatParams {
            member_id: "k".into(),
            member_epoch: JOIN_EPOCH,
            rebalance_timeout_ms: 30_000,
            topic_names: Some(vec!["t".into()]),
            owned: Some(Assignment::new()),
            ..HeartbeatParams::default()
        };
        group.heartbeat(now, params, &image(), &settings()).unwrap();
        assert_eq!(group.classic_heartbeat(now, &beat("c", 5)), Err(ResponseError::RebalanceInProgress));
        // Its heartbeats keep its session, but not the time it had to rejoin.
        for secs in [9, 18, 27] {
            let later = now.after(Duration::from_secs(secs));
            assert_eq!(group.classic_heartbeat(later, &beat("c", 5)), Err(ResponseError::RebalanceInProgress));
            assert!(!group.tick(later, &settings()).any);
        }
        let expired = group.tick(now.after(Duration::from_secs(31)), &settings());
        assert!(expired.any && !expired.consumer_protocol, "{expired:?}");
        assert_eq!(group.uses_consumer_protocol("c"), None);
        assert_eq!(group.len(), 1);
    }
}
