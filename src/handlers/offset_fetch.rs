//! OffsetFetch (v1-9; several groups in one request from v8): committed
//! offsets with their leader epoch and metadata, exactly as committed.

use std::rc::Rc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, RequestHeader, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::call_group;
use crate::group::coordinator::FetchedOffsets;
use crate::group::{GroupCall, GroupReply};
use crate::protocol::ResponseError;
use crate::shard::Shard;

async fn fetch(
    shard: &Rc<Shard>,
    group_id: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> Result<FetchedOffsets, ResponseError> {
    if group_id.is_empty() {
        return Err(ResponseError::InvalidGroupId);
    }
    match call_group(shard, group_id, GroupCall::FetchOffsets { group_id: group_id.to_string(), wanted }).await {
        Ok(GroupReply::Offsets(offsets)) => Ok(offsets),
        Ok(other) => unreachable!("offset fetch answered with {other:?}"),
        Err(_) => Err(ResponseError::CoordinatorNotAvailable),
    }
}

/// (topic, [(partition, offset, leader epoch, metadata)]) in topic order.
type Grouped = Vec<(String, Vec<(i32, i64, i32, String)>)>;

fn grouped(offsets: FetchedOffsets) -> Grouped {
    let mut out: Grouped = Vec::new();
    for (topic, partition, committed) in offsets {
        let (offset, epoch, metadata) = match committed {
            Some(c) => (c.offset, c.leader_epoch, c.metadata.unwrap_or_default()),
            None => (-1, -1, String::new()),
        };
        match out.last_mut() {
            Some((t, parts)) if *t == topic => parts.push((partition, offset, epoch, metadata)),
            _ => out.push((topic, vec![(partition, offset, epoch, metadata)])),
        }
    }
    out
}

pub async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: OffsetFetchRequest) -> OffsetFetchResponse {
    let version = header.request_api_version;
    let epoch_of = |e: i32| if version >= 5 { e } else { -1 };
    if version >= 8 {
        let mut groups = Vec::with_capacity(request.groups.len());
        for g in &request.groups {
            let wanted = g
                .topics
                .as_ref()
                .map(|ts| ts.iter().map(|t| (t.name.0.to_string(), t.partition_indexes.clone())).collect::<Vec<_>>());
            let group = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
            groups.push(match fetch(shard, g.group_id.0.as_str(), wanted).await {
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
                                        .map(|(p, o, e, m)| {
                                            OffsetFetchResponsePartitions::default()
                                                .with_partition_index(p)
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
    match fetch(shard, request.group_id.0.as_str(), wanted.clone()).await {
        Ok(offsets) => OffsetFetchResponse::default().with_topics(
            grouped(offsets)
                .into_iter()
                .map(|(topic, parts)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic)))
                        .with_partitions(
                            parts
                                .into_iter()
                                .map(|(p, o, e, m)| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(p)
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
