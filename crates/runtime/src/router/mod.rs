//! The cross-shard router: which shard owns what, and the bounded channel
//! mesh that carries work to the owner and answers back.
//!
//! Every shard holds the same partition→shard table (in its catalog
//! snapshot). A connection's shard splits a request per owning shard, sends
//! one job to each ([`crate::shard::Shard::invoke_on`]), awaits all answers
//! and merges them in request order. Work for the connection's own shard runs
//! locally, without the mesh.

use std::any::Any;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use glommio::channels::channel_mesh::{Receivers, Senders};

use crate::shard::Shard;
use sluice_protocol::batch::BatchSummary;
use sluice_storage::StorageError;

/// Errors of work routed to an owner shard.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RouteError {
    /// The shard does not own the partition (its catalog is newer or older): retriable.
    #[error("shard does not own this partition")]
    NotOwner,
    /// Another broker of the cluster coordinates this group or transactional id.
    #[error("another broker coordinates this key")]
    NotCoordinator,
    /// This broker coordinates the key and is loading its internal partition: retriable.
    #[error("the coordinator is loading this key's state")]
    CoordinatorLoading,
    /// This broker coordinates the key, but a write of its internal
    /// partition failed and it waits to be loaded again: retriable.
    #[error("the coordinator's state write failed; it is to be loaded again")]
    CoordinatorUnavailable,
    /// acks=all with fewer in-sync replicas than `min.insync.replicas`;
    /// `appended` when the records were written before the set shrank.
    #[error("{isr} in-sync replica(s), min.insync.replicas is {min}")]
    NotEnoughReplicas { isr: usize, min: i32, appended: bool },
    /// A replicated acks=all append that the in-sync replicas did not confirm in time.
    #[error("the in-sync replicas did not confirm the records in time")]
    TimedOut,
    /// The owner's channel is closed: the broker is stopping.
    #[error("shard {0} is unreachable")]
    Unreachable(usize),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// An idempotent producer's batch was refused (epoch or sequence).
    #[error(transparent)]
    Producer(#[from] sluice_storage::producer_state::ProducerError),
}

impl From<sluice_storage::log::AppendError> for RouteError {
    fn from(e: sluice_storage::log::AppendError) -> RouteError {
        match e {
            sluice_storage::log::AppendError::Storage(s) => RouteError::Storage(s),
            sluice_storage::log::AppendError::Producer(p) => RouteError::Producer(p),
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

/// A partition a long-poll Fetch waits on: wake once its high watermark passes `offset`.
#[derive(Debug, Clone)]
pub struct WatchPart {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
}

/// DeleteRecords for one partition: move its log start offset up to `offset`.
#[derive(Debug, Clone)]
pub struct DeletePart {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
}

/// A transaction marker for one partition.
#[derive(Debug, Clone)]
pub struct MarkerPart {
    pub topic: Arc<str>,
    pub partition: i32,
    pub marker: sluice_storage::log::TxnMarker,
}

/// The offsets of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub log_start_offset: i64,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
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

/// An answer on its way back to the shard that asked, as `Any`: the asker
/// knows its type (see [`crate::shard::Shard::invoke_on`]).
pub type Answer = Box<dyn Any + Send>;

/// Work for another shard: runs there, with that shard's context, on a task
/// of its own; the answer goes back over the mesh.
pub type Job = Box<dyn FnOnce(Rc<Shard>) -> LocalBoxFuture<'static, Answer> + Send>;

/// What travels on the mesh.
///
/// Wakers of glommio tasks must never be woken or dropped on another
/// executor's thread, so no channel crosses shards: an answer travels as a
/// [`ShardMessage::Reply`] and is handed to the waiting task by its own shard.
pub enum ShardMessage {
    /// Run `job` here and send its answer to shard `asker` under call `id`;
    /// `sent` when it was sent (the hop's latency is measured on arrival).
    Call { job: Job, asker: usize, id: u64, sent: std::time::Instant },
    /// The answer to call `id` this shard made, sent at `sent`.
    Reply { id: u64, answer: Answer, sent: std::time::Instant },
}

/// This shard's end of the mesh.
pub struct Router {
    pub shard_id: usize,
    pub shards: usize,
    senders: Senders<ShardMessage>,
}

impl Router {
    pub fn new(senders: Senders<ShardMessage>) -> Router {
        Router { shard_id: senders.peer_id(), shards: senders.nr_consumers(), senders }
    }

    /// Sends work to `shard` (which must not be this one).
    pub async fn send(&self, shard: usize, message: ShardMessage) -> Result<(), RouteError> {
        assert_ne!(shard, self.shard_id, "local work does not go through the mesh");
        self.senders.send_to(shard, message).await.map_err(|_| RouteError::Unreachable(shard))
    }

    /// Sends an answer back to the shard that asked.
    pub async fn reply(&self, shard: usize, id: u64, answer: Answer) {
        assert_ne!(shard, self.shard_id, "local answers do not go through the mesh");
        let message = ShardMessage::Reply { id, answer, sent: std::time::Instant::now() };
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
