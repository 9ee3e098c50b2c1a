//! The console's JSON API under `/api/`. Reads come from the shards'
//! snapshots and the coordinators; every action (create or delete a topic,
//! alter a config, delete records, delete a group, reset its offsets) is the
//! Kafka request an admin client would send, run by the same handler, so it
//! is validated the same way and fails with the same error.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::StrBytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::metrics::Scrape;
use super::Admin;
use crate::constants::{CONSOLE_READ_BYTES_MAX, CONSOLE_RECORDS_MAX};
use crate::handlers;
use crate::protocol::{versions, ResponseError};
use crate::router::ReadPart;
use crate::security::principal::KafkaPrincipal;
use crate::server::session::{RequestContext, Session};

/// An API failure: HTTP status, Kafka error code (0 when none fits) and text.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: i16,
    pub message: String,
}

impl ApiError {
    fn kafka(code: i16, message: Option<String>) -> ApiError {
        let status = match ResponseError::try_from_code(code) {
            Some(ResponseError::UnknownTopicOrPartition | ResponseError::GroupIdNotFound) => 404,
            Some(ResponseError::TopicAlreadyExists | ResponseError::NonEmptyGroup) => 409,
            Some(ResponseError::UnknownServerError | ResponseError::KafkaStorageError) => 500,
            Some(ResponseError::CoordinatorNotAvailable | ResponseError::NotController) => 503,
            _ => 400,
        };
        let message = message.filter(|m| !m.is_empty()).unwrap_or_else(|| error_name(code));
        ApiError { status, code, message }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError { status: 400, code: ResponseError::InvalidRequest.code(), message: message.into() }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError { status: 404, code: 0, message: message.into() }
    }

    fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError { status: 503, code: ResponseError::CoordinatorNotAvailable.code(), message: message.into() }
    }

    pub fn body(&self) -> Value {
        json!({ "error_code": self.code, "error": error_name(self.code), "message": self.message })
    }
}

