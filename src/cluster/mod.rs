//! A node's part in the cluster: the metadata quorum's loop and the
//! controller listener, both on [`ADMIN_SHARD`].
//!
//! The loop owns the node's [`Quorum`] (raft-rs), its durable log
//! (`sluice_storage::quorum_log`) and the [`ClusterState`] the committed
//! records build. Every [`QUORUM_TICK_MS`] it ticks Raft, sends its
//! heartbeat to the leader and, while it leads, proposes the fencing
//! decisions of [`Liveness`]. After every input it polls Raft, makes the log
//! and hard state durable, and only then sends the messages Raft produced
//! and applies the committed records. When what clients can see changes it
//! publishes a [`ClusterView`] to every shard.
//!
//! A node registers itself (a new incarnation per start) once a leader is
//! known, and proposes its registration again until it is committed.

pub mod replication;
pub mod topics;
pub mod transport;
pub mod txn;

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::TcpListener as StdTcpListener;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{select, Either};
use futures::io::AsyncReadExt;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;
use sluice_cluster::view::VoterView;
use sluice_cluster::{ClusterState, ClusterView, Endpoint, Liveness, MetadataRecord, Quorum, Timing};
use sluice_storage::quorum_log::QuorumLog;

use crate::config::{ClusterConfig, ListenerConfig, SecurityProtocol};
use crate::constants::{
    CONTROLLED_SHUTDOWN_MS_MAX, CONTROLLED_SHUTDOWN_RETRY_MS, QUORUM_ELECTION_TICKS, QUORUM_HEARTBEAT_TICKS,
    QUORUM_INBOX_MAX, QUORUM_RECORD_BYTES_MAX, QUORUM_TICK_MS,
};
use crate::security::principal::KafkaPrincipal;
use crate::server::listener::ListenerRuntime;
use crate::server::session::Session;
use crate::server::{connection, ConnectionSlot};
use crate::shard::Shard;
use transport::{Inbound, Kind, Peer, Prefixed, MAGIC};

/// How long an accepted controller connection has to say what it is.
const HELLO_TIMEOUT_MS: u64 = 10_000;
/// How long a proposal may wait to be committed and applied.
const PROPOSAL_TIMEOUT_MS: u64 = 15_000;
/// Proposals of this node waiting to be applied.
const PROPOSALS_WAITING_MAX: usize = 1024;

/// What the quorum loop takes in.
enum Input {
    Peer(Inbound),
    Propose(Proposal),
}

/// A record a handler of this node wants committed, and where to say when
/// it is applied here (and the local catalog follows it).
struct Proposal {
    record: MetadataRecord,
    done: ProposalAnswer,
}

/// Where a proposer hears whether its record was applied.
type ProposalAnswer = futures::channel::oneshot::Sender<Result<(), ProposeError>>;

thread_local! {
    /// The quorum loop's input, on the admin shard of a cluster node.
    static PROPOSALS: RefCell<Option<Rc<LocalSender<Input>>>> = const { RefCell::new(None) };
    /// Set once a stopping node's controlled shutdown is over (its
    /// leaderships moved away, or it gave up waiting).
    static LEFT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this node's controlled shutdown is over (the admin shard of a
/// stopping cluster node waits for it before it closes its partitions).
pub fn left() -> bool {
    LEFT.with(|l| l.get())
}

/// Why a proposal was not applied.
#[derive(Debug)]
pub enum ProposeError {
    /// No leader, or the leader changed while it waited: it may or may not
    /// be committed later; the client tries again (Kafka's NOT_CONTROLLER).
    NotController(String),
    /// Not committed in time, or the quorum stopped.
    TimedOut(String),
}

impl ProposeError {
    /// The Kafka error a client gets, with its message.
    pub fn answer(self) -> (crate::protocol::ResponseError, String) {
        match self {
            ProposeError::NotController(m) => (crate::protocol::ResponseError::NotController, m),
            ProposeError::TimedOut(m) => (crate::protocol::ResponseError::RequestTimedOut, m),
        }
    }
}

impl std::fmt::Display for ProposeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProposeError::NotController(m) | ProposeError::TimedOut(m) => f.write_str(m),
        }
    }
}

