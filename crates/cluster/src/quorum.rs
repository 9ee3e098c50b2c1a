//! The metadata quorum: raft-rs's `RawNode` with Sluice's node ids, driven
//! without I/O. The caller ticks it, hands it what peers sent, proposes
//! records and polls it; each [`Output`] says what to make durable and, only
//! after that, what to send and what was committed.
//!
//! Raft ids are Kafka node ids plus one (raft-rs reserves 0). The voters are
//! fixed by `controller.quorum.voters`. The log is kept whole in memory and
//! on disk (`sluice_storage::quorum_log`): on start every stored entry is
//! appended again in the order written, which rebuilds the same log (an
//! entry at an index already held replaces that suffix, as it did when it
//! was first written), and committed entries are applied again from the
//! start.

use protobuf::Message as _;
use raft::prelude::{ConfState, Entry, EntryType, HardState, Message};
use raft::storage::MemStorage;
use raft::{Config, RawNode, StateRole, Storage};

/// Why the quorum refused something.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error("corrupt quorum state: {0}")]
    Corrupt(String),
    #[error("no leader is known to take the proposal")]
    NoLeader,
}

/// The voters' timing, in ticks.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
}

/// What one poll produced, in the order it must be handled.
#[derive(Debug, Default)]
pub struct Output {
    /// Entries to append to the durable log (encoded), before anything is sent.
    pub entries: Vec<Vec<u8>>,
    /// The hard state to store (encoded), before anything is sent.
    pub hard_state: Option<Vec<u8>>,
    /// Messages for peers (node id, encoded message), once the above is durable.
    pub messages: Vec<(i32, Vec<u8>)>,
    /// Newly committed records: (log index, record bytes), in log order.
    pub committed: Vec<(u64, Vec<u8>)>,
}

impl Output {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.hard_state.is_none() && self.messages.is_empty() && self.committed.is_empty()
    }
}

/// A committed record and its log index.
pub type IndexedRecord = (u64, Vec<u8>);

/// A voter's replication progress as the leader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoterProgress {
    pub node: i32,
    /// The highest log index known to be on that voter.
    pub matched: u64,
}

pub struct Quorum {
    node: RawNode<MemStorage>,
    id: i32,
}

fn raft_id(node: i32) -> u64 {
    node as u64 + 1
}

fn node_id(raft: u64) -> i32 {
    raft as i32 - 1
}

impl Quorum {
    /// A voter `id` of `voters`, with the entries and hard state stored by
    /// an earlier run (none on the first start).
    pub fn open(
        id: i32,
        voters: &[i32],
        timing: Timing,
        stored_entries: &[Vec<u8>],
        stored_hard_state: Option<&[u8]>,
    ) -> Result<Quorum, QuorumError> {
        let conf = ConfState::from((voters.iter().map(|v| raft_id(*v)).collect::<Vec<_>>(), Vec::new()));
        let storage = MemStorage::new_with_conf_state(conf);
        {
            for bytes in stored_entries {
                let entry = Entry::parse_from_bytes(bytes).map_err(|e| QuorumError::Corrupt(e.to_string()))?;
                let last = storage.last_index()?;
                if entry.index == 0 || entry.index > last + 1 {
                    return Err(QuorumError::Corrupt(format!(
                        "entry {} after last index {last}: the stored log has a gap",
                        entry.index
                    )));
                }
                storage.wl().append(&[entry])?;
            }
            if let Some(bytes) = stored_hard_state {
                let mut hs = HardState::parse_from_bytes(bytes).map_err(|e| QuorumError::Corrupt(e.to_string()))?;
                // A commit index past the log (entries lost) would be a lie; keep what is held.
                hs.commit = hs.commit.min(storage.last_index()?);
                storage.wl().set_hardstate(hs);
            }
        }
        let config = Config {
            id: raft_id(id),
            election_tick: timing.election_ticks,
            heartbeat_tick: timing.heartbeat_ticks,
            // A voter that was cut off does not disturb the leader when it comes back.
            pre_vote: true,
            // A leader that cannot reach a majority steps down.
            check_quorum: true,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            ..Default::default()
        };
        config.validate()?;
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let mut node = RawNode::new(&config, storage, &logger)?;
        if voters.len() == 1 {
            // A quorum of one elects itself at once.
            node.campaign()?;
        }
        Ok(Quorum { node, id })
    }

    pub fn id(&self) -> i32 {
        self.id
    }

    /// One tick of the logical clock.
    pub fn tick(&mut self) {
        self.node.tick();
    }

