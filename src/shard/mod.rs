//! The per-core context: this shard's catalog snapshot, the partitions it
//! owns, its end of the router, and the owner-side handling of routed work.
//!
//! Everything here is `Rc`/`RefCell`, touched only by this shard's executor;
//! no borrow is held across an `.await` (logs are cloned out first).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use futures::channel::oneshot;
use futures::future::{join_all, select, select_all};

use crate::config::BrokerConfig;
use crate::metadata::controller::Controller;
use crate::metadata::Catalog;
use crate::router::{
    Answer, OffsetQuery, PartitionOffsets, ProducePart, ReadPart, ReplyTo, RouteError, Router, ShardReply, ShardRequest,
};
use crate::storage::{AckLevel, AppendOutcome, Log, ReadOutcome};

type PartitionKey = (Arc<str>, i32);

/// One shard's state.
pub struct Shard {
    pub id: usize,
    pub config: Arc<BrokerConfig>,
    pub cluster_id: Arc<str>,
    pub router: Router,
    /// Set on shard 0 only.
    pub controller: Option<Controller>,
    /// Coordinator of the groups whose offsets partitions this shard owns.
    pub groups: crate::group::coordinator::GroupCoordinator,
    /// Coordinator of the transactional ids whose transaction partitions this shard owns.
    pub txns: crate::txn::coordinator::TxnCoordinator,
    /// Whether the previous run stopped cleanly (indexes can be trusted).
    pub clean_start: bool,
    /// Requests read from this shard's connections and not yet answered.
    pub inflight_requests: std::cell::Cell<usize>,
    /// Bytes of request frames this shard may hold; reading waits when spent.
    pub request_budget: Rc<glommio::sync::Semaphore>,
    catalog: RefCell<Arc<Catalog>>,
    logs: RefCell<HashMap<PartitionKey, Rc<Log>>>,
    /// Calls to other shards awaiting their answer, by call id.
    pending_calls: RefCell<HashMap<u64, PendingCall>>,
    next_call_id: std::cell::Cell<u64>,
    /// Catalogs applied so far; the listener waits for the first.
    catalogs_applied: std::cell::Cell<u64>,
}

/// Hands a remote answer to the local task waiting for it.
type PendingCall = Box<dyn FnOnce(ShardReply)>;

impl Shard {
    pub fn new(
        config: Arc<BrokerConfig>,
        cluster_id: Arc<str>,
        router: Router,
        controller: Option<Controller>,
        groups: crate::group::coordinator::GroupCoordinator,
        txns: crate::txn::coordinator::TxnCoordinator,
        clean_start: bool,
    ) -> Shard {
        Shard {
            id: router.shard_id,
            config,
            cluster_id,
            router,
            controller,
            groups,
            txns,
            clean_start,
            inflight_requests: std::cell::Cell::new(0),
            request_budget: Rc::new(glommio::sync::Semaphore::new(
                crate::constants::REQUEST_BYTES_PER_SHARD_MAX as u64,
            )),
            catalog: RefCell::new(Arc::new(Catalog::default())),
            logs: RefCell::new(HashMap::new()),
            pending_calls: RefCell::new(HashMap::new()),
            next_call_id: std::cell::Cell::new(0),
            catalogs_applied: std::cell::Cell::new(0),
        }
    }

    /// The current catalog snapshot (cheap to clone; never changes under you).
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    fn log(&self, topic: &Arc<str>, partition: i32) -> Result<Rc<Log>, RouteError> {
        self.logs.borrow().get(&(topic.clone(), partition)).cloned().ok_or(RouteError::NotOwner)
    }

