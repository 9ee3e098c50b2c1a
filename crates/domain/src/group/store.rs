//! Durable state of one internal partition, as a checkpoint file plus a journal
//! of changes: an offsets partition (`__consumer_offsets-<n>`) holds
//! committed offsets, transactional offsets not yet decided, classic group
//! metadata, and consumer (KIP-848) groups as one record per group plus one
//! per member, so that a change of one member rewrites only its record; a transaction state partition (`__transaction_state-<n>`) holds
//! the transactional ids it coordinates. Entries are written as a journal
//! of changes since it. Every change is appended to the journal and
//! fdatasync'd before it is acknowledged; when the journal grows past
//! `OFFSETS_JOURNAL_BYTES_MAX` the whole state is written as a new checkpoint
//! and a fresh journal started, so only the latest offset per
//! group/topic/partition survives.
//!
//! Layout in `<data-dir>/__consumer_offsets-<n>/`:
//! - `checkpoint`: the state and the generation of the journal that follows it;
//! - `journal-<generation>`: entries `[u32 length][u32 crc32c][payload]`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use glommio::io::{BufferedFile, OpenOptions};
use uuid::Uuid;

use sluice_core::constants::{OFFSETS_JOURNAL_BYTES_MAX, OFFSETS_RECORD_BYTES_MAX};
use sluice_protocol::TopicPartition;
use sluice_storage::fifo_lock::FifoLock;
use sluice_storage::file::{read_bounded, remove_if_exists, sync_dir, write_atomically};
use sluice_storage::StorageError;

/// A committed offset, returned exactly as committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_timestamp_ms: i64,
}

/// A member as persisted with its group's generation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub subscription: Vec<u8>,
    pub assignment: Vec<u8>,
}

/// A group's metadata as of its last completed rebalance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredGroup {
    pub generation: i32,
    pub protocol_type: String,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub members: Vec<StoredMember>,
    /// When the group last became empty (for offset expiry), 0 if it has members.
    pub empty_since_ms: i64,
}

/// A consumer (KIP-848) group's own record: its epochs, the assignor its
/// target was computed with, and the subscribed topics' metadata that target
/// was computed from (Kafka's ConsumerGroupMetadata, TargetAssignmentMetadata
/// and PartitionMetadata records).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredConsumerGroup {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    /// (name, id, partition count) of every subscribed topic.
    pub subscribed: Vec<(String, Uuid, i32)>,
}

/// Partitions by topic id, as stored.
pub type StoredAssignment = Vec<(Uuid, Vec<i32>)>;

/// One member of a consumer group, with its target assignment (Kafka's
/// ConsumerGroupMemberMetadata, CurrentMemberAssignment and
/// TargetAssignmentMember records). Its session is not stored: it restarts
/// when the group is loaded, as Kafka's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub epoch: i32,
    pub previous_epoch: i32,
    /// The reconciliation state, at most [`CONSUMER_MEMBER_STATE_MAX`].
    pub state: u8,
    pub rebalance_timeout_ms: i32,
    pub topic_names: Vec<String>,
    pub topic_regex: Option<String>,
    pub assignor: Option<String>,
    pub assigned: StoredAssignment,
    pub revoking: StoredAssignment,
    pub target: StoredAssignment,
    /// Set for a member that speaks the classic protocol (JoinGroup/SyncGroup).
    pub classic: Option<StoredClassicMembership>,
}

/// What a consumer group keeps of a member that joined with the classic
/// protocol (Kafka's ClassicMemberMetadata).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredClassicMembership {
    pub session_timeout_ms: i32,
    /// (name, metadata) of the protocols its last JoinGroup listed, in its order.
    pub protocols: Vec<(String, Vec<u8>)>,
}

/// The highest member reconciliation state number
/// ([`crate::group::consumer::MemberState`]).
pub const CONSUMER_MEMBER_STATE_MAX: u8 = 2;

/// A consumer group as stored: its record and its members by id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredConsumer {
    pub group: StoredConsumerGroup,
    pub members: BTreeMap<String, StoredConsumerMember>,
}

/// A transactional id's state as the transaction coordinator persists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTxn {
    pub producer_id: i64,
    pub epoch: i16,
    pub timeout_ms: i32,
    /// [`crate::txn::coordinator::TxnState`] as its number, at most [`TXN_STATE_MAX`].
    pub state: u8,
    pub partitions: Vec<TopicPartition>,
    /// Groups whose offsets are committed in the transaction.
    pub groups: Vec<String>,
    pub start_ms: i64,
    pub update_ms: i64,
    /// The producer id before the last rotation (transaction version 2 ran
    /// out of epochs), so that a retried EndTxn is recognised; -1 if none.
    pub prev_producer_id: i64,
    /// The producer id the transaction being decided hands over to when it
    /// completes (its epochs are used up); -1 if none.
    pub next_producer_id: i64,
}

impl Default for StoredTxn {
    fn default() -> StoredTxn {
        StoredTxn {
            producer_id: 0,
            epoch: 0,
            timeout_ms: 0,
            state: 0,
            partitions: Vec::new(),
            groups: Vec::new(),
            start_ms: 0,
            update_ms: 0,
            prev_producer_id: -1,
            next_producer_id: -1,
        }
    }
}

impl StoredTxn {
    /// Whether the fields of transaction version 2 hold anything, which
    /// only the longer entry ([`TAG_TXN_ROTATION`]) can store.
    fn has_rotation(&self) -> bool {
        self.prev_producer_id != -1 || self.next_producer_id != -1
    }
}