/// Has the metadata quorum commit `record` and waits until this node has
/// applied it. Runs on [`ADMIN_SHARD`] only (where the loop is).
pub async fn propose(record: MetadataRecord) -> Result<(), ProposeError> {
    let stopped = || ProposeError::TimedOut("the metadata quorum stopped".into());
    let sender = PROPOSALS
        .with(|p| p.borrow().clone())
        .ok_or_else(|| ProposeError::TimedOut("not a cluster node, or not its admin shard".into()))?;
    let (done, answer) = futures::channel::oneshot::channel();
    sender.send(Input::Propose(Proposal { record, done })).await.map_err(|_| stopped())?;
    answer.await.map_err(|_| stopped())?
}

/// Changes the security state (ACLs, SCRAM credentials, quotas) as
/// `change` says, on the controller shard. A single node stores it; a
/// cluster node proposes the whole new state, made from the version it
/// holds, and it applies only if no other change came first (then the
/// caller is told to try again, rather than one change undoing another).
pub async fn update_security<R>(
    shard: &Rc<Shard>,
    change: impl FnOnce(&mut crate::security::store::SecurityState) -> (R, bool),
) -> Result<R, String> {
    if shard.config.cluster.is_none() {
        return shard.controller().update_security(&shard.env(), change).await;
    }
    let view = shard.cluster().ok_or("the cluster's metadata is not loaded yet; try again")?;
    let mut state = (*shard.catalog().security).clone();
    let (answer, changed) = change(&mut state);
    if !changed {
        return Ok(answer);
    }
    let text = state.encode();
    propose(MetadataRecord::SetSecurity { base: view.security_version, text: text.clone() })
        .await
        .map_err(|e| e.to_string())?;
    if shard.catalog().security.encode() != text {
        return Err("the security state changed at the same time on another broker; try again".into());
    }
    Ok(answer)
}

/// How long an inbound quorum connection may stay silent.
const QUORUM_IDLE_MS: u64 = 30_000;
/// How often a node proposes its registration again until it is committed.
const REGISTER_RETRY_MS: u64 = 1_000;

/// The directory of the quorum's log under the data dir.
pub fn quorum_dir(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("__cluster_metadata-0")
}

/// Starts the quorum loop and the controller listener on this shard.
pub async fn start(shard: Rc<Shard>, listener: StdTcpListener) -> Result<(), String> {
    let config = shard.config.cluster.clone().ok_or("not a cluster node")?;
    let me = shard.config.node_id;
    let dir = quorum_dir(&shard.config.data_dir);
    let (log, recovered) = QuorumLog::open(&dir).await.map_err(|e| format!("quorum log: {e}"))?;
    let voters: Vec<i32> = config.voters.iter().map(|v| v.id).collect();
    let timing = Timing { election_ticks: QUORUM_ELECTION_TICKS, heartbeat_ticks: QUORUM_HEARTBEAT_TICKS };
    let quorum = Quorum::open(me, &voters, timing, &recovered.frames, recovered.hard_state.as_deref())
        .map_err(|e| format!("quorum log {}: {e}", dir.display()))?;
    tracing::info!(
        node = me, voters = %config.voters_text, entries = recovered.frames.len(), term = quorum.term(),
        "metadata quorum opened"
    );
    let (inbox, inbound) = local_channel::new_bounded(QUORUM_INBOX_MAX);
    let inbox = Rc::new(inbox);
    PROPOSALS.with(|p| *p.borrow_mut() = Some(inbox.clone()));
    let peers = config
        .voters
        .iter()
        .filter(|v| v.id != me)
        .map(|v| (v.id, Peer::start(shard.clone(), me, v.id, v.host.clone(), v.port)))
        .collect();
    let node = Node {
        shard: shard.clone(),
        registration: registration(&shard, &config),
        config,
        quorum,
        log,
        stored_hard_state: recovered.hard_state,
        state: ClusterState::default(),
        liveness: Liveness::default(),
        peers,
        started: Instant::now(),
        registered_at_ms: None,
        published: None,
        waiting: Vec::new(),
        adopted: false,
        leaving: None,
    };
    let controller_listener = Rc::new(controller_listener_runtime(&shard, &node.config)?);
    let accept_shard = shard.clone();
    glommio::spawn_local(accept_loop(accept_shard, listener, controller_listener, inbox)).detach();
    glommio::spawn_local(async move { node.run(inbound).await }).detach();
    // Every shard's leaders watch for followers that fall behind.
    let every = shard.clone();
    glommio::spawn_local(async move {
        every
            .on_every_shard(|shard| async move {
                glommio::spawn_local(replication::check_lagging_followers(shard)).detach();
            })
            .await;
    })
    .detach();
    Ok(())
}

