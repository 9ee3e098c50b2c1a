//! OffsetFetch (v1-9; several groups in one request from v8): committed
//! offsets with their leader epoch and metadata, exactly as committed.

use std::rc::Rc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, RequestHeader, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::group::coordinator::FetchedOffsets;
use crate::protocol::ResponseError;
use crate::shard::Shard;

/// A group's committed offsets, and for `require_stable` (v7+) which of
/// them an open transaction is about to change.
async fn fetch(
    shard: &Rc<Shard>,
    group_id: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Result<(FetchedOffsets, Vec<bool>), ResponseError> {
    if group_id.is_empty() {
        return Err(ResponseError::InvalidGroupId);
    }
    let id = group_id.to_string();
    let fetch = move |shard: Rc<Shard>| async move { shard.groups.fetch_offsets(&id, wanted) };
    let offsets = shard.on_group(group_id, fetch).await.unwrap_or(Err(ResponseError::CoordinatorNotAvailable))?;
    if !require_stable {
        let stable = vec![false; offsets.len()];
        return Ok((offsets, stable));
    }
    let partitions: Vec<(String, i32)> = offsets.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
    let id = group_id.to_string();
    let pending = move |shard: Rc<Shard>| async move {
        partitions.iter().map(|(t, p)| shard.groups.has_pending_offset(&id, t, *p)).collect::<Vec<bool>>()
    };
    match shard.on_group(group_id, pending).await {
        Ok(pending) => Ok((offsets, pending)),
        Err(_) => Err(ResponseError::CoordinatorNotAvailable),
    }
}

/// (topic, [(partition, offset, leader epoch, metadata, error)]) in topic order.
type Grouped = Vec<(String, Vec<(i32, i64, i32, String, i16)>)>;

fn grouped((offsets, pending): (FetchedOffsets, Vec<bool>)) -> Grouped {
    let mut out: Grouped = Vec::new();
    for ((topic, partition, committed), pending) in offsets.into_iter().zip(pending) {
        let (offset, epoch, metadata) = match committed {
            _ if pending => (-1, -1, String::new()),
            Some(c) => (c.offset, c.leader_epoch, c.metadata.unwrap_or_default()),
            None => (-1, -1, String::new()),
        };
        // UNSTABLE_OFFSET_COMMIT: retriable, the consumer asks again once the transaction ends.
        let error = if pending { ResponseError::UnstableOffsetCommit.code() } else { 0 };
        let entry = (partition, offset, epoch, metadata, error);
        match out.last_mut() {
            Some((t, parts)) if *t == topic => parts.push(entry),
            _ => out.push((topic, vec![entry])),
        }
    }
    out
}

pub async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: OffsetFetchRequest) -> OffsetFetchResponse {
    let version = header.request_api_version;
    let epoch_of = |e: i32| if version >= 5 { e } else { -1 };
    let require_stable = version >= 7 && request.require_stable;
    if version >= 8 {
        let mut groups = Vec::with_capacity(request.groups.len());
        for g in &request.groups {
            let wanted = g
                .topics
                .as_ref()
                .map(|ts| ts.iter().map(|t| (t.name.0.to_string(), t.partition_indexes.clone())).collect::<Vec<_>>());
            let group = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
            groups.push(match fetch(shard, g.group_id.0.as_str(), wanted, require_stable).await {
                Err(code) => group.with_error_code(code.code()),
                Ok(offsets) => group.with_topics(
                    grouped(offsets)
                        .into_iter()
                        .map(|(topic, parts)| {
                            OffsetFetchResponseTopics::default()
                                .with_name(TopicName(StrBytes::from_string(topic)))
                                .with_partitions(
                                    parts
                                        .into_iter()
                                        .map(|(p, o, e, m, error)| {
                                            OffsetFetchResponsePartitions::default()
                                                .with_partition_index(p)
                                                .with_error_code(error)
                                                .with_committed_offset(o)
                                                .with_committed_leader_epoch(epoch_of(e))
                                                .with_metadata(Some(StrBytes::from_string(m)))
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            });
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted = request
        .topics
        .as_ref()
        .map(|ts| ts.iter().map(|t| (t.name.0.to_string(), t.partition_indexes.clone())).collect::<Vec<_>>());
    match fetch(shard, request.group_id.0.as_str(), wanted.clone(), require_stable).await {
        Ok(offsets) => OffsetFetchResponse::default().with_topics(
            grouped(offsets)
                .into_iter()
                .map(|(topic, parts)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic)))
                        .with_partitions(
                            parts
                                .into_iter()
                                .map(|(p, o, e, m, error)| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_error_code(error)
                                        .with_committed_offset(o)
                                        .with_committed_leader_epoch(epoch_of(e))
                                        .with_metadata(Some(StrBytes::from_string(m)))
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
        Err(code) if version >= 2 => OffsetFetchResponse::default().with_error_code(code.code()),
        // v1 has no top-level error: every partition asked for carries it.
        Err(code) => OffsetFetchResponse::default().with_topics(
            wanted
                .unwrap_or_default()
                .into_iter()
                .map(|(topic, parts)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic)))
                        .with_partitions(
                            parts
                                .into_iter()
                                .map(|p| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(-1)
                                        .with_error_code(code.code())
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
    }
}
