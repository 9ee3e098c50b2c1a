//! One module per Kafka API, all of the same shape:
//!
//! `pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: XRequest) -> XResponse`
//!
//! decode (done here), reject the whole request early, validate per
//! partition, route partitions to their owning shards, gather, map internal
//! errors to Kafka codes in [`errors`], respond. [`dispatch`] decodes the
//! body for the version asked, calls the handler and encodes its answer.

pub mod access;
pub mod acl_codec;
pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_client_quotas;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_client_quotas;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod errors;
pub mod fetch;
pub mod find_coordinator;
pub mod get_telemetry_subscriptions;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_config_resources;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod push_telemetry;
pub mod quota;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod update_features;
pub mod write_txn_markers;

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use kafka_protocol::messages::ApiKey;

use crate::config::BrokerScope;
use crate::metadata::controller::{ConfigChange, TopicError, TopicSpec};
use crate::metadata::TopicMeta;
use bytes::Bytes;

use crate::protocol::frame::{decode_body, encode_response, FrameError, ResponseFrame};
use crate::protocol::{versions, ResponseError};
use crate::router::RouteError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

/// Runs one request. `Ok(None)` means no response is sent (acks=0 produce);
/// `Err` means the connection must be closed, as Kafka does for requests it
/// cannot parse or versions it does not serve.
pub async fn dispatch(
    shard: Rc<Shard>,
    api_key: ApiKey,
    mut body: Bytes,
    ctx: RequestContext,
) -> Result<Option<ResponseFrame>, FrameError> {
    let version = ctx.version();
    let correlation_id = ctx.header.correlation_id;
    if !versions::accepts(api_key, version) {
        if api_key == ApiKey::ApiVersions {
            return Ok(Some(api_versions::unsupported_version(correlation_id)?));
        }
        return Err(FrameError::Body { api: api_key, version, reason: "unsupported version".into() });
    }

    // Every API but ApiVersions, the SASL ones and WriteTxnMarkers counts
    // against `request_percentage`, as in Kafka: the time the shard spent
    // polling the handler is recorded and a throttle time goes into the answer.
    macro_rules! run {
        ($module:ident) => {{
            let request = decode_body(api_key, version, &mut body)?;
            let (mut response, busy) = timed($module::handle(&shard, &ctx, request)).await;
            let throttle = quota::record_request_time(&shard, &ctx, busy);
            apply_throttle(&mut response.throttle_time_ms, throttle, &ctx);
            Some(encode_response(api_key, version, correlation_id, &response)?)
        }};
    }
    macro_rules! run_exempt {
        ($module:ident) => {{
            let request = decode_body(api_key, version, &mut body)?;
            let response = $module::handle(&shard, &ctx, request).await;
            Some(encode_response(api_key, version, correlation_id, &response)?)
        }};
    }

    let response = match api_key {
        ApiKey::ApiVersions => run_exempt!(api_versions),
        ApiKey::Metadata => run!(metadata),
        ApiKey::CreateTopics => run!(create_topics),
        ApiKey::DeleteTopics => run!(delete_topics),
        ApiKey::DescribeCluster => run!(describe_cluster),
        ApiKey::ElectLeaders => run!(elect_leaders),
        ApiKey::AlterPartitionReassignments => run!(alter_partition_reassignments),
        ApiKey::ListPartitionReassignments => run!(list_partition_reassignments),
        ApiKey::DescribeTopicPartitions => run!(describe_topic_partitions),
        // Its answer has no throttle time, as in Kafka, where it is exempt.
        ApiKey::DescribeQuorum => run_exempt!(describe_quorum),
        ApiKey::UpdateFeatures => run!(update_features),
        ApiKey::ListOffsets => run!(list_offsets),
        ApiKey::OffsetForLeaderEpoch => run!(offset_for_leader_epoch),
        ApiKey::InitProducerId => run!(init_producer_id),
        ApiKey::FindCoordinator => run!(find_coordinator),
        ApiKey::SyncGroup => run!(sync_group),
        ApiKey::Heartbeat => run!(heartbeat),
        ApiKey::LeaveGroup => run!(leave_group),
        ApiKey::OffsetCommit => run!(offset_commit),
        ApiKey::OffsetFetch => run!(offset_fetch),
        ApiKey::ListGroups => run!(list_groups),
        ApiKey::DescribeGroups => run!(describe_groups),
        ApiKey::DeleteGroups => run!(delete_groups),
        ApiKey::OffsetDelete => run!(offset_delete),
        ApiKey::DescribeConfigs => run!(describe_configs),
        ApiKey::AlterConfigs => run!(alter_configs),
        ApiKey::IncrementalAlterConfigs => run!(incremental_alter_configs),
        ApiKey::CreatePartitions => run!(create_partitions),
        ApiKey::DeleteRecords => run!(delete_records),
        ApiKey::DescribeLogDirs => run!(describe_log_dirs),
        ApiKey::AddPartitionsToTxn => run!(add_partitions_to_txn),
        ApiKey::AddOffsetsToTxn => run!(add_offsets_to_txn),
        ApiKey::EndTxn => run!(end_txn),
        ApiKey::TxnOffsetCommit => run!(txn_offset_commit),
        ApiKey::DescribeProducers => run!(describe_producers),
        ApiKey::ListTransactions => run!(list_transactions),
        ApiKey::DescribeTransactions => run!(describe_transactions),
        ApiKey::WriteTxnMarkers => run_exempt!(write_txn_markers),
        ApiKey::SaslHandshake => run_exempt!(sasl_handshake),
        ApiKey::SaslAuthenticate => run_exempt!(sasl_authenticate),
        ApiKey::CreateAcls => run!(create_acls),
        ApiKey::DescribeAcls => run!(describe_acls),
        ApiKey::DeleteAcls => run!(delete_acls),
        ApiKey::DescribeUserScramCredentials => run!(describe_user_scram_credentials),
        ApiKey::AlterUserScramCredentials => run!(alter_user_scram_credentials),
        ApiKey::DescribeClientQuotas => run!(describe_client_quotas),
        ApiKey::AlterClientQuotas => run!(alter_client_quotas),
        ApiKey::JoinGroup => run!(join_group),
        ApiKey::ConsumerGroupHeartbeat => run!(consumer_group_heartbeat),
        ApiKey::ConsumerGroupDescribe => run!(consumer_group_describe),
        ApiKey::GetTelemetrySubscriptions => run!(get_telemetry_subscriptions),
        ApiKey::PushTelemetry => run!(push_telemetry),
        ApiKey::ListConfigResources => run!(list_config_resources),
        ApiKey::Produce => {
            let request = decode_body(api_key, version, &mut body)?;
            let (response, busy) = timed(produce::handle(&shard, &ctx, request)).await;
            let throttle = quota::record_request_time(&shard, &ctx, busy);
            match response {
                Some(mut response) => {
                    apply_throttle(&mut response.throttle_time_ms, throttle, &ctx);
                    Some(encode_response(api_key, version, correlation_id, &response)?)
                }
                None => {
                    ctx.session.throttle(throttle);
                    None
                }
            }
        }
        ApiKey::Fetch => {
            let request = decode_body(api_key, version, &mut body)?;
            let (mut response, busy) = timed(fetch::handle(&shard, &ctx, request)).await;
            let throttle = quota::record_request_time(&shard, &ctx, busy);
            apply_throttle(&mut response.throttle_time_ms, throttle, &ctx);
            Some(response.encode(version, correlation_id))
        }
        _ => unreachable!("versions::accepts admits only the APIs matched here"),
    };
    Ok(response)
}