/// The controller listener as a Kafka listener, for the clients that use it.
fn controller_listener_runtime(shard: &Shard, config: &ClusterConfig) -> Result<ListenerRuntime, String> {
    let bind = config.controller_bind;
    let voter = config.voters.iter().find(|v| v.id == shard.config.node_id).ok_or("this node is not a voter")?;
    ListenerRuntime::new(ListenerConfig {
        name: config.controller_listener.clone(),
        protocol: SecurityProtocol::Plaintext,
        bind,
        advertised_host: voter.host.clone(),
        advertised_port: voter.port,
        tls: None,
        sasl_mechanisms: Vec::new(),
        plain_jaas: None,
        oauth: None,
    })
}

/// This start's registration: the client listeners as advertised, and the controller's.
fn registration(shard: &Shard, config: &ClusterConfig) -> MetadataRecord {
    let mut endpoints: Vec<Endpoint> = shard
        .config
        .listeners
        .iter()
        .map(|l| Endpoint {
            name: l.name.clone(),
            host: l.advertised_host.clone(),
            port: l.advertised_port,
            protocol: l.protocol.name().to_string(),
        })
        .collect();
    if let Some(voter) = config.voters.iter().find(|v| v.id == shard.config.node_id) {
        endpoints.push(Endpoint {
            name: config.controller_listener.clone(),
            host: voter.host.clone(),
            port: voter.port,
            protocol: SecurityProtocol::Plaintext.name().to_string(),
        });
    }
    MetadataRecord::RegisterBroker {
        id: shard.config.node_id,
        incarnation: uuid::Uuid::new_v4().simple().to_string(),
        endpoints,
        rack: None,
    }
}

struct Node {
    shard: Rc<Shard>,
    config: ClusterConfig,
    quorum: Quorum,
    log: QuorumLog,
    stored_hard_state: Option<Vec<u8>>,
    state: ClusterState,
    liveness: Liveness,
    peers: HashMap<i32, Peer>,
    registration: MetadataRecord,
    started: Instant,
    /// When the registration was last proposed.
    registered_at_ms: Option<u64>,
    published: Option<ClusterView>,
    /// This node's proposals not yet applied: (record bytes, deadline, the
    /// leader when proposed, answer).
    waiting: Vec<(Vec<u8>, Instant, Option<i32>, ProposalAnswer)>,
    /// Whether the local catalog has followed the log since the start.
    adopted: bool,
    /// A stopping node's controlled shutdown: when it began, and when its
    /// `ShutdownBroker` was last proposed.
    leaving: Option<(Instant, Instant)>,
}

impl Node {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Controlled shutdown, as a stopping node's loop goes on: proposes this
    /// broker's `ShutdownBroker` (again every `CONTROLLED_SHUTDOWN_RETRY_MS`)
    /// until the log has it, so that its partitions get other leaders before
    /// it stops serving them. True once done, or after
    /// `CONTROLLED_SHUTDOWN_MS_MAX` (the broker then stops anyway, and is
    /// fenced when its session ends).
    fn leave(&mut self) -> bool {
        let me = self.shard.config.node_id;
        let Some(broker) = self.state.brokers.get(&me).filter(|b| b.incarnation == self.incarnation()) else {
            return true;
        };
        if broker.shutting_down || (broker.fenced && self.leaving.is_none()) {
            return true;
        }
        let now = Instant::now();
        let (began, proposed) = *self.leaving.get_or_insert((now, now - Duration::from_secs(1)));
        if now.duration_since(began) >= Duration::from_millis(CONTROLLED_SHUTDOWN_MS_MAX) {
            tracing::warn!("controlled shutdown did not finish in time; stopping anyway");
            return true;
        }
        if now.duration_since(proposed) >= Duration::from_millis(CONTROLLED_SHUTDOWN_RETRY_MS) {
            tracing::info!(node = me, "controlled shutdown: moving this broker's leaderships away");
            let record = MetadataRecord::ShutdownBroker { id: me, epoch: broker.epoch };
            let _ = self.quorum.propose(record.encode());
            self.leaving = Some((began, now));
        }
        false
    }

