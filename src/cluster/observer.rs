//! A broker that is not a voter (`process.roles=broker`): it follows the
//! metadata quorum as an observer, as a KRaft broker follows
//! `__cluster_metadata`.
//!
//! On [`ADMIN_SHARD`](crate::admin::ADMIN_SHARD) one loop keeps a quorum
//! connection to a voter (the leader once it is known), and every
//! [`OBSERVER_FETCH_INTERVAL_MS`] asks it for the committed records after the
//! last one applied, applying them as a voter does ([`Applier`]). On the same
//! connection it sends its heartbeats (the leader fences a broker it stops
//! hearing from), its registration until the log has it, the proposals of
//! its handlers (CreateTopics and the like), and at a stop its controlled
//! shutdown.
//!
//! It keeps no copy of the log: a restart fetches it again from the first
//! record, and the broker serves no cluster metadata until it has caught up
//! (its partitions' data is in its data dir as on a voter).

use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::future::{select, Either};
use futures::io::AsyncWriteExt;
use glommio::channels::local_channel::{self, LocalReceiver};
use glommio::net::TcpStream;
use sluice_cluster::view::VoterView;
use sluice_cluster::MetadataRecord;

use super::apply::{Applier, LeaveStep, Leaving, QuorumFacts, Waiting};
use super::transport::{self, Kind, Records};
use super::{incarnation, Input, Proposal, ProposeError, LEFT, PROPOSALS, REGISTER_RETRY_MS};
use crate::config::ClusterConfig;
use crate::constants::{
    OBSERVER_FETCH_INTERVAL_MS, OBSERVER_FETCH_TIMEOUT_MS, QUORUM_INBOX_MAX, QUORUM_RECONNECT_BACKOFF_MS,
};
use crate::shard::Shard;

struct Observer {
    shard: Rc<Shard>,
    config: ClusterConfig,
    registration: MetadataRecord,
    applier: Applier,
    /// The next log index to ask for.
    next: u64,
    /// The quorum as the last answer told it.
    leader: Option<i32>,
    term: u64,
    committed: u64,
    /// Whether this start has applied every record committed when it first asked.
    caught_up: bool,
    waiting: Waiting,
    leaving: Leaving,
    registered_at: Option<Instant>,
    heartbeat_at: Option<Instant>,
    /// Which voter to try next when no leader is known.
    rotation: usize,
}

/// Runs the observer loop until the broker stops.
pub async fn run(shard: Rc<Shard>, config: ClusterConfig, registration: MetadataRecord) {
    let (inbox, inbound) = local_channel::new_bounded(QUORUM_INBOX_MAX);
    PROPOSALS.with(|p| *p.borrow_mut() = Some(Rc::new(inbox)));
    tracing::info!(node = shard.config.node_id, voters = %config.voters_text, "following the metadata quorum as an observer");
    let mut observer = Observer {
        applier: Applier::new(shard.clone()),
        shard,
        config,
        registration,
        next: 1,
        leader: None,
        term: 0,
        committed: 0,
        caught_up: false,
        waiting: Waiting::default(),
        leaving: Leaving::default(),
        registered_at: None,
        heartbeat_at: None,
        rotation: 0,
    };
    observer.run(inbound).await;
    LEFT.with(|l| l.set(true));
}

impl Observer {
    async fn run(&mut self, inbound: LocalReceiver<Input>) {
        // Shards know at once that this is a cluster node with no leader heard from yet.
        let facts = self.facts();
        self.applier.publish(facts).await;
        loop {
            if self.shard.lifecycle.stopping() && self.leaving_done() {
                return;
            }
            let voter = self.target();
            let Some((host, port)) =
                self.config.voters.iter().find(|v| v.id == voter).map(|v| (v.host.clone(), v.port))
            else {
                return;
            };
            let ended = match transport::connect(self.me(), &host, port).await {
                Ok(stream) => self.follow(voter, stream, &inbound).await,
                Err(e) => Err(e),
            };
            if self.shard.lifecycle.stopping() && self.leaving_done() {
                return;
            }
            if let Err(e) = ended {
                // Try the next voter. Until one answers this broker knows no
                // leader, and says so.
                tracing::debug!(voter, error = %e, "metadata quorum connection ended");
                self.rotation += 1;
                self.leader = None;
                let facts = self.facts();
                self.applier.publish(facts).await;
                self.waiting.expire(self.leader);
                self.refuse_proposals(&inbound);
                glommio::timer::sleep(Duration::from_millis(QUORUM_RECONNECT_BACKOFF_MS)).await;
            }
        }
    }

    fn me(&self) -> i32 {
        self.shard.config.node_id
    }

    /// The voter to follow: the leader if known, else the next in turn.
    fn target(&self) -> i32 {
        match self.leader {
            Some(leader) if self.config.voters.iter().any(|v| v.id == leader) => leader,
            _ => self.config.voters[self.rotation % self.config.voters.len()].id,
        }
    }

