//! The cluster's state as the committed metadata records build it, and the
//! leader's liveness decisions (which records it proposes when brokers go
//! quiet or come back). Plain data: no I/O, the time passed in.

use std::collections::{BTreeMap, HashMap};

use crate::records::{Endpoint, MetadataRecord};
use sluice_core::constants::CLUSTER_BROKERS_MAX;

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub id: i32,
    /// The log index of its registration: it grows with every restart.
    pub epoch: u64,
    pub incarnation: String,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    /// The listener other brokers reach it on (`None`: its controller listener).
    pub inter_broker: Option<String>,
    /// Fenced brokers are not offered to clients.
    pub fenced: bool,
    /// Stopping (controlled shutdown): stays fenced until it registers again.
    pub shutting_down: bool,
}

/// One partition's replicas and leadership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// The replicas, the preferred leader first.
    pub replicas: Vec<i32>,
    /// The leader; -1 when none is available.
    pub leader: i32,
    pub leader_epoch: i32,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// A reassignment in progress: the replicas being added (in `replicas`,
    /// not yet all in sync) and those to remove once they are.
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
    /// Replicas whose log failed on their broker's current incarnation:
    /// out of the in-sync set until that broker restarts.
    pub failed: Vec<i32>,
}

impl PartitionState {
    /// A new partition on `replicas`, led by the first.
    pub fn new(replicas: Vec<i32>) -> PartitionState {
        PartitionState {
            leader: replicas[0],
            leader_epoch: 0,
            isr: replicas.clone(),
            replicas,
            adding: Vec::new(),
            removing: Vec::new(),
            failed: Vec::new(),
        }
    }

    /// `broker`'s replica failed: it leaves the in-sync set unless it is its
    /// last member (whose data no other replica has), and a leadership of
    /// it goes to the first other live in-sync replica in a new epoch, or
    /// to none (offline) until the broker restarts.
    fn replica_failed(&mut self, broker: i32, live: impl Fn(i32) -> bool) {
        if self.isr.len() > 1 {
            self.isr.retain(|r| *r != broker);
        }
        if self.leader == broker {
            self.leader = self.isr.iter().copied().find(|r| *r != broker && live(*r)).unwrap_or(-1);
            self.leader_epoch += 1;
        }
    }

    /// Whether a reassignment is in progress.
    pub fn reassigning(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }

    /// The replicas the partition had before its reassignment began.
    pub fn original_replicas(&self) -> Vec<i32> {
        self.replicas.iter().copied().filter(|r| !self.adding.contains(r)).collect()
    }

    /// The replicas its reassignment moves it to (its replicas when none is in progress).
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas.iter().copied().filter(|r| !self.removing.contains(r)).collect()
    }

    /// Starts moving the partition to `target` (Kafka's KIP-455): its
    /// replicas are the target's followed by the original ones the target
    /// drops; the new ones fetch, and once every target replica is in sync
    /// the others are removed. A reassignment in progress is replaced, from
    /// its original replicas.
    fn reassign(&mut self, target: &[i32], live: impl Fn(i32) -> bool) {
        let original = self.original_replicas();
        let mut replicas = target.to_vec();
        replicas.extend(original.iter().copied().filter(|r| !target.contains(r)));
        self.adding = target.iter().copied().filter(|r| !original.contains(r)).collect();
        self.removing = original.iter().copied().filter(|r| !target.contains(r)).collect();
        self.replicas = replicas;
        if self.reassigning() {
            self.isr.retain(|r| self.replicas.contains(r));
            self.complete_reassignment(live);
        } else {
            // The same replicas (perhaps in another order): nothing to move.
            self.settle(self.replicas.clone(), live);
        }
    }

    /// Cancels the reassignment in progress: back to the original replicas,
    /// unless none of them is in sync any more (then it goes on).
    fn cancel_reassignment(&mut self, live: impl Fn(i32) -> bool) {
        let original = self.original_replicas();
        if !self.reassigning() || !original.iter().any(|r| self.isr.contains(r)) {
            return;
        }
        self.settle(original, live);
    }

    /// Ends the reassignment once every target replica is in sync.
    fn complete_reassignment(&mut self, live: impl Fn(i32) -> bool) {
        let target = self.target_replicas();
        if self.reassigning() && target.iter().all(|r| self.isr.contains(r)) {
            self.settle(target, live);
        }
    }

    /// The partition is on `replicas` (some of them in sync) and nothing
    /// else; a leader outside them hands over to the first live in-sync one
    /// of them, in a new epoch.
    fn settle(&mut self, replicas: Vec<i32>, live: impl Fn(i32) -> bool) {
        self.isr = replicas.iter().copied().filter(|r| self.isr.contains(r)).collect();
        self.replicas = replicas;
        self.adding.clear();
        self.removing.clear();
        if !self.replicas.contains(&self.leader) {
            self.leader = self.isr.iter().copied().find(|r| live(*r)).unwrap_or(-1);
            self.leader_epoch += 1;
        }
    }
}

