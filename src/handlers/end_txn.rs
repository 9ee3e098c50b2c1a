//! EndTxn (v0-4): commit or abort. The coordinator makes the decision
//! durable, writes a marker into every partition of the transaction and the
//! offsets decision at each group, then answers.

use std::rc::Rc;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, RequestHeader};

use super::errors::fenced_for_version;
use super::{code_of, txn_done};
use crate::shard::Shard;
use crate::txn::TxnCall;

pub async fn handle(shard: &Rc<Shard>, header: &RequestHeader, request: EndTxnRequest) -> EndTxnResponse {
    let transactional_id = request.transactional_id.0.to_string();
    let call = TxnCall::EndTxn {
        transactional_id: transactional_id.clone(),
        producer_id: request.producer_id.0,
        epoch: request.producer_epoch,
        commit: request.committed,
    };
    let result = txn_done(shard, &transactional_id, call).await;
    let result = result.map_err(|e| fenced_for_version(e, header.request_api_version, 2));
    EndTxnResponse::default().with_error_code(code_of(result))
}
