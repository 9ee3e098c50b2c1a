//! AddOffsetsToTxn (v0-4): the group's offsets join the transaction, so that
//! EndTxn commits or drops them with its records.

use std::rc::Rc;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, RequestHeader};

use super::errors::fenced_for_version;
use super::{code_of, txn_done};
use crate::protocol::ResponseError;
use crate::shard::Shard;
use crate::txn::TxnCall;

pub async fn handle(
    shard: &Rc<Shard>,
    header: &RequestHeader,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let transactional_id = request.transactional_id.0.to_string();
    let result = if request.group_id.0.is_empty() {
        Err(ResponseError::InvalidGroupId)
    } else {
        let call = TxnCall::AddOffsets {
            transactional_id: transactional_id.clone(),
            producer_id: request.producer_id.0,
            epoch: request.producer_epoch,
            group_id: request.group_id.0.to_string(),
        };
        txn_done(shard, &transactional_id, call).await
    };
    let result = result.map_err(|e| fenced_for_version(e, header.request_api_version, 2));
    AddOffsetsToTxnResponse::default().with_error_code(code_of(result))
}