/// A topic as the metadata log holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicState {
    pub name: String,
    pub id: String,
    pub partitions: Vec<PartitionState>,
    pub configs: Vec<(String, String)>,
}

/// Everything the metadata log has built so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterState {
    pub brokers: BTreeMap<i32, Broker>,
    pub topics: BTreeMap<String, TopicState>,
    /// Changes of the security state so far, and the state's text form.
    pub security_version: u64,
    pub security: Option<String>,
    /// The index of the last record applied.
    pub applied: u64,
}

impl ClusterState {
    /// Applies the record committed at `index`. A record that no longer
    /// matches (a fence of an earlier epoch) changes nothing, so a late
    /// decision never undoes a newer registration.
    pub fn apply(&mut self, index: u64, record: &MetadataRecord) {
        self.applied = self.applied.max(index);
        match record {
            MetadataRecord::RegisterBroker { id, incarnation, endpoints, rack, inter_broker } => {
                if !self.brokers.contains_key(id) && self.brokers.len() >= CLUSTER_BROKERS_MAX {
                    return;
                }
                // A restart opens its logs again: its replicas may rejoin.
                for p in self.topics.values_mut().flat_map(|t| t.partitions.iter_mut()) {
                    p.failed.retain(|r| r != id);
                }
                self.brokers.insert(
                    *id,
                    Broker {
                        id: *id,
                        epoch: index,
                        incarnation: incarnation.clone(),
                        endpoints: endpoints.clone(),
                        rack: rack.clone(),
                        inter_broker: inter_broker.clone(),
                        fenced: true,
                        shutting_down: false,
                    },
                );
            }
            MetadataRecord::FenceBroker { id, epoch } => {
                if let Some(b) = self.brokers.get_mut(id).filter(|b| b.epoch == *epoch && !b.fenced) {
                    b.fenced = true;
                    self.broker_fenced(*id);
                }
            }
            MetadataRecord::ShutdownBroker { id, epoch } => {
                if let Some(b) = self.brokers.get_mut(id).filter(|b| b.epoch == *epoch) {
                    b.shutting_down = true;
                    if !b.fenced {
                        b.fenced = true;
                        self.broker_fenced(*id);
                    }
                }
            }
            MetadataRecord::UnfenceBroker { id, epoch } => {
                if let Some(b) = self.brokers.get_mut(id).filter(|b| b.epoch == *epoch && b.fenced && !b.shutting_down)
                {
                    b.fenced = false;
                    self.broker_unfenced(*id);
                }
            }
            MetadataRecord::ElectLeader { name, id, partition, leader } => {
                let live = self.brokers.get(leader).is_some_and(|b| !b.fenced);
                let Some(topic) = self.topics.get_mut(name).filter(|t| t.id == *id) else {
                    return;
                };
                let Some(p) = usize::try_from(*partition).ok().and_then(|i| topic.partitions.get_mut(i)) else {
                    return;
                };
                if live && p.isr.contains(leader) && p.leader != *leader {
                    p.leader = *leader;
                    p.leader_epoch += 1;
                }
            }
            MetadataRecord::AlterIsr { name, id, partition, leader_epoch, isr } => {
                let Some(topic) = self.topics.get_mut(name).filter(|t| t.id == *id) else {
                    return;
                };
                let Some(p) = usize::try_from(*partition).ok().and_then(|i| topic.partitions.get_mut(i)) else {
                    return;
                };
                let valid = p.leader_epoch == *leader_epoch
                    && isr.contains(&p.leader)
                    && isr.iter().all(|r| !p.failed.contains(r) || p.isr.contains(r))
                    && isr.iter().all(|r| p.replicas.contains(r))
                    && isr.iter().all(|r| self.brokers.get(r).is_some_and(|b| !b.fenced));
                if valid {
                    p.isr = p.replicas.iter().copied().filter(|r| isr.contains(r)).collect();
                    let brokers = &self.brokers;
                    p.complete_reassignment(|r| brokers.get(&r).is_some_and(|b| !b.fenced));
                }
            }
            MetadataRecord::ReplicaFailed { name, id, partition, broker, epoch } => {
                let brokers = &self.brokers;
                if brokers.get(broker).is_none_or(|b| b.epoch != *epoch) {
                    return;
                }
                let live = |r: i32| brokers.get(&r).is_some_and(|b| !b.fenced);
                let Some(topic) = self.topics.get_mut(name).filter(|t| t.id == *id) else {
                    return;
                };
                let Some(p) = usize::try_from(*partition).ok().and_then(|i| topic.partitions.get_mut(i)) else {
                    return;
                };
                if p.replicas.contains(broker) && !p.failed.contains(broker) {
                    p.failed.push(*broker);
                    p.replica_failed(*broker, live);
                }
            }
            MetadataRecord::ReassignPartition { name, id, partition, target } => {
                let brokers = &self.brokers;
                let live = |r: i32| brokers.get(&r).is_some_and(|b| !b.fenced);
                let Some(topic) = self.topics.get_mut(name).filter(|t| t.id == *id) else {
                    return;
                };
                let Some(p) = usize::try_from(*partition).ok().and_then(|i| topic.partitions.get_mut(i)) else {
                    return;
                };
                match target {
                    Some(target) if valid_assignment(target, |r| brokers.contains_key(&r)) => p.reassign(target, live),
                    Some(_) => {}
                    None => p.cancel_reassignment(live),
                }
            }
            MetadataRecord::CreateTopic { name, id, partitions, configs } => {
                if self.topics.contains_key(name) || partitions.iter().any(Vec::is_empty) {
                    return;
                }
                let partitions = partitions.iter().map(|replicas| PartitionState::new(replicas.clone())).collect();
                let topic = TopicState { name: name.clone(), id: id.clone(), partitions, configs: configs.clone() };
                self.topics.insert(name.clone(), topic);
            }
            MetadataRecord::DeleteTopic { name, id } => {
                if self.topics.get(name).is_some_and(|t| t.id == *id) {
                    self.topics.remove(name);
                }
            }
            MetadataRecord::SetSecurity { base, text } => {
                if *base == self.security_version {
                    self.security_version += 1;
                    self.security = Some(text.clone());
                }
            }
            MetadataRecord::SetTopicConfigs { name, id, configs } => {
                if let Some(topic) = self.topics.get_mut(name).filter(|t| t.id == *id) {
                    topic.configs = configs.clone();
                }
            }
            MetadataRecord::CreatePartitions { name, id, after, partitions } => {
                let Some(topic) = self.topics.get_mut(name).filter(|t| t.id == *id && t.partitions.len() == *after)
                else {
                    return;
                };
                if partitions.iter().any(Vec::is_empty) {
                    return;
                }
                topic.partitions.extend(partitions.iter().map(|replicas| PartitionState::new(replicas.clone())));
            }
        }
    }

