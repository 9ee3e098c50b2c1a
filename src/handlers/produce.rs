//! Produce (v3-13; v13 names topics by id): validate each partition's batches here, on the
//! connection's shard, then route them to their owners, which assign offsets
//! and store them. acks=0 gets no response; acks=1 is answered once written;
//! acks=all once fdatasync'd.
//!
//! Transactional batches go only into the producer's open transaction. Up
//! to v11 the producer added the partitions first (AddPartitionsToTxn) and
//! this checks they are in it; from v12 (transaction version 2, KIP-890)
//! the partitions join the transaction here, as Kafka's produce path has the
//! coordinator add them (`AddPartitionsToTxnManager`).

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::messages::produce_request::TopicProduceData;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use super::coordinator_answer;
use super::errors::{batch_error_code, records_error_code, route_error_code};
use super::quota;
use super::resolve_topics;
use crate::config::{TimestampType, TopicConfig};
use crate::constants::DECOMPRESSED_BATCH_BYTES_MAX;
use crate::protocol::batch::{validate_chunk, BatchHeader, BatchSummary};
use crate::protocol::records::{decode, keyless_records, record_timestamps};
use crate::protocol::{ResponseError, TopicPartition};
use crate::registry::validation::{self, IdQuery, Verdict};
use crate::router::ProducePart;
use crate::security::acl::AclOperation;
use crate::security::quota::QuotaKey;
use crate::server::session::RequestContext;
use crate::shard::gather::{Outcome, Plan};
use crate::shard::Shard;
use crate::storage::AckLevel;
use crate::txn::TxnListing;

/// The first Produce version whose partitions join the transaction implicitly.
const IMPLICIT_ADD_VERSION: i16 = 12;