/// Kafka's name of an error code, as its tools print it: `TOPIC_ALREADY_EXISTS`.
pub fn error_name(code: i16) -> String {
    let Some(error) = ResponseError::try_from_code(code) else { return "NONE".into() };
    let camel = error.to_string();
    if camel.starts_with("Unknown error code") {
        return format!("ERROR_{code}");
    }
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

type ApiResult = Result<Value, ApiError>;

/// Fails with the Kafka error `code` unless it is 0.
fn check(code: i16, message: Option<&StrBytes>) -> Result<(), ApiError> {
    if code == 0 {
        Ok(())
    } else {
        Err(ApiError::kafka(code, message.map(|m| m.to_string())))
    }
}

/// The console's own request, at the highest version served. With an
/// authorizer the console acts as `User:sluice-console` from the admin
/// listener's address, and needs ACLs (or `super.users`) like any client.
/// The principal the console acts as.
pub const CONSOLE_PRINCIPAL_NAME: &str = "sluice-console";

fn context(admin: &Admin, api: ApiKey) -> RequestContext {
    let version = versions::supported(api).map(|r| r.max).unwrap_or(0);
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_client_id(Some(StrBytes::from_static_str("sluice-console")));
    let session = Session::new(admin.console.clone(), admin.address, KafkaPrincipal::user(CONSOLE_PRINCIPAL_NAME));
    RequestContext { header, session: Rc::new(session), turn: Default::default() }
}

fn name(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// Routes one API call; `segments` is the path after `/api/`.
pub async fn handle(admin: &Admin, method: &hyper::Method, segments: &[String], query: &str, body: &[u8]) -> ApiResult {
    use hyper::Method as M;
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (method, s.as_slice()) {
        (&M::GET, ["overview"]) => overview(admin).await,
        (&M::GET, ["topics"]) => topics(admin).await,
        (&M::POST, ["topics"]) => create_topic(admin, parse(body)?).await,
        (&M::GET, ["topics", topic]) => topic_detail(admin, topic).await,
        (&M::DELETE, ["topics", topic]) => delete_topic(admin, topic).await,
        (&M::POST, ["topics", topic, "configs"]) => alter_configs(admin, topic, parse(body)?).await,
        (&M::POST, ["topics", topic, "delete-records"]) => delete_records(admin, topic, parse(body)?).await,
        (&M::GET, ["topics", topic, "partitions", partition, "records"]) => {
            let partition = partition.parse().map_err(|_| ApiError::bad_request("partition must be a number"))?;
            records(admin, topic, partition, &Query::parse(query)).await
        }
        (&M::GET, ["groups"]) => groups(admin).await,
        (&M::GET, ["groups", group]) => group_detail(admin, group).await,
        (&M::DELETE, ["groups", group]) => delete_group(admin, group).await,
        (&M::POST, ["groups", group, "reset-offsets"]) => reset_offsets(admin, group, parse(body)?).await,
        (&M::GET, ["transactions"]) => transactions(admin).await,
        (&M::GET, ["clients"]) => clients(admin).await,
        _ => Err(ApiError::not_found("no such API")),
    }
}

/// Client telemetry (KIP-714): the client metrics subscriptions, and each
/// client instance that asked for one with the latest values it pushed.
async fn clients(admin: &Admin) -> ApiResult {
    let telemetry = super::metrics::telemetry(&admin.shard)
        .await
        .ok_or_else(|| ApiError::unavailable("the controller's shard did not answer"))?;
    let catalog = admin.shard.catalog();
    let subscriptions: Vec<Value> =
        catalog.client_metrics.iter().map(|(name, configs)| json!({ "name": name, "configs": configs })).collect();
    let clients: Vec<Value> = telemetry
        .clients
        .iter()
        .map(|c| {
            let metrics: Vec<Value> = c
                .series
                .iter()
                .map(|(name, attributes, value)| json!({ "name": name, "attributes": attributes, "value": value }))
                .collect();
            let resource: BTreeMap<&str, &str> = c.resource.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            json!({
                "client_instance_id": c.client_instance_id,
                "client_id": c.client_id,
                "software_name": c.software_name,
                "software_version": c.software_version,
                "source_address": c.source_address,
                "push_interval_ms": c.push_interval_ms,
                "subscribed_metrics": c.subscribed_metrics,
                "pushes": c.pushes,
                "last_push_ms": c.last_push_ms,
                "terminating": c.terminating,
                "resource": resource,
                "metrics": metrics,
            })
        })
        .collect();
    let c = telemetry.counters;
    Ok(json!({
        "subscriptions": subscriptions,
        "clients": clients,
        "counters": {
            "pushes": c.pushes_accepted,
            "unknown_subscription_requests": c.unknown_subscription_requests,
            "throttled_requests": c.throttled_requests,
            "errors": c.export_errors,
            "series_dropped": c.series_dropped,
        },
    }))
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}")))
}

/// `key=value` pairs of a query string, percent-decoded.
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(query: &str) -> Query {
        Query(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (super::percent_decode(k), super::percent_decode(v))
                })
                .collect(),
        )
    }

    fn number(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.0
            .get(key)
            .map(|v| v.parse().map_err(|_| ApiError::bad_request(format!("{key} must be a number"))))
            .transpose()
    }
}

/// Every shard's snapshot; a shard that does not answer fails the call.
async fn snapshots(admin: &Admin) -> Result<Scrape, ApiError> {
    let shard = &admin.shard;
    let scrape = super::metrics::gather(shard, std::time::Instant::now()).await;
    if let Some(missing) = scrape.missing.first() {
        return Err(ApiError::unavailable(format!("shard {missing} did not answer")));
    }
    Ok(scrape)
}

/// Latency percentiles of the last whole second, in milliseconds.
fn latency_json(scrape: &Scrape, api: ApiKey) -> Value {
    let mut merged = sluice_core::metrics::empty_snapshot();
    for s in &scrape.shards {
        for a in s.counters.apis.iter().filter(|a| a.api_key == api as i16) {
            if let Some(last_second) = &a.total_last_second {
                sluice_core::metrics::merge(&mut merged, last_second);
            }
        }
    }
    let ms = |q: f64| (!merged.is_empty()).then(|| merged.value_at_quantile(q) as f64 / 1000.0);
    json!({ "count": merged.len(), "p50": ms(0.5), "p99": ms(0.99), "p999": ms(0.999) })
}

