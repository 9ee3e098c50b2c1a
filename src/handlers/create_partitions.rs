//! CreatePartitions (v0-3): grows a topic; new partitions go to the
//! least-loaded shards, through the controller.

use std::rc::Rc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use crate::metadata::controller::PartitionGrowth;
use crate::protocol::ResponseError;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    _header: &RequestHeader,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let topics: Vec<PartitionGrowth> = request
        .topics
        .iter()
        .map(|t| {
            let assignments =
                t.assignments.as_ref().map(|a| a.iter().map(|x| x.broker_ids.iter().map(|b| b.0).collect()).collect());
            (t.name.0.to_string(), t.count, assignments)
        })
        .collect();
    let count = topics.len();
    let validate_only = request.validate_only;
    let grow = move |shard: Rc<Shard>| async move {
        shard.controller().create_partitions(&shard.env(), topics, validate_only).await
    };
    let results = match shard.on_controller(grow).await {
        Ok(results) => results,
        Err(e) => (0..count).map(|_| Err((ResponseError::UnknownServerError, e.to_string()))).collect(),
    };
    let results = request
        .topics
        .iter()
        .zip(results)
        .map(|(t, result)| {
            let r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            match result {
                Ok(()) => r,
                Err((code, message)) => {
                    r.with_error_code(code.code()).with_error_message(Some(StrBytes::from_string(message)))
                }
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
