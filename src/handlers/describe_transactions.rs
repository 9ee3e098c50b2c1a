//! DescribeTransactions (v0): state, timeout, start time, producer and
//! partitions of each transactional id, from its coordinator.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use crate::protocol::{ResponseError, TopicPartition};
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let access = Access::of(shard, ctx);
    let mut states = Vec::with_capacity(request.transactional_ids.len());
    for id in &request.transactional_ids {
        let out = TransactionState::default().with_transactional_id(id.clone());
        let described = if id.0.is_empty() {
            Err(ResponseError::TransactionalIdNotFound)
        } else if !access.transactional_id(AclOperation::Describe, id.0.as_str()) {
            Err(ResponseError::TransactionalIdAuthorizationFailed)
        } else {
            let transactional_id = id.0.to_string();
            let describe = |shard: Rc<Shard>| async move { shard.txns.describe(&transactional_id) };
            super::coordinator_answer(shard.on_txn(id.0.as_str(), describe).await)
        };
        states.push(match described {
            Err(e) => out.with_error_code(e.code()).with_producer_id(ProducerId(-1)).with_producer_epoch(-1),
            Ok(t) => {
                let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                // Topics the principal may not describe are left out.
                for TopicPartition { topic, partition } in t.partitions {
                    if !access.topic(AclOperation::Describe, &topic) {
                        continue;
                    }
                    topics.entry(topic).or_default().push(partition);
                }
                out.with_transaction_state(StrBytes::from_static_str(t.state.name()))
                    .with_transaction_timeout_ms(t.timeout_ms)
                    .with_transaction_start_time_ms(t.start_ms)
                    .with_producer_id(ProducerId(t.producer_id))
                    .with_producer_epoch(t.epoch)
                    .with_topics(
                        topics
                            .into_iter()
                            .map(|(topic, partitions)| {
                                TopicData::default()
                                    .with_topic(TopicName(StrBytes::from_string(topic)))
                                    .with_partitions(partitions)
                            })
                            .collect(),
                    )
            }
        });
    }
    DescribeTransactionsResponse::default().with_transaction_states(states)
}
