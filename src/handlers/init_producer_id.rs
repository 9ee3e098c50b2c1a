//! InitProducerId (v0-5): for an idempotent producer, a broker-unique
//! producer id from shard 0 with epoch 0; for a transactional id, the
//! transaction coordinator's producer id and a bumped epoch that fences any
//! older producer with the same id (aborting its open transaction).

use std::rc::Rc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId, RequestHeader};

use super::call_txn;
use super::errors::fenced_for_version;
use crate::protocol::ResponseError;
use crate::shard::Shard;
use crate::txn::coordinator::allocate_producer_id;
use crate::txn::{TxnCall, TxnReply};

pub async fn handle(
    shard: &Rc<Shard>,
    header: &RequestHeader,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let refused = |code: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if let Some(id) = request.transactional_id.as_ref().map(|t| t.0.to_string()) {
        if id.is_empty() {
            return refused(ResponseError::InvalidRequest);
        }
        let call = TxnCall::InitProducerId {
            transactional_id: id.clone(),
            timeout_ms: request.transaction_timeout_ms,
            producer_id: request.producer_id.0,
            epoch: request.producer_epoch,
        };
        return match call_txn(shard, &id, call).await {
            Ok(TxnReply::ProducerId(Ok((producer_id, epoch)))) => {
                InitProducerIdResponse::default().with_producer_id(ProducerId(producer_id)).with_producer_epoch(epoch)
            }
            Ok(TxnReply::ProducerId(Err(e))) => refused(fenced_for_version(e, header.request_api_version, 4)),
            Ok(other) => unreachable!("transaction coordinator answered InitProducerId with {other:?}"),
            Err(_) => refused(ResponseError::CoordinatorNotAvailable),
        };
    }
    match allocate_producer_id(shard).await {
        Ok(id) => InitProducerIdResponse::default().with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => refused(e),
    }
}