/// Runs a handler, measuring the time the shard spends polling it (its own
/// work, not the waits for other shards, the disk or a long poll).
async fn timed<F: std::future::Future>(handler: F) -> (F::Output, std::time::Duration) {
    let mut busy = std::time::Duration::ZERO;
    let mut handler = std::pin::pin!(handler);
    let output = std::future::poll_fn(|cx| {
        let started = std::time::Instant::now();
        let poll = handler.as_mut().poll(cx);
        busy += started.elapsed();
        poll
    })
    .await;
    (output, busy)
}

/// Puts the larger of the answer's own throttle time (a byte-rate quota's)
/// and the request-time one into the answer, and mutes the connection for it.
fn apply_throttle(field: &mut i32, request_throttle_ms: u64, ctx: &RequestContext) {
    let ms = (*field).max(0) as u64;
    let ms = ms.max(request_throttle_ms).min(i32::MAX as u64);
    *field = ms as i32;
    ctx.session.throttle(ms);
}

/// A transaction coordinator's answer, or COORDINATOR_NOT_AVAILABLE when it
/// cannot be reached (clients retry that).
pub fn coordinator_answer<T>(answer: Result<Result<T, ResponseError>, RouteError>) -> Result<T, ResponseError> {
    answer.unwrap_or_else(|e| Err(coordinator_error(&e)))
}

