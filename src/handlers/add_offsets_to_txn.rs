//! AddOffsetsToTxn (v0-4): the group's offsets join the transaction, so that
//! EndTxn commits or drops them with its records.

use std::rc::Rc;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::access::Access;
use super::errors::fenced_for_version;
use super::{code_of, coordinator_answer};
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let transactional_id = request.transactional_id.0.to_string();
    let access = Access::of(shard, ctx);
    let result = if transactional_id.is_empty() {
        Err(ResponseError::InvalidRequest)
    } else if !access.transactional_id(AclOperation::Write, &transactional_id) {
        Err(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !access.group(AclOperation::Read, request.group_id.0.as_str()) {
        Err(ResponseError::GroupAuthorizationFailed)
    } else if request.group_id.0.is_empty() {
        Err(ResponseError::InvalidGroupId)
    } else {
        let (producer_id, epoch) = (request.producer_id.0, request.producer_epoch);
        let (id, group_id) = (transactional_id.clone(), request.group_id.0.to_string());
        let add = move |shard: Rc<Shard>| async move {
            shard.txns.add_offsets(&shard.env(), &id, producer_id, epoch, group_id).await
        };
        coordinator_answer(shard.on_txn(&transactional_id, add).await)
    };
    let result = result.map_err(|e| fenced_for_version(e, ctx.version(), 2));
    AddOffsetsToTxnResponse::default().with_error_code(code_of(result))
}