/// The highest transaction state number (CompleteAbort, as Kafka numbers them);
/// an entry holding a higher one is refused, never read as another state.
pub const TXN_STATE_MAX: u8 = 5;

/// One change to the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Commit {
        group: String,
        topic: String,
        partition: i32,
        offset: CommittedOffset,
    },
    DeleteOffset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
        state: StoredGroup,
    },
    DeleteGroup {
        group: String,
    },
    /// A consumer group's own record; a classic group of that id is gone.
    ConsumerGroup {
        group: String,
        state: StoredConsumerGroup,
    },
    /// A consumer group's member joined or changed.
    ConsumerMember {
        group: String,
        member: StoredConsumerMember,
    },
    /// A consumer group's member left.
    DeleteConsumerMember {
        group: String,
        member_id: String,
    },
    /// An offset committed inside a producer's transaction (TxnOffsetCommit).
    TxnOffset {
        group: String,
        producer_id: i64,
        topic: String,
        partition: i32,
        offset: CommittedOffset,
    },
    /// The transaction marker for a group: its pending offsets become committed or are dropped.
    TxnOffsetEnd {
        group: String,
        producer_id: i64,
        commit: bool,
    },
    /// A transactional id's new state.
    Txn {
        id: String,
        state: StoredTxn,
    },
    /// A transactional id forgotten (`transactional.id.expiration.ms`).
    DeleteTxn {
        id: String,
    },
}

/// Offsets keyed by (topic, partition).
pub type GroupOffsets = BTreeMap<(String, i32), CommittedOffset>;

/// The whole state of one offsets partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreState {
    pub offsets: BTreeMap<String, GroupOffsets>,
    pub groups: BTreeMap<String, StoredGroup>,
    /// Consumer (KIP-848) groups; a group id is in at most one of `groups` and this.
    pub consumer_groups: BTreeMap<String, StoredConsumer>,
    /// Offsets committed in open transactions, by (group, producer id).
    pub pending_txn_offsets: BTreeMap<(String, i64), GroupOffsets>,
    pub txns: BTreeMap<String, StoredTxn>,
}

impl StoreState {
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Commit { group, topic, partition, offset } => {
                self.offsets.entry(group.clone()).or_default().insert((topic.clone(), *partition), offset.clone());
            }
            Change::DeleteOffset { group, topic, partition } => {
                if let Some(offsets) = self.offsets.get_mut(group) {
                    offsets.remove(&(topic.clone(), *partition));
                    if offsets.is_empty() {
                        self.offsets.remove(group);
                    }
                }
            }
            Change::Group { group, state } => {
                self.consumer_groups.remove(group);
                self.groups.insert(group.clone(), state.clone());
            }
            Change::DeleteGroup { group } => {
                self.groups.remove(group);
                self.consumer_groups.remove(group);
                self.offsets.remove(group);
            }
            Change::ConsumerGroup { group, state } => {
                self.groups.remove(group);
                self.consumer_groups.entry(group.clone()).or_default().group = state.clone();
            }
            Change::ConsumerMember { group, member } => {
                // A member's record comes after its group's, in the same append.
                if let Some(stored) = self.consumer_groups.get_mut(group) {
                    stored.members.insert(member.member_id.clone(), member.clone());
                }
            }
            Change::DeleteConsumerMember { group, member_id } => {
                if let Some(stored) = self.consumer_groups.get_mut(group) {
                    stored.members.remove(member_id);
                }
            }
            Change::TxnOffset { group, producer_id, topic, partition, offset } => {
                self.pending_txn_offsets
                    .entry((group.clone(), *producer_id))
                    .or_default()
                    .insert((topic.clone(), *partition), offset.clone());
            }
            Change::TxnOffsetEnd { group, producer_id, commit } => {
                if let Some(pending) = self.pending_txn_offsets.remove(&(group.clone(), *producer_id)) {
                    if *commit {
                        self.offsets.entry(group.clone()).or_default().extend(pending);
                    }
                }
            }
            Change::Txn { id, state } => {
                self.txns.insert(id.clone(), state.clone());
            }
            Change::DeleteTxn { id } => {
                self.txns.remove(id);
            }
        }
    }

    /// Every change needed to rebuild this state from nothing.
    pub fn changes(&self) -> Vec<Change> {
        let mut changes = Vec::new();
        for (group, state) in &self.groups {
            changes.push(Change::Group { group: group.clone(), state: state.clone() });
        }
        for (group, stored) in &self.consumer_groups {
            changes.push(Change::ConsumerGroup { group: group.clone(), state: stored.group.clone() });
            for member in stored.members.values() {
                changes.push(Change::ConsumerMember { group: group.clone(), member: member.clone() });
            }
        }
        for (group, offsets) in &self.offsets {
            for ((topic, partition), offset) in offsets {
                changes.push(Change::Commit {
                    group: group.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    offset: offset.clone(),
                });
            }
        }
        for ((group, producer_id), offsets) in &self.pending_txn_offsets {
            for ((topic, partition), offset) in offsets {
                changes.push(Change::TxnOffset {
                    group: group.clone(),
                    producer_id: *producer_id,
                    topic: topic.clone(),
                    partition: *partition,
                    offset: offset.clone(),
                });
            }
        }
        for (id, state) in &self.txns {
            changes.push(Change::Txn { id: id.clone(), state: state.clone() });
        }
        changes
    }
}