async fn overview(admin: &Admin) -> ApiResult {
    let shard = &admin.shard;
    let scrape = snapshots(admin).await?;
    let catalog = shard.catalog();
    let sum = |f: fn(&crate::metrics::ShardSnapshot) -> u64| scrape.shards.iter().map(f).sum::<u64>();
    let shards: Vec<Value> = scrape
        .shards
        .iter()
        .map(|s| {
            json!({
                "id": s.shard,
                "partitions": s.partitions.len(),
                "connections": s.counters.connections_open,
                "busy_ratio": s.counters.busy_last_second,
                "log_bytes": s.partitions.iter().map(|p| p.size_bytes).sum::<u64>(),
            })
        })
        .collect();
    let (total_bytes, available_bytes) = disk_space(&shard.config.data_dir);
    let listeners: Vec<serde_json::Value> = shard
        .config
        .listeners
        .iter()
        .map(|l| json!({ "name": l.name, "protocol": l.protocol.name(), "address": l.bind.to_string() }))
        .collect();
    Ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "cluster_id": &*shard.cluster_id,
        "node_id": shard.config.node_id,
        "uptime_ms": admin.started.elapsed().as_millis() as u64,
        "data_dir": shard.config.data_dir.display().to_string(),
        "listeners": listeners,
        "admin_address": admin.address.to_string(),
        "shards": shards,
        "topics": catalog.topics.len(),
        "partitions": catalog.topics.values().map(|t| t.partitions() as u64).sum::<u64>(),
        "log_bytes": sum(|s| s.partitions.iter().map(|p| p.size_bytes).sum()),
        "disk": { "total_bytes": total_bytes, "available_bytes": available_bytes },
        "totals": {
            "messages_in": sum(|s| s.counters.messages_in),
            "bytes_in": sum(|s| s.counters.bytes_in),
            "messages_out": sum(|s| s.counters.messages_out),
            "bytes_out": sum(|s| s.counters.bytes_out),
            "produce_requests": sum(|s| s.counters.produce_requests),
            "fetch_requests": sum(|s| s.counters.fetch_requests),
            "failed_produce_requests": sum(|s| s.counters.failed_produce_requests),
            "failed_fetch_requests": sum(|s| s.counters.failed_fetch_requests),
        },
        "latency_ms": { "produce": latency_json(&scrape, ApiKey::Produce), "fetch": latency_json(&scrape, ApiKey::Fetch) },
    }))
}

/// Total and available bytes of the file system holding `dir`.
fn disk_space(dir: &std::path::Path) -> (Option<u64>, Option<u64>) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return (None, None) };
    // SAFETY: statvfs fills the zeroed struct for a NUL-terminated path.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return (None, None);
    }
    let block = stat.f_frsize as u64;
    (Some(stat.f_blocks as u64 * block), Some(stat.f_bavail as u64 * block))
}

async fn topics(admin: &Admin) -> ApiResult {
    let shard = &admin.shard;
    let scrape = snapshots(admin).await?;
    let mut sizes: HashMap<&str, (u64, i64)> = HashMap::new();
    for p in scrape.shards.iter().flat_map(|s| &s.partitions) {
        let entry = sizes.entry(p.topic.as_str()).or_default();
        entry.0 += p.size_bytes;
        entry.1 += p.high_watermark - p.log_start_offset;
    }
    let catalog = shard.catalog();
    let topics: Vec<Value> = catalog
        .topics
        .values()
        .map(|t| {
            let (size, messages) = sizes.get(&*t.name).copied().unwrap_or_default();
            json!({ "name": &*t.name, "partitions": t.partitions(), "internal": false, "messages": messages, "size_bytes": size })
        })
        .collect();
    Ok(json!({ "topics": topics }))
}

fn config_source(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        _ => "UNKNOWN",
    }
}