    /// Follows the quorum through `voter` until the connection fails (an
    /// error), the leader is another voter, or the broker's controlled
    /// shutdown is over.
    async fn follow(
        &mut self,
        voter: i32,
        mut stream: TcpStream,
        inbound: &LocalReceiver<Input>,
    ) -> std::io::Result<()> {
        let _ = stream.set_read_timeout(Some(Duration::from_millis(OBSERVER_FETCH_TIMEOUT_MS)));
        let interval = Duration::from_millis(OBSERVER_FETCH_INTERVAL_MS);
        loop {
            // Records first, so that a proposal is matched against the log as it is now.
            stream.write_all(&transport::encode_frame(Kind::Fetch, &self.next.to_be_bytes())).await?;
            let records = match transport::read_frame(&mut stream).await? {
                Some((Kind::Records, payload)) => Records::decode(&payload)?,
                Some((kind, _)) => {
                    return Err(std::io::Error::other(format!("a voter answered a fetch with {kind:?}")));
                }
                None => return Err(std::io::Error::other("the voter closed the connection")),
            };
            let more = self.take(records).await?;
            if self.shard.lifecycle.stopping() {
                match self.leaving.step(&self.applier.state, self.me(), incarnation(&self.registration)) {
                    LeaveStep::Done => return Ok(()),
                    LeaveStep::Propose(record) => self.send_propose(&mut stream, record.encode()).await?,
                    LeaveStep::Wait => {}
                }
            }
            if self.leader.is_some_and(|l| l != voter) {
                return Ok(());
            }
            if self.leader == Some(voter) {
                self.heartbeat_and_register(&mut stream).await?;
            }
            self.waiting.expire(self.leader);
            if more {
                continue;
            }
            // Wait for the next fetch, taking proposals as they come.
            let until = Instant::now() + interval;
            loop {
                let sleep = glommio::timer::sleep(until.saturating_duration_since(Instant::now()));
                futures::pin_mut!(sleep);
                let received = inbound.recv();
                futures::pin_mut!(received);
                match select(received, sleep).await {
                    Either::Left((Some(Input::Propose(proposal)), _)) => self.propose(&mut stream, proposal).await?,
                    Either::Left((Some(_), _)) => {}
                    Either::Left((None, _)) | Either::Right(_) => break,
                }
            }
        }
    }

    /// Applies an answer; true when more records are committed than it held.
    async fn take(&mut self, records: Records) -> std::io::Result<bool> {
        if records.next < self.next {
            return Err(std::io::Error::other(format!(
                "the voter answered from index {} after {} was asked for",
                records.next, self.next
            )));
        }
        self.leader = records.leader;
        self.term = records.term;
        self.committed = records.committed;
        self.next = records.next;
        let caught_up = self.caught_up || self.next > self.committed;
        if caught_up && !self.caught_up {
            tracing::info!(node = self.me(), index = self.committed, "caught up with the metadata quorum");
        }
        let facts = self.facts();
        let applied = self.applier.apply(&records.records, facts, caught_up).await.map_err(std::io::Error::other)?;
        self.caught_up = caught_up;
        self.waiting.applied(applied);
        Ok(self.next <= self.committed)
    }

    fn facts(&self) -> QuorumFacts {
        QuorumFacts {
            leader: self.leader,
            term: self.term,
            committed: self.committed,
            last_index: self.next.saturating_sub(1),
            voters: self
                .config
                .voters
                .iter()
                .map(|v| VoterView { node: v.id, host: v.host.clone(), port: v.port, matched: None })
                .collect(),
            observers: Vec::new(),
        }
    }

    /// Tells the leader this incarnation is alive, and proposes its
    /// registration until the log has it.
    async fn heartbeat_and_register(&mut self, stream: &mut TcpStream) -> std::io::Result<()> {
        let now = Instant::now();
        let interval = Duration::from_millis(self.config.broker_heartbeat_interval_ms);
        if self.heartbeat_at.is_none_or(|at| now.duration_since(at) >= interval) {
            self.heartbeat_at = Some(now);
            let heartbeat = transport::encode_frame(Kind::Heartbeat, incarnation(&self.registration).as_bytes());
            stream.write_all(&heartbeat).await?;
        }
        let registered = self.applier.state.is_registered(self.me(), incarnation(&self.registration));
        let retry = Duration::from_millis(REGISTER_RETRY_MS);
        if self.caught_up && !registered && self.registered_at.is_none_or(|at| now.duration_since(at) >= retry) {
            self.registered_at = Some(now);
            self.send_propose(stream, self.registration.encode()).await?;
        }
        Ok(())
    }

    async fn send_propose(&self, stream: &mut TcpStream, bytes: Vec<u8>) -> std::io::Result<()> {
        stream.write_all(&transport::encode_frame(Kind::Propose, &bytes)).await
    }

    /// A handler's proposal: sent to the voter, answered once applied here.
    async fn propose(&mut self, stream: &mut TcpStream, proposal: Proposal) -> std::io::Result<()> {
        let Proposal { bytes, done } = proposal;
        if self.leader.is_none() {
            let _ = done.send(Err(ProposeError::NotController("no active controller is known".into())));
            return Ok(());
        }
        self.send_propose(stream, bytes.clone()).await?;
        self.waiting.push(bytes, self.leader, done);
        Ok(())
    }

    /// Proposals that came while no voter was reachable: refused, as a voter without a leader refuses them.
    fn refuse_proposals(&mut self, inbound: &LocalReceiver<Input>) {
        while let Some(Some(input)) = futures::FutureExt::now_or_never(inbound.recv()) {
            if let Input::Propose(proposal) = input {
                let message = "no voter of the metadata quorum is reachable; try again";
                let _ = proposal.done.send(Err(ProposeError::NotController(message.into())));
            }
        }
    }

    /// Whether a stopping broker may stop now (its shutdown is recorded, or
    /// it gave up waiting).
    fn leaving_done(&mut self) -> bool {
        matches!(self.leaving.step(&self.applier.state, self.me(), incarnation(&self.registration)), LeaveStep::Done)
    }
}
