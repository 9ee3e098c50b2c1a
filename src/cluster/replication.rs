//! Partition replication across brokers, Kafka's way: each follower
//! replica's shard fetches from its leader with Fetch requests that carry
//! its broker id (`replica_id`), its leader epoch and the epoch of its last
//! batch; the leader answers from what is written (not only below the high
//! watermark), tells where the follower's log diverged from its own, and
//! moves the high watermark as the in-sync followers' fetch offsets say what
//! they have synced. A follower out of the in-sync set that catches up is
//! added, and one that stops catching up for `replica.lag.time.max.ms` is
//! removed, through the metadata quorum (`MetadataRecord::AlterIsr`).
//!
//! Followers connect to the leader's CONTROLLER listener, which serves
//! Kafka requests too; the fetch goes from there to the leader partition's
//! shard, whose reply shares the log's bytes (no copy of records).
//!
//! - [`reconcile`]: after each change of the cluster, every shard takes the
//!   role the metadata gives each replica it holds.
//! - [`serve_replica_fetch`]: the leader's side of a follower's fetch.
//! - `follow`: a follower replica's fetch loop.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use glommio::net::TcpStream;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::admin::ADMIN_SHARD;
use crate::constants::{
    FETCH_WAIT_MS_MAX, REPLICA_FETCH_BACKOFF_MS, REPLICA_FETCH_BYTES_MAX, REPLICA_FETCH_RESPONSE_OVERHEAD_BYTES,
    REPLICA_FETCH_WAIT_MS, REPLICA_LAG_CHECK_MS, REPLICA_SOCKET_TIMEOUT_MS,
};
use crate::protocol::fetch_response::{FetchPartitionOut, FetchResponseOut, FetchTopicOut};
use crate::protocol::ResponseError;
use crate::server::session::RequestContext;
use crate::shard::replication::{FollowerFetch, ReplicaCut, ReplicaFetchError, ReplicaRole};
use crate::shard::{PartitionKey, Shard};
use sluice_cluster::MetadataRecord;
use sluice_protocol::batch::validate_replica_chunk;
use sluice_storage::log::ReplicaAppendError;
use sluice_storage::StorageError;

/// The Fetch version followers send: topic names, the replica id in the
/// request body, and the last fetched epoch (KIP-320).
const REPLICA_FETCH_VERSION: i16 = 12;

/// Takes the role the cluster gives each replica this shard holds: leads
/// the partitions whose leader is this broker (in their epoch, with their
/// in-sync set), starts a fetcher for those another broker leads, and
/// stops fetchers of replicas that moved away.
pub async fn reconcile(shard: Rc<Shard>) {
    let Some(view) = shard.cluster() else { return };
    let me = shard.config.node_id;
    let catalog = shard.catalog();
    let mut held = Vec::new();
    for meta in catalog.topics.values() {
        let Some(topic) = view.topics.get(meta.name.as_ref()) else { continue };
        for (p, state) in topic.partitions.iter().enumerate() {
            let partition = p as i32;
            if meta.host(partition) != Some(shard.id) {
                continue;
            }
            let key: PartitionKey = (meta.name.clone(), partition);
            held.push(key.clone());
            if state.leader == me {
                if let Err(e) = shard.lead(key, state.leader_epoch, state.replicas.clone(), state.isr.clone()).await {
                    tracing::error!(topic = %meta.name, partition, error = %e, "cannot take the partition's leadership");
                }
            } else if state.failed.contains(&me) {
                // Its log failed: it fetches nothing until the broker restarts.
                shard.stop_following(&key);
            } else if let Some(stop) = shard.follow(key.clone(), state.leader, state.leader_epoch) {
                if state.leader >= 0 {
                    let follower =
                        Follower { shard: shard.clone(), key, leader: state.leader, epoch: state.leader_epoch };
                    glommio::spawn_local(follower.run(stop)).detach();
                }
            }
        }
    }
    shard.drop_replicas_except(&held);
    sync_coordinators(&shard);
}