// ---- encoding -------------------------------------------------------------

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn i16(&mut self, v: i16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.i32(v.len() as i32);
        self.0.extend_from_slice(v);
    }
    fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
    fn opt_str(&mut self, v: &Option<String>) {
        match v {
            None => self.i32(-1),
            Some(s) => self.str(s),
        }
    }
    fn uuid(&mut self, v: &Uuid) {
        self.0.extend_from_slice(v.as_bytes());
    }
    fn assignment(&mut self, v: &StoredAssignment) {
        self.i32(v.len() as i32);
        for (topic, partitions) in v {
            self.uuid(topic);
            self.i32(partitions.len() as i32);
            partitions.iter().for_each(|p| self.i32(*p));
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4).map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")))
    }
    fn i64(&mut self) -> Option<i64> {
        self.take(8).map(|b| i64::from_be_bytes(b.try_into().expect("8 bytes")))
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = usize::try_from(self.i32()?).ok()?;
        self.take(n).map(<[u8]>::to_vec)
    }
    fn str(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?).ok()
    }
    fn opt_str(&mut self) -> Option<Option<String>> {
        let n = self.i32()?;
        if n == -1 {
            return Some(None);
        }
        let n = usize::try_from(n).ok()?;
        String::from_utf8(self.take(n)?.to_vec()).ok().map(Some)
    }
    fn uuid(&mut self) -> Option<Uuid> {
        self.take(16).map(|b| Uuid::from_bytes(b.try_into().expect("16 bytes")))
    }
    /// A count of items each at least `item_bytes` long: one the payload cannot hold is corrupt.
    fn count(&mut self, item_bytes: usize) -> Option<usize> {
        let count = usize::try_from(self.i32()?).ok()?;
        (count <= self.0.len() / item_bytes).then_some(count)
    }
    fn assignment(&mut self) -> Option<StoredAssignment> {
        let topics = self.count(20)?;
        let mut out = Vec::with_capacity(topics);
        for _ in 0..topics {
            let topic = self.uuid()?;
            let n = self.count(4)?;
            let partitions = (0..n).map(|_| self.i32()).collect::<Option<Vec<i32>>>()?;
            out.push((topic, partitions));
        }
        Some(out)
    }
}

const TAG_COMMIT: u8 = 1;
const TAG_DELETE_OFFSET: u8 = 2;
const TAG_GROUP: u8 = 3;
const TAG_DELETE_GROUP: u8 = 4;
const TAG_TXN_OFFSET: u8 = 5;
const TAG_TXN_OFFSET_END: u8 = 6;
const TAG_TXN: u8 = 7;
const TAG_DELETE_TXN: u8 = 8;
const TAG_CONSUMER_GROUP: u8 = 9;
const TAG_CONSUMER_MEMBER: u8 = 10;
const TAG_DELETE_CONSUMER_MEMBER: u8 = 11;
/// A [`TAG_TXN`] entry followed by the previous and next producer ids. Only
/// a transactional id whose producer id rotated is written so, which keeps
/// every other entry readable by builds that predate it.
const TAG_TXN_ROTATION: u8 = 12;
/// A [`TAG_CONSUMER_MEMBER`] entry followed by the member's classic protocol
/// session timeout and protocols; only classic members are written so.
const TAG_CONSUMER_CLASSIC_MEMBER: u8 = 13;

fn write_offset(w: &mut Writer, offset: &CommittedOffset) {
    w.i64(offset.offset);
    w.i32(offset.leader_epoch);
    w.opt_str(&offset.metadata);
    w.i64(offset.commit_timestamp_ms);
}

fn read_offset(r: &mut Reader) -> Option<CommittedOffset> {
    Some(CommittedOffset {
        offset: r.i64()?,
        leader_epoch: r.i32()?,
        metadata: r.opt_str()?,
        commit_timestamp_ms: r.i64()?,
    })
}