async fn topic_detail(admin: &Admin, topic: &str) -> ApiResult {
    let shard = &admin.shard;
    use kafka_protocol::messages::describe_configs_request::{DescribeConfigsRequest, DescribeConfigsResource};
    let request = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(name(topic))
        .with_configuration_keys(None)]);
    let response = handlers::describe_configs::handle(shard, &context(admin, ApiKey::DescribeConfigs), request).await;
    let result = response.results.first().ok_or_else(|| ApiError::bad_request("no result"))?;
    check(result.error_code, result.error_message.as_ref())?;
    let configs: Vec<Value> = result
        .configs
        .iter()
        .map(|c| {
            json!({
                "name": c.name.to_string(),
                "value": c.value.as_ref().map(|v| v.to_string()),
                "source": config_source(c.config_source),
                "read_only": c.read_only,
                "sensitive": c.is_sensitive,
            })
        })
        .collect();
    let catalog = shard.catalog();
    let meta =
        catalog.topic(topic).ok_or_else(|| ApiError::kafka(ResponseError::UnknownTopicOrPartition.code(), None))?;
    let scrape = snapshots(admin).await?;
    let partitions: Vec<Value> = scrape
        .shards
        .iter()
        .flat_map(|s| s.partitions.iter().filter(|p| p.topic == topic).map(move |p| (s.shard, p)))
        .map(|(owner, p)| {
            let row = json!({
                "partition": p.partition,
                "shard": owner,
                "log_start_offset": p.log_start_offset,
                "high_watermark": p.high_watermark,
                "log_end_offset": p.log_end_offset,
                "last_stable_offset": p.last_stable_offset,
                "size_bytes": p.size_bytes,
                "segments": p.segments,
            });
            (p.partition, row)
        })
        .collect::<BTreeMap<i32, Value>>()
        .into_values()
        .collect();
    Ok(json!({ "name": &*meta.name, "id": meta.id.to_string(), "partitions": partitions, "configs": configs }))
}

#[derive(Deserialize)]
struct CreateTopic {
    name: String,
    partitions: Option<i32>,
    #[serde(default)]
    configs: BTreeMap<String, String>,
}

async fn create_topic(admin: &Admin, body: CreateTopic) -> ApiResult {
    let shard = &admin.shard;
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig, CreateTopicsRequest};
    let configs =
        body.configs.iter().map(|(k, v)| CreatableTopicConfig::default().with_name(name(k)).with_value(Some(name(v))));
    let topic = CreatableTopic::default()
        .with_name(name(&body.name).into())
        .with_num_partitions(body.partitions.unwrap_or(-1))
        .with_replication_factor(-1)
        .with_configs(configs.collect());
    let request = CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(30_000);
    let response = handlers::create_topics::handle(shard, &context(admin, ApiKey::CreateTopics), request).await;
    let result = response.topics.first().ok_or_else(|| ApiError::bad_request("no result"))?;
    check(result.error_code, result.error_message.as_ref())?;
    Ok(json!({ "ok": true, "name": body.name }))
}

async fn delete_topic(admin: &Admin, topic: &str) -> ApiResult {
    let shard = &admin.shard;
    use kafka_protocol::messages::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
    let request = DeleteTopicsRequest::default()
        .with_topics(vec![DeleteTopicState::default().with_name(Some(name(topic).into()))])
        .with_timeout_ms(30_000);
    let response = handlers::delete_topics::handle(shard, &context(admin, ApiKey::DeleteTopics), request).await;
    let result = response.responses.first().ok_or_else(|| ApiError::bad_request("no result"))?;
    check(result.error_code, result.error_message.as_ref())?;
    Ok(json!({ "ok": true }))
}

#[derive(Deserialize)]
struct AlterConfigs {
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    delete: Vec<String>,
}

async fn alter_configs(admin: &Admin, topic: &str, body: AlterConfigs) -> ApiResult {
    let shard = &admin.shard;
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
    };
    const SET: i8 = 0;
    const DELETE: i8 = 1;
    let sets = body.set.iter().map(|(k, v)| (k, SET, Some(name(v))));
    let deletes = body.delete.iter().map(|k| (k, DELETE, None));
    let configs: Vec<AlterableConfig> = sets
        .chain(deletes)
        .map(|(k, op, value)| AlterableConfig::default().with_name(name(k)).with_config_operation(op).with_value(value))
        .collect();
    if configs.is_empty() {
        return Err(ApiError::bad_request("nothing to alter"));
    }
    let resource =
        AlterConfigsResource::default().with_resource_type(2).with_resource_name(name(topic)).with_configs(configs);
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![resource]);
    let response =
        handlers::incremental_alter_configs::handle(shard, &context(admin, ApiKey::IncrementalAlterConfigs), request)
            .await;
    let result = response.responses.first().ok_or_else(|| ApiError::bad_request("no result"))?;
    check(result.error_code, result.error_message.as_ref())?;
    Ok(json!({ "ok": true }))
}

#[derive(Deserialize)]
struct DeleteRecords {
    partition: i32,
    /// -1: up to the high watermark.
    offset: i64,
}

