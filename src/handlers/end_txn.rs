//! EndTxn (v0-5): commit or abort. The coordinator makes the decision
//! durable, writes a marker into every partition of the transaction and the
//! offsets decision at each group, then answers. v5 is transaction version
//! 2 (KIP-890): the decision bumps the producer epoch, the markers carry the
//! new one, and the answer names the producer id and epoch the client
//! continues with (a new producer id once the epochs are used up).

use std::rc::Rc;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};

use super::access::Access;
use super::coordinator_answer;
use super::errors::fenced_for_version;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

/// The first EndTxn version of transaction version 2 (Kafka's
/// `TransactionVersion.transactionVersionForEndTxn`).
const EPOCH_BUMP_VERSION: i16 = 5;

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: EndTxnRequest) -> EndTxnResponse {
    let transactional_id = request.transactional_id.0.to_string();
    let result = if transactional_id.is_empty() {
        Err(ResponseError::InvalidRequest)
    } else if !Access::of(shard, ctx).transactional_id(AclOperation::Write, &transactional_id) {
        Err(ResponseError::TransactionalIdAuthorizationFailed)
    } else {
        let (producer_id, epoch, commit) = (request.producer_id.0, request.producer_epoch, request.committed);
        let epoch_bump = ctx.version() >= EPOCH_BUMP_VERSION;
        let id = transactional_id.clone();
        let end = move |shard: Rc<Shard>| async move {
            shard.txns.end_txn(&shard.env(), &id, producer_id, epoch, commit, epoch_bump).await
        };
        coordinator_answer(shard.on_txn(&transactional_id, end).await)
    };
    match result.map_err(|e| fenced_for_version(e, ctx.version(), 2)) {
        Ok((producer_id, epoch)) => {
            EndTxnResponse::default().with_producer_id(ProducerId(producer_id)).with_producer_epoch(epoch)
        }
        Err(e) => {
            EndTxnResponse::default().with_error_code(e.code()).with_producer_id(ProducerId(-1)).with_producer_epoch(-1)
        }
    }
}