/// What a client is told when its coordinator could not be asked:
/// NOT_COORDINATOR where another broker of the cluster coordinates the key,
/// COORDINATOR_LOAD_IN_PROGRESS while this one loads it, else
/// COORDINATOR_NOT_AVAILABLE. Clients look the coordinator up again on either.
pub fn coordinator_error(e: &RouteError) -> ResponseError {
    match e {
        RouteError::NotCoordinator => ResponseError::NotCoordinator,
        RouteError::CoordinatorLoading => ResponseError::CoordinatorLoadInProgress,
        _ => ResponseError::CoordinatorNotAvailable,
    }
}

/// The Kafka code of an outcome: 0 for success.
pub fn code_of(result: Result<(), ResponseError>) -> i16 {
    result.err().map_or(0, |e| e.code())
}

/// The outcome of altering one config resource.
pub struct ConfigResult {
    pub resource_type: i8,
    pub name: kafka_protocol::protocol::StrBytes,
    pub code: i16,
    pub message: Option<kafka_protocol::protocol::StrBytes>,
}

/// The scope of a BROKER config resource: "" (every broker) or this broker's
/// id; another id is refused with Kafka's messages (its `ConfigAdminManager`).
fn broker_scope(name: &str, node_id: i32) -> Result<BrokerScope, String> {
    if name.is_empty() {
        return Ok(BrokerScope::ClusterDefault);
    }
    match name.parse::<i32>() {
        Ok(id) if id == node_id => Ok(BrokerScope::Broker(id)),
        Ok(_) => Err(format!("Unexpected broker id, expected {node_id}, but received {name}")),
        Err(_) => Err(format!("Node id must be an integer, but it is: {name}")),
    }
}

/// IncrementalAlterConfigs' DELETE operation.
const CONFIG_DELETE: i8 = 1;

