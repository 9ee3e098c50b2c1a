//! OffsetForLeaderEpoch (v2-4): every partition has had one leader epoch (0)
//! since it was created, so epoch 0 ends at the log end offset.

use std::rc::Rc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, RequestHeader};

use super::errors::route_error_code;
use super::scatter;
use crate::protocol::ResponseError;
use crate::router::ShardRequest;
use crate::shard::Shard;
use crate::storage::log::LEADER_EPOCH;

pub async fn handle(
    shard: &Rc<Shard>,
    _header: &RequestHeader,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let catalog = shard.catalog();
    let mut slots: Vec<Vec<Result<EpochEndOffset, usize>>> = Vec::new();
    let mut work = Vec::new();
    for topic in &request.topics {
        let meta = catalog.topic(topic.topic.0.as_str());
        let mut topic_slots = Vec::new();
        for p in &topic.partitions {
            let early = |code: ResponseError| {
                Ok(EpochEndOffset::default()
                    .with_partition(p.partition)
                    .with_error_code(code.code())
                    .with_leader_epoch(-1)
                    .with_end_offset(-1))
            };
            let Some((meta, owner)) = meta.and_then(|m| m.owner(p.partition).map(|o| (m, o))) else {
                topic_slots.push(early(ResponseError::UnknownTopicOrPartition));
                continue;
            };
            if p.current_leader_epoch > LEADER_EPOCH {
                topic_slots.push(early(ResponseError::UnknownLeaderEpoch));
                continue;
            }
            if p.leader_epoch > LEADER_EPOCH {
                // An epoch this log never had: Kafka answers UNDEFINED_EPOCH / UNDEFINED_OFFSET.
                topic_slots.push(Ok(EpochEndOffset::default()
                    .with_partition(p.partition)
                    .with_leader_epoch(-1)
                    .with_end_offset(-1)));
                continue;
            }
            topic_slots.push(Err(work.len()));
            work.push((owner, (meta.name.clone(), p.partition)));
        }
        slots.push(topic_slots);
    }
    let answers = scatter(shard, work, |parts, reply| ShardRequest::Offsets { parts, reply }).await;
    let topics = request
        .topics
        .iter()
        .zip(slots)
        .map(|(topic, topic_slots)| {
            let partitions = topic
                .partitions
                .iter()
                .zip(topic_slots)
                .map(|(p, slot)| match slot {
                    Ok(early) => early,
                    Err(i) => {
                        let base = EpochEndOffset::default().with_partition(p.partition);
                        match &answers[i] {
                            Ok(offsets) => base.with_leader_epoch(LEADER_EPOCH).with_end_offset(offsets.log_end_offset),
                            Err(e) => base
                                .with_error_code(route_error_code(e).code())
                                .with_leader_epoch(-1)
                                .with_end_offset(-1),
                        }
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(topic.topic.clone()).with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
