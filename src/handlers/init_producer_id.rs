//! InitProducerId (v0-5): for an idempotent producer, a broker-unique
//! producer id from shard 0 with epoch 0; for a transactional id, the
//! transaction coordinator's producer id and a bumped epoch that fences any
//! older producer with the same id (aborting its open transaction).

use std::rc::Rc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::access::Access;
use super::coordinator_answer;
use super::errors::fenced_for_version;
use crate::protocol::ResponseError;
use crate::security::acl::{AclOperation, ResourceType};
use crate::server::session::RequestContext;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let refused = |code: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    let access = Access::of(shard, ctx);
    if let Some(id) = request.transactional_id.as_ref().map(|t| t.0.to_string()) {
        if id.is_empty() {
            return refused(ResponseError::InvalidRequest);
        }
        if !access.transactional_id(AclOperation::Write, &id) {
            return refused(ResponseError::TransactionalIdAuthorizationFailed);
        }
        let (timeout_ms, producer_id, epoch) =
            (request.transaction_timeout_ms, request.producer_id.0, request.producer_epoch);
        let transactional_id = id.clone();
        let init = move |shard: Rc<Shard>| async move {
            shard.txns.init_producer_id(&shard.env(), &transactional_id, timeout_ms, producer_id, epoch).await
        };
        return match coordinator_answer(shard.on_txn(&id, init).await) {
            Ok((producer_id, epoch)) => {
                InitProducerIdResponse::default().with_producer_id(ProducerId(producer_id)).with_producer_epoch(epoch)
            }
            Err(e) => refused(fenced_for_version(e, ctx.version(), 4)),
        };
    }
    // An idempotent producer: IDEMPOTENT_WRITE on the cluster, or WRITE on some topic (Kafka 3.0+).
    if !access.cluster(AclOperation::IdempotentWrite) && !access.any_of_type(AclOperation::Write, ResourceType::Topic) {
        return refused(ResponseError::ClusterAuthorizationFailed);
    }
    match shard.allocate_producer_id().await {
        Ok(id) => InitProducerIdResponse::default().with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => refused(e),
    }
}