    fn incarnation(&self) -> &str {
        match &self.registration {
            MetadataRecord::RegisterBroker { incarnation, .. } => incarnation,
            _ => "",
        }
    }

    async fn run(mut self, inbound: LocalReceiver<Input>) {
        let tick = Duration::from_millis(QUORUM_TICK_MS);
        let mut next_tick = Instant::now() + tick;
        let mut next_heartbeat = Instant::now();
        let mut was_leader = false;
        loop {
            if self.shard.lifecycle.stopping() && self.leave() {
                LEFT.with(|l| l.set(true));
                return;
            }
            let wait = next_tick.saturating_duration_since(Instant::now());
            let sleep = glommio::timer::sleep(wait);
            futures::pin_mut!(sleep);
            let received = inbound.recv();
            futures::pin_mut!(received);
            if let Either::Left((Some(message), _)) = select(received, sleep).await {
                self.receive(message);
                // Take whatever else already waits before polling once.
                while let Some(Some(message)) = futures::FutureExt::now_or_never(inbound.recv()) {
                    self.receive(message);
                }
            }
            // Checked on every wake, so a busy inbox never starves the clock.
            if Instant::now() >= next_tick {
                next_tick = Instant::now() + tick;
                self.quorum.tick();
                self.expire_proposals();
                let now = self.now_ms();
                if self.quorum.is_leader() != was_leader {
                    was_leader = self.quorum.is_leader();
                    self.liveness.leading(was_leader.then_some(now));
                    tracing::info!(
                        node = self.shard.config.node_id,
                        leader = was_leader,
                        term = self.quorum.term(),
                        "metadata quorum leadership changed"
                    );
                }
                if Instant::now() >= next_heartbeat {
                    next_heartbeat = Instant::now() + Duration::from_millis(self.config.broker_heartbeat_interval_ms);
                    self.heartbeat(now);
                }
                self.register(now);
                if self.quorum.is_leader() {
                    for record in self.liveness.decisions(&self.state, now, self.config.broker_session_timeout_ms) {
                        tracing::info!(?record, "broker liveness changed");
                        let _ = self.quorum.propose(record.encode());
                    }
                }
            }
            if let Err(e) = self.poll().await {
                // Kafka halts a controller whose metadata log fails: nothing it says afterwards can be trusted.
                tracing::error!(error = %e, "metadata quorum failed; stopping the broker");
                self.shard.lifecycle.stop();
                return;
            }
        }
    }

    fn receive(&mut self, input: Input) {
        let message = match input {
            Input::Peer(message) => message,
            Input::Propose(proposal) => return self.propose(proposal),
        };
        match message.kind {
            Kind::Raft => {
                if let Err(e) = self.quorum.receive(&message.payload) {
                    tracing::debug!(from = message.from, error = %e, "quorum message refused");
                }
            }
            Kind::Heartbeat => {
                let incarnation = String::from_utf8_lossy(&message.payload).into_owned();
                let now = self.now_ms();
                self.liveness.heard(message.from, &incarnation, now);
            }
        }
    }

    fn propose(&mut self, proposal: Proposal) {
        if self.waiting.len() >= PROPOSALS_WAITING_MAX {
            let _ = proposal.done.send(Err(ProposeError::TimedOut("too many metadata changes waiting".into())));
            return;
        }
        let bytes = proposal.record.encode();
        if bytes.len() > QUORUM_RECORD_BYTES_MAX {
            let message = format!("a metadata change of {} bytes is over {QUORUM_RECORD_BYTES_MAX}", bytes.len());
            let _ = proposal.done.send(Err(ProposeError::TimedOut(message)));
            return;
        }
        match self.quorum.propose(bytes.clone()) {
            Ok(()) => {
                let deadline = Instant::now() + Duration::from_millis(PROPOSAL_TIMEOUT_MS);
                self.waiting.push((bytes, deadline, self.quorum.leader(), proposal.done));
            }
            Err(e) => {
                let _ = proposal.done.send(Err(ProposeError::NotController(e.to_string())));
            }
        }
    }

