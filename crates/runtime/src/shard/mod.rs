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

use std::collections::BTreeMap;
use std::future::Future;

use futures::channel::oneshot;
use futures::future::{join_all, select, select_all};

use gather::HandedCall;
pub use gather::HandedOut;

use crate::metrics::{GroupOffsetSnapshot, PartitionSnapshot, ShardMetrics, ShardSnapshot};
use crate::router::{
    Answer, DeletePart, Job, MarkerPart, OffsetQuery, PartitionOffsets, ProducePart, ReadPart, RouteError, Router,
    ShardMessage, WatchPart,
};
use sluice_core::config::{BrokerConfig, CleanerConfig};
use sluice_domain::metadata::controller::Controller;
use sluice_domain::metadata::Catalog;
use sluice_protocol::{batch, offset_spec};
use sluice_security::acl::Authorizer;
use sluice_security::store::SecurityState;
use sluice_storage::producer_state::ProducerInfo;
use sluice_storage::{AckLevel, AppendOutcome, Log, ReadOutcome};

pub mod client;
pub mod gather;
pub mod lifecycle;
pub mod replication;

pub type PartitionKey = (Arc<str>, i32);

/// One shard's state.
pub struct Shard {
    pub id: usize,
    pub config: Arc<BrokerConfig>,
    pub cluster_id: Arc<str>,
    pub router: Router,
    /// Set on shard 0 only.
    pub controller: Option<Controller>,
    /// Coordinator of the groups whose offsets partitions this shard owns.
    pub groups: sluice_domain::group::coordinator::GroupCoordinator,
    /// Coordinator of the transactional ids whose transaction partitions this shard owns.
    pub txns: sluice_domain::txn::coordinator::TxnCoordinator,
    /// Whether the previous run stopped cleanly (indexes can be trusted).
    pub clean_start: bool,
    /// Shared with the broker's other shards: stop, connections, drain.
    pub lifecycle: Arc<lifecycle::Lifecycle>,
    /// Requests read from this shard's connections and not yet answered.
    pub inflight_requests: std::cell::Cell<usize>,
    /// Bytes of request frames this shard may hold; reading waits when spent.
    pub request_budget: Rc<glommio::sync::Semaphore>,
    /// What this shard counts; see [`crate::metrics`].
    pub metrics: ShardMetrics,
    /// What this shard's clients have used against their quotas.
    pub quota_usage: RefCell<crate::quota::QuotaUsage>,
    /// Client telemetry (KIP-714): used on the controller's shard only, where
    /// GetTelemetrySubscriptions and PushTelemetry are sent.
    pub telemetry: RefCell<sluice_domain::telemetry::ClientMetricsManager>,
    catalog: RefCell<Arc<Catalog>>,
    /// The cluster as the controller loop last published it; `None` on a single node.
    cluster: RefCell<Option<Arc<sluice_cluster::ClusterView>>>,
    security: RefCell<Rc<ShardSecurity>>,
    logs: RefCell<HashMap<PartitionKey, Rc<Log>>>,
    /// On a cluster: the role of each replica this shard holds (`replication.rs`).
    replicas: RefCell<HashMap<PartitionKey, replication::ReplicaRole>>,
    /// Replicas whose log is closed to be cut (`cut_replica`): a catalog
    /// applied meanwhile does not open them again, as a second `Log` on
    /// the same files would race the cut.
    cutting: RefCell<std::collections::HashSet<PartitionKey>>,
    /// Batches this shard's partitions read from disk, under one memory budget.
    pub batch_cache: Rc<sluice_storage::batch_cache::BatchCache>,
    /// Calls to other shards awaiting their answer, by call id.
    pending_calls: RefCell<HashMap<u64, PendingCall>>,
    next_call_id: std::cell::Cell<u64>,
    /// Catalogs applied so far; the listener waits for the first.
    catalogs_applied: std::cell::Cell<u64>,
}