/// Alters topic configs, dynamic broker configs (the cluster default or
/// this broker's) and client metrics subscriptions through the controller;
/// other resource types are invalid.
pub async fn alter_configs(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    resources: Vec<(i8, String, ConfigChange)>,
    validate_only: bool,
) -> Vec<ConfigResult> {
    use kafka_protocol::protocol::StrBytes;
    /// Where a resource's answer comes from.
    enum Route {
        Refused(ResponseError, String),
        Unchanged,
        Topic,
        Broker,
        ClientMetrics,
    }
    let access = access::Access::of(shard, ctx);
    let denied = |code: ResponseError| Route::Refused(code, "Authorization failed.".to_string());
    let mut routes: Vec<Route> = Vec::with_capacity(resources.len());
    let mut topics = Vec::new();
    let mut brokers = Vec::new();
    let mut client_metrics = Vec::new();
    for (resource_type, name, change) in &resources {
        routes.push(match *resource_type {
            describe_configs::RESOURCE_TOPIC if !access.topic(AclOperation::AlterConfigs, name) => {
                denied(ResponseError::TopicAuthorizationFailed)
            }
            describe_configs::RESOURCE_BROKER | describe_configs::RESOURCE_CLIENT_METRICS
                if !access.cluster(AclOperation::AlterConfigs) =>
            {
                denied(ResponseError::ClusterAuthorizationFailed)
            }
            // A cluster's brokers have no dynamic configs: deleting one changes
            // nothing (`kafka-reassign-partitions.sh --verify` clears its throttles so).
            describe_configs::RESOURCE_BROKER
                if shard.config.cluster.is_some()
                    && matches!(change, ConfigChange::Incremental(ops) if ops.iter().all(|(_, op, _)| *op == CONFIG_DELETE))
                    && broker_scope(name, shard.config.node_id).is_ok() =>
            {
                Route::Unchanged
            }
            // Kept by each node alone so far: a cluster refuses them rather than
            // change one broker and let the others differ.
            describe_configs::RESOURCE_BROKER | describe_configs::RESOURCE_CLIENT_METRICS
                if shard.config.cluster.is_some() =>
            {
                Route::Refused(ResponseError::InvalidRequest, NOT_CLUSTER_WIDE.to_string())
            }
            describe_configs::RESOURCE_CLIENT_METRICS => {
                client_metrics.push((name.clone(), change.clone()));
                Route::ClientMetrics
            }
            describe_configs::RESOURCE_TOPIC => {
                topics.push((name.clone(), change.clone()));
                Route::Topic
            }
            describe_configs::RESOURCE_BROKER => match broker_scope(name, shard.config.node_id) {
                Ok(scope) => {
                    brokers.push((scope, change.clone()));
                    Route::Broker
                }
                Err(message) => Route::Refused(ResponseError::InvalidRequest, message),
            },
            other => Route::Refused(ResponseError::InvalidRequest, format!("Unknown resource type {other}")),
        });
    }
    let unreachable = |count: usize, e: RouteError| -> Vec<Result<(), TopicError>> {
        (0..count).map(|_| Err((ResponseError::UnknownServerError, e.to_string()))).collect()
    };
    let mut topic_answers = if topics.is_empty() {
        Vec::new()
    } else {
        let count = topics.len();
        let alter = move |shard: Rc<Shard>| async move {
            if shard.config.cluster.is_some() {
                return crate::cluster::topics::alter_configs(&shard, topics, validate_only).await;
            }
            shard.controller().alter_configs(&shard.env(), topics, validate_only).await
        };
        shard.on_controller(alter).await.unwrap_or_else(|e| unreachable(count, e))
    }
    .into_iter();
    let mut broker_answers = if brokers.is_empty() {
        Vec::new()
    } else {
        let count = brokers.len();
        let alter = move |shard: Rc<Shard>| async move {
            shard.controller().alter_broker_configs(&shard.env(), brokers, validate_only).await
        };
        shard.on_controller(alter).await.unwrap_or_else(|e| unreachable(count, e))
    }
    .into_iter();
    let mut client_metrics_answers = if client_metrics.is_empty() {
        Vec::new()
    } else {
        let count = client_metrics.len();
        let alter = move |shard: Rc<Shard>| async move {
            shard.controller().alter_client_metrics(&shard.env(), client_metrics, validate_only).await
        };
        shard.on_controller(alter).await.unwrap_or_else(|e| unreachable(count, e))
    }
    .into_iter();
    resources
        .into_iter()
        .zip(routes)
        .map(|((resource_type, name, _), route)| {
            let outcome = match route {
                Route::Refused(code, message) => Err((code, message)),
                Route::Unchanged => Ok(()),
                Route::Topic => topic_answers.next().expect("one answer per topic"),
                Route::Broker => broker_answers.next().expect("one answer per broker resource"),
                Route::ClientMetrics => client_metrics_answers.next().expect("one answer per subscription"),
            };
            let (code, message) = match outcome {
                Ok(()) => (0, None),
                Err((code, message)) => (code.code(), Some(StrBytes::from_string(message))),
            };
            ConfigResult { resource_type, name: StrBytes::from_string(name), code, message }
        })
        .collect()
}

