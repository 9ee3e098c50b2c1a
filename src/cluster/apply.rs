//! What every cluster node does with the committed metadata records, voter
//! or observer: apply them to its [`ClusterState`], publish the
//! [`ClusterView`] every shard reads, have the local catalog follow the
//! topics and the security state, and have every shard take its replicas'
//! roles. Also the proposals a node waits on, answered once it has applied
//! them.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_cluster::view::VoterView;
use sluice_cluster::{ClusterState, ClusterView, MetadataRecord};

use super::{replication, ProposalAnswer, ProposeError};
use crate::shard::Shard;

/// Proposals of this node waiting to be applied.
const PROPOSALS_WAITING_MAX: usize = 1024;
/// How long a proposal may wait to be committed and applied.
const PROPOSAL_TIMEOUT_MS: u64 = 15_000;

/// What a node knows of the quorum besides the records.
pub struct QuorumFacts {
    pub leader: Option<i32>,
    pub term: u64,
    pub committed: u64,
    pub last_index: u64,
    pub voters: Vec<VoterView>,
    pub observers: Vec<VoterView>,
}

/// The committed records' side of a node.
pub struct Applier {
    pub shard: Rc<Shard>,
    pub state: ClusterState,
    published: Option<ClusterView>,
    /// Whether the local catalog has followed the log since the start.
    adopted: bool,
}

impl Applier {
    pub fn new(shard: Rc<Shard>) -> Applier {
        Applier { shard, state: ClusterState::default(), published: None, adopted: false }
    }

    /// Applies `committed` in log order. Shards see where partitions are
    /// placed before their catalog has them, and both before the caller
    /// answers a proposer. `caught_up`: the node has heard from the quorum
    /// since its start, so its catalog may follow the log even when no
    /// record changed it. Returns the bytes of every record applied.
    pub async fn apply(
        &mut self,
        committed: &[(u64, Vec<u8>)],
        facts: QuorumFacts,
        caught_up: bool,
    ) -> Result<Vec<Vec<u8>>, String> {
        let mut topics_changed = false;
        let mut security_changed = false;
        let mut removed = Vec::new();
        let mut applied = Vec::new();
        for (index, bytes) in committed {
            match MetadataRecord::decode(bytes) {
                Ok(record) => {
                    match &record {
                        MetadataRecord::SetSecurity { .. } => security_changed = true,
                        MetadataRecord::CreateTopic { .. }
                        | MetadataRecord::SetTopicConfigs { .. }
                        | MetadataRecord::CreatePartitions { .. }
                        | MetadataRecord::FenceBroker { .. }
                        | MetadataRecord::UnfenceBroker { .. }
                        | MetadataRecord::ShutdownBroker { .. }
                        | MetadataRecord::ElectLeader { .. }
                        | MetadataRecord::AlterIsr { .. }
                        | MetadataRecord::ReassignPartition { .. }
                        | MetadataRecord::ReplicaFailed { .. } => topics_changed = true,
                        MetadataRecord::DeleteTopic { name, .. } => {
                            topics_changed = true;
                            removed.push(name.clone());
                        }
                        MetadataRecord::RegisterBroker { .. } => {}
                    }
                    self.state.apply(*index, &record);
                    applied.push(bytes.clone());
                }
                Err(e) => tracing::error!(index, error = %e, "metadata record not understood; skipped"),
            }
        }
        self.publish(facts).await;
        if let Some(text) = self.state.security.clone().filter(|_| security_changed || !self.adopted) {
            self.adopt_security(&text).await.map_err(|e| format!("local security state: {e}"))?;
        }
        if topics_changed || (!self.adopted && caught_up) {
            self.adopt(&removed).await.map_err(|e| format!("local catalog: {e}"))?;
            self.adopted = true;
            // Every shard takes its replicas' roles: leaders, followers.
            self.shard.on_every_shard(|shard| async move { replication::reconcile(shard).await }).await;
        }
        Ok(applied)
    }

    /// The local catalog follows the topics of the log: created, removed,
    /// and which partitions this node leads.
    async fn adopt(&mut self, removed: &[String]) -> Result<(), String> {
        let me = self.shard.config.node_id;
        let topics = self
            .state
            .topics
            .values()
            .filter_map(|t| {
                let id = uuid::Uuid::parse_str(&t.id).ok()?;
                Some(crate::metadata::controller::AdoptedTopic {
                    name: t.name.clone(),
                    id,
                    hosted: t.partitions.iter().map(|p| p.replicas.contains(&me)).collect(),
                    follows: t.partitions.iter().map(|p| p.replicas.contains(&me) && p.leader != me).collect(),
                    configs: t.configs.clone(),
                })
            })
            .collect();
        let env = self.shard.env();
        self.shard.controller().adopt(&env, topics, removed).await
    }