    /// A fenced broker leaves every in-sync replica set it is in (unless it
    /// is the last member, which keeps the partition's data there), and the
    /// partitions it led get the first other in-sync replica as leader in a
    /// new epoch, or none (offline) if there is none: no unclean election.
    fn broker_fenced(&mut self, id: i32) {
        for p in self.topics.values_mut().flat_map(|t| t.partitions.iter_mut()) {
            if p.isr.len() > 1 {
                p.isr.retain(|r| *r != id);
            }
            if p.leader == id {
                p.leader = p.isr.iter().copied().find(|r| *r != id).unwrap_or(-1);
                p.leader_epoch += 1;
            }
        }
    }

    /// A broker back in service leads the offline partitions whose last in-sync replica it is.
    fn broker_unfenced(&mut self, id: i32) {
        for p in self.topics.values_mut().flat_map(|t| t.partitions.iter_mut()) {
            if p.leader == -1 && p.isr.contains(&id) && !p.failed.contains(&id) {
                p.leader = id;
                p.leader_epoch += 1;
            }
        }
    }

    /// Replicas for `count` new partitions, `replication_factor` each, over
    /// the live brokers: round robin, each partition's leader the next broker
    /// after the last partition placed, so leaders spread evenly.
    pub fn place(&self, count: usize, replication_factor: usize) -> Result<Vec<Vec<i32>>, String> {
        let live: Vec<i32> = self.live_brokers().map(|b| b.id).collect();
        if replication_factor == 0 || replication_factor > live.len() {
            return Err(format!(
                "Unable to replicate the partition {replication_factor} time(s): The target replication factor of \
                 {replication_factor} cannot be reached because only {} broker(s) are registered.",
                live.len()
            ));
        }
        let start: usize = self.topics.values().map(|t| t.partitions.len()).sum();
        Ok((0..count).map(|p| (0..replication_factor).map(|k| live[(start + p + k) % live.len()]).collect()).collect())
    }