async fn delete_records(admin: &Admin, topic: &str, body: DeleteRecords) -> ApiResult {
    let shard = &admin.shard;
    use kafka_protocol::messages::delete_records_request::{
        DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic,
    };
    let partition = DeleteRecordsPartition::default().with_partition_index(body.partition).with_offset(body.offset);
    let request = DeleteRecordsRequest::default()
        .with_topics(vec![DeleteRecordsTopic::default().with_name(name(topic).into()).with_partitions(vec![partition])])
        .with_timeout_ms(30_000);
    let response = handlers::delete_records::handle(shard, &context(admin, ApiKey::DeleteRecords), request).await;
    let result =
        response.topics.first().and_then(|t| t.partitions.first()).ok_or_else(|| ApiError::bad_request("no result"))?;
    check(result.error_code, None)?;
    Ok(json!({ "ok": true, "low_watermark": result.low_watermark }))
}

/// ListOffsets through its handler: the offset for `timestamp` (-2 earliest,
/// -1 latest) of each partition, `None` when no record is that new.
async fn list_offsets(
    admin: &Admin,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
) -> Result<Vec<(i32, Option<i64>)>, ApiError> {
    let shard = &admin.shard;
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic};
    let asked =
        partitions.iter().map(|p| ListOffsetsPartition::default().with_partition_index(*p).with_timestamp(timestamp));
    let request = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![ListOffsetsTopic::default().with_name(name(topic).into()).with_partitions(asked.collect())]);
    let response = handlers::list_offsets::handle(shard, &context(admin, ApiKey::ListOffsets), request).await;
    let mut out = Vec::new();
    for p in response.topics.iter().flat_map(|t| &t.partitions) {
        check(p.error_code, None)?;
        out.push((p.partition_index, (p.offset >= 0).then_some(p.offset)));
    }
    Ok(out)
}

async fn records(admin: &Admin, topic: &str, partition: i32, query: &Query) -> ApiResult {
    let shard = &admin.shard;
    let catalog = shard.catalog();
    let meta =
        catalog.topic(topic).ok_or_else(|| ApiError::kafka(ResponseError::UnknownTopicOrPartition.code(), None))?;
    let owner =
        meta.owner(partition).ok_or_else(|| ApiError::kafka(ResponseError::UnknownTopicOrPartition.code(), None))?;
    let limit = query.number("limit")?.unwrap_or(50).clamp(1, CONSOLE_RECORDS_MAX as i64) as usize;
    let topic_name: Arc<str> = meta.name.clone();
    let key = (topic_name.clone(), partition);
    let offsets = shard
        .invoke_on(owner, move |s| async move { s.offsets_local(vec![key]).await })
        .await
        .ok()
        .and_then(|mut v| v.pop())
        .and_then(Result::ok)
        .ok_or_else(|| ApiError::unavailable("partition owner did not answer"))?;
    let start = if let Some(timestamp) = query.number("timestamp")? {
        list_offsets(admin, topic, &[partition], timestamp)
            .await?
            .first()
            .and_then(|(_, o)| *o)
            .unwrap_or(offsets.high_watermark)
    } else if let Some(offset) = query.number("offset")? {
        offset
    } else if query.0.get("from").map(String::as_str) == Some("latest") {
        (offsets.high_watermark - limit as i64).max(offsets.log_start_offset)
    } else {
        offsets.log_start_offset
    };
    let start = start.clamp(offsets.log_start_offset, offsets.high_watermark);
    let mut out = Vec::new();
    let mut shown = 0usize;
    let mut next = start;
    // Reads as a fetch does (the same storage path), a bounded number of times.
    for _ in 0..16 {
        if out.len() >= limit || shown >= super::records::SHOWN_BYTES_PER_PAGE_MAX || next >= offsets.high_watermark {
            break;
        }
        let part = ReadPart {
            topic: topic_name.clone(),
            partition,
            fetch_offset: next,
            max_bytes: CONSOLE_READ_BYTES_MAX,
            committed: false,
        };
        let read = shard
            .invoke_on(owner, move |s| async move { s.read_local(vec![part]).await })
            .await
            .ok()
            .and_then(|mut v| v.pop())
            .ok_or_else(|| ApiError::unavailable("partition owner did not answer"))?
            .map_err(|e| ApiError::kafka(handlers::errors::route_error_code(&e).code(), Some(e.to_string())))?;
        if read.chunks.is_empty() {
            break;
        }
        let after = super::records::decode(&read.chunks, next, limit, &mut out, &mut shown);
        if after <= next {
            break;
        }
        next = after;
    }
    Ok(json!({
        "topic": topic,
        "partition": partition,
        "log_start_offset": offsets.log_start_offset,
        "high_watermark": offsets.high_watermark,
        "last_stable_offset": offsets.last_stable_offset,
        "log_end_offset": offsets.log_end_offset,
        "next_offset": next,
        "records": out,
    }))
}

