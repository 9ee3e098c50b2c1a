//! The cross-shard router: which shard owns what, and the bounded channel
//! mesh that carries work to the owner and answers back.
//!
//! Every shard holds the same partition→shard table (in its catalog
//! snapshot). A connection's shard splits a request per owning shard, sends
//! one envelope to each, awaits all answers and merges them in request
//! order. Work for the connection's own shard runs locally, without the mesh.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use glommio::channels::channel_mesh::{Receivers, Senders};

use crate::metadata::controller::{ControllerReply, ControllerRequest};
use crate::metadata::Catalog;
use crate::protocol::batch::BatchSummary;
use crate::storage::{AckLevel, AppendOutcome, ReadOutcome, StorageError};

/// Errors of work routed to an owner shard.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The shard does not own the partition (its catalog is newer or older): retriable.
    #[error("shard does not own this partition")]
    NotOwner,
    /// The owner's channel is closed: the broker is stopping.
    #[error("shard {0} is unreachable")]
    Unreachable(usize),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// An idempotent producer's batch was refused (epoch or sequence).
    #[error(transparent)]
    Producer(#[from] crate::storage::producer_state::ProducerError),
}

impl From<crate::storage::log::AppendError> for RouteError {
    fn from(e: crate::storage::log::AppendError) -> RouteError {
        match e {
            crate::storage::log::AppendError::Storage(s) => RouteError::Storage(s),
            crate::storage::log::AppendError::Producer(p) => RouteError::Producer(p),
        }
    }
}

/// One partition's share of a produce request.
#[derive(Debug)]
pub struct ProducePart {
    pub topic: Arc<str>,
    pub partition: i32,
    pub records: Bytes,
    pub summaries: Vec<BatchSummary>,
}

/// One partition's share of a fetch.
#[derive(Debug, Clone)]
pub struct ReadPart {
    pub topic: Arc<str>,
    pub partition: i32,
    pub fetch_offset: i64,
    pub max_bytes: usize,
    /// read_committed: stop at the last stable offset.
    pub committed: bool,
}

/// A transaction marker for one partition.
#[derive(Debug, Clone)]
pub struct MarkerPart {
    pub topic: Arc<str>,
    pub partition: i32,
    pub producer_id: i64,
    pub epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// One producer's state in a partition (DescribeProducers): id, epoch, last
/// sequence, last timestamp, coordinator epoch, open transaction's first offset.
pub type ProducerInfo = (i64, i16, i32, i64, i32, i64);

/// The offsets of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub log_start_offset: i64,
    pub high_watermark: i64,
    pub log_end_offset: i64,
    pub size_bytes: u64,
}

/// `(timestamp, offset)` of a ListOffsets answer.
pub type TimestampOffset = (i64, i64);

/// A ListOffsets query: a timestamp or Kafka's special values -1, -2, -3.
#[derive(Debug, Clone)]
pub struct OffsetQuery {
    pub topic: Arc<str>,
    pub partition: i32,
    pub timestamp: i64,
    /// read_committed: the latest offset is the last stable offset.
    pub committed: bool,
}

/// Work for a shard, with the channel its answer goes back on.
#[derive(Debug)]
pub enum ShardRequest {
    Produce {
        parts: Vec<ProducePart>,
        acks: AckLevel,
        reply: ReplyTo<Vec<Result<AppendOutcome, RouteError>>>,
    },
    Read {
        parts: Vec<ReadPart>,
        reply: ReplyTo<Vec<Result<ReadOutcome, RouteError>>>,
    },
    /// Answer once any listed partition's high watermark passes its offset, or at `deadline`.
    Watch {
        parts: Vec<(Arc<str>, i32, i64)>,
        deadline: Instant,
        reply: ReplyTo<()>,
    },
    Offsets {
        parts: Vec<(Arc<str>, i32)>,
        reply: ReplyTo<Vec<Result<PartitionOffsets, RouteError>>>,
    },
    /// DeleteRecords: move each partition's log start offset; answers the new one.
    DeleteRecords {
        parts: Vec<(Arc<str>, i32, i64)>,
        reply: ReplyTo<Vec<Result<i64, RouteError>>>,
    },
    /// Timestamp lookups: (timestamp, offset), or None when no record is that new.
    ListOffsets {
        queries: Vec<OffsetQuery>,
        reply: ReplyTo<Vec<Result<Option<TimestampOffset>, RouteError>>>,
    },
    /// Transaction markers, written on the partitions' owner and synced.
    WriteMarkers {
        markers: Vec<MarkerPart>,
        reply: ReplyTo<Vec<Result<Option<i64>, RouteError>>>,
    },
    /// Producer states of partitions (DescribeProducers).
    DescribeProducers {
        parts: Vec<(Arc<str>, i32)>,
        reply: ReplyTo<Vec<Result<Vec<ProducerInfo>, RouteError>>>,
    },
    /// Transaction coordination, on the shard that owns the transactional id's partition.
    Txn {
        call: Box<crate::txn::TxnCall>,
        reply: ReplyTo<crate::txn::TxnReply>,
    },
    /// Catalog changes go to the controller (shard 0).
    Controller {
        request: ControllerRequest,
        reply: ReplyTo<ControllerReply>,
    },
    /// Group coordination, on the shard that owns the group's offsets partition.
    Group {
        call: Box<crate::group::GroupCall>,
        reply: ReplyTo<crate::group::GroupReply>,
    },
    /// An answer to a call this shard made to the sender (see [`ReplyTo`]).
    Reply {
        id: u64,
        reply: Box<ShardReply>,
    },
    /// A new catalog: adopt it, open newly owned partitions, close removed ones.
    ApplyCatalog {
        catalog: Arc<Catalog>,
        reply: ReplyTo<()>,
    },
}