/// Has this shard's group and transaction coordinators hold exactly the
/// internal partitions (of `__consumer_offsets`, `__transaction_state`)
/// whose leadership this shard holds: each newly led one is loaded from its
/// log (in a task of its own; its keys are COORDINATOR_LOAD_IN_PROGRESS
/// meanwhile), each no longer led unloaded, and each whose write failed
/// unloaded and loaded again once its log's records are all committed, so
/// memory never holds what the log does not, nor what it may yet lose.
pub fn sync_coordinators(shard: &Rc<Shard>) {
    use crate::constants::{OFFSETS_PARTITIONS, TXN_PARTITIONS};
    let Some(view) = shard.cluster() else { return };
    let catalog = shard.catalog();
    for (kind, (topic, count)) in [
        (crate::metadata::INTERNAL_TOPICS[0], OFFSETS_PARTITIONS),
        (crate::metadata::INTERNAL_TOPICS[1], TXN_PARTITIONS),
    ]
    .into_iter()
    .enumerate()
    {
        let groups = kind == 0;
        for n in (0..count).filter(|n| n % shard.router.shards == shard.id) {
            let key: PartitionKey = (Arc::from(topic), n as i32);
            let leads = view
                .topics
                .get(topic)
                .and_then(|t| t.partitions.get(n))
                .is_some_and(|p| p.leader == shard.config.node_id)
                && matches!(shard.replica_role(&key), Some(ReplicaRole::Leader(_)));
            let log = catalog.topic(topic).and_then(|_| shard.hosted_log(&key.0, key.1).ok());
            let (holds, failed) = if groups {
                (shard.groups.holds(n), shard.groups.failed(n))
            } else {
                (shard.txns.holds(n), shard.txns.failed(n))
            };
            if holds && (!leads || failed) {
                if groups {
                    shard.groups.unload(n);
                } else {
                    shard.txns.unload(n);
                }
            }
            // Loaded only from a log whose every record is committed (the
            // high watermark at its end): a tail that never commits (written
            // before the leadership moved, or by a write that failed here)
            // is never state a coordinator acts on. A follower's fetch
            // moves the high watermark on within a fetch's wait.
            let committed = |log: &Rc<sluice_storage::log::Log>| log.high_watermark() >= log.log_end_offset();
            let Some(log) = log.filter(|log| leads && (!holds || failed) && committed(log)) else { continue };
            let shard = shard.clone();
            glommio::spawn_local(async move {
                if groups {
                    shard.groups.load(n, log).await;
                } else {
                    shard.txns.load(n, log).await;
                }
            })
            .detach();
        }
    }
}

/// Every `REPLICA_LAG_CHECK_MS`, asks the quorum to remove from the
/// in-sync sets of the partitions this shard leads the followers that have
/// not caught up for `replica.lag.time.max.ms`.
pub async fn check_lagging_followers(shard: Rc<Shard>) {
    let Some(config) = shard.config.cluster.clone() else { return };
    let lag_max = Duration::from_millis(config.replica_lag_time_max_ms);
    loop {
        glommio::timer::sleep(Duration::from_millis(REPLICA_LAG_CHECK_MS)).await;
        if shard.lifecycle.stopping() {
            return;
        }
        for (key, epoch, isr) in shard.lagging_followers(lag_max) {
            tracing::warn!(topic = %key.0, partition = key.1, ?isr, "followers fell behind; shrinking the in-sync set");
            propose_isr(&shard, &key, epoch, isr).await;
        }
        report_failed_replicas(&shard).await;
        sync_coordinators(&shard);
    }
}

