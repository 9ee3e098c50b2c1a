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
//!
//! A broker that is not a voter (`process.roles=broker`) runs
//! [`observer`]'s loop instead: it fetches the committed records from a
//! voter and applies them the same way ([`apply`]).

pub mod apply;
pub mod observer;
pub mod replication;
pub mod topics;
pub mod transport;
pub mod txn;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener as StdTcpListener;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::future::{select, Either};
use futures::io::AsyncReadExt;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;
use sluice_cluster::view::VoterView;
use sluice_cluster::{Endpoint, Liveness, MetadataRecord, Quorum, Timing};
use sluice_storage::quorum_log::QuorumLog;

use crate::config::{ClusterConfig, ListenerConfig, SecurityProtocol};
use crate::constants::{
    CLUSTER_BROKERS_MAX, OBSERVER_FETCH_BYTES_MAX, QUORUM_ELECTION_TICKS, QUORUM_HEARTBEAT_TICKS, QUORUM_INBOX_MAX,
    QUORUM_RECORD_BYTES_MAX, QUORUM_TICK_MS,
};
use crate::security::principal::KafkaPrincipal;
use crate::server::listener::ListenerRuntime;
use crate::server::session::Session;
use crate::server::{connection, ConnectionSlot};
use crate::shard::Shard;
use apply::{Applier, LeaveStep, Leaving, QuorumFacts, Waiting};
use transport::{Inbound, Kind, Peer, Prefixed, Records, MAGIC};

/// How long an accepted controller connection has to say what it is.
const HELLO_TIMEOUT_MS: u64 = 10_000;

/// What the quorum loop takes in.
enum Input {
    Peer(Inbound),
    Propose(Proposal),
    /// An observer's fetch from log index `index`, and where to answer.
    Fetch {
        from: i32,
        index: u64,
        reply: futures::channel::oneshot::Sender<Records>,
    },
    /// An observer's record to propose.
    Forward(Vec<u8>),
}

/// A record a handler of this node wants committed (encoded, within
/// `QUORUM_RECORD_BYTES_MAX`), and where to say when it is applied here
/// (and the local catalog follows it).
struct Proposal {
    bytes: Vec<u8>,
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
    let bytes = record.encode();
    if bytes.len() > QUORUM_RECORD_BYTES_MAX {
        let message = format!("a metadata change of {} bytes is over {QUORUM_RECORD_BYTES_MAX}", bytes.len());
        return Err(ProposeError::TimedOut(message));
    }
    let (done, answer) = futures::channel::oneshot::channel();
    sender.send(Input::Propose(Proposal { bytes, done })).await.map_err(|_| stopped())?;
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

/// Starts this node's part on this shard: a voter's quorum loop and
/// controller listener, or a broker alone's observer loop.
pub async fn start(shard: Rc<Shard>, listener: Option<StdTcpListener>) -> Result<(), String> {
    let config = shard.config.cluster.clone().ok_or("not a cluster node")?;
    let Some(listener) = listener else {
        let registration = registration(&shard, &config);
        glommio::spawn_local(observer::run(shard.clone(), config, registration)).detach();
        watch_followers(&shard);
        return Ok(());
    };
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
        applier: Applier::new(shard.clone()),
        liveness: Liveness::default(),
        peers,
        started: Instant::now(),
        registered_at_ms: None,
        waiting: Waiting::default(),
        leaving: Leaving::default(),
        observers: BTreeMap::new(),
    };
    let controller_listener = Rc::new(controller_listener_runtime(&shard, &node.config)?);
    let accept_shard = shard.clone();
    glommio::spawn_local(accept_loop(accept_shard, listener, controller_listener, inbox)).detach();
    glommio::spawn_local(async move { node.run(inbound).await }).detach();
    watch_followers(&shard);
    Ok(())
}

/// Every shard's leaders watch for followers that fall behind.
fn watch_followers(shard: &Rc<Shard>) {
    let every = shard.clone();
    glommio::spawn_local(async move {
        every
            .on_every_shard(|shard| async move {
                glommio::spawn_local(replication::check_lagging_followers(shard)).detach();
            })
            .await;
    })
    .detach();
}