fn partition_error(index: i32, code: ResponseError, message: Option<String>) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code.code())
        .with_base_offset(-1)
        .with_error_message(message.map(StrBytes::from_string))
}

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: ProduceRequest) -> Option<ProduceResponse> {
    let acks = match request.acks {
        0 => AckLevel::None,
        1 => AckLevel::Written,
        -1 => AckLevel::Synced,
        _ => AckLevel::Synced,
    };
    let acks_valid = matches!(request.acks, -1..=1);
    let transactional = request.transactional_id.as_ref().is_some_and(|t| !t.0.is_empty());

    // producer_byte_rate counts the request's record bytes, as Kafka does. A
    // connection reads ahead of its answers, so a request read while an
    // earlier one's throttle time runs waits it out before it is written, as
    // it would wait unread in Kafka's muted socket; its bytes are then
    // recorded and the connection muted at once, before anything here
    // yields, so the next request waits for its throttle time in turn.
    while let Some(until) = ctx.session.muted_until(Instant::now()) {
        glommio::timer::sleep(until.saturating_duration_since(Instant::now())).await;
    }
    let bytes: usize = request
        .topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .sum();
    let throttle_ms = quota::record_bytes(shard, ctx, QuotaKey::ProducerByteRate, bytes);
    ctx.session.throttle(throttle_ms);

    let access = Access::of(shard, ctx);
    // WRITE on each topic, and on the transactional id of a transactional producer.
    let txn_denied = transactional
        && !access.transactional_id(
            AclOperation::Write,
            request.transactional_id.as_ref().map(|t| t.0.as_str()).unwrap_or_default(),
        );
    let writable = |name: &str| !txn_denied && access.topic(AclOperation::Write, name);
    // From v13 a topic is named by its id, which only an existing topic has.
    let by_id = ctx.version() >= 13;
    let topic_names: Vec<Option<String>> = {
        let catalog = shard.catalog();
        let name_of = |t: &TopicProduceData| match by_id {
            true => catalog.topic_by_id(&t.topic_id).map(|meta| meta.name.to_string()),
            false => Some(t.name.0.to_string()),
        };
        request.topic_data.iter().map(name_of).collect()
    };
    let names: Vec<String> = topic_names.iter().flatten().filter(|n| writable(n)).cloned().collect();
    // A transaction writes only to partitions it added, so to existing topics.
    let topics = if acks_valid {
        resolve_topics(shard, &names, (!transactional).then_some(&access)).await
    } else {
        Default::default()
    };

    // Transactional batches go only to partitions of the producer's open
    // transaction (KIP-890): a batch outside one could never get its marker.
    // On a cluster whose coordinator of the transactional id is another
    // broker, that broker is asked (AddPartitionsToTxn, as Kafka's brokers do).
    let implicit_add = ctx.version() >= IMPLICIT_ADD_VERSION;
    let transactional_id = request.transactional_id.as_ref().map(|t| t.0.to_string()).unwrap_or_default();
    let remote = transactional.then(|| crate::cluster::txn::remote_coordinator(shard, &transactional_id)).flatten();
    let open_txn = if transactional && acks_valid && !implicit_add && remote.is_none() {
        open_transaction(shard, &request).await
    } else {
        Err(ResponseError::InvalidTxnState)
    };
    let candidates: Vec<((i64, i16), TopicPartition)> = if transactional && acks_valid && !txn_denied {
        request
            .topic_data
            .iter()
            .zip(&topic_names)
            .flat_map(|(topic, name)| {
                let meta = name.as_ref().filter(|n| writable(n)).and_then(|n| topics.get(n.as_str())?.as_ref().ok());
                topic.partition_data.iter().filter_map(move |p| {
                    let meta = meta?;
                    meta.owner(p.index)?;
                    let header = BatchHeader::parse(p.records.as_deref()?).filter(|h| h.is_transactional())?;
                    let partition = TopicPartition::new(meta.name.to_string(), p.index);
                    Some(((header.producer_id, header.producer_epoch), partition))
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let verified = match remote {
        Some(coordinator) if !candidates.is_empty() => {
            crate::cluster::txn::add_partitions(shard, coordinator, &transactional_id, &candidates, !implicit_add).await
        }
        _ => BTreeMap::new(),
    };
    let added = if implicit_add && remote.is_none() && !candidates.is_empty() {
        add_to_transaction(shard, &request, candidates.into_iter()).await
    } else {
        BTreeMap::new()
    };

    let mut plan: Plan<PartitionProduceResponse, (usize, ProducePart)> = Plan::new();
    for (topic, name) in request.topic_data.iter().zip(&topic_names) {
        for p in &topic.partition_data {
            let early = |code, message| partition_error(p.index, code, message);
            if !acks_valid {
                plan.answer(early(ResponseError::InvalidRequiredAcks, None));
                continue;
            }
            if txn_denied {
                plan.answer(early(ResponseError::TransactionalIdAuthorizationFailed, None));
                continue;
            }
            let Some(name) = name else {
                plan.answer(early(ResponseError::UnknownTopicId, None));
                continue;
            };
            if !writable(name) {
                plan.answer(early(ResponseError::TopicAuthorizationFailed, None));
                continue;
            }
            if crate::metadata::INTERNAL_TOPICS.contains(&name.as_str()) {
                // A cluster's coordinators write these; clients only read them, as in Kafka.
                let message = format!("Cannot append to internal topic {name}");
                plan.answer(early(ResponseError::InvalidTopicException, Some(message)));
                continue;
            }
            let meta = match topics.get(name.as_str()) {
                Some(Ok(meta)) => meta.clone(),
                Some(Err((code, message))) => {
                    plan.answer(early(*code, Some(message.clone())));
                    continue;
                }
                None => {
                    plan.answer(early(ResponseError::UnknownTopicOrPartition, None));
                    continue;
                }
            };
            let owner = match meta.locate(p.index) {
                Ok(owner) => owner,
                Err(code) => {
                    plan.answer(early(code, None));
                    continue;
                }
            };
            let records = p.records.clone().unwrap_or_default();
            let summaries = match validate_chunk(&records, meta.config.max_message_bytes as usize) {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(topic = %meta.name, partition = p.index, error = %e, "produce refused");
                    plan.answer(early(batch_error_code(&e), Some(e.to_string())));
                    continue;
                }
            };
            // Transactional batches come only with a transactional id, and only
            // those (Kafka's rule): a marker could never end them otherwise.
            let transactional_batches = BatchHeader::parse(&records).is_some_and(|h| h.is_transactional());
            if transactional_batches != transactional {
                let message = if transactional {
                    "Transactional requests carry transactional batches only."
                } else {
                    "Transactional batches need a transactional id."
                };
                let code = if transactional { ResponseError::InvalidRecord } else { ResponseError::InvalidTxnState };
                plan.answer(early(code, Some(message.to_string())));
                continue;
            }
            if transactional {
                let header = BatchHeader::parse(&records).expect("validated batch");
                let joined = match implicit_add {
                    _ if remote.is_some() => verified
                        .get(&(
                            (header.producer_id, header.producer_epoch),
                            TopicPartition::new(meta.name.to_string(), p.index),
                        ))
                        .copied()
                        .unwrap_or(Err(ResponseError::InvalidTxnState)),
                    true => added
                        .get(&(header.producer_id, header.producer_epoch))
                        .copied()
                        .unwrap_or(Err(ResponseError::InvalidTxnState)),
                    false => in_transaction(&open_txn, &meta.name, p.index, &header),
                };
                if let Err(code) = joined {
                    plan.answer(early(code, None));
                    continue;
                }
            }
            if let Some(refusal) = timestamp_refusal(&meta.config, p.index, &records, &summaries) {
                plan.answer(refusal);
                continue;
            }
            // Only compacted topics read records: the key check costs nothing elsewhere.
            if meta.config.compacts() {
                if let Some(refusal) = keyless_refusal(&meta.name, p.index, &records, &summaries) {
                    plan.answer(refusal);
                    continue;
                }
            }
            if meta.config.key_schema_validation || meta.config.value_schema_validation {
                if let Some(refusal) =
                    schema_id_refusal(shard, &meta.name, &meta.config, p.index, &records, &summaries).await
                {
                    plan.answer(refusal);
                    continue;
                }
            }
            plan.send((owner, ProducePart { topic: meta.name.clone(), partition: p.index, records, summaries }));
        }
    }

    let timeout = std::time::Duration::from_millis(request.timeout_ms.max(0) as u64);
    let produce = move |shard: Rc<Shard>, parts| async move { shard.produce_local(parts, acks, timeout).await };
    // Handed to the owners in the connection's order; appended in the order handed over.
    let turn = ctx.turn.take();
    if let Some(turn) = &turn {
        turn.wait().await;
    }
    let handed = plan.hand_out(shard, produce).await;
    drop(turn);
    let mut outcomes = handed.outcomes().await;
    if acks == AckLevel::None {
        return None;
    }
    let responses = request
        .topic_data
        .iter()
        .map(|topic| {
            let partitions = topic
                .partition_data
                .iter()
                .map(|p| match outcomes.take() {
                    Outcome::Early(early) => early,
                    Outcome::Sent(Ok(outcome)) => PartitionProduceResponse::default()
                        .with_index(p.index)
                        .with_base_offset(outcome.base_offset)
                        .with_log_append_time_ms(outcome.log_append_time_ms.unwrap_or(-1))
                        .with_log_start_offset(outcome.log_start_offset),
                    Outcome::Sent(Err(e)) => partition_error(p.index, route_error_code(&e), Some(e.to_string())),
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(topic.name.clone())
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partitions)
        })
        .collect();
    Some(ProduceResponse::default().with_responses(responses).with_throttle_time_ms(throttle_ms as i32))
}

/// Kafka's `LogValidator.validateKey`: a compacted topic refuses records
/// without a key. The batches are read in order (inflated if compressed); the
/// first holding keyless records refuses the partition's whole produce with
/// INVALID_RECORD, the message of Kafka's `RecordValidationException` and one
/// record error per keyless record (its index in the batch), which the
/// response carries from v8. Records that cannot be read are CORRUPT_MESSAGE.
fn keyless_refusal(
    topic: &str,
    partition: i32,
    records: &[u8],
    summaries: &[BatchSummary],
) -> Option<PartitionProduceResponse> {
    for s in summaries {
        let batch = &records[s.position..s.position + s.size_bytes];
        // Clients may not write control batches (validate_chunk refuses them); they have no user keys.
        if BatchHeader::parse(batch).is_some_and(|h| h.is_control()) {
            continue;
        }
        let keyless = match keyless_records(batch, DECOMPRESSED_BATCH_BYTES_MAX) {
            Ok(keyless) if keyless.is_empty() => continue,
            Ok(keyless) => keyless,
            Err(e) => {
                tracing::debug!(topic, partition, error = %e, "produce refused: records unreadable");
                return Some(partition_error(partition, records_error_code(&e), Some(e.to_string())));
            }
        };
        let reason =
            format!("Compacted topic cannot accept message without key in topic partition {topic}-{partition}");
        let errors: Vec<(i32, String)> = keyless.iter().map(|&i| (i, reason.clone())).collect();
        return Some(record_errors_refusal(partition, &errors));
    }
    None
}

/// Kafka's `LogValidator.validateTimestamp`: on a `CreateTime` topic, records
/// older than `message.timestamp.before.max.ms` or newer than
/// `message.timestamp.after.max.ms` (against the broker's clock) refuse the
/// partition's whole produce with INVALID_TIMESTAMP, Kafka's message and one
/// record error per such record of the first batch holding any.
///
/// Sluice stores a batch as sent, so its header's first and max timestamps
/// are what readers see: a batch whose both lie within the bounds passes
/// without its records being read, unless `message.timestamp.before.max.ms`
/// is set (a record may be older than the batch's first).
fn timestamp_refusal(
    config: &TopicConfig,
    partition: i32,
    records: &[u8],
    summaries: &[BatchSummary],
) -> Option<PartitionProduceResponse> {
    if config.message_timestamp_type != TimestampType::CreateTime {
        return None;
    }
    let now_ms = crate::clock::now_ms();
    let lower_bounded = config.message_timestamp_before_max_ms != i64::MAX;
    for s in summaries {
        let batch = &records[s.position..s.position + s.size_bytes];
        let header = BatchHeader::parse(batch)?;
        let header_fits = !config.timestamp_refused(now_ms, header.base_timestamp)
            && !config.timestamp_refused(now_ms, header.max_timestamp);
        if header_fits && !lower_bounded {
            continue;
        }
        let times = match record_timestamps(batch, DECOMPRESSED_BATCH_BYTES_MAX) {
            Ok(times) => times,
            Err(e) => return Some(partition_error(partition, records_error_code(&e), Some(e.to_string()))),
        };
        let (low, high) = config.timestamp_bounds(now_ms);
        let record_errors: Vec<BatchIndexAndErrorMessage> = times
            .iter()
            .filter(|(_, _, timestamp)| config.timestamp_refused(now_ms, *timestamp))
            .map(|(index, offset, timestamp)| {
                let message = format!(
                    "Timestamp {timestamp} of message with offset {offset} is out of range. \
                     The timestamp should be within [{low}, {high}]"
                );
                BatchIndexAndErrorMessage::default()
                    .with_batch_index(*index)
                    .with_batch_index_error_message(Some(StrBytes::from_string(message)))
            })
            .collect();
        if record_errors.is_empty() {
            continue;
        }
        let message = "One or more records have been rejected due to invalid timestamp".to_string();
        return Some(
            partition_error(partition, ResponseError::InvalidTimestamp, Some(message))
                .with_record_errors(record_errors),
        );
    }
    None
}

/// The answer refusing a partition's produce for the records of one batch
/// that fail validation ((index in the batch, why)): INVALID_RECORD, the
/// message of Kafka's `RecordValidationException` (at most three record
/// errors shown, `LogValidator.processRecordErrors`) and the record errors,
/// which the response carries from v8.
fn record_errors_refusal(partition: i32, errors: &[(i32, String)]) -> PartitionProduceResponse {
    let shown: Vec<String> =
        errors.iter().take(3).map(|(i, why)| format!("RecordError(batchIndex={i}, message='{why}')")).collect();
    let message = format!(
        "One or more records have been rejected due to {} record errors in total, and only showing the first three \
         errors at most: [{}]",
        errors.len(),
        shown.join(", ")
    );
    let record_errors = errors
        .iter()
        .map(|(i, why)| {
            BatchIndexAndErrorMessage::default()
                .with_batch_index(*i)
                .with_batch_index_error_message(Some(StrBytes::from_string(why.clone())))
        })
        .collect();
    partition_error(partition, ResponseError::InvalidRecord, Some(message)).with_record_errors(record_errors)
}

/// Broker-side schema id validation (`confluent.key.schema.validation`,
/// `confluent.value.schema.validation`, see [`crate::registry::validation`]):
/// the batches are read in order (inflated if compressed), the schema ids
/// of their keys and values checked with one question to the registry, and
/// the first batch holding records that fail refuses the partition's whole
/// produce with INVALID_RECORD and one record error per such record.
async fn schema_id_refusal(
    shard: &Rc<Shard>,
    topic: &Arc<str>,
    config: &TopicConfig,
    partition: i32,
    records: &[u8],
    summaries: &[BatchSummary],
) -> Option<PartitionProduceResponse> {
    // Per batch: (index in the batch, the query or why there is none).
    let mut batches: Vec<Vec<(i32, Result<IdQuery, String>)>> = Vec::with_capacity(summaries.len());
    for s in summaries {
        let batch = match decode(&records[s.position..s.position + s.size_bytes], DECOMPRESSED_BATCH_BYTES_MAX) {
            Ok(batch) => batch,
            Err(e) => return Some(partition_error(partition, records_error_code(&e), Some(e.to_string()))),
        };
        let mut found = Vec::new();
        for (i, view) in batch.views.iter().enumerate() {
            let fields = [
                (true, config.key_schema_validation, config.key_subject_name_strategy, batch.key(view)),
                (false, config.value_schema_validation, config.value_subject_name_strategy, batch.value(view)),
            ];
            for (is_key, on, strategy, data) in fields {
                if let (true, Some(data)) = (on, data) {
                    found.push((i as i32, IdQuery::of(topic, is_key, strategy, data)));
                }
            }
        }
        batches.push(found);
    }
    let queries: Vec<IdQuery> = batches.iter().flatten().filter_map(|(_, q)| q.as_ref().ok().cloned()).collect();
    let mut verdicts = match validation::check(shard, &queries).await {
        Ok(verdicts) => verdicts.into_iter(),
        Err(e) => {
            tracing::warn!(%topic, partition, error = %e, "produce refused");
            return Some(partition_error(partition, ResponseError::UnknownServerError, Some(e.to_string())));
        }
    };
    for found in batches {
        let mut errors: Vec<(i32, String)> = Vec::new();
        for (i, query) in found {
            let why = match query {
                Err(why) => Some(why),
                Ok(_) => match verdicts.next() {
                    Some(Verdict::Invalid(why)) => Some(why),
                    _ => None,
                },
            };
            // One error per record, the key's first.
            if let Some(why) = why.filter(|_| errors.last().is_none_or(|(last, _)| *last != i)) {
                errors.push((i, why));
            }
        }
        if !errors.is_empty() {
            return Some(record_errors_refusal(partition, &errors));
        }
    }
    None
}

/// The coordinator's view of the transaction the request's batches belong to.
async fn open_transaction(shard: &Rc<Shard>, request: &ProduceRequest) -> Result<TxnListing, ResponseError> {
    let id = request.transactional_id.as_ref().map(|t| t.0.to_string()).unwrap_or_default();
    shard.describe_txn(&id).await
}

/// From v12: adds the partitions to the transaction of the producer (id and
/// epoch) whose batches go to them, one coordinator call per producer, and
/// answers for each producer what its batches get. The coordinator's errors
/// become what Kafka's produce path answers: a fenced epoch is
/// INVALID_PRODUCER_EPOCH, and a retriable coordinator state is
/// NOT_ENOUGH_REPLICAS, which every client retries without a metadata refresh.
async fn add_to_transaction(
    shard: &Rc<Shard>,
    request: &ProduceRequest,
    candidates: impl Iterator<Item = ((i64, i16), TopicPartition)>,
) -> BTreeMap<(i64, i16), Result<(), ResponseError>> {
    let transactional_id = request.transactional_id.as_ref().map(|t| t.0.to_string()).unwrap_or_default();
    let mut by_producer: BTreeMap<(i64, i16), Vec<TopicPartition>> = BTreeMap::new();
    for (producer, partition) in candidates {
        let partitions = by_producer.entry(producer).or_default();
        if !partitions.contains(&partition) {
            partitions.push(partition);
        }
    }
    let mut added = BTreeMap::new();
    for ((producer_id, epoch), partitions) in by_producer {
        let id = transactional_id.clone();
        let add = move |shard: Rc<Shard>| async move {
            shard.txns.add_partitions(&shard.env(), &id, producer_id, epoch, partitions).await
        };
        let outcome = coordinator_answer(shard.on_txn(&transactional_id, add).await).map_err(|e| match e {
            ResponseError::ProducerFenced => ResponseError::InvalidProducerEpoch,
            ResponseError::ConcurrentTransactions
            | ResponseError::CoordinatorNotAvailable
            | ResponseError::CoordinatorLoadInProgress
            | ResponseError::NotCoordinator => ResponseError::NotEnoughReplicas,
            other => other,
        });
        added.insert((producer_id, epoch), outcome);
    }
    added
}

/// Whether a transactional batch belongs to the producer's open transaction on this partition.
fn in_transaction(
    txn: &Result<TxnListing, ResponseError>,
    topic: &str,
    partition: i32,
    header: &BatchHeader,
) -> Result<(), ResponseError> {
    let txn = txn.as_ref().map_err(|e| *e)?;
    if txn.producer_id == header.producer_id && header.producer_epoch < txn.epoch {
        // A produce from an older epoch: the producer was fenced.
        return Err(ResponseError::InvalidProducerEpoch);
    }
    let added = txn.partitions.iter().any(|p| p.topic == topic && p.partition == partition);
    // Any other mismatch of this batch with the open transaction is not a transaction it may write to.
    txn.check_open(header.producer_id, header.producer_epoch, added).map_err(|e| match e {
        ResponseError::ProducerFenced => ResponseError::InvalidTxnState,
        other => other,
    })
}