    /// The local catalog takes the cluster's security state.
    async fn adopt_security(&self, text: &str) -> Result<(), String> {
        let state = crate::security::store::SecurityState::decode(text)?;
        let env = self.shard.env();
        self.shard
            .controller()
            .update_security(&env, move |current| {
                let changed = current.encode() != state.encode();
                *current = state;
                ((), changed)
            })
            .await
    }

    /// Publishes the view to every shard when it changed.
    pub async fn publish(&mut self, facts: QuorumFacts) {
        let view = ClusterView {
            node_id: self.shard.config.node_id,
            controller_listener: self
                .shard
                .config
                .cluster
                .as_ref()
                .map(|c| c.controller_listener.clone())
                .unwrap_or_default(),
            leader: facts.leader,
            term: facts.term,
            committed: facts.committed,
            last_index: facts.last_index,
            voters: facts.voters,
            observers: facts.observers,
            brokers: self.state.brokers.values().cloned().collect(),
            security_version: self.state.security_version,
            topics: match &self.published {
                Some(p) if *p.topics == self.state.topics => p.topics.clone(),
                _ => Arc::new(self.state.topics.clone()),
            },
        };
        if self.published.as_ref() == Some(&view) {
            return;
        }
        self.published = Some(view.clone());
        let view = Arc::new(view);
        self.shard.on_every_shard(move |shard| async move { shard.apply_cluster(view) }).await;
    }
}

/// This node's proposals not yet applied: (record bytes, deadline, the
/// leader when proposed, answer).
#[derive(Default)]
pub struct Waiting {
    proposals: Vec<(Vec<u8>, Instant, Option<i32>, ProposalAnswer)>,
}

impl Waiting {
    /// Takes a proposal to wait on, or answers it at once when too many wait.
    pub fn push(&mut self, bytes: Vec<u8>, leader: Option<i32>, done: ProposalAnswer) {
        if self.proposals.len() >= PROPOSALS_WAITING_MAX {
            let _ = done.send(Err(ProposeError::TimedOut("too many metadata changes waiting".into())));
            return;
        }
        let deadline = Instant::now() + Duration::from_millis(PROPOSAL_TIMEOUT_MS);
        self.proposals.push((bytes, deadline, leader, done));
    }

    /// Whether another proposal may wait.
    pub fn full(&self) -> bool {
        self.proposals.len() >= PROPOSALS_WAITING_MAX
    }

    /// Answers the proposals that waited too long, and those whose leader
    /// changed (a proposal forwarded to a leader that died is lost; one
    /// that was not may still commit: either way the client asks again).
    pub fn expire(&mut self, leader: Option<i32>) {
        let now = Instant::now();
        for (bytes, deadline, proposed_to, done) in std::mem::take(&mut self.proposals) {
            if deadline <= now {
                let message = "the metadata quorum did not commit the change in time";
                let _ = done.send(Err(ProposeError::TimedOut(message.into())));
            } else if proposed_to != leader {
                let message = "the active controller changed; try again";
                let _ = done.send(Err(ProposeError::NotController(message.into())));
            } else {
                self.proposals.push((bytes, deadline, proposed_to, done));
            }
        }
    }

    /// Answers the proposals of `applied` records: done.
    pub fn applied(&mut self, applied: Vec<Vec<u8>>) {
        for bytes in applied {
            if let Some(i) = self.proposals.iter().position(|(b, _, _, _)| *b == bytes) {
                let (_, _, _, done) = self.proposals.swap_remove(i);
                let _ = done.send(Ok(()));
            }
        }
    }
}

/// A stopping broker's controlled shutdown, voter or observer: proposes
/// its `ShutdownBroker` (again every `CONTROLLED_SHUTDOWN_RETRY_MS`) until
/// the log has it, so that its partitions get other leaders before it stops
/// serving them.
#[derive(Default)]
pub struct Leaving {
    /// When it began, and when `ShutdownBroker` was last proposed.
    since: Option<(Instant, Instant)>,
}