    /// Brokers clients may use, by id.
    pub fn live_brokers(&self) -> impl Iterator<Item = &Broker> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// Whether `id` is registered with `incarnation`.
    pub fn is_registered(&self, id: i32, incarnation: &str) -> bool {
        self.brokers.get(&id).is_some_and(|b| b.incarnation == incarnation)
    }
}

/// Whether `replicas` can be a partition's assignment: not empty, no
/// broker twice, every broker registered.
pub fn valid_assignment(replicas: &[i32], registered: impl Fn(i32) -> bool) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    !replicas.is_empty() && replicas.iter().all(|r| seen.insert(*r) && registered(*r))
}

/// What the leader last heard from each broker incarnation, and since when
/// it leads (a new leader gives everyone a full session before fencing).
#[derive(Debug, Default)]
pub struct Liveness {
    heard_ms: HashMap<i32, (String, u64)>,
    leading_since_ms: Option<u64>,
}

impl Liveness {
    /// A heartbeat from `id`'s `incarnation` at `now_ms`.
    pub fn heard(&mut self, id: i32, incarnation: &str, now_ms: u64) {
        if self.heard_ms.len() >= CLUSTER_BROKERS_MAX && !self.heard_ms.contains_key(&id) {
            return;
        }
        self.heard_ms.insert(id, (incarnation.to_string(), now_ms));
    }

    /// The node became leader at `now_ms` (or stopped leading: `None`).
    pub fn leading(&mut self, since_ms: Option<u64>) {
        self.leading_since_ms = since_ms;
    }