    /// Sends a request to `shard` and awaits the answer; local work is served
    /// directly. `make` wraps the reply channel into the request.
    pub async fn call<R: Answer>(
        self: &Rc<Self>,
        shard: usize,
        make: impl FnOnce(ReplyTo<R>) -> ShardRequest,
    ) -> Result<R, RouteError> {
        let (tx, rx) = oneshot::channel();
        if shard == self.id {
            self.serve(make(ReplyTo::Local(tx)));
        } else {
            let id = self.next_call_id.get();
            self.next_call_id.set(id + 1);
            let deliver: PendingCall = Box::new(move |reply| {
                if let Some(value) = R::from_reply(reply) {
                    let _ = tx.send(value);
                }
            });
            self.pending_calls.borrow_mut().insert(id, deliver);
            let request = make(ReplyTo::Remote { shard: self.id, id, _answer: std::marker::PhantomData });
            if let Err(e) = self.router.send(shard, request).await {
                self.pending_calls.borrow_mut().remove(&id);
                return Err(e);
            }
        }
        rx.await.map_err(|_| RouteError::Unreachable(shard))
    }

    /// An answer from another shard arrived on the reply mesh.
    pub fn deliver_reply(&self, id: u64, reply: ShardReply) {
        let pending = self.pending_calls.borrow_mut().remove(&id);
        match pending {
            Some(deliver) => deliver(reply),
            None => tracing::debug!(id, "answer for a call nobody waits for"),
        }
    }

    /// Handles work routed to this shard, on a task of its own; answers to
    /// this shard's own calls are handed over at once.
    pub fn serve(self: &Rc<Self>, request: ShardRequest) {
        if let ShardRequest::Reply { id, reply } = request {
            self.deliver_reply(id, *reply);
            return;
        }
        let shard = self.clone();
        glommio::spawn_local(async move { shard.serve_now(request).await }).detach();
    }

    async fn serve_now(self: Rc<Self>, request: ShardRequest) {
        match request {
            ShardRequest::Produce { parts, acks, reply } => {
                let answer = self.produce(parts, acks).await;
                reply.send(&self.router, answer).await;
            }
            ShardRequest::Read { parts, reply } => {
                let answer = self.read(parts).await;
                reply.send(&self.router, answer).await;
            }
            ShardRequest::Watch { parts, deadline, mut reply } => {
                let waits = self.watch(&parts);
                let timeout = glommio::timer::sleep(deadline.saturating_duration_since(Instant::now()));
                {
                    let abandoned = reply.abandoned();
                    futures::pin_mut!(timeout, abandoned);
                    if !waits.is_empty() {
                        let _ = select(select_all(waits), select(timeout, abandoned)).await;
                    } else {
                        let _ = select(timeout, abandoned).await;
                    }
                }
                reply.send(&self.router, ()).await;
            }
            ShardRequest::Offsets { parts, reply } => {
                let answers: Vec<_> = parts.iter().map(|(t, p)| self.offsets(t, *p)).collect();
                reply.send(&self.router, answers).await;
            }
            ShardRequest::DeleteRecords { parts, reply } => {
                let deletes = parts.into_iter().map(|(topic, partition, offset)| {
                    let shard = self.clone();
                    async move {
                        if !shard.owns(&topic, partition) {
                            return Err(RouteError::NotOwner);
                        }
                        let log = shard.log(&topic, partition)?;
                        Ok(log.delete_records(offset).await?)
                    }
                });
                let answer = join_all(deletes).await;
                reply.send(&self.router, answer).await;
            }
            ShardRequest::ListOffsets { queries, reply } => {
                let answer = self.list_offsets(queries).await;
                reply.send(&self.router, answer).await;
            }
            ShardRequest::Controller { request, reply } => {
                let controller = self.controller.as_ref().expect("controller requests go to shard 0");
                let answer = controller.handle(&self, request).await;
                reply.send(&self.router, answer).await;
            }
            ShardRequest::Group { call, reply } => {
                let answer = self.groups.serve(*call).await;
                reply.send(&self.router, answer).await;
            }
            ShardRequest::Txn { call, reply } => {
                let answer = self.txns.serve(&self, *call).await;
                reply.send(&self.router, answer).await;
            }
            ShardRequest::WriteMarkers { markers, reply } => {
                let writes = markers.into_iter().map(|m| {
                    let shard = self.clone();
                    async move {
                        if !shard.owns(&m.topic, m.partition) {
                            return Err(RouteError::NotOwner);
                        }
                        let log = shard.log(&m.topic, m.partition)?;
                        Ok(log.append_marker(m.producer_id, m.epoch, m.commit, m.coordinator_epoch).await?)
                    }
                });
                let answer = join_all(writes).await;
                reply.send(&self.router, answer).await;
            }
            ShardRequest::DescribeProducers { parts, reply } => {
                let answer = parts
                    .iter()
                    .map(|(topic, partition)| {
                        if !self.owns(topic, *partition) {
                            return Err(RouteError::NotOwner);
                        }
                        Ok(self.log(topic, *partition)?.producer_states())
                    })
                    .collect();
                reply.send(&self.router, answer).await;
            }
            ShardRequest::ApplyCatalog { catalog, reply } => {
                self.apply_catalog(catalog).await;
                reply.send(&self.router, ()).await;
            }
            ShardRequest::Reply { id, reply } => self.deliver_reply(id, *reply),
        }
    }