    /// A message a peer sent.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<(), QuorumError> {
        let message = Message::parse_from_bytes(bytes).map_err(|e| QuorumError::Corrupt(e.to_string()))?;
        self.node.step(message)?;
        Ok(())
    }

    /// Proposes a record; a follower forwards it to the leader. Whether it
    /// is committed shows in a later [`Output::committed`].
    pub fn propose(&mut self, record: Vec<u8>) -> Result<(), QuorumError> {
        if self.leader().is_none() {
            return Err(QuorumError::NoLeader);
        }
        self.node.propose(Vec::new(), record)?;
        Ok(())
    }

    /// The leader's node id, if one is known.
    pub fn leader(&self) -> Option<i32> {
        let leader = self.node.raft.leader_id;
        (leader != raft::INVALID_ID).then(|| node_id(leader))
    }

    pub fn is_leader(&self) -> bool {
        self.node.raft.state == StateRole::Leader
    }

    /// The current term (Kafka's leader epoch of the metadata partition).
    pub fn term(&self) -> u64 {
        self.node.raft.term
    }

    /// The highest index known committed (the metadata high watermark).
    pub fn committed_index(&self) -> u64 {
        self.node.raft.raft_log.committed
    }

    /// The index of the last entry in this node's log.
    pub fn last_index(&self) -> u64 {
        self.node.raft.raft_log.last_index()
    }

    /// The committed records from log index `from` on, for a broker that
    /// follows the quorum without voting (an observer): at least one record
    /// when there is one, then as many as fit in `bytes_max`. Returns them
    /// with the index to ask from next. Committed entries never change, so
    /// any voter may serve them; one that is behind serves fewer.
    pub fn committed_records(&self, from: u64, bytes_max: usize) -> Result<(Vec<IndexedRecord>, u64), QuorumError> {
        let store = self.node.store();
        let from = from.max(store.first_index()?);
        let high = self.committed_index() + 1;
        if from >= high {
            return Ok((Vec::new(), from));
        }
        let context = raft::GetEntriesContext::empty(false);
        let entries = store.entries(from, high, Some(bytes_max as u64), context)?;
        let next = entries.last().map_or(from, |e| e.index + 1);
        let records = entries
            .into_iter()
            .filter(|e| e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty())
            .map(|e| (e.index, e.data.to_vec()))
            .collect();
        Ok((records, next))
    }

    /// Each voter's progress, as only the leader knows it.
    pub fn progress(&self) -> Option<Vec<VoterProgress>> {
        if !self.is_leader() {
            return None;
        }
        let mut all: Vec<VoterProgress> = self
            .node
            .raft
            .prs()
            .iter()
            .map(|(id, p)| VoterProgress { node: node_id(*id), matched: p.matched })
            .collect();
        all.sort_by_key(|p| p.node);
        Some(all)
    }

    /// Collects what the node has ready and moves it on.
    pub fn poll(&mut self) -> Result<Output, QuorumError> {
        let mut out = Output::default();
        if !self.node.has_ready() {
            return Ok(out);
        }
        let mut ready = self.node.ready();
        if !ready.snapshot().is_empty() {
            // Voters are fixed and the log is never compacted, so no snapshot is ever sent.
            return Err(QuorumError::Corrupt("a snapshot arrived; this quorum never makes one".into()));
        }
        self.take_messages(ready.take_messages(), &mut out);
        self.take_committed(ready.take_committed_entries(), &mut out);
        if !ready.entries().is_empty() {
            for entry in ready.entries() {
                out.entries.push(entry.write_to_bytes().map_err(|e| QuorumError::Corrupt(e.to_string()))?);
            }
            self.node.mut_store().wl().append(ready.entries())?;
        }
        if let Some(hs) = ready.hs() {
            self.node.mut_store().wl().set_hardstate(hs.clone());
        }
        self.take_messages(ready.take_persisted_messages(), &mut out);
        let mut light = self.node.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.node.mut_store().wl().mut_hard_state().set_commit(commit);
        }
        self.take_messages(light.take_messages(), &mut out);
        self.take_committed(light.take_committed_entries(), &mut out);
        self.node.advance_apply();
        let hs = self.node.store().initial_state()?.hard_state;
        out.hard_state = Some(hs.write_to_bytes().map_err(|e| QuorumError::Corrupt(e.to_string()))?);
        Ok(out)
    }

    fn take_messages(&self, messages: Vec<Message>, out: &mut Output) {
        for message in messages {
            if let Ok(bytes) = message.write_to_bytes() {
                out.messages.push((node_id(message.to), bytes));
            }
        }
    }

    fn take_committed(&self, entries: Vec<Entry>, out: &mut Output) {
        for entry in entries {
            // The empty entry a new leader appends, and conf changes (the voters are fixed), carry no record.
            if entry.get_entry_type() == EntryType::EntryNormal && !entry.data.is_empty() {
                out.committed.push((entry.index, entry.data.to_vec()));
            }
        }
    }
}