pub fn encode_change(change: &Change) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(64));
    match change {
        Change::Commit { group, topic, partition, offset } => {
            w.u8(TAG_COMMIT);
            w.str(group);
            w.str(topic);
            w.i32(*partition);
            w.i64(offset.offset);
            w.i32(offset.leader_epoch);
            w.opt_str(&offset.metadata);
            w.i64(offset.commit_timestamp_ms);
        }
        Change::DeleteOffset { group, topic, partition } => {
            w.u8(TAG_DELETE_OFFSET);
            w.str(group);
            w.str(topic);
            w.i32(*partition);
        }
        Change::Group { group, state } => {
            w.u8(TAG_GROUP);
            w.str(group);
            w.i32(state.generation);
            w.str(&state.protocol_type);
            w.opt_str(&state.protocol_name);
            w.opt_str(&state.leader);
            w.i64(state.empty_since_ms);
            w.i32(state.members.len() as i32);
            for m in &state.members {
                w.str(&m.member_id);
                w.opt_str(&m.group_instance_id);
                w.str(&m.client_id);
                w.str(&m.client_host);
                w.i32(m.session_timeout_ms);
                w.i32(m.rebalance_timeout_ms);
                w.bytes(&m.subscription);
                w.bytes(&m.assignment);
            }
        }
        Change::DeleteGroup { group } => {
            w.u8(TAG_DELETE_GROUP);
            w.str(group);
        }
        Change::ConsumerGroup { group, state } => {
            w.u8(TAG_CONSUMER_GROUP);
            w.str(group);
            w.i32(state.group_epoch);
            w.i32(state.assignment_epoch);
            w.str(&state.assignor);
            w.i32(state.subscribed.len() as i32);
            for (name, id, partitions) in &state.subscribed {
                w.str(name);
                w.uuid(id);
                w.i32(*partitions);
            }
        }
        Change::ConsumerMember { group, member: m } => {
            w.u8(if m.classic.is_some() { TAG_CONSUMER_CLASSIC_MEMBER } else { TAG_CONSUMER_MEMBER });
            w.str(group);
            w.str(&m.member_id);
            w.opt_str(&m.instance_id);
            w.opt_str(&m.rack_id);
            w.str(&m.client_id);
            w.str(&m.client_host);
            w.i32(m.epoch);
            w.i32(m.previous_epoch);
            w.u8(m.state);
            w.i32(m.rebalance_timeout_ms);
            w.i32(m.topic_names.len() as i32);
            m.topic_names.iter().for_each(|t| w.str(t));
            w.opt_str(&m.topic_regex);
            w.opt_str(&m.assignor);
            w.assignment(&m.assigned);
            w.assignment(&m.revoking);
            w.assignment(&m.target);
            if let Some(classic) = &m.classic {
                w.i32(classic.session_timeout_ms);
                w.i32(classic.protocols.len() as i32);
                for (name, metadata) in &classic.protocols {
                    w.str(name);
                    w.bytes(metadata);
                }
            }
        }
        Change::DeleteConsumerMember { group, member_id } => {
            w.u8(TAG_DELETE_CONSUMER_MEMBER);
            w.str(group);
            w.str(member_id);
        }
        Change::TxnOffset { group, producer_id, topic, partition, offset } => {
            w.u8(TAG_TXN_OFFSET);
            w.str(group);
            w.i64(*producer_id);
            w.str(topic);
            w.i32(*partition);
            write_offset(&mut w, offset);
        }
        Change::TxnOffsetEnd { group, producer_id, commit } => {
            w.u8(TAG_TXN_OFFSET_END);
            w.str(group);
            w.i64(*producer_id);
            w.u8(*commit as u8);
        }
        Change::Txn { id, state } => {
            w.u8(if state.has_rotation() { TAG_TXN_ROTATION } else { TAG_TXN });
            w.str(id);
            w.i64(state.producer_id);
            w.i16(state.epoch);
            w.i32(state.timeout_ms);
            w.u8(state.state);
            w.i64(state.start_ms);
            w.i64(state.update_ms);
            w.i32(state.partitions.len() as i32);
            for TopicPartition { topic, partition } in &state.partitions {
                w.str(topic);
                w.i32(*partition);
            }
            w.i32(state.groups.len() as i32);
            for group in &state.groups {
                w.str(group);
            }
            if state.has_rotation() {
                w.i64(state.prev_producer_id);
                w.i64(state.next_producer_id);
            }
        }
        Change::DeleteTxn { id } => {
            w.u8(TAG_DELETE_TXN);
            w.str(id);
        }
    }
    w.0
}

/// Why an entry that passes its checksum cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// Cut short, too long, or no change this version writes.
    Malformed,
    /// A transaction state number above [`TXN_STATE_MAX`]: never read as another state.
    UnknownTxnState(u8),
}

pub fn decode_change(payload: &[u8]) -> Result<Change, Unreadable> {
    let change = decode_fields(payload).ok_or(Unreadable::Malformed)?;
    match &change {
        Change::Txn { state, .. } if state.state > TXN_STATE_MAX => Err(Unreadable::UnknownTxnState(state.state)),
        _ => Ok(change),
    }
}

