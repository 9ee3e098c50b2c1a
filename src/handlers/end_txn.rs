//! EndTxn (v0-4): commit or abort. The coordinator makes the decision
//! durable, writes a marker into every partition of the transaction and the
//! offsets decision at each group, then answers.

use std::rc::Rc;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use super::access::Access;
use super::errors::fenced_for_version;
use super::{code_of, coordinator_answer};
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: EndTxnRequest) -> EndTxnResponse {
    let transactional_id = request.transactional_id.0.to_string();
    let result = if transactional_id.is_empty() {
        Err(ResponseError::InvalidRequest)
    } else if !Access::of(shard, ctx).transactional_id(AclOperation::Write, &transactional_id) {
        Err(ResponseError::TransactionalIdAuthorizationFailed)
    } else {
        let (producer_id, epoch, commit) = (request.producer_id.0, request.producer_epoch, request.committed);
        let id = transactional_id.clone();
        let end = move |shard: Rc<Shard>| async move {
            shard.txns.end_txn(&shard.env(), &id, producer_id, epoch, commit).await
        };
        coordinator_answer(shard.on_txn(&transactional_id, end).await)
    };
    let result = result.map_err(|e| fenced_for_version(e, ctx.version(), 2));
    EndTxnResponse::default().with_error_code(code_of(result))
}