/// A shard's view of the security state: what the controller stored, and the
/// authorizer built from it once per change, so that a check is one lookup
/// with no lock and no hop to another shard.
pub struct ShardSecurity {
    pub state: Arc<SecurityState>,
    pub authorizer: Authorizer,
}

impl ShardSecurity {
    pub fn new(state: Arc<SecurityState>, config: &BrokerConfig) -> ShardSecurity {
        let settings = &config.security.authorizer;
        let authorizer = if settings.enabled {
            Authorizer::new(&state.acls, settings.super_users.clone(), settings.allow_everyone_if_no_acl_found)
        } else {
            Authorizer::allow_all()
        };
        ShardSecurity { state, authorizer }
    }
}

/// A shard's cleaner settings: the broker's `log.cleaner.*` shared equally by the shards.
fn cleaner_settings(config: &CleanerConfig, shards: usize) -> sluice_storage::cleaner::CleanerSettings {
    sluice_storage::cleaner::CleanerSettings {
        key_map_bytes: config.dedupe_buffer_bytes_per_shard(shards) as usize,
        load_factor: config.io_buffer_load_factor,
        io_bytes_per_second_max: config.io_max_bytes_per_second / shards as f64,
        // Kafka splits its I/O buffer between reading and writing.
        io_bytes: config.io_buffer_size / shards / 2,
    }
}

impl Shard {
    /// The cluster as this shard last heard of it; `None` on a single node.
    pub fn cluster(&self) -> Option<Arc<sluice_cluster::ClusterView>> {
        self.cluster.borrow().clone()
    }

    /// Adopts the controller loop's newest view of the cluster.
    pub fn apply_cluster(&self, view: Arc<sluice_cluster::ClusterView>) {
        *self.cluster.borrow_mut() = Some(view);
    }
}

/// Hands a remote answer to the local task waiting for it.
type PendingCall = Box<dyn FnOnce(Answer)>;

/// The coordinators a shard runs, opened before it starts.
pub struct Coordinators {
    /// Shard 0 only.
    pub controller: Option<Controller>,
    pub groups: sluice_domain::group::coordinator::GroupCoordinator,
    pub txns: sluice_domain::txn::coordinator::TxnCoordinator,
}

impl Shard {
    pub fn new(
        config: Arc<BrokerConfig>,
        cluster_id: Arc<str>,
        router: Router,
        coordinators: Coordinators,
        clean_start: bool,
        lifecycle: Arc<lifecycle::Lifecycle>,
    ) -> Shard {
        let Coordinators { controller, groups, txns } = coordinators;
        let security = RefCell::new(Rc::new(ShardSecurity::new(Arc::default(), &config)));
        Shard {
            security,
            cluster: RefCell::new(None),
            id: router.shard_id,
            config,
            cluster_id,
            router,
            controller,
            groups,
            txns,
            clean_start,
            lifecycle,
            inflight_requests: std::cell::Cell::new(0),
            request_budget: Rc::new(glommio::sync::Semaphore::new(
                sluice_core::constants::REQUEST_BYTES_PER_SHARD_MAX as u64,
            )),
            metrics: ShardMetrics::default(),
            quota_usage: RefCell::default(),
            telemetry: RefCell::new(sluice_domain::telemetry::ClientMetricsManager::new(
                sluice_core::constants::TELEMETRY_MAX_BYTES_DEFAULT,
            )),
            catalog: RefCell::new(Arc::new(Catalog::default())),
            logs: RefCell::new(HashMap::new()),
            replicas: RefCell::new(HashMap::new()),
            cutting: RefCell::new(std::collections::HashSet::new()),
            batch_cache: Rc::default(),
            pending_calls: RefCell::new(HashMap::new()),
            next_call_id: std::cell::Cell::new(0),
            catalogs_applied: std::cell::Cell::new(0),
        }
    }

    /// The current ACLs, SCRAM credentials and the authorizer built from them
    /// (cheap to clone; never changes under you).
    pub fn security(&self) -> Rc<ShardSecurity> {
        self.security.borrow().clone()
    }