/// Tells the quorum of each replica on this shard whose log failed (a
/// write or fsync error, a full disk) and that the metadata does not mark
/// failed yet: it leaves the in-sync set and any leadership it has, as
/// Kafka's brokers report an offline log dir to the controller.
async fn report_failed_replicas(shard: &Rc<Shard>) {
    let Some(view) = shard.cluster() else { return };
    let me = shard.config.node_id;
    let Some(epoch) = view.brokers.iter().find(|b| b.id == me).map(|b| b.epoch) else { return };
    for key in shard.replica_keys() {
        let Some(reason) = shard.hosted_log(&key.0, key.1).ok().and_then(|log| log.failure()) else { continue };
        let Some(topic) = view.topics.get(key.0.as_ref()) else { continue };
        let Some(state) = topic.partitions.get(key.1 as usize) else { continue };
        if state.failed.contains(&me) {
            continue;
        }
        tracing::error!(topic = %key.0, partition = key.1, %reason, "replica failed; leaving the in-sync set");
        let record = MetadataRecord::ReplicaFailed {
            name: key.0.to_string(),
            id: topic.id.clone(),
            partition: key.1,
            broker: me,
            epoch,
        };
        let proposed = shard.invoke_on(ADMIN_SHARD, move |_| async move { super::propose(record).await }).await;
        if let Ok(Err(e)) = proposed {
            tracing::debug!(topic = %key.0, partition = key.1, error = ?e, "failed replica not committed yet");
        }
    }
}

/// Proposes `isr` as the in-sync set of `key` led in `epoch`, from any shard.
async fn propose_isr(shard: &Rc<Shard>, key: &PartitionKey, epoch: i32, isr: Vec<i32>) {
    let Some(id) = shard.cluster().and_then(|v| v.topics.get(key.0.as_ref()).map(|t| t.id.clone())) else { return };
    let record = MetadataRecord::AlterIsr { name: key.0.to_string(), id, partition: key.1, leader_epoch: epoch, isr };
    let proposed = shard.invoke_on(ADMIN_SHARD, move |_| async move { super::propose(record).await }).await;
    if let Ok(Err(e)) = proposed {
        tracing::debug!(topic = %key.0, partition = key.1, error = ?e, "in-sync set change not committed");
    }
}

/// The leader's side of a follower's Fetch (`replica_id` set): each
/// partition is read on the shard that leads it, up to what is written,
/// after the follower's fetch offset is recorded as what it has synced.
pub async fn serve_replica_fetch(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: FetchRequest,
    replica: i32,
) -> FetchResponseOut {
    let version = ctx.version();
    let catalog = shard.catalog();
    let mut response = FetchResponseOut::default();
    let single = request.topics.len() == 1 && request.topics[0].partitions.len() == 1;
    let wait = Duration::from_millis((request.max_wait_ms.max(0) as u64).min(FETCH_WAIT_MS_MAX));
    let deadline = Instant::now() + if single { wait } else { Duration::ZERO };
    for topic in &request.topics {
        let meta =
            if version >= 13 { catalog.topic_by_id(&topic.topic_id) } else { catalog.topic(topic.topic.0.as_str()) };
        let mut out = FetchTopicOut {
            name: topic.topic.0.to_string(),
            topic_id: topic.topic_id,
            partitions: Vec::with_capacity(topic.partitions.len()),
        };
        for p in &topic.partitions {
            let mut partition = FetchPartitionOut {
                partition_index: p.partition,
                high_watermark: -1,
                last_stable_offset: -1,
                log_start_offset: -1,
                ..Default::default()
            };
            let owner = meta.and_then(|m| m.owner(p.partition));
            match (meta, owner) {
                (Some(meta), Some(owner)) => {
                    let ask = ReplicaFetch {
                        key: (meta.name.clone(), p.partition),
                        replica,
                        epoch: p.current_leader_epoch,
                        fetch_offset: p.fetch_offset,
                        log_start_offset: p.log_start_offset,
                        last_fetched_epoch: p.last_fetched_epoch,
                        max_bytes: (p.partition_max_bytes.max(0) as usize).min(REPLICA_FETCH_BYTES_MAX),
                        deadline,
                    };
                    let read = shard.invoke_on(owner, move |s| async move { ask.serve(&s).await }).await;
                    match read {
                        Ok(Ok(read)) => {
                            partition.high_watermark = read.high_watermark;
                            partition.last_stable_offset = read.last_stable_offset;
                            partition.log_start_offset = read.log_start_offset;
                            partition.records = read.chunks;
                            partition.diverging_epoch = read.diverging_epoch;
                            partition.error_code = read.error.map_or(0, |e| e.code());
                            if read.caught_up {
                                let (shard, key) = (shard.clone(), (meta.name.clone(), p.partition));
                                glommio::spawn_local(async move { add_to_isr(&shard, &key, replica).await }).detach();
                            }
                        }
                        Ok(Err(code)) => partition.error_code = code.code(),
                        Err(e) => partition.error_code = super::super::handlers::errors::route_error_code(&e).code(),
                    }
                }
                (Some(meta), None) if meta.has_partition(p.partition) => {
                    partition.error_code = ResponseError::NotLeaderOrFollower.code()
                }
                _ => partition.error_code = ResponseError::UnknownTopicOrPartition.code(),
            }
            out.partitions.push(partition);
        }
        response.topics.push(out);
    }
    response
}

