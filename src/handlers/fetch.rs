//! Fetch (v4-17): read each partition on its owning shard, zero-copy from the
//! tail cache, the batch cache or a DMA read, and long-poll until `min_bytes`
//! arrive or `max_wait_ms` passes (on the owning shard itself when it owns
//! every partition asked for). Sessions (KIP-227) are not cached: a client asking
//! for a new session gets session id 0 and keeps sending full requests, as
//! Kafka answers when its session cache is full.

use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::future::{select, select_all};
use kafka_protocol::messages::FetchRequest;
use uuid::Uuid;

use super::access::Access;
use super::errors::route_error_code;
use super::quota;
use crate::constants::{FETCH_RESPONSE_BYTES_MAX, FETCH_WAIT_MS_MAX};
use crate::protocol::fetch_response::{FetchPartitionOut, FetchResponseOut, FetchTopicOut};
use crate::protocol::ResponseError;
use crate::router::{ReadPart, WatchPart};
use crate::security::acl::AclOperation;
use crate::security::quota::QuotaKey;
use crate::server::session::RequestContext;
use crate::shard::Shard;

const READ_COMMITTED: i8 = 1;

/// A partition the fetch reads, and where its answer goes.
struct Wanted {
    topic_slot: usize,
    partition_slot: usize,
    owner: usize,
    part: ReadPart,
}

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: FetchRequest) -> FetchResponseOut {
    let version = ctx.version();
    let mut response = FetchResponseOut::default();
    if request.session_id != 0 {
        response.error_code = ResponseError::FetchSessionIdNotFound.code();
        return response;
    }
    // A follower replica's fetch (Kafka's replica_id, in replica_state from v15).
    let replica = if version >= 15 { request.replica_state.replica_id.0 } else { request.replica_id.0 };
    if replica >= 0 && shard.cluster().is_some() {
        if !Access::of(shard, ctx).cluster(AclOperation::ClusterAction) {
            response.error_code = ResponseError::ClusterAuthorizationFailed.code();
            return response;
        }
        return crate::cluster::replication::serve_replica_fetch(shard, ctx, request, replica).await;
    }
    let catalog = shard.catalog();
    let access = Access::of(shard, ctx);
    let committed = request.isolation_level == READ_COMMITTED;
    let mut wanted = Vec::new();
    for (topic_slot, topic) in request.topics.iter().enumerate() {
        let meta =
            if version >= 13 { catalog.topic_by_id(&topic.topic_id) } else { catalog.topic(topic.topic.0.as_str()) };
        let mut out = FetchTopicOut {
            name: topic.topic.0.to_string(),
            topic_id: if version >= 13 { topic.topic_id } else { meta.map(|m| m.id).unwrap_or(Uuid::nil()) },
            partitions: Vec::with_capacity(topic.partitions.len()),
        };
        for (partition_slot, p) in topic.partitions.iter().enumerate() {
            let mut partition = FetchPartitionOut {
                partition_index: p.partition,
                high_watermark: -1,
                last_stable_offset: -1,
                log_start_offset: -1,
                aborted_transactions: committed.then(Vec::new),
                ..Default::default()
            };
            let owner = meta.and_then(|m| m.owner(p.partition));
            // The client's leader epoch against this leader's (KIP-320).
            let stale_epoch = meta.filter(|_| owner.is_some()).and_then(|m| {
                super::check_leader_epoch(p.current_leader_epoch, super::leader_epoch(shard, m, p.partition)).err()
            });
            match (meta, owner) {
                (Some(meta), None) if meta.is_remote(p.partition) && access.topic(AclOperation::Read, &meta.name) => {
                    partition.error_code = ResponseError::NotLeaderOrFollower.code()
                }
                (None, _) if version >= 13 => partition.error_code = ResponseError::UnknownTopicId.code(),
                (Some(meta), _) if !access.topic(AclOperation::Read, &meta.name) => {
                    partition.error_code = ResponseError::TopicAuthorizationFailed.code()
                }
                (None, _) | (_, None) => partition.error_code = ResponseError::UnknownTopicOrPartition.code(),
                (Some(_), Some(_)) if stale_epoch.is_some() => {
                    partition.error_code = stale_epoch.map_or(0, |code| code.code())
                }
                (Some(meta), Some(owner)) => wanted.push(Wanted {
                    topic_slot,
                    partition_slot,
                    owner,
                    part: ReadPart {
                        topic: meta.name.clone(),
                        partition: p.partition,
                        fetch_offset: p.fetch_offset,
                        max_bytes: p.partition_max_bytes.max(0) as usize,
                        committed,
                    },
                }),
            }
            out.partitions.push(partition);
        }
        response.topics.push(out);
    }

    let max_bytes = (request.max_bytes.max(0) as usize).min(FETCH_RESPONSE_BYTES_MAX);
    let min_bytes = request.min_bytes.max(0) as usize;
    let wait = Duration::from_millis((request.max_wait_ms.max(0) as u64).min(FETCH_WAIT_MS_MAX));
    let deadline = Instant::now() + wait;
    // Partitions all on one shard (the usual long poll): that shard reads and
    // waits in one call, so new data is answered without two more hops.
    let single_owner = wanted.first().map(|w| w.owner).filter(|o| wanted.iter().all(|w| w.owner == *o));
    loop {
        let reads = match single_owner {
            Some(owner) if min_bytes > 0 => {
                let parts: Vec<ReadPart> = wanted.iter().map(|w| w.part.clone()).collect();
                let count = parts.len();
                let read =
                    move |shard: Rc<Shard>| async move { shard.read_or_wait_local(parts, min_bytes, deadline).await };
                match shard.invoke_on_inline(owner, read).await {
                    Ok(reads) => reads,
                    Err(e) => (0..count).map(|_| Err(e.clone())).collect(),
                }
            }
            _ => {
                let items = wanted.iter().map(|w| (w.owner, w.part.clone())).collect();
                shard.scatter(items, |shard, parts| async move { shard.read_local(parts).await }).await
            }
        };
        let mut total = 0usize;
        let mut any_error = false;
        for (w, read) in wanted.iter().zip(reads) {
            let out = &mut response.topics[w.topic_slot].partitions[w.partition_slot];
            match read {
                Ok(read) => {
                    out.error_code = 0;
                    out.high_watermark = read.high_watermark;
                    out.last_stable_offset = read.last_stable_offset;
                    out.log_start_offset = read.log_start_offset;
                    if committed {
                        out.aborted_transactions = Some(read.aborted.clone().unwrap_or_default());
                    }
                    // The response's max_bytes is soft: the first batch always goes.
                    let bytes = read.bytes();
                    if total > 0 && total + bytes > max_bytes {
                        out.records.clear();
                    } else {
                        total += bytes;
                        out.records = read.chunks;
                    }
                }
                Err(e) => {
                    any_error = true;
                    out.error_code = route_error_code(&e).code();
                    out.records.clear();
                }
            }
        }
        // min_bytes 0 answers at once; otherwise wait for enough bytes, an error or the deadline.
        if total >= min_bytes || any_error || Instant::now() >= deadline || wanted.is_empty() {
            break;
        }
        // After the wait, read again: even at the deadline, data that arrived is returned.
        wait_for_data(shard, &wanted, &response, deadline).await;
    }
    // consumer_byte_rate: a fetch that would go over answers empty, with the
    // throttle time, and its bytes do not count (Kafka's throttled response).
    let bytes: usize = response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.records.iter().map(|c| c.len()).sum::<usize>())
        .sum();
    let throttle_ms = quota::record_bytes(shard, ctx, QuotaKey::ConsumerByteRate, bytes);
    if throttle_ms > 0 {
        quota::unrecord_bytes(shard, ctx, QuotaKey::ConsumerByteRate, bytes);
        response.topics.clear();
        response.throttle_time_ms = throttle_ms.min(i32::MAX as u64) as i32;
    }
    response
}

