//! The registry's durable side: the compacted `_schemas` topic, created on
//! first start, written through the broker's own Produce handler (acks=all:
//! fsynced before the registry answers) and read back from the partition's
//! owner shard. The registry's state is always the replay of the topic up
//! to some offset; before any answer it catches up with what the topic has
//! beyond it, so records written by anyone else are seen too.

use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig, CreateTopicsRequest};
use kafka_protocol::messages::produce_request::{PartitionProduceData, ProduceRequest, TopicProduceData};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use sluice_registry::records::Record;
use sluice_registry::RegistryError;

use crate::constants::SCHEMA_REGISTRY_READ_BYTES_MAX;
use crate::handlers;
use crate::protocol::builder::BatchBuilder;
use crate::protocol::{batch, versions, ResponseError};
use crate::router::ReadPart;
use crate::security::principal::KafkaPrincipal;
use crate::server::listener::ListenerRuntime;
use crate::server::session::{RequestContext, Session};
use crate::shard::Shard;

/// Confluent's topic name, so a `_schemas` topic carries over.
pub const SCHEMAS_TOPIC: &str = "_schemas";
/// The principal the registry's own Kafka requests act as (with an authorizer it needs ACLs on `_schemas`).
pub const REGISTRY_PRINCIPAL_NAME: &str = "sluice-schema-registry";
/// The highest Produce version that names topics (v13 names them by id).
const PRODUCE_BY_NAME_VERSION_MAX: i16 = 12;
/// How long the registry's produce waits for its write to be synced.
const PRODUCE_TIMEOUT_MS: i32 = 30_000;

pub struct Store {
    shard: Rc<Shard>,
    listener: Rc<ListenerRuntime>,
    address: std::net::SocketAddr,
}

fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn store_error(what: &str, code: i16) -> RegistryError {
    let name = ResponseError::try_from_code(code).map_or_else(|| format!("error {code}"), |e| e.to_string());
    RegistryError::Store(format!("{what}: {name}"))
}

impl Store {
    pub fn new(shard: Rc<Shard>, listener: Rc<ListenerRuntime>, address: std::net::SocketAddr) -> Store {
        Store { shard, listener, address }
    }

    /// A request of the registry's own at `api`'s highest version, or at
    /// `version_max` when that is lower (Produce names its topic up to v12).
    fn context(&self, api: ApiKey, version_max: i16) -> RequestContext {
        let version = versions::supported(api).map(|r| r.max).unwrap_or(0).min(version_max);
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_client_id(Some(StrBytes::from_static_str(REGISTRY_PRINCIPAL_NAME)));
        let principal = KafkaPrincipal::user(REGISTRY_PRINCIPAL_NAME);
        let session = Session::new(self.listener.clone(), self.address, principal);
        RequestContext { header, session: Rc::new(session), turn: Default::default() }
    }

    /// Whether `_schemas` exists.
    pub fn exists(&self) -> bool {
        self.shard.catalog().topic(SCHEMAS_TOPIC).is_some()
    }

    /// Creates `_schemas` (one partition, compacted) unless it exists.
    pub async fn ensure_topic(&self) -> Result<(), RegistryError> {
        if self.shard.catalog().topic(SCHEMAS_TOPIC).is_some() {
            return Ok(());
        }
        let config =
            |k: &str, v: &str| CreatableTopicConfig::default().with_name(str_bytes(k)).with_value(Some(str_bytes(v)));
        let topic = CreatableTopic::default()
            .with_name(str_bytes(SCHEMAS_TOPIC).into())
            .with_num_partitions(1)
            .with_replication_factor(-1)
            .with_configs(vec![config("cleanup.policy", "compact")]);
        let request = CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(PRODUCE_TIMEOUT_MS);
        let response =
            handlers::create_topics::handle(&self.shard, &self.context(ApiKey::CreateTopics, i16::MAX), request).await;
        match response.topics.first().map(|t| t.error_code) {
            Some(0) => Ok(()),
            Some(code) if code == ResponseError::TopicAlreadyExists.code() => Ok(()),
            Some(code) => Err(store_error("creating _schemas", code)),
            None => Err(RegistryError::Store("creating _schemas: no answer".into())),
        }
    }