    /// Answers the proposals that waited too long, and those whose leader
    /// changed (a proposal forwarded to a leader that died is lost; one
    /// that was not may still commit: either way the client asks again).
    fn expire_proposals(&mut self) {
        let now = Instant::now();
        let leader = self.quorum.leader();
        for (bytes, deadline, proposed_to, done) in std::mem::take(&mut self.waiting) {
            if deadline <= now {
                let message = "the metadata quorum did not commit the change in time";
                let _ = done.send(Err(ProposeError::TimedOut(message.into())));
            } else if proposed_to != leader {
                let message = "the active controller changed; try again";
                let _ = done.send(Err(ProposeError::NotController(message.into())));
            } else {
                self.waiting.push((bytes, deadline, proposed_to, done));
            }
        }
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

    /// Tells the leader this incarnation is alive (itself, if it leads).
    fn heartbeat(&mut self, now: u64) {
        let me = self.shard.config.node_id;
        match self.quorum.leader() {
            Some(leader) if leader == me => {
                let incarnation = self.incarnation().to_string();
                self.liveness.heard(me, &incarnation, now);
            }
            Some(leader) => {
                if let Some(peer) = self.peers.get(&leader) {
                    peer.send(Kind::Heartbeat, self.incarnation().as_bytes());
                }
            }
            None => {}
        }
    }

    /// Proposes this start's registration until the log has it.
    fn register(&mut self, now: u64) {
        if self.state.is_registered(self.shard.config.node_id, self.incarnation()) || self.quorum.leader().is_none() {
            return;
        }
        if self.registered_at_ms.is_some_and(|at| now.saturating_sub(at) < REGISTER_RETRY_MS) {
            return;
        }
        self.registered_at_ms = Some(now);
        let _ = self.quorum.propose(self.registration.encode());
    }

    /// Moves Raft on: durable first, then messages, then what was committed.
    async fn poll(&mut self) -> Result<(), String> {
        loop {
            let out = self.quorum.poll().map_err(|e| e.to_string())?;
            if out.is_empty() {
                break;
            }
            self.log.append(&out.entries).await.map_err(|e| e.to_string())?;
            if out.hard_state.is_some() && out.hard_state != self.stored_hard_state {
                let hard_state = out.hard_state.clone().unwrap_or_default();
                self.log.store_hard_state(&hard_state).await.map_err(|e| e.to_string())?;
                self.stored_hard_state = Some(hard_state);
            }
            for (to, bytes) in &out.messages {
                if let Some(peer) = self.peers.get(to) {
                    peer.send(Kind::Raft, bytes);
                }
            }
            let mut topics_changed = false;
            let mut security_changed = false;
            let mut removed = Vec::new();
            let mut applied = Vec::new();
            for (index, bytes) in &out.committed {
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
                            _ => {}
                        }
                        self.state.apply(*index, &record);
                        applied.push(bytes.clone());
                    }
                    Err(e) => tracing::error!(index, error = %e, "metadata record not understood; skipped"),
                }
            }
            // Shards see where partitions are placed before their catalog
            // has them, and both before a proposer's answer goes out.
            self.publish().await;
            if let Some(text) = self.state.security.clone().filter(|_| security_changed || !self.adopted) {
                self.adopt_security(&text).await.map_err(|e| format!("local security state: {e}"))?;
            }
            if topics_changed || (!self.adopted && self.quorum.leader().is_some()) {
                self.adopt(&removed).await.map_err(|e| format!("local catalog: {e}"))?;
                self.adopted = true;
                // Every shard takes its replicas' roles: leaders, followers.
                self.shard.on_every_shard(|shard| async move { replication::reconcile(shard).await }).await;
            }
            for bytes in applied {
                if let Some(i) = self.waiting.iter().position(|(b, _, _, _)| *b == bytes) {
                    let (_, _, _, done) = self.waiting.swap_remove(i);
                    let _ = done.send(Ok(()));
                }
            }
        }
        self.publish().await;
        Ok(())
    }

    /// Publishes the view to every shard when it changed.
    async fn publish(&mut self) {
        let progress = self.quorum.progress();
        let voters = self
            .config
            .voters
            .iter()
            .map(|v| VoterView {
                node: v.id,
                host: v.host.clone(),
                port: v.port,
                matched: progress.as_ref().and_then(|p| p.iter().find(|p| p.node == v.id).map(|p| p.matched)),
            })
            .collect();
        let view = ClusterView {
            node_id: self.shard.config.node_id,
            controller_listener: self.config.controller_listener.clone(),
            leader: self.quorum.leader(),
            term: self.quorum.term(),
            committed: self.quorum.committed_index(),
            last_index: self.quorum.last_index(),
            voters,
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

/// Accepts on the controller listener: voters' quorum connections go to the
/// loop's inbox, anything else is served as a Kafka client.
async fn accept_loop(
    shard: Rc<Shard>,
    listener: StdTcpListener,
    runtime: Rc<ListenerRuntime>,
    inbox: Rc<LocalSender<Input>>,
) {
    let listener = {
        use std::os::fd::{FromRawFd, IntoRawFd};
        // SAFETY: the descriptor comes from a bound listener whose ownership moves here.
        unsafe { glommio::net::TcpListener::from_raw_fd(listener.into_raw_fd()) }
    };
    let mut accept = Box::pin(listener.accept());
    loop {
        let tick = glommio::timer::sleep(Duration::from_millis(50));
        futures::pin_mut!(tick);
        if let Either::Left((accepted, _)) = select(accept.as_mut(), tick).await {
            accept = Box::pin(listener.accept());
            match accepted {
                Ok(stream) => {
                    let (shard, runtime, inbox) = (shard.clone(), runtime.clone(), inbox.clone());
                    glommio::spawn_local(
                        async move { serve_controller_connection(shard, runtime, inbox, stream).await },
                    )
                    .detach();
                }
                Err(e) => tracing::warn!(error = %e, "controller listener accept failed"),
            }
        }
        if shard.lifecycle.stopping() && left() {
            return;
        }
    }
}

async fn serve_controller_connection(
    shard: Rc<Shard>,
    runtime: Rc<ListenerRuntime>,
    inbox: Rc<LocalSender<Input>>,
    mut stream: TcpStream,
) {
    let Some(slot) = ConnectionSlot::take(&shard.lifecycle, shard.config.max_connections) else {
        shard.metrics.connections_refused.inc();
        return;
    };
    let Ok(peer) = stream.peer_addr() else { return };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(HELLO_TIMEOUT_MS)));
    let mut first = [0u8; 4];
    if stream.read_exact(&mut first).await.is_err() {
        return;
    }
    if first != MAGIC {
        let _ = stream.set_read_timeout(Some(Duration::from_millis(shard.config.connections_max_idle_ms)));
        let session = Rc::new(Session::new(runtime, peer, KafkaPrincipal::anonymous()));
        connection::serve(shard, session, Prefixed::new(first.to_vec(), stream)).await;
        drop(slot);
        return;
    }
    let mut id = [0u8; 4];
    if stream.read_exact(&mut id).await.is_err() {
        return;
    }
    let from = i32::from_be_bytes(id);
    let voter = shard.config.cluster.as_ref().is_some_and(|c| c.voters.iter().any(|v| v.id == from));
    if !voter || from == shard.config.node_id {
        tracing::warn!(%peer, node = from, "quorum connection from a node that is not a voter; closed");
        return;
    }
    // A connection idle this long is closed; the peer connects again when it next sends.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(QUORUM_IDLE_MS)));
    loop {
        match transport::read_frame(&mut stream).await {
            Ok(Some((kind, payload))) => {
                if inbox.send(Input::Peer(Inbound { from, kind, payload })).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(%peer, node = from, error = %e, "quorum connection closed");
                return;
            }
        }
        // A stopping node hears the quorum until its controlled shutdown is over.
        if shard.lifecycle.stopping() && left() {
            return;
        }
    }
}
