//! InitProducerId (v0-5) for idempotent producers: a broker-unique producer
//! id from shard 0, epoch 0. Transactional ids are refused: transactions are
//! not served.

use std::rc::Rc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId, RequestHeader};

use crate::metadata::controller::{ControllerReply, ControllerRequest};
use crate::protocol::ResponseError;
use crate::router::ShardRequest;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    _header: &RequestHeader,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let refused = |code: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if request.transactional_id.is_some() {
        tracing::info!("InitProducerId with a transactional id refused: transactions are not served");
        return refused(ResponseError::TransactionalIdAuthorizationFailed);
    }
    let reply =
        shard.call(0, |reply| ShardRequest::Controller { request: ControllerRequest::AllocateProducerId, reply }).await;
    match reply {
        Ok(ControllerReply::ProducerId(Ok(id))) => {
            InitProducerIdResponse::default().with_producer_id(ProducerId(id)).with_producer_epoch(0)
        }
        Ok(ControllerReply::ProducerId(Err(e))) => {
            tracing::error!(error = %e, "cannot reserve producer ids");
            refused(ResponseError::KafkaStorageError)
        }
        Ok(other) => unreachable!("controller answered a producer id request with {other:?}"),
        Err(_) => refused(ResponseError::CoordinatorNotAvailable),
    }
}