/// Every answer a shard sends back over the reply mesh.
#[derive(Debug)]
pub enum ShardReply {
    Produce(Vec<Result<AppendOutcome, RouteError>>),
    Read(Vec<Result<ReadOutcome, RouteError>>),
    Offsets(Vec<Result<PartitionOffsets, RouteError>>),
    DeleteRecords(Vec<Result<i64, RouteError>>),
    ListOffsets(Vec<Result<Option<TimestampOffset>, RouteError>>),
    Controller(ControllerReply),
    Group(crate::group::GroupReply),
    Markers(Vec<Result<Option<i64>, RouteError>>),
    Producers(Vec<Result<Vec<ProducerInfo>, RouteError>>),
    Txn(crate::txn::TxnReply),
    Done,
}

/// A type that travels as a [`ShardReply`].
pub trait Answer: Sized + Send + 'static {
    fn into_reply(self) -> ShardReply;
    fn from_reply(reply: ShardReply) -> Option<Self>;
}

macro_rules! answer {
    ($t:ty, $variant:ident) => {
        impl Answer for $t {
            fn into_reply(self) -> ShardReply {
                ShardReply::$variant(self)
            }
            fn from_reply(reply: ShardReply) -> Option<Self> {
                match reply {
                    ShardReply::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}
answer!(Vec<Result<AppendOutcome, RouteError>>, Produce);
answer!(Vec<Result<ReadOutcome, RouteError>>, Read);
answer!(Vec<Result<PartitionOffsets, RouteError>>, Offsets);
answer!(Vec<Result<i64, RouteError>>, DeleteRecords);
answer!(Vec<Result<Option<TimestampOffset>, RouteError>>, ListOffsets);
answer!(ControllerReply, Controller);
answer!(crate::group::GroupReply, Group);
answer!(Vec<Result<Option<i64>, RouteError>>, Markers);
answer!(Vec<Result<Vec<ProducerInfo>, RouteError>>, Producers);
answer!(crate::txn::TxnReply, Txn);

impl Answer for () {
    fn into_reply(self) -> ShardReply {
        ShardReply::Done
    }
    fn from_reply(reply: ShardReply) -> Option<Self> {
        matches!(reply, ShardReply::Done).then_some(())
    }
}

/// Where an answer goes: to a task on the same shard, or back over the mesh
/// to the shard that asked.
///
/// Wakers of glommio tasks must never be woken or dropped on another
/// executor's thread, so an answer for another shard never goes through a
/// channel whose waker lives there: it travels as a [`ShardRequest::Reply`]
/// message and is handed to the waiting task by its own shard.
#[derive(Debug)]
pub enum ReplyTo<T> {
    Local(futures::channel::oneshot::Sender<T>),
    Remote { shard: usize, id: u64, _answer: std::marker::PhantomData<fn(T)> },
}

impl<T: Answer> ReplyTo<T> {
    /// Delivers the answer.
    pub async fn send(self, router: &Router, value: T) {
        match self {
            ReplyTo::Local(tx) => {
                let _ = tx.send(value);
            }
            ReplyTo::Remote { shard, id, .. } => router.reply(shard, id, value.into_reply()).await,
        }
    }

    /// Resolves when a local asker gave up waiting; never for a remote one.
    pub async fn abandoned(&mut self) {
        match self {
            ReplyTo::Local(tx) => tx.cancellation().await,
            ReplyTo::Remote { .. } => futures::future::pending().await,
        }
    }
}

/// This shard's end of the mesh.
pub struct Router {
    pub shard_id: usize,
    pub shards: usize,
    senders: Senders<ShardRequest>,
}

impl Router {
    pub fn new(senders: Senders<ShardRequest>) -> Router {
        Router { shard_id: senders.peer_id(), shards: senders.nr_consumers(), senders }
    }

    /// Sends work to `shard` (which must not be this one).
    pub async fn send(&self, shard: usize, request: ShardRequest) -> Result<(), RouteError> {
        assert_ne!(shard, self.shard_id, "local work does not go through the mesh");
        self.senders.send_to(shard, request).await.map_err(|_| RouteError::Unreachable(shard))
    }

    /// Sends an answer back to the shard that asked.
    pub async fn reply(&self, shard: usize, id: u64, reply: ShardReply) {
        assert_ne!(shard, self.shard_id, "local answers do not go through the mesh");
        let message = ShardRequest::Reply { id, reply: Box::new(reply) };
        if self.senders.send_to(shard, message).await.is_err() {
            tracing::debug!(shard, "mesh closed before an answer was sent");
        }
    }
}

/// Receives messages from every peer on a mesh and hands each to `handle`.
pub fn spawn_receivers<T, F>(mut receivers: Receivers<T>, handle: Rc<F>)
where
    T: Send + 'static,
    F: Fn(T) + 'static,
{
    for (peer, receiver) in receivers.streams() {
        let handle = handle.clone();
        glommio::spawn_local(async move {
            while let Some(message) = receiver.recv().await {
                handle(message);
            }
            tracing::debug!(peer, "mesh channel closed");
        })
        .detach();
    }
}
