//! OffsetFetch (v1-9; several groups in one request from v8): committed
//! offsets with their leader epoch and metadata, exactly as committed.

use std::rc::Rc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use crate::group::coordinator::FetchedOffsets;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

/// A group's committed offsets, and for `require_stable` (v7+) which of
/// them an open transaction is about to change.
///
/// DESCRIBE on the group is required; topics the principal may not DESCRIBE
/// are left out when all are asked for, and answered TOPIC_AUTHORIZATION_FAILED
/// when named.
async fn fetch(
    shard: &Rc<Shard>,
    access: &Access,
    group_id: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
    member: Option<(String, i32)>,
) -> Result<(FetchedOffsets, Vec<Flag>), ResponseError> {
    if group_id.is_empty() {
        return Err(ResponseError::InvalidGroupId);
    }
    if !access.group(AclOperation::Describe, group_id) {
        return Err(ResponseError::GroupAuthorizationFailed);
    }
    let described = |topic: &str| access.topic(AclOperation::Describe, topic);
    let denied: Vec<(String, Vec<i32>)> = wanted.iter().flatten().filter(|(t, _)| !described(t)).cloned().collect();
    let wanted = wanted.map(|w| w.into_iter().filter(|(t, _)| described(t)).collect::<Vec<_>>());
    let all = wanted.is_none();
    let id = group_id.to_string();
    // v9: a consumer-protocol member's id and epoch are checked, as Kafka 4 does.
    let fetch = move |shard: Rc<Shard>| async move {
        if let Some((member_id, epoch)) = &member {
            shard.groups.admit_fetch(&id, Some(member_id), *epoch)?;
        }
        shard.groups.fetch_offsets(&id, wanted)
    };
    let mut offsets = shard.on_group(group_id, fetch).await.unwrap_or_else(|e| Err(super::coordinator_error(&e)))?;
    if all {
        offsets.retain(|(t, _, _)| described(t));
    }
    let denied_entries = denied.into_iter().flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p, None)));
    let asked = offsets.len();
    offsets.extend(denied_entries);
    let denied_flags = vec![Flag::Denied; offsets.len() - asked];
    if !require_stable {
        let mut flags = vec![Flag::Stable; asked];
        flags.extend(denied_flags);
        return Ok((offsets, flags));
    }
    let partitions: Vec<(String, i32)> = offsets[..asked].iter().map(|(t, p, _)| (t.clone(), *p)).collect();
    let id = group_id.to_string();
    let pending = move |shard: Rc<Shard>| async move {
        partitions.iter().map(|(t, p)| shard.groups.has_pending_offset(&id, t, *p)).collect::<Vec<bool>>()
    };
    match shard.on_group(group_id, pending).await {
        Ok(pending) => {
            let mut flags: Vec<Flag> =
                pending.into_iter().map(|p| if p { Flag::Pending } else { Flag::Stable }).collect();
            flags.extend(denied_flags);
            Ok((offsets, flags))
        }
        Err(e) => Err(super::coordinator_error(&e)),
    }
}

/// How one fetched offset is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag {
    Stable,
    /// An open transaction is about to change it (`require_stable`).
    Pending,
    /// The principal may not describe its topic.
    Denied,
}

/// (topic, [(partition, offset, leader epoch, metadata, error)]) in topic order.
type Grouped = Vec<(String, Vec<(i32, i64, i32, String, i16)>)>;

fn grouped((offsets, flags): (FetchedOffsets, Vec<Flag>)) -> Grouped {
    let mut out: Grouped = Vec::new();
    for ((topic, partition, committed), flag) in offsets.into_iter().zip(flags) {
        let (offset, epoch, metadata) = match committed {
            _ if flag != Flag::Stable => (-1, -1, String::new()),
            Some(c) => (c.offset, c.leader_epoch, c.metadata.unwrap_or_default()),
            None => (-1, -1, String::new()),
        };
        let error = match flag {
            Flag::Stable => 0,
            // UNSTABLE_OFFSET_COMMIT: retriable, the consumer asks again once the transaction ends.
            Flag::Pending => ResponseError::UnstableOffsetCommit.code(),
            Flag::Denied => ResponseError::TopicAuthorizationFailed.code(),
        };
        let entry = (partition, offset, epoch, metadata, error);
        match out.last_mut() {
            Some((t, parts)) if *t == topic => parts.push(entry),
            _ => out.push((topic, vec![entry])),
        }
    }
    out
}

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: OffsetFetchRequest) -> OffsetFetchResponse {
    let version = ctx.version();
    let epoch_of = |e: i32| if version >= 5 { e } else { -1 };
    let require_stable = version >= 7 && request.require_stable;
    let access = Access::of(shard, ctx);
    if version >= 8 {
        let mut groups = Vec::with_capacity(request.groups.len());
        for g in &request.groups {
            let wanted = g
                .topics
                .as_ref()
                .map(|ts| ts.iter().map(|t| (t.name.0.to_string(), t.partition_indexes.clone())).collect::<Vec<_>>());
            let group = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
            let member = member_of(g);
            groups.push(match fetch(shard, &access, g.group_id.0.as_str(), wanted, require_stable, member).await {
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
    match fetch(shard, &access, request.group_id.0.as_str(), wanted.clone(), require_stable, None).await {
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

/// The member id and epoch a v9 group names (null member id: no check).
fn member_of(group: &kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup) -> Option<(String, i32)> {
    group.member_id.as_ref().map(|m| (m.to_string(), group.member_epoch))
}