/// Waits until any fetched partition's high watermark moves past what this
/// fetch last saw, on whichever shard owns it, or until `deadline`.
async fn wait_for_data(shard: &Rc<Shard>, wanted: &[Wanted], response: &FetchResponseOut, deadline: Instant) {
    let mut by_owner: std::collections::BTreeMap<usize, Vec<WatchPart>> = Default::default();
    for w in wanted {
        let seen = response.topics[w.topic_slot].partitions[w.partition_slot].high_watermark;
        let offset = seen.max(w.part.fetch_offset);
        by_owner.entry(w.owner).or_default().push(WatchPart {
            topic: w.part.topic.clone(),
            partition: w.part.partition,
            offset,
        });
    }
    let watches: Vec<_> = by_owner
        .into_iter()
        .map(|(owner, parts)| {
            Box::pin(async move {
                let watch = move |shard: Rc<Shard>| async move { shard.watch_local(parts, deadline).await };
                let _ = shard.invoke_on_inline(owner, watch).await;
            })
        })
        .collect();
    let timeout = glommio::timer::sleep(deadline.saturating_duration_since(Instant::now()));
    futures::pin_mut!(timeout);
    if watches.is_empty() {
        timeout.await;
        return;
    }
    // Dropping the watches that did not fire ends a local one; a watch on
    // another shard runs on there until its data arrives or its deadline.
    let _ = select(select_all(watches), timeout).await;
}