    /// The records the leader proposes now: fence brokers not heard from for
    /// `session_ms`, unfence those heard from recently.
    pub fn decisions(&self, state: &ClusterState, now_ms: u64, session_ms: u64) -> Vec<MetadataRecord> {
        let Some(since) = self.leading_since_ms else { return Vec::new() };
        let mut records = Vec::new();
        for broker in state.brokers.values() {
            let heard = self
                .heard_ms
                .get(&broker.id)
                .filter(|(incarnation, _)| *incarnation == broker.incarnation)
                .map(|(_, at)| *at);
            let alive = match heard {
                Some(at) => now_ms.saturating_sub(at) < session_ms,
                // Not heard since this node leads: alive until a session has passed.
                None => false,
            };
            let grace = now_ms.saturating_sub(since) < session_ms;
            if broker.fenced && alive && !broker.shutting_down {
                records.push(MetadataRecord::UnfenceBroker { id: broker.id, epoch: broker.epoch });
            } else if !broker.fenced && !alive && !grace {
                records.push(MetadataRecord::FenceBroker { id: broker.id, epoch: broker.epoch });
            }
        }
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(id: i32, incarnation: &str) -> MetadataRecord {
        MetadataRecord::RegisterBroker {
            id,
            incarnation: incarnation.into(),
            endpoints: Vec::new(),
            rack: None,
            inter_broker: None,
        }
    }

    /// Brokers 1 to `brokers`, registered at indexes 1.. (their epochs) and
    /// live, and topic `t` (id `x`) of one partition on `replicas`, at index 20.
    fn live_brokers_and_topic(brokers: i32, replicas: Vec<i32>) -> ClusterState {
        let mut state = ClusterState::default();
        for id in 1..=brokers {
            state.apply(id as u64, &register(id, "a"));
            state.apply(10 + id as u64, &MetadataRecord::UnfenceBroker { id, epoch: id as u64 });
        }
        let create = MetadataRecord::CreateTopic {
            name: "t".into(),
            id: "x".into(),
            partitions: vec![replicas],
            configs: Vec::new(),
        };
        state.apply(20, &create);
        state
    }

    #[test]
    fn a_registered_broker_is_fenced_until_heard_and_fenced_again_when_quiet() {
        let mut state = ClusterState::default();
        state.apply(3, &register(1, "a"));
        assert_eq!(state.brokers[&1].epoch, 3);
        assert!(state.brokers[&1].fenced);
        let mut live = Liveness::default();
        assert!(live.decisions(&state, 0, 9000).is_empty(), "not leading: no decisions");
        live.leading(Some(1_000));
        live.heard(1, "a", 1_500);
        let d = live.decisions(&state, 2_000, 9000);
        assert_eq!(d, vec![MetadataRecord::UnfenceBroker { id: 1, epoch: 3 }]);
        state.apply(4, &d[0]);
        assert_eq!(state.live_brokers().count(), 1);
        assert!(live.decisions(&state, 10_000, 9000).is_empty(), "heard 8.5 s ago: alive");
        let d = live.decisions(&state, 10_600, 9000);
        assert_eq!(d, vec![MetadataRecord::FenceBroker { id: 1, epoch: 3 }]);
        state.apply(5, &d[0]);
        assert_eq!(state.live_brokers().count(), 0);
    }

    #[test]
    fn a_fenced_leader_is_replaced_from_the_in_sync_replicas_and_never_by_another() {
        let mut state = live_brokers_and_topic(3, vec![1, 2, 3]);
        let partition = |state: &ClusterState| state.topics["t"].partitions[0].clone();
        assert_eq!((partition(&state).leader, partition(&state).isr.clone()), (1, vec![1, 2, 3]));
        // Broker 3 falls behind and leaves the in-sync set; a change made in an older epoch is ignored.
        let shrink = |epoch, isr: Vec<i32>| MetadataRecord::AlterIsr {
            name: "t".into(),
            id: "x".into(),
            partition: 0,
            leader_epoch: epoch,
            isr,
        };
        state.apply(21, &shrink(0, vec![1, 2]));
        assert_eq!(partition(&state).isr, vec![1, 2]);
        // The leader dies: broker 2, in sync, leads in epoch 1; broker 3 was not in sync and does not.
        state.apply(22, &MetadataRecord::FenceBroker { id: 1, epoch: 1 });
        let p = partition(&state);
        assert_eq!((p.leader, p.leader_epoch, p.isr), (2, 1, vec![2]));
        state.apply(23, &shrink(0, vec![1, 2, 3]));
        assert_eq!(partition(&state).isr, vec![2], "a change from epoch 0 is stale");
        // The last in-sync replica dies: offline, no unclean election, until it is back.
        state.apply(24, &MetadataRecord::FenceBroker { id: 2, epoch: 2 });
        let p = partition(&state);
        assert_eq!((p.leader, p.leader_epoch, p.isr), (-1, 2, vec![2]));
        state.apply(25, &MetadataRecord::UnfenceBroker { id: 1, epoch: 1 });
        assert_eq!(partition(&state).leader, -1, "broker 1 is not in sync");
        state.apply(26, &MetadataRecord::UnfenceBroker { id: 2, epoch: 2 });
        let p = partition(&state);
        assert_eq!((p.leader, p.leader_epoch), (2, 3));
        // Followers rejoin through the leader, in its epoch, only while they are live.
        state.apply(27, &MetadataRecord::FenceBroker { id: 3, epoch: 3 });
        state.apply(28, &shrink(3, vec![2, 1, 3]));
        assert_eq!(partition(&state).isr, vec![2], "broker 3 is fenced: the change is refused whole");
        state.apply(29, &shrink(3, vec![2, 1]));
        assert_eq!(partition(&state).isr, vec![1, 2], "in replica order");
        // Controlled shutdown of the leader: broker 1 leads at once, and the
        // stopping broker is not unfenced by its last heartbeats.
        state.apply(30, &MetadataRecord::ShutdownBroker { id: 2, epoch: 2 });
        let p = partition(&state);
        assert_eq!((p.leader, p.leader_epoch, p.isr), (1, 4, vec![1]));
        state.apply(31, &MetadataRecord::UnfenceBroker { id: 2, epoch: 2 });
        assert!(state.brokers[&2].fenced, "a stopping broker stays fenced until it registers again");
        let mut live = Liveness::default();
        live.leading(Some(0));
        live.heard(2, "a", 100);
        assert!(live.decisions(&state, 200, 9000).is_empty(), "no unfence for a stopping broker");
        // A preferred election: only a live in-sync replica can be elected.
        let elect = |leader| MetadataRecord::ElectLeader { name: "t".into(), id: "x".into(), partition: 0, leader };
        state.apply(32, &elect(3));
        assert_eq!(partition(&state).leader, 1, "broker 3 is not in sync");
        state.apply(
            33,
            &MetadataRecord::RegisterBroker {
                id: 2,
                incarnation: "b".into(),
                endpoints: Vec::new(),
                rack: None,
                inter_broker: None,
            },
        );
        state.apply(34, &MetadataRecord::UnfenceBroker { id: 2, epoch: 33 });
        state.apply(35, &shrink(4, vec![1, 2]));
        state.apply(36, &elect(2));
        let p = partition(&state);
        assert_eq!((p.leader, p.leader_epoch), (2, 5));
    }

    #[test]
    fn topics_are_placed_round_robin_over_live_brokers_and_the_first_creation_wins() {
        let mut state = ClusterState::default();
        for (i, id) in [1, 2, 3].into_iter().enumerate() {
            state.apply(i as u64 * 2 + 1, &register(id, "x"));
            state.apply(i as u64 * 2 + 2, &MetadataRecord::UnfenceBroker { id, epoch: i as u64 * 2 + 1 });
        }
        let placed = state.place(4, 1).unwrap();
        assert_eq!(placed, vec![vec![1], vec![2], vec![3], vec![1]]);
        assert!(state.place(1, 4).unwrap_err().contains("only 3 broker(s)"));
        let create = |id: &str| MetadataRecord::CreateTopic {
            name: "t".into(),
            id: id.into(),
            partitions: placed.clone(),
            configs: Vec::new(),
        };
        state.apply(10, &create("a"));
        state.apply(11, &create("b"));
        assert_eq!(state.topics["t"].id, "a");
        assert_eq!(state.topics["t"].partitions[1].leader, 2);
        assert_eq!(
            state.place(2, 3).unwrap(),
            vec![vec![2, 3, 1], vec![3, 1, 2]],
            "placement goes on after the 4 placed"
        );
        let grow = |after: usize| MetadataRecord::CreatePartitions {
            name: "t".into(),
            id: "a".into(),
            after,
            partitions: vec![vec![3]],
        };
        state.apply(11, &grow(4));
        state.apply(11, &grow(4));
        assert_eq!(state.topics["t"].partitions.len(), 5, "a second growth from the same count changes nothing");
        state.apply(
            11,
            &MetadataRecord::SetTopicConfigs {
                name: "t".into(),
                id: "a".into(),
                configs: vec![("retention.ms".into(), "1000".into())],
            },
        );
        assert_eq!(state.topics["t"].configs.len(), 1);
        state.apply(12, &MetadataRecord::DeleteTopic { name: "t".into(), id: "b".into() });
        assert!(state.topics.contains_key("t"), "a delete of another id changes nothing");
        state.apply(13, &MetadataRecord::DeleteTopic { name: "t".into(), id: "a".into() });
        assert!(state.topics.is_empty());
    }

    #[test]
    fn a_reassignment_adds_the_new_replicas_and_removes_the_old_once_they_are_in_sync() {
        let mut state = live_brokers_and_topic(4, vec![1, 2]);
        let partition = |state: &ClusterState| state.topics["t"].partitions[0].clone();
        let reassign = |target: Option<Vec<i32>>| MetadataRecord::ReassignPartition {
            name: "t".into(),
            id: "x".into(),
            partition: 0,
            target,
        };
        let isr = |epoch, isr: Vec<i32>| MetadataRecord::AlterIsr {
            name: "t".into(),
            id: "x".into(),
            partition: 0,
            leader_epoch: epoch,
            isr,
        };
        // [1, 2] to [3, 4]: all four hold it until 3 and 4 are in sync.
        state.apply(21, &reassign(Some(vec![3, 4])));
        let p = partition(&state);
        assert_eq!(
            (p.replicas.clone(), p.adding.clone(), p.removing.clone()),
            (vec![3, 4, 1, 2], vec![3, 4], vec![1, 2])
        );
        assert_eq!((p.leader, p.leader_epoch, p.isr.clone()), (1, 0, vec![1, 2]));
        assert_eq!(state.topics["t"].partitions[0].target_replicas(), vec![3, 4]);
        state.apply(22, &isr(0, vec![1, 2, 3]));
        assert!(partition(&state).reassigning(), "4 is not in sync yet");
        // Once 4 is in sync too, 1 and 2 go, and 3 leads in a new epoch.
        state.apply(23, &isr(0, vec![1, 2, 3, 4]));
        let p = partition(&state);
        assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader, p.leader_epoch), (vec![3, 4], vec![3, 4], 3, 1));
        assert!(!p.reassigning());