    /// Writes the records as one batch and waits until it is synced.
    pub async fn write(&self, records: &[Record]) -> Result<(), RegistryError> {
        let now_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let batch = records
            .iter()
            .fold(BatchBuilder::new(), |batch, r| {
                let (key, value) = r.encode();
                batch.record(Some(Bytes::from(key)), value.map(Bytes::from), now_ms)
            })
            .build()
            .map_err(RegistryError::Store)?;
        let partition = PartitionProduceData::default().with_index(0).with_records(Some(batch.freeze()));
        let topic =
            TopicProduceData::default().with_name(str_bytes(SCHEMAS_TOPIC).into()).with_partition_data(vec![partition]);
        let request =
            ProduceRequest::default().with_acks(-1).with_timeout_ms(PRODUCE_TIMEOUT_MS).with_topic_data(vec![topic]);
        let response = handlers::produce::handle(
            &self.shard,
            &self.context(ApiKey::Produce, PRODUCE_BY_NAME_VERSION_MAX),
            request,
        )
        .await
        .ok_or_else(|| RegistryError::Store("writing _schemas: no answer".into()))?;
        let code = response
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .map(|p| p.error_code)
            .ok_or_else(|| RegistryError::Store("writing _schemas: no answer".into()))?;
        if code != 0 {
            return Err(store_error("writing _schemas", code));
        }
        Ok(())
    }

    /// The records `_schemas` holds from `from` up to its last stable
    /// offset, and the offset after them. `reset` when `from` is below the
    /// log start (compaction or deleted records): the records are then
    /// those from the log start, and the state must be rebuilt from them.
    pub async fn read_from(&self, mut from: i64) -> Result<Catch, RegistryError> {
        let catalog = self.shard.catalog();
        let meta =
            catalog.topic(SCHEMAS_TOPIC).ok_or_else(|| RegistryError::Store("_schemas does not exist".into()))?;
        let owner = meta.owner(0).ok_or_else(|| RegistryError::Store("_schemas has no partition 0".into()))?;
        let topic: Arc<str> = meta.name.clone();
        let mut caught = Catch { records: Vec::new(), next: from, reset: false };
        loop {
            let part = ReadPart {
                topic: topic.clone(),
                partition: 0,
                fetch_offset: from,
                max_bytes: SCHEMA_REGISTRY_READ_BYTES_MAX as usize,
                committed: true,
            };
            let read = self
                .shard
                .invoke_on(owner, move |s| async move { s.read_local(vec![part]).await })
                .await
                .ok()
                .and_then(|mut v| v.pop())
                .ok_or_else(|| RegistryError::Store("the owner of _schemas did not answer".into()))?;
            let read = match read {
                Ok(read) => read,
                Err(e)
                    if handlers::errors::route_error_code(&e) == ResponseError::OffsetOutOfRange && !caught.reset =>
                {
                    caught = Catch { records: Vec::new(), next: 0, reset: true };
                    from = 0;
                    continue;
                }
                Err(e) => return Err(RegistryError::Store(format!("reading _schemas: {e}"))),
            };
            if from < read.log_start_offset {
                caught = Catch { records: Vec::new(), next: read.log_start_offset, reset: true };
                from = read.log_start_offset;
                continue;
            }
            let mut next = from;
            for chunk in &read.chunks {
                for (position, header) in batch::headers(chunk) {
                    let last = header.last_offset();
                    if !header.is_control() {
                        let mut one = chunk.slice(position..position + header.size_bytes);
                        let set = RecordBatchDecoder::decode_with_custom_compression(
                            &mut one,
                            Some(crate::admin::records::decompress),
                        )
                        .map_err(|e| {
                            RegistryError::Store(format!("reading _schemas at {}: {e}", header.base_offset))
                        })?;
                        for r in set.records.iter().filter(|r| r.offset >= from) {
                            let Some(key) = r.key.as_deref() else { continue };
                            match Record::decode(key, r.value.as_deref()) {
                                Ok(Some(record)) => caught.records.push(record),
                                Ok(None) => {}
                                Err(e) => tracing::warn!(offset = r.offset, error = %e, "_schemas record skipped"),
                            }
                        }
                    }
                    next = next.max(last + 1);
                }
            }
            caught.next = next.max(from);
            if next <= from || next >= read.last_stable_offset {
                return Ok(caught);
            }
            from = next;
        }
    }
}

/// What a read of `_schemas` found.
pub struct Catch {
    pub records: Vec<Record>,
    pub next: i64,
    pub reset: bool,
}
