//! GetTelemetrySubscriptions (v0, KIP-714): the metrics the client is asked
//! to push and how often, from the client metrics subscriptions that match
//! it. Answered by the controller's shard, which holds every client
//! instance's state (`sluice_domain::telemetry`).

use std::rc::Rc;

use kafka_protocol::messages::{GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::protocol::ResponseError;
use crate::server::session::RequestContext;
use crate::shard::Shard;
use sluice_domain::telemetry::{ClientAttributes, ACCEPTED_COMPRESSION_TYPES};

/// What the `match` selectors of a subscription see of the requesting client.
pub fn client_attributes(ctx: &RequestContext) -> ClientAttributes {
    let software = ctx.session.client_software.borrow().clone();
    ClientAttributes {
        client_instance_id: uuid::Uuid::nil(),
        client_id: ctx.header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default(),
        software_name: software.as_ref().map(|s| s.0.clone()),
        software_version: software.map(|s| s.1),
        source_address: ctx.session.peer.ip().to_string(),
        source_port: ctx.session.peer.port(),
    }
}

/// Kafka's clock for telemetry: wall-clock milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: GetTelemetrySubscriptionsRequest,
) -> GetTelemetrySubscriptionsResponse {
    let attributes = client_attributes(ctx);
    let id = request.client_instance_id;
    let now_ms = now_ms();
    let answer = shard
        .on_controller(move |shard: Rc<Shard>| async move {
            let mut telemetry = shard.telemetry.borrow_mut();
            telemetry.update_subscriptions(&shard.catalog().client_metrics);
            telemetry.get_subscriptions(now_ms, id, attributes)
        })
        .await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(_) => {
            return GetTelemetrySubscriptionsResponse::default()
                .with_error_code(ResponseError::UnknownServerError.code())
        }
    };
    if let Some((code, message)) = answer.error {
        tracing::debug!(%message, "telemetry subscription request refused");
        return GetTelemetrySubscriptionsResponse::default().with_error_code(code.code());
    }
    GetTelemetrySubscriptionsResponse::default()
        .with_client_instance_id(answer.client_instance_id)
        .with_subscription_id(answer.subscribed.subscription_id)
        .with_accepted_compression_types(ACCEPTED_COMPRESSION_TYPES.to_vec())
        .with_push_interval_ms(answer.subscribed.push_interval_ms)
        .with_telemetry_max_bytes(answer.telemetry_max_bytes)
        .with_delta_temporality(true)
        .with_requested_metrics(answer.subscribed.metrics.into_iter().map(StrBytes::from_string).collect())
}