/// Asks the controller to create topics and returns its answer per topic.
pub async fn create_topics(
    shard: &Rc<Shard>,
    topics: Vec<TopicSpec>,
    validate_only: bool,
) -> Vec<Result<Arc<TopicMeta>, TopicError>> {
    let count = topics.len();
    let create = move |shard: Rc<Shard>| async move {
        if shard.config.cluster.is_some() {
            return crate::cluster::topics::create_topics(&shard, topics, validate_only).await;
        }
        shard.controller().create_topics(&shard.env(), topics, validate_only).await
    };
    match shard.on_controller(create).await {
        Ok(results) => results,
        Err(e) => (0..count).map(|_| Err((ResponseError::UnknownServerError, e.to_string()))).collect(),
    }
}

/// Looks up topics by name, creating the missing ones with the broker
/// defaults when `auto.create.topics.enable` is on and `create` is given and
/// allows it (CREATE on the cluster or the topic; a missing topic the
/// principal may not create is TOPIC_AUTHORIZATION_FAILED, as Kafka answers).
pub async fn resolve_topics(
    shard: &Rc<Shard>,
    names: &[String],
    create: Option<&access::Access>,
) -> BTreeMap<String, Result<Arc<TopicMeta>, TopicError>> {
    let catalog = shard.catalog();
    let mut found = BTreeMap::new();
    let mut missing = Vec::new();
    for name in names {
        match catalog.topic(name) {
            Some(t) => {
                found.insert(name.clone(), Ok(t.clone()));
            }
            None if create.is_some() && shard.config.auto_create_topics_enable => {
                let access = create.expect("checked");
                if access.cluster(AclOperation::Create) || access.topic(AclOperation::Create, name) {
                    missing.push(name.clone());
                } else {
                    found.insert(name.clone(), Err((ResponseError::TopicAuthorizationFailed, String::new())));
                }
            }
            None => {
                found.insert(name.clone(), Err(errors::unknown_topic()));
            }
        }
    }
    missing.sort();
    missing.dedup();
    if !missing.is_empty() {
        let specs = missing
            .iter()
            .map(|name| TopicSpec {
                name: name.clone(),
                num_partitions: -1,
                replication_factor: -1,
                assignments: Vec::new(),
                configs: Vec::new(),
            })
            .collect();
        let created = create_topics(shard, specs, false).await;
        let catalog = shard.catalog();
        for (name, result) in missing.into_iter().zip(created) {
            let answer = match result {
                Ok(t) => Ok(t),
                // Someone else created it meanwhile.
                Err((ResponseError::TopicAlreadyExists, _)) => {
                    catalog.topic(&name).cloned().ok_or_else(errors::unknown_topic)
                }
                Err(e) => Err(e),
            };
            found.insert(name, answer);
        }
    }
    found
}

/// Why a cluster refuses a change that each node still keeps alone.
pub const NOT_CLUSTER_WIDE: &str = "Sluice clusters do not yet share dynamic broker configs, client metrics \
     subscriptions or feature levels between brokers: set broker configs in each node's properties file";

/// A broker as Metadata and DescribeCluster list it.
pub struct BrokerEntry {
    pub id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    pub fenced: bool,
}

/// The brokers clients are told of, each at its endpoint of the listener the
/// request came in on: this node alone on a single node; on a cluster every
/// registered broker (fenced ones only when asked for).
pub fn brokers(shard: &Shard, ctx: &RequestContext, include_fenced: bool) -> Vec<BrokerEntry> {
    let (host, port) = ctx.advertised();
    let me = BrokerEntry { id: shard.config.node_id, host: host.to_string(), port, rack: None, fenced: false };
    let Some(view) = shard.cluster() else { return vec![me] };
    let listener = &ctx.session.listener_config().name;
    let mut entries: Vec<BrokerEntry> = view
        .brokers
        .iter()
        .filter(|b| include_fenced || !b.fenced)
        .filter_map(|b| {
            let endpoint = b.endpoints.iter().find(|e| e.name == *listener)?;
            Some(BrokerEntry {
                id: b.id,
                host: endpoint.host.clone(),
                port: endpoint.port,
                rack: b.rack.clone(),
                fenced: b.fenced,
            })
        })
        .collect();
    // Until its registration is committed, the node still answers for itself.
    if !entries.iter().any(|b| b.id == me.id) {
        entries.push(me);
        entries.sort_by_key(|b| b.id);
    }
    entries
}