fn decode_fields(payload: &[u8]) -> Option<Change> {
    let mut r = Reader(payload);
    let tag = r.u8()?;
    let change = match tag {
        TAG_COMMIT => Change::Commit {
            group: r.str()?,
            topic: r.str()?,
            partition: r.i32()?,
            offset: CommittedOffset {
                offset: r.i64()?,
                leader_epoch: r.i32()?,
                metadata: r.opt_str()?,
                commit_timestamp_ms: r.i64()?,
            },
        },
        TAG_DELETE_OFFSET => Change::DeleteOffset { group: r.str()?, topic: r.str()?, partition: r.i32()? },
        TAG_GROUP => {
            let group = r.str()?;
            let mut state = StoredGroup {
                generation: r.i32()?,
                protocol_type: r.str()?,
                protocol_name: r.opt_str()?,
                leader: r.opt_str()?,
                empty_since_ms: r.i64()?,
                members: Vec::new(),
            };
            let count = usize::try_from(r.i32()?).ok()?;
            // Each member takes at least 36 bytes: a count the payload cannot hold is corrupt.
            if count > r.0.len() / 36 + 1 {
                return None;
            }
            for _ in 0..count {
                state.members.push(StoredMember {
                    member_id: r.str()?,
                    group_instance_id: r.opt_str()?,
                    client_id: r.str()?,
                    client_host: r.str()?,
                    session_timeout_ms: r.i32()?,
                    rebalance_timeout_ms: r.i32()?,
                    subscription: r.bytes()?,
                    assignment: r.bytes()?,
                });
            }
            Change::Group { group, state }
        }
        TAG_DELETE_GROUP => Change::DeleteGroup { group: r.str()? },
        TAG_CONSUMER_GROUP => {
            let group = r.str()?;
            let mut state = StoredConsumerGroup {
                group_epoch: r.i32()?,
                assignment_epoch: r.i32()?,
                assignor: r.str()?,
                subscribed: Vec::new(),
            };
            let count = r.count(24)?;
            for _ in 0..count {
                state.subscribed.push((r.str()?, r.uuid()?, r.i32()?));
            }
            Change::ConsumerGroup { group, state }
        }
        TAG_CONSUMER_MEMBER | TAG_CONSUMER_CLASSIC_MEMBER => {
            let group = r.str()?;
            let mut m = StoredConsumerMember {
                member_id: r.str()?,
                instance_id: r.opt_str()?,
                rack_id: r.opt_str()?,
                client_id: r.str()?,
                client_host: r.str()?,
                epoch: r.i32()?,
                previous_epoch: r.i32()?,
                state: r.u8()?,
                rebalance_timeout_ms: r.i32()?,
                ..Default::default()
            };
            if m.state > CONSUMER_MEMBER_STATE_MAX {
                return None;
            }
            let count = r.count(4)?;
            for _ in 0..count {
                m.topic_names.push(r.str()?);
            }
            m.topic_regex = r.opt_str()?;
            m.assignor = r.opt_str()?;
            m.assigned = r.assignment()?;
            m.revoking = r.assignment()?;
            m.target = r.assignment()?;
            if tag == TAG_CONSUMER_CLASSIC_MEMBER {
                let session_timeout_ms = r.i32()?;
                let count = r.count(8)?;
                let mut protocols = Vec::with_capacity(count);
                for _ in 0..count {
                    protocols.push((r.str()?, r.bytes()?));
                }
                m.classic = Some(StoredClassicMembership { session_timeout_ms, protocols });
            }
            Change::ConsumerMember { group, member: m }
        }
        TAG_DELETE_CONSUMER_MEMBER => Change::DeleteConsumerMember { group: r.str()?, member_id: r.str()? },
        TAG_TXN_OFFSET => Change::TxnOffset {
            group: r.str()?,
            producer_id: r.i64()?,
            topic: r.str()?,
            partition: r.i32()?,
            offset: read_offset(&mut r)?,
        },
        TAG_TXN_OFFSET_END => Change::TxnOffsetEnd { group: r.str()?, producer_id: r.i64()?, commit: r.u8()? != 0 },
        tag @ (TAG_TXN | TAG_TXN_ROTATION) => {
            let id = r.str()?;
            let mut state = StoredTxn {
                producer_id: r.i64()?,
                epoch: r.i16()?,
                timeout_ms: r.i32()?,
                state: r.u8()?,
                start_ms: r.i64()?,
                update_ms: r.i64()?,
                ..Default::default()
            };
            let count = usize::try_from(r.i32()?).ok()?;
            // Each partition takes at least 8 bytes: a count the payload cannot hold is corrupt.
            if count > r.0.len() / 8 {
                return None;
            }
            for _ in 0..count {
                state.partitions.push(TopicPartition { topic: r.str()?, partition: r.i32()? });
            }
            let count = usize::try_from(r.i32()?).ok()?;
            if count > r.0.len() / 4 {
                return None;
            }
            for _ in 0..count {
                state.groups.push(r.str()?);
            }
            if tag == TAG_TXN_ROTATION {
                state.prev_producer_id = r.i64()?;
                state.next_producer_id = r.i64()?;
            }
            Change::Txn { id, state }
        }
        TAG_DELETE_TXN => Change::DeleteTxn { id: r.str()? },
        _ => return None,
    };
    r.0.is_empty().then_some(change)
}

fn frame(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    out.extend_from_slice(payload);
}

/// An entry whose checksum holds but whose contents cannot be read: not a
/// torn write but damage or a format this version does not know.
#[derive(Debug, PartialEq, Eq)]
struct UnreadableEntry {
    at_byte: usize,
    why: Unreadable,
}

/// Reads framed entries until the end or the first torn one (short, or
/// failing its checksum); returns the changes and the length of the valid
/// prefix. An entry that passes its checksum but does not decode is an
/// error: cutting the log there would silently drop it and all after it.
fn read_entries(bytes: &[u8]) -> Result<(Vec<Change>, usize), UnreadableEntry> {
    let mut changes = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= 8 {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        if len > OFFSETS_RECORD_BYTES_MAX || bytes.len() - at - 8 < len {
            break;
        }
        let payload = &bytes[at + 8..at + 8 + len];
        if crc32c::crc32c(payload) != crc {
            break;
        }
        changes.push(decode_change(payload).map_err(|why| UnreadableEntry { at_byte: at, why })?);
        at += 8 + len;
    }
    Ok((changes, at))
}

// ---- the store --------------------------------------------------------------

/// The journal being appended to.
struct Journal {
    file: BufferedFile,
    generation: u64,
    length_bytes: u64,
}

/// One offsets partition's durable state, owned by one shard.
pub struct GroupStore {
    dir: PathBuf,
    journal: std::cell::RefCell<Option<Journal>>,
    /// One journal append (or checkpoint) at a time, so positions never
    /// overlap, in the order the changes were made (`FifoLock`).
    lock: FifoLock,
    failed: std::cell::Cell<bool>,
}

fn unreadable(path: &Path, entry: UnreadableEntry) -> StorageError {
    let what = match entry.why {
        Unreadable::Malformed => "cannot be read".to_string(),
        Unreadable::UnknownTxnState(n) => format!("holds transaction state {n}, which this version does not know"),
    };
    StorageError::Corrupt(format!(
        "{}: the entry at byte {} passes its checksum but {what} (damaged, or written by a newer version)",
        path.display(),
        entry.at_byte
    ))
}