/// The controller listener as a Kafka listener, for the clients that use it.
fn controller_listener_runtime(shard: &Shard, config: &ClusterConfig) -> Result<ListenerRuntime, String> {
    let bind = config.controller_bind.ok_or("this node has no controller listener")?;
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
        inter_broker: Some(config.inter_broker_listener.clone()),
    }
}

struct Node {
    shard: Rc<Shard>,
    config: ClusterConfig,
    quorum: Quorum,
    log: QuorumLog,
    stored_hard_state: Option<Vec<u8>>,
    applier: Applier,
    liveness: Liveness,
    peers: HashMap<i32, Peer>,
    registration: MetadataRecord,
    started: Instant,
    /// When the registration was last proposed.
    registered_at_ms: Option<u64>,
    waiting: Waiting,
    leaving: Leaving,
    /// Observers (brokers that are not voters) that fetched from this
    /// node: the index each asked from, and when.
    observers: BTreeMap<i32, (u64, Instant)>,
}

impl Node {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Controlled shutdown, as a stopping node's loop goes on: true once
    /// its leaderships moved away, or after `CONTROLLED_SHUTDOWN_MS_MAX`
    /// (the broker then stops anyway, and is fenced when its session ends).
    fn leave(&mut self) -> bool {
        let me = self.shard.config.node_id;
        match self.leaving.step(&self.applier.state, me, incarnation(&self.registration)) {
            LeaveStep::Done => true,
            LeaveStep::Propose(record) => {
                let _ = self.quorum.propose(record.encode());
                false
            }
            LeaveStep::Wait => false,
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
                self.waiting.expire(self.quorum.leader());
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
                    let decisions =
                        self.liveness.decisions(&self.applier.state, now, self.config.broker_session_timeout_ms);
                    for record in decisions {
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
            Input::Fetch { from, index, reply } => return self.serve_fetch(from, index, reply),
            Input::Forward(bytes) => {
                // An observer's proposal: forwarded to the leader as this node's own would be.
                if let Err(e) = self.quorum.propose(bytes) {
                    tracing::debug!(error = %e, "an observer's proposal was not taken");
                }
                return;
            }
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
            Kind::Fetch | Kind::Records | Kind::Propose => {}
        }
    }

    /// An observer's fetch: the committed records from `index` on.
    fn serve_fetch(&mut self, from: i32, index: u64, reply: futures::channel::oneshot::Sender<Records>) {
        if self.observers.len() < CLUSTER_BROKERS_MAX || self.observers.contains_key(&from) {
            self.observers.insert(from, (index, Instant::now()));
        }
        let (records, next) = match self.quorum.committed_records(index, OBSERVER_FETCH_BYTES_MAX) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(observer = from, index, error = %e, "cannot read the quorum log for an observer");
                (Vec::new(), index)
            }
        };
        let _ = reply.send(Records {
            leader: self.quorum.leader(),
            term: self.quorum.term(),
            committed: self.quorum.committed_index(),
            next,
            records,
        });
    }

    fn propose(&mut self, proposal: Proposal) {
        let Proposal { bytes, done } = proposal;
        if self.waiting.full() {
            let _ = done.send(Err(ProposeError::TimedOut("too many metadata changes waiting".into())));
            return;
        }
        match self.quorum.propose(bytes.clone()) {
            Ok(()) => self.waiting.push(bytes, self.quorum.leader(), done),
            Err(e) => {
                let _ = done.send(Err(ProposeError::NotController(e.to_string())));
            }
        }
    }

    /// Tells the leader this incarnation is alive (itself, if it leads).
    fn heartbeat(&mut self, now: u64) {
        let me = self.shard.config.node_id;
        match self.quorum.leader() {
            Some(leader) if leader == me => {
                let incarnation = incarnation(&self.registration).to_string();
                self.liveness.heard(me, &incarnation, now);
            }
            Some(leader) => {
                if let Some(peer) = self.peers.get(&leader) {
                    peer.send(Kind::Heartbeat, incarnation(&self.registration).as_bytes());
                }
            }
            None => {}
        }
    }

    /// Proposes this start's registration until the log has it.
    fn register(&mut self, now: u64) {
        let me = self.shard.config.node_id;
        if self.applier.state.is_registered(me, incarnation(&self.registration)) || self.quorum.leader().is_none() {
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
            let facts = self.facts();
            let caught_up = self.quorum.leader().is_some();
            let applied = self.applier.apply(&out.committed, facts, caught_up).await?;
            self.waiting.applied(applied);
        }
        let facts = self.facts();
        self.applier.publish(facts).await;
        Ok(())
    }

    /// What this voter knows of the quorum; the leader knows every voter's
    /// progress and the observers that fetch from it.
    fn facts(&self) -> QuorumFacts {
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
        let recent = Duration::from_millis(self.config.broker_session_timeout_ms);
        let observers = if self.quorum.is_leader() {
            self.observers
                .iter()
                .filter(|(_, (_, at))| at.elapsed() < recent)
                .map(|(id, (index, _))| VoterView {
                    node: *id,
                    host: String::new(),
                    port: 0,
                    matched: Some(index.saturating_sub(1)),
                })
                .collect()
        } else {
            Vec::new()
        };
        QuorumFacts {
            leader: self.quorum.leader(),
            term: self.quorum.term(),
            committed: self.quorum.committed_index(),
            last_index: self.quorum.last_index(),
            voters,
            observers,
        }
    }
}