/// Group ids with their listing (protocol type, state) from ListGroups.
async fn list_groups(admin: &Admin) -> Vec<(String, String, String)> {
    let shard = &admin.shard;
    let request = kafka_protocol::messages::ListGroupsRequest::default();
    let response = handlers::list_groups::handle(shard, &context(admin, ApiKey::ListGroups), request).await;
    response
        .groups
        .iter()
        .map(|g| (g.group_id.to_string(), g.protocol_type.to_string(), g.group_state.to_string()))
        .collect()
}

async fn describe_groups(
    admin: &Admin,
    ids: Vec<String>,
) -> Vec<kafka_protocol::messages::describe_groups_response::DescribedGroup> {
    let shard = &admin.shard;
    let request = kafka_protocol::messages::DescribeGroupsRequest::default()
        .with_groups(ids.iter().map(|g| name(g).into()).collect());
    handlers::describe_groups::handle(shard, &context(admin, ApiKey::DescribeGroups), request).await.groups
}

/// Committed offsets, log end and lag of a group's partitions.
fn group_offsets(scrape: &Scrape, group: &str) -> (Vec<Value>, i64) {
    let high_watermarks: HashMap<(&str, i32), i64> = scrape
        .shards
        .iter()
        .flat_map(|s| s.partitions.iter().map(|p| ((p.topic.as_str(), p.partition), p.high_watermark)))
        .collect();
    let mut rows: Vec<&crate::metrics::GroupOffsetSnapshot> =
        scrape.shards.iter().flat_map(|s| &s.group_offsets).filter(|o| o.group == group).collect();
    rows.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let mut total = 0;
    let rows = rows
        .into_iter()
        .map(|o| {
            let end = high_watermarks.get(&(o.topic.as_str(), o.partition)).copied();
            let lag = end.map(|e| (e - o.offset).max(0));
            total += lag.unwrap_or(0);
            json!({ "topic": o.topic, "partition": o.partition, "committed_offset": o.offset, "log_end_offset": end, "lag": lag })
        })
        .collect();
    (rows, total)
}

async fn groups(admin: &Admin) -> ApiResult {
    let listed = list_groups(admin).await;
    let described = describe_groups(admin, listed.iter().map(|g| g.0.clone()).collect()).await;
    let scrape = snapshots(admin).await?;
    let groups: Vec<Value> = listed
        .iter()
        .map(|(id, protocol_type, state)| {
            let d = described.iter().find(|d| d.group_id.as_str() == id);
            json!({
                "group_id": id,
                "state": state,
                "protocol_type": protocol_type,
                "protocol": d.map(|d| d.protocol_data.to_string()).unwrap_or_default(),
                "members": d.map(|d| d.members.len()).unwrap_or(0),
                "total_lag": group_offsets(&scrape, id).1,
            })
        })
        .collect();
    Ok(json!({ "groups": groups }))
}

/// A consumer member's assignment as topic → partitions (the consumer protocol's encoding).
fn assignment_json(bytes: &bytes::Bytes) -> Vec<Value> {
    use kafka_protocol::messages::ConsumerProtocolAssignment;
    use kafka_protocol::protocol::Decodable;
    let mut buf = bytes.clone();
    if buf.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    bytes::Buf::advance(&mut buf, 2);
    match ConsumerProtocolAssignment::decode(&mut buf, version.clamp(0, 3)) {
        Ok(a) => a
            .assigned_partitions
            .iter()
            .map(|t| json!({ "topic": t.topic.to_string(), "partitions": t.partitions }))
            .collect(),
        Err(_) => Vec::new(),
    }
}