fn journal_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("journal-{generation}"))
}

impl GroupStore {
    /// Whether a write or fsync failed: the in-memory state may then hold a
    /// change the disk does not, and nothing more is written.
    pub fn failed(&self) -> bool {
        self.failed.get()
    }

    /// Opens the store in `dir`, returning it with the state it holds.
    pub async fn open(dir: PathBuf) -> Result<(GroupStore, StoreState), StorageError> {
        std::fs::create_dir_all(&dir).map_err(|e| StorageError::io(&format!("create {}", dir.display()), e))?;
        let mut state = StoreState::default();
        let mut generation = 0u64;
        let checkpoint = dir.join("checkpoint");
        let read = |path: &Path| {
            read_bounded(path, OFFSETS_RECORD_BYTES_MAX as u64 * 4)
                .map_err(|e| StorageError::io(&format!("read {}", path.display()), e))
        };
        if let Some(bytes) = read(&checkpoint)? {
            // The checkpoint is written atomically: it is whole or it is the older one.
            if bytes.len() < 8 {
                return Err(StorageError::Corrupt(checkpoint.display().to_string()));
            }
            generation = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
            let (changes, valid) = read_entries(&bytes[8..]).map_err(|e| unreadable(&checkpoint, e))?;
            if valid != bytes.len() - 8 {
                return Err(StorageError::Corrupt(checkpoint.display().to_string()));
            }
            changes.iter().for_each(|c| state.apply(c));
        }
        let path = journal_path(&dir, generation);
        let bytes = read(&path)?.unwrap_or_default();
        let (changes, valid) = read_entries(&bytes).map_err(|e| unreadable(&path, e))?;
        if valid != bytes.len() {
            tracing::warn!(path = %path.display(), valid, len = bytes.len(), "offsets journal has a torn tail; cutting it");
        }
        changes.iter().for_each(|c| state.apply(c));
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .buffered_open(&path)
            .await
            .map_err(|e| StorageError::io(&format!("open {}", path.display()), e))?;
        file.truncate(valid as u64).await.map_err(|e| StorageError::io("truncate journal", e))?;
        sync_dir(&dir).await?;
        // Journals of older generations are leftovers of an interrupted checkpoint.
        for entry in std::fs::read_dir(&dir).map_err(|e| StorageError::io("list offsets dir", e))?.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(g) = name.strip_prefix("journal-").and_then(|g| g.parse::<u64>().ok()) {
                if g != generation {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        let store = GroupStore {
            dir,
            journal: std::cell::RefCell::new(Some(Journal { file, generation, length_bytes: valid as u64 })),
            lock: FifoLock::new(),
            failed: std::cell::Cell::new(false),
        };
        Ok((store, state))
    }

    /// Appends changes and fdatasyncs them. When the journal is long, the whole
    /// state after the changes (`state` is asked for it only then) is written
    /// as a checkpoint instead.
    pub async fn append(&self, changes: &[Change], state: impl FnOnce() -> StoreState) -> Result<(), StorageError> {
        if self.failed.get() {
            return Err(StorageError::Failed("offsets journal failed earlier".into()));
        }
        let _permit = self.lock.lock().await;
        let mut bytes = Vec::new();
        for change in changes {
            let payload = encode_change(change);
            assert!(payload.len() <= OFFSETS_RECORD_BYTES_MAX, "offsets record exceeds its bound");
            frame(&payload, &mut bytes);
        }
        let result = self.append_locked(bytes, state).await;
        if result.is_err() {
            // A failed write or fsync is never retried: the data may be gone.
            self.failed.set(true);
        }
        result
    }

    async fn append_locked(&self, bytes: Vec<u8>, state: impl FnOnce() -> StoreState) -> Result<(), StorageError> {
        let journal = self.journal.borrow_mut().take().ok_or(StorageError::Closing)?;
        if journal.length_bytes + bytes.len() as u64 > OFFSETS_JOURNAL_BYTES_MAX as u64 {
            let next = self.checkpoint(journal, &state()).await?;
            *self.journal.borrow_mut() = Some(next);
            return Ok(());
        }
        let written = journal.file.write_at(bytes.clone(), journal.length_bytes).await;
        let synced = match written {
            Ok(n) if n == bytes.len() => {
                journal.file.fdatasync().await.map_err(|e| StorageError::io("fdatasync journal", e))
            }
            Ok(n) => Err(StorageError::Failed(format!("short journal write: {n} of {}", bytes.len()))),
            Err(e) => Err(StorageError::io("write journal", e)),
        };
        let length_bytes = journal.length_bytes + bytes.len() as u64;
        *self.journal.borrow_mut() = Some(Journal { length_bytes, ..journal });
        synced
    }

    /// Writes the whole state as the new checkpoint and starts an empty journal.
    async fn checkpoint(&self, old: Journal, state: &StoreState) -> Result<Journal, StorageError> {
        let generation = old.generation + 1;
        let path = journal_path(&self.dir, generation);
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(true)
            .buffered_open(&path)
            .await
            .map_err(|e| StorageError::io(&format!("create {}", path.display()), e))?;
        sync_dir(&self.dir).await?;
        let mut bytes = generation.to_be_bytes().to_vec();
        for change in state.changes() {
            frame(&encode_change(&change), &mut bytes);
        }
        write_atomically(&self.dir.join("checkpoint"), &bytes).await?;
        let _ = old.file.close().await;
        // Off the shard's thread: this runs inside a commit. A journal left
        // behind is removed at the next open (it is of another generation).
        let _ = remove_if_exists(&journal_path(&self.dir, old.generation)).await;
        Ok(Journal { file, generation, length_bytes: 0 })
    }

    /// Waits for every write begun before it; an error if one failed (or
    /// had failed): then memory may hold what the disk does not.
    pub async fn settle(&self) -> Result<(), StorageError> {
        let _permit = self.lock.lock().await;
        if self.failed.get() {
            return Err(StorageError::Failed("offsets journal failed earlier".into()));
        }
        Ok(())
    }

    pub async fn close(&self) {
        let _permit = self.lock.lock().await;
        let journal = self.journal.borrow_mut().take();
        if let Some(journal) = journal {
            let _ = journal.file.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(group: &str, partition: i32, offset: i64) -> Change {
        Change::Commit {
            group: group.into(),
            topic: "t".into(),
            partition,
            offset: CommittedOffset { offset, leader_epoch: 3, metadata: Some("meta".into()), commit_timestamp_ms: 9 },
        }
    }

    #[test]
    fn changes_round_trip() {
        let group = Change::Group {
            group: "g".into(),
            state: StoredGroup {
                generation: 4,
                protocol_type: "consumer".into(),
                protocol_name: Some("range".into()),
                leader: Some("m1".into()),
                members: vec![StoredMember { member_id: "m1".into(), subscription: vec![1, 2], ..Default::default() }],
                empty_since_ms: 0,
            },
        };
        let txn = Change::Txn {
            id: "tx".into(),
            state: StoredTxn {
                producer_id: 7,
                epoch: 2,
                timeout_ms: 60_000,
                state: 1,
                partitions: vec![TopicPartition::new("t", 3)],
                groups: vec!["g".into()],
                start_ms: 5,
                update_ms: 6,
                ..Default::default()
            },
        };
        let rotated = match &txn {
            Change::Txn { id, state } => Change::Txn {
                id: id.clone(),
                state: StoredTxn { prev_producer_id: 7, next_producer_id: 8, ..state.clone() },
            },
            _ => unreachable!(),
        };
        // Without a rotation the entry is written as before transaction version 2.
        assert_eq!(encode_change(&txn)[0], TAG_TXN);
        assert_eq!(encode_change(&rotated)[0], TAG_TXN_ROTATION);
        assert_eq!(decode_change(&encode_change(&rotated)), Ok(rotated));
        let pending = Change::TxnOffset {
            group: "g".into(),
            producer_id: 7,
            topic: "t".into(),
            partition: 1,
            offset: CommittedOffset { offset: 9, leader_epoch: -1, metadata: None, commit_timestamp_ms: 1 },
        };
        let end = Change::TxnOffsetEnd { group: "g".into(), producer_id: 7, commit: true };
        let forgotten = Change::DeleteTxn { id: "tx".into() };
        for c in [commit("g", 1, 42), group, Change::DeleteGroup { group: "g".into() }, txn, pending, end, forgotten] {
            assert_eq!(decode_change(&encode_change(&c)), Ok(c));
        }
        assert_eq!(decode_change(&[TAG_COMMIT, 0, 0]), Err(Unreadable::Malformed));
    }

    fn consumer_member(id: &str) -> StoredConsumerMember {
        let t = Uuid::from_bytes([7; 16]);
        StoredConsumerMember {
            member_id: id.into(),
            instance_id: Some("i".into()),
            rack_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            epoch: 3,
            previous_epoch: 2,
            state: 1,
            rebalance_timeout_ms: 30_000,
            topic_names: vec!["t".into()],
            topic_regex: Some("t.*".into()),
            assignor: Some("uniform".into()),
            assigned: vec![(t, vec![0, 1])],
            revoking: vec![(t, vec![2])],
            target: vec![(t, vec![0, 1, 3])],
            classic: None,
        }
    }

    #[test]
    fn consumer_group_changes_round_trip_and_replace_a_classic_group() {
        let meta = StoredConsumerGroup {
            group_epoch: 4,
            assignment_epoch: 4,
            assignor: "range".into(),
            subscribed: vec![("t".into(), Uuid::from_bytes([7; 16]), 4)],
        };
        let changes = [
            Change::ConsumerGroup { group: "g".into(), state: meta.clone() },
            Change::ConsumerMember { group: "g".into(), member: consumer_member("m1") },
            Change::ConsumerMember { group: "g".into(), member: consumer_member("m2") },
            Change::ConsumerMember {
                group: "g".into(),
                member: StoredConsumerMember {
                    classic: Some(StoredClassicMembership {
                        session_timeout_ms: 45_000,
                        protocols: vec![("range".into(), vec![0, 3, 1]), ("cooperative-sticky".into(), vec![])],
                    }),
                    ..consumer_member("m3")
                },
            },
            Change::DeleteConsumerMember { group: "g".into(), member_id: "m1".into() },
        ];
        for c in &changes {
            assert_eq!(decode_change(&encode_change(c)).as_ref(), Ok(c));
        }
        let bad_state = Change::ConsumerMember {
            group: "g".into(),
            member: StoredConsumerMember { state: CONSUMER_MEMBER_STATE_MAX + 1, ..consumer_member("m") },
        };
        assert_eq!(decode_change(&encode_change(&bad_state)), Err(Unreadable::Malformed));
        let mut state = StoreState::default();
        state.apply(&Change::Group { group: "g".into(), state: StoredGroup::default() });
        changes.iter().for_each(|c| state.apply(c));
        assert!(state.groups.is_empty(), "the consumer group replaced the classic one");
        assert_eq!(state.consumer_groups["g"].group, meta);
        assert_eq!(state.consumer_groups["g"].members.keys().collect::<Vec<_>>(), ["m2", "m3"]);
        assert!(state.consumer_groups["g"].members["m3"].classic.is_some());
        // A member without classic metadata keeps the entry older builds read.
        assert_eq!(encode_change(&changes[1])[0], TAG_CONSUMER_MEMBER);
        assert_eq!(encode_change(&changes[3])[0], TAG_CONSUMER_CLASSIC_MEMBER);
        // The checkpoint's changes rebuild it.
        let mut rebuilt = StoreState::default();
        state.changes().iter().for_each(|c| rebuilt.apply(c));
        assert_eq!(rebuilt, state);
        state.apply(&Change::Group { group: "g".into(), state: StoredGroup::default() });
        assert!(state.consumer_groups.is_empty(), "and a classic group replaces a consumer group");
    }

    #[test]
    fn transactional_offsets_apply_only_when_committed() {
        let mut state = StoreState::default();
        let pending = |producer_id, offset| Change::TxnOffset {
            group: "g".into(),
            producer_id,
            topic: "t".into(),
            partition: 0,
            offset: CommittedOffset { offset, leader_epoch: -1, metadata: None, commit_timestamp_ms: 1 },
        };
        state.apply(&pending(1, 10));
        state.apply(&pending(2, 20));
        assert!(state.offsets.is_empty());
        state.apply(&Change::TxnOffsetEnd { group: "g".into(), producer_id: 2, commit: false });
        assert!(state.offsets.is_empty());
        state.apply(&Change::TxnOffsetEnd { group: "g".into(), producer_id: 1, commit: true });
        assert_eq!(state.offsets["g"][&("t".to_string(), 0)].offset, 10);
        assert!(state.pending_txn_offsets.is_empty());
    }

    #[test]
    fn torn_entries_are_cut() {
        let mut bytes = Vec::new();
        frame(&encode_change(&commit("g", 0, 1)), &mut bytes);
        let whole = bytes.len();
        frame(&encode_change(&commit("g", 0, 2)), &mut bytes);
        bytes.truncate(bytes.len() - 3);
        let (changes, valid) = read_entries(&bytes).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(valid, whole);
    }

    #[test]
    fn a_checksummed_entry_that_does_not_decode_is_refused_not_cut() {
        let txn =
            |state| Change::Txn { id: "t".into(), state: StoredTxn { producer_id: 1, state, ..Default::default() } };
        let mut bytes = Vec::new();
        frame(&encode_change(&commit("g", 0, 1)), &mut bytes);
        let second = bytes.len();
        frame(&encode_change(&txn(TXN_STATE_MAX)), &mut bytes);
        assert_eq!(read_entries(&bytes).unwrap().0.len(), 2);
        // A state number this version does not know, with a valid checksum.
        let mut bytes = bytes[..second].to_vec();
        frame(&encode_change(&txn(TXN_STATE_MAX + 1)), &mut bytes);
        frame(&encode_change(&commit("g", 0, 2)), &mut bytes);
        let unknown = Unreadable::UnknownTxnState(TXN_STATE_MAX + 1);
        assert_eq!(read_entries(&bytes), Err(UnreadableEntry { at_byte: second, why: unknown }));
    }

    #[test]
    fn a_journal_holding_an_unknown_transaction_state_does_not_open() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let dir = std::env::temp_dir().join(format!("sluice-unknown-txn-state-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).unwrap();
                let unknown = StoredTxn { producer_id: 1, state: TXN_STATE_MAX + 1, ..Default::default() };
                let mut bytes = Vec::new();
                frame(&encode_change(&commit("g", 0, 1)), &mut bytes);
                frame(&encode_change(&Change::Txn { id: "t".into(), state: unknown }), &mut bytes);
                std::fs::write(journal_path(&dir, 0), &bytes).unwrap();

                let error = GroupStore::open(dir.clone()).await.err().expect("the store refuses to open");
                let StorageError::Corrupt(message) = error else { panic!("not a corruption error: {error:?}") };
                assert!(message.contains("journal-0"), "{message}");
                assert!(message.contains(&format!("transaction state {}", TXN_STATE_MAX + 1)), "{message}");
                // Nothing was cut: the entry is still there for a version that knows it.
                assert_eq!(std::fs::read(journal_path(&dir, 0)).unwrap(), bytes);
                std::fs::remove_dir_all(&dir).unwrap();
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn journal_survives_reopen_and_checkpoints() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let dir = std::env::temp_dir().join(format!("sluice-offsets-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                let (store, mut state) = GroupStore::open(dir.clone()).await.unwrap();
                for i in 0..20_000 {
                    let change = commit("g", i % 7, i as i64);
                    state.apply(&change);
                    store.append(&[change], || state.clone()).await.unwrap();
                }
                store.close().await;
                let (_, reopened) = GroupStore::open(dir.clone()).await.unwrap();
                assert_eq!(reopened, state);
                assert_eq!(reopened.offsets["g"].len(), 7);
                let total: u64 = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
                assert!(total < 2 * OFFSETS_JOURNAL_BYTES_MAX as u64, "kept compact: {total} bytes");
                std::fs::remove_dir_all(&dir).unwrap();
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
