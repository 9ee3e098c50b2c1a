//! AlterClientQuotas (v0-1): sets and removes quotas of users, client ids
//! and IPs (ALTER_CONFIGS on the cluster required), validated as Kafka's
//! controller does and stored durably before the answer. Every shard enforces
//! the new values from then on.

use std::rc::Rc;
use std::sync::Arc;

use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse};
use kafka_protocol::protocol::StrBytes;

use super::access::Access;
use crate::protocol::ResponseError;
use crate::security::acl::AclOperation;
use crate::security::quota::{AlterOutcome, QuotaError, WireAlteration};
use crate::server::session::RequestContext;
use crate::shard::Shard;

/// One request entry, owned so that it can travel to the controller.
type OwnedEntry = (Vec<(String, Option<String>)>, Vec<(String, Option<f64>)>);

fn entity_data(entity: &[(String, Option<String>)]) -> Vec<EntityData> {
    entity
        .iter()
        .map(|(entity_type, name)| {
            EntityData::default()
                .with_entity_type(StrBytes::from_string(entity_type.clone()))
                .with_entity_name(name.clone().map(StrBytes::from_string))
        })
        .collect()
}

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let entries: Vec<OwnedEntry> = request
        .entries
        .iter()
        .map(|e| {
            let entity =
                e.entity.iter().map(|d| (d.entity_type.to_string(), d.entity_name.as_ref().map(|n| n.to_string())));
            let ops = e.ops.iter().map(|o| (o.key.to_string(), if o.remove { None } else { Some(o.value) }));
            (entity.collect(), ops.collect())
        })
        .collect();
    let entities: Vec<Vec<(String, Option<String>)>> = entries.iter().map(|(entity, _)| entity.clone()).collect();
    let every_entry = |code: i16, message: &str| {
        let answers = entities
            .iter()
            .map(|entity| {
                EntryData::default()
                    .with_error_code(code)
                    .with_error_message(Some(StrBytes::from_string(message.to_string())))
                    .with_entity(entity_data(entity))
            })
            .collect();
        AlterClientQuotasResponse::default().with_entries(answers)
    };
    if let Err(e) = Access::of(shard, ctx).require_cluster(AclOperation::AlterConfigs) {
        return every_entry(e.code(), "Cluster authorization failed.");
    }
    let validate_only = request.validate_only;
    let change = move |shard: Rc<Shard>| async move {
        crate::cluster::update_security(&shard, move |state| {
            let entities: Vec<Vec<(&str, Option<&str>)>> = entries
                .iter()
                .map(|(entity, _)| entity.iter().map(|(t, n)| (t.as_str(), n.as_deref())).collect())
                .collect();
            let ops: Vec<Vec<(&str, Option<f64>)>> =
                entries.iter().map(|(_, ops)| ops.iter().map(|(k, v)| (k.as_str(), *v)).collect()).collect();
            let alterations: Vec<WireAlteration<'_>> =
                entities.iter().zip(&ops).map(|(e, o)| (e.as_slice(), o.as_slice())).collect();
            let mut quotas = (*state.quotas).clone();
            let outcome = quotas.alter_batch(&alterations, validate_only);
            let changed = !validate_only && quotas != *state.quotas;
            state.quotas = Arc::new(quotas);
            (outcome, changed)
        })
        .await
    };
    let outcome: Result<Result<Vec<AlterOutcome>, QuotaError>, String> = match shard.on_controller(change).await {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(e.to_string()),
    };
    match outcome {
        Ok(Ok(outcomes)) => AlterClientQuotasResponse::default().with_entries(
            outcomes
                .into_iter()
                .map(|o| {
                    let entry = EntryData::default().with_entity(entity_data(&o.entity));
                    match o.result {
                        Ok(()) => entry,
                        Err(e) => entry
                            .with_error_code(e.error_code)
                            .with_error_message(Some(StrBytes::from_string(e.message))),
                    }
                })
                .collect(),
        ),
        Ok(Err(e)) => every_entry(e.error_code, &e.message),
        Err(message) => every_entry(ResponseError::UnknownServerError.code(), &message),
    }
}
