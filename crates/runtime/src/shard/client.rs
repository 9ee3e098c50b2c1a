//! The typed shard client: every cross-shard operation is one call that
//! names its owner and returns its own answer type, with the routing done
//! once underneath ([`Shard::invoke_on`]).
//!
//! - Partition work goes to the partitions' owners through
//!   [`Shard::scatter`] and the `*_local` methods of [`Shard`].
//! - Group work goes to the group's coordinator ([`Shard::on_group`]),
//!   transaction work to the transactional id's ([`Shard::on_txn`]), catalog
//!   changes and producer ids to the controller on shard 0
//!   ([`Shard::on_controller`]).
//!
//! It also gives the coordinators what they need from the rest of the broker
//! ([`TxnEnv`], [`CatalogSink`]), so they never see a `Shard`.

use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use super::Shard;
use crate::router::{MarkerPart, RouteError};
use sluice_domain::metadata::controller::{CatalogSink, Controller};
use sluice_domain::metadata::{Catalog, INTERNAL_TOPICS};
use sluice_domain::txn::coordinator::{TxnEnv, COORDINATOR_EPOCH};
use sluice_domain::txn::TxnListing;
use sluice_protocol::{ResponseError, TopicPartition};
use sluice_storage::log::{MarkerOrigin, TxnMarker};
use sluice_storage::StorageError;

/// The shard that runs the controller.
pub const CONTROLLER_SHARD: usize = 0;

impl Shard {
    /// Why a coordinator did not take a request: its key's internal
    /// partition (`partition` of `topic`) is loading here, or about to be (this
    /// broker leads it and has not taken the leadership up yet), or another
    /// broker (or none yet) leads it.
    /// Whether this cluster node knows no leader of the metadata quorum: cut
    /// off from it, its view of who coordinates what may be out of date (a
    /// coordinator elsewhere may have taken over), so its coordinators
    /// answer NOT_COORDINATOR rather than from state that may be stale.
    fn cut_off(&self) -> bool {
        self.cluster().is_some_and(|view| view.leader.is_none())
    }

    fn refusal(&self, e: ResponseError, topic: &str, partition: usize) -> RouteError {
        let leads =
            || self.cluster().and_then(|view| view.leader(topic, partition as i32)) == Some(self.config.node_id);
        match e {
            ResponseError::CoordinatorLoadInProgress => RouteError::CoordinatorLoading,
            ResponseError::CoordinatorNotAvailable => RouteError::CoordinatorUnavailable,
            _ if leads() => RouteError::CoordinatorLoading,
            _ => RouteError::NotCoordinator,
        }
    }
}

impl Shard {
    /// Runs `job` on the shard coordinating `group_id` (its `groups`).
    pub async fn on_group<T, F, Fut>(self: &Rc<Self>, group_id: &str, job: F) -> Result<T, RouteError>
    where
        T: Send + 'static,
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let id = group_id.to_string();
        let shard = sluice_domain::group::coordinator_shard(group_id, self.router.shards);
        let checked = move |shard: Rc<Shard>| async move {
            match shard.groups.serves(&id) {
                Ok(()) if shard.cut_off() => Err(RouteError::NotCoordinator),
                Ok(()) => Ok(job(shard).await),
                Err(e) => Err(shard.refusal(e, INTERNAL_TOPICS[0], sluice_domain::group::offsets_partition(&id))),
            }
        };
        self.invoke_on(shard, checked).await?
    }

    /// Runs `job` on the shard coordinating `transactional_id` (its `txns`,
    /// whose [`TxnEnv`] is that shard).
    pub async fn on_txn<T, F, Fut>(self: &Rc<Self>, transactional_id: &str, job: F) -> Result<T, RouteError>
    where
        T: Send + 'static,
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let id = transactional_id.to_string();
        let shard = sluice_domain::txn::coordinator_shard(transactional_id, self.router.shards);
        let checked = move |shard: Rc<Shard>| async move {
            match shard.txns.serves(&id) {
                Ok(()) if shard.cut_off() => Err(RouteError::NotCoordinator),
                Ok(()) => Ok(job(shard).await),
                Err(e) => Err(shard.refusal(e, INTERNAL_TOPICS[1], sluice_domain::txn::txn_partition(&id))),
            }
        };
        self.invoke_on(shard, checked).await?
    }

    /// Runs `job` on the controller's shard (see [`Shard::controller`]).
    pub async fn on_controller<T, F, Fut>(self: &Rc<Self>, job: F) -> Result<T, RouteError>
    where
        T: Send + 'static,
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        self.invoke_on(CONTROLLER_SHARD, job).await
    }

    /// The controller; only [`CONTROLLER_SHARD`] has one, and only work sent
    /// there with [`Shard::on_controller`] asks for it.
    pub fn controller(&self) -> &Controller {
        self.controller.as_ref().expect("the controller runs on CONTROLLER_SHARD")
    }

    /// Runs `job` on every shard at once; answers in shard order.
    pub async fn on_every_shard<T, F, Fut>(self: &Rc<Self>, job: F) -> Vec<Result<T, RouteError>>
    where
        T: Send + 'static,
        F: FnOnce(Rc<Shard>) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let calls = (0..self.router.shards).map(|target| self.invoke_on(target, job.clone()));
        futures::future::join_all(calls).await
    }

    /// The coordinator's view of a transactional id; an unknown id is
    /// INVALID_PRODUCER_ID_MAPPING, as for the operations that need it.
    pub async fn describe_txn(self: &Rc<Self>, transactional_id: &str) -> Result<TxnListing, ResponseError> {
        let id = transactional_id.to_string();
        match self.on_txn(transactional_id, move |shard| async move { shard.txns.describe(&id) }).await {
            Ok(result) => result.map_err(|_| ResponseError::InvalidProducerIdMapping),
            Err(_) => Err(ResponseError::CoordinatorNotAvailable),
        }
    }

    /// A new broker-unique producer id from the controller's allocator: for
    /// an idempotent producer and for a transactional id alike. A failure to
    /// reserve ids on disk is logged and answered as COORDINATOR_NOT_AVAILABLE,
    /// which clients retry.
    pub async fn allocate_producer_id(self: &Rc<Self>) -> Result<i64, ResponseError> {
        match self.on_controller(|shard| async move { shard.controller().allocate_producer_id().await }).await {
            // A cluster's brokers hand out disjoint ids: the node id in the low bits.
            Ok(Ok(id)) if self.config.cluster.is_some() => {
                Ok(id * sluice_core::constants::CLUSTER_BROKERS_MAX as i64 + i64::from(self.config.node_id))
            }
            Ok(Ok(id)) => Ok(id),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot reserve producer ids");
                Err(ResponseError::CoordinatorNotAvailable)
            }
            Err(_) => Err(ResponseError::CoordinatorNotAvailable),
        }
    }
}