    /// Asserts ownership against this shard's catalog: the router and the
    /// owner must agree, or the work is refused as NOT_LEADER_OR_FOLLOWER.
    fn owns(&self, topic: &str, partition: i32) -> bool {
        self.catalog().topic(topic).and_then(|t| t.owner(partition)) == Some(self.id)
    }

    async fn produce(&self, parts: Vec<ProducePart>, acks: AckLevel) -> Vec<Result<AppendOutcome, RouteError>> {
        let appends = parts.into_iter().map(|part| async move {
            if !self.owns(&part.topic, part.partition) {
                return Err(RouteError::NotOwner);
            }
            let log = self.log(&part.topic, part.partition)?;
            Ok(log.append(&part.records, &part.summaries, acks).await?)
        });
        join_all(appends).await
    }

    async fn read(&self, parts: Vec<ReadPart>) -> Vec<Result<ReadOutcome, RouteError>> {
        let reads = parts.into_iter().map(|part| async move {
            if !self.owns(&part.topic, part.partition) {
                return Err(RouteError::NotOwner);
            }
            let log = self.log(&part.topic, part.partition)?;
            Ok(log.read(part.fetch_offset, part.max_bytes, part.committed).await?)
        });
        join_all(reads).await
    }

    fn watch(&self, parts: &[(Arc<str>, i32, i64)]) -> Vec<oneshot::Receiver<()>> {
        parts
            .iter()
            .filter_map(|(topic, partition, offset)| self.log(topic, *partition).ok().map(|log| log.watch(*offset)))
            .collect()
    }

    fn offsets(&self, topic: &Arc<str>, partition: i32) -> Result<PartitionOffsets, RouteError> {
        if !self.owns(topic, partition) {
            return Err(RouteError::NotOwner);
        }
        let log = self.log(topic, partition)?;
        Ok(PartitionOffsets {
            log_start_offset: log.log_start_offset(),
            high_watermark: log.high_watermark(),
            log_end_offset: log.log_end_offset(),
            size_bytes: log.size_bytes(),
        })
    }

    async fn list_offsets(&self, queries: Vec<OffsetQuery>) -> Vec<Result<Option<(i64, i64)>, RouteError>> {
        let mut answers = Vec::with_capacity(queries.len());
        for q in queries {
            let answer = async {
                if !self.owns(&q.topic, q.partition) {
                    return Err(RouteError::NotOwner);
                }
                let log = self.log(&q.topic, q.partition)?;
                Ok(match q.timestamp {
                    crate::protocol::offset_spec::LATEST if q.committed => Some((-1, log.last_stable_offset())),
                    crate::protocol::offset_spec::LATEST => Some((-1, log.high_watermark())),
                    crate::protocol::offset_spec::EARLIEST | crate::protocol::offset_spec::EARLIEST_LOCAL => {
                        Some((-1, log.log_start_offset()))
                    }
                    crate::protocol::offset_spec::MAX_TIMESTAMP => log.max_timestamp(),
                    target => log.offset_for_timestamp(target).await?,
                })
            };
            let answer = answer.await;
            if let Err(e) = &answer {
                tracing::warn!(topic = %q.topic, partition = q.partition, timestamp = q.timestamp, error = %e, "offset lookup failed");
            }
            answers.push(answer);
        }
        answers
    }

