//! ListTransactions (v0-1): every shard's coordinator lists its transactional
//! ids, filtered by state, producer id and (v1) how long they have been open.

use std::rc::Rc;

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;
use crate::txn::coordinator::TxnState;

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let states: Vec<String> = request.state_filters.iter().map(|s| s.to_string()).collect();
    let unknown: Vec<StrBytes> = request
        .state_filters
        .iter()
        .filter(|s| !TxnState::ALL.iter().any(|t| t.name() == s.as_str()))
        .cloned()
        .collect();
    let min_duration_ms = if ctx.version() >= 1 { request.duration_filter } else { -1 };
    let producer_ids: Vec<i64> = request.producer_id_filters.iter().map(|p| p.0).collect();
    let mut listed = Vec::new();
    let mut error = None;
    let now_ms = crate::clock::now_ms();
    let (asked_states, asked_producers) = (states.clone(), producer_ids.clone());
    let list = move |shard: Rc<Shard>| async move {
        shard.txns.list(now_ms, &asked_states, &asked_producers, min_duration_ms)
    };
    for answer in shard.on_every_shard(list).await {
        match answer {
            Ok(txns) => listed.extend(txns),
            Err(_) => error = Some(ResponseError::CoordinatorNotAvailable),
        }
    }
    let response = ListTransactionsResponse::default().with_unknown_state_filters(unknown);
    if let Some(e) = error {
        return response.with_error_code(e.code());
    }
    // Only the transactional ids the principal may describe.
    let access = Access::of(shard, ctx);
    response.with_transaction_states(
        listed
            .into_iter()
            .filter(|t| access.transactional_id(AclOperation::Describe, &t.transactional_id))
            .map(|t| {
                TransactionState::default()
                    .with_transactional_id(TransactionalId(StrBytes::from_string(t.transactional_id)))
                    .with_producer_id(ProducerId(t.producer_id))
                    .with_transaction_state(StrBytes::from_static_str(t.state.name()))
            })
            .collect(),
    )
}
