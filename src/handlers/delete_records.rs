//! DeleteRecords (v0-2): moves log start offsets forward on the owning shards.

use std::rc::Rc;

use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, RequestHeader};

use super::errors::route_error_code;
use super::scatter;
use crate::protocol::ResponseError;
use crate::router::ShardRequest;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    _header: &RequestHeader,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let catalog = shard.catalog();
    let mut slots: Vec<Vec<Result<usize, ResponseError>>> = Vec::new();
    let mut work = Vec::new();
    for topic in &request.topics {
        let meta = catalog.topic(topic.name.0.as_str());
        slots.push(
            topic
                .partitions
                .iter()
                .map(|p| {
                    let Some((meta, owner)) = meta.and_then(|m| m.owner(p.partition_index).map(|o| (m, o))) else {
                        return Err(ResponseError::UnknownTopicOrPartition);
                    };
                    work.push((owner, (meta.name.clone(), p.partition_index, p.offset)));
                    Ok(work.len() - 1)
                })
                .collect(),
        );
    }
    let answers = scatter(shard, work, |parts, reply| ShardRequest::DeleteRecords { parts, reply }).await;
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
                    let r = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
                    match slot {
                        Err(code) => r.with_error_code(code.code()).with_low_watermark(-1),
                        Ok(i) => match &answers[i] {
                            Ok(low) => r.with_low_watermark(*low),
                            Err(e) => r.with_error_code(route_error_code(e).code()).with_low_watermark(-1),
                        },
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default().with_name(topic.name.clone()).with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