    /// Adopts a new catalog: opens partitions newly assigned here, closes and
    /// deletes the data of partitions whose topic is gone.
    pub async fn apply_catalog(&self, catalog: Arc<Catalog>) {
        *self.catalog.borrow_mut() = catalog.clone();
        let wanted: Vec<(PartitionKey, crate::config::TopicConfig)> = catalog
            .topics
            .values()
            .flat_map(|t| {
                (0..t.partitions())
                    .filter(|p| t.owner(*p) == Some(self.id))
                    .map(|p| ((t.name.clone(), p), t.config.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let gone: Vec<PartitionKey> = self
            .logs
            .borrow()
            .keys()
            .filter(|(topic, partition)| catalog.topic(topic).and_then(|t| t.owner(*partition)) != Some(self.id))
            .cloned()
            .collect();
        for key in gone {
            let log = self.logs.borrow_mut().remove(&key);
            if let Some(log) = log {
                if let Err(e) = log.close().await {
                    tracing::warn!(topic = %key.0, partition = key.1, error = %e, "closing removed partition");
                }
                if catalog.topic(&key.0).is_none() {
                    if let Err(e) = crate::storage::file::remove_dir_all(&log.dir).await {
                        tracing::error!(dir = %log.dir.display(), error = %e, "deleting partition data");
                    }
                }
            }
        }
        for (key, config) in wanted {
            let existing = self.logs.borrow().get(&key).cloned();
            if let Some(log) = existing {
                log.set_config(config);
                continue;
            }
            let dir = self.config.data_dir.join(format!("{}-{}", key.0, key.1));
            match Log::open(dir, config, self.clean_start).await {
                Ok(log) => {
                    self.logs.borrow_mut().insert(key, log);
                }
                Err(e) => tracing::error!(topic = %key.0, partition = key.1, error = %e, "cannot open partition"),
            }
        }
        self.catalogs_applied.set(self.catalogs_applied.get() + 1);
    }

    /// Waits until this shard has applied the controller's first catalog (its
    /// partitions are open), so that no request finds them missing.
    pub async fn wait_for_catalog(&self) {
        while self.catalogs_applied.get() == 0 {
            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Applies retention to every partition of this shard.
    pub fn enforce_retention(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let logs: Vec<Rc<Log>> = self.logs.borrow().values().cloned().collect();
        for log in logs {
            log.enforce_retention(now);
        }
    }

    /// Writes recovery points for partitions that synced enough since their last one.
    pub async fn checkpoint_recovery_points(&self) {
        let logs: Vec<Rc<Log>> = self.logs.borrow().values().cloned().collect();
        for log in logs {
            if let Err(e) = log.maybe_checkpoint(crate::constants::RECOVERY_CHECKPOINT_BYTES).await {
                tracing::warn!(dir = %log.dir.display(), error = %e, "cannot write recovery point");
            }
        }
    }

    /// Closes every partition of this shard: pending writes synced, indexes written.
    pub async fn close_all(&self) -> bool {
        let logs: Vec<(PartitionKey, Rc<Log>)> = self.logs.borrow_mut().drain().collect();
        let mut clean = true;
        for ((topic, partition), log) in logs {
            if let Err(e) = log.close().await {
                tracing::error!(%topic, partition, error = %e, "partition did not close cleanly");
                clean = false;
            }
        }
        clean
    }
}