/// A registration's incarnation.
fn incarnation(registration: &MetadataRecord) -> &str {
    match registration {
        MetadataRecord::RegisterBroker { incarnation, .. } => incarnation,
        _ => "",
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
    if first == transport::REPLICA_MAGIC {
        drop(slot);
        let listener = runtime.config.clone();
        return replication::hand_over_replica_connection(&shard, stream, listener, peer).await;
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
    if from == shard.config.node_id || from < 0 || from as usize >= CLUSTER_BROKERS_MAX {
        tracing::warn!(%peer, node = from, "quorum connection from a node id that cannot be another's; closed");
        return;
    }
    if !voter {
        return serve_observer(shard, inbox, stream, from).await;
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

/// A broker that is not a voter, on its quorum connection: its fetches are
/// answered on the connection, its heartbeats and proposals go to the loop.
async fn serve_observer(shard: Rc<Shard>, inbox: Rc<LocalSender<Input>>, mut stream: TcpStream, from: i32) {
    use futures::io::AsyncWriteExt;
    let _ = stream.set_read_timeout(Some(Duration::from_millis(QUORUM_IDLE_MS)));
    loop {
        let (kind, payload) = match transport::read_frame(&mut stream).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(observer = from, error = %e, "observer connection closed");
                return;
            }
        };
        let input = match kind {
            Kind::Heartbeat => Input::Peer(Inbound { from, kind, payload }),
            Kind::Propose => Input::Forward(payload),
            Kind::Fetch => {
                let Ok(index) = <[u8; 8]>::try_from(payload.as_slice()).map(u64::from_be_bytes) else {
                    tracing::warn!(observer = from, "bad observer fetch; closed");
                    return;
                };
                let (reply, answer) = futures::channel::oneshot::channel();
                if inbox.send(Input::Fetch { from, index, reply }).await.is_err() {
                    return;
                }
                let Ok(records) = answer.await else { return };
                if stream.write_all(&transport::encode_frame(Kind::Records, &records.encode())).await.is_err() {
                    return;
                }
                continue;
            }
            Kind::Raft | Kind::Records => {
                tracing::warn!(observer = from, ?kind, "a broker that is not a voter sent a voter's frame; closed");
                return;
            }
        };
        if inbox.send(input).await.is_err() {
            return;
        }
        if shard.lifecycle.stopping() && left() {
            return;
        }
    }
}