/// A shard as the environment of its coordinators: their way to the rest of
/// the broker ([`TxnEnv`], [`CatalogSink`]).
#[derive(Clone)]
pub struct ShardEnv(Rc<Shard>);

impl Shard {
    pub fn env(self: &Rc<Self>) -> ShardEnv {
        ShardEnv(self.clone())
    }
}

impl CatalogSink for ShardEnv {
    /// Has every shard adopt `catalog`, and waits until all have.
    async fn publish(&self, catalog: Arc<Catalog>) {
        let applied = self
            .0
            .on_every_shard(move |shard| async move {
                shard.apply_catalog(catalog).await;
            })
            .await;
        for (target, result) in applied.into_iter().enumerate() {
            if let Err(e) = result {
                tracing::error!(target, error = %e, "shard did not apply the catalog");
            }
        }
    }
}

impl TxnEnv for ShardEnv {
    async fn allocate_producer_id(&self) -> Result<i64, ResponseError> {
        self.0.allocate_producer_id().await
    }

    async fn write_partition_markers(
        &self,
        partitions: &[TopicPartition],
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), String> {
        let catalog = self.0.catalog();
        let mut items = Vec::with_capacity(partitions.len());
        let mut remote: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
        for TopicPartition { topic, partition } in partitions {
            let Some(meta) = catalog.topic(topic) else { continue };
            // A partition another broker leads gets its marker there, as
            // Kafka's coordinator sends WriteTxnMarkers; one with no leader
            // now keeps the transaction prepared, retried by the sweep.
            let Some(owner) = meta.owner(*partition) else {
                let leader = self.0.cluster().and_then(|view| view.leader(topic, *partition));
                let leader = leader.ok_or_else(|| format!("{topic}-{partition} has no leader now"))?;
                remote.entry(leader).or_default().push(TopicPartition::new(topic.clone(), *partition));
                continue;
            };
            let marker = TxnMarker {
                producer_id,
                epoch,
                commit,
                coordinator_epoch: COORDINATOR_EPOCH,
                origin: MarkerOrigin::Coordinator,
            };
            items.push((owner, MarkerPart { topic: meta.name.clone(), partition: *partition, marker }));
        }
        let written =
            self.0.scatter(items, |shard, markers| async move { shard.write_markers_local(markers).await }).await;
        for result in written {
            match result {
                Ok(_) => {}
                // The producer has moved on to a newer epoch there: nothing of this one is open.
                Err(RouteError::Producer(_)) => {}
                Err(RouteError::Storage(StorageError::Failed(reason))) => return Err(reason),
                Err(e) => return Err(e.to_string()),
            }
        }
        for (broker, partitions) in remote {
            crate::peers::write_markers(&self.0, broker, &partitions, producer_id, epoch, commit).await?;
        }
        Ok(())
    }

    async fn write_group_markers(&self, groups: &[String], producer_id: i64, commit: bool) -> Result<(), String> {
        for group_id in groups {
            let id = group_id.clone();
            let end = move |shard: Rc<Shard>| async move { shard.groups.txn_end(&id, producer_id, commit).await };
            match self.0.on_group(group_id, end).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(format!("group {group_id}: {e:?}")),
                // Another broker coordinates the group: the marker goes to
                // its offsets partition's leader, as Kafka's does.
                Err(RouteError::NotCoordinator) if self.0.cluster().is_some() => {
                    let n = sluice_domain::group::offsets_partition(group_id) as i32;
                    let topic = sluice_domain::metadata::INTERNAL_TOPICS[0];
                    let leader = self.0.cluster().and_then(|view| view.leader(topic, n));
                    let leader = leader.ok_or_else(|| format!("{topic}-{n} has no leader now"))?;
                    let partition = [TopicPartition::new(topic.to_string(), n)];
                    crate::peers::write_markers(&self.0, leader, &partition, producer_id, -1, commit).await?;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    }

    fn now_ms(&self) -> i64 {
        sluice_core::clock::now_ms()
    }

    fn epoch_bump(&self) -> bool {
        self.0.catalog().features.level(sluice_domain::metadata::features::TRANSACTION_VERSION) >= 2
    }
}