thread_local! {
    /// The (partition, follower) pairs whose joining of the in-sync set this
    /// shard has proposed and not yet heard back about: one proposal at a
    /// time each, as Kafka keeps one AlterPartition in flight per partition.
    /// (A caught-up follower fetches many times while a proposal commits.)
    static JOINING: std::cell::RefCell<std::collections::HashSet<(PartitionKey, i32)>> =
        std::cell::RefCell::new(std::collections::HashSet::new());
}

/// Adds `replica` to the in-sync set of `key`, as its leader now has it.
async fn add_to_isr(shard: &Rc<Shard>, key: &PartitionKey, replica: i32) {
    let Some(view) = shard.cluster() else { return };
    let Some(state) = view.topics.get(key.0.as_ref()).and_then(|t| t.partitions.get(key.1 as usize)) else { return };
    if state.isr.contains(&replica) || !JOINING.with(|j| j.borrow_mut().insert((key.clone(), replica))) {
        return;
    }
    let mut isr = state.isr.clone();
    isr.push(replica);
    tracing::info!(topic = %key.0, partition = key.1, replica, "follower caught up; joining the in-sync set");
    propose_isr(shard, key, state.leader_epoch, isr).await;
    JOINING.with(|j| j.borrow_mut().remove(&(key.clone(), replica)));
}

/// One partition of a follower's fetch, served on the leader's shard.
struct ReplicaFetch {
    key: PartitionKey,
    replica: i32,
    epoch: i32,
    fetch_offset: i64,
    /// The follower's log start offset (DeleteRecords waits for it).
    log_start_offset: i64,
    last_fetched_epoch: i32,
    max_bytes: usize,
    deadline: Instant,
}

/// What the leader answers for one partition.
struct ReplicaRead {
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    chunks: Vec<Bytes>,
    diverging_epoch: Option<(i32, i64)>,
    caught_up: bool,
    /// OFFSET_OUT_OF_RANGE, with the log start offset and high watermark
    /// the follower needs to start again.
    error: Option<ResponseError>,
}

impl ReplicaFetch {
    async fn serve(self, shard: &Shard) -> Result<ReplicaRead, ResponseError> {
        let log = shard.owned_log(&self.key.0, self.key.1).map_err(|_| ResponseError::NotLeaderOrFollower)?;
        // KIP-320: the follower's last epoch must end at or after its fetch offset here.
        if self.last_fetched_epoch >= 0 {
            let end = log.end_offset_for_epoch(self.last_fetched_epoch);
            if end.epoch != self.last_fetched_epoch || end.end_offset < self.fetch_offset {
                let mut read = self.read_nothing(&log);
                read.diverging_epoch = Some((end.epoch, end.end_offset));
                return Ok(read);
            }
        }
        let recorded =
            shard.record_follower_fetch(&self.key, self.replica, self.epoch, self.fetch_offset, self.log_start_offset);
        let caught_up = match recorded {
            Ok(fetch) => fetch == FollowerFetch::CaughtUp,
            Err(ReplicaFetchError::NotLeader) => return Err(ResponseError::NotLeaderOrFollower),
            Err(ReplicaFetchError::FencedEpoch) => return Err(ResponseError::FencedLeaderEpoch),
            Err(ReplicaFetchError::UnknownEpoch) => return Err(ResponseError::UnknownLeaderEpoch),
            Err(ReplicaFetchError::NotReplica) => return Err(ResponseError::NotLeaderOrFollower),
        };
        loop {
            let read = match log.read_replica(self.fetch_offset, self.max_bytes).await {
                Ok(read) => read,
                Err(StorageError::OffsetOutOfRange { .. }) => {
                    let mut read = self.read_nothing(&log);
                    read.error = Some(ResponseError::OffsetOutOfRange);
                    return Ok(read);
                }
                Err(e) => return Err(super::super::handlers::errors::storage_error_code(&e)),
            };
            if !read.chunks.is_empty() || Instant::now() >= self.deadline || caught_up {
                return Ok(ReplicaRead {
                    high_watermark: read.high_watermark,
                    last_stable_offset: read.last_stable_offset,
                    log_start_offset: read.log_start_offset,
                    chunks: read.chunks,
                    diverging_epoch: None,
                    caught_up,
                    error: None,
                });
            }
            let watch = log.watch_end(self.fetch_offset);
            let timeout = glommio::timer::sleep(self.deadline.saturating_duration_since(Instant::now()));
            futures::pin_mut!(timeout);
            let _ = futures::future::select(watch, timeout).await;
        }
    }