    /// The current catalog snapshot (cheap to clone; never changes under you).
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.borrow().clone()
    }

    /// The log of a partition this shard owns. Ownership is checked against
    /// this shard's catalog: the router and the owner must agree, or the work
    /// is refused as NOT_LEADER_OR_FOLLOWER (`RouteError::NotOwner`).
    pub fn owned_log(&self, topic: &Arc<str>, partition: i32) -> Result<Rc<Log>, RouteError> {
        if self.catalog().topic(topic).and_then(|t| t.owner(partition)) != Some(self.id) {
            return Err(RouteError::NotOwner);
        }
        let key = (topic.clone(), partition);
        // A cluster node leads a partition once it has taken the role the
        // metadata gives it (its epoch, its in-sync replicas), not before.
        if self.config.cluster.is_some()
            && !matches!(self.replicas.borrow().get(&key), Some(replication::ReplicaRole::Leader(_)))
        {
            return Err(RouteError::NotOwner);
        }
        self.logs.borrow().get(&key).cloned().ok_or(RouteError::NotOwner)
    }

    /// Runs `job` on `shard` with that shard's context and returns its answer.
    /// Local work runs on a task of its own here, so it finishes even if the
    /// caller stops waiting (as remote work does); see [`Shard::invoke_on_inline`].
    pub async fn invoke_on<T, F, Fut>(self: &Rc<Self>, shard: usize, job: F) -> Result<T, RouteError>
    where
        T: Send + 'static,
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let answer = self.hand_over(shard, job).await?;
        answer.await.map_err(|_| RouteError::Unreachable(shard))
    }

    /// As [`Shard::invoke_on`], but local work runs in the caller's task and
    /// stops when the caller drops it (a long-poll watch ends with its fetch).
    pub async fn invoke_on_inline<T, F, Fut>(self: &Rc<Self>, shard: usize, job: F) -> Result<T, RouteError>
    where
        T: Send + 'static,
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        if shard != self.id {
            return self.invoke_on(shard, job).await;
        }
        Ok(job(self.clone()).await)
    }

    /// Queues `job` on `shard` and returns once it is queued, with its answer
    /// still to come. Jobs handed to one shard start in the order they were
    /// handed over: local ones are spawned here, remote ones go down the
    /// shard's FIFO channel and are spawned as they arrive.
    async fn hand_over<T, F, Fut>(self: &Rc<Self>, shard: usize, job: F) -> Result<oneshot::Receiver<T>, RouteError>
    where
        T: Send + 'static,
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let (tx, rx) = oneshot::channel::<T>();
        if shard == self.id {
            let here = self.clone();
            glommio::spawn_local(async move {
                let _ = tx.send(job(here).await);
            })
            .detach();
            return Ok(rx);
        }
        let id = self.next_call_id.get();
        self.next_call_id.set(id + 1);
        // The job below and this delivery are made together for the same `T`,
        // so the answer always has the type asked for.
        let deliver: PendingCall = Box::new(move |answer: Answer| match answer.downcast::<T>() {
            Ok(value) => {
                let _ = tx.send(*value);
            }
            Err(_) => tracing::error!(id, "answer of another type than asked; dropped"),
        });
        self.pending_calls.borrow_mut().insert(id, deliver);
        self.metrics.mesh_calls.inc();
        let job: Job = Box::new(move |owner| Box::pin(async move { Box::new(job(owner).await) as Answer }));
        if let Err(e) =
            self.router.send(shard, ShardMessage::Call { job, asker: self.id, id, sent: Instant::now() }).await
        {
            self.pending_calls.borrow_mut().remove(&id);
            return Err(e);
        }
        Ok(rx)
    }

    /// A message from another shard: work to run here, or the answer to a call of this shard's.
    pub fn serve(self: &Rc<Self>, message: ShardMessage) {
        match message {
            ShardMessage::Reply { id, answer, sent } => {
                self.metrics.mesh_hop_us.record_duration(sent.elapsed());
                let pending = self.pending_calls.borrow_mut().remove(&id);
                match pending {
                    Some(deliver) => deliver(answer),
                    None => tracing::debug!(id, "answer for a call nobody waits for"),
                }
            }
            ShardMessage::Call { job, asker, id, sent } => {
                self.metrics.mesh_hop_us.record_duration(sent.elapsed());
                let shard = self.clone();
                glommio::spawn_local(async move {
                    let answer = job(shard.clone()).await;
                    shard.router.reply(asker, id, answer).await;
                })
                .detach();
            }
        }
    }

    /// Sends each `(owner shard, item)` to its owner, one job per shard, all
    /// shards at once, where `op` handles that shard's items; returns the
    /// answers in item order.
    pub async fn scatter<I, R, Op, Fut>(self: &Rc<Self>, items: Vec<(usize, I)>, op: Op) -> Vec<Result<R, RouteError>>
    where
        I: Send + 'static,
        R: Send + 'static,
        Op: FnOnce(Rc<Shard>, Vec<I>) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Vec<Result<R, RouteError>>> + 'static,
    {
        self.hand_out(items, op).await.answers().await
    }

    /// The first half of [`Shard::scatter`]: returns once every owner has its
    /// job queued, with the answers still to come. Work handed out before
    /// other work to the same shard starts before it.
    pub async fn hand_out<I, R, Op, Fut>(self: &Rc<Self>, items: Vec<(usize, I)>, op: Op) -> HandedOut<R>
    where
        I: Send + 'static,
        R: Send + 'static,
        Op: FnOnce(Rc<Shard>, Vec<I>) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Vec<Result<R, RouteError>>> + 'static,
    {
        let total = items.len();
        let mut groups: BTreeMap<usize, (Vec<usize>, Vec<I>)> = BTreeMap::new();
        for (position, (owner, item)) in items.into_iter().enumerate() {
            let group = groups.entry(owner).or_default();
            group.0.push(position);
            group.1.push(item);
        }
        let mut calls = Vec::with_capacity(groups.len());
        for (owner, (positions, items)) in groups {
            let op = op.clone();
            let answer = self.hand_over(owner, move |shard| op(shard, items)).await;
            calls.push(HandedCall { owner, positions, answer });
        }
        HandedOut { total, calls }
    }

    /// Appends each part to its partition (owner side of Produce). On a
    /// replicated partition acks=all needs `min.insync.replicas` in-sync
    /// replicas and waits at most `timeout` for them (REQUEST_TIMED_OUT).
    pub async fn produce_local(
        &self,
        parts: Vec<ProducePart>,
        acks: AckLevel,
        timeout: std::time::Duration,
    ) -> Vec<Result<AppendOutcome, RouteError>> {
        let appends = parts.into_iter().map(|part| async move {
            let log = self.owned_log(&part.topic, part.partition)?;
            let key = (part.topic.clone(), part.partition);
            let short = |appended| match acks {
                AckLevel::Synced => self.check_min_insync(&key, &log, appended),
                _ => Ok(()),
            };
            short(false)?;
            let append = log.append(&part.records, &part.summaries, acks);
            let appended = if self.in_sync_replicas(&key).is_some() && acks == AckLevel::Synced {
                glommio::timer::timeout(timeout, async { Ok(append.await) })
                    .await
                    .map_err(|_| RouteError::TimedOut)??
            } else {
                append.await?
            };
            short(true)?;
            let m = &self.metrics;
            m.messages_in.add(part.summaries.iter().map(|s| s.offset_count as u64).sum());
            m.bytes_in.add(part.records.len() as u64);
            Ok(appended)
        });
        let answers = join_all(appends).await;
        self.metrics.produce_requests.add(answers.len() as u64);
        self.metrics.failed_produce_requests.add(answers.iter().filter(|a| a.is_err()).count() as u64);
        answers
    }

    /// Reads each part from its partition (owner side of Fetch).
    pub async fn read_local(&self, parts: Vec<ReadPart>) -> Vec<Result<ReadOutcome, RouteError>> {
        let reads = parts.into_iter().map(|part| async move {
            let log = self.owned_log(&part.topic, part.partition)?;
            let read = log.read(part.fetch_offset, part.max_bytes, part.committed).await?;
            let m = &self.metrics;
            for chunk in &read.chunks {
                m.bytes_out.add(chunk.len() as u64);
                // Batch headers only: the records themselves are not decoded.
                m.messages_out.add(batch::headers(chunk).map(|(_, h)| h.records_count.max(0) as u64).sum());
            }
            Ok(read)
        });
        let answers = join_all(reads).await;
        self.metrics.fetch_requests.add(answers.len() as u64);
        self.metrics.failed_fetch_requests.add(answers.iter().filter(|a| a.is_err()).count() as u64);
        answers
    }

    /// Reads each part (owner side of Fetch); while fewer than `min_bytes`
    /// came back and no part failed, waits until any part's high watermark
    /// moves past what was read, or `deadline`, and reads again: a long-poll
    /// Fetch whose partitions are all this shard's, in one call.
    pub async fn read_or_wait_local(
        &self,
        parts: Vec<ReadPart>,
        min_bytes: usize,
        deadline: Instant,
    ) -> Vec<Result<ReadOutcome, RouteError>> {
        loop {
            let reads = self.read_local(parts.clone()).await;
            let total: usize = reads.iter().filter_map(|r| r.as_ref().ok()).map(ReadOutcome::bytes).sum();
            if total >= min_bytes || reads.iter().any(Result::is_err) || Instant::now() >= deadline {
                return reads;
            }
            let watches = parts
                .iter()
                .zip(&reads)
                .map(|(part, read)| WatchPart {
                    topic: part.topic.clone(),
                    partition: part.partition,
                    offset: read.as_ref().map_or(part.fetch_offset, |r| r.high_watermark.max(part.fetch_offset)),
                })
                .collect();
            self.watch_local(watches, deadline).await;
        }
    }

    /// Resolves once any listed partition's high watermark passes its offset,
    /// or at `deadline` (owner side of a long-poll Fetch).
    pub async fn watch_local(&self, parts: Vec<WatchPart>, deadline: Instant) {
        let waits: Vec<_> = parts
            .iter()
            .filter_map(|w| self.owned_log(&w.topic, w.partition).ok().map(|log| log.watch(w.offset)))
            .collect();
        let timeout = glommio::timer::sleep(deadline.saturating_duration_since(Instant::now()));
        if waits.is_empty() {
            timeout.await;
        } else {
            futures::pin_mut!(timeout);
            let _ = select(select_all(waits), timeout).await;
        }
    }

    /// The offsets and size of each partition.
    pub async fn offsets_local(&self, parts: Vec<(Arc<str>, i32)>) -> Vec<Result<PartitionOffsets, RouteError>> {
        parts
            .iter()
            .map(|(topic, partition)| {
                let log = self.owned_log(topic, *partition)?;
                Ok(PartitionOffsets {
                    log_start_offset: log.log_start_offset(),
                    high_watermark: log.high_watermark(),
                    last_stable_offset: log.last_stable_offset(),
                    log_end_offset: log.log_end_offset(),
                    size_bytes: log.size_bytes(),
                })
            })
            .collect()
    }

    /// Where each asked leader epoch ends in its partition (OffsetForLeaderEpoch's owner side).
    pub async fn epoch_ends_local(
        &self,
        parts: Vec<(Arc<str>, i32, i32)>,
    ) -> Vec<Result<sluice_storage::log::EpochEnd, RouteError>> {
        parts
            .iter()
            .map(|(topic, partition, epoch)| Ok(self.owned_log(topic, *partition)?.end_offset_for_epoch(*epoch)))
            .collect()
    }

    /// DeleteRecords: moves each partition's log start offset; answers the new one.
    pub async fn delete_records_local(
        &self,
        parts: Vec<DeletePart>,
        timeout: std::time::Duration,
    ) -> Vec<Result<i64, RouteError>> {
        let deletes = parts.into_iter().map(|part| async move {
            let log = self.owned_log(&part.topic, part.partition)?;
            let start = log.delete_records(part.offset).await?;
            let key = (part.topic.clone(), part.partition);
            if self.in_sync_replicas(&key).is_none() {
                return Ok(start);
            }
            // A replicated partition answers once the replicas on live brokers
            // have moved their log start too (Kafka's DelayedDeleteRecords):
            // the low watermark, or REQUEST_TIMED_OUT.
            let deadline = std::time::Instant::now() + timeout;
            loop {
                match self.low_watermark(&key) {
                    Some(low) if low >= start => return Ok(low),
                    None if self.replica_role(&key).is_none() => return Err(RouteError::NotOwner),
                    _ if std::time::Instant::now() >= deadline => return Err(RouteError::TimedOut),
                    _ => {
                        glommio::timer::sleep(std::time::Duration::from_millis(
                            sluice_core::constants::DELETE_RECORDS_POLL_MS,
                        ))
                        .await
                    }
                }
            }
        });
        join_all(deletes).await
    }

    /// Transaction markers, written and synced on each partition's in-sync
    /// replicas. As Kafka appends them with acks=all, a replicated partition
    /// with fewer in-sync replicas than its `min.insync.replicas` refuses
    /// them (NOT_ENOUGH_REPLICAS, and the coordinator retries): a marker
    /// acknowledged on fewer could be lost in a failover, and the next one
    /// of its producer would then end the lost one's transaction its way.
    pub async fn write_markers_local(&self, markers: Vec<MarkerPart>) -> Vec<Result<Option<i64>, RouteError>> {
        let writes = markers.into_iter().map(|m| async move {
            let log = self.owned_log(&m.topic, m.partition)?;
            let key = (m.topic.clone(), m.partition);
            self.check_min_insync(&key, &log, false)?;
            let written = log.append_txn_marker(m.marker).await?;
            // The in-sync set may have shrunk below the minimum while the
            // marker waited: the coordinator asks again (Kafka's
            // NOT_ENOUGH_REPLICAS_AFTER_APPEND), and the retry waits again.
            self.check_min_insync(&key, &log, true)?;
            Ok(written)
        });
        join_all(writes).await
    }

    /// Forgets, in every partition of this shard, the producers idle longer
    /// than `producer.id.expiration.ms` with no transaction open there.
    pub fn remove_expired_producers(&self) {
        let now = sluice_core::clock::now_ms();
        let expiration_ms = i64::from(self.config.producer_id_expiration_ms);
        let logs: Vec<Rc<Log>> = self.logs.borrow().values().cloned().collect();
        for log in logs {
            let removed = log.remove_expired_producers(now, expiration_ms);
            if removed > 0 {
                tracing::debug!(dir = %log.dir.display(), removed, "expired producer ids forgotten");
            }
        }
    }

    /// Producer states of each partition (DescribeProducers).
    pub async fn describe_producers_local(
        &self,
        parts: Vec<(Arc<str>, i32)>,
    ) -> Vec<Result<Vec<ProducerInfo>, RouteError>> {
        parts.iter().map(|(topic, partition)| Ok(self.owned_log(topic, *partition)?.producer_states())).collect()
    }

    /// Timestamp lookups: (timestamp, offset), or None when no record is that new.
    pub async fn list_offsets_local(&self, queries: Vec<OffsetQuery>) -> Vec<Result<Option<(i64, i64)>, RouteError>> {
        let mut answers = Vec::with_capacity(queries.len());
        for q in queries {
            let answer = async {
                let log = self.owned_log(&q.topic, q.partition)?;
                Ok(match q.timestamp {
                    offset_spec::LATEST if q.committed => Some((-1, log.last_stable_offset())),
                    offset_spec::LATEST => Some((-1, log.high_watermark())),
                    offset_spec::EARLIEST | offset_spec::EARLIEST_LOCAL => Some((-1, log.log_start_offset())),
                    offset_spec::MAX_TIMESTAMP => log.max_timestamp().await?,
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
    /// deletes the data of partitions whose topic is gone or that moved to
    /// other brokers.
    pub async fn apply_catalog(&self, catalog: Arc<Catalog>) {
        if !Arc::ptr_eq(&self.security.borrow().state, &catalog.security) {
            *self.security.borrow_mut() = Rc::new(ShardSecurity::new(catalog.security.clone(), &self.config));
        }
        *self.catalog.borrow_mut() = catalog.clone();
        let wanted: Vec<(PartitionKey, sluice_core::config::TopicConfig)> = catalog
            .topics
            .values()
            .flat_map(|t| {
                (0..t.partitions())
                    .filter(|p| t.host(*p) == Some(self.id))
                    .map(|p| ((t.name.clone(), p), t.config.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let gone: Vec<PartitionKey> = self
            .logs
            .borrow()
            .keys()
            .filter(|(topic, partition)| catalog.topic(topic).and_then(|t| t.host(*partition)) != Some(self.id))
            .cloned()
            .collect();
        for key in gone {
            let log = self.logs.borrow_mut().remove(&key);
            if let Some(log) = log {
                if let Err(e) = log.close().await {
                    tracing::warn!(topic = %key.0, partition = key.1, error = %e, "closing removed partition");
                }
                // The topic is gone, or (a cluster's reassignment) this broker
                // holds no replica of the partition any more: its data goes.
                if catalog.topic(&key.0).is_none_or(|t| t.host(key.1).is_none()) {
                    if let Err(e) = sluice_storage::file::remove_dir_all(&log.dir).await {
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
            if self.cutting.borrow().contains(&key) {
                // The cut opens it again when it is done.
                continue;
            }
            let dir = self.config.data_dir.join(format!("{}-{}", key.0, key.1));
            match Log::open(dir, config, self.clean_start, self.metrics.io.clone(), self.batch_cache.clone()).await {
                Ok(log) => {
                    // A cluster's replicas learn their high watermark from each other.
                    if self.config.cluster.is_some() {
                        log.hold_high_watermark_at_start();
                    }
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
        let now = sluice_core::clock::now_ms();
        let logs: Vec<Rc<Log>> = self.logs.borrow().values().cloned().collect();
        for log in logs {
            log.enforce_retention(now);
        }
    }

    /// The shard's log cleaner, until the broker stops: cleans the compacted
    /// partition of this shard most in need of it whose pass is due, else
    /// waits `log.cleaner.backoff.ms`. Runs in its own low-priority queue.
    /// Its settings follow the dynamic broker configs of the catalog, taken
    /// between passes.
    pub async fn run_cleaner(&self) {
        if !self.config.cleaner.enable {
            return;
        }
        let shards = self.router.shards.max(1);
        let mut seen = self.catalog().broker_configs.clone();
        let effective = self.config.with_stored_dynamic(&seen).0.cleaner;
        let mut cleaner = sluice_storage::cleaner::Cleaner::new(cleaner_settings(&effective, shards));
        let mut backoff = std::time::Duration::from_millis(effective.backoff_ms);
        let tick = std::time::Duration::from_millis(sluice_core::constants::BACKGROUND_TICK_MS);
        // Partitions whose pass failed: not cleaned again until a restart.
        let mut uncleanable: Vec<std::path::PathBuf> = Vec::new();
        while !self.lifecycle.stopping() {
            let current = self.catalog().broker_configs.clone();
            if !Arc::ptr_eq(&current, &seen) {
                let effective = self.config.with_stored_dynamic(&current).0.cleaner;
                let settings = cleaner_settings(&effective, shards);
                let next_backoff = std::time::Duration::from_millis(effective.backoff_ms);
                if settings != cleaner.settings() || next_backoff != backoff {
                    cleaner.reconfigure(settings);
                    backoff = next_backoff;
                    tracing::info!(
                        shard = self.id,
                        io_max_bytes_per_second = effective.io_max_bytes_per_second,
                        dedupe_buffer_size = effective.dedupe_buffer_size,
                        io_buffer_size = effective.io_buffer_size,
                        io_buffer_load_factor = effective.io_buffer_load_factor,
                        backoff_ms = effective.backoff_ms,
                        "log cleaner reconfigured"
                    );
                }
                seen = current;
            }
            let now = sluice_core::clock::now_ms();
            let logs: Vec<Rc<Log>> =
                self.logs.borrow().values().filter(|l| !uncleanable.contains(&l.dir)).cloned().collect();
            // Waits `backoff`, or until the broker stops or its configs change.
            let pause = || async {
                let until = std::time::Instant::now() + backoff;
                while !self.lifecycle.stopping()
                    && std::time::Instant::now() < until
                    && Arc::ptr_eq(&self.catalog().broker_configs, &seen)
                {
                    glommio::timer::sleep(tick.min(backoff)).await;
                }
            };
            let Some(log) = sluice_storage::cleaner::Cleaner::dirtiest(&logs, now) else {
                pause().await;
                continue;
            };
            drop(logs);
            let started = std::time::Instant::now();
            match cleaner.clean(&log, now).await {
                // Due, yet nothing could be cleaned (a segment not sealed yet, an
                // open transaction): wait rather than try again at once.
                Ok(report) if report.segments_swapped == 0 => pause().await,
                Ok(report) => {
                    self.metrics.io.cleaner_passes.inc();
                    self.metrics.io.cleaner_bytes_removed.add(report.bytes_before.saturating_sub(report.bytes_after));
                    tracing::info!(
                        dir = %log.dir.display(), segments = report.segments_swapped, before = report.bytes_before,
                        after = report.bytes_after, read = report.bytes_read, cleaned_to = report.cleaned_to,
                        ms = started.elapsed().as_millis() as u64, "log cleaned"
                    );
                }
                Err(sluice_storage::StorageError::Closing) => {}
                Err(e) => {
                    self.metrics.io.cleaner_failures.inc();
                    tracing::error!(
                        dir = %log.dir.display(), error = %e,
                        "log cleaning failed; the partition is not cleaned again until a restart"
                    );
                    uncleanable.push(log.dir.clone());
                }
            }
        }
    }

    /// Writes recovery points for partitions that synced enough since their last one.
    pub async fn checkpoint_recovery_points(&self) {
        let logs: Vec<Rc<Log>> = self.logs.borrow().values().cloned().collect();
        for log in logs {
            if let Err(e) = log.maybe_checkpoint(sluice_core::constants::RECOVERY_CHECKPOINT_BYTES).await {
                tracing::warn!(dir = %log.dir.display(), error = %e, "cannot write recovery point");
            }
        }
    }

    /// This shard's numbers, its partitions, its groups' offsets and its
    /// transactions, for the admin listener.
    pub fn snapshot(&self) -> ShardSnapshot {
        let mut partitions: Vec<PartitionSnapshot> = self
            .logs
            .borrow()
            .iter()
            .map(|((topic, partition), log)| PartitionSnapshot {
                topic: topic.to_string(),
                partition: *partition,
                log_start_offset: log.log_start_offset(),
                log_end_offset: log.log_end_offset(),
                high_watermark: log.high_watermark(),
                last_stable_offset: log.last_stable_offset(),
                size_bytes: log.size_bytes(),
                segments: log.segment_count(),
            })
            .collect();
        partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        let group_offsets = self
            .groups
            .all_offsets()
            .into_iter()
            .map(|(group, topic, partition, offset)| GroupOffsetSnapshot { group, topic, partition, offset })
            .collect();
        let budget = sluice_core::constants::REQUEST_BYTES_PER_SHARD_MAX as u64;
        let mut counters = self.metrics.snapshot();
        counters.batch_cache_bytes = self.batch_cache.bytes() as u64;
        counters.tail_cache_bytes = self.batch_cache.tail_bytes() as u64;
        ShardSnapshot {
            shard: self.id,
            counters,
            request_bytes_held: budget.saturating_sub(self.request_budget.available()),
            calls_pending: self.pending_calls.borrow().len() as u64,
            partitions,
            group_offsets,
            groups: self.groups.list().len() as u64,
            txns: self.txns.counts(),
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