        // A cancelled reassignment goes back to the original replicas.
        state.apply(24, &reassign(Some(vec![3, 1])));
        let p = partition(&state);
        assert_eq!((p.replicas.clone(), p.adding.clone(), p.removing.clone()), (vec![3, 1, 4], vec![1], vec![4]));
        state.apply(25, &reassign(None));
        let p = partition(&state);
        assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader, p.leader_epoch), (vec![3, 4], vec![3, 4], 3, 1));
        assert!(!p.reassigning());
        // A cancel with none in progress, or a target of unregistered or repeated brokers, changes nothing.
        state.apply(26, &reassign(None));
        state.apply(27, &reassign(Some(vec![3, 9])));
        state.apply(28, &reassign(Some(vec![3, 3])));
        state.apply(29, &reassign(Some(vec![])));
        assert_eq!(partition(&state), p);
        // A new order of the same replicas, all in sync, takes effect at once.
        state.apply(30, &reassign(Some(vec![4, 3])));
        let p = partition(&state);
        assert_eq!((p.replicas.clone(), p.leader, p.leader_epoch), (vec![4, 3], 3, 1));
        assert!(!p.reassigning());
        // Shrinking to one in-sync replica completes at once, moving the leadership.
        state.apply(31, &reassign(Some(vec![4])));
        let p = partition(&state);
        assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader, p.leader_epoch), (vec![4], vec![4], 4, 2));
    }

    #[test]
    fn a_failed_replica_leaves_the_in_sync_set_and_the_leadership_until_its_broker_restarts() {
        let mut state = live_brokers_and_topic(3, vec![1, 2, 3]);
        let partition = |state: &ClusterState| state.topics["t"].partitions[0].clone();
        let failed = |broker, epoch| MetadataRecord::ReplicaFailed {
            name: "t".into(),
            id: "x".into(),
            partition: 0,
            broker,
            epoch,
        };
        state.apply(21, &failed(1, 7));
        assert_eq!(partition(&state).leader, 1, "a failure of another incarnation changes nothing");
        state.apply(22, &failed(1, 1));
        let p = partition(&state);
        assert_eq!((p.leader, p.leader_epoch, p.isr.clone(), p.failed.clone()), (2, 1, vec![2, 3], vec![1]));
        // Its leader may not take it back in while it has not restarted.
        let isr = |isr: Vec<i32>| MetadataRecord::AlterIsr {
            name: "t".into(),
            id: "x".into(),
            partition: 0,
            leader_epoch: 1,
            isr,
        };
        state.apply(23, &isr(vec![1, 2, 3]));
        assert_eq!(partition(&state).isr, vec![2, 3]);
        // The last in-sync replica failing leaves the partition offline, its data where it is.
        state.apply(24, &isr(vec![2]));
        state.apply(25, &failed(2, 2));
        let p = partition(&state);
        assert_eq!((p.leader, p.leader_epoch, p.isr.clone()), (-1, 2, vec![2]));
        state.apply(26, &MetadataRecord::FenceBroker { id: 2, epoch: 2 });
        state.apply(27, &MetadataRecord::UnfenceBroker { id: 2, epoch: 2 });
        assert_eq!(partition(&state).leader, -1, "its failed replica does not lead again");
        // Restarted, broker 2 leads again, and broker 1 may rejoin.
        state.apply(28, &register(2, "b"));
        state.apply(29, &MetadataRecord::UnfenceBroker { id: 2, epoch: 28 });
        let p = partition(&state);
        assert_eq!((p.leader, p.leader_epoch, p.failed.clone()), (2, 3, vec![1]));
        state.apply(30, &register(1, "b"));
        assert!(partition(&state).failed.is_empty());
    }

    #[test]
    fn a_new_leader_waits_a_session_before_fencing() {
        let mut state = ClusterState::default();
        state.apply(1, &register(1, "a"));
        state.apply(2, &MetadataRecord::UnfenceBroker { id: 1, epoch: 1 });
        let mut live = Liveness::default();
        live.leading(Some(50_000));
        assert!(live.decisions(&state, 58_000, 9000).is_empty());
        assert_eq!(live.decisions(&state, 59_001, 9000), vec![MetadataRecord::FenceBroker { id: 1, epoch: 1 }]);
    }

    #[test]
    fn decisions_about_an_earlier_incarnation_change_nothing() {
        let mut state = ClusterState::default();
        state.apply(1, &register(1, "a"));
        state.apply(2, &MetadataRecord::UnfenceBroker { id: 1, epoch: 1 });
        state.apply(3, &register(1, "b"));
        state.apply(4, &MetadataRecord::UnfenceBroker { id: 1, epoch: 1 });
        assert!(state.brokers[&1].fenced, "the unfence of epoch 1 does not apply to epoch 3");
        let mut live = Liveness::default();
        live.leading(Some(0));
        live.heard(1, "a", 100);
        assert!(live.decisions(&state, 200, 9000).is_empty(), "the old incarnation's heartbeat is not this one's");
        live.heard(1, "b", 300);
        assert_eq!(live.decisions(&state, 400, 9000), vec![MetadataRecord::UnfenceBroker { id: 1, epoch: 3 }]);
    }
}