    fn read_nothing(&self, log: &sluice_storage::Log) -> ReplicaRead {
        ReplicaRead {
            high_watermark: log.high_watermark(),
            last_stable_offset: log.last_stable_offset(),
            log_start_offset: log.log_start_offset(),
            chunks: Vec::new(),
            diverging_epoch: None,
            caught_up: false,
            error: None,
        }
    }
}

/// A follower replica's fetch loop: runs on the shard holding the replica
/// until its role changes (`stop`), fetching from the leader's end of log.
struct Follower {
    shard: Rc<Shard>,
    key: PartitionKey,
    leader: i32,
    epoch: i32,
}

impl Follower {
    async fn run(self, stop: Rc<Cell<bool>>) {
        tracing::info!(topic = %self.key.0, partition = self.key.1, leader = self.leader, epoch = self.epoch,
            "following the partition's leader");
        let mut connection: Option<TcpStream> = None;
        let mut correlation_id = 0i32;
        while !stop.get() && !self.shard.lifecycle.stopping() {
            if connection.is_none() {
                match self.connect().await {
                    Ok(stream) => connection = Some(stream),
                    Err(e) => {
                        tracing::debug!(leader = self.leader, error = %e, "cannot reach the partition's leader");
                        glommio::timer::sleep(Duration::from_millis(REPLICA_FETCH_BACKOFF_MS)).await;
                        continue;
                    }
                }
            }
            let stream = connection.as_mut().expect("connected above");
            correlation_id = correlation_id.wrapping_add(1);
            let step = match self.fetch(stream, correlation_id).await {
                Ok(response) if !stop.get() => self.take(response).await,
                Ok(_) => Ok(()),
                Err(e) => {
                    connection = None;
                    Err(format!("fetch from broker {}: {e}", self.leader))
                }
            };
            if let Err(e) = step {
                tracing::debug!(topic = %self.key.0, partition = self.key.1, error = %e, "replica fetch failed");
                glommio::timer::sleep(Duration::from_millis(REPLICA_FETCH_BACKOFF_MS)).await;
            }
        }
    }

    /// A connection to the leader that its broker hands to the shard owning
    /// the partition there: fetches go core to core.
    async fn connect(&self) -> std::io::Result<TcpStream> {
        use futures::io::AsyncWriteExt;
        let mut stream = crate::peers::connect(&self.shard, self.leader).await?;
        stream.write_all(&super::transport::encode_replica_hello(&self.key.0, self.key.1)).await?;
        Ok(stream)
    }