/// What a stopping node does next.
pub enum LeaveStep {
    /// Its leaderships moved away (or it gave up waiting): stop.
    Done,
    /// Propose this record, and come back.
    Propose(MetadataRecord),
    /// Come back later.
    Wait,
}

impl Leaving {
    pub fn step(&mut self, state: &ClusterState, me: i32, incarnation: &str) -> LeaveStep {
        use crate::constants::{CONTROLLED_SHUTDOWN_MS_MAX, CONTROLLED_SHUTDOWN_RETRY_MS};
        let Some(broker) = state.brokers.get(&me).filter(|b| b.incarnation == incarnation) else {
            return LeaveStep::Done;
        };
        if broker.shutting_down || (broker.fenced && self.since.is_none()) {
            return LeaveStep::Done;
        }
        let now = Instant::now();
        let (began, proposed) = *self.since.get_or_insert((now, now - Duration::from_secs(1)));
        if now.duration_since(began) >= Duration::from_millis(CONTROLLED_SHUTDOWN_MS_MAX) {
            tracing::warn!("controlled shutdown did not finish in time; stopping anyway");
            return LeaveStep::Done;
        }
        if now.duration_since(proposed) >= Duration::from_millis(CONTROLLED_SHUTDOWN_RETRY_MS) {
            tracing::info!(node = me, "controlled shutdown: moving this broker's leaderships away");
            self.since = Some((began, now));
            return LeaveStep::Propose(MetadataRecord::ShutdownBroker { id: me, epoch: broker.epoch });
        }
        LeaveStep::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal() -> (ProposalAnswer, futures::channel::oneshot::Receiver<Result<(), ProposeError>>) {
        futures::channel::oneshot::channel()
    }

    #[test]
    fn a_proposal_is_answered_when_applied_and_refused_when_its_leader_changes() {
        let mut waiting = Waiting::default();
        let (done, mut applied) = proposal();
        waiting.push(b"one".to_vec(), Some(1), done);
        let (done, mut moved) = proposal();
        waiting.push(b"two".to_vec(), Some(1), done);
        // Another record's application answers neither.
        waiting.applied(vec![b"other".to_vec()]);
        assert!(applied.try_recv().unwrap().is_none());
        waiting.applied(vec![b"one".to_vec()]);
        assert!(matches!(applied.try_recv().unwrap(), Some(Ok(()))));
        // Leader 1 is still the leader: "two" waits on.
        waiting.expire(Some(1));
        assert!(moved.try_recv().unwrap().is_none());
        // A new leader: "two" may or may not commit, so the proposer is told to try again.
        waiting.expire(Some(2));
        assert!(matches!(moved.try_recv().unwrap(), Some(Err(ProposeError::NotController(_)))));
        assert!(!waiting.full());
    }

    #[test]
    fn too_many_waiting_proposals_are_refused_at_once() {
        let mut waiting = Waiting::default();
        let mut answers = Vec::new();
        for i in 0..PROPOSALS_WAITING_MAX {
            let (done, answer) = proposal();
            waiting.push(i.to_be_bytes().to_vec(), Some(1), done);
            answers.push(answer);
        }
        assert!(waiting.full());
        let (done, mut refused) = proposal();
        waiting.push(b"late".to_vec(), Some(1), done);
        assert!(matches!(refused.try_recv().unwrap(), Some(Err(ProposeError::TimedOut(_)))));
    }

    #[test]
    fn a_stopping_broker_proposes_its_shutdown_until_the_log_has_it() {
        let mut state = ClusterState::default();
        let register = MetadataRecord::RegisterBroker {
            id: 4,
            incarnation: "a".into(),
            endpoints: Vec::new(),
            rack: None,
            inter_broker: None,
        };
        state.apply(7, &register);
        state.apply(8, &MetadataRecord::UnfenceBroker { id: 4, epoch: 7 });
        let mut leaving = Leaving::default();
        let LeaveStep::Propose(record) = leaving.step(&state, 4, "a") else { panic!("proposes at once") };
        assert_eq!(record, MetadataRecord::ShutdownBroker { id: 4, epoch: 7 });
        assert!(matches!(leaving.step(&state, 4, "a"), LeaveStep::Wait), "not again before the retry interval");
        state.apply(9, &record);
        assert!(matches!(leaving.step(&state, 4, "a"), LeaveStep::Done));
        // Another incarnation's registration is not this process's to shut down.
        assert!(matches!(Leaving::default().step(&state, 4, "b"), LeaveStep::Done));
    }
}