async fn group_detail(admin: &Admin, group: &str) -> ApiResult {
    let described = describe_groups(admin, vec![group.to_string()]).await;
    let d = described.first().ok_or_else(|| ApiError::bad_request("no result"))?;
    check(d.error_code, None)?;
    let scrape = snapshots(admin).await?;
    let (offsets, total_lag) = group_offsets(&scrape, group);
    if d.group_state.as_str() == "Dead" && offsets.is_empty() {
        return Err(ApiError::kafka(
            ResponseError::GroupIdNotFound.code(),
            Some(format!("group {group} does not exist")),
        ));
    }
    let consumer = d.protocol_type.as_str() == "consumer";
    let members: Vec<Value> = d
        .members
        .iter()
        .map(|m| {
            json!({
                "member_id": m.member_id.to_string(),
                "group_instance_id": m.group_instance_id.as_ref().map(|i| i.to_string()),
                "client_id": m.client_id.to_string(),
                "client_host": m.client_host.to_string(),
                "assignments": if consumer { assignment_json(&m.member_assignment) } else { Vec::new() },
            })
        })
        .collect();
    Ok(json!({
        "group_id": group,
        "state": d.group_state.to_string(),
        "protocol_type": d.protocol_type.to_string(),
        "protocol": d.protocol_data.to_string(),
        "members": members,
        "offsets": offsets,
        "total_lag": total_lag,
    }))
}

async fn delete_group(admin: &Admin, group: &str) -> ApiResult {
    let shard = &admin.shard;
    let request = kafka_protocol::messages::DeleteGroupsRequest::default().with_groups_names(vec![name(group).into()]);
    let response = handlers::delete_groups::handle(shard, &context(admin, ApiKey::DeleteGroups), request).await;
    let result = response.results.first().ok_or_else(|| ApiError::bad_request("no result"))?;
    check(result.error_code, None)?;
    Ok(json!({ "ok": true }))
}

#[derive(Deserialize)]
struct ResetOffsets {
    topic: Option<String>,
    partitions: Option<Vec<i32>>,
    /// earliest, latest, offset, timestamp or shift.
    mode: String,
    value: Option<i64>,
}

/// `kafka-consumer-groups.sh --reset-offsets --execute`: only for a group
/// with no members; the new offsets are committed with OffsetCommit.
async fn reset_offsets(admin: &Admin, group: &str, body: ResetOffsets) -> ApiResult {
    let shard = &admin.shard;
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    let described = describe_groups(admin, vec![group.to_string()]).await;
    let state = described.first().map(|d| d.group_state.to_string()).unwrap_or_default();
    if !matches!(state.as_str(), "Empty" | "Dead") {
        return Err(ApiError::kafka(
            ResponseError::NonEmptyGroup.code(),
            Some(format!(
                "Assignments can only be reset if the group '{group}' is inactive, but the current state is {state}."
            )),
        ));
    }
    let value = || body.value.ok_or_else(|| ApiError::bad_request(format!("mode {} needs a value", body.mode)));
    let scrape = snapshots(admin).await?;
    let committed: HashMap<(String, i32), i64> = scrape
        .shards
        .iter()
        .flat_map(|s| &s.group_offsets)
        .filter(|o| o.group == group)
        .map(|o| ((o.topic.clone(), o.partition), o.offset))
        .collect();
    // The partitions to reset: those asked for, or every one the group has offsets for.
    let mut targets: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    match &body.topic {
        Some(topic) => {
            let catalog = shard.catalog();
            let meta = catalog
                .topic(topic)
                .ok_or_else(|| ApiError::kafka(ResponseError::UnknownTopicOrPartition.code(), None))?;
            let all: Vec<i32> = (0..meta.partitions()).collect();
            targets.insert(topic.clone(), body.partitions.clone().unwrap_or(all));
        }
        None => {
            for (topic, partition) in committed.keys() {
                targets.entry(topic.clone()).or_default().push(*partition);
            }
        }
    }
    if targets.is_empty() {
        return Err(ApiError::bad_request("the group has no committed offsets; name a topic"));
    }
    let mut new_offsets: Vec<(String, i32, i64)> = Vec::new();
    for (topic, partitions) in &targets {
        let earliest = list_offsets(admin, topic, partitions, -2).await?;
        let latest = list_offsets(admin, topic, partitions, -1).await?;
        let at_time = match body.mode.as_str() {
            "timestamp" => Some(list_offsets(admin, topic, partitions, value()?).await?),
            _ => None,
        };
        for (i, partition) in partitions.iter().enumerate() {
            let low = earliest.get(i).and_then(|e| e.1).unwrap_or(0);
            let high = latest.get(i).and_then(|e| e.1).unwrap_or(low);
            let current = committed.get(&(topic.clone(), *partition)).copied();
            let offset = match body.mode.as_str() {
                "earliest" => low,
                "latest" => high,
                "offset" => value()?,
                "shift" => current.unwrap_or(low) + value()?,
                // No record that new: the end, as the tool does.
                "timestamp" => at_time.as_ref().and_then(|t| t.get(i)).and_then(|t| t.1).unwrap_or(high),
                other => return Err(ApiError::bad_request(format!("unknown mode {other:?}"))),
            };
            new_offsets.push((topic.clone(), *partition, offset.clamp(low, high)));
        }
    }
    let topics = targets
        .keys()
        .map(|topic| {
            let partitions = new_offsets
                .iter()
                .filter(|(t, _, _)| t == topic)
                .map(|(_, p, o)| {
                    OffsetCommitRequestPartition::default().with_partition_index(*p).with_committed_offset(*o)
                })
                .collect();
            OffsetCommitRequestTopic::default().with_name(name(topic).into()).with_partitions(partitions)
        })
        .collect();
    let request = OffsetCommitRequest::default()
        .with_group_id(name(group).into())
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::default())
        .with_topics(topics);
    let response = handlers::offset_commit::handle(shard, &context(admin, ApiKey::OffsetCommit), request).await;
    for p in response.topics.iter().flat_map(|t| &t.partitions) {
        check(p.error_code, None)?;
    }
    let offsets: Vec<Value> =
        new_offsets.iter().map(|(t, p, o)| json!({ "topic": t, "partition": p, "offset": o })).collect();
    Ok(json!({ "ok": true, "offsets": offsets }))
}