    /// One Fetch round trip for this partition, from the replica's log end.
    async fn fetch(&self, stream: &mut TcpStream, correlation_id: i32) -> std::io::Result<FetchResponse> {
        let log = self.shard.hosted_log(&self.key.0, self.key.1).map_err(|e| std::io::Error::other(e.to_string()))?;
        let partition = FetchPartition::default()
            .with_partition(self.key.1)
            .with_current_leader_epoch(self.epoch)
            .with_fetch_offset(log.log_end_offset())
            .with_last_fetched_epoch(log.last_epoch())
            .with_log_start_offset(log.log_start_offset())
            .with_partition_max_bytes(REPLICA_FETCH_BYTES_MAX as i32);
        let topic = FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(self.key.0.to_string())))
            .with_partitions(vec![partition]);
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(self.shard.config.node_id))
            .with_max_wait_ms(REPLICA_FETCH_WAIT_MS as i32)
            .with_min_bytes(1)
            .with_max_bytes(REPLICA_FETCH_BYTES_MAX as i32)
            .with_topics(vec![topic]);
        // One batch always comes whole, so a topic's largest batch may exceed the fetch size.
        let bytes_max = REPLICA_FETCH_BYTES_MAX.max(log.max_message_bytes()) + REPLICA_FETCH_RESPONSE_OVERHEAD_BYTES;
        let exchange = crate::peers::exchange(
            &self.shard,
            stream,
            ApiKey::Fetch,
            REPLICA_FETCH_VERSION,
            correlation_id,
            &request,
            bytes_max,
        );
        let timeout = glommio::timer::sleep(Duration::from_millis(REPLICA_SOCKET_TIMEOUT_MS));
        futures::pin_mut!(exchange, timeout);
        match futures::future::select(exchange, timeout).await {
            futures::future::Either::Left((response, _)) => response,
            futures::future::Either::Right(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {REPLICA_SOCKET_TIMEOUT_MS} ms"),
            )),
        }
    }

    /// Cuts the replica's log (closed meanwhile), then takes the role the
    /// cluster gives it again: a change of leadership that came while the
    /// log was closed could not be taken then.
    async fn cut(&self, cut: ReplicaCut) -> Result<(), String> {
        let cut = self.shard.cut_replica(&self.key, cut).await.map_err(|e| e.to_string());
        glommio::spawn_local(reconcile(self.shard.clone())).detach();
        cut
    }

    /// Takes the leader's answer: truncates where the logs diverged, or
    /// appends the batches (returning once synced here), then follows the
    /// leader's high watermark.
    async fn take(&self, response: FetchResponse) -> Result<(), String> {
        let Some(p) = response.responses.first().and_then(|t| t.partitions.first()) else {
            return Err(format!("empty fetch response (error {})", response.error_code));
        };
        let mut log = self.shard.hosted_log(&self.key.0, self.key.1).map_err(|e| e.to_string())?;
        if p.error_code == ResponseError::OffsetOutOfRange.code() {
            // Kafka's follower: behind the leader's log start, it starts over
            // there; ahead of the leader (a log without epochs to compare), it
            // goes back to what every in-sync replica has.
            let end = log.log_end_offset();
            drop(log);
            let cut = if p.log_start_offset > end {
                ReplicaCut::StartAt(p.log_start_offset)
            } else if p.high_watermark >= 0 && p.high_watermark < end {
                ReplicaCut::TruncateTo(p.high_watermark)
            } else {
                return Err(format!("fetch offset {end} out of range (leader's log start {})", p.log_start_offset));
            };
            return self.cut(cut).await;
        }
        if p.error_code != 0 {
            return Err(format!("leader answered error {}", p.error_code));
        }
        if p.diverging_epoch.epoch >= 0 || p.diverging_epoch.end_offset >= 0 {
            let leader_end = p.diverging_epoch.end_offset.max(0);
            let own = log.end_offset_for_epoch(p.diverging_epoch.epoch);
            let offset = if own.epoch == p.diverging_epoch.epoch {
                own.end_offset.min(leader_end)
            } else {
                own.end_offset.max(0)
            };
            let offset = offset.min(log.log_end_offset());
            drop(log);
            return self.cut(ReplicaCut::TruncateTo(offset)).await;
        }
        if let Some(records) = p.records.as_ref().filter(|r| !r.is_empty()) {
            // The leader sends whole batches; each is checked (CRC included) before it is written.
            let summaries = validate_replica_chunk(records, log.max_message_bytes().max(REPLICA_FETCH_BYTES_MAX))
                .map_err(|e| format!("leader sent bad batches: {e}"))?;
            match log.append_replica(records, &summaries).await {
                // Kafka's follower: an empty log whose start (the leader's log
                // start, after DeleteRecords) falls inside the first batch starts
                // at that batch instead, and moves its log start up below.
                Err(ReplicaAppendError::NotContiguous { expected, found })
                    if found < expected && log.log_end_offset() == log.log_start_offset() =>
                {
                    drop(log);
                    self.cut(ReplicaCut::StartAt(found)).await?;
                    log = self.shard.hosted_log(&self.key.0, self.key.1).map_err(|e| e.to_string())?;
                    log.append_replica(records, &summaries).await.map_err(|e| e.to_string())?;
                }
                appended => {
                    appended.map_err(|e| e.to_string())?;
                }
            }
        }
        log.set_high_watermark_limit(Some(p.high_watermark.min(log.log_end_offset())));
        // Records the leader no longer keeps (DeleteRecords, retention) go here too.
        let start = p.log_start_offset.min(log.high_watermark());
        if start > log.log_start_offset() {
            log.delete_records(start).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// The replicas this node holds and their roles, for logs and tests: (topic, partition, leading).
pub fn roles(shard: &Shard) -> Vec<(Arc<str>, i32, bool)> {
    shard
        .replica_keys()
        .into_iter()
        .filter_map(|key| {
            let leading = matches!(shard.replica_role(&key)?, ReplicaRole::Leader(_));
            Some((key.0, key.1, leading))
        })
        .collect()
}

/// A follower's replica-fetch connection, accepted on this shard with its
/// [`REPLICA_MAGIC`](super::transport::REPLICA_MAGIC) read: handed to the
/// shard that owns the partition it names (or served here when that is this
/// shard, or the partition is not hosted here: its fetches then get Kafka's
/// errors). The descriptor moves between shards as a duplicate, the
/// accepting shard's stream closed.
pub async fn hand_over_replica_connection(
    shard: &Rc<Shard>,
    mut stream: TcpStream,
    listener: crate::config::ListenerConfig,
    peer: std::net::SocketAddr,
) {
    use std::os::fd::AsRawFd;
    let (topic, partition) = match super::transport::read_replica_hello(&mut stream).await {
        Ok(named) => named,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "bad replica-fetch opening; closed");
            return;
        }
    };
    let owner = shard.catalog().topic(&topic).and_then(|m| m.owner(partition)).unwrap_or(shard.id);
    if owner == shard.id {
        return serve_replica_connection(shard.clone(), stream, listener, peer).await;
    }
    // SAFETY: dup of a descriptor this task owns; the copy is owned by the stream built from it below.
    let fd = unsafe { libc::dup(stream.as_raw_fd()) };
    if fd < 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot hand a replica connection over; served here");
        return serve_replica_connection(shard.clone(), stream, listener, peer).await;
    }
    drop(stream);
    let handed = shard
        .invoke_on(owner, move |owner| async move {
            // SAFETY: `fd` is an open TCP socket this closure alone owns (the duplicate made above).
            let stream = unsafe { <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            glommio::spawn_local(serve_replica_connection(owner, stream, listener, peer)).detach();
        })
        .await;
    if handed.is_err() {
        // The owner shard is gone (the broker is stopping); the closure and its descriptor went with it.
        tracing::debug!(%peer, owner, "replica connection not handed over");
    }
}

/// Serves a follower's replica-fetch connection as a Kafka connection on this shard.
async fn serve_replica_connection(
    shard: Rc<Shard>,
    stream: TcpStream,
    listener: crate::config::ListenerConfig,
    peer: std::net::SocketAddr,
) {
    use crate::security::principal::KafkaPrincipal;
    use crate::server::session::Session;
    let Some(slot) = crate::server::ConnectionSlot::take(&shard.lifecycle, shard.config.max_connections) else {
        shard.metrics.connections_refused.inc();
        return;
    };
    let runtime = match crate::server::listener::ListenerRuntime::new(listener) {
        Ok(runtime) => Rc::new(runtime),
        Err(e) => {
            tracing::warn!(error = %e, "replica connection's listener");
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(shard.config.connections_max_idle_ms)));
    shard.metrics.replica_connections.inc();
    let session = Rc::new(Session::new(runtime, peer, KafkaPrincipal::anonymous()));
    crate::server::connection::serve(shard, session, stream).await;
    drop(slot);
}
