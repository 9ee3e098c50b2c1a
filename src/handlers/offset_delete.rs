//! OffsetDelete (v0): a group's committed offsets for topics it does not consume.

use std::rc::Rc;

use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, RequestHeader};

use super::call_group;
use crate::group::{GroupCall, GroupReply};
use crate::protocol::ResponseError;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, _header: &RequestHeader, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group_id = request.group_id.0.to_string();
    let catalog = shard.catalog();
    let mut partitions = Vec::new();
    let mut slots: Vec<Vec<Result<usize, ResponseError>>> = Vec::new();
    for topic in &request.topics {
        let meta = catalog.topic(topic.name.0.as_str());
        slots.push(
            topic
                .partitions
                .iter()
                .map(|p| {
                    if meta.and_then(|m| m.owner(p.partition_index)).is_none() {
                        return Err(ResponseError::UnknownTopicOrPartition);
                    }
                    partitions.push((topic.name.0.to_string(), p.partition_index));
                    Ok(partitions.len() - 1)
                })
                .collect(),
        );
    }
    let results =
        match call_group(shard, &group_id, GroupCall::DeleteOffsets { group_id: group_id.clone(), partitions }).await {
            Ok(GroupReply::DeleteOffsets(results)) => results,
            Ok(other) => unreachable!("offset delete answered with {other:?}"),
            Err(_) => Err(ResponseError::CoordinatorNotAvailable),
        };
    let results = match results {
        Err(code) => return OffsetDeleteResponse::default().with_error_code(code.code()),
        Ok(results) => results,
    };
    let topics = request
        .topics
        .iter()
        .zip(slots)
        .map(|(topic, topic_slots)| {
            let partitions = topic
                .partitions
                .iter()
                .zip(topic_slots)
                .map(|(p, slot)| {
                    let code = match slot {
                        Err(code) => code.code(),
                        Ok(i) => results[i].err().map(|c| c.code()).unwrap_or(0),
                    };
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetDeleteResponseTopic::default().with_name(topic.name.clone()).with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