async fn transactions(admin: &Admin) -> ApiResult {
    let shard = &admin.shard;
    use kafka_protocol::messages::describe_producers_request::{DescribeProducersRequest, TopicRequest};
    use kafka_protocol::messages::{DescribeTransactionsRequest, ListTransactionsRequest};
    let listed = handlers::list_transactions::handle(
        shard,
        &context(admin, ApiKey::ListTransactions),
        ListTransactionsRequest::default(),
    )
    .await;
    let ids: Vec<_> = listed.transaction_states.iter().map(|t| t.transactional_id.clone()).collect();
    let described = if ids.is_empty() {
        Vec::new()
    } else {
        let request = DescribeTransactionsRequest::default().with_transactional_ids(ids);
        handlers::describe_transactions::handle(shard, &context(admin, ApiKey::DescribeTransactions), request)
            .await
            .transaction_states
    };
    let transactions: Vec<Value> = described
        .iter()
        .filter(|t| t.error_code == 0)
        .map(|t| {
            let partitions: Vec<Value> = t
                .topics
                .iter()
                .flat_map(|topic| {
                    topic.partitions.iter().map(move |p| json!({ "topic": topic.topic.to_string(), "partition": p }))
                })
                .collect();
            json!({
                "transactional_id": t.transactional_id.to_string(),
                "state": t.transaction_state.to_string(),
                "producer_id": i64::from(t.producer_id),
                "producer_epoch": t.producer_epoch,
                "timeout_ms": t.transaction_timeout_ms,
                "start_ms": t.transaction_start_time_ms,
                "partitions": partitions,
            })
        })
        .collect();
    let catalog = shard.catalog();
    let topics: Vec<TopicRequest> = catalog
        .topics
        .values()
        .map(|t| {
            TopicRequest::default()
                .with_name(name(&t.name).into())
                .with_partition_indexes((0..t.partitions()).collect())
        })
        .collect();
    let request = DescribeProducersRequest::default().with_topics(topics);
    let response =
        handlers::describe_producers::handle(shard, &context(admin, ApiKey::DescribeProducers), request).await;
    let producers: Vec<Value> = response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
        .flat_map(|(t, p)| {
            p.active_producers.iter().map(move |a| {
                json!({
                    "topic": t.name.to_string(),
                    "partition": p.partition_index,
                    "producer_id": i64::from(a.producer_id),
                    "producer_epoch": a.producer_epoch,
                    "last_sequence": a.last_sequence,
                    "last_timestamp": a.last_timestamp,
                    "current_txn_start_offset": a.current_txn_start_offset,
                })
            })
        })
        .collect();
    Ok(json!({ "transactions": transactions, "producers": producers }))
}