/// The active controller's id: this node on a single node, the quorum's
/// leader on a cluster (-1 while there is none).
pub fn controller_id(shard: &Shard) -> i32 {
    match shard.cluster() {
        None => shard.config.node_id,
        Some(view) => view.leader.unwrap_or(-1),
    }
}

/// The leader epoch of `partition` as this broker knows it: the metadata's
/// on a cluster, [`LEADER_EPOCH`](crate::storage::log::LEADER_EPOCH) on a single node.
pub fn leader_epoch(shard: &Shard, topic: &TopicMeta, partition: i32) -> i32 {
    Placements::of(shard).partition(topic, partition).leader_epoch
}

/// Kafka's check of the leader epoch a client names (-1: none): a newer
/// one than the leader's is UNKNOWN_LEADER_EPOCH (this broker has not heard
/// yet), an older one FENCED_LEADER_EPOCH (the client has not).
pub fn check_leader_epoch(current: i32, epoch: i32) -> Result<(), ResponseError> {
    match current {
        c if c < 0 || c == epoch => Ok(()),
        c if c > epoch => Err(ResponseError::UnknownLeaderEpoch),
        _ => Err(ResponseError::FencedLeaderEpoch),
    }
}

/// Where a partition lives, as Metadata and DescribeTopicPartitions tell clients.
pub struct PartitionPlacement {
    /// -1 while no replica can lead.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// Replicas whose log failed (Metadata's `offline_replicas`).
    pub offline: Vec<i32>,
}

/// Partition placements: on a single node this node leads every partition,
/// its only replica; on a cluster the metadata log says.
pub struct Placements {
    node: i32,
    view: Option<Arc<sluice_cluster::ClusterView>>,
}

impl Placements {
    pub fn of(shard: &Shard) -> Placements {
        Placements { node: shard.config.node_id, view: shard.cluster() }
    }

    pub fn partition(&self, topic: &TopicMeta, partition: i32) -> PartitionPlacement {
        let placed = self.view.as_ref().and_then(|v| v.topics.get(&*topic.name)).and_then(|t| {
            let id = uuid::Uuid::parse_str(&t.id).ok()?;
            (id == topic.id).then_some(t)?.partitions.get(usize::try_from(partition).ok()?)
        });
        match placed {
            Some(p) => {
                // A fenced broker leads nothing clients can reach: with no other
                // replica to take over, the partition is offline until it is back.
                let live =
                    |id: &i32| self.view.as_ref().is_some_and(|v| v.brokers.iter().any(|b| b.id == *id && !b.fenced));
                PartitionPlacement {
                    leader: if live(&p.leader) { p.leader } else { -1 },
                    leader_epoch: p.leader_epoch,
                    replicas: p.replicas.clone(),
                    isr: p.isr.iter().copied().filter(live).collect(),
                    offline: p.failed.clone(),
                }
            }
            // A cluster's topic the view does not hold (yet): the partitions
            // this node leads are its own; the others' leaders are not known here.
            None if self.view.is_some() && topic.owner(partition).is_none() => PartitionPlacement {
                leader: -1,
                leader_epoch: crate::storage::log::LEADER_EPOCH,
                replicas: Vec::new(),
                isr: Vec::new(),
                offline: Vec::new(),
            },
            None => PartitionPlacement {
                leader: self.node,
                leader_epoch: crate::storage::log::LEADER_EPOCH,
                replicas: vec![self.node],
                isr: vec![self.node],
                offline: Vec::new(),
            },
        }
    }
}
